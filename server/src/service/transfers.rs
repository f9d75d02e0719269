//! Transfers (移交/签收) and dispatches (机要传递): requests of the one approval model
//! ([`super::approvals`]), carried out in two steps by different hands.
//!
//! - A transfer hands carriers (or every carrier a dissolved or merged unit still keeps) to
//!   another unit and, optionally, a named custodian. Once approved, the sending custodian
//!   hands them over ([`hand_over`]: state `in_transfer`, custody unchanged, both sides see
//!   them), and the receiving custodian signs for them ([`receive`]): only then do they belong
//!   to the new unit, back `in_storage`.
//! - A dispatch sends carriers out through the confidential courier channel, sealed. Once
//!   approved, it is sent ([`send`]: state `dispatched`; gates let them pass until the window
//!   ends, `domain::gate`), and its delivery is recorded by hand ([`delivered`]).
//!
//! The decisions (approve, reject) are [`super::approvals::approve`]/`reject` with the kind.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::approvals::{self, Decided};
use super::{Problem, ServiceError};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::CarrierState;
use crate::domain::ids::{CarrierId, PersonId, RequestId, is_valid_label};
use crate::domain::level::Level;
use crate::domain::moves::{self, MoveRuleError};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::approvals::{NewRequest, Request};
use crate::store::moves::StepRow;

/// The most carriers one transfer or dispatch may name.
pub const MAX_CARRIERS: usize = 500;

/// `carrier_ids` of a transfer or dispatch: 1 to [`MAX_CARRIERS`] distinct carrier ids.
fn carrier_ids_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("CarrierId"))
        .min_items(Some(1))
        .max_items(Some(MAX_CARRIERS))
        .unique_items(true)
        .description(Some("1 to 500 distinct carriers."))
        .build()
}

/// A transfer as asked (`POST /transfers`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    /// The carriers (1 to 500, distinct); or empty with `from_unit`.
    #[serde(default)]
    #[schema(schema_with = carrier_ids_schema)]
    pub carrier_ids: Vec<CarrierId>,
    /// A dissolved or merged unit: every carrier it still keeps (instead of `carrier_ids`).
    #[serde(default)]
    #[schema(
        nullable = false,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub from_unit: Option<String>,
    /// The receiving unit.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub to_unit: String,
    /// The receiving custodian (a person), if one is named: only they may sign for it.
    #[serde(default)]
    pub to_custodian: Option<PersonId>,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub reason: String,
}

/// A dispatch as asked (`POST /dispatches`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDispatch {
    /// The carriers (1 to 500, distinct).
    #[schema(schema_with = carrier_ids_schema)]
    pub carrier_ids: Vec<CarrierId>,
    /// Where to (1 to 200 characters).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub destination: String,
    /// The confidential courier (1 to 200 characters).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub courier: String,
    /// Who sealed the package (1 to 200 characters).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub sealed_by: String,
    /// Until when the carriers may pass the gates (in the future).
    pub window_until: Timestamp,
}

/// A transfer or dispatch as shown: the request with the steps carried out so far.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Movement {
    /// The request (approvals, state, payload).
    #[serde(flatten)]
    pub request: Request,
    /// The steps carried out (`handed_over`, `received`, `sent`, `delivered`).
    pub steps: Vec<StepRow>,
}

fn label_problem(problems: &mut Vec<Problem>, field: &'static str, text: &str) {
    if !is_valid_label(text) {
        problems.push(Problem {
            field,
            code: "invalid",
            message: "must be 1 to 200 printable characters",
        });
    }
}

