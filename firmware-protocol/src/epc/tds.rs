//! The GS1 EPC Tag Data Standard (TDS) 96-bit schemes: binary ⇄ tag URI ⇄ pure-identity URI.
//!
//! A UHF tag reports raw EPC bytes. When the first byte (the header) names a TDS scheme, the
//! bytes mean a GS1 key: Custos labels its carriers with GIAI-96 EPCs (Global Individual Asset
//! Identifier), and may meet SGTIN-96, GRAI-96, GDTI-96 and GID-96 tags on the way. This module
//! turns the 96 bits into a typed [`Identity`] and back, and writes and reads the two URI forms
//! of the TDS:
//! - tag URI, with the filter value: `urn:epc:tag:sgtin-96:3.0614141.812345.6789`;
//! - pure-identity URI, the identity alone: `urn:epc:id:sgtin:0614141.812345.6789`.
//!
//! Tags whose header is not one of these schemes (factory EPCs such as `E200...`, other TDS
//! schemes) are not errors: [`decode`] answers `Ok(None)` and the caller keeps the raw hex.
//!
//! # Layout
//! Every scheme but GID-96 is `header(8) | filter(3) | partition(3) | company prefix(M) |
//! reference(N) | serial(S)`. The partition value `P` gives the GS1 Company Prefix length
//! `12 - P` digits and how the 44 (SGTIN, GRAI), 41 (GDTI) or 82 (GIAI) bits between it and the
//! serial are split; value 7 is reserved. The tables below are the TDS partition tables,
//! cited by name because their numbers change between releases (TDS 2.3: Table 14-16 "SGTIN
//! Partition Table", Table 14-19 "GRAI Partition Table", Table 14-23 "GIAI-96 Partition
//! Table"; and the "GDTI Partition Table"). Every row was cross-checked against the
//! machine-readable GS1 Tag Data Translation 2.0 files
//! (`https://ref.gs1.org/standards/tdt/2.0.0/SGTIN-96.xml`, `GRAI-96.xml`, `GIAI-96.xml`,
//! `GDTI-96.xml`, `GID-96.xml`). GID-96 ("GID-96 coding table") is
//! `header(8) | general manager(28) | object class(24) | serial(36)`.
//!
//! # Range rules applied in both directions
//! - filter 0-7 (3 bits); partition 0-6;
//! - company prefix 6-12 digits; leading zeros are significant ("0614141"), so digit strings are
//!   carried as [`Digits`] (value, digit count), never as a bare integer;
//! - SGTIN item reference (with indicator digit), GRAI asset type and GDTI document type have
//!   exactly the digit count the partition implies, and their value must fit both that many
//!   decimal digits and the partition's bit width (a binary value ≥ 10^digits is rejected);
//! - serials (SGTIN-96, GRAI-96: 38 bits; GDTI-96: 41 bits), the GIAI-96 individual asset
//!   reference (42-62 bits by partition) and the GID-96 fields are TDS "Integer" components: in
//!   a URI, decimal with no leading zeros (except "0" itself), value below 2^bits. A serial such
//!   as "0123" exists in GS1 but cannot be encoded in a -96 scheme (it needs the alphanumeric
//!   -198/-170/-174 encodings), so it is rejected here.
//!
//! Decoding allocates nothing; the URI writers return `String` (not a hot path).

use core::fmt;

use crate::epc::Epc;

/// Bytes of a 96-bit EPC binary encoding.
pub const EPC96_BYTES: usize = 12;

/// The 96-bit TDS schemes this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Serialised Global Trade Item Number, header 0x30.
    Sgtin96,
    /// Global Returnable Asset Identifier, header 0x33.
    Grai96,
    /// Global Individual Asset Identifier, header 0x34.
    Giai96,
    /// Global Document Type Identifier, header 0x2C.
    Gdti96,
    /// General Identifier, header 0x35.
    Gid96,
}

impl Scheme {
    /// Every scheme, for iteration.
    pub const ALL: [Scheme; 5] = [
        Scheme::Sgtin96,
        Scheme::Grai96,
        Scheme::Giai96,
        Scheme::Gdti96,
        Scheme::Gid96,
    ];

    /// The 8-bit EPC header (TDS Table 14-1 "EPC Binary Header Values").
    pub const fn header(self) -> u8 {
        match self {
            Scheme::Sgtin96 => 0x30, // 0011 0000
            Scheme::Grai96 => 0x33,  // 0011 0011
            Scheme::Giai96 => 0x34,  // 0011 0100
            Scheme::Gdti96 => 0x2C,  // 0010 1100
            Scheme::Gid96 => 0x35,   // 0011 0101
        }
    }

    /// The scheme a header byte names, if it is one of the five.
    pub const fn from_header(header: u8) -> Option<Self> {
        match header {
            0x30 => Some(Scheme::Sgtin96),
            0x33 => Some(Scheme::Grai96),
            0x34 => Some(Scheme::Giai96),
            0x2C => Some(Scheme::Gdti96),
            0x35 => Some(Scheme::Gid96),
            _ => None,
        }
    }

    /// The scheme name in a tag URI: `sgtin-96`, `grai-96`, `giai-96`, `gdti-96`, `gid-96`.
    pub const fn tag_name(self) -> &'static str {
        match self {
            Scheme::Sgtin96 => "sgtin-96",
            Scheme::Grai96 => "grai-96",
            Scheme::Giai96 => "giai-96",
            Scheme::Gdti96 => "gdti-96",
            Scheme::Gid96 => "gid-96",
        }
    }

    /// The scheme name in a pure-identity URI: `sgtin`, `grai`, `giai`, `gdti`, `gid`.
    pub const fn id_name(self) -> &'static str {
        match self {
            Scheme::Sgtin96 => "sgtin",
            Scheme::Grai96 => "grai",
            Scheme::Giai96 => "giai",
            Scheme::Gdti96 => "gdti",
            Scheme::Gid96 => "gid",
        }
    }

    fn layout(self) -> Option<&'static Layout> {
        match self {
            Scheme::Sgtin96 => Some(&SGTIN),
            Scheme::Grai96 => Some(&GRAI),
            Scheme::Giai96 => Some(&GIAI),
            Scheme::Gdti96 => Some(&GDTI),
            Scheme::Gid96 => None,
        }
    }
}

