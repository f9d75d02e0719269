//! The auditor's page (`/audit`, role `auditor`): the trail, newest first, with filters; the
//! chain's verification status; the signed heads and the server's public key.
//!
//! The verdict is the same full recomputation `custos-server audit verify` runs
//! ([`crate::service::audit::verify`]): every entry's hash and link, every signed head's
//! signature.
//! It runs on the read pool at each page view; at a few hundred thousand entries that is well
//! under a second. Filters are GET parameters (`actor`, `action`, `subject`, `from`, `to`),
//! so a filtered view can be bookmarked. The trail pages newest first with the API's opaque
//! cursor (`cursor=`, [`audit::newest_first_cursor`]) and the shared pager
//! ([`super::paging`]); it does not sort: the chain's one order is its sequence.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};

use super::form::{FormData, encode};
use super::i18n::{Key, Lang, t};
use super::layout::{self, field_error, form_errors, invalid};
use super::paging::{ListAsk, ListSpec, pager, reset_notice};
use super::session::{Page, WebError};
use crate::AppState;
use crate::audit::{Problem, Verdict};
use crate::auth::capability::AuditorCap;
use crate::domain::time::Date;
use crate::service::audit::{self, AuditRow, HeadView};
use crate::store::audit::AuditFilter;

/// Entries per page.
pub const PAGE_SIZE: u32 = 50;

/// The trail as a list page: its filters are kept in the pager's links. No sort keys: the
/// chain is ordered by its sequence (newest first here), so it pages but does not sort.
static AUDIT_LIST: ListSpec = ListSpec {
    path: "/audit",
    prefix: "audit",
    page_size: PAGE_SIZE,
    default_sort: "",
    filters: &["actor", "action", "subject", "from", "to", "batches"],
    sorts: &[],
    focus_search: false,
};
/// Signed heads listed.
pub const HEADS_SHOWN: u32 = 20;
/// Hash digits shown in the table (the full hash is in the `title`).
const SHORT: usize = 12;

/// The audited actions the page names in words and offers in the action filter, in the
/// order of the list. Actions added later show their code until they are named here.
pub const ACTIONS: &[(&str, Key)] = &[
    ("session.create", Key::ActSessionCreate),
    ("session.delete", Key::ActSessionDelete),
    ("session.revoke", Key::ActSessionRevoke),
    ("user.create", Key::ActUserCreate),
    ("user.disable", Key::ActUserDisable),
    ("user.enable", Key::ActUserEnable),
    ("user.password_reset", Key::ActUserPasswordReset),
    ("user.password_change", Key::ActUserPasswordChange),
    ("zone.create", Key::ActZoneCreate),
    ("device.create", Key::ActDeviceCreate),
    ("device.revoke", Key::ActDeviceRevoke),
    ("device.key_rotate", Key::ActDeviceKeyRotate),
    ("device.batch", Key::ActDeviceBatch),
    ("person.create", Key::ActPersonCreate),
    ("person.leave", Key::ActPersonLeave),
    ("person.depart", Key::ActPersonDepart),
    ("carrier.create", Key::ActCarrierCreate),
    ("carrier.missing", Key::ActCarrierMissing),
    ("carrier.found", Key::ActCarrierFound),
    ("signout.request", Key::ActSignoutRequest),
    ("signout.approve", Key::ActSignoutApprove),
    ("signout.issue", Key::ActSignoutIssue),
    ("signout.return", Key::ActSignoutReturn),
    ("signout.cancel", Key::ActSignoutCancel),
    ("alert.raise", Key::ActAlertRaise),
    ("alert.acknowledge", Key::ActAlertAcknowledge),
    ("alert.resolve", Key::ActAlertResolve),
    ("alert.reader_resumed", Key::ActAlertReaderResumed),
    ("delivery.give_up", Key::ActDeliveryGiveUp),
];

/// The action that device uploads write for every batch: thousands a day, hidden unless asked.
const BATCH_ACTION: &str = "device.batch";
/// Entries read per round while skipping batch entries, and the most rounds per page.
const SKIP_CHUNK: u32 = 200;
const SKIP_ROUNDS: usize = 10;

/// An action in words (its code when it has none).
fn action_words(lang: Lang, action: &str) -> Markup {
    let words = ACTIONS
        .iter()
        .find(|(code, _)| *code == action)
        .map_or(action, |(_, key)| t(lang, *key));
    html! { span.action data-action=(action) title=(action) { (words) } }
}

