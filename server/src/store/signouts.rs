//! Sign-out rows: what the sign-out use cases ([`crate::service::signouts`]) read and write.
//!
//! Plain types and one trait, [`SignoutRows`]; the SQLite implementation is in
//! [`super::sqlite`]. Every method is one small read or write: which facts to load, which rule
//! to apply and what to write is the use case's business.

use serde::Serialize;

use super::StoreError;
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::ids::{CarrierId, DeviceId, PersonId, SignoutId, UserId};
use crate::domain::level::Level;
use crate::domain::signout::{Borrower, CarrierStanding, Party, SignoutState};
use crate::domain::time::Timestamp;

/// A sign-out request as written: its carriers are distinct and 1 to [`MAX_CARRIERS`] of
/// them, its purpose a label ([`crate::service::signouts::request`] checks).
///
/// [`MAX_CARRIERS`]: crate::domain::signout::MAX_CARRIERS
#[derive(Debug, Clone)]
pub struct NewSignout {
    /// The carriers, no repeats, 1..=100.
    pub carrier_ids: Vec<CarrierId>,
    /// Who will hold them.
    pub borrower: PersonId,
    /// Why.
    pub purpose: String,
    /// Due back.
    pub due_at: Timestamp,
    /// Whether the carriers may leave the secure area (外带).
    pub may_leave: bool,
    /// Sent as "needs override" (the rules would refuse the issue; the custodian still wants
    /// it): the custodian's note, a label. Only approvals with a written override reason
    /// approve such a sign-out.
    pub override_note: Option<String>,
}

/// An account as shown on a sign-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserRef {
    /// Account id.
    pub id: UserId,
    /// Login name.
    pub username: String,
}

/// A person as shown on a sign-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PersonRef {
    /// Person id.
    pub id: PersonId,
    /// Name.
    pub name: String,
}

/// A carrier on a sign-out (no title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SignoutCarrier {
    /// Carrier id.
    pub id: CarrierId,
    /// Control number.
    pub control_no: String,
    /// Kind.
    pub kind: CarrierKind,
    /// Level.
    pub level: Level,
    /// The carrier's state now.
    pub state: CarrierState,
    /// When it came back from this sign-out.
    pub returned_at: Option<Timestamp>,
    /// Who recorded the return: `user:NAME` or `device:ID`.
    pub returned_by: Option<String>,
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Approval {
    /// The approving security officer.
    pub approver: UserRef,
    /// When.
    pub at: Timestamp,
    /// The officer's written reason for overriding the failed checks (sign-outs sent as
    /// "needs override" only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// A sign-out as shown (`GET /signouts`, `GET /signouts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Signout {
    /// Id.
    pub id: SignoutId,
    /// State.
    pub state: SignoutState,
    /// The custodian who requested it.
    pub requester: UserRef,
    /// Who holds (or will hold) the carriers.
    pub borrower: PersonRef,
    /// Why.
    pub purpose: String,
    /// Due back.
    pub due_at: Timestamp,
    /// Whether the carriers may leave the secure area.
    pub may_leave: bool,
    /// Requested at.
    pub created_at: Timestamp,
    /// Handed over at.
    pub issued_at: Option<Timestamp>,
    /// Returned or cancelled at.
    pub closed_at: Option<Timestamp>,
    /// The carriers.
    pub carriers: Vec<SignoutCarrier>,
    /// Approvals so far.
    pub approvals: Vec<Approval>,
    /// Approvals still needed (0 unless requested).
    pub approvals_needed: u32,
    /// The custodian's note when it was sent as "needs override" (the rules would refuse the
    /// issue): only officers approving with a written override reason approve it, and the
    /// overridable refusals are then waived at issue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_note: Option<String>,
    /// Why a security officer rejected it (state `rejected` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    /// For requested and approved sign-outs: the codes of every reason the issue would be
    /// refused if attempted today (empty if it would pass). Absent for other states.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_refuse: Option<Vec<&'static str>>,
}

/// The head of a sign-out: what every step's rule needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignoutHead {
    /// Its state.
    pub state: SignoutState,
    /// The account that requested it.
    pub requester: UserId,
    /// The person who holds (or will hold) the carriers.
    pub borrower: PersonId,
    /// Sent as "needs override".
    pub needs_override: bool,
}

