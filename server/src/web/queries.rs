//! Read-only queries the pages need and the store does not offer (yet): reader liveness,
//! recent gate passages, the devices with their last heartbeat, the filtered audit trail and
//! the signed heads, the cabinets with their expected and reported contents, and the asset
//! number proposed for the next carrier's EPC. Each runs on the store's read pool and takes the capability of the page
//! that uses it, like the store's own functions.
//!
//! Carrier titles are never selected here: passages show control numbers and levels only.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::auth::capability::{AdminCap, AlertHandlerCap, CustodianCap};
use crate::domain::carrier::CarrierState;
use crate::domain::device::DeviceKind;
use crate::domain::ids::CarrierId;
use crate::domain::ids::{DeviceId, ZoneId};
use crate::domain::level::Level;
use crate::domain::sweep::is_silent;
use crate::domain::time::Timestamp;
use crate::store::sqlite::{level_column, ms_column};
use crate::store::{Store, StoreError};

/// How a device looks from the guard post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Liveness {
    /// Heartbeats arrive and every reader reports `ok`.
    Ok,
    /// Never heard from since registration.
    Never,
    /// No heartbeat for longer than the supervision interval.
    Silent,
    /// A reader reports `fault`, or the device reports a fault of its own (or the health
    /// document is unreadable: `reader` is `None`).
    Fault {
        /// The faulty reader's name, or the device fault's kind (`outbox_full`).
        reader: Option<String>,
    },
    /// A reader reports `degraded`.
    Degraded {
        /// The degraded reader's name.
        reader: String,
    },
}

impl Liveness {
    /// Green on the console: only a device that reports in and whose readers are all `ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Liveness::Ok)
    }
}

/// Judge a device from its last heartbeat (server receive time, Unix ms) and its health
/// document (`{"readers": {"name": {"state": "ok|degraded|fault", ...}}, "faults": [{"kind":
/// "outbox_full", ...}], ...}`): silent by the sweep's own rule ([`is_silent`], the rule that
/// raises `reader_silent`), else the worst reader state, a standing device fault counting as a
/// faulty reader.
///
/// A device that never sent a heartbeat is [`Liveness::Never`] (never green), whether or not
/// the sweep already counts it silent since its registration.
pub fn liveness(
    last_heartbeat_ms: Option<i64>,
    health_json: Option<&str>,
    now_ms: i64,
    supervision_ms: i64,
) -> Liveness {
    let Some(last) = last_heartbeat_ms else {
        return Liveness::Never;
    };
    if is_silent(last, now_ms, supervision_ms) {
        return Liveness::Silent;
    }
    let Some(text) = health_json else {
        return Liveness::Ok;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Liveness::Fault { reader: None };
    };
    let empty = serde_json::Map::new();
    let readers = doc
        .get("readers")
        .and_then(|r| r.as_object())
        .unwrap_or(&empty);
    let state = |name: &str| readers[name].get("state").and_then(|s| s.as_str());
    if let Some(name) = readers
        .keys()
        .find(|n| state(n) != Some("ok") && state(n) != Some("degraded"))
    {
        return Liveness::Fault {
            reader: Some(name.clone()),
        };
    }
    if let Some(fault) = doc
        .get("faults")
        .and_then(|f| f.as_array())
        .and_then(|f| f.first())
    {
        return Liveness::Fault {
            reader: Some(fault["kind"].as_str().unwrap_or("other").to_owned()),
        };
    }
    if let Some(name) = readers.keys().find(|n| state(n) == Some("degraded")) {
        return Liveness::Degraded {
            reader: name.clone(),
        };
    }
    Liveness::Ok
}

/// A device's liveness for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLiveness {
    /// The device.
    pub device_id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// The last accepted heartbeat.
    pub last_heartbeat: Option<Timestamp>,
    /// The verdict.
    pub liveness: Liveness,
}

