//! Approvals (审批): one model for every request officers decide on.
//!
//! Sign-outs, copies, destructions, transfers, dispatches, reclassifications and travel
//! abroad are all *requests*: someone asks, security officers decide, someone carries it out.
//! Each kind keeps its own payload and its own "carry out" step; the decision rules are here,
//! once:
//!
//! ```text
//!  requested ──approve (enough approvals)──▶ approved ──carry out──▶ done
//!      │  ▲
//!      │  └─ approve (TS: the first of two)
//!      └──reject {reason}──▶ rejected
//! ```
//!
//! - only a security officer decides (the capability type enforces the role; the rules here
//!   enforce who among them);
//! - never the requester, never the person the request benefits (the borrower, the traveller),
//!   and "the same human" covers a second account of the same person ([`Party::same_human`]);
//! - one approval suffices unless the request touches Top Secret, which needs two different
//!   people; an officer who approved cannot approve again (the page shows that instead of a
//!   button: [`standing_of`]);
//! - a rejection needs a reason (checked as input by the use case) and ends the request.
//!
//! Sign-outs keep their own states (`out`, `returned`) after approval, so they call the
//! state-free checks ([`check_decider`], [`check_new_approver`], [`approvals_needed`]) the
//! generic [`approve`] is built from.

use serde::Serialize;

use super::ids::{PersonId, UserId};

/// The kinds of request, with the path segment of their endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A loan of carriers (借出); stored as a sign-out.
    Signout,
    /// Copies of a carrier (复制).
    Copy,
    /// Destruction of carriers (销毁).
    Destruction,
    /// Hand-over to another unit (移交).
    Transfer,
    /// Dispatch through the confidential courier channel (机要传递).
    Dispatch,
    /// A change of level or declassification (变更密级/解密).
    Reclassification,
    /// Travel abroad of a person in (or after) a classified post (出境).
    Travel,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [RequestKind; 7] = [
        RequestKind::Signout,
        RequestKind::Copy,
        RequestKind::Destruction,
        RequestKind::Transfer,
        RequestKind::Dispatch,
        RequestKind::Reclassification,
        RequestKind::Travel,
    ];

    /// The storage name (`requests.kind`) and audit prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Signout => "signout",
            RequestKind::Copy => "copy",
            RequestKind::Destruction => "destruction",
            RequestKind::Transfer => "transfer",
            RequestKind::Dispatch => "dispatch",
            RequestKind::Reclassification => "reclassification",
            RequestKind::Travel => "travel",
        }
    }

    /// The API path segment (`/api/v1/{segment}/{id}/approve`).
    pub fn path(self) -> &'static str {
        match self {
            RequestKind::Signout => "signouts",
            RequestKind::Copy => "copies",
            RequestKind::Destruction => "destructions",
            RequestKind::Transfer => "transfers",
            RequestKind::Dispatch => "dispatches",
            RequestKind::Reclassification => "reclassifications",
            RequestKind::Travel => "travel",
        }
    }

    /// Parse a storage name.
    pub fn from_name(name: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Parse an API path segment.
    pub fn from_path(segment: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.path() == segment)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for (more) approvals.
    Requested,
    /// Approved; waiting to be carried out.
    Approved,
    /// Rejected with a reason; final.
    Rejected,
    /// Carried out; final.
    Done,
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 4] = [
        RequestState::Requested,
        RequestState::Approved,
        RequestState::Rejected,
        RequestState::Done,
    ];

    /// The storage and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Requested => "requested",
            RequestState::Approved => "approved",
            RequestState::Rejected => "rejected",
            RequestState::Done => "done",
        }
    }

    /// Parse a storage or API name.
    pub fn from_name(name: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// A user account and the person on the register it belongs to (if linked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Party {
    /// The account.
    pub user: UserId,
    /// The person the account belongs to.
    pub person: Option<PersonId>,
}

impl Party {
    /// Whether `self` and `other` are the same human: the same account, or two accounts of
    /// the same person.
    pub fn same_human(&self, other: &Party) -> bool {
        self.user == other.user || (self.person.is_some() && self.person == other.person)
    }
}

/// What the decision rules need to know of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// Its state.
    pub state: RequestState,
    /// Who asked.
    pub requester: Party,
    /// The person it benefits (borrower, traveller), if any.
    pub beneficiary: Option<PersonId>,
    /// Whether it touches Top Secret (two approvers).
    pub top_secret: bool,
    /// The approvals so far.
    pub approvals: Vec<Party>,
}

