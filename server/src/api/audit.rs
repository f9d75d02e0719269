//! `GET /audit?after=N&limit=M` (auditor): entries with their chain hashes, oldest first.

use axum::extract::State;
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::openapi::SessionRefusals;
use crate::AppState;
use crate::audit::{AuditRecord, PAGE_MAX};
use crate::auth::capability::AuditorCap;
use crate::domain::ids::AuditId;
use crate::service::audit;

/// Paging: entries with id greater than `after` (default 0), at most `limit` (default and
/// maximum 1000).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// List entries with an id greater than this (default 0).
    #[serde(default)]
    after: i64,
    /// At most this many entries (default and maximum 1000).
    #[serde(default = "page_max")]
    limit: u32,
}

fn page_max() -> u32 {
    PAGE_MAX
}

/// Read the trail, oldest first, with each entry's chain hashes (auditor).
#[utoipa::path(
    get,
    operation_id = "audit_list",
    path = "/audit",
    tag = "audit",
    params(Page),
    responses(
        (status = 200, description = "Entries after `after`", body = Vec<AuditRecord>),
        (status = 400, description = "A malformed parameter (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: AuditorCap,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<axum::Json<Vec<AuditRecord>>, ApiError> {
    let entries = audit::entries(&state, &cap, AuditId(page.after), page.limit).await?;
    Ok(axum::Json(entries))
}
