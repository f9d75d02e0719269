//! The GS1 Low Level Reader Protocol (LLRP 1.1, and 1.0.1 where they agree): the TCP protocol
//! of fixed UHF readers (Impinj R700/Speedway, Zebra FX7500/FX9600), port 5084.
//!
//! Every message is a 10-byte header and a body of parameters (LLRP 1.1 §15.1, Figure 11):
//!
//! ```text
//! | Rsvd:3 | Ver:3 | Message Type:10 | Message Length:32 | Message ID:32 | body ...
//! ```
//!
//! where the length counts the header too and the version is 1 (LLRP 1.0.1) or 2 (LLRP 1.1).
//! Parameters come in two encodings (§15.2.1, §15.2.2):
//! - TLV: `| Rsvd:6 | Type:10 | Length:16 | value ... |`, the length counting the 4-byte header;
//! - TV: `| 1 | Type:7 | value |`, the value's length fixed by the type (types 1 to 127).
//!
//! [`decode`] follows the crate's decoder contract ([`crate::codec`]). A header whose version
//! is not 1 or 2, or whose length is below 10 or above [`MAX_MESSAGE_LEN`], is
//! [`Decoded::Invalid`] with a skip of one byte before any byte of the body is awaited, so a
//! length field of 4 GB never makes anything wait for or allocate 4 GB. A message whose header
//! is sound but whose body does not parse is `Invalid` with a skip of the whole message, so
//! the stream stays in step. Over TCP the daemon treats any `Invalid` as the end of the
//! session anyway: LLRP has no way to resynchronise a stream.
//!
//! What is decoded into types is what a client needs to run a portal; everything else is
//! skipped by its length: unknown messages become [`Body::Unknown`], vendor `CUSTOM_MESSAGE`s
//! [`Body::Custom`], and unknown or `Custom` parameters inside known ones are passed over.
//! Allocation is bounded by the message length: a [`Vec`] grows only by parameters actually
//! present in the bytes.
//!
//! Type numbers and layouts: LLRP 1.1 (GS1, ratified 2010) §16 (messages) and §17
//! (parameters), Tables 7-1 … cross-checked against llrpkit 0.3.0 (`protocol/messages.py`,
//! `protocol/params.py`, `protocol/enums.py`) and ransford/sllurp (`llrp_proto.py`).

use crate::codec::Decoded;

#[cfg(test)]
mod tests;

/// The IANA port of LLRP.
pub const DEFAULT_PORT: u16 = 5084;
/// The length of the message header.
pub const HEADER_LEN: usize = 10;
/// The longest message accepted: 1 MiB, room for ~25,000 tag reports in one RO_ACCESS_REPORT.
/// Longer length fields are refused before any of the body is awaited.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;

/// Message type numbers (LLRP 1.1 §16, the "Message Type" of each message).
pub mod msg {
    /// GET_READER_CAPABILITIES (§16.1.1).
    pub const GET_READER_CAPABILITIES: u16 = 1;
    /// GET_READER_CONFIG (§16.1.7).
    pub const GET_READER_CONFIG: u16 = 2;
    /// SET_READER_CONFIG (§16.1.9).
    pub const SET_READER_CONFIG: u16 = 3;
    /// CLOSE_CONNECTION_RESPONSE (§16.1.12).
    pub const CLOSE_CONNECTION_RESPONSE: u16 = 4;
    /// GET_READER_CAPABILITIES_RESPONSE (§16.1.2).
    pub const GET_READER_CAPABILITIES_RESPONSE: u16 = 11;
    /// SET_READER_CONFIG_RESPONSE (§16.1.10).
    pub const SET_READER_CONFIG_RESPONSE: u16 = 13;
    /// CLOSE_CONNECTION (§16.1.11).
    pub const CLOSE_CONNECTION: u16 = 14;
    /// ADD_ROSPEC (§16.1.3).
    pub const ADD_ROSPEC: u16 = 20;
    /// DELETE_ROSPEC.
    pub const DELETE_ROSPEC: u16 = 21;
    /// START_ROSPEC.
    pub const START_ROSPEC: u16 = 22;
    /// STOP_ROSPEC.
    pub const STOP_ROSPEC: u16 = 23;
    /// ENABLE_ROSPEC.
    pub const ENABLE_ROSPEC: u16 = 24;
    /// DISABLE_ROSPEC.
    pub const DISABLE_ROSPEC: u16 = 25;
    /// ADD_ROSPEC_RESPONSE.
    pub const ADD_ROSPEC_RESPONSE: u16 = 30;
    /// DELETE_ROSPEC_RESPONSE.
    pub const DELETE_ROSPEC_RESPONSE: u16 = 31;
    /// START_ROSPEC_RESPONSE.
    pub const START_ROSPEC_RESPONSE: u16 = 32;
    /// STOP_ROSPEC_RESPONSE.
    pub const STOP_ROSPEC_RESPONSE: u16 = 33;
    /// ENABLE_ROSPEC_RESPONSE.
    pub const ENABLE_ROSPEC_RESPONSE: u16 = 34;
    /// DISABLE_ROSPEC_RESPONSE.
    pub const DISABLE_ROSPEC_RESPONSE: u16 = 35;
    /// RO_ACCESS_REPORT (§16.1.33).
    pub const RO_ACCESS_REPORT: u16 = 61;
    /// KEEPALIVE (§16.1.34).
    pub const KEEPALIVE: u16 = 62;
    /// READER_EVENT_NOTIFICATION (§16.1.35).
    pub const READER_EVENT_NOTIFICATION: u16 = 63;
    /// KEEPALIVE_ACK (§16.1.36).
    pub const KEEPALIVE_ACK: u16 = 72;
    /// ERROR_MESSAGE (§16.1.38).
    pub const ERROR_MESSAGE: u16 = 100;
    /// CUSTOM_MESSAGE (§16.1.39).
    pub const CUSTOM_MESSAGE: u16 = 1023;
}

