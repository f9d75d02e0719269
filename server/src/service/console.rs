//! The guard console's view besides alerts: the liveness of every device, judged now by the
//! sweep's own silence rule ([`crate::domain::liveness`]), and the latest gate passages.

use super::ServiceError;
use crate::AppState;
use crate::auth::capability::AlertHandlerCap;
use crate::domain::device::DeviceKind;
use crate::domain::ids::DeviceId;
use crate::domain::liveness::{Liveness, liveness};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::console::Passage;

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
    /// Where it is, by zone names (`保密室 ⇄ 大门外`).
    pub place: Option<String>,
}

/// What the console shows of the site besides alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteStatus {
    /// Every device, gates first, then cabinets, then desks.
    pub devices: Vec<DeviceLiveness>,
    /// The latest passages, newest first.
    pub passages: Vec<Passage>,
}

/// The devices' liveness now and the latest `passages` passages.
pub async fn status(
    app: &AppState,
    _cap: &AlertHandlerCap,
    passages: u32,
) -> Result<SiteStatus, ServiceError> {
    let now_ms = app.now().unix_ms();
    let supervision_ms = app.settings().sweep.supervision_ms;
    app.store()
        .query(move |tx| status_in(tx, now_ms, supervision_ms, passages))
        .await
}

fn status_in(
    tx: &mut dyn Tx,
    now_ms: i64,
    supervision_ms: i64,
    passages: u32,
) -> Result<SiteStatus, ServiceError> {
    let devices = tx
        .device_health()?
        .into_iter()
        .map(|d| DeviceLiveness {
            liveness: liveness(
                d.last_heartbeat_ms,
                d.health_json.as_deref(),
                now_ms,
                supervision_ms,
            ),
            device_id: d.device_id,
            place: d.place,
            kind: d.kind,
            last_heartbeat: d.last_heartbeat_ms.and_then(Timestamp::from_unix_ms),
        })
        .collect();
    Ok(SiteStatus {
        devices,
        passages: tx.recent_passages(passages)?,
    })
}
