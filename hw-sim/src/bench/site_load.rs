//! Site load: the server, N gates and N daemons in this process, with a steady flow of
//! outward passages at every gate, a known share of them unauthorised.
//!
//! # The flow
//! A fresh [`Site`] with N gates (no cabinets, no desk), at least 40 carriers and 20 people.
//! Sixteen Confidential carriers are signed out with `may_leave` to borrowers with badges
//! ([`super::leavable`]); every gate waits until its daemon's readers answer and its cached
//! policy lists them. Then each gate, on its own, walks one person out after another: the tags
//! stand [`DWELL`] in the field of inner antenna 1, then [`DWELL`] in the field of outer
//! antenna 3, then are gone; the next person comes [`PASSAGE_GAP`] later (what the gate's
//! smoothing needs to tell two passages apart). The gates start staggered over one cycle, so
//! the passages arrive evenly. Passage `k` of gate `g` is unauthorised when
//! `⌈(k+g+1)·share⌉ > ⌈(k+g)·share⌉` (exactly the share, spread evenly): a carrier nobody signed
//! out, carried without a badge, and never the same carrier twice at one gate (so each raises
//! a new alert, not another occurrence of an open one). The others carry a signed-out
//! carrier with its borrower's badge.
//!
//! # What is measured
//! - **passage → coil**: from just before the control op that puts the tag in the outer
//!   antenna's field is sent (the person steps into the outer field) to the moment the gate
//!   I/O simulator's alarm coil (coil 0) change reaches the benchmark; unauthorised passages.
//!   It includes the reader's inventory cycle and the smoothing (two reads on the outer side),
//!   the daemon's store-and-upload, the server's verdict and the Modbus write.
//! - **daemon passage → coil**: the daemon's own figure ([`GateMetrics::passage_to_coil`]):
//!   from the crossing notice being recognised to the completed coil write, from the gate
//!   reports of every daemon (the same samples the metric records).
//! - **passage → guard screen**: from the same start to the moment a guard's screen (an HTTP
//!   client of `GET /api/v1/alerts/stream`, logged in as the guard) receives the
//!   `unauthorized_removal` alert.
//! - **events/s**: events the server ingested during the flow (`custos_events_ingested_total`),
//!   per second.
//! - **CPU and memory**: of this whole process (server, daemons, simulators and the benchmark
//!   itself share it), user + system time over the flow; per-thread attribution by thread name
//!   where the threads are dedicated (the server's SQLite writer, each daemon's outbox thread);
//!   everything async shares the runtime's worker threads and cannot be split. Peak memory is
//!   `VmHWM`.
//! - **lost / duplicated**: after the flow, every daemon's outbox is drained; each walked
//!   passage is matched with the daemon's decision on it (its outbox event, epoch and seq) and
//!   with the server's passage events ([`super::reconcile`]).
//!
//! [`GateMetrics::passage_to_coil`]: custos_daemon::gate::GateMetrics::passage_to_coil

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use custos_daemon::gate::{DecidedBy, GateReport};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::HealthState;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::procfs::{self, CpuUse, CpuWindow, Memory, Proc};
use super::stats::Latency;
use super::{Expected, Reconciled, field_op, leavable, reconcile, sign_out, sse, unix_ms};
use crate::serial::{LineRate, set_default_line_rate};
use crate::site::{
    DaemonTuning, DeviceRole, SeedCarrier, SeedOptions, ServerTuning, Site, SiteDevice, SiteOptions,
};

/// How long the tags stay in each antenna's field during a passage.
pub const DWELL: Duration = Duration::from_millis(500);

/// From the end of one passage at a gate to the start of the next one there.
pub const PASSAGE_GAP: Duration = crate::site::PASSAGE_GAP;

/// How long a gate's alarm sounds: shorter than the time between two passages at a gate, so
/// each unauthorised passage writes the coil afresh.
pub const ALARM: Duration = Duration::from_millis(1000);

/// Carriers signed out so that they may leave.
const LEAVING: usize = 16;

/// The longest the benchmark waits for the gates to be ready, and for the drain.
const WAIT: Duration = Duration::from_secs(120);

