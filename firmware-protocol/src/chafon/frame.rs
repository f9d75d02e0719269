//! The plain data of the CHAFON protocol: what a host asks, what a reader answers.
//!
//! Nothing here knows about bytes on the wire; the parent module ([`super`]) holds the layout.
//! Every type is allocation-free. Values that could not be put on the wire (too many tags for
//! one frame, raw data longer than a frame) cannot be built: their constructors refuse them,
//! so the encoders only ever fail for a too-small output buffer.

use core::fmt;

use crate::epc::Epc;

use super::ChafonError;

/// The most tags one inventory reply may carry; a reply announcing more is refused with
/// [`ChafonError::TooManyTags`].
///
/// A frame holds at most 250 data bytes (Len ≤ 255). In the UHFReader18 form a reply is
/// `Num` then `Num × (len, EPC)`, so with EPCs of at least one 16-bit word (3 bytes a tag)
/// `(250 - 1) / 3 = 83` tags fit; the UHFReader288 form needs 4 bytes a tag and fits 62. Only
/// replies padded with empty EPCs could carry more, and those carry nothing worth tracking.
pub const MAX_TAGS: usize = 83;

/// The longest Data[] of a reply: Len 255 less Adr, reCmd, Status and the two CRC bytes.
pub const MAX_RESPONSE_DATA: usize = 250;

/// The longest Data[] of a command: Len 255 less Adr, Cmd and the two CRC bytes.
pub const MAX_COMMAND_DATA: usize = 251;

/// The longest inventory mask: MaskLen is one byte of bits, so ⌈255 / 8⌉ = 32 bytes.
pub const MAX_MASK_BYTES: usize = 32;

/// Which of the two inventory reply layouts a reader uses.
///
/// - UHFReader18 (and its clones: ZK-RFID102, HW-VX6330K, CF-RU5102): `Status, Num,
///   Num × (EPC len, EPC)`; scan-mode pushes carry the bare EPC.
/// - UHFReader288 (UR-series, CF-RU5106, E310 modules): `Status, Ant, Num,
///   Num × (EPC len, EPC, RSSI)`; real-time-mode pushes carry `Ant, len, EPC, RSSI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryForm {
    /// The UHFReader18 layout: no antenna, no RSSI.
    Reader18,
    /// The UHFReader288 layout: an antenna mask per reply and an RSSI byte per tag.
    Reader288,
}

/// The result status byte of a reader reply.
///
/// Codes and meanings from the UHFReader18 manual's "list of command execution result status"
/// and the UR-series (UHFReader288) manual v1.14. [`Status::Unknown`] keeps any other byte;
/// build statuses with [`Status::from_byte`] so a known code is never held as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0x00: the command succeeded.
    Success,
    /// 0x01: inventory finished within the inventory time; every tag found is reported.
    InventoryDone,
    /// 0x02: the inventory time ran out; the tags found so far are reported.
    InventoryTimeout,
    /// 0x03: more data follows in further frames.
    MoreData,
    /// 0x04: the reader's memory is full; the tags found so far are reported.
    MemoryFull,
    /// 0x05: wrong access password.
    AccessPasswordError,
    /// 0x0B: the tag does not support the command.
    TagUnsupported,
    /// 0x13: saving the parameter failed.
    SaveFailed,
    /// 0x14: the power cannot be adjusted.
    PowerNotAdjustable,
    /// 0x26: a statistics packet of the last inventory (UHFReader288, QValue bit 7 set).
    Statistics,
    /// 0x28: a real-time-mode heartbeat: no tag within the heartbeat interval (UHFReader288).
    Heartbeat,
    /// 0xEE: an EAS alarm was detected (UHFReader18 scan mode with Mem_Inven = 0x06).
    EasAlarm,
    /// 0xF8: antenna error; the current antenna may be disconnected.
    AntennaError,
    /// 0xF9: the command failed to execute.
    CommandFailed,
    /// 0xFA: a tag was found but communication with it was too poor to finish.
    PoorCommunication,
    /// 0xFB: no tag to operate on.
    NoTag,
    /// 0xFC: the tag returned an error code.
    TagError,
    /// 0xFD: the command length is wrong.
    BadLength,
    /// 0xFE: illegal command (unknown command or CRC error).
    IllegalCommand,
    /// 0xFF: a parameter of the command is invalid.
    ParameterError,
    /// Any other status byte.
    Unknown(u8),
}

