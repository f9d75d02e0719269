//! Lifecycle use cases: correcting a carrier's register entry (with its before/after
//! history), reporting a carrier missing and found by hand, recording who was told of an
//! incident, what an unauthorised removal's resolution does to the carrier, the sweep's
//! escalation of overdue loans to missing, and the loan limit checked at request and issue.
//!
//! Each use case checks its input once, then runs one transaction: load the facts, apply the
//! rules of [`crate::domain::lifecycle`], write the rows and the audit entry. Audit entries name
//! carriers by id (and the correction's changed fields), never by title.

use serde_json::{Value, json};

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{CustodianCap, CustodyReader};
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::carrier::{CarrierState, check_home};
use crate::domain::ids::{CarrierId, DeviceId, SignoutId};
use crate::domain::lifecycle::{
    Correctable, CorrectionPatch, LifecycleError, LoanPolicy, MissingCause, RemovalOutcome,
    changed_fields, check_note, correct as correct_entry, correction_problems, found_state,
    report_missing as may_go_missing,
};
use crate::domain::time::Timestamp;
use crate::store::Tx;
use crate::store::alerts::AlertView;
use crate::store::carriers::Carrier;
use crate::store::lifecycle::{CorrectionRecord, Incident, NewIncident};

/// A correction as submitted (`PATCH /carriers/{id}`). `level` and `control_no` are accepted
/// only to be refused with a clear reason: they change by reclassification.
#[derive(Debug, Clone, Default)]
pub struct Correction {
    /// Why (required).
    pub reason: String,
    /// The fields to change.
    pub patch: CorrectionPatch,
    /// Whether the request tried to change the level.
    pub level_given: bool,
    /// Whether the request tried to change the control number.
    pub control_no_given: bool,
}

/// Check a correction's input: the fields that may not change here (422), then every form
/// problem (400).
pub fn check_correction(input: &Correction) -> Result<(), ServiceError> {
    if input.level_given {
        return Err(LifecycleError::NotEditable("the level").into());
    }
    if input.control_no_given {
        return Err(LifecycleError::NotEditable("the control number").into());
    }
    let problems: Vec<Problem> = correction_problems(&input.reason, &input.patch)
        .into_iter()
        .map(|p| Problem {
            field: p.field,
            code: p.code,
            message: p.message,
        })
        .collect();
    Problem::none_or_invalid(problems)
}

/// Correct carrier `id`'s register entry (custodian): title, owning unit, home cabinet, tags,
/// copy number. The history keeps before and after; the audit entry names the changed fields
/// (a changed title only as changed).
pub async fn correct(
    app: &AppState,
    cap: &CustodianCap,
    id: CarrierId,
    input: Correction,
) -> Result<Carrier, ServiceError> {
    check_correction(&input)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| correct_in(tx, &actor, id, &input, at))
        .await
}

fn correctable(tx: &mut dyn Tx, id: CarrierId) -> Result<(Correctable, Carrier), ServiceError> {
    let summary = tx.carrier_summary(id)?;
    let title = tx.carrier_title(id)?;
    let entry = Correctable {
        title: title.clone(),
        owner_unit: summary.owner_unit.clone(),
        home_device: summary.home_device.clone(),
        tags: summary.tags.iter().map(|t| t.tag.clone()).collect(),
        copy_no: summary.copy_no,
        secrecy_years: summary.secrecy_years,
    };
    Ok((entry, Carrier { summary, title }))
}

pub(crate) fn correct_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: CarrierId,
    input: &Correction,
    at: Timestamp,
) -> Result<Carrier, ServiceError> {
    let (before, carrier) = correctable(tx, id)?;
    let s = &carrier.summary;
    if let Some(Some(home)) = &input.patch.home_device {
        let device = DeviceId::new(home).map_err(|_| ServiceError::UnknownReference {
            what: "home_device",
        })?;
        let kind = tx
            .device_kind(&device)?
            .ok_or(ServiceError::UnknownReference {
                what: "home_device",
            })?;
        check_home(kind).map_err(LifecycleError::Register)?;
    }
    let after = correct_entry(&before, &input.patch, s.level, s.copies, &s.control_no)?;
    tx.apply_correction(id, &after)?;
    // Written only when corrected, so an unmarked carrier keeps following its level's default.
    if after.secrecy_years != before.secrecy_years {
        tx.set_secrecy_years(id, after.secrecy_years)?;
    }
    let (old, new) = changed_fields(&before, &after, true);
    let reason = input.reason.trim();
    tx.insert_correction(id, at, actor, reason, &old, &new)?;
    let (old, new) = changed_fields(&before, &after, false);
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "carrier.correct",
        subject: format!("carrier:{id}"),
        before: Some(old),
        after: Some(json!({ "changed": new, "reason": reason })),
    })?;
    let summary = tx.carrier_summary(id)?;
    let title = tx.carrier_title(id)?;
    Ok(Carrier { summary, title })
}

