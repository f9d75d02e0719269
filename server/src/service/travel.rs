//! Travel abroad (出境审批) on the one approval model ([`super::approvals`]): a security officer
//! files a request for a classified person, or a departed one in their decommissioning period
//! (脱密期); other officers decide (two different people for core personnel, never the
//! requester or the traveller). A trip overlapping the decommissioning period is marked so.
//! The rules are [`crate::domain::person::travel_terms`].

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::approvals::{self, Decided};
use super::{Problem, ServiceError};
use crate::AppState;
use crate::auth::capability::{CustodyReader, SecurityOfficerCap};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::ids::{PersonId, RequestId, is_valid_label};
use crate::domain::person;
use crate::domain::time::{Date, Timestamp};
use crate::store::StoreError;
use crate::store::Tx;
use crate::store::approvals::{NewRequest, Request};

/// A travel request (`POST /travel`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTravel {
    /// The traveller.
    pub person_id: PersonId,
    /// Where to (country, city; 1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub destination: String,
    /// First day abroad.
    pub from: Date,
    /// Last day abroad.
    pub until: Date,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    pub purpose: String,
}

/// The answer to a travel request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TravelFiled {
    /// The request as the approval model answers.
    #[serde(flatten)]
    pub decided: Decided,
    /// The trip overlaps the traveller's decommissioning period.
    pub during_decommissioning: bool,
}

fn check(input: &NewTravel) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    for (field, value) in [
        ("destination", &input.destination),
        ("purpose", &input.purpose),
    ] {
        if !is_valid_label(value) {
            problems.push(Problem {
                field,
                code: "invalid",
                message: "must be 1 to 200 printable characters",
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(problems))
    }
}

/// File a travel request (security officer).
pub async fn request(
    app: &AppState,
    cap: &SecurityOfficerCap,
    input: NewTravel,
) -> Result<TravelFiled, ServiceError> {
    check(&input)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| request_in(tx, &actor, &input, at))
        .await
}

fn request_in(
    tx: &mut dyn Tx,
    actor: &str,
    input: &NewTravel,
    at: Timestamp,
) -> Result<TravelFiled, ServiceError> {
    let traveller = match tx.person(input.person_id) {
        Err(StoreError::NotFound) => return Err(ServiceError::UnknownReference { what: "person" }),
        other => other?,
    };
    let terms = person::travel_terms(
        traveller.status,
        traveller.category,
        traveller.decommissioning_ends_on,
        traveller.decommissioning_lifelong,
        input.from,
        input.until,
    )?;
    let requester = tx.party_by_username(actor)?;
    let body = json!({
        "person_id": input.person_id,
        "destination": input.destination,
        "from": input.from,
        "until": input.until,
        "purpose": input.purpose,
        "during_decommissioning": terms.during_decommissioning,
    });
    let new = NewRequest {
        kind: RequestKind::Travel,
        requester: requester.user,
        beneficiary: Some(input.person_id),
        top_secret: terms.approvals_needed == 2,
        carriers: Vec::new(),
        body: body.clone(),
    };
    let decided = approvals::open_in(tx, actor, &new, body, at)?;
    Ok(TravelFiled {
        decided,
        during_decommissioning: terms.during_decommissioning,
    })
}

/// Approve a travel request.
pub async fn approve(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: RequestId,
) -> Result<Decided, ServiceError> {
    approvals::approve(app, cap, RequestKind::Travel, id).await
}

/// Reject a travel request with a reason.
pub async fn reject(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: RequestId,
    reason: String,
) -> Result<Decided, ServiceError> {
    approvals::reject(app, cap, RequestKind::Travel, id, reason).await
}

/// Travel requests, newest first, in `state` if given (the register of who is abroad when).
pub async fn list(
    app: &AppState,
    cap: &SecurityOfficerCap,
    state: Option<RequestState>,
) -> Result<Vec<Request>, ServiceError> {
    let reader = CustodyReader::SecurityOfficer(cap.clone());
    approvals::list(app, &reader, Some(RequestKind::Travel), state).await
}
