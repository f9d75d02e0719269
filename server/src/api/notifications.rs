//! `GET /notifications` (security officer): the deliveries of alert notifications (e-mail,
//! webhooks) and where each is: pending, retrying, sent or failed.

use axum::extract::State;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::Query;
use super::openapi::SessionRefusals;
use crate::AppState;
use crate::auth::capability::SecurityOfficerCap;
use crate::service::notify;
use crate::store::notify::{DeliveryState, DeliveryView};

/// `GET /notifications` query; every parameter optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending`, `retrying`, `sent` or `failed`.
    #[serde(default)]
    #[param(value_type = Option<DeliveryState>)]
    state: Option<String>,
    /// 1 to 1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// Deliveries of alert notifications, newest first (security officer).
#[utoipa::path(
    get,
    operation_id = "notifications_list",
    path = "/notifications",
    tag = "alerts",
    params(ListQuery),
    responses(
        (status = 200, description = "Deliveries, newest first", body = Vec<DeliveryView>),
        (status = 400, description = "A bad `state` or `limit` (`bad_request`)", body = super::error::ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<DeliveryView>>, ApiError> {
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(DeliveryState::from_name(s).ok_or_else(|| {
            ApiError::BadRequest("state must be pending, retrying, sent or failed".into())
        })?),
    };
    let limit = match query.limit.as_deref().filter(|s| !s.is_empty()) {
        None => 100,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be 1 to 1000".into()))?,
    };
    Ok(axum::Json(notify::list(&state, &cap, wanted, limit).await?))
}
