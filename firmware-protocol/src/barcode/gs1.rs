//! GS1 element strings: Application Identifiers and their values.
//!
//! [`Gs1Elements`] iterates over Application Identifier (AI) + value pairs, either as a scanner
//! transmits them (FNC1 → GS separators after variable-length values, none after the
//! element strings whose length the GS1 General Specifications predefine by the AI's first two
//! digits: 00, 01, 02, 03, 04, 11-19, 20, 31-36, 41) or in the bracketed human-readable form
//! typed by hand, `(8004)0614141ABC`. AI lengths come from their first two digits; values are
//! checked for length, character set (GS1 AI encodable character set 82), numeric formats,
//! YYMMDD dates and GS1 mod-10 check digits of the keys (SSCC, GTIN, GDTI, GRAI, GLN, GSRN, …).
//! AIs without a specific rule are accepted as 1-90 characters of set 82.

use super::BarcodeError;
use super::line::GS;

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
pub(super) fn cset82(b: u8) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barcode::testing::line;

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
}
