//! Request rows: what the approval use cases ([`crate::service::approvals`]) and each request
//! kind's own use cases (copies, destructions, reclassifications, transfers, dispatches,
//! travel) read and write. Sign-outs keep their own rows ([`super::signouts`]).
//!
//! A request's kind-specific payload is stored as JSON (`body`, as asked; `result`, what
//! carrying it out produced): the decision rules never look inside, and each kind's use case
//! owns its shape. Carrier titles never go in either.

use serde::Serialize;

use super::StoreError;
use super::signouts::{Approval, PersonRef, UserRef};
use crate::domain::approval::{Party, RequestKind, RequestState};
use crate::domain::ids::{CarrierId, PersonId, RequestId, UserId};
use crate::domain::time::Timestamp;

/// A request as written.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// Its kind.
    pub kind: RequestKind,
    /// The account that asks.
    pub requester: UserId,
    /// The person it benefits, if any (may not decide on it).
    pub beneficiary: Option<PersonId>,
    /// Whether it touches Top Secret (two approvers).
    pub top_secret: bool,
    /// The carriers it concerns (none for travel), distinct.
    pub carriers: Vec<CarrierId>,
    /// The kind's payload.
    pub body: serde_json::Value,
}

/// What the decision rules need first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    /// Its state.
    pub state: RequestState,
    /// The account that asked.
    pub requester: UserId,
    /// The person it benefits.
    pub beneficiary: Option<PersonId>,
    /// Whether it touches Top Secret.
    pub top_secret: bool,
}

/// A rejection as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// The officer who rejected it.
    pub by: UserRef,
    /// Why.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// A request as shown (`GET /{kind}/{id}`, the officer's approval page).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Request {
    /// Id.
    pub id: RequestId,
    /// Kind.
    pub kind: RequestKind,
    /// State.
    pub state: RequestState,
    /// Who asked.
    pub requester: UserRef,
    /// Whom it benefits.
    pub beneficiary: Option<PersonRef>,
    /// Whether it touches Top Secret (two approvers).
    pub top_secret: bool,
    /// The carriers it concerns.
    pub carrier_ids: Vec<CarrierId>,
    /// The kind's payload as asked.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// Asked at.
    pub created_at: Timestamp,
    /// Approvals so far.
    pub approvals: Vec<Approval>,
    /// Approvals still needed (0 unless requested).
    pub approvals_needed: u32,
    /// The rejection, once rejected.
    pub rejection: Option<Rejection>,
    /// Carried out at.
    pub done_at: Option<Timestamp>,
    /// What carrying it out produced.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// Reading and writing requests.
pub trait ApprovalRows {
    /// Write a new request in state `requested`, with its carriers; its id.
    fn insert_request(&mut self, new: &NewRequest, at: Timestamp) -> Result<RequestId, StoreError>;
    /// The head of request `id` of `kind`; `NotFound` if there is none of that kind.
    fn request_head(&mut self, kind: RequestKind, id: RequestId)
    -> Result<RequestHead, StoreError>;
    /// The approvers of request `id` so far.
    fn request_approvers(&mut self, id: RequestId) -> Result<Vec<Party>, StoreError>;
    /// Record `approver`'s approval of `id`.
    fn insert_request_approval(
        &mut self,
        id: RequestId,
        approver: UserId,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Set the state of `id` (approved by the last approval).
    fn set_request_state(
        &mut self,
        id: RequestId,
        state: RequestState,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Reject `id`: state `rejected`, by whom, why, when.
    fn reject_request(
        &mut self,
        id: RequestId,
        by: UserId,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Mark `id` carried out (`done`) by `by`, with what it produced.
    fn complete_request(
        &mut self,
        id: RequestId,
        by: UserId,
        result: &serde_json::Value,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The carriers of request `id`, by id.
    fn request_carriers(&mut self, id: RequestId) -> Result<Vec<CarrierId>, StoreError>;
    /// The kind's payload of request `id`.
    fn request_body(&mut self, id: RequestId) -> Result<serde_json::Value, StoreError>;
    /// Request `id` of `kind` as shown (`approvals_needed` left for the use case).
    fn request(&mut self, kind: RequestKind, id: RequestId) -> Result<Request, StoreError>;
    /// Requests of `kind` (all kinds if `None`), in `state` if given, newest first, at most
    /// `limit`.
    fn requests(
        &mut self,
        kind: Option<RequestKind>,
        state: Option<RequestState>,
        limit: u32,
    ) -> Result<Vec<Request>, StoreError>;
    /// Every request that names `carrier`, newest first.
    fn requests_for_carrier(&mut self, carrier: CarrierId) -> Result<Vec<Request>, StoreError>;
    /// An open (requested or approved) request of `kind` that names `carrier`, if any.
    fn open_request_for(
        &mut self,
        kind: RequestKind,
        carrier: CarrierId,
    ) -> Result<Option<RequestId>, StoreError>;
}
