//! Ingest rows: what the device use cases ([`crate::service::ingest`]) read and write.
//!
//! Plain types and one trait, [`IngestRows`]; the SQLite implementation is in
//! [`super::sqlite`]. Every method is one small read or write: which facts a batch needs,
//! which rule to apply and what to write is the use case's business.
//!
//! # `device_status.health_json`
//! ```json
//! {"readers": {"uhf-main": <ReaderHealth as on the wire>}, "outbox_depth": 0,
//!  "held_policy_version": 9, "device_at_ms": 1767225600000,
//!  "faults": [<DeviceFault as on the wire>]}
//! ```
//! Heartbeats replace the document (they carry every configured reader and every standing
//! device fault); a `reader_health` event replaces its own reader's entry.
//! `last_heartbeat_ms` is the server's receive time of the last *accepted* heartbeat.

use custos_protocol::epc::Epc;

use super::StoreError;
use crate::domain::cabinet::SinceIssue;
use crate::domain::carrier::CarrierState;
use crate::domain::device::DeviceKind;
use crate::domain::gate::{ActiveSignout, BadgeHolder};
use crate::domain::ids::DeviceId;
use crate::domain::ingest::EpochRecord;
use crate::domain::level::{Level, ZoneLevel};

/// A registered device, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// Its id.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// The Ed25519 key it signs with.
    pub public_key: [u8; 32],
    /// Revoked by an administrator: every request is refused.
    pub revoked: bool,
}

/// A carrier found by one of its tags (no title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCarrier {
    /// The carrier.
    pub id: i64,
    /// Its control number.
    pub control_no: String,
    /// Its level.
    pub level: Level,
    /// Its state on the register.
    pub state: CarrierState,
    /// Its home cabinet.
    pub home_device: Option<String>,
}

/// Where and when a tag (or a carrier) was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The device.
    pub device: String,
    /// When (device time, Unix ms).
    pub at_ms: i64,
}

/// An event to store.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    /// The device that sent it.
    pub device: &'a str,
    /// Its epoch.
    pub epoch: u64,
    /// Its sequence number in the epoch.
    pub seq: u64,
    /// When it happened (device time, Unix ms).
    pub at_ms: i64,
    /// When the server received it (Unix ms).
    pub received_at_ms: i64,
    /// `passage`, `cabinet_snapshot`, `scan`, ...
    pub kind: &'static str,
    /// The event body as JSON.
    pub body_json: &'a str,
    /// The verdict answered for it, as JSON (judged passages only).
    pub verdict_json: Option<&'a str>,
}

/// An event as stored, for checking a re-delivery against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// When it happened (device time, Unix ms).
    pub at_ms: i64,
    /// The event body as JSON.
    pub body_json: String,
    /// The verdict answered for it, as JSON.
    pub verdict_json: Option<String>,
}

/// A line of a carrier's history.
#[derive(Debug, Clone, Copy)]
pub struct CarrierEvent<'a> {
    /// The carrier.
    pub carrier: i64,
    /// The stored event.
    pub event: i64,
    /// When (device time, Unix ms).
    pub at_ms: i64,
    /// `passage`, `cabinet`, `scan` or `turned_back`.
    pub kind: &'static str,
    /// The device.
    pub device: &'a str,
    /// `in` or `out`, where it has one.
    pub direction: Option<&'a str>,
}

/// The device rows of one transaction: what ingest reads and writes.
pub trait IngestRows {
    /// The device registered under `id`, if any.
    fn device_auth(&mut self, id: &DeviceId) -> Result<Option<DeviceAuth>, StoreError>;

    /// The levels of a gate's inside and outside zones (`None` if it is not a gate).
    fn gate_sides(&mut self, device: &str) -> Result<Option<(ZoneLevel, ZoneLevel)>, StoreError>;

    /// What is stored of a device's epoch.
    fn epoch_record(&mut self, device: &str, epoch: u64)
    -> Result<Option<EpochRecord>, StoreError>;

    /// The device's newest epoch.
    fn newest_epoch(&mut self, device: &str) -> Result<Option<EpochRecord>, StoreError>;

    /// The device's newest epoch that has stored events.
    fn newest_epoch_with_events(&mut self, device: &str) -> Result<Option<u64>, StoreError>;

