//! Accounts and sessions: creating an account, the account list, logging in and out,
//! disabling and enabling an account, resetting and changing a password, and listing and
//! revoking sessions.
//!
//! # Separation of duties: nobody acts with a password someone else chose
//! An account an administrator creates, and one whose password an administrator resets, must
//! set its own password at the next sign-in ([`User::must_change_password`]). Until it has,
//! its session grants no capability (`auth::capability`), and the API answers every call but
//! the change (and logout) with 403 `password_change_required`. So the administrator, who
//! typed the first password, cannot approve as a new security officer, and two officers the
//! administrator created cannot satisfy the two-person rule alone. The new password must
//! differ from the one the administrator chose. Only the first administrator, who chose
//! their own password at `init`, is exempt.
//!
//! # Ending sessions
//! Logout, revocation, a reset, a disabled account and a departed person delete sessions in
//! the same transaction as their audit entry; after the commit their token hashes go to
//! [`AppState::end_sessions`], and every open live stream of those sessions ends
//! ([`session_end`]). Changing one's own password ends every other session of the account.
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
use crate::domain::person::{self, PersonStatus};
use crate::domain::role::{Role, Roles};
use crate::domain::time::Timestamp;
use crate::domain::user::{
    AccountChangeError, check_new_account, check_new_password, check_password, is_valid_username,
};
use crate::store::Tx;
use crate::store::people::NewPerson;
use crate::store::sessions::{NewSession, SessionInfo};
use crate::store::users::{NewUser, User};

/// A request to create an account (`POST /users`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", min_length = 1, max_length = 64)]
    pub username: String,
    /// Initial password (checked against the policy, then hashed; never stored or logged): at
    /// least 12 characters and at most 1024 bytes of UTF-8 (declared here as 256 characters).
    #[schema(min_length = 12, max_length = 256)]
    pub password: String,
    /// Roles, at least one; admin, security_officer and auditor exclude one another.
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
    /// The person on the register this account belongs to.
    #[serde(default)]
    pub person_id: Option<PersonId>,
    /// Instead of `person_id`: register the account holder on the register of people with
    /// the account (so the first security officer's account can be linked before anyone
    /// may register people).
    #[serde(default)]
    pub new_person: Option<NewPerson>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("roles", &self.roles)
            .field("person_id", &self.person_id)
            .field("new_person", &self.new_person.as_ref().map(|p| &p.name))
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
    if request.person_id.is_some() && request.new_person.is_some() {
        return Err(ServiceError::invalid(
            "new_person",
            "invalid",
            "give person_id or new_person, not both",
        ));
    }
    if let Some(p) = &request.new_person {
        super::people::check_new_person(&p.name, &p.department, p.badge_tag.as_deref())?;
    }
    let duties = Duties {
        person_required: app.settings().people.privileged_accounts_need_person
            && !cap.is_bootstrap(),
        new_person: request.new_person,
    };
    let password_hash = auth::hash_password(request.password).await?;
    let user = NewUser {
        username: request.username,
        password_hash,
        roles,
        person_id: request.person_id,
        must_change_password: !cap.is_bootstrap(),
    };
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let mut user = user;
            if let Some(p) = &duties.new_person {
                user.person_id = Some(super::people::register_in(tx, &actor, p, at)?);
            }
            check_person_duties_in(tx, &user, duties.person_required)?;
            create_user_in(tx, &actor, &user, at)
        })
        .await
}

/// How a new account's person is checked and found.
struct Duties {
    /// Privileged roles need a linked person (off for the bootstrap administrator, and by
    /// `[people] privileged_accounts_need_person = false`).
    person_required: bool,
    /// A person to register with the account.
    new_person: Option<NewPerson>,
}

