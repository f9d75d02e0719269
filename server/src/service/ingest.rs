//! Device ingest: signed batches, heartbeats and failed authentications, each one transaction.
//!
//! A batch is one transaction ([`batch_in`]): the sequencing decision
//! ([`rules::plan_batch`]), every new event stored in `events` with the verdict answered for
//! it, and all of its effects (alerts, carrier `last_seen_*`, the carriers' history,
//! tag sightings, cabinet contents, pending removals, returns, device health), the epoch's
//! `acked_through` and one `device.batch` audit entry. The answer is given only after that
//! transaction has committed, so an ack always means "durably stored". Refusals (gap, replay,
//! clock) are answers too; a batch holding a new event whose time is not plausible
//! ([`custos_protocol::uplink::event_time_plausible`]: more than the heartbeat skew in the
//! future, or more than a year old) is refused whole, before anything is stored, with a
//! `reader_fault` (`clock_skew`) alert: its seqs stay free, the daemon restamps the event and
//! sends it again, so nothing behind it is lost. Refusals (gap, replay,
//! clock) are answers too: the transaction returns them with the `replay_rejected` (or
//! `clock_skew`) alert it raised, so the alert commits even though the device's request fails.
//!
//! A re-delivered batch is answered from storage: the verdicts stored with its events, the
//! directives derived from them, nothing stored or raised again. If a re-delivered event's
//! content differs from what is stored under its seq, the batch is refused as a replay.
//!
//! Each event body is encoded to JSON once, before the transaction is queued
//! ([`EncodedBatch`]): the store's single writer thread only stores and compares that text.
//!
//! # One passage
//! `Ingest::passage` reads as the rule: load what the register knows of every tag and badge
//! read ([`crate::store::IngestRows`]), ask [`gate::judge`], then write its alerts, the event
//! with its verdict, each carrier's history line, `last_seen` and tag sighting. Cabinet
//! snapshots follow the same three steps with [`cabinet::reconcile`].
//!
//! # Heartbeats
//! Heartbeats are not audited: they change only liveness telemetry, and one entry per device
//! every few seconds would bury the trail. A heartbeat replaces the device's health document
//! (its layout is in [`crate::store::ingest`]); a reader that turns `fault`, or a device fault
//! newly listed, raises `reader_fault` (one cause per reader, one per device and fault kind).

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    Batch, BatchAck, DeviceFault, DeviceFaultKind, Directive, Event, EventBody, HealthState,
    Heartbeat, HeartbeatAck, MAX_ANSWER_ITEMS, NamedHealth, Outcome, ReaderHealth, ScannedCode,
    Verdict, event_time_plausible,
};
use serde_json::{Value, json};

use super::{ServiceError, policy, signouts};
use crate::AppState;
use crate::audit::NewEntry;
use crate::domain::alert::NewAlert;
use crate::domain::cabinet::{self, CabinetCarrier, Custody};
use crate::domain::carrier::CarrierState;
use crate::domain::destruction;
use crate::domain::device::DeviceKind;
use crate::domain::gate::{self, BadgeHolder, CarrierAtGate, Gate, Passage};
use crate::domain::ids::{CarrierId, DeviceId};
use crate::domain::ingest::{
    self as rules, ALARM_DURATION_MS, AuthFailure, BatchPlan, BatchRefusal, HeartbeatRefusal,
};
use crate::domain::level::{Level, ZoneLevel};
use crate::domain::time::Timestamp;
use crate::store::ingest::{CarrierEvent, DeviceAuth, NewEvent, Sighting, TagCarrier};
use crate::store::{StoreError, Tx};

/// Settings of the ingest rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRules {
    /// The same tag at two devices closer in time than this is a suspected clone (0 = off).
    pub min_tag_travel_ms: i64,
    /// The carrier levels whose gate exits need the borrower's badge read.
    pub badge_required: Vec<Level>,
    /// How long a confidentiality commitment lasts, in months (0 = it does not expire): a
    /// borrower's badge authorises exits only while training and commitment hold.
    pub commitment_valid_months: u32,
}

impl IngestRules {
    /// The rules as configured.
    pub fn of(app: &AppState) -> IngestRules {
        IngestRules {
            min_tag_travel_ms: i64::try_from(app.settings().tag_clone_min_travel.as_millis())
                .unwrap_or(i64::MAX),
            badge_required: app.settings().badge_required.clone(),
            commitment_valid_months: app.settings().people.commitment_valid_months,
        }
    }
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchAnswer {
    /// Stored (or stored before): the ack to sign and send.
    Ack(BatchAck),
    /// Refused: it would leave a gap; resend from `resend_from`.
    Gap {
        /// The first seq the server lacks in that epoch.
        resend_from: u64,
    },
    /// Refused as a replay (old epoch, or content differing from what is stored).
    Replay {
        /// Why.
        message: String,
    },
    /// Refused: a new event's time is outside what the register can hold
    /// ([`custos_protocol::uplink::event_time_plausible`]); nothing of the batch is stored and
    /// no seq is consumed, so the device can restamp that event and send the batch again.
    ClockSkew {
        /// The first offending event.
        seq: u64,
        /// Its time.
        at_ms: i64,
    },
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatAnswer {
    /// Accepted: the ack to sign and send.
    Ack(HeartbeatAck),
    /// Refused: not newer than the last accepted one.
    Replay {
        /// Why.
        message: String,
    },
    /// Refused: the device clock is too far from the server's.
    ClockSkew,
}

/// An answer and the alerts raised (or repeated) on the way, for the alert hub after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested<T> {
    /// The answer.
    pub answer: T,
    /// Ids of alerts raised or repeated.
    pub alerts: Vec<i64>,
}

/// The device registered under `id`, if any (the first step of authenticating a request).
pub async fn device(app: &AppState, id: &str) -> Result<Option<DeviceAuth>, ServiceError> {
    let Ok(id) = DeviceId::new(id) else {
        return Ok(None);
    };
    app.store().query(move |tx| Ok(tx.device_auth(&id)?)).await
}

/// Raise `device_auth_failed` for a request that claimed to be `claimed` (one live alert per
/// registered device; one for every unregistered id together); the consoles are told after
/// commit.
pub async fn record_auth_failure(
    app: &AppState,
    claimed: String,
    failure: AuthFailure,
    endpoint: &'static str,
) -> Result<(), ServiceError> {
    let now_ms = rules::unix_ms(app.now());
    let ids = app
        .store()
        .transact(move |tx| auth_failure_in(tx, &claimed, &failure, endpoint, now_ms))
        .await?;
    app.alerts().notify(ids);
    Ok(())
}

fn auth_failure_in(
    tx: &mut dyn Tx,
    claimed: &str,
    failure: &AuthFailure,
    endpoint: &str,
    now_ms: i64,
) -> Result<Vec<i64>, ServiceError> {
    let registered = match DeviceId::new(claimed) {
        Ok(id) => tx.device_auth(&id)?.is_some(),
        Err(_) => false,
    };
    let alert = rules::auth_failed_alert(claimed, registered, failure, endpoint, now_ms);
    Ok(vec![tx.raise_alert(&alert)?.id()])
}

/// A batch with each event's body encoded as the JSON it is stored as.
///
/// Encoding happens once per event, here, on the request's task rather than on the store's
/// single writer thread: the same text is stored in `events.body_json` and, for a
/// re-delivered event, compared with what is stored.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    batch: Batch,
    bodies: Vec<String>,
}

