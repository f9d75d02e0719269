//! Approvals: the decision use cases every request kind shares, and the pieces each kind's
//! own use cases build on.
//!
//! - [`approve`] / [`reject`]: a security officer decides on a request of any kind (the rules
//!   of [`crate::domain::approval`]), one transaction with its audit entry
//!   (`{kind}.approve`, `{kind}.reject`).
//! - [`open_in`]: a kind's "request" use case writes its request through this (state
//!   `requested`, audit `{kind}.request`).
//! - [`carry_out_in`] then [`complete_in`]: a kind's "carry out" use case checks the request is
//!   approved (and, in the same transaction, loads it), does its own writes, and marks it `done`
//!   with what it produced (audit `{kind}.done`).
//!
//! Sign-outs keep their own rows and use cases ([`super::signouts`]) but the same rules.

use serde::Serialize;
use serde_json::json;

use super::ServiceError;
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodyReader, SecurityOfficerCap};
use crate::domain::approval::{
    self, ApprovalOutcome, Party, RequestFacts, RequestKind, RequestState, approvals_needed,
};
use crate::domain::ids::{RequestId, is_valid_label};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::approvals::{NewRequest, Request, RequestHead};

/// The answer to a request, an approval or a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decided {
    /// Request id.
    pub id: RequestId,
    /// Its state now (`requested` while a TS request waits for its second approver).
    pub state: RequestState,
    /// Approvals still needed.
    pub approvals_needed: u32,
}

/// Check a rejection's (or any request's) reason: 1 to 200 printable characters.
pub fn check_reason(field: &'static str, reason: &str) -> Result<(), ServiceError> {
    if is_valid_label(reason) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            field,
            "invalid",
            "a reason must be 1 to 200 printable characters",
        ))
    }
}

/// The facts the decision rules need, loaded in `tx`.
fn facts_in(
    tx: &mut dyn Tx,
    kind: RequestKind,
    id: RequestId,
) -> Result<(RequestHead, RequestFacts), ServiceError> {
    let head = tx.request_head(kind, id)?;
    let requester = tx.party_of(head.requester)?;
    let approvals = tx.request_approvers(id)?;
    let facts = RequestFacts {
        state: head.state,
        requester,
        beneficiary: head.beneficiary,
        top_secret: head.top_secret,
        approvals,
    };
    Ok((head, facts))
}

/// Approve a request of `kind` (not a sign-out): never by its requester or beneficiary; TS
/// needs two different people.
pub async fn approve(
    app: &AppState,
    cap: &SecurityOfficerCap,
    kind: RequestKind,
    id: RequestId,
) -> Result<Decided, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| approve_in(tx, &actor, kind, id, at))
        .await
}

/// [`approve`] inside a caller's transaction (a kind whose approval carries it out at once,
/// such as a reclassification, adds its own writes after it).
pub fn approve_in(
    tx: &mut dyn Tx,
    actor: &str,
    kind: RequestKind,
    id: RequestId,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let (_, facts) = facts_in(tx, kind, id)?;
    let approver = tx.party_by_username(actor)?;
    let ApprovalOutcome {
        state,
        approvals_needed,
    } = approval::approve(&facts, approver)?;
    tx.insert_request_approval(id, approver.user, at)?;
    if state != facts.state {
        tx.set_request_state(id, state, at)?;
    }
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: action(kind, "approve"),
        subject: format!("{}:{id}", kind.as_str()),
        before: Some(json!({"state": facts.state, "approvals": facts.approvals.len()})),
        after: Some(json!({
            "state": state,
            "approvals": facts.approvals.len() + 1,
            "approvals_needed": approvals_needed,
        })),
    })?;
    Ok(Decided {
        id,
        state,
        approvals_needed,
    })
}

/// Reject a request of `kind` (not a sign-out) with a reason: never by its requester or
/// beneficiary; only while it awaits a decision.
pub async fn reject(
    app: &AppState,
    cap: &SecurityOfficerCap,
    kind: RequestKind,
    id: RequestId,
    reason: String,
) -> Result<Decided, ServiceError> {
    check_reason("reason", &reason)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| reject_in(tx, &actor, kind, id, &reason, at))
        .await
}

fn reject_in(
    tx: &mut dyn Tx,
    actor: &str,
    kind: RequestKind,
    id: RequestId,
    reason: &str,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let (_, facts) = facts_in(tx, kind, id)?;
    let officer = tx.party_by_username(actor)?;
    let state = approval::reject(&facts, officer)?;
    tx.reject_request(id, officer.user, reason, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: action(kind, "reject"),
        subject: format!("{}:{id}", kind.as_str()),
        before: Some(json!({"state": facts.state})),
        after: Some(json!({"state": state, "reason": reason})),
    })?;
    Ok(Decided {
        id,
        state,
        approvals_needed: 0,
    })
}

