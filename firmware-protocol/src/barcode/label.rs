//! The Custos carrier label: a control number with its check character, or a GS1 GIAI.
//!
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

use super::BarcodeError;
use super::aim::split_aim;
use super::gs1::{Gs1Elements, cset82};
use super::line::GS;
use crate::codec::BufferTooSmall;
use crate::epc::Epc;
use crate::epc::tds::{self, Identity, TdsError};

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
    use proptest::prelude::*;

    use super::*;
    use crate::barcode::testing::{line, terminator};
    use crate::barcode::{decode_line, encode_line};
    use crate::codec::Decoded;

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

    /// A control number: 1..=24 characters of A-Z, 0-9, '-'.
    const CONTROL: &str = "[0-9A-Z-]{1,24}";
    /// The MOD 37-2 data alphabet, and the check alphabet.
    const DATA_CHARS: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-";

    proptest! {
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