/// A subject as its name today (control number, username, device and zone, person), linked
/// to the trail filtered by it.
fn subject_link(subject: &str, labels: &HashMap<String, String>) -> Markup {
    let label = labels.get(subject).map_or(subject, String::as_str);
    html! {
        a.subject href={ "/audit?subject=" (encode(subject)) } data-subject=(subject) title=(subject) { (label) }
    }
}

/// The filter fields as typed, and what is wrong with them.
#[derive(Debug, Default)]
struct Filters {
    actor: String,
    action: String,
    subject: String,
    from: String,
    to: String,
    errors: Vec<(&'static str, Key)>,
}

impl Filters {
    fn from(query: &FormData) -> (Filters, AuditFilter) {
        let mut typed = Filters {
            actor: query.get("actor").trim().to_owned(),
            action: query.get("action").trim().to_owned(),
            subject: query.get("subject").trim().to_owned(),
            from: query.get("from").trim().to_owned(),
            to: query.get("to").trim().to_owned(),
            errors: Vec::new(),
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let from = typed.date("from");
        let to = typed.date("to");
        let filter = AuditFilter {
            actor: some(&typed.actor),
            action: some(&typed.action),
            subject: some(&typed.subject),
            from,
            to,
            // Set from the page's cursor (`trail`), not typed.
            before: None,
        };
        (typed, filter)
    }

    fn date(&mut self, field: &'static str) -> Option<Date> {
        let text = if field == "from" {
            &self.from
        } else {
            &self.to
        };
        if text.is_empty() {
            return None;
        }
        match text.parse() {
            Ok(date) => Some(date),
            Err(_) => {
                self.errors.push((field, Key::ErrDate));
                None
            }
        }
    }

    /// The query string of these filters (for the paging links).
    fn query(&self) -> String {
        [
            ("actor", &self.actor),
            ("action", &self.action),
            ("subject", &self.subject),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `GET /audit`.
pub async fn trail(
    page: Page<AuditorCap>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let query = session.path().split_once('?').map_or("", |(_, q)| q);
    let query = FormData::parse(query.as_bytes()).unwrap_or_default();
    let (typed, mut filter) = Filters::from(&query);
    let mut ask = ListAsk::read(&query, &AUDIT_LIST);
    let mut refused = false;
    if !ask.cursor.is_empty() {
        match audit::newest_first_position(&ask.cursor) {
            Ok(at) => filter.before = Some(at.0),
            Err(_) => {
                // Not a cursor of this page: the newest entries, with a notice and a 400.
                refused = true;
                ask.cursor.clear();
            }
        }
    }
    let show_batches = query.get("batches") == "1" || typed.action.starts_with(BATCH_ACTION);
    let (mut entries, hidden) = if typed.errors.is_empty() {
        page_of(&state, &page.cap, filter, show_batches)
            .await
            .map_err(|e| session.internal(e))?
    } else {
        (Vec::new(), 0)
    };
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let subjects: Vec<String> = entries.iter().map(|e| e.subject.clone()).collect();
    let labels = audit::subject_labels(&state, &page.cap, subjects)
        .await
        .map_err(|e| session.internal(e))?;
    let public_key = state.server_key().public_key();
    let verdict = audit::verify(&state, &page.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let heads = audit::heads(&state, &page.cap, HEADS_SHOWN)
        .await
        .map_err(|e| session.internal(e))?;
    let view = View {
        labels: &labels,
        show_batches,
        hidden,
        typed: &typed,
        entries: &entries,
        older: more
            .then(|| entries.last().map(|e| audit::newest_first_cursor(e.id)))
            .flatten(),
        ask: &ask,
        refused,
        verdict,
        heads: &heads,
        public_key: STANDARD.encode(public_key),
    };
    let status = if refused {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, render(&page, &view)))
}

/// One page of entries (one more than [`PAGE_SIZE`] when there are more), skipping device
/// batch entries unless `show_batches`, and how many were skipped. Reads in rounds so that a
/// page full of batches still shows the entries behind them.
async fn page_of(
    state: &AppState,
    cap: &AuditorCap,
    mut filter: AuditFilter,
    show_batches: bool,
) -> Result<(Vec<AuditRow>, usize), crate::service::ServiceError> {
    if show_batches {
        return Ok((audit::filtered(state, cap, filter, PAGE_SIZE + 1).await?, 0));
    }
    let (mut shown, mut hidden) = (Vec::new(), 0);
    for _ in 0..SKIP_ROUNDS {
        let chunk = audit::filtered(state, cap, filter.clone(), SKIP_CHUNK).await?;
        let exhausted = chunk.len() < SKIP_CHUNK as usize;
        filter.before = chunk.last().map(|e| e.id);
        for entry in chunk {
            if shown.len() > PAGE_SIZE as usize {
                break;
            }
            if entry.action == BATCH_ACTION {
                hidden += 1;
            } else {
                shown.push(entry);
            }
        }
        if exhausted || shown.len() > PAGE_SIZE as usize {
            break;
        }
    }
    Ok((shown, hidden))
}

struct View<'a> {
    labels: &'a HashMap<String, String>,
    show_batches: bool,
    hidden: usize,
    typed: &'a Filters,
    entries: &'a [AuditRow],
    /// The cursor of the next (older) page.
    older: Option<String>,
    ask: &'a ListAsk,
    /// The cursor asked for was refused (the newest page is shown).
    refused: bool,
    verdict: Verdict,
    heads: &'a [HeadView],
    public_key: String,
}

fn short(hex: &str) -> Markup {
    html! { code.hash title=(hex) { (hex.get(..SHORT).unwrap_or(hex)) "…" } }
}

fn problem(p: Problem) -> Key {
    match p {
        Problem::Missing => Key::ProblemMissing,
        Problem::BrokenLink => Key::ProblemBrokenLink,
        Problem::HashMismatch => Key::ProblemHashMismatch,
        Problem::BadHeadSignature => Key::ProblemBadHeadSignature,
        Problem::HeadMismatch | Problem::Diverges { .. } => Key::ProblemHeadMismatch,
        Problem::Truncated { .. } => Key::ProblemMissing,
    }
}

fn chain_status(lang: Lang, verdict: Verdict) -> Markup {
    match verdict {
        Verdict::Intact {
            entries,
            signed_through,
        } => html! {
            div #chain-status .chain-ok data-intact="true" role="status" {
                p.verdict { (t(lang, Key::ChainIntact)) }
                dl {
                    dt { (t(lang, Key::EntriesChecked)) } dd #chain-entries { (entries) }
                    dt { (t(lang, Key::SignedThrough)) }
                    dd #chain-signed-through { @if let Some(id) = signed_through { (id) } @else { "—" } }
                }
            }
        },
        Verdict::Broken { entry, problem: p } => html! {
            div #chain-status .chain-broken data-intact="false" role="alert" {
                p.verdict { (t(lang, Key::ChainBroken)) }
                dl {
                    dt { (t(lang, Key::FirstBadEntry)) } dd #chain-bad-entry { (entry) }
                    dd { (t(lang, problem(p))) }
                }
            }
        },
    }
}

fn render(page: &Page<AuditorCap>, v: &View<'_>) -> Markup {
    let session = &page.session;
    let lang = session.lang;
    let typed = v.typed;
    let errors = &typed.errors;
    let filter_query = typed.query();
    let content = html! {
        h1 { (t(lang, Key::AuditTitle)) }
        div.audit-grid {
            section.panel {
                h2 { (t(lang, Key::ChainStatus)) }
                (chain_status(lang, v.verdict))
            }
            section.panel {
                h2 { (t(lang, Key::SignedHeads)) }
                p { (t(lang, Key::ServerKey)) ": " code #server-key .key { (v.public_key) } }
                @if v.heads.is_empty() {
                    p.empty { (t(lang, Key::NoHeads)) }
                } @else {
                    table #head-table {
                        thead { tr {
                            th { (t(lang, Key::Entry)) } th { (t(lang, Key::Hash)) }
                            th { (t(lang, Key::Signature)) } th { (t(lang, Key::Time)) }
                        } }
                        tbody {
                            @for h in v.heads {
                                tr data-entry-id=(h.entry_id) {
                                    td { (h.entry_id) }
                                    td { (short(&h.hash)) }
                                    td { (short(&h.signature)) }
                                    td { (layout::time_text(&h.at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.panel {
            h2 { (t(lang, Key::Filter)) }
            (form_errors(lang, errors))
            form #audit-filter .filters method="get" action="/audit" {
                div {
                    label for="audit-action" { (t(lang, Key::Action)) }
                    select #audit-action name="action" {
                        option value="" selected[typed.action.is_empty()] { (t(lang, Key::AllActions)) }
                        @for (code, key) in ACTIONS {
                            option value=(code) selected[typed.action == *code] { (t(lang, *key)) }
                        }
                        @if !typed.action.is_empty() && !ACTIONS.iter().any(|(c, _)| *c == typed.action) {
                            option value=(typed.action) selected { (typed.action) }
                        }
                    }
                }
                @if v.show_batches { input type="hidden" name="batches" value="1"; }
                @for (id, name, key, value) in [
                    ("audit-actor", "actor", Key::Actor, &typed.actor),
                    ("audit-subject", "subject", Key::Subject, &typed.subject),
                ] {
                    div {
                        label for=(id) { (t(lang, key)) }
                        input id=(id) type="text" name=(name) value=(value) spellcheck="false";
                    }
                }
                @for (id, name, key, value) in [
                    ("audit-from", "from", Key::DateFrom, &typed.from),
                    ("audit-to", "to", Key::DateTo, &typed.to),
                ] {
                    div {
                        label for=(id) { (t(lang, key)) }
                        input id=(id) type="date" name=(name) value=(value)
                            aria-invalid=[invalid(errors, name)];
                        (field_error(lang, errors, name))
                    }
                }
                div.filter-buttons {
                    button #audit-apply .primary type="submit" { (t(lang, Key::Filter)) }
                    a.button href="/audit" { (t(lang, Key::ClearFilter)) }
                }
            }
        }
        section.panel {
            p.export { a #audit-export .button href="/api/v1/export/audit.csv" download { (t(lang, Key::AuditExportCsv)) } }
            p #audit-batches data-hidden=(v.hidden) data-shown=(v.show_batches) {
                @if v.show_batches {
                    a #audit-hide-batches href={ "/audit" @if !filter_query.is_empty() { "?" (filter_query) } } { (t(lang, Key::HideBatches)) }
                } @else {
                    @if v.hidden > 0 { (v.hidden) " " (t(lang, Key::BatchesHidden)) " · " }
                    a #audit-show-batches href={ "/audit?batches=1" @if !filter_query.is_empty() { "&" (filter_query) } } { (t(lang, Key::ShowBatches)) }
                }
            }
            (reset_notice(lang, v.ask, v.refused))
            @if v.entries.is_empty() {
                p #audit-empty .empty { (t(lang, Key::NoEntries)) }
            } @else {
                table #audit-table {
                    thead { tr {
                        th { (t(lang, Key::Entry)) } th { (t(lang, Key::Time)) }
                        th { (t(lang, Key::Actor)) } th { (t(lang, Key::Action)) }
                        th { (t(lang, Key::Subject)) } th { (t(lang, Key::Hash)) }
                        th { (t(lang, Key::PrevHash)) } th { (t(lang, Key::Details)) }
                    } }
                    tbody {
                        @for e in v.entries {
                            tr.audit-entry data-entry-id=(e.id) {
                                td { (e.id) }
                                td { (layout::time_text(&e.at)) }
                                td { (e.actor) }
                                td { (action_words(lang, &e.action)) }
                                td { (subject_link(&e.subject, v.labels)) }
                                td { (short(&e.hash)) }
                                td { (short(&e.prev_hash)) }
                                td {
                                    @if e.before.is_some() || e.after.is_some() {
                                        details {
                                            summary { (t(lang, Key::Details)) }
                                            @if let Some(before) = &e.before { pre.json.before { (before) } }
                                            @if let Some(after) = &e.after { pre.json.after { (after) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, v.ask, v.older.as_deref()))
        }
    };
    layout::page(
        lang,
        Some(session),
        session.path(),
        t(lang, Key::AuditTitle),
        "audit",
        content,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_keep_the_typed_text_and_report_bad_dates() {
        let q = FormData::parse(b"actor=alice&action=user.&from=2025-13-01&to=2025-02-01&cursor=9")
            .unwrap();
        let (typed, filter) = Filters::from(&q);
        assert_eq!(typed.errors, [("from", Key::ErrDate)]);
        assert_eq!(typed.from, "2025-13-01");
        assert_eq!(filter.actor.as_deref(), Some("alice"));
        assert_eq!(filter.action.as_deref(), Some("user."));
        assert_eq!(filter.subject, None);
        assert_eq!(
            filter.to.map(|d| d.to_string()).as_deref(),
            Some("2025-02-01")
        );
        assert_eq!(
            filter.before, None,
            "the cursor is read by the page, not typed"
        );
        assert_eq!(
            typed.query(),
            "actor=alice&action=user.&from=2025-13-01&to=2025-02-01"
        );
    }

    #[test]
    fn a_broken_chain_is_loud() {
        let html = chain_status(
            Lang::En,
            Verdict::Broken {
                entry: crate::domain::ids::AuditId(4),
                problem: Problem::HashMismatch,
            },
        )
        .into_string();
        assert!(html.contains(r#"data-intact="false""#) && html.contains("BROKEN"));
        assert!(html.contains("content does not match its hash"));
    }
}
