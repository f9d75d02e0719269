//! `POST /devices` (admin), `GET /devices` (admin, security officer).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::Created;
use super::error::{ApiError, ErrorBody};
use super::extract::Json;
use super::openapi::{InputRefusals, SessionRefusals};
use crate::AppState;
use crate::auth::capability::{AdminCap, DeviceReaderCap};
use crate::domain::device::{DeviceKind, Placement};
use crate::domain::ids::{DeviceId, ZoneId};
use crate::store::devices::{Device, NewDevice};

/// Device registration request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// The id the daemon uses (`device_id` in its configuration).
    id: DeviceId,
    /// What the device is.
    kind: DeviceKind,
    /// Ed25519 public key, standard base64 of 32 bytes (as `custosd keygen` prints it).
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

fn public_key(text: &str) -> Result<[u8; 32], ApiError> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| {
            ApiError::BadRequest("public_key must be standard base64 of 32 bytes".into())
        })
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
    let public_key = public_key(&body.public_key)?;
    let placement = Placement::new(body.kind, body.inside_zone, body.outside_zone, body.zone)
        .map_err(|e| ApiError::rule("invalid_placement", e))?;
    let id = body.id;
    let device = NewDevice {
        id: id.clone(),
        placement,
        public_key,
    };
    state
        .store()
        .create_device(&cap, device, state.now())
        .await?;
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
    Ok(axum::Json(state.store().devices(&cap).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_must_be_32_bytes_of_standard_base64() {
        assert_eq!(public_key(&STANDARD.encode([7; 32])).unwrap(), [7; 32]);
        assert!(public_key(&STANDARD.encode([7; 31])).is_err());
        assert!(public_key(&STANDARD.encode([7; 33])).is_err());
        assert!(public_key("not base64!").is_err());
        assert!(public_key("").is_err());
    }
}
