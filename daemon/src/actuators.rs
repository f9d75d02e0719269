//! The gate I/O module over Modbus (tokio-modbus client, TCP or RTU): alarm light, sounder,
//! door lock and barrier relays as coils; photo-eyes and the door contact as discrete inputs.
//! Which coil and input is which comes from [`GateIoMap`].
//!
//! # Failure modes
//!
//! - Every Modbus call runs under `call_timeout` (200 ms by default): tokio-modbus waits for
//!   ever on a peer that accepted the connection and went silent, and an alarm that hangs is
//!   worse than one that fails. Connecting is under the same timeout.
//! - A timeout or transport error drops the connection (a late reply would be taken for the
//!   next request's). The next call reconnects, but not before a capped exponential backoff has
//!   passed; until then calls fail at once with [`GateIoError::Down`], so the gate logic never
//!   waits on a dead module.
//! - A Modbus exception means the module answered and refused (a wrong map): the connection is
//!   kept and the error returned.
//! - A module that reboots comes back with its relays de-energised, so the [`AlarmDriver`]
//!   rewrites the whole output state every [`REFRESH_INTERVAL`], not only on changes.
//!
//! # Alarm
//!
//! [`Alarm`] is the pure state machine (time passed in, monotonic): [`Alarm::sound`] turns
//! light and sounder on (and locks the door when asked) for a duration, a second alarm extends
//! but never shortens it, [`Alarm::silence`] ends it, [`Alarm::poll`] switches everything off
//! when the duration has passed. [`AlarmDriver`] runs it against a [`GateIo`] and takes
//! commands through an [`AlarmHandle`]; its [`AlarmStatus`] says when the coils were last
//! written (`written_at`), which is how the gate measures the time from a passage to the coil.
//!
//! # Inputs
//!
//! The driver owns the only link to the module (an RTU module is one serial port), so it also
//! reads the photo-eyes when asked ([`AlarmDriver::poll_inputs`]): between writes, every poll
//! period, publishing each reading on a watch channel. A write that becomes due while a read is
//! in flight waits for that one read (at most `call_timeout`, a few ms on a healthy link).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use custos_protocol::modbus_map::{GateInputs, GateIoMap, ModbusMapError, Outputs};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::prelude::{rtu, tcp};
use tokio_modbus::{ExceptionCode, Slave};
use tokio_serial::SerialPortBuilderExt;

use crate::backoff::Backoff;

/// Default for [`GateIoSettings::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(200);
/// The first reconnect delay after a failure; it doubles up to [`RECONNECT_MAX`].
pub const RECONNECT_FIRST: Duration = Duration::from_millis(100);
/// The longest reconnect delay.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How often the alarm driver rewrites the outputs even when nothing changed.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How soon the alarm driver retries a write that failed.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// How the gate I/O module is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Modbus TCP.
    Tcp(SocketAddr),
    /// Modbus RTU over a serial port (8N1).
    Rtu {
        /// The serial device.
        port: PathBuf,
        /// Baud rate.
        baud: u32,
    },
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp(addr) => write!(f, "tcp {addr}"),
            Transport::Rtu { port, baud } => write!(f, "rtu {} at {baud} baud", port.display()),
        }
    }
}

/// Where the gate I/O module is and what its points mean (`[gate_io]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateIoSettings {
    /// TCP or RTU.
    pub transport: Transport,
    /// The Modbus unit id.
    pub unit: u8,
    /// Coil and input addresses.
    pub map: GateIoMap,
    /// The longest any one Modbus call (or connect) may take.
    pub call_timeout: Duration,
}

