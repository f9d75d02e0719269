//! [`UserRows`] over SQLite.

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteTx;
use crate::domain::ids::UserId;
use crate::domain::time::Timestamp;
use crate::store::users::{Credentials, NewUser, User, UserRows};
use crate::store::{StoreError, constraint};

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        roles: r.get(2)?,
        person_id: r.get(3)?,
        created_at: r.get(4)?,
        disabled: r.get(5)?,
    })
}

impl UserRows for SqliteTx<'_> {
    fn insert_user(&mut self, user: &NewUser, at: Timestamp) -> Result<UserId, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT INTO users (username, password_hash, roles, person_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            user.username,
            user.password_hash,
            user.roles,
            user.person_id,
            at
        ])
        .map_err(|e| constraint(e, "username", "person"))?;
        Ok(UserId(conn.last_insert_rowid()))
    }

    fn users(&mut self) -> Result<Vec<User>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT id, username, roles, person_id, created_at, disabled FROM users ORDER BY id",
        )?;
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
}
