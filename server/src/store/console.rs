//! What the guard console reads besides alerts: every device's last heartbeat and health, and
//! the latest gate passages. Plain types and one trait, [`ConsoleRows`]; the SQLite
//! implementation is in [`super::sqlite`].
//!
//! Carrier titles are never read here: passages show control numbers and levels only.

use super::StoreError;
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::domain::time::Timestamp;

/// A device's last word: what its liveness is judged from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceHealth {
    /// The device.
    pub device_id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// Its last accepted heartbeat (server time, Unix ms).
    pub last_heartbeat_ms: Option<i64>,
    /// Its stored health document (see [`crate::store::ingest`]).
    pub health_json: Option<String>,
    /// Where it is, by zone names: `保密室 ⇄ 大门外` for a gate, the zone of a cabinet or
    /// desk; none when no zone is set.
    pub place: Option<String>,
}

/// A carrier read in a passage: control number and level, never the title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageCarrier {
    /// Control number.
    pub control_no: String,
    /// `TS`, `S` or `C`.
    pub level: String,
}

/// One gate passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// The event's id.
    pub event_id: i64,
    /// The gate.
    pub device_id: String,
    /// When the person crossed.
    pub at: Option<Timestamp>,
    /// `in` or `out`, as the event says.
    pub direction: Option<String>,
    /// The registered carriers read.
    pub carriers: Vec<PassageCarrier>,
    /// How many badges were read.
    pub badges: i64,
    /// The names of the people whose badges were read (registered badges only).
    pub badge_holders: Vec<String>,
    /// The gate's place by zone names (see [`DeviceHealth::place`]).
    pub place: Option<String>,
}

/// The console's reads of one transaction.
pub trait ConsoleRows {
    /// Every device with its last heartbeat and health: gates first, then cabinets, then
    /// desks, each by id.
    fn device_health(&mut self) -> Result<Vec<DeviceHealth>, StoreError>;

    /// The latest `limit` passages, newest first.
    fn recent_passages(&mut self, limit: u32) -> Result<Vec<Passage>, StoreError>;
}
