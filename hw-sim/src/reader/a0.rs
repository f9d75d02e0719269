//! The 0xA0-protocol front-end: a simulated R2000/Indy reader module speaking the "UHF RFID
//! Reader Serial Interface Protocol" (frames `A0 Len Addr Cmd Data.. Check`, codec in
//! [`custos_protocol::uhf`]).
//!
//! [`A0Reader`] is a pure state machine: host bytes go in through
//! [`handle_input`](A0Reader::handle_input), reply bytes come out in the caller's buffer, and
//! nothing here sleeps, spawns or reads a clock.
//!
//! # Behaviour, and where it is simplified
//!
//! - Host bytes are reassembled by a [`StreamDecoder`]. Frames with a bad checksum, a bad
//!   length or data that does not fit their command are dropped without a reply and counted
//!   ([`ReaderStats::malformed`]), as a real module does; the next good frame is answered.
//! - A command is executed when its address is the reader's own or the public address 0xFF;
//!   others are ignored and counted. Replies always carry the reader's own address.
//! - Firmware version 8.1 (the vector file's). 0x70 reset answers nothing (the protocol: the
//!   module replies to a reset only when it fails); it puts the work antenna back to 0 and
//!   empties the inventory buffer; power, address and detector settings persist (flash).
//! - Inventories (0x89, 0x8B, 0x8A, 0x80) run one round per antenna whatever the Repeat byte
//!   says: every tag in the field of a connected antenna is read exactly once, in field order.
//!   All replies are produced at once; a real module takes tens of milliseconds per round, and
//!   pacing the writes is the driver's business. The summaries report the reads, and a read
//!   rate and duration computed from a nominal [`ROUND_MS`] per antenna round.
//! - The frequency index of tag records hops per round over [`CHANNELS`] channels, starting
//!   at 7 (the vector file's first tag), so a fresh reader's first tag frame is byte for byte
//!   the vector's.
//! - An inventory on a disconnected antenna answers 0x22 "antenna missing" (0x8A: the
//!   two-byte `AntID 22` reply for that antenna, then the run goes on).
//! - 0x80 `cmd_inventory` (not typed by the codec; handled from [`Command::Other`]) fills the
//!   inventory buffer and answers `AntID TagCount(2) ReadRate(2) TotalRead(4)`; 0x90/0x91
//!   answer one record per buffered tag with its Gen2 CRC, or 0x38 when empty; 0x92 answers
//!   `TagCount(2)`; 0x93 empties it. The real-time inventories do not touch the buffer, as on
//!   real modules.
//! - Also answered from [`Command::Other`]: 0x71 baud rate, 0x73 reader address, 0x66
//!   temporary power, 0x7A beeper mode (success or the matching out-of-range code; the baud
//!   rate does not change anything on a pty). The reply to 0x73 carries the new address.
//! - Any other command byte answers the one-byte ErrorCode 0x11 "command failed": the
//!   protocol's generic failure status, which hosts written from the document treat as
//!   "the module refused", rather than silence that would look like a dead link.

use custos_protocol::codec::StreamDecoder;
use custos_protocol::epc::gen2::tag_crc;
use custos_protocol::epc::{Epc, PcWord};
use custos_protocol::uhf::{
    BufferRead, BufferRecord, Bytes, Command, ErrorCode, FastSwitch, FastSwitchStats, Inventory,
    MAX_FRAME_LEN, OutputPower, Response, RoundStats, SessionInventory, TagRecord, Temperature,
    UhfError, decode_command, encode_response,
};

use super::model::{ReaderModel, ReaderStats};

/// The public address every module answers (spec 1.2, "Address").
pub const PUBLIC_ADDRESS: u8 = 0xFF;

/// The firmware version the simulated module reports (`A0 05 01 72 08 01 DF` in the vectors).
pub const FIRMWARE_VERSION: (u8, u8) = (8, 1);

/// The nominal duration of one inventory round on one antenna, in milliseconds; only used to
/// compute the read rate and duration fields of the summaries.
pub const ROUND_MS: u32 = 50;

/// The number of channels the frequency index hops over (the FCC table of the protocol has
/// about fifty).
pub const CHANNELS: u8 = 50;

/// The first frequency index used by a fresh module (the vector file's tag has index 7).
const FIRST_CHANNEL: u8 = 7;

/// The hop between rounds; coprime with [`CHANNELS`], so every channel is visited.
const CHANNEL_STRIDE: u8 = 13;

/// The highest output power accepted, in dBm (R2000 modules: 0..=33).
pub const MAX_POWER_DBM: u8 = 33;

/// Command bytes handled here although the codec does not type them (spec 2).
mod extra {
    /// `cmd_set_uart_baudrate`: 3 = 38400, 4 = 115200.
    pub const SET_BAUD_RATE: u8 = 0x71;
    /// `cmd_set_reader_address`: 0..=0xFE.
    pub const SET_READER_ADDRESS: u8 = 0x73;
    /// `cmd_set_temporary_output_power`: one power for every antenna, not saved.
    pub const SET_TEMPORARY_POWER: u8 = 0x66;
    /// `cmd_set_beeper_mode`: 0 quiet, 1 after each inventory, 2 after each tag.
    pub const SET_BEEPER_MODE: u8 = 0x7A;
    /// `cmd_inventory`: buffered inventory on the work antenna.
    pub const INVENTORY: u8 = 0x80;
    /// `cmd_get_inventory_buffer_tag_count`.
    pub const BUFFER_TAG_COUNT: u8 = 0x92;
}

/// One tag held in the inventory buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Buffered {
    epc: Epc,
    rssi_byte: u8,
    freq_ant: u8,
    inventory_count: u8,
}

