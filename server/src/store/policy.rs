//! Gate policies: what the server signs for a gate to decide exits offline.
//!
//! # Contents
//! Every carrier currently allowed to leave: its state is `out`, it is on a sign-out in state
//! `out` with `may_leave`, not yet returned from it, and that sign-out's due time is still
//! ahead. One entry per (EPC tag, sign-out), with `until_ms` = the due time and the borrower's
//! badge (none if the borrower has no badge a gate can read: then the gate does not check
//! badges, exactly as the server's own rule in `domain::gate`). Sign-outs are not tied to a
//! gate, so every gate gets the same list; ordered by tag, due time and sign-out id so that the
//! same state always gives the same list.
//!
//! And every staff badge a gate can read (`people.badge_tag` as an EPC), ordered by bytes: a
//! gate deciding offline must know a badge from a carrier, or everyone walking out with only
//! their badge would sound the alarm while the server is unreachable.
//!
//! # Version
//! `version` must only ever grow for a device, and change when the contents change. The server
//! keeps, per device, the version it last issued and the SHA-256 of that version's contents
//! (`allowed` and `badges` as JSON; `issued_at_ms`/`valid_until_ms` are not contents).
//! Computing the policy compares the hash: equal contents keep the version, different contents
//! get version + 1 (the first policy is version 1). The version is computed whenever a gate
//! sends a batch or a heartbeat (the answer tells it the newest version) and when it fetches
//! the policy, so a change to sign-outs or badges reaches every gate within one heartbeat
//! interval; a sign-out expiring changes the contents too. The check runs inside the caller's
//! write job, so two computations never race.
//!
//! Computing the contents reads every carrier allowed to leave, which is far more work than a
//! batch of passages when many sign-outs are open; so a batch ack reuses the version checked
//! within the last [`ACK_VERSION_MAX_AGE_MS`] for that gate ([`recent_version`], recorded in
//! `device_status.policy_checked_ms`) and only recomputes when it is older. Heartbeats and
//! policy fetches always recompute, so the bound above (one heartbeat interval) still holds.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{AllowedCarrier, GatePolicy, MAX_POLICY_BADGES, MAX_POLICY_CARRIERS};
use ring::digest::{SHA256, digest};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::domain::ids::DeviceId;
use crate::domain::ingest::badge_epc;

/// The carriers allowed to leave at `now_ms`, in a stable order.
///
/// If more than [`MAX_POLICY_CARRIERS`] entries qualify, the list is cut at the limit and an
/// error is logged: offline gates then alarm on the carriers left out (fail secure).
pub(crate) fn allowed_carriers(
    conn: &Connection,
    now_ms: i64,
) -> Result<Vec<AllowedCarrier>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ct.tag, s.due_at_ms, p.badge_tag
         FROM signouts s
         JOIN signout_carriers sc ON sc.signout_id = s.id AND sc.returned_at_ms IS NULL
         JOIN carriers c ON c.id = sc.carrier_id AND c.state = 'out'
         JOIN carrier_tags ct ON ct.carrier_id = c.id
         JOIN people p ON p.id = s.borrower
         WHERE s.state = 'out' AND s.may_leave = 1 AND s.due_at_ms > ?1
           AND substr(ct.tag, 1, 4) = 'epc:'
         ORDER BY ct.tag, s.due_at_ms, s.id",
    )?;
    let mut rows = stmt.query([now_ms])?;
    let mut allowed = Vec::new();
    while let Some(row) = rows.next()? {
        let tag: String = row.get(0)?;
        let Ok(epc) = Epc::from_hex(&tag[4..]) else {
            tracing::warn!(%tag, "carrier tag is not a valid EPC; left out of the gate policy");
            continue;
        };
        if allowed.len() == MAX_POLICY_CARRIERS {
            tracing::error!(
                max = MAX_POLICY_CARRIERS,
                "more carriers may leave than a gate policy holds; the rest will alarm"
            );
            break;
        }
        let badge: Option<String> = row.get(2)?;
        allowed.push(AllowedCarrier {
            epc,
            until_ms: row.get(1)?,
            borrower_badges: badge.as_deref().and_then(badge_epc).into_iter().collect(),
        });
    }
    Ok(allowed)
}

/// Every staff badge a gate can read, ordered by bytes, without repeats.
///
/// If there are more than [`MAX_POLICY_BADGES`], the list is cut at the limit and an error is
/// logged: offline gates then take the badges left out for carriers and alarm (fail secure).
pub(crate) fn staff_badges(conn: &Connection) -> Result<Vec<Epc>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT badge_tag FROM people WHERE badge_tag IS NOT NULL")?;
    let mut rows = stmt.query([])?;
    let mut badges = Vec::new();
    while let Some(row) = rows.next()? {
        let tag: String = row.get(0)?;
        badges.extend(badge_epc(&tag));
    }
    badges.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    badges.dedup();
    if badges.len() > MAX_POLICY_BADGES {
        tracing::error!(
            max = MAX_POLICY_BADGES,
            count = badges.len(),
            "more staff badges than a gate policy holds; offline gates will alarm on the rest"
        );
        badges.truncate(MAX_POLICY_BADGES);
    }
    Ok(badges)
}

