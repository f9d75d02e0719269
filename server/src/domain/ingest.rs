//! Device uploads: sequencing, replay and heartbeat rules, and the alerts they raise.
//!
//! The wire rules are `custos_protocol::uplink` (module docs, "Sequencing and acknowledgement"
//! and "Heartbeats"); this module is the server's side of them as pure functions over what the
//! server has stored, so every branch is a unit test.
//!
//! # Batches
//! Per `(device, epoch)` the server stores `acked_through`: every seq up to it is stored, none
//! beyond ([`plan_batch`]):
//! - a batch whose every seq is `<= acked_through` was delivered before (its ack was lost): it
//!   is not stored again and is answered with the verdicts stored the first time, so uploads
//!   are idempotent, in any epoch;
//! - a batch of an epoch older than the newest epoch that has stored events, carrying events
//!   not stored yet, is refused (409 `replay_rejected`): the daemon uploads its oldest epoch
//!   first, so only a replay, a restored outbox or a broken daemon sends one;
//! - a batch whose first seq is beyond `acked_through + 1` would leave a gap: it is refused
//!   (409 `seq_gap`) and the answer names `resend_from = acked_through + 1`;
//! - otherwise the overlap is ignored and seqs `acked_through + 1 ..= last` are stored. A new,
//!   higher epoch starts at `acked_through = 0`, so its first batch must start at seq 1.
//!
//! Heartbeats only create epoch rows with `acked_through = 0`, so a heartbeat of the new epoch
//! arriving before the old epoch's backlog does not make that backlog a "replay".
//!
//! # Heartbeats
//! `(epoch, hb_seq)` must be newer than the newest the server accepted from the device
//! ([`check_heartbeat`]); the device clock must be within
//! [`MAX_CLOCK_SKEW_MS`] of the server's ([`clock_in_step`]). A refused heartbeat does not
//! count as a sign of life, so a recorded heartbeat replayed at a silenced gate cannot hide it.
//!
//! # Storage range
//! SQLite integers are `i64`; epochs and seqs above `i64::MAX` are refused as malformed
//! ([`fits_storage`]).

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, DeviceFaultKind, Directive, HealthState, MAX_ANSWER_ITEMS, MAX_CLOCK_SKEW_MS,
    ReaderHealth, Verdict,
};
use serde_json::json;

use super::alert::{AlertKind, NewAlert, cause};
use super::time::Timestamp;

/// How long a gate sounds for one alarm verdict, in milliseconds.
pub const ALARM_DURATION_MS: u64 = 30_000;

/// The cause under which every failed authentication of an unregistered device id is counted:
/// one live alert for all of them, so a flood of made-up ids cannot flood the console.
pub const UNKNOWN_DEVICE_CAUSE: &str = "device_auth_failed:unknown";

/// Unix milliseconds of a server timestamp (the server clock has one-second resolution).
pub fn unix_ms(t: Timestamp) -> i64 {
    t.unix().saturating_mul(1000)
}

/// The normalised carrier-tag key of an EPC: `epc:` and upper-case hex (`carrier_tags.tag`).
pub fn epc_tag(epc: &Epc) -> String {
    format!("epc:{epc}")
}

/// The normalised key of a barcode's text: `barcode:TEXT`.
pub fn barcode_tag(text: &str) -> String {
    format!("barcode:{text}")
}

/// The normalised key of an EM4100 card id: `em:HEX` (upper case, as validated on the wire).
pub fn em_tag(id: &str) -> String {
    format!("em:{}", id.to_ascii_uppercase())
}

/// The upper-cased forms a stored `people.badge_tag` may take for a badge EPC: `EPC:HEX` (the
/// normalised form `epc:HEX`, upper-cased) or the bare `HEX`. Compare with `upper(badge_tag)`.
pub fn badge_forms(epc: &Epc) -> [String; 2] {
    [format!("EPC:{epc}"), epc.to_string()]
}

