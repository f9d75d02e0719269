//! Sign-outs: `POST /signouts` (custodian), `POST /signouts/{id}/approve` (security officer),
//! `POST /signouts/{id}/issue` and `/return` (custodian), `POST /signouts/{id}/cancel` and
//! `GET /signouts`, `GET /signouts/{id}` (custodian, security officer).
//!
//! Rule refusals answer with their own codes ([`CustodyError`]): 409 when the state does not
//! allow the step (`not_approved`, `already_approved`, `carrier_not_out`, ...), 422 when a rule
//! says no (`self_approval`, `due_in_past`, and an issue refusal, which lists every reason in
//! `reasons`, its first one being `error`).

use axum::Json as AxumJson;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::carriers::CustodyReader;
use super::error::ApiError;
use super::extract::{Json, Query};
use crate::AppState;
use crate::auth::capability::{CustodianCap, SecurityOfficerCap};
use crate::domain::ids::{CarrierId, PersonId, SignoutId, is_valid_label};
use crate::domain::person::StatusChangeError;
use crate::domain::signout::{MAX_CARRIERS, SignoutRuleError, SignoutState};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::signouts::{Approved, Issued, NewSignout, Returned, Signout};

/// An error answer of the custody endpoints: the usual [`ApiError`]s, plus refusals that name
/// their own code.
#[derive(Debug)]
pub enum CustodyError {
    /// Anything the shared error type covers.
    Api(ApiError),
    /// 409 with a specific code.
    Conflict {
        /// Machine-readable reason.
        code: &'static str,
        /// Human-readable reason.
        message: String,
    },
    /// 422 naming every reason (`reasons`); `error` is the first.
    Refused {
        /// Every reason's code.
        reasons: Vec<&'static str>,
        /// Every reason in words.
        message: String,
    },
}

impl From<ApiError> for CustodyError {
    fn from(e: ApiError) -> CustodyError {
        CustodyError::Api(e)
    }
}

impl From<StoreError> for CustodyError {
    fn from(e: StoreError) -> CustodyError {
        CustodyError::Api(e.into())
    }
}