/// Parameter type numbers (LLRP 1.1 §17; TV types are 1 to 127, TLV types 128 to 1023).
pub mod param {
    /// AntennaID (TV, u16).
    pub const ANTENNA_ID: u16 = 1;
    /// FirstSeenTimestampUTC (TV, u64 µs).
    pub const FIRST_SEEN_UTC: u16 = 2;
    /// LastSeenTimestampUTC (TV, u64 µs).
    pub const LAST_SEEN_UTC: u16 = 4;
    /// PeakRSSI (TV, s8 dBm).
    pub const PEAK_RSSI: u16 = 6;
    /// ChannelIndex (TV, u16).
    pub const CHANNEL_INDEX: u16 = 7;
    /// TagSeenCount (TV, u16).
    pub const TAG_SEEN_COUNT: u16 = 8;
    /// ROSpecID (TV, u32).
    pub const ROSPEC_ID: u16 = 9;
    /// EPC-96 (TV, 12 bytes).
    pub const EPC_96: u16 = 13;
    /// UTCTimestamp (TLV, u64 µs).
    pub const UTC_TIMESTAMP: u16 = 128;
    /// Uptime (TLV, u64 µs).
    pub const UPTIME: u16 = 129;
    /// GeneralDeviceCapabilities.
    pub const GENERAL_DEVICE_CAPABILITIES: u16 = 137;
    /// GPIOCapabilities.
    pub const GPIO_CAPABILITIES: u16 = 141;
    /// ROSpec.
    pub const ROSPEC: u16 = 177;
    /// ROBoundarySpec.
    pub const RO_BOUNDARY_SPEC: u16 = 178;
    /// ROSpecStartTrigger.
    pub const ROSPEC_START_TRIGGER: u16 = 179;
    /// ROSpecStopTrigger.
    pub const ROSPEC_STOP_TRIGGER: u16 = 182;
    /// AISpec.
    pub const AI_SPEC: u16 = 183;
    /// AISpecStopTrigger.
    pub const AI_SPEC_STOP_TRIGGER: u16 = 184;
    /// InventoryParameterSpec.
    pub const INVENTORY_PARAMETER_SPEC: u16 = 186;
    /// GPOWriteData.
    pub const GPO_WRITE_DATA: u16 = 219;
    /// KeepaliveSpec.
    pub const KEEPALIVE_SPEC: u16 = 220;
    /// GPIPortCurrentState.
    pub const GPI_PORT_CURRENT_STATE: u16 = 225;
    /// EventsAndReports.
    pub const EVENTS_AND_REPORTS: u16 = 226;
    /// ROReportSpec.
    pub const RO_REPORT_SPEC: u16 = 237;
    /// TagReportContentSelector.
    pub const TAG_REPORT_CONTENT_SELECTOR: u16 = 238;
    /// TagReportData.
    pub const TAG_REPORT_DATA: u16 = 240;
    /// EPCData.
    pub const EPC_DATA: u16 = 241;
    /// ReaderEventNotificationSpec.
    pub const READER_EVENT_NOTIFICATION_SPEC: u16 = 244;
    /// EventNotificationState.
    pub const EVENT_NOTIFICATION_STATE: u16 = 245;
    /// ReaderEventNotificationData.
    pub const READER_EVENT_NOTIFICATION_DATA: u16 = 246;
    /// GPIEvent.
    pub const GPI_EVENT: u16 = 248;
    /// AntennaEvent.
    pub const ANTENNA_EVENT: u16 = 255;
    /// ConnectionAttemptEvent.
    pub const CONNECTION_ATTEMPT_EVENT: u16 = 256;
    /// ConnectionCloseEvent.
    pub const CONNECTION_CLOSE_EVENT: u16 = 257;
    /// LLRPStatus.
    pub const LLRP_STATUS: u16 = 287;
    /// Custom (vendor extension).
    pub const CUSTOM: u16 = 1023;
}

/// The value length of each TV parameter type (LLRP 1.1 §17.2.3, §17.3.1), `None` for a type
/// this protocol version does not define (it cannot be skipped, so it is an error).
pub const fn tv_value_len(tv_type: u8) -> Option<usize> {
    Some(match tv_type {
        1 => 2,       // AntennaID
        2..=5 => 8,   // First/LastSeenTimestamp UTC/Uptime
        6 => 1,       // PeakRSSI
        7 | 8 => 2,   // ChannelIndex, TagSeenCount
        9 => 4,       // ROSpecID
        10..=12 => 2, // InventoryParameterSpecID, C1G2_CRC, C1G2_PC
        13 => 12,     // EPC-96
        14 | 15 => 2, // SpecIndex, ClientRequestOpSpecResult
        16 => 4,      // AccessSpecID
        17 => 2,      // OpSpecID
        18 => 4,      // C1G2SingulationDetails
        19 | 20 => 2, // C1G2XPCW1, C1G2XPCW2 (LLRP 1.1)
        _ => return None,
    })
}

/// Why bytes are not an LLRP message, or why a message cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LlrpError {
    /// The header's version is neither 1 (LLRP 1.0.1) nor 2 (LLRP 1.1).
    #[error("unsupported LLRP version {0}")]
    BadVersion(u8),
    /// The message length is below the header's 10 bytes.
    #[error("message length {0} below the 10-byte header")]
    LengthTooSmall(u32),
    /// The message length is above [`MAX_MESSAGE_LEN`].
    #[error("message length {0} above the limit of 1 MiB")]
    TooLong(u64),
    /// A field or parameter runs past the end of its message or parameter.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A TLV parameter's length is below its 4-byte header or past its container.
    #[error("bad length {len} of parameter type {param_type}")]
    BadParameterLength {
        /// The parameter type.
        param_type: u16,
        /// The length it announced.
        len: u16,
    },
    /// A TV parameter type with no defined length: nothing after it can be read.
    #[error("unknown TV parameter type {0}")]
    UnknownTvParameter(u8),
    /// A parameter the message needs is missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// A field holds a value its layout forbids (an EPC bit length longer than its data, a
    /// string that is not UTF-8).
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// The protocol version of a message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// 1: LLRP 1.0.1.
    V1_0_1,
    /// 2: LLRP 1.1.
    V1_1,
}

impl Version {
    /// The 3-bit version number.
    pub const fn number(self) -> u8 {
        match self {
            Version::V1_0_1 => 1,
            Version::V1_1 => 2,
        }
    }
}

/// LLRPStatus codes (LLRP 1.1 §17.3.1.1 / §14.2, "StatusCode"). [`StatusCode::Unknown`] keeps
/// any other number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names are the standard's
pub enum StatusCode {
    Success,
    MParameterError,
    MFieldError,
    MUnexpectedParameter,
    MMissingParameter,
    MDuplicateParameter,
    MOverflowParameter,
    MOverflowField,
    MUnknownParameter,
    MUnknownField,
    MUnsupportedMessage,
    MUnsupportedVersion,
    MUnsupportedParameter,
    MUnexpectedMessage,
    PParameterError,
    PFieldError,
    PUnexpectedParameter,
    PMissingParameter,
    PDuplicateParameter,
    POverflowParameter,
    POverflowField,
    PUnknownParameter,
    PUnknownField,
    PUnsupportedParameter,
    AInvalid,
    AOutOfRange,
    RDeviceError,
    /// Any other code.
    Unknown(u16),
}

const STATUS_CODES: [(StatusCode, u16); 27] = [
    (StatusCode::Success, 0),
    (StatusCode::MParameterError, 100),
    (StatusCode::MFieldError, 101),
    (StatusCode::MUnexpectedParameter, 102),
    (StatusCode::MMissingParameter, 103),
    (StatusCode::MDuplicateParameter, 104),
    (StatusCode::MOverflowParameter, 105),
    (StatusCode::MOverflowField, 106),
    (StatusCode::MUnknownParameter, 107),
    (StatusCode::MUnknownField, 108),
    (StatusCode::MUnsupportedMessage, 109),
    (StatusCode::MUnsupportedVersion, 110),
    (StatusCode::MUnsupportedParameter, 111),
    (StatusCode::MUnexpectedMessage, 112),
    (StatusCode::PParameterError, 200),
    (StatusCode::PFieldError, 201),
    (StatusCode::PUnexpectedParameter, 202),
    (StatusCode::PMissingParameter, 203),
    (StatusCode::PDuplicateParameter, 204),
    (StatusCode::POverflowParameter, 205),
    (StatusCode::POverflowField, 206),
    (StatusCode::PUnknownParameter, 207),
    (StatusCode::PUnknownField, 208),
    (StatusCode::PUnsupportedParameter, 209),
    (StatusCode::AInvalid, 300),
    (StatusCode::AOutOfRange, 301),
    (StatusCode::RDeviceError, 401),
];

impl StatusCode {
    /// The code a number stands for.
    pub fn from_u16(n: u16) -> Self {
        STATUS_CODES
            .iter()
            .find(|(_, v)| *v == n)
            .map_or(StatusCode::Unknown(n), |(c, _)| *c)
    }

