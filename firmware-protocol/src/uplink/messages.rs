//! The message types of the uplink and their validation.

use crate::epc::Epc;

use super::{
    MAX_ANSWER_ITEMS, MAX_BATCH_EVENTS, MAX_DEVICE_FAULTS, MAX_READERS, MAX_TAGS_PER_LIST,
    UplinkError, check_count, check_id, check_text,
};

/// Signed by the device: a run of consecutive events from its outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Batch {
    /// The device as registered on the server (1..=64 characters).
    pub device_id: String,
    /// The device's boot epoch: persisted, incremented at every daemon start.
    pub epoch: u64,
    /// 1..=[`MAX_BATCH_EVENTS`] events with consecutive seqs, oldest first.
    pub events: Vec<Event>,
}

/// One outbox event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Event {
    /// Per device and epoch: starts at 1, +1 per event.
    pub seq: u64,
    /// When it happened (for a passage: when the person crossed).
    pub at_ms: i64,
    /// What happened.
    pub body: EventBody,
}

/// What an event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum EventBody {
    /// Someone went through a gate, with the carrier tags and badges read on the way.
    Passage {
        /// The gate's reader name (from the daemon configuration).
        reader: String,
        /// The direction of travel.
        direction: Direction,
        /// Carrier tags read during the passage.
        tags: Vec<TagSighting>,
        /// Staff badges read during the passage.
        badges: Vec<TagSighting>,
        /// What the daemon decided on its own, if it had to (no timely server verdict).
        local_verdict: Option<LocalVerdict>,
    },
    /// A cabinet inventory: what is on the shelves now, and the change since the last one.
    CabinetSnapshot {
        /// The cabinet's reader name.
        reader: String,
        /// Every tag present now.
        present: Vec<Epc>,
        /// Tags present now that were not in the previous snapshot of this reader.
        added: Vec<Epc>,
        /// Tags in the previous snapshot of this reader that are gone now.
        removed: Vec<Epc>,
    },
    /// A barcode or an EM card presented at a desk or handheld reader.
    Scan {
        /// The reader name.
        reader: String,
        /// What was read.
        code: ScannedCode,
    },
    /// A reader's health changed (the daemon reports changes; heartbeats carry the state).
    ReaderHealth {
        /// The reader name.
        reader: String,
        /// Its health now.
        health: ReaderHealth,
    },
    /// Carriers of an earlier (provisional) `Passage` of this epoch went back to the side they
    /// came from: they reached the far side's field but did not pass (a person who stepped
    /// into the outer field and turned back, perhaps at the alarm). The passage event stays as
    /// it was, with whatever it raised; this records that these carriers are back where they
    /// started.
    TurnedBack {
        /// The gate's reader name.
        reader: String,
        /// The seq of that passage event, in this event's epoch (before this event's seq).
        passage_seq: u64,
        /// Its carrier tags that went back (1..=[`MAX_TAGS_PER_LIST`]).
        tags: Vec<Epc>,
    },
    /// The daemon itself has a problem.
    DeviceFault {
        /// What kind of problem.
        kind: DeviceFaultKind,
        /// Human-readable detail (at most 1024 characters; no carrier titles or secrets).
        detail: String,
    },
}

/// The direction of a passage through a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Direction {
    /// Into the secure area (outer side to inner side).
    In,
    /// Out of the secure area (inner side to outer side): the one that can be a removal.
    Out,
}

impl Direction {
    /// The wire name: `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One tag as seen during a passage, summarised by the daemon's smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct TagSighting {
    /// The tag.
    pub epc: Epc,
    /// The antenna (1-based, as configured) of the first read.
    pub antenna_first: u8,
    /// The antenna (1-based) of the last read.
    pub antenna_last: u8,
    /// How many reads (at least 1).
    pub reads: u32,
    /// The strongest RSSI, as the reader's raw byte (higher = stronger; model specific).
    pub peak_rssi: u8,
    /// The first read.
    pub first_ms: i64,
    /// The last read (not before `first_ms`).
    pub last_ms: i64,
}

/// What the daemon decided on its own with its cached policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct LocalVerdict {
    /// Whether the daemon sounded the alarm.
    pub alarm: bool,
    /// The version of the policy it used (0 = it had none).
    pub policy_version: u64,
    /// Why it alarmed (the first alarming tag's reason); `None` exactly when `alarm` is false.
    /// The server can re-derive every tag's reason from the tags and the policy version.
    pub reason: Option<AlarmReason>,
}

/// A code read by a desk or handheld reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum ScannedCode {
    /// A barcode's text, as the scanner sent it without terminator or AIM prefix.
    Barcode {
        /// The text (1..=1024 characters).
        text: String,
    },
    /// A 125 kHz EM4100 card: 10 upper-case hex digits (`1A00B54E12`).
    EmCard {
        /// The card id.
        id: String,
    },
}

/// What kind of problem the daemon has. Unknown values read as [`DeviceFaultKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum DeviceFaultKind {
    /// The outbox is full; the daemon drops or refuses new events until uploads catch up.
    OutboxFull,
    /// The outbox database failed (disk full, I/O error).
    StorageError,
    /// The Modbus link to the gate I/O module is lost: the alarm cannot be driven.
    GateIoLost,
    /// The wall clock stepped (by more than the smoothing tolerates); times around it are suspect.
    ClockStep,
    /// The cached gate policy has expired and no new one could be fetched.
    PolicyExpired,
    /// Anything else; the detail says what.
    #[cfg_attr(feature = "serde", serde(other))]
    Other,
}

impl DeviceFaultKind {
    /// The wire name (`outbox_full`, `storage_error`, `gate_io_lost`, `clock_step`,
    /// `policy_expired`, `other`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceFaultKind::OutboxFull => "outbox_full",
            DeviceFaultKind::StorageError => "storage_error",
            DeviceFaultKind::GateIoLost => "gate_io_lost",
            DeviceFaultKind::ClockStep => "clock_step",
            DeviceFaultKind::PolicyExpired => "policy_expired",
            DeviceFaultKind::Other => "other",
        }
    }
}

/// A fault of the daemon itself that stands when a [`Heartbeat`] is sent.
///
/// The durable record of a fault is a [`EventBody::DeviceFault`] event, written when the
/// outbox can take it; the heartbeat says what stands *now*, so a fault that keeps the event
/// from being stored (a full outbox) still reaches the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct DeviceFault {
    /// What kind of problem (the daemon lists each kind at most once).
    pub kind: DeviceFaultKind,
    /// When the daemon raised it (its clock).
    pub since_ms: i64,
    /// Human-readable detail (at most 1024 characters; no carrier titles or secrets).
    pub detail: String,
}

