//! Plain data of the 0xA0 protocol: command bytes, host commands, reader replies, tag records
//! and error codes. Nothing here touches bytes on the wire; see [`super::codec`] for that.
//!
//! Every type is `Copy` and fixed-size, so a decoder can hand frames out without allocating.

use core::fmt;

use crate::epc::{Epc, PcWord};

/// The longest data field a frame can carry.
///
/// Spec 1.2: "Len: the length of the packet starting from Address" — one byte that also counts
/// Address, Cmd and Check, so at most 255 - 3 data bytes.
pub const MAX_DATA_LEN: usize = 252;

/// The command bytes this module gives a type to (spec 2, "Comprehensive Command Table").
///
/// The reader echoes the command byte of the request in every reply, so these name both.
pub mod cmd {
    /// `cmd_read_gpio_value`: read the levels of the input pins GPIO1 and GPIO2.
    pub const READ_GPIO: u8 = 0x60;
    /// `cmd_write_gpio_value`: drive output pin GPIO3 or GPIO4.
    pub const WRITE_GPIO: u8 = 0x61;
    /// `cmd_set_ant_connection_detector`: return-loss threshold of the antenna detector.
    pub const SET_ANTENNA_DETECTOR: u8 = 0x62;
    /// `cmd_get_ant_connection_detector`.
    pub const QUERY_ANTENNA_DETECTOR: u8 = 0x63;
    /// `cmd_reset`: restart the reader.
    pub const RESET: u8 = 0x70;
    /// `cmd_get_firmware_version`.
    pub const QUERY_FIRMWARE_VERSION: u8 = 0x72;
    /// `cmd_set_work_antenna`.
    pub const SET_WORK_ANTENNA: u8 = 0x74;
    /// `cmd_get_work_antenna`.
    pub const QUERY_WORK_ANTENNA: u8 = 0x75;
    /// `cmd_set_output_power` (saved to flash).
    pub const SET_OUTPUT_POWER: u8 = 0x76;
    /// `cmd_get_output_power`.
    pub const QUERY_OUTPUT_POWER: u8 = 0x77;
    /// `cmd_get_reader_temperature`.
    pub const QUERY_TEMPERATURE: u8 = 0x7B;
    /// `cmd_real_time_inventory`: inventory on the work antenna, tags reported as read.
    pub const REAL_TIME_INVENTORY: u8 = 0x89;
    /// `cmd_fast_switch_ant_inventory`: inventory cycling over several antennas.
    pub const FAST_SWITCH_INVENTORY: u8 = 0x8A;
    /// `cmd_customized_session_target_inventory`: real-time inventory with a chosen Gen2 session
    /// and target flag.
    pub const SESSION_INVENTORY: u8 = 0x8B;
    /// `cmd_get_inventory_buffer`: read the tags collected by `cmd_inventory` (0x80).
    pub const READ_INVENTORY_BUFFER: u8 = 0x90;
    /// `cmd_get_and_reset_inventory_buffer`: read the buffered tags, then clear the buffer.
    pub const READ_AND_RESET_INVENTORY_BUFFER: u8 = 0x91;
    /// `cmd_reset_inventory_buffer`: clear the buffer.
    pub const RESET_INVENTORY_BUFFER: u8 = 0x93;

    /// Whether this module decodes `command` into a typed [`Command`](super::Command) and
    /// [`Response`](super::Response) (anything else becomes an `Other` variant).
    pub const fn is_modelled(command: u8) -> bool {
        matches!(
            command,
            READ_GPIO
                | WRITE_GPIO
                | SET_ANTENNA_DETECTOR
                | QUERY_ANTENNA_DETECTOR
                | RESET
                | QUERY_FIRMWARE_VERSION
                | SET_WORK_ANTENNA
                | QUERY_WORK_ANTENNA
                | SET_OUTPUT_POWER
                | QUERY_OUTPUT_POWER
                | QUERY_TEMPERATURE
                | REAL_TIME_INVENTORY
                | FAST_SWITCH_INVENTORY
                | SESSION_INVENTORY
                | READ_INVENTORY_BUFFER
                | READ_AND_RESET_INVENTORY_BUFFER
                | RESET_INVENTORY_BUFFER
        )
    }
}

/// Up to `N` bytes held inline (`N` at most 255): the data of unknown commands and the optional
/// parameters some commands carry.
#[derive(Clone, Copy)]
pub struct Bytes<const N: usize> {
    len: u8,
    buf: [u8; N],
}

