//! [`SweepRows`] over SQLite: each due set through its index, named with `INDEXED BY`.

use rusqlite::params;
use serde_json::Value;

use super::SqliteTx;
use crate::domain::carrier::CarrierState;
use crate::domain::ids::{CarrierId, DeviceId, SignoutId};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::sqlite::level_column;
use crate::store::sweeps::{
    HeardDevice, MissingCarrier, OverdueSignout, PendingRemoval, SilentAlertHeard, SweepRows,
};

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
     WHERE last_heartbeat_ms < ?1
       AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = device_id AND d.revoked_at_ms IS NOT NULL)
     ORDER BY last_heartbeat_ms";
/// The next device to go silent: the earliest heartbeat not older than the supervision
/// interval, of a device not revoked (`device_status_by_heartbeat`, in order, first row).
const NEXT_SILENT: &str =
    "SELECT last_heartbeat_ms FROM device_status INDEXED BY device_status_by_heartbeat
     WHERE last_heartbeat_ms >= ?1
       AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = device_id AND d.revoked_at_ms IS NOT NULL)
     ORDER BY last_heartbeat_ms LIMIT 1";
/// Live `reader_silent` alerts of devices that are heard again (`alerts_by_state`).
const LIVE_SILENT_HEARD: &str = "SELECT a.id, a.detail_json, s.last_heartbeat_ms
     FROM alerts a INDEXED BY alerts_by_state JOIN device_status s ON s.device_id = a.device_id
     WHERE a.state IN ('open', 'acknowledged') AND a.kind = 'reader_silent'
       AND s.last_heartbeat_ms >= ?1";

/// Every due-set query by name, for inspecting their plans on a real file (the sweep bench
/// prints them).
pub const DUE_SET_QUERIES: [(&str, &str); 6] = [
    ("overdue", OVERDUE_DUE),
    ("cabinet removals", REMOVALS_DUE),
    ("leak deadlines", MISSING_DUE),
    ("silent readers", HEARTBEATS_DUE),
    ("resumed readers", LIVE_SILENT_HEARD),
    ("next silent reader", NEXT_SILENT),
];

impl SweepRows for SqliteTx<'_> {
    fn overdue_signouts(&mut self, now_ms: i64) -> Result<Vec<OverdueSignout>, StoreError> {
        let mut stmt = self.conn().prepare_cached(OVERDUE_DUE)?;
        let rows = stmt.query_map([now_ms], |r| {
            Ok(OverdueSignout {
                id: r.get(0)?,
                borrower: r.get(1)?,
                due_at_ms: r.get(2)?,
                notified_at_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_overdue_notified(&mut self, id: SignoutId, at_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE signouts SET overdue_notified_at_ms = ?2 WHERE id = ?1")?
            .execute(params![id, at_ms])?;
        Ok(())
    }

    fn removals_before(&mut self, before_ms: i64) -> Result<Vec<PendingRemoval>, StoreError> {
        let mut stmt = self.conn().prepare_cached(REMOVALS_DUE)?;
        let rows = stmt.query_map([before_ms], |r| {
            Ok(PendingRemoval {
                device: r.get(0)?,
                carrier: r.get(1)?,
                removed_at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn drop_pending_removal(
        &mut self,
        device: &DeviceId,
        carrier: CarrierId,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "DELETE FROM pending_removals WHERE device_id = ?1 AND carrier_id = ?2",
            )?
            .execute(params![device, carrier])?;
        Ok(())
    }

    fn carrier_state(&mut self, carrier: CarrierId) -> Result<CarrierState, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT state FROM carriers WHERE id = ?1")?
            .query_row([carrier], |r| r.get(0))?)
    }

    fn on_open_signout(&mut self, carrier: CarrierId) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM signout_carriers sc
                     JOIN signouts s ON s.id = sc.signout_id
                 WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND s.state = 'out')",
            )?
            .query_row([carrier], |r| r.get(0))?)
    }

    fn mark_missing(&mut self, carrier: CarrierId, since_ms: i64) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE carriers SET state = 'missing', missing_since_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![carrier, since_ms])?;
        Ok(())
    }

    fn missing_since(&mut self, since_ms: i64) -> Result<Vec<MissingCarrier>, StoreError> {
        let mut stmt = self.conn().prepare_cached(MISSING_DUE)?;
        let rows = stmt.query_map([since_ms], |r| {
            Ok(MissingCarrier {
                id: r.get(0)?,
                level: level_column(r, 1)?,
                since_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn earliest_heartbeat_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(NEXT_SILENT)?;
        let mut rows = stmt.query_map([since_ms], |r| r.get::<_, i64>(0))?;
        Ok(rows.next().transpose()?)
    }

    fn devices_unheard_since(&mut self, before_ms: i64) -> Result<Vec<HeardDevice>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(HEARTBEATS_DUE)?;
        let rows = stmt.query_map([before_ms], |r| {
            let last: i64 = r.get(1)?;
            Ok(HeardDevice {
                device: r.get(0)?,
                last_heartbeat_ms: Some(last),
                registered_ms: last,
            })
        })?;
        let mut devices: Vec<HeardDevice> = rows.collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.created_at FROM devices d WHERE d.revoked_at_ms IS NULL AND NOT EXISTS (
                 SELECT 1 FROM device_status s
                 WHERE s.device_id = d.id AND s.last_heartbeat_ms IS NOT NULL)
             ORDER BY d.id",
        )?;
        let never = stmt.query_map([], |r| {
            let registered: Timestamp = r.get(1)?;
            Ok(HeardDevice {
                device: r.get(0)?,
                last_heartbeat_ms: None,
                registered_ms: registered.unix_ms(),
            })
        })?;
        for device in never {
            devices.push(device?);
        }
        Ok(devices)
    }

    fn silent_alerts_heard_since(
        &mut self,
        since_ms: i64,
    ) -> Result<Vec<SilentAlertHeard>, StoreError> {
        let mut stmt = self.conn().prepare_cached(LIVE_SILENT_HEARD)?;
        let rows = stmt
            .query_map([since_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(alert, detail, last_heartbeat_ms)| {
                Ok(SilentAlertHeard {
                    alert,
                    detail: serde_json::from_str::<Value>(&detail)?,
                    last_heartbeat_ms,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::MemoryDb;

    fn plan(db: &MemoryDb, sql: &str) -> String {
        db.query_plan(sql).join("; ")
    }

    /// The sweeps' cost must not grow with the number of carriers (or sign-outs, or alerts):
    /// every due-set query searches its index instead of scanning a table.
    #[test]
    fn every_due_set_is_read_through_its_index() {
        let db = MemoryDb::new();
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
            let plan = plan(&db, sql);
            assert!(plan.contains(index), "{index} not used: {plan}");
            assert!(
                !plan.contains(&format!("SCAN {table}")),
                "{table} scanned: {plan}"
            );
        }
        let cause_plan = plan(
            &db,
            "SELECT max(last_seen_at_ms) FROM alerts WHERE cause = ?1",
        );
        assert!(cause_plan.contains("alerts_by_cause"), "{cause_plan}");
    }
}
