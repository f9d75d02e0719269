//! `custos-sim bench`: load and latency figures of the whole system on simulated hardware.
//!
//! Two benchmarks, each printed as a table and, with `--json FILE`, written as JSON:
//!
//! - **Site load** ([`site_load`], `--gates 1,10,50`): for each gate count N, a fresh in-process
//!   [`Site`](crate::site::Site) (the server, N simulated gates, one daemon per gate) and a
//!   steady flow of outward passages at every gate, a known share of them unauthorised. It
//!   reports passage-to-alarm-coil and passage-to-guard-screen latency, events ingested per
//!   second, the process's CPU and peak memory, and whether any passage was lost or duplicated
//!   between the daemons and the server.
//! - **Daemon** ([`daemon`], `--daemon`): the real `custosd` binary, out of process, with four
//!   simulated 0xA0 readers that talk at the serial wire ceiling (115200 baud 8N1), against the
//!   in-process server: its CPU share and peak memory, and passage-to-coil latency with the
//!   server on loopback and with the server unreachable (fallback to the cached policy).
//!
//! What each figure measures, and what it does not, is documented on the result types; the
//! printed table repeats it in a few words. Everything runs on this machine: the figures are
//! only as quiet as the machine was (the load average at the start is recorded).

pub mod daemon;
pub mod procfs;
pub mod site_load;
pub mod sse;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use custos_protocol::epc::Epc;
use custos_server::AppState;
use serde::Serialize;
use serde_json::{Value, json};

use crate::control::{ControlOp, HexBytes};
use crate::serial::LineRate;
use crate::site::{ApiClient, Level, SeedCarrier, SeedPerson, Site};

/// What `custos-sim bench` runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Gate counts of the site-load benchmark (`None` with `daemon`: skip it).
    pub gates: Option<Vec<usize>>,
    /// Seconds of steady load per measurement.
    pub seconds: f64,
    /// Share (0..=1) of unauthorised passages in the site load.
    pub unauthorised_share: f64,
    /// Run the daemon benchmark.
    pub daemon: bool,
    /// Write the report as JSON here too.
    pub json: Option<PathBuf>,
    /// Where sites and daemons keep their files (wiped; default: a directory under the
    /// system's temporary directory, removed afterwards).
    pub data_dir: Option<PathBuf>,
    /// The `custosd` binary of the daemon benchmark (default: next to this executable).
    pub custosd: Option<PathBuf>,
    /// Serial line speed of the site's simulated readers in baud (0: unpaced).
    pub site_baud: u32,
    /// The command line, for the report.
    pub command: String,
}

impl BenchOptions {
    /// The default site-load gate counts.
    pub const DEFAULT_GATES: [usize; 3] = [1, 10, 50];
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// When it ran (UTC, RFC 3339).
    pub date: String,
    /// The machine.
    pub machine: Machine,
    /// One result per gate count.
    pub site_load: Vec<site_load::SiteLoadResult>,
    /// The daemon benchmark, if run.
    pub daemon: Option<daemon::DaemonResult>,
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// Load averages (1, 5, 15 min) when the benchmark started: other work on the machine.
    pub load_average_at_start: Option<[f64; 3]>,
    /// Whether this is a release build (debug figures are not comparable).
    pub release_build: bool,
    /// The data directory (its file system is where every SQLite commit waits).
    pub data_dir: String,
    /// `fsync` latency in the data directory before the benchmark (100 samples).
    pub fsync: stats::Latency,
}

