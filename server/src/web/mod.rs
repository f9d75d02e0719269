//! Server-rendered pages for the people at the desks and the checkpoint.
//!
//! HTML comes from [maud](https://maud.lambda.xyz/) templates, checked at compile time and
//! escaped by default. The only assets are one stylesheet and one script compiled into the
//! binary ([`assets`]); nothing is fetched from the internet, there is no Node build step, and
//! the pages work on a tablet at a guard post. Every text is in Chinese and English
//! ([`i18n`]).
//!
//! # Rules
//! - Same session and roles as the API ([`session`]): the `custos_session` cookie, the
//!   capability types. Not signed in → 303 to `/login`; signed in without the role → a 403
//!   page in the user's language.
//! - Every form carries the session's CSRF secret in a hidden `csrf` field, checked before the
//!   handler runs ([`session::WebForm`]); the script sends it as `x-csrf-token` to the API.
//! - Every answer carries a strict Content-Security-Policy (`'self'` only, no inline script,
//!   no inline style, no framing), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
//!   `X-Content-Type-Options: nosniff`; pages are `Cache-Control: no-store`.
//! - Carrier titles are rendered only on the carrier register and a carrier's page
//!   ([`custodian`]: custodians and security officers, who read them through the API too).
//!   Everywhere else (guard console, desk, approvals, cabinets, missing) carriers are shown by
//!   control number and level; labels ([`label`]) never carry a title.
//! - Forms that create records carry a one-time token ([`replay`]); forms whose repeat the
//!   store refuses by itself (issue, return, approve, leave, depart) answer the repeat with a
//!   friendly "already done". Either way a second identical POST changes nothing.
//!
//! # Pages
//! | path | who | what |
//! |---|---|---|
//! | `GET /login`, `POST /login` | anyone | sign-in form |
//! | `POST /logout` | signed in | end the session |
//! | `GET/POST /account/password` | signed in | [`account`]: change one's own password (the only page until an account whose password an administrator chose has done so) |
//! | `GET /lang/{zh,en}?next=` | anyone | language switch |
//! | `GET /` | signed in | 303 to the first page of [`NAV`] the roles allow (or a note) |
//! | `GET /officer` | security officer | [`home`]: what needs the officer now |
//! | `GET /guard`, `GET /guard/status.json` | guard, security officer | [`guard`] console |
//! | `GET /admin/start` | admin | [`setup`]: first-run guidance, the administrator's home |
//! | `GET/POST /admin/users`, `/admin/devices`, `/admin/zones` | admin | [`admin`] |
//! | `POST /admin/users/{id}/disable`, `/enable`, `/password`, `/sessions/revoke`; `GET /admin/users/{id}/sessions` | admin | [`admin`]: an account's lifecycle |
//! | `GET /audit` | auditor | [`audit`] trail, chain status, signed heads |
//! | `GET /desk?scan=`, `POST /desk/issue`, `POST /desk/return` | custodian | [`desk`]: the scan desk |
//! | `GET/POST /signouts/new` | custodian | [`desk`]: sign-out requests |
//! | `GET /signouts/check.json?borrower=&carrier_id=&carriers=` | custodian | [`borrower`]: the issue rules, asked while the sign-out form is filled in |
//! | `GET /signouts/list?q=&state=&sort=&order=&cursor=` | custodian, security officer | [`signout_list`]: every sign-out, searched, sorted and paged ([`paging`]) |
//! | `GET /carriers?q=&state=`, `GET/POST /carriers/new` | custodian | [`custodian`]: register, search, registration |
//! | `GET /carriers/{id}`, `GET /carriers/{id}/label.svg` | custodian, security officer | [`custodian`]: a carrier's page and printable label |
//! | `GET /labels?ids=&layout=sheet\|roll` | custodian, security officer | [`labels`]: label print layouts |
//! | `GET /cabinets`, `GET /cabinets/{id}` | custodian | [`custodian`]: cabinet counts (清点) |
//! | `GET/POST /stocktakes`, `/stocktakes/{id}` (+ `/scans`, `/close`, `/resolutions`) | custodian | [`moves`]: stocktakes |
//! | `GET/POST /transfers`, `POST /transfers/{id}/handover`, `/receive` | custodian | [`moves`]: transfers and receipts |
//! | `GET/POST /collections`, `GET /collections/{id}`, `POST /collections/{id}/items/{carrier}` | custodian, security officer | [`moves`]: year-end collections |
//! | `GET /retention` | custodian, security officer | [`moves`]: retention review |
//! | `GET /approvals`, `POST /approvals/{id}/approve` | security officer | [`officer`]: approval queue |
//! | `GET/POST /people`, `GET /people/{id}`, `POST /people/{id}/edit`, `POST /people/{id}/leave`, `POST /people/{id}/clearance`, `POST /people/{id}/depart` | security officer | [`officer`], [`people`]: people, training, the departure sequence, 清退 |
//! | `GET /travel` | security officer | [`travel`]: who is abroad when (approved travel by date) |
//! | `GET /overdue`, `GET /missing` | security officer | [`officer`]: overdue sign-outs, missing carriers and leak deadlines |
//! | `GET /alerts/history?kind=&state=` | security officer | [`officer`]: handled alerts |
//! | `GET /reports`, `GET /reports/{register,overdue,missing}` | custodian, security officer | [`reports`]: printable A4 reports |
//! | `GET /reports/{stocktakes,destructions,collections}/{id}` | custodian, security officer | [`record_reports`]: printable A4 records |
//! | `GET /static/custos.css`, `/static/custos.js`, `/static/report.css` | anyone | [`assets`], [`reports`] |
//!
//! # Adding a page
//! 1. A module `web/NAME.rs` with thin handlers: take [`session::Page<C>`] for a GET (`C` is
//!    the capability whose roles may see the page, e.g. `CustodianCap`) or
//!    [`session::WebForm<C>`] for a POST (CSRF is already checked), call the same
//!    [`crate::service`] use case as the API (never SQL, never a rule of its own), render with
//!    maud inside [`layout::page`]. Answer a refused form by rendering it again with the typed
//!    values and the errors the use case named ([`layout::form_errors`],
//!    [`layout::field_error`]) and a 4xx status; answer success with a 303
//!    ([`session::see_other`]) back to a list (Post/Redirect/Get). A page that needs several
//!    capabilities takes a composite one ([`custodian::CustodianDesk`], [`officer::OfficerDesk`]).
//! 2. Routes in [`router`]; an entry in [`NAV`] with the same capability's `ROLES`.
//! 3. Texts as new [`i18n::Key`]s (both languages, or it does not compile).
//! 4. Stable ids and classes for the browser tests, listed below; a test in
//!    `server/tests/web.rs` that each role gets 200 or the 403 page.
//!
//! The ids, classes and data attributes the browser tests rely on are listed in
//! `web/DOM_HOOKS.md`.

