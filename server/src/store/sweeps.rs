//! The SQL of one sweep: find the small "due" sets through their indexes, apply the rules of
//! [`crate::domain::sweep`], raise alerts and record changes — all inside ONE write job, so a
//! sweep commits as a whole or not at all.
//!
//! # Cost
//! Every query reads only rows that may be due, through an index named with `INDEXED BY` (so
//! a schema change that loses the index fails the statement instead of silently scanning);
//! none scans the carriers:
//! - overdue: `signouts_out_by_due` (`state = 'out' AND due_at_ms < now`);
//! - cabinet removals: `pending_removals_by_time` (older than the grace period);
//! - leak deadlines: `carriers_missing` (missing for at least the shortest deadline);
//! - silent readers: `device_status_by_heartbeat` (older than the supervision interval), plus
//!   the devices with no heartbeat at all — a scan of `devices`, which holds the few readers
//!   of a site, not the carriers;
//! - per candidate, "when was this cause last alerted": `alerts_by_cause`; live
//!   `reader_silent` alerts for resumption: `alerts_by_state`.
//!
//! # Records
//! Each new alert gets an `alert.raise` audit entry, a carrier marked missing gets
//! `carrier.missing`, a silent reader speaking again gets `alert.reader_resumed`, all by
//! `@sweep`. Repeats of a live alert only bump its occurrence count.

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::StoreError;
use super::alerts::{Raised, last_seen_for_cause, raise, set_detail};
use crate::audit::{self, NewEntry};
use crate::auth::Actor;
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::level::{Level, ZoneLevel};
use crate::domain::sweep::{
    CarrierStanding, RemovalOutcome, SHORTEST_LEAK_DEADLINE_MS, SweepPolicy, episode_alerted,
    leak_deadline_ms, leak_deadline_passed, overdue_notice_due, removal_grace_over,
    removal_outcome, resumed_at, silent_since,
};
use crate::domain::time::Timestamp;

/// Sign-outs out past their due time (`signouts_out_by_due`).
const OVERDUE_DUE: &str = "SELECT id, borrower, due_at_ms, overdue_notified_at_ms FROM signouts INDEXED BY signouts_out_by_due
     WHERE state = 'out' AND due_at_ms < ?1 ORDER BY due_at_ms";
/// Cabinet removals older than the grace period (`pending_removals_by_time`).
const REMOVALS_DUE: &str = "SELECT device_id, carrier_id, removed_at_ms FROM pending_removals INDEXED BY pending_removals_by_time
     WHERE removed_at_ms < ?1 ORDER BY removed_at_ms";
/// Carriers missing for at least the shortest deadline (`carriers_missing`).
const MISSING_DUE: &str =
    "SELECT id, level, missing_since_ms FROM carriers INDEXED BY carriers_missing
     WHERE state = 'missing' AND missing_since_ms <= ?1 ORDER BY missing_since_ms";
/// Devices whose last heartbeat is older than the supervision interval
/// (`device_status_by_heartbeat`).
const HEARTBEATS_DUE: &str =
    "SELECT device_id, last_heartbeat_ms FROM device_status INDEXED BY device_status_by_heartbeat
     WHERE last_heartbeat_ms < ?1 ORDER BY last_heartbeat_ms";
/// Live `reader_silent` alerts of devices that are heard again (`alerts_by_state`).
const LIVE_SILENT_HEARD: &str = "SELECT a.id, a.detail_json, s.last_heartbeat_ms
     FROM alerts a INDEXED BY alerts_by_state JOIN device_status s ON s.device_id = a.device_id
     WHERE a.state IN ('open', 'acknowledged') AND a.kind = 'reader_silent'
       AND s.last_heartbeat_ms >= ?1";

/// Every due-set query by name, for inspecting their plans on a real file (the sweep bench
/// prints them).
pub const DUE_SET_QUERIES: [(&str, &str); 5] = [
    ("overdue", OVERDUE_DUE),
    ("cabinet removals", REMOVALS_DUE),
    ("leak deadlines", MISSING_DUE),
    ("silent readers", HEARTBEATS_DUE),
    ("resumed readers", LIVE_SILENT_HEARD),
];

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Alerts raised, repeated or updated, each once, in order: notify these after commit.
    pub changed: Vec<i64>,
    /// How many of them are new alerts.
    pub raised: usize,
    /// Carriers this sweep marked missing.
    pub marked_missing: usize,
}

