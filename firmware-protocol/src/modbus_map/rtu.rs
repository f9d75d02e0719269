//! Modbus RTU framing of the request functions Custos uses, for tests and frame logging.
//!
//! This is **not** the transport: the daemon and the simulator talk Modbus through tokio-modbus
//! (TCP or RTU), which frames, times and retries on its own. This module exists so the published
//! vectors (`vectors/modbus.txt`) are checked byte for byte, so a bus sniffer or a test can turn
//! captured bytes into typed requests, and so a tool can log what a request looks like on the
//! wire.
//!
//! An RTU ADU is `unit | function | data | CRC` where the CRC is CRC-16/MODBUS over everything
//! before it, sent low byte first ("Modbus over Serial Line V1.02", 2.5.1.2: "The CRC field is
//! appended to the message as the last field in the message ... the low-order byte of the field
//! is appended first, followed by the high-order byte"). A request ADU is at most 256 bytes
//! (ibid. 2.5.1: "The maximum size of a Modbus RTU frame is 256 bytes").
//!
//! Supported functions (Modbus Application Protocol V1.1b3, 6.1–6.12): 0x01 Read Coils, 0x02
//! Read Discrete Inputs, 0x03 Read Holding Registers, 0x05 Write Single Coil, 0x06 Write Single
//! Register, 0x0F Write Multiple Coils, 0x10 Write Multiple Registers.
//!
//! Decoding follows [`crate::codec`]: a bad CRC or an unknown function drops exactly one byte
//! (RTU has no head byte, so any byte may start the next frame), like tokio-modbus' RTU codec. A
//! frame whose CRC is right but whose fields break the specification (a quantity of 0, a byte
//! count that disagrees with the quantity) is a real frame from a broken sender: it is dropped
//! whole.
//!
//! RTU frames are delimited by line silence (3.5 character times), not by a head byte, so a
//! corrupted byte count can make [`decode_request`] wait for up to 255 bytes that belong to later
//! frames. A serial reader that uses it with [`crate::codec::StreamDecoder`] should clear the
//! stream after an idle gap, as an RTU receiver would.

use core::fmt;

use crate::codec::{BufferTooSmall, Decoded};

/// The longest RTU ADU: "The maximum size of a Modbus RTU frame is 256 bytes."
pub const MAX_ADU_LEN: usize = 256;

/// 0x01 Read Coils.
pub const READ_COILS: u8 = 0x01;
/// 0x02 Read Discrete Inputs.
pub const READ_DISCRETE_INPUTS: u8 = 0x02;
/// 0x03 Read Holding Registers.
pub const READ_HOLDING_REGISTERS: u8 = 0x03;
/// 0x05 Write Single Coil.
pub const WRITE_SINGLE_COIL: u8 = 0x05;
/// 0x06 Write Single Register.
pub const WRITE_SINGLE_REGISTER: u8 = 0x06;
/// 0x0F Write Multiple Coils.
pub const WRITE_MULTIPLE_COILS: u8 = 0x0F;
/// 0x10 Write Multiple Registers.
pub const WRITE_MULTIPLE_REGISTERS: u8 = 0x10;

/// 6.1/6.2: "Quantity of coils/inputs: 1 to 2000 (0x7D0)".
pub const MAX_READ_BITS: u16 = 0x07D0;
/// 6.3: "Quantity of Registers: 1 to 125 (0x7D)".
pub const MAX_READ_REGISTERS: u16 = 0x007D;
/// 6.11: "Quantity of Outputs: 1 to 1968 (0x7B0)".
pub const MAX_WRITE_COILS: u16 = 0x07B0;
/// 6.12: "Quantity of Registers: 1 to 123 (0x7B)".
pub const MAX_WRITE_REGISTERS: u16 = 0x007B;
/// 6.5: "A value of FF 00 hex requests the output to be ON."
pub const COIL_ON: u16 = 0xFF00;
/// 6.5: "A value of 00 00 requests it to be OFF."
pub const COIL_OFF: u16 = 0x0000;

