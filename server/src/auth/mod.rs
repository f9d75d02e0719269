//! Authentication and authorisation: passwords, sessions, and capability types.
//!
//! - [`password`]: Argon2id hashes, computed on blocking threads.
//! - [`token`]: random session and CSRF tokens; only their SHA-256 is stored.
//! - [`authenticate`]: a presented session token to an [`Authenticated`] caller.
//! - [`throttle`]: failed sign-ins counted per username and per source address.
//! - [`source`]: the client's address (behind trusted proxies) and the per-source budget of
//!   failed unauthenticated requests.
//! - [`HashGate`]: at most one password hash per core at a time, a short queue, then "busy".
//! - [`capability`]: `AdminCap`, `SecurityOfficerCap`, ... that exist only after a role check;
//!   use cases demand one, so a handler that forgets the check does not compile.
//!
//! Nothing here knows HTTP (`api::auth` reads the headers) or the application: creating an
//! account and logging in are use cases, in `service::accounts`.
//!
//! Passwords and tokens are never logged and never written to the audit trail.

pub mod capability;
pub mod password;
pub mod source;
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
    /// Every hashing slot stayed taken for the queue's deadline, or the queue is full: the
    /// server is busy checking passwords (503 with `Retry-After`).
    #[error("too many sign-ins at once; try again in {retry_after_secs} s")]
    Busy {
        /// Seconds after which a retry is reasonable.
        retry_after_secs: u64,
    },
}

/// The bound on concurrent password hashing.
///
/// Each Argon2id computation holds 19 MiB and a core for tens of milliseconds. Without a bound,
/// a flood of sign-ins (no credentials needed) ran one per request on the blocking pool (up to
/// 512 threads): 64 concurrent tries took the server from 324 MiB to 3.9 GB and made every
/// other request wait. So:
/// - at most `slots` hashes run at once (one per core: more would not finish sooner);
/// - up to `queue` further requests wait, each at most `deadline`;
/// - beyond that, or past the deadline, the request is refused with [`AuthError::Busy`] (503
///   and `Retry-After`) at once, without hashing.
///
/// The slot is held by the hashing job itself, not by the request: a client that hangs up
/// while its hash is computed does not free the slot before the memory is.
///
/// The hashes run on `slots` dedicated threads, not on tokio's blocking pool: the allocator
/// keeps a freed 19 MiB block in the arena of the thread that used it, and the blocking pool
/// spreads successive jobs over up to 512 threads, so bounded *concurrency* there still grew
/// the RSS to a gigabyte (measured: `benches/flood.rs --botnet`). On a fixed set of threads
/// each reuses its own block.
///
/// Memory is therefore bounded by `slots × 19 MiB` for hashing plus `queue` small waiting
/// requests, whatever the arrival rate. Refusing when busy is the price: a legitimate user in a
/// flood gets 503 and retries (the per-address and per-account throttles cut the flood itself).
#[derive(Debug)]
pub struct HashGate {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
    deadline: std::time::Duration,
    jobs: std::sync::mpsc::Sender<HashJob>,
}

type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads: each takes the next job; they end when the gate is dropped.
fn hashing_threads(slots: usize) -> std::sync::mpsc::Sender<HashJob> {
    let (jobs, queue) = std::sync::mpsc::channel::<HashJob>();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
    for n in 0..slots {
        let queue = std::sync::Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("custos-hash-{n}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            // Fewer threads only means fewer hashes at once; with none, jobs fail (Task).
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    jobs
}

/// Requests that may wait for a hashing slot, per slot.
pub const HASH_QUEUE_PER_SLOT: usize = 16;
/// The longest a sign-in waits for a hashing slot.
pub const HASH_QUEUE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);
/// `Retry-After` of a refusal for being busy, in seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl HashGate {
    /// A gate of `slots` concurrent hashes (at least one) and `queue` waiting requests.
    pub fn new(slots: usize, queue: usize, deadline: std::time::Duration) -> HashGate {
        let slots = slots.max(1);
        HashGate {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            queue,
            deadline,
            jobs: hashing_threads(slots),
        }
    }

    /// The process's gate: one slot per core (as the OS reports them), a queue of
    /// [`HASH_QUEUE_PER_SLOT`] per slot, [`HASH_QUEUE_DEADLINE`]. It is one per process
    /// because the memory and the cores it protects are.
    pub fn global() -> &'static HashGate {
        static GATE: std::sync::OnceLock<HashGate> = std::sync::OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            HashGate::new(
                cores,
                cores.saturating_mul(HASH_QUEUE_PER_SLOT),
                HASH_QUEUE_DEADLINE,
            )
        })
    }

    fn busy() -> AuthError {
        AuthError::Busy {
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        }
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = std::sync::Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Self::busy());
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(
            self.deadline,
            std::sync::Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Self::busy()),
        }
    }

    /// Run `f` on a hashing thread once a slot is free (see the type's doc).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = self.slot().await?;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            // A panic loses this answer (`Task`), not the thread.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            drop(permit);
            if let Ok(out) = out {
                let _ = answer.send(out);
            }
        });
        self.jobs.send(job).map_err(|_| AuthError::Task)?;
        answered.await.map_err(|_| AuthError::Task)
    }
}

/// Hash a password with Argon2id on a blocking thread (the work is deliberately slow), within
/// the [`HashGate`].
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    Ok(HashGate::global()
        .run(move || password::hash(&password))
        .await??)
}

/// Whether `password` matches the PHC string `phc`, checked on a blocking thread within the
/// [`HashGate`]. With no account to check against, pass [`password::decoy`] so that the answer
/// takes as long.
pub async fn verify_password(password: String, phc: String) -> Result<bool, AuthError> {
    Ok(HashGate::global()
        .run(move || password::verify(&password, &phc))
        .await??)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded_queued_then_refused() {
        let gate = std::sync::Arc::new(HashGate::new(1, 1, Duration::from_millis(200)));
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move {
                gate.run(move || {
                    let _ = started.send(());
                    held.recv().ok();
                    1
                })
                .await
            }
        });
        running.await.unwrap();
        // The slot is taken: the next one waits in the queue (of one), the one after is
        // refused at once.
        let second = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move { gate.run(|| 2).await }
        });
        tokio::task::yield_now().await;
        while gate.waiting.load(std::sync::atomic::Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            gate.run(|| 3).await,
            Err(AuthError::Busy {
                retry_after_secs: 1
            })
        ));
        // The queued one gives up at its deadline.
        assert!(matches!(second.await.unwrap(), Err(AuthError::Busy { .. })));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), 1);
        assert_eq!(gate.run(|| 4).await.unwrap(), 4, "the slot is free again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_goes_away_does_not_free_the_slot_early() {
        let gate = std::sync::Arc::new(HashGate::new(1, 0, Duration::from_millis(50)));
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn({
            let gate = std::sync::Arc::clone(&gate);
            async move {
                gate.run(move || {
                    let _ = started.send(());
                    held.recv().ok();
                })
                .await
            }
        });
        running.await.unwrap();
        caller.abort();
        let _ = caller.await;
        assert!(
            matches!(gate.run(|| ()).await, Err(AuthError::Busy { .. })),
            "the hash still runs, so its slot is still taken"
        );
        release.send(()).unwrap();
    }
}
