//! Device endpoints: `POST /devices/{id}/batches`, `/heartbeats`, `/policy` (Ed25519-signed by
//! the device, no user session) and `GET /server-key` (no authentication).
//!
//! Each device request is handled in this order (see `custos_protocol::uplink`, "Signatures"):
//! 1. the raw body is read (at most `MAX_BODY_BYTES`, 413 beyond);
//! 2. the device is looked up by the path id and the `custos-signature` header is verified
//!    over `signing_bytes(kind, body)` with its registered key, *before* the body is parsed;
//! 3. the body is parsed (unknown fields refused), validated, and must name the path's device.
//!
//! A revoked device fails step 2 whatever it signs. A failure in 2 answers 401 and in 3 answers 400, and either raises `device_auth_failed`
//! (deduplicated by cause: one live alert per registered device, one for all unregistered ids
//! together) in its own write job, so the alert is recorded although the request fails. The
//! 401 does not say whether the device exists.
//!
//! Each such failure spends one token of its source address's budget
//! ([`crate::auth::source::FailureBudget`]: a burst of 20, one back every 500 ms). A source
//! whose budget is spent is refused with 429 `too_many_failures` and `Retry-After` before step
//! 2: no lookup, no alert, no database work. Without it, anybody who can reach the port made
//! the server write and every console re-read an alert ~90 times a second.
//!
//! Answers to devices are signed with the server key over
//! `signing_bytes(BatchAck | HeartbeatAck | Policy, body)`, in the same header; a daemon pins the
//! key from `GET /server-key`. Refusals are the usual unsigned JSON errors (they carry no
//! authority): 409 `seq_gap` (with `resend_from`), 409 `replay_rejected`, 409 `clock_skew`
//! (a heartbeat's clock, or a batch event's implausible time).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use std::net::IpAddr;
use std::time::Instant;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::uplink::{
    AUDIT_HEAD_HEADER, Batch, Heartbeat, PolicyRequest, SIGNATURE_HEADER, SIGNATURE_LEN,
    SignedKind, signing_bytes,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorBody};
use super::openapi::{DeviceRefusals, wire};
use crate::AppState;
use crate::auth::source::ClientAddr;
use crate::domain::ingest::{AuthFailure, fits_storage};
use crate::keys::verify_signature;
use crate::service::ingest::{self, BatchAnswer, HeartbeatAnswer};
use crate::service::policy::{self, PolicyAnswer};
use crate::store::ingest::DeviceAuth;

/// Raise `device_auth_failed` (after commit, tell the consoles). A failure to record is logged;
/// the request is refused either way.
async fn record_failure(
    state: &AppState,
    source: Option<IpAddr>,
    claimed: &str,
    failure: AuthFailure,
    endpoint: &'static str,
) {
    if let Some(source) = source {
        state.ingest_failures(|b| b.spend(source, Instant::now()));
    }
    tracing::warn!(device = %claimed.chars().take(64).collect::<String>(), reason = failure.reason(), endpoint, "device request refused");
    if let Err(e) = ingest::record_auth_failure(state, claimed.to_owned(), failure, endpoint).await
    {
        tracing::error!(error = %e, "recording a device authentication failure failed");
    }
}

fn signature(headers: &HeaderMap) -> Option<Vec<u8>> {
    let text = headers.get(SIGNATURE_HEADER)?.to_str().ok()?;
    STANDARD
        .decode(text.trim())
        .ok()
        .filter(|s| s.len() == SIGNATURE_LEN)
}

/// Step 2: the registered device whose key signed `body` as `kind`.
async fn authenticate(
    state: &AppState,
    source: Option<IpAddr>,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    kind: SignedKind,
    endpoint: &'static str,
) -> Result<DeviceAuth, ApiError> {
    let Some(device) = ingest::device(state, id).await? else {
        record_failure(state, source, id, AuthFailure::UnknownDevice, endpoint).await;
        return Err(ApiError::DeviceUnauthenticated);
    };
    if device.revoked {
        record_failure(state, source, id, AuthFailure::Revoked, endpoint).await;
        return Err(ApiError::DeviceUnauthenticated);
    }
    let Some(sig) = signature(headers) else {
        record_failure(state, source, id, AuthFailure::MissingSignature, endpoint).await;
        return Err(ApiError::DeviceUnauthenticated);
    };
    if !verify_signature(&device.public_key, &signing_bytes(kind, body), &sig) {
        record_failure(state, source, id, AuthFailure::BadSignature, endpoint).await;
        return Err(ApiError::DeviceUnauthenticated);
    }
    Ok(device)
}

/// Step 3: parse and check a signed body; a malformed one is recorded like an auth failure.
async fn parse<T: DeserializeOwned>(
    state: &AppState,
    source: Option<IpAddr>,
    device: &DeviceAuth,
    body: &[u8],
    endpoint: &'static str,
    check: impl FnOnce(&T) -> Result<(), String>,
) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice::<T>(body)
        .map_err(|e| format!("malformed body: {e}"))
        .and_then(|value| check(&value).map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(reason) => {
            record_failure(
                state,
                source,
                device.id.as_str(),
                AuthFailure::Malformed(reason.clone()),
                endpoint,
            )
            .await;
            Err(ApiError::BadRequest(reason))
        }
    }
}