/// The health of one reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ReaderHealth {
    /// The overall state.
    pub state: HealthState,
    /// The current fault, if the state is not `ok`.
    pub fault: Option<ReaderFault>,
    /// Frames decoded since the daemon started.
    pub frames_ok: u64,
    /// Frames refused for a bad checksum since the daemon started.
    pub checksum_errors: u64,
    /// Bytes dropped while resynchronising since the daemon started.
    pub dropped_bytes: u64,
    /// The last tag read, if any since the daemon started.
    pub last_read_ms: Option<i64>,
}

/// A reader's overall state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum HealthState {
    /// Answering and reading normally.
    Ok,
    /// Answering, but with errors (checksum errors, an antenna missing).
    Degraded,
    /// Not usable: the gate or cabinet is blind.
    Fault,
}

/// Why a reader is degraded or faulty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum ReaderFault {
    /// The reader does not answer commands.
    NoReply,
    /// The serial port (or TCP link) to the reader is gone.
    SerialLost,
    /// An antenna reports as disconnected.
    AntennaMissing {
        /// The antenna (1-based).
        antenna: u8,
    },
    /// The reader answers, but not in the protocol or reply form configured for it (a
    /// UHFReader288 configured as `chafon_form = "18"`, or bytes that parse as nothing): a
    /// configuration to fix, not a reader that is gone.
    ProtocolMismatch {
        /// What was expected and what was seen (at most 1024 characters).
        detail: String,
    },
    /// Anything else.
    Other {
        /// What (at most 1024 characters).
        detail: String,
    },
}

/// A reader's health, named, as carried in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct NamedHealth {
    /// The reader name.
    pub reader: String,
    /// Its health.
    pub health: ReaderHealth,
}

/// Signed by the device: "I am alive, and this is the state of my readers".
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Heartbeat {
    /// The device.
    pub device_id: String,
    /// The device's boot epoch.
    pub epoch: u64,
    /// Strictly increasing within the epoch, so a replayed heartbeat is refused.
    pub hb_seq: u64,
    /// When it was sent.
    pub at_ms: i64,
    /// Every configured reader (at most [`MAX_READERS`]).
    pub readers: Vec<NamedHealth>,
    /// Events in the outbox not yet acknowledged.
    pub outbox_depth: u64,
    /// The version of the gate policy the daemon holds (0 = none).
    pub policy_version: u64,
    /// The daemon's own faults standing now (at most [`MAX_DEVICE_FAULTS`]). Absent when
    /// there are none, so such a heartbeat is also one a server from before this field
    /// accepts; a heartbeat without it (an older daemon) reads as having none.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub faults: Vec<DeviceFault>,
}

/// Signed by the device: "send me my current gate policy".
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct PolicyRequest {
    /// The device.
    pub device_id: String,
    /// The device's boot epoch.
    pub epoch: u64,
    /// When it was sent (the server refuses a stale request).
    pub at_ms: i64,
    /// The version the daemon holds (0 = none).
    pub have_version: u64,
}

/// Signed by the server: which events are stored, and what the server decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct BatchAck {
    /// The device the batch came from.
    pub device_id: String,
    /// The batch's epoch.
    pub epoch: u64,
    /// Every seq ≤ this in this epoch is durably stored; the daemon may delete them.
    pub acked_through: u64,
    /// A verdict for each passage of the batch the server judged.
    pub verdicts: Vec<Verdict>,
    /// What the device should do now.
    pub directives: Vec<Directive>,
    /// The newest gate policy version for the device (fetch it if newer than the cached one).
    pub policy_version: u64,
}

/// The server's verdict on one passage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Verdict {
    /// The passage event's seq.
    pub seq: u64,
    /// The decision.
    pub outcome: Outcome,
}

/// The server's decision on a passage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Outcome {
    /// Nothing wrong.
    Allowed,
    /// Alarm: the gate should sound (a [`Directive::SoundAlarm`] says how).
    Alarm {
        /// Why.
        reason: AlarmReason,
        /// The alert raised on the server, if any.
        alert_id: Option<String>,
    },
}

/// Why a passage alarms. Unknown values read as [`AlarmReason::Other`].
///
/// The first four match the server's alert kinds of the same name; the others are the
/// daemon's fail-secure reasons and the details of a refused sign-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum AlarmReason {
    /// The carrier is leaving without a sign-out that allows it.
    UnauthorizedRemoval,
    /// The person carrying it lacks the clearance for its level.
    ClearanceViolation,
    /// The tag is not registered to any carrier.
    UnknownTag,
    /// The tag was seen in two places at once, or its TID does not match.
    TagCloneSuspected,
    /// A sign-out allowed the carrier to leave, but its time is over.
    SignoutExpired,
    /// Badges were read, but none of the carrier's borrowers'.
    BorrowerAbsent,
    /// No badge at all was read, and the carrier's level requires its borrower's badge at this
    /// gate (the server's `[gate] badge_required` setting, carried by each policy entry).
    BadgeMissing,
    /// The daemon's policy has expired (`valid_until_ms` passed).
    PolicyExpired,
    /// The daemon's clock is before the policy was issued: its time cannot be trusted.
    ClockUntrusted,
    /// The daemon has no policy.
    NoPolicy,
    /// A reason this version does not know.
    #[cfg_attr(feature = "serde", serde(other))]
    Other,
}

/// Something the server asks the device to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Directive {
    /// Turn the alarm light and sounder on for `duration_ms`.
    SoundAlarm {
        /// How long.
        duration_ms: u64,
        /// Also lock the door (and close the barrier) for that time.
        lock_door: bool,
        /// The alert this alarm is for, so a later [`Directive::SilenceAlarm`] can end it.
        alert_id: Option<String>,
    },
    /// A guard acknowledged the alert: stop the alarm sounded for it.
    SilenceAlarm {
        /// The alert.
        alert_id: String,
    },
    /// Fetch the gate policy now.
    RefreshPolicy,
}

/// Signed by the server: the answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct HeartbeatAck {
    /// The device.
    pub device_id: String,
    /// The heartbeat's epoch.
    pub epoch: u64,
    /// The heartbeat answered.
    pub hb_seq: u64,
    /// The newest gate policy version for the device.
    pub policy_version: u64,
    /// What the device should do now (alarms to silence, a policy to fetch).
    pub directives: Vec<Directive>,
}