/// One row of a TDS partition table.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// GS1 Company Prefix bits (M).
    cp_bits: u32,
    /// GS1 Company Prefix digits (L).
    cp_digits: usize,
    /// Reference bits (N): item reference, asset type, document type or asset reference.
    ref_bits: u32,
    /// Reference digits; for GIAI-96 the largest number of digits of the integer.
    ref_digits: usize,
}

const fn row(cp_bits: u32, cp_digits: usize, ref_bits: u32, ref_digits: usize) -> Row {
    Row {
        cp_bits,
        cp_digits,
        ref_bits,
        ref_digits,
    }
}

/// The layout of a partitioned scheme: its partition table and serial width.
#[derive(Debug)]
struct Layout {
    /// Indexed by partition value 0-6.
    table: [Row; 7],
    /// Serial bits after the reference (0 for GIAI-96, which has no separate serial).
    serial_bits: u32,
    /// Name of the reference field in errors.
    ref_field: &'static str,
}

/// TDS "SGTIN Partition Table" (TDS 2.3 Table 14-16): company prefix bits/digits, item
/// reference (with indicator digit) bits/digits. Serial: 38 bits.
const SGTIN: Layout = Layout {
    table: [
        row(40, 12, 4, 1),
        row(37, 11, 7, 2),
        row(34, 10, 10, 3),
        row(30, 9, 14, 4),
        row(27, 8, 17, 5),
        row(24, 7, 20, 6),
        row(20, 6, 24, 7),
    ],
    serial_bits: 38,
    ref_field: "item reference",
};

/// TDS "GRAI Partition Table" (TDS 2.3 Table 14-19): company prefix bits/digits, asset type
/// bits/digits. Serial: 38 bits.
const GRAI: Layout = Layout {
    table: [
        row(40, 12, 4, 0),
        row(37, 11, 7, 1),
        row(34, 10, 10, 2),
        row(30, 9, 14, 3),
        row(27, 8, 17, 4),
        row(24, 7, 20, 5),
        row(20, 6, 24, 6),
    ],
    serial_bits: 38,
    ref_field: "asset type",
};

/// TDS "GIAI-96 Partition Table" (TDS 2.3 Table 14-23): company prefix bits/digits, individual
/// asset reference bits/maximum digits. No separate serial.
const GIAI: Layout = Layout {
    table: [
        row(40, 12, 42, 13),
        row(37, 11, 45, 14),
        row(34, 10, 48, 15),
        row(30, 9, 52, 16),
        row(27, 8, 55, 17),
        row(24, 7, 58, 18),
        row(20, 6, 62, 19),
    ],
    serial_bits: 0,
    ref_field: "individual asset reference",
};

/// TDS "GDTI Partition Table" (GDTI-96 rows, as in TDT 2.0 `GDTI-96.xml`): company prefix
/// bits/digits, document type bits/digits. Serial: 41 bits.
const GDTI: Layout = Layout {
    table: [
        row(40, 12, 1, 0),
        row(37, 11, 4, 1),
        row(34, 10, 7, 2),
        row(30, 9, 11, 3),
        row(27, 8, 14, 4),
        row(24, 7, 17, 5),
        row(20, 6, 21, 6),
    ],
    serial_bits: 41,
    ref_field: "document type",
};

/// GID-96 field widths (TDS "GID-96 coding table", TDS 2.3 Table 14-29).
const GID_MANAGER_BITS: u32 = 28;
const GID_CLASS_BITS: u32 = 24;
const GID_SERIAL_BITS: u32 = 36;

/// An EPC could not be decoded, encoded or parsed under the Tag Data Standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TdsError {
    /// A known header on an EPC that is not 96 bits (shorter, or longer with non-zero bits
    /// after the 96).
    #[error("epc of {len} bytes is not a 96-bit encoding")]
    Length {
        /// The EPC length in bytes.
        len: usize,
    },
    /// The binary partition value is 7, which every partition table reserves.
    #[error("partition value 7 is reserved")]
    Partition,
    /// The filter value does not fit 3 bits.
    #[error("filter {filter} is out of range 0-7")]
    Filter {
        /// The rejected filter value.
        filter: u8,
    },
    /// The GS1 Company Prefix does not have 6 to 12 digits.
    #[error("company prefix must have 6 to 12 digits, not {digits}")]
    CompanyPrefixLength {
        /// The number of digits given.
        digits: usize,
    },
    /// A digit-string field has a different number of digits than the partition implies.
    #[error("{field} must have {expected} digits, not {found}")]
    DigitCount {
        /// The field.
        field: &'static str,
        /// Digits the partition implies.
        expected: usize,
        /// Digits given.
        found: usize,
    },
    /// A value does not fit its bit width or its decimal digit count.
    #[error("{field} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
    /// A field that must be decimal digits has another character (or is empty).
    #[error("{field} is not a decimal number")]
    NotDecimal {
        /// The field.
        field: &'static str,
    },
    /// An integer field of a URI has a leading zero; a -96 scheme cannot encode it.
    #[error("{field} has a leading zero")]
    LeadingZero {
        /// The field.
        field: &'static str,
    },
    /// The URI does not have the shape of an EPC URI.
    #[error("malformed epc uri: {reason}")]
    Uri {
        /// What is wrong.
        reason: &'static str,
    },
    /// The URI names an EPC scheme this module does not encode.
    #[error("unsupported epc scheme")]
    UnsupportedScheme,
}

/// A decimal digit string of up to 19 digits whose leading zeros are significant.
///
/// GS1 Company Prefixes and the reference fields are digit strings, not numbers:
/// "0614141" and "614141" are different company prefixes (of different partitions).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digits {
    value: u64,
    len: u8,
}

impl Digits {
    /// The longest digit string held (every 19-digit number fits a u64).
    pub const MAX_LEN: usize = 19;

    /// A digit string of `len` digits with value `value` (zero-padded on the left).
    ///
    /// Fails when `len` exceeds [`MAX_LEN`](Self::MAX_LEN) or `value` has more than `len`
    /// digits.
    pub fn new(value: u64, len: usize) -> Result<Self, TdsError> {
        Self::named(value, len, "digits")
    }

