//! A 125 kHz EM4100 card module in serial mode (RDM6300 family, 9600 8N1).
//!
//! The module sends nothing until a card enters its field; then it sends the card's 14-byte
//! frame (`0x02`, ten hex digits, two hex digits of XOR, `0x03`; see
//! `custos_protocol::em4100`) again and again while the card stays there. It ignores what the
//! host sends.
//!
//! Control op `card` (`{"op":"card","hex":"1A00B54E12"}`, exactly five bytes) presents a card
//! as a person tapping a badge would: it stays in the field for [`PRESENT_MS`], and the frame is
//! repeated every [`REPEAT_MS`] meanwhile (so a host must de-duplicate). A new `card` op replaces
//! the card in the field; `clear` takes it away at once. Plus the common `silence` and `garbage`.

use custos_protocol::em4100::{self, Card};

use crate::control::{ControlError, ControlOp};
use crate::serial::SerialDevice;
use crate::time::Millis;

/// How long a presented card stays in the field.
pub const PRESENT_MS: u64 = 1000;

/// The interval between repeated frames while a card is in the field.
pub const REPEAT_MS: u64 = 150;

/// The module's state machine.
#[derive(Debug, Clone, Default)]
pub struct Em4100Reader {
    card: Option<Card>,
    until: Millis,
    next_frame: Millis,
    out: Vec<u8>,
    frames: u64,
}

impl Em4100Reader {
    /// A module with no card in its field.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many frames were sent.
    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn send_frame(&mut self, card: &Card) {
        let mut buf = [0u8; em4100::MAX_FRAME_LEN];
        // Invariant: MAX_FRAME_LEN is the size of every EM4100 frame.
        let len = em4100::encode(card, &mut buf).expect("an em4100 frame fits MAX_FRAME_LEN");
        self.out.extend_from_slice(&buf[..len]);
        self.frames += 1;
    }
}

impl SerialDevice for Em4100Reader {
    const KIND: &'static str = "em4100";

    fn handle_input(&mut self, _now: Millis, _bytes: &[u8]) {}

    fn handle_control(&mut self, now: Millis, op: ControlOp) -> Result<(), ControlError> {
        match op {
            ControlOp::Card { hex } => {
                let card = match hex.as_bytes() {
                    [version, number @ ..] if number.len() == 4 => Card {
                        version: *version,
                        number: u32::from_be_bytes([number[0], number[1], number[2], number[3]]),
                    },
                    _ => return Err(ControlError::bad_field("hex", "an EM4100 card is 5 bytes")),
                };
                self.send_frame(&card);
                self.card = Some(card);
                self.until = now + PRESENT_MS;
                self.next_frame = now + REPEAT_MS;
                Ok(())
            }
            ControlOp::Clear {} => {
                self.card = None;
                Ok(())
            }
            other => Err(other.unsupported(Self::KIND)),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        let Some(card) = self.card else { return };
        if now >= self.until {
            self.card = None;
            return;
        }
        if now >= self.next_frame {
            self.send_frame(&card);
            self.next_frame = now + REPEAT_MS;
        }
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.card.map(|_| self.next_frame.min(self.until))
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::HexBytes;
    use crate::serial::VirtualSerial;

    /// The vector of `em4100.txt`: card 1A00B54E12, checksum F3.
    const FRAME: [u8; 14] = [
        0x02, 0x31, 0x41, 0x30, 0x30, 0x42, 0x35, 0x34, 0x45, 0x31, 0x32, 0x46, 0x33, 0x03,
    ];

    fn card(hex: &[u8]) -> ControlOp {
        ControlOp::Card {
            hex: HexBytes(hex.to_vec()),
        }
    }

    #[test]
    fn a_presented_card_repeats_its_frame_until_it_leaves_the_field() {
        let mut sim = VirtualSerial::new(Em4100Reader::new());
        assert!(sim.take_output().is_empty(), "silent without a card");
        sim.control(card(&[0x1A, 0x00, 0xB5, 0x4E, 0x12])).unwrap();
        assert_eq!(sim.take_output(), FRAME);
        sim.advance(PRESENT_MS + 500);
        let out = sim.take_output();
        assert!(
            out.len() >= 14 * 5,
            "repeats while present: {} bytes",
            out.len()
        );
        assert!(out.chunks(14).all(|f| f == FRAME));
        let repeats = sim.device().device().frames();
        sim.advance(5_000);
        assert!(sim.take_output().is_empty(), "gone from the field");
        assert_eq!(sim.device().device().frames(), repeats);
    }

    #[test]
    fn clear_takes_the_card_away() {
        let mut sim = VirtualSerial::new(Em4100Reader::new());
        sim.control(card(&[0x1A, 0x00, 0xB5, 0x4E, 0x12])).unwrap();
        sim.control(ControlOp::Clear {}).unwrap();
        sim.take_output();
        sim.advance(1_000);
        assert!(sim.take_output().is_empty());
    }

    #[test]
    fn wrong_length_is_refused_and_sends_nothing() {
        let mut sim = VirtualSerial::new(Em4100Reader::new());
        assert!(sim.control(card(&[1, 2, 3, 4])).is_err());
        assert!(sim.control(card(&[1, 2, 3, 4, 5, 6])).is_err());
        assert!(sim.control(ControlOp::Scan { text: "x".into() }).is_err());
        sim.advance(1_000);
        assert!(sim.take_output().is_empty());
    }

    #[test]
    fn host_input_is_ignored_and_silence_stops_frames() {
        let mut sim = VirtualSerial::new(Em4100Reader::new());
        sim.host_write(b"\x02garbage\x03");
        sim.control(ControlOp::Silence { on: true }).unwrap();
        sim.control(card(&[0x1A, 0x00, 0xB5, 0x4E, 0x12])).unwrap();
        sim.advance(500);
        assert!(sim.take_output().is_empty());
    }
}