/// Carrier `id`'s corrections, oldest first (custodian, security officer).
pub async fn corrections(
    app: &AppState,
    _cap: &CustodyReader,
    id: CarrierId,
) -> Result<Vec<CorrectionRecord>, ServiceError> {
    app.store()
        .query(move |tx| {
            tx.carrier_summary(id)?;
            Ok(tx.corrections(id)?)
        })
        .await
}

fn note_or_invalid(field: &'static str, text: &str) -> Result<String, ServiceError> {
    check_note(text).ok_or_else(|| {
        ServiceError::invalid(field, "invalid", "required: 1 to 2000 printable characters")
    })
}

/// Raise (or repeat) the `missing` alert of `carrier`, auditing a new one; its id.
fn raise_missing(
    tx: &mut dyn Tx,
    actor: &str,
    carrier: CarrierId,
    since_ms: i64,
    at: Timestamp,
    reason: MissingCause,
) -> Result<i64, ServiceError> {
    let text = carrier.to_string();
    let mut alert = NewAlert::new(
        AlertKind::Missing,
        cause(AlertKind::Missing, &[("carrier", &text)]),
        at.unix_ms(),
    );
    alert.carrier_id = Some(carrier.0);
    alert.detail = json!({
        "missing_since": rfc3339(since_ms),
        "reason": reason.as_str(),
    });
    Ok(super::alerts::raise_in(tx, at, actor, &alert)?.id())
}

fn rfc3339(ms: i64) -> Value {
    Timestamp::from_unix_ms(ms).map_or(Value::Null, |t| Value::String(t.to_string()))
}

/// What marking a carrier missing needs to know.
struct GoneMissing<'a> {
    carrier: CarrierId,
    since_ms: i64,
    cause: MissingCause,
    what_happened: &'a str,
    signout: Option<SignoutId>,
    alert: Option<i64>,
}

/// Mark a carrier missing with its incident record, audit entry and `missing` alert; the id of
/// the alert raised or repeated.
fn go_missing(
    tx: &mut dyn Tx,
    actor: &str,
    at: Timestamp,
    gone: &GoneMissing<'_>,
    state_before: CarrierState,
) -> Result<i64, ServiceError> {
    tx.mark_missing(gone.carrier, gone.since_ms)?;
    let incident = tx.open_incident(&NewIncident {
        carrier: gone.carrier,
        cause: gone.cause,
        missing_since_ms: gone.since_ms,
        reported_by: actor.to_owned(),
        reported_at_ms: at.unix_ms(),
        what_happened: gone.what_happened.to_owned(),
        signout: gone.signout,
        alert: gone.alert,
    })?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "carrier.missing",
        subject: format!("carrier:{}", gone.carrier),
        before: Some(json!({ "state": state_before })),
        after: Some(json!({
            "state": CarrierState::Missing,
            "missing_since": rfc3339(gone.since_ms),
            "reason": gone.cause.as_str(),
            "incident_id": incident,
            "signout_id": gone.signout,
            "alert_id": gone.alert,
        })),
    })?;
    raise_missing(tx, actor, gone.carrier, gone.since_ms, at, gone.cause)
}

/// Report carrier `id` missing by hand (custodian, security officer): missing since now, an
/// incident record with `note` as what happened, a `missing` alert.
pub async fn report_missing(
    app: &AppState,
    cap: &CustodyReader,
    id: CarrierId,
    note: &str,
) -> Result<Carrier, ServiceError> {
    let note = note_or_invalid("note", note)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let (carrier, alert) = app
        .store()
        .transact(move |tx| missing_in(tx, &actor, id, &note, at))
        .await?;
    app.alerts().notify([alert]);
    Ok(carrier)
}