    fn named(value: u64, len: usize, field: &'static str) -> Result<Self, TdsError> {
        if len > Self::MAX_LEN || value >= pow10(len) {
            return Err(TdsError::OutOfRange { field });
        }
        Ok(Self {
            value,
            len: len as u8,
        })
    }

    /// Parses ASCII decimal digits (possibly none) keeping their count.
    pub fn parse(text: &str) -> Result<Self, TdsError> {
        parse_digits(text, "digits")
    }

    /// The numeric value.
    pub fn value(self) -> u64 {
        self.value
    }

    /// The number of digits, leading zeros included.
    pub fn len(self) -> usize {
        self.len as usize
    }

    /// Whether the string has no digits (a GRAI asset type or GDTI document type under
    /// partition 0).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

/// The digits, zero-padded to their count.
impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 0 {
            return Ok(());
        }
        write!(f, "{:0width$}", self.value, width = self.len as usize)
    }
}

impl fmt::Debug for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digits(\"{self}\")")
    }
}

impl core::str::FromStr for Digits {
    type Err = TdsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// 10^n for n ≤ 19 (10^19 < 2^64); saturates above.
fn pow10(n: usize) -> u64 {
    10u64.checked_pow(n as u32).unwrap_or(u64::MAX)
}

/// Whether `value` fits `bits` bits.
fn fits(value: u64, bits: u32) -> bool {
    bits >= 64 || value >> bits == 0
}

/// The identity a 96-bit TDS EPC encodes.
///
/// Every variant holds only values a -96 scheme can carry; [`encode`] checks them against the
/// partition tables. The filter value (TDS filter value tables; for GIAI 0 = all others,
/// 1 = rail vehicle) is part of the tag encoding, not of the pure identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    /// SGTIN-96: `urn:epc:id:sgtin:CompanyPrefix.ItemRefAndIndicator.Serial`.
    Sgtin {
        /// Filter value 0-7.
        filter: u8,
        /// GS1 Company Prefix, 6-12 digits.
        company_prefix: Digits,
        /// Indicator digit and item reference: 13 minus company prefix digits.
        item_ref: Digits,
        /// Serial number below 2^38.
        serial: u64,
    },
    /// GRAI-96: `urn:epc:id:grai:CompanyPrefix.AssetType.Serial`.
    Grai {
        /// Filter value 0-7.
        filter: u8,
        /// GS1 Company Prefix, 6-12 digits.
        company_prefix: Digits,
        /// Asset type: 12 minus company prefix digits (none for a 12-digit prefix).
        asset_type: Digits,
        /// Serial number below 2^38.
        serial: u64,
    },
    /// GIAI-96: `urn:epc:id:giai:CompanyPrefix.IndividualAssetReference`.
    Giai {
        /// Filter value 0-7.
        filter: u8,
        /// GS1 Company Prefix, 6-12 digits.
        company_prefix: Digits,
        /// Individual asset reference, below 2^(42..62) depending on the partition.
        asset_ref: u64,
    },
    /// GDTI-96: `urn:epc:id:gdti:CompanyPrefix.DocumentType.Serial`.
    Gdti {
        /// Filter value 0-7.
        filter: u8,
        /// GS1 Company Prefix, 6-12 digits.
        company_prefix: Digits,
        /// Document type: 12 minus company prefix digits (none for a 12-digit prefix).
        doc_type: Digits,
        /// Serial number below 2^41.
        serial: u64,
    },
    /// GID-96: `urn:epc:id:gid:Manager.Class.Serial`; no filter, no partition.
    Gid {
        /// General manager number below 2^28.
        manager: u32,
        /// Object class below 2^24.
        class: u32,
        /// Serial number below 2^36.
        serial: u64,
    },
}

/// The fields a partitioned identity shares, viewed uniformly.
struct Partitioned {
    layout: &'static Layout,
    filter: u8,
    company_prefix: Digits,
    /// The reference as a digit string, or `None` for the GIAI integer.
    ref_digits: Option<Digits>,
    ref_value: u64,
    serial: u64,
}

impl Identity {
    /// The scheme this identity is encoded with.
    pub fn scheme(&self) -> Scheme {
        match self {
            Identity::Sgtin { .. } => Scheme::Sgtin96,
            Identity::Grai { .. } => Scheme::Grai96,
            Identity::Giai { .. } => Scheme::Giai96,
            Identity::Gdti { .. } => Scheme::Gdti96,
            Identity::Gid { .. } => Scheme::Gid96,
        }
    }

    /// The filter value, for the schemes that have one (all but GID-96).
    pub fn filter(&self) -> Option<u8> {
        match *self {
            Identity::Sgtin { filter, .. }
            | Identity::Grai { filter, .. }
            | Identity::Giai { filter, .. }
            | Identity::Gdti { filter, .. } => Some(filter),
            Identity::Gid { .. } => None,
        }
    }

    fn partitioned(&self) -> Option<Partitioned> {
        let (layout, filter, company_prefix, ref_digits, ref_value, serial) = match *self {
            Identity::Sgtin {
                filter,
                company_prefix,
                item_ref,
                serial,
            } => (
                &SGTIN,
                filter,
                company_prefix,
                Some(item_ref),
                item_ref.value,
                serial,
            ),
            Identity::Grai {
                filter,
                company_prefix,
                asset_type,
                serial,
            } => (
                &GRAI,
                filter,
                company_prefix,
                Some(asset_type),
                asset_type.value,
                serial,
            ),
            Identity::Gdti {
                filter,
                company_prefix,
                doc_type,
                serial,
            } => (
                &GDTI,
                filter,
                company_prefix,
                Some(doc_type),
                doc_type.value,
                serial,
            ),
            Identity::Giai {
                filter,
                company_prefix,
                asset_ref,
            } => (&GIAI, filter, company_prefix, None, asset_ref, 0),
            Identity::Gid { .. } => return None,
        };
        Some(Partitioned {
            layout,
            filter,
            company_prefix,
            ref_digits,
            ref_value,
            serial,
        })
    }

    /// The tag URI, e.g. `urn:epc:tag:giai-96:3.0614141.5678`.
    pub fn tag_uri(&self) -> String {
        let mut s = String::with_capacity(64);
        // Writing to a String cannot fail.
        let _ = self.write_uri(&mut s, true);
        s
    }

