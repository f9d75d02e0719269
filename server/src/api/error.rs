//! The one HTTP error type: decides the status and the public message.
//!
//! Every error answers `{"error": "code", "message": "..."}`. Internal failures are logged with
//! their cause and answered with a generic message: SQL, paths and stack details never reach
//! the client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::domain::approval::ApprovalError;
use crate::domain::carrier::{CarrierInputError, RegistrationError};
use crate::domain::person::StatusChangeError;
use crate::domain::signout::SignoutRuleError;
use crate::domain::user::{AccountChangeError, AccountError};
use crate::service::ServiceError;
use crate::store::StoreError;

/// The body of every error answer (user and device endpoints alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: `bad_request`, `unauthenticated`, `invalid_credentials`,
    /// `forbidden`, `password_change_required`, `wrong_password`, `csrf`, `not_found`,
    /// `method_not_allowed`, `conflict`, `too_many_attempts`, `too_many_failures`, `busy` (503),
    /// `payload_too_large`, `unsupported_media_type`, `internal`, a rule's own code (422, such
    /// as `self_approval`), a state conflict's own code (409, such as `not_approved`), or a
    /// device refusal (`device_auth_failed`, `seq_gap`, `replay_rejected`, `clock_skew`,
    /// `not_a_gate`).
    pub error: String,
    /// Human-readable reason (never internal details).
    pub message: String,
    /// `seq_gap` only: the first sequence number the server lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resend_from: Option<u64>,
    /// A refused issue only: the code of every reason (`error` is the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