/// Runs `custos-sim bench` on its own multi-threaded runtime (the server and daemons use every
/// core, as they would in production), prints the table and writes the JSON.
///
/// # Errors
/// A benchmark could not run, or the JSON could not be written.
pub fn main(options: BenchOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("custos-bench")
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(run(&options))?;
    print!("{}", render(&report));
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

/// Runs the benchmarks `options` asks for.
///
/// # Errors
/// Bad options, or a benchmark could not run.
pub async fn run(options: &BenchOptions) -> anyhow::Result<Report> {
    anyhow::ensure!(
        options.seconds.is_finite() && options.seconds > 0.0,
        "--seconds must be a positive number"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&options.unauthorised_share),
        "--unauthorised-share must be between 0 and 1"
    );
    let (root, temporary) = match &options.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("custos-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let load_average_at_start = procfs::load_average();
    let fsync = {
        let root = root.clone();
        tokio::task::spawn_blocking(move || procfs::fsync_latency(&root, 100))
            .await?
            .context("timing fsync in the data directory")?
    };
    let machine = Machine {
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        load_average_at_start,
        release_build: !cfg!(debug_assertions),
        data_dir: std::fs::canonicalize(&root)
            .unwrap_or_else(|_| root.clone())
            .display()
            .to_string(),
        fsync: stats::Latency::of(&fsync),
    };
    let measured = measure(options, &root).await;
    if temporary {
        if let Err(e) = std::fs::remove_dir_all(&root) {
            tracing::warn!("cannot remove {}: {e}", root.display());
        }
    }
    let (site_results, daemon_result) = measured?;
    Ok(Report {
        command: options.command.clone(),
        date: custos_server::domain::time::Timestamp::from_unix(unix_ms() / 1000)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        machine,
        site_load: site_results,
        daemon: daemon_result,
    })
}

/// Runs the benchmarks with their files under `root`.
async fn measure(
    options: &BenchOptions,
    root: &std::path::Path,
) -> anyhow::Result<(Vec<site_load::SiteLoadResult>, Option<daemon::DaemonResult>)> {
    let gates = match (&options.gates, options.daemon) {
        (Some(g), _) => g.clone(),
        (None, true) => Vec::new(),
        (None, false) => BenchOptions::DEFAULT_GATES.to_vec(),
    };
    let line_rate = (options.site_baud > 0).then(|| LineRate::uart_8n1(options.site_baud));
    let mut site_results = Vec::new();
    for (i, n) in gates.into_iter().enumerate() {
        anyhow::ensure!(n > 0, "a gate count must be at least 1");
        eprintln!("custos-sim bench: site load with {n} gates ...");
        let result = site_load::run(site_load::SiteLoadOptions {
            gates: n,
            seconds: options.seconds,
            unauthorised_share: options.unauthorised_share,
            // A directory per run: SQLite in this process may still hold the last run's files.
            data_dir: root.join(format!("site-{}-{n}-gates", i + 1)),
            line_rate,
        })
        .await
        .with_context(|| format!("site load with {n} gates"))?;
        site_results.push(result);
    }
    let daemon_result = if options.daemon {
        eprintln!("custos-sim bench: daemon ...");
        let custosd = match &options.custosd {
            Some(path) => path.clone(),
            None => daemon::custosd_next_to_this_exe()?,
        };
        Some(
            daemon::run(daemon::DaemonOptions {
                seconds: options.seconds,
                data_dir: root.join("daemon"),
                custosd,
            })
            .await
            .context("daemon benchmark")?,
        )
    } else {
        None
    };
    Ok((site_results, daemon_result))
}

/// The report as text tables.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\ncustos-sim bench — {} — {} CPUs, load average at start {}, {} build\n\
         data in {}: fsync p50 / p99 / max {}\n",
        report.date,
        report.machine.cpus,
        report
            .machine
            .load_average_at_start
            .map_or("?".to_owned(), |l| format!(
                "{:.2} {:.2} {:.2}",
                l[0], l[1], l[2]
            )),
        if report.machine.release_build {
            "release"
        } else {
            "DEBUG (figures not comparable)"
        },
        report.machine.data_dir,
        report.machine.fsync.cell(),
    ));
    if !report.site_load.is_empty() {
        out.push_str(&site_load::render(&report.site_load));
    }
    if let Some(d) = &report.daemon {
        out.push_str(&daemon::render(d));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Shared by both benchmarks

/// The current wall-clock time in Unix milliseconds.
#[must_use]
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The control op that puts `tags` in the field of `antenna` (1-based).
#[must_use]
pub fn field_op(antenna: u8, tags: &[Epc]) -> ControlOp {
    ControlOp::Field {
        antenna: std::num::NonZeroU8::new(antenna).unwrap_or(std::num::NonZeroU8::MIN),
        tags: tags
            .iter()
            .map(|t| HexBytes(t.as_bytes().to_vec()))
            .collect(),
    }
}

/// Carriers the benchmark can sign out so that they may leave, each with a borrower who may
/// borrow it and carries a badge: Confidential carriers (anyone with valid training and a
/// signed commitment may borrow them), at most `max`.
#[must_use]
pub fn leavable(site: &Site, max: usize) -> Vec<(SeedCarrier, SeedPerson)> {
    let seeded = site.seeded();
    let borrowers: Vec<&SeedPerson> = seeded
        .people
        .iter()
        .filter(|p| p.badge.is_some() && p.may_borrow(Level::Confidential))
        .collect();
    if borrowers.is_empty() {
        return Vec::new();
    }
    seeded
        .carriers
        .iter()
        .filter(|c| c.level == Level::Confidential)
        .take(max)
        .enumerate()
        .map(|(i, c)| (c.clone(), borrowers[i % borrowers.len()].clone()))
        .collect()
}

/// Signs each carrier out to its borrower for a day with `may_leave`: the custodian requests,
/// a security officer approves, the custodian issues (as the demo's custodian does).
///
/// # Errors
/// A request was refused.
pub async fn sign_out(site: &Site, pairs: &[(SeedCarrier, SeedPerson)]) -> anyhow::Result<()> {
    let api = site.api();
    let custodian: ApiClient = site.session(&api, "custodian").await?;
    let officer: ApiClient = site.session(&api, "officer1").await?;
    let due = site.now().plus_secs(24 * 3600).to_string();
    for (carrier, borrower) in pairs {
        let answer = custodian
            .post(
                "/api/v1/signouts",
                &json!({
                    "carrier_ids": [carrier.id],
                    "borrower": borrower.id,
                    "purpose": "benchmark",
                    "due_at": due,
                    "may_leave": true,
                }),
            )
            .await?;
        let id = answer["id"]
            .as_str()
            .context("sign-out answer without id")?
            .to_owned();
        officer
            .post(&format!("/api/v1/signouts/{id}/approve"), &json!({}))
            .await?;
        custodian
            .post(&format!("/api/v1/signouts/{id}/issue"), &json!({}))
            .await?;
    }
    Ok(())
}

/// A passage event as the server stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassage {
    /// The device.
    pub device: String,
    /// Boot epoch.
    pub epoch: i64,
    /// Sequence number in the epoch.
    pub seq: i64,
    /// When the device saw it (Unix ms).
    pub at_ms: i64,
    /// The gate reader.
    pub reader: String,
    /// `in` or `out`.
    pub direction: String,
    /// The carrier tags.
    pub carriers: Vec<Epc>,
}

