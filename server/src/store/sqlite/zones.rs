//! [`ZoneRows`] over SQLite.

use rusqlite::{Row, params};

use super::SqliteTx;
use crate::domain::time::Timestamp;
use crate::store::zones::{NewZone, Zone, ZoneRows};
use crate::store::{StoreError, constraint};

fn zone_row(r: &Row<'_>) -> rusqlite::Result<Zone> {
    Ok(Zone {
        id: r.get(0)?,
        name: r.get(1)?,
        level: r.get(2)?,
        created_at: r.get(3)?,
    })
}

impl ZoneRows for SqliteTx<'_> {
    fn insert_zone(&mut self, zone: &NewZone, at: Timestamp) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO zones (id, name, level, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![zone.id, zone.name, zone.level, at])
            .map_err(|e| constraint(e, "zone id", "zone"))?;
        Ok(())
    }

    fn zones(&mut self) -> Result<Vec<Zone>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT id, name, level, created_at FROM zones ORDER BY id")?;
        let rows = stmt.query_map([], zone_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
