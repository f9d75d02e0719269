//! The register of carriers and their tags, and each carrier's history: what the carrier use
//! cases ([`crate::service::carriers`]) read and write.
//!
//! Plain types and one trait, [`CarrierRows`]; the SQLite implementation is in
//! [`super::sqlite`].
//!
//! # Titles
//! A carrier's title can itself be classified. It is read by exactly one method
//! ([`CarrierRows::carrier_title`]) and only for [`Carrier`], the view of custodians and
//! security officers; the register search of those same roles matches title words inside the
//! database without selecting the title, and never sorts by it (a cursor would carry it).
//! Every other view ([`CarrierSummary`], what a guard sees) is built from
//! reads that never select it, and no audit entry, error or log line carries it.
//!
//! # Tags
//! `carrier_tags.tag` holds the normalised form of [`Tag`]. [`CarrierRows::carrier_for_tag`]
//! is the one lookup the desk and the guard use: a tag row, or failing that a Custos label
//! barcode (`CU…`), which always names its carrier through the control number even when
//! nobody registered the label as a tag.

use serde::Serialize;

use super::StoreError;
use crate::domain::carrier::{CarrierKind, CarrierState, NewCarrier, Tag};
use crate::domain::ids::{CarrierId, DeviceId, PersonId, SignoutId};
use crate::domain::level::Level;
use crate::domain::page::{PageRequest, SortKey, SortValue};
use crate::domain::signout::SignoutState;
use crate::domain::time::Timestamp;

/// The person holding a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Holder {
    /// Person id.
    pub id: PersonId,
    /// Name.
    pub name: String,
}

/// Where and when a reader last saw the carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LastSeen {
    /// The device.
    pub device_id: String,
    /// When.
    pub at: Timestamp,
}

/// The live sign-out claiming a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignoutBrief {
    /// Sign-out id.
    pub id: SignoutId,
    /// Its state.
    pub state: SignoutState,
    /// Whether the carrier may leave the secure area.
    pub may_leave: bool,
    /// Due back.
    pub due_at: Timestamp,
}

/// A tag as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TagView {
    /// Normalised tag, `epc:HEX`, `barcode:TEXT` or `em:HEX`.
    pub tag: String,
    /// For an EPC with a known TDS header: its GS1 pure-identity URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl TagView {
    /// The view of a stored (normalised) tag.
    pub fn from_stored(tag: String) -> TagView {
        let uri = Tag::parse(&tag).ok().and_then(|t| t.pure_identity_uri());
        TagView { tag, uri }
    }
}

/// A carrier without its title: what a guard may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CarrierSummary {
    /// Id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// The label text printed for the control number (`CU…`).
    pub label: String,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Number of copies.
    pub copies: Option<u32>,
    /// Owning unit.
    pub owner_unit: String,
    /// Home cabinet.
    pub home_device: Option<String>,
    /// State.
    pub state: CarrierState,
    /// Who holds it (while out).
    pub holder: Option<Holder>,
    /// Missing since.
    pub missing_since: Option<Timestamp>,
    /// Last sighting.
    pub last_seen: Option<LastSeen>,
    /// The live sign-out claiming it.
    pub signout: Option<SignoutBrief>,
    /// Tags.
    pub tags: Vec<TagView>,
    /// Registered at.
    pub created_at: Timestamp,
    /// For a copy (复制件): the carrier it was copied from (`GET /carriers/{id}/lineage` has
    /// the whole chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_id: Option<CarrierId>,
    /// Its secrecy period (保密期限) in years: its own, or the level's default (TS 30, S 20,
    /// C 10) when none was set; the label prints it as 机密★10年.
    #[schema(minimum = 1, maximum = 30)]
    pub secrecy_years: u32,
    /// Out for repair (维修中): an open repair holds it (its `state` stays `in_storage`: the
    /// custodian still answers for it), and nothing moves it until the repair returns.
    pub in_repair: bool,
}

/// A carrier with its title: for custodians and security officers only. `Debug` redacts the
/// title, so a stray log line cannot carry it.
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Carrier {
    /// Everything but the title.
    #[serde(flatten)]
    pub summary: CarrierSummary,
    /// The title.
    pub title: String,
}

impl std::fmt::Debug for Carrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carrier")
            .field("summary", &self.summary)
            .field("title", &"<redacted>")
            .finish()
    }
}

/// Filters of `GET /carriers`.
#[derive(Debug, Clone, Default)]
pub struct CarrierFilter {
    /// Only carriers in this state.
    pub state: Option<CarrierState>,
    /// Search words (split at white space, at most eight): each must be a substring (any
    /// case) of the control number, the title, the owning unit, the holder's name or
    /// department, or a tag.
    pub q: Option<String>,
}

/// The keys the register may be sorted by (`id` is the order of registration). Not the
/// title: a cursor carries the sort value of the last item.
pub const CARRIER_SORT_KEYS: &[SortKey] = &[
    SortKey::int("id"),
    SortKey::text("control_no"),
    SortKey::int("level"),
    SortKey::text("state"),
    SortKey::text("holder"),
    SortKey::text("owner_unit"),
];

