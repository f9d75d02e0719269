//! The register of people (涉密人员): registration, the register, and the status changes
//! (leaving, departure with its decommissioning period).
//!
//! A new person's name, department and badge tag are checked here once
//! ([`check_new_person`]); the API and the officer's form call the same functions. The
//! status rules are [`crate::domain::person`]'s; a refusal writes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{PeopleReaderCap, SecurityOfficerCap};
use crate::domain::alert::{AlertKind, NewAlert, cause};
use crate::domain::ids::{PersonId, is_valid_label, is_valid_name};
use crate::domain::level::Level;
use crate::domain::page::{Page, Sort, SortKey, SortValue, paginate, search_words, words_match};
use crate::domain::person::{
    self, Category, DecommissioningPolicy, Period, PersonDates, PersonStatus, Reminder,
    ReminderKind, ReminderWindows, StatusChangeError,
};
use crate::domain::time::{Date, Timestamp};
use crate::service::lists::{ListParams, WORDS_MAX};
use crate::store::Tx;
use crate::store::people::{HeldCarrier, NewPerson, Person, PersonChange, PersonRecord};

/// Check a new person's free-text fields, every problem at once, in field order: a name and a
/// department that are labels, a badge tag (if any) that is a name. (A form that cannot yet
/// build a whole [`NewPerson`] checks them here too.)
pub fn check_new_person(
    name: &str,
    department: &str,
    badge_tag: Option<&str>,
) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    if !is_valid_label(name) {
        problems.push(Problem {
            field: "name",
            code: "invalid",
            message: "name must be 1 to 200 printable characters",
        });
    }
    if !is_valid_label(department) {
        problems.push(Problem {
            field: "department",
            code: "invalid",
            message: "department must be 1 to 200 printable characters",
        });
    }
    if badge_tag.is_some_and(|t| !is_valid_name(t)) {
        problems.push(Problem {
            field: "badge_tag",
            code: "invalid",
            message: "badge_tag must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
        });
    }
    Problem::none_or_invalid(problems)
}

/// Register a person, status `active`, with the audit entry. A taken badge tag is
/// [`ServiceError::Duplicate`].
pub async fn register(
    app: &AppState,
    cap: &SecurityOfficerCap,
    person: NewPerson,
) -> Result<PersonId, ServiceError> {
    check_new_person(
        &person.name,
        &person.department,
        person.badge_tag.as_deref(),
    )?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| register_in(tx, &actor, &person, at))
        .await
}

pub(super) fn register_in(
    tx: &mut dyn Tx,
    actor: &str,
    person: &NewPerson,
    at: Timestamp,
) -> Result<PersonId, ServiceError> {
    let status = PersonStatus::Active;
    let id = tx.insert_person(person, status, at)?;
    let mut after = serde_json::to_value(person).map_err(|e| ServiceError::Store(e.into()))?;
    after["id"] = json!(id);
    after["status"] = json!(status);
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.create",
        subject: format!("person:{id}"),
        before: None,
        after: Some(after),
    })?;
    Ok(id)
}

/// Everyone on the register, by id.
pub async fn list(app: &AppState, _cap: &PeopleReaderCap) -> Result<Vec<Person>, ServiceError> {
    app.store().query(|tx| Ok(tx.people()?)).await
}

/// Which people a list shows (the officer's register page): all fields optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleFilter {
    /// Words found in the name, department or badge tag (case-insensitive).
    pub q: Option<String>,
    /// Only this category.
    pub category: Option<Category>,
    /// Only this state: `active`, `leaving`, `decommissioning` (departed, period running) or
    /// `departed` (period over).
    pub state: Option<String>,
    /// Only people whose training has run out or runs out within the reminder window.
    pub expiring: bool,
}

