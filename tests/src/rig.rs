//! One reader daemon with its simulated hardware: the reader (and gate I/O module) as child
//! processes steered through their control sockets, the daemon as a child process observed
//! through its JSON log, and the walks that carry tags through a gate.
//!
//! The daemon logs JSON lines (`--log-format json`) at `info`, and at `trace` for the UHF
//! driver, whose `round end` entries (antenna, reads) say that a tag in a field has been read.
//! The walks wait on those and on the pipeline's `crossing` entry; tests wait on the gate's
//! `exit decided` entry and on the gate I/O module's coil lines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::GatePolicy;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

use crate::bins::binaries;
use crate::proc::{Lines, Proc, STEP, deadline, poll_until};

/// Settings of the daemons under test.
#[derive(Debug, Clone, Copy)]
pub struct DaemonTuning {
    /// `[smoothing] min_reads`.
    pub min_reads: u32,
    /// `[smoothing] holdoff_ms`.
    pub holdoff_ms: u64,
    /// `[smoothing] passage_gap_ms`.
    pub passage_gap_ms: u64,
    /// `[uplink] verdict_deadline_ms`.
    pub verdict_deadline_ms: u64,
    /// `[uplink] heartbeat_interval_ms`.
    pub heartbeat_interval_ms: u64,
    /// `[alarm] duration_ms` (a local alarm; the server's directives say their own).
    pub alarm_ms: u64,
}

impl Default for DaemonTuning {
    fn default() -> Self {
        DaemonTuning {
            min_reads: 2,
            holdoff_ms: 500,
            passage_gap_ms: 500,
            verdict_deadline_ms: 1_000,
            heartbeat_interval_ms: 500,
            alarm_ms: 3_000,
        }
    }
}

/// A control socket of a simulated device: one connection per op.
#[derive(Debug, Clone)]
pub struct Control {
    path: PathBuf,
}

impl Control {
    /// The control socket at `path`.
    pub fn new(path: PathBuf) -> Control {
        Control { path }
    }

    /// Sends one op; fails unless it is accepted.
    pub async fn op(&self, op: &Value) -> anyhow::Result<()> {
        let exchange = async {
            let stream = UnixStream::connect(&self.path).await?;
            let (read, mut write) = stream.into_split();
            write.write_all(format!("{op}\n").as_bytes()).await?;
            let mut lines = BufReader::new(read).lines();
            let answer = lines.next_line().await?.context("control socket closed")?;
            let answer: Value = serde_json::from_str(&answer)?;
            ensure!(answer["ok"] == true, "{op} refused: {answer}");
            anyhow::Ok(())
        };
        tokio::time::timeout(STEP, exchange)
            .await
            .with_context(|| format!("control op {op}: no answer"))?
            .with_context(|| format!("control op {op} on {}", self.path.display()))
    }

    /// Replaces the field of `antenna` (1-based) with `tags`.
    pub async fn field(&self, antenna: u8, tags: &[Epc]) -> anyhow::Result<()> {
        let tags: Vec<String> = tags.iter().map(ToString::to_string).collect();
        self.op(&json!({"op": "field", "antenna": antenna, "tags": tags}))
            .await
    }

    /// Silences the reader (`true`) or lets it answer again.
    pub async fn silence(&self, on: bool) -> anyhow::Result<()> {
        self.op(&json!({"op": "silence", "on": on})).await
    }

    /// Empties every field.
    pub async fn clear(&self) -> anyhow::Result<()> {
        self.op(&json!({"op": "clear"})).await
    }
}

/// A reader daemon with its simulated hardware.
#[derive(Debug)]
pub struct Rig {
    /// The device id.
    pub device_id: &'static str,
    /// The simulated UHF reader.
    pub reader: Proc,
    /// Its control socket.
    pub control: Control,
    /// The simulated gate I/O module (gates only); its stdout carries the coil changes.
    pub io: Option<Proc>,
    /// The daemon, while running.
    pub daemon: Option<Proc>,
    /// The daemon's configuration file.
    pub config: PathBuf,
    /// The daemon's data directory (outbox, cached policy).
    pub data_dir: PathBuf,
    /// The epoch the running daemon announced.
    pub epoch: u64,
}

/// A crossing the daemon recognised (its `crossing` log entry).
#[derive(Debug, Clone)]
pub struct Crossing {
    /// The index of the entry in the daemon's stderr.
    pub log_index: usize,
    /// The provisional passage event's seq, if it was stored.
    pub seq: Option<u64>,
    /// The entry's fields.
    pub fields: Value,
}

