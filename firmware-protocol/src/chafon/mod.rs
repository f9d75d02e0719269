//! UHF readers of the CHAFON / UHFReader18 / UHFReader288 family (and their many rebrands:
//! ZK-RFID102, HW-VX6330K, UR-series, E310 modules).
//!
//! Every frame, both ways, is
//!
//! ```text
//! host → reader:  Len Adr Cmd          Data[] CRC-lo CRC-hi
//! reader → host:  Len Adr reCmd Status Data[] CRC-lo CRC-hi
//! ```
//!
//! where Len counts the bytes after itself (so a frame is Len + 1 bytes, at most 256) and the
//! CRC is CRC-16/MCRF4XX (polynomial 0x8408 reflected, init 0xFFFF, no final xor) over Len up
//! to the last data byte, low byte first (UHFReader18 User's Manual V2.0 §3).
//!
//! There is no start byte, so resynchronisation leans on Len and the CRC: a Len below the
//! minimum (4 for commands, 5 for replies, which carry a status) drops one byte at once; a bad
//! CRC drops one byte; a frame whose CRC holds but whose data does not fit the command's layout
//! is a typed [`ChafonError::Malformed`] naming the field, and drops one byte too. A stray
//! large Len makes the decoder wait for up to 256 bytes before the CRC can reject it; use a
//! [`StreamDecoder`](crate::codec::StreamDecoder) of at least [`MAX_FRAME_LEN`]. Nothing is
//! lost meanwhile (the bytes stay buffered and are re-read one byte further on), but replies
//! come late. The manual's timing gives the daemon a faster way back: the bytes of one block
//! arrive less than 15 ms apart, so after a longer silence the daemon may
//! [`clear`](crate::codec::StreamDecoder::clear) its decoder, as Modbus RTU does with its
//! 3.5-character gap. The decoder itself never guesses a frame start from later bytes: with a
//! 16-bit CRC that guess would sometimes read a phantom frame out of a real one.
//!
//! The two reader generations answer inventory differently (see [`InventoryForm`]). The
//! decoder tells them apart by which layout consumes Data[] exactly. Both fit rarely, but one
//! case is common: the UHFReader288's empty reply on antenna 1 (`Ant=0x01, Num=0x00`) also
//! reads as a UHFReader18 reply with one empty EPC. [`decode_response`] therefore prefers the
//! UHFReader288 form when both fit — reading a phantom empty tag is worse than missing an
//! implausible one. A daemon that knows its reader model uses [`decode_response_as`] (or the
//! [`decode_response_reader18`] / [`decode_response_reader288`] function pointers for a
//! `StreamDecoder`), and then nothing is guessed. Scan-mode pushes (reCmd 0xEE, status 0x00)
//! follow the same rule.
//!
//! Sources for the layouts (public documents and code, paraphrased):
//! - UHFReader18 User's Manual V2.0, the same text as the ZK-RFID102 UHF RFID Reader User's
//!   Manual V2.0 (manualshive.com, zkhy/zk_rfid101): frame, status list, reader information
//!   (§8.4.1), set power (§8.4.6), set/get work mode (§8.4.9, §8.4.10), scan-mode output.
//! - UHF RFID Reader UR-SERIES User Manual v1.14 (manualshelf.com, sid/ur-008), the
//!   UHFReader288 protocol: inventory parameters and replies (§8.2.1), real-time mode pushes.
//! - wabson/chafon-rfid (`chafon_rfid/uhfreader288m.py`, `tests/test_uhfreader288.py`) and
//!   Timereversal/rfidtime (`transport/packet.go`): captured UHFReader288 replies.
//! - UHFReader288MP SDK header (`GetReaderInformation`): the 288's four extra info bytes.

mod frame;

pub use frame::{
    Command, CommandFrame, FirmwareVersion, Heartbeat, InventoryForm, InventoryParams,
    InventoryReply, InventoryStatus, MAX_COMMAND_DATA, MAX_MASK_BYTES, MAX_RESPONSE_DATA, MAX_TAGS,
    Mask, RawCommand, RawResponse, ReadMode, ReaderInfo, ReaderInfoExtension, Response,
    ResponseFrame, ScanReport, ScanTarget, Status, TagList, TagRecord, TidWindow, WorkModeReport,
    WorkModeSettings, antenna_from_mask,
};

use crate::codec::{BufferTooSmall, Decoded};
use crate::epc::{Epc, MAX_EPC_BYTES};

/// The longest frame on the wire: Len (at most 255) plus the Len byte itself.
pub const MAX_FRAME_LEN: usize = 256;

/// The smallest Len of a command: Adr, Cmd, CRC-lo, CRC-hi.
pub const MIN_COMMAND_LEN: u8 = 4;

/// The smallest Len of a reply: Adr, reCmd, Status, CRC-lo, CRC-hi.
pub const MIN_RESPONSE_LEN: u8 = 5;

/// The broadcast reader address: "255 is broadcast address".
pub const BROADCAST_ADDRESS: u8 = 0xFF;

/// Inventory ("Inventory", Cmd 0x01).
pub const CMD_INVENTORY: u8 = 0x01;
/// Get reader information (Cmd 0x21).
pub const CMD_READER_INFO: u8 = 0x21;
/// Set RF power (Cmd 0x2F, "Pwr: New power ... range is 0~30").
pub const CMD_SET_POWER: u8 = 0x2F;
/// Set antenna configuration (Cmd 0x3F, UHFReader288 family): one data byte, the mask of the
/// antennas the reader uses (bit 0 antenna 1 … bit 3 antenna 4); the reader information's
/// extension reports it back. Sent as a [`RawCommand`].
pub const CMD_SET_ANTENNAS: u8 = 0x3F;
/// Set work mode (Cmd 0x35, UHFReader18 family, six parameter bytes).
pub const CMD_SET_WORK_MODE: u8 = 0x35;
/// Get work mode (Cmd 0x36, UHFReader18 family).
pub const CMD_WORK_MODE: u8 = 0x36;
/// The reCmd of unsolicited scan-mode / real-time-mode pushes ("reCmd 0xee").
pub const RECMD_SCAN: u8 = 0xEE;

/// CRC-16/MCRF4XX: poly 0x8408 reflected, init 0xFFFF, no final xor.
const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MCRF4XX);

/// The frame CRC of `bytes` (Len up to the last data byte); sent low byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// Why bytes are not a frame of this protocol, or why a frame cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChafonError {
    /// The Len byte is below the minimum for this direction.
    #[error("frame length {len} below minimum {min}")]
    LengthTooSmall {
        /// The Len byte received.
        len: u8,
        /// The smallest valid Len.
        min: u8,
    },
    /// The CRC does not match the frame.
    #[error("crc mismatch: computed {computed:#06x}, received {received:#06x}")]
    BadCrc {
        /// The CRC computed over the frame.
        computed: u16,
        /// The CRC the frame carries.
        received: u16,
    },
    /// The CRC holds but a field does not fit the command's layout.
    #[error("malformed {field}")]
    Malformed {
        /// The field that failed.
        field: &'static str,
    },
    /// An inventory reply carries more tags than [`MAX_TAGS`].
    #[error("too many tags: {count} (at most 83)")]
    TooManyTags {
        /// The number of tags announced (or reached).
        count: usize,
    },
    /// The value would not fit one frame (Len at most 255).
    #[error("frame too long")]
    FrameTooLong,
}

/// The outcome of [`frame_at`]: the Len and the Adr..Data bytes of a CRC-checked frame.
struct RawFrame<'a> {
    body: &'a [u8],
}

/// Finds a CRC-checked frame at the start of `buf`.
fn frame_at(buf: &[u8], min_len: u8) -> Decoded<RawFrame<'_>, ChafonError> {
    let Some(&len) = buf.first() else {
        return Decoded::NeedMore;
    };
    if len < min_len {
        return Decoded::Invalid {
            error: ChafonError::LengthTooSmall { len, min: min_len },
            skip: 1,
        };
    }
    let total = len as usize + 1;
    let Some(frame) = buf.get(..total) else {
        return Decoded::NeedMore;
    };
    let (covered, crc) = frame.split_at(total - 2);
    let received = u16::from_le_bytes([crc[0], crc[1]]);
    let computed = crc16(covered);
    if computed != received {
        return Decoded::Invalid {
            error: ChafonError::BadCrc { computed, received },
            skip: 1,
        };
    }
    Decoded::Frame {
        frame: RawFrame {
            body: &covered[1..],
        },
        len: total,
    }
}

