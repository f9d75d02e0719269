//! Copies (复制): request copies of a carrier, and make them once approved.
//!
//! The request is a request of the approval model (kind `copy`, decided through
//! [`super::approvals`]); TS needs two approvers, and [`make`] refuses anything not approved
//! (`not_approved`), so a TS carrier is never copied without both. Making the copies registers
//! them in one transaction with their lineage ([`crate::domain::copy`]).

use serde::Serialize;
use serde_json::json;

use super::approvals::{self, Decided, rule};
use super::{Problem, ServiceError};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::approval::RequestKind;
use crate::domain::copy::{self, MAX_COPIES, Original};
use crate::domain::ids::{CarrierId, RequestId, is_valid_label};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::approvals::NewRequest;
use crate::store::changes::Lineage;

/// A copy request.
#[derive(Debug, Clone)]
pub struct NewCopies {
    /// The carrier to copy (an original or a copy).
    pub original_id: CarrierId,
    /// How many copies, 1 to [`MAX_COPIES`].
    pub count: u32,
    /// Why (1 to 200 characters).
    pub purpose: String,
}

/// The answer to making copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Made {
    /// The new carriers, in copy-number order.
    pub carrier_ids: Vec<CarrierId>,
}

fn check_input(new: &NewCopies) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    if new.count == 0 || new.count > MAX_COPIES {
        problems.push(Problem {
            field: "count",
            code: "out_of_range",
            message: "count must be 1 to 50",
        });
    }
    if !is_valid_label(&new.purpose) {
        problems.push(Problem {
            field: "purpose",
            code: "invalid",
            message: "purpose must be 1 to 200 printable characters",
        });
    }
    Problem::none_or_invalid(problems)
}

/// Request copies of a carrier (custodian). Unknown carrier: `unknown_reference`.
pub async fn request(
    app: &AppState,
    cap: &CustodianCap,
    new: NewCopies,
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
    new: &NewCopies,
    at: Timestamp,
) -> Result<Decided, ServiceError> {
    let requester = tx.party_by_username(actor)?;
    let facts = tx.carrier_facts(&[new.original_id])?;
    let original = facts
        .first()
        .map(|f| Original {
            state: f.state,
            level: f.level,
        })
        .ok_or(ServiceError::UnknownReference { what: "carrier" })?;
    copy::check_request(&original).map_err(|e| rule(e.code(), e))?;
    super::moves::refuse_in_repair(tx, &[new.original_id])?;
    let carriers = tx.carrier_audit_names(&[new.original_id])?;
    let request = NewRequest {
        kind: RequestKind::Copy,
        requester: requester.user,
        beneficiary: None,
        top_secret: copy::is_top_secret(&original),
        carriers: vec![new.original_id],
        body: json!({
            "carriers": carriers,
            "original_id": new.original_id,
            "count": new.count,
            "purpose": new.purpose,
        }),
    };
    approvals::open_in(tx, actor, &request, request.body.clone(), at)
}

/// Make the copies of an approved request (custodian): new carriers in storage, at the
/// original's level, linked to it, numbered on in the root's series. 422 `not_approved`
/// before approval (so a TS carrier is never copied without two approvals).
pub async fn make(app: &AppState, cap: &CustodianCap, id: RequestId) -> Result<Made, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| make_in(tx, &actor, id, at))
        .await
}

fn make_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: RequestId,
    at: Timestamp,
) -> Result<Made, ServiceError> {
    approvals::carry_out_in(tx, RequestKind::Copy, id)?;
    let body = tx.request_body(id)?;
    let original_id = body["original_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .map(CarrierId)
        .ok_or_else(|| {
            ServiceError::Store(crate::store::StoreError::Corrupt(
                "copy request without original".into(),
            ))
        })?;
    let count = body["count"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let facts = tx.carrier_facts(&[original_id])?;
    let Some(f) = facts.first() else {
        return Err(ServiceError::UnknownReference { what: "carrier" });
    };
    copy::check_request(&Original {
        state: f.state,
        level: f.level,
    })
    .map_err(|e| rule(e.code(), e))?;
    super::moves::refuse_in_repair(tx, &[original_id])?;
    let root = tx.lineage_root(original_id)?;
    let root_no = tx
        .carrier_facts(&[root])?
        .first()
        .map(|r| r.control_no.clone())
        .unwrap_or_default();
    let series = tx.series_copy_nos(root)?;
    let planned = copy::plan(&root_no, &series, count).map_err(|e| rule(e.code(), e))?;
    let mut carrier_ids = Vec::with_capacity(planned.len());
    for p in &planned {
        carrier_ids.push(tx.insert_copy(original_id, p.copy_no, p.control_no.as_str(), at)?);
    }
    let made = tx.carrier_audit_names(&carrier_ids)?;
    approvals::complete_in(
        tx,
        actor,
        RequestKind::Copy,
        id,
        json!({"original_id": original_id, "carrier_ids": carrier_ids, "carriers": made}),
        at,
    )?;
    Ok(Made { carrier_ids })
}

/// Where a carrier comes from and what was copied from it.
pub async fn lineage(
    app: &AppState,
    _cap: &CustodyReader,
    id: CarrierId,
) -> Result<Lineage, ServiceError> {
    app.store().query(move |tx| Ok(tx.lineage(id)?)).await
}