/// The most data bytes a 0x0F or 0x10 request carries (1968 / 8 = 123 * 2 = 246).
const MAX_WRITE_BYTES: usize = 246;

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// CRC-16/MODBUS of `bytes` (poly 0x8005 reflected, init 0xFFFF); sent low byte first.
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// An RTU request frame could not be decoded, or its values break the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtuError {
    /// The function code is not one of the supported request functions.
    #[error("unsupported function code {code:#04x}")]
    UnsupportedFunction {
        /// The function code.
        code: u8,
    },
    /// The CRC does not match the frame.
    #[error("bad crc: computed {computed:#06x}, frame has {found:#06x}")]
    BadCrc {
        /// The CRC computed over the frame.
        computed: u16,
        /// The CRC in the frame.
        found: u16,
    },
    /// A quantity is 0 or above the function's maximum.
    #[error("{field}: quantity {quantity} out of range")]
    Quantity {
        /// The function whose quantity is wrong.
        field: &'static str,
        /// The quantity.
        quantity: u16,
    },
    /// The byte count of a write-multiple request is too large or disagrees with its quantity.
    #[error("{field}: byte count {found} does not match quantity")]
    ByteCount {
        /// The function whose byte count is wrong.
        field: &'static str,
        /// The byte count in the frame.
        found: u8,
    },
    /// A Write Single Coil value other than 0xFF00 or 0x0000.
    #[error("coil value {value:#06x} is neither 0xff00 nor 0x0000")]
    CoilValue {
        /// The value in the frame.
        value: u16,
    },
}

/// Coil values for Write Multiple Coils: 1 to 1968 bits, packed LSB first (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoilValues {
    count: u16,
    packed: [u8; MAX_WRITE_BYTES],
}

impl CoilValues {
    /// The values of `coils`, first coil first; 1 to 1968 of them.
    pub fn new(coils: &[bool]) -> Result<Self, RtuError> {
        let quantity = u16::try_from(coils.len()).unwrap_or(u16::MAX);
        if !(1..=MAX_WRITE_COILS).contains(&quantity) {
            return Err(RtuError::Quantity {
                field: "write_multiple_coils",
                quantity,
            });
        }
        let mut packed = [0u8; MAX_WRITE_BYTES];
        for (i, on) in coils.iter().enumerate() {
            packed[i / 8] |= u8::from(*on) << (i % 8);
        }
        Ok(Self {
            count: quantity,
            packed,
        })
    }

    /// The number of coils.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Always false: there is at least one coil.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value of the `i`-th coil.
    pub fn get(&self, i: usize) -> Option<bool> {
        (i < self.len()).then(|| self.packed[i / 8] & (1 << (i % 8)) != 0)
    }

    /// The values, first coil first.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len()).map(|i| self.packed[i / 8] & (1 << (i % 8)) != 0)
    }

    /// The packed bytes as on the wire ("the LSB of the first data byte contains the output
    /// addressed in the query"), unused high bits zero.
    pub fn packed(&self) -> &[u8] {
        &self.packed[..self.len().div_ceil(8)]
    }
}