impl From<SignoutRuleError> for CustodyError {
    fn from(e: SignoutRuleError) -> CustodyError {
        let code = e.code();
        match e {
            SignoutRuleError::NoCarriers | SignoutRuleError::NothingToReturn => {
                CustodyError::Api(ApiError::BadRequest(e.to_string()))
            }
            SignoutRuleError::DueNotInFuture | SignoutRuleError::SelfApproval => {
                CustodyError::Api(ApiError::rule(code, e))
            }
            SignoutRuleError::Refused(reasons) => CustodyError::Refused {
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
            | SignoutRuleError::NotCancellable(_) => CustodyError::Conflict {
                code,
                message: e.to_string(),
            },
        }
    }
}

impl From<StatusChangeError> for CustodyError {
    fn from(e: StatusChangeError) -> CustodyError {
        match e {
            StatusChangeError::PeriodOutOfRange => CustodyError::Api(ApiError::rule(e.code(), e)),
            StatusChangeError::AlreadyLeaving
            | StatusChangeError::AlreadyDeparted
            | StatusChangeError::CarriersOutstanding { .. } => CustodyError::Conflict {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

impl IntoResponse for CustodyError {
    fn into_response(self) -> Response {
        match self {
            CustodyError::Api(e) => e.into_response(),
            CustodyError::Conflict { code, message } => (
                StatusCode::CONFLICT,
                AxumJson(json!({"error": code, "message": message})),
            )
                .into_response(),
            CustodyError::Refused { reasons, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                AxumJson(json!({
                    "error": reasons.first().copied().unwrap_or("issue_refused"),
                    "message": message,
                    "reasons": reasons,
                })),
            )
                .into_response(),
        }
    }
}

fn signout_id(text: &str) -> Result<SignoutId, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound)
}

/// Sign-out request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSignout {
    carrier_ids: Vec<CarrierId>,
    borrower: PersonId,
    purpose: String,
    due_at: Timestamp,
    may_leave: bool,
}

/// The answer to a request.
#[derive(Debug, Serialize)]
pub struct Requested {
    id: SignoutId,
    state: SignoutState,
}

fn check_carrier_list(ids: &[CarrierId]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > MAX_CARRIERS {
        return Err(ApiError::BadRequest(
            "carrier_ids must list 1 to 100 carriers".into(),
        ));
    }
    if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
        return Err(ApiError::BadRequest("carrier_ids repeats a carrier".into()));
    }
    Ok(())
}

/// Request a sign-out.
pub async fn create(
    cap: CustodianCap,
    State(state): State<AppState>,
    Json(body): Json<RequestSignout>,
) -> Result<(StatusCode, AxumJson<Requested>), CustodyError> {
    check_carrier_list(&body.carrier_ids)?;
    if !is_valid_label(&body.purpose) {
        return Err(
            ApiError::BadRequest("purpose must be 1 to 200 printable characters".into()).into(),
        );
    }
    let new = NewSignout {
        carrier_ids: body.carrier_ids,
        borrower: body.borrower,
        purpose: body.purpose,
        due_at: body.due_at,
        may_leave: body.may_leave,
    };
    let id = state
        .store()
        .request_signout(&cap, new, state.now())
        .await??;
    Ok((
        StatusCode::CREATED,
        AxumJson(Requested {
            id,
            state: SignoutState::Requested,
        }),
    ))
}

/// Approve a sign-out (a TS sign-out stays `requested` until its second approver).
pub async fn approve(
    cap: SecurityOfficerCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Approved>, CustodyError> {
    let id = signout_id(&id)?;
    let approved = state
        .store()
        .approve_signout(&cap, id, state.now())
        .await??;
    Ok(AxumJson(approved))
}

/// Hand an approved sign-out's carriers to the borrower.
pub async fn issue(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Issued>, CustodyError> {
    let id = signout_id(&id)?;
    let issued = state.store().issue_signout(&cap, id, state.now()).await??;
    Ok(AxumJson(issued))
}

/// Return body; absent or `{}` returns every outstanding carrier.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnCarriers {
    #[serde(default)]
    carrier_ids: Option<Vec<CarrierId>>,
}

/// Take carriers back, some or all.
pub async fn return_carriers(
    cap: CustodianCap,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<AxumJson<Returned>, CustodyError> {
    let id = signout_id(&id)?;
    let body: ReturnCarriers = if body.iter().all(u8::is_ascii_whitespace) {
        ReturnCarriers::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    if let Some(ids) = &body.carrier_ids {
        if ids.len() > MAX_CARRIERS {
            return Err(
                ApiError::BadRequest("carrier_ids lists more than 100 carriers".into()).into(),
            );
        }
    }
    let returned = state
        .store()
        .return_signout(&cap, id, body.carrier_ids, state.now())
        .await??;
    Ok(AxumJson(returned))
}

/// The answer to a cancellation.
#[derive(Debug, Serialize)]
pub struct Cancelled {
    id: SignoutId,
    state: SignoutState,
}

/// Cancel a sign-out that has not been issued.
pub async fn cancel(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Cancelled>, CustodyError> {
    let id = signout_id(&id)?;
    let new_state = state
        .store()
        .cancel_signout(&cap, id, state.now())
        .await??;
    Ok(AxumJson(Cancelled {
        id,
        state: new_state,
    }))
}

/// Filter of `GET /signouts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
}

/// Sign-outs, optionally in one state; requested and approved ones say what an issue would
/// be refused for today (`would_refuse`).
pub async fn list(
    cap: CustodyReader,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<AxumJson<Vec<Signout>>, ApiError> {
    let filter = match query.state.as_deref() {
        None | Some("") => None,
        Some(name) => Some(SignoutState::from_name(name).ok_or_else(|| {
            ApiError::BadRequest(
                "state must be requested, approved, out, returned or cancelled".into(),
            )
        })?),
    };
    let today = state.now().date();
    Ok(AxumJson(state.store().signouts(&cap, filter, today).await?))
}

/// One sign-out.
pub async fn one(
    cap: CustodyReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<AxumJson<Signout>, ApiError> {
    let id = signout_id(&id)?;
    let today = state.now().date();
    Ok(AxumJson(state.store().signout(&cap, id, today).await?))
}
