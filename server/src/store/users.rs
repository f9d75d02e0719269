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
    /// Whether the account must set its own password before anything else (new, or reset by
    /// an administrator).
    pub must_change_password: bool,
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
    /// Must set its own password at the first sign-in (every account an administrator
    /// creates; not the first administrator, who chose theirs at `init`).
    pub must_change_password: bool,
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
    /// One account; `NotFound` if there is none.
    fn user(&mut self, id: UserId) -> Result<User, StoreError>;
    /// The stored password hash of an account; `NotFound` if there is none.
    fn password_hash(&mut self, id: UserId) -> Result<String, StoreError>;
    /// Disable or enable an account; `NotFound` if there is none.
    fn set_disabled(&mut self, id: UserId, disabled: bool) -> Result<(), StoreError>;
    /// Replace an account's password hash and whether it must be changed at the next
    /// sign-in; `NotFound` if there is none.
    fn set_password(
        &mut self,
        id: UserId,
        password_hash: &str,
        must_change: bool,
    ) -> Result<(), StoreError>;
    /// The accounts linked to person `id`, by id.
    fn users_of_person(&mut self, id: PersonId) -> Result<Vec<User>, StoreError>;
}
