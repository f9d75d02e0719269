//! Device ingest: signed batches, heartbeats and their effects, each in one write job.
//!
//! A batch is processed by one job on the writer thread: the sequencing decision
//! (`domain::ingest::plan_batch`), every new event stored in `events` with the verdict answered
//! for it, and all of its effects (alerts, carrier `last_seen_*`, `carrier_events`,
//! `tag_sightings`, `cabinet_contents`, `pending_removals`, returns, `device_status`), the
//! epoch's `acked_through` and an audit entry. The caller answers the device only after that
//! job has committed, so an ack always means "durably stored". Refusals (gap, replay, clock)
//! are answers too: the job returns them with the `replay_rejected`/`reader_fault` alert it
//! raised, so the alert commits even though the device's request fails.
//!
//! A re-delivered batch is answered from storage: the verdicts in `events.verdict_json`, the
//! directives derived from them, nothing stored or raised again. If a re-delivered event's
//! content differs from what is stored under its seq, the batch is refused as a replay.
//!
//! # `device_status.health_json`
//! ```json
//! {"readers": {"uhf-main": <ReaderHealth as on the wire>}, "outbox_depth": 0,
//!  "held_policy_version": 9, "device_at_ms": 1767225600000,
//!  "faults": [<DeviceFault as on the wire>]}
//! ```
//! Heartbeats replace `readers` and `faults` wholesale (they carry every configured reader and
//! every standing device fault); a `reader_health` event replaces its own reader's entry.
//! `last_heartbeat_ms` is the server's receive time of the last *accepted* heartbeat. A device
//! fault newly listed by a heartbeat raises the same `reader_fault` alert as its
//! `device_fault` event (one cause per device and fault kind).
//!
//! Heartbeats are not audited: they change only liveness telemetry, and one entry per device
//! every few seconds would bury the trail. Each batch that stores events writes one
//! `device.batch` entry; carrier state changes write their own entries.

use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    Batch, BatchAck, DeviceFault, DeviceFaultKind, Direction, Directive, Event, EventBody,
    HealthState, Heartbeat, HeartbeatAck, MAX_ANSWER_ITEMS, NamedHealth, Outcome, ReaderHealth,
    ScannedCode, Verdict,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::alerts::AlertRows;
use super::sqlite::SqliteTx;
use super::{Store, StoreError, policy};
use crate::audit::{self, NewEntry};
use crate::domain::alert::NewAlert;
use crate::domain::cabinet::{self, CabinetCarrier, Custody, SinceIssue};
use crate::domain::device::DeviceKind;
use crate::domain::gate::{self, ActiveSignout, BadgeHolder, CarrierAtGate, Gate, Passage};
use crate::domain::ids::{CarrierId, DeviceId};
use crate::domain::ingest::{
    self as rules, ALARM_DURATION_MS, AuthFailure, BatchPlan, BatchRefusal, EpochRecord,
    HeartbeatRefusal,
};
use crate::domain::level::{Level, ZoneLevel};
use crate::domain::time::Timestamp;

/// A registered device, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuth {
    /// Its id.
    pub id: DeviceId,
    /// Its kind.
    pub kind: DeviceKind,
    /// The Ed25519 key it signs with.
    pub public_key: [u8; 32],
}

/// Settings of the ingest rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestRules {
    /// The same tag at two devices closer in time than this is a suspected clone (0 = off).
    pub min_tag_travel_ms: i64,
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

/// An answer and the alerts raised (or repeated) on the way, for `AlertHub::notify` after
/// commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested<T> {
    /// The answer.
    pub answer: T,
    /// Ids of alerts raised or repeated.
    pub alerts: Vec<i64>,
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} beyond i64")))
}

fn to_u64(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

fn level(code: &str) -> Result<Level, StoreError> {
    match ZoneLevel::from_code(code) {
        Some(ZoneLevel::Classified(level)) => Ok(level),
        _ => Err(StoreError::Corrupt(format!("carrier level {code:?}"))),
    }
}

fn zone_level(code: &str) -> Result<ZoneLevel, StoreError> {
    ZoneLevel::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("zone level {code:?}")))
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

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

fn device_actor(device: &str) -> String {
    format!("@device:{device}")
}

fn timestamp_of_ms(ms: i64) -> Timestamp {
    // Clamped into the representable range; only used for audit display times.
    Timestamp::from_unix(ms.div_euclid(1000))
        .unwrap_or_else(|| Timestamp::from_unix(0).expect("the epoch is representable"))
}

/// The state of the job processing one batch or heartbeat.
struct Ctx<'a> {
    conn: &'a Connection,
    device: &'a str,
    kind: DeviceKind,
    gate: Option<(ZoneLevel, ZoneLevel)>,
    now_ms: i64,
    rules: IngestRules,
    alerts: Vec<i64>,
}

impl Ctx<'_> {
    fn raise(&mut self, alert: &NewAlert) -> Result<i64, StoreError> {
        let id = SqliteTx::new(self.conn).raise_alert(alert)?.id();
        if !self.alerts.contains(&id) {
            self.alerts.push(id);
        }
        Ok(id)
    }
}

/// A carrier found by one of its tags.
struct TagCarrier {
    id: i64,
    control_no: String,
    level: Level,
    state: String,
    home_device: Option<String>,
}

fn carrier_by_tag(conn: &Connection, tag: &str) -> Result<Option<TagCarrier>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT c.id, c.control_no, c.level, c.state, c.home_device
             FROM carrier_tags t JOIN carriers c ON c.id = t.carrier_id WHERE t.tag = ?1",
        )?
        .query_row([tag], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    row.map(|(id, control_no, code, state, home_device)| {
        Ok(TagCarrier {
            id,
            control_no,
            level: level(&code)?,
            state,
            home_device,
        })
    })
    .transpose()
}

