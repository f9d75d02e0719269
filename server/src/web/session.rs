//! Browser sessions for the pages: the extractors, the form CSRF check, the HTML error type,
//! sign-in, sign-out and the language switch.
//!
//! # Same session, same rules as the API
//! A page is authenticated by the same `custos_session` cookie the API sets (HttpOnly,
//! SameSite=Strict, Secure when configured), and authorised by the same capability types:
//! [`Page<C>`] runs `C`'s own extractor, so a page is open to exactly the roles of the
//! capability its handler names. Only the failure is answered differently: a redirect to
//! `/login` instead of a JSON 401, an HTML page in the user's language instead of a JSON 403.
//! Pages are cookie-only: an `Authorization` header is ignored here.
//!
//! # A password to change first
//! An account that must change its password (new, or reset by an administrator) gets no page
//! but the change-password form (`/account/password`): every other page redirects there
//! ([`WebError::ChangePassword`]), as the API answers 403 `password_change_required`. Only
//! [`PendingSession`] and [`PendingForm`] (that form, and sign-out) admit such a session.
//!
//! # CSRF
//! Every page renders the session's CSRF secret twice: in `<meta name="csrf-token">` (for the
//! script, which sends it as `x-csrf-token` to the JSON API) and as the hidden field `csrf` in
//! every form. [`WebForm<C>`] reads the form, compares `csrf` with the session's secret in
//! constant time, and hands the field to the auth layer as `x-csrf-token`, where the API's own
//! check runs again; a form without the right field is refused with a 403 page before the
//! handler runs. The sign-in form has no session yet: it uses a double-submit token (a random
//! value in both an HttpOnly SameSite=Strict cookie scoped to `/login` and a hidden field).

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::form::{FormData, encode};
use super::i18n::{Key, LANG_COOKIE, Lang, cookie, t};
use super::layout;
use crate::AppState;
use crate::api::auth::{CSRF_HEADER, PendingOrSignedIn, SESSION_COOKIE};
use crate::api::error::ApiError;
use crate::auth::Authenticated;
use crate::auth::{self, token};
use crate::domain::role::{Role, Roles};
use crate::service::ServiceError;
use crate::service::accounts;

/// The hidden form field carrying the CSRF secret.
pub const CSRF_FIELD: &str = "csrf";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "custos_login";
/// The largest form body accepted, in bytes.
pub const FORM_LIMIT: usize = 64 * 1024;
/// How long the sign-in form's token lives, in seconds.
const LOGIN_TOKEN_SECS: u64 = 12 * 3600;
/// How long the language choice is remembered, in seconds (one year).
const LANG_COOKIE_SECS: u64 = 365 * 24 * 3600;

/// A signed-in browser: who, with which roles, in which language, and the session's CSRF
/// secret to render into the page. Pages any signed-in user may see take this directly;
/// role-gated pages take [`Page<C>`].
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The page language.
    pub lang: Lang,
    caller: Authenticated,
    csrf: String,
    path: String,
}

/// A signed-in browser whose account may still have to change its password: only for the
/// change-password page and sign-out.
#[derive(Debug, Clone)]
pub struct PendingSession(pub WebSession);

impl WebSession {
    /// The login name.
    pub fn username(&self) -> &str {
        self.caller.username()
    }

    /// The roles.
    pub fn roles(&self) -> Roles {
        self.caller.roles()
    }

    /// Whether the session holds any of `roles`.
    pub fn may(&self, roles: &[Role]) -> bool {
        self.caller.roles().any_of(roles)
    }

    /// The session's CSRF secret (rendered into `<meta name="csrf-token">` and forms).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The caller, for store functions that take one.
    pub fn caller(&self) -> &Authenticated {
        &self.caller
    }

    /// The requested path and query (where the language switch returns to).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// An internal failure while serving this page: logged, answered with the error page.
    pub fn internal(&self, cause: impl std::fmt::Display) -> WebError {
        WebError::internal(self.lang, cause)
    }
}

