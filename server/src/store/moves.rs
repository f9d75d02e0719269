//! Stocktakes, year-end collections and retention: what the use cases of
//! [`crate::service::moves`] read and write.
//!
//! Plain types and one trait, [`MoveRows`]; the SQLite implementation is in [`super::sqlite`].
//! No read here selects a carrier's title: stocktakes and collections show carriers by control
//! number and level only.

use serde::Serialize;

use super::StoreError;
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::ids::{
    CarrierId, CollectionId, DeviceId, PersonId, RepairId, RequestId, SignoutId, StocktakeId,
    UserId,
};
use crate::domain::level::Level;
use crate::domain::moves::{CountedScan, Outcome, Resolution, ScopeKind};
use crate::domain::repair::{MediaHandling, RepairMode};
use crate::domain::time::{Date, Timestamp};
use crate::store::policy::AllowedRow;

/// A stocktake as opened: what it counts and where its desk reads come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStocktake {
    /// What kind of scope.
    pub scope_kind: ScopeKind,
    /// The cabinet id, zone id or person id counted.
    pub scope_ref: String,
    /// A desk whose scans (through the desk daemon) count for this stocktake while it is open.
    pub desk_device: Option<DeviceId>,
}

/// A stocktake's head row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StocktakeHead {
    /// Id.
    pub id: StocktakeId,
    /// `device`, `zone` or `custodian`.
    pub scope_kind: ScopeKind,
    /// The cabinet id, zone id or person id counted.
    pub scope_ref: String,
    /// The desk whose reads count, if any.
    pub desk_device: Option<DeviceId>,
    /// Who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: Timestamp,
    /// Who closed and signed it.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<Timestamp>,
}

/// A carrier as a stocktake, a collection or the retention review shows it (no title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CarrierLine {
    /// Id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Level.
    pub level: Level,
    /// State now.
    pub state: CarrierState,
    /// Owning unit.
    pub owner_unit: String,
}

/// How a discrepancy was settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ResolutionRow {
    /// The carrier.
    pub carrier_id: CarrierId,
    /// `missing` or `correction`.
    pub resolution: Resolution,
    /// Why.
    pub note: String,
    /// Who.
    pub resolved_by: String,
    /// When.
    pub resolved_at: Timestamp,
}

/// A carrier on loan, as a collection calls it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    /// The carrier.
    pub carrier_id: CarrierId,
    /// The sign-out it is out on.
    pub signout_id: Option<SignoutId>,
    /// Its holder.
    pub holder: Option<PersonId>,
    /// The holder's department (or the carrier's owning unit when nobody is named).
    pub department: String,
}

/// A collection's head row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionHead {
    /// Id.
    pub id: CollectionId,
    /// The year collected.
    pub year: i64,
    /// Who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: Timestamp,
}

/// One carrier a collection called in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CollectionItem {
    /// The carrier.
    pub carrier: CarrierLine,
    /// The sign-out it was on.
    pub signout_id: Option<SignoutId>,
    /// Its holder's id.
    pub holder_id: Option<PersonId>,
    /// Its holder's name.
    pub holder_name: Option<String>,
    /// The holder's department.
    pub department: String,
    /// How it was closed.
    pub outcome: Option<Outcome>,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When.
    pub closed_at: Option<Timestamp>,
}

/// A carrier's retention fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RetentionLine {
    /// The carrier.
    #[serde(flatten)]
    pub carrier: CarrierLine,
    /// Kept until (保管期限).
    pub retention_until: Option<Date>,
    /// Distribution scope (发放范围).
    pub distribution_scope: Option<String>,
}

/// A step of carrying out a transfer or dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StepRow {
    /// `handed_over`, `received`, `sent` or `delivered`.
    pub step: String,
    /// The account that recorded it.
    pub by_user: UserId,
    /// Its login name.
    pub by_username: String,
    /// The person the account belongs to.
    pub by_person: Option<PersonId>,
    /// When.
    pub at: Timestamp,
    /// A note (who received a dispatch).
    pub note: Option<String>,
}

