//! One way to render a list page's search box, sort menu, sortable column headers and pager,
//! shared by every paged page (the register, people, sign-outs, alert history, audit trail,
//! devices), so that they read, link and refuse alike.
//!
//! A page describes itself once ([`ListSpec`]: its path, the prefix of its DOM ids, its page
//! size, default sort, own filters and sort keys), reads what it was asked for from its query
//! string ([`ListAsk`]) and hands [`ListAsk::params`] to the same use case the API calls
//! ([`crate::service::lists`]). Every link the page writes (sort headers, next page, first
//! page) keeps the search and the filters; a sort link starts again at the first page, since a
//! cursor belongs to one sort order.
//!
//! A parameter the use case refuses (a cursor of another list or sort, an unknown sort key, a
//! search over 200 characters; only a hand-edited address has those) is dropped and the first
//! page shown with a notice, answered as 400 so that scripts and tests see the refusal
//! ([`fitting_page`]).

use axum::http::StatusCode;
use maud::{Markup, html};

use super::form::{FormData, encode};
use super::i18n::{Key, Lang, t};
use super::layout::{field_error, invalid};
use crate::domain::page::Page;
use crate::service::lists::ListParams;
use crate::service::{Problem, ServiceError};

/// Field errors of a list page's search form: (field name, message).
pub type Errors = Vec<(&'static str, Key)>;

/// What a list page is: written once per page as a constant.
#[derive(Debug)]
pub struct ListSpec {
    /// The page's path (`/people`).
    pub path: &'static str,
    /// The prefix of its DOM ids: `person` gives `#person-q`, `#person-sort`,
    /// `#person-order`, `#person-pager`, `#person-next`, `#person-first`, `#person-reset`.
    pub prefix: &'static str,
    /// Items per page.
    pub page_size: u32,
    /// The sort shown when none is asked (`name`, `-id`); `""` for the use case's own.
    pub default_sort: &'static str,
    /// The page's own filter parameters, kept in every link.
    pub filters: &'static [&'static str],
    /// The sort keys the page offers, in menu order, with their names (empty: not sortable).
    pub sorts: &'static [(&'static str, Key)],
    /// Whether the search field takes the focus on load (a page that is mainly the list).
    pub focus_search: bool,
}

/// What a list page was asked for, as typed.
#[derive(Debug, Clone)]
pub struct ListAsk {
    spec: &'static ListSpec,
    /// The search text.
    pub q: String,
    /// The sort key, `-key` for descending (empty: the page's default).
    pub sort: String,
    /// The cursor of the page asked for (empty: the first page).
    pub cursor: String,
    /// The values of the spec's filters, in its order.
    filters: Vec<String>,
}

impl ListAsk {
    /// Read a page's query string. The sort menu sends the key and the order apart
    /// (`sort=name&order=desc`); a header link sends `sort=-name`.
    pub fn read(form: &FormData, spec: &'static ListSpec) -> ListAsk {
        let key = form.get("sort").trim();
        let sort = if form.get("order") == "desc" && !key.is_empty() && !key.starts_with('-') {
            format!("-{key}")
        } else {
            key.to_owned()
        };
        ListAsk {
            spec,
            q: form.get("q").trim().to_owned(),
            sort,
            cursor: form.get("cursor").trim().to_owned(),
            filters: spec
                .filters
                .iter()
                .map(|name| form.get(name).trim().to_owned())
                .collect(),
        }
    }

    /// The value of the page's filter `name` as typed (`""` if absent or not a filter).
    pub fn filter(&self, name: &str) -> &str {
        self.spec
            .filters
            .iter()
            .position(|f| *f == name)
            .and_then(|i| self.filters.get(i))
            .map_or("", String::as_str)
    }

    /// The parameters for the list's use case.
    pub fn params(&self) -> ListParams {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ListParams {
            limit: Some(self.spec.page_size.to_string()),
            cursor: some(&self.cursor),
            sort: some(&self.sort).or_else(|| some(self.spec.default_sort)),
            q: some(&self.q),
        }
    }

    /// The page's address with the search, the filters and `sort`, and `cursor` if given.
    pub fn uri(&self, sort: &str, cursor: Option<&str>) -> String {
        let mut parts = Vec::new();
        let named = std::iter::once(("q", self.q.as_str()))
            .chain(
                self.spec
                    .filters
                    .iter()
                    .copied()
                    .zip(self.filters.iter().map(String::as_str)),
            )
            .chain(std::iter::once(("sort", sort)));
        for (name, value) in named {
            if !value.is_empty() {
                parts.push(format!("{name}={}", encode(value)));
            }
        }
        if let Some(c) = cursor {
            parts.push(format!("cursor={}", encode(c)));
        }
        if parts.is_empty() {
            self.spec.path.to_owned()
        } else {
            format!("{}?{}", self.spec.path, parts.join("&"))
        }
    }