/// A local path to return to after sign-in or a language switch: an absolute path on this
/// site, nothing that a browser could read as another origin.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2000;
    ok.then_some(next)
}

fn request_path(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned()
}

impl FromRequestParts<AppState> for PendingSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if let Some(done) = parts.extensions.get::<WebSession>() {
            return Ok(PendingSession(done.clone()));
        }
        let lang = Lang::of(&parts.headers);
        let path = request_path(parts);
        let sign_in = WebError::SignIn {
            next: (parts.method == Method::GET).then(|| path.clone()),
        };
        // Pages are cookie-only, so that the capability checks below see the same session.
        parts.headers.remove(AUTHORIZATION);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(sign_in);
        };
        let record = auth::authenticate(state.store(), token, state.now())
            .await
            .map_err(|e| WebError::internal(lang, e))?;
        let Some(record) = record else {
            return Err(sign_in);
        };
        let caller = match PendingOrSignedIn::from_request_parts(parts, state).await {
            Ok(PendingOrSignedIn(caller)) => caller,
            Err(ApiError::Unauthenticated) => return Err(sign_in),
            Err(ApiError::CsrfRejected) => return Err(WebError::FormRejected { lang }),
            Err(e) => return Err(WebError::internal(lang, e)),
        };
        let session = WebSession {
            lang,
            caller,
            csrf: record.csrf,
            path,
        };
        parts.extensions.insert(session.clone());
        Ok(PendingSession(session))
    }
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let PendingSession(session) = PendingSession::from_request_parts(parts, state).await?;
        if session.caller.must_change_password() {
            return Err(WebError::ChangePassword);
        }
        Ok(session)
    }
}

/// A page for the roles of capability `C` (`AdminCap`, `AuditorCap`, `AlertHandlerCap`, ...):
/// the capability itself, for the store calls that demand it, and the session.
#[derive(Debug)]
pub struct Page<C> {
    /// The checked capability.
    pub cap: C,
    /// The session.
    pub session: WebSession,
}

impl<C> FromRequestParts<AppState> for Page<C>
where
    C: FromRequestParts<AppState, Rejection = ApiError> + Send,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let session = WebSession::from_request_parts(parts, state).await?;
        match C::from_request_parts(parts, state).await {
            Ok(cap) => Ok(Page { cap, session }),
            Err(ApiError::Forbidden) => Err(WebError::Forbidden(Box::new(session))),
            Err(ApiError::CsrfRejected) => Err(WebError::FormRejected { lang: session.lang }),
            Err(ApiError::Unauthenticated) => Err(WebError::SignIn { next: None }),
            Err(e) => Err(session.internal(e)),
        }
    }
}

/// A form POST for the roles of `C`: the page and the decoded form, after the CSRF check.
#[derive(Debug)]
pub struct WebForm<C> {
    /// The capability and session.
    pub page: Page<C>,
    /// The submitted fields.
    pub form: FormData,
}

impl<C> FromRequest<AppState> for WebForm<C>
where
    C: FromRequestParts<AppState, Rejection = ApiError> + Send,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let lang = Lang::of(request.headers());
        let (mut parts, body) = request.into_parts();
        let form = read_form(&parts.headers, body, lang).await?;
        // The field, not a header, is what a form can carry: hand it to the auth layer, which
        // checks it against the session like the API's header.
        parts.headers.remove(CSRF_HEADER);
        if let Ok(value) = HeaderValue::from_str(form.get(CSRF_FIELD)) {
            parts.headers.insert(CSRF_HEADER, value);
        }
        let page = Page::<C>::from_request_parts(&mut parts, state).await?;
        if !token::same_secret(form.get(CSRF_FIELD), page.session.csrf()) {
            return Err(WebError::FormRejected { lang });
        }
        Ok(WebForm { page, form })
    }
}

/// A form POST of a [`PendingSession`] (the change-password form, sign-out), after the CSRF
/// check.
#[derive(Debug)]
pub struct PendingForm {
    /// The session.
    pub session: WebSession,
    /// The submitted fields.
    pub form: FormData,
}