/// The badge EPC a stored `people.badge_tag` names: `epc:HEX` or bare hex, either case. `None`
/// for anything else (such a badge cannot be read by a UHF gate, so it is not checked there).
pub fn badge_epc(badge_tag: &str) -> Option<Epc> {
    let hex = match badge_tag.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("epc:") => &badge_tag[4..],
        _ => badge_tag,
    };
    if hex.is_empty() {
        return None;
    }
    Epc::from_hex(hex).ok()
}

/// What the server holds for one `(device, epoch)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochRecord {
    /// The epoch.
    pub epoch: u64,
    /// Every seq up to this is stored (0 = none).
    pub acked_through: u64,
    /// The last heartbeat accepted in this epoch (0 = none).
    pub hb_seq: u64,
}

/// What to do with a batch that may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPlan {
    /// Every event is already stored: answer from storage, store nothing.
    Duplicate,
    /// Seqs before `new_from` are already stored (answer them from storage); store
    /// `new_from ..= last`.
    Store {
        /// The first seq not yet stored.
        new_from: u64,
    },
}

/// Why a batch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRefusal {
    /// Storing it would leave a gap; the device must resend from `resend_from`.
    Gap {
        /// `acked_through + 1` of the batch's epoch.
        resend_from: u64,
    },
    /// An older epoch than the newest with stored events, with events not stored yet.
    OldEpoch {
        /// The newest epoch with stored events.
        newest: u64,
    },
}

/// Decide a batch of `epoch` carrying seqs `first ..= last`, given what is stored for that
/// epoch (`acked_through`, 0 if nothing) and the newest epoch of the device with stored events.
pub fn plan_batch(
    epoch: u64,
    first: u64,
    last: u64,
    acked_through: u64,
    newest_with_events: Option<u64>,
) -> Result<BatchPlan, BatchRefusal> {
    if last <= acked_through {
        return Ok(BatchPlan::Duplicate);
    }
    if let Some(newest) = newest_with_events.filter(|n| epoch < *n) {
        return Err(BatchRefusal::OldEpoch { newest });
    }
    let next = acked_through.saturating_add(1);
    if first > next {
        return Err(BatchRefusal::Gap { resend_from: next });
    }
    Ok(BatchPlan::Store { new_from: next })
}

/// Whether epochs and seqs fit the `i64` columns they are stored in.
pub fn fits_storage(values: &[u64]) -> bool {
    values.iter().all(|v| i64::try_from(*v).is_ok())
}

/// Why a heartbeat is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatRefusal {
    /// The device has already reported a newer epoch.
    OldEpoch {
        /// The newest epoch known.
        newest: u64,
    },
    /// Not newer than the last heartbeat accepted in this epoch.
    NotNewer {
        /// The last accepted `hb_seq`.
        last: u64,
    },
}

/// Check a heartbeat's `(epoch, hb_seq)` against `newest`, the device's epoch record with the
/// highest epoch. `hb_seq` starts at 1: 0 is never newer than anything.
pub fn check_heartbeat(
    newest: Option<EpochRecord>,
    epoch: u64,
    hb_seq: u64,
) -> Result<(), HeartbeatRefusal> {
    match newest {
        _ if hb_seq == 0 => Err(HeartbeatRefusal::NotNewer { last: 0 }),
        None => Ok(()),
        Some(r) if epoch > r.epoch => Ok(()),
        Some(r) if epoch < r.epoch => Err(HeartbeatRefusal::OldEpoch { newest: r.epoch }),
        Some(r) if hb_seq > r.hb_seq => Ok(()),
        Some(r) => Err(HeartbeatRefusal::NotNewer { last: r.hb_seq }),
    }
}

/// Whether a device's `at_ms` is within [`MAX_CLOCK_SKEW_MS`] of the server's `now_ms`.
pub fn clock_in_step(device_at_ms: i64, now_ms: i64) -> bool {
    device_at_ms.abs_diff(now_ms) <= MAX_CLOCK_SKEW_MS.unsigned_abs()
}

/// Whether an alarm reason is a removal (the carrier must not leave): the door is locked too.
pub fn is_removal(reason: AlarmReason) -> bool {
    matches!(
        reason,
        AlarmReason::UnauthorizedRemoval
            | AlarmReason::SignoutExpired
            | AlarmReason::BorrowerAbsent
            | AlarmReason::BadgeMissing
    )
}