impl<const N: usize> Bytes<N> {
    /// No bytes.
    pub const fn empty() -> Self {
        const { assert!(N <= u8::MAX as usize, "Bytes holds at most 255 bytes") };
        Self {
            len: 0,
            buf: [0; N],
        }
    }

    /// A copy of `bytes`, or `None` when there are more than `N`.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut out = Self::empty();
        out.buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        // N <= 255 (asserted in `empty`), and bytes.len() <= N here.
        out.len = bytes.len() as u8;
        Some(out)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<const N: usize> PartialEq for Bytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for Bytes<N> {}

impl<const N: usize> core::hash::Hash for Bytes<N> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// Upper-case hex, as in logs and the vector files.
impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bytes(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        f.write_str(")")
    }
}

macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])+ $name:ident = $code:literal => $text:literal, )+) => {
        /// The ErrorCode byte of a reply (spec 3, "Error code").
        ///
        /// `0x10` is the success status of set commands; everything else is a failure. Codes not in
        /// the table decode as [`ErrorCode::Unknown`]; [`ErrorCode::from_byte`] never puts a listed
        /// code into `Unknown`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])+ $name, )+
            /// A code not in the protocol's table, kept as received.
            Unknown(u8),
        }

        impl ErrorCode {
            /// The code for a byte from the wire.
            pub const fn from_byte(byte: u8) -> Self {
                match byte {
                    $( $code => Self::$name, )+
                    other => Self::Unknown(other),
                }
            }

            /// The byte on the wire.
            pub const fn to_byte(self) -> u8 {
                match self {
                    $( Self::$name => $code, )+
                    Self::Unknown(byte) => byte,
                }
            }

            /// The meaning from the protocol document, in lower case.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )+
                    Self::Unknown(_) => "unknown error code",
                }
            }
        }
    };
}

