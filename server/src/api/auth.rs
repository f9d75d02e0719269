//! Who is calling, from the request: the `Authenticated` caller and the capability extractors.
//!
//! A request is authenticated by `Authorization: Bearer TOKEN` or, for browsers, by the
//! `custos_session` cookie (HttpOnly, SameSite=Strict). A cookie-authenticated request that can
//! change state (any method but GET, HEAD, OPTIONS) must also carry `x-csrf-token` equal to the
//! session's CSRF token: SameSite already stops most cross-site requests, the header stops the
//! rest. Bearer requests need no CSRF token, since a browser never attaches one by itself.
//!
//! The session lookup and the role checks are `auth`'s ([`auth::authenticate`],
//! [`Capability::grant`]); this module only reads headers and answers 401/403.
//!
//! An account that must change its password (new, or reset by an administrator) is answered
//! 403 `password_change_required` by the [`Authenticated`] extractor, hence by every endpoint;
//! only the handlers that take [`PendingOrSignedIn`] (the change itself, and logout) serve it.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

use super::error::ApiError;
use crate::AppState;
use crate::auth::capability::{
    AdminCap, AlertHandlerCap, AlertReaderCap, AuditorCap, Capability, CustodianCap, CustodyReader,
    DeviceReaderCap, EventExportCap, GuardCap, PeopleReaderCap, SecurityOfficerCap, TagReader,
};
use crate::auth::{self, Authenticated, token};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "custos_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

enum Presented<'a> {
    Bearer(&'a str),
    Cookie(&'a str),
}

fn presented(headers: &HeaderMap) -> Result<Option<Presented<'_>>, ApiError> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        return Ok(Some(Presented::Bearer(token)));
    }
    for value in headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=') {
                if name == SESSION_COOKIE && !token.is_empty() {
                    return Ok(Some(Presented::Cookie(token)));
                }
            }
        }
    }
    Ok(None)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Any live session, also one whose account must change its password first: only for the
/// change itself and for logout. Every other handler takes [`Authenticated`] or a capability.
#[derive(Debug, Clone)]
pub struct PendingOrSignedIn(pub Authenticated);

impl FromRequestParts<AppState> for PendingOrSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(done) = parts.extensions.get::<Authenticated>() {
            return Ok(PendingOrSignedIn(done.clone()));
        }
        let (token, via_cookie) = match presented(&parts.headers)? {
            Some(Presented::Bearer(t)) => (t, false),
            Some(Presented::Cookie(t)) => (t, true),
            None => return Err(ApiError::Unauthenticated),
        };
        let session = auth::authenticate(state.store(), token, state.now())
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if via_cookie && changes_state(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !token::same_secret(sent, &session.csrf) {
                tracing::info!(user = %session.caller.user_id(), "csrf token missing or wrong");
                return Err(ApiError::CsrfRejected);
            }
        }
        parts.extensions.insert(session.caller.clone());
        Ok(PendingOrSignedIn(session.caller))
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let PendingOrSignedIn(caller) = PendingOrSignedIn::from_request_parts(parts, state).await?;
        if caller.must_change_password() {
            return Err(ApiError::PasswordChangeRequired);
        }
        Ok(caller)
    }
}

/// The capability `C` of the authenticated caller: 401 without a session, 403 without the
/// role.
async fn capability<C: Capability>(parts: &mut Parts, state: &AppState) -> Result<C, ApiError> {
    let caller = Authenticated::from_request_parts(parts, state).await?;
    C::grant(&caller).map_err(|_| ApiError::Forbidden)
}

macro_rules! capability_extractors {
    ($($cap:ty),+ $(,)?) => {$(
        impl FromRequestParts<AppState> for $cap {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                capability(parts, state).await
            }
        }
    )+};
}

capability_extractors!(
    AdminCap,
    SecurityOfficerCap,
    AuditorCap,
    CustodianCap,
    GuardCap,
    PeopleReaderCap,
    DeviceReaderCap,
    AlertHandlerCap,
    AlertReaderCap,
    CustodyReader,
    TagReader,
    EventExportCap,
);

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn bearer_wins_over_cookie_and_other_schemes_are_refused() {
        let h = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "custos_session=def"),
        ]);
        assert!(matches!(presented(&h), Ok(Some(Presented::Bearer("abc")))));
        let h = headers(&[("authorization", "Basic abc")]);
        assert!(matches!(presented(&h), Err(ApiError::Unauthenticated)));
        let h = headers(&[("authorization", "Bearer ")]);
        assert!(matches!(presented(&h), Err(ApiError::Unauthenticated)));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "theme=dark; custos_session=tok; lang=zh")]);
        assert!(matches!(presented(&h), Ok(Some(Presented::Cookie("tok")))));
        let h = headers(&[("cookie", "custos_sessionx=tok")]);
        assert!(matches!(presented(&h), Ok(None)));
        assert!(matches!(presented(&HeaderMap::new()), Ok(None)));
    }

    #[test]
    fn only_safe_methods_skip_csrf() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
    }
}