impl FromRequest<AppState> for PendingForm {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let lang = Lang::of(request.headers());
        let (mut parts, body) = request.into_parts();
        let form = read_form(&parts.headers, body, lang).await?;
        parts.headers.remove(CSRF_HEADER);
        if let Ok(value) = HeaderValue::from_str(form.get(CSRF_FIELD)) {
            parts.headers.insert(CSRF_HEADER, value);
        }
        let PendingSession(session) = PendingSession::from_request_parts(&mut parts, state).await?;
        if !token::same_secret(form.get(CSRF_FIELD), session.csrf()) {
            return Err(WebError::FormRejected { lang });
        }
        Ok(PendingForm { session, form })
    }
}

/// Read an urlencoded body of at most [`FORM_LIMIT`] bytes.
async fn read_form(headers: &HeaderMap, body: Body, lang: Lang) -> Result<FormData, WebError> {
    let urlencoded = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !urlencoded {
        return Err(WebError::BadForm {
            lang,
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        });
    }
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| WebError::BadForm {
            lang,
            status: StatusCode::PAYLOAD_TOO_LARGE,
        })?;
    FormData::parse(&bytes).map_err(|_| WebError::BadForm {
        lang,
        status: StatusCode::BAD_REQUEST,
    })
}

/// A form without a session (the sign-in form): the fields and the language.
#[derive(Debug)]
pub struct PlainForm {
    /// The page language.
    pub lang: Lang,
    /// The submitted fields.
    pub form: FormData,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequest<S> for PlainForm {
    type Rejection = WebError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, WebError> {
        let lang = Lang::of(request.headers());
        let (parts, body) = request.into_parts();
        let form = read_form(&parts.headers, body, lang).await?;
        Ok(PlainForm {
            lang,
            form,
            headers: parts.headers,
        })
    }
}

/// Why a page could not be served, answered as HTML in the user's language.
#[derive(Debug)]
pub enum WebError {
    /// Not signed in: 303 to `/login`, coming back to `next` afterwards.
    SignIn {
        /// The page asked for (GET requests only).
        next: Option<String>,
    },
    /// 403: the session lacks the role; the page keeps the navigation.
    Forbidden(Box<WebSession>),
    /// The account must change its password first: 303 to `/account/password`.
    ChangePassword,
    /// 403: the form's CSRF field is missing or wrong.
    FormRejected {
        /// The page language.
        lang: Lang,
    },
    /// 400/413/415: the body is not a readable form.
    BadForm {
        /// The page language.
        lang: Lang,
        /// The status to answer.
        status: StatusCode,
    },
    /// 500: logged, not explained.
    Internal {
        /// The page language.
        lang: Lang,
    },
}

impl WebError {
    /// Log `cause` and answer the generic error page.
    pub fn internal(lang: Lang, cause: impl std::fmt::Display) -> WebError {
        tracing::error!(%cause, "page failed");
        WebError::Internal { lang }
    }
}

/// A 303 redirect.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// Back to `to` with `?refused=CODE`, the code being [`ServiceError::refusal_code`] (the
/// same the JSON API answers); the server's own failures are the generic error page.
pub fn refused_to(session: &WebSession, to: &str, e: ServiceError) -> Result<Response, WebError> {
    match e.refusal_code() {
        Some(code) => {
            let separator = if to.contains('?') { '&' } else { '?' };
            Ok(see_other(&format!("{to}{separator}refused={code}")))
        }
        None => Err(session.internal(e)),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn { next } => {
                let location = match next.as_deref().and_then(safe_next) {
                    Some(next) if next != "/" => format!("/login?next={}", encode(next)),
                    _ => "/login".to_owned(),
                };
                see_other(&location)
            }
            WebError::ChangePassword => see_other(super::account::PASSWORD_PAGE),
            WebError::Forbidden(session) => {
                let lang = session.lang;
                let page = layout::message_page(
                    lang,
                    Some(&session),
                    Key::ForbiddenTitle,
                    t(lang, Key::ForbiddenBody),
                );
                (StatusCode::FORBIDDEN, page).into_response()
            }
            WebError::FormRejected { lang } => {
                let page = layout::message_page(
                    lang,
                    None,
                    Key::ForbiddenTitle,
                    t(lang, Key::ErrFormExpired),
                );
                (StatusCode::FORBIDDEN, page).into_response()
            }
            WebError::BadForm { lang, status } => {
                let body = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Key::TooLargeBody
                } else {
                    Key::BadFormBody
                };
                let page = layout::message_page(lang, None, Key::InternalTitle, t(lang, body));
                (status, page).into_response()
            }
            WebError::Internal { lang } => {
                let page = layout::message_page(
                    lang,
                    None,
                    Key::InternalTitle,
                    t(lang, Key::InternalBody),
                );
                (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
            }
        }
    }
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

fn login_cookie(value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{LOGIN_COOKIE}={value}; Path=/login; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// What the sign-in form shows.
struct LoginView<'a> {
    lang: Lang,
    token: &'a str,
    username: &'a str,
    next: Option<&'a str>,
    error: Option<Key>,
}

fn login_markup(v: &LoginView<'_>) -> Markup {
    let lang = v.lang;
    let here = match v.next {
        Some(next) => format!("/login?next={}", encode(next)),
        None => "/login".to_owned(),
    };
    let content = html! {
        section.card.login-card {
            h1 { (t(lang, Key::LoginTitle)) }
            @if let Some(error) = v.error {
                p.form-errors #login-error role="alert" { (t(lang, error)) }
            }
            form #login-form method="post" action="/login" data-once {
                input type="hidden" name=(CSRF_FIELD) value=(v.token);
                @if let Some(next) = v.next {
                    input type="hidden" name="next" value=(next);
                }
                label for="login-username" { (t(lang, Key::Username)) }
                input #login-username type="text" name="username" value=(v.username)
                    autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus;
                label for="login-password" { (t(lang, Key::Password)) }
                input #login-password type="password" name="password"
                    autocomplete="current-password" required;
                button #login-submit .primary type="submit" { (t(lang, Key::LoginButton)) }
            }
        }
    };
    layout::page(
        lang,
        None,
        &here,
        t(lang, Key::LoginTitle),
        "login",
        content,
    )
}

