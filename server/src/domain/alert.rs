//! Alerts: their kinds (fixed by INTERFACES.md), severities, lifecycle and deduplication keys.
//!
//! An alert is raised by a rule (a gate verdict, a cabinet reconciliation, a sweep) for a
//! *cause*: a string that names what went wrong and where, such as
//! `unauthorized_removal:carrier:12:device:gate-1`. At most one live (open or acknowledged)
//! alert exists per cause; a repeat of the same cause counts as another occurrence of that
//! alert instead of a new one. Once resolved, the same cause may raise a fresh alert.

use serde::{Deserialize, Serialize};

/// What an alert is about (`kind` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A carrier left through a gate without a sign-out that allows it.
    UnauthorizedRemoval,
    /// A carrier entered a zone whose level is below its own.
    ClearanceViolation,
    /// A carrier left a cabinet without a sign-out (after the grace period).
    CabinetRemoval,
    /// A carrier was seen in a cabinet other than its home.
    WrongCabinet,
    /// A sign-out is past its due time.
    Overdue,
    /// A carrier's whereabouts are unknown (查无下落).
    Missing,
    /// A missing carrier passed its legal deadline: TS 10 days, S/C 60 days (泄密事件).
    LeakDeadline,
    /// A device stopped sending heartbeats.
    ReaderSilent,
    /// A device reports a reader fault (antenna missing, serial lost, no reply).
    ReaderFault,
    /// A batch or heartbeat failed authentication (bad signature, unknown device).
    DeviceAuthFailed,
    /// A batch from an old epoch or a sequence outside the window.
    ReplayRejected,
    /// A tag no carrier or person is registered with was read at a gate.
    UnknownTag,
    /// The same tag was seen at two places faster than anyone can walk between them.
    TagCloneSuspected,
    /// An e-mail or webhook delivery of an alert has not succeeded for the configured time.
    NotificationFailed,
    /// A destroyed carrier's (retired) tag was read by a reader: the destruction record
    /// and the world disagree.
    DestroyedSeen,
    /// A person whose training or commitment has run out still holds carriers.
    TrainingExpiredHolding,
    /// A year-end collection (年底收缴) calls in carriers a person holds: the notice to the
    /// holder (a reminder, one per holder and collection).
    CollectionDue,
    /// A reminder: a person's training certificate runs out within the reminder window
    /// (re-examination due). Raised once per person and expiry date.
    TrainingExpiring,
    /// A reminder: a person's confidentiality commitment runs out within the window.
    CommitmentExpiring,
    /// A reminder: a departed person's decommissioning period (脱密期) ends within its window.
    DecommissioningEnding,
}

