//! Every sign-out as a list to work with (`/signouts/list`, custodians and security
//! officers): search by borrower, requester, purpose or control number, filter by state, sort
//! by number, due time, state or borrower, one page at a time.
//!
//! It calls the use case `GET /api/v1/signouts` calls ([`signouts::page`]) with the same
//! parameters and checks, through the shared list component ([`super::paging`]). The desk's
//! "open sign-outs" box stays as it is (the few live ones, at hand while lending); this page
//! is for finding any sign-out, returned and cancelled ones included.

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::custodian::{carrier_link, frame, query};
use super::i18n::{self, Key, Lang, t};
use super::layout;
use super::paging::{
    Errors, ListAsk, ListSpec, fitting_page, pager, reset_notice, search_field, sort_fields,
    sort_header,
};
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::CustodyReader;
use crate::domain::signout::SignoutState;
use crate::service::signouts;
use crate::store::signouts::Signout;

/// The sign-outs page: 25 a page, newest first unless sorted otherwise.
static SPEC: ListSpec = ListSpec {
    path: "/signouts/list",
    prefix: "signouts",
    page_size: 25,
    default_sort: "-id",
    filters: &["state"],
    sorts: &[
        ("id", Key::SignoutNumber),
        ("due_at", Key::DueAt),
        ("state", Key::SignoutStateLabel),
        ("borrower", Key::Borrower),
    ],
    focus_search: true,
};

/// `GET /signouts/list?q=&state=&sort=&order=&cursor=`: one page of the sign-outs.
pub async fn signouts_page(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut ask = ListAsk::read(&query(session), &SPEC);
    let wanted = SignoutState::from_name(ask.filter("state"));
    let mut errors = Errors::new();
    let (app, cap) = (&state, &page.cap);
    let found = fitting_page(&mut ask, &mut errors, |params| async move {
        signouts::page(app, cap, wanted, &params).await
    })
    .await
    .map_err(|e| session.internal(e))?;
    let content = html! {
        h1 { (t(lang, Key::SignoutsTitle)) }
        section.panel {
            (search_form(lang, &ask, &errors))
        }
        section.panel {
            (reset_notice(lang, &ask, found.refused))
            @if found.page.items.is_empty() {
                p #signouts-empty .empty { (t(lang, Key::NoSignoutsFound)) }
            } @else {
                div.wide-table {
                    table #signouts-table {
                        thead { tr {
                            (sort_header(lang, &ask, "id", Key::SignoutNumber))
                            (sort_header(lang, &ask, "state", Key::SignoutStateLabel))
                            (sort_header(lang, &ask, "borrower", Key::Borrower))
                            th { (t(lang, Key::Requester)) }
                            th { (t(lang, Key::Purpose)) }
                            th { (t(lang, Key::Carrier)) }
                            (sort_header(lang, &ask, "due_at", Key::DueAt))
                        } }
                        tbody {
                            @for so in &found.page.items { (row(lang, so)) }
                        }
                    }
                }
            }
            (pager(lang, &ask, found.page.next.as_deref()))
        }
    };
    Ok((
        found.status(),
        frame(session, t(lang, Key::SignoutsTitle), "custody", content),
    ))
}

fn search_form(lang: Lang, ask: &ListAsk, errors: &Errors) -> Markup {
    let wanted = ask.filter("state");
    html! {
        form #signouts-search .filters method="get" action=(SPEC.path) role="search" {
            (search_field(lang, ask, errors, Key::SearchSignoutWords))
            div {
                label for="signouts-state" { (t(lang, Key::SignoutStateLabel)) }
                select #signouts-state name="state" {
                    option value="" selected[wanted.is_empty()] { (t(lang, Key::AnyOption)) }
                    @for s in SignoutState::ALL {
                        option value=(s.as_str()) selected[wanted == s.as_str()] {
                            (t(lang, i18n::signout_state(s)))
                        }
                    }
                }
            }
            (sort_fields(lang, ask))
            div.filter-buttons {
                button #signouts-search-submit .primary type="submit" { (t(lang, Key::Search)) }
                a href=(SPEC.path) { (t(lang, Key::ClearFilter)) }
            }
        }
    }
}

fn row(lang: Lang, so: &Signout) -> Markup {
    html! {
        tr.signout data-signout-id=(so.id) data-state=(so.state.as_str()) {
            td.nowrap { "#" (so.id) }
            td.nowrap {
                span.signout-state data-state=(so.state.as_str()) { (t(lang, i18n::signout_state(so.state))) }
                (super::datetime::overdue_mark(lang, so.state, so.due_at))
            }
            td.borrower { (so.borrower.name) }
            td.requester { (so.requester.username) }
            td.purpose { (so.purpose) }
            td.carriers { @for c in &so.carriers { (carrier_link(c.id, &c.control_no)) " " } }
            td.due { (layout::time(so.due_at)) }
        }
    }
}
