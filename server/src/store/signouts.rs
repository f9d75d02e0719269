//! Sign-outs: load the facts, ask `domain::signout`, write what it decides, audit it.
//!
//! Every operation here is one write job: the facts are read, the rule is applied and the
//! changes and their audit entry are written in the same transaction, on the single writer
//! thread. Two racing requests (a double-clicked "issue") are therefore serialised: the second
//! one loads the state the first one committed and is refused by the rule.
//!
//! Operations answer `Ok(Err(rule))` when a rule says no; rules are checked before anything is
//! written, so a refusal changes nothing.
//!
//! # Returns seen by a cabinet
//! [`record_cabinet_return`] is for the ingest path: when a cabinet reports a signed-out
//! carrier back on its shelves, it records the return exactly as a custodian's would, with
//! `device:ID` as the actor.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use super::carriers::{LIVE_CLAIMS, audit_names, level_column, ms_column, required_ms_column};
use super::{Store, StoreError};
use crate::api::carriers::CustodyReader;
use crate::audit::{self, NewEntry};
use crate::auth::capability::{CustodianCap, SecurityOfficerCap};
use crate::domain::carrier::{CarrierKind, CarrierState};
use crate::domain::ids::{CarrierId, DeviceId, PersonId, SignoutId, UserId};
use crate::domain::level::Level;
use crate::domain::signout::{
    self, ApprovalOutcome, Borrower, CarrierStanding, Party, ReturnPlan, SignoutRuleError,
    SignoutState, approvals_required, issue_refusals,
};
use crate::domain::time::{Date, Timestamp};

/// A validated sign-out request.
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
    /// For requested and approved sign-outs: the codes of every reason the issue would be
    /// refused if attempted today (empty if it would pass). Absent for other states.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_refuse: Option<Vec<&'static str>>,
}

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

type Ruled<T> = Result<Result<T, SignoutRuleError>, StoreError>;

/// The account behind an actor name, with its person.
fn acting_party(conn: &Connection, username: &str) -> Result<Party, StoreError> {
    conn.prepare_cached("SELECT id, person_id FROM users WHERE username = ?1")?
        .query_row([username], |r| {
            Ok(Party {
                user: r.get(0)?,
                person: r.get(1)?,
            })
        })
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("no account for actor {username:?}")))
}

fn party_of(conn: &Connection, user: UserId) -> Result<Party, StoreError> {
    conn.prepare_cached("SELECT id, person_id FROM users WHERE id = ?1")?
        .query_row([user], |r| {
            Ok(Party {
                user: r.get(0)?,
                person: r.get(1)?,
            })
        })
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("no account {user}")))
}

struct Head {
    state: SignoutState,
    requester: UserId,
    borrower: PersonId,
}