pub mod account;
pub mod admin;
pub mod approvals;
pub mod assets;
pub mod audit;
pub mod borrower;
pub mod custodian;
pub mod datetime;
pub mod desk;
pub mod dispatches;
pub mod form;
pub mod guard;
pub mod home;
pub mod i18n;
pub mod label;
pub mod labels;
pub mod layout;
pub mod lifecycle;
pub mod lists;
pub mod moves;
pub mod officer;
pub mod paging;
pub mod people;
pub mod record_reports;
pub mod repairs;
pub mod reports;
pub use crate::replay;
pub mod session;
pub mod setup;
pub mod signout_list;
pub mod travel;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::Instrument;

use crate::AppState;
use crate::auth::capability::{AdminCap, AlertHandlerCap, AuditorCap, Capability, CustodyReader};
use crate::domain::role::Role;
use custodian::CustodianDesk;
use i18n::Key;
use officer::OfficerDesk;
use session::{WebSession, see_other};

/// The Content-Security-Policy of every page: this origin only; no inline script or style
/// (the script and stylesheet are files), no plugins, no framing, forms post here only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

/// A navigation entry: a page and the roles that may open it.
#[derive(Debug)]
pub struct NavItem {
    /// The page.
    pub path: &'static str,
    /// Its name.
    pub label: Key,
    /// The roles of the capability its handler takes (keep them the same).
    pub roles: &'static [Role],
}

