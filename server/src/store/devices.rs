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
}