fn login_response(status: StatusCode, view: &LoginView<'_>, secure: bool) -> Response {
    let set = login_cookie(view.token, LOGIN_TOKEN_SECS, secure);
    (status, [(SET_COOKIE, set)], login_markup(view)).into_response()
}

/// `GET /login`: the sign-in form (or home, if already signed in).
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, WebError> {
    let lang = Lang::of(&headers);
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let live = auth::authenticate(state.store(), token, state.now())
            .await
            .map_err(|e| WebError::internal(lang, e))?;
        if live.is_some() {
            return Ok(see_other("/"));
        }
    }
    let query = FormData::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    let next = safe_next(query.get("next"));
    let token = token::generate().map_err(|e| WebError::internal(lang, e))?;
    let view = LoginView {
        lang,
        token: &token,
        username: "",
        next,
        error: None,
    };
    Ok(login_response(
        StatusCode::OK,
        &view,
        state.settings().secure_cookies,
    ))
}

/// `POST /login`: check the double-submit token and the password, then set the session
/// cookie and go to `next` (or home). A refusal re-renders the form with the username kept.
pub async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::auth::source::ClientAddr>>,
    submitted: PlainForm,
) -> Result<Response, WebError> {
    let source = client.and_then(|c| c.0.0);
    let PlainForm {
        lang,
        form,
        headers,
    } = submitted;
    let secure = state.settings().secure_cookies;
    let next = safe_next(form.get("next"));
    let username = form.get("username");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    let sent = form.get(CSRF_FIELD);
    if expected.is_empty() || !token::same_secret(sent, expected) {
        tracing::info!("sign-in form without its token");
        let fresh = token::generate().map_err(|e| WebError::internal(lang, e))?;
        let view = LoginView {
            lang,
            token: &fresh,
            username,
            next,
            error: Some(Key::ErrFormExpired),
        };
        return Ok(login_response(StatusCode::FORBIDDEN, &view, secure));
    }
    match accounts::login(
        &state,
        source,
        username.to_owned(),
        form.get("password").to_owned(),
    )
    .await
    {
        Ok(grant) => {
            let ttl = state.settings().session_ttl_secs;
            let response = see_other(next.unwrap_or("/"));
            let mut response = response;
            let headers = response.headers_mut();
            for cookie in [
                session_cookie(&grant.token, ttl, secure),
                login_cookie("", 0, secure),
            ] {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    headers.append(SET_COOKIE, value);
                }
            }
            Ok(response)
        }
        Err(ServiceError::InvalidCredentials) => {
            let view = LoginView {
                lang,
                token: expected,
                username,
                next,
                error: Some(Key::ErrInvalidCredentials),
            };
            Ok(login_response(StatusCode::UNAUTHORIZED, &view, secure))
        }
        Err(ServiceError::LoginBlocked(blocked)) => {
            let view = LoginView {
                lang,
                token: expected,
                username,
                next,
                error: Some(Key::ErrTooManyAttempts),
            };
            let mut response = login_response(StatusCode::TOO_MANY_REQUESTS, &view, secure);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(blocked.retry_after_secs),
            );
            Ok(response)
        }
        Err(ServiceError::Auth(crate::auth::AuthError::Busy { retry_after_secs })) => {
            // A sign-in flood keeps every hashing slot busy: try again shortly.
            let view = LoginView {
                lang,
                token: expected,
                username,
                next,
                error: Some(Key::ErrTooManyAttempts),
            };
            let mut response = login_response(StatusCode::SERVICE_UNAVAILABLE, &view, secure);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs),
            );
            Ok(response)
        }
        Err(e) => Err(WebError::internal(lang, e)),
    }
}