impl PeopleFilter {
    /// Whether `p` is shown on `today`, with the certificate reminder window in days.
    pub fn matches(&self, p: &Person, today: Date, window_days: u32) -> bool {
        let text_ok = self.q.as_deref().is_none_or(|q| {
            let q = q.to_lowercase();
            [Some(&p.name), Some(&p.department), p.badge_tag.as_ref()]
                .into_iter()
                .flatten()
                .any(|field| field.to_lowercase().contains(&q))
        });
        let decommissioning = person::in_decommissioning(
            p.status,
            p.decommissioning_ends_on,
            p.decommissioning_lifelong,
            today,
        );
        let state_ok = self.state.as_deref().is_none_or(|s| match s {
            "decommissioning" => decommissioning,
            "departed" => p.status == PersonStatus::Departed && !decommissioning,
            other => p.status.as_str() == other,
        });
        let expiring_ok = !self.expiring
            || (p.status != PersonStatus::Departed
                && p.training_valid_until
                    .is_none_or(|d| today.days_until(d) <= i64::from(window_days)));
        text_ok && state_ok && expiring_ok && self.category.is_none_or(|c| c == p.category)
    }
}

/// The register filtered, by name.
pub async fn search(
    app: &AppState,
    cap: &PeopleReaderCap,
    filter: PeopleFilter,
) -> Result<Vec<Person>, ServiceError> {
    let today = app.now().date();
    let window = app.settings().people.certificate_reminder_days;
    let mut people = list(app, cap).await?;
    people.retain(|p| filter.matches(p, today, window));
    people.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.0.cmp(&b.id.0)));
    Ok(people)
}

/// The keys the register of people may be sorted by.
pub const PEOPLE_SORT_KEYS: &[SortKey] = &[
    SortKey::int("id"),
    SortKey::text("name"),
    SortKey::text("department"),
    SortKey::text("category"),
    SortKey::text("status"),
];

/// One page of the register of people: those matching every word of `params.q` in their
/// name, department or badge tag, in `params.sort` order ([`PEOPLE_SORT_KEYS`], by id when
/// absent). The register is short (one unit's cleared staff), so it is paged in memory with
/// the same keyset cursor as the database lists.
pub async fn page(
    app: &AppState,
    cap: &PeopleReaderCap,
    params: &ListParams,
) -> Result<Page<Person>, ServiceError> {
    search_page(app, cap, &PeopleFilter::default(), params).await
}

/// [`page`] of the people `filter` shows as well (the officer's register page: category,
/// state, training expiring); the search words are `params.q`, not `filter.q`.
pub async fn search_page(
    app: &AppState,
    cap: &PeopleReaderCap,
    filter: &PeopleFilter,
    params: &ListParams,
) -> Result<Page<Person>, ServiceError> {
    let default = Sort {
        key: PEOPLE_SORT_KEYS[0],
        descending: false,
    };
    let checked = params.check(PEOPLE_SORT_KEYS, default)?;
    let words = search_words(checked.q.as_deref().unwrap_or(""), WORDS_MAX);
    let today = app.now().date();
    let window = app.settings().people.certificate_reminder_days;
    let everyone = list(app, cap).await?;
    let matching = everyone
        .into_iter()
        .filter(|p| {
            let badge = p.badge_tag.as_deref().unwrap_or("");
            words_match(&words, &[&p.name, &p.department, badge])
                && filter.matches(p, today, window)
        })
        .collect();
    Ok(paginate(matching, &checked.page, |p, key| {
        let value = match key {
            "name" => SortValue::Text(p.name.clone()),
            "department" => SortValue::Text(p.department.clone()),
            "category" => SortValue::Text(p.category.as_str().to_owned()),
            "status" => SortValue::Text(p.status.as_str().to_owned()),
            _ => SortValue::Int(p.id.0),
        };
        (value, p.id.0)
    }))
}

/// One person.
pub async fn one(
    app: &AppState,
    _cap: &PeopleReaderCap,
    id: PersonId,
) -> Result<Person, ServiceError> {
    app.store().query(move |tx| Ok(tx.person(id)?)).await
}

/// A person starts leaving their post or the unit (离岗/离职): status `leaving`; they may no
/// longer be issued carriers. The person as now.
pub async fn leave(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: PersonId,
) -> Result<Person, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| leave_in(tx, &actor, id, at))
        .await
}

fn leave_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: PersonId,
    at: Timestamp,
) -> Result<Person, ServiceError> {
    let before = tx.person(id)?;
    let status = person::leave(before.status)?;
    tx.set_leaving(id, status, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.leave",
        subject: format!("person:{id}"),
        before: Some(json!({"status": before.status})),
        after: Some(json!({"status": status, "leaving_since": at})),
    })?;
    Ok(tx.person(id)?)
}

