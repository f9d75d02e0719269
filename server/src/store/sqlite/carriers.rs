//! [`CarrierRows`] over SQLite.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::json;

use super::constraint;
use super::paging;
use super::{LIVE_CLAIMS, SqliteTx, level_column, ms_column, required_ms_column};
use crate::domain::carrier::{ControlNo, NewCarrier, Tag};
use crate::domain::ids::{CarrierId, DeviceId, PersonId, SignoutId};
use crate::domain::page::{PageRequest, SortValue, search_words};
use crate::domain::secrecy;
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::carriers::{
    CarrierFilter, CarrierRows, CarrierSummary, HistoryItem, Holder, LastSeen, ShelfCarrier,
    SignoutBrief, TagView,
};

const SUMMARY_SELECT: &str = "SELECT c.id, c.control_no, c.kind, c.level, c.copy_no, c.copies,
        c.owner_unit, c.home_device, c.state, c.holder, p.name, c.missing_since_ms,
        c.last_seen_device, c.last_seen_at_ms, c.created_at,
        so.id, so.state, so.may_leave, so.due_at_ms, c.original_id, c.secrecy_years,
        EXISTS (SELECT 1 FROM repairs r WHERE r.carrier_id = c.id AND r.returned_at IS NULL)
     FROM carriers c
     LEFT JOIN people p ON p.id = c.holder
     LEFT JOIN (SELECT carrier_id, max(signout_id) AS signout_id FROM (";

fn summary_sql(condition: &str) -> String {
    format!(
        "{SUMMARY_SELECT}{LIVE_CLAIMS}) GROUP BY carrier_id) claim ON claim.carrier_id = c.id
         LEFT JOIN signouts so ON so.id = claim.signout_id
         WHERE {condition} ORDER BY c.id"
    )
}

fn summary_row(r: &Row<'_>) -> rusqlite::Result<CarrierSummary> {
    let control_no: String = r.get(1)?;
    let label = ControlNo::new(&control_no)
        .map(|c| c.label())
        .unwrap_or_default();
    let holder = match (r.get::<_, Option<PersonId>>(9)?, r.get(10)?) {
        (Some(id), Some(name)) => Some(Holder { id, name }),
        _ => None,
    };
    let last_seen = match (r.get::<_, Option<String>>(12)?, ms_column(r, 13)?) {
        (Some(device_id), Some(at)) => Some(LastSeen { device_id, at }),
        _ => None,
    };
    let signout = match r.get::<_, Option<SignoutId>>(15)? {
        Some(id) => Some(SignoutBrief {
            id,
            state: r.get(16)?,
            may_leave: r.get(17)?,
            due_at: required_ms_column(r, 18)?,
        }),
        None => None,
    };
    let level = level_column(r, 3)?;
    Ok(CarrierSummary {
        id: r.get(0)?,
        control_no,
        label,
        kind: r.get(2)?,
        level,
        copy_no: r.get(4)?,
        copies: r.get(5)?,
        owner_unit: r.get(6)?,
        home_device: r.get(7)?,
        state: r.get(8)?,
        holder,
        missing_since: ms_column(r, 11)?,
        last_seen,
        signout,
        tags: Vec::new(),
        created_at: r.get(14)?,
        original_id: r.get(19)?,
        secrecy_years: secrecy::effective_years(level, r.get(20)?),
        in_repair: r.get(21)?,
    })
}

fn tags_of(conn: &Connection, id: CarrierId) -> Result<Vec<TagView>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT tag FROM carrier_tags WHERE carrier_id = ?1 ORDER BY rowid")?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    Ok(rows
        .map(|t| t.map(TagView::from_stored))
        .collect::<Result<_, _>>()?)
}

fn with_tags(
    conn: &Connection,
    mut summaries: Vec<CarrierSummary>,
) -> Result<Vec<CarrierSummary>, StoreError> {
    for s in &mut summaries {
        s.tags = tags_of(conn, s.id)?;
    }
    Ok(summaries)
}

