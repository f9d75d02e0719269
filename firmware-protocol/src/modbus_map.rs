//! Typed Modbus register maps: the gate I/O module and Modbus RFID readers, as data.
//!
//! The Modbus transport (TCP or RTU, retries, timeouts, exception codes) is tokio-modbus, in the
//! daemon and the simulator. This module only says *which* coil, discrete input or holding
//! register means what, and turns the blocks that tokio-modbus returns (`Vec<bool>` for coils and
//! discrete inputs, `Vec<u16>` for registers) into typed values, or typed values into the writes
//! to issue. It does no I/O.
//!
//! Addresses everywhere are 0-based *protocol* addresses, as they go into a Modbus PDU and into
//! tokio-modbus calls: the data-model reference 00001 (coil 1, "DO0") is address 0, discrete
//! input 10001 is address 0, holding register 40001 is address 0.
//!
//! - [`gate`]: the gate I/O module (Moxa ioLogik style): alarm light, sounder, door lock and
//!   barrier relays as coils, photo-eyes and the door contact as normally-closed discrete inputs.
//! - [`reader`]: two styles of Modbus RFID reader: "flat" readers that leave the card UID in
//!   holding registers with a new-read flag coil, and "mailbox" readers with a
//!   command/status/length/data register block.
//! - [`rtu`]: Modbus RTU request framing (CRC-16/MODBUS), so the published vectors are checked
//!   here and tools can log frames; it is not the transport.
//!
//! Register blocks are complete values handed over by the transport, not byte streams, so their
//! decoders return `Result` rather than [`crate::codec::Decoded`]; only [`rtu`] decodes bytes.
//!
//! Every map derives `serde` (behind the crate's `serde` feature) with `deny_unknown_fields` and
//! struct-level defaults, so a configuration file names only the addresses that differ from the
//! convention. An optional address is written as a number, or `false` for "not fitted".

pub mod gate;
pub mod reader;
pub mod rtu;

pub use gate::{Beam, CoilWrites, Door, GateInputs, GateIoMap, Outputs};
pub use reader::{
    CardBytes, FlatReaderMap, MAX_CARD_BYTES, MailboxMap, MailboxReply, missed_reads,
};

/// A register map or a register block read from a device is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModbusMapError {
    /// A block has a different number of registers or bits than the map needs.
    #[error("{field}: block has {got} entries, expected {expected}")]
    BlockLength {
        /// The block that was decoded.
        field: &'static str,
        /// The number of entries the map needs.
        expected: usize,
        /// The number of entries given.
        got: usize,
    },
    /// An address the map needs lies outside the block that was read.
    #[error("{field}: address {address} outside the block read")]
    OutsideBlock {
        /// The map field whose address is missing.
        field: &'static str,
        /// Its address.
        address: u16,
    },
    /// A mailbox reader announced more data bytes than its data registers hold.
    #[error("length {length} exceeds the {capacity}-byte data block")]
    LengthExceedsBlock {
        /// The length register, in bytes.
        length: u16,
        /// The number of bytes the data registers hold.
        capacity: usize,
    },
    /// A mailbox reader reported an error in its status register.
    #[error("reader status error code {code:#06x}")]
    ReaderStatus {
        /// The status register value.
        code: u16,
    },
    /// Two fields of a map share one address.
    #[error("{field}: address already used by another field")]
    DuplicateAddress {
        /// The second field with that address.
        field: &'static str,
    },
    /// A block size in the map is zero, too large, or runs past address 0xFFFF.
    #[error("{field}: block size out of range")]
    BlockSize {
        /// The map field with the bad size.
        field: &'static str,
    },
}

/// A contiguous block of Modbus addresses: what to ask tokio-modbus to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRange {
    /// The first address (0-based protocol address).
    pub start: u16,
    /// How many coils, inputs or registers.
    pub count: u16,
}

impl AddressRange {
    /// The offset of `address` in the block, if the block holds it.
    pub fn offset_of(&self, address: u16) -> Option<usize> {
        let offset = usize::from(address.checked_sub(self.start)?);
        (offset < usize::from(self.count)).then_some(offset)
    }

    /// The smallest range holding every address given; `None` for no addresses.
    ///
    /// A span of all 65536 addresses does not fit `count` and is reported as 65535; no Modbus
    /// read is that large, and the maps' `validate` refuse such spans.
    pub fn spanning(addresses: impl IntoIterator<Item = u16>) -> Option<Self> {
        let mut bounds: Option<(u16, u16)> = None;
        for a in addresses {
            bounds = Some(match bounds {
                None => (a, a),
                Some((lo, hi)) => (lo.min(a), hi.max(a)),
            });
        }
        // hi - lo + 1 <= 0x10000; it overflows u16 only for the span 0..=0xFFFF (see above).
        bounds.map(|(lo, hi)| Self {
            start: lo,
            count: (hi - lo).saturating_add(1),
        })
    }
}

/// One coil to write with Modbus function 0x05 (Write Single Coil).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoilWrite {
    /// The coil address.
    pub coil: u16,
    /// `true` = energised (ON, 0xFF00 on the wire).
    pub value: bool,
}

/// One holding register to write with Modbus function 0x06 (Write Single Register).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterWrite {
    /// The register address.
    pub register: u16,
    /// The value to write.
    pub value: u16,
}

/// Serde for an optional address: a number, or `false` for "not fitted".
///
/// TOML has no null, so `None` is spelled `false`; `true` is refused.
#[cfg(feature = "serde")]
pub(crate) mod optional_address {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Address(u16),
        Flag(bool),
    }

    pub(crate) fn serialize<S: Serializer>(v: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_u16(*a),
            None => s.serialize_bool(false),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Address(a) => Ok(Some(a)),
            Repr::Flag(false) => Ok(None),
            Repr::Flag(true) => Err(serde::de::Error::custom(
                "expected an address (0..=65535) or false for not fitted",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_offsets_and_spans() {
        let r = AddressRange { start: 6, count: 4 };
        assert_eq!(r.offset_of(5), None);
        assert_eq!(r.offset_of(6), Some(0));
        assert_eq!(r.offset_of(9), Some(3));
        assert_eq!(r.offset_of(10), None);
        assert_eq!(
            AddressRange::spanning([2, 0, 1]),
            Some(AddressRange { start: 0, count: 3 })
        );
        assert_eq!(
            AddressRange::spanning([7]),
            Some(AddressRange { start: 7, count: 1 })
        );
        assert_eq!(AddressRange::spanning([]), None);
        assert_eq!(
            AddressRange::spanning([0, 0xFFFF]).map(|r| r.count),
            Some(0xFFFF)
        );
    }
}