/// Separation of duties per person ([`person::check_person_duties`]): the roles of every
/// other account of the linked person count.
fn check_person_duties_in(
    tx: &mut dyn Tx,
    user: &NewUser,
    person_required: bool,
) -> Result<(), ServiceError> {
    let held_elsewhere: Vec<Role> = match user.person_id {
        Some(id) => tx
            .users_of_person(id)?
            .iter()
            .flat_map(|u| u.roles.to_vec())
            .collect(),
        None => Vec::new(),
    };
    let linked = user.person_id.is_some() || !person_required;
    person::check_person_duties(&user.roles.to_vec(), linked, &held_elsewhere)?;
    Ok(())
}

/// The person an account belongs to, if linked: the lookup the approval rules use for "two
/// different people" and "not the beneficiary" (an account without a person counts as a
/// person of its own).
pub fn person_of_in(tx: &mut dyn Tx, user: UserId) -> Result<Option<PersonId>, ServiceError> {
    Ok(tx.user(user)?.person_id)
}

fn create_user_in(
    tx: &mut dyn Tx,
    actor: &str,
    user: &NewUser,
    at: Timestamp,
) -> Result<UserId, ServiceError> {
    if let Some(person) = user.person_id {
        match tx.person(person) {
            Ok(p) if p.status == PersonStatus::Departed => {
                return Err(AccountChangeError::PersonDeparted.into());
            }
            Ok(_) | Err(crate::store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
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
            "must_change_password": user.must_change_password,
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
        .await?;
    app.end_sessions(&[token_hash]);
    Ok(())
}

/// What an account change did: its audit entry is written; these sessions were deleted.
struct Ended(Vec<[u8; 32]>);

/// Delete every session of `user` but `keep`; the count for the audit entry.
fn end_sessions_in(
    tx: &mut dyn Tx,
    user: crate::domain::ids::UserId,
    keep: Option<&[u8; 32]>,
    ended: &mut Vec<[u8; 32]>,
) -> Result<usize, ServiceError> {
    let hashes = tx.delete_sessions_of(user, keep)?;
    let count = hashes.len();
    ended.extend(hashes);
    Ok(count)
}

fn account_json(user: &User) -> serde_json::Value {
    json!({
        "username": user.username,
        "disabled": user.disabled,
        "must_change_password": user.must_change_password,
    })
}

/// Disable account `id`: login is refused, and every session and live stream of it ends at
/// once. An administrator cannot disable their own account
/// ([`AccountChangeError::DisableSelf`]); disabling a disabled account changes nothing and
/// writes nothing.
pub async fn disable_user(app: &AppState, cap: &AdminCap, id: UserId) -> Result<(), ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let Ended(ended) = app
        .store()
        .transact(move |tx| disable_user_in(tx, &actor, id, at, None))
        .await?;
    app.end_sessions(&ended);
    Ok(())
}

/// Disable `id` with its audit entry (`why`: the reason when the system does it, such as a
/// departure).
fn disable_user_in(
    tx: &mut dyn Tx,
    actor: &str,
    id: UserId,
    at: Timestamp,
    why: Option<&str>,
) -> Result<Ended, ServiceError> {
    let before = tx.user(id)?;
    if before.username.eq_ignore_ascii_case(actor) && why.is_none() {
        return Err(AccountChangeError::DisableSelf.into());
    }
    let mut ended = Vec::new();
    if before.disabled {
        return Ok(Ended(ended));
    }
    tx.set_disabled(id, true)?;
    let revoked = end_sessions_in(tx, id, None, &mut ended)?;
    let mut after = account_json(&User {
        disabled: true,
        ..before.clone()
    });
    after["sessions_revoked"] = json!(revoked);
    if let Some(why) = why {
        after["reason"] = json!(why);
    }
    tx.append_audit(&NewEntry {
        at,
        actor: actor.to_owned(),
        action: "user.disable",
        subject: format!("user:{id}"),
        before: Some(account_json(&before)),
        after: Some(after),
    })?;
    Ok(Ended(ended))
}

/// Enable account `id` again. Refused for an account whose person has departed
/// ([`AccountChangeError::PersonDeparted`]); enabling an enabled account writes nothing.
pub async fn enable_user(app: &AppState, cap: &AdminCap, id: UserId) -> Result<(), ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    app.store()
        .transact(move |tx| {
            let before = tx.user(id)?;
            if !before.disabled {
                return Ok(());
            }
            if let Some(person) = before.person_id {
                if tx.person(person)?.status == PersonStatus::Departed {
                    return Err(AccountChangeError::PersonDeparted.into());
                }
            }
            tx.set_disabled(id, false)?;
            tx.append_audit(&NewEntry {
                at,
                actor,
                action: "user.enable",
                subject: format!("user:{id}"),
                before: Some(account_json(&before)),
                after: Some(account_json(&User {
                    disabled: false,
                    ..before
                })),
            })?;
            Ok(())
        })
        .await
}

/// Disable every account of a departed person (called in the departure's transaction); the
/// sessions ended.
pub(crate) fn disable_accounts_of_person_in(
    tx: &mut dyn Tx,
    actor: &str,
    person: crate::domain::ids::PersonId,
    at: Timestamp,
) -> Result<Vec<[u8; 32]>, ServiceError> {
    let mut ended = Vec::new();
    for user in tx.users_of_person(person)? {
        let Ended(hashes) = disable_user_in(tx, actor, user.id, at, Some("person departed"))?;
        ended.extend(hashes);
    }
    Ok(ended)
}

/// How a password is replaced: by an administrator's reset (the holder must change it, every
/// session ends) or by the holder (their own session stays).
struct PasswordReplacement {
    must_change: bool,
    keep: Option<[u8; 32]>,
    action: &'static str,
    revoked_field: &'static str,
}

/// Store the new hash, end the sessions `how` says, and audit it with the count.
fn replace_password_in(
    tx: &mut dyn Tx,
    how: &PasswordReplacement,
    id: UserId,
    hash: &str,
    at: Timestamp,
    actor: String,
) -> Result<Ended, ServiceError> {
    let before = tx.user(id)?;
    tx.set_password(id, hash, how.must_change)?;
    let mut ended = Vec::new();
    let revoked = end_sessions_in(tx, id, how.keep.as_ref(), &mut ended)?;
    let mut after = account_json(&User {
        must_change_password: how.must_change,
        ..before.clone()
    });
    after[how.revoked_field] = json!(revoked);
    tx.append_audit(&NewEntry {
        at,
        actor,
        action: how.action,
        subject: format!("user:{id}"),
        before: Some(account_json(&before)),
        after: Some(after),
    })?;
    Ok(Ended(ended))
}

/// Reset the password of account `id` (administrator): the new one is checked against the
/// policy and hashed; the account must change it at its next sign-in, and every session of it
/// ends. The administrator knows this password, never the one the holder then chooses.
pub async fn reset_password(
    app: &AppState,
    cap: &AdminCap,
    id: UserId,
    password: String,
) -> Result<(), ServiceError> {
    let user = app
        .store()
        .query(move |tx| Ok::<_, ServiceError>(tx.user(id)?))
        .await?;
    check_password(&password, &user.username)
        .map_err(|e| ServiceError::Account(vec![crate::domain::user::AccountError::Password(e)]))?;
    let hash = auth::hash_password(password).await?;
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let replace = PasswordReplacement {
        must_change: true,
        keep: None,
        action: "user.password_reset",
        revoked_field: "sessions_revoked",
    };
    let Ended(ended) = app
        .store()
        .transact(move |tx| replace_password_in(tx, &replace, id, &hash, at, actor))
        .await?;
    app.end_sessions(&ended);
    Ok(())
}

/// A change of one's own password (`POST /session/password`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current password.
    pub old: String,
    /// The new password (the policy applies; it must differ from the current one).
    pub new: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassword { <redacted> }")
    }
}

