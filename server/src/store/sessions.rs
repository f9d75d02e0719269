//! Login sessions: what the session use cases ([`crate::service::accounts`]) and
//! [`crate::auth::authenticate`] read and write. Only SHA-256 of a token is stored; see
//! `auth::token`.
//!
//! Plain types and one trait, [`SessionRows`]; the SQLite implementation is in
//! [`super::sqlite`].

use super::StoreError;
use crate::domain::ids::UserId;
use crate::domain::role::Roles;
use crate::domain::time::Timestamp;

/// A session to open.
pub struct NewSession {
    /// The account.
    pub user_id: UserId,
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
    /// When the session ends.
    pub expires_at: Timestamp,
    /// The account must set its own password before anything else.
    pub must_change_password: bool,
}

/// A live session as the administrator sees it (never its token or CSRF secret).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// A handle for the session: the first 16 hex digits of the SHA-256 of its token (the
    /// token cannot be recovered from it).
    pub id: String,
    /// Opened at.
    pub created_at: Timestamp,
    /// Ends at.
    pub expires_at: Timestamp,
}

/// Reading and writing sessions.
pub trait SessionRows {
    /// The live session for a token hash at `now`: not expired, account not disabled.
    fn session(
        &mut self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Forget the sessions expired at `now`.
    fn delete_expired_sessions(&mut self, now: Timestamp) -> Result<(), StoreError>;
    /// Write a new session.
    fn insert_session(&mut self, session: &NewSession) -> Result<(), StoreError>;
    /// Delete the session of a token hash; whether there was one.
    fn delete_session(&mut self, token_hash: &[u8; 32]) -> Result<bool, StoreError>;
    /// The live sessions of an account at `now`, oldest first.
    fn sessions_of(&mut self, user: UserId, now: Timestamp)
    -> Result<Vec<SessionInfo>, StoreError>;
    /// Delete every session of an account but `keep` (if given); the token hashes of those
    /// deleted.
    fn delete_sessions_of(
        &mut self,
        user: UserId,
        keep: Option<&[u8; 32]>,
    ) -> Result<Vec<[u8; 32]>, StoreError>;
}