impl fmt::Debug for CoilValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Register values for Write Multiple Registers: 1 to 123 of them (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegisterValues {
    count: u8,
    values: [u16; MAX_WRITE_REGISTERS as usize],
}

impl RegisterValues {
    /// The given values, 1 to 123 of them.
    pub fn new(values: &[u16]) -> Result<Self, RtuError> {
        let quantity = u16::try_from(values.len()).unwrap_or(u16::MAX);
        if !(1..=MAX_WRITE_REGISTERS).contains(&quantity) {
            return Err(RtuError::Quantity {
                field: "write_multiple_registers",
                quantity,
            });
        }
        let mut out = [0u16; MAX_WRITE_REGISTERS as usize];
        out[..values.len()].copy_from_slice(values);
        // quantity <= 123 was checked above.
        Ok(Self {
            count: quantity as u8,
            values: out,
        })
    }

    /// The values.
    pub fn as_slice(&self) -> &[u16] {
        &self.values[..usize::from(self.count)]
    }
}

impl fmt::Debug for RegisterValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// A Modbus request PDU of one of the supported functions. Addresses are 0-based.
///
/// Read quantities must be within the specification (1..=2000 bits, 1..=125 registers); an
/// encoder writes what it is given, and [`decode_request`] refuses out-of-range quantities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// 0x01: read `count` coils from `address`.
    ReadCoils {
        /// The first coil.
        address: u16,
        /// How many (1..=2000).
        count: u16,
    },
    /// 0x02: read `count` discrete inputs from `address`.
    ReadDiscreteInputs {
        /// The first input.
        address: u16,
        /// How many (1..=2000).
        count: u16,
    },
    /// 0x03: read `count` holding registers from `address`.
    ReadHoldingRegisters {
        /// The first register.
        address: u16,
        /// How many (1..=125).
        count: u16,
    },
    /// 0x05: set one coil on or off.
    WriteSingleCoil {
        /// The coil.
        address: u16,
        /// On (0xFF00) or off (0x0000).
        value: bool,
    },
    /// 0x06: write one holding register.
    WriteSingleRegister {
        /// The register.
        address: u16,
        /// The value.
        value: u16,
    },
    /// 0x0F: write consecutive coils from `address`.
    WriteMultipleCoils {
        /// The first coil.
        address: u16,
        /// The values.
        coils: CoilValues,
    },
    /// 0x10: write consecutive holding registers from `address`.
    WriteMultipleRegisters {
        /// The first register.
        address: u16,
        /// The values.
        values: RegisterValues,
    },
}

impl Request {
    /// The function code.
    pub fn function(&self) -> u8 {
        match self {
            Request::ReadCoils { .. } => READ_COILS,
            Request::ReadDiscreteInputs { .. } => READ_DISCRETE_INPUTS,
            Request::ReadHoldingRegisters { .. } => READ_HOLDING_REGISTERS,
            Request::WriteSingleCoil { .. } => WRITE_SINGLE_COIL,
            Request::WriteSingleRegister { .. } => WRITE_SINGLE_REGISTER,
            Request::WriteMultipleCoils { .. } => WRITE_MULTIPLE_COILS,
            Request::WriteMultipleRegisters { .. } => WRITE_MULTIPLE_REGISTERS,
        }
    }
}

/// A request ADU: the unit (slave) address and the request. Unit 0 is broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestAdu {
    /// The unit address (0 = broadcast, 1..=247 devices).
    pub unit: u8,
    /// The request.
    pub request: Request,
}

/// One line for logs, e.g. `unit 1: read holding registers 6+4`.
impl fmt::Display for RequestAdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unit {}: ", self.unit)?;
        match &self.request {
            Request::ReadCoils { address, count } => write!(f, "read coils {address}+{count}"),
            Request::ReadDiscreteInputs { address, count } => {
                write!(f, "read discrete inputs {address}+{count}")
            }
            Request::ReadHoldingRegisters { address, count } => {
                write!(f, "read holding registers {address}+{count}")
            }
            Request::WriteSingleCoil { address, value } => {
                write!(
                    f,
                    "write coil {address} = {}",
                    if *value { "on" } else { "off" }
                )
            }
            Request::WriteSingleRegister { address, value } => {
                write!(f, "write register {address} = {value:#06x}")
            }
            Request::WriteMultipleCoils { address, coils } => {
                write!(f, "write coils {address}+{} = {coils:?}", coils.len())
            }
            Request::WriteMultipleRegisters { address, values } => {
                write!(
                    f,
                    "write registers {address}+{} = {values:04x?}",
                    values.as_slice().len()
                )
            }
        }
    }
}

