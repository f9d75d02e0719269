//! Carriers counted and called in: stocktakes (清点), year-end collections (年底收缴) and
//! retention (保管期限). The rules are in [`crate::domain::moves`]; each use case here checks
//! its input once and runs one transaction with its audit entry.
//!
//! # Scans
//! A stocktake takes scans two ways: tags or typed control numbers posted to it
//! ([`scan`]), and, when it names a desk, every carrier that desk's daemon reported scanned
//! while the stocktake was open (read from the carrier history at each look, so a scan made
//! before the page reloads counts). Unknown tags are kept as scanned and listed unexpected.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::carrier::{ControlNo, Tag, TagError};
use crate::domain::ids::{
    CarrierId, CollectionId, DeviceId, PersonId, RepairId, StocktakeId, is_valid_label,
};
use crate::domain::moves::{
    self, CalledIn, CountedScan, DepartmentProgress, Outcome, Reconciliation, Resolution, ScopeKind,
};
use crate::domain::repair::{self, MediaHandling, RepairMode};
use crate::domain::time::{Date, Timestamp};
use crate::store::Tx;
use crate::store::moves::{
    CarrierLine, CollectionHead, CollectionItem, NewRepair, NewStocktake, RepairRow, ResolutionRow,
    RetentionLine, StocktakeHead,
};

/// The most tags one scan request may carry.
pub const MAX_SCANS: usize = 500;

// ---------------------------------------------------------------------------------------------
// Stocktakes

/// A stocktake as shown: what it counts, expected against seen, and how its discrepancies were
/// settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StocktakeView {
    /// The stocktake.
    #[serde(flatten)]
    pub head: StocktakeHead,
    /// `open` or `closed`.
    pub state: &'static str,
    /// The carriers it expected.
    pub expected_carriers: Vec<CarrierLine>,
    /// Expected against seen.
    pub result: Reconciliation,
    /// How its missing carriers were settled.
    pub resolutions: Vec<ResolutionRow>,
    /// Its scope in words, for pages and reports that show places and people, not ids
    /// (issue #15).
    pub scope_place: ScopePlace,
}

/// A stocktake's scope in words: the holder's name, the zone's name, or the cabinet's zone
/// (a cabinet is known by its device id and where it stands). A field is absent where the
/// record it names cannot be read (the scope was checked when the stocktake opened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScopePlace {
    /// The person's name (a holder's scope) or the zone's name (a zone's scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A cabinet's zone: its name, or its id when the zone has no row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// [`ScopePlace`] of `kind` and `scope_ref`, read in `tx`.
fn scope_place_in(
    tx: &mut dyn Tx,
    kind: ScopeKind,
    scope_ref: &str,
) -> Result<ScopePlace, ServiceError> {
    let zone_name = |tx: &mut dyn Tx, zone: &str| -> Result<Option<String>, ServiceError> {
        Ok(tx
            .zones()?
            .into_iter()
            .find(|z| z.id.as_str() == zone)
            .map(|z| z.name))
    };
    Ok(match kind {
        ScopeKind::Custodian => ScopePlace {
            name: match scope_ref.parse::<PersonId>() {
                Ok(id) => known(tx.person(id))?.map(|p| p.name),
                Err(_) => None,
            },
            zone: None,
        },
        ScopeKind::Zone => ScopePlace {
            name: zone_name(tx, scope_ref)?,
            zone: None,
        },
        ScopeKind::Device => {
            let zone = match DeviceId::new(scope_ref) {
                Ok(id) => known(tx.device(&id))?.and_then(|d| d.zone),
                Err(_) => None,
            };
            ScopePlace {
                name: None,
                zone: match zone {
                    Some(z) => Some(zone_name(tx, z.as_str())?.unwrap_or_else(|| z.to_string())),
                    None => None,
                },
            }
        }
    })
}

