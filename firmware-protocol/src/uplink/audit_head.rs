//! Signed heads of the server's audit trail, as the server hands them to devices (witnesses)
//! and appends them to its anchor file, and the witness rule: a head never goes backwards.
//!
//! # Why devices hold heads
//!
//! The server keeps its audit trail and the heads it signs in one SQLite file. Whoever can
//! write that file with the server stopped (a root on the server host, a stolen backup restored
//! over the original) can drop the append-only triggers and cut or rewrite the tail together
//! with its heads, and the trail still checks out against itself. A head kept *elsewhere*
//! proves that the trail once reached entry `seq` with hash `hash`: the server answers every
//! batch and heartbeat with its latest signed head (header [`AUDIT_HEAD_HEADER`]) and every
//! daemon keeps the newest one it has seen, as transparency logs gossip their tree heads. The
//! attacker must then also reach every device's disk to hide a truncation.
//!
//! # Frozen layouts (version 1)
//!
//! The signature is the server's Ed25519 signature over [`signed_message`]:
//!
//! ```text
//! "custos-audit-head-v1" (20 bytes) || seq (8 bytes, big-endian) || hash (32 bytes)
//! ```
//!
//! A head as text (the header value, one line of the anchor file or a witness file) is three
//! fields separated by one space: `SEQ HASH SIGNATURE`, the seq in decimal, the hash (64) and
//! the signature (128) in lower-case hex ([`AuditHead::to_line`], [`AuditHead::parse_line`]).

/// The HTTP response header of a batch or heartbeat answer carrying the server's latest signed
/// audit head as [`AuditHead::to_line`] text. The head carries its own signature, so the header
/// needs no other protection; it is absent while no head is signed yet.
pub const AUDIT_HEAD_HEADER: &str = "custos-audit-head";

const HEAD_TAG: &[u8] = b"custos-audit-head-v1";

/// The length of an audit entry hash (SHA-256) in bytes.
pub const AUDIT_HASH_LEN: usize = 32;

/// One signed head of the server's audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuditHead {
    /// The entry signed (its id; the trail numbers entries densely from 1).
    pub seq: u64,
    /// That entry's chain hash.
    pub hash: [u8; AUDIT_HASH_LEN],
    /// The server's Ed25519 signature over [`signed_message`].
    pub signature: [u8; 64],
}

/// Why a head's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLineError {
    /// Not exactly three space-separated fields.
    Fields,
    /// The named field is malformed (`seq` not a decimal above 0, or bad hex or length).
    Field(&'static str),
}

impl core::fmt::Display for HeadLineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HeadLineError::Fields => f.write_str("expected `SEQ HASH SIGNATURE`"),
            HeadLineError::Field(field) => write!(f, "malformed {field}"),
        }
    }
}

impl std::error::Error for HeadLineError {}

/// The bytes the server signs for the head of entry `seq` with hash `hash`.
pub fn signed_message(seq: u64, hash: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEAD_TAG.len() + 8 + hash.len());
    msg.extend_from_slice(HEAD_TAG);
    msg.extend_from_slice(&seq.to_be_bytes());
    msg.extend_from_slice(hash);
    msg
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

fn unhex<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], HeadLineError> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return Err(HeadLineError::Field(field));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(HeadLineError::Field(field)),
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Ok(out)
}

impl AuditHead {
    /// The head as one line of text (no newline): `SEQ HASH SIGNATURE`.
    pub fn to_line(&self) -> String {
        let mut line = self.seq.to_string();
        line.reserve(2 + 2 * (AUDIT_HASH_LEN + 64));
        line.push(' ');
        hex_into(&self.hash, &mut line);
        line.push(' ');
        hex_into(&self.signature, &mut line);
        line
    }

    /// Parses [`AuditHead::to_line`]'s text (surrounding white space ignored). The signature
    /// is not checked here: verify [`signed_message`] with the server's key.
    pub fn parse_line(line: &str) -> Result<AuditHead, HeadLineError> {
        let mut fields = line.trim().split(' ');
        let (Some(seq), Some(hash), Some(signature), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(HeadLineError::Fields);
        };
        let seq = match seq.parse::<u64>() {
            Ok(n) if n > 0 && seq.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(HeadLineError::Field("seq")),
        };
        Ok(AuditHead {
            seq,
            hash: unhex(hash, "hash")?,
            signature: unhex(signature, "signature")?,
        })
    }