    /// The pure-identity URI, e.g. `urn:epc:id:giai:0614141.5678` (also the `Display` form).
    pub fn pure_identity_uri(&self) -> String {
        self.to_string()
    }

    fn write_uri(&self, out: &mut impl fmt::Write, tag: bool) -> fmt::Result {
        let scheme = self.scheme();
        if tag {
            write!(out, "urn:epc:tag:{}:", scheme.tag_name())?;
            if let Some(filter) = self.filter() {
                write!(out, "{filter}.")?;
            }
        } else {
            write!(out, "urn:epc:id:{}:", scheme.id_name())?;
        }
        match *self {
            Identity::Sgtin {
                company_prefix,
                item_ref: r,
                serial,
                ..
            }
            | Identity::Grai {
                company_prefix,
                asset_type: r,
                serial,
                ..
            }
            | Identity::Gdti {
                company_prefix,
                doc_type: r,
                serial,
                ..
            } => {
                write!(out, "{company_prefix}.{r}.{serial}")
            }
            Identity::Giai {
                company_prefix,
                asset_ref,
                ..
            } => {
                write!(out, "{company_prefix}.{asset_ref}")
            }
            Identity::Gid {
                manager,
                class,
                serial,
            } => write!(out, "{manager}.{class}.{serial}"),
        }
    }
}

/// The pure-identity URI.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_uri(f, false)
    }
}

/// Reads fields most significant bit first from a 96-bit value.
struct BitReader {
    value: u128,
    left: u32,
}

impl BitReader {
    fn take(&mut self, bits: u32) -> u64 {
        self.left -= bits;
        ((self.value >> self.left) & ((1u128 << bits) - 1)) as u64
    }
}

/// Decodes the identity of a 96-bit TDS EPC.
///
/// `Ok(None)`: the header is not one of the five schemes (empty EPC, factory EPC, another TDS
/// scheme) — keep the raw EPC. `Err`: the header is known but the bits break a rule of the
/// scheme. An EPC longer than 12 bytes is accepted when the extra bytes are zero (a 96-bit
/// encoding in a larger EPC bank, zero-padded); shorter ones are rejected.
pub fn decode(epc: &Epc) -> Result<Option<Identity>, TdsError> {
    let bytes = epc.as_bytes();
    let Some(scheme) = bytes.first().and_then(|h| Scheme::from_header(*h)) else {
        return Ok(None);
    };
    if bytes.len() < EPC96_BYTES || bytes[EPC96_BYTES..].iter().any(|b| *b != 0) {
        return Err(TdsError::Length { len: bytes.len() });
    }
    let mut raw = [0u8; 16];
    raw[16 - EPC96_BYTES..].copy_from_slice(&bytes[..EPC96_BYTES]);
    let mut bits = BitReader {
        value: u128::from_be_bytes(raw),
        left: 96,
    };
    bits.take(8); // header, already matched

    let Some(layout) = scheme.layout() else {
        let manager = bits.take(GID_MANAGER_BITS) as u32;
        let class = bits.take(GID_CLASS_BITS) as u32;
        let serial = bits.take(GID_SERIAL_BITS);
        return Ok(Some(Identity::Gid {
            manager,
            class,
            serial,
        }));
    };
    let filter = bits.take(3) as u8;
    let partition = bits.take(3) as usize;
    let row = *layout.table.get(partition).ok_or(TdsError::Partition)?;
    let company_prefix = Digits::named(bits.take(row.cp_bits), row.cp_digits, "company prefix")?;
    let reference = bits.take(row.ref_bits);
    let serial = bits.take(layout.serial_bits);
    let ref_digits = || Digits::named(reference, row.ref_digits, layout.ref_field);
    Ok(Some(match scheme {
        Scheme::Sgtin96 => Identity::Sgtin {
            filter,
            company_prefix,
            item_ref: ref_digits()?,
            serial,
        },
        Scheme::Grai96 => Identity::Grai {
            filter,
            company_prefix,
            asset_type: ref_digits()?,
            serial,
        },
        Scheme::Gdti96 => Identity::Gdti {
            filter,
            company_prefix,
            doc_type: ref_digits()?,
            serial,
        },
        // GIAI-96, the only other scheme with a layout (GID-96 returned above). 2^N < 10^digits
        // in every row of its table, so the bit width is the binding limit.
        _ => Identity::Giai {
            filter,
            company_prefix,
            asset_ref: reference,
        },
    }))
}

/// Packs fields most significant bit first into a 96-bit value.
struct BitWriter {
    value: u128,
    used: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, bits: u32) {
        self.value = (self.value << bits) | u128::from(value);
        self.used += bits;
    }

    fn finish(self) -> Epc {
        debug_assert_eq!(self.used, 96);
        let bytes = self.value.to_be_bytes();
        // 12 bytes always fit an Epc (up to 62).
        Epc::new(&bytes[16 - EPC96_BYTES..]).expect("12 bytes fit an Epc")
    }
}

fn check_fits(value: u64, bits: u32, field: &'static str) -> Result<(), TdsError> {
    if fits(value, bits) {
        Ok(())
    } else {
        Err(TdsError::OutOfRange { field })
    }
}

/// Encodes an identity as a 96-bit EPC, checking every range rule of its scheme.
pub fn encode(id: &Identity) -> Result<Epc, TdsError> {
    let mut out = BitWriter { value: 0, used: 0 };
    out.put(u64::from(id.scheme().header()), 8);
    let Some(p) = id.partitioned() else {
        if let Identity::Gid {
            manager,
            class,
            serial,
        } = *id
        {
            check_fits(
                u64::from(manager),
                GID_MANAGER_BITS,
                "general manager number",
            )?;
            check_fits(u64::from(class), GID_CLASS_BITS, "object class")?;
            check_fits(serial, GID_SERIAL_BITS, "serial")?;
            out.put(u64::from(manager), GID_MANAGER_BITS);
            out.put(u64::from(class), GID_CLASS_BITS);
            out.put(serial, GID_SERIAL_BITS);
        }
        return Ok(out.finish());
    };
    if p.filter > 7 {
        return Err(TdsError::Filter { filter: p.filter });
    }
    let cp_len = p.company_prefix.len();
    if !(6..=12).contains(&cp_len) {
        return Err(TdsError::CompanyPrefixLength { digits: cp_len });
    }
    let partition = 12 - cp_len;
    let row = p.layout.table[partition];
    if let Some(digits) = p.ref_digits {
        if digits.len() != row.ref_digits {
            return Err(TdsError::DigitCount {
                field: p.layout.ref_field,
                expected: row.ref_digits,
                found: digits.len(),
            });
        }
    } else if p.ref_value >= pow10(row.ref_digits) {
        return Err(TdsError::OutOfRange {
            field: p.layout.ref_field,
        });
    }
    check_fits(p.ref_value, row.ref_bits, p.layout.ref_field)?;
    check_fits(p.serial, p.layout.serial_bits, "serial")?;
    out.put(u64::from(p.filter), 3);
    out.put(partition as u64, 3);
    out.put(p.company_prefix.value(), row.cp_bits);
    out.put(p.ref_value, row.ref_bits);
    out.put(p.serial, p.layout.serial_bits);
    Ok(out.finish())
}