/// Change the caller's own password (any signed-in user, also one who must change it). The
/// current password is checked (wrong answers count towards the sign-in throttle of the
/// username, so a stolen session cannot guess it faster than a login could); the new one
/// must follow the policy and differ from it. Every other session of the account ends; the
/// caller's stays, and may act at once.
pub async fn change_password(
    app: &AppState,
    caller: &Authenticated,
    request: ChangePassword,
) -> Result<(), ServiceError> {
    let username = caller.username().to_owned();
    check_new_password(&username, &request.old, &request.new)?;
    let key = username.to_ascii_lowercase();
    let block_if_wrong = app
        .login_throttle(|t| t.attempt(&key, app.now()))
        .map_err(ServiceError::LoginBlocked)?;
    let id = caller.user_id();
    let phc = app
        .store()
        .query(move |tx| Ok::<_, ServiceError>(tx.password_hash(id)?))
        .await?;
    if !auth::verify_password(request.old, phc).await? {
        if let Some(b) = block_if_wrong {
            tracing::warn!(user = %id, blocked_secs = b.retry_after_secs, "password change refused; repeated failures: username blocked");
        }
        return Err(AccountChangeError::WrongPassword.into());
    }
    app.login_throttle(|t| t.succeeded(&key));
    let hash = auth::hash_password(request.new).await?;
    let keep = caller.token_hash();
    let actor = caller.actor().name().to_owned();
    let at = app.now();
    let replace = PasswordReplacement {
        must_change: false,
        keep: Some(keep),
        action: "user.password_change",
        revoked_field: "other_sessions_revoked",
    };
    let Ended(ended) = app
        .store()
        .transact(move |tx| replace_password_in(tx, &replace, id, &hash, at, actor))
        .await?;
    app.end_sessions(&ended);
    tracing::info!(user = %id, "password changed");
    Ok(())
}

