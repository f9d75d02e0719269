//! Printable reports: the carrier register (台账), overdue loans and missing carriers with
//! their leak deadlines, as pages made for paper.
//!
//! # The report layout (reuse it for further reports)
//! [`report_document`] is a whole document of its own, not the app frame: no navigation on
//! paper. Its stylesheet ([`REPORT_CSS`], `static/report.css`) sets A4 pages with margins,
//! a page number "N / M" at the foot of every page (CSS page-margin boxes), and repeats the
//! table head, which carries the unit (config `report_unit`), the report's title and the time
//! it was made, on every printed page (a `thead` is repeated by the print engine). It ends
//! with signature lines ([`Signature`]: who prepared, checked and approved it, each with a
//! date line). A report is: a title, the columns, the rows (cells of markup), and the
//! signatures its paper form needs. A stocktake result, a destruction record with its
//! witnesses or a year-end collection per department is one more handler that reads its use
//! case and calls [`report_document`] (those records do not exist in this version yet).
//!
//! Titles appear only on the register, which custodians and security officers may read (as
//! on the register page); the other reports name carriers by control number and level.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};

use super::assets::Asset;
use super::custodian::{frame, level_tag, maybe_time};
use super::i18n::{self, Key, Lang, t};
use super::layout;
use super::officer::{LeakClock, leak_clock, whole_days};
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::{AlertReaderCap, Capability, CustodyReader, PeopleReaderCap};
use crate::domain::approval::{RequestKind, RequestState};
use crate::domain::carrier::CarrierState;
use crate::domain::role::Role;
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;
use crate::service::{carriers, signouts};
use crate::store::carriers::{Carrier, CarrierFilter};

/// The print stylesheet of the reports.
pub static REPORT_CSS: Asset = Asset::new(
    "/static/report.css",
    "text/css; charset=utf-8",
    include_str!("static/report.css"),
);

/// `GET /static/report.css`.
pub async fn report_css(headers: HeaderMap) -> Response {
    REPORT_CSS.respond(&headers)
}

/// A signature line at the foot of a report: the role that signs.
#[derive(Debug, Clone, Copy)]
pub struct Signature(pub Key);

/// The signatures most reports need: prepared by, checked by, approved by.
pub const STANDARD_SIGNATURES: &[Signature] = &[
    Signature(Key::ReportPreparedBy),
    Signature(Key::ReportCheckedBy),
    Signature(Key::ReportApprovedBy),
];

/// One report to print.
pub struct Report<'a> {
    /// Its id in `data-report` (`register`, `overdue`, `missing`, ...).
    pub id: &'static str,
    /// Its title.
    pub title: Key,
    /// The unit named in the header.
    pub unit: &'a str,
    /// When it was made.
    pub made_at: Timestamp,
    /// Column heads.
    pub columns: Vec<Key>,
    /// Rows of cells (as many as columns).
    pub rows: Vec<Vec<Markup>>,
    /// Text shown instead of an empty table.
    pub empty: Key,
    /// Signature lines at the end.
    pub signatures: &'a [Signature],
}

