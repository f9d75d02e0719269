//! Sign-outs: request, approve, issue, return, cancel, and the views of them.
//!
//! Each step is one transaction on the single writer, so two racing requests (a
//! double-clicked "issue") are serialised: the second loads what the first committed and is
//! refused by the rule. Rules are checked before anything is written, so a refusal changes
//! nothing.
//!
//! # Returns seen by a cabinet
//! [`record_cabinet_return`] is for the ingest use case: when a cabinet reports a signed-out
//! carrier back on its shelves, it records the return exactly as a custodian's would, with
//! `device:ID` as the actor.

use serde::Serialize;
use serde_json::json;

use super::lifecycle;
use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodianCap, CustodyReader, SecurityOfficerCap};
use crate::domain::ids::{CarrierId, DeviceId, SignoutId, is_valid_label};
use crate::domain::level::Level;
use crate::domain::page::{Page, Sort, SortKey, SortValue, paginate, search_words, words_match};
use crate::domain::signout::{
    self, ApprovalOutcome, MAX_CARRIERS, ReturnPlan, SignoutState, approvals_required,
    issue_refusals,
};
use crate::domain::time::{Date, Timestamp};
use crate::service::lists::{ListParams, WORDS_MAX};
use crate::store::Tx;
use crate::store::signouts::{NewSignout, Signout};

/// The answer to an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Issued {
    /// Sign-out id.
    pub id: SignoutId,
    /// `out`.
    pub state: SignoutState,
    /// When.
    pub issued_at: Timestamp,
}

/// The answer to a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Returned {
    /// Sign-out id.
    pub id: SignoutId,
    /// `returned` once every carrier is back, else still `out`.
    pub state: SignoutState,
    /// The carriers this return took back.
    pub returned: Vec<CarrierId>,
    /// The carriers still out.
    pub outstanding: Vec<CarrierId>,
}

/// The answer to an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Approved {
    /// Sign-out id.
    pub id: SignoutId,
    /// `approved`, or still `requested` while a TS sign-out waits for its second approver.
    pub state: SignoutState,
    /// Approvals still needed.
    pub approvals_needed: u32,
}

/// Check a request's input: the carrier list, and a purpose that is a label. (A form that
/// cannot yet build a whole request checks its parts here too.)
pub fn check_request_input(carrier_ids: &[CarrierId], purpose: &str) -> Result<(), ServiceError> {
    check_request_parts(carrier_ids, purpose, None)
}

/// [`check_request_input`] plus a "needs override" note, which is a label when given.
fn check_request_parts(
    carrier_ids: &[CarrierId],
    purpose: &str,
    override_note: Option<&str>,
) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    Problem::carrier_list(
        &mut problems,
        carrier_ids,
        MAX_CARRIERS,
        "carrier_ids must list 1 to 100 carriers",
    );
    if !is_valid_label(purpose) {
        problems.push(Problem {
            field: "purpose",
            code: "invalid",
            message: "purpose must be 1 to 200 printable characters",
        });
    }
    if override_note.is_some_and(|note| !is_valid_label(note)) {
        problems.push(Problem {
            field: "override_note",
            code: "invalid",
            message: "override_note must be 1 to 200 printable characters",
        });
    }
    Problem::none_or_invalid(problems)
}

/// Request a sign-out. Unknown carriers or borrower: [`ServiceError::UnknownReference`].
pub async fn request(
    app: &AppState,
    cap: &CustodianCap,
    new: NewSignout,
) -> Result<SignoutId, ServiceError> {
    check_request_parts(&new.carrier_ids, &new.purpose, new.override_note.as_deref())?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let loans = app.settings().loans;
    app.store()
        .transact(move |tx| {
            let id = request_in(tx, &actor, &new, at)?;
            // The loan limit per level (a refusal rolls the request back).
            lifecycle::check_loan_in(tx, &loans, &new.carrier_ids, new.due_at, at)?;
            Ok::<_, ServiceError>(id)
        })
        .await
}

