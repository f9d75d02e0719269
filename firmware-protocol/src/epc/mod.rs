//! Electronic Product Codes: the raw bytes a UHF tag reports, its Gen2 PC word and tag CRC, and
//! the GS1 Tag Data Standard (TDS) 96-bit schemes that give those bytes a meaning.
//!
//! [`Epc`] is a fixed-capacity, `Copy` value, so decoders can return tag reports without
//! allocating. Tags whose header is not a known TDS scheme (factory EPCs such as `E200...`)
//! stay raw hex; they are never rejected.

pub mod gen2;
pub mod tds;

use core::fmt;

/// The longest EPC a Gen2 PC word can announce: 31 words of 16 bits.
pub const MAX_EPC_BYTES: usize = 62;

/// The EPC bank contents of a tag (without PC and CRC), up to [`MAX_EPC_BYTES`] bytes.
///
/// Equality and hashing look at the EPC's own bytes only, not the unused rest of the buffer:
/// a 96-bit EPC hashes 12 bytes, not 63 (the daemon hashes every read's EPC).
#[derive(Clone, Copy, Eq)]
pub struct Epc {
    len: u8,
    bytes: [u8; MAX_EPC_BYTES],
}

impl PartialEq for Epc {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl core::hash::Hash for Epc {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

/// An EPC could not be built from the given bytes or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EpcError {
    /// More than [`MAX_EPC_BYTES`] bytes.
    #[error("epc longer than 62 bytes")]
    TooLong,
    /// The hex text has an odd number of digits or a non-hex character.
    #[error("epc hex is malformed")]
    BadHex,
}

impl Epc {
    /// An EPC holding a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> Result<Self, EpcError> {
        if bytes.len() > MAX_EPC_BYTES {
            return Err(EpcError::TooLong);
        }
        let mut out = [0u8; MAX_EPC_BYTES];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Self {
            len: bytes.len() as u8,
            bytes: out,
        })
    }

    /// Parses hex digits (either case, no separators) into an EPC.
    pub fn from_hex(hex: &str) -> Result<Self, EpcError> {
        let digits = hex.as_bytes();
        if digits.len() % 2 != 0 {
            return Err(EpcError::BadHex);
        }
        if digits.len() / 2 > MAX_EPC_BYTES {
            return Err(EpcError::TooLong);
        }
        let mut out = [0u8; MAX_EPC_BYTES];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Ok(Self {
            len: (digits.len() / 2) as u8,
            bytes: out,
        })
    }

    /// The EPC bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The number of EPC bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the EPC has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn hex_val(c: u8) -> Result<u8, EpcError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(EpcError::BadHex),
    }
}

/// Upper-case hex, the form used in configuration, the API and logs.
///
/// Written in one `write_str` from a stack buffer: the server formats every tag it stores
/// (keys, JSON bodies), and a `{:02X}` per byte went through the formatting machinery 12 times
/// per EPC.
impl fmt::Display for Epc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut text = [0u8; 2 * MAX_EPC_BYTES];
        for (pair, b) in text.chunks_exact_mut(2).zip(self.as_bytes()) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0F)];
        }
        // Only ASCII hex digits were written.
        let text = core::str::from_utf8(&text[..2 * self.len()]).map_err(|_| fmt::Error)?;
        f.write_str(text)
    }
}

impl fmt::Debug for Epc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epc({self})")
    }
}

impl core::str::FromStr for Epc {
    type Err = EpcError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Epc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Epc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The Gen2 Protocol Control word that precedes the EPC in the tag's EPC bank.
///
/// Bits 15..11 give the EPC length in 16-bit words; bit 10 the user-memory indicator; bit 9
/// the XPC indicator; bit 8 the toggle (0 = GS1 EPC, 1 = ISO AFI in bits 7..0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcWord(pub u16);

impl PcWord {
    /// The PC word announcing an EPC of `epc_bytes` bytes (rounded up to whole words), with
    /// every other bit clear.
    pub fn for_epc_len(epc_bytes: usize) -> Self {
        let words = epc_bytes.div_ceil(2).min(31) as u16;
        Self(words << 11)
    }

    /// The EPC length in bytes that this PC word announces: `((pc >> 11) & 0x1F) * 2`.
    pub fn epc_len_bytes(self) -> usize {
        (((self.0 >> 11) & 0x1F) as usize) * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let e = Epc::from_hex("3474257bf40000000000162E").unwrap();
        assert_eq!(e.len(), 12);
        assert_eq!(e.to_string(), "3474257BF40000000000162E");
        assert_eq!(Epc::from_hex("123"), Err(EpcError::BadHex));
        assert_eq!(Epc::from_hex("zz"), Err(EpcError::BadHex));
        assert_eq!(Epc::new(&[0; 63]), Err(EpcError::TooLong));
    }

    /// Display is two upper-case digits per byte, for every byte value and for the empty
    /// and the longest EPC.
    #[test]
    fn display_is_two_upper_case_digits_per_byte() {
        let every: Vec<u8> = (0..=255u8).collect();
        for bytes in every.chunks(MAX_EPC_BYTES).chain([&[][..]]) {
            let e = Epc::new(bytes).unwrap();
            let expected: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
            assert_eq!(e.to_string(), expected);
            assert_eq!(Epc::from_hex(&expected).unwrap(), e);
        }
    }

    #[test]
    fn equality_and_hash_follow_the_epc_bytes_and_length() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let a = Epc::new(&[0x30, 0x00]).unwrap();
        let b = Epc::from_hex("3000").unwrap();
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(a), hasher.hash_one(b));
        // A trailing zero byte is part of the EPC: a different, longer code.
        let shorter = Epc::new(&[0x30]).unwrap();
        assert_ne!(a, shorter);
        assert_ne!(hasher.hash_one(a), hasher.hash_one(shorter));
        assert_ne!(a, Epc::new(&[0x30, 0x01]).unwrap());
    }

    #[test]
    fn pc_word_length() {
        assert_eq!(PcWord(0x3000).epc_len_bytes(), 12);
        assert_eq!(PcWord::for_epc_len(12), PcWord(0x3000));
        assert_eq!(PcWord(0xF800).epc_len_bytes(), 62);
    }
}