/// Certify the return of every carrier (清退) of a leaving person: refused while any carrier
/// names them as holder. The person as now.
pub async fn clear(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: PersonId,
) -> Result<Person, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| clear_in(tx, &actor, id, at))
        .await
}

fn clear_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: PersonId,
    at: Timestamp,
) -> Result<Person, ServiceError> {
    let before = tx.person(id)?;
    let held = tx.carriers_held(id)?;
    person::clear(before.status, before.cleared_at.is_some(), held)?;
    tx.set_cleared(id, at)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.clear",
        subject: format!("person:{id}"),
        before: Some(json!({"status": before.status, "cleared_at": null})),
        after: Some(json!({"status": before.status, "cleared_at": at, "carriers_held": 0})),
    })?;
    Ok(tx.person(id)?)
}

/// The officer's choice of decommissioning period at a departure (`POST /people/{id}/depart`):
/// nothing = the site's minimum for the category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepartInput {
    /// A longer period in months than the category's minimum (1 to 1200).
    #[serde(default)]
    pub months: Option<u32>,
    /// Lifelong restrictions on travel abroad instead of an end date.
    #[serde(default)]
    pub lifelong: bool,
}

impl DepartInput {
    fn period(&self) -> Result<Option<Period>, ServiceError> {
        match (self.months, self.lifelong) {
            (Some(_), true) => Err(ServiceError::invalid(
                "months",
                "invalid",
                "months and lifelong exclude one another",
            )),
            (None, true) => Ok(Some(Period::Lifelong)),
            (Some(0), false) => Err(ServiceError::invalid(
                "months",
                "invalid",
                "months must be 1 to 1200",
            )),
            (m, false) => Ok(m.map(Period::Months)),
        }
    }
}

/// Approve a person's departure today: only after they started leaving and the return of
/// every carrier was certified (清退); `departed`, with the decommissioning period (脱密期)
/// of the configuration (or the officer's longer one). The person as now.
///
/// Every account linked to the person is disabled in the same transaction (each with its
/// own `user.disable` entry naming the departure), and their sessions and live streams end
/// at once: a departed person's token and password stop working with the departure, not
/// when an administrator remembers to act. Their badge leaves every gate policy (the policy
/// lists the badges of people who have not departed).
pub async fn depart(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: PersonId,
    input: DepartInput,
) -> Result<Person, ServiceError> {
    let requested = input.period()?;
    let actor = cap.actor().name().to_owned();
    let policy = app.settings().decommissioning;
    let at = app.now();
    let (person, ended) = app
        .store()
        .transact(move |tx| depart_in(tx, &actor, id, &policy, requested, at))
        .await?;
    app.end_sessions(&ended);
    Ok(person)
}

/// The departure; the person as now and the token hashes of the sessions it ended.
fn depart_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: PersonId,
    policy: &DecommissioningPolicy,
    requested: Option<Period>,
    at: Timestamp,
) -> Result<(Person, Vec<[u8; 32]>), ServiceError> {
    let before = tx.person(id)?;
    let held = tx.carriers_held(id)?;
    let d = person::depart(
        before.status,
        before.cleared_at.is_some(),
        before.category,
        held,
        at.date(),
        policy,
        requested,
    )?;
    let months = match d.period {
        Period::Months(m) => Some(m),
        Period::Lifelong => None,
    };
    tx.set_departed(id, at.date(), months, d.ends_on)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.depart",
        subject: format!("person:{id}"),
        before: Some(json!({"status": before.status})),
        after: Some(json!({
            "status": PersonStatus::Departed,
            "approved_on": at.date(),
            "decommissioning_months": months,
            "decommissioning_lifelong": months.is_none(),
            "decommissioning_ends_on": d.ends_on,
        })),
    })?;
    let ended = super::accounts::disable_accounts_of_person_in(tx, actor, id, at)?;
    Ok((tx.person(id)?, ended))
}

