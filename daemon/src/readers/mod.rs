//! Reader drivers: one async task per configured reader that opens its serial port, configures
//! the reader, turns its frames into [`ReaderOutput`]s, watches its health and reconnects.
//!
//! # Life of a reader task
//!
//! [`run_reader`] loops over sessions until shutdown: open the port, run the protocol's
//! session, and when it fails (no reply within `reply_timeout`, port gone, end of file) report
//! the fault as [`ReaderOutput::Health`], wait a capped exponential backoff (100 ms doubling up
//! to `backoff_max`, no jitter) and try again. The backoff starts over once the reader has
//! answered. A session never ends on garbage: undecodable bytes are dropped and counted (see
//! `link.rs`), so only a silent or vanished reader ends it.
//!
//! Health goes out when it changes (the reader answered, a fault appeared or cleared) and every
//! [`HEALTH_INTERVAL`] with the counters `frames_ok`, `checksum_errors`, `dropped_bytes` and
//! `last_read_ms`.
//!
//! # Drivers
//!
//! | protocol | module | what it does |
//! |---|---|---|
//! | `uhf-a0` | `uhf_a0` | version, power, then per antenna: set work antenna, real-time inventory |
//! | `uhf-chafon` | `uhf_chafon` | reader info, power, inventory polling; scan-mode pushes any time |
//! | `em4100` | `em4100` | card frames, one scan per card presence |
//! | `barcode` | `barcode` | one scan per line, AIM prefix removed |
//! | `modbus-flat` | `modbus_flat` | Modbus RTU: new-read coil, UID registers, clear the coil |
//! | `llrp` | `llrp` | TCP: connection event, reset and configure, ROSpec, tag reports, keepalive watchdog |
//!
//! Every driver is generic over `AsyncRead + AsyncWrite` (tests run them over
//! `tokio::io::duplex`); only [`open_serial`], used by [`run_reader`] and [`check`], names a
//! serial port, as tokio-modbus' `rtu::attach_slave` does. An `llrp` reader is reached over TCP
//! instead ([`ReaderSettings::network`]): the same supervisor, backoff and health reports.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use custos_protocol::chafon::InventoryForm;
use custos_protocol::codec::BufferTooSmall;
use custos_protocol::uplink::ReaderFault;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::model::{ReaderName, ReaderOutput};

pub(crate) mod barcode;
pub(crate) mod em4100;
mod health;
pub(crate) mod link;
pub mod llrp;
pub(crate) mod modbus_flat;
pub(crate) mod uhf_a0;
pub(crate) mod uhf_chafon;

use health::Reporter;

/// Default for [`ReaderSettings::reply_timeout`].
pub const DEFAULT_REPLY_TIMEOUT: Duration = Duration::from_millis(500);
/// Default for [`ReaderSettings::poll_interval`].
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Default for [`ReaderSettings::backoff_max`].
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The first reconnect delay; it doubles up to `backoff_max`.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Default for [`ReaderSettings::keepalive`] (`keepalive_ms`).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(1);
/// How often a reader's health is reported even when nothing changed.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// The protocol a reader speaks (`[[readers]] protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `uhf-a0`: UHF readers of the 0xA0 family (R2000/Indy modules).
    UhfA0,
    /// `uhf-chafon`: UHF readers of the CHAFON / UHFReader18 / UHFReader288 family.
    UhfChafon,
    /// `em4100`: 125 kHz EM4100 card modules (RDM6300 family).
    Em4100,
    /// `barcode`: a serial barcode scanner sending one line per scan.
    Barcode,
    /// `modbus-flat`: a Modbus RTU card reader with the UID in holding registers.
    ModbusFlat,
    /// `llrp`: a fixed UHF reader speaking GS1 LLRP over TCP (`address = "host:port"`).
    Llrp,
}

impl Protocol {
    /// Every protocol, in the order of the configuration documentation.
    pub const ALL: [Protocol; 6] = [
        Protocol::UhfA0,
        Protocol::UhfChafon,
        Protocol::Em4100,
        Protocol::Barcode,
        Protocol::ModbusFlat,
        Protocol::Llrp,
    ];