pub(crate) fn missing_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: CarrierId,
    note: &str,
    at: Timestamp,
) -> Result<(Carrier, i64), ServiceError> {
    let state = tx.carrier_summary(id)?.state;
    may_go_missing(state)?;
    let gone = GoneMissing {
        carrier: id,
        since_ms: at.unix_ms(),
        cause: MissingCause::Manual,
        what_happened: note,
        signout: None,
        alert: None,
    };
    let alert = go_missing(tx, actor, at, &gone, state)?;
    let summary = tx.carrier_summary(id)?;
    let title = tx.carrier_title(id)?;
    Ok((Carrier { summary, title }, alert))
}

/// Report missing carrier `id` found (custodian, security officer), whatever made it missing
/// and whether or not it has a home cabinet: back to `out` while its loan is still out, else
/// `in_storage`. Its open incidents are closed with `note`; the `missing` alert stays for a
/// person to resolve.
pub async fn report_found(
    app: &AppState,
    cap: &CustodyReader,
    id: CarrierId,
    note: &str,
) -> Result<Carrier, ServiceError> {
    let note = note_or_invalid("note", note)?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| found_in(tx, &actor, id, &note, at))
        .await
}

pub(crate) fn found_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: CarrierId,
    note: &str,
    at: Timestamp,
) -> Result<Carrier, ServiceError> {
    let summary = tx.carrier_summary(id)?;
    let on_loan = tx.on_open_signout(id)?;
    let state = found_state(summary.state, on_loan)?;
    tx.set_found(id, state)?;
    tx.close_incidents(id, at.unix_ms(), &format!("user:{actor}"), note)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "carrier.found",
        subject: format!("carrier:{id}"),
        before: Some(json!({
            "state": CarrierState::Missing,
            "missing_since": summary.missing_since,
        })),
        after: Some(json!({ "state": state, "note": note })),
    })?;
    let summary = tx.carrier_summary(id)?;
    let title = tx.carrier_title(id)?;
    Ok(Carrier { summary, title })
}

/// Carrier `id`'s incident records, newest first (custodian, security officer).
pub async fn incidents(
    app: &AppState,
    _cap: &CustodyReader,
    id: CarrierId,
) -> Result<Vec<Incident>, ServiceError> {
    app.store()
        .query(move |tx| {
            tx.carrier_summary(id)?;
            Ok(tx.incidents(id)?)
        })
        .await
}

/// One incident record (custodian, security officer).
pub async fn incident(
    app: &AppState,
    _cap: &CustodyReader,
    id: i64,
) -> Result<Incident, ServiceError> {
    app.store()
        .query(move |tx| tx.incident(id)?.ok_or(ServiceError::NotFound))
        .await
}

/// Record who was told of incident `id` (the secrecy bureau, the leader...) and when
/// (`None`: now); custodian or security officer, audited.
pub async fn record_told(
    app: &AppState,
    cap: &CustodyReader,
    id: i64,
    told: &str,
    told_at: Option<Timestamp>,
) -> Result<Incident, ServiceError> {
    let told = note_or_invalid("told", told)?;
    let at = app.now();
    if told_at.is_some_and(|t| t > at) {
        return Err(ServiceError::invalid(
            "told_at",
            "in_future",
            "told_at must not be in the future",
        ));
    }
    let actor = cap.actor().name().to_owned();
    app.store()
        .transact(move |tx| told_in(tx, &actor, id, &told, told_at.unwrap_or(at), at))
        .await
}

pub(crate) fn told_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: i64,
    told: &str,
    told_at: Timestamp,
    at: Timestamp,
) -> Result<Incident, ServiceError> {
    let before = tx.incident(id)?.ok_or(ServiceError::NotFound)?;
    tx.set_incident_told(id, told, told_at.unix_ms(), actor)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "incident.told",
        subject: format!("incident:{id}"),
        before: Some(json!({ "told": before.told, "told_at": before.told_at })),
        after: Some(json!({ "told": told, "told_at": told_at, "carrier_id": before.carrier_id })),
    })?;
    tx.incident(id)?.ok_or(ServiceError::NotFound)
}

