//! The gate's decision on an exit: ask the server with a short deadline, fall back to the signed
//! policy, fail secure, and drive the alarm.
//!
//! # Getting the server's verdict in time
//!
//! The smoother's final passage waits for the tags to leave the field, far too late for an
//! alarm at the door. So the pipeline (`app`) stores each early
//! [`Crossing`](crate::smoothing::Crossing) notice at once as a *provisional*
//! [`EventBody::Passage`] (sightings so far, `local_verdict: None`); the shipper wakes on it and
//! the server's batch ack carries the verdict for its seq, typically within milliseconds. The
//! final passage is not stored again (the server judges what the gate decided on; badges read
//! later are not reported), except for carriers no notice announced (photo-eyes, when a beam
//! sequence ends between two polls), which are stored as one more passage and decided like an
//! exit. Carriers that went back after their notice get a [`EventBody::TurnedBack`] naming the
//! provisional event; the decision made on the exit stands (whoever turned back at the alarm
//! still tried). Inward crossings are stored the same way but not decided here: the server
//! judges them and sends `SoundAlarm` if needed.
//!
//! # Decision and failure modes
//!
//! [`GateCore`] is pure (a monotonic [`Instant`] for deadlines, wall-clock ms for the policy).
//! An outward exit is decided by the server's verdict if it arrives within `verdict_deadline`
//! of the notice (`uplink.verdict_deadline_ms`, default 300 ms); otherwise, at the deadline, by
//! the cached signed policy ([`GatePolicy::decide`]), which alarms on every carrier when there
//! is no policy, or it has expired or was issued in the device's future (fail secure). An exit
//! whose event the outbox refused can get no verdict and is decided by the policy at once. Only
//! answers verified with the pinned server key count; others are ignored (counted in
//! [`GateMetrics::untrusted_answers`]) and the policy decides.
//!
//! The server is *known down* after a failed upload or heartbeat, an unauthenticated answer, or
//! a deadline passed without a verdict, until the next authenticated ack. Meanwhile exits do not
//! wait out a deadline no verdict will meet: the policy decides at once, so the fallback's
//! passage-to-coil time is the coil write alone. Every exit stays tracked for
//! [`LATE_VERDICT_WINDOW`]: a late server verdict never re-actuates a passage the gate has
//! decided. A late alarm for an exit the policy let go is logged and counted
//! ([`GateMetrics::late_alarms`]), not sounded: the person left seconds ago, an alarm and a
//! locked door then only confuse whoever comes next, and the server has raised its alert for
//! the guards anyway. A late "allowed" never silences an alarm the policy raised (the guard
//! does, through `SilenceAlarm`), and a `SoundAlarm` directive naming the alert of such a late
//! verdict is not obeyed either (it is the same decision, ordered again).
//!
//! A policy decision is logged (`decided_by=policy`, version, reason), counted, and recorded in
//! the stored passage as its `local_verdict` (`Outbox::record_local_verdict`) unless the server
//! acknowledged the passage already; a passage the server stored without it (its upload was
//! in flight when the deadline passed) is re-delivered with it, even past that upload's ack
//! (see the outbox's "Local verdicts"), which the server accepts (it differs only by the local
//! verdict). An exit the server decided in time gets no local verdict. The server stores
//! what the gate did, sends no `SoundAlarm` for it, and makes its own decision (and alert).
//!
//! # Directives and the alarm
//!
//! `SoundAlarm` sounds even for an allowed exit; `SilenceAlarm` silences only an alarm raised
//! for that alert (a stale acknowledgement does not silence an alarm the server does not know
//! of); `RefreshPolicy`, or any answer naming a newer policy version, makes the cache fetch now.
//! The time from notice to completed coil write is logged as `passage_to_coil_ms` and recorded
//! in [`GateMetrics::passage_to_coil`]; a coil not written within [`COIL_WAIT_MAX`] is counted
//! and logged as an error. A lost gate I/O link raises the `gate_io_lost` device fault
//! (heartbeat and a `DeviceFault` event) until a write succeeds again.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, DeviceFaultKind, Directive, EventBody, GatePolicy, LocalVerdict, Outcome,
    PolicyDecision,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::actuators::{AlarmHandle, AlarmStatus};
use crate::model::{ReaderName, now_ms};
use crate::outbox::{EventId, Outbox};
use crate::policy::{CurrentPolicy, PolicyRequests};
use crate::smoothing::PassageId;
use crate::uplink::{HeartbeatState, ServerAnswer};

/// How long after its notice an exit still takes a late server verdict (60 s).
pub const LATE_VERDICT_WINDOW: Duration = Duration::from_secs(60);

/// The most exits (waiting or decided) and early verdicts kept; the oldest go first.
pub const MAX_TRACKED: usize = 1024;

/// The longest the gate waits for the coil write of an alarm before counting it as not written.
pub const COIL_WAIT_MAX: Duration = Duration::from_secs(5);

/// Carriers crossed outwards: one exit to decide (from one crossing notice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The gate reader.
    pub reader: ReaderName,
    /// The smoother's passage.
    pub passage: PassageId,
    /// When the notice came out of the smoother: every deadline and latency counts from here.
    pub recognised: Instant,
    /// The provisional passage event stored for it; `None` when the outbox refused it.
    pub event: Option<EventId>,
    /// When the first of its carriers crossed (Unix ms).
    pub at_ms: i64,
    /// The carrier tags.
    pub tags: Vec<Epc>,
    /// The badges read with them.
    pub badges: Vec<Epc>,
}

/// The local alarm's settings (`[alarm]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmSettings {
    /// How long a local alarm sounds.
    pub duration: Duration,
    /// Whether it locks the door too.
    pub lock_door: bool,
}

/// Who decided an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    /// The server's verdict, within the deadline.
    Server,
    /// The cached policy (or its absence): at the deadline, or at once when the exit has no
    /// event or the server is known down.
    Policy,
    /// The server's verdict after the policy had decided.
    LateServer,
}

impl DecidedBy {
    /// A short name for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Server => "server",
            DecidedBy::Policy => "policy",
            DecidedBy::LateServer => "late_server",
        }
    }
}

/// A decision on an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The gate reader.
    pub reader: ReaderName,
    /// The smoother's passage.
    pub passage: PassageId,
    /// The exit's event, if stored.
    pub event: Option<EventId>,
    /// The carrier tags decided.
    pub tags: Vec<Epc>,
    /// Who decided.
    pub by: DecidedBy,
    /// `None`: the carriers may leave; otherwise why the alarm sounds.
    pub alarm: Option<AlarmReason>,
    /// The policy version used (0 for the server, or when there was no policy).
    pub policy_version: u64,
    /// The server's alert, if it named one.
    pub alert_id: Option<String>,
    /// From the notice to the decision.
    pub elapsed: Duration,
    /// The server was known down when it was decided, so the exit did not wait for a verdict.
    pub server_down: bool,
}

/// What an alarm is for, to measure its latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmCause {
    /// When the exit's notice was recognised.
    pub recognised: Instant,
    /// The exit's event, if stored.
    pub event: Option<EventId>,
    /// Who decided.
    pub by: DecidedBy,
}

/// What the core wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// An exit was decided (for logs, metrics and observers).
    Decided(Decision),
    /// Sound the alarm.
    Sound {
        /// How long.
        duration: Duration,
        /// Lock the door too.
        lock_door: bool,
        /// The exit it is for (`None` for a server directive).
        cause: Option<AlarmCause>,
    },
    /// Silence the alarm: the server says this alert was acknowledged.
    Silence {
        /// The alert.
        alert_id: String,
    },
    /// Fetch the gate policy now.
    RefreshPolicy,
    /// An unauthenticated answer's verdicts and directives were ignored.
    Untrusted,
}

#[derive(Debug)]
struct Settled {
    exit: Exit,
    alarmed: bool,
}