fn names_device(body_device: &str, device: &DeviceAuth) -> Result<(), String> {
    if body_device == device.id.as_str() {
        Ok(())
    } else {
        Err("device_id does not match the path".to_owned())
    }
}

/// A device endpoint: its name (for logs and `device_auth_failed` alerts) and what its
/// requests are signed as.
struct Endpoint {
    name: &'static str,
    kind: SignedKind,
    /// The client's address (its failures are counted against it).
    source: Option<IpAddr>,
}

/// Steps 2 and 3 of every device endpoint: the registered device whose key signed `body`, and
/// the body parsed, passing `check` and naming that device (`device_of`) as in the path.
async fn signed_request<T: DeserializeOwned>(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
    device_of: fn(&T) -> &str,
    check: impl FnOnce(&T) -> Result<(), String>,
) -> Result<(DeviceAuth, T), ApiError> {
    let source = endpoint.source;
    if let Some(ip) = source {
        state
            .ingest_failures(|b| b.check(ip, Instant::now()))
            .map_err(|wait| {
                tracing::info!(
                    endpoint = endpoint.name,
                    "device request refused: source over its failure budget"
                );
                ApiError::TooManyFailures {
                    retry_after_secs: wait.as_secs().max(1),
                }
            })?;
    }
    let device = authenticate(
        state,
        source,
        id,
        headers,
        body,
        endpoint.kind,
        endpoint.name,
    )
    .await?;
    let value = parse(state, source, &device, body, endpoint.name, |value: &T| {
        check(value)?;
        names_device(device_of(value), &device)
    })
    .await?;
    Ok((device, value))
}

/// A JSON answer signed with the server key.
fn signed<T: Serialize>(
    state: &AppState,
    kind: SignedKind,
    value: &T,
) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sig = STANDARD.encode(state.server_key().sign(&signing_bytes(kind, &body)));
    let sig = HeaderValue::from_str(&sig).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::HeaderName::from_static(SIGNATURE_HEADER), sig),
        ],
        body,
    )
        .into_response();
    // Acks carry the latest signed audit head so that devices witness it (see
    // `audit::anchor`); the head is signed on its own, outside the ack's signature.
    if matches!(kind, SignedKind::BatchAck | SignedKind::HeartbeatAck)
        && let Some(head) = state.latest_audit_head()
        && let Ok(value) = HeaderValue::from_str(&head.to_line())
    {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static(AUDIT_HEAD_HEADER), value);
    }
    Ok(response)
}

/// Store a signed batch of events and answer a signed ack with a verdict for each passage
/// (a device). The ack follows the commit: every seq up to `acked_through` is durable. A
/// re-delivered batch gets the same answer without storing or raising anything again.
#[utoipa::path(
    post,
    operation_id = "ingest_batches",
    path = "/devices/{id}/batches",
    tag = "devices",
    params(("id" = String, Path, description = "The device id (must equal `device_id` in the body)")),
    request_body = wire::Batch,
    responses(
        (status = 200, description = "Stored; signed by the server (`custos-signature`, kind `ack`)", body = wire::BatchAck,
            headers(("custos-signature" = String, description = "The server's signature"),
                ("custos-audit-head" = String, description = "The latest signed audit head, `SEQ HASH SIGNATURE` (decimal, hex, hex; signed over \"custos-audit-head-v1\" || seq u64 BE || hash): the device keeps it as a witness. Absent before the first head is signed."))),
        (status = 409, description = "A gap (`seq_gap`, with `resend_from`), a replay (`replay_rejected`), or an event time more than 5 minutes ahead of the server or more than 366 days old (`clock_skew`, the message names the seq; nothing stored, a `reader_fault` alert raised)", body = ErrorBody),
        DeviceRefusals,
    ),
    security(("device_signature" = []))
)]
pub async fn batches(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let endpoint = Endpoint {
        source: client.and_then(|c| c.0.0),
        name: "batches",
        kind: SignedKind::Batch,
    };
    let started = std::time::Instant::now();
    let body = body?;
    let (device, batch) = signed_request(
        &state,
        &id,
        &headers,
        &body,
        endpoint,
        |b: &Batch| &b.device_id,
        |b| {
            b.validate().map_err(|e| e.to_string())?;
            let last = b.seq_range().map_or(0, |(_, last)| last);
            if fits_storage(&[b.epoch, last]) {
                Ok(())
            } else {
                Err("epoch or seq beyond 2^63 - 1".to_owned())
            }
        },
    )
    .await?;
    let events = batch.events.len() as u64;
    match ingest::batch(&state, device, batch).await? {
        BatchAnswer::Ack(ack) => {
            // Events of acknowledged batches, re-deliveries included (each was answered).
            state.metrics().observe_ingest(events, started.elapsed());
            signed(&state, SignedKind::BatchAck, &ack)
        }
        BatchAnswer::Gap { resend_from } => Err(ApiError::SeqGap { resend_from }),
        BatchAnswer::Replay { message } => Err(ApiError::Replay(message)),
        BatchAnswer::ClockSkew { seq, at_ms } => Err(ApiError::EventClockSkew { seq, at_ms }),
    }
}