impl EncodedBatch {
    /// Encode every event body of `batch`.
    pub fn new(batch: Batch) -> Result<EncodedBatch, ServiceError> {
        let bodies = batch
            .events
            .iter()
            .map(|e| serde_json::to_string(&e.body))
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)?;
        Ok(EncodedBatch { batch, bodies })
    }
}

/// Store a batch from an authenticated device (its signature verified, its body parsed,
/// validated and naming `device`) with every effect, in one transaction; the consoles are
/// told of its alerts after commit.
pub async fn batch(
    app: &AppState,
    device: DeviceAuth,
    batch: Batch,
) -> Result<BatchAnswer, ServiceError> {
    let rules = IngestRules::of(app);
    let now = app.now();
    let batch = EncodedBatch::new(batch)?;
    let ingested = app
        .store()
        .transact(move |tx| batch_in(tx, &device, &batch, rules, now))
        .await?;
    app.alerts().notify(ingested.alerts);
    Ok(ingested.answer)
}

/// Accept or refuse a heartbeat from an authenticated device, in one transaction.
pub async fn heartbeat(
    app: &AppState,
    device: DeviceAuth,
    heartbeat: Heartbeat,
) -> Result<HeartbeatAnswer, ServiceError> {
    let now = app.now();
    let rules = IngestRules::of(app);
    let ingested = app
        .store()
        .transact(move |tx| heartbeat_in(tx, &device, &heartbeat, rules, now))
        .await?;
    app.alerts().notify(ingested.alerts);
    Ok(ingested.answer)
}

fn corrupt(what: String) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(what))
}

fn event_kind(body: &EventBody) -> &'static str {
    match body {
        EventBody::Passage { .. } => "passage",
        EventBody::CabinetSnapshot { .. } => "cabinet_snapshot",
        EventBody::Scan { .. } => "scan",
        EventBody::ReaderHealth { .. } => "reader_health",
        EventBody::DeviceFault { .. } => "device_fault",
        EventBody::TurnedBack { .. } => "turned_back",
    }
}

fn timestamp_of_ms(ms: i64) -> Timestamp {
    // Clamped into the representable range; only used for audit display times.
    Timestamp::from_unix(ms.div_euclid(1000))
        .unwrap_or_else(|| Timestamp::from_unix(0).expect("the epoch is representable"))
}

/// One batch's or heartbeat's transaction, and the alerts it raised so far.
struct Ingest<'a> {
    tx: &'a mut dyn Tx,
    device: &'a DeviceAuth,
    now_ms: i64,
    rules: IngestRules,
    alerts: Vec<i64>,
}

impl<'a> Ingest<'a> {
    fn new(tx: &'a mut dyn Tx, device: &'a DeviceAuth, now: Timestamp, rules: IngestRules) -> Self {
        Ingest {
            tx,
            device,
            now_ms: rules::unix_ms(now),
            rules,
            alerts: Vec::new(),
        }
    }

