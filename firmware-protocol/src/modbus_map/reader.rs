//! Modbus RFID readers: where the card data sits in the holding registers, and its decoding.
//!
//! Two styles of reader are common on RS-485 buses; both keep card bytes in holding registers as
//! big-endian byte pairs (register `0x1A00` = bytes `1A 00`), the usual Modbus convention.
//!
//! **Flat** readers ([`FlatReaderMap`]) leave the UID of the last card in a fixed run of holding
//! registers, raise a "new read" flag coil, and optionally count reads in a register. The host
//! polls:
//! 1. read the flag coil (function 0x01); if it is `false` there is nothing new;
//! 2. read [`FlatReaderMap::uid_block`] (function 0x03) and decode it with
//!    [`FlatReaderMap::decode_uid`];
//! 3. write the flag coil back to `false` ([`FlatReaderMap::clear_flag`], function 0x05).
//!
//! A card read between steps 2 and 3 is lost when the flag is cleared; the read counter, if the
//! reader has one, shows that ([`missed_reads`]). Without a flag coil the host polls the UID
//! registers and reports a change; most readers zero them when no card is present
//! ([`CardBytes::is_zero`]).
//!
//! **Mailbox** readers ([`MailboxMap`]) have a command register the host writes, a status
//! register the reader sets, a length register (bytes) and a run of data registers. The host
//! writes [`MailboxMap::read_request`], polls [`MailboxMap::reply_block`] and decodes it with
//! [`MailboxMap::decode_reply`] until the reply is no longer [`MailboxReply::Busy`].

use core::fmt;

use super::{AddressRange, CoilWrite, ModbusMapError, RegisterWrite};

/// The most card bytes a decoder returns: 32 registers.
pub const MAX_CARD_BYTES: usize = 64;

/// "Quantity of Registers: 1 to 125 (0x7D)" for one Read Holding Registers request.
const MAX_READ_REGISTERS: u16 = 0x007D;

/// The most data registers a map may name (`MAX_CARD_BYTES / 2`).
const MAX_DATA_REGISTERS: u16 = (MAX_CARD_BYTES / 2) as u16;

/// Card bytes from a reader's registers, up to [`MAX_CARD_BYTES`], without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardBytes {
    len: u8,
    bytes: [u8; MAX_CARD_BYTES],
}

impl CardBytes {
    /// The first `len` bytes of `registers` taken as big-endian byte pairs.
    ///
    /// Callers guarantee `len <= 2 * registers.len()` and `len <= MAX_CARD_BYTES`.
    fn from_registers(registers: &[u16], len: usize) -> Self {
        let mut bytes = [0u8; MAX_CARD_BYTES];
        for (pair, r) in bytes.chunks_exact_mut(2).zip(registers) {
            pair.copy_from_slice(&r.to_be_bytes());
        }
        bytes[len..].fill(0);
        // len <= MAX_CARD_BYTES = 64 by the caller's guarantee, so it fits in u8.
        Self {
            len: len as u8,
            bytes,
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether every byte is zero (most flat readers clear the UID this way: no card).
    pub fn is_zero(&self) -> bool {
        self.as_bytes().iter().all(|b| *b == 0)
    }
}

/// Upper-case hex, the form used in configuration, the API and logs.
impl fmt::Display for CardBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CardBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardBytes({self})")
    }
}

/// Reads the reader's counter missed between two polls: `now - before - 1`, modulo 2^16, and 0
/// when the counter has not moved.
///
/// The counter is a 16-bit register that wraps; one read is expected per poll that saw the flag.
pub fn missed_reads(before: u16, now: u16) -> u16 {
    now.wrapping_sub(before).saturating_sub(1)
}

