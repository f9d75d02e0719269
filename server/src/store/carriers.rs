//! The register of carriers and their tags, and each carrier's history.
//!
//! # Titles
//! A carrier's title can itself be classified. It is read by exactly one query
//! ([`title`]) and only for [`Carrier`], the view of custodians and security officers; every
//! other view ([`CarrierSummary`], what a guard sees) is built from queries that never select
//! it, and no audit entry, error or log line carries it.
//!
//! # Tags
//! `carrier_tags.tag` holds the normalised form of [`Tag`]. [`carrier_for_tag`] is the one
//! lookup every reader path uses (desk lookups here, scans and sightings in ingest): a tag row,
//! or failing that a Custos label barcode (`CU…`), which always names its carrier through the
//! control number even when nobody registered the label as a tag.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};
use serde::Serialize;
use serde_json::json;

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::capability::CustodyReader;
use crate::auth::capability::{CustodianCap, GuardCap};
use crate::domain::carrier::{
    CarrierKind, CarrierRuleError, CarrierState, ControlNo, NewCarrier, Tag, check_home,
    level_from_code,
};
use crate::domain::device::DeviceKind;
use crate::domain::ids::{CarrierId, PersonId, SignoutId};
use crate::domain::level::Level;
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;

fn invalid(what: &str, text: &str) -> FromSqlError {
    FromSqlError::Other(format!("invalid stored {what}: {text:?}").into())
}

macro_rules! name_sql {
    ($ty:ty, $what:literal) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::from_name(text).ok_or_else(|| invalid($what, text))
            }
        }
    };
}
name_sql!(CarrierKind, "carrier kind");
name_sql!(CarrierState, "carrier state");
name_sql!(SignoutState, "sign-out state");

/// Read a level code column (`TS`, `S`, `C`).
pub(crate) fn level_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Level> {
    let text: String = r.get(idx)?;
    level_from_code(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(invalid("level", &text)),
        )
    })
}

/// Read an optional `*_ms` column as a [`Timestamp`].
pub(crate) fn ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    let ms: Option<i64> = r.get(idx)?;
    ms.map(|ms| {
        Timestamp::from_unix_ms(ms).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                idx,
                rusqlite::types::Type::Integer,
                Box::new(invalid("time", &ms.to_string())),
            )
        })
    })
    .transpose()
}

/// Read a NOT NULL `*_ms` column as a [`Timestamp`].
pub(crate) fn required_ms_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    ms_column(r, idx)?.ok_or(rusqlite::Error::InvalidColumnType(
        idx,
        "NULL time".to_owned(),
        rusqlite::types::Type::Null,
    ))
}

/// The sign-outs that still claim a carrier: requested or approved ones, and out ones the
/// carrier has not come back from. (Columns: `carrier_id`, `signout_id`.)
pub(crate) const LIVE_CLAIMS: &str = "SELECT sc.carrier_id, sc.signout_id
     FROM signout_carriers sc JOIN signouts so ON so.id = sc.signout_id
     WHERE so.state IN ('requested', 'approved')
        OR (so.state = 'out' AND sc.returned_at_ms IS NULL)";

/// The person holding a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Holder {
    /// Person id.
    pub id: PersonId,
    /// Name.
    pub name: String,
}

/// Where and when a reader last saw the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LastSeen {
    /// The device.
    pub device_id: String,
    /// When.
    pub at: Timestamp,
}

/// The live sign-out claiming a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignoutBrief {
    /// Sign-out id.
    pub id: SignoutId,
    /// Its state.
    pub state: SignoutState,
    /// Whether the carrier may leave the secure area.
    pub may_leave: bool,
    /// Due back.
    pub due_at: Timestamp,
}

/// A tag as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TagView {
    /// Normalised tag, `epc:HEX`, `barcode:TEXT` or `em:HEX`.
    pub tag: String,
    /// For an EPC with a known TDS header: its GS1 pure-identity URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl TagView {
    fn from_stored(tag: String) -> TagView {
        let uri = Tag::parse(&tag).ok().and_then(|t| t.pure_identity_uri());
        TagView { tag, uri }
    }
}

/// A carrier without its title: what a guard may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CarrierSummary {
    /// Id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// The label text printed for the control number (`CU…`).
    pub label: String,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Number of copies.
    pub copies: Option<u32>,
    /// Owning unit.
    pub owner_unit: String,
    /// Home cabinet.
    pub home_device: Option<String>,
    /// State.
    pub state: CarrierState,
    /// Who holds it (while out).
    pub holder: Option<Holder>,
    /// Missing since.
    pub missing_since: Option<Timestamp>,
    /// Last sighting.
    pub last_seen: Option<LastSeen>,
    /// The live sign-out claiming it.
    pub signout: Option<SignoutBrief>,
    /// Tags.
    pub tags: Vec<TagView>,
    /// Registered at.
    pub created_at: Timestamp,
}

