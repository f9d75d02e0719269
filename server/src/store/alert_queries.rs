//! Reading alerts and moving them through their lifecycle (acknowledge, resolve).
//!
//! An alert as a console sees it ([`AlertView`]) carries the carrier's control number and
//! level joined from `carriers`, never its title: guards must see what to look for, and titles
//! can themselves be secret (DOMAIN.md). The title column is never selected here.
//!
//! A transition checks [`AlertState::can_become`], changes the row and appends the audit entry
//! in one write job, so the change and its record commit together. A refused transition changes
//! nothing; it is answered as `Ok(Err(Refusal))` ("the rule said no", as opposed to "storage
//! failed").

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Store, StoreError};
use crate::audit::{self, NewEntry};
use crate::auth::capability::{AlertHandlerCap, AlertReaderCap};
use crate::domain::alert::{AlertKind, AlertState, Severity};
use crate::domain::time::Timestamp;

/// The most alerts one list answer holds.
pub const LIST_MAX: u32 = 1000;
/// The list size when none is asked for.
pub const LIST_DEFAULT: u32 = 100;

/// One alert as the API and the live stream show it. Absent optional fields are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Id (a decimal string).
    pub id: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: AlertState,
    /// When it was first raised.
    pub raised_at: Timestamp,
    /// When it last occurred.
    pub last_seen_at: Timestamp,
    /// How often its cause occurred while it was live.
    pub occurrences: i64,
    /// The carrier concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// The carrier's control number (编号), for the guard to look for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_control_no: Option<String>,
    /// The carrier's level: `TS`, `S` or `C`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_level: Option<String>,
    /// The device concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The person concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Extra facts, a JSON object.
    pub detail: Value,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// Who resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The resolution note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Which alerts to list. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only this kind.
    pub kind: Option<AlertKind>,
    /// Only this carrier.
    pub carrier_id: Option<i64>,
    /// Only this device.
    pub device_id: Option<String>,
    /// Only ids greater than this (what is new since a stream's `hello`).
    pub after: Option<i64>,
    /// Only ids smaller than this (the next page back in time).
    pub before: Option<i64>,
    /// At most this many (capped at [`LIST_MAX`]).
    pub limit: u32,
}

/// Why a transition was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No alert has this id.
    NotFound,
    /// The lifecycle does not allow it.
    Illegal {
        /// The alert's state.
        from: AlertState,
        /// The state asked for.
        to: AlertState,
    },
}

/// Alert counts per kind, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// Alerts ever raised (rows), per kind.
    pub raised: Vec<(AlertKind, i64)>,
    /// Live (open or acknowledged) alerts, per kind.
    pub live: Vec<(AlertKind, i64)>,
}

const SELECT: &str = "SELECT a.id, a.kind, a.severity, a.state, a.raised_at_ms, a.last_seen_at_ms,
        a.occurrences, a.carrier_id, a.device_id, a.person_id, a.detail_json, a.acknowledged_by,
        a.acknowledged_at_ms, a.resolved_by, a.resolved_at_ms, a.resolution_note,
        c.control_no, c.level
    FROM alerts a LEFT JOIN carriers c ON c.id = a.carrier_id";

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
    Timestamp::from_unix_ms(ms).ok_or_else(|| corrupt(id, "time out of range"))
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

/// The alerts matching `filter`, newest first.
pub fn list(conn: &Connection, filter: &AlertFilter) -> Result<Vec<AlertView>, StoreError> {
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
    values.push(SqlValue::Integer(i64::from(filter.limit.min(LIST_MAX))));
    let limit = values.len();
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    // At most 2^6 distinct statements (one per combination of filters): fine for the cache.
    let sql = format!("{SELECT}{filter_sql} ORDER BY a.id DESC LIMIT ?{limit}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), raw_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.check()?);
    }
    Ok(out)
}

/// One alert.
pub fn one(conn: &Connection, id: i64) -> Result<Option<AlertView>, StoreError> {
    conn.prepare_cached(&format!("{SELECT} WHERE a.id = ?1"))?
        .query_row([id], raw_row)
        .optional()?
        .map(RawAlert::check)
        .transpose()
}

/// The highest alert id (0 if there is none).
pub fn max_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM alerts")?
        .query_row([], |r| r.get(0))?)
}

/// Move alert `id` to `to` as `actor`, with the audit entry. `note` is stored when resolving.
pub fn transition(
    conn: &Connection,
    id: i64,
    to: AlertState,
    actor: &str,
    note: Option<&str>,
    at: Timestamp,
) -> Result<Result<AlertView, Refusal>, StoreError> {
    let stored: Option<String> = conn
        .prepare_cached("SELECT state FROM alerts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(stored) = stored else {
        return Ok(Err(Refusal::NotFound));
    };
    let from = AlertState::from_name(&stored).ok_or_else(|| corrupt(id, "state"))?;
    if !from.can_become(to) {
        return Ok(Err(Refusal::Illegal { from, to }));
    }
    let at_ms = at.unix_ms();
    let (action, after) = match to {
        AlertState::Acknowledged => {
            conn.prepare_cached(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?2,
                     acknowledged_at_ms = ?3 WHERE id = ?1",
            )?
            .execute(params![id, actor, at_ms])?;
            ("alert.acknowledge", json!({ "state": to }))
        }
        AlertState::Resolved => {
            conn.prepare_cached(
                "UPDATE alerts SET state = 'resolved', resolved_by = ?2, resolved_at_ms = ?3,
                     resolution_note = ?4 WHERE id = ?1",
            )?
            .execute(params![id, actor, at_ms, note])?;
            ("alert.resolve", json!({ "state": to, "note": note }))
        }
        // `can_become` never leads back to open.
        AlertState::Open => return Ok(Err(Refusal::Illegal { from, to })),
    };
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action,
            subject: format!("alert:{id}"),
            before: Some(json!({ "state": from })),
            after: Some(after),
        },
    )?;
    let view = one(conn, id)?.ok_or(StoreError::NotFound)?;
    Ok(Ok(view))
}

