//! Notifications of alerts (e-mail, webhooks): which alert goes to whom and when, what the
//! message says, and how long a failed delivery waits before the next try.
//!
//! Pure rules, time passed in. The store keeps one *alert change* per raised, acknowledged or
//! resolved alert, written in the transaction that changed the alert (so a committed change
//! is never without its notification); the notifier (`crate::notify`) expands each change into
//! deliveries with [`plan`], renders them with
//! [`render_alarm`], [`render_digest`] and [`webhook_body`], and retries by [`backoff_ms`].
//!
//! A message names the alert kind, severity, level, control number and place (device and its
//! zone) only: never a carrier's title, which can itself be secret (DOMAIN.md). The types
//! below have no field that could hold one.

use serde_json::{Value, json};

use super::alert::{AlertKind, AlertState, Severity};
use super::time::Timestamp;

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Newly raised.
    Raised,
    /// Acknowledged by someone.
    Acknowledged,
    /// Resolved with a note.
    Resolved,
}

impl Change {
    /// Every change.
    pub const ALL: [Change; 3] = [Change::Raised, Change::Acknowledged, Change::Resolved];

    /// The storage and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Raised => "raised",
            Change::Acknowledged => "acknowledged",
            Change::Resolved => "resolved",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// How fast an alert must reach people by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// At once, one message per alert.
    Immediate,
    /// In the recipient's one daily digest.
    Digest,
}

impl Dispatch {
    /// Alarms (a carrier leaving, a reader silenced or failing, a device failing
    /// authentication, a leak deadline, a failing notification) go at once; reminders
    /// (overdue sign-outs and the like) and low-severity findings wait for the daily digest.
    pub fn of(kind: AlertKind, severity: Severity) -> Dispatch {
        match kind {
            AlertKind::UnauthorizedRemoval
            | AlertKind::ReaderSilent
            | AlertKind::ReaderFault
            | AlertKind::DeviceAuthFailed
            | AlertKind::LeakDeadline
            | AlertKind::NotificationFailed
            | AlertKind::DestroyedSeen => Dispatch::Immediate,
            AlertKind::Overdue => Dispatch::Digest,
            _ if severity >= Severity::High => Dispatch::Immediate,
            _ => Dispatch::Digest,
        }
    }
}

/// One routing rule: alerts of `kinds` (every kind when empty) go to `to`, each entry an
/// e-mail address or `role:NAME` (every address configured for that role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The kinds routed; empty means every kind.
    pub kinds: Vec<AlertKind>,
    /// Addresses and `role:NAME` entries.
    pub to: Vec<String>,
}

/// The e-mail addresses an alert of `kind` goes to: every route that takes the kind, roles
/// expanded through `role_addresses` (`(role, address)` pairs), duplicates removed, in order of
/// first mention.
pub fn email_recipients(
    kind: AlertKind,
    routes: &[Route],
    role_addresses: &[(String, String)],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |address: &str| {
        if !out.iter().any(|a| a.eq_ignore_ascii_case(address)) {
            out.push(address.to_owned());
        }
    };
    for route in routes {
        if !route.kinds.is_empty() && !route.kinds.contains(&kind) {
            continue;
        }
        for to in &route.to {
            match to.strip_prefix("role:") {
                Some(role) => role_addresses
                    .iter()
                    .filter(|(r, _)| r == role)
                    .for_each(|(_, a)| add(a)),
                None => add(to),
            }
        }
    }
    out
}

/// What a notification says about one alert change. No carrier title: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The alert's id.
    pub alert_id: i64,
    /// Its kind.
    pub kind: AlertKind,
    /// Its severity.
    pub severity: Severity,
    /// Its state now.
    pub state: AlertState,
    /// What happened.
    pub change: Change,
    /// When it happened.
    pub at: Timestamp,
    /// How often its cause occurred.
    pub occurrences: i64,
    /// The carrier's id, control number (编号) and level, where a carrier is concerned.
    pub carrier_id: Option<i64>,
    /// The control number.
    pub control_no: Option<String>,
    /// The level code (`TS`, `S`, `C`).
    pub level: Option<String>,
    /// The device concerned.
    pub device_id: Option<String>,
    /// The name of the device's zone (the place).
    pub zone: Option<String>,
    /// The person concerned (an id only).
    pub person_id: Option<i64>,
}