impl ErrorBody {
    /// `{error, message}` without the optional fields.
    pub fn new(error: &str, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: error.to_owned(),
            message: message.into(),
            resend_from: None,
            reasons: None,
        }
    }
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session.
    #[error("authentication required")]
    Unauthenticated,
    /// 401: login refused.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// 403: the session lacks the role.
    #[error("not allowed for your roles")]
    Forbidden,
    /// 403: the account must change its password first (`POST /session/password`).
    #[error("change your password first (POST /api/v1/session/password)")]
    PasswordChangeRequired,
    /// 403: the current password given for a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// 403: cookie-authenticated change without the CSRF header.
    #[error("missing or wrong x-csrf-token")]
    CsrfRejected,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: duplicate.
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: not JSON.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 429: too many failed sign-ins for the username; `Retry-After` says when to try again.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until an attempt is taken again.
        retry_after_secs: u64,
    },
    /// 429: too many failed unauthenticated requests from this source address (devices);
    /// `Retry-After` says when to try again.
    #[error("too many failed requests from this address; try again in {retry_after_secs} s")]
    TooManyFailures {
        /// Seconds until a request is heard again.
        retry_after_secs: u64,
    },
    /// 503: every password-hashing slot is busy (a sign-in flood); `Retry-After` says when to
    /// try again.
    #[error("too many sign-ins at once; try again in {retry_after_secs} s")]
    Busy {
        /// Seconds until a retry is reasonable.
        retry_after_secs: u64,
    },
    /// 409: the state does not allow the step; the code names why (`not_approved`, ...).
    #[error("{message}")]
    StateConflict {
        /// Machine-readable reason.
        code: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// 422 naming every reason (`reasons`); `error` is the first (a refused issue).
    #[error("{message}")]
    Refused {
        /// Every reason's code.
        reasons: Vec<&'static str>,
        /// Every reason in words.
        message: String,
    },
    /// 422: a rule says no.
    #[error("{message}")]
    Rule {
        /// Machine-readable reason.
        code: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// 401 to a device: unknown device, missing or bad signature (deliberately not
    /// distinguished).
    #[error("device authentication failed")]
    DeviceUnauthenticated,
    /// 409 to a device: the batch would leave a gap; `resend_from` says where to resume.
    #[error("sequence gap: resend from seq {resend_from}")]
    SeqGap {
        /// The first seq the server lacks.
        resend_from: u64,
    },
    /// 409 to a device: refused as a replay.
    #[error("{0}")]
    Replay(String),
    /// 409 to a device: its clock is too far from the server's.
    #[error("device clock differs from the server's by more than the allowed skew")]
    ClockSkew,
    /// 409 to a device: an event of its batch has a time the register cannot hold (`seq`
    /// names it); nothing of the batch was stored.
    #[error("event seq {seq} has an implausible time ({at_ms} ms): restamp it and resend")]
    EventClockSkew {
        /// The first offending event.
        seq: u64,
        /// Its time.
        at_ms: i64,
    },
    /// 422 to a device: only gates have a gate policy.
    #[error("only a gate has a gate policy")]
    NotAGate,
    /// 507: the disk is full; nothing was stored. Logged once per refused request.
    #[error("storage full: the server cannot store anything until disk space is freed")]
    StorageFull,
    /// 500: logged, not explained.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 422 with `code`.
    pub fn rule(code: &'static str, message: impl std::fmt::Display) -> ApiError {
        ApiError::Rule {
            code,
            message: message.to_string(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::CsrfRejected => (StatusCode::FORBIDDEN, "csrf"),
            ApiError::PasswordChangeRequired => (StatusCode::FORBIDDEN, "password_change_required"),
            ApiError::WrongPassword => (StatusCode::FORBIDDEN, "wrong_password"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::TooManyAttempts { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
            }
            ApiError::TooManyFailures { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_failures")
            }
            ApiError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::StateConflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::Refused { reasons, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                reasons.first().copied().unwrap_or("issue_refused"),
            ),
            ApiError::Rule { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::DeviceUnauthenticated => (StatusCode::UNAUTHORIZED, "device_auth_failed"),
            ApiError::SeqGap { .. } => (StatusCode::CONFLICT, "seq_gap"),
            ApiError::Replay(_) => (StatusCode::CONFLICT, "replay_rejected"),
            ApiError::ClockSkew | ApiError::EventClockSkew { .. } => {
                (StatusCode::CONFLICT, "clock_skew")
            }
            ApiError::NotAGate => (StatusCode::UNPROCESSABLE_ENTITY, "not_a_gate"),
            ApiError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        if let ApiError::StorageFull = &self {
            tracing::error!("storage full: a write was refused (free disk space)");
        }
        let mut body = ErrorBody::new(code, self.to_string());
        if let ApiError::Refused { reasons, .. } = &self {
            body.reasons = Some(reasons.iter().map(|r| (*r).to_owned()).collect());
        }
        if let ApiError::SeqGap { resend_from } = &self {
            body.resend_from = Some(*resend_from);
        }
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyAttempts { retry_after_secs }
        | ApiError::TooManyFailures { retry_after_secs }
        | ApiError::Busy { retry_after_secs } = self
        {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Duplicate { what } => ApiError::Conflict(format!("{what} already exists")),
            StoreError::UnknownReference { what } => {
                ApiError::rule("unknown_reference", format!("unknown {what}"))
            }
            StoreError::NotFound => ApiError::NotFound,
            StoreError::StorageFull => ApiError::StorageFull,
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    /// The status is decided here; a refusal's code is [`ServiceError::refusal_code`], the
    /// same one the pages show.
    fn from(e: ServiceError) -> ApiError {
        let code = e.refusal_code().unwrap_or("internal");
        match e {
            ServiceError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::UnknownReference { what } => {
                ApiError::rule(code, format!("unknown {what}"))
            }
            ServiceError::Duplicate { what } => {
                ApiError::Conflict(format!("{what} already exists"))
            }
            ServiceError::Registration(errors) => registration_error(errors),
            ServiceError::Account(errors) => match errors.into_iter().next() {
                Some(AccountError::Roles(e)) => ApiError::rule(code, e),
                Some(AccountError::Password(e)) => ApiError::rule(code, e),
                Some(e @ AccountError::Username) => ApiError::BadRequest(e.to_string()),
                None => ApiError::BadRequest("invalid account".into()),
            },
            ServiceError::InvalidCredentials => ApiError::InvalidCredentials,
            ServiceError::LoginBlocked(b) => ApiError::TooManyAttempts {
                retry_after_secs: b.retry_after_secs,
            },
            ServiceError::Auth(AuthError::Busy { retry_after_secs }) => {
                ApiError::Busy { retry_after_secs }
            }
            ServiceError::Auth(e) => ApiError::Internal(e.to_string()),
            ServiceError::AccountChange(AccountChangeError::WrongPassword) => {
                ApiError::WrongPassword
            }
            ServiceError::AccountChange(e) => ApiError::rule(code, e),
            ServiceError::Placement(e) => ApiError::rule(code, e),
            ServiceError::Signout(e) => e.into(),
            ServiceError::Approval(e) => approval_error(e),
            ServiceError::EndOfLife { message, .. } => ApiError::rule(code, message),
            ServiceError::StatusChange(e) => e.into(),
            ServiceError::Duty(e) => ApiError::rule(code, e),
            ServiceError::Travel(e) => ApiError::rule(code, e),
            ServiceError::Moves(e) if e.is_state_conflict() => ApiError::StateConflict {
                code,
                message: e.to_string(),
            },
            ServiceError::Moves(e) => ApiError::rule(code, e),
            ServiceError::AlertTransition(e) => ApiError::Conflict(e.to_string()),
            ServiceError::Lifecycle(e) if e.is_state_conflict() => ApiError::StateConflict {
                code,
                message: e.to_string(),
            },
            ServiceError::Lifecycle(e) => ApiError::rule(code, e),
            ServiceError::Store(e) => e.into(),
        }
    }
}

/// A refused registration, by its first problem: malformed → 400 (every form problem named), a
/// tag repeated within the request → 409 like a tag already registered, a rule → 422 with its
/// code.
fn registration_error(errors: Vec<RegistrationError>) -> ApiError {
    let message = |errors: &[RegistrationError]| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    match errors.first() {
        Some(RegistrationError::Input(CarrierInputError::RepeatedTag { .. })) => {
            ApiError::Conflict(errors[0].to_string())
        }
        Some(RegistrationError::Input(_)) => ApiError::BadRequest(message(&errors)),
        Some(RegistrationError::Rule(rule)) => ApiError::rule(rule.code(), message(&errors)),
        None => ApiError::BadRequest("invalid registration".into()),
    }
}

/// A refused decision or carry-out: a rule (`self_approval`; `not_approved` when carrying out
/// a request before its approval) → 422; a state that does not allow it
/// (`already_approved`, `not_requested`) → 409.
fn approval_error(e: ApprovalError) -> ApiError {
    let code = e.code();
    match e {
        ApprovalError::SelfApproval | ApprovalError::NotApproved(_) => ApiError::rule(code, e),
        ApprovalError::AlreadyApproved | ApprovalError::NotAwaitingApproval(_) => {
            ApiError::StateConflict {
                code,
                message: e.to_string(),
            }
        }
    }
}

impl From<SignoutRuleError> for ApiError {
    fn from(e: SignoutRuleError) -> ApiError {
        let code = e.code();
        match e {
            SignoutRuleError::NoCarriers | SignoutRuleError::NothingToReturn => {
                ApiError::BadRequest(e.to_string())
            }
            SignoutRuleError::DueNotInFuture
            | SignoutRuleError::SelfApproval
            | SignoutRuleError::OverrideReasonRequired
            | SignoutRuleError::OverrideNotRequested => ApiError::rule(code, e),
            SignoutRuleError::Refused(reasons) => ApiError::Refused {
                message: reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
                reasons: reasons.into_iter().map(|r| r.code()).collect(),
            },
            SignoutRuleError::CarrierUnavailable { .. }
            | SignoutRuleError::AlreadyApproved
            | SignoutRuleError::NotAwaitingApproval(_)
            | SignoutRuleError::NotApproved(_)
            | SignoutRuleError::NotOut(_)
            | SignoutRuleError::CarrierNotOut { .. }
            | SignoutRuleError::NotCancellable(_) => ApiError::StateConflict {
                code,
                message: e.to_string(),
            },
        }
    }
}

impl From<StatusChangeError> for ApiError {
    fn from(e: StatusChangeError) -> ApiError {
        match e {
            StatusChangeError::PeriodOutOfRange | StatusChangeError::PeriodTooShort => {
                ApiError::rule(e.code(), e)
            }
            StatusChangeError::AlreadyLeaving
            | StatusChangeError::AlreadyDeparted
            | StatusChangeError::NotLeaving
            | StatusChangeError::NotCleared
            | StatusChangeError::AlreadyCleared
            | StatusChangeError::CarriersOutstanding { .. } => ApiError::StateConflict {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            // Syntax errors, wrong types and unknown fields are all bad input (axum would say
            // 422 for the latter two; 422 is kept for rule violations here).
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(rejection.body_text())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_out_of_the_message() {
        let e = ApiError::from(StoreError::CommitFailed("disk I/O error at /var/x".into()));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status_and_code().0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn store_refusals_map_to_client_statuses() {
        let dup = ApiError::from(StoreError::Duplicate { what: "username" });
        assert_eq!(dup.status_and_code(), (StatusCode::CONFLICT, "conflict"));
        let unknown = ApiError::from(StoreError::UnknownReference { what: "zone" });
        assert_eq!(
            unknown.status_and_code(),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_reference")
        );
        assert_eq!(unknown.to_string(), "unknown zone");
    }

    #[test]
    fn rule_and_state_codes_are_the_pages_codes() {
        use crate::domain::lifecycle::LifecycleError;
        use crate::domain::moves::MoveRuleError;
        use crate::domain::person::DutyError;
        for e in [
            ServiceError::UnknownReference { what: "zone" },
            ServiceError::Approval(ApprovalError::SelfApproval),
            ServiceError::Approval(ApprovalError::AlreadyApproved),
            ServiceError::Signout(SignoutRuleError::SelfApproval),
            ServiceError::Moves(MoveRuleError::StocktakeClosed),
            ServiceError::Lifecycle(LifecycleError::AlreadyMissing),
            ServiceError::StatusChange(StatusChangeError::AlreadyLeaving),
            ServiceError::Duty(DutyError::PersonRequired),
            ServiceError::AccountChange(AccountChangeError::DisableSelf),
            ServiceError::EndOfLife {
                code: "witness_required",
                message: String::new(),
            },
        ] {
            let page = e.refusal_code();
            let (status, code) = ApiError::from(e).status_and_code();
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::CONFLICT,
                "{code}: {status}"
            );
            assert_eq!(page, Some(code));
        }
    }

    #[test]
    fn refusals_have_their_codes() {
        assert_eq!(
            ApiError::DeviceUnauthenticated.status_and_code(),
            (StatusCode::UNAUTHORIZED, "device_auth_failed")
        );
        assert_eq!(
            ApiError::SeqGap { resend_from: 3 }.status_and_code(),
            (StatusCode::CONFLICT, "seq_gap")
        );
        assert_eq!(
            ApiError::Replay(String::new()).status_and_code(),
            (StatusCode::CONFLICT, "replay_rejected")
        );
        let e = ApiError::from(ServiceError::Store(StoreError::CommitFailed(
            "disk I/O error at /x".into(),
        )));
        assert_eq!(e.to_string(), "internal error");
    }
}