    fn dev(&self) -> &'a str {
        self.device.id.as_str()
    }

    fn actor(&self) -> String {
        format!("@device:{}", self.device.id)
    }

    fn raise(&mut self, alert: &NewAlert) -> Result<i64, ServiceError> {
        let id = self.tx.raise_alert(alert)?.id();
        if !self.alerts.contains(&id) {
            self.alerts.push(id);
        }
        Ok(id)
    }

    fn done<T>(self, answer: T) -> Ingested<T> {
        Ingested {
            answer,
            alerts: self.alerts,
        }
    }

    /// A line in a carrier's history for `event`.
    fn history(
        &mut self,
        carrier: i64,
        event: i64,
        at_ms: i64,
        kind: &'static str,
        direction: Option<&str>,
    ) -> Result<(), ServiceError> {
        let device = self.dev();
        self.tx.insert_carrier_event(&CarrierEvent {
            carrier,
            event,
            at_ms,
            kind,
            device,
            direction,
        })?;
        Ok(())
    }

    /// Record a sighting of `epc` (whose last one was `previous`) and raise
    /// `tag_clone_suspected` if it cannot be the same tag.
    fn sighting(
        &mut self,
        epc: &Epc,
        tag: &str,
        carrier: Option<i64>,
        at_ms: i64,
        previous: Option<&Sighting>,
    ) -> Result<(), ServiceError> {
        let dev = self.dev();
        let prev = previous.map(|s| (s.device.as_str(), s.at_ms));
        if gate::clone_suspected(prev, dev, at_ms, self.rules.min_tag_travel_ms) {
            if let Some(prev) = prev {
                self.raise(&gate::clone_alert(epc, carrier, prev, dev, at_ms))?;
            }
        }
        self.tx.record_sighting(tag, dev, at_ms)?;
        Ok(())
    }

    /// [`Ingest::sighting`], reading the previous sighting first.
    fn sighting_of(
        &mut self,
        epc: &Epc,
        carrier: Option<i64>,
        at_ms: i64,
    ) -> Result<(), ServiceError> {
        let tag = rules::epc_tag(epc);
        let previous = self.tx.last_sighting(&tag)?;
        self.sighting(epc, &tag, carrier, at_ms, previous.as_ref())
    }

    /// Store an event (with the verdict answered for it, if it was judged); its row id.
    fn store_event(
        &mut self,
        epoch: u64,
        event: &Event,
        body_json: &str,
        verdict_json: Option<&str>,
    ) -> Result<i64, ServiceError> {
        Ok(self.tx.insert_event(&NewEvent {
            device: self.dev(),
            epoch,
            seq: event.seq,
            at_ms: event.at_ms,
            received_at_ms: self.now_ms,
            kind: event_kind(&event.body),
            body_json,
            verdict_json,
        })?)
    }

    /// Store one new event and apply its effects; the verdict for a judged passage.
    fn event(
        &mut self,
        epoch: u64,
        event: &Event,
        body_json: &str,
        gate: Option<(ZoneLevel, ZoneLevel)>,
    ) -> Result<Option<Verdict>, ServiceError> {
        let kind = self.device.kind;
        if let (EventBody::Passage { .. }, DeviceKind::Gate) = (&event.body, kind) {
            let sides =
                gate.ok_or_else(|| corrupt(format!("gate {} without zones", self.dev())))?;
            return self.passage(sides, epoch, event, body_json).map(Some);
        }
        // Everything but a gate's passage: stored first, then its effects (none is judged).
        let event_id = self.store_event(epoch, event, body_json, None)?;
        match (&event.body, kind) {
            (EventBody::CabinetSnapshot { .. }, DeviceKind::Cabinet) => {
                self.cabinet_snapshot(event, event_id)?;
            }
            (EventBody::TurnedBack { .. }, DeviceKind::Gate) => {
                self.turned_back(epoch, event, event_id)?;
            }
            (
                EventBody::Passage { .. }
                | EventBody::CabinetSnapshot { .. }
                | EventBody::TurnedBack { .. },
                kind,
            ) => {
                tracing::warn!(
                    device = self.dev(),
                    kind = kind.as_str(),
                    event = event_kind(&event.body),
                    "event does not fit the device kind; stored, not judged"
                );
            }
            (EventBody::Scan { code, .. }, _) => self.scan(code, event, event_id)?,
            (EventBody::ReaderHealth { reader, health }, _) => {
                self.reader_health(reader, health, event.at_ms)?;
            }
            (EventBody::DeviceFault { kind, detail }, _) => {
                let alert = rules::device_fault_alert(self.dev(), *kind, detail, event.at_ms);
                self.raise(&alert)?;
            }
        }
        Ok(None)
    }

    /// Judge a passage through a gate, store it with its verdict and record its effects.
    ///
    /// A carrier `in_storage` cannot be on a live sign-out (issuing one moves it `out`,
    /// returning it from the last one moves it back), and the rules only consult the sign-outs
    /// of a carrier that is `out`; so its sign-outs are not looked up. Every other state is.
    fn passage(
        &mut self,
        (inside, outside): (ZoneLevel, ZoneLevel),
        epoch: u64,
        event: &Event,
        body_json: &str,
    ) -> Result<Verdict, ServiceError> {
        let EventBody::Passage {
            reader,
            direction,
            tags,
            badges,
            ..
        } = &event.body
        else {
            return Err(corrupt("passage expected".to_owned()));
        };
        // What the register knows of every tag and badge read.
        let mut carriers: Vec<CarrierAtGate> = Vec::new();
        let mut last_seen: Vec<(String, Option<Sighting>)> = Vec::new();
        let mut unknown: Vec<Epc> = Vec::new();
        let mut badge_epcs: Vec<Epc> = badges.iter().map(|b| b.epc).collect();
        // Declassified carriers are off the secrecy register: seen (history), never judged.
        let mut off_register: Vec<(i64, Epc, String, Option<Sighting>)> = Vec::new();
        for t in tags {
            let tag = rules::epc_tag(&t.epc);
            if let Some((c, last)) = self.tx.gate_carrier_by_tag(&tag)? {
                self.destroyed_seen(&c, event.at_ms)?;
                if c.state == CarrierState::Declassified {
                    if off_register.iter().all(|known| known.0 != c.id) {
                        off_register.push((c.id, t.epc, tag, last));
                    }
                } else if carriers.iter().all(|known| known.carrier_id != c.id) {
                    carriers.push(self.at_gate(c, t.epc)?);
                    last_seen.push((tag, last));
                }
            } else if self.tx.person_by_badge(&t.epc)?.is_some() {
                // A badge the daemon filed among the carrier tags: it is a badge all the same.
                badge_epcs.push(t.epc);
            } else if !unknown.contains(&t.epc) {
                unknown.push(t.epc);
            }
        }
        let mut holders: Vec<BadgeHolder> = Vec::new();
        for epc in &badge_epcs {
            if let Some(h) = self.tx.person_by_badge(epc)? {
                if holders.iter().all(|known| known.person_id != h.person_id) {
                    holders.push(h);
                }
            }
        }
        // The rule.
        let judgement = gate::judge(
            &Gate {
                device_id: self.dev(),
                inside,
                outside,
                badge_required: &self.rules.badge_required,
            },
            &Passage {
                reader,
                direction: *direction,
                carriers: &carriers,
                unknown: &unknown,
                badges: &badge_epcs,
                holders: &holders,
                at_ms: event.at_ms,
                now_ms: self.now_ms,
            },
        );
        // Its effects: the alerts, the event with its verdict, each carrier's history.
        let mut ids = Vec::with_capacity(judgement.alerts.len());
        for alert in &judgement.alerts {
            ids.push(self.raise(alert)?);
        }
        let outcome = match judgement.alarm {
            Some((reason, index)) => Outcome::Alarm {
                reason,
                alert_id: ids.get(index).map(i64::to_string),
            },
            None => Outcome::Allowed,
        };
        let verdict_json = serde_json::to_string(&outcome).map_err(StoreError::from)?;
        let event_id = self.store_event(epoch, event, body_json, Some(&verdict_json))?;
        let direction = Some(direction.as_str());
        for (c, (tag, last)) in carriers.iter().zip(last_seen) {
            self.history(c.carrier_id, event_id, event.at_ms, "passage", direction)?;
            self.tx.mark_seen(c.carrier_id, self.dev(), event.at_ms)?;
            self.sighting(&c.epc, &tag, Some(c.carrier_id), event.at_ms, last.as_ref())?;
        }
        for (id, epc, tag, last) in off_register {
            self.history(id, event_id, event.at_ms, "passage", direction)?;
            self.tx.mark_seen(id, self.dev(), event.at_ms)?;
            self.sighting(&epc, &tag, Some(id), event.at_ms, last.as_ref())?;
        }
        for epc in &unknown {
            self.sighting_of(epc, None, event.at_ms)?;
        }
        Ok(Verdict {
            seq: event.seq,
            outcome,
        })
    }

    /// Raise `destroyed_seen` if `c` is a destroyed carrier (its retired tag was read by this
    /// device at `at_ms`): the destruction record and the world disagree.
    fn destroyed_seen(&mut self, c: &TagCarrier, at_ms: i64) -> Result<(), ServiceError> {
        if let Some(alert) = destruction::destroyed_seen_alert(
            CarrierId(c.id),
            c.state,
            &c.control_no,
            c.level,
            self.dev(),
            at_ms,
        ) {
            self.raise(&alert)?;
        }
        Ok(())
    }

    /// A carrier read at the gate, with the sign-outs the rules consult.
    fn at_gate(&mut self, c: TagCarrier, epc: Epc) -> Result<CarrierAtGate, ServiceError> {
        let in_storage = c.state == CarrierState::InStorage;
        let signouts = if in_storage {
            Vec::new()
        } else {
            self.tx
                .active_signouts(c.id, self.rules.commitment_valid_months)?
        };
        Ok(CarrierAtGate {
            carrier_id: c.id,
            epc,
            control_no: c.control_no,
            level: c.level,
            out: c.state == CarrierState::Out,
            signouts,
            dispatch_until_ms: if c.state == CarrierState::Dispatched {
                self.tx.dispatch_window(CarrierId(c.id))?
            } else {
                None
            },
        })
    }

    /// A carrier as a cabinet reconciliation sees it.
    fn in_cabinet(&mut self, c: TagCarrier) -> Result<CabinetCarrier, ServiceError> {
        let in_other_cabinet = self.tx.in_other_cabinet(c.id, self.dev())?;
        Ok(CabinetCarrier {
            carrier_id: c.id,
            custody: Custody::from_stored(c.state.as_str())
                .ok_or_else(|| corrupt(format!("carrier state {:?}", c.state.as_str())))?,
            control_no: c.control_no,
            level: c.level,
            home_device: c.home_device,
            in_other_cabinet,
            since_issue: None,
        })
    }

    /// Reconcile a cabinet snapshot (see `domain::cabinet`).
    fn cabinet_snapshot(&mut self, event: &Event, event_id: i64) -> Result<(), ServiceError> {
        let EventBody::CabinetSnapshot {
            reader,
            present,
            added,
            removed,
        } = &event.body
        else {
            return Err(corrupt("cabinet snapshot expected".to_owned()));
        };
        let dev = self.dev();
        if added.iter().any(|e| !present.contains(e)) || removed.iter().any(|e| present.contains(e))
        {
            tracing::warn!(device = dev, %reader, "cabinet diff disagrees with its inventory; the inventory wins");
        }
        // What the register knows: the carriers present, what the cabinet held, its removals.
        let mut here = Vec::new();
        let mut here_epcs = Vec::new();
        for epc in present {
            let Some(c) = self.tx.carrier_by_tag(&rules::epc_tag(epc))? else {
                continue;
            };
            self.destroyed_seen(&c, event.at_ms)?;
            if here
                .iter()
                .any(|known: &CabinetCarrier| known.carrier_id == c.id)
            {
                continue;
            }
            here_epcs.push((*epc, c.id));
            let mut carrier = self.in_cabinet(c)?;
            if carrier.custody == Custody::Out {
                carrier.since_issue = self.tx.since_issue(carrier.carrier_id, dev)?;
            }
            here.push(carrier);
        }
        let mut previous = Vec::new();
        for id in self.tx.cabinet_contents(dev)? {
            let c = self.tx.carrier_by_id(id)?;
            previous.push(self.in_cabinet(c)?);
        }
        let pending_here = self.tx.pending_removals_at(dev)?;
        // The rule.
        let plan = cabinet::reconcile(&cabinet::Snapshot {
            device_id: dev,
            present: &here,
            previous: &previous,
            pending_here: &pending_here,
            at_ms: event.at_ms,
        });
        // Its effects.
        let at_ms = event.at_ms;
        for id in &plan.arrived {
            self.tx.add_to_cabinet(dev, *id, at_ms)?;
            self.history(*id, event_id, at_ms, "cabinet", Some("in"))?;
        }
        for id in &plan.departed {
            self.tx.remove_from_cabinet(dev, *id)?;
            self.history(*id, event_id, at_ms, "cabinet", Some("out"))?;
        }
        for id in &plan.pending_clear {
            self.tx.clear_pending_removals(*id)?;
        }
        for id in &plan.pending_clear_here {
            self.tx
                .drop_pending_removal(&self.device.id, CarrierId(*id))?;
        }
        for id in &plan.pending_add {
            self.tx.add_pending_removal(dev, *id, at_ms)?;
        }
        if !plan.returned.is_empty() {
            let at = Timestamp::from_unix_ms(at_ms)
                .ok_or_else(|| corrupt(format!("time out of range: {at_ms}")))?;
            for id in &plan.returned {
                signouts::record_cabinet_return(self.tx, CarrierId(*id), &self.device.id, at)?;
            }
        }
        for id in &plan.found {
            self.found(*id, at_ms)?;
        }
        for alert in &plan.alerts {
            self.raise(alert)?;
        }
        for (epc, id) in here_epcs {
            self.tx.mark_seen(id, dev, at_ms)?;
            self.sighting_of(&epc, Some(id), at_ms)?;
        }
        Ok(())
    }

    /// A missing carrier is back in its home cabinet: in storage again (the `missing` alert
    /// stays for a person to resolve).
    fn found(&mut self, carrier: i64, at_ms: i64) -> Result<(), ServiceError> {
        if self.tx.mark_found(carrier)? {
            let entry = NewEntry {
                at: timestamp_of_ms(self.now_ms),
                actor: self.actor(),
                action: "carrier.found",
                subject: format!("carrier:{carrier}"),
                before: Some(json!({ "state": "missing" })),
                after: Some(json!({ "state": "in_storage", "device": self.dev(), "at_ms": at_ms })),
            };
            self.tx.append_audit(&entry)?;
        }
        Ok(())
    }

    fn scan(
        &mut self,
        code: &ScannedCode,
        event: &Event,
        event_id: i64,
    ) -> Result<(), ServiceError> {
        let tag = match code {
            ScannedCode::Barcode { text } => rules::barcode_tag(text),
            ScannedCode::EmCard { id } => rules::em_tag(id),
        };
        if let Some(c) = self.tx.carrier_by_tag(&tag)? {
            self.destroyed_seen(&c, event.at_ms)?;
            self.history(c.id, event_id, event.at_ms, "scan", None)?;
            self.tx.mark_seen(c.id, self.dev(), event.at_ms)?;
        }
        Ok(())
    }

    /// The stored health document of this device (an empty object if none).
    fn health_doc(&mut self) -> Result<Value, ServiceError> {
        let text = self.tx.health_json(self.dev())?;
        Ok(text
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({})))
    }

    fn reader_health(
        &mut self,
        reader: &str,
        health: &ReaderHealth,
        at_ms: i64,
    ) -> Result<(), ServiceError> {
        let mut doc = self.health_doc()?;
        let previous = stored_state(&doc, reader);
        if !doc["readers"].is_object() {
            doc["readers"] = json!({});
        }
        doc["readers"][reader] = serde_json::to_value(health).map_err(StoreError::from)?;
        self.tx.set_health(self.dev(), &doc.to_string())?;
        if rules::newly_faulty(previous, health.state) {
            let alert = rules::reader_fault_alert(self.dev(), reader, health, at_ms);
            self.raise(&alert)?;
        }
        Ok(())
    }

    /// Carriers of an earlier passage of this gate went back where they came from: a
    /// `turned_back` history entry (with the passage's direction) for each named carrier that
    /// the passage recorded. The passage, its verdict and its alerts stay as they are: the
    /// attempt happened. A passage that is not there (or names none of the tags) gets nothing;
    /// the event is stored all the same, so its batch is acknowledged.
    fn turned_back(
        &mut self,
        epoch: u64,
        event: &Event,
        event_id: i64,
    ) -> Result<(), ServiceError> {
        let EventBody::TurnedBack {
            passage_seq, tags, ..
        } = &event.body
        else {
            return Err(corrupt("turned_back expected".to_owned()));
        };
        let dev = self.dev();
        let Some(passage_id) = self.tx.passage_event(dev, epoch, *passage_seq)? else {
            tracing::warn!(
                device = dev,
                epoch,
                passage_seq,
                "turned_back names no passage of this device; stored, no history"
            );
            return Ok(());
        };
        for epc in tags {
            let Some(carrier) = self.tx.carrier_by_tag(&rules::epc_tag(epc))? else {
                continue;
            };
            let Some(direction) = self.tx.passage_direction(carrier.id, passage_id)? else {
                continue;
            };
            self.history(
                carrier.id,
                event_id,
                event.at_ms,
                "turned_back",
                direction.as_deref(),
            )?;
            self.tx.mark_seen(carrier.id, dev, event.at_ms)?;
            self.mark_removal_turned_back(carrier.id, event.at_ms)?;
        }
        Ok(())
    }

    /// The live unauthorised-removal alerts of `carrier` at this gate learn that it turned
    /// back (the guard's banner then says so); the consoles are told after commit.
    fn mark_removal_turned_back(&mut self, carrier: i64, at_ms: i64) -> Result<(), ServiceError> {
        let filter = crate::store::alerts::AlertFilter {
            kind: Some(crate::domain::alert::AlertKind::UnauthorizedRemoval),
            carrier_id: Some(carrier),
            device_id: Some(self.dev().to_owned()),
            limit: 10,
            ..Default::default()
        };
        let at = Timestamp::from_unix_ms_saturating(at_ms).to_string();
        for alert in self.tx.alerts(&filter)? {
            if alert.state == crate::domain::alert::AlertState::Resolved {
                continue;
            }
            let (Ok(id), Some(detail)) = (
                alert.id.parse::<i64>(),
                gate::turned_back_detail(&alert.detail, &at),
            ) else {
                continue;
            };
            self.tx.set_alert_detail(id, &detail)?;
            if !self.alerts.contains(&id) {
                self.alerts.push(id);
            }
        }
        Ok(())
    }

    /// The stored verdicts of `events` (already stored; `bodies` their encoded bodies),
    /// checking that each re-delivered event is the one stored. `Err(seq)` names the first
    /// that differs.
    fn stored_verdicts(
        &mut self,
        epoch: u64,
        events: &[Event],
        bodies: &[String],
    ) -> Result<Result<Vec<Verdict>, u64>, ServiceError> {
        let mut verdicts = Vec::new();
        for (event, body_json) in events.iter().zip(bodies) {
            let Some(stored) = self.tx.stored_event(self.dev(), epoch, event.seq)? else {
                return Err(corrupt(format!(
                    "{} epoch {epoch} seq {} acknowledged but not stored",
                    self.dev(),
                    event.seq
                )));
            };
            if stored.at_ms != event.at_ms {
                return Ok(Err(event.seq));
            }
            if stored.body_json != *body_json {
                if !local_verdict_added(&stored.body_json, &event.body) {
                    return Ok(Err(event.seq));
                }
                // The gate decided this passage after its first upload attempt: record it.
                self.tx
                    .set_event_body(self.dev(), epoch, event.seq, body_json)?;
            }
            if let Some(v) = stored.verdict_json {
                let outcome: Outcome = serde_json::from_str(&v)
                    .map_err(|e| corrupt(format!("stored verdict: {e}")))?;
                verdicts.push(Verdict {
                    seq: event.seq,
                    outcome,
                });
            }
        }
        Ok(Ok(verdicts))
    }

    /// The newest gate policy version (0 for other devices): computed now, or for a batch ack
    /// (`recent`) a check at most [`policy::ACK_VERSION_MAX_AGE_MS`] old.
    fn policy_version(&mut self, recent: bool) -> Result<u64, ServiceError> {
        if self.device.kind != DeviceKind::Gate {
            return Ok(0);
        }
        let dev = self.dev();
        let rules = policy::Rules {
            badge_levels: &self.rules.badge_required,
            commitment_valid_months: self.rules.commitment_valid_months,
        };
        Ok(if recent {
            policy::recent_version(self.tx, dev, rules, self.now_ms)?
        } else {
            policy::current(self.tx, dev, rules, self.now_ms)?.0
        })
    }

    /// `SilenceAlarm` for this device's gate alarms that a guard acknowledged or resolved
    /// within the last alarm duration (the gate may still be sounding for them).
    fn silenced_alarms(&mut self, max: usize) -> Result<Vec<Directive>, ServiceError> {
        let since = self
            .now_ms
            .saturating_sub(i64::try_from(ALARM_DURATION_MS).unwrap_or(i64::MAX));
        let ids = self.tx.silenced_gate_alarms(self.dev(), since, max)?;
        Ok(ids
            .into_iter()
            .map(|id| Directive::SilenceAlarm {
                alert_id: id.to_string(),
            })
            .collect())
    }
}

