//! The register of people (涉密人员).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::capability::{PeopleReaderCap, SecurityOfficerCap};
use crate::domain::ids::PersonId;
use crate::domain::person::{Category, PersonStatus};
use crate::domain::time::{Date, Timestamp};

/// A person to register (`POST /people`). New people are `active`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Registered at.
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, name, department, category, badge_tag, training_valid_until, \
                       commitment_signed_on, status, created_at";

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
        created_at: r.get(8)?,
    })
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
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM people WHERE id = ?1"))?
                .query_row([id], person_row)
                .optional()?
                .ok_or(StoreError::NotFound)
        })
        .await
    }
}