/// One entry of a carrier's history (`GET /carriers/{id}/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HistoryItem {
    /// Passed a gate.
    Passage {
        /// When.
        at: Timestamp,
        /// The gate.
        device_id: String,
        /// `in` or `out` of the secure area.
        direction: Option<String>,
    },
    /// Reached the far side of a gate in a passage (the `passage` entry just before) and went
    /// back where it came from: it did not pass.
    TurnedBack {
        /// When it was back.
        at: Timestamp,
        /// The gate.
        device_id: String,
        /// The direction of the passage it did not complete: `in` or `out`.
        direction: Option<String>,
    },
    /// Seen arriving in or leaving a cabinet.
    Cabinet {
        /// When.
        at: Timestamp,
        /// The cabinet.
        device_id: String,
        /// `in` (put in: arrived or returned) or `out` (taken out); none when only seen.
        direction: Option<String>,
    },
    /// Scanned at a desk or handheld.
    Scan {
        /// When.
        at: Timestamp,
        /// The desk.
        device_id: String,
    },
    /// A step of a sign-out it was on.
    Signout {
        /// When.
        at: Timestamp,
        /// The sign-out.
        signout_id: SignoutId,
        /// `requested`, `approved`, `issued`, `returned` or `cancelled`.
        event: &'static str,
        /// Who: `user:NAME` or `device:ID` for returns, the approver's username for approvals.
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// An alert about it was raised.
    Alert {
        /// When.
        at: Timestamp,
        /// The alert.
        alert_id: String,
        /// Its kind.
        kind: String,
        /// Its state now.
        state: String,
    },
}

/// A carrier as a cabinet count sees it (no title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShelfCarrier {
    /// Id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// State on the register.
    pub state: CarrierState,
    /// Its home cabinet.
    pub home_device: Option<String>,
    /// For a reported carrier: since when the cabinet has reported it.
    pub since: Option<Timestamp>,
}

/// Reading and writing carriers.
pub trait CarrierRows {
    /// Id, control number, level and kind of each carrier, for audit entries (never the
    /// title); an unknown id is `UnknownReference { what: "carrier" }`.
    fn carrier_audit_names(
        &mut self,
        ids: &[CarrierId],
    ) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Carrier `id` without its title, with its tags; `NotFound` if there is none.
    fn carrier_summary(&mut self, id: CarrierId) -> Result<CarrierSummary, StoreError>;
    /// The title of carrier `id`: the only read of it; `NotFound` if there is none.
    fn carrier_title(&mut self, id: CarrierId) -> Result<String, StoreError>;
    /// The carriers matching `filter`, by id, without titles, with their tags.
    fn carrier_summaries(
        &mut self,
        filter: &CarrierFilter,
    ) -> Result<Vec<CarrierSummary>, StoreError>;
    /// One page of the carriers matching `filter`, without titles, with their tags: in the
    /// order of `page` (key of [`CARRIER_SORT_KEYS`], then id) after its cursor, at most
    /// `page.limit + 1` rows (one more than asked tells that more remain), each with its sort
    /// value and id.
    fn carrier_page(
        &mut self,
        filter: &CarrierFilter,
        page: &PageRequest,
    ) -> Result<Vec<(CarrierSummary, SortValue, i64)>, StoreError>;
    /// The carrier a reported tag belongs to: its tag row, or for a Custos label barcode
    /// (`barcode:CU…`) that is not registered as a tag, the carrier with that control number.
    fn carrier_for_tag(&mut self, tag: &Tag) -> Result<Option<CarrierId>, StoreError>;
    /// Write a new carrier `in_storage` and its tags; its id. A taken control number or tag
    /// is `Duplicate` (`control_no`, `tag`); an unknown home device `UnknownReference`.
    fn insert_carrier(
        &mut self,
        carrier: &NewCarrier,
        at: Timestamp,
    ) -> Result<CarrierId, StoreError>;
    /// Set carrier `id`'s own secrecy period (保密期限), in years; `NotFound` if there is none.
    fn set_secrecy_years(&mut self, id: CarrierId, years: u32) -> Result<(), StoreError>;
    /// Carrier `id`'s history, oldest first (equal instants in the order: sign-out steps,
    /// reader events, alerts); `NotFound` if there is no such carrier.
    fn carrier_history(&mut self, id: CarrierId) -> Result<Vec<HistoryItem>, StoreError>;
    /// The carriers whose home is `cabinet` and that are in storage, by control number.
    fn carriers_at_home(&mut self, cabinet: &DeviceId) -> Result<Vec<ShelfCarrier>, StoreError>;
    /// The carriers `cabinet` last reported present, with since when, by control number.
    fn carriers_reported(&mut self, cabinet: &DeviceId) -> Result<Vec<ShelfCarrier>, StoreError>;
    /// The id the next carrier will most likely get: one above the highest so far.
    fn next_carrier_number(&mut self) -> Result<u64, StoreError>;
}
