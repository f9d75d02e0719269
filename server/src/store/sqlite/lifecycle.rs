//! [`LifecycleRows`] over SQLite: `carrier_corrections`, `incidents` (migration 12) and the
//! overdue loans the sweep escalates (through `signouts_out_by_due`).

use rusqlite::{OptionalExtension as _, Row, params};
use serde_json::Value;

use super::{SqliteTx, constraint, level_column, ms_column, required_ms_column};
use crate::domain::carrier::CarrierState;
use crate::domain::ids::{CarrierId, SignoutId};
use crate::domain::lifecycle::{Correctable, MissingCause};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::lifecycle::{
    CorrectionRecord, Incident, LifecycleRows, NewIncident, OverdueCarrier,
};

/// Loans out and due before `?1`, their outstanding carriers still `out`, not yet escalated.
const OVERDUE_CARRIERS: &str = "SELECT so.id, c.id, c.level, so.due_at_ms
     FROM signouts so INDEXED BY signouts_out_by_due
     JOIN signout_carriers sc ON sc.signout_id = so.id AND sc.returned_at_ms IS NULL
     JOIN carriers c ON c.id = sc.carrier_id AND c.state = 'out'
     WHERE so.state = 'out' AND so.due_at_ms <= ?1
       AND NOT EXISTS (SELECT 1 FROM incidents i
                       WHERE i.carrier_id = c.id AND i.signout_id = so.id AND i.cause = 'overdue')
     ORDER BY so.due_at_ms, c.id";

const INCIDENT_COLUMNS: &str = "SELECT i.id, i.carrier_id, c.control_no, c.level, i.cause,
        i.missing_since_ms, i.reported_by, i.reported_at_ms, i.what_happened, i.signout_id,
        i.alert_id, i.told, i.told_at_ms, i.told_recorded_by, i.found_at_ms, i.found_by,
        i.found_note
     FROM incidents i JOIN carriers c ON c.id = i.carrier_id";

fn incident_row(r: &Row<'_>) -> rusqlite::Result<Incident> {
    let cause: String = r.get(4)?;
    Ok(Incident {
        id: r.get(0)?,
        carrier_id: r.get(1)?,
        control_no: r.get(2)?,
        level: level_column(r, 3)?,
        cause: MissingCause::from_name(&cause).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("invalid stored cause: {cause:?}").into(),
            )
        })?,
        missing_since: required_ms_column(r, 5)?,
        reported_by: r.get(6)?,
        reported_at: required_ms_column(r, 7)?,
        what_happened: r.get(8)?,
        signout_id: r.get(9)?,
        alert_id: r.get(10)?,
        told: r.get(11)?,
        told_at: ms_column(r, 12)?,
        told_recorded_by: r.get(13)?,
        found_at: ms_column(r, 14)?,
        found_by: r.get(15)?,
        found_note: r.get(16)?,
    })
}

fn json_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Value> {
    let text: String = r.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

impl LifecycleRows for SqliteTx<'_> {
    fn apply_correction(&mut self, id: CarrierId, after: &Correctable) -> Result<(), StoreError> {
        let conn = self.conn();
        let changed = conn
            .prepare_cached(
                "UPDATE carriers SET title = ?2, owner_unit = ?3, home_device = ?4, copy_no = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                after.title,
                after.owner_unit,
                after.home_device,
                after.copy_no
            ])
            .map_err(|e| constraint(e, "carrier", "home_device"))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        conn.prepare_cached("DELETE FROM carrier_tags WHERE carrier_id = ?1")?
            .execute([id])?;
        for tag in &after.tags {
            conn.prepare_cached("INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)")?
                .execute(params![tag, id])
                .map_err(|e| constraint(e, "tag", "carrier"))?;
        }
        Ok(())
    }

    fn insert_correction(
        &mut self,
        id: CarrierId,
        at: Timestamp,
        actor: &str,
        reason: &str,
        before: &Value,
        after: &Value,
    ) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO carrier_corrections (carrier_id, at_ms, actor, reason, before_json,
                                              after_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            id,
            at.unix_ms(),
            actor,
            reason,
            before.to_string(),
            after.to_string()
        ])
        .map_err(|e| constraint(e, "correction", "carrier"))?;
        Ok(conn.last_insert_rowid())
    }

    fn corrections(&mut self, id: CarrierId) -> Result<Vec<CorrectionRecord>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, at_ms, actor, reason, before_json, after_json FROM carrier_corrections
             WHERE carrier_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(CorrectionRecord {
                id: r.get(0)?,
                at: required_ms_column(r, 1)?,
                actor: r.get(2)?,
                reason: r.get(3)?,
                before: json_column(r, 4)?,
                after: json_column(r, 5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_found(&mut self, id: CarrierId, state: CarrierState) -> Result<bool, StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE carriers SET state = ?2, missing_since_ms = NULL
                 WHERE id = ?1 AND state = 'missing'",
            )?
            .execute(params![id, state])?;
        Ok(changed == 1)
    }

    fn open_incident(&mut self, new: &NewIncident) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO incidents (carrier_id, cause, missing_since_ms, reported_by,
                                    reported_at_ms, what_happened, signout_id, alert_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            new.carrier,
            new.cause.as_str(),
            new.missing_since_ms,
            new.reported_by,
            new.reported_at_ms,
            new.what_happened,
            new.signout,
            new.alert
        ])
        .map_err(|e| constraint(e, "incident", "carrier"))?;
        Ok(conn.last_insert_rowid())
    }

    fn close_incidents(
        &mut self,
        carrier: CarrierId,
        at_ms: i64,
        by: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE incidents SET found_at_ms = ?2, found_by = ?3, found_note = ?4
                 WHERE carrier_id = ?1 AND found_at_ms IS NULL",
            )?
            .execute(params![carrier, at_ms, by, note])?;
        Ok(())
    }

    fn incidents(&mut self, id: CarrierId) -> Result<Vec<Incident>, StoreError> {
        let sql = format!("{INCIDENT_COLUMNS} WHERE i.carrier_id = ?1 ORDER BY i.id DESC");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map([id], incident_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn incident(&mut self, id: i64) -> Result<Option<Incident>, StoreError> {
        let sql = format!("{INCIDENT_COLUMNS} WHERE i.id = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([id], incident_row)
            .optional()?)
    }

    fn set_incident_told(
        &mut self,
        id: i64,
        told: &str,
        told_at_ms: i64,
        by: &str,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE incidents SET told = ?2, told_at_ms = ?3, told_recorded_by = ?4
                 WHERE id = ?1",
            )?
            .execute(params![id, told, told_at_ms, by])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn overdue_carriers(&mut self, due_by_ms: i64) -> Result<Vec<OverdueCarrier>, StoreError> {
        let mut stmt = self.conn().prepare_cached(OVERDUE_CARRIERS)?;
        let rows = stmt.query_map([due_by_ms], |r| {
            Ok(OverdueCarrier {
                signout: r.get::<_, SignoutId>(0)?,
                carrier: r.get(1)?,
                level: level_column(r, 2)?,
                due_at_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn signout_due_ms(&mut self, id: SignoutId) -> Result<i64, StoreError> {
        self.conn()
            .prepare_cached("SELECT due_at_ms FROM signouts WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }
}
