//! Requests of the approval model other than sign-outs (issue #10 A): copies
//! (`/copies`), destructions (`/destructions`), reclassifications (`/reclassifications`),
//! each with `approve` and `reject {reason}` (security officer; never the requester; TS needs
//! two different people) and its own carrying-out step, and a carrier's lineage
//! (`GET /carriers/{id}/lineage`).
//!
//! Refusals: 400 malformed input, 409 a decision on a request not awaiting one
//! (`not_requested`) or a second approval by the same officer (`already_approved`), 422 a rule
//! (`self_approval`; `not_approved` when carrying out before approval; the kind's own codes).

use axum::Json as AxumJson;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::destruction::Method;
use crate::domain::ids::{CarrierId, PersonId, RequestId};
use crate::domain::reclassification::Target;
use crate::domain::time::Timestamp;
use crate::service::approvals::{self, Decided};
use crate::service::copies::{self, Made, NewCopies};
use crate::service::destructions::{self, DestructionRecord, NewDestruction};
use crate::service::reclassifications::{self, NewReclassification};
use crate::store::approvals::Request;
use crate::store::changes::Lineage;

fn request_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// A rejection's reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

async fn approve_kind(
    state: &AppState,
    cap: &SecurityOfficerCap,
    kind: RequestKind,
    id: &str,
) -> Result<AxumJson<Decided>, ApiError> {
    let id = request_id(id)?;
    Ok(AxumJson(approvals::approve(state, cap, kind, id).await?))
}

async fn reject_kind(
    state: &AppState,
    cap: &SecurityOfficerCap,
    kind: RequestKind,
    id: &str,
    reason: String,
) -> Result<AxumJson<Decided>, ApiError> {
    let id = request_id(id)?;
    Ok(AxumJson(
        approvals::reject(state, cap, kind, id, reason).await?,
    ))
}

async fn one_kind(
    state: &AppState,
    cap: &CustodyReader,
    kind: RequestKind,
    id: &str,
) -> Result<AxumJson<Request>, ApiError> {
    let id = request_id(id)?;
    Ok(AxumJson(approvals::show(state, cap, kind, id).await?))
}

async fn list_kind(
    state: &AppState,
    cap: &CustodyReader,
    kind: RequestKind,
) -> Result<AxumJson<Vec<Request>>, ApiError> {
    Ok(AxumJson(
        approvals::list(state, cap, Some(kind), None).await?,
    ))
}

// ---------------------------------------------------------------------------------------
// /copies

/// A copy request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// The carrier to copy (an original or a copy).
    original_id: CarrierId,
    /// How many copies (1 to 50).
    #[schema(minimum = 1, maximum = 50)]
    count: u32,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    purpose: String,
}