impl GateIoSettings {
    /// Settings with unit 1, the conventional map and the default call timeout.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            unit: 1,
            map: GateIoMap::default(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// Why a gate I/O call failed.
#[derive(Debug, thiserror::Error)]
pub enum GateIoError {
    /// Connecting (TCP) or opening the port (RTU) failed.
    #[error("cannot connect to the gate i/o module ({transport}): {detail}")]
    Connect {
        /// Where.
        transport: String,
        /// Why.
        detail: String,
    },
    /// A call or connect took longer than the call timeout.
    #[error("gate i/o {op} timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The Modbus transport failed.
    #[error("gate i/o {op} failed: {source}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// The tokio-modbus error.
        #[source]
        source: tokio_modbus::Error,
    },
    /// The module answered with a Modbus exception.
    #[error("gate i/o {op} refused: modbus exception {code}")]
    Exception {
        /// The operation.
        op: &'static str,
        /// The exception.
        code: ExceptionCode,
    },
    /// The map is unusable, or the module returned a block that does not fit it.
    #[error("gate i/o map: {0}")]
    Map(#[from] ModbusMapError),
    /// The link is down and the next reconnect attempt is not due yet.
    #[error("gate i/o link down; next attempt in {retry_in:?}")]
    Down {
        /// Time until the next attempt.
        retry_in: Duration,
    },
}

impl GateIoError {
    /// Whether the link to the module is lost (as opposed to the module refusing a request).
    pub fn is_link_failure(&self) -> bool {
        !matches!(self, GateIoError::Exception { .. } | GateIoError::Map(_))
    }
}

/// A connection to the gate I/O module that reconnects by itself.
pub struct GateIo {
    settings: GateIoSettings,
    ctx: Option<Context>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl fmt::Debug for GateIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateIo")
            .field("transport", &self.settings.transport)
            .field("unit", &self.settings.unit)
            .field("connected", &self.ctx.is_some())
            .finish()
    }
}

impl GateIo {
    /// A gate I/O link that connects on first use (the daemon starts even if the module is
    /// down). Fails only for an unusable map.
    pub fn new(settings: GateIoSettings) -> Result<Self, GateIoError> {
        settings.map.validate()?;
        Ok(Self {
            settings,
            ctx: None,
            backoff: Backoff::new(RECONNECT_FIRST, RECONNECT_MAX),
            retry_at: None,
        })
    }

    /// Connects now; fails if the module cannot be reached.
    pub async fn connect(settings: GateIoSettings) -> Result<Self, GateIoError> {
        let mut io = Self::new(settings)?;
        io.context().await?;
        Ok(io)
    }

    /// Whether a connection is open (it may still turn out dead on the next call).
    pub fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    /// Writes the relays to `outputs` (single-coil writes, fitted coils only) and returns how
    /// long the writes took.
    pub async fn set_outputs(&mut self, outputs: &Outputs) -> Result<Duration, GateIoError> {
        let started = Instant::now();
        let writes = self.settings.map.coil_writes(outputs);
        for w in &writes {
            let timeout = self.settings.call_timeout;
            let ctx = self.context().await?;
            let result = call(
                timeout,
                "write coil",
                ctx.write_single_coil(w.coil, w.value),
            )
            .await;
            self.check(result)?;
        }
        let elapsed = started.elapsed();
        if elapsed > self.settings.call_timeout {
            tracing::warn!(?elapsed, ?outputs, "gate outputs written slowly");
        } else {
            tracing::debug!(?elapsed, ?outputs, "gate outputs written");
        }
        Ok(elapsed)
    }

    /// Reads the photo-eyes and the door contact (inputs the map declares absent are `None`).
    pub async fn read_inputs(&mut self) -> Result<GateInputs, GateIoError> {
        let map = self.settings.map;
        let Some(block) = map.input_block() else {
            return Ok(map.decode_inputs(0, &[])?);
        };
        let timeout = self.settings.call_timeout;
        let ctx = self.context().await?;
        let result = call(
            timeout,
            "read inputs",
            ctx.read_discrete_inputs(block.start, block.count),
        )
        .await;
        let bits = self.check(result)?;
        Ok(map.decode_inputs(block.start, &bits)?)
    }