fn head(conn: &Connection, id: SignoutId) -> Result<Head, StoreError> {
    conn.prepare_cached("SELECT state, requester, borrower FROM signouts WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Head {
                state: r.get(0)?,
                requester: r.get(1)?,
                borrower: r.get(2)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// The standing of each carrier; the claim of `except` (the sign-out being worked on) is
/// ignored. An unknown id is an unknown reference.
fn standings(
    conn: &Connection,
    ids: &[CarrierId],
    except: Option<SignoutId>,
) -> Result<Vec<CarrierStanding>, StoreError> {
    let sql = format!(
        "SELECT c.id, c.level, c.state,
                (SELECT max(l.signout_id) FROM ({LIVE_CLAIMS}) l
                 WHERE l.carrier_id = c.id AND l.signout_id IS NOT ?2)
         FROM carriers c WHERE c.id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    ids.iter()
        .map(|id| {
            stmt.query_row(params![id, except], |r| {
                Ok(CarrierStanding {
                    id: r.get(0)?,
                    level: level_column(r, 1)?,
                    state: r.get(2)?,
                    live_signout: r.get(3)?,
                })
            })
            .optional()?
            .ok_or(StoreError::UnknownReference { what: "carrier" })
        })
        .collect()
}

fn carrier_ids(conn: &Connection, id: SignoutId) -> Result<Vec<CarrierId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT carrier_id FROM signout_carriers WHERE signout_id = ?1 ORDER BY carrier_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn outstanding(conn: &Connection, id: SignoutId) -> Result<Vec<CarrierId>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT carrier_id FROM signout_carriers
         WHERE signout_id = ?1 AND returned_at_ms IS NULL ORDER BY carrier_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn borrower(conn: &Connection, person: PersonId) -> Result<Borrower, StoreError> {
    conn.prepare_cached(
        "SELECT status, category, training_valid_until, commitment_signed_on
         FROM people WHERE id = ?1",
    )?
    .query_row([person], |r| {
        Ok(Borrower {
            status: r.get(0)?,
            category: r.get(1)?,
            training_valid_until: r.get(2)?,
            commitment_signed_on: r.get(3)?,
        })
    })
    .optional()?
    .ok_or(StoreError::UnknownReference { what: "borrower" })
}

fn levels(conn: &Connection, id: SignoutId) -> Result<Vec<Level>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.level FROM signout_carriers sc JOIN carriers c ON c.id = sc.carrier_id
         WHERE sc.signout_id = ?1",
    )?;
    let rows = stmt.query_map([id], |r| level_column(r, 0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn approvals(conn: &Connection, id: SignoutId) -> Result<Vec<Party>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.person_id FROM signout_approvals a JOIN users u ON u.id = a.approver
         WHERE a.signout_id = ?1",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Party {
            user: r.get(0)?,
            person: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn set_state(
    conn: &Connection,
    id: SignoutId,
    state: SignoutState,
    closed_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE signouts SET state = ?2, closed_at_ms = coalesce(?3, closed_at_ms) WHERE id = ?1",
    )?
    .execute(params![id, state, closed_at_ms])?;
    Ok(())
}

fn request(conn: &Connection, actor: &str, new: &NewSignout, at: Timestamp) -> Ruled<SignoutId> {
    let requester = acting_party(conn, actor)?;
    borrower(conn, new.borrower)?;
    let carriers = standings(conn, &new.carrier_ids, None)?;
    if let Err(rule) = signout::check_request(&carriers, new.due_at, at) {
        return Ok(Err(rule));
    }
    conn.prepare_cached(
        "INSERT INTO signouts (requester, borrower, purpose, due_at_ms, may_leave, state,
                               created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'requested', ?6)",
    )?
    .execute(params![
        requester.user,
        new.borrower,
        new.purpose,
        new.due_at.unix_ms(),
        new.may_leave,
        at
    ])?;
    let id = SignoutId(conn.last_insert_rowid());
    for carrier in &new.carrier_ids {
        conn.prepare_cached(
            "INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?2)",
        )?
        .execute(params![id, carrier])?;
    }
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "signout.request",
            subject: format!("signout:{id}"),
            before: None,
            after: Some(json!({
                "id": id,
                "state": SignoutState::Requested,
                "carriers": audit_names(conn, &new.carrier_ids)?,
                "borrower": new.borrower,
                "purpose": new.purpose,
                "due_at": new.due_at,
                "may_leave": new.may_leave,
            })),
        },
    )?;
    Ok(Ok(id))
}