    /// What this head's signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        signed_message(self.seq, &self.hash)
    }
}

/// What a witness makes of a head offered by the server ([`witness`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Witnessed {
    /// Newer than the head held (or none is held): keep it.
    Newer,
    /// The head already held.
    Same,
    /// The server's trail went back or split: it offers a head older than one it signed
    /// before, or a different hash for the same entry. Keep the held head; report a fault.
    Fork {
        /// The entry of the held head.
        held_seq: u64,
    },
}

/// The witness rule: a trail only grows. `offered` must already carry a valid signature.
///
/// A head with a lower seq than the held one is a fork even when it is genuinely signed: the
/// server's own key signs whatever trail its database holds, so a database cut back below a
/// head a device has seen yields correctly signed, older heads.
pub fn witness(held: Option<&AuditHead>, offered: &AuditHead) -> Witnessed {
    match held {
        None => Witnessed::Newer,
        Some(h) if offered.seq > h.seq => Witnessed::Newer,
        Some(h) if offered.seq == h.seq && offered.hash == h.hash => Witnessed::Same,
        Some(h) => Witnessed::Fork { held_seq: h.seq },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64, fill: u8) -> AuditHead {
        AuditHead {
            seq,
            hash: [fill; 32],
            signature: [0xAB; 64],
        }
    }

    #[test]
    fn the_signed_message_layout_is_frozen() {
        let msg = signed_message(0x0102, &[7u8; 32]);
        assert_eq!(&msg[..20], b"custos-audit-head-v1");
        assert_eq!(&msg[20..28], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&msg[28..], &[7u8; 32]);
    }

    /// Property: `parse_line(to_line(h)) == h`, and the text is three fixed fields.
    #[test]
    fn lines_round_trip() {
        let h = AuditHead {
            seq: 42,
            hash: core::array::from_fn(|i| u8::try_from(i).unwrap()),
            signature: core::array::from_fn(|i| u8::try_from(255 - i).unwrap()),
        };
        let line = h.to_line();
        assert!(line.starts_with("42 000102"), "{line}");
        assert_eq!(line.len(), 2 + 1 + 64 + 1 + 128);
        assert_eq!(AuditHead::parse_line(&line), Ok(h));
        assert_eq!(AuditHead::parse_line(&format!("{line}\n")), Ok(h));
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let good = head(3, 1).to_line();
        let (seq, rest) = good.split_once(' ').unwrap();
        assert_eq!(seq, "3");
        for (line, err) in [
            ("", HeadLineError::Fields),
            ("3 aa", HeadLineError::Fields),
            (&format!("{good} x")[..], HeadLineError::Fields),
            (&format!("0 {rest}")[..], HeadLineError::Field("seq")),
            (&format!("+3 {rest}")[..], HeadLineError::Field("seq")),
            (&format!("x {rest}")[..], HeadLineError::Field("seq")),
            (
                &good.replacen(" 01", " 0G", 1)[..],
                HeadLineError::Field("hash"),
            ),
            (&good[..good.len() - 2], HeadLineError::Field("signature")),
            (
                &head(3, 0xab).to_line().to_uppercase()[..],
                HeadLineError::Field("hash"),
            ),
        ] {
            assert_eq!(AuditHead::parse_line(line), Err(err), "{line:?}");
        }
    }

    #[test]
    fn a_witness_only_moves_forward() {
        let held = head(5, 1);
        assert_eq!(witness(None, &held), Witnessed::Newer);
        assert_eq!(witness(Some(&held), &head(6, 9)), Witnessed::Newer);
        assert_eq!(witness(Some(&held), &head(5, 1)), Witnessed::Same);
        assert_eq!(
            witness(Some(&held), &head(5, 2)),
            Witnessed::Fork { held_seq: 5 }
        );
        assert_eq!(
            witness(Some(&held), &head(4, 1)),
            Witnessed::Fork { held_seq: 5 }
        );
    }
}