/// Why a decision or a carry-out is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The officer is the requester or the beneficiary (or another account of theirs).
    #[error("the requester and the person a request benefits may not decide on it")]
    SelfApproval,
    /// The officer (or another account of the same person) has already approved.
    #[error("this request already has your approval")]
    AlreadyApproved,
    /// Decisions need a request in state `requested`.
    #[error("the request is {0}, not awaiting a decision")]
    NotAwaitingApproval(&'static str),
    /// Carrying out needs an approved request.
    #[error("the request is {0}, not approved")]
    NotApproved(&'static str),
}

impl ApprovalError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::SelfApproval => "self_approval",
            ApprovalError::AlreadyApproved => "already_approved",
            ApprovalError::NotAwaitingApproval(_) => "not_requested",
            ApprovalError::NotApproved(_) => "not_approved",
        }
    }
}

/// Approvals a request needs: two different people if it touches Top Secret, else one.
pub fn approvals_required(top_secret: bool) -> u32 {
    if top_secret { 2 } else { 1 }
}

/// Approvals still needed once a request has `have` of them.
pub fn approvals_needed(have: usize, top_secret: bool) -> u32 {
    approvals_required(top_secret).saturating_sub(u32::try_from(have).unwrap_or(u32::MAX))
}

/// The officer `decider` may decide (approve or reject): not the requester (any account of
/// theirs), not the beneficiary.
pub fn check_decider(
    decider: Party,
    requester: Party,
    beneficiary: Option<PersonId>,
) -> Result<(), ApprovalError> {
    if decider.same_human(&requester) || (beneficiary.is_some() && decider.person == beneficiary) {
        return Err(ApprovalError::SelfApproval);
    }
    Ok(())
}

/// `approver` has not approved yet (under any of their accounts).
pub fn check_new_approver(approvals: &[Party], approver: Party) -> Result<(), ApprovalError> {
    if approvals.iter().any(|a| a.same_human(&approver)) {
        return Err(ApprovalError::AlreadyApproved);
    }
    Ok(())
}

/// The result of one approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalOutcome {
    /// The state after it (`requested` while more approvals are needed).
    pub state: RequestState,
    /// Approvals still needed (0 once approved).
    pub approvals_needed: u32,
}

/// Apply one approval by `approver`.
pub fn approve(facts: &RequestFacts, approver: Party) -> Result<ApprovalOutcome, ApprovalError> {
    if facts.state != RequestState::Requested {
        return Err(ApprovalError::NotAwaitingApproval(facts.state.as_str()));
    }
    check_decider(approver, facts.requester, facts.beneficiary)?;
    check_new_approver(&facts.approvals, approver)?;
    let needed = approvals_needed(facts.approvals.len().saturating_add(1), facts.top_secret);
    Ok(ApprovalOutcome {
        state: if needed == 0 {
            RequestState::Approved
        } else {
            RequestState::Requested
        },
        approvals_needed: needed,
    })
}

/// Reject a request: only while it awaits a decision, never by the requester or beneficiary.
/// (An officer who gave the first of two TS approvals may still reject it: they may have
/// learnt something since.)
pub fn reject(facts: &RequestFacts, officer: Party) -> Result<RequestState, ApprovalError> {
    if facts.state != RequestState::Requested {
        return Err(ApprovalError::NotAwaitingApproval(facts.state.as_str()));
    }
    check_decider(officer, facts.requester, facts.beneficiary)?;
    Ok(RequestState::Rejected)
}

/// Carry out a request: only an approved one, and only once.
pub fn carry_out(state: RequestState) -> Result<RequestState, ApprovalError> {
    match state {
        RequestState::Approved => Ok(RequestState::Done),
        other => Err(ApprovalError::NotApproved(other.as_str())),
    }
}

/// What an officer looking at a request may do, for the pages (the rules above still decide
/// when they act).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// May approve or reject.
    MayDecide,
    /// Approved already: sees that, not a second approve button (may still reject).
    ApprovedAlready,
    /// Their own request (or it benefits them): may not decide.
    Own,
    /// No longer awaiting a decision.
    Closed,
}