fn approve(conn: &Connection, actor: &str, id: SignoutId, at: Timestamp) -> Ruled<Approved> {
    let head = head(conn, id)?;
    let approver = acting_party(conn, actor)?;
    let requester = party_of(conn, head.requester)?;
    let has_ts = levels(conn, id)?.contains(&Level::TopSecret);
    let so_far = approvals(conn, id)?;
    let ApprovalOutcome {
        state,
        approvals_needed,
    } = match signout::approve(
        head.state,
        &so_far,
        approver,
        requester,
        head.borrower,
        has_ts,
    ) {
        Ok(outcome) => outcome,
        Err(rule) => return Ok(Err(rule)),
    };
    conn.prepare_cached(
        "INSERT INTO signout_approvals (signout_id, approver, at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, approver.user, at])?;
    if state != head.state {
        set_state(conn, id, state, None)?;
    }
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "signout.approve",
            subject: format!("signout:{id}"),
            before: Some(json!({"state": head.state, "approvals": so_far.len()})),
            after: Some(json!({
                "state": state,
                "approvals": so_far.len() + 1,
                "approvals_needed": approvals_needed,
            })),
        },
    )?;
    Ok(Ok(Approved {
        id,
        state,
        approvals_needed,
    }))
}

fn issue(conn: &Connection, actor: &str, id: SignoutId, at: Timestamp) -> Ruled<Issued> {
    let head = head(conn, id)?;
    let issuer = acting_party(conn, actor)?;
    let ids = carrier_ids(conn, id)?;
    let carriers = standings(conn, &ids, Some(id))?;
    let person = borrower(conn, head.borrower)?;
    let refusals = issue_refusals(&person, carriers.iter().map(|c| c.level), at.date());
    if let Err(rule) = signout::issue(head.state, &carriers, refusals) {
        return Ok(Err(rule));
    }
    for carrier in &ids {
        conn.prepare_cached(
            "UPDATE carriers SET state = 'out', holder = ?2, missing_since_ms = NULL
             WHERE id = ?1",
        )?
        .execute(params![carrier, head.borrower])?;
    }
    conn.prepare_cached(
        "UPDATE signouts SET state = 'out', issued_at_ms = ?2, issued_by = ?3 WHERE id = ?1",
    )?
    .execute(params![id, at.unix_ms(), issuer.user])?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "signout.issue",
            subject: format!("signout:{id}"),
            before: Some(json!({"state": head.state})),
            after: Some(json!({
                "state": SignoutState::Out,
                "borrower": head.borrower,
                "carriers": audit_names(conn, &ids)?,
            })),
        },
    )?;
    Ok(Ok(Issued {
        id,
        state: SignoutState::Out,
        issued_at: at,
    }))
}

/// Write a planned return: each carrier back in storage (a missing one is found), its row
/// marked with `by`, the sign-out closed if it was the last; then the audit entry.
fn apply_return(
    conn: &Connection,
    id: SignoutId,
    plan: &ReturnPlan,
    actor: &str,
    by: &str,
    at: Timestamp,
    at_ms: i64,
) -> Result<SignoutState, StoreError> {
    for carrier in &plan.returning {
        conn.prepare_cached(
            "UPDATE signout_carriers SET returned_at_ms = ?3, returned_by = ?4
             WHERE signout_id = ?1 AND carrier_id = ?2",
        )?
        .execute(params![id, carrier, at_ms, by])?;
        conn.prepare_cached(
            "UPDATE carriers SET state = 'in_storage', holder = NULL, missing_since_ms = NULL
             WHERE id = ?1",
        )?
        .execute([carrier])?;
    }
    let state = if plan.closes {
        set_state(conn, id, SignoutState::Returned, Some(at_ms))?;
        SignoutState::Returned
    } else {
        SignoutState::Out
    };
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "signout.return",
            subject: format!("signout:{id}"),
            before: Some(json!({"state": SignoutState::Out})),
            after: Some(json!({
                "state": state,
                "returned": audit_names(conn, &plan.returning)?,
                "by": by,
            })),
        },
    )?;
    Ok(state)
}