// The table of spec 3 ("Error code"), cross-checked with the vendor demo's `FormatErrorCode`
// (0x10..0x57, 0xFF) and hex-in/pyImpinj `ImpinjR2KGlobalErrors` (adds 0x3C and 0xEE).
error_codes! {
    /// 0x10: command succeeded (the status of every successful set command).
    Success = 0x10 => "command succeeded",
    /// 0x11: command failed.
    Fail = 0x11 => "command failed",
    /// 0x20: the reader's CPU (MCU) reset with an error.
    CpuReset = 0x20 => "cpu reset error",
    /// 0x21: the carrier wave (CW) could not be turned on.
    CwOn = 0x21 => "turn on cw error",
    /// 0x22: the antenna is missing (the antenna detector found no antenna on the port).
    AntennaMissing = 0x22 => "antenna is missing",
    /// 0x23: writing the reader's flash failed.
    WriteFlash = 0x23 => "write flash error",
    /// 0x24: reading the reader's flash failed.
    ReadFlash = 0x24 => "read flash error",
    /// 0x25: setting the output power failed.
    SetOutputPower = 0x25 => "set output power error",
    /// 0x31: an error occurred during inventory.
    Inventory = 0x31 => "error occurred during inventory",
    /// 0x32: an error occurred while reading a tag.
    TagRead = 0x32 => "error occurred during read",
    /// 0x33: an error occurred while writing a tag.
    TagWrite = 0x33 => "error occurred during write",
    /// 0x34: an error occurred while locking a tag.
    TagLock = 0x34 => "error occurred during lock",
    /// 0x35: an error occurred while killing a tag.
    TagKill = 0x35 => "error occurred during kill",
    /// 0x36: there is no tag to operate on.
    NoTag = 0x36 => "there is no tag to be operated",
    /// 0x37: the tag was inventoried but the access that followed failed.
    InventoriedButAccessFailed = 0x37 => "tag inventoried but access failed",
    /// 0x38: the inventory buffer is empty.
    BufferEmpty = 0x38 => "buffer is empty",
    /// 0x3C: an NXP custom command failed.
    NxpCommand = 0x3C => "nxp custom command failed",
    /// 0x40: tag access failed or the access password is wrong.
    AccessOrPassword = 0x40 => "access failed or wrong password",
    /// 0x41: a parameter is invalid.
    InvalidParameter = 0x41 => "invalid parameter",
    /// 0x42: the WordCnt parameter is too long.
    WordCountTooLong = 0x42 => "wordcnt is too long",
    /// 0x43: the MemBank parameter is out of range.
    MemBankOutOfRange = 0x43 => "membank out of range",
    /// 0x44: the lock region parameter is out of range.
    LockRegionOutOfRange = 0x44 => "lock region out of range",
    /// 0x45: the LockType parameter is out of range.
    LockTypeOutOfRange = 0x45 => "locktype out of range",
    /// 0x46: the reader address is invalid.
    InvalidReaderAddress = 0x46 => "invalid reader address",
    /// 0x47: the antenna id is out of range.
    AntennaIdOutOfRange = 0x47 => "antennaid out of range",
    /// 0x48: the output power is out of range.
    OutputPowerOutOfRange = 0x48 => "output power out of range",
    /// 0x49: the frequency region is out of range.
    FrequencyRegionOutOfRange = 0x49 => "frequency region out of range",
    /// 0x4A: the baud rate is out of range.
    BaudRateOutOfRange = 0x4A => "baud rate out of range",
    /// 0x4B: the beeper (buzzer) mode is out of range.
    BeeperModeOutOfRange = 0x4B => "buzzer behavior out of range",
    /// 0x4C: the EPC match is too long.
    EpcMatchTooLong = 0x4C => "epc match is too long",
    /// 0x4D: the EPC match length is wrong.
    EpcMatchLength = 0x4D => "epc match length wrong",
    /// 0x4E: the EPC match mode is invalid.
    EpcMatchMode = 0x4E => "invalid epc match mode",
    /// 0x4F: the frequency range is invalid.
    FrequencyRange = 0x4F => "invalid frequency range",
    /// 0x50: no RN16 was received from the tag.
    NoRn16 = 0x50 => "failed to receive rn16 from tag",
    /// 0x51: the DRM mode is invalid.
    DrmMode = 0x51 => "invalid drm mode",
    /// 0x52: the PLL cannot lock.
    PllLock = 0x52 => "pll can not lock",
    /// 0x53: the RF chip does not respond.
    RfChipSilent = 0x53 => "no response from rf chip",
    /// 0x54: the desired output power cannot be reached.
    OutputPowerUnreachable = 0x54 => "can't achieve desired output power level",
    /// 0x55: the firmware copyright cannot be authenticated.
    CopyrightAuthentication = 0x55 => "can't authenticate firmware copyright",
    /// 0x56: the spectrum regulation setting is wrong.
    SpectrumRegulation = 0x56 => "spectrum regulation wrong",
    /// 0x57: the output power is too low.
    OutputPowerTooLow = 0x57 => "output power is too low",
    /// 0xEE: measuring the RF port return loss failed.
    ReturnLoss = 0xEE => "fail to get rf port return loss",
    /// 0xFF: the reader reports an unknown error.
    Unspecified = 0xFF => "unknown error",
}

impl ErrorCode {
    /// Whether this is the success status `0x10`.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }
}

impl From<u8> for ErrorCode {
    fn from(byte: u8) -> Self {
        Self::from_byte(byte)
    }
}

impl From<ErrorCode> for u8 {
    fn from(code: ErrorCode) -> Self {
        code.to_byte()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.meaning(), self.to_byte())
    }
}

/// RF output power in dBm, for all antennas at once or per antenna (`cmd_set_output_power`,
/// `cmd_get_output_power`). The form is told by the data length: 1, 4 or 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputPower {
    /// One value for every antenna.
    All(u8),
    /// Antennas 1 to 4 in order.
    PerAntenna([u8; 4]),
    /// Antennas 1 to 8 in order (eight-port readers).
    PerAntenna8([u8; 8]),
}

impl OutputPower {
    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::All(p) => core::slice::from_ref(p),
            Self::PerAntenna(p) => p,
            Self::PerAntenna8(p) => p,
        }
    }
}

/// One slot of a fast-switch inventory: which antenna, and how many inventory rounds to stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AntennaStay {
    /// Antenna id, 0-based (0..=3, or 0..=7 on eight-port readers). A value above the last
    /// antenna (conventionally `0xFF`) disables the slot.
    pub antenna_id: u8,
    /// Inventory rounds on this antenna before switching ("Stay"/"Aloop").
    pub stay: u8,
}

impl AntennaStay {
    /// A slot the reader skips.
    pub const DISABLED: Self = Self {
        antenna_id: 0xFF,
        stay: 0,
    };
}