/// The pure decision core. See the module doc.
#[derive(Debug)]
pub struct GateCore {
    deadline: Duration,
    alarm: AlarmSettings,
    /// Exits waiting for the server, oldest first.
    waiting: VecDeque<Exit>,
    /// Exits the policy decided, kept for late verdicts, oldest first.
    settled: VecDeque<Settled>,
    /// Verdicts that arrived before their exit (seq known to the shipper first), oldest first.
    early: VecDeque<(EventId, Outcome, Instant)>,
    /// The alerts of the alarm sounding now.
    alerts: HashSet<String>,
    /// Whether the server is known not to answer in time (see the module doc).
    server_down: bool,
}

impl GateCore {
    /// A core waiting `deadline` for server verdicts and sounding local alarms with `alarm`.
    pub fn new(deadline: Duration, alarm: AlarmSettings) -> Self {
        Self {
            deadline,
            alarm,
            waiting: VecDeque::new(),
            settled: VecDeque::new(),
            early: VecDeque::new(),
            alerts: HashSet::new(),
            server_down: false,
        }
    }

    /// Whether the server is known down: exits are decided by the policy without waiting.
    pub fn server_down(&self) -> bool {
        self.server_down
    }

    /// How long an exit waits for the server's verdict now.
    fn wait(&self) -> Duration {
        if self.server_down {
            Duration::ZERO
        } else {
            self.deadline
        }
    }

    /// Takes a new exit at `now` (wall clock `now_ms`), deciding it at once if it cannot wait.
    pub fn handle_exit(
        &mut self,
        now: Instant,
        now_ms: i64,
        exit: Exit,
        policy: Option<&GatePolicy>,
    ) -> Vec<Action> {
        self.expire(now);
        let mut out = Vec::new();
        let Some(event) = exit.event else {
            self.decide_by_policy(now, now_ms, exit, policy, &mut out);
            return out;
        };
        let early = self.early.iter().position(|(id, ..)| *id == event);
        if let Some((_, outcome, _)) = early.and_then(|i| self.early.remove(i)) {
            self.decide_by_server(now, exit, outcome, DecidedBy::Server, &mut out);
        } else if now >= exit.recognised + self.wait() {
            self.decide_by_policy(now, now_ms, exit, policy, &mut out);
        } else {
            if self.waiting.len() >= MAX_TRACKED {
                // Never drop an exit undecided: the oldest is decided now.
                if let Some(oldest) = self.waiting.pop_front() {
                    self.decide_by_policy(now, now_ms, oldest, policy, &mut out);
                }
            }
            self.waiting.push_back(exit);
        }
        out
    }

    /// Takes a server answer. `held_version` is the policy version held (0 = none).
    ///
    /// A failed exchange or an unauthenticated answer marks the server down: exits waiting are
    /// then due at once (see [`next_deadline`](Self::next_deadline)); an authenticated answer
    /// marks it up again.
    pub fn handle_answer(
        &mut self,
        now: Instant,
        answer: &ServerAnswer,
        held_version: u64,
    ) -> Vec<Action> {
        self.expire(now);
        let (verdicts, epoch, directives, policy_version, authenticated) = match answer {
            ServerAnswer::Failed => {
                self.server_down = true;
                return vec![];
            }
            ServerAnswer::Batch {
                epoch,
                verdicts,
                directives,
                policy_version,
                authenticated,
                ..
            } => (
                verdicts.as_slice(),
                *epoch,
                directives,
                *policy_version,
                *authenticated,
            ),
            ServerAnswer::Heartbeat {
                directives,
                policy_version,
                authenticated,
                ..
            } => (&[][..], 0, directives, *policy_version, *authenticated),
        };
        self.server_down = !authenticated;
        if !authenticated {
            let acts = !verdicts.is_empty() || !directives.is_empty();
            return if acts {
                vec![Action::Untrusted]
            } else {
                vec![]
            };
        }
        let mut out = Vec::new();
        // Alerts of late verdicts on exits the gate decided: not actuated again by directive.
        let mut decided_here: HashSet<String> = HashSet::new();
        for verdict in verdicts {
            let id = EventId {
                epoch,
                seq: verdict.seq,
            };
            if let Some(alert) = self.handle_verdict(now, id, verdict.outcome.clone(), &mut out) {
                decided_here.insert(alert);
            }
        }
        let mut refresh = policy_version > held_version;
        for directive in directives {
            match directive {
                Directive::SoundAlarm { alert_id, .. }
                    if alert_id.as_ref().is_some_and(|a| decided_here.contains(a)) =>
                {
                    tracing::info!(
                        alert_id,
                        "alarm ordered for a passage the gate already decided; not re-actuated"
                    );
                }
                Directive::SoundAlarm {
                    duration_ms,
                    lock_door,
                    alert_id,
                } => {
                    if let Some(alert) = alert_id {
                        self.alerts.insert(alert.clone());
                    }
                    out.push(Action::Sound {
                        duration: Duration::from_millis(*duration_ms),
                        lock_door: *lock_door,
                        cause: None,
                    });
                }
                Directive::SilenceAlarm { alert_id } => {
                    if self.alerts.contains(alert_id) {
                        self.alerts.clear();
                        out.push(Action::Silence {
                            alert_id: alert_id.clone(),
                        });
                    } else {
                        tracing::info!(alert_id, "silence for an alert not sounding; ignored");
                    }
                }
                Directive::RefreshPolicy => refresh = true,
            }
        }
        if refresh {
            out.push(Action::RefreshPolicy);
        }
        out
    }

    /// Takes one verdict; the alert it names if it is a late verdict on an exit the gate had
    /// decided (see the module doc: never re-actuated).
    fn handle_verdict(
        &mut self,
        now: Instant,
        id: EventId,
        outcome: Outcome,
        out: &mut Vec<Action>,
    ) -> Option<String> {
        let waiting = self.waiting.iter().position(|e| e.event == Some(id));
        let settled = self.settled.iter().position(|s| s.exit.event == Some(id));
        if let Some(exit) = waiting.and_then(|i| self.waiting.remove(i)) {
            self.decide_by_server(now, exit, outcome, DecidedBy::Server, out);
            None
        } else if let Some(settled) = settled.and_then(|i| self.settled.remove(i)) {
            match outcome {
                Outcome::Alarm { alert_id, .. } if settled.alarmed => {
                    // The policy's alarm is this alert's: let the guard's acknowledgement end it.
                    if let Some(alert) = &alert_id {
                        self.alerts.insert(alert.clone());
                    }
                    alert_id
                }
                outcome => {
                    let alert = match &outcome {
                        Outcome::Alarm { alert_id, .. } => alert_id.clone(),
                        Outcome::Allowed => None,
                    };
                    self.decide_late(now, settled.exit, outcome, out);
                    alert
                }
            }
        } else {
            if self.early.len() >= MAX_TRACKED {
                self.early.pop_front();
            }
            self.early.push_back((id, outcome, now));
            None
        }
    }

    /// Reports the server's late verdict on an exit the policy decided, without acting on it.
    fn decide_late(&mut self, now: Instant, exit: Exit, outcome: Outcome, out: &mut Vec<Action>) {
        let (alarm, alert_id) = match outcome {
            Outcome::Allowed => (None, None),
            Outcome::Alarm { reason, alert_id } => (Some(reason), alert_id),
        };
        out.push(Action::Decided(Decision {
            reader: exit.reader,
            passage: exit.passage,
            event: exit.event,
            tags: exit.tags,
            by: DecidedBy::LateServer,
            alarm,
            policy_version: 0,
            alert_id,
            elapsed: now.saturating_duration_since(exit.recognised),
            server_down: self.server_down,
        }));
    }

    /// Decides the exits whose deadline has passed at `now` (all of them while the server is
    /// known down). A deadline that passed with no verdict marks the server down.
    pub fn poll(&mut self, now: Instant, now_ms: i64, policy: Option<&GatePolicy>) -> Vec<Action> {
        self.expire(now);
        let mut out = Vec::new();
        let wait = self.wait();
        let (due, waiting): (Vec<Exit>, Vec<Exit>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|e| now >= e.recognised + wait);
        self.waiting = waiting.into();
        let missed = !due.is_empty();
        for exit in due {
            self.decide_by_policy(now, now_ms, exit, policy, &mut out);
        }
        self.server_down |= missed;
        out
    }

