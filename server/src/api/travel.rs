//! Travel abroad (出境审批, security officer): `POST /travel`, `GET /travel`,
//! `POST /travel/{id}/approve`, `POST /travel/{id}/reject`, on the one approval model.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::SecurityOfficerCap;
use crate::domain::approval::RequestState;
use crate::domain::ids::RequestId;
use crate::service::approvals::Decided;
use crate::service::travel::{self, NewTravel, TravelFiled};
use crate::store::approvals::Request;

fn request_id(text: &str) -> Result<RequestId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// File a travel request for a classified person, or a departed one in their decommissioning
/// period: one approval by another officer, two different people for core personnel. The
/// answer says whether the trip overlaps the decommissioning period.
#[utoipa::path(
    post,
    operation_id = "travel_request",
    path = "/travel",
    tag = "people",
    request_body = NewTravel,
    responses(
        (status = 201, description = "Requested", body = TravelFiled),
        (status = 422, description = "Unknown person (`unknown_reference`), the trip ends before it starts (`ends_before_start`), or a departed person no longer restricted (`not_restricted`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Json(body): Json<NewTravel>,
) -> Result<(StatusCode, axum::Json<TravelFiled>), ApiError> {
    let filed = travel::request(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(filed)))
}

/// Filter of `GET /travel`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TravelQuery {
    /// Only requests in this state (`requested`, `approved`, `rejected`, `done`).
    #[serde(default)]
    #[param(value_type = Option<RequestState>)]
    state: Option<String>,
}

/// Travel requests, newest first: who goes abroad when, and whether it is approved.
#[utoipa::path(
    get,
    operation_id = "travel_list",
    path = "/travel",
    tag = "people",
    params(TravelQuery),
    responses(
        (status = 200, description = "Travel requests", body = Vec<Request>),
        (status = 400, description = "A malformed parameter (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Query(query): Query<TravelQuery>,
) -> Result<axum::Json<Vec<Request>>, ApiError> {
    let filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            RequestState::from_name(name)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown state {name}")))?,
        ),
    };
    Ok(axum::Json(travel::list(&state, &cap, filter).await?))
}

/// Approve a travel request (never the requester or the traveller; core personnel need two
/// different people).
#[utoipa::path(
    post,
    operation_id = "travel_approve",
    path = "/travel/{id}/approve",
    tag = "people",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Approved, or still `requested` awaiting a second officer", body = Decided),
        (status = 409, description = "Already approved by this officer (`already_approved`) or not awaiting approval (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester or the traveller (`self_approval`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(travel::approve(&state, &cap, id).await?))
}

/// A rejection's reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TravelReject {
    /// Why (1 to 200 printable characters).
    reason: String,
}

/// Reject a travel request with a reason.
#[utoipa::path(
    post,
    operation_id = "travel_reject",
    path = "/travel/{id}/reject",
    tag = "people",
    params(("id" = String, Path, description = "Request id")),
    request_body = TravelReject,
    responses(
        (status = 200, description = "Rejected", body = Decided),
        (status = 409, description = "Not awaiting approval (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester or the traveller (`self_approval`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reject(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<TravelReject>,
) -> Result<axum::Json<Decided>, ApiError> {
    let id = request_id(&id)?;
    Ok(axum::Json(
        travel::reject(&state, &cap, id, body.reason).await?,
    ))
}