/// A simulated 0xA0-protocol reader module.
#[derive(Debug, Clone)]
pub struct A0Reader {
    model: ReaderModel,
    decoder: StreamDecoder<(u8, Command), UhfError>,
    /// The work antenna, 0-based as on the wire.
    work_antenna: u8,
    detector_threshold_db: u8,
    rounds: u32,
    buffer: Vec<Buffered>,
    last_input_ms: Option<u64>,
}

impl A0Reader {
    /// A module with the given world (address, antennas, fields).
    pub fn new(model: ReaderModel) -> Self {
        Self {
            model,
            decoder: StreamDecoder::new(decode_command, MAX_FRAME_LEN),
            work_antenna: 0,
            detector_threshold_db: 0,
            rounds: 0,
            buffer: Vec::new(),
            last_input_ms: None,
        }
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

    /// The work antenna, 1-based.
    pub fn work_antenna(&self) -> u8 {
        self.work_antenna + 1
    }

    /// When host bytes last arrived (virtual milliseconds), if ever.
    pub fn last_input_ms(&self) -> Option<u64> {
        self.last_input_ms
    }

    /// Feeds bytes from the host; appends every reply to `out`.
    ///
    /// While the model is silenced, the bytes are dropped unread.
    pub fn handle_input(&mut self, now_ms: u64, input: &[u8], out: &mut Vec<u8>) {
        if self.model.is_silent() {
            self.model.stats_mut().silenced_bytes += input.len() as u64;
            return;
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
                    Ok((address, command)) => self.dispatch(address, command, out),
                    Err(_) => self.model.stats_mut().malformed += 1,
                }
            }
            if rest.is_empty() {
                break;
            }
        }
    }

    /// Time passes; a 0xA0 module never speaks unasked, so this writes nothing.
    pub fn poll(&mut self, _now_ms: u64, _out: &mut Vec<u8>) {}

    fn dispatch(&mut self, address: u8, command: Command, out: &mut Vec<u8>) {
        if address != self.model.address() && address != PUBLIC_ADDRESS {
            self.model.stats_mut().foreign_address += 1;
            return;
        }
        self.model.stats_mut().commands += 1;
        self.execute(command, out);
    }

    fn execute(&mut self, command: Command, out: &mut Vec<u8>) {
        let status = |command: u8, code: ErrorCode| Response::Status { command, code };
        let code = command.code();
        match command {
            Command::Reset => {
                self.work_antenna = 0;
                self.buffer.clear();
            }
            Command::QueryFirmwareVersion => self.reply(
                &Response::FirmwareVersion {
                    major: FIRMWARE_VERSION.0,
                    minor: FIRMWARE_VERSION.1,
                },
                out,
            ),
            Command::SetWorkAntenna { antenna_id } => {
                let result = if antenna_id < self.model.antenna_count() {
                    self.work_antenna = antenna_id;
                    ErrorCode::Success
                } else {
                    ErrorCode::AntennaIdOutOfRange
                };
                self.reply(&status(code, result), out);
            }
            Command::QueryWorkAntenna => self.reply(
                &Response::WorkAntenna {
                    antenna_id: self.work_antenna,
                },
                out,
            ),
            Command::SetOutputPower(power) => {
                let result = self.set_output_power(power);
                self.reply(&status(code, result), out);
            }
            Command::QueryOutputPower => {
                let reply = Response::OutputPower(self.output_power());
                self.reply(&reply, out);
            }
            Command::QueryTemperature => {
                let t = Temperature::from_celsius(self.model.temperature_c());
                self.reply(&Response::Temperature(t), out);
            }
            Command::SetAntennaDetector { threshold_db } => {
                self.detector_threshold_db = threshold_db;
                self.reply(&status(code, ErrorCode::Success), out);
            }
            Command::QueryAntennaDetector => self.reply(
                &Response::AntennaDetector {
                    threshold_db: self.detector_threshold_db,
                },
                out,
            ),
            Command::ReadGpio => {
                let [gpio1, gpio2] = self.model.gpio_inputs().map(u8::from);
                self.reply(&Response::Gpio { gpio1, gpio2 }, out);
            }
            Command::WriteGpio { gpio, level } => {
                let result = match (gpio, level) {
                    (0x03 | 0x04, 0x00 | 0x01) => {
                        self.model
                            .drive_gpio_output(usize::from(gpio - 0x03), level == 0x01);
                        ErrorCode::Success
                    }
                    _ => ErrorCode::InvalidParameter,
                };
                self.reply(&status(code, result), out);
            }
            Command::RealTimeInventory { .. } => self.real_time(Inventory::RealTime, out),
            Command::SessionInventory(SessionInventory {
                session, target, ..
            }) => {
                if session > 3 || target > 1 {
                    self.reply(
                        &Response::InventoryError {
                            inventory: Inventory::Session,
                            code: ErrorCode::InvalidParameter,
                        },
                        out,
                    );
                } else {
                    self.real_time(Inventory::Session, out);
                }
            }
            Command::FastSwitchInventory(fast) => self.fast_switch(&fast, out),
            Command::ReadInventoryBuffer => self.read_buffer(BufferRead::Read, out),
            Command::ReadAndResetInventoryBuffer => {
                self.read_buffer(BufferRead::ReadAndReset, out);
                self.buffer.clear();
            }
            Command::ResetInventoryBuffer => {
                self.buffer.clear();
                self.reply(&status(code, ErrorCode::Success), out);
            }
            Command::Other { command, data } => self.other(command, data.as_bytes(), out),
        }
    }

    /// Commands the codec leaves untyped: a few real ones, and the generic failure for the
    /// rest.
    fn other(&mut self, command: u8, data: &[u8], out: &mut Vec<u8>) {
        let code = match (command, data) {
            (extra::INVENTORY, [_repeat, ..]) => return self.buffered_inventory(out),
            (extra::BUFFER_TAG_COUNT, []) => {
                // The buffer holds at most one record per distinct EPC; far below u16::MAX in
                // any test, and saturated otherwise.
                let count = u16::try_from(self.buffer.len()).unwrap_or(u16::MAX);
                return self.reply_raw(command, &count.to_be_bytes(), out);
            }
            (extra::SET_READER_ADDRESS, [address]) if *address != PUBLIC_ADDRESS => {
                self.model.set_address(*address);
                ErrorCode::Success
            }
            (extra::SET_READER_ADDRESS, [_]) => ErrorCode::InvalidReaderAddress,
            (extra::SET_BAUD_RATE, [0x03 | 0x04]) => ErrorCode::Success,
            (extra::SET_BAUD_RATE, [_]) => ErrorCode::BaudRateOutOfRange,
            (extra::SET_TEMPORARY_POWER, [dbm]) if *dbm <= MAX_POWER_DBM => {
                self.model.set_power_all(*dbm);
                ErrorCode::Success
            }
            (extra::SET_TEMPORARY_POWER, [_]) => ErrorCode::OutputPowerOutOfRange,
            (extra::SET_BEEPER_MODE, [0..=2]) => ErrorCode::Success,
            (extra::SET_BEEPER_MODE, [_]) => ErrorCode::BeeperModeOutOfRange,
            _ => ErrorCode::Fail,
        };
        self.reply_raw(command, &[code.to_byte()], out);
    }

    fn set_output_power(&mut self, power: OutputPower) -> ErrorCode {
        if power.as_bytes().iter().any(|&p| p > MAX_POWER_DBM) {
            return ErrorCode::OutputPowerOutOfRange;
        }
        match power {
            OutputPower::All(dbm) => self.model.set_power_all(dbm),
            OutputPower::PerAntenna8(_) if self.model.antenna_count() < 8 => {
                return ErrorCode::InvalidParameter;
            }
            OutputPower::PerAntenna(_) | OutputPower::PerAntenna8(_) => {
                self.model.set_powers(power.as_bytes());
            }
        }
        ErrorCode::Success
    }

    /// One byte when every antenna has the same power (the form of the older documents), per
    /// antenna otherwise.
    fn output_power(&self) -> OutputPower {
        let mut powers = [0u8; 8];
        for ((_, antenna), slot) in self.model.antennas().zip(powers.iter_mut()) {
            *slot = antenna.power_dbm();
        }
        let count = usize::from(self.model.antenna_count());
        let used = &powers[..count];
        if used.iter().all(|&p| p == used[0]) {
            OutputPower::All(used[0])
        } else if count <= 4 {
            OutputPower::PerAntenna([powers[0], powers[1], powers[2], powers[3]])
        } else {
            OutputPower::PerAntenna8(powers)
        }
    }

    /// The frequency index of the next round.
    fn next_channel(&mut self) -> u8 {
        // rounds % CHANNELS < 50, so the arithmetic below stays within u32 and the result
        // below CHANNELS fits a u8.
        let hop = (self.rounds % u32::from(CHANNELS)) * u32::from(CHANNEL_STRIDE);
        self.rounds = self.rounds.wrapping_add(1);
        ((u32::from(FIRST_CHANNEL) + hop) % u32::from(CHANNELS)) as u8
    }

    /// Reads the field of antenna `antenna_id` (0-based) once: the tag records, or `None` when
    /// the antenna is disconnected.
    fn round(&mut self, antenna_id: u8) -> Option<Vec<TagRecord>> {
        let antenna = self.model.antenna(antenna_id + 1).ok()?;
        if !antenna.is_connected() {
            return None;
        }
        let tags: Vec<_> = antenna.readable().to_vec();
        let channel = self.next_channel();
        Some(
            tags.iter()
                .map(|t| TagRecord::new(t.epc, antenna_id + 1, t.rssi, channel))
                .collect(),
        )
    }

    /// 0x89 and 0x8B: tag records on the work antenna, then the round summary.
    fn real_time(&mut self, inventory: Inventory, out: &mut Vec<u8>) {
        let antenna_id = self.work_antenna;
        let Some(tags) = self.round(antenna_id) else {
            return self.reply(
                &Response::InventoryError {
                    inventory,
                    code: ErrorCode::AntennaMissing,
                },
                out,
            );
        };
        for tag in &tags {
            self.reply(
                &Response::Tag {
                    inventory,
                    tag: *tag,
                },
                out,
            );
        }
        let reads = tags.len() as u32;
        let stats = RoundStats {
            antenna_id,
            read_rate: read_rate(reads, ROUND_MS),
            total_reads: reads,
        };
        let end = match inventory {
            Inventory::Session => Response::SessionRoundEnd(stats),
            _ => Response::RealTimeRoundEnd(stats),
        };
        self.reply(&end, out);
    }

    /// 0x8A: each enabled slot in order (an id past the last antenna, or a stay of 0,
    /// disables it), then the run summary.
    fn fast_switch(&mut self, fast: &FastSwitch, out: &mut Vec<u8>) {
        let mut reads = 0u32;
        let mut visited = 0u32;
        for slot in fast.slots.as_slice() {
            if slot.antenna_id >= self.model.antenna_count() || slot.stay == 0 {
                continue;
            }
            visited += 1;
            match self.round(slot.antenna_id) {
                Some(tags) => {
                    for tag in &tags {
                        self.reply(
                            &Response::Tag {
                                inventory: Inventory::FastSwitch,
                                tag: *tag,
                            },
                            out,
                        );
                    }
                    reads += tags.len() as u32;
                }
                None => self.reply(
                    &Response::FastSwitchAntennaError {
                        antenna_id: slot.antenna_id,
                        code: ErrorCode::AntennaMissing,
                    },
                    out,
                ),
            }
        }
        let pauses = visited.saturating_sub(1) * u32::from(fast.interval_ms);
        self.reply(
            &Response::FastSwitchRoundEnd(FastSwitchStats {
                total_reads: reads,
                duration_ms: visited * ROUND_MS + pauses,
            }),
            out,
        );
    }

    /// 0x80: a round on the work antenna into the buffer.
    fn buffered_inventory(&mut self, out: &mut Vec<u8>) {
        let antenna_id = self.work_antenna;
        let Some(tags) = self.round(antenna_id) else {
            return self.reply_raw(
                extra::INVENTORY,
                &[ErrorCode::AntennaMissing.to_byte()],
                out,
            );
        };
        for tag in &tags {
            match self.buffer.iter_mut().find(|b| b.epc == tag.epc) {
                Some(entry) => {
                    entry.rssi_byte = tag.rssi_byte;
                    entry.freq_ant = tag.freq_ant;
                    entry.inventory_count = entry.inventory_count.saturating_add(1);
                }
                None => self.buffer.push(Buffered {
                    epc: tag.epc,
                    rssi_byte: tag.rssi_byte,
                    freq_ant: tag.freq_ant,
                    inventory_count: 1,
                }),
            }
        }
        let reads = tags.len() as u32;
        let count = u16::try_from(self.buffer.len()).unwrap_or(u16::MAX);
        let mut data = [0u8; 9];
        data[0] = antenna_id;
        data[1..3].copy_from_slice(&count.to_be_bytes());
        data[3..5].copy_from_slice(&read_rate(reads, ROUND_MS).to_be_bytes());
        data[5..9].copy_from_slice(&reads.to_be_bytes());
        self.reply_raw(extra::INVENTORY, &data, out);
    }

    /// 0x90 and 0x91: one record per buffered tag, or 0x38 buffer empty.
    fn read_buffer(&mut self, read: BufferRead, out: &mut Vec<u8>) {
        if self.buffer.is_empty() {
            return self.reply(
                &Response::Status {
                    command: read.code(),
                    code: ErrorCode::BufferEmpty,
                },
                out,
            );
        }
        let count = u16::try_from(self.buffer.len()).unwrap_or(u16::MAX);
        for entry in self.buffer.clone() {
            let pc = PcWord::for_epc_len(entry.epc.len());
            let record = BufferRecord {
                count,
                pc,
                epc: entry.epc,
                crc: tag_crc(pc, &entry.epc),
                rssi_byte: entry.rssi_byte,
                freq_ant: entry.freq_ant,
                inventory_count: entry.inventory_count,
            };
            self.reply(&Response::BufferTag { read, record }, out);
        }
    }

    fn reply(&mut self, response: &Response, out: &mut Vec<u8>) {
        let mut frame = [0u8; MAX_FRAME_LEN];
        // MAX_FRAME_LEN holds every frame the codec can encode (Len is one byte).
        if let Ok(len) = encode_response(self.model.address(), response, &mut frame) {
            self.model.emit_frame(&frame[..len], out);
        }
    }

    fn reply_raw(&mut self, command: u8, data: &[u8], out: &mut Vec<u8>) {
        // Every caller passes at most nine bytes, far below the capacity.
        if let Some(data) = Bytes::new(data) {
            self.reply(&Response::Other { command, data }, out);
        }
    }
}

