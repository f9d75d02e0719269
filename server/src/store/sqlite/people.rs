//! [`PeopleRows`] over SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use super::constraint;
use crate::domain::ids::PersonId;
use crate::domain::level::{Level, ZoneLevel};
use crate::domain::person::PersonStatus;
use crate::domain::time::{Date, Timestamp};
use crate::store::StoreError;
use crate::store::people::{
    HeldCarrier, NewPerson, PeopleRows, Person, PersonChange, PersonRecord,
};

const COLUMNS: &str = "id, name, department, category, badge_tag, training_valid_until, \
                       commitment_signed_on, status, created_at, leaving_since, \
                       decommissioning_ends_on, clearance, vetted_on, vetting_outcome, \
                       assessed_on, assessment_outcome, cleared_at, departed_on, \
                       decommissioning_months, decommissioning_lifelong";

/// A stored level code (`C`, `S`, `TS`) as a level.
fn level(code: Option<String>) -> rusqlite::Result<Option<Level>> {
    code.map(|c| match ZoneLevel::from_code(&c) {
        Some(ZoneLevel::Classified(l)) => Ok(l),
        _ => Err(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("not a level: {c}").into(),
        )),
    })
    .transpose()
}

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
        clearance: level(r.get(11)?)?,
        vetted_on: r.get(12)?,
        vetting_outcome: r.get(13)?,
        assessed_on: r.get(14)?,
        assessment_outcome: r.get(15)?,
        cleared_at: r.get(16)?,
        departed_on: r.get(17)?,
        decommissioning_months: r.get(18)?,
        decommissioning_lifelong: r.get(19)?,
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

    fn set_departed(
        &mut self,
        id: PersonId,
        on: Date,
        months: Option<u32>,
        ends_on: Option<Date>,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE people SET status = ?2, departed_on = ?3, decommissioning_months = ?4,
                        decommissioning_ends_on = ?5, decommissioning_lifelong = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                PersonStatus::Departed,
                on,
                months,
                ends_on,
                months.is_none()
            ])?;
        Ok(())
    }

    fn set_cleared(&mut self, id: PersonId, at: Timestamp) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("UPDATE people SET cleared_at = ?2 WHERE id = ?1")?
            .execute(params![id, at])?;
        Ok(())
    }

    fn update_person(&mut self, id: PersonId, r: &PersonRecord) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE people SET name = ?2, department = ?3, category = ?4, clearance = ?5,
                        badge_tag = ?6, training_valid_until = ?7, commitment_signed_on = ?8,
                        vetted_on = ?9, vetting_outcome = ?10, assessed_on = ?11,
                        assessment_outcome = ?12
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                r.name,
                r.department,
                r.category,
                r.clearance.map(Level::code),
                r.badge_tag,
                r.training_valid_until,
                r.commitment_signed_on,
                r.vetted_on,
                r.vetting_outcome,
                r.assessed_on,
                r.assessment_outcome
            ])
            .map_err(|e| constraint(e, "badge_tag", "person"))?;
        Ok(())
    }

    fn insert_person_change(
        &mut self,
        id: PersonId,
        change: &PersonChange,
    ) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO person_changes (person_id, at, actor, reason, before_json, after_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                id,
                change.at,
                change.actor,
                change.reason,
                change.before.to_string(),
                change.after.to_string()
            ])?;
        Ok(())
    }

    fn person_changes(&mut self, id: PersonId) -> Result<Vec<PersonChange>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT at, actor, reason, before_json, after_json FROM person_changes
             WHERE person_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
                let text: String = r.get(i)?;
                serde_json::from_str(&text).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })
            };
            Ok(PersonChange {
                at: r.get(0)?,
                actor: r.get(1)?,
                reason: r.get(2)?,
                before: json(3)?,
                after: json(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn held_carriers(&mut self, id: PersonId) -> Result<Vec<HeldCarrier>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT c.id, c.control_no, c.level,
                    (SELECT s.id FROM signout_carriers sc JOIN signouts s ON s.id = sc.signout_id
                     WHERE sc.carrier_id = c.id AND sc.returned_at_ms IS NULL AND s.state = 'out'
                       AND s.borrower = ?1
                     ORDER BY s.id DESC LIMIT 1)
             FROM carriers c WHERE c.holder = ?1 ORDER BY c.control_no",
        )?;
        let rows = stmt.query_map([id], |r| {
            let code: String = r.get(2)?;
            Ok(HeldCarrier {
                id: r.get(0)?,
                control_no: r.get(1)?,
                level: level(Some(code))?.unwrap_or(Level::TopSecret),
                signout_id: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn holders(&mut self) -> Result<Vec<(PersonId, u32)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT p.id, count(c.id) FROM people p JOIN carriers c ON c.holder = p.id
             WHERE p.status != 'departed' GROUP BY p.id ORDER BY p.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let n: i64 = r.get(1)?;
            Ok((r.get(0)?, u32::try_from(n).unwrap_or(u32::MAX)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn carriers_held(&mut self, id: PersonId) -> Result<u32, StoreError> {
        let held: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM carriers WHERE holder = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }
}