/// After an alert was resolved in this transaction: an `outcome` is only for an
/// `unauthorized_removal`; one that is not "stopped at the gate" marks its carrier missing
/// (if the register still claims to know where it is), since the alert was raised. The ids of
/// alerts raised or repeated.
pub fn removal_resolved_in(
    tx: &mut dyn Tx,
    actor: &str,
    view: &AlertView,
    outcome: Option<RemovalOutcome>,
    note: &str,
    at: Timestamp,
) -> Result<Vec<i64>, ServiceError> {
    let Some(outcome) = outcome else {
        return Ok(Vec::new());
    };
    if view.kind != AlertKind::UnauthorizedRemoval {
        return Err(ServiceError::invalid(
            "outcome",
            "not_applicable",
            "outcome is only for unauthorized_removal alerts",
        ));
    }
    let carrier = view
        .carrier_id
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
        .map(CarrierId);
    let (Some(carrier), true) = (carrier, outcome.marks_missing()) else {
        return Ok(Vec::new());
    };
    let state = tx.carrier_summary(carrier)?.state;
    if !matches!(state, CarrierState::InStorage | CarrierState::Out) {
        return Ok(Vec::new());
    }
    let alert_id = view.id.parse::<i64>().ok();
    let what = format!("{} ({})", note, outcome.as_str());
    let gone = GoneMissing {
        carrier,
        since_ms: view.raised_at.unix_ms(),
        cause: MissingCause::UnauthorizedRemoval,
        what_happened: &what,
        signout: None,
        alert: alert_id,
    };
    Ok(vec![go_missing(tx, actor, at, &gone, state)?])
}

/// The sweep's escalation: every carrier outstanding on a loan overdue past its level's
/// escalation time becomes missing since that time (once per loan), as `@sweep`. The ids of
/// alerts raised or repeated.
pub fn escalate_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    policy: &LoanPolicy,
) -> Result<Vec<i64>, ServiceError> {
    let now_ms = at.unix_ms();
    let due_by = now_ms.saturating_sub(policy.shortest_missing_after_ms());
    let mut changed = Vec::new();
    for due in tx.overdue_carriers(due_by)? {
        let Some(since_ms) = policy.escalation(due.level, due.due_at_ms, now_ms) else {
            continue;
        };
        let what = format!(
            "loan {} overdue since {}: escalated to missing",
            due.signout,
            rfc3339(due.due_at_ms).as_str().unwrap_or("?")
        );
        let gone = GoneMissing {
            carrier: due.carrier,
            since_ms,
            cause: MissingCause::Overdue,
            what_happened: &what,
            signout: Some(due.signout),
            alert: None,
        };
        changed.push(go_missing(tx, "@sweep", at, &gone, CarrierState::Out)?);
    }
    Ok(changed)
}

/// The loan limit at request: a loan of `carriers` until `due` from `at`.
pub fn check_loan_in(
    tx: &mut dyn Tx,
    policy: &LoanPolicy,
    carriers: &[CarrierId],
    due: Timestamp,
    at: Timestamp,
) -> Result<(), ServiceError> {
    let levels = tx.carrier_standings(carriers, None)?;
    policy.check_loan(levels.iter().map(|c| c.level), due.unix_ms(), at.unix_ms())?;
    Ok(())
}