struct Sweep<'c> {
    conn: &'c Connection,
    at: Timestamp,
    now_ms: i64,
    policy: SweepPolicy,
    actor: Actor,
    out: SweepOutcome,
}

/// RFC 3339 text of a rule time, or null if it is out of range.
fn rfc3339(ms: i64) -> Value {
    Timestamp::from_unix_ms(ms).map_or(Value::Null, |t| Value::String(t.to_string()))
}

fn level_from_code(code: &str) -> Option<Level> {
    match ZoneLevel::from_code(code)? {
        ZoneLevel::Classified(level) => Some(level),
        ZoneLevel::Public => None,
    }
}

/// Run every rule once at `at`.
pub fn run(
    conn: &Connection,
    at: Timestamp,
    policy: SweepPolicy,
) -> Result<SweepOutcome, StoreError> {
    let mut sweep = Sweep {
        conn,
        at,
        now_ms: at.unix_ms(),
        policy,
        actor: Actor::system("sweep"),
        out: SweepOutcome::default(),
    };
    sweep.overdue()?;
    sweep.cabinet_removals()?;
    sweep.leak_deadlines()?;
    sweep.silent_readers()?;
    sweep.resumed_readers()?;
    let mut seen = std::collections::HashSet::new();
    sweep.out.changed.retain(|id| seen.insert(*id));
    Ok(sweep.out)
}

