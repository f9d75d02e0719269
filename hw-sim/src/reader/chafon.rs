//! The CHAFON front-end: a simulated UHFReader18 or UHFReader288 (and their rebrands) speaking
//! `Len Adr Cmd Data.. CRC-lo CRC-hi` frames with CRC-16/MCRF4XX (codec in
//! [`custos_protocol::chafon`]).
//!
//! [`ChafonReader`] is a pure state machine like [`super::a0::A0Reader`]: host bytes in through
//! [`handle_input`](ChafonReader::handle_input), time through [`poll`](ChafonReader::poll),
//! reply bytes out in the caller's buffer.
//!
//! # Behaviour, and where it is simplified
//!
//! - Commands to the reader's own address or the broadcast address 0xFF are executed; replies
//!   carry the reader's own address. Frames with a bad CRC or a layout that does not fit their
//!   command are dropped and counted without a reply. (The manuals list status 0xFE for "CRC
//!   error" too, but with no start byte a reader cannot tell a corrupted command from line
//!   noise, and the decoder rejects such bytes one at a time: a reply per rejection would flood
//!   the host.) Any other command byte answers status 0xFE "illegal command" with no data.
//! - A pause of more than [`FRAME_GAP_MS`] in the middle of a frame makes the reader forget
//!   the bytes received so far, as real readers do; without it a stray large Len byte would
//!   swallow the commands after it.
//! - Inventory (0x01) reads every tag in the field of every connected antenna once, in
//!   antenna then field order, and answers at once (pacing is the driver's business):
//!   - UHFReader18 form: the distinct EPCs of all antennas in `Num, (len, EPC)..` frames, all
//!     with status 0x03 "more data" but the last, 0x01 "done"; no tag at all: status 0xFB
//!     with no data.
//!   - UHFReader288 form: for each connected antenna holding tags, frames `Ant, Num, (len,
//!     EPC, RSSI)..` with status 0x03, then one `Ant, 0` frame with status 0x01 naming the last
//!     antenna inventoried — the shape of the captured real replies, so a one-antenna reader
//!     with the vector's tag answers byte for byte as the captured one did. A Target/Ant
//!     parameter restricts the inventory to that antenna (`0x80 + index`; others: status 0xFF);
//!     an EPC-bank mask filters the tags (CRC, PC and EPC are the bank's bits; TID and user
//!     masks match nothing, those banks are not simulated); TID windows and Q/session are
//!     accepted and ignored (EPCs are reported).
//!   - No connected antenna (or the one asked for is disconnected): status 0xF8 "antenna
//!     error".
//! - 0x21 reader information: firmware 0.22, protocols 6B+6C, band code 0b0100 channels
//!   0..=14, the power of antenna 1, the scan time; type 0x09 and eight bytes for the
//!   UHFReader18 form, type 0x0C and the four extra bytes (antenna mask of the ports, beeper
//!   on... all as the captured reader) for the UHFReader288 form. A one-antenna 288 reader at
//!   address 0 answers exactly the captured reply of the vector file.
//! - Out of the box only antenna 1 is enabled, as the captured reader reports (reader
//!   information `… 01 00 00 00`: antenna mask 0x01): an inventory without a Target/Ant
//!   parameter uses the enabled antennas only, and one naming an antenna that is not enabled
//!   answers 0xF8 "antenna error", so a host that trusts the stored settings never reads
//!   antennas 2-4. 0x3F "set antenna configuration" (UHFReader288: one byte, the mask of the
//!   antennas to use) enables them (a mask naming a port the reader lacks, or none: 0xFF); the
//!   UHFReader18 form has one antenna and answers 0x3F with 0xFE "illegal command".
//! - 0x2F set power (0..=30 dBm, all antennas; else status 0xFF) and 0x25 set scan time
//!   (3..=255 × 100 ms; else 0xFF) answer status 0x00 with no data.
//! - 0x35 set work mode / 0x36 get work mode (UHFReader18 family; accepted in both forms).
//!   In scan mode ([`ReadMode::Scan`]) the reader keeps answering commands, and every scan
//!   time [`poll`](ChafonReader::poll) pushes one reCmd 0xEE frame per tag read (18 form: the
//!   bare EPC of each distinct tag; 288 form: `Ant, len, EPC, RSSI` per antenna and tag). A
//!   non-zero Tag_Time keeps a tag from being pushed again within that many seconds. The
//!   trigger modes push nothing (the trigger input is not simulated) and heartbeats are not
//!   sent. [`ChafonReader::set_scan`] switches scan mode from the simulator's side.

use std::collections::HashMap;

use custos_protocol::chafon::{
    BROADCAST_ADDRESS, ChafonError, Command, CommandFrame, InventoryForm, InventoryParams,
    InventoryReply, InventoryStatus, MAX_FRAME_LEN, Mask, ReadMode, ReaderInfo,
    ReaderInfoExtension, Response, ResponseFrame, ScanReport, Status, WorkModeReport,
    WorkModeSettings, decode_command, encode_response,
};
use custos_protocol::codec::StreamDecoder;
use custos_protocol::epc::gen2::tag_crc;
use custos_protocol::epc::{Epc, PcWord};

use super::model::{FieldTag, ReaderModel, ReaderStats};

/// The firmware version bytes reported (`00 16`, "0.22", as the captured reader).
pub const FIRMWARE_VERSION: (u8, u8) = (0x00, 0x16);

/// The reader type byte of a UHFReader18.
pub const TYPE_READER18: u8 = 0x09;

/// The reader type byte of a UHFReader288M (as the captured reader).
pub const TYPE_READER288: u8 = 0x0C;

/// The highest power "set power" accepts ("Pwr: New power ... range is 0~30").
pub const MAX_POWER_DBM: u8 = 30;

/// The scan time at start, in units of 100 ms (the captured reader's 0x0A = 1 s).
pub const DEFAULT_SCAN_TIME: u8 = 0x0A;

/// The longest pause between two bytes of one frame, in milliseconds: a reader forgets a
/// half-received frame after a longer silence (the manuals' 15 ms inter-byte limit).
pub const FRAME_GAP_MS: u64 = 15;

