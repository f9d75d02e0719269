//! Transfers (移交/签收) and dispatches (机要传递), on the one approval model:
//! `POST /transfers`, `/transfers/{id}/handover`, `/transfers/{id}/receive` and
//! `POST /dispatches`, `/dispatches/{id}/send`, `/dispatches/{id}/delivered` (custodian);
//! `POST /{transfers|dispatches}/{id}/approve` and `/reject {reason}` (security officer);
//! the lists and one request (custodian, security officer).
//!
//! Refusals: 409 when the state does not allow the step (`carrier_unavailable`, `not_ready`,
//! `not_handed_over`, `already_received`, `not_requested`, `already_approved`), 422 when a
//! rule says no (`self_approval`, `self_receipt`, `wrong_receiver`, `window_in_past`,
//! `unknown_reference`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::approval::RequestKind;
use crate::domain::ids::RequestId;
use crate::service::approvals::{self, Decided};
use crate::service::transfers::{self, Movement, NewDispatch, NewTransfer};

fn request_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// A rejection's reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectReason {
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

/// A dispatch's delivery, recorded by hand.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Who signed for it at the destination (1 to 200 characters).
    received_by: String,
}

/// Ask for a transfer (custodian).
#[utoipa::path(
    post,
    operation_id = "transfers_create",
    path = "/transfers",
    tag = "moves",
    request_body = NewTransfer,
    responses(
        (status = 201, description = "Requested", body = Decided),
        (status = 409, description = "A carrier is not in storage or is on another open transfer or dispatch (`carrier_unavailable`), or is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "An unknown carrier or person (`unknown_reference`), or a `from_unit` that keeps no carriers (`unit_empty`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create_transfer(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<NewTransfer>,
) -> Result<(StatusCode, axum::Json<Decided>), ApiError> {
    let decided = transfers::request_transfer(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(decided)))
}

/// Every transfer, newest first (at most 200; custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "transfers_list",
    path = "/transfers",
    tag = "moves",
    responses(
        (status = 200, description = "Transfers with their steps", body = Vec<Movement>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list_transfers(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Movement>>, ApiError> {
    Ok(axum::Json(
        transfers::list(&state, &reader, RequestKind::Transfer).await?,
    ))
}

/// One transfer with its approvals and steps (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "transfers_one",
    path = "/transfers/{id}",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The transfer", body = Movement),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one_transfer(
    reader: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        transfers::show(&state, &reader, RequestKind::Transfer, id).await?,
    ))
}

/// Approve a transfer (security officer; never the requester or the receiving custodian; TS needs two different people).
#[utoipa::path(
    post,
    operation_id = "transfers_approve",
    path = "/transfers/{id}/approve",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved (or still waiting for a second TS approver)", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`) or already approved by this officer (`already_approved`)", body = ErrorBody),
        (status = 422, description = "The officer may not decide on it (`self_approval`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn approve_transfer(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        approvals::approve(&state, &cap, RequestKind::Transfer, id).await?,
    ))
}

/// Reject a transfer with a reason (security officer).
#[utoipa::path(
    post,
    operation_id = "transfers_reject",
    path = "/transfers/{id}/reject",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    request_body = RejectReason,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer may not decide on it (`self_approval`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reject_transfer(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RejectReason>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        approvals::reject(&state, &cap, RequestKind::Transfer, id, body.reason).await?,
    ))
}