/// A repair as recorded when the carrier goes (checked by [`crate::domain::repair`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRepair {
    /// The carrier.
    pub carrier_id: CarrierId,
    /// The repairer (a firm or a person).
    pub repairer: String,
    /// The repairer's qualification certificate number (资质证书编号).
    pub qualification_no: String,
    /// The last day that qualification is valid.
    pub qualified_until: Date,
    /// On site or by dispatch.
    pub mode: RepairMode,
    /// Who escorts the repairer on site.
    pub escort: Option<String>,
    /// What became of the storage media.
    pub media: MediaHandling,
    /// Which media were removed and where they are kept.
    pub media_note: Option<String>,
    /// Why it goes for repair.
    pub reason: String,
}

/// A repair as shown: the carrier, to whom and how, its media, and whether it is back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RepairRow {
    /// Id.
    pub id: RepairId,
    /// The carrier (no title).
    pub carrier: CarrierLine,
    /// The repairer.
    pub repairer: String,
    /// The repairer's qualification certificate number.
    pub qualification_no: String,
    /// The last day that qualification is valid.
    pub qualified_until: Date,
    /// `on_site` or `dispatch`.
    pub mode: RepairMode,
    /// The escort on site.
    pub escort: Option<String>,
    /// `removed_and_kept` or `repaired_on_site`.
    pub media: MediaHandling,
    /// Which media were removed and where they are kept.
    pub media_note: Option<String>,
    /// Why.
    pub reason: String,
    /// Who sent it.
    pub sent_by: String,
    /// When.
    pub sent_at: Timestamp,
    /// Who recorded its return.
    pub returned_by: Option<String>,
    /// When.
    pub returned_at: Option<Timestamp>,
    /// What was found on return (media put back, seals checked).
    pub return_note: Option<String>,
}

