//! Carriers (秘密载体): kinds, states, control numbers, tags, and the registration rules.
//!
//! A carrier is registered with a control number (登记/编号) that Custos prints on its label
//! (`custos_protocol::barcode::CarrierLabel`: `CU` + number + check character), and with the
//! tags readers will report for it. Tags have one normalised text form, the form stored in
//! `carrier_tags.tag` and looked up when a reader reports something:
//! - `epc:HEX`: a UHF EPC in upper-case hex (any length a Gen2 PC word can announce);
//! - `em:HEX`: a 125 kHz EM4100 card, exactly 10 upper-case hex digits;
//! - `barcode:TEXT`: what a scanner sends (without terminator or AIM prefix). A Custos label is
//!   stored as printed, `CU2024-0017X` (upper case, check character verified); a GS1 (8004)
//!   GIAI label as a scanner sends a GS1-128 read without AIM prefix and FNC1,
//!   `800406141415678`; any other barcode as its trimmed text (printable ASCII).
//!
//! [`Tag::barcode`] is the one normaliser for barcode text: the ingest path applies it to a
//! scanned line, so a typed label and a scanned one meet in the same row.
//!
//! The title of a carrier can itself be classified: nothing in this module formats, logs or
//! audits it.

use std::fmt;
use std::str::FromStr;

use custos_protocol::barcode::{BarcodeError, CarrierLabel};
use custos_protocol::epc::{Epc, EpcError, tds};
use serde::{Deserialize, Serialize};

use super::device::DeviceKind;
use super::ids::{DeviceId, is_valid_label};
use super::level::{Level, ZoneLevel};

/// The most tags one carrier may be registered with.
pub const MAX_TAGS: usize = 16;
/// The longest raw barcode text, in bytes (the uplink's free-text limit).
pub const MAX_BARCODE_TEXT: usize = 1024;

/// What a carrier physically is (`kind` in the API; the list is fixed by INTERFACES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CarrierKind {
    /// Paper documents and drawings.
    Paper,
    /// Floppies, tapes and other magnetic media.
    MagneticDisk,
    /// CDs, DVDs, Blu-ray discs.
    OpticalDisc,
    /// USB sticks, memory cards.
    Flash,
    /// Hard disks and SSDs.
    HardDisk,
    /// Laptops.
    Laptop,
    /// Other devices (phones, cameras).
    Device,
}