/// An officer's edit of a person (`PATCH /people/{id}`): the fields to change and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonEdit {
    /// Why (kept in the person's history and the audit trail). Required.
    pub reason: String,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New department.
    #[serde(default)]
    pub department: Option<String>,
    /// New category.
    #[serde(default)]
    pub category: Option<Category>,
    /// New clearance, at most the category's level.
    #[serde(default)]
    pub clearance: Option<Level>,
    /// A replacement badge (the old one stops working at the gates at once).
    #[serde(default)]
    pub badge_tag: Option<String>,
    /// Renewed training: its new last valid day.
    #[serde(default)]
    pub training_valid_until: Option<Date>,
    /// A new commitment signed on this day.
    #[serde(default)]
    pub commitment_signed_on: Option<Date>,
    /// Vetting (资格审查) date.
    #[serde(default)]
    pub vetted_on: Option<Date>,
    /// Vetting outcome.
    #[serde(default)]
    pub vetting_outcome: Option<String>,
    /// Periodic assessment (考核) date.
    #[serde(default)]
    pub assessed_on: Option<Date>,
    /// Assessment outcome.
    #[serde(default)]
    pub assessment_outcome: Option<String>,
}

impl PersonEdit {
    /// The record after the edit; every input problem at once.
    fn apply(&self, before: &PersonRecord) -> Result<PersonRecord, ServiceError> {
        let mut after = before.clone();
        let mut problems = Vec::new();
        let mut bad = |field, message| {
            problems.push(Problem {
                field,
                code: "invalid",
                message,
            })
        };
        if !is_valid_label(&self.reason) {
            bad("reason", "reason must be 1 to 200 printable characters");
        }
        let labels = [
            (&self.name, &mut after.name, "name"),
            (&self.department, &mut after.department, "department"),
        ];
        for (new, slot, field) in labels {
            if let Some(v) = new {
                if is_valid_label(v) {
                    *slot = v.clone();
                } else {
                    bad(field, "must be 1 to 200 printable characters");
                }
            }
        }
        if let Some(b) = &self.badge_tag {
            if is_valid_name(b) {
                after.badge_tag = Some(b.clone());
            } else {
                bad(
                    "badge_tag",
                    "badge_tag must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                );
            }
        }
        for (new, slot, field) in [
            (
                &self.vetting_outcome,
                &mut after.vetting_outcome,
                "vetting_outcome",
            ),
            (
                &self.assessment_outcome,
                &mut after.assessment_outcome,
                "assessment_outcome",
            ),
        ] {
            if let Some(v) = new {
                if is_valid_label(v) {
                    *slot = Some(v.clone());
                } else {
                    bad(field, "must be 1 to 200 printable characters");
                }
            }
        }
        after.category = self.category.unwrap_or(after.category);
        after.clearance = self.clearance.or(after.clearance);
        if after.clearance.is_some_and(|c| !after.category.may_hold(c)) {
            bad(
                "clearance",
                "clearance must not exceed the category's level",
            );
        }
        after.training_valid_until = self.training_valid_until.or(after.training_valid_until);
        after.commitment_signed_on = self.commitment_signed_on.or(after.commitment_signed_on);
        after.vetted_on = self.vetted_on.or(after.vetted_on);
        after.assessed_on = self.assessed_on.or(after.assessed_on);
        if problems.is_empty() {
            Ok(after)
        } else {
            Err(ServiceError::Invalid(problems))
        }
    }
}

/// Only the fields that differ, as JSON objects (before, after).
fn changed_fields(
    before: &PersonRecord,
    after: &PersonRecord,
) -> Result<(Value, Value), ServiceError> {
    let to_map = |r: &PersonRecord| match serde_json::to_value(r) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Ok(serde_json::Map::new()),
        Err(e) => Err(ServiceError::Store(e.into())),
    };
    let (b, a) = (to_map(before)?, to_map(after)?);
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    for (key, value) in &a {
        if b.get(key) != Some(value) {
            old.insert(key.clone(), b.get(key).cloned().unwrap_or(Value::Null));
            new.insert(key.clone(), value.clone());
        }
    }
    Ok((Value::Object(old), Value::Object(new)))
}

/// Edit a person (security officer): the changed fields go to the person's history and the
/// audit trail with the reason. A departed person's record is closed (409
/// `already_departed`); a taken badge is [`ServiceError::Duplicate`]. A replaced badge stops
/// working at the gates at once: the gate policy is computed from the register.
pub async fn edit(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: PersonId,
    edit: PersonEdit,
) -> Result<Person, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| edit_in(tx, &actor, id, &edit, at))
        .await
}