fn request_in(
    tx: &mut dyn Tx,
    actor: &str,
    new: &NewSignout,
    at: Timestamp,
) -> Result<SignoutId, ServiceError> {
    let requester = tx.party_by_username(actor)?;
    tx.borrower(new.borrower)?;
    let carriers = tx.carrier_standings(&new.carrier_ids, None)?;
    // In repair first: the clearer reason when a carrier is also claimed by a sign-out.
    super::moves::refuse_in_repair(tx, &new.carrier_ids)?;
    signout::check_request(&carriers, new.due_at, at)?;
    let id = tx.insert_signout(requester.user, new, at)?;
    let carriers = tx.carrier_audit_names(&new.carrier_ids)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "signout.request",
        subject: format!("signout:{id}"),
        before: None,
        after: Some(json!({
            "id": id,
            "state": SignoutState::Requested,
            "carriers": carriers,
            "borrower": new.borrower,
            "purpose": new.purpose,
            "due_at": new.due_at,
            "may_leave": new.may_leave,
            "override_note": new.override_note,
        })),
    })?;
    Ok(id)
}

/// Approve a sign-out: never by its requester or borrower; TS needs two different people.
/// A sign-out sent as "needs override" is approved only with a written `override_reason`
/// (1 to 200 characters) from each approving officer, kept on the approval and in the audit.
pub async fn approve(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: SignoutId,
    override_reason: Option<String>,
) -> Result<Approved, ServiceError> {
    if let Some(reason) = &override_reason {
        super::approvals::check_reason("override_reason", reason)?;
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| approve_in(tx, &actor, id, override_reason.as_deref(), at))
        .await
}

fn approve_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: SignoutId,
    override_reason: Option<&str>,
    at: Timestamp,
) -> Result<Approved, ServiceError> {
    let head = tx.signout_head(id)?;
    let approver = tx.party_by_username(actor)?;
    let requester = tx.party_of(head.requester)?;
    let has_ts = tx.signout_levels(id)?.contains(&Level::TopSecret);
    let so_far = tx.approvers(id)?;
    let ApprovalOutcome {
        state,
        approvals_needed,
    } = signout::approve(
        head.state,
        &so_far,
        approver,
        requester,
        head.borrower,
        has_ts,
    )?;
    signout::check_override(head.needs_override, override_reason.is_some())?;
    tx.insert_approval(id, approver.user, override_reason, at)?;
    if state != head.state {
        tx.set_signout_state(id, state, None)?;
    }
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "signout.approve",
        subject: format!("signout:{id}"),
        before: Some(json!({"state": head.state, "approvals": so_far.len()})),
        after: Some(json!({
            "state": state,
            "approvals": so_far.len() + 1,
            "approvals_needed": approvals_needed,
            "override_reason": override_reason,
        })),
    })?;
    Ok(Approved {
        id,
        state,
        approvals_needed,
    })
}

/// The answer to a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Sign-out id.
    pub id: SignoutId,
    /// `rejected`.
    pub state: SignoutState,
}

/// Reject a sign-out awaiting approval, with a reason (1 to 200 characters): never by its
/// requester or borrower. Its carriers are free again at once.
pub async fn reject(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: SignoutId,
    reason: String,
) -> Result<Rejected, ServiceError> {
    super::approvals::check_reason("reason", &reason)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| reject_in(tx, &actor, id, &reason, at))
        .await
}

fn reject_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: SignoutId,
    reason: &str,
    at: Timestamp,
) -> Result<Rejected, ServiceError> {
    let head = tx.signout_head(id)?;
    let officer = tx.party_by_username(actor)?;
    let requester = tx.party_of(head.requester)?;
    let state = signout::reject(head.state, officer, requester, head.borrower)?;
    tx.reject_signout(id, officer.user, reason, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "signout.reject",
        subject: format!("signout:{id}"),
        before: Some(json!({"state": head.state})),
        after: Some(json!({"state": state, "reason": reason})),
    })?;
    Ok(Rejected { id, state })
}

/// Hand an approved sign-out's carriers to the borrower; refused (every reason named) for a
/// borrower who may not hold them today.
pub async fn issue(
    app: &AppState,
    cap: &CustodianCap,
    id: SignoutId,
) -> Result<Issued, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let loans = app.settings().loans;
    app.store()
        .transact(move |tx| {
            let issued = issue_in(tx, &actor, id, at)?;
            // The loan limit again from the moment of issue (a refusal rolls the issue back).
            lifecycle::check_issue_loan_in(tx, &loans, id, at)?;
            Ok::<_, ServiceError>(issued)
        })
        .await
}