/// "Set scan time" (Cmd 0x25): Scantime in units of 100 ms, 3..=255 (UHFReader18 manual
/// §8.4.5).
const CMD_SET_SCAN_TIME: u8 = 0x25;

pub use custos_protocol::chafon::CMD_SET_ANTENNAS;

/// The antenna mask out of the box: antenna 1 only (the captured reader's `01`).
pub const FACTORY_ANTENNAS: u8 = 0x01;

/// The frequency bytes of the reader information: band code 0b0100 over DMaxFre/DMinFre bits
/// 7..6, channels 14 down to 0 (the captured reader's `4E 00`).
const FREQUENCY_BYTES: (u8, u8) = (0x4E, 0x00);

/// The Wiegand bytes of "get work mode" (Wg_mode, Wg_Data_Inteval, Wg_Pulse_Width,
/// Wg_Pulse_Inteval): plausible factory values; Wiegand output is not simulated.
const WIEGAND_DEFAULTS: [u8; 4] = [0x00, 0x1E, 0x0A, 0x0F];

/// A simulated CHAFON reader.
#[derive(Debug, Clone)]
pub struct ChafonReader {
    model: ReaderModel,
    form: InventoryForm,
    decoder: StreamDecoder<CommandFrame, ChafonError>,
    scan_time: u8,
    /// The mask of enabled antennas (bit 0 antenna 1).
    enabled: u8,
    work_mode: WorkModeSettings,
    next_scan_ms: Option<u64>,
    last_pushed: HashMap<(u8, Epc), u64>,
    last_input_ms: Option<u64>,
}

impl ChafonReader {
    /// A reader of the given inventory `form` over the given world.
    pub fn new(model: ReaderModel, form: InventoryForm) -> Self {
        Self {
            model,
            form,
            decoder: StreamDecoder::new(decode_command, MAX_FRAME_LEN),
            scan_time: DEFAULT_SCAN_TIME,
            enabled: FACTORY_ANTENNAS,
            work_mode: WorkModeSettings::ANSWER,
            next_scan_ms: None,
            last_pushed: HashMap::new(),
            last_input_ms: None,
        }
    }

    /// The inventory form the reader answers in.
    pub fn form(&self) -> InventoryForm {
        self.form
    }

    /// The reader's world.
    pub fn model(&self) -> &ReaderModel {
        &self.model
    }

    /// The reader's world, for the control socket and tests.
    pub fn model_mut(&mut self) -> &mut ReaderModel {
        &mut self.model
    }

    /// What the reader has done so far.
    pub fn stats(&self) -> ReaderStats {
        self.model.stats()
    }

    /// The mask of the antennas the reader uses (bit 0 antenna 1).
    pub fn enabled_antennas(&self) -> u8 {
        self.enabled
    }

    /// Enables exactly the antennas of `mask` (ports the reader lacks are ignored), as the
    /// host's 0x3F would; for tests and set-ups that start from a configured reader.
    pub fn set_enabled_antennas(&mut self, mask: u8) {
        self.enabled = mask & self.port_mask();
    }

    /// The work-mode settings as last set.
    pub fn work_mode(&self) -> WorkModeSettings {
        self.work_mode
    }

    /// The interval between scan-mode cycles, in milliseconds.
    pub fn scan_interval_ms(&self) -> u64 {
        u64::from(self.scan_time) * 100
    }

    /// Switches scan mode on (multi-tag EPC inventory over the serial line, first cycle at
    /// `now_ms`) or off (answer mode), as the host's "set work mode" would.
    pub fn set_scan(&mut self, now_ms: u64, on: bool) {
        let settings = if on {
            WorkModeSettings::SCAN_EPC
        } else {
            WorkModeSettings::ANSWER
        };
        self.apply_work_mode(now_ms, settings);
    }

    /// When [`poll`](Self::poll) next pushes tags, if scan mode is on.
    pub fn next_poll_ms(&self) -> Option<u64> {
        self.next_scan_ms
    }

