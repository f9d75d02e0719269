//! The guard console (`/guard`, guards and security officers): live alerts, reader status per
//! device, and the latest gate passages, on one large touch-friendly page.
//!
//! The server renders the first view (open and acknowledged alerts, readers, passages). The
//! script then keeps it live: it listens to `GET /api/v1/alerts/stream` and re-reads
//! `GET /api/v1/alerts` on `hello` (every connect and reconnect) and on `resync`; it polls
//! `GET /guard/status.json` for readers and passages; it acknowledges and resolves through the
//! JSON API with the session's CSRF token. The script builds the same DOM as [`alert_item`],
//! [`reader_item`] and [`passage_item`] (ids and classes are listed in `web/mod.rs`).
//!
//! An `unauthorized_removal` is shown as a full-width red banner (gate, direction, control
//! number and level, badge holders, time) and sounds a repeating tone while it is open.
//! Carrier titles never appear: alerts and passages carry control numbers and levels only.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use maud::{Markup, html};
use serde::Serialize;
use serde_json::{Value, json};

use super::i18n::{self, Key, Lang, t};
use super::layout::{self, json_block};
use super::session::{Page, WebError};
use crate::AppState;
use crate::auth::capability::AlertHandlerCap;
use crate::domain::alert::{AlertKind, AlertState, Severity};
use crate::domain::level::Level;
use crate::domain::liveness::Liveness;
use crate::domain::time::Timestamp;
use crate::service::alerts;
use crate::service::console::{self, DeviceLiveness};
use crate::store::alerts::{AlertFilter, AlertView};
use crate::store::console::Passage;

/// How many passages the console lists.
pub const PASSAGES_SHOWN: u32 = 15;
/// How many live alerts of each state the first view loads.
const ALERTS_LOADED: u32 = 200;
/// How often the script polls `/guard/status.json`, in milliseconds.
pub const POLL_MS: u32 = 5_000;

/// A device on the console, with its labels in the page language.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderView {
    device_id: String,
    kind: &'static str,
    kind_label: &'static str,
    ok: bool,
    state: &'static str,
    state_label: &'static str,
    reader: Option<String>,
    last_heartbeat: Option<Timestamp>,
    place: Option<String>,
}

/// A carrier in a passage, with its level's name.
#[derive(Debug, Clone, Serialize)]
pub struct CarrierView {
    control_no: String,
    level: String,
    level_label: &'static str,
}

/// A passage on the console.
#[derive(Debug, Clone, Serialize)]
pub struct PassageView {
    event_id: String,
    device_id: String,
    at: Option<Timestamp>,
    direction: Option<String>,
    direction_label: &'static str,
    carriers: Vec<CarrierView>,
    badges: i64,
    badge_holders: Vec<String>,
    place: Option<String>,
}

/// `GET /guard/status.json`: readers and passages, for the console's poll.
#[derive(Debug, Clone, Serialize)]
pub struct GuardStatus {
    readers: Vec<ReaderView>,
    passages: Vec<PassageView>,
}

fn reader_view(lang: Lang, d: DeviceLiveness) -> ReaderView {
    let (state, key, reader) = match d.liveness {
        Liveness::Ok => ("ok", Key::ReaderOk, None),
        Liveness::Never => ("never", Key::ReaderNever, None),
        Liveness::Silent => ("silent", Key::ReaderSilent, None),
        Liveness::Fault { reader } => ("fault", Key::ReaderFault, reader),
        Liveness::Degraded { reader } => ("degraded", Key::ReaderDegraded, Some(reader)),
    };
    ReaderView {
        device_id: d.device_id.to_string(),
        kind: d.kind.as_str(),
        kind_label: t(lang, i18n::device_kind(d.kind)),
        ok: state == "ok",
        state,
        state_label: t(lang, key),
        reader,
        last_heartbeat: d.last_heartbeat,
        place: d.place,
    }
}

fn passage_view(lang: Lang, p: Passage) -> PassageView {
    PassageView {
        event_id: p.event_id.to_string(),
        device_id: p.device_id,
        at: p.at,
        direction_label: p
            .direction
            .as_deref()
            .and_then(i18n::direction)
            .map_or("", |k| t(lang, k)),
        direction: p.direction,
        carriers: p
            .carriers
            .into_iter()
            .map(|c| CarrierView {
                level_label: i18n::level_code(&c.level).map_or("", |k| t(lang, k)),
                control_no: c.control_no,
                level: c.level,
            })
            .collect(),
        badges: p.badges,
        badge_holders: p.badge_holders,
        place: p.place,
    }
}