/// A row read by id, `None` when there is no such row.
fn known<T>(read: Result<T, crate::store::StoreError>) -> Result<Option<T>, ServiceError> {
    match read {
        Ok(row) => Ok(Some(row)),
        Err(crate::store::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Open a stocktake over a cabinet, a zone or a person's holdings; what it expects is fixed
/// now. An unknown cabinet, zone, person or desk is [`ServiceError::UnknownReference`].
pub async fn open_stocktake(
    app: &AppState,
    cap: &CustodianCap,
    new: NewStocktake,
) -> Result<StocktakeId, ServiceError> {
    if new.scope_ref.is_empty() || new.scope_ref.len() > 64 {
        return Err(ServiceError::invalid(
            "scope",
            "invalid",
            "scope must name one cabinet, zone or person",
        ));
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| open_stocktake_in(tx, &actor, &new, at))
        .await
}

fn open_stocktake_in(
    tx: &mut dyn Tx,
    actor: &str,
    new: &NewStocktake,
    at: Timestamp,
) -> Result<StocktakeId, ServiceError> {
    let expected = tx.stocktake_scope(new.scope_kind, &new.scope_ref)?;
    let id = tx.insert_stocktake(new, &expected, actor, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "stocktake.open",
        subject: format!("stocktake:{id}"),
        before: None,
        after: Some(json!({
            "scope": {new.scope_kind.as_str(): new.scope_ref},
            "desk_device": new.desk_device,
            "expected": expected,
        })),
    })?;
    Ok(id)
}

/// A scanned or typed text as a scan: a tag (`epc:`, `barcode:`, `em:`), a bare label barcode
/// or a typed control number; the carrier is looked up later.
fn scan_tag(text: &str) -> Result<Option<Tag>, TagError> {
    let text = text.trim();
    match Tag::parse(text) {
        Ok(tag) => Ok(Some(tag)),
        Err(TagError::UnknownScheme) => match ControlNo::new(text) {
            Ok(control) => Tag::barcode(&control.label()).map(Some),
            Err(_) => Ok(None),
        },
        Err(e) => Err(e),
    }
}

/// Check a scan request: 1 to [`MAX_SCANS`] texts, each printable and at most 200 characters.
pub fn check_scans(texts: &[String]) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    if texts.is_empty() || texts.len() > MAX_SCANS {
        problems.push(Problem {
            field: "tags",
            code: if texts.is_empty() {
                "empty"
            } else {
                "too_many"
            },
            message: "tags must list 1 to 500 scans",
        });
    } else if texts
        .iter()
        .any(|t| !is_valid_label(t) || scan_tag(t).is_err())
    {
        problems.push(Problem {
            field: "tags",
            code: "invalid",
            message: "each scan must be a tag (epc:, barcode:, em:) or a control number",
        });
    }
    Problem::none_or_invalid(problems)
}

/// Record scans in an open stocktake; the stocktake as it stands after them.
pub async fn scan(
    app: &AppState,
    cap: &CustodianCap,
    id: StocktakeId,
    texts: Vec<String>,
) -> Result<StocktakeView, ServiceError> {
    check_scans(&texts)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| scan_in(tx, &actor, id, &texts, at))
        .await
}

fn scan_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: StocktakeId,
    texts: &[String],
    at: Timestamp,
) -> Result<StocktakeView, ServiceError> {
    let head = tx.stocktake_head(id)?;
    moves::check_scan(head.closed_at.is_some())?;
    let mut recorded = Vec::new();
    for text in texts {
        let scan = match scan_tag(text) {
            Ok(Some(tag)) => CountedScan {
                carrier: tx.carrier_for_tag(&tag)?,
                tag: tag.to_string(),
            },
            _ => CountedScan {
                tag: text.trim().to_owned(),
                carrier: None,
            },
        };
        tx.insert_stocktake_scan(id, &scan, actor, at)?;
        recorded.push(json!({"tag": scan.tag, "carrier": scan.carrier}));
    }
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "stocktake.scan",
        subject: format!("stocktake:{id}"),
        before: None,
        after: Some(json!({ "scans": recorded })),
    })?;
    view_in(tx, id, at)
}

