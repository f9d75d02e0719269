//! Gate policies: what the server signs for a gate to decide exits offline.
//!
//! # Contents
//! Every carrier currently allowed to leave ([`PolicyRows::allowed_carriers`]): one entry per
//! (EPC tag, sign-out), with `until_ms` = the due time, or the end of the borrower's training
//! or commitment if sooner ([`gate::permit_until_ms`]: an expired person's badge authorises no
//! exit, offline either), and the borrower's badge (none if the
//! borrower has no badge a gate can read: then the gate does not check badges, exactly as the
//! server's own rule in `domain::gate`), and `badge_required` set by the same function the
//! server's verdict uses ([`gate::badge_required`], from the carrier's level and the `[gate]
//! badge_required` setting), so an offline gate refuses exactly what the server refuses. Sign-outs are not tied to a gate, so every gate gets
//! the same list. And every staff badge a gate can read, ordered by bytes: a gate deciding
//! offline must know a badge from a carrier, or everyone walking out with only their badge
//! would sound the alarm while the server is unreachable.
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
//! transaction on the one writer, so two computations never race.
//!
//! Computing the contents reads every carrier allowed to leave, which is far more work than a
//! batch of passages when many sign-outs are open; so a batch ack reuses the version checked
//! within the last [`ACK_VERSION_MAX_AGE_MS`] for that gate ([`recent_version`]) and only
//! recomputes when it is older. Heartbeats and policy fetches always recompute, so the bound
//! above (one heartbeat interval) still holds.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AllowedCarrier, GatePolicy, MAX_POLICY_BADGES, MAX_POLICY_CARRIERS, PolicyRequest,
};
use ring::digest::{SHA256, digest};

use super::ServiceError;
use crate::AppState;
use crate::domain::device::DeviceKind;
use crate::domain::gate;
use crate::domain::ingest::{clock_in_step, unix_ms};
use crate::domain::level::Level;
use crate::store::ingest::DeviceAuth;
use crate::store::policy::{AllowedRow, LoanRow};
use crate::store::{StoreError, Tx};

/// How old a version check may be for a batch ack to reuse it, in ms.
pub const ACK_VERSION_MAX_AGE_MS: i64 = 1_000;

/// What a policy says, besides its version and validity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Contents {
    allowed: Vec<AllowedCarrier>,
    badges: Vec<Epc>,
}

impl Contents {
    /// The contents now. More than [`MAX_POLICY_CARRIERS`] carriers or [`MAX_POLICY_BADGES`]
    /// badges are cut at the limit, with an error logged: offline gates then alarm on what
    /// was left out (fail secure).
    fn read(tx: &mut dyn Tx, rules: Rules<'_>, now_ms: i64) -> Result<Contents, StoreError> {
        let mut allowed: Vec<AllowedCarrier> = tx
            .allowed_carriers(now_ms)?
            .into_iter()
            .filter_map(|row| entry(row, rules, now_ms))
            // Dispatched carriers (机要传递) within their window: no badge check, as in
            // `domain::gate`.
            .chain(
                tx.dispatch_allowed(now_ms)?
                    .into_iter()
                    .map(|row| row.entry),
            )
            .collect();
        if allowed.len() > MAX_POLICY_CARRIERS {
            tracing::error!(
                max = MAX_POLICY_CARRIERS,
                "more carriers may leave than a gate policy holds; the rest will alarm"
            );
            allowed.truncate(MAX_POLICY_CARRIERS);
        }
        let mut badges = tx.staff_badges()?;
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
        Ok(Contents { allowed, badges })
    }

    /// The SHA-256 of the contents.
    fn hash(&self) -> Result<Vec<u8>, StoreError> {
        Ok(digest(&SHA256, &serde_json::to_vec(self)?)
            .as_ref()
            .to_vec())
    }
}