    /// Decides every waiting exit with the policy now (at shutdown).
    pub fn flush(&mut self, now: Instant, now_ms: i64, policy: Option<&GatePolicy>) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(exit) = self.waiting.pop_front() {
            self.decide_by_policy(now, now_ms, exit, policy, &mut out);
        }
        out
    }

    /// The next instant [`poll`](Self::poll) has something to decide.
    pub fn next_deadline(&self) -> Option<Instant> {
        let wait = self.wait();
        self.waiting.iter().map(|e| e.recognised + wait).min()
    }

    /// The alarm has ended (its time ran out or it was silenced): its alerts are done.
    pub fn alarm_ended(&mut self) {
        self.alerts.clear();
    }

    /// Exits waiting for the server now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn expire(&mut self, now: Instant) {
        let keep =
            |recognised: Instant| now.saturating_duration_since(recognised) < LATE_VERDICT_WINDOW;
        self.settled.retain(|s| keep(s.exit.recognised));
        self.early.retain(|(_, _, at)| keep(*at));
    }

    fn decide_by_server(
        &mut self,
        now: Instant,
        exit: Exit,
        outcome: Outcome,
        by: DecidedBy,
        out: &mut Vec<Action>,
    ) {
        let (alarm, alert_id) = match outcome {
            Outcome::Allowed => (None, None),
            Outcome::Alarm { reason, alert_id } => (Some(reason), alert_id),
        };
        if alarm.is_some() {
            if let Some(alert) = &alert_id {
                self.alerts.insert(alert.clone());
            }
            out.push(self.sound(&exit, by));
        }
        out.push(Action::Decided(Decision {
            reader: exit.reader,
            passage: exit.passage,
            event: exit.event,
            tags: exit.tags,
            by,
            alarm,
            policy_version: 0,
            alert_id,
            elapsed: now.saturating_duration_since(exit.recognised),
            server_down: self.server_down,
        }));
    }

    fn decide_by_policy(
        &mut self,
        now: Instant,
        now_ms: i64,
        exit: Exit,
        policy: Option<&GatePolicy>,
        out: &mut Vec<Action>,
    ) {
        let decision = match policy {
            Some(p) => p.decide(&exit.tags, &exit.badges, now_ms),
            None => PolicyDecision::without_policy(&exit.tags),
        };
        let alarm = decision.reason();
        if alarm.is_some() {
            out.push(self.sound(&exit, DecidedBy::Policy));
        }
        out.push(Action::Decided(Decision {
            reader: exit.reader.clone(),
            passage: exit.passage,
            event: exit.event,
            tags: exit.tags.clone(),
            by: DecidedBy::Policy,
            alarm,
            policy_version: decision.policy_version,
            alert_id: None,
            elapsed: now.saturating_duration_since(exit.recognised),
            server_down: self.server_down,
        }));
        if exit.event.is_some() {
            if self.settled.len() >= MAX_TRACKED {
                self.settled.pop_front();
            }
            self.settled.push_back(Settled {
                exit,
                alarmed: alarm.is_some(),
            });
        }
    }

    fn sound(&self, exit: &Exit, by: DecidedBy) -> Action {
        Action::Sound {
            duration: self.alarm.duration,
            lock_door: self.alarm.lock_door,
            cause: Some(AlarmCause {
                recognised: exit.recognised,
                event: exit.event,
                by,
            }),
        }
    }
}

/// Latencies: bucket counts, totals and the most recent samples (for exact percentiles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; LATENCY_BUCKETS_MS.len() + 1],
    count: u64,
    sum: Duration,
    max: Duration,
    recent: VecDeque<Duration>,
}

/// Upper bounds (inclusive, ms) of the [`LatencyHistogram`] buckets; one more bucket holds the
/// rest.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1_000, 5_000];

/// How many recent samples a [`LatencyHistogram`] keeps.
pub const LATENCY_RECENT: usize = 1024;

impl LatencyHistogram {
    /// Records one sample.
    pub fn record(&mut self, latency: Duration) {
        let ms = latency.as_millis();
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| ms <= u128::from(b))
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.count += 1;
        self.sum += latency;
        self.max = self.max.max(latency);
        if self.recent.len() == LATENCY_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(latency);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The mean, if any sample was recorded.
    pub fn mean(&self) -> Option<Duration> {
        let n = u32::try_from(self.count).ok().filter(|&n| n > 0)?;
        Some(self.sum / n)
    }

    /// The `q` quantile (0.0..=1.0, nearest rank) of the most recent [`LATENCY_RECENT`]
    /// samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut samples: Vec<Duration> = self.recent.iter().copied().collect();
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * samples.len() as f64).ceil() as usize;
        Some(samples[rank.clamp(1, samples.len()) - 1])
    }

    /// The bucket counts: `(upper bound in ms, count)`, the last bound `None` (unbounded).
    pub fn buckets(&self) -> Vec<(Option<u64>, u64)> {
        LATENCY_BUCKETS_MS
            .iter()
            .map(|&b| Some(b))
            .chain([None])
            .zip(self.counts)
            .collect()
    }
}

/// What the gate has done since start, for tests, benchmarks and operators. Shared; every
/// counter is updated as it happens.
#[derive(Debug, Default)]
pub struct GateMetrics {
    /// Outward exits handed to the gate.
    pub exits: AtomicU64,
    /// Exits the server decided within the deadline.
    pub server_decisions: AtomicU64,
    /// Exits the policy decided (or its absence).
    pub policy_decisions: AtomicU64,
    /// Late server verdicts of alarm on exits the policy had let go (logged, not actuated).
    pub late_alarms: AtomicU64,
    /// Answers whose verdicts or directives were ignored as unauthenticated.
    pub untrusted_answers: AtomicU64,
    /// Alarm commands sent to the driver (exits and directives).
    pub alarms: AtomicU64,
    /// Alarms wanted without a gate I/O module configured.
    pub alarms_without_io: AtomicU64,
    /// Silence commands sent (an acknowledged alert).
    pub silences: AtomicU64,
    /// Exit alarms whose coil was already on.
    pub coil_already_on: AtomicU64,
    /// Exit alarms whose coil was not written within [`COIL_WAIT_MAX`].
    pub coil_not_written: AtomicU64,
    /// From a crossing notice to the completed coil write, for alarms decided within the
    /// deadline (server or policy); late alarms are counted in `late_alarms` only.
    pub passage_to_coil: Mutex<LatencyHistogram>,
}

