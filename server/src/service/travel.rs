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
    Problem::none_or_invalid(problems)
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

/// A travel request as the pages show it: who, where, when, how it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The request.
    pub id: RequestId,
    /// The traveller.
    pub person_id: PersonId,
    /// Their name.
    pub name: String,
    /// Where to.
    pub destination: String,
    /// First day abroad.
    pub from: Date,
    /// Last day abroad.
    pub until: Date,
    /// Requested, approved, rejected.
    pub state: RequestState,
    /// The trip overlaps the traveller's decommissioning period (marked as such).
    pub during_decommissioning: bool,
}

impl Trip {
    /// The trip a travel request describes; `None` for a request whose stored body lacks a
    /// field (never written so by [`request`]; logged rather than failing the page).
    fn of(r: &Request) -> Option<Trip> {
        let person = r.beneficiary.as_ref()?;
        let date = |field: &str| r.body.get(field)?.as_str()?.parse::<Date>().ok();
        let trip = Trip {
            id: r.id,
            person_id: person.id,
            name: person.name.clone(),
            destination: r.body.get("destination")?.as_str()?.to_owned(),
            from: date("from")?,
            until: date("until")?,
            state: r.state,
            during_decommissioning: r.body.get("during_decommissioning")?.as_bool()?,
        };
        Some(trip)
    }
}

fn trips(requests: &[Request]) -> Vec<Trip> {
    requests
        .iter()
        .filter_map(|r| {
            let trip = Trip::of(r);
            if trip.is_none() {
                tracing::warn!(request = %r.id, "travel request body unreadable; left off the page");
            }
            trip
        })
        .collect()
}

/// A person's travel requests, newest first (security officer): their page.
pub async fn of_person(
    app: &AppState,
    cap: &SecurityOfficerCap,
    person: PersonId,
) -> Result<Vec<Trip>, ServiceError> {
    let all = list(app, cap, None).await?;
    Ok(trips(&all)
        .into_iter()
        .filter(|t| t.person_id == person)
        .collect())
}

/// The register of who is abroad when (security officer): every approved trip, by its first
/// day (then its last day, then the traveller), so the officer reads it as a timeline.
pub async fn register(app: &AppState, cap: &SecurityOfficerCap) -> Result<Vec<Trip>, ServiceError> {
    let approved = list(app, cap, Some(RequestState::Approved)).await?;
    let mut trips = trips(&approved);
    trips.sort_by(|a, b| (a.from, a.until, &a.name).cmp(&(b.from, b.until, &b.name)));
    Ok(trips)
}
