//! [`ServiceError`]: why a use case did not happen. `api::error` maps it to a status and a
//! JSON body, `web` to a page in the user's language; neither decides anything itself.

use crate::auth::AuthError;
use crate::auth::throttle::Blocked;
use crate::domain::alert::IllegalTransition;
use crate::domain::approval::ApprovalError;
use crate::domain::carrier::RegistrationError;
use crate::domain::device::PlacementError;
use crate::domain::lifecycle::LifecycleError;
use crate::domain::person::StatusChangeError;
use crate::domain::signout::SignoutRuleError;
use crate::domain::user::{AccountChangeError, AccountError};
use crate::store::StoreError;

/// One thing wrong with a use case's input, before any rule ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The input field (as the API names it).
    pub field: &'static str,
    /// Machine-readable reason, e.g. `empty`, `too_many`, `repeated`, `invalid`.
    pub code: &'static str,
    /// The reason in words (English; pages translate by field and code).
    pub message: &'static str,
}

/// Why a use case was refused or failed. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is malformed: every problem found, in field order.
    #[error("{}", .0.iter().map(|p| p.message).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The thing asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The input names something that does not exist (a carrier, a borrower, a zone).
    #[error("unknown {what}")]
    UnknownReference {
        /// What was not found.
        what: &'static str,
    },
    /// A unique key is taken.
    #[error("{what} already exists")]
    Duplicate {
        /// What was duplicated.
        what: &'static str,
    },
    /// A carrier registration is malformed or breaks a rule: every problem found, form
    /// problems (in field order) before rules.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Registration(Vec<RegistrationError>),
    /// A new account is refused: every problem found (username, roles, password).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Account(Vec<AccountError>),
    /// Unknown user, wrong password or disabled account (deliberately not distinguished).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed sign-ins for this username: refused without a password check.
    #[error("too many failed sign-ins; try again in {} s", .0.retry_after_secs)]
    LoginBlocked(Blocked),
    /// A change to an existing account is refused.
    #[error(transparent)]
    AccountChange(#[from] AccountChangeError),
    /// A device's zones do not fit its kind.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// A sign-out rule says no.
    #[error(transparent)]
    Signout(#[from] SignoutRuleError),
    /// An approval rule says no (any request kind but sign-outs, which keep their own).
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// An end-of-life rule (copy, reclassification, destruction) says no.
    #[error("{message}")]
    EndOfLife {
        /// Machine-readable code.
        code: &'static str,
        /// The reason in words.
        message: String,
    },
    /// A person's status change is refused.
    #[error(transparent)]
    StatusChange(#[from] StatusChangeError),
    /// An alert's lifecycle does not allow the move.
    #[error(transparent)]
    AlertTransition(#[from] IllegalTransition),
    /// A lifecycle rule says no (correction, missing/found, loan limit).
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Hashing a password or drawing a token failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl ServiceError {
    /// One problem with one field.
    pub fn invalid(field: &'static str, code: &'static str, message: &'static str) -> Self {
        ServiceError::Invalid(vec![Problem {
            field,
            code,
            message,
        }])
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> ServiceError {
        match e {
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::UnknownReference { what } => ServiceError::UnknownReference { what },
            StoreError::Duplicate { what } => ServiceError::Duplicate { what },
            other => ServiceError::Store(other),
        }
    }
}