/// A reader over Data[] that names the field it fails on and rejects trailing bytes.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ChafonError> {
        let (&first, rest) = self
            .rest
            .split_first()
            .ok_or(ChafonError::Malformed { field })?;
        self.rest = rest;
        Ok(first)
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ChafonError> {
        if self.rest.len() < n {
            return Err(ChafonError::Malformed { field });
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ChafonError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn epc(&mut self, len: usize, field: &'static str) -> Result<Epc, ChafonError> {
        if len > MAX_EPC_BYTES {
            return Err(ChafonError::Malformed { field });
        }
        Epc::new(self.take(len, field)?).map_err(|_| ChafonError::Malformed { field })
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn finish(self, field: &'static str) -> Result<(), ChafonError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ChafonError::Malformed { field })
        }
    }
}

/// Decodes a host command at the start of `buf` (what a simulated reader reads).
pub fn decode_command(buf: &[u8]) -> Decoded<CommandFrame, ChafonError> {
    match frame_at(buf, MIN_COMMAND_LEN) {
        Decoded::Frame { frame, len } => {
            let (address, code, data) = (frame.body[0], frame.body[1], &frame.body[2..]);
            match parse_command(code, data) {
                Ok(command) => Decoded::Frame {
                    frame: CommandFrame { address, command },
                    len,
                },
                Err(error) => Decoded::Invalid { error, skip: 1 },
            }
        }
        Decoded::NeedMore => Decoded::NeedMore,
        Decoded::Invalid { error, skip } => Decoded::Invalid { error, skip },
    }
}

fn parse_command(code: u8, data: &[u8]) -> Result<Command, ChafonError> {
    let mut c = Cursor::new(data);
    let command = match code {
        CMD_INVENTORY if data.is_empty() => Command::Inventory { params: None },
        CMD_INVENTORY => {
            return parse_inventory_params(data).map(|p| Command::Inventory { params: Some(p) });
        }
        CMD_READER_INFO => Command::ReaderInfo,
        CMD_SET_POWER => Command::SetPower {
            dbm: c.u8("power")?,
        },
        CMD_SET_WORK_MODE => Command::SetWorkMode(work_mode_settings(&mut c)?),
        CMD_WORK_MODE => Command::WorkMode,
        other => return RawCommand::new(other, data).map(Command::Other),
    };
    c.finish("command data")?;
    Ok(command)
}

fn work_mode_settings(c: &mut Cursor<'_>) -> Result<WorkModeSettings, ChafonError> {
    let [
        read_mode,
        mode_state,
        mem_inven,
        first_address,
        word_count,
        tag_time,
    ] = c.array::<6>("work mode")?;
    Ok(WorkModeSettings {
        read_mode,
        mode_state,
        mem_inven,
        first_address,
        word_count,
        tag_time,
    })
}

/// The optional groups after QValue and Session, in the order they are tried: the first
/// layout that consumes the parameters exactly wins. The mask-and-target layout comes first:
/// it is what the vendor SDKs send (wabson/chafon-rfid `G2InventoryCommand`).
const INVENTORY_LAYOUTS: [(bool, bool, bool); 8] = [
    // (mask, tid, scan target)
    (true, false, true),
    (false, false, true),
    (true, false, false),
    (false, false, false),
    (true, true, true),
    (false, true, true),
    (true, true, false),
    (false, true, false),
];

/// Parses the UHFReader288 inventory parameters.
///
/// Only one byte pattern fits two layouts: five bytes after QValue/Session whose fourth byte
/// is 1..=8 read both as a mask of up to 8 bits and as a TID window plus target with antenna
/// code 1..=8 — an antenna code the manual reserves (valid codes are 0x80..=0x87). The mask
/// wins, by the order above.
fn parse_inventory_params(data: &[u8]) -> Result<InventoryParams, ChafonError> {
    let mut c = Cursor::new(data);
    let q_value = c.u8("q value")?;
    let session = c.u8("session")?;
    let rest = c.rest;
    INVENTORY_LAYOUTS
        .iter()
        .find_map(|&(mask, tid, scan)| {
            inventory_layout(q_value, session, rest, mask, tid, scan).ok()
        })
        .ok_or(ChafonError::Malformed {
            field: "inventory parameters",
        })
}

fn inventory_layout(
    q_value: u8,
    session: u8,
    rest: &[u8],
    with_mask: bool,
    with_tid: bool,
    with_scan: bool,
) -> Result<InventoryParams, ChafonError> {
    let mut c = Cursor::new(rest);
    let mask = if with_mask {
        let memory = c.u8("mask memory")?;
        let bit_address = u16::from_be_bytes(c.array::<2>("mask address")?);
        let bit_len = c.u8("mask length")?;
        let data = c.take(Mask::data_len_for(bit_len), "mask data")?;
        Some(Mask::new(memory, bit_address, bit_len, data)?)
    } else {
        None
    };
    let tid = if with_tid {
        let [word_address, word_count] = c.array::<2>("tid window")?;
        Some(TidWindow {
            word_address,
            word_count,
        })
    } else {
        None
    };
    let scan = if with_scan {
        let [target, antenna, scan_time] = c.array::<3>("scan target")?;
        Some(ScanTarget {
            target,
            antenna,
            scan_time,
        })
    } else {
        None
    };
    c.finish("inventory parameters")?;
    Ok(InventoryParams {
        q_value,
        session,
        mask,
        tid,
        scan,
    })
}

/// Decodes a reader reply at the start of `buf`, telling the inventory forms apart by which
/// one consumes the data exactly and preferring the UHFReader288 form when both do (see the
/// module documentation).
pub fn decode_response(buf: &[u8]) -> Decoded<ResponseFrame, ChafonError> {
    decode_response_with(buf, None)
}

/// Decodes a reader reply at the start of `buf` as a reader of the given form sends it.
pub fn decode_response_as(buf: &[u8], form: InventoryForm) -> Decoded<ResponseFrame, ChafonError> {
    decode_response_with(buf, Some(form))
}

/// [`decode_response_as`] for a UHFReader18-form reader, as a function pointer for
/// [`StreamDecoder`](crate::codec::StreamDecoder).
pub fn decode_response_reader18(buf: &[u8]) -> Decoded<ResponseFrame, ChafonError> {
    decode_response_as(buf, InventoryForm::Reader18)
}

/// [`decode_response_as`] for a UHFReader288-form reader, as a function pointer for
/// [`StreamDecoder`](crate::codec::StreamDecoder).
pub fn decode_response_reader288(buf: &[u8]) -> Decoded<ResponseFrame, ChafonError> {
    decode_response_as(buf, InventoryForm::Reader288)
}

fn decode_response_with(
    buf: &[u8],
    form: Option<InventoryForm>,
) -> Decoded<ResponseFrame, ChafonError> {
    match frame_at(buf, MIN_RESPONSE_LEN) {
        Decoded::Frame { frame, len } => {
            let body = frame.body;
            let (address, code, status, data) =
                (body[0], body[1], Status::from_byte(body[2]), &body[3..]);
            match parse_response(code, status, data, form) {
                Ok(response) => Decoded::Frame {
                    frame: ResponseFrame { address, response },
                    len,
                },
                Err(error) => Decoded::Invalid { error, skip: 1 },
            }
        }
        Decoded::NeedMore => Decoded::NeedMore,
        Decoded::Invalid { error, skip } => Decoded::Invalid { error, skip },
    }
}

fn parse_response(
    code: u8,
    status: Status,
    data: &[u8],
    form: Option<InventoryForm>,
) -> Result<Response, ChafonError> {
    if data.is_empty() {
        return Ok(Response::Ack {
            command: code,
            status,
        });
    }
    match (code, status, InventoryStatus::from_status(status)) {
        (RECMD_SCAN, _, _) => parse_scan(status, data, form),
        (CMD_INVENTORY, _, Some(status)) => {
            parse_inventory(status, data, form).map(Response::Inventory)
        }
        (CMD_READER_INFO, Status::Success, _) => parse_reader_info(data).map(Response::ReaderInfo),
        (CMD_WORK_MODE, Status::Success, _) => {
            let mut c = Cursor::new(data);
            let wiegand = c.array::<4>("work mode")?;
            let settings = work_mode_settings(&mut c)?;
            let [accuracy, offset_time] = c.array::<2>("work mode")?;
            c.finish("work mode")?;
            Ok(Response::WorkMode(WorkModeReport {
                wiegand,
                settings,
                accuracy,
                offset_time,
            }))
        }
        _ => RawResponse::new(code, status, data).map(Response::Other),
    }
}

fn parse_reader_info(data: &[u8]) -> Result<ReaderInfo, ChafonError> {
    let mut c = Cursor::new(data);
    let [
        firmware_major,
        firmware_minor,
        reader_type,
        protocols,
        max_frequency,
        min_frequency,
        power_dbm,
        scan_time,
    ] = c.array::<8>("reader info")?;
    let extension = match c.remaining() {
        0 => None,
        _ => {
            let [antenna, beep, output_rep, check_antenna] = c.array::<4>("reader info")?;
            Some(ReaderInfoExtension {
                antenna,
                beep,
                output_rep,
                check_antenna,
            })
        }
    };
    c.finish("reader info")?;
    Ok(ReaderInfo {
        firmware_major,
        firmware_minor,
        reader_type,
        protocols,
        max_frequency,
        min_frequency,
        power_dbm,
        scan_time,
        extension,
    })
}

fn parse_inventory(
    status: InventoryStatus,
    data: &[u8],
    form: Option<InventoryForm>,
) -> Result<InventoryReply, ChafonError> {
    match form {
        Some(InventoryForm::Reader18) => inventory_18(status, data),
        Some(InventoryForm::Reader288) => inventory_288(status, data),
        None => match (inventory_288(status, data), inventory_18(status, data)) {
            (Ok(reply), _) | (Err(_), Ok(reply)) => Ok(reply),
            (Err(e @ ChafonError::TooManyTags { .. }), _)
            | (_, Err(e @ ChafonError::TooManyTags { .. })) => Err(e),
            (Err(_), Err(_)) => Err(ChafonError::Malformed { field: "tag list" }),
        },
    }
}

/// UHFReader18 form: `Num, Num × (EPC len, EPC)`.
fn inventory_18(status: InventoryStatus, data: &[u8]) -> Result<InventoryReply, ChafonError> {
    let mut c = Cursor::new(data);
    let count = c.u8("tag count")? as usize;
    if count > MAX_TAGS {
        return Err(ChafonError::TooManyTags { count });
    }
    let mut reply = InventoryReply::reader18(status);
    for _ in 0..count {
        let len = c.u8("epc length")? as usize;
        reply.push(c.epc(len, "epc")?, 0)?;
    }
    c.finish("tag list")?;
    Ok(reply)
}

/// UHFReader288 form: `Ant, Num, Num × (EPC len, EPC, RSSI)`.
fn inventory_288(status: InventoryStatus, data: &[u8]) -> Result<InventoryReply, ChafonError> {
    let mut c = Cursor::new(data);
    let antenna_mask = c.u8("antenna")?;
    let count = c.u8("tag count")? as usize;
    if count > MAX_TAGS {
        return Err(ChafonError::TooManyTags { count });
    }
    let mut reply = InventoryReply::reader288(status, antenna_mask);
    for _ in 0..count {
        let len = c.u8("epc length")? as usize;
        let epc = c.epc(len, "epc")?;
        reply.push(epc, c.u8("rssi")?)?;
    }
    c.finish("tag list")?;
    Ok(reply)
}

/// Scan-mode pushes (reCmd 0xEE).
fn parse_scan(
    status: Status,
    data: &[u8],
    form: Option<InventoryForm>,
) -> Result<Response, ChafonError> {
    match status {
        Status::Heartbeat => {
            let mut c = Cursor::new(data);
            let packet_number = u32::from_be_bytes(c.array::<4>("heartbeat")?);
            let antenna_status = c.array::<8>("heartbeat")?;
            let total_count = u32::from_be_bytes(c.array::<4>("heartbeat")?);
            c.finish("heartbeat")?;
            Ok(Response::Scan(ScanReport::Heartbeat(Heartbeat {
                packet_number,
                antenna_status,
                total_count,
            })))
        }
        Status::Success => {
            let report = match form {
                Some(InventoryForm::Reader18) => scan_18(data)?,
                Some(InventoryForm::Reader288) => scan_288(data)?,
                None => scan_288(data).or_else(|_| scan_18(data))?,
            };
            Ok(Response::Scan(report))
        }
        _ => RawResponse::new(RECMD_SCAN, status, data).map(Response::Other),
    }
}

/// UHFReader18 scan mode: Data[] is the bare EPC.
fn scan_18(data: &[u8]) -> Result<ScanReport, ChafonError> {
    let mut c = Cursor::new(data);
    let epc = c.epc(data.len(), "scan epc")?;
    c.finish("scan epc")?;
    Ok(ScanReport::tag18(epc))
}

/// UHFReader288 real-time mode: `Ant, len, EPC, RSSI`.
fn scan_288(data: &[u8]) -> Result<ScanReport, ChafonError> {
    let mut c = Cursor::new(data);
    let antenna_mask = c.u8("scan antenna")?;
    let len = c.u8("scan epc length")? as usize;
    let epc = c.epc(len, "scan epc")?;
    let rssi = c.u8("scan rssi")?;
    c.finish("scan epc")?;
    Ok(ScanReport::tag288(antenna_mask, epc, rssi))
}

/// Writes a frame into a caller's buffer, counting what does not fit.
struct Sink<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl Sink<'_> {
    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.out.get_mut(self.pos) {
            *slot = byte;
        }
        self.pos += 1;
    }

    fn put_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(b);
        }
    }

    /// Fills in Len and appends the CRC; `self.pos` is the frame length without the CRC.
    fn finish(self) -> Result<usize, BufferTooSmall> {
        let total = self.pos + 2;
        if total > self.out.len() {
            return Err(BufferTooSmall { needed: total });
        }
        // Invariant: every typed value is bounded by its constructor (raw data at most
        // 250/251 bytes, inventory replies checked against Len 255, EPCs at most 62 bytes),
        // so Len = total - 1 never exceeds 255.
        self.out[0] = u8::try_from(total - 1).expect("frame length bounded by construction");
        let crc = crc16(&self.out[..self.pos]);
        self.out[self.pos..total].copy_from_slice(&crc.to_le_bytes());
        Ok(total)
    }
}