/// The loan limit again at issue: the approved loan's due time from the moment of issue.
pub fn check_issue_loan_in(
    tx: &mut dyn Tx,
    policy: &LoanPolicy,
    id: SignoutId,
    at: Timestamp,
) -> Result<(), ServiceError> {
    let levels = tx.signout_levels(id)?;
    let due = tx.signout_due_ms(id)?;
    policy.check_loan(levels, due, at.unix_ms())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::carrier::CarrierRuleError;
    use crate::domain::sweep::DAY_MS;
    use crate::store::alerts::AlertFilter;
    use crate::store::test_support::{MemoryDb, T0, t};
    use crate::store::{AlertRows, CarrierRows, LifecycleRows};

    fn alerts_of(db: &MemoryDb, kind: AlertKind) -> Vec<AlertView> {
        let filter = AlertFilter {
            kind: Some(kind),
            limit: 100,
            ..AlertFilter::default()
        };
        db.tx().alerts(&filter).unwrap()
    }

    fn correction(reason: &str, patch: CorrectionPatch) -> Correction {
        Correction {
            reason: reason.into(),
            patch,
            ..Correction::default()
        }
    }

    #[test]
    fn a_correction_keeps_before_and_after_and_never_audits_the_title() {
        let db = MemoryDb::custody(t(T0));
        let input = correction(
            "typo in the register",
            CorrectionPatch {
                title: Some("corrected title".into()),
                owner_unit: Some("Office 2".into()),
                home_device: Some(Some("cab-2".into())),
                tags: Some(vec!["em:1a00b54e12".into()]),
                ..CorrectionPatch::default()
            },
        );
        check_correction(&input).unwrap();
        let after = correct_in(&mut db.tx(), "cust", CarrierId(1), &input, t(T0 + 5)).unwrap();
        assert_eq!(after.title, "corrected title");
        assert_eq!(after.summary.owner_unit, "Office 2");
        assert_eq!(after.summary.home_device.as_deref(), Some("cab-2"));
        assert_eq!(after.summary.tags[0].tag, "em:1A00B54E12");
        let [record] = &db.tx().corrections(CarrierId(1)).unwrap()[..] else {
            panic!("one correction");
        };
        assert_eq!(record.reason, "typo in the register");
        assert_eq!(record.actor, "cust");
        assert_eq!(record.before["title"], "secret title");
        assert_eq!(record.after["title"], "corrected title");
        assert_eq!(record.before["owner_unit"], "U");
        assert_eq!(record.after["home_device"], "cab-2");
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "carrier.correct");
        let text = serde_json::to_string(&entry).unwrap();
        assert!(
            !text.contains("secret title") && !text.contains("corrected title"),
            "{text}"
        );
        assert!(text.contains("typo in the register"));
    }

    #[test]
    fn a_correction_is_refused_for_level_control_number_bad_fields_and_rules() {
        let level = Correction {
            level_given: true,
            ..correction("x", CorrectionPatch::default())
        };
        assert!(matches!(
            check_correction(&level),
            Err(ServiceError::Lifecycle(LifecycleError::NotEditable(_)))
        ));
        let control = Correction {
            control_no_given: true,
            ..correction("x", CorrectionPatch::default())
        };
        assert!(matches!(
            check_correction(&control),
            Err(ServiceError::Lifecycle(LifecycleError::NotEditable(_)))
        ));
        let no_reason = correction(
            " ",
            CorrectionPatch {
                title: Some(String::new()),
                ..CorrectionPatch::default()
            },
        );
        let Err(ServiceError::Invalid(problems)) = check_correction(&no_reason) else {
            panic!("accepted");
        };
        assert_eq!(
            problems.iter().map(|p| p.field).collect::<Vec<_>>(),
            ["reason", "title"]
        );

        let db = MemoryDb::custody(t(T0));
        db.add_gate("gate-1");
        let before = db.audit().len();
        let at_gate = correction(
            "moved",
            CorrectionPatch {
                home_device: Some(Some("gate-1".into())),
                ..CorrectionPatch::default()
            },
        );
        assert!(matches!(
            correct_in(&mut db.tx(), "cust", CarrierId(1), &at_gate, t(T0)),
            Err(ServiceError::Lifecycle(LifecycleError::Register(
                CarrierRuleError::HomeNotCabinet
            )))
        ));
        let same = correction(
            "nothing",
            CorrectionPatch {
                owner_unit: Some("U".into()),
                ..CorrectionPatch::default()
            },
        );
        assert!(matches!(
            correct_in(&mut db.tx(), "cust", CarrierId(1), &same, t(T0)),
            Err(ServiceError::Lifecycle(LifecycleError::NothingToChange))
        ));
        assert!(matches!(
            correct_in(&mut db.tx(), "cust", CarrierId(9), &same, t(T0)),
            Err(ServiceError::NotFound)
        ));
        assert_eq!(db.audit().len(), before, "nothing audited");
    }

    #[test]
    fn missing_by_hand_then_found_even_without_a_home_cabinet() {
        let db = MemoryDb::custody(t(T0));
        let homeless = correction(
            "no cabinet any more",
            CorrectionPatch {
                home_device: Some(None),
                ..CorrectionPatch::default()
            },
        );
        correct_in(&mut db.tx(), "cust", CarrierId(1), &homeless, t(T0)).unwrap();
        let (carrier, _) = missing_in(
            &mut db.tx(),
            "so1",
            CarrierId(1),
            "not in the safe",
            t(T0 + 10),
        )
        .unwrap();
        assert_eq!(carrier.summary.state, CarrierState::Missing);
        assert_eq!(carrier.summary.missing_since, Some(t(T0 + 10)));
        assert_eq!(alerts_of(&db, AlertKind::Missing).len(), 1);
        let [incident] = &db.tx().incidents(CarrierId(1)).unwrap()[..] else {
            panic!("one incident");
        };
        assert_eq!(incident.cause, MissingCause::Manual);
        assert_eq!(incident.what_happened, "not in the safe");
        assert!(matches!(
            missing_in(&mut db.tx(), "so1", CarrierId(1), "again", t(T0 + 11)),
            Err(ServiceError::Lifecycle(LifecycleError::AlreadyMissing))
        ));
        let told = told_in(
            &mut db.tx(),
            "so1",
            incident.id,
            "secrecy bureau, by phone",
            t(T0 + 20),
            t(T0 + 30),
        )
        .unwrap();
        assert_eq!(told.told.as_deref(), Some("secrecy bureau, by phone"));
        assert_eq!(told.told_at, Some(t(T0 + 20)));

        let found = found_in(
            &mut db.tx(),
            "cust",
            CarrierId(1),
            "under a desk",
            t(T0 + 40),
        )
        .unwrap();
        assert_eq!(found.summary.state, CarrierState::InStorage);
        assert_eq!(found.summary.missing_since, None);
        let incident = db.tx().incident(incident.id).unwrap().unwrap();
        assert_eq!(incident.found_at, Some(t(T0 + 40)));
        assert_eq!(incident.found_by.as_deref(), Some("user:cust"));
        assert!(matches!(
            found_in(&mut db.tx(), "cust", CarrierId(1), "again", t(T0 + 41)),
            Err(ServiceError::Lifecycle(LifecycleError::NotMissing(
                "in_storage"
            )))
        ));
        let actions: Vec<String> = db.audit().into_iter().map(|e| e.action).collect();
        for action in [
            "carrier.missing",
            "alert.raise",
            "incident.told",
            "carrier.found",
        ] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
    }

    #[test]
    fn a_carrier_found_while_its_loan_is_out_goes_back_to_the_borrower() {
        let db = MemoryDb::custody(t(T0));
        db.signed_out(1, (T0 + 86_400) * 1000, false);
        missing_in(
            &mut db.tx(),
            "cust",
            CarrierId(1),
            "borrower lost it",
            t(T0),
        )
        .unwrap();
        let found = found_in(&mut db.tx(), "cust", CarrierId(1), "in the car", t(T0 + 1)).unwrap();
        assert_eq!(found.summary.state, CarrierState::Out);
    }

    #[test]
    fn overdue_loans_escalate_to_missing_once_after_the_levels_time() {
        let db = MemoryDb::custody(t(T0));
        let due_ms = T0 * 1000;
        let signout = db.signed_out(1, due_ms, false);
        let policy = LoanPolicy::default(); // S: missing 3 days after due
        let tx = &mut db.tx();
        assert!(
            escalate_in(tx, at(due_ms + 3 * DAY_MS - 1000), &policy)
                .unwrap()
                .is_empty()
        );
        // Exactly at the escalation time (the store's due set and the rule agree on the edge).
        let changed = escalate_in(tx, at(due_ms + 3 * DAY_MS), &policy).unwrap();
        assert_eq!(changed.len(), 1);
        let summary = tx.carrier_summary(CarrierId(1)).unwrap();
        assert_eq!(summary.state, CarrierState::Missing);
        assert_eq!(
            summary.missing_since.map(|m| m.unix_ms()),
            Some(due_ms + 3 * DAY_MS),
            "missing since the escalation time"
        );
        let [incident] = &tx.incidents(CarrierId(1)).unwrap()[..] else {
            panic!("one incident");
        };
        assert_eq!(incident.cause, MissingCause::Overdue);
        assert_eq!(incident.signout_id.map(|s| s.0), Some(signout));
        // Found, back on the loan, still overdue: not escalated again for the same loan.
        found_in(
            tx,
            "cust",
            CarrierId(1),
            "borrower had it",
            at(due_ms + 5 * DAY_MS),
        )
        .unwrap();
        assert!(
            escalate_in(tx, at(due_ms + 9 * DAY_MS), &policy)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            tx.carrier_summary(CarrierId(1)).unwrap().state,
            CarrierState::Out
        );
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_ms(ms).unwrap()
    }

    fn removal_alert(db: &MemoryDb, raised_ms: i64) -> AlertView {
        let mut alert = NewAlert::new(
            AlertKind::UnauthorizedRemoval,
            cause(AlertKind::UnauthorizedRemoval, &[("carrier", "1")]),
            raised_ms,
        );
        alert.carrier_id = Some(1);
        let id = db.tx().raise_alert(&alert).unwrap().id();
        db.tx().alert(id).unwrap().unwrap()
    }

    #[test]
    fn a_removal_not_stopped_at_the_gate_marks_the_carrier_missing_since_the_alarm() {
        let db = MemoryDb::custody(t(T0));
        let view = removal_alert(&db, T0 * 1000);
        let tx = &mut db.tx();
        let none = removal_resolved_in(
            tx,
            "guard",
            &view,
            Some(RemovalOutcome::StoppedAtGate),
            "stopped",
            t(T0 + 60),
        )
        .unwrap();
        assert!(none.is_empty());
        assert!(
            removal_resolved_in(tx, "guard", &view, None, "x", t(T0 + 60))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            tx.carrier_summary(CarrierId(1)).unwrap().state,
            CarrierState::InStorage
        );
        let raised = removal_resolved_in(
            tx,
            "guard",
            &view,
            Some(RemovalOutcome::PersonLeft),
            "ran off",
            t(T0 + 60),
        )
        .unwrap();
        assert_eq!(raised.len(), 1);
        let summary = tx.carrier_summary(CarrierId(1)).unwrap();
        assert_eq!(summary.state, CarrierState::Missing);
        assert_eq!(summary.missing_since, Some(t(T0)));
        let [incident] = &tx.incidents(CarrierId(1)).unwrap()[..] else {
            panic!("one incident");
        };
        assert_eq!(incident.cause, MissingCause::UnauthorizedRemoval);
        assert_eq!(incident.alert_id, view.id.parse().ok());
        // An outcome on another kind of alert is malformed input.
        let mut other = view.clone();
        other.kind = AlertKind::Overdue;
        assert!(matches!(
            removal_resolved_in(tx, "g", &other, Some(RemovalOutcome::BroughtBack), "x", t(T0)),
            Err(ServiceError::Invalid(p)) if p[0].field == "outcome"
        ));
    }

    #[test]
    fn loans_longer_than_the_level_allows_are_refused_at_request_and_issue() {
        let db = MemoryDb::custody(t(T0));
        let policy = LoanPolicy::default();
        let tx = &mut db.tx();
        let ids = [CarrierId(1)];
        assert!(check_loan_in(tx, &policy, &ids, t(T0 + 30 * 86_400), t(T0)).is_ok());
        assert!(matches!(
            check_loan_in(tx, &policy, &ids, t(T0 + 31 * 86_400), t(T0)),
            Err(ServiceError::Lifecycle(LifecycleError::LoanTooLong {
                level: "S",
                max_days: 30
            }))
        ));
        let signout = db.signed_out(2, (T0 + 40 * 86_400) * 1000, false);
        let tx = &mut db.tx();
        assert!(matches!(
            check_issue_loan_in(tx, &policy, SignoutId(signout), t(T0)),
            Err(ServiceError::Lifecycle(LifecycleError::LoanTooLong { .. }))
        ));
        assert!(check_issue_loan_in(tx, &policy, SignoutId(signout), t(T0 + 20 * 86_400)).is_ok());
    }
}