/// Close and sign a stocktake (the custodian who closes it signs it); expected against seen.
pub async fn close_stocktake(
    app: &AppState,
    cap: &CustodianCap,
    id: StocktakeId,
) -> Result<StocktakeView, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| close_stocktake_in(tx, &actor, id, at))
        .await
}

fn close_stocktake_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: StocktakeId,
    at: Timestamp,
) -> Result<StocktakeView, ServiceError> {
    let head = tx.stocktake_head(id)?;
    moves::check_scan(head.closed_at.is_some())?;
    // The desk's reads up to now count: record them as the stocktake's own scans, so the
    // signed result never changes afterwards.
    if let Some(desk) = &head.desk_device {
        for scan in tx.desk_scans(desk, head.opened_at, at)? {
            tx.insert_stocktake_scan(id, &scan, &format!("device:{desk}"), at)?;
        }
    }
    tx.close_stocktake(id, actor, at)?;
    let view = view_in(tx, id, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "stocktake.close",
        subject: format!("stocktake:{id}"),
        before: Some(json!({"state": "open"})),
        after: Some(json!({"state": "closed", "signed_by": actor, "result": view.result})),
    })?;
    Ok(view)
}

/// Settle one missing carrier of a closed stocktake: report it missing (its state becomes
/// `missing` now, with the incident record and the `missing` alert every other missing path
/// raises: [`crate::service::lifecycle::missing_in`]) or record a correction. The note says
/// why.
pub async fn resolve(
    app: &AppState,
    cap: &CustodianCap,
    id: StocktakeId,
    carrier: CarrierId,
    resolution: Resolution,
    note: String,
) -> Result<StocktakeView, ServiceError> {
    if !is_valid_label(&note) {
        return Err(ServiceError::invalid(
            "note",
            "invalid",
            "note must be 1 to 200 printable characters",
        ));
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let (view, alert) = app
        .store()
        .transact(move |tx| resolve_in(tx, &actor, id, carrier, resolution, &note, at))
        .await?;
    app.alerts().notify(alert);
    Ok(view)
}

fn resolve_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: StocktakeId,
    carrier: CarrierId,
    resolution: Resolution,
    note: &str,
    at: Timestamp,
) -> Result<(StocktakeView, Option<i64>), ServiceError> {
    let view = view_in(tx, id, at)?;
    let line = tx.carrier_line(carrier).map_err(|e| match e {
        crate::store::StoreError::NotFound => ServiceError::UnknownReference { what: "carrier" },
        other => other.into(),
    })?;
    let already = view.resolutions.iter().any(|r| r.carrier_id == carrier);
    moves::check_resolution(
        view.head.closed_at.is_some(),
        &view.result.missing,
        carrier,
        already,
        resolution,
        line.state,
    )?;
    let alert = if resolution == Resolution::Missing {
        let what = format!("stocktake {id}: {note}");
        Some(super::lifecycle::missing_in(tx, actor, carrier, &what, at)?.1)
    } else {
        None
    };
    tx.insert_stocktake_resolution(
        id,
        &ResolutionRow {
            carrier_id: carrier,
            resolution,
            note: note.to_owned(),
            resolved_by: actor.to_owned(),
            resolved_at: at,
        },
    )?;
    let names = tx.carrier_audit_names(&[carrier])?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "stocktake.resolve",
        subject: format!("stocktake:{id}"),
        before: Some(json!({"carrier": names, "state": line.state})),
        after: Some(json!({"resolution": resolution, "note": note})),
    })?;
    Ok((view_in(tx, id, at)?, alert))
}

