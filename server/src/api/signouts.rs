//! Sign-outs: `POST /signouts` (custodian), `POST /signouts/{id}/approve` (security officer),
//! `POST /signouts/{id}/issue` and `/return` (custodian), `POST /signouts/{id}/cancel` and
//! `GET /signouts`, `GET /signouts/{id}` (custodian, security officer).
//!
//! Rule refusals answer with their own codes ([`ApiError`]): 409 when the state does not
//! allow the step (`not_approved`, `already_approved`, `carrier_not_out`, ...), 422 when a rule
//! says no (`self_approval`, `due_in_past`, and an issue refusal, which lists every reason in
//! `reasons`, its first one being `error`).

use axum::Json as AxumJson;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::ids::{CarrierId, PersonId, SignoutId};
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;
use crate::service::lists::ListParams;
use crate::service::signouts::{self, Approved, Issued, Rejected, Returned};
use crate::store::signouts::{NewSignout, Signout};

fn signout_id(text: &str) -> Result<SignoutId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// Sign-out request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSignout {
    /// 1 to 100 distinct carriers.
    #[schema(schema_with = carrier_ids_schema)]
    carrier_ids: Vec<CarrierId>,
    /// The person who will hold them.
    borrower: PersonId,
    /// Why: 1 to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    purpose: String,
    /// When they are due back (in the future).
    due_at: Timestamp,
    /// Whether they may leave the secure area (外带).
    may_leave: bool,
    /// Send it as "needs override" (the rules would refuse the issue, e.g. a clearance
    /// mismatch, and the custodian still wants it): the custodian's note, 1 to 200
    /// characters. Only an officer approving with a written override reason approves it.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    override_note: Option<String>,
}

/// `carrier_ids` of a request: 1 to 100 distinct carrier ids.
pub(crate) fn carrier_ids_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("CarrierId"))
        .min_items(Some(1))
        .max_items(Some(100))
        .unique_items(true)
        .description(Some("1 to 100 distinct carriers."))
        .build()
}

/// The answer to a request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Requested {
    /// The new sign-out.
    id: SignoutId,
    /// `requested`.
    state: SignoutState,
}