    /// Feeds bytes from the host at `now_ms`; appends every reply to `out`.
    ///
    /// While the model is silenced, the bytes are dropped unread. Bytes of an unfinished
    /// frame are forgotten when more than [`FRAME_GAP_MS`] pass before the next ones (there is
    /// no start byte: this is how a reader recovers from a stray large Len).
    pub fn handle_input(&mut self, now_ms: u64, input: &[u8], out: &mut Vec<u8>) {
        if self.model.is_silent() {
            self.model.stats_mut().silenced_bytes += input.len() as u64;
            return;
        }
        if self
            .last_input_ms
            .is_some_and(|last| now_ms.saturating_sub(last) > FRAME_GAP_MS)
            && self.decoder.pending() > 0
        {
            self.decoder.clear();
            self.model.stats_mut().malformed += 1;
        }
        self.last_input_ms = Some(now_ms);
        let mut rest = input;
        loop {
            // After next_frame returns None, fewer than MAX_FRAME_LEN bytes are pending, so
            // push takes at least one byte: the loop always progresses.
            let taken = self.decoder.push(rest);
            rest = &rest[taken..];
            while let Some(result) = self.decoder.next_frame() {
                match result {
                    Ok(frame) => self.dispatch(now_ms, frame, out),
                    Err(_) => self.model.stats_mut().malformed += 1,
                }
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    /// Lets time pass up to `now_ms`: in scan mode, runs the cycle that is due (one, however
    /// late the call) and appends its pushes to `out`.
    pub fn poll(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        let Some(due) = self.next_scan_ms else {
            return;
        };
        if now_ms < due {
            return;
        }
        self.next_scan_ms = Some(now_ms + self.scan_interval_ms());
        self.scan_cycle(now_ms, out);
    }

    fn dispatch(&mut self, now_ms: u64, frame: CommandFrame, out: &mut Vec<u8>) {
        if frame.address != self.model.address() && frame.address != BROADCAST_ADDRESS {
            self.model.stats_mut().foreign_address += 1;
            return;
        }
        self.model.stats_mut().commands += 1;
        match frame.command {
            Command::Inventory { params } => self.inventory(params.as_ref(), out),
            Command::ReaderInfo => {
                let info = Response::ReaderInfo(self.reader_info());
                self.reply(info, out);
            }
            Command::SetPower { dbm } => {
                let status = if dbm <= MAX_POWER_DBM {
                    self.model.set_power_all(dbm);
                    Status::Success
                } else {
                    Status::ParameterError
                };
                self.ack(custos_protocol::chafon::CMD_SET_POWER, status, out);
            }
            Command::SetWorkMode(settings) => {
                self.apply_work_mode(now_ms, settings);
                self.ack(
                    custos_protocol::chafon::CMD_SET_WORK_MODE,
                    Status::Success,
                    out,
                );
            }
            Command::WorkMode => {
                let report = Response::WorkMode(WorkModeReport {
                    wiegand: WIEGAND_DEFAULTS,
                    settings: self.work_mode,
                    accuracy: 0x00,
                    offset_time: 0x00,
                });
                self.reply(report, out);
            }
            Command::Other(raw) => {
                let status = match (raw.command(), raw.data()) {
                    (CMD_SET_SCAN_TIME, [time]) if *time >= 3 => {
                        self.scan_time = *time;
                        Status::Success
                    }
                    (CMD_SET_SCAN_TIME, _) => Status::ParameterError,
                    (CMD_SET_ANTENNAS, _) if self.form == InventoryForm::Reader18 => {
                        Status::IllegalCommand
                    }
                    (CMD_SET_ANTENNAS, [mask]) if *mask != 0 && *mask & !self.port_mask() == 0 => {
                        self.enabled = *mask;
                        Status::Success
                    }
                    (CMD_SET_ANTENNAS, _) => Status::ParameterError,
                    _ => Status::IllegalCommand,
                };
                self.ack(raw.command(), status, out);
            }
        }
    }

    fn apply_work_mode(&mut self, now_ms: u64, settings: WorkModeSettings) {
        self.work_mode = settings;
        self.next_scan_ms = match settings.mode() {
            ReadMode::Scan => Some(now_ms),
            ReadMode::Answer | ReadMode::TriggerLow | ReadMode::TriggerHigh => None,
        };
        self.last_pushed.clear();
    }

    fn reader_info(&self) -> ReaderInfo {
        let power = self
            .model
            .antennas()
            .next()
            .map_or(0, |(_, antenna)| antenna.power_dbm());
        let (reader_type, extension) = match self.form {
            InventoryForm::Reader18 => (TYPE_READER18, None),
            InventoryForm::Reader288 => (
                TYPE_READER288,
                Some(ReaderInfoExtension {
                    antenna: self.enabled,
                    beep: 0x00,
                    output_rep: 0x00,
                    check_antenna: 0x00,
                }),
            ),
        };
        ReaderInfo {
            firmware_major: FIRMWARE_VERSION.0,
            firmware_minor: FIRMWARE_VERSION.1,
            reader_type,
            protocols: 0x03,
            max_frequency: FREQUENCY_BYTES.0,
            min_frequency: FREQUENCY_BYTES.1,
            power_dbm: power,
            scan_time: self.scan_time,
            extension,
        }
    }

    /// The antenna mask bit of every port.
    fn port_mask(&self) -> u8 {
        self.model
            .antennas()
            .fold(0u8, |mask, (number, _)| mask | antenna_mask(number))
    }

    /// The antennas to inventory and the tags each can read (after the mask), or the status
    /// to fail with.
    fn readable(
        &self,
        params: Option<&InventoryParams>,
    ) -> Result<Vec<(u8, Vec<FieldTag>)>, Status> {
        let only = match params.and_then(|p| p.scan) {
            None => None,
            Some(target) if target.antenna & 0x80 != 0 => {
                let number = (target.antenna & 0x7F) + 1;
                if number > self.model.antenna_count() {
                    return Err(Status::ParameterError);
                }
                Some(number)
            }
            Some(_) => return Err(Status::ParameterError),
        };
        let mask = params.and_then(|p| p.mask);
        let antennas: Vec<_> = self
            .model
            .antennas()
            .filter(|(number, antenna)| {
                antenna.is_connected()
                    && antenna_mask(*number) & self.enabled != 0
                    && only.is_none_or(|n| n == *number)
            })
            .map(|(number, antenna)| {
                let tags = antenna
                    .readable()
                    .iter()
                    .filter(|t| mask.as_ref().is_none_or(|m| mask_matches(m, &t.epc)))
                    .copied()
                    .collect();
                (number, tags)
            })
            .collect();
        if antennas.is_empty() {
            Err(Status::AntennaError)
        } else {
            Ok(antennas)
        }
    }

    fn inventory(&mut self, params: Option<&InventoryParams>, out: &mut Vec<u8>) {
        let antennas = match self.readable(params) {
            Ok(antennas) => antennas,
            Err(status) => return self.ack(custos_protocol::chafon::CMD_INVENTORY, status, out),
        };
        match self.form {
            InventoryForm::Reader18 => {
                let tags = distinct(antennas.iter().flat_map(|(_, tags)| tags.iter()));
                if tags.is_empty() {
                    return self.ack(custos_protocol::chafon::CMD_INVENTORY, Status::NoTag, out);
                }
                let chunks = chunk(&tags, || {
                    InventoryReply::reader18(InventoryStatus::MoreData)
                });
                let last = chunks.len() - 1;
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let status = if i == last {
                        InventoryStatus::Done
                    } else {
                        InventoryStatus::MoreData
                    };
                    let reply = fill(InventoryReply::reader18(status), &chunk);
                    self.reply(Response::Inventory(reply), out);
                }
            }
            InventoryForm::Reader288 => {
                let mut last_mask = 0x01;
                for (number, tags) in &antennas {
                    let mask = antenna_mask(*number);
                    last_mask = mask;
                    let empty = || InventoryReply::reader288(InventoryStatus::MoreData, mask);
                    for chunk in chunk(tags, empty) {
                        self.reply(Response::Inventory(fill(empty(), &chunk)), out);
                    }
                }
                let done = InventoryReply::reader288(InventoryStatus::Done, last_mask);
                self.reply(Response::Inventory(done), out);
            }
        }
    }

    fn scan_cycle(&mut self, now_ms: u64, out: &mut Vec<u8>) {
        let Ok(antennas) = self.readable(None) else {
            return;
        };
        let hold_ms = u64::from(self.work_mode.tag_time) * 1000;
        let reports: Vec<((u8, Epc), ScanReport)> = match self.form {
            InventoryForm::Reader18 => distinct(antennas.iter().flat_map(|(_, tags)| tags.iter()))
                .into_iter()
                .map(|t| ((0, t.epc), ScanReport::tag18(t.epc)))
                .collect(),
            InventoryForm::Reader288 => antennas
                .iter()
                .flat_map(|(number, tags)| {
                    tags.iter().map(move |t| {
                        (
                            (*number, t.epc),
                            ScanReport::tag288(antenna_mask(*number), t.epc, t.rssi),
                        )
                    })
                })
                .collect(),
        };
        for (key, report) in reports {
            let recent = self
                .last_pushed
                .get(&key)
                .is_some_and(|&at| hold_ms > 0 && now_ms.saturating_sub(at) < hold_ms);
            if recent {
                continue;
            }
            self.last_pushed.insert(key, now_ms);
            self.reply(Response::Scan(report), out);
        }
    }

    fn ack(&mut self, command: u8, status: Status, out: &mut Vec<u8>) {
        self.reply(Response::Ack { command, status }, out);
    }

    fn reply(&mut self, response: Response, out: &mut Vec<u8>) {
        let frame = ResponseFrame {
            address: self.model.address(),
            response,
        };
        let mut bytes = [0u8; MAX_FRAME_LEN];
        // MAX_FRAME_LEN holds every frame the codec can build (Len is one byte).
        if let Ok(len) = encode_response(&frame, &mut bytes) {
            self.model.emit_frame(&bytes[..len], out);
        }
    }
}

/// The mask bit of a 1-based antenna: 0x01 antenna 1, 0x02 antenna 2, 0x04 antenna 3, ...
fn antenna_mask(number: u8) -> u8 {
    1u8 << ((number.saturating_sub(1)) & 0x07)
}

/// The tags once each, first occurrence first.
fn distinct<'a>(tags: impl Iterator<Item = &'a FieldTag>) -> Vec<FieldTag> {
    let mut out: Vec<FieldTag> = Vec::new();
    for t in tags {
        if !out.iter().any(|o| o.epc == t.epc) {
            out.push(*t);
        }
    }
    out
}

/// Splits `tags` into runs that each fit one reply made by `empty`.
fn chunk(tags: &[FieldTag], empty: impl Fn() -> InventoryReply) -> Vec<Vec<FieldTag>> {
    let mut chunks = Vec::new();
    let mut current: Vec<FieldTag> = Vec::new();
    let mut probe = empty();
    for tag in tags {
        if probe.push(tag.epc, tag.rssi).is_err() {
            chunks.push(std::mem::take(&mut current));
            probe = empty();
            // One tag (at most 62 EPC bytes) always fits an empty reply.
            let _ = probe.push(tag.epc, tag.rssi);
        }
        current.push(*tag);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// `reply` with `tags` pushed; every run from [`chunk`] fits.
fn fill(mut reply: InventoryReply, tags: &[FieldTag]) -> InventoryReply {
    for tag in tags {
        // The run was sized by `chunk` against the same kind of reply.
        let _ = reply.push(tag.epc, tag.rssi);
    }
    reply
}

/// Whether an inventory mask selects the tag: only EPC-bank masks (MaskMem 0x01) can match;
/// the bank is CRC (bits 0x00..0x10), PC (0x10..0x20), then the EPC.
fn mask_matches(mask: &Mask, epc: &Epc) -> bool {
    if mask.memory() != 0x01 {
        return false;
    }
    let pc = PcWord::for_epc_len(epc.len());
    let mut bank = Vec::with_capacity(4 + epc.len());
    bank.extend_from_slice(&tag_crc(pc, epc).to_be_bytes());
    bank.extend_from_slice(&pc.0.to_be_bytes());
    bank.extend_from_slice(epc.as_bytes());
    let bit = |bytes: &[u8], i: usize| bytes.get(i / 8).map(|b| (b >> (7 - i % 8)) & 1);
    let start = usize::from(mask.bit_address());
    (0..usize::from(mask.bit_len())).all(
        |i| matches!((bit(&bank, start + i), bit(mask.data(), i)), (Some(a), Some(b)) if a == b),
    )
}

#[cfg(test)]
mod tests {
    use custos_protocol::chafon::{
        CommandFrame as Frame, ScanTarget, decode_response_as, encode_command,
    };
    use custos_protocol::codec::Decoded;
    use proptest::prelude::*;

    use super::*;
    use crate::reader::model::DEFAULT_RSSI;

    // Lines of shared/vectors/uhf-chafon.txt, verbatim.
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

    const VECTOR_EPC: &str = "000000000000000000000313";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn epc(s: &str) -> Epc {
        Epc::from_hex(s).unwrap()
    }

    /// CRC-16/MCRF4XX from the public description: reflected polynomial 0x8408, initial
    /// value 0xFFFF, no final xor; sent low byte first.
    fn crc(bytes: &[u8]) -> u16 {
        let mut crc = 0xFFFFu16;
        for &b in bytes {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x8408
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    /// A frame from the public description: `Len` (bytes after it), the body, the CRC.
    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = vec![(body.len() + 2) as u8];
        f.extend_from_slice(body);
        let c = crc(&f);
        f.extend_from_slice(&c.to_le_bytes());
        f
    }

    /// Splits reader output into frames by Len, checking each CRC; `None` unless the bytes
    /// are exactly a sequence of such frames.
    fn split_frames(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        while let Some(&len) = bytes.first() {
            let total = usize::from(len) + 1;
            if len < 5 {
                return None;
            }
            let f = bytes.get(..total)?;
            if crc(&f[..total - 2]) != u16::from_le_bytes([f[total - 2], f[total - 1]]) {
                return None;
            }
            frames.push(f.to_vec());
            bytes = &bytes[total..];
        }
        Some(frames)
    }

    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        split_frames(bytes).unwrap_or_else(|| panic!("not a frame sequence: {bytes:02X?}"))
    }

    fn responses(bytes: &[u8], form: InventoryForm) -> Vec<Response> {
        frames(bytes)
            .iter()
            .map(|f| match decode_response_as(f, form) {
                Decoded::Frame { frame, len } if len == f.len() => frame.response,
                other => panic!("codec rejects {f:02X?}: {other:?}"),
            })
            .collect()
    }

    /// A reader with every antenna enabled (as a host that configured it).
    fn reader(form: InventoryForm, antennas: u8) -> ChafonReader {
        let mut r = ChafonReader::new(ReaderModel::new(0x00, antennas).unwrap(), form);
        r.set_enabled_antennas(0xFF);
        r
    }

    fn ask(r: &mut ChafonReader, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        r.handle_input(0, bytes, &mut out);
        out
    }

    fn command(address: u8, command: Command) -> Vec<u8> {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = encode_command(&Frame { address, command }, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    fn tags_of(response: &Response) -> Vec<(Option<u8>, Epc, Option<u8>)> {
        match response {
            Response::Inventory(reply) => reply
                .tags()
                .iter()
                .map(|t| (t.antenna, t.epc, t.rssi))
                .collect(),
            other => panic!("not an inventory reply: {other:?}"),
        }
    }

    #[test]
    fn vector_reader_info_byte_for_byte() {
        let mut r = reader(InventoryForm::Reader288, 1);
        assert_eq!(
            ask(&mut r, &hex(READER_INFO_REQUEST)),
            hex(REAL_READER_INFO)
        );
        // A four-port 288 names its four ports; an 18 sends the eight base bytes, type 0x09.
        let mut four = reader(InventoryForm::Reader288, 4);
        let info = ask(&mut four, &hex(READER_INFO_REQUEST));
        assert_eq!(info[12], 0x0F);
        let mut r18 = reader(InventoryForm::Reader18, 1);
        let info = ask(&mut r18, &hex(READER_INFO_REQUEST));
        assert_eq!(
            info,
            frame(&[
                0x00, 0x21, 0x00, 0x00, 0x16, 0x09, 0x03, 0x4E, 0x00, 0x1E, 0x0A
            ])
        );
    }

    /// Out of the box only antenna 1 is used: an inventory without parameters never reads
    /// antenna 2, one naming antenna 2 is an antenna error, and the reader information says
    /// 0x01; 0x3F enables more, which the reader information then reports.
    #[test]
    fn out_of_the_box_only_antenna_1_until_0x3f_enables_more() {
        let mut r = ChafonReader::new(ReaderModel::new(0x00, 4).unwrap(), InventoryForm::Reader288);
        let a = epc(VECTOR_EPC);
        r.model_mut().set_field(2, vec![a]).unwrap();
        let info = ask(&mut r, &hex(READER_INFO_REQUEST));
        assert_eq!(info[12], FACTORY_ANTENNAS);
        let plain = command(0, Command::Inventory { params: None });
        let replies = responses(&ask(&mut r, &plain), InventoryForm::Reader288);
        assert!(replies.iter().all(|r| tags_of(r).is_empty()), "{replies:?}");
        let only_2 = command(
            0,
            Command::Inventory {
                params: Some(InventoryParams {
                    scan: Some(ScanTarget::antenna(2, 10)),
                    ..InventoryParams::new(0x04, 0x00)
                }),
            },
        );
        assert_eq!(
            responses(&ask(&mut r, &only_2), InventoryForm::Reader288),
            [Response::Ack {
                command: custos_protocol::chafon::CMD_INVENTORY,
                status: Status::AntennaError
            }]
        );
        // Enable antennas 1 and 2; a port the reader lacks is refused.
        let raw = |data: &[u8]| {
            command(
                0,
                Command::Other(
                    custos_protocol::chafon::RawCommand::new(CMD_SET_ANTENNAS, data).unwrap(),
                ),
            )
        };
        let ack = |status| {
            vec![Response::Ack {
                command: CMD_SET_ANTENNAS,
                status,
            }]
        };
        let refused = responses(&ask(&mut r, &raw(&[0x10])), InventoryForm::Reader288);
        assert_eq!(refused, ack(Status::ParameterError));
        let set = responses(&ask(&mut r, &raw(&[0x03])), InventoryForm::Reader288);
        assert_eq!(set, ack(Status::Success));
        assert_eq!(ask(&mut r, &hex(READER_INFO_REQUEST))[12], 0x03);
        let replies = responses(&ask(&mut r, &only_2), InventoryForm::Reader288);
        let read: Vec<_> = tags_of(&replies[0]).iter().map(|t| (t.0, t.1)).collect();
        assert_eq!(read, [(Some(2), a)]);
        // A UHFReader18 has no antenna configuration.
        let mut r18 =
            ChafonReader::new(ReaderModel::new(0x00, 1).unwrap(), InventoryForm::Reader18);
        let refused = responses(&ask(&mut r18, &raw(&[0x01])), InventoryForm::Reader18);
        assert_eq!(refused, ack(Status::IllegalCommand));
    }

    #[test]
    fn vector_set_power_acknowledged_and_applied() {
        let mut r = reader(InventoryForm::Reader288, 4);
        r.model_mut().set_power_all(20);
        assert_eq!(ask(&mut r, &hex(SET_POWER_30)), frame(&[0x00, 0x2F, 0x00]));
        assert!(r.model().antennas().all(|(_, a)| a.power_dbm() == 30));
        assert_eq!(
            ask(&mut r, &frame(&[0x00, 0x2F, 31])),
            frame(&[0x00, 0x2F, 0xFF])
        );
        assert_eq!(r.model().antenna(1).unwrap().power_dbm(), 30);
    }

    #[test]
    fn vector_inventory_288_byte_for_byte_as_the_captured_reader() {
        let mut r = reader(InventoryForm::Reader288, 1);
        r.model_mut()
            .set_field_with_rssi(1, vec![(epc(VECTOR_EPC), 0x6B)])
            .unwrap();
        let mut expected = hex(REAL_INVENTORY_288);
        expected.extend(hex(REAL_INVENTORY_288_EMPTY));
        assert_eq!(ask(&mut r, &hex(INVENTORY_ADDR0)), expected);
        r.model_mut().clear();
        assert_eq!(
            ask(&mut r, &hex(INVENTORY_ADDR0)),
            hex(REAL_INVENTORY_288_EMPTY)
        );
    }

    #[test]
    fn vector_inventory_18_one_frame_with_status_done() {
        let mut r = reader(InventoryForm::Reader18, 1);
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        let out = ask(&mut r, &hex(INVENTORY_ADDR0));
        // The captured frame with status 0x01 (done) for 0x03 (more data), CRC recomputed.
        let real = hex(REAL_INVENTORY_18);
        let mut body = real[1..real.len() - 2].to_vec();
        body[2] = 0x01;
        assert_eq!(out, frame(&body));
        assert_eq!(
            tags_of(&responses(&out, InventoryForm::Reader18)[0]),
            [(None, epc(VECTOR_EPC), None)]
        );
        // No tag: status 0xFB with no data.
        r.model_mut().clear();
        assert_eq!(
            ask(&mut r, &hex(INVENTORY_ADDR0)),
            frame(&[0x00, 0x01, 0xFB])
        );
    }

    #[test]
    fn inventory_288_reports_per_antenna_masks_and_rssi() {
        let mut r = reader(InventoryForm::Reader288, 4);
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut()
            .set_field_with_rssi(1, vec![(a, 0x60)])
            .unwrap();
        r.model_mut()
            .set_field_with_rssi(3, vec![(a, 0x50), (b, 0x51)])
            .unwrap();
        r.model_mut().set_field(2, vec![b]).unwrap();
        r.model_mut().disconnect(2).unwrap();
        let got = responses(
            &ask(&mut r, &hex(INVENTORY_ADDR0)),
            InventoryForm::Reader288,
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(tags_of(&got[0]), [(Some(1), a, Some(0x60))]);
        assert_eq!(
            tags_of(&got[1]),
            [(Some(3), a, Some(0x50)), (Some(3), b, Some(0x51))]
        );
        match &got[2] {
            Response::Inventory(done) => {
                assert_eq!(done.status(), InventoryStatus::Done);
                assert_eq!(done.antenna_mask(), Some(0x08));
                assert!(done.tags().is_empty());
            }
            other => panic!("{other:?}"),
        }
        // A Target/Ant parameter: antenna 3 only (0x82); antenna 5 does not exist.
        let only3 = InventoryParams {
            scan: Some(ScanTarget::antenna(3, 10)),
            ..InventoryParams::new(0x04, 0x00)
        };
        let got = responses(
            &ask(
                &mut r,
                &command(
                    0x00,
                    Command::Inventory {
                        params: Some(only3),
                    },
                ),
            ),
            InventoryForm::Reader288,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(tags_of(&got[0]).len(), 2);
        let five = InventoryParams {
            scan: Some(ScanTarget::antenna(5, 10)),
            ..InventoryParams::new(0x04, 0x00)
        };
        assert_eq!(
            ask(
                &mut r,
                &command(0x00, Command::Inventory { params: Some(five) })
            ),
            frame(&[0x00, 0x01, 0xFF])
        );
        // The antenna asked for is disconnected: antenna error.
        let two = InventoryParams {
            scan: Some(ScanTarget::antenna(2, 10)),
            ..InventoryParams::new(0x04, 0x00)
        };
        assert_eq!(
            ask(
                &mut r,
                &command(0x00, Command::Inventory { params: Some(two) })
            ),
            frame(&[0x00, 0x01, 0xF8])
        );
    }

    #[test]
    fn inventory_18_merges_antennas_and_fails_without_any() {
        let mut r = reader(InventoryForm::Reader18, 4);
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut().set_field(1, vec![a]).unwrap();
        r.model_mut().set_field(4, vec![b, a]).unwrap();
        let got = responses(&ask(&mut r, &hex(INVENTORY_ADDR0)), InventoryForm::Reader18);
        assert_eq!(tags_of(&got[0]), [(None, a, None), (None, b, None)]);
        for n in 1..=4 {
            r.model_mut().disconnect(n).unwrap();
        }
        assert_eq!(
            ask(&mut r, &hex(INVENTORY_ADDR0)),
            frame(&[0x00, 0x01, 0xF8])
        );
    }

    #[test]
    fn many_tags_span_frames_more_data_then_done() {
        let tags: Vec<Epc> = (0u32..30)
            .map(|i| epc(&format!("30740000000000000000{i:04X}")))
            .collect();
        for form in [InventoryForm::Reader18, InventoryForm::Reader288] {
            let mut r = reader(form, 1);
            r.model_mut().set_field(1, tags.clone()).unwrap();
            let got = responses(&ask(&mut r, &hex(INVENTORY_ADDR0)), form);
            let statuses: Vec<_> = got
                .iter()
                .map(|resp| match resp {
                    Response::Inventory(reply) => reply.status(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let (last, rest) = statuses.split_last().unwrap();
            assert_eq!(*last, InventoryStatus::Done, "{form:?}");
            assert!(
                rest.iter().all(|s| *s == InventoryStatus::MoreData),
                "{form:?}"
            );
            assert!(got.len() >= 2, "{form:?}");
            let reported: Vec<Epc> = got.iter().flat_map(tags_of).map(|t| t.1).collect();
            assert_eq!(reported, tags, "{form:?}");
        }
    }

    #[test]
    fn epc_mask_filters_tags() {
        let mut r = reader(InventoryForm::Reader288, 1);
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut().set_field(1, vec![a, b]).unwrap();
        // EPC bank, bit 0x20 (the first EPC bit), 16 bits: E2 00.
        let params = InventoryParams {
            mask: Some(Mask::new(0x01, 0x20, 16, &[0xE2, 0x00]).unwrap()),
            ..InventoryParams::new(0x04, 0x00)
        };
        let got = responses(
            &ask(
                &mut r,
                &command(
                    0x00,
                    Command::Inventory {
                        params: Some(params),
                    },
                ),
            ),
            InventoryForm::Reader288,
        );
        assert_eq!(tags_of(&got[0]), [(Some(1), b, Some(DEFAULT_RSSI))]);
        // The PC word (bits 0x10..0x20) of a 96-bit EPC is 3000.
        let pc_mask = InventoryParams {
            mask: Some(Mask::new(0x01, 0x10, 8, &[0x30]).unwrap()),
            ..InventoryParams::new(0x04, 0x00)
        };
        let got = responses(
            &ask(
                &mut r,
                &command(
                    0x00,
                    Command::Inventory {
                        params: Some(pc_mask),
                    },
                ),
            ),
            InventoryForm::Reader288,
        );
        assert_eq!(tags_of(&got[0]).len(), 2);
        // TID masks match nothing: the bank is not simulated.
        let tid_mask = InventoryParams {
            mask: Some(Mask::new(0x02, 0x00, 8, &[0xE2]).unwrap()),
            ..InventoryParams::new(0x04, 0x00)
        };
        let got = responses(
            &ask(
                &mut r,
                &command(
                    0x00,
                    Command::Inventory {
                        params: Some(tid_mask),
                    },
                ),
            ),
            InventoryForm::Reader288,
        );
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn broadcast_answered_foreign_address_ignored() {
        let mut r = reader(InventoryForm::Reader288, 1);
        let out = ask(&mut r, &hex(INVENTORY_BROADCAST));
        assert_eq!(out, hex(REAL_INVENTORY_288_EMPTY));
        assert!(ask(&mut r, &frame(&[0x05, 0x01])).is_empty());
        assert_eq!(r.stats().foreign_address, 1);
    }

    #[test]
    fn bad_crc_dropped_counted_and_next_command_answered() {
        let mut r = reader(InventoryForm::Reader288, 1);
        let mut input = hex(BAD_CRC);
        input.extend([0x00, 0x02, 0x03]);
        input.extend(frame(&[0x00, 0x2F])); // set power without its byte
        // Bytes inside the bad frame read as large Lens (0x6B, 0xB1): within one burst the
        // reader waits for that many bytes; Len 0 filler completes them and is then dropped
        // byte by byte.
        input.extend([0u8; MAX_FRAME_LEN]);
        input.extend(hex(READER_INFO_REQUEST));
        let out = ask(&mut r, &input);
        assert_eq!(out, hex(REAL_READER_INFO));
        assert!(r.stats().malformed >= 3);
        assert_eq!(r.stats().commands, 1);
    }

    #[test]
    fn a_pause_forgets_an_unfinished_frame() {
        let mut r = reader(InventoryForm::Reader288, 1);
        let mut out = Vec::new();
        // A stray Len of 0x6B: the reader waits for 107 more bytes...
        r.handle_input(0, &[0x6B, 0x00], &mut out);
        r.handle_input(10, &hex(READER_INFO_REQUEST), &mut out);
        assert!(out.is_empty());
        // ...until a pause longer than the inter-byte limit.
        r.handle_input(10 + FRAME_GAP_MS + 1, &hex(READER_INFO_REQUEST), &mut out);
        assert_eq!(out, hex(REAL_READER_INFO));
    }

    #[test]
    fn unknown_command_is_illegal_and_scan_time_settable() {
        let mut r = reader(InventoryForm::Reader18, 1);
        assert_eq!(
            ask(&mut r, &frame(&[0x00, 0x77, 0x01])),
            frame(&[0x00, 0x77, 0xFE])
        );
        assert_eq!(
            ask(&mut r, &frame(&[0x00, 0x25, 0x14])),
            frame(&[0x00, 0x25, 0x00])
        );
        assert_eq!(r.scan_interval_ms(), 2000);
        assert_eq!(
            ask(&mut r, &frame(&[0x00, 0x25, 0x02])),
            frame(&[0x00, 0x25, 0xFF])
        );
    }

    #[test]
    fn scan_mode_pushes_every_scan_time_until_switched_off() {
        let mut r = reader(InventoryForm::Reader18, 2);
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut().set_field(1, vec![a]).unwrap();
        r.model_mut().set_field(2, vec![a, b]).unwrap();
        assert_eq!(r.next_poll_ms(), None);
        let mut out = Vec::new();
        r.handle_input(
            1_000,
            &command(0x00, Command::SetWorkMode(WorkModeSettings::SCAN_EPC)),
            &mut out,
        );
        assert_eq!(out, frame(&[0x00, 0x35, 0x00]));
        assert_eq!(r.next_poll_ms(), Some(1_000));
        // Get work mode reports the settings.
        match &responses(
            &ask(&mut r, &command(0x00, Command::WorkMode)),
            InventoryForm::Reader18,
        )[0]
        {
            Response::WorkMode(report) => {
                assert_eq!(report.settings, WorkModeSettings::SCAN_EPC)
            }
            other => panic!("{other:?}"),
        }
        out.clear();
        r.poll(1_000, &mut out);
        // One push per distinct tag: reCmd 0xEE, status 0, the bare EPC.
        let mut expected = frame(&[[0x00, 0xEE, 0x00].as_slice(), a.as_bytes()].concat());
        expected.extend(frame(
            &[[0x00, 0xEE, 0x00].as_slice(), b.as_bytes()].concat(),
        ));
        assert_eq!(out, expected);
        out.clear();
        r.poll(1_999, &mut out);
        assert!(out.is_empty());
        assert_eq!(r.next_poll_ms(), Some(2_000));
        r.poll(2_000, &mut out);
        assert_eq!(out, expected);
        // Back to answer mode: no more pushes.
        r.handle_input(
            2_100,
            &command(0x00, Command::SetWorkMode(WorkModeSettings::ANSWER)),
            &mut Vec::new(),
        );
        out.clear();
        r.poll(10_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(r.next_poll_ms(), None);
    }

    #[test]
    fn scan_mode_288_pushes_antenna_and_rssi_and_honours_tag_time() {
        let mut r = reader(InventoryForm::Reader288, 4);
        let a = epc(VECTOR_EPC);
        r.model_mut()
            .set_field_with_rssi(3, vec![(a, 0x6B)])
            .unwrap();
        r.set_scan(0, true);
        let mut out = Vec::new();
        r.poll(0, &mut out);
        assert_eq!(
            out,
            frame(
                &[
                    [0x00, 0xEE, 0x00, 0x04, 0x0C].as_slice(),
                    a.as_bytes(),
                    &[0x6B]
                ]
                .concat()
            )
        );
        match &responses(&out, InventoryForm::Reader288)[0] {
            Response::Scan(ScanReport::Tag { tag, .. }) => {
                assert_eq!((tag.antenna, tag.rssi), (Some(3), Some(0x6B)))
            }
            other => panic!("{other:?}"),
        }
        // Tag_Time 2 s: the tag is not pushed again until two seconds have passed.
        r.apply_work_mode(
            0,
            WorkModeSettings {
                tag_time: 2,
                ..WorkModeSettings::SCAN_EPC
            },
        );
        let mut pushes = Vec::new();
        for now in (0..=4_000).step_by(500) {
            let mut out = Vec::new();
            r.poll(now, &mut out);
            if !out.is_empty() {
                pushes.push(now);
            }
        }
        assert_eq!(pushes, [0, 2_000, 4_000]);
    }

    #[test]
    fn corrupt_injection_fails_the_host_crc_and_silence_mutes_pushes() {
        let mut r = reader(InventoryForm::Reader288, 1);
        r.model_mut().corrupt_next(1);
        let out = ask(&mut r, &hex(READER_INFO_REQUEST));
        assert!(split_frames(&out).is_none());
        assert!(matches!(
            decode_response_as(&out, InventoryForm::Reader288),
            Decoded::Invalid {
                error: ChafonError::BadCrc { .. },
                ..
            }
        ));
        assert_eq!(
            ask(&mut r, &hex(READER_INFO_REQUEST)),
            hex(REAL_READER_INFO)
        );
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        r.set_scan(0, true);
        r.model_mut().silence(true);
        let mut out = Vec::new();
        r.poll(0, &mut out);
        r.handle_input(1, &hex(READER_INFO_REQUEST), &mut out);
        assert!(out.is_empty());
        r.model_mut().silence(false);
        r.model_mut().inject_garbage(&[0xAA]);
        r.poll(1_000, &mut out);
        assert_eq!(out[0], 0xAA);
        assert_eq!(frames(&out[1..]).len(), 1);
    }

    /// Host input: noise, and CRC-valid frames with any address, command and data.
    fn host_chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let framed = (
            prop_oneof![Just(0x00u8), Just(0xFF), any::<u8>()],
            prop_oneof![
                proptest::sample::select(vec![0x01u8, 0x21, 0x25, 0x2F, 0x35, 0x36]),
                any::<u8>()
            ],
            prop_oneof![
                proptest::sample::select(vec![0usize, 1, 2, 5, 6, 7, 11, 12]),
                0usize..40
            ]
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        )
            .prop_map(|(address, cmd, data)| frame(&[[address, cmd].as_slice(), &data].concat()));
        let noise = proptest::collection::vec(any::<u8>(), 0..24);
        proptest::collection::vec(prop_oneof![framed, noise], 0..16)
    }

    fn populated(form: InventoryForm) -> ChafonReader {
        let mut r = reader(form, 4);
        let m = r.model_mut();
        m.set_field(1, vec![epc(VECTOR_EPC), epc("E2003098881900722140369E")])
            .unwrap();
        m.set_field_with_rssi(3, vec![(epc("3034257BF400B7800004CB2F"), 0x70)])
            .unwrap();
        m.disconnect(2).unwrap();
        r
    }

    proptest! {
        /// Whatever the host sends, in whatever pieces and with time passing, the reader does
        /// not panic and writes exactly a sequence of CRC-valid frames that the daemon's codec
        /// decodes in the reader's form.
        #[test]
        fn output_is_always_a_sequence_of_valid_frames(
            chunks in host_chunks(),
            splits in proptest::collection::vec(0usize..64, 0..8),
            form_18 in any::<bool>(),
        ) {
            let form = if form_18 { InventoryForm::Reader18 } else { InventoryForm::Reader288 };
            let mut r = populated(form);
            let input = chunks.concat();
            let mut out = Vec::new();
            let mut rest = &input[..];
            let mut now = 0;
            for s in splits {
                let (head, tail) = rest.split_at(s.min(rest.len()));
                r.handle_input(now, head, &mut out);
                r.poll(now, &mut out);
                rest = tail;
                now += 700;
            }
            r.handle_input(now, rest, &mut out);
            r.poll(now + 60_000, &mut out);
            for f in split_frames(&out).expect("valid frame sequence") {
                let decoded = decode_response_as(&f, form);
                prop_assert!(
                    matches!(decoded, Decoded::Frame { len, .. } if len == f.len()),
                    "{f:02X?}: {decoded:?}"
                );
            }
        }

        /// After any noise and enough filler for every Len it announced to complete, a
        /// broadcast reader-information request is answered.
        #[test]
        fn a_good_command_after_noise_is_answered(
            noise in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut r = populated(InventoryForm::Reader288);
            let mut input = noise;
            // Len 0 is below every minimum, so each filler byte is dropped alone.
            input.extend([0u8; MAX_FRAME_LEN]);
            input.extend(frame(&[0xFF, 0x21]));
            let mut out = Vec::new();
            r.handle_input(0, &input, &mut out);
            let frames = split_frames(&out).expect("valid frame sequence");
            let last = frames.last().expect("a reply");
            prop_assert_eq!(&last[2..4], &[0x21, 0x00]);
        }
    }
}
