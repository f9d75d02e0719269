//! The messages between the daemon (custosd) and the server, and exactly which bytes are signed.
//!
//! Everything here is plain data (serde, behind the default `serde` feature) plus pure checks;
//! HTTP, keys, storage and clocks live in the daemon and the server, which both build on this
//! module. Changing a field name or a signing context here is a wire-format change.
//!
//! # Exchanges
//!
//! | device sends (signed by the device) | server answers (signed by the server) |
//! |---|---|
//! | `POST /api/v1/devices/{id}/batches`: [`Batch`] | [`BatchAck`] |
//! | `POST /api/v1/devices/{id}/heartbeats`: [`Heartbeat`] | [`HeartbeatAck`] |
//! | `POST /api/v1/devices/{id}/policy`: [`PolicyRequest`] | [`GatePolicy`] |
//!
//! Only the batches path is fixed in INTERFACES.md; the other two are the paths this module
//! proposes. The `{id}` in the path must equal the `device_id` in the body. Errors are the API's
//! usual unsigned `{"error","message"}` JSON and carry no authority.
//!
//! # Time
//!
//! Every instant is an `i64` count of milliseconds since the Unix epoch, UTC, in a field whose
//! name ends in `_ms` (durations are `u64` `*_ms`). Every function here takes "now" as an
//! argument; nothing reads a clock.
//!
//! # Sequencing and acknowledgement
//!
//! The daemon writes each [`Event`] to its outbox (on disk, fsync'ed) before reporting it
//! anywhere, numbering events per device with `(epoch, seq)`:
//! - `epoch` is a boot epoch: a counter persisted by the daemon and incremented at every start,
//!   so a lost or reset sequence counter can never reuse a number.
//! - `seq` starts at 1 in every epoch and increases by exactly 1 per event; a batch carries
//!   consecutive seqs, oldest first ([`Batch::validate`]).
//!
//! The server stores, per `(device_id, epoch)`, the highest seq it holds. It accepts a batch
//! whose first seq is at most that + 1 (a resend after a lost ack overlaps, and the overlap is
//! ignored, so uploads are idempotent), refuses one that leaves a gap (409), and answers with
//! [`BatchAck::acked_through`]: every seq ≤ it in that epoch is durably stored. Only then does the
//! daemon delete those events. An older epoch's unsent events are still uploaded after a restart,
//! oldest epoch first; a replayed batch only re-delivers events already stored.
//!
//! # Heartbeats
//!
//! A silenced gate is the easiest attack, so the daemon sends a [`Heartbeat`] periodically even
//! with nothing to report. `hb_seq` increases strictly within an epoch; the server refuses a
//! heartbeat whose `(epoch, hb_seq)` is not newer than the last one it accepted from the device,
//! and one whose `at_ms` is far from its own clock, so a recorded heartbeat replayed by an
//! attacker cannot hide a gate that went quiet. The [`HeartbeatAck`] repeats `epoch` and `hb_seq`
//! so the daemon can match it to the heartbeat it answers. Besides its readers, a heartbeat
//! lists the daemon's own faults standing now ([`DeviceFault`]: outbox full, gate I/O lost).
//!
//! # Offline decisions and fail-secure policy
//!
//! At an exit the daemon asks the server with a short deadline (by uploading the passage); if
//! no [`BatchAck`] verdict arrives in time, it decides with the last [`GatePolicy`] the server
//! signed for it ([`GatePolicy::decide`]) and records that as a [`LocalVerdict`]. That decision
//! and the server's own verdict apply the same exit rule, [`exit::check`]. A policy that is
//! missing, for another device, expired, or issued in the device's future alarms on every
//! carrier tag: fail secure. The daemon keeps the policy's exact bytes and signature and
//! re-verifies them when it loads them; it never replaces a cached policy by one with a lower
//! version.
//!
//! # Signatures (frozen layout, version 1)
//!
//! Every request and answer body above is signed with Ed25519 (ring, in the daemon and the
//! server; this crate holds no keys). The signed message is
//!
//! ```text
//! "custos-uplink-v1" 0x00 KIND 0x00 BODY
//! ```
//!
//! where KIND is the ASCII name of [`SignedKind`] (`batch`, `ack`, `heartbeat`,
//! `heartbeat_ack`, `policy_request`, `policy`) and BODY is the HTTP body exactly as transmitted:
//! UTF-8 JSON, byte for byte. [`signing_bytes`] builds it. The context prefix keeps a signature
//! made for one kind of message from verifying as another kind. The signature travels in the
//! HTTP header [`SIGNATURE_HEADER`] (`custos-signature`) as standard base64 with padding (RFC
//! 4648, section 4) of the 64 signature bytes; base64 is done by the daemon and the server.
//!
//! The verifier checks the signature over the raw body bytes *before* parsing them, then parses
//! them (unknown fields refused), then checks that the body names the expected device (the path
//! `{id}` for the server; its own id, epoch and sequence for the daemon). Because the bytes
//! themselves are signed, the JSON need not be canonical: key order and whitespace are whatever
//! the sender produced. Because every signed body names its `device_id` (and requests their
//! `epoch`), a signature cannot be moved to another device or epoch. Devices sign with their own
//! key (registered at `POST /devices`); the server signs answers with its key, which the daemon
//! pins (`server_public_key`). A daemon without a pinned server key cannot authenticate answers
//! and must not trust a policy or a directive it cannot verify.
//!
//! # JSON shape
//!
//! Structs are JSON objects with the field names as written here; incoming unknown fields are
//! refused. Enums that carry data are objects tagged by `"type"` in snake_case
//! (`{"type":"passage",...}`); enums of plain values are snake_case strings (`"in"`). EPCs are
//! upper-case hex strings (see [`crate::epc::Epc`]). [`AlarmReason`] and [`DeviceFaultKind`] read
//! an unknown value as `other`, so a server that learns a new reason first does not stall older
//! daemons (and vice versa).

