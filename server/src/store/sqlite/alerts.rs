//! [`AlertRows`] over SQLite.

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;

use super::SqliteTx;
use crate::domain::alert::{AlertKind, AlertState, NewAlert, Severity};
use crate::domain::notify::Change;
use crate::domain::page::search_words;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::alerts::{AlertCounts, AlertFilter, AlertRows, AlertView, LIST_MAX, Raised};

const SELECT: &str = "SELECT a.id, a.kind, a.severity, a.state, a.raised_at_ms, a.last_seen_at_ms,
        a.occurrences, a.carrier_id, a.device_id, a.person_id, a.detail_json, a.acknowledged_by,
        a.acknowledged_at_ms, a.resolved_by, a.resolved_at_ms, a.resolution_note,
        c.control_no, c.level
    FROM alerts a LEFT JOIN carriers c ON c.id = a.carrier_id";

/// The most search words matched (as the register's search).
const WORDS_MAX: usize = 8;

/// A row as read, before its names and times are checked.
struct RawAlert {
    id: i64,
    kind: String,
    severity: String,
    state: String,
    raised_at_ms: i64,
    last_seen_at_ms: i64,
    occurrences: i64,
    carrier_id: Option<i64>,
    device_id: Option<String>,
    person_id: Option<i64>,
    detail_json: String,
    acknowledged_by: Option<String>,
    acknowledged_at_ms: Option<i64>,
    resolved_by: Option<String>,
    resolved_at_ms: Option<i64>,
    note: Option<String>,
    control_no: Option<String>,
    level: Option<String>,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawAlert> {
    Ok(RawAlert {
        id: r.get(0)?,
        kind: r.get(1)?,
        severity: r.get(2)?,
        state: r.get(3)?,
        raised_at_ms: r.get(4)?,
        last_seen_at_ms: r.get(5)?,
        occurrences: r.get(6)?,
        carrier_id: r.get(7)?,
        device_id: r.get(8)?,
        person_id: r.get(9)?,
        detail_json: r.get(10)?,
        acknowledged_by: r.get(11)?,
        acknowledged_at_ms: r.get(12)?,
        resolved_by: r.get(13)?,
        resolved_at_ms: r.get(14)?,
        note: r.get(15)?,
        control_no: r.get(16)?,
        level: r.get(17)?,
    })
}

fn corrupt(id: i64, what: &str) -> StoreError {
    StoreError::Corrupt(format!("alert {id}: {what}"))
}

fn time(id: i64, ms: i64) -> Result<Timestamp, StoreError> {
    // Degraded, not an error: one alert with a bad time must not hide every other alert.
    let _ = id;
    Ok(super::stored_time(ms, "alert time"))
}

impl RawAlert {
    fn check(self) -> Result<AlertView, StoreError> {
        let id = self.id;
        let opt_time = |ms: Option<i64>| ms.map(|ms| time(id, ms)).transpose();
        Ok(AlertView {
            id: id.to_string(),
            kind: AlertKind::from_name(&self.kind).ok_or_else(|| corrupt(id, "kind"))?,
            severity: Severity::from_name(&self.severity).ok_or_else(|| corrupt(id, "severity"))?,
            state: AlertState::from_name(&self.state).ok_or_else(|| corrupt(id, "state"))?,
            raised_at: time(id, self.raised_at_ms)?,
            last_seen_at: time(id, self.last_seen_at_ms)?,
            occurrences: self.occurrences,
            carrier_id: self.carrier_id.map(|c| c.to_string()),
            carrier_control_no: self.control_no,
            carrier_level: self.level,
            device_id: self.device_id,
            person_id: self.person_id.map(|p| p.to_string()),
            detail: serde_json::from_str(&self.detail_json)?,
            acknowledged_by: self.acknowledged_by,
            acknowledged_at: opt_time(self.acknowledged_at_ms)?,
            resolved_by: self.resolved_by,
            resolved_at: opt_time(self.resolved_at_ms)?,
            note: self.note,
        })
    }
}

impl AlertRows for SqliteTx<'_> {
    fn raise_alert(&mut self, alert: &NewAlert) -> Result<Raised, StoreError> {
        let conn = self.conn();
        let live: Option<i64> = conn
            .prepare_cached("SELECT id FROM alerts WHERE cause = ?1 AND state != 'resolved'")?
            .query_row([&alert.cause], |r| r.get(0))
            .optional()?;
        if let Some(id) = live {
            conn.prepare_cached(
                "UPDATE alerts SET occurrences = occurrences + 1,
                     last_seen_at_ms = max(last_seen_at_ms, ?2) WHERE id = ?1",
            )?
            .execute(params![id, alert.at_ms])?;
            return Ok(Raised::Repeated(id));
        }
        conn.prepare_cached(
            "INSERT INTO alerts (kind, severity, cause, raised_at_ms, last_seen_at_ms,
                                 carrier_id, device_id, person_id, detail_json)
             VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            alert.kind.as_str(),
            alert.severity.as_str(),
            alert.cause,
            alert.at_ms,
            alert.carrier_id,
            alert.device_id,
            alert.person_id,
            serde_json::to_string(&alert.detail)?,
        ])?;
        let id = conn.last_insert_rowid();
        super::notify::record_change(conn, id, Change::Raised, alert.at_ms)?;
        Ok(Raised::New(id))
    }

    /// Through the `alerts_by_cause` index.
    fn alert_last_seen(&mut self, cause: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT max(last_seen_at_ms) FROM alerts WHERE cause = ?1")?
            .query_row([cause], |r| r.get(0))?)
    }

    fn set_alert_detail(&mut self, id: i64, detail: &Value) -> Result<(), StoreError> {
        let n = self
            .conn()
            .prepare_cached("UPDATE alerts SET detail_json = ?2 WHERE id = ?1")?
            .execute(params![id, serde_json::to_string(detail)?])?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn alerts(&mut self, filter: &AlertFilter) -> Result<Vec<AlertView>, StoreError> {
        let mut clauses = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        let mut add = |clause: &str, value: SqlValue| {
            values.push(value);
            clauses.push(format!("{clause} ?{}", values.len()));
        };
        if let Some(state) = filter.state {
            add("a.state =", SqlValue::Text(state.as_str().to_owned()));
        }
        if let Some(kind) = filter.kind {
            add("a.kind =", SqlValue::Text(kind.as_str().to_owned()));
        }
        if filter.handled_only {
            add(
                "a.state <>",
                SqlValue::Text(AlertState::Open.as_str().to_owned()),
            );
        }
        if let Some(carrier) = filter.carrier_id {
            add("a.carrier_id =", SqlValue::Integer(carrier));
        }
        if let Some(device) = &filter.device_id {
            add("a.device_id =", SqlValue::Text(device.clone()));
        }
        if let Some(after) = filter.after {
            add("a.id >", SqlValue::Integer(after));
        }
        if let Some(before) = filter.before {
            add("a.id <", SqlValue::Integer(before));
        }
        for word in search_words(filter.q.as_deref().unwrap_or(""), WORDS_MAX) {
            values.push(SqlValue::Text(word));
            let n = values.len();
            let contains = |column: &str| format!("instr(lower({column}), lower(?{n})) > 0");
            clauses.push(format!(
                "({} OR {} OR {} OR {})",
                contains("a.kind"),
                contains("coalesce(a.device_id, '')"),
                contains("coalesce(c.control_no, '')"),
                contains("coalesce(a.resolution_note, '')"),
            ));
        }
        values.push(SqlValue::Integer(i64::from(filter.limit.min(LIST_MAX))));
        let limit = values.len();
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        // At most 2^7 combinations of filters times 0 to 8 search words: fine for the cache.
        let order = if filter.oldest_first { "ASC" } else { "DESC" };
        let sql = format!("{SELECT}{filter_sql} ORDER BY a.id {order} LIMIT ?{limit}");
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), raw_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.check()?);
        }
        Ok(out)
    }

    fn alert(&mut self, id: i64) -> Result<Option<AlertView>, StoreError> {
        self.conn()
            .prepare_cached(&format!("{SELECT} WHERE a.id = ?1"))?
            .query_row([id], raw_row)
            .optional()?
            .map(RawAlert::check)
            .transpose()
    }

    fn max_alert_id(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) FROM alerts")?
            .query_row([], |r| r.get(0))?)
    }

    fn alert_state(&mut self, id: i64) -> Result<Option<AlertState>, StoreError> {
        let stored: Option<String> = self
            .conn()
            .prepare_cached("SELECT state FROM alerts WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        stored
            .map(|s| AlertState::from_name(&s).ok_or_else(|| corrupt(id, "state")))
            .transpose()
    }

    fn set_alert_acknowledged(
        &mut self,
        id: i64,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?2,
                     acknowledged_at_ms = ?3 WHERE id = ?1",
            )?
            .execute(params![id, by, at.unix_ms()])?;
        if changed == 1 {
            super::notify::record_change(self.conn(), id, Change::Acknowledged, at.unix_ms())?;
        }
        Ok(())
    }

    fn set_alert_resolved(
        &mut self,
        id: i64,
        by: &str,
        note: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE alerts SET state = 'resolved', resolved_by = ?2, resolved_at_ms = ?3,
                     resolution_note = ?4 WHERE id = ?1",
            )?
            .execute(params![id, by, at.unix_ms(), note])?;
        if changed == 1 {
            super::notify::record_change(self.conn(), id, Change::Resolved, at.unix_ms())?;
        }
        Ok(())
    }

    fn alert_counts(&mut self) -> Result<AlertCounts, StoreError> {
        let conn = self.conn();
        let per_kind = |sql: &str| -> Result<Vec<(AlertKind, i64)>, StoreError> {
            let mut stmt = conn.prepare_cached(sql)?;
            let found = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AlertKind::ALL
                .into_iter()
                .map(|kind| {
                    let n = found
                        .iter()
                        .find(|(name, _)| name == kind.as_str())
                        .map_or(0, |(_, n)| *n);
                    (kind, n)
                })
                .collect())
        };
        Ok(AlertCounts {
            raised: per_kind("SELECT kind, count(*) FROM alerts GROUP BY kind")?,
            live: per_kind(
                "SELECT kind, count(*) FROM alerts
                 WHERE state IN ('open', 'acknowledged') GROUP BY kind",
            )?,
        })
    }

    fn silenced_gate_alarms(
        &mut self,
        device: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id FROM alerts
             WHERE device_id = ?1 AND kind IN ('unauthorized_removal', 'clearance_violation')
               AND state != 'open' AND coalesce(acknowledged_at_ms, resolved_at_ms) >= ?2
             ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![device, since_ms, i64::try_from(max).unwrap_or(i64::MAX)],
            |r| r.get::<_, i64>(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::cause;
    use crate::store::test_support::MemoryDb;

    fn raise_kind(db: &MemoryDb, kind: AlertKind, n: &str, at_ms: i64) -> i64 {
        db.tx()
            .raise_alert(&NewAlert::new(kind, cause(kind, &[("n", n)]), at_ms))
            .unwrap()
            .id()
    }

    #[test]
    fn one_live_alert_per_cause_and_a_fresh_one_after_resolution() {
        let db = MemoryDb::new();
        let tx = &mut db.tx();
        let key = cause(AlertKind::UnknownTag, &[("tag", "E200")]);
        let first = tx
            .raise_alert(&NewAlert::new(AlertKind::UnknownTag, key.clone(), 1_000))
            .unwrap();
        let again = tx
            .raise_alert(&NewAlert::new(AlertKind::UnknownTag, key.clone(), 2_000))
            .unwrap();
        assert!(matches!(first, Raised::New(_)));
        assert_eq!(again, Raised::Repeated(first.id()));
        let view = tx.alert(first.id()).unwrap().unwrap();
        assert_eq!((view.occurrences, view.last_seen_at.unix_ms()), (2, 2_000));
        let at = Timestamp::from_unix(3).unwrap();
        tx.set_alert_resolved(first.id(), "s", "done", at).unwrap();
        let third = tx
            .raise_alert(&NewAlert::new(AlertKind::UnknownTag, key, 3_000))
            .unwrap();
        assert!(matches!(third, Raised::New(id) if id != first.id()));
    }

    #[test]
    fn the_last_sighting_of_a_cause_counts_resolved_alerts_too() {
        let db = MemoryDb::new();
        let tx = &mut db.tx();
        let key = cause(AlertKind::ReaderSilent, &[("device", "g1")]);
        assert_eq!(tx.alert_last_seen(&key).unwrap(), None);
        let first = tx
            .raise_alert(&NewAlert::new(AlertKind::ReaderSilent, key.clone(), 5_000))
            .unwrap();
        let at = Timestamp::from_unix(6).unwrap();
        tx.set_alert_resolved(first.id(), "s", "back", at).unwrap();
        assert_eq!(tx.alert_last_seen(&key).unwrap(), Some(5_000));
        tx.set_alert_detail(first.id(), &serde_json::json!({"resumed_at": "x"}))
            .unwrap();
        let view = tx.alert(first.id()).unwrap().unwrap();
        assert_eq!(view.detail, serde_json::json!({"resumed_at": "x"}));
        assert!(matches!(
            tx.set_alert_detail(999, &serde_json::json!({})),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn lists_are_newest_first_and_filtered() {
        let db = MemoryDb::new();
        let a = raise_kind(&db, AlertKind::UnknownTag, "1", 1_000);
        let b = raise_kind(&db, AlertKind::Overdue, "2", 2_000);
        let c = raise_kind(&db, AlertKind::UnknownTag, "3", 3_000);
        let ids = |f: AlertFilter| -> Vec<String> {
            db.tx()
                .alerts(&AlertFilter { limit: 10, ..f })
                .unwrap()
                .into_iter()
                .map(|v| v.id)
                .collect()
        };
        let s = |id: i64| id.to_string();
        assert_eq!(ids(AlertFilter::default()), [s(c), s(b), s(a)]);
        let tags = AlertFilter {
            kind: Some(AlertKind::UnknownTag),
            ..AlertFilter::default()
        };
        assert_eq!(ids(tags), [s(c), s(a)]);
        let after = AlertFilter {
            after: Some(a),
            ..AlertFilter::default()
        };
        assert_eq!(ids(after), [s(c), s(b)]);
        let before = AlertFilter {
            before: Some(c),
            ..AlertFilter::default()
        };
        assert_eq!(ids(before), [s(b), s(a)]);
        let two = db
            .tx()
            .alerts(&AlertFilter {
                limit: 2,
                ..AlertFilter::default()
            })
            .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(db.tx().max_alert_id().unwrap(), c);
    }

    #[test]
    fn counts_list_every_kind() {
        let db = MemoryDb::new();
        let id = raise_kind(&db, AlertKind::Overdue, "1", 1_000);
        raise_kind(&db, AlertKind::Overdue, "2", 1_000);
        let at = Timestamp::from_unix(1).unwrap();
        db.tx().set_alert_resolved(id, "s", "ok", at).unwrap();
        let counts = db.tx().alert_counts().unwrap();
        assert_eq!(counts.raised.len(), AlertKind::ALL.len());
        assert!(counts.raised.contains(&(AlertKind::Overdue, 2)));
        assert!(counts.live.contains(&(AlertKind::Overdue, 1)));
        assert!(counts.live.contains(&(AlertKind::Missing, 0)));
    }
}
