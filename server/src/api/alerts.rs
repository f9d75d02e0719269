//! Alerts: `GET /alerts` and `GET /alerts/{id}` (guard, custodian, security officer),
//! `POST /alerts/{id}/ack` and `POST /alerts/{id}/resolve {note}` (guard, security officer),
//! and the live stream `GET /alerts/stream` (guard, security officer).
//!
//! # The live stream (Server-Sent Events)
//! On connect the server subscribes to the alert hub first and only then reads the highest
//! alert id, which it sends as the first event: `event: hello`, `data: {"max_id":"N"}`. Every
//! alert raised or changed after that arrives as `event: alert` with the same JSON as a list
//! item; changes of one alert less than a second apart are sent once, with its latest state
//! (see [`crate::alert_hub`]: each event is read and encoded once for all consoles). A console
//! that falls more than [`crate::alert_hub::HUB_CAPACITY`] events behind gets
//! `event: resync`, `data: {"missed":N}`: it must re-read the list (`GET /alerts?after=...`
//! for new ones, or the whole open list), because alerts were skipped. An alert that cannot be
//! loaded is also answered with `resync` rather than silently dropped. A comment line keeps the
//! connection alive every 15 s. Browsers authenticate with the session cookie (a GET needs no
//! CSRF header). The stream ends when the server shuts down, and when its session ends
//! (logout, expiry, revocation, a disabled account, a departed person:
//! [`accounts::session_end`]); the session is not only checked at connect.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Query};
use super::openapi::{InputRefusals, SessionRefusals, Unknown};
use crate::AppState;
use crate::alert_hub::Frame;
use crate::auth::Authenticated;
use crate::auth::capability::{AlertHandlerCap, AlertReaderCap};
use crate::domain::alert::{AlertKind, AlertState};
use crate::domain::ids::is_valid_name;
use crate::domain::lifecycle::RemovalOutcome;
use crate::service::lists::Q_MAX;
use crate::service::{ServiceError, accounts, alerts};
use crate::store::alerts::{AlertFilter, AlertView, LIST_DEFAULT, LIST_MAX};

/// Interval of the keep-alive comments on the live stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /alerts` query. Every parameter is optional; an empty value means "no filter".
/// `after=N` lists ids above N (what is new since a stream's `hello`), `before=N` ids below N
/// (the next page back); `limit` is 1 to 1000, default 100.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `open`, `acknowledged` or `resolved`.
    #[serde(default)]
    #[param(value_type = Option<AlertState>)]
    state: Option<String>,
    /// An alert kind.
    #[serde(default)]
    #[param(value_type = Option<AlertKind>)]
    kind: Option<String>,
    /// Alerts about this carrier (its numeric id).
    #[serde(default)]
    #[param(pattern = "^(0|-?[1-9][0-9]{0,17})$")]
    carrier_id: Option<String>,
    /// Alerts about this device.
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    device_id: Option<String>,
    /// 1 to 1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only ids above this one (what is new since a stream's `hello`).
    #[serde(default)]
    #[param(pattern = "^(0|-?[1-9][0-9]{0,17})$")]
    after: Option<String>,
    /// Only ids below this one (the next page back).
    #[serde(default)]
    #[param(pattern = "^(0|-?[1-9][0-9]{0,17})$")]
    before: Option<String>,
    /// The cursor from the previous page's `Link: rel="next"` header (opaque).
    #[serde(default)]
    #[param(schema_with = super::paging::cursor_schema)]
    cursor: Option<String>,
    /// Search words (split at white space; at most 200 characters): each must be in the
    /// kind, the device, the carrier's control number or the resolution note (any case).
    #[serde(default)]
    #[param(schema_with = super::paging::q_schema)]
    q: Option<String>,
    /// The order: newest first (`-id`, the default) or oldest first (`id`).
    #[serde(default)]
    #[param(schema_with = super::paging::alert_sort_schema)]
    sort: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn bad(field: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!("{field} must be {expected}"))
}

fn number(value: &Option<String>, field: &str) -> Result<Option<i64>, ApiError> {
    present(value)
        .map(|v| v.parse().map_err(|_| bad(field, "a numeric id")))
        .transpose()
}

/// The search text, trimmed (none if blank); longer than [`Q_MAX`] characters is a 400.
fn search_text(q: &Option<String>) -> Result<Option<String>, ApiError> {
    let q = q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > Q_MAX) {
        return Err(bad("q", "at most 200 characters"));
    }
    Ok(q.map(str::to_owned))
}

