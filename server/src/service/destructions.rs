//! Destruction (销毁): request, then the destruction record with two witnesses once approved.
//!
//! The request is a request of the approval model (kind `destruction`); TS carriers need two
//! approvers. [`record`] carries it out: witnesses and count checked
//! ([`crate::domain::destruction::check_record`]), every carrier `destroyed`, its tags retired,
//! all in one transaction with the audit entry. A retired tag read later raises
//! `destroyed_seen` (the ingest use case).

use serde_json::json;

use super::approvals::{self, Decided, rule};
use super::{Problem, ServiceError};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::approval::RequestKind;
use crate::domain::carrier::CarrierState;
use crate::domain::destruction::{self, Method, ToDestroy};
use crate::domain::ids::{CarrierId, PersonId, RequestId, is_valid_label};
use crate::domain::signout::MAX_CARRIERS;
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::approvals::{NewRequest, Request};
use crate::store::changes::CarrierFacts;

/// How far in the future a destruction record's time may be (clock differences).
const RECORD_SKEW_SECS: i64 = 300;

/// A destruction request.
#[derive(Debug, Clone)]
pub struct NewDestruction {
    /// The carriers, 1 to 100, distinct.
    pub carrier_ids: Vec<CarrierId>,
    /// How they will be destroyed (must fit every carrier's kind).
    pub method: Method,
    /// Why (1 to 200 characters).
    pub reason: String,
}

/// The destruction record.
#[derive(Debug, Clone)]
pub struct DestructionRecord {
    /// The two witnesses.
    pub witnesses: Vec<PersonId>,
    /// When the carriers were destroyed (not in the future).
    pub at: Timestamp,
    /// How many carriers were counted at the destruction, if given (checked).
    pub count: Option<u32>,
    /// Where they were destroyed (a label, 1 to 200 printable characters), if given: the
    /// printed record names the place.
    pub place: Option<String>,
}

fn to_destroy(f: &CarrierFacts) -> ToDestroy {
    ToDestroy {
        id: f.id,
        kind: f.kind,
        state: f.state,
        level: f.level,
    }
}

fn check_input(new: &NewDestruction) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    Problem::carrier_list(
        &mut problems,
        &new.carrier_ids,
        MAX_CARRIERS,
        "carrier_ids must list 1 to 100 carriers",
    );
    if !is_valid_label(&new.reason) {
        problems.push(Problem {
            field: "reason",
            code: "invalid",
            message: "reason must be 1 to 200 printable characters",
        });
    }
    Problem::none_or_invalid(problems)
}

/// Request a destruction (custodian).
pub async fn request(
    app: &AppState,
    cap: &CustodianCap,
    new: NewDestruction,
) -> Result<Decided, ServiceError> {
    check_input(&new)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| request_in(tx, &actor, &new, at))
        .await
}

fn request_in(
    tx: &mut dyn Tx,
    actor: &str,
    new: &NewDestruction,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let requester = tx.party_by_username(actor)?;
    let facts: Vec<ToDestroy> = tx
        .carrier_facts(&new.carrier_ids)?
        .iter()
        .map(to_destroy)
        .collect();
    destruction::check_request(&facts, new.method).map_err(|e| rule(e.code(), e))?;
    super::moves::refuse_in_repair(tx, &new.carrier_ids)?;
    for c in &new.carrier_ids {
        if tx.open_request_for(RequestKind::Destruction, *c)?.is_some() {
            return Err(rule(
                "already_requested",
                format!("carrier {c} is already on an open destruction request"),
            ));
        }
    }
    let carriers = tx.carrier_audit_names(&new.carrier_ids)?;
    let request = NewRequest {
        kind: RequestKind::Destruction,
        requester: requester.user,
        beneficiary: None,
        top_secret: destruction::is_top_secret(&facts),
        carriers: new.carrier_ids.clone(),
        body: json!({
            "carriers": carriers,
            "method": new.method,
            "reason": new.reason,
            "count": new.carrier_ids.len(),
        }),
    };
    approvals::open_in(tx, actor, &request, request.body.clone(), at)
}

