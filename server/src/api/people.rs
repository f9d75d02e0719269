//! `POST /people` (security officer), `GET /people`, `GET /people/{id}`, and status changes
//! `POST /people/{id}/leave`, `POST /people/{id}/depart` (security officer).

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
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

super::paging::page_query!(
    /// Search and paging of `GET /people` (`q` matches name, department, badge tag).
    PeopleQuery,
    super::paging::people_sort_schema
);

/// One page of the register (security officer, custodian, admin): people matching every word
/// of `q` in their name, department or badge tag, sorted, at most `limit`; a
/// `Link: <…>; rel="next"` header while more remain.
#[utoipa::path(
    get,
    operation_id = "people_list",
    path = "/people",
    tag = "people",
    params(PeopleQuery),
    responses(
        (status = 200, description = "One page of the register", body = Vec<Person>,
            headers(("link" = String, description = "`<URI>; rel=\"next\"` while more remain"))),
        (status = 400, description = "A malformed parameter: limit, sort, cursor or q (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: PeopleReaderCap,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<PeopleQuery>,
) -> Result<Response, ApiError> {
    let page = people::page(&state, &cap, &query.into()).await?;
    Ok(super::paging::answer(&uri, page))
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