/// `POST /logout`: end the session, clear the cookie, back to the sign-in form (also for an
/// account that must still change its password).
pub async fn logout(
    State(state): State<AppState>,
    submitted: PendingForm,
) -> Result<Response, WebError> {
    let session = &submitted.session;
    match accounts::logout(&state, session.caller()).await {
        Ok(()) | Err(ServiceError::NotFound) => {}
        Err(e) => return Err(session.internal(e)),
    }
    let mut response = see_other("/login");
    let clear = session_cookie("", 0, state.settings().secure_cookies);
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /lang/{zh|en}?next=/path`: remember the language and go back to `next`.
pub async fn switch_language(
    State(state): State<AppState>,
    Path(code): Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let query = FormData::parse(uri.query().unwrap_or("").as_bytes()).unwrap_or_default();
    let mut response = see_other(safe_next(query.get("next")).unwrap_or("/"));
    if let Some(lang) = Lang::from_code(&code) {
        let secure = if state.settings().secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let set = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age={LANG_COOKIE_SECS}; SameSite=Strict{secure}",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&set) {
            response.headers_mut().insert(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(safe_next("/guard?x=1"), Some("/guard?x=1"));
        assert_eq!(safe_next("/"), Some("/"));
        for bad in [
            "",
            "guard",
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "/a\nb",
            "/a\\b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_sign_in_redirect_keeps_the_page_asked_for() {
        let response = WebError::SignIn {
            next: Some("/audit?actor=a b".into()),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers()[LOCATION],
            "/login?next=/audit%3Factor%3Da%20b"
        );
        let response = WebError::SignIn {
            next: Some("//evil.example".into()),
        }
        .into_response();
        assert_eq!(response.headers()[LOCATION], "/login");
    }

    #[test]
    fn cookies_carry_the_api_attributes() {
        assert_eq!(
            session_cookie("tok", 60, true),
            "custos_session=tok; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!login_cookie("x", 1, false).contains("Secure"));
        assert!(login_cookie("x", 1, false).contains("Path=/login"));
    }
}