/// Ask for a dispatch (custodian).
#[utoipa::path(
    post,
    operation_id = "dispatches_create",
    path = "/dispatches",
    tag = "moves",
    request_body = NewDispatch,
    responses(
        (status = 201, description = "Requested", body = Decided),
        (status = 409, description = "A carrier is not in storage or is on another open transfer or dispatch (`carrier_unavailable`), or is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "An unknown carrier or person (`unknown_reference`), or a window that does not end in the future (`window_in_past`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create_dispatch(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<NewDispatch>,
) -> Result<(StatusCode, axum::Json<Decided>), ApiError> {
    let decided = transfers::request_dispatch(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(decided)))
}

/// Every dispatch, newest first (at most 200; custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "dispatches_list",
    path = "/dispatches",
    tag = "moves",
    responses(
        (status = 200, description = "Dispatchs with their steps", body = Vec<Movement>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list_dispatches(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Movement>>, ApiError> {
    Ok(axum::Json(
        transfers::list(&state, &reader, RequestKind::Dispatch).await?,
    ))
}

/// One dispatch with its approvals and steps (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "dispatches_one",
    path = "/dispatches/{id}",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The dispatch", body = Movement),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one_dispatch(
    reader: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        transfers::show(&state, &reader, RequestKind::Dispatch, id).await?,
    ))
}

/// Approve a dispatch (security officer; never the requester; TS needs two different people).
#[utoipa::path(
    post,
    operation_id = "dispatches_approve",
    path = "/dispatches/{id}/approve",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved (or still waiting for a second TS approver)", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`) or already approved by this officer (`already_approved`)", body = ErrorBody),
        (status = 422, description = "The officer may not decide on it (`self_approval`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn approve_dispatch(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        approvals::approve(&state, &cap, RequestKind::Dispatch, id).await?,
    ))
}

/// Reject a dispatch with a reason (security officer).
#[utoipa::path(
    post,
    operation_id = "dispatches_reject",
    path = "/dispatches/{id}/reject",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    request_body = RejectReason,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting a decision (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer may not decide on it (`self_approval`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reject_dispatch(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RejectReason>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        approvals::reject(&state, &cap, RequestKind::Dispatch, id, body.reason).await?,
    ))
}

/// Hand over an approved transfer (the sending custodian): carriers `in_transfer`, custody
/// unchanged until the receipt.
#[utoipa::path(
    post,
    operation_id = "transfers_handover",
    path = "/transfers/{id}/handover",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Handed over", body = Movement),
        (status = 409, description = "Not approved or handed over already (`not_ready`), or a carrier left storage (`carrier_unavailable`) or is out for repair (`in_repair`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn handover(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(transfers::hand_over(&state, &cap, id).await?))
}

/// Sign for a handed-over transfer (the receiving custodian): the carriers now belong to the
/// receiving unit, in storage.
#[utoipa::path(
    post,
    operation_id = "transfers_receive",
    path = "/transfers/{id}/receive",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Received; the transfer is done", body = Movement),
        (status = 409, description = "Not handed over (`not_handed_over`) or received already (`already_received`)", body = ErrorBody),
        (status = 422, description = "The caller handed it over (`self_receipt`) or is not the named custodian (`wrong_receiver`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn receive(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(transfers::receive(&state, &cap, id).await?))
}

/// Send an approved dispatch with its courier: carriers `dispatched`, allowed through the
/// gates until the window ends.
#[utoipa::path(
    post,
    operation_id = "dispatches_send",
    path = "/dispatches/{id}/send",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Sent", body = Movement),
        (status = 409, description = "Not approved or sent already (`not_ready`), or a carrier left storage (`carrier_unavailable`) or is out for repair (`in_repair`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn send(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(transfers::send(&state, &cap, id).await?))
}

/// Record a sent dispatch's delivery by hand (custodian).
#[utoipa::path(
    post,
    operation_id = "dispatches_delivered",
    path = "/dispatches/{id}/delivered",
    tag = "moves",
    params(("id" = String, Path, description = "Request id")),
    request_body = Delivery,
    responses(
        (status = 200, description = "Delivered; the dispatch is done", body = Movement),
        (status = 409, description = "Not sent (`not_handed_over`) or delivered already (`already_received`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn delivered(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Delivery>,
) -> Result<axum::Json<Movement>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        transfers::delivered(&state, &cap, id, body.received_by).await?,
    ))
}