fn carrier_by_id(conn: &Connection, id: i64) -> Result<TagCarrier, StoreError> {
    let (control_no, code, state, home_device) = conn
        .prepare_cached("SELECT control_no, level, state, home_device FROM carriers WHERE id = ?1")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
    Ok(TagCarrier {
        id,
        control_no,
        level: level(&code)?,
        state,
        home_device,
    })
}

/// The person whose badge is `epc`, in either stored form, through `people_by_badge` (an
/// index on `upper(badge_tag)`; without it every badge read scans the register).
fn person_by_badge(conn: &Connection, epc: &Epc) -> Result<Option<BadgeHolder>, StoreError> {
    let [prefixed, bare] = rules::badge_forms(epc);
    Ok(conn
        .prepare_cached(
            "SELECT id, name FROM people INDEXED BY people_by_badge
             WHERE badge_tag IS NOT NULL AND upper(badge_tag) IN (?1, ?2)
             ORDER BY id LIMIT 1",
        )?
        .query_row([prefixed, bare], |r| {
            Ok(BadgeHolder {
                person_id: r.get(0)?,
                name: r.get(1)?,
            })
        })
        .optional()?)
}

/// The live sign-outs of one carrier. `INDEXED BY`: without statistics the planner would
/// rather walk every `out` sign-out (`signouts_by_state`) and probe each for the carrier, a
/// cost that grows with the sign-outs open on the site; through the carrier's index it reads
/// only that carrier's few rows.
fn active_signouts(conn: &Connection, carrier_id: i64) -> Result<Vec<ActiveSignout>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.may_leave, s.due_at_ms, s.borrower, p.badge_tag
         FROM signout_carriers sc INDEXED BY signout_carriers_by_carrier
         JOIN signouts s ON s.id = sc.signout_id
         JOIN people p ON p.id = s.borrower
         WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND s.state = 'out'
         ORDER BY s.id",
    )?;
    let rows = stmt.query_map([carrier_id], |r| {
        Ok(ActiveSignout {
            signout_id: r.get(0)?,
            may_leave: r.get::<_, i64>(1)? == 1,
            due_at_ms: r.get(2)?,
            borrower_id: r.get(3)?,
            borrower_badge: r
                .get::<_, Option<String>>(4)?
                .as_deref()
                .and_then(rules::badge_epc),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Store an event (with the verdict answered for it, if it was judged); its row id.
fn insert_event(
    ctx: &Ctx<'_>,
    epoch: i64,
    event: &Event,
    body_json: &str,
    verdict_json: Option<&str>,
) -> Result<i64, StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO events (device_id, epoch, seq, at_ms, received_at_ms, kind, body_json,
                                 verdict_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            ctx.device,
            epoch,
            to_i64(event.seq, "seq")?,
            event.at_ms,
            ctx.now_ms,
            event_kind(&event.body),
            body_json,
            verdict_json,
        ])?;
    Ok(ctx.conn.last_insert_rowid())
}

fn carrier_event(
    ctx: &Ctx<'_>,
    carrier_id: i64,
    event_id: i64,
    at_ms: i64,
    kind: &str,
    direction: Option<&str>,
) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT OR IGNORE INTO carrier_events
                 (carrier_id, event_id, at_ms, kind, device_id, direction)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            carrier_id, event_id, at_ms, kind, ctx.device, direction
        ])?;
    Ok(())
}

fn seen(ctx: &Ctx<'_>, carrier_id: i64, at_ms: i64) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "UPDATE carriers SET last_seen_device = ?2, last_seen_at_ms = ?3
             WHERE id = ?1 AND (last_seen_at_ms IS NULL OR last_seen_at_ms <= ?3)",
        )?
        .execute(params![carrier_id, ctx.device, at_ms])?;
    Ok(())
}

/// Where a tag was last seen: device and Unix ms.
type LastSighting = Option<(String, i64)>;

/// Record a sighting of `epc` and raise `tag_clone_suspected` if it cannot be the same tag.
fn sighting(
    ctx: &mut Ctx<'_>,
    epc: &Epc,
    carrier_id: Option<i64>,
    at_ms: i64,
) -> Result<(), StoreError> {
    let tag = rules::epc_tag(epc);
    let previous: LastSighting = ctx
        .conn
        .prepare_cached("SELECT device_id, at_ms FROM tag_sightings WHERE tag = ?1")?
        .query_row([&tag], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    record_sighting(ctx, epc, tag, carrier_id, at_ms, previous)
}

/// [`sighting`] with the previous sighting already read (`tag` is `epc`'s stored form).
fn record_sighting(
    ctx: &mut Ctx<'_>,
    epc: &Epc,
    tag: String,
    carrier_id: Option<i64>,
    at_ms: i64,
    previous: LastSighting,
) -> Result<(), StoreError> {
    let prev = previous.as_ref().map(|(d, t)| (d.as_str(), *t));
    if gate::clone_suspected(prev, ctx.device, at_ms, ctx.rules.min_tag_travel_ms) {
        if let Some(prev) = prev {
            let alert = gate::clone_alert(epc, carrier_id, prev, ctx.device, at_ms);
            ctx.raise(&alert)?;
        }
    }
    ctx.conn
        .prepare_cached(
            "INSERT INTO tag_sightings (tag, device_id, at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (tag) DO UPDATE SET device_id = excluded.device_id, at_ms = excluded.at_ms
             WHERE excluded.at_ms >= tag_sightings.at_ms",
        )?
        .execute(params![tag, ctx.device, at_ms])?;
    Ok(())
}

/// A carrier found by a tag read at a gate, with where that tag was seen last (one query for
/// what a passage needs to know about each tag).
fn gate_carrier_by_tag(
    conn: &Connection,
    tag: &str,
) -> Result<Option<(TagCarrier, LastSighting)>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT c.id, c.control_no, c.level, c.state, c.home_device, s.device_id, s.at_ms
             FROM carrier_tags t JOIN carriers c ON c.id = t.carrier_id
                  LEFT JOIN tag_sightings s ON s.tag = t.tag
             WHERE t.tag = ?1",
        )?
        .query_row([tag], |r| {
            Ok((
                (
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ),
                match (r.get::<_, Option<String>>(5)?, r.get::<_, Option<i64>>(6)?) {
                    (Some(device), Some(at_ms)) => Some((device, at_ms)),
                    _ => None,
                },
            ))
        })
        .optional()?;
    row.map(|((id, control_no, code, state, home_device), last)| {
        Ok((
            TagCarrier {
                id,
                control_no,
                level: level(&code)?,
                state,
                home_device,
            },
            last,
        ))
    })
    .transpose()
}