/// What the report of one record (a stocktake, a destruction, a collection) adds to the
/// plain layout. Everything is optional, so a list report passes the default.
#[derive(Default)]
pub struct Extras {
    /// Where the back link leads (the record's own page); the report list by default.
    pub back: Option<String>,
    /// Facts about the record (field name, label, value), in the head under the title, so
    /// they are repeated with it on every printed page (a record's sheets stay identified);
    /// each as `.report-fact[data-field]`. Keep them short.
    pub facts: Vec<(&'static str, Key, Markup)>,
    /// A summary shown once after the rows, before the signatures (e.g. the totals per
    /// department).
    pub summary: Option<Markup>,
    /// Signature lines for named people (a stocktake's closer, a destruction's witnesses),
    /// before the role lines: the role, and the name printed under the line (empty for a
    /// blank line to fill in by hand).
    pub named: Vec<(Key, String)>,
}

/// The whole printable document of `report` (see the module doc).
pub fn report_document(lang: Lang, report: &Report<'_>) -> Markup {
    report_document_with(lang, report, &Extras::default())
}

/// [`report_document`] with the record's facts, summary and named signatures.
pub fn report_document_with(lang: Lang, report: &Report<'_>, extras: &Extras) -> Markup {
    let span = report.columns.len().max(1);
    let back = extras.back.as_deref().unwrap_or("/reports");
    html! {
        (DOCTYPE)
        html lang=(lang.html_tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (t(lang, report.title)) " · " (report.unit) }
                link rel="stylesheet" href=(REPORT_CSS.href());
            }
            body.report {
                nav.report-tools {
                    a #report-back href=(back) { "← " (t(lang, if extras.back.is_some() { Key::ReportBack } else { Key::ReportsTitle })) }
                    span.hint { (t(lang, Key::ReportPrintHint)) }
                }
                main #main .report-page data-report=(report.id) {
                    table #report-table .report-table {
                        thead {
                            tr.report-head { th colspan=(span) {
                                div #report-unit .report-unit { (report.unit) }
                                h1 #report-title { (t(lang, report.title)) }
                                div.report-meta {
                                    (t(lang, Key::ReportMadeAt)) " "
                                    span #report-made-at { (layout::time(report.made_at)) }
                                    " · " (t(lang, Key::ReportRows)) " "
                                    span #report-count { (report.rows.len()) }
                                }
                                @if !extras.facts.is_empty() {
                                    dl #report-facts .report-facts-list {
                                        @for (field, label, value) in &extras.facts {
                                            div.report-fact data-field=(field) { dt { (t(lang, *label)) } dd { (value) } }
                                        }
                                    }
                                }
                            } }
                            tr.report-columns {
                                @for c in &report.columns { th { (t(lang, *c)) } }
                            }
                        }
                        tbody {
                            @if report.rows.is_empty() {
                                tr #report-empty { td colspan=(span) { (t(lang, report.empty)) } }
                            }
                            @for row in &report.rows {
                                tr.report-row { @for cell in row { td { (cell) } } }
                            }
                        }
                    }
                    @if let Some(summary) = &extras.summary {
                        section #report-summary .report-summary-block { (summary) }
                    }
                    section #report-signatures .signatures {
                        @for (role, name) in &extras.named {
                            div.signature.named {
                                span.role { (t(lang, *role)) }
                                span.line { span.signer { (name) } }
                                span.role { (t(lang, Key::ReportDate)) }
                                span.line.short {}
                            }
                        }
                        @for s in report.signatures {
                            div.signature {
                                span.role { (t(lang, s.0)) }
                                span.line {}
                                span.role { (t(lang, Key::ReportDate)) }
                                span.line.short {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The CSV exports offered on the report list: the API's files (the session cookie opens
/// them), each shown to the roles that may download it.
const CSV_LINKS: &[(&str, Key, &[Role])] = &[
    ("carriers", Key::CsvCarriers, CustodyReader::ROLES),
    ("people", Key::CsvPeople, PeopleReaderCap::ROLES),
    ("signouts", Key::CsvSignouts, CustodyReader::ROLES),
    ("alerts", Key::CsvAlerts, AlertReaderCap::ROLES),
];

/// How many records of each kind the report list offers (newest first).
const RECORDS_LISTED: usize = 20;

/// `GET /reports`: the list of printable reports, the latest records' reports (closed
/// stocktakes, collections, recorded destructions: an officer reaches a stocktake's report
/// here, not having the custodian's stocktake page) and the CSV exports.
pub async fn index(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let internal = |e| session.internal(e);
    let mut stocktakes = crate::service::moves::stocktakes(&state, &page.cap)
        .await
        .map_err(internal)?;
    stocktakes.retain(|s| s.closed_at.is_some());
    stocktakes.truncate(RECORDS_LISTED);
    let mut collections = crate::service::moves::collections(&state, &page.cap)
        .await
        .map_err(internal)?;
    collections.truncate(RECORDS_LISTED);
    let mut destructions = crate::service::approvals::list(
        &state,
        &page.cap,
        Some(RequestKind::Destruction),
        Some(RequestState::Done),
    )
    .await
    .map_err(internal)?;
    destructions.truncate(RECORDS_LISTED);
    let content = html! {
        h1 { (t(lang, Key::ReportsTitle)) }
        p.hint { (t(lang, Key::ReportsHint)) }
        section.panel {
            ul #report-list {
                @for (id, key) in [
                    ("register", Key::ReportRegisterTitle),
                    ("overdue", Key::ReportOverdueTitle),
                    ("missing", Key::ReportMissingTitle),
                ] {
                    li { a.report-link data-report=(id) href={ "/reports/" (id) } { (t(lang, key)) } }
                }
            }
        }
        section.panel #record-reports {
            h2 { (t(lang, Key::RecordReportsTitle)) }
            @if stocktakes.is_empty() && collections.is_empty() && destructions.is_empty() {
                p.hint { (t(lang, Key::ReportNothing)) }
            }
            ul {
                @for s in &stocktakes {
                    li { a.record-report data-report="stocktake" data-id=(s.id) href={ "/reports/stocktakes/" (s.id) } {
                        (t(lang, Key::ReportStocktakeTitle)) " #" (s.id) " · " (s.scope_ref) " · " (maybe_time(lang, s.closed_at))
                    } }
                }
                @for c in &collections {
                    li { a.record-report data-report="collection" data-id=(c.id) href={ "/reports/collections/" (c.id) } {
                        (t(lang, Key::ReportCollectionTitle)) " " (c.year)
                    } }
                }
                @for d in &destructions {
                    li { a.record-report data-report="destruction" data-id=(d.id) href={ "/reports/destructions/" (d.id) } {
                        (t(lang, Key::ReportDestructionTitle)) " #" (d.id) " · " (maybe_time(lang, d.done_at))
                    } }
                }
            }
        }
        section.panel {
            h2 { (t(lang, Key::CsvExportsTitle)) }
            p.hint { (t(lang, Key::CsvExportsHint)) }
            ul #csv-exports {
                @for (name, key, roles) in CSV_LINKS {
                    @if session.may(roles) {
                        li { a.csv-export data-export=(name) href={ "/api/v1/export/" (name) ".csv" } download { (t(lang, *key)) } }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::ReportsTitle),
        "reports",
        content,
    ))
}

/// `GET /reports/register`: the carrier register (台账), with titles.
pub async fn register(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list: Vec<Carrier> = carriers::list(&state, &page.cap, CarrierFilter::default())
        .await
        .map_err(|e| session.internal(e))?;
    let rows = list
        .iter()
        .map(|c| {
            let s = &c.summary;
            vec![
                html! { span.carrier-no { (s.control_no) } },
                level_tag(lang, s.level),
                html! { (t(lang, i18n::carrier_kind(s.kind))) },
                html! { (c.title) },
                html! { @if let (Some(n), Some(of)) = (s.copy_no, s.copies) { (n) "/" (of) } },
                html! { (s.owner_unit) },
                super::repairs::state_tag(lang, s),
                html! { @if let Some(h) = &s.holder { (h.name) } },
            ]
        })
        .collect();
    let settings = state.settings();
    Ok(report_document(
        lang,
        &Report {
            id: "register",
            title: Key::ReportRegisterTitle,
            unit: &settings.report_unit,
            made_at: state.now(),
            columns: vec![
                Key::CarrierControlNo,
                Key::Level,
                Key::ReportKind,
                Key::ReportCarrierTitle,
                Key::ReportCopy,
                Key::OwnerUnit,
                Key::ReportState,
                Key::Holder,
            ],
            rows,
            empty: Key::ReportNothing,
            signatures: STANDARD_SIGNATURES,
        },
    ))
}

/// `GET /reports/overdue`: loans out past their due time, most overdue first.
pub async fn overdue(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let now = state.now();
    let mut list = signouts::list(&state, &page.cap, Some(SignoutState::Out))
        .await
        .map_err(|e| session.internal(e))?;
    list.retain(|so| so.due_at < now);
    list.sort_by_key(|so| so.due_at);
    let rows = list
        .iter()
        .map(|so| {
            let days = whole_days(so.due_at.unix_ms(), now.unix_ms());
            vec![
                html! { "#" (so.id) },
                html! { (so.borrower.name) },
                html! {
                    @for c in so.carriers.iter().filter(|c| c.returned_at.is_none()) {
                        span.carrier-no { (c.control_no) } " " (level_tag(lang, c.level)) " "
                    }
                },
                layout::time(so.due_at),
                html! { span.days-overdue data-days=(days) { (days) " " (t(lang, Key::DaysUnit)) } },
            ]
        })
        .collect();
    Ok(report_document(
        lang,
        &Report {
            id: "overdue",
            title: Key::ReportOverdueTitle,
            unit: &state.settings().report_unit,
            made_at: now,
            columns: vec![
                Key::Signout,
                Key::Borrower,
                Key::CarriersOut,
                Key::DueAt,
                Key::DaysOverdue,
            ],
            rows,
            empty: Key::ReportNothing,
            signatures: STANDARD_SIGNATURES,
        },
    ))
}

/// `GET /reports/missing`: missing carriers with their leak deadlines, nearest first.
pub async fn missing(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let now = state.now();
    let filter = CarrierFilter {
        state: Some(CarrierState::Missing),
        q: None,
    };
    let list = carriers::list(&state, &page.cap, filter)
        .await
        .map_err(|e| session.internal(e))?;
    let mut found: Vec<(&Carrier, Option<LeakClock>)> = list
        .iter()
        .map(|c| {
            let s = &c.summary;
            let clock = s
                .missing_since
                .map(|since| leak_clock(s.level, since.unix_ms(), now.unix_ms()));
            (c, clock)
        })
        .collect();
    found.sort_by_key(|(_, clock)| clock.map_or(i64::MIN, |k| k.deadline_ms));
    let rows = found
        .iter()
        .map(|(c, clock)| {
            let s = &c.summary;
            vec![
                html! { span.carrier-no { (s.control_no) } },
                level_tag(lang, s.level),
                maybe_time(lang, s.missing_since),
                html! { @if let Some(k) = clock { (maybe_time(lang, Timestamp::from_unix_ms(k.deadline_ms))) } },
                html! {
                    @match clock {
                        Some(k) if k.passed => { span.days-left.passed data-days="0" { (t(lang, Key::DeadlinePassed)) } }
                        Some(k) => { span.days-left data-days=(k.days_left) { (k.days_left) " " (t(lang, Key::DaysUnit)) } }
                        None => { "—" }
                    }
                },
                html! { @if let Some(seen) = &s.last_seen { (seen.device_id) " · " (layout::time(seen.at)) } },
            ]
        })
        .collect();
    Ok(report_document(
        lang,
        &Report {
            id: "missing",
            title: Key::ReportMissingTitle,
            unit: &state.settings().report_unit,
            made_at: now,
            columns: vec![
                Key::CarrierControlNo,
                Key::Level,
                Key::MissingSince,
                Key::LeakDeadline,
                Key::DaysLeft,
                Key::LastSeen,
            ],
            rows,
            empty: Key::ReportNothing,
            signatures: STANDARD_SIGNATURES,
        },
    ))
}