impl ListQuery {
    fn filter(&self) -> Result<AlertFilter, ApiError> {
        let state = present(&self.state)
            .map(|s| {
                AlertState::from_name(s)
                    .ok_or_else(|| bad("state", "open, acknowledged or resolved"))
            })
            .transpose()?;
        let kind = present(&self.kind)
            .map(|k| AlertKind::from_name(k).ok_or_else(|| bad("kind", "an alert kind")))
            .transpose()?;
        let device_id = present(&self.device_id)
            .map(|d| {
                if is_valid_name(d) {
                    Ok(d.to_owned())
                } else {
                    Err(bad("device_id", "a device id"))
                }
            })
            .transpose()?;
        let limit = match present(&self.limit) {
            None => LIST_DEFAULT,
            Some(l) => l
                .parse()
                .ok()
                .filter(|l| (1..=LIST_MAX).contains(l))
                .ok_or_else(|| bad("limit", "1 to 1000"))?,
        };
        Ok(AlertFilter {
            state,
            kind,
            carrier_id: number(&self.carrier_id, "carrier_id")?,
            device_id,
            after: number(&self.after, "after")?,
            before: number(&self.before, "before")?,
            limit,
            q: search_text(&self.q)?,
            handled_only: false,
            oldest_first: present(&self.sort) == Some("id"),
        })
    }
}

/// `POST /alerts/{id}/resolve` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// What was found and done: required, 1 to 2000 characters, not blank, no control
    /// characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 2000
    )]
    note: String,
    /// For an `unauthorized_removal` only: how it ended. Any outcome but `stopped_at_gate`
    /// marks the carrier missing (with an incident record); on another kind, 400.
    #[serde(default)]
    outcome: Option<RemovalOutcome>,
}

/// An id that is not a number cannot exist: 404 like any unknown id.
fn alert_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

