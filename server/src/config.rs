//! Server configuration: one TOML file, every key optional with a documented default.
//!
//! Unknown keys are an error (`deny_unknown_fields`): a misspelt setting must stop the server
//! rather than be silently ignored. A bad file fails with toml's message, which names the line,
//! the column and the key. `custos-server print-config` prints [`EXAMPLE`], which parses back
//! to [`Config::default`] (tested).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::alert::AlertKind;
use crate::domain::level::Level;
use crate::domain::lifecycle::{HOUR_MS, LoanPolicy};
use crate::domain::person::DecommissioningPolicy;
use crate::domain::role::Role;
use crate::domain::sweep::DAY_MS;

/// The annotated example configuration printed by `print-config`; every value is the default.
pub const EXAMPLE: &str = r#"# custos-server configuration (TOML). Every key is optional; shown are the defaults.
# Unknown keys are an error.

# Directory holding custos.db (SQLite) and server.key (the server's Ed25519 signing key),
# both created by `custos-server init`.
data_dir = "/var/lib/custos"

# Address to listen on. Port 0 picks a free port; the real one is printed at start.
listen = "127.0.0.1:8080"

# Lifetime of a login session, in seconds (8 hours).
session_ttl_secs = 28800

# Add the Secure attribute to the session cookie. Turn on when a TLS proxy is in front of the
# server; it is on anyway when the server itself serves HTTPS ([tls] below).
secure_cookies = false

# Largest accepted request body, in bytes; larger requests get 413.
body_limit_bytes = 65536

# Log format on stderr: "text" or "json".
log_format = "text"

# Log filter (tracing EnvFilter syntax); the RUST_LOG environment variable overrides it.
log_filter = "info"

# How often the audit chain head is signed with the server key, in seconds. The head is also
# signed at every shutdown.
audit_head_interval_secs = 60

# How often readers must report before they count as silent, in seconds. The sweep raises
# `reader_silent` for a device quiet for longer (or never heard from since registration).
supervision_interval_secs = 6

# How often the sweeps run (overdue sign-outs, cabinet removals, leak deadlines, silent
# readers), in milliseconds (100 to 3600000).
sweep_interval_ms = 2000

# While a sign-out stays overdue, its alert is repeated this often, in seconds (60 to 604800).
overdue_reminder_interval_secs = 3600

# How long a carrier may be gone from its cabinet, with no sign-out out for it, before it is a
# `cabinet_removal` alert and the carrier is marked missing, in milliseconds (0 to 86400000).
cabinet_removal_grace_ms = 30000

# Group commit: at most this many queued write jobs share one SQLite transaction.
write_batch_max = 64

# Read-only SQLite connections in the pool.
read_connections = 4

# Tag clone suspicion: the same tag read at two different devices less than this many seconds
# apart raises `tag_clone_suspected`. Set it to the shortest time anyone can take between the
# two nearest readers (gate to cabinet); 0 turns the check off.
tag_clone_min_travel_secs = 30

# Gate policies signed for offline decisions are trusted for this many seconds after issue;
# gates refresh them before. Short keeps revoked sign-outs from being honoured offline for long.
policy_ttl_secs = 600

# GS1 Company Prefix (6 to 12 digits) for the GIAI-96 EPCs proposed when a carrier is
# registered: urn:epc:id:giai:PREFIX.ASSET, the asset reference being the carrier's number.
# The default is GS1's example prefix; replace it with your organisation's own.
label_company_prefix = "0614141"

# Sign-ins are throttled per source address as well as per username. Behind a reverse proxy
# every client has the proxy's address: name the header the proxy writes the client's address
# into, and the proxies' own addresses. The header is honoured only from those addresses
# (anybody else could write it). Off by default.
# trusted_proxy_header = "X-Forwarded-For"
trusted_proxies = []

