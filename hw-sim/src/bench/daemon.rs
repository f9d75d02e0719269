//! Daemon: the real `custosd` binary, out of process, with four simulated 0xA0 readers that
//! talk at the serial wire ceiling, against the in-process server.
//!
//! # Set-up
//! - a [`Site`] with no devices (the server, the accounts, 20 people, 60 carriers), sixteen
//!   carriers signed out so that the gate policy is not empty;
//! - four simulated 0xA0 readers on ptys whose output is paced to 115200 baud 8N1
//!   ([`LineRate::uart_8n1`]: 11,520 bytes/s; a 96-bit tag record is a 21-byte frame, so the
//!   ceiling is 548 tag frames/s per reader), each with [`TAGS_PER_ANTENNA`] tags standing in
//!   the field of every antenna (different tags inside and outside, so none of them crosses),
//!   which keeps every reader sending for as long as the daemon asks: each inventory round
//!   answers with that many tag frames;
//! - a simulated gate I/O module (Modbus TCP) for the alarm coil;
//! - a TCP relay on loopback between the daemon and the server, which the benchmark can cut
//!   (connections refused, open ones dropped) to make the server unreachable;
//! - the device registered as a gate (four gate readers, inner antennas 1-2, outer 3-4) and
//!   `custosd run` started with its configuration, logs as JSON lines on stderr.
//!
//! # Phases
//! Each lasts `--seconds`. In each, the four readers take turns (staggered evenly) to see a
//! person walk out with a carrier nobody signed out: the carrier's tag joins the background
//! tags of inner antenna 1, then of outer antenna 3, long enough for the daemon's smoothing to
//! count it on each side under this load. Every passage is unauthorised, so every one should
//! write the alarm coil.
//! 1. *server on loopback*: verdicts come from the server (default `verdict_deadline_ms`);
//! 2. *server unreachable*: the relay is cut; the daemon decides at its verdict deadline with
//!    its cached signed policy;
//! 3. *server unreachable, deadline 1 ms*: the daemon is restarted (its policy loaded from
//!    disk) with `verdict_deadline_ms = 1`, to show what the local decision itself costs.
//!
//! Then the relay is restored, the outbox drains, and the server's passage events are matched
//! to the passages walked ([`super::reconcile`]).
//!
//! # What is measured
//! - **CPU**: `custosd`'s user + system time over each phase (`/proc/PID/stat`), in percent of
//!   one core; **memory**: its `VmHWM` (peak resident set since it started) and the largest
//!   `VmRSS` sampled every 250 ms.
//! - **frames/s**: per reader, from the simulator (frames it sent; tag frames = frames minus
//!   the one answer frame every command gets) and from the daemon (its `frames_ok` counter in
//!   the heartbeats the server stored; phase 1 only, heartbeats need the server), and the bytes
//!   per second on the wire.
//! - **passage → coil**: the daemon's own figure, from the crossing notice to the completed
//!   coil write (its `passage_to_coil_ms` log field, whole milliseconds); and the benchmark's,
//!   from just before the outer-field op is sent to the coil change at the gate I/O simulator,
//!   which adds the reader's inventory cycle and the smoothing under this load.
//!
//! The daemon runs with `[uplink] retry_max_ms = 2000` (instead of 30 s) so that the outbox
//! drains within seconds once the relay is back; nothing measured depends on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use custos_daemon::keys::{DeviceKey, PublicKey};
use custos_protocol::epc::{Epc, tds};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::procfs::{self, CpuUse, CpuWindow, Memory, Proc};
use super::stats::Latency;
use super::{Expected, Reconciled, field_op, leavable, reconcile, sign_out, unix_ms};
use crate::control::{ControlError, ControlOp};
use crate::gate_io::{CoilChange, GateIo, run_gate_io};
use crate::reader::{Protocol, SimReader};
use crate::serial::{LineOptions, LineRate, SerialDevice, run_serial_device_with};
use crate::site::{
    COMPANY_PREFIX, ControlClient, SeedCarrier, SeedOptions, ServerTuning, Site, SiteOptions,
};
use crate::time::Millis;
use crate::uhf_reader::UhfReaderDevice;
use crate::{ControlSocket, PtyLink};

/// Readers on the one daemon.
pub const READERS: usize = 4;

/// Their line speed.
pub const BAUD: u32 = 115_200;

/// Bytes of a 0xA0 real-time inventory tag frame with a 96-bit EPC.
pub const TAG_FRAME_BYTES: usize = 21;

/// Background tags in the field of every antenna of every reader.
pub const TAGS_PER_ANTENNA: usize = 25;

/// How long the alarm sounds: short, so the next passage (another reader's, about a second
/// later) writes the coil afresh.
pub const ALARM_MS: u64 = 200;

/// With the server reachable, the time between two passages (any reader): the guard's
/// acknowledgement reaches the gate with its next heartbeat (every 2 s).
pub const SPACING: Duration = Duration::from_secs(3);

/// The device id.
const DEVICE: &str = "bench-gate";