fn view_in(
    tx: &mut dyn Tx,
    id: StocktakeId,
    now: Timestamp,
) -> Result<StocktakeView, ServiceError> {
    let head = tx.stocktake_head(id)?;
    let expected_carriers = tx.stocktake_expected(id)?;
    let mut scans = tx.stocktake_scans(id)?;
    if let (Some(desk), None) = (&head.desk_device, head.closed_at) {
        scans.extend(tx.desk_scans(desk, head.opened_at, now)?);
    }
    let expected: Vec<CarrierId> = expected_carriers.iter().map(|c| c.id).collect();
    let result = moves::reconcile(&expected, &scans);
    let scope_place = scope_place_in(tx, head.scope_kind, &head.scope_ref)?;
    Ok(StocktakeView {
        scope_place,
        state: if head.closed_at.is_some() {
            "closed"
        } else {
            "open"
        },
        resolutions: tx.stocktake_resolutions(id)?,
        head,
        expected_carriers,
        result,
    })
}

/// One stocktake.
pub async fn stocktake(
    app: &AppState,
    _reader: &CustodyReader,
    id: StocktakeId,
) -> Result<StocktakeView, ServiceError> {
    let now = app.now();
    app.store().query(move |tx| view_in(tx, id, now)).await
}

/// Every stocktake, newest first, each with its scope in words (for the pages' lists).
pub async fn stocktakes_with_places(
    app: &AppState,
    _reader: &CustodyReader,
) -> Result<Vec<(StocktakeHead, ScopePlace)>, ServiceError> {
    app.store()
        .query(|tx| {
            let heads = tx.stocktakes()?;
            heads
                .into_iter()
                .map(|h| {
                    let place = scope_place_in(tx, h.scope_kind, &h.scope_ref)?;
                    Ok((h, place))
                })
                .collect()
        })
        .await
}

/// Every stocktake, newest first.
pub async fn stocktakes(
    app: &AppState,
    _reader: &CustodyReader,
) -> Result<Vec<StocktakeHead>, ServiceError> {
    app.store().query(|tx| Ok(tx.stocktakes()?)).await
}

// ---------------------------------------------------------------------------------------------
// Year-end collections

/// A collection's report: progress per department and every carrier it called in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionReport {
    /// The collection.
    #[serde(flatten)]
    pub head: CollectionHead,
    /// Whether every carrier called in is closed.
    pub complete: bool,
    /// Progress per department.
    pub departments: Vec<DepartmentProgress>,
    /// Every carrier called in.
    pub items: Vec<CollectionItem>,
}

