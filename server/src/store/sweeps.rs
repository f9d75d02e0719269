//! Sweep rows: the small "due" sets a sweep ([`crate::service::sweep`]) reads, and the few
//! columns it writes.
//!
//! # Cost
//! Every due set is read through an index, and the SQLite implementation names it with
//! `INDEXED BY` (so a schema change that loses the index fails the statement instead of
//! silently scanning); none scans the carriers:
//! - overdue: `signouts_out_by_due` (`state = 'out' AND due_at_ms < now`);
//! - cabinet removals: `pending_removals_by_time` (older than the grace period);
//! - leak deadlines: `carriers_missing` (missing for at least the shortest deadline);
//! - silent readers: `device_status_by_heartbeat` (older than the supervision interval), plus
//!   the devices with no heartbeat at all — a scan of `devices`, which holds the few readers
//!   of a site, not the carriers;
//! - per candidate, "when was this cause last alerted" ([`super::AlertRows`]):
//!   `alerts_by_cause`; live `reader_silent` alerts for resumption: `alerts_by_state`.

use serde_json::Value;

use super::StoreError;
use crate::domain::carrier::CarrierState;
use crate::domain::ids::{CarrierId, DeviceId, PersonId, SignoutId};
use crate::domain::level::Level;

pub use super::sqlite::sweeps::DUE_SET_QUERIES;

/// A sign-out out past its due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverdueSignout {
    /// The sign-out.
    pub id: SignoutId,
    /// Who holds its carriers.
    pub borrower: PersonId,
    /// When they were due back (Unix ms).
    pub due_at_ms: i64,
    /// When the last overdue notice was raised (Unix ms), if ever.
    pub notified_at_ms: Option<i64>,
}

/// A carrier a cabinet reported gone, not yet accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRemoval {
    /// The cabinet.
    pub device: DeviceId,
    /// The carrier.
    pub carrier: CarrierId,
    /// When the cabinet saw it go (Unix ms).
    pub removed_at_ms: i64,
}

/// A carrier marked missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingCarrier {
    /// The carrier.
    pub id: CarrierId,
    /// Its level (the leak deadline depends on it).
    pub level: Level,
    /// Missing since (Unix ms).
    pub since_ms: i64,
}

/// A device that may have gone silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardDevice {
    /// The device.
    pub device: DeviceId,
    /// Its last accepted heartbeat (server time, Unix ms), if it ever sent one.
    pub last_heartbeat_ms: Option<i64>,
    /// When it was registered (Unix ms).
    pub registered_ms: i64,
}

/// A live `reader_silent` alert of a device that has sent a heartbeat since.
#[derive(Debug, Clone, PartialEq)]
pub struct SilentAlertHeard {
    /// The alert.
    pub alert: i64,
    /// Its detail object.
    pub detail: Value,
    /// The device's last heartbeat (Unix ms).
    pub last_heartbeat_ms: i64,
}

/// The sweep's reads and writes of one transaction.
pub trait SweepRows {
    /// Sign-outs `out` whose due time is before `now_ms`, by due time.
    fn overdue_signouts(&mut self, now_ms: i64) -> Result<Vec<OverdueSignout>, StoreError>;

    /// Record that an overdue notice for `id` was raised at `at_ms`.
    fn set_overdue_notified(&mut self, id: SignoutId, at_ms: i64) -> Result<(), StoreError>;

    /// Cabinet removals seen before `before_ms`, oldest first.
    fn removals_before(&mut self, before_ms: i64) -> Result<Vec<PendingRemoval>, StoreError>;

    /// Forget a pending removal (it has been judged).
    fn drop_pending_removal(
        &mut self,
        device: &DeviceId,
        carrier: CarrierId,
    ) -> Result<(), StoreError>;

    /// A carrier's state on the register.
    fn carrier_state(&mut self, carrier: CarrierId) -> Result<CarrierState, StoreError>;

    /// Whether the carrier is outstanding on a sign-out that is `out`.
    fn on_open_signout(&mut self, carrier: CarrierId) -> Result<bool, StoreError>;

    /// Mark a carrier `missing` since `since_ms`.
    fn mark_missing(&mut self, carrier: CarrierId, since_ms: i64) -> Result<(), StoreError>;

    /// Carriers missing since `since_ms` or earlier, longest missing first.
    fn missing_since(&mut self, since_ms: i64) -> Result<Vec<MissingCarrier>, StoreError>;

    /// Devices whose last heartbeat is before `before_ms`, oldest first; then every device
    /// that never sent one, by id.
    fn devices_unheard_since(&mut self, before_ms: i64) -> Result<Vec<HeardDevice>, StoreError>;

    /// The earliest last heartbeat at or after `since_ms` of a device that is not revoked:
    /// the device that goes silent next (`device_status_by_heartbeat`, first row).
    fn earliest_heartbeat_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError>;

    /// Live `reader_silent` alerts of devices with a heartbeat at or after `since_ms`.
    fn silent_alerts_heard_since(
        &mut self,
        since_ms: i64,
    ) -> Result<Vec<SilentAlertHeard>, StoreError>;
}