    /// The name used in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::UhfA0 => "uhf-a0",
            Protocol::UhfChafon => "uhf-chafon",
            Protocol::Em4100 => "em4100",
            Protocol::Barcode => "barcode",
            Protocol::ModbusFlat => "modbus-flat",
            Protocol::Llrp => "llrp",
        }
    }

    /// Whether it reads UHF tags with antennas (and so takes antennas and power).
    pub const fn is_uhf(self) -> bool {
        matches!(self, Protocol::UhfA0 | Protocol::UhfChafon | Protocol::Llrp)
    }

    /// Whether the reader is reached over the network (`address = "host:port"`) rather than a
    /// serial port.
    pub const fn is_network(self) -> bool {
        matches!(self, Protocol::Llrp)
    }

    /// The default serial speed: the factory setting of the usual hardware (0xA0 modules 115200,
    /// UHFReader18/288 57600, card readers, scanners and Modbus RTU readers 9600).
    pub const fn default_baud(self) -> u32 {
        match self {
            Protocol::UhfA0 => 115_200,
            Protocol::UhfChafon => 57_600,
            Protocol::Em4100 | Protocol::Barcode | Protocol::ModbusFlat => 9_600,
            Protocol::Llrp => 0,
        }
    }

    /// The default bus address, `None` for protocols without one: 0xA0 modules ship as 1 (the
    /// INTERFACES.md example), CHAFON readers as 0, flat Modbus readers as unit 1. (0xA0 and
    /// CHAFON readers also answer the public address 0xFF, which makes the driver accept
    /// frames from any address.)
    pub const fn default_address(self) -> Option<u8> {
        match self {
            Protocol::UhfA0 | Protocol::ModbusFlat => Some(1),
            Protocol::UhfChafon => Some(0),
            Protocol::Em4100 | Protocol::Barcode | Protocol::Llrp => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol name that is none of [`Protocol::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reader protocol {0:?} (uhf-a0, uhf-chafon, em4100, barcode, modbus-flat or llrp)")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProtocol(s.to_owned()))
    }
}

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything a driver needs to know about one reader (from `[[readers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSettings {
    /// The reader's configured name.
    pub name: ReaderName,
    /// Its protocol.
    pub protocol: Protocol,
    /// The serial device (a pty path in tests).
    pub port: PathBuf,
    /// Baud rate (8N1, no flow control).
    pub baud: u32,
    /// Bus address (0xA0 and CHAFON readers: 0xFF answers from any reader; Modbus: the unit).
    pub address: u8,
    /// Antennas to inventory, 1-based, in order (a gate: inner then outer). Empty means
    /// antenna 1.
    pub antennas: Vec<u8>,
    /// RF output power to configure, in dBm; `None` leaves the reader's setting alone.
    pub power_dbm: Option<u8>,
    /// No reply within this time is a NoReply fault.
    pub reply_timeout: Duration,
    /// How often modbus-flat and CHAFON readers are polled.
    pub poll_interval: Duration,
    /// The longest delay between reconnect attempts.
    pub backoff_max: Duration,
    /// The CHAFON inventory reply form, when known; `None` lets the decoder tell them apart.
    pub chafon_form: Option<InventoryForm>,
    /// A network reader's `host:port` (`llrp`); `None` for serial readers, which use `port`.
    pub network: Option<String>,
    /// The keepalive period asked of a network reader.
    pub keepalive: Duration,
    /// A network reader silent this long (no keepalive, report or event) is a NoReply fault.
    pub watchdog: Duration,
    /// The reader watches a gate: one missing antenna blinds a side of it (an exit could not
    /// be told from an entry), so it is a fault, not a degradation.
    pub gate: bool,
}

impl ReaderSettings {
    /// Settings with every default: the protocol's usual baud rate and address (as a
    /// `[[readers]]` entry without `baud` and `address`; 0 where there is none), antenna 1,
    /// power untouched, the `DEFAULT_*` times.
    pub fn new(name: impl Into<ReaderName>, protocol: Protocol, port: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            protocol,
            port: port.into(),
            baud: protocol.default_baud(),
            address: protocol.default_address().unwrap_or(0),
            antennas: vec![1],
            power_dbm: None,
            reply_timeout: DEFAULT_REPLY_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            chafon_form: None,
            network: None,
            keepalive: DEFAULT_KEEPALIVE,
            watchdog: llrp::watchdog_for(DEFAULT_KEEPALIVE),
            gate: false,
        }
    }

    /// The antennas to inventory: the configured ones, or antenna 1 when none are.
    pub fn inventory_antennas(&self) -> Vec<u8> {
        if self.antennas.is_empty() {
            vec![1]
        } else {
            self.antennas.clone()
        }
    }

    /// Refuses settings no driver can work with.
    pub fn validate(&self) -> Result<(), ReaderError> {
        if self.protocol.is_network() {
            if self.network.as_deref().is_none_or(str::is_empty) {
                return Err(ReaderError::Settings("a network reader needs host:port"));
            }
            if self.keepalive.is_zero() || self.watchdog.is_zero() {
                return Err(ReaderError::Settings("keepalive must not be 0"));
            }
        } else if self.baud == 0 {
            return Err(ReaderError::Settings("baud must not be 0"));
        }
        if self.reply_timeout.is_zero() {
            return Err(ReaderError::Settings("reply_timeout must not be 0"));
        }
        if self.poll_interval.is_zero() {
            return Err(ReaderError::Settings("poll_interval must not be 0"));
        }
        if self.antennas.iter().any(|a| !(1..=8).contains(a)) {
            return Err(ReaderError::Settings("antennas are numbered 1 to 8"));
        }
        if self.protocol == Protocol::ModbusFlat && !(1..=247).contains(&self.address) {
            return Err(ReaderError::Settings("a modbus unit address is 1 to 247"));
        }
        if self.power_dbm.is_some_and(|p| p > 33) {
            return Err(ReaderError::Settings("power_dbm is at most 33"));
        }
        Ok(())
    }
}

/// What `custosd check` learned from a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The protocol spoken.
    pub protocol: Protocol,
    /// The firmware version (major, minor), where the protocol can ask for it.
    pub firmware: Option<(u8, u8)>,
    /// One line for people: what was asked and what the reader said.
    pub detail: String,
}

impl fmt::Display for ReaderInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.protocol, self.detail)
    }
}