fn stored_state(doc: &Value, reader: &str) -> Option<HealthState> {
    serde_json::from_value(doc["readers"][reader]["state"].clone()).ok()
}

/// The device faults the last accepted heartbeat listed (none before the first).
fn stored_faults(doc: &Value) -> Vec<DeviceFaultKind> {
    serde_json::from_value::<Vec<DeviceFault>>(doc["faults"].clone())
        .map(|faults| faults.into_iter().map(|f| f.kind).collect())
        .unwrap_or_default()
}

/// Whether `new` is the stored passage with only the gate's local verdict recorded since (a
/// gate decides with its policy when the server's verdict is late, possibly after the
/// passage's first upload reached the server; its re-delivery then carries the decision).
/// Any other difference is a replay.
fn local_verdict_added(stored_json: &str, new: &EventBody) -> bool {
    let EventBody::Passage {
        local_verdict: Some(_),
        ..
    } = new
    else {
        return false;
    };
    let Ok(stored) = serde_json::from_str::<EventBody>(stored_json) else {
        return false;
    };
    let mut without = new.clone();
    if let EventBody::Passage { local_verdict, .. } = &mut without {
        *local_verdict = None;
    }
    stored == without
}

/// Whether the gate decided this passage itself (its `local_verdict` is recorded).
fn decided_at_gate(event: &Event) -> bool {
    matches!(
        &event.body,
        EventBody::Passage {
            local_verdict: Some(_),
            ..
        }
    )
}