/// Alerts per kind, every kind listed (zero where there are none).
pub fn counts(conn: &Connection) -> Result<AlertCounts, StoreError> {
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

impl Store {
    /// Alerts matching `filter`, newest first.
    pub async fn alerts(
        &self,
        _cap: &AlertReaderCap,
        filter: AlertFilter,
    ) -> Result<Vec<AlertView>, StoreError> {
        self.read(move |c| list(c, &filter)).await
    }

    /// One alert.
    pub async fn alert(&self, _cap: &AlertReaderCap, id: i64) -> Result<AlertView, StoreError> {
        self.read(move |c| one(c, id)?.ok_or(StoreError::NotFound))
            .await
    }

    /// The highest alert id (0 if none).
    pub async fn max_alert_id(&self, _cap: &AlertReaderCap) -> Result<i64, StoreError> {
        self.read(max_id).await
    }

    /// open → acknowledged, audited.
    pub async fn acknowledge_alert(
        &self,
        cap: &AlertHandlerCap,
        id: i64,
        at: Timestamp,
    ) -> Result<Result<AlertView, Refusal>, StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| transition(c, id, AlertState::Acknowledged, &actor, None, at))
            .await
    }

    /// open or acknowledged → resolved with `note`, audited.
    pub async fn resolve_alert(
        &self,
        cap: &AlertHandlerCap,
        id: i64,
        note: String,
        at: Timestamp,
    ) -> Result<Result<AlertView, Refusal>, StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| transition(c, id, AlertState::Resolved, &actor, Some(&note), at))
            .await
    }

    /// Alert counts per kind (for `/metrics`).
    pub async fn alert_counts(&self) -> Result<AlertCounts, StoreError> {
        self.read(counts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{NewAlert, cause};
    use crate::store::alerts::raise;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        conn
    }

    fn at(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix).unwrap()
    }

    fn raise_kind(conn: &Connection, kind: AlertKind, n: &str, at_ms: i64) -> i64 {
        raise(conn, &NewAlert::new(kind, cause(kind, &[("n", n)]), at_ms))
            .unwrap()
            .id()
    }

    #[test]
    fn lists_are_newest_first_and_filtered() {
        let conn = db();
        let a = raise_kind(&conn, AlertKind::UnknownTag, "1", 1_000);
        let b = raise_kind(&conn, AlertKind::Overdue, "2", 2_000);
        let c = raise_kind(&conn, AlertKind::UnknownTag, "3", 3_000);
        let ids = |f: AlertFilter| -> Vec<String> {
            list(&conn, &AlertFilter { limit: 10, ..f })
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
        let two = list(
            &conn,
            &AlertFilter {
                limit: 2,
                ..AlertFilter::default()
            },
        )
        .unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(max_id(&conn).unwrap(), c);
    }

    #[test]
    fn transitions_follow_the_lifecycle_and_are_audited() {
        let conn = db();
        let id = raise_kind(&conn, AlertKind::UnknownTag, "1", 1_000);
        let view = transition(&conn, id, AlertState::Acknowledged, "g", None, at(10))
            .unwrap()
            .unwrap();
        assert_eq!(view.state, AlertState::Acknowledged);
        assert_eq!(view.acknowledged_by.as_deref(), Some("g"));
        assert_eq!(view.acknowledged_at, Some(at(10)));
        assert_eq!(
            transition(&conn, id, AlertState::Acknowledged, "g", None, at(11)).unwrap(),
            Err(Refusal::Illegal {
                from: AlertState::Acknowledged,
                to: AlertState::Acknowledged
            })
        );
        let view = transition(
            &conn,
            id,
            AlertState::Resolved,
            "s",
            Some("found it"),
            at(12),
        )
        .unwrap()
        .unwrap();
        assert_eq!(view.state, AlertState::Resolved);
        assert_eq!(view.note.as_deref(), Some("found it"));
        assert_eq!(
            transition(&conn, id, AlertState::Resolved, "s", Some("x"), at(13)).unwrap(),
            Err(Refusal::Illegal {
                from: AlertState::Resolved,
                to: AlertState::Resolved
            })
        );
        assert_eq!(
            transition(&conn, 999, AlertState::Resolved, "s", Some("x"), at(13)).unwrap(),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            crate::audit::count(&conn).unwrap(),
            2,
            "one entry per change"
        );
    }

    #[test]
    fn counts_list_every_kind() {
        let conn = db();
        let id = raise_kind(&conn, AlertKind::Overdue, "1", 1_000);
        raise_kind(&conn, AlertKind::Overdue, "2", 1_000);
        transition(&conn, id, AlertState::Resolved, "s", Some("ok"), at(1))
            .unwrap()
            .unwrap();
        let counts = counts(&conn).unwrap();
        assert_eq!(counts.raised.len(), AlertKind::ALL.len());
        assert!(counts.raised.contains(&(AlertKind::Overdue, 2)));
        assert!(counts.live.contains(&(AlertKind::Overdue, 1)));
        assert!(counts.live.contains(&(AlertKind::Missing, 0)));
    }
}