/// Reads per second for `reads` reads in `ms` milliseconds, saturated to 16 bits.
fn read_rate(reads: u32, ms: u32) -> u16 {
    let rate = u64::from(reads) * 1000 / u64::from(ms.max(1));
    u16::try_from(rate).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use custos_protocol::codec::Decoded;
    use custos_protocol::uhf::{AntennaStay, FastSwitchSlots, decode_response, encode_command};
    use proptest::prelude::*;

    use super::*;

    // Lines of shared/vectors/uhf-a0.txt, verbatim.
    const HOST_FIRMWARE_VERSION: &str = "A0 03 01 72 EA";
    const READER_FIRMWARE_VERSION: &str = "A0 05 01 72 08 01 DF";
    const HOST_REAL_TIME_INVENTORY: &str = "A0 04 01 89 FF D3";
    const HOST_REAL_TIME_INVENTORY_PUBLIC: &str = "A0 04 FF 89 FF D5";
    const READER_TAG: &str = "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AB";
    const READER_ANTENNA_MISSING: &str = "A0 04 01 89 22 B0";
    const HOST_SET_WORK_ANTENNA: &str = "A0 04 01 74 00 E7";
    const READER_SUCCESS: &str = "A0 04 01 74 10 D7";
    const REAL_BUFFER_EMPTY: &str = "A0 04 01 90 38 93";
    const REAL_BUFFER_RECORD: &str = "A0 19 01 90 00 01 10 30 00 E2 00 30 98 88 19 00 72 21 40 36 \
                                      9E 4D D4 4B 30 07 E0";
    const BAD_CHECKSUM: &str = "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AC";

    const VECTOR_EPC: &str = "3074257BF7194E4000001A85";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn epc(s: &str) -> Epc {
        Epc::from_hex(s).unwrap()
    }

    /// A host frame built from the public description alone: `A0 Len Addr Cmd Data Check`,
    /// Len = bytes after it, Check = two's complement of the byte sum.
    fn host(address: u8, command: u8, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0xA0, (data.len() + 3) as u8, address, command];
        f.extend_from_slice(data);
        let sum = f.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        f.push(sum.wrapping_neg());
        f
    }

    /// Splits reader output into frames using only the public description; `None` when the
    /// bytes are not exactly a sequence of frames whose bytes sum to zero.
    fn split_frames(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            if bytes[0] != 0xA0 || bytes.len() < 2 || bytes[1] < 3 {
                return None;
            }
            let total = 2 + usize::from(bytes[1]);
            let frame = bytes.get(..total)?;
            if frame.iter().fold(0u8, |a, b| a.wrapping_add(*b)) != 0 {
                return None;
            }
            frames.push(frame.to_vec());
            bytes = &bytes[total..];
        }
        Some(frames)
    }

    fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
        split_frames(bytes).unwrap_or_else(|| panic!("not a frame sequence: {bytes:02X?}"))
    }

    /// Every frame decoded by the daemon's codec.
    fn responses(bytes: &[u8]) -> Vec<(u8, Response)> {
        frames(bytes)
            .iter()
            .map(|f| match decode_response(f) {
                Decoded::Frame { frame, len } if len == f.len() => frame,
                other => panic!("codec rejects {f:02X?}: {other:?}"),
            })
            .collect()
    }

    fn reader() -> A0Reader {
        A0Reader::new(ReaderModel::with_address(0x01))
    }

    fn ask(r: &mut A0Reader, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        r.handle_input(0, bytes, &mut out);
        out
    }

    #[test]
    fn vector_firmware_version_byte_for_byte() {
        let mut r = reader();
        assert_eq!(
            ask(&mut r, &hex(HOST_FIRMWARE_VERSION)),
            hex(READER_FIRMWARE_VERSION)
        );
    }

    #[test]
    fn vector_set_work_antenna_byte_for_byte() {
        let mut r = reader();
        assert_eq!(
            ask(&mut r, &hex(HOST_SET_WORK_ANTENNA)),
            hex(READER_SUCCESS)
        );
        assert_eq!(r.work_antenna(), 1);
        // Antenna id 4 on a four-port reader: "antennaid out of range" (0x47).
        assert_eq!(
            frames(&ask(&mut r, &host(0x01, 0x74, &[0x04])))[0][4],
            ErrorCode::AntennaIdOutOfRange.to_byte()
        );
        assert_eq!(r.work_antenna(), 1);
        ask(&mut r, &host(0x01, 0x74, &[0x03]));
        assert_eq!(
            ask(&mut r, &host(0x01, 0x75, &[])),
            host(0x01, 0x75, &[0x03])
        );
    }

    #[test]
    fn vector_real_time_inventory_tag_then_round_end() {
        let mut r = reader();
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        let out = ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY));
        let f = frames(&out);
        assert_eq!(f.len(), 2);
        // A fresh reader's first tag frame is the vector's, byte for byte.
        assert_eq!(f[0], hex(READER_TAG));
        // The same frame read by hand: antenna from FreqAnt and the RSSI top bit, EPC length
        // from the PC word.
        let tag = &f[0];
        let (freq_ant, pc) = (tag[4], u16::from_be_bytes([tag[5], tag[6]]));
        let epc_len = usize::from((pc >> 11) & 0x1F) * 2;
        let rssi = tag[7 + epc_len];
        assert_eq!((freq_ant & 3) + 1 + 4 * (rssi >> 7), 1);
        assert_eq!(&tag[7..7 + epc_len], epc(VECTOR_EPC).as_bytes());
        assert_eq!(tag.len(), 7 + epc_len + 2);
        // End of round: Len 0x0A, AntID 0, ReadRate(2), TotalRead(4) = 1.
        let end = &f[1];
        assert_eq!(&end[..5], &[0xA0, 0x0A, 0x01, 0x89, 0x00]);
        assert_eq!(u32::from_be_bytes([end[7], end[8], end[9], end[10]]), 1);
        assert_eq!(
            responses(&out)[1].1,
            Response::RealTimeRoundEnd(RoundStats {
                antenna_id: 0,
                read_rate: 20,
                total_reads: 1
            })
        );
    }

    #[test]
    fn empty_field_answers_the_round_end_alone() {
        let mut r = reader();
        let out = ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY));
        assert_eq!(
            responses(&out),
            [(
                0x01,
                Response::RealTimeRoundEnd(RoundStats {
                    antenna_id: 0,
                    read_rate: 0,
                    total_reads: 0
                })
            )]
        );
    }

    #[test]
    fn antennas_five_to_eight_use_the_rssi_top_bit() {
        let mut r = A0Reader::new(ReaderModel::new(0x01, 8).unwrap());
        let tag = epc("E2003098881900722140369E");
        for antenna in 1..=8u8 {
            r.model_mut().clear();
            r.model_mut().set_field(antenna, vec![tag]).unwrap();
            assert_eq!(
                ask(&mut r, &host(0x01, 0x74, &[antenna - 1])),
                host(0x01, 0x74, &[0x10])
            );
            let f = frames(&ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY)));
            let frame = &f[0];
            let (freq_ant, rssi) = (frame[4], frame[frame.len() - 2]);
            assert_eq!(freq_ant & 3, (antenna - 1) & 3, "antenna {antenna}");
            assert_eq!(rssi >> 7, u8::from(antenna > 4), "antenna {antenna}");
            assert_eq!(rssi & 0x7F, 0x4B);
            match responses(&f.concat())[..] {
                [
                    (_, Response::Tag { tag: t, .. }),
                    (_, Response::RealTimeRoundEnd(s)),
                ] => {
                    assert_eq!((t.antenna(), t.epc), (antenna, tag));
                    assert_eq!(s.antenna_id, antenna - 1);
                }
                ref other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn disconnected_work_antenna_answers_antenna_missing() {
        let mut r = reader();
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        r.model_mut().disconnect(1).unwrap();
        assert_eq!(
            ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY)),
            hex(READER_ANTENNA_MISSING)
        );
        // 0x8B the same way.
        assert_eq!(
            ask(&mut r, &host(0x01, 0x8B, &[1, 0, 1])),
            host(0x01, 0x8B, &[0x22])
        );
        r.model_mut().connect(1).unwrap();
        assert_eq!(
            frames(&ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY))).len(),
            2
        );
    }

    #[test]
    fn session_inventory_reports_session_round_end() {
        let mut r = reader();
        r.model_mut()
            .set_field_with_rssi(1, vec![(epc(VECTOR_EPC), 0x30)])
            .unwrap();
        let out = ask(&mut r, &host(0x01, 0x8B, &[1, 0, 1]));
        match responses(&out)[..] {
            [
                (
                    _,
                    Response::Tag {
                        inventory: Inventory::Session,
                        tag,
                    },
                ),
                (_, Response::SessionRoundEnd(s)),
            ] => {
                assert_eq!((tag.rssi(), tag.antenna()), (0x30, 1));
                assert_eq!(s.total_reads, 1);
            }
            ref other => panic!("{other:?}"),
        }
        // Session 4 does not exist.
        assert_eq!(
            ask(&mut r, &host(0x01, 0x8B, &[4, 0, 1])),
            host(0x01, 0x8B, &[0x41])
        );
    }

    #[test]
    fn foreign_address_is_ignored_and_public_address_answered() {
        let mut r = reader();
        assert!(ask(&mut r, &host(0x02, 0x72, &[])).is_empty());
        assert_eq!(r.stats().foreign_address, 1);
        // 0xFF: answered, with the reader's own address.
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        let f = frames(&ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY_PUBLIC)));
        assert_eq!(f[0], hex(READER_TAG));
        assert_eq!(f.len(), 2);
        assert_eq!(r.stats().commands, 1);
    }

    #[test]
    fn malformed_host_frames_are_dropped_counted_and_the_next_command_answered() {
        let mut r = reader();
        let mut input = vec![0x00, 0x13, 0x55];
        input.extend(hex(BAD_CHECKSUM));
        input.extend(host(0x01, 0x74, &[0x00, 0x00])); // checksum fine, data too long
        input.extend([0xA0, 0x02, 0x01]); // Len below 3
        input.extend(hex(HOST_FIRMWARE_VERSION));
        let out = ask(&mut r, &input);
        assert_eq!(out, hex(READER_FIRMWARE_VERSION));
        let s = r.stats();
        assert!(s.malformed >= 4, "{s:?}");
        assert_eq!(s.commands, 1);
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_reply() {
        let mut input = hex(HOST_SET_WORK_ANTENNA);
        input.extend(hex(HOST_FIRMWARE_VERSION));
        let mut whole = reader();
        let expected = ask(&mut whole, &input);
        for cut in 0..=input.len() {
            let mut r = reader();
            let mut out = Vec::new();
            r.handle_input(0, &input[..cut], &mut out);
            r.handle_input(1, &input[cut..], &mut out);
            assert_eq!(out, expected, "cut at {cut}");
        }
    }

    #[test]
    fn silence_answers_nothing_and_forgets_what_was_sent() {
        let mut r = reader();
        r.model_mut().silence(true);
        let fw = hex(HOST_FIRMWARE_VERSION);
        assert!(ask(&mut r, &fw[..2]).is_empty());
        assert!(ask(&mut r, &fw).is_empty());
        assert_eq!(r.stats().silenced_bytes, 7);
        assert_eq!(r.stats().commands, 0);
        r.model_mut().silence(false);
        assert_eq!(ask(&mut r, &fw), hex(READER_FIRMWARE_VERSION));
    }

    #[test]
    fn injected_garbage_precedes_the_next_reply() {
        let mut r = reader();
        r.model_mut().inject_garbage(&[0x00, 0xFF, 0xA0]);
        let out = ask(&mut r, &hex(HOST_FIRMWARE_VERSION));
        assert_eq!(out[..3], [0x00, 0xFF, 0xA0]);
        assert_eq!(out[3..], hex(READER_FIRMWARE_VERSION));
        assert_eq!(
            ask(&mut r, &hex(HOST_FIRMWARE_VERSION)),
            hex(READER_FIRMWARE_VERSION)
        );
    }

    #[test]
    fn corrupt_injection_breaks_exactly_the_next_n_frames() {
        let mut r = reader();
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        r.model_mut().corrupt_next(1);
        let out = ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY));
        assert!(split_frames(&out).is_none());
        // The host codec rejects the first frame on its checksum...
        assert!(matches!(
            decode_response(&out),
            Decoded::Invalid {
                error: UhfError::Checksum { .. },
                ..
            }
        ));
        // ...and the round end behind it is intact.
        let tag_len = hex(READER_TAG).len();
        assert_eq!(frames(&out[tag_len..]).len(), 1);
        assert_eq!(r.stats().corrupted_frames, 1);
        assert_eq!(
            ask(&mut r, &hex(HOST_FIRMWARE_VERSION)),
            hex(READER_FIRMWARE_VERSION)
        );
    }

    #[test]
    fn fast_switch_visits_slots_in_order_and_reports_missing_antennas() {
        let mut r = reader();
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut().set_field(1, vec![a]).unwrap();
        r.model_mut().set_field(2, vec![a, b]).unwrap();
        r.model_mut().set_field(3, vec![b]).unwrap();
        r.model_mut().disconnect(3).unwrap();
        let slot = |antenna_id, stay| AntennaStay { antenna_id, stay };
        let command = Command::FastSwitchInventory(FastSwitch {
            slots: FastSwitchSlots::Four([slot(1, 1), slot(2, 1), slot(0xFF, 1), slot(0, 1)]),
            interval_ms: 5,
            extension: None,
            repeat: 1,
        });
        let mut buf = [0u8; MAX_FRAME_LEN];
        let n = encode_command(0x01, &command, &mut buf).unwrap();
        let got: Vec<_> = responses(&ask(&mut r, &buf[..n]))
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let tag_on = |t: &Response| match t {
            Response::Tag {
                inventory: Inventory::FastSwitch,
                tag,
            } => (tag.antenna(), tag.epc),
            other => panic!("{other:?}"),
        };
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(tag_on(&got[0]), (2, a));
        assert_eq!(tag_on(&got[1]), (2, b));
        assert_eq!(
            got[2],
            Response::FastSwitchAntennaError {
                antenna_id: 2,
                code: ErrorCode::AntennaMissing
            }
        );
        assert_eq!(tag_on(&got[3]), (1, a));
        assert_eq!(
            got[4],
            Response::FastSwitchRoundEnd(FastSwitchStats {
                total_reads: 3,
                duration_ms: 3 * ROUND_MS + 2 * 5
            })
        );
    }

    #[test]
    fn buffer_record_matches_the_real_capture_up_to_freq_ant() {
        let mut r = reader();
        r.model_mut()
            .set_field(1, vec![epc("E2003098881900722140369E")])
            .unwrap();
        ask(&mut r, &host(0x01, 0x80, &[0x01]));
        let got = ask(&mut r, &host(0x01, 0x90, &[]));
        let real = hex(REAL_BUFFER_RECORD);
        // Head, Len, address, command, count 1, DataLen 16, PC 3000, EPC, tag CRC 4DD4 (Gen2
        // CRC-16/GENIBUS over PC+EPC), RSSI 4B; the real reader had another channel and had
        // read the tag seven times.
        assert_eq!(got.len(), real.len());
        assert_eq!(got[..24], real[..24]);
        assert_eq!(&got[24..26], &[0x1C, 0x01]);
        assert_eq!(frames(&got).len(), 1);
    }

    #[test]
    fn inventory_buffer_fill_read_and_reset() {
        let mut r = reader();
        // Empty buffer, as captured from a real reader.
        assert_eq!(ask(&mut r, &host(0x01, 0x90, &[])), hex(REAL_BUFFER_EMPTY));
        let (a, b) = (epc(VECTOR_EPC), epc("E2003098881900722140369E"));
        r.model_mut().set_field(1, vec![a, b]).unwrap();
        // 0x80 inventory: AntID 0, TagCount 2, ReadRate 40/s, TotalRead 2.
        assert_eq!(
            ask(&mut r, &host(0x01, 0x80, &[0xFF])),
            host(
                0x01,
                0x80,
                &[0x00, 0x00, 0x02, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02]
            )
        );
        r.model_mut().set_field(1, vec![b]).unwrap();
        ask(&mut r, &host(0x01, 0x80, &[0x01]));
        assert_eq!(
            ask(&mut r, &host(0x01, 0x92, &[])),
            host(0x01, 0x92, &[0x00, 0x02])
        );
        let records: Vec<_> = responses(&ask(&mut r, &host(0x01, 0x90, &[])))
            .into_iter()
            .map(|(_, resp)| match resp {
                Response::BufferTag {
                    read: BufferRead::Read,
                    record,
                } => record,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].epc, records[0].inventory_count), (a, 1));
        assert_eq!((records[1].epc, records[1].inventory_count), (b, 2));
        assert_eq!(records[1].crc, 0x4DD4);
        assert!(
            records
                .iter()
                .all(|rec| rec.count == 2 && rec.antenna() == 1)
        );
        // 0x90 keeps the buffer, 0x91 empties it.
        assert_eq!(frames(&ask(&mut r, &host(0x01, 0x91, &[]))).len(), 2);
        assert_eq!(
            ask(&mut r, &host(0x01, 0x91, &[])),
            host(0x01, 0x91, &[0x38])
        );
        ask(&mut r, &host(0x01, 0x80, &[0x01]));
        assert_eq!(
            ask(&mut r, &host(0x01, 0x93, &[])),
            host(0x01, 0x93, &[0x10])
        );
        assert_eq!(ask(&mut r, &host(0x01, 0x90, &[])), hex(REAL_BUFFER_EMPTY));
        // Real-time inventories leave the buffer alone.
        ask(&mut r, &hex(HOST_REAL_TIME_INVENTORY));
        assert_eq!(ask(&mut r, &host(0x01, 0x90, &[])), hex(REAL_BUFFER_EMPTY));
        // A buffered inventory on a missing antenna.
        r.model_mut().disconnect(1).unwrap();
        assert_eq!(
            ask(&mut r, &host(0x01, 0x80, &[0x01])),
            host(0x01, 0x80, &[0x22])
        );
    }

    #[test]
    fn unknown_command_answers_command_failed() {
        let mut r = reader();
        assert_eq!(
            ask(&mut r, &host(0x01, 0x99, &[1, 2, 3])),
            host(0x01, 0x99, &[0x11])
        );
        // A known untyped command with the wrong data is refused the same way.
        assert_eq!(
            ask(&mut r, &host(0x01, 0x80, &[])),
            host(0x01, 0x80, &[0x11])
        );
    }

    #[test]
    fn reset_answers_nothing_and_restores_the_work_antenna() {
        let mut r = reader();
        ask(&mut r, &host(0x01, 0x74, &[0x02]));
        r.model_mut().set_field(1, vec![epc(VECTOR_EPC)]).unwrap();
        ask(&mut r, &host(0x01, 0x80, &[0x01]));
        assert!(ask(&mut r, &host(0x01, 0x70, &[])).is_empty());
        assert_eq!(r.work_antenna(), 1);
        assert_eq!(ask(&mut r, &host(0x01, 0x90, &[])), hex(REAL_BUFFER_EMPTY));
    }

    #[test]
    fn output_power_set_and_query() {
        let mut r = reader();
        assert_eq!(ask(&mut r, &host(0x01, 0x77, &[])), host(0x01, 0x77, &[30]));
        assert_eq!(
            ask(&mut r, &host(0x01, 0x76, &[20, 21, 22, 23])),
            host(0x01, 0x76, &[0x10])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x77, &[])),
            host(0x01, 0x77, &[20, 21, 22, 23])
        );
        assert_eq!(r.model().antenna(4).unwrap().power_dbm(), 23);
        assert_eq!(
            ask(&mut r, &host(0x01, 0x76, &[34])),
            host(0x01, 0x76, &[0x48])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x76, &[25; 8])),
            host(0x01, 0x76, &[0x41])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x66, &[26])),
            host(0x01, 0x66, &[0x10])
        );
        assert_eq!(ask(&mut r, &host(0x01, 0x77, &[])), host(0x01, 0x77, &[26]));
        let mut eight = A0Reader::new(ReaderModel::new(0x01, 8).unwrap());
        let powers = [20, 21, 22, 23, 24, 25, 26, 27];
        ask(&mut eight, &host(0x01, 0x76, &powers));
        assert_eq!(
            ask(&mut eight, &host(0x01, 0x77, &[])),
            host(0x01, 0x77, &powers)
        );
    }

    #[test]
    fn temperature_gpio_detector_and_address() {
        let mut r = reader();
        r.model_mut().set_temperature_c(-5);
        assert_eq!(
            ask(&mut r, &host(0x01, 0x7B, &[])),
            host(0x01, 0x7B, &[0x00, 0x05])
        );
        r.model_mut().set_gpio_inputs([true, false]);
        assert_eq!(
            ask(&mut r, &host(0x01, 0x60, &[])),
            host(0x01, 0x60, &[0x01, 0x00])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x61, &[0x04, 0x01])),
            host(0x01, 0x61, &[0x10])
        );
        assert_eq!(r.model().gpio_outputs(), [false, true]);
        assert_eq!(
            ask(&mut r, &host(0x01, 0x61, &[0x01, 0x01])),
            host(0x01, 0x61, &[0x41])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x62, &[0x0A])),
            host(0x01, 0x62, &[0x10])
        );
        assert_eq!(
            ask(&mut r, &host(0x01, 0x63, &[])),
            host(0x01, 0x63, &[0x0A])
        );
        // Set address 5: the reply comes from the new address, and 1 is now foreign.
        assert_eq!(
            ask(&mut r, &host(0x01, 0x73, &[0x05])),
            host(0x05, 0x73, &[0x10])
        );
        assert!(ask(&mut r, &hex(HOST_FIRMWARE_VERSION)).is_empty());
        assert_eq!(
            ask(&mut r, &host(0x05, 0x72, &[])),
            host(0x05, 0x72, &[0x08, 0x01])
        );
        assert_eq!(
            ask(&mut r, &host(0x05, 0x73, &[0xFF])),
            host(0x05, 0x73, &[0x46])
        );
    }

    /// Host input: noise, and well-checksummed frames with any command and data.
    fn host_chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let frame = (
            prop_oneof![Just(0x01u8), Just(0xFF), any::<u8>()],
            prop_oneof![
                proptest::sample::select(vec![
                    0x60u8, 0x61, 0x62, 0x63, 0x66, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
                    0x7A, 0x7B, 0x80, 0x89, 0x8A, 0x8B, 0x90, 0x91, 0x92, 0x93,
                ]),
                any::<u8>()
            ],
            // The lengths the typed commands accept, and anything else.
            prop_oneof![
                proptest::sample::select(vec![0usize, 1, 2, 3, 4, 8, 10, 18, 29]),
                0usize..40
            ]
            .prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        )
            .prop_map(|(address, command, data)| host(address, command, &data));
        let noise = proptest::collection::vec(any::<u8>(), 0..24);
        proptest::collection::vec(prop_oneof![frame, noise], 0..16)
    }

    fn populated_reader() -> A0Reader {
        let mut r = A0Reader::new(ReaderModel::new(0x01, 8).unwrap());
        let m = r.model_mut();
        m.set_field(1, vec![epc(VECTOR_EPC), epc("E2003098881900722140369E")])
            .unwrap();
        m.set_field(6, vec![epc("3034257BF400B7800004CB2F")])
            .unwrap();
        m.disconnect(3).unwrap();
        r
    }

    proptest! {
        /// Whatever the host sends, in whatever pieces, the reader does not panic and its
        /// output is exactly a sequence of valid frames, each of which the daemon's codec
        /// decodes.
        #[test]
        fn output_is_always_a_sequence_of_valid_frames(
            chunks in host_chunks(),
            splits in proptest::collection::vec(0usize..64, 0..8),
        ) {
            let mut r = populated_reader();
            let input = chunks.concat();
            let mut out = Vec::new();
            let mut rest = &input[..];
            let mut now = 0;
            for s in splits {
                let (head, tail) = rest.split_at(s.min(rest.len()));
                r.handle_input(now, head, &mut out);
                rest = tail;
                now += 3;
            }
            r.handle_input(now, rest, &mut out);
            for frame in split_frames(&out).expect("valid frame sequence") {
                let decoded = decode_response(&frame);
                prop_assert!(
                    matches!(decoded, Decoded::Frame { len, .. } if len == frame.len()),
                    "{frame:02X?}: {decoded:?}"
                );
            }
        }

        /// After any noise, a firmware query to the public address that follows enough
        /// non-head bytes to complete any frame the noise started is answered.
        #[test]
        fn a_good_command_after_noise_is_answered(
            noise in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut r = populated_reader();
            let mut input = noise;
            input.extend([0u8; MAX_FRAME_LEN]);
            input.extend(host(0xFF, 0x72, &[]));
            let mut out = Vec::new();
            r.handle_input(0, &input, &mut out);
            let frames = split_frames(&out).expect("valid frame sequence");
            let last = frames.last().expect("a reply");
            prop_assert_eq!(&last[3..6], &[0x72, 0x08, 0x01]);
        }

        /// With a corruption pending, the first frame the reader writes fails the checksum.
        #[test]
        fn corruption_makes_the_next_frame_invalid(chunks in host_chunks()) {
            let mut r = populated_reader();
            r.model_mut().corrupt_next(1);
            let mut input = chunks.concat();
            input.extend([0u8; MAX_FRAME_LEN]);
            input.extend(hex(HOST_FIRMWARE_VERSION));
            let mut out = Vec::new();
            r.handle_input(0, &input, &mut out);
            prop_assert!(split_frames(&out).is_none());
            let first_invalid = matches!(
                decode_response(&out),
                Decoded::Invalid { error: UhfError::Checksum { .. }, .. }
            );
            prop_assert!(first_invalid);
        }
    }
}