/// A batch, in `tx`: see the module docs.
pub fn batch_in(
    tx: &mut dyn Tx,
    device: &DeviceAuth,
    encoded: &EncodedBatch,
    rules: IngestRules,
    now: Timestamp,
) -> Result<Ingested<BatchAnswer>, ServiceError> {
    let batch = &encoded.batch;
    let Some((first, last)) = batch.seq_range() else {
        return Err(ServiceError::invalid(
            "events",
            "empty",
            "a batch has events",
        ));
    };
    let mut ctx = Ingest::new(tx, device, now, rules);
    let dev = ctx.dev();
    let acked = ctx
        .tx
        .epoch_record(dev, batch.epoch)?
        .map_or(0, |r| r.acked_through);
    let newest = ctx.tx.newest_epoch_with_events(dev)?;
    let plan = match rules::plan_batch(batch.epoch, first, last, acked, newest) {
        Ok(plan) => plan,
        Err(refusal) => {
            let (answer, reason) = match refusal {
                BatchRefusal::Gap { resend_from } => (
                    BatchAnswer::Gap { resend_from },
                    format!(
                        "epoch {} seqs {first}..={last}: gap, stored through {acked}",
                        batch.epoch
                    ),
                ),
                BatchRefusal::OldEpoch { newest } => {
                    let message = format!(
                        "epoch {} seqs {first}..={last} not stored, and epoch {newest} is newer",
                        batch.epoch
                    );
                    (
                        BatchAnswer::Replay {
                            message: message.clone(),
                        },
                        message,
                    )
                }
            };
            let now_ms = ctx.now_ms;
            ctx.raise(&rules::replay_alert(dev, "batch refused", &reason, now_ms))?;
            return Ok(ctx.done(answer));
        }
    };
    let new_from = match plan {
        BatchPlan::Duplicate => last.saturating_add(1),
        BatchPlan::Store { new_from } => new_from,
    };
    let split = batch.events.partition_point(|e| e.seq < new_from);
    let (old, new) = batch.events.split_at(split);
    let (old_bodies, new_bodies) = encoded.bodies.split_at(split);
    let mut verdicts = match ctx.stored_verdicts(batch.epoch, old, old_bodies)? {
        Ok(v) => v,
        Err(seq) => {
            let message = format!(
                "epoch {} seq {seq} was stored with other content",
                batch.epoch
            );
            let now_ms = ctx.now_ms;
            ctx.raise(&rules::replay_alert(dev, "batch refused", &message, now_ms))?;
            return Ok(ctx.done(BatchAnswer::Replay { message }));
        }
    };
    // A poisoned time (i64 limits, year 10000, a clock reset to 1970) would be stored in every
    // table that lists carriers; refuse the batch before anything of it is stored.
    if let Some(bad) = new
        .iter()
        .find(|e| !event_time_plausible(e.at_ms, ctx.now_ms))
    {
        let now_ms = ctx.now_ms;
        ctx.raise(&rules::clock_skew_alert(dev, bad.at_ms, now_ms))?;
        return Ok(ctx.done(BatchAnswer::ClockSkew {
            seq: bad.seq,
            at_ms: bad.at_ms,
        }));
    }
    if !new.is_empty() {
        let gate = if device.kind == DeviceKind::Gate {
            ctx.tx.gate_sides(dev)?
        } else {
            None
        };
        for (event, body_json) in new.iter().zip(new_bodies) {
            verdicts.extend(ctx.event(batch.epoch, event, body_json, gate)?);
        }
        ctx.tx
            .set_acked_through(dev, batch.epoch, last, ctx.now_ms)?;
        let entry = NewEntry {
            at: now,
            actor: ctx.actor(),
            action: "device.batch",
            subject: format!("device:{dev}"),
            before: Some(json!({ "epoch": batch.epoch, "acked_through": acked })),
            after: Some(json!({
                "epoch": batch.epoch,
                "acked_through": last,
                "stored": new.len(),
                "alerts": ctx.alerts,
            })),
        };
        ctx.tx.append_audit(&entry)?;
    }
    verdicts.truncate(MAX_ANSWER_ITEMS);
    // A passage the gate decided itself (offline, with its policy: `local_verdict` set) gets
    // its verdict and its alert, but no `SoundAlarm`: the gate must not act on it again
    // seconds after the person went through (issue 9, finding 8).
    let to_actuate: Vec<Verdict> = verdicts
        .iter()
        .filter(|v| {
            !batch
                .events
                .iter()
                .any(|e| e.seq == v.seq && decided_at_gate(e))
        })
        .cloned()
        .collect();
    let directives = rules::alarm_directives(&to_actuate);
    let ack = BatchAck {
        device_id: dev.to_owned(),
        epoch: batch.epoch,
        acked_through: last,
        verdicts,
        directives,
        policy_version: ctx.policy_version(true)?,
    };
    Ok(ctx.done(BatchAnswer::Ack(ack)))
}