/// The sign-out a carrier is outstanding on, as a cabinet that sees it back needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutstandingOn {
    /// The sign-out (in state `out`).
    pub signout: SignoutId,
    /// The carrier's home cabinet.
    pub home_device: Option<DeviceId>,
}

/// Reading and writing sign-outs.
pub trait SignoutRows {
    /// The account named `username` (an audit actor) as a party. An actor without an account
    /// is a corrupt database.
    fn party_by_username(&mut self, username: &str) -> Result<Party, StoreError>;
    /// The account `user` as a party.
    fn party_of(&mut self, user: UserId) -> Result<Party, StoreError>;
    /// The head of sign-out `id`; `NotFound` if there is none.
    fn signout_head(&mut self, id: SignoutId) -> Result<SignoutHead, StoreError>;
    /// The standing of each carrier, in the order asked; the claim of `except` (the sign-out
    /// being worked on) is ignored. An unknown id is `UnknownReference { what: "carrier" }`.
    fn carrier_standings(
        &mut self,
        ids: &[CarrierId],
        except: Option<SignoutId>,
    ) -> Result<Vec<CarrierStanding>, StoreError>;
    /// Every carrier of sign-out `id`, by id.
    fn signout_carriers(&mut self, id: SignoutId) -> Result<Vec<CarrierId>, StoreError>;
    /// The carriers of sign-out `id` not yet returned, by id.
    fn outstanding_carriers(&mut self, id: SignoutId) -> Result<Vec<CarrierId>, StoreError>;
    /// What the issue rules know of a person; `UnknownReference { what: "borrower" }`.
    fn borrower(&mut self, person: PersonId) -> Result<Borrower, StoreError>;
    /// The levels of sign-out `id`'s carriers.
    fn signout_levels(&mut self, id: SignoutId) -> Result<Vec<Level>, StoreError>;
    /// The approvers of sign-out `id` so far.
    fn approvers(&mut self, id: SignoutId) -> Result<Vec<Party>, StoreError>;
    /// Write a new request in state `requested`, with its carriers; its id.
    fn insert_signout(
        &mut self,
        requester: UserId,
        new: &NewSignout,
        at: Timestamp,
    ) -> Result<SignoutId, StoreError>;
    /// Record `approver`'s approval of `id`, with their override reason if any.
    fn insert_approval(
        &mut self,
        id: SignoutId,
        approver: UserId,
        override_reason: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Set the state of `id` (and its closing time, if given).
    fn set_signout_state(
        &mut self,
        id: SignoutId,
        state: SignoutState,
        closed_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// Reject sign-out `id`: state `rejected`, closed at `at`, by `by`, with `reason`.
    fn reject_signout(
        &mut self,
        id: SignoutId,
        by: UserId,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Hand `carriers` over on sign-out `id`: each `out` with `borrower` as holder (no longer
    /// missing), the sign-out `out`, issued by `issuer` at `at`.
    fn mark_issued(
        &mut self,
        id: SignoutId,
        borrower: PersonId,
        carriers: &[CarrierId],
        issuer: UserId,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Take `carrier` back from sign-out `id`: its row returned at `at` by `by`, the carrier
    /// back `in_storage` without holder (a missing one is found).
    fn mark_returned(
        &mut self,
        id: SignoutId,
        carrier: CarrierId,
        at: Timestamp,
        by: &str,
    ) -> Result<(), StoreError>;
    /// The `out` sign-out `carrier` is outstanding on, if any.
    fn outstanding_on(&mut self, carrier: CarrierId) -> Result<Option<OutstandingOn>, StoreError>;
    /// Sign-out `id` as shown, with its carriers and approvals (`approvals_needed` and
    /// `would_refuse` are left for the use case); `NotFound` if there is none.
    fn signout(&mut self, id: SignoutId) -> Result<Signout, StoreError>;
    /// Every sign-out (in `state`, if given) as shown, by id.
    fn signouts(&mut self, state: Option<SignoutState>) -> Result<Vec<Signout>, StoreError>;
}