impl Batch {
    /// Checks the batch: a valid device id; 1..=[`MAX_BATCH_EVENTS`] events; seqs starting at
    /// 1 or later and consecutive; and each event's own rules (ids, list sizes, EM card ids,
    /// sighting times, local verdicts, a turned-back naming an earlier seq).
    pub fn validate(&self) -> Result<(), UplinkError> {
        check_id("device_id", &self.device_id)?;
        let first = self
            .events
            .first()
            .ok_or(UplinkError::Empty { field: "events" })?;
        check_count("events", &self.events, MAX_BATCH_EVENTS)?;
        if first.seq == 0 {
            return Err(UplinkError::SeqZero);
        }
        // len <= MAX_BATCH_EVENTS, so the cast is exact.
        first
            .seq
            .checked_add(self.events.len() as u64 - 1)
            .ok_or(UplinkError::SeqOverflow)?;
        for (event, expected) in self.events.iter().zip(first.seq..=u64::MAX) {
            if event.seq != expected {
                return Err(UplinkError::SeqGap {
                    expected,
                    found: event.seq,
                });
            }
            event.body.validate()?;
            if let EventBody::TurnedBack { passage_seq, .. } = event.body {
                if passage_seq >= event.seq {
                    return Err(UplinkError::TurnedBackOrder {
                        seq: event.seq,
                        passage_seq,
                    });
                }
            }
        }
        Ok(())
    }

    /// The first and last seq, if there are events.
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        Some((self.events.first()?.seq, self.events.last()?.seq))
    }
}

impl EventBody {
    /// Checks one event body's rules (see [`Batch::validate`]).
    pub fn validate(&self) -> Result<(), UplinkError> {
        match self {
            EventBody::Passage {
                reader,
                direction: _,
                tags,
                badges,
                local_verdict,
            } => {
                check_id("reader", reader)?;
                check_count("tags", tags, MAX_TAGS_PER_LIST)?;
                check_count("badges", badges, MAX_TAGS_PER_LIST)?;
                tags.iter()
                    .chain(badges)
                    .try_for_each(TagSighting::validate)?;
                local_verdict
                    .as_ref()
                    .map_or(Ok(()), LocalVerdict::validate)
            }
            EventBody::CabinetSnapshot {
                reader,
                present,
                added,
                removed,
            } => {
                check_id("reader", reader)?;
                check_count("present", present, MAX_TAGS_PER_LIST)?;
                check_count("added", added, MAX_TAGS_PER_LIST)?;
                check_count("removed", removed, MAX_TAGS_PER_LIST)
            }
            EventBody::Scan { reader, code } => {
                check_id("reader", reader)?;
                code.validate()
            }
            EventBody::ReaderHealth { reader, health } => {
                check_id("reader", reader)?;
                health.validate()
            }
            EventBody::TurnedBack {
                reader,
                passage_seq,
                tags,
            } => {
                check_id("reader", reader)?;
                if *passage_seq == 0 {
                    return Err(UplinkError::Zero {
                        field: "passage_seq",
                    });
                }
                if tags.is_empty() {
                    return Err(UplinkError::Empty { field: "tags" });
                }
                check_count("tags", tags, MAX_TAGS_PER_LIST)
            }
            EventBody::DeviceFault { kind: _, detail } => check_text("detail", detail),
        }
    }
}

impl TagSighting {
    /// Checks: antennas and reads at least 1, `first_ms <= last_ms`.
    pub fn validate(&self) -> Result<(), UplinkError> {
        if self.antenna_first == 0 {
            return Err(UplinkError::Zero {
                field: "antenna_first",
            });
        }
        if self.antenna_last == 0 {
            return Err(UplinkError::Zero {
                field: "antenna_last",
            });
        }
        if self.reads == 0 {
            return Err(UplinkError::Zero { field: "reads" });
        }
        if self.first_ms > self.last_ms {
            return Err(UplinkError::TimeOrder { field: "first_ms" });
        }
        Ok(())
    }
}

impl LocalVerdict {
    /// Checks that `reason` is present exactly when `alarm` is set.
    pub fn validate(&self) -> Result<(), UplinkError> {
        if self.alarm != self.reason.is_some() {
            return Err(UplinkError::VerdictReason);
        }
        Ok(())
    }
}

impl ScannedCode {
    /// Checks: barcode text 1..=1024 characters; EM card id exactly 10 upper-case hex digits.
    pub fn validate(&self) -> Result<(), UplinkError> {
        match self {
            ScannedCode::Barcode { text } if text.is_empty() => {
                Err(UplinkError::Empty { field: "text" })
            }
            ScannedCode::Barcode { text } => check_text("text", text),
            ScannedCode::EmCard { id } => {
                let ok = id.len() == 10
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
                if ok { Ok(()) } else { Err(UplinkError::EmCard) }
            }
        }
    }
}

impl ReaderHealth {
    /// Checks the fault's detail length and antenna number.
    pub fn validate(&self) -> Result<(), UplinkError> {
        match &self.fault {
            Some(ReaderFault::Other { detail } | ReaderFault::ProtocolMismatch { detail }) => {
                check_text("detail", detail)
            }
            Some(ReaderFault::AntennaMissing { antenna: 0 }) => {
                Err(UplinkError::Zero { field: "antenna" })
            }
            _ => Ok(()),
        }
    }
}

impl Heartbeat {
    /// Checks: a valid device id, at most [`MAX_READERS`] readers with valid names and health,
    /// at most [`MAX_DEVICE_FAULTS`] faults with valid details.
    pub fn validate(&self) -> Result<(), UplinkError> {
        check_id("device_id", &self.device_id)?;
        check_count("readers", &self.readers, MAX_READERS)?;
        for r in &self.readers {
            check_id("reader", &r.reader)?;
            r.health.validate()?;
        }
        check_count("faults", &self.faults, MAX_DEVICE_FAULTS)?;
        for f in &self.faults {
            check_text("detail", &f.detail)?;
        }
        Ok(())
    }
}

impl PolicyRequest {
    /// Checks the device id.
    pub fn validate(&self) -> Result<(), UplinkError> {
        check_id("device_id", &self.device_id)
    }
}

impl BatchAck {
    /// Checks that this ack answers `batch` (run by the daemon after verifying the signature):
    /// same device and epoch, `acked_through` not beyond the batch's last seq, every verdict
    /// for a seq of the batch, alert ids valid, and at most [`MAX_ANSWER_ITEMS`] verdicts and
    /// directives.
    pub fn check_answers(&self, batch: &Batch) -> Result<(), UplinkError> {
        if self.device_id != batch.device_id {
            return Err(UplinkError::Mismatch { field: "device_id" });
        }
        if self.epoch != batch.epoch {
            return Err(UplinkError::Mismatch { field: "epoch" });
        }
        let (first, last) = batch
            .seq_range()
            .ok_or(UplinkError::Empty { field: "events" })?;
        if self.acked_through > last {
            return Err(UplinkError::AckBeyondBatch {
                acked_through: self.acked_through,
                last,
            });
        }
        check_count("verdicts", &self.verdicts, MAX_ANSWER_ITEMS)?;
        for v in &self.verdicts {
            if !(first..=last).contains(&v.seq) {
                return Err(UplinkError::VerdictOutsideBatch { seq: v.seq });
            }
            if let Outcome::Alarm {
                alert_id: Some(id), ..
            } = &v.outcome
            {
                check_id("alert_id", id)?;
            }
        }
        check_directives(&self.directives)
    }
}

