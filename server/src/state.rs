//! The application's state: what every use case and handler can reach (store, server key,
//! settings, clock, alert fan-out, metrics, the pages' form tokens, the sign-in throttle).
//!
//! It knows no HTTP; `api/` and `web/` hand it to the use cases in `service/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_protocol::uplink::AuditHead;
use tokio::sync::{broadcast, watch};

use crate::alert_hub::AlertHub;
use crate::audit::anchor::AnchorFile;
use crate::auth::source::{FailureBudget, TrustedProxies};
use crate::auth::throttle::LoginThrottle;
use crate::config::{Config, Notifications, Smtp, Webhook};
use crate::domain::level::Level;
use crate::domain::lifecycle::LoanPolicy;
use crate::domain::person::DecommissioningPolicy;
use crate::domain::sweep::SweepPolicy;
use crate::domain::time::Timestamp;
use crate::keys::ServerKey;
use crate::metrics::Metrics;
use crate::replay::FormTokens;
use crate::store::Store;

/// The source of "now". The domain never reads the clock; the edges ask this.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Arc::new(|| {
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            // The system clock is between years 1970 and 9999 on any machine that runs this.
            Timestamp::from_unix(unix).expect("system clock within years 1..=9999")
        }))
    }

    /// A clock that answers whatever `now` returns (tests move time with it).
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Settings the request path needs, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Session lifetime in seconds.
    pub session_ttl_secs: u64,
    /// Mark the session cookie `Secure`.
    pub secure_cookies: bool,
    /// Request body limit in bytes.
    pub body_limit_bytes: usize,
    /// Interval between audit head signatures.
    pub audit_head_interval: Duration,
    /// Interval between sweeps.
    pub sweep_interval: Duration,
    /// The sweeps' timing rules.
    pub sweep: SweepPolicy,
    /// Decommissioning period (脱密期) lengths, applied when a departure is approved.
    pub decommissioning: DecommissioningPolicy,
    /// Loan limits and the overdue-to-missing escalation per level.
    pub loans: LoanPolicy,
    /// The same tag at two devices closer in time than this is a suspected clone (zero = off).
    pub tag_clone_min_travel: Duration,
    /// Lifetime of a signed gate policy.
    pub policy_ttl: Duration,
    /// The carrier levels whose gate exits need the borrower's badge read.
    pub badge_required: Vec<Level>,
    /// GS1 Company Prefix of the GIAI-96 EPCs proposed for new carriers.
    pub label_company_prefix: String,
    /// Which peers may name the client's address in a header.
    pub trusted_proxies: TrustedProxies,
    /// The bearer token opening `/metrics` on the public port (`None`: not served there).
    pub metrics_token: Option<String>,
    /// The notifier's timing.
    pub notifications: Notifications,
    /// E-mail of alerts.
    pub smtp: Smtp,
    /// Webhooks of alerts.
    pub webhooks: Vec<Webhook>,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Settings {
            session_ttl_secs: config.session_ttl_secs,
            // Whenever the server speaks TLS itself, or the operator says a TLS proxy is in
            // front: a cookie sent over plain HTTP once is a stolen session.
            secure_cookies: config.secure_cookies || config.tls.is_some(),
            body_limit_bytes: config.body_limit_bytes,
            audit_head_interval: Duration::from_secs(config.audit_head_interval_secs),
            sweep_interval: Duration::from_millis(config.sweep_interval_ms),
            sweep: SweepPolicy {
                overdue_reminder_ms: ms(config.overdue_reminder_interval_secs.saturating_mul(1000)),
                cabinet_removal_grace_ms: ms(config.cabinet_removal_grace_ms),
                supervision_ms: ms(config.supervision_interval_secs.saturating_mul(1000)),
            },
            decommissioning: config.decommissioning.into(),
            loans: config.loans.into(),
            tag_clone_min_travel: Duration::from_secs(config.tag_clone_min_travel_secs),
            policy_ttl: Duration::from_secs(config.policy_ttl_secs),
            badge_required: config.gate.badge_required.clone(),
            label_company_prefix: config.label_company_prefix.clone(),
            trusted_proxies: TrustedProxies {
                header: config
                    .trusted_proxy_header
                    .as_ref()
                    .map(|h| h.to_ascii_lowercase()),
                proxies: config.trusted_proxies.clone(),
            },
            metrics_token: config.metrics_token.clone(),
            notifications: config.notifications,
            smtp: config.smtp.clone(),
            webhooks: config.webhooks.clone(),
        }
    }
}

/// A configured millisecond count as the rules' `i64` (configuration bounds keep it far below).
fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Everything a request handler can reach: cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    store: Store,
    key: Arc<ServerKey>,
    settings: Settings,
    clock: Clock,
    alerts: AlertHub,
    form_tokens: FormTokens,
    login_throttle: Mutex<LoginThrottle>,
    source_throttle: Mutex<LoginThrottle>,
    ingest_failures: Mutex<FailureBudget>,
    metrics: Metrics,
    /// Turns true when the server begins to shut down (ends the live streams).
    stopping: watch::Sender<bool>,
    /// The token hashes of sessions that ended before their expiry (logout, revocation, a
    /// disabled account, a departed person): the live streams of those sessions end.
    sessions_ended: broadcast::Sender<[u8; 32]>,
    /// The latest signed audit head, handed to devices in their acks (set by
    /// `service::audit::sign_head`).
    audit_head: Mutex<Option<AuditHead>>,
    /// The anchor file every signed head is appended to (`[audit] anchor_file`), if any.
    anchor: Arc<Mutex<Option<AnchorFile>>>,
}

