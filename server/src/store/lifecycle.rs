//! Lifecycle rows: corrections of the register with their before/after history, missing and
//! found carriers with their incident records, and the overdue loans the sweep escalates to
//! missing. What [`crate::service::lifecycle`] reads and writes.
//!
//! # Titles
//! A correction's `before`/`after` may hold the old and new title: they are read only for the
//! carrier page and `GET /carriers/{id}/corrections` (custodians, security officers); `Debug`
//! redacts them, and the audit entry of a correction never carries a title.

use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use crate::domain::carrier::CarrierState;
use crate::domain::ids::{CarrierId, SignoutId};
use crate::domain::level::Level;
use crate::domain::lifecycle::{Correctable, MissingCause};
use crate::domain::time::Timestamp;

/// One correction of a carrier's register entry, as the history shows it.
#[derive(Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CorrectionRecord {
    /// Id.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who (username).
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The changed fields before.
    #[schema(value_type = Object)]
    pub before: Value,
    /// The changed fields after.
    #[schema(value_type = Object)]
    pub after: Value,
}

impl std::fmt::Debug for CorrectionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrectionRecord")
            .field("id", &self.id)
            .field("at", &self.at)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// A new incident record: a carrier became missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    /// The carrier.
    pub carrier: CarrierId,
    /// Why it is missing.
    pub cause: MissingCause,
    /// Missing since (Unix ms): the start of the leak clock.
    pub missing_since_ms: i64,
    /// Who reported it (`user:NAME` or `@sweep`).
    pub reported_by: String,
    /// When it was recorded (Unix ms).
    pub reported_at_ms: i64,
    /// What happened (never a title).
    pub what_happened: String,
    /// The loan it was on, if any.
    pub signout: Option<SignoutId>,
    /// The alert that led to it, if any.
    pub alert: Option<i64>,
}

/// An incident record (泄密报告 material): what happened, who was told and when, and how it
/// ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Incident {
    /// Id.
    pub id: i64,
    /// The carrier.
    pub carrier_id: CarrierId,
    /// Its control number.
    pub control_no: String,
    /// Its level (the leak deadline depends on it).
    pub level: Level,
    /// Why it went missing.
    pub cause: MissingCause,
    /// Missing since.
    pub missing_since: Timestamp,
    /// Who reported it.
    pub reported_by: String,
    /// When it was recorded.
    pub reported_at: Timestamp,
    /// What happened.
    pub what_happened: String,
    /// The loan it was on.
    pub signout_id: Option<SignoutId>,
    /// The alert that led to it.
    pub alert_id: Option<i64>,
    /// Who was told (the secrecy bureau, the unit's leader...).
    pub told: Option<String>,
    /// When they were told.
    pub told_at: Option<Timestamp>,
    /// Who recorded that they were told.
    pub told_recorded_by: Option<String>,
    /// When the carrier was found.
    pub found_at: Option<Timestamp>,
    /// Who found it (`user:NAME` or `device:ID`).
    pub found_by: Option<String>,
    /// How it was found.
    pub found_note: Option<String>,
}

/// A carrier outstanding on a loan past its due time that has not yet been escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverdueCarrier {
    /// The loan.
    pub signout: SignoutId,
    /// The carrier.
    pub carrier: CarrierId,
    /// Its level.
    pub level: Level,
    /// The loan's due time (Unix ms).
    pub due_at_ms: i64,
}

/// Reading and writing lifecycle rows.
pub trait LifecycleRows {
    /// Replace the correctable fields of carrier `id` (title, owning unit, home cabinet, copy
    /// number, tags). A tag of another carrier is `Duplicate { what: "tag" }`; an unknown home
    /// device `UnknownReference { what: "home_device" }`.
    fn apply_correction(&mut self, id: CarrierId, after: &Correctable) -> Result<(), StoreError>;
    /// Record a correction; its id.
    fn insert_correction(
        &mut self,
        id: CarrierId,
        at: Timestamp,
        actor: &str,
        reason: &str,
        before: &Value,
        after: &Value,
    ) -> Result<i64, StoreError>;
    /// Carrier `id`'s corrections, oldest first.
    fn corrections(&mut self, id: CarrierId) -> Result<Vec<CorrectionRecord>, StoreError>;
    /// A missing carrier is found: `state` again, `missing_since` cleared. Whether it was
    /// missing.
    fn set_found(&mut self, id: CarrierId, state: CarrierState) -> Result<bool, StoreError>;
    /// Open an incident record; its id.
    fn open_incident(&mut self, new: &NewIncident) -> Result<i64, StoreError>;
    /// Close every open incident of `carrier`: found at `at_ms` by `by`, with `note`.
    fn close_incidents(
        &mut self,
        carrier: CarrierId,
        at_ms: i64,
        by: &str,
        note: &str,
    ) -> Result<(), StoreError>;
    /// Carrier `id`'s incidents, newest first.
    fn incidents(&mut self, id: CarrierId) -> Result<Vec<Incident>, StoreError>;
    /// One incident.
    fn incident(&mut self, id: i64) -> Result<Option<Incident>, StoreError>;
    /// Record who was told of incident `id`, when, and who recorded it.
    fn set_incident_told(
        &mut self,
        id: i64,
        told: &str,
        told_at_ms: i64,
        by: &str,
    ) -> Result<(), StoreError>;
    /// Carriers outstanding on loans that are out and were due at or before `due_by_ms`, in
    /// state `out`, with no overdue incident for that loan yet; by due time.
    fn overdue_carriers(&mut self, due_by_ms: i64) -> Result<Vec<OverdueCarrier>, StoreError>;
    /// The due time of sign-out `id` (Unix ms); `NotFound` if there is none.
    fn signout_due_ms(&mut self, id: SignoutId) -> Result<i64, StoreError>;
}
