//! The static assets, compiled into the binary: one stylesheet and one script. Nothing is
//! fetched from the internet and there is no build step.
//!
//! Pages link them as `/static/NAME?v=HASH` (the first 16 hex digits of the content's
//! SHA-256), so a new build changes the link; the answer carries that hash as a strong `ETag`,
//! honours `If-None-Match` with 304, and may be cached for a day.

use std::sync::OnceLock;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ring::digest::{SHA256, digest};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its path under the site root.
    pub path: &'static str,
    content_type: &'static str,
    body: &'static str,
    version: OnceLock<String>,
}

impl Asset {
    pub(super) const fn new(
        path: &'static str,
        content_type: &'static str,
        body: &'static str,
    ) -> Asset {
        Asset {
            path,
            content_type,
            body,
            version: OnceLock::new(),
        }
    }

    /// The content hash (16 hex digits), computed once.
    pub fn version(&self) -> &str {
        self.version
            .get_or_init(|| crate::audit::hex(&digest(&SHA256, self.body.as_bytes()).as_ref()[..8]))
    }

    /// The link to put in a page.
    pub fn href(&self) -> String {
        format!("{}?v={}", self.path, self.version())
    }

    /// The content.
    pub fn body(&self) -> &'static str {
        self.body
    }

    /// Answer a request for this file.
    pub fn respond(&self, headers: &HeaderMap) -> Response {
        let etag = format!("\"{}\"", self.version());
        let cached = headers
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
        let mut response = if cached {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(CONTENT_TYPE, self.content_type)], self.body).into_response()
        };
        let h = response.headers_mut();
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=86400"),
        );
        if let Ok(value) = HeaderValue::from_str(&etag) {
            h.insert(ETAG, value);
        }
        response
    }
}

/// The stylesheet.
pub static CSS: Asset = Asset::new(
    "/static/custos.css",
    "text/css; charset=utf-8",
    include_str!("static/custos.css"),
);

/// The script: live alerts (EventSource), the alarm tone (WebAudio), acknowledge/resolve
/// (fetch with `x-csrf-token`), the status poll, and small form helpers.
pub static JS: Asset = Asset::new(
    "/static/custos.js",
    "text/javascript; charset=utf-8",
    include_str!("static/custos.js"),
);

/// `GET /static/custos.css`.
pub async fn css(headers: HeaderMap) -> Response {
    CSS.respond(&headers)
}

/// `GET /static/custos.js`.
pub async fn js(headers: HeaderMap) -> Response {
    JS.respond(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stable_content_hashes() {
        assert_eq!(CSS.version().len(), 16);
        assert_eq!(CSS.version(), CSS.version());
        assert_ne!(CSS.version(), JS.version());
        assert!(JS.href().starts_with("/static/custos.js?v="));
    }

    #[test]
    fn a_matching_etag_gets_304() {
        let mut headers = HeaderMap::new();
        let fresh = CSS.respond(&headers);
        assert_eq!(fresh.status(), StatusCode::OK);
        let etag = fresh.headers()[ETAG].clone();
        headers.insert(IF_NONE_MATCH, etag);
        assert_eq!(CSS.respond(&headers).status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn the_script_is_plain_and_self_contained() {
        // No inline-only constructs the CSP would block, no remote fetches.
        for banned in ["eval(", "new Function", "innerHTML", "http://", "https://"] {
            assert!(!JS.body().contains(banned), "{banned}");
        }
        assert!(!CSS.body().contains("http://") && !CSS.body().contains("https://"));
        assert!(!CSS.body().contains("@import"));
    }
}