    /// The number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            StatusCode::Unknown(n) => n,
            known => STATUS_CODES
                .iter()
                .find(|(c, _)| *c == known)
                .map_or(u16::MAX, |(_, v)| *v),
        }
    }
}

/// The LLRPStatus parameter: a code and the reader's description. Its FieldError and
/// ParameterError sub-parameters are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The status code.
    pub code: StatusCode,
    /// The reader's words (may be empty).
    pub description: String,
}

impl Status {
    /// Success with no description.
    pub fn success() -> Self {
        Self {
            code: StatusCode::Success,
            description: String::new(),
        }
    }

    /// Whether the code is `M_Success`.
    pub fn is_success(&self) -> bool {
        self.code == StatusCode::Success
    }
}

/// ConnectionAttemptEvent status (LLRP 1.1 §17.2.7.1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// 0: the connection is accepted.
    Success,
    /// 1: refused: a reader-initiated connection already exists.
    ReaderInitiatedExists,
    /// 2: refused: a client-initiated connection already exists ("another connection").
    ClientInitiatedExists,
    /// 3: refused for another reason.
    OtherFailure,
    /// 4: sent on the existing connection: another client tried to connect.
    AnotherConnectionAttempted,
    /// Any other value.
    Unknown(u16),
}

impl ConnectionStatus {
    /// The status a number stands for.
    pub const fn from_u16(n: u16) -> Self {
        match n {
            0 => Self::Success,
            1 => Self::ReaderInitiatedExists,
            2 => Self::ClientInitiatedExists,
            3 => Self::OtherFailure,
            4 => Self::AnotherConnectionAttempted,
            n => Self::Unknown(n),
        }
    }

    /// The number on the wire.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::Success => 0,
            Self::ReaderInitiatedExists => 1,
            Self::ClientInitiatedExists => 2,
            Self::OtherFailure => 3,
            Self::AnotherConnectionAttempted => 4,
            Self::Unknown(n) => n,
        }
    }
}

/// What GeneralDeviceCapabilities says (§17.2.3.2), with its GPIOCapabilities (§17.2.3.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCapabilities {
    /// MaxNumberOfAntennaSupported.
    pub max_antennas: u16,
    /// DeviceManufacturerName (the IANA enterprise number, 25882 for Impinj).
    pub manufacturer: u32,
    /// ModelName.
    pub model: u32,
    /// ReaderFirmwareVersion.
    pub firmware: String,
    /// NumGPIs.
    pub gpis: u16,
    /// NumGPOs.
    pub gpos: u16,
}

/// A timestamp: UTCTimestamp or Uptime, both in microseconds (§17.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// UTCTimestamp: microseconds since the Unix epoch.
    Utc(u64),
    /// Uptime: microseconds since the reader booted.
    Uptime(u64),
}

/// One event of a READER_EVENT_NOTIFICATION (§17.2.7.1). Others are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEvent {
    /// ConnectionAttemptEvent: whether this connection is accepted.
    ConnectionAttempt(ConnectionStatus),
    /// ConnectionCloseEvent: the reader is closing the connection.
    ConnectionClose,
    /// GPIEvent: a general-purpose input changed.
    Gpi {
        /// GPIPortNumber, 1-based.
        port: u16,
        /// The new state (high).
        high: bool,
    },
    /// AntennaEvent: an antenna was connected or disconnected.
    Antenna {
        /// The antenna, 1-based.
        antenna: u16,
        /// Connected (EventType 1) or disconnected (0).
        connected: bool,
    },
}

/// ReaderEventNotificationData: when, and which events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    /// When the reader saw the events.
    pub timestamp: Timestamp,
    /// The events it knows about, in order.
    pub events: Vec<ReaderEvent>,
}

/// The EPC of a tag report, in either form (§17.2.7.3.2 EPCData, §17.2.7.3.3 EPC-96).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpcField {
    /// EPC-96, the TV form for exactly 96 bits.
    Epc96([u8; 12]),
    /// EPCData: any bit length, the last byte padded.
    Data {
        /// The length in bits.
        bits: u16,
        /// ⌈bits / 8⌉ bytes.
        bytes: Vec<u8>,
    },
}

impl EpcField {
    /// The EPC bytes, whichever the form.
    pub fn bytes(&self) -> &[u8] {
        match self {
            EpcField::Epc96(b) => b,
            EpcField::Data { bytes, .. } => bytes,
        }
    }

    /// EPCData of whole bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match <[u8; 12]>::try_from(bytes) {
            Ok(b) => EpcField::Epc96(b),
            Err(_) => EpcField::Data {
                bits: (bytes.len().min(usize::from(u16::MAX) / 8) * 8) as u16,
                bytes: bytes[..bytes.len().min(usize::from(u16::MAX) / 8)].to_vec(),
            },
        }
    }
}

/// TagReportData (§17.2.7.3.1): the EPC and the optional fields a portal uses. Other
/// parameters (access results, vendor custom) are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagReport {
    /// The EPC.
    pub epc: EpcField,
    /// ROSpecID.
    pub rospec_id: Option<u32>,
    /// AntennaID.
    pub antenna: Option<u16>,
    /// PeakRSSI in dBm.
    pub peak_rssi: Option<i8>,
    /// ChannelIndex.
    pub channel: Option<u16>,
    /// FirstSeenTimestampUTC, µs.
    pub first_seen_utc: Option<u64>,
    /// LastSeenTimestampUTC, µs.
    pub last_seen_utc: Option<u64>,
    /// TagSeenCount.
    pub seen_count: Option<u16>,
}

impl TagReport {
    /// A report of just an EPC.
    pub fn new(epc: EpcField) -> Self {
        Self {
            epc,
            rospec_id: None,
            antenna: None,
            peak_rssi: None,
            channel: None,
            first_seen_utc: None,
            last_seen_utc: None,
            seen_count: None,
        }
    }
}

/// ROReportSpec (§17.2.5.1) with its TagReportContentSelector (§17.2.5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSpec {
    /// ROReportTrigger: 0 none, 1 upon N tags or end of AISpec, 2 … or end of ROSpec.
    pub trigger: u8,
    /// N (0: unlimited).
    pub n: u16,
    /// The selector's ten enable bits as on the wire (bit 15 ROSpecID … bit 6 AccessSpecID).
    pub content: u16,
}

/// TagReportContentSelector bits (the top ten bits of its 16-bit field, §17.2.5.1.1).
pub mod content {
    /// EnableROSpecID.
    pub const ROSPEC_ID: u16 = 1 << 15;
    /// EnableSpecIndex.
    pub const SPEC_INDEX: u16 = 1 << 14;
    /// EnableInventoryParameterSpecID.
    pub const INVENTORY_PARAMETER_SPEC_ID: u16 = 1 << 13;
    /// EnableAntennaID.
    pub const ANTENNA_ID: u16 = 1 << 12;
    /// EnableChannelIndex.
    pub const CHANNEL_INDEX: u16 = 1 << 11;
    /// EnablePeakRSSI.
    pub const PEAK_RSSI: u16 = 1 << 10;
    /// EnableFirstSeenTimestamp.
    pub const FIRST_SEEN: u16 = 1 << 9;
    /// EnableLastSeenTimestamp.
    pub const LAST_SEEN: u16 = 1 << 8;
    /// EnableTagSeenCount.
    pub const TAG_SEEN_COUNT: u16 = 1 << 7;
    /// EnableAccessSpecID.
    pub const ACCESS_SPEC_ID: u16 = 1 << 6;
    /// The ten defined bits.
    pub const ALL: u16 = 0xFFC0;
}