/// Chinese and English names of an alert kind, for messages read outside the console.
pub fn kind_names(kind: AlertKind) -> (&'static str, &'static str) {
    match kind {
        AlertKind::UnauthorizedRemoval => ("未经授权带出", "Unauthorised removal"),
        AlertKind::ClearanceViolation => ("越级进入", "Clearance violation"),
        AlertKind::CabinetRemoval => ("未登记取出", "Removed from cabinet"),
        AlertKind::WrongCabinet => ("放错柜", "Wrong cabinet"),
        AlertKind::Overdue => ("逾期未还", "Overdue"),
        AlertKind::Missing => ("查无下落", "Missing"),
        AlertKind::LeakDeadline => ("泄密期限已到", "Leak deadline reached"),
        AlertKind::ReaderSilent => ("读写器无响应", "Reader silent"),
        AlertKind::ReaderFault => ("读写器故障", "Reader fault"),
        AlertKind::DeviceAuthFailed => ("设备认证失败", "Device authentication failed"),
        AlertKind::ReplayRejected => ("重放被拒", "Replay rejected"),
        AlertKind::UnknownTag => ("未知标签", "Unknown tag"),
        AlertKind::TagCloneSuspected => ("疑似标签克隆", "Tag clone suspected"),
        AlertKind::NotificationFailed => ("通知发送失败", "Notification failed"),
        AlertKind::DestroyedSeen => ("已销毁载体被读到", "Destroyed carrier seen"),
        AlertKind::CollectionDue => (
            "年底收缴：请交回所持载体",
            "Year-end collection: return your carriers",
        ),
        AlertKind::TrainingExpiredHolding => (
            "培训或承诺过期仍持有载体",
            "Expired training, still holding",
        ),
        AlertKind::TrainingExpiring => ("保密培训即将到期", "Training expiring"),
        AlertKind::CommitmentExpiring => ("保密承诺即将到期", "Commitment expiring"),
        AlertKind::DecommissioningEnding => ("脱密期即将结束", "Decommissioning period ending"),
    }
}

fn change_names(change: Change) -> (&'static str, &'static str) {
    match change {
        Change::Raised => ("新告警", "raised"),
        Change::Acknowledged => ("已确认", "acknowledged"),
        Change::Resolved => ("已处理", "resolved"),
    }
}

fn level_names(code: &str) -> (&'static str, &'static str) {
    match code {
        "TS" => ("绝密", "Top Secret"),
        "S" => ("机密", "Secret"),
        "C" => ("秘密", "Confidential"),
        _ => ("", ""),
    }
}

/// A rendered e-mail: subject and plain-text body, Chinese then English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// The bilingual lines describing one notice (level, control number, place; never a title).
fn notice_lines(n: &Notice, out: &mut String) {
    use std::fmt::Write as _;
    let (kind_zh, kind_en) = kind_names(n.kind);
    let (change_zh, change_en) = change_names(n.change);
    let _ = writeln!(
        out,
        "#{} {kind_zh} / {kind_en} ({}) — {change_zh} / {change_en} {}",
        n.alert_id,
        n.severity.as_str(),
        n.at
    );
    if let Some(level) = &n.level {
        let (zh, en) = level_names(level);
        let _ = writeln!(out, "  密级 / Level: {zh} / {en} ({level})");
    }
    if let Some(no) = &n.control_no {
        let _ = writeln!(out, "  编号 / Control number: {no}");
    }
    if let Some(device) = &n.device_id {
        match &n.zone {
            Some(zone) => {
                let _ = writeln!(out, "  地点 / Place: {device} ({zone})");
            }
            None => {
                let _ = writeln!(out, "  地点 / Place: {device}");
            }
        }
    }
    if n.occurrences > 1 {
        let _ = writeln!(out, "  次数 / Occurrences: {}", n.occurrences);
    }
}