async fn status(state: &AppState, page: &Page<AlertHandlerCap>) -> Result<GuardStatus, WebError> {
    let lang = page.session.lang;
    let site = console::status(state, &page.cap, PASSAGES_SHOWN)
        .await
        .map_err(|e| page.session.internal(e))?;
    Ok(GuardStatus {
        readers: site
            .devices
            .into_iter()
            .map(|d| reader_view(lang, d))
            .collect(),
        passages: site
            .passages
            .into_iter()
            .map(|p| passage_view(lang, p))
            .collect(),
    })
}

/// `GET /guard/status.json`.
pub async fn status_json(
    page: Page<AlertHandlerCap>,
    State(state): State<AppState>,
) -> Result<Json<GuardStatus>, WebError> {
    Ok(Json(status(&state, &page).await?))
}

/// `GET /guard`.
pub async fn console(
    page: Page<AlertHandlerCap>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let reader = page.cap.reader();
    let mut alerts = Vec::new();
    for live in [AlertState::Open, AlertState::Acknowledged] {
        let filter = AlertFilter {
            state: Some(live),
            limit: ALERTS_LOADED,
            ..AlertFilter::default()
        };
        let mut some = alerts::list(&state, &reader, filter)
            .await
            .map_err(|e| page.session.internal(e))?;
        alerts.append(&mut some);
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.id.parse::<i64>().unwrap_or(0)));
    let status = status(&state, &page).await?;
    let lang = page.session.lang;
    Ok(render(lang, &page, &alerts, &status))
}

/// Which filter group an alert belongs to: gate alarms (someone at a door), device trouble,
/// or reminders (everything that is not happening at a door right now: overdue, missing,
/// cabinets, deadlines, and kinds added later).
pub fn group(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::UnauthorizedRemoval
        | AlertKind::ClearanceViolation
        | AlertKind::UnknownTag
        | AlertKind::TagCloneSuspected => "gate",
        AlertKind::ReaderSilent
        | AlertKind::ReaderFault
        | AlertKind::DeviceAuthFailed
        | AlertKind::ReplayRejected
        | AlertKind::NotificationFailed => "device",
        _ => "reminder",
    }
}

/// How an unauthorised removal ended, as the guard records it with the resolution (the
/// resolve request's `outcome`; any but `stopped_at_gate` makes the carrier missing).
const OUTCOMES: [(&str, Key); 3] = [
    ("stopped_at_gate", Key::OutcomeStopped),
    ("brought_back", Key::OutcomeBroughtBack),
    ("person_left", Key::OutcomePersonLeft),
];

/// The filter groups, in the order of the buttons.
const GROUPS: [(&str, Key); 4] = [
    ("all", Key::FilterAll),
    ("gate", Key::FilterGate),
    ("reminder", Key::FilterReminder),
    ("device", Key::FilterDevice),
];

/// The sticky count of open (unacknowledged) alerts, a link to the newest one. The script
/// keeps it current and flashes it (and the tab title) on every new alert.
fn open_count(lang: Lang, alerts: &[AlertView]) -> Markup {
    let open = alerts
        .iter()
        .filter(|a| a.state == AlertState::Open)
        .count();
    html! {
        a #alarm-count href="#alerts" data-open=(open) data-flash="false" {
            span.count-label { (t(lang, Key::OpenAlarms)) }
            " "
            strong.count { (open) }
        }
    }
}

/// The buttons that filter the alerts by group (all, gate alarms, reminders, devices).
fn filter_bar(lang: Lang) -> Markup {
    html! {
        div #alert-filter role="group" aria-label=(t(lang, Key::FilterAlerts)) {
            @for (group, key) in GROUPS {
                button.filter type="button" data-group=(group)
                    aria-pressed=(if group == "all" { "true" } else { "false" }) {
                    (t(lang, key))
                    " " span.filter-count data-group=(group) {}
                }
            }
        }
    }
}

/// Whether the carriers of a removal turned back at the gate (a later `turned_back` event
/// marked the alert's detail) rather than leaving.
fn turned_back(a: &AlertView) -> bool {
    a.detail.get("turned_back").and_then(Value::as_bool) == Some(true)
}

fn is_banner(alert: &AlertView) -> bool {
    alert.kind == AlertKind::UnauthorizedRemoval
}