/// A heartbeat, in `tx`: accepted if newer than the last and in step with the server's clock.
/// `rules` matter for the policy version it answers (the policy's contents depend on them).
pub fn heartbeat_in(
    tx: &mut dyn Tx,
    device: &DeviceAuth,
    hb: &Heartbeat,
    rules: IngestRules,
    now: Timestamp,
) -> Result<Ingested<HeartbeatAnswer>, ServiceError> {
    let mut ctx = Ingest::new(tx, device, now, rules);
    let dev = ctx.dev();
    let now_ms = ctx.now_ms;
    let newest = ctx.tx.newest_epoch(dev)?;
    if let Err(refusal) = rules::check_heartbeat(newest, hb.epoch, hb.hb_seq) {
        let message = match refusal {
            HeartbeatRefusal::OldEpoch { newest } => {
                format!("heartbeat of epoch {} after epoch {newest}", hb.epoch)
            }
            HeartbeatRefusal::NotNewer { last } => format!(
                "heartbeat {} of epoch {} is not after {last}",
                hb.hb_seq, hb.epoch
            ),
        };
        ctx.raise(&rules::replay_alert(
            dev,
            "heartbeat refused",
            &message,
            now_ms,
        ))?;
        return Ok(ctx.done(HeartbeatAnswer::Replay { message }));
    }
    if !rules::clock_in_step(hb.at_ms, now_ms) {
        ctx.raise(&rules::clock_skew_alert(dev, hb.at_ms, now_ms))?;
        return Ok(ctx.done(HeartbeatAnswer::ClockSkew));
    }
    ctx.tx.set_hb_seq(dev, hb.epoch, hb.hb_seq, now_ms)?;
    let previous = ctx.health_doc()?;
    let mut readers = serde_json::Map::new();
    for NamedHealth { reader, health } in &hb.readers {
        readers.insert(
            reader.clone(),
            serde_json::to_value(health).map_err(StoreError::from)?,
        );
    }
    let doc = json!({
        "readers": readers,
        "outbox_depth": hb.outbox_depth,
        "held_policy_version": hb.policy_version,
        "device_at_ms": hb.at_ms,
        "faults": hb.faults,
    });
    ctx.tx.set_heartbeat(dev, now_ms, &doc.to_string())?;
    for NamedHealth { reader, health } in &hb.readers {
        if rules::newly_faulty(stored_state(&previous, reader), health.state) {
            ctx.raise(&rules::reader_fault_alert(dev, reader, health, now_ms))?;
        }
    }
    let standing = stored_faults(&previous);
    for fault in hb.faults.iter().filter(|f| !standing.contains(&f.kind)) {
        ctx.raise(&rules::device_fault_alert(
            dev,
            fault.kind,
            &fault.detail,
            now_ms,
        ))?;
    }
    let version = ctx.policy_version(false)?;
    let mut directives = Vec::new();
    if device.kind == DeviceKind::Gate && hb.policy_version < version {
        directives.push(Directive::RefreshPolicy);
    }
    directives.extend(ctx.silenced_alarms(MAX_ANSWER_ITEMS - directives.len())?);
    let ack = HeartbeatAck {
        device_id: dev.to_owned(),
        epoch: hb.epoch,
        hb_seq: hb.hb_seq,
        policy_version: version,
        directives,
    };
    Ok(ctx.done(HeartbeatAnswer::Ack(ack)))
}

#[cfg(test)]
mod tests {
    use custos_protocol::uplink::{AlarmReason, Direction, TagSighting};

    use super::*;
    use crate::domain::alert::AlertKind;
    use crate::store::alerts::{AlertFilter, AlertRows, AlertView};
    use crate::store::test_support::{MemoryDb, T0, badge_epc, carrier_epc};

    const T0_MS: i64 = T0 * 1000;
    const RULES: IngestRules = IngestRules {
        min_tag_travel_ms: 0,
        badge_required: Vec::new(),
        commitment_valid_months: 0,
    };

    fn now() -> Timestamp {
        Timestamp::from_unix(T0).unwrap()
    }

    fn device(id: &str, kind: DeviceKind) -> DeviceAuth {
        DeviceAuth {
            id: DeviceId::new(id).unwrap(),
            kind,
            public_key: [0; 32],
            revoked: false,
        }
    }

