//! Alert rows: raising (deduplicated by cause), reading, and the lifecycle columns.
//!
//! Plain types and one trait, [`AlertRows`]; the SQLite implementation is in
//! [`super::sqlite`]. A rule raises an alert inside the same transaction as the change that
//! caused it (an ingested batch, a sweep), so an alert exists exactly when its cause was
//! committed; after commit the use case passes the ids to [`crate::AlertHub::notify`] so that
//! live consoles hear of them. Which transition is legal is [`AlertState::can_become`]'s
//! business, in the use case ([`crate::service::alerts`]).
//!
//! An alert as a console sees it ([`AlertView`]) carries the carrier's control number and
//! level, never its title: guards must see what to look for, and titles can themselves be
//! secret (DOMAIN.md). No implementation selects the title.

use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::domain::alert::{AlertKind, AlertState, NewAlert, Severity};
use crate::domain::time::Timestamp;

/// The most alerts one list answer holds.
pub const LIST_MAX: u32 = 1000;
/// The list size when none is asked for.
pub const LIST_DEFAULT: u32 = 100;

/// What [`AlertRows::raise_alert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// A new alert with this id.
    New(i64),
    /// The cause already had a live alert with this id; its occurrence count went up.
    Repeated(i64),
}

impl Raised {
    /// The alert's id either way.
    pub fn id(self) -> i64 {
        match self {
            Raised::New(id) | Raised::Repeated(id) => id,
        }
    }
}

/// One alert as the API and the live stream show it. Absent optional fields are omitted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// Id (a decimal string).
    pub id: String,
    /// Kind.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle state.
    pub state: AlertState,
    /// When it was first raised.
    pub raised_at: Timestamp,
    /// When it last occurred.
    pub last_seen_at: Timestamp,
    /// How often its cause occurred while it was live.
    pub occurrences: i64,
    /// The carrier concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_id: Option<String>,
    /// The carrier's control number (编号), for the guard to look for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_control_no: Option<String>,
    /// The carrier's level: `TS`, `S` or `C`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier_level: Option<String>,
    /// The device concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// The person concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Extra facts, a JSON object.
    pub detail: Value,
    /// Who acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// Who resolved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The resolution note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Which alerts to list. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only this kind.
    pub kind: Option<AlertKind>,
    /// Only this carrier.
    pub carrier_id: Option<i64>,
    /// Only this device.
    pub device_id: Option<String>,
    /// Only ids greater than this (what is new since a stream's `hello`).
    pub after: Option<i64>,
    /// Only ids smaller than this (the next page back in time).
    pub before: Option<i64>,
    /// At most this many (capped at [`LIST_MAX`]).
    pub limit: u32,
    /// Search text: each word (any case) in the kind, the device, the carrier's control
    /// number or the resolution note.
    pub q: Option<String>,
    /// Only handled alerts (acknowledged or resolved): the alert history.
    pub handled_only: bool,
    /// Oldest first (ascending id) instead of newest first.
    pub oldest_first: bool,
}

/// Alert counts per kind, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// Alerts ever raised (rows), per kind.
    pub raised: Vec<(AlertKind, i64)>,
    /// Live (open or acknowledged) alerts, per kind.
    pub live: Vec<(AlertKind, i64)>,
}

/// The alerts of one transaction.
pub trait AlertRows {
    /// Raise `alert`, or count another occurrence of the live alert with the same cause.
    fn raise_alert(&mut self, alert: &NewAlert) -> Result<Raised, StoreError>;

    /// When an alert of `cause` was last raised or repeated (`last_seen_at_ms`), resolved
    /// ones included; `None` if never.
    fn alert_last_seen(&mut self, cause: &str) -> Result<Option<i64>, StoreError>;

    /// Replace an alert's detail object (never with a carrier title in it); `NotFound` if
    /// there is no such alert.
    fn set_alert_detail(&mut self, id: i64, detail: &Value) -> Result<(), StoreError>;

    /// The alerts matching `filter`, newest first.
    fn alerts(&mut self, filter: &AlertFilter) -> Result<Vec<AlertView>, StoreError>;

    /// One alert.
    fn alert(&mut self, id: i64) -> Result<Option<AlertView>, StoreError>;

    /// The highest alert id (0 if there is none).
    fn max_alert_id(&mut self) -> Result<i64, StoreError>;

    /// An alert's lifecycle state, if it exists.
    fn alert_state(&mut self, id: i64) -> Result<Option<AlertState>, StoreError>;

    /// Mark an alert acknowledged by `by` at `at`.
    fn set_alert_acknowledged(
        &mut self,
        id: i64,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Mark an alert resolved by `by` at `at` with `note`.
    fn set_alert_resolved(
        &mut self,
        id: i64,
        by: &str,
        note: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Alerts per kind, every kind listed (zero where there are none).
    fn alert_counts(&mut self) -> Result<AlertCounts, StoreError>;

    /// The ids of `device`'s gate alarms (`unauthorized_removal`, `clearance_violation`) that
    /// were acknowledged or resolved at or after `since_ms`, at most `max`, by id.
    fn silenced_gate_alarms(
        &mut self,
        device: &str,
        since_ms: i64,
        max: usize,
    ) -> Result<Vec<i64>, StoreError>;
}
