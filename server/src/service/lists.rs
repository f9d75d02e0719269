//! The paging parameters every list takes (`limit`, `cursor`, `sort`, `q`), checked once for
//! the API and the pages alike ([`ListParams::check`]); the rules of paging itself are in
//! [`crate::domain::page`].

use super::{Problem, ServiceError};
use crate::domain::page::{PageError, PageRequest, Sort, SortKey};

/// The longest search text of any list, in characters.
pub const Q_MAX: usize = 200;
/// The most words of a search text that are matched (the rest are ignored).
pub const WORDS_MAX: usize = 8;

/// The paging and search parameters of a list as they arrived (query string or form); empty
/// texts count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Items per page: 1 to [`crate::domain::page::MAX_LIMIT`].
    pub limit: Option<String>,
    /// The cursor of a previous page's `Link: rel="next"`.
    pub cursor: Option<String>,
    /// A sort key of the list, `-key` for descending.
    pub sort: Option<String>,
    /// Search text: words that must each match (at most [`Q_MAX`] characters).
    pub q: Option<String>,
}

/// Checked list parameters: the page asked for and the search text (trimmed; none if empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The page.
    pub page: PageRequest,
    /// The search text.
    pub q: Option<String>,
}

impl ListParams {
    /// Check the parameters of a list sorted by `keys` (`default` without `sort`): every
    /// problem at once, as [`ServiceError::Invalid`] naming `limit`, `sort`, `cursor`, `q`.
    pub fn check(&self, keys: &[SortKey], default: Sort) -> Result<Checked, ServiceError> {
        let mut problems = Vec::new();
        let page = PageRequest::parse(
            self.limit.as_deref(),
            self.sort.as_deref(),
            self.cursor.as_deref(),
            keys,
            default,
        )
        .map_err(|errors| problems.extend(errors.into_iter().map(problem)))
        .ok();
        let q = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if q.as_ref().is_some_and(|q| q.chars().count() > Q_MAX) {
            problems.push(Problem {
                field: "q",
                code: "too_long",
                message: "q is longer than 200 characters",
            });
        }
        match page {
            Some(page) if problems.is_empty() => Ok(Checked { page, q }),
            _ => Err(ServiceError::Invalid(problems)),
        }
    }
}

fn problem(error: PageError) -> Problem {
    let (code, message) = match error {
        PageError::Limit => ("out_of_range", "limit must be a whole number from 1 to 500"),
        PageError::Sort => ("unknown", "sort names no sort key of this list"),
        PageError::Cursor => (
            "invalid",
            "cursor is not a cursor of this list and sort order",
        ),
    };
    Problem {
        field: error.field(),
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[SortKey] = &[SortKey::int("id")];

    fn default() -> Sort {
        Sort {
            key: KEYS[0],
            descending: false,
        }
    }

    #[test]
    fn every_problem_is_reported_by_field() {
        let params = ListParams {
            limit: Some("0".into()),
            cursor: Some("nonsense".into()),
            sort: None,
            q: Some("x".repeat(201)),
        };
        let Err(ServiceError::Invalid(problems)) = params.check(KEYS, default()) else {
            panic!("accepted");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, vec!["limit", "cursor", "q"]);
    }

    #[test]
    fn empty_texts_are_absent() {
        let params = ListParams {
            limit: Some(String::new()),
            cursor: Some(String::new()),
            sort: Some(String::new()),
            q: Some("  ".into()),
        };
        let checked = params.check(KEYS, default()).unwrap();
        assert_eq!(checked.q, None);
        assert_eq!(checked.page, PageRequest::first(100, default()));
    }
}