/// The directives answering `verdicts`: one [`Directive::SoundAlarm`] per alarmed alert (in
/// verdict order, each alert once), locking the door for removals; at most
/// [`MAX_ANSWER_ITEMS`]. A function of the verdicts alone, so a re-delivered batch gets the
/// same directives as the first time.
pub fn alarm_directives(verdicts: &[Verdict]) -> Vec<Directive> {
    let mut out: Vec<Directive> = Vec::new();
    for v in verdicts {
        let custos_protocol::uplink::Outcome::Alarm { reason, alert_id } = &v.outcome else {
            continue;
        };
        let seen = alert_id.is_some()
            && out
                .iter()
                .any(|d| matches!(d, Directive::SoundAlarm { alert_id: a, .. } if a == alert_id));
        if seen {
            continue;
        }
        if out.len() == MAX_ANSWER_ITEMS {
            break;
        }
        out.push(Directive::SoundAlarm {
            duration_ms: ALARM_DURATION_MS,
            lock_door: is_removal(*reason),
            alert_id: alert_id.clone(),
        });
    }
    out
}

/// Whether a reader whose last known state was `previous` has just become faulty: a
/// `reader_fault` alert is raised on the transition, not on every report while it lasts.
pub fn newly_faulty(previous: Option<HealthState>, now: HealthState) -> bool {
    now == HealthState::Fault && previous != Some(HealthState::Fault)
}

/// How a device failed authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No device is registered under the id in the path.
    UnknownDevice,
    /// The `custos-signature` header is missing or not base64 of 64 bytes.
    MissingSignature,
    /// The signature does not verify with the device's key.
    BadSignature,
    /// The device was revoked by an administrator.
    Revoked,
    /// The body is signed correctly but malformed (not JSON of the message, invalid, or for
    /// another device).
    Malformed(String),
}

impl AuthFailure {
    /// A short reason for the alert detail.
    pub fn reason(&self) -> &str {
        match self {
            AuthFailure::UnknownDevice => "unknown device",
            AuthFailure::MissingSignature => "missing or malformed signature",
            AuthFailure::BadSignature => "signature does not verify",
            AuthFailure::Revoked => "device revoked",
            AuthFailure::Malformed(reason) => reason,
        }
    }
}

/// At most this many characters of a client-supplied text are kept in an alert detail.
const DETAIL_CHARS: usize = 200;

fn clip(text: &str) -> String {
    text.chars().take(DETAIL_CHARS).collect()
}

/// The `device_auth_failed` alert for a request claiming to be `device_id` (registered or
/// not; an unregistered id is counted under [`UNKNOWN_DEVICE_CAUSE`] and never stored as a
/// device reference). `path` names the endpoint.
pub fn auth_failed_alert(
    device_id: &str,
    registered: bool,
    failure: &AuthFailure,
    path: &str,
    at_ms: i64,
) -> NewAlert {
    let key = if registered {
        cause(AlertKind::DeviceAuthFailed, &[("device", device_id)])
    } else {
        UNKNOWN_DEVICE_CAUSE.to_owned()
    };
    let mut alert = NewAlert::new(AlertKind::DeviceAuthFailed, key, at_ms);
    alert.device_id = registered.then(|| device_id.to_owned());
    alert.detail = json!({
        "claimed_device_id": clip(device_id),
        "reason": clip(failure.reason()),
        "endpoint": path,
    });
    alert
}

/// The `replay_rejected` alert for a device (one live alert per device).
pub fn replay_alert(device_id: &str, what: &str, reason: &str, at_ms: i64) -> NewAlert {
    let mut alert = NewAlert::new(
        AlertKind::ReplayRejected,
        cause(AlertKind::ReplayRejected, &[("device", device_id)]),
        at_ms,
    );
    alert.device_id = Some(device_id.to_owned());
    alert.detail = json!({ "message": what, "reason": reason });
    alert
}