mod audit_head;
pub mod exit;
mod messages;
mod policy;
mod signing;

pub use audit_head::{
    AUDIT_HASH_LEN, AUDIT_HEAD_HEADER, AuditHead, HeadLineError, Witnessed,
    signed_message as audit_head_message, witness as witness_audit_head,
};
pub use messages::{
    AlarmReason, Batch, BatchAck, DeviceFault, DeviceFaultKind, Direction, Directive, Event,
    EventBody, HealthState, Heartbeat, HeartbeatAck, LocalVerdict, NamedHealth, Outcome,
    PolicyRequest, ReaderFault, ReaderHealth, ScannedCode, TagSighting, Verdict,
};
pub use policy::{
    AllowedCarrier, CarrierDecision, GatePolicy, MAX_CLOCK_SKEW_MS, MAX_EVENT_AGE_MS,
    PolicyDecision, event_time_plausible,
};
pub use signing::{SIGNATURE_HEADER, SIGNATURE_LEN, SignedKind, signing_bytes};

/// The most events in one [`Batch`]; the daemon sends longer backlogs in several batches.
pub const MAX_BATCH_EVENTS: usize = 256;

/// The largest HTTP body, in either direction, for every message of this module (1 MiB).
///
/// The per-field limits below keep any single valid event well under this, so a daemon that
/// halves a batch whose JSON is too large always makes progress.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most EPCs in one list of an event (tags, badges, present, added, removed), and the most
/// borrower badges of one allowed carrier.
pub const MAX_TAGS_PER_LIST: usize = 1024;

/// The longest identifier, in characters: device ids, reader names, alert ids.
pub const MAX_ID_CHARS: usize = 64;

/// The longest free text, in characters: barcode text, fault details.
pub const MAX_TEXT_CHARS: usize = 1024;

/// The most readers in one [`Heartbeat`].
pub const MAX_READERS: usize = 64;

/// The most device faults in one [`Heartbeat`] (room for kinds this version does not know).
pub const MAX_DEVICE_FAULTS: usize = 16;

/// The most allowed carriers in one [`GatePolicy`].
pub const MAX_POLICY_CARRIERS: usize = 10_000;

/// The most staff badges in one [`GatePolicy`].
pub const MAX_POLICY_BADGES: usize = 10_000;

/// The most verdicts or directives in one answer.
pub const MAX_ANSWER_ITEMS: usize = MAX_BATCH_EVENTS;

