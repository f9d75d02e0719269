//! [`UserRows`] over SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use super::constraint;
use crate::domain::ids::{PersonId, UserId};
use crate::domain::time::Timestamp;
use crate::store::StoreError;
use crate::store::users::{Credentials, NewUser, User, UserRows};

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        roles: r.get(2)?,
        person_id: r.get(3)?,
        created_at: r.get(4)?,
        disabled: r.get(5)?,
        must_change_password: r.get(6)?,
    })
}

const USER_COLUMNS: &str =
    "id, username, roles, person_id, created_at, disabled, must_change_password";

impl UserRows for SqliteTx<'_> {
    fn insert_user(&mut self, user: &NewUser, at: Timestamp) -> Result<UserId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO users
                 (username, password_hash, roles, person_id, created_at, must_change_password)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            user.username,
            user.password_hash,
            user.roles,
            user.person_id,
            at,
            user.must_change_password
        ])
        .map_err(|e| constraint(e, "username", "person"))?;
        Ok(UserId(conn.last_insert_rowid()))
    }

    fn users(&mut self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn credentials(&mut self, username: &str) -> Result<Option<Credentials>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT id, username, password_hash, roles, disabled FROM users WHERE username = ?1",
            )?
            .query_row([username], |r| {
                Ok(Credentials {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                    roles: r.get(3)?,
                    disabled: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn user(&mut self, id: UserId) -> Result<User, StoreError> {
        self.conn()
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([id], user_row)
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn password_hash(&mut self, id: UserId) -> Result<String, StoreError> {
        self.conn()
            .prepare_cached("SELECT password_hash FROM users WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)
    }

    fn set_disabled(&mut self, id: UserId, disabled: bool) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached("UPDATE users SET disabled = ?2 WHERE id = ?1")?
            .execute(params![id, disabled])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn set_password(
        &mut self,
        id: UserId,
        password_hash: &str,
        must_change: bool,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE users SET password_hash = ?2, must_change_password = ?3 WHERE id = ?1",
            )?
            .execute(params![id, password_hash, must_change])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn users_of_person(&mut self, id: PersonId) -> Result<Vec<User>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE person_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], user_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
