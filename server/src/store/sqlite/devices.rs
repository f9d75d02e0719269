//! [`DeviceRows`] over SQLite.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::domain::time::Timestamp;
use crate::store::devices::{Device, DeviceRows, NewDevice};
use crate::store::{StoreError, constraint};

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

impl DeviceRows for SqliteTx<'_> {
    fn device_kind(&mut self, id: &DeviceId) -> Result<Option<DeviceKind>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT kind FROM devices WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn insert_device(&mut self, device: &NewDevice, at: Timestamp) -> Result<(), StoreError> {
        let (inside, outside, zone) = device.placement.columns();
        self.conn()
            .prepare_cached(
                "INSERT INTO devices (id, kind, public_key, inside_zone, outside_zone, zone,
                                      created_at)
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
        Ok(())
    }

    fn devices(&mut self) -> Result<Vec<Device>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, kind, public_key, inside_zone, outside_zone, zone, created_at
             FROM devices ORDER BY id",
        )?;
        let rows = stmt.query_map([], device_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