/// The antenna slots of a fast-switch inventory, A..D or A..H.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FastSwitchSlots {
    /// Antennas A..D (`Len` 0x0D, the original four-port form).
    Four([AntennaStay; 4]),
    /// Antennas A..H (eight-port readers).
    Eight([AntennaStay; 8]),
}

impl FastSwitchSlots {
    /// The slots in order.
    pub fn as_slice(&self) -> &[AntennaStay] {
        match self {
            Self::Four(s) => s,
            Self::Eight(s) => s,
        }
    }
}

/// The extra fields of the extended eight-port fast-switch form (`Len` 0x20), between Interval
/// and Repeat. Their meaning is firmware-specific; they are carried as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FastSwitchExtension {
    /// Five reserved bytes (send zeros).
    pub reserved: [u8; 5],
    /// Gen2 session, 0..=3 for S0..S3.
    pub session: u8,
    /// Inventoried flag target, 0 = A, 1 = B.
    pub target: u8,
    /// "Optimize" byte.
    pub optimize: u8,
    /// "Ongoing" byte.
    pub ongoing: u8,
    /// "TargetQuantity" byte.
    pub target_quantity: u8,
    /// 1 asks the reader to append the tag phase to every tag record.
    pub phase: u8,
}

impl FastSwitchExtension {
    /// The number of bytes on the wire.
    pub const LEN: usize = 11;
}

/// The parameters of `cmd_fast_switch_ant_inventory` (0x8A).
///
/// Layouts (data bytes): four-port `A Astay B Bstay C Cstay D Dstay Interval Repeat` (10),
/// eight-port `A Astay .. H Hstay Interval Repeat` (18), extended eight-port
/// `A Astay .. H Hstay Interval Reserve*5 Session Target Optimize Ongoing TargetQuantity Phase
/// Repeat` (29). Any other length is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FastSwitch {
    /// The antennas to cycle through, in order.
    pub slots: FastSwitchSlots,
    /// Pause between antennas in milliseconds.
    pub interval_ms: u8,
    /// Extra fields of the extended form; `None` for the plain forms. Only valid with eight
    /// slots.
    pub extension: Option<FastSwitchExtension>,
    /// How many times to run the whole cycle.
    pub repeat: u8,
}

/// The parameters of `cmd_customized_session_target_inventory` (0x8B).
///
/// The base form is `Session Target Repeat`. Newer firmware accepts optional bytes between
/// Target and Repeat (select flag, phase, power-save); they are kept as received in `extra`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionInventory {
    /// Gen2 session, 0..=3 for S0..S3.
    pub session: u8,
    /// Inventoried flag target, 0 = A, 1 = B.
    pub target: u8,
    /// Optional bytes between Target and Repeat, up to [`MAX_SESSION_EXTRA`].
    pub extra: Bytes<MAX_SESSION_EXTRA>,
    /// Inventory rounds to run.
    pub repeat: u8,
}

/// The most optional bytes accepted between Target and Repeat of
/// `cmd_customized_session_target_inventory`.
pub const MAX_SESSION_EXTRA: usize = 8;

