//! User accounts.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

use super::{Store, StoreError, constraint};
use crate::audit::{self, NewEntry};
use crate::auth::capability::AdminCap;
use crate::domain::ids::{PersonId, UserId};
use crate::domain::role::Roles;
use crate::domain::time::Timestamp;

/// An account as listed (never with its password hash).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Roles.
    pub roles: Roles,
    /// Linked person.
    pub person_id: Option<PersonId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Whether login is refused.
    pub disabled: bool,
}

/// A validated account to insert.
#[derive(Clone)]
pub struct NewUser {
    /// Login name (validated).
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Validated roles.
    pub roles: Roles,
    /// Linked person.
    pub person_id: Option<PersonId>,
}

/// What login needs to know about an account.
#[derive(Clone)]
pub struct Credentials {
    /// Id.
    pub id: UserId,
    /// Login name as stored.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Roles.
    pub roles: Roles,
    /// Whether login is refused.
    pub disabled: bool,
}

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

fn insert(
    conn: &Connection,
    actor: &str,
    user: &NewUser,
    at: Timestamp,
) -> Result<UserId, StoreError> {
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
    let id = UserId(conn.last_insert_rowid());
    audit::append(
        conn,
        &NewEntry {
            at,
            actor: actor.to_owned(),
            action: "user.create",
            subject: format!("user:{id}"),
            before: None,
            after: Some(json!({
                "id": id,
                "username": user.username,
                "roles": user.roles,
                "person_id": user.person_id,
            })),
        },
    )?;
    Ok(id)
}

impl Store {
    /// Insert an account and its audit entry.
    pub async fn create_user(
        &self,
        cap: &AdminCap,
        user: NewUser,
        at: Timestamp,
    ) -> Result<UserId, StoreError> {
        let actor = cap.actor().name().to_owned();
        self.write(move |c| insert(c, &actor, &user, at)).await
    }

    /// Every account, by id.
    pub async fn users(&self, _cap: &AdminCap) -> Result<Vec<User>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, username, roles, person_id, created_at, disabled FROM users ORDER BY id",
            )?;
            let rows = stmt.query_map([], user_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Number of accounts.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?))
            .await
    }

    /// Login data for `username` (case-insensitive).
    pub async fn credentials(&self, username: String) -> Result<Option<Credentials>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
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
        })
        .await
    }
}
