//! The simulated UHF reader ([`crate::reader::SimReader`], 0xA0 or CHAFON) as a serial device.
//!
//! This adapter maps the control ops of a UHF reader onto the reader's world model and plugs
//! the pure protocol state machine into the generic serial driver. Silence and garbage are the
//! driver's [`crate::WithFaults`]; the model's own fault switches stay for library users.
//!
//! | op | effect |
//! |---|---|
//! | `{"op":"field","antenna":1,"tags":["3474257BF40000000000162E"]}` | replaces that antenna's field (empty list empties it) |
//! | `{"op":"clear"}` | empties every field |
//! | `{"op":"disconnect","antenna":2}` / `{"op":"connect","antenna":2}` | unplugs / plugs an antenna (0xA0 answers 0x22 antenna missing) |

use custos_protocol::epc::Epc;

use crate::control::{ControlError, ControlOp};
use crate::reader::{ModelError, SimReader};
use crate::serial::SerialDevice;
use crate::time::Millis;

/// A UHF reader on a serial line.
#[derive(Debug)]
pub struct UhfReaderDevice {
    reader: SimReader,
    out: Vec<u8>,
}

impl UhfReaderDevice {
    /// Wraps a simulated reader.
    #[must_use]
    pub fn new(reader: SimReader) -> Self {
        UhfReaderDevice {
            reader,
            out: Vec::new(),
        }
    }

    /// The simulated reader.
    #[must_use]
    pub fn reader(&self) -> &SimReader {
        &self.reader
    }
}

fn antenna_error(e: ModelError) -> ControlError {
    ControlError::bad_field("antenna", e.to_string())
}

impl SerialDevice for UhfReaderDevice {
    const KIND: &'static str = "uhf-reader";

    fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        self.reader.handle_input(now.0, bytes, &mut self.out);
    }

    fn handle_control(&mut self, _now: Millis, op: ControlOp) -> Result<(), ControlError> {
        let model = self.reader.model_mut();
        match op {
            ControlOp::Field { antenna, tags } => {
                let tags = tags
                    .iter()
                    .map(|hex| Epc::new(hex.as_bytes()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ControlError::bad_field("tags", e.to_string()))?;
                model.set_field(antenna.get(), tags).map_err(|e| match e {
                    ModelError::EpcLength(_) => ControlError::bad_field("tags", e.to_string()),
                    other => antenna_error(other),
                })
            }
            ControlOp::Clear {} => {
                model.clear();
                Ok(())
            }
            ControlOp::Disconnect { antenna } => {
                model.disconnect(antenna.get()).map_err(antenna_error)
            }
            ControlOp::Connect { antenna } => model.connect(antenna.get()).map_err(antenna_error),
            other => Err(other.unsupported(Self::KIND)),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.reader.poll(now.0, &mut self.out);
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.reader.next_poll_ms().map(Millis)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU8;

    use super::*;
    use crate::control::HexBytes;
    use crate::reader::Protocol;
    use crate::serial::VirtualSerial;

    fn a0() -> VirtualSerial<UhfReaderDevice> {
        VirtualSerial::new(UhfReaderDevice::new(SimReader::new(Protocol::A0, 1)))
    }

    fn field(antenna: u8, tags: &[&[u8]]) -> ControlOp {
        ControlOp::Field {
            antenna: NonZeroU8::new(antenna).unwrap(),
            tags: tags.iter().map(|t| HexBytes(t.to_vec())).collect(),
        }
    }

    #[test]
    fn firmware_version_byte_for_byte() {
        let mut sim = a0();
        sim.host_write(&[0xA0, 0x03, 0x01, 0x72, 0xEA]);
        assert_eq!(
            sim.take_output(),
            [0xA0, 0x05, 0x01, 0x72, 0x08, 0x01, 0xDF]
        );
    }

    #[test]
    fn field_ops_change_what_an_inventory_reports() {
        let mut sim = a0();
        let epc = [0x34, 0x74, 0x25, 0x7B, 0xF4, 0, 0, 0, 0, 0, 0x16, 0x2E];
        sim.control(field(1, &[&epc])).unwrap();
        sim.host_write(&[0xA0, 0x04, 0x01, 0x89, 0xFF, 0xD3]);
        let out = sim.take_output();
        assert!(out.windows(12).any(|w| w == epc), "tag reported");
        sim.control(ControlOp::Clear {}).unwrap();
        sim.host_write(&[0xA0, 0x04, 0x01, 0x89, 0xFF, 0xD3]);
        let out = sim.take_output();
        assert!(!out.windows(12).any(|w| w == epc), "field cleared");
    }

    #[test]
    fn bad_ops_are_refused_and_change_nothing() {
        let mut sim = a0();
        assert!(
            sim.control(field(9, &[&[0x30, 0x00]])).is_err(),
            "no antenna 9"
        );
        assert!(sim.control(field(1, &[&[0x30]])).is_err(), "odd-length epc");
        assert!(sim.control(ControlOp::Scan { text: "x".into() }).is_err());
        assert!(
            sim.control(ControlOp::Disconnect {
                antenna: NonZeroU8::new(5).unwrap()
            })
            .is_err()
        );
        assert!(
            sim.device()
                .device()
                .reader()
                .model()
                .antennas()
                .all(|(_, a)| a.field().is_empty())
        );
    }
}