impl Status {
    /// The status a byte stands for.
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => Self::Success,
            0x01 => Self::InventoryDone,
            0x02 => Self::InventoryTimeout,
            0x03 => Self::MoreData,
            0x04 => Self::MemoryFull,
            0x05 => Self::AccessPasswordError,
            0x0B => Self::TagUnsupported,
            0x13 => Self::SaveFailed,
            0x14 => Self::PowerNotAdjustable,
            0x26 => Self::Statistics,
            0x28 => Self::Heartbeat,
            0xEE => Self::EasAlarm,
            0xF8 => Self::AntennaError,
            0xF9 => Self::CommandFailed,
            0xFA => Self::PoorCommunication,
            0xFB => Self::NoTag,
            0xFC => Self::TagError,
            0xFD => Self::BadLength,
            0xFE => Self::IllegalCommand,
            0xFF => Self::ParameterError,
            other => Self::Unknown(other),
        }
    }

    /// The status byte on the wire.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Success => 0x00,
            Self::InventoryDone => 0x01,
            Self::InventoryTimeout => 0x02,
            Self::MoreData => 0x03,
            Self::MemoryFull => 0x04,
            Self::AccessPasswordError => 0x05,
            Self::TagUnsupported => 0x0B,
            Self::SaveFailed => 0x13,
            Self::PowerNotAdjustable => 0x14,
            Self::Statistics => 0x26,
            Self::Heartbeat => 0x28,
            Self::EasAlarm => 0xEE,
            Self::AntennaError => 0xF8,
            Self::CommandFailed => 0xF9,
            Self::PoorCommunication => 0xFA,
            Self::NoTag => 0xFB,
            Self::TagError => 0xFC,
            Self::BadLength => 0xFD,
            Self::IllegalCommand => 0xFE,
            Self::ParameterError => 0xFF,
            Self::Unknown(byte) => byte,
        }
    }

    /// What the status means, in a few words.
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InventoryDone => "inventory finished within time",
            Self::InventoryTimeout => "inventory timeout",
            Self::MoreData => "more data follows",
            Self::MemoryFull => "reader memory full",
            Self::AccessPasswordError => "access password error",
            Self::TagUnsupported => "tag does not support the command",
            Self::SaveFailed => "saving the parameter failed",
            Self::PowerNotAdjustable => "power cannot be adjusted",
            Self::Statistics => "inventory statistics",
            Self::Heartbeat => "heartbeat",
            Self::EasAlarm => "eas alarm",
            Self::AntennaError => "antenna error",
            Self::CommandFailed => "command failed",
            Self::PoorCommunication => "poor communication with the tag",
            Self::NoTag => "no tag",
            Self::TagError => "tag returned an error",
            Self::BadLength => "command length wrong",
            Self::IllegalCommand => "illegal command",
            Self::ParameterError => "parameter error",
            Self::Unknown(_) => "unknown status",
        }
    }

    /// Whether the status reports a failure (the 0xF8..=0xFF range and the tag access errors).
    pub const fn is_error(self) -> bool {
        matches!(
            self,
            Self::AccessPasswordError
                | Self::TagUnsupported
                | Self::SaveFailed
                | Self::PowerNotAdjustable
                | Self::AntennaError
                | Self::CommandFailed
                | Self::PoorCommunication
                | Self::NoTag
                | Self::TagError
                | Self::BadLength
                | Self::IllegalCommand
                | Self::ParameterError
        )
    }
}

impl From<u8> for Status {
    fn from(byte: u8) -> Self {
        Self::from_byte(byte)
    }
}

impl From<Status> for u8 {
    fn from(status: Status) -> Self {
        status.byte()
    }
}

/// `0xFB no tag`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02X} {}", self.byte(), self.meaning())
    }
}

/// The statuses with which a reader answers an inventory with a tag list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InventoryStatus {
    /// 0x01: inventory finished within the inventory time.
    Done,
    /// 0x02: the inventory time ran out.
    Timeout,
    /// 0x03: more tags follow in further frames.
    MoreData,
    /// 0x04: the reader's memory is full.
    MemoryFull,
}