/// Encodes a request ADU into `out`; returns its length.
pub fn encode_request(
    unit: u8,
    request: &Request,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let (address, word) = match request {
        Request::ReadCoils { address, count }
        | Request::ReadDiscreteInputs { address, count }
        | Request::ReadHoldingRegisters { address, count } => (*address, *count),
        Request::WriteSingleCoil { address, value } => {
            (*address, if *value { COIL_ON } else { COIL_OFF })
        }
        Request::WriteSingleRegister { address, value } => (*address, *value),
        Request::WriteMultipleCoils { address, coils } => (*address, coils.count),
        Request::WriteMultipleRegisters { address, values } => (*address, u16::from(values.count)),
    };
    let data_len = match request {
        Request::WriteMultipleCoils { coils, .. } => 1 + coils.packed().len(),
        Request::WriteMultipleRegisters { values, .. } => 1 + 2 * values.as_slice().len(),
        _ => 0,
    };
    let len = 6 + data_len + 2;
    let out = out.get_mut(..len).ok_or(BufferTooSmall { needed: len })?;
    out[0] = unit;
    out[1] = request.function();
    out[2..4].copy_from_slice(&address.to_be_bytes());
    out[4..6].copy_from_slice(&word.to_be_bytes());
    match request {
        Request::WriteMultipleCoils { coils, .. } => {
            let packed = coils.packed();
            // At most 246 bytes, so the byte count fits in u8.
            out[6] = packed.len() as u8;
            out[7..7 + packed.len()].copy_from_slice(packed);
        }
        Request::WriteMultipleRegisters { values, .. } => {
            let values = values.as_slice();
            out[6] = (2 * values.len()) as u8;
            for (pair, v) in out[7..].chunks_exact_mut(2).zip(values) {
                pair.copy_from_slice(&v.to_be_bytes());
            }
        }
        _ => {}
    }
    let crc = crc16(&out[..len - 2]);
    out[len - 2..].copy_from_slice(&crc.to_le_bytes());
    Ok(len)
}

/// Decodes one request ADU from the start of `buf` (see the module doc for resynchronisation).
pub fn decode_request(buf: &[u8]) -> Decoded<RequestAdu, RtuError> {
    let Some(&function) = buf.get(1) else {
        return Decoded::NeedMore;
    };
    let len = match function {
        READ_COILS..=WRITE_SINGLE_REGISTER if function != 0x04 => 8,
        WRITE_MULTIPLE_COILS | WRITE_MULTIPLE_REGISTERS => {
            let Some(&byte_count) = buf.get(6) else {
                return Decoded::NeedMore;
            };
            if usize::from(byte_count) > MAX_WRITE_BYTES {
                let field = multiple_field(function);
                return Decoded::Invalid {
                    error: RtuError::ByteCount {
                        field,
                        found: byte_count,
                    },
                    skip: 1,
                };
            }
            9 + usize::from(byte_count)
        }
        code => {
            return Decoded::Invalid {
                error: RtuError::UnsupportedFunction { code },
                skip: 1,
            };
        }
    };
    let Some(frame) = buf.get(..len) else {
        return Decoded::NeedMore;
    };
    let computed = crc16(&frame[..len - 2]);
    let found = u16::from_le_bytes([frame[len - 2], frame[len - 1]]);
    if computed != found {
        return Decoded::Invalid {
            error: RtuError::BadCrc { computed, found },
            skip: 1,
        };
    }
    match parse_pdu(&frame[1..len - 2]) {
        Ok(request) => Decoded::Frame {
            frame: RequestAdu {
                unit: frame[0],
                request,
            },
            len,
        },
        Err(error) => Decoded::Invalid { error, skip: len },
    }
}

fn multiple_field(function: u8) -> &'static str {
    if function == WRITE_MULTIPLE_COILS {
        "write_multiple_coils"
    } else {
        "write_multiple_registers"
    }
}