/// Check a transfer's input: carriers or a unit (not both), labels.
pub fn check_transfer(new: &NewTransfer) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    match &new.from_unit {
        Some(unit) if new.carrier_ids.is_empty() => label_problem(&mut problems, "from_unit", unit),
        Some(_) => problems.push(Problem {
            field: "from_unit",
            code: "invalid",
            message: "name either carrier_ids or from_unit, not both",
        }),
        None => Problem::carrier_list(
            &mut problems,
            &new.carrier_ids,
            MAX_CARRIERS,
            "carrier_ids must list 1 to 500 carriers",
        ),
    }
    label_problem(&mut problems, "to_unit", &new.to_unit);
    label_problem(&mut problems, "reason", &new.reason);
    Problem::none_or_invalid(problems)
}

/// Check a dispatch's input.
pub fn check_dispatch(new: &NewDispatch) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    Problem::carrier_list(
        &mut problems,
        &new.carrier_ids,
        MAX_CARRIERS,
        "carrier_ids must list 1 to 500 carriers",
    );
    label_problem(&mut problems, "destination", &new.destination);
    label_problem(&mut problems, "courier", &new.courier);
    label_problem(&mut problems, "sealed_by", &new.sealed_by);
    Problem::none_or_invalid(problems)
}

/// The carriers a new request of `kind` may move: every one in storage, on no other open
/// transfer or dispatch and not out for repair (a dispatch may take one out for repair by
/// dispatch: see [`refuse_repair_in`]); whether any is Top Secret.
fn movable_in(tx: &mut dyn Tx, kind: RequestKind, ids: &[CarrierId]) -> Result<bool, ServiceError> {
    let mut states = Vec::with_capacity(ids.len());
    let mut top_secret = false;
    for id in ids {
        let line = tx.carrier_line(*id).map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ServiceError::UnknownReference { what: "carrier" }
            }
            other => other.into(),
        })?;
        for kind in [RequestKind::Transfer, RequestKind::Dispatch] {
            if tx.open_request_for(kind, *id)?.is_some() {
                return Err(MoveRuleError::CarrierUnavailable.into());
            }
        }
        top_secret |= line.level == Level::TopSecret;
        states.push(line.state);
    }
    moves::check_movable(&states)?;
    refuse_repair_in(tx, kind, ids)?;
    Ok(top_secret)
}

/// The repair rule for a transfer or dispatch of `ids`: nothing out for repair is
/// transferred; a dispatch may take a carrier whose repair is by dispatch to its repairer.
fn refuse_repair_in(
    tx: &mut dyn Tx,
    kind: RequestKind,
    ids: &[CarrierId],
) -> Result<(), ServiceError> {
    if kind == RequestKind::Dispatch {
        super::moves::refuse_in_repair_for_dispatch(tx, ids)
    } else {
        super::moves::refuse_in_repair(tx, ids)
    }
}

/// Ask for a transfer (custodian).
pub async fn request_transfer(
    app: &AppState,
    cap: &CustodianCap,
    new: NewTransfer,
) -> Result<Decided, ServiceError> {
    check_transfer(&new)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let ids: Vec<CarrierId> = match &new.from_unit {
                Some(unit) => tx.unit_carriers(unit)?.into_iter().map(|c| c.id).collect(),
                None => new.carrier_ids.clone(),
            };
            if ids.is_empty() {
                return Err(ServiceError::Moves(MoveRuleError::UnitEmpty));
            }
            if let Some(person) = new.to_custodian {
                tx.borrower(person)?;
            }
            let top_secret = movable_in(tx, RequestKind::Transfer, &ids)?;
            let requester = tx.party_by_username(&actor)?;
            let body = json!({
                "to_unit": new.to_unit,
                "to_custodian": new.to_custodian,
                "from_unit": new.from_unit,
                "reason": new.reason,
            });
            let names = tx.carrier_audit_names(&ids)?;
            let request = NewRequest {
                kind: RequestKind::Transfer,
                requester: requester.user,
                beneficiary: new.to_custodian,
                top_secret,
                carriers: ids,
                body: body.clone(),
            };
            let mut audit = body;
            audit["carriers"] = json!(names);
            approvals::open_in(tx, &actor, &request, audit, at)
        })
        .await
}

