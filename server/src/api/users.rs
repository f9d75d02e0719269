//! `POST /users`, `GET /users` (admin).

use axum::extract::State;
use axum::http::StatusCode;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals};
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::domain::ids::UserId;
use crate::service::accounts::{self, CreateUser};
use crate::store::users::User;

/// Create an account (admin).
#[utoipa::path(
    post,
    operation_id = "users_create",
    path = "/users",
    tag = "admin",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = Created<UserId>),
        (status = 409, description = "The username is taken (`conflict`)", body = ErrorBody),
        (status = 422, description = "Roles that exclude one another (`role_conflict`), a password the policy refuses (`weak_password`), or an unknown `person_id` (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: AdminCap,
    State(state): State<AppState>,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, axum::Json<Created<UserId>>), ApiError> {
    let id = accounts::create_user(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// List accounts, without password hashes (admin).
#[utoipa::path(
    get,
    operation_id = "users_list",
    path = "/users",
    tag = "admin",
    responses(
        (status = 200, description = "Every account", body = Vec<User>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: AdminCap,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    Ok(axum::Json(accounts::users(&state, &cap).await?))
}