impl Sweep<'_> {
    fn audit(
        &self,
        action: &'static str,
        subject: String,
        before: Option<Value>,
        after: Value,
    ) -> Result<(), StoreError> {
        audit::append(
            self.conn,
            &NewEntry {
                at: self.at,
                actor: self.actor.name().to_owned(),
                action,
                subject,
                before,
                after: Some(after),
            },
        )?;
        Ok(())
    }

    /// Raise (or repeat) `alert`; a new one is audited.
    fn raise(&mut self, alert: &NewAlert) -> Result<Raised, StoreError> {
        let raised = raise(self.conn, alert)?;
        if let Raised::New(id) = raised {
            self.audit(
                "alert.raise",
                format!("alert:{id}"),
                None,
                json!({
                    "kind": alert.kind,
                    "severity": alert.severity,
                    "cause": alert.cause,
                    "carrier_id": alert.carrier_id.map(|c| c.to_string()),
                    "device_id": alert.device_id,
                    "person_id": alert.person_id.map(|p| p.to_string()),
                }),
            )?;
            self.out.raised += 1;
        }
        self.out.changed.push(raised.id());
        Ok(raised)
    }

    fn overdue(&mut self) -> Result<(), StoreError> {
        let rows = self
            .conn
            .prepare_cached(OVERDUE_DUE)?
            .query_map([self.now_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (signout, borrower, due_at_ms, notified) in rows {
            if !overdue_notice_due(
                due_at_ms,
                notified,
                self.now_ms,
                self.policy.overdue_reminder_ms,
            ) {
                continue;
            }
            let carriers = self
                .conn
                .prepare_cached(
                    "SELECT carrier_id FROM signout_carriers
                     WHERE signout_id = ?1 AND returned_at_ms IS NULL ORDER BY carrier_id",
                )?
                .query_map([signout], |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let signout_text = signout.to_string();
            let mut alert = NewAlert::new(
                AlertKind::Overdue,
                cause(AlertKind::Overdue, &[("signout", &signout_text)]),
                self.now_ms,
            );
            alert.person_id = Some(borrower);
            if let [only] = carriers[..] {
                alert.carrier_id = Some(only);
            }
            alert.detail = json!({
                "signout_id": signout_text,
                "due_at": rfc3339(due_at_ms),
                "carrier_ids": carriers.iter().map(i64::to_string).collect::<Vec<_>>(),
            });
            self.raise(&alert)?;
            self.conn
                .prepare_cached("UPDATE signouts SET overdue_notified_at_ms = ?2 WHERE id = ?1")?
                .execute(params![signout, self.now_ms])?;
        }
        Ok(())
    }

    fn cabinet_removals(&mut self) -> Result<(), StoreError> {
        let grace = self.policy.cabinet_removal_grace_ms;
        let rows = self
            .conn
            .prepare_cached(REMOVALS_DUE)?
            .query_map([self.now_ms.saturating_sub(grace)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (device, carrier, removed_at_ms) in rows {
            if !removal_grace_over(removed_at_ms, self.now_ms, grace) {
                continue;
            }
            let state: String = self
                .conn
                .prepare_cached("SELECT state FROM carriers WHERE id = ?1")?
                .query_row([carrier], |r| r.get(0))?;
            let standing = CarrierStanding::from_state(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("carrier {carrier}: state")))?;
            let on_signout: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM signout_carriers sc
                         JOIN signouts s ON s.id = sc.signout_id
                     WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND s.state = 'out')",
                )?
                .query_row([carrier], |r| r.get(0))?;
            if let RemovalOutcome::Unaccounted { mark_missing } =
                removal_outcome(on_signout, standing)
            {
                self.unaccounted_removal(&device, carrier, removed_at_ms, &state, mark_missing)?;
            }
            self.conn
                .prepare_cached(
                    "DELETE FROM pending_removals WHERE device_id = ?1 AND carrier_id = ?2",
                )?
                .execute(params![device, carrier])?;
        }
        Ok(())
    }

    fn unaccounted_removal(
        &mut self,
        device: &str,
        carrier: i64,
        removed_at_ms: i64,
        state: &str,
        mark_missing: bool,
    ) -> Result<(), StoreError> {
        let carrier_text = carrier.to_string();
        let mut alert = NewAlert::new(
            AlertKind::CabinetRemoval,
            cause(
                AlertKind::CabinetRemoval,
                &[("carrier", &carrier_text), ("device", device)],
            ),
            self.now_ms,
        );
        alert.carrier_id = Some(carrier);
        alert.device_id = Some(device.to_owned());
        alert.detail = json!({ "removed_at": rfc3339(removed_at_ms) });
        self.raise(&alert)?;
        if !mark_missing {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "UPDATE carriers SET state = 'missing', missing_since_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![carrier, removed_at_ms])?;
        self.audit(
            "carrier.missing",
            format!("carrier:{carrier}"),
            Some(json!({ "state": state })),
            json!({
                "state": "missing",
                "missing_since": rfc3339(removed_at_ms),
                "reason": "cabinet_removal",
                "device_id": device,
            }),
        )?;
        self.out.marked_missing += 1;
        let mut missing = NewAlert::new(
            AlertKind::Missing,
            cause(AlertKind::Missing, &[("carrier", &carrier_text)]),
            self.now_ms,
        );
        missing.carrier_id = Some(carrier);
        missing.device_id = Some(device.to_owned());
        missing.detail = json!({
            "missing_since": rfc3339(removed_at_ms),
            "last_seen_in": device,
        });
        self.raise(&missing)?;
        Ok(())
    }

    fn leak_deadlines(&mut self) -> Result<(), StoreError> {
        let rows = self
            .conn
            .prepare_cached(MISSING_DUE)?
            .query_map(
                [self.now_ms.saturating_sub(SHORTEST_LEAK_DEADLINE_MS)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        for (carrier, code, since) in rows {
            let level = level_from_code(&code)
                .ok_or_else(|| StoreError::Corrupt(format!("carrier {carrier}: level")))?;
            if !leak_deadline_passed(level, since, self.now_ms) {
                continue;
            }
            let carrier_text = carrier.to_string();
            let key = cause(AlertKind::LeakDeadline, &[("carrier", &carrier_text)]);
            if episode_alerted(last_seen_for_cause(self.conn, &key)?, since) {
                continue;
            }
            let mut alert = NewAlert::new(AlertKind::LeakDeadline, key, self.now_ms);
            alert.carrier_id = Some(carrier);
            alert.detail = json!({
                "level": level,
                "missing_since": rfc3339(since),
                "deadline_at": rfc3339(since.saturating_add(leak_deadline_ms(level))),
            });
            self.raise(&alert)?;
        }
        Ok(())
    }

    fn silent_readers(&mut self) -> Result<(), StoreError> {
        let sup = self.policy.supervision_ms;
        // (device, last heartbeat, registration) of every device that may be silent.
        let mut candidates: Vec<(String, Option<i64>, i64)> = self
            .conn
            .prepare_cached(HEARTBEATS_DUE)?
            .query_map([self.now_ms.saturating_sub(sup)], |r| {
                let last: i64 = r.get(1)?;
                Ok((r.get(0)?, Some(last), last))
            })?
            .collect::<Result<_, _>>()?;
        let never = self
            .conn
            .prepare_cached(
                "SELECT d.id, d.created_at FROM devices d WHERE NOT EXISTS (
                     SELECT 1 FROM device_status s
                     WHERE s.device_id = d.id AND s.last_heartbeat_ms IS NOT NULL)
                 ORDER BY d.id",
            )?
            .query_map([], |r| {
                let registered: Timestamp = r.get(1)?;
                Ok((r.get::<_, String>(0)?, None, registered.unix_ms()))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        candidates.extend(never);
        for (device, last, registered) in candidates {
            let Some(since) = silent_since(last, registered, self.now_ms, sup) else {
                continue;
            };
            let key = cause(AlertKind::ReaderSilent, &[("device", &device)]);
            if episode_alerted(last_seen_for_cause(self.conn, &key)?, since) {
                continue;
            }
            let mut alert = NewAlert::new(AlertKind::ReaderSilent, key, self.now_ms);
            alert.device_id = Some(device);
            alert.detail = json!({
                "silent_since": rfc3339(since),
                "silent_since_ms": since,
                "never_reported": last.is_none(),
            });
            if let Raised::Repeated(id) = self.raise(&alert)? {
                // A new silence while the alert is still live: the detail describes this one
                // (and drops the previous `resumed_at`).
                set_detail(self.conn, id, &alert.detail)?;
            }
        }
        Ok(())
    }

    fn resumed_readers(&mut self) -> Result<(), StoreError> {
        let rows = self
            .conn
            .prepare_cached(LIVE_SILENT_HEARD)?
            .query_map(
                [self.now_ms.saturating_sub(self.policy.supervision_ms)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        for (id, detail_json, heartbeat) in rows {
            let mut detail: Value = serde_json::from_str(&detail_json)?;
            if detail.get("resumed_at").is_some() {
                continue;
            }
            let Some(since) = detail.get("silent_since_ms").and_then(Value::as_i64) else {
                continue;
            };
            let Some(resumed) = resumed_at(since, Some(heartbeat)) else {
                continue;
            };
            let Some(fields) = detail.as_object_mut() else {
                continue;
            };
            fields.insert("resumed_at".to_owned(), rfc3339(resumed));
            fields.insert("resumed_at_ms".to_owned(), Value::from(resumed));
            set_detail(self.conn, id, &detail)?;
            self.audit(
                "alert.reader_resumed",
                format!("alert:{id}"),
                None,
                json!({ "resumed_at": rfc3339(resumed) }),
            )?;
            self.out.changed.push(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        conn
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map([0_i64], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        rows.join("; ")
    }

    /// The sweeps' cost must not grow with the number of carriers (or sign-outs, or alerts):
    /// every due-set query searches its index instead of scanning a table.
    #[test]
    fn every_due_set_is_read_through_its_index() {
        let conn = db();
        for (sql, index, table) in [
            (OVERDUE_DUE, "signouts_out_by_due", "signouts"),
            (REMOVALS_DUE, "pending_removals_by_time", "pending_removals"),
            (MISSING_DUE, "carriers_missing", "carriers"),
            (
                HEARTBEATS_DUE,
                "device_status_by_heartbeat",
                "device_status",
            ),
            (LIVE_SILENT_HEARD, "alerts_by_state", "alerts"),
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(index), "{index} not used: {plan}");
            assert!(
                !plan.contains(&format!("SCAN {table}")),
                "{table} scanned: {plan}"
            );
        }
        let cause_plan = {
            let mut stmt = conn
                .prepare(
                    "EXPLAIN QUERY PLAN SELECT max(last_seen_at_ms) FROM alerts WHERE cause = ?1",
                )
                .unwrap();
            stmt.query_map(["x"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("; ")
        };
        assert!(cause_plan.contains("alerts_by_cause"), "{cause_plan}");
    }
}
