//! `GET /audit?after=N&limit=M` (auditor): entries with their chain hashes, oldest first.

use axum::extract::State;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::Query;
use crate::AppState;
use crate::audit::{AuditRecord, PAGE_MAX};
use crate::auth::capability::AuditorCap;
use crate::domain::ids::AuditId;

/// Paging: entries with id greater than `after` (default 0), at most `limit` (default and
/// maximum 1000).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    #[serde(default)]
    after: i64,
    #[serde(default = "page_max")]
    limit: u32,
}

fn page_max() -> u32 {
    PAGE_MAX
}

/// Read the trail.
pub async fn list(
    cap: AuditorCap,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<axum::Json<Vec<AuditRecord>>, ApiError> {
    let entries = state
        .store()
        .audit_after(&cap, AuditId(page.after), page.limit)
        .await?;
    Ok(axum::Json(entries))
}
