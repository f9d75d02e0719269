//! `POST /session` (login), `DELETE /session` (logout) and `POST /session/password` (change
//! one's own password).

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals};
use crate::AppState;
use crate::api::auth::{PendingOrSignedIn, SESSION_COOKIE};
use crate::auth::source::ClientAddr;
use crate::domain::role::Roles;
use crate::domain::time::Timestamp;
use crate::service::accounts::{self, ChangePassword};

/// Login request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// Login answer. `token` is for `Authorization: Bearer`; browsers use the cookie set alongside
/// and send `csrf_token` back in `x-csrf-token` on state-changing requests.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    token: String,
    roles: Roles,
    csrf_token: String,
    expires_at: Timestamp,
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Log in: check the password and open a session.
///
/// Answers the bearer token and sets the same session as an `HttpOnly` cookie.
#[utoipa::path(
    post,
    operation_id = "session_login",
    path = "/session",
    tag = "session",
    request_body = Login,
    responses(
        (status = 200, description = "Logged in", body = LoginAnswer,
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 401, description = "Wrong username or password, or a disabled account (`invalid_credentials`)", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins for this username or from this source address (`too_many_attempts`): refused without checking the password",
            body = ErrorBody, headers(("retry-after" = u64, description = "Seconds until an attempt is taken again"))),
        (status = 503, description = "Every password-hashing slot is busy and the queue is full or its deadline passed (`busy`): refused without checking the password",
            body = ErrorBody, headers(("retry-after" = u64, description = "Seconds after which a retry is reasonable"))),
        InputRefusals,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let source = client.and_then(|c| c.0.0);
    let grant = accounts::login(&state, source, body.username, body.password).await?;
    let settings = state.settings();
    let set_cookie = cookie(
        &grant.token,
        settings.session_ttl_secs,
        settings.secure_cookies,
    );
    let answer = LoginAnswer {
        token: grant.token,
        roles: grant.roles,
        csrf_token: grant.csrf,
        expires_at: grant.expires_at,
    };
    Ok(([(SET_COOKIE, set_cookie)], axum::Json(answer)).into_response())
}

/// Log out: end the caller's session and clear the cookie (any role, also an account that
/// must change its password). The session's open live streams end with it.
#[utoipa::path(
    delete,
    operation_id = "session_logout",
    path = "/session",
    tag = "session",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared"),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    PendingOrSignedIn(caller): PendingOrSignedIn,
) -> Result<Response, ApiError> {
    accounts::logout(&state, &caller).await?;
    let clear = cookie("", 0, state.settings().secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, clear)]).into_response())
}

/// Change one's own password (any signed-in user; the one call, with logout, that an account
/// which must change its password may make).
///
/// `old` must be the current password (wrong answers count towards the username's sign-in
/// throttle); `new` must follow the policy and differ from `old`. The caller's session stays
/// and may act at once; every other session of the account ends.
#[utoipa::path(
    post,
    operation_id = "session_change_password",
    path = "/session/password",
    tag = "session",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed"),
        (status = 403, description = "`old` is not the current password (`wrong_password`), or a cookie session sent no `x-csrf-token` (`csrf`)", body = ErrorBody),
        (status = 422, description = "`new` breaks the policy (`weak_password`: length; `password_one_character`; `password_contains_username`; `password_common`) or equals `old` (`password_unchanged`)", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords for this username (`too_many_attempts`)",
            body = ErrorBody, headers(("retry-after" = u64, description = "Seconds until an attempt is taken again"))),
        (status = 401, description = "No session, or an expired one (`unauthenticated`)", body = ErrorBody),
        InputRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    PendingOrSignedIn(caller): PendingOrSignedIn,
    Json(body): Json<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    accounts::change_password(&state, &caller, body).await?;
    Ok(StatusCode::NO_CONTENT)
}
