//! Bytes ⇄ frames: the `A0 Len Addr Cmd Data.. Check` envelope, and the data layout of every
//! command and reply in [`super::frame`].
//!
//! Decoders follow [`crate::codec::Decoded`]: a byte other than 0xA0 at the start is skipped
//! together with everything up to the next 0xA0; a bad length byte, a bad checksum or a
//! well-framed frame whose data does not fit its command drop exactly one byte, so a real frame
//! starting inside the rejected one is still found. Unknown command bytes are not errors: they
//! decode as the `Other` variants.

use crate::codec::{BufferTooSmall, Decoded};
use crate::epc::{Epc, PcWord};

use super::frame::{
    AntennaStay, BufferRead, BufferRecord, Bytes, Command, ErrorCode, FastSwitch,
    FastSwitchExtension, FastSwitchSlots, FastSwitchStats, Inventory, MAX_DATA_LEN,
    MAX_SESSION_EXTRA, OutputPower, Response, RoundStats, SessionInventory, TagRecord, Temperature,
    cmd,
};

/// The head byte that starts every frame, in both directions (spec 1.2: "Head: 0xA0").
pub const HEAD: u8 = 0xA0;

/// The smallest Len byte: Address, Cmd and Check with no data.
pub const MIN_LEN: u8 = 3;

/// The longest frame: head, Len, and up to 255 bytes counted by Len. Use it (or more) as the
/// capacity of a [`crate::codec::StreamDecoder`].
pub const MAX_FRAME_LEN: usize = 2 + u8::MAX as usize;

/// Why bytes were rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UhfError {
    /// The first byte is not the head byte 0xA0.
    #[error("expected head byte 0xa0, found {0:#04x}")]
    NotHead(u8),
    /// The Len byte is below 3, too short for Address, Cmd and Check.
    #[error("length byte {0} is below 3")]
    LengthTooShort(u8),
    /// The Check byte does not match the bytes before it.
    #[error("checksum mismatch: frame has {found:#04x}, bytes give {expected:#04x}")]
    Checksum {
        /// The check byte computed from the frame.
        expected: u8,
        /// The check byte the frame carries.
        found: u8,
    },
    /// The data field has a length the command does not allow.
    #[error("{field}: unexpected data length {len}")]
    DataLength {
        /// The command or reply whose data it is.
        field: &'static str,
        /// The data length received.
        len: usize,
    },
    /// A field inside the data contradicts the frame (e.g. a PC word announcing more EPC bytes
    /// than the frame holds).
    #[error("malformed {field}")]
    Malformed {
        /// The field that failed.
        field: &'static str,
    },
}

/// The check byte: the two's complement of the byte sum of everything before it, so that the
/// whole frame sums to zero modulo 256 (spec 1.2, "Check").
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// A frame whose envelope (head, length, checksum) is valid, its data not yet interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The reader address (0xFF is the public address every reader answers).
    pub address: u8,
    /// The command byte.
    pub command: u8,
    /// The data bytes between Cmd and Check.
    pub data: &'a [u8],
}

/// Splits one frame off the start of `buf` without interpreting its data.
pub fn decode_envelope(buf: &[u8]) -> Decoded<Envelope<'_>, UhfError> {
    let Some(&first) = buf.first() else {
        return Decoded::NeedMore;
    };
    if first != HEAD {
        // Nothing before the next head byte can start a frame.
        let skip = buf.iter().position(|&b| b == HEAD).unwrap_or(buf.len());
        return Decoded::Invalid {
            error: UhfError::NotHead(first),
            skip,
        };
    }
    let Some(&len) = buf.get(1) else {
        return Decoded::NeedMore;
    };
    if len < MIN_LEN {
        return Decoded::Invalid {
            error: UhfError::LengthTooShort(len),
            skip: 1,
        };
    }
    let total = 2 + usize::from(len);
    let Some(frame) = buf.get(..total) else {
        return Decoded::NeedMore;
    };
    // total >= 5, so every index below is in range.
    let found = frame[total - 1];
    let expected = checksum(&frame[..total - 1]);
    if found != expected {
        return Decoded::Invalid {
            error: UhfError::Checksum { expected, found },
            skip: 1,
        };
    }
    Decoded::Frame {
        frame: Envelope {
            address: frame[2],
            command: frame[3],
            data: &frame[4..total - 1],
        },
        len: total,
    }
}

/// Decodes a host command (host -> reader) at the start of `buf`: the reader's (or simulator's)
/// side. Returns the address and the command.
pub fn decode_command(buf: &[u8]) -> Decoded<(u8, Command), UhfError> {
    interpret(buf, parse_command)
}

/// Decodes a reader reply (reader -> host) at the start of `buf`: the daemon's side. Returns
/// the address and the reply.
pub fn decode_response(buf: &[u8]) -> Decoded<(u8, Response), UhfError> {
    interpret(buf, parse_response)
}

#[inline]
fn interpret<T>(
    buf: &[u8],
    parse: fn(u8, &[u8]) -> Result<T, UhfError>,
) -> Decoded<(u8, T), UhfError> {
    match decode_envelope(buf) {
        Decoded::Frame { frame, len } => match parse(frame.command, frame.data) {
            Ok(value) => Decoded::Frame {
                frame: (frame.address, value),
                len,
            },
            // The checksum matched, but a chance match inside noise is 1 in 256: drop one byte
            // rather than the whole frame.
            Err(error) => Decoded::Invalid { error, skip: 1 },
        },
        Decoded::NeedMore => Decoded::NeedMore,
        Decoded::Invalid { error, skip } => Decoded::Invalid { error, skip },
    }
}

/// Encodes a host command into `out`; returns the frame length.
pub fn encode_command(
    address: u8,
    command: &Command,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut data = DataBuf::new();
    write_command(command, &mut data);
    write_frame(address, command.code(), data.as_bytes(), out)
}

/// Encodes a reader reply into `out`; returns the frame length.
pub fn encode_response(
    address: u8,
    response: &Response,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let mut data = DataBuf::new();
    write_response(response, &mut data);
    write_frame(address, response.command(), data.as_bytes(), out)
}

/// Writes `A0 Len Addr Cmd data Check` into `out`.
fn write_frame(
    address: u8,
    command: u8,
    data: &[u8],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    // data.len() <= MAX_DATA_LEN (DataBuf's capacity), so Len fits one byte.
    let total = data.len() + 5;
    let Some(frame) = out.get_mut(..total) else {
        return Err(BufferTooSmall { needed: total });
    };
    frame[0] = HEAD;
    frame[1] = (total - 2) as u8;
    frame[2] = address;
    frame[3] = command;
    frame[4..total - 1].copy_from_slice(data);
    frame[total - 1] = checksum(&frame[..total - 1]);
    Ok(total)
}