const FOOTER: &str = "\n请登录 Custos 控制台处理。载体题名不在邮件中出现。\n\
Please handle it in the Custos console. Carrier titles are never sent by e-mail.\n";

/// The e-mail sent at once for one alert change.
pub fn render_alarm(n: &Notice) -> Email {
    let (kind_zh, kind_en) = kind_names(n.kind);
    let (change_zh, change_en) = change_names(n.change);
    let mut subject = format!("[Custos] {kind_zh} / {kind_en}: {change_zh} / {change_en}");
    if let Some(no) = &n.control_no {
        subject.push_str(&format!(" — {no}"));
    } else if let Some(device) = &n.device_id {
        subject.push_str(&format!(" — {device}"));
    }
    let mut body = String::from("Custos 告警通知 / Custos alert notification\n\n");
    notice_lines(n, &mut body);
    body.push_str(FOOTER);
    Email { subject, body }
}

/// The daily digest of `notices` (oldest first) for one recipient, on `day` (`YYYY-MM-DD`).
pub fn render_digest(day: &str, notices: &[Notice]) -> Email {
    let subject = format!(
        "[Custos] 每日提醒 / Daily reminders {day} ({})",
        notices.len()
    );
    let mut body = format!("Custos 每日提醒 / Custos daily reminders, {day}\n\n");
    for n in notices {
        notice_lines(n, &mut body);
        body.push('\n');
    }
    body.push_str(FOOTER);
    Email { subject, body }
}

/// The JSON a webhook receives for one alert change. `delivery_id` is the same on every retry
/// of the delivery, so a receiver can drop duplicates.
pub fn webhook_body(delivery_id: &str, n: &Notice) -> Value {
    let id = |v: Option<i64>| v.map(|v| v.to_string());
    json!({
        "delivery_id": delivery_id,
        "event": format!("alert.{}", n.change.as_str()),
        "at": n.at.to_string(),
        "alert": {
            "id": n.alert_id.to_string(),
            "kind": n.kind,
            "severity": n.severity,
            "state": n.state,
            "occurrences": n.occurrences,
            "carrier_id": id(n.carrier_id),
            "carrier_control_no": n.control_no,
            "carrier_level": n.level,
            "device_id": n.device_id,
            "zone": n.zone,
            "person_id": id(n.person_id),
        }
    })
}

/// How long to wait after the `attempts`-th failed try (1-based): `base_ms` doubling each
/// time, at most `max_ms`.
pub fn backoff_ms(attempts: u32, base_ms: i64, max_ms: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(40);
    base_ms.saturating_mul(1_i64 << doublings).min(max_ms)
}

/// The next digest time at or after `now`: the day's `hour` (UTC) today, or tomorrow if it
/// has passed.
pub fn next_digest_at(now_ms: i64, hour: u32) -> i64 {
    const DAY: i64 = 86_400_000;
    let day_start = now_ms.div_euclid(DAY) * DAY;
    let today = day_start + i64::from(hour.min(23)) * 3_600_000;
    if today >= now_ms { today } else { today + DAY }
}

/// A webhook as routing sees it: its name and the kinds it takes (all when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRoute {
    /// The webhook's name.
    pub name: String,
    /// Kinds sent; empty = all.
    pub kinds: Vec<AlertKind>,
}

/// Where routing sends one alert change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// One e-mail at once, a digest line, or a webhook POST.
    pub channel: PlannedChannel,
    /// The address or the webhook's name.
    pub target: String,
    /// When it is first due (Unix ms).
    pub due_at_ms: i64,
}

