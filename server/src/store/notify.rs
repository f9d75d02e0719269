//! The notification outbox: alert changes waiting to be routed, and deliveries (one e-mail or
//! one webhook POST each) with their state.
//!
//! Durability: the SQLite implementation of [`super::AlertRows`] records an *alert change*
//! (raised, acknowledged, resolved) in the same transaction as the alert row itself, in the one
//! place every alert insert and lifecycle update passes; no caller can forget it. The notifier
//! (`crate::notify`) then routes each change into deliveries and marks it routed in one
//! transaction, and moves each delivery from `pending` to `sent` (or `failed` after it gave
//! up) only after the counterpart accepted it. A crash between sending and recording means one
//! more send of the same delivery id: at least once, never lost.

use serde::Serialize;

use super::StoreError;
use crate::domain::notify::Notice;
use crate::domain::time::Timestamp;

/// How a delivery travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// One e-mail at once.
    Email,
    /// A line in the recipient's daily digest e-mail.
    Digest,
    /// An HTTP POST to a configured webhook.
    Webhook,
}

impl Channel {
    /// The storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Digest => "digest",
            Channel::Webhook => "webhook",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<Channel> {
        [Channel::Email, Channel::Digest, Channel::Webhook]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

/// Where a delivery is. `retrying` is a pending delivery that has failed at least once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not tried yet (or waiting for the digest hour).
    Pending,
    /// Tried and failed; will be tried again.
    Retrying,
    /// Accepted by the counterpart.
    Sent,
    /// Given up after the configured time.
    Failed,
}

impl DeliveryState {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }

    /// Parse an API name.
    pub fn from_name(name: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Retrying,
            DeliveryState::Sent,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// An alert change not yet routed, with what a message may say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The change's row id.
    pub id: i64,
    /// The notice.
    pub notice: Notice,
}

/// A delivery to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The stable id receivers de-duplicate by.
    pub delivery_id: String,
    /// The alert change it carries.
    pub change_id: i64,
    /// How.
    pub channel: Channel,
    /// The e-mail address or the webhook's name.
    pub target: String,
    /// When it was created.
    pub created_at_ms: i64,
    /// When it is first due (now, or the digest hour).
    pub due_at_ms: i64,
}

/// A delivery due to be tried now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// Row id.
    pub id: i64,
    /// The stable id.
    pub delivery_id: String,
    /// How.
    pub channel: Channel,
    /// Address or webhook name.
    pub target: String,
    /// Failed tries so far.
    pub attempts: u32,
    /// When it was created.
    pub created_at_ms: i64,
    /// What it says.
    pub notice: Notice,
}

/// One delivery as the security officer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// Row id (a decimal string).
    pub id: String,
    /// The id sent to the receiver (webhook header `custos-delivery`).
    pub delivery_id: String,
    /// The alert it is about.
    pub alert_id: String,
    /// `raised`, `acknowledged` or `resolved`.
    pub change: String,
    /// How.
    pub channel: Channel,
    /// The e-mail address or the webhook's name.
    pub target: String,
    /// Where it is.
    pub state: DeliveryState,
    /// Tries so far.
    pub attempts: i64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it is next due (pending ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Timestamp>,
    /// When it was last tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<Timestamp>,
    /// When the counterpart accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// The last failure, as the counterpart or the network said it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a try of a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Sent,
    /// Failed; try again at `next_due_ms`.
    Retry {
        /// When.
        next_due_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Failed, and its time is up: give up.
    GiveUp {
        /// Why it failed.
        error: String,
    },
}

/// An undelivered delivery that has waited long enough to be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckDelivery {
    /// Row id.
    pub id: i64,
    /// How.
    pub channel: Channel,
    /// Address or webhook name.
    pub target: String,
}

/// The notification outbox of one transaction.
pub trait NotifyRows {
    /// Alert changes not yet routed, oldest first, at most `max`.
    fn unrouted_changes(&mut self, max: usize) -> Result<Vec<PendingChange>, StoreError>;

    /// Create `delivery` (nothing if its `delivery_id` exists: routing twice is harmless).
    fn add_delivery(&mut self, delivery: &NewDelivery) -> Result<(), StoreError>;

    /// Mark an alert change routed.
    fn mark_change_routed(&mut self, change_id: i64) -> Result<(), StoreError>;

    /// Pending deliveries due at `now_ms`, oldest first, at most `max`.
    fn due_deliveries(&mut self, now_ms: i64, max: usize) -> Result<Vec<DueDelivery>, StoreError>;

    /// When the next pending delivery is due, if any is.
    fn next_delivery_due(&mut self) -> Result<Option<i64>, StoreError>;

    /// Record a try of delivery `id` at `at_ms`.
    fn record_attempt(&mut self, id: i64, at_ms: i64, outcome: &Outcome) -> Result<(), StoreError>;

    /// Pending or failed deliveries created at or before `created_by_ms` and not yet reported
    /// (see [`NotifyRows::mark_reported`]).
    fn stuck_deliveries(&mut self, created_by_ms: i64) -> Result<Vec<StuckDelivery>, StoreError>;

    /// Mark deliveries as reported by a `notification_failed` alert.
    fn mark_reported(&mut self, ids: &[i64]) -> Result<(), StoreError>;

    /// Deliveries, newest first, optionally of one state, at most `limit`.
    fn deliveries(
        &mut self,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, StoreError>;
}
