//! Sign-outs (借出): the rules of lending carriers, as pure functions.
//!
//! A sign-out moves through `requested → approved → out → returned`, or ends `cancelled`
//! before it is issued:
//! - a custodian requests it for a borrower (every carrier in storage and on no other live
//!   sign-out, the due time in the future: [`check_request`]);
//! - security officers approve it ([`approve`]): never the requester, never the borrower
//!   (separation of duties, 监管分离), never the same human twice; one approval suffices
//!   unless a carrier is Top Secret, which needs two different approvers;
//! - a custodian issues it ([`issue`]) only if the borrower may hold every carrier *now*
//!   ([`issue_refusals`]: active, cleared for the highest level, training valid, commitment
//!   signed);
//! - carriers come back one by one or all at once ([`plan_return`]), handed in at the desk
//!   or seen back in their home cabinet; the sign-out closes when the last one is back;
//! - a sign-out not yet issued can be cancelled ([`cancel`]).
//!
//! "The same human" compares both the account and the person on the register it belongs to,
//! so a second account of the same person cannot approve what the first requested.
//!
//! The store loads the facts, calls these functions, and writes what they decide; nothing
//! here reads a clock or a database.

use serde::Serialize;

use super::approval::{self, ApprovalError};
use super::carrier::CarrierState;
use super::ids::{CarrierId, PersonId, SignoutId};
use super::level::Level;
use super::person::{Category, PersonStatus};
use super::time::{Date, Timestamp};

/// The most carriers on one sign-out.
pub const MAX_CARRIERS: usize = 100;

/// Where a sign-out stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignoutState {
    /// Waiting for approval.
    Requested,
    /// Approved, not yet handed over.
    Approved,
    /// Handed over; some carriers are still out.
    Out,
    /// Every carrier is back.
    Returned,
    /// Withdrawn before it was issued.
    Cancelled,
    /// Refused by a security officer, with a reason (final).
    Rejected,
}

impl SignoutState {
    /// Every state.
    pub const ALL: [SignoutState; 6] = [
        SignoutState::Requested,
        SignoutState::Approved,
        SignoutState::Out,
        SignoutState::Returned,
        SignoutState::Cancelled,
        SignoutState::Rejected,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignoutState::Requested => "requested",
            SignoutState::Approved => "approved",
            SignoutState::Out => "out",
            SignoutState::Returned => "returned",
            SignoutState::Cancelled => "cancelled",
            SignoutState::Rejected => "rejected",
        }
    }

    /// Parse a storage or API name.
    pub fn from_name(name: &str) -> Option<SignoutState> {
        SignoutState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the sign-out still claims its carriers (requested, approved or out).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SignoutState::Requested | SignoutState::Approved | SignoutState::Out
        )
    }
}

pub use super::approval::Party;

/// A carrier as the request and issue rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarrierStanding {
    /// The carrier.
    pub id: CarrierId,
    /// Its level.
    pub level: Level,
    /// Its state.
    pub state: CarrierState,
    /// The live sign-out (requested, approved or out) that claims it, if any.
    pub live_signout: Option<SignoutId>,
}

/// What the issue checks need to know about the borrower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Borrower {
    /// Status on the register.
    pub status: PersonStatus,
    /// Category, which bounds the level they may hold.
    pub category: Category,
    /// Last day the training is valid.
    pub training_valid_until: Option<Date>,
    /// Day the confidentiality commitment was signed.
    pub commitment_signed_on: Option<Date>,
}

/// One reason a borrower may not be handed the carriers now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The person is leaving or has departed.
    PersonNotActive {
        /// Their status.
        status: PersonStatus,
    },
    /// A carrier's level is above what the person's category may hold.
    ClearanceInsufficient {
        /// The highest carrier level on the sign-out.
        needed: Level,
        /// The highest level the category allows.
        allowed: Level,
    },
    /// Training expired before today, or none is on record.
    TrainingExpired {
        /// The last valid day, if any training is on record.
        valid_until: Option<Date>,
    },
    /// No confidentiality commitment signed (on or before today).
    CommitmentMissing,
    /// The custodian issuing is the borrower (an account of the same person): nobody hands
    /// carriers to themselves (监管分离).
    SelfIssue,
}