/// The longest the benchmark waits for the daemon to be ready, or the outbox to drain.
const WAIT: Duration = Duration::from_secs(90);

/// What the daemon benchmark does.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Seconds per phase.
    pub seconds: f64,
    /// Where the site, the daemon's files and the links go (wiped).
    pub data_dir: PathBuf,
    /// The `custosd` binary.
    pub custosd: PathBuf,
}

/// What the daemon benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonResult {
    /// The binary run.
    pub custosd: String,
    /// Readers on the daemon.
    pub readers: usize,
    /// Their line rate, bytes/s.
    pub line_bytes_per_sec: u32,
    /// The wire ceiling in tag frames/s per reader (bytes/s ÷ 21).
    pub ceiling_tag_frames_per_sec: f64,
    /// Background tags per antenna.
    pub tags_per_antenna: usize,
    /// How long a person stands in each antenna's field.
    pub dwell_ms: u64,
    /// The phases.
    pub phases: Vec<Phase>,
    /// The server's passage events against the passages walked in every phase.
    pub loss: Reconciled,
    /// The largest `VmHWM` of the daemon processes, KiB.
    pub peak_rss_kib: u64,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What it is.
    pub name: String,
    /// The daemon's `uplink.verdict_deadline_ms`.
    pub verdict_deadline_ms: u64,
    /// Whether the server was reachable.
    pub server_reachable: bool,
    /// Seconds measured.
    pub seconds: f64,
    /// Passages walked.
    pub passages: usize,
    /// The daemon's figure: crossing recognised → coil written (whole ms).
    pub daemon_passage_to_coil: Latency,
    /// Outer-field entry → coil change seen at the gate I/O simulator.
    pub field_to_coil: Latency,
    /// Exits decided by the server's verdict.
    pub decided_by_server: usize,
    /// Exits decided by the cached policy.
    pub decided_by_policy: usize,
    /// Crossing recognised → decision (whole ms).
    pub decision: Latency,
    /// Passages without a coil write.
    pub missed_coil: usize,
    /// The daemon's CPU.
    pub cpu: CpuUse,
    /// The daemon's memory at the end of the phase.
    pub memory: Memory,
    /// The largest `VmRSS` sampled during the phase, KiB.
    pub rss_max_kib: u64,
    /// Each reader's load.
    pub readers: Vec<ReaderLoad>,
    /// Error lines the daemon logged during the phase (a few).
    pub daemon_errors: Vec<String>,
}

/// One reader's load during a phase.
#[derive(Debug, Clone, Serialize)]
pub struct ReaderLoad {
    /// The reader.
    pub name: String,
    /// Bytes/s written to the daemon.
    pub wire_bytes_per_sec: f64,
    /// Frames/s the simulator sent.
    pub frames_per_sec: f64,
    /// Tag frames/s the simulator sent.
    pub tag_frames_per_sec: f64,
    /// Frames/s the daemon decoded: its `frames_ok` counter from the heartbeats the server
    /// stored, over the phase (`None` without the server). Approximate (± about 4 %): the
    /// counter travels in a health snapshot taken every 2 s, so each end may be up to 2 s old.
    pub daemon_frames_per_sec: Option<f64>,
    /// Checksum errors and dropped bytes the daemon counted in the phase (same source).
    pub daemon_decode_errors: Option<u64>,
}

/// `custosd` in the directory of this executable.
///
/// # Errors
/// It is not there.
pub fn custosd_next_to_this_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("where is this executable")?;
    let path = exe
        .parent()
        .map(|dir| dir.join("custosd"))
        .context("this executable has no directory")?;
    anyhow::ensure!(
        path.is_file(),
        "no custosd next to {}: build it first with `cargo build --release -p custos-daemon` \
         (`cargo build -p custos-daemon` for a debug run), or pass --custosd PATH",
        exe.display()
    );
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// The simulated hardware

/// What a simulated reader has sent.
#[derive(Debug, Default)]
struct ReaderCounts {
    frames: AtomicU64,
    commands: AtomicU64,
    bytes: Arc<AtomicU64>,
}

impl ReaderCounts {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.commands.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// A UHF reader that publishes its frame and command counts.
#[derive(Debug)]
struct CountingReader {
    inner: UhfReaderDevice,
    counts: Arc<ReaderCounts>,
}

impl SerialDevice for CountingReader {
    const KIND: &'static str = UhfReaderDevice::KIND;

    fn handle_input(&mut self, now: Millis, bytes: &[u8]) {
        self.inner.handle_input(now, bytes);
    }

    fn handle_control(&mut self, now: Millis, op: ControlOp) -> Result<(), ControlError> {
        self.inner.handle_control(now, op)
    }