/// Record an approved destruction (custodian): two different witnesses, neither the
/// requester, one a security officer; the count matches; every carrier `destroyed` with its
/// tags retired. 422 `not_approved` before approval.
pub async fn record(
    app: &AppState,
    cap: &CustodianCap,
    id: RequestId,
    record: DestructionRecord,
) -> Result<Vec<CarrierId>, ServiceError> {
    let now = app.now();
    let mut problems = Vec::new();
    if record.at > now.plus_secs(RECORD_SKEW_SECS) {
        problems.push(Problem {
            field: "at",
            code: "in_future",
            message: "at must not be in the future",
        });
    }
    if record.place.as_deref().is_some_and(|p| !is_valid_label(p)) {
        problems.push(Problem {
            field: "place",
            code: "invalid",
            message: "place must be 1 to 200 printable characters",
        });
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let actor = cap.actor().name().to_owned();
    app.store()
        .transact(move |tx| record_in(tx, &actor, id, &record, now))
        .await
}

fn record_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: RequestId,
    record: &DestructionRecord,
    now: Timestamp,
) -> Result<Vec<CarrierId>, ServiceError> {
    let head = approvals::carry_out_in(tx, RequestKind::Destruction, id)?;
    let requester = tx.party_of(head.requester)?;
    let ids = tx.request_carriers(id)?;
    let facts: Vec<ToDestroy> = tx.carrier_facts(&ids)?.iter().map(to_destroy).collect();
    let witnesses = record
        .witnesses
        .iter()
        .map(|p| tx.witness(*p))
        .collect::<Result<Vec<_>, _>>()?;
    destruction::check_record(requester, &witnesses, record.count, &facts)
        .map_err(|e| rule(e.code(), e))?;
    super::moves::refuse_in_repair(tx, &ids)?;
    for c in &facts {
        tx.set_level_and_state(c.id, c.level, CarrierState::Destroyed)?;
        tx.retire_tags(c.id, now)?;
    }
    approvals::complete_in(
        tx,
        actor,
        RequestKind::Destruction,
        id,
        json!({
            "witnesses": record.witnesses,
            "at": record.at,
            "place": record.place,
            "count": ids.len(),
            "carrier_ids": ids,
        }),
        now,
    )?;
    Ok(ids)
}

/// A witness of a destruction record, by name, as the printed record signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedWitness {
    /// The person.
    pub id: PersonId,
    /// Their name.
    pub name: String,
    /// Their department.
    pub department: String,
}

/// A destruction as its printed record shows it: the request (carriers, method, reason,
/// approvals, and once recorded the time, place and count) and the witnesses by name.
#[derive(Debug, Clone)]
pub struct DestructionSheet {
    /// The request, with what recording it produced in `result`.
    pub request: Request,
    /// The witnesses named in the record (none before it is recorded).
    pub witnesses: Vec<NamedWitness>,
    /// The method asked for.
    pub method: Option<Method>,
    /// Why the carriers are destroyed.
    pub reason: Option<String>,
    /// When the destruction was recorded (`None` before).
    pub done_at: Option<Timestamp>,
    /// Where it took place, when the record says.
    pub place: Option<String>,
    /// The carriers counted at the destruction.
    pub count: Option<u64>,
}

/// A field of a request's stored JSON (its body or its result), parsed; `None` when absent
/// or of another shape.
fn stored<T: serde::de::DeserializeOwned>(
    value: Option<&serde_json::Value>,
    field: &str,
) -> Option<T> {
    value
        .and_then(|v| v.get(field))
        .and_then(|f| serde_json::from_value(f.clone()).ok())
}

/// Destruction `id` for its printed record (custodians, security officers). Witnesses are
/// stored by person id in the record; their names are read here, in the same snapshot.
pub async fn sheet(
    app: &AppState,
    _reader: &CustodyReader,
    id: RequestId,
) -> Result<DestructionSheet, ServiceError> {
    app.store()
        .query(move |tx| {
            let request = tx.request(RequestKind::Destruction, id)?;
            let result = request.result.as_ref();
            let ids: Vec<PersonId> = stored(result, "witnesses").unwrap_or_default();
            let mut witnesses = Vec::with_capacity(ids.len());
            for p in ids {
                let person = tx.person(p)?;
                witnesses.push(NamedWitness {
                    id: p,
                    name: person.name,
                    department: person.department,
                });
            }
            Ok(DestructionSheet {
                method: stored(Some(&request.body), "method"),
                reason: stored(Some(&request.body), "reason"),
                done_at: stored(result, "at"),
                place: stored(result, "place"),
                count: stored(result, "count"),
                request,
                witnesses,
            })
        })
        .await
}