impl GateMetrics {
    /// A copy of the latency histogram.
    pub fn passage_to_coil(&self) -> LatencyHistogram {
        self.passage_to_coil
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A counter's value (shorthand for `load(Relaxed)`).
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the gate reports to observers (tests, the simulator's demo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateReport {
    /// An exit was decided.
    Decided(Decision),
    /// An exit's alarm reached the coil.
    CoilWritten {
        /// The exit's event.
        event: Option<EventId>,
        /// Who decided.
        by: DecidedBy,
        /// From the notice to the completed coil write.
        passage_to_coil: Duration,
    },
    /// An exit's alarm found the alarm already on.
    CoilAlreadyOn {
        /// The exit's event.
        event: Option<EventId>,
    },
    /// An exit's alarm was not written within [`COIL_WAIT_MAX`] (or no gate I/O is configured).
    CoilNotWritten {
        /// The exit's event.
        event: Option<EventId>,
    },
    /// A server directive sounded the alarm.
    DirectiveSound,
    /// The alarm was silenced for this alert.
    Silenced {
        /// The alert.
        alert_id: String,
    },
}

/// Everything the gate task talks to.
#[derive(Debug)]
pub struct GateChannels {
    /// The exits from the pipeline.
    pub exits: mpsc::Receiver<Exit>,
    /// The server's answers (shipper and heartbeats).
    pub answers: mpsc::Receiver<ServerAnswer>,
    /// The policy held.
    pub policy: CurrentPolicy,
    /// Asks the policy cache to fetch now.
    pub policy_requests: Option<PolicyRequests>,
    /// The alarm, if a gate I/O module is configured.
    pub alarm: Option<AlarmHandle>,
    /// Device faults for heartbeats (`gate_io_lost`).
    pub heartbeat: watch::Sender<HeartbeatState>,
    /// For `DeviceFault` events.
    pub outbox: Outbox,
    /// Counters and latencies.
    pub metrics: Arc<GateMetrics>,
    /// Reports to observers.
    pub reports: broadcast::Sender<GateReport>,
}

/// An exit alarm waiting for its coil write.
#[derive(Debug)]
struct CoilWait {
    cause: AlarmCause,
    sent: Instant,
}

/// The gate task: [`GateCore`] driven by channels and clocks, acting on the alarm.
#[derive(Debug)]
pub struct GateTask {
    core: GateCore,
    io: GateChannels,
    coil_waits: Vec<CoilWait>,
    sounding: bool,
    link_lost: bool,
    warned_untrusted: bool,
}

impl GateTask {
    /// A gate task over `core` and `io`.
    pub fn new(core: GateCore, io: GateChannels) -> Self {
        Self {
            core,
            io,
            coil_waits: Vec::new(),
            sounding: false,
            link_lost: false,
            warned_untrusted: false,
        }
    }

    /// Runs until `shutdown` completes; then decides what still waits with the policy.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut status = self.io.alarm.as_ref().map(AlarmHandle::watch);
        let (mut exits_open, mut answers_open) = (true, true);
        loop {
            let wake = [
                self.core.next_deadline(),
                self.coil_waits.iter().map(|w| w.sent + COIL_WAIT_MAX).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let actions = tokio::select! {
                biased;
                () = &mut shutdown => break,
                answer = self.io.answers.recv(), if answers_open => match answer {
                    Some(answer) => {
                        let held = self.held_version();
                        let was_down = self.core.server_down();
                        let actions = self.core.handle_answer(Instant::now(), &answer, held);
                        self.log_server_state(was_down);
                        actions
                    }
                    None => {
                        answers_open = false;
                        continue;
                    }
                },
                exit = self.io.exits.recv(), if exits_open => match exit {
                    Some(exit) => {
                        bump(&self.io.metrics.exits);
                        let policy = self.io.policy.borrow().clone();
                        let policy = policy.as_deref().map(|p| &p.policy);
                        self.core.handle_exit(Instant::now(), now_ms(), exit, policy)
                    }
                    None => {
                        exits_open = false;
                        continue;
                    }
                },
                changed = status_changed(&mut status) => {
                    match changed {
                        Some(s) => self.on_status(s).await,
                        None => status = None,
                    }
                    continue;
                }
                () = crate::readers::link::until(wake) => {
                    self.expire_coil_waits(Instant::now());
                    let policy = self.io.policy.borrow().clone();
                    let policy = policy.as_deref().map(|p| &p.policy);
                    let was_down = self.core.server_down();
                    let actions = self.core.poll(Instant::now(), now_ms(), policy);
                    self.log_server_state(was_down);
                    actions
                }
            };
            self.apply(actions).await;
        }
        let policy = self.io.policy.borrow().clone();
        let policy = policy.as_deref().map(|p| &p.policy);
        let actions = self.core.flush(Instant::now(), now_ms(), policy);
        self.apply(actions).await;
        tracing::debug!("gate stopped");
    }

    fn log_server_state(&self, was_down: bool) {
        match (was_down, self.core.server_down()) {
            (false, true) => tracing::warn!(
                "server not answering in time: exits are decided by the cached policy at once"
            ),
            (true, false) => tracing::info!("server answering: exits wait for its verdict again"),
            _ => {}
        }
    }

    fn held_version(&self) -> u64 {
        self.io
            .policy
            .borrow()
            .as_ref()
            .map_or(0, |p| p.policy.version)
    }

    async fn apply(&mut self, actions: Vec<Action>) {
        let metrics = self.io.metrics.clone();
        for action in actions {
            match action {
                Action::Decided(d) => {
                    match d.by {
                        DecidedBy::Server => bump(&metrics.server_decisions),
                        DecidedBy::Policy => bump(&metrics.policy_decisions),
                        DecidedBy::LateServer if d.alarm.is_some() => bump(&metrics.late_alarms),
                        DecidedBy::LateServer => {}
                    }
                    tracing::info!(
                        reader = %d.reader,
                        passage = d.passage.0,
                        epoch = d.event.map(|e| e.epoch),
                        seq = d.event.map(|e| e.seq),
                        tags = d.tags.len(),
                        decided_by = d.by.as_str(),
                        alarm = ?d.alarm,
                        policy_version = d.policy_version,
                        alert_id = d.alert_id.as_deref(),
                        elapsed_ms = d.elapsed.as_millis() as u64,
                        server_down = d.server_down,
                        "exit decided"
                    );
                    if let (DecidedBy::Policy, Some(event)) = (d.by, d.event) {
                        let verdict = LocalVerdict {
                            alarm: d.alarm.is_some(),
                            policy_version: d.policy_version,
                            reason: d.alarm,
                        };
                        match self.io.outbox.record_local_verdict(event, verdict).await {
                            Ok(recorded) => tracing::debug!(
                                epoch = event.epoch,
                                seq = event.seq,
                                recorded,
                                "local verdict"
                            ),
                            Err(e) => {
                                tracing::warn!(error = %e, "recording the local verdict failed");
                            }
                        }
                    }
                    let _ = self.io.reports.send(GateReport::Decided(d));
                }
                Action::Sound {
                    duration,
                    lock_door,
                    cause,
                } => self.sound(duration, lock_door, cause).await,
                Action::Silence { alert_id } => {
                    tracing::info!(alert_id, "alert acknowledged: alarm silenced");
                    bump(&metrics.silences);
                    if let Some(alarm) = &self.io.alarm {
                        alarm.silence().await;
                    }
                    self.coil_waits.clear();
                    let _ = self.io.reports.send(GateReport::Silenced { alert_id });
                }
                Action::RefreshPolicy => {
                    if let Some(requests) = &self.io.policy_requests {
                        requests.refresh();
                    }
                }
                Action::Untrusted => {
                    bump(&metrics.untrusted_answers);
                    if std::mem::replace(&mut self.warned_untrusted, true) {
                        tracing::debug!("unauthenticated server answer ignored");
                    } else {
                        tracing::warn!(
                            "server answers are not authenticated (no server_public_key): \
                             their verdicts and directives are ignored"
                        );
                    }
                }
            }
        }
    }

    async fn sound(&mut self, duration: Duration, lock_door: bool, cause: Option<AlarmCause>) {
        let metrics = self.io.metrics.clone();
        let Some(alarm) = &self.io.alarm else {
            bump(&metrics.alarms_without_io);
            tracing::error!(?duration, "ALARM wanted, but no [gate_io] is configured");
            if let Some(cause) = cause {
                let _ = self
                    .io
                    .reports
                    .send(GateReport::CoilNotWritten { event: cause.event });
            }
            return;
        };
        bump(&metrics.alarms);
        let before = alarm.status();
        let sent = Instant::now();
        if !alarm.sound(duration, lock_door).await {
            tracing::error!("alarm driver stopped; alarm not sounded");
        }
        let Some(cause) = cause else {
            tracing::warn!(?duration, lock_door, "ALARM by server directive");
            let _ = self.io.reports.send(GateReport::DirectiveSound);
            return;
        };
        tracing::warn!(
            decided_by = cause.by.as_str(),
            seq = cause.event.map(|e| e.seq),
            ?duration,
            lock_door,
            "ALARM"
        );
        // On already: the driver wants the alarm and has written it (an alarm whose time just
        // ran out wants idle, and this one's write is still to come).
        if before.wanted.alarm_light && before.written == Some(before.wanted) {
            bump(&metrics.coil_already_on);
            tracing::info!(seq = cause.event.map(|e| e.seq), "alarm coil already on");
            let _ = self
                .io
                .reports
                .send(GateReport::CoilAlreadyOn { event: cause.event });
            return;
        }
        self.coil_waits.push(CoilWait { cause, sent });
        // The write may have completed already.
        let now = alarm.status();
        self.check_coil(&now);
    }

    async fn on_status(&mut self, status: AlarmStatus) {
        self.check_coil(&status);
        let sounding = status.wanted.alarm_light;
        if self.sounding && !sounding {
            self.core.alarm_ended();
        }
        self.sounding = sounding;
        // The link counts as lost after a failed write, found again after a good one.
        let lost = !status.link_up && status.written.is_none();
        if lost != self.link_lost {
            self.link_lost = lost;
            self.gate_io_fault(lost).await;
        }
    }

    async fn gate_io_fault(&self, lost: bool) {
        if lost {
            tracing::error!("gate i/o module not answering: alarms cannot sound");
            let detail = "gate i/o module not answering".to_owned();
            let at_ms = now_ms();
            let raised = self
                .io
                .heartbeat
                .send_if_modified(|s| s.raise(DeviceFaultKind::GateIoLost, detail.clone(), at_ms));
            if raised {
                let body = EventBody::DeviceFault {
                    kind: DeviceFaultKind::GateIoLost,
                    detail,
                };
                if let Err(e) = self.io.outbox.append(at_ms, &body).await {
                    tracing::error!(error = %e, "gate_io_lost fault not stored");
                }
            }
        } else {
            tracing::info!("gate i/o module answering again");
            self.io
                .heartbeat
                .send_if_modified(|s| s.clear(DeviceFaultKind::GateIoLost));
        }
    }

    fn check_coil(&mut self, status: &AlarmStatus) {
        let Some(written_at) = status.written_at else {
            return;
        };
        if !status.written.is_some_and(|o| o.alarm_light) {
            return;
        }
        let metrics = &self.io.metrics;
        let reports = &self.io.reports;
        self.coil_waits.retain(|w| {
            if written_at < w.sent {
                return true;
            }
            let latency = written_at.saturating_duration_since(w.cause.recognised);
            tracing::info!(
                passage_to_coil_ms = latency.as_millis() as u64,
                decided_by = w.cause.by.as_str(),
                seq = w.cause.event.map(|e| e.seq),
                "alarm coil written"
            );
            if w.cause.by != DecidedBy::LateServer {
                metrics
                    .passage_to_coil
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(latency);
            }
            let _ = reports.send(GateReport::CoilWritten {
                event: w.cause.event,
                by: w.cause.by,
                passage_to_coil: latency,
            });
            false
        });
    }

    fn expire_coil_waits(&mut self, now: Instant) {
        let metrics = &self.io.metrics;
        let reports = &self.io.reports;
        self.coil_waits.retain(|w| {
            if now < w.sent + COIL_WAIT_MAX {
                return true;
            }
            bump(&metrics.coil_not_written);
            tracing::error!(
                seq = w.cause.event.map(|e| e.seq),
                "alarm coil not written within {COIL_WAIT_MAX:?}"
            );
            let _ = reports.send(GateReport::CoilNotWritten {
                event: w.cause.event,
            });
            false
        });
    }
}

/// The next alarm status, `None` when the driver is gone; never completes without a driver.
async fn status_changed(rx: &mut Option<watch::Receiver<AlarmStatus>>) -> Option<AlarmStatus> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(*rx.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use custos_protocol::modbus_map::Outputs;
    use custos_protocol::uplink::{AllowedCarrier, Verdict};
    use hyper::body::Bytes;

    use super::*;
    use crate::actuators::AlarmCommand;
    use crate::uplink::SignedPolicy;

    const DEADLINE: Duration = Duration::from_millis(300);
    const ALARM: AlarmSettings = AlarmSettings {
        duration: Duration::from_secs(10),
        lock_door: false,
    };
    const HOUR: i64 = 3_600_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A carrier signed out through this gate.
    fn doc() -> Epc {
        Epc::from_hex("3474257BF40000000000162E").unwrap()
    }

    /// A carrier nobody signed out.
    fn disk() -> Epc {
        Epc::from_hex("3474257BF40000000000162F").unwrap()
    }

    fn policy(now_ms: i64) -> GatePolicy {
        GatePolicy {
            device_id: "gate-1".into(),
            version: 3,
            issued_at_ms: now_ms - HOUR,
            valid_until_ms: now_ms + HOUR,
            allowed: vec![AllowedCarrier {
                epc: doc(),
                until_ms: now_ms + HOUR,
                borrower_badges: vec![],
                badge_required: false,
            }],
            badges: vec![],
        }
    }

    /// A fresh core at `t0`, the wall clock now and a policy current at it.
    fn fixture() -> (GateCore, Instant, i64, GatePolicy) {
        let now_ms = crate::model::now_ms();
        (
            GateCore::new(DEADLINE, ALARM),
            Instant::now(),
            now_ms,
            policy(now_ms),
        )
    }

    fn id(seq: u64) -> EventId {
        EventId { epoch: 1, seq }
    }

    fn exit(seq: Option<u64>, tag: Epc, recognised: Instant) -> Exit {
        Exit {
            reader: "uhf-main".into(),
            passage: PassageId(seq.unwrap_or(0)),
            recognised,
            event: seq.map(id),
            at_ms: 0,
            tags: vec![tag],
            badges: vec![],
        }
    }

    fn ack(
        verdicts: &[(u64, Outcome)],
        directives: Vec<Directive>,
        authenticated: bool,
    ) -> ServerAnswer {
        ServerAnswer::Batch {
            epoch: 1,
            acked_through: verdicts.iter().map(|(s, _)| *s).max().unwrap_or(0),
            verdicts: verdicts
                .iter()
                .map(|(seq, outcome)| Verdict {
                    seq: *seq,
                    outcome: outcome.clone(),
                })
                .collect(),
            directives,
            policy_version: 3,
            authenticated,
        }
    }

    fn alarm(alert: &str) -> Outcome {
        Outcome::Alarm {
            reason: AlarmReason::UnauthorizedRemoval,
            alert_id: Some(alert.into()),
        }
    }

    fn decisions(actions: &[Action]) -> Vec<(DecidedBy, Option<AlarmReason>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Decided(d) => Some((d.by, d.alarm)),
                _ => None,
            })
            .collect()
    }

