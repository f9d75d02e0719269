//! The auditor's page (`/audit`, role `auditor`): the trail, newest first, with filters; the
//! chain's verification status; the signed heads and the server's public key.
//!
//! The verdict is the same full recomputation `custos-server audit verify` runs
//! ([`crate::service::audit::verify`]): every entry's hash and link, every signed head's
//! signature.
//! It runs on the read pool at each page view; at a few hundred thousand entries that is well
//! under a second. Filters are GET parameters (`actor`, `action`, `subject`, `from`, `to`,
//! `before`), so a filtered view can be bookmarked.

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};

use super::form::{FormData, encode};
use super::i18n::{Key, Lang, t};
use super::layout::{self, field_error, form_errors, invalid};
use super::session::{Page, WebError};
use crate::AppState;
use crate::audit::{Problem, Verdict};
use crate::auth::capability::AuditorCap;
use crate::domain::time::Date;
use crate::service::audit::{self, AuditRow, HeadView};
use crate::store::audit::AuditFilter;

/// Entries per page.
pub const PAGE_SIZE: u32 = 50;
/// Signed heads listed.
pub const HEADS_SHOWN: u32 = 20;
/// Hash digits shown in the table (the full hash is in the `title`).
const SHORT: usize = 12;

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
            before: query.non_empty("before").and_then(|b| b.parse().ok()),
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
) -> Result<Markup, WebError> {
    let session = &page.session;
    let query = session.path().split_once('?').map_or("", |(_, q)| q);
    let query = FormData::parse(query.as_bytes()).unwrap_or_default();
    let (typed, filter) = Filters::from(&query);
    let paged = filter.before.is_some();
    let mut entries = if typed.errors.is_empty() {
        audit::filtered(&state, &page.cap, filter, PAGE_SIZE + 1)
            .await
            .map_err(|e| session.internal(e))?
    } else {
        Vec::new()
    };
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let public_key = state.server_key().public_key();
    let verdict = audit::verify(&state, &page.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let heads = audit::heads(&state, &page.cap, HEADS_SHOWN)
        .await
        .map_err(|e| session.internal(e))?;
    let view = View {
        typed: &typed,
        entries: &entries,
        older: more.then(|| entries.last().map(|e| e.id)).flatten(),
        paged,
        verdict,
        heads: &heads,
        public_key: STANDARD.encode(public_key),
    };
    Ok(render(&page, &view))
}

struct View<'a> {
    typed: &'a Filters,
    entries: &'a [AuditRow],
    older: Option<i64>,
    paged: bool,
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
                                    td { (h.at) }
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
                @for (id, name, key, value) in [
                    ("audit-actor", "actor", Key::Actor, &typed.actor),
                    ("audit-action", "action", Key::Action, &typed.action),
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
                                td { (e.at) }
                                td { (e.actor) }
                                td { code { (e.action) } }
                                td { code { (e.subject) } }
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
            nav.pager {
                @if v.paged {
                    a #audit-newest href={ "/audit" @if !filter_query.is_empty() { "?" (filter_query) } } {
                        (t(lang, Key::Newest))
                    }
                }
                @if let Some(before) = v.older {
                    a #audit-older href={
                        "/audit?" (filter_query) @if !filter_query.is_empty() { "&" } "before=" (before)
                    } { (t(lang, Key::Older)) }
                }
            }
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
        let q = FormData::parse(b"actor=alice&action=user.&from=2025-13-01&to=2025-02-01&before=9")
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
        assert_eq!(filter.before, Some(9));
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
