//! Reclassification and declassification (变更密级/解密).
//!
//! The request is a request of the approval model (kind `reclassification`); TS on either
//! side needs two approvers. The approval that completes it carries it out in the same
//! transaction ([`approve`]): the level changes at once (the gate verdict reads the level at
//! every passage and the gate policy is recomputed from it at the next heartbeat), or the
//! carrier is declassified (off the secrecy register, history kept, no longer judged at the
//! gates).

use serde_json::json;

use super::ServiceError;
use super::approvals::{self, Decided, rule};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodianCap, SecurityOfficerCap};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::ids::{CarrierId, RequestId};
use crate::domain::reclassification::{self, Target};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::approvals::NewRequest;

/// A reclassification request.
#[derive(Debug, Clone)]
pub struct NewReclassification {
    /// The carrier.
    pub carrier_id: CarrierId,
    /// The new level, or declassified.
    pub level: Target,
    /// Why (1 to 200 characters).
    pub reason: String,
}

/// Request a reclassification (custodian).
pub async fn request(
    app: &AppState,
    cap: &CustodianCap,
    new: NewReclassification,
) -> Result<Decided, ServiceError> {
    approvals::check_reason("reason", &new.reason)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| request_in(tx, &actor, &new, at))
        .await
}

fn request_in(
    tx: &mut dyn Tx,
    actor: &str,
    new: &NewReclassification,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let requester = tx.party_by_username(actor)?;
    let facts = tx.carrier_facts(&[new.carrier_id])?;
    let Some(f) = facts.first() else {
        return Err(ServiceError::UnknownReference { what: "carrier" });
    };
    reclassification::check(f.state, f.level, new.level).map_err(|e| rule(e.code(), e))?;
    if tx
        .open_request_for(RequestKind::Reclassification, new.carrier_id)?
        .is_some()
    {
        return Err(rule(
            "already_requested",
            "the carrier is already on an open reclassification request",
        ));
    }
    let carriers = tx.carrier_audit_names(&[new.carrier_id])?;
    let request = NewRequest {
        kind: RequestKind::Reclassification,
        requester: requester.user,
        beneficiary: None,
        top_secret: reclassification::is_top_secret(f.level, new.level),
        carriers: vec![new.carrier_id],
        body: json!({
            "carriers": carriers,
            "carrier_id": new.carrier_id,
            "from": f.level.code(),
            "level": new.level.as_str(),
            "reason": new.reason,
        }),
    };
    approvals::open_in(tx, actor, &request, request.body.clone(), at)
}

/// Approve a reclassification; the approval that completes it changes the level (or
/// declassifies) at once, and the request is `done`.
pub async fn approve(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: RequestId,
) -> Result<Decided, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| approve_in(tx, &actor, id, at))
        .await
}

fn approve_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: RequestId,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let decided = approvals::approve_in(tx, actor, RequestKind::Reclassification, id, at)?;
    if decided.state != RequestState::Approved {
        return Ok(decided);
    }
    let body = tx.request_body(id)?;
    let target = body["level"]
        .as_str()
        .and_then(Target::from_name)
        .ok_or_else(|| rule("corrupt_request", "reclassification without a level"))?;
    let [carrier] = tx.request_carriers(id)?[..] else {
        return Err(rule(
            "corrupt_request",
            "reclassification without one carrier",
        ));
    };
    let facts = tx.carrier_facts(&[carrier])?;
    let Some(f) = facts.first() else {
        return Err(ServiceError::UnknownReference { what: "carrier" });
    };
    reclassification::check(f.state, f.level, target).map_err(|e| rule(e.code(), e))?;
    let (level, state) = reclassification::outcome(f.level, target);
    tx.set_level_and_state(carrier, level, state)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "carrier.reclassify",
        subject: format!("carrier:{carrier}"),
        before: Some(json!({"level": f.level.code(), "state": f.state})),
        after: Some(json!({"level": level.code(), "state": state, "request": id})),
    })?;
    approvals::complete_in(
        tx,
        actor,
        RequestKind::Reclassification,
        id,
        json!({"carrier_id": carrier, "level": level.code(), "state": state}),
        at,
    )?;
    Ok(Decided {
        id,
        state: RequestState::Done,
        approvals_needed: 0,
    })
}
