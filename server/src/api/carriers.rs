//! `POST /carriers` (custodian); `GET /carriers`, `GET /carriers/{id}`,
//! `GET /carriers/{id}/history` (custodian, security officer); `GET /carriers/by-tag/{tag}`
//! (custodian, guard: a guard's answer has no title).
//!
//! Some endpoints admit two roles. Rather than add capability types, [`CustodyReader`] and
//! [`TagReader`] hold one of the existing capabilities (`CustodianCap`, `SecurityOfficerCap`,
//! `GuardCap`), which can only be obtained through their own role checks; so the checks stay
//! in one place and the use cases still cannot be reached without one.

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader, TagReader};
use crate::domain::carrier::{CarrierKind, CarrierState, Tag};
use crate::domain::ids::{CarrierId, DeviceId};
use crate::domain::level::Level;
use crate::service::carriers::{self, CarrierRegistration};
use crate::service::lists::ListParams;
use crate::store::carriers::{Carrier, CarrierSummary, HistoryItem};

/// Carrier registration request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCarrier {
    /// The control number (编号): 1 to 24 characters of `A-Z`, `0-9`, `-`.
    #[schema(
        example = "CU-2026-0001",
        pattern = "^[A-Z0-9-]{1,24}$",
        min_length = 1,
        max_length = 24
    )]
    control_no: String,
    /// What the carrier physically is.
    kind: CarrierKind,
    /// Its classification level.
    level: Level,
    /// The title: shown only to custodians and security officers, never audited or logged; 1
    /// to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    title: String,
    /// Copy number, for numbered copies.
    #[serde(default)]
    copy_no: Option<u32>,
    /// Number of copies made.
    #[serde(default)]
    copies: Option<u32>,
    /// The owning unit: 1 to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
    owner_unit: String,
    /// The cabinet it lives in.
    #[serde(default)]
    home_device: Option<DeviceId>,
    /// Its tags, at most 16, each once: `epc:HEX` (1 to 62 bytes), `em:HEX` (10 digits) or
    /// `barcode:TEXT` (printable ASCII; a Custos label `CU…` or a GS1 `(8004)` GIAI is
    /// checked as such; the pattern declares plain texts that are neither).
    #[schema(example = json!(["epc:3474257BF40000000000162E"]), max_items = 16, value_type = Vec<TagText>)]
    tags: Vec<String>,
    /// Its secrecy period (保密期限) in whole years: 1 to the level's longest (TS 30, S 20,
    /// C 10; longer for the level is 422 `secrecy_period_out_of_range`). Absent: the level's
    /// longest, as the law sets for an unmarked item.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30, example = 10)]
    secrecy_years: Option<u32>,
}

/// A tag as typed, in the OpenAPI document: what [`Tag::parse`] accepts, as a pattern (a
/// plain barcode text declared by its first character, which cannot start a Custos label
/// `CU…`, a GS1 `(8004)`/`8004` GIAI, or an AIM prefix `]`).
pub struct TagText;

/// The pattern of [`TagText`].
pub const TAG_PATTERN: &str =
    "^(epc:([0-9A-Fa-f]{2}){1,62}|em:[0-9A-Fa-f]{10}|barcode:[!#-'*-7:-BD-Z^-bd-~][ -~]{0,200})$";

impl utoipa::PartialSchema for TagText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(TAG_PATTERN))
            .examples([serde_json::Value::from("epc:3474257BF40000000000162E")])
            .into()
    }
}

impl utoipa::ToSchema for TagText {}

