//! Barcode scanner lines, GS1 element strings, and the Custos carrier label.
//!
//!
//! Each part lives in a submodule of its own, re-exported here:
//! - `line`: scanner lines and their framing, [`decode_line`] / [`encode_line`];
//! - `aim`: AIM symbology identifiers, [`AimId`];
//! - `gs1`: GS1 element strings, [`Gs1Elements`];
//! - `label`: the Custos carrier label, [`CarrierLabel`].

mod aim;
mod gs1;
mod label;
mod line;

pub use aim::{AimId, Symbology};
pub use gs1::{Element, Gs1Elements, gs1_check_digit};
pub use label::{
    CONTROL_NO_MAX, CarrierLabel, ControlNumber, GIAI_MAX, Giai, LABEL_PREFIX, MAX_LABEL_LEN,
    check_character,
};
pub use line::{GS, MAX_LINE, ScanLine, Terminator, decode_line, encode_line};

/// Errors of scanner lines, GS1 element strings and carrier labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BarcodeError {
    /// No terminator within [`MAX_LINE`] bytes, or text longer than that.
    #[error("line longer than 256 bytes")]
    LineTooLong,
    /// A line with no content.
    #[error("empty line")]
    EmptyLine,
    /// A byte other than printable ASCII or GS.
    #[error("non-printable byte {byte:#04x} at {at}")]
    NonPrintable {
        /// The byte.
        byte: u8,
        /// Its offset in the line.
        at: usize,
    },
    /// The digits at this offset do not start a known Application Identifier.
    #[error("unknown application identifier at {at}")]
    UnknownAi {
        /// Offset in the element string.
        at: usize,
    },
    /// The element string ends inside an Application Identifier.
    #[error("truncated application identifier at {at}")]
    TruncatedAi {
        /// Offset in the element string.
        at: usize,
    },
    /// The bracketed form is malformed (no `(AI)` where one must be).
    #[error("malformed bracketed element string at {at}")]
    Bracket {
        /// Offset in the text.
        at: usize,
    },
    /// A value is shorter or longer than its AI allows.
    #[error("ai ({ai:02}) value has the wrong length")]
    ValueLength {
        /// The Application Identifier.
        ai: u16,
    },
    /// A value has a character its AI does not allow.
    #[error("ai ({ai:02}) value has an invalid character")]
    ValueCharacter {
        /// The Application Identifier.
        ai: u16,
    },
    /// A GS1 key's mod-10 check digit is wrong.
    #[error("ai ({ai:02}) check digit is wrong")]
    CheckDigit {
        /// The Application Identifier.
        ai: u16,
    },
    /// A YYMMDD date with an impossible month or day.
    #[error("ai ({ai:02}) date is invalid")]
    Date {
        /// The Application Identifier.
        ai: u16,
    },
    /// The text is neither a Custos control-number label nor a GS1 GIAI label.
    #[error("not a carrier label")]
    NotALabel,
    /// A GS1 element string without (8004).
    #[error("element string has no (8004) giai")]
    NoGiai,
    /// A control number of 0 or more than 24 characters.
    #[error("control number must have 1 to 24 characters, not {len}")]
    ControlNumberLength {
        /// The length given.
        len: usize,
    },
    /// A control number character outside `A-Z`, `0-9`, `-`.
    #[error("control number character at {at} is not A-Z, 0-9 or '-'")]
    ControlNumberCharacter {
        /// Offset in the control number.
        at: usize,
    },
    /// The label's check character does not match its control number.
    #[error("check character is {found:?}, expected {expected:?}")]
    CheckCharacter {
        /// The MOD 37-2 check character of the control number read.
        expected: char,
        /// The character on the label.
        found: char,
    },
    /// A GIAI that is not 1 to 30 characters of GS1 character set 82.
    #[error("giai must have 1 to 30 characters of gs1 set 82")]
    Giai,
}

#[cfg(test)]
mod testing {
    //! Helpers shared by the submodules' tests.

    use proptest::prelude::*;

    use super::{ScanLine, Terminator};

    pub(super) fn line(text: &str) -> ScanLine {
        ScanLine::new(text.as_bytes()).unwrap()
    }

    pub(super) fn terminator() -> impl Strategy<Value = Terminator> {
        prop_oneof![
            Just(Terminator::Cr),
            Just(Terminator::Lf),
            Just(Terminator::CrLf)
        ]
    }
}