fn return_carriers(
    conn: &Connection,
    actor: &str,
    id: SignoutId,
    asked: Option<&[CarrierId]>,
    at: Timestamp,
) -> Ruled<Returned> {
    let head = head(conn, id)?;
    let before = outstanding(conn, id)?;
    let plan = match signout::plan_return(head.state, &before, asked) {
        Ok(plan) => plan,
        Err(rule) => return Ok(Err(rule)),
    };
    let by = format!("user:{actor}");
    let state = apply_return(conn, id, &plan, actor, &by, at, at.unix_ms())?;
    let outstanding = before
        .into_iter()
        .filter(|c| !plan.returning.contains(c))
        .collect();
    Ok(Ok(Returned {
        id,
        state,
        returned: plan.returning,
        outstanding,
    }))
}

/// Record that cabinet `device_id` sees `carrier_id` back on its shelves at `at_ms`; call it
/// from the ingest write job, in the transaction of the cabinet event.
///
/// If the carrier is outstanding on a sign-out that is `out` and `device_id` is the carrier's
/// home cabinet, the return is recorded as a custodian's would be: the `signout_carriers` row
/// gets `returned_by = 'device:ID'`, the carrier goes back `in_storage` without holder (a
/// `missing` one is thereby found), the sign-out becomes `returned` when it was the last
/// carrier out, and an audit entry `signout.return` is written with actor `device:ID`.
/// Returns `true` then. Returns `false`, writing nothing, when the carrier is not out on any
/// sign-out, or when this cabinet is not its home (a wrong cabinet is ingest's alert).
pub fn record_cabinet_return(
    conn: &Connection,
    carrier_id: CarrierId,
    device_id: &DeviceId,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let found: Option<(SignoutId, Option<DeviceId>)> = conn
        .prepare_cached(
            "SELECT so.id, c.home_device
             FROM signout_carriers sc
             JOIN signouts so ON so.id = sc.signout_id
             JOIN carriers c ON c.id = sc.carrier_id
             WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND so.state = 'out'",
        )?
        .query_row([carrier_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, home)) = found else {
        return Ok(false);
    };
    if home.as_ref() != Some(device_id) {
        return Ok(false);
    }
    let at = Timestamp::from_unix_ms(at_ms)
        .ok_or_else(|| StoreError::Corrupt(format!("time out of range: {at_ms}")))?;
    let before = outstanding(conn, id)?;
    let Ok(plan) = signout::plan_return(SignoutState::Out, &before, Some(&[carrier_id])) else {
        // Not reachable: the query above found the carrier outstanding on an `out` sign-out.
        return Ok(false);
    };
    let actor = format!("device:{device_id}");
    apply_return(conn, id, &plan, &actor, &actor, at, at_ms)?;
    Ok(true)
}

fn cancel(conn: &Connection, actor: &str, id: SignoutId, at: Timestamp) -> Ruled<SignoutState> {
    let head = head(conn, id)?;
    let state = match signout::cancel(head.state) {
        Ok(state) => state,
        Err(rule) => return Ok(Err(rule)),
    };
    set_state(conn, id, state, Some(at.unix_ms()))?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "signout.cancel",
            subject: format!("signout:{id}"),
            before: Some(json!({"state": head.state})),
            after: Some(json!({"state": state})),
        },
    )?;
    Ok(Ok(state))
}

const SIGNOUT_SELECT: &str = "SELECT so.id, so.state, so.requester, u.username, so.borrower,
        p.name, so.purpose, so.due_at_ms, so.may_leave, so.created_at, so.issued_at_ms,
        so.closed_at_ms
     FROM signouts so
     JOIN users u ON u.id = so.requester
     JOIN people p ON p.id = so.borrower";

fn signout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Signout> {
    Ok(Signout {
        id: r.get(0)?,
        state: r.get(1)?,
        requester: UserRef {
            id: r.get(2)?,
            username: r.get(3)?,
        },
        borrower: PersonRef {
            id: r.get(4)?,
            name: r.get(5)?,
        },
        purpose: r.get(6)?,
        due_at: required_ms_column(r, 7)?,
        may_leave: r.get(8)?,
        created_at: r.get(9)?,
        issued_at: ms_column(r, 10)?,
        closed_at: ms_column(r, 11)?,
        carriers: Vec::new(),
        approvals: Vec::new(),
        approvals_needed: 0,
        would_refuse: None,
    })
}

