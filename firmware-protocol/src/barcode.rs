//! Barcode scanner lines, GS1 element strings, and the Custos carrier label.
//!
//! # Line framing
//! Keyboard-wedge and serial scanners send one line per scan. [`decode_line`] is a [`Decoded`]
//! decoder for those lines, usable inside [`crate::codec::StreamDecoder`]:
//! - A line ends at CR, LF or CR LF. The frame's `len` counts the terminator; the
//!   [`ScanLine`] does not hold it.
//! - A CR at the very end of the input ends the line at once (a scanner configured for CR
//!   alone must not stall until the next scan). If an LF then arrives, it starts the next input;
//!   terminator bytes at the start of the input are empty lines, and empty lines are not
//!   frames: they are absorbed into the next line's `len` (while nothing else is buffered the
//!   decoder answers `NeedMore`). So CR LF is one terminator however the reads split it, and
//!   no empty line is ever reported or counted as dropped.
//! - Content is at most [`MAX_LINE`] bytes of printable ASCII (0x20-0x7E) or GS (0x1D, the
//!   FNC1 separator in GS1 data). Custos labels are ASCII; configure scanners for ASCII output.
//!   A line with another byte is rejected whole (`skip` covers the line and its terminator).
//!   A line longer than [`MAX_LINE`] is rejected with `skip` up to its terminator, or up to
//!   everything buffered if none has arrived; the tail of such a line that arrives later can
//!   then come out as a line of its own. Give the `StreamDecoder` a capacity of at least
//!   `MAX_LINE + 2`.
//!
//! # AIM symbology identifier
//! Scanners can prefix each line with the ISO/IEC 15424 symbology identifier `]` + code
//! character + modifier (`]C1` GS1-128, `]E0` EAN-13, `]d2` GS1 DataMatrix, `]Q3` GS1 QR, …).
//! [`ScanLine::aim`] parses it into [`AimId`]; [`AimId::implies_gs1`] says whether the symbol
//! carries a GS1 element string (`]C1`, `]e0`, `]d2`, `]Q3`, `]J1`: FNC1 in first position).
//!
//! # GS1 element strings
//! [`Gs1Elements`] iterates over Application Identifier (AI) + value pairs, either as a scanner
//! transmits them (FNC1 → GS separators after variable-length values, none after the
//! element strings whose length the GS1 General Specifications predefine by the AI's first two
//! digits: 00, 01, 02, 03, 04, 11-19, 20, 31-36, 41) or in the bracketed human-readable form
//! typed by hand, `(8004)0614141ABC`. AI lengths come from their first two digits; values are
//! checked for length, character set (GS1 AI encodable character set 82), numeric formats,
//! YYMMDD dates and GS1 mod-10 check digits of the keys (SSCC, GTIN, GDTI, GRAI, GLN, GSRN, …).
//! AIs without a specific rule are accepted as 1-90 characters of set 82.
//!
//! # Custos carrier label
//! Every carrier gets a control number (登记/编号). Control numbers in Chinese practice often
//! contain CJK characters (e.g. "机字2024第17号"); the label never carries that text nor the
//! title. It carries the ASCII control number Custos assigns: 1 to 24 characters of `A-Z`,
//! `0-9` and `-`.
//!
//! The label text is `CU` + control number + one check character, e.g. `CU2024-0017X`,
//! printable as Code 128 (all characters are in Code 128 set B) and short enough to type.
//! Parsing accepts lower case (hand typing, caps-lock wedges) and surrounding whitespace.
//!
//! The check character is ISO/IEC 7064 MOD 37-2, a pure system over the prime modulus 37 with
//! weights 2^i mod 37: character values 0-9 → 0-9, A-Z → 10-35, and — Custos' extension of the
//! 36-character input alphabet — `-` → 36; check characters `0-9`, `A-Z`, `*` (36). Because 37
//! is prime, every weight is non-zero mod 37 and all 37 character values are distinct mod 37,
//! so every single substitution changes the weighted sum; because adjacent weights differ by a
//! factor 2 ≢ 1, every adjacent transposition of different characters changes it too
//! (including a swap with the check character); the proptests below check both. MOD 37-36
//! (the hybrid system) would keep the check character alphanumeric, but its input alphabet has
//! no room for `-`, and its guarantees do not follow from one line of arithmetic. MOD 37-2 is
//! also what ISBT 128 uses for hand-keyed donation numbers.
//!
//! A carrier may instead carry a GS1 label: the element string (8004) GIAI, e.g.
//! `(8004)06141415678` as GS1-128/DataMatrix. It is the same identifier as the carrier's
//! GIAI-96 tag `urn:epc:id:giai:0614141.5678`: the GIAI is the GS1 Company Prefix digits
//! followed by the individual asset reference in decimal without leading zeros. Splitting it
//! back needs the Company Prefix length, which is configuration, hence
//! [`Giai::to_giai96`]`(company_prefix_len, filter)`; [`Giai::from_identity`] goes the other way.
//! [`CarrierLabel::parse`] takes (8004) from a symbol whose AIM identifier implies GS1, from the
//! bracketed form, from data starting with GS (FNC1), or from data starting with `8004` (a
//! GS1-128 read by a scanner that strips the AIM prefix and FNC1).

use core::fmt;

use crate::codec::{BufferTooSmall, Decoded};
use crate::epc::Epc;
use crate::epc::tds::{self, Identity, TdsError};

/// The longest line content accepted, in bytes (without terminator).
pub const MAX_LINE: usize = 256;
/// ASCII Group Separator: FNC1 as transmitted inside GS1 data.
pub const GS: u8 = 0x1D;
const CR: u8 = 0x0D;
const LF: u8 = 0x0A;

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

fn line_byte_ok(b: u8) -> bool {
    (0x20..=0x7E).contains(&b) || b == GS
}

fn check_line(bytes: &[u8]) -> Result<(), BarcodeError> {
    if bytes.is_empty() {
        return Err(BarcodeError::EmptyLine);
    }
    if bytes.len() > MAX_LINE {
        return Err(BarcodeError::LineTooLong);
    }
    match bytes.iter().position(|b| !line_byte_ok(*b)) {
        Some(at) => Err(BarcodeError::NonPrintable {
            byte: bytes[at],
            at,
        }),
        None => Ok(()),
    }
}

/// One scanned line without its terminator: 1 to [`MAX_LINE`] bytes of printable ASCII or GS.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanLine {
    len: u16,
    bytes: [u8; MAX_LINE],
}

