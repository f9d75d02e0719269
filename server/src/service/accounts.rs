//! Accounts and sessions: creating an account, the account list, logging in and out.
//!
//! A new account is checked here once ([`check_new_user`]: username, roles, password); the
//! API, the administrator's form and `init` call the same functions. Passwords are hashed and
//! verified by [`crate::auth`] on blocking threads; they are never logged or audited.
//!
//! # Logging in
//! Failed sign-ins are counted per source address and per username
//! ([`crate::auth::throttle`]); a blocked source or username is refused before any password
//! check. A name that is not a valid username cannot exist, so it is refused at once, without
//! hashing (it still counts against its source). An unknown or disabled account with a valid
//! name is checked against a decoy hash, so the answer takes as long and says the same as a
//! wrong password. The hashing itself waits for a slot of [`crate::auth::HashGate`] (busy: 503).
//! Opening a session forgets expired ones and writes `session.create` in the same transaction.

use serde::Deserialize;
use serde_json::json;

use super::ServiceError;
use crate::AppState;
use crate::audit::NewEntry;
use crate::auth::capability::AdminCap;
use crate::auth::{self, Authenticated, password, throttle, token};
use crate::domain::ids::{PersonId, UserId};
use crate::domain::role::{Role, Roles};
use crate::domain::time::Timestamp;
use crate::domain::user::{check_new_account, is_valid_username};
use crate::store::Tx;
use crate::store::sessions::NewSession;
use crate::store::users::{NewUser, User};

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

/// Check a new account: every problem ([`ServiceError::Account`], in the order username,
/// roles, password); with none, the roles as a set.
pub fn check_new_user(
    username: &str,
    password: &str,
    roles: &[Role],
) -> Result<Roles, ServiceError> {
    check_new_account(username, password, roles).map_err(ServiceError::Account)
}

/// Check, hash (on a blocking thread) and store a new account, with its audit entry. A taken
/// username is [`ServiceError::Duplicate`], an unknown person
/// [`ServiceError::UnknownReference`].
pub async fn create_user(
    app: &AppState,
    cap: &AdminCap,
    request: CreateUser,
) -> Result<UserId, ServiceError> {
    let roles = check_new_user(&request.username, &request.password, &request.roles)?;
    let password_hash = auth::hash_password(request.password).await?;
    let user = NewUser {
        username: request.username,
        password_hash,
        roles,
        person_id: request.person_id,
    };
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| create_user_in(tx, &actor, &user, at))
        .await
}

fn create_user_in(
    tx: &mut dyn Tx,
    actor: &str,
    user: &NewUser,
    at: Timestamp,
) -> Result<UserId, ServiceError> {
    let id = tx.insert_user(user, at)?;
    tx.append_audit(&NewEntry {
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
    })?;
    Ok(id)
}

/// Every account, by id, without password hashes.
pub async fn users(app: &AppState, _cap: &AdminCap) -> Result<Vec<User>, ServiceError> {
    app.store().query(|tx| Ok(tx.users()?)).await
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

/// Check the password and open a session for a client at `source` (its address as the
/// server trusts it; `None` when unknown, e.g. in-process callers). Refusals:
/// [`ServiceError::LoginBlocked`] (too many failures from the source or for the username, no
/// password check), [`ServiceError::InvalidCredentials`], and busy hashing
/// ([`auth::AuthError::Busy`] inside [`ServiceError::Auth`]).
pub async fn login(
    app: &AppState,
    source: Option<std::net::IpAddr>,
    username: String,
    password: String,
) -> Result<NewSessionGrant, ServiceError> {
    let source_key = source.map(throttle::source_key);
    if let Some(key) = &source_key {
        app.source_throttle(|t| t.attempt(key, app.now()))
            .map_err(|blocked| {
                tracing::info!(
                    retry_after_secs = blocked.retry_after_secs,
                    "login refused: source address blocked"
                );
                ServiceError::LoginBlocked(blocked)
            })?;
    }
    // A name that is not a valid username can match no account: refused without hashing
    // (nothing to hide: no such account can exist).
    if !is_valid_username(&username) {
        tracing::info!("login refused: malformed username");
        return Err(ServiceError::InvalidCredentials);
    }
    // Counted per account name as the store matches it (case-insensitively).
    let throttle_key = username.to_ascii_lowercase();
    let block_if_wrong = app
        .login_throttle(|t| t.attempt(&throttle_key, app.now()))
        .map_err(|blocked| {
            tracing::info!(
                %username,
                retry_after_secs = blocked.retry_after_secs,
                "login refused: username blocked"
            );
            ServiceError::LoginBlocked(blocked)
        })?;
    let name = username.clone();
    let credentials = app
        .store()
        .query(move |tx| Ok::<_, ServiceError>(tx.credentials(&name)?))
        .await?;
    let (user, phc) = match credentials {
        Some(c) if !c.disabled => {
            let phc = c.password_hash.clone();
            (Some(c), phc)
        }
        _ => (
            None,
            password::decoy().map_err(auth::AuthError::from)?.to_owned(),
        ),
    };
    let matches = match auth::verify_password(password, phc).await {
        Ok(matches) => matches,
        Err(busy @ auth::AuthError::Busy { .. }) => {
            // Not a guess: no password was checked, so neither count keeps the attempt.
            app.login_throttle(|t| t.taken_back(&throttle_key));
            if let Some(key) = &source_key {
                app.source_throttle(|t| t.taken_back(key));
            }
            tracing::warn!("login refused: every hashing slot busy");
            return Err(busy.into());
        }
        Err(e) => return Err(e.into()),
    };
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
            return Err(ServiceError::InvalidCredentials);
        }
    };
    app.login_throttle(|t| t.succeeded(&throttle_key));
    if let Some(key) = &source_key {
        app.source_throttle(|t| t.taken_back(key));
    }
    let token = token::generate().map_err(auth::AuthError::from)?;
    let csrf = token::generate().map_err(auth::AuthError::from)?;
    let now = app.now();
    let ttl = i64::try_from(app.settings().session_ttl_secs).unwrap_or(i64::MAX);
    let session = NewSession {
        user_id: user.id,
        token_hash: token::hash(&token),
        csrf: csrf.clone(),
        created_at: now,
        expires_at: now.plus_secs(ttl),
    };
    let username = user.username;
    let expires_at = session.expires_at;
    app.store()
        .transact(move |tx| open_session_in(tx, &username, &session))
        .await?;
    tracing::info!(user = %user.id, "session opened");
    Ok(NewSessionGrant {
        token,
        csrf,
        roles: user.roles,
        expires_at,
    })
}