    fn sounds(actions: &[Action]) -> Vec<Option<DecidedBy>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Sound { cause, .. } => Some(cause.map(|c| c.by)),
                _ => None,
            })
            .collect()
    }

    /// Security review (issue 9, gate badge rule): with the server silent, the cached policy
    /// refuses a carrier whose entry requires the borrower's badge when no badge was read
    /// (`badge_missing`, as the server's verdict would), and lets it go with the badge.
    #[test]
    fn the_policy_alone_requires_the_badge_the_server_requires() {
        let (mut core, t0, now_ms, mut p) = fixture();
        let alice = Epc::from_hex("E20000000000000000000A11").unwrap();
        p.allowed[0].borrower_badges = vec![alice];
        p.allowed[0].badge_required = true;
        assert!(
            core.handle_exit(t0, now_ms, exit(Some(5), doc(), t0), Some(&p))
                .is_empty()
        );
        let out = core.poll(t0 + DEADLINE, now_ms, Some(&p));
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::BadgeMissing))]
        );
        assert_eq!(sounds(&out), [Some(DecidedBy::Policy)]);

        let mut core = GateCore::new(DEADLINE, ALARM);
        let with_badge = Exit {
            badges: vec![alice],
            ..exit(Some(6), doc(), t0)
        };
        assert!(
            core.handle_exit(t0, now_ms, with_badge, Some(&p))
                .is_empty()
        );
        let out = core.poll(t0 + DEADLINE, now_ms, Some(&p));
        assert_eq!(decisions(&out), [(DecidedBy::Policy, None)]);
        assert!(sounds(&out).is_empty());
    }

    #[test]
    fn a_server_verdict_within_the_deadline_decides() {
        let (mut core, t0, now_ms, p) = fixture();
        // The policy would alarm on the disk, the server allows it: the server wins.
        assert!(
            core.handle_exit(t0, now_ms, exit(Some(5), disk(), t0), Some(&p))
                .is_empty()
        );
        assert_eq!(core.next_deadline(), Some(t0 + DEADLINE));
        let out = core.handle_answer(t0 + ms(40), &ack(&[(5, Outcome::Allowed)], vec![], true), 3);
        assert_eq!(decisions(&out), [(DecidedBy::Server, None)]);
        assert!(sounds(&out).is_empty());
        let Action::Decided(d) = &out[0] else {
            panic!()
        };
        assert_eq!((d.event, d.elapsed), (Some(id(5)), ms(40)));
        assert_eq!(core.next_deadline(), None);
        assert!(core.poll(t0 + DEADLINE, now_ms, Some(&p)).is_empty());

        // The server alarms on the document the policy would let go.
        core.handle_exit(t0, now_ms, exit(Some(6), doc(), t0), Some(&p));
        let out = core.handle_answer(t0 + ms(10), &ack(&[(6, alarm("A-6"))], vec![], true), 3);
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Server, Some(AlarmReason::UnauthorizedRemoval))]
        );
        assert_eq!(
            out[0],
            Action::Sound {
                duration: ALARM.duration,
                lock_door: false,
                cause: Some(AlarmCause {
                    recognised: t0,
                    event: Some(id(6)),
                    by: DecidedBy::Server
                })
            }
        );
        // The guard acknowledges the alert: the server's silence matches this alarm.
        let silence = vec![Directive::SilenceAlarm {
            alert_id: "A-6".into(),
        }];
        let out = core.handle_answer(t0 + ms(900), &ack(&[], silence, true), 3);
        assert_eq!(
            out,
            [Action::Silence {
                alert_id: "A-6".into()
            }]
        );
    }

    #[test]
    fn without_a_verdict_the_policy_decides_at_the_deadline() {
        let (mut core, t0, now_ms, p) = fixture();
        core.handle_exit(t0, now_ms, exit(Some(1), doc(), t0), Some(&p));
        core.handle_exit(t0, now_ms, exit(Some(2), disk(), t0), Some(&p));
        assert!(
            core.poll(t0 + DEADLINE - ms(1), now_ms, Some(&p))
                .is_empty()
        );
        let out = core.poll(t0 + DEADLINE, now_ms, Some(&p));
        assert_eq!(
            decisions(&out),
            [
                (DecidedBy::Policy, None),
                (DecidedBy::Policy, Some(AlarmReason::UnauthorizedRemoval))
            ]
        );
        assert_eq!(sounds(&out), [Some(DecidedBy::Policy)]);
        let versions: Vec<u64> = out
            .iter()
            .filter_map(|a| match a {
                Action::Decided(d) => Some(d.policy_version),
                _ => None,
            })
            .collect();
        assert_eq!(versions, [3, 3]);
        assert_eq!(core.waiting(), 0);
        // The deadline passed without a verdict: the server counts as down, and the next exits
        // do not wait.
        assert!(core.server_down());

        // No policy, or an expired one: every carrier alarms.
        let t1 = t0 + DEADLINE;
        let out = core.handle_exit(t1, now_ms, exit(Some(3), doc(), t1), None);
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::NoPolicy))]
        );
        let later = p.valid_until_ms;
        let out = core.handle_exit(t1, later, exit(Some(4), doc(), t1), Some(&p));
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::PolicyExpired))]
        );
        assert_eq!(sounds(&out), [Some(DecidedBy::Policy)]);
    }

    #[test]
    fn while_the_server_is_down_exits_do_not_wait_for_it() {
        let (mut core, t0, now_ms, p) = fixture();
        assert!(!core.server_down());
        core.handle_exit(t0, now_ms, exit(Some(1), disk(), t0), Some(&p));
        assert_eq!(core.next_deadline(), Some(t0 + DEADLINE));

        // The upload fails (connection refused): the waiting exit is due now, not at its deadline.
        let t1 = t0 + ms(3);
        assert!(core.handle_answer(t1, &ServerAnswer::Failed, 3).is_empty());
        assert!(core.server_down());
        assert_eq!(core.next_deadline(), Some(t0));
        let out = core.poll(t1, now_ms, Some(&p));
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::UnauthorizedRemoval))]
        );
        assert_eq!(sounds(&out), [Some(DecidedBy::Policy)]);

        // A new exit is decided the moment it arrives, with no time elapsed.
        let t2 = t0 + ms(500);
        let out = core.handle_exit(t2, now_ms, exit(Some(2), doc(), t2), Some(&p));
        assert_eq!(decisions(&out), [(DecidedBy::Policy, None)]);
        let Some(Action::Decided(d)) = out.first() else {
            panic!("{out:?}")
        };
        assert_eq!(d.elapsed, Duration::ZERO);
        assert_eq!(core.waiting(), 0);

        // The server returns: its late verdict on the document is reported but not acted on
        // (the gate decided that passage; nor is the ack's `SoundAlarm` for the same alert
        // obeyed), and its authenticated answer makes the next exit wait for a verdict again.
        let t3 = t0 + ms(2_000);
        let order = Directive::SoundAlarm {
            duration_ms: 30_000,
            lock_door: true,
            alert_id: Some("A-2".into()),
        };
        let out = core.handle_answer(t3, &ack(&[(2, alarm("A-2"))], vec![order], true), 3);
        assert_eq!(
            decisions(&out),
            [(
                DecidedBy::LateServer,
                Some(AlarmReason::UnauthorizedRemoval)
            )]
        );
        assert_eq!(sounds(&out), Vec::<Option<DecidedBy>>::new(), "{out:?}");
        assert!(!core.server_down());
        assert!(
            core.handle_exit(t3, now_ms, exit(Some(3), disk(), t3), Some(&p))
                .is_empty()
        );
        assert_eq!(core.next_deadline(), Some(t3 + DEADLINE));

        // An authenticated heartbeat counts as the server answering; an unauthenticated answer
        // does not (its verdicts could never be used).
        let hb = ServerAnswer::Heartbeat {
            hb_seq: 1,
            directives: vec![],
            policy_version: 3,
            authenticated: true,
        };
        core.handle_answer(t3, &ServerAnswer::Failed, 3);
        assert!(core.server_down());
        core.handle_answer(t3, &hb, 3);
        assert!(!core.server_down());
        assert_eq!(
            core.handle_answer(t3, &ack(&[], vec![], false), 3),
            Vec::<Action>::new()
        );
        assert!(core.server_down());
    }

    #[test]
    fn an_exit_without_an_event_or_past_its_deadline_is_decided_at_once() {
        let (mut core, t0, now_ms, p) = fixture();
        // The outbox refused the event: no verdict can come.
        let out = core.handle_exit(t0, now_ms, exit(None, disk(), t0), Some(&p));
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::UnauthorizedRemoval))]
        );
        let out = core.handle_exit(t0, now_ms, exit(None, doc(), t0), Some(&p));
        assert_eq!(decisions(&out), [(DecidedBy::Policy, None)]);
        // Handed over after its deadline (a slow disk).
        let out = core.handle_exit(t0 + DEADLINE, now_ms, exit(Some(9), doc(), t0), Some(&p));
        assert_eq!(decisions(&out), [(DecidedBy::Policy, None)]);
        assert_eq!(core.waiting(), 0);
    }

    #[test]
    fn a_verdict_before_its_exit_is_kept_for_it() {
        let now_ms = crate::model::now_ms();
        let t0 = Instant::now();
        let mut core = GateCore::new(DEADLINE, ALARM);
        // The shipper uploaded the event and got the ack before the pipeline's hand-over.
        assert!(
            core.handle_answer(t0, &ack(&[(7, alarm("A-7"))], vec![], true), 3)
                .is_empty()
        );
        let out = core.handle_exit(t0, now_ms, exit(Some(7), doc(), t0), None);
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Server, Some(AlarmReason::UnauthorizedRemoval))]
        );
        assert_eq!(sounds(&out), [Some(DecidedBy::Server)]);
    }

    #[test]
    fn a_late_alarm_verdict_never_reactuates_and_a_late_allow_never_silences() {
        let (mut core, t0, now_ms, p) = fixture();
        core.handle_exit(t0, now_ms, exit(Some(1), doc(), t0), Some(&p));
        core.handle_exit(t0, now_ms, exit(Some(2), disk(), t0), Some(&p));
        core.poll(t0 + DEADLINE, now_ms, Some(&p));
        // Seq 1 was let go by the policy; the server says otherwise: reported, not sounded
        // (the gate decided that passage; the server's alert is for the guards).
        let out = core.handle_answer(
            t0 + ms(2_000),
            &ack(&[(1, alarm("A-1")), (2, Outcome::Allowed)], vec![], true),
            3,
        );
        assert_eq!(
            decisions(&out),
            [
                (
                    DecidedBy::LateServer,
                    Some(AlarmReason::UnauthorizedRemoval)
                ),
                (DecidedBy::LateServer, None)
            ]
        );
        assert_eq!(sounds(&out), Vec::<Option<DecidedBy>>::new());
        assert!(!out.iter().any(|a| matches!(a, Action::Silence { .. })));

        // A verdict after the late window is only an unmatched verdict.
        core.handle_exit(t0, now_ms, exit(Some(3), doc(), t0), Some(&p));
        core.poll(t0 + DEADLINE, now_ms, Some(&p));
        let out = core.handle_answer(
            t0 + LATE_VERDICT_WINDOW,
            &ack(&[(3, alarm("A-3"))], vec![], true),
            3,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_policy_alarm_takes_the_alert_of_the_late_verdict() {
        let now_ms = crate::model::now_ms();
        let t0 = Instant::now();
        let mut core = GateCore::new(DEADLINE, ALARM);
        core.handle_exit(t0, now_ms, exit(Some(1), disk(), t0), None);
        assert_eq!(
            sounds(&core.poll(t0 + DEADLINE, now_ms, None)),
            [Some(DecidedBy::Policy)]
        );
        // The server, reached later, agrees and names its alert: no second alarm.
        let out = core.handle_answer(t0 + ms(5_000), &ack(&[(1, alarm("A-1"))], vec![], true), 3);
        assert!(out.is_empty(), "{out:?}");
        // Its acknowledgement silences the policy's alarm.
        let silence = |id: &str| {
            ack(
                &[],
                vec![Directive::SilenceAlarm {
                    alert_id: id.into(),
                }],
                true,
            )
        };
        assert!(
            core.handle_answer(t0 + ms(6_000), &silence("A-9"), 3)
                .is_empty()
        );
        assert_eq!(
            core.handle_answer(t0 + ms(6_000), &silence("A-1"), 3),
            [Action::Silence {
                alert_id: "A-1".into()
            }]
        );
    }

    #[test]
    fn unauthenticated_answers_are_ignored() {
        let (mut core, t0, now_ms, p) = fixture();
        core.handle_exit(t0, now_ms, exit(Some(1), disk(), t0), Some(&p));
        // An unpinned server "allows" the disk and asks to silence and refresh: nothing of it.
        let forged = ack(
            &[(1, Outcome::Allowed)],
            vec![
                Directive::SilenceAlarm {
                    alert_id: "A".into(),
                },
                Directive::RefreshPolicy,
            ],
            false,
        );
        assert_eq!(
            core.handle_answer(t0 + ms(10), &forged, 3),
            [Action::Untrusted]
        );
        assert_eq!(core.waiting(), 1);
        let out = core.poll(t0 + DEADLINE, now_ms, Some(&p));
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::UnauthorizedRemoval))]
        );
        // Nothing to ignore in an empty answer.
        assert!(
            core.handle_answer(t0, &ack(&[], vec![], false), 3)
                .is_empty()
        );
    }

    #[test]
    fn directives_sound_silence_and_refresh() {
        let t0 = Instant::now();
        let mut core = GateCore::new(DEADLINE, ALARM);
        let hb = |directives: Vec<Directive>, policy_version: u64| ServerAnswer::Heartbeat {
            hb_seq: 1,
            directives,
            policy_version,
            authenticated: true,
        };
        let out = core.handle_answer(
            t0,
            &hb(
                vec![Directive::SoundAlarm {
                    duration_ms: 4_000,
                    lock_door: true,
                    alert_id: Some("A-1".into()),
                }],
                3,
            ),
            3,
        );
        assert_eq!(
            out,
            [Action::Sound {
                duration: ms(4_000),
                lock_door: true,
                cause: None
            }]
        );
        // The alarm ran out: a late acknowledgement does not touch a later alarm.
        core.alarm_ended();
        let silence = vec![Directive::SilenceAlarm {
            alert_id: "A-1".into(),
        }];
        assert!(core.handle_answer(t0, &hb(silence, 3), 3).is_empty());
        // RefreshPolicy, or a newer version than held, asks for the policy (once per answer).
        assert_eq!(
            core.handle_answer(t0, &hb(vec![Directive::RefreshPolicy], 4), 3),
            [Action::RefreshPolicy]
        );
        assert_eq!(
            core.handle_answer(t0, &hb(vec![], 4), 3),
            [Action::RefreshPolicy]
        );
        assert!(core.handle_answer(t0, &hb(vec![], 3), 3).is_empty());
    }

    #[test]
    fn flush_decides_what_still_waits() {
        let now_ms = crate::model::now_ms();
        let t0 = Instant::now();
        let mut core = GateCore::new(DEADLINE, ALARM);
        core.handle_exit(t0, now_ms, exit(Some(1), doc(), t0), None);
        let out = core.flush(t0, now_ms, None);
        assert_eq!(
            decisions(&out),
            [(DecidedBy::Policy, Some(AlarmReason::NoPolicy))]
        );
        assert_eq!(core.waiting(), 0);
    }

    #[test]
    fn latency_histogram_counts_and_ranks() {
        let mut h = LatencyHistogram::default();
        assert_eq!((h.count(), h.mean(), h.quantile(0.5)), (0, None, None));
        for n in [3, 1, 250, 40, 7000] {
            h.record(ms(n));
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.max(), ms(7000));
        assert_eq!(h.mean(), Some(ms(1458) + Duration::from_micros(800)));
        assert_eq!(h.quantile(0.5), Some(ms(40)));
        assert_eq!(h.quantile(1.0), Some(ms(7000)));
        assert_eq!(h.quantile(0.0), Some(ms(1)));
        let buckets = h.buckets();
        assert_eq!(buckets[0], (Some(1), 1));
        assert_eq!(buckets[2], (Some(5), 1));
        assert_eq!(buckets[5], (Some(50), 1));
        assert_eq!(buckets[8], (Some(300), 1));
        assert_eq!(*buckets.last().unwrap(), (None, 1));
    }

    // ---- The task on a virtual clock, with a stand-in for the alarm driver. ----

    struct Harness {
        exits: mpsc::Sender<Exit>,
        answers: mpsc::Sender<ServerAnswer>,
        commands: mpsc::Receiver<AlarmCommand>,
        status: watch::Sender<AlarmStatus>,
        reports: broadcast::Receiver<GateReport>,
        metrics: Arc<GateMetrics>,
        outbox: Outbox,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    async fn harness(policy: Option<GatePolicy>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        let (exits, exit_rx) = mpsc::channel(8);
        let (answers, answer_rx) = mpsc::channel(8);
        let (alarm, commands, status) = AlarmHandle::detached();
        let signed = policy.map(|policy| {
            Arc::new(SignedPolicy {
                policy,
                body: Bytes::new(),
                signature: String::new(),
            })
        });
        let (_policy_tx, policy_rx) = watch::channel(signed);
        let (reports_tx, reports) = broadcast::channel(16);
        let metrics = Arc::new(GateMetrics::default());
        let (stop, stopped) = watch::channel(false);
        let task = GateTask::new(
            GateCore::new(DEADLINE, ALARM),
            GateChannels {
                exits: exit_rx,
                answers: answer_rx,
                policy: policy_rx,
                policy_requests: None,
                alarm: Some(alarm),
                heartbeat: watch::channel(HeartbeatState::default()).0,
                outbox: outbox.clone(),
                metrics: metrics.clone(),
                reports: reports_tx,
            },
        );
        let task = tokio::spawn(task.run(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));
        Harness {
            exits,
            answers,
            commands,
            status,
            reports,
            metrics,
            outbox,
            stop,
            task,
            _dir: dir,
        }
    }

    impl Harness {
        /// Plays the driver: the coil write completes `after` from now.
        async fn coil_written(&self, after: Duration, lock_door: bool) {
            tokio::time::advance(after).await;
            self.status.send_modify(|s| {
                s.wanted = Outputs::alarm(lock_door);
                s.written = Some(Outputs::alarm(lock_door));
                s.link_up = true;
                s.written_at = Some(Instant::now());
            });
        }

        async fn report(&mut self) -> GateReport {
            self.reports.recv().await.unwrap()
        }

        async fn stop(self) {
            self.stop.send(true).unwrap();
            self.task.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_sounds_on_a_server_alarm_and_measures_to_the_coil() {
        let mut h = harness(None).await;
        let t0 = Instant::now();
        h.exits.send(exit(Some(1), doc(), t0)).await.unwrap();
        tokio::time::advance(ms(20)).await;
        h.answers
            .send(ack(&[(1, alarm("A-1"))], vec![], true))
            .await
            .unwrap();
        assert_eq!(
            h.commands.recv().await,
            Some(AlarmCommand::Sound {
                duration: ALARM.duration,
                lock_door: false
            })
        );
        let GateReport::Decided(d) = h.report().await else {
            panic!("decision first")
        };
        assert_eq!((d.by, d.elapsed), (DecidedBy::Server, ms(20)));
        h.coil_written(ms(7), false).await;
        assert_eq!(
            h.report().await,
            GateReport::CoilWritten {
                event: Some(id(1)),
                by: DecidedBy::Server,
                passage_to_coil: ms(27)
            }
        );
        let hist = h.metrics.passage_to_coil();
        assert_eq!((hist.count(), hist.max()), (1, ms(27)));
        assert_eq!(GateMetrics::get(&h.metrics.server_decisions), 1);
        assert_eq!(GateMetrics::get(&h.metrics.alarms), 1);
        // Another alarm while the coil is on needs no write.
        h.exits
            .send(exit(None, disk(), Instant::now()))
            .await
            .unwrap();
        assert!(matches!(
            h.commands.recv().await,
            Some(AlarmCommand::Sound { .. })
        ));
        // The alarm goes out before the decision is logged.
        assert_eq!(h.report().await, GateReport::CoilAlreadyOn { event: None });
        assert!(matches!(h.report().await, GateReport::Decided(_)));
        h.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_falls_back_to_the_policy_at_the_deadline() {
        let now_ms = crate::model::now_ms();
        let mut h = harness(Some(policy(now_ms))).await;
        let t0 = Instant::now();
        h.exits.send(exit(Some(1), doc(), t0)).await.unwrap();
        let GateReport::Decided(d) = h.report().await else {
            panic!()
        };
        // Decided exactly at the deadline on the virtual clock, and allowed.
        assert_eq!(
            (d.by, d.alarm, d.elapsed),
            (DecidedBy::Policy, None, DEADLINE)
        );
        assert_eq!(Instant::now() - t0, DEADLINE);
        assert!(h.commands.try_recv().is_err(), "no alarm");

        // That deadline passed without a verdict, so the server counts as down and the next
        // exit is decided at once: an unknown carrier alarms, the coil written 4 ms after the
        // notice.
        let t1 = Instant::now();
        h.exits.send(exit(Some(2), disk(), t1)).await.unwrap();
        assert!(matches!(
            h.commands.recv().await,
            Some(AlarmCommand::Sound { .. })
        ));
        let GateReport::Decided(d) = h.report().await else {
            panic!()
        };
        assert_eq!(d.alarm, Some(AlarmReason::UnauthorizedRemoval));
        h.coil_written(ms(4), false).await;
        assert_eq!(
            h.report().await,
            GateReport::CoilWritten {
                event: Some(id(2)),
                by: DecidedBy::Policy,
                passage_to_coil: ms(4)
            }
        );
        assert_eq!(GateMetrics::get(&h.metrics.policy_decisions), 2);
        h.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_never_reactuates_a_decided_exit_and_ignores_untrusted_answers() {
        let now_ms = crate::model::now_ms();
        let mut h = harness(Some(policy(now_ms))).await;
        // The provisional passage, stored before the gate decides.
        let stored = h
            .outbox
            .append(
                now_ms,
                &EventBody::Passage {
                    reader: "uhf-main".into(),
                    direction: custos_protocol::uplink::Direction::Out,
                    tags: vec![],
                    badges: vec![],
                    local_verdict: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(stored, id(1));
        let t0 = Instant::now();
        h.exits.send(exit(Some(1), doc(), t0)).await.unwrap();
        // An unauthenticated alarm is ignored: the policy lets the document go.
        h.answers
            .send(ack(&[(1, alarm("A-1"))], vec![], false))
            .await
            .unwrap();
        let GateReport::Decided(d) = h.report().await else {
            panic!()
        };
        assert_eq!((d.by, d.alarm), (DecidedBy::Policy, None));
        assert_eq!(GateMetrics::get(&h.metrics.untrusted_answers), 1);
        assert!(h.commands.try_recv().is_err());
        // Then the authenticated verdict, late, with the ack's order to sound: the gate decided
        // this passage, so neither is acted on (finding 8: the door locked again seconds after
        // the passage). The decision is reported and counted.
        tokio::time::advance(ms(1_500)).await;
        h.answers
            .send(ack(
                &[(1, alarm("A-1"))],
                vec![Directive::SoundAlarm {
                    duration_ms: 30_000,
                    lock_door: true,
                    alert_id: Some("A-1".into()),
                }],
                true,
            ))
            .await
            .unwrap();
        let GateReport::Decided(d) = h.report().await else {
            panic!()
        };
        assert_eq!(d.by, DecidedBy::LateServer);
        assert_eq!(GateMetrics::get(&h.metrics.late_alarms), 1);
        assert!(h.commands.try_recv().is_err(), "no alarm command");
        assert_eq!(GateMetrics::get(&h.metrics.alarms), 0);
        // The policy's decision is recorded in the stored passage.
        let pending = h.outbox.pending(10).await.unwrap().unwrap();
        let EventBody::Passage { local_verdict, .. } = &pending.events[0].body else {
            panic!("{pending:?}")
        };
        assert_eq!(
            local_verdict.as_ref(),
            Some(&LocalVerdict {
                alarm: false,
                policy_version: 3,
                reason: None
            })
        );
        h.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_without_policy_alarms_and_counts_an_unwritten_coil() {
        let mut h = harness(None).await;
        h.exits
            .send(exit(Some(1), doc(), Instant::now()))
            .await
            .unwrap();
        assert!(matches!(
            h.commands.recv().await,
            Some(AlarmCommand::Sound { .. })
        ));
        let GateReport::Decided(d) = h.report().await else {
            panic!()
        };
        assert_eq!(d.alarm, Some(AlarmReason::NoPolicy));
        // The driver never writes: counted after COIL_WAIT_MAX.
        assert_eq!(
            h.report().await,
            GateReport::CoilNotWritten { event: Some(id(1)) }
        );
        assert_eq!(GateMetrics::get(&h.metrics.coil_not_written), 1);
        h.stop().await;
    }
}