fn issue_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: SignoutId,
    at: Timestamp,
) -> Result<Issued, ServiceError> {
    let head = tx.signout_head(id)?;
    let issuer = tx.party_by_username(actor)?;
    let ids = tx.signout_carriers(id)?;
    let carriers = tx.carrier_standings(&ids, Some(id))?;
    let person = tx.borrower(head.borrower)?;
    // An approved "needs override" sign-out carries every approver's written reason.
    let overridden = head.needs_override && head.state == SignoutState::Approved;
    let all = issue_refusals(&person, carriers.iter().map(|c| c.level), at.date());
    let waived: Vec<&str> = all
        .iter()
        .filter(|r| overridden && r.overridable())
        .map(|r| r.code())
        .collect();
    let mut refusals = signout::after_override(all, overridden);
    if issuer.person == Some(head.borrower) {
        refusals.push(signout::Refusal::SelfIssue);
    }
    signout::issue(head.state, &carriers, refusals)?;
    super::moves::refuse_in_repair(tx, &ids)?;
    tx.mark_issued(id, head.borrower, &ids, issuer.user, at)?;
    let carriers = tx.carrier_audit_names(&ids)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "signout.issue",
        subject: format!("signout:{id}"),
        before: Some(json!({"state": head.state})),
        after: Some(json!({
            "state": SignoutState::Out,
            "borrower": head.borrower,
            "carriers": carriers,
            "overridden": waived,
        })),
    })?;
    Ok(Issued {
        id,
        state: SignoutState::Out,
        issued_at: at,
    })
}

/// Take carriers back (`None`: every outstanding one; at most [`MAX_CARRIERS`] named).
pub async fn return_carriers(
    app: &AppState,
    cap: &CustodianCap,
    id: SignoutId,
    carriers: Option<Vec<CarrierId>>,
) -> Result<Returned, ServiceError> {
    return_checked(app, cap, id, carriers, None).await
}

/// What the custodian checked when the carriers came back (optional): the seal, the page
/// count, a note. Recorded in the return's audit entry, the register's own record of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnCondition {
    /// The seal was found intact (`false`: broken); absent: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_intact: Option<bool>,
    /// Pages counted on return (0 to 100000); absent: not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100000)]
    pub pages_counted: Option<u32>,
    /// What else was seen (at most 500 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// The most pages a return may report, and the longest note.
const MAX_PAGES: u32 = 100_000;
const MAX_CONDITION_NOTE: usize = 500;

/// Every problem of a condition check.
fn check_condition(c: &ReturnCondition) -> Vec<Problem> {
    let mut problems = Vec::new();
    if c.pages_counted.is_some_and(|p| p > MAX_PAGES) {
        problems.push(Problem {
            field: "condition.pages_counted",
            code: "too_large",
            message: "pages_counted is at most 100000",
        });
    }
    if c.note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_CONDITION_NOTE)
    {
        problems.push(Problem {
            field: "condition.note",
            code: "too_long",
            message: "note is at most 500 characters",
        });
    }
    problems
}

/// [`return_carriers`] with the condition the custodian found (recorded with the return).
pub async fn return_checked(
    app: &AppState,
    cap: &CustodianCap,
    id: SignoutId,
    carriers: Option<Vec<CarrierId>>,
    condition: Option<ReturnCondition>,
) -> Result<Returned, ServiceError> {
    let mut problems = Vec::new();
    if carriers.as_ref().is_some_and(|c| c.len() > MAX_CARRIERS) {
        problems.push(Problem {
            field: "carrier_ids",
            code: "too_many",
            message: "carrier_ids lists more than 100 carriers",
        });
    }
    if let Some(c) = &condition {
        problems.extend(check_condition(c));
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| return_in(tx, &actor, id, carriers.as_deref(), condition.as_ref(), at))
        .await
}

