//! `POST /zones` (admin), `GET /zones` (anyone signed in).

use axum::extract::State;
use axum::http::StatusCode;

use super::Created;
use super::error::ApiError;
use super::extract::Json;
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::auth::extract::Authenticated;
use crate::domain::ids::{ZoneId, is_valid_label};
use crate::store::zones::{NewZone, Zone};

/// Create a zone.
pub async fn create(
    cap: AdminCap,
    State(state): State<AppState>,
    Json(body): Json<NewZone>,
) -> Result<(StatusCode, axum::Json<Created<ZoneId>>), ApiError> {
    if !is_valid_label(&body.name) {
        return Err(ApiError::BadRequest(
            "name must be 1 to 200 printable characters".into(),
        ));
    }
    let id = body.id.clone();
    state.store().create_zone(&cap, body, state.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// All zones.
pub async fn list(
    caller: Authenticated,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Zone>>, ApiError> {
    Ok(axum::Json(state.store().zones(&caller).await?))
}
