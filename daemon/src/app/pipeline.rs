//! The *pipeline* task is the only owner of the smoothers (pure state machines): it feeds them the
//! reads, polls them after every batch of reads and every [`POLL_INTERVAL`], and stores what they
//! produce in the outbox (on disk before anything else happens with it): scans, cabinet snapshots,
//! gate passages (see [`gate`](crate::gate) for how crossing notices become provisional passages
//! and final passages are not stored twice; carriers of a provisional passage that went back where
//! they came from are stored as a `TurnedBack` event naming that passage's seq), and reader health
//! changes (an event only when a reader's state or fault changes; the latest health of every reader
//! goes into the heartbeat state, which lists a reader from its first report on: one that has not
//! reported yet is unknown, not faulty, and its driver reports it as not answering once its reply
//! timeout has passed). It hands every outward crossing to the gate task. With both photo-eyes
//! configured it feeds their changes to the gate smoothers (`use_beams`), before any read that
//! arrives after them. A cabinet smoother is polled only while its reader works (it reported a
//! state other than fault, or reads arrive): a silent reader would make every tag "disappear", and
//! the first count must not start before the reader does. A cabinet reader back from a fault gets a
//! fresh smoother, whose first count lists everything present, rather than reporting as removed
//! what it could not read meanwhile. Staff badges for the gate smoothers come from the policy (its
//! borrower badges).
//!
//! # Outbox full
//!
//! When the outbox refuses an event (full, or failing), nothing already stored is dropped; the
//! refused event is counted, the `outbox_full` (or `storage_error`) device fault is raised in
//! the heartbeat state at once and logged, and the gate still decides the exit (from the policy,
//! since no server verdict can come for an event that was not stored). Once an event is stored
//! again, a `DeviceFault` event records how many events were refused, and the fault clears.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use custos_protocol::epc::Epc;
use custos_protocol::modbus_map::{Beam, GateInputs};
use custos_protocol::uplink::{DeviceFaultKind, Direction, EventBody, HealthState, ReaderFault};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::settings::{cabinet_config, gate_config, uses_beams};
use super::{FAULT_RETRY, Metrics, POLL_INTERVAL, READ_BATCH, bump};
use crate::actuators::InputChange;
use crate::config::{Config, Placement};
use crate::gate::Exit;
use crate::model::{ReaderName, ReaderOutput, now_ms};
use crate::outbox::{EventId, Outbox, OutboxError};
use crate::policy::{self, CurrentPolicy};
use crate::smoothing::{CabinetConfig, CabinetSmoother, GateSmoother, Output, PassageId, Side};
use crate::uplink::HeartbeatState;

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
    /// The GPIs of its photo-eyes (inner, outer), for an LLRP reader wired to them.
    beam_gpis: Option<(u16, u16)>,
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
pub(super) struct Pipeline {
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
    pub(super) fn new(
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
                    beam_gpis: r.reader_io.inner_beam_gpi.zip(r.reader_io.outer_beam_gpi),
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

    pub(super) async fn run(
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
            ReaderOutput::Input { reader, port, high } => {
                tracing::debug!(%reader, port, high, "reader input changed");
                let Some((inner, outer)) = self.slot(&reader).and_then(|s| s.beam_gpis) else {
                    return;
                };
                // Normally closed, like the gate I/O module's inputs: high = beam intact.
                let beam = Some(if high { Beam::Intact } else { Beam::Broken });
                let inputs = GateInputs {
                    inner_beam: beam.filter(|_| port == inner),
                    outer_beam: beam.filter(|_| port == outer),
                    door: None,
                };
                self.beams(inputs, now_ms());
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
