//! Answering one page of a list: still a JSON array (what list endpoints have always
//! answered), with an RFC 8288 `Link: <…>; rel="next"` header while more remain. The link is
//! the request's own path and query with `cursor` replaced, so filters and the sort carry over.

use axum::Json;
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaFormat, Type};

use crate::domain::page::{CURSOR_MAX, DEFAULT_LIMIT, MAX_LIMIT, Page, Sort, SortKey};
use crate::service::devices::DEVICE_SORT_KEYS;
use crate::service::lists::Q_MAX;
use crate::service::people::PEOPLE_SORT_KEYS;
use crate::service::signouts::SIGNOUT_SORT_KEYS;
use crate::store::carriers::CARRIER_SORT_KEYS;

/// The `Link` value pointing at the page after `uri`'s, with cursor `next`.
pub fn next_link(uri: &Uri, next: &str) -> String {
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .collect();
    let cursor = format!("cursor={next}");
    query.push(&cursor);
    format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"))
}

/// A page as a JSON array with its `Link` header. `uri` is the request's original URI
/// (`OriginalUri`: the path with `/api/v1`).
pub fn answer<T: Serialize>(uri: &Uri, page: Page<T>) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(next) = &page.next {
        // A cursor is hex and the rest comes from a URI, so the value is always valid.
        if let Ok(value) = HeaderValue::from_str(&next_link(uri, next)) {
            headers.insert(LINK, value);
        }
    }
    (headers, Json(page.items)).into_response()
}

/// The schema of `limit`: a whole number from 1 to [`MAX_LIMIT`].
pub fn limit_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
        .build()
}

/// The schema of `cursor`: lower-case hex, at most [`CURSOR_MAX`] characters, format
/// `opaque-cursor`: only a value from a `Link` header is a cursor; anything else answers 400.
pub fn cursor_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("opaque-cursor".into())))
        .pattern(Some("^([0-9a-f]{2})*$"))
        .max_length(Some(CURSOR_MAX))
        .build()
}

/// The schema of `q`: at most [`Q_MAX`] characters.
pub fn q_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(Q_MAX))
        .build()
}

/// The schema of a `sort` over `keys`: each key, or `-key` for descending.
pub fn sort_schema(keys: &[SortKey]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Sort::names(keys)))
        .build()
}

/// `sort` of `GET /carriers`.
pub fn carrier_sort_schema() -> Object {
    sort_schema(CARRIER_SORT_KEYS)
}

/// `sort` of `GET /alerts`: newest first (`-id`) or oldest first (`id`).
pub fn alert_sort_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["-id", "id"]))
        .build()
}

/// `sort` of the lists read oldest first only (`GET /audit`).
pub fn oldest_first_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["id"]))
        .build()
}

/// `sort` of `GET /people`.
pub fn people_sort_schema() -> Object {
    sort_schema(PEOPLE_SORT_KEYS)
}

/// `sort` of `GET /devices`.
pub fn device_sort_schema() -> Object {
    sort_schema(DEVICE_SORT_KEYS)
}

/// `sort` of `GET /signouts`.
pub fn signout_sort_schema() -> Object {
    sort_schema(SIGNOUT_SORT_KEYS)
}

/// Declare the query of a list that takes only the paging parameters and `q`, with the
/// `sort` schema of that list.
macro_rules! page_query {
    ($(#[$doc:meta])* $name:ident, $sort:path) => {
        $(#[$doc])*
        #[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Search words (split at white space; at most 200 characters): each must match.
            #[serde(default)]
            #[param(schema_with = $crate::api::paging::q_schema)]
            q: Option<String>,
            /// Items per page: 1 to 500, 100 when absent.
            #[serde(default)]
            #[param(schema_with = $crate::api::paging::limit_schema)]
            limit: Option<String>,
            /// The cursor from the previous page's `Link: rel="next"` header (opaque).
            #[serde(default)]
            #[param(schema_with = $crate::api::paging::cursor_schema)]
            cursor: Option<String>,
            /// The order: a key, or `-key` for descending.
            #[serde(default)]
            #[param(schema_with = $sort)]
            sort: Option<String>,
        }

        impl From<$name> for $crate::service::lists::ListParams {
            fn from(q: $name) -> Self {
                $crate::service::lists::ListParams {
                    limit: q.limit,
                    cursor: q.cursor,
                    sort: q.sort,
                    q: q.q,
                }
            }
        }
    };
}
pub(crate) use page_query;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_filters_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/carriers?q=%E6%9C%BA&cursor=00&limit=2"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&uri, "ab12"),
            "</api/v1/carriers?q=%E6%9C%BA&limit=2&cursor=ab12>; rel=\"next\""
        );
        let bare: Uri = "/api/v1/people".parse().unwrap();
        assert_eq!(
            next_link(&bare, "ff"),
            "</api/v1/people?cursor=ff>; rel=\"next\""
        );
    }
}