# /metrics (Prometheus text: counts only) is never served unauthenticated on the public port.
# Either serve it on a separate address (an internal interface):
# metrics_listen = "127.0.0.1:9090"
# or on the public port to scrapers presenting `Authorization: Bearer TOKEN` (16 to 256
# characters); with neither, /metrics is not served. /healthz stays public: it answers only
# {"status":"ok"} (or 500 when the database cannot be read) and nothing else.
# metrics_token = "a long random string"

# Gates.
[gate]
# The carrier levels (TS, S, C) whose exits need the borrower's badge read: with no badge read
# at all, such a carrier may not leave (alarm, reason `badge_missing`), both in the server's
# verdict and in the policy a gate decides by offline. Applies to borrowers with a badge a gate
# can read (a UHF badge_tag: gates read badges with the carrier antennas); [] = the old rule
# (no badge read gives the benefit of the doubt).
badge_required = ["TS", "S"]

# Decommissioning period (脱密期) after a departure is approved, in whole years (1 to 3).
[decommissioning]
core_years = 3
important_years = 2
general_years = 1

# Loans (sign-outs) per carrier level: the strictest level among a loan's carriers applies.
[loans]
# The longest loan, in days (1 to 365): a due time further away is refused at request and
# again at issue (422 `loan_too_long`).
max_days_ts = 7
max_days_s = 30
max_days_c = 90
# An overdue loan's carriers become missing (with an incident record and a `missing` alert)
# this many hours after the due time (1 to 8760); the leak-deadline clock starts then.
missing_after_hours_ts = 24
missing_after_hours_s = 72
missing_after_hours_c = 168

# The audit trail's signed heads, kept outside the database.
[audit]
# Append every signed audit head (one line: seq, hash, signature) to this file, fsynced. Put it
# on storage the database's administrator does not also control (an append-only file, another
# disk or host); `custos-server audit verify --anchor FILE` then detects a cut or rewritten
# trail. Default: none.
# anchor_file = "/var/lib/custos-anchor/audit-heads"

# Serve HTTPS (TLS 1.2 and 1.3, rustls) with this certificate chain and private key, both PEM
# files (the key PKCS#8, PKCS#1 or SEC1). Without [tls] the server speaks plain HTTP: put it
# behind a TLS proxy and set secure_cookies = true.
# [tls]
# cert_file = "/etc/custos/tls/cert.pem"
# key_file = "/etc/custos/tls/key.pem"

# Notifications of alerts by e-mail and webhook. Each alert raised, acknowledged or resolved is
# stored for notification in the transaction that changed it; deliveries are retried with
# backoff (across restarts) until they succeed or `give_up_after_secs` passes.
[notifications]
# How often the notifier looks for due deliveries when nothing wakes it, in milliseconds.
poll_interval_ms = 1000
# Wait after the first failed try, in milliseconds; it doubles with every further failure...
retry_initial_ms = 1000
# ...up to this, in milliseconds.
retry_max_ms = 300000
# A delivery not done this many seconds after the alert changed raises `notification_failed`.
failed_alert_after_secs = 900
# A delivery still failing after this many seconds is given up (state `failed`; 7 days).
give_up_after_secs = 604800

# E-mail over SMTP. No host: no e-mail. Messages are in Chinese and English and never contain a
# carrier's title (level, control number and place only). Alarms are sent at once; reminders
# (overdue sign-outs, low-severity findings) as one daily digest per recipient.
[smtp]
host = ""
# 587 for STARTTLS, 465 for implicit TLS, 25 for plain.
port = 587
# "starttls" (required), "implicit" (TLS from the first byte) or "none" (plain, local relays).
tls = "starttls"
# PEM file of extra CA certificates to trust (besides the web PKI roots); "" for none.
ca_file = ""
# Authentication (PLAIN/LOGIN over the TLS connection); empty username: none.
username = ""
password = ""
# The sender address.
from = "custos@localhost"
# The name the server gives in EHLO.
hello_name = "custos"
# Seconds to wait for the SMTP server before a try counts as failed.
timeout_secs = 10
# Hour of the day (UTC) at which the daily digest of reminders is sent.
digest_hour_utc = 7