impl HeartbeatAck {
    /// Checks that this ack answers `heartbeat`: same device, epoch and `hb_seq`, and valid
    /// directives.
    pub fn check_answers(&self, heartbeat: &Heartbeat) -> Result<(), UplinkError> {
        if self.device_id != heartbeat.device_id {
            return Err(UplinkError::Mismatch { field: "device_id" });
        }
        if self.epoch != heartbeat.epoch {
            return Err(UplinkError::Mismatch { field: "epoch" });
        }
        if self.hb_seq != heartbeat.hb_seq {
            return Err(UplinkError::Mismatch { field: "hb_seq" });
        }
        check_directives(&self.directives)
    }
}

fn check_directives(directives: &[Directive]) -> Result<(), UplinkError> {
    check_count("directives", directives, MAX_ANSWER_ITEMS)?;
    for d in directives {
        match d {
            Directive::SoundAlarm {
                alert_id: Some(id), ..
            }
            | Directive::SilenceAlarm { alert_id: id } => check_id("alert_id", id)?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uplink::MAX_ID_CHARS;

    const T0: i64 = 1_767_225_600_000;

    fn epc(n: u8) -> Epc {
        Epc::new(&[0x34, 0x74, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0x16, n]).unwrap()
    }

    fn sighting(n: u8) -> TagSighting {
        TagSighting {
            epc: epc(n),
            antenna_first: 1,
            antenna_last: 2,
            reads: 5,
            peak_rssi: 180,
            first_ms: T0,
            last_ms: T0 + 400,
        }
    }

    fn scan(seq: u64) -> Event {
        Event {
            seq,
            at_ms: T0,
            body: EventBody::Scan {
                reader: "desk".into(),
                code: ScannedCode::Barcode {
                    text: "CUS-000123".into(),
                },
            },
        }
    }

    fn batch(seqs: impl IntoIterator<Item = u64>) -> Batch {
        Batch {
            device_id: "gate-1".into(),
            epoch: 1,
            events: seqs.into_iter().map(scan).collect(),
        }
    }

    fn health() -> ReaderHealth {
        ReaderHealth {
            state: HealthState::Ok,
            fault: None,
            frames_ok: 10,
            checksum_errors: 0,
            dropped_bytes: 0,
            last_read_ms: Some(T0),
        }
    }

    #[test]
    fn batch_seqs_must_start_at_one_or_later_and_be_consecutive() {
        assert_eq!(batch([1, 2, 3]).validate(), Ok(()));
        assert_eq!(batch([40]).validate(), Ok(()));
        assert_eq!(
            batch([]).validate(),
            Err(UplinkError::Empty { field: "events" })
        );
        assert_eq!(batch([0, 1]).validate(), Err(UplinkError::SeqZero));
        assert_eq!(
            batch([1, 3]).validate(),
            Err(UplinkError::SeqGap {
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            batch([2, 2]).validate(),
            Err(UplinkError::SeqGap {
                expected: 3,
                found: 2
            })
        );
        assert_eq!(
            batch([5, 4]).validate(),
            Err(UplinkError::SeqGap {
                expected: 6,
                found: 4
            })
        );
        assert_eq!(batch([u64::MAX]).validate(), Ok(()));
        assert_eq!(
            batch([u64::MAX, 0]).validate(),
            Err(UplinkError::SeqOverflow)
        );
        assert_eq!(batch([u64::MAX - 1, u64::MAX]).validate(), Ok(()));
        let max = MAX_BATCH_EVENTS as u64;
        assert_eq!(batch(1..=max).validate(), Ok(()));
        assert_eq!(
            batch(1..=max + 1).validate(),
            Err(UplinkError::TooMany {
                field: "events",
                max: MAX_BATCH_EVENTS
            })
        );
        assert_eq!(batch([1, 2]).seq_range(), Some((1, 2)));
    }

    #[test]
    fn a_turned_back_names_an_earlier_passage_and_some_tags() {
        let turned = |passage_seq: u64, tags: Vec<Epc>| EventBody::TurnedBack {
            reader: "uhf-main".into(),
            passage_seq,
            tags,
        };
        assert_eq!(turned(3, vec![epc(1)]).validate(), Ok(()));
        assert_eq!(
            turned(0, vec![epc(1)]).validate(),
            Err(UplinkError::Zero {
                field: "passage_seq"
            })
        );
        assert_eq!(
            turned(3, vec![]).validate(),
            Err(UplinkError::Empty { field: "tags" })
        );
        assert_eq!(
            turned(3, vec![epc(1); MAX_TAGS_PER_LIST + 1]).validate(),
            Err(UplinkError::TooMany {
                field: "tags",
                max: MAX_TAGS_PER_LIST
            })
        );
        // In a batch, the passage must come before: an earlier seq of the epoch.
        let mut b = batch([4, 5]);
        b.events[1].body = turned(4, vec![epc(1)]);
        assert_eq!(b.validate(), Ok(()));
        b.events[1].body = turned(1, vec![epc(1)]);
        assert_eq!(b.validate(), Ok(()), "from an earlier batch");
        for later in [5, 6] {
            b.events[1].body = turned(later, vec![epc(1)]);
            assert_eq!(
                b.validate(),
                Err(UplinkError::TurnedBackOrder {
                    seq: 5,
                    passage_seq: later
                })
            );
        }
    }

    #[test]
    fn batch_device_id_rules() {
        let mut b = batch([1]);
        b.device_id = String::new();
        assert_eq!(b.validate(), Err(UplinkError::Empty { field: "device_id" }));
        b.device_id = "g".repeat(65);
        assert_eq!(
            b.validate(),
            Err(UplinkError::TooLong {
                field: "device_id",
                max: MAX_ID_CHARS
            })
        );
        b.device_id = "g".repeat(64);
        assert_eq!(b.validate(), Ok(()));
    }

    #[test]
    fn event_rules() {
        let passage = |tags: Vec<TagSighting>, lv: Option<LocalVerdict>| EventBody::Passage {
            reader: "uhf-main".into(),
            direction: Direction::Out,
            tags,
            badges: vec![],
            local_verdict: lv,
        };
        assert_eq!(passage(vec![sighting(1)], None).validate(), Ok(()));
        assert_eq!(passage(vec![], None).validate(), Ok(()));
        let bad = TagSighting {
            reads: 0,
            ..sighting(1)
        };
        assert_eq!(
            passage(vec![bad], None).validate(),
            Err(UplinkError::Zero { field: "reads" })
        );
        let bad = TagSighting {
            antenna_first: 0,
            ..sighting(1)
        };
        assert_eq!(
            bad.validate(),
            Err(UplinkError::Zero {
                field: "antenna_first"
            })
        );
        let bad = TagSighting {
            antenna_last: 0,
            ..sighting(1)
        };
        assert_eq!(
            bad.validate(),
            Err(UplinkError::Zero {
                field: "antenna_last"
            })
        );
        let bad = TagSighting {
            first_ms: T0 + 1,
            last_ms: T0,
            ..sighting(1)
        };
        assert_eq!(
            bad.validate(),
            Err(UplinkError::TimeOrder { field: "first_ms" })
        );
        let lv = LocalVerdict {
            alarm: true,
            policy_version: 1,
            reason: None,
        };
        assert_eq!(
            passage(vec![], Some(lv)).validate(),
            Err(UplinkError::VerdictReason)
        );
        let lv = LocalVerdict {
            alarm: false,
            policy_version: 1,
            reason: Some(AlarmReason::NoPolicy),
        };
        assert_eq!(lv.validate(), Err(UplinkError::VerdictReason));
        assert_eq!(
            passage(vec![sighting(1); MAX_TAGS_PER_LIST + 1], None).validate(),
            Err(UplinkError::TooMany {
                field: "tags",
                max: MAX_TAGS_PER_LIST
            })
        );
        let cab = EventBody::CabinetSnapshot {
            reader: "cab-1".into(),
            present: vec![epc(1)],
            added: vec![],
            removed: vec![epc(2); MAX_TAGS_PER_LIST + 1],
        };
        assert_eq!(
            cab.validate(),
            Err(UplinkError::TooMany {
                field: "removed",
                max: MAX_TAGS_PER_LIST
            })
        );
        let fault = EventBody::DeviceFault {
            kind: DeviceFaultKind::OutboxFull,
            detail: "x".repeat(1025),
        };
        assert_eq!(
            fault.validate(),
            Err(UplinkError::TooLong {
                field: "detail",
                max: 1024
            })
        );
        let rh = EventBody::ReaderHealth {
            reader: "uhf-main".into(),
            health: ReaderHealth {
                fault: Some(ReaderFault::AntennaMissing { antenna: 0 }),
                ..health()
            },
        };
        assert_eq!(rh.validate(), Err(UplinkError::Zero { field: "antenna" }));
        let unnamed = EventBody::Scan {
            reader: String::new(),
            code: ScannedCode::EmCard {
                id: "1A00B54E12".into(),
            },
        };
        assert_eq!(
            unnamed.validate(),
            Err(UplinkError::Empty { field: "reader" })
        );
    }

    #[test]
    fn scanned_code_rules() {
        let em = |id: &str| ScannedCode::EmCard { id: id.into() };
        assert_eq!(em("1A00B54E12").validate(), Ok(()));
        assert_eq!(em("1a00b54e12").validate(), Err(UplinkError::EmCard));
        assert_eq!(em("1A00B54E1").validate(), Err(UplinkError::EmCard));
        assert_eq!(em("1A00B54E12F").validate(), Err(UplinkError::EmCard));
        assert_eq!(em("1A00B54G12").validate(), Err(UplinkError::EmCard));
        let bc = |t: &str| ScannedCode::Barcode { text: t.into() };
        assert_eq!(bc("").validate(), Err(UplinkError::Empty { field: "text" }));
        assert_eq!(bc(&"9".repeat(1024)).validate(), Ok(()));
        assert!(bc(&"9".repeat(1025)).validate().is_err());
    }

    #[test]
    fn heartbeat_and_ack_matching() {
        let hb = Heartbeat {
            device_id: "gate-1".into(),
            epoch: 4,
            hb_seq: 17,
            at_ms: T0,
            readers: vec![NamedHealth {
                reader: "uhf-main".into(),
                health: health(),
            }],
            outbox_depth: 0,
            policy_version: 9,
            faults: vec![DeviceFault {
                kind: DeviceFaultKind::OutboxFull,
                since_ms: T0,
                detail: "full".into(),
            }],
        };
        assert_eq!(hb.validate(), Ok(()));
        let long_detail = Heartbeat {
            faults: vec![DeviceFault {
                detail: "x".repeat(1025),
                ..hb.faults[0].clone()
            }],
            ..hb.clone()
        };
        assert_eq!(
            long_detail.validate(),
            Err(UplinkError::TooLong {
                field: "detail",
                max: 1024
            })
        );
        let too_many_faults = Heartbeat {
            faults: vec![hb.faults[0].clone(); MAX_DEVICE_FAULTS + 1],
            ..hb.clone()
        };
        assert_eq!(
            too_many_faults.validate(),
            Err(UplinkError::TooMany {
                field: "faults",
                max: MAX_DEVICE_FAULTS
            })
        );
        let too_many = Heartbeat {
            readers: vec![
                NamedHealth {
                    reader: "r".into(),
                    health: health()
                };
                MAX_READERS + 1
            ],
            ..hb.clone()
        };
        assert_eq!(
            too_many.validate(),
            Err(UplinkError::TooMany {
                field: "readers",
                max: MAX_READERS
            })
        );
        let ack = HeartbeatAck {
            device_id: "gate-1".into(),
            epoch: 4,
            hb_seq: 17,
            policy_version: 10,
            directives: vec![
                Directive::SilenceAlarm {
                    alert_id: "al-9".into(),
                },
                Directive::RefreshPolicy,
            ],
        };
        assert_eq!(ack.check_answers(&hb), Ok(()));
        let old = HeartbeatAck {
            hb_seq: 16,
            ..ack.clone()
        };
        assert_eq!(
            old.check_answers(&hb),
            Err(UplinkError::Mismatch { field: "hb_seq" })
        );
        let other_epoch = HeartbeatAck {
            epoch: 3,
            ..ack.clone()
        };
        assert_eq!(
            other_epoch.check_answers(&hb),
            Err(UplinkError::Mismatch { field: "epoch" })
        );
        let other = HeartbeatAck {
            device_id: "gate-2".into(),
            ..ack.clone()
        };
        assert_eq!(
            other.check_answers(&hb),
            Err(UplinkError::Mismatch { field: "device_id" })
        );
        let bad_alert = HeartbeatAck {
            directives: vec![Directive::SilenceAlarm {
                alert_id: String::new(),
            }],
            ..ack
        };
        assert_eq!(
            bad_alert.check_answers(&hb),
            Err(UplinkError::Empty { field: "alert_id" })
        );
        let req = PolicyRequest {
            device_id: "gate-1".into(),
            epoch: 4,
            at_ms: T0,
            have_version: 9,
        };
        assert_eq!(req.validate(), Ok(()));
    }

    #[test]
    fn batch_ack_must_answer_the_batch() {
        let b = batch([5, 6, 7]);
        let ack = BatchAck {
            device_id: "gate-1".into(),
            epoch: 1,
            acked_through: 7,
            verdicts: vec![Verdict {
                seq: 6,
                outcome: Outcome::Alarm {
                    reason: AlarmReason::UnauthorizedRemoval,
                    alert_id: Some("al-1".into()),
                },
            }],
            directives: vec![Directive::SoundAlarm {
                duration_ms: 30_000,
                lock_door: true,
                alert_id: Some("al-1".into()),
            }],
            policy_version: 9,
        };
        assert_eq!(ack.check_answers(&b), Ok(()));
        // A partial ack (the server stored fewer) is an answer too.
        assert_eq!(
            BatchAck {
                acked_through: 4,
                ..ack.clone()
            }
            .check_answers(&b),
            Ok(())
        );
        assert_eq!(
            BatchAck {
                acked_through: 8,
                ..ack.clone()
            }
            .check_answers(&b),
            Err(UplinkError::AckBeyondBatch {
                acked_through: 8,
                last: 7
            })
        );
        assert_eq!(
            BatchAck {
                epoch: 2,
                ..ack.clone()
            }
            .check_answers(&b),
            Err(UplinkError::Mismatch { field: "epoch" })
        );
        assert_eq!(
            BatchAck {
                device_id: "gate-9".into(),
                ..ack.clone()
            }
            .check_answers(&b),
            Err(UplinkError::Mismatch { field: "device_id" })
        );
        let stray = BatchAck {
            verdicts: vec![Verdict {
                seq: 4,
                outcome: Outcome::Allowed,
            }],
            ..ack.clone()
        };
        assert_eq!(
            stray.check_answers(&b),
            Err(UplinkError::VerdictOutsideBatch { seq: 4 })
        );
        let bad_alert = BatchAck {
            verdicts: vec![Verdict {
                seq: 5,
                outcome: Outcome::Alarm {
                    reason: AlarmReason::UnknownTag,
                    alert_id: Some("a\u{7}".into()),
                },
            }],
            ..ack
        };
        assert_eq!(
            bad_alert.check_answers(&b),
            Err(UplinkError::ControlCharacter { field: "alert_id" })
        );
    }

    #[cfg(feature = "serde")]
    mod json {
        use super::*;
        use crate::uplink::MAX_BODY_BYTES;
        use proptest::prelude::*;

        fn round_trip<T>(value: &T, json: &str)
        where
            T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + core::fmt::Debug,
        {
            assert_eq!(serde_json::to_string(value).unwrap(), json);
            assert_eq!(&serde_json::from_str::<T>(json).unwrap(), value);
        }

        #[test]
        fn enum_shapes() {
            round_trip(&Direction::In, r#""in""#);
            for direction in [Direction::In, Direction::Out] {
                round_trip(&direction, &format!("\"{}\"", direction.as_str()));
            }
            round_trip(&HealthState::Degraded, r#""degraded""#);
            round_trip(&DeviceFaultKind::GateIoLost, r#""gate_io_lost""#);
            for kind in [
                DeviceFaultKind::OutboxFull,
                DeviceFaultKind::StorageError,
                DeviceFaultKind::GateIoLost,
                DeviceFaultKind::ClockStep,
                DeviceFaultKind::PolicyExpired,
                DeviceFaultKind::Other,
            ] {
                round_trip(&kind, &format!("\"{}\"", kind.as_str()));
            }
            round_trip(&AlarmReason::SignoutExpired, r#""signout_expired""#);
            round_trip(&ReaderFault::NoReply, r#"{"type":"no_reply"}"#);
            round_trip(
                &ReaderFault::AntennaMissing { antenna: 3 },
                r#"{"type":"antenna_missing","antenna":3}"#,
            );
            round_trip(
                &ReaderFault::ProtocolMismatch { detail: "x".into() },
                r#"{"type":"protocol_mismatch","detail":"x"}"#,
            );
            round_trip(
                &ScannedCode::Barcode {
                    text: "CUS-1".into(),
                },
                r#"{"type":"barcode","text":"CUS-1"}"#,
            );
            round_trip(&Outcome::Allowed, r#"{"type":"allowed"}"#);
            round_trip(
                &Outcome::Alarm {
                    reason: AlarmReason::ClearanceViolation,
                    alert_id: None,
                },
                r#"{"type":"alarm","reason":"clearance_violation","alert_id":null}"#,
            );
            round_trip(&Directive::RefreshPolicy, r#"{"type":"refresh_policy"}"#);
            round_trip(
                &Directive::SoundAlarm {
                    duration_ms: 30000,
                    lock_door: false,
                    alert_id: None,
                },
                r#"{"type":"sound_alarm","duration_ms":30000,"lock_door":false,"alert_id":null}"#,
            );
            round_trip(
                &Directive::SilenceAlarm {
                    alert_id: "al-1".into(),
                },
                r#"{"type":"silence_alarm","alert_id":"al-1"}"#,
            );
            round_trip(
                &EventBody::TurnedBack {
                    reader: "uhf-main".into(),
                    passage_seq: 41,
                    tags: vec![epc(1)],
                },
                r#"{"type":"turned_back","reader":"uhf-main","passage_seq":41,"tags":["3474257BF400000000001601"]}"#,
            );
            round_trip(
                &EventBody::DeviceFault {
                    kind: DeviceFaultKind::OutboxFull,
                    detail: "10000 events".into(),
                },
                r#"{"type":"device_fault","kind":"outbox_full","detail":"10000 events"}"#,
            );
            round_trip(
                &EventBody::CabinetSnapshot {
                    reader: "cab".into(),
                    present: vec![epc(1)],
                    added: vec![],
                    removed: vec![epc(2)],
                },
                r#"{"type":"cabinet_snapshot","reader":"cab","present":["3474257BF400000000001601"],"added":[],"removed":["3474257BF400000000001602"]}"#,
            );
        }

        #[test]
        fn messages_round_trip() {
            let ack = BatchAck {
                device_id: "gate-1".into(),
                epoch: 2,
                acked_through: 42,
                verdicts: vec![Verdict {
                    seq: 41,
                    outcome: Outcome::Allowed,
                }],
                directives: vec![],
                policy_version: 9,
            };
            round_trip(
                &ack,
                r#"{"device_id":"gate-1","epoch":2,"acked_through":42,"verdicts":[{"seq":41,"outcome":{"type":"allowed"}}],"directives":[],"policy_version":9}"#,
            );
            let hb = Heartbeat {
                device_id: "gate-1".into(),
                epoch: 2,
                hb_seq: 8,
                at_ms: T0,
                readers: vec![NamedHealth {
                    reader: "uhf-main".into(),
                    health: health(),
                }],
                outbox_depth: 3,
                policy_version: 9,
                faults: vec![],
            };
            // Without faults the field is left out: the heartbeat of a daemon from before it.
            round_trip(
                &hb,
                r#"{"device_id":"gate-1","epoch":2,"hb_seq":8,"at_ms":1767225600000,"readers":[{"reader":"uhf-main","health":{"state":"ok","fault":null,"frames_ok":10,"checksum_errors":0,"dropped_bytes":0,"last_read_ms":1767225600000}}],"outbox_depth":3,"policy_version":9}"#,
            );
            let faulty = Heartbeat {
                readers: vec![],
                faults: vec![DeviceFault {
                    kind: DeviceFaultKind::GateIoLost,
                    since_ms: T0,
                    detail: "no answer".into(),
                }],
                ..hb.clone()
            };
            round_trip(
                &faulty,
                r#"{"device_id":"gate-1","epoch":2,"hb_seq":8,"at_ms":1767225600000,"readers":[],"outbox_depth":3,"policy_version":9,"faults":[{"kind":"gate_io_lost","since_ms":1767225600000,"detail":"no answer"}]}"#,
            );
            let hack = HeartbeatAck {
                device_id: "gate-1".into(),
                epoch: 2,
                hb_seq: 8,
                policy_version: 9,
                directives: vec![],
            };
            round_trip(
                &hack,
                r#"{"device_id":"gate-1","epoch":2,"hb_seq":8,"policy_version":9,"directives":[]}"#,
            );
            let req = PolicyRequest {
                device_id: "gate-1".into(),
                epoch: 2,
                at_ms: T0,
                have_version: 0,
            };
            round_trip(
                &req,
                r#"{"device_id":"gate-1","epoch":2,"at_ms":1767225600000,"have_version":0}"#,
            );
            let policy = crate::uplink::GatePolicy {
                device_id: "gate-1".into(),
                version: 9,
                issued_at_ms: T0,
                valid_until_ms: T0 + 3_600_000,
                allowed: vec![crate::uplink::AllowedCarrier {
                    epc: epc(1),
                    until_ms: T0 + 60_000,
                    borrower_badges: vec![epc(9)],
                    badge_required: false,
                }],
                badges: vec![epc(9), epc(10)],
            };
            round_trip(
                &policy,
                r#"{"device_id":"gate-1","version":9,"issued_at_ms":1767225600000,"valid_until_ms":1767229200000,"allowed":[{"epc":"3474257BF400000000001601","until_ms":1767225660000,"borrower_badges":["3474257BF400000000001609"]}],"badges":["3474257BF400000000001609","3474257BF40000000000160A"]}"#,
            );
            // A policy from before the staff badges parses, with none.
            let old = r#"{"device_id":"gate-1","version":9,"issued_at_ms":1767225600000,"valid_until_ms":1767229200000,"allowed":[]}"#;
            let parsed: crate::uplink::GatePolicy = serde_json::from_str(old).unwrap();
            assert!(parsed.badges.is_empty());
        }

        #[test]
        fn unknown_fields_and_bad_values_are_refused() {
            let ok = r#"{"device_id":"g","epoch":1,"acked_through":0,"verdicts":[],"directives":[],"policy_version":0}"#;
            assert!(serde_json::from_str::<BatchAck>(ok).is_ok());
            let extra = ok.replace(r#""policy_version":0"#, r#""policy_version":0,"sig":"x""#);
            assert!(serde_json::from_str::<BatchAck>(&extra).is_err());
            let missing = ok.replace(r#","policy_version":0"#, "");
            assert!(serde_json::from_str::<BatchAck>(&missing).is_err());
            // Unknown fields inside a tagged variant, and unknown variants, are refused.
            assert!(
                serde_json::from_str::<Directive>(
                    r#"{"type":"silence_alarm","alert_id":"a","all":true}"#
                )
                .is_err()
            );
            assert!(serde_json::from_str::<Directive>(r#"{"type":"self_destruct"}"#).is_err());
            assert!(serde_json::from_str::<Direction>(r#""sideways""#).is_err());
            // EPCs must be hex.
            assert!(serde_json::from_str::<TagSighting>(
                r#"{"epc":"XYZ","antenna_first":1,"antenna_last":1,"reads":1,"peak_rssi":0,"first_ms":0,"last_ms":0}"#
            )
            .is_err());
            // Value enums from a newer peer degrade to `other` instead of stalling the uplink.
            assert_eq!(
                serde_json::from_str::<AlarmReason>(r#""tailgating""#).unwrap(),
                AlarmReason::Other
            );
            assert_eq!(
                serde_json::from_str::<DeviceFaultKind>(r#""tamper""#).unwrap(),
                DeviceFaultKind::Other
            );
        }

        /// The largest event the per-field limits allow still fits in one body, so a daemon
        /// that splits an oversized batch always makes progress.
        #[test]
        fn worst_case_event_fits_in_a_body() {
            let long = Epc::new(&[0xFF; crate::epc::MAX_EPC_BYTES]).unwrap();
            let s = TagSighting {
                epc: long,
                antenna_first: 255,
                antenna_last: 255,
                reads: u32::MAX,
                peak_rssi: 255,
                first_ms: i64::MIN,
                last_ms: i64::MIN,
            };
            let passage = Event {
                seq: u64::MAX,
                at_ms: i64::MIN,
                body: EventBody::Passage {
                    reader: "r".repeat(MAX_ID_CHARS),
                    direction: Direction::Out,
                    tags: vec![s; MAX_TAGS_PER_LIST],
                    badges: vec![s; MAX_TAGS_PER_LIST],
                    local_verdict: Some(LocalVerdict {
                        alarm: true,
                        policy_version: u64::MAX,
                        reason: Some(AlarmReason::ClockUntrusted),
                    }),
                },
            };
            let cabinet = Event {
                seq: u64::MAX,
                at_ms: i64::MIN,
                body: EventBody::CabinetSnapshot {
                    reader: "r".repeat(MAX_ID_CHARS),
                    present: vec![long; MAX_TAGS_PER_LIST],
                    added: vec![long; MAX_TAGS_PER_LIST],
                    removed: vec![long; MAX_TAGS_PER_LIST],
                },
            };
            for event in [passage, cabinet] {
                let b = Batch {
                    device_id: "d".repeat(MAX_ID_CHARS),
                    epoch: u64::MAX,
                    events: vec![event],
                };
                assert!(b.events[0].body.validate().is_ok());
                let len = serde_json::to_vec(&b).unwrap().len();
                assert!(len < MAX_BODY_BYTES, "{len} bytes");
            }
        }

        fn epc_strategy() -> impl Strategy<Value = Epc> {
            proptest::collection::vec(any::<u8>(), 0..=crate::epc::MAX_EPC_BYTES)
                .prop_map(|b| Epc::new(&b).unwrap())
        }

        fn sighting_strategy() -> impl Strategy<Value = TagSighting> {
            (
                epc_strategy(),
                any::<u8>(),
                any::<u8>(),
                any::<u32>(),
                any::<u8>(),
                any::<i64>(),
                any::<i64>(),
            )
                .prop_map(
                    |(epc, antenna_first, antenna_last, reads, peak_rssi, first_ms, last_ms)| {
                        TagSighting {
                            epc,
                            antenna_first,
                            antenna_last,
                            reads,
                            peak_rssi,
                            first_ms,
                            last_ms,
                        }
                    },
                )
        }

        fn reason_strategy() -> impl Strategy<Value = AlarmReason> {
            proptest::sample::select(vec![
                AlarmReason::UnauthorizedRemoval,
                AlarmReason::ClearanceViolation,
                AlarmReason::UnknownTag,
                AlarmReason::TagCloneSuspected,
                AlarmReason::SignoutExpired,
                AlarmReason::BorrowerAbsent,
                AlarmReason::BadgeMissing,
                AlarmReason::PolicyExpired,
                AlarmReason::ClockUntrusted,
                AlarmReason::NoPolicy,
                AlarmReason::Other,
            ])
        }

        fn health_strategy() -> impl Strategy<Value = ReaderHealth> {
            let fault = prop_oneof![
                Just(None),
                Just(Some(ReaderFault::NoReply)),
                Just(Some(ReaderFault::SerialLost)),
                any::<u8>().prop_map(|antenna| Some(ReaderFault::AntennaMissing { antenna })),
                ".{0,20}".prop_map(|detail| Some(ReaderFault::Other { detail })),
                ".{0,20}".prop_map(|detail| Some(ReaderFault::ProtocolMismatch { detail })),
            ];
            let state = proptest::sample::select(vec![
                HealthState::Ok,
                HealthState::Degraded,
                HealthState::Fault,
            ]);
            (
                state,
                fault,
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<Option<i64>>(),
            )
                .prop_map(
                    |(state, fault, frames_ok, checksum_errors, dropped_bytes, last_read_ms)| {
                        ReaderHealth {
                            state,
                            fault,
                            frames_ok,
                            checksum_errors,
                            dropped_bytes,
                            last_read_ms,
                        }
                    },
                )
        }

        fn body_strategy() -> impl Strategy<Value = EventBody> {
            let tags = || proptest::collection::vec(sighting_strategy(), 0..4);
            let epcs = || proptest::collection::vec(epc_strategy(), 0..4);
            let verdict = proptest::option::of((
                any::<bool>(),
                any::<u64>(),
                proptest::option::of(reason_strategy()),
            ))
            .prop_map(|v| {
                v.map(|(alarm, policy_version, reason)| LocalVerdict {
                    alarm,
                    policy_version,
                    reason,
                })
            });
            prop_oneof![
                (".{0,12}", any::<bool>(), tags(), tags(), verdict).prop_map(
                    |(reader, out, tags, badges, local_verdict)| {
                        EventBody::Passage {
                            reader,
                            direction: if out { Direction::Out } else { Direction::In },
                            tags,
                            badges,
                            local_verdict,
                        }
                    }
                ),
                (".{0,12}", epcs(), epcs(), epcs()).prop_map(
                    |(reader, present, added, removed)| {
                        EventBody::CabinetSnapshot {
                            reader,
                            present,
                            added,
                            removed,
                        }
                    }
                ),
                (".{0,12}", ".{0,30}", any::<bool>()).prop_map(|(reader, text, em)| {
                    EventBody::Scan {
                        reader,
                        code: if em {
                            ScannedCode::EmCard { id: text }
                        } else {
                            ScannedCode::Barcode { text }
                        },
                    }
                }),
                (".{0,12}", health_strategy())
                    .prop_map(|(reader, health)| EventBody::ReaderHealth { reader, health }),
                (".{0,12}", any::<u64>(), epcs()).prop_map(|(reader, passage_seq, tags)| {
                    EventBody::TurnedBack {
                        reader,
                        passage_seq,
                        tags,
                    }
                }),
                (
                    proptest::sample::select(vec![
                        DeviceFaultKind::OutboxFull,
                        DeviceFaultKind::StorageError,
                        DeviceFaultKind::GateIoLost,
                        DeviceFaultKind::ClockStep,
                        DeviceFaultKind::PolicyExpired,
                        DeviceFaultKind::Other,
                    ]),
                    ".{0,30}"
                )
                    .prop_map(|(kind, detail)| EventBody::DeviceFault { kind, detail }),
            ]
        }

        fn batch_strategy() -> impl Strategy<Value = Batch> {
            (
                ".{0,16}",
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec((any::<i64>(), body_strategy()), 0..6),
            )
                .prop_map(|(device_id, epoch, first, bodies)| Batch {
                    device_id,
                    epoch,
                    events: bodies
                        .into_iter()
                        .enumerate()
                        .map(|(i, (at_ms, body))| Event {
                            seq: first.wrapping_add(i as u64),
                            at_ms,
                            body,
                        })
                        .collect(),
                })
        }

        proptest! {
            /// For every batch (valid or not: serde does not validate), JSON encoding then
            /// decoding gives back the same batch, and the encoding is within the body limit.
            #[test]
            fn batch_json_round_trip(b in batch_strategy()) {
                let json = serde_json::to_vec(&b).unwrap();
                prop_assert!(json.len() <= MAX_BODY_BYTES);
                let back: Batch = serde_json::from_slice(&json).unwrap();
                prop_assert_eq!(back, b);
            }

            /// Arbitrary bytes as a body never panic the parser or the validator.
            #[test]
            fn arbitrary_body_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(b) = serde_json::from_slice::<Batch>(&bytes) {
                    let _ = b.validate();
                }
            }
        }
    }
}
