//! `POST /zones` (admin), `GET /zones` (anyone signed in).

use axum::extract::State;
use axum::http::StatusCode;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals};
use crate::AppState;
use crate::auth::Authenticated;
use crate::auth::capability::AdminCap;
use crate::domain::ids::ZoneId;
use crate::service::zones;
use crate::store::zones::{NewZone, Zone};

/// Create a zone (admin).
#[utoipa::path(
    post,
    operation_id = "zones_create",
    path = "/zones",
    tag = "admin",
    request_body = NewZone,
    responses(
        (status = 201, description = "Created", body = Created<ZoneId>),
        (status = 409, description = "The id is taken (`conflict`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: AdminCap,
    State(state): State<AppState>,
    Json(body): Json<NewZone>,
) -> Result<(StatusCode, axum::Json<Created<ZoneId>>), ApiError> {
    let id = zones::create(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// All zones (any role).
#[utoipa::path(
    get,
    operation_id = "zones_list",
    path = "/zones",
    tag = "admin",
    responses(
        (status = 200, description = "Every zone", body = Vec<Zone>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    caller: Authenticated,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Zone>>, ApiError> {
    Ok(axum::Json(zones::list(&state, &caller).await?))
}
