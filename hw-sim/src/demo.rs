//! `custos-sim demo`: a whole simulated site in one process, and a working day played on it.
//!
//! [`run`] builds a [`Site`] (the server, two gates, two cabinets, a desk, one daemon per device,
//! the seed; see [`crate::site`]), prints where to look (the URL, one login per role, the
//! control sockets), then, unless `--no-scenario`, plays working days until Ctrl-C:
//! sign-outs requested, approved (two approvers for TS) and issued, people walking through the
//! gates with and without authorisation, cabinet removals and returns (one into the wrong
//! cabinet, one without a sign-out that becomes a missing carrier), an issue refused by the
//! rules, an overdue loan, a gate reader unplugged and back, the desk's host switched off and
//! on. Every step acts as the person would: the custodian and the security officers through the
//! HTTP API with their logins, the people through the simulated readers' fields.
//!
//! One line is printed per step, per gate decision that lets someone through, and per alert the
//! server raises or changes (read from the server's alert hub in-process), e.g.
//! `[09:14] ALERT unauthorized_removal C-2026-0004 (秘密/C) at gate-east — 王伟 (no sign-out),
//! alarm coil on 6 ms after the crossing`.
//!
//! # Time
//! The scenario has its own clock for the day (`[09:14]`): one scenario minute takes
//! [`SECS_PER_MINUTE`] real seconds at `--speed 1`, `--speed N` makes it N times faster. What the
//! hardware needs is never compressed: a step takes at least [`MIN_STEP`], a tag stays in an
//! antenna's field at least [`MIN_DWELL`], passages at one gate are at least
//! [`PASSAGE_GAP`](crate::site::PASSAGE_GAP)
//! apart, and a carrier put on a shelf stays there at least [`SHELF_SETTLE`] before it moves
//! again. The server's own timers are real time, scaled once at start: the cabinet-removal grace
//! is 30 s / speed (at least 3 s), an overdue loan is due 90 s / speed (at least 8 s) after its
//! request; silence is noticed after the server's supervision interval (6 s).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use custos_daemon::gate::{DecidedBy, GateReport};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::Direction;
use custos_server::AppState;
use custos_server::store::alerts::AlertView;
use hyper::Method;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::control::ControlOp;
use crate::site::{
    ApiClient, Category, DeviceRole, HttpError, Level, MIN_DWELL, SeedCarrier, SeedPerson, Seeded,
    Site, SiteDevice, SiteOptions,
};

/// Real seconds one scenario minute takes at `--speed 1` (a day of nine hours: 3.6 minutes).
pub const SECS_PER_MINUTE: f64 = 0.4;

/// The shortest real pause between two scenario steps.
pub const MIN_STEP: Duration = Duration::from_millis(500);

/// How long a carrier put on a shelf stays before it is moved again: the cabinet's reader needs
/// a few rounds to see it, its smoothing the hold-off, and the server the snapshot.
pub const SHELF_SETTLE: Duration = Duration::from_secs(5);

/// How long a gate decision waits for the coil report it belongs to, before printing without it.
const COIL_WAIT: Duration = Duration::from_millis(1500);

/// The longest the scenario waits for the server to notice a switched-off host.
const SILENCE_WAIT: Duration = Duration::from_secs(30);

/// Options of `custos-sim demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the server's database, the daemons' outboxes, the links and sockets go.
    pub dir: PathBuf,
    /// Scenario speed factor (2.0 = twice as fast).
    pub speed: f64,
    /// Play the scenario (`false`: leave the site idle for manual play).
    pub scenario: bool,
    /// The server's address (`None`: 127.0.0.1:8080 or the next free port).
    pub listen: Option<std::net::SocketAddr>,
    /// Deliver the alert e-mails to a local SMTP sink started here (else print where they
    /// would go).
    pub smtp_sink: bool,
}

/// Where the demo's alert e-mails go: every kind to the security officer and the guard room.
fn demo_smtp() -> custos_server::config::Smtp {
    let mut smtp = custos_server::config::Smtp {
        from: "custos@demo.invalid".into(),
        ..custos_server::config::Smtp::default()
    };
    smtp.roles.insert(
        "security_officer".into(),
        vec!["security@demo.invalid".into()],
    );
    smtp.roles
        .insert("guard".into(), vec!["guardroom@demo.invalid".into()]);
    smtp.routes = vec![custos_server::config::MailRoute {
        kinds: Vec::new(),
        to: vec!["role:security_officer".into(), "role:guard".into()],
    }];
    smtp
}

/// Runs the demo until `shutdown` completes, then stops everything.
///
/// # Errors
/// A bad `--speed`, or the site could not be built or stopped cleanly.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.speed.is_finite() && options.speed > 0.0,
        "--speed must be a positive number, not {}",
        options.speed
    );
    let speed = options.speed;
    let mut site_options = SiteOptions::demo(&options.dir);
    site_options.listen = options.listen;
    site_options.server.cabinet_removal_grace =
        scale(Duration::from_secs(30), speed).max(Duration::from_secs(3));
    site_options.server.sweep_interval = Duration::from_millis(500);
    // Carriers move from cabinet to gate in seconds here, faster than anyone walks.
    site_options.server.tag_clone_min_travel_secs = 0;
    site_options.daemon.alarm_duration = Duration::from_secs(3);
    site_options.smtp = demo_smtp();
    let sink = if options.smtp_sink {
        let sink = crate::smtp_sink::SmtpSink::start()
            .await
            .context("--smtp-sink")?;
        site_options.smtp.host = "127.0.0.1".into();
        site_options.smtp.port = sink.port;
        site_options.smtp.tls = custos_server::config::SmtpTls::None;
        println!(
            "E-mail: alerts go to a local SMTP server (aiosmtpd) on 127.0.0.1:{}; each message is printed.",
            sink.port
        );
        Some(sink)
    } else {
        println!(
            "E-mail: no SMTP server (--smtp-sink starts a local one). Alarms would go at once, \
             reminders in a daily digest, to security@demo.invalid (role security_officer) \
             and guardroom@demo.invalid (role guard)."
        );
        None
    };
    println!(
        "Custos demo: starting a simulated site in {} ...",
        options.dir.display()
    );
    let mut site = Site::build(site_options)
        .await
        .with_context(|| format!("cannot start the site in {}", options.dir.display()))?;
    let alerts = site
        .take_alerts()
        .context("the alert subscription was taken")?;
    print_banner(&site, &options.dir);

    let shared = Arc::new(Shared {
        clock: DayClock::new(),
        seeded: site.seeded().clone(),
        coils: CoilLog::default(),
    });
    let mut printers = Vec::new();
    if let Some(mut sink) = sink {
        printers.push(tokio::spawn(async move {
            while let Ok(Some(mail)) = sink.next().await {
                println!("  ✉ e-mail to {}: {}", mail.to.join(", "), mail.subject);
            }
        }));
    }
    printers.push(tokio::spawn(print_alerts(
        alerts,
        site.state().clone(),
        shared.clone(),
    )));
    for gate in site.with_role(DeviceRole::Gate) {
        if let Some(reports) = gate.with_daemon(custos_daemon::app::Running::subscribe) {
            printers.push(tokio::spawn(watch_gate(
                gate.id.clone(),
                reports,
                shared.clone(),
            )));
        }
    }

    let scenario = async {
        if options.scenario {
            println!("The scenario plays working days (--speed {speed}); Ctrl-C stops the demo.\n");
            let played = match Scenario::new(&site, &shared, speed).await {
                Ok(scenario) => scenario.play().await,
                Err(e) => Err(e),
            };
            if let Err(e) = played {
                println!("{} scenario stopped: {e:#}", shared.clock.stamp());
                println!("The site stays up for manual play; Ctrl-C stops it.");
            }
        } else {
            println!("No scenario (--no-scenario): the site is idle; Ctrl-C stops it.\n");
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = shutdown => {}
        () = scenario => {}
    }
    println!(
        "\n{} stopping: daemons (flushing their outboxes), simulated devices, server (signing the audit head) ...",
        shared.clock.stamp()
    );
    let stopped = site.shutdown().await;
    for printer in printers {
        printer.abort();
    }
    stopped.context("the site did not stop cleanly")?;
    println!("demo stopped");
    Ok(())
}