fn render(
    lang: Lang,
    page: &Page<AlertHandlerCap>,
    alerts: &[AlertView],
    status: &GuardStatus,
) -> Markup {
    let (banners, cards): (Vec<&AlertView>, Vec<&AlertView>) =
        alerts.iter().partition(|a| is_banner(a));
    let places = places(status);
    let content = html! {
        div #guard data-poll-ms=(POLL_MS) {
            (json_block("custos-i18n", &script_texts(lang, &places)))
            div.console-bar {
                h1 { (t(lang, Key::GuardTitle)) }
                (open_count(lang, alerts))
                span #live-status data-live="off" { (t(lang, Key::LiveDisconnected)) }
                button #sound-enable type="button" data-on="false" { (t(lang, Key::SoundEnable)) }
                (filter_bar(lang))
            }
            noscript { p.notice { (t(lang, Key::NoScript)) } }
            ul #banners aria-live="assertive" {
                @for alert in &banners { (alert_item_at(lang, alert, &places)) }
            }
            div.guard-grid {
                section #alerts .panel {
                    h2 { (t(lang, Key::LiveAlerts)) }
                    p #alert-empty hidden[!alerts.is_empty()] { (t(lang, Key::NoAlerts)) }
                    ul #alert-list aria-live="polite" {
                        @for alert in &cards { (alert_item_at(lang, alert, &places)) }
                    }
                }
                div.side {
                    section #readers .panel {
                        h2 { (t(lang, Key::ReaderStatus)) }
                        @if status.readers.is_empty() { p.empty { (t(lang, Key::NoDevices)) } }
                        ul #reader-list {
                            @for r in &status.readers { (reader_item(lang, r)) }
                        }
                    }
                    section #passages .panel {
                        h2 { (t(lang, Key::GatePassages)) }
                        p #passage-empty hidden[!status.passages.is_empty()] { (t(lang, Key::NoPassages)) }
                        ol #passage-list {
                            @for p in &status.passages { (passage_item(lang, p)) }
                        }
                    }
                }
            }
        }
    };
    let session = &page.session;
    layout::page(
        lang,
        Some(session),
        session.path(),
        t(lang, Key::GuardTitle),
        "guard",
        content,
    )
}

/// A fact line of an alert: `<div class="fact" data-field=NAME><dt>label</dt><dd>value</dd>`.
fn fact(lang: Lang, field: &str, label: Key, value: Markup) -> Markup {
    html! {
        div.fact data-field=(field) {
            dt { (t(lang, label)) }
            dd { (value) }
        }
    }
}

fn level_name(lang: Lang, code: &str) -> &'static str {
    i18n::level_code(code).map_or("", |k| t(lang, k))
}

/// One live alert: a banner for an unauthorized removal, a card otherwise. The script builds
/// the same structure for alerts that arrive later.
pub fn alert_item(lang: Lang, a: &AlertView) -> Markup {
    alert_item_at(lang, a, &HashMap::new())
}

/// Each device's place by zone names, for the alerts' gate facts.
fn places(status: &GuardStatus) -> HashMap<String, String> {
    status
        .readers
        .iter()
        .filter_map(|r| r.place.clone().map(|p| (r.device_id.clone(), p)))
        .collect()
}

/// A device as the guard knows it: its id and where it is (`gate-1 · 保密室 ⇄ 大门外`).
fn device_with_place(device: &str, places: &HashMap<String, String>) -> Markup {
    html! {
        span.device-id { (device) }
        @if let Some(place) = places.get(device) { " · " span.place { (place) } }
    }
}