/// The standing of `officer` towards a request (of any kind) in the decision rules.
pub fn standing_of(
    awaiting: bool,
    approvals: &[Party],
    officer: Party,
    requester: Party,
    beneficiary: Option<PersonId>,
) -> Standing {
    if !awaiting {
        Standing::Closed
    } else if check_decider(officer, requester, beneficiary).is_err() {
        Standing::Own
    } else if check_new_approver(approvals, officer).is_err() {
        Standing::ApprovedAlready
    } else {
        Standing::MayDecide
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(user: i64, person: Option<i64>) -> Party {
        Party {
            user: UserId(user),
            person: person.map(PersonId),
        }
    }

    fn facts(top_secret: bool, approvals: Vec<Party>) -> RequestFacts {
        RequestFacts {
            state: RequestState::Requested,
            requester: party(1, Some(10)),
            beneficiary: Some(PersonId(30)),
            top_secret,
            approvals,
        }
    }

    #[test]
    fn names_round_trip() {
        for k in RequestKind::ALL {
            assert_eq!(RequestKind::from_name(k.as_str()), Some(k));
            assert_eq!(RequestKind::from_path(k.path()), Some(k));
        }
        for s in RequestState::ALL {
            assert_eq!(RequestState::from_name(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }

    #[test]
    fn one_officer_approves_below_top_secret() {
        let out = approve(&facts(false, vec![]), party(2, None)).unwrap();
        assert_eq!(
            out,
            ApprovalOutcome {
                state: RequestState::Approved,
                approvals_needed: 0
            }
        );
    }

    #[test]
    fn top_secret_needs_two_different_people() {
        let first = approve(&facts(true, vec![]), party(2, Some(20))).unwrap();
        assert_eq!(first.state, RequestState::Requested);
        assert_eq!(first.approvals_needed, 1);
        let once = facts(true, vec![party(2, Some(20))]);
        // The same account, and another account of the same person, are the same approver.
        for again in [party(2, Some(20)), party(9, Some(20))] {
            assert_eq!(
                approve(&once, again),
                Err(ApprovalError::AlreadyApproved),
                "{again:?}"
            );
        }
        let second = approve(&once, party(3, None)).unwrap();
        assert_eq!(second.state, RequestState::Approved);
        assert_eq!(second.approvals_needed, 0);
    }

    #[test]
    fn never_by_the_requester_or_the_beneficiary() {
        for officer in [
            party(1, Some(10)), // the requester
            party(7, Some(10)), // another account of the requester
            party(8, Some(30)), // the beneficiary
        ] {
            assert_eq!(
                approve(&facts(false, vec![]), officer),
                Err(ApprovalError::SelfApproval),
                "{officer:?}"
            );
            assert_eq!(
                reject(&facts(false, vec![]), officer),
                Err(ApprovalError::SelfApproval),
                "{officer:?}"
            );
        }
        // No beneficiary: an officer without a person record is not mistaken for one.
        let mut f = facts(false, vec![]);
        f.beneficiary = None;
        assert!(approve(&f, party(2, None)).is_ok());
    }

    #[test]
    fn decisions_need_a_request_awaiting_one() {
        for state in [
            RequestState::Approved,
            RequestState::Rejected,
            RequestState::Done,
        ] {
            let mut f = facts(false, vec![]);
            f.state = state;
            assert_eq!(
                approve(&f, party(2, None)),
                Err(ApprovalError::NotAwaitingApproval(state.as_str()))
            );
            assert_eq!(
                reject(&f, party(2, None)).unwrap_err().code(),
                "not_requested"
            );
        }
    }

    #[test]
    fn a_first_ts_approver_may_still_reject() {
        let once = facts(true, vec![party(2, None)]);
        assert_eq!(reject(&once, party(2, None)), Ok(RequestState::Rejected));
    }

    #[test]
    fn only_approved_requests_are_carried_out_once() {
        assert_eq!(carry_out(RequestState::Approved), Ok(RequestState::Done));
        for state in [
            RequestState::Requested,
            RequestState::Rejected,
            RequestState::Done,
        ] {
            assert_eq!(
                carry_out(state),
                Err(ApprovalError::NotApproved(state.as_str()))
            );
        }
    }

    #[test]
    fn the_page_shows_what_an_officer_may_do() {
        let approvals = [party(2, None)];
        let requester = party(1, None);
        let b = Some(PersonId(30));
        assert_eq!(
            standing_of(true, &approvals, party(3, None), requester, b),
            Standing::MayDecide
        );
        assert_eq!(
            standing_of(true, &approvals, party(2, None), requester, b),
            Standing::ApprovedAlready
        );
        assert_eq!(
            standing_of(true, &approvals, party(1, None), requester, b),
            Standing::Own
        );
        assert_eq!(
            standing_of(false, &approvals, party(3, None), requester, b),
            Standing::Closed
        );
    }
}
