//! Stocktakes (清点), year-end collections (年底收缴) and retention (保管期限):
//! `POST /stocktakes`, `/stocktakes/{id}/scans`, `/close`, `/resolutions` (custodian);
//! `POST /collections` (security officer), `POST /collections/{id}/items/{carrier_id}`
//! (custodian); `PUT /carriers/{id}/retention` (custodian); `POST /repairs` and
//! `/repairs/{id}/return` (custodian); the views for custodians and security officers.
//!
//! Rule refusals answer 409 when the state does not allow the step (`stocktake_closed`,
//! `stocktake_open`, `already_resolved`, `cannot_report_missing`, `already_closed`,
//! `still_on_loan`, `not_destroyed`) and 422 when the request names something the step is not
//! about (`not_a_discrepancy`, `not_collected`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::ids::{CarrierId, CollectionId, DeviceId, RepairId, StocktakeId};
use crate::domain::moves::{Outcome, Reconciliation, Resolution};
use crate::service::moves::{
    self, CollectionReport, ReturnRepair, SendForRepair, SetRetention, StocktakeView,
};
use crate::store::moves::{CollectionHead, NewStocktake, RepairRow, RetentionLine, StocktakeHead};

fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// What a stocktake counts: exactly one of the three.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// A cabinet: the carriers at home there and in storage.
    device_id: Option<String>,
    /// A zone: the carriers in storage whose home cabinet is in it.
    zone_id: Option<String>,
    /// A person (id): the carriers on loan to them.
    custodian_id: Option<String>,
}

/// The document's `scope`: one of three objects, each naming exactly one key (what
/// [`moves::scope_of`] accepts; a `null` or a second key is a 400).
fn scope_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    let one = |key: &str, about: &str| {
        let pattern = if key == "custodian_id" {
            "^(0|-?[1-9][0-9]{0,17})$"
        } else {
            "^[A-Za-z0-9._-]{1,64}$"
        };
        ObjectBuilder::new()
            .property(
                key,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(pattern))
                    .description(Some(about)),
            )
            .required(key)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    let one_of = OneOfBuilder::new()
        .item(one(
            "device_id",
            "A cabinet: the carriers at home there and in storage.",
        ))
        .item(one(
            "zone_id",
            "A zone: the carriers in storage whose home cabinet is in it.",
        ))
        .item(one(
            "custodian_id",
            "A person (id): the carriers on loan to them.",
        ))
        .build();
    utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::OneOf(one_of))
}

/// A new stocktake.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenStocktake {
    /// What it counts: exactly one of `device_id`, `zone_id`, `custodian_id`.
    #[schema(schema_with = scope_schema)]
    scope: ScopeBody,
    /// A desk whose daemon's scans count while the stocktake is open.
    desk_device: Option<DeviceId>,
}