/// A host command (host -> reader).
///
/// Fixed-size on purpose: [`Command::Other`] holds up to [`MAX_DATA_LEN`] bytes inline, so
/// decoding never allocates (hosts send a few commands a second; the size does not matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    clippy::large_enum_variant,
    reason = "no allocation in the protocol crate"
)]
pub enum Command {
    /// 0x70: restart the reader. It answers only when it fails (a [`Response::Status`]).
    Reset,
    /// 0x72: ask for the firmware version ([`Response::FirmwareVersion`]).
    QueryFirmwareVersion,
    /// 0x74: select the antenna used by `cmd_real_time_inventory` and
    /// `cmd_customized_session_target_inventory`.
    SetWorkAntenna {
        /// Antenna id, 0-based.
        antenna_id: u8,
    },
    /// 0x75: ask for the work antenna ([`Response::WorkAntenna`]).
    QueryWorkAntenna,
    /// 0x76: set the RF output power (saved to flash).
    SetOutputPower(OutputPower),
    /// 0x77: ask for the RF output power ([`Response::OutputPower`]).
    QueryOutputPower,
    /// 0x7B: ask for the reader's temperature ([`Response::Temperature`]).
    QueryTemperature,
    /// 0x62: set the antenna connection detector.
    SetAntennaDetector {
        /// Return-loss threshold in dB; 0 turns the detector off.
        threshold_db: u8,
    },
    /// 0x63: ask for the antenna connection detector ([`Response::AntennaDetector`]).
    QueryAntennaDetector,
    /// 0x60: read the input pins GPIO1 and GPIO2 ([`Response::Gpio`]).
    ReadGpio,
    /// 0x61: drive an output pin.
    WriteGpio {
        /// The pin: 0x03 for GPIO3, 0x04 for GPIO4.
        gpio: u8,
        /// 0x00 low, 0x01 high.
        level: u8,
    },
    /// 0x89: inventory on the work antenna, tags reported as they are read.
    RealTimeInventory {
        /// Inventory rounds to run (0xFF: as many as fit the reader's own time slot).
        repeat: u8,
    },
    /// 0x8A: inventory cycling over several antennas.
    FastSwitchInventory(FastSwitch),
    /// 0x8B: real-time inventory with a chosen session and target.
    SessionInventory(SessionInventory),
    /// 0x90: read the inventory buffer.
    ReadInventoryBuffer,
    /// 0x91: read the inventory buffer, then clear it.
    ReadAndResetInventoryBuffer,
    /// 0x93: clear the inventory buffer.
    ResetInventoryBuffer,
    /// A command byte this module does not model ([`cmd::is_modelled`] is false), with its
    /// data as received. Decoding never fails on an unknown command byte.
    ///
    /// Encoding `Other` with a modelled command byte writes the frame as given; decoding it back
    /// yields the typed variant (or an error if the data does not fit).
    Other {
        /// The command byte.
        command: u8,
        /// The data bytes.
        data: Bytes<MAX_DATA_LEN>,
    },
}

impl Command {
    /// The command byte on the wire.
    pub const fn code(&self) -> u8 {
        match self {
            Self::Reset => cmd::RESET,
            Self::QueryFirmwareVersion => cmd::QUERY_FIRMWARE_VERSION,
            Self::SetWorkAntenna { .. } => cmd::SET_WORK_ANTENNA,
            Self::QueryWorkAntenna => cmd::QUERY_WORK_ANTENNA,
            Self::SetOutputPower(_) => cmd::SET_OUTPUT_POWER,
            Self::QueryOutputPower => cmd::QUERY_OUTPUT_POWER,
            Self::QueryTemperature => cmd::QUERY_TEMPERATURE,
            Self::SetAntennaDetector { .. } => cmd::SET_ANTENNA_DETECTOR,
            Self::QueryAntennaDetector => cmd::QUERY_ANTENNA_DETECTOR,
            Self::ReadGpio => cmd::READ_GPIO,
            Self::WriteGpio { .. } => cmd::WRITE_GPIO,
            Self::RealTimeInventory { .. } => cmd::REAL_TIME_INVENTORY,
            Self::FastSwitchInventory(_) => cmd::FAST_SWITCH_INVENTORY,
            Self::SessionInventory(_) => cmd::SESSION_INVENTORY,
            Self::ReadInventoryBuffer => cmd::READ_INVENTORY_BUFFER,
            Self::ReadAndResetInventoryBuffer => cmd::READ_AND_RESET_INVENTORY_BUFFER,
            Self::ResetInventoryBuffer => cmd::RESET_INVENTORY_BUFFER,
            Self::Other { command, .. } => *command,
        }
    }
}

/// Which inventory command a tag record or an inventory error answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Inventory {
    /// 0x89 `cmd_real_time_inventory`.
    RealTime,
    /// 0x8A `cmd_fast_switch_ant_inventory`.
    FastSwitch,
    /// 0x8B `cmd_customized_session_target_inventory`.
    Session,
}

impl Inventory {
    /// The command byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::RealTime => cmd::REAL_TIME_INVENTORY,
            Self::FastSwitch => cmd::FAST_SWITCH_INVENTORY,
            Self::Session => cmd::SESSION_INVENTORY,
        }
    }

    /// The inventory command for a command byte, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            cmd::REAL_TIME_INVENTORY => Some(Self::RealTime),
            cmd::FAST_SWITCH_INVENTORY => Some(Self::FastSwitch),
            cmd::SESSION_INVENTORY => Some(Self::Session),
            _ => None,
        }
    }
}

/// Which buffer read a [`BufferRecord`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferRead {
    /// 0x90 `cmd_get_inventory_buffer`.
    Read,
    /// 0x91 `cmd_get_and_reset_inventory_buffer`.
    ReadAndReset,
}

impl BufferRead {
    /// The command byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::Read => cmd::READ_INVENTORY_BUFFER,
            Self::ReadAndReset => cmd::READ_AND_RESET_INVENTORY_BUFFER,
        }
    }
}

