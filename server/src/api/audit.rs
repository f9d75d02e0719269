//! `GET /audit?after=N&limit=M&q=…` (auditor): entries with their chain hashes, oldest first.

use axum::extract::{OriginalUri, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::openapi::SessionRefusals;
use crate::AppState;
use crate::audit::{AuditRecord, PAGE_MAX};
use crate::auth::capability::AuditorCap;
use crate::domain::ids::AuditId;
use crate::service::audit;

/// Paging: entries with id greater than `after` (default 0) and than the `cursor`, at most
/// `limit` (default and maximum 1000).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// List entries with an id greater than this (default 0).
    #[serde(default)]
    after: i64,
    /// At most this many entries (default and maximum 1000; 0 lists none).
    #[serde(default = "page_max")]
    #[param(minimum = 0, maximum = 1000)]
    limit: u32,
    /// The cursor from the previous page's `Link: rel="next"` header (opaque).
    #[serde(default)]
    #[param(schema_with = super::paging::cursor_schema)]
    cursor: Option<String>,
    /// Search words (split at white space; at most 200 characters): each must be in the
    /// actor, the action or the subject (any case).
    #[serde(default)]
    #[param(schema_with = super::paging::q_schema)]
    q: Option<String>,
    /// The order: oldest first (`id`), the only one.
    #[serde(default)]
    #[param(schema_with = super::paging::oldest_first_schema)]
    sort: Option<String>,
}

fn page_max() -> u32 {
    PAGE_MAX
}

/// Read the trail, oldest first, with each entry's chain hashes (auditor); a
/// `Link: <…>; rel="next"` header while more remain.
#[utoipa::path(
    get,
    operation_id = "audit_list",
    path = "/audit",
    tag = "audit",
    params(Page),
    responses(
        (status = 200, description = "Entries after `after`", body = Vec<AuditRecord>,
            headers(("link" = String, description = "`<URI>; rel=\"next\"` while more remain"))),
        (status = 400, description = "A malformed parameter (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: AuditorCap,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    if page
        .sort
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "id")
    {
        return Err(ApiError::BadRequest("sort must be id".into()));
    }
    let entries = audit::page(
        &state,
        &cap,
        AuditId(page.after),
        page.limit,
        page.cursor.as_deref(),
        page.q.as_deref(),
    )
    .await?;
    Ok(super::paging::answer(&uri, entries))
}
