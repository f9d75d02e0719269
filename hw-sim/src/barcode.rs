//! A barcode scanner in serial (RS-232 / USB-CDC) mode.
//!
//! A scanner sends each decoded barcode as one line: an optional AIM symbology identifier
//! (ISO/IEC 15424, e.g. `]C0` for Code 128, `]Q1` for QR), the data, and a terminator (CR by
//! factory default on most scanners). It ignores what the host sends.
//!
//! Control ops: `scan` (`{"op":"scan","text":"..."}`) plus the common `silence` and `garbage`.
//! The text may contain GS (0x1D), the GS1 field separator, but no other control character: it
//! would be indistinguishable from a terminator or framing on the wire.

use std::fmt;
use std::str::FromStr;

use crate::control::{ControlError, ControlOp};
use crate::serial::SerialDevice;
use crate::time::Millis;

/// Longest barcode text accepted, in bytes (a QR code holds at most 2953 bytes).
pub const MAX_TEXT: usize = 4096;

/// GS, the GS1 group separator (FNC1 in the data), the one control character a scan may carry.
pub const GS: char = '\u{1D}';

/// What ends each scanned line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Terminator {
    /// Carriage return, 0x0D (factory default of most scanners).
    #[default]
    Cr,
    /// CR LF, 0x0D 0x0A.
    Crlf,
    /// Line feed, 0x0A.
    Lf,
}

impl Terminator {
    /// The terminator's bytes.
    #[must_use]
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Terminator::Cr => b"\r",
            Terminator::Crlf => b"\r\n",
            Terminator::Lf => b"\n",
        }
    }
}

/// An AIM symbology identifier: `]`, a symbology letter, a modifier character (`]C0`, `]Q1`,
/// `]d2`, `]e0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AimPrefix(String);

/// Why an AIM prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an AIM prefix is ']' followed by a symbology letter and a modifier digit or letter")]
pub struct BadAimPrefix;

impl FromStr for AimPrefix {
    type Err = BadAimPrefix;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            [b']', code, modifier]
                if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
            {
                Ok(AimPrefix(text.to_owned()))
            }
            _ => Err(BadAimPrefix),
        }
    }
}

impl fmt::Display for AimPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scanner's state machine.
#[derive(Debug, Clone, Default)]
pub struct BarcodeScanner {
    terminator: Terminator,
    aim: Option<AimPrefix>,
    out: Vec<u8>,
    scans: u64,
}

impl BarcodeScanner {
    /// A scanner that ends lines with `terminator` and prefixes them with `aim` if given.
    #[must_use]
    pub fn new(terminator: Terminator, aim: Option<AimPrefix>) -> Self {
        BarcodeScanner {
            terminator,
            aim,
            out: Vec::new(),
            scans: 0,
        }
    }

    /// How many scans were sent.
    #[must_use]
    pub fn scans(&self) -> u64 {
        self.scans
    }