/// Every passage event in the server's database.
///
/// # Errors
/// The query failed.
pub async fn stored_passages(state: &AppState) -> anyhow::Result<Vec<StoredPassage>> {
    let rows = state
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT device_id, epoch, seq, at_ms, body_json FROM events
                 WHERE kind = 'passage' ORDER BY device_id, at_ms",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (device, epoch, seq, at_ms, body) in rows {
        let body: Value = serde_json::from_str(&body).context("event body")?;
        let carriers = body["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["epc"].as_str().and_then(|h| Epc::from_hex(h).ok()))
            .collect();
        out.push(StoredPassage {
            device,
            epoch,
            seq,
            at_ms,
            reader: body["reader"].as_str().unwrap_or_default().to_owned(),
            direction: body["direction"].as_str().unwrap_or_default().to_owned(),
            carriers,
        });
    }
    Ok(out)
}

/// A device's last heartbeat as the server keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStatus {
    /// When the server received it (Unix ms, whole seconds: the server keeps seconds).
    pub heartbeat_ms: i64,
    /// The outbox depth it reported.
    pub outbox_depth: u64,
    /// Its readers' health (`{name: {state, frames_ok, ...}}`).
    pub readers: Value,
}

/// The last heartbeat of every device that sent one.
///
/// # Errors
/// The query failed.
pub async fn device_status(
    state: &AppState,
) -> anyhow::Result<std::collections::HashMap<String, DeviceStatus>> {
    let rows = state
        .store()
        .read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT device_id, last_heartbeat_ms, health_json FROM device_status
                 WHERE last_heartbeat_ms IS NOT NULL AND health_json IS NOT NULL",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let mut out = std::collections::HashMap::new();
    for (device, heartbeat_ms, health) in rows {
        let health: Value = serde_json::from_str(&health).context("device health")?;
        out.insert(
            device,
            DeviceStatus {
                heartbeat_ms,
                outbox_depth: health["outbox_depth"].as_u64().unwrap_or(u64::MAX),
                readers: health["readers"].clone(),
            },
        );
    }
    Ok(out)
}