/// Open the collection of `year`: every carrier on loan now is called in.
pub async fn open_collection(
    app: &AppState,
    cap: &SecurityOfficerCap,
    year: i64,
) -> Result<CollectionId, ServiceError> {
    if !(2000..=9999).contains(&year) {
        return Err(ServiceError::invalid(
            "year",
            "invalid",
            "year must be from 2000 to 9999",
        ));
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let (id, notices) = app
        .store()
        .transact(move |tx| {
            let loans = tx.loans()?;
            let id = tx.insert_collection(year, &loans, &actor, at)?;
            tx.append_audit(&NewEntry {
                at,
                actor: actor.clone(),
                action: "collection.open",
                subject: format!("collection:{id}"),
                before: None,
                after: Some(json!({
                    "year": year,
                    "called_in": loans.iter().map(|l| l.carrier_id).collect::<Vec<_>>(),
                })),
            })?;
            let holders: Vec<_> = loans.iter().map(|l| l.holder).collect();
            let notices = tell_holders_in(tx, &actor, id, year, &holders, at)?;
            Ok::<_, ServiceError>((id, notices))
        })
        .await?;
    app.alerts().notify(notices);
    Ok(id)
}

/// Tell each holder of a called-in carrier that the collection wants it back: one
/// `collection_due` alert (a reminder) per holder, which the notifier routes like every alert
/// (e-mail to the routes that take the kind, e.g. `role:custodian`, in the daily digest;
/// webhooks at once, with the person's id). The alert ids.
fn tell_holders_in(
    tx: &mut dyn Tx,
    actor: &str,
    collection: CollectionId,
    year: i64,
    holders: &[Option<PersonId>],
    at: Timestamp,
) -> Result<Vec<i64>, ServiceError> {
    let mut ids = Vec::new();
    for (person, carriers) in moves::holders_to_tell(holders) {
        let (c, p) = (collection.to_string(), person.to_string());
        let kind = AlertKind::CollectionDue;
        let mut alert = NewAlert::new(
            kind,
            cause(kind, &[("collection", &c), ("person", &p)]),
            at.unix_ms(),
        );
        alert.person_id = Some(person.0);
        alert.detail = json!({"collection_id": c, "year": year, "carriers": carriers});
        ids.push(super::alerts::raise_in(tx, at, actor, &alert)?.id());
    }
    Ok(ids)
}

fn report_in(tx: &mut dyn Tx, id: CollectionId) -> Result<CollectionReport, ServiceError> {
    let head = tx.collection_head(id)?;
    let items = tx.collection_items(id)?;
    let called: Vec<CalledIn> = items
        .iter()
        .map(|i| CalledIn {
            department: i.department.clone(),
            on_loan: i.carrier.state == crate::domain::carrier::CarrierState::Out,
            outcome: i.outcome,
        })
        .collect();
    Ok(CollectionReport {
        head,
        complete: moves::is_complete(&called),
        departments: moves::progress(&called),
        items,
    })
}

/// A collection's report.
pub async fn collection(
    app: &AppState,
    _reader: &CustodyReader,
    id: CollectionId,
) -> Result<CollectionReport, ServiceError> {
    app.store().query(move |tx| report_in(tx, id)).await
}

/// Every collection, newest year first.
pub async fn collections(
    app: &AppState,
    _reader: &CustodyReader,
) -> Result<Vec<CollectionHead>, ServiceError> {
    app.store().query(|tx| Ok(tx.collections()?)).await
}

/// Close one called-in carrier as kept, archived or destroyed (archiving sets its state).
pub async fn close_item(
    app: &AppState,
    cap: &CustodianCap,
    id: CollectionId,
    carrier: CarrierId,
    outcome: Outcome,
) -> Result<CollectionReport, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| close_item_in(tx, &actor, id, carrier, outcome, at))
        .await
}

fn close_item_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: CollectionId,
    carrier: CarrierId,
    outcome: Outcome,
    at: Timestamp,
) -> Result<CollectionReport, ServiceError> {
    let report = report_in(tx, id)?;
    let item = report
        .items
        .iter()
        .find(|i| i.carrier.id == carrier)
        .ok_or(moves::MoveRuleError::NotCollected)?;
    let new_state = moves::close_item(item.outcome, item.carrier.state, outcome)?;
    if let Some(state) = new_state {
        tx.set_carrier_state(carrier, state)?;
    }
    tx.close_collection_item(id, carrier, outcome, actor, at)?;
    let names = tx.carrier_audit_names(&[carrier])?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "collection.close_item",
        subject: format!("collection:{id}"),
        before: Some(json!({"carrier": names, "state": item.carrier.state})),
        after: Some(json!({"outcome": outcome, "state": new_state.unwrap_or(item.carrier.state)})),
    })?;
    report_in(tx, id)
}

// ---------------------------------------------------------------------------------------------
// Retention

/// A carrier's retention date and distribution scope, and why they change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Kept until (保管期限); `null` for no date.
    pub retention_until: Option<Date>,
    /// Distribution scope (发放范围), 1 to 200 characters; `null` for none.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub distribution_scope: Option<String>,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub reason: String,
}

