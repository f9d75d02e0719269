//! `POST /people` (security officer), `GET /people`, `GET /people/{id}`, and status changes
//! `POST /people/{id}/leave`, `POST /people/{id}/depart` (security officer).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{PeopleReaderCap, SecurityOfficerCap};
use crate::domain::ids::PersonId;
use crate::service::people;
use crate::store::people::{NewPerson, Person};

/// Register a person, status `active` (security officer).
#[utoipa::path(
    post,
    operation_id = "people_create",
    path = "/people",
    tag = "people",
    request_body = NewPerson,
    responses(
        (status = 201, description = "Registered", body = Created<PersonId>),
        (status = 409, description = "The badge tag is taken (`conflict`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Json(body): Json<NewPerson>,
) -> Result<(StatusCode, axum::Json<Created<PersonId>>), ApiError> {
    let id = people::register(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// The register (security officer, custodian, admin).
#[utoipa::path(
    get,
    operation_id = "people_list",
    path = "/people",
    tag = "people",
    responses(
        (status = 200, description = "Everyone on the register", body = Vec<Person>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: PeopleReaderCap,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Person>>, ApiError> {
    Ok(axum::Json(people::list(&state, &cap).await?))
}

/// One person (security officer, custodian, admin).
///
/// An id that is not a number cannot exist, so it is a 404 like any unknown id.
#[utoipa::path(
    get,
    operation_id = "people_one",
    path = "/people/{id}",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person", body = Person),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one(
    cap: PeopleReaderCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::one(&state, &cap, id).await?))
}

/// A person starts leaving their post (离岗/离职): status `leaving`; they may no longer be
/// issued carriers (security officer).
#[utoipa::path(
    post,
    operation_id = "people_leave",
    path = "/people/{id}/leave",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person, now `leaving`", body = Person),
        (status = 409, description = "Already leaving (`already_leaving`) or departed (`already_departed`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn leave(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::leave(&state, &cap, id).await?))
}

/// Approve a departure: refused with 409 `carriers_outstanding` while the person holds any
/// carrier (清退 first); otherwise `departed`, with the decommissioning period (脱密期) from
/// the configuration counted from today (security officer).
#[utoipa::path(
    post,
    operation_id = "people_depart",
    path = "/people/{id}/depart",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person, now `departed`", body = Person),
        (status = 409, description = "Still holds carriers (`carriers_outstanding`) or already departed (`already_departed`)", body = ErrorBody),
        (status = 422, description = "The decommissioning period falls outside the calendar (`period_out_of_range`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn depart(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::depart(&state, &cap, id).await?))
}