/// The `fields` of a daemon JSON log entry.
pub fn fields(entry: &Value) -> &Value {
    &entry["fields"]
}

/// The message of a daemon JSON log entry.
pub fn message(entry: &Value) -> &str {
    entry["fields"]["message"].as_str().unwrap_or("")
}

impl Rig {
    /// The running daemon.
    pub fn daemon(&self) -> anyhow::Result<&Proc> {
        self.daemon.as_ref().context("the daemon is not running")
    }

    /// The running daemon's log.
    pub fn log(&self) -> anyhow::Result<&Lines> {
        Ok(&self.daemon()?.stderr)
    }

    /// Starts the daemon and waits for `custosd running`; returns its epoch.
    pub async fn start_daemon(&mut self) -> anyhow::Result<u64> {
        ensure!(self.daemon.is_none(), "the daemon is already running");
        let config = self.config.to_str().context("config path")?.to_owned();
        let proc = Proc::spawn(
            &format!("custosd {}", self.device_id),
            &binaries().daemon,
            &["--log-format", "json", "run", "--config", &config],
            &[(
                "RUST_LOG",
                "custosd=info,custos_daemon=info,custos_daemon::readers::uhf_a0=trace,\
                 custos_daemon::readers::llrp=trace",
            )],
        )?;
        let running = proc
            .stderr
            .wait_json(0, deadline(STEP), "custosd running", |v| {
                message(v).starts_with("custosd running")
            })
            .await;
        let running = match running {
            Ok((_, v)) => v,
            Err(e) => bail!("{e:#}\n{}", proc.tail(40)),
        };
        let epoch = message(&running)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("epoch="))
            .and_then(|e| e.parse().ok())
            .context("epoch in the running line")?;
        self.epoch = epoch;
        self.daemon = Some(proc);
        Ok(epoch)
    }

    /// Waits until the daemon holds a gate policy (fetched or loaded from its cache).
    pub async fn wait_policy_held(&self) -> anyhow::Result<()> {
        self.log()?
            .wait_json(0, deadline(STEP), "a gate policy", |v| {
                matches!(
                    message(v),
                    "gate policy updated" | "cached gate policy loaded"
                )
            })
            .await?;
        Ok(())
    }

    /// SIGKILL to the daemon.
    pub async fn kill_daemon(&mut self) -> anyhow::Result<Proc> {
        let mut proc = self.daemon.take().context("the daemon is not running")?;
        proc.kill().await?;
        Ok(proc)
    }

    /// SIGTERM to the daemon; it must stop cleanly.
    pub async fn stop_daemon(&mut self) -> anyhow::Result<Proc> {
        let mut proc = self.daemon.take().context("the daemon is not running")?;
        let status = proc.terminate(STEP).await?;
        ensure!(status.success(), "custosd exited with {status}");
        Ok(proc)
    }

    /// The cached gate policy (`policy.json` in the data directory), if any.
    pub fn cached_policy(&self) -> anyhow::Result<Option<GatePolicy>> {
        let path = self.data_dir.join("policy.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let file: Value = serde_json::from_str(&text)?;
        let body = STANDARD.decode(file["body"].as_str().context("policy body")?)?;
        Ok(Some(serde_json::from_slice(&body)?))
    }

    /// Waits until the daemon's cached policy lets `epc` leave (`true`) or not.
    pub async fn wait_policy_allows(&self, epc: Epc, allowed: bool) -> anyhow::Result<()> {
        poll_until(
            &format!("the gate policy to allow {epc}: {allowed}"),
            || {
                let held = self
                    .cached_policy()
                    .ok()
                    .flatten()
                    .is_some_and(|p| p.allowed.iter().any(|a| a.epc == epc));
                std::future::ready(Ok(held == allowed))
            },
        )
        .await
    }

    /// Waits until the reader has been inventoried `rounds` times on `antenna` with at least
    /// `tags` reads each, in rounds ending after log index `from`.
    pub async fn wait_reads(
        &self,
        from: usize,
        antenna: u8,
        tags: usize,
        rounds: usize,
    ) -> anyhow::Result<usize> {
        let mut seen = 0;
        let (index, _) = self
            .log()?
            .wait_json(
                from,
                deadline(STEP),
                &format!("{rounds} inventory rounds with {tags} reads on antenna {antenna}"),
                |v| {
                    if message(v) == "round end"
                        && fields(v)["antenna"] == antenna
                        && fields(v)["reads"].as_u64().unwrap_or(0) >= tags as u64
                    {
                        seen += 1;
                    }
                    seen >= rounds
                },
            )
            .await?;
        Ok(index)
    }

    /// Someone carries `tags` through the door: into the field of `from_antenna` until the
    /// daemon has read them, then into the field of `to_antenna` until it recognises the
    /// crossing in `direction` (`"Out"` or `"In"`), then away.
    pub async fn walk(
        &self,
        tags: &[Epc],
        from_antenna: u8,
        to_antenna: u8,
        direction: &str,
    ) -> anyhow::Result<Crossing> {
        let log = self.log()?;
        let mark = log.len();
        self.control.field(from_antenna, tags).await?;
        self.wait_reads(mark, from_antenna, tags.len(), 3).await?;
        let mark = log.len();
        self.control.field(from_antenna, &[]).await?;
        self.control.field(to_antenna, tags).await?;
        let (log_index, entry) = log
            .wait_json(
                mark,
                deadline(STEP),
                &format!("a crossing {direction}"),
                |v| message(v) == "crossing" && fields(v)["direction"] == direction,
            )
            .await?;
        self.control.field(to_antenna, &[]).await?;
        Ok(Crossing {
            log_index,
            seq: fields(&entry)["seq"].as_u64(),
            fields: fields(&entry).clone(),
        })
    }

    /// Carries `tags` out: inner antenna 1, then outer antenna 3.
    pub async fn walk_out(&self, tags: &[Epc]) -> anyhow::Result<Crossing> {
        self.walk(tags, 1, 3, "Out").await
    }

    /// Carries `tags` in: outer antenna 3, then inner antenna 1.
    pub async fn walk_in(&self, tags: &[Epc]) -> anyhow::Result<Crossing> {
        self.walk(tags, 3, 1, "In").await
    }

    /// Waits for the gate's `exit decided` entry for `crossing` (matched by seq).
    pub async fn exit_decided(&self, crossing: &Crossing) -> anyhow::Result<Value> {
        let seq = crossing.seq.context("the crossing was not stored")?;
        let (_, entry) = self
            .log()?
            .wait_json(
                crossing.log_index,
                deadline(STEP),
                &format!("the exit of seq {seq} decided"),
                |v| message(v) == "exit decided" && fields(v)["seq"] == seq,
            )
            .await?;
        Ok(fields(&entry).clone())
    }

    /// A mark for [`Rig::wait_for_gpo_after`]: the lines the LLRP reader printed so far.
    pub fn gpo_mark(&self) -> usize {
        self.reader.stdout.len()
    }

    /// Waits until the simulated LLRP reader reports GPO `gpo` (1-based) set to `value`, after
    /// its stdout line `mark`.
    pub async fn wait_for_gpo_after(
        &self,
        mark: usize,
        gpo: u16,
        value: bool,
        within: Duration,
    ) -> anyhow::Result<()> {
        self.reader
            .stdout
            .wait_json(
                mark,
                deadline(within),
                &format!("GPO {gpo} -> {value}"),
                |v| v["gpo"] == gpo && v["value"] == value,
            )
            .await?;
        Ok(())
    }

    /// The gate I/O module's stdout (coil changes).
    pub fn coils(&self) -> anyhow::Result<&Lines> {
        Ok(&self.io.as_ref().context("no gate I/O module")?.stdout)
    }

    /// A mark for [`Rig::wait_for_coil_after`]: the coil changes so far.
    pub fn coil_mark(&self) -> usize {
        self.coils().map_or(0, Lines::len)
    }

    /// Waits until the gate I/O module reports `coil` set to `value` (after line `mark`).
    pub async fn wait_for_coil_after(
        &self,
        mark: usize,
        coil: u16,
        value: bool,
        within: Duration,
    ) -> anyhow::Result<()> {
        self.coils()?
            .wait_json(
                mark,
                deadline(within),
                &format!("coil {coil} -> {value}"),
                |v| v["coil"] == coil && v["value"] == value,
            )
            .await?;
        Ok(())
    }

    /// Waits until the gate I/O module reports `coil` set to `value` (at any time).
    pub async fn wait_for_coil(
        &self,
        coil: u16,
        value: bool,
        within: Duration,
    ) -> anyhow::Result<()> {
        self.wait_for_coil_after(0, coil, value, within).await
    }

    /// The changes of `coil` to `value` reported after line `mark`.
    pub fn coil_changes_after(&self, mark: usize, coil: u16, value: bool) -> usize {
        self.coils().map_or(0, |c| {
            c.json_since(mark, |v| v["coil"] == coil && v["value"] == value)
                .len()
        })
    }

    /// Events left in the daemon's outbox (`outbox.db`, opened read-only). Only while the
    /// daemon is not running: it holds its outbox exclusively.
    pub fn outbox_depth(&self) -> anyhow::Result<i64> {
        let db = open_read_only(&self.data_dir.join("outbox.db"))?;
        Ok(db.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
    }
}

/// Opens an SQLite database read-only (the writer may be running: WAL lets both work).
pub fn open_read_only(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    db.busy_timeout(Duration::from_secs(5))?;
    Ok(db)
}

/// A daemon configuration (INTERFACES.md format) for `device_id`: a gate (with `gate_io`, inner
/// antennas 1-2, outer 3-4) or a cabinet (antennas 1-2).
#[allow(clippy::too_many_arguments)] // every argument is a different fact
pub fn daemon_config(
    device_id: &str,
    server: SocketAddr,
    key_file: &Path,
    data_dir: &Path,
    server_key: &str,
    reader_port: &Path,
    gate_io: Option<SocketAddr>,
    t: DaemonTuning,
) -> String {
    let antennas = match gate_io {
        Some(_) => "inner_antennas = [1, 2]\nouter_antennas = [3, 4]\n",
        None => "antennas = [1, 2]\n",
    };
    let mut config = format!(
        "device_id = \"{device_id}\"\nserver = \"http://{server}\"\nkey_file = {key:?}\n\
         data_dir = {data:?}\nserver_public_key = \"{server_key}\"\n\n\
         [[readers]]\nname = \"uhf-main\"\nprotocol = \"uhf-a0\"\nport = {port:?}\n{antennas}\n",
        key = key_file.display().to_string(),
        data = data_dir.display().to_string(),
        port = reader_port.display().to_string(),
    );
    if let Some(addr) = gate_io {
        config.push_str(&format!(
            "[gate_io]\ntransport = \"tcp\"\naddress = \"{addr}\"\nunit = 1\nalarm_coil = 0\n\
             buzzer_coil = 1\nlock_coil = 2\n\n"
        ));
    }
    config.push_str(&tuning(t));
    config
}

/// A daemon configuration for an LLRP portal gate: the reader at `reader` (inner antennas
/// 1-2, outer 3-4), the alarm light on its GPO 1 and the sounder on GPO 2, no gate I/O module.
pub fn llrp_gate_config(
    device_id: &str,
    server: SocketAddr,
    key_file: &Path,
    data_dir: &Path,
    server_key: &str,
    reader: SocketAddr,
    t: DaemonTuning,
) -> String {
    let mut config = format!(
        "device_id = \"{device_id}\"\nserver = \"http://{server}\"\nkey_file = {key:?}\n\
         data_dir = {data:?}\nserver_public_key = \"{server_key}\"\n\n\
         [[readers]]\nname = \"uhf-main\"\nprotocol = \"llrp\"\naddress = \"{reader}\"\n\
         inner_antennas = [1, 2]\nouter_antennas = [3, 4]\nalarm_gpo = 1\nsounder_gpo = 2\n\n",
        key = key_file.display().to_string(),
        data = data_dir.display().to_string(),
    );
    config.push_str(&tuning(t));
    config
}

/// The `[uplink]`, `[alarm]` and `[smoothing]` sections of the daemons under test.
fn tuning(t: DaemonTuning) -> String {
    format!(
        "[uplink]\nretry_min_ms = 100\nretry_max_ms = 1000\nrequest_timeout_ms = 2000\n\
         heartbeat_interval_ms = {hb}\nverdict_deadline_ms = {vd}\npolicy_refresh_ms = 2000\n\n\
         [alarm]\nduration_ms = {alarm}\n\n\
         [smoothing]\nmin_reads = {mr}\nholdoff_ms = {ho}\npassage_gap_ms = {gap}\n",
        hb = t.heartbeat_interval_ms,
        vd = t.verdict_deadline_ms,
        alarm = t.alarm_ms,
        mr = t.min_reads,
        ho = t.holdoff_ms,
        gap = t.passage_gap_ms,
    )
}