# Addresses of each role, used by routes' "role:NAME" entries.
[smtp.roles]
# security_officer = ["security@example.org"]
# guard = ["guardroom@example.org"]

# Routes: alerts of `kinds` (all when empty) go to `to` (addresses and "role:NAME").
# [[smtp.routes]]
# kinds = ["unauthorized_removal", "reader_silent", "reader_fault", "device_auth_failed"]
# to = ["role:security_officer", "role:guard"]

# Webhooks: each alert change is POSTed as JSON to `url` with the headers `custos-delivery`
# (a stable id per delivery: de-duplicate by it; delivery is at least once),
# `custos-event` (alert.raised, alert.acknowledged, alert.resolved) and `custos-signature`
# (`sha256=` and the hex HMAC-SHA256 of the body under `secret`). None by default.
# [[webhooks]]
# name = "soc"                      # shown in the delivery list; unique
# url = "http://soc.example.org:8080/custos"
# secret = "a long random string"
# kinds = []                        # alert kinds sent; empty = all
"#;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Decommissioning years per person category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Decommissioning {
    /// Core staff (核心), default 3.
    pub core_years: u32,
    /// Important staff (重要), default 2.
    pub important_years: u32,
    /// General staff (一般), default 1.
    pub general_years: u32,
}

impl Default for Decommissioning {
    fn default() -> Self {
        Decommissioning {
            core_years: 3,
            important_years: 2,
            general_years: 1,
        }
    }
}

impl From<Decommissioning> for DecommissioningPolicy {
    fn from(d: Decommissioning) -> Self {
        DecommissioningPolicy {
            core_years: d.core_years,
            important_years: d.important_years,
            general_years: d.general_years,
        }
    }
}

/// `[loans]`: loan limits and the overdue-to-missing escalation, per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loans {
    /// Longest TS loan in days, default 7.
    pub max_days_ts: u32,
    /// Longest S loan in days, default 30.
    pub max_days_s: u32,
    /// Longest C loan in days, default 90.
    pub max_days_c: u32,
    /// Hours after the due time an overdue TS carrier becomes missing, default 24.
    pub missing_after_hours_ts: u32,
    /// The same for S, default 72.
    pub missing_after_hours_s: u32,
    /// The same for C, default 168.
    pub missing_after_hours_c: u32,
}

impl Default for Loans {
    fn default() -> Self {
        Loans {
            max_days_ts: 7,
            max_days_s: 30,
            max_days_c: 90,
            missing_after_hours_ts: 24,
            missing_after_hours_s: 72,
            missing_after_hours_c: 168,
        }
    }
}

impl Loans {
    fn check(&self) -> Result<(), (&'static str, &'static str)> {
        for (key, days) in [
            ("loans.max_days_ts", self.max_days_ts),
            ("loans.max_days_s", self.max_days_s),
            ("loans.max_days_c", self.max_days_c),
        ] {
            if !(1..=365).contains(&days) {
                return Err((key, "must be 1 to 365 days"));
            }
        }
        for (key, hours) in [
            ("loans.missing_after_hours_ts", self.missing_after_hours_ts),
            ("loans.missing_after_hours_s", self.missing_after_hours_s),
            ("loans.missing_after_hours_c", self.missing_after_hours_c),
        ] {
            if !(1..=8760).contains(&hours) {
                return Err((key, "must be 1 to 8760 hours"));
            }
        }
        Ok(())
    }
}

impl From<Loans> for LoanPolicy {
    fn from(l: Loans) -> Self {
        let days = |d: u32| i64::from(d) * DAY_MS;
        let hours = |h: u32| i64::from(h) * HOUR_MS;
        LoanPolicy {
            max_loan_ms: [days(l.max_days_ts), days(l.max_days_s), days(l.max_days_c)],
            missing_after_ms: [
                hours(l.missing_after_hours_ts),
                hours(l.missing_after_hours_s),
                hours(l.missing_after_hours_c),
            ],
        }
    }
}