/// AISpec (§17.2.4.2): antennas, stop trigger, one InventoryParameterSpec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiSpec {
    /// AntennaIDs (0 means every antenna).
    pub antennas: Vec<u16>,
    /// AISpecStopTrigger type: 0 null (run until the ROSpec stops), 1 duration.
    pub stop_trigger: u8,
    /// Its duration in ms.
    pub stop_duration_ms: u32,
    /// InventoryParameterSpecID.
    pub inventory_spec_id: u16,
    /// ProtocolID: 1 EPCGlobal Class 1 Gen 2.
    pub protocol: u8,
}

/// ROSpec (§17.2.4.1): the reader operation a portal runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoSpec {
    /// ROSpecID (not 0).
    pub id: u32,
    /// Priority 0 (highest) to 7.
    pub priority: u8,
    /// CurrentState: 0 disabled, 1 inactive, 2 active.
    pub state: u8,
    /// ROSpecStartTrigger type: 0 null, 1 immediate (periodic/GPI triggers are not built).
    pub start_trigger: u8,
    /// ROSpecStopTrigger type: 0 null, 1 duration.
    pub stop_trigger: u8,
    /// Its duration in ms.
    pub stop_duration_ms: u32,
    /// The AISpecs.
    pub ai_specs: Vec<AiSpec>,
    /// The report spec.
    pub report: Option<ReportSpec>,
}

/// SET_READER_CONFIG (§16.1.9): the parameters a portal sets. Others are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaderConfig {
    /// ResetToFactoryDefault, applied before the rest.
    pub reset_to_factory_default: bool,
    /// ReaderEventNotificationSpec: (EventType, enabled) per EventNotificationState.
    pub event_notifications: Vec<(u16, bool)>,
    /// ROReportSpec: the default report spec.
    pub report: Option<ReportSpec>,
    /// KeepaliveSpec: `Some(ms)` periodic, `Some(0)` null trigger (off).
    pub keepalive_ms: Option<u32>,
    /// GPOWriteData: (port, high).
    pub gpo: Vec<(u16, bool)>,
    /// GPIPortCurrentState: (port, enabled, state 0 low 1 high 2 unknown).
    pub gpi: Vec<(u16, bool, u8)>,
    /// EventsAndReports: HoldEventsAndReportsUponReconnect.
    pub hold_events_and_reports: Option<bool>,
}

/// Event types of EventNotificationState (§17.2.5.3.1).
pub mod event_type {
    /// GPI event.
    pub const GPI: u16 = 1;
    /// ROSpec event.
    pub const ROSPEC: u16 = 2;
    /// Reader exception event.
    pub const READER_EXCEPTION: u16 = 4;
    /// Antenna event.
    pub const ANTENNA: u16 = 8;
}

/// The body of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// GET_READER_CAPABILITIES: RequestedData (0 all, 1 general device …).
    GetReaderCapabilities {
        /// RequestedData.
        requested: u8,
    },
    /// GET_READER_CAPABILITIES_RESPONSE.
    GetReaderCapabilitiesResponse {
        /// The status.
        status: Status,
        /// GeneralDeviceCapabilities, when present.
        general: Option<DeviceCapabilities>,
    },
    /// SET_READER_CONFIG.
    SetReaderConfig(ReaderConfig),
    /// SET_READER_CONFIG_RESPONSE.
    SetReaderConfigResponse(Status),
    /// ADD_ROSPEC.
    AddRoSpec(RoSpec),
    /// ADD_ROSPEC_RESPONSE.
    AddRoSpecResponse(Status),
    /// DELETE_ROSPEC (0: all).
    DeleteRoSpec(u32),
    /// DELETE_ROSPEC_RESPONSE.
    DeleteRoSpecResponse(Status),
    /// START_ROSPEC.
    StartRoSpec(u32),
    /// START_ROSPEC_RESPONSE.
    StartRoSpecResponse(Status),
    /// STOP_ROSPEC.
    StopRoSpec(u32),
    /// STOP_ROSPEC_RESPONSE.
    StopRoSpecResponse(Status),
    /// ENABLE_ROSPEC (0: all).
    EnableRoSpec(u32),
    /// ENABLE_ROSPEC_RESPONSE.
    EnableRoSpecResponse(Status),
    /// DISABLE_ROSPEC (0: all).
    DisableRoSpec(u32),
    /// DISABLE_ROSPEC_RESPONSE.
    DisableRoSpecResponse(Status),
    /// RO_ACCESS_REPORT: tag reports (RFSurvey and custom parameters skipped).
    RoAccessReport(Vec<TagReport>),
    /// READER_EVENT_NOTIFICATION.
    ReaderEventNotification(EventData),
    /// KEEPALIVE.
    Keepalive,
    /// KEEPALIVE_ACK.
    KeepaliveAck,
    /// ERROR_MESSAGE.
    ErrorMessage(Status),
    /// CLOSE_CONNECTION.
    CloseConnection,
    /// CLOSE_CONNECTION_RESPONSE.
    CloseConnectionResponse(Status),
    /// CUSTOM_MESSAGE: the vendor and subtype; the data is skipped.
    Custom {
        /// VendorIdentifier (IANA enterprise number).
        vendor: u32,
        /// MessageSubtype.
        subtype: u8,
    },
    /// Any other message type, skipped by its length.
    Unknown {
        /// The message type.
        msg_type: u16,
    },
}

impl Body {
    /// The message type number.
    pub fn msg_type(&self) -> u16 {
        use msg::*;
        match self {
            Body::GetReaderCapabilities { .. } => GET_READER_CAPABILITIES,
            Body::GetReaderCapabilitiesResponse { .. } => GET_READER_CAPABILITIES_RESPONSE,
            Body::SetReaderConfig(_) => SET_READER_CONFIG,
            Body::SetReaderConfigResponse(_) => SET_READER_CONFIG_RESPONSE,
            Body::AddRoSpec(_) => ADD_ROSPEC,
            Body::AddRoSpecResponse(_) => ADD_ROSPEC_RESPONSE,
            Body::DeleteRoSpec(_) => DELETE_ROSPEC,
            Body::DeleteRoSpecResponse(_) => DELETE_ROSPEC_RESPONSE,
            Body::StartRoSpec(_) => START_ROSPEC,
            Body::StartRoSpecResponse(_) => START_ROSPEC_RESPONSE,
            Body::StopRoSpec(_) => STOP_ROSPEC,
            Body::StopRoSpecResponse(_) => STOP_ROSPEC_RESPONSE,
            Body::EnableRoSpec(_) => ENABLE_ROSPEC,
            Body::EnableRoSpecResponse(_) => ENABLE_ROSPEC_RESPONSE,
            Body::DisableRoSpec(_) => DISABLE_ROSPEC,
            Body::DisableRoSpecResponse(_) => DISABLE_ROSPEC_RESPONSE,
            Body::RoAccessReport(_) => RO_ACCESS_REPORT,
            Body::ReaderEventNotification(_) => READER_EVENT_NOTIFICATION,
            Body::Keepalive => KEEPALIVE,
            Body::KeepaliveAck => KEEPALIVE_ACK,
            Body::ErrorMessage(_) => ERROR_MESSAGE,
            Body::CloseConnection => CLOSE_CONNECTION,
            Body::CloseConnectionResponse(_) => CLOSE_CONNECTION_RESPONSE,
            Body::Custom { .. } => CUSTOM_MESSAGE,
            Body::Unknown { msg_type } => *msg_type & 0x3FF,
        }
    }