impl Refusal {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::PersonNotActive { .. } => "person_not_active",
            Refusal::ClearanceInsufficient { .. } => "clearance_insufficient",
            Refusal::TrainingExpired { .. } => "training_expired",
            Refusal::CommitmentMissing => "commitment_missing",
            Refusal::SelfIssue => "self_issue",
        }
    }

    /// Whether a security officer may override it with a written reason: the borrower's
    /// clearance, training and commitment are judgements an officer may take responsibility
    /// for; a person who is leaving and a custodian issuing to themselves are not.
    pub fn overridable(self) -> bool {
        matches!(
            self,
            Refusal::ClearanceInsufficient { .. }
                | Refusal::TrainingExpired { .. }
                | Refusal::CommitmentMissing
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::PersonNotActive { status } => {
                write!(f, "the borrower is {}", status.as_str())
            }
            Refusal::ClearanceInsufficient { needed, allowed } => write!(
                f,
                "the borrower's category allows up to {allowed}, a carrier is {needed}"
            ),
            Refusal::TrainingExpired {
                valid_until: Some(until),
            } => write!(f, "the borrower's training expired on {until}"),
            Refusal::TrainingExpired { valid_until: None } => {
                f.write_str("the borrower has no training on record")
            }
            Refusal::CommitmentMissing => {
                f.write_str("the borrower has not signed a confidentiality commitment")
            }
            Refusal::SelfIssue => f.write_str("a custodian cannot issue carriers to themselves"),
        }
    }
}