impl CarrierKind {
    /// Every kind.
    pub const ALL: [CarrierKind; 7] = [
        CarrierKind::Paper,
        CarrierKind::MagneticDisk,
        CarrierKind::OpticalDisc,
        CarrierKind::Flash,
        CarrierKind::HardDisk,
        CarrierKind::Laptop,
        CarrierKind::Device,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierKind::Paper => "paper",
            CarrierKind::MagneticDisk => "magnetic_disk",
            CarrierKind::OpticalDisc => "optical_disc",
            CarrierKind::Flash => "flash",
            CarrierKind::HardDisk => "hard_disk",
            CarrierKind::Laptop => "laptop",
            CarrierKind::Device => "device",
        }
    }

    /// Parse a storage or API name.
    pub fn from_name(name: &str) -> Option<CarrierKind> {
        CarrierKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Where a carrier stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CarrierState {
    /// Held by the secrecy office (in a cabinet or the strong room).
    InStorage,
    /// Signed out to a borrower.
    Out,
    /// Whereabouts unknown (查无下落) since `missing_since_ms`.
    Missing,
    /// Archived after year-end collection.
    Archived,
    /// Destroyed (销毁).
    Destroyed,
    /// Handed to another unit, not yet received (移交中).
    InTransfer,
    /// On its way through the confidential courier channel (机要传递中).
    Dispatched,
    /// Declassified (解密): off the secrecy register, its history kept.
    Declassified,
}

impl CarrierState {
    /// Every state.
    pub const ALL: [CarrierState; 8] = [
        CarrierState::InStorage,
        CarrierState::Out,
        CarrierState::Missing,
        CarrierState::Archived,
        CarrierState::Destroyed,
        CarrierState::InTransfer,
        CarrierState::Dispatched,
        CarrierState::Declassified,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            CarrierState::InStorage => "in_storage",
            CarrierState::Out => "out",
            CarrierState::Missing => "missing",
            CarrierState::Archived => "archived",
            CarrierState::Destroyed => "destroyed",
            CarrierState::InTransfer => "in_transfer",
            CarrierState::Dispatched => "dispatched",
            CarrierState::Declassified => "declassified",
        }
    }

    /// Parse a storage or API name.
    pub fn from_name(name: &str) -> Option<CarrierState> {
        CarrierState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Parse a level code (`TS`, `S`, `C`) as stored in `carriers.level`.
pub fn level_from_code(code: &str) -> Option<Level> {
    match ZoneLevel::from_code(code)? {
        ZoneLevel::Classified(level) => Some(level),
        ZoneLevel::Public => None,
    }
}

/// A control number: 1 to 24 characters of `A-Z`, `0-9`, `-`, the form printed on the label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ControlNo(String);

impl ControlNo {
    /// Validate a control number (upper case only: it is the stored form).
    pub fn new(text: &str) -> Result<ControlNo, BarcodeError> {
        CarrierLabel::new(text).map(|_| ControlNo(text.to_owned()))
    }

    /// The control number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The label text printed for it, e.g. `CU2024-0017X`.
    pub fn label(&self) -> String {
        // Validated in `new`, so the label exists.
        CarrierLabel::new(&self.0).map_or_else(|_| String::new(), |l| l.to_string())
    }
}

impl fmt::Display for ControlNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a tag text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The text does not start with `epc:`, `barcode:` or `em:`.
    #[error("a tag is epc:HEX, barcode:TEXT or em:HEX")]
    UnknownScheme,
    /// The EPC hex is malformed or too long.
    #[error("epc: {0}")]
    Epc(EpcError),
    /// The EPC has no digits.
    #[error("epc: empty")]
    EmptyEpc,
    /// The text looks like a carrier label (`CU…`, GS1 data) but is not a valid one.
    #[error("barcode: {0}")]
    Label(BarcodeError),
    /// Raw barcode text that is empty, too long, or not printable ASCII.
    #[error("barcode: 1 to 1024 characters of printable ASCII")]
    BarcodeText,
    /// An EM4100 card id that is not exactly 10 hex digits.
    #[error("em: exactly 10 hex digits")]
    EmCard,
}

/// A tag a reader can report for a carrier, in normalised form (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tag {
    /// A UHF EPC.
    Epc(Epc),
    /// Barcode text, normalised by [`Tag::barcode`].
    Barcode(String),
    /// An EM4100 card id, 10 upper-case hex digits.
    Em(String),
}

fn strip_scheme<'a>(text: &'a str, scheme: &str) -> Option<&'a str> {
    let head = text.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &text[scheme.len()..])
}

impl Tag {
    /// Parse `epc:HEX`, `barcode:TEXT` or `em:HEX` (scheme in any case) into normal form.
    pub fn parse(text: &str) -> Result<Tag, TagError> {
        if let Some(hex) = strip_scheme(text, "epc:") {
            Tag::epc_hex(hex)
        } else if let Some(barcode) = strip_scheme(text, "barcode:") {
            Tag::barcode(barcode)
        } else if let Some(id) = strip_scheme(text, "em:") {
            Tag::em(id)
        } else {
            Err(TagError::UnknownScheme)
        }
    }

    /// An EPC from hex digits (either case).
    pub fn epc_hex(hex: &str) -> Result<Tag, TagError> {
        let epc = Epc::from_hex(hex).map_err(TagError::Epc)?;
        if epc.is_empty() {
            return Err(TagError::EmptyEpc);
        }
        Ok(Tag::Epc(epc))
    }

