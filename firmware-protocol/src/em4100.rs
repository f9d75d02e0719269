//! 125 kHz EM4100 serial card modules (RDM6300 family).
//!
//! The module sends, at 9600 8N1 and repeatedly while a card is in the field, 14 bytes:
//!
//! ```text
//! 0x02 | 10 ASCII hex: version byte + 4-byte card number | 2 ASCII hex: XOR of the 5 bytes | 0x03
//! ```
//!
//! Decoding accepts either case of hex digit; encoding writes upper case. A byte other than
//! 0x02 where a frame should start is garbage: everything up to the next 0x02 is dropped at
//! once. Inside a frame, a non-hex character, a missing 0x03 or a wrong checksum drops one
//! byte, so a frame that starts inside the rejected bytes is still found.
//!
//! The card is shown as 10 hex digits (`1A00B54E12`): the form printed on cards' packaging by
//! most vendors and the one the simulator's control socket takes (`{"op":"card","hex":...}`).

use core::fmt;
use core::str::FromStr;

use crate::codec::{BufferTooSmall, Decoded};

/// The frame length: STX, 10 data digits, 2 checksum digits, ETX.
pub const MAX_FRAME_LEN: usize = 14;

/// Start of text: the first byte of every frame.
pub const STX: u8 = 0x02;

/// End of text: the last byte of every frame.
pub const ETX: u8 = 0x03;

/// Why bytes are not an EM4100 frame, or text not a card id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Em4100Error {
    /// The first byte is not 0x02; the bytes up to the next 0x02 are dropped.
    #[error("expected start byte 0x02, found {found:#04x}")]
    NotStart {
        /// The byte found.
        found: u8,
    },
    /// A character where a hex digit belongs is not one.
    #[error("non-hex character in {field}")]
    NotHex {
        /// The field the character is in: "card data", "checksum" or "card id".
        field: &'static str,
    },
    /// Byte 13 is not the end byte 0x03.
    #[error("expected end byte 0x03, found {found:#04x}")]
    MissingEnd {
        /// The byte found.
        found: u8,
    },
    /// The checksum digits do not match the XOR of the data bytes.
    #[error("checksum mismatch: computed {computed:#04x}, received {received:#04x}")]
    BadChecksum {
        /// The XOR of the five data bytes.
        computed: u8,
        /// The checksum the frame carries.
        received: u8,
    },
    /// A card id text is not 10 hex digits long.
    #[error("card id must be 10 hex digits, got {len}")]
    IdLength {
        /// The length of the text.
        len: usize,
    },
}

/// An EM4100 card: the version (customer) byte and the 32-bit card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Card {
    /// The version / customer-id byte (first two hex digits).
    pub version: u8,
    /// The card number (last eight hex digits, most significant first).
    pub number: u32,
}

impl Card {
    /// The five data bytes: version, then the number most significant byte first.
    pub fn bytes(&self) -> [u8; 5] {
        let n = self.number.to_be_bytes();
        [self.version, n[0], n[1], n[2], n[3]]
    }

    /// The check byte the module sends: the XOR of the five data bytes.
    pub fn checksum(&self) -> u8 {
        self.bytes().iter().fold(0, |acc, b| acc ^ b)
    }

    /// The card id as 10 upper-case hex digits, without allocating.
    pub fn id_hex(&self) -> CardId {
        let mut digits = [0u8; 10];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.bytes()) {
            pair.copy_from_slice(&hex_pair(byte));
        }
        CardId(digits)
    }

    /// Parses 10 hex digits (either case) into a card.
    pub fn from_hex(text: &str) -> Result<Self, Em4100Error> {
        let digits = text.as_bytes();
        if digits.len() != 10 {
            return Err(Em4100Error::IdLength { len: digits.len() });
        }
        let mut bytes = [0u8; 5];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = parse_pair(pair[0], pair[1]).ok_or(Em4100Error::NotHex { field: "card id" })?;
        }
        Ok(Self::from_bytes(bytes))
    }

    fn from_bytes(b: [u8; 5]) -> Self {
        Self {
            version: b[0],
            number: u32::from_be_bytes([b[1], b[2], b[3], b[4]]),
        }
    }
}

