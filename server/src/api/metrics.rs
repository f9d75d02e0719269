//! `GET /metrics`: the Prometheus text of [`crate::metrics`] with the alert counts read now.
//!
//! It needs no session (scrapers do not log in) and shows only counts, never ids, titles or
//! names; serve it on an internal network.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::AppState;
use crate::metrics::CONTENT_TYPE_TEXT;
use crate::service::alerts;

/// `GET /metrics`.
pub async fn serve(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = alerts::counts(&state).await?;
    let text = state.metrics().render(&counts);
    Ok(([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], text).into_response())
}