    /// An EM4100 card id: 10 hex digits, either case.
    pub fn em(id: &str) -> Result<Tag, TagError> {
        if id.len() == 10 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Tag::Em(id.to_ascii_uppercase()))
        } else {
            Err(TagError::EmCard)
        }
    }

    /// Normalise barcode text as typed or scanned (without AIM prefix): a Custos label or a
    /// GS1 (8004) GIAI becomes the text a scanner sends for the printed label; other text is
    /// kept as is, trimmed. Text that starts like a label but fails its check (a wrong check
    /// character) is refused rather than stored as something no scan will ever match.
    pub fn barcode(text: &str) -> Result<Tag, TagError> {
        match CarrierLabel::parse(text) {
            Ok(CarrierLabel::Control(number)) => {
                Ok(Tag::Barcode(CarrierLabel::Control(number).to_string()))
            }
            Ok(CarrierLabel::Giai(giai)) => Ok(Tag::Barcode(format!("8004{}", giai.as_str()))),
            Err(BarcodeError::NotALabel) => {
                let raw = text.trim_ascii();
                let printable = raw.bytes().all(|b| (0x20..=0x7E).contains(&b) || b == 0x1D);
                if raw.is_empty() || raw.len() > MAX_BARCODE_TEXT || !printable {
                    return Err(TagError::BarcodeText);
                }
                Ok(Tag::Barcode(raw.to_owned()))
            }
            Err(e) => Err(TagError::Label(e)),
        }
    }

    /// The GS1 pure-identity URI of an EPC whose header is a known TDS scheme, e.g.
    /// `urn:epc:id:giai:0614141.5678`; `None` for other EPCs and other tags.
    pub fn pure_identity_uri(&self) -> Option<String> {
        match self {
            Tag::Epc(epc) => tds::pure_identity_uri(epc),
            Tag::Barcode(_) | Tag::Em(_) => None,
        }
    }

    /// The control number a Custos label barcode names, if this is one.
    pub fn labelled_control_no(&self) -> Option<String> {
        match self {
            Tag::Barcode(text) => CarrierLabel::parse(text)
                .ok()?
                .control_number()
                .map(|c| c.as_str().to_owned()),
            Tag::Epc(_) | Tag::Em(_) => None,
        }
    }
}

/// The stored form: `epc:HEX`, `barcode:TEXT`, `em:HEX`.
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tag::Epc(epc) => write!(f, "epc:{epc}"),
            Tag::Barcode(text) => write!(f, "barcode:{text}"),
            Tag::Em(id) => write!(f, "em:{id}"),
        }
    }
}

impl FromStr for Tag {
    type Err = TagError;
    fn from_str(s: &str) -> Result<Tag, TagError> {
        Tag::parse(s)
    }
}

/// Why a registration is malformed (HTTP 400; 409 for a repeated tag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierInputError {
    /// The control number breaks the label alphabet or length.
    #[error("control_no: {0}")]
    ControlNo(BarcodeError),
    /// The title is blank, too long or has control characters (the title itself is never
    /// quoted in an error).
    #[error("title must be 1 to 200 printable characters")]
    Title,
    /// The owning unit is blank, too long or has control characters.
    #[error("owner_unit must be 1 to 200 printable characters")]
    OwnerUnit,
    /// A tag is malformed.
    #[error("tags[{index}]: {error}")]
    Tag {
        /// Position in the request's list.
        index: usize,
        /// What is wrong with it.
        error: TagError,
    },
    /// More than [`MAX_TAGS`] tags.
    #[error("at most 16 tags")]
    TooManyTags,
    /// The same tag twice in one request (after normalisation).
    #[error("tags[{index}] repeats an earlier tag")]
    RepeatedTag {
        /// Position of the repeat.
        index: usize,
    },
}

/// Why a well-formed registration breaks a rule (HTTP 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CarrierRuleError {
    /// Top Secret copies are numbered sequentially (顺序号): `copy_no` and `copies` are required.
    #[error("a TS carrier needs copy_no and copies")]
    CopyNumberRequired,
    /// `copy_no` must be 1..=`copies`, and `copies` at least 1.
    #[error("copy_no must be between 1 and copies")]
    CopyNumberOutOfRange,
    /// `home_device` is not a cabinet.
    #[error("home_device must be a cabinet")]
    HomeNotCabinet,
    /// A Custos label barcode tag names another control number.
    #[error("a CU label tag must carry this carrier's control number")]
    LabelMismatch,
    /// The secrecy period (保密期限) is not 1 year to the level's longest
    /// ([`super::secrecy::check_years`]).
    #[error("secrecy_years must be between 1 and the level's longest period (TS 30, S 20, C 10)")]
    SecrecyPeriodOutOfRange,
}