/// Write a new request (state `requested`) and its audit entry `{kind}.request`, whose
/// `after` is `audit` (no titles) with the id and state added. For a kind's request use case.
pub fn open_in(
    tx: &mut dyn Tx,
    actor: &str,
    new: &NewRequest,
    audit: serde_json::Value,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let id = tx.insert_request(new, at)?;
    let mut after = json!({"id": id, "state": RequestState::Requested});
    if let (Some(after), serde_json::Value::Object(extra)) = (after.as_object_mut(), audit) {
        after.extend(extra);
    }
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: action(new.kind, "request"),
        subject: format!("{}:{id}", new.kind.as_str()),
        before: None,
        after: Some(after),
    })?;
    Ok(Decided {
        id,
        state: RequestState::Requested,
        approvals_needed: approval::approvals_required(new.top_secret),
    })
}

/// Check that request `id` of `kind` may be carried out now (approved, not yet done); its
/// head. For a kind's carry-out use case, before its own writes.
pub fn carry_out_in(
    tx: &mut dyn Tx,
    kind: RequestKind,
    id: RequestId,
) -> Result<RequestHead, ServiceError> {
    let head = tx.request_head(kind, id)?;
    approval::carry_out(head.state)?;
    Ok(head)
}

/// Mark request `id` of `kind` done by `actor`, with what it produced (no titles), and write
/// the audit entry `{kind}.done`.
pub fn complete_in(
    tx: &mut dyn Tx,
    actor: &str,
    kind: RequestKind,
    id: RequestId,
    result: serde_json::Value,
    at: Timestamp,
) -> Result<(), ServiceError> {
    let by: Party = tx.party_by_username(actor)?;
    tx.complete_request(id, by.user, &result, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: action(kind, "done"),
        subject: format!("{}:{id}", kind.as_str()),
        before: Some(json!({"state": RequestState::Approved})),
        after: Some(json!({"state": RequestState::Done, "result": result})),
    })?;
    Ok(())
}

/// Request `id` of `kind` as shown, with the approvals it still needs.
pub async fn show(
    app: &AppState,
    _cap: &CustodyReader,
    kind: RequestKind,
    id: RequestId,
) -> Result<Request, ServiceError> {
    app.store()
        .query(move |tx| Ok(with_needed(tx.request(kind, id)?)))
        .await
}

/// Requests of `kind` (every kind if `None`), in `state` if given, newest first (at most 200).
pub async fn list(
    app: &AppState,
    _cap: &CustodyReader,
    kind: Option<RequestKind>,
    state: Option<RequestState>,
) -> Result<Vec<Request>, ServiceError> {
    app.store()
        .query(move |tx| {
            Ok(tx
                .requests(kind, state, 200)?
                .into_iter()
                .map(with_needed)
                .collect())
        })
        .await
}

/// Every request that names carrier `id`, newest first.
pub async fn for_carrier(
    app: &AppState,
    _cap: &CustodyReader,
    id: crate::domain::ids::CarrierId,
) -> Result<Vec<Request>, ServiceError> {
    app.store()
        .query(move |tx| {
            Ok(tx
                .requests_for_carrier(id)?
                .into_iter()
                .map(with_needed)
                .collect())
        })
        .await
}

fn with_needed(mut req: Request) -> Request {
    req.approvals_needed = if req.state == RequestState::Requested {
        approvals_needed(req.approvals.len(), req.top_secret)
    } else {
        0
    };
    req
}

/// A lifecycle rule's refusal as a [`ServiceError`] (422 with its code).
pub fn rule(code: &'static str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::EndOfLife {
        code,
        message: e.to_string(),
    }
}

/// The audit action name `{kind}.{step}` (static: audit actions are fixed strings).
fn action(kind: RequestKind, step: &str) -> &'static str {
    macro_rules! table {
        ($($kind:ident => $name:literal),* $(,)?) => {
            match (kind, step) {
                $(
                    (RequestKind::$kind, "request") => concat!($name, ".request"),
                    (RequestKind::$kind, "approve") => concat!($name, ".approve"),
                    (RequestKind::$kind, "reject") => concat!($name, ".reject"),
                    (RequestKind::$kind, "done") => concat!($name, ".done"),
                )*
                _ => "request.step",
            }
        };
    }
    table!(
        Signout => "signout",
        Copy => "copy",
        Destruction => "destruction",
        Transfer => "transfer",
        Dispatch => "dispatch",
        Reclassification => "reclassification",
        Travel => "travel",
    )
}