/// Encodes a host command into `out`; returns the frame length.
pub fn encode_command(frame: &CommandFrame, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Sink { out, pos: 0 };
    w.put(0); // Len, filled in by finish
    w.put(frame.address);
    match &frame.command {
        Command::Inventory { params } => {
            w.put(CMD_INVENTORY);
            if let Some(p) = params {
                w.put_all(&[p.q_value, p.session]);
                if let Some(mask) = &p.mask {
                    w.put(mask.memory());
                    w.put_all(&mask.bit_address().to_be_bytes());
                    w.put(mask.bit_len());
                    w.put_all(mask.data());
                }
                if let Some(tid) = &p.tid {
                    w.put_all(&[tid.word_address, tid.word_count]);
                }
                if let Some(scan) = &p.scan {
                    w.put_all(&[scan.target, scan.antenna, scan.scan_time]);
                }
            }
        }
        Command::ReaderInfo => w.put(CMD_READER_INFO),
        Command::SetPower { dbm } => w.put_all(&[CMD_SET_POWER, *dbm]),
        Command::SetWorkMode(s) => {
            w.put(CMD_SET_WORK_MODE);
            put_work_mode(&mut w, s);
        }
        Command::WorkMode => w.put(CMD_WORK_MODE),
        Command::Other(raw) => {
            w.put(raw.command());
            w.put_all(raw.data());
        }
    }
    w.finish()
}