    /// The status of a response or ERROR_MESSAGE.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Body::GetReaderCapabilitiesResponse { status, .. }
            | Body::SetReaderConfigResponse(status)
            | Body::AddRoSpecResponse(status)
            | Body::DeleteRoSpecResponse(status)
            | Body::StartRoSpecResponse(status)
            | Body::StopRoSpecResponse(status)
            | Body::EnableRoSpecResponse(status)
            | Body::DisableRoSpecResponse(status)
            | Body::ErrorMessage(status)
            | Body::CloseConnectionResponse(status) => Some(status),
            _ => None,
        }
    }
}

/// One LLRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header's version.
    pub version: Version,
    /// The message ID; a response carries its request's.
    pub id: u32,
    /// The body.
    pub body: Body,
}

impl Message {
    /// An LLRP 1.1 message.
    pub fn new(id: u32, body: Body) -> Self {
        Self {
            version: Version::V1_1,
            id,
            body,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// Decodes the message at the start of `buf` (see the module documentation).
pub fn decode(buf: &[u8]) -> Decoded<Message, LlrpError> {
    let Some(&b0) = buf.first() else {
        return Decoded::NeedMore;
    };
    let version = match (b0 >> 2) & 0x07 {
        1 => Version::V1_0_1,
        2 => Version::V1_1,
        v => {
            return Decoded::Invalid {
                error: LlrpError::BadVersion(v),
                skip: 1,
            };
        }
    };
    if buf.len() < 6 {
        return Decoded::NeedMore;
    }
    let msg_type = u16::from_be_bytes([b0, buf[1]]) & 0x3FF;
    let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
    if (len as usize) < HEADER_LEN {
        return Decoded::Invalid {
            error: LlrpError::LengthTooSmall(len),
            skip: 1,
        };
    }
    if len as u64 > MAX_MESSAGE_LEN as u64 {
        return Decoded::Invalid {
            error: LlrpError::TooLong(u64::from(len)),
            skip: 1,
        };
    }
    let len = len as usize;
    if buf.len() < len {
        return Decoded::NeedMore;
    }
    let id = u32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]]);
    match decode_body(msg_type, &buf[HEADER_LEN..len]) {
        Ok(body) => Decoded::Frame {
            frame: Message { version, id, body },
            len,
        },
        Err(error) => Decoded::Invalid { error, skip: len },
    }
}

/// A cursor over a message body or parameter value.
struct Cur<'a> {
    buf: &'a [u8],
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], LlrpError> {
        if self.buf.len() < n {
            return Err(LlrpError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, LlrpError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, LlrpError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, LlrpError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, LlrpError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn utf8v(&mut self, what: &'static str) -> Result<String, LlrpError> {
        let n = self.u16(what)?;
        let b = self.take(usize::from(n), what)?;
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| LlrpError::Malformed(what))
    }

    /// The next parameter, or `None` at the end.
    fn param(&mut self) -> Option<Result<Param<'a>, LlrpError>> {
        let &b0 = self.buf.first()?;
        Some(self.param_at(b0))
    }

    fn param_at(&mut self, b0: u8) -> Result<Param<'a>, LlrpError> {
        if b0 & 0x80 != 0 {
            let tv = b0 & 0x7F;
            let n = tv_value_len(tv).ok_or(LlrpError::UnknownTvParameter(tv))?;
            let all = self.take(1 + n, "TV parameter")?;
            Ok(Param {
                ptype: u16::from(tv),
                value: Cur { buf: &all[1..] },
            })
        } else {
            if self.buf.len() < 4 {
                return Err(LlrpError::Truncated("TLV parameter header"));
            }
            let ptype = u16::from_be_bytes([self.buf[0], self.buf[1]]) & 0x3FF;
            let len = u16::from_be_bytes([self.buf[2], self.buf[3]]);
            if usize::from(len) < 4 || usize::from(len) > self.buf.len() {
                return Err(LlrpError::BadParameterLength {
                    param_type: ptype,
                    len,
                });
            }
            let all = self.take(usize::from(len), "TLV parameter")?;
            Ok(Param {
                ptype,
                value: Cur { buf: &all[4..] },
            })
        }
    }
}

struct Param<'a> {
    ptype: u16,
    value: Cur<'a>,
}

/// Iterates the parameters of `cur`, calling `f` with each; stops at the first error.
fn each_param<'a>(
    cur: &mut Cur<'a>,
    mut f: impl FnMut(Param<'a>) -> Result<(), LlrpError>,
) -> Result<(), LlrpError> {
    while let Some(p) = cur.param() {
        f(p?)?;
    }
    Ok(())
}

fn decode_status(mut v: Cur<'_>) -> Result<Status, LlrpError> {
    let code = StatusCode::from_u16(v.u16("LLRPStatus.StatusCode")?);
    let description = v.utf8v("LLRPStatus.ErrorDescription")?;
    // FieldError / ParameterError follow; checked for framing, not kept.
    each_param(&mut v, |_| Ok(()))?;
    Ok(Status { code, description })
}

/// A body that is only an LLRPStatus (and maybe skipped parameters after it).
fn status_body(cur: &mut Cur<'_>) -> Result<Status, LlrpError> {
    let mut status = None;
    each_param(cur, |p| {
        if p.ptype == param::LLRP_STATUS && status.is_none() {
            status = Some(decode_status(p.value)?);
        }
        Ok(())
    })?;
    status.ok_or(LlrpError::Missing("LLRPStatus"))
}