/// Ask for a dispatch (custodian).
pub async fn request_dispatch(
    app: &AppState,
    cap: &CustodianCap,
    new: NewDispatch,
) -> Result<Decided, ServiceError> {
    check_dispatch(&new)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    moves::check_window(new.window_until.unix_ms(), at.unix_ms())?;
    app.store()
        .transact(move |tx| {
            let top_secret = movable_in(tx, RequestKind::Dispatch, &new.carrier_ids)?;
            let requester = tx.party_by_username(&actor)?;
            let body = json!({
                "destination": new.destination,
                "courier": new.courier,
                "sealed_by": new.sealed_by,
                "window_until": new.window_until,
            });
            let names = tx.carrier_audit_names(&new.carrier_ids)?;
            let request = NewRequest {
                kind: RequestKind::Dispatch,
                requester: requester.user,
                beneficiary: None,
                top_secret,
                carriers: new.carrier_ids.clone(),
                body: body.clone(),
            };
            let mut audit = body;
            audit["carriers"] = json!(names);
            approvals::open_in(tx, &actor, &request, audit, at)
        })
        .await
}

fn has_step(steps: &[StepRow], step: &str) -> bool {
    steps.iter().any(|s| s.step == step)
}

/// Start carrying out an approved request: hand over a transfer (`in_transfer`) or send a
/// dispatch (`dispatched`, until its window ends). Custody does not change.
fn start_in(
    tx: &mut dyn Tx,
    actor: &str,
    kind: RequestKind,
    id: RequestId,
    at: Timestamp,
) -> Result<Movement, ServiceError> {
    let head = tx.request_head(kind, id)?;
    let steps = tx.request_steps(id)?;
    let (step, moving) = match kind {
        RequestKind::Dispatch => ("sent", CarrierState::Dispatched),
        _ => ("handed_over", CarrierState::InTransfer),
    };
    let state = moves::hand_over(
        head.state == RequestState::Approved,
        has_step(&steps, step),
        moving,
    )?;
    let carriers = tx.request_carriers(id)?;
    let mut states = Vec::new();
    for c in &carriers {
        states.push(tx.carrier_line(*c)?.state);
    }
    moves::check_movable(&states)?;
    refuse_repair_in(tx, kind, &carriers)?;
    let window = if kind == RequestKind::Dispatch {
        let body = tx.request_body(id)?;
        body["window_until"]
            .as_str()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map(Timestamp::unix_ms)
    } else {
        None
    };
    for c in &carriers {
        tx.set_moving(*c, state, window)?;
    }
    let by = tx.party_by_username(actor)?;
    tx.insert_request_step(id, step, by.user, None, at)?;
    tx.append_audit(&crate::audit::NewEntry {
        at,
        actor: actor.to_owned(),
        action: if kind == RequestKind::Dispatch {
            "dispatch.send"
        } else {
            "transfer.handover"
        },
        subject: format!("{}:{id}", kind.as_str()),
        before: Some(json!({"carrier_state": CarrierState::InStorage})),
        after: Some(json!({"carrier_state": state, "carriers": carriers})),
    })?;
    show_in(tx, kind, id)
}

fn show_in(tx: &mut dyn Tx, kind: RequestKind, id: RequestId) -> Result<Movement, ServiceError> {
    let mut request = tx.request(kind, id)?;
    if request.state == RequestState::Requested {
        request.approvals_needed =
            crate::domain::approval::approvals_needed(request.approvals.len(), request.top_secret);
    }
    Ok(Movement {
        steps: tx.request_steps(id)?,
        request,
    })
}

/// Hand over an approved transfer (the sending custodian).
pub async fn hand_over(
    app: &AppState,
    cap: &CustodianCap,
    id: RequestId,
) -> Result<Movement, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| start_in(tx, &actor, RequestKind::Transfer, id, at))
        .await
}