fn put_work_mode(w: &mut Sink<'_>, s: &WorkModeSettings) {
    w.put_all(&[
        s.read_mode,
        s.mode_state,
        s.mem_inven,
        s.first_address,
        s.word_count,
        s.tag_time,
    ]);
}

/// Encodes a reader reply into `out` (what a simulated reader writes); returns the frame
/// length.
///
/// Encoding then decoding (with [`decode_response_as`] in the reply's own form, or with
/// [`decode_response`] for UHFReader288-form and form-less replies) gives the reply back,
/// provided [`Response::Other`] holds a reply no typed rule claims (see [`Response`]).
pub fn encode_response(frame: &ResponseFrame, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let mut w = Sink { out, pos: 0 };
    w.put(0); // Len, filled in by finish
    w.put(frame.address);
    w.put(frame.response.command());
    w.put(frame.response.status().byte());
    match &frame.response {
        Response::Inventory(reply) => {
            if let Some(mask) = reply.antenna_mask() {
                w.put(mask);
            }
            // Invariant: InventoryReply holds at most MAX_TAGS (83) tags.
            w.put(u8::try_from(reply.tags().len()).expect("at most 83 tags"));
            for tag in reply.tags() {
                put_epc(&mut w, &tag.epc);
                if reply.antenna_mask().is_some() {
                    w.put(tag.rssi.unwrap_or(0));
                }
            }
        }
        Response::ReaderInfo(info) => {
            w.put_all(&[
                info.firmware_major,
                info.firmware_minor,
                info.reader_type,
                info.protocols,
                info.max_frequency,
                info.min_frequency,
                info.power_dbm,
                info.scan_time,
            ]);
            if let Some(x) = &info.extension {
                w.put_all(&[x.antenna, x.beep, x.output_rep, x.check_antenna]);
            }
        }
        Response::WorkMode(report) => {
            w.put_all(&report.wiegand);
            put_work_mode(&mut w, &report.settings);
            w.put_all(&[report.accuracy, report.offset_time]);
        }
        Response::Scan(ScanReport::Tag {
            antenna_mask: None,
            tag,
        }) => w.put_all(tag.epc.as_bytes()),
        Response::Scan(ScanReport::Tag {
            antenna_mask: Some(mask),
            tag,
        }) => {
            w.put(*mask);
            put_epc(&mut w, &tag.epc);
            w.put(tag.rssi.unwrap_or(0));
        }
        Response::Scan(ScanReport::Heartbeat(h)) => {
            w.put_all(&h.packet_number.to_be_bytes());
            w.put_all(&h.antenna_status);
            w.put_all(&h.total_count.to_be_bytes());
        }
        Response::Ack { .. } => {}
        Response::Other(raw) => w.put_all(raw.data()),
    }
    w.finish()
}

