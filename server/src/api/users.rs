//! `POST /users`, `GET /users`, and an account's lifecycle: disable, enable, reset its
//! password, list and revoke its sessions (admin).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::AdminCap;
use crate::domain::ids::UserId;
use crate::service::accounts::{self, CreateUser};
use crate::store::sessions::SessionInfo;
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
        (status = 422, description = "Roles that exclude one another (`role_conflict`), a password the policy refuses (`weak_password`: length; `password_one_character`; `password_contains_username`; `password_common`), an unknown `person_id` (`unknown_reference`), or a departed one (`person_departed`). The new account must change its password at its first sign-in.", body = ErrorBody),
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

fn user_id(id: &str) -> Result<UserId, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

/// A password reset (`POST /users/{id}/password`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// A temporary password (the policy applies: at least 12 characters, at most 1024 bytes);
    /// the account must replace it at its next sign-in.
    #[schema(min_length = 12, max_length = 256)]
    password: String,
}

/// The sessions ended (`DELETE /users/{id}/sessions`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// How many sessions ended.
    revoked: usize,
}

/// Disable an account: login is refused, and every session and live stream of it ends at
/// once (admin). Disabling a disabled account changes nothing.
#[utoipa::path(
    post,
    operation_id = "users_disable",
    path = "/users/{id}/disable",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 422, description = "One's own account (`cannot_disable_self`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn disable(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    accounts::disable_user(&state, &cap, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a disabled account again (admin). Refused while its person has departed.
#[utoipa::path(
    post,
    operation_id = "users_enable",
    path = "/users/{id}/enable",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Enabled"),
        (status = 422, description = "The account's person has departed (`person_departed`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn enable(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    accounts::enable_user(&state, &cap, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset an account's password (admin): every session of it ends, and until its holder has
/// replaced this password (`POST /session/password`) every other call answers 403
/// `password_change_required`. The administrator never learns the password finally chosen.
#[utoipa::path(
    post,
    operation_id = "users_reset_password",
    path = "/users/{id}/password",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = ResetPassword,
    responses(
        (status = 204, description = "Reset; the account must change it at the next sign-in"),
        (status = 422, description = "The policy refuses the password (`weak_password`, `password_one_character`, `password_contains_username`, `password_common`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reset_password(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    accounts::reset_password(&state, &cap, user_id(&id)?, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account's live sessions, oldest first (admin).
#[utoipa::path(
    get,
    operation_id = "users_sessions",
    path = "/users/{id}/sessions",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The live sessions (never their tokens)", body = Vec<SessionInfo>),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn sessions(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<SessionInfo>>, ApiError> {
    Ok(axum::Json(
        accounts::sessions(&state, &cap, user_id(&id)?).await?,
    ))
}

/// End every session of an account, and their live streams (admin).
#[utoipa::path(
    delete,
    operation_id = "users_revoke_sessions",
    path = "/users/{id}/sessions",
    tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "How many sessions ended", body = Revoked),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn revoke_sessions(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Revoked>, ApiError> {
    let revoked = accounts::revoke_sessions(&state, &cap, user_id(&id)?).await?;
    Ok(axum::Json(Revoked { revoked }))
}
