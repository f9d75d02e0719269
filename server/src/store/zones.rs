//! Zones: secure areas (with a level) and the public side.

use rusqlite::{Connection, Row, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::Authenticated;
use crate::auth::capability::AdminCap;
use crate::domain::ids::ZoneId;
use crate::domain::level::ZoneLevel;
use crate::domain::time::Timestamp;

/// A zone to create (`POST /zones`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewZone {
    /// Id chosen by the administrator.
    pub id: ZoneId,
    /// Display name.
    pub name: String,
    /// `TS`, `S`, `C` or `public`.
    pub level: ZoneLevel,
}

/// A zone as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Zone {
    /// Id.
    pub id: ZoneId,
    /// Display name.
    pub name: String,
    /// Level.
    pub level: ZoneLevel,
    /// Created at.
    pub created_at: Timestamp,
}

fn zone_row(r: &Row<'_>) -> rusqlite::Result<Zone> {
    Ok(Zone {
        id: r.get(0)?,
        name: r.get(1)?,
        level: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn insert(conn: &Connection, actor: &str, zone: &NewZone, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO zones (id, name, level, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![zone.id, zone.name, zone.level, at])
        .map_err(|e| constraint(e, "zone id", "zone"))?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "zone.create",
            subject: format!("zone:{}", zone.id),
            before: None,
            after: Some(serde_json::to_value(zone)?),
        },
    )?;
    Ok(())
}

impl Store {
    /// Create a zone, with the audit entry.
    pub async fn create_zone(
        &self,
        cap: &AdminCap,
        zone: NewZone,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| insert(c, &actor, &zone, at)).await
    }

    /// Every zone, by id (any signed-in user: zones are not secret).
    pub async fn zones(&self, _caller: &Authenticated) -> Result<Vec<Zone>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT id, name, level, created_at FROM zones ORDER BY id")?;
            let rows = stmt.query_map([], zone_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