impl InventoryStatus {
    /// The inventory status of a status, if it is one.
    pub const fn from_status(status: Status) -> Option<Self> {
        match status {
            Status::InventoryDone => Some(Self::Done),
            Status::InventoryTimeout => Some(Self::Timeout),
            Status::MoreData => Some(Self::MoreData),
            Status::MemoryFull => Some(Self::MemoryFull),
            _ => None,
        }
    }

    /// The general status this is.
    pub const fn status(self) -> Status {
        match self {
            Self::Done => Status::InventoryDone,
            Self::Timeout => Status::InventoryTimeout,
            Self::MoreData => Status::MoreData,
            Self::MemoryFull => Status::MemoryFull,
        }
    }
}

impl From<InventoryStatus> for Status {
    fn from(status: InventoryStatus) -> Self {
        status.status()
    }
}

/// The antenna number (1-based) an antenna mask names, when it names exactly one.
///
/// UR-series manual: "0x04 is 0000 0100 in binary, this indicates Antenna 3".
pub const fn antenna_from_mask(mask: u8) -> Option<u8> {
    if mask.count_ones() == 1 {
        Some(mask.trailing_zeros() as u8 + 1)
    } else {
        None
    }
}

/// One tag of an inventory reply or scan push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagRecord {
    /// The EPC (or TID, if the reader was told to inventory TIDs) the reader reported.
    pub epc: Epc,
    /// The RSSI byte (UHFReader288 form only; a reader-specific scale).
    pub rssi: Option<u8>,
    /// The 1-based antenna that saw the tag, when the reply names exactly one.
    pub antenna: Option<u8>,
}

impl TagRecord {
    /// A tag as the UHFReader18 form reports it: EPC only.
    pub const fn reader18(epc: Epc) -> Self {
        Self {
            epc,
            rssi: None,
            antenna: None,
        }
    }

    /// A tag as the UHFReader288 form reports it: the antenna comes from the reply's mask.
    pub const fn reader288(epc: Epc, rssi: u8, antenna_mask: u8) -> Self {
        Self {
            epc,
            rssi: Some(rssi),
            antenna: antenna_from_mask(antenna_mask),
        }
    }
}

/// A fixed-capacity list of up to [`MAX_TAGS`] tags.
#[derive(Clone)]
pub struct TagList {
    len: u8,
    tags: [TagRecord; MAX_TAGS],
}

impl TagList {
    /// An empty list.
    pub fn new() -> Self {
        // Invariant: an empty EPC is within Epc's 62-byte capacity, so `new` cannot fail.
        let empty = Epc::new(&[]).expect("empty epc fits");
        Self {
            len: 0,
            tags: [TagRecord::reader18(empty); MAX_TAGS],
        }
    }

