//! The Gen2 tag CRC: the 16-bit check a UHF tag sends after its PC word and EPC.
//!
//! EPCglobal UHF Class 1 Gen 2 (ISO/IEC 18000-63) protects the tag's reply to ACK — the PC
//! word, the EPC and (when present) XPC words — with a CRC-16 whose parameters are catalogued
//! as CRC-16/GENIBUS: polynomial 0x1021, initial value 0xFFFF, no reflection, result inverted
//! (xorout 0xFFFF); check value 0xD64E for the ASCII bytes "123456789". The CRC is sent most
//! significant byte first, and many readers pass it on in their tag reports, so a host can
//! tell a clean read from a corrupted one.
//!
//! [`tag_crc`] computes the CRC over PC + EPC; [`verify`] checks a `PC | EPC | CRC` block as a
//! reader reports it and returns its parts. Neither allocates.

use crate::codec::BufferTooSmall;
use crate::epc::{Epc, EpcError, MAX_EPC_BYTES, PcWord};

/// The Gen2 tag CRC: CRC-16/GENIBUS (poly 0x1021, init 0xFFFF, xorout 0xFFFF, check 0xD64E).
pub const TAG_CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_GENIBUS);

/// The CRC-16/GENIBUS of arbitrary bytes (for a tag: PC word then EPC, big-endian).
pub fn crc16(bytes: &[u8]) -> u16 {
    TAG_CRC.checksum(bytes)
}

/// The tag CRC a Gen2 tag sends for this PC word and EPC: CRC-16/GENIBUS over PC (big-endian)
/// followed by the EPC bytes.
pub fn tag_crc(pc: PcWord, epc: &Epc) -> u16 {
    let mut digest = TAG_CRC.digest();
    digest.update(&pc.0.to_be_bytes());
    digest.update(epc.as_bytes());
    digest.finalize()
}

/// A `PC | EPC | CRC` block whose CRC was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagBlock {
    /// The Protocol Control word.
    pub pc: PcWord,
    /// The EPC, of the length the PC word announces.
    pub epc: Epc,
    /// The tag CRC as received (it matched).
    pub crc: u16,
}

/// A `PC | EPC | CRC` block was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Gen2Error {
    /// Fewer than 4 bytes: there is no room for a PC word and a CRC.
    #[error("tag block of {len} bytes is too short")]
    TooShort {
        /// The block length.
        len: usize,
    },
    /// The PC word announces a different EPC length than the block carries.
    #[error("pc word announces {announced} epc bytes, block has {actual}")]
    LengthMismatch {
        /// EPC bytes announced by PC bits 15..11.
        announced: usize,
        /// EPC bytes between the PC word and the CRC.
        actual: usize,
    },
    /// The EPC part is longer than an [`Epc`] can hold.
    #[error("epc longer than 62 bytes")]
    EpcTooLong,
    /// The CRC does not match PC + EPC.
    #[error("tag crc {received:#06x} does not match computed {computed:#06x}")]
    CrcMismatch {
        /// CRC computed over PC + EPC.
        computed: u16,
        /// CRC found in the block.
        received: u16,
    },
}

impl From<EpcError> for Gen2Error {
    fn from(_: EpcError) -> Self {
        Gen2Error::EpcTooLong
    }
}

/// Whether the last two bytes of `block` are the CRC-16/GENIBUS (big-endian) of the bytes
/// before them. Does not look at the PC length; see [`verify`] for the strict check.
pub fn crc_matches(block: &[u8]) -> bool {
    match block.len().checked_sub(2) {
        Some(n) if n > 0 => crc16(&block[..n]) == u16::from_be_bytes([block[n], block[n + 1]]),
        _ => false,
    }
}

/// Checks a `PC(2) | EPC(n) | CRC(2)` block as readers report it and returns its parts.
///
/// The EPC length must be exactly the one the PC word announces (bits 15..11, in words), and
/// the CRC must match. Blocks that carry XPC words between PC and EPC are not accepted.
pub fn verify(block: &[u8]) -> Result<TagBlock, Gen2Error> {
    if block.len() < 4 {
        return Err(Gen2Error::TooShort { len: block.len() });
    }
    let pc = PcWord(u16::from_be_bytes([block[0], block[1]]));
    let epc_bytes = &block[2..block.len() - 2];
    if epc_bytes.len() != pc.epc_len_bytes() {
        return Err(Gen2Error::LengthMismatch {
            announced: pc.epc_len_bytes(),
            actual: epc_bytes.len(),
        });
    }
    if epc_bytes.len() > MAX_EPC_BYTES {
        return Err(Gen2Error::EpcTooLong);
    }
    let n = block.len() - 2;
    let received = u16::from_be_bytes([block[n], block[n + 1]]);
    let computed = crc16(&block[..n]);
    if computed != received {
        return Err(Gen2Error::CrcMismatch { computed, received });
    }
    Ok(TagBlock {
        pc,
        epc: Epc::new(epc_bytes)?,
        crc: received,
    })
}