/// Register map of a "flat" Modbus RFID reader. `Default` matches the published vector: the UID
/// in 4 holding registers from address 6 (8 bytes), new-read flag in coil 0, no counter.
///
/// A UID shorter than the register run is right-aligned with leading zeros on most readers
/// (a 5-byte EM4100 id in 8 bytes: `00 00 00 1A 00 B5 4E 12`); the decoder returns all the bytes
/// and the caller keeps the ones its card type uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
pub struct FlatReaderMap {
    /// First holding register of the UID.
    pub uid_register: u16,
    /// Number of UID registers (1..=32); the UID has twice as many bytes.
    pub uid_registers: u16,
    /// Coil the reader sets on a new read and the host clears; `None` if the reader has none.
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub new_read_coil: Option<u16>,
    /// Holding register counting reads (wrapping); `None` if the reader has none.
    #[cfg_attr(feature = "serde", serde(with = "super::optional_address"))]
    pub read_counter_register: Option<u16>,
}

impl Default for FlatReaderMap {
    fn default() -> Self {
        // modbus.txt: "01 03 00 06 00 04 A4 08 | read 4 holding registers from 6 (card UID on
        // simple RS-485 readers), unit 1"
        Self {
            uid_register: 6,
            uid_registers: 4,
            new_read_coil: Some(0),
            read_counter_register: None,
        }
    }
}

impl FlatReaderMap {
    /// Checks the UID run: 1..=32 registers, not past address 0xFFFF.
    pub fn validate(&self) -> Result<(), ModbusMapError> {
        check_run("uid_registers", self.uid_register, self.uid_registers)
    }

    /// The holding registers to read (function 0x03) for [`decode_uid`](Self::decode_uid).
    pub fn uid_block(&self) -> AddressRange {
        AddressRange {
            start: self.uid_register,
            count: self.uid_registers,
        }
    }

    /// Decodes the UID registers (exactly [`uid_block`](Self::uid_block) as read) to bytes,
    /// big-endian pairs, `2 * uid_registers` bytes.
    pub fn decode_uid(&self, registers: &[u16]) -> Result<CardBytes, ModbusMapError> {
        let expected = usize::from(self.uid_registers);
        if registers.len() != expected || expected > usize::from(MAX_DATA_REGISTERS) {
            return Err(ModbusMapError::BlockLength {
                field: "uid_registers",
                expected,
                got: registers.len(),
            });
        }
        Ok(CardBytes::from_registers(registers, 2 * expected))
    }

    /// The write that clears the new-read flag, if the reader has one.
    pub fn clear_flag(&self) -> Option<CoilWrite> {
        self.new_read_coil
            .map(|coil| CoilWrite { coil, value: false })
    }
}

/// The mailbox status register: no command pending.
pub const STATUS_IDLE: u16 = 0x0000;
/// The mailbox status register: the reader is working on the command.
pub const STATUS_BUSY: u16 = 0x0001;
/// The mailbox status register: done; length and data registers hold the result.
pub const STATUS_DONE: u16 = 0x0002;
/// The command that asks the reader to read the card in its field (default).
pub const COMMAND_READ_CARD: u16 = 0x0001;

/// Register map of a "mailbox" Modbus RFID reader. `Default`: command register 0, status 1,
/// length 2, data from 3 for 7 registers, so one read of 10 registers from 0 (the first line of
/// the published vectors) covers the whole mailbox.
///
/// Status values are [`STATUS_IDLE`], [`STATUS_BUSY`] and [`STATUS_DONE`]; any other value is an
/// error code from the reader. A `DONE` reply with length 0 means "no card in the field".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
pub struct MailboxMap {
    /// Holding register the host writes a command to.
    pub command_register: u16,
    /// Holding register the reader sets to a status.
    pub status_register: u16,
    /// Holding register with the reply length in bytes.
    pub length_register: u16,
    /// First data register.
    pub data_register: u16,
    /// Number of data registers (1..=32).
    pub data_registers: u16,
    /// The command value that requests a card read.
    pub read_command: u16,
}

impl Default for MailboxMap {
    fn default() -> Self {
        Self {
            command_register: 0,
            status_register: 1,
            length_register: 2,
            data_register: 3,
            data_registers: 7,
            read_command: COMMAND_READ_CARD,
        }
    }
}

/// What a mailbox reader's reply block says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailboxReply {
    /// No command pending (status idle).
    Idle,
    /// The reader is still working; poll again.
    Busy,
    /// The command finished; these are the data bytes (empty = no card).
    Data(CardBytes),
}