/// A carrier with its title: for custodians and security officers only. `Debug` redacts the
/// title, so a stray log line cannot carry it.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Carrier {
    /// Everything but the title.
    #[serde(flatten)]
    pub summary: CarrierSummary,
    /// The title.
    pub title: String,
}

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carrier")
            .field("summary", &self.summary)
            .field("title", &"<redacted>")
            .finish()
    }
}

/// Filters of `GET /carriers`.
#[derive(Debug, Clone, Default)]
pub struct CarrierFilter {
    /// Only carriers in this state.
    pub state: Option<CarrierState>,
    /// Substring (any case) of the control number or of a tag.
    pub q: Option<String>,
}

const SUMMARY_SELECT: &str = "SELECT c.id, c.control_no, c.kind, c.level, c.copy_no, c.copies,
        c.owner_unit, c.home_device, c.state, c.holder, p.name, c.missing_since_ms,
        c.last_seen_device, c.last_seen_at_ms, c.created_at,
        so.id, so.state, so.may_leave, so.due_at_ms
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
    Ok(CarrierSummary {
        id: r.get(0)?,
        control_no,
        label,
        kind: r.get(2)?,
        level: level_column(r, 3)?,
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

/// One carrier without its title.
pub fn summary(conn: &Connection, id: CarrierId) -> Result<Option<CarrierSummary>, StoreError> {
    let found = conn
        .prepare_cached(&summary_sql("c.id = ?1"))?
        .query_row([id], summary_row)
        .optional()?;
    Ok(with_tags(conn, found.into_iter().collect())?.pop())
}

/// The title of a carrier: the only query that reads it.
fn title(conn: &Connection, id: CarrierId) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT title FROM carriers WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

fn full(conn: &Connection, summary: CarrierSummary) -> Result<Carrier, StoreError> {
    let title = title(conn, summary.id)?;
    Ok(Carrier { summary, title })
}

/// The carrier a reported tag belongs to: its `carrier_tags` row, or for a Custos label
/// barcode (`barcode:CU…`) that is not registered as a tag, the carrier with that control
/// number. The lookup ingest uses for scans and sightings, so desks and readers agree.
pub fn carrier_for_tag(conn: &Connection, tag: &Tag) -> Result<Option<CarrierId>, StoreError> {
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

fn insert(
    conn: &Connection,
    actor: &str,
    carrier: &NewCarrier,
    at: Timestamp,
) -> Result<Result<CarrierId, CarrierRuleError>, StoreError> {
    if let Some(home) = &carrier.home_device {
        let kind: Option<DeviceKind> = conn
            .prepare_cached("SELECT kind FROM devices WHERE id = ?1")?
            .query_row([home], |r| r.get(0))
            .optional()?;
        let kind = kind.ok_or(StoreError::UnknownReference {
            what: "home_device",
        })?;
        if let Err(rule) = check_home(kind) {
            return Ok(Err(rule));
        }
    }
    conn.prepare_cached(
        "INSERT INTO carriers (control_no, kind, level, title, copy_no, copies, owner_unit,
                               home_device, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'in_storage', ?9)",
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
        at
    ])
    .map_err(|e| constraint(e, "control_no", "home_device"))?;
    let id = CarrierId(conn.last_insert_rowid());
    let tags: Vec<String> = carrier.tags.iter().map(Tag::to_string).collect();
    for tag in &tags {
        conn.prepare_cached("INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)")?
            .execute(params![tag, id])
            .map_err(|e| constraint(e, "tag", "carrier"))?;
    }
    // No title: the audit trail names carriers by control number, level and kind.
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "carrier.create",
            subject: format!("carrier:{id}"),
            before: None,
            after: Some(json!({
                "id": id,
                "control_no": carrier.control_no,
                "kind": carrier.kind,
                "level": carrier.level,
                "copy_no": carrier.copy_no,
                "copies": carrier.copies,
                "owner_unit": carrier.owner_unit,
                "home_device": carrier.home_device,
                "tags": tags,
            })),
        },
    )?;
    Ok(Ok(id))
}

fn list(conn: &Connection, filter: &CarrierFilter) -> Result<Vec<CarrierSummary>, StoreError> {
    let sql = summary_sql(
        "(?1 IS NULL OR c.state = ?1)
         AND (?2 IS NULL OR instr(upper(c.control_no), upper(?2)) > 0
              OR EXISTS (SELECT 1 FROM carrier_tags t
                         WHERE t.carrier_id = c.id AND instr(upper(t.tag), upper(?2)) > 0))",
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![filter.state, filter.q], summary_row)?;
    let summaries = rows.collect::<Result<Vec<_>, _>>()?;
    with_tags(conn, summaries)
}

