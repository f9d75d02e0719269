//! The lifecycle endpoints: `PATCH /carriers/{id}` (custodian: a correction with its reason),
//! `GET /carriers/{id}/corrections`, `POST /carriers/{id}/missing` and
//! `POST /carriers/{id}/found` (custodian, security officer), the incident records
//! (`GET /carriers/{id}/incidents`, `GET /incidents/{id}`, `POST /incidents/{id}/told`).
//! Thin: each calls one use case of [`crate::service::lifecycle`].

use axum::extract::{Path, State};
use serde::{Deserialize, Deserializer};

use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::ids::CarrierId;
use crate::domain::lifecycle::CorrectionPatch;
use crate::domain::time::Timestamp;
use crate::service::lifecycle::{self, Correction};
use crate::store::carriers::Carrier;
use crate::store::lifecycle::{CorrectionRecord, Incident};

/// `null` and absent differ: absent keeps the home cabinet, `null` clears it.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /carriers/{id}` body: the fields to change and why. The level and the control
/// number change only by reclassification: naming them is refused (422 `not_editable`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectBody {
    /// Why the entry is corrected: required, 1 to 500 printable characters, not blank.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 500
    )]
    reason: String,
    /// New title (1 to 200 printable characters; never audited).
    #[serde(default)]
    title: Option<String>,
    /// New owning unit.
    #[serde(default)]
    owner_unit: Option<String>,
    /// New home cabinet (a cabinet's device id), or `null` for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    home_device: Option<Option<String>>,
    /// The whole new tag list (`epc:HEX`, `barcode:TEXT`, `em:HEX`), at most 16.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// New copy number (1 to `copies`).
    #[serde(default)]
    #[schema(minimum = 1)]
    copy_no: Option<u32>,
    /// New secrecy period (保密期限) in whole years: 1 to the level's longest (TS 30, S 20,
    /// C 10; longer is 422 `secrecy_period_out_of_range`).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30)]
    secrecy_years: Option<u32>,
    /// Not editable here (reclassification): refused with 422 `not_editable`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    level: Option<serde_json::Value>,
    /// Not editable: refused with 422 `not_editable`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    control_no: Option<serde_json::Value>,
}

impl std::fmt::Debug for CorrectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrectBody")
            .field("title", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn carrier_id(text: &str) -> Result<CarrierId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

fn incident_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// Correct a carrier's register entry with a reason (custodian): title, owning unit, home
/// cabinet, tags, copy number, secrecy period. The history keeps before and after.
#[utoipa::path(
    patch,
    operation_id = "carriers_correct",
    path = "/carriers/{id}",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    request_body = CorrectBody,
    responses(
        (status = 200, description = "The carrier after the correction", body = Carrier),
        (status = 409, description = "A tag belongs to another carrier (`conflict`)", body = ErrorBody),
        (status = 422, description = "The level or control number named (`not_editable`), nothing changes (`nothing_to_change`), a register rule (`copy_number_out_of_range`, `home_not_cabinet`, `label_mismatch`, `secrecy_period_out_of_range`), or an unknown home cabinet (`unknown_reference`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn correct(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<CorrectBody>,
) -> Result<axum::Json<Carrier>, ApiError> {
    let id = carrier_id(&id)?;
    let input = Correction {
        reason: body.reason,
        patch: CorrectionPatch {
            title: body.title,
            owner_unit: body.owner_unit,
            home_device: body.home_device,
            tags: body.tags,
            copy_no: body.copy_no,
            secrecy_years: body.secrecy_years,
        },
        level_given: body.level.is_some(),
        control_no_given: body.control_no.is_some(),
    };
    Ok(axum::Json(
        lifecycle::correct(&state, &cap, id, input).await?,
    ))
}

/// A carrier's corrections, oldest first, each with its reason and the changed fields before
/// and after (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "carriers_corrections",
    path = "/carriers/{id}/corrections",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses(
        (status = 200, description = "The corrections, oldest first", body = Vec<CorrectionRecord>),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn corrections(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<CorrectionRecord>>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(lifecycle::corrections(&state, &cap, id).await?))
}

/// `POST /carriers/{id}/missing` and `/found` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// What happened: required, 1 to 2000 printable characters, not blank, never a title.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 2000
    )]
    note: String,
}

/// Report a carrier missing (custodian, security officer): state `missing` since now, an
/// incident record, a `missing` alert; the leak-deadline clock starts (TS 10 days, S/C 60).
#[utoipa::path(
    post,
    operation_id = "carriers_missing",
    path = "/carriers/{id}/missing",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    request_body = NoteBody,
    responses(
        (status = 200, description = "The carrier, now `missing`", body = Carrier),
        (status = 409, description = "Already missing (`already_missing`) or out of circulation (`not_in_circulation`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn missing(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> Result<axum::Json<Carrier>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(
        lifecycle::report_missing(&state, &cap, id, &body.note).await?,
    ))
}

/// Report a missing carrier found (custodian, security officer), whatever made it missing and
/// with or without a home cabinet: back to `out` while its loan is out, else `in_storage`.
#[utoipa::path(
    post,
    operation_id = "carriers_found",
    path = "/carriers/{id}/found",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    request_body = NoteBody,
    responses(
        (status = 200, description = "The carrier, back where it is now", body = Carrier),
        (status = 409, description = "Not missing (`not_missing`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn found(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<NoteBody>,
) -> Result<axum::Json<Carrier>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(
        lifecycle::report_found(&state, &cap, id, &body.note).await?,
    ))
}

/// A carrier's incident records (one per missing episode), newest first (custodian, security
/// officer).
#[utoipa::path(
    get,
    operation_id = "carriers_incidents",
    path = "/carriers/{id}/incidents",
    tag = "carriers",
    params(("id" = String, Path, description = "Carrier id")),
    responses(
        (status = 200, description = "The incidents, newest first", body = Vec<Incident>),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn incidents(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Incident>>, ApiError> {
    let id = carrier_id(&id)?;
    Ok(axum::Json(lifecycle::incidents(&state, &cap, id).await?))
}

/// One incident record (custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "incidents_one",
    path = "/incidents/{id}",
    tag = "carriers",
    params(("id" = String, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = Incident),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn incident(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Incident>, ApiError> {
    let id = incident_id(&id)?;
    Ok(axum::Json(lifecycle::incident(&state, &cap, id).await?))
}

/// `POST /incidents/{id}/told` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToldBody {
    /// Who was told (the secrecy bureau, the unit's leader...): 1 to 2000 printable
    /// characters, not blank.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 2000
    )]
    told: String,
    /// When (default: now); not in the future.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    told_at: Option<Timestamp>,
}

/// Record who was told of an incident and when (custodian, security officer).
#[utoipa::path(
    post,
    operation_id = "incidents_told",
    path = "/incidents/{id}/told",
    tag = "carriers",
    params(("id" = String, Path, description = "Incident id")),
    request_body = ToldBody,
    responses(
        (status = 200, description = "The incident", body = Incident),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn told(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ToldBody>,
) -> Result<axum::Json<Incident>, ApiError> {
    let id = incident_id(&id)?;
    Ok(axum::Json(
        lifecycle::record_told(&state, &cap, id, &body.told, body.told_at).await?,
    ))
}