/// The `[audit]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// File every signed audit head is appended to (see `audit::anchor`); default none.
    pub anchor_file: Option<PathBuf>,
}

/// `[tls]`: the server's certificate chain and key (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key.
    pub key_file: PathBuf,
}

/// `[notifications]`: the notifier's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// Milliseconds between looks for due deliveries, default 1000.
    pub poll_interval_ms: u64,
    /// First retry wait in milliseconds, default 1000.
    pub retry_initial_ms: u64,
    /// Longest retry wait in milliseconds, default 300000.
    pub retry_max_ms: u64,
    /// Seconds before an undone delivery raises `notification_failed`, default 900.
    pub failed_alert_after_secs: u64,
    /// Seconds before a failing delivery is given up, default 604800.
    pub give_up_after_secs: u64,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            poll_interval_ms: 1000,
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            failed_alert_after_secs: 900,
            give_up_after_secs: 7 * 24 * 3600,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Implicit,
    /// No TLS (a local relay only).
    None,
}

/// One `[[smtp.routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailRoute {
    /// Alert kinds; empty = all.
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
    /// Addresses and `role:NAME` entries.
    pub to: Vec<String>,
}

/// `[smtp]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// The SMTP server; empty = no e-mail.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: SmtpTls,
    /// Extra CA certificates (PEM); empty = none.
    pub ca_file: PathBuf,
    /// Login; empty = no authentication.
    pub username: String,
    /// Password (redacted in `Debug`).
    pub password: String,
    /// Sender address.
    pub from: String,
    /// EHLO name.
    pub hello_name: String,
    /// Seconds before a try fails.
    pub timeout_secs: u64,
    /// Hour (UTC) of the daily digest.
    pub digest_hour_utc: u32,
    /// Addresses per role name.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Routing rules.
    pub routes: Vec<MailRoute>,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: String::new(),
            port: 587,
            tls: SmtpTls::Starttls,
            ca_file: PathBuf::new(),
            username: String::new(),
            password: String::new(),
            from: "custos@localhost".to_owned(),
            hello_name: "custos".to_owned(),
            timeout_secs: 10,
            digest_hour_utc: 7,
            roles: BTreeMap::new(),
            routes: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .field("hello_name", &self.hello_name)
            .field("timeout_secs", &self.timeout_secs)
            .field("digest_hour_utc", &self.digest_hour_utc)
            .field("roles", &self.roles)
            .field("routes", &self.routes)
            .finish()
    }
}

/// One `[[webhooks]]` entry.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Unique name (the delivery target shown to the security officer).
    pub name: String,
    /// `http://HOST[:PORT]/PATH`.
    pub url: String,
    /// HMAC-SHA256 key of the `custos-signature` header (redacted in `Debug`).
    pub secret: String,
    /// Alert kinds sent; empty = all.
    #[serde(default)]
    pub kinds: Vec<AlertKind>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("kinds", &self.kinds)
            .finish()
    }
}

/// `[gate]`: rules of the gates.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// The carrier levels whose exits need the borrower's badge read (default TS and S); see
    /// `domain::gate`'s badge rule.
    pub badge_required: Vec<Level>,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            badge_required: vec![Level::TopSecret, Level::Secret],
        }
    }
}

