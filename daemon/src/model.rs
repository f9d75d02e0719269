//! The values that flow between the daemon's stages: reader drivers produce [`ReaderOutput`]s,
//! smoothing turns tag reads into movements, and the outbox stores uplink events.
//!
//! Time is `i64` Unix milliseconds (UTC), as in the uplink, so the pure stages can be driven by
//! recorded sequences and a virtual clock.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{ReaderHealth, ScannedCode};

/// The wall clock now as Unix milliseconds (0 if the clock is before 1970): the time stamp of
/// reads, scans and events. Only the edges read it; the stages take time as an argument.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The configured name of a reader (`[[readers]] name`), cheap to clone into every read.
pub type ReaderName = Arc<str>;

/// One raw read of a UHF tag by a reader, before smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagRead {
    /// When the read was received (Unix ms).
    pub at_ms: i64,
    /// The tag's EPC.
    pub epc: Epc,
    /// The antenna, 1-based.
    pub antenna: u8,
    /// The raw RSSI byte as the reader reports it (higher is stronger).
    pub rssi: u8,
}

/// What a reader driver reports on its channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderOutput {
    /// A UHF tag was read (goes to smoothing).
    Tag {
        /// The reader.
        reader: ReaderName,
        /// The read.
        read: TagRead,
    },
    /// A barcode or card was scanned (goes straight to the outbox as a scan event).
    Scan {
        /// The reader.
        reader: ReaderName,
        /// When (Unix ms).
        at_ms: i64,
        /// What was scanned.
        code: ScannedCode,
    },
    /// A general-purpose input of the reader changed (LLRP GPIEvent: a photo-eye wired to
    /// the reader).
    Input {
        /// The reader.
        reader: ReaderName,
        /// The GPI port, 1-based.
        port: u16,
        /// Its new state.
        high: bool,
    },
    /// The reader's health changed, or a periodic health report is due.
    Health {
        /// The reader.
        reader: ReaderName,
        /// Its health now.
        health: ReaderHealth,
    },
}