/// Request copies of a carrier (custodian). S/C need one approval, TS two.
#[utoipa::path(
    post,
    operation_id = "copies_create",
    path = "/copies",
    tag = "requests",
    request_body = CopyBody,
    responses(
        (status = 201, description = "Requested", body = Decided),
        (status = 409, description = "A conflict with another open request (`conflict`), or a carrier is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "A rule says no (the code names it: `carrier_unavailable`, `unknown_reference`, ...)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<CopyBody>,
) -> Result<(StatusCode, AxumJson<Decided>), ApiError> {
    let new = NewCopies {
        original_id: body.original_id,
        count: body.count,
        purpose: body.purpose,
    };
    let decided = copies::request(&state, &cap, new).await?;
    Ok((StatusCode::CREATED, AxumJson(decided)))
}

/// Every copy request, newest first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "copies_list",
    path = "/copies",
    tag = "requests",
    responses(
        (status = 200, description = "The requests", body = Vec<Request>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_list(
    cap: CustodyReader,
    State(state): State<AppState>,
) -> Result<AxumJson<Vec<Request>>, ApiError> {
    list_kind(&state, &cap, RequestKind::Copy).await
}

/// One copy request (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "copies_one",
    path = "/copies/{id}",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = Request),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Request>, ApiError> {
    one_kind(&state, &cap, RequestKind::Copy, &id).await
}

/// Approve a copy request (security officer; never the requester; TS needs two
/// different people).
#[utoipa::path(
    post,
    operation_id = "copies_approve",
    path = "/copies/{id}/approve",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved (or still `requested` waiting for a second TS approver)", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`) or already approved by this officer (`already_approved`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`), or carrying it out broke a rule", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Decided>, ApiError> {
    approve_kind(&state, &cap, RequestKind::Copy, &id).await
}

/// Reject a copy request with a reason (security officer; never the requester).
#[utoipa::path(
    post,
    operation_id = "copies_reject",
    path = "/copies/{id}/reject",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_reject(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Reason>,
) -> Result<AxumJson<Decided>, ApiError> {
    reject_kind(&state, &cap, RequestKind::Copy, &id, body.reason).await
}

/// Make the copies of an approved copy request (custodian): new carriers at the original's
/// level, linked to it (`original_id`), copy numbers continuing the series.
#[utoipa::path(
    post,
    operation_id = "copies_make",
    path = "/copies/{id}/make",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The new carriers", body = Made),
        (status = 409, description = "A control number is taken (`conflict`), or the original is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "Not approved (`not_approved`), or the original cannot be copied now", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn copies_make(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Made>, ApiError> {
    let id = request_id(&id)?;
    Ok(AxumJson(copies::make(&state, &cap, id).await?))
}

// ---------------------------------------------------------------------------------------
// /destructions

/// A destruction request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestructionBody {
    /// 1 to 100 distinct carriers, in storage.
    #[schema(schema_with = super::signouts::carrier_ids_schema)]
    carrier_ids: Vec<CarrierId>,
    /// How: `shred`/`incinerate` (paper), `degauss` (magnetic media), `physical` (flash,
    /// optical discs, hard disks, devices); must fit every carrier.
    method: Method,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

/// A destruction record.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordBody {
    /// Two different people, neither the requester, at least one a security officer.
    witnesses: Vec<PersonId>,
    /// When the carriers were destroyed (not in the future).
    at: Timestamp,
    /// How many carriers were counted at the destruction (checked against the request).
    #[serde(default)]
    count: Option<u32>,
    /// Where they were destroyed (1 to 200 printable characters, not blank), for the printed
    /// record.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    place: Option<String>,
}

/// The carriers a destruction record destroyed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Destroyed {
    /// The request.
    id: RequestId,
    /// `done`.
    state: RequestState,
    /// The carriers, now `destroyed`.
    carrier_ids: Vec<CarrierId>,
}