impl CarrierRuleError {
    /// The machine-readable code the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            CarrierRuleError::CopyNumberRequired => "copy_number_required",
            CarrierRuleError::CopyNumberOutOfRange => "copy_number_out_of_range",
            CarrierRuleError::HomeNotCabinet => "home_not_cabinet",
            CarrierRuleError::LabelMismatch => "label_mismatch",
            CarrierRuleError::SecrecyPeriodOutOfRange => "secrecy_period_out_of_range",
        }
    }
}

/// A registration, checked for form and for the rules that need no database. `Debug`
/// redacts the title.
#[derive(Clone, PartialEq, Eq)]
pub struct NewCarrier {
    /// Control number.
    pub control_no: ControlNo,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// Title (sensitive: never logged or audited).
    pub title: String,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Number of copies.
    pub copies: Option<u32>,
    /// Owning unit.
    pub owner_unit: String,
    /// Home cabinet.
    pub home_device: Option<DeviceId>,
    /// Normalised tags, no repeats.
    pub tags: Vec<Tag>,
    /// Its own secrecy period (保密期限) in years; `None`: the level's default.
    pub secrecy_years: Option<u32>,
}

impl fmt::Debug for NewCarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCarrier")
            .field("control_no", &self.control_no)
            .field("kind", &self.kind)
            .field("level", &self.level)
            .field("title", &"<redacted>")
            .field("copy_no", &self.copy_no)
            .field("copies", &self.copies)
            .field("owner_unit", &self.owner_unit)
            .field("home_device", &self.home_device)
            .field("tags", &self.tags)
            .field("secrecy_years", &self.secrecy_years)
            .finish()
    }
}

/// The raw fields of a registration request.
#[derive(Clone)]
pub struct CarrierFields<'a> {
    /// Control number text.
    pub control_no: &'a str,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// Title text.
    pub title: &'a str,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Copies.
    pub copies: Option<u32>,
    /// Owning unit.
    pub owner_unit: &'a str,
    /// Home cabinet id.
    pub home_device: Option<DeviceId>,
    /// Tag texts.
    pub tags: &'a [String],
    /// Secrecy period in years; `None`: the level's default.
    pub secrecy_years: Option<u32>,
}

/// The copy-numbering rule: TS needs `copy_no` and `copies`; whenever given, `copies >= 1`
/// and `1 <= copy_no <= copies`.
pub fn check_copies(
    level: Level,
    copy_no: Option<u32>,
    copies: Option<u32>,
) -> Result<(), CarrierRuleError> {
    if level == Level::TopSecret && (copy_no.is_none() || copies.is_none()) {
        return Err(CarrierRuleError::CopyNumberRequired);
    }
    let in_range = match (copy_no, copies) {
        (Some(n), Some(total)) => (1..=total).contains(&n),
        (Some(n), None) => n >= 1,
        (None, Some(total)) => total >= 1,
        (None, None) => true,
    };
    if in_range {
        Ok(())
    } else {
        Err(CarrierRuleError::CopyNumberOutOfRange)
    }
}

/// A home device must be a cabinet.
pub fn check_home(kind: DeviceKind) -> Result<(), CarrierRuleError> {
    if kind == DeviceKind::Cabinet {
        Ok(())
    } else {
        Err(CarrierRuleError::HomeNotCabinet)
    }
}

/// Form errors first (400), then the rules that need no database (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// Malformed.
    #[error(transparent)]
    Input(CarrierInputError),
    /// Breaks a rule.
    #[error(transparent)]
    Rule(CarrierRuleError),
}

/// Every form problem of a registration's free-text fields, each field checked on its own, in
/// field order: the control number, the title, the owning unit, then the tags (too many, or
/// each malformed or repeated one). With none, the control number and the normalised tags.
pub fn check_texts(
    control_no: &str,
    title: &str,
    owner_unit: &str,
    tags: &[String],
) -> Result<(ControlNo, Vec<Tag>), Vec<CarrierInputError>> {
    let mut errors = Vec::new();
    let control_no = ControlNo::new(control_no)
        .map_err(|e| errors.push(CarrierInputError::ControlNo(e)))
        .ok();
    if !is_valid_label(title) {
        errors.push(CarrierInputError::Title);
    }
    if !is_valid_label(owner_unit) {
        errors.push(CarrierInputError::OwnerUnit);
    }
    let mut parsed: Vec<Tag> = Vec::with_capacity(tags.len().min(MAX_TAGS));
    if tags.len() > MAX_TAGS {
        errors.push(CarrierInputError::TooManyTags);
    } else {
        for (index, text) in tags.iter().enumerate() {
            match Tag::parse(text) {
                Ok(tag) if parsed.contains(&tag) => {
                    errors.push(CarrierInputError::RepeatedTag { index });
                }
                Ok(tag) => parsed.push(tag),
                Err(error) => errors.push(CarrierInputError::Tag { index, error }),
            }
        }
    }
    match control_no {
        Some(control_no) if errors.is_empty() => Ok((control_no, parsed)),
        _ => Err(errors),
    }
}