fn decode_body(msg_type: u16, body: &[u8]) -> Result<Body, LlrpError> {
    use msg::*;
    let mut c = Cur { buf: body };
    let c = &mut c;
    Ok(match msg_type {
        GET_READER_CAPABILITIES => {
            let requested = c.u8("RequestedData")?;
            each_param(c, |_| Ok(()))?;
            Body::GetReaderCapabilities { requested }
        }
        GET_READER_CAPABILITIES_RESPONSE => {
            let mut status = None;
            let mut general = None;
            each_param(c, |p| {
                match p.ptype {
                    param::LLRP_STATUS if status.is_none() => {
                        status = Some(decode_status(p.value)?)
                    }
                    param::GENERAL_DEVICE_CAPABILITIES if general.is_none() => {
                        general = Some(decode_capabilities(p.value)?)
                    }
                    _ => {}
                }
                Ok(())
            })?;
            Body::GetReaderCapabilitiesResponse {
                status: status.ok_or(LlrpError::Missing("LLRPStatus"))?,
                general,
            }
        }
        SET_READER_CONFIG => Body::SetReaderConfig(decode_reader_config(c)?),
        ADD_ROSPEC => {
            let mut spec = None;
            each_param(c, |p| {
                if p.ptype == param::ROSPEC && spec.is_none() {
                    spec = Some(decode_rospec(p.value)?);
                }
                Ok(())
            })?;
            Body::AddRoSpec(spec.ok_or(LlrpError::Missing("ROSpec"))?)
        }
        DELETE_ROSPEC | START_ROSPEC | STOP_ROSPEC | ENABLE_ROSPEC | DISABLE_ROSPEC => {
            let id = c.u32("ROSpecID")?;
            each_param(c, |_| Ok(()))?;
            match msg_type {
                DELETE_ROSPEC => Body::DeleteRoSpec(id),
                START_ROSPEC => Body::StartRoSpec(id),
                STOP_ROSPEC => Body::StopRoSpec(id),
                ENABLE_ROSPEC => Body::EnableRoSpec(id),
                _ => Body::DisableRoSpec(id),
            }
        }
        SET_READER_CONFIG_RESPONSE => Body::SetReaderConfigResponse(status_body(c)?),
        ADD_ROSPEC_RESPONSE => Body::AddRoSpecResponse(status_body(c)?),
        DELETE_ROSPEC_RESPONSE => Body::DeleteRoSpecResponse(status_body(c)?),
        START_ROSPEC_RESPONSE => Body::StartRoSpecResponse(status_body(c)?),
        STOP_ROSPEC_RESPONSE => Body::StopRoSpecResponse(status_body(c)?),
        ENABLE_ROSPEC_RESPONSE => Body::EnableRoSpecResponse(status_body(c)?),
        DISABLE_ROSPEC_RESPONSE => Body::DisableRoSpecResponse(status_body(c)?),
        ERROR_MESSAGE => Body::ErrorMessage(status_body(c)?),
        CLOSE_CONNECTION_RESPONSE => Body::CloseConnectionResponse(status_body(c)?),
        RO_ACCESS_REPORT => {
            let mut tags = Vec::new();
            each_param(c, |p| {
                if p.ptype == param::TAG_REPORT_DATA {
                    tags.push(decode_tag_report(p.value)?);
                }
                Ok(())
            })?;
            Body::RoAccessReport(tags)
        }
        READER_EVENT_NOTIFICATION => {
            let mut data = None;
            each_param(c, |p| {
                if p.ptype == param::READER_EVENT_NOTIFICATION_DATA && data.is_none() {
                    data = Some(decode_event_data(p.value)?);
                }
                Ok(())
            })?;
            Body::ReaderEventNotification(
                data.ok_or(LlrpError::Missing("ReaderEventNotificationData"))?,
            )
        }
        KEEPALIVE => Body::Keepalive,
        KEEPALIVE_ACK => Body::KeepaliveAck,
        CLOSE_CONNECTION => Body::CloseConnection,
        CUSTOM_MESSAGE => Body::Custom {
            vendor: c.u32("VendorIdentifier")?,
            subtype: c.u8("MessageSubtype")?,
        },
        other => Body::Unknown { msg_type: other },
    })
}

fn decode_capabilities(mut v: Cur<'_>) -> Result<DeviceCapabilities, LlrpError> {
    let max_antennas = v.u16("MaxNumberOfAntennaSupported")?;
    let _flags = v.u16("GeneralDeviceCapabilities flags")?;
    let manufacturer = v.u32("DeviceManufacturerName")?;
    let model = v.u32("ModelName")?;
    let firmware = v.utf8v("ReaderFirmwareVersion")?;
    let (mut gpis, mut gpos) = (0, 0);
    each_param(&mut v, |mut p| {
        if p.ptype == param::GPIO_CAPABILITIES {
            gpis = p.value.u16("NumGPIs")?;
            gpos = p.value.u16("NumGPOs")?;
        }
        Ok(())
    })?;
    Ok(DeviceCapabilities {
        max_antennas,
        manufacturer,
        model,
        firmware,
        gpis,
        gpos,
    })
}

fn decode_report_spec(mut v: Cur<'_>) -> Result<ReportSpec, LlrpError> {
    let trigger = v.u8("ROReportTrigger")?;
    let n = v.u16("N")?;
    let mut content = None;
    each_param(&mut v, |mut p| {
        if p.ptype == param::TAG_REPORT_CONTENT_SELECTOR && content.is_none() {
            content = Some(p.value.u16("TagReportContentSelector")? & content::ALL);
        }
        Ok(())
    })?;
    Ok(ReportSpec {
        trigger,
        n,
        content: content.ok_or(LlrpError::Missing("TagReportContentSelector"))?,
    })
}

