//! The register of people (涉密人员): registration, the register, and the status changes
//! (leaving, departure with its decommissioning period).
//!
//! A new person's name, department and badge tag are checked here once
//! ([`check_new_person`]); the API and the officer's form call the same functions. The
//! status rules are [`crate::domain::person`]'s; a refusal writes nothing.

use serde_json::json;

use super::{Problem, ServiceError};
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::{PeopleReaderCap, SecurityOfficerCap};
use crate::domain::ids::{PersonId, is_valid_label, is_valid_name};
use crate::domain::page::{Page, Sort, SortKey, SortValue, paginate, search_words, words_match};
use crate::domain::person::{self, DecommissioningPolicy, PersonStatus};
use crate::domain::time::Timestamp;
use crate::service::lists::{ListParams, WORDS_MAX};
use crate::store::Tx;
use crate::store::people::{NewPerson, Person};

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
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(problems))
    }
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

fn register_in(
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
    let default = Sort {
        key: PEOPLE_SORT_KEYS[0],
        descending: false,
    };
    let checked = params.check(PEOPLE_SORT_KEYS, default)?;
    let words = search_words(checked.q.as_deref().unwrap_or(""), WORDS_MAX);
    let everyone = list(app, cap).await?;
    let matching = everyone
        .into_iter()
        .filter(|p| {
            let badge = p.badge_tag.as_deref().unwrap_or("");
            words_match(&words, &[&p.name, &p.department, badge])
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

/// Approve a person's departure today: refused while they hold any carrier (清退 first);
/// otherwise `departed`, with the decommissioning period (脱密期) of the configuration. The
/// person as now.
///
/// Every account linked to the person is disabled in the same transaction (each with its
/// own `user.disable` entry naming the departure), and their sessions and live streams end
/// at once: a departed person's token and password stop working with the departure, not
/// when an administrator remembers to act.
pub async fn depart(
    app: &AppState,
    cap: &SecurityOfficerCap,
    id: PersonId,
) -> Result<Person, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let policy = app.settings().decommissioning;
    let at = app.now();
    let (person, ended) = app
        .store()
        .transact(move |tx| depart_in(tx, &actor, id, &policy, at))
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
    at: Timestamp,
) -> Result<(Person, Vec<[u8; 32]>), ServiceError> {
    let before = tx.person(id)?;
    let held = tx.carriers_held(id)?;
    let ends_on = person::depart(before.status, before.category, held, at.date(), policy)?;
    tx.set_departed(id, ends_on)?;
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "person.depart",
        subject: format!("person:{id}"),
        before: Some(json!({"status": before.status})),
        after: Some(json!({
            "status": PersonStatus::Departed,
            "approved_on": at.date(),
            "decommissioning_ends_on": ends_on,
        })),
    })?;
    let ended = super::accounts::disable_accounts_of_person_in(tx, actor, id, at)?;
    Ok((tx.person(id)?, ended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::person::{Category, StatusChangeError};
    use crate::store::PeopleRows;
    use crate::store::test_support::{MemoryDb, T0, t};

    const POLICY: DecommissioningPolicy = DecommissioningPolicy {
        core_years: 3,
        important_years: 2,
        general_years: 1,
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
    fn leaving_then_departing_while_holding_a_carrier_is_refused_and_writes_nothing() {
        let db = MemoryDb::custody(t(T0));
        let id = PersonId(1);
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
        let policy = POLICY;
        assert!(matches!(
            depart_in(&mut db.tx(), "so1", id, &policy, t(T0)),
            Err(ServiceError::StatusChange(
                StatusChangeError::CarriersOutstanding { held: 1 }
            ))
        ));
        assert_eq!(db.audit().len(), before);
        assert_eq!(db.tx().person(id).unwrap().status, PersonStatus::Leaving);
    }

    #[test]
    fn a_departure_sets_the_decommissioning_period() {
        let db = MemoryDb::custody(t(T0));
        let policy = POLICY;
        let (gone, _) = depart_in(&mut db.tx(), "so1", PersonId(1), &policy, t(T0)).unwrap();
        assert_eq!(gone.status, PersonStatus::Departed);
        assert!(gone.decommissioning_ends_on.unwrap() > t(T0).date());
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.action, "person.depart");
        assert!(matches!(
            leave_in(&mut db.tx(), "so1", PersonId(99), t(T0)),
            Err(ServiceError::NotFound)
        ));
    }
}
