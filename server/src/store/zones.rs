//! Zones: secure areas (with a level) and the public side; what the zone use cases
//! ([`crate::service::zones`]) read and write.
//!
//! Plain types and one trait, [`ZoneRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::ids::ZoneId;
use crate::domain::level::ZoneLevel;
use crate::domain::time::Timestamp;

/// A zone to create (`POST /zones`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewZone {
    /// Id chosen by the administrator.
    pub id: ZoneId,
    /// Display name: 1 to 200 characters, not blank, no control characters.
    #[schema(
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$",
        min_length = 1,
        max_length = 200
    )]
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

/// Reading and writing zones.
pub trait ZoneRows {
    /// Write a new zone. A taken id is `Duplicate { what: "zone id" }`.
    fn insert_zone(&mut self, zone: &NewZone, at: Timestamp) -> Result<(), StoreError>;
    /// Every zone, by id.
    fn zones(&mut self) -> Result<Vec<Zone>, StoreError>;
}