/// The navigation, in order; `/` sends a user to the first entry their roles allow.
pub const NAV: &[NavItem] = &[
    NavItem {
        path: "/officer",
        label: Key::NavOfficerHome,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/guard",
        label: Key::NavGuard,
        roles: AlertHandlerCap::ROLES,
    },
    NavItem {
        path: "/desk",
        label: Key::NavDesk,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/carriers",
        label: Key::NavCarriers,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/signouts/new",
        label: Key::NavSignoutNew,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/signouts/list",
        label: Key::NavSignoutList,
        roles: CustodyReader::ROLES,
    },
    NavItem {
        path: "/cabinets",
        label: Key::NavCabinets,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/stocktakes",
        label: Key::NavStocktakes,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/transfers",
        label: Key::NavTransfers,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/collections",
        label: Key::NavCollections,
        roles: CustodyReader::ROLES,
    },
    NavItem {
        path: "/retention",
        label: Key::NavRetention,
        roles: CustodyReader::ROLES,
    },
    NavItem {
        path: "/repairs",
        label: Key::NavRepairs,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/dispatches",
        label: Key::NavDispatches,
        roles: CustodianDesk::ROLES,
    },
    NavItem {
        path: "/approvals",
        label: Key::NavApprovals,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/people",
        label: Key::NavPeople,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/travel",
        label: Key::NavTravel,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/overdue",
        label: Key::NavOverdue,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/missing",
        label: Key::NavMissing,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/alerts/history",
        label: Key::NavAlertHistory,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/notifications",
        label: Key::NavNotifications,
        roles: OfficerDesk::ROLES,
    },
    NavItem {
        path: "/reports",
        label: Key::NavReports,
        roles: CustodyReader::ROLES,
    },
    NavItem {
        path: "/admin/start",
        label: Key::NavSetup,
        roles: AdminCap::ROLES,
    },
    NavItem {
        path: "/admin/users",
        label: Key::NavUsers,
        roles: AdminCap::ROLES,
    },
    NavItem {
        path: "/admin/devices",
        label: Key::NavDevices,
        roles: AdminCap::ROLES,
    },
    NavItem {
        path: "/admin/zones",
        label: Key::NavZones,
        roles: AdminCap::ROLES,
    },
    NavItem {
        path: "/audit",
        label: Key::NavAudit,
        roles: AuditorCap::ROLES,
    },
];

/// The pages, to be merged beside the API (they add no fallback of their own).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/lang/{code}", get(session::switch_language))
        .route("/officer", get(home::officer_home))
        .route("/guard", get(guard::console))
        .route("/guard/status.json", get(guard::status_json))
        .route("/admin/start", get(setup::start))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}/disable", post(admin::disable_user))
        .route("/admin/users/{id}/enable", post(admin::enable_user))
        .route("/admin/users/{id}/password", post(admin::reset_password))
        .route("/admin/users/{id}/sessions", get(admin::user_sessions))
        .route(
            "/admin/users/{id}/sessions/revoke",
            post(admin::revoke_sessions),
        )
        .route(
            account::PASSWORD_PAGE,
            get(account::password_page).post(account::change_password),
        )
        .route(
            "/admin/devices",
            get(admin::devices).post(admin::register_device),
        )
        .route("/admin/zones", get(admin::zones).post(admin::create_zone))
        .route("/audit", get(audit::trail))
        .route("/desk", get(desk::desk))
        .route("/desk/issue", post(desk::issue))
        .route("/desk/return", post(desk::return_carrier))
        .route(
            "/signouts/new",
            get(desk::new_signout).post(desk::request_signout),
        )
        .route("/signouts/check.json", get(borrower::check_json))
        .route("/signouts/list", get(signout_list::signouts_page))
        .route("/carriers", get(lists::carriers))
        .route(
            "/carriers/new",
            get(custodian::new_carrier).post(custodian::create_carrier),
        )
        .route("/carriers/{id}", get(custodian::carrier))
        .route("/carriers/{id}/label.svg", get(custodian::label))
        .route("/carriers/{id}/missing", post(lifecycle::report_missing))
        .route("/carriers/{id}/found", post(lifecycle::report_found))
        .route(
            "/carriers/{id}/correct",
            get(lifecycle::correct_form).post(lifecycle::correct),
        )
        .route("/incidents/{id}", get(lifecycle::incident))
        .route("/incidents/{id}/told", post(lifecycle::told))
        .route("/labels", get(labels::labels))
        .route(
            "/stocktakes",
            get(moves::stocktakes).post(moves::open_stocktake),
        )
        .route("/stocktakes/{id}", get(moves::stocktake))
        .route("/stocktakes/{id}/scans", post(moves::scan))
        .route("/stocktakes/{id}/close", post(moves::close))
        .route("/stocktakes/{id}/resolutions", post(moves::resolve))
        .route(
            "/transfers",
            get(moves::transfers_page).post(moves::request_transfer),
        )
        .route("/transfers/{id}/handover", post(moves::handover))
        .route("/transfers/{id}/receive", post(moves::receive))
        .route(
            "/collections",
            get(moves::collections_page).post(moves::open_collection),
        )
        .route("/collections/{id}", get(moves::collection_page))
        .route(
            "/collections/{id}/items/{carrier}",
            post(moves::close_collection_item),
        )
        .route("/retention", get(moves::retention_page))
        .route("/repairs", get(repairs::repairs_page).post(repairs::send))
        .route("/repairs/{id}/return", post(repairs::return_repair))
        .route(
            "/dispatches",
            get(dispatches::dispatches_page).post(dispatches::request_dispatch),
        )
        .route("/dispatches/{id}/send", post(dispatches::send))
        .route("/dispatches/{id}/delivered", post(dispatches::delivered))
        .route("/cabinets", get(custodian::cabinets))
        .route("/cabinets/{id}", get(custodian::cabinet))
        .route("/approvals", get(officer::approvals))
        .route("/approvals/{id}/approve", post(officer::approve))
        .route("/approvals/{id}/reject", post(officer::reject))
        .route("/requests/{kind}/{id}/approve", post(approvals::approve))
        .route("/requests/copies/{id}/make", post(approvals::make_copies))
        .route("/carriers/{id}/copies", post(approvals::request_copies))
        .route(
            "/carriers/{id}/destructions",
            post(approvals::request_destruction),
        )
        .route(
            "/carriers/{id}/reclassifications",
            post(approvals::request_reclassification),
        )
        .route(
            "/destructions/{id}/record",
            get(approvals::record_page).post(approvals::record),
        )
        .route("/requests/{kind}/{id}/reject", post(approvals::reject))
        .route("/people", get(officer::people).post(officer::create_person))
        .route("/people/{id}", get(people::person))
        .route("/people/{id}/edit", post(people::edit))
        .route("/people/{id}/leave", post(people::leave))
        .route("/people/{id}/clearance", post(people::clearance))
        .route("/people/{id}/depart", post(people::depart))
        .route("/travel", get(travel::register))
        .route("/overdue", get(officer::overdue))
        .route("/missing", get(officer::missing))
        .route("/alerts/history", get(officer::alert_history))
        .route("/notifications", get(officer::notifications))
        .route(assets::CSS.path, get(assets::css))
        .route(assets::JS.path, get(assets::js))
        .route("/reports", get(reports::index))
        .route("/reports/register", get(reports::register))
        .route("/reports/overdue", get(reports::overdue))
        .route("/reports/missing", get(reports::missing))
        .route("/reports/stocktakes/{id}", get(record_reports::stocktake))
        .route(
            "/reports/destructions/{id}",
            get(record_reports::destruction),
        )
        .route("/reports/collections/{id}", get(record_reports::collection))
        .route(reports::REPORT_CSS.path, get(reports::report_css))
        .layer(DefaultBodyLimit::max(session::FORM_LIMIT))
        .layer(middleware::from_fn(protect))
        .layer(middleware::from_fn(trace))
}