/// Judge a passage through a gate, store it with its verdict and record its effects; returns
/// the verdict.
///
/// A carrier `in_storage` cannot be on a live sign-out (issuing one moves it `out`, returning
/// it from the last one moves it back), and the rules only consult the sign-outs of a carrier
/// that is `out`; so its sign-outs are not looked up. Every other state is.
fn passage(
    ctx: &mut Ctx<'_>,
    (inside, outside): (ZoneLevel, ZoneLevel),
    epoch: i64,
    event: &Event,
    body_json: &str,
) -> Result<Verdict, StoreError> {
    let EventBody::Passage {
        reader,
        direction,
        tags,
        badges,
        ..
    } = &event.body
    else {
        return Err(StoreError::Task("passage expected".to_owned()));
    };
    let mut carriers: Vec<CarrierAtGate> = Vec::new();
    let mut last_seen: Vec<(String, LastSighting)> = Vec::new();
    let mut unknown: Vec<Epc> = Vec::new();
    let mut badge_epcs: Vec<Epc> = badges.iter().map(|b| b.epc).collect();
    let mut holders: Vec<BadgeHolder> = Vec::new();
    for t in tags {
        let tag = rules::epc_tag(&t.epc);
        if let Some((c, last)) = gate_carrier_by_tag(ctx.conn, &tag)? {
            if carriers.iter().all(|known| known.carrier_id != c.id) {
                let signouts = if c.state == "in_storage" {
                    Vec::new()
                } else {
                    active_signouts(ctx.conn, c.id)?
                };
                carriers.push(CarrierAtGate {
                    carrier_id: c.id,
                    epc: t.epc,
                    control_no: c.control_no,
                    level: c.level,
                    out: c.state == "out",
                    signouts,
                });
                last_seen.push((tag, last));
            }
        } else if person_by_badge(ctx.conn, &t.epc)?.is_some() {
            // A badge the daemon filed among the carrier tags: it is a badge all the same.
            badge_epcs.push(t.epc);
        } else if !unknown.contains(&t.epc) {
            unknown.push(t.epc);
        }
    }
    for epc in &badge_epcs {
        if let Some(h) = person_by_badge(ctx.conn, epc)? {
            if holders.iter().all(|known| known.person_id != h.person_id) {
                holders.push(h);
            }
        }
    }
    let g = Gate {
        device_id: ctx.device,
        inside,
        outside,
    };
    let judgement = gate::judge(
        &g,
        &Passage {
            reader,
            direction: *direction,
            carriers: &carriers,
            unknown: &unknown,
            badges: &badge_epcs,
            holders: &holders,
            at_ms: event.at_ms,
            now_ms: ctx.now_ms,
        },
    );
    let mut ids = Vec::with_capacity(judgement.alerts.len());
    for alert in &judgement.alerts {
        ids.push(ctx.raise(alert)?);
    }
    let outcome = match judgement.alarm {
        Some((reason, index)) => Outcome::Alarm {
            reason,
            alert_id: ids.get(index).map(i64::to_string),
        },
        None => Outcome::Allowed,
    };
    let verdict_json = serde_json::to_string(&outcome)?;
    let event_id = insert_event(ctx, epoch, event, body_json, Some(&verdict_json))?;
    for (c, (tag, last)) in carriers.iter().zip(last_seen) {
        carrier_event(
            ctx,
            c.carrier_id,
            event_id,
            event.at_ms,
            "passage",
            Some(direction_name(*direction)),
        )?;
        seen(ctx, c.carrier_id, event.at_ms)?;
        record_sighting(ctx, &c.epc, tag, Some(c.carrier_id), event.at_ms, last)?;
    }
    for epc in &unknown {
        sighting(ctx, epc, None, event.at_ms)?;
    }
    Ok(Verdict {
        seq: event.seq,
        outcome,
    })
}

fn cabinet_carrier(ctx: &Ctx<'_>, c: TagCarrier) -> Result<CabinetCarrier, StoreError> {
    let in_other_cabinet: bool = ctx
        .conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM cabinet_contents WHERE carrier_id = ?1 AND device_id != ?2)",
        )?
        .query_row(params![c.id, ctx.device], |r| r.get(0))?;
    Ok(CabinetCarrier {
        carrier_id: c.id,
        custody: Custody::from_stored(&c.state)
            .ok_or_else(|| StoreError::Corrupt(format!("carrier state {:?}", c.state)))?,
        control_no: c.control_no,
        level: c.level,
        home_device: c.home_device,
        in_other_cabinet,
        since_issue: None,
    })
}