/// The live sessions of account `id` (administrator); [`ServiceError::NotFound`] without one.
pub async fn sessions(
    app: &AppState,
    _cap: &AdminCap,
    id: UserId,
) -> Result<Vec<SessionInfo>, ServiceError> {
    let now = app.now();
    app.store()
        .query(move |tx| {
            tx.user(id)?;
            Ok(tx.sessions_of(id, now)?)
        })
        .await
}

/// End every session of account `id` (administrator), with its audit entry; how many ended.
pub async fn revoke_sessions(
    app: &AppState,
    cap: &AdminCap,
    id: UserId,
) -> Result<usize, ServiceError> {
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    let Ended(ended) = app
        .store()
        .transact(move |tx| {
            tx.user(id)?;
            let mut ended = Vec::new();
            let revoked = end_sessions_in(tx, id, None, &mut ended)?;
            tx.append_audit(&NewEntry {
                at,
                actor,
                action: "session.revoke",
                subject: format!("user:{id}"),
                before: None,
                after: Some(json!({ "sessions_revoked": revoked })),
            })?;
            Ok::<_, ServiceError>(Ended(ended))
        })
        .await?;
    app.end_sessions(&ended);
    Ok(ended.len())
}

/// Until the server stops (the guard of the watched value is not held across an await).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopping| *stopping).await;
}