/// A GIAI-96 EPC for a carrier: `urn:epc:id:giai:{company_prefix}.{asset_ref}`.
///
/// `company_prefix` is the GS1 Company Prefix as digits (6-12, leading zeros kept, e.g.
/// "0614141"); its length selects the partition. Custos tags carriers with filter 0 ("all
/// others" in the TDS GIAI filter values; 1 means rail vehicle).
pub fn giai96(filter: u8, company_prefix: &str, asset_ref: u64) -> Result<Epc, TdsError> {
    let company_prefix = parse_digits(company_prefix, "company prefix")?;
    encode(&Identity::Giai {
        filter,
        company_prefix,
        asset_ref,
    })
}

/// The pure-identity URI of an EPC, for display: `None` for unknown headers and for EPCs
/// that break their scheme's rules (show the raw hex then).
pub fn pure_identity_uri(epc: &Epc) -> Option<String> {
    match decode(epc) {
        Ok(Some(id)) => Some(id.pure_identity_uri()),
        _ => None,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Parses a tag URI (`urn:epc:tag:SCHEME-96:F.…`) into an identity, checking every range.
///
/// The `urn:epc:tag:` prefix and scheme name are matched ignoring ASCII case (URN rules); the
/// fields are exactly as TDS writes them.
pub fn parse_tag_uri(uri: &str) -> Result<Identity, TdsError> {
    let body = strip_prefix_ignore_case(uri, "urn:epc:tag:").ok_or(TdsError::Uri {
        reason: "expected urn:epc:tag:",
    })?;
    let (name, fields) = body.split_once(':').ok_or(TdsError::Uri {
        reason: "missing scheme",
    })?;
    let scheme = Scheme::ALL
        .into_iter()
        .find(|s| s.tag_name().eq_ignore_ascii_case(name))
        .ok_or(TdsError::UnsupportedScheme)?;
    parse_fields(scheme, fields, None)
}

/// Parses a pure-identity URI (`urn:epc:id:SCHEME:…`) into an identity with the given filter
/// value (the pure identity has none; it is ignored for GID).
pub fn parse_pure_identity_uri(uri: &str, filter: u8) -> Result<Identity, TdsError> {
    let body = strip_prefix_ignore_case(uri, "urn:epc:id:").ok_or(TdsError::Uri {
        reason: "expected urn:epc:id:",
    })?;
    let (name, fields) = body.split_once(':').ok_or(TdsError::Uri {
        reason: "missing scheme",
    })?;
    let scheme = Scheme::ALL
        .into_iter()
        .find(|s| s.id_name().eq_ignore_ascii_case(name))
        .ok_or(TdsError::UnsupportedScheme)?;
    parse_fields(scheme, fields, Some(filter))
}

/// Splits `text` on '.' into exactly `N` fields.
fn split_fields<const N: usize>(text: &str) -> Result<[&str; N], TdsError> {
    let mut out = [""; N];
    let mut parts = text.split('.');
    for slot in &mut out {
        *slot = parts.next().ok_or(TdsError::Uri {
            reason: "too few fields",
        })?;
    }
    if parts.next().is_some() {
        return Err(TdsError::Uri {
            reason: "too many fields",
        });
    }
    Ok(out)
}

fn parse_digits(text: &str, field: &'static str) -> Result<Digits, TdsError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TdsError::NotDecimal { field });
    }
    if text.len() > Digits::MAX_LEN {
        return Err(TdsError::OutOfRange { field });
    }
    let value = text
        .bytes()
        .fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    Digits::named(value, text.len(), field)
}

/// A TDS "Integer" URI component: decimal, no leading zeros except "0", below 2^bits.
pub(crate) fn parse_integer(text: &str, bits: u32, field: &'static str) -> Result<u64, TdsError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TdsError::NotDecimal { field });
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(TdsError::LeadingZero { field });
    }
    let mut value = 0u64;
    for b in text.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(TdsError::OutOfRange { field })?;
    }
    check_fits(value, bits, field)?;
    Ok(value)
}

fn parse_filter(text: &str) -> Result<u8, TdsError> {
    match text.as_bytes() {
        [d @ b'0'..=b'7'] => Ok(d - b'0'),
        [d @ b'8'..=b'9'] => Err(TdsError::Filter { filter: d - b'0' }),
        _ => Err(TdsError::NotDecimal { field: "filter" }),
    }
}