/// Parses a CRC-checked PDU whose length already matches its function.
fn parse_pdu(pdu: &[u8]) -> Result<Request, RtuError> {
    let function = pdu[0];
    let address = u16::from_be_bytes([pdu[1], pdu[2]]);
    let word = u16::from_be_bytes([pdu[3], pdu[4]]);
    let quantity = |field: &'static str, max: u16| {
        if (1..=max).contains(&word) {
            Ok(word)
        } else {
            Err(RtuError::Quantity {
                field,
                quantity: word,
            })
        }
    };
    Ok(match function {
        READ_COILS => Request::ReadCoils {
            address,
            count: quantity("read_coils", MAX_READ_BITS)?,
        },
        READ_DISCRETE_INPUTS => Request::ReadDiscreteInputs {
            address,
            count: quantity("read_discrete_inputs", MAX_READ_BITS)?,
        },
        READ_HOLDING_REGISTERS => Request::ReadHoldingRegisters {
            address,
            count: quantity("read_holding_registers", MAX_READ_REGISTERS)?,
        },
        WRITE_SINGLE_COIL => Request::WriteSingleCoil {
            address,
            value: match word {
                COIL_ON => true,
                COIL_OFF => false,
                value => return Err(RtuError::CoilValue { value }),
            },
        },
        WRITE_SINGLE_REGISTER => Request::WriteSingleRegister {
            address,
            value: word,
        },
        WRITE_MULTIPLE_COILS => {
            let field = "write_multiple_coils";
            let count = quantity(field, MAX_WRITE_COILS)?;
            let data = &pdu[6..];
            if data.len() != usize::from(count).div_ceil(8) {
                return Err(RtuError::ByteCount {
                    field,
                    found: pdu[5],
                });
            }
            let mut packed = [0u8; MAX_WRITE_BYTES];
            packed[..data.len()].copy_from_slice(data);
            // Unused bits of the last byte are padding ("padded with zeros"); clear them so equal
            // requests compare equal.
            if count % 8 != 0 {
                packed[data.len() - 1] &= (1u8 << (count % 8)) - 1;
            }
            Request::WriteMultipleCoils {
                address,
                coils: CoilValues { count, packed },
            }
        }
        _ => {
            let field = "write_multiple_registers";
            let count = quantity(field, MAX_WRITE_REGISTERS)?;
            let data = &pdu[6..];
            if data.len() != 2 * usize::from(count) {
                return Err(RtuError::ByteCount {
                    field,
                    found: pdu[5],
                });
            }
            let mut values = [0u16; MAX_WRITE_REGISTERS as usize];
            for (v, pair) in values.iter_mut().zip(data.chunks_exact(2)) {
                *v = u16::from_be_bytes([pair[0], pair[1]]);
            }
            // count <= 123 was checked by `quantity`.
            Request::WriteMultipleRegisters {
                address,
                values: RegisterValues {
                    count: count as u8,
                    values,
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::StreamDecoder;
    use proptest::prelude::*;

    /// Parses space-separated hex as written in the vector files.
    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    // vectors/modbus.txt, every frame line.
    const V_READ_10_FROM_0: &str = "01 03 00 00 00 0A C5 CD";
    const V_READ_UID: &str = "01 03 00 06 00 04 A4 08";
    const V_WRITE_REG_4: &str = "01 06 00 04 00 01 09 CB";

    fn known_answer(line: &str, request: Request) {
        let bytes = hex(line);
        let adu = RequestAdu { unit: 1, request };
        assert_eq!(
            decode_request(&bytes),
            Decoded::Frame {
                frame: adu,
                len: bytes.len()
            }
        );
        let mut out = [0u8; MAX_ADU_LEN];
        let n = encode_request(1, &request, &mut out).unwrap();
        assert_eq!(&out[..n], bytes.as_slice());
    }

    #[test]
    fn vector_read_10_holding_registers_from_0() {
        known_answer(
            V_READ_10_FROM_0,
            Request::ReadHoldingRegisters {
                address: 0,
                count: 10,
            },
        );
    }

    #[test]
    fn vector_read_uid_registers() {
        known_answer(
            V_READ_UID,
            Request::ReadHoldingRegisters {
                address: 6,
                count: 4,
            },
        );
        // The same block the default flat reader map asks for.
        let block = super::super::FlatReaderMap::default().uid_block();
        assert_eq!((block.start, block.count), (6, 4));
    }

    #[test]
    fn vector_write_register_4() {
        known_answer(
            V_WRITE_REG_4,
            Request::WriteSingleRegister {
                address: 4,
                value: 1,
            },
        );
    }

    #[test]
    fn crc_is_low_byte_first() {
        let bytes = hex(V_READ_10_FROM_0);
        assert_eq!(crc16(&bytes[..6]), 0xCDC5);
    }

    #[test]
    fn every_vector_line_with_a_flipped_byte_is_rejected() {
        for line in [V_READ_10_FROM_0, V_READ_UID, V_WRITE_REG_4] {
            let good = hex(line);
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x01;
                match decode_request(&bad) {
                    Decoded::Invalid { skip: 1, .. } => {}
                    other => panic!("{line} with byte {i} flipped: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn short_input_needs_more() {
        let bytes = hex(V_READ_UID);
        for n in 0..bytes.len() {
            assert_eq!(
                decode_request(&bytes[..n]),
                Decoded::NeedMore,
                "prefix of {n}"
            );
        }
        let mut out = [0u8; MAX_ADU_LEN];
        let coils = CoilValues::new(&[true; 10]).unwrap();
        let n = encode_request(
            1,
            &Request::WriteMultipleCoils { address: 0, coils },
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 11);
        for k in 0..n {
            assert_eq!(
                decode_request(&out[..k]),
                Decoded::NeedMore,
                "prefix of {k}"
            );
        }
    }

    #[test]
    fn write_multiple_layouts() {
        let mut out = [0u8; MAX_ADU_LEN];
        // 6.11 example: write 10 coils from 19 (0x13): CD 01.
        let bits = [
            true, false, true, true, false, false, true, true, true, false,
        ];
        let coils = CoilValues::new(&bits).unwrap();
        let n = encode_request(
            0x11,
            &Request::WriteMultipleCoils {
                address: 0x13,
                coils,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..n - 2],
            &[0x11, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01]
        );
        assert_eq!(coils.iter().collect::<Vec<_>>(), bits);
        // 6.12 example: write 2 registers from 1: 00 0A 01 02.
        let values = RegisterValues::new(&[0x000A, 0x0102]).unwrap();
        let n = encode_request(
            0x11,
            &Request::WriteMultipleRegisters { address: 1, values },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            &out[..n - 2],
            &[
                0x11, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02
            ]
        );
        assert!(matches!(decode_request(&out[..n]), Decoded::Frame { len, .. } if len == n));
    }

    /// Appends a correct CRC, low byte first.
    fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
        let crc = crc16(&body);
        body.extend_from_slice(&crc.to_le_bytes());
        body
    }

    #[test]
    fn spec_violations_with_good_crc_drop_the_whole_frame() {
        let cases = [
            (
                vec![1, 0x03, 0, 0, 0, 0],
                RtuError::Quantity {
                    field: "read_holding_registers",
                    quantity: 0,
                },
            ),
            (
                vec![1, 0x03, 0, 0, 0, 126],
                RtuError::Quantity {
                    field: "read_holding_registers",
                    quantity: 126,
                },
            ),
            (
                vec![1, 0x01, 0, 0, 0x07, 0xD1],
                RtuError::Quantity {
                    field: "read_coils",
                    quantity: 2001,
                },
            ),
            (
                vec![1, 0x05, 0, 2, 0x12, 0x34],
                RtuError::CoilValue { value: 0x1234 },
            ),
            (
                vec![1, 0x0F, 0, 0, 0, 9, 1, 0xFF],
                RtuError::ByteCount {
                    field: "write_multiple_coils",
                    found: 1,
                },
            ),
            (
                vec![1, 0x10, 0, 0, 0, 2, 2, 0, 1],
                RtuError::ByteCount {
                    field: "write_multiple_registers",
                    found: 2,
                },
            ),
        ];
        for (body, error) in cases {
            let frame = with_crc(body);
            assert_eq!(
                decode_request(&frame),
                Decoded::Invalid {
                    error,
                    skip: frame.len()
                }
            );
        }
        assert_eq!(
            decode_request(&[1, 0x04, 0, 0, 0, 1, 0, 0]),
            Decoded::Invalid {
                error: RtuError::UnsupportedFunction { code: 0x04 },
                skip: 1
            }
        );
        assert_eq!(
            decode_request(&[1, 0x10, 0, 0, 0, 124, 248]),
            Decoded::Invalid {
                error: RtuError::ByteCount {
                    field: "write_multiple_registers",
                    found: 248
                },
                skip: 1
            }
        );
    }

    #[test]
    fn coil_padding_is_ignored_and_constructors_check_quantities() {
        let frame = with_crc(vec![1, 0x0F, 0, 0, 0, 3, 1, 0xFD]);
        let Decoded::Frame { frame: adu, .. } = decode_request(&frame) else {
            panic!()
        };
        let Request::WriteMultipleCoils { coils, .. } = adu.request else {
            panic!()
        };
        assert_eq!(coils.packed(), &[0x05]);
        assert_eq!(coils.iter().collect::<Vec<_>>(), [true, false, true]);
        assert_eq!(coils, CoilValues::new(&[true, false, true]).unwrap());
        assert!(CoilValues::new(&[]).is_err());
        assert!(CoilValues::new(&[false; 1969]).is_err());
        assert!(CoilValues::new(&[false; 1968]).is_ok());
        assert!(RegisterValues::new(&[]).is_err());
        assert!(RegisterValues::new(&[0; 124]).is_err());
        assert_eq!(coils.get(3), None);
        assert!(!coils.is_empty());
    }

    #[test]
    fn small_buffer_is_refused() {
        let mut out = [0u8; 7];
        assert_eq!(
            encode_request(
                1,
                &Request::ReadCoils {
                    address: 0,
                    count: 1
                },
                &mut out
            ),
            Err(BufferTooSmall { needed: 8 })
        );
    }

    #[test]
    fn display_for_logs() {
        let adu = RequestAdu {
            unit: 1,
            request: Request::ReadHoldingRegisters {
                address: 6,
                count: 4,
            },
        };
        assert_eq!(adu.to_string(), "unit 1: read holding registers 6+4");
        let adu = RequestAdu {
            unit: 2,
            request: Request::WriteSingleCoil {
                address: 2,
                value: true,
            },
        };
        assert_eq!(adu.to_string(), "unit 2: write coil 2 = on");
    }

    fn request_strategy() -> impl Strategy<Value = Request> {
        prop_oneof![
            (any::<u16>(), 1..=MAX_READ_BITS)
                .prop_map(|(address, count)| Request::ReadCoils { address, count }),
            (any::<u16>(), 1..=MAX_READ_BITS)
                .prop_map(|(address, count)| Request::ReadDiscreteInputs { address, count }),
            (any::<u16>(), 1..=MAX_READ_REGISTERS)
                .prop_map(|(address, count)| Request::ReadHoldingRegisters { address, count }),
            (any::<u16>(), any::<bool>())
                .prop_map(|(address, value)| Request::WriteSingleCoil { address, value }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(address, value)| Request::WriteSingleRegister { address, value }),
            (
                any::<u16>(),
                proptest::collection::vec(any::<bool>(), 1..=MAX_WRITE_COILS as usize)
            )
                .prop_map(|(address, bits)| Request::WriteMultipleCoils {
                    address,
                    coils: CoilValues::new(&bits).unwrap()
                }),
            (
                any::<u16>(),
                proptest::collection::vec(any::<u16>(), 1..=MAX_WRITE_REGISTERS as usize)
            )
                .prop_map(|(address, v)| Request::WriteMultipleRegisters {
                    address,
                    values: RegisterValues::new(&v).unwrap()
                }),
        ]
    }

    /// Whether some span of `buf` starting before `garbage_len` ends in a matching CRC: such
    /// garbage holds a frame-shaped run of its own that may legitimately swallow the real frame.
    fn garbage_has_crc_span(buf: &[u8], garbage_len: usize) -> bool {
        (0..garbage_len).any(|i| {
            (i + 8..=buf.len().min(i + MAX_ADU_LEN)).any(|end| {
                crc16(&buf[i..end - 2]) == u16::from_le_bytes([buf[end - 2], buf[end - 1]])
            })
        })
    }

    proptest! {
        /// For every valid request and unit, decode(encode(r)) = r, using exactly the encoded
        /// length, and the encoding fits in one RTU ADU.
        #[test]
        fn encode_decode_round_trip(unit in any::<u8>(), request in request_strategy()) {
            let mut out = [0u8; MAX_ADU_LEN];
            let n = encode_request(unit, &request, &mut out).unwrap();
            prop_assert!(n <= MAX_ADU_LEN);
            prop_assert_eq!(
                decode_request(&out[..n]),
                Decoded::Frame { frame: RequestAdu { unit, request }, len: n }
            );
        }

        /// Arbitrary bytes at arbitrary split points never make the stream decoder panic, and a
        /// valid frame after random garbage, followed by idle-line zeros, is found exactly once
        /// (unless the garbage itself holds a CRC-valid run, which RTU cannot tell from a
        /// frame).
        #[test]
        fn stream_finds_frame_after_garbage(
            garbage in proptest::collection::vec(any::<u8>(), 0..48),
            unit in any::<u8>(),
            request in request_strategy(),
            split in any::<proptest::sample::Index>(),
        ) {
            let mut out = [0u8; MAX_ADU_LEN];
            let n = encode_request(unit, &request, &mut out).unwrap();
            let mut stream = garbage.clone();
            stream.extend_from_slice(&out[..n]);
            // An idle line after the frame: garbage that announced a long frame is then refused
            // by its CRC instead of waiting for more bytes (see the module doc).
            stream.extend_from_slice(&[0u8; MAX_ADU_LEN]);
            prop_assume!(!garbage_has_crc_span(&stream, garbage.len()));
            let mut d = StreamDecoder::new(decode_request, MAX_ADU_LEN);
            let (a, b) = stream.split_at(split.index(stream.len() + 1));
            let mut frames = Vec::new();
            for part in [a, b] {
                let mut rest = part;
                while !rest.is_empty() {
                    let taken = d.push(rest);
                    rest = &rest[taken..];
                    while let Some(r) = d.next_frame() {
                        if let Ok(f) = r { frames.push(f); }
                    }
                }
            }
            prop_assert_eq!(frames, vec![RequestAdu { unit, request }]);
        }

        /// Whatever bytes arrive, in whatever pieces, decoding never panics and every reported
        /// frame re-encodes to bytes that decode to it again.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..64,
        ) {
            let mut d = StreamDecoder::new(decode_request, MAX_ADU_LEN);
            for part in bytes.chunks(chunk) {
                let mut rest = part;
                while !rest.is_empty() {
                    let taken = d.push(rest);
                    rest = &rest[taken..];
                    while let Some(r) = d.next_frame() {
                        if let Ok(f) = r {
                            let mut out = [0u8; MAX_ADU_LEN];
                            let n = encode_request(f.unit, &f.request, &mut out).unwrap();
                            prop_assert_eq!(decode_request(&out[..n]), Decoded::Frame { frame: f, len: n });
                        }
                    }
                }
            }
        }
    }
}