/// Why a sign-out operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignoutRuleError {
    /// A request without carriers.
    #[error("a sign-out needs at least one carrier")]
    NoCarriers,
    /// A carrier is not in storage, or another live sign-out claims it.
    #[error("carrier {carrier} is not available")]
    CarrierUnavailable {
        /// The carrier.
        carrier: CarrierId,
    },
    /// The due time is not in the future.
    #[error("due_at must be in the future")]
    DueNotInFuture,
    /// The approver is the requester or the borrower (or another account of theirs).
    #[error("the requester and the borrower may not approve their own sign-out")]
    SelfApproval,
    /// The approver has already approved this sign-out.
    #[error("this sign-out already has your approval")]
    AlreadyApproved,
    /// Approval needs a requested sign-out.
    #[error("the sign-out is {0}, not awaiting approval")]
    NotAwaitingApproval(&'static str),
    /// Issue needs an approved sign-out.
    #[error("the sign-out is {0}, not approved")]
    NotApproved(&'static str),
    /// The borrower may not be handed the carriers now.
    #[error("issue refused")]
    Refused(Vec<Refusal>),
    /// A return needs a sign-out that is out.
    #[error("the sign-out is {0}, not out")]
    NotOut(&'static str),
    /// An explicit empty list of carriers to return.
    #[error("carrier_ids is empty")]
    NothingToReturn,
    /// A carrier to return is not outstanding on this sign-out.
    #[error("carrier {carrier} is not out on this sign-out")]
    CarrierNotOut {
        /// The carrier.
        carrier: CarrierId,
    },
    /// Only requested or approved sign-outs can be cancelled.
    #[error("the sign-out is {0} and cannot be cancelled")]
    NotCancellable(&'static str),
    /// A sign-out sent as "needs override" is approved only with a written override reason.
    #[error("this sign-out needs an override: approve it with a written override reason")]
    OverrideReasonRequired,
    /// An override reason for a sign-out that was not sent as "needs override".
    #[error("this sign-out was not sent as needing an override")]
    OverrideNotRequested,
}

impl SignoutRuleError {
    /// The machine-readable code (for `Refused`, the first reason's code).
    pub fn code(&self) -> &'static str {
        match self {
            SignoutRuleError::NoCarriers => "no_carriers",
            SignoutRuleError::CarrierUnavailable { .. } => "carrier_unavailable",
            SignoutRuleError::DueNotInFuture => "due_in_past",
            SignoutRuleError::SelfApproval => "self_approval",
            SignoutRuleError::AlreadyApproved => "already_approved",
            SignoutRuleError::NotAwaitingApproval(_) => "not_requested",
            SignoutRuleError::NotApproved(_) => "not_approved",
            SignoutRuleError::Refused(reasons) => {
                reasons.first().map_or("issue_refused", |r| r.code())
            }
            SignoutRuleError::NotOut(_) => "not_out",
            SignoutRuleError::NothingToReturn => "nothing_to_return",
            SignoutRuleError::CarrierNotOut { .. } => "carrier_not_out",
            SignoutRuleError::NotCancellable(_) => "not_cancellable",
            SignoutRuleError::OverrideReasonRequired => "override_reason_required",
            SignoutRuleError::OverrideNotRequested => "override_not_requested",
        }
    }
}

/// Check a new request: at least one carrier, each in storage and claimed by no live
/// sign-out, and the due time after `now`.
pub fn check_request(
    carriers: &[CarrierStanding],
    due: Timestamp,
    now: Timestamp,
) -> Result<(), SignoutRuleError> {
    if carriers.is_empty() {
        return Err(SignoutRuleError::NoCarriers);
    }
    if let Some(busy) = carriers
        .iter()
        .find(|c| c.state != CarrierState::InStorage || c.live_signout.is_some())
    {
        return Err(SignoutRuleError::CarrierUnavailable { carrier: busy.id });
    }
    check_due(due, now)
}

/// A sign-out's due time must be after `now`.
pub fn check_due(due: Timestamp, now: Timestamp) -> Result<(), SignoutRuleError> {
    if due <= now {
        return Err(SignoutRuleError::DueNotInFuture);
    }
    Ok(())
}

/// Approvals a sign-out needs: two different approvers if any carrier is Top Secret, else one
/// (the one rule of [`approval::approvals_required`]).
pub fn approvals_required(has_top_secret: bool) -> u32 {
    approval::approvals_required(has_top_secret)
}

/// The result of one approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalOutcome {
    /// The state after this approval (`requested` while more are needed).
    pub state: SignoutState,
    /// How many more approvals are needed (0 once approved).
    pub approvals_needed: u32,
}

impl From<ApprovalError> for SignoutRuleError {
    fn from(e: ApprovalError) -> SignoutRuleError {
        match e {
            ApprovalError::SelfApproval => SignoutRuleError::SelfApproval,
            ApprovalError::AlreadyApproved => SignoutRuleError::AlreadyApproved,
            ApprovalError::NotAwaitingApproval(s) => SignoutRuleError::NotAwaitingApproval(s),
            ApprovalError::NotApproved(s) => SignoutRuleError::NotApproved(s),
        }
    }
}

/// Apply one approval by `approver` to a sign-out in `state` that already has `approvals`:
/// the decision rules of [`approval`] (never the requester or the borrower, never twice by
/// the same human, TS needs two).
pub fn approve(
    state: SignoutState,
    approvals: &[Party],
    approver: Party,
    requester: Party,
    borrower: PersonId,
    has_top_secret: bool,
) -> Result<ApprovalOutcome, SignoutRuleError> {
    if state != SignoutState::Requested {
        return Err(SignoutRuleError::NotAwaitingApproval(state.as_str()));
    }
    approval::check_decider(approver, requester, Some(borrower))?;
    approval::check_new_approver(approvals, approver)?;
    let needed = approval::approvals_needed(approvals.len().saturating_add(1), has_top_secret);
    Ok(ApprovalOutcome {
        state: if needed == 0 {
            SignoutState::Approved
        } else {
            SignoutState::Requested
        },
        approvals_needed: needed,
    })
}

/// Reject a sign-out awaiting approval (with a reason, checked as input by the use case):
/// never by the requester or the borrower. A TS sign-out's first approver may still reject.
pub fn reject(
    state: SignoutState,
    officer: Party,
    requester: Party,
    borrower: PersonId,
) -> Result<SignoutState, SignoutRuleError> {
    if state != SignoutState::Requested {
        return Err(SignoutRuleError::NotAwaitingApproval(state.as_str()));
    }
    approval::check_decider(officer, requester, Some(borrower))?;
    Ok(SignoutState::Rejected)
}

/// Every reason the borrower may not be handed carriers of `levels` on `today`, in a fixed
/// order: status, clearance (once, for the highest level), training, commitment. Empty means
/// the issue may proceed.
pub fn issue_refusals(
    borrower: &Borrower,
    levels: impl IntoIterator<Item = Level>,
    today: Date,
) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    if borrower.status != PersonStatus::Active {
        refusals.push(Refusal::PersonNotActive {
            status: borrower.status,
        });
    }
    if let Some(needed) = levels.into_iter().max() {
        if !borrower.category.may_hold(needed) {
            refusals.push(Refusal::ClearanceInsufficient {
                needed,
                allowed: borrower.category.max_level(),
            });
        }
    }
    if borrower
        .training_valid_until
        .is_none_or(|until| until < today)
    {
        refusals.push(Refusal::TrainingExpired {
            valid_until: borrower.training_valid_until,
        });
    }
    if borrower
        .commitment_signed_on
        .is_none_or(|signed| signed > today)
    {
        refusals.push(Refusal::CommitmentMissing);
    }
    refusals
}

