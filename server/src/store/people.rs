//! The register of people (涉密人员).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::capability::{PeopleReaderCap, SecurityOfficerCap};
use crate::domain::ids::PersonId;
use crate::domain::person::{
    self, Category, DecommissioningPolicy, PersonStatus, StatusChangeError,
};
use crate::domain::time::{Date, Timestamp};

/// A person to register (`POST /people`). New people are `active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// Full name.
    pub name: String,
    /// Department or unit.
    pub department: String,
    /// Category, which bounds the level they may hold.
    pub category: Category,
    /// Badge tag read at gates, if issued.
    #[serde(default)]
    pub badge_tag: Option<String>,
    /// Last day the secrecy training is valid.
    #[serde(default)]
    pub training_valid_until: Option<Date>,
    /// Day the confidentiality commitment was signed.
    #[serde(default)]
    pub commitment_signed_on: Option<Date>,
}

/// A person as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Person {
    /// Id.
    pub id: PersonId,
    /// Full name.
    pub name: String,
    /// Department or unit.
    pub department: String,
    /// Category.
    pub category: Category,
    /// Badge tag.
    pub badge_tag: Option<String>,
    /// Training validity.
    pub training_valid_until: Option<Date>,
    /// Commitment date.
    pub commitment_signed_on: Option<Date>,
    /// Status.
    pub status: PersonStatus,
    /// When the person started leaving (离岗/离职), if they have.
    pub leaving_since: Option<Timestamp>,
    /// Last day of the decommissioning period (脱密期), once departed.
    pub decommissioning_ends_on: Option<Date>,
    /// Registered at.
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, name, department, category, badge_tag, training_valid_until, \
                       commitment_signed_on, status, created_at, leaving_since, \
                       decommissioning_ends_on";

fn person_row(r: &Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: r.get(0)?,
        name: r.get(1)?,
        department: r.get(2)?,
        category: r.get(3)?,
        badge_tag: r.get(4)?,
        training_valid_until: r.get(5)?,
        commitment_signed_on: r.get(6)?,
        status: r.get(7)?,
        leaving_since: r.get(9)?,
        decommissioning_ends_on: r.get(10)?,
        created_at: r.get(8)?,
    })
}

fn one(conn: &Connection, id: PersonId) -> Result<Person, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM people WHERE id = ?1"))?
        .query_row([id], person_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

type StatusChange = Result<Result<Person, StatusChangeError>, StoreError>;

fn leave(conn: &Connection, actor: &str, id: PersonId, at: Timestamp) -> StatusChange {
    let before = one(conn, id)?;
    let status = match person::leave(before.status) {
        Ok(status) => status,
        Err(rule) => return Ok(Err(rule)),
    };
    conn.prepare_cached("UPDATE people SET status = ?2, leaving_since = ?3 WHERE id = ?1")?
        .execute(params![id, status, at])?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "person.leave",
            subject: format!("person:{id}"),
            before: Some(serde_json::json!({"status": before.status})),
            after: Some(serde_json::json!({"status": status, "leaving_since": at})),
        },
    )?;
    one(conn, id).map(Ok)
}

fn depart(
    conn: &Connection,
    actor: &str,
    id: PersonId,
    policy: &DecommissioningPolicy,
    at: Timestamp,
) -> StatusChange {
    let before = one(conn, id)?;
    let held: i64 = conn
        .prepare_cached("SELECT count(*) FROM carriers WHERE holder = ?1")?
        .query_row([id], |r| r.get(0))?;
    let held = u32::try_from(held).unwrap_or(u32::MAX);
    let ends_on = match person::depart(before.status, before.category, held, at.date(), policy) {
        Ok(ends_on) => ends_on,
        Err(rule) => return Ok(Err(rule)),
    };
    let status = PersonStatus::Departed;
    conn.prepare_cached(
        "UPDATE people SET status = ?2, decommissioning_ends_on = ?3 WHERE id = ?1",
    )?
    .execute(params![id, status, ends_on])?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "person.depart",
            subject: format!("person:{id}"),
            before: Some(serde_json::json!({"status": before.status})),
            after: Some(serde_json::json!({
                "status": status,
                "approved_on": at.date(),
                "decommissioning_ends_on": ends_on,
            })),
        },
    )?;
    one(conn, id).map(Ok)
}

fn insert(
    conn: &Connection,
    actor: &str,
    person: &NewPerson,
    at: Timestamp,
) -> Result<PersonId, StoreError> {
    let status = PersonStatus::Active;
    conn.prepare_cached(
        "INSERT INTO people (name, department, category, badge_tag, training_valid_until,
                             commitment_signed_on, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        person.name,
        person.department,
        person.category,
        person.badge_tag,
        person.training_valid_until,
        person.commitment_signed_on,
        status,
        at
    ])
    .map_err(|e| constraint(e, "badge_tag", "person"))?;
    let id = PersonId(conn.last_insert_rowid());
    let mut after = serde_json::to_value(person)?;
    after["id"] = serde_json::to_value(id)?;
    after["status"] = serde_json::to_value(status)?;
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "person.create",
            subject: format!("person:{id}"),
            before: None,
            after: Some(after),
        },
    )?;
    Ok(id)
}

impl Store {
    /// Register a person, with the audit entry.
    pub async fn create_person(
        &self,
        cap: &SecurityOfficerCap,
        person: NewPerson,
        at: Timestamp,
    ) -> Result<PersonId, StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| insert(c, &actor, &person, at)).await
    }

    /// Everyone on the register, by id.
    pub async fn people(&self, _cap: &PeopleReaderCap) -> Result<Vec<Person>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM people ORDER BY id"))?;
            let rows = stmt.query_map([], person_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// One person.
    pub async fn person(&self, _cap: &PeopleReaderCap, id: PersonId) -> Result<Person, StoreError> {
        self.read(move |c| one(c, id)).await
    }

    /// A person starts leaving their post or the unit (离岗/离职): status `leaving`.
    pub async fn person_leaving(
        &self,
        cap: &SecurityOfficerCap,
        id: PersonId,
        at: Timestamp,
    ) -> StatusChange {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| leave(c, &actor, id, at)).await
    }

    /// Approve a person's departure on `at`'s date: refused while they hold any carrier;
    /// otherwise status `departed` and the decommissioning period (脱密期) set by `policy`.
    pub async fn person_departed(
        &self,
        cap: &SecurityOfficerCap,
        id: PersonId,
        policy: DecommissioningPolicy,
        at: Timestamp,
    ) -> StatusChange {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| depart(c, &actor, id, &policy, at))
            .await
    }
}