/// The channel of a [`Planned`] delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedChannel {
    /// An e-mail sent at once.
    Email,
    /// A line in the next daily digest.
    Digest,
    /// A webhook POST.
    Webhook,
}

/// Every delivery of one alert change at `now_ms`: every webhook that takes the kind gets
/// every change; e-mail recipients ([`email_recipients`]) hear of a raised alert only, at once
/// or in the next digest ([`Dispatch::of`], [`next_digest_at`]).
pub fn plan(
    n: &Notice,
    now_ms: i64,
    mail_routes: &[Route],
    role_addresses: &[(String, String)],
    digest_hour: u32,
    hooks: &[HookRoute],
) -> Vec<Planned> {
    let mut out = Vec::new();
    for hook in hooks {
        if hook.kinds.is_empty() || hook.kinds.contains(&n.kind) {
            out.push(Planned {
                channel: PlannedChannel::Webhook,
                target: hook.name.clone(),
                due_at_ms: now_ms,
            });
        }
    }
    if n.change == Change::Raised {
        let (channel, due_at_ms) = match Dispatch::of(n.kind, n.severity) {
            Dispatch::Immediate => (PlannedChannel::Email, now_ms),
            Dispatch::Digest => (PlannedChannel::Digest, next_digest_at(now_ms, digest_hour)),
        };
        for target in email_recipients(n.kind, mail_routes, role_addresses) {
            out.push(Planned {
                channel,
                target,
                due_at_ms,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            alert_id: 7,
            kind: AlertKind::UnauthorizedRemoval,
            severity: Severity::Critical,
            state: AlertState::Open,
            change: Change::Raised,
            at: Timestamp::from_unix(1_800_000_000).unwrap(),
            occurrences: 1,
            carrier_id: Some(3),
            control_no: Some("JM-2026-001".into()),
            level: Some("TS".into()),
            device_id: Some("gate-1".into()),
            zone: Some("Archive".into()),
            person_id: None,
        }
    }

    #[test]
    fn alarms_go_at_once_and_reminders_wait_for_the_digest() {
        for kind in [
            AlertKind::UnauthorizedRemoval,
            AlertKind::ReaderSilent,
            AlertKind::ReaderFault,
            AlertKind::DeviceAuthFailed,
        ] {
            assert_eq!(
                Dispatch::of(kind, kind.default_severity()),
                Dispatch::Immediate
            );
        }
        assert_eq!(
            Dispatch::of(AlertKind::Overdue, Severity::Critical),
            Dispatch::Digest
        );
        assert_eq!(
            Dispatch::of(AlertKind::UnknownTag, Severity::Low),
            Dispatch::Digest
        );
        // People's reminders (training, commitment, decommissioning) go in the digest.
        for kind in [
            AlertKind::TrainingExpiring,
            AlertKind::CommitmentExpiring,
            AlertKind::DecommissioningEnding,
        ] {
            assert_eq!(
                Dispatch::of(kind, kind.default_severity()),
                Dispatch::Digest
            );
        }
    }

    #[test]
    fn routes_expand_roles_and_drop_duplicates() {
        let routes = vec![
            Route {
                kinds: vec![AlertKind::ReaderSilent],
                to: vec!["role:guard".into(), "ops@x.test".into()],
            },
            Route {
                kinds: vec![],
                to: vec!["role:security_officer".into(), "OPS@x.test".into()],
            },
        ];
        let roles = vec![
            ("guard".to_owned(), "g1@x.test".to_owned()),
            ("security_officer".to_owned(), "so@x.test".to_owned()),
        ];
        assert_eq!(
            email_recipients(AlertKind::ReaderSilent, &routes, &roles),
            ["g1@x.test", "ops@x.test", "so@x.test"]
        );
        assert_eq!(
            email_recipients(AlertKind::Overdue, &routes, &roles),
            ["so@x.test", "OPS@x.test"]
        );
        assert!(email_recipients(AlertKind::Overdue, &[], &roles).is_empty());
    }

    #[test]
    fn an_alarm_mail_is_bilingual_with_level_number_and_place() {
        let mail = render_alarm(&notice());
        assert!(mail.subject.contains("未经授权带出"), "{}", mail.subject);
        assert!(mail.subject.contains("Unauthorised removal"));
        assert!(mail.subject.contains("JM-2026-001"));
        for needle in [
            "绝密",
            "Top Secret",
            "JM-2026-001",
            "gate-1 (Archive)",
            "#7",
        ] {
            assert!(mail.body.contains(needle), "{needle} in {}", mail.body);
        }
    }

    #[test]
    fn a_digest_lists_every_notice() {
        let mut second = notice();
        second.alert_id = 8;
        second.kind = AlertKind::Overdue;
        let mail = render_digest("2027-01-15", &[notice(), second]);
        assert!(mail.subject.contains("(2)") && mail.subject.contains("2027-01-15"));
        assert!(mail.body.contains("#7") && mail.body.contains("#8"));
        assert!(mail.body.contains("逾期未还 / Overdue"));
    }

    #[test]
    fn the_webhook_body_carries_the_delivery_id_and_no_title() {
        let body = webhook_body("d-1", &notice());
        assert_eq!(body["delivery_id"], "d-1");
        assert_eq!(body["event"], "alert.raised");
        assert_eq!(body["alert"]["kind"], "unauthorized_removal");
        assert_eq!(body["alert"]["carrier_control_no"], "JM-2026-001");
        assert!(body["alert"].get("title").is_none());
    }

    #[test]
    fn webhooks_get_every_change_and_mail_only_raised_alerts() {
        let routes = vec![Route {
            kinds: vec![],
            to: vec!["so@x.test".into()],
        }];
        let hooks = vec![
            HookRoute {
                name: "all".into(),
                kinds: vec![],
            },
            HookRoute {
                name: "silent-only".into(),
                kinds: vec![AlertKind::ReaderSilent],
            },
        ];
        let now = 20_000 * 86_400_000 + 3_600_000;
        let planned = plan(&notice(), now, &routes, &[], 7, &hooks);
        assert_eq!(
            planned,
            [
                Planned {
                    channel: PlannedChannel::Webhook,
                    target: "all".into(),
                    due_at_ms: now
                },
                Planned {
                    channel: PlannedChannel::Email,
                    target: "so@x.test".into(),
                    due_at_ms: now
                },
            ]
        );
        let mut acked = notice();
        acked.change = Change::Acknowledged;
        assert_eq!(plan(&acked, now, &routes, &[], 7, &hooks).len(), 1);
        let mut overdue = notice();
        overdue.kind = AlertKind::Overdue;
        overdue.severity = Severity::Medium;
        let planned = plan(&overdue, now, &routes, &[], 7, &hooks);
        assert_eq!(planned.len(), 2);
        assert_eq!(planned[1].channel, PlannedChannel::Digest);
        assert_eq!(planned[1].due_at_ms, now + 6 * 3_600_000);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff_ms(1, 1000, 60_000), 1000);
        assert_eq!(backoff_ms(2, 1000, 60_000), 2000);
        assert_eq!(backoff_ms(4, 1000, 60_000), 8000);
        assert_eq!(backoff_ms(30, 1000, 60_000), 60_000);
        assert_eq!(backoff_ms(u32::MAX, 1000, 60_000), 60_000);
    }

    #[test]
    fn the_digest_is_sent_at_the_configured_hour() {
        let day = 86_400_000;
        let base = 20_000 * day;
        assert_eq!(next_digest_at(base + 3_600_000, 7), base + 7 * 3_600_000);
        assert_eq!(
            next_digest_at(base + 8 * 3_600_000, 7),
            base + day + 7 * 3_600_000
        );
        assert_eq!(
            next_digest_at(base + 7 * 3_600_000, 7),
            base + 7 * 3_600_000
        );
    }
}