/// `1A00B54E12`.
impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id_hex().as_str())
    }
}

impl FromStr for Card {
    type Err = Em4100Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Card {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id_hex().as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Card {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// A card id as 10 upper-case hex digits, held inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardId([u8; 10]);

impl CardId {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        // Invariant: the array only ever holds ASCII hex digits written by `hex_pair`.
        core::str::from_utf8(&self.0).expect("ascii hex digits")
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for CardId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for CardId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_pair(byte: u8) -> [u8; 2] {
    [
        HEX_UPPER[(byte >> 4) as usize],
        HEX_UPPER[(byte & 0x0F) as usize],
    ]
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn parse_pair(hi: u8, lo: u8) -> Option<u8> {
    Some((hex_digit(hi)? << 4) | hex_digit(lo)?)
}

/// Decodes a card frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded<Card, Em4100Error> {
    let Some(&first) = buf.first() else {
        return Decoded::NeedMore;
    };
    if first != STX {
        // Garbage: drop everything up to the next candidate start byte.
        let skip = buf.iter().position(|&b| b == STX).unwrap_or(buf.len());
        return Decoded::Invalid {
            error: Em4100Error::NotStart { found: first },
            skip,
        };
    }
    // Reject a non-hex character as soon as it arrives rather than after the whole frame.
    for (i, &c) in buf.iter().enumerate().take(13).skip(1) {
        if hex_digit(c).is_none() {
            let field = if i <= 10 { "card data" } else { "checksum" };
            return Decoded::Invalid {
                error: Em4100Error::NotHex { field },
                skip: 1,
            };
        }
    }
    let Some(frame) = buf.get(..MAX_FRAME_LEN) else {
        return Decoded::NeedMore;
    };
    if frame[13] != ETX {
        return Decoded::Invalid {
            error: Em4100Error::MissingEnd { found: frame[13] },
            skip: 1,
        };
    }
    let mut bytes = [0u8; 6];
    for (byte, pair) in bytes.iter_mut().zip(frame[1..13].chunks_exact(2)) {
        // Invariant: all twelve characters were checked to be hex digits above.
        *byte = parse_pair(pair[0], pair[1]).expect("checked hex digits");
    }
    let card = Card::from_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]]);
    let computed = card.checksum();
    if computed != bytes[5] {
        return Decoded::Invalid {
            error: Em4100Error::BadChecksum {
                computed,
                received: bytes[5],
            },
            skip: 1,
        };
    }
    Decoded::Frame {
        frame: card,
        len: MAX_FRAME_LEN,
    }
}

/// Encodes a card frame (upper-case hex) into `out`; returns its length, 14.
pub fn encode(card: &Card, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let frame = out.get_mut(..MAX_FRAME_LEN).ok_or(BufferTooSmall {
        needed: MAX_FRAME_LEN,
    })?;
    frame[0] = STX;
    frame[1..11].copy_from_slice(&card.id_hex().0);
    frame[11..13].copy_from_slice(&hex_pair(card.checksum()));
    frame[13] = ETX;
    Ok(MAX_FRAME_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::StreamDecoder;
    use proptest::prelude::*;

    /// `02 31 41 30 30 42 35 34 45 31 32 46 33 03 | card 1A00B54E12, checksum F3 (valid)`
    const VECTOR_1A00B54E12: [u8; 14] = [
        0x02, 0x31, 0x41, 0x30, 0x30, 0x42, 0x35, 0x34, 0x45, 0x31, 0x32, 0x46, 0x33, 0x03,
    ];

    /// A frame around 12 ASCII characters (data + checksum), as the vector file gives them.
    fn framed(ascii: &str) -> Vec<u8> {
        let mut v = vec![STX];
        v.extend_from_slice(ascii.as_bytes());
        v.push(ETX);
        v
    }

    /// Pushes `bytes` in chunks cut at `splits` and collects every outcome.
    fn stream(
        bytes: &[u8],
        splits: &[usize],
    ) -> (
        Vec<Result<Card, Em4100Error>>,
        StreamDecoder<Card, Em4100Error>,
    ) {
        let mut d = StreamDecoder::new(decode, MAX_FRAME_LEN);
        let mut cuts: Vec<usize> = splits.iter().map(|s| s % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut at = 0;
        for cut in cuts {
            while at < cut {
                at += d.push(&bytes[at..cut]);
                while let Some(r) = d.next_frame() {
                    out.push(r);
                }
            }
        }
        (out, d)
    }

    #[test]
    fn vector_line_decodes_and_reencodes() {
        let card = Card {
            version: 0x1A,
            number: 0x00B5_4E12,
        };
        assert_eq!(
            decode(&VECTOR_1A00B54E12),
            Decoded::Frame {
                frame: card,
                len: 14
            }
        );
        assert_eq!(card.checksum(), 0xF3);
        assert_eq!(card.id_hex(), "1A00B54E12");
        assert_eq!(card.to_string(), "1A00B54E12");
        let mut out = [0u8; 14];
        assert_eq!(encode(&card, &mut out), Ok(14));
        assert_eq!(out, VECTOR_1A00B54E12);
    }

    #[test]
    fn valid_ascii_payload_from_vector_file() {
        // "67003B51C6CB is valid (type 0x67, number 3887558)"
        let card = Card {
            version: 0x67,
            number: 3_887_558,
        };
        assert_eq!(
            decode(&framed("67003B51C6CB")),
            Decoded::Frame {
                frame: card,
                len: 14
            }
        );
        assert_eq!(card.id_hex(), "67003B51C6");
    }

    #[test]
    fn invalid_ascii_payload_is_rejected_and_next_frame_found() {
        // "68003B51C6CB is invalid": 68^00^3B^51^C6 = C4, not CB.
        let bad = framed("68003B51C6CB");
        assert_eq!(
            decode(&bad),
            Decoded::Invalid {
                error: Em4100Error::BadChecksum {
                    computed: 0xC4,
                    received: 0xCB
                },
                skip: 1
            }
        );
        let mut bytes = bad.clone();
        bytes.extend_from_slice(&VECTOR_1A00B54E12);
        let (out, d) = stream(&bytes, &[]);
        assert_eq!(
            out.first(),
            Some(&Err(Em4100Error::BadChecksum {
                computed: 0xC4,
                received: 0xCB
            }))
        );
        assert_eq!(
            out.last(),
            Some(&Ok(Card {
                version: 0x1A,
                number: 0x00B5_4E12
            }))
        );
        assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 1);
        assert_eq!(d.dropped_bytes(), 14);
    }

    #[test]
    fn lowercase_hex_is_accepted_and_encoder_writes_upper_case() {
        let lower = framed("1a00b54e12f3");
        let Decoded::Frame {
            frame: card,
            len: 14,
        } = decode(&lower)
        else {
            panic!("lowercase frame rejected")
        };
        let mut out = [0u8; 14];
        encode(&card, &mut out).unwrap();
        assert_eq!(out, VECTOR_1A00B54E12);
    }

    #[test]
    fn garbage_before_start_is_skipped_to_next_start_byte() {
        assert_eq!(
            decode(&[0x41, 0x0D, 0x0A, 0x02, 0x31]),
            Decoded::Invalid {
                error: Em4100Error::NotStart { found: 0x41 },
                skip: 3
            }
        );
        assert_eq!(
            decode(&[0x41, 0x42]),
            Decoded::Invalid {
                error: Em4100Error::NotStart { found: 0x41 },
                skip: 2
            }
        );
    }

    #[test]
    fn non_hex_and_missing_end_skip_one_byte() {
        // Rejected as soon as the bad character is there, without waiting for 14 bytes.
        assert_eq!(
            decode(&[0x02, 0x31, 0x47]),
            Decoded::Invalid {
                error: Em4100Error::NotHex { field: "card data" },
                skip: 1
            }
        );
        let mut frame = VECTOR_1A00B54E12;
        frame[12] = b'g';
        assert_eq!(
            decode(&frame),
            Decoded::Invalid {
                error: Em4100Error::NotHex { field: "checksum" },
                skip: 1
            }
        );
        let mut frame = VECTOR_1A00B54E12;
        frame[13] = 0x0D;
        assert_eq!(
            decode(&frame),
            Decoded::Invalid {
                error: Em4100Error::MissingEnd { found: 0x0D },
                skip: 1
            }
        );
    }

    #[test]
    fn partial_frames_need_more() {
        assert_eq!(decode(&[]), Decoded::NeedMore);
        for n in 1..14 {
            assert_eq!(
                decode(&VECTOR_1A00B54E12[..n]),
                Decoded::NeedMore,
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn encoder_refuses_a_short_buffer() {
        let mut out = [0u8; 13];
        assert_eq!(
            encode(
                &Card {
                    version: 0,
                    number: 0
                },
                &mut out
            ),
            Err(BufferTooSmall { needed: 14 })
        );
    }

    #[test]
    fn card_id_text_parsing() {
        assert_eq!(
            Card::from_hex("1A00B54E12"),
            Ok(Card {
                version: 0x1A,
                number: 0x00B5_4E12
            })
        );
        assert_eq!(
            "1a00b54e12".parse::<Card>(),
            Ok(Card {
                version: 0x1A,
                number: 0x00B5_4E12
            })
        );
        assert_eq!(
            Card::from_hex("1A00B54E1"),
            Err(Em4100Error::IdLength { len: 9 })
        );
        assert_eq!(
            Card::from_hex("1A00B54E1Z"),
            Err(Em4100Error::NotHex { field: "card id" })
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_hex_id() {
        let card = Card {
            version: 0x1A,
            number: 0x00B5_4E12,
        };
        assert_eq!(serde_json::to_string(&card).unwrap(), "\"1A00B54E12\"");
        assert_eq!(
            serde_json::from_str::<Card>("\"1a00b54e12\"").unwrap(),
            card
        );
    }

    fn any_card() -> impl Strategy<Value = Card> {
        (any::<u8>(), any::<u32>()).prop_map(|(version, number)| Card { version, number })
    }

    proptest! {
        /// Every card survives encode → decode, using all 14 bytes, and its id text survives
        /// id_hex → from_hex.
        #[test]
        fn encode_decode_round_trip(card in any_card()) {
            let mut out = [0u8; 14];
            prop_assert_eq!(encode(&card, &mut out), Ok(14));
            prop_assert_eq!(decode(&out), Decoded::Frame { frame: card, len: 14 });
            prop_assert_eq!(Card::from_hex(card.id_hex().as_str()), Ok(card));
        }

        /// Arbitrary bytes cut at arbitrary points never panic the stream decoder, and every
        /// byte is accounted for: decoded frames, dropped bytes or still pending.
        #[test]
        fn arbitrary_bytes_are_accounted_for(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let (out, d) = stream(&bytes, &splits);
            let frames = out.iter().filter(|r| r.is_ok()).count() as u64;
            prop_assert_eq!(frames * 14 + d.dropped_bytes() + d.pending() as u64, bytes.len() as u64);
        }

        /// A valid frame after random garbage is still found, wherever the stream is cut.
        #[test]
        fn frame_after_garbage_is_found(
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
            card in any_card(),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut bytes = garbage;
            let mut frame = [0u8; 14];
            encode(&card, &mut frame).unwrap();
            bytes.extend_from_slice(&frame);
            let (out, _) = stream(&bytes, &splits);
            prop_assert_eq!(out.last(), Some(&Ok(card)));
        }
    }
}