/// An approval of a sign-out sent as "needs override" (`needs_override`) must carry a written
/// override reason, and only such a sign-out takes one: so an override is always asked for by
/// the custodian and answered, in writing, by every approving officer.
pub fn check_override(needs_override: bool, has_reason: bool) -> Result<(), SignoutRuleError> {
    match (needs_override, has_reason) {
        (true, false) => Err(SignoutRuleError::OverrideReasonRequired),
        (false, true) => Err(SignoutRuleError::OverrideNotRequested),
        _ => Ok(()),
    }
}

/// The refusals left once an override is in force (`overridden`: the sign-out needed one and
/// was approved with written reasons): the overridable ones are waived, the others stand.
pub fn after_override(refusals: Vec<Refusal>, overridden: bool) -> Vec<Refusal> {
    if overridden {
        refusals.into_iter().filter(|r| !r.overridable()).collect()
    } else {
        refusals
    }
}

/// Check an issue: the sign-out must be approved, every carrier still in storage, and the
/// borrower must pass [`issue_refusals`] (given here as `refusals`).
pub fn issue(
    state: SignoutState,
    carriers: &[CarrierStanding],
    refusals: Vec<Refusal>,
) -> Result<(), SignoutRuleError> {
    if state != SignoutState::Approved {
        return Err(SignoutRuleError::NotApproved(state.as_str()));
    }
    if let Some(gone) = carriers.iter().find(|c| c.state != CarrierState::InStorage) {
        return Err(SignoutRuleError::CarrierUnavailable { carrier: gone.id });
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(SignoutRuleError::Refused(refusals))
    }
}

/// What a return does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPlan {
    /// The carriers coming back, without repeats, in the order asked.
    pub returning: Vec<CarrierId>,
    /// Whether these are the last outstanding ones (the sign-out becomes `returned`).
    pub closes: bool,
}

/// Plan a return on a sign-out in `state` whose not-yet-returned carriers are `outstanding`:
/// `asked` names the carriers handed back, `None` meaning all outstanding ones.
pub fn plan_return(
    state: SignoutState,
    outstanding: &[CarrierId],
    asked: Option<&[CarrierId]>,
) -> Result<ReturnPlan, SignoutRuleError> {
    if state != SignoutState::Out {
        return Err(SignoutRuleError::NotOut(state.as_str()));
    }
    let returning = match asked {
        None => outstanding.to_vec(),
        Some([]) => return Err(SignoutRuleError::NothingToReturn),
        Some(asked) => {
            let mut returning = Vec::with_capacity(asked.len());
            for carrier in asked {
                if !outstanding.contains(carrier) {
                    return Err(SignoutRuleError::CarrierNotOut { carrier: *carrier });
                }
                if !returning.contains(carrier) {
                    returning.push(*carrier);
                }
            }
            returning
        }
    };
    let closes = outstanding.iter().all(|c| returning.contains(c));
    Ok(ReturnPlan { returning, closes })
}