/// Fill in carriers, approvals, approvals still needed and (while not yet issued) the reasons
/// an issue would be refused on `today`.
fn complete(conn: &Connection, mut s: Signout, today: Date) -> Result<Signout, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.control_no, c.kind, c.level, c.state, sc.returned_at_ms, sc.returned_by
         FROM signout_carriers sc JOIN carriers c ON c.id = sc.carrier_id
         WHERE sc.signout_id = ?1 ORDER BY c.id",
    )?;
    let rows = stmt.query_map([s.id], |r| {
        Ok(SignoutCarrier {
            id: r.get(0)?,
            control_no: r.get(1)?,
            kind: r.get(2)?,
            level: level_column(r, 3)?,
            state: r.get(4)?,
            returned_at: ms_column(r, 5)?,
            returned_by: r.get(6)?,
        })
    })?;
    s.carriers = rows.collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, a.at FROM signout_approvals a JOIN users u ON u.id = a.approver
         WHERE a.signout_id = ?1 ORDER BY a.at, u.id",
    )?;
    let rows = stmt.query_map([s.id], |r| {
        Ok(Approval {
            approver: UserRef {
                id: r.get(0)?,
                username: r.get(1)?,
            },
            at: r.get(2)?,
        })
    })?;
    s.approvals = rows.collect::<Result<_, _>>()?;
    let has_ts = s.carriers.iter().any(|c| c.level == Level::TopSecret);
    if s.state == SignoutState::Requested {
        let have = u32::try_from(s.approvals.len()).unwrap_or(u32::MAX);
        s.approvals_needed = approvals_required(has_ts).saturating_sub(have);
    }
    if matches!(s.state, SignoutState::Requested | SignoutState::Approved) {
        let person = borrower(conn, s.borrower.id)?;
        let refusals = issue_refusals(&person, s.carriers.iter().map(|c| c.level), today);
        s.would_refuse = Some(refusals.into_iter().map(|r| r.code()).collect());
    }
    Ok(s)
}

fn one(conn: &Connection, id: SignoutId, today: Date) -> Result<Signout, StoreError> {
    let s = conn
        .prepare_cached(&format!("{SIGNOUT_SELECT} WHERE so.id = ?1"))?
        .query_row([id], signout_row)
        .optional()?
        .ok_or(StoreError::NotFound)?;
    complete(conn, s, today)
}

fn list(
    conn: &Connection,
    state: Option<SignoutState>,
    today: Date,
) -> Result<Vec<Signout>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SIGNOUT_SELECT} WHERE ?1 IS NULL OR so.state = ?1 ORDER BY so.id"
    ))?;
    let rows = stmt.query_map([state], signout_row)?;
    let found = rows.collect::<Result<Vec<_>, _>>()?;
    found
        .into_iter()
        .map(|s| complete(conn, s, today))
        .collect()
}