/// What one site-load run does.
#[derive(Debug, Clone)]
pub struct SiteLoadOptions {
    /// Gates.
    pub gates: usize,
    /// Seconds of passages.
    pub seconds: f64,
    /// Share of unauthorised passages.
    pub unauthorised_share: f64,
    /// The site's data directory (wiped).
    pub data_dir: PathBuf,
    /// The simulated readers' line rate (`None`: unpaced).
    pub line_rate: Option<LineRate>,
}

/// What one site-load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SiteLoadResult {
    /// Gates (each a simulated reader, gate I/O module and daemon).
    pub gates: usize,
    /// The simulated readers' line rate in bytes/s (`None`: unpaced).
    pub reader_bytes_per_sec: Option<u32>,
    /// Seconds to build the site (server, devices, seed, daemons) and get it ready.
    pub build_seconds: f64,
    /// Seconds of the flow, from the first passage to the end of the last.
    pub flow_seconds: f64,
    /// Passages walked.
    pub passages: Passages,
    /// Outer-field entry → alarm coil at the gate I/O module (unauthorised passages).
    pub passage_to_coil: Latency,
    /// The daemons' own figure: crossing recognised → coil write completed.
    pub daemon_passage_to_coil: Latency,
    /// Outer-field entry → alert on the guard's screen (SSE).
    pub passage_to_screen: Latency,
    /// Outer-field entry → the alarm's e-mail accepted by the SMTP server (aiosmtpd).
    pub passage_to_email: Latency,
    /// Outer-field entry → the alarm's webhook POST received.
    pub passage_to_webhook: Latency,
    /// Who decided the exits, and how long after the crossing.
    pub decisions: Decisions,
    /// Alarms where there should be none, and none where there should be.
    pub alarms: Alarms,
    /// Events ingested by the server.
    pub ingest: Ingest,
    /// Passages lost or duplicated on the way.
    pub loss: Loss,
    /// CPU of this process during the flow.
    pub cpu: SiteCpu,
    /// Memory of this process.
    pub memory: Memory,
}

/// Passages walked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Passages {
    /// All.
    pub total: usize,
    /// Carriers nobody signed out.
    pub unauthorised: usize,
    /// Signed-out carriers with their borrower's badge.
    pub authorised: usize,
}

/// The daemons' decisions on the walked passages.
#[derive(Debug, Clone, Serialize)]
pub struct Decisions {
    /// By the server's verdict within the deadline.
    pub server: usize,
    /// By the cached policy (the server's verdict came too late).
    pub policy: usize,
    /// Crossing recognised → decision.
    pub latency: Latency,
}

/// Alarm outcomes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Alarms {
    /// Unauthorised passages without a coil write.
    pub missed_coil: usize,
    /// Authorised passages with a coil write.
    pub false_alarm: usize,
    /// Unauthorised passages whose alert never reached the guard's screen.
    pub missed_screen: usize,
    /// `resync` events on the guard's screen (it fell behind).
    pub screen_resyncs: u64,
    /// Gate alarms the guard acknowledged and resolved (see [`super::sse`]).
    pub guard_handled: u64,
    /// Gate alarms the guard could not handle (the request failed).
    pub guard_failed: u64,
    /// Gate reports or coil changes the benchmark's observers missed (lagged).
    pub observer_lag: u64,
}

/// Events ingested by the server during the flow.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ingest {
    /// Events of every kind stored, dated within the flow.
    pub events: u64,
    /// Per second of flow.
    pub events_per_sec: f64,
}

/// Passages lost or duplicated between the walk, the daemons and the server.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Loss {
    /// Walked passages a daemon decided (its smoothing recognised the crossing).
    pub recognised: usize,
    /// Walked passages no daemon recognised (reader or smoothing did not see the crossing).
    pub unrecognised: usize,
    /// Recognised passages without an outbox event (the outbox refused it).
    pub not_appended: usize,
    /// Walked passages decided as two or more crossings (different outbox events). A late
    /// server verdict on an exit the policy decided is a second report on the same event and
    /// does not count.
    pub decided_twice: usize,
    /// The server's events against the walk.
    pub server: Reconciled,
    /// Recognised, appended passages the server does not have: the figure that must be 0.
    pub lost: usize,
    /// Passages stored or decided more than once: the figure that must be 0.
    pub duplicated: usize,
    /// Events left in the daemons' outboxes after the drain.
    pub outbox_left: u64,
}