impl ScanLine {
    /// A line holding `bytes`, which must be 1 to [`MAX_LINE`] printable ASCII bytes or GS.
    pub fn new(bytes: &[u8]) -> Result<Self, BarcodeError> {
        check_line(bytes)?;
        let mut out = [0u8; MAX_LINE];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            len: bytes.len() as u16,
            bytes: out,
        })
    }

    /// The line bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The line as text (it is ASCII).
    pub fn as_str(&self) -> &str {
        // Invariant: every byte is 0x20-0x7E or 0x1D (checked in `new`), hence UTF-8.
        core::str::from_utf8(self.as_bytes()).expect("scan lines hold ASCII only")
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always false: a scan line has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The AIM symbology identifier at the start of the line, if the scanner sent one.
    pub fn aim(&self) -> Option<AimId> {
        split_aim(self.as_bytes()).0
    }

    /// The data after the AIM symbology identifier (the whole line if there is none).
    pub fn data(&self) -> &[u8] {
        split_aim(self.as_bytes()).1
    }

    /// The GS1 element string of the line, when it has one: a symbology that implies GS1
    /// (raw form), data starting with GS (FNC1 passed on as GS), or the bracketed form.
    pub fn gs1(&self) -> Option<Gs1Elements<'_>> {
        let (aim, data) = split_aim(self.as_bytes());
        if aim.is_some_and(|a| a.implies_gs1()) || data.first() == Some(&GS) {
            Some(Gs1Elements::raw(data))
        } else if data.first() == Some(&b'(') {
            Some(Gs1Elements::bracketed(data))
        } else {
            None
        }
    }
}

impl AsRef<[u8]> for ScanLine {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The text as scanned (GS included).
impl fmt::Display for ScanLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ScanLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanLine({:?})", self.as_str())
    }
}

impl core::str::FromStr for ScanLine {
    type Err = BarcodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s.as_bytes())
    }
}

/// Decodes one scanner line from the start of `buf` (see the module docs for the rules).
pub fn decode_line(buf: &[u8]) -> Decoded<ScanLine, BarcodeError> {
    let is_term = |b: &u8| *b == CR || *b == LF;
    // Empty lines (terminators left over from the previous line) are absorbed.
    let lead = buf.iter().take_while(|b| is_term(b)).count();
    let rest = &buf[lead..];
    if rest.is_empty() {
        return Decoded::NeedMore;
    }
    let window = &rest[..rest.len().min(MAX_LINE + 1)];
    match window.iter().position(is_term) {
        Some(end) => {
            let mut len = lead + end + 1;
            if rest[end] == CR && rest.get(end + 1) == Some(&LF) {
                len += 1;
            }
            match ScanLine::new(&rest[..end]) {
                Ok(line) => Decoded::Frame { frame: line, len },
                Err(error) => Decoded::Invalid { error, skip: len },
            }
        }
        None if rest.len() <= MAX_LINE => Decoded::NeedMore,
        None => {
            let skip = match rest.iter().position(is_term) {
                Some(at) => lead + at,
                None => buf.len(),
            };
            Decoded::Invalid {
                error: BarcodeError::LineTooLong,
                skip,
            }
        }
    }
}

/// The line terminator a scanner (or the simulator) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Terminator {
    /// Carriage return alone (the usual keyboard-wedge "Enter").
    Cr,
    /// Line feed alone.
    Lf,
    /// Carriage return, line feed.
    CrLf,
}

impl Terminator {
    /// The terminator bytes.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Terminator::Cr => b"\r",
            Terminator::Lf => b"\n",
            Terminator::CrLf => b"\r\n",
        }
    }
}

/// Writes `line` and `terminator` into `out`; returns the length written.
pub fn encode_line(
    line: &ScanLine,
    terminator: Terminator,
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let term = terminator.as_bytes();
    let needed = line.len() + term.len();
    if out.len() < needed {
        return Err(BufferTooSmall { needed });
    }
    out[..line.len()].copy_from_slice(line.as_bytes());
    out[line.len()..needed].copy_from_slice(term);
    Ok(needed)
}

// ---------------------------------------------------------------------------------------------
// AIM symbology identifiers (ISO/IEC 15424)

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

fn split_aim(bytes: &[u8]) -> (Option<AimId>, &[u8]) {
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

// ---------------------------------------------------------------------------------------------
// GS1 element strings

/// One Application Identifier and its value, borrowed from the scanned data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Element<'a> {
    ai: &'a str,
    value: &'a str,
}

impl<'a> Element<'a> {
    /// The AI digits, e.g. `"01"`, `"8004"`.
    pub fn ai(&self) -> &'a str {
        self.ai
    }

    /// The AI as a number (`"01"` → 1; AI lengths make this unambiguous).
    pub fn ai_code(&self) -> u16 {
        digits_value(self.ai.as_bytes()) as u16
    }

    /// The value, checked against the AI's format.
    pub fn value(&self) -> &'a str {
        self.value
    }
}

/// An iterator over the elements of a GS1 element string; stops after the first error.
#[derive(Debug, Clone)]
pub struct Gs1Elements<'a> {
    rest: &'a [u8],
    offset: usize,
    bracketed: bool,
}

impl<'a> Gs1Elements<'a> {
    /// Elements of data as transmitted: AI digits and values, GS after variable-length values.
    /// A leading GS (FNC1 passed on) and redundant GS after fixed-length values are skipped.
    pub fn raw(data: &'a [u8]) -> Self {
        Self {
            rest: data,
            offset: 0,
            bracketed: false,
        }
    }

    /// Elements of the bracketed human-readable form, `(01)09506000134352(10)ABC`. A value
    /// ends at the next `(` that opens a 2-4 digit AI and `)`, or at the end.
    pub fn bracketed(text: &'a [u8]) -> Self {
        Self {
            rest: text,
            offset: 0,
            bracketed: true,
        }
    }

    /// Checks the whole element string and returns the value of the first element with
    /// AI `ai` (digits, e.g. `"8004"`).
    pub fn find(self, ai: &str) -> Result<Option<&'a str>, BarcodeError> {
        let mut found = None;
        for element in self {
            let element = element?;
            if found.is_none() && element.ai == ai {
                found = Some(element.value);
            }
        }
        Ok(found)
    }

    fn fail(&mut self, error: BarcodeError) -> Option<Result<Element<'a>, BarcodeError>> {
        self.rest = &[];
        Some(Err(error))
    }

    fn advance(&mut self, n: usize) {
        self.rest = &self.rest[n..];
        self.offset += n;
    }
}

impl<'a> Iterator for Gs1Elements<'a> {
    type Item = Result<Element<'a>, BarcodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bracketed {
            self.next_bracketed()
        } else {
            self.next_raw()
        }
    }
}