    /// Drops the connection after a link failure and schedules the next attempt.
    fn check<T>(&mut self, result: Result<T, GateIoError>) -> Result<T, GateIoError> {
        if let Err(e) = &result {
            if e.is_link_failure() {
                self.link_failed(e);
            }
        }
        result
    }

    fn link_failed(&mut self, error: &GateIoError) {
        self.ctx = None;
        let delay = self.backoff.next_delay();
        self.retry_at = Some(Instant::now() + delay);
        tracing::warn!(%error, retry_in = ?delay, "gate i/o link lost");
    }

    /// The open connection, or a new one if the backoff allows.
    async fn context(&mut self) -> Result<&mut Context, GateIoError> {
        if self.ctx.is_none() {
            if let Some(at) = self.retry_at {
                let now = Instant::now();
                if now < at {
                    return Err(GateIoError::Down { retry_in: at - now });
                }
            }
            match connect(&self.settings).await {
                Ok(ctx) => {
                    tracing::info!(transport = %self.settings.transport, "gate i/o connected");
                    self.ctx = Some(ctx);
                    self.backoff.reset();
                    self.retry_at = None;
                }
                Err(e) => {
                    self.link_failed(&e);
                    return Err(e);
                }
            }
        }
        // Just set above when it was None.
        self.ctx.as_mut().ok_or(GateIoError::Down {
            retry_in: Duration::ZERO,
        })
    }
}

async fn connect(settings: &GateIoSettings) -> Result<Context, GateIoError> {
    let slave = Slave(settings.unit);
    let failed = |detail: String| GateIoError::Connect {
        transport: settings.transport.to_string(),
        detail,
    };
    match &settings.transport {
        Transport::Tcp(addr) => {
            match tokio::time::timeout(settings.call_timeout, tcp::connect_slave(*addr, slave))
                .await
            {
                Err(_) => Err(GateIoError::Timeout {
                    op: "connect",
                    after: settings.call_timeout,
                }),
                Ok(Err(e)) => Err(failed(e.to_string())),
                Ok(Ok(ctx)) => Ok(ctx),
            }
        }
        Transport::Rtu { port, baud } => {
            let stream = tokio_serial::new(port.to_string_lossy(), *baud)
                .open_native_async()
                .map_err(|e| failed(e.to_string()))?;
            Ok(rtu::attach_slave(stream, slave))
        }
    }
}

/// One tokio-modbus call under `timeout`, with its three failures told apart.
async fn call<T>(
    timeout: Duration,
    op: &'static str,
    request: impl Future<Output = tokio_modbus::Result<T>>,
) -> Result<T, GateIoError> {
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Err(GateIoError::Timeout { op, after: timeout }),
        Ok(Err(source)) => Err(GateIoError::Transport { op, source }),
        Ok(Ok(Err(code))) => Err(GateIoError::Exception { op, code }),
        Ok(Ok(Ok(value))) => Ok(value),
    }
}

/// The alarm as a state machine: what the relays should be, given the commands so far and the
/// time now (monotonic, passed in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alarm {
    until: Option<Instant>,
    lock_door: bool,
}

impl Alarm {
    /// A silent alarm.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sounds the alarm until `now + duration`, locking the door if `lock_door`. An alarm that
    /// is already sounding is extended, never shortened, and a lock stays until it ends.
    pub fn sound(&mut self, now: Instant, duration: Duration, lock_door: bool) -> Outputs {
        let until = now + duration;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        self.lock_door |= lock_door;
        self.outputs()
    }

    /// Ends the alarm at once (a guard silenced it).
    pub fn silence(&mut self) -> Outputs {
        self.until = None;
        self.lock_door = false;
        self.outputs()
    }

    /// Ends the alarm if its time is up; returns the new outputs when it did.
    pub fn poll(&mut self, now: Instant) -> Option<Outputs> {
        match self.until {
            Some(until) if until <= now => Some(self.silence()),
            _ => None,
        }
    }