/// The carrier a reported tag belongs to: its `carrier_tags` row, or for a Custos label
/// barcode (`barcode:CU…`) that is not registered as a tag, the carrier with that control
/// number.
fn carrier_for_tag(conn: &Connection, tag: &Tag) -> Result<Option<CarrierId>, StoreError> {
    let by_tag: Option<CarrierId> = conn
        .prepare_cached("SELECT carrier_id FROM carrier_tags WHERE tag = ?1")?
        .query_row([tag.to_string()], |r| r.get(0))
        .optional()?;
    if by_tag.is_some() {
        return Ok(by_tag);
    }
    let Some(control_no) = tag.labelled_control_no() else {
        return Ok(None);
    };
    Ok(conn
        .prepare_cached("SELECT id FROM carriers WHERE control_no = ?1")?
        .query_row([control_no], |r| r.get(0))
        .optional()?)
}

fn insert(conn: &Connection, carrier: &NewCarrier, at: Timestamp) -> Result<CarrierId, StoreError> {
    conn.prepare_cached(
        "INSERT INTO carriers (control_no, kind, level, title, copy_no, copies, owner_unit,
                               home_device, state, created_at, secrecy_years)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'in_storage', ?9, ?10)",
    )?
    .execute(params![
        carrier.control_no.as_str(),
        carrier.kind,
        carrier.level.code(),
        carrier.title,
        carrier.copy_no,
        carrier.copies,
        carrier.owner_unit,
        carrier.home_device,
        at,
        carrier.secrecy_years
    ])
    .map_err(|e| constraint(e, "control_no", "home_device"))?;
    let id = CarrierId(conn.last_insert_rowid());
    for tag in &carrier.tags {
        conn.prepare_cached("INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)")?
            .execute(params![tag.to_string(), id])
            .map_err(|e| constraint(e, "tag", "carrier"))?;
    }
    Ok(id)
}

/// The `WHERE` condition of a register search, pushing its parameters onto `params`: the
/// state, and each search word as a substring (any case) of the control number, the title,
/// the owning unit, the holder's name or department (`p`), or a tag. `instr` rather than an
/// FTS index: Chinese titles have no spaces between words, and a word is often two
/// characters, below a trigram index's minimum.
fn search_condition(filter: &CarrierFilter, params: &mut Vec<Value>) -> String {
    let mut parts = vec!["1".to_owned()];
    if let Some(state) = filter.state {
        params.push(Value::Text(state.as_str().to_owned()));
        parts.push(format!("c.state = ?{}", params.len()));
    }
    for word in search_words(filter.q.as_deref().unwrap_or(""), WORDS_MAX) {
        params.push(Value::Text(word));
        let n = params.len();
        let contains = |column: &str| format!("instr(lower({column}), lower(?{n})) > 0");
        parts.push(format!(
            "({} OR {} OR {} OR {} OR {} OR EXISTS (SELECT 1 FROM carrier_tags t
                 WHERE t.carrier_id = c.id AND {}))",
            contains("c.control_no"),
            contains("c.title"),
            contains("c.owner_unit"),
            contains("coalesce(p.name, '')"),
            contains("coalesce(p.department, '')"),
            contains("t.tag"),
        ));
    }
    parts.join(" AND ")
}

/// The most words of a search that are matched.
const WORDS_MAX: usize = 8;

fn list(conn: &Connection, filter: &CarrierFilter) -> Result<Vec<CarrierSummary>, StoreError> {
    let mut params = Vec::new();
    let sql = summary_sql(&search_condition(filter, &mut params));
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(params), summary_row)?;
    let summaries = rows.collect::<Result<Vec<_>, _>>()?;
    with_tags(conn, summaries)
}

/// The SQL value of a sort key of [`crate::store::carriers::CARRIER_SORT_KEYS`] (never NULL).
fn sort_expr(key: &str) -> &'static str {
    match key {
        "control_no" => "c.control_no",
        "level" => "CASE c.level WHEN 'TS' THEN 3 WHEN 'S' THEN 2 WHEN 'C' THEN 1 ELSE 0 END",
        "state" => "c.state",
        "holder" => "coalesce(p.name, '')",
        "owner_unit" => "c.owner_unit",
        _ => "c.id",
    }
}

