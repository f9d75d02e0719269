//! Register changes carried out from approved requests (issue #10 A): copies (new carriers
//! with their lineage), reclassification, destruction (state, retired tags, witnesses).
//! What the use cases in [`crate::service::copies`], [`crate::service::reclassifications`]
//! and [`crate::service::destructions`] read and write.

use serde::Serialize;

use super::StoreError;
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::destruction::Witness;
use crate::domain::ids::{CarrierId, PersonId};
use crate::domain::level::Level;
use crate::domain::time::Timestamp;

/// A carrier as the change rules see it (no title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierFacts {
    /// The carrier.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// State.
    pub state: CarrierState,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// What it was copied from.
    pub original_id: Option<CarrierId>,
}

/// A carrier in a lineage, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineageCarrier {
    /// Carrier id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Copy number.
    pub copy_no: Option<u32>,
    /// Level.
    pub level: Level,
    /// State.
    pub state: CarrierState,
}

/// Where a carrier comes from and what was copied from it (`GET /carriers/{id}/lineage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lineage {
    /// The carrier it was copied from, if it is a copy.
    pub original: Option<LineageCarrier>,
    /// The first original of the chain (itself if it is not a copy).
    pub root: LineageCarrier,
    /// The copies made from it directly.
    pub copies: Vec<LineageCarrier>,
}

/// Reading and writing register changes.
pub trait ChangeRows {
    /// The facts of each carrier, in the order asked; an unknown id is
    /// `UnknownReference { what: "carrier" }`.
    fn carrier_facts(&mut self, ids: &[CarrierId]) -> Result<Vec<CarrierFacts>, StoreError>;
    /// The first original of `id`'s chain of copies (itself if it is not a copy).
    fn lineage_root(&mut self, id: CarrierId) -> Result<CarrierId, StoreError>;
    /// The copy numbers of the series of `root`: itself and every copy of a copy of it.
    fn series_copy_nos(&mut self, root: CarrierId) -> Result<Vec<Option<u32>>, StoreError>;
    /// Register a copy of `original` (its kind, level, title, owner unit and home), in
    /// storage, with `copy_no` and `control_no`; its id. A taken control number is
    /// `Duplicate { what: "control_no" }`.
    fn insert_copy(
        &mut self,
        original: CarrierId,
        copy_no: u32,
        control_no: &str,
        at: Timestamp,
    ) -> Result<CarrierId, StoreError>;
    /// Set a carrier's level and state.
    fn set_level_and_state(
        &mut self,
        id: CarrierId,
        level: Level,
        state: CarrierState,
    ) -> Result<(), StoreError>;
    /// Retire every tag of `id` (kept on record; a read of one is still recognised).
    fn retire_tags(&mut self, id: CarrierId, at: Timestamp) -> Result<(), StoreError>;
    /// A witness: the person and whether an enabled account of theirs is a security
    /// officer; `UnknownReference { what: "witness" }` for an unknown person.
    fn witness(&mut self, person: PersonId) -> Result<Witness, StoreError>;
    /// The lineage of `id`; `NotFound` if there is no such carrier.
    fn lineage(&mut self, id: CarrierId) -> Result<Lineage, StoreError>;
}