/// Set a carrier's retention date and distribution scope (the previous values stay in the
/// audit trail).
pub async fn set_retention(
    app: &AppState,
    cap: &CustodianCap,
    carrier: CarrierId,
    input: SetRetention,
) -> Result<RetentionLine, ServiceError> {
    let mut problems = Vec::new();
    if input
        .distribution_scope
        .as_deref()
        .is_some_and(|s| !is_valid_label(s))
    {
        problems.push(Problem {
            field: "distribution_scope",
            code: "invalid",
            message: "distribution_scope must be 1 to 200 printable characters",
        });
    }
    if !is_valid_label(&input.reason) {
        problems.push(Problem {
            field: "reason",
            code: "invalid",
            message: "reason must be 1 to 200 printable characters",
        });
    }
    Problem::none_or_invalid(problems)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let before = tx.retention(carrier)?;
            tx.set_retention(
                carrier,
                input.retention_until,
                input.distribution_scope.as_deref(),
            )?;
            tx.append_audit(&NewEntry {
                at,
                actor: actor.clone(),
                action: "carrier.retention",
                subject: format!("carrier:{carrier}"),
                before: Some(json!({
                    "retention_until": before.retention_until,
                    "distribution_scope": before.distribution_scope,
                })),
                after: Some(json!({
                    "retention_until": input.retention_until,
                    "distribution_scope": input.distribution_scope,
                    "reason": input.reason,
                })),
            })?;
            Ok(tx.retention(carrier)?)
        })
        .await
}

/// The carriers past their retention today, for archive or destruction.
pub async fn retention_review(
    app: &AppState,
    _reader: &CustodyReader,
) -> Result<Vec<RetentionLine>, ServiceError> {
    let today = app.now().date();
    app.store()
        .query(move |tx| {
            Ok(tx
                .retention_due(today)?
                .into_iter()
                .filter(|l| moves::past_retention(l.retention_until, l.carrier.state, today))
                .collect())
        })
        .await
}

/// Whether `device` may be a stocktake's desk is the store's business (an unknown id is
/// refused by its foreign key); this names the field for the pages.
pub fn desk_field(device: Option<&str>) -> Result<Option<DeviceId>, ServiceError> {
    match device.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(None),
        Some(d) => DeviceId::new(d).map(Some).map_err(|_| {
            ServiceError::invalid("desk_device", "invalid", "desk_device is not a device id")
        }),
    }
}

/// A scope as the API writes it: exactly one of a cabinet, a zone or a person.
pub fn scope_of(
    device_id: Option<String>,
    zone_id: Option<String>,
    custodian_id: Option<String>,
) -> Result<(ScopeKind, String), ServiceError> {
    match (device_id, zone_id, custodian_id) {
        (Some(d), None, None) => Ok((ScopeKind::Device, d)),
        (None, Some(z), None) => Ok((ScopeKind::Zone, z)),
        (None, None, Some(p)) => Ok((ScopeKind::Custodian, p)),
        _ => Err(ServiceError::invalid(
            "scope",
            "invalid",
            "scope must name exactly one of device_id, zone_id, custodian_id",
        )),
    }
}