/// What the server recorded of a signed-out carrier since its open sign-out was issued, as
/// seen from this cabinet (`None` if it is on no open sign-out). Read before the snapshot's own
/// effects are written.
fn since_issue(ctx: &Ctx<'_>, carrier_id: i64) -> Result<Option<SinceIssue>, StoreError> {
    let issued: Option<Option<i64>> = ctx
        .conn
        .prepare_cached(
            "SELECT max(so.issued_at_ms) FROM signout_carriers sc
             JOIN signouts so ON so.id = sc.signout_id
             WHERE sc.carrier_id = ?1 AND sc.returned_at_ms IS NULL AND so.state = 'out'
             GROUP BY sc.carrier_id",
        )?
        .query_row([carrier_id], |r| r.get(0))
        .optional()?;
    let Some(issued) = issued else {
        return Ok(None);
    };
    let (removal, arrival): (Option<i64>, Option<i64>) = ctx
        .conn
        .prepare_cached(
            "SELECT max(at_ms) FILTER (WHERE direction = 'out'),
                    max(at_ms) FILTER (WHERE direction = 'in')
             FROM carrier_events
             WHERE carrier_id = ?1 AND device_id = ?2 AND kind = 'cabinet'",
        )?
        .query_row(params![carrier_id, ctx.device], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let pending: Option<i64> = ctx
        .conn
        .prepare_cached(
            "SELECT removed_at_ms FROM pending_removals WHERE device_id = ?1 AND carrier_id = ?2",
        )?
        .query_row(params![ctx.device, carrier_id], |r| r.get(0))
        .optional()?;
    let last_seen: (Option<String>, Option<i64>) = ctx
        .conn
        .prepare_cached("SELECT last_seen_device, last_seen_at_ms FROM carriers WHERE id = ?1")?
        .query_row([carrier_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Some(SinceIssue {
        issued_at_ms: issued.unwrap_or(i64::MIN),
        last_removal_here_ms: removal.max(pending),
        last_arrival_here_ms: arrival,
        last_seen: match last_seen {
            (Some(device), Some(at)) => Some((device, at)),
            _ => None,
        },
    }))
}

/// Reconcile a cabinet snapshot (see `domain::cabinet`).
fn cabinet_snapshot(ctx: &mut Ctx<'_>, event: &Event, event_id: i64) -> Result<(), StoreError> {
    let EventBody::CabinetSnapshot {
        reader,
        present,
        added,
        removed,
    } = &event.body
    else {
        return Err(StoreError::Task("cabinet snapshot expected".to_owned()));
    };
    if added.iter().any(|e| !present.contains(e)) || removed.iter().any(|e| present.contains(e)) {
        tracing::warn!(device = ctx.device, %reader, "cabinet diff disagrees with its inventory; the inventory wins");
    }
    let mut here = Vec::new();
    let mut here_epcs = Vec::new();
    for epc in present {
        if let Some(c) = carrier_by_tag(ctx.conn, &rules::epc_tag(epc))? {
            if here
                .iter()
                .all(|known: &CabinetCarrier| known.carrier_id != c.id)
            {
                here_epcs.push((*epc, c.id));
                let mut carrier = cabinet_carrier(ctx, c)?;
                if carrier.custody == Custody::Out {
                    carrier.since_issue = since_issue(ctx, carrier.carrier_id)?;
                }
                here.push(carrier);
            }
        }
    }
    let previous_ids: Vec<i64> = {
        let mut stmt = ctx.conn.prepare_cached(
            "SELECT carrier_id FROM cabinet_contents WHERE device_id = ?1 ORDER BY carrier_id",
        )?;
        let rows = stmt.query_map([ctx.device], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut previous = Vec::with_capacity(previous_ids.len());
    for id in previous_ids {
        let c = carrier_by_id(ctx.conn, id)?;
        previous.push(cabinet_carrier(ctx, c)?);
    }
    let pending_here: Vec<(i64, bool)> = {
        let mut stmt = ctx.conn.prepare_cached(
            "SELECT pr.carrier_id, c.state = 'out' FROM pending_removals pr
             JOIN carriers c ON c.id = pr.carrier_id WHERE pr.device_id = ?1",
        )?;
        let rows = stmt.query_map([ctx.device], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let plan = cabinet::reconcile(&cabinet::Snapshot {
        device_id: ctx.device,
        present: &here,
        previous: &previous,
        pending_here: &pending_here,
        at_ms: event.at_ms,
    });
    let conn = ctx.conn;
    for id in &plan.arrived {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO cabinet_contents (device_id, carrier_id, since_ms) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![ctx.device, id, event.at_ms])?;
        carrier_event(ctx, *id, event_id, event.at_ms, "cabinet", Some("in"))?;
    }
    for id in &plan.departed {
        conn.prepare_cached(
            "DELETE FROM cabinet_contents WHERE device_id = ?1 AND carrier_id = ?2",
        )?
        .execute(params![ctx.device, id])?;
        carrier_event(ctx, *id, event_id, event.at_ms, "cabinet", Some("out"))?;
    }
    for id in &plan.pending_clear {
        conn.prepare_cached("DELETE FROM pending_removals WHERE carrier_id = ?1")?
            .execute([id])?;
    }
    for id in &plan.pending_clear_here {
        conn.prepare_cached(
            "DELETE FROM pending_removals WHERE device_id = ?1 AND carrier_id = ?2",
        )?
        .execute(params![ctx.device, id])?;
    }
    for id in &plan.pending_add {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO pending_removals (device_id, carrier_id, removed_at_ms) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![ctx.device, id, event.at_ms])?;
    }
    if !plan.returned.is_empty() {
        // The device id came from the devices table, so it is a valid name.
        let device = DeviceId::new(ctx.device)
            .map_err(|_| StoreError::Corrupt(format!("device id {:?}", ctx.device)))?;
        let at = Timestamp::from_unix_ms(event.at_ms)
            .ok_or_else(|| StoreError::Corrupt(format!("time out of range: {}", event.at_ms)))?;
        let mut tx = SqliteTx::new(conn);
        for id in &plan.returned {
            crate::service::signouts::record_cabinet_return(&mut tx, CarrierId(*id), &device, at)
                .map_err(|e| match e {
                crate::service::ServiceError::Store(e) => e,
                other => StoreError::Corrupt(other.to_string()),
            })?;
        }
    }
    for id in &plan.found {
        mark_found(ctx, *id, event.at_ms)?;
    }
    for alert in &plan.alerts {
        ctx.raise(alert)?;
    }
    for (epc, id) in here_epcs {
        seen(ctx, id, event.at_ms)?;
        sighting(ctx, &epc, Some(id), event.at_ms)?;
    }
    Ok(())
}

/// A missing carrier is back in its home cabinet: in storage again (the `missing` alert stays
/// for a person to resolve).
fn mark_found(ctx: &Ctx<'_>, carrier_id: i64, at_ms: i64) -> Result<(), StoreError> {
    let changed = ctx
        .conn
        .prepare_cached(
            "UPDATE carriers SET state = 'in_storage', missing_since_ms = NULL
             WHERE id = ?1 AND state = 'missing'",
        )?
        .execute([carrier_id])?;
    if changed == 1 {
        audit::append(
            ctx.conn,
            &NewEntry {
                at: timestamp_of_ms(ctx.now_ms),
                actor: device_actor(ctx.device),
                action: "carrier.found",
                subject: format!("carrier:{carrier_id}"),
                before: Some(json!({ "state": "missing" })),
                after: Some(json!({ "state": "in_storage", "device": ctx.device, "at_ms": at_ms })),
            },
        )?;
    }
    Ok(())
}

fn scan(ctx: &Ctx<'_>, event: &Event, event_id: i64) -> Result<(), StoreError> {
    let EventBody::Scan { code, .. } = &event.body else {
        return Err(StoreError::Task("scan expected".to_owned()));
    };
    let tag = match code {
        ScannedCode::Barcode { text } => rules::barcode_tag(text),
        ScannedCode::EmCard { id } => rules::em_tag(id),
    };
    if let Some(c) = carrier_by_tag(ctx.conn, &tag)? {
        carrier_event(ctx, c.id, event_id, event.at_ms, "scan", None)?;
        seen(ctx, c.id, event.at_ms)?;
    }
    Ok(())
}

/// The stored health document of a device (an empty object if none).
fn health_doc(conn: &Connection, device: &str) -> Result<Value, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT health_json FROM device_status WHERE device_id = ?1")?
        .query_row([device], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(text
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({})))
}

fn store_health(conn: &Connection, device: &str, doc: &Value) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO device_status (device_id, health_json) VALUES (?1, ?2)
         ON CONFLICT (device_id) DO UPDATE SET health_json = excluded.health_json",
    )?
    .execute(params![device, doc.to_string()])?;
    Ok(())
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

fn reader_health(
    ctx: &mut Ctx<'_>,
    reader: &str,
    health: &ReaderHealth,
    at_ms: i64,
) -> Result<(), StoreError> {
    let mut doc = health_doc(ctx.conn, ctx.device)?;
    let previous = stored_state(&doc, reader);
    if !doc["readers"].is_object() {
        doc["readers"] = json!({});
    }
    doc["readers"][reader] = serde_json::to_value(health)?;
    store_health(ctx.conn, ctx.device, &doc)?;
    if rules::newly_faulty(previous, health.state) {
        let alert = rules::reader_fault_alert(ctx.device, reader, health, at_ms);
        ctx.raise(&alert)?;
    }
    Ok(())
}

/// Store one new event and apply its effects; the verdict for a judged passage.
fn process_event(
    ctx: &mut Ctx<'_>,
    epoch: i64,
    event: &Event,
) -> Result<Option<Verdict>, StoreError> {
    let body_json = serde_json::to_string(&event.body)?;
    if let (EventBody::Passage { .. }, DeviceKind::Gate) = (&event.body, ctx.kind) {
        let Some(sides) = ctx.gate else {
            return Err(StoreError::Corrupt(format!(
                "gate {} without zones",
                ctx.device
            )));
        };
        return passage(ctx, sides, epoch, event, &body_json).map(Some);
    }
    // Everything but a gate's passage: stored first, then its effects (none is judged).
    let event_id = insert_event(ctx, epoch, event, &body_json, None)?;
    match (&event.body, ctx.kind) {
        (EventBody::CabinetSnapshot { .. }, DeviceKind::Cabinet) => {
            cabinet_snapshot(ctx, event, event_id)?;
        }
        (EventBody::TurnedBack { .. }, DeviceKind::Gate) => {
            turned_back(ctx, epoch, event, event_id)?;
        }
        (
            EventBody::Passage { .. }
            | EventBody::CabinetSnapshot { .. }
            | EventBody::TurnedBack { .. },
            kind,
        ) => {
            tracing::warn!(
                device = ctx.device,
                kind = kind.as_str(),
                event = event_kind(&event.body),
                "event does not fit the device kind; stored, not judged"
            );
        }
        (EventBody::Scan { .. }, _) => scan(ctx, event, event_id)?,
        (EventBody::ReaderHealth { reader, health }, _) => {
            reader_health(ctx, reader, health, event.at_ms)?;
        }
        (EventBody::DeviceFault { kind, detail }, _) => {
            let alert = rules::device_fault_alert(ctx.device, *kind, detail, event.at_ms);
            ctx.raise(&alert)?;
        }
    }
    Ok(None)
}

/// Carriers of an earlier passage of this gate went back where they came from: a
/// `turned_back` history entry (with the passage's direction) for each named carrier that the
/// passage recorded. The passage, its verdict and its alerts stay as they are: the attempt
/// happened. A passage that is not there (or names none of the tags) gets nothing; the event is
/// stored all the same, so its batch is acknowledged.
fn turned_back(ctx: &Ctx<'_>, epoch: i64, event: &Event, event_id: i64) -> Result<(), StoreError> {
    let EventBody::TurnedBack {
        passage_seq, tags, ..
    } = &event.body
    else {
        return Err(StoreError::Task("turned_back expected".to_owned()));
    };
    let passage: Option<i64> = ctx
        .conn
        .prepare_cached(
            "SELECT id FROM events
             WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3 AND kind = 'passage'",
        )?
        .query_row(
            params![ctx.device, epoch, to_i64(*passage_seq, "passage_seq")?],
            |r| r.get(0),
        )
        .optional()?;
    let Some(passage_id) = passage else {
        tracing::warn!(
            device = ctx.device,
            epoch,
            passage_seq,
            "turned_back names no passage of this device; stored, no history"
        );
        return Ok(());
    };
    for epc in tags {
        let Some(carrier) = carrier_by_tag(ctx.conn, &rules::epc_tag(epc))? else {
            continue;
        };
        let direction: Option<Option<String>> = ctx
            .conn
            .prepare_cached(
                "SELECT direction FROM carrier_events
                 WHERE carrier_id = ?1 AND event_id = ?2 AND kind = 'passage'",
            )?
            .query_row(params![carrier.id, passage_id], |r| r.get(0))
            .optional()?;
        let Some(direction) = direction else {
            continue;
        };
        carrier_event(
            ctx,
            carrier.id,
            event_id,
            event.at_ms,
            "turned_back",
            direction.as_deref(),
        )?;
        seen(ctx, carrier.id, event.at_ms)?;
    }
    Ok(())
}

fn gate_sides(
    conn: &Connection,
    device: &str,
) -> Result<Option<(ZoneLevel, ZoneLevel)>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT zi.level, zo.level FROM devices d
             JOIN zones zi ON zi.id = d.inside_zone JOIN zones zo ON zo.id = d.outside_zone
             WHERE d.id = ?1",
        )?
        .query_row([device], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(i, o)| Ok((zone_level(&i)?, zone_level(&o)?)))
        .transpose()
}

