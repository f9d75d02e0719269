//! UHF RFID reader modules of the 0xA0 family (Impinj R2000 / Indy based readers speaking the
//! "UHF RFID Reader Serial Interface Protocol", V3.x documents).
//!
//! # Frame
//!
//! ```text
//! A0 Len Addr Cmd Data.. Check
//! ```
//! `Len` counts the bytes after it (Addr + Cmd + Data + Check, so at least 3 and a frame is at
//! most [`MAX_FRAME_LEN`] = 257 bytes); `Check` is the two's complement of the byte sum from `A0`
//! through the last data byte, so a whole frame sums to zero. `Addr` is the reader's bus address
//! (0xFF: every reader answers). The reader echoes the command byte in its replies.
//!
//! # Direction
//!
//! Both directions use the same envelope, and the same command byte carries different data each
//! way (`A0 04 01 74 10 D7` is "set work antenna 0x10" from the host but "success" from the
//! reader). So there are two decoders: [`decode_command`] for what a host sends (used by the
//! simulator) and [`decode_response`] for what a reader sends (used by the daemon), with the
//! matching encoders [`encode_command`] and [`encode_response`].
//!
//! Replies to the inventory commands 0x89/0x8A/0x8B come in several shapes told apart by the data
//! length: a one-byte ErrorCode, a seven-byte end-of-round summary, two bytes `AntID ErrorCode`
//! (0x8A only), and otherwise a [`TagRecord`] whose EPC length comes from its PC word.
//!
//! # Resynchronisation
//!
//! - a first byte other than 0xA0: [`Decoded::Invalid`](crate::codec::Decoded) skipping up to
//!   the next 0xA0 (or everything);
//! - `Len` < 3, a bad checksum, or a checksummed frame whose data does not fit its command (a
//!   typed [`UhfError`] naming the field): skip exactly one byte, so a real frame starting inside
//!   the rejected bytes is still found;
//! - an unknown command byte is not an error: it decodes as [`Command::Other`] /
//!   [`Response::Other`] holding the data (fixed-size, no allocation).
//!
//! # Sources
//!
//! Command bytes, data layouts and the error-code table follow the public "UHF RFID Reader Serial
//! Interface Protocol" V3.7 contents, cross-checked against open-source clients: the vendor's C#
//! demo SDK (`CustomizedInventory` = Session, Target, Repeat; `FormatErrorCode` 0x10..0x57, 0xFF),
//! hex-in/pyImpinj (0x8A four-port layout; summaries `AntID ReadRate(2) TotalRead(4)` for 0x89 and
//! 0x8B, `TotalRead(3) CommandDuration(4)` for 0x8A; codes 0x3C and 0xEE; temperature sign byte
//! 0 = minus), a YR8900 client (eight-port and extended `Len` 0x20 forms of 0x8A; 0x90 record
//! layout; antenna 5..8 from the RSSI top bit) and a Qt client (0x8A `AntID ErrorCode` reply). The
//! vectors in `shared/vectors/uhf-a0.txt`, two captured from real readers, are the known-answer
//! tests of [`codec`].

pub mod codec;
pub mod frame;

pub use codec::{
    Envelope, HEAD, MAX_FRAME_LEN, MIN_LEN, UhfError, checksum, decode_command, decode_envelope,
    decode_response, encode_command, encode_response, parse_command, parse_response,
};
pub use frame::{
    AntennaStay, BufferRead, BufferRecord, Bytes, Command, ErrorCode, FastSwitch,
    FastSwitchExtension, FastSwitchSlots, FastSwitchStats, Inventory, MAX_DATA_LEN,
    MAX_SESSION_EXTRA, OutputPower, Response, RoundStats, SessionInventory, TagRecord, Temperature,
    cmd,
};