    /// Events of `epoch` are stored through `acked_through` (the epoch first seen at `now_ms`
    /// if new).
    fn set_acked_through(
        &mut self,
        device: &str,
        epoch: u64,
        acked_through: u64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Heartbeat `hb_seq` of `epoch` is the last accepted (the epoch first seen at `now_ms` if
    /// new).
    fn set_hb_seq(
        &mut self,
        device: &str,
        epoch: u64,
        hb_seq: u64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Replace the stored body of event `seq` of `epoch` (a re-delivered passage that now
    /// records the gate's local verdict; nothing else may differ).
    fn set_event_body(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
        body_json: &str,
    ) -> Result<(), StoreError>;

    /// The stored event `seq` of `epoch`.
    fn stored_event(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
    ) -> Result<Option<StoredEvent>, StoreError>;

    /// Store an event; its row id.
    fn insert_event(&mut self, event: &NewEvent<'_>) -> Result<i64, StoreError>;

    /// The row id of the stored passage `seq` of `epoch`.
    fn passage_event(
        &mut self,
        device: &str,
        epoch: u64,
        seq: u64,
    ) -> Result<Option<i64>, StoreError>;

    /// Add a line to a carrier's history (once per carrier, event and kind).
    fn insert_carrier_event(&mut self, line: &CarrierEvent<'_>) -> Result<(), StoreError>;

    /// The direction a stored passage recorded for a carrier: `None` if it did not record the
    /// carrier, `Some(None)` if it recorded it without one.
    fn passage_direction(
        &mut self,
        carrier: i64,
        event: i64,
    ) -> Result<Option<Option<String>>, StoreError>;

    /// The carrier with tag `tag`, with where that tag was seen last (what a gate passage
    /// needs to know about each tag, in one read).
    fn gate_carrier_by_tag(
        &mut self,
        tag: &str,
    ) -> Result<Option<(TagCarrier, Option<Sighting>)>, StoreError>;

    /// The carrier with tag `tag`.
    fn carrier_by_tag(&mut self, tag: &str) -> Result<Option<TagCarrier>, StoreError>;

    /// The carrier `id`.
    fn carrier_by_id(&mut self, id: i64) -> Result<TagCarrier, StoreError>;

    /// The person whose badge is `epc`, in either stored form.
    fn person_by_badge(&mut self, epc: &Epc) -> Result<Option<BadgeHolder>, StoreError>;

    /// The sign-outs in state `out` that a carrier is outstanding on, with how long each
    /// borrower stays certified when commitments last `commitment_valid_months`.
    fn active_signouts(
        &mut self,
        carrier: i64,
        commitment_valid_months: u32,
    ) -> Result<Vec<ActiveSignout>, StoreError>;

    /// The carrier was seen at `device` at `at_ms` (kept only if newer than what is stored).
    fn mark_seen(&mut self, carrier: i64, device: &str, at_ms: i64) -> Result<(), StoreError>;

    /// Where a tag was seen last.
    fn last_sighting(&mut self, tag: &str) -> Result<Option<Sighting>, StoreError>;

    /// The tag was seen at `device` at `at_ms` (kept only if not older than what is stored).
    fn record_sighting(&mut self, tag: &str, device: &str, at_ms: i64) -> Result<(), StoreError>;

    /// Whether a cabinet other than `device` holds the carrier.
    fn in_other_cabinet(&mut self, carrier: i64, device: &str) -> Result<bool, StoreError>;

    /// What the server recorded of a signed-out carrier since its open sign-out was issued, as
    /// seen from cabinet `device` (`None` if it is on no open sign-out).
    fn since_issue(&mut self, carrier: i64, device: &str)
    -> Result<Option<SinceIssue>, StoreError>;

    /// The carriers a cabinet holds, by id.
    fn cabinet_contents(&mut self, device: &str) -> Result<Vec<i64>, StoreError>;

    /// A cabinet's pending removals: carrier and whether it is now `out`.
    fn pending_removals_at(&mut self, device: &str) -> Result<Vec<(i64, bool)>, StoreError>;

    /// The carrier is in the cabinet since `since_ms`.
    fn add_to_cabinet(
        &mut self,
        device: &str,
        carrier: i64,
        since_ms: i64,
    ) -> Result<(), StoreError>;

    /// The carrier is no longer in the cabinet.
    fn remove_from_cabinet(&mut self, device: &str, carrier: i64) -> Result<(), StoreError>;

    /// The cabinet saw the carrier go at `at_ms`.
    fn add_pending_removal(
        &mut self,
        device: &str,
        carrier: i64,
        at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Forget a carrier's pending removals at every cabinet.
    fn clear_pending_removals(&mut self, carrier: i64) -> Result<(), StoreError>;

    /// A missing carrier is in storage again; `false` (nothing written) if it was not missing.
    fn mark_found(&mut self, carrier: i64) -> Result<bool, StoreError>;

    /// A device's stored health document.
    fn health_json(&mut self, device: &str) -> Result<Option<String>, StoreError>;

    /// Replace a device's health document.
    fn set_health(&mut self, device: &str, health_json: &str) -> Result<(), StoreError>;

    /// An accepted heartbeat at `at_ms` (server time) with its health document.
    fn set_heartbeat(
        &mut self,
        device: &str,
        at_ms: i64,
        health_json: &str,
    ) -> Result<(), StoreError>;
}
