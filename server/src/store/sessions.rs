//! Login sessions. Only SHA-256 of a token is stored; see `auth::token`.
//!
//! Opening and ending a session are audited. Expired sessions are swept at the next login
//! without an entry of their own: their end is already recorded as `expires_at` in the
//! `session.create` entry.

use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::{Store, StoreError};
use crate::audit::{self, NewEntry};
use crate::auth::Actor;
use crate::auth::Authenticated;
use crate::domain::ids::UserId;
use crate::domain::role::Roles;
use crate::domain::time::Timestamp;

/// A session to open.
pub struct NewSession {
    /// The account.
    pub user_id: UserId,
    /// The account as audit actor.
    pub actor: Actor,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// CSRF token for cookie-authenticated requests.
    pub csrf: String,
    /// Opened at.
    pub created_at: Timestamp,
    /// Ends at.
    pub expires_at: Timestamp,
}

/// A live session joined with its account.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The account.
    pub user_id: UserId,
    /// Login name.
    pub username: String,
    /// Roles (read at every request, so a role change applies at once).
    pub roles: Roles,
    /// CSRF token.
    pub csrf: String,
}

impl Store {
    /// Open a session (and forget expired ones), with its audit entry.
    pub async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
                .execute([session.created_at.unix()])?;
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &session.token_hash[..],
                session.user_id,
                session.csrf,
                session.created_at,
                session.expires_at.unix()
            ])?;
            audit::append(
                c,
                &NewEntry {
                    at: session.created_at,
                    actor: session.actor.name().to_owned(),
                    action: "session.create",
                    subject: format!("user:{}", session.user_id),
                    before: None,
                    after: Some(json!({ "expires_at": session.expires_at })),
                },
            )?;
            Ok(())
        })
        .await
    }

    /// The live session for a token hash at `now`: not expired, account not disabled.
    pub async fn session(
        &self,
        token_hash: [u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT u.id, u.username, u.roles, s.csrf
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
            )?
            .query_row(params![&token_hash[..], now.unix()], |r| {
                Ok(SessionRecord {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    roles: r.get(2)?,
                    csrf: r.get(3)?,
                })
            })
            .optional()?)
        })
        .await
    }

    /// End the caller's session, with its audit entry.
    pub async fn delete_session(
        &self,
        caller: &Authenticated,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let token_hash = caller.token_hash();
        let actor = caller.actor();
        let user_id = caller.user_id();
        self.write(move |c| {
            let deleted = c
                .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
                .execute([&token_hash[..]])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            audit::append(
                c,
                &NewEntry {
                    at,
                    actor: actor.name().to_owned(),
                    action: "session.delete",
                    subject: format!("user:{user_id}"),
                    before: None,
                    after: None,
                },
            )?;
            Ok(())
        })
        .await
    }
}