impl MailboxMap {
    /// Checks the data run (1..=32 registers, not past 0xFFFF), that the command, status and
    /// length registers are distinct and outside the data run, and that the reply block fits in
    /// one read (125 registers).
    pub fn validate(&self) -> Result<(), ModbusMapError> {
        check_run("data_registers", self.data_register, self.data_registers)?;
        let data = self.data_run();
        let singles = [
            ("command_register", self.command_register),
            ("status_register", self.status_register),
            ("length_register", self.length_register),
        ];
        for (i, (field, a)) in singles.iter().enumerate() {
            if data.offset_of(*a).is_some() || singles[..i].iter().any(|(_, b)| b == a) {
                return Err(ModbusMapError::DuplicateAddress { field });
            }
        }
        if self.reply_block().count > MAX_READ_REGISTERS {
            return Err(ModbusMapError::BlockSize { field: "reply" });
        }
        Ok(())
    }

    fn data_run(&self) -> AddressRange {
        AddressRange {
            start: self.data_register,
            count: self.data_registers,
        }
    }

    /// The write that asks the reader for a card read (function 0x06).
    pub fn read_request(&self) -> RegisterWrite {
        RegisterWrite {
            register: self.command_register,
            value: self.read_command,
        }
    }

    /// The holding registers to read (function 0x03) for [`decode_reply`](Self::decode_reply):
    /// the smallest block holding status, length and data.
    pub fn reply_block(&self) -> AddressRange {
        let last_data = self
            .data_register
            .saturating_add(self.data_registers.saturating_sub(1));
        let span = [
            self.status_register,
            self.length_register,
            self.data_register,
            last_data,
        ];
        // The iterator is non-empty, so spanning always answers Some.
        AddressRange::spanning(span).unwrap_or(AddressRange { start: 0, count: 0 })
    }

    /// Decodes holding registers read from `start` (covering status, length and data) into the
    /// reply, checking the status and that the length fits the data registers.
    pub fn decode_reply(
        &self,
        start: u16,
        registers: &[u16],
    ) -> Result<MailboxReply, ModbusMapError> {
        let block = AddressRange {
            start,
            count: u16::try_from(registers.len()).map_err(|_| ModbusMapError::BlockLength {
                field: "reply",
                expected: usize::from(self.reply_block().count),
                got: registers.len(),
            })?,
        };
        let at = |field: &'static str, address: u16| {
            block
                .offset_of(address)
                .map(|i| registers[i])
                .ok_or(ModbusMapError::OutsideBlock { field, address })
        };
        match at("status_register", self.status_register)? {
            STATUS_IDLE => return Ok(MailboxReply::Idle),
            STATUS_BUSY => return Ok(MailboxReply::Busy),
            STATUS_DONE => {}
            code => return Err(ModbusMapError::ReaderStatus { code }),
        }
        let length = at("length_register", self.length_register)?;
        let capacity = 2 * usize::from(self.data_registers.min(MAX_DATA_REGISTERS));
        if usize::from(length) > capacity {
            return Err(ModbusMapError::LengthExceedsBlock { length, capacity });
        }
        let first = block
            .offset_of(self.data_register)
            .ok_or(ModbusMapError::OutsideBlock {
                field: "data_register",
                address: self.data_register,
            })?;
        let used = usize::from(length).div_ceil(2);
        let data = registers
            .get(first..first + used)
            .ok_or(ModbusMapError::OutsideBlock {
                field: "data_registers",
                // `get` fails only for used >= 1; used <= 32, so the cast is exact.
                address: self
                    .data_register
                    .saturating_add(used.saturating_sub(1) as u16),
            })?;
        Ok(MailboxReply::Data(CardBytes::from_registers(
            data,
            usize::from(length),
        )))
    }
}