impl<'a> Gs1Elements<'a> {
    fn next_raw(&mut self) -> Option<Result<Element<'a>, BarcodeError>> {
        while self.rest.first() == Some(&GS) {
            self.advance(1);
        }
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        let at = self.offset;
        let Some(ai_len) = ai_length(rest) else {
            return self.fail(BarcodeError::UnknownAi { at });
        };
        if rest.len() < ai_len || !rest[..ai_len].iter().all(u8::is_ascii_digit) {
            return self.fail(BarcodeError::TruncatedAi { at });
        }
        let ai = &rest[..ai_len];
        let code = digits_value(ai) as u16;
        let after = &rest[ai_len..];
        let value_len = match predefined_length(rest) {
            Some(total) => {
                let n = total - ai_len;
                if after.len() < n {
                    return self.fail(BarcodeError::ValueLength { ai: code });
                }
                n
            }
            None => after.iter().position(|b| *b == GS).unwrap_or(after.len()),
        };
        let value = &after[..value_len];
        if let Err(e) = check_value(code, ai_len, value) {
            return self.fail(e);
        }
        self.advance(ai_len + value_len);
        Some(Ok(Element {
            ai: ascii(ai),
            value: ascii(value),
        }))
    }

    fn next_bracketed(&mut self) -> Option<Result<Element<'a>, BarcodeError>> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        let at = self.offset;
        let Some(ai_digits) = ai_open(rest) else {
            return self.fail(BarcodeError::Bracket { at });
        };
        let ai = &rest[1..1 + ai_digits];
        if ai_length(ai) != Some(ai_digits) {
            return self.fail(BarcodeError::UnknownAi { at: at + 1 });
        }
        let code = digits_value(ai) as u16;
        let start = ai_digits + 2;
        let end = (start..rest.len())
            .find(|&i| ai_open(&rest[i..]).is_some())
            .unwrap_or(rest.len());
        let value = &rest[start..end];
        if let Err(e) = check_value(code, ai_digits, value) {
            return self.fail(e);
        }
        self.advance(end);
        Some(Ok(Element {
            ai: ascii(ai),
            value: ascii(value),
        }))
    }
}

/// Text from bytes already checked to be ASCII digits or GS1 set 82.
fn ascii(bytes: &[u8]) -> &str {
    // Invariant: callers pass bytes that passed `check_value` or are AI digits, all ASCII.
    core::str::from_utf8(bytes).expect("checked ascii")
}

/// If `s` starts with `(` + 2-4 digits + `)`, the number of digits.
fn ai_open(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'(') {
        return None;
    }
    let digits = s[1..]
        .iter()
        .take(5)
        .take_while(|b| b.is_ascii_digit())
        .count();
    ((2..=4).contains(&digits) && s.get(1 + digits) == Some(&b')')).then_some(digits)
}

fn digits_value(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// The number of digits of the AI that starts `s`, from its first two digits (GS1 General
/// Specifications §3.2, AIs in numerical order; prefixes with no assigned AI give `None`).
fn ai_length(s: &[u8]) -> Option<usize> {
    let [a, b, ..] = *s else { return None };
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return None;
    }
    match (a - b'0') * 10 + (b - b'0') {
        0..=4 | 10..=22 | 30 | 37 | 90..=99 => Some(2),
        23..=25 | 40..=42 | 71 => Some(3),
        31..=36 | 39 | 43 | 70 | 72 | 80..=82 => Some(4),
        _ => None,
    }
}

/// The GS1 General Specifications table of element strings with predefined length: the total
/// length (AI and value) by the first two digits; no FNC1 separator follows these.
fn predefined_length(s: &[u8]) -> Option<usize> {
    match s {
        [b'0', b'0', ..] => Some(20),
        [b'0', b'1'..=b'3', ..] => Some(16),
        [b'0', b'4', ..] => Some(18),
        [b'1', b'1'..=b'9', ..] => Some(8),
        [b'2', b'0', ..] => Some(4),
        [b'3', b'1'..=b'6', ..] => Some(10),
        [b'4', b'1', ..] => Some(16),
        _ => None,
    }
}

/// How a value is checked.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// Digits only.
    Numeric,
    /// Digits whose last is the GS1 mod-10 check digit of the others.
    Key,
    /// YYMMDD.
    Date,
    /// GS1 AI encodable character set 82.
    Text,
    /// A key of `n` digits (check digit last) followed by set-82 characters.
    KeyThenText(usize),
    /// A key of `n` digits (check digit last) followed by digits.
    KeyThenNumeric(usize),
}

/// Length range and format of an AI's value (GS1 General Specifications §3.2 and the GS1
/// Barcode Syntax Dictionary).
fn spec(ai: u16, ai_len: usize) -> (usize, usize, Format) {
    use Format::*;
    match (ai_len, ai) {
        (2, 0) => (18, 18, Key),                     // SSCC
        (2, 1..=3) => (14, 14, Key),                 // GTIN, CONTENT, MTO GTIN
        (2, 10 | 21 | 22) => (1, 20, Text),          // BATCH/LOT, SERIAL, CPV
        (2, 11..=13 | 15..=17) => (6, 6, Date),      // PROD/DUE/PACK DATE, BEST BEFORE, SELL/USE BY
        (2, 20) => (2, 2, Numeric),                  // VARIANT
        (2, 30 | 37) => (1, 8, Numeric),             // VAR. COUNT, COUNT
        (2, 90) => (1, 30, Text),                    // INTERNAL
        (2, 91..=99) => (1, 90, Text),               // company internal
        (3, 235) => (1, 28, Text),                   // TPX
        (3, 240 | 241 | 250 | 251) => (1, 30, Text), // ADDITIONAL ID, PART No., 2ND SERIAL, SOURCE
        (3, 242) => (1, 6, Numeric),                 // MTO VARIANT
        (3, 243 | 254) => (1, 20, Text),             // PCN, GLN EXTENSION COMPONENT
        (3, 253) => (13, 30, KeyThenText(13)),       // GDTI: N13 + X..17
        (3, 255) => (13, 25, KeyThenNumeric(13)),    // GCN: N13 + N..12
        (3, 400 | 401 | 403) => (1, 30, Text),       // ORDER NUMBER, GINC, ROUTE
        (3, 402) => (17, 17, Key),                   // GSIN
        (3, 410..=417) => (13, 13, Key),             // GLNs
        (3, 420) => (1, 20, Text),                   // SHIP TO POST
        (3, 421) => (4, 12, Text),                   // SHIP TO POST with country: N3+X..9
        (3, 422 | 424 | 426) => (3, 3, Numeric),     // ISO country codes
        (3, 423 | 425) => (3, 15, Numeric),          // ISO country code lists
        (3, 427) => (1, 3, Text),                    // ORIGIN SUBDIVISION
        (3, 710..=716) => (1, 20, Text),             // NHRN
        (4, 3100..=3699) => (6, 6, Numeric),         // measures with decimal point
        (4, 3900..=3999) => (1, 18, Numeric),        // amounts
        (4, 8001) => (14, 14, Numeric),              // DIMENSIONS
        (4, 8002 | 8012) => (1, 20, Text),           // CMT No., VERSION
        (4, 8003) => (14, 30, KeyThenText(14)),      // GRAI: N14 (filler 0 + GRAI) + X..16
        (4, 8004 | 8010) => (1, 30, Text),           // GIAI, CPID
        (4, 8005) => (6, 6, Numeric),                // PRICE PER UNIT
        (4, 8006 | 8026) => (18, 18, Numeric),       // ITIP, ITIP CONTENT
        (4, 8007) => (1, 34, Text),                  // IBAN
        (4, 8008) => (8, 12, Numeric),               // PROD TIME
        (4, 8011) => (1, 12, Numeric),               // CPID SERIAL
        (4, 8013 | 8020) => (1, 25, Text),           // GMN, REF No.
        (4, 8017 | 8018) => (18, 18, Key),           // GSRN-PROVIDER, GSRN-RECIPIENT
        (4, 8019) => (1, 10, Numeric),               // SRIN
        _ => match predefined_length_of(ai, ai_len) {
            Some(total) => (total - ai_len, total - ai_len, Numeric),
            None => (1, 90, Text),
        },
    }
}

