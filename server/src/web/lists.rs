//! The custodian's register as a list to work with all day: search by words (control number,
//! title, owning unit, holder, department, tag), filter by state, sort by a column (the
//! headers are sort links), one page at a time with a keyset cursor (`/carriers?cursor=…`),
//! and the raw tags folded into a detail column so the EPC hex does not dominate the row.
//!
//! It calls the use case `GET /api/v1/carriers` calls ([`carriers::page`]), with the same
//! parameters and checks; the search box, sort menu, headers and pager are the shared list
//! component ([`super::paging`]): a parameter that no longer fits (a stale cursor, a sort that
//! was renamed) drops back to the first page with a notice (status 400).

use axum::extract::State;
use axum::http::StatusCode;
use maud::{Markup, html};

use super::custodian::{CustodianDesk, carrier_link, frame, level_tag, query};
use super::form::encode;
use super::i18n::{self, Key, Lang, t};
use super::paging::{
    Errors, ListAsk, ListSpec, fitting_page, pager, reset_notice, search_field, sort_fields,
    sort_header,
};
use super::session::{Page, WebError};
use crate::AppState;
use crate::domain::carrier::CarrierState;
use crate::service::carriers;
use crate::store::carriers::Carrier;

/// The register page: 50 carriers a page (the API's default is larger: scripts read more),
/// filtered by state, sorted by the columns of [`SORTS`].
static SPEC: ListSpec = ListSpec {
    path: "/carriers",
    prefix: "carrier",
    page_size: 50,
    default_sort: "",
    filters: &["state"],
    sorts: &SORTS,
    focus_search: true,
};

/// The sortable columns of the register, in the order of the sort menu.
const SORTS: [(&str, Key); 6] = [
    ("id", Key::SortRegistered),
    ("control_no", Key::CarrierControlNo),
    ("level", Key::Level),
    ("state", Key::CarrierStateLabel),
    ("holder", Key::Holder),
    ("owner_unit", Key::OwnerUnit),
];

/// `GET /carriers?q=&state=&sort=&order=&cursor=`: one page of the register.
pub async fn carriers(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<(StatusCode, Markup), WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut asked = ListAsk::read(&query(session), &SPEC);
    let wanted_state = CarrierState::from_name(asked.filter("state"));
    let reader = page.cap.reader();
    let mut errors = Errors::new();
    let (app, reader) = (&state, &reader);
    let found = fitting_page(&mut asked, &mut errors, |params| async move {
        carriers::page(app, reader, wanted_state, &params).await
    })
    .await
    .map_err(|e| session.internal(e))?;
    let content = html! {
        div.page-head {
            h1 { (t(lang, Key::CarriersTitle)) }
            a.button.primary #carrier-new href="/carriers/new" { (t(lang, Key::RegisterCarrier)) }
        }
        section.panel {
            (search_form(lang, &asked, &errors))
        }
        section.panel {
            (reset_notice(lang, &asked, found.refused))
            @if found.page.items.is_empty() {
                p #carrier-empty .empty { (t(lang, Key::NoCarriers)) }
            } @else {
                div.wide-table {
                    table #carrier-table .register {
                        thead { tr {
                            (sort_header(lang, &asked, "control_no", Key::CarrierControlNo))
                            (sort_header(lang, &asked, "level", Key::Level))
                            th.col-kind { (t(lang, Key::CarrierKindLabel)) }
                            th { (t(lang, Key::CarrierTitle)) }
                            (sort_header(lang, &asked, "state", Key::CarrierStateLabel))
                            (sort_header(lang, &asked, "holder", Key::Holder))
                            (sort_header(lang, &asked, "owner_unit", Key::OwnerUnit))
                            th.col-home { (t(lang, Key::HomeCabinet)) }
                            th.detail-col { (t(lang, Key::Tags)) }
                        } }
                        tbody {
                            @for c in &found.page.items {
                                (carrier_row(lang, c))
                            }
                        }
                    }
                }
            }
            (pager(lang, &asked, found.page.next.as_deref()))
        }
    };
    Ok((
        found.status(),
        frame(session, t(lang, Key::CarriersTitle), "custody", content),
    ))
}

fn search_form(lang: Lang, asked: &ListAsk, errors: &Errors) -> Markup {
    let wanted = asked.filter("state");
    html! {
        form #carrier-search .filters method="get" action="/carriers" role="search" {
            (search_field(lang, asked, errors, Key::SearchCarrierWords))
            div {
                label for="carrier-state" { (t(lang, Key::CarrierStateLabel)) }
                select #carrier-state name="state" {
                    option value="" selected[wanted.is_empty()] { (t(lang, Key::AnyOption)) }
                    @for s in CarrierState::ALL {
                        option value=(s.as_str()) selected[wanted == s.as_str()] {
                            (t(lang, i18n::carrier_state(s)))
                        }
                    }
                }
            }
            (sort_fields(lang, asked))
            div.filter-buttons {
                button #carrier-search-submit .primary type="submit" { (t(lang, Key::Search)) }
                a href="/carriers" { (t(lang, Key::ClearFilter)) }
            }
        }
    }
}

fn carrier_row(lang: Lang, c: &Carrier) -> Markup {
    let s = &c.summary;
    html! {
        tr.carrier data-carrier-id=(s.id) data-state=(s.state.as_str()) data-level=(s.level.code()) {
            td.nowrap { (carrier_link(s.id, &s.control_no)) }
            td.nowrap { (level_tag(lang, s.level)) }
            td.col-kind { (t(lang, i18n::carrier_kind(s.kind))) }
            td.carrier-title { (c.title) }
            td.nowrap { (super::repairs::state_tag(lang, s)) }
            td.holder { @if let Some(h) = &s.holder { (h.name) } }
            td.owner-unit { (s.owner_unit) }
            td.col-home { @if let Some(home) = &s.home_device { a href={ "/cabinets/" (encode(home)) } { (home) } } }
            td.carrier-tags.detail-col {
                @if !s.tags.is_empty() {
                    details.tag-details {
                        summary { (t(lang, Key::TagDetails)) " (" span.tag-count { (s.tags.len()) } ")" }
                        ul.tag-lines {
                            @for tag in &s.tags {
                                li { code.tag-text { (tag.tag) } }
                            }
                        }
                    }
                }
            }
        }
    }
}