/// Cancel a sign-out: only before it is issued.
pub fn cancel(state: SignoutState) -> Result<SignoutState, SignoutRuleError> {
    match state {
        SignoutState::Requested | SignoutState::Approved => Ok(SignoutState::Cancelled),
        other => Err(SignoutRuleError::NotCancellable(other.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;

    fn t(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix).unwrap()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn party(user: i64, person: Option<i64>) -> Party {
        Party {
            user: UserId(user),
            person: person.map(PersonId),
        }
    }

    fn standing(id: i64, level: Level) -> CarrierStanding {
        CarrierStanding {
            id: CarrierId(id),
            level,
            state: CarrierState::InStorage,
            live_signout: None,
        }
    }

    fn fit_borrower() -> Borrower {
        Borrower {
            status: PersonStatus::Active,
            category: Category::Important,
            training_valid_until: Some(date("2026-01-01")),
            commitment_signed_on: Some(date("2024-01-01")),
        }
    }

    #[test]
    fn state_names_round_trip_and_liveness() {
        for s in SignoutState::ALL {
            assert_eq!(SignoutState::from_name(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        let live: Vec<_> = SignoutState::ALL
            .into_iter()
            .filter(|s| s.is_live())
            .collect();
        assert_eq!(
            live,
            [
                SignoutState::Requested,
                SignoutState::Approved,
                SignoutState::Out
            ]
        );
    }

    #[test]
    fn a_request_needs_free_carriers_and_a_future_due_time() {
        let now = t(1_000_000);
        let free = [standing(1, Level::Secret), standing(2, Level::TopSecret)];
        assert_eq!(check_request(&free, t(1_000_001), now), Ok(()));
        assert_eq!(
            check_request(&free, now, now),
            Err(SignoutRuleError::DueNotInFuture)
        );
        assert_eq!(
            check_request(&[], t(2_000_000), now),
            Err(SignoutRuleError::NoCarriers)
        );
        let mut claimed = free;
        claimed[1].live_signout = Some(SignoutId(9));
        assert_eq!(
            check_request(&claimed, t(2_000_000), now),
            Err(SignoutRuleError::CarrierUnavailable {
                carrier: CarrierId(2)
            })
        );
        for state in [
            CarrierState::Out,
            CarrierState::Missing,
            CarrierState::Archived,
            CarrierState::Destroyed,
        ] {
            let mut busy = free;
            busy[0].state = state;
            assert_eq!(
                check_request(&busy, t(2_000_000), now).unwrap_err().code(),
                "carrier_unavailable",
                "{state:?}"
            );
        }
    }

    #[test]
    fn one_approval_suffices_below_top_secret() {
        let requester = party(1, Some(10));
        let outcome = approve(
            SignoutState::Requested,
            &[],
            party(2, None),
            requester,
            PersonId(30),
            false,
        )
        .unwrap();
        assert_eq!(
            outcome,
            ApprovalOutcome {
                state: SignoutState::Approved,
                approvals_needed: 0
            }
        );
    }

    #[test]
    fn top_secret_needs_two_different_approvers() {
        let requester = party(1, None);
        let borrower = PersonId(30);
        let first = approve(
            SignoutState::Requested,
            &[],
            party(2, Some(20)),
            requester,
            borrower,
            true,
        )
        .unwrap();
        assert_eq!(first.state, SignoutState::Requested);
        assert_eq!(first.approvals_needed, 1);
        let approvals = [party(2, Some(20))];
        assert_eq!(
            approve(
                SignoutState::Requested,
                &approvals,
                party(2, Some(20)),
                requester,
                borrower,
                true
            ),
            Err(SignoutRuleError::AlreadyApproved)
        );
        // Another account of the same person is still the same approver.
        assert_eq!(
            approve(
                SignoutState::Requested,
                &approvals,
                party(5, Some(20)),
                requester,
                borrower,
                true
            ),
            Err(SignoutRuleError::AlreadyApproved)
        );
        let second = approve(
            SignoutState::Requested,
            &approvals,
            party(3, None),
            requester,
            borrower,
            true,
        )
        .unwrap();
        assert_eq!(second.state, SignoutState::Approved);
        assert_eq!(second.approvals_needed, 0);
    }

    #[test]
    fn nobody_approves_their_own_sign_out() {
        let requester = party(1, Some(10));
        let borrower = PersonId(30);
        for approver in [
            party(1, Some(10)), // the requester's own account
            party(7, Some(10)), // another account of the requester
            party(8, Some(30)), // the borrower's account
        ] {
            assert_eq!(
                approve(
                    SignoutState::Requested,
                    &[],
                    approver,
                    requester,
                    borrower,
                    false
                ),
                Err(SignoutRuleError::SelfApproval),
                "{approver:?}"
            );
        }
        assert_eq!(SignoutRuleError::SelfApproval.code(), "self_approval");
    }

    #[test]
    fn only_requested_sign_outs_take_approvals() {
        for state in [
            SignoutState::Approved,
            SignoutState::Out,
            SignoutState::Returned,
            SignoutState::Cancelled,
        ] {
            assert_eq!(
                approve(
                    state,
                    &[],
                    party(2, None),
                    party(1, None),
                    PersonId(3),
                    false
                ),
                Err(SignoutRuleError::NotAwaitingApproval(state.as_str()))
            );
        }
    }

    #[test]
    fn a_fit_borrower_passes_every_issue_check() {
        let today = date("2025-06-01");
        assert_eq!(
            issue_refusals(&fit_borrower(), [Level::Confidential, Level::Secret], today),
            []
        );
        // Training valid through today is still valid; a commitment signed today counts.
        let edge = Borrower {
            training_valid_until: Some(today),
            commitment_signed_on: Some(today),
            ..fit_borrower()
        };
        assert_eq!(issue_refusals(&edge, [Level::Secret], today), []);
    }

    #[test]
    fn each_issue_refusal_has_its_own_reason() {
        let today = date("2025-06-01");
        let cases = [
            (
                Borrower {
                    status: PersonStatus::Departed,
                    ..fit_borrower()
                },
                Refusal::PersonNotActive {
                    status: PersonStatus::Departed,
                },
            ),
            (
                Borrower {
                    status: PersonStatus::Leaving,
                    ..fit_borrower()
                },
                Refusal::PersonNotActive {
                    status: PersonStatus::Leaving,
                },
            ),
            (
                Borrower {
                    category: Category::General,
                    ..fit_borrower()
                },
                Refusal::ClearanceInsufficient {
                    needed: Level::Secret,
                    allowed: Level::Confidential,
                },
            ),
            (
                Borrower {
                    training_valid_until: Some(date("2025-05-31")),
                    ..fit_borrower()
                },
                Refusal::TrainingExpired {
                    valid_until: Some(date("2025-05-31")),
                },
            ),
            (
                Borrower {
                    training_valid_until: None,
                    ..fit_borrower()
                },
                Refusal::TrainingExpired { valid_until: None },
            ),
            (
                Borrower {
                    commitment_signed_on: None,
                    ..fit_borrower()
                },
                Refusal::CommitmentMissing,
            ),
            (
                Borrower {
                    commitment_signed_on: Some(date("2025-06-02")),
                    ..fit_borrower()
                },
                Refusal::CommitmentMissing,
            ),
        ];
        for (borrower, expected) in cases {
            assert_eq!(
                issue_refusals(&borrower, [Level::Confidential, Level::Secret], today),
                [expected],
                "{borrower:?}"
            );
        }
    }

    #[test]
    fn refusals_accumulate_in_a_fixed_order() {
        let nobody = Borrower {
            status: PersonStatus::Departed,
            category: Category::General,
            training_valid_until: None,
            commitment_signed_on: None,
        };
        let codes: Vec<_> = issue_refusals(&nobody, [Level::TopSecret], date("2025-01-01"))
            .into_iter()
            .map(Refusal::code)
            .collect();
        assert_eq!(
            codes,
            [
                "person_not_active",
                "clearance_insufficient",
                "training_expired",
                "commitment_missing"
            ]
        );
        let err = SignoutRuleError::Refused(issue_refusals(
            &nobody,
            [Level::Confidential],
            date("2025-01-01"),
        ));
        assert_eq!(err.code(), "person_not_active");
    }

    #[test]
    fn issue_needs_approval_stored_carriers_and_no_refusal() {
        let carriers = [standing(1, Level::Secret)];
        assert_eq!(issue(SignoutState::Approved, &carriers, vec![]), Ok(()));
        for state in [
            SignoutState::Requested,
            SignoutState::Out,
            SignoutState::Returned,
            SignoutState::Cancelled,
        ] {
            assert_eq!(
                issue(state, &carriers, vec![]),
                Err(SignoutRuleError::NotApproved(state.as_str())),
                "a second issue of an issued sign-out is refused too"
            );
        }
        let mut gone = carriers;
        gone[0].state = CarrierState::Missing;
        assert_eq!(
            issue(SignoutState::Approved, &gone, vec![]),
            Err(SignoutRuleError::CarrierUnavailable {
                carrier: CarrierId(1)
            })
        );
        assert_eq!(
            issue(
                SignoutState::Approved,
                &carriers,
                vec![Refusal::CommitmentMissing]
            ),
            Err(SignoutRuleError::Refused(vec![Refusal::CommitmentMissing]))
        );
    }

    #[test]
    fn returns_may_be_partial_and_close_with_the_last_carrier() {
        let outstanding = [CarrierId(1), CarrierId(2), CarrierId(3)];
        let partial = plan_return(
            SignoutState::Out,
            &outstanding,
            Some(&[CarrierId(2), CarrierId(2)]),
        )
        .unwrap();
        assert_eq!(
            partial,
            ReturnPlan {
                returning: vec![CarrierId(2)],
                closes: false
            }
        );
        let rest = plan_return(SignoutState::Out, &[CarrierId(1), CarrierId(3)], None).unwrap();
        assert_eq!(rest.returning, [CarrierId(1), CarrierId(3)]);
        assert!(rest.closes);
        let explicit_rest =
            plan_return(SignoutState::Out, &[CarrierId(3)], Some(&[CarrierId(3)])).unwrap();
        assert!(explicit_rest.closes);
    }

    #[test]
    fn returns_refuse_what_is_not_out() {
        let outstanding = [CarrierId(1)];
        assert_eq!(
            plan_return(SignoutState::Out, &outstanding, Some(&[CarrierId(4)])),
            Err(SignoutRuleError::CarrierNotOut {
                carrier: CarrierId(4)
            })
        );
        assert_eq!(
            plan_return(SignoutState::Out, &outstanding, Some(&[])),
            Err(SignoutRuleError::NothingToReturn)
        );
        for state in [
            SignoutState::Requested,
            SignoutState::Approved,
            SignoutState::Returned,
            SignoutState::Cancelled,
        ] {
            assert_eq!(
                plan_return(state, &outstanding, None),
                Err(SignoutRuleError::NotOut(state.as_str()))
            );
        }
    }

    #[test]
    fn a_requested_sign_out_can_be_rejected_but_not_by_its_own_people() {
        let requester = party(1, Some(10));
        let borrower = PersonId(30);
        assert_eq!(
            reject(SignoutState::Requested, party(2, None), requester, borrower),
            Ok(SignoutState::Rejected)
        );
        assert_eq!(
            reject(
                SignoutState::Requested,
                party(8, Some(30)),
                requester,
                borrower
            ),
            Err(SignoutRuleError::SelfApproval)
        );
        assert_eq!(
            reject(SignoutState::Approved, party(2, None), requester, borrower),
            Err(SignoutRuleError::NotAwaitingApproval("approved"))
        );
        assert!(!SignoutState::Rejected.is_live());
    }

    #[test]
    fn only_unissued_sign_outs_can_be_cancelled() {
        assert_eq!(cancel(SignoutState::Requested), Ok(SignoutState::Cancelled));
        assert_eq!(cancel(SignoutState::Approved), Ok(SignoutState::Cancelled));
        for state in [
            SignoutState::Out,
            SignoutState::Returned,
            SignoutState::Cancelled,
        ] {
            assert_eq!(
                cancel(state),
                Err(SignoutRuleError::NotCancellable(state.as_str()))
            );
        }
    }

    #[test]
    fn an_override_needs_a_written_reason_and_waives_only_the_borrowers_fitness() {
        assert_eq!(
            check_override(true, false),
            Err(SignoutRuleError::OverrideReasonRequired)
        );
        assert_eq!(
            check_override(false, true).unwrap_err().code(),
            "override_not_requested"
        );
        assert!(check_override(true, true).is_ok());
        assert!(check_override(false, false).is_ok());

        // A TS carrier for someone cleared only to C, who is also leaving.
        let borrower = Borrower {
            status: PersonStatus::Leaving,
            category: Category::General,
            ..fit_borrower()
        };
        let refusals = issue_refusals(&borrower, [Level::TopSecret], date("2025-06-01"));
        assert_eq!(refusals.len(), 2);
        // Without an override in force nothing is waived.
        assert_eq!(after_override(refusals.clone(), false), refusals);
        // With one, the clearance mismatch is waived; leaving still refuses.
        assert_eq!(
            after_override(refusals, true),
            vec![Refusal::PersonNotActive {
                status: PersonStatus::Leaving
            }]
        );
        assert!(!Refusal::SelfIssue.overridable());
    }
}