impl NewCarrier {
    /// Check a registration request: every form problem ([`check_texts`]); or, if there is
    /// none, every rule that needs no database it breaks (copy numbering, a label of another
    /// carrier). The home device's kind is checked by the use case (it needs the device row)
    /// with [`check_home`].
    pub fn check(fields: CarrierFields<'_>) -> Result<NewCarrier, Vec<RegistrationError>> {
        let (control_no, tags) = check_texts(
            fields.control_no,
            fields.title,
            fields.owner_unit,
            fields.tags,
        )
        .map_err(|e| {
            e.into_iter()
                .map(RegistrationError::Input)
                .collect::<Vec<_>>()
        })?;
        let mut rules = Vec::new();
        if let Err(rule) = check_copies(fields.level, fields.copy_no, fields.copies) {
            rules.push(RegistrationError::Rule(rule));
        }
        if tags
            .iter()
            .filter_map(Tag::labelled_control_no)
            .any(|labelled| labelled != control_no.as_str())
        {
            rules.push(RegistrationError::Rule(CarrierRuleError::LabelMismatch));
        }
        if let Some(years) = fields.secrecy_years
            && super::secrecy::check_years(fields.level, years).is_err()
        {
            rules.push(RegistrationError::Rule(
                CarrierRuleError::SecrecyPeriodOutOfRange,
            ));
        }
        if !rules.is_empty() {
            return Err(rules);
        }
        Ok(NewCarrier {
            control_no,
            kind: fields.kind,
            level: fields.level,
            title: fields.title.to_owned(),
            copy_no: fields.copy_no,
            copies: fields.copies,
            owner_unit: fields.owner_unit.to_owned(),
            home_device: fields.home_device,
            tags,
            secrecy_years: fields.secrecy_years,
        })
    }