/// Open `session` (and forget expired ones), with its audit entry: its end is recorded there,
/// so an expired session is swept without an entry of its own.
fn open_session_in(
    tx: &mut dyn Tx,
    username: &str,
    session: &NewSession,
) -> Result<(), ServiceError> {
    tx.delete_expired_sessions(session.created_at)?;
    tx.insert_session(session)?;
    tx.append_audit(&NewEntry {
        at: session.created_at,
        actor: username.to_owned(),
        action: "session.create",
        subject: format!("user:{}", session.user_id),
        before: None,
        after: Some(json!({ "expires_at": session.expires_at })),
    })?;
    Ok(())
}

/// End the caller's session, with its audit entry; [`ServiceError::NotFound`] if it has
/// ended already.
pub async fn logout(app: &AppState, caller: &Authenticated) -> Result<(), ServiceError> {
    let token_hash = caller.token_hash();
    let actor = caller.actor().name().to_owned();
    let user_id = caller.user_id();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            if !tx.delete_session(&token_hash)? {
                return Err(ServiceError::NotFound);
            }
            tx.append_audit(&NewEntry {
                at,
                actor,
                action: "session.delete",
                subject: format!("user:{user_id}"),
                before: None,
                after: None,
            })?;
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::role::RoleError;
    use crate::domain::user::{AccountError, PasswordPolicyError};
    use crate::store::test_support::{MemoryDb, T0, t};
    use crate::store::{SessionRows, UserRows};

    fn new_user(username: &str) -> NewUser {
        NewUser {
            username: username.into(),
            password_hash: "$argon2id$x".into(),
            roles: Roles::new(&[Role::Guard]).unwrap(),
            person_id: None,
        }
    }

    #[test]
    fn a_new_account_names_every_problem() {
        let Err(ServiceError::Account(errors)) =
            check_new_user("x y", "short", &[Role::Admin, Role::Auditor])
        else {
            panic!("accepted");
        };
        assert!(matches!(
            errors[..],
            [
                AccountError::Username,
                AccountError::Roles(RoleError::Exclusive(..)),
                AccountError::Password(PasswordPolicyError::TooShort),
            ]
        ));
        assert!(matches!(
            check_new_user("x1", "long enough password", &[]),
            Err(ServiceError::Account(e)) if e == [AccountError::Roles(RoleError::Empty)]
        ));
        assert!(check_new_user("x1", "long enough password", &[Role::Guard]).is_ok());
    }

    #[test]
    fn an_account_is_audited_without_its_password_and_unique_in_any_case() {
        let db = MemoryDb::new();
        let id = create_user_in(&mut db.tx(), "@init", &new_user("zhang"), t(T0)).unwrap();
        let entry = db.audit().pop().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.actor.as_str()),
            ("user.create", "@init")
        );
        assert_eq!(entry.subject, format!("user:{id}"));
        assert!(!serde_json::to_string(&entry).unwrap().contains("argon2"));
        assert!(matches!(
            create_user_in(&mut db.tx(), "@init", &new_user("ZHANG"), t(T0)),
            Err(ServiceError::Duplicate { what: "username" })
        ));
        let mut linked = new_user("li");
        linked.person_id = Some(PersonId(99));
        assert!(matches!(
            create_user_in(&mut db.tx(), "@init", &linked, t(T0)),
            Err(ServiceError::UnknownReference { .. })
        ));
        let found = db.tx().credentials("Zhang").unwrap().unwrap();
        assert_eq!((found.id, found.username.as_str()), (id, "zhang"));
    }

    #[test]
    fn a_session_lives_until_it_expires_and_opening_one_sweeps_the_expired() {
        let db = MemoryDb::custody(t(T0));
        let session = |hash: u8, at: i64| NewSession {
            user_id: UserId(1),
            token_hash: [hash; 32],
            csrf: "c".into(),
            created_at: t(at),
            expires_at: t(at + 60),
        };
        open_session_in(&mut db.tx(), "cust", &session(1, T0)).unwrap();
        let live = db.tx().session(&[1; 32], t(T0 + 59)).unwrap().unwrap();
        assert_eq!((live.username.as_str(), live.csrf.as_str()), ("cust", "c"));
        assert!(db.tx().session(&[1; 32], t(T0 + 60)).unwrap().is_none());
        open_session_in(&mut db.tx(), "cust", &session(2, T0 + 60)).unwrap();
        assert!(!db.tx().delete_session(&[1; 32]).unwrap(), "swept");
        let entry = db.audit().pop().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.actor.as_str()),
            ("session.create", "cust")
        );
    }
}