/// A data field under construction. Every typed layout is far below the capacity; `Other`
/// carries at most [`MAX_DATA_LEN`] bytes by construction, so pushes never overflow.
struct DataBuf {
    buf: [u8; MAX_DATA_LEN],
    len: usize,
}

impl DataBuf {
    fn new() -> Self {
        Self {
            buf: [0; MAX_DATA_LEN],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        self.extend(&[byte]);
    }

    fn extend(&mut self, bytes: &[u8]) {
        // In range: see the type's invariant.
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn write_command(command: &Command, out: &mut DataBuf) {
    match command {
        Command::Reset
        | Command::QueryFirmwareVersion
        | Command::QueryWorkAntenna
        | Command::QueryOutputPower
        | Command::QueryTemperature
        | Command::QueryAntennaDetector
        | Command::ReadGpio
        | Command::ReadInventoryBuffer
        | Command::ReadAndResetInventoryBuffer
        | Command::ResetInventoryBuffer => {}
        Command::SetWorkAntenna { antenna_id } => out.push(*antenna_id),
        Command::SetOutputPower(power) => out.extend(power.as_bytes()),
        Command::SetAntennaDetector { threshold_db } => out.push(*threshold_db),
        Command::WriteGpio { gpio, level } => out.extend(&[*gpio, *level]),
        Command::RealTimeInventory { repeat } => out.push(*repeat),
        Command::FastSwitchInventory(fast) => {
            for slot in fast.slots.as_slice() {
                out.extend(&[slot.antenna_id, slot.stay]);
            }
            out.push(fast.interval_ms);
            if let Some(ext) = &fast.extension {
                out.extend(&ext.reserved);
                out.extend(&[
                    ext.session,
                    ext.target,
                    ext.optimize,
                    ext.ongoing,
                    ext.target_quantity,
                    ext.phase,
                ]);
            }
            out.push(fast.repeat);
        }
        Command::SessionInventory(s) => {
            out.extend(&[s.session, s.target]);
            out.extend(s.extra.as_bytes());
            out.push(s.repeat);
        }
        Command::Other { data, .. } => out.extend(data.as_bytes()),
    }
}

fn write_response(response: &Response, out: &mut DataBuf) {
    match response {
        Response::Status { code, .. } | Response::InventoryError { code, .. } => {
            out.push(code.to_byte())
        }
        Response::FirmwareVersion { major, minor } => out.extend(&[*major, *minor]),
        Response::WorkAntenna { antenna_id } => out.push(*antenna_id),
        Response::OutputPower(power) => out.extend(power.as_bytes()),
        Response::Temperature(t) => out.extend(&[u8::from(t.positive), t.degrees]),
        Response::AntennaDetector { threshold_db } => out.push(*threshold_db),
        Response::Gpio { gpio1, gpio2 } => out.extend(&[*gpio1, *gpio2]),
        Response::Tag { tag, .. } => {
            out.push(tag.freq_ant);
            out.extend(&tag.pc.0.to_be_bytes());
            out.extend(tag.epc.as_bytes());
            out.push(tag.rssi_byte);
        }
        Response::RealTimeRoundEnd(stats) | Response::SessionRoundEnd(stats) => {
            out.push(stats.antenna_id);
            out.extend(&stats.read_rate.to_be_bytes());
            out.extend(&stats.total_reads.to_be_bytes());
        }
        Response::FastSwitchRoundEnd(stats) => {
            out.extend(&stats.total_reads.to_be_bytes()[1..]);
            out.extend(&stats.duration_ms.to_be_bytes());
        }
        Response::FastSwitchAntennaError { antenna_id, code } => {
            out.extend(&[*antenna_id, code.to_byte()])
        }
        Response::BufferTag { record, .. } => {
            out.extend(&record.count.to_be_bytes());
            // DataLen counts PC, EPC and CRC; the EPC is at most 62 bytes.
            out.push((4 + record.epc.len()) as u8);
            out.extend(&record.pc.0.to_be_bytes());
            out.extend(record.epc.as_bytes());
            out.extend(&record.crc.to_be_bytes());
            out.extend(&[record.rssi_byte, record.freq_ant, record.inventory_count]);
        }
        Response::Other { data, .. } => out.extend(data.as_bytes()),
    }
}

/// Interprets the data of a host command with command byte `command`.
pub fn parse_command(command: u8, data: &[u8]) -> Result<Command, UhfError> {
    let no_data = |field: &'static str, value: Command| {
        if data.is_empty() {
            Ok(value)
        } else {
            Err(UhfError::DataLength {
                field,
                len: data.len(),
            })
        }
    };
    let wrong = |field: &'static str| UhfError::DataLength {
        field,
        len: data.len(),
    };
    match command {
        cmd::RESET => no_data("reset", Command::Reset),
        cmd::QUERY_FIRMWARE_VERSION => {
            no_data("firmware version query", Command::QueryFirmwareVersion)
        }
        cmd::QUERY_WORK_ANTENNA => no_data("work antenna query", Command::QueryWorkAntenna),
        cmd::QUERY_OUTPUT_POWER => no_data("output power query", Command::QueryOutputPower),
        cmd::QUERY_TEMPERATURE => no_data("temperature query", Command::QueryTemperature),
        cmd::QUERY_ANTENNA_DETECTOR => {
            no_data("antenna detector query", Command::QueryAntennaDetector)
        }
        cmd::READ_GPIO => no_data("gpio read", Command::ReadGpio),
        cmd::READ_INVENTORY_BUFFER => no_data("buffer read", Command::ReadInventoryBuffer),
        cmd::READ_AND_RESET_INVENTORY_BUFFER => no_data(
            "buffer read and reset",
            Command::ReadAndResetInventoryBuffer,
        ),
        cmd::RESET_INVENTORY_BUFFER => no_data("buffer reset", Command::ResetInventoryBuffer),
        cmd::SET_WORK_ANTENNA => match data {
            [antenna_id] => Ok(Command::SetWorkAntenna {
                antenna_id: *antenna_id,
            }),
            _ => Err(wrong("set work antenna")),
        },
        cmd::SET_OUTPUT_POWER => parse_output_power(data)
            .map(Command::SetOutputPower)
            .ok_or(wrong("set output power")),
        cmd::SET_ANTENNA_DETECTOR => match data {
            [threshold_db] => Ok(Command::SetAntennaDetector {
                threshold_db: *threshold_db,
            }),
            _ => Err(wrong("set antenna detector")),
        },
        cmd::WRITE_GPIO => match data {
            [gpio, level] => Ok(Command::WriteGpio {
                gpio: *gpio,
                level: *level,
            }),
            _ => Err(wrong("gpio write")),
        },
        cmd::REAL_TIME_INVENTORY => match data {
            [repeat] => Ok(Command::RealTimeInventory { repeat: *repeat }),
            _ => Err(wrong("real-time inventory")),
        },
        cmd::FAST_SWITCH_INVENTORY => parse_fast_switch(data)
            .map(Command::FastSwitchInventory)
            .ok_or(wrong("fast switch")),
        cmd::SESSION_INVENTORY => match data {
            [session, target, extra @ .., repeat] if extra.len() <= MAX_SESSION_EXTRA => {
                Ok(Command::SessionInventory(SessionInventory {
                    session: *session,
                    target: *target,
                    // Length checked by the guard.
                    extra: Bytes::new(extra).ok_or(wrong("session inventory"))?,
                    repeat: *repeat,
                }))
            }
            _ => Err(wrong("session inventory")),
        },
        other => Ok(Command::Other {
            command: other,
            data: raw(data)?,
        }),
    }
}

/// Interprets the data of a reader reply with command byte `command`.
pub fn parse_response(command: u8, data: &[u8]) -> Result<Response, UhfError> {
    let wrong = |field: &'static str| UhfError::DataLength {
        field,
        len: data.len(),
    };
    if let Some(inventory) = Inventory::from_code(command) {
        return parse_inventory_reply(inventory, data);
    }
    match (command, data) {
        (cmd::READ_INVENTORY_BUFFER | cmd::READ_AND_RESET_INVENTORY_BUFFER, [code]) => {
            Ok(Response::Status {
                command,
                code: ErrorCode::from_byte(*code),
            })
        }
        (cmd::READ_INVENTORY_BUFFER, _) => {
            parse_buffer_record(data).map(|record| Response::BufferTag {
                read: BufferRead::Read,
                record,
            })
        }
        (cmd::READ_AND_RESET_INVENTORY_BUFFER, _) => {
            parse_buffer_record(data).map(|record| Response::BufferTag {
                read: BufferRead::ReadAndReset,
                record,
            })
        }
        // These three answer with one byte on success, so a one-byte reply is the value.
        (cmd::QUERY_WORK_ANTENNA, [antenna_id]) => Ok(Response::WorkAntenna {
            antenna_id: *antenna_id,
        }),
        (cmd::QUERY_WORK_ANTENNA, _) => Err(wrong("work antenna")),
        (cmd::QUERY_ANTENNA_DETECTOR, [threshold_db]) => Ok(Response::AntennaDetector {
            threshold_db: *threshold_db,
        }),
        (cmd::QUERY_ANTENNA_DETECTOR, _) => Err(wrong("antenna detector")),
        (cmd::QUERY_OUTPUT_POWER, _) => parse_output_power(data)
            .map(Response::OutputPower)
            .ok_or(wrong("output power")),
        (cmd::QUERY_FIRMWARE_VERSION, [major, minor]) => Ok(Response::FirmwareVersion {
            major: *major,
            minor: *minor,
        }),
        (cmd::QUERY_TEMPERATURE, [sign, degrees]) => {
            let positive = match sign {
                0x00 => false,
                0x01 => true,
                _ => {
                    return Err(UhfError::Malformed {
                        field: "temperature sign",
                    });
                }
            };
            Ok(Response::Temperature(Temperature {
                positive,
                degrees: *degrees,
            }))
        }
        (cmd::READ_GPIO, [gpio1, gpio2]) => Ok(Response::Gpio {
            gpio1: *gpio1,
            gpio2: *gpio2,
        }),
        // Every other modelled command answers with an ErrorCode alone; so do the queries above
        // when they fail.
        (_, [code]) if cmd::is_modelled(command) => Ok(Response::Status {
            command,
            code: ErrorCode::from_byte(*code),
        }),
        (_, _) if cmd::is_modelled(command) => Err(wrong(reply_name(command))),
        (_, _) => Ok(Response::Other {
            command,
            data: raw(data)?,
        }),
    }
}