fn epoch_record(
    conn: &Connection,
    device: &str,
    epoch: i64,
) -> Result<Option<EpochRecord>, StoreError> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT acked_through, hb_seq FROM device_epochs WHERE device_id = ?1 AND epoch = ?2",
        )?
        .query_row(params![device, epoch], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(acked, hb)| {
        Ok(EpochRecord {
            epoch: to_u64(epoch, "epoch")?,
            acked_through: to_u64(acked, "acked_through")?,
            hb_seq: to_u64(hb, "hb_seq")?,
        })
    })
    .transpose()
}

fn newest_epoch(conn: &Connection, device: &str) -> Result<Option<EpochRecord>, StoreError> {
    let epoch: Option<i64> = conn
        .prepare_cached("SELECT max(epoch) FROM device_epochs WHERE device_id = ?1")?
        .query_row([device], |r| r.get(0))?;
    match epoch {
        Some(e) => epoch_record(conn, device, e),
        None => Ok(None),
    }
}

fn newest_epoch_with_events(conn: &Connection, device: &str) -> Result<Option<u64>, StoreError> {
    let epoch: Option<i64> = conn
        .prepare_cached(
            "SELECT max(epoch) FROM device_epochs WHERE device_id = ?1 AND acked_through > 0",
        )?
        .query_row([device], |r| r.get(0))?;
    epoch.map(|e| to_u64(e, "epoch")).transpose()
}