fn return_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: SignoutId,
    asked: Option<&[CarrierId]>,
    condition: Option<&ReturnCondition>,
    at: Timestamp,
) -> Result<Returned, ServiceError> {
    let head = tx.signout_head(id)?;
    let before = tx.outstanding_carriers(id)?;
    let plan = signout::plan_return(head.state, &before, asked)?;
    let by = format!("user:{actor}");
    let state = apply_return(tx, id, &plan, actor, &by, condition, at)?;
    let outstanding = before
        .into_iter()
        .filter(|c| !plan.returning.contains(c))
        .collect();
    Ok(Returned {
        id,
        state,
        returned: plan.returning,
        outstanding,
    })
}

/// Write a planned return: each carrier back in storage (a missing one is found), its row
/// marked with `by`, the sign-out closed if it was the last; then the audit entry.
fn apply_return(
    tx: &mut dyn Tx,
    id: SignoutId,
    plan: &ReturnPlan,
    actor: &str,
    by: &str,
    condition: Option<&ReturnCondition>,
    at: Timestamp,
) -> Result<SignoutState, ServiceError> {
    for carrier in &plan.returning {
        tx.mark_returned(id, *carrier, at, by)?;
    }
    let state = if plan.closes {
        tx.set_signout_state(id, SignoutState::Returned, Some(at))?;
        SignoutState::Returned
    } else {
        SignoutState::Out
    };
    let returned = tx.carrier_audit_names(&plan.returning)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "signout.return",
        subject: format!("signout:{id}"),
        before: Some(json!({"state": SignoutState::Out})),
        after: Some(match condition {
            Some(condition) => json!({
                "state": state,
                "returned": returned,
                "by": by,
                "condition": condition,
            }),
            None => json!({
                "state": state,
                "returned": returned,
                "by": by,
            }),
        }),
    })?;
    Ok(state)
}

/// Record that cabinet `device_id` sees `carrier_id` back on its shelves at `at`; part of
/// the ingest use case, in the transaction of the cabinet event.
///
/// If the carrier is outstanding on a sign-out that is `out` and `device_id` is the carrier's
/// home cabinet, the return is recorded as a custodian's would be, with actor `device:ID`:
/// the carrier goes back `in_storage` without holder (a `missing` one is thereby found), the
/// sign-out becomes `returned` when it was the last carrier out, and an audit entry
/// `signout.return` is written. Returns `true` then. Returns `false`, writing nothing, when
/// the carrier is not out on any sign-out, or when this cabinet is not its home (a wrong
/// cabinet is ingest's alert).
pub fn record_cabinet_return(
    tx: &mut dyn Tx,
    carrier_id: CarrierId,
    device_id: &DeviceId,
    at: Timestamp,
) -> Result<bool, ServiceError> {
    let Some(on) = tx.outstanding_on(carrier_id)? else {
        return Ok(false);
    };
    if on.home_device.as_ref() != Some(device_id) {
        return Ok(false);
    }
    let before = tx.outstanding_carriers(on.signout)?;
    let Ok(plan) = signout::plan_return(SignoutState::Out, &before, Some(&[carrier_id])) else {
        // Not reachable: the carrier was found outstanding on an `out` sign-out.
        return Ok(false);
    };
    let actor = format!("device:{device_id}");
    apply_return(tx, on.signout, &plan, &actor, &actor, None, at)?;
    Ok(true)
}

/// Cancel a sign-out that has not been issued.
pub async fn cancel(
    app: &AppState,
    cap: &CustodyReader,
    id: SignoutId,
) -> Result<SignoutState, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let head = tx.signout_head(id)?;
            let state = signout::cancel(head.state)?;
            tx.set_signout_state(id, state, Some(at))?;
            tx.append_audit(&NewEntry {
                at,
                actor,
                action: "signout.cancel",
                subject: format!("signout:{id}"),
                before: Some(json!({"state": head.state})),
                after: Some(json!({"state": state})),
            })?;
            Ok(state)
        })
        .await
}

