//! Paging of lists: a page size, a sort order and an opaque keyset cursor.
//!
//! Every list (carriers, people, sign-outs, alerts, audit, devices) answers at most
//! [`MAX_LIMIT`] items at a time ([`DEFAULT_LIMIT`] when the caller names no limit), sorted by
//! one of the keys the list allows, ascending or descending (`-key`), with the item's id as
//! the tie-breaker. A page that is not the last carries a [`Cursor`]: the sort it belongs to
//! and the sort value and id of the last item shown. The next page is "every item after that
//! (value, id)", so a cursor stays stable when items are added or removed elsewhere in the
//! list (keyset paging, not an offset: an insertion before the cursor does not repeat or skip
//! an item).
//!
//! A cursor is opaque to callers (hex of a small text); decoding it never panics and refuses
//! anything it did not write, or a cursor of another sort order.

use std::cmp::Ordering;
use std::fmt::Write as _;

/// Items per page when the caller names no limit.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 500;
/// The longest cursor accepted, in characters (a cursor carries one sort value).
pub const CURSOR_MAX: usize = 1024;
/// The longest `sort` parameter, in characters.
pub const SORT_MAX: usize = 40;

/// What a sort key's values are, so a cursor's value can be checked against its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Whole numbers (ids, ranks, instants in milliseconds).
    Int,
    /// Text (names, control numbers, states).
    Text,
}

/// One key a list may be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// Its name in `sort=` (`control_no`, `-control_no` for descending).
    pub name: &'static str,
    /// What its values are.
    pub kind: KeyKind,
}

impl SortKey {
    /// A numeric key.
    pub const fn int(name: &'static str) -> SortKey {
        SortKey {
            name,
            kind: KeyKind::Int,
        }
    }

    /// A text key.
    pub const fn text(name: &'static str) -> SortKey {
        SortKey {
            name,
            kind: KeyKind::Text,
        }
    }
}

/// The sort value of one item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// For [`KeyKind::Int`] keys.
    Int(i64),
    /// For [`KeyKind::Text`] keys.
    Text(String),
}

/// A chosen sort order: a key of the list and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The key.
    pub key: SortKey,
    /// Largest first.
    pub descending: bool,
}

impl Sort {
    /// The `sort=` text of this order (`key` or `-key`).
    pub fn name(&self) -> String {
        if self.descending {
            format!("-{}", self.key.name)
        } else {
            self.key.name.to_owned()
        }
    }

    /// Every `sort=` value a list with `keys` accepts, ascending then descending: what the API
    /// document lists as the parameter's enum.
    pub fn names(keys: &[SortKey]) -> Vec<String> {
        keys.iter()
            .flat_map(|k| [k.name.to_owned(), format!("-{}", k.name)])
            .collect()
    }

    /// Order two (value, id) positions in this sort.
    fn compare(&self, a: (&SortValue, i64), b: (&SortValue, i64)) -> Ordering {
        let natural = a.0.cmp(b.0).then(a.1.cmp(&b.1));
        if self.descending {
            natural.reverse()
        } else {
            natural
        }
    }
}

/// Where the previous page ended: the last item's sort value and id, in one sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The value of the sort key of the last item shown.
    pub value: SortValue,
    /// The id of the last item shown (the tie-breaker).
    pub id: i64,
}

/// What is wrong with a paging parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// `limit` is not a whole number from 1 to [`MAX_LIMIT`].
    #[error("limit must be a whole number from 1 to 500")]
    Limit,
    /// `sort` names no key of this list.
    #[error("sort names no sort key of this list")]
    Sort,
    /// `cursor` is not one this list handed out for this sort order.
    #[error("cursor is not a cursor of this list and sort order")]
    Cursor,
}

impl PageError {
    /// The parameter at fault.
    pub fn field(self) -> &'static str {
        match self {
            PageError::Limit => "limit",
            PageError::Sort => "sort",
            PageError::Cursor => "cursor",
        }
    }
}

