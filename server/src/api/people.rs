//! `POST /people` (security officer), `GET /people`, `GET /people/{id}`, and status changes
//! `POST /people/{id}/leave`, `POST /people/{id}/clearance`, `POST /people/{id}/depart`,
//! `PATCH /people/{id}`, `GET /people/{id}/file`, `GET /people/reminders` (security officer).

use axum::body::Bytes;
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
use crate::service::people::{self, DepartInput, PersonEdit, PersonFile, PersonReminder};
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

/// Certify the return of every carrier (清退) of a leaving person (security officer): refused
/// while any carrier names them as holder.
#[utoipa::path(
    post,
    operation_id = "people_clearance",
    path = "/people/{id}/clearance",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person, with `cleared_at`", body = Person),
        (status = 409, description = "Not leaving (`not_leaving`), still holds carriers (`carriers_outstanding`), already cleared (`already_cleared`) or departed (`already_departed`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn clearance(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::clear(&state, &cap, id).await?))
}

/// Approve a departure (security officer): only after leaving and the clearance certificate
/// (清退); `departed`, with the decommissioning period (脱密期): the category's shortest from
/// the configuration, or the officer's longer `months`, or `lifelong`; counted from today.
/// The person's accounts are disabled and their sessions ended; their badge leaves every gate
/// policy.
#[utoipa::path(
    post,
    operation_id = "people_depart",
    path = "/people/{id}/depart",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    request_body(content = Option<DepartInput>, description = "Optional: a longer period"),
    responses(
        (status = 200, description = "The person, now `departed`, with `decommissioning_ends_on` (absent when lifelong)", body = Person),
        (status = 400, description = "Malformed body, or both `months` and `lifelong` (`bad_request`)", body = ErrorBody),
        (status = 409, description = "Not leaving (`not_leaving`), not cleared (`not_cleared`), still holds carriers (`carriers_outstanding`) or already departed (`already_departed`)", body = ErrorBody),
        (status = 422, description = "A period shorter than the category's minimum (`period_too_short`) or beyond the calendar (`period_out_of_range`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn depart(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    let input: DepartInput = if body.iter().all(u8::is_ascii_whitespace) {
        DepartInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    Ok(axum::Json(people::depart(&state, &cap, id, input).await?))
}

/// Edit a person (security officer): the given fields change, with the reason, in the
/// person's history and the audit trail. A replaced badge stops working at the gates at once.
#[utoipa::path(
    patch,
    operation_id = "people_edit",
    path = "/people/{id}",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    request_body = PersonEdit,
    responses(
        (status = 200, description = "The person as now", body = Person),
        (status = 409, description = "The badge tag is taken (`conflict`) or the person departed (`already_departed`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn edit(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<PersonEdit>,
) -> Result<axum::Json<Person>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::edit(&state, &cap, id, body).await?))
}

/// A person's file (security officer): the person, the carriers they still hold (each to
/// return before 清退; no titles) and the history of edits.
#[utoipa::path(
    get,
    operation_id = "people_file",
    path = "/people/{id}/file",
    tag = "people",
    params(("id" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "The person's file", body = PersonFile),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn file(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<PersonFile>, ApiError> {
    let id: PersonId = id.parse().map_err(|_| ApiError::NotFound)?;
    Ok(axum::Json(people::file(&state, &cap, id).await?))
}

/// The reminders due today (security officer): trainings and commitments running out within
/// `[people] certificate_reminder_days`, decommissioning periods ending within
/// `decommissioning_reminder_days`; soonest first.
#[utoipa::path(
    get,
    operation_id = "people_reminders",
    path = "/people/reminders",
    tag = "people",
    responses(
        (status = 200, description = "Reminders, soonest first", body = Vec<PersonReminder>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reminders(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<PersonReminder>>, ApiError> {
    Ok(axum::Json(people::reminders(&state, &cap).await?))
}