/// Open a stocktake (custodian).
#[utoipa::path(
    post,
    operation_id = "stocktakes_create",
    path = "/stocktakes",
    tag = "moves",
    request_body = OpenStocktake,
    responses(
        (status = 201, description = "Opened; what it expects is fixed now", body = Created<StocktakeId>),
        (status = 422, description = "The cabinet, zone, person or desk does not exist (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create_stocktake(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<OpenStocktake>,
) -> Result<(StatusCode, axum::Json<Created<StocktakeId>>), ApiError> {
    let s = body.scope;
    let (scope_kind, scope_ref) = moves::scope_of(s.device_id, s.zone_id, s.custodian_id)?;
    let new = NewStocktake {
        scope_kind,
        scope_ref,
        desk_device: body.desk_device,
    };
    let id = moves::open_stocktake(&state, &cap, new).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// Every stocktake, newest first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "stocktakes_list",
    path = "/stocktakes",
    tag = "moves",
    responses(
        (status = 200, description = "Stocktakes, newest first (at most 200)", body = Vec<StocktakeHead>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list_stocktakes(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<StocktakeHead>>, ApiError> {
    Ok(axum::Json(moves::stocktakes(&state, &reader).await?))
}

/// One stocktake: expected against seen so far (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "stocktakes_one",
    path = "/stocktakes/{id}",
    tag = "moves",
    params(("id" = String, Path, description = "Stocktake id")),
    responses(
        (status = 200, description = "The stocktake", body = StocktakeView),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one_stocktake(
    reader: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<StocktakeView>, ApiError> {
    let id: StocktakeId = parse_id(&id)?;
    Ok(axum::Json(moves::stocktake(&state, &reader, id).await?))
}

/// Scans for a stocktake.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scans {
    /// 1 to 500 tags (`epc:HEX`, `barcode:TEXT`, `em:HEX`) or typed control numbers.
    tags: Vec<String>,
}

/// Record scans in an open stocktake (custodian).
#[utoipa::path(
    post,
    operation_id = "stocktakes_scan",
    path = "/stocktakes/{id}/scans",
    tag = "moves",
    params(("id" = String, Path, description = "Stocktake id")),
    request_body = Scans,
    responses(
        (status = 200, description = "The stocktake after the scans", body = StocktakeView),
        (status = 409, description = "The stocktake is closed (`stocktake_closed`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn scan(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Scans>,
) -> Result<axum::Json<StocktakeView>, ApiError> {
    let id: StocktakeId = parse_id(&id)?;
    Ok(axum::Json(moves::scan(&state, &cap, id, body.tags).await?))
}

/// Close and sign a stocktake (custodian): expected against seen.
#[utoipa::path(
    post,
    operation_id = "stocktakes_close",
    path = "/stocktakes/{id}/close",
    tag = "moves",
    params(("id" = String, Path, description = "Stocktake id")),
    responses(
        (status = 200, description = "Closed and signed by the caller", body = Reconciliation),
        (status = 409, description = "Closed already (`stocktake_closed`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn close_stocktake(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Reconciliation>, ApiError> {
    let id: StocktakeId = parse_id(&id)?;
    Ok(axum::Json(
        moves::close_stocktake(&state, &cap, id).await?.result,
    ))
}

/// How one missing carrier of a closed stocktake is settled.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// A carrier the stocktake found missing.
    carrier_id: CarrierId,
    /// `missing` (report it: state `missing`) or `correction`.
    resolution: Resolution,
    /// Why (1 to 200 characters).
    note: String,
}

/// Settle a discrepancy of a closed stocktake (custodian).
#[utoipa::path(
    post,
    operation_id = "stocktakes_resolve",
    path = "/stocktakes/{id}/resolutions",
    tag = "moves",
    params(("id" = String, Path, description = "Stocktake id")),
    request_body = Resolve,
    responses(
        (status = 200, description = "Settled", body = StocktakeView),
        (status = 409, description = "Still open (`stocktake_open`), settled already (`already_resolved`), or the carrier cannot go missing in its state (`cannot_report_missing`)", body = ErrorBody),
        (status = 422, description = "Not a missing carrier of this stocktake (`not_a_discrepancy`), or no such carrier (`unknown_reference`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn resolve(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Resolve>,
) -> Result<axum::Json<StocktakeView>, ApiError> {
    let id: StocktakeId = parse_id(&id)?;
    Ok(axum::Json(
        moves::resolve(
            &state,
            &cap,
            id,
            body.carrier_id,
            body.resolution,
            body.note,
        )
        .await?,
    ))
}

/// A new collection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCollection {
    /// The year collected (2000 to 9999); one collection per year.
    #[schema(minimum = 2000, maximum = 9999)]
    year: i64,
}

/// Open the year-end collection (security officer): every carrier on loan is called in.
#[utoipa::path(
    post,
    operation_id = "collections_create",
    path = "/collections",
    tag = "moves",
    request_body = OpenCollection,
    responses(
        (status = 201, description = "Opened", body = Created<CollectionId>),
        (status = 409, description = "This year has a collection already (`conflict`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create_collection(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Json(body): Json<OpenCollection>,
) -> Result<(StatusCode, axum::Json<Created<CollectionId>>), ApiError> {
    let id = moves::open_collection(&state, &cap, body.year).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

/// Every collection, newest year first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "collections_list",
    path = "/collections",
    tag = "moves",
    responses(
        (status = 200, description = "Collections", body = Vec<CollectionHead>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list_collections(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<CollectionHead>>, ApiError> {
    Ok(axum::Json(moves::collections(&state, &reader).await?))
}

/// A collection's progress and report per department (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "collections_one",
    path = "/collections/{id}",
    tag = "moves",
    params(("id" = String, Path, description = "Collection id")),
    responses(
        (status = 200, description = "Progress per department and every carrier called in", body = CollectionReport),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one_collection(
    reader: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<CollectionReport>, ApiError> {
    let id: CollectionId = parse_id(&id)?;
    Ok(axum::Json(moves::collection(&state, &reader, id).await?))
}

/// How a called-in carrier is closed.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseItem {
    /// `kept`, `archived` or `destroyed`.
    outcome: Outcome,
}

/// Close one called-in carrier (custodian): kept or archived once back, destroyed once the
/// destruction workflow destroyed it.
#[utoipa::path(
    post,
    operation_id = "collections_close_item",
    path = "/collections/{id}/items/{carrier_id}",
    tag = "moves",
    params(
        ("id" = String, Path, description = "Collection id"),
        ("carrier_id" = String, Path, description = "Carrier id"),
    ),
    request_body = CloseItem,
    responses(
        (status = 200, description = "Closed; the collection's report", body = CollectionReport),
        (status = 409, description = "Closed already (`already_closed`), still on loan (`still_on_loan`) or not destroyed yet (`not_destroyed`)", body = ErrorBody),
        (status = 422, description = "The collection did not call this carrier in (`not_collected`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn close_item(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path((id, carrier)): Path<(String, String)>,
    Json(body): Json<CloseItem>,
) -> Result<axum::Json<CollectionReport>, ApiError> {
    let id: CollectionId = parse_id(&id)?;
    let carrier: CarrierId = parse_id(&carrier)?;
    Ok(axum::Json(
        moves::close_item(&state, &cap, id, carrier, body.outcome).await?,
    ))
}

/// Set a carrier's retention date and distribution scope (custodian).
#[utoipa::path(
    put,
    operation_id = "carriers_set_retention",
    path = "/carriers/{id}/retention",
    tag = "moves",
    params(("id" = String, Path, description = "Carrier id")),
    request_body = SetRetention,
    responses(
        (status = 200, description = "Set; the previous values are in the audit trail", body = RetentionLine),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn set_retention(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<SetRetention>,
) -> Result<axum::Json<RetentionLine>, ApiError> {
    let id: CarrierId = parse_id(&id)?;
    Ok(axum::Json(
        moves::set_retention(&state, &cap, id, body).await?,
    ))
}

/// Carriers past their retention, for archive or destruction (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "retention_review",
    path = "/retention/review",
    tag = "moves",
    responses(
        (status = 200, description = "Carriers past their retention date, oldest date first", body = Vec<RetentionLine>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn retention_review(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<RetentionLine>>, ApiError> {
    Ok(axum::Json(moves::retention_review(&state, &reader).await?))
}

/// Send a laptop, device or hard disk for repair (custodian).
#[utoipa::path(
    post,
    operation_id = "repairs_create",
    path = "/repairs",
    tag = "moves",
    request_body = SendForRepair,
    responses(
        (status = 201, description = "Sent; the repair stays open until it returns", body = RepairRow),
        (status = 409, description = "The carrier is not in storage (`carrier_unavailable`) or out for repair already (`already_in_repair`, `duplicate`)", body = ErrorBody),
        (status = 422, description = "Not a laptop, device or hard disk (`not_repairable`), the repairer's qualification has lapsed (`repairer_not_qualified`), no escort on site (`escort_required`), or media leaving the site (`media_must_be_removed`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create_repair(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<SendForRepair>,
) -> Result<(StatusCode, axum::Json<RepairRow>), ApiError> {
    let row = moves::send_for_repair(&state, &cap, body).await?;
    Ok((StatusCode::CREATED, axum::Json(row)))
}

/// Every repair, open ones first (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "repairs_list",
    path = "/repairs",
    tag = "moves",
    responses(
        (status = 200, description = "Repairs, open ones first, newest first", body = Vec<RepairRow>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list_repairs(
    reader: CustodyReader,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<RepairRow>>, ApiError> {
    Ok(axum::Json(moves::repairs(&state, &reader).await?))
}

/// One repair (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "repairs_one",
    path = "/repairs/{id}",
    tag = "moves",
    params(("id" = String, Path, description = "Repair id")),
    responses(
        (status = 200, description = "The repair", body = RepairRow),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one_repair(
    reader: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<RepairRow>, ApiError> {
    let id: RepairId = parse_id(&id)?;
    Ok(axum::Json(moves::repair(&state, &reader, id).await?))
}

/// Record a repaired carrier back with its removed media (custodian).
#[utoipa::path(
    post,
    operation_id = "repairs_return",
    path = "/repairs/{id}/return",
    tag = "moves",
    params(("id" = String, Path, description = "Repair id")),
    request_body = ReturnRepair,
    responses(
        (status = 200, description = "Returned; the repair is closed (a carrier back from a repair by dispatch is `in_storage` again, its dispatch window cleared)", body = RepairRow),
        (status = 409, description = "Returned already (`repair_closed`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn return_repair(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ReturnRepair>,
) -> Result<axum::Json<RepairRow>, ApiError> {
    let id: RepairId = parse_id(&id)?;
    Ok(axum::Json(
        moves::return_repair(&state, &cap, id, body).await?,
    ))
}