/// [`alert_item`] with the devices' places.
pub fn alert_item_at(lang: Lang, a: &AlertView, places: &HashMap<String, String>) -> Markup {
    let banner = is_banner(a);
    let gate = a
        .detail
        .get("gate")
        .and_then(Value::as_str)
        .or(a.device_id.as_deref());
    let direction = a.detail.get("direction").and_then(Value::as_str);
    let holders: Vec<&str> = a
        .detail
        .get("badge_holders")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let class = if banner { "alert-banner" } else { "alert-card" };
    let back = turned_back(a);
    html! {
        li class=(class) data-alert-id=(a.id) data-kind=(a.kind.as_str())
            data-state=(a.state.as_str()) data-severity=(a.severity.as_str())
            data-group=(group(a.kind)) data-turned-back=[banner.then_some(back)] {
            div.alert-head {
                @if banner {
                    strong.banner-title {
                        (t(lang, if back { Key::TurnedBackBanner } else { Key::UnauthorizedBanner }))
                    }
                }
                span.alert-kind { (t(lang, i18n::alert_kind(a.kind))) }
                span.severity data-severity=(a.severity.as_str()) { (t(lang, i18n::severity(a.severity))) }
                span.state data-state=(a.state.as_str()) { (t(lang, i18n::alert_state(a.state))) }
                span.alert-line {
                    @if let Some(control_no) = &a.carrier_control_no { span.line-carrier { (control_no) } " " }
                    @if let Some(gate) = gate { span.line-gate { (gate) } " " }
                    span.line-time { (layout::time(a.raised_at)) }
                }
                button.expand type="button" data-alert-id=(a.id) aria-expanded="false" {
                    (t(lang, Key::ShowDetails))
                }
            }
            dl.facts {
                @if let Some(gate) = gate {
                    (fact(lang, "gate", if banner { Key::Gate } else { Key::Device }, device_with_place(gate, places)))
                }
                @if let Some(direction) = direction {
                    (fact(lang, "direction", Key::Direction, html! {
                        span data-direction=(direction) {
                            (i18n::direction(direction).map_or(direction, |k| t(lang, k)))
                        }
                    }))
                }
                @if banner {
                    (fact(lang, "movement", Key::Movement, html! {
                        span data-movement=(if back { "turned_back" } else { "left" }) {
                            (t(lang, if back { Key::MovementTurnedBack } else { Key::MovementLeft }))
                        }
                    }))
                }
                @if let Some(control_no) = &a.carrier_control_no {
                    (fact(lang, "carrier", Key::CarrierControlNo, html! {
                        span.carrier-no { (control_no) }
                        @if let Some(level) = &a.carrier_level {
                            " " span.level data-level=(level) { (level_name(lang, level)) }
                        }
                    }))
                }
                @if !holders.is_empty() {
                    (fact(lang, "badge_holder", Key::BadgeHolder, html! { (holders.join("、")) }))
                }
                (fact(lang, "time", Key::Time, layout::time(a.raised_at)))
                @if let Some(resumed) = a.detail.get("resumed_at").and_then(Value::as_str).and_then(|t| t.parse().ok()) {
                    (fact(lang, "resumed", Key::ReaderResumed, layout::time(resumed)))
                }
                @if a.occurrences > 1 {
                    (fact(lang, "occurrences", Key::Occurrences, html! { (a.occurrences) }))
                }
            }
            div.alert-actions {
                @if a.state == AlertState::Open {
                    button.ack type="button" data-alert-id=(a.id) { (t(lang, Key::Acknowledge)) }
                }
                @if banner {
                    label.outcome-label {
                        span { (t(lang, Key::OutcomeLabel)) }
                        select.resolve-outcome data-alert-id=(a.id) {
                            option value="" { (t(lang, Key::OutcomeNone)) }
                            @for (code, key) in OUTCOMES {
                                option value=(code) { (t(lang, key)) }
                            }
                        }
                    }
                }
                label.resolve-label {
                    span { (t(lang, Key::ResolveNote)) }
                    textarea.resolve-note data-alert-id=(a.id) rows="2" maxlength="2000" {}
                }
                button.resolve type="button" data-alert-id=(a.id) { (t(lang, Key::Resolve)) }
                p.action-error role="alert" hidden {}
            }
        }
    }
}

/// One device's status.
pub fn reader_item(lang: Lang, r: &ReaderView) -> Markup {
    html! {
        li.reader.reader-ok[r.ok].reader-down[!r.ok] data-device-id=(r.device_id)
            data-ok=(r.ok) data-state=(r.state) {
            span.lamp aria-hidden="true" {}
            span.reader-name {
                (r.device_id)
                @if let Some(place) = &r.place { " · " span.place { (place) } }
            }
            span.reader-kind { (r.kind_label) }
            span.reader-state {
                (r.state_label)
                @if let Some(reader) = &r.reader { " (" (reader) ")" }
            }
            span.reader-heartbeat {
                (t(lang, Key::LastHeartbeat)) ": "
                @match r.last_heartbeat {
                    Some(at) => (layout::time(at)),
                    None => (t(lang, Key::Never)),
                }
            }
        }
    }
}