fn predefined_length_of(ai: u16, ai_len: usize) -> Option<usize> {
    let first_two = ai / 10u16.pow(ai_len as u32 - 2);
    predefined_length(&[b'0' + (first_two / 10) as u8, b'0' + (first_two % 10) as u8])
}

/// GS1 AI encodable character set 82 (GS1 General Specifications §7.11).
fn cset82(b: u8) -> bool {
    matches!(b, b'!' | b'"' | b'%'..=b'?' | b'A'..=b'Z' | b'_' | b'a'..=b'z')
}

/// The GS1 mod-10 check digit of `digits` (the key without its check digit): weights 3 and 1
/// alternating from the right, check = (10 - sum mod 10) mod 10. `None` if not all digits.
pub fn gs1_check_digit(digits: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        sum += u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

fn check_key(ai: u16, key: &[u8]) -> Result<(), BarcodeError> {
    let (body, check) = key.split_at(key.len() - 1);
    match gs1_check_digit(body) {
        Some(c) if c == check[0] - b'0' => Ok(()),
        _ => Err(BarcodeError::CheckDigit { ai }),
    }
}

fn check_value(ai: u16, ai_len: usize, value: &[u8]) -> Result<(), BarcodeError> {
    let (min, max, format) = spec(ai, ai_len);
    if value.len() < min || value.len() > max {
        return Err(BarcodeError::ValueLength { ai });
    }
    let numeric = |v: &[u8]| v.iter().all(u8::is_ascii_digit);
    let bad_char = BarcodeError::ValueCharacter { ai };
    match format {
        Format::Numeric if !numeric(value) => Err(bad_char),
        Format::Text if !value.iter().all(|b| cset82(*b)) => Err(bad_char),
        Format::Key if !numeric(value) => Err(bad_char),
        Format::Key => check_key(ai, value),
        Format::Date => {
            if !numeric(value) {
                return Err(bad_char);
            }
            let month = digits_value(&value[2..4]);
            let day = digits_value(&value[4..6]);
            // DD = 00 stands for the end of the month (GS1 date fields allow it).
            if (1..=12).contains(&month) && day <= 31 {
                Ok(())
            } else {
                Err(BarcodeError::Date { ai })
            }
        }
        Format::KeyThenText(n) | Format::KeyThenNumeric(n) => {
            let (key, tail) = value.split_at(n);
            let tail_ok = match format {
                Format::KeyThenNumeric(_) => numeric(tail),
                _ => tail.iter().all(|b| cset82(*b)),
            };
            if !numeric(key) || !tail_ok {
                return Err(bad_char);
            }
            check_key(ai, key)
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Custos carrier label

/// The most characters of a Custos control number.
pub const CONTROL_NO_MAX: usize = 24;
/// The prefix of a Custos control-number label.
pub const LABEL_PREFIX: &str = "CU";
/// The longest label text [`CarrierLabel::encode`] writes: `(8004)` + 30 characters.
pub const MAX_LABEL_LEN: usize = 36;
/// The most characters of a GIAI (GS1 General Specifications: AI (8004) X..30).
pub const GIAI_MAX: usize = 30;

/// MOD 37-2 check characters by value (ISO/IEC 7064).
const MOD37_CHECK: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*";

/// The MOD 37-2 value of a control-number character: 0-9, A-Z → 10-35, '-' → 36.
fn mod37_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'-' => Some(36),
        _ => None,
    }
}

/// ISO/IEC 7064 MOD 37-2 over characters already known to be in the alphabet.
fn mod37_2(chars: &[u8]) -> u8 {
    // Recursive form of the pure system: p = (p + v) * 2 mod 37 per character; the check
    // character's value c makes p + c ≡ 1 (mod 37).
    let p = chars
        .iter()
        .fold(0u32, |p, c| ((p + mod37_value(*c).unwrap_or(0)) * 2) % 37);
    MOD37_CHECK[((38 - p) % 37) as usize]
}

/// The MOD 37-2 check character of a control number (see the module docs).
pub fn check_character(control_no: &str) -> Result<char, BarcodeError> {
    Ok(char::from(ControlNumber::new(control_no)?.check))
}

/// A Custos control number: 1 to 24 characters of `A-Z`, `0-9`, `-`, with its check character.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlNumber {
    len: u8,
    bytes: [u8; CONTROL_NO_MAX],
    check: u8,
}

impl ControlNumber {
    /// A control number; upper case only (it is the form Custos stores).
    pub fn new(text: &str) -> Result<Self, BarcodeError> {
        Self::from_bytes(text.as_bytes())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, BarcodeError> {
        if bytes.is_empty() || bytes.len() > CONTROL_NO_MAX {
            return Err(BarcodeError::ControlNumberLength { len: bytes.len() });
        }
        if let Some(at) = bytes.iter().position(|b| mod37_value(*b).is_none()) {
            return Err(BarcodeError::ControlNumberCharacter { at });
        }
        let mut out = [0u8; CONTROL_NO_MAX];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            len: bytes.len() as u8,
            bytes: out,
            check: mod37_2(bytes),
        })
    }

    /// The control number.
    pub fn as_str(&self) -> &str {
        // Invariant: only A-Z, 0-9, '-' (checked in `from_bytes`).
        core::str::from_utf8(&self.bytes[..self.len as usize]).expect("ascii control number")
    }

    /// Its MOD 37-2 check character.
    pub fn check_character(&self) -> char {
        char::from(self.check)
    }
}

impl fmt::Display for ControlNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ControlNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlNumber({:?})", self.as_str())
    }
}

/// A Global Individual Asset Identifier as in AI (8004): 1 to 30 characters of GS1 set 82,
/// the GS1 Company Prefix followed by the individual asset reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Giai {
    len: u8,
    bytes: [u8; GIAI_MAX],
}