    /// Scans `text`: queues prefix, text and terminator for the host.
    ///
    /// # Errors
    /// [`ControlError::BadField`] (`text`) for an empty or too long text or a control character
    /// other than GS; nothing is queued then.
    pub fn scan(&mut self, text: &str) -> Result<(), ControlError> {
        check_text(text)?;
        if let Some(aim) = &self.aim {
            self.out.extend_from_slice(aim.0.as_bytes());
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(self.terminator.bytes());
        self.scans += 1;
        Ok(())
    }
}

fn check_text(text: &str) -> Result<(), ControlError> {
    if text.is_empty() {
        return Err(ControlError::bad_field("text", "empty"));
    }
    if text.len() > MAX_TEXT {
        return Err(ControlError::bad_field(
            "text",
            format!("longer than {MAX_TEXT} bytes"),
        ));
    }
    if let Some((at, c)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != GS)
    {
        return Err(ControlError::bad_field(
            "text",
            format!(
                "control character U+{:04X} at byte {at}; only GS (U+001D) is allowed",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

impl SerialDevice for BarcodeScanner {
    const KIND: &'static str = "barcode";

    fn handle_input(&mut self, _now: Millis, bytes: &[u8]) {
        tracing::debug!(bytes = bytes.len(), "barcode scanner ignores host input");
    }

    fn handle_control(&mut self, _now: Millis, op: ControlOp) -> Result<(), ControlError> {
        match op {
            ControlOp::Scan { text } => self.scan(&text),
            op => Err(op.unsupported(Self::KIND)),
        }
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

    fn scan(text: &str) -> ControlOp {
        ControlOp::Scan { text: text.into() }
    }

    #[test]
    fn scans_end_with_the_chosen_terminator() {
        for (terminator, end) in [
            (Terminator::Cr, &b"\r"[..]),
            (Terminator::Crlf, b"\r\n"),
            (Terminator::Lf, b"\n"),
        ] {
            let mut sim = VirtualSerial::new(BarcodeScanner::new(terminator, None));
            sim.control(scan("CU-000123")).unwrap();
            assert_eq!(sim.take_output(), [&b"CU-000123"[..], end].concat());
        }
    }

    #[test]
    fn aim_prefix_and_gs_are_sent() {
        let aim: AimPrefix = "]C1".parse().unwrap();
        let mut sim = VirtualSerial::new(BarcodeScanner::new(Terminator::Crlf, Some(aim)));
        sim.control(scan("8004\u{1D}123")).unwrap();
        sim.control(scan("Ü2")).unwrap();
        assert_eq!(
            sim.take_output(),
            b"]C18004\x1D123\r\n]C1\xC3\x9C2\r\n".to_vec()
        );
        assert_eq!(sim.device().device().scans(), 2);
    }

    #[test]
    fn bad_texts_are_refused_and_send_nothing() {
        let mut sim = VirtualSerial::new(BarcodeScanner::default());
        for text in ["", "CU\r1", "a\nb", "tab\there", "del\u{7F}", "nul\0"] {
            let result = sim.control(scan(text));
            assert!(
                matches!(&result, Err(ControlError::BadField { field: "text", .. })),
                "{text:?}: {result:?}"
            );
        }
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(sim.control(scan(&long)).is_err());
        assert!(sim.take_output().is_empty());
        assert_eq!(sim.device().device().scans(), 0);
    }

    #[test]
    fn host_input_is_ignored_and_other_ops_unsupported() {
        let mut sim = VirtualSerial::new(BarcodeScanner::default());
        sim.host_write(b"\x16T\r");
        assert!(sim.take_output().is_empty());
        let card = sim.control(ControlOp::Card {
            hex: HexBytes(vec![1]),
        });
        assert_eq!(
            card,
            Err(ControlError::Unsupported {
                device: "barcode",
                op: "card"
            })
        );
        // The common faults work on the scanner too.
        sim.control(ControlOp::Silence { on: true }).unwrap();
        sim.control(scan("A")).unwrap();
        assert!(
            sim.take_output().is_empty(),
            "a silent scanner sends nothing"
        );
    }

    proptest::proptest! {
        /// A text without control characters other than GS is sent byte for byte, followed by
        /// the terminator; anything else is refused and sends nothing.
        #[test]
        fn scans_are_sent_verbatim_or_refused(text in "\\PC{0,40}|[a-z\u{1D}\r\n\t]{0,8}") {
            let mut sim = VirtualSerial::new(BarcodeScanner::new(Terminator::Lf, None));
            let clean = !text.is_empty() && text.chars().all(|c| !c.is_control() || c == GS);
            let result = sim.control(scan(&text));
            if clean {
                proptest::prop_assert!(result.is_ok());
                proptest::prop_assert_eq!(sim.take_output(), format!("{text}\n").into_bytes());
            } else {
                proptest::prop_assert!(result.is_err());
                proptest::prop_assert!(sim.take_output().is_empty());
            }
        }
    }

    #[test]
    fn aim_prefix_parsing() {
        for good in ["]C0", "]Q1", "]d2", "]e0", "]E4"] {
            assert_eq!(good.parse::<AimPrefix>().unwrap().to_string(), good);
        }
        for bad in ["", "C0", "]C", "]C00", "]0C", "[C0", "]C\r"] {
            assert_eq!(bad.parse::<AimPrefix>(), Err(BadAimPrefix), "{bad:?}");
        }
    }
}