/// CPU of this process during the flow.
#[derive(Debug, Clone, Serialize)]
pub struct SiteCpu {
    /// The whole process.
    pub process: CpuUse,
    /// By thread name (live threads only; exited threads count in `process` only).
    pub threads: Vec<ThreadCpu>,
}

/// CPU of the threads with one name.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadCpu {
    /// The thread name (as the kernel keeps it, at most 15 bytes).
    pub name: String,
    /// What runs on them.
    pub runs: &'static str,
    /// How many threads.
    pub threads: usize,
    /// Their CPU during the flow.
    pub cpu: CpuUse,
}

fn thread_role(name: &str) -> &'static str {
    match name {
        "custos-store-wr" => "server: SQLite writer (every ingest, alert and audit write)",
        "custosd-outbox" => "daemons: outbox (SQLite, fsync per event), one per daemon",
        "custos-bench" => {
            "tokio runtime: server HTTP and rules, daemons' readers, pipelines, gates, uplinks; \
             simulators; the benchmark; SQLite reads (blocking pool)"
        }
        "custos-sim" => "main thread (waits)",
        _ => "other",
    }
}

/// One walked passage.
#[derive(Debug, Clone)]
struct Walk {
    gate: usize,
    carrier: Epc,
    control_no: String,
    unauthorised: bool,
    /// Tags entered the inner field.
    inner_at: Instant,
    inner_ms: i64,
    /// Just before the outer-field op was sent.
    outer_at: Instant,
    /// The tags left the outer field.
    end_at: Instant,
    end_ms: i64,
}

/// A decision report from a gate.
#[derive(Debug, Clone)]
struct Decided {
    gate: usize,
    at: Instant,
    tags: Vec<Epc>,
    event: Option<(u64, u64)>,
    by: DecidedBy,
    elapsed: Duration,
}