    fn gate() -> DeviceAuth {
        device("gate-1", DeviceKind::Gate)
    }

    fn read(epc: Epc, at_ms: i64) -> TagSighting {
        TagSighting {
            epc,
            antenna_first: 1,
            antenna_last: 2,
            reads: 4,
            peak_rssi: 180,
            first_ms: at_ms - 500,
            last_ms: at_ms,
        }
    }

    fn passage(seq: u64, direction: Direction, tags: &[Epc], badges: &[Epc]) -> Event {
        let at_ms = T0_MS - 10_000 + i64::try_from(seq).unwrap();
        Event {
            seq,
            at_ms,
            body: EventBody::Passage {
                reader: "uhf-main".into(),
                direction,
                tags: tags.iter().map(|e| read(*e, at_ms)).collect(),
                badges: badges.iter().map(|e| read(*e, at_ms)).collect(),
                local_verdict: None,
            },
        }
    }

    fn snapshot(seq: u64, present: &[Epc]) -> Event {
        Event {
            seq,
            at_ms: T0_MS - 10_000 + i64::try_from(seq).unwrap(),
            body: EventBody::CabinetSnapshot {
                reader: "shelf".into(),
                present: present.to_vec(),
                added: Vec::new(),
                removed: Vec::new(),
            },
        }
    }

    fn batch(device: &DeviceAuth, events: Vec<Event>) -> Batch {
        Batch {
            device_id: device.id.to_string(),
            epoch: 1,
            events,
        }
    }

    fn ingest(db: &MemoryDb, device: &DeviceAuth, events: Vec<Event>) -> Ingested<BatchAnswer> {
        let encoded = EncodedBatch::new(batch(device, events)).unwrap();
        batch_in(&mut db.tx(), device, &encoded, RULES, now()).unwrap()
    }

    fn ack(ingested: &Ingested<BatchAnswer>) -> &BatchAck {
        match &ingested.answer {
            BatchAnswer::Ack(ack) => ack,
            other => panic!("not acknowledged: {other:?}"),
        }
    }

    fn alerts_of(db: &MemoryDb, kind: AlertKind) -> Vec<AlertView> {
        let filter = AlertFilter {
            kind: Some(kind),
            limit: 100,
            ..AlertFilter::default()
        };
        db.tx().alerts(&filter).unwrap()
    }

