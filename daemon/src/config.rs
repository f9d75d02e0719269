//! The daemon's TOML configuration (INTERFACES.md, "Daemon configuration"), validated at start.
//!
//! Loading is two steps. First serde reads the file into raw structs with
//! `deny_unknown_fields` everywhere, so a misspelt key fails with its line and column. Then
//! [`Config::parse`] checks every value and resolves defaults into the typed [`Config`]; every
//! problem found is reported at once, each naming its key (`readers[0].inner_antennas`) and the
//! reason. Nothing is guessed: a bad or ambiguous file refuses to start the daemon.
//!
//! Checks that look at the machine rather than the file are separate, because `run` and `check`
//! treat them differently: [`Config::missing_ports`] (a reader's serial device does not exist:
//! `check` fails, `run` starts anyway and the reader reports `serial_lost` until it appears, so
//! the server learns which reader is missing instead of hearing nothing) and
//! [`Config::device_key`] (the key file must load: both fail).
//!
//! Relative paths (`key_file`, `data_dir`, reader and gate I/O ports) are relative to the
//! directory of the configuration file, so a unit file can start the daemon from anywhere.
//!
//! The reader drivers and the gate I/O have their own settings types; this module exposes plain
//! values ([`ReaderConfig::antennas_in_order`], [`GateIoConfig::map`], ...) for the daemon's
//! start-up code to build them.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use custos_protocol::chafon::InventoryForm;
use custos_protocol::modbus_map::GateIoMap;
use custos_protocol::uplink::{MAX_BATCH_EVENTS, MAX_ID_CHARS, MAX_READERS};
use serde::{Deserialize, Deserializer};

use crate::keys::{DeviceKey, KeyError, PublicKey};
use crate::model::ReaderName;
use crate::readers::Protocol;

/// The annotated example configuration of a gate that `custosd print-config` prints. It parses
/// (tested) and its daemon sections spell out the defaults.
pub const EXAMPLE_GATE: &str = include_str!("../examples/gate.toml");

/// The highest antenna number a reader may be configured with.
pub const MAX_ANTENNA: u8 = 8;

/// The highest UHF output power, in dBm, the 0xA0 family accepts (the CHAFON family stops at 30).
pub const MAX_POWER_DBM: u8 = 33;

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, a missing key, or a value of the wrong
    /// type (from serde; `line` and `column` are 1-based, 0 when unknown).
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The configuration file.
        path: PathBuf,
        /// The line of the offending key or value.
        line: usize,
        /// The column of the offending key or value.
        column: usize,
        /// What is wrong (names the key).
        message: String,
    },
    /// Values are out of range or contradict each other.
    #[error("{}: {}", path.display(), ProblemList(problems))]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// The key file does not load.
    #[error("{}: key_file: {source}", path.display())]
    Key {
        /// The configuration file.
        path: PathBuf,
        /// Why the key did not load (names the key file).
        source: KeyError,
    },
}

/// One invalid value: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key's path, e.g. `readers[0].port` or `gate_io.unit`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// What the device is, inferred from its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// At least one reader has inner and outer antennas: passages with a direction.
    Gate,
    /// UHF readers without sides: inventory snapshots of what is inside.
    Cabinet,
    /// Only scanners (barcode, EM4100 card, flat Modbus card reader): scans.
    Desk,
}

/// Where a reader's antennas point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A gate reader: antennas on the secure (inner) and public (outer) side.
    Gate {
        /// Secure-side antennas, 1-based.
        inner: Vec<u8>,
        /// Public-side antennas, 1-based.
        outer: Vec<u8>,
    },
    /// A cabinet reader: every antenna is inside the cabinet.
    Cabinet {
        /// The antennas, 1-based.
        antennas: Vec<u8>,
    },
    /// A scanner without antennas (barcode, EM4100, flat Modbus card reader).
    Scanner,
}

/// One validated `[[readers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderConfig {
    /// The reader's name (unique in the file; appears in every event).
    pub name: ReaderName,
    /// Its protocol.
    pub protocol: Protocol,
    /// The serial device (resolved against the configuration file's directory).
    pub port: PathBuf,
    /// Serial speed.
    pub baud: u32,
    /// Bus address (0 for protocols without one; see [`Protocol::default_address`]).
    pub address: u8,
    /// Its antennas and their sides.
    pub placement: Placement,
    /// UHF output power to set at start, if configured.
    pub power_dbm: Option<u8>,
    /// A command unanswered this long counts as no reply (default 500 ms).
    pub reply_timeout: Duration,
    /// Pause between inventory rounds or polls (default 50 ms).
    pub poll_interval: Duration,
    /// The longest wait between reconnection attempts (default 5 s).
    pub backoff_max: Duration,
    /// The CHAFON inventory reply layout, if fixed (`None`: detect per reply).
    pub chafon_form: Option<InventoryForm>,
    /// A network reader's `host:port` (`protocol = "llrp"`, `address = "host[:port]"`, port
    /// 5084 by default); `None` for serial readers. A network reader has an empty `port` and
    /// `baud` 0: the two kinds of transport share this one shape.
    pub network: Option<String>,
    /// The keepalive period asked of a network reader (`keepalive_ms`, default 1000);
    /// three periods without a message from it are a fault.
    pub keepalive: Duration,
    /// An LLRP gate reader's own I/O, instead of a `[gate_io]` module: GPOs driving the alarm
    /// light and sounder, GPIs wired to the photo-eyes (normally closed: high = beam intact).
    pub reader_io: ReaderIo,
}

/// `alarm_gpo`, `sounder_gpo`, `inner_beam_gpi`, `outer_beam_gpi` of an LLRP reader (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderIo {
    /// The GPO of the alarm light.
    pub alarm_gpo: Option<u16>,
    /// The GPO of the sounder.
    pub sounder_gpo: Option<u16>,
    /// The GPI of the inner (secure side) photo-eye.
    pub inner_beam_gpi: Option<u16>,
    /// The GPI of the outer (public side) photo-eye.
    pub outer_beam_gpi: Option<u16>,
}

impl ReaderIo {
    /// Whether the reader drives the alarm.
    pub fn drives_alarm(&self) -> bool {
        self.alarm_gpo.is_some() || self.sounder_gpo.is_some()
    }