/// Writes `PC | EPC | CRC` for this PC word and EPC into `out`; returns the length written.
///
/// The PC word is written as given (it is not checked against the EPC length), so a simulator
/// can also produce inconsistent blocks on purpose.
pub fn encode_block(pc: PcWord, epc: &Epc, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let needed = 2 + epc.len() + 2;
    if out.len() < needed {
        return Err(BufferTooSmall { needed });
    }
    out[..2].copy_from_slice(&pc.0.to_be_bytes());
    out[2..2 + epc.len()].copy_from_slice(epc.as_bytes());
    out[2 + epc.len()..needed].copy_from_slice(&tag_crc(pc, epc).to_be_bytes());
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// uhf-a0.txt, REAL line: buffer record with PC 3000, EPC E2003098881900722140369E,
    /// tag CRC 4DD4 (CRC-16/GENIBUS over PC+EPC).
    const REAL_PC: u16 = 0x3000;
    const REAL_EPC: &str = "E2003098881900722140369E";
    const REAL_CRC: u16 = 0x4DD4;
    const REAL_BLOCK: [u8; 16] = [
        0x30, 0x00, 0xE2, 0x00, 0x30, 0x98, 0x88, 0x19, 0x00, 0x72, 0x21, 0x40, 0x36, 0x9E, 0x4D,
        0xD4,
    ];

    #[test]
    fn catalogue_check_value() {
        assert_eq!(crc16(b"123456789"), 0xD64E);
    }

    #[test]
    fn real_reader_tag_crc() {
        let epc = Epc::from_hex(REAL_EPC).unwrap();
        assert_eq!(tag_crc(PcWord(REAL_PC), &epc), REAL_CRC);
        let block = verify(&REAL_BLOCK).unwrap();
        assert_eq!(
            block,
            TagBlock {
                pc: PcWord(REAL_PC),
                epc,
                crc: REAL_CRC
            }
        );
        assert!(crc_matches(&REAL_BLOCK));
        let mut out = [0u8; 16];
        assert_eq!(encode_block(PcWord(REAL_PC), &epc, &mut out), Ok(16));
        assert_eq!(out, REAL_BLOCK);
    }

    #[test]
    fn rejects_bad_blocks() {
        let mut bad = REAL_BLOCK;
        bad[15] ^= 0x01;
        assert_eq!(
            verify(&bad),
            Err(Gen2Error::CrcMismatch {
                computed: REAL_CRC,
                received: REAL_CRC ^ 1
            })
        );
        assert!(!crc_matches(&bad));
        assert_eq!(
            verify(&REAL_BLOCK[..3]),
            Err(Gen2Error::TooShort { len: 3 })
        );
        // PC 0x3800 announces 14 EPC bytes; the block has 12.
        let mut wrong_len = REAL_BLOCK;
        wrong_len[0] = 0x38;
        assert_eq!(
            verify(&wrong_len),
            Err(Gen2Error::LengthMismatch {
                announced: 14,
                actual: 12
            })
        );
        assert!(!crc_matches(&[0x00, 0x00]));
        let epc = Epc::from_hex(REAL_EPC).unwrap();
        assert_eq!(
            encode_block(PcWord(REAL_PC), &epc, &mut [0u8; 15]),
            Err(BufferTooSmall { needed: 16 })
        );
    }

    proptest! {
        /// For every EPC of whole words (0..=62 bytes): encode_block with the matching PC word
        /// followed by verify gives back the same PC, EPC and CRC.
        #[test]
        fn block_round_trip(words in proptest::collection::vec(any::<u16>(), 0..=31)) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let epc = Epc::new(&bytes).unwrap();
            let pc = PcWord::for_epc_len(epc.len());
            let mut out = [0u8; 66];
            let n = encode_block(pc, &epc, &mut out).unwrap();
            let block = verify(&out[..n]).unwrap();
            prop_assert_eq!(block.pc, pc);
            prop_assert_eq!(block.epc, epc);
            prop_assert_eq!(block.crc, tag_crc(pc, &epc));
        }

        /// Any single-bit error in a valid block is caught (a CRC-16 detects every 1-bit error).
        #[test]
        fn single_bit_errors_detected(words in proptest::collection::vec(any::<u16>(), 1..=8),
                                      bit in any::<prop::sample::Index>()) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            let epc = Epc::new(&bytes).unwrap();
            let pc = PcWord::for_epc_len(epc.len());
            let mut out = [0u8; 66];
            let n = encode_block(pc, &epc, &mut out).unwrap();
            let bit = bit.index(n * 8);
            out[bit / 8] ^= 0x80 >> (bit % 8);
            prop_assert!(!crc_matches(&out[..n]));
            prop_assert!(verify(&out[..n]).is_err());
        }
    }
}