    /// Appends a tag; refuses the [`MAX_TAGS`]+1st with [`ChafonError::TooManyTags`].
    pub fn push(&mut self, tag: TagRecord) -> Result<(), ChafonError> {
        let slot = self
            .tags
            .get_mut(self.len as usize)
            .ok_or(ChafonError::TooManyTags {
                count: MAX_TAGS + 1,
            })?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// The tags, in reply order.
    pub fn as_slice(&self) -> &[TagRecord] {
        &self.tags[..self.len as usize]
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the list holds no tag.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for TagList {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for TagList {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for TagList {}

impl fmt::Debug for TagList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a> IntoIterator for &'a TagList {
    type Item = &'a TagRecord;
    type IntoIter = core::slice::Iter<'a, TagRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// A reply to inventory (reCmd 0x01) with a tag list, in either form.
///
/// Built only through [`reader18`](Self::reader18) / [`reader288`](Self::reader288) and
/// [`push`](Self::push), so every reply fits one frame and each tag's `rssi`/`antenna` agree
/// with the form (that is what the decoder yields, which makes encode → decode the identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryReply {
    status: InventoryStatus,
    antenna_mask: Option<u8>,
    tags: TagList,
}

impl InventoryReply {
    /// An empty reply in the UHFReader18 form.
    pub fn reader18(status: InventoryStatus) -> Self {
        Self {
            status,
            antenna_mask: None,
            tags: TagList::new(),
        }
    }

    /// An empty reply in the UHFReader288 form for the antennas in `antenna_mask`.
    pub fn reader288(status: InventoryStatus, antenna_mask: u8) -> Self {
        Self {
            status,
            antenna_mask: Some(antenna_mask),
            tags: TagList::new(),
        }
    }

    /// Appends a tag. `rssi` is kept in the UHFReader288 form and dropped in the UHFReader18
    /// form; the tag's antenna comes from the reply's mask.
    ///
    /// Refuses a tag beyond [`MAX_TAGS`] ([`ChafonError::TooManyTags`]) or one that would make
    /// the frame longer than Len 255 ([`ChafonError::FrameTooLong`]).
    pub fn push(&mut self, epc: Epc, rssi: u8) -> Result<(), ChafonError> {
        let tag = match self.antenna_mask {
            None => TagRecord::reader18(epc),
            Some(mask) => TagRecord::reader288(epc, rssi, mask),
        };
        if self.data_len() + self.tag_cost(&epc) > MAX_RESPONSE_DATA {
            return Err(ChafonError::FrameTooLong);
        }
        if self.tags.len() == MAX_TAGS {
            return Err(ChafonError::TooManyTags {
                count: MAX_TAGS + 1,
            });
        }
        self.tags.push(tag)
    }

    /// The reply status.
    pub fn status(&self) -> InventoryStatus {
        self.status
    }

    /// The layout of this reply.
    pub fn form(&self) -> InventoryForm {
        match self.antenna_mask {
            None => InventoryForm::Reader18,
            Some(_) => InventoryForm::Reader288,
        }
    }

    /// The antenna mask byte (UHFReader288 form only).
    pub fn antenna_mask(&self) -> Option<u8> {
        self.antenna_mask
    }

    /// The tags, in reply order.
    pub fn tags(&self) -> &[TagRecord] {
        self.tags.as_slice()
    }

    fn tag_cost(&self, epc: &Epc) -> usize {
        match self.antenna_mask {
            None => 1 + epc.len(),
            Some(_) => 1 + epc.len() + 1,
        }
    }

    /// The length of Data[] on the wire.
    pub(super) fn data_len(&self) -> usize {
        let header = if self.antenna_mask.is_some() { 2 } else { 1 };
        header
            + self
                .tags()
                .iter()
                .map(|t| self.tag_cost(&t.epc))
                .sum::<usize>()
    }
}

/// A 288-family real-time-mode heartbeat (reCmd 0xEE, status 0x28): no tag was seen during
/// the heartbeat interval. UR-series manual v1.14 §8.4.24: PacketNo (4 bytes, most significant
/// first), AntStatus (8 bytes), TotalCount (4 bytes, taken as most significant first too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    /// The heartbeat serial number.
    pub packet_number: u32,
    /// Per-antenna status bytes, as sent.
    pub antenna_status: [u8; 8],
    /// The total tag count the reader reports.
    pub total_count: u32,
}

/// A frame a reader pushes unsolicited in scan / real-time mode (reCmd 0xEE).
///
/// Build tags with [`ScanReport::tag18`] / [`ScanReport::tag288`]; the encoder writes
/// `antenna_mask`, the EPC and `tag.rssi` (0 if absent) and ignores `tag.antenna`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanReport {
    /// One tag. `antenna_mask` is `None` for the UHFReader18 form (Data[] is the bare EPC,
    /// status 0x00; ZK-RFID102/UHFReader18 manual §8.4.9, Mem_Inven 0x04/0x05) and `Some` for
    /// the UHFReader288 form (Data[] = Ant, len, EPC, RSSI; UR-series manual §8.4.23).
    Tag {
        /// The antenna mask byte (UHFReader288 form only).
        antenna_mask: Option<u8>,
        /// The tag.
        tag: TagRecord,
    },
    /// A heartbeat (UHFReader288 form, status 0x28).
    Heartbeat(Heartbeat),
}

impl ScanReport {
    /// A UHFReader18 scan-mode push of one EPC.
    pub const fn tag18(epc: Epc) -> Self {
        Self::Tag {
            antenna_mask: None,
            tag: TagRecord::reader18(epc),
        }
    }

    /// A UHFReader288 real-time-mode push of one tag.
    pub const fn tag288(antenna_mask: u8, epc: Epc, rssi: u8) -> Self {
        Self::Tag {
            antenna_mask: Some(antenna_mask),
            tag: TagRecord::reader288(epc, rssi, antenna_mask),
        }
    }
}

/// The 288 family's four extra reader-information bytes (UHFReader288MP SDK
/// `GetReaderInformation`: Ant, BeepEn, OutputRep, CheckAnt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReaderInfoExtension {
    /// The antenna configuration byte (a mask of enabled antennas).
    pub antenna: u8,
    /// Beeper enable byte.
    pub beep: u8,
    /// Output repeat / GPIO output byte.
    pub output_rep: u8,
    /// Antenna check enable byte.
    pub check_antenna: u8,
}

/// The answer to "get reader information" (0x21).
///
/// UHFReader18 manual §8.4.1: Version (2), Type, Tr_Type, DMaxFre, DMinFre, Power, Scntm; the
/// 288 family appends [`ReaderInfoExtension`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReaderInfo {
    /// Firmware version, first byte ("version number").
    pub firmware_major: u8,
    /// Firmware version, second byte ("sub-version number").
    pub firmware_minor: u8,
    /// The reader type byte (0x09 UHFReader18, 0x0C UHFReader288M, ...).
    pub reader_type: u8,
    /// Supported protocols: bit 1 = ISO 18000-6C, bit 0 = ISO 18000-6B.
    pub protocols: u8,
    /// DMaxFre: bits 7..6 half of the band code, bits 5..0 the highest channel in use.
    pub max_frequency: u8,
    /// DMinFre: bits 7..6 the other half of the band code, bits 5..0 the lowest channel.
    pub min_frequency: u8,
    /// Output power in dBm.
    pub power_dbm: u8,
    /// Inventory scan time in units of 100 ms.
    pub scan_time: u8,
    /// The 288 family's extra bytes, when the reply carries them.
    pub extension: Option<ReaderInfoExtension>,
}