    /// [`NewCarrier::check`], answering its first problem only.
    pub fn new(fields: CarrierFields<'_>) -> Result<NewCarrier, RegistrationError> {
        NewCarrier::check(fields).map_err(|mut errors| errors.swap_remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From /work/shared/vectors/epc-tds.txt.
    const GIAI_HEX: &str = "3474257BF40000000000162E";
    const GIAI_URI: &str = "urn:epc:id:giai:0614141.5678";
    const SGTIN_HEX: &str = "3074257BF7194E4000001A85";
    const SGTIN_URI: &str = "urn:epc:id:sgtin:0614141.812345.6789";

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn fields<'a>(control_no: &'a str, level: Level, tags: &'a [String]) -> CarrierFields<'a> {
        CarrierFields {
            control_no,
            kind: CarrierKind::Paper,
            level,
            title: "年度计划",
            copy_no: Some(1),
            copies: Some(3),
            owner_unit: "Office 1",
            home_device: None,
            tags,
            secrecy_years: None,
        }
    }

    #[test]
    fn a_registration_may_carry_its_own_secrecy_period_within_its_level() {
        let list = tags(&["epc:3474257BF40000000000162E"]);
        let marked = CarrierFields {
            secrecy_years: Some(10),
            ..fields("A1", Level::Secret, &list)
        };
        assert_eq!(NewCarrier::new(marked).unwrap().secrecy_years, Some(10));
        let unmarked = NewCarrier::new(fields("A1", Level::Secret, &list)).unwrap();
        assert_eq!(unmarked.secrecy_years, None);
        let too_long = CarrierFields {
            secrecy_years: Some(21),
            ..fields("A1", Level::Secret, &list)
        };
        assert_eq!(
            NewCarrier::new(too_long),
            Err(RegistrationError::Rule(
                CarrierRuleError::SecrecyPeriodOutOfRange
            ))
        );
    }

    #[test]
    fn kind_and_state_names_round_trip_and_match_serde() {
        for kind in CarrierKind::ALL {
            assert_eq!(CarrierKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        for state in CarrierState::ALL {
            assert_eq!(CarrierState::from_name(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(CarrierKind::from_name("usb"), None);
        assert_eq!(level_from_code("TS"), Some(Level::TopSecret));
        assert_eq!(level_from_code("public"), None);
    }

    #[test]
    fn epc_tags_are_upper_case_hex_with_their_identity_uri() {
        let tag = Tag::parse(&format!("epc:{}", GIAI_HEX.to_lowercase())).unwrap();
        assert_eq!(tag.to_string(), format!("epc:{GIAI_HEX}"));
        assert_eq!(tag.pure_identity_uri().as_deref(), Some(GIAI_URI));
        let sgtin = Tag::parse(&format!("EPC:{SGTIN_HEX}")).unwrap();
        assert_eq!(sgtin.pure_identity_uri().as_deref(), Some(SGTIN_URI));
        let factory = Tag::parse("epc:E2801160600002084F5D1A3B").unwrap();
        assert_eq!(
            factory.pure_identity_uri(),
            None,
            "unknown header stays raw"
        );
        for bad in [
            "epc:",
            "epc:ABC",
            "epc:XY12",
            &format!("epc:{}", "00".repeat(63)),
        ] {
            assert!(Tag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn em_tags_are_ten_hex_digits() {
        assert_eq!(
            Tag::parse("em:1a00b54e12").unwrap().to_string(),
            "em:1A00B54E12"
        );
        for bad in ["em:1A00B54E1", "em:1A00B54E123", "em:1A00B54E1G"] {
            assert_eq!(Tag::parse(bad), Err(TagError::EmCard), "{bad}");
        }
    }

    #[test]
    fn barcode_tags_normalise_labels_and_keep_other_text() {
        let label = CarrierLabel::new("2024-0017").unwrap().to_string();
        let typed = format!("barcode: {} ", label.to_lowercase());
        let tag = Tag::parse(&typed).unwrap();
        assert_eq!(tag.to_string(), format!("barcode:{label}"));
        assert_eq!(tag.labelled_control_no().as_deref(), Some("2024-0017"));
        // A GS1 GIAI label typed in bracketed form is stored as a scanner sends it.
        let giai = Tag::parse("barcode:(8004)06141415678").unwrap();
        assert_eq!(giai.to_string(), "barcode:800406141415678");
        assert_eq!(
            Tag::parse("barcode:800406141415678").unwrap(),
            giai,
            "scanned and typed forms meet"
        );
        assert_eq!(giai.labelled_control_no(), None);
        let ean = Tag::parse("barcode:4006381333931").unwrap();
        assert_eq!(ean.to_string(), "barcode:4006381333931");
        // A label with a wrong check character is refused, not stored as raw text.
        let mut wrong = label.clone();
        wrong.pop();
        wrong.push(if label.ends_with('0') { '1' } else { '0' });
        assert!(matches!(
            Tag::parse(&format!("barcode:{wrong}")),
            Err(TagError::Label(BarcodeError::CheckCharacter { .. }))
        ));
        for bad in [
            "barcode:",
            "barcode:   ",
            "barcode:caf\u{e9}",
            "barcode:a\tb",
        ] {
            assert_eq!(Tag::parse(bad), Err(TagError::BarcodeText), "{bad:?}");
        }
        assert_eq!(
            Tag::parse(&format!("barcode:{}", "x".repeat(1025))),
            Err(TagError::BarcodeText)
        );
        assert_eq!(Tag::parse("rfid:00"), Err(TagError::UnknownScheme));
    }

    #[test]
    fn copy_numbering_rules() {
        use CarrierRuleError::*;
        assert_eq!(check_copies(Level::TopSecret, Some(2), Some(3)), Ok(()));
        assert_eq!(
            check_copies(Level::TopSecret, None, Some(3)),
            Err(CopyNumberRequired)
        );
        assert_eq!(
            check_copies(Level::TopSecret, Some(1), None),
            Err(CopyNumberRequired)
        );
        assert_eq!(
            check_copies(Level::TopSecret, Some(4), Some(3)),
            Err(CopyNumberOutOfRange)
        );
        assert_eq!(
            check_copies(Level::Secret, Some(0), None),
            Err(CopyNumberOutOfRange)
        );
        assert_eq!(
            check_copies(Level::Secret, None, Some(0)),
            Err(CopyNumberOutOfRange)
        );
        assert_eq!(check_copies(Level::Secret, None, None), Ok(()));
        assert_eq!(check_copies(Level::Confidential, Some(5), None), Ok(()));
    }

    #[test]
    fn only_cabinets_are_homes() {
        assert_eq!(check_home(DeviceKind::Cabinet), Ok(()));
        assert_eq!(
            check_home(DeviceKind::Gate),
            Err(CarrierRuleError::HomeNotCabinet)
        );
        assert_eq!(
            check_home(DeviceKind::Desk),
            Err(CarrierRuleError::HomeNotCabinet)
        );
    }

    #[test]
    fn registration_checks_form_then_rules() {
        let list = tags(&[&format!("epc:{GIAI_HEX}"), "em:1A00B54E12"]);
        let ok = NewCarrier::new(fields("2024-0017", Level::TopSecret, &list)).unwrap();
        assert_eq!(
            ok.control_no.label(),
            CarrierLabel::new("2024-0017").unwrap().to_string()
        );
        assert_eq!(ok.tags.len(), 2);

        let input = |r: Result<NewCarrier, RegistrationError>| match r {
            Err(RegistrationError::Input(e)) => e,
            other => panic!("expected an input error, got {other:?}"),
        };
        assert!(matches!(
            input(NewCarrier::new(fields("2024/17", Level::Secret, &list))),
            CarrierInputError::ControlNo(_)
        ));
        assert!(matches!(
            input(NewCarrier::new(fields("abc", Level::Secret, &list))),
            CarrierInputError::ControlNo(_)
        ));
        assert!(matches!(
            input(NewCarrier::new(fields(
                &"A".repeat(25),
                Level::Secret,
                &list
            ))),
            CarrierInputError::ControlNo(_)
        ));
        let mut blank = fields("A1", Level::Secret, &list);
        blank.title = " ";
        assert_eq!(input(NewCarrier::new(blank)), CarrierInputError::Title);
        let repeated = tags(&[
            &format!("epc:{GIAI_HEX}"),
            &format!("epc:{}", GIAI_HEX.to_lowercase()),
        ]);
        assert_eq!(
            input(NewCarrier::new(fields("A1", Level::Secret, &repeated))),
            CarrierInputError::RepeatedTag { index: 1 }
        );
        let bad_tag = tags(&["em:xyz"]);
        assert!(matches!(
            input(NewCarrier::new(fields("A1", Level::Secret, &bad_tag))),
            CarrierInputError::Tag { index: 0, .. }
        ));
        let many: Vec<String> = (0..17).map(|i| format!("em:{i:010X}")).collect();
        assert_eq!(
            input(NewCarrier::new(fields("A1", Level::Secret, &many))),
            CarrierInputError::TooManyTags
        );

        let mut uncounted = fields("A1", Level::TopSecret, &list);
        uncounted.copy_no = None;
        assert_eq!(
            NewCarrier::new(uncounted),
            Err(RegistrationError::Rule(
                CarrierRuleError::CopyNumberRequired
            ))
        );
        let other_label = tags(&[&format!("barcode:{}", CarrierLabel::new("B2").unwrap())]);
        assert_eq!(
            NewCarrier::new(fields("A1", Level::Secret, &other_label)),
            Err(RegistrationError::Rule(CarrierRuleError::LabelMismatch))
        );
        let own_label = tags(&[&format!("barcode:{}", CarrierLabel::new("A1").unwrap())]);
        assert!(NewCarrier::new(fields("A1", Level::Secret, &own_label)).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_title() {
        let list = tags(&["em:1A00B54E12"]);
        let carrier = NewCarrier::new(fields("A1", Level::Secret, &list)).unwrap();
        let shown = format!("{carrier:?}");
        assert!(!shown.contains("年度计划"), "{shown}");
        assert!(
            shown.contains("A1") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