    /// The sort in force: the one asked for, else the page's default.
    fn effective_sort(&self) -> &str {
        if self.sort.is_empty() {
            self.spec.default_sort
        } else {
            &self.sort
        }
    }

    /// The key of the sort in force.
    pub fn sort_key(&self) -> &str {
        self.effective_sort().trim_start_matches('-')
    }

    /// Whether the sort in force is descending.
    pub fn descending(&self) -> bool {
        self.effective_sort().starts_with('-')
    }

    /// Drop what the use case refused (`problems`), noting a refused search in `errors`;
    /// the cursor is always dropped (a page position means nothing once the rest changed).
    pub fn drop_refused(&mut self, problems: &[Problem], errors: &mut Errors) {
        for p in problems {
            match p.field {
                "q" => {
                    errors.push(("q", Key::ErrSearchTooLong));
                    self.q.clear();
                }
                "sort" => self.sort.clear(),
                _ => {}
            }
        }
        self.cursor.clear();
    }
}

/// A page of a list as the page shows it, and whether a parameter was refused on the way.
#[derive(Debug)]
pub struct Fitted<T> {
    /// The page.
    pub page: Page<T>,
    /// A parameter was refused and dropped: the page answers 400 with a notice.
    pub refused: bool,
}

impl<T> Fitted<T> {
    /// The status the page answers with.
    pub fn status(&self) -> StatusCode {
        if self.refused {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        }
    }
}

/// Read the page `ask` names through `read` (the list's use case); if the use case refuses a
/// parameter, drop it ([`ListAsk::drop_refused`]) and read the first page with what still
/// fits.
///
/// `read` takes the parameters by value (not an async closure over a borrowed one) so that the
/// handler's future stays `Send` for the router.
pub async fn fitting_page<T, F, Fut>(
    ask: &mut ListAsk,
    errors: &mut Errors,
    read: F,
) -> Result<Fitted<T>, ServiceError>
where
    F: Fn(ListParams) -> Fut,
    Fut: Future<Output = Result<Page<T>, ServiceError>>,
{
    match read(ask.params()).await {
        Err(ServiceError::Invalid(problems)) => {
            ask.drop_refused(&problems, errors);
            let page = read(ask.params()).await?;
            Ok(Fitted {
                page,
                refused: true,
            })
        }
        other => other.map(|page| Fitted {
            page,
            refused: false,
        }),
    }
}

/// The search field (`#{prefix}-q`, name `q`), labelled `label`.
pub fn search_field(lang: Lang, ask: &ListAsk, errors: &Errors, label: Key) -> Markup {
    let id = format!("{}-q", ask.spec.prefix);
    html! {
        div {
            label for=(id) { (t(lang, label)) }
            input id=(id) type="search" name="q" value=(ask.q) maxlength="200"
                autocomplete="off" spellcheck="false" autofocus[ask.spec.focus_search]
                aria-invalid=[invalid(errors, "q")];
            (field_error(lang, errors, "q"))
        }
    }
}

/// The sort menu and the order menu (`#{prefix}-sort`, `#{prefix}-order`) of a search form;
/// nothing for a page without sort keys.
pub fn sort_fields(lang: Lang, ask: &ListAsk) -> Markup {
    let prefix = ask.spec.prefix;
    html! {
        @if !ask.spec.sorts.is_empty() {
            div {
                label for={ (prefix) "-sort" } { (t(lang, Key::SortLabel)) }
                select id={ (prefix) "-sort" } name="sort" {
                    @for (key, label) in ask.spec.sorts {
                        option value=(key) selected[ask.sort_key() == *key] { (t(lang, *label)) }
                    }
                }
            }
            div {
                label for={ (prefix) "-order" } { (t(lang, Key::OrderLabel)) }
                select id={ (prefix) "-order" } name="order" {
                    option value="asc" selected[!ask.descending()] { (t(lang, Key::OrderAscending)) }
                    option value="desc" selected[ask.descending()] { (t(lang, Key::OrderDescending)) }
                }
            }
        }
    }
}

/// Hidden fields that keep the sort when a filter form without the sort menu is sent.
pub fn kept_sort(ask: &ListAsk) -> Markup {
    html! {
        @if !ask.sort.is_empty() {
            input type="hidden" name="sort" value=(ask.sort);
        }
    }
}