/// An uplink message breaks the rules of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UplinkError {
    /// A field that must not be empty is empty (an id, a batch's events).
    #[error("{field}: empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text field is longer than its limit (in characters).
    #[error("{field}: longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A list has more entries than its limit.
    #[error("{field}: more than {max} entries")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// An identifier contains a control character.
    #[error("{field}: control character")]
    ControlCharacter {
        /// The field.
        field: &'static str,
    },
    /// A seq is 0 (seqs start at 1 in every epoch).
    #[error("seq 0: seqs start at 1")]
    SeqZero,
    /// The seqs of a batch would run past `u64::MAX`.
    #[error("seq runs past u64::MAX")]
    SeqOverflow,
    /// The seqs of a batch are not consecutive.
    #[error("seq {found} where {expected} was due")]
    SeqGap {
        /// The seq that should have come next.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// A number that must be at least 1 is 0 (a read count, an antenna, a policy version).
    #[error("{field}: zero")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A time span ends before it starts (`first_ms > last_ms`, `issued_at_ms >= valid_until_ms`).
    #[error("{field}: ends before it starts")]
    TimeOrder {
        /// The field.
        field: &'static str,
    },
    /// An EM card id is not exactly 10 upper-case hex digits.
    #[error("em card id is not 10 upper-case hex digits")]
    EmCard,
    /// A local verdict's `alarm` flag disagrees with whether it has a reason.
    #[error("local verdict: alarm and reason disagree")]
    VerdictReason,
    /// An answer or a policy names another device, epoch or heartbeat than the one expected.
    #[error("{field}: does not match the request")]
    Mismatch {
        /// The field that differs.
        field: &'static str,
    },
    /// An ack covers seqs the batch did not carry.
    #[error("acked_through {acked_through} beyond the batch's last seq {last}")]
    AckBeyondBatch {
        /// The ack's `acked_through`.
        acked_through: u64,
        /// The batch's last seq.
        last: u64,
    },
    /// A `turned_back` event names a passage that is not an earlier event of its epoch.
    #[error("turned_back at seq {seq} names passage seq {passage_seq}, not an earlier event")]
    TurnedBackOrder {
        /// The `turned_back` event's seq.
        seq: u64,
        /// The passage it names.
        passage_seq: u64,
    },
    /// A verdict names a seq the batch did not carry.
    #[error("verdict for seq {seq} outside the batch")]
    VerdictOutsideBatch {
        /// The verdict's seq.
        seq: u64,
    },
}

/// Checks an identifier: non-empty, at most [`MAX_ID_CHARS`] characters, no control characters.
fn check_id(field: &'static str, id: &str) -> Result<(), UplinkError> {
    if id.is_empty() {
        return Err(UplinkError::Empty { field });
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(UplinkError::TooLong {
            field,
            max: MAX_ID_CHARS,
        });
    }
    if id.chars().any(char::is_control) {
        return Err(UplinkError::ControlCharacter { field });
    }
    Ok(())
}

/// Checks free text: at most [`MAX_TEXT_CHARS`] characters.
fn check_text(field: &'static str, text: &str) -> Result<(), UplinkError> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(UplinkError::TooLong {
            field,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

/// Checks a list length against a limit.
fn check_count<T>(field: &'static str, list: &[T], max: usize) -> Result<(), UplinkError> {
    if list.len() > max {
        return Err(UplinkError::TooMany { field, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rules() {
        assert_eq!(check_id("device_id", "gate-1"), Ok(()));
        assert_eq!(
            check_id("device_id", ""),
            Err(UplinkError::Empty { field: "device_id" })
        );
        assert_eq!(check_id("reader", &"é".repeat(64)), Ok(()));
        assert_eq!(
            check_id("reader", &"x".repeat(65)),
            Err(UplinkError::TooLong {
                field: "reader",
                max: 64
            })
        );
        assert_eq!(
            check_id("reader", "a\nb"),
            Err(UplinkError::ControlCharacter { field: "reader" })
        );
        assert_eq!(check_text("detail", &"x".repeat(1024)), Ok(()));
        assert!(check_text("detail", &"x".repeat(1025)).is_err());
        assert_eq!(check_count("tags", &[0; 3], 3), Ok(()));
        assert_eq!(
            check_count("tags", &[0; 4], 3),
            Err(UplinkError::TooMany {
                field: "tags",
                max: 3
            })
        );
    }
}