/// `d` at `speed`.
fn scale(d: Duration, speed: f64) -> Duration {
    Duration::from_secs_f64(d.as_secs_f64() / speed)
}

fn print_banner(site: &Site, dir: &Path) {
    println!(
        "\nCustos is running at {}  (open it in a browser and sign in)",
        site.url()
    );
    if site.was_wiped() {
        println!(
            "  {} held a previous demo: wiped, every start is a fresh day one.",
            dir.display()
        );
    }
    println!("  Logins (new passwords at every start):");
    println!("    {:<17} {:<10} password", "role", "username");
    for login in site.logins() {
        println!(
            "    {:<17} {:<10} {}",
            login.role, login.username, login.password
        );
    }
    println!(
        "  Pages: {url}guard (guard console, live alerts) · {url}admin/users · {url}audit (auditor)",
        url = site.url()
    );
    println!("  Devices, each with its own daemon (custosd) in this process:");
    for d in site.devices() {
        let place = match (d.inside_zone, d.outside_zone, d.zone) {
            (Some(i), Some(o), _) => format!("{i} ⇄ {o}"),
            (_, _, Some(z)) => z.to_owned(),
            _ => String::new(),
        };
        let hardware = match d.role {
            DeviceRole::Gate if d.llrp_addr.is_some() => format!(
                "LLRP portal reader {} (antennas 1-2 inside, 3-4 outside; alarm on GPO 1, sounder on GPO 2)",
                d.llrp_addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            DeviceRole::Gate => format!(
                "0xA0 UHF reader (antennas 1-2 inside, 3-4 outside), Modbus gate I/O {}",
                d.io_addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            DeviceRole::Cabinet => "0xA0 UHF reader, antennas 1-4 are the shelves".to_owned(),
            DeviceRole::Desk => "barcode scanner".to_owned(),
        };
        println!(
            "    {:<10} {:<8} {:<18} {hardware}",
            d.id,
            d.role.kind(),
            place
        );
    }
    let control = dir.join("control");
    let example = site.seeded().carriers.first().map_or_else(
        || "3474257BF40000000000162E".to_owned(),
        |c| c.epc.to_string(),
    );
    println!(
        "  Control sockets in {}/ take JSON lines (INTERFACES.md), e.g. walk a tag past gate-east:",
        control.display()
    );
    println!(
        "    echo '{{\"op\":\"field\",\"antenna\":1,\"tags\":[\"{example}\"]}}' | nc -UN {}",
        control.join("gate-east-uhf.sock").display()
    );
    println!(
        "    echo '{{\"op\":\"scan\",\"text\":\"{}\"}}' | nc -UN {}",
        site.seeded()
            .carriers
            .first()
            .map_or("CU2024-0017X", |c| c.label.as_str()),
        control.join("desk-1-scanner.sock").display()
    );
    let seeded = site.seeded();
    println!(
        "  Seeded: {} zones (TS/S/C/public), {} people, {} carriers with GIAI-96 tags and CU labels.\n",
        crate::site::ZONES.len(),
        seeded.people.len(),
        seeded.carriers.len()
    );
}

// ---------------------------------------------------------------------------------------------
// What the printers share

/// The scenario's clock of the day, for the `[09:14]` stamps.
struct DayClock {
    started: Instant,
    minute: Mutex<Option<u32>>,
}

impl DayClock {
    fn new() -> DayClock {
        DayClock {
            started: Instant::now(),
            minute: Mutex::new(None),
        }
    }

    fn set(&self, minute: u32) {
        *self.minute.lock().unwrap_or_else(PoisonError::into_inner) = Some(minute);
    }

    /// `[HH:MM | hh:mm:ss UTC]`: the scenario's day (or `+MM:SS` since start without a
    /// scenario), then the wall clock, which is what the server stamps its rows with: the
    /// pages show the latter, so a line can be matched to a row.
    fn stamp(&self) -> String {
        let day = match *self.minute.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(m) => format!("{:02}:{:02}", m / 60 % 24, m % 60),
            None => {
                let s = self.started.elapsed().as_secs();
                format!("+{:02}:{:02}", s / 60, s % 60)
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("[{day} | {}]", wall_clock(now))
    }
}

/// `hh:mm:ss UTC` of a Unix time in seconds.
fn wall_clock(unix_secs: u64) -> String {
    let s = unix_secs % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// What happened to an alarm's coil.
#[derive(Debug, Clone, Copy)]
enum CoilOutcome {
    Written(Duration),
    AlreadyOn,
    NotWritten,
}

#[derive(Default)]
struct CoilInner {
    /// The alert each exit event raised, per gate.
    event_alert: HashMap<(String, u64, u64), String>,
    /// The coil outcome per alert id.
    by_alert: HashMap<String, CoilOutcome>,
    /// The last coil outcome per gate, for alarms decided without the server's alert id (by
    /// the cached policy when the server's verdict came too late).
    by_gate: HashMap<String, (Instant, CoilOutcome)>,
}

/// Gate reports joined to the alerts they belong to.
#[derive(Default)]
struct CoilLog {
    inner: Mutex<CoilInner>,
    changed: Notify,
}

impl CoilLog {
    /// Changes the log and wakes whoever waits for an outcome.
    fn update(&self, f: impl FnOnce(&mut CoilInner)) {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_waiters();
    }

    /// Waits up to [`COIL_WAIT`] for the coil outcome of `alert`; then takes the gate's last
    /// one if it is recent.
    async fn outcome(&self, alert: &str, gate: Option<&str>) -> Option<CoilOutcome> {
        let deadline = tokio::time::Instant::now() + COIL_WAIT;
        loop {
            // Registered before the look, so an update between the two is not missed.
            let notified = self.changed.notified();
            let found = self
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_alert
                .get(alert)
                .copied();
            if found.is_some() {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                return gate
                    .and_then(|g| inner.by_gate.get(g))
                    .filter(|(at, _)| at.elapsed() < COIL_WAIT * 3)
                    .map(|(_, o)| *o);
            }
        }
    }
}

struct Shared {
    clock: DayClock,
    seeded: Seeded,
    coils: CoilLog,
}

impl Shared {
    fn say(&self, text: impl std::fmt::Display) {
        println!("{} {text}", self.clock.stamp());
    }

    fn carrier_text(&self, epc: &Epc) -> String {
        match self.seeded.carrier_by_epc(epc) {
            Some(c) => c.control_no.clone(),
            None => match self.seeded.person_by_badge(epc) {
                Some(p) => format!("badge of {}", p.name),
                None => epc.to_string(),
            },
        }
    }
}

fn level_text(code: &str) -> String {
    match Level::from_code(code) {
        Some(l) => format!("{}/{}", l.chinese(), l.code()),
        None => code.to_owned(),
    }
}

fn category_text(c: Category) -> &'static str {
    match c {
        Category::Core => "核心",
        Category::Important => "重要",
        Category::General => "一般",
    }
}

/// The tags a person carries through a gate (the carriers' and their badge), and the
/// carriers' control numbers.
fn carried<'a>(p: &SeedPerson, carriers: &[&'a SeedCarrier]) -> (Vec<Epc>, Vec<&'a str>) {
    let mut tags: Vec<Epc> = carriers.iter().map(|c| c.epc).collect();
    tags.extend(p.badge);
    let names = carriers.iter().map(|c| c.control_no.as_str()).collect();
    (tags, names)
}

fn carrier_label(c: &SeedCarrier) -> String {
    format!(
        "{} ({}/{})",
        c.control_no,
        c.level.chinese(),
        c.level.code()
    )
}

// ---------------------------------------------------------------------------------------------
// Printers

/// Prints every alert the server raises or changes.
async fn print_alerts(mut rx: broadcast::Receiver<i64>, state: AppState, shared: Arc<Shared>) {
    let mut seen: HashMap<i64, (&'static str, i64)> = HashMap::new();
    loop {
        let id = match rx.recv().await {
            Ok(id) => id,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                shared.say(format!(
                    "({n} alert changes came too fast to print; the guard console has them all)"
                ));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let view = match state.store().query(move |tx| tx.alert(id)).await {
            Ok(Some(view)) => view,
            Ok(None) => continue,
            Err(e) => {
                shared.say(format!("(cannot read alert {id}: {e})"));
                continue;
            }
        };
        let now = (view.state.as_str(), view.occurrences);
        match seen.insert(id, now) {
            None => print_new_alert(&view, &shared).await,
            Some(before) if before.0 != now.0 => shared.say(format!(
                "alert #{id} {} {}{}",
                view.kind.as_str(),
                now.0,
                view.acknowledged_by
                    .as_ref()
                    .or(view.resolved_by.as_ref())
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default()
            )),
            Some(before) if before.1 != now.1 => shared.say(format!(
                "alert #{id} {} again (occurrence {})",
                view.kind.as_str(),
                now.1
            )),
            Some(_) => {}
        }
    }
}

async fn print_new_alert(view: &AlertView, shared: &Shared) {
    let mut line = format!("ALERT {}", view.kind.as_str());
    if let Some(no) = &view.carrier_control_no {
        line.push_str(&format!(" {no}"));
        if let Some(level) = &view.carrier_level {
            line.push_str(&format!(" ({})", level_text(level)));
        }
    }
    if let Some(device) = &view.device_id {
        line.push_str(&format!(" at {device}"));
    }
    if let Some(person) = view
        .person_id
        .as_deref()
        .and_then(|p| shared.seeded.person(p))
    {
        line.push_str(&format!(" — {}", person.name));
    }
    let detail = &view.detail;
    let reason = match detail["reason"].as_str() {
        Some("unauthorized_removal") => Some("no sign-out".to_owned()),
        Some(r) => Some(r.replace('_', " ")),
        None => None,
    };
    if let Some(reason) = reason {
        line.push_str(&format!(" ({reason})"));
    }
    if let (Some(reader), Some(fault)) = (detail["reader"].as_str(), detail.get("fault")) {
        if view.kind.as_str() == "reader_fault" {
            line.push_str(&format!(" (reader {reader}: {})", compact(fault)));
        }
    }
    if matches!(
        view.kind.as_str(),
        "unauthorized_removal" | "clearance_violation"
    ) {
        match shared
            .coils
            .outcome(&view.id, view.device_id.as_deref())
            .await
        {
            Some(CoilOutcome::Written(d)) => line.push_str(&format!(
                ", alarm coil on {} ms after the crossing",
                d.as_millis()
            )),
            Some(CoilOutcome::AlreadyOn) => line.push_str(", alarm coil already on"),
            Some(CoilOutcome::NotWritten) => line.push_str(", ALARM COIL NOT WRITTEN"),
            None => {}
        }
    }
    shared.say(line);
}

/// A JSON value in a few words.
fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Follows one gate's decisions: prints the exits it lets through, and joins alarms to alerts.
async fn watch_gate(
    gate: String,
    mut reports: broadcast::Receiver<GateReport>,
    shared: Arc<Shared>,
) {
    loop {
        let report = match reports.recv().await {
            Ok(r) => r,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match report {
            GateReport::Decided(d) => {
                let carriers: Vec<String> = d
                    .tags
                    .iter()
                    .filter(|t| shared.seeded.person_by_badge(t).is_none())
                    .map(|t| shared.carrier_text(t))
                    .collect();
                let by = match d.by {
                    DecidedBy::Server => "server verdict",
                    DecidedBy::Policy => "cached signed policy",
                    DecidedBy::LateServer => "late server verdict",
                };
                match (&d.alarm, &d.alert_id, d.event) {
                    (None, _, _) => shared.say(format!(
                        "{gate}: exit with {} allowed ({by} in {} ms), no alarm",
                        carriers.join(", "),
                        d.elapsed.as_millis()
                    )),
                    (Some(_), Some(alert), Some(event)) => {
                        let key = (gate.clone(), event.epoch, event.seq);
                        let alert = alert.clone();
                        shared.coils.update(|i| {
                            i.event_alert.insert(key, alert);
                        });
                    }
                    (Some(reason), _, _) => shared.say(format!(
                        "{gate}: exit with {} ALARM ({reason:?}, {by})",
                        carriers.join(", ")
                    )),
                }
            }
            GateReport::CoilWritten {
                event: Some(event),
                passage_to_coil,
                ..
            } => record_coil(&shared, &gate, event, CoilOutcome::Written(passage_to_coil)),
            GateReport::CoilAlreadyOn { event: Some(event) } => {
                record_coil(&shared, &gate, event, CoilOutcome::AlreadyOn);
            }
            GateReport::CoilNotWritten { event: Some(event) } => {
                record_coil(&shared, &gate, event, CoilOutcome::NotWritten);
            }
            _ => {}
        }
    }
}

fn record_coil(
    shared: &Shared,
    gate: &str,
    event: custos_daemon::outbox::EventId,
    outcome: CoilOutcome,
) {
    shared.coils.update(|i| {
        i.by_gate.insert(gate.to_owned(), (Instant::now(), outcome));
        if let Some(alert) = i
            .event_alert
            .remove(&(gate.to_owned(), event.epoch, event.seq))
        {
            i.by_alert.insert(alert, outcome);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The scenario

/// Who plays which part on one day.
struct Cast {
    /// Borrows `a` and takes it out through the first gate, with their badge.
    p1: SeedPerson,
    /// Carries `x`, which nobody signed out, out through the first gate.
    p3: SeedPerson,
    /// Fetches `a2` for `p5` and carries it out with their own badge.
    p4: SeedPerson,
    /// Borrows `a2`.
    p5: SeedPerson,
    /// Borrows the TS carrier `t` (two approvals), returns it to the wrong cabinet.
    p2: SeedPerson,
    /// Takes `y` from its cabinet without a sign-out.
    p6: SeedPerson,
    /// Borrows `z` and keeps it past its due time.
    p7: SeedPerson,
    /// Whose training has lapsed: an issue to them is refused.
    lapsed: Option<SeedPerson>,
    a: SeedCarrier,
    a2: SeedCarrier,
    x: SeedCarrier,
    t: SeedCarrier,
    y: SeedCarrier,
    z: SeedCarrier,
    r: Option<SeedCarrier>,
}

struct Scenario<'a> {
    site: &'a Site,
    shared: &'a Shared,
    speed: f64,
    custodian: ApiClient,
    officer1: ApiClient,
    officer2: ApiClient,
    guard: ApiClient,
    used: HashSet<String>,
    day: u32,
    minute: u32,
}

/// Minute of the day.
const fn hm(h: u32, m: u32) -> u32 {
    h * 60 + m
}

impl<'a> Scenario<'a> {
    async fn new(site: &'a Site, shared: &'a Shared, speed: f64) -> anyhow::Result<Scenario<'a>> {
        let api = site.api();
        Ok(Scenario {
            site,
            shared,
            speed,
            custodian: site.session(&api, "custodian").await?,
            officer1: site.session(&api, "officer1").await?,
            officer2: site.session(&api, "officer2").await?,
            guard: site.session(&api, "guard").await?,
            used: HashSet::new(),
            day: 0,
            minute: hm(8, 0),
        })
    }

    /// Plays days until the seed runs out of carriers for another one.
    async fn play(mut self) -> anyhow::Result<()> {
        loop {
            let Some(cast) = self.cast() else {
                self.say(
                    "not enough unused carriers or people for another day: the scenario ends here",
                );
                self.say("the site stays up for manual play; Ctrl-C stops it");
                return Ok(());
            };
            self.day += 1;
            self.play_day(&cast).await?;
        }
    }

    fn say(&self, text: impl std::fmt::Display) {
        self.shared.say(text);
    }

    /// Waits until minute `minute` of the scenario's day (at least `min_real`, and at least
    /// [`MIN_STEP`]) and sets the clock.
    async fn at_least(&mut self, minute: u32, min_real: Duration) {
        let minutes = minute.saturating_sub(self.minute);
        let real = Duration::from_secs_f64(f64::from(minutes) * SECS_PER_MINUTE / self.speed)
            .max(min_real)
            .max(MIN_STEP);
        tokio::time::sleep(real).await;
        self.minute = minute;
        self.shared.clock.set(minute);
    }

    async fn at(&mut self, minute: u32) {
        self.at_least(minute, MIN_STEP).await;
    }

    /// Picks today's people and carriers, none used on an earlier day.
    fn cast(&mut self) -> Option<Cast> {
        let seeded = &self.shared.seeded;
        let day = self.day as usize;
        let mut chosen: Vec<String> = Vec::new();
        let mut person = |want: &dyn Fn(&SeedPerson) -> bool| -> Option<SeedPerson> {
            let fits: Vec<&SeedPerson> = seeded
                .people
                .iter()
                .filter(|p| want(p) && !chosen.contains(&p.id))
                .collect();
            let p = (*fits.get(day % fits.len().max(1))?).clone();
            chosen.push(p.id.clone());
            Some(p)
        };
        let badge_borrower =
            |level: Level| move |p: &SeedPerson| p.badge.is_some() && p.may_borrow(level);
        let p2 = person(&|p| p.category == Category::Core && p.may_borrow(Level::TopSecret))?;
        let p1 = person(&badge_borrower(Level::Secret))?;
        let p5 = person(&badge_borrower(Level::Secret))?;
        let p7 = person(&|p| p.may_borrow(Level::Confidential))?;
        let lapsed = person(&|p| p.training_expired);
        let p3 = person(&|p| p.badge.is_some())?;
        let p4 = person(&|p| p.badge.is_some())?;
        let p6 = person(&|p| p.badge.is_some())?;

        let used = &mut self.used;
        let mut carrier = |want: &dyn Fn(&SeedCarrier) -> bool| -> Option<SeedCarrier> {
            let c = seeded
                .carriers
                .iter()
                .find(|c| want(c) && !used.contains(&c.id))?
                .clone();
            used.insert(c.id.clone());
            Some(c)
        };
        let homed = |level: Level| move |c: &SeedCarrier| c.home.is_some() && c.level == level;
        let t = carrier(&homed(Level::TopSecret))?;
        let a = carrier(&homed(Level::Secret))?;
        let a2 = carrier(&homed(Level::Secret))?;
        let y = carrier(&homed(Level::Confidential))?;
        let z = carrier(&homed(Level::Confidential))?;
        let x = carrier(&|c| c.home.is_none())?;
        let r = lapsed.as_ref().and_then(|_| carrier(&homed(Level::Secret)));
        Some(Cast {
            p1,
            p3,
            p4,
            p5,
            p2,
            p6,
            p7,
            lapsed,
            a,
            a2,
            x,
            t,
            y,
            z,
            r,
        })
    }

    fn gate(&self, n: usize) -> anyhow::Result<&'a SiteDevice> {
        let gates: Vec<&SiteDevice> = self.site.with_role(DeviceRole::Gate).collect();
        anyhow::ensure!(!gates.is_empty(), "the scenario needs a gate");
        Ok(gates[n.min(gates.len() - 1)])
    }

    fn device(&self, id: &str) -> anyhow::Result<&'a SiteDevice> {
        self.site
            .device(id)
            .with_context(|| format!("no device {id}"))
    }

    fn home(&self, c: &SeedCarrier) -> anyhow::Result<&'a SiteDevice> {
        let home = c
            .home
            .as_deref()
            .context("carrier without a home cabinet")?;
        self.device(home)
    }

    /// A cabinet other than `c`'s home, if the site has one.
    fn other_cabinet(&self, c: &SeedCarrier) -> Option<&'a SiteDevice> {
        self.site
            .with_role(DeviceRole::Cabinet)
            .find(|d| Some(d.id.as_str()) != c.home.as_deref())
    }

    fn desk(&self) -> Option<&'a SiteDevice> {
        self.site.with_role(DeviceRole::Desk).next()
    }

    fn who(p: &SeedPerson) -> String {
        format!("{} ({})", p.name, category_text(p.category))
    }

    /// The custodian requests a sign-out; returns its id.
    async fn request(
        &self,
        c: &SeedCarrier,
        borrower: &SeedPerson,
        purpose: &str,
        due_in: Duration,
        may_leave: bool,
    ) -> anyhow::Result<String> {
        let due_secs = i64::try_from(due_in.as_secs()).unwrap_or(i64::MAX).max(1);
        let due = self.site.now().plus_secs(due_secs);
        let answer = self
            .custodian
            .post(
                "/api/v1/signouts",
                &json!({
                    "carrier_ids": [c.id],
                    "borrower": borrower.id,
                    "purpose": purpose,
                    "due_at": due.to_string(),
                    "may_leave": may_leave,
                }),
            )
            .await?;
        let id = answer["id"]
            .as_str()
            .context("sign-out answer without id")?
            .to_owned();
        self.say(format!(
            "custodian requests sign-out #{id}: {} for {}, {}, {}",
            carrier_label(c),
            Self::who(borrower),
            purpose,
            if may_leave {
                "may leave the secure area"
            } else {
                "stays inside"
            }
        ));
        Ok(id)
    }

    async fn approve(&self, officer: &ApiClient, name: &str, id: &str) -> anyhow::Result<()> {
        let answer = officer
            .post(&format!("/api/v1/signouts/{id}/approve"), &json!({}))
            .await?;
        let state = answer["state"].as_str().unwrap_or("?");
        let needed = answer["approvals_needed"].as_u64().unwrap_or(0);
        if needed > 0 {
            self.say(format!(
                "{name} approves sign-out #{id}: still {state}, TS needs {needed} more approver"
            ));
        } else {
            self.say(format!("{name} approves sign-out #{id}: {state}"));
        }
        Ok(())
    }

    async fn issue(&self, id: &str, c: &SeedCarrier) -> anyhow::Result<()> {
        if let Some(desk) = self.desk() {
            desk.scan(&c.label).await?;
            self.say(format!(
                "custodian scans the label {} at {} and issues sign-out #{id}",
                c.label, desk.id
            ));
        }
        let answer = self
            .custodian
            .post(&format!("/api/v1/signouts/{id}/issue"), &json!({}))
            .await?;
        self.say(format!(
            "sign-out #{id} is {}",
            answer["state"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    async fn take(&self, p: &SeedPerson, c: &SeedCarrier) -> anyhow::Result<()> {
        let cabinet = self.home(c)?;
        cabinet.unshelve(&c.epc).await?;
        self.say(format!(
            "{} takes {} from {}",
            p.name, c.control_no, cabinet.id
        ));
        Ok(())
    }

    /// A missing carrier found by hand (`POST /carriers/{id}/found`, as the custodian): it was
    /// missing since its unexplained removal (or, if the sweep has not judged the removal yet,
    /// the custodian reports it missing by hand first).
    async fn found(&self, c: &SeedCarrier) -> anyhow::Result<()> {
        let path = format!("/api/v1/carriers/{}", c.id);
        let now = self.custodian.get(&path).await?;
        if now["state"] != "missing" {
            self.custodian
                .post(
                    &format!("{path}/missing"),
                    &json!({"note": "not on its shelf at the count"}),
                )
                .await?;
            self.say(format!(
                "custodian reports {} missing by hand",
                carrier_label(c)
            ));
        }
        let found = self
            .custodian
            .post(
                &format!("{path}/found"),
                &json!({"note": "found in the reading room, seal intact"}),
            )
            .await?;
        self.say(format!(
            "custodian finds {} in the reading room: {} again, its incident record closed",
            carrier_label(c),
            found["state"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    async fn put(&self, p: &str, c: &SeedCarrier, cabinet: &SiteDevice) -> anyhow::Result<()> {
        cabinet.shelve(c.epc).await?;
        self.say(format!("{p} puts {} into {}", c.control_no, cabinet.id));
        Ok(())
    }

    async fn walk(
        &self,
        p: &SeedPerson,
        gate: &SiteDevice,
        direction: Direction,
        carriers: &[&SeedCarrier],
        note: &str,
    ) -> anyhow::Result<()> {
        let (tags, names) = carried(p, carriers);
        let way = match direction {
            Direction::Out => "out through",
            Direction::In => "back in through",
        };
        self.say(format!(
            "{} walks {way} {} with {}{}{note}",
            p.name,
            gate.id,
            names.join(", "),
            if p.badge.is_some() {
                " and their badge"
            } else {
                ""
            }
        ));
        gate.pass(direction, &tags, self.dwell()).await?;
        Ok(())
    }

    /// How long someone stands in each antenna's field at this speed.
    fn dwell(&self) -> Duration {
        Duration::from_secs_f64((1.0 / self.speed).min(1.0)).max(MIN_DWELL)
    }

    /// Someone steps into a gate's outer field with `carriers`, hears the alarm and turns back.
    async fn turn_back(
        &self,
        p: &SeedPerson,
        gate: &SiteDevice,
        carriers: &[&SeedCarrier],
        note: &str,
    ) -> anyhow::Result<()> {
        let (tags, names) = carried(p, carriers);
        self.say(format!(
            "{} steps into the outer field of {} with {}{note}, hears the alarm and turns back",
            p.name,
            gate.id,
            names.join(", "),
        ));
        gate.turn_back(Direction::Out, &tags, self.dwell()).await?;
        Ok(())
    }

    /// Prints a carrier's gate movements as the custodian's history shows them, once it shows
    /// the turning back (the daemon reports it when the carrier has left the field and its
    /// hold-off has passed), or after [`SILENCE_WAIT`].
    async fn show_movements(&self, c: &SeedCarrier) -> anyhow::Result<()> {
        let path = format!("/api/v1/carriers/{}/history", c.id);
        let waited = Instant::now();
        let history = loop {
            let history = self.custodian.get(&path).await?;
            let back = history
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["type"] == "turned_back"));
            if back || waited.elapsed() > SILENCE_WAIT {
                break history;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let moves: Vec<String> = history
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let gate = item["device_id"].as_str().unwrap_or("?");
                match item["type"].as_str()? {
                    "passage" => Some(format!(
                        "passage {} at {gate}",
                        item["direction"].as_str().unwrap_or("?")
                    )),
                    "turned_back" => Some(format!("turned back at {gate} (did not pass)")),
                    _ => None,
                }
            })
            .collect();
        self.say(format!(
            "the custodian looks up {}: {}",
            c.control_no,
            if moves.is_empty() {
                "no gate movements yet".to_owned()
            } else {
                moves.join(", then ")
            }
        ));
        Ok(())
    }

    async fn open_alerts(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let list = self.guard.get(&format!("/api/v1/alerts?{query}")).await?;
        Ok(list.as_array().cloned().unwrap_or_default())
    }

    async fn play_day(&mut self, cast: &Cast) -> anyhow::Result<()> {
        let east = self.gate(0)?;
        let west = self.gate(1)?;
        let long = Duration::from_secs(24 * 3600);
        self.minute = hm(8, 30);
        self.shared.clock.set(self.minute);
        println!("\n── Day {} ──", self.day);
        self.say("the registry opens");

        // An authorised exit.
        self.at(hm(8, 40)).await;
        let s1 = self
            .request(&cast.a, &cast.p1, "项目评审会 review meeting", long, true)
            .await?;
        self.at(hm(8, 42)).await;
        self.approve(&self.officer1, "officer1", &s1).await?;
        self.at(hm(8, 45)).await;
        self.issue(&s1, &cast.a).await?;
        self.at(hm(8, 52)).await;
        self.take(&cast.p1, &cast.a).await?;
        self.at(hm(8, 55)).await;
        self.walk(&cast.p1, east, Direction::Out, &[&cast.a], "")
            .await?;

        // A carrier nobody signed out.
        self.at(hm(9, 14)).await;
        self.walk(
            &cast.p3,
            east,
            Direction::Out,
            &[&cast.x],
            " (nobody signed it out)",
        )
        .await?;
        self.at(hm(9, 20)).await;
        self.walk(
            &cast.p3,
            east,
            Direction::In,
            &[&cast.x],
            ", sent back by the guard",
        )
        .await?;

        // Someone else's carrier, someone else's badge.
        self.at(hm(9, 35)).await;
        let s2 = self
            .request(&cast.a2, &cast.p5, "外出会议 off-site meeting", long, true)
            .await?;
        self.at(hm(9, 37)).await;
        self.approve(&self.officer2, "officer2", &s2).await?;
        self.at(hm(9, 38)).await;
        self.issue(&s2, &cast.a2).await?;
        self.at(hm(9, 40)).await;
        self.take(&cast.p4, &cast.a2).await?;
        self.at(hm(9, 44)).await;
        let note = format!(" (signed out to {}, not to them)", cast.p5.name);
        self.turn_back(&cast.p4, west, &[&cast.a2], &note).await?;
        self.at(hm(9, 50)).await;
        self.show_movements(&cast.a2).await?;
        self.at(hm(9, 55)).await;
        let home = self.home(&cast.a2)?;
        self.put(&cast.p4.name, &cast.a2, home).await?;

        // Top Secret: two approvers, stays inside.
        self.at(hm(10, 5)).await;
        let s3 = self
            .request(&cast.t, &cast.p2, "型号总体设计 design work", long, false)
            .await?;
        self.at(hm(10, 7)).await;
        self.approve(&self.officer1, "officer1", &s3).await?;
        self.at(hm(10, 9)).await;
        self.approve(&self.officer2, "officer2", &s3).await?;
        self.at(hm(10, 12)).await;
        self.issue(&s3, &cast.t).await?;
        self.at(hm(10, 15)).await;
        self.take(&cast.p2, &cast.t).await?;

        // The rules refuse an issue.
        if let (Some(lapsed), Some(r)) = (&cast.lapsed, &cast.r) {
            self.at(hm(10, 30)).await;
            let s4 = self
                .request(r, lapsed, "资料查阅 reading", long, false)
                .await?;
            self.at(hm(10, 32)).await;
            self.approve(&self.officer1, "officer1", &s4).await?;
            self.at(hm(10, 34)).await;
            match self
                .custodian
                .post(&format!("/api/v1/signouts/{s4}/issue"), &json!({}))
                .await
            {
                Err(HttpError::Status {
                    status: 422, body, ..
                }) => {
                    self.say(format!(
                        "custodian tries to issue sign-out #{s4}: refused ({}): {}",
                        body["error"].as_str().unwrap_or("?"),
                        body["message"].as_str().unwrap_or("")
                    ));
                    self.custodian
                        .post(&format!("/api/v1/signouts/{s4}/cancel"), &json!({}))
                        .await?;
                    self.say(format!("custodian cancels sign-out #{s4}"));
                }
                Ok(answer) => self.say(format!(
                    "sign-out #{s4} was issued ({answer}); the rules should have refused it"
                )),
                Err(e) => return Err(e.into()),
            }
        }

        // A carrier goes missing from its cabinet.
        self.at(hm(10, 45)).await;
        let cabinet = self.home(&cast.y)?;
        cabinet.unshelve(&cast.y.epc).await?;
        self.say(format!(
            "{} takes {} from {} without a sign-out, and it does not come back",
            cast.p6.name,
            carrier_label(&cast.y),
            cabinet.id
        ));

        // An overdue loan.
        self.at(hm(11, 30)).await;
        let due = scale(Duration::from_secs(90), self.speed).max(Duration::from_secs(8));
        let s5 = self
            .request(&cast.z, &cast.p7, "短期借阅 short loan", due, false)
            .await?;
        self.say(format!(
            "(due in {} s of real time: it will be overdue)",
            due.as_secs()
        ));
        self.at(hm(11, 32)).await;
        self.approve(&self.officer2, "officer2", &s5).await?;
        self.at(hm(11, 34)).await;
        self.issue(&s5, &cast.z).await?;
        self.at(hm(11, 40)).await;
        self.take(&cast.p7, &cast.z).await?;

        // Approvals: a rejection, a copy, a destruction (issue #10).
        self.at(hm(12, 0)).await;
        self.approvals_steps(cast).await?;

        // A return into the wrong cabinet, then home.
        if let Some(wrong) = self.other_cabinet(&cast.t) {
            self.at(hm(13, 30)).await;
            self.put(&cast.p2.name, &cast.t, wrong).await?;
            self.at_least(hm(13, 50), SHELF_SETTLE).await;
            wrong.unshelve(&cast.t.epc).await?;
            let home = self.home(&cast.t)?;
            self.put("the custodian", &cast.t, home).await?;
            self.at_least(hm(13, 55), SHELF_SETTLE).await;
            let signout = self
                .custodian
                .get(&format!("/api/v1/signouts/{s3}"))
                .await?;
            self.say(format!(
                "sign-out #{s3} is {} (its carrier is back in its home cabinet)",
                signout["state"].as_str().unwrap_or("?")
            ));
        }

        // A gate reader unplugged and plugged back in.
        self.at(hm(14, 10)).await;
        west.reader_op(&ControlOp::Silence { on: true }).await?;
        self.say(format!(
            "someone unplugs the reader of {} (it stops answering)",
            west.id
        ));
        self.at_least(hm(14, 25), Duration::from_secs(3)).await;
        west.reader_op(&ControlOp::Silence { on: false }).await?;
        self.say(format!("the reader of {} is plugged back in", west.id));

        // The desk's host switched off and on.
        if let Some(desk) = self.desk() {
            self.at(hm(15, 0)).await;
            let before = self.silent_alerts(&desk.id).await?;
            desk.stop_daemon().await;
            self.say(format!(
                "the PC of {} is switched off (its daemon stops)",
                desk.id
            ));
            let waited = Instant::now();
            while self.silent_alerts(&desk.id).await? == before {
                if waited.elapsed() > SILENCE_WAIT {
                    self.say("(the server has not noticed the silence yet)");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            self.at(hm(15, 20)).await;
            desk.start_daemon().await?;
            self.say(format!("the PC of {} is switched back on", desk.id));
        }

        // The carrier gone from its cabinet this morning is found, and put back.
        self.at(hm(15, 40)).await;
        self.found(&cast.y).await?;
        self.at_least(hm(15, 45), SHELF_SETTLE).await;
        let cabinet = self.home(&cast.y)?;
        self.put("the custodian", &cast.y, cabinet).await?;
        // Carriers counted and moved (issue #11): a stocktake, a transfer, a dispatch.
        self.at(hm(15, 50)).await;
        self.stocktake(&cast.y).await?;
        self.at(hm(15, 55)).await;
        self.transfer().await?;
        self.at(hm(16, 5)).await;
        self.dispatch(&cast.p3, west).await?;

        // The authorised borrower comes back and returns the carrier.
        self.at(hm(16, 30)).await;
        self.walk(&cast.p1, east, Direction::In, &[&cast.a], "")
            .await?;
        self.at(hm(16, 35)).await;
        let home = self.home(&cast.a)?;
        self.put(&cast.p1.name, &cast.a, home).await?;

        // The register of people kept current: a renewed training, and a departure.
        self.at(hm(16, 45)).await;
        self.renew_training(&cast.p7).await?;
        self.at(hm(16, 50)).await;
        self.departure().await?;

        self.at_least(hm(17, 30), SHELF_SETTLE).await;
        let open = self.open_alerts("state=open").await?;
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for a in &open {
            let kind = a["kind"].as_str().unwrap_or("?").to_owned();
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
        let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        self.say(format!(
            "end of day {}: {} open alerts ({}); the guard console lists them at {}guard",
            self.day,
            open.len(),
            summary.join(", "),
            self.site.url()
        ));
        self.at(hm(17, 40)).await;
        Ok(())
    }

    /// Approves request `id` of `kind` (`copies`, `destructions`) by officer1, and officer2 too
    /// while it still needs one (TS); its state.
    async fn approve_request(&self, kind: &str, id: &str) -> anyhow::Result<String> {
        let path = format!("/api/v1/{kind}/{id}/approve");
        let mut answer = self.officer1.post(&path, &json!({})).await?;
        if answer["state"] == "requested" {
            answer = self.officer2.post(&path, &json!({})).await?;
        }
        Ok(answer["state"].as_str().unwrap_or("?").to_owned())
    }

    /// A sign-out rejected with its reason; a copy of `x` made (with its lineage); that copy
    /// destroyed before two witnesses (a security officer on the register and a colleague).
    async fn approvals_steps(&self, cast: &Cast) -> anyhow::Result<()> {
        let x = &cast.x;
        let s = self
            .request(
                x,
                &cast.p3,
                "私人用途 personal use",
                Duration::from_secs(3600),
                false,
            )
            .await?;
        let reason = "用途不符合规定 purpose not allowed";
        let answer = self
            .officer1
            .post(
                &format!("/api/v1/signouts/{s}/reject"),
                &json!({"reason": reason}),
            )
            .await?;
        self.say(format!(
            "officer1 rejects sign-out #{s}: {}, because \"{reason}\"",
            answer["state"].as_str().unwrap_or("?")
        ));

        let asked = self
            .custodian
            .post(
                "/api/v1/copies",
                &json!({"original_id": x.id, "count": 1, "purpose": "分发 distribution"}),
            )
            .await?;
        let copy_request = asked["id"].as_str().context("copy request without id")?;
        let state = self.approve_request("copies", copy_request).await?;
        let made = self
            .custodian
            .post(&format!("/api/v1/copies/{copy_request}/make"), &json!({}))
            .await?;
        let copy = made["carrier_ids"][0]
            .as_str()
            .context("no copy made")?
            .to_owned();
        let shown = self
            .custodian
            .get(&format!("/api/v1/carriers/{copy}"))
            .await?;
        self.say(format!(
            "copy request #{copy_request} {state}; custodian makes copy {} (copy no. {}) of {}, linked to its original",
            shown["control_no"].as_str().unwrap_or("?"),
            shown["copy_no"],
            carrier_label(x)
        ));

        let method = match x.kind {
            "paper" => "shred",
            "magnetic_disk" => "degauss",
            _ => "physical",
        };
        let asked = self
            .custodian
            .post(
                "/api/v1/destructions",
                &json!({"carrier_ids": [copy], "method": method, "reason": "会后销毁 destroyed after the meeting"}),
            )
            .await?;
        let destruction = asked["id"].as_str().context("destruction without id")?;
        let state = self.approve_request("destructions", destruction).await?;
        let witness = self.witness_officer().await?;
        let answer = self
            .custodian
            .post(
                &format!("/api/v1/destructions/{destruction}/record"),
                &json!({"witnesses": [witness.0, cast.p6.id], "at": self.site.now().to_string(), "count": 1}),
            )
            .await?;
        let after = self
            .custodian
            .get(&format!("/api/v1/carriers/{copy}"))
            .await?;
        self.say(format!(
            "destruction #{destruction} {state}; custodian records it ({method}), witnessed by {} and {}: request {}, the copy is {}",
            witness.1,
            cast.p6.name,
            answer["state"].as_str().unwrap_or("?"),
            after["state"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// The officer records a renewed training certificate (复训合格): five more years.
    async fn renew_training(&self, p: &SeedPerson) -> anyhow::Result<()> {
        let until = self.site.now().date().add_years(5).map(|d| d.to_string());
        let body = json!({"reason": "复训合格 training renewed", "training_valid_until": until});
        let person = self
            .officer1
            .call(
                Method::PATCH,
                &format!("/api/v1/people/{}", p.id),
                Some(&body),
            )
            .await?;
        self.say(format!(
            "officer1 records the renewed training of {}: valid until {}",
            p.name,
            person["training_valid_until"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// A security officer on the register of people, to witness a destruction: a person and
    /// an account of theirs (created by the administrator; it need never sign in). One per day.
    async fn witness_officer(&self) -> anyhow::Result<(String, String)> {
        let name = format!("保密员 王{}", self.day);
        let person = self
            .officer1
            .post(
                "/api/v1/people",
                &json!({"name": name, "department": "保密办", "category": "core"}),
            )
            .await?;
        let person = person["id"]
            .as_str()
            .context("person without id")?
            .to_owned();
        let api = self.site.api();
        let admin = self.site.logins().first().context("no admin login")?;
        let admin = api.login(&admin.username, &admin.password).await?;
        admin
            .post(
                "/api/v1/users",
                &json!({"username": format!("witness{}", self.day), "password": format!("witness password {}", self.day),
                        "roles": ["security_officer"], "person_id": person}),
            )
            .await?;
        Ok((person, name))
    }

    /// A colleague leaves the unit: start leaving → nothing held, clearance (清退) certified →
    /// departure approved with the decommissioning period (脱密期) of the category.
    async fn departure(&self) -> anyhow::Result<()> {
        let name = format!("离职人员 leaver {}", self.day);
        let body = json!({"name": name, "department": "研发部", "category": "important",
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"});
        let created = self.officer1.post("/api/v1/people", &body).await?;
        let id = created["id"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api/v1/people/{id}");
        self.officer1
            .post(&format!("{path}/leave"), &json!({}))
            .await?;
        self.officer1
            .post(&format!("{path}/clearance"), &json!({}))
            .await?;
        let gone = self
            .officer1
            .post(&format!("{path}/depart"), &json!({}))
            .await?;
        self.say(format!(
            "officer1 approves the departure of {name}: nothing held, 清退 certified; 脱密期 until {}",
            gone["decommissioning_ends_on"].as_str().unwrap_or("lifelong")
        ));
        Ok(())
    }

    /// An unused carrier of `level` with a home cabinet that is in storage now; marked used.
    async fn spare_carrier(&mut self, level: Level) -> anyhow::Result<Option<SeedCarrier>> {
        let candidates: Vec<SeedCarrier> = self
            .shared
            .seeded
            .carriers
            .iter()
            .filter(|c| c.level == level && c.home.is_some() && !self.used.contains(&c.id))
            .cloned()
            .collect();
        for c in candidates {
            self.used.insert(c.id.clone());
            let now = self
                .custodian
                .get(&format!("/api/v1/carriers/{}", c.id))
                .await?;
            if now["state"] == "in_storage" {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// The custodian counts by hand (清点) the home cabinet of `taken`, the carrier taken
    /// without a sign-out this morning: every expected carrier is typed in but that one; the
    /// count is closed and signed, and each missing carrier reported missing (unless the
    /// sweep has already done so, and then it is not expected at all).
    async fn stocktake(&self, taken: &SeedCarrier) -> anyhow::Result<()> {
        let cabinet = self.home(taken)?;
        let opened = self
            .custodian
            .post(
                "/api/v1/stocktakes",
                &json!({"scope": {"device_id": cabinet.id}}),
            )
            .await?;
        let id = opened["id"]
            .as_str()
            .context("stocktake without id")?
            .to_owned();
        let view = self
            .custodian
            .get(&format!("/api/v1/stocktakes/{id}"))
            .await?;
        // Everything on the register as at home is on the shelf, except what was taken
        // without a sign-out this morning.
        let scans: Vec<String> = view["expected_carriers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["control_no"].as_str())
            .filter(|no| *no != taken.control_no)
            .map(str::to_owned)
            .collect();
        if !scans.is_empty() {
            self.custodian
                .post(
                    &format!("/api/v1/stocktakes/{id}/scans"),
                    &json!({"tags": scans}),
                )
                .await?;
        }
        let result = self
            .custodian
            .post(&format!("/api/v1/stocktakes/{id}/close"), &json!({}))
            .await?;
        let missing: Vec<String> = result["missing"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().map(str::to_owned))
            .collect();
        self.say(format!(
            "custodian counts {} (stocktake #{id}): expected {}, seen {}, missing {}; closed and signed",
            cabinet.id,
            result["expected"],
            result["seen"],
            missing.len()
        ));
        for carrier in &missing {
            let settled = self
                .custodian
                .post(
                    &format!("/api/v1/stocktakes/{id}/resolutions"),
                    &json!({"carrier_id": carrier, "resolution": "missing",
                            "note": "not on the shelf at the count"}),
                )
                .await;
            if settled.is_ok() {
                self.say(format!(
                    "stocktake #{id}: {} reported missing (查无下落)",
                    carrier_label(taken)
                ));
            }
        }
        Ok(())
    }

    /// A transfer (移交/签收): asked for, approved, handed over by the custodian, signed for by
    /// the second custodian; only the receipt changes the owning unit.
    async fn transfer(&mut self) -> anyhow::Result<()> {
        let Some(c) = self.spare_carrier(Level::Confidential).await? else {
            self.say("(no spare carrier for a transfer today)");
            return Ok(());
        };
        let receiver = self.site.session(&self.site.api(), "custodian2").await?;
        let asked = self
            .custodian
            .post(
                "/api/v1/transfers",
                &json!({"carrier_ids": [c.id], "to_unit": "档案室 archive", "reason": "移交归档 hand-over"}),
            )
            .await?;
        let id = asked["id"]
            .as_str()
            .context("transfer without id")?
            .to_owned();
        self.officer1
            .post(&format!("/api/v1/transfers/{id}/approve"), &json!({}))
            .await?;
        self.custodian
            .post(&format!("/api/v1/transfers/{id}/handover"), &json!({}))
            .await?;
        let done = receiver
            .post(&format!("/api/v1/transfers/{id}/receive"), &json!({}))
            .await?;
        self.say(format!(
            "transfer #{id}: {} approved by officer1, handed over by custodian, signed for by custodian2 ({}); now owned by 档案室",
            carrier_label(&c),
            done["state"].as_str().unwrap_or("?")
        ));
        Ok(())
    }

    /// A dispatch (机要传递): approved, sealed and sent with the courier, who carries it out
    /// through a gate within its window (no alarm), and its delivery recorded by hand.
    async fn dispatch(&mut self, courier: &SeedPerson, gate: &SiteDevice) -> anyhow::Result<()> {
        let Some(c) = self.spare_carrier(Level::Secret).await? else {
            self.say("(no spare carrier for a dispatch today)");
            return Ok(());
        };
        let window = self.site.now().plus_secs(2 * 3600);
        let asked = self
            .custodian
            .post(
                "/api/v1/dispatches",
                &json!({"carrier_ids": [c.id], "destination": "上级机关 head office",
                        "courier": courier.name, "sealed_by": "custodian",
                        "window_until": window.to_string()}),
            )
            .await?;
        let id = asked["id"]
            .as_str()
            .context("dispatch without id")?
            .to_owned();
        self.officer2
            .post(&format!("/api/v1/dispatches/{id}/approve"), &json!({}))
            .await?;
        self.custodian
            .post(&format!("/api/v1/dispatches/{id}/send"), &json!({}))
            .await?;
        self.say(format!(
            "dispatch #{id}: {} sealed and sent with courier {} to 上级机关, window until {window}",
            carrier_label(&c),
            courier.name
        ));
        self.walk(
            courier,
            gate,
            Direction::Out,
            &[&c],
            " (dispatched: within its window)",
        )
        .await?;
        self.custodian
            .post(
                &format!("/api/v1/dispatches/{id}/delivered"),
                &json!({"received_by": "上级机关 收发室 registry"}),
            )
            .await?;
        self.say(format!(
            "dispatch #{id}: delivery recorded (上级机关 收发室)"
        ));
        Ok(())
    }

    /// The `reader_silent` alerts of a device, with their occurrence counts.
    async fn silent_alerts(&self, device: &str) -> anyhow::Result<Vec<(String, i64)>> {
        let list = self.open_alerts("kind=reader_silent").await?;
        Ok(list
            .iter()
            .filter(|a| a["device_id"].as_str() == Some(device))
            .map(|a| {
                (
                    a["id"].as_str().unwrap_or_default().to_owned(),
                    a["occurrences"].as_i64().unwrap_or_default(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_is_utc_time_of_day() {
        // 2026-12-07T14:02:31Z
        assert_eq!(wall_clock(1_796_652_151), "14:02:31 UTC");
        assert_eq!(wall_clock(0), "00:00:00 UTC");
    }
}