/// What the reply to a modelled command is called in errors.
fn reply_name(command: u8) -> &'static str {
    match command {
        cmd::QUERY_FIRMWARE_VERSION => "firmware version",
        cmd::QUERY_TEMPERATURE => "temperature",
        cmd::READ_GPIO => "gpio levels",
        _ => "status",
    }
}

fn raw(data: &[u8]) -> Result<Bytes<MAX_DATA_LEN>, UhfError> {
    // The envelope limits data to MAX_DATA_LEN; the error only guards direct callers.
    Bytes::new(data).ok_or(UhfError::DataLength {
        field: "data",
        len: data.len(),
    })
}

fn parse_output_power(data: &[u8]) -> Option<OutputPower> {
    match data {
        [all] => Some(OutputPower::All(*all)),
        _ => {
            if let Ok(four) = <[u8; 4]>::try_from(data) {
                Some(OutputPower::PerAntenna(four))
            } else {
                <[u8; 8]>::try_from(data).ok().map(OutputPower::PerAntenna8)
            }
        }
    }
}

/// Parses `A Astay B Bstay ..` slots, Interval, an optional extension, Repeat (layouts in
/// [`FastSwitch`]).
fn parse_fast_switch(data: &[u8]) -> Option<FastSwitch> {
    const FOUR: usize = 4 * 2 + 2;
    const EIGHT: usize = 8 * 2 + 2;
    const EXTENDED: usize = EIGHT + FastSwitchExtension::LEN;
    let ports = match data.len() {
        FOUR => 4,
        EIGHT | EXTENDED => 8,
        _ => return None,
    };
    let (slot_bytes, rest) = data.split_at(ports * 2);
    let mut slots = [AntennaStay::DISABLED; 8];
    for (slot, pair) in slots.iter_mut().zip(slot_bytes.chunks_exact(2)) {
        *slot = AntennaStay {
            antenna_id: pair[0],
            stay: pair[1],
        };
    }
    let (&interval_ms, rest) = rest.split_first()?;
    let (&repeat, ext) = rest.split_last()?;
    let extension = match ext {
        [] => None,
        [
            r0,
            r1,
            r2,
            r3,
            r4,
            session,
            target,
            optimize,
            ongoing,
            target_quantity,
            phase,
        ] => Some(FastSwitchExtension {
            reserved: [*r0, *r1, *r2, *r3, *r4],
            session: *session,
            target: *target,
            optimize: *optimize,
            ongoing: *ongoing,
            target_quantity: *target_quantity,
            phase: *phase,
        }),
        _ => return None,
    };
    let slots = if ports == 4 {
        FastSwitchSlots::Four([slots[0], slots[1], slots[2], slots[3]])
    } else {
        FastSwitchSlots::Eight(slots)
    };
    Some(FastSwitch {
        slots,
        interval_ms,
        extension,
        repeat,
    })
}

