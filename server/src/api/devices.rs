//! `POST /devices` (admin), `GET /devices` (admin, security officer).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals};
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

/// All devices (admin, security officer).
#[utoipa::path(
    get,
    operation_id = "devices_list",
    path = "/devices",
    tag = "admin",
    responses(
        (status = 200, description = "Every device", body = Vec<Device>),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: DeviceReaderCap,
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<Device>>, ApiError> {
    Ok(axum::Json(devices::list(&state, &cap).await?))
}