/// Request a sign-out (custodian).
#[utoipa::path(
    post,
    operation_id = "signouts_create",
    path = "/signouts",
    tag = "signouts",
    request_body = RequestSignout,
    responses(
        (status = 201, description = "Requested", body = Requested),
        (status = 409, description = "A carrier is not available (`carrier_unavailable`) or is out for repair (`in_repair`)", body = ErrorBody),
        (status = 422, description = "Due time not in the future (`due_in_past`), or an unknown carrier or borrower (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<RequestSignout>,
) -> Result<(StatusCode, AxumJson<Requested>), ApiError> {
    let new = NewSignout {
        carrier_ids: body.carrier_ids,
        borrower: body.borrower,
        purpose: body.purpose,
        due_at: body.due_at,
        may_leave: body.may_leave,
        override_note: body.override_note,
    };
    let id = signouts::request(&state, &cap, new).await?;
    Ok((
        StatusCode::CREATED,
        AxumJson(Requested {
            id,
            state: SignoutState::Requested,
        }),
    ))
}

/// Approve a sign-out (security officer; never the requester or the borrower). A TS sign-out
/// stays `requested` until a second, different approver.
#[utoipa::path(
    post,
    operation_id = "signouts_approve",
    path = "/signouts/{id}/approve",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    responses(
        (status = 200, description = "Approved (or still waiting for a second TS approver)", body = Approved),
        (status = 409, description = "Not awaiting approval, or already approved by this officer; the code names it", body = ErrorBody),
        (status = 422, description = "The approver is the requester or the borrower (`self_approval`), or the sign-out needs an override (`override_reason_required`: use `/override`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Approved>, ApiError> {
    let id = signout_id(&id)?;
    let approved = signouts::approve(&state, &cap, id, None).await?;
    Ok(AxumJson(approved))
}

/// An override's written reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// Why the officer overrides the failed checks (1 to 200 printable characters, not
    /// blank); shown on the sign-out and kept in the audit.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

/// Approve a sign-out sent as "needs override", overriding the failed checks with a written
/// reason (security officer; the same rules as an approval otherwise). Once approved, the
/// issue waives the overridable refusals (clearance, training, commitment), never a leaving
/// borrower or a custodian issuing to themselves.
#[utoipa::path(
    post,
    operation_id = "signouts_override",
    path = "/signouts/{id}/override",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    request_body = OverrideBody,
    responses(
        (status = 200, description = "Approved with the override (or still waiting for a second TS approver)", body = Approved),
        (status = 409, description = "Not awaiting approval, or already approved by this officer; the code names it", body = ErrorBody),
        (status = 422, description = "The approver is the requester or the borrower (`self_approval`), or the sign-out was not sent as needing an override (`override_not_requested`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn override_approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<OverrideBody>,
) -> Result<AxumJson<Approved>, ApiError> {
    let id = signout_id(&id)?;
    let approved = signouts::approve(&state, &cap, id, Some(body.reason)).await?;
    Ok(AxumJson(approved))
}

/// A rejection's reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (1 to 200 printable characters, not blank).
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    reason: String,
}

/// Reject a sign-out with a reason (security officer; never the requester or the borrower).
/// Only while it awaits approval; its carriers are free again at once.
#[utoipa::path(
    post,
    operation_id = "signouts_reject",
    path = "/signouts/{id}/reject",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Rejected", body = Rejected),
        (status = 409, description = "Not awaiting approval (`not_requested`)", body = ErrorBody),
        (status = 422, description = "The officer is the requester or the borrower (`self_approval`)", body = ErrorBody),
        InputRefusals,
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn reject(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RejectBody>,
) -> Result<AxumJson<Rejected>, ApiError> {
    let id = signout_id(&id)?;
    let rejected = signouts::reject(&state, &cap, id, body.reason).await?;
    Ok(AxumJson(rejected))
}

/// Hand an approved sign-out's carriers to the borrower (custodian). Refused for a borrower
/// without clearance for the level, with expired training, without a signed commitment, or
/// leaving.
#[utoipa::path(
    post,
    operation_id = "signouts_issue",
    path = "/signouts/{id}/issue",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    responses(
        (status = 200, description = "Issued: `out`", body = Issued),
        (status = 409, description = "Not approved (`not_approved`) or a carrier is not available (`carrier_unavailable`, out for repair: `in_repair`); the code names it", body = ErrorBody),
        (status = 422, description = "The borrower may not hold them: `reasons` lists every code, `error` is the first", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn issue(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Issued>, ApiError> {
    let id = signout_id(&id)?;
    let issued = signouts::issue(&state, &cap, id).await?;
    Ok(AxumJson(issued))
}

/// Return body; absent or `{}` returns every outstanding carrier.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnCarriers {
    /// The carriers coming back (at most 100); absent: every outstanding one.
    #[serde(default)]
    carrier_ids: Option<Vec<CarrierId>>,
    /// What was checked on return (seal, pages, note); recorded with the return.
    #[serde(default)]
    condition: Option<signouts::ReturnCondition>,
}

/// Take carriers back, some or all (custodian). An empty body returns every outstanding
/// carrier.
#[utoipa::path(
    post,
    operation_id = "signouts_return_carriers",
    path = "/signouts/{id}/return",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    request_body(content = Option<ReturnCarriers>, description = "Optional: which carriers"),
    responses(
        (status = 200, description = "`returned` once every carrier is back, else still `out`", body = Returned),
        (status = 400, description = "Malformed body (`bad_request`), or a condition out of range (pages_counted over 100000, a note over 500 characters)", body = ErrorBody),
        (status = 409, description = "Not out (`not_out`) or a carrier is not out on it (`carrier_not_out`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn return_carriers(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<AxumJson<Returned>, ApiError> {
    let id = signout_id(&id)?;
    // No body, or JSON `null` (the document's `oneOf: [null, ReturnCarriers]`): every
    // outstanding carrier.
    let body: ReturnCarriers = if body.iter().all(u8::is_ascii_whitespace) {
        ReturnCarriers::default()
    } else {
        serde_json::from_slice::<Option<ReturnCarriers>>(&body)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
            .unwrap_or_default()
    };
    let returned =
        signouts::return_checked(&state, &cap, id, body.carrier_ids, body.condition).await?;
    Ok(AxumJson(returned))
}

/// The answer to a cancellation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Cancelled {
    /// The sign-out.
    id: SignoutId,
    /// `cancelled`.
    state: SignoutState,
}

/// Cancel a sign-out that has not been issued (custodian, security officer).
#[utoipa::path(
    post,
    operation_id = "signouts_cancel",
    path = "/signouts/{id}/cancel",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    responses(
        (status = 200, description = "Cancelled", body = Cancelled),
        (status = 409, description = "Already issued or closed (`not_cancellable`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn cancel(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Cancelled>, ApiError> {
    let id = signout_id(&id)?;
    let new_state = signouts::cancel(&state, &cap, id).await?;
    Ok(AxumJson(Cancelled {
        id,
        state: new_state,
    }))
}

/// Filter of `GET /signouts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only sign-outs in this state.
    #[serde(default)]
    #[param(value_type = Option<SignoutState>)]
    state: Option<String>,
    /// Search words (at most 200 characters): each must be a substring of the borrower's
    /// name, the requester's username, the purpose or a carrier's control number.
    #[serde(default)]
    #[param(schema_with = super::paging::q_schema)]
    q: Option<String>,
    /// Sign-outs per page: 1 to 500, 100 when absent.
    #[serde(default)]
    #[param(schema_with = super::paging::limit_schema)]
    limit: Option<String>,
    /// The cursor from the previous page's `Link: rel="next"` header (opaque).
    #[serde(default)]
    #[param(schema_with = super::paging::cursor_schema)]
    cursor: Option<String>,
    /// The order: a key, or `-key` for descending; `id` when absent.
    #[serde(default)]
    #[param(schema_with = super::paging::signout_sort_schema)]
    sort: Option<String>,
}

/// Sign-outs, optionally in one state; requested and approved ones say what an issue would
/// be refused for today (`would_refuse`) (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "signouts_list",
    path = "/signouts",
    tag = "signouts",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of matching sign-outs", body = Vec<Signout>,
            headers(("link" = String, description = "`<URI>; rel=\"next\"` while more remain"))),
        (status = 400, description = "A malformed parameter: state, limit, sort, cursor or q (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: CustodyReader,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(SignoutState::from_name(name).ok_or_else(|| {
            ApiError::BadRequest(
                "state must be requested, approved, out, returned, cancelled or rejected".into(),
            )
        })?),
    };
    let params = ListParams {
        limit: query.limit,
        cursor: query.cursor,
        sort: query.sort,
        q: query.q,
    };
    let page = signouts::page(&state, &cap, filter, &params).await?;
    Ok(super::paging::answer(&uri, page))
}

/// One sign-out (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "signouts_one",
    path = "/signouts/{id}",
    tag = "signouts",
    params(("id" = String, Path, description = "Sign-out id")),
    responses(
        (status = 200, description = "The sign-out", body = Signout),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Signout>, ApiError> {
    let id = signout_id(&id)?;
    Ok(AxumJson(signouts::one(&state, &cap, id).await?))
}