/// Events of every kind the server stored that their devices dated within `[from_ms, to_ms)`.
/// (By the device's time, in milliseconds: the server's receive time is kept in whole seconds.)
///
/// # Errors
/// The query failed.
pub async fn events_dated(state: &AppState, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
    let count = state
        .store()
        .read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM events WHERE at_ms >= ?1 AND at_ms < ?2",
                [from_ms, to_ms],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// One passage the benchmark walked, as the server should have stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The device.
    pub device: String,
    /// The gate reader.
    pub reader: String,
    /// The carrier walked through.
    pub carrier: Epc,
    /// From when the passage may be dated (Unix ms).
    pub from_ms: i64,
    /// Until when it may be dated (Unix ms).
    pub to_ms: i64,
}

/// How the server's passage events compare with the passages walked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Passages walked.
    pub walked: usize,
    /// Walked passages with exactly one stored outward event naming the carrier.
    pub stored_once: usize,
    /// Walked passages without any stored event.
    pub missing: usize,
    /// Stored events beyond the first for one walked passage.
    pub duplicated: usize,
    /// Stored passage events of these devices that match no walked passage.
    pub unexpected: usize,
}

/// Matches stored passage events to walked passages: an event matches when it is an outward
/// passage at the same device and reader, names the carrier, and is dated within the
/// passage's window (windows of one reader do not overlap).
#[must_use]
pub fn reconcile(expected: &[Expected], stored: &[StoredPassage]) -> Reconciled {
    let mut used = vec![false; stored.len()];
    let mut r = Reconciled {
        walked: expected.len(),
        ..Reconciled::default()
    };
    for e in expected {
        let matches: Vec<usize> = stored
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.device == e.device
                    && s.reader == e.reader
                    && s.direction == "out"
                    && s.carriers.contains(&e.carrier)
                    && (e.from_ms..=e.to_ms).contains(&s.at_ms)
            })
            .map(|(i, _)| i)
            .collect();
        match matches.len() {
            0 => r.missing += 1,
            n => {
                r.stored_once += usize::from(n == 1);
                r.duplicated += n - 1;
            }
        }
        for i in matches {
            used[i] = true;
        }
    }
    let devices: std::collections::HashSet<&str> =
        expected.iter().map(|e| e.device.as_str()).collect();
    r.unexpected = stored
        .iter()
        .zip(&used)
        .filter(|(s, used)| !**used && devices.contains(s.device.as_str()))
        .count();
    r
}

/// Sleeps until `at` (a `std` instant).
pub async fn sleep_until(at: std::time::Instant) {
    tokio::time::sleep_until(at.into()).await;
}

/// Waits until `ready()` holds, polling every 100 ms, for at most `limit`.
///
/// # Errors
/// `what` did not happen within `limit`.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl AsyncFnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if ready().await {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epc(n: u64) -> Epc {
        custos_protocol::epc::tds::giai96(0, "0614141", n).unwrap()
    }

    fn stored(device: &str, at_ms: i64, carrier: Epc, direction: &str) -> StoredPassage {
        StoredPassage {
            device: device.into(),
            epoch: 1,
            seq: at_ms,
            at_ms,
            reader: "uhf".into(),
            direction: direction.into(),
            carriers: vec![carrier],
        }
    }

    fn expected(device: &str, carrier: Epc, from_ms: i64) -> Expected {
        Expected {
            device: device.into(),
            reader: "uhf".into(),
            carrier,
            from_ms,
            to_ms: from_ms + 1000,
        }
    }

    #[test]
    fn reconcile_counts_missing_duplicated_and_unexpected() {
        let (a, b) = (epc(1), epc(2));
        let walked = [
            expected("g1", a, 0),
            expected("g1", a, 5000),
            expected("g1", b, 10_000),
            expected("g2", a, 0),
        ];
        let server = [
            stored("g1", 100, a, "out"),
            stored("g1", 5100, a, "out"),
            stored("g1", 5200, a, "out"),
            // Wrong direction: does not count for the walk, and is unexpected.
            stored("g1", 10_100, b, "in"),
            stored("g2", 200, a, "out"),
            // Another device's events are not this benchmark's business.
            stored("other", 200, a, "out"),
        ];
        let r = reconcile(&walked, &server);
        assert_eq!(
            r,
            Reconciled {
                walked: 4,
                stored_once: 2,
                missing: 1,
                duplicated: 1,
                unexpected: 1,
            }
        );
        let clean = reconcile(&walked[..1], &server[..1]);
        assert_eq!(
            (clean.missing, clean.duplicated, clean.unexpected),
            (0, 0, 0)
        );
    }
}