/// How many ended sessions a live stream may fall behind before it checks its own session in
/// the store instead (see [`AppState::sessions_ended`]).
pub const SESSION_ENDS_CAPACITY: usize = 256;

impl AppState {
    /// Assemble the state with the system clock.
    pub fn new(store: Store, key: ServerKey, settings: Settings) -> AppState {
        AppState::with_clock(store, key, settings, Clock::system())
    }

    /// Assemble the state with a given clock.
    pub fn with_clock(store: Store, key: ServerKey, settings: Settings, clock: Clock) -> AppState {
        AppState {
            inner: Arc::new(StateInner {
                store,
                key: Arc::new(key),
                settings,
                clock,
                alerts: AlertHub::new(),
                form_tokens: FormTokens::new(),
                login_throttle: Mutex::new(LoginThrottle::new()),
                source_throttle: Mutex::new(LoginThrottle::per_source()),
                ingest_failures: Mutex::new(FailureBudget::default()),
                metrics: Metrics::default(),
                stopping: watch::Sender::new(false),
                sessions_ended: broadcast::Sender::new(SESSION_ENDS_CAPACITY),
                audit_head: Mutex::new(None),
                anchor: Arc::new(Mutex::new(None)),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The fan-out of alert changes to live consoles.
    pub fn alerts(&self) -> &AlertHub {
        &self.inner.alerts
    }

    /// The one-time tokens of the pages' creating forms (a form sent twice creates one record).
    pub fn form_tokens(&self) -> &FormTokens {
        &self.inner.form_tokens
    }

    /// Runs `f` on the failed sign-in counts (see [`auth::throttle`]).
    pub fn login_throttle<T>(&self, f: impl FnOnce(&mut LoginThrottle) -> T) -> T {
        let mut throttle = self
            .inner
            .login_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut throttle)
    }

    /// Runs `f` on the failed sign-in counts per source address (see [`auth::throttle`]).
    pub fn source_throttle<T>(&self, f: impl FnOnce(&mut LoginThrottle) -> T) -> T {
        let mut throttle = self
            .inner
            .source_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut throttle)
    }

    /// Runs `f` on the per-source budget of failed device requests (see
    /// [`auth::source::FailureBudget`]).
    pub fn ingest_failures<T>(&self, f: impl FnOnce(&mut FailureBudget) -> T) -> T {
        let mut budget = self
            .inner
            .ingest_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut budget)
    }

    /// The server's signing key (signs answers to devices and audit heads).
    pub fn server_key(&self) -> &ServerKey {
        &self.inner.key
    }

    /// The in-process metrics (`/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Watch for shutdown: the value turns `true` when the server stops accepting requests.
    /// Endless responses (the alert stream) end then, so graceful shutdown can finish.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Tell the live streams that the server is stopping (see [`AppState::stopping`]).
    pub(crate) fn stop(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Watch for sessions that end early: each message is the token hash of a session that
    /// was deleted (after the deletion committed). A receiver that lags
    /// (`RecvError::Lagged`) must check its session in the store, since it may have missed
    /// its own end.
    pub fn sessions_ended(&self) -> broadcast::Receiver<[u8; 32]> {
        self.inner.sessions_ended.subscribe()
    }

    /// Announce sessions deleted by a committed transaction (see [`AppState::sessions_ended`]).
    pub fn end_sessions(&self, token_hashes: &[[u8; 32]]) {
        for hash in token_hashes {
            // An error only means no stream is open right now.
            let _ = self.inner.sessions_ended.send(*hash);
        }
    }

    /// The latest signed audit head known to this process (none before the first signing).
    pub fn latest_audit_head(&self) -> Option<AuditHead> {
        *self
            .inner
            .audit_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remember `head` as the latest signed audit head.
    pub(crate) fn set_latest_audit_head(&self, head: AuditHead) {
        *self
            .inner
            .audit_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(head);
    }

    /// Append every signed head from now on to `anchor` (see [`crate::audit::anchor`]).
    pub fn set_anchor(&self, anchor: AnchorFile) {
        *self
            .inner
            .anchor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(anchor);
    }

    /// The anchor file, if one is configured (blocking I/O: use it off the executor).
    pub(crate) fn anchor(&self) -> Arc<Mutex<Option<AnchorFile>>> {
        self.inner.anchor.clone()
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The current instant.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The server's signing key, shared (for a job that signs on the store's thread).
    pub fn server_key_arc(&self) -> Arc<ServerKey> {
        Arc::clone(&self.inner.key)
    }
}