/// The three (for 0x8A four) shapes of an inventory reply, told apart by the data length:
/// 1 = ErrorCode, 2 = AntID ErrorCode (0x8A), 7 = end-of-round summary, otherwise a tag.
fn parse_inventory_reply(inventory: Inventory, data: &[u8]) -> Result<Response, UhfError> {
    match (inventory, data) {
        (_, [code]) => Ok(Response::InventoryError {
            inventory,
            code: ErrorCode::from_byte(*code),
        }),
        (Inventory::FastSwitch, [antenna_id, code]) => Ok(Response::FastSwitchAntennaError {
            antenna_id: *antenna_id,
            code: ErrorCode::from_byte(*code),
        }),
        (Inventory::FastSwitch, [t0, t1, t2, d0, d1, d2, d3]) => {
            Ok(Response::FastSwitchRoundEnd(FastSwitchStats {
                total_reads: u32::from_be_bytes([0, *t0, *t1, *t2]),
                duration_ms: u32::from_be_bytes([*d0, *d1, *d2, *d3]),
            }))
        }
        (_, [antenna_id, r0, r1, t0, t1, t2, t3]) => {
            let stats = RoundStats {
                antenna_id: *antenna_id,
                read_rate: u16::from_be_bytes([*r0, *r1]),
                total_reads: u32::from_be_bytes([*t0, *t1, *t2, *t3]),
            };
            Ok(match inventory {
                Inventory::Session => Response::SessionRoundEnd(stats),
                _ => Response::RealTimeRoundEnd(stats),
            })
        }
        (_, _) => parse_tag_record(data).map(|tag| Response::Tag { inventory, tag }),
    }
}

/// `FreqAnt PC(2) EPC(n) RSSI [extra..]`, n from the PC word.
#[inline]
fn parse_tag_record(data: &[u8]) -> Result<TagRecord, UhfError> {
    let [freq_ant, pc_hi, pc_lo, rest @ ..] = data else {
        return Err(UhfError::DataLength {
            field: "tag record",
            len: data.len(),
        });
    };
    let pc = PcWord(u16::from_be_bytes([*pc_hi, *pc_lo]));
    let epc_len = pc.epc_len_bytes();
    // Trailing bytes after RSSI (phase on some firmware) are ignored.
    let (Some(epc), Some(&rssi_byte)) = (rest.get(..epc_len), rest.get(epc_len)) else {
        return Err(UhfError::Malformed { field: "tag epc" });
    };
    Ok(TagRecord {
        freq_ant: *freq_ant,
        pc,
        // A PC word announces at most 62 bytes, the capacity of `Epc`.
        epc: Epc::new(epc).map_err(|_| UhfError::Malformed { field: "tag epc" })?,
        rssi_byte,
    })
}