    fn handle_timeout(&mut self, now: Millis) {
        self.inner.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Millis> {
        self.inner.poll_timeout()
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.inner.poll_transmit(out);
        let stats = self.inner.reader().stats();
        self.counts
            .frames
            .store(stats.frames_sent, Ordering::Relaxed);
        self.counts
            .commands
            .store(stats.commands, Ordering::Relaxed);
    }
}

struct Reader {
    name: String,
    link: PathBuf,
    control: ControlClient,
    counts: Arc<ReaderCounts>,
    /// Background tags per antenna (index 0 = antenna 1).
    background: [Vec<Epc>; 4],
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP relay to the server that can be cut and restored.
struct Relay {
    port: u16,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (up, up_rx) = watch::channel(true);
        let task = tokio::spawn(relay(listener, port, upstream, up_rx));
        Ok(Relay { port, up, task })
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    first: TcpListener,
    port: u16,
    upstream: std::net::SocketAddr,
    mut up: watch::Receiver<bool>,
) {
    let mut listener = Some(first);
    let mut pipes: Vec<JoinHandle<()>> = Vec::new();
    loop {
        pipes.retain(|p| !p.is_finished());
        match &listener {
            Some(l) => {
                tokio::select! {
                    accepted = l.accept() => {
                        if let Ok((socket, _)) = accepted {
                            pipes.push(tokio::spawn(pipe(socket, upstream)));
                        }
                    }
                    changed = up.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        if !*up.borrow() {
                            listener = None;
                            for p in pipes.drain(..) {
                                p.abort();
                            }
                        }
                    }
                }
            }
            None => {
                if up.changed().await.is_err() {
                    break;
                }
                if *up.borrow() {
                    match TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(l) => listener = Some(l),
                        Err(e) => tracing::error!("relay cannot listen again on {port}: {e}"),
                    }
                }
            }
        }
    }
    for p in pipes {
        p.abort();
    }
}

async fn pipe(mut down: TcpStream, upstream: std::net::SocketAddr) {
    if let Ok(mut up) = TcpStream::connect(upstream).await {
        let _ = down.set_nodelay(true);
        let _ = up.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon process

#[derive(Debug, Default)]
struct DaemonLog {
    /// `(when read, passage_to_coil_ms, decided_by)`.
    coil: Vec<(Instant, u64, String)>,
    /// `(when read, elapsed_ms, decided_by)`.
    decided: Vec<(Instant, u64, String)>,
    readers_answering: usize,
    errors: Vec<(Instant, String)>,
}

struct Daemon {
    child: tokio::process::Child,
    pid: u32,
    log: Arc<Mutex<DaemonLog>>,
    log_task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Daemon {
    /// Starts `custosd run`; its stderr (JSON lines) is parsed and copied to `log_file`.
    fn start(custosd: &Path, config: &Path, log_file: &Path) -> anyhow::Result<Daemon> {
        let copy = std::fs::File::create(log_file)
            .with_context(|| format!("creating {}", log_file.display()))?;
        let mut child = tokio::process::Command::new(custosd)
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env("RUST_LOG", "custosd=info,custos_daemon=info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", custosd.display()))?;
        let pid = child.id().context("custosd has no pid")?;
        let stderr = child.stderr.take().context("custosd stderr")?;
        let log = Arc::new(Mutex::new(DaemonLog::default()));
        let log_task = tokio::spawn(read_log(stderr, log.clone(), copy));
        Ok(Daemon {
            child,
            pid,
            log,
            log_task,
        })
    }

    /// SIGTERM, then waits (SIGKILL after 15 s).
    async fn stop(mut self) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            eprintln!("  custosd did not stop within 15 s; killed");
            let _ = self.child.kill().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.log_task).await;
    }
}

async fn read_log(
    stderr: tokio::process::ChildStderr,
    log: Arc<Mutex<DaemonLog>>,
    copy: std::fs::File,
) {
    use std::io::Write as _;
    let mut copy = std::io::LineWriter::new(copy);
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let at = Instant::now();
        // A few short lines per passage: writing them here does not hold the runtime up.
        let _ = writeln!(copy, "{line}");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let fields = &v["fields"];
        let by = fields["decided_by"].as_str().unwrap_or("?").to_owned();
        match fields["message"].as_str().unwrap_or_default() {
            "alarm coil written" => {
                if let Some(ms) = fields["passage_to_coil_ms"].as_u64() {
                    lock(&log).coil.push((at, ms, by));
                }
            }
            "exit decided" => {
                if let Some(ms) = fields["elapsed_ms"].as_u64() {
                    lock(&log).decided.push((at, ms, by));
                }
            }
            "uhf-a0 reader answers" => lock(&log).readers_answering += 1,
            _ => {}
        }
        if v["level"] == "ERROR" {
            let mut l = lock(&log);
            if l.errors.len() < 100 {
                l.errors.push((at, fields["message"].to_string()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

/// One walked passage.
#[derive(Debug, Clone)]
struct Walk {
    reader: usize,
    carrier: Epc,
    outer_at: Instant,
    from_ms: i64,
    to_ms: i64,
}

/// Runs the daemon benchmark.
///
/// # Errors
/// Something could not be set up.
pub async fn run(options: DaemonOptions) -> anyhow::Result<DaemonResult> {
    let root = &options.data_dir;
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("wiping {}", root.display()))?;
    }
    for sub in ["links", "control", "custosd"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    let site = Site::build(SiteOptions {
        data_dir: root.join("site"),
        listen_from: 0,
        listen: None,
        gates: 0,
        cabinets: 0,
        desk: false,
        seed: SeedOptions {
            rng_seed: 2026,
            people: 20,
            carriers: 60,
        },
        server: ServerTuning {
            tag_clone_min_travel_secs: 0,
            ..ServerTuning::default()
        },
        daemon: crate::site::DaemonTuning::default(),
        smtp: custos_server::config::Smtp::default(),
        webhooks: Vec::new(),
        notifications: custos_server::config::Notifications::default(),
    })
    .await
    .context("building the server")?;
    let (sim_stop, _) = watch::channel(false);
    let mut sims = Vec::new();
    let result = bench(&site, &options, &sim_stop, &mut sims).await;
    sim_stop.send_replace(true);
    for sim in sims {
        let _ = sim.await;
    }
    let stopped = site.shutdown().await;
    let result = result?;
    stopped.context("stopping the server")?;
    Ok(result)
}

#[allow(clippy::too_many_lines)]
async fn bench(
    site: &Site,
    options: &DaemonOptions,
    sim_stop: &watch::Sender<bool>,
    sims: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<DaemonResult> {
    let root = &options.data_dir;
    let rate = LineRate::uart_8n1(BAUD);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // Readers.
    let mut readers = Vec::new();
    for r in 0..READERS {
        let name = format!("uhf-{}", r + 1);
        let link = root.join("links").join(&name);
        let control_path = root.join("control").join(format!("{name}.sock"));
        let pty = PtyLink::open(&link)?;
        let socket = ControlSocket::bind(&control_path)?;
        let counts = Arc::new(ReaderCounts::default());
        let device = CountingReader {
            inner: UhfReaderDevice::new(SimReader::new(Protocol::A0, 1)),
            counts: counts.clone(),
        };
        let line = LineOptions {
            rate: Some(rate),
            sent: Some(counts.bytes.clone()),
        };
        let stop = stopped(sim_stop.subscribe());
        sims.push(tokio::spawn(async move {
            if let Err(e) = run_serial_device_with(device, pty, Some(socket), stop, line).await {
                tracing::error!("simulated reader stopped: {e}");
            }
        }));
        let control = ControlClient::connect(&control_path)
            .await
            .with_context(|| format!("control socket {}", control_path.display()))?;
        let mut background: [Vec<Epc>; 4] = Default::default();
        for (a, tags) in background.iter_mut().enumerate() {
            for i in 0..TAGS_PER_ANTENNA {
                let asset = 700_000 + r as u64 * 10_000 + a as u64 * 1_000 + i as u64;
                tags.push(
                    tds::giai96(0, COMPANY_PREFIX, asset)
                        .map_err(|e| anyhow::anyhow!("background tag: {e}"))?,
                );
            }
        }
        readers.push(Reader {
            name,
            link,
            control,
            counts,
            background,
        });
    }

    // Gate I/O.
    let io_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let io_addr = io_listener.local_addr()?;
    let (coil_tx, mut coil_rx) = mpsc::unbounded_channel::<CoilChange>();
    let stop = stopped(sim_stop.subscribe());
    sims.push(tokio::spawn(async move {
        if let Err(e) = run_gate_io(io_listener, GateIo::default(), None, coil_tx, stop).await {
            tracing::error!("simulated gate I/O stopped: {e}");
        }
    }));
    let coils: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let coil_log = coils.clone();
    sims.push(tokio::spawn(async move {
        while let Some(change) = coil_rx.recv().await {
            if change.coil == 0 && change.value {
                lock(&coil_log).push(Instant::now());
            }
        }
    }));

    // The relay, the device, the policy's contents.
    let relay = Relay::start(site.addr()).await?;
    let dir = root.join("custosd");
    let key_path = dir.join("device.key");
    let key = DeviceKey::generate(&key_path)?;
    let api = site.api();
    let admin = site.session(&api, "admin").await?;
    admin
        .post(
            "/api/v1/devices",
            &json!({
                "id": DEVICE,
                "kind": "gate",
                "public_key": key.public_key().to_string(),
                "inside_zone": "registry",
                "outside_zone": "lobby",
            }),
        )
        .await?;
    let leaving = leavable(site, 16);
    sign_out(site, &leaving).await?;
    let leaving_epcs: Vec<Epc> = leaving.iter().map(|(c, _)| c.epc).collect();
    let carriers: Vec<SeedCarrier> = site
        .seeded()
        .carriers
        .iter()
        .filter(|c| !leaving_epcs.contains(&c.epc))
        .cloned()
        .collect();
    let server_key = PublicKey::from_bytes(site.state().server_key().public_key());
    let config_path = dir.join("custosd.toml");
    let default_deadline = custos_daemon::config::UplinkConfig::default().verdict_deadline_ms;
    let links: Vec<PathBuf> = readers.iter().map(|r| r.link.clone()).collect();
    let write_config = |deadline: u64| -> anyhow::Result<()> {
        let text = daemon_toml(
            &format!("http://127.0.0.1:{}", relay.port),
            server_key,
            &key_path,
            &dir,
            &links,
            io_addr,
            deadline,
        );
        std::fs::write(&config_path, text)?;
        Ok(())
    };
    write_config(default_deadline)?;

    // A guard who handles every alarm (see `sse`).
    let guard = site
        .logins()
        .iter()
        .find(|l| l.username == "guard")
        .context("no guard login")?;
    let token = super::sse::login(site.addr(), &guard.username, &guard.password).await?;
    let (_screen, screen_task) = super::sse::open(site.addr(), &token).await?;
    let _screen_task = AbortOnDrop(screen_task);

    // Start and wait until it reads, reports and holds the policy.
    let started = unix_ms();
    let mut daemon = Daemon::start(&options.custosd, &config_path, &dir.join("custosd-1.log"))?;
    let policy_file = dir.join(custos_daemon::policy::FILE_NAME);
    super::wait_for("custosd to be ready", WAIT, async || {
        let answering = lock(&daemon.log).readers_answering >= READERS;
        let reported = super::device_status(site.state())
            .await
            .ok()
            .and_then(|s| s.get(DEVICE).map(|d| d.heartbeat_ms > started))
            .unwrap_or(false);
        answering && reported && policy_file.is_file()
    })
    .await?;

    // Load: the background tags.
    for reader in &mut readers {
        for a in 0..4u8 {
            let tags = reader.background[usize::from(a)].clone();
            send(&mut reader.control, &field_op(a + 1, &tags)).await?;
        }
    }
    // One inventory cycle of four antennas, the time to count a tag on one side (two reads,
    // one per cycle on one antenna) with a margin, and the time between passages.
    let cycle = rate.duration_of(4 * (18 + TAG_FRAME_BYTES * (TAGS_PER_ANTENNA + 1)));
    let dwell = (cycle * 7 / 2).max(Duration::from_millis(600));
    let dwell = Duration::from_millis(dwell.as_millis().div_ceil(100) as u64 * 100);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut phases = Vec::new();
    let mut walks_all = Vec::new();
    let mut peak_rss = 0;
    let mut next_carrier = 0;
    let plan = [
        ("server on loopback", default_deadline, true),
        (
            "server unreachable (cached policy)",
            default_deadline,
            false,
        ),
        ("server unreachable, verdict_deadline_ms = 1", 1, false),
    ];
    for (name, deadline, reachable) in plan {
        eprintln!("  phase: {name} ...");
        relay.set(reachable);
        if deadline != default_deadline {
            peak_rss = peak_rss.max(procfs::memory(Proc::Pid(daemon.pid))?.peak_rss_kib);
            daemon.stop().await;
            write_config(deadline)?;
            daemon = Daemon::start(&options.custosd, &config_path, &dir.join("custosd-2.log"))?;
            super::wait_for("custosd to read again", WAIT, async || {
                lock(&daemon.log).readers_answering >= READERS
            })
            .await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
        } else if !reachable {
            // Let the open connections drop before measuring.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let phase = run_phase(
            PhaseSetup {
                name,
                deadline,
                reachable,
                seconds: options.seconds,
                dwell,
            },
            site,
            &daemon,
            &mut readers,
            &coils,
            &carriers,
            &mut next_carrier,
        )
        .await?;
        peak_rss = peak_rss.max(phase.0.memory.peak_rss_kib);
        phases.push(phase.0);
        walks_all.extend(phase.1);
    }

    // Drain through the relay, then compare.
    relay.set(true);
    let restored = unix_ms();
    super::wait_for("the daemon's outbox to drain", WAIT, async || {
        super::device_status(site.state())
            .await
            .ok()
            .and_then(|s| {
                s.get(DEVICE)
                    .map(|d| d.heartbeat_ms > restored + 3000 && d.outbox_depth == 0)
            })
            .unwrap_or(false)
    })
    .await?;
    let stored = super::stored_passages(site.state()).await?;
    let expected: Vec<Expected> = walks_all
        .iter()
        .map(|w| Expected {
            device: DEVICE.to_owned(),
            reader: readers[w.reader].name.clone(),
            carrier: w.carrier,
            from_ms: w.from_ms,
            to_ms: w.to_ms,
        })
        .collect();
    let loss = reconcile(&expected, &stored);
    peak_rss = peak_rss.max(procfs::memory(Proc::Pid(daemon.pid))?.peak_rss_kib);
    daemon.stop().await;
    Ok(DaemonResult {
        custosd: options.custosd.display().to_string(),
        readers: READERS,
        line_bytes_per_sec: rate.bytes_per_sec(),
        ceiling_tag_frames_per_sec: (f64::from(rate.bytes_per_sec()) / TAG_FRAME_BYTES as f64
            * 10.0)
            .round()
            / 10.0,
        tags_per_antenna: TAGS_PER_ANTENNA,
        dwell_ms: dwell.as_millis() as u64,
        phases,
        loss,
        peak_rss_kib: peak_rss,
    })
}

async fn send(control: &mut ControlClient, op: &ControlOp) -> anyhow::Result<()> {
    control
        .send(op)
        .await?
        .map_err(|e| anyhow::anyhow!("control op refused: {e}"))
}

struct PhaseSetup {
    name: &'static str,
    deadline: u64,
    reachable: bool,
    seconds: f64,
    dwell: Duration,
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    setup: PhaseSetup,
    site: &Site,
    daemon: &Daemon,
    readers: &mut [Reader],
    coils: &Mutex<Vec<Instant>>,
    carriers: &[SeedCarrier],
    next_carrier: &mut usize,
) -> anyhow::Result<(Phase, Vec<Walk>)> {
    let log_from = {
        let l = lock(&daemon.log);
        (l.coil.len(), l.decided.len(), l.errors.len())
    };
    let counts_before: Vec<(u64, u64, u64)> = readers.iter().map(|r| r.counts.snapshot()).collect();
    let frames_before = daemon_frames(site).await;
    let cpu = CpuWindow::start(Proc::Pid(daemon.pid))?;
    let rss_max = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_rss(daemon.pid, rss_max.clone()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(setup.seconds);
    // Each reader walks one passage per period; the readers take turns. With the server, the
    // turns are SPACING apart so that the guard's silence (next heartbeat) ends the server's
    // 30 s alarm before the next passage; without it, the local alarm is short.
    let spacing = if setup.reachable {
        SPACING
    } else {
        Duration::ZERO
    };
    let period = (setup.dwell * 2 + crate::site::PASSAGE_GAP).max(spacing * readers.len() as u32);

    // Each reader's walks, staggered evenly over one period.
    let mut assigned: Vec<Vec<SeedCarrier>> = vec![Vec::new(); readers.len()];
    let per_reader = (setup.seconds / period.as_secs_f64()).ceil() as usize + 1;
    for list in &mut assigned {
        for _ in 0..per_reader {
            list.push(carriers[*next_carrier % carriers.len()].clone());
            *next_carrier += 1;
        }
    }
    let n = readers.len();
    let walks = futures_util::future::join_all(readers.iter_mut().zip(assigned).enumerate().map(
        |(r, (reader, carriers))| {
            let first = start + period.mul_f64(r as f64 / n as f64);
            walk_reader(reader, r, carriers, first, deadline, setup.dwell, period)
        },
    ))
    .await;
    let measured = start.elapsed();
    let cpu = cpu.finish()?;
    let counts_after: Vec<(u64, u64, u64)> = readers.iter().map(|r| r.counts.snapshot()).collect();
    let frames_after = daemon_frames(site).await;
    // The last alarm's coil and log lines (and, with the server, its silence).
    tokio::time::sleep(if setup.reachable {
        SPACING
    } else {
        Duration::from_millis(1500)
    })
    .await;
    sampler.abort();
    let memory = procfs::memory(Proc::Pid(daemon.pid))?;
    let mut walks: Vec<Walk> = walks
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    walks.sort_by_key(|w| w.outer_at);

    let coils = lock(coils).clone();
    let mut field_to_coil = Vec::new();
    let mut missed = 0;
    for (i, w) in walks.iter().enumerate() {
        let until = walks
            .get(i + 1)
            .map_or(w.outer_at + Duration::from_secs(5), |next| next.outer_at);
        match coils.iter().find(|c| **c >= w.outer_at && **c < until) {
            Some(c) => field_to_coil.push(c.duration_since(w.outer_at)),
            None => missed += 1,
        }
    }
    let (coil, decided, errors) = {
        let l = lock(&daemon.log);
        (
            l.coil[log_from.0..].to_vec(),
            l.decided[log_from.1..].to_vec(),
            l.errors[log_from.2..].to_vec(),
        )
    };
    let secs = measured.as_secs_f64();
    let reader_loads = readers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (f0, c0, b0) = counts_before[i];
            let (f1, c1, b1) = counts_after[i];
            let frames = f1.saturating_sub(f0) as f64;
            let commands = c1.saturating_sub(c0) as f64;
            let (daemon_frames, daemon_errors) =
                match (frames_before.get(&r.name), frames_after.get(&r.name)) {
                    (Some((n0, e0)), Some((n1, e1))) if setup.reachable => (
                        Some(round1(n1.saturating_sub(*n0) as f64 / secs)),
                        Some(e1.saturating_sub(*e0)),
                    ),
                    _ => (None, None),
                };
            ReaderLoad {
                name: r.name.clone(),
                wire_bytes_per_sec: round1(b1.saturating_sub(b0) as f64 / secs),
                frames_per_sec: round1(frames / secs),
                tag_frames_per_sec: round1((frames - commands).max(0.0) / secs),
                daemon_frames_per_sec: daemon_frames,
                daemon_decode_errors: daemon_errors,
            }
        })
        .collect();
    let ms = |v: &[(Instant, u64, String)]| -> Vec<Duration> {
        v.iter()
            .map(|(_, m, _)| Duration::from_millis(*m))
            .collect()
    };
    let phase = Phase {
        name: setup.name.to_owned(),
        verdict_deadline_ms: setup.deadline,
        server_reachable: setup.reachable,
        seconds: round1(secs),
        passages: walks.len(),
        daemon_passage_to_coil: Latency::of(&ms(&coil)),
        field_to_coil: Latency::of(&field_to_coil),
        decided_by_server: decided.iter().filter(|d| d.2 == "server").count(),
        decided_by_policy: decided.iter().filter(|d| d.2 == "policy").count(),
        decision: Latency::of(&ms(&decided)),
        missed_coil: missed,
        cpu,
        memory,
        rss_max_kib: rss_max.load(Ordering::Relaxed),
        readers: reader_loads,
        daemon_errors: errors.into_iter().take(5).map(|(_, e)| e).collect(),
    };
    Ok((phase, walks))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `frames_ok` and `checksum_errors + dropped_bytes` per reader of the device's last heartbeat.
async fn daemon_frames(site: &Site) -> std::collections::HashMap<String, (u64, u64)> {
    let Ok(status) = super::device_status(site.state()).await else {
        return Default::default();
    };
    let Some(d) = status.get(DEVICE) else {
        return Default::default();
    };
    d.readers
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, h)| {
            let errors = h["checksum_errors"].as_u64()? + h["dropped_bytes"].as_u64()?;
            Some((name.clone(), (h["frames_ok"].as_u64()?, errors)))
        })
        .collect()
}

async fn sample_rss(pid: u32, max: Arc<AtomicU64>) {
    loop {
        if let Ok(m) = procfs::memory(Proc::Pid(pid)) {
            max.fetch_max(m.rss_kib, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Walks `carriers` out through one reader's antennas, one every `period`, from `first` until
/// `deadline`.
async fn walk_reader(
    reader: &mut Reader,
    r: usize,
    carriers: Vec<SeedCarrier>,
    first: Instant,
    deadline: Instant,
    dwell: Duration,
    period: Duration,
) -> anyhow::Result<Vec<Walk>> {
    let mut walks = Vec::new();
    let mut next = first;
    for carrier in carriers {
        if next >= deadline {
            break;
        }
        super::sleep_until(next).await;
        let started = Instant::now();
        let from_ms = unix_ms() - 500;
        let with = |a: usize| {
            let mut tags = reader.background[a].clone();
            tags.push(carrier.epc);
            tags
        };
        let (inner, outer) = (with(0), with(2));
        let (inner_bg, outer_bg) = (reader.background[0].clone(), reader.background[2].clone());
        send(&mut reader.control, &field_op(1, &inner)).await?;
        tokio::time::sleep(dwell).await;
        send(&mut reader.control, &field_op(1, &inner_bg)).await?;
        let outer_at = Instant::now();
        send(&mut reader.control, &field_op(3, &outer)).await?;
        tokio::time::sleep(dwell).await;
        send(&mut reader.control, &field_op(3, &outer_bg)).await?;
        let end = Instant::now();
        walks.push(Walk {
            reader: r,
            carrier: carrier.epc,
            outer_at,
            from_ms,
            to_ms: unix_ms() + 2500,
        });
        next = (started + period).max(end + crate::site::PASSAGE_GAP);
    }
    Ok(walks)
}

/// The daemon's configuration: a gate with [`READERS`] readers on one gate I/O module.
fn daemon_toml(
    server: &str,
    server_key: PublicKey,
    key_path: &Path,
    dir: &Path,
    links: &[PathBuf],
    io_addr: std::net::SocketAddr,
    verdict_deadline_ms: u64,
) -> String {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let p = |v: &Path| s(&v.to_string_lossy());
    let mut out = format!(
        "# custosd configuration written by custos-sim bench --daemon.\n\
         device_id = {}\nserver = {}\nkey_file = {}\ndata_dir = {}\nserver_public_key = {}\n\n",
        s(DEVICE),
        s(server),
        p(key_path),
        p(dir),
        s(&server_key.to_string()),
    );
    for (i, link) in links.iter().enumerate() {
        out.push_str(&format!(
            "[[readers]]\nname = \"uhf-{}\"\nprotocol = \"uhf-a0\"\nport = {}\naddress = 1\n\
             inner_antennas = [1, 2]\nouter_antennas = [3, 4]\n\n",
            i + 1,
            p(link)
        ));
    }
    out.push_str(&format!(
        "[gate_io]\ntransport = \"tcp\"\naddress = \"{io_addr}\"\nunit = 1\nalarm_coil = 0\n\
         buzzer_coil = 1\nlock_coil = 2\n\n[alarm]\nduration_ms = {ALARM_MS}\nlock_door = false\n\n\
         [uplink]\nverdict_deadline_ms = {verdict_deadline_ms}\nretry_max_ms = 2000\n"
    ));
    out
}

/// The daemon results as a text table.
#[must_use]
pub fn render(d: &DaemonResult) -> String {
    let mut out = format!(
        "\nDaemon: custosd out of process, {} 0xA0 readers at {} bytes/s each (115200 baud 8N1; \
         ceiling {:.0} tag frames/s), {} tags per antenna, dwell {} ms\n\
         targets: CPU < 5 % of one core, peak RSS < 30 MB, passage → coil p99 < 50 ms on \
         loopback, < 20 ms in fallback\n\n",
        d.readers,
        d.line_bytes_per_sec,
        d.ceiling_tag_frames_per_sec,
        d.tags_per_antenna,
        d.dwell_ms
    );
    let row = |label: &str, cells: Vec<String>| {
        let mut line = format!("{label:<44}");
        for c in cells {
            line.push_str(&format!(" | {c:<32}"));
        }
        line.push('\n');
        line
    };
    let cells = |f: &dyn Fn(&Phase) -> String| d.phases.iter().map(f).collect::<Vec<_>>();
    out.push_str(&row("phase", cells(&|p| p.name.clone())));
    out.push_str(&row(
        "seconds (passages)",
        cells(&|p| format!("{:.0} ({})", p.seconds, p.passages)),
    ));
    out.push_str(&row(
        "daemon: crossing → coil written (ms)",
        cells(&|p| p.daemon_passage_to_coil.cell()),
    ));
    out.push_str(&row(
        "outer-field entry → coil (ms)",
        cells(&|p| p.field_to_coil.cell()),
    ));
    out.push_str(&row(
        "decided by server / policy",
        cells(&|p| format!("{} / {}", p.decided_by_server, p.decided_by_policy)),
    ));
    out.push_str(&row("missed coil", cells(&|p| p.missed_coil.to_string())));
    out.push_str(&row(
        "custosd CPU % of one core (kernel %)",
        cells(&|p| {
            format!(
                "{:.1} ({:.1})",
                p.cpu.percent_of_one_core,
                p.cpu.system_seconds.unwrap_or(0.0) / p.cpu.wall_seconds.max(1e-9) * 100.0
            )
        }),
    ));
    out.push_str(&row(
        "custosd RSS max / VmHWM MiB",
        cells(&|p| {
            format!(
                "{:.1} / {:.1}",
                p.rss_max_kib as f64 / 1024.0,
                p.memory.peak_rss_kib as f64 / 1024.0
            )
        }),
    ));
    out.push_str(&row(
        "tag frames/s per reader (sim)",
        cells(&|p| {
            p.readers
                .iter()
                .map(|r| format!("{:.0}", r.tag_frames_per_sec))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    ));
    out.push_str(&row(
        "frames/s decoded per reader (daemon, ±4 %)",
        cells(&|p| {
            p.readers
                .iter()
                .map(|r| {
                    r.daemon_frames_per_sec
                        .map_or("-".to_owned(), |f| format!("{f:.0}"))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }),
    ));
    out.push_str(&row(
        "decode errors per reader (daemon)",
        cells(&|p| {
            p.readers
                .iter()
                .map(|r| {
                    r.daemon_decode_errors
                        .map_or("-".to_owned(), |e| e.to_string())
                })
                .collect::<Vec<_>>()
                .join(" ")
        }),
    ));
    out.push_str(&row(
        "wire bytes/s per reader",
        cells(&|p| {
            p.readers
                .iter()
                .map(|r| format!("{:.0}", r.wire_bytes_per_sec))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    ));
    out.push_str(&format!(
        "\npassages walked {}: stored once {}, LOST {}, DUPLICATED {}, unexpected {}; \
         custosd peak RSS {:.1} MiB\n",
        d.loss.walked,
        d.loss.stored_once,
        d.loss.missing,
        d.loss.duplicated,
        d.loss.unexpected,
        d.peak_rss_kib as f64 / 1024.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_configuration_parses() {
        let text = daemon_toml(
            "http://127.0.0.1:9",
            PublicKey::from_bytes([7; 32]),
            Path::new("/x/device.key"),
            Path::new("/x"),
            &[PathBuf::from("/l/a"), PathBuf::from("/l/b \"q\"")],
            "127.0.0.1:5020".parse().unwrap(),
            1,
        );
        let config = custos_daemon::config::Config::parse(&text, Path::new("/x/custosd.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(config.device_id, DEVICE);
        assert_eq!(config.readers.len(), 2);
        assert_eq!(config.readers[1].port, Path::new("/l/b \"q\""));
        assert_eq!(config.uplink.verdict_deadline_ms, 1);
        assert_eq!(config.alarm.duration_ms, ALARM_MS);
        assert_eq!(config.role(), custos_daemon::config::Role::Gate);
    }
}
