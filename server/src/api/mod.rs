//! The HTTP API under `/api/v1`: thin handlers that extract (capability, state, JSON), call one
//! auth/store function, and map its error.
//!
//! Every error, including unmatched routes, wrong methods and JSON rejections, answers in the
//! JSON error format of [`error::ApiError`]. Bodies above `body_limit_bytes` get 413.

pub mod alerts;
pub mod audit;
pub mod carriers;
pub mod devices;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod people;
pub mod session;
pub mod signouts;
pub mod users;
pub mod zones;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use custos_protocol::uplink::MAX_BODY_BYTES;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::AppState;
use error::ApiError;

/// The answer to a creation: the new resource's id.
#[derive(Debug, Serialize)]
pub struct Created<T: Serialize> {
    /// The id.
    pub id: T,
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings().body_limit_bytes;
    let api = Router::new()
        .route("/session", post(session::login).delete(session::logout))
        .route("/users", post(users::create).get(users::list))
        .route("/people", post(people::create).get(people::list))
        .route("/people/{id}", get(people::one))
        .route("/zones", post(zones::create).get(zones::list))
        .route("/devices", post(devices::create).get(devices::list))
        .route("/audit", get(audit::list))
        // ALERTS: the alert list and lifecycle, the live stream.
        .route("/alerts", get(alerts::list))
        .route("/alerts/stream", get(alerts::stream))
        .route("/alerts/{id}", get(alerts::one))
        .route("/alerts/{id}/ack", post(alerts::acknowledge))
        .route("/alerts/{id}/resolve", post(alerts::resolve))
        // CUSTODY: carriers, sign-outs, people status.
        .route("/carriers", post(carriers::create).get(carriers::list))
        .route("/carriers/by-tag/{tag}", get(carriers::by_tag))
        .route("/carriers/{id}", get(carriers::one))
        .route("/carriers/{id}/history", get(carriers::history))
        .route("/signouts", post(signouts::create).get(signouts::list))
        .route("/signouts/{id}", get(signouts::one))
        .route("/signouts/{id}/approve", post(signouts::approve))
        .route("/signouts/{id}/issue", post(signouts::issue))
        .route("/signouts/{id}/return", post(signouts::return_carriers))
        .route("/signouts/{id}/cancel", post(signouts::cancel))
        .route("/people/{id}/leave", post(people::leave))
        .route("/people/{id}/depart", post(people::depart))
        // INGEST: device endpoints (Ed25519-signed by the device, no user session; bodies up
        // to the uplink limit) and the server's public key for daemons to pin.
        .route(
            "/devices/{id}/batches",
            post(ingest::batches).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            "/devices/{id}/heartbeats",
            post(ingest::heartbeats).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            "/devices/{id}/policy",
            post(ingest::policy).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/server-key", get(ingest::server_key));
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store()
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// One span per request, named by the matched route (never the raw path with ids, never
/// headers: they carry tokens).
async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", method = %request.method(), %route);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    });
    response
}