/// What a policy's contents depend on besides the register: the settings the server's own
/// verdict applies too (`service::ingest::IngestRules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules<'a> {
    /// The carrier levels whose exits need the borrower's badge (`[gate] badge_required`).
    pub badge_levels: &'a [Level],
    /// How long a commitment lasts (`[people] commitment_valid_months`, 0 = for ever).
    pub commitment_valid_months: u32,
}

/// The policy entry for `row` at `now_ms`, as the server's verdict sees the same sign-out
/// (`domain::gate::ActiveSignout::permit`): the badge requirement of the carrier's level, and
/// lasting until the due time or the end of the borrower's certification
/// ([`gate::permit_until_ms`]), whichever comes first. `None` once that has passed: an expired
/// person's carriers leave the policy, so its contents (and version) change at the expiry and
/// the next heartbeat tells every gate to fetch it, exactly as for a replaced badge.
fn entry(
    LoanRow {
        row: AllowedRow { mut entry, level },
        borrower,
    }: LoanRow,
    rules: Rules<'_>,
    now_ms: i64,
) -> Option<AllowedCarrier> {
    let has_badge = !entry.borrower_badges.is_empty();
    entry.badge_required = gate::badge_required(rules.badge_levels, level, has_badge);
    entry.until_ms = gate::permit_until_ms(
        entry.until_ms,
        borrower.valid_through(rules.commitment_valid_months),
    );
    (entry.until_ms > now_ms).then_some(entry)
}

/// The version for contents hashing to `hash`, given the version and hash stored last.
pub fn next_version(stored: Option<(u64, &[u8])>, hash: &[u8]) -> u64 {
    match stored {
        Some((version, stored_hash)) if version > 0 && stored_hash == hash => version,
        Some((version, _)) => version.saturating_add(1),
        None => 1,
    }
}

/// The policy version for a batch ack: the one checked for `device` within the last
/// [`ACK_VERSION_MAX_AGE_MS`] (not in the future), else [`current`]'s.
pub(crate) fn recent_version(
    tx: &mut dyn Tx,
    device: &str,
    rules: Rules<'_>,
    now_ms: i64,
) -> Result<u64, StoreError> {
    match tx.policy_check(device)? {
        Some(check)
            if check.version > 0
                && check
                    .checked_ms
                    .is_some_and(|at| at <= now_ms && now_ms - at < ACK_VERSION_MAX_AGE_MS) =>
        {
            Ok(check.version)
        }
        _ => Ok(current(tx, device, rules, now_ms)?.0),
    }
}

/// The current policy contents for `device` and their version, bumping the stored version
/// if the contents changed, and recording when it was checked.
pub(crate) fn current(
    tx: &mut dyn Tx,
    device: &str,
    rules: Rules<'_>,
    now_ms: i64,
) -> Result<(u64, Contents), StoreError> {
    let contents = Contents::read(tx, rules, now_ms)?;
    let hash = contents.hash()?;
    let stored = tx.policy_check(device)?;
    let version = next_version(
        stored
            .as_ref()
            .and_then(|c| c.hash.as_deref().map(|h| (c.version, h))),
        &hash,
    );
    tx.set_policy_check(device, version, &hash, now_ms)?;
    Ok((version, contents))
}

/// The answer to a gate's policy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// The policy to sign and send.
    Policy(GatePolicy),
    /// Refused: only a gate has a gate policy.
    NotAGate,
    /// Refused: the device clock is too far from the server's (a gate with a wrong clock
    /// cannot judge a policy's validity).
    ClockSkew,
}