/// The stored verdicts of `first ..= last` (already stored), checking that each re-delivered
/// event is the one stored. `Err(seq)` names the first that differs.
fn stored_verdicts(
    ctx: &Ctx<'_>,
    epoch: i64,
    events: &[Event],
) -> Result<Result<Vec<Verdict>, u64>, StoreError> {
    let mut verdicts = Vec::new();
    for event in events {
        let row: Option<(i64, String, Option<String>)> = ctx
            .conn
            .prepare_cached(
                "SELECT at_ms, body_json, verdict_json FROM events
                 WHERE device_id = ?1 AND epoch = ?2 AND seq = ?3",
            )?
            .query_row(params![ctx.device, epoch, to_i64(event.seq, "seq")?], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((at_ms, body_json, verdict_json)) = row else {
            return Err(StoreError::Corrupt(format!(
                "{} epoch {epoch} seq {} acknowledged but not stored",
                ctx.device, event.seq
            )));
        };
        if at_ms != event.at_ms || body_json != serde_json::to_string(&event.body)? {
            return Ok(Err(event.seq));
        }
        if let Some(v) = verdict_json {
            let outcome: Outcome = serde_json::from_str(&v)
                .map_err(|e| StoreError::Corrupt(format!("stored verdict: {e}")))?;
            verdicts.push(Verdict {
                seq: event.seq,
                outcome,
            });
        }
    }
    Ok(Ok(verdicts))
}

/// The newest gate policy version, computed now (heartbeats).
fn policy_version(ctx: &Ctx<'_>) -> Result<u64, StoreError> {
    if ctx.kind == DeviceKind::Gate {
        Ok(policy::current(ctx.conn, ctx.device, ctx.now_ms)?.0)
    } else {
        Ok(0)
    }
}

/// The gate policy version for a batch ack: a check at most
/// [`policy::ACK_VERSION_MAX_AGE_MS`] old is reused.
fn recent_policy_version(ctx: &Ctx<'_>) -> Result<u64, StoreError> {
    if ctx.kind == DeviceKind::Gate {
        policy::recent_version(ctx.conn, ctx.device, ctx.now_ms)
    } else {
        Ok(0)
    }
}

fn batch_job(
    conn: &Connection,
    device: &DeviceAuth,
    batch: &Batch,
    rules_settings: IngestRules,
    now: Timestamp,
) -> Result<Ingested<BatchAnswer>, StoreError> {
    let dev = device.id.as_str();
    let Some((first, last)) = batch.seq_range() else {
        return Err(StoreError::Task("empty batch".to_owned()));
    };
    let epoch = to_i64(batch.epoch, "epoch")?;
    let mut ctx = Ctx {
        conn,
        device: dev,
        kind: device.kind,
        gate: if device.kind == DeviceKind::Gate {
            gate_sides(conn, dev)?
        } else {
            None
        },
        now_ms: rules::unix_ms(now),
        rules: rules_settings,
        alerts: Vec::new(),
    };
    let acked = epoch_record(conn, dev, epoch)?.map_or(0, |r| r.acked_through);
    let newest = newest_epoch_with_events(conn, dev)?;
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
            ctx.raise(&rules::replay_alert(
                dev,
                "batch refused",
                &reason,
                ctx.now_ms,
            ))?;
            return Ok(Ingested {
                answer,
                alerts: ctx.alerts,
            });
        }
    };
    let new_from = match plan {
        BatchPlan::Duplicate => last.saturating_add(1),
        BatchPlan::Store { new_from } => new_from,
    };
    let split = batch.events.partition_point(|e| e.seq < new_from);
    let (old, new) = batch.events.split_at(split);
    let mut verdicts = match stored_verdicts(&ctx, epoch, old)? {
        Ok(v) => v,
        Err(seq) => {
            let message = format!(
                "epoch {} seq {seq} was stored with other content",
                batch.epoch
            );
            ctx.raise(&rules::replay_alert(
                dev,
                "batch refused",
                &message,
                ctx.now_ms,
            ))?;
            return Ok(Ingested {
                answer: BatchAnswer::Replay { message },
                alerts: ctx.alerts,
            });
        }
    };
    for event in new {
        if let Some(v) = process_event(&mut ctx, epoch, event)? {
            verdicts.push(v);
        }
    }
    if !new.is_empty() {
        conn.prepare_cached(
            "INSERT INTO device_epochs (device_id, epoch, acked_through, first_seen_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id, epoch) DO UPDATE SET acked_through = excluded.acked_through",
        )?
        .execute(params![dev, epoch, to_i64(last, "seq")?, ctx.now_ms])?;
        audit::append(
            conn,
            &NewEntry {
                at: now,
                actor: device_actor(dev),
                action: "device.batch",
                subject: format!("device:{dev}"),
                before: Some(json!({ "epoch": batch.epoch, "acked_through": acked })),
                after: Some(json!({
                    "epoch": batch.epoch,
                    "acked_through": last,
                    "stored": new.len(),
                    "alerts": ctx.alerts,
                })),
            },
        )?;
    }
    verdicts.truncate(MAX_ANSWER_ITEMS);
    let directives = rules::alarm_directives(&verdicts);
    let ack = BatchAck {
        device_id: dev.to_owned(),
        epoch: batch.epoch,
        acked_through: last,
        verdicts,
        directives,
        policy_version: recent_policy_version(&ctx)?,
    };
    Ok(Ingested {
        answer: BatchAnswer::Ack(ack),
        alerts: ctx.alerts,
    })
}