impl ReaderInfo {
    /// The 4-bit frequency band code: DMaxFre bits 7..6 then DMinFre bits 7..6
    /// (0b0010 US, 0b0100 EU, 0b0001 China 2, ...).
    pub const fn band(&self) -> u8 {
        ((self.max_frequency & 0xC0) >> 4) | ((self.min_frequency & 0xC0) >> 6)
    }

    /// The highest channel index in use.
    pub const fn max_channel(&self) -> u8 {
        self.max_frequency & 0x3F
    }

    /// The lowest channel index in use.
    pub const fn min_channel(&self) -> u8 {
        self.min_frequency & 0x3F
    }

    /// Whether the reader speaks ISO 18000-6C (EPC Gen2).
    pub const fn supports_iso18000_6c(&self) -> bool {
        self.protocols & 0x02 != 0
    }

    /// Whether the reader speaks ISO 18000-6B.
    pub const fn supports_iso18000_6b(&self) -> bool {
        self.protocols & 0x01 != 0
    }

    /// The firmware version as printed by the vendor tools: `0.22` for bytes `00 16`.
    pub fn firmware_version(&self) -> FirmwareVersion {
        FirmwareVersion {
            major: self.firmware_major,
            minor: self.firmware_minor,
        }
    }
}

/// A firmware version that displays as `major.minor` in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirmwareVersion {
    /// First version byte.
    pub major: u8,
    /// Second version byte.
    pub minor: u8,
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.major, self.minor)
    }
}

/// How a UHFReader18 reader works: Read_mode bits 1..0 of the work-mode parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMode {
    /// 0b00: answers commands only.
    Answer,
    /// 0b01: inventories by itself and pushes tags (reCmd 0xEE).
    Scan,
    /// 0b10: scans while the trigger input is low.
    TriggerLow,
    /// 0b11: scans while the trigger input is high.
    TriggerHigh,
}

/// The six work-mode parameter bytes of "set work mode" (0x35) and "get work mode" (0x36).
///
/// ZK-RFID102 / UHFReader18 manual §8.4.9: Read_mode, Mode_state, Mem_Inven, First_Adr,
/// Word_Num, Tag_Time. Kept as raw bytes; see the constants for the bits Custos uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkModeSettings {
    /// Read_mode: bits 1..0 select the [`ReadMode`].
    pub read_mode: u8,
    /// Mode_state: bit 0 protocol (0 = 18000-6C), bit 1 output (1 = RS232/RS485, 0 = Wiegand),
    /// bit 2 beep (1 = off), bit 3 Wiegand address unit, bit 4 Syris485.
    pub mode_state: u8,
    /// Mem_Inven: 0x00..=0x03 read a memory bank, 0x04 multi-tag inventory, 0x05 single-tag
    /// inventory, 0x06 EAS alarm.
    pub mem_inven: u8,
    /// First_Adr: the first word (6C) or byte (6B) to read.
    pub first_address: u8,
    /// Word_Num: words to read, 1..=32 (RS232/RS485 output only).
    pub word_count: u8,
    /// Tag_Time: single-tag delay in seconds.
    pub tag_time: u8,
}