    /// What the relays should be now.
    pub fn outputs(&self) -> Outputs {
        match self.until {
            Some(_) => Outputs::alarm(self.lock_door),
            None => Outputs::IDLE,
        }
    }

    /// When the alarm ends by itself, if it is sounding.
    pub fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Whether the alarm is sounding.
    pub fn is_sounding(&self) -> bool {
        self.until.is_some()
    }
}

/// A command for the [`AlarmDriver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmCommand {
    /// Sound for `duration`, locking the door if asked.
    Sound {
        /// How long.
        duration: Duration,
        /// Lock the door and close the barrier too.
        lock_door: bool,
    },
    /// Stop now.
    Silence,
}

/// What the alarm driver last achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmStatus {
    /// The outputs the alarm wants.
    pub wanted: Outputs,
    /// The outputs last written successfully, `None` if the last write failed.
    pub written: Option<Outputs>,
    /// Whether the module answered the last write (false: report `gate_io_lost`).
    pub link_up: bool,
    /// How long the last successful write took.
    pub last_write: Option<Duration>,
    /// When the last successful write completed (the module had acknowledged every coil).
    pub written_at: Option<Instant>,
}

impl AlarmStatus {
    /// The status of a driver that has not written anything yet.
    pub const INITIAL: AlarmStatus = AlarmStatus {
        wanted: Outputs::IDLE,
        written: None,
        link_up: false,
        last_write: None,
        written_at: None,
    };
}

/// Sends commands to a running [`AlarmDriver`] and watches its status. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlarmHandle {
    commands: mpsc::Sender<AlarmCommand>,
    status: watch::Receiver<AlarmStatus>,
}

impl AlarmHandle {
    /// Sounds the alarm; false if the driver has stopped.
    pub async fn sound(&self, duration: Duration, lock_door: bool) -> bool {
        self.commands
            .send(AlarmCommand::Sound {
                duration,
                lock_door,
            })
            .await
            .is_ok()
    }

    /// Silences the alarm; false if the driver has stopped.
    pub async fn silence(&self) -> bool {
        self.commands.send(AlarmCommand::Silence).await.is_ok()
    }

    /// The driver's status now.
    pub fn status(&self) -> AlarmStatus {
        *self.status.borrow()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<AlarmStatus> {
        self.status.clone()
    }

    /// A handle without a driver: the caller receives the commands and publishes the status
    /// itself (for tests of the gate logic on a virtual clock, and for simulators).
    pub fn detached() -> (
        AlarmHandle,
        mpsc::Receiver<AlarmCommand>,
        watch::Sender<AlarmStatus>,
    ) {
        let (commands, rx) = mpsc::channel(16);
        let (status_tx, status) = watch::channel(AlarmStatus::INITIAL);
        (AlarmHandle { commands, status }, rx, status_tx)
    }
}

/// One change of the gate module's inputs, as read, with the time of the reading (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputChange {
    /// The inputs after the change.
    pub inputs: GateInputs,
    /// When they were read.
    pub at_ms: i64,
}

/// Runs an [`Alarm`] against the gate I/O module.
#[derive(Debug)]
pub struct AlarmDriver {
    io: GateIo,
    alarm: Alarm,
    commands: mpsc::Receiver<AlarmCommand>,
    status: watch::Sender<AlarmStatus>,
    inputs: Option<(Duration, watch::Sender<Option<GateInputs>>)>,
    input_changes: Option<mpsc::UnboundedSender<InputChange>>,
}

impl AlarmDriver {
    /// A driver over `io` and the handle to command it.
    pub fn new(io: GateIo) -> (Self, AlarmHandle) {
        let (tx, rx) = mpsc::channel(16);
        let (status_tx, status_rx) = watch::channel(AlarmStatus::INITIAL);
        let driver = Self {
            io,
            alarm: Alarm::new(),
            commands: rx,
            status: status_tx,
            inputs: None,
            input_changes: None,
        };
        let handle = AlarmHandle {
            commands: tx,
            status: status_rx,
        };
        (driver, handle)
    }