/// One entry of a carrier's history (`GET /carriers/{id}/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryItem {
    /// Passed a gate.
    Passage {
        /// When.
        at: Timestamp,
        /// The gate.
        device_id: String,
        /// `in` or `out` of the secure area.
        direction: Option<String>,
    },
    /// Reached the far side of a gate in a passage (the `passage` entry just before) and went
    /// back where it came from: it did not pass.
    TurnedBack {
        /// When it was back.
        at: Timestamp,
        /// The gate.
        device_id: String,
        /// The direction of the passage it did not complete: `in` or `out`.
        direction: Option<String>,
    },
    /// Seen arriving in or leaving a cabinet.
    Cabinet {
        /// When.
        at: Timestamp,
        /// The cabinet.
        device_id: String,
    },
    /// Scanned at a desk or handheld.
    Scan {
        /// When.
        at: Timestamp,
        /// The desk.
        device_id: String,
    },
    /// A step of a sign-out it was on.
    Signout {
        /// When.
        at: Timestamp,
        /// The sign-out.
        signout_id: SignoutId,
        /// `requested`, `approved`, `issued`, `returned` or `cancelled`.
        event: &'static str,
        /// Who: `user:NAME` or `device:ID` for returns, the approver's username for approvals.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// An alert about it was raised.
    Alert {
        /// When.
        at: Timestamp,
        /// The alert.
        alert_id: String,
        /// Its kind.
        kind: String,
        /// Its state now.
        state: String,
    },
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
    let at = |ms: i64| {
        Timestamp::from_unix_ms(ms)
            .ok_or_else(|| StoreError::Corrupt(format!("time out of range: {ms}")))
    };

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
            "cabinet" => HistoryItem::Cabinet { at: t, device_id },
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

/// Reading and writing carriers.
pub trait CarrierRows {
    /// Id, control number, level and kind of each carrier, for audit entries (never the
    /// title); an unknown id is `UnknownReference { what: "carrier" }`.
    fn carrier_audit_names(
        &mut self,
        ids: &[CarrierId],
    ) -> Result<Vec<serde_json::Value>, StoreError>;
}

/// Control numbers and levels of carriers, for audit entries (never titles).
pub(crate) fn audit_names(
    conn: &Connection,
    ids: &[CarrierId],
) -> Result<Vec<serde_json::Value>, StoreError> {
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

impl Store {
    /// Register a carrier and its tags, with the audit entry (no title in it). The inner
    /// error is a rule the registration breaks (a home device that is not a cabinet).
    pub async fn create_carrier(
        &self,
        cap: &CustodianCap,
        carrier: NewCarrier,
        at: Timestamp,
    ) -> Result<Result<CarrierId, CarrierRuleError>, StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| insert(c, &actor, &carrier, at)).await
    }

    /// One carrier with its title.
    pub async fn carrier(
        &self,
        _cap: &CustodyReader,
        id: CarrierId,
    ) -> Result<Carrier, StoreError> {
        self.read(move |c| {
            let s = summary(c, id)?.ok_or(StoreError::NotFound)?;
            full(c, s)
        })
        .await
    }

    /// Carriers matching `filter`, by id, with titles.
    pub async fn carriers(
        &self,
        _cap: &CustodyReader,
        filter: CarrierFilter,
    ) -> Result<Vec<Carrier>, StoreError> {
        self.read(move |c| list(c, &filter)?.into_iter().map(|s| full(c, s)).collect())
            .await
    }

    /// The carrier a scanned tag belongs to, with its title (custodians).
    pub async fn carrier_by_tag(
        &self,
        _cap: &CustodianCap,
        tag: Tag,
    ) -> Result<Carrier, StoreError> {
        self.read(move |c| {
            let id = carrier_for_tag(c, &tag)?.ok_or(StoreError::NotFound)?;
            let s = summary(c, id)?.ok_or(StoreError::NotFound)?;
            full(c, s)
        })
        .await
    }

    /// The carrier a scanned tag belongs to, without its title (guards). The type has no
    /// title field, so a guard's answer cannot carry one.
    pub async fn carrier_summary_by_tag(
        &self,
        _cap: &GuardCap,
        tag: Tag,
    ) -> Result<CarrierSummary, StoreError> {
        self.read(move |c| {
            let id = carrier_for_tag(c, &tag)?.ok_or(StoreError::NotFound)?;
            summary(c, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    /// A carrier's history, oldest first.
    pub async fn carrier_history(
        &self,
        _cap: &CustodyReader,
        id: CarrierId,
    ) -> Result<Vec<HistoryItem>, StoreError> {
        self.read(move |c| history(c, id)).await
    }
}

#[cfg(test)]
pub(crate) fn tests_insert(conn: &Connection, carrier: &NewCarrier, at: Timestamp) -> CarrierId {
    insert(conn, "test", carrier, at).unwrap().unwrap()
}