/// The alerts, newest first (guard, custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "alerts_list",
    path = "/alerts",
    tag = "alerts",
    params(ListQuery),
    responses(
        (status = 200, description = "Matching alerts, newest first (oldest first with `sort=id`)", body = Vec<AlertView>,
            headers(("link" = String, description = "`<URI>; rel=\"next\"` while more remain"))),
        (status = 400, description = "A malformed parameter (`bad_request`)", body = ErrorBody),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn list(
    cap: AlertReaderCap,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = query.filter()?;
    if present(&query.sort).is_some_and(|s| s != "-id" && s != "id") {
        return Err(bad("sort", "-id or id"));
    }
    let page = alerts::page(&state, &cap, filter, query.cursor.as_deref()).await?;
    Ok(super::paging::answer(&uri, page))
}

/// One alert (guard, custodian, security officer).
#[utoipa::path(
    get,
    operation_id = "alerts_one",
    path = "/alerts/{id}",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert", body = AlertView),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn one(
    cap: AlertReaderCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<AlertView>, ApiError> {
    let id = alert_id(&id)?;
    Ok(axum::Json(alerts::one(&state, &cap, id).await?))
}

/// Acknowledge an alert: open → acknowledged (guard, security officer).
#[utoipa::path(
    post,
    operation_id = "alerts_acknowledge",
    path = "/alerts/{id}/ack",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert, now `acknowledged`", body = AlertView),
        (status = 409, description = "Not open (`conflict`)", body = ErrorBody),
        Unknown,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn acknowledge(
    cap: AlertHandlerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<AlertView>, ApiError> {
    let id = alert_id(&id)?;
    Ok(axum::Json(alerts::acknowledge(&state, &cap, id).await?))
}

/// Resolve an alert with a note: open or acknowledged → resolved (guard, security officer).
#[utoipa::path(
    post,
    operation_id = "alerts_resolve",
    path = "/alerts/{id}/resolve",
    tag = "alerts",
    params(("id" = String, Path, description = "Alert id")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "The alert, now `resolved`", body = AlertView),
        (status = 409, description = "Already resolved (`conflict`)", body = ErrorBody),
        (status = 422, description = "An `outcome` for an alert that is not an unauthorised removal (`outcome_not_applicable`)", body = ErrorBody),
        Unknown,
        InputRefusals,
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn resolve(
    cap: AlertHandlerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<ResolveBody>,
) -> Result<axum::Json<AlertView>, ApiError> {
    let id = alert_id(&id)?;
    match alerts::resolve_with_outcome(&state, &cap, id, &body.note, body.outcome).await {
        Ok(view) => Ok(axum::Json(view)),
        // Whether an outcome applies depends on the alert, not on the request's form: a rule
        // (422), so a request the document calls valid is not answered as malformed.
        Err(ServiceError::Invalid(problems))
            if problems
                .iter()
                .any(|p| p.field == "outcome" && p.code == "not_applicable") =>
        {
            Err(ApiError::rule(
                "outcome_not_applicable",
                "outcome is only for unauthorized_removal alerts",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the live stream holds between events.
struct Feed {
    changes: broadcast::Receiver<Frame>,
    stopping: watch::Receiver<bool>,
    hello: Option<i64>,
}

fn resync(missed: u64) -> Event {
    Event::default()
        .event("resync")
        .data(json!({ "missed": missed }).to_string())
}

async fn next_event(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    if let Some(max) = feed.hello.take() {
        let hello = Event::default()
            .event("hello")
            .data(json!({ "max_id": max.to_string() }).to_string());
        return Some((Ok(hello), feed));
    }
    let got = tokio::select! {
        biased;
        _ = feed.stopping.wait_for(|stopping| *stopping) => None,
        got = feed.changes.recv() => Some(got),
    };
    let event = match got {
        None | Some(Err(RecvError::Closed)) => return None,
        Some(Err(RecvError::Lagged(missed))) => {
            tracing::info!(missed, "alert stream lagged; asking for resync");
            resync(missed)
        }
        Some(Ok(Frame::Alert { json, .. })) => Event::default().event("alert").data(&*json),
        Some(Ok(Frame::Resync)) => resync(1),
    };
    Some((Ok(event), feed))
}

/// The live stream of alert changes, as Server-Sent Events (guard, security officer).
///
/// First `event: hello` with `{"max_id": "N"}`; then `event: alert` with an `AlertView` for
/// every alert raised or changed (changes of one alert less than a second apart are sent once,
/// with its latest state); `event: resync` with `{"missed": N}` when the console fell behind
/// and must re-read the list.
#[utoipa::path(
    get,
    operation_id = "alerts_stream",
    path = "/alerts/stream",
    tag = "alerts",
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream", body = String),
        SessionRefusals,
    ),
    security(("bearer" = []), ("session_cookie" = []))
)]
pub async fn stream(
    caller: Authenticated,
    cap: AlertHandlerCap,
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribed now, before anything else: the stream lives as long as its session.
    let session_end = accounts::session_end(&state, &caller);
    let reader = cap.reader();
    // Subscribe before reading the highest id: an alert committed around the connect is then
    // counted in `max_id` or announced on the stream (perhaps both), never neither.
    let changes = alerts::subscribe(&state, &reader);
    let max = alerts::max_id(&state, &reader).await?;
    let feed = Feed {
        stopping: state.stopping(),
        changes,
        hello: Some(max),
    };
    let events = futures_util::stream::unfold(feed, next_event).take_until(session_end);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let text = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        serde_json::from_value(serde_json::Value::Object(pairs_to_object(&text))).unwrap()
    }

    fn pairs_to_object(text: &str) -> serde_json::Map<String, serde_json::Value> {
        text.split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
            .collect()
    }

    #[test]
    fn empty_parameters_mean_no_filter() {
        let f = query(&[("state", ""), ("kind", "")]).filter().unwrap();
        assert_eq!(
            f,
            AlertFilter {
                limit: LIST_DEFAULT,
                ..AlertFilter::default()
            }
        );
    }

    #[test]
    fn parameters_are_checked() {
        let f = query(&[
            ("state", "open"),
            ("kind", "overdue"),
            ("carrier_id", "7"),
            ("device_id", "gate-1"),
            ("limit", "5"),
            ("after", "3"),
        ])
        .filter()
        .unwrap();
        assert_eq!(f.state, Some(AlertState::Open));
        assert_eq!(f.kind, Some(AlertKind::Overdue));
        assert_eq!((f.carrier_id, f.after, f.limit), (Some(7), Some(3), 5));
        for bad in [
            ("state", "closed"),
            ("kind", "fire"),
            ("carrier_id", "x"),
            ("device_id", "a b"),
            ("limit", "0"),
            ("limit", "1001"),
            ("after", "-"),
        ] {
            assert!(query(&[bad]).filter().is_err(), "{bad:?}");
        }
    }
}
