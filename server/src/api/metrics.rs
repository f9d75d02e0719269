//! `GET /metrics`: the Prometheus text of [`crate::metrics`] with the alert counts read now.
//!
//! It shows only counts, never ids, titles or names, but even counts (open alerts per kind,
//! ingest rates) tell an outsider when a site is in trouble. So it is never served
//! unauthenticated on the public port: there it answers only to `Authorization: Bearer
//! <metrics_token>` when a token is configured (404 without one, as if it did not exist; 401
//! for a wrong or missing token); a scraper without a token reads it on the separate
//! `metrics_listen` address, an internal interface ([`super::metrics_router`]).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::AppState;
use crate::auth::token;
use crate::metrics::CONTENT_TYPE_TEXT;
use crate::service::alerts;

/// `GET /metrics` on the metrics listener.
pub async fn serve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = alerts::counts(&state).await?;
    let text = state.metrics().render(&counts);
    Ok(([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], text).into_response())
}

/// `GET /metrics` on the public port: only with the configured bearer token.
pub async fn behind_token(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.settings().metrics_token else {
        return Err(ApiError::NotFound);
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token::same_secret(presented, expected) {
        return Err(ApiError::Unauthenticated);
    }
    serve(State(state)).await
}