/// The carriers named by scanned or typed texts (tags, label barcodes, control numbers), in
/// order and without repeats, and the texts that name none (for a form's error).
pub async fn carriers_by_text(
    app: &AppState,
    _cap: &CustodianCap,
    texts: Vec<String>,
) -> Result<(Vec<CarrierId>, Vec<String>), ServiceError> {
    app.store()
        .query(move |tx| {
            let mut found = Vec::new();
            let mut unknown = Vec::new();
            for text in texts.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                let id = match scan_tag(text) {
                    Ok(Some(tag)) => tx.carrier_for_tag(&tag)?,
                    _ => None,
                };
                match id {
                    Some(id) if !found.contains(&id) => found.push(id),
                    Some(_) => {}
                    None => unknown.push(text.to_owned()),
                }
            }
            Ok((found, unknown))
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Repair (维修)

/// Refuse a step over `ids` when any of them is out for repair (409 `in_repair`): the check
/// every use case that moves a carrier (sign-out, issue, copy, transfer, dispatch,
/// destruction) makes inside its transaction, through [`repair::check_available`].
pub(crate) fn refuse_in_repair(tx: &mut dyn Tx, ids: &[CarrierId]) -> Result<(), ServiceError> {
    repair::check_available(&tx.carriers_in_repair(ids)?)?;
    Ok(())
}

/// Refuse a dispatch over `ids` when any of them is out for repair on site (409 `in_repair`):
/// a carrier out for repair by dispatch goes to its repairer by that dispatch, through
/// [`repair::check_dispatchable`].
pub(crate) fn refuse_in_repair_for_dispatch(
    tx: &mut dyn Tx,
    ids: &[CarrierId],
) -> Result<(), ServiceError> {
    let mut open = Vec::new();
    for id in ids {
        if let Some(repair) = tx.open_repair(*id)? {
            open.push(tx.repair(repair)?.mode);
        }
    }
    repair::check_dispatchable(&open)?;
    Ok(())
}

/// A carrier sent for repair (see [`crate::domain::repair`] for the rules).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendForRepair {
    /// The laptop, device or hard disk.
    pub carrier_id: CarrierId,
    /// The qualified repairer (a firm or a person), 1 to 200 printable characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub repairer: String,
    /// The repairer's qualification certificate number (资质证书编号).
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9/-]{0,39}$",
        min_length = 1,
        max_length = 40
    )]
    pub qualification_no: String,
    /// The last day the qualification is valid: it must run at least to today.
    pub qualified_until: Date,
    /// `on_site` (escorted) or `dispatch` (off site).
    pub mode: RepairMode,
    /// Who escorts the repairer on site (required on site, not the repairer).
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub escort: Option<String>,
    /// `removed_and_kept` or `repaired_on_site` (off site the media are always removed).
    pub media: MediaHandling,
    /// Which media were removed and where they are kept, or that they stayed in place.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub media_note: String,
    /// Why it goes for repair.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub reason: String,
}

/// A repaired carrier back: what was found (media put back, seals checked).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRepair {
    /// What was found on return.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub note: String,
}

fn label_check(problems: &mut Vec<Problem>, field: &'static str, value: &str) {
    if !is_valid_label(value) {
        problems.push(Problem {
            field,
            code: "invalid",
            message: "must be 1 to 200 printable characters",
        });
    }
}

/// Whether a qualification number is 1 to 40 letters, digits, `/` or `-`, starting with a
/// letter or digit.
fn is_qualification_no(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 40
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '/' || c == '-')
}

fn check_send(input: &SendForRepair) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    label_check(&mut problems, "repairer", &input.repairer);
    if !is_qualification_no(&input.qualification_no) {
        problems.push(Problem {
            field: "qualification_no",
            code: "invalid",
            message: "qualification_no must be 1 to 40 letters, digits, '/' or '-'",
        });
    }
    if let Some(escort) = &input.escort {
        label_check(&mut problems, "escort", escort);
    }
    label_check(&mut problems, "media_note", &input.media_note);
    label_check(&mut problems, "reason", &input.reason);
    Problem::none_or_invalid(problems)
}

/// Send a laptop, device or hard disk for repair to a qualified repairer, on site under
/// escort or by dispatch, recording what became of its storage media. The repair stays open
/// until [`return_repair`].
pub async fn send_for_repair(
    app: &AppState,
    cap: &CustodianCap,
    input: SendForRepair,
) -> Result<RepairRow, ServiceError> {
    check_send(&input)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| send_in(tx, &actor, input, at))
        .await
}