fn parse_fields(scheme: Scheme, fields: &str, filter: Option<u8>) -> Result<Identity, TdsError> {
    let Some(layout) = scheme.layout() else {
        // GID: general manager, object class, serial; the tag URI has no filter either.
        let [m, c, s] = split_fields::<3>(fields)?;
        let id = Identity::Gid {
            manager: parse_integer(m, GID_MANAGER_BITS, "general manager number")? as u32,
            class: parse_integer(c, GID_CLASS_BITS, "object class")? as u32,
            serial: parse_integer(s, GID_SERIAL_BITS, "serial")?,
        };
        return Ok(id);
    };
    let (filter, rest) = match filter {
        Some(f) => (f, fields),
        None => {
            let (f, rest) = fields.split_once('.').ok_or(TdsError::Uri {
                reason: "too few fields",
            })?;
            (parse_filter(f)?, rest)
        }
    };
    let id = if scheme == Scheme::Giai96 {
        let [cp, asset] = split_fields::<2>(rest)?;
        let company_prefix = company_prefix(cp)?;
        let bits = layout.table[12 - company_prefix.len()].ref_bits;
        Identity::Giai {
            filter,
            company_prefix,
            asset_ref: parse_integer(asset, bits, layout.ref_field)?,
        }
    } else {
        let [cp, reference, serial] = split_fields::<3>(rest)?;
        let company_prefix = company_prefix(cp)?;
        let reference = parse_digits(reference, layout.ref_field)?;
        let serial = parse_integer(serial, layout.serial_bits, "serial")?;
        match scheme {
            Scheme::Sgtin96 => Identity::Sgtin {
                filter,
                company_prefix,
                item_ref: reference,
                serial,
            },
            Scheme::Grai96 => Identity::Grai {
                filter,
                company_prefix,
                asset_type: reference,
                serial,
            },
            _ => Identity::Gdti {
                filter,
                company_prefix,
                doc_type: reference,
                serial,
            },
        }
    };
    // The remaining rules (filter range, digit counts per partition) are encode's.
    encode(&id)?;
    Ok(id)
}

