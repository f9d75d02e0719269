//! [`PeopleRows`] over SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::domain::ids::PersonId;
use crate::domain::person::PersonStatus;
use crate::domain::time::{Date, Timestamp};
use crate::store::people::{NewPerson, PeopleRows, Person};
use crate::store::{StoreError, constraint};

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

impl PeopleRows for SqliteTx<'_> {
    fn person(&mut self, id: PersonId) -> Result<Person, StoreError> {
        self.conn()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM people WHERE id = ?1"))?
            .query_row([id], person_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn people(&mut self) -> Result<Vec<Person>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM people ORDER BY id"))?;
        let rows = stmt.query_map([], person_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn insert_person(
        &mut self,
        person: &NewPerson,
        status: PersonStatus,
        at: Timestamp,
    ) -> Result<PersonId, StoreError> {
        let conn = self.conn();
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
        Ok(PersonId(conn.last_insert_rowid()))
    }

    fn set_leaving(
        &mut self,
        id: PersonId,
        status: PersonStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE people SET status = ?2, leaving_since = ?3 WHERE id = ?1")?
            .execute(params![id, status, at])?;
        Ok(())
    }

    fn set_departed(&mut self, id: PersonId, ends_on: Date) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE people SET status = ?2, decommissioning_ends_on = ?3 WHERE id = ?1",
            )?
            .execute(params![id, PersonStatus::Departed, ends_on])?;
        Ok(())
    }

    fn carriers_held(&mut self, id: PersonId) -> Result<u32, StoreError> {
        let held: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM carriers WHERE holder = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }
}