/// One gate passage: time, gate, direction, control numbers and levels, badge count.
pub fn passage_item(lang: Lang, p: &PassageView) -> Markup {
    html! {
        li.passage data-event-id=(p.event_id) {
            span.passage-time {
                @if let Some(at) = p.at { (layout::time(at)) }
            }
            span.passage-gate {
                (p.device_id)
                @if let Some(place) = &p.place { " · " span.place { (place) } }
            }
            @if let Some(direction) = &p.direction {
                span.passage-direction data-direction=(direction) { (p.direction_label) }
            }
            span.passage-carriers {
                @for c in &p.carriers {
                    span.carrier-no data-level=(c.level) { (c.control_no) " " span.level { (c.level_label) } }
                }
            }
            @if !p.badge_holders.is_empty() {
                span.passage-badges.badge-holders { (t(lang, Key::BadgeHolder)) " " (p.badge_holders.join("、")) }
            } @else if p.badges > 0 {
                span.passage-badges { (t(lang, Key::Badges)) " " (p.badges) }
            }
        }
    }
}

/// The words the script needs to build alerts that arrive live, in the page language.
fn script_texts(lang: Lang, places: &HashMap<String, String>) -> Value {
    let kinds: serde_json::Map<String, Value> = AlertKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), json!(t(lang, i18n::alert_kind(*k)))))
        .collect();
    let states: serde_json::Map<String, Value> = [
        AlertState::Open,
        AlertState::Acknowledged,
        AlertState::Resolved,
    ]
    .iter()
    .map(|s| (s.as_str().to_owned(), json!(t(lang, i18n::alert_state(*s)))))
    .collect();
    let severities: serde_json::Map<String, Value> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .iter()
    .map(|s| (s.as_str().to_owned(), json!(t(lang, i18n::severity(*s)))))
    .collect();
    let levels: serde_json::Map<String, Value> =
        [Level::TopSecret, Level::Secret, Level::Confidential]
            .iter()
            .map(|l| (l.code().to_owned(), json!(t(lang, i18n::level(*l)))))
            .collect();
    let text = |k| json!(t(lang, k));
    let groups: serde_json::Map<String, Value> = AlertKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), json!(group(*k))))
        .collect();
    json!({
        "places": places,
        "groups": groups,
        "kinds": kinds,
        "states": states,
        "severities": severities,
        "levels": levels,
        "directions": { "in": text(Key::DirectionIn), "out": text(Key::DirectionOut) },
        "labels": {
            "banner": text(Key::UnauthorizedBanner),
            "banner_turned_back": text(Key::TurnedBackBanner),
            "movement": text(Key::Movement),
            "movement_left": text(Key::MovementLeft),
            "movement_turned_back": text(Key::MovementTurnedBack),
            "show_details": text(Key::ShowDetails),
            "hide_details": text(Key::HideDetails),
            "new_alert": text(Key::NewAlertTitle),
            "resumed": text(Key::ReaderResumed),
            "outcome": text(Key::OutcomeLabel),
            "outcome_none": text(Key::OutcomeNone),
            "outcomes": OUTCOMES.iter().map(|(code, key)| json!([code, text(*key)])).collect::<Vec<_>>(),
            "gate": text(Key::Gate),
            "device": text(Key::Device),
            "direction": text(Key::Direction),
            "carrier": text(Key::CarrierControlNo),
            "badge_holder": text(Key::BadgeHolder),
            "time": text(Key::Time),
            "occurrences": text(Key::Occurrences),
            "ack": text(Key::Acknowledge),
            "resolve": text(Key::Resolve),
            "note": text(Key::ResolveNote),
            "note_required": text(Key::NoteRequired),
            "failed": text(Key::ActionFailed),
            "sound_enable": text(Key::SoundEnable),
            "sound_on": text(Key::SoundOn),
            "sound_tap": text(Key::SoundTap),
            "live_on": text(Key::LiveConnected),
            "live_off": text(Key::LiveDisconnected),
            "last_heartbeat": text(Key::LastHeartbeat),
            "never": text(Key::Never),
            "badges": text(Key::Badges),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::Severity;

    fn removal() -> AlertView {
        AlertView {
            id: "7".into(),
            kind: AlertKind::UnauthorizedRemoval,
            severity: Severity::Critical,
            state: AlertState::Open,
            raised_at: Timestamp::from_unix(1_767_225_600).unwrap(),
            last_seen_at: Timestamp::from_unix(1_767_225_600).unwrap(),
            occurrences: 2,
            carrier_id: Some("3".into()),
            carrier_control_no: Some("JM-2025-001".into()),
            carrier_level: Some("TS".into()),
            device_id: Some("gate-1".into()),
            person_id: None,
            detail: json!({"gate": "gate-1", "direction": "out", "badge_holders": ["李伟", "<b>"]}),
            acknowledged_by: None,
            acknowledged_at: None,
            resolved_by: None,
            resolved_at: None,
            note: None,
        }
    }

    #[test]
    fn a_removal_is_a_banner_with_every_fact() {
        let html = alert_item(Lang::Zh, &removal()).into_string();
        assert!(html.starts_with(r#"<li class="alert-banner" data-alert-id="7" data-kind="unauthorized_removal" data-state="open""#), "{html}");
        for needle in [
            "未经授权带出",
            "gate-1",
            r#"data-direction="out">带出"#,
            "JM-2025-001",
            "绝密",
            "李伟、&lt;b&gt;",
            r#"<time datetime="2026-01-01T00:00:00Z""#,
            r#"data-group="gate""#,
            r#"data-turned-back="false""#,
            r#"data-movement="left""#,
            r#"<select class="resolve-outcome" data-alert-id="7">"#,
            r#"<option value="stopped_at_gate">在门口拦下</option>"#,
            r#"<button class="ack" type="button" data-alert-id="7">确认</button>"#,
            r#"data-field="occurrences""#,
        ] {
            assert!(html.contains(needle), "{needle} missing from {html}");
        }
    }

    #[test]
    fn a_removal_whose_carriers_turned_back_says_so() {
        let mut a = removal();
        a.detail["turned_back"] = json!(true);
        let html = alert_item(Lang::En, &a).into_string();
        assert!(html.contains(r#"data-turned-back="true""#), "{html}");
        assert!(html.contains(r#"data-movement="turned_back""#), "{html}");
        assert!(html.contains("turned back"), "{html}");
    }

    #[test]
    fn a_recovered_reader_and_a_gate_place_are_shown() {
        let mut a = removal();
        a.kind = AlertKind::ReaderSilent;
        a.detail = json!({"gate": "gate-1", "resumed_at": "2026-01-01T00:05:00Z"});
        let places = HashMap::from([("gate-1".to_owned(), "保密室 ⇄ 大门外".to_owned())]);
        let html = alert_item_at(Lang::Zh, &a, &places).into_string();
        assert!(html.contains(r#"data-field="resumed""#), "{html}");
        assert!(html.contains("读写器已恢复"), "{html}");
        assert!(
            html.contains(r#"<span class="place">保密室 ⇄ 大门外</span>"#),
            "{html}"
        );
    }

    #[test]
    fn kinds_fall_into_the_filter_groups() {
        assert_eq!(group(AlertKind::UnauthorizedRemoval), "gate");
        assert_eq!(group(AlertKind::ReaderSilent), "device");
        assert_eq!(group(AlertKind::Overdue), "reminder");
        assert_eq!(group(AlertKind::Missing), "reminder");
    }

    #[test]
    fn other_alerts_are_cards_and_acknowledged_ones_have_no_ack_button() {
        let mut a = removal();
        a.kind = AlertKind::ReaderSilent;
        a.state = AlertState::Acknowledged;
        a.carrier_control_no = None;
        a.detail = json!({});
        let html = alert_item(Lang::En, &a).into_string();
        assert!(html.starts_with(r#"<li class="alert-card""#), "{html}");
        assert!(html.contains("Reader silent") && html.contains("Acknowledged"));
        assert!(!html.contains(r#"class="ack""#));
        assert!(html.contains(r#"class="resolve""#));
        assert!(!html.contains(r#"data-field="carrier""#));
    }

    #[test]
    fn readers_are_green_only_when_ok() {
        let device = |liveness| DeviceLiveness {
            device_id: crate::domain::ids::DeviceId::new("gate-1").unwrap(),
            kind: crate::domain::device::DeviceKind::Gate,
            last_heartbeat: None,
            liveness,
            place: None,
        };
        let ok = reader_view(Lang::En, device(Liveness::Ok));
        let html = reader_item(Lang::En, &ok).into_string();
        assert!(html.contains(r#"class="reader reader-ok""#) && html.contains(r#"data-ok="true""#));
        let silent = reader_view(Lang::Zh, device(Liveness::Silent));
        let html = reader_item(Lang::Zh, &silent).into_string();
        assert!(html.contains("reader-down") && html.contains("失联") && html.contains("从未"));
    }
}