    /// Also reads the module's inputs every `every` (at least 1 ms) between writes, and
    /// publishes every successful reading that differs from the last one (`None` until the
    /// first). A failed read is logged at debug level and retried at the next period (the link's
    /// backoff decides when a reconnect is attempted).
    pub fn poll_inputs(&mut self, every: Duration) -> watch::Receiver<Option<GateInputs>> {
        let (tx, rx) = watch::channel(None);
        self.inputs = Some((every.max(Duration::from_millis(1)), tx));
        rx
    }

    /// Every change of the inputs found by [`poll_inputs`](Self::poll_inputs), in order and
    /// stamped with the time it was read. Unlike the watch channel, which keeps only the latest
    /// reading, this loses no transition: the gate's direction from photo-eyes depends on which
    /// beam broke first and when, even if its consumer was busy while both broke. Changes come
    /// at human pace (a poll every few tens of ms at most), so the channel is unbounded.
    pub fn input_changes(&mut self) -> mpsc::UnboundedReceiver<InputChange> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.input_changes = Some(tx);
        rx
    }

    /// Runs until `shutdown` completes or every handle is dropped. Writes the idle state at
    /// start, the new state on every change, and the current state every
    /// [`REFRESH_INTERVAL`]; a failed write is retried every [`RETRY_INTERVAL`] (the link's
    /// backoff decides when a reconnect is actually attempted).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut refresh = tokio::time::interval(REFRESH_INTERVAL);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let inputs = self.inputs.take();
        let mut input_ticks = tokio::time::interval(
            inputs
                .as_ref()
                .map_or(REFRESH_INTERVAL, |(every, _)| *every),
        );
        input_ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written: Option<Outputs> = None;
        loop {
            let wanted = self.alarm.outputs();
            let retry = (written != Some(wanted)).then(|| Instant::now() + RETRY_INTERVAL);
            let mut force = false;
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                command = self.commands.recv() => match command {
                    None => return,
                    Some(AlarmCommand::Sound { duration, lock_door }) => {
                        tracing::info!(?duration, lock_door, "alarm");
                        self.alarm.sound(Instant::now(), duration, lock_door);
                    }
                    Some(AlarmCommand::Silence) => {
                        tracing::info!("alarm silenced");
                        self.alarm.silence();
                    }
                },
                () = crate::readers::link::until(self.alarm.deadline()) => {
                    if self.alarm.poll(Instant::now()).is_some() {
                        tracing::info!("alarm ended");
                    }
                }
                () = crate::readers::link::until(retry) => {}
                _ = refresh.tick() => force = true,
                _ = input_ticks.tick(), if inputs.is_some() => {
                    if let Some((_, publish)) = &inputs {
                        match self.io.read_inputs().await {
                            Ok(reading) => {
                                let at_ms = crate::model::now_ms();
                                let changed = publish.send_if_modified(|last| {
                                    let changed = *last != Some(reading);
                                    *last = Some(reading);
                                    changed
                                });
                                if let (true, Some(tx)) = (changed, &self.input_changes) {
                                    // A closed receiver only means nobody consumes changes.
                                    let _ = tx.send(InputChange { inputs: reading, at_ms });
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "gate inputs not read"),
                        }
                    }
                }
            }
            let wanted = self.alarm.outputs();
            if !force && written == Some(wanted) {
                continue;
            }
            let (result, link_up) = match self.io.set_outputs(&wanted).await {
                Ok(elapsed) => {
                    written = Some(wanted);
                    (Some((elapsed, Instant::now())), true)
                }
                Err(e) => {
                    written = None;
                    if !matches!(e, GateIoError::Down { .. }) {
                        tracing::warn!(error = %e, "alarm outputs not written");
                    }
                    (None, !e.is_link_failure())
                }
            };
            self.status.send_modify(|s| {
                s.wanted = wanted;
                s.written = written;
                s.link_up = link_up;
                if let Some((elapsed, at)) = result {
                    s.last_write = Some(elapsed);
                    s.written_at = Some(at);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use custos_protocol::modbus_map::{Beam, Door};
    use tokio::net::TcpListener;
    use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
    use tokio_modbus::{Request, Response};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn alarm_sounds_extends_and_ends() {
        let t0 = Instant::now();
        let mut a = Alarm::new();
        assert_eq!(a.outputs(), Outputs::IDLE);
        assert_eq!(a.sound(t0, ms(5000), false), Outputs::alarm(false));
        // A shorter second alarm does not shorten it; a lock request locks at once.
        assert_eq!(a.sound(t0 + ms(1000), ms(1000), true), Outputs::alarm(true));
        assert_eq!(a.deadline(), Some(t0 + ms(5000)));
        assert_eq!(a.poll(t0 + ms(4999)), None);
        assert_eq!(a.poll(t0 + ms(5000)), Some(Outputs::IDLE));
        assert!(!a.is_sounding());
        // A longer one extends.
        a.sound(t0, ms(1000), false);
        a.sound(t0 + ms(500), ms(1000), false);
        assert_eq!(a.deadline(), Some(t0 + ms(1500)));
        assert_eq!(a.silence(), Outputs::IDLE);
        assert_eq!(a.poll(t0 + ms(9999)), None);
    }

    /// A gate I/O module: 8 coils, 8 discrete inputs, as a tokio-modbus TCP server.
    #[derive(Clone, Default)]
    struct Module {
        coils: Arc<Mutex<[bool; 8]>>,
        inputs: Arc<Mutex<[bool; 8]>>,
        writes: Arc<Mutex<Vec<(u16, bool)>>>,
    }

    impl tokio_modbus::server::Service for Module {
        type Request = Request<'static>;
        type Response = Response;
        type Exception = ExceptionCode;
        type Future = std::future::Ready<Result<Response, ExceptionCode>>;

        fn call(&self, req: Self::Request) -> Self::Future {
            let reply = match req {
                Request::WriteSingleCoil(addr, value) if addr < 8 => {
                    self.coils.lock().unwrap()[usize::from(addr)] = value;
                    self.writes.lock().unwrap().push((addr, value));
                    Ok(Response::WriteSingleCoil(addr, value))
                }
                Request::ReadDiscreteInputs(addr, count) if addr + count <= 8 => {
                    let inputs = self.inputs.lock().unwrap();
                    let (a, c) = (usize::from(addr), usize::from(count));
                    Ok(Response::ReadDiscreteInputs(inputs[a..a + c].to_vec()))
                }
                Request::WriteSingleCoil(..) | Request::ReadDiscreteInputs(..) => {
                    Err(ExceptionCode::IllegalDataAddress)
                }
                _ => Err(ExceptionCode::IllegalFunction),
            };
            std::future::ready(reply)
        }
    }

    /// Serves `module` on `listener` in a background task.
    fn serve_on(listener: TcpListener, module: Module) {
        tokio::spawn(async move {
            let server = Server::new(listener);
            let on_connected = |stream, socket_addr| {
                let module = module.clone();
                async move { accept_tcp_connection(stream, socket_addr, |_| Ok(Some(module.clone()))) }
            };
            let _ = server.serve(&on_connected, |_err| {}).await;
        });
    }

    async fn serve(module: Module) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        serve_on(listener, module);
        addr
    }

    fn settings(addr: SocketAddr) -> GateIoSettings {
        GateIoSettings::new(Transport::Tcp(addr))
    }

    #[tokio::test]
    async fn set_outputs_writes_the_mapped_coils() {
        let module = Module::default();
        let addr = serve(module.clone()).await;
        let mut io = GateIo::connect(settings(addr)).await.unwrap();
        let elapsed = io.set_outputs(&Outputs::alarm(true)).await.unwrap();
        assert!(elapsed < DEFAULT_CALL_TIMEOUT * 4);
        assert_eq!(
            *module.coils.lock().unwrap(),
            [true, true, true, true, false, false, false, false]
        );
        io.set_outputs(&Outputs {
            alarm_light: true,
            ..Outputs::IDLE
        })
        .await
        .unwrap();
        assert_eq!(
            module.coils.lock().unwrap()[..4],
            [true, false, false, false]
        );
        // DO0..DO3 in order, each time.
        let writes = module.writes.lock().unwrap().clone();
        assert_eq!(
            writes,
            [
                (0, true),
                (1, true),
                (2, true),
                (3, true),
                (0, true),
                (1, false),
                (2, false),
                (3, false)
            ]
        );
    }

    #[tokio::test]
    async fn a_map_without_lock_and_barrier_writes_two_coils() {
        let module = Module::default();
        let addr = serve(module.clone()).await;
        let mut s = settings(addr);
        s.map.alarm_coil = 4;
        s.map.buzzer_coil = 5;
        s.map.lock_coil = None;
        s.map.barrier_coil = None;
        let mut io = GateIo::connect(s).await.unwrap();
        io.set_outputs(&Outputs::alarm(true)).await.unwrap();
        assert_eq!(*module.writes.lock().unwrap(), [(4, true), (5, true)]);
    }

    #[tokio::test]
    async fn read_inputs_decodes_normally_closed_beams_and_door() {
        let module = Module::default();
        // Inner beam circuit closed (intact), outer open (broken), door contact open.
        *module.inputs.lock().unwrap() = [true, false, false, false, false, false, false, false];
        let addr = serve(module.clone()).await;
        let mut io = GateIo::connect(settings(addr)).await.unwrap();
        let inputs = io.read_inputs().await.unwrap();
        assert_eq!(inputs.inner_beam, Some(Beam::Intact));
        assert_eq!(inputs.outer_beam, Some(Beam::Broken));
        assert_eq!(inputs.door, Some(Door::Open));
        module.inputs.lock().unwrap()[2] = true;
        assert_eq!(io.read_inputs().await.unwrap().door, Some(Door::Closed));
        // An exception keeps the link: the module answered.
        let mut s = settings(addr);
        s.map.door_contact_input = Some(20);
        let mut io = GateIo::connect(s).await.unwrap();
        let err = io.read_inputs().await.unwrap_err();
        assert!(matches!(err, GateIoError::Exception { .. }), "{err}");
        assert!(io.is_connected());
    }

    #[tokio::test]
    async fn a_module_that_never_answers_times_out_and_backs_off() {
        // Accepts connections and never reads or answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let mut s = settings(addr);
        s.call_timeout = ms(100);
        let mut io = GateIo::connect(s).await.unwrap();
        let started = Instant::now();
        let err = io.set_outputs(&Outputs::alarm(false)).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, GateIoError::Timeout { .. }), "{err}");
        assert!(took >= ms(100) && took < ms(1000), "{took:?}");
        assert!(!io.is_connected());
        // Within the backoff the next call fails at once, without waiting.
        let started = Instant::now();
        let err = io.read_inputs().await.unwrap_err();
        assert!(matches!(err, GateIoError::Down { .. }), "{err}");
        assert!(started.elapsed() < ms(50));
        held.abort();
    }

    #[tokio::test]
    async fn reconnects_after_the_module_comes_back() {
        // Nothing listens at first.
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let mut io = GateIo::new(settings(addr)).unwrap();
        let err = io.set_outputs(&Outputs::IDLE).await.unwrap_err();
        assert!(err.is_link_failure(), "{err}");
        assert!(GateIo::connect(settings(addr)).await.is_err());
        // The module appears on that port; after the backoff the link comes back.
        let module = Module::default();
        let listener = TcpListener::bind(addr).await.unwrap();
        serve_on(listener, module.clone());
        // Let the backoff pass without waiting for it.
        tokio::time::pause();
        tokio::time::advance(RECONNECT_FIRST).await;
        tokio::time::resume();
        io.set_outputs(&Outputs::alarm(false)).await.unwrap();
        assert!(module.coils.lock().unwrap()[0]);
    }

    #[tokio::test]
    async fn the_driver_sounds_refreshes_and_ends_the_alarm() {
        let module = Module::default();
        let addr = serve(module.clone()).await;
        let io = GateIo::connect(settings(addr)).await.unwrap();
        let (driver, handle) = AlarmDriver::new(io);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(driver.run(async {
            let _ = stop_rx.await;
        }));
        let mut status = handle.watch();
        assert!(handle.sound(ms(300), true).await);
        status
            .wait_for(|s| s.written == Some(Outputs::alarm(true)))
            .await
            .unwrap();
        assert_eq!(module.coils.lock().unwrap()[..4], [true; 4]);
        assert!(handle.status().link_up);
        // After the duration everything is off again.
        status
            .wait_for(|s| s.written == Some(Outputs::IDLE))
            .await
            .unwrap();
        assert_eq!(module.coils.lock().unwrap()[..4], [false; 4]);
        // A module that rebooted (relays off) gets the state rewritten by the refresh.
        assert!(handle.sound(ms(10_000), false).await);
        status
            .wait_for(|s| s.written == Some(Outputs::alarm(false)))
            .await
            .unwrap();
        module.coils.lock().unwrap()[0] = false;
        status.borrow_and_update();
        let refreshed = async {
            // Every write notifies; the refresh puts the light back on.
            while !module.coils.lock().unwrap()[0] {
                status.changed().await.unwrap();
            }
        };
        tokio::time::timeout(REFRESH_INTERVAL * 3, refreshed)
            .await
            .expect("outputs refreshed");
        assert!(handle.silence().await);
        status
            .wait_for(|s| s.wanted == Outputs::IDLE && s.written == Some(Outputs::IDLE))
            .await
            .unwrap();
        stop_tx.send(()).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn the_driver_publishes_input_changes_and_stamps_writes() {
        let module = Module::default();
        // Both beams intact, door closed.
        *module.inputs.lock().unwrap() = [true, true, true, false, false, false, false, false];
        let addr = serve(module.clone()).await;
        let io = GateIo::connect(settings(addr)).await.unwrap();
        let (mut driver, handle) = AlarmDriver::new(io);
        let mut inputs = driver.poll_inputs(ms(10));
        let task = tokio::spawn(driver.run(std::future::pending()));
        let first = *inputs.wait_for(Option::is_some).await.unwrap();
        assert_eq!(first.unwrap().inner_beam, Some(Beam::Intact));
        // Someone steps into the outer beam.
        module.inputs.lock().unwrap()[1] = false;
        let reading = *inputs
            .wait_for(|i| i.is_some_and(|i| i.outer_beam == Some(Beam::Broken)))
            .await
            .unwrap();
        assert_eq!(reading.unwrap().inner_beam, Some(Beam::Intact));
        // A write is stamped with its completion time, after the command was sent.
        let sent = Instant::now();
        assert!(handle.sound(ms(5_000), false).await);
        let status = *handle
            .watch()
            .wait_for(|s| s.written == Some(Outputs::alarm(false)))
            .await
            .unwrap();
        assert!(status.written_at.is_some_and(|at| at >= sent));
        assert!(module.coils.lock().unwrap()[0]);
        task.abort();
    }

    #[tokio::test]
    async fn a_detached_handle_hands_out_commands_and_takes_a_status() {
        let (handle, mut commands, status) = AlarmHandle::detached();
        assert!(handle.sound(ms(100), true).await);
        assert_eq!(
            commands.recv().await,
            Some(AlarmCommand::Sound {
                duration: ms(100),
                lock_door: true
            })
        );
        status.send_modify(|s| s.link_up = true);
        assert!(handle.status().link_up);
        drop(commands);
        assert!(!handle.silence().await);
    }
}