fn page(
    conn: &Connection,
    filter: &CarrierFilter,
    page: &PageRequest,
) -> Result<Vec<(CarrierSummary, SortValue, i64)>, StoreError> {
    let mut params = Vec::new();
    let condition = search_condition(filter, &mut params);
    let expr = sort_expr(page.sort.key.name);
    let (after, order) = paging::keyset(expr, "c.id", page, &mut params);
    let sql = format!(
        "SELECT c.id, {expr} FROM carriers c LEFT JOIN people p ON p.id = c.holder
         WHERE {condition} AND {after} {order}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let keys = stmt
        .query_map(params_from_iter(params), |r| {
            Ok((r.get::<_, CarrierId>(0)?, r.get::<_, Value>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    keys.into_iter()
        .map(|(id, key)| Ok((summary(conn, id)?, paging::sort_value(key), id.0)))
        .collect()
}

fn history(conn: &Connection, id: CarrierId) -> Result<Vec<HistoryItem>, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM carriers WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    // (ms, rank within the same instant, item)
    let mut items: Vec<(i64, u8, HistoryItem)> = Vec::new();
    let at = |ms: i64| Ok::<_, StoreError>(super::stored_time(ms, "history"));

    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, kind, device_id, direction FROM carrier_events
         WHERE carrier_id = ?1 ORDER BY at_ms, event_id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for row in rows {
        let (ms, kind, device_id, direction) = row?;
        let t = at(ms)?;
        let item = match kind.as_str() {
            "passage" => HistoryItem::Passage {
                at: t,
                device_id,
                direction,
            },
            "turned_back" => HistoryItem::TurnedBack {
                at: t,
                device_id,
                direction,
            },
            "cabinet" => HistoryItem::Cabinet {
                at: t,
                device_id,
                direction,
            },
            "scan" => HistoryItem::Scan { at: t, device_id },
            other => return Err(StoreError::Corrupt(format!("carrier event kind {other:?}"))),
        };
        items.push((ms, 5, item));
    }

    let mut stmt = conn.prepare_cached(
        "SELECT so.id, so.state, so.created_at, so.issued_at_ms, so.closed_at_ms,
                sc.returned_at_ms, sc.returned_by
         FROM signout_carriers sc JOIN signouts so ON so.id = sc.signout_id
         WHERE sc.carrier_id = ?1",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, SignoutId>(0)?,
            r.get::<_, SignoutState>(1)?,
            r.get::<_, Timestamp>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let signout = |at, signout_id, event, by| HistoryItem::Signout {
        at,
        signout_id,
        event,
        by,
    };
    for row in rows {
        let (sid, state, created, issued, closed, returned, returned_by) = row?;
        items.push((
            created.unix_ms(),
            0,
            signout(created, sid, "requested", None),
        ));
        if let Some(ms) = issued {
            items.push((ms, 2, signout(at(ms)?, sid, "issued", None)));
        }
        if let Some(ms) = returned {
            items.push((ms, 3, signout(at(ms)?, sid, "returned", returned_by)));
        }
        if let (SignoutState::Cancelled, Some(ms)) = (state, closed) {
            items.push((ms, 4, signout(at(ms)?, sid, "cancelled", None)));
        }
        if let (SignoutState::Rejected, Some(ms)) = (state, closed) {
            items.push((ms, 4, signout(at(ms)?, sid, "rejected", None)));
        }
    }

    let mut stmt = conn.prepare_cached(
        "SELECT a.signout_id, a.at, u.username
         FROM signout_approvals a
         JOIN signout_carriers sc ON sc.signout_id = a.signout_id
         JOIN users u ON u.id = a.approver
         WHERE sc.carrier_id = ?1",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, SignoutId>(0)?,
            r.get::<_, Timestamp>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (sid, when, approver) = row?;
        items.push((
            when.unix_ms(),
            1,
            signout(when, sid, "approved", Some(approver)),
        ));
    }

    let mut stmt = conn.prepare_cached(
        "SELECT id, raised_at_ms, kind, state FROM alerts WHERE carrier_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (alert_id, ms, kind, state) = row?;
        items.push((
            ms,
            6,
            HistoryItem::Alert {
                at: at(ms)?,
                alert_id: alert_id.to_string(),
                kind,
                state,
            },
        ));
    }
    // Stable: equal instants keep the order above (sign-out steps in their natural order).
    items.sort_by_key(|(ms, rank, _)| (*ms, *rank));
    Ok(items.into_iter().map(|(_, _, item)| item).collect())
}

/// Control numbers and levels of carriers, for audit entries (never titles).
fn audit_names(conn: &Connection, ids: &[CarrierId]) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut stmt =
        conn.prepare_cached("SELECT control_no, level, kind FROM carriers WHERE id = ?1")?;
    for id in ids {
        let (control_no, level, kind): (String, String, String) = stmt
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?
            .ok_or(StoreError::UnknownReference { what: "carrier" })?;
        out.push(json!({"id": id, "control_no": control_no, "level": level, "kind": kind}));
    }
    Ok(out)
}

/// One carrier without its title.
fn summary(conn: &Connection, id: CarrierId) -> Result<CarrierSummary, StoreError> {
    let found = conn
        .prepare_cached(&summary_sql("c.id = ?1"))?
        .query_row([id], summary_row)
        .optional()?;
    with_tags(conn, found.into_iter().collect())?
        .pop()
        .ok_or(StoreError::NotFound)
}

impl CarrierRows for SqliteTx<'_> {
    fn carrier_audit_names(
        &mut self,
        ids: &[CarrierId],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        audit_names(self.conn(), ids)
    }

    fn carrier_summary(&mut self, id: CarrierId) -> Result<CarrierSummary, StoreError> {
        summary(self.conn(), id)
    }

    fn carrier_title(&mut self, id: CarrierId) -> Result<String, StoreError> {
        self.conn()
            .prepare_cached("SELECT title FROM carriers WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn carrier_summaries(
        &mut self,
        filter: &CarrierFilter,
    ) -> Result<Vec<CarrierSummary>, StoreError> {
        list(self.conn(), filter)
    }

    fn carrier_page(
        &mut self,
        filter: &CarrierFilter,
        request: &PageRequest,
    ) -> Result<Vec<(CarrierSummary, SortValue, i64)>, StoreError> {
        page(self.conn(), filter, request)
    }

    fn carrier_for_tag(&mut self, tag: &Tag) -> Result<Option<CarrierId>, StoreError> {
        carrier_for_tag(self.conn(), tag)
    }

    fn insert_carrier(
        &mut self,
        carrier: &NewCarrier,
        at: Timestamp,
    ) -> Result<CarrierId, StoreError> {
        insert(self.conn(), carrier, at)
    }

    fn set_secrecy_years(&mut self, id: CarrierId, years: u32) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached("UPDATE carriers SET secrecy_years = ?2 WHERE id = ?1")?
            .execute(params![id, years])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn carrier_history(&mut self, id: CarrierId) -> Result<Vec<HistoryItem>, StoreError> {
        history(self.conn(), id)
    }

    fn carriers_at_home(&mut self, cabinet: &DeviceId) -> Result<Vec<ShelfCarrier>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, control_no, level, state, home_device, NULL FROM carriers
             WHERE home_device = ?1 AND state = 'in_storage' ORDER BY control_no",
        )?;
        let rows = stmt.query_map([cabinet], shelf_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn carriers_reported(&mut self, cabinet: &DeviceId) -> Result<Vec<ShelfCarrier>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id, c.control_no, c.level, c.state, c.home_device, cc.since_ms
             FROM cabinet_contents cc JOIN carriers c ON c.id = cc.carrier_id
             WHERE cc.device_id = ?1 ORDER BY c.control_no",
        )?;
        let rows = stmt.query_map([cabinet], shelf_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_carrier_number(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM carriers")?
            .query_row([], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(1))
    }
}

fn shelf_row(r: &Row<'_>) -> rusqlite::Result<ShelfCarrier> {
    Ok(ShelfCarrier {
        id: r.get(0)?,
        control_no: r.get(1)?,
        level: level_column(r, 2)?,
        state: r.get(3)?,
        home_device: r.get(4)?,
        since: ms_column(r, 5)?,
    })
}