fn company_prefix(text: &str) -> Result<Digits, TdsError> {
    let digits = parse_digits(text, "company prefix")?;
    if !(6..=12).contains(&digits.len()) {
        return Err(TdsError::CompanyPrefixLength {
            digits: digits.len(),
        });
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// /work/shared/vectors/epc-tds.txt: HEX | tag URI | pure-identity URI.
    const VECTORS: [(&str, &str, &str); 8] = [
        (
            "3074257BF7194E4000001A85",
            "urn:epc:tag:sgtin-96:3.0614141.812345.6789",
            "urn:epc:id:sgtin:0614141.812345.6789",
        ),
        (
            "3034257BF6B7A64000000002",
            "urn:epc:tag:sgtin-96:1.0614141.712345.2",
            "urn:epc:id:sgtin:0614141.712345.2",
        ),
        (
            "3374257BF40C0E4000000190",
            "urn:epc:tag:grai-96:3.0614141.12345.400",
            "urn:epc:id:grai:0614141.12345.400",
        ),
        (
            "3314257BF4000040075BCD15",
            "urn:epc:tag:grai-96:0.0614141.00001.123456789",
            "urn:epc:id:grai:0614141.00001.123456789",
        ),
        (
            "3474257BF40000000000162E",
            "urn:epc:tag:giai-96:3.0614141.5678",
            "urn:epc:id:giai:0614141.5678",
        ),
        (
            "3414F4E4E40000003ADE68B1",
            "urn:epc:tag:giai-96:0.4012345.987654321",
            "urn:epc:id:giai:4012345.987654321",
        ),
        (
            "3400393243F1640000000001",
            "urn:epc:tag:giai-96:0.061414112345.1",
            "urn:epc:id:giai:061414112345.1",
        ),
        (
            "2C14257BF460720000000190",
            "urn:epc:tag:gdti-96:0.0614141.12345.400",
            "urn:epc:id:gdti:0614141.12345.400",
        ),
    ];

    fn epc(hex: &str) -> Epc {
        Epc::from_hex(hex).unwrap()
    }

    /// Packs (value, bits) fields into an EPC, for hand-made bad encodings.
    fn pack(fields: &[(u64, u32)]) -> Epc {
        let mut w = BitWriter { value: 0, used: 0 };
        for &(v, b) in fields {
            w.put(v, b);
        }
        w.finish()
    }

    #[test]
    fn vectors_binary_to_uris() {
        for (hex, tag, id) in VECTORS {
            let identity = decode(&epc(hex)).unwrap().unwrap();
            assert_eq!(identity.tag_uri(), tag, "{hex}");
            assert_eq!(identity.pure_identity_uri(), id, "{hex}");
            assert_eq!(pure_identity_uri(&epc(hex)).as_deref(), Some(id));
        }
    }

    #[test]
    fn vectors_uris_to_binary() {
        for (hex, tag, id) in VECTORS {
            let from_tag = parse_tag_uri(tag).unwrap();
            assert_eq!(encode(&from_tag).unwrap(), epc(hex), "{tag}");
            let filter = from_tag.filter().unwrap();
            let from_id = parse_pure_identity_uri(id, filter).unwrap();
            assert_eq!(from_id, from_tag, "{id}");
            assert_eq!(encode(&from_id).unwrap(), epc(hex), "{id}");
        }
    }

    #[test]
    fn vector_fields_are_typed() {
        assert_eq!(
            decode(&epc("3074257BF7194E4000001A85")).unwrap(),
            Some(Identity::Sgtin {
                filter: 3,
                company_prefix: Digits::new(614141, 7).unwrap(),
                item_ref: Digits::new(812345, 6).unwrap(),
                serial: 6789,
            })
        );
        // Partition 0: a 12-digit company prefix with its leading zero kept.
        let giai = decode(&epc("3400393243F1640000000001")).unwrap().unwrap();
        assert_eq!(
            giai,
            Identity::Giai {
                filter: 0,
                company_prefix: "061414112345".parse().unwrap(),
                asset_ref: 1
            }
        );
    }

    #[test]
    fn giai96_helper_matches_vector() {
        assert_eq!(
            giai96(3, "0614141", 5678),
            Ok(epc("3474257BF40000000000162E"))
        );
        assert_eq!(
            giai96(0, "4012345", 987_654_321),
            Ok(epc("3414F4E4E40000003ADE68B1"))
        );
        assert_eq!(giai96(8, "0614141", 1), Err(TdsError::Filter { filter: 8 }));
        assert_eq!(
            giai96(0, "06141", 1),
            Err(TdsError::CompanyPrefixLength { digits: 5 })
        );
        assert_eq!(
            giai96(0, "06141x1", 1),
            Err(TdsError::NotDecimal {
                field: "company prefix"
            })
        );
        // Partition 0 (12-digit prefix): 42 bits of asset reference.
        assert!(giai96(0, "061414112345", (1 << 42) - 1).is_ok());
        assert_eq!(
            giai96(0, "061414112345", 1 << 42),
            Err(TdsError::OutOfRange {
                field: "individual asset reference"
            })
        );
        // Partition 6 (6-digit prefix): 62 bits.
        assert!(giai96(0, "061414", (1 << 62) - 1).is_ok());
        assert!(giai96(0, "061414", 1 << 62).is_err());
    }

    #[test]
    fn unknown_headers_are_kept_raw() {
        assert_eq!(decode(&epc("E2003098881900722140369E")), Ok(None));
        assert_eq!(decode(&epc("E28011700000020D1B2C3D4E")), Ok(None));
        assert_eq!(decode(&epc("")), Ok(None));
        // SGTIN-198 (0x36) is a TDS scheme, but not one of ours: raw, not an error.
        assert_eq!(decode(&epc("36")), Ok(None));
        assert_eq!(pure_identity_uri(&epc("E2003098881900722140369E")), None);
    }

    #[test]
    fn length_rules() {
        assert_eq!(decode(&epc("3074257B")), Err(TdsError::Length { len: 4 }));
        let padded = epc("3074257BF7194E4000001A850000");
        assert_eq!(decode(&padded), decode(&epc(VECTORS[0].0)));
        assert_eq!(
            decode(&epc("3074257BF7194E4000001A850001")),
            Err(TdsError::Length { len: 14 })
        );
    }

    #[test]
    fn binary_range_rules() {
        // Partition 7 is reserved.
        assert_eq!(
            decode(&pack(&[(0x30, 8), (3, 3), (7, 3), (0, 82)])),
            Err(TdsError::Partition)
        );
        // A 12-digit company prefix field holding 2^40-1 > 999999999999.
        assert_eq!(
            decode(&pack(&[
                (0x34, 8),
                (0, 3),
                (0, 3),
                ((1 << 40) - 1, 40),
                (0, 42)
            ])),
            Err(TdsError::OutOfRange {
                field: "company prefix"
            })
        );
        // SGTIN partition 5: 6-digit item reference in 20 bits; 1_000_000 fits the bits only.
        assert_eq!(
            decode(&pack(&[
                (0x30, 8),
                (0, 3),
                (5, 3),
                (614141, 24),
                (1_000_000, 20),
                (0, 38)
            ])),
            Err(TdsError::OutOfRange {
                field: "item reference"
            })
        );
        assert!(
            decode(&pack(&[
                (0x30, 8),
                (0, 3),
                (5, 3),
                (614141, 24),
                (999_999, 20),
                (0, 38)
            ]))
            .is_ok()
        );
        // GRAI partition 0: asset type has no digits, so its 4 bits must be zero.
        assert_eq!(
            decode(&pack(&[
                (0x33, 8),
                (0, 3),
                (0, 3),
                (61414112345, 40),
                (1, 4),
                (0, 38)
            ])),
            Err(TdsError::OutOfRange {
                field: "asset type"
            })
        );
        // GDTI partition 0: document type is one zero bit.
        assert_eq!(
            decode(&pack(&[
                (0x2C, 8),
                (0, 3),
                (0, 3),
                (61414112345, 40),
                (1, 1),
                (0, 41)
            ])),
            Err(TdsError::OutOfRange {
                field: "document type"
            })
        );
        // GID-96 uses all its bits.
        assert_eq!(
            decode(&pack(&[
                (0x35, 8),
                ((1 << 28) - 1, 28),
                ((1 << 24) - 1, 24),
                ((1 << 36) - 1, 36)
            ])),
            Ok(Some(Identity::Gid {
                manager: (1 << 28) - 1,
                class: (1 << 24) - 1,
                serial: (1 << 36) - 1
            }))
        );
    }

    #[test]
    fn encode_range_rules() {
        let cp = Digits::new(614141, 7).unwrap();
        let sgtin = |item_ref: Digits, serial| Identity::Sgtin {
            filter: 3,
            company_prefix: cp,
            item_ref,
            serial,
        };
        assert_eq!(
            encode(&sgtin(Digits::new(12345, 5).unwrap(), 1)),
            Err(TdsError::DigitCount {
                field: "item reference",
                expected: 6,
                found: 5
            })
        );
        assert!(encode(&sgtin(Digits::new(812345, 6).unwrap(), (1 << 38) - 1)).is_ok());
        assert_eq!(
            encode(&sgtin(Digits::new(812345, 6).unwrap(), 1 << 38)),
            Err(TdsError::OutOfRange { field: "serial" })
        );
        let gdti = Identity::Gdti {
            filter: 0,
            company_prefix: cp,
            doc_type: Digits::new(12345, 5).unwrap(),
            serial: 1 << 41,
        };
        assert_eq!(encode(&gdti), Err(TdsError::OutOfRange { field: "serial" }));
        let gid = Identity::Gid {
            manager: 1 << 28,
            class: 0,
            serial: 0,
        };
        assert_eq!(
            encode(&gid),
            Err(TdsError::OutOfRange {
                field: "general manager number"
            })
        );
        let gid = Identity::Gid {
            manager: 0,
            class: 1 << 24,
            serial: 0,
        };
        assert_eq!(
            encode(&gid),
            Err(TdsError::OutOfRange {
                field: "object class"
            })
        );
        let gid = Identity::Gid {
            manager: 0,
            class: 0,
            serial: 1 << 36,
        };
        assert_eq!(encode(&gid), Err(TdsError::OutOfRange { field: "serial" }));
        let long_cp = Identity::Giai {
            filter: 0,
            company_prefix: Digits::new(1, 13).unwrap(),
            asset_ref: 0,
        };
        assert_eq!(
            encode(&long_cp),
            Err(TdsError::CompanyPrefixLength { digits: 13 })
        );
        assert_eq!(
            Digits::new(100, 2),
            Err(TdsError::OutOfRange { field: "digits" })
        );
        assert_eq!(
            Digits::new(0, 20),
            Err(TdsError::OutOfRange { field: "digits" })
        );
    }

    #[test]
    fn uri_rules() {
        use TdsError::*;
        let cases: [(&str, TdsError); 14] = [
            (
                "urn:epc:tag:sgtin-96:3.0614141.812345.06789",
                LeadingZero { field: "serial" },
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141.812345.274877906944",
                OutOfRange { field: "serial" },
            ),
            (
                "urn:epc:tag:sgtin-96:8.0614141.812345.1",
                Filter { filter: 8 },
            ),
            (
                "urn:epc:tag:sgtin-96:03.0614141.812345.1",
                NotDecimal { field: "filter" },
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141.81234.1",
                DigitCount {
                    field: "item reference",
                    expected: 6,
                    found: 5,
                },
            ),
            (
                "urn:epc:tag:sgtin-96:3.06141.8123456.1",
                CompanyPrefixLength { digits: 5 },
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141.812345",
                Uri {
                    reason: "too few fields",
                },
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141.812345.1.2",
                Uri {
                    reason: "too many fields",
                },
            ),
            (
                "urn:epc:tag:sgtin-96:3.0614141.812345.A1",
                NotDecimal { field: "serial" },
            ),
            (
                "urn:epc:tag:sgtin-198:3.0614141.812345.1",
                UnsupportedScheme,
            ),
            (
                "urn:epc:id:sgtin:0614141.812345.1",
                Uri {
                    reason: "expected urn:epc:tag:",
                },
            ),
            (
                "urn:epc:tag:giai-96:0.061414112345.4398046511104",
                OutOfRange {
                    field: "individual asset reference",
                },
            ),
            (
                "urn:epc:tag:gid-96:268435456.1.1",
                OutOfRange {
                    field: "general manager number",
                },
            ),
            (
                "urn:epc:tag:gid-96:01.1.1",
                LeadingZero {
                    field: "general manager number",
                },
            ),
        ];
        for (uri, err) in cases {
            assert_eq!(parse_tag_uri(uri), Err(err), "{uri}");
        }
        assert_eq!(
            parse_pure_identity_uri("urn:epc:id:grai:0614141.12345.A400", 0),
            Err(NotDecimal { field: "serial" })
        );
        assert_eq!(
            parse_pure_identity_uri("urn:epc:id:giai:0614141.5678", 9),
            Err(Filter { filter: 9 })
        );
        // URN prefix and scheme name are case-insensitive; GRAI partition 0 has an empty
        // asset type field.
        let grai = parse_tag_uri("URN:EPC:TAG:GRAI-96:1.061414112345..7").unwrap();
        assert_eq!(grai.tag_uri(), "urn:epc:tag:grai-96:1.061414112345..7");
        assert_eq!(
            parse_tag_uri("urn:epc:tag:gid-96:95100000.12345.400")
                .unwrap()
                .pure_identity_uri(),
            "urn:epc:id:gid:95100000.12345.400"
        );
    }

    fn digits(len: usize) -> impl Strategy<Value = Digits> {
        (0..pow10(len)).prop_map(move |v| Digits::new(v, len).unwrap())
    }

    fn identity() -> impl Strategy<Value = Identity> {
        let sgtin = (0u8..8, 0usize..7).prop_flat_map(|(filter, p)| {
            (digits(12 - p), digits(1 + p), 0u64..1 << 38).prop_map(move |(cp, r, s)| {
                Identity::Sgtin {
                    filter,
                    company_prefix: cp,
                    item_ref: r,
                    serial: s,
                }
            })
        });
        let grai = (0u8..8, 0usize..7).prop_flat_map(|(filter, p)| {
            (digits(12 - p), digits(p), 0u64..1 << 38).prop_map(move |(cp, r, s)| Identity::Grai {
                filter,
                company_prefix: cp,
                asset_type: r,
                serial: s,
            })
        });
        let gdti = (0u8..8, 0usize..7).prop_flat_map(|(filter, p)| {
            (digits(12 - p), digits(p), 0u64..1 << 41).prop_map(move |(cp, r, s)| Identity::Gdti {
                filter,
                company_prefix: cp,
                doc_type: r,
                serial: s,
            })
        });
        let giai = (0u8..8, 0usize..7).prop_flat_map(|(filter, p)| {
            (digits(12 - p), 0u64..1 << GIAI.table[p].ref_bits).prop_map(move |(cp, a)| {
                Identity::Giai {
                    filter,
                    company_prefix: cp,
                    asset_ref: a,
                }
            })
        });
        let gid =
            (0u32..1 << 28, 0u32..1 << 24, 0u64..1 << 36).prop_map(|(manager, class, serial)| {
                Identity::Gid {
                    manager,
                    class,
                    serial,
                }
            });
        prop_oneof![sgtin, grai, gdti, giai, gid]
    }

    proptest! {
        /// encode then decode gives back every valid identity.
        #[test]
        fn binary_round_trip(id in identity()) {
            let epc = encode(&id).unwrap();
            prop_assert_eq!(epc.len(), EPC96_BYTES);
            prop_assert_eq!(epc.as_bytes()[0], id.scheme().header());
            prop_assert_eq!(decode(&epc), Ok(Some(id)));
        }

        /// tag URI and pure-identity URI (with the filter given back) both parse to the same
        /// identity.
        #[test]
        fn uri_round_trip(id in identity()) {
            prop_assert_eq!(parse_tag_uri(&id.tag_uri()), Ok(id));
            let filter = id.filter().unwrap_or(0);
            prop_assert_eq!(parse_pure_identity_uri(&id.pure_identity_uri(), filter), Ok(id));
        }

        /// For any 12 bytes under a known header, decode never panics, and whatever it
        /// accepts encodes back to exactly the same bytes (decoding is exact, not lossy).
        #[test]
        fn decode_is_exact(header in prop::sample::select(Scheme::ALL.to_vec()),
                           rest in any::<[u8; 11]>()) {
            let mut bytes = [0u8; 12];
            bytes[0] = header.header();
            bytes[1..].copy_from_slice(&rest);
            let raw = Epc::new(&bytes).unwrap();
            match decode(&raw) {
                Ok(Some(id)) => prop_assert_eq!(encode(&id), Ok(raw)),
                Ok(None) => prop_assert!(false, "known header decoded as unknown"),
                Err(e) => {
                    let expected = matches!(e, TdsError::Partition | TdsError::OutOfRange { .. });
                    prop_assert!(expected, "unexpected error {:?}", e);
                }
            }
        }

        /// Arbitrary text never panics the URI parsers.
        #[test]
        fn uri_parsers_never_panic(s in "urn:epc:(tag|id):[a-z0-9-]{0,9}:[0-9.]{0,40}",
                                   f in any::<u8>()) {
            let _ = parse_tag_uri(&s);
            let _ = parse_pure_identity_uri(&s, f);
        }
    }
}