    /// Whether both photo-eyes are wired to the reader.
    pub fn has_beams(&self) -> bool {
        self.inner_beam_gpi.is_some() && self.outer_beam_gpi.is_some()
    }
}

impl ReaderConfig {
    /// The antennas in inventory order: a gate's inner then outer antennas, a cabinet's as
    /// configured, none for a scanner.
    pub fn antennas_in_order(&self) -> Vec<u8> {
        match &self.placement {
            Placement::Gate { inner, outer } => inner.iter().chain(outer).copied().collect(),
            Placement::Cabinet { antennas } => antennas.clone(),
            Placement::Scanner => Vec::new(),
        }
    }

    /// The secure-side antennas (empty unless a gate reader).
    pub fn inner_antennas(&self) -> &[u8] {
        match &self.placement {
            Placement::Gate { inner, .. } => inner,
            _ => &[],
        }
    }

    /// The public-side antennas (empty unless a gate reader).
    pub fn outer_antennas(&self) -> &[u8] {
        match &self.placement {
            Placement::Gate { outer, .. } => outer,
            _ => &[],
        }
    }
}

/// How the gate I/O module is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateIoTransport {
    /// Modbus TCP.
    Tcp(SocketAddr),
    /// Modbus RTU on a serial line.
    Rtu {
        /// The serial device.
        port: PathBuf,
        /// Serial speed (default 9600).
        baud: u32,
    },
}

/// The validated `[gate_io]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateIoConfig {
    /// The link.
    pub transport: GateIoTransport,
    /// The Modbus unit id (default 1).
    pub unit: u8,
    /// Coil and input addresses (absent optional ones: not fitted).
    pub map: GateIoMap,
    /// One Modbus request and its reply (default 500 ms).
    pub call_timeout: Duration,
}

/// `[uplink]`: uploads to the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// Events per signed batch, 1..=256 (default 256).
    pub batch_max: usize,
    /// First wait after a failed upload, doubling per failure (default 250 ms).
    pub retry_min_ms: u64,
    /// The longest wait between upload attempts (default 30 s).
    pub retry_max_ms: u64,
    /// One HTTP request, answer included (default 2 s).
    pub request_timeout_ms: u64,
    /// Heartbeat period (default 2 s).
    pub heartbeat_interval_ms: u64,
    /// How long an exit waits for the server's verdict before deciding locally (default 300 ms);
    /// no wait while the server is known down (see `gate`).
    pub verdict_deadline_ms: u64,
    /// The longest time between gate policy fetches (default 60 s).
    pub policy_refresh_ms: u64,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            batch_max: MAX_BATCH_EVENTS,
            retry_min_ms: 250,
            retry_max_ms: 30_000,
            request_timeout_ms: 2_000,
            heartbeat_interval_ms: 2_000,
            verdict_deadline_ms: 300,
            policy_refresh_ms: 60_000,
        }
    }
}

impl UplinkConfig {
    /// `retry_min_ms` as a duration.
    pub fn retry_min(&self) -> Duration {
        Duration::from_millis(self.retry_min_ms)
    }
    /// `retry_max_ms` as a duration.
    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }
    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    /// `heartbeat_interval_ms` as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    /// `verdict_deadline_ms` as a duration.
    pub fn verdict_deadline(&self) -> Duration {
        Duration::from_millis(self.verdict_deadline_ms)
    }
    /// `policy_refresh_ms` as a duration.
    pub fn policy_refresh(&self) -> Duration {
        Duration::from_millis(self.policy_refresh_ms)
    }
}

/// `[outbox]`: the on-disk queue of unsent events.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Unsent events kept; when full, new events are refused (default 1 000 000).
    pub max_events: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_events: 1_000_000,
        }
    }
}

/// `[alarm]`: what a local alarm does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmConfig {
    /// How long a local alarm sounds (default 10 s).
    pub duration_ms: u64,
    /// Also lock the door (needs `gate_io.lock_coil`; default false).
    pub lock_door: bool,
}

impl Default for AlarmConfig {
    fn default() -> Self {
        AlarmConfig {
            duration_ms: 10_000,
            lock_door: false,
        }
    }
}

impl AlarmConfig {
    /// `duration_ms` as a duration.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }
}

/// `[smoothing]`: turning raw reads into presence and passages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmoothingConfig {
    /// Reads before a tag counts as present (default 2).
    pub min_reads: u32,
    /// A tag unseen this long has gone (default 1500 ms).
    pub holdoff_ms: u64,
    /// Tags crossing a gate within this long of a passage's first crossing join that passage;
    /// later ones start another (default 2000 ms).
    pub passage_gap_ms: u64,
}

impl Default for SmoothingConfig {
    fn default() -> Self {
        SmoothingConfig {
            min_reads: 2,
            holdoff_ms: 1_500,
            passage_gap_ms: 2_000,
        }
    }
}