/// A future that completes when `caller`'s session ends: logout, revocation, a reset, a
/// disabled account or a departed person ([`AppState::sessions_ended`]), its expiry, or the
/// server stopping. A live stream ends with it (`take_until`), so a session's end reaches
/// every response it opened, not only the next request.
///
/// It subscribes before it returns, then checks the session once in the store when first
/// polled, so an end between the request's authentication and the subscription is not
/// missed. A subscriber that lags behind the announcements checks its session in the store
/// again rather than guess. Expiry is a timer set from the session's `expires_at` and the
/// application clock at connect.
pub fn session_end(
    app: &AppState,
    caller: &Authenticated,
) -> impl std::future::Future<Output = ()> + Send + use<> {
    let mut ends = app.sessions_ended();
    let mut stopping = app.stopping();
    let app = app.clone();
    let hash = caller.token_hash();
    let left = caller.expires_at().unix().saturating_sub(app.now().unix());
    let expiry = std::time::Duration::from_secs(u64::try_from(left).unwrap_or(0));
    async move {
        let live = |app: AppState| async move {
            let now = app.now();
            // A store failure ends the stream: it cannot show the session is still live.
            matches!(
                app.store().query(move |tx| tx.session(&hash, now)).await,
                Ok(Some(_))
            )
        };
        if !live(app.clone()).await {
            return;
        }
        let deadline = tokio::time::sleep(expiry);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = stopped(&mut stopping) => return,
                ended = ends.recv() => match ended {
                    Ok(ended) if ended == hash => return,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if !live(app.clone()).await {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
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
            must_change_password: true,
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

    fn open(db: &MemoryDb, user: UserId, hash: u8) {
        let session = NewSession {
            user_id: user,
            token_hash: [hash; 32],
            csrf: "c".into(),
            created_at: t(T0),
            expires_at: t(T0 + 60),
        };
        open_session_in(&mut db.tx(), "x", &session).unwrap();
    }

    #[test]
    fn disabling_ends_every_session_once_and_not_ones_own_account() {
        let db = MemoryDb::new();
        let id = create_user_in(&mut db.tx(), "@init", &new_user("zhang"), t(T0)).unwrap();
        let other = create_user_in(&mut db.tx(), "@init", &new_user("li"), t(T0)).unwrap();
        open(&db, id, 1);
        open(&db, id, 2);
        open(&db, other, 3);
        assert!(matches!(
            disable_user_in(&mut db.tx(), "ZHANG", id, t(T0), None),
            Err(ServiceError::AccountChange(AccountChangeError::DisableSelf))
        ));
        let Ended(mut ended) = disable_user_in(&mut db.tx(), "root", id, t(T0), None).unwrap();
        ended.sort_unstable();
        assert_eq!(ended, [[1; 32], [2; 32]]);
        assert!(db.tx().session(&[1; 32], t(T0)).unwrap().is_none());
        assert!(
            db.tx().session(&[3; 32], t(T0)).unwrap().is_some(),
            "others stay"
        );
        assert!(db.tx().user(id).unwrap().disabled);
        let entry = db.audit().pop().unwrap();
        assert_eq!(
            (entry.action.as_str(), entry.actor.as_str()),
            ("user.disable", "root")
        );
        assert_eq!(entry.after.unwrap()["sessions_revoked"], 2);
        let entries = db.audit().len();
        let Ended(again) = disable_user_in(&mut db.tx(), "root", id, t(T0), None).unwrap();
        assert!(again.is_empty());
        assert_eq!(
            db.audit().len(),
            entries,
            "nothing changed, nothing written"
        );
    }

    #[test]
    fn a_departure_disables_the_persons_accounts() {
        let db = MemoryDb::custody(t(T0));
        let person = crate::domain::ids::PersonId(1);
        let mut linked = new_user("linked");
        linked.person_id = Some(person);
        let id = create_user_in(&mut db.tx(), "@init", &linked, t(T0)).unwrap();
        let free = create_user_in(&mut db.tx(), "@init", &new_user("free"), t(T0)).unwrap();
        open(&db, id, 7);
        let ended = disable_accounts_of_person_in(&mut db.tx(), "so1", person, t(T0)).unwrap();
        assert_eq!(ended, [[7; 32]]);
        assert!(db.tx().user(id).unwrap().disabled);
        assert!(!db.tx().user(free).unwrap().disabled);
        let entry = db.audit().pop().unwrap();
        assert_eq!(entry.subject, format!("user:{id}"));
        assert_eq!(entry.after.unwrap()["reason"], "person departed");
    }
}
