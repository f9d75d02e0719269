//! Authentication and authorisation: passwords, sessions, and capability types.
//!
//! - [`password`]: Argon2id hashes, computed on blocking threads.
//! - [`token`]: random session and CSRF tokens; only their SHA-256 is stored.
//! - [`authenticate`]: a presented session token to an [`Authenticated`] caller.
//! - [`throttle`]: failed sign-ins counted per username.
//! - [`capability`]: `AdminCap`, `SecurityOfficerCap`, ... that exist only after a role check;
//!   use cases demand one, so a handler that forgets the check does not compile.
//!
//! Nothing here knows HTTP (`api::auth` reads the headers) or the application: creating an
//! account and logging in are use cases, in `service::accounts`.
//!
//! Passwords and tokens are never logged and never written to the audit trail.

pub mod capability;
pub mod password;
pub mod throttle;
pub mod token;

use crate::domain::ids::UserId;
use crate::domain::role::Roles;
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError};

/// Who did something, as written in the audit trail: a username, or `@name` for the system
/// itself (`@` cannot start a username).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub(crate) fn user(username: &str) -> Actor {
        Actor(username.to_owned())
    }

    pub(crate) fn system(name: &'static str) -> Actor {
        Actor(format!("@{name}"))
    }

    /// The audit name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// A caller with a live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    user_id: UserId,
    username: String,
    roles: Roles,
    token_hash: [u8; 32],
    expires_at: Timestamp,
    must_change_password: bool,
}

impl Authenticated {
    /// The account.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The login name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The account's roles.
    pub fn roles(&self) -> Roles {
        self.roles
    }

    /// The caller as an audit actor.
    pub fn actor(&self) -> Actor {
        Actor::user(&self.username)
    }

    /// SHA-256 of the session token (identifies the session to end at logout).
    pub fn token_hash(&self) -> [u8; 32] {
        self.token_hash
    }

    /// When the session ends.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether the account must set its own password before anything else: until it does,
    /// no capability is granted (see [`capability::Capability::grant`]), so an account whose
    /// password an administrator chose cannot act before its holder has replaced it.
    pub fn must_change_password(&self) -> bool {
        self.must_change_password
    }
}

/// A live session: its caller, and the CSRF secret a cookie-authenticated change must echo.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// Who.
    pub caller: Authenticated,
    /// The session's CSRF secret.
    pub csrf: String,
}

/// The live session of a presented token (`None`: unknown, expired, or the account disabled).
pub async fn authenticate(
    store: &Store,
    token: &str,
    now: Timestamp,
) -> Result<Option<LiveSession>, StoreError> {
    let token_hash = token::hash(token);
    let record = store.query(move |tx| tx.session(&token_hash, now)).await?;
    Ok(record.map(|s| LiveSession {
        caller: Authenticated {
            user_id: s.user_id,
            username: s.username,
            roles: s.roles,
            token_hash,
            expires_at: s.expires_at,
            must_change_password: s.must_change_password,
        },
        csrf: s.csrf,
    }))
}

/// Failures of the password and token machinery (never a refusal: those are the use cases').
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Hashing failed.
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] token::RandomError),
    /// A blocking task was lost.
    #[error("hashing task failed")]
    Task,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AuthError::Task)
}

/// Hash a password with Argon2id on a blocking thread (the work is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    Ok(blocking(move || password::hash(&password)).await??)
}

/// Whether `password` matches the PHC string `phc`, checked on a blocking thread. With no
/// account to check against, pass [`password::decoy`] so that the answer takes as long.
pub async fn verify_password(password: String, phc: String) -> Result<bool, AuthError> {
    Ok(blocking(move || password::verify(&password, &phc)).await??)
}
