//! Reader devices (gates, cabinets, desks) and their Ed25519 public keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, Row, params};
use serde::Serialize;
use serde_json::json;

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::capability::{AdminCap, DeviceReaderCap};
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

fn device_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        kind: r.get(1)?,
        public_key: STANDARD.encode(r.get::<_, Vec<u8>>(2)?),
        inside_zone: r.get(3)?,
        outside_zone: r.get(4)?,
        zone: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn insert(
    conn: &Connection,
    actor: &str,
    device: &NewDevice,
    at: Timestamp,
) -> Result<(), StoreError> {
    let (inside, outside, zone) = device.placement.columns();
    conn.prepare_cached(
        "INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, zone, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        device.id,
        device.placement.kind(),
        &device.public_key[..],
        inside,
        outside,
        zone,
        at
    ])
    .map_err(|e| constraint(e, "device id or public key", "zone"))?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "device.create",
            subject: format!("device:{}", device.id),
            before: None,
            after: Some(json!({
                "id": device.id,
                "kind": device.placement.kind(),
                "public_key": STANDARD.encode(device.public_key),
                "inside_zone": inside,
                "outside_zone": outside,
                "zone": zone,
            })),
        },
    )?;
    Ok(())
}

impl Store {
    /// Register a device, with the audit entry. Unknown zones are refused.
    pub async fn create_device(
        &self,
        cap: &AdminCap,
        device: NewDevice,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| insert(c, &actor, &device, at)).await
    }

    /// Every device, by id.
    pub async fn devices(&self, _cap: &DeviceReaderCap) -> Result<Vec<Device>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, public_key, inside_zone, outside_zone, zone, created_at
                 FROM devices ORDER BY id",
            )?;
            let rows = stmt.query_map([], device_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Reading and writing devices.
pub trait DeviceRows {
    /// The kind of device `id`, if it is registered.
    fn device_kind(&mut self, id: &DeviceId) -> Result<Option<DeviceKind>, StoreError>;
}