/// A column header that sorts by `key` (`th a.sort-link[data-sort]`): ascending first, the
/// other way when it is the current sort. `aria-sort` tells screen readers the current order.
pub fn sort_header(lang: Lang, ask: &ListAsk, key: &str, label: Key) -> Markup {
    let current = ask.sort_key() == key;
    let aria = match (current, ask.descending()) {
        (false, _) => None,
        (true, false) => Some("ascending"),
        (true, true) => Some("descending"),
    };
    let next = if current && !ask.descending() {
        format!("-{key}")
    } else {
        key.to_owned()
    };
    html! {
        th aria-sort=[aria] {
            a.sort-link data-sort=(key) href=(ask.uri(&next, None)) {
                (t(lang, label))
                @if let Some(order) = aria {
                    span.sort-mark aria-hidden="true" { @if order == "ascending" { " ▲" } @else { " ▼" } }
                }
            }
        }
    }
}

/// The notice of a dropped parameter (`#{prefix}-reset`), when `refused`.
pub fn reset_notice(lang: Lang, ask: &ListAsk, refused: bool) -> Markup {
    html! {
        @if refused {
            p id={ (ask.spec.prefix) "-reset" } .notice role="status" { (t(lang, Key::PagingReset)) }
        }
    }
}

/// The pager (`nav#{prefix}-pager`): `a#{prefix}-first` back to the first page when this is
/// not it, `a#{prefix}-next[rel=next]` while more remain. Both keep the search and the sort.
pub fn pager(lang: Lang, ask: &ListAsk, next: Option<&str>) -> Markup {
    let prefix = ask.spec.prefix;
    html! {
        nav id={ (prefix) "-pager" } .pager aria-label=(t(lang, Key::Pages)) {
            @if !ask.cursor.is_empty() {
                a id={ (prefix) "-first" } href=(ask.uri(&ask.sort, None)) { (t(lang, Key::FirstPage)) }
            }
            @if let Some(next) = next {
                a id={ (prefix) "-next" } .button rel="next" href=(ask.uri(&ask.sort, Some(next))) {
                    (t(lang, Key::NextPage))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ListSpec = ListSpec {
        path: "/people",
        prefix: "person",
        page_size: 25,
        default_sort: "name",
        filters: &["category", "state"],
        sorts: &[("name", Key::PersonName)],
        focus_search: false,
    };

    fn ask(query: &str) -> ListAsk {
        ListAsk::read(&FormData::parse(query.as_bytes()).unwrap(), &SPEC)
    }

    #[test]
    fn links_keep_the_search_and_filters_and_a_sort_starts_again() {
        let a = ask("q=%E5%BC%A0+x&state=active&sort=name&order=desc&cursor=ab");
        assert_eq!(a.sort, "-name");
        assert_eq!(a.filter("state"), "active");
        assert_eq!(a.filter("category"), "");
        assert_eq!(
            a.uri(&a.sort, Some("cd")),
            "/people?q=%E5%BC%A0%20x&state=active&sort=-name&cursor=cd"
        );
        let header = sort_header(Lang::En, &a, "name", Key::PersonName).into_string();
        assert!(header.contains(r#"aria-sort="descending""#), "{header}");
        assert!(header.contains("sort=name\""), "{header}");
        assert!(!header.contains("cursor"), "{header}");
    }

    #[test]
    fn the_default_sort_is_the_current_one_and_is_asked_for() {
        let a = ask("");
        assert_eq!(a.sort_key(), "name");
        assert!(!a.descending());
        let p = a.params();
        assert_eq!(p.sort.as_deref(), Some("name"));
        assert_eq!(p.limit.as_deref(), Some("25"));
        assert_eq!(a.uri("", None), "/people");
    }

    #[test]
    fn a_refused_search_is_noted_and_the_cursor_dropped() {
        let mut a = ask("q=x&sort=nonsense&cursor=zz");
        let mut errors = Errors::new();
        let problems = [
            Problem {
                field: "sort",
                code: "unknown",
                message: "",
            },
            Problem {
                field: "q",
                code: "too_long",
                message: "",
            },
        ];
        a.drop_refused(&problems, &mut errors);
        assert_eq!(
            (a.q.as_str(), a.sort.as_str(), a.cursor.as_str()),
            ("", "", "")
        );
        assert_eq!(errors, vec![("q", Key::ErrSearchTooLong)]);
        let pager = pager(Lang::En, &a, Some("ff")).into_string();
        assert!(pager.contains(r#"id="person-next""#) && !pager.contains("person-first"));
    }
}