fn check_run(field: &'static str, start: u16, count: u16) -> Result<(), ModbusMapError> {
    let past_end = u32::from(start) + u32::from(count);
    if count == 0 || count > MAX_DATA_REGISTERS || past_end > 0x1_0000 {
        return Err(ModbusMapError::BlockSize { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flat_default_is_the_vector_block() {
        // "01 03 00 06 00 04 A4 08 | read 4 holding registers from 6 (card UID ...)"
        let m = FlatReaderMap::default();
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.uid_block(), AddressRange { start: 6, count: 4 });
        assert_eq!(
            m.clear_flag(),
            Some(CoilWrite {
                coil: 0,
                value: false
            })
        );
    }

    #[test]
    fn flat_uid_is_big_endian_pairs() {
        let m = FlatReaderMap::default();
        let uid = m.decode_uid(&[0x0000, 0x001A, 0x00B5, 0x4E12]).unwrap();
        assert_eq!(
            uid.as_bytes(),
            &[0x00, 0x00, 0x00, 0x1A, 0x00, 0xB5, 0x4E, 0x12]
        );
        assert_eq!(uid.to_string(), "0000001A00B54E12");
        assert!(!uid.is_zero());
        assert!(m.decode_uid(&[0; 4]).unwrap().is_zero());
        assert_eq!(
            m.decode_uid(&[0; 3]),
            Err(ModbusMapError::BlockLength {
                field: "uid_registers",
                expected: 4,
                got: 3
            })
        );
        assert!(m.decode_uid(&[0; 5]).is_err());
    }

    #[test]
    fn flat_map_sizes_are_checked() {
        let m = FlatReaderMap {
            uid_registers: 0,
            ..FlatReaderMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::BlockSize {
                field: "uid_registers"
            })
        );
        let m = FlatReaderMap {
            uid_registers: 33,
            ..FlatReaderMap::default()
        };
        assert!(m.validate().is_err());
        assert!(m.decode_uid(&[0; 33]).is_err());
        let m = FlatReaderMap {
            uid_register: 0xFFFE,
            uid_registers: 3,
            ..FlatReaderMap::default()
        };
        assert!(m.validate().is_err());
        let m = FlatReaderMap {
            uid_register: 0xFFFE,
            uid_registers: 2,
            ..FlatReaderMap::default()
        };
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(
            FlatReaderMap {
                new_read_coil: None,
                ..m
            }
            .clear_flag(),
            None
        );
    }

    #[test]
    fn counter_shows_missed_reads() {
        assert_eq!(missed_reads(7, 7), 0);
        assert_eq!(missed_reads(7, 8), 0);
        assert_eq!(missed_reads(7, 10), 2);
        assert_eq!(missed_reads(0xFFFF, 0x0001), 1);
    }

    #[test]
    fn mailbox_default_fits_the_ten_register_read() {
        // "01 03 00 00 00 0A C5 CD | read 10 holding registers from 0, unit 1"
        let m = MailboxMap::default();
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.reply_block(), AddressRange { start: 1, count: 9 });
        assert_eq!(
            m.read_request(),
            RegisterWrite {
                register: 0,
                value: COMMAND_READ_CARD
            }
        );
        let mut block = [0u16; 10];
        block[1] = STATUS_DONE;
        block[2] = 5;
        block[3..6].copy_from_slice(&[0x1A00, 0xB54E, 0x12FF]);
        let reply = m.decode_reply(0, &block).unwrap();
        let MailboxReply::Data(data) = reply else {
            panic!("expected data, got {reply:?}")
        };
        // The odd length drops the low byte of the last register.
        assert_eq!(data.as_bytes(), &[0x1A, 0x00, 0xB5, 0x4E, 0x12]);
        // The exact reply block, starting at the status register, decodes the same.
        assert_eq!(m.decode_reply(1, &block[1..]), Ok(reply));
    }

    #[test]
    fn mailbox_status_and_length_errors() {
        let m = MailboxMap::default();
        let mut block = [0u16; 9];
        assert_eq!(m.decode_reply(1, &block), Ok(MailboxReply::Idle));
        block[0] = STATUS_BUSY;
        assert_eq!(m.decode_reply(1, &block), Ok(MailboxReply::Busy));
        block[0] = 0x8003;
        assert_eq!(
            m.decode_reply(1, &block),
            Err(ModbusMapError::ReaderStatus { code: 0x8003 })
        );
        block[0] = STATUS_DONE;
        block[1] = 15;
        assert_eq!(
            m.decode_reply(1, &block),
            Err(ModbusMapError::LengthExceedsBlock {
                length: 15,
                capacity: 14
            })
        );
        block[1] = 14;
        assert!(
            matches!(m.decode_reply(1, &block), Ok(MailboxReply::Data(d)) if d.as_bytes().len() == 14)
        );
        block[1] = 0;
        assert!(
            matches!(m.decode_reply(1, &block), Ok(MailboxReply::Data(d)) if d.as_bytes().is_empty())
        );
        // A block that stops before the data the length needs.
        block[1] = 4;
        assert_eq!(
            m.decode_reply(1, &block[..3]),
            Err(ModbusMapError::OutsideBlock {
                field: "data_registers",
                address: 4
            })
        );
        assert_eq!(
            m.decode_reply(2, &block[1..]),
            Err(ModbusMapError::OutsideBlock {
                field: "status_register",
                address: 1
            })
        );
    }

    #[test]
    fn mailbox_map_overlaps_are_refused() {
        let m = MailboxMap {
            status_register: 4,
            ..MailboxMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::DuplicateAddress {
                field: "status_register"
            })
        );
        let m = MailboxMap {
            length_register: 0,
            ..MailboxMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::DuplicateAddress {
                field: "length_register"
            })
        );
        let m = MailboxMap {
            data_registers: 40,
            ..MailboxMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::BlockSize {
                field: "data_registers"
            })
        );
        let m = MailboxMap {
            status_register: 200,
            ..MailboxMap::default()
        };
        assert_eq!(
            m.validate(),
            Err(ModbusMapError::BlockSize { field: "reply" })
        );
        // Data before the status register works too.
        let m = MailboxMap {
            data_register: 0,
            data_registers: 4,
            command_register: 10,
            status_register: 11,
            length_register: 12,
            ..MailboxMap::default()
        };
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(
            m.reply_block(),
            AddressRange {
                start: 0,
                count: 13
            }
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn reader_maps_serde() {
        let m: FlatReaderMap = serde_json::from_str(
            r#"{"uid_register": 16, "new_read_coil": false, "read_counter_register": 20}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            FlatReaderMap {
                uid_register: 16,
                uid_registers: 4,
                new_read_coil: None,
                read_counter_register: Some(20)
            }
        );
        assert!(serde_json::from_str::<MailboxMap>(r#"{"cmd": 1}"#).is_err());
        let m: MailboxMap = serde_json::from_str(r#"{"read_command": 3}"#).unwrap();
        assert_eq!(
            m,
            MailboxMap {
                read_command: 3,
                ..MailboxMap::default()
            }
        );
    }

    proptest! {
        /// Registers built from card bytes (big-endian pairs, zero padded) decode back to those
        /// bytes, for the flat UID and for the mailbox at any length that fits.
        #[test]
        fn card_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..=64)) {
            let regs: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            let m = MailboxMap { data_registers: 32, ..MailboxMap::default() };
            let mut block = vec![STATUS_DONE, bytes.len() as u16];
            block.extend(&regs);
            block.resize(2 + 32, 0);
            let reply = m.decode_reply(1, &block).unwrap();
            prop_assert!(matches!(reply, MailboxReply::Data(d) if d.as_bytes() == bytes.as_slice()));
            if !regs.is_empty() && bytes.len() % 2 == 0 {
                let f = FlatReaderMap { uid_registers: regs.len() as u16, ..FlatReaderMap::default() };
                let uid = f.decode_uid(&regs).unwrap();
                prop_assert_eq!(uid.as_bytes(), bytes.as_slice());
            }
        }

        /// Whatever the reader puts in its registers, decoding never panics.
        #[test]
        fn mailbox_decode_never_panics(
            start in any::<u16>(),
            regs in proptest::collection::vec(any::<u16>(), 0..40),
        ) {
            let _ = MailboxMap::default().decode_reply(start, &regs);
        }
    }
}
