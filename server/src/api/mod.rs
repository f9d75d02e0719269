//! The HTTP API under `/api/v1`: thin handlers that extract (capability, state, JSON), call one
//! auth/store function, and map its error.
//!
//! Every error, including unmatched routes, wrong methods and JSON rejections, answers in the
//! JSON error format of [`error::ApiError`]. Bodies above `body_limit_bytes` get 413.
//!
//! The routes under `/api/v1` are registered from the handlers' `#[utoipa::path]`
//! declarations ([`api_routes`]), which also make the OpenAPI document ([`openapi`]): a route
//! cannot exist without its documentation. Register every API handler there with
//! `routes!(...)`, never with a plain `.route(...)`.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod carriers;
pub mod client;
pub mod devices;
pub mod error;
pub mod exports;
pub mod extract;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod moves;
pub mod notifications;
pub mod openapi;
pub mod paging;
pub mod people;
pub mod session;
pub mod signouts;
pub mod transfers;
pub mod travel;
pub mod users;
pub mod zones;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use custos_protocol::uplink::MAX_BODY_BYTES;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::Instrument;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::AppState;
use error::ApiError;

/// Where the API lives.
pub const BASE_PATH: &str = "/api/v1";

/// The answer to a creation: the new resource's id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Created<T: Serialize> {
    /// The id.
    pub id: T,
}

/// The routes under [`BASE_PATH`], each from its handler's `#[utoipa::path]` (method, path and
/// documentation in one place; see [`openapi`]).
pub fn api_routes() -> OpenApiRouter<AppState> {
    // Device endpoints take bodies up to the uplink limit instead of `body_limit_bytes`.
    let uplink_limit = DefaultBodyLimit::max(MAX_BODY_BYTES);
    // CSV imports take a whole register.
    let import_limit = DefaultBodyLimit::max(exports::IMPORT_MAX_BYTES);
    OpenApiRouter::new()
        .routes(routes!(session::login, session::logout))
        .routes(routes!(session::change_password))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(users::reset_password))
        .routes(routes!(users::sessions, users::revoke_sessions))
        .routes(routes!(people::create, people::list))
        .routes(routes!(people::one, people::edit))
        .routes(routes!(people::file))
        .routes(routes!(people::reminders))
        .routes(routes!(zones::create, zones::list))
        .routes(routes!(devices::create, devices::list))
        .routes(routes!(devices::revoke))
        .routes(routes!(devices::rotate_key))
        .routes(routes!(audit::list))
        .routes(routes!(openapi::serve))
        // ALERTS: the alert list and lifecycle, the live stream.
        .routes(routes!(alerts::list))
        .routes(routes!(alerts::stream))
        .routes(routes!(alerts::one))
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(alerts::resolve))
        .routes(routes!(notifications::list))
        // CUSTODY: carriers, sign-outs, people status.
        .routes(routes!(carriers::create, carriers::list))
        .routes(routes!(carriers::by_tag))
        .routes(routes!(carriers::one))
        .routes(routes!(carriers::history))
        // LIFECYCLE: corrections, missing and found, incident records.
        .routes(routes!(lifecycle::correct))
        .routes(routes!(lifecycle::corrections))
        .routes(routes!(lifecycle::missing))
        .routes(routes!(lifecycle::found))
        .routes(routes!(lifecycle::incidents))
        .routes(routes!(lifecycle::incident))
        .routes(routes!(lifecycle::told))
        .routes(routes!(signouts::create, signouts::list))
        .routes(routes!(signouts::one))
        .routes(routes!(signouts::approve))
        .routes(routes!(signouts::override_approve))
        .routes(routes!(signouts::reject))
        .routes(routes!(signouts::issue))
        .routes(routes!(signouts::return_carriers))
        .routes(routes!(signouts::cancel))
        // APPROVALS: requests of every kind but sign-outs, and carrier lineage.
        .routes(routes!(approvals::copies_create, approvals::copies_list))
        .routes(routes!(approvals::copies_one))
        .routes(routes!(approvals::copies_approve))
        .routes(routes!(approvals::copies_reject))
        .routes(routes!(approvals::copies_make))
        .routes(routes!(
            approvals::destructions_create,
            approvals::destructions_list
        ))
        .routes(routes!(approvals::destructions_one))
        .routes(routes!(approvals::destructions_approve))
        .routes(routes!(approvals::destructions_reject))
        .routes(routes!(approvals::destructions_record))
        .routes(routes!(
            approvals::reclassifications_create,
            approvals::reclassifications_list
        ))
        .routes(routes!(approvals::reclassifications_one))
        .routes(routes!(approvals::reclassifications_approve))
        .routes(routes!(approvals::reclassifications_reject))
        .routes(routes!(approvals::carrier_lineage))
        .routes(routes!(people::leave))
        .routes(routes!(people::depart))
        .routes(routes!(people::clearance))
        .routes(routes!(travel::create, travel::list))
        .routes(routes!(travel::approve))
        .routes(routes!(travel::reject))
        .routes(routes!(moves::create_stocktake, moves::list_stocktakes))
        .routes(routes!(moves::one_stocktake))
        .routes(routes!(moves::scan))
        .routes(routes!(moves::close_stocktake))
        .routes(routes!(moves::resolve))
        .routes(routes!(moves::create_collection, moves::list_collections))
        .routes(routes!(moves::one_collection))
        .routes(routes!(moves::close_item))
        .routes(routes!(moves::set_retention))
        .routes(routes!(moves::retention_review))
        .routes(routes!(moves::create_repair, moves::list_repairs))
        .routes(routes!(moves::one_repair))
        .routes(routes!(moves::return_repair))
        .routes(routes!(
            transfers::create_transfer,
            transfers::list_transfers
        ))
        .routes(routes!(transfers::one_transfer))
        .routes(routes!(transfers::approve_transfer))
        .routes(routes!(transfers::reject_transfer))
        .routes(routes!(transfers::handover))
        .routes(routes!(transfers::receive))
        .routes(routes!(
            transfers::create_dispatch,
            transfers::list_dispatches
        ))
        .routes(routes!(transfers::one_dispatch))
        .routes(routes!(transfers::approve_dispatch))
        .routes(routes!(transfers::reject_dispatch))
        .routes(routes!(transfers::send))
        .routes(routes!(transfers::delivered))
        // INGEST: device endpoints (Ed25519-signed by the device, no user session) and the
        // server's public key for daemons to pin.
        .routes(routes!(ingest::batches).layer(uplink_limit))
        .routes(routes!(ingest::heartbeats).layer(uplink_limit))
        .routes(routes!(ingest::policy).layer(uplink_limit))
        .routes(routes!(ingest::server_key))
        // EXPORTS: EPCIS and the CSV registers.
        .routes(routes!(exports::epcis_events))
        .routes(routes!(exports::carriers))
        .routes(routes!(exports::people))
        .routes(routes!(exports::signouts))
        .routes(routes!(exports::alerts))
        .routes(routes!(exports::audit))
        .routes(routes!(exports::import_carriers).layer(import_limit))
        .routes(routes!(exports::import_people).layer(import_limit))
}

/// Build the router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings().body_limit_bytes;
    let (api, _) = api_routes().split_for_parts();
    Router::new()
        .nest(BASE_PATH, api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::behind_token))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// The separate metrics listener (`metrics_listen`): `/metrics` without a token and
/// `/healthz`, nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// `GET /healthz`: public, because load balancers and init systems probe it without
/// credentials. It answers only `{"status":"ok"}` when the database answers (500 otherwise):
/// no version, no counts, no names.
async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store().ping().await?;
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