impl WorkModeSettings {
    /// Mode_state bit 1: output over RS232/RS485 (not Wiegand).
    pub const MODE_STATE_SERIAL_OUTPUT: u8 = 0x02;
    /// Mode_state bit 2: beeper off.
    pub const MODE_STATE_BEEP_OFF: u8 = 0x04;
    /// Mem_Inven 0x04: multi-tag EPC inventory.
    pub const MEM_INVEN_MULTI_TAG: u8 = 0x04;

    /// Answer mode: the reader only answers commands ("Answer mode, the following parameter
    /// is invalid" — the other bytes are zero).
    pub const ANSWER: Self = Self {
        read_mode: 0x00,
        mode_state: 0x00,
        mem_inven: 0x00,
        first_address: 0x00,
        word_count: 0x00,
        tag_time: 0x00,
    };

    /// Scan mode pushing every EPC seen over the serial line (18000-6C, multi-tag inventory).
    pub const SCAN_EPC: Self = Self {
        read_mode: 0x01,
        mode_state: Self::MODE_STATE_SERIAL_OUTPUT,
        mem_inven: Self::MEM_INVEN_MULTI_TAG,
        first_address: 0x00,
        word_count: 0x01,
        tag_time: 0x00,
    };

    /// The work mode selected by Read_mode.
    pub const fn mode(&self) -> ReadMode {
        match self.read_mode & 0x03 {
            0 => ReadMode::Answer,
            1 => ReadMode::Scan,
            2 => ReadMode::TriggerLow,
            _ => ReadMode::TriggerHigh,
        }
    }
}

/// The answer to "get work mode" (0x36): the Wiegand settings, the work-mode settings and two
/// more bytes (UHFReader18 manual §8.4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkModeReport {
    /// Wg_mode, Wg_Data_Inteval, Wg_Pulse_Width, Wg_Pulse_Inteval.
    pub wiegand: [u8; 4],
    /// The six work-mode bytes.
    pub settings: WorkModeSettings,
    /// The "accuracy" byte (EAS accuracy).
    pub accuracy: u8,
    /// The "OffsetTime" byte.
    pub offset_time: u8,
}

/// The optional mask of a UHFReader288 inventory: only tags whose `memory` bank matches `data`
/// from `bit_address` over `bit_len` bits answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mask {
    memory: u8,
    bit_address: u16,
    bit_len: u8,
    data: [u8; MAX_MASK_BYTES],
}

impl Mask {
    /// A mask; `data` must hold exactly ⌈`bit_len` / 8⌉ bytes ("MaskData equals to MaskLen/8
    /// ... int[MaskLen/8]+1"), else [`ChafonError::Malformed`] naming "mask data".
    pub fn new(
        memory: u8,
        bit_address: u16,
        bit_len: u8,
        data: &[u8],
    ) -> Result<Self, ChafonError> {
        if data.len() != Self::data_len_for(bit_len) {
            return Err(ChafonError::Malformed { field: "mask data" });
        }
        let mut bytes = [0u8; MAX_MASK_BYTES];
        bytes[..data.len()].copy_from_slice(data);
        Ok(Self {
            memory,
            bit_address,
            bit_len,
            data: bytes,
        })
    }

    /// MaskMem: 0x01 EPC, 0x02 TID, 0x03 user memory.
    pub fn memory(&self) -> u8 {
        self.memory
    }

    /// MaskAdr: the first bit of the mask in the bank.
    pub fn bit_address(&self) -> u16 {
        self.bit_address
    }

    /// MaskLen: the mask length in bits.
    pub fn bit_len(&self) -> u8 {
        self.bit_len
    }

    /// MaskData.
    pub fn data(&self) -> &[u8] {
        &self.data[..Self::data_len_for(self.bit_len)]
    }

    pub(super) const fn data_len_for(bit_len: u8) -> usize {
        (bit_len as usize).div_ceil(8)
    }
}