/// Writes an EPC length byte and the EPC.
fn put_epc(w: &mut Sink<'_>, epc: &Epc) {
    // Invariant: Epc holds at most MAX_EPC_BYTES (62) bytes.
    w.put(u8::try_from(epc.len()).expect("epc at most 62 bytes"));
    w.put_all(epc.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::StreamDecoder;
    use proptest::prelude::*;

    // Lines of /work/shared/vectors/uhf-chafon.txt, verbatim.
    const INVENTORY_ADDR0: &str = "04 00 01 DB 4B";
    const INVENTORY_BROADCAST: &str = "04 FF 01 1B B4";
    const READER_INFO_REQUEST: &str = "04 00 21 D9 6A";
    const SET_POWER_30: &str = "05 00 2F 1E 72 34";
    const REAL_READER_INFO: &str = "11 00 21 00 00 16 0C 03 4E 00 1E 0A 01 00 00 00 E6 51";
    const REAL_INVENTORY_18: &str = "13 00 01 03 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 3F 39";
    const REAL_INVENTORY_288: &str =
        "15 00 01 03 01 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 6B B1 A5";
    const REAL_INVENTORY_288_EMPTY: &str = "07 00 01 01 01 00 1E 4B";
    const BAD_CRC: &str = "15 00 01 03 01 01 0C 00 00 00 00 00 00 00 00 00 00 03 13 6B B1 A6";

    // Captured UHFReader288 replies published with wabson/chafon-rfid
    // (tests/test_uhfreader288.py) and Timereversal/rfidtime (transport/packet.go).
    const PUBLIC_ANTENNA_3: &str = "1500010304010c49440000000000000a0003346425c0";
    const PUBLIC_SHORT_EPC: &str = "0d000103010104003230386da3d2";
    const PUBLIC_TWO_TAGS: &str =
        "2300010301020c0000000000000000000003136b0c0000000000000000000003146c70f2";
    const PUBLIC_RFIDTIME: &str = "0d000103010104111001ba465d27";

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks_exact(2)
            .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn epc(text: &str) -> Epc {
        Epc::from_hex(text).unwrap()
    }

    /// Appends Len-covered CRC to `Len Adr ...` bytes.
    fn with_crc(mut bytes: Vec<u8>) -> Vec<u8> {
        let crc = crc16(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn command_bytes(frame: &CommandFrame) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = encode_command(frame, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn response_bytes(frame: &ResponseFrame) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = encode_response(frame, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn decoded_response(bytes: &[u8], form: Option<InventoryForm>) -> ResponseFrame {
        let outcome = match form {
            None => decode_response(bytes),
            Some(form) => decode_response_as(bytes, form),
        };
        match outcome {
            Decoded::Frame { frame, len } => {
                assert_eq!(len, bytes.len());
                frame
            }
            other => panic!("not a frame: {other:?}"),
        }
    }

    fn reply(response: &Response) -> &InventoryReply {
        match response {
            Response::Inventory(reply) => reply,
            other => panic!("not an inventory reply: {other:?}"),
        }
    }

    /// Pushes `bytes` cut at `splits` through a StreamDecoder and collects every outcome.
    fn stream<F, E>(
        decode: fn(&[u8]) -> Decoded<F, E>,
        bytes: &[u8],
        splits: &[usize],
    ) -> (Vec<Result<F, E>>, StreamDecoder<F, E>) {
        let mut d = StreamDecoder::new(decode, MAX_FRAME_LEN);
        let mut cuts: Vec<usize> = splits.iter().map(|s| s % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for cut in cuts {
            while at < cut {
                at += d.push(&bytes[at..cut]);
                while let Some(r) = d.next_frame() {
                    out.push(r);
                }
            }
        }
        (out, d)
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc16(b"123456789"), 0x6F91);
    }

    #[test]
    fn host_command_vectors() {
        let cases = [
            (INVENTORY_ADDR0, 0x00, Command::Inventory { params: None }),
            (
                INVENTORY_BROADCAST,
                BROADCAST_ADDRESS,
                Command::Inventory { params: None },
            ),
            (READER_INFO_REQUEST, 0x00, Command::ReaderInfo),
            (SET_POWER_30, 0x00, Command::SetPower { dbm: 30 }),
        ];
        for (text, address, command) in cases {
            let bytes = hex(text);
            let frame = CommandFrame { address, command };
            assert_eq!(
                decode_command(&bytes),
                Decoded::Frame {
                    frame,
                    len: bytes.len()
                },
                "{text}"
            );
            assert_eq!(command_bytes(&frame), bytes, "{text}");
        }
    }

    #[test]
    fn real_reader_info() {
        let bytes = hex(REAL_READER_INFO);
        let frame = decoded_response(&bytes, None);
        let Response::ReaderInfo(info) = frame.response else {
            panic!("not reader info: {frame:?}")
        };
        assert_eq!(frame.address, 0x00);
        assert_eq!(info.firmware_version().to_string(), "0.22");
        assert_eq!(info.reader_type, 0x0C);
        assert_eq!(info.protocols, 0x03);
        assert!(info.supports_iso18000_6c() && info.supports_iso18000_6b());
        assert_eq!((info.max_frequency, info.min_frequency), (0x4E, 0x00));
        assert_eq!(
            (info.band(), info.max_channel(), info.min_channel()),
            (0b0100, 14, 0)
        );
        assert_eq!(info.power_dbm, 30);
        assert_eq!(info.scan_time, 0x0A);
        assert_eq!(
            info.extension,
            Some(ReaderInfoExtension {
                antenna: 0x01,
                beep: 0,
                output_rep: 0,
                check_antenna: 0
            })
        );
        assert_eq!(response_bytes(&frame), bytes);
    }

    #[test]
    fn real_inventory_reader18_form() {
        let bytes = hex(REAL_INVENTORY_18);
        let frame = decoded_response(&bytes, None);
        assert_eq!(
            decoded_response(&bytes, Some(InventoryForm::Reader18)),
            frame
        );
        let reply = reply(&frame.response);
        assert_eq!(reply.form(), InventoryForm::Reader18);
        assert_eq!(reply.status(), InventoryStatus::MoreData);
        assert_eq!(reply.antenna_mask(), None);
        assert_eq!(
            reply.tags(),
            [TagRecord::reader18(epc("000000000000000000000313"))]
        );
        assert_eq!(response_bytes(&frame), bytes);
        // Read as a 288 (antenna 0x01, 12 tags), the tags run past the data.
        assert_eq!(
            decode_response_as(&bytes, InventoryForm::Reader288),
            Decoded::Invalid {
                error: ChafonError::Malformed { field: "epc" },
                skip: 1
            }
        );
    }

    #[test]
    fn real_inventory_reader288_form() {
        let bytes = hex(REAL_INVENTORY_288);
        let frame = decoded_response(&bytes, None);
        assert_eq!(
            decoded_response(&bytes, Some(InventoryForm::Reader288)),
            frame
        );
        let reply = reply(&frame.response);
        assert_eq!(reply.form(), InventoryForm::Reader288);
        assert_eq!(reply.status(), InventoryStatus::MoreData);
        assert_eq!(reply.antenna_mask(), Some(0x01));
        let tag = TagRecord {
            epc: epc("000000000000000000000313"),
            rssi: Some(0x6B),
            antenna: Some(1),
        };
        assert_eq!(reply.tags(), [tag]);
        assert_eq!(response_bytes(&frame), bytes);
    }

    #[test]
    fn real_empty_reader288_reply_prefers_288_when_ambiguous() {
        let bytes = hex(REAL_INVENTORY_288_EMPTY);
        let frame = decoded_response(&bytes, None);
        let auto = reply(&frame.response);
        assert_eq!(auto.form(), InventoryForm::Reader288);
        assert_eq!(auto.status(), InventoryStatus::Done);
        assert_eq!(auto.antenna_mask(), Some(0x01));
        assert!(auto.tags().is_empty());
        assert_eq!(response_bytes(&frame), bytes);
        // The same bytes are a UHFReader18 reply with one empty EPC: the documented ambiguity.
        let as18 = decoded_response(&bytes, Some(InventoryForm::Reader18));
        assert_eq!(reply(&as18.response).tags(), [TagRecord::reader18(epc(""))]);
    }

    #[test]
    fn bad_crc_line_is_rejected_and_the_next_frame_found() {
        let bad = hex(BAD_CRC);
        let error = ChafonError::BadCrc {
            computed: 0xA5B1,
            received: 0xA6B1,
        };
        assert_eq!(decode_response(&bad), Decoded::Invalid { error, skip: 1 });
        // The reader goes on answering: the bad frame is followed by good ones. Its CRC byte
        // 0xB1, read as Len, makes the decoder wait for 178 bytes before that CRC can fail
        // too; once they have arrived every good frame is found, none lost.
        let good = hex(REAL_INVENTORY_288);
        let mut bytes = bad.clone();
        for _ in 0..9 {
            bytes.extend_from_slice(&good);
        }
        let (out, d) = stream(decode_response, &bytes, &[]);
        assert_eq!(out.first(), Some(&Err(error)));
        let good_frame = decoded_response(&good, None);
        let found: Vec<_> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(found, vec![&good_frame; 9]);
        assert_eq!(d.dropped_bytes(), bad.len() as u64);
    }

    #[test]
    fn public_reader288_captures() {
        let frame = decoded_response(&hex(PUBLIC_ANTENNA_3), None);
        let r = reply(&frame.response);
        assert_eq!(r.antenna_mask(), Some(0x04));
        assert_eq!(
            r.tags(),
            [TagRecord {
                epc: epc("49440000000000000a000334"),
                rssi: Some(0x64),
                antenna: Some(3)
            }]
        );

        let frame = decoded_response(&hex(PUBLIC_SHORT_EPC), None);
        assert_eq!(reply(&frame.response).tags()[0].epc, epc("00323038"));

        let frame = decoded_response(&hex(PUBLIC_TWO_TAGS), None);
        let r = reply(&frame.response);
        assert_eq!(r.tags().len(), 2);
        assert_eq!(
            (r.tags()[0].epc, r.tags()[0].rssi),
            (epc("000000000000000000000313"), Some(0x6B))
        );
        assert_eq!(
            (r.tags()[1].epc, r.tags()[1].rssi),
            (epc("000000000000000000000314"), Some(0x6C))
        );

        let frame = decoded_response(&hex(PUBLIC_RFIDTIME), None);
        assert_eq!(reply(&frame.response).tags()[0].epc, epc("111001ba"));
        for text in [
            PUBLIC_ANTENNA_3,
            PUBLIC_SHORT_EPC,
            PUBLIC_TWO_TAGS,
            PUBLIC_RFIDTIME,
        ] {
            assert_eq!(
                response_bytes(&decoded_response(&hex(text), None)),
                hex(text),
                "{text}"
            );
        }
    }

    fn decoded_params(data: &str) -> InventoryParams {
        let mut bytes = vec![0, 0xFF, CMD_INVENTORY];
        bytes.extend(hex(data));
        bytes[0] = (bytes.len() + 1) as u8;
        let bytes = with_crc(bytes);
        match decode_command(&bytes) {
            Decoded::Frame {
                frame:
                    CommandFrame {
                        command: Command::Inventory { params: Some(p) },
                        ..
                    },
                ..
            } => {
                assert_eq!(
                    command_bytes(&CommandFrame {
                        address: 0xFF,
                        command: Command::Inventory { params: Some(p) }
                    }),
                    bytes
                );
                p
            }
            other => panic!("{data}: {other:?}"),
        }
    }

    #[test]
    fn reader288_inventory_parameters() {
        // wabson/chafon-rfid G2InventoryCommand defaults: Q 15, S0, mask EPC bank of 0 bits,
        // target A, antenna 1 (0x80), 2 s.
        let p = decoded_params("0f 00 01 00 00 00 00 80 14");
        assert_eq!((p.q_value, p.session, p.tid), (0x0F, 0x00, None));
        assert_eq!(p.mask, Some(Mask::new(0x01, 0, 0, &[]).unwrap()));
        assert_eq!(p.scan, Some(ScanTarget::antenna(1, 0x14)));
        // Same layout with other values (wabson test_inventory_command).
        let p = decoded_params("02 01 02 00 00 00 01 80 03");
        assert_eq!(
            p.scan,
            Some(ScanTarget {
                target: 1,
                antenna: 0x80,
                scan_time: 3
            })
        );
        // Q and session only.
        assert_eq!(decoded_params("04 00"), InventoryParams::new(4, 0));
        // Target/antenna/time without a mask.
        let p = decoded_params("04 01 00 83 0A");
        assert_eq!(
            (p.mask, p.scan),
            (
                None,
                Some(ScanTarget {
                    target: 0,
                    antenna: 0x83,
                    scan_time: 10
                })
            )
        );
        // A 12-bit mask at bit 0x20 of the EPC bank, a TID window, and the target.
        let p = decoded_params("04 00 01 00 20 0C 30 10 00 06 00 80 0A");
        let mask = p.mask.unwrap();
        assert_eq!(
            (
                mask.memory(),
                mask.bit_address(),
                mask.bit_len(),
                mask.data()
            ),
            (1, 0x20, 12, &[0x30, 0x10][..])
        );
        assert_eq!(
            p.tid,
            Some(TidWindow {
                word_address: 0,
                word_count: 6
            })
        );
        // TID window alone.
        assert_eq!(
            decoded_params("04 00 00 06").tid,
            Some(TidWindow {
                word_address: 0,
                word_count: 6
            })
        );
    }

    #[test]
    fn reserved_antenna_code_makes_the_mask_reading_win() {
        // TID window + target with antenna code 0x05 (reserved) reads as an 8-bit mask.
        let p = decoded_params("04 00 00 06 00 05 0A");
        assert_eq!(p.mask, Some(Mask::new(0x00, 0x0600, 5, &[0x0A]).unwrap()));
        assert_eq!((p.tid, p.scan), (None, None));
    }

    #[test]
    fn malformed_commands_name_the_field() {
        let cases = [
            ("04 00 2F", ChafonError::Malformed { field: "power" }),
            (
                "04 00 2F 1E 01",
                ChafonError::Malformed {
                    field: "command data",
                },
            ),
            (
                "04 00 21 00",
                ChafonError::Malformed {
                    field: "command data",
                },
            ),
            (
                "04 00 35 01 02 04",
                ChafonError::Malformed { field: "work mode" },
            ),
            ("04 00 01 04", ChafonError::Malformed { field: "session" }),
            (
                "04 00 01 04 00 01",
                ChafonError::Malformed {
                    field: "inventory parameters",
                },
            ),
        ];
        for (text, error) in cases {
            let mut bytes = hex(text);
            bytes[0] = (bytes.len() + 1) as u8;
            let bytes = with_crc(bytes);
            assert_eq!(
                decode_command(&bytes),
                Decoded::Invalid { error, skip: 1 },
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_command_is_kept_raw() {
        // Set frequency region (0x22), which this module does not type.
        let bytes = with_crc(hex("06 00 22 31 80"));
        let raw = RawCommand::new(0x22, &[0x31, 0x80]).unwrap();
        let frame = CommandFrame {
            address: 0,
            command: Command::Other(raw),
        };
        assert_eq!(decode_command(&bytes), Decoded::Frame { frame, len: 7 });
        assert_eq!(command_bytes(&frame), bytes);
    }

    #[test]
    fn work_mode_commands_and_reply() {
        let set = CommandFrame {
            address: 0,
            command: Command::SetWorkMode(WorkModeSettings::SCAN_EPC),
        };
        let bytes = command_bytes(&set);
        assert_eq!(bytes[..9], hex("0A 00 35 01 02 04 00 01 00")[..]);
        assert_eq!(
            decode_command(&bytes),
            Decoded::Frame {
                frame: set,
                len: 11
            }
        );
        assert_eq!(WorkModeSettings::SCAN_EPC.mode(), ReadMode::Scan);
        assert_eq!(WorkModeSettings::ANSWER.mode(), ReadMode::Answer);

        // "0x11 0xXX 0x36 0x00 Wg_mode ... OffsetTime": 12 data bytes.
        let bytes = with_crc(hex("11 00 36 00 00 1E 0A 0F 01 02 04 00 01 00 05 06"));
        let frame = decoded_response(&bytes, None);
        let Response::WorkMode(report) = frame.response else {
            panic!("{frame:?}")
        };
        assert_eq!(report.wiegand, [0x00, 0x1E, 0x0A, 0x0F]);
        assert_eq!(report.settings, WorkModeSettings::SCAN_EPC);
        assert_eq!((report.accuracy, report.offset_time), (5, 6));
        assert_eq!(response_bytes(&frame), bytes);
    }

    #[test]
    fn status_only_replies_are_acks() {
        for (text, command, status) in [
            ("05 00 2F 00", CMD_SET_POWER, Status::Success),
            ("05 00 01 FB", CMD_INVENTORY, Status::NoTag),
            ("05 00 21 FE", CMD_READER_INFO, Status::IllegalCommand),
            ("05 00 01 F8", CMD_INVENTORY, Status::AntennaError),
            // UHFReader18 scan mode with Mem_Inven 0x06: "reCmd 0xee, Status 0xee", no data.
            ("05 00 EE EE", RECMD_SCAN, Status::EasAlarm),
        ] {
            let bytes = with_crc(hex(text));
            let frame = decoded_response(&bytes, None);
            assert_eq!(frame.response, Response::Ack { command, status }, "{text}");
            assert_eq!(response_bytes(&frame), bytes, "{text}");
        }
    }

    #[test]
    fn scan_mode_pushes() {
        // UHFReader288 real-time mode: Ant, len, EPC, RSSI.
        let push = ResponseFrame {
            address: 0,
            response: Response::Scan(ScanReport::tag288(0x02, epc("E2003412"), 0x55)),
        };
        let bytes = response_bytes(&push);
        assert_eq!(bytes[..11], hex("0C 00 EE 00 02 04 E2 00 34 12 55")[..]);
        assert_eq!(decoded_response(&bytes, None), push);
        let Response::Scan(ScanReport::Tag { tag, .. }) = push.response else {
            unreachable!()
        };
        assert_eq!(tag.antenna, Some(2));

        // UHFReader18 scan mode: the bare EPC.
        let push = ResponseFrame {
            address: 0,
            response: Response::Scan(ScanReport::tag18(epc("300833B2DDD9014000000000"))),
        };
        let bytes = response_bytes(&push);
        assert_eq!(bytes[..5], hex("11 00 EE 00 30")[..]);
        assert_eq!(
            decoded_response(&bytes, Some(InventoryForm::Reader18)),
            push
        );

        // Heartbeat: PacketNo, AntStatus, TotalCount.
        let bytes = with_crc(hex(
            "15 00 EE 28 00 00 01 02 01 00 00 00 00 00 00 00 00 00 00 07",
        ));
        let frame = decoded_response(&bytes, None);
        let heartbeat = Heartbeat {
            packet_number: 0x102,
            antenna_status: [1, 0, 0, 0, 0, 0, 0, 0],
            total_count: 7,
        };
        assert_eq!(
            frame.response,
            Response::Scan(ScanReport::Heartbeat(heartbeat))
        );
        assert_eq!(response_bytes(&frame), bytes);
        // A short heartbeat is malformed.
        let bytes = with_crc(hex("09 00 EE 28 00 00 01 02"));
        assert_eq!(
            decode_response(&bytes),
            Decoded::Invalid {
                error: ChafonError::Malformed { field: "heartbeat" },
                skip: 1
            }
        );
    }

    #[test]
    fn malformed_replies_name_the_field() {
        let cases = [
            // Reader info with 9 data bytes.
            (
                "0E 00 21 00 00 16 0C 03 4E 00 1E 0A 01",
                ChafonError::Malformed {
                    field: "reader info",
                },
            ),
            // Two tags announced, one present, in either form.
            (
                "0A 00 01 01 02 02 AA BB 50",
                ChafonError::Malformed { field: "tag list" },
            ),
            // An EPC longer than 62 bytes in the 18 form (and no 288 reading either).
            (
                "0A 00 01 01 01 3F AA BB 50",
                ChafonError::Malformed { field: "tag list" },
            ),
        ];
        for (text, error) in cases {
            let bytes = with_crc(hex(text));
            assert_eq!(
                decode_response(&bytes),
                Decoded::Invalid { error, skip: 1 },
                "{text}"
            );
        }
    }

    #[test]
    fn more_tags_than_max_is_a_typed_error() {
        // UHFReader18 form: 84 tags with empty EPCs.
        let mut bytes = vec![0, 0x00, CMD_INVENTORY, 0x01, 84];
        bytes.extend([0u8; 84]);
        bytes[0] = (bytes.len() + 1) as u8;
        let bytes = with_crc(bytes);
        let error = ChafonError::TooManyTags { count: 84 };
        assert_eq!(decode_response(&bytes), Decoded::Invalid { error, skip: 1 });
        assert_eq!(
            decode_response_as(&bytes, InventoryForm::Reader18),
            Decoded::Invalid { error, skip: 1 }
        );
    }

    #[test]
    fn short_length_drops_one_byte_at_once() {
        for len in 0..MIN_COMMAND_LEN {
            let error = ChafonError::LengthTooSmall {
                len,
                min: MIN_COMMAND_LEN,
            };
            assert_eq!(decode_command(&[len]), Decoded::Invalid { error, skip: 1 });
        }
        for len in 0..MIN_RESPONSE_LEN {
            let error = ChafonError::LengthTooSmall {
                len,
                min: MIN_RESPONSE_LEN,
            };
            assert_eq!(
                decode_response(&[len, 0x00]),
                Decoded::Invalid { error, skip: 1 }
            );
        }
    }

    #[test]
    fn prefixes_need_more() {
        let bytes = hex(REAL_INVENTORY_288);
        for n in 0..bytes.len() {
            assert_eq!(
                decode_response(&bytes[..n]),
                Decoded::NeedMore,
                "prefix of {n}"
            );
        }
        let bytes = hex(SET_POWER_30);
        for n in 0..bytes.len() {
            assert_eq!(
                decode_command(&bytes[..n]),
                Decoded::NeedMore,
                "prefix of {n}"
            );
        }
    }

    #[test]
    fn encoders_refuse_short_buffers() {
        let mut out = [0u8; 5];
        let frame = CommandFrame {
            address: 0,
            command: Command::SetPower { dbm: 30 },
        };
        assert_eq!(
            encode_command(&frame, &mut out),
            Err(BufferTooSmall { needed: 6 })
        );
        let frame = decoded_response(&hex(REAL_READER_INFO), None);
        assert_eq!(
            encode_response(&frame, &mut out),
            Err(BufferTooSmall { needed: 18 })
        );
    }

    #[test]
    fn inventory_reply_refuses_what_does_not_fit_a_frame() {
        let long = Epc::new(&[0xAB; 62]).unwrap();
        let mut r = InventoryReply::reader18(InventoryStatus::Done);
        for _ in 0..3 {
            r.push(long, 0).unwrap(); // 1 + 3 × 63 = 190 bytes
        }
        assert_eq!(r.push(long, 0), Err(ChafonError::FrameTooLong));
        let mut r = InventoryReply::reader288(InventoryStatus::Done, 1);
        for _ in 0..3 {
            r.push(long, 0).unwrap(); // 2 + 3 × 64 = 194 bytes
        }
        assert_eq!(r.push(long, 0), Err(ChafonError::FrameTooLong));
        let mut r = InventoryReply::reader18(InventoryStatus::Done);
        for _ in 0..MAX_TAGS {
            r.push(epc(""), 0).unwrap();
        }
        assert_eq!(
            r.push(epc(""), 0),
            Err(ChafonError::TooManyTags {
                count: MAX_TAGS + 1
            })
        );
        // The fullest reply still encodes into one frame.
        let frame = ResponseFrame {
            address: 0,
            response: Response::Inventory(r),
        };
        assert_eq!(response_bytes(&frame).len(), 1 + 5 + 1 + MAX_TAGS);
    }

    #[test]
    fn raw_values_refuse_what_does_not_fit_a_frame() {
        assert_eq!(
            RawCommand::new(0x22, &[0; 252]).err(),
            Some(ChafonError::FrameTooLong)
        );
        assert!(RawCommand::new(0x22, &[0; 251]).is_ok());
        assert_eq!(
            RawResponse::new(0x22, Status::Success, &[0; 251]).err(),
            Some(ChafonError::FrameTooLong)
        );
        assert_eq!(
            RawResponse::new(0x22, Status::Success, &[]).err(),
            Some(ChafonError::Malformed {
                field: "raw response data"
            })
        );
        assert_eq!(
            Mask::new(1, 0, 9, &[0]).err(),
            Some(ChafonError::Malformed { field: "mask data" })
        );
    }

    #[test]
    fn status_codes_round_trip_and_describe_themselves() {
        for byte in 0..=u8::MAX {
            assert_eq!(Status::from_byte(byte).byte(), byte);
        }
        assert_eq!(Status::from_byte(0xFB), Status::NoTag);
        assert_eq!(Status::from_byte(0x42), Status::Unknown(0x42));
        assert_eq!(Status::NoTag.to_string(), "0xFB no tag");
        assert_eq!(
            Status::InventoryDone.meaning(),
            "inventory finished within time"
        );
        assert!(Status::ParameterError.is_error() && !Status::MoreData.is_error());
        assert_eq!(antenna_from_mask(0x08), Some(4));
        assert_eq!(antenna_from_mask(0x05), None);
    }

    // ---- strategies -------------------------------------------------------------------------

    fn any_epc(max: usize) -> impl Strategy<Value = Epc> {
        proptest::collection::vec(any::<u8>(), 0..=max).prop_map(|b| Epc::new(&b).unwrap())
    }

    fn any_status() -> impl Strategy<Value = Status> {
        any::<u8>().prop_map(Status::from_byte)
    }

    fn any_inventory_status() -> impl Strategy<Value = InventoryStatus> {
        prop_oneof![
            Just(InventoryStatus::Done),
            Just(InventoryStatus::Timeout),
            Just(InventoryStatus::MoreData),
            Just(InventoryStatus::MemoryFull),
        ]
    }

    fn any_mask() -> impl Strategy<Value = Mask> {
        (any::<u8>(), any::<u16>(), any::<u8>()).prop_flat_map(|(memory, address, bits)| {
            proptest::collection::vec(any::<u8>(), Mask::data_len_for(bits))
                .prop_map(move |data| Mask::new(memory, address, bits, &data).unwrap())
        })
    }

    /// Inventory parameters with documented antenna codes (0x80 + index).
    fn any_params() -> impl Strategy<Value = InventoryParams> {
        let tid = (any::<u8>(), any::<u8>()).prop_map(|(word_address, word_count)| TidWindow {
            word_address,
            word_count,
        });
        let scan =
            (any::<u8>(), 0x80u8..=0x8F, any::<u8>()).prop_map(|(target, antenna, scan_time)| {
                ScanTarget {
                    target,
                    antenna,
                    scan_time,
                }
            });
        (
            any::<u8>(),
            any::<u8>(),
            proptest::option::of(any_mask()),
            proptest::option::of(tid),
            proptest::option::of(scan),
        )
            .prop_map(|(q_value, session, mask, tid, scan)| InventoryParams {
                q_value,
                session,
                mask,
                tid,
                scan,
            })
    }

    fn any_work_mode() -> impl Strategy<Value = WorkModeSettings> {
        any::<[u8; 6]>().prop_map(|b| WorkModeSettings {
            read_mode: b[0],
            mode_state: b[1],
            mem_inven: b[2],
            first_address: b[3],
            word_count: b[4],
            tag_time: b[5],
        })
    }

    fn any_command() -> impl Strategy<Value = Command> {
        let untyped = any::<u8>().prop_filter("typed command", |c| {
            ![
                CMD_INVENTORY,
                CMD_READER_INFO,
                CMD_SET_POWER,
                CMD_SET_WORK_MODE,
                CMD_WORK_MODE,
            ]
            .contains(c)
        });
        prop_oneof![
            Just(Command::Inventory { params: None }),
            any_params().prop_map(|p| Command::Inventory { params: Some(p) }),
            Just(Command::ReaderInfo),
            any::<u8>().prop_map(|dbm| Command::SetPower { dbm }),
            any_work_mode().prop_map(Command::SetWorkMode),
            Just(Command::WorkMode),
            (
                untyped,
                proptest::collection::vec(any::<u8>(), 0..=MAX_COMMAND_DATA)
            )
                .prop_map(|(c, d)| Command::Other(RawCommand::new(c, &d).unwrap())),
        ]
    }

    fn any_inventory(form: InventoryForm) -> impl Strategy<Value = InventoryReply> {
        (
            any_inventory_status(),
            any::<u8>(),
            proptest::collection::vec((any_epc(MAX_EPC_BYTES), any::<u8>()), 0..12),
        )
            .prop_map(move |(status, mask, tags)| {
                let mut reply = match form {
                    InventoryForm::Reader18 => InventoryReply::reader18(status),
                    InventoryForm::Reader288 => InventoryReply::reader288(status, mask),
                };
                for (epc, rssi) in tags {
                    if reply.push(epc, rssi).is_err() {
                        break;
                    }
                }
                reply
            })
    }

    /// Replies that carry no inventory form: any decoder reads them the same way.
    fn any_formless_response() -> impl Strategy<Value = Response> {
        let info = (any::<[u8; 8]>(), proptest::option::of(any::<[u8; 4]>())).prop_map(|(b, x)| {
            ReaderInfo {
                firmware_major: b[0],
                firmware_minor: b[1],
                reader_type: b[2],
                protocols: b[3],
                max_frequency: b[4],
                min_frequency: b[5],
                power_dbm: b[6],
                scan_time: b[7],
                extension: x.map(|x| ReaderInfoExtension {
                    antenna: x[0],
                    beep: x[1],
                    output_rep: x[2],
                    check_antenna: x[3],
                }),
            }
        });
        let work = (any::<[u8; 4]>(), any_work_mode(), any::<u8>(), any::<u8>()).prop_map(
            |(wiegand, settings, accuracy, offset_time)| WorkModeReport {
                wiegand,
                settings,
                accuracy,
                offset_time,
            },
        );
        let heartbeat = (any::<u32>(), any::<[u8; 8]>(), any::<u32>()).prop_map(
            |(packet_number, antenna_status, total_count)| Heartbeat {
                packet_number,
                antenna_status,
                total_count,
            },
        );
        let untyped = any::<u8>().prop_filter("typed reply", |c| {
            ![CMD_INVENTORY, CMD_READER_INFO, CMD_WORK_MODE, RECMD_SCAN].contains(c)
        });
        prop_oneof![
            info.prop_map(Response::ReaderInfo),
            work.prop_map(Response::WorkMode),
            heartbeat.prop_map(|h| Response::Scan(ScanReport::Heartbeat(h))),
            (any::<u8>(), any_status())
                .prop_map(|(command, status)| Response::Ack { command, status }),
            (
                untyped,
                any_status(),
                proptest::collection::vec(any::<u8>(), 1..=MAX_RESPONSE_DATA)
            )
                .prop_map(|(c, s, d)| Response::Other(RawResponse::new(c, s, &d).unwrap())),
        ]
    }

    /// Replies in the given inventory form (inventory replies and tag pushes).
    fn any_form_response(form: InventoryForm) -> impl Strategy<Value = Response> {
        let push = match form {
            InventoryForm::Reader18 => any_epc(MAX_EPC_BYTES)
                .prop_filter("a push carries data", |e| !e.is_empty())
                .prop_map(ScanReport::tag18)
                .boxed(),
            InventoryForm::Reader288 => (any::<u8>(), any_epc(MAX_EPC_BYTES), any::<u8>())
                .prop_map(|(m, e, r)| ScanReport::tag288(m, e, r))
                .boxed(),
        };
        prop_oneof![
            any_inventory(form).prop_map(Response::Inventory),
            push.prop_map(Response::Scan)
        ]
    }

    fn any_form() -> impl Strategy<Value = InventoryForm> {
        prop_oneof![
            Just(InventoryForm::Reader18),
            Just(InventoryForm::Reader288)
        ]
    }

    /// Replies that `decode_response` (auto) reads back as they are.
    fn any_auto_response() -> impl Strategy<Value = ResponseFrame> {
        (
            any::<u8>(),
            prop_oneof![
                any_formless_response(),
                any_form_response(InventoryForm::Reader288)
            ],
        )
            .prop_map(|(address, response)| ResponseFrame { address, response })
    }

    /// A CRC-valid frame around arbitrary Adr/Cmd/Status/Data, with Cmd biased to the codes
    /// this module types.
    fn any_crc_valid_frame() -> impl Strategy<Value = Vec<u8>> {
        let code = prop_oneof![
            Just(CMD_INVENTORY),
            Just(CMD_READER_INFO),
            Just(CMD_SET_POWER),
            Just(CMD_SET_WORK_MODE),
            Just(CMD_WORK_MODE),
            Just(RECMD_SCAN),
            any::<u8>(),
        ];
        (
            any::<u8>(),
            code,
            proptest::collection::vec(any::<u8>(), 0..48),
        )
            .prop_map(|(adr, code, data)| {
                let mut bytes = vec![(data.len() + 5) as u8, adr, code];
                bytes.extend(data);
                with_crc(bytes)
            })
    }

    proptest! {
        /// Every command survives encode → decode_command unchanged, using every byte.
        #[test]
        fn command_round_trip(address in any::<u8>(), command in any_command()) {
            let frame = CommandFrame { address, command };
            let bytes = command_bytes(&frame);
            prop_assert_eq!(decode_command(&bytes), Decoded::Frame { frame, len: bytes.len() });
        }

        /// Every reply survives encode → decode_response_as in its own form unchanged.
        #[test]
        fn response_round_trip_in_own_form(
            address in any::<u8>(),
            (form, response) in any_form().prop_flat_map(|f| (Just(f), prop_oneof![any_form_response(f), any_formless_response()])),
        ) {
            let frame = ResponseFrame { address, response };
            let bytes = response_bytes(&frame);
            prop_assert_eq!(decode_response_as(&bytes, form), Decoded::Frame { frame, len: bytes.len() });
        }

        /// UHFReader288-form and form-less replies survive encode → decode_response (auto).
        #[test]
        fn response_round_trip_auto(frame in any_auto_response()) {
            let bytes = response_bytes(&frame);
            prop_assert_eq!(decode_response(&bytes), Decoded::Frame { frame, len: bytes.len() });
        }

        /// Decoding is canonical: any frame a decoder accepts encodes back to the same bytes.
        #[test]
        fn accepted_frames_reencode_identically(bytes in any_crc_valid_frame()) {
            if let Decoded::Frame { frame, len } = decode_command(&bytes) {
                prop_assert_eq!(len, bytes.len());
                prop_assert_eq!(command_bytes(&frame), bytes.clone());
            }
            for decode in [decode_response, decode_response_reader18, decode_response_reader288] {
                if let Decoded::Frame { frame, len } = decode(&bytes) {
                    prop_assert_eq!(len, bytes.len());
                    prop_assert_eq!(response_bytes(&frame), bytes.clone());
                }
            }
        }

        /// Arbitrary bytes cut at arbitrary points never panic the stream decoders, and every
        /// byte is accounted for: in a decoded frame, dropped, or still pending.
        #[test]
        fn arbitrary_bytes_are_accounted_for(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let (out, d) = stream(decode_response, &bytes, &splits);
            let used: usize = out.iter().flatten().map(|f| response_bytes(f).len()).sum();
            prop_assert_eq!(used as u64 + d.dropped_bytes() + d.pending() as u64, bytes.len() as u64);
            let (out, d) = stream(decode_command, &bytes, &splits);
            let used: usize = out.iter().flatten().map(|f| command_bytes(f).len()).sum();
            prop_assert_eq!(used as u64 + d.dropped_bytes() + d.pending() as u64, bytes.len() as u64);
        }

        /// A valid reply after random garbage is found, wherever the stream is cut, once later
        /// bytes (here zeros) let any frame that garbage announced complete and fail its CRC.
        /// Cases where garbage forms a CRC-valid frame running into the reply are set aside:
        /// without a start byte no decoder can tell those from a real frame.
        #[test]
        fn reply_after_garbage_is_found(
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
            frame in any_auto_response(),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut bytes = garbage.clone();
            bytes.extend(response_bytes(&frame));
            bytes.extend([0u8; MAX_FRAME_LEN]);
            let spanning_valid_frame = (0..garbage.len()).any(|p| {
                let end = p + bytes[p] as usize + 1;
                bytes[p] >= MIN_RESPONSE_LEN
                    && end > garbage.len()
                    && end <= bytes.len()
                    && matches!(frame_at(&bytes[p..end], MIN_RESPONSE_LEN), Decoded::Frame { .. })
            });
            prop_assume!(!spanning_valid_frame);
            let (out, _) = stream(decode_response, &bytes, &splits);
            prop_assert!(out.contains(&Ok(frame)));
        }
    }
}