fn heartbeat_job(
    conn: &Connection,
    device: &DeviceAuth,
    hb: &Heartbeat,
    now: Timestamp,
) -> Result<Ingested<HeartbeatAnswer>, StoreError> {
    let dev = device.id.as_str();
    let mut ctx = Ctx {
        conn,
        device: dev,
        kind: device.kind,
        gate: None,
        now_ms: rules::unix_ms(now),
        rules: IngestRules {
            min_tag_travel_ms: 0,
        },
        alerts: Vec::new(),
    };
    if let Err(refusal) = rules::check_heartbeat(newest_epoch(conn, dev)?, hb.epoch, hb.hb_seq) {
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
            ctx.now_ms,
        ))?;
        return Ok(Ingested {
            answer: HeartbeatAnswer::Replay { message },
            alerts: ctx.alerts,
        });
    }
    if !rules::clock_in_step(hb.at_ms, ctx.now_ms) {
        ctx.raise(&rules::clock_skew_alert(dev, hb.at_ms, ctx.now_ms))?;
        return Ok(Ingested {
            answer: HeartbeatAnswer::ClockSkew,
            alerts: ctx.alerts,
        });
    }
    conn.prepare_cached(
        "INSERT INTO device_epochs (device_id, epoch, hb_seq, first_seen_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id, epoch) DO UPDATE SET hb_seq = excluded.hb_seq",
    )?
    .execute(params![
        dev,
        to_i64(hb.epoch, "epoch")?,
        to_i64(hb.hb_seq, "hb_seq")?,
        ctx.now_ms
    ])?;
    let previous = health_doc(conn, dev)?;
    let mut readers = serde_json::Map::new();
    for NamedHealth { reader, health } in &hb.readers {
        readers.insert(reader.clone(), serde_json::to_value(health)?);
    }
    let doc = json!({
        "readers": readers,
        "outbox_depth": hb.outbox_depth,
        "held_policy_version": hb.policy_version,
        "device_at_ms": hb.at_ms,
        "faults": hb.faults,
    });
    conn.prepare_cached(
        "INSERT INTO device_status (device_id, last_heartbeat_ms, health_json) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE
         SET last_heartbeat_ms = excluded.last_heartbeat_ms, health_json = excluded.health_json",
    )?
    .execute(params![dev, ctx.now_ms, doc.to_string()])?;
    for NamedHealth { reader, health } in &hb.readers {
        if rules::newly_faulty(stored_state(&previous, reader), health.state) {
            ctx.raise(&rules::reader_fault_alert(dev, reader, health, ctx.now_ms))?;
        }
    }
    let standing = stored_faults(&previous);
    for fault in hb.faults.iter().filter(|f| !standing.contains(&f.kind)) {
        let alert = rules::device_fault_alert(dev, fault.kind, &fault.detail, ctx.now_ms);
        ctx.raise(&alert)?;
    }
    let version = policy_version(&ctx)?;
    let mut directives = Vec::new();
    if device.kind == DeviceKind::Gate && hb.policy_version < version {
        directives.push(Directive::RefreshPolicy);
    }
    directives.extend(silenced_alarms(&ctx, MAX_ANSWER_ITEMS - directives.len())?);
    Ok(Ingested {
        answer: HeartbeatAnswer::Ack(HeartbeatAck {
            device_id: dev.to_owned(),
            epoch: hb.epoch,
            hb_seq: hb.hb_seq,
            policy_version: version,
            directives,
        }),
        alerts: ctx.alerts,
    })
}