/// The `reader_fault` alert for a reader that reports a fault (cause per device and reader).
pub fn reader_fault_alert(
    device_id: &str,
    reader: &str,
    health: &ReaderHealth,
    at_ms: i64,
) -> NewAlert {
    let mut alert = NewAlert::new(
        AlertKind::ReaderFault,
        cause(
            AlertKind::ReaderFault,
            &[("device", device_id), ("reader", reader)],
        ),
        at_ms,
    );
    alert.device_id = Some(device_id.to_owned());
    alert.detail = json!({ "reader": reader, "state": health.state, "fault": health.fault });
    alert
}

/// The `reader_fault` alert for a fault of the daemon itself (cause per device and fault kind).
pub fn device_fault_alert(
    device_id: &str,
    kind: DeviceFaultKind,
    detail: &str,
    at_ms: i64,
) -> NewAlert {
    let kind_name = kind.as_str();
    let mut alert = NewAlert::new(
        AlertKind::ReaderFault,
        cause(
            AlertKind::ReaderFault,
            &[("device", device_id), ("fault", kind_name)],
        ),
        at_ms,
    );
    alert.device_id = Some(device_id.to_owned());
    alert.detail = json!({ "fault": kind_name, "detail": clip(detail) });
    alert
}

/// The `reader_fault` alert for a device whose clock is out of step with the server's (its
/// heartbeats are refused until it is fixed, so it will also go silent).
pub fn clock_skew_alert(device_id: &str, device_at_ms: i64, now_ms: i64) -> NewAlert {
    let mut alert = NewAlert::new(
        AlertKind::ReaderFault,
        cause(
            AlertKind::ReaderFault,
            &[("device", device_id), ("fault", "clock_skew")],
        ),
        now_ms,
    );
    alert.device_id = Some(device_id.to_owned());
    alert.detail = json!({
        "fault": "clock_skew",
        "device_at_ms": device_at_ms,
        "server_at_ms": now_ms,
    });
    alert
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_protocol::uplink::Outcome;

    #[test]
    fn a_fresh_epoch_starts_at_seq_one() {
        assert_eq!(
            plan_batch(1, 1, 3, 0, None),
            Ok(BatchPlan::Store { new_from: 1 })
        );
        assert_eq!(
            plan_batch(1, 2, 3, 0, None),
            Err(BatchRefusal::Gap { resend_from: 1 })
        );
        // A new higher epoch while an older one has events: seq 1 again.
        assert_eq!(
            plan_batch(5, 1, 1, 0, Some(4)),
            Ok(BatchPlan::Store { new_from: 1 })
        );
        assert_eq!(
            plan_batch(5, 7, 9, 0, Some(4)),
            Err(BatchRefusal::Gap { resend_from: 1 })
        );
    }

    #[test]
    fn overlap_is_ignored_and_gaps_are_refused() {
        // Stored through 10.
        assert_eq!(
            plan_batch(2, 11, 12, 10, Some(2)),
            Ok(BatchPlan::Store { new_from: 11 })
        );
        assert_eq!(
            plan_batch(2, 8, 12, 10, Some(2)),
            Ok(BatchPlan::Store { new_from: 11 })
        );
        assert_eq!(
            plan_batch(2, 12, 13, 10, Some(2)),
            Err(BatchRefusal::Gap { resend_from: 11 })
        );
    }

    #[test]
    fn a_batch_already_stored_is_a_duplicate_in_any_epoch() {
        assert_eq!(plan_batch(2, 3, 10, 10, Some(2)), Ok(BatchPlan::Duplicate));
        assert_eq!(plan_batch(2, 1, 1, 10, Some(2)), Ok(BatchPlan::Duplicate));
        // An old epoch's batch that was stored before is answered, not refused.
        assert_eq!(plan_batch(1, 4, 6, 6, Some(3)), Ok(BatchPlan::Duplicate));
    }

    #[test]
    fn an_old_epoch_with_new_events_is_a_replay() {
        // Epoch 3 has events; epoch 1 never stored anything.
        assert_eq!(
            plan_batch(1, 1, 2, 0, Some(3)),
            Err(BatchRefusal::OldEpoch { newest: 3 })
        );
        // Epoch 2 stored through 4; a batch overlapping into new seqs is refused whole.
        assert_eq!(
            plan_batch(2, 4, 5, 4, Some(3)),
            Err(BatchRefusal::OldEpoch { newest: 3 })
        );
        // The old epoch's backlog before any newer epoch stored events is fine.
        assert_eq!(
            plan_batch(2, 5, 6, 4, Some(2)),
            Ok(BatchPlan::Store { new_from: 5 })
        );
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        assert_eq!(
            plan_batch(1, u64::MAX, u64::MAX, u64::MAX, None),
            Ok(BatchPlan::Duplicate)
        );
        assert!(fits_storage(&[0, i64::MAX as u64]));
        assert!(!fits_storage(&[1, i64::MAX as u64 + 1]));
    }

    fn rec(epoch: u64, hb_seq: u64) -> Option<EpochRecord> {
        Some(EpochRecord {
            epoch,
            acked_through: 0,
            hb_seq,
        })
    }

    #[test]
    fn heartbeats_must_be_newer() {
        assert_eq!(check_heartbeat(None, 1, 1), Ok(()));
        assert_eq!(check_heartbeat(rec(1, 5), 1, 6), Ok(()));
        assert_eq!(
            check_heartbeat(rec(1, 5), 1, 5),
            Err(HeartbeatRefusal::NotNewer { last: 5 })
        );
        assert_eq!(
            check_heartbeat(rec(1, 5), 1, 2),
            Err(HeartbeatRefusal::NotNewer { last: 5 })
        );
        // A new epoch restarts the counter; an old epoch is refused whatever its hb_seq.
        assert_eq!(check_heartbeat(rec(1, 5), 2, 1), Ok(()));
        assert_eq!(
            check_heartbeat(rec(2, 1), 1, 99),
            Err(HeartbeatRefusal::OldEpoch { newest: 2 })
        );
        // hb_seq 0 is never accepted (an epoch row made by a batch has hb_seq 0).
        assert_eq!(
            check_heartbeat(None, 1, 0),
            Err(HeartbeatRefusal::NotNewer { last: 0 })
        );
        assert_eq!(
            check_heartbeat(rec(1, 0), 1, 0),
            Err(HeartbeatRefusal::NotNewer { last: 0 })
        );
    }

    #[test]
    fn clocks_must_be_in_step() {
        let now = 1_767_225_600_000;
        assert!(clock_in_step(now, now));
        assert!(clock_in_step(now - MAX_CLOCK_SKEW_MS, now));
        assert!(clock_in_step(now + MAX_CLOCK_SKEW_MS, now));
        assert!(!clock_in_step(now - MAX_CLOCK_SKEW_MS - 1, now));
        assert!(!clock_in_step(now + MAX_CLOCK_SKEW_MS + 1, now));
        assert!(!clock_in_step(i64::MIN, i64::MAX));
    }

    fn alarm(seq: u64, reason: AlarmReason, id: Option<&str>) -> Verdict {
        Verdict {
            seq,
            outcome: Outcome::Alarm {
                reason,
                alert_id: id.map(str::to_owned),
            },
        }
    }

    #[test]
    fn directives_sound_each_alert_once_and_lock_only_for_removals() {
        let verdicts = [
            Verdict {
                seq: 1,
                outcome: Outcome::Allowed,
            },
            alarm(2, AlarmReason::UnauthorizedRemoval, Some("7")),
            alarm(3, AlarmReason::UnauthorizedRemoval, Some("7")),
            alarm(4, AlarmReason::ClearanceViolation, Some("8")),
            alarm(5, AlarmReason::BorrowerAbsent, Some("9")),
        ];
        assert_eq!(
            alarm_directives(&verdicts),
            [
                Directive::SoundAlarm {
                    duration_ms: ALARM_DURATION_MS,
                    lock_door: true,
                    alert_id: Some("7".into())
                },
                Directive::SoundAlarm {
                    duration_ms: ALARM_DURATION_MS,
                    lock_door: false,
                    alert_id: Some("8".into())
                },
                Directive::SoundAlarm {
                    duration_ms: ALARM_DURATION_MS,
                    lock_door: true,
                    alert_id: Some("9".into())
                },
            ]
        );
        assert!(alarm_directives(&verdicts[..1]).is_empty());
        let many: Vec<Verdict> = (0..300)
            .map(|i| alarm(i, AlarmReason::UnauthorizedRemoval, Some(&i.to_string())))
            .collect();
        assert_eq!(alarm_directives(&many).len(), MAX_ANSWER_ITEMS);
    }

    #[test]
    fn faults_alert_on_the_transition_only() {
        assert!(newly_faulty(None, HealthState::Fault));
        assert!(newly_faulty(Some(HealthState::Ok), HealthState::Fault));
        assert!(newly_faulty(
            Some(HealthState::Degraded),
            HealthState::Fault
        ));
        assert!(!newly_faulty(Some(HealthState::Fault), HealthState::Fault));
        assert!(!newly_faulty(None, HealthState::Degraded));
        assert!(!newly_faulty(Some(HealthState::Fault), HealthState::Ok));
    }

    #[test]
    fn tags_are_normalised() {
        let epc = Epc::from_hex("3474257bf40000000000162e").unwrap();
        assert_eq!(epc_tag(&epc), "epc:3474257BF40000000000162E");
        assert_eq!(em_tag("1a00b54e12"), "em:1A00B54E12");
        assert_eq!(barcode_tag("CUS-1"), "barcode:CUS-1");
        assert_eq!(
            badge_forms(&epc),
            ["EPC:3474257BF40000000000162E", "3474257BF40000000000162E"]
        );
        assert_eq!(badge_epc("epc:3474257bf40000000000162e"), Some(epc));
        assert_eq!(badge_epc("EPC:3474257BF40000000000162E"), Some(epc));
        assert_eq!(badge_epc("3474257BF40000000000162E"), Some(epc));
        assert_eq!(badge_epc("em:1A00B54E12"), None);
        assert_eq!(badge_epc("epc:"), None);
        assert_eq!(badge_epc(""), None);
        assert_eq!(badge_epc("badge-7"), None);
    }

    #[test]
    fn auth_alerts_for_unknown_ids_share_one_cause() {
        let a = auth_failed_alert("ghost-1", false, &AuthFailure::UnknownDevice, "batches", 1);
        let b = auth_failed_alert("ghost-2", false, &AuthFailure::UnknownDevice, "batches", 2);
        assert_eq!(a.cause, UNKNOWN_DEVICE_CAUSE);
        assert_eq!(a.cause, b.cause);
        assert_eq!(a.device_id, None);
        let known = auth_failed_alert("gate-1", true, &AuthFailure::BadSignature, "batches", 3);
        assert_eq!(known.cause, "device_auth_failed:device:gate-1");
        assert_eq!(known.device_id.as_deref(), Some("gate-1"));
        assert_eq!(known.detail["reason"], "signature does not verify");
        let long = auth_failed_alert(&"x".repeat(500), false, &AuthFailure::UnknownDevice, "p", 4);
        assert_eq!(
            long.detail["claimed_device_id"].as_str().unwrap().len(),
            DETAIL_CHARS
        );
    }

    #[test]
    fn fault_alert_causes_name_device_and_reader() {
        let health = ReaderHealth {
            state: HealthState::Fault,
            fault: Some(custos_protocol::uplink::ReaderFault::SerialLost),
            frames_ok: 0,
            checksum_errors: 0,
            dropped_bytes: 0,
            last_read_ms: None,
        };
        let a = reader_fault_alert("gate-1", "uhf-main", &health, 5);
        assert_eq!(a.cause, "reader_fault:device:gate-1:reader:uhf-main");
        assert_eq!(a.detail["fault"]["type"], "serial_lost");
        let d = device_fault_alert("gate-1", DeviceFaultKind::OutboxFull, "10000 events", 6);
        assert_eq!(d.cause, "reader_fault:device:gate-1:fault:outbox_full");
        assert_eq!(d.detail["detail"], "10000 events");
        let r = replay_alert("gate-1", "batch", "old epoch", 7);
        assert_eq!(r.cause, "replay_rejected:device:gate-1");
        assert_eq!(
            clock_skew_alert("g", 0, 9).cause,
            "reader_fault:device:g:fault:clock_skew"
        );
    }
}
