//! [`ServiceError`]: why a use case did not happen. `api::error` maps it to a status and a
//! JSON body, `web` to a page in the user's language; neither decides anything itself.

use crate::auth::AuthError;
use crate::auth::throttle::Blocked;
use crate::domain::alert::IllegalTransition;
use crate::domain::approval::ApprovalError;
use crate::domain::carrier::{CarrierInputError, RegistrationError};
use crate::domain::device::PlacementError;
use crate::domain::ids::CarrierId;
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

impl Problem {
    /// `Ok` when nothing was found wrong, else every problem as [`ServiceError::Invalid`]: the
    /// last line of every input check.
    pub fn none_or_invalid(problems: Vec<Problem>) -> Result<(), ServiceError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(problems))
        }
    }

    /// The problems of a request's carrier list (`carrier_ids`): 1 to `max` carriers (`bound`
    /// says so in words, e.g. "carrier_ids must list 1 to 100 carriers"), none repeated.
    pub fn carrier_list(
        problems: &mut Vec<Problem>,
        ids: &[CarrierId],
        max: usize,
        bound: &'static str,
    ) {
        if ids.is_empty() || ids.len() > max {
            problems.push(Problem {
                field: "carrier_ids",
                code: if ids.is_empty() { "empty" } else { "too_many" },
                message: bound,
            });
        } else if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
            problems.push(Problem {
                field: "carrier_ids",
                code: "repeated",
                message: "carrier_ids repeats a carrier",
            });
        }
    }
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
    /// A stocktake, collection or retention rule says no.
    #[error(transparent)]
    Moves(#[from] crate::domain::moves::MoveRuleError),
    /// A person's status change is refused.
    #[error(transparent)]
    StatusChange(#[from] StatusChangeError),
    /// Separation of duties per person says no.
    #[error(transparent)]
    Duty(#[from] crate::domain::person::DutyError),
    /// A travel request breaks a rule.
    #[error(transparent)]
    Travel(#[from] crate::domain::person::TravelError),
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
    /// The code of a refusal (one rule, one place): what the pages put in `?refused=CODE` and
    /// `data-code`, and the `error` code the JSON API answers for a rule (422) or a state
    /// conflict (409). Malformed input, which the API answers 400 `bad_request` naming every
    /// problem in its message, gives its first problem's own code (`empty`, `invalid`, ...)
    /// so a page can say which. `None` for the server's own failures (storage, hashing):
    /// those are not the user's to fix.
    pub fn refusal_code(&self) -> Option<&'static str> {
        Some(match self {
            ServiceError::Invalid(problems) => problems.first().map_or("invalid", |p| p.code),
            ServiceError::NotFound => "not_found",
            ServiceError::UnknownReference { .. } => "unknown_reference",
            ServiceError::Duplicate { .. } | ServiceError::AlertTransition(_) => "conflict",
            ServiceError::Registration(errors) => match errors.first() {
                Some(RegistrationError::Rule(rule)) => rule.code(),
                Some(RegistrationError::Input(CarrierInputError::RepeatedTag { .. })) => "conflict",
                Some(RegistrationError::Input(_)) | None => "invalid",
            },
            ServiceError::Account(errors) => match errors.first() {
                Some(AccountError::Roles(_)) => "role_conflict",
                Some(AccountError::Password(e)) => e.code(),
                Some(AccountError::Username) | None => "invalid",
            },
            ServiceError::InvalidCredentials => "invalid_credentials",
            ServiceError::LoginBlocked(_) => "too_many_attempts",
            ServiceError::AccountChange(e) => e.code(),
            ServiceError::Placement(_) => "invalid_placement",
            ServiceError::Signout(e) => e.code(),
            ServiceError::Approval(e) => e.code(),
            ServiceError::EndOfLife { code, .. } => code,
            ServiceError::Moves(e) => e.code(),
            ServiceError::StatusChange(e) => e.code(),
            ServiceError::Duty(e) => e.code(),
            ServiceError::Travel(e) => e.code(),
            ServiceError::Lifecycle(e) => e.code(),
            ServiceError::Store(_) | ServiceError::Auth(_) => return None,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthError;
    use crate::domain::alert::AlertState;
    use crate::domain::carrier::CarrierRuleError;
    use crate::domain::lifecycle::LifecycleError;
    use crate::domain::moves::MoveRuleError;
    use crate::domain::person::{DutyError, TravelError};
    use crate::domain::role::RoleError;
    use crate::domain::user::PasswordPolicyError;

    fn code(e: ServiceError) -> Option<&'static str> {
        e.refusal_code()
    }

    #[test]
    fn input_and_lookups_have_their_codes() {
        assert_eq!(
            code(ServiceError::invalid("reason", "empty", "x")),
            Some("empty")
        );
        assert_eq!(code(ServiceError::Invalid(Vec::new())), Some("invalid"));
        assert_eq!(code(ServiceError::NotFound), Some("not_found"));
        assert_eq!(
            code(ServiceError::UnknownReference { what: "zone" }),
            Some("unknown_reference")
        );
        assert_eq!(
            code(ServiceError::Duplicate { what: "tag" }),
            Some("conflict")
        );
        let illegal = IllegalTransition {
            from: AlertState::Open,
            to: AlertState::Open,
        };
        assert_eq!(
            code(ServiceError::AlertTransition(illegal)),
            Some("conflict")
        );
    }

    #[test]
    fn registrations_and_accounts_have_their_codes() {
        let rule = RegistrationError::Rule(CarrierRuleError::CopyNumberRequired);
        assert_eq!(
            code(ServiceError::Registration(vec![rule])),
            Some("copy_number_required")
        );
        let repeat = RegistrationError::Input(CarrierInputError::RepeatedTag { index: 1 });
        assert_eq!(
            code(ServiceError::Registration(vec![repeat])),
            Some("conflict")
        );
        assert_eq!(
            code(ServiceError::Registration(Vec::new())),
            Some("invalid")
        );
        let roles = AccountError::Roles(RoleError::Empty);
        assert_eq!(
            code(ServiceError::Account(vec![roles])),
            Some("role_conflict")
        );
        let weak = AccountError::Password(PasswordPolicyError::TooShort);
        assert_eq!(
            code(ServiceError::Account(vec![weak])),
            Some("weak_password")
        );
        assert_eq!(
            code(ServiceError::Account(vec![AccountError::Username])),
            Some("invalid")
        );
        assert_eq!(
            code(ServiceError::InvalidCredentials),
            Some("invalid_credentials")
        );
        let blocked = Blocked {
            retry_after_secs: 5,
        };
        assert_eq!(
            code(ServiceError::LoginBlocked(blocked)),
            Some("too_many_attempts")
        );
        assert_eq!(
            code(AccountChangeError::DisableSelf.into()),
            Some("cannot_disable_self")
        );
    }

    #[test]
    fn rules_have_their_own_codes() {
        assert_eq!(
            code(ServiceError::Signout(SignoutRuleError::SelfApproval)),
            Some("self_approval")
        );
        assert_eq!(
            code(ApprovalError::SelfApproval.into()),
            Some("self_approval")
        );
        let end = ServiceError::EndOfLife {
            code: "witness_required",
            message: String::new(),
        };
        assert_eq!(code(end), Some("witness_required"));
        assert_eq!(
            code(MoveRuleError::StocktakeClosed.into()),
            Some("stocktake_closed")
        );
        assert_eq!(
            code(StatusChangeError::AlreadyLeaving.into()),
            Some("already_leaving")
        );
        assert_eq!(
            code(DutyError::PersonRequired.into()),
            Some("person_required")
        );
        assert_eq!(
            code(TravelError::EndsBeforeStart.into()),
            Some("ends_before_start")
        );
        assert_eq!(
            code(LifecycleError::AlreadyMissing.into()),
            Some("already_missing")
        );
        assert_eq!(
            code(PlacementError::GateNeedsBothSides.into()),
            Some("invalid_placement")
        );
    }

    #[test]
    fn the_servers_own_failures_have_none() {
        let store = StoreError::CommitFailed("disk".into());
        assert_eq!(code(ServiceError::Store(store)), None);
        assert_eq!(code(ServiceError::Auth(AuthError::Task)), None);
    }
}
