//! Read-only queries the guard's pages need and the store does not offer (yet): reader
//! liveness and recent gate passages. Each runs on the store's read pool and takes the
//! capability of the page that uses it, like the store's own functions. (The rest moved to
//! `service/` and `store/`.)
//!
//! Carrier titles are never selected here: passages show control numbers and levels only.

use serde::Serialize;

use crate::auth::capability::AlertHandlerCap;
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::domain::time::Timestamp;
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
    /// A reader reports `fault` (or the health document is unreadable: `reader` is `None`).
    Fault {
        /// The faulty reader's name.
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
/// document (`{"readers": {"name": {"state": "ok|degraded|fault", ...}}, ...}`): silent when
/// the heartbeat is older than `supervision_ms`, else the worst reader state.
pub fn liveness(
    last_heartbeat_ms: Option<i64>,
    health_json: Option<&str>,
    now_ms: i64,
    supervision_ms: i64,
) -> Liveness {
    let Some(last) = last_heartbeat_ms else {
        return Liveness::Never;
    };
    if now_ms.saturating_sub(last) > supervision_ms {
        return Liveness::Silent;
    }
    let Some(text) = health_json else {
        return Liveness::Ok;
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Liveness::Fault { reader: None };
    };
    let Some(readers) = doc.get("readers").and_then(|r| r.as_object()) else {
        return Liveness::Ok;
    };
    let state = |name: &str| readers[name].get("state").and_then(|s| s.as_str());
    if let Some(name) = readers
        .keys()
        .find(|n| state(n) != Some("ok") && state(n) != Some("degraded"))
    {
        return Liveness::Fault {
            reader: Some(name.clone()),
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
        assert_eq!(
            liveness(Some(0), Some(&doc("ok", "ok")), 10_000, SUPERVISION),
            Liveness::Silent,
            "stale health does not count"
        );
    }
}
