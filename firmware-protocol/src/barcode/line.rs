//! Scanner lines: framing (terminators) and content rules.
//!
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

use core::fmt;

use super::BarcodeError;
use super::aim::{AimId, split_aim};
use super::gs1::Gs1Elements;
use crate::codec::{BufferTooSmall, Decoded};

/// The longest line content accepted, in bytes (without terminator).
pub const MAX_LINE: usize = 256;
/// ASCII Group Separator: FNC1 as transmitted inside GS1 data.
pub const GS: u8 = 0x1D;
const CR: u8 = 0x0D;
const LF: u8 = 0x0A;

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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::barcode::testing::{line, terminator};
    use crate::codec::StreamDecoder;

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

    /// Printable-ASCII-or-GS line content of 1..=MAX_LINE bytes.
    fn content() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![0x20u8..=0x7E, Just(GS)], 1..=MAX_LINE)
    }

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
    }
}
