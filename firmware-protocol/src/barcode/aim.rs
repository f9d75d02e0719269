//! AIM symbology identifiers (ISO/IEC 15424).
//!
//! Scanners can prefix each line with the ISO/IEC 15424 symbology identifier `]` + code
//! character + modifier (`]C1` GS1-128, `]E0` EAN-13, `]d2` GS1 DataMatrix, `]Q3` GS1 QR, …).
//! [`ScanLine::aim`](super::ScanLine::aim) parses it into [`AimId`]; [`AimId::implies_gs1`]
//! says whether the symbol carries a GS1 element string (`]C1`, `]e0`, `]d2`, `]Q3`, `]J1`:
//! FNC1 in first position).

use core::fmt;

/// A symbology family named by an AIM code character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Symbology {
    /// `]A`: Code 39.
    Code39,
    /// `]C`: Code 128 (`]C1`: GS1-128).
    Code128,
    /// `]E`: EAN/UPC (`]E0` EAN-13, UPC-A, UPC-E; `]E4` EAN-8).
    EanUpc,
    /// `]F`: Codabar.
    Codabar,
    /// `]G`: Code 93.
    Code93,
    /// `]H`: Code 11.
    Code11,
    /// `]I`: Interleaved 2 of 5 (ITF).
    Interleaved2Of5,
    /// `]J`: DotCode (`]J1`: GS1 DotCode).
    DotCode,
    /// `]L`: PDF417 and MicroPDF417.
    Pdf417,
    /// `]Q`: QR Code (`]Q1` model 2, `]Q3` GS1 QR Code).
    QrCode,
    /// `]U`: MaxiCode.
    MaxiCode,
    /// `]d`: Data Matrix (`]d1` ECC 200, `]d2` GS1 DataMatrix).
    DataMatrix,
    /// `]e`: GS1 DataBar.
    Gs1DataBar,
    /// `]h`: Han Xin Code.
    HanXin,
    /// `]z`: Aztec Code.
    Aztec,
    /// `]X`: another symbology; `]Z`: keyboard or other non-barcode input.
    Other,
    /// A code character this module does not name.
    Unknown,
}

/// An AIM symbology identifier `]cm`: code character and modifier, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AimId {
    code: u8,
    modifier: u8,
}

impl AimId {
    /// An identifier from its code character (an ASCII letter) and modifier (an ASCII letter
    /// or digit).
    pub fn new(code: char, modifier: char) -> Option<Self> {
        (code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric()).then_some(Self {
            code: code as u8,
            modifier: modifier as u8,
        })
    }

    /// The code character, e.g. `C`.
    pub fn code(self) -> char {
        char::from(self.code)
    }

    /// The modifier character, e.g. `1`.
    pub fn modifier(self) -> char {
        char::from(self.modifier)
    }

    /// The symbology family.
    pub fn symbology(self) -> Symbology {
        match self.code {
            b'A' => Symbology::Code39,
            b'C' => Symbology::Code128,
            b'E' => Symbology::EanUpc,
            b'F' => Symbology::Codabar,
            b'G' => Symbology::Code93,
            b'H' => Symbology::Code11,
            b'I' => Symbology::Interleaved2Of5,
            b'J' => Symbology::DotCode,
            b'L' => Symbology::Pdf417,
            b'Q' => Symbology::QrCode,
            b'U' => Symbology::MaxiCode,
            b'd' => Symbology::DataMatrix,
            b'e' => Symbology::Gs1DataBar,
            b'h' => Symbology::HanXin,
            b'z' => Symbology::Aztec,
            b'X' | b'Z' => Symbology::Other,
            _ => Symbology::Unknown,
        }
    }

    /// Whether the data is a GS1 element string (FNC1 in first position): `]C1` GS1-128,
    /// `]e0` GS1 DataBar, `]d2` GS1 DataMatrix, `]Q3` GS1 QR Code, `]J1` GS1 DotCode
    /// (the symbology identifiers the GS1 General Specifications give for GS1 data carriers).
    pub fn implies_gs1(self) -> bool {
        matches!(
            (self.code, self.modifier),
            (b'C', b'1') | (b'e', b'0') | (b'd', b'2') | (b'Q', b'3') | (b'J', b'1')
        )
    }
}

impl fmt::Display for AimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "]{}{}", self.code(), self.modifier())
    }
}

pub(super) fn split_aim(bytes: &[u8]) -> (Option<AimId>, &[u8]) {
    match bytes {
        [b']', code, modifier, rest @ ..] => {
            match AimId::new(char::from(*code), char::from(*modifier)) {
                Some(aim) => (Some(aim), rest),
                None => (None, bytes),
            }
        }
        _ => (None, bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barcode::testing::line;

    #[test]
    fn aim_identifiers() {
        let cases = [
            ("]C1", Symbology::Code128, true),
            ("]C0", Symbology::Code128, false),
            ("]E0", Symbology::EanUpc, false),
            ("]d2", Symbology::DataMatrix, true),
            ("]d1", Symbology::DataMatrix, false),
            ("]Q3", Symbology::QrCode, true),
            ("]Q1", Symbology::QrCode, false),
            ("]e0", Symbology::Gs1DataBar, true),
            ("]J1", Symbology::DotCode, true),
            ("]A0", Symbology::Code39, false),
            ("]h0", Symbology::HanXin, false),
            ("]X0", Symbology::Other, false),
            ("]k0", Symbology::Unknown, false),
        ];
        for (prefix, symbology, gs1) in cases {
            let l = line(&format!("{prefix}0123"));
            let aim = l.aim().unwrap();
            assert_eq!(aim.to_string(), prefix);
            assert_eq!(aim.symbology(), symbology, "{prefix}");
            assert_eq!(aim.implies_gs1(), gs1, "{prefix}");
            assert_eq!(l.data(), b"0123");
        }
        // Not identifiers: code must be a letter, modifier a letter or digit.
        for text in ["]", "]C", "]1A", "]C-", "X]C1"] {
            assert_eq!(line(text).aim(), None, "{text}");
            assert_eq!(line(text).data(), text.as_bytes());
        }
    }
}
