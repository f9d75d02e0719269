//! Printable reports of single records: a stocktake's result, a destruction record with its
//! witnesses, and a year-end collection per department. Each reads the use case its page
//! reads and prints through the shared A4 layout ([`super::reports::report_document_with`]):
//! the unit, title and time repeated on every page, the record's facts once before the rows,
//! and signature lines, named where the record names the signer (the stocktake's closer, the
//! destruction's witnesses).
//!
//! | path | reached from |
//! |---|---|
//! | `GET /reports/stocktakes/{id}` | the stocktake page (`#stocktake-report-link`) |
//! | `GET /reports/destructions/{id}` | the carrier page's request list and the record page |
//! | `GET /reports/collections/{id}[?department=D]` | the collection page (whole, or per department row) |
//!
//! Custodians and security officers may print them (as they may read the records). None
//! shows a title: carriers are named by control number and level.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::approvals::{body_carriers, method_key};
use super::custodian::{level_tag, maybe_time, not_found, query};
use super::i18n::{self, Key, Lang, t};
use super::layout;
use super::moves::{outcome_key, resolution_key, scope_words};
use super::reports::{Extras, Report, STANDARD_SIGNATURES, Signature, report_document_with};
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::CustodyReader;
use crate::domain::carrier::level_from_code;
use crate::domain::ids::{CollectionId, RequestId, StocktakeId};
use crate::service::ServiceError;
use crate::service::{destructions, moves};

/// The lines under a record that someone else closed: checked and approved.
const CHECK_AND_APPROVE: &[Signature] = &[
    Signature(Key::ReportCheckedBy),
    Signature(Key::ReportApprovedBy),
];

/// A cell with a carrier state word.
fn state_cell(lang: Lang, state: crate::domain::carrier::CarrierState) -> Markup {
    html! { span.carrier-state data-state=(state.as_str()) { (t(lang, i18n::carrier_state(state))) } }
}