/// `SilenceAlarm` for this device's gate alarms that a guard acknowledged or resolved within
/// the last alarm duration (the gate may still be sounding for them).
fn silenced_alarms(ctx: &Ctx<'_>, max: usize) -> Result<Vec<Directive>, StoreError> {
    let since = ctx
        .now_ms
        .saturating_sub(i64::try_from(ALARM_DURATION_MS).unwrap_or(i64::MAX));
    let mut stmt = ctx.conn.prepare_cached(
        "SELECT id FROM alerts
         WHERE device_id = ?1 AND kind IN ('unauthorized_removal', 'clearance_violation')
           AND state != 'open' AND coalesce(acknowledged_at_ms, resolved_at_ms) >= ?2
         ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![ctx.device, since, i64::try_from(max).unwrap_or(i64::MAX)],
        |r| r.get::<_, i64>(0),
    )?;
    let ids: Vec<i64> = rows.collect::<Result<_, _>>()?;
    Ok(ids
        .into_iter()
        .map(|id| Directive::SilenceAlarm {
            alert_id: id.to_string(),
        })
        .collect())
}

fn auth_failure_job(
    conn: &Connection,
    claimed: &str,
    failure: &AuthFailure,
    endpoint: &str,
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    let registered: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)")?
        .query_row([claimed], |r| r.get(0))?;
    let alert = rules::auth_failed_alert(claimed, registered, failure, endpoint, now_ms);
    Ok(vec![SqliteTx::new(conn).raise_alert(&alert)?.id()])
}

impl Store {
    /// The device registered under `id`, if any.
    pub async fn device_auth(&self, id: &str) -> Result<Option<DeviceAuth>, StoreError> {
        let Ok(id) = DeviceId::new(id) else {
            return Ok(None);
        };
        self.read(move |c| {
            let row: Option<(DeviceKind, Vec<u8>)> = c
                .prepare_cached("SELECT kind, public_key FROM devices WHERE id = ?1")?
                .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            row.map(|(kind, key)| {
                let public_key = <[u8; 32]>::try_from(key)
                    .map_err(|_| StoreError::Corrupt(format!("public key of device {id}")))?;
                Ok(DeviceAuth {
                    id: id.clone(),
                    kind,
                    public_key,
                })
            })
            .transpose()
        })
        .await
    }

    /// Raise `device_auth_failed` for a request that claimed to be `claimed` (one live alert
    /// per registered device; one for every unregistered id together). Returns the alert ids.
    pub async fn record_device_auth_failure(
        &self,
        claimed: String,
        failure: AuthFailure,
        endpoint: &'static str,
        now: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        let now_ms = rules::unix_ms(now);
        self.write(move |c| auth_failure_job(c, &claimed, &failure, endpoint, now_ms))
            .await
    }

    /// Store a batch from an authenticated device (its signature verified, its body parsed,
    /// validated and naming `device`), with every effect, in one write job.
    pub async fn ingest_batch(
        &self,
        device: DeviceAuth,
        batch: Batch,
        settings: IngestRules,
        now: Timestamp,
    ) -> Result<Ingested<BatchAnswer>, StoreError> {
        self.write(move |c| batch_job(c, &device, &batch, settings, now))
            .await
    }

    /// Accept or refuse a heartbeat from an authenticated device.
    pub async fn ingest_heartbeat(
        &self,
        device: DeviceAuth,
        heartbeat: Heartbeat,
        now: Timestamp,
    ) -> Result<Ingested<HeartbeatAnswer>, StoreError> {
        self.write(move |c| heartbeat_job(c, &device, &heartbeat, now))
            .await
    }
}