impl std::fmt::Debug for RegisterCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterCarrier")
            .field("control_no", &self.control_no)
            .field("level", &self.level)
            .field("title", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Register a carrier with its tags (custodian).
#[utoipa::path(
    post,
    operation_id = "carriers_create",
    path = "/carriers",
    tag = "carriers",
    request_body = RegisterCarrier,
    responses(
        (status = 201, description = "Registered", body = Created<CarrierId>),
        (status = 409, description = "The control number or a tag is taken, or a tag is repeated (`conflict`)", body = ErrorBody),
        (status = 422, description = "A registration rule says no; the code names it: copies without a copy number (`copy_number_required`), a copy number above the copies (`copy_number_out_of_range`), a home that is not a cabinet (`home_not_cabinet`), a Custos label of another control number (`label_mismatch`), a secrecy period longer than the level's longest (`secrecy_period_out_of_range`), an unknown home device (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<RegisterCarrier>,
) -> Result<(StatusCode, axum::Json<Created<CarrierId>>), ApiError> {
    let input = CarrierRegistration {
        control_no: body.control_no,
        kind: body.kind,
        level: body.level,
        title: body.title,
        copy_no: body.copy_no,
        copies: body.copies,
        owner_unit: body.owner_unit,
        home_device: body.home_device,
        tags: body.tags,
        secrecy_years: body.secrecy_years,
    };
    let id = carriers::register(&state, &cap, input).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

fn carrier_id(text: &str) -> Result<CarrierId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// One carrier, with its title, `state`, `holder` and `last_seen` (custodian, security
/// officer).
#[utoipa::path(
    get,
    operation_id = "carriers_one",
    path = "/carriers/{id}",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses(
        (status = 200, description = "The carrier", body = Carrier),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Carrier>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(carriers::one(&state, &cap, id).await?))
}

/// Filters and paging of `GET /carriers`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only carriers in this state.
    #[serde(default)]
    #[param(value_type = Option<CarrierState>)]
    state: Option<String>,
    /// Search words (split at white space; at most 200 characters): each must be a substring
    /// (any case) of the control number, the title, the owning unit, the holder's name or
    /// department, or a tag.
    #[serde(default)]
    #[param(schema_with = super::paging::q_schema)]
    q: Option<String>,
    /// Carriers per page: 1 to 500, 100 when absent.
    #[serde(default)]
    #[param(schema_with = super::paging::limit_schema)]
    limit: Option<String>,
    /// The cursor from the previous page's `Link: rel="next"` header (opaque).
    #[serde(default)]
    #[param(schema_with = super::paging::cursor_schema)]
    cursor: Option<String>,
    /// The order: a key, or `-key` for descending; `id` (order of registration) when absent.
    #[serde(default)]
    #[param(schema_with = super::paging::carrier_sort_schema)]
    sort: Option<String>,
}

/// One page of the register: carriers optionally in one state and matching every word of
/// `q`, sorted, at most `limit` (custodian, security officer). While more remain, the answer
/// has a `Link: <…>; rel="next"` header (RFC 8288) whose URI asks for the next page.
#[utoipa::path(
    get,
    operation_id = "carriers_list",
    path = "/carriers",
    tag = "carriers",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of matching carriers", body = Vec<Carrier>,
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
    let filter_state = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(CarrierState::from_name(name).ok_or_else(|| {
            ApiError::BadRequest(
                "state must be in_storage, out, missing, archived or destroyed".into(),
            )
        })?),
    };
    let params = ListParams {
        limit: query.limit,
        cursor: query.cursor,
        sort: query.sort,
        q: query.q,
    };
    let page = carriers::page(&state, &cap, filter_state, &params).await?;
    Ok(super::paging::answer(&uri, page))
}

/// What `GET /carriers/by-tag/{tag}` answers: the title only for custodians.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TagAnswer {
    /// For a custodian: the carrier with its title.
    Carrier(Carrier),
    /// For a guard: the carrier without its title.
    Summary(CarrierSummary),
}

/// Resolve a scanned tag (`epc:HEX`, `barcode:TEXT`, `em:HEX`, percent-encoded in the path).
/// Custodians get the carrier with its title; guards get it without.
#[utoipa::path(
    get,
    operation_id = "carriers_by_tag",
    path = "/carriers/by-tag/{tag}",
    tag = "carriers",
    params(("tag" = TagText, Path, description = "The tag, percent-encoded", example = "epc:3474257BF40000000000162E")),
    responses(
        (status = 200, description = "The carrier (without `title` for a guard)", body = TagAnswer),
        (status = 400, description = "Not a tag (`bad_request`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn by_tag(
    reader: TagReader,
    State(state): State<AppState>,
    Path(tag): Path<String>,
) -> Result<axum::Json<TagAnswer>, ApiError> {
    let tag = Tag::parse(&tag).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(axum::Json(match reader {
        TagReader::Custodian(cap) => TagAnswer::Carrier(carriers::by_tag(&state, &cap, tag).await?),
        TagReader::Guard(cap) => {
            TagAnswer::Summary(carriers::summary_by_tag(&state, &cap, tag).await?)
        }
    }))
}

/// A carrier's history, oldest first: passages, cabinet moves, scans, sign-out steps and
/// alerts (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "carriers_history",
    path = "/carriers/{id}/history",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses(
        (status = 200, description = "The history, oldest first", body = Vec<HistoryItem>),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn history(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<HistoryItem>>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(carriers::history(&state, &cap, id).await?))
}
