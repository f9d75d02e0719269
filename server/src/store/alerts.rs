//! Raising alerts inside a write job, deduplicated by cause.
//!
//! [`raise`] runs inside the same transaction as the change that caused the alert (an ingested
//! batch, a sweep), so an alert exists exactly when its cause was committed. After the job has
//! committed, the caller passes the returned ids to [`crate::AlertHub::notify`] so that live
//! consoles hear about them.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::domain::alert::NewAlert;

/// What [`raise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alert with this id.
    New(i64),
    /// The cause already had a live alert with this id; its occurrence count went up.
    Repeated(i64),
}

impl Raised {
    /// The alert's id either way.
    pub fn id(self) -> i64 {
        match self {
            Raised::New(id) | Raised::Repeated(id) => id,
        }
    }
}

/// Raise `alert`, or count another occurrence of the live alert with the same cause.
pub fn raise(conn: &Connection, alert: &NewAlert) -> Result<Raised, StoreError> {
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
    Ok(Raised::New(conn.last_insert_rowid()))
}

/// When an alert of `cause` was last raised or repeated (`last_seen_at_ms`), resolved ones
/// included; `None` if never. Uses the `alerts_by_cause` index.
pub fn last_seen_for_cause(conn: &Connection, cause: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT max(last_seen_at_ms) FROM alerts WHERE cause = ?1")?
        .query_row([cause], |r| r.get(0))?)
}

/// Replace an alert's detail object (never with a carrier title in it).
pub fn set_detail(
    conn: &Connection,
    id: i64,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached("UPDATE alerts SET detail_json = ?2 WHERE id = ?1")?
        .execute(params![id, serde_json::to_string(detail)?])?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{AlertKind, cause};

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn one_live_alert_per_cause_and_a_fresh_one_after_resolution() {
        let conn = db();
        let key = cause(AlertKind::UnknownTag, &[("tag", "E200")]);
        let first = raise(
            &conn,
            &NewAlert::new(AlertKind::UnknownTag, key.clone(), 1_000),
        )
        .unwrap();
        let again = raise(
            &conn,
            &NewAlert::new(AlertKind::UnknownTag, key.clone(), 2_000),
        )
        .unwrap();
        assert!(matches!(first, Raised::New(_)));
        assert_eq!(again, Raised::Repeated(first.id()));
        let (n, last): (i64, i64) = conn
            .query_row(
                "SELECT occurrences, last_seen_at_ms FROM alerts WHERE id = ?1",
                [first.id()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, last), (2, 2_000));
        conn.execute(
            "UPDATE alerts SET state = 'resolved' WHERE id = ?1",
            [first.id()],
        )
        .unwrap();
        let third = raise(&conn, &NewAlert::new(AlertKind::UnknownTag, key, 3_000)).unwrap();
        assert!(matches!(third, Raised::New(id) if id != first.id()));
    }

    #[test]
    fn the_last_sighting_of_a_cause_counts_resolved_alerts_too() {
        let conn = db();
        let key = cause(AlertKind::ReaderSilent, &[("device", "g1")]);
        assert_eq!(last_seen_for_cause(&conn, &key).unwrap(), None);
        let first = raise(
            &conn,
            &NewAlert::new(AlertKind::ReaderSilent, key.clone(), 5_000),
        )
        .unwrap();
        conn.execute(
            "UPDATE alerts SET state = 'resolved' WHERE id = ?1",
            [first.id()],
        )
        .unwrap();
        assert_eq!(last_seen_for_cause(&conn, &key).unwrap(), Some(5_000));
        set_detail(&conn, first.id(), &serde_json::json!({"resumed_at": "x"})).unwrap();
        let detail: String = conn
            .query_row(
                "SELECT detail_json FROM alerts WHERE id = ?1",
                [first.id()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(detail, r#"{"resumed_at":"x"}"#);
        assert!(matches!(
            set_detail(&conn, 999, &serde_json::json!({})),
            Err(StoreError::NotFound)
        ));
    }
}