/// The 1-based antenna number from the FreqAnt and RSSI bytes:
/// `(FreqAnt & 3) + 1 + 4 * (RSSI >> 7)` (the RSSI top bit selects antennas 5..8).
const fn antenna_number(freq_ant: u8, rssi_byte: u8) -> u8 {
    (freq_ant & 0x03) + 1 + 4 * (rssi_byte >> 7)
}

/// A tag reported by an inventory command (0x89, 0x8A, 0x8B).
///
/// Wire layout: `FreqAnt PC(2) EPC(n) RSSI [extra..]`, where n = `((PC >> 11) & 0x1F) * 2`.
/// Extra trailing bytes (the phase some firmware appends) are accepted and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagRecord {
    /// The FreqAnt byte: frequency index in bits 7..2, antenna (low bits) in bits 1..0.
    pub freq_ant: u8,
    /// The Gen2 PC word. It must announce `epc.len()` bytes for the record to decode as it was
    /// encoded; [`TagRecord::new`] makes sure of that.
    pub pc: PcWord,
    /// The EPC.
    pub epc: Epc,
    /// The raw RSSI byte: bit 7 is the antenna group (set for antennas 5..8), bits 6..0 the
    /// RSSI value.
    pub rssi_byte: u8,
}

impl TagRecord {
    /// A record as a reader would report it: `antenna` 1..=8, `freq_index` 0..=63, `rssi`
    /// 0..=127 (out-of-range values are masked), with a PC word announcing the EPC's length.
    pub fn new(epc: Epc, antenna: u8, rssi: u8, freq_index: u8) -> Self {
        let ant = antenna.wrapping_sub(1) & 0x07;
        Self {
            freq_ant: (freq_index << 2) | (ant & 0x03),
            pc: PcWord::for_epc_len(epc.len()),
            epc,
            rssi_byte: ((ant >> 2) << 7) | (rssi & 0x7F),
        }
    }

    /// The antenna that read the tag, 1-based.
    pub const fn antenna(&self) -> u8 {
        antenna_number(self.freq_ant, self.rssi_byte)
    }

    /// The RSSI value (`RSSI & 0x7F`); the vendor maps it to dBm as roughly `value - 129`.
    pub const fn rssi(&self) -> u8 {
        self.rssi_byte & 0x7F
    }

    /// The frequency index (`FreqAnt >> 2`) into the region's channel table.
    pub const fn freq_index(&self) -> u8 {
        self.freq_ant >> 2
    }
}

/// One record of the inventory buffer (replies to 0x90 and 0x91; one frame per tag).
///
/// Wire layout: `TagCount(2) DataLen PC(2) EPC(n) CRC(2) RSSI FreqAnt InvCount`, where DataLen
/// counts PC, EPC and CRC (confirmed on a real reader, see the vector file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferRecord {
    /// The number of tag records in the buffer (the same in every record of one reply).
    pub count: u16,
    /// The Gen2 PC word; it announces the EPC length.
    pub pc: PcWord,
    /// The EPC.
    pub epc: Epc,
    /// The tag's own CRC-16 (CRC-16/GENIBUS over PC and EPC) as the reader sent it. The decoder
    /// does not verify it; the daemon can compare it with `epc::gen2::tag_crc(pc, &epc)`, and a
    /// simulator fills it in the same way.
    pub crc: u16,
    /// The raw RSSI byte (bit 7: antenna group, bits 6..0: value), as in [`TagRecord`].
    pub rssi_byte: u8,
    /// The FreqAnt byte, as in [`TagRecord`].
    pub freq_ant: u8,
    /// How many times the tag was read into the buffer.
    pub inventory_count: u8,
}

impl BufferRecord {
    /// The antenna that read the tag, 1-based.
    pub const fn antenna(&self) -> u8 {
        antenna_number(self.freq_ant, self.rssi_byte)
    }

    /// The RSSI value (`RSSI & 0x7F`).
    pub const fn rssi(&self) -> u8 {
        self.rssi_byte & 0x7F
    }

    /// The frequency index (`FreqAnt >> 2`).
    pub const fn freq_index(&self) -> u8 {
        self.freq_ant >> 2
    }
}

