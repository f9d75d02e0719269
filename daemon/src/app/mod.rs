//! The daemon's top level: what `custosd run` and `custosd check` do, as library functions the
//! binary, in-process tests and the simulator's demo call.
//!
//! # Tasks
//!
//! [`start`] opens the outbox and starts:
//! - one reader task per `[[readers]]` ([`readers::run_reader`]), all feeding one channel of
//!   [`ReaderOutput`]s;
//! - the *pipeline* (`pipeline`), the only owner of the smoothers: reads in, events into the
//!   outbox, outward crossings to the gate task, photo-eye changes to the gate smoothers;
//! - the gate task ([`GateTask`]): server verdict with a deadline, policy fallback, alarm;
//! - the alarm driver over the gate I/O module (which also reads the photo-eyes every
//!   [`BEAM_POLL_INTERVAL`]), the policy cache (gates only), the shipper and the heartbeats.
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

mod check;
mod pipeline;
mod settings;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use custos_protocol::modbus_map::GateInputs;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::actuators::{AlarmDriver, AlarmHandle, GateIo, GateIoError};
use crate::config::{Config, Placement};
use crate::gate::{AlarmSettings, Exit, GateChannels, GateCore, GateMetrics, GateReport, GateTask};
use crate::keys::DeviceKey;
use crate::model::ReaderOutput;
use crate::outbox::{Outbox, OutboxError};
use crate::policy::{CurrentPolicy, PolicyCache};
use crate::readers;
use crate::uplink::{
    HeartbeatState, Heartbeats, ServerAnswer, Shipper, ShipperConfig, Uplink, UplinkError,
};
use crate::witness::Witness;
use pipeline::Pipeline;

pub use check::{DeviceCheck, check, check_server, role_name};
pub use settings::{
    cabinet_config, gate_config, gate_io_settings, presence_config, reader_settings, uses_beams,
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
    let mut uplink = Uplink::new(
        &config.server,
        &config.device_id,
        key,
        config.server_public_key,
    )?
    .with_request_timeout(config.uplink.request_timeout());
    // Keep the server's signed audit heads (see `witness`); only verifiable with a pin.
    if let Some(server_key) = config.server_public_key {
        match Witness::open(&config.data_dir, server_key) {
            Ok(witness) => uplink = uplink.with_witness(witness),
            Err(e) => {
                tracing::error!(error = %e, "the audit witness cannot be used; not witnessing")
            }
        }
    }
    let uplink = Arc::new(uplink);
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
    let mut reader_gpo = None;
    let alarm = match &config.gate_io {
        None => match config
            .readers
            .iter()
            .position(|r| r.reader_io.drives_alarm())
        {
            None => None,
            Some(i) => {
                // The alarm on an LLRP reader's GPOs instead of a gate I/O module.
                let io = config.readers[i].reader_io;
                let (handle, commands, status) = crate::actuators::AlarmHandle::detached();
                let (gpo_tx, gpo_rx) = mpsc::channel(16);
                reader_gpo = Some((i, gpo_rx));
                let map = readers::llrp::GpoMap {
                    alarm_light: io.alarm_gpo,
                    sounder: io.sounder_gpo,
                };
                let task =
                    readers::llrp::run_gpo_alarm(commands, status, gpo_tx, map, rest_stop.signal())
                        .instrument(tracing::info_span!("reader_gpo"));
                tasks[3].push(("alarm", tokio::spawn(task)));
                Some(handle)
            }
        },
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
        for (i, r) in config.readers.iter().enumerate() {
            let gpo = match reader_gpo.take() {
                Some((j, rx)) if j == i => Some(rx),
                other => {
                    reader_gpo = other;
                    None
                }
            };
            let task = readers::run_reader_with_gpo(
                reader_settings(r),
                reader_input.clone(),
                readers_stop.signal(),
                gpo,
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
