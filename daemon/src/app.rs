//! The daemon's top level: what `custosd run` and `custosd check` do, as library functions the
//! binary, in-process tests and the simulator's demo call.
//!
//! # Tasks
//!
//! [`start`] opens the outbox and starts:
//! - one reader task per `[[readers]]` ([`readers::run_reader`]), all feeding one channel of
//!   [`ReaderOutput`]s;
//! - the *pipeline*, the only owner of the smoothers (pure state machines): it feeds them the
//!   reads, polls them after every batch of reads and every [`POLL_INTERVAL`], and stores what
//!   they produce in the outbox (on disk before anything else happens with it): scans, cabinet
//!   snapshots, gate passages (see [`gate`](crate::gate) for how crossing notices become
//!   provisional passages and final passages are not stored twice; carriers of a provisional
//!   passage that went back where they came from are stored as a `TurnedBack` event naming
//!   that passage's seq), and reader health changes
//!   (an event only when a reader's state or fault changes; the latest health of every reader
//!   goes into the heartbeat state, which lists a reader from its first report on: one that has
//!   not reported yet is unknown, not faulty, and its driver reports it as not answering once
//!   its reply timeout has passed). It hands every outward crossing to the gate task. With
//!   both photo-eyes configured it feeds their changes to the gate smoothers (`use_beams`),
//!   before any read that arrives after them. A cabinet smoother is polled only while its
//!   reader works (it reported a state other than fault, or reads arrive): a silent reader
//!   would make every tag "disappear", and the first count must not start before the reader
//!   does. A cabinet reader back from a fault gets a fresh smoother, whose first count lists
//!   everything present, rather than reporting as removed what it could not read meanwhile.
//!   Staff badges for the gate smoothers come from the policy (its borrower badges);
//! - the gate task ([`GateTask`]): server verdict with a deadline, policy fallback, alarm;
//! - the alarm driver over the gate I/O module (which also reads the photo-eyes every
//!   [`BEAM_POLL_INTERVAL`]), the policy cache (gates only), the shipper and the heartbeats.
//!
//! # Outbox full
//!
//! When the outbox refuses an event (full, or failing), nothing already stored is dropped; the
//! refused event is counted, the `outbox_full` (or `storage_error`) device fault is raised in
//! the heartbeat state at once and logged, and the gate still decides the exit (from the policy,
//! since no server verdict can come for an event that was not stored). Once an event is stored
//! again, a `DeviceFault` event records how many events were refused, and the fault clears.
//!
//! # Shutdown
//!
//! [`Running::stop`] (what [`run`] does when its shutdown future completes) stops in order:
//! the readers (closing their ports), then the pipeline (which takes what the readers had
//! queued, polls once more and takes a final count of every cabinet), then the gate (which
//! decides any exit still waiting, from the policy), then the alarm driver, policy cache,
//! heartbeats and the shipper (after one last upload attempt), and last closes the outbox.
//!
//! # In-process use
//!
//! [`start_with`] with `open_readers: false` runs everything except the serial readers; reads
//! are fed through [`Running::reader_input`] (tests, the simulator's demo). [`Running`] also
//! exposes the metrics, the gate's reports, the heartbeat state, the policy and the alarm.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use custos_protocol::epc::Epc;
use custos_protocol::modbus_map::{Beam, GateInputs};
use custos_protocol::uplink::{DeviceFaultKind, Direction, EventBody, HealthState, ReaderFault};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::actuators::{
    AlarmDriver, AlarmHandle, GateIo, GateIoError, GateIoSettings, InputChange, Transport,
};
use crate::config::{
    Config, GateIoConfig, GateIoTransport, Placement, ReaderConfig,
    SmoothingConfig as SmoothingSettings,
};
use crate::gate::{AlarmSettings, Exit, GateChannels, GateCore, GateMetrics, GateReport, GateTask};
use crate::keys::DeviceKey;
use crate::model::{ReaderName, ReaderOutput};
use crate::outbox::{EventId, Outbox, OutboxError};
use crate::policy::{self, CurrentPolicy, PolicyCache};
use crate::readers::{self, ReaderSettings};
use crate::smoothing::{
    self, CabinetConfig, CabinetSmoother, DEFAULT_APPEAR_WINDOW_MS, GateConfig, GateSmoother,
    Output, PassageId, Side,
};
use crate::uplink::{
    HeartbeatState, Heartbeats, ServerAnswer, Shipper, ShipperConfig, Uplink, UplinkError, now_ms,
};