#[derive(Debug, Default)]
struct Observed {
    coils: Vec<(usize, Instant)>,
    decided: Vec<Decided>,
    coil_latency: Vec<Duration>,
    lag: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether passage `k` of gate `g` is unauthorised (see the module docs).
fn is_unauthorised(k: usize, g: usize, share: f64) -> bool {
    let at = |i: usize| (i as f64 * share).ceil() as u64;
    at(k + g + 1) > at(k + g)
}

/// Runs one site-load measurement.
///
/// # Errors
/// The site could not be built or driven.
pub async fn run(options: SiteLoadOptions) -> anyhow::Result<SiteLoadResult> {
    let n = options.gates;
    let cycle = DWELL * 2 + PASSAGE_GAP;
    let per_gate = (options.seconds / cycle.as_secs_f64()).ceil() as usize + 1;
    let unauthorised_per_gate = (per_gate as f64 * options.unauthorised_share).ceil() as usize + 1;
    let built = Instant::now();
    // The alert notifications' counterparts: a real SMTP server and an HTTP receiver.
    let arrivals = Arc::new(Mutex::new(Arrivals::default()));
    let (smtp, webhooks, receivers) = notification_receivers(&arrivals).await?;
    set_default_line_rate(options.line_rate);
    let site = Site::build(SiteOptions {
        data_dir: options.data_dir.clone(),
        listen_from: 0,
        listen: None,
        gates: n,
        cabinets: 0,
        desk: false,
        seed: SeedOptions {
            rng_seed: 2026,
            people: 20,
            carriers: 40 + unauthorised_per_gate.max(8),
        },
        server: ServerTuning {
            // The same carriers pass many gates within seconds here.
            tag_clone_min_travel_secs: 0,
            ..ServerTuning::default()
        },
        daemon: DaemonTuning {
            alarm_duration: ALARM,
        },
        smtp,
        webhooks,
        notifications: custos_server::config::Notifications::default(),
    })
    .await;
    set_default_line_rate(None);
    let site = site.context("building the site")?;
    let result = measure(&site, &options, per_gate, built, &arrivals).await;
    for r in receivers {
        r.abort();
    }
    let stopped = site.shutdown().await;
    let result = result?;
    stopped.context("stopping the site")?;
    Ok(result)
}

async fn measure(
    site: &Site,
    options: &SiteLoadOptions,
    per_gate: usize,
    built: Instant,
    arrivals: &Arc<Mutex<Arrivals>>,
) -> anyhow::Result<SiteLoadResult> {
    let n = options.gates;
    let leaving = if options.unauthorised_share < 1.0 {
        leavable(site, LEAVING)
    } else {
        Vec::new()
    };
    anyhow::ensure!(
        options.unauthorised_share >= 1.0 || !leaving.is_empty(),
        "the seed has no carrier that can be signed out"
    );
    sign_out(site, &leaving).await.context("signing out")?;
    let leaving_epcs: HashSet<Epc> = leaving.iter().map(|(c, _)| c.epc).collect();
    let unauthorised: Vec<SeedCarrier> = site
        .seeded()
        .carriers
        .iter()
        .filter(|c| !leaving_epcs.contains(&c.epc))
        .cloned()
        .collect();
    let gates: Vec<&SiteDevice> = site.with_role(DeviceRole::Gate).collect();
    wait_ready(&gates, &leaving_epcs).await?;
    let build_seconds = built.elapsed().as_secs_f64();
    eprintln!(
        "  site ready in {build_seconds:.1} s; flow of {} s",
        options.seconds
    );

    // Observers, before the first passage.
    let observed = Arc::new(Mutex::new(Observed::default()));
    let mut observers: Vec<JoinHandle<()>> = Vec::new();
    for (g, gate) in gates.iter().enumerate() {
        let coils = gate.subscribe_coils().context("a gate without gate I/O")?;
        observers.push(tokio::spawn(watch_coils(g, coils, observed.clone())));
        let reports = gate
            .with_daemon(custos_daemon::app::Running::subscribe)
            .context("a gate daemon is not running")?;
        observers.push(tokio::spawn(watch_reports(g, reports, observed.clone())));
    }
    let guard = site
        .logins()
        .iter()
        .find(|l| l.username == "guard")
        .context("no guard login")?;
    let token = sse::login(site.addr(), &guard.username, &guard.password).await?;
    let (screen, screen_task) = sse::open(site.addr(), &token).await?;
    observers.push(screen_task);

    // The flow.
    let flow_start_ms = unix_ms();
    let cpu = CpuWindow::start(Proc::This)?;
    let threads_before = procfs::threads_cpu()?;
    let flow_start = Instant::now();
    let cycle = DWELL * 2 + PASSAGE_GAP;
    let deadline = flow_start + Duration::from_secs_f64(options.seconds);
    let walks = futures_util::future::join_all(gates.iter().enumerate().map(|(g, gate)| {
        let offset = cycle.mul_f64(g as f64 / n as f64);
        walk_gate(
            gate,
            g,
            flow_start + offset,
            deadline,
            options.unauthorised_share,
            &leaving,
            &unauthorised,
            per_gate,
        )
    }))
    .await;
    let flow = flow_start.elapsed();
    let cpu = cpu.finish()?;
    let threads_after = procfs::threads_cpu()?;
    let flow_end_ms = unix_ms();
    let walks: Vec<Walk> = walks
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();

    // Drain: a heartbeat sent after the last final passage (hold-off and passage gap after the
    // flow) reports an empty outbox at every gate; then a moment for the last reports.
    let mut outbox_left = 0;
    let drained = super::wait_for("the daemons' outboxes to drain", WAIT, async || {
        let Ok(status) = super::device_status(site.state()).await else {
            return false;
        };
        outbox_left = 0;
        let mut fresh = true;
        for gate in &gates {
            match status.get(&gate.id) {
                Some(s) if s.heartbeat_ms > flow_end_ms + 4000 => outbox_left += s.outbox_depth,
                _ => fresh = false,
            }
        }
        fresh && outbox_left == 0
    })
    .await;
    if let Err(e) = drained {
        eprintln!("  warning: {e}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored = super::stored_passages(site.state()).await?;
    let ingested = super::events_dated(site.state(), flow_start_ms, flow_end_ms).await?;
    let memory = procfs::memory(Proc::This)?;
    for o in &observers {
        o.abort();
    }
    let observed = std::mem::take(&mut *lock(&observed));
    let alerts = screen.alerts();

    // Latencies and alarm checks.
    let by_gate_coils: HashMap<usize, Vec<Instant>> =
        observed
            .coils
            .iter()
            .fold(HashMap::new(), |mut m, (g, at)| {
                m.entry(*g).or_default().push(*at);
                m
            });
    let mut to_coil = Vec::new();
    let mut to_screen = Vec::new();
    let (mut to_email, mut to_webhook) = (Vec::new(), Vec::new());
    let arrived = std::mem::take(&mut *lock(arrivals));
    let (mut missed_coil, mut false_alarm, mut missed_screen) = (0, 0, 0);
    for w in &walks {
        let coil = by_gate_coils.get(&w.gate).and_then(|c| {
            c.iter()
                .find(|at| **at >= w.outer_at && **at < w.end_at + PASSAGE_GAP)
        });
        match (w.unauthorised, coil) {
            (true, Some(at)) => to_coil.push(at.duration_since(w.outer_at)),
            (true, None) => missed_coil += 1,
            (false, Some(_)) => false_alarm += 1,
            (false, None) => {}
        }
        if w.unauthorised {
            let gate_id = gates[w.gate].id.as_str();
            let seen = alerts.iter().find(|a| {
                a.at >= w.outer_at
                    && a.alert["kind"] == "unauthorized_removal"
                    && a.alert["device_id"] == gate_id
                    && a.alert["carrier_control_no"] == w.control_no.as_str()
            });
            match seen {
                Some(a) => {
                    to_screen.push(a.at.duration_since(w.outer_at));
                    let id = a.alert["id"].as_str().and_then(|id| id.parse::<i64>().ok());
                    let first = |got: &[(i64, Instant)]| {
                        got.iter().find(|(i, _)| Some(*i) == id).map(|(_, at)| *at)
                    };
                    if let Some(at) = first(&arrived.mail) {
                        to_email.push(at.saturating_duration_since(w.outer_at));
                    }
                    if let Some(at) = first(&arrived.hook) {
                        to_webhook.push(at.saturating_duration_since(w.outer_at));
                    }
                }
                None => missed_screen += 1,
            }
        }
    }

    // Decisions and loss.
    let mut decided_for: Vec<Vec<&Decided>> = vec![Vec::new(); walks.len()];
    for d in &observed.decided {
        if let Some(i) = walks.iter().position(|w| {
            w.gate == d.gate
                && d.tags.contains(&w.carrier)
                && d.at >= w.inner_at
                && d.at < w.end_at + PASSAGE_GAP
        }) {
            decided_for[i].push(d);
        }
    }
    let recognised = decided_for.iter().filter(|d| !d.is_empty()).count();
    // A late server verdict decides an exit the policy decided already: a second report on the
    // same event, not a second crossing. Two crossings are two different events.
    let decided_twice = decided_for
        .iter()
        .filter(|d| d.iter().map(|d| d.event).collect::<HashSet<_>>().len() > 1)
        .count();
    let not_appended = decided_for
        .iter()
        .filter(|d| d.first().is_some_and(|d| d.event.is_none()))
        .count();
    let stored_ids: HashSet<(&str, i64, i64)> = stored
        .iter()
        .map(|s| (s.device.as_str(), s.epoch, s.seq))
        .collect();
    let lost = walks
        .iter()
        .zip(&decided_for)
        .filter(|(w, d)| {
            d.first().and_then(|d| d.event).is_some_and(|(epoch, seq)| {
                let id = (gates[w.gate].id.as_str(), epoch as i64, seq as i64);
                !stored_ids.contains(&id)
            })
        })
        .count();
    let expected: Vec<Expected> = walks
        .iter()
        .zip(&decided_for)
        .filter(|(_, d)| !d.is_empty())
        .map(|(w, _)| Expected {
            device: gates[w.gate].id.clone(),
            reader: "uhf".to_owned(),
            carrier: w.carrier,
            from_ms: w.inner_ms - 500,
            to_ms: w.end_ms + 2500,
        })
        .collect();
    let server = reconcile(&expected, &stored);
    let decisions: Vec<&Decided> = decided_for
        .iter()
        .filter_map(|d| d.first().copied())
        .collect();

    let unauthorised_walks = walks.iter().filter(|w| w.unauthorised).count();
    let mut threads = Vec::new();
    for (name, (count, after)) in &threads_after {
        let before = threads_before.get(name).map_or(Duration::ZERO, |(_, b)| *b);
        threads.push(ThreadCpu {
            name: name.clone(),
            runs: thread_role(name),
            threads: *count,
            cpu: CpuUse::new(after.saturating_sub(before), flow),
        });
    }
    threads.sort_by(|a, b| b.cpu.cpu_seconds.total_cmp(&a.cpu.cpu_seconds));
    Ok(SiteLoadResult {
        gates: n,
        reader_bytes_per_sec: options.line_rate.map(LineRate::bytes_per_sec),
        build_seconds: round1(build_seconds),
        flow_seconds: round1(flow.as_secs_f64()),
        passages: Passages {
            total: walks.len(),
            unauthorised: unauthorised_walks,
            authorised: walks.len() - unauthorised_walks,
        },
        passage_to_coil: Latency::of(&to_coil),
        daemon_passage_to_coil: Latency::of(&observed.coil_latency),
        passage_to_screen: Latency::of(&to_screen),
        passage_to_email: Latency::of(&to_email),
        passage_to_webhook: Latency::of(&to_webhook),
        decisions: Decisions {
            server: decisions
                .iter()
                .filter(|d| d.by == DecidedBy::Server)
                .count(),
            policy: decisions
                .iter()
                .filter(|d| d.by == DecidedBy::Policy)
                .count(),
            latency: Latency::of(&decisions.iter().map(|d| d.elapsed).collect::<Vec<_>>()),
        },
        alarms: Alarms {
            missed_coil,
            false_alarm,
            missed_screen,
            screen_resyncs: screen.resyncs(),
            guard_handled: screen.handled().0,
            guard_failed: screen.handled().1,
            observer_lag: observed.lag,
        },
        ingest: Ingest {
            events: ingested,
            events_per_sec: round1(ingested as f64 / flow.as_secs_f64()),
        },
        loss: Loss {
            recognised,
            unrecognised: walks.len() - recognised,
            not_appended,
            decided_twice,
            server,
            lost: lost + server.missing,
            duplicated: decided_twice + server.duplicated,
            outbox_left,
        },
        cpu: SiteCpu {
            process: cpu,
            threads,
        },
        memory,
    })
}

/// When each alarm's notifications arrived at their counterparts, by alert id.
#[derive(Debug, Default)]
struct Arrivals {
    mail: Vec<(i64, Instant)>,
    hook: Vec<(i64, Instant)>,
}

/// Start a real SMTP server (aiosmtpd, [`crate::smtp_sink`]) and an HTTP receiver, each
/// noting when the notification of an alert arrives; answers the server's `[smtp]` and
/// `[[webhooks]]` routing `unauthorized_removal` to them, and the receiving tasks.
async fn notification_receivers(
    arrivals: &Arc<Mutex<Arrivals>>,
) -> anyhow::Result<(
    custos_server::config::Smtp,
    Vec<custos_server::config::Webhook>,
    Vec<JoinHandle<()>>,
)> {
    let mut sink = crate::smtp_sink::SmtpSink::start().await?;
    let mut smtp = custos_server::config::Smtp {
        host: "127.0.0.1".into(),
        port: sink.port,
        tls: custos_server::config::SmtpTls::None,
        ..custos_server::config::Smtp::default()
    };
    smtp.routes = vec![custos_server::config::MailRoute {
        kinds: vec![custos_server::domain::alert::AlertKind::UnauthorizedRemoval],
        to: vec!["guardroom@site.invalid".into()],
    }];
    let got = arrivals.clone();
    let mail = tokio::spawn(async move {
        while let Ok(Some(m)) = sink.next().await {
            if let Some(id) = m.alert {
                lock(&got).mail.push((id, Instant::now()));
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let got = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                let at = Instant::now();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(id) = body["alert"]["id"].as_str().and_then(|i| i.parse().ok()) {
                    if body["event"] == "alert.raised" {
                        lock(&got).hook.push((id, at));
                    }
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let hook = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let webhooks = vec![custos_server::config::Webhook {
        name: "bench".into(),
        url: format!("http://{addr}/hook"),
        secret: "site load benchmark secret".into(),
        kinds: vec![custos_server::domain::alert::AlertKind::UnauthorizedRemoval],
    }];
    Ok((smtp, webhooks, vec![mail, hook]))
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Waits until every gate's readers answer and its policy lists every carrier in `leaving`.
async fn wait_ready(gates: &[&SiteDevice], leaving: &HashSet<Epc>) -> anyhow::Result<()> {
    super::wait_for("the gates to be ready", WAIT, async || {
        gates.iter().all(|gate| {
            gate.with_daemon(|r| {
                let readers_ok = {
                    let hb = r.heartbeat_state();
                    let hb = hb.borrow();
                    !hb.readers.is_empty()
                        && hb.readers.iter().all(|n| n.health.state == HealthState::Ok)
                };
                let policy = r.policy();
                let policy = policy.borrow();
                let listed = policy.as_ref().is_some_and(|p| {
                    leaving
                        .iter()
                        .all(|e| p.policy.allowed.iter().any(|a| a.epc == *e))
                });
                readers_ok && listed
            })
            .unwrap_or(false)
        })
    })
    .await
}

/// Walks passages through one gate until `deadline` (see the module docs).
#[allow(clippy::too_many_arguments)]
async fn walk_gate(
    gate: &SiteDevice,
    g: usize,
    first: Instant,
    deadline: Instant,
    share: f64,
    leaving: &[(SeedCarrier, crate::site::SeedPerson)],
    unauthorised: &[SeedCarrier],
    per_gate: usize,
) -> anyhow::Result<Vec<Walk>> {
    let mut walks = Vec::with_capacity(per_gate);
    let mut next = first;
    let (mut k, mut u, mut a) = (0usize, 0usize, 0usize);
    while next < deadline {
        super::sleep_until(next).await;
        let unauth = leaving.is_empty() || is_unauthorised(k, g, share);
        let (carrier, tags) = if unauth {
            anyhow::ensure!(
                u < unauthorised.len(),
                "not enough carriers for {u} unauthorised passages at one gate"
            );
            // Never the same carrier twice at this gate; gates start at different carriers.
            let c = &unauthorised[(u + g * 7) % unauthorised.len()];
            u += 1;
            (c.clone(), vec![c.epc])
        } else {
            let (c, borrower) = &leaving[(a + g) % leaving.len()];
            a += 1;
            let mut tags = vec![c.epc];
            tags.extend(borrower.badge);
            (c.clone(), tags)
        };
        let inner_at = Instant::now();
        let inner_ms = unix_ms();
        gate.reader_op(&field_op(1, &tags)).await?;
        tokio::time::sleep(DWELL).await;
        gate.reader_op(&field_op(1, &[])).await?;
        let outer_at = Instant::now();
        gate.reader_op(&field_op(3, &tags)).await?;
        tokio::time::sleep(DWELL).await;
        gate.reader_op(&field_op(3, &[])).await?;
        let end_at = Instant::now();
        walks.push(Walk {
            gate: g,
            carrier: carrier.epc,
            control_no: carrier.control_no,
            unauthorised: unauth,
            inner_at,
            inner_ms,
            outer_at,
            end_at,
            end_ms: unix_ms(),
        });
        k += 1;
        next = end_at + PASSAGE_GAP;
    }
    Ok(walks)
}

async fn watch_coils(
    g: usize,
    mut rx: broadcast::Receiver<crate::gate_io::CoilChange>,
    observed: Arc<Mutex<Observed>>,
) {
    loop {
        match rx.recv().await {
            Ok(change) if change.coil == 0 && change.value => {
                lock(&observed).coils.push((g, Instant::now()));
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => lock(&observed).lag += n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn watch_reports(
    g: usize,
    mut rx: broadcast::Receiver<GateReport>,
    observed: Arc<Mutex<Observed>>,
) {
    loop {
        match rx.recv().await {
            Ok(GateReport::Decided(d)) => lock(&observed).decided.push(Decided {
                gate: g,
                at: Instant::now(),
                tags: d.tags,
                event: d.event.map(|e| (e.epoch, e.seq)),
                by: d.by,
                elapsed: d.elapsed,
            }),
            Ok(GateReport::CoilWritten {
                by,
                passage_to_coil,
                ..
            }) if by != DecidedBy::LateServer => {
                lock(&observed).coil_latency.push(passage_to_coil);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => lock(&observed).lag += n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The site-load results as a text table.
#[must_use]
pub fn render(results: &[SiteLoadResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "\nSite load: server + N gates (simulated reader, gate I/O, daemon each) in one process\n\
         latencies in ms as p50 / p99 / max (samples); targets with 50 gates: coil p99 < 50, \
         guard screen p99 < 100, lost = duplicated = 0\n\n",
    );
    let row = |label: &str, cells: Vec<String>| {
        let mut line = format!("{label:<44}");
        for c in cells {
            line.push_str(&format!(" | {c:<34}"));
        }
        line.push('\n');
        line
    };
    let cells = |f: &dyn Fn(&SiteLoadResult) -> String| results.iter().map(f).collect::<Vec<_>>();
    out.push_str(&row("gates", cells(&|r| r.gates.to_string())));
    out.push_str(&row(
        "flow s (passages: unauthorised / authorised)",
        cells(&|r| {
            format!(
                "{:.0} ({}: {} / {})",
                r.flow_seconds, r.passages.total, r.passages.unauthorised, r.passages.authorised
            )
        }),
    ));
    out.push_str(&row(
        "outer-field entry → alarm coil",
        cells(&|r| r.passage_to_coil.cell()),
    ));
    out.push_str(&row(
        "daemon: crossing recognised → coil written",
        cells(&|r| r.daemon_passage_to_coil.cell()),
    ));
    out.push_str(&row(
        "outer-field entry → guard screen (SSE)",
        cells(&|r| r.passage_to_screen.cell()),
    ));
    out.push_str(&row(
        "outer-field entry → e-mail accepted (SMTP)",
        cells(&|r| r.passage_to_email.cell()),
    ));
    out.push_str(&row(
        "outer-field entry → webhook received",
        cells(&|r| r.passage_to_webhook.cell()),
    ));
    out.push_str(&row(
        "decided by server / policy",
        cells(&|r| format!("{} / {}", r.decisions.server, r.decisions.policy)),
    ));
    out.push_str(&row(
        "crossing → decision",
        cells(&|r| r.decisions.latency.cell()),
    ));
    out.push_str(&row(
        "missed coil / false alarm / missed screen",
        cells(&|r| {
            format!(
                "{} / {} / {}",
                r.alarms.missed_coil, r.alarms.false_alarm, r.alarms.missed_screen
            )
        }),
    ));
    out.push_str(&row(
        "events ingested /s",
        cells(&|r| {
            format!(
                "{:.1} ({} events)",
                r.ingest.events_per_sec, r.ingest.events
            )
        }),
    ));
    out.push_str(&row(
        "LOST / DUPLICATED",
        cells(&|r| format!("{} / {}", r.loss.lost, r.loss.duplicated)),
    ));
    out.push_str(&row(
        "recognised / unrecognised / stored once",
        cells(&|r| {
            format!(
                "{} / {} / {}",
                r.loss.recognised, r.loss.unrecognised, r.loss.server.stored_once
            )
        }),
    ));
    out.push_str(&row(
        "process CPU % of one core (kernel %)",
        cells(&|r| {
            format!(
                "{:.1} ({:.1})",
                r.cpu.process.percent_of_one_core,
                r.cpu.process.system_seconds.unwrap_or(0.0) / r.cpu.process.wall_seconds.max(1e-9)
                    * 100.0
            )
        }),
    ));
    for name in ["custos-store-wr", "custosd-outbox", "custos-bench"] {
        out.push_str(&row(
            &format!("  thread {name} %"),
            cells(&|r| {
                r.cpu
                    .threads
                    .iter()
                    .find(|t| t.name == name)
                    .map_or("-".to_owned(), |t| {
                        format!("{:.1} ({} threads)", t.cpu.percent_of_one_core, t.threads)
                    })
            }),
        ));
    }
    out.push_str(&row(
        "process peak RSS MiB (VmHWM)",
        cells(&|r| format!("{:.1}", r.memory.peak_rss_kib as f64 / 1024.0)),
    ));
    out.push_str(&row(
        "site build + ready s",
        cells(&|r| format!("{:.1}", r.build_seconds)),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unauthorised_share_is_exact_and_spread() {
        for share in [0.0, 0.2, 0.25, 0.5, 1.0] {
            for g in 0..5 {
                let count = (0..100).filter(|k| is_unauthorised(*k, g, share)).count();
                assert_eq!(count, (100.0 * share) as usize, "share {share} gate {g}");
            }
        }
        assert!(
            is_unauthorised(0, 0, 0.2),
            "the first passage of gate 0 is one"
        );
        let first: Vec<usize> = (0..5)
            .map(|g| (0..10).find(|k| is_unauthorised(*k, g, 0.2)).unwrap())
            .collect();
        assert_eq!(first, [0, 4, 3, 2, 1], "gates do not all alarm at once");
    }
}
