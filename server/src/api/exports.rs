//! Exports: `GET /epcis/events` (EPCIS 2.0 JSON-LD) and `GET /export/{register}.csv`;
//! imports: `POST /import/{carriers|people}` (CSV).
//! Thin: each calls one use case of [`crate::service::exports`].

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::Query;
use super::openapi::SessionRefusals;
use crate::AppState;
use crate::auth::capability::{
    AlertReaderCap, AuditorCap, CustodianCap, CustodyReader, EventExportCap, PeopleReaderCap,
    SecurityOfficerCap,
};
use crate::domain::time::Timestamp;
use crate::service::exports::{self, CsvExport};
use crate::service::imports::{self, ImportReport};

/// The largest CSV an import takes.
pub const IMPORT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// `GET /epcis/events` query: the time range, both ends optional.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Range {
    /// Movements at or after this time (RFC 3339; default: the beginning).
    #[serde(default)]
    from: Option<Timestamp>,
    /// Movements before this time (RFC 3339; default: now).
    #[serde(default)]
    to: Option<Timestamp>,
}

/// The carrier movements of a time range as an EPCIS 2.0 `EPCISDocument` of `ObjectEvent`s
/// (gate passages, cabinet movements, desk scans, issues and returns, transfer and dispatch
/// steps as `shipping`/`receiving`, destructions as `DELETE` with `destroying`/`destroyed`),
/// with EPC URIs, CBV business steps and dispositions, devices as read points and zones as
/// business locations; never a title (auditors, security officers). The export is audited.
#[utoipa::path(
    get,
    operation_id = "epcis_events",
    path = "/epcis/events",
    tag = "exports",
    params(Range),
    responses(
        (status = 200, description = "An EPCIS 2.0 document", content_type = "application/ld+json", body = Object),
        (status = 400, description = "A malformed time or more than 50000 movements (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn epcis_events(
    cap: EventExportCap,
    State(state): State<AppState>,
    Query(range): Query<Range>,
) -> Result<Response, ApiError> {
    let document = exports::epcis(&state, &cap, range.from, range.to).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/ld+json")],
        document.to_string(),
    )
        .into_response())
}

/// A CSV answer, offered as a download named after the register.
fn csv(export: CsvExport, text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", export.name()),
            ),
        ],
        text,
    )
        .into_response()
}

/// The carrier register (台账) as CSV, with titles (custodians, security officers): UTF-8
/// with a BOM, RFC 4180, formula cells neutralised. Audited.
#[utoipa::path(
    get,
    operation_id = "export_carriers",
    path = "/export/carriers.csv",
    tag = "exports",
    responses(
        (status = 200, description = "The register", content_type = "text/csv", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn carriers(
    cap: CustodyReader,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(csv(
        CsvExport::Carriers,
        exports::carriers_csv(&state, &cap).await?,
    ))
}

/// The register of people as CSV (security officers, custodians, administrators). Audited.
#[utoipa::path(
    get,
    operation_id = "export_people",
    path = "/export/people.csv",
    tag = "exports",
    responses(
        (status = 200, description = "The people", content_type = "text/csv", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn people(
    cap: PeopleReaderCap,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(csv(
        CsvExport::People,
        exports::people_csv(&state, &cap).await?,
    ))
}

/// Every sign-out as CSV (custodians, security officers). Audited.
#[utoipa::path(
    get,
    operation_id = "export_signouts",
    path = "/export/signouts.csv",
    tag = "exports",
    responses(
        (status = 200, description = "The sign-outs", content_type = "text/csv", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn signouts(
    cap: CustodyReader,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(csv(
        CsvExport::Signouts,
        exports::signouts_csv(&state, &cap).await?,
    ))
}

/// Every alert as CSV, newest first (guards, custodians, security officers). Audited.
#[utoipa::path(
    get,
    operation_id = "export_alerts",
    path = "/export/alerts.csv",
    tag = "exports",
    responses(
        (status = 200, description = "The alerts", content_type = "text/csv", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn alerts(
    cap: AlertReaderCap,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(csv(
        CsvExport::Alerts,
        exports::alerts_csv(&state, &cap).await?,
    ))
}

/// The whole audit trail as CSV, oldest first, with the chain hashes (auditor). Audited.
#[utoipa::path(
    get,
    operation_id = "export_audit",
    path = "/export/audit.csv",
    tag = "exports",
    responses(
        (status = 200, description = "The trail", content_type = "text/csv", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn audit(cap: AuditorCap, State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(csv(
        CsvExport::Audit,
        exports::audit_csv(&state, &cap).await?,
    ))
}

/// `POST /import/{register}` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `true` keeps the rows (all or nothing); default `false`, a dry run.
    #[serde(default)]
    commit: bool,
}

/// The answer to an import: 200 with the report for a dry run or a kept commit; a commit
/// with problems is 422 `import_refused` (nothing kept) with the same report.
fn import_answer(report: ImportReport, commit: bool) -> Response {
    if commit && !report.committed {
        let mut body = serde_json::to_value(&report).unwrap_or_default();
        body["error"] = "import_refused".into();
        body["message"] = format!(
            "{} problem(s) in the file; nothing was imported",
            report.problems.len()
        )
        .into();
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    }
    axum::Json(report).into_response()
}

/// Load carriers from CSV (custodians). The first record names the columns (`control_no`,
/// `kind`, `level`, `title`, `owner_unit` required; `copy_no`, `copies`, `home_device`,
/// `tags` optional). A dry run (default) lists every row's problems and keeps nothing;
/// `?commit=true` registers every row or, with any problem, none.
#[utoipa::path(
    post,
    operation_id = "import_carriers",
    path = "/import/carriers",
    tag = "exports",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV, RFC 4180, optional BOM"),
    responses(
        (status = 200, description = "The dry run's or the kept commit's report", body = ImportReport),
        (status = 400, description = "The body is not UTF-8 or the query is malformed (`bad_request`)", body = ErrorBody),
        (status = 413, description = "The body is larger than 4 MiB (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "A commit with problems (`import_refused`): nothing kept; the report lists them", body = ImportReport),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn import_carriers(
    cap: CustodianCap,
    State(state): State<AppState>,
    Query(query): Query<ImportQuery>,
    body: String,
) -> Result<Response, ApiError> {
    let report = imports::carriers(&state, &cap, &body, query.commit).await?;
    Ok(import_answer(report, query.commit))
}

/// Load people from CSV (security officers). Columns: `name`, `department`, `category`
/// required; `badge_tag`, `training_valid_until`, `commitment_signed_on` optional. Dry run
/// by default; `?commit=true` registers all or nothing.
#[utoipa::path(
    post,
    operation_id = "import_people",
    path = "/import/people",
    tag = "exports",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV, RFC 4180, optional BOM"),
    responses(
        (status = 200, description = "The dry run's or the kept commit's report", body = ImportReport),
        (status = 400, description = "The body is not UTF-8 or the query is malformed (`bad_request`)", body = ErrorBody),
        (status = 413, description = "The body is larger than 4 MiB (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "A commit with problems (`import_refused`): nothing kept; the report lists them", body = ImportReport),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn import_people(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Query(query): Query<ImportQuery>,
    body: String,
) -> Result<Response, ApiError> {
    let report = imports::people(&state, &cap, &body, query.commit).await?;
    Ok(import_answer(report, query.commit))
}