/// `GET /`: the first page the roles allow, or a note that there is none yet.
async fn home(session: WebSession) -> Response {
    match NAV.iter().find(|item| session.may(item.roles)) {
        Some(item) => see_other(item.path),
        None => {
            let lang = session.lang;
            layout::message_page(
                lang,
                Some(&session),
                Key::HomeTitle,
                i18n::t(lang, Key::HomeNoPages),
            )
            .into_response()
        }
    }
}

/// The security headers of every page and asset.
async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One span per request, named by the matched route (never the query: it can hold filters;
/// never headers: they carry the session).
async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("page", method = %request.method(), %route);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_home_page() {
        let home = |role| {
            NAV.iter()
                .find(|item: &&NavItem| item.roles.contains(&role))
        };
        for role in Role::ALL {
            assert!(home(role).is_some(), "{role}");
        }
        assert_eq!(home(Role::Custodian).unwrap().path, "/desk");
        assert_eq!(home(Role::SecurityOfficer).unwrap().path, "/officer");
        assert_eq!(home(Role::Guard).unwrap().path, "/guard");
    }

    #[test]
    fn the_desk_capabilities_admit_exactly_their_first_role() {
        use crate::auth::capability::{
            AlertReaderCap, CustodianCap, PeopleReaderCap, SecurityOfficerCap,
        };
        // The composite capabilities check the first, then the readers; every role of the
        // first must pass the readers, or a page would answer 403 for a role its NAV shows.
        for role in CustodianCap::ROLES {
            assert!(PeopleReaderCap::ROLES.contains(role));
        }
        for role in SecurityOfficerCap::ROLES {
            assert!(PeopleReaderCap::ROLES.contains(role));
            assert!(AlertReaderCap::ROLES.contains(role));
        }
        assert_eq!(CustodianDesk::ROLES, CustodianCap::ROLES);
        assert_eq!(OfficerDesk::ROLES, SecurityOfficerCap::ROLES);
    }

    #[test]
    fn the_policy_allows_nothing_inline_or_foreign() {
        assert!(!CSP.contains("unsafe"));
        assert!(!CSP.contains("http"));
        assert!(CSP.contains("frame-ancestors 'none'"));
    }
}
