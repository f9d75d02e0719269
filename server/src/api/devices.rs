//! `POST /devices` (admin), `GET /devices` (admin, security officer),
//! `POST /devices/{id}/revoke` and `POST /devices/{id}/key` (admin).

use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::auth::capability::{AdminCap, DeviceReaderCap};
use crate::domain::device::DeviceKind;
use crate::domain::ids::{DeviceId, ZoneId};
use crate::service::devices::{self, DeviceRegistration};
use crate::store::devices::Device;

/// Device registration request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// The id the daemon uses (`device_id` in its configuration).
    id: DeviceId,
    /// What the device is.
    kind: DeviceKind,
    /// Ed25519 public key, standard base64 of 32 bytes (as `custosd keygen` prints it); the
    /// canonical encoding of a point of large order: small-order keys (`AQAA…`, all zeros) and
    /// non-canonical encodings are refused (400), since anyone could sign as such a device.
    /// Format `ed25519-public-key`: such a key; the pattern is its base64 shape.
    #[schema(
        format = "ed25519-public-key",
        pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$",
        min_length = 44,
        max_length = 44
    )]
    public_key: String,
    /// A gate's secure side.
    #[serde(default)]
    inside_zone: Option<ZoneId>,
    /// A gate's other side.
    #[serde(default)]
    outside_zone: Option<ZoneId>,
    /// The zone of a cabinet or desk.
    #[serde(default)]
    zone: Option<ZoneId>,
}

/// Register a device with its Ed25519 public key (admin).
#[utoipa::path(
    post,
    operation_id = "devices_create",
    path = "/devices",
    tag = "admin",
    request_body = RegisterDevice,
    responses(
        (status = 201, description = "Registered", body = Created<DeviceId>),
        (status = 409, description = "The id or the public key is taken (`conflict`)", body = ErrorBody),
        (status = 422, description = "Zones that do not fit the kind (`invalid_placement`) or an unknown zone (`unknown_reference`)", body = ErrorBody),
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn create(
    cap: AdminCap,
    State(state): State<AppState>,
    Json(body): Json<RegisterDevice>,
) -> Result<(StatusCode, axum::Json<Created<DeviceId>>), ApiError> {
    let input = DeviceRegistration {
        id: body.id,
        kind: body.kind,
        public_key: body.public_key,
        inside_zone: body.inside_zone,
        outside_zone: body.outside_zone,
        zone: body.zone,
    };
    let id = devices::register(&state, &cap, input).await?;
    Ok((StatusCode::CREATED, axum::Json(Created { id })))
}

super::paging::page_query!(
    /// Search and paging of `GET /devices` (`q` matches id, kind, zone ids and zone names).
    DeviceQuery,
    super::paging::device_sort_schema
);

/// One page of the devices (admin, security officer): matching every word of `q` in their
/// id, kind, zone ids or zone names, sorted, at most `limit`; a `Link: <…>; rel="next"`
/// header while more remain.
#[utoipa::path(
    get,
    operation_id = "devices_list",
    path = "/devices",
    tag = "admin",
    params(DeviceQuery),
    responses(
        (status = 200, description = "One page of the devices", body = Vec<Device>,
            headers(("link" = String, description = "`<URI>; rel=\"next\"` while more remain"))),
        (status = 400, description = "A malformed parameter: limit, sort, cursor or q (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: DeviceReaderCap,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<DeviceQuery>,
) -> Result<Response, ApiError> {
    let page = devices::page(&state, &cap, &query.into()).await?;
    Ok(super::paging::answer(&uri, page))
}

/// A new key for a device.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The new Ed25519 public key, checked like a registration's (standard base64 of 32 bytes,
    /// canonical, not of small order; format `ed25519-public-key`).
    #[schema(
        format = "ed25519-public-key",
        pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$",
        min_length = 44,
        max_length = 44
    )]
    public_key: String,
}

fn device_id(id: &str) -> Result<DeviceId, ApiError> {
    DeviceId::new(id).map_err(|_| ApiError::NotFound)
}

/// Revoke a device (admin): from now on every request it signs is refused (401
/// `device_auth_failed`, with a `device_auth_failed` alert), and lists show it revoked
/// (`revoked_at`). Final; audited (`device.revoke`). Revoking a revoked device changes nothing.
#[utoipa::path(
    post,
    operation_id = "devices_revoke",
    path = "/devices/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "The device id")),
    responses(
        (status = 200, description = "The device, with `revoked_at`", body = Device),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn revoke(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Device>, ApiError> {
    let id = device_id(&id)?;
    Ok(axum::Json(devices::revoke(&state, &cap, id).await?))
}

/// Replace a device's public key (admin): from the next request on only the new key verifies.
/// The daemon signs each batch when it sends it, so restarted with the new key it delivers its
/// whole backlog. Audited (`device.key_rotate`).
#[utoipa::path(
    post,
    operation_id = "devices_rotate_key",
    path = "/devices/{id}/key",
    tag = "admin",
    params(("id" = String, Path, description = "The device id")),
    request_body = RotateKey,
    responses(
        (status = 200, description = "The device with its new key", body = Device),
        (status = 409, description = "Another device has this key (`conflict`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn rotate_key(
    cap: AdminCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<RotateKey>,
) -> Result<axum::Json<Device>, ApiError> {
    let id = device_id(&id)?;
    Ok(axum::Json(
        devices::rotate_key(&state, &cap, id, &body.public_key).await?,
    ))
}