/// `GET /reports/stocktakes/{id}`: expected against seen, every expected carrier with its
/// result and how a missing one was settled, then the unexpected scans; signed by whoever
/// closed it.
pub async fn stocktake(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<StocktakeId>() else {
        return Ok(not_found(session, Key::StocktakeNotFound));
    };
    let v = match moves::stocktake(&state, &page.cap, id).await {
        Ok(v) => v,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::StocktakeNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let mut rows: Vec<Vec<Markup>> = v
        .expected_carriers
        .iter()
        .map(|c| {
            let missing = v.result.missing.contains(&c.id);
            let settled = v.resolutions.iter().find(|r| r.carrier_id == c.id);
            vec![
                html! { span.carrier-no { (c.control_no) } },
                level_tag(lang, c.level),
                state_cell(lang, c.state),
                html! {
                    span.stocktake-result data-result=(if missing { "missing" } else { "seen" }) {
                        (t(lang, if missing { Key::StocktakeMissing } else { Key::StocktakeSeen }))
                    }
                },
                html! {
                    @if let Some(r) = settled {
                        span.resolution data-resolution=(r.resolution.as_str()) {
                            (t(lang, resolution_key(r.resolution))) ": " (r.note)
                        }
                        " · " (r.resolved_by) " " (layout::time(r.resolved_at))
                    }
                },
            ]
        })
        .collect();
    rows.extend(v.result.unexpected.iter().map(|tag| {
        vec![
            html! { code.unexpected-tag { (tag) } },
            html! {},
            html! {},
            html! { span.stocktake-result data-result="unexpected" { (t(lang, Key::StocktakeUnexpected)) } },
            html! {},
        ]
    }));
    let facts = vec![
        (
            "scope",
            Key::StocktakeScope,
            scope_words(lang, v.head.scope_kind, &v.head.scope_ref, &v.scope_place),
        ),
        (
            "opened",
            Key::OpenedAt,
            html! { (v.head.opened_by) " " (layout::time(v.head.opened_at)) },
        ),
        (
            "closed",
            Key::StocktakeSignedBy,
            match (&v.head.closed_by, v.head.closed_at) {
                (Some(by), Some(at)) => {
                    html! { span #report-closed-by { (by) } " " (layout::time(at)) }
                }
                _ => html! { span.tone-warn { (t(lang, Key::StocktakeStillOpen)) } },
            },
        ),
        (
            "counts",
            Key::StocktakeCounts,
            html! {
                (t(lang, Key::StocktakeExpected)) " " span.count-expected { (v.result.expected) } " · "
                (t(lang, Key::StocktakeSeen)) " " span.count-seen { (v.result.seen) } " · "
                (t(lang, Key::StocktakeMissing)) " " span.count-missing { (v.result.missing.len()) } " · "
                (t(lang, Key::StocktakeUnexpected)) " " span.count-unexpected { (v.result.unexpected.len()) }
            },
        ),
    ];
    let extras = Extras {
        back: Some(format!("/stocktakes/{id}")),
        facts,
        summary: None,
        named: vec![(
            Key::StocktakeCountedBy,
            v.head.closed_by.clone().unwrap_or_default(),
        )],
    };
    let settings = state.settings();
    let report = Report {
        id: "stocktake",
        title: Key::ReportStocktakeTitle,
        unit: &settings.report_unit,
        made_at: state.now(),
        columns: vec![
            Key::CarrierControlNo,
            Key::Level,
            Key::ReportState,
            Key::StocktakeResult,
            Key::ResolutionLabel,
        ],
        rows,
        empty: Key::ReportNothing,
        signatures: CHECK_AND_APPROVE,
    };
    Ok(report_document_with(lang, &report, &extras).into_response())
}

/// `GET /reports/destructions/{id}`: the carriers, method, reason, approvals, and once
/// recorded the date, place and count; the two witnesses named on their signature lines
/// (blank lines before the record, to be filled in by hand at the destruction).
pub async fn destruction(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<RequestId>() else {
        return Ok(not_found(session, Key::RequestNotFound));
    };
    let sheet = match destructions::sheet(&state, &page.cap, id).await {
        Ok(s) => s,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::RequestNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let req = &sheet.request;
    let (method, reason, done_at) = (sheet.method, &sheet.reason, sheet.done_at);
    let (place, count) = (&sheet.place, sheet.count);
    let method_cell = html! { @if let Some(m) = method { (t(lang, method_key(m))) } };
    let rows: Vec<Vec<Markup>> = body_carriers(&req.body)
        .into_iter()
        .map(|(_, no, level)| {
            vec![
                html! { span.carrier-no { (no) } },
                html! { @if let Some(level) = level.and_then(level_from_code) { (level_tag(lang, level)) } },
                method_cell.clone(),
                maybe_time(lang, done_at),
            ]
        })
        .collect();
    let facts = vec![
        (
            "request",
            Key::ReportRequest,
            html! {
                "#" (req.id) " · " span.request-state data-state=(req.state.as_str()) { (t(lang, i18n::request_state(req.state))) }
            },
        ),
        (
            "requested",
            Key::ReportRequestedBy,
            html! { (req.requester.username) " " (layout::time(req.created_at)) },
        ),
        ("method", Key::DestructionMethod, method_cell.clone()),
        (
            "reason",
            Key::Reason,
            html! { (reason.as_deref().unwrap_or_default()) },
        ),
        (
            "approvals",
            Key::ReportApprovals,
            html! {
                @for (i, a) in req.approvals.iter().enumerate() {
                    @if i > 0 { "; " }
                    span.approval { (a.approver.username) " " (layout::time(a.at)) }
                }
            },
        ),
        ("date", Key::DestroyedAt, maybe_time(lang, done_at)),
        (
            "place",
            Key::DestructionPlace,
            html! { span #report-place { (place.as_deref().unwrap_or_default()) } },
        ),
        (
            "count",
            Key::CountedCarriers,
            html! { @if let Some(n) = count { span #report-counted { (n) } } },
        ),
    ];
    let mut named: Vec<(Key, String)> = sheet
        .witnesses
        .iter()
        .map(|w| (Key::Witness, format!("{} · {}", w.name, w.department)))
        .collect();
    while named.len() < 2 {
        named.push((Key::Witness, String::new()));
    }
    let extras = Extras {
        back: Some(format!("/destructions/{id}/record")),
        facts,
        summary: None,
        named,
    };
    let settings = state.settings();
    let report = Report {
        id: "destruction",
        title: Key::ReportDestructionTitle,
        unit: &settings.report_unit,
        made_at: state.now(),
        columns: vec![
            Key::CarrierControlNo,
            Key::Level,
            Key::DestructionMethod,
            Key::DestroyedAt,
        ],
        rows,
        empty: Key::ReportNothing,
        signatures: &[Signature(Key::ReportPreparedBy)],
    };
    Ok(report_document_with(lang, &report, &extras).into_response())
}

/// `GET /reports/collections/{id}[?department=D]`: the progress per department, then every
/// carrier called in (by department) closed as kept, archived or destroyed, or still open;
/// with `department`, that department's sheet alone (to be signed there).
pub async fn collection(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(id) = id.parse::<CollectionId>() else {
        return Ok(not_found(session, Key::CollectionNotFound));
    };
    let report = match moves::collection(&state, &page.cap, id).await {
        Ok(r) => r,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CollectionNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let q = query(session);
    let only = q.non_empty("department");
    let wanted = |d: &str| only.is_none_or(|o| o == d);
    let mut items: Vec<_> = report
        .items
        .iter()
        .filter(|i| wanted(&i.department))
        .collect();
    items.sort_by(|a, b| {
        a.department
            .cmp(&b.department)
            .then_with(|| a.carrier.control_no.cmp(&b.carrier.control_no))
    });
    let rows: Vec<Vec<Markup>> = items
        .iter()
        .map(|item| {
            vec![
                html! { span.department { (item.department) } },
                html! { span.carrier-no { (item.carrier.control_no) } },
                level_tag(lang, item.carrier.level),
                html! { (item.holder_name.as_deref().unwrap_or("—")) },
                state_cell(lang, item.carrier.state),
                html! {
                    @match item.outcome {
                        Some(o) => span.outcome data-outcome=(o.as_str()) { (t(lang, outcome_key(o))) },
                        None => span.outcome data-outcome="open" { (t(lang, Key::StillOpen)) },
                    }
                },
                html! {
                    @if let (Some(by), Some(at)) = (&item.closed_by, item.closed_at) {
                        (by) " " (layout::time(at))
                    }
                },
            ]
        })
        .collect();
    let summary = html! {
        table #report-departments .report-summary {
            thead { tr {
                th { (t(lang, Key::Department)) } th { (t(lang, Key::CalledIn)) } th { (t(lang, Key::Returned)) }
                th { (t(lang, Key::OutcomeKept)) } th { (t(lang, Key::OutcomeArchived)) }
                th { (t(lang, Key::OutcomeDestroyed)) } th { (t(lang, Key::StillOpen)) }
            } }
            tbody {
                @for d in report.departments.iter().filter(|d| wanted(&d.department)) {
                    tr.department data-department=(d.department) {
                        td { (d.department) } td.called-in { (d.called_in) } td.returned { (d.returned) }
                        td.kept { (d.kept) } td.archived { (d.archived) } td.destroyed { (d.destroyed) }
                        td.open { (d.open) }
                    }
                }
            }
        }
    };
    let facts = vec![
        (
            "year",
            Key::CollectionYear,
            html! { span #report-year { (report.head.year) } },
        ),
        (
            "opened",
            Key::OpenedAt,
            html! { (report.head.opened_by) " " (layout::time(report.head.opened_at)) },
        ),
        (
            "department",
            Key::Department,
            html! { span #report-department { (only.unwrap_or(t(lang, Key::AllDepartments))) } },
        ),
        (
            "complete",
            Key::CollectionComplete,
            html! {
                span #report-complete data-complete=(report.complete) {
                    (t(lang, if report.complete { Key::Yes } else { Key::No }))
                }
            },
        ),
    ];
    let extras = Extras {
        back: Some(format!("/collections/{id}")),
        facts,
        summary: Some(summary),
        named: Vec::new(),
    };
    let settings = state.settings();
    let document = Report {
        id: "collection",
        title: Key::ReportCollectionTitle,
        unit: &settings.report_unit,
        made_at: state.now(),
        columns: vec![
            Key::Department,
            Key::CarrierControlNo,
            Key::Level,
            Key::Holder,
            Key::ReportState,
            Key::CollectionOutcome,
            Key::ReportClosedBy,
        ],
        rows,
        empty: Key::ReportNothing,
        signatures: STANDARD_SIGNATURES,
    };
    Ok(report_document_with(lang, &document, &extras).into_response())
}