/// One page asked for: how many, in which order, after which item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (1 to [`MAX_LIMIT`]).
    pub limit: u32,
    /// The order.
    pub sort: Sort,
    /// Only items after this position (none: from the start).
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` items in `sort`.
    pub fn first(limit: u32, sort: Sort) -> PageRequest {
        PageRequest {
            limit: limit.clamp(1, MAX_LIMIT),
            sort,
            after: None,
        }
    }

    /// Read the paging parameters of a list whose keys are `keys` and whose order without a
    /// `sort` is `default`; every problem found, by parameter. Empty texts count as absent.
    pub fn parse(
        limit: Option<&str>,
        sort: Option<&str>,
        cursor: Option<&str>,
        keys: &[SortKey],
        default: Sort,
    ) -> Result<PageRequest, Vec<PageError>> {
        let mut errors = Vec::new();
        let limit = match limit.map(str::trim).filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    errors.push(PageError::Limit);
                    DEFAULT_LIMIT
                }
            },
        };
        let sort = match sort.map(str::trim).filter(|s| !s.is_empty()) {
            None => Some(default),
            Some(text) => parse_sort(text, keys),
        };
        let Some(sort) = sort else {
            errors.push(PageError::Sort);
            return Err(errors);
        };
        let after = match cursor.map(str::trim).filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => match decode_cursor(text, &sort) {
                Some(c) => Some(c),
                None => {
                    errors.push(PageError::Cursor);
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(PageRequest { limit, sort, after })
        } else {
            Err(errors)
        }
    }

    /// Whether the position (`value`, `id`) comes after this request's cursor.
    pub fn is_after_cursor(&self, value: &SortValue, id: i64) -> bool {
        self.after
            .as_ref()
            .is_none_or(|c| self.sort.compare((value, id), (&c.value, c.id)) == Ordering::Greater)
    }
}

/// One page of a list, and the cursor of the next page while more remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the requested order.
    pub items: Vec<T>,
    /// The encoded cursor of the next page; none on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    /// The same page with each item converted by a fallible function.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            next: self.next,
        })
    }
}

fn parse_sort(text: &str, keys: &[SortKey]) -> Option<Sort> {
    let (descending, name) = match text.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, text),
    };
    keys.iter()
        .find(|k| k.name == name)
        .map(|&key| Sort { key, descending })
}

/// Finish a page from the rows a store read: at most `limit + 1` rows, each with its sort
/// value and id, in the request's order and after its cursor. One row beyond `limit` means
/// more remain: it is dropped, and the cursor of the last kept row is the next page's.
pub fn finish<T>(mut rows: Vec<(T, SortValue, i64)>, request: &PageRequest) -> Page<T> {
    let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last() {
        Some((_, value, id)) if more => Some(encode_cursor(
            &request.sort,
            &Cursor {
                value: value.clone(),
                id: *id,
            },
        )),
        _ => None,
    };
    Page {
        items: rows.into_iter().map(|(item, _, _)| item).collect(),
        next,
    }
}

/// Page a whole list held in memory (the short lists: people, devices, sign-outs): sort by
/// `key` (the item's sort value for a key name, and its id), keep what comes after the cursor,
/// and finish the page as a store would.
pub fn paginate<T>(
    items: Vec<T>,
    request: &PageRequest,
    key: impl Fn(&T, &str) -> (SortValue, i64),
) -> Page<T> {
    let mut keyed: Vec<(T, SortValue, i64)> = items
        .into_iter()
        .map(|item| {
            let (value, id) = key(&item, request.sort.key.name);
            (item, value, id)
        })
        .filter(|(_, value, id)| request.is_after_cursor(value, *id))
        .collect();
    keyed.sort_by(|a, b| request.sort.compare((&a.1, a.2), (&b.1, b.2)));
    let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
    keyed.truncate(limit.saturating_add(1));
    finish(keyed, request)
}

/// The words of a search text: split at any white space (including the ideographic space
/// U+3000), at most `max` of them. Each word must match somewhere for an item to match.
pub fn search_words(q: &str, max: usize) -> Vec<String> {
    q.split_whitespace().take(max).map(str::to_owned).collect()
}

/// Whether every search word is a substring (any case) of one of `fields`: the in-memory
/// match of the short lists, like the database lists' `instr(lower(…))`.
pub fn words_match(words: &[String], fields: &[&str]) -> bool {
    words.iter().all(|word| {
        let word = word.to_lowercase();
        fields.iter().any(|f| f.to_lowercase().contains(&word))
    })
}

/// The opaque text of a cursor in `sort`: hex of `sort|kind value|id`.
pub fn encode_cursor(sort: &Sort, cursor: &Cursor) -> String {
    let value = match &cursor.value {
        SortValue::Int(n) => format!("i{n}"),
        SortValue::Text(t) => format!("t{t}"),
    };
    let plain = format!("{}|{}|{value}", sort.name(), cursor.id);
    let mut out = String::with_capacity(plain.len() * 2);
    for b in plain.bytes() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Read a cursor of `sort`; none for anything else (wrong sort, wrong value kind, not hex,
/// too long).
pub fn decode_cursor(text: &str, sort: &Sort) -> Option<Cursor> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if text.len() > CURSOR_MAX || text.len() % 2 != 0 || !text.bytes().all(lower_hex) {
        return None;
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()?;
    let plain = String::from_utf8(bytes).ok()?;
    let mut parts = plain.splitn(3, '|');
    let (name, id, value) = (parts.next()?, parts.next()?, parts.next()?);
    if name != sort.name() {
        return None;
    }
    let id = id.parse().ok()?;
    let value = match (sort.key.kind, value.split_at_checked(1)?) {
        (KeyKind::Int, ("i", n)) => SortValue::Int(n.parse().ok()?),
        (KeyKind::Text, ("t", t)) => SortValue::Text(t.to_owned()),
        _ => return None,
    };
    Some(Cursor { value, id })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[SortKey] = &[SortKey::int("id"), SortKey::text("name")];

    fn by_id() -> Sort {
        Sort {
            key: KEYS[0],
            descending: false,
        }
    }

    fn item_key(item: &(i64, &'static str), key: &str) -> (SortValue, i64) {
        match key {
            "name" => (SortValue::Text(item.1.to_owned()), item.0),
            _ => (SortValue::Int(item.0), item.0),
        }
    }

    #[test]
    fn parameters_default_and_every_problem_is_named() {
        let p = PageRequest::parse(None, None, None, KEYS, by_id()).unwrap();
        assert_eq!((p.limit, p.sort, p.after), (DEFAULT_LIMIT, by_id(), None));
        let p = PageRequest::parse(Some("500"), Some("-name"), Some(""), KEYS, by_id()).unwrap();
        assert_eq!((p.limit, p.sort.name()), (500, "-name".to_owned()));
        for bad in ["0", "501", "-1", "ten", "1.5"] {
            assert_eq!(
                PageRequest::parse(Some(bad), None, None, KEYS, by_id()),
                Err(vec![PageError::Limit]),
                "{bad}"
            );
        }
        assert_eq!(
            PageRequest::parse(Some("0"), Some("title"), Some("zz"), KEYS, by_id()),
            Err(vec![PageError::Limit, PageError::Sort])
        );
        assert_eq!(
            PageRequest::parse(None, None, Some("zz"), KEYS, by_id()),
            Err(vec![PageError::Cursor])
        );
    }

    #[test]
    fn a_cursor_belongs_to_its_sort_order() {
        let name = Sort {
            key: KEYS[1],
            descending: false,
        };
        let cursor = Cursor {
            value: SortValue::Text("机要室 A|b".into()),
            id: 7,
        };
        let text = encode_cursor(&name, &cursor);
        assert_eq!(decode_cursor(&text, &name), Some(cursor.clone()));
        assert_eq!(decode_cursor(&text, &by_id()), None);
        let reversed = Sort {
            descending: true,
            ..name
        };
        assert_eq!(decode_cursor(&text, &reversed), None);
    }

    #[test]
    fn pages_walk_the_whole_list_once_in_order() {
        let items = vec![(3, "b"), (1, "c"), (2, "a"), (4, "b"), (5, "a")];
        let sort = Sort {
            key: KEYS[1],
            descending: true,
        };
        let mut request = PageRequest::first(2, sort);
        let mut seen = Vec::new();
        loop {
            let page = paginate(items.clone(), &request, item_key);
            seen.extend(page.items.iter().map(|i| i.0));
            let Some(next) = page.next else { break };
            request.after = decode_cursor(&next, &sort);
            assert!(request.after.is_some());
        }
        assert_eq!(seen, vec![1, 4, 3, 5, 2]);
    }

    #[test]
    fn a_cursor_is_stable_when_items_are_added_before_it() {
        let mut items = vec![(1, "a"), (2, "b"), (3, "c"), (4, "d")];
        let sort = Sort {
            key: KEYS[1],
            descending: false,
        };
        let first = paginate(items.clone(), &PageRequest::first(2, sort), item_key);
        items.push((9, "a0"));
        let mut request = PageRequest::first(2, sort);
        request.after = decode_cursor(first.next.as_deref().unwrap(), &sort);
        let second = paginate(items, &request, item_key);
        assert_eq!(second.items, vec![(3, "c"), (4, "d")]);
        assert_eq!(second.next, None);
    }

    #[test]
    fn search_words_split_at_any_white_space() {
        assert_eq!(
            search_words(" 绝密\u{3000}会议  纪要 ", 8),
            vec!["绝密", "会议", "纪要"]
        );
        assert_eq!(search_words("a b c", 2), vec!["a", "b"]);
    }

    proptest! {
        /// Decoding any text never panics, and a decoded cursor re-encodes to the same text.
        #[test]
        fn decoding_never_panics(text in ".{0,80}", hex in "[0-9a-f]{0,80}") {
            for t in [text.as_str(), hex.as_str()] {
                if let Some(c) = decode_cursor(t, &by_id()) {
                    prop_assert_eq!(encode_cursor(&by_id(), &c), t.to_owned());
                }
            }
        }

        /// Any cursor round-trips through its text.
        #[test]
        fn cursors_round_trip(id in any::<i64>(), n in any::<i64>(), t in ".{0,40}", desc in any::<bool>()) {
            let int = Sort { key: KEYS[0], descending: desc };
            let text = Sort { key: KEYS[1], descending: desc };
            let a = Cursor { value: SortValue::Int(n), id };
            let b = Cursor { value: SortValue::Text(t), id };
            prop_assert_eq!(decode_cursor(&encode_cursor(&int, &a), &int), Some(a));
            prop_assert_eq!(decode_cursor(&encode_cursor(&text, &b), &text), Some(b));
        }
    }
}
