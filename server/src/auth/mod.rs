//! Authentication and authorisation: passwords, sessions, and capability types.
//!
//! - [`password`]: Argon2id hashes, computed on blocking threads.
//! - [`token`]: random session and CSRF tokens; only their SHA-256 is stored.
//! - [`authenticate`]: a presented session token to an [`Authenticated`] caller.
//! - [`capability`]: `AdminCap`, `SecurityOfficerCap`, ... that exist only after a role check;
//!   use cases demand one, so a handler that forgets the check does not compile.
//!
//! Nothing here knows HTTP: `api::auth` reads the headers.
//!
//! Passwords and tokens are never logged and never written to the audit trail.

pub mod capability;
pub mod password;
pub mod throttle;
pub mod token;

use serde::Deserialize;

use crate::AppState;
use crate::domain::ids::{NameError, PersonId, UserId};
use crate::domain::role::{Role, RoleError, Roles};
use crate::domain::time::Timestamp;
use crate::domain::user::{PasswordPolicyError, check_password, is_valid_username};
use crate::store::users::NewUser;
use crate::store::{Store, StoreError};
use capability::AdminCap;

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
    Ok(store.session(token_hash, now).await?.map(|s| LiveSession {
        caller: Authenticated {
            user_id: s.user_id,
            username: s.username,
            roles: s.roles,
            token_hash,
        },
        csrf: s.csrf,
    }))
}

/// Failures of account and session operations.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled account (deliberately not distinguished).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The username breaks the alphabet or length rule.
    #[error("invalid username: {0}")]
    InvalidUsername(NameError),
    /// The roles break the separation-of-duties rule.
    #[error(transparent)]
    Roles(#[from] RoleError),
    /// The password breaks the policy.
    #[error(transparent)]
    PasswordPolicy(#[from] PasswordPolicyError),
    /// Storage failed (or refused: duplicate, unknown person).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] token::RandomError),
    /// A blocking task was lost.
    #[error("hashing task failed")]
    Task,
    /// Too many failed sign-ins for this username: refused without a password check.
    #[error("too many failed sign-ins; try again in {} s", .0.retry_after_secs)]
    Blocked(throttle::Blocked),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AuthError::Task)
}

/// A request to create an account (`POST /users`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// Initial password (checked against the policy, then hashed; never stored or logged).
    pub password: String,
    /// Roles; admin, security_officer and auditor exclude one another.
    pub roles: Vec<Role>,
    /// The person on the register this account belongs to.
    #[serde(default)]
    pub person_id: Option<PersonId>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("roles", &self.roles)
            .field("person_id", &self.person_id)
            .finish()
    }
}

/// Validate, hash (on a blocking thread) and store a new account, with its audit entry.
pub async fn create_user(
    store: &Store,
    cap: &AdminCap,
    request: CreateUser,
    now: Timestamp,
) -> Result<UserId, AuthError> {
    if !is_valid_username(&request.username) {
        return Err(AuthError::InvalidUsername(NameError));
    }
    let roles = Roles::new(&request.roles)?;
    check_password(&request.password)?;
    let password = request.password;
    let password_hash = blocking(move || password::hash(&password)).await??;
    let user = NewUser {
        username: request.username,
        password_hash,
        roles,
        person_id: request.person_id,
    };
    Ok(store.create_user(cap, user, now).await?)
}

/// A new session as handed to the client.
pub struct NewSessionGrant {
    /// The bearer token (shown once, never stored).
    pub token: String,
    /// The CSRF token for cookie-authenticated requests.
    pub csrf: String,
    /// The account's roles.
    pub roles: Roles,
    /// When the session ends.
    pub expires_at: Timestamp,
}

/// Check the password and open a session.
pub async fn login(
    state: &AppState,
    username: String,
    password: String,
) -> Result<NewSessionGrant, AuthError> {
    // Counted per account name as the store matches it (case-insensitively). A name that is
    // not a valid username can match no account, so guessing under it is not counted.
    let throttle_key = is_valid_username(&username).then(|| username.to_ascii_lowercase());
    let block_if_wrong = match &throttle_key {
        Some(key) => state
            .login_throttle(|t| t.attempt(key, state.now()))
            .map_err(|blocked| {
                tracing::info!(
                    %username,
                    retry_after_secs = blocked.retry_after_secs,
                    "login refused: username blocked"
                );
                AuthError::Blocked(blocked)
            })?,
        None => None,
    };
    let credentials = state.store().credentials(username.clone()).await?;
    let (user, phc) = match credentials {
        Some(c) if !c.disabled => {
            let phc = c.password_hash.clone();
            (Some(c), phc)
        }
        _ => (None, password::decoy()?.to_owned()),
    };
    let matches = blocking(move || password::verify(&password, &phc)).await??;
    let user = match user {
        Some(user) if matches => user,
        _ => {
            match block_if_wrong {
                Some(b) => tracing::warn!(
                    %username,
                    blocked_secs = b.retry_after_secs,
                    "login refused; repeated failures: username blocked"
                ),
                None => tracing::info!("login refused"),
            }
            return Err(AuthError::InvalidCredentials);
        }
    };
    if let Some(key) = &throttle_key {
        state.login_throttle(|t| t.succeeded(key));
    }
    let token = token::generate()?;
    let csrf = token::generate()?;
    let now = state.now();
    let ttl = i64::try_from(state.settings().session_ttl_secs).unwrap_or(i64::MAX);
    let expires_at = now.plus_secs(ttl);
    state
        .store()
        .create_session(crate::store::sessions::NewSession {
            user_id: user.id,
            actor: Actor::user(&user.username),
            token_hash: token::hash(&token),
            csrf: csrf.clone(),
            created_at: now,
            expires_at,
        })
        .await?;
    tracing::info!(user = %user.id, "session opened");
    Ok(NewSessionGrant {
        token,
        csrf,
        roles: user.roles,
        expires_at,
    })
}
