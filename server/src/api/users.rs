//! `POST /users`, `GET /users` (admin).

use axum::extract::State;
use axum::http::StatusCode;

use super::Created;
use super::error::ApiError;
use super::extract::Json;
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::auth::{self, CreateUser};
use crate::domain::ids::UserId;
use crate::store::users::User;

/// Create an account.
pub async fn create(
    cap: AdminCap,
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<Created<UserId>>), ApiError> {
    let id = auth::create_user(state.store(), &cap, body, state.now()).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// List accounts (without password hashes).
pub async fn list(
    cap: AdminCap,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    Ok(axum::Json(state.store().users(&cap).await?))
}