impl AlertKind {
    /// Every kind, in the order of INTERFACES.md.
    pub const ALL: [AlertKind; 20] = [
        AlertKind::UnauthorizedRemoval,
        AlertKind::ClearanceViolation,
        AlertKind::CabinetRemoval,
        AlertKind::WrongCabinet,
        AlertKind::Overdue,
        AlertKind::Missing,
        AlertKind::LeakDeadline,
        AlertKind::ReaderSilent,
        AlertKind::ReaderFault,
        AlertKind::DeviceAuthFailed,
        AlertKind::ReplayRejected,
        AlertKind::UnknownTag,
        AlertKind::TagCloneSuspected,
        AlertKind::NotificationFailed,
        AlertKind::DestroyedSeen,
        AlertKind::TrainingExpiredHolding,
        AlertKind::CollectionDue,
        AlertKind::TrainingExpiring,
        AlertKind::CommitmentExpiring,
        AlertKind::DecommissioningEnding,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::UnauthorizedRemoval => "unauthorized_removal",
            AlertKind::ClearanceViolation => "clearance_violation",
            AlertKind::CabinetRemoval => "cabinet_removal",
            AlertKind::WrongCabinet => "wrong_cabinet",
            AlertKind::Overdue => "overdue",
            AlertKind::Missing => "missing",
            AlertKind::LeakDeadline => "leak_deadline",
            AlertKind::ReaderSilent => "reader_silent",
            AlertKind::ReaderFault => "reader_fault",
            AlertKind::DeviceAuthFailed => "device_auth_failed",
            AlertKind::ReplayRejected => "replay_rejected",
            AlertKind::UnknownTag => "unknown_tag",
            AlertKind::TagCloneSuspected => "tag_clone_suspected",
            AlertKind::NotificationFailed => "notification_failed",
            AlertKind::DestroyedSeen => "destroyed_seen",
            AlertKind::TrainingExpiredHolding => "training_expired_holding",
            AlertKind::CollectionDue => "collection_due",
            AlertKind::TrainingExpiring => "training_expiring",
            AlertKind::CommitmentExpiring => "commitment_expiring",
            AlertKind::DecommissioningEnding => "decommissioning_ending",
        }
    }

    /// Parse a storage or API name.
    pub fn from_name(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The severity an alert of this kind is raised with.
    pub fn default_severity(self) -> Severity {
        match self {
            AlertKind::UnauthorizedRemoval | AlertKind::LeakDeadline | AlertKind::DestroyedSeen => {
                Severity::Critical
            }
            AlertKind::ClearanceViolation
            | AlertKind::CabinetRemoval
            | AlertKind::Missing
            | AlertKind::ReaderSilent
            | AlertKind::DeviceAuthFailed
            | AlertKind::TagCloneSuspected
            | AlertKind::NotificationFailed => Severity::High,
            AlertKind::WrongCabinet
            | AlertKind::Overdue
            | AlertKind::ReaderFault
            | AlertKind::ReplayRejected
            | AlertKind::TrainingExpiredHolding => Severity::Medium,
            // Reminders: low, so they go in the daily digest, not out at once.
            AlertKind::UnknownTag
            | AlertKind::CollectionDue
            | AlertKind::TrainingExpiring
            | AlertKind::CommitmentExpiring
            | AlertKind::DecommissioningEnding => Severity::Low,
        }
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent an alert is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Needs handling today.
    Medium,
    /// Needs handling now.
    High,
    /// A possible leak in progress: the guard acts at once.
    Critical,
}

impl Severity {
    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Where an alert is in its lifecycle: open → acknowledged → resolved (open → resolved too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Raised, nobody has taken it yet.
    Open,
    /// Someone has taken it; it stays live (and deduplicates) until resolved.
    Acknowledged,
    /// Closed with a note.
    Resolved,
}

impl AlertState {
    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<AlertState> {
        [
            AlertState::Open,
            AlertState::Acknowledged,
            AlertState::Resolved,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }

    /// Whether moving to `next` is a legal transition.
    pub fn can_become(self, next: AlertState) -> bool {
        matches!(
            (self, next),
            (AlertState::Open, AlertState::Acknowledged)
                | (AlertState::Open, AlertState::Resolved)
                | (AlertState::Acknowledged, AlertState::Resolved)
        )
    }

    /// Move to `next` if the lifecycle allows it ([`AlertState::can_become`]).
    pub fn transition_to(self, next: AlertState) -> Result<AlertState, IllegalTransition> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(IllegalTransition {
                from: self,
                to: next,
            })
        }
    }
}

/// A lifecycle move the rules refuse (resolving a resolved alert, acknowledging twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the alert is {}; it cannot become {}", .from.as_str(), .to.as_str())]
pub struct IllegalTransition {
    /// The alert's state.
    pub from: AlertState,
    /// The state asked for.
    pub to: AlertState,
}

/// An alert a rule wants raised. Rules build these; the store deduplicates by `cause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The kind.
    pub kind: AlertKind,
    /// The severity (usually `kind.default_severity()`).
    pub severity: Severity,
    /// The deduplication key; see [`cause`].
    pub cause: String,
    /// When it happened (Unix ms).
    pub at_ms: i64,
    /// The carrier concerned, if any.
    pub carrier_id: Option<i64>,
    /// The device concerned, if any.
    pub device_id: Option<String>,
    /// The person concerned, if any (a borrower, a badge holder).
    pub person_id: Option<i64>,
    /// Extra facts for the guard's screen (never a carrier title), as a JSON object.
    pub detail: serde_json::Value,
}

impl NewAlert {
    /// An alert of `kind` with its default severity, for `cause`, at `at_ms`, with nothing
    /// attached yet.
    pub fn new(kind: AlertKind, cause: String, at_ms: i64) -> NewAlert {
        NewAlert {
            kind,
            severity: kind.default_severity(),
            cause,
            at_ms,
            carrier_id: None,
            device_id: None,
            person_id: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// The deduplication key of an alert: its kind followed by `name:value` parts, e.g.
/// `cause(AlertKind::ReaderSilent, &[("device", "gate-1")])` = `reader_silent:device:gate-1`.
pub fn cause(kind: AlertKind, parts: &[(&str, &str)]) -> String {
    let mut key = kind.as_str().to_owned();
    for (name, value) in parts {
        key.push(':');
        key.push_str(name);
        key.push(':');
        key.push_str(value);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        assert_eq!(AlertKind::from_name("nope"), None);
    }

    #[test]
    fn lifecycle_only_moves_forward() {
        use AlertState::*;
        assert!(Open.can_become(Acknowledged));
        assert!(Open.can_become(Resolved));
        assert!(Acknowledged.can_become(Resolved));
        assert!(!Acknowledged.can_become(Open));
        assert!(!Resolved.can_become(Open));
        assert!(!Resolved.can_become(Acknowledged));
        assert!(!Open.can_become(Open));
    }

    #[test]
    fn cause_keys_are_stable() {
        assert_eq!(
            cause(
                AlertKind::UnauthorizedRemoval,
                &[("carrier", "12"), ("device", "g1")]
            ),
            "unauthorized_removal:carrier:12:device:g1"
        );
        assert_eq!(AlertKind::UnknownTag.default_severity(), Severity::Low);
        assert_eq!(
            AlertKind::UnauthorizedRemoval.default_severity(),
            Severity::Critical
        );
    }
}