/// What a policy says, besides its version and validity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Contents {
    allowed: Vec<AllowedCarrier>,
    badges: Vec<Epc>,
}

impl Contents {
    fn read(conn: &Connection, now_ms: i64) -> Result<Contents, StoreError> {
        Ok(Contents {
            allowed: allowed_carriers(conn, now_ms)?,
            badges: staff_badges(conn)?,
        })
    }

    /// The SHA-256 of the contents.
    fn hash(&self) -> Result<Vec<u8>, StoreError> {
        Ok(digest(&SHA256, &serde_json::to_vec(self)?)
            .as_ref()
            .to_vec())
    }
}

/// The version for contents hashing to `hash`, given the version and hash stored last.
pub fn next_version(stored: Option<(u64, &[u8])>, hash: &[u8]) -> u64 {
    match stored {
        Some((version, stored_hash)) if version > 0 && stored_hash == hash => version,
        Some((version, _)) => version.saturating_add(1),
        None => 1,
    }
}

/// How old a version check may be for a batch ack to reuse it, in ms.
pub const ACK_VERSION_MAX_AGE_MS: i64 = 1_000;

/// The policy version for a batch ack: the one checked for `device_id` within the last
/// [`ACK_VERSION_MAX_AGE_MS`] (not in the future), else [`current`]'s. Run inside a write job.
pub(crate) fn recent_version(
    conn: &Connection,
    device_id: &str,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let checked: Option<(i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT policy_version, policy_checked_ms FROM device_status WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match checked {
        Some((version, Some(at)))
            if version > 0 && at <= now_ms && now_ms - at < ACK_VERSION_MAX_AGE_MS =>
        {
            u64::try_from(version).map_err(|_| {
                StoreError::Corrupt(format!("negative policy_version for {device_id}"))
            })
        }
        _ => Ok(current(conn, device_id, now_ms)?.0),
    }
}

/// The current policy contents for `device_id` and their version, bumping the stored version
/// if the contents changed, and recording when it was checked. Run inside a write job.
pub(crate) fn current(
    conn: &Connection,
    device_id: &str,
    now_ms: i64,
) -> Result<(u64, Contents), StoreError> {
    let contents = Contents::read(conn, now_ms)?;
    let hash = contents.hash()?;
    conn.prepare_cached(
        "INSERT INTO device_status (device_id) VALUES (?1) ON CONFLICT (device_id) DO NOTHING",
    )?
    .execute([device_id])?;
    let (stored_version, stored_hash): (i64, Option<Vec<u8>>) = conn
        .prepare_cached(
            "SELECT policy_version, policy_hash FROM device_status WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, None));
    let stored_version = u64::try_from(stored_version)
        .map_err(|_| StoreError::Corrupt(format!("negative policy_version for {device_id}")))?;
    let version = next_version(stored_hash.as_deref().map(|h| (stored_version, h)), &hash);
    let stored = i64::try_from(version)
        .map_err(|_| StoreError::Corrupt("policy_version overflow".to_owned()))?;
    conn.prepare_cached(
        "UPDATE device_status SET policy_version = ?2, policy_hash = ?3, policy_checked_ms = ?4
         WHERE device_id = ?1",
    )?
    .execute(params![device_id, stored, hash, now_ms])?;
    Ok((version, contents))
}

impl Store {
    /// The gate policy for `device` (a gate), issued at `now_ms` and trusted for `ttl_ms`.
    pub async fn gate_policy(
        &self,
        device: DeviceId,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<GatePolicy, StoreError> {
        self.write(move |c| {
            let (version, Contents { allowed, badges }) = current(c, device.as_str(), now_ms)?;
            Ok(GatePolicy {
                device_id: device.as_str().to_owned(),
                version,
                issued_at_ms: now_ms,
                valid_until_ms: now_ms.saturating_add(ttl_ms.max(1)),
                allowed,
                badges,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_grow_only_on_change() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        assert_eq!(next_version(None, &a), 1);
        assert_eq!(next_version(Some((1, &a)), &a), 1);
        assert_eq!(next_version(Some((1, &a)), &b), 2);
        assert_eq!(next_version(Some((7, &b)), &a), 8);
        // A row with version 0 (never issued) starts the sequence.
        assert_eq!(next_version(Some((0, &a)), &a), 1);
    }

    #[test]
    fn contents_hash_depends_on_the_entries_only() {
        let e = |until_ms| AllowedCarrier {
            epc: Epc::from_hex("3474257BF40000000000162E").unwrap(),
            until_ms,
            borrower_badges: vec![],
        };
        let badge = Epc::from_hex("E20000000000000000000A11").unwrap();
        let hash = |allowed: Vec<AllowedCarrier>, badges: Vec<Epc>| {
            Contents { allowed, badges }.hash().unwrap()
        };
        let h1 = hash(vec![e(5)], vec![]);
        assert_eq!(h1, hash(vec![e(5)], vec![]));
        assert_ne!(h1, hash(vec![e(6)], vec![]));
        assert_ne!(h1, hash(vec![], vec![]));
        assert_ne!(
            h1,
            hash(vec![e(5)], vec![badge]),
            "a new badge is a new version"
        );
    }

    /// A database with gate `g` (no sign-outs yet), in memory.
    fn gate_db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO zones (id, name, level, created_at) VALUES
                 ('in', 'in', 'S', 't'), ('out', 'out', 'public', 't');
             INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, created_at)
                 VALUES ('g', 'gate', zeroblob(32), 'in', 'out', 't');
             INSERT INTO people (id, name, department, category, created_at)
                 VALUES (1, 'P', 'D', 'core', 't');
             INSERT INTO users (id, username, password_hash, roles, created_at)
                 VALUES (1, 'u', 'x', 'custodian', 't');
             INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, state,
                                   holder, created_at)
                 VALUES (1, 'C-1', 'paper', 'S', 'T', 'U', 'out', 1, 't');
             INSERT INTO carrier_tags (tag, carrier_id) VALUES ('epc:3474257BF40000000000162E', 1);",
        )
        .unwrap();
        conn
    }

    fn lend(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO signouts (id, requester, borrower, purpose, due_at_ms, may_leave, state,
                                   created_at)
                 VALUES (1, 1, 1, 'p', 9000000000000, 1, 'out', 't');
             INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (1, 1);",
        )
        .unwrap();
    }

    /// A batch ack reuses a version checked less than `ACK_VERSION_MAX_AGE_MS` ago and
    /// recomputes an older (or future) one; `current` always recomputes.
    #[test]
    fn batch_acks_reuse_a_recent_check_only() {
        let conn = gate_db();
        let t = 1_767_225_600_000;
        assert_eq!(recent_version(&conn, "g", t).unwrap(), 1, "first check");
        lend(&conn);
        let fresh = t + ACK_VERSION_MAX_AGE_MS - 1;
        assert_eq!(recent_version(&conn, "g", fresh).unwrap(), 1, "reused");
        let stale = t + ACK_VERSION_MAX_AGE_MS;
        assert_eq!(recent_version(&conn, "g", stale).unwrap(), 2, "recomputed");
        assert_eq!(recent_version(&conn, "g", stale + 1).unwrap(), 2);
        // A clock that went back does not reuse a check from its future.
        conn.execute("DELETE FROM signout_carriers", []).unwrap();
        assert_eq!(recent_version(&conn, "g", t).unwrap(), 3);
        // `current` never reuses.
        conn.execute(
            "INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (1, 1)",
            [],
        )
        .unwrap();
        assert_eq!(current(&conn, "g", t + 1).unwrap().0, 4);
    }

    #[test]
    fn every_readable_staff_badge_is_in_the_policy_once_in_byte_order() {
        let conn = gate_db();
        let t = 1_767_225_600_000;
        let (v1, contents) = current(&conn, "g", t).unwrap();
        assert_eq!(contents.badges, []);
        // Badges as typed: prefixed or bare, either case; one that is no EPC (a barcode) cannot
        // be read by a gate and is left out.
        conn.execute_batch(
            "INSERT INTO people (id, name, department, category, badge_tag, created_at) VALUES
                 (2, 'B', 'D', 'core', 'epc:e2000000000000000000000b', 't'),
                 (3, 'A', 'D', 'core', 'E2000000000000000000000A', 't'),
                 (4, 'C', 'D', 'core', 'barcode:XYZ', 't'),
                 (5, 'D', 'D', 'core', 'epc:3000', 't');",
        )
        .unwrap();
        let (v2, contents) = current(&conn, "g", t).unwrap();
        assert_eq!(v2, v1 + 1, "new badges are new contents");
        let hex: Vec<String> = contents.badges.iter().map(ToString::to_string).collect();
        assert_eq!(
            hex,
            [
                "3000",
                "E2000000000000000000000A",
                "E2000000000000000000000B"
            ]
        );
        assert_eq!(current(&conn, "g", t + 1).unwrap().0, v2, "unchanged");
    }
}
