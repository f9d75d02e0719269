//! Read-only queries the pages need and the store does not offer (yet): the devices with their
//! last heartbeat, the filtered audit trail and the signed heads, the cabinets with their
//! expected and reported contents, and the asset number proposed for the next carrier's EPC.
//! Each runs on the store's read pool and takes the capability of the page that uses it, like
//! the store's own functions. (The guard console's reader liveness and passages are
//! `service::console`.)
//!
//! Carrier titles are never selected here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::capability::{AdminCap, CustodianCap};
use crate::domain::carrier::CarrierState;
use crate::domain::device::DeviceKind;
use crate::domain::ids::CarrierId;
use crate::domain::ids::{DeviceId, ZoneId};
use crate::domain::level::Level;
use crate::domain::time::Timestamp;
use crate::store::sqlite::{level_column, ms_column};
use crate::store::{Store, StoreError};

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
}

/// Every device with its last heartbeat, by id.
pub async fn devices(store: &Store, _cap: &AdminCap) -> Result<Vec<DeviceRow>, StoreError> {
    store
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.id, d.kind, d.public_key, d.inside_zone, d.outside_zone, d.zone,
                        d.created_at, s.last_heartbeat_ms
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
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
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

/// Every cabinet, by id, with the time of its last snapshot.
pub async fn cabinets(store: &Store, _cap: &CustodianCap) -> Result<Vec<CabinetRow>, StoreError> {
    store
        .read(|c| {
            let mut stmt = c.prepare_cached(
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
        })
        .await
}

/// A carrier as a cabinet count sees it (no title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShelfCarrier {
    /// Id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// State on the register.
    pub state: CarrierState,
    /// Its home cabinet.
    pub home_device: Option<String>,
    /// For a reported carrier: since when the cabinet has reported it.
    pub since: Option<Timestamp>,
}

/// What a cabinet should hold and what it last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetContents {
    /// The cabinet.
    pub cabinet: CabinetRow,
    /// Carriers whose home is this cabinet and that are in storage.
    pub expected: Vec<ShelfCarrier>,
    /// Carriers the cabinet last reported present (`cabinet_contents`).
    pub reported: Vec<ShelfCarrier>,
}

/// The expected and reported contents of cabinet `id`; `None` if there is no such cabinet.
pub async fn cabinet_contents(
    store: &Store,
    cap: &CustodianCap,
    id: DeviceId,
) -> Result<Option<CabinetContents>, StoreError> {
    let Some(cabinet) = cabinets(store, cap).await?.into_iter().find(|c| c.id == id) else {
        return Ok(None);
    };
    store
        .read(move |c| {
            let shelf = |r: &rusqlite::Row<'_>| {
                Ok(ShelfCarrier {
                    id: r.get(0)?,
                    control_no: r.get(1)?,
                    level: level_column(r, 2)?,
                    state: r.get(3)?,
                    home_device: r.get(4)?,
                    since: ms_column(r, 5)?,
                })
            };
            let mut stmt = c.prepare_cached(
                "SELECT id, control_no, level, state, home_device, NULL FROM carriers
                 WHERE home_device = ?1 AND state = 'in_storage' ORDER BY control_no",
            )?;
            let expected = stmt
                .query_map([cabinet.id.as_str()], shelf)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare_cached(
                "SELECT c.id, c.control_no, c.level, c.state, c.home_device, cc.since_ms
                 FROM cabinet_contents cc JOIN carriers c ON c.id = cc.carrier_id
                 WHERE cc.device_id = ?1 ORDER BY c.control_no",
            )?;
            let reported = stmt
                .query_map([cabinet.id.as_str()], shelf)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(CabinetContents {
                cabinet,
                expected,
                reported,
            }))
        })
        .await
}

/// The asset number proposed for the next carrier's GIAI-96 EPC: the id it will most likely
/// get (one above the highest so far).
pub async fn next_carrier_number(store: &Store, _cap: &CustodianCap) -> Result<u64, StoreError> {
    store
        .read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM carriers")?
                .query_row([], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(1))
        })
        .await
}