/// Every reason an issue of `carriers` to `borrower` would be refused today, by the same rule
/// as the issue ([`issue_refusals`]): the sign-out form asks before it is submitted, so a
/// top-secret carrier requested for someone cleared only to C is said at once, not after.
/// Unknown carriers are left out (the request itself names them).
pub async fn check(
    app: &AppState,
    _cap: &CustodianCap,
    borrower: crate::domain::ids::PersonId,
    carriers: Vec<CarrierId>,
) -> Result<Vec<&'static str>, ServiceError> {
    let today = app.now().date();
    app.store()
        .query(move |tx| {
            let person = tx.borrower(borrower)?;
            let mut levels = Vec::new();
            for id in carriers {
                match tx.carrier_summary(id) {
                    Ok(summary) => levels.push(summary.level),
                    Err(crate::store::StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(issue_refusals(&person, levels, today)
                .into_iter()
                .map(|r| r.code())
                .collect())
        })
        .await
}

/// Add what the rules say about a shown sign-out today: the approvals it still needs, and for
/// a requested or approved one every reason an issue would be refused.
fn judged(tx: &mut dyn Tx, mut s: Signout, today: Date) -> Result<Signout, ServiceError> {
    if s.state == SignoutState::Requested {
        let has_ts = s.carriers.iter().any(|c| c.level == Level::TopSecret);
        let have = u32::try_from(s.approvals.len()).unwrap_or(u32::MAX);
        s.approvals_needed = approvals_required(has_ts).saturating_sub(have);
    }
    if matches!(s.state, SignoutState::Requested | SignoutState::Approved) {
        let person = tx.borrower(s.borrower.id)?;
        let refusals = issue_refusals(&person, s.carriers.iter().map(|c| c.level), today);
        let overridden = s.override_note.is_some() && s.state == SignoutState::Approved;
        let refusals = signout::after_override(refusals, overridden);
        s.would_refuse = Some(refusals.into_iter().map(|r| r.code()).collect());
    }
    Ok(s)
}

/// One sign-out, with what an issue would be refused for today.
pub async fn one(
    app: &AppState,
    _cap: &CustodyReader,
    id: SignoutId,
) -> Result<Signout, ServiceError> {
    let today = app.now().date();
    app.store()
        .query(move |tx| {
            let s = tx.signout(id)?;
            judged(tx, s, today)
        })
        .await
}

/// Every sign-out (in `state`, if given), by id, each judged as [`one`] does.
pub async fn list(
    app: &AppState,
    _cap: &CustodyReader,
    state: Option<SignoutState>,
) -> Result<Vec<Signout>, ServiceError> {
    let today = app.now().date();
    app.store()
        .query(move |tx| {
            let found = tx.signouts(state)?;
            found.into_iter().map(|s| judged(tx, s, today)).collect()
        })
        .await
}

/// The keys sign-outs may be sorted by (`due_at` in milliseconds).
pub const SIGNOUT_SORT_KEYS: &[SortKey] = &[
    SortKey::int("id"),
    SortKey::int("due_at"),
    SortKey::text("state"),
    SortKey::text("borrower"),
];

/// One page of the sign-outs (in `state`, if given) matching every word of `params.q` in the
/// borrower's name, the requester's username, the purpose or a carrier's control number, in
/// `params.sort` order ([`SIGNOUT_SORT_KEYS`], by id when absent), each judged as [`one`]
/// does. Paged in memory over the sign-outs in `state` (the live ones are few; the full
/// history is the CSV export's).
pub async fn page(
    app: &AppState,
    cap: &CustodyReader,
    state: Option<SignoutState>,
    params: &ListParams,
) -> Result<Page<Signout>, ServiceError> {
    let default = Sort {
        key: SIGNOUT_SORT_KEYS[0],
        descending: false,
    };
    let checked = params.check(SIGNOUT_SORT_KEYS, default)?;
    let words = search_words(checked.q.as_deref().unwrap_or(""), WORDS_MAX);
    let matching = list(app, cap, state)
        .await?
        .into_iter()
        .filter(|s| {
            let mut fields = vec![
                s.borrower.name.as_str(),
                s.requester.username.as_str(),
                s.purpose.as_str(),
            ];
            fields.extend(s.carriers.iter().map(|c| c.control_no.as_str()));
            words_match(&words, &fields)
        })
        .collect();
    Ok(paginate(matching, &checked.page, |s, key| {
        let value = match key {
            "due_at" => SortValue::Int(s.due_at.unix_ms()),
            "state" => SortValue::Text(s.state.as_str().to_owned()),
            "borrower" => SortValue::Text(s.borrower.name.clone()),
            _ => SortValue::Int(s.id.0),
        };
        (value, s.id.0)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::PersonId;
    use crate::domain::signout::SignoutRuleError;
    use crate::store::signouts::SignoutRows;
    use crate::store::test_support::{MemoryDb, T0, t};

    fn new(carriers: &[i64], purpose: &str) -> NewSignout {
        NewSignout {
            carrier_ids: carriers.iter().map(|c| CarrierId(*c)).collect(),
            borrower: PersonId(1),
            purpose: purpose.into(),
            due_at: t(T0 + 86_400),
            may_leave: false,
            override_note: None,
        }
    }

    /// Sign out both carriers to person 1 and issue them.
    fn issued(db: &MemoryDb) -> SignoutId {
        let tx = &mut db.tx();
        let id = request_in(tx, "cust", &new(&[1, 2], "review"), t(T0)).unwrap();
        approve_in(tx, "so1", id, None, t(T0 + 1)).unwrap();
        issue_in(tx, "cust", id, t(T0 + 2)).unwrap();
        id
    }

    fn state_of(db: &MemoryDb, id: SignoutId) -> SignoutState {
        db.tx().signout(id).unwrap().state
    }

    #[test]
    fn a_cabinet_return_closes_the_sign_out_with_the_last_carrier() {
        let db = MemoryDb::custody(t(T0));
        let id = issued(&db);
        let cab = DeviceId::new("cab-1").unwrap();
        let audit_before = db.audit().len();
        let at = Timestamp::from_unix_ms((T0 + 100) * 1000 + 250).unwrap();

        assert!(record_cabinet_return(&mut db.tx(), CarrierId(1), &cab, at).unwrap());
        assert_eq!(db.carrier_row(1), ("in_storage".into(), None, None));
        assert_eq!(db.carrier_row(2), ("out".into(), Some(1), None));
        assert_eq!(state_of(&db, id), SignoutState::Out);
        let shown = db.tx().signout(id).unwrap();
        let first = &shown.carriers[0];
        assert_eq!(
            (first.returned_at, first.returned_by.as_deref()),
            (Some(at), Some("device:cab-1"))
        );

        // Seen again: nothing more to record.
        let later = at.plus_secs(1);
        assert!(!record_cabinet_return(&mut db.tx(), CarrierId(1), &cab, later).unwrap());

        // The last one, which had been reported missing meanwhile: found and back.
        db.set_missing(2, 5);
        let last = at.plus_secs(2);
        assert!(record_cabinet_return(&mut db.tx(), CarrierId(2), &cab, last).unwrap());
        assert_eq!(db.carrier_row(2), ("in_storage".into(), None, None));
        assert_eq!(state_of(&db, id), SignoutState::Returned);

        let entries = db.audit();
        let returns: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "signout.return")
            .collect();
        assert_eq!(entries.len() - audit_before, 2);
        assert_eq!(returns.len(), 2);
        assert!(returns.iter().all(|e| e.actor == "device:cab-1"));
        assert_eq!(returns[1].after.as_ref().unwrap()["state"], "returned");
        assert!(
            entries
                .iter()
                .all(|e| !serde_json::to_string(e).unwrap().contains("secret title"))
        );
    }

    #[test]
    fn a_cabinet_return_needs_an_out_carrier_in_its_home_cabinet() {
        let db = MemoryDb::custody(t(T0));
        let cab1 = DeviceId::new("cab-1").unwrap();
        let cab2 = DeviceId::new("cab-2").unwrap();
        // In storage, not signed out: nothing to return.
        assert!(!record_cabinet_return(&mut db.tx(), CarrierId(1), &cab1, t(T0)).unwrap());
        let id = issued(&db);
        let audit_before = db.audit().len();
        // Out, but seen in another cabinet: not a return.
        assert!(!record_cabinet_return(&mut db.tx(), CarrierId(1), &cab2, t(T0)).unwrap());
        assert_eq!(db.carrier_row(1), ("out".into(), Some(1), None));
        assert_eq!(state_of(&db, id), SignoutState::Out);
        assert_eq!(db.audit().len(), audit_before);
    }

    #[test]
    fn the_condition_checked_on_return_is_recorded_with_it() {
        let db = MemoryDb::custody(t(T0));
        let first = issued(&db);
        let condition = ReturnCondition {
            seal_intact: Some(false),
            pages_counted: Some(12),
            note: Some("corner torn".into()),
        };
        let tx = &mut db.tx();
        return_in(tx, "cust", first, None, Some(&condition), t(T0 + 10)).unwrap();
        let entries = db.audit();
        let last = entries.last().unwrap();
        assert_eq!(last.action, "signout.return");
        let after = last.after.as_ref().unwrap();
        assert_eq!(after["condition"]["seal_intact"], false);
        assert_eq!(after["condition"]["pages_counted"], 12);
        assert!(check_condition(&condition).is_empty());
        let too_many = ReturnCondition {
            pages_counted: Some(MAX_PAGES + 1),
            note: Some("x".repeat(501)),
            ..ReturnCondition::default()
        };
        assert_eq!(
            check_condition(&too_many).len(),
            2,
            "every problem is named"
        );
    }

    #[test]
    fn a_returned_carrier_is_free_for_a_new_request_while_the_rest_is_out() {
        let db = MemoryDb::custody(t(T0));
        let first = issued(&db);
        let tx = &mut db.tx();
        let returned =
            return_in(tx, "cust", first, Some(&[CarrierId(1)]), None, t(T0 + 10)).unwrap();
        assert_eq!(returned.state, SignoutState::Out);
        assert_eq!(returned.outstanding, [CarrierId(2)]);
        assert!(request_in(tx, "cust", &new(&[1], "again"), t(T0 + 20)).is_ok());
        assert!(matches!(
            request_in(tx, "cust", &new(&[2], "busy"), t(T0 + 20)),
            Err(ServiceError::Signout(
                SignoutRuleError::CarrierUnavailable {
                    carrier: CarrierId(2)
                }
            ))
        ));
    }

    #[test]
    fn a_refused_step_writes_nothing() {
        let db = MemoryDb::custody(t(T0));
        let tx = &mut db.tx();
        let id = request_in(tx, "cust", &new(&[1], "review"), t(T0)).unwrap();
        let before = db.audit().len();
        // Not approved yet: no issue; and the requester may not approve their own request.
        assert!(matches!(
            issue_in(tx, "cust", id, t(T0 + 1)),
            Err(ServiceError::Signout(SignoutRuleError::NotApproved(
                "requested"
            )))
        ));
        assert!(matches!(
            approve_in(tx, "cust", id, None, t(T0 + 1)),
            Err(ServiceError::Signout(SignoutRuleError::SelfApproval))
        ));
        assert_eq!(db.audit().len(), before);
        assert_eq!(state_of(&db, id), SignoutState::Requested);
        assert_eq!(db.carrier_row(1), ("in_storage".into(), None, None));
    }

    #[test]
    fn an_unknown_borrower_or_carrier_is_an_unknown_reference() {
        let db = MemoryDb::custody(t(T0));
        let before = db.audit().len();
        let tx = &mut db.tx();
        let mut nobody = new(&[1], "review");
        nobody.borrower = PersonId(99);
        assert!(matches!(
            request_in(tx, "cust", &nobody, t(T0)),
            Err(ServiceError::UnknownReference { what: "borrower" })
        ));
        assert!(matches!(
            request_in(tx, "cust", &new(&[1, 77], "review"), t(T0)),
            Err(ServiceError::UnknownReference { what: "carrier" })
        ));
        assert_eq!(db.audit().len(), before);
    }

    #[test]
    fn request_input_names_every_problem() {
        let ids: Vec<CarrierId> = (1..=101).map(CarrierId).collect();
        let Err(ServiceError::Invalid(problems)) = check_request_input(&ids, " ") else {
            panic!("accepted");
        };
        let named: Vec<_> = problems.iter().map(|p| (p.field, p.code)).collect();
        assert_eq!(named, [("carrier_ids", "too_many"), ("purpose", "invalid")]);
        let Err(ServiceError::Invalid(problems)) =
            check_request_input(&[CarrierId(1), CarrierId(1)], "ok")
        else {
            panic!("accepted");
        };
        assert_eq!(problems[0].code, "repeated");
        assert!(matches!(
            check_request_input(&[], "ok"),
            Err(ServiceError::Invalid(p)) if p[0].code == "empty"
        ));
        assert!(check_request_input(&[CarrierId(1)], "ok").is_ok());
    }
}
