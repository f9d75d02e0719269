//! Gate policy rows: the carriers allowed to leave, the staff badges, and the version a gate
//! was last told. What a policy holds and how its version moves is
//! [`crate::service::policy`]'s business.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::AllowedCarrier;

use super::StoreError;
use crate::domain::level::Level;
use crate::domain::person::Certificates;

/// A carrier allowed to leave, as [`PolicyRows::allowed_carriers`] reads it: the policy entry
/// (with `badge_required` false: the service decides it) and the carrier's level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRow {
    /// The entry.
    pub entry: AllowedCarrier,
    /// The carrier's level.
    pub level: Level,
}

/// A carrier allowed to leave on a sign-out: its [`AllowedRow`] and the borrower's training
/// and commitment, which the entry may not outlast (`domain::gate::permit_until_ms`, applied
/// by the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanRow {
    /// The entry and level; `until_ms` is the sign-out's due time.
    pub row: AllowedRow,
    /// The borrower's certificates.
    pub borrower: Certificates,
}

/// The policy version last computed for a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCheck {
    /// The version (0: never issued).
    pub version: u64,
    /// The SHA-256 of that version's contents.
    pub hash: Option<Vec<u8>>,
    /// When it was computed (server time, Unix ms).
    pub checked_ms: Option<i64>,
}

/// The gate policy rows of one transaction.
pub trait PolicyRows {
    /// Every (EPC tag, sign-out) allowed to leave at `now_ms`: the carrier is `out`, on a
    /// sign-out in state `out` with `may_leave`, not yet returned from it, due after `now_ms`;
    /// with the borrower's badge if it is one a gate can read, and their certificates (the
    /// entry's `until_ms` is the due time: bounding it by them is the service's). Ordered by tag, due time and
    /// sign-out id, so that the same state always gives the same list. A tag that is not a
    /// valid EPC is left out (and logged).
    fn allowed_carriers(&mut self, now_ms: i64) -> Result<Vec<LoanRow>, StoreError>;

    /// Every staff badge a gate can read (`people.badge_tag` as an EPC), in no order.
    fn staff_badges(&mut self) -> Result<Vec<Epc>, StoreError>;

    /// The version last computed for `device`.
    fn policy_check(&mut self, device: &str) -> Result<Option<PolicyCheck>, StoreError>;

    /// Record the version computed for `device` at `now_ms`, with its contents' hash.
    fn set_policy_check(
        &mut self,
        device: &str,
        version: u64,
        hash: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError>;
}