    #[test]
    fn a_carrier_out_without_a_sign_out_alarms_and_raises_unauthorized_removal() {
        let db = MemoryDb::gate_site(now());
        let gate = gate();
        let ingested = ingest(
            &db,
            &gate,
            vec![passage(1, Direction::Out, &[carrier_epc(1)], &[])],
        );
        let ack = ack(&ingested);
        let [alert] = &alerts_of(&db, AlertKind::UnauthorizedRemoval)[..] else {
            panic!("one unauthorized removal");
        };
        assert_eq!(ingested.alerts, [alert.id.parse::<i64>().unwrap()]);
        assert_eq!(
            (alert.carrier_id.as_deref(), alert.device_id.as_deref()),
            (Some("1"), Some("gate-1"))
        );
        assert_eq!(ack.acked_through, 1);
        assert_eq!(
            ack.verdicts[0].outcome,
            Outcome::Alarm {
                reason: AlarmReason::UnauthorizedRemoval,
                alert_id: Some(alert.id.clone()),
            }
        );
        assert!(matches!(
            ack.directives[..],
            [Directive::SoundAlarm {
                lock_door: true,
                ..
            }]
        ));
        // Stored with its verdict, in the carrier's history, and audited once per batch.
        let events = db.events();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].0.as_str(), events[0].1), ("passage", 1));
        assert!(events[0].2.as_deref().is_some_and(|v| v.contains("alarm")));
        assert_eq!(
            db.history(1),
            [("passage".to_owned(), Some("out".to_owned()))]
        );
        let audit = db.audit();
        let batches: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "device.batch")
            .collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].actor, "@device:gate-1");
        assert!(
            audit
                .iter()
                .all(|e| !serde_json::to_string(e).unwrap().contains("secret title"))
        );
    }

    #[test]
    fn a_signed_out_carrier_leaves_with_its_borrower() {
        let db = MemoryDb::gate_site(now());
        db.signed_out(1, T0_MS + 86_400_000, true);
        let gate = gate();
        let ingested = ingest(
            &db,
            &gate,
            vec![passage(
                1,
                Direction::Out,
                &[carrier_epc(1)],
                &[badge_epc(1)],
            )],
        );
        assert_eq!(ack(&ingested).verdicts[0].outcome, Outcome::Allowed);
        assert!(ack(&ingested).directives.is_empty());
        assert!(ingested.alerts.is_empty());
        assert_eq!(
            db.history(1),
            [("passage".to_owned(), Some("out".to_owned()))]
        );
        // With someone else instead of its borrower it may not leave.
        db.person_with_badge("Wang", &format!("epc:{}", badge_epc(2)));
        let other = vec![passage(
            2,
            Direction::Out,
            &[carrier_epc(1)],
            &[badge_epc(2)],
        )];
        let alone = ingest(&db, &gate, other);
        assert!(matches!(
            ack(&alone).verdicts[0].outcome,
            Outcome::Alarm {
                reason: AlarmReason::BorrowerAbsent,
                ..
            }
        ));
    }

    #[test]
    fn a_re_delivered_batch_is_answered_from_storage_and_a_changed_one_refused() {
        let db = MemoryDb::gate_site(now());
        let gate = gate();
        let events = vec![
            passage(1, Direction::Out, &[carrier_epc(1)], &[]),
            passage(2, Direction::In, &[carrier_epc(2)], &[]),
        ];
        let first = ingest(&db, &gate, events.clone());
        let audit = db.audit().len();
        let again = ingest(&db, &gate, events.clone());
        assert_eq!(ack(&again), ack(&first));
        assert!(again.alerts.is_empty(), "nothing raised again");
        assert_eq!(db.events().len(), 2);
        assert_eq!(db.audit().len(), audit);
        let removal = &alerts_of(&db, AlertKind::UnauthorizedRemoval)[0];
        assert_eq!(removal.occurrences, 1);

        // The same seq with other content is a replay: refused, alerted, nothing stored.
        let mut changed = events;
        changed[1] = passage(2, Direction::Out, &[carrier_epc(2)], &[]);
        let refused = ingest(&db, &gate, changed);
        assert!(matches!(refused.answer, BatchAnswer::Replay { .. }));
        assert_eq!(alerts_of(&db, AlertKind::ReplayRejected).len(), 1);
        assert_eq!(db.events().len(), 2);
    }

    #[test]
    fn a_batch_that_would_leave_a_gap_is_refused_with_where_to_resend() {
        let db = MemoryDb::gate_site(now());
        let gate = gate();
        let refused = ingest(
            &db,
            &gate,
            vec![passage(3, Direction::In, &[carrier_epc(1)], &[])],
        );
        assert_eq!(refused.answer, BatchAnswer::Gap { resend_from: 1 });
        assert!(db.events().is_empty());
        assert_eq!(alerts_of(&db, AlertKind::ReplayRejected).len(), 1);
    }

    #[test]
    fn a_carrier_gone_from_its_cabinet_is_a_pending_removal() {
        let db = MemoryDb::gate_site(now());
        let cab = device("cab-1", DeviceKind::Cabinet);
        ingest(
            &db,
            &cab,
            vec![snapshot(1, &[carrier_epc(1), carrier_epc(2)])],
        );
        assert_eq!(db.cabinet_contents("cab-1"), [1, 2]);
        let ingested = ingest(&db, &cab, vec![snapshot(2, &[carrier_epc(2)])]);
        assert!(
            ingested.alerts.is_empty(),
            "the sweep judges it after the grace period"
        );
        assert_eq!(db.cabinet_contents("cab-1"), [2]);
        assert_eq!(db.pending_removals(), [("cab-1".to_owned(), 1)]);
        let in_out = [
            ("cabinet".to_owned(), Some("in".to_owned())),
            ("cabinet".to_owned(), Some("out".to_owned())),
        ];
        assert_eq!(db.history(1), in_out);
        // Back on the shelf: no longer pending.
        ingest(
            &db,
            &cab,
            vec![snapshot(3, &[carrier_epc(1), carrier_epc(2)])],
        );
        assert!(db.pending_removals().is_empty());
    }

    fn heartbeat(hb_seq: u64, reader_state: HealthState, faults: Vec<DeviceFault>) -> Heartbeat {
        Heartbeat {
            device_id: "gate-1".into(),
            epoch: 1,
            hb_seq,
            at_ms: T0_MS,
            readers: vec![NamedHealth {
                reader: "uhf-main".into(),
                health: ReaderHealth {
                    state: reader_state,
                    fault: None,
                    frames_ok: 10,
                    checksum_errors: 0,
                    dropped_bytes: 0,
                    last_read_ms: None,
                },
            }],
            outbox_depth: 0,
            policy_version: 0,
            faults,
        }
    }

    fn beat(db: &MemoryDb, hb: &Heartbeat) -> Ingested<HeartbeatAnswer> {
        heartbeat_in(&mut db.tx(), &gate(), hb, RULES, now()).unwrap()
    }

    #[test]
    fn a_reader_fault_is_alerted_when_it_begins_and_a_replayed_heartbeat_refused() {
        let db = MemoryDb::gate_site(now());
        let ok = beat(&db, &heartbeat(1, HealthState::Ok, vec![]));
        let HeartbeatAnswer::Ack(ack) = &ok.answer else {
            panic!("refused: {ok:?}");
        };
        assert_eq!(
            ack.directives,
            [Directive::RefreshPolicy],
            "it holds no policy"
        );
        assert!(ok.alerts.is_empty());
        let fault = beat(&db, &heartbeat(2, HealthState::Fault, vec![]));
        let [alert] = &alerts_of(&db, AlertKind::ReaderFault)[..] else {
            panic!("one reader fault");
        };
        assert_eq!(fault.alerts, [alert.id.parse::<i64>().unwrap()]);
        // Still faulty: no new occurrence.
        let still = beat(&db, &heartbeat(3, HealthState::Fault, vec![]));
        assert!(still.alerts.is_empty());
        // The same heartbeat again is a replay, and not a sign of life.
        let replayed = beat(&db, &heartbeat(3, HealthState::Ok, vec![]));
        assert!(matches!(replayed.answer, HeartbeatAnswer::Replay { .. }));
        assert_eq!(alerts_of(&db, AlertKind::ReplayRejected).len(), 1);
    }

    #[test]
    fn a_device_fault_in_heartbeats_is_alerted_once_while_it_stands() {
        let db = MemoryDb::gate_site(now());
        let full = DeviceFault {
            kind: DeviceFaultKind::OutboxFull,
            since_ms: T0_MS - 5_000,
            detail: "outbox full".into(),
        };
        let first = beat(&db, &heartbeat(1, HealthState::Ok, vec![full.clone()]));
        assert_eq!(first.alerts.len(), 1);
        let [alert] = &alerts_of(&db, AlertKind::ReaderFault)[..] else {
            panic!("one fault alert");
        };
        assert!(
            alert.detail.to_string().contains("outbox_full"),
            "{alert:?}"
        );
        let again = beat(&db, &heartbeat(2, HealthState::Ok, vec![full]));
        assert!(again.alerts.is_empty());
    }

    #[test]
    fn a_failed_authentication_is_alerted_per_registered_device() {
        let db = MemoryDb::gate_site(now());
        let known = auth_failure_in(
            &mut db.tx(),
            "gate-1",
            &AuthFailure::BadSignature,
            "batches",
            T0_MS,
        )
        .unwrap();
        let unknown = auth_failure_in(
            &mut db.tx(),
            "nobody",
            &AuthFailure::UnknownDevice,
            "batches",
            T0_MS,
        )
        .unwrap();
        assert_ne!(known, unknown);
        let causes: Vec<String> = alerts_of(&db, AlertKind::DeviceAuthFailed)
            .into_iter()
            .map(|a| a.device_id.unwrap_or_default())
            .collect();
        assert_eq!(causes.len(), 2);
    }

    fn set_state(db: &MemoryDb, carrier: i64, state: CarrierState) {
        use crate::store::ChangeRows;
        let mut tx = db.tx();
        let [facts] = &tx.carrier_facts(&[CarrierId(carrier)]).unwrap()[..] else {
            panic!("one carrier");
        };
        tx.set_level_and_state(CarrierId(carrier), facts.level, state)
            .unwrap();
        tx.retire_tags(CarrierId(carrier), now()).unwrap();
    }

    #[test]
    fn a_destroyed_carriers_tag_seen_at_a_gate_raises_destroyed_seen() {
        let db = MemoryDb::gate_site(now());
        set_state(&db, 1, CarrierState::Destroyed);
        let gate = gate();
        ingest(
            &db,
            &gate,
            vec![passage(1, Direction::In, &[carrier_epc(1)], &[])],
        );
        let [alert] = &alerts_of(&db, AlertKind::DestroyedSeen)[..] else {
            panic!("one destroyed_seen");
        };
        assert_eq!(
            (alert.carrier_id.as_deref(), alert.device_id.as_deref()),
            (Some("1"), Some("gate-1"))
        );
        // Seen again: the same live alert, not a second one.
        ingest(
            &db,
            &gate,
            vec![passage(2, Direction::Out, &[carrier_epc(1)], &[])],
        );
        assert_eq!(alerts_of(&db, AlertKind::DestroyedSeen).len(), 1);
    }

    #[test]
    fn a_declassified_carrier_passes_a_gate_without_alarm() {
        let db = MemoryDb::gate_site(now());
        set_state(&db, 1, CarrierState::Declassified);
        let ingested = ingest(
            &db,
            &gate(),
            vec![passage(1, Direction::Out, &[carrier_epc(1)], &[])],
        );
        assert_eq!(ack(&ingested).verdicts[0].outcome, Outcome::Allowed);
        assert!(alerts_of(&db, AlertKind::UnauthorizedRemoval).is_empty());
        assert_eq!(
            db.history(1),
            [("passage".to_owned(), Some("out".to_owned()))]
        );
    }
}