/// Request a destruction (custodian).
#[utoipa::path(
    post,
    operation_id = "destructions_create",
    path = "/destructions",
    tag = "requests",
    request_body = DestructionBody,
    responses(
        (status = 201, description = "Requested", body = Decided),
        (status = 409, description = "A conflict with another open request (`conflict`), or a carrier is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "A rule says no (the code names it: `carrier_unavailable`, `method_not_for_kind`, `unknown_reference`, `already_requested` when a carrier is on an open destruction request already)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<DestructionBody>,
) -> Result<(StatusCode, AxumJson<Decided>), ApiError> {
    let new = NewDestruction {
        carrier_ids: body.carrier_ids,
        method: body.method,
        reason: body.reason,
    };
    let decided = destructions::request(&state, &cap, new).await?;
    Ok((StatusCode::CREATED, AxumJson(decided)))
}

/// Every destruction request, newest first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "destructions_list",
    path = "/destructions",
    tag = "requests",
    responses(
        (status = 200, description = "The requests", body = Vec<Request>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_list(
    cap: CustodyReader,
    State(state): State<AppState>,
) -> Result<AxumJson<Vec<Request>>, ApiError> {
    list_kind(&state, &cap, RequestKind::Destruction).await
}

/// One destruction request (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "destructions_one",
    path = "/destructions/{id}",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = Request),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Request>, ApiError> {
    one_kind(&state, &cap, RequestKind::Destruction, &id).await
}

/// Approve a destruction request (security officer; never the requester; TS needs two
/// different people).
#[utoipa::path(
    post,
    operation_id = "destructions_approve",
    path = "/destructions/{id}/approve",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved (or still `requested` waiting for a second TS approver)", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`) or already approved by this officer (`already_approved`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`), or carrying it out broke a rule", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Decided>, ApiError> {
    approve_kind(&state, &cap, RequestKind::Destruction, &id).await
}

/// Reject a destruction request with a reason (security officer; never the requester).
#[utoipa::path(
    post,
    operation_id = "destructions_reject",
    path = "/destructions/{id}/reject",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_reject(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Reason>,
) -> Result<AxumJson<Decided>, ApiError> {
    reject_kind(&state, &cap, RequestKind::Destruction, &id, body.reason).await
}

/// Record an approved destruction (custodian): two witnesses, count checked; the carriers
/// become `destroyed` and their tags are retired.
#[utoipa::path(
    post,
    operation_id = "destructions_record",
    path = "/destructions/{id}/record",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body = RecordBody,
    responses(
        (status = 200, description = "Destroyed", body = Destroyed),
        (status = 409, description = "A carrier is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "Not approved (`not_approved`), `two_witnesses_needed`, `witness_is_requester`, `no_officer_witness`, `count_mismatch`, `carrier_unavailable`, or an unknown witness (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn destructions_record(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RecordBody>,
) -> Result<AxumJson<Destroyed>, ApiError> {
    let id = request_id(&id)?;
    let record = DestructionRecord {
        witnesses: body.witnesses,
        at: body.at,
        count: body.count,
        place: body.place,
    };
    let carrier_ids = destructions::record(&state, &cap, id, record).await?;
    Ok(AxumJson(Destroyed {
        id,
        state: RequestState::Done,
        carrier_ids,
    }))
}

// ---------------------------------------------------------------------------------------
// /reclassifications

/// A reclassification request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReclassificationBody {
    /// The carrier (in storage).
    carrier_id: CarrierId,
    /// The new level, or `declassified`.
    level: Target,
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

/// Request a reclassification or declassification (custodian). The approval that completes it changes the level at once.
#[utoipa::path(
    post,
    operation_id = "reclassifications_create",
    path = "/reclassifications",
    tag = "requests",
    request_body = ReclassificationBody,
    responses(
        (status = 201, description = "Requested", body = Decided),
        (status = 409, description = "A conflict with another open request (`conflict`)", body = ErrorBody),
        (status = 422, description = "A rule says no (the code names it: `carrier_unavailable`, `unknown_reference`, `same_level` when the carrier is already at that level, `already_requested` when it is on an open reclassification request already)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reclassifications_create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<ReclassificationBody>,
) -> Result<(StatusCode, AxumJson<Decided>), ApiError> {
    let new = NewReclassification {
        carrier_id: body.carrier_id,
        level: body.level,
        reason: body.reason,
    };
    let decided = reclassifications::request(&state, &cap, new).await?;
    Ok((StatusCode::CREATED, AxumJson(decided)))
}

/// Every reclassification request, newest first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "reclassifications_list",
    path = "/reclassifications",
    tag = "requests",
    responses(
        (status = 200, description = "The requests", body = Vec<Request>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reclassifications_list(
    cap: CustodyReader,
    State(state): State<AppState>,
) -> Result<AxumJson<Vec<Request>>, ApiError> {
    list_kind(&state, &cap, RequestKind::Reclassification).await
}

/// One reclassification request (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "reclassifications_one",
    path = "/reclassifications/{id}",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request", body = Request),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reclassifications_one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Request>, ApiError> {
    one_kind(&state, &cap, RequestKind::Reclassification, &id).await
}

/// Approve a reclassification request (security officer; never the requester; TS needs two
/// different people).
#[utoipa::path(
    post,
    operation_id = "reclassifications_approve",
    path = "/reclassifications/{id}/approve",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved (or still `requested` waiting for a second TS approver)", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`) or already approved by this officer (`already_approved`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`), or carrying it out broke a rule", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reclassifications_approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(AxumJson(
        reclassifications::approve(&state, &cap, id).await?,
    ))
}

/// Reject a reclassification request with a reason (security officer; never the requester).
#[utoipa::path(
    post,
    operation_id = "reclassifications_reject",
    path = "/reclassifications/{id}/reject",
    tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    request_body = Reason,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester (`self_approval`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reclassifications_reject(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Reason>,
) -> Result<AxumJson<Decided>, ApiError> {
    reject_kind(
        &state,
        &cap,
        RequestKind::Reclassification,
        &id,
        body.reason,
    )
    .await
}

/// Where a carrier comes from and the copies made from it (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "carriers_lineage",
    path = "/carriers/{id}/lineage",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses(
        (status = 200, description = "Its original, the chain's root and its copies", body = Lineage),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn carrier_lineage(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Lineage>, ApiError> {
    let id: CarrierId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(AxumJson(copies::lineage(&state, &cap, id).await?))
}