/// The whole server configuration. See [`EXAMPLE`] for every key and its default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of `custos.db` and `server.key`.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Session lifetime in seconds.
    pub session_ttl_secs: u64,
    /// Whether the session cookie carries `Secure`.
    pub secure_cookies: bool,
    /// Request body limit in bytes.
    pub body_limit_bytes: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter directive.
    pub log_filter: String,
    /// Seconds between audit head signatures.
    pub audit_head_interval_secs: u64,
    /// Seconds after which a silent reader is an alarm.
    pub supervision_interval_secs: u64,
    /// Milliseconds between sweeps, default 2000.
    pub sweep_interval_ms: u64,
    /// Seconds between reminders of an overdue sign-out, default 3600.
    pub overdue_reminder_interval_secs: u64,
    /// Milliseconds a cabinet removal waits for a sign-out before it is an alert, default 30000.
    pub cabinet_removal_grace_ms: u64,
    /// Maximum write jobs per transaction.
    pub write_batch_max: usize,
    /// Read connections in the pool.
    pub read_connections: usize,
    /// Minimum travel time between two devices, in seconds, below which the same tag at both
    /// is a suspected clone (0 = off). Default 30.
    pub tag_clone_min_travel_secs: u64,
    /// Lifetime of a signed gate policy, in seconds. Default 600.
    pub policy_ttl_secs: u64,
    /// GS1 Company Prefix of proposed carrier EPCs (GIAI-96), 6 to 12 digits. Default
    /// `0614141` (GS1's example prefix).
    pub label_company_prefix: String,
    /// Gate rules.
    pub gate: GateSettings,
    /// Decommissioning periods.
    pub decommissioning: Decommissioning,
    /// Loan limits and overdue escalation per level.
    pub loans: Loans,
    /// Where signed audit heads go besides the database.
    pub audit: AuditSettings,
    /// The header a trusted reverse proxy names the client in (off by default).
    pub trusted_proxy_header: Option<String>,
    /// The addresses of the trusted reverse proxies.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A separate listen address for `/metrics` (and `/healthz`).
    pub metrics_listen: Option<SocketAddr>,
    /// A bearer token that opens `/metrics` on the public port.
    pub metrics_token: Option<String>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<Tls>,
    /// The notifier's timing.
    pub notifications: Notifications,
    /// E-mail.
    pub smtp: Smtp,
    /// Webhooks.
    pub webhooks: Vec<Webhook>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/custos"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            session_ttl_secs: 8 * 3600,
            secure_cookies: false,
            body_limit_bytes: 64 * 1024,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            audit_head_interval_secs: 60,
            supervision_interval_secs: 6,
            sweep_interval_ms: 2000,
            overdue_reminder_interval_secs: 3600,
            cabinet_removal_grace_ms: 30_000,
            write_batch_max: 64,
            read_connections: 4,
            tag_clone_min_travel_secs: 30,
            policy_ttl_secs: 600,
            label_company_prefix: "0614141".to_owned(),
            gate: GateSettings::default(),
            decommissioning: Decommissioning::default(),
            loans: Loans::default(),
            audit: AuditSettings::default(),
            trusted_proxy_header: None,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            metrics_token: None,
            tls: None,
            notifications: Notifications::default(),
            smtp: Smtp::default(),
            webhooks: Vec::new(),
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or a wrong type; the message names the
    /// line and the key.
    #[error("{origin}: {message}")]
    Parse {
        /// Where the text came from.
        origin: String,
        /// toml's message (with line, column and key).
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// Where the text came from.
        origin: String,
        /// The offending key.
        key: &'static str,
        /// What is allowed.
        reason: &'static str,
    },
}

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parse and check configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: one_line_message(text, &e),
        })?;
        config
            .check()
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: origin.to_owned(),
                key,
                reason,
            })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), (&'static str, &'static str)> {
        if !(60..=7 * 24 * 3600).contains(&self.session_ttl_secs) {
            return Err(("session_ttl_secs", "must be 60 to 604800"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(("body_limit_bytes", "must be 1024 to 67108864"));
        }
        if self.audit_head_interval_secs == 0 {
            return Err(("audit_head_interval_secs", "must be at least 1"));
        }
        if self.supervision_interval_secs == 0 {
            return Err(("supervision_interval_secs", "must be at least 1"));
        }
        if !(100..=3_600_000).contains(&self.sweep_interval_ms) {
            return Err(("sweep_interval_ms", "must be 100 to 3600000"));
        }
        if !(60..=7 * 24 * 3600).contains(&self.overdue_reminder_interval_secs) {
            return Err(("overdue_reminder_interval_secs", "must be 60 to 604800"));
        }
        if self.cabinet_removal_grace_ms > 86_400_000 {
            return Err(("cabinet_removal_grace_ms", "must be 0 to 86400000"));
        }
        if !(1..=10_000).contains(&self.write_batch_max) {
            return Err(("write_batch_max", "must be 1 to 10000"));
        }
        if !(1..=64).contains(&self.read_connections) {
            return Err(("read_connections", "must be 1 to 64"));
        }
        if self.tag_clone_min_travel_secs > 24 * 3600 {
            return Err(("tag_clone_min_travel_secs", "must be 0 to 86400"));
        }
        if !(10..=7 * 24 * 3600).contains(&self.policy_ttl_secs) {
            return Err(("policy_ttl_secs", "must be 10 to 604800"));
        }
        let prefix = &self.label_company_prefix;
        if !(6..=12).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(("label_company_prefix", "must be 6 to 12 digits"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_filter).is_err() {
            return Err(("log_filter", "is not a valid filter directive"));
        }
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if self
            .trusted_proxy_header
            .as_ref()
            .is_some_and(|h| h.is_empty() || !h.bytes().all(token_char))
        {
            return Err(("trusted_proxy_header", "must be an HTTP header name"));
        }
        if self.trusted_proxy_header.is_some() && self.trusted_proxies.is_empty() {
            return Err((
                "trusted_proxies",
                "must name the proxies' addresses when trusted_proxy_header is set",
            ));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| !(16..=256).contains(&t.len()))
        {
            return Err(("metrics_token", "must be 16 to 256 characters"));
        }
        if self.metrics_listen.is_some_and(|m| m == self.listen) {
            return Err(("metrics_listen", "must differ from listen"));
        }
        let d = &self.decommissioning;
        for (key, years) in [
            ("decommissioning.core_years", d.core_years),
            ("decommissioning.important_years", d.important_years),
            ("decommissioning.general_years", d.general_years),
        ] {
            if !(1..=3).contains(&years) {
                return Err((key, "must be 1 to 3 years"));
            }
        }
        self.loans.check()?;
        self.check_notifications()?;
        Ok(())
    }

    fn check_notifications(&self) -> Result<(), (&'static str, &'static str)> {
        let n = &self.notifications;
        if !(10..=60_000).contains(&n.poll_interval_ms) {
            return Err(("notifications.poll_interval_ms", "must be 10 to 60000"));
        }
        if !(10..=3_600_000).contains(&n.retry_initial_ms) {
            return Err(("notifications.retry_initial_ms", "must be 10 to 3600000"));
        }
        if n.retry_max_ms < n.retry_initial_ms || n.retry_max_ms > 86_400_000 {
            return Err((
                "notifications.retry_max_ms",
                "must be retry_initial_ms to 86400000",
            ));
        }
        if !(1..=7 * 24 * 3600).contains(&n.failed_alert_after_secs) {
            return Err((
                "notifications.failed_alert_after_secs",
                "must be 1 to 604800",
            ));
        }
        if !(60..=90 * 24 * 3600).contains(&n.give_up_after_secs) {
            return Err(("notifications.give_up_after_secs", "must be 60 to 7776000"));
        }
        let smtp = &self.smtp;
        if smtp.digest_hour_utc > 23 {
            return Err(("smtp.digest_hour_utc", "must be 0 to 23"));
        }
        if !(1..=600).contains(&smtp.timeout_secs) {
            return Err(("smtp.timeout_secs", "must be 1 to 600"));
        }
        let is_address =
            |a: &str| a.parse::<lettre::Address>().is_ok() && !a.contains(['\r', '\n']);
        if !is_address(&smtp.from) {
            return Err(("smtp.from", "must be an e-mail address"));
        }
        for addresses in smtp.roles.values() {
            if !addresses.iter().all(|a| is_address(a)) {
                return Err(("smtp.roles", "every entry must be an e-mail address"));
            }
        }
        for route in &smtp.routes {
            let ok = route.to.iter().all(|to| match to.strip_prefix("role:") {
                Some(role) => Role::from_name(role).is_some(),
                None => is_address(to),
            });
            if !ok {
                return Err((
                    "smtp.routes.to",
                    "every entry must be an e-mail address or role:NAME of a known role",
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for hook in &self.webhooks {
            let plain = hook
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if hook.name.is_empty() || !plain || !names.insert(hook.name.as_str()) {
                return Err((
                    "webhooks.name",
                    "must be unique letters, digits, '-' or '_'",
                ));
            }
            if !hook.url.starts_with("http://") || hook.url.parse::<hyper::Uri>().is_err() {
                return Err(("webhooks.url", "must be an http:// URL"));
            }
            if hook.secret.len() < 16 {
                return Err(("webhooks.secret", "must be at least 16 characters"));
            }
        }
        Ok(())
    }
}

/// toml's error on one line (its `Display` draws the offending line over several):
/// `line L, column C: KEY: what is wrong`, the key added when the message does not name it
/// (a value of the wrong type). A command-line error is one line (issue #9).
fn one_line_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                && !message.contains(*k)
        });
    match key {
        Some(key) => format!("line {line}, column {column}: {key}: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_example_parses_back_to_the_defaults() {
        assert_eq!(
            Config::parse(EXAMPLE, "example").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_example_shows_the_commented_keys_and_they_parse() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| {
                for key in [
                    "# trusted_proxy_header",
                    "# metrics_listen",
                    "# metrics_token",
                    "# [tls]",
                    "# cert_file",
                    "# key_file",
                ] {
                    if l.starts_with(key) {
                        return l.trim_start_matches("# ").to_owned();
                    }
                }
                l.to_owned()
            })
            .map(|l| {
                if l == "trusted_proxies = []" {
                    "trusted_proxies = [\"10.0.0.1\"]".to_owned()
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = Config::parse(&uncommented, "example").unwrap();
        assert_eq!(
            config.tls.unwrap().cert_file,
            PathBuf::from("/etc/custos/tls/cert.pem")
        );
        assert_eq!(config.metrics_listen.unwrap().port(), 9090);
        assert!(config.metrics_token.is_some());
        assert_eq!(
            config.trusted_proxy_header.as_deref(),
            Some("X-Forwarded-For")
        );
    }

    #[test]
    fn notification_settings_parse_and_secrets_are_redacted() {
        let text = "[smtp]\nhost = \"mail.test\"\npassword = \"hunter2hunter2\"\n\
            [smtp.roles]\nguard = [\"g@x.test\"]\n\
            [[smtp.routes]]\nkinds = [\"reader_silent\"]\nto = [\"role:guard\", \"a@x.test\"]\n\
            [[webhooks]]\nname = \"soc\"\nurl = \"http://127.0.0.1:9/h\"\n\
            secret = \"s3cret-s3cret-s3cret\"\n";
        let config = Config::parse(text, "t").unwrap();
        assert_eq!(config.smtp.routes[0].kinds, [AlertKind::ReaderSilent]);
        assert_eq!(config.smtp.roles["guard"], ["g@x.test"]);
        assert_eq!(config.webhooks[0].name, "soc");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn the_gate_badge_rule_is_per_level_with_ts_and_s_by_default() {
        assert_eq!(
            Config::default().gate.badge_required,
            [Level::TopSecret, Level::Secret]
        );
        assert!(EXAMPLE.contains("\n[gate]\n"));
        assert!(EXAMPLE.contains("\nbadge_required = [\"TS\", \"S\"]\n"));
        let config = Config::parse("[gate]\nbadge_required = [\"TS\"]\n", "t").unwrap();
        assert_eq!(config.gate.badge_required, [Level::TopSecret]);
        let config = Config::parse("[gate]\nbadge_required = []\n", "t").unwrap();
        assert!(config.gate.badge_required.is_empty());
        let err = Config::parse("[gate]\nbadge_required = [\"X\"]\n", "t").unwrap_err();
        assert!(err.to_string().contains("badge_required"), "{err}");
    }

    #[test]
    fn an_empty_file_means_all_defaults() {
        assert_eq!(Config::parse("", "empty").unwrap(), Config::default());
    }

    #[test]
    fn settings_override_defaults() {
        let text = "listen = \"0.0.0.0:9000\"\nlog_format = \"json\"\n[decommissioning]\ngeneral_years = 2\n";
        let config = Config::parse(text, "t").unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.decommissioning.general_years, 2);
        assert_eq!(config.decommissioning.core_years, 3);
        let config = Config::parse("[audit]\nanchor_file = \"/mnt/a/heads\"\n", "t").unwrap();
        assert_eq!(
            config.audit.anchor_file.as_deref(),
            Some(Path::new("/mnt/a/heads"))
        );
        assert!(EXAMPLE.contains("[audit]\n") && EXAMPLE.contains("# anchor_file = "));
    }

    #[test]
    fn an_unknown_key_fails_with_its_line_and_name() {
        let text = "listen = \"127.0.0.1:1\"\n\nsesion_ttl_secs = 5\n";
        let err = Config::parse(text, "custos.toml").unwrap_err().to_string();
        assert!(err.contains("custos.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("sesion_ttl_secs"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_a_table_is_refused_too() {
        let err = Config::parse("[decommissioning]\ncore = 3\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("core"), "{err}");
    }

    #[test]
    fn a_wrong_type_fails_with_its_line_and_name() {
        let err = Config::parse("log_format = \"xml\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("xml"), "{err}");
        let err = Config::parse("\nlisten = 8080\n", "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("listen"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        for (text, key) in [
            ("session_ttl_secs = 1", "session_ttl_secs"),
            ("body_limit_bytes = 0", "body_limit_bytes"),
            ("read_connections = 0", "read_connections"),
            ("sweep_interval_ms = 10", "sweep_interval_ms"),
            (
                "overdue_reminder_interval_secs = 5",
                "overdue_reminder_interval_secs",
            ),
            (
                "cabinet_removal_grace_ms = 86400001",
                "cabinet_removal_grace_ms",
            ),
            (
                "tag_clone_min_travel_secs = 90000",
                "tag_clone_min_travel_secs",
            ),
            ("policy_ttl_secs = 1", "policy_ttl_secs"),
            ("label_company_prefix = \"12345\"", "label_company_prefix"),
            ("label_company_prefix = \"06141A1\"", "label_company_prefix"),
            ("[smtp]\nfrom = \"nobody\"", "smtp.from"),
            ("[smtp]\ndigest_hour_utc = 24", "smtp.digest_hour_utc"),
            ("[[smtp.routes]]\nto = [\"role:janitor\"]", "smtp.routes.to"),
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"",
                "webhooks.url",
            ),
            (
                "[[webhooks]]\nname = \"a\"\nurl = \"http://x/\"\nsecret = \"short\"",
                "webhooks.secret",
            ),
            (
                "[[webhooks]]\nname = \"a b\"\nurl = \"http://x/\"\nsecret = \"0123456789abcdef\"",
                "webhooks.name",
            ),
            (
                "[notifications]\nretry_initial_ms = 5000\nretry_max_ms = 1000",
                "notifications.retry_max_ms",
            ),
            (
                "[decommissioning]\ncore_years = 4",
                "decommissioning.core_years",
            ),
            ("metrics_token = \"short\"", "metrics_token"),
            (
                "trusted_proxy_header = \"X-Forwarded-For\"",
                "trusted_proxies",
            ),
            (
                "trusted_proxy_header = \"bad header\"",
                "trusted_proxy_header",
            ),
        ] {
            match Config::parse(text, "t") {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