/// The summary that ends a round of 0x89 or 0x8B: `AntID ReadRate(2) TotalRead(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoundStats {
    /// The antenna the round ran on, 0-based as sent.
    pub antenna_id: u8,
    /// Tag reads per second during the round.
    pub read_rate: u16,
    /// Tag reads in the round (a tag read twice counts twice).
    pub total_reads: u32,
}

/// The summary that ends a 0x8A run: `TotalRead(3) CommandDuration(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FastSwitchStats {
    /// Tag reads during the run; 24 bits on the wire (larger values are truncated).
    pub total_reads: u32,
    /// How long the run took, in milliseconds.
    pub duration_ms: u32,
}

/// The reader's temperature (`cmd_get_reader_temperature`): `PlusMinus Temp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Temperature {
    /// The sign byte: `false` for 0x00 (below zero), `true` for 0x01 (zero or above).
    pub positive: bool,
    /// Degrees Celsius, without sign.
    pub degrees: u8,
}

impl Temperature {
    /// The temperature for a value in degrees Celsius (saturating at ±255).
    pub fn from_celsius(celsius: i16) -> Self {
        Self {
            positive: celsius >= 0,
            degrees: celsius.unsigned_abs().min(255) as u8,
        }
    }

    /// The temperature in degrees Celsius.
    pub const fn celsius(self) -> i16 {
        if self.positive {
            self.degrees as i16
        } else {
            -(self.degrees as i16)
        }
    }
}

/// A reader reply (reader -> host).
///
/// The reader echoes the command byte; the shape of the data is told by that byte and, for the
/// inventory commands, by the data length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Response {
    /// A one-byte ErrorCode: the result of a set command (`0x10` success), or the failure of a
    /// query or reset.
    ///
    /// Not produced for the inventory commands (see [`Response::InventoryError`]) nor for 0x75,
    /// 0x77 and 0x63, whose successful reply is one byte too (a one-byte reply to those is the
    /// value).
    Status {
        /// The command byte answered.
        command: u8,
        /// The status.
        code: ErrorCode,
    },
    /// Reply to 0x72: `Major Minor`.
    FirmwareVersion {
        /// Major version.
        major: u8,
        /// Minor version.
        minor: u8,
    },
    /// Reply to 0x75: the work antenna, 0-based.
    WorkAntenna {
        /// Antenna id, 0-based.
        antenna_id: u8,
    },
    /// Reply to 0x77.
    OutputPower(OutputPower),
    /// Reply to 0x7B.
    Temperature(Temperature),
    /// Reply to 0x63.
    AntennaDetector {
        /// Return-loss threshold in dB; 0 means the detector is off.
        threshold_db: u8,
    },
    /// Reply to 0x60: the levels of GPIO1 and GPIO2 (0x00 low, 0x01 high).
    Gpio {
        /// GPIO1 level.
        gpio1: u8,
        /// GPIO2 level.
        gpio2: u8,
    },
    /// A tag read by an inventory command.
    Tag {
        /// The command that read it.
        inventory: Inventory,
        /// The tag.
        tag: TagRecord,
    },
    /// End of a 0x89 round (data length 7).
    RealTimeRoundEnd(RoundStats),
    /// End of a 0x8B round (data length 7).
    SessionRoundEnd(RoundStats),
    /// End of a 0x8A run (data length 7).
    FastSwitchRoundEnd(FastSwitchStats),
    /// An inventory command failed (data length 1), e.g. 0x22 antenna missing.
    InventoryError {
        /// The command that failed.
        inventory: Inventory,
        /// Why.
        code: ErrorCode,
    },
    /// 0x8A only (data length 2, `AntID ErrorCode`): one antenna of the cycle failed, usually
    /// with 0x22 antenna missing.
    FastSwitchAntennaError {
        /// The antenna, 0-based.
        antenna_id: u8,
        /// Why.
        code: ErrorCode,
    },
    /// One tag of the inventory buffer (replies to 0x90/0x91; an empty buffer answers with a
    /// [`Response::Status`] of 0x38 instead).
    BufferTag {
        /// The command answered.
        read: BufferRead,
        /// The record.
        record: BufferRecord,
    },
    /// A reply to a command byte this module does not model, with its data as received.
    ///
    /// Like [`Command::Other`], encoding it with a modelled command byte decodes as the typed
    /// variant.
    Other {
        /// The command byte.
        command: u8,
        /// The data bytes.
        data: Bytes<MAX_DATA_LEN>,
    },
}