/// The optional TID window of a UHFReader288 inventory (AdrTID, LenTID): the reader reports
/// TIDs instead of EPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TidWindow {
    /// AdrTID: the first TID word.
    pub word_address: u8,
    /// LenTID: the number of TID words.
    pub word_count: u8,
}

/// The optional Target, Ant, Scantime of a UHFReader288 inventory ("all three parameters must
/// be delivered in one command frame").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanTarget {
    /// Target: 0x00 A, 0x01 B.
    pub target: u8,
    /// Ant: 0x80 + index; 0x80 is antenna 1, 0x83 antenna 4.
    pub antenna: u8,
    /// Scantime in units of 100 ms.
    pub scan_time: u8,
}

impl ScanTarget {
    /// Target A on the 1-based `antenna` (1..=16) for `scan_time` × 100 ms.
    pub const fn antenna(antenna: u8, scan_time: u8) -> Self {
        Self {
            target: 0x00,
            antenna: 0x80 | (antenna.saturating_sub(1) & 0x0F),
            scan_time,
        }
    }
}

/// The UHFReader288 parameters of inventory (0x01): `QValue, Session, [MaskMem, MaskAdr(2),
/// MaskLen, MaskData], [AdrTID, LenTID], [Target, Ant, Scantime]` (UR-series manual §8.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InventoryParams {
    /// QValue: bit 7 statistics packet, bit 6 strategy, bit 5 FastID, bits 4..0 the Q value.
    pub q_value: u8,
    /// Session: 0..=3 for S0..S3, 0xFF for the reader's choice.
    pub session: u8,
    /// The optional mask.
    pub mask: Option<Mask>,
    /// The optional TID window.
    pub tid: Option<TidWindow>,
    /// The optional target, antenna and scan time.
    pub scan: Option<ScanTarget>,
}

impl InventoryParams {
    /// Q value and session only.
    pub const fn new(q_value: u8, session: u8) -> Self {
        Self {
            q_value,
            session,
            mask: None,
            tid: None,
            scan: None,
        }
    }
}

/// A command with a code this module does not type, kept as raw bytes.
#[derive(Clone, Copy)]
pub struct RawCommand {
    command: u8,
    len: u8,
    data: [u8; MAX_COMMAND_DATA],
}

impl RawCommand {
    /// A raw command; refuses more than [`MAX_COMMAND_DATA`] data bytes.
    pub fn new(command: u8, data: &[u8]) -> Result<Self, ChafonError> {
        if data.len() > MAX_COMMAND_DATA {
            return Err(ChafonError::FrameTooLong);
        }
        let mut bytes = [0u8; MAX_COMMAND_DATA];
        bytes[..data.len()].copy_from_slice(data);
        Ok(Self {
            command,
            len: data.len() as u8,
            data: bytes,
        })
    }

    /// The command code.
    pub fn command(&self) -> u8 {
        self.command
    }

    /// The Data[] bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl PartialEq for RawCommand {
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command && self.data() == other.data()
    }
}

impl Eq for RawCommand {}

impl fmt::Debug for RawCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawCommand")
            .field("command", &format_args!("0x{:02X}", self.command))
            .field("data", &HexBytes(self.data()))
            .finish()
    }
}

/// A host command.
///
/// Commands this module does not type decode as [`Command::Other`] (a raw variant, no
/// allocation) rather than as an error, so a simulator can answer them with
/// [`Status::IllegalCommand`] as a real reader does.
#[allow(clippy::large_enum_variant)] // allocation-free by design: raw data is inline
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Inventory (0x01). `None`: the UHFReader18 form without parameters (the reader's stored
    /// settings). `Some`: the UHFReader288 parameters.
    ///
    /// The UHFReader18's optional TID inventory parameters (AdrTID, LenTID) are two bytes,
    /// like the 288's QValue and Session, and decode as the latter; Custos never sends them.
    Inventory {
        /// The UHFReader288 parameters, if any.
        params: Option<InventoryParams>,
    },
    /// Get reader information (0x21).
    ReaderInfo,
    /// Set RF output power (0x2F), in dBm (0..=30).
    SetPower {
        /// The power in dBm.
        dbm: u8,
    },
    /// Set work mode (0x35, UHFReader18 family).
    SetWorkMode(WorkModeSettings),
    /// Get work mode (0x36, UHFReader18 family).
    WorkMode,
    /// Any other command.
    Other(RawCommand),
}