/// Record a signed heartbeat and answer a signed ack (a device).
#[utoipa::path(
    post,
    operation_id = "ingest_heartbeats",
    path = "/devices/{id}/heartbeats",
    tag = "devices",
    params(("id" = String, Path, description = "The device id (must equal `device_id` in the body)")),
    request_body = wire::Heartbeat,
    responses(
        (status = 200, description = "Recorded; signed by the server (kind `heartbeat_ack`)", body = wire::HeartbeatAck,
            headers(("custos-signature" = String, description = "The server's signature"),
                ("custos-audit-head" = String, description = "The latest signed audit head, as on batch acks"))),
        (status = 409, description = "Not newer than the last one (`replay_rejected`) or the device clock is off (`clock_skew`)", body = ErrorBody),
        DeviceRefusals,
    ),
    security(("device_signature" = []))
)]
pub async fn heartbeats(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let endpoint = Endpoint {
        source: client.and_then(|c| c.0.0),
        name: "heartbeats",
        kind: SignedKind::Heartbeat,
    };
    let body = body?;
    let (device, heartbeat) = signed_request(
        &state,
        &id,
        &headers,
        &body,
        endpoint,
        |h: &Heartbeat| &h.device_id,
        |h| {
            h.validate().map_err(|e| e.to_string())?;
            if fits_storage(&[h.epoch, h.hb_seq]) {
                Ok(())
            } else {
                Err("epoch or hb_seq beyond 2^63 - 1".to_owned())
            }
        },
    )
    .await?;
    match ingest::heartbeat(&state, device, heartbeat).await? {
        HeartbeatAnswer::Ack(ack) => signed(&state, SignedKind::HeartbeatAck, &ack),
        HeartbeatAnswer::Replay { message } => Err(ApiError::Replay(message)),
        HeartbeatAnswer::ClockSkew => Err(ApiError::ClockSkew),
    }
}

/// Answer the gate's current signed gate policy (a gate device).
///
/// A request whose `at_ms` is further than the allowed clock skew from the server's time is
/// refused (409 `clock_skew`): a gate with a wrong clock cannot judge a policy's validity.
///
/// [`GatePolicy`]: custos_protocol::uplink::GatePolicy
#[utoipa::path(
    post,
    operation_id = "ingest_policy",
    path = "/devices/{id}/policy",
    tag = "devices",
    params(("id" = String, Path, description = "The device id (must equal `device_id` in the body)")),
    request_body = wire::PolicyRequest,
    responses(
        (status = 200, description = "The policy; signed by the server (kind `policy`)", body = wire::GatePolicy,
            headers(("custos-signature" = String, description = "The server's signature"))),
        (status = 409, description = "The device clock is off (`clock_skew`)", body = ErrorBody),
        (status = 422, description = "Not a gate (`not_a_gate`)", body = ErrorBody),
        DeviceRefusals,
    ),
    security(("device_signature" = []))
)]
pub async fn policy(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let endpoint = Endpoint {
        source: client.and_then(|c| c.0.0),
        name: "policy",
        kind: SignedKind::PolicyRequest,
    };
    let body = body?;
    let (device, request) = signed_request(
        &state,
        &id,
        &headers,
        &body,
        endpoint,
        |r: &PolicyRequest| &r.device_id,
        |r| r.validate().map_err(|e| e.to_string()),
    )
    .await?;
    match policy::gate_policy(&state, &device, &request).await? {
        PolicyAnswer::Policy(policy) => signed(&state, SignedKind::Policy, &policy),
        PolicyAnswer::NotAGate => Err(ApiError::NotAGate),
        PolicyAnswer::ClockSkew => Err(ApiError::ClockSkew),
    }
}

/// The server's signing key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerKeyAnswer {
    /// `ed25519`.
    #[schema(example = "ed25519")]
    algorithm: &'static str,
    /// The 32-byte public key, standard base64.
    public_key: String,
}

/// The server's Ed25519 public key (standard base64), for daemons to pin (no authentication).
#[utoipa::path(
    get,
    operation_id = "ingest_server_key",
    path = "/server-key",
    tag = "devices",
    responses((status = 200, description = "The key answers to devices are signed with", body = ServerKeyAnswer))
)]
pub async fn server_key(State(state): State<AppState>) -> axum::Json<ServerKeyAnswer> {
    axum::Json(ServerKeyAnswer {
        algorithm: "ed25519",
        public_key: STANDARD.encode(state.server_key().public_key()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_must_be_64_bytes_of_base64() {
        let mut h = HeaderMap::new();
        assert_eq!(signature(&h), None);
        h.insert(SIGNATURE_HEADER, HeaderValue::from_static("not base64!"));
        assert_eq!(signature(&h), None);
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&STANDARD.encode([1; 63])).unwrap(),
        );
        assert_eq!(signature(&h), None);
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(&STANDARD.encode([1; 64])).unwrap(),
        );
        assert_eq!(signature(&h), Some(vec![1; 64]));
    }
}