impl Response {
    /// The command byte this reply carries.
    pub const fn command(&self) -> u8 {
        match self {
            Self::Status { command, .. } | Self::Other { command, .. } => *command,
            Self::FirmwareVersion { .. } => cmd::QUERY_FIRMWARE_VERSION,
            Self::WorkAntenna { .. } => cmd::QUERY_WORK_ANTENNA,
            Self::OutputPower(_) => cmd::QUERY_OUTPUT_POWER,
            Self::Temperature(_) => cmd::QUERY_TEMPERATURE,
            Self::AntennaDetector { .. } => cmd::QUERY_ANTENNA_DETECTOR,
            Self::Gpio { .. } => cmd::READ_GPIO,
            Self::Tag { inventory, .. } | Self::InventoryError { inventory, .. } => {
                inventory.code()
            }
            Self::RealTimeRoundEnd(_) => cmd::REAL_TIME_INVENTORY,
            Self::SessionRoundEnd(_) => cmd::SESSION_INVENTORY,
            Self::FastSwitchRoundEnd(_) | Self::FastSwitchAntennaError { .. } => {
                cmd::FAST_SWITCH_INVENTORY
            }
            Self::BufferTag { read, .. } => read.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_bytes_round_trip_and_unknown_is_kept() {
        for b in 0..=u8::MAX {
            let code = ErrorCode::from_byte(b);
            assert_eq!(code.to_byte(), b);
            assert_eq!(u8::from(ErrorCode::from(b)), b);
        }
        assert_eq!(ErrorCode::from_byte(0x22), ErrorCode::AntennaMissing);
        assert_eq!(ErrorCode::from_byte(0x38), ErrorCode::BufferEmpty);
        assert_eq!(ErrorCode::from_byte(0x12), ErrorCode::Unknown(0x12));
        assert!(ErrorCode::from_byte(0x10).is_success());
        assert!(!ErrorCode::from_byte(0x11).is_success());
        assert_eq!(
            ErrorCode::AntennaMissing.to_string(),
            "antenna is missing (0x22)"
        );
    }

    #[test]
    fn antenna_rssi_and_frequency_accessors() {
        let epc = Epc::from_hex("3074257BF7194E4000001A85").unwrap();
        let tag = TagRecord {
            freq_ant: 0x1C,
            pc: PcWord(0x3000),
            epc,
            rssi_byte: 0x4B,
        };
        assert_eq!((tag.antenna(), tag.rssi(), tag.freq_index()), (1, 0x4B, 7));
        // RSSI top bit selects antennas 5..8.
        let high = TagRecord {
            freq_ant: 0x1F,
            rssi_byte: 0xCB,
            ..tag
        };
        assert_eq!(
            (high.antenna(), high.rssi(), high.freq_index()),
            (8, 0x4B, 7)
        );
        for antenna in 1..=8 {
            let t = TagRecord::new(epc, antenna, 0x55, 42);
            assert_eq!((t.antenna(), t.rssi(), t.freq_index()), (antenna, 0x55, 42));
            assert_eq!(t.pc, PcWord(0x3000));
        }
    }

    #[test]
    fn temperature_sign() {
        assert_eq!(
            Temperature {
                positive: false,
                degrees: 5
            }
            .celsius(),
            -5
        );
        assert_eq!(
            Temperature {
                positive: true,
                degrees: 40
            }
            .celsius(),
            40
        );
        assert_eq!(
            Temperature::from_celsius(-12),
            Temperature {
                positive: false,
                degrees: 12
            }
        );
        assert_eq!(Temperature::from_celsius(1000).degrees, 255);
    }

    #[test]
    fn bytes_capacity_and_equality_ignore_spare_room() {
        assert_eq!(Bytes::<2>::new(&[1, 2, 3]), None);
        let a = Bytes::<4>::new(&[1, 2]).unwrap();
        assert_eq!(a.as_bytes(), &[1, 2]);
        assert_eq!(a, Bytes::<4>::new(&[1, 2]).unwrap());
        assert_ne!(a, Bytes::<4>::new(&[1]).unwrap());
        assert_eq!(format!("{a:?}"), "Bytes(0102)");
        assert!(Bytes::<4>::empty().is_empty());
    }

    #[test]
    fn modelled_commands_are_exactly_the_typed_ones() {
        let typed = (0..=u8::MAX).filter(|&c| cmd::is_modelled(c)).count();
        assert_eq!(typed, 17);
        assert!(!cmd::is_modelled(0x71));
        assert!(cmd::is_modelled(cmd::SESSION_INVENTORY));
    }
}