/// The gate policy for an authenticated `device` whose signed `request` asks for it, issued
/// now and trusted for the configured lifetime.
pub async fn gate_policy(
    app: &AppState,
    device: &DeviceAuth,
    request: &PolicyRequest,
) -> Result<PolicyAnswer, ServiceError> {
    if device.kind != DeviceKind::Gate {
        return Ok(PolicyAnswer::NotAGate);
    }
    let now_ms = unix_ms(app.now());
    if !clock_in_step(request.at_ms, now_ms) {
        return Ok(PolicyAnswer::ClockSkew);
    }
    let ttl_ms = i64::try_from(app.settings().policy_ttl.as_millis()).unwrap_or(i64::MAX);
    let device = device.id.clone();
    let badge_levels = app.settings().badge_required.clone();
    let commitment_valid_months = app.settings().people.commitment_valid_months;
    app.store()
        .transact(move |tx| {
            let rules = Rules {
                badge_levels: &badge_levels,
                commitment_valid_months,
            };
            let (version, Contents { allowed, badges }) =
                current(tx, device.as_str(), rules, now_ms)?;
            Ok(PolicyAnswer::Policy(GatePolicy {
                device_id: device.as_str().to_owned(),
                version,
                issued_at_ms: now_ms,
                valid_until_ms: now_ms.saturating_add(ttl_ms.max(1)),
                allowed,
                badges,
            }))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::Timestamp;
    use crate::store::test_support::{MemoryDb, carrier_epc};

    const T: i64 = 1_767_225_600_000;

    /// The rules with `badge_levels`, commitments not expiring.
    fn rules(badge_levels: &[Level]) -> Rules<'_> {
        Rules {
            badge_levels,
            commitment_valid_months: 0,
        }
    }

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
            badge_required: false,
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

    /// A batch ack reuses a version checked less than `ACK_VERSION_MAX_AGE_MS` ago and
    /// recomputes an older (or future) one; `current` always recomputes.
    #[test]
    fn batch_acks_reuse_a_recent_check_only() {
        let db = MemoryDb::gate_site(Timestamp::from_unix_ms(T).unwrap());
        let tx = &mut db.tx();
        assert_eq!(
            recent_version(tx, "gate-1", rules(&[]), T).unwrap(),
            1,
            "first check"
        );
        db.signed_out(1, 9_000_000_000_000, true);
        let fresh = T + ACK_VERSION_MAX_AGE_MS - 1;
        assert_eq!(
            recent_version(tx, "gate-1", rules(&[]), fresh).unwrap(),
            1,
            "reused"
        );
        let stale = T + ACK_VERSION_MAX_AGE_MS;
        assert_eq!(
            recent_version(tx, "gate-1", rules(&[]), stale).unwrap(),
            2,
            "recomputed"
        );
        assert_eq!(
            recent_version(tx, "gate-1", rules(&[]), stale + 1).unwrap(),
            2
        );
        // A clock that went back does not reuse a check from its future.
        db.unlend_all();
        assert_eq!(recent_version(tx, "gate-1", rules(&[]), T).unwrap(), 3);
        // `current` never reuses.
        db.signed_out(1, 9_000_000_000_000, true);
        assert_eq!(current(tx, "gate-1", rules(&[]), T + 1).unwrap().0, 4);
        let (_, contents) = current(tx, "gate-1", rules(&[]), T + 2).unwrap();
        let allowed: Vec<Epc> = contents.allowed.iter().map(|a| a.epc).collect();
        assert_eq!(allowed, [carrier_epc(1)]);
    }

    /// Each entry requires the borrower's badge exactly when the carrier's level is in the
    /// setting and the borrower has a gate-readable badge; changing that is a new version.
    #[test]
    fn entries_require_a_badge_for_the_configured_levels() {
        let db = MemoryDb::gate_site(Timestamp::from_unix_ms(T).unwrap());
        db.signed_out(1, 9_000_000_000_000, true);
        let tx = &mut db.tx();
        let required =
            |c: &Contents| -> Vec<bool> { c.allowed.iter().map(|a| a.badge_required).collect() };
        // Carrier 1 is S and person 1 has a badge: required under the default setting.
        let (v1, contents) =
            current(tx, "gate-1", rules(&[Level::TopSecret, Level::Secret]), T).unwrap();
        assert_eq!(required(&contents), [true]);
        // Not for TS only, nor with no levels.
        let (v2, contents) = current(tx, "gate-1", rules(&[Level::TopSecret]), T).unwrap();
        assert_eq!(required(&contents), [false]);
        assert_eq!(v2, v1 + 1, "a changed requirement is a new version");
        // A borrower without a gate-readable badge cannot be required to show one.
        db.set_badge(1, "barcode:XYZ");
        let (_, contents) = current(tx, "gate-1", rules(&[Level::Secret]), T).unwrap();
        assert_eq!(required(&contents), [false]);
        assert!(contents.allowed[0].borrower_badges.is_empty());
    }

    /// A borrower's entry lasts no longer than their training (or, where commitments
    /// expire, their commitment): bounded by midnight after the last valid day, and gone from
    /// the next policy once that has passed, a new version the gates are told to fetch.
    #[test]
    fn an_expired_borrowers_entries_end_with_the_certification() {
        // T is 2026-01-01T00:00:00Z; person 1's training lasts through that day.
        const DAY: i64 = 86_400_000;
        let db = MemoryDb::gate_site(Timestamp::from_unix_ms(T).unwrap());
        db.set_training(1, "2026-01-01");
        db.signed_out(1, T + 7 * DAY, true);
        let tx = &mut db.tx();
        let until = |c: &Contents| -> Vec<i64> { c.allowed.iter().map(|a| a.until_ms).collect() };
        let (v1, contents) = current(tx, "gate-1", rules(&[]), T).unwrap();
        assert_eq!(until(&contents), [T + DAY], "bounded by the training");
        let (v, contents) = current(tx, "gate-1", rules(&[]), T + DAY - 1).unwrap();
        assert_eq!(
            (v, until(&contents)),
            (v1, vec![T + DAY]),
            "unchanged before"
        );
        let (v2, contents) = current(tx, "gate-1", rules(&[]), T + DAY).unwrap();
        assert!(contents.allowed.is_empty(), "expired at midnight");
        assert_eq!(v2, v1 + 1, "a new version for the gates to fetch");
        // The badge stays known as a staff badge (not mistaken for a carrier).
        assert_eq!(contents.badges, [crate::store::test_support::badge_epc(1)]);
        // Renewed: back in. A commitment signed 2020-01-01 lasting 60 months ran out on
        // 2025-01-01: out again.
        db.set_training(1, "2030-12-31");
        let (_, contents) = current(tx, "gate-1", rules(&[]), T + DAY).unwrap();
        assert_eq!(until(&contents), [T + 7 * DAY]);
        let five_years = Rules {
            badge_levels: &[],
            commitment_valid_months: 60,
        };
        let (_, contents) = current(tx, "gate-1", five_years, T + DAY).unwrap();
        assert!(contents.allowed.is_empty(), "commitment expired");
    }

    #[test]
    fn every_readable_staff_badge_is_in_the_policy_once_in_byte_order() {
        let db = MemoryDb::gate_site(Timestamp::from_unix_ms(T).unwrap());
        db.set_badge(1, "E2000000000000000000000A");
        let tx = &mut db.tx();
        let (v1, contents) = current(tx, "gate-1", rules(&[]), T).unwrap();
        let hex =
            |c: &Contents| -> Vec<String> { c.badges.iter().map(ToString::to_string).collect() };
        assert_eq!(hex(&contents), ["E2000000000000000000000A"]);
        // Badges as typed: prefixed or bare, either case; one that is no EPC (a barcode) cannot
        // be read by a gate and is left out; the same badge twice is listed once.
        for (name, badge) in [
            ("B", "epc:e2000000000000000000000b"),
            ("A", "e2000000000000000000000a"),
            ("C", "barcode:XYZ"),
            ("D", "epc:3000"),
        ] {
            db.person_with_badge(name, badge);
        }
        let (v2, contents) = current(tx, "gate-1", rules(&[]), T).unwrap();
        assert_eq!(v2, v1 + 1, "new badges are new contents");
        assert_eq!(
            hex(&contents),
            [
                "3000",
                "E2000000000000000000000A",
                "E2000000000000000000000B"
            ]
        );
        assert_eq!(
            current(tx, "gate-1", rules(&[]), T + 1).unwrap().0,
            v2,
            "unchanged"
        );
    }
}
