//! The custodian's register as a list to work with all day: search by words (control number,
//! title, owning unit, holder, department, tag), filter by state, sort by a column (the
//! headers are sort links), one page at a time with a keyset cursor (`/carriers?cursor=…`),
//! and the raw tags folded into a detail column so the EPC hex does not dominate the row.
//!
//! It calls the use case `GET /api/v1/carriers` calls ([`carriers::page`]), with the same
//! parameters and checks; a parameter that no longer fits (a stale cursor, a sort that was
//! renamed) drops back to the first page with a notice rather than an error page.

use axum::extract::State;
use maud::{Markup, html};

use super::custodian::{CustodianDesk, Errors, carrier_link, frame, level_tag, query};
use super::form::{FormData, encode};
use super::i18n::{self, Key, Lang, t};
use super::layout::{field_error, invalid};
use super::session::{Page, WebError};
use crate::AppState;
use crate::domain::carrier::CarrierState;
use crate::service::ServiceError;
use crate::service::carriers;
use crate::service::lists::ListParams;
use crate::store::carriers::Carrier;

/// Carriers per page of the register page (the API's default is larger: scripts read more).
pub const PAGE_SIZE: &str = "50";

/// The sortable columns of the register, in the order of the sort menu.
const SORTS: [(&str, Key); 6] = [
    ("id", Key::SortRegistered),
    ("control_no", Key::CarrierControlNo),
    ("level", Key::Level),
    ("state", Key::CarrierStateLabel),
    ("holder", Key::Holder),
    ("owner_unit", Key::OwnerUnit),
];

/// What the register page was asked for, as typed.
#[derive(Debug, Clone, Default)]
struct Asked {
    q: String,
    state: String,
    /// A key of [`SORTS`], `-key` for descending.
    sort: String,
    cursor: String,
}

impl Asked {
    fn from(form: &FormData) -> Asked {
        let key = form.get("sort").trim();
        // The menu sends the key and the order apart; a header link sends `-key`.
        let sort = if form.get("order") == "desc" && !key.is_empty() && !key.starts_with('-') {
            format!("-{key}")
        } else {
            key.to_owned()
        };
        Asked {
            q: form.get("q").trim().to_owned(),
            state: form.get("state").trim().to_owned(),
            sort,
            cursor: form.get("cursor").trim().to_owned(),
        }
    }

    fn params(&self) -> ListParams {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ListParams {
            limit: Some(PAGE_SIZE.to_owned()),
            cursor: some(&self.cursor),
            sort: some(&self.sort),
            q: some(&self.q),
        }
    }

    /// The page's URI with these filters and `sort`, and `cursor` if given.
    fn uri(&self, sort: &str, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [
            ("q", self.q.as_str()),
            ("state", &self.state),
            ("sort", sort),
        ] {
            if !value.is_empty() {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", encode(c)));
        }
        if parts.is_empty() {
            "/carriers".to_owned()
        } else {
            format!("/carriers?{}", parts.join("&"))
        }
    }

    fn sort_key(&self) -> &str {
        self.sort.trim_start_matches('-')
    }

    fn descending(&self) -> bool {
        self.sort.starts_with('-')
    }
}

/// `GET /carriers?q=&state=&sort=&order=&cursor=`: one page of the register.
pub async fn carriers(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let mut asked = Asked::from(&query(session));
    let wanted_state = CarrierState::from_name(&asked.state);
    let reader = page.cap.reader();
    let mut errors = Errors::new();
    let mut reset = false;
    let found = match carriers::page(&state, &reader, wanted_state, &asked.params()).await {
        Err(ServiceError::Invalid(problems)) => {
            // Show the first page with what still fits; say what was dropped.
            for p in &problems {
                match p.field {
                    "q" => {
                        errors.push(("q", Key::ErrSearchTooLong));
                        asked.q.clear();
                    }
                    "sort" => asked.sort.clear(),
                    _ => {}
                }
            }
            reset = !asked.cursor.is_empty();
            asked.cursor.clear();
            carriers::page(&state, &reader, wanted_state, &asked.params()).await
        }
        other => other,
    }
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
            @if reset {
                p #carrier-reset .notice role="status" { (t(lang, Key::PagingReset)) }
            }
            @if found.items.is_empty() {
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
                            @for c in &found.items {
                                (carrier_row(lang, c))
                            }
                        }
                    }
                }
            }
            nav #carrier-pager .pager aria-label=(t(lang, Key::Pages)) {
                @if !asked.cursor.is_empty() {
                    a #carrier-first href=(asked.uri(&asked.sort, None)) { (t(lang, Key::FirstPage)) }
                }
                @if let Some(next) = &found.next {
                    a #carrier-next .button rel="next" href=(asked.uri(&asked.sort, Some(next))) {
                        (t(lang, Key::NextPage))
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::CarriersTitle),
        "custody",
        content,
    ))
}

fn search_form(lang: Lang, asked: &Asked, errors: &Errors) -> Markup {
    html! {
        form #carrier-search .filters method="get" action="/carriers" role="search" {
            div {
                label for="carrier-q" { (t(lang, Key::SearchCarrierWords)) }
                input #carrier-q type="search" name="q" value=(asked.q) maxlength="200"
                    autocomplete="off" spellcheck="false" autofocus
                    aria-invalid=[invalid(errors, "q")];
                (field_error(lang, errors, "q"))
            }
            div {
                label for="carrier-state" { (t(lang, Key::CarrierStateLabel)) }
                select #carrier-state name="state" {
                    option value="" selected[asked.state.is_empty()] { (t(lang, Key::AnyOption)) }
                    @for s in CarrierState::ALL {
                        option value=(s.as_str()) selected[asked.state == s.as_str()] {
                            (t(lang, i18n::carrier_state(s)))
                        }
                    }
                }
            }
            div {
                label for="carrier-sort" { (t(lang, Key::SortLabel)) }
                select #carrier-sort name="sort" {
                    @for (key, label) in SORTS {
                        option value=(key) selected[asked.sort_key() == key] { (t(lang, label)) }
                    }
                }
            }
            div {
                label for="carrier-order" { (t(lang, Key::OrderLabel)) }
                select #carrier-order name="order" {
                    option value="asc" selected[!asked.descending()] { (t(lang, Key::OrderAscending)) }
                    option value="desc" selected[asked.descending()] { (t(lang, Key::OrderDescending)) }
                }
            }
            div.filter-buttons {
                button #carrier-search-submit .primary type="submit" { (t(lang, Key::Search)) }
                a href="/carriers" { (t(lang, Key::ClearFilter)) }
            }
        }
    }
}

/// A column header that sorts by `key`: ascending first, the other way when it is the
/// current sort. `aria-sort` tells screen readers the current order.
fn sort_header(lang: Lang, asked: &Asked, key: &str, label: Key) -> Markup {
    let current = asked.sort_key() == key;
    let aria = match (current, asked.descending()) {
        (false, _) => None,
        (true, false) => Some("ascending"),
        (true, true) => Some("descending"),
    };
    let next = if current && !asked.descending() {
        format!("-{key}")
    } else {
        key.to_owned()
    };
    html! {
        th aria-sort=[aria] {
            a.sort-link data-sort=(key) href=(asked.uri(&next, None)) {
                (t(lang, label))
                @if let Some(order) = aria {
                    span.sort-mark aria-hidden="true" { @if order == "ascending" { " ▲" } @else { " ▼" } }
                }
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