fn edit_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: PersonId,
    edit: &PersonEdit,
    at: Timestamp,
) -> Result<Person, ServiceError> {
    let person = tx.person(id)?;
    let before = person.record();
    let after = edit.apply(&before)?;
    if person.status == PersonStatus::Departed {
        return Err(StatusChangeError::AlreadyDeparted.into());
    }
    let (old, new) = changed_fields(&before, &after)?;
    if new.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(person);
    }
    tx.update_person(id, &after)?;
    let change = PersonChange {
        at,
        actor: actor.to_owned(),
        reason: edit.reason.clone(),
        before: old.clone(),
        after: new.clone(),
    };
    tx.insert_person_change(id, &change)?;
    let mut audited = new;
    audited["reason"] = json!(edit.reason);
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.edit",
        subject: format!("person:{id}"),
        before: Some(old),
        after: Some(audited),
    })?;
    Ok(tx.person(id)?)
}

/// What the person's page shows beyond the person: the carriers they still hold (to return
/// before 清退) and their history of edits.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PersonFile {
    /// The person.
    pub person: Person,
    /// Carriers naming them as holder.
    pub holding: Vec<HeldCarrier>,
    /// Edits, oldest first.
    pub history: Vec<PersonChange>,
}

/// A person with their holdings and history (security officer).
pub async fn file(
    app: &AppState,
    _cap: &SecurityOfficerCap,
    id: PersonId,
) -> Result<PersonFile, ServiceError> {
    app.store()
        .query(move |tx| {
            Ok(PersonFile {
                person: tx.person(id)?,
                holding: tx.held_carriers(id)?,
                history: tx.person_changes(id)?,
            })
        })
        .await
}

/// One reminder for the officer, about one person.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PersonReminder {
    /// Whom.
    pub person_id: PersonId,
    /// Their name.
    pub name: String,
    /// What and when.
    #[serde(flatten)]
    pub reminder: Reminder,
}

/// The dates the reminder rules look at, for a person as stored.
pub fn person_dates(p: &Person, commitment_valid_months: u32) -> PersonDates {
    PersonDates {
        status: p.status,
        training_valid_until: p.training_valid_until,
        commitment_expires_on: person::commitment_expires_on(
            p.commitment_signed_on,
            commitment_valid_months,
        ),
        decommissioning_ends_on: p.decommissioning_ends_on,
    }
}

/// The reminders due today (security officer): training or commitments running out within
/// the configured window, decommissioning periods ending within theirs; soonest first.
pub async fn reminders(
    app: &AppState,
    _cap: &SecurityOfficerCap,
) -> Result<Vec<PersonReminder>, ServiceError> {
    let settings = app.settings().people;
    let today = app.now().date();
    let people = app
        .store()
        .query(|tx| Ok::<_, ServiceError>(tx.people()?))
        .await?;
    let mut out: Vec<PersonReminder> = people
        .iter()
        .flat_map(|p| {
            let dates = person_dates(p, settings.commitment_valid_months);
            person::reminders(&dates, today, &settings.windows())
                .into_iter()
                .map(|reminder| PersonReminder {
                    person_id: p.id,
                    name: p.name.clone(),
                    reminder,
                })
        })
        .collect();
    out.sort_by_key(|r| (r.reminder.days_left, r.person_id));
    Ok(out)
}

/// At most one `training_expired_holding` alert per person a day, while it lasts.
const EXPIRED_HOLDING_REPEAT_MS: i64 = 24 * 3600 * 1000;

/// Raise `training_expired_holding` for everyone in post or leaving who still holds carriers
/// while their training or commitment has run out (at most once a day per person); the ids
/// of the alerts raised. Part of the sweep (as `@sweep`).
pub fn expired_holders_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    commitment_valid_months: u32,
) -> Result<Vec<i64>, ServiceError> {
    let today = at.date();
    let now_ms = at.unix_ms();
    let mut raised = Vec::new();
    for (id, held) in tx.holders()? {
        let p = tx.person(id)?;
        let dates = person_dates(&p, commitment_valid_months);
        if !person::expired_while_holding(&dates, held, today) {
            continue;
        }
        let cause = cause(
            AlertKind::TrainingExpiredHolding,
            &[("person", &id.to_string())],
        );
        if tx
            .alert_last_seen(&cause)?
            .is_some_and(|seen| now_ms - seen < EXPIRED_HOLDING_REPEAT_MS)
        {
            continue;
        }
        let mut alert = NewAlert::new(AlertKind::TrainingExpiredHolding, cause, now_ms);
        alert.person_id = Some(id.0);
        alert.detail = json!({"carriers_held": held});
        raised.push(raise_for_person(tx, at, &alert, id)?);
    }
    Ok(raised)
}