/// How often the pipeline polls the smoothers when no reads arrive.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often the photo-eyes are read.
pub const BEAM_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Capacity of the channel from the readers to the pipeline.
pub const READER_CHANNEL: usize = 1024;
/// The most reader outputs taken before the smoothers are polled.
const READ_BATCH: usize = 256;
/// Capacity of the channel that carries server answers to the gate.
const ANSWER_CHANNEL: usize = 64;
/// Capacity of the channel of exits from the pipeline to the gate.
const EXIT_CHANNEL: usize = 64;
/// Capacity of the gate's report channel (slow observers miss reports, never block the gate).
const REPORT_CHANNEL: usize = 256;
/// How often a raised outbox fault tries to record itself (and so find the outbox usable).
const FAULT_RETRY: Duration = Duration::from_secs(1);
/// The longest `check` waits for one device.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The outbox did not open.
    #[error("outbox: {0}")]
    Outbox(#[from] OutboxError),
    /// The uplink client could not be built.
    #[error("uplink: {0}")]
    Uplink(#[from] UplinkError),
    /// The gate I/O settings are unusable.
    #[error("gate_io: {0}")]
    GateIo(#[from] GateIoError),
}

// ---------------------------------------------------------------------------------------------
// Configuration → the settings of each part.

/// The driver settings of a `[[readers]]` entry (antennas in inventory order: a gate's inner
/// then outer ones).
pub fn reader_settings(r: &ReaderConfig) -> ReaderSettings {
    ReaderSettings {
        name: r.name.clone(),
        protocol: r.protocol,
        port: r.port.clone(),
        baud: r.baud,
        address: r.address,
        antennas: r.antennas_in_order(),
        power_dbm: r.power_dbm,
        reply_timeout: r.reply_timeout,
        poll_interval: r.poll_interval,
        backoff_max: r.backoff_max,
        chafon_form: r.chafon_form,
    }
}

/// The gate I/O link settings of `[gate_io]`.
pub fn gate_io_settings(g: &GateIoConfig) -> GateIoSettings {
    GateIoSettings {
        transport: match &g.transport {
            GateIoTransport::Tcp(addr) => Transport::Tcp(*addr),
            GateIoTransport::Rtu { port, baud } => Transport::Rtu {
                port: port.clone(),
                baud: *baud,
            },
        },
        unit: g.unit,
        map: g.map,
        call_timeout: g.call_timeout,
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The presence rules of `[smoothing]`.
pub fn presence_config(s: &SmoothingSettings) -> smoothing::SmoothingConfig {
    smoothing::SmoothingConfig {
        min_reads: s.min_reads,
        appear_window_ms: DEFAULT_APPEAR_WINDOW_MS,
        holdoff_ms: ms(s.holdoff_ms),
    }
}

/// The gate smoother settings of a gate reader (`None` unless it has inner and outer
/// antennas). `use_beams` when both photo-eyes are configured.
pub fn gate_config(r: &ReaderConfig, s: &SmoothingSettings, use_beams: bool) -> Option<GateConfig> {
    let Placement::Gate { inner, outer } = &r.placement else {
        return None;
    };
    Some(GateConfig {
        inner_antennas: inner.clone(),
        outer_antennas: outer.clone(),
        smoothing: presence_config(s),
        passage_gap_ms: ms(s.passage_gap_ms),
        use_beams,
    })
}

/// The cabinet smoother settings of `[smoothing]`.
pub fn cabinet_config(s: &SmoothingSettings) -> CabinetConfig {
    CabinetConfig {
        smoothing: presence_config(s),
        ..CabinetConfig::default()
    }
}

/// Whether the gate I/O has both photo-eyes, so direction comes from them.
pub fn uses_beams(config: &Config) -> bool {
    config
        .gate_io
        .as_ref()
        .is_some_and(|g| g.map.inner_beam_input.is_some() && g.map.outer_beam_input.is_some())
}

// ---------------------------------------------------------------------------------------------
// check

/// What `custosd check` found for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCheck {
    /// Which device: `readers[0] (uhf-main)` or `gate_io`.
    pub device: String,
    /// What it said, or why it failed.
    pub result: Result<String, String>,
}

/// Opens every reader once (asking those that can be asked who they are) and connects to the
/// gate I/O once (reading its inputs if any are fitted). Never writes a coil.
pub async fn check(config: &Config) -> Vec<DeviceCheck> {
    let missing = config.missing_ports();
    let mut out = Vec::new();
    for (i, r) in config.readers.iter().enumerate() {
        let key = format!("readers[{i}].port");
        let result = match missing.iter().find(|p| p.key == key) {
            Some(problem) => Err(problem.to_string()),
            None => {
                let settings = reader_settings(r);
                match tokio::time::timeout(CHECK_TIMEOUT, readers::check(&settings)).await {
                    Ok(Ok(info)) => Ok(info.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                }
            }
        };
        out.push(DeviceCheck {
            device: format!("readers[{i}] ({})", r.name),
            result,
        });
    }
    if let Some(g) = &config.gate_io {
        let settings = gate_io_settings(g);
        let transport = settings.transport.to_string();
        let result = tokio::time::timeout(CHECK_TIMEOUT, async {
            let mut io = GateIo::connect(settings).await?;
            match g.map.input_block() {
                None => Ok(format!("{transport}: connected")),
                Some(_) => {
                    let inputs = io.read_inputs().await?;
                    Ok(format!("{transport}: connected; inputs {inputs:?}"))
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(GateIoError::Timeout {
                op: "check",
                after: CHECK_TIMEOUT,
            })
        })
        .map_err(|e: GateIoError| e.to_string());
        out.push(DeviceCheck {
            device: "gate_io".into(),
            result,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// What the pipeline has done since start.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Tag reads taken.
    pub reads: AtomicU64,
    /// Events stored in the outbox.
    pub events_stored: AtomicU64,
    /// Events the outbox refused (full or failing).
    pub events_refused: AtomicU64,
    /// Crossing notices (each stored as a provisional passage).
    pub crossings: AtomicU64,
    /// Final passages not stored because every carrier in them was announced.
    pub final_passages_dropped: AtomicU64,
    /// Final passages stored for carriers no notice announced.
    pub final_passages_stored: AtomicU64,
    /// Announced passages that turned back (every carrier went back).
    pub turned_back: AtomicU64,
    /// `TurnedBack` events stored (carriers of a provisional passage that did not pass).
    pub turned_back_stored: AtomicU64,
    /// Reader health changes stored.
    pub health_events: AtomicU64,
}

/// Every counter of a running daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The gate's decisions and alarm latencies.
    pub gate: Arc<GateMetrics>,
    /// The pipeline's counts.
    pub pipeline: PipelineMetrics,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

// ---------------------------------------------------------------------------------------------
// Running

/// How [`start_with`] starts the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOptions {
    /// Open the configured serial readers (default). Without them, reads come only through
    /// [`Running::reader_input`].
    pub open_readers: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self { open_readers: true }
    }
}

/// A stop signal several tasks wait on.
#[derive(Debug)]
struct Stop {
    tx: watch::Sender<bool>,
}

impl Stop {
    fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// A future that completes once [`Stop::stop`] was called (or the `Stop` is gone).
    fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    fn stop(&self) {
        self.tx.send_replace(true);
    }
}

type Tasks = Vec<(&'static str, JoinHandle<()>)>;

async fn join(tasks: Tasks) {
    for (name, task) in tasks {
        if let Err(e) = task.await {
            tracing::error!(task = name, error = %e, "task failed");
        }
    }
}

/// A running daemon. Stop it with [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    epoch: u64,
    metrics: Arc<Metrics>,
    reports: broadcast::Sender<GateReport>,
    reader_input: mpsc::Sender<ReaderOutput>,
    heartbeat: watch::Receiver<HeartbeatState>,
    policy: CurrentPolicy,
    alarm: Option<AlarmHandle>,
    gate_inputs: Option<watch::Receiver<Option<GateInputs>>>,
    outbox: Outbox,
    stops: [Stop; 4],
    tasks: [Tasks; 4],
}

impl Running {
    /// This start's boot epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Every gate report from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<GateReport> {
        self.reports.subscribe()
    }

    /// A channel into the pipeline, as if from a reader (named as in the configuration).
    pub fn reader_input(&self) -> mpsc::Sender<ReaderOutput> {
        self.reader_input.clone()
    }

    /// What the next heartbeat reports.
    pub fn heartbeat_state(&self) -> watch::Receiver<HeartbeatState> {
        self.heartbeat.clone()
    }

    /// The gate policy held.
    pub fn policy(&self) -> CurrentPolicy {
        self.policy.clone()
    }

    /// The alarm, if a gate I/O module is configured.
    pub fn alarm(&self) -> Option<AlarmHandle> {
        self.alarm.clone()
    }

    /// The photo-eye readings, when both photo-eyes are configured.
    pub fn gate_inputs(&self) -> Option<watch::Receiver<Option<GateInputs>>> {
        self.gate_inputs.clone()
    }

    /// Events stored and not yet acknowledged by the server.
    pub async fn outbox_depth(&self) -> Result<u64, OutboxError> {
        self.outbox.depth().await
    }

    /// Stops everything in order (see the module doc) and closes the outbox.
    pub async fn stop(self) {
        let Running {
            epoch,
            stops,
            tasks,
            outbox,
            reader_input,
            alarm,
            gate_inputs,
            ..
        } = self;
        drop((reader_input, alarm, gate_inputs));
        tracing::info!("shutting down");
        for (stop, tasks) in stops.iter().zip(tasks) {
            stop.stop();
            join(tasks).await;
        }
        outbox.close().await;
        tracing::info!(epoch, "stopped");
    }
}

/// Starts the daemon with the serial readers (see [`start_with`]).
pub async fn start(config: Config, key: DeviceKey) -> Result<Running, RunError> {
    start_with(config, key, StartOptions::default()).await
}

/// Starts every task (see the module doc) and returns once they run.
pub async fn start_with(
    config: Config,
    key: DeviceKey,
    options: StartOptions,
) -> Result<Running, RunError> {
    if options.open_readers {
        for missing in config.missing_ports() {
            // Not fatal: the reader reports serial_lost until the device appears, so the server
            // learns which reader is missing instead of hearing nothing from the whole device.
            tracing::error!(key = %missing.key, "{}", missing.reason);
        }
    }
    let outbox = Outbox::open(config.data_dir.clone(), config.outbox.max_events).await?;
    let epoch = outbox.epoch();
    let uplink = Arc::new(
        Uplink::new(
            &config.server,
            &config.device_id,
            key,
            config.server_public_key,
        )?
        .with_request_timeout(config.uplink.request_timeout()),
    );
    if !uplink.is_pinned() {
        tracing::warn!(
            "no server_public_key: server verdicts, directives and policies cannot be trusted"
        );
    }
    let is_gate = config
        .readers
        .iter()
        .any(|r| matches!(r.placement, Placement::Gate { .. }));
    if is_gate && config.gate_io.is_none() {
        tracing::warn!("a gate without [gate_io]: exits are decided but no alarm can sound");
    }

    // Stages, stopped in this order: readers, pipeline, gate, the rest.
    let stops = [Stop::new(), Stop::new(), Stop::new(), Stop::new()];
    let mut tasks: [Tasks; 4] = Default::default();
    let [readers_stop, pipeline_stop, gate_stop, rest_stop] = &stops;

    // No reader is listed before its first report: nothing is known about it yet, and a
    // placeholder health would read as a fault on the server at every start (the driver
    // reports a reader that does not answer within its reply timeout).
    let (heartbeat, heartbeat_rx) = watch::channel(HeartbeatState::default());
    let (answers, answer_rx) = mpsc::channel::<ServerAnswer>(ANSWER_CHANNEL);
    let metrics = Arc::new(Metrics::default());
    let (reports, _) = broadcast::channel(REPORT_CHANNEL);

    // Alarm driver (and photo-eyes).
    let mut beams = None;
    let mut beam_changes = None;
    let alarm = match &config.gate_io {
        None => None,
        Some(g) => {
            let io = GateIo::new(gate_io_settings(g))?;
            let (mut driver, handle) = AlarmDriver::new(io);
            if uses_beams(&config) {
                beams = Some(driver.poll_inputs(BEAM_POLL_INTERVAL));
                beam_changes = Some(driver.input_changes());
            }
            let task = driver
                .run(rest_stop.signal())
                .instrument(tracing::info_span!("gate_io"));
            tasks[3].push(("alarm", tokio::spawn(task)));
            Some(handle)
        }
    };

    // Policy cache (gates only).
    let (policy, policy_requests) = if is_gate {
        let (cache, current, requests) = PolicyCache::new(
            uplink.clone(),
            epoch,
            &config.data_dir,
            config.server_public_key,
            config.uplink.policy_refresh(),
        );
        let task = cache
            .run(rest_stop.signal())
            .instrument(tracing::info_span!("policy"));
        tasks[3].push(("policy", tokio::spawn(task)));
        (current, Some(requests))
    } else {
        (watch::channel(None).1, None)
    };

    // Uplink.
    let shipper = Shipper::new(
        outbox.clone(),
        uplink.clone(),
        ShipperConfig::from(&config.uplink),
        answers.clone(),
    );
    let task = shipper
        .run(rest_stop.signal())
        .instrument(tracing::info_span!("shipper"));
    tasks[3].push(("shipper", tokio::spawn(task)));
    let heartbeats = Heartbeats::new(
        uplink.clone(),
        outbox.clone(),
        config.uplink.heartbeat_interval(),
        heartbeat_rx.clone(),
        answers,
    );
    let task = heartbeats
        .run(rest_stop.signal())
        .instrument(tracing::info_span!("heartbeats"));
    tasks[3].push(("heartbeats", tokio::spawn(task)));

    // Gate.
    let (exits, exit_rx) = mpsc::channel::<Exit>(EXIT_CHANNEL);
    let core = GateCore::new(
        config.uplink.verdict_deadline(),
        AlarmSettings {
            duration: config.alarm.duration(),
            lock_door: config.alarm.lock_door,
        },
    );
    let gate = GateTask::new(
        core,
        GateChannels {
            exits: exit_rx,
            answers: answer_rx,
            policy: policy.clone(),
            policy_requests,
            alarm: alarm.clone(),
            heartbeat: heartbeat.clone(),
            outbox: outbox.clone(),
            metrics: metrics.gate.clone(),
            reports: reports.clone(),
        },
    );
    let task = gate
        .run(gate_stop.signal())
        .instrument(tracing::info_span!("gate"));
    tasks[2].push(("gate", tokio::spawn(task)));

    // Pipeline.
    let (reader_input, reader_rx) = mpsc::channel::<ReaderOutput>(READER_CHANNEL);
    let pipeline = Pipeline::new(
        &config,
        outbox.clone(),
        exits,
        heartbeat,
        metrics.clone(),
        policy.clone(),
        uplink.is_pinned(),
    );
    let gate_inputs = beams;
    let task = pipeline
        .run(reader_rx, beam_changes, pipeline_stop.signal())
        .instrument(tracing::info_span!("pipeline"));
    tasks[1].push(("pipeline", tokio::spawn(task)));

    // Readers.
    if options.open_readers {
        for r in &config.readers {
            let task = readers::run_reader(
                reader_settings(r),
                reader_input.clone(),
                readers_stop.signal(),
            );
            tasks[0].push(("reader", tokio::spawn(task)));
        }
    }

    tracing::info!(
        "custosd running device={} epoch={} role={:?} readers={}",
        config.device_id,
        epoch,
        config.role(),
        config.readers.len()
    );
    Ok(Running {
        epoch,
        metrics,
        reports,
        reader_input,
        heartbeat: heartbeat_rx,
        policy,
        alarm,
        gate_inputs,
        outbox,
        stops,
        tasks,
    })
}

/// Runs the daemon until `shutdown` completes, then stops every task and closes the outbox.
pub async fn run(
    config: Config,
    key: DeviceKey,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let running = start(config, key).await?;
    shutdown.await;
    running.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The pipeline

#[derive(Debug)]
enum Smoother {
    Gate(Box<GateSmoother>),
    Cabinet(Box<CabinetSmoother>),
    /// Scanners: scans go straight to the outbox.
    Scanner,
}

#[derive(Debug)]
struct ReaderSlot {
    name: ReaderName,
    smoother: Smoother,
    /// The state and fault last stored as an event.
    reported: Option<(HealthState, Option<ReaderFault>)>,
    /// A tag read has arrived from it.
    read_seen: bool,
}

impl ReaderSlot {
    /// Whether its cabinet smoother may be polled: the reader works (it reported a state other
    /// than fault, or reads arrive) and is not in fault. A reader that reads nothing would make
    /// every tag disappear after the hold-off, and the first count must not start before the
    /// reader does (see `smoothing::cabinet`).
    fn cabinet_live(&self) -> bool {
        match &self.reported {
            Some((state, _)) => *state != HealthState::Fault,
            None => self.read_seen,
        }
    }
}

/// A fault raised because the outbox refused events.
#[derive(Debug)]
struct StorageFault {
    kind: DeviceFaultKind,
    refused: u64,
    last_try: Instant,
}

/// A provisional passage stored for a crossing notice: its event (`None` if the outbox refused
/// it) and its carrier tags.
type Provisional = (Option<EventId>, Vec<Epc>);

/// The pipeline task: smoothers, outbox, exits. See the module doc.
#[derive(Debug)]
struct Pipeline {
    slots: Vec<ReaderSlot>,
    index: HashMap<ReaderName, usize>,
    cabinet: CabinetConfig,
    outbox: Outbox,
    exits: mpsc::Sender<Exit>,
    heartbeat: watch::Sender<HeartbeatState>,
    metrics: Arc<Metrics>,
    policy: CurrentPolicy,
    pinned: bool,
    /// The provisional passages stored per passage (event, its carrier tags), until the
    /// passage's final output.
    announced: HashMap<(ReaderName, PassageId), Vec<Provisional>>,
    fault: Option<StorageFault>,
}

impl Pipeline {
    fn new(
        config: &Config,
        outbox: Outbox,
        exits: mpsc::Sender<Exit>,
        heartbeat: watch::Sender<HeartbeatState>,
        metrics: Arc<Metrics>,
        policy: CurrentPolicy,
        pinned: bool,
    ) -> Self {
        let use_beams = uses_beams(config);
        let slots: Vec<ReaderSlot> = config
            .readers
            .iter()
            .map(|r| {
                let smoother = match (&r.placement, gate_config(r, &config.smoothing, use_beams)) {
                    (_, Some(g)) => Smoother::Gate(Box::new(GateSmoother::new(r.name.clone(), g))),
                    (Placement::Cabinet { .. }, None) => Smoother::Cabinet(Box::new(
                        CabinetSmoother::new(r.name.clone(), cabinet_config(&config.smoothing)),
                    )),
                    _ => Smoother::Scanner,
                };
                ReaderSlot {
                    name: r.name.clone(),
                    smoother,
                    reported: None,
                    read_seen: false,
                }
            })
            .collect();
        let index = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let mut pipeline = Self {
            slots,
            index,
            cabinet: cabinet_config(&config.smoothing),
            outbox,
            exits,
            heartbeat,
            metrics,
            policy,
            pinned,
            announced: HashMap::new(),
            fault: None,
        };
        pipeline.policy_changed();
        pipeline
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<ReaderOutput>,
        mut beams: Option<mpsc::UnboundedReceiver<InputChange>>,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut policy = Some(self.policy.clone());
        let mut open = true;
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                // Before reads: a beam break opens the window the reads that follow belong to.
                change = next_change(&mut beams) => match change {
                    Some(change) => {
                        self.beams(change.inputs, change.at_ms);
                        self.poll_all().await;
                    }
                    None => beams = None,
                },
                output = rx.recv(), if open => match output {
                    Some(output) => {
                        self.take(output).await;
                        for _ in 1..READ_BATCH {
                            match rx.try_recv() {
                                Ok(output) => self.take(output).await,
                                Err(_) => break,
                            }
                        }
                        self.poll_all().await;
                    }
                    None => open = false,
                },
                held = changed(&mut policy) => match held {
                    Some(_) => self.policy_changed(),
                    None => policy = None,
                },
                _ = ticks.tick() => {
                    self.poll_all().await;
                    self.housekeeping().await;
                }
            }
        }
        // The readers have stopped: take what they queued, then the final count.
        while let Ok(output) = rx.try_recv() {
            self.take(output).await;
        }
        self.poll_all().await;
        let now = now_ms();
        let mut finals = Vec::new();
        for slot in &mut self.slots {
            let live = slot.cabinet_live();
            if let Smoother::Cabinet(c) = &mut slot.smoother {
                if live {
                    finals.extend(c.snapshot(now));
                }
            }
        }
        for event in finals {
            self.store(event.at_ms, event.body).await;
        }
        tracing::debug!("pipeline stopped");
    }

    /// Takes one reader output.
    async fn take(&mut self, output: ReaderOutput) {
        match output {
            ReaderOutput::Tag { reader, read } => {
                bump(&self.metrics.pipeline.reads);
                let Some(slot) = self.slot(&reader) else {
                    tracing::debug!(%reader, "tag read from an unknown reader; ignored");
                    return;
                };
                slot.read_seen = true;
                match &mut slot.smoother {
                    Smoother::Gate(g) => g.handle_read(read),
                    Smoother::Cabinet(c) => c.handle_read(read),
                    Smoother::Scanner => {
                        tracing::debug!(%reader, "tag read from a reader without antennas; ignored");
                    }
                }
            }
            ReaderOutput::Scan {
                reader,
                at_ms,
                code,
            } => {
                let body = EventBody::Scan {
                    reader: reader.to_string(),
                    code,
                };
                self.store(at_ms, body).await;
            }
            ReaderOutput::Health { reader, health } => {
                self.heartbeat
                    .send_modify(|s| s.set_reader(&reader, health.clone()));
                let key = (health.state, health.fault.clone());
                let cabinet = self.cabinet;
                let Some(slot) = self.slot(&reader) else {
                    return;
                };
                if slot.reported.as_ref() == Some(&key) {
                    return;
                }
                let was_fault = slot
                    .reported
                    .as_ref()
                    .is_some_and(|(state, _)| *state == HealthState::Fault);
                if let Smoother::Cabinet(c) = &mut slot.smoother {
                    if was_fault && health.state != HealthState::Fault {
                        // Back from a fault: what was not read meanwhile must not count as
                        // removed. A fresh smoother counts again from scratch (its first
                        // snapshot lists every tag present).
                        **c = CabinetSmoother::new(reader.clone(), cabinet);
                    }
                }
                slot.reported = Some(key);
                tracing::info!(%reader, state = ?health.state, fault = ?health.fault, "reader health changed");
                let body = EventBody::ReaderHealth {
                    reader: reader.to_string(),
                    health,
                };
                if self.store(now_ms(), body).await.is_some() {
                    bump(&self.metrics.pipeline.health_events);
                }
            }
        }
    }

    fn slot(&mut self, reader: &str) -> Option<&mut ReaderSlot> {
        let i = *self.index.get(reader)?;
        self.slots.get_mut(i)
    }

    /// Feeds a photo-eye reading to every gate smoother.
    /// `at_ms` is when the module was read, so a change the pipeline takes late still counts at
    /// the moment it happened.
    fn beams(&mut self, inputs: GateInputs, at_ms: i64) {
        let now = at_ms;
        for slot in &mut self.slots {
            if let Smoother::Gate(g) = &mut slot.smoother {
                for (side, beam) in [
                    (Side::Inner, inputs.inner_beam),
                    (Side::Outer, inputs.outer_beam),
                ] {
                    if let Some(beam) = beam {
                        g.handle_beam(now, side, beam == Beam::Broken);
                    }
                }
            }
        }
    }

    /// The policy changed: new badges for the gate smoothers, its version for heartbeats.
    fn policy_changed(&mut self) {
        let held = self.policy.borrow().clone();
        let version = held.as_ref().map_or(0, |p| p.policy.version);
        let badges = held
            .as_ref()
            .map(|p| policy::badges(&p.policy))
            .unwrap_or_default();
        for slot in &mut self.slots {
            if let Smoother::Gate(g) = &mut slot.smoother {
                g.set_badges(badges.clone());
            }
        }
        self.heartbeat.send_if_modified(|s| {
            let changed = s.policy_version != version;
            s.policy_version = version;
            changed
        });
    }

    /// Polls every smoother and handles what they produce.
    async fn poll_all(&mut self) {
        let now = now_ms();
        let mut gate_outputs = Vec::new();
        let mut snapshots = Vec::new();
        for slot in &mut self.slots {
            let live = slot.cabinet_live();
            match &mut slot.smoother {
                Smoother::Gate(g) => {
                    gate_outputs.extend(g.poll(now).into_iter().map(|o| (slot.name.clone(), o)));
                }
                Smoother::Cabinet(c) => {
                    if live {
                        snapshots.extend(c.poll(now));
                    }
                }
                Smoother::Scanner => {}
            }
        }
        let recognised = Instant::now();
        for (reader, output) in gate_outputs {
            self.gate_output(reader, output, recognised).await;
        }
        for event in snapshots {
            self.store(event.at_ms, event.body).await;
        }
    }

    /// Stores a gate smoother's output (see the `gate` module doc) and hands exits to the gate.
    async fn gate_output(&mut self, reader: ReaderName, output: Output, recognised: Instant) {
        match output {
            Output::Crossing(c) => {
                bump(&self.metrics.pipeline.crossings);
                let body = EventBody::Passage {
                    reader: reader.to_string(),
                    direction: c.direction,
                    tags: c.sightings,
                    badges: c.badge_sightings,
                    local_verdict: None,
                };
                let event = self.store(c.at_ms, body).await;
                self.announced
                    .entry((reader.clone(), c.passage))
                    .or_default()
                    .push((event, c.tags.clone()));
                tracing::info!(
                    %reader,
                    passage = c.passage.0,
                    direction = ?c.direction,
                    tags = c.tags.len(),
                    seq = event.map(|e| e.seq),
                    "crossing"
                );
                if c.direction == Direction::Out {
                    self.exit(Exit {
                        reader,
                        passage: c.passage,
                        recognised,
                        event,
                        at_ms: c.at_ms,
                        tags: c.tags,
                        badges: c.badges,
                    })
                    .await;
                }
            }
            Output::Passage { passage, event } => {
                let announced = self
                    .announced
                    .remove(&(reader.clone(), passage))
                    .unwrap_or_default();
                let EventBody::Passage {
                    direction,
                    tags,
                    badges,
                    ..
                } = event.body
                else {
                    tracing::error!(%reader, "gate smoother produced a non-passage event");
                    return;
                };
                let passed: HashSet<Epc> = tags.iter().map(|s| s.epc).collect();
                self.went_back(&reader, passage, event.at_ms, &announced, &passed)
                    .await;
                let fresh: Vec<_> = tags
                    .into_iter()
                    .filter(|s| !announced.iter().any(|(_, a)| a.contains(&s.epc)))
                    .collect();
                if fresh.is_empty() {
                    bump(&self.metrics.pipeline.final_passages_dropped);
                    tracing::debug!(%reader, passage = passage.0, "final passage already stored");
                    return;
                }
                bump(&self.metrics.pipeline.final_passages_stored);
                let tags: Vec<Epc> = fresh.iter().map(|s| s.epc).collect();
                let badge_epcs: Vec<Epc> = badges.iter().map(|s| s.epc).collect();
                let body = EventBody::Passage {
                    reader: reader.to_string(),
                    direction,
                    tags: fresh,
                    badges,
                    local_verdict: None,
                };
                let stored = self.store(event.at_ms, body).await;
                tracing::info!(%reader, passage = passage.0, ?direction, tags = tags.len(), "passage with carriers not announced before");
                if direction == Direction::Out {
                    self.exit(Exit {
                        reader,
                        passage,
                        recognised: Instant::now(),
                        event: stored,
                        at_ms: event.at_ms,
                        tags,
                        badges: badge_epcs,
                    })
                    .await;
                }
            }
            Output::TurnedBack { passage } => {
                let announced = self
                    .announced
                    .remove(&(reader.clone(), passage))
                    .unwrap_or_default();
                bump(&self.metrics.pipeline.turned_back);
                tracing::info!(%reader, passage = passage.0, "carriers turned back after their crossing was stored");
                self.went_back(&reader, passage, now_ms(), &announced, &HashSet::new())
                    .await;
            }
        }
    }

    /// Stores, for each provisional passage of `passage`, a `TurnedBack` event with its
    /// carriers that are not among `passed` (they went back where they came from). A
    /// provisional passage that was not stored (outbox refused it) has nothing to correct.
    async fn went_back(
        &mut self,
        reader: &ReaderName,
        passage: PassageId,
        at_ms: i64,
        announced: &[Provisional],
        passed: &HashSet<Epc>,
    ) {
        let epoch = self.outbox.epoch();
        for (event, tags) in announced {
            let Some(event) = event.filter(|e| e.epoch == epoch) else {
                continue;
            };
            let tags: Vec<Epc> = tags
                .iter()
                .filter(|t| !passed.contains(t))
                .copied()
                .collect();
            if tags.is_empty() {
                continue;
            }
            let count = tags.len();
            let body = EventBody::TurnedBack {
                reader: reader.to_string(),
                passage_seq: event.seq,
                tags,
            };
            if let Some(stored) = self.store(at_ms, body).await {
                bump(&self.metrics.pipeline.turned_back_stored);
                tracing::info!(
                    %reader,
                    passage = passage.0,
                    passage_seq = event.seq,
                    seq = stored.seq,
                    tags = count,
                    "carriers went back: did not pass"
                );
            }
        }
    }

    async fn exit(&self, exit: Exit) {
        if self.exits.send(exit).await.is_err() {
            tracing::error!("gate task gone; exit not decided");
        }
    }

    /// Stores an event; on refusal raises the storage fault (see the module doc).
    async fn store(&mut self, at_ms: i64, body: EventBody) -> Option<EventId> {
        match self.outbox.append(at_ms, &body).await {
            Ok(id) => {
                bump(&self.metrics.pipeline.events_stored);
                if self.fault.is_some() {
                    self.record_fault().await;
                }
                Some(id)
            }
            Err(OutboxError::Invalid(e)) => {
                // A bug upstream: the server would refuse every batch holding it.
                tracing::error!(error = %e, ?body, "invalid event not stored");
                None
            }
            Err(e) => {
                bump(&self.metrics.pipeline.events_refused);
                let kind = match e {
                    OutboxError::Full { .. } => DeviceFaultKind::OutboxFull,
                    _ => DeviceFaultKind::StorageError,
                };
                let fault = self.fault.get_or_insert_with(|| {
                    tracing::error!(error = %e, "outbox refused an event: device fault raised");
                    StorageFault {
                        kind,
                        refused: 0,
                        last_try: Instant::now(),
                    }
                });
                fault.refused += 1;
                fault.kind = kind;
                let detail = format!("{e}; {} new events refused", fault.refused);
                self.heartbeat.send_modify(|s| {
                    s.raise(kind, detail, now_ms());
                });
                None
            }
        }
    }

    /// Records the storage fault as an event; when the outbox takes it, the fault clears.
    async fn record_fault(&mut self) {
        let Some(fault) = &mut self.fault else {
            return;
        };
        fault.last_try = Instant::now();
        let kind = fault.kind;
        let body = EventBody::DeviceFault {
            kind,
            detail: format!("{} events refused by the outbox", fault.refused),
        };
        if self.outbox.append(now_ms(), &body).await.is_ok() {
            tracing::warn!(
                refused = fault.refused,
                "outbox usable again: device fault cleared"
            );
            self.fault = None;
            self.heartbeat.send_modify(|s| {
                s.clear(kind);
            });
        }
    }

    /// Periodic checks: a raised storage fault tries to record itself; an expired policy is a
    /// device fault.
    async fn housekeeping(&mut self) {
        if self
            .fault
            .as_ref()
            .is_some_and(|f| f.last_try.elapsed() >= FAULT_RETRY)
        {
            self.record_fault().await;
        }
        if !self.pinned {
            return;
        }
        let now = now_ms();
        let expired = self.policy.borrow().as_ref().and_then(|p| {
            p.policy
                .trusted_at(now)
                .err()
                .map(|reason| format!("gate policy v{}: {reason:?}", p.policy.version))
        });
        self.heartbeat.send_if_modified(|s| match &expired {
            Some(detail) if !s.has_fault(DeviceFaultKind::PolicyExpired) => {
                tracing::error!(%detail, "gate policy no longer trusted: every exit alarms");
                s.raise(DeviceFaultKind::PolicyExpired, detail.clone(), now)
            }
            Some(_) => false,
            None => s.clear(DeviceFaultKind::PolicyExpired),
        });
    }
}

/// The next value of a watch, `None` when its sender is gone; never completes without one.
/// The next photo-eye change, or never when there are no photo-eyes.
async fn next_change(rx: &mut Option<mpsc::UnboundedReceiver<InputChange>>) -> Option<InputChange> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn changed<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use custos_protocol::modbus_map::GateIoMap;

    use super::*;
    use crate::config::EXAMPLE_GATE;
    use crate::readers::Protocol;

    fn example() -> Config {
        Config::parse(EXAMPLE_GATE, Path::new("/etc/custosd/gate.toml")).unwrap()
    }

    #[test]
    fn reader_config_maps_to_driver_settings() {
        let c = example();
        let s = reader_settings(&c.readers[0]);
        assert_eq!(&*s.name, "uhf-main");
        assert_eq!(s.protocol, Protocol::UhfA0);
        assert_eq!(s.port, Path::new("/dev/ttyUSB0"));
        assert_eq!((s.baud, s.address), (115_200, 1));
        assert_eq!(s.antennas, [1, 2, 3, 4], "inner then outer");
        assert_eq!(s.power_dbm, None);
        assert_eq!(s.reply_timeout, Duration::from_millis(500));
        assert_eq!(s.poll_interval, Duration::from_millis(50));
        assert_eq!(s.backoff_max, Duration::from_secs(5));
        assert!(s.validate().is_ok());
        let cabinet = Config::parse(
            include_str!("../examples/cabinet.toml"),
            Path::new("cabinet.toml"),
        )
        .unwrap();
        let shelf = reader_settings(&cabinet.readers[0]);
        assert_eq!(shelf.protocol, Protocol::UhfChafon);
        assert_eq!((shelf.baud, shelf.address), (57_600, 0));
        assert!(shelf.chafon_form.is_some());
        let scanner = reader_settings(&cabinet.readers[1]);
        assert_eq!(scanner.protocol, Protocol::Barcode);
        assert!(scanner.antennas.is_empty());
    }

    #[test]
    fn gate_io_config_maps_to_link_settings() {
        let c = example();
        let g = gate_io_settings(c.gate_io.as_ref().unwrap());
        assert_eq!(
            g.transport,
            Transport::Tcp("127.0.0.1:5020".parse().unwrap())
        );
        assert_eq!(g.unit, 1);
        assert_eq!(g.call_timeout, Duration::from_millis(500));
        assert_eq!(g.map.lock_coil, Some(2));
        assert!(uses_beams(&c));
        let rtu = GateIoConfig {
            transport: GateIoTransport::Rtu {
                port: "/dev/ttyS1".into(),
                baud: 19_200,
            },
            unit: 7,
            map: GateIoMap {
                inner_beam_input: None,
                ..GateIoMap::default()
            },
            call_timeout: Duration::from_millis(300),
        };
        let g = gate_io_settings(&rtu);
        assert_eq!(
            g.transport,
            Transport::Rtu {
                port: "/dev/ttyS1".into(),
                baud: 19_200
            }
        );
        assert_eq!((g.unit, g.call_timeout), (7, Duration::from_millis(300)));
        let mut one_beam = example();
        one_beam.gate_io = Some(rtu);
        assert!(
            !uses_beams(&one_beam),
            "one photo-eye cannot give a direction"
        );
    }

    #[test]
    fn smoothing_config_maps_to_the_smoothers() {
        let mut c = example();
        c.smoothing.holdoff_ms = 700;
        c.smoothing.passage_gap_ms = 900;
        c.smoothing.min_reads = 3;
        let g = gate_config(&c.readers[0], &c.smoothing, true).unwrap();
        assert_eq!(
            (g.inner_antennas, g.outer_antennas),
            (vec![1, 2], vec![3, 4])
        );
        assert_eq!(g.smoothing.holdoff_ms, 700);
        assert_eq!(g.smoothing.min_reads, 3);
        assert_eq!(g.passage_gap_ms, 900);
        assert!(g.use_beams);
        assert_eq!(cabinet_config(&c.smoothing).smoothing.holdoff_ms, 700);
        c.smoothing.holdoff_ms = u64::MAX;
        assert_eq!(presence_config(&c.smoothing).holdoff_ms, i64::MAX);
        let mut scanner = c.readers[0].clone();
        scanner.placement = Placement::Scanner;
        assert!(gate_config(&scanner, &c.smoothing, false).is_none());
    }
}
