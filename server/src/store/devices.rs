//! Reader devices (gates, cabinets, desks) and their Ed25519 public keys: what the device use
//! cases ([`crate::service::devices`]) read and write.
//!
//! Plain types and one trait, [`DeviceRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use serde::Serialize;

use super::StoreError;
use crate::domain::device::{DeviceKind, Placement};
use crate::domain::ids::{DeviceId, ZoneId};
use crate::domain::time::Timestamp;

/// A validated device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Id chosen by the administrator (the daemon's `device_id`).
    pub id: DeviceId,
    /// Kind and zones, already checked against each other.
    pub placement: Placement,
    /// Ed25519 public key the daemon signs with.
    pub public_key: [u8; 32],
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Kind.
    pub kind: DeviceKind,
    /// Public key, standard base64.
    pub public_key: String,
    /// Secure side of a gate.
    pub inside_zone: Option<ZoneId>,
    /// Other side of a gate.
    pub outside_zone: Option<ZoneId>,
    /// Zone of a cabinet or desk.
    pub zone: Option<ZoneId>,
    /// Registered at.
    pub created_at: Timestamp,
    /// When an administrator revoked it (its requests are refused from then on).
    pub revoked_at: Option<Timestamp>,
}

/// A device as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    /// Id.
    pub id: DeviceId,
    /// Kind.
    pub kind: DeviceKind,
    /// Ed25519 public key, standard base64.
    pub public_key: String,
    /// Secure side of a gate.
    pub inside_zone: Option<ZoneId>,
    /// Other side of a gate.
    pub outside_zone: Option<ZoneId>,
    /// Zone of a cabinet or desk.
    pub zone: Option<ZoneId>,
    /// Registered at.
    pub created_at: Timestamp,
    /// The last accepted heartbeat.
    pub last_heartbeat: Option<Timestamp>,
    /// When an administrator revoked it.
    pub revoked_at: Option<Timestamp>,
}

/// A cabinet (智能柜) as the custodian's pages list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetRow {
    /// The device.
    pub id: DeviceId,
    /// Its zone.
    pub zone: Option<ZoneId>,
    /// When it last reported its contents (a `cabinet_snapshot` event).
    pub last_snapshot: Option<Timestamp>,
}

/// Reading and writing devices.
pub trait DeviceRows {
    /// The kind of device `id`, if it is registered.
    fn device_kind(&mut self, id: &DeviceId) -> Result<Option<DeviceKind>, StoreError>;
    /// Write a new device. A taken id or key is `Duplicate`, an unknown zone
    /// `UnknownReference { what: "zone" }`.
    fn insert_device(&mut self, device: &NewDevice, at: Timestamp) -> Result<(), StoreError>;
    /// Every device, by id.
    fn devices(&mut self) -> Result<Vec<Device>, StoreError>;
    /// Every device with its last heartbeat, by id.
    fn devices_with_heartbeat(&mut self) -> Result<Vec<DeviceRow>, StoreError>;
    /// Every cabinet with the time of its last snapshot, by id.
    fn cabinets(&mut self) -> Result<Vec<CabinetRow>, StoreError>;
    /// The device `id` (`NotFound` if it is not registered).
    fn device(&mut self, id: &DeviceId) -> Result<Device, StoreError>;
    /// Mark `id` revoked at `at_ms` (`NotFound` if not registered; a revoked device keeps its
    /// first revocation time).
    fn revoke_device(&mut self, id: &DeviceId, at_ms: i64) -> Result<(), StoreError>;
    /// Replace the public key of `id` (`NotFound` if not registered, `Duplicate` if another
    /// device has the key).
    fn set_device_key(
        &mut self,
        id: &DeviceId,
        key: &[u8; 32],
        at_ms: i64,
    ) -> Result<(), StoreError>;
}