/// Reading and writing stocktakes, collections and retention.
pub trait MoveRows {
    /// The carriers a new stocktake of this scope expects: for a cabinet, those at home there
    /// and in storage; for a zone, those in storage whose home cabinet is in it (neither
    /// counts a carrier out for repair: it is away with the open repair as its record); for a person,
    /// those on loan to them. An unknown cabinet, zone or person is `UnknownReference`.
    fn stocktake_scope(
        &mut self,
        kind: ScopeKind,
        scope_ref: &str,
    ) -> Result<Vec<CarrierId>, StoreError>;
    /// Write a new stocktake and what it expects; its id.
    fn insert_stocktake(
        &mut self,
        new: &NewStocktake,
        expected: &[CarrierId],
        by: &str,
        at: Timestamp,
    ) -> Result<StocktakeId, StoreError>;
    /// Stocktake `id`'s head; `NotFound` if there is none.
    fn stocktake_head(&mut self, id: StocktakeId) -> Result<StocktakeHead, StoreError>;
    /// Every stocktake, newest first.
    fn stocktakes(&mut self) -> Result<Vec<StocktakeHead>, StoreError>;
    /// The carriers stocktake `id` expected, by id.
    fn stocktake_expected(&mut self, id: StocktakeId) -> Result<Vec<CarrierLine>, StoreError>;
    /// Record a scan; a tag scanned before in the same stocktake is kept once.
    fn insert_stocktake_scan(
        &mut self,
        id: StocktakeId,
        scan: &CountedScan,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The scans of stocktake `id`, in the order recorded.
    fn stocktake_scans(&mut self, id: StocktakeId) -> Result<Vec<CountedScan>, StoreError>;
    /// The carriers desk `device` scanned from `since` to `until` (inclusive), each named by
    /// its first tag.
    fn desk_scans(
        &mut self,
        device: &DeviceId,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<CountedScan>, StoreError>;
    /// Close and sign stocktake `id`.
    fn close_stocktake(
        &mut self,
        id: StocktakeId,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// How stocktake `id`'s discrepancies were settled so far.
    fn stocktake_resolutions(&mut self, id: StocktakeId) -> Result<Vec<ResolutionRow>, StoreError>;
    /// Record how a discrepancy was settled.
    fn insert_stocktake_resolution(
        &mut self,
        id: StocktakeId,
        row: &ResolutionRow,
    ) -> Result<(), StoreError>;
    /// A carrier as the move pages show it; `NotFound` if there is none.
    fn carrier_line(&mut self, id: CarrierId) -> Result<CarrierLine, StoreError>;
    /// Set a carrier's state (archiving after a collection); nothing else changes.
    fn set_carrier_state(&mut self, id: CarrierId, state: CarrierState) -> Result<(), StoreError>;

    /// Every carrier on loan now, with its sign-out and holder's department.
    fn loans(&mut self) -> Result<Vec<Loan>, StoreError>;
    /// Write a new collection and the loans it calls in; a year collected before is
    /// `Duplicate { what: "collection year" }`.
    fn insert_collection(
        &mut self,
        year: i64,
        loans: &[Loan],
        by: &str,
        at: Timestamp,
    ) -> Result<CollectionId, StoreError>;
    /// Collection `id`'s head; `NotFound` if there is none.
    fn collection_head(&mut self, id: CollectionId) -> Result<CollectionHead, StoreError>;
    /// Every collection, newest year first.
    fn collections(&mut self) -> Result<Vec<CollectionHead>, StoreError>;
    /// The carriers collection `id` called in, by department and control number.
    fn collection_items(&mut self, id: CollectionId) -> Result<Vec<CollectionItem>, StoreError>;
    /// Record how a called-in carrier was closed.
    fn close_collection_item(
        &mut self,
        id: CollectionId,
        carrier: CarrierId,
        outcome: Outcome,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Carrier `id`'s retention fields; `NotFound` if there is none.
    fn retention(&mut self, id: CarrierId) -> Result<RetentionLine, StoreError>;
    /// Set carrier `id`'s retention date and distribution scope.
    fn set_retention(
        &mut self,
        id: CarrierId,
        until: Option<Date>,
        scope: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Carriers whose retention date is before `today` and that are neither archived nor
    /// destroyed, oldest date first.
    fn retention_due(&mut self, today: Date) -> Result<Vec<RetentionLine>, StoreError>;

    /// The steps recorded for request `id`, in order.
    fn request_steps(&mut self, id: RequestId) -> Result<Vec<StepRow>, StoreError>;
    /// Record a step of request `id` (a repeat is `Duplicate { what: "step" }`).
    fn insert_request_step(
        &mut self,
        id: RequestId,
        step: &str,
        by: UserId,
        note: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The carriers of a unit that are still kept (not archived, destroyed or declassified).
    fn unit_carriers(&mut self, unit: &str) -> Result<Vec<CarrierLine>, StoreError>;
    /// Set a carrier's state and its dispatch window (`None` clears it).
    fn set_moving(
        &mut self,
        id: CarrierId,
        state: CarrierState,
        dispatch_until_ms: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Set a carrier's state and owning unit (a transfer received).
    fn set_custody(
        &mut self,
        id: CarrierId,
        state: CarrierState,
        owner_unit: &str,
    ) -> Result<(), StoreError>;
    /// A dispatched carrier's window end (Unix ms), if it is dispatched.
    fn dispatch_window(&mut self, id: CarrierId) -> Result<Option<i64>, StoreError>;
    /// Every EPC tag of a dispatched carrier whose window ends after `now_ms`, as gate policy
    /// entries (no badges), by tag.
    fn dispatch_allowed(&mut self, now_ms: i64) -> Result<Vec<AllowedRow>, StoreError>;

    /// Carrier `id`'s kind; `NotFound` if there is none.
    fn carrier_kind(&mut self, id: CarrierId) -> Result<CarrierKind, StoreError>;
    /// The open repair of carrier `id`, if any.
    fn open_repair(&mut self, id: CarrierId) -> Result<Option<RepairId>, StoreError>;
    /// Those of `ids` that have an open repair (维修中), in the order given.
    fn carriers_in_repair(&mut self, ids: &[CarrierId]) -> Result<Vec<CarrierId>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            if self.open_repair(*id)?.is_some() {
                out.push(*id);
            }
        }
        Ok(out)
    }
    /// Write a new repair; its id.
    fn insert_repair(
        &mut self,
        new: &NewRepair,
        by: &str,
        at: Timestamp,
    ) -> Result<RepairId, StoreError>;
    /// Repair `id`; `NotFound` if there is none.
    fn repair(&mut self, id: RepairId) -> Result<RepairRow, StoreError>;
    /// Every repair, open ones first, newest first.
    fn repairs(&mut self) -> Result<Vec<RepairRow>, StoreError>;
    /// Record repair `id` as returned.
    fn close_repair(
        &mut self,
        id: RepairId,
        note: &str,
        by: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}