/// Raise `alert` about person `id` as the sweep, auditing it when it is new; its id.
fn raise_for_person(
    tx: &mut dyn Tx,
    at: Timestamp,
    alert: &NewAlert,
    id: PersonId,
) -> Result<i64, ServiceError> {
    debug_assert_eq!(alert.person_id, Some(id.0));
    Ok(super::alerts::raise_in(tx, at, "@sweep", alert)?.id())
}

/// The alert kind that sends a reminder of `kind` through the notifications.
pub fn reminder_alert_kind(kind: ReminderKind) -> AlertKind {
    match kind {
        ReminderKind::TrainingExpiring => AlertKind::TrainingExpiring,
        ReminderKind::CommitmentExpiring => AlertKind::CommitmentExpiring,
        ReminderKind::DecommissioningEnding => AlertKind::DecommissioningEnding,
    }
}

/// Send the reminders due at `at` ([`person::reminders`], the ones the officer's page lists)
/// through the notifications: one low-severity alert per person, kind and due date, so each
/// reaches the officers once per window, in the daily digest (and on webhooks), and a renewal
/// (a new due date) is reminded afresh when its own window opens. The ids of the alerts
/// raised. Part of the sweep (as `@sweep`). The alert names the person by id only.
pub fn reminders_in(
    tx: &mut dyn Tx,
    at: Timestamp,
    windows: &ReminderWindows,
    commitment_valid_months: u32,
) -> Result<Vec<i64>, ServiceError> {
    let today = at.date();
    let mut raised = Vec::new();
    for p in tx.people()? {
        let dates = person_dates(&p, commitment_valid_months);
        for reminder in person::reminders(&dates, today, windows) {
            let kind = reminder_alert_kind(reminder.kind);
            let due = reminder.due_on.to_string();
            let cause = cause(kind, &[("person", &p.id.to_string()), ("due", &due)]);
            if tx.alert_last_seen(&cause)?.is_some() {
                continue;
            }
            let mut alert = NewAlert::new(kind, cause, at.unix_ms());
            alert.person_id = Some(p.id.0);
            alert.detail = json!({"due_on": due, "days_left": reminder.days_left});
            raised.push(raise_for_person(tx, at, &alert, p.id)?);
        }
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::person::{MonthRange, StatusChangeError};
    use crate::store::PeopleRows;
    use crate::store::alerts::AlertRows;
    use crate::store::test_support::{MemoryDb, T0, t};

    const POLICY: DecommissioningPolicy = DecommissioningPolicy {
        core: MonthRange { min: 36, max: 60 },
        important: MonthRange { min: 24, max: 36 },
        general: MonthRange { min: 12, max: 24 },
    };

    fn new(name: &str, badge: Option<&str>) -> NewPerson {
        NewPerson {
            name: name.into(),
            department: "D".into(),
            category: Category::Important,
            badge_tag: badge.map(str::to_owned),
            training_valid_until: None,
            commitment_signed_on: None,
        }
    }

    #[test]
    fn a_new_person_is_active_and_audited() {
        let db = MemoryDb::new();
        let id = register_in(&mut db.tx(), "so1", &new("Wang", Some("B-1")), t(T0)).unwrap();
        let p = db.tx().person(id).unwrap();
        assert_eq!((p.name.as_str(), p.status), ("Wang", PersonStatus::Active));
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "person.create");
        assert_eq!(entry.after.as_ref().unwrap()["badge_tag"], "B-1");
        assert_eq!(entry.after.as_ref().unwrap()["status"], "active");
        assert!(matches!(
            register_in(&mut db.tx(), "so1", &new("Li", Some("B-1")), t(T0)),
            Err(ServiceError::Duplicate { what: "badge_tag" })
        ));
    }

    #[test]
    fn new_person_input_names_every_problem() {
        let Err(ServiceError::Invalid(problems)) = check_new_person(" ", "", Some("a b")) else {
            panic!("accepted");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["name", "department", "badge_tag"]);
        assert!(check_new_person("Wang", "D", None).is_ok());
    }

    #[test]
    fn the_departure_sequence_refuses_each_step_out_of_order_and_writes_nothing() {
        let db = MemoryDb::custody(t(T0));
        let id = PersonId(1);
        let depart = |db: &MemoryDb| depart_in(&mut db.tx(), "so1", id, &POLICY, None, t(T0));
        assert!(matches!(
            depart(&db),
            Err(ServiceError::StatusChange(StatusChangeError::NotLeaving))
        ));
        let left = leave_in(&mut db.tx(), "so1", id, t(T0)).unwrap();
        assert_eq!(
            (left.status, left.leaving_since),
            (PersonStatus::Leaving, Some(t(T0)))
        );
        assert!(matches!(
            leave_in(&mut db.tx(), "so1", id, t(T0)),
            Err(ServiceError::StatusChange(
                StatusChangeError::AlreadyLeaving
            ))
        ));
        db.set_holder(1, 1);
        let before = db.audit().len();
        assert!(matches!(
            clear_in(&mut db.tx(), "so1", id, t(T0)),
            Err(ServiceError::StatusChange(
                StatusChangeError::CarriersOutstanding { held: 1 }
            ))
        ));
        assert!(matches!(
            depart(&db),
            Err(ServiceError::StatusChange(
                StatusChangeError::CarriersOutstanding { held: 1 }
            ))
        ));
        assert_eq!(db.audit().len(), before);
        let held = db.tx().held_carriers(id).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].control_no, "A1");
        db.tx()
            .conn()
            .execute("UPDATE carriers SET holder = NULL", [])
            .unwrap();
        assert!(matches!(
            depart(&db),
            Err(ServiceError::StatusChange(StatusChangeError::NotCleared))
        ));
        let cleared = clear_in(&mut db.tx(), "so1", id, t(T0)).unwrap();
        assert_eq!(cleared.cleared_at, Some(t(T0)));
        assert_eq!(db.audit().pop().unwrap().action, "person.clear");
        let (gone, _) = depart(&db).unwrap();
        assert_eq!(gone.status, PersonStatus::Departed);
        // Core staff: 36 months by default.
        assert_eq!(gone.decommissioning_ends_on, t(T0).date().add_months(36));
        assert_eq!(gone.decommissioning_months, Some(36));
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "person.depart");
        assert_eq!(entry.after.unwrap()["decommissioning_months"], 36);
    }

    #[test]
    fn a_lifelong_period_has_no_end_date() {
        let db = MemoryDb::custody(t(T0));
        let id = PersonId(1);
        leave_in(&mut db.tx(), "so1", id, t(T0)).unwrap();
        clear_in(&mut db.tx(), "so1", id, t(T0)).unwrap();
        let lifelong = Some(Period::Lifelong);
        let (gone, _) = depart_in(&mut db.tx(), "so1", id, &POLICY, lifelong, t(T0)).unwrap();
        assert_eq!(
            (gone.decommissioning_ends_on, gone.decommissioning_lifelong),
            (None, true)
        );
        assert!(matches!(
            leave_in(&mut db.tx(), "so1", PersonId(99), t(T0)),
            Err(ServiceError::NotFound)
        ));
    }

    #[test]
    fn an_edit_changes_only_the_given_fields_and_keeps_the_history() {
        let db = MemoryDb::custody(t(T0));
        let id = PersonId(1);
        let renew = PersonEdit {
            reason: "re-examined".into(),
            training_valid_until: Some("2030-06-30".parse().unwrap()),
            badge_tag: Some("B-NEW".into()),
            ..PersonEdit::default()
        };
        let p = edit_in(&mut db.tx(), "so1", id, &renew, t(T0)).unwrap();
        assert_eq!(p.training_valid_until, Some("2030-06-30".parse().unwrap()));
        assert_eq!(p.badge_tag.as_deref(), Some("B-NEW"));
        assert_eq!(p.name, "Li");
        let history = db.tx().person_changes(id).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].reason, "re-examined");
        assert_eq!(history[0].after["training_valid_until"], "2030-06-30");
        assert_eq!(history[0].before["badge_tag"], Value::Null);
        assert!(
            history[0].after.get("name").is_none(),
            "unchanged fields left out"
        );
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "person.edit");
        assert_eq!(entry.after.unwrap()["reason"], "re-examined");

        let bad = PersonEdit {
            reason: " ".into(),
            category: Some(Category::General),
            clearance: Some(Level::Secret),
            ..PersonEdit::default()
        };
        let Err(ServiceError::Invalid(problems)) = edit_in(&mut db.tx(), "so1", id, &bad, t(T0))
        else {
            panic!("accepted");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["reason", "clearance"]);
        assert_eq!(db.tx().person_changes(id).unwrap().len(), 1);
    }

    #[test]
    fn expired_holders_are_alerted_once_a_day() {
        let db = MemoryDb::custody(t(T0));
        db.set_holder(1, 1);
        assert!(
            expired_holders_in(&mut db.tx(), t(T0), 0)
                .unwrap()
                .is_empty()
        );
        db.tx()
            .conn()
            .execute("UPDATE people SET training_valid_until = '2000-01-01'", [])
            .unwrap();
        let raised = expired_holders_in(&mut db.tx(), t(T0), 0).unwrap();
        assert_eq!(raised.len(), 1);
        assert_eq!(db.audit().pop().unwrap().action, "alert.raise");
        let later = t(T0).plus_secs(3600);
        assert!(
            expired_holders_in(&mut db.tx(), later, 0)
                .unwrap()
                .is_empty()
        );
        let next_day = t(T0).plus_secs(25 * 3600);
        assert_eq!(
            expired_holders_in(&mut db.tx(), next_day, 0).unwrap(),
            raised
        );
    }

    /// Each reminder is raised once per person, kind and due date (a low alert, audited), the
    /// same window never again, and a departed person's period ending is reminded too.
    #[test]
    fn reminders_are_raised_once_per_window() {
        let db = MemoryDb::custody(t(T0));
        let windows = ReminderWindows {
            certificate_days: 30,
            decommissioning_days: 60,
        };
        let today = t(T0).date();
        let set = |sql: String| {
            db.tx().conn().execute(&sql, []).unwrap();
        };
        let remind = |at: Timestamp| reminders_in(&mut db.tx(), at, &windows, 0).unwrap();
        assert!(remind(t(T0)).is_empty(), "training valid for years");
        set(format!(
            "UPDATE people SET training_valid_until = '{}'",
            today.plus_days(10)
        ));
        let raised = remind(t(T0));
        assert_eq!(raised.len(), 1);
        assert_eq!(db.audit().pop().unwrap().action, "alert.raise");
        let alert = db.tx().alert(raised[0]).unwrap().unwrap();
        assert_eq!(alert.kind, AlertKind::TrainingExpiring);
        assert_eq!(alert.severity, crate::domain::alert::Severity::Low);
        assert_eq!(alert.person_id, Some("1".to_owned()));
        assert_eq!(alert.detail["days_left"], 10);
        assert!(remind(t(T0)).is_empty(), "once");
        assert!(
            remind(t(T0).plus_secs(3 * 86_400)).is_empty(),
            "once per window"
        );
        // Departed, the period ending in 20 days: reminded once, the training no longer.
        set(format!(
            "UPDATE people SET status = 'departed', decommissioning_ends_on = '{}'",
            today.plus_days(20)
        ));
        let raised = remind(t(T0));
        assert_eq!(raised.len(), 1);
        let alert = db.tx().alert(raised[0]).unwrap().unwrap();
        assert_eq!(alert.kind, AlertKind::DecommissioningEnding);
        assert!(remind(t(T0)).is_empty());
    }

    #[test]
    fn the_filter_searches_and_tells_decommissioning_from_departed() {
        let db = MemoryDb::custody(t(T0));
        let mut p = db.tx().person(PersonId(1)).unwrap();
        let today = t(T0).date();
        let f = |q: Option<&str>, state: Option<&str>| PeopleFilter {
            q: q.map(str::to_owned),
            state: state.map(str::to_owned),
            ..PeopleFilter::default()
        };
        assert!(f(Some("li"), Some("active")).matches(&p, today, 30));
        assert!(!f(Some("wang"), None).matches(&p, today, 30));
        p.status = PersonStatus::Departed;
        p.decommissioning_ends_on = Some(today.plus_days(10));
        assert!(f(None, Some("decommissioning")).matches(&p, today, 30));
        assert!(!f(None, Some("departed")).matches(&p, today, 30));
        p.decommissioning_ends_on = Some(today.plus_days(-1));
        assert!(f(None, Some("departed")).matches(&p, today, 30));
    }
}