impl Store {
    /// Request a sign-out. Unknown carriers or borrower: `UnknownReference`.
    pub async fn request_signout(
        &self,
        cap: &CustodianCap,
        new: NewSignout,
        at: Timestamp,
    ) -> Ruled<SignoutId> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| request(c, &actor, &new, at)).await
    }

    /// Approve a sign-out.
    pub async fn approve_signout(
        &self,
        cap: &SecurityOfficerCap,
        id: SignoutId,
        at: Timestamp,
    ) -> Ruled<Approved> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| approve(c, &actor, id, at)).await
    }

    /// Issue (hand over) an approved sign-out.
    pub async fn issue_signout(
        &self,
        cap: &CustodianCap,
        id: SignoutId,
        at: Timestamp,
    ) -> Ruled<Issued> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| issue(c, &actor, id, at)).await
    }

    /// Take carriers back (`None`: every outstanding one).
    pub async fn return_signout(
        &self,
        cap: &CustodianCap,
        id: SignoutId,
        carriers: Option<Vec<CarrierId>>,
        at: Timestamp,
    ) -> Ruled<Returned> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| return_carriers(c, &actor, id, carriers.as_deref(), at))
            .await
    }

    /// Cancel a sign-out that has not been issued.
    pub async fn cancel_signout(
        &self,
        cap: &CustodyReader,
        id: SignoutId,
        at: Timestamp,
    ) -> Ruled<SignoutState> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| cancel(c, &actor, id, at)).await
    }

    /// One sign-out, with `would_refuse` evaluated for `today`.
    pub async fn signout(
        &self,
        _cap: &CustodyReader,
        id: SignoutId,
        today: Date,
    ) -> Result<Signout, StoreError> {
        self.read(move |c| one(c, id, today)).await
    }

    /// Sign-outs, optionally in one state, by id.
    pub async fn signouts(
        &self,
        _cap: &CustodyReader,
        state: Option<SignoutState>,
        today: Date,
    ) -> Result<Vec<Signout>, StoreError> {
        self.read(move |c| list(c, state, today)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::carrier::{CarrierFields, CarrierKind, NewCarrier};
    use crate::store::migrations::migrate;

    const T0: i64 = 1_750_000_000;

    fn t(unix: i64) -> Timestamp {
        Timestamp::from_unix(unix).unwrap()
    }

    /// A database with zone z, cabinets cab-1 and cab-2, person 1 (core, certified), users
    /// `cust` (custodian) and `so1`, `so2` (security officers), and carriers 1 and 2 (S, home
    /// cab-1).
    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO zones VALUES ('z', 'Z', 'S', 't');
             INSERT INTO devices (id, kind, public_key, zone, created_at)
                 VALUES ('cab-1', 'cabinet', randomblob(32), 'z', 't'),
                        ('cab-2', 'cabinet', randomblob(32), 'z', 't');
             INSERT INTO people (name, department, category, training_valid_until,
                                 commitment_signed_on, created_at)
                 VALUES ('Li', 'D', 'core', '2099-01-01', '2020-01-01', 't');
             INSERT INTO users (username, password_hash, roles, created_at)
                 VALUES ('cust', 'x', 'custodian', 't'),
                        ('so1', 'x', 'security_officer', 't'),
                        ('so2', 'x', 'security_officer', 't');",
        )
        .unwrap();
        for control_no in ["A1", "A2"] {
            let tags: [String; 0] = [];
            let carrier = NewCarrier::new(CarrierFields {
                control_no,
                kind: CarrierKind::Paper,
                level: Level::Secret,
                title: "secret title",
                copy_no: None,
                copies: None,
                owner_unit: "U",
                home_device: Some(DeviceId::new("cab-1").unwrap()),
                tags: &tags,
            })
            .unwrap();
            super::super::carriers::tests_insert(&conn, &carrier, t(T0));
        }
        conn
    }

    /// Sign out both carriers to person 1 and issue them.
    fn issued(conn: &Connection) -> SignoutId {
        let new = NewSignout {
            carrier_ids: vec![CarrierId(1), CarrierId(2)],
            borrower: PersonId(1),
            purpose: "review".into(),
            due_at: t(T0 + 86_400),
            may_leave: false,
        };
        let id = request(conn, "cust", &new, t(T0)).unwrap().unwrap();
        approve(conn, "so1", id, t(T0 + 1)).unwrap().unwrap();
        issue(conn, "cust", id, t(T0 + 2)).unwrap().unwrap();
        id
    }

    fn carrier_row(conn: &Connection, id: i64) -> (String, Option<i64>) {
        conn.query_row(
            "SELECT state, holder FROM carriers WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    fn signout_state(conn: &Connection, id: SignoutId) -> String {
        conn.query_row("SELECT state FROM signouts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    }

    #[test]
    fn a_cabinet_return_closes_the_sign_out_with_the_last_carrier() {
        let conn = db();
        let id = issued(&conn);
        let cab = DeviceId::new("cab-1").unwrap();
        let audit_before = audit::count(&conn).unwrap();
        let at_ms = (T0 + 100) * 1000 + 250;

        assert!(record_cabinet_return(&conn, CarrierId(1), &cab, at_ms).unwrap());
        assert_eq!(carrier_row(&conn, 1), ("in_storage".into(), None));
        assert_eq!(carrier_row(&conn, 2), ("out".into(), Some(1)));
        assert_eq!(signout_state(&conn, id), "out");
        let (returned_at, by): (i64, String) = conn
            .query_row(
                "SELECT returned_at_ms, returned_by FROM signout_carriers
                 WHERE signout_id = ?1 AND carrier_id = 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((returned_at, by.as_str()), (at_ms, "device:cab-1"));

        // Seen again: nothing more to record.
        assert!(!record_cabinet_return(&conn, CarrierId(1), &cab, at_ms + 1000).unwrap());

        // The last one, which had been reported missing meanwhile: found and back.
        conn.execute(
            "UPDATE carriers SET state = 'missing', missing_since_ms = 5 WHERE id = 2",
            [],
        )
        .unwrap();
        assert!(record_cabinet_return(&conn, CarrierId(2), &cab, at_ms + 2000).unwrap());
        assert_eq!(carrier_row(&conn, 2), ("in_storage".into(), None));
        let missing: Option<i64> = conn
            .query_row(
                "SELECT missing_since_ms FROM carriers WHERE id = 2",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(missing, None);
        assert_eq!(signout_state(&conn, id), "returned");

        let entries = audit::list_after(&conn, crate::domain::ids::AuditId(0), 1000).unwrap();
        let returns: Vec<_> = entries
            .iter()
            .filter(|e| e.action == "signout.return")
            .collect();
        assert_eq!(audit::count(&conn).unwrap() - audit_before, 2);
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
        let conn = db();
        let cab1 = DeviceId::new("cab-1").unwrap();
        let cab2 = DeviceId::new("cab-2").unwrap();
        // In storage, not signed out: nothing to return.
        assert!(!record_cabinet_return(&conn, CarrierId(1), &cab1, T0 * 1000).unwrap());
        let id = issued(&conn);
        let audit_before = audit::count(&conn).unwrap();
        // Out, but seen in another cabinet: not a return.
        assert!(!record_cabinet_return(&conn, CarrierId(1), &cab2, T0 * 1000).unwrap());
        assert_eq!(carrier_row(&conn, 1), ("out".into(), Some(1)));
        assert_eq!(signout_state(&conn, id), "out");
        assert_eq!(audit::count(&conn).unwrap(), audit_before);
    }

    #[test]
    fn a_returned_carrier_is_free_for_a_new_request_while_the_rest_is_out() {
        let conn = db();
        let first = issued(&conn);
        let returned = return_carriers(&conn, "cust", first, Some(&[CarrierId(1)]), t(T0 + 10))
            .unwrap()
            .unwrap();
        assert_eq!(returned.state, SignoutState::Out);
        assert_eq!(returned.outstanding, [CarrierId(2)]);
        let again = NewSignout {
            carrier_ids: vec![CarrierId(1)],
            borrower: PersonId(1),
            purpose: "again".into(),
            due_at: t(T0 + 86_400),
            may_leave: false,
        };
        assert!(request(&conn, "cust", &again, t(T0 + 20)).unwrap().is_ok());
        let busy = NewSignout {
            carrier_ids: vec![CarrierId(2)],
            ..again
        };
        assert_eq!(
            request(&conn, "cust", &busy, t(T0 + 20)).unwrap(),
            Err(SignoutRuleError::CarrierUnavailable {
                carrier: CarrierId(2)
            })
        );
    }
}