/// Why a session with a reader ended, or why `check` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The serial port could not be opened (adapter unplugged, wrong path, permissions).
    #[error("cannot open {port}: {source}")]
    Open {
        /// The port.
        port: PathBuf,
        /// Why.
        #[source]
        source: tokio_serial::Error,
    },
    /// A network reader could not be reached (refused, unreachable, name not resolved).
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The `host:port`.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the port failed.
    #[error("serial i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The port reported end of file: the device went away.
    #[error("serial link closed")]
    Closed,
    /// The reader did not answer within the reply timeout.
    #[error("no reply within {0:?}")]
    NoReply(Duration),
    /// The reader answers, but not in the configured protocol or reply form.
    #[error("protocol mismatch: {0}")]
    ProtocolMismatch(String),
    /// The Modbus transport failed (tokio-modbus).
    #[error("modbus: {0}")]
    Modbus(#[from] tokio_modbus::Error),
    /// The reader answered a query with a refusal, so it cannot be identified or used.
    #[error("reader refused {command}: {reason}")]
    Refused {
        /// The command refused.
        command: &'static str,
        /// The reader's status or exception, as text.
        reason: String,
    },
    /// A command did not fit its encode buffer (a bug in the driver).
    #[error("command encoding: {0}")]
    Encode(#[from] BufferTooSmall),
    /// The settings cannot work.
    #[error("invalid reader settings: {0}")]
    Settings(&'static str),
    /// The daemon stopped listening to the reader's outputs (shutdown).
    #[error("output channel closed")]
    OutputClosed,
}

impl ReaderError {
    /// The fault this error means for the reader's health.
    pub fn fault(&self) -> ReaderFault {
        match self {
            ReaderError::Open { .. }
            | ReaderError::Connect { .. }
            | ReaderError::Io(_)
            | ReaderError::Closed => ReaderFault::SerialLost,
            ReaderError::Modbus(tokio_modbus::Error::Transport(_)) => ReaderFault::SerialLost,
            ReaderError::NoReply(_) => ReaderFault::NoReply,
            ReaderError::ProtocolMismatch(detail) => ReaderFault::ProtocolMismatch {
                detail: detail.clone(),
            },
            other => ReaderFault::Other {
                detail: other.to_string(),
            },
        }
    }
}

/// Opens a serial port 8N1 without flow control, for async use (needs a tokio runtime).
pub fn open_serial(port: &Path, baud: u32) -> Result<tokio_serial::SerialStream, ReaderError> {
    tokio_serial::new(port.to_string_lossy(), baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|source| ReaderError::Open {
            port: port.to_owned(),
            source,
        })
}

/// Connects to a network reader (`host:port`; names are resolved).
pub async fn connect_tcp(address: &str) -> Result<tokio::net::TcpStream, ReaderError> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|source| ReaderError::Connect {
            address: address.to_owned(),
            source,
        })?;
    // Reports are small and latency matters more than packing.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Runs one reader until `shutdown` completes or the receiver of `out` is dropped: opens
/// `settings.port`, drives the reader, reports reads and health, reconnects with backoff.
pub async fn run_reader(
    settings: ReaderSettings,
    out: mpsc::Sender<ReaderOutput>,
    shutdown: impl Future<Output = ()>,
) {
    run_reader_with_gpo(settings, out, shutdown, None).await;
}

/// [`run_reader`] for an LLRP reader whose GPOs drive the gate's alarm light and sounder:
/// `gpo` carries the commands (see [`llrp::run_gpo_alarm`]); other protocols ignore it.
pub async fn run_reader_with_gpo(
    settings: ReaderSettings,
    out: mpsc::Sender<ReaderOutput>,
    shutdown: impl Future<Output = ()>,
    gpo: Option<mpsc::Receiver<llrp::GpoCommand>>,
) {
    if let Some(address) = settings
        .network
        .clone()
        .filter(|_| settings.protocol.is_network())
    {
        let connect = move || {
            let address = address.clone();
            async move { connect_tcp(&address).await }
        };
        run_reader_inner(settings, out, shutdown, connect, gpo).await;
        return;
    }
    let (port, baud) = (settings.port.clone(), settings.baud);
    let connect = move || {
        let opened = open_serial(&port, baud);
        async move { opened }
    };
    run_reader_on(settings, out, shutdown, connect).await;
}

/// [`run_reader`] over any byte stream: `connect` is called for every session (tests hand out
/// `tokio::io::duplex` ends, the simulator its own links).
pub async fn run_reader_on<S, C, Fut>(
    settings: ReaderSettings,
    out: mpsc::Sender<ReaderOutput>,
    shutdown: impl Future<Output = ()>,
    connect: C,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<S, ReaderError>>,
{
    run_reader_inner(settings, out, shutdown, connect, None).await;
}

async fn run_reader_inner<S, C, Fut>(
    settings: ReaderSettings,
    out: mpsc::Sender<ReaderOutput>,
    shutdown: impl Future<Output = ()>,
    connect: C,
    gpo: Option<mpsc::Receiver<llrp::GpoCommand>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<S, ReaderError>>,
{
    let span = tracing::info_span!("reader", name = %settings.name, protocol = %settings.protocol);
    let antenna_count = match settings.protocol {
        Protocol::UhfA0 | Protocol::UhfChafon => settings.inventory_antennas().len(),
        _ => 0,
    };
    let reporter = Reporter::new(settings.name.clone(), out, antenna_count).for_gate(settings.gate);
    let periodic = {
        let reporter = reporter.clone();
        async move {
            let start = tokio::time::Instant::now() + HEALTH_INTERVAL;
            let mut ticks = tokio::time::interval_at(start, HEALTH_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if reporter.publish().await.is_err() {
                    return;
                }
            }
        }
    };
    let work = supervise(&settings, &reporter, connect, gpo);
    async move {
        tokio::select! {
            () = shutdown => tracing::debug!("reader stopped: shutdown"),
            () = work => tracing::debug!("reader stopped: outputs closed"),
            () = periodic => tracing::debug!("reader stopped: outputs closed"),
        }
    }
    .instrument(span)
    .await;
}

/// Session after session with backoff in between, until the outputs close.
async fn supervise<S, C, Fut>(
    settings: &ReaderSettings,
    reporter: &Reporter,
    mut connect: C,
    mut gpo: Option<mpsc::Receiver<llrp::GpoCommand>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: FnMut() -> Fut,
    Fut: Future<Output = Result<S, ReaderError>>,
{
    let mut backoff = Backoff::new(BACKOFF_FIRST, settings.backoff_max);
    loop {
        let error = match settings.validate() {
            Err(e) => e,
            Ok(()) => match connect().await {
                Ok(io) => session(io, settings, reporter, gpo.as_mut()).await,
                Err(e) => e,
            },
        };
        if matches!(error, ReaderError::OutputClosed) {
            return;
        }
        if reporter.take_answered() {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::warn!(%error, retry_in = ?delay, reader = %reporter.name(), "reader session ended");
        if reporter.link_down(error.fault()).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// One session of the configured protocol; it only ever ends with an error.
async fn session<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
    gpo: Option<&mut mpsc::Receiver<llrp::GpoCommand>>,
) -> ReaderError
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match settings.protocol {
        Protocol::UhfA0 => uhf_a0::session(io, settings, reporter).await,
        Protocol::UhfChafon => uhf_chafon::session(io, settings, reporter).await,
        Protocol::Em4100 => em4100::session(io, settings, reporter).await,
        Protocol::Barcode => barcode::session(io, settings, reporter).await,
        Protocol::ModbusFlat => modbus_flat::session(io, settings, reporter).await,
        Protocol::Llrp => llrp::session(io, settings, reporter, gpo).await,
    }
}

/// Opens the reader once and asks who it is (for `custosd check`). Passive devices (EM4100
/// modules, scanners) cannot be asked: for them an open port is all there is to check.
pub async fn check(settings: &ReaderSettings) -> Result<ReaderInfo, ReaderError> {
    settings.validate()?;
    if let (true, Some(address)) = (settings.protocol.is_network(), &settings.network) {
        let io = connect_tcp(address).await?;
        return check_on(settings, io).await;
    }
    let io = open_serial(&settings.port, settings.baud)?;
    check_on(settings, io).await
}

/// [`check`] over any byte stream.
pub async fn check_on<S>(settings: &ReaderSettings, io: S) -> Result<ReaderInfo, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    settings.validate()?;
    // Nobody reads these reports; the buffer takes the few a check can produce.
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    let reporter = Reporter::new(settings.name.clone(), tx, 0);
    match settings.protocol {
        Protocol::UhfA0 => uhf_a0::identify(io, settings, &reporter).await,
        Protocol::UhfChafon => uhf_chafon::identify(io, settings, &reporter).await,
        Protocol::ModbusFlat => modbus_flat::identify(io, settings, &reporter).await,
        Protocol::Llrp => llrp::identify(io, settings, &reporter).await,
        Protocol::Em4100 | Protocol::Barcode => Ok(ReaderInfo {
            protocol: settings.protocol,
            firmware: None,
            detail: format!(
                "{} opened at {} baud; the device only sends, so it cannot be asked",
                settings.port.display(),
                settings.baud
            ),
        }),
    }
}

/// Helpers shared by the driver tests.
#[cfg(test)]
pub(crate) mod testing {
    use custos_protocol::uplink::{HealthState, ReaderFault, ReaderHealth};
    use tokio::sync::mpsc;

    use crate::model::ReaderOutput;

    /// Installs a tracing subscriber that writes through the test harness.
    pub(crate) fn trace() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "custos_daemon=debug".into()),
            )
            .with_test_writer()
            .try_init();
    }

    /// Parses spaced hex ("A0 04 01") into bytes.
    pub(crate) fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
            .collect()
    }

    /// The next output that is not a health report with state Ok and no fault.
    pub(crate) async fn next_non_ok(rx: &mut mpsc::Receiver<ReaderOutput>) -> ReaderOutput {
        loop {
            let o = rx.recv().await.expect("reader task ended");
            match &o {
                ReaderOutput::Health { health, .. }
                    if health.state == HealthState::Ok && health.fault.is_none() => {}
                _ => return o,
            }
        }
    }

    /// Waits for a health report with this fault, skipping everything else.
    pub(crate) async fn wait_fault(
        rx: &mut mpsc::Receiver<ReaderOutput>,
        want: &ReaderFault,
    ) -> ReaderHealth {
        loop {
            if let ReaderOutput::Health { health, .. } = rx.recv().await.expect("reader task ended")
            {
                if health.fault.as_ref() == Some(want) {
                    return health;
                }
            }
        }
    }

    /// Waits for a health report with state Ok.
    pub(crate) async fn wait_ok(rx: &mut mpsc::Receiver<ReaderOutput>) -> ReaderHealth {
        loop {
            if let ReaderOutput::Health { health, .. } = rx.recv().await.expect("reader task ended")
            {
                if health.state == HealthState::Ok {
                    return health;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.to_string().parse::<Protocol>(), Ok(p));
        }
        assert_eq!("uhf-a0".parse(), Ok(Protocol::UhfA0));
        assert_eq!("modbus-flat".parse(), Ok(Protocol::ModbusFlat));
        assert_eq!(
            "UHF-A0".parse::<Protocol>(),
            Err(UnknownProtocol("UHF-A0".into()))
        );
        let p: Protocol = serde_json::from_str("\"uhf-chafon\"").unwrap();
        assert_eq!(p, Protocol::UhfChafon);
        assert!(serde_json::from_str::<Protocol>("\"rfid\"").is_err());
        assert_eq!(
            serde_json::to_string(&Protocol::Em4100).unwrap(),
            "\"em4100\""
        );
    }

    #[test]
    fn defaults_and_validation() {
        let s = ReaderSettings::new("uhf-main", Protocol::UhfA0, "/dev/ttyUSB0");
        assert_eq!((s.baud, s.address), (115_200, 1));
        assert_eq!(s.reply_timeout, Duration::from_millis(500));
        assert!(s.validate().is_ok());
        let none = ReaderSettings {
            antennas: vec![],
            ..s.clone()
        };
        assert_eq!(none.inventory_antennas(), [1]);
        let bad = ReaderSettings {
            antennas: vec![0],
            ..s.clone()
        };
        assert!(matches!(bad.validate(), Err(ReaderError::Settings(_))));
        let modbus = ReaderSettings {
            address: 0,
            ..ReaderSettings::new("m", Protocol::ModbusFlat, "/dev/ttyS0")
        };
        assert!(matches!(modbus.validate(), Err(ReaderError::Settings(_))));
    }

    #[test]
    fn errors_map_to_faults() {
        assert_eq!(ReaderError::Closed.fault(), ReaderFault::SerialLost);
        assert_eq!(
            ReaderError::NoReply(Duration::from_millis(500)).fault(),
            ReaderFault::NoReply
        );
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        assert_eq!(ReaderError::Io(io).fault(), ReaderFault::SerialLost);
        assert!(matches!(
            ReaderError::Settings("x").fault(),
            ReaderFault::Other { .. }
        ));
    }

    #[tokio::test]
    async fn a_missing_port_is_serial_lost() {
        let err = open_serial(Path::new("/nonexistent/ttyUSB9"), 9600).unwrap_err();
        assert_eq!(err.fault(), ReaderFault::SerialLost);
        assert!(err.to_string().contains("/nonexistent/ttyUSB9"), "{err}");
    }

    /// The daemon spawns reader tasks, so the future must be `Send`.
    #[test]
    fn run_reader_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let (tx, _rx) = mpsc::channel(1);
        let settings = ReaderSettings::new("r", Protocol::Barcode, "/dev/null");
        let fut = run_reader(settings.clone(), tx, std::future::pending());
        assert_send(&fut);
        let fut = check(&settings);
        assert_send(&fut);
    }
}
