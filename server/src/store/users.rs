//! User accounts: what the account use cases ([`crate::service::accounts`]) read and write.
//!
//! Plain types and one trait, [`UserRows`]; the SQLite implementation is in
//! [`super::sqlite`]. A password hash never leaves through [`User`].

use serde::Serialize;

use super::StoreError;
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

/// Reading and writing accounts.
pub trait UserRows {
    /// Write a new account; its id. A taken username (in any case) is
    /// `Duplicate { what: "username" }`, an unknown person `UnknownReference`.
    fn insert_user(&mut self, user: &NewUser, at: Timestamp) -> Result<UserId, StoreError>;
    /// Every account, by id.
    fn users(&mut self) -> Result<Vec<User>, StoreError>;
    /// Login data for `username` (case-insensitive).
    fn credentials(&mut self, username: &str) -> Result<Option<Credentials>, StoreError>;
}
