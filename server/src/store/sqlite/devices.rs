//! [`DeviceRows`] over SQLite.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{OptionalExtension, Row, params};

use super::constraint;
use super::{SqliteTx, ms_column};
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::devices::{CabinetRow, Device, DeviceRow, DeviceRows, NewDevice};

fn device_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        kind: r.get(1)?,
        public_key: STANDARD.encode(r.get::<_, Vec<u8>>(2)?),
        inside_zone: r.get(3)?,
        outside_zone: r.get(4)?,
        zone: r.get(5)?,
        created_at: r.get(6)?,
        revoked_at: ms_column(r, 7)?,
    })
}

const DEVICE_COLUMNS: &str =
    "id, kind, public_key, inside_zone, outside_zone, zone, created_at, revoked_at_ms";

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
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY id"))?;
        let rows = stmt.query_map([], device_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn devices_with_heartbeat(&mut self) -> Result<Vec<DeviceRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.id, d.kind, d.public_key, d.inside_zone, d.outside_zone, d.zone,
                    d.created_at, s.last_heartbeat_ms, d.revoked_at_ms
             FROM devices d LEFT JOIN device_status s ON s.device_id = d.id ORDER BY d.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let last: Option<i64> = r.get(7)?;
            Ok(DeviceRow {
                id: r.get(0)?,
                kind: r.get(1)?,
                public_key: STANDARD.encode(r.get::<_, Vec<u8>>(2)?),
                inside_zone: r.get(3)?,
                outside_zone: r.get(4)?,
                zone: r.get(5)?,
                created_at: r.get(6)?,
                last_heartbeat: last.and_then(Timestamp::from_unix_ms),
                revoked_at: ms_column(r, 8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn cabinets(&mut self) -> Result<Vec<CabinetRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT d.id, d.zone,
                    (SELECT max(e.at_ms) FROM events e
                     WHERE e.device_id = d.id AND e.kind = 'cabinet_snapshot')
             FROM devices d WHERE d.kind = 'cabinet' ORDER BY d.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CabinetRow {
                id: r.get(0)?,
                zone: r.get(1)?,
                last_snapshot: ms_column(r, 2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn device(&mut self, id: &DeviceId) -> Result<Device, StoreError> {
        self.conn()
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1"
            ))?
            .query_row([id], device_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn revoke_device(&mut self, id: &DeviceId, at_ms: i64) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE devices SET revoked_at_ms = coalesce(revoked_at_ms, ?2) WHERE id = ?1",
            )?
            .execute(params![id, at_ms])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn set_device_key(
        &mut self,
        id: &DeviceId,
        key: &[u8; 32],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE devices SET public_key = ?2, key_rotated_at_ms = ?3 WHERE id = ?1",
            )?
            .execute(params![id, &key[..], at_ms])
            .map_err(|e| constraint(e, "device public key", "device"))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