fn send_in(
    tx: &mut dyn Tx,
    actor: &str,
    input: SendForRepair,
    at: Timestamp,
) -> Result<RepairRow, ServiceError> {
    let carrier = input.carrier_id;
    let line = tx.carrier_line(carrier)?;
    let kind = tx.carrier_kind(carrier)?;
    let in_repair = tx.open_repair(carrier)?.is_some();
    repair::check_repair(&repair::RepairPlan {
        kind,
        state: line.state,
        in_repair,
        mode: input.mode,
        media: input.media,
        repairer: &input.repairer,
        qualified_until: input.qualified_until,
        escort: input.escort.as_deref(),
        today: at.date(),
    })?;
    let new = NewRepair {
        carrier_id: carrier,
        repairer: input.repairer.trim().to_owned(),
        qualification_no: input.qualification_no,
        qualified_until: input.qualified_until,
        mode: input.mode,
        escort: input.escort.map(|e| e.trim().to_owned()),
        media: input.media,
        media_note: Some(input.media_note.trim().to_owned()),
        reason: input.reason.trim().to_owned(),
    };
    let id = tx.insert_repair(&new, actor, at)?;
    let names = tx.carrier_audit_names(&[carrier])?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "repair.send",
        subject: format!("repair:{id}"),
        before: None,
        after: Some(json!({
            "carrier": names,
            "repairer": new.repairer,
            "qualification_no": new.qualification_no,
            "qualified_until": new.qualified_until,
            "mode": new.mode,
            "escort": new.escort,
            "media": new.media,
            "media_note": new.media_note,
            "reason": new.reason,
        })),
    })?;
    Ok(tx.repair(id)?)
}

/// Record a repaired carrier back (and its removed media with it); a repair returns once.
/// A carrier back from a repair by dispatch is in custody again ([`repair::state_after_return`]).
pub async fn return_repair(
    app: &AppState,
    cap: &CustodianCap,
    id: RepairId,
    input: ReturnRepair,
) -> Result<RepairRow, ServiceError> {
    let mut problems = Vec::new();
    label_check(&mut problems, "note", &input.note);
    Problem::none_or_invalid(problems)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let before = tx.repair(id)?;
            repair::check_return(before.returned_at.is_some())?;
            let note = input.note.trim();
            tx.close_repair(id, note, &actor, at)?;
            // Back from off site: in custody again, its dispatch window gone with it.
            let carrier_state = before.carrier.state;
            let carrier_after = repair::state_after_return(before.mode);
            if let Some(state) = carrier_after {
                tx.set_moving(before.carrier.id, state, None)?;
            }
            let names = tx.carrier_audit_names(&[before.carrier.id])?;
            tx.append_audit(&NewEntry {
                at,
                actor: actor.clone(),
                action: "repair.return",
                subject: format!("repair:{id}"),
                before: Some(json!({
                    "carrier": names, "state": "in_repair", "media": before.media,
                    "mode": before.mode, "carrier_state": carrier_state
                })),
                after: Some(json!({
                    "state": "returned", "note": note,
                    "carrier_state": carrier_after.unwrap_or(carrier_state)
                })),
            })?;
            Ok(tx.repair(id)?)
        })
        .await
}

/// One repair.
pub async fn repair(
    app: &AppState,
    _reader: &CustodyReader,
    id: RepairId,
) -> Result<RepairRow, ServiceError> {
    app.store().query(move |tx| Ok(tx.repair(id)?)).await
}

/// The open repair of a carrier, if it is out for repair (the carrier page shows it with
/// its removed media).
pub async fn open_repair_of(
    app: &AppState,
    _reader: &CustodyReader,
    carrier: CarrierId,
) -> Result<Option<RepairRow>, ServiceError> {
    app.store()
        .query(move |tx| match tx.open_repair(carrier)? {
            Some(id) => Ok(Some(tx.repair(id)?)),
            None => Ok(None),
        })
        .await
}

/// Every repair, open ones first.
pub async fn repairs(
    app: &AppState,
    _reader: &CustodyReader,
) -> Result<Vec<RepairRow>, ServiceError> {
    app.store().query(|tx| Ok(tx.repairs()?)).await
}