/// Every device with its liveness at `now`: gates first, then cabinets, then desks.
pub async fn device_liveness(
    store: &Store,
    _cap: &AlertHandlerCap,
    now: Timestamp,
    supervision_ms: i64,
) -> Result<Vec<DeviceLiveness>, StoreError> {
    let now_ms = now.unix_ms();
    store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT d.id, d.kind, s.last_heartbeat_ms, s.health_json
                 FROM devices d LEFT JOIN device_status s ON s.device_id = d.id
                 ORDER BY CASE d.kind WHEN 'gate' THEN 0 WHEN 'cabinet' THEN 1 ELSE 2 END, d.id",
            )?;
            let rows = stmt.query_map([], |r| {
                let last: Option<i64> = r.get(2)?;
                let health: Option<String> = r.get(3)?;
                Ok(DeviceLiveness {
                    device_id: r.get(0)?,
                    kind: r.get(1)?,
                    last_heartbeat: last.and_then(Timestamp::from_unix_ms),
                    liveness: liveness(last, health.as_deref(), now_ms, supervision_ms),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
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
}

/// The latest `limit` passages, newest first.
pub async fn recent_passages(
    store: &Store,
    _cap: &AlertHandlerCap,
    limit: u32,
) -> Result<Vec<Passage>, StoreError> {
    store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, device_id, at_ms, json_extract(body_json, '$.direction'),
                        coalesce(json_array_length(body_json, '$.badges'), 0)
                 FROM events WHERE kind = 'passage' ORDER BY id DESC LIMIT ?1",
            )?;
            let mut passages = stmt
                .query_map([limit], |r| {
                    let at_ms: i64 = r.get(2)?;
                    Ok(Passage {
                        event_id: r.get(0)?,
                        device_id: r.get(1)?,
                        at: Timestamp::from_unix_ms(at_ms),
                        direction: r.get(3)?,
                        carriers: Vec::new(),
                        badges: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut carriers = c.prepare_cached(
                "SELECT c.control_no, c.level FROM carrier_events ce
                 JOIN carriers c ON c.id = ce.carrier_id
                 WHERE ce.event_id = ?1 ORDER BY c.control_no",
            )?;
            for p in &mut passages {
                p.carriers = carriers
                    .query_map([p.event_id], |r| {
                        Ok(PassageCarrier {
                            control_no: r.get(0)?,
                            level: r.get(1)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
            }
            Ok(passages)
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERVISION: i64 = 6_000;

    #[test]
    fn liveness_is_silent_after_the_supervision_interval() {
        assert_eq!(liveness(None, None, 10_000, SUPERVISION), Liveness::Never);
        assert_eq!(
            liveness(Some(4_000), None, 10_000, SUPERVISION),
            Liveness::Ok
        );
        assert_eq!(
            liveness(Some(3_999), None, 10_000, SUPERVISION),
            Liveness::Silent
        );
        assert!(liveness(Some(4_000), None, 10_000, SUPERVISION).is_ok());
        assert!(!liveness(None, None, 10_000, SUPERVISION).is_ok());
    }

    /// The console shows a device that reported as silent exactly when the sweep counts it
    /// silent (and would raise `reader_silent`), on both sides of the boundary.
    #[test]
    fn the_console_and_the_sweep_agree_on_silence() {
        use crate::domain::sweep::silent_since;
        let last = 10_000;
        for now in last - 1..=last + SUPERVISION + 2 {
            let console = liveness(Some(last), None, now, SUPERVISION) == Liveness::Silent;
            let sweep = silent_since(Some(last), 0, now, SUPERVISION).is_some();
            assert_eq!(console, sweep, "now = {now}");
        }
    }

    #[test]
    fn the_worst_reader_decides() {
        let doc = |a: &str, b: &str| {
            format!(
                r#"{{"readers":{{"a":{{"state":"{a}"}},"b":{{"state":"{b}"}}}},"outbox_depth":0}}"#
            )
        };
        let at = |json: &str| liveness(Some(9_000), Some(json), 10_000, SUPERVISION);
        assert_eq!(at(&doc("ok", "ok")), Liveness::Ok);
        assert_eq!(
            at(&doc("ok", "degraded")),
            Liveness::Degraded { reader: "b".into() }
        );
        assert_eq!(
            at(&doc("degraded", "fault")),
            Liveness::Fault {
                reader: Some("b".into())
            }
        );
        assert_eq!(
            at(&doc("ok", "melting")),
            Liveness::Fault {
                reader: Some("b".into())
            },
            "an unknown state is not green"
        );
        assert_eq!(at("not json"), Liveness::Fault { reader: None });
        assert_eq!(at(r#"{"readers":{}}"#), Liveness::Ok);
        assert_eq!(at(r#"{"readers":{},"faults":[]}"#), Liveness::Ok);
        let device_fault =
            r#"{"readers":{"a":{"state":"degraded"}},"faults":[{"kind":"outbox_full"}]}"#;
        assert_eq!(
            at(device_fault),
            Liveness::Fault {
                reader: Some("outbox_full".into())
            },
            "a device fault is worse than a degraded reader"
        );
        assert_eq!(
            liveness(Some(0), Some(&doc("ok", "ok")), 10_000, SUPERVISION),
            Liveness::Silent,
            "stale health does not count"
        );
    }
}