fn decode_reader_config(c: &mut Cur<'_>) -> Result<ReaderConfig, LlrpError> {
    let mut cfg = ReaderConfig {
        reset_to_factory_default: c.u8("ResetToFactoryDefault")? & 0x80 != 0,
        ..ReaderConfig::default()
    };
    each_param(c, |mut p| {
        match p.ptype {
            param::READER_EVENT_NOTIFICATION_SPEC => each_param(&mut p.value, |mut s| {
                if s.ptype == param::EVENT_NOTIFICATION_STATE {
                    let t = s.value.u16("EventType")?;
                    let on = s.value.u8("NotificationState")? & 0x80 != 0;
                    cfg.event_notifications.push((t, on));
                }
                Ok(())
            })?,
            param::RO_REPORT_SPEC => cfg.report = Some(decode_report_spec(p.value)?),
            param::KEEPALIVE_SPEC => {
                let t = p.value.u8("KeepaliveTriggerType")?;
                let ms = p.value.u32("PeriodicTriggerValue")?;
                cfg.keepalive_ms = Some(if t == 1 { ms } else { 0 });
            }
            param::GPO_WRITE_DATA => {
                let port = p.value.u16("GPOPortNumber")?;
                let high = p.value.u8("GPOData")? & 0x80 != 0;
                cfg.gpo.push((port, high));
            }
            param::GPI_PORT_CURRENT_STATE => {
                let port = p.value.u16("GPIPortNum")?;
                let enabled = p.value.u8("GPIConfig")? & 0x80 != 0;
                let state = p.value.u8("GPIState")?;
                cfg.gpi.push((port, enabled, state));
            }
            param::EVENTS_AND_REPORTS => {
                cfg.hold_events_and_reports =
                    Some(p.value.u8("HoldEventsAndReportsUponReconnect")? & 0x80 != 0);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(cfg)
}

fn decode_rospec(mut v: Cur<'_>) -> Result<RoSpec, LlrpError> {
    let mut spec = RoSpec {
        id: v.u32("ROSpecID")?,
        priority: v.u8("Priority")?,
        state: v.u8("CurrentState")?,
        start_trigger: 0,
        stop_trigger: 0,
        stop_duration_ms: 0,
        ai_specs: Vec::new(),
        report: None,
    };
    let mut boundary = false;
    each_param(&mut v, |mut p| {
        match p.ptype {
            param::RO_BOUNDARY_SPEC => {
                boundary = true;
                each_param(&mut p.value, |mut t| {
                    match t.ptype {
                        param::ROSPEC_START_TRIGGER => {
                            spec.start_trigger = t.value.u8("ROSpecStartTriggerType")?
                        }
                        param::ROSPEC_STOP_TRIGGER => {
                            spec.stop_trigger = t.value.u8("ROSpecStopTriggerType")?;
                            spec.stop_duration_ms = t.value.u32("DurationTriggerValue")?;
                        }
                        _ => {}
                    }
                    Ok(())
                })?
            }
            param::AI_SPEC => spec.ai_specs.push(decode_ai_spec(p.value)?),
            param::RO_REPORT_SPEC => spec.report = Some(decode_report_spec(p.value)?),
            _ => {}
        }
        Ok(())
    })?;
    if !boundary {
        return Err(LlrpError::Missing("ROBoundarySpec"));
    }
    Ok(spec)
}

fn decode_ai_spec(mut v: Cur<'_>) -> Result<AiSpec, LlrpError> {
    let count = v.u16("AntennaCount")?;
    // Bounded by the bytes present: each id is read before it is pushed.
    let mut antennas = Vec::new();
    for _ in 0..count {
        antennas.push(v.u16("AntennaID")?);
    }
    let mut ai = AiSpec {
        antennas,
        stop_trigger: 0,
        stop_duration_ms: 0,
        inventory_spec_id: 0,
        protocol: 0,
    };
    let mut inventory = false;
    each_param(&mut v, |mut p| {
        match p.ptype {
            param::AI_SPEC_STOP_TRIGGER => {
                ai.stop_trigger = p.value.u8("AISpecStopTriggerType")?;
                ai.stop_duration_ms = p.value.u32("DurationTrigger")?;
            }
            param::INVENTORY_PARAMETER_SPEC if !inventory => {
                inventory = true;
                ai.inventory_spec_id = p.value.u16("InventoryParameterSpecID")?;
                ai.protocol = p.value.u8("ProtocolID")?;
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(ai)
}

fn decode_tag_report(mut v: Cur<'_>) -> Result<TagReport, LlrpError> {
    let mut epc = None;
    let mut r = TagReport::new(EpcField::Epc96([0; 12]));
    each_param(&mut v, |mut p| {
        let f = &mut p.value;
        match p.ptype {
            param::EPC_96 => {
                let mut b = [0u8; 12];
                b.copy_from_slice(f.take(12, "EPC-96")?);
                epc = Some(EpcField::Epc96(b));
            }
            param::EPC_DATA => {
                let bits = f.u16("EPCLengthBits")?;
                let bytes = f.take(usize::from(bits).div_ceil(8), "EPC")?.to_vec();
                epc = Some(EpcField::Data { bits, bytes });
            }
            param::ROSPEC_ID => r.rospec_id = Some(f.u32("ROSpecID")?),
            param::ANTENNA_ID => r.antenna = Some(f.u16("AntennaID")?),
            param::PEAK_RSSI => r.peak_rssi = Some(f.u8("PeakRSSI")? as i8),
            param::CHANNEL_INDEX => r.channel = Some(f.u16("ChannelIndex")?),
            param::FIRST_SEEN_UTC => r.first_seen_utc = Some(f.u64("FirstSeenTimestampUTC")?),
            param::LAST_SEEN_UTC => r.last_seen_utc = Some(f.u64("LastSeenTimestampUTC")?),
            param::TAG_SEEN_COUNT => r.seen_count = Some(f.u16("TagSeenCount")?),
            _ => {}
        }
        Ok(())
    })?;
    r.epc = epc.ok_or(LlrpError::Missing("EPCData or EPC-96"))?;
    Ok(r)
}

fn decode_event_data(mut v: Cur<'_>) -> Result<EventData, LlrpError> {
    let mut timestamp = None;
    let mut events = Vec::new();
    each_param(&mut v, |mut p| {
        let f = &mut p.value;
        match p.ptype {
            param::UTC_TIMESTAMP if timestamp.is_none() => {
                timestamp = Some(Timestamp::Utc(f.u64("UTCTimestamp")?))
            }
            param::UPTIME if timestamp.is_none() => {
                timestamp = Some(Timestamp::Uptime(f.u64("Uptime")?))
            }
            param::CONNECTION_ATTEMPT_EVENT => events.push(ReaderEvent::ConnectionAttempt(
                ConnectionStatus::from_u16(f.u16("ConnectionAttemptEvent.Status")?),
            )),
            param::CONNECTION_CLOSE_EVENT => events.push(ReaderEvent::ConnectionClose),
            param::GPI_EVENT => {
                let port = f.u16("GPIPortNumber")?;
                let high = f.u8("GPIEvent")? & 0x80 != 0;
                events.push(ReaderEvent::Gpi { port, high });
            }
            param::ANTENNA_EVENT => {
                let connected = f.u8("AntennaEvent.EventType")? == 1;
                let antenna = f.u16("AntennaID")?;
                events.push(ReaderEvent::Antenna { antenna, connected });
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(EventData {
        timestamp: timestamp.ok_or(LlrpError::Missing("UTCTimestamp or Uptime"))?,
        events,
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// Appends the message to `out`. Fails (leaving `out` as it was) only when the message would
/// be longer than [`MAX_MESSAGE_LEN`] or a parameter longer than 65,535 bytes.
pub fn encode(message: &Message, out: &mut Vec<u8>) -> Result<(), LlrpError> {
    let start = out.len();
    let result = encode_inner(message, out, start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_inner(message: &Message, out: &mut Vec<u8>, start: usize) -> Result<(), LlrpError> {
    let head = (u16::from(message.version.number()) << 10) | message.body.msg_type();
    out.extend_from_slice(&head.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&message.id.to_be_bytes());
    encode_body(&message.body, out)?;
    let len = out.len() - start;
    if len > MAX_MESSAGE_LEN {
        return Err(LlrpError::TooLong(len as u64));
    }
    out[start + 2..start + 6].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Writes a TLV parameter whose value `f` appends, then patches its length.
fn tlv(
    out: &mut Vec<u8>,
    ptype: u16,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), LlrpError>,
) -> Result<(), LlrpError> {
    let start = out.len();
    out.extend_from_slice(&ptype.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    f(out)?;
    let len = u16::try_from(out.len() - start).map_err(|_| LlrpError::BadParameterLength {
        param_type: ptype,
        len: u16::MAX,
    })?;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn tv(out: &mut Vec<u8>, tv_type: u16, value: &[u8]) {
    out.push(0x80 | (tv_type as u8 & 0x7F));
    out.extend_from_slice(value);
}

fn put_utf8(out: &mut Vec<u8>, s: &str) -> Result<(), LlrpError> {
    let n = u16::try_from(s.len()).map_err(|_| LlrpError::Malformed("string over 65535 bytes"))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_status(out: &mut Vec<u8>, s: &Status) -> Result<(), LlrpError> {
    tlv(out, param::LLRP_STATUS, |o| {
        o.extend_from_slice(&s.code.to_u16().to_be_bytes());
        put_utf8(o, &s.description)
    })
}

fn put_report_spec(out: &mut Vec<u8>, r: &ReportSpec) -> Result<(), LlrpError> {
    tlv(out, param::RO_REPORT_SPEC, |o| {
        o.push(r.trigger);
        o.extend_from_slice(&r.n.to_be_bytes());
        tlv(o, param::TAG_REPORT_CONTENT_SELECTOR, |o| {
            o.extend_from_slice(&(r.content & content::ALL).to_be_bytes());
            Ok(())
        })
    })
}

fn bit(b: bool) -> u8 {
    if b { 0x80 } else { 0 }
}

fn encode_body(body: &Body, out: &mut Vec<u8>) -> Result<(), LlrpError> {
    match body {
        Body::GetReaderCapabilities { requested } => out.push(*requested),
        Body::GetReaderCapabilitiesResponse { status, general } => {
            put_status(out, status)?;
            if let Some(g) = general {
                tlv(out, param::GENERAL_DEVICE_CAPABILITIES, |o| {
                    o.extend_from_slice(&g.max_antennas.to_be_bytes());
                    o.extend_from_slice(&[0x40, 0]); // HasUTCClockCapability
                    o.extend_from_slice(&g.manufacturer.to_be_bytes());
                    o.extend_from_slice(&g.model.to_be_bytes());
                    put_utf8(o, &g.firmware)?;
                    tlv(o, param::GPIO_CAPABILITIES, |o| {
                        o.extend_from_slice(&g.gpis.to_be_bytes());
                        o.extend_from_slice(&g.gpos.to_be_bytes());
                        Ok(())
                    })
                })?;
            }
        }
        Body::SetReaderConfig(c) => {
            out.push(bit(c.reset_to_factory_default));
            if !c.event_notifications.is_empty() {
                tlv(out, param::READER_EVENT_NOTIFICATION_SPEC, |o| {
                    for (t, on) in &c.event_notifications {
                        tlv(o, param::EVENT_NOTIFICATION_STATE, |o| {
                            o.extend_from_slice(&t.to_be_bytes());
                            o.push(bit(*on));
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
            }
            if let Some(r) = &c.report {
                put_report_spec(out, r)?;
            }
            if let Some(ms) = c.keepalive_ms {
                tlv(out, param::KEEPALIVE_SPEC, |o| {
                    o.push(u8::from(ms != 0));
                    o.extend_from_slice(&ms.to_be_bytes());
                    Ok(())
                })?;
            }
            for (port, high) in &c.gpo {
                tlv(out, param::GPO_WRITE_DATA, |o| {
                    o.extend_from_slice(&port.to_be_bytes());
                    o.push(bit(*high));
                    Ok(())
                })?;
            }
            for (port, enabled, state) in &c.gpi {
                tlv(out, param::GPI_PORT_CURRENT_STATE, |o| {
                    o.extend_from_slice(&port.to_be_bytes());
                    o.push(bit(*enabled));
                    o.push(*state);
                    Ok(())
                })?;
            }
            if let Some(hold) = c.hold_events_and_reports {
                tlv(out, param::EVENTS_AND_REPORTS, |o| {
                    o.push(bit(hold));
                    Ok(())
                })?;
            }
        }
        Body::AddRoSpec(s) => tlv(out, param::ROSPEC, |o| {
            o.extend_from_slice(&s.id.to_be_bytes());
            o.push(s.priority);
            o.push(s.state);
            tlv(o, param::RO_BOUNDARY_SPEC, |o| {
                tlv(o, param::ROSPEC_START_TRIGGER, |o| {
                    o.push(s.start_trigger);
                    Ok(())
                })?;
                tlv(o, param::ROSPEC_STOP_TRIGGER, |o| {
                    o.push(s.stop_trigger);
                    o.extend_from_slice(&s.stop_duration_ms.to_be_bytes());
                    Ok(())
                })
            })?;
            for ai in &s.ai_specs {
                tlv(o, param::AI_SPEC, |o| {
                    let n = u16::try_from(ai.antennas.len())
                        .map_err(|_| LlrpError::Malformed("AntennaCount"))?;
                    o.extend_from_slice(&n.to_be_bytes());
                    for a in &ai.antennas {
                        o.extend_from_slice(&a.to_be_bytes());
                    }
                    tlv(o, param::AI_SPEC_STOP_TRIGGER, |o| {
                        o.push(ai.stop_trigger);
                        o.extend_from_slice(&ai.stop_duration_ms.to_be_bytes());
                        Ok(())
                    })?;
                    tlv(o, param::INVENTORY_PARAMETER_SPEC, |o| {
                        o.extend_from_slice(&ai.inventory_spec_id.to_be_bytes());
                        o.push(ai.protocol);
                        Ok(())
                    })
                })?;
            }
            if let Some(r) = &s.report {
                put_report_spec(o, r)?;
            }
            Ok(())
        })?,
        Body::DeleteRoSpec(id)
        | Body::StartRoSpec(id)
        | Body::StopRoSpec(id)
        | Body::EnableRoSpec(id)
        | Body::DisableRoSpec(id) => out.extend_from_slice(&id.to_be_bytes()),
        Body::SetReaderConfigResponse(s)
        | Body::AddRoSpecResponse(s)
        | Body::DeleteRoSpecResponse(s)
        | Body::StartRoSpecResponse(s)
        | Body::StopRoSpecResponse(s)
        | Body::EnableRoSpecResponse(s)
        | Body::DisableRoSpecResponse(s)
        | Body::ErrorMessage(s)
        | Body::CloseConnectionResponse(s) => put_status(out, s)?,
        Body::RoAccessReport(tags) => {
            for t in tags {
                encode_tag_report(out, t)?;
            }
        }
        Body::ReaderEventNotification(d) => tlv(out, param::READER_EVENT_NOTIFICATION_DATA, |o| {
            match d.timestamp {
                Timestamp::Utc(us) => tlv(o, param::UTC_TIMESTAMP, |o| {
                    o.extend_from_slice(&us.to_be_bytes());
                    Ok(())
                })?,
                Timestamp::Uptime(us) => tlv(o, param::UPTIME, |o| {
                    o.extend_from_slice(&us.to_be_bytes());
                    Ok(())
                })?,
            }
            for e in &d.events {
                match *e {
                    ReaderEvent::ConnectionAttempt(s) => {
                        tlv(o, param::CONNECTION_ATTEMPT_EVENT, |o| {
                            o.extend_from_slice(&s.to_u16().to_be_bytes());
                            Ok(())
                        })?
                    }
                    ReaderEvent::ConnectionClose => {
                        tlv(o, param::CONNECTION_CLOSE_EVENT, |_| Ok(()))?
                    }
                    ReaderEvent::Gpi { port, high } => tlv(o, param::GPI_EVENT, |o| {
                        o.extend_from_slice(&port.to_be_bytes());
                        o.push(bit(high));
                        Ok(())
                    })?,
                    ReaderEvent::Antenna { antenna, connected } => {
                        tlv(o, param::ANTENNA_EVENT, |o| {
                            o.push(u8::from(connected));
                            o.extend_from_slice(&antenna.to_be_bytes());
                            Ok(())
                        })?
                    }
                }
            }
            Ok(())
        })?,
        Body::Keepalive | Body::KeepaliveAck | Body::CloseConnection | Body::Unknown { .. } => {}
        Body::Custom { vendor, subtype } => {
            out.extend_from_slice(&vendor.to_be_bytes());
            out.push(*subtype);
        }
    }
    Ok(())
}

fn encode_tag_report(out: &mut Vec<u8>, t: &TagReport) -> Result<(), LlrpError> {
    tlv(out, param::TAG_REPORT_DATA, |o| {
        match &t.epc {
            EpcField::Epc96(b) => tv(o, param::EPC_96, b),
            EpcField::Data { bits, bytes } => {
                if bytes.len() != usize::from(*bits).div_ceil(8) {
                    return Err(LlrpError::Malformed("EPCData length"));
                }
                tlv(o, param::EPC_DATA, |o| {
                    o.extend_from_slice(&bits.to_be_bytes());
                    o.extend_from_slice(bytes);
                    Ok(())
                })?;
            }
        }
        if let Some(v) = t.rospec_id {
            tv(o, param::ROSPEC_ID, &v.to_be_bytes());
        }
        if let Some(v) = t.antenna {
            tv(o, param::ANTENNA_ID, &v.to_be_bytes());
        }
        if let Some(v) = t.peak_rssi {
            tv(o, param::PEAK_RSSI, &v.to_be_bytes());
        }
        if let Some(v) = t.channel {
            tv(o, param::CHANNEL_INDEX, &v.to_be_bytes());
        }
        if let Some(v) = t.first_seen_utc {
            tv(o, param::FIRST_SEEN_UTC, &v.to_be_bytes());
        }
        if let Some(v) = t.last_seen_utc {
            tv(o, param::LAST_SEEN_UTC, &v.to_be_bytes());
        }
        if let Some(v) = t.seen_count {
            tv(o, param::TAG_SEEN_COUNT, &v.to_be_bytes());
        }
        Ok(())
    })
}