impl Giai {
    /// A GIAI from its element-string value.
    pub fn new(text: &str) -> Result<Self, BarcodeError> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > GIAI_MAX || !bytes.iter().all(|b| cset82(*b)) {
            return Err(BarcodeError::Giai);
        }
        let mut out = [0u8; GIAI_MAX];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            len: bytes.len() as u8,
            bytes: out,
        })
    }

    /// The GIAI text.
    pub fn as_str(&self) -> &str {
        // Invariant: GS1 set 82 only (checked in `new`), all ASCII.
        core::str::from_utf8(&self.bytes[..self.len as usize]).expect("ascii giai")
    }

    /// The GIAI of a GIAI-96 identity: company prefix digits then the asset reference in
    /// decimal. `None` for other schemes.
    pub fn from_identity(id: &Identity) -> Option<Self> {
        let Identity::Giai {
            company_prefix,
            asset_ref,
            ..
        } = id
        else {
            return None;
        };
        // A 6-12 digit prefix and a u64 (at most 20 digits) fit 30 characters of set 82.
        Self::new(&format!("{company_prefix}{asset_ref}")).ok()
    }

    /// The GIAI-96 EPC of this GIAI, given the length of its GS1 Company Prefix (6-12 digits;
    /// configuration, since the element string does not carry it) and the filter value (0 for
    /// Custos carriers). The asset reference must be numeric without leading zeros and fit the
    /// partition's bits, as GIAI-96 requires.
    pub fn to_giai96(&self, company_prefix_len: usize, filter: u8) -> Result<Epc, TdsError> {
        let text = self.as_str();
        if !(6..=12).contains(&company_prefix_len) || company_prefix_len > text.len() {
            return Err(TdsError::CompanyPrefixLength {
                digits: company_prefix_len,
            });
        }
        let (prefix, asset) = text.split_at(company_prefix_len);
        let asset_ref = tds::parse_integer(asset, 64, "individual asset reference")?;
        tds::giai96(filter, prefix, asset_ref)
    }
}

impl fmt::Display for Giai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Giai {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Giai({:?})", self.as_str())
    }
}

/// What a carrier's barcode label identifies it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CarrierLabel {
    /// `CU` + control number + MOD 37-2 check character.
    Control(ControlNumber),
    /// A GS1 (8004) GIAI, the same identifier as the carrier's GIAI-96 tag.
    Giai(Giai),
}

impl CarrierLabel {
    /// The label of a control number (upper case `A-Z`, `0-9`, `-`; 1 to 24 characters).
    pub fn new(control_no: &str) -> Result<Self, BarcodeError> {
        ControlNumber::new(control_no).map(CarrierLabel::Control)
    }

    /// A GIAI label.
    pub fn giai(giai: &str) -> Result<Self, BarcodeError> {
        Giai::new(giai).map(CarrierLabel::Giai)
    }

    /// Writes the label text into `out`: `CU2024-0017X`, or for a GIAI the bracketed form
    /// `(8004)06141415678` that barcode generators take for GS1-128. Returns the length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let (head, body, tail): (&[u8], &str, &[u8]) = match self {
            CarrierLabel::Control(c) => (
                LABEL_PREFIX.as_bytes(),
                c.as_str(),
                core::slice::from_ref(&c.check),
            ),
            CarrierLabel::Giai(g) => (b"(8004)", g.as_str(), &[]),
        };
        let needed = head.len() + body.len() + tail.len();
        if out.len() < needed {
            return Err(BufferTooSmall { needed });
        }
        out[..head.len()].copy_from_slice(head);
        out[head.len()..head.len() + body.len()].copy_from_slice(body.as_bytes());
        out[head.len() + body.len()..needed].copy_from_slice(tail);
        Ok(needed)
    }

    /// Parses a scanned line or typed text as a carrier label (see the module docs for the
    /// accepted forms). Surrounding whitespace is ignored; a `CU` label may be in lower case.
    pub fn parse(input: impl AsRef<[u8]>) -> Result<Self, BarcodeError> {
        let (aim, data) = split_aim(input.as_ref().trim_ascii());
        if aim.is_some_and(|a| a.implies_gs1()) {
            return giai_label(Gs1Elements::raw(data));
        }
        match data {
            [b'(', ..] => giai_label(Gs1Elements::bracketed(data)),
            [GS, ..] | [b'8', b'0', b'0', b'4', ..] => giai_label(Gs1Elements::raw(data)),
            [c, u, body @ ..] if c.eq_ignore_ascii_case(&b'C') && u.eq_ignore_ascii_case(&b'U') => {
                control_label(body)
            }
            _ => Err(BarcodeError::NotALabel),
        }
    }

    /// The control number, for a control-number label.
    pub fn control_number(&self) -> Option<&ControlNumber> {
        match self {
            CarrierLabel::Control(c) => Some(c),
            CarrierLabel::Giai(_) => None,
        }
    }
}

fn giai_label(elements: Gs1Elements<'_>) -> Result<CarrierLabel, BarcodeError> {
    let value = elements.find("8004")?.ok_or(BarcodeError::NoGiai)?;
    CarrierLabel::giai(value)
}

fn control_label(body: &[u8]) -> Result<CarrierLabel, BarcodeError> {
    let Some((&found, control)) = body.split_last() else {
        return Err(BarcodeError::ControlNumberLength { len: 0 });
    };
    if control.len() > CONTROL_NO_MAX {
        return Err(BarcodeError::ControlNumberLength { len: control.len() });
    }
    let mut upper = [0u8; CONTROL_NO_MAX];
    let upper = &mut upper[..control.len()];
    upper.copy_from_slice(control);
    upper.make_ascii_uppercase();
    let number = ControlNumber::from_bytes(upper)?;
    let found = found.to_ascii_uppercase();
    if found != number.check {
        return Err(BarcodeError::CheckCharacter {
            expected: char::from(number.check),
            found: char::from(found),
        });
    }
    Ok(CarrierLabel::Control(number))
}

/// The label text.
impl fmt::Display for CarrierLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarrierLabel::Control(c) => {
                write!(f, "{LABEL_PREFIX}{}{}", c.as_str(), c.check_character())
            }
            CarrierLabel::Giai(g) => write!(f, "(8004){}", g.as_str()),
        }
    }
}

impl core::str::FromStr for CarrierLabel {
    type Err = BarcodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::StreamDecoder;
    use proptest::prelude::*;

    fn line(text: &str) -> ScanLine {
        ScanLine::new(text.as_bytes()).unwrap()
    }