/// Send an approved dispatch with its courier.
pub async fn send(
    app: &AppState,
    cap: &CustodianCap,
    id: RequestId,
) -> Result<Movement, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| start_in(tx, &actor, RequestKind::Dispatch, id, at))
        .await
}

/// Sign for a handed-over transfer (the receiving custodian, never the one who handed it
/// over): only now do the carriers belong to the receiving unit.
pub async fn receive(
    app: &AppState,
    cap: &CustodianCap,
    id: RequestId,
) -> Result<Movement, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| receive_in(tx, &actor, id, at))
        .await
}

fn receive_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: RequestId,
    at: Timestamp,
) -> Result<Movement, ServiceError> {
    tx.request_head(RequestKind::Transfer, id)?;
    let steps = tx.request_steps(id)?;
    let sender = steps
        .iter()
        .find(|s| s.step == "handed_over")
        .map(|s| (s.by_user.0, s.by_person.map(|p| p.0)));
    let receiver = tx.party_by_username(actor)?;
    let body = tx.request_body(id)?;
    let to_unit = body["to_unit"].as_str().unwrap_or_default().to_owned();
    let to_custodian = body["to_custodian"]
        .as_str()
        .and_then(|p| p.parse::<i64>().ok());
    let change = moves::receive(
        sender,
        has_step(&steps, "received"),
        (receiver.user.0, receiver.person.map(|p| p.0)),
        to_custodian,
        &to_unit,
    )?;
    approvals::carry_out_in(tx, RequestKind::Transfer, id)?;
    let carriers = tx.request_carriers(id)?;
    let before = tx.carrier_audit_names(&carriers)?;
    for c in &carriers {
        tx.set_custody(*c, change.state, &change.owner_unit)?;
    }
    tx.insert_request_step(id, "received", receiver.user, None, at)?;
    approvals::complete_in(
        tx,
        actor,
        RequestKind::Transfer,
        id,
        json!({"received_by": actor, "owner_unit": change.owner_unit, "carriers": before}),
        at,
    )?;
    show_in(tx, RequestKind::Transfer, id)
}

/// Record by hand that a sent dispatch was delivered (who signed for it at the destination).
pub async fn delivered(
    app: &AppState,
    cap: &CustodianCap,
    id: RequestId,
    received_by: String,
) -> Result<Movement, ServiceError> {
    let mut problems = Vec::new();
    label_problem(&mut problems, "received_by", &received_by);
    Problem::none_or_invalid(problems)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            tx.request_head(RequestKind::Dispatch, id)?;
            let steps = tx.request_steps(id)?;
            moves::check_delivery(has_step(&steps, "sent"), has_step(&steps, "delivered"))?;
            approvals::carry_out_in(tx, RequestKind::Dispatch, id)?;
            let by = tx.party_by_username(&actor)?;
            tx.insert_request_step(id, "delivered", by.user, Some(&received_by), at)?;
            approvals::complete_in(
                tx,
                &actor,
                RequestKind::Dispatch,
                id,
                json!({"received_by": received_by}),
                at,
            )?;
            show_in(tx, RequestKind::Dispatch, id)
        })
        .await
}

/// One transfer or dispatch with its steps.
pub async fn show(
    app: &AppState,
    _reader: &CustodyReader,
    kind: RequestKind,
    id: RequestId,
) -> Result<Movement, ServiceError> {
    app.store().query(move |tx| show_in(tx, kind, id)).await
}

/// Transfers or dispatches, newest first (at most 200), with their steps.
pub async fn list(
    app: &AppState,
    reader: &CustodyReader,
    kind: RequestKind,
) -> Result<Vec<Movement>, ServiceError> {
    let requests = approvals::list(app, reader, Some(kind), None).await?;
    app.store()
        .query(move |tx| {
            requests
                .into_iter()
                .map(|request| {
                    Ok(Movement {
                        steps: tx.request_steps(request.id)?,
                        request,
                    })
                })
                .collect()
        })
        .await
}