/// The validated configuration. Holds no secret (the key stays in its file until
/// [`Config::device_key`] loads it), so `Debug` may be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The device id as registered on the server.
    pub device_id: String,
    /// The server's base URL, `http://HOST:PORT` without a trailing slash.
    pub server: String,
    /// The device key file (resolved).
    pub key_file: PathBuf,
    /// The data directory (resolved); the outbox is `outbox.db` in it.
    pub data_dir: PathBuf,
    /// The pinned server key, if any.
    pub server_public_key: Option<PublicKey>,
    /// The readers, in file order.
    pub readers: Vec<ReaderConfig>,
    /// The gate I/O module, if any.
    pub gate_io: Option<GateIoConfig>,
    /// Upload settings.
    pub uplink: UplinkConfig,
    /// Outbox settings.
    pub outbox: OutboxConfig,
    /// Local alarm settings.
    pub alarm: AlarmConfig,
    /// Smoothing settings.
    pub smoothing: SmoothingConfig,
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Validates `text` as if read from `path` (which names the file in errors and anchors
    /// relative paths). Does not touch the file system.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map_or((0, 0), |span| line_column(text, span.start));
            let mut message = e.message().trim_end().to_owned();
            // serde names unknown and missing keys, but not the key of a value of the wrong
            // type; the key is on the value's line.
            if let Some(key) = line_key(text, line).filter(|k| !message.contains(k)) {
                message = format!("{key}: {message}");
            }
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message,
            }
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut problems = Problems::default();
        let config = raw.validate(path, base, &mut problems);
        if problems.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems: problems.0,
            })
        }
    }

    /// What the device is: a gate if any reader has sides, a cabinet if it has UHF readers,
    /// otherwise a desk.
    pub fn role(&self) -> Role {
        let placements = || self.readers.iter().map(|r| &r.placement);
        if placements().any(|p| matches!(p, Placement::Gate { .. })) {
            Role::Gate
        } else if placements().any(|p| matches!(p, Placement::Cabinet { .. })) {
            Role::Cabinet
        } else {
            Role::Desk
        }
    }

    /// The outbox database file.
    pub fn outbox_path(&self) -> PathBuf {
        self.data_dir.join(crate::outbox::FILE_NAME)
    }

    /// Loads the device key named by `key_file`.
    pub fn device_key(&self) -> Result<DeviceKey, ConfigError> {
        DeviceKey::load(&self.key_file).map_err(|source| ConfigError::Key {
            path: self.path.clone(),
            source,
        })
    }

    /// The serial devices named by readers (and an RTU gate I/O) that do not exist now.
    pub fn missing_ports(&self) -> Vec<Problem> {
        let readers = self
            .readers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.network.is_none())
            .map(|(i, r)| (format!("readers[{i}].port"), &r.port));
        let gate = self.gate_io.iter().filter_map(|g| match &g.transport {
            GateIoTransport::Rtu { port, .. } => Some(("gate_io.port".to_owned(), port)),
            GateIoTransport::Tcp(_) => None,
        });
        readers
            .chain(gate)
            .filter(|(_, port)| !port.exists())
            .map(|(key, port)| Problem {
                key,
                reason: format!("{} does not exist", port.display()),
            })
            .collect()
    }

    /// [`Config::missing_ports`] as an error naming this file, if any port is missing.
    pub fn check_ports(&self) -> Result<(), ConfigError> {
        let problems = self.missing_ports();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                path: self.path.clone(),
                problems,
            })
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The bare key assigned on 1-based line `line` (`key = value`), if that is what the line is.
fn line_key(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim();
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    bare.then_some(key)
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The file as serde reads it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    device_id: String,
    server: String,
    key_file: PathBuf,
    data_dir: PathBuf,
    #[serde(default)]
    server_public_key: Option<String>,
    #[serde(default)]
    readers: Vec<RawReader>,
    #[serde(default)]
    gate_io: Option<RawGateIo>,
    #[serde(default)]
    uplink: UplinkConfig,
    #[serde(default)]
    outbox: OutboxConfig,
    #[serde(default)]
    alarm: AlarmConfig,
    #[serde(default)]
    smoothing: SmoothingConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReader {
    name: String,
    protocol: Protocol,
    port: Option<PathBuf>,
    baud: Option<u32>,
    address: Option<RawAddress>,
    keepalive_ms: Option<u64>,
    alarm_gpo: Option<u16>,
    sounder_gpo: Option<u16>,
    inner_beam_gpi: Option<u16>,
    outer_beam_gpi: Option<u16>,
    inner_antennas: Option<Vec<u8>>,
    outer_antennas: Option<Vec<u8>>,
    antennas: Option<Vec<u8>>,
    power_dbm: Option<u8>,
    reply_timeout_ms: Option<u64>,
    poll_interval_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    chafon_form: Option<ChafonForm>,
}

/// A reader's `address`: a bus address (`1`) for serial readers, `"host:port"` for network
/// readers.
enum RawAddress {
    Bus(i64),
    Host(String),
}

impl<'de> Deserialize<'de> for RawAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bus address (0 to 255) or \"host:port\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawAddress, E> {
                Ok(RawAddress::Host(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawAddress, E> {
                Ok(RawAddress::Bus(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawAddress, E> {
                Ok(RawAddress::Bus(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` with the LLRP port added where missing.
fn network_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let default_port = custos_protocol::llrp::DEFAULT_PORT;
    if text.starts_with('[') && text.ends_with(']') || text.parse::<std::net::IpAddr>().is_ok() {
        let host = text.trim_start_matches('[').trim_end_matches(']');
        return match host.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(std::net::SocketAddr::new(ip, default_port).to_string()),
            Err(_) => Err(format!("{text:?} is not an IP address")),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) if p > 0 && !host.is_empty() && !host.contains(':') => Ok(text.to_owned()),
            _ => Err(format!("{text:?} is not host:port")),
        },
        None if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) =>
        {
            Ok(format!("{text}:{default_port}"))
        }
        None => Err(format!("{text:?} is not a host name")),
    }
}

/// `chafon_form`: `"18"` or `"288"` (a bare integer is accepted too).
#[derive(Clone, Copy)]
struct ChafonForm(InventoryForm);

impl<'de> Deserialize<'de> for ChafonForm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ChafonForm;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"18\" or \"288\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChafonForm, E> {
                match v {
                    "18" => Ok(ChafonForm(InventoryForm::Reader18)),
                    "288" => Ok(ChafonForm(InventoryForm::Reader288)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ChafonForm, E> {
                match v {
                    18 => Ok(ChafonForm(InventoryForm::Reader18)),
                    288 => Ok(ChafonForm(InventoryForm::Reader288)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum TransportKind {
    Tcp,
    Rtu,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateIo {
    transport: TransportKind,
    address: Option<String>,
    port: Option<PathBuf>,
    baud: Option<u32>,
    unit: Option<u8>,
    alarm_coil: Option<u16>,
    buzzer_coil: Option<u16>,
    lock_coil: Option<u16>,
    barrier_coil: Option<u16>,
    inner_beam_input: Option<u16>,
    outer_beam_input: Option<u16>,
    door_contact_input: Option<u16>,
    call_timeout_ms: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Validation: raw → typed, collecting every problem.

/// Whether `id` is a device id the server accepts: 1..=64 of `[A-Za-z0-9._-]`.
fn is_valid_device_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks `server` is `http://HOST[:PORT]` with at most a `/` path; returns it without the slash.
fn server_url(server: &str) -> Result<String, String> {
    let uri: hyper::Uri = server
        .parse()
        .map_err(|e| format!("{server:?} is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https is not supported; use http:// (every message is signed end to end)".into(),
            );
        }
        _ => return Err(format!("{server:?} is not an http:// URL")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{server:?} has no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(format!("{server:?} must be http://HOST:PORT"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{server:?} has a path; give only http://HOST:PORT (the daemon adds /api/v1/...)"
        ));
    }
    Ok(format!("http://{authority}"))
}

fn positive_ms(problems: &mut Problems, key: String, ms: u64) -> Duration {
    if ms == 0 {
        problems.add(key, "must be at least 1 ms");
    }
    Duration::from_millis(ms)
}

/// An antenna list: non-empty, each in 1..=MAX_ANTENNA, no repeats.
fn antenna_list(problems: &mut Problems, key: String, list: Vec<u8>) -> Vec<u8> {
    if list.is_empty() {
        problems.add(&key, "must name at least one antenna");
    }
    let mut seen = HashSet::new();
    for &a in &list {
        if !(1..=MAX_ANTENNA).contains(&a) {
            problems.add(&key, format!("antenna {a} is out of 1..={MAX_ANTENNA}"));
        } else if !seen.insert(a) {
            problems.add(&key, format!("antenna {a} is listed twice"));
        }
    }
    list
}

impl RawConfig {
    fn validate(self, path: &Path, base: &Path, problems: &mut Problems) -> Config {
        if !is_valid_device_id(&self.device_id) {
            problems.add(
                "device_id",
                format!(
                    "{:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
                    self.device_id
                ),
            );
        }
        let server = server_url(&self.server)
            .map_err(|reason| problems.add("server", reason))
            .unwrap_or_default();
        let server_public_key = match self.server_public_key.as_deref().map(str::parse) {
            None => None,
            Some(Ok(key)) => Some(key),
            Some(Err(e)) => {
                problems.add(
                    "server_public_key",
                    format!("{e}; expected standard base64 of 32 bytes"),
                );
                None
            }
        };
        for (key, p) in [("key_file", &self.key_file), ("data_dir", &self.data_dir)] {
            if p.as_os_str().is_empty() {
                problems.add(key, "must not be empty");
            }
        }

        if self.readers.is_empty() {
            problems.add("readers", "at least one [[readers]] table is needed");
        }
        if self.readers.len() > MAX_READERS {
            problems.add("readers", format!("more than {MAX_READERS} readers"));
        }
        let mut names = HashSet::new();
        let readers: Vec<ReaderConfig> = self
            .readers
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let reader = r.validate(i, base, problems);
                if !names.insert(reader.name.clone()) {
                    problems.add(
                        format!("readers[{i}].name"),
                        format!("{:?} is used by another reader", reader.name),
                    );
                }
                reader
            })
            .collect();

        let gate_io = self.gate_io.map(|g| g.validate(base, problems));
        let io_readers: Vec<usize> = readers
            .iter()
            .enumerate()
            .filter(|(_, r)| r.reader_io.drives_alarm() || r.reader_io.has_beams())
            .map(|(i, _)| i)
            .collect();
        if let (Some(i), true) = (io_readers.first(), gate_io.is_some()) {
            problems.add(
                format!("readers[{i}].alarm_gpo"),
                "a gate uses either a [gate_io] module or its reader's GPOs/GPIs, not both",
            );
        }
        if let Some(i) = io_readers.get(1) {
            problems.add(
                format!("readers[{i}].alarm_gpo"),
                "only one reader may drive the gate's alarm and photo-eyes",
            );
        }
        validate_uplink(&self.uplink, problems);
        if self.outbox.max_events == 0 {
            problems.add("outbox.max_events", "must be at least 1");
        }
        positive_ms(problems, "alarm.duration_ms".into(), self.alarm.duration_ms);
        if self.alarm.lock_door && gate_io.as_ref().is_none_or(|g| g.map.lock_coil.is_none()) {
            problems.add(
                "alarm.lock_door",
                "needs a [gate_io] table with a lock_coil",
            );
        }
        if self.smoothing.min_reads == 0 {
            problems.add("smoothing.min_reads", "must be at least 1");
        }
        positive_ms(
            problems,
            "smoothing.holdoff_ms".into(),
            self.smoothing.holdoff_ms,
        );
        positive_ms(
            problems,
            "smoothing.passage_gap_ms".into(),
            self.smoothing.passage_gap_ms,
        );

        Config {
            path: path.to_owned(),
            device_id: self.device_id,
            server,
            key_file: base.join(self.key_file),
            data_dir: base.join(self.data_dir),
            server_public_key,
            readers,
            gate_io,
            uplink: self.uplink,
            outbox: self.outbox,
            alarm: self.alarm,
            smoothing: self.smoothing,
        }
    }
}

fn validate_uplink(u: &UplinkConfig, problems: &mut Problems) {
    if !(1..=MAX_BATCH_EVENTS).contains(&u.batch_max) {
        problems.add(
            "uplink.batch_max",
            format!("must be in 1..={MAX_BATCH_EVENTS}"),
        );
    }
    for (key, ms) in [
        ("retry_min_ms", u.retry_min_ms),
        ("retry_max_ms", u.retry_max_ms),
        ("request_timeout_ms", u.request_timeout_ms),
        ("heartbeat_interval_ms", u.heartbeat_interval_ms),
        ("verdict_deadline_ms", u.verdict_deadline_ms),
        ("policy_refresh_ms", u.policy_refresh_ms),
    ] {
        positive_ms(problems, format!("uplink.{key}"), ms);
    }
    if u.retry_min_ms > u.retry_max_ms {
        problems.add("uplink.retry_min_ms", "is greater than uplink.retry_max_ms");
    }
}

impl RawReader {
    fn validate(self, i: usize, base: &Path, problems: &mut Problems) -> ReaderConfig {
        let key = |field: &str| format!("readers[{i}].{field}");
        let protocol = self.protocol;

        let name = self.name;
        if name.is_empty() || name.chars().count() > MAX_ID_CHARS {
            problems.add(key("name"), "must be 1 to 64 characters");
        } else if name.chars().any(char::is_control) {
            problems.add(key("name"), "must not contain control characters");
        }

        let mut network = None;
        let bus_address = if protocol.is_network() {
            for (field, given) in [("port", self.port.is_some()), ("baud", self.baud.is_some())] {
                if given {
                    problems.add(
                        key(field),
                        format!("{protocol} readers take address = \"host:port\" instead"),
                    );
                }
            }
            match self.address {
                Some(RawAddress::Host(text)) => match network_address(&text) {
                    Ok(a) => network = Some(a),
                    Err(e) => problems.add(key("address"), e),
                },
                Some(RawAddress::Bus(_)) => problems.add(
                    key("address"),
                    format!("{protocol} readers take address = \"host:port\", not a number"),
                ),
                None => problems.add(
                    key("address"),
                    format!("missing: {protocol} readers need address = \"host:port\""),
                ),
            }
            None
        } else {
            match &self.port {
                None => problems.add(key("port"), "missing: the serial device"),
                Some(p) if p.as_os_str().is_empty() => {
                    problems.add(key("port"), "must not be empty")
                }
                Some(_) => {}
            }
            match self.address {
                Some(RawAddress::Host(_)) => {
                    problems.add(
                        key("address"),
                        "a serial reader's address is a bus address (a number)",
                    );
                    None
                }
                Some(RawAddress::Bus(n)) => match u8::try_from(n) {
                    Ok(n) => Some(n),
                    Err(_) => {
                        problems.add(key("address"), "must be in 0..=255");
                        None
                    }
                },
                None => None,
            }
        };
        if self.keepalive_ms.is_some() && !protocol.is_network() {
            problems.add(key("keepalive_ms"), "only for network (llrp) readers");
        }
        let reader_io = ReaderIo {
            alarm_gpo: self.alarm_gpo,
            sounder_gpo: self.sounder_gpo,
            inner_beam_gpi: self.inner_beam_gpi,
            outer_beam_gpi: self.outer_beam_gpi,
        };
        for (field, value) in [
            ("alarm_gpo", reader_io.alarm_gpo),
            ("sounder_gpo", reader_io.sounder_gpo),
            ("inner_beam_gpi", reader_io.inner_beam_gpi),
            ("outer_beam_gpi", reader_io.outer_beam_gpi),
        ] {
            match value {
                Some(_) if !protocol.is_network() => problems.add(
                    key(field),
                    "only for llrp readers (use [gate_io] otherwise)",
                ),
                Some(0) => problems.add(key(field), "ports are numbered from 1"),
                _ => {}
            }
        }
        if reader_io.inner_beam_gpi.is_some() != reader_io.outer_beam_gpi.is_some() {
            problems.add(
                key("outer_beam_gpi"),
                "give both inner_beam_gpi and outer_beam_gpi, or neither",
            );
        }
        let keepalive = positive_ms(
            problems,
            key("keepalive_ms"),
            self.keepalive_ms.unwrap_or(1_000),
        );
        let baud = if protocol.is_network() {
            0
        } else {
            self.baud.unwrap_or(protocol.default_baud())
        };
        if baud == 0 && !protocol.is_network() {
            problems.add(key("baud"), "must be at least 1");
        }

        let address = match (protocol.default_address(), bus_address) {
            (None, Some(_)) => {
                problems.add(
                    key("address"),
                    format!("{protocol} readers have no address"),
                );
                0
            }
            (None, None) => 0,
            (Some(default), given) => {
                let address = given.unwrap_or(default);
                if protocol == Protocol::ModbusFlat && !(1..=247).contains(&address) {
                    problems.add(key("address"), "a Modbus RTU unit must be in 1..=247");
                }
                address
            }
        };

        let placement = if protocol.is_uhf() {
            match (self.inner_antennas, self.outer_antennas, self.antennas) {
                (Some(inner), Some(outer), None) => {
                    let inner = antenna_list(problems, key("inner_antennas"), inner);
                    let outer = antenna_list(problems, key("outer_antennas"), outer);
                    for a in inner.iter().filter(|a| outer.contains(a)) {
                        problems.add(
                            key("outer_antennas"),
                            format!("antenna {a} is also an inner antenna"),
                        );
                    }
                    Placement::Gate { inner, outer }
                }
                (None, None, antennas) => Placement::Cabinet {
                    antennas: antenna_list(
                        problems,
                        key("antennas"),
                        antennas.unwrap_or_else(|| vec![1]),
                    ),
                },
                (Some(_), None, _) => {
                    problems.add(
                        key("outer_antennas"),
                        "missing: a gate reader needs inner_antennas and outer_antennas",
                    );
                    Placement::Scanner
                }
                (None, Some(_), _) => {
                    problems.add(
                        key("inner_antennas"),
                        "missing: a gate reader needs inner_antennas and outer_antennas",
                    );
                    Placement::Scanner
                }
                (Some(_), Some(_), Some(_)) => {
                    problems.add(
                        key("antennas"),
                        "give either antennas (cabinet) or inner/outer_antennas (gate), not both",
                    );
                    Placement::Scanner
                }
            }
        } else {
            for (field, given) in [
                ("inner_antennas", self.inner_antennas.is_some()),
                ("outer_antennas", self.outer_antennas.is_some()),
                ("antennas", self.antennas.is_some()),
            ] {
                if given {
                    problems.add(key(field), format!("{protocol} readers have no antennas"));
                }
            }
            Placement::Scanner
        };

        if let Some(p) = self.power_dbm {
            if protocol.is_network() {
                problems.add(
                    key("power_dbm"),
                    format!("not yet set on {protocol} readers; set it on the reader"),
                );
            } else if !protocol.is_uhf() {
                problems.add(
                    key("power_dbm"),
                    format!("{protocol} readers have no power setting"),
                );
            } else if p > MAX_POWER_DBM {
                problems.add(key("power_dbm"), format!("must be in 0..={MAX_POWER_DBM}"));
            }
        }
        let chafon_form = self.chafon_form.map(|f| f.0);
        if chafon_form.is_some() && protocol != Protocol::UhfChafon {
            problems.add(key("chafon_form"), "only for uhf-chafon readers");
        }
        // The UHFReader18 form names no antenna in its replies, so a gate could not tell its
        // inner from its outer side: every read would look like the first antenna's, and an
        // exit would never be seen. Fine for a cabinet, where every antenna is "inside".
        if chafon_form == Some(InventoryForm::Reader18)
            && matches!(placement, Placement::Gate { .. })
        {
            problems.add(
                key("chafon_form"),
                "\"18\" replies name no antenna, so a gate cannot tell inner from outer; \
                 use a UHFReader288-form reader (chafon_form = \"288\") for a gate",
            );
        }

        ReaderConfig {
            name: Arc::from(name),
            protocol,
            port: self.port.map(|p| base.join(p)).unwrap_or_default(),
            baud,
            address,
            placement,
            power_dbm: self.power_dbm,
            reply_timeout: positive_ms(
                problems,
                key("reply_timeout_ms"),
                self.reply_timeout_ms.unwrap_or(500),
            ),
            poll_interval: Duration::from_millis(self.poll_interval_ms.unwrap_or(50)),
            backoff_max: positive_ms(
                problems,
                key("backoff_max_ms"),
                self.backoff_max_ms.unwrap_or(5_000),
            ),
            chafon_form,
            network,
            keepalive,
            reader_io,
        }
    }
}

impl RawGateIo {
    fn validate(self, base: &Path, problems: &mut Problems) -> GateIoConfig {
        let unit = self.unit.unwrap_or(1);
        let transport = match self.transport {
            TransportKind::Tcp => {
                for (field, given) in [("port", self.port.is_some()), ("baud", self.baud.is_some())]
                {
                    if given {
                        problems.add(format!("gate_io.{field}"), "only for transport = \"rtu\"");
                    }
                }
                let address = match self.address.as_deref().map(str::parse::<SocketAddr>) {
                    Some(Ok(a)) => a,
                    Some(Err(_)) => {
                        problems.add(
                            "gate_io.address",
                            format!(
                                "{:?} is not IP:PORT (host names are not resolved)",
                                self.address.unwrap_or_default()
                            ),
                        );
                        SocketAddr::from(([127, 0, 0, 1], 502))
                    }
                    None => {
                        problems.add(
                            "gate_io.address",
                            "missing: tcp needs address = \"IP:PORT\"",
                        );
                        SocketAddr::from(([127, 0, 0, 1], 502))
                    }
                };
                GateIoTransport::Tcp(address)
            }
            TransportKind::Rtu => {
                if self.address.is_some() {
                    problems.add(
                        "gate_io.address",
                        "only for transport = \"tcp\"; rtu takes port and baud",
                    );
                }
                let port = self.port.unwrap_or_default();
                if port.as_os_str().is_empty() {
                    problems.add("gate_io.port", "missing: rtu needs the serial device");
                }
                let baud = self.baud.unwrap_or(9_600);
                if baud == 0 {
                    problems.add("gate_io.baud", "must be at least 1");
                }
                if !(1..=247).contains(&unit) {
                    problems.add("gate_io.unit", "a Modbus RTU unit must be in 1..=247");
                }
                GateIoTransport::Rtu {
                    port: base.join(port),
                    baud,
                }
            }
        };
        let map = GateIoMap {
            alarm_coil: self.alarm_coil.unwrap_or(0),
            buzzer_coil: self.buzzer_coil.unwrap_or(1),
            lock_coil: self.lock_coil,
            barrier_coil: self.barrier_coil,
            inner_beam_input: self.inner_beam_input,
            outer_beam_input: self.outer_beam_input,
            door_contact_input: self.door_contact_input,
        };
        if let Err(e) = map.validate() {
            problems.add("gate_io", e.to_string());
        }
        GateIoConfig {
            transport,
            unit,
            map,
            call_timeout: positive_ms(
                problems,
                "gate_io.call_timeout_ms".into(),
                self.call_timeout_ms.unwrap_or(500),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/custosd/gate.toml";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new(PATH))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const HEAD: &str = r#"
device_id = "gate-1"
server = "http://127.0.0.1:8080"
key_file = "gate-1.key"
data_dir = "/var/lib/custosd"
"#;

    fn with_reader(reader: &str) -> String {
        format!("{HEAD}\n[[readers]]\nname = \"r\"\nport = \"/dev/ttyUSB0\"\n{reader}")
    }

    #[test]
    fn example_gate_parses_with_documented_defaults() {
        let c = parse(EXAMPLE_GATE).unwrap();
        assert_eq!(c.role(), Role::Gate);
        assert_eq!(c.device_id, "gate-1");
        assert_eq!(c.server, "http://127.0.0.1:8080");
        assert_eq!(c.key_file, Path::new("/etc/custosd/gate-1.key"));
        assert_eq!(c.data_dir, Path::new("/var/lib/custosd"));
        assert_eq!(c.outbox_path(), Path::new("/var/lib/custosd/outbox.db"));
        assert_eq!(c.server_public_key, None);
        let r = &c.readers[0];
        assert_eq!(&*r.name, "uhf-main");
        assert_eq!(r.protocol, Protocol::UhfA0);
        assert_eq!((r.baud, r.address), (115_200, 1));
        assert_eq!(r.antennas_in_order(), [1, 2, 3, 4]);
        assert_eq!(
            (r.inner_antennas(), r.outer_antennas()),
            (&[1, 2][..], &[3, 4][..])
        );
        assert_eq!(r.reply_timeout, Duration::from_millis(500));
        assert_eq!(r.poll_interval, Duration::from_millis(50));
        assert_eq!(r.backoff_max, Duration::from_secs(5));
        assert_eq!((r.power_dbm, r.chafon_form), (None, None));
        let g = c.gate_io.as_ref().unwrap();
        assert_eq!(
            g.transport,
            GateIoTransport::Tcp("127.0.0.1:5020".parse().unwrap())
        );
        assert_eq!(g.unit, 1);
        assert_eq!(
            g.map,
            GateIoMap {
                barrier_coil: None,
                door_contact_input: None,
                ..GateIoMap::default()
            }
        );
        // The example spells out the defaults of the daemon sections.
        assert_eq!(c.uplink, UplinkConfig::default());
        assert_eq!(c.outbox, OutboxConfig::default());
        assert_eq!(c.alarm, AlarmConfig::default());
        assert_eq!(c.smoothing, SmoothingConfig::default());
    }

    #[test]
    fn example_cabinet_parses() {
        let text = include_str!("../examples/cabinet.toml");
        let c = Config::parse(text, Path::new("cabinet.toml")).unwrap();
        assert_eq!(c.role(), Role::Cabinet);
        assert_eq!(c.readers.len(), 3);
        assert_eq!(c.readers[0].antennas_in_order(), [1, 2, 3, 4]);
        assert_eq!(c.readers[0].chafon_form, Some(InventoryForm::Reader288));
        assert_eq!((c.readers[0].baud, c.readers[0].address), (57_600, 0));
        assert_eq!(c.readers[1].placement, Placement::Scanner);
        assert_eq!((c.readers[2].baud, c.readers[2].address), (9_600, 0));
        assert!(c.gate_io.is_none());
    }

    #[test]
    fn minimal_file_takes_defaults_and_resolves_relative_paths() {
        let c = Config::parse(
            &with_reader("protocol = \"uhf-a0\"\n"),
            Path::new("/srv/custos/custosd.toml"),
        )
        .unwrap();
        assert_eq!(c.key_file, Path::new("/srv/custos/gate-1.key"));
        assert_eq!(c.role(), Role::Cabinet);
        assert_eq!(c.readers[0].antennas_in_order(), [1]);
        let desk = parse(&with_reader("protocol = \"barcode\"\n")).unwrap();
        assert_eq!(desk.role(), Role::Desk);
        assert_eq!(desk.uplink, UplinkConfig::default());
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let text = with_reader("protocol = \"uhf-a0\"\nbaudrate = 9600\n");
        let err = parse(&text).unwrap_err();
        let ConfigError::Syntax {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        let expected_line = text
            .lines()
            .position(|l| l.starts_with("baudrate"))
            .unwrap()
            + 1;
        assert_eq!((*line, *column), (expected_line, 1));
        assert!(message.contains("unknown field `baudrate`"), "{message}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{PATH}:{expected_line}:1: ")),
            "{shown}"
        );
        // Unknown keys in the daemon sections and at the top level, too.
        let err = parse(&format!(
            "{}\n[uplink]\nbatch = 3\n",
            with_reader("protocol = \"barcode\"")
        ))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `batch`"), "{err}");
        let err = parse(&format!(
            "colour = 1\n{}",
            with_reader("protocol = \"barcode\"")
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let text = with_reader("protocol = \"uhf-a0\"\nbaud = \"fast\"\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains(":11:8: baud: invalid type"), "{err}");
    }

    #[test]
    fn bad_protocol_is_a_syntax_error_naming_the_choices() {
        let err = parse(&with_reader("protocol = \"uhf-b0\"\n")).unwrap_err();
        let shown = err.to_string();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{shown}");
        assert!(
            shown.contains("uhf-b0") && shown.contains("uhf-chafon"),
            "{shown}"
        );
    }

    #[test]
    fn antenna_overlap_and_range_are_refused() {
        let p = problems(&with_reader(
            "protocol = \"uhf-a0\"\ninner_antennas = [1, 2]\nouter_antennas = [2, 9]\n",
        ));
        assert_eq!(
            p,
            [
                Problem {
                    key: "readers[0].outer_antennas".into(),
                    reason: "antenna 9 is out of 1..=8".into()
                },
                Problem {
                    key: "readers[0].outer_antennas".into(),
                    reason: "antenna 2 is also an inner antenna".into()
                },
            ]
        );
        let p = problems(&with_reader(
            "protocol = \"uhf-a0\"\nantennas = [0, 3, 3]\n",
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        let p = problems(&with_reader(
            "protocol = \"uhf-a0\"\ninner_antennas = [1]\n",
        ));
        assert_eq!(p[0].key, "readers[0].outer_antennas");
        let p = problems(&with_reader(
            "protocol = \"em4100\"\nantennas = [1]\naddress = 3\n",
        ));
        assert_eq!(
            p.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(),
            ["readers[0].address", "readers[0].antennas"]
        );
    }

    #[test]
    fn missing_port_is_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("tty-present");
        std::fs::write(&present, b"").unwrap();
        let text = format!(
            "{HEAD}\n[[readers]]\nname = \"a\"\nprotocol = \"barcode\"\nport = \"tty-present\"\n\
             [[readers]]\nname = \"b\"\nprotocol = \"barcode\"\nport = \"tty-absent\"\n"
        );
        let c = Config::parse(&text, &dir.path().join("c.toml")).unwrap();
        let missing = c.missing_ports();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].key, "readers[1].port");
        assert!(missing[0].reason.contains("tty-absent"), "{}", missing[0]);
        let err = c.check_ports().unwrap_err().to_string();
        assert!(
            err.contains("c.toml") && err.contains("readers[1].port"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_key_file_names_both_files() {
        let c = parse(EXAMPLE_GATE).unwrap();
        let err = c.device_key().unwrap_err().to_string();
        assert!(err.contains(PATH) && err.contains("gate-1.key"), "{err}");
    }

    #[test]
    fn server_must_be_a_plain_http_url() {
        for bad in [
            "https://example.org",
            "ftp://x",
            "127.0.0.1:8080",
            "http://x:8080/api",
            "http://",
        ] {
            let text = HEAD.replace("http://127.0.0.1:8080", bad)
                + "[[readers]]\nname = \"r\"\nprotocol = \"barcode\"\nport = \"/dev/x\"\n";
            let p = problems(&text);
            assert_eq!(p[0].key, "server", "{bad}: {p:?}");
        }
        let text = HEAD.replace("http://127.0.0.1:8080", "http://custos.lan:80/")
            + "[[readers]]\nname = \"r\"\nprotocol = \"barcode\"\nport = \"/dev/x\"\n";
        assert_eq!(parse(&text).unwrap().server, "http://custos.lan:80");
    }

    #[test]
    fn other_values_are_checked() {
        let text = format!(
            "{}\nserver_public_key = \"AAAA\"\n{}\n[gate_io]\ntransport = \"tcp\"\naddress = \"gate:502\"\n\
             alarm_coil = 1\n[uplink]\nbatch_max = 257\n[alarm]\nlock_door = true\n",
            HEAD.replace("gate-1\"", "gate 1\""),
            "[[readers]]\nname = \"r\"\nprotocol = \"barcode\"\nport = \"/dev/x\"\n\
             [[readers]]\nname = \"r\"\nprotocol = \"uhf-chafon\"\nport = \"/dev/y\"\npower_dbm = 40\n"
        );
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "device_id",
                "server_public_key",
                "readers[1].power_dbm",
                "readers[1].name",
                "gate_io.address",
                "gate_io",
                "uplink.batch_max",
                "alarm.lock_door",
            ]
        );
        let err = parse("device_id = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("missing field `server`"), "{err}");
        assert!(problems(HEAD)[0].key == "readers");
    }

    #[test]
    fn rtu_gate_io_and_chafon_form_forms() {
        let text = with_reader("protocol = \"uhf-chafon\"\nchafon_form = 18\n")
            + "[gate_io]\ntransport = \"rtu\"\nport = \"/dev/ttyS1\"\nunit = 3\nlock_coil = 2\n\
               [alarm]\nlock_door = true\n";
        let c = parse(&text).unwrap();
        assert_eq!(c.readers[0].chafon_form, Some(InventoryForm::Reader18));
        let g = c.gate_io.unwrap();
        assert_eq!(
            g.transport,
            GateIoTransport::Rtu {
                port: "/dev/ttyS1".into(),
                baud: 9_600
            }
        );
        assert_eq!((g.unit, g.map.lock_coil), (3, Some(2)));
        let err = parse(&with_reader(
            "protocol = \"uhf-chafon\"\nchafon_form = \"19\"\n",
        ))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    /// A UHFReader18-form CHAFON reader is refused for a gate (its replies name no antenna)
    /// and accepted for a cabinet; the 288 form is fine for both.
    #[test]
    fn chafon_form_18_is_refused_for_a_gate_only() {
        let gate = |form: &str| {
            with_reader(&format!(
                "protocol = \"uhf-chafon\"\nchafon_form = {form}\ninner_antennas = [1]\n\
                 outer_antennas = [2]\n"
            ))
        };
        let refused: Vec<String> = problems(&gate("\"18\""))
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(refused, ["readers[0].chafon_form"]);
        let err = parse(&gate("18")).unwrap_err().to_string();
        assert!(err.contains("cannot tell inner from outer"), "{err}");
        assert!(parse(&gate("\"288\"")).is_ok());
        let cabinet = with_reader("protocol = \"uhf-chafon\"\nchafon_form = \"18\"\n");
        assert!(parse(&cabinet).is_ok());
    }

    fn with_llrp(reader: &str) -> String {
        format!("{HEAD}\n[[readers]]\nname = \"portal\"\nprotocol = \"llrp\"\n{reader}")
    }

    #[test]
    fn llrp_reader_takes_a_network_address_with_the_default_port() {
        let c = parse(&with_llrp(
            "address = \"10.0.0.5\"\ninner_antennas = [1]\nouter_antennas = [2]\n",
        ))
        .unwrap();
        let r = &c.readers[0];
        assert_eq!(r.network.as_deref(), Some("10.0.0.5:5084"));
        assert_eq!((r.baud, r.address), (0, 0));
        assert_eq!(r.keepalive, Duration::from_secs(1));
        assert_eq!(c.role(), Role::Gate);
        // A network reader has no serial device to be missing.
        assert!(c.missing_ports().is_empty());
        let named = parse(&with_llrp(
            "address = \"r700.site:14150\"\nkeepalive_ms = 500\n",
        ))
        .unwrap();
        assert_eq!(named.readers[0].network.as_deref(), Some("r700.site:14150"));
        assert_eq!(named.readers[0].keepalive, Duration::from_millis(500));
        let v6 = parse(&with_llrp("address = \"[::1]\"\n")).unwrap();
        assert_eq!(v6.readers[0].network.as_deref(), Some("[::1]:5084"));
    }

    #[test]
    fn llrp_and_serial_transports_refuse_each_others_keys() {
        let keys =
            |text: &str| -> Vec<String> { problems(text).into_iter().map(|p| p.key).collect() };
        assert_eq!(
            keys(&with_llrp(
                "address = \"10.0.0.5\"\nport = \"/dev/ttyUSB0\"\nbaud = 9600\n"
            )),
            ["readers[0].port", "readers[0].baud"]
        );
        assert_eq!(keys(&with_llrp("")), ["readers[0].address"]);
        assert_eq!(keys(&with_llrp("address = 1\n")), ["readers[0].address"]);
        assert_eq!(
            keys(&with_llrp("address = \"a b:x\"\n")),
            ["readers[0].address"]
        );
        assert_eq!(
            keys(&with_reader(
                "protocol = \"uhf-a0\"\naddress = \"10.0.0.5:5084\"\n"
            )),
            ["readers[0].address"]
        );
        assert_eq!(
            keys(&with_reader("protocol = \"uhf-a0\"\nkeepalive_ms = 100\n")),
            ["readers[0].keepalive_ms"]
        );
        let no_port = format!("{HEAD}\n[[readers]]\nname = \"r\"\nprotocol = \"uhf-a0\"\n");
        assert_eq!(keys(&no_port), ["readers[0].port"]);
        // A bus address as before.
        let c = parse(&with_reader("protocol = \"uhf-a0\"\naddress = 7\n")).unwrap();
        assert_eq!(
            (c.readers[0].address, c.readers[0].network.as_deref()),
            (7, None)
        );
    }

    #[test]
    fn llrp_gate_io_on_the_reader_instead_of_a_module() {
        let c = parse(&with_llrp(
            "address = \"10.0.0.5\"\ninner_antennas = [1]\nouter_antennas = [2]\n\
             alarm_gpo = 1\nsounder_gpo = 2\ninner_beam_gpi = 1\nouter_beam_gpi = 2\n",
        ))
        .unwrap();
        let io = c.readers[0].reader_io;
        assert!(io.drives_alarm() && io.has_beams());
        assert_eq!((io.alarm_gpo, io.outer_beam_gpi), (Some(1), Some(2)));
        let keys =
            |text: &str| -> Vec<String> { problems(text).into_iter().map(|p| p.key).collect() };
        assert_eq!(
            keys(&with_reader("protocol = \"uhf-a0\"\nalarm_gpo = 1\n")),
            ["readers[0].alarm_gpo"]
        );
        assert_eq!(
            keys(&with_llrp("address = \"h\"\ninner_beam_gpi = 1\n")),
            ["readers[0].outer_beam_gpi"]
        );
        assert_eq!(
            keys(&with_llrp("address = \"h\"\nalarm_gpo = 0\n")),
            ["readers[0].alarm_gpo"]
        );
        let both = format!(
            "{}\nalarm_gpo = 1\n[gate_io]\ntransport = \"tcp\"\naddress = \"127.0.0.1:502\"\n",
            with_llrp("address = \"h\"")
        );
        assert_eq!(keys(&both), ["readers[0].alarm_gpo"]);
    }
}