/// A command with the reader address it is sent to (0xFF broadcasts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandFrame {
    /// The reader address (Adr).
    pub address: u8,
    /// The command.
    pub command: Command,
}

/// A reply this module does not type, kept as raw bytes (always with at least one data byte:
/// a reply without data is a [`Response::Ack`]).
#[derive(Clone, Copy)]
pub struct RawResponse {
    command: u8,
    status: Status,
    len: u8,
    data: [u8; MAX_RESPONSE_DATA],
}

impl RawResponse {
    /// A raw reply; `data` must hold 1..=[`MAX_RESPONSE_DATA`] bytes.
    pub fn new(command: u8, status: Status, data: &[u8]) -> Result<Self, ChafonError> {
        if data.is_empty() {
            return Err(ChafonError::Malformed {
                field: "raw response data",
            });
        }
        if data.len() > MAX_RESPONSE_DATA {
            return Err(ChafonError::FrameTooLong);
        }
        let mut bytes = [0u8; MAX_RESPONSE_DATA];
        bytes[..data.len()].copy_from_slice(data);
        Ok(Self {
            command,
            status,
            len: data.len() as u8,
            data: bytes,
        })
    }

    /// The reCmd byte.
    pub fn command(&self) -> u8 {
        self.command
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The Data[] bytes.
    pub fn data(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

impl PartialEq for RawResponse {
    fn eq(&self, other: &Self) -> bool {
        self.command == other.command && self.status == other.status && self.data() == other.data()
    }
}

impl Eq for RawResponse {}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("command", &format_args!("0x{:02X}", self.command))
            .field("status", &self.status)
            .field("data", &HexBytes(self.data()))
            .finish()
    }
}

/// A reader reply or push.
///
/// How a frame maps to a variant (first rule that applies):
/// 1. no Data[] at all: [`Response::Ack`] — the reply to set power / set work mode, every
///    failure ("0xFB no tag", "0xFE illegal command", ...) and the UHFReader18 EAS push;
/// 2. reCmd 0xEE: [`Response::Scan`];
/// 3. reCmd 0x01 with status 0x01..=0x04: [`Response::Inventory`];
/// 4. reCmd 0x21 with status 0x00: [`Response::ReaderInfo`];
/// 5. reCmd 0x36 with status 0x00: [`Response::WorkMode`];
/// 6. anything else: [`Response::Other`].
#[allow(clippy::large_enum_variant)] // allocation-free by design: the tag list is inline
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// An inventory reply with tags.
    Inventory(InventoryReply),
    /// Reader information.
    ReaderInfo(ReaderInfo),
    /// The work-mode settings.
    WorkMode(WorkModeReport),
    /// An unsolicited scan-mode push.
    Scan(ScanReport),
    /// A reply with a status and no data, e.g. to set power (reCmd 0x2F).
    Ack {
        /// The reCmd byte: the command this answers.
        command: u8,
        /// The status.
        status: Status,
    },
    /// Any other reply.
    Other(RawResponse),
}

impl Response {
    /// The reCmd byte of this reply.
    pub fn command(&self) -> u8 {
        match self {
            Self::Inventory(_) => super::CMD_INVENTORY,
            Self::ReaderInfo(_) => super::CMD_READER_INFO,
            Self::WorkMode(_) => super::CMD_WORK_MODE,
            Self::Scan(_) => super::RECMD_SCAN,
            Self::Ack { command, .. } => *command,
            Self::Other(raw) => raw.command(),
        }
    }

    /// The status byte of this reply.
    pub fn status(&self) -> Status {
        match self {
            Self::Inventory(reply) => reply.status().status(),
            Self::ReaderInfo(_) | Self::WorkMode(_) => Status::Success,
            Self::Scan(ScanReport::Tag { .. }) => Status::Success,
            Self::Scan(ScanReport::Heartbeat(_)) => Status::Heartbeat,
            Self::Ack { status, .. } => *status,
            Self::Other(raw) => raw.status(),
        }
    }
}

/// A reply with the address of the reader that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    /// The reader address (Adr).
    pub address: u8,
    /// The reply.
    pub response: Response,
}

/// Upper-case hex for Debug output of raw bytes.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}