/// `TagCount(2) DataLen PC(2) EPC(n) CRC(2) RSSI FreqAnt InvCount`, DataLen = 2 + n + 2.
fn parse_buffer_record(data: &[u8]) -> Result<BufferRecord, UhfError> {
    let [c0, c1, data_len, rest @ ..] = data else {
        return Err(UhfError::DataLength {
            field: "buffer record",
            len: data.len(),
        });
    };
    let data_len = usize::from(*data_len);
    if rest.len() != data_len + 3 {
        return Err(UhfError::Malformed {
            field: "buffer record data length",
        });
    }
    let (tag, [rssi_byte, freq_ant, inventory_count]) = rest.split_at(data_len) else {
        // rest.len() == data_len + 3 was checked above.
        return Err(UhfError::Malformed {
            field: "buffer record data length",
        });
    };
    let [pc_hi, pc_lo, epc_and_crc @ ..] = tag else {
        return Err(UhfError::Malformed {
            field: "buffer record data length",
        });
    };
    let Some((epc_area, crc)) = epc_and_crc.split_last_chunk::<2>() else {
        return Err(UhfError::Malformed {
            field: "buffer record data length",
        });
    };
    let pc = PcWord(u16::from_be_bytes([*pc_hi, *pc_lo]));
    // The PC word may announce fewer bytes than DataLen leaves (XPC words follow the EPC on
    // some tags); more is a contradiction.
    let epc = epc_area
        .get(..pc.epc_len_bytes())
        .ok_or(UhfError::Malformed {
            field: "buffer record epc",
        })?;
    Ok(BufferRecord {
        count: u16::from_be_bytes([*c0, *c1]),
        pc,
        epc: Epc::new(epc).map_err(|_| UhfError::Malformed {
            field: "buffer record epc",
        })?,
        // Not verified here (CRC-16/GENIBUS over PC+EPC): the daemon checks it with epc::gen2.
        crc: u16::from_be_bytes(*crc),
        rssi_byte: *rssi_byte,
        freq_ant: *freq_ant,
        inventory_count: *inventory_count,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec::StreamDecoder;

    // Lines of shared/vectors/uhf-a0.txt, verbatim.
    const HOST_FIRMWARE_VERSION: &str = "A0 03 01 72 EA";
    const READER_FIRMWARE_VERSION: &str = "A0 05 01 72 08 01 DF";
    const HOST_REAL_TIME_INVENTORY: &str = "A0 04 01 89 FF D3";
    const HOST_REAL_TIME_INVENTORY_PUBLIC: &str = "A0 04 FF 89 FF D5";
    const READER_TAG: &str = "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AB";
    const READER_ROUND_END: &str = "A0 0A 01 89 00 00 64 00 00 01 F4 73";
    const READER_ANTENNA_MISSING: &str = "A0 04 01 89 22 B0";
    const HOST_SET_WORK_ANTENNA: &str = "A0 04 01 74 00 E7";
    const READER_SUCCESS: &str = "A0 04 01 74 10 D7";
    const REAL_BUFFER_EMPTY: &str = "A0 04 01 90 38 93";
    const REAL_BUFFER_RECORD: &str = "A0 19 01 90 00 01 10 30 00 E2 00 30 98 88 19 00 72 21 40 36 \
                                      9E 4D D4 4B 30 07 E0";
    const BAD_CHECKSUM: &str = "A0 13 01 89 1C 30 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B AC";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn epc(s: &str) -> Epc {
        Epc::from_hex(s).unwrap()
    }

    /// Decodes `bytes` as exactly one response frame.
    fn response(bytes: &[u8]) -> (u8, Response) {
        match decode_response(bytes) {
            Decoded::Frame { frame, len } => {
                assert_eq!(len, bytes.len());
                frame
            }
            other => panic!("expected a response frame, got {other:?}"),
        }
    }

    /// Decodes `bytes` as exactly one command frame.
    fn command(bytes: &[u8]) -> (u8, Command) {
        match decode_command(bytes) {
            Decoded::Frame { frame, len } => {
                assert_eq!(len, bytes.len());
                frame
            }
            other => panic!("expected a command frame, got {other:?}"),
        }
    }

    fn encoded_response(address: u8, r: &Response) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = encode_response(address, r, &mut out).unwrap();
        out[..n].to_vec()
    }

    fn encoded_command(address: u8, c: &Command) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME_LEN];
        let n = encode_command(address, c, &mut out).unwrap();
        out[..n].to_vec()
    }

    /// Asserts a host vector decodes to `expected` and encodes back byte for byte.
    fn host_vector(line: &str, address: u8, expected: Command) {
        let bytes = hex(line);
        assert_eq!(command(&bytes), (address, expected), "{line}");
        assert_eq!(encoded_command(address, &expected), bytes, "{line}");
    }

    /// Asserts a reader vector decodes to `expected` and encodes back byte for byte.
    fn reader_vector(line: &str, address: u8, expected: Response) {
        let bytes = hex(line);
        assert_eq!(response(&bytes), (address, expected), "{line}");
        assert_eq!(encoded_response(address, &expected), bytes, "{line}");
    }

    #[test]
    fn every_good_vector_sums_to_zero() {
        for line in [
            HOST_FIRMWARE_VERSION,
            READER_FIRMWARE_VERSION,
            HOST_REAL_TIME_INVENTORY,
            HOST_REAL_TIME_INVENTORY_PUBLIC,
            READER_TAG,
            READER_ROUND_END,
            READER_ANTENNA_MISSING,
            HOST_SET_WORK_ANTENNA,
            READER_SUCCESS,
            REAL_BUFFER_EMPTY,
            REAL_BUFFER_RECORD,
        ] {
            let bytes = hex(line);
            let (body, check) = bytes.split_at(bytes.len() - 1);
            assert_eq!(checksum(body), check[0], "{line}");
        }
    }

    #[test]
    fn vector_host_commands() {
        host_vector(HOST_FIRMWARE_VERSION, 1, Command::QueryFirmwareVersion);
        host_vector(
            HOST_REAL_TIME_INVENTORY,
            1,
            Command::RealTimeInventory { repeat: 0xFF },
        );
        host_vector(
            HOST_REAL_TIME_INVENTORY_PUBLIC,
            0xFF,
            Command::RealTimeInventory { repeat: 0xFF },
        );
        host_vector(
            HOST_SET_WORK_ANTENNA,
            1,
            Command::SetWorkAntenna { antenna_id: 0 },
        );
    }

    #[test]
    fn vector_firmware_version_and_status() {
        reader_vector(
            READER_FIRMWARE_VERSION,
            1,
            Response::FirmwareVersion { major: 8, minor: 1 },
        );
        reader_vector(
            READER_SUCCESS,
            1,
            Response::Status {
                command: cmd::SET_WORK_ANTENNA,
                code: ErrorCode::Success,
            },
        );
        // The same bytes from the host would set antenna 0x10: direction matters.
        assert_eq!(
            command(&hex(READER_SUCCESS)),
            (1, Command::SetWorkAntenna { antenna_id: 0x10 })
        );
    }

    #[test]
    fn vector_real_time_tag_record() {
        let tag = TagRecord {
            freq_ant: 0x1C,
            pc: PcWord(0x3000),
            epc: epc("3074257BF7194E4000001A85"),
            rssi_byte: 0x4B,
        };
        reader_vector(
            READER_TAG,
            1,
            Response::Tag {
                inventory: Inventory::RealTime,
                tag,
            },
        );
        assert_eq!((tag.antenna(), tag.freq_index(), tag.rssi()), (1, 7, 0x4B));
    }

    #[test]
    fn vector_round_end_and_antenna_missing() {
        reader_vector(
            READER_ROUND_END,
            1,
            Response::RealTimeRoundEnd(RoundStats {
                antenna_id: 0,
                read_rate: 100,
                total_reads: 500,
            }),
        );
        reader_vector(
            READER_ANTENNA_MISSING,
            1,
            Response::InventoryError {
                inventory: Inventory::RealTime,
                code: ErrorCode::AntennaMissing,
            },
        );
    }

    #[test]
    fn vector_real_buffer_replies() {
        reader_vector(
            REAL_BUFFER_EMPTY,
            1,
            Response::Status {
                command: cmd::READ_INVENTORY_BUFFER,
                code: ErrorCode::BufferEmpty,
            },
        );
        let record = BufferRecord {
            count: 1,
            pc: PcWord(0x3000),
            epc: epc("E2003098881900722140369E"),
            crc: 0x4DD4,
            rssi_byte: 0x4B,
            freq_ant: 0x30,
            inventory_count: 7,
        };
        reader_vector(
            REAL_BUFFER_RECORD,
            1,
            Response::BufferTag {
                read: BufferRead::Read,
                record,
            },
        );
        assert_eq!(
            (record.antenna(), record.rssi(), record.freq_index()),
            (1, 0x4B, 12)
        );
    }

    #[test]
    fn vector_bad_checksum_is_rejected_by_one_byte_and_next_frame_found() {
        let bad = hex(BAD_CHECKSUM);
        assert_eq!(
            decode_response(&bad),
            Decoded::Invalid {
                error: UhfError::Checksum {
                    expected: 0xAB,
                    found: 0xAC
                },
                skip: 1
            }
        );
        assert!(matches!(
            decode_command(&bad),
            Decoded::Invalid {
                error: UhfError::Checksum { .. },
                skip: 1
            }
        ));

        let mut stream = bad.clone();
        stream.extend(hex(READER_TAG));
        let mut d = StreamDecoder::new(decode_response, MAX_FRAME_LEN);
        assert_eq!(d.push(&stream), stream.len());
        let mut frames = Vec::new();
        let mut errors = Vec::new();
        while let Some(r) = d.next_frame() {
            match r {
                Ok(f) => frames.push(f),
                Err(e) => errors.push(e),
            }
        }
        assert_eq!(frames, vec![response(&hex(READER_TAG))]);
        assert!(matches!(errors[0], UhfError::Checksum { .. }));
        assert_eq!(d.dropped_bytes(), bad.len() as u64);
    }

    #[test]
    fn envelope_resynchronisation_rules() {
        // Garbage before a head byte is skipped up to it in one go.
        assert_eq!(
            decode_response(&[0x01, 0x02, 0xA0, 0x03]),
            Decoded::Invalid {
                error: UhfError::NotHead(0x01),
                skip: 2
            }
        );
        assert_eq!(
            decode_response(&[0x01, 0x02]),
            Decoded::Invalid {
                error: UhfError::NotHead(0x01),
                skip: 2
            }
        );
        assert_eq!(
            decode_response(&[0xA0, 0x02, 0x01, 0x5D]),
            Decoded::Invalid {
                error: UhfError::LengthTooShort(2),
                skip: 1
            }
        );
        // Every proper prefix of a frame needs more.
        let tag = hex(READER_TAG);
        for n in 0..tag.len() {
            assert_eq!(decode_response(&tag[..n]), Decoded::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn malformed_replies_name_the_field_and_skip_one_byte() {
        let mut out = [0u8; MAX_FRAME_LEN];
        // PC 0x3800 announces 14 EPC bytes, the frame holds 12 and RSSI.
        let mut data = hex("1C 38 00 30 74 25 7B F7 19 4E 40 00 00 1A 85 4B");
        let n = write_frame(1, cmd::REAL_TIME_INVENTORY, &data, &mut out).unwrap();
        assert_eq!(
            decode_response(&out[..n]),
            Decoded::Invalid {
                error: UhfError::Malformed { field: "tag epc" },
                skip: 1
            }
        );
        // Trailing bytes after RSSI (phase) are ignored.
        data[1] = 0x30;
        data.extend([0x12, 0x34]);
        let n = write_frame(1, cmd::FAST_SWITCH_INVENTORY, &data, &mut out).unwrap();
        let (_, r) = response(&out[..n]);
        let Response::Tag {
            inventory: Inventory::FastSwitch,
            tag,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(
            (tag.epc, tag.rssi_byte),
            (epc("3074257BF7194E4000001A85"), 0x4B)
        );
        // A buffer record whose PC announces more than DataLen leaves.
        let mut rec = hex(REAL_BUFFER_RECORD);
        rec[7] = 0x38;
        let len = rec.len();
        rec[len - 1] = checksum(&rec[..len - 1]);
        assert_eq!(
            decode_response(&rec),
            Decoded::Invalid {
                error: UhfError::Malformed {
                    field: "buffer record epc"
                },
                skip: 1
            }
        );
        // Temperature sign must be 0 or 1.
        let n = write_frame(1, cmd::QUERY_TEMPERATURE, &[0x02, 0x20], &mut out).unwrap();
        assert_eq!(
            decode_response(&out[..n]),
            Decoded::Invalid {
                error: UhfError::Malformed {
                    field: "temperature sign"
                },
                skip: 1
            }
        );
        // A parameterless query with data.
        let n = write_frame(1, cmd::QUERY_FIRMWARE_VERSION, &[0x00], &mut out).unwrap();
        assert_eq!(
            decode_command(&out[..n]),
            Decoded::Invalid {
                error: UhfError::DataLength {
                    field: "firmware version query",
                    len: 1
                },
                skip: 1
            }
        );
    }

    #[test]
    fn one_byte_replies_to_value_queries_are_values_and_others_are_status() {
        let mut out = [0u8; 8];
        let n = write_frame(1, cmd::QUERY_WORK_ANTENNA, &[0x03], &mut out).unwrap();
        assert_eq!(
            response(&out[..n]).1,
            Response::WorkAntenna { antenna_id: 3 }
        );
        let n = write_frame(1, cmd::QUERY_OUTPUT_POWER, &[30], &mut out).unwrap();
        assert_eq!(
            response(&out[..n]).1,
            Response::OutputPower(OutputPower::All(30))
        );
        let n = write_frame(1, cmd::QUERY_TEMPERATURE, &[0x11], &mut out).unwrap();
        assert_eq!(
            response(&out[..n]).1,
            Response::Status {
                command: cmd::QUERY_TEMPERATURE,
                code: ErrorCode::Fail
            }
        );
        let n = write_frame(1, cmd::RESET, &[0x20], &mut out).unwrap();
        assert_eq!(
            response(&out[..n]).1,
            Response::Status {
                command: cmd::RESET,
                code: ErrorCode::CpuReset
            }
        );
    }

    #[test]
    fn documented_layouts_of_the_other_commands_and_replies() {
        // Fast switch, four antennas: A 1, B 1, C disabled, D disabled, interval 5, repeat 1.
        let four = FastSwitch {
            slots: FastSwitchSlots::Four([
                AntennaStay {
                    antenna_id: 0,
                    stay: 1,
                },
                AntennaStay {
                    antenna_id: 1,
                    stay: 1,
                },
                AntennaStay::DISABLED,
                AntennaStay::DISABLED,
            ]),
            interval_ms: 5,
            extension: None,
            repeat: 1,
        };
        let bytes = encoded_command(1, &Command::FastSwitchInventory(four));
        assert_eq!(bytes[..4], hex("A0 0D 01 8A")[..]);
        assert_eq!(bytes[4..14], hex("00 01 01 01 FF 00 FF 00 05 01")[..]);
        // The extended eight-port form is 29 data bytes (Len 0x20).
        let ext = FastSwitch {
            slots: FastSwitchSlots::Eight(
                [AntennaStay {
                    antenna_id: 2,
                    stay: 3,
                }; 8],
            ),
            interval_ms: 0,
            extension: Some(FastSwitchExtension {
                session: 1,
                phase: 1,
                ..Default::default()
            }),
            repeat: 0xFF,
        };
        let bytes = encoded_command(1, &Command::FastSwitchInventory(ext));
        assert_eq!(bytes[1], 0x20);
        assert_eq!(command(&bytes).1, Command::FastSwitchInventory(ext));
        // Session inventory: Session Target Repeat.
        let s = SessionInventory {
            session: 1,
            target: 0,
            extra: Bytes::empty(),
            repeat: 1,
        };
        assert_eq!(
            encoded_command(1, &Command::SessionInventory(s))[1..7],
            hex("06 01 8B 01 00 01")[..]
        );
        // Output power per antenna.
        let p = Command::SetOutputPower(OutputPower::PerAntenna([20, 21, 22, 23]));
        assert_eq!(
            encoded_command(1, &p)[1..8],
            hex("07 01 76 14 15 16 17")[..]
        );
        // Fast-switch summary: TotalRead(3) CommandDuration(4).
        let stats = FastSwitchStats {
            total_reads: 0x01_0203,
            duration_ms: 0x0405_0607,
        };
        let bytes = encoded_response(1, &Response::FastSwitchRoundEnd(stats));
        assert_eq!(bytes[1..11], hex("0A 01 8A 01 02 03 04 05 06 07")[..]);
        // Temperature: minus 5.
        let t = Response::Temperature(Temperature::from_celsius(-5));
        assert_eq!(encoded_response(1, &t)[1..6], hex("05 01 7B 00 05")[..]);
        // Unknown commands are kept, not rejected.
        let n = hex("A0 04 01 71 04 E6");
        let other = Command::Other {
            command: 0x71,
            data: Bytes::new(&[0x04]).unwrap(),
        };
        assert_eq!(command(&n), (1, other));
    }

    #[test]
    fn encoders_report_the_size_they_need() {
        let mut small = [0u8; 4];
        assert_eq!(
            encode_command(1, &Command::QueryFirmwareVersion, &mut small),
            Err(BufferTooSmall { needed: 5 })
        );
        let tag = Response::Tag {
            inventory: Inventory::Session,
            tag: TagRecord::new(epc("3074257BF7194E4000001A85"), 1, 0x40, 0),
        };
        let mut out = [0u8; 21];
        assert_eq!(
            encode_response(1, &tag, &mut out[..20]),
            Err(BufferTooSmall { needed: 21 })
        );
        assert_eq!(encode_response(1, &tag, &mut out), Ok(21));
    }

    fn epc_strategy() -> impl Strategy<Value = Epc> {
        (0usize..=31).prop_flat_map(|words| {
            prop::collection::vec(any::<u8>(), words * 2).prop_map(|b| Epc::new(&b).unwrap())
        })
    }

    /// A PC word announcing the EPC's length, with arbitrary other bits.
    fn pc_for(epc: &Epc, low: u16) -> PcWord {
        PcWord(PcWord::for_epc_len(epc.len()).0 | (low & 0x07FF))
    }

    fn code() -> impl Strategy<Value = ErrorCode> {
        any::<u8>().prop_map(ErrorCode::from_byte)
    }

    fn raw_data() -> impl Strategy<Value = Bytes<MAX_DATA_LEN>> {
        prop::collection::vec(any::<u8>(), 0..=MAX_DATA_LEN).prop_map(|b| Bytes::new(&b).unwrap())
    }

    fn unmodelled() -> impl Strategy<Value = u8> {
        any::<u8>().prop_filter("modelled command", |c| !cmd::is_modelled(*c))
    }

    fn output_power() -> impl Strategy<Value = OutputPower> {
        prop_oneof![
            any::<u8>().prop_map(OutputPower::All),
            any::<[u8; 4]>().prop_map(OutputPower::PerAntenna),
            any::<[u8; 8]>().prop_map(OutputPower::PerAntenna8),
        ]
    }

    fn inventory() -> impl Strategy<Value = Inventory> {
        prop_oneof![
            Just(Inventory::RealTime),
            Just(Inventory::FastSwitch),
            Just(Inventory::Session)
        ]
    }

    fn stay() -> impl Strategy<Value = AntennaStay> {
        any::<(u8, u8)>().prop_map(|(antenna_id, stay)| AntennaStay { antenna_id, stay })
    }

    fn fast_switch() -> impl Strategy<Value = FastSwitch> {
        let slots = prop_oneof![
            any::<[(u8, u8); 4]>().prop_map(|s| FastSwitchSlots::Four(
                s.map(|(antenna_id, stay)| AntennaStay { antenna_id, stay })
            )),
            prop::array::uniform8(stay()).prop_map(FastSwitchSlots::Eight),
        ];
        let extension = any::<[u8; 11]>().prop_map(|b| FastSwitchExtension {
            reserved: [b[0], b[1], b[2], b[3], b[4]],
            session: b[5],
            target: b[6],
            optimize: b[7],
            ongoing: b[8],
            target_quantity: b[9],
            phase: b[10],
        });
        (slots, any::<u8>(), prop::option::of(extension), any::<u8>()).prop_map(
            |(slots, interval_ms, extension, repeat)| FastSwitch {
                // The extension exists only in the eight-port form.
                extension: extension.filter(|_| matches!(slots, FastSwitchSlots::Eight(_))),
                slots,
                interval_ms,
                repeat,
            },
        )
    }

    fn command_strategy() -> impl Strategy<Value = Command> {
        let session = (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..=MAX_SESSION_EXTRA),
            any::<u8>(),
        )
            .prop_map(|(session, target, extra, repeat)| {
                Command::SessionInventory(SessionInventory {
                    session,
                    target,
                    extra: Bytes::new(&extra).unwrap(),
                    repeat,
                })
            });
        prop_oneof![
            Just(Command::Reset),
            Just(Command::QueryFirmwareVersion),
            any::<u8>().prop_map(|antenna_id| Command::SetWorkAntenna { antenna_id }),
            Just(Command::QueryWorkAntenna),
            output_power().prop_map(Command::SetOutputPower),
            Just(Command::QueryOutputPower),
            Just(Command::QueryTemperature),
            any::<u8>().prop_map(|threshold_db| Command::SetAntennaDetector { threshold_db }),
            Just(Command::QueryAntennaDetector),
            Just(Command::ReadGpio),
            any::<(u8, u8)>().prop_map(|(gpio, level)| Command::WriteGpio { gpio, level }),
            any::<u8>().prop_map(|repeat| Command::RealTimeInventory { repeat }),
            fast_switch().prop_map(Command::FastSwitchInventory),
            session,
            Just(Command::ReadInventoryBuffer),
            Just(Command::ReadAndResetInventoryBuffer),
            Just(Command::ResetInventoryBuffer),
            (unmodelled(), raw_data()).prop_map(|(command, data)| Command::Other { command, data }),
        ]
    }

    fn tag_record() -> impl Strategy<Value = TagRecord> {
        (any::<u8>(), epc_strategy(), any::<u16>(), any::<u8>()).prop_map(
            |(freq_ant, epc, low, rssi_byte)| TagRecord {
                freq_ant,
                pc: pc_for(&epc, low),
                epc,
                rssi_byte,
            },
        )
    }

    fn buffer_record() -> impl Strategy<Value = BufferRecord> {
        (
            any::<u16>(),
            epc_strategy(),
            any::<u16>(),
            any::<u16>(),
            any::<[u8; 3]>(),
        )
            .prop_map(
                |(count, epc, low, crc, [rssi_byte, freq_ant, inventory_count])| BufferRecord {
                    count,
                    pc: pc_for(&epc, low),
                    epc,
                    crc,
                    rssi_byte,
                    freq_ant,
                    inventory_count,
                },
            )
    }

    fn response_strategy() -> impl Strategy<Value = Response> {
        // Commands whose one-byte reply is an ErrorCode status.
        let status_commands = prop::sample::select(vec![
            cmd::RESET,
            cmd::QUERY_FIRMWARE_VERSION,
            cmd::SET_WORK_ANTENNA,
            cmd::SET_OUTPUT_POWER,
            cmd::QUERY_TEMPERATURE,
            cmd::SET_ANTENNA_DETECTOR,
            cmd::READ_GPIO,
            cmd::WRITE_GPIO,
            cmd::READ_INVENTORY_BUFFER,
            cmd::READ_AND_RESET_INVENTORY_BUFFER,
            cmd::RESET_INVENTORY_BUFFER,
        ]);
        let round =
            any::<(u8, u16, u32)>().prop_map(|(antenna_id, read_rate, total_reads)| RoundStats {
                antenna_id,
                read_rate,
                total_reads,
            });
        prop_oneof![
            (status_commands, code())
                .prop_map(|(command, code)| Response::Status { command, code }),
            any::<(u8, u8)>().prop_map(|(major, minor)| Response::FirmwareVersion { major, minor }),
            any::<u8>().prop_map(|antenna_id| Response::WorkAntenna { antenna_id }),
            output_power().prop_map(Response::OutputPower),
            any::<(bool, u8)>().prop_map(|(positive, degrees)| Response::Temperature(
                Temperature { positive, degrees }
            )),
            any::<u8>().prop_map(|threshold_db| Response::AntennaDetector { threshold_db }),
            any::<(u8, u8)>().prop_map(|(gpio1, gpio2)| Response::Gpio { gpio1, gpio2 }),
            (inventory(), tag_record())
                .prop_map(|(inventory, tag)| Response::Tag { inventory, tag }),
            round.clone().prop_map(Response::RealTimeRoundEnd),
            round.prop_map(Response::SessionRoundEnd),
            (0u32..1 << 24, any::<u32>()).prop_map(|(total_reads, duration_ms)| {
                Response::FastSwitchRoundEnd(FastSwitchStats {
                    total_reads,
                    duration_ms,
                })
            }),
            (inventory(), code())
                .prop_map(|(inventory, code)| Response::InventoryError { inventory, code }),
            (any::<u8>(), code()).prop_map(|(antenna_id, code)| Response::FastSwitchAntennaError {
                antenna_id,
                code
            }),
            (
                prop_oneof![Just(BufferRead::Read), Just(BufferRead::ReadAndReset)],
                buffer_record()
            )
                .prop_map(|(read, record)| Response::BufferTag { read, record }),
            (unmodelled(), raw_data())
                .prop_map(|(command, data)| Response::Other { command, data }),
        ]
    }

    /// Feeds `bytes` to a stream decoder in chunks cut at `cuts`, collecting frames and errors.
    fn run_stream<F, E>(
        decode: fn(&[u8]) -> Decoded<F, E>,
        bytes: &[u8],
        cuts: &[usize],
    ) -> (Vec<F>, usize) {
        let mut d = StreamDecoder::new(decode, MAX_FRAME_LEN);
        let mut frames = Vec::new();
        let mut errors = 0;
        let mut drain = |d: &mut StreamDecoder<F, E>| {
            while let Some(r) = d.next_frame() {
                match r {
                    Ok(f) => frames.push(f),
                    Err(_) => errors += 1,
                }
            }
        };
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        bounds.push(bytes.len());
        bounds.sort_unstable();
        let mut start = 0;
        for end in bounds {
            let mut chunk = &bytes[start..end];
            while !chunk.is_empty() {
                let taken = d.push(chunk);
                chunk = &chunk[taken..];
                drain(&mut d);
                assert!(d.pending() <= MAX_FRAME_LEN);
            }
            start = end;
        }
        drain(&mut d);
        (frames, errors)
    }

    /// Garbage, then a quiet gap long enough that no frame starting in the garbage can reach
    /// past it, then `frame`.
    fn garbage_then(garbage: &[u8], frame: &[u8]) -> Vec<u8> {
        let mut bytes = garbage.to_vec();
        bytes.extend(std::iter::repeat_n(0u8, MAX_FRAME_LEN - 1));
        bytes.extend_from_slice(frame);
        bytes
    }

    proptest! {
        /// For every command c and address a: decode_command(encode_command(a, c)) == (a, c),
        /// using exactly the encoded bytes.
        #[test]
        fn command_round_trip(address in any::<u8>(), c in command_strategy()) {
            let bytes = encoded_command(address, &c);
            prop_assert_eq!(decode_command(&bytes), Decoded::Frame { frame: (address, c), len: bytes.len() });
        }

        /// For every reply r and address a: decode_response(encode_response(a, r)) == (a, r),
        /// using exactly the encoded bytes.
        #[test]
        fn response_round_trip(address in any::<u8>(), r in response_strategy()) {
            let bytes = encoded_response(address, &r);
            prop_assert_eq!(decode_response(&bytes), Decoded::Frame { frame: (address, r), len: bytes.len() });
        }

        /// Arbitrary bytes mixed with valid frames, cut at arbitrary points, never panic the
        /// decoders, keep the buffer bounded, and yield the same frames as feeding them in one
        /// piece.
        #[test]
        fn arbitrary_bytes_at_arbitrary_splits(
            segments in prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..200),
                    response_strategy().prop_map(|r| encoded_response(1, &r)),
                    command_strategy().prop_map(|c| encoded_command(1, &c)),
                ],
                0..10,
            ),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let bytes = segments.concat();
            let (chunked, _) = run_stream(decode_response, &bytes, &cuts);
            let (whole, _) = run_stream(decode_response, &bytes, &[]);
            prop_assert_eq!(chunked, whole);
            let (chunked, _) = run_stream(decode_command, &bytes, &cuts);
            let (whole, _) = run_stream(decode_command, &bytes, &[]);
            prop_assert_eq!(chunked, whole);
        }

        /// A valid reply after arbitrary garbage (head bytes included) is still found, whatever
        /// the chunking, and is the last frame decoded.
        #[test]
        fn response_found_after_garbage(
            garbage in prop::collection::vec(prop_oneof![Just(HEAD), any::<u8>()], 0..400),
            r in response_strategy(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let frame = encoded_response(1, &r);
            let (frames, _) = run_stream(decode_response, &garbage_then(&garbage, &frame), &cuts);
            prop_assert_eq!(frames.last(), Some(&(1, r)));
        }

        /// A valid command after arbitrary garbage is still found, whatever the chunking.
        #[test]
        fn command_found_after_garbage(
            garbage in prop::collection::vec(prop_oneof![Just(HEAD), any::<u8>()], 0..400),
            c in command_strategy(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let frame = encoded_command(0xFF, &c);
            let (frames, _) = run_stream(decode_command, &garbage_then(&garbage, &frame), &cuts);
            prop_assert_eq!(frames.last(), Some(&(0xFF, c)));
        }

        /// A valid reply directly after arbitrary non-head garbage is found with no gap; the
        /// garbage costs one error per buffer-full at most.
        #[test]
        fn response_found_right_after_headless_garbage(
            garbage in prop::collection::vec(any::<u8>().prop_filter("head", |b| *b != HEAD), 0..300),
            r in response_strategy(),
        ) {
            let mut bytes = garbage.clone();
            bytes.extend(encoded_response(1, &r));
            let (frames, errors) = run_stream(decode_response, &bytes, &[]);
            prop_assert_eq!(frames, vec![(1, r)]);
            prop_assert_eq!(errors > 0, !garbage.is_empty());
            prop_assert!(errors <= garbage.len().div_ceil(MAX_FRAME_LEN));
        }
    }
}