    fn frame(buf: &[u8]) -> (String, usize) {
        match decode_line(buf) {
            Decoded::Frame { frame, len } => (frame.as_str().to_owned(), len),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    fn invalid(buf: &[u8]) -> (BarcodeError, usize) {
        match decode_line(buf) {
            Decoded::Invalid { error, skip } => (error, skip),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn terminators() {
        assert_eq!(frame(b"ABC\r\nDEF"), ("ABC".into(), 5));
        assert_eq!(frame(b"ABC\r"), ("ABC".into(), 4));
        assert_eq!(frame(b"ABC\rDEF\r"), ("ABC".into(), 4));
        assert_eq!(frame(b"ABC\n"), ("ABC".into(), 4));
        assert_eq!(frame(b"ABC\n\r"), ("ABC".into(), 4));
        // The LF of a CR LF split across reads, and empty lines, are absorbed.
        assert_eq!(frame(b"\nABC\r"), ("ABC".into(), 5));
        assert_eq!(frame(b"\r\n\r\nA B\r\n"), ("A B".into(), 9));
        assert_eq!(decode_line(b"ABC"), Decoded::NeedMore);
        assert_eq!(decode_line(b"\r\n"), Decoded::NeedMore);
        assert_eq!(decode_line(b""), Decoded::NeedMore);
        // GS (FNC1) is content.
        assert_eq!(
            frame(b"]C110ABC\x1d21X\r"),
            ("]C110ABC\u{1d}21X".into(), 13)
        );
    }

    #[test]
    fn rejects_bad_bytes_and_long_lines() {
        assert_eq!(
            invalid(b"AB\x01C\r\nX"),
            (BarcodeError::NonPrintable { byte: 0x01, at: 2 }, 6)
        );
        assert_eq!(
            invalid(b"\nA\x7F\n"),
            (BarcodeError::NonPrintable { byte: 0x7F, at: 1 }, 4)
        );
        assert_eq!(
            invalid(b"\xE6\x9C\xBA\r"),
            (BarcodeError::NonPrintable { byte: 0xE6, at: 0 }, 4)
        );
        let mut max = vec![b'A'; MAX_LINE];
        max.push(b'\r');
        assert_eq!(frame(&max).1, MAX_LINE + 1);
        let mut long = vec![b'A'; MAX_LINE + 1];
        long.extend_from_slice(b"\r\nOK\r");
        assert_eq!(invalid(&long), (BarcodeError::LineTooLong, MAX_LINE + 1));
        assert_eq!(frame(&long[MAX_LINE + 1..]), ("OK".into(), 5));
        assert_eq!(invalid(&[b'A'; 300]), (BarcodeError::LineTooLong, 300));
        assert_eq!(decode_line(&[b'A'; MAX_LINE]), Decoded::NeedMore);
        assert_eq!(ScanLine::new(b""), Err(BarcodeError::EmptyLine));
        assert_eq!(
            "A\tB".parse::<ScanLine>(),
            Err(BarcodeError::NonPrintable { byte: 9, at: 1 })
        );
    }

    #[test]
    fn stream_split_crlf_is_one_terminator() {
        let mut d = StreamDecoder::new(decode_line, MAX_LINE + 2);
        d.push(b"CUS-11\r");
        assert_eq!(d.next_frame(), Some(Ok(line("CUS-11"))));
        assert_eq!(d.next_frame(), None);
        d.push(b"\nCU2024-0017X\r\n");
        assert_eq!(d.next_frame(), Some(Ok(line("CU2024-0017X"))));
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.dropped_bytes(), 0);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn encode_line_writes_terminator() {
        let mut out = [0u8; 8];
        assert_eq!(encode_line(&line("AB"), Terminator::CrLf, &mut out), Ok(4));
        assert_eq!(&out[..4], b"AB\r\n");
        assert_eq!(
            encode_line(&line("AB"), Terminator::Cr, &mut out[..2]),
            Err(BufferTooSmall { needed: 3 })
        );
    }

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

    /// Collects a whole element string as (ai, value) pairs.
    fn elements(it: Gs1Elements<'_>) -> Result<Vec<(String, String)>, BarcodeError> {
        it.map(|e| e.map(|e| (e.ai().to_owned(), e.value().to_owned())))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, v)| ((*a).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn gs1_raw_element_strings() {
        // GTIN 09506000134352 (GS1's example GTIN; check digit 2), expiry, lot, serial.
        let l = line("]C1010950600013435217250131\x1d10ABC123\x1d21XYZ");
        assert_eq!(
            elements(l.gs1().unwrap()),
            Ok(pairs(&[
                ("01", "09506000134352"),
                ("17", "250131"),
                ("10", "ABC123"),
                ("21", "XYZ")
            ]))
        );
        // SSCC 106141411234567897; GDTI 4012345000009 + serial; GRAI 0 + 0614141123452 + serial;
        // GIAI. A redundant GS after a fixed-length element and a leading GS are tolerated.
        let data: &[u8] = concat!(
            "\x1d00106141411234567897\x1d2534012345000009DOC7",
            "\x1d800300614141123452XYZ\x1d80040614141ABC"
        )
        .as_bytes();
        assert_eq!(
            elements(Gs1Elements::raw(data)),
            Ok(pairs(&[
                ("00", "106141411234567897"),
                ("253", "4012345000009DOC7"),
                ("8003", "00614141123452XYZ"),
                ("8004", "0614141ABC"),
            ]))
        );
        assert_eq!(Gs1Elements::raw(data).find("8004"), Ok(Some("0614141ABC")));
        assert_eq!(Gs1Elements::raw(data).find("10"), Ok(None));
        let e = Gs1Elements::raw(b"8004X").next().unwrap().unwrap();
        assert_eq!((e.ai_code(), e.ai(), e.value()), (8004, "8004", "X"));
        // A line without GS1 markers has no element string.
        assert!(line("CUS-11").gs1().is_none());
        assert!(line("\x1d0109506000134352").gs1().is_some());
    }

    #[test]
    fn gs1_bracketed_form() {
        assert_eq!(
            elements(Gs1Elements::bracketed(
                b"(01)09506000134352(10)AB(C)(17)250100"
            )),
            Ok(pairs(&[
                ("01", "09506000134352"),
                ("10", "AB(C)"),
                ("17", "250100")
            ]))
        );
        assert_eq!(
            elements(line("(8004)0614141ABC").gs1().unwrap()),
            Ok(pairs(&[("8004", "0614141ABC")]))
        );
        assert_eq!(
            elements(Gs1Elements::bracketed(b"8004X")),
            Err(BarcodeError::Bracket { at: 0 })
        );
        assert_eq!(
            elements(Gs1Elements::bracketed(b"(80A4)X")),
            Err(BarcodeError::Bracket { at: 0 })
        );
        // (800) is not an AI: AIs starting 80 have four digits.
        assert_eq!(
            elements(Gs1Elements::bracketed(b"(800)4X")),
            Err(BarcodeError::UnknownAi { at: 1 })
        );
    }

    #[test]
    fn gs1_value_rules() {
        use BarcodeError::*;
        let cases: [(&[u8], BarcodeError); 10] = [
            (b"0109506000134353", CheckDigit { ai: 1 }),
            (b"00106141411234567890", CheckDigit { ai: 0 }),
            (b"010950600013", ValueLength { ai: 1 }),
            (b"17251301", Date { ai: 17 }),
            (b"17250132", Date { ai: 17 }),
            (b"10ABCDEFGHIJKLMNOPQRSTU", ValueLength { ai: 10 }),
            (b"10AB CD", ValueCharacter { ai: 10 }),
            (b"2534012345000008DOC", CheckDigit { ai: 253 }),
            (b"5012", UnknownAi { at: 0 }),
            (b"8", UnknownAi { at: 0 }),
        ];
        for (data, err) in cases {
            assert_eq!(
                elements(Gs1Elements::raw(data)),
                Err(err),
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(
            elements(Gs1Elements::raw(b"10A\x1d80")),
            Err(TruncatedAi { at: 4 })
        );
        assert_eq!(
            elements(Gs1Elements::raw(b"10A\x1d\x1d")),
            Ok(pairs(&[("10", "A")]))
        );
        assert_eq!(
            elements(Gs1Elements::raw(b"10\x1d")),
            Err(ValueLength { ai: 10 })
        );
        // The iterator stops after an error.
        let mut it = Gs1Elements::raw(b"99\x1d10A");
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn gs1_check_digits() {
        assert_eq!(gs1_check_digit(b"0950600013435"), Some(2));
        assert_eq!(gs1_check_digit(b"10614141123456789"), Some(7));
        assert_eq!(gs1_check_digit(b"12A"), None);
    }

    /// Known answers for MOD 37-2.
    /// - "G123498654321" → 'H': the published ISBT 128 donation-number example.
    /// - "ZZZZ" → 'O', by hand: Z = 35; p = 35·2 = 70 ≡ 33; (33+35)·2 = 136 ≡ 25;
    ///   (25+35)·2 = 120 ≡ 9; (9+35)·2 = 88 ≡ 14; check = 38 − 14 = 24 → 'O'.
    /// - "S-1" → '1': S = 28 → p = 56 ≡ 19; '-' = 36 → (19+36)·2 = 110 ≡ 36;
    ///   '1' → (36+1)·2 = 74 ≡ 0; check = 38 mod 37 = 1 → '1'.
    /// - "2024-0017" → 'X': p runs 4, 8, 20, 11, 20, 3, 6, 14, 5; check = 38 − 5 = 33 → 'X'.
    /// - "A999922012346" → '*' (value 36; ISBT 128 example).
    #[test]
    fn mod37_2_known_answers() {
        assert_eq!(check_character("G123498654321"), Ok('H'));
        assert_eq!(check_character("ZZZZ"), Ok('O'));
        assert_eq!(check_character("S-1"), Ok('1'));
        assert_eq!(check_character("2024-0017"), Ok('X'));
        assert_eq!(check_character("A999922012346"), Ok('*'));
        assert_eq!(
            check_character(""),
            Err(BarcodeError::ControlNumberLength { len: 0 })
        );
        assert_eq!(
            check_character("ab"),
            Err(BarcodeError::ControlNumberCharacter { at: 0 })
        );
        assert_eq!(
            check_character("机字17"),
            Err(BarcodeError::ControlNumberCharacter { at: 0 })
        );
    }

    #[test]
    fn control_labels() {
        let label = CarrierLabel::new("2024-0017").unwrap();
        assert_eq!(label.to_string(), "CU2024-0017X");
        let mut out = [0u8; MAX_LABEL_LEN];
        let n = label.encode(&mut out).unwrap();
        assert_eq!(&out[..n], b"CU2024-0017X");
        assert_eq!(
            label.encode(&mut out[..11]),
            Err(BufferTooSmall { needed: 12 })
        );
        assert_eq!(label.control_number().unwrap().as_str(), "2024-0017");

        for text in [
            "CU2024-0017X",
            "cu2024-0017x",
            "  CU2024-0017X\t",
            "]C0CU2024-0017X",
        ] {
            assert_eq!(CarrierLabel::parse(text), Ok(label), "{text:?}");
        }
        assert_eq!(CarrierLabel::parse(line("]C0CU2024-0017X")), Ok(label));
        assert_eq!(
            CarrierLabel::parse("CU2024-0017Y"),
            Err(BarcodeError::CheckCharacter {
                expected: 'X',
                found: 'Y'
            })
        );
        assert_eq!(
            CarrierLabel::parse("CU"),
            Err(BarcodeError::ControlNumberLength { len: 0 })
        );
        assert_eq!(
            CarrierLabel::parse("CUX"),
            Err(BarcodeError::ControlNumberLength { len: 0 })
        );
        assert_eq!(
            CarrierLabel::parse("CUAB_C1"),
            Err(BarcodeError::ControlNumberCharacter { at: 2 })
        );
        assert_eq!(
            CarrierLabel::parse(format!("CU{}0", "A".repeat(25))),
            Err(BarcodeError::ControlNumberLength { len: 25 })
        );
        assert_eq!(
            CarrierLabel::new("2024_17"),
            Err(BarcodeError::ControlNumberCharacter { at: 4 })
        );
        assert_eq!(
            CarrierLabel::new("abc"),
            Err(BarcodeError::ControlNumberCharacter { at: 0 })
        );
        assert_eq!(CarrierLabel::parse("HELLO"), Err(BarcodeError::NotALabel));
        assert_eq!(CarrierLabel::parse(""), Err(BarcodeError::NotALabel));
    }

    #[test]
    fn giai_labels() {
        let label = CarrierLabel::giai("06141415678").unwrap();
        assert_eq!(label.to_string(), "(8004)06141415678");
        for text in [
            "(8004)06141415678",
            "]C1800406141415678",
            "]d2800406141415678",
            "\x1d800406141415678",
            "800406141415678",
            "]C1010950600013435221S1\x1d800406141415678",
        ] {
            assert_eq!(CarrierLabel::parse(text), Ok(label), "{text:?}");
        }
        assert_eq!(
            CarrierLabel::parse("(01)09506000134352"),
            Err(BarcodeError::NoGiai)
        );
        assert_eq!(
            CarrierLabel::parse("]C10109506000134353"),
            Err(BarcodeError::CheckDigit { ai: 1 })
        );
        assert_eq!(CarrierLabel::giai(""), Err(BarcodeError::Giai));
        assert_eq!(CarrierLabel::giai(&"1".repeat(31)), Err(BarcodeError::Giai));
        assert_eq!(CarrierLabel::giai("AB CD"), Err(BarcodeError::Giai));
        assert_eq!(
            CarrierLabel::parse("(8004)"),
            Err(BarcodeError::ValueLength { ai: 8004 })
        );
    }

    #[test]
    fn giai_label_maps_to_giai96_tag() {
        // epc-tds.txt: 3474257BF40000000000162E = urn:epc:tag:giai-96:3.0614141.5678.
        let tag = Epc::from_hex("3474257BF40000000000162E").unwrap();
        let giai = Giai::new("06141415678").unwrap();
        assert_eq!(giai.to_giai96(7, 3), Ok(tag));
        let id = tds::decode(&tag).unwrap().unwrap();
        assert_eq!(Giai::from_identity(&id), Some(giai));
        // 3400393243F1640000000001 = giai-96:0.061414112345.1 (12-digit prefix).
        let tag = Epc::from_hex("3400393243F1640000000001").unwrap();
        assert_eq!(
            Giai::new("0614141123451").unwrap().to_giai96(12, 0),
            Ok(tag)
        );
        let field = "individual asset reference";
        assert_eq!(
            Giai::new("0614141ABC").unwrap().to_giai96(7, 0),
            Err(TdsError::NotDecimal { field })
        );
        assert_eq!(
            Giai::new("061414105678").unwrap().to_giai96(7, 0),
            Err(TdsError::LeadingZero { field })
        );
        assert_eq!(
            Giai::new("0614141").unwrap().to_giai96(7, 0),
            Err(TdsError::NotDecimal { field })
        );
        assert_eq!(
            Giai::new("0614141").unwrap().to_giai96(13, 0),
            Err(TdsError::CompanyPrefixLength { digits: 13 })
        );
        let sgtin = tds::decode(&Epc::from_hex("3074257BF7194E4000001A85").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(Giai::from_identity(&sgtin), None);
    }

    /// Printable-ASCII-or-GS line content of 1..=MAX_LINE bytes.
    fn content() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![0x20u8..=0x7E, Just(GS)], 1..=MAX_LINE)
    }

    fn terminator() -> impl Strategy<Value = Terminator> {
        prop_oneof![
            Just(Terminator::Cr),
            Just(Terminator::Lf),
            Just(Terminator::CrLf)
        ]
    }

    /// A control number: 1..=24 characters of A-Z, 0-9, '-'.
    const CONTROL: &str = "[0-9A-Z-]{1,24}";
    /// The MOD 37-2 data alphabet, and the check alphabet.
    const DATA_CHARS: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-";

    proptest! {
        /// encode_line then decode_line gives back the line, with len = bytes written.
        #[test]
        fn line_round_trip(bytes in content(), term in terminator()) {
            let l = ScanLine::new(&bytes).unwrap();
            let mut out = [0u8; MAX_LINE + 2];
            let n = encode_line(&l, term, &mut out).unwrap();
            prop_assert_eq!(decode_line(&out[..n]), Decoded::Frame { frame: l, len: n });
        }

        /// Arbitrary bytes pushed at arbitrary split points never panic the stream decoder,
        /// and a valid line sent after the garbage and a terminator is still the last frame.
        #[test]
        fn stream_survives_garbage(garbage in proptest::collection::vec(any::<u8>(), 0..700),
                                   splits in proptest::collection::vec(1usize..64, 1..40),
                                   bytes in content(), term in terminator()) {
            let l = ScanLine::new(&bytes).unwrap();
            let mut input = garbage;
            input.extend_from_slice(b"\r\n");
            let mut out = [0u8; MAX_LINE + 2];
            let n = encode_line(&l, term, &mut out).unwrap();
            input.extend_from_slice(&out[..n]);

            let mut d = StreamDecoder::new(decode_line, 2 * MAX_LINE);
            let mut last = None;
            let mut rest = &input[..];
            let mut split = splits.iter().cycle();
            while !rest.is_empty() {
                let chunk = &rest[..(*split.next().unwrap()).min(rest.len())];
                let mut chunk = chunk;
                while !chunk.is_empty() {
                    let taken = d.push(chunk);
                    rest = &rest[taken..];
                    chunk = &chunk[taken..];
                    while let Some(r) = d.next_frame() {
                        if let Ok(f) = r { last = Some(f) }
                    }
                }
            }
            prop_assert_eq!(last, Some(l));
            // At most the LF of a CR LF split after its CR waits for the next line.
            prop_assert!(d.pending() <= 1);
        }

        /// Every control number's label parses back to the same label, as typed (also in
        /// lower case) and as a scanned line.
        #[test]
        fn label_round_trip(control in CONTROL, term in terminator()) {
            let label = CarrierLabel::new(&control).unwrap();
            let text = label.to_string();
            prop_assert_eq!(CarrierLabel::parse(&text), Ok(label));
            prop_assert_eq!(CarrierLabel::parse(text.to_ascii_lowercase()), Ok(label));
            let mut out = [0u8; MAX_LABEL_LEN + 2];
            let n = encode_line(&text.parse().unwrap(), term, &mut out).unwrap();
            let Decoded::Frame { frame, .. } = decode_line(&out[..n]) else {
                return Err(TestCaseError::fail("label line not decoded"));
            };
            prop_assert_eq!(CarrierLabel::parse(frame), Ok(label));
        }

        /// Every GIAI label (set 82 without '(' ) parses back to itself.
        #[test]
        fn giai_label_round_trip(giai in "[0-9A-Za-z!\"%&'*+,./:;<=>?_-]{1,30}") {
            let label = CarrierLabel::giai(&giai).unwrap();
            let mut out = [0u8; MAX_LABEL_LEN];
            let n = label.encode(&mut out).unwrap();
            prop_assert_eq!(CarrierLabel::parse(&out[..n]), Ok(label));
        }

        /// Changing any one character of the control number or the check character to
        /// another character of its alphabet is always detected.
        #[test]
        fn substitution_detected(control in CONTROL, pos in any::<prop::sample::Index>(),
                                 with in any::<prop::sample::Index>()) {
            let mut text = CarrierLabel::new(&control).unwrap().to_string().into_bytes();
            let i = 2 + pos.index(text.len() - 2);
            let alphabet: &[u8] = if i == text.len() - 1 { MOD37_CHECK } else { DATA_CHARS };
            let replacement = alphabet[with.index(alphabet.len())];
            prop_assume!(replacement != text[i]);
            text[i] = replacement;
            prop_assert!(CarrierLabel::parse(&text).is_err(), "{}", String::from_utf8_lossy(&text));
        }

        /// Swapping two adjacent different characters (check character included) is always
        /// detected.
        #[test]
        fn transposition_detected(control in CONTROL, pos in any::<prop::sample::Index>()) {
            let mut text = CarrierLabel::new(&control).unwrap().to_string().into_bytes();
            // Positions 2..=len-2: the pair (i, i+1) lies within control number + check.
            let i = 2 + pos.index(text.len() - 3);
            prop_assume!(text[i] != text[i + 1]);
            text.swap(i, i + 1);
            prop_assert!(CarrierLabel::parse(&text).is_err(), "{}", String::from_utf8_lossy(&text));
        }

        /// Arbitrary text never panics the label and element-string parsers.
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = CarrierLabel::parse(&bytes);
            let _ = Gs1Elements::raw(&bytes).count();
            let _ = Gs1Elements::bracketed(&bytes).count();
        }
    }
}
