//! Device ingest over the real router on 127.0.0.1:0: signed batches, heartbeats and policies
//! from devices whose Ed25519 keys are generated here with ring, checked against the database.

mod common;

use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{ADMIN_PASSWORD, INITIAL_PASSWORD, PASSWORD, RawReply, Server, raw_exchange};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, Batch, BatchAck, DeviceFault, DeviceFaultKind, Direction, Directive, Event,
    EventBody, GatePolicy, HealthState, Heartbeat, HeartbeatAck, NamedHealth, Outcome,
    PolicyRequest, ReaderFault, ReaderHealth, SIGNATURE_HEADER, ScannedCode, SignedKind,
    TagSighting, signing_bytes,
};
use custos_server::domain::role::Role;
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

const ALICE_BADGE: &str = "E20000000000000000000A11";
const BOB_BADGE: &str = "E20000000000000000000B0B";

fn epc(hex: &str) -> Epc {
    Epc::from_hex(hex).unwrap()
}

/// The EPC of test carrier `n`.
fn tag(n: u8) -> Epc {
    epc(&format!("3474257BF40000000000{n:04X}"))
}

/// A device with its own key, generated here.
struct Dev {
    id: &'static str,
    key: Ed25519KeyPair,
}

impl Dev {
    fn new(id: &'static str) -> Dev {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Dev {
            id,
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    fn public_b64(&self) -> String {
        STANDARD.encode(self.key.public_key().as_ref())
    }

    fn sign(&self, kind: SignedKind, body: &[u8]) -> String {
        STANDARD.encode(self.key.sign(&signing_bytes(kind, body)).as_ref())
    }
}

/// POST `body` to `/api/v1/devices/{path_id}/{endpoint}` with `signature` (if any).
async fn post_raw(
    server: &Server,
    path_id: &str,
    endpoint: &str,
    signature: Option<&str>,
    body: Vec<u8>,
) -> RawReply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(s) = signature {
        headers.push((SIGNATURE_HEADER, s));
    }
    raw_exchange(
        server.addr,
        Method::POST,
        &format!("/api/v1/devices/{path_id}/{endpoint}"),
        &headers,
        body,
    )
    .await
}

/// POST `body` signed by `dev` as `kind`.
async fn post_signed(
    server: &Server,
    dev: &Dev,
    endpoint: &str,
    kind: SignedKind,
    body: Vec<u8>,
) -> RawReply {
    let sig = dev.sign(kind, &body);
    post_raw(server, dev.id, endpoint, Some(&sig), body).await
}

fn sighting(e: Epc, at_ms: i64) -> TagSighting {
    TagSighting {
        epc: e,
        antenna_first: 1,
        antenna_last: 3,
        reads: 6,
        peak_rssi: 190,
        first_ms: at_ms - 400,
        last_ms: at_ms,
    }
}

fn passage(seq: u64, at_ms: i64, direction: Direction, tags: &[Epc], badges: &[Epc]) -> Event {
    Event {
        seq,
        at_ms,
        body: EventBody::Passage {
            reader: "uhf-main".into(),
            direction,
            tags: tags.iter().map(|e| sighting(*e, at_ms)).collect(),
            badges: badges.iter().map(|e| sighting(*e, at_ms)).collect(),
            local_verdict: None,
        },
    }
}

fn snapshot(seq: u64, at_ms: i64, present: &[Epc]) -> Event {
    Event {
        seq,
        at_ms,
        body: EventBody::CabinetSnapshot {
            reader: "shelves".into(),
            present: present.to_vec(),
            added: vec![],
            removed: vec![],
        },
    }
}

fn batch(dev: &Dev, epoch: u64, events: Vec<Event>) -> Batch {
    Batch {
        device_id: dev.id.into(),
        epoch,
        events,
    }
}

/// The server's public key as a daemon would pin it.
async fn pinned_key(server: &Server) -> Vec<u8> {
    let reply = raw_exchange(server.addr, Method::GET, "/api/v1/server-key", &[], vec![]).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["algorithm"], "ed25519");
    let key = STANDARD
        .decode(body["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(key, server.public_key());
    key
}

/// Verify the server's signature on an answer, then parse it.
fn open<T: serde::de::DeserializeOwned>(reply: &RawReply, key: &[u8], kind: SignedKind) -> T {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    let sig = STANDARD
        .decode(reply.headers[SIGNATURE_HEADER].to_str().unwrap())
        .unwrap();
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signing_bytes(kind, &reply.bytes), &sig)
        .expect("answer signed by the server key");
    serde_json::from_slice(&reply.bytes).unwrap()
}

/// A server with zones `vault` (S) and `street` (public), a gate between them, two cabinets
/// in the vault, Alice and Bob with badges, and the server key pinned.
struct World {
    server: Server,
    gate: Dev,
    cab1: Dev,
    cab2: Dev,
    key: Vec<u8>,
    alice: i64,
    bob: i64,
}

impl World {
    async fn new() -> World {
        let server = Server::start().await;
        let admin = server.login("admin", ADMIN_PASSWORD).await;
        let reply = server
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(json!({"username": "officer", "password": INITIAL_PASSWORD, "roles": ["security_officer"]})),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let officer = server.activate("officer").await;
        for (id, level) in [("vault", "S"), ("street", "public"), ("annex", "C")] {
            let reply = server
                .call(
                    Method::POST,
                    "/api/v1/zones",
                    Some(&admin),
                    Some(json!({"id": id, "name": id, "level": level})),
                )
                .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
        }
        let (gate, cab1, cab2) = (Dev::new("gate-1"), Dev::new("cab-1"), Dev::new("cab-2"));
        for (dev, body) in [
            (
                &gate,
                json!({"kind": "gate", "inside_zone": "vault", "outside_zone": "street"}),
            ),
            (&cab1, json!({"kind": "cabinet", "zone": "vault"})),
            (&cab2, json!({"kind": "cabinet", "zone": "vault"})),
        ] {
            let mut body = body;
            body["id"] = json!(dev.id);
            body["public_key"] = json!(dev.public_b64());
            let reply = server
                .call(Method::POST, "/api/v1/devices", Some(&admin), Some(body))
                .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
        }
        let mut people = Vec::new();
        // In post with a current training and a signed commitment, relative to the test clock:
        // a badge of someone whose training ran out authorises no exit.
        let training = trained_until(&server);
        for (name, badge) in [("Alice", ALICE_BADGE), ("Bob", BOB_BADGE)] {
            let reply = server
                .call(
                    Method::POST,
                    "/api/v1/people",
                    Some(&officer),
                    Some(
                        json!({"name": name, "department": "R&D", "category": "core",
                                "badge_tag": badge, "training_valid_until": training,
                                "commitment_signed_on": "2020-01-01"}),
                    ),
                )
                .await;
            assert_eq!(reply.status, 201, "{:?}", reply.body);
            people.push(reply.body["id"].as_str().unwrap().parse::<i64>().unwrap());
        }
        // Bob's badge in the normalised form `epc:HEX` (as CUSTODY stores it); Alice's stays bare.
        let bob = people[1];
        server
            .state
            .store()
            .write(move |c| {
                c.execute(
                    "UPDATE people SET badge_tag = ?2 WHERE id = ?1",
                    rusqlite::params![bob, format!("epc:{BOB_BADGE}")],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        let key = pinned_key(&server).await;
        World {
            server,
            gate,
            cab1,
            cab2,
            key,
            alice: people[0],
            bob,
        }
    }

    fn now_ms(&self) -> i64 {
        self.server.now().unix() * 1000
    }

    /// Register carrier `n` (control number `CUS-n`, EPC [`tag`]`(n)`).
    async fn carrier(&self, n: u8, level: &'static str, home: Option<&'static str>) -> i64 {
        self.server
            .state
            .store()
            .write(move |c| {
                c.execute(
                    "INSERT INTO carriers (control_no, kind, level, title, owner_unit, home_device, created_at)
                     VALUES (?1, 'paper', ?2, ?3, 'unit', ?4, '2026-01-01T00:00:00Z')",
                    rusqlite::params![format!("CUS-{n}"), level, format!("Secret title {n}"), home],
                )?;
                let id = c.last_insert_rowid();
                c.execute(
                    "INSERT INTO carrier_tags (tag, carrier_id) VALUES (?1, ?2)",
                    rusqlite::params![format!("epc:{}", tag(n)), id],
                )?;
                Ok(id)
            })
            .await
            .unwrap()
    }

    /// Issue a sign-out of `carrier` to `borrower`, due in `due_in_ms`.
    async fn sign_out(&self, carrier: i64, borrower: i64, may_leave: bool, due_in_ms: i64) -> i64 {
        let now = self.now_ms();
        self.server
            .state
            .store()
            .write(move |c| {
                c.execute(
                    "INSERT INTO signouts (requester, borrower, purpose, due_at_ms, may_leave, state,
                                           created_at, issued_at_ms)
                     VALUES ((SELECT min(id) FROM users), ?1, 'work', ?2, ?3, 'out',
                             '2026-01-01T00:00:00Z', ?4)",
                    rusqlite::params![borrower, now + due_in_ms, i64::from(may_leave), now],
                )?;
                let id = c.last_insert_rowid();
                c.execute(
                    "INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (?1, ?2)",
                    rusqlite::params![id, carrier],
                )?;
                c.execute(
                    "UPDATE carriers SET state = 'out', holder = ?2 WHERE id = ?1",
                    rusqlite::params![carrier, borrower],
                )?;
                Ok(id)
            })
            .await
            .unwrap()
    }

    async fn int(&self, sql: &str) -> i64 {
        let sql = sql.to_owned();
        self.server
            .state
            .store()
            .read(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    async fn text(&self, sql: &str) -> Option<String> {
        self.text_owned(sql.to_owned()).await
    }

    async fn text_owned(&self, sql: String) -> Option<String> {
        self.server
            .state
            .store()
            .read(move |c| Ok(c.query_row(&sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// Counts of every table ingest writes, to check that a refusal changed nothing.
    async fn ingest_counts(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for t in [
            "events",
            "device_epochs",
            "carrier_events",
            "tag_sightings",
            "cabinet_contents",
            "pending_removals",
            "audit",
        ] {
            out.push((t, self.server.rows(t).await));
        }
        out.push((
            "device_status.last_heartbeat_ms",
            self.int("SELECT coalesce(sum(last_heartbeat_ms), 0) FROM device_status")
                .await,
        ));
        out
    }

    async fn send_batch(&self, dev: &Dev, b: &Batch) -> RawReply {
        let body = serde_json::to_vec(b).unwrap();
        post_signed(&self.server, dev, "batches", SignedKind::Batch, body).await
    }

    /// Send `b` and expect its ack. A test that reports events later than the allowed skew
    /// ahead of the server's clock (snapshots "ten minutes later") moves the clock there
    /// first, as time would have passed.
    async fn ack(&self, dev: &Dev, b: &Batch) -> BatchAck {
        let latest = b.events.iter().map(|e| e.at_ms).max().unwrap_or(0);
        let ahead = latest - self.now_ms();
        if ahead > custos_protocol::uplink::MAX_CLOCK_SKEW_MS {
            self.server.advance(ahead.div_euclid(1000));
        }
        let reply = self.send_batch(dev, b).await;
        let ack: BatchAck = open(&reply, &self.key, SignedKind::BatchAck);
        ack.check_answers(b).expect("the ack answers the batch");
        ack
    }

    async fn heartbeat(&self, dev: &Dev, hb: &Heartbeat) -> RawReply {
        let body = serde_json::to_vec(hb).unwrap();
        post_signed(&self.server, dev, "heartbeats", SignedKind::Heartbeat, body).await
    }

    /// The gate policy `dev` fetches now (signed request, signature checked).
    async fn policy(&self, dev: &Dev) -> GatePolicy {
        let request = PolicyRequest {
            device_id: dev.id.into(),
            epoch: 1,
            at_ms: self.now_ms(),
            have_version: 0,
        };
        let body = serde_json::to_vec(&request).unwrap();
        let reply = post_signed(&self.server, dev, "policy", SignedKind::PolicyRequest, body).await;
        open(&reply, &self.key, SignedKind::Policy)
    }

    async fn alerts(&self, kind: &str) -> Vec<Value> {
        let kind = kind.to_owned();
        self.server
            .state
            .store()
            .read(move |c| {
                let mut stmt = c.prepare(
                    "SELECT id, state, cause, occurrences, carrier_id, device_id, person_id,
                            detail_json, severity
                     FROM alerts WHERE kind = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([kind], |r| {
                    Ok(json!({
                        "id": r.get::<_, i64>(0)?,
                        "state": r.get::<_, String>(1)?,
                        "cause": r.get::<_, String>(2)?,
                        "occurrences": r.get::<_, i64>(3)?,
                        "carrier_id": r.get::<_, Option<i64>>(4)?,
                        "device_id": r.get::<_, Option<String>>(5)?,
                        "person_id": r.get::<_, Option<i64>>(6)?,
                        "detail": serde_json::from_str::<Value>(&r.get::<_, String>(7)?).unwrap(),
                        "severity": r.get::<_, String>(8)?,
                    }))
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap()
    }
}

/// A training certificate's last day for people in post: five years from the test clock's today.
fn trained_until(server: &Server) -> String {
    let today = server.now().date();
    today.add_years(5).unwrap_or(today).to_string()
}

fn alarm_of(ack: &BatchAck, seq: u64) -> Option<(AlarmReason, Option<String>)> {
    ack.verdicts
        .iter()
        .find(|v| v.seq == seq)
        .and_then(|v| match &v.outcome {
            Outcome::Alarm { reason, alert_id } => Some((*reason, alert_id.clone())),
            Outcome::Allowed => None,
        })
}

fn allowed(ack: &BatchAck, seq: u64) -> bool {
    ack.verdicts
        .iter()
        .any(|v| v.seq == seq && v.outcome == Outcome::Allowed)
}

#[tokio::test]
async fn an_unauthorised_exit_alarms_once_and_a_redelivery_gets_the_same_answer() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", Some("cab-1")).await;
    let t = w.now_ms();
    let b = batch(
        &w.gate,
        1,
        vec![passage(1, t, Direction::Out, &[tag(1)], &[epc(BOB_BADGE)])],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert_eq!(ack.acked_through, 1);
    let (reason, alert_id) = alarm_of(&ack, 1).expect("alarm");
    assert_eq!(reason, AlarmReason::UnauthorizedRemoval);
    let alert_id = alert_id.expect("alert id");
    assert_eq!(
        ack.directives,
        [Directive::SoundAlarm {
            duration_ms: 30_000,
            lock_door: true,
            alert_id: Some(alert_id.clone()),
        }]
    );
    let alerts = w.alerts("unauthorized_removal").await;
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a["id"].to_string(), alert_id);
    assert_eq!(a["state"], "open");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["carrier_id"], c1);
    assert_eq!(a["device_id"], "gate-1");
    assert_eq!(a["person_id"], w.bob);
    assert_eq!(a["detail"]["control_no"], "CUS-1");
    assert_eq!(a["detail"]["level"], "S");
    assert_eq!(a["detail"]["direction"], "out");
    assert_eq!(a["detail"]["gate"], "gate-1");
    assert_eq!(a["detail"]["badge_holders"], json!(["Bob"]));
    assert!(
        !a.to_string().contains("Secret title"),
        "no carrier title in alerts"
    );
    assert_eq!(w.server.rows("events").await, 1);
    assert_eq!(w.server.rows("carrier_events").await, 1);
    assert_eq!(
        w.server.state.metrics().events_ingested(),
        1,
        "/metrics counts it"
    );
    assert_eq!(
        w.text(&format!(
            "SELECT last_seen_device FROM carriers WHERE id = {c1}"
        ))
        .await
        .as_deref(),
        Some("gate-1")
    );
    let audit_after_first = w.server.rows("audit").await;

    // The same batch again (the ack was lost): the same answer, nothing new.
    let again = w.ack(&w.gate, &b).await;
    assert_eq!(again, ack);
    let alerts = w.alerts("unauthorized_removal").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["occurrences"], 1);
    assert_eq!(w.server.rows("events").await, 1);
    assert_eq!(w.server.rows("carrier_events").await, 1);
    assert_eq!(w.server.rows("audit").await, audit_after_first);
    assert!(
        !w.text("SELECT group_concat(body_json || coalesce(verdict_json, '')) FROM events")
            .await
            .unwrap()
            .contains("Secret title")
    );
}

#[tokio::test]
async fn a_turned_back_records_that_the_carriers_did_not_pass() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", Some("cab-1")).await;
    let c2 = w.carrier(2, "S", Some("cab-1")).await;
    let t = w.now_ms();
    // Both reach the outer field: the provisional passage alarms. Then carrier 1 goes back.
    let out = batch(
        &w.gate,
        1,
        vec![passage(1, t, Direction::Out, &[tag(1), tag(2)], &[])],
    );
    assert!(alarm_of(&w.ack(&w.gate, &out).await, 1).is_some());
    let turned = |seq: u64, passage_seq: u64, tags: &[Epc]| Event {
        seq,
        at_ms: t + 2_000,
        body: EventBody::TurnedBack {
            reader: "uhf-main".into(),
            passage_seq,
            tags: tags.to_vec(),
        },
    };
    // A tag of no carrier (9) is ignored.
    let back = batch(&w.gate, 1, vec![turned(2, 1, &[tag(1), tag(9)])]);
    let ack = w.ack(&w.gate, &back).await;
    assert_eq!((ack.acked_through, ack.verdicts.len()), (2, 0));
    // The attempt happened: its alert stays open.
    let alerts = w.alerts("unauthorized_removal").await;
    assert!(alerts.iter().all(|a| a["state"] == "open"), "{alerts:?}");

    let keeper = w.server.tokens_per_role().await[&Role::Custodian].clone();
    let movements = |carrier: i64| {
        let (server, keeper) = (&w.server, &keeper);
        async move {
            let reply = server
                .call(
                    Method::GET,
                    &format!("/api/v1/carriers/{carrier}/history"),
                    Some(keeper),
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            reply
                .body
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["type"] != "alert")
                .map(|i| {
                    format!(
                        "{} {} {}",
                        i["type"].as_str().unwrap(),
                        i["device_id"].as_str().unwrap(),
                        i["direction"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        movements(c1).await,
        ["passage gate-1 out", "turned_back gate-1 out"]
    );
    assert_eq!(movements(c2).await, ["passage gate-1 out"]);

    // Delivered again: the same answer, nothing new.
    let rows = w.server.rows("carrier_events").await;
    assert_eq!(w.ack(&w.gate, &back).await, ack);
    assert_eq!(w.server.rows("carrier_events").await, rows);
    // One naming an event that is not a passage (seq 2 is the turned-back itself) is stored
    // and acknowledged, with no history; one naming a later seq is refused whole.
    let stray = batch(&w.gate, 1, vec![turned(3, 2, &[tag(2)])]);
    assert_eq!(w.ack(&w.gate, &stray).await.acked_through, 3);
    assert_eq!(w.server.rows("carrier_events").await, rows);
    assert_eq!(w.server.rows("events").await, 3);
    assert_eq!(movements(c2).await, ["passage gate-1 out"]);
    let forward = batch(&w.gate, 1, vec![turned(4, 4, &[tag(2)])]);
    assert_eq!(w.send_batch(&w.gate, &forward).await.status, 400);
    assert_eq!(w.server.rows("events").await, 3);
}

/// Security review (issue 9, gate badge rule): a TS carrier on a sign-out that lets it leave,
/// carried out with no badge read at all, is refused (`badge_missing`, alarm and locked door),
/// and the policy the gate decides by offline requires the badge too; with the borrower's
/// badge it leaves.
#[tokio::test]
async fn a_ts_carrier_leaving_with_no_badge_read_alarms() {
    let w = World::new().await;
    let c1 = w.carrier(1, "TS", Some("cab-1")).await;
    w.sign_out(c1, w.alice, true, 3_600_000).await;
    let t = w.now_ms();
    let b = batch(
        &w.gate,
        1,
        vec![
            passage(1, t, Direction::Out, &[tag(1)], &[]),
            passage(2, t + 1, Direction::Out, &[tag(1)], &[epc(ALICE_BADGE)]),
        ],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert_eq!(ack.acked_through, 2);
    assert_eq!(
        alarm_of(&ack, 1).unwrap().0,
        AlarmReason::BadgeMissing,
        "{ack:?}"
    );
    assert!(allowed(&ack, 2), "{ack:?}");
    assert!(
        matches!(
            ack.directives[..],
            [Directive::SoundAlarm {
                lock_door: true,
                ..
            }]
        ),
        "{ack:?}"
    );
    let removals = w.alerts("unauthorized_removal").await;
    assert_eq!(removals.len(), 1);
    assert_eq!(removals[0]["detail"]["reason"], "badge_missing");
    assert_eq!(removals[0]["person_id"], w.alice);
    // The gate's policy says the same: the entry requires Alice's badge.
    let policy = w.policy(&w.gate).await;
    assert_eq!(policy.allowed.len(), 1);
    assert!(policy.allowed[0].badge_required, "{policy:?}");
    assert_eq!(
        policy.decide(&[tag(1)], &[], t).reason(),
        Some(AlarmReason::BadgeMissing)
    );
}

#[tokio::test]
async fn an_authorised_exit_is_allowed_and_the_wrong_badge_alarms() {
    let w = World::new().await;
    // A C carrier: its level needs no badge read by default (`[gate] badge_required`).
    let c1 = w.carrier(1, "C", Some("cab-1")).await;
    w.sign_out(c1, w.alice, true, 3_600_000).await;
    let t = w.now_ms();
    let stranger = epc("AAAA0000000000000000FFFF");
    let b = batch(
        &w.gate,
        1,
        vec![
            // Alice carries it out with her badge (among Bob's): allowed.
            passage(
                1,
                t,
                Direction::Out,
                &[tag(1)],
                &[epc(BOB_BADGE), epc(ALICE_BADGE)],
            ),
            // Nobody's badge read: no badge check for a C carrier.
            passage(2, t + 1, Direction::Out, &[tag(1)], &[]),
            // Only Bob's badge: the borrower is absent.
            passage(3, t + 2, Direction::Out, &[tag(1)], &[epc(BOB_BADGE)]),
            // An unknown tag: low alert, no alarm.
            passage(4, t + 3, Direction::In, &[stranger], &[]),
        ],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert_eq!(ack.acked_through, 4);
    assert!(allowed(&ack, 1), "{ack:?}");
    assert!(allowed(&ack, 2), "{ack:?}");
    assert_eq!(alarm_of(&ack, 3).unwrap().0, AlarmReason::BorrowerAbsent);
    assert!(allowed(&ack, 4), "{ack:?}");
    assert_eq!(ack.directives.len(), 1);
    let removals = w.alerts("unauthorized_removal").await;
    assert_eq!(removals.len(), 1);
    assert_eq!(removals[0]["detail"]["reason"], "borrower_absent");
    assert_eq!(removals[0]["detail"]["badge_holders"], json!(["Bob"]));
    let unknown = w.alerts("unknown_tag").await;
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0]["severity"], "low");
    assert_eq!(unknown[0]["cause"], format!("unknown_tag:tag:{stranger}"));
    // A person's badge is never an unknown tag, even in the carrier tag list.
    let b2 = batch(
        &w.gate,
        1,
        vec![passage(5, t + 4, Direction::In, &[epc(ALICE_BADGE)], &[])],
    );
    let ack = w.ack(&w.gate, &b2).await;
    assert!(allowed(&ack, 5));
    assert_eq!(w.alerts("unknown_tag").await.len(), 1);
}

#[tokio::test]
async fn an_expired_signout_or_one_without_may_leave_alarms() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", None).await;
    let c2 = w.carrier(2, "S", None).await;
    w.sign_out(c1, w.alice, true, -1_000).await;
    w.sign_out(c2, w.alice, false, 3_600_000).await;
    let t = w.now_ms();
    let b = batch(
        &w.gate,
        1,
        vec![
            passage(1, t, Direction::Out, &[tag(1)], &[]),
            passage(2, t, Direction::Out, &[tag(2)], &[]),
        ],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert_eq!(alarm_of(&ack, 1).unwrap().0, AlarmReason::SignoutExpired);
    assert_eq!(
        alarm_of(&ack, 2).unwrap().0,
        AlarmReason::UnauthorizedRemoval
    );
    assert_eq!(w.alerts("unauthorized_removal").await.len(), 2);
}

/// A person whose training runs out today: their badge lets the carrier out until midnight
/// (UTC), and from then on not, although the sign-out is still due later; the gate policy
/// says the same (the entry ends at midnight, then a new version drops it).
#[tokio::test]
async fn an_expired_persons_badge_no_longer_authorises_an_exit() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", None).await;
    let due_in = 3 * 24 * 3_600_000;
    w.sign_out(c1, w.alice, true, due_in).await;
    let today = w.server.now().date();
    let alice = w.alice;
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE people SET training_valid_until = ?2 WHERE id = ?1",
                rusqlite::params![alice, today.to_string()],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let midnight = today.plus_days(1).start_unix_ms();
    let before = w.policy(&w.gate).await;
    let entry = before.allowed.iter().find(|a| a.epc == tag(1)).unwrap();
    assert_eq!(entry.until_ms, midnight, "the entry ends with the training");
    let t = w.now_ms();
    let out = |seq, at| passage(seq, at, Direction::Out, &[tag(1)], &[epc(ALICE_BADGE)]);
    let ack = w.ack(&w.gate, &batch(&w.gate, 1, vec![out(1, t)])).await;
    assert!(allowed(&ack, 1), "still certified today: {ack:?}");
    // Past midnight: refused, an unauthorised removal, and the policy drops the entry.
    w.server.advance((midnight - t) / 1000 + 1);
    let t = w.now_ms();
    let ack = w.ack(&w.gate, &batch(&w.gate, 1, vec![out(2, t)])).await;
    assert_eq!(alarm_of(&ack, 2).unwrap().0, AlarmReason::SignoutExpired);
    let removals = w.alerts("unauthorized_removal").await;
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert_eq!(removals[0]["person_id"], w.alice);
    assert_eq!(removals[0]["detail"]["badge_holders"], json!(["Alice"]));
    assert_eq!(removals[0]["detail"]["reason"], "signout_expired");
    assert_eq!(
        removals[0]["detail"]["borrower_certification_expired"],
        true
    );
    // The next heartbeat of a gate holding the old policy tells it to fetch the new one.
    let hb = Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 1,
        at_ms: t,
        readers: vec![],
        outbox_depth: 0,
        policy_version: before.version,
        faults: vec![],
    };
    let ack: HeartbeatAck = open(
        &w.heartbeat(&w.gate, &hb).await,
        &w.key,
        SignedKind::HeartbeatAck,
    );
    assert!(ack.policy_version > before.version);
    assert!(
        ack.directives.contains(&Directive::RefreshPolicy),
        "{ack:?}"
    );
    let after = w.policy(&w.gate).await;
    assert!(
        after.version > before.version,
        "a new version for the gates"
    );
    assert!(after.allowed.iter().all(|a| a.epc != tag(1)));
    assert!(
        after.badges.contains(&epc(ALICE_BADGE)),
        "her badge is still known as a badge, not taken for a carrier"
    );
    assert_eq!(
        after.decide(&[tag(1)], &[epc(ALICE_BADGE)], t).carriers[0].alarm,
        Some(AlarmReason::UnauthorizedRemoval),
        "an offline gate refuses too"
    );
}

/// A badge read on an inward passage into a zone above its holder's clearance raises
/// `clearance_violation` for the person (no carrier involved), and sounds the gate.
#[tokio::test]
async fn a_person_entering_a_zone_above_their_clearance_is_a_clearance_violation() {
    let w = World::new().await;
    // Carol: general staff (cleared for C at most) with a badge; the vault is S.
    const CAROL_BADGE: &str = "E20000000000000000000C0C";
    let officer = w.server.login("officer", PASSWORD).await;
    let reply = w
        .server
        .call(
            Method::POST,
            "/api/v1/people",
            Some(&officer),
            Some(
                json!({"name": "Carol", "department": "R&D", "category": "general",
                        "badge_tag": CAROL_BADGE, "training_valid_until": trained_until(&w.server),
                        "commitment_signed_on": "2020-01-01"}),
            ),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let carol: i64 = reply.body["id"].as_str().unwrap().parse().unwrap();
    let t = w.now_ms();
    let b = batch(
        &w.gate,
        1,
        vec![
            // Alice (core) walks in: cleared for the vault.
            passage(1, t, Direction::In, &[], &[epc(ALICE_BADGE)]),
            // Carol walks in: above her clearance.
            passage(2, t + 1, Direction::In, &[], &[epc(CAROL_BADGE)]),
            // Carol walks out to the street: leaving is not entering a classified zone.
            passage(3, t + 2, Direction::Out, &[], &[epc(CAROL_BADGE)]),
        ],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert!(allowed(&ack, 1), "{ack:?}");
    assert!(allowed(&ack, 3), "{ack:?}");
    let (reason, id) = alarm_of(&ack, 2).unwrap();
    assert_eq!(reason, AlarmReason::ClearanceViolation);
    assert!(ack.directives.iter().any(|d| matches!(
        d,
        Directive::SoundAlarm { lock_door: false, alert_id, .. } if *alert_id == id
    )));
    let v = w.alerts("clearance_violation").await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["person_id"], carol);
    assert_eq!(v[0]["carrier_id"], Value::Null);
    assert_eq!(v[0]["device_id"], "gate-1");
    assert_eq!(v[0]["detail"]["zone_level"], "S");
    assert_eq!(v[0]["detail"]["person_clearance"], "C");
    assert_eq!(v[0]["detail"]["badge_holders"], json!(["Carol"]));
    assert_eq!(v[0]["detail"]["direction"], "in");
}

#[tokio::test]
async fn a_dispatched_carrier_passes_within_its_window_and_alarms_after_it() {
    let w = World::new().await;
    let c = w.carrier(3, "S", None).await;
    let until = w.now_ms() + 3_600_000;
    w.server
        .state
        .store()
        .write(move |conn| {
            conn.execute(
                "UPDATE carriers SET state = 'dispatched', dispatch_until_ms = ?2 WHERE id = ?1",
                rusqlite::params![c, until],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    // The policy lets offline gates agree.
    let policy = w.policy(&w.gate).await;
    assert!(
        policy
            .allowed
            .iter()
            .any(|a| a.epc == tag(3) && a.until_ms == until && !a.badge_required)
    );
    let t = w.now_ms();
    let ack = w
        .ack(
            &w.gate,
            &batch(
                &w.gate,
                1,
                vec![passage(1, t, Direction::Out, &[tag(3)], &[])],
            ),
        )
        .await;
    assert!(allowed(&ack, 1), "within the window");
    w.server.advance(3_601);
    let t = w.now_ms();
    let ack = w
        .ack(
            &w.gate,
            &batch(
                &w.gate,
                1,
                vec![passage(2, t, Direction::Out, &[tag(3)], &[])],
            ),
        )
        .await;
    assert_eq!(alarm_of(&ack, 2).unwrap().0, AlarmReason::SignoutExpired);
}

/// A device out for repair by dispatch reaches its repairer through the dispatch workflow:
/// the dispatch is asked for, approved and sent, its gate passage within the window is
/// authorised (no `unauthorized_removal`) and after the window it alarms. Its return brings it
/// back into custody (`in_storage`, window cleared, audited) and it is signed out like any
/// other carrier. A device repaired on site is never dispatched while its repair is open (409
/// `in_repair`).
#[tokio::test]
async fn a_carrier_out_for_repair_by_dispatch_leaves_within_its_dispatch_window() {
    let w = World::new().await;
    let tokens = w.server.tokens_per_role().await;
    let (custodian, officer) = (&tokens[&Role::Custodian], &tokens[&Role::SecurityOfficer]);
    let off_site = w.carrier(3, "S", None).await;
    let on_site = w.carrier(4, "S", None).await;
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE carriers SET kind = 'laptop' WHERE id IN (?1, ?2)",
                rusqlite::params![off_site, on_site],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let call = |token: &String, path: String, body: Option<Value>| {
        let token = token.clone();
        let server = &w.server;
        async move { server.call(Method::POST, &path, Some(&token), body).await }
    };
    let mut repairs = Vec::new();
    for (carrier, mode, escort) in [
        (off_site, "dispatch", None),
        (on_site, "on_site", Some("Li Escort")),
    ] {
        let body = json!({
            "carrier_id": carrier.to_string(), "repairer": "Wang Repair Co.",
            "qualification_no": "BM-2026/017", "qualified_until": "2099-12-31", "mode": mode,
            "escort": escort, "media": "removed_and_kept",
            "media_note": "SSD removed, kept in cab-1", "reason": "screen broken"
        });
        let reply = call(custodian, "/api/v1/repairs".into(), Some(body)).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        repairs.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    let until = w.server.now().plus_secs(3600);
    let dispatch = |carrier: i64| {
        json!({
            "carrier_ids": [carrier.to_string()], "destination": "Wang Repair Co.",
            "courier": "机要交通员 陈", "sealed_by": "保管员 李", "window_until": until.to_string()
        })
    };

    // Repaired on site: no dispatch, nothing written.
    let before = w.server.audit_count().await;
    let refused = call(
        custodian,
        "/api/v1/dispatches".into(),
        Some(dispatch(on_site)),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error()),
        (409, "in_repair"),
        "{:?}",
        refused.body
    );
    assert_eq!(w.server.audit_count().await, before);

    // Repaired off site: requested, approved, sent.
    let asked = call(
        custodian,
        "/api/v1/dispatches".into(),
        Some(dispatch(off_site)),
    )
    .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let path = format!("/api/v1/dispatches/{}", asked.body["id"].as_str().unwrap());
    let approved = call(officer, format!("{path}/approve"), None).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let sent = call(custodian, format!("{path}/send"), None).await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    assert_eq!(
        w.text_owned(format!("SELECT state FROM carriers WHERE id = {off_site}"))
            .await
            .as_deref(),
        Some("dispatched")
    );

    // Its gate passage within the window is authorised.
    let t = w.now_ms();
    let out = batch(
        &w.gate,
        1,
        vec![passage(1, t, Direction::Out, &[tag(3)], &[])],
    );
    let ack = w.ack(&w.gate, &out).await;
    assert!(allowed(&ack, 1), "within the window: {ack:?}");
    assert!(w.alerts("unauthorized_removal").await.is_empty());

    // After the window it alarms.
    w.server.advance(3_601);
    let t = w.now_ms();
    let late = batch(
        &w.gate,
        1,
        vec![passage(2, t, Direction::Out, &[tag(3)], &[])],
    );
    let ack = w.ack(&w.gate, &late).await;
    assert!(alarm_of(&ack, 2).is_some(), "after the window: {ack:?}");

    // Its return brings it back into custody, window cleared, in the same step.
    let returned = call(
        custodian,
        format!("/api/v1/repairs/{}/return", repairs[0]),
        Some(json!({"note": "SSD reinstalled, seals checked"})),
    )
    .await;
    assert_eq!(returned.status, 200, "{:?}", returned.body);
    assert_eq!(
        w.text_owned(format!(
            "SELECT state || '/' || coalesce(dispatch_until_ms, 'none') FROM carriers WHERE id = {off_site}"
        ))
        .await
        .as_deref(),
        Some("in_storage/none")
    );
    let audited = w
        .text_owned(
            "SELECT after_json FROM audit WHERE action = 'repair.return' ORDER BY id DESC LIMIT 1"
                .into(),
        )
        .await
        .unwrap_or_default();
    assert!(
        audited.contains("\"carrier_state\":\"in_storage\""),
        "{audited}"
    );

    // At home again, it is signed out like any other carrier.
    let person = call(
        officer,
        "/api/v1/people".into(),
        Some(json!({
            "name": "张三", "department": "一处", "category": "important",
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"
        })),
    )
    .await;
    assert_eq!(person.status, 201, "{:?}", person.body);
    let due = w.server.now().plus_secs(86_400).to_string();
    let asked = call(
        custodian,
        "/api/v1/signouts".into(),
        Some(json!({
            "carrier_ids": [off_site.to_string()], "borrower": person.body["id"],
            "purpose": "review", "due_at": due, "may_leave": false
        })),
    )
    .await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let path = format!("/api/v1/signouts/{}", asked.body["id"].as_str().unwrap());
    let approved = call(officer, format!("{path}/approve"), None).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    let issued = call(custodian, format!("{path}/issue"), None).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    assert_eq!(
        w.text_owned(format!("SELECT state FROM carriers WHERE id = {off_site}"))
            .await
            .as_deref(),
        Some("out")
    );
}

#[tokio::test]
async fn a_carrier_entering_a_lower_zone_is_a_clearance_violation() {
    let w = World::new().await;
    let ts = w.carrier(9, "TS", None).await;
    let t = w.now_ms();
    let b = batch(
        &w.gate,
        1,
        vec![passage(1, t, Direction::In, &[tag(9)], &[])],
    );
    let ack = w.ack(&w.gate, &b).await;
    let (reason, id) = alarm_of(&ack, 1).unwrap();
    assert_eq!(reason, AlarmReason::ClearanceViolation);
    assert_eq!(
        ack.directives,
        [Directive::SoundAlarm {
            duration_ms: 30_000,
            lock_door: false,
            alert_id: id,
        }]
    );
    let v = w.alerts("clearance_violation").await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["carrier_id"], ts);
    assert_eq!(v[0]["detail"]["zone_level"], "S");
}

#[tokio::test]
async fn forged_signatures_and_unknown_devices_are_refused_and_alerted() {
    let w = World::new().await;
    w.carrier(1, "S", None).await;
    let before = w.ingest_counts().await;
    let b = batch(
        &w.gate,
        1,
        vec![passage(1, w.now_ms(), Direction::Out, &[tag(1)], &[])],
    );
    let body = serde_json::to_vec(&b).unwrap();

    // Signed by another key.
    let forger = Dev::new("gate-1");
    let reply = post_signed(
        &w.server,
        &forger,
        "batches",
        SignedKind::Batch,
        body.clone(),
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "device_auth_failed");
    // Signed by the right key, but as another kind of message.
    let wrong_kind = w.gate.sign(SignedKind::Heartbeat, &body);
    let reply = post_raw(
        &w.server,
        "gate-1",
        "batches",
        Some(&wrong_kind),
        body.clone(),
    )
    .await;
    assert_eq!(reply.status, 401);
    // No signature, and garbage in the header.
    assert_eq!(
        post_raw(&w.server, "gate-1", "batches", None, body.clone())
            .await
            .status,
        401
    );
    assert_eq!(
        post_raw(&w.server, "gate-1", "batches", Some("!!"), body.clone())
            .await
            .status,
        401
    );
    // A good signature over other bytes (a tampered body).
    let mut tampered = body.clone();
    let at = tampered.len() - 5;
    tampered[at] = b'0';
    let sig = w.gate.sign(SignedKind::Batch, &body);
    assert_eq!(
        post_raw(&w.server, "gate-1", "batches", Some(&sig), tampered)
            .await
            .status,
        401
    );
    let alerts = w.alerts("device_auth_failed").await;
    assert_eq!(alerts.len(), 1, "one live alert per device");
    assert_eq!(alerts[0]["cause"], "device_auth_failed:device:gate-1");
    assert_eq!(alerts[0]["device_id"], "gate-1");
    assert_eq!(alerts[0]["occurrences"], 5);

    // Unknown devices, however many ids: one alert, never a device reference.
    for id in ["ghost-1", "ghost-2", "not%20a%20name"] {
        let reply = post_raw(&w.server, id, "batches", Some(&sig), body.clone()).await;
        assert_eq!(reply.status, 401, "{id}");
        assert_eq!(reply.json()["message"], "device authentication failed");
    }
    let alerts = w.alerts("device_auth_failed").await;
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1]["cause"], "device_auth_failed:unknown");
    assert_eq!(alerts[1]["device_id"], Value::Null);
    assert_eq!(alerts[1]["occurrences"], 3);
    // Heartbeats and policy requests are checked the same way.
    let hb = Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 1,
        at_ms: w.now_ms(),
        readers: vec![],
        outbox_depth: 0,
        policy_version: 0,
        faults: vec![],
    };
    let hb_body = serde_json::to_vec(&hb).unwrap();
    let reply = post_signed(
        &w.server,
        &forger,
        "heartbeats",
        SignedKind::Heartbeat,
        hb_body,
    )
    .await;
    assert_eq!(reply.status, 401);
    let req = serde_json::to_vec(&PolicyRequest {
        device_id: "gate-1".into(),
        epoch: 1,
        at_ms: w.now_ms(),
        have_version: 0,
    })
    .unwrap();
    let reply = post_signed(&w.server, &forger, "policy", SignedKind::PolicyRequest, req).await;
    assert_eq!(reply.status, 401);
    assert_eq!(w.alerts("device_auth_failed").await[0]["occurrences"], 7);
    // Nothing was stored, and no alarm was raised for the carrier.
    assert_eq!(w.ingest_counts().await, before);
    assert!(w.alerts("unauthorized_removal").await.is_empty());
}

#[tokio::test]
async fn malformed_bodies_change_nothing() {
    let w = World::new().await;
    w.carrier(1, "S", None).await;
    let t = w.now_ms();
    let before = w.ingest_counts().await;
    let good = serde_json::to_value(batch(
        &w.gate,
        1,
        vec![passage(1, t, Direction::Out, &[tag(1)], &[])],
    ))
    .unwrap();
    let mut unknown_field = good.clone();
    unknown_field["hmac"] = json!("x");
    let mut other_device = good.clone();
    other_device["device_id"] = json!("cab-1");
    let mut seq_zero = good.clone();
    seq_zero["events"][0]["seq"] = json!(0);
    let mut huge_epoch = good.clone();
    huge_epoch["epoch"] = json!(u64::MAX);
    let mut no_events = good.clone();
    no_events["events"] = json!([]);
    let mut bad_epc = good.clone();
    bad_epc["events"][0]["body"]["tags"][0]["epc"] = json!("XYZ");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{\"device_id\":".to_vec()),
        ("empty", vec![]),
        ("unknown field", serde_json::to_vec(&unknown_field).unwrap()),
        ("other device", serde_json::to_vec(&other_device).unwrap()),
        ("seq zero", serde_json::to_vec(&seq_zero).unwrap()),
        ("huge epoch", serde_json::to_vec(&huge_epoch).unwrap()),
        ("no events", serde_json::to_vec(&no_events).unwrap()),
        ("bad epc", serde_json::to_vec(&bad_epc).unwrap()),
    ];
    for (what, body) in &cases {
        let reply = post_signed(
            &w.server,
            &w.gate,
            "batches",
            SignedKind::Batch,
            body.clone(),
        )
        .await;
        assert_eq!(
            reply.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&reply.bytes)
        );
        assert_eq!(reply.json()["error"], "bad_request", "{what}");
    }
    assert_eq!(w.ingest_counts().await, before);
    let alerts = w.alerts("device_auth_failed").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["occurrences"], cases.len());
    assert!(w.alerts("unauthorized_removal").await.is_empty());

    // Larger than the uplink limit: 413 before anything else.
    let reply = post_raw(
        &w.server,
        "gate-1",
        "batches",
        None,
        vec![b' '; (1 << 20) + 1],
    )
    .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error"], "payload_too_large");
    // But a valid batch larger than the general API body limit (16 KiB here) is fine.
    let many: Vec<Epc> = (0..200u16).map(|n| epc(&format!("E2{n:022X}"))).collect();
    let big = batch(&w.gate, 1, vec![passage(1, t, Direction::In, &many, &[])]);
    assert!(serde_json::to_vec(&big).unwrap().len() > 16 * 1024);
    let ack = w.ack(&w.gate, &big).await;
    assert_eq!(ack.acked_through, 1);
}

#[tokio::test]
async fn sequencing_gaps_old_epochs_and_altered_redeliveries_are_refused() {
    let w = World::new().await;
    let t = w.now_ms();
    let scan = |seq: u64, text: &str| Event {
        seq,
        at_ms: t,
        body: EventBody::Scan {
            reader: "desk".into(),
            code: ScannedCode::Barcode { text: text.into() },
        },
    };
    let ack = w
        .ack(
            &w.gate,
            &batch(&w.gate, 2, vec![scan(1, "a"), scan(2, "b")]),
        )
        .await;
    assert_eq!(ack.acked_through, 2);
    let counts = w.ingest_counts().await;

    // A gap: seq 5 when 2 is the last stored.
    let reply = w
        .send_batch(&w.gate, &batch(&w.gate, 2, vec![scan(5, "e")]))
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "seq_gap");
    assert_eq!(reply.json()["resend_from"], 3);
    // An older epoch with events never stored: a replay.
    let reply = w
        .send_batch(&w.gate, &batch(&w.gate, 1, vec![scan(1, "x")]))
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "replay_rejected");
    // A stored seq re-delivered with other content.
    let reply = w
        .send_batch(
            &w.gate,
            &batch(&w.gate, 2, vec![scan(2, "B"), scan(3, "c")]),
        )
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "replay_rejected");
    assert_eq!(w.ingest_counts().await, counts, "refusals store nothing");
    let replays = w.alerts("replay_rejected").await;
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0]["cause"], "replay_rejected:device:gate-1");
    assert_eq!(replays[0]["occurrences"], 3);

    // An overlapping resend: the overlap is ignored, the rest stored.
    let ack = w
        .ack(
            &w.gate,
            &batch(&w.gate, 2, vec![scan(2, "b"), scan(3, "c")]),
        )
        .await;
    assert_eq!(ack.acked_through, 3);
    assert_eq!(w.server.rows("events").await, 3);
    // A new epoch starts at seq 1 (and not later).
    let reply = w
        .send_batch(&w.gate, &batch(&w.gate, 3, vec![scan(2, "z")]))
        .await;
    assert_eq!(reply.json()["resend_from"], 1);
    let ack = w.ack(&w.gate, &batch(&w.gate, 3, vec![scan(1, "z")])).await;
    assert_eq!((ack.epoch, ack.acked_through), (3, 1));
    // The old epoch's stored batch is still answered (idempotent), not refused.
    let ack = w
        .ack(
            &w.gate,
            &batch(&w.gate, 2, vec![scan(1, "a"), scan(2, "b")]),
        )
        .await;
    assert_eq!(ack.acked_through, 2);
    assert_eq!(w.server.rows("events").await, 4);
    assert_eq!(
        w.int("SELECT acked_through FROM device_epochs WHERE device_id = 'gate-1' AND epoch = 2")
            .await,
        3
    );
}

fn health(state: HealthState, fault: Option<ReaderFault>) -> ReaderHealth {
    ReaderHealth {
        state,
        fault,
        frames_ok: 10,
        checksum_errors: 0,
        dropped_bytes: 0,
        last_read_ms: None,
    }
}

#[tokio::test]
async fn heartbeats_refuse_replays_without_refreshing_liveness() {
    let w = World::new().await;
    let key = w.key.clone();
    let hb = |hb_seq: u64, at_ms: i64, state: HealthState| Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq,
        at_ms,
        readers: vec![NamedHealth {
            reader: "uhf-main".into(),
            health: health(
                state,
                (state == HealthState::Fault).then_some(ReaderFault::SerialLost),
            ),
        }],
        outbox_depth: 0,
        policy_version: 0,
        faults: vec![],
    };
    let first = hb(1, w.now_ms(), HealthState::Ok);
    let sent_at = w.now_ms();
    let reply = w.heartbeat(&w.gate, &first).await;
    let ack: HeartbeatAck = open(&reply, &key, SignedKind::HeartbeatAck);
    ack.check_answers(&first).unwrap();
    // A gate without a policy is told to fetch one.
    assert!(ack.policy_version >= 1);
    assert!(ack.directives.contains(&Directive::RefreshPolicy));
    let last = "SELECT last_heartbeat_ms FROM device_status WHERE device_id = 'gate-1'";
    let t1 = w.int(last).await;
    assert!((sent_at..=w.now_ms()).contains(&t1), "server receive time");

    // Five seconds later, the recorded heartbeat is replayed: refused, liveness untouched.
    w.server.clock_offset.fetch_add(5, Ordering::SeqCst);
    let reply = w.heartbeat(&w.gate, &first).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "replay_rejected");
    assert_eq!(w.int(last).await, t1);
    assert_eq!(w.alerts("replay_rejected").await.len(), 1);

    // The next one is accepted; a reader fault alerts once, not on every heartbeat.
    let second = hb(2, w.now_ms(), HealthState::Fault);
    let ack: HeartbeatAck = open(
        &w.heartbeat(&w.gate, &second).await,
        &key,
        SignedKind::HeartbeatAck,
    );
    ack.check_answers(&second).unwrap();
    let t2 = w.int(last).await;
    assert!(t2 >= t1 + 5_000, "{t1} {t2}");
    let reply = w
        .heartbeat(&w.gate, &hb(3, w.now_ms(), HealthState::Fault))
        .await;
    assert_eq!(reply.status, 200);
    let faults = w.alerts("reader_fault").await;
    assert_eq!(faults.len(), 1);
    assert_eq!(
        faults[0]["cause"],
        "reader_fault:device:gate-1:reader:uhf-main"
    );
    assert_eq!(faults[0]["occurrences"], 1);
    assert_eq!(faults[0]["detail"]["fault"]["type"], "serial_lost");
    let health = w
        .text("SELECT health_json FROM device_status WHERE device_id = 'gate-1'")
        .await
        .unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["readers"]["uhf-main"]["state"], "fault");

    // After a restart (epoch 2), the old epoch's heartbeats are refused whatever their hb_seq;
    // a device clock far off is refused too. Neither refreshes liveness.
    let restarted = Heartbeat {
        epoch: 2,
        ..hb(1, w.now_ms(), HealthState::Ok)
    };
    assert_eq!(w.heartbeat(&w.gate, &restarted).await.status, 200);
    let t3 = w.int(last).await;
    w.server.clock_offset.fetch_add(5, Ordering::SeqCst);
    let reply = w
        .heartbeat(&w.gate, &hb(99, w.now_ms(), HealthState::Ok))
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "replay_rejected");
    let skewed = Heartbeat {
        epoch: 2,
        ..hb(2, w.now_ms() - 3_600_000, HealthState::Ok)
    };
    let reply = w.heartbeat(&w.gate, &skewed).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "clock_skew");
    assert_eq!(w.int(last).await, t3);
    assert!(
        w.alerts("reader_fault")
            .await
            .iter()
            .any(|a| a["cause"] == "reader_fault:device:gate-1:fault:clock_skew")
    );
}

#[tokio::test]
async fn heartbeat_device_faults_raise_reader_faults_once_per_kind() {
    let w = World::new().await;
    let hb = |hb_seq: u64, faults: &[DeviceFaultKind]| Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq,
        at_ms: w.now_ms(),
        readers: vec![NamedHealth {
            reader: "uhf-main".into(),
            health: health(HealthState::Ok, None),
        }],
        outbox_depth: 0,
        policy_version: 0,
        faults: faults
            .iter()
            .map(|&kind| DeviceFault {
                kind,
                since_ms: w.now_ms() - 1_000,
                detail: "gate i/o module not answering".into(),
            })
            .collect(),
    };
    let gate_io = [DeviceFaultKind::GateIoLost];
    for (seq, faults) in [(1, &gate_io[..]), (2, &gate_io[..])] {
        assert_eq!(w.heartbeat(&w.gate, &hb(seq, faults)).await.status, 200);
    }
    // Standing over two heartbeats: one alert, under the cause its `device_fault` event uses.
    let faults = w.alerts("reader_fault").await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(
        faults[0]["cause"],
        "reader_fault:device:gate-1:fault:gate_io_lost"
    );
    assert_eq!(faults[0]["occurrences"], 1);
    assert_eq!(
        faults[0]["detail"]["detail"],
        "gate i/o module not answering"
    );
    let health = w
        .text("SELECT health_json FROM device_status WHERE device_id = 'gate-1'")
        .await
        .unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["faults"][0]["kind"], "gate_io_lost");
    assert!(health["readers"].get("uhf-main").is_some());
    // Cleared, then raised again: raised again.
    assert_eq!(w.heartbeat(&w.gate, &hb(3, &[])).await.status, 200);
    assert_eq!(w.heartbeat(&w.gate, &hb(4, &gate_io)).await.status, 200);
    let faults = w.alerts("reader_fault").await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["occurrences"], 2);
}

#[tokio::test]
async fn reader_health_and_device_fault_events_raise_reader_faults() {
    let w = World::new().await;
    let t = w.now_ms();
    let b = batch(
        &w.cab1,
        1,
        vec![
            Event {
                seq: 1,
                at_ms: t,
                body: EventBody::ReaderHealth {
                    reader: "shelves".into(),
                    health: health(
                        HealthState::Fault,
                        Some(ReaderFault::AntennaMissing { antenna: 2 }),
                    ),
                },
            },
            Event {
                seq: 2,
                at_ms: t,
                body: EventBody::DeviceFault {
                    kind: DeviceFaultKind::OutboxFull,
                    detail: "10000 events waiting".into(),
                },
            },
        ],
    );
    let ack = w.ack(&w.cab1, &b).await;
    assert!(ack.verdicts.is_empty());
    assert_eq!(ack.policy_version, 0, "cabinets have no gate policy");
    let faults = w.alerts("reader_fault").await;
    assert_eq!(faults.len(), 2);
    assert_eq!(
        faults[0]["cause"],
        "reader_fault:device:cab-1:reader:shelves"
    );
    assert_eq!(faults[0]["detail"]["fault"]["antenna"], 2);
    assert_eq!(
        faults[1]["cause"],
        "reader_fault:device:cab-1:fault:outbox_full"
    );
    assert_eq!(faults[1]["detail"]["detail"], "10000 events waiting");
    let health = w
        .text("SELECT health_json FROM device_status WHERE device_id = 'cab-1'")
        .await
        .unwrap();
    assert!(health.contains("antenna_missing"), "{health}");
}

#[tokio::test]
async fn cabinet_snapshots_track_removals_returns_and_wrong_cabinets() {
    let w = World::new().await;
    let c2 = w.carrier(2, "S", Some("cab-1")).await;
    let c3 = w.carrier(3, "S", Some("cab-1")).await;
    let c4 = w.carrier(4, "S", Some("cab-2")).await;
    let c5 = w.carrier(5, "S", Some("cab-1")).await;
    let t = w.now_ms();
    let min = 60_000; // snapshots a minute apart, beyond the clone travel time
    // 1: C2 and C5 on the shelves.
    w.ack(
        &w.cab1,
        &batch(&w.cab1, 1, vec![snapshot(1, t, &[tag(2), tag(5)])]),
    )
    .await;
    assert_eq!(w.server.rows("cabinet_contents").await, 2);
    // C5 is signed out and taken; C2 disappears without a sign-out.
    w.sign_out(c5, w.alice, true, 3_600_000).await;
    w.ack(&w.cab1, &batch(&w.cab1, 1, vec![snapshot(2, t + min, &[])]))
        .await;
    assert_eq!(w.server.rows("cabinet_contents").await, 0);
    assert_eq!(
        w.int("SELECT count(*) FROM pending_removals WHERE device_id = 'cab-1'")
            .await,
        1
    );
    assert_eq!(
        w.int("SELECT carrier_id FROM pending_removals").await,
        c2,
        "only the carrier without a sign-out"
    );
    assert!(
        w.alerts("cabinet_removal").await.is_empty(),
        "the sweep raises it after grace"
    );
    // C2 comes back: its pending removal is gone.
    w.ack(
        &w.cab1,
        &batch(&w.cab1, 1, vec![snapshot(3, t + 2 * min, &[tag(2)])]),
    )
    .await;
    assert_eq!(w.server.rows("pending_removals").await, 0);

    // C3 was signed out, and comes in through the gate and back to its home cabinet:
    // returned (seen elsewhere since the issue, it has left the cabinet).
    w.sign_out(c3, w.bob, true, 3_600_000).await;
    w.ack(
        &w.gate,
        &batch(
            &w.gate,
            1,
            vec![passage(
                1,
                t + 2 * min + 20_000,
                Direction::In,
                &[tag(3)],
                &[],
            )],
        ),
    )
    .await;
    w.ack(
        &w.cab1,
        &batch(
            &w.cab1,
            1,
            vec![snapshot(4, t + 3 * min, &[tag(2), tag(3)])],
        ),
    )
    .await;
    assert_eq!(
        w.text(&format!("SELECT state FROM carriers WHERE id = {c3}"))
            .await
            .as_deref(),
        Some("in_storage")
    );
    // C4 (home cab-2) turns up in cab-1: wrong cabinet, once.
    let ack = w
        .ack(
            &w.cab1,
            &batch(
                &w.cab1,
                1,
                vec![snapshot(5, t + 4 * min, &[tag(2), tag(3), tag(4)])],
            ),
        )
        .await;
    assert!(ack.verdicts.is_empty());
    w.ack(
        &w.cab1,
        &batch(
            &w.cab1,
            1,
            vec![snapshot(6, t + 5 * min, &[tag(2), tag(3), tag(4)])],
        ),
    )
    .await;
    let wrong = w.alerts("wrong_cabinet").await;
    assert_eq!(wrong.len(), 1);
    assert_eq!(wrong[0]["carrier_id"], c4);
    assert_eq!(wrong[0]["occurrences"], 1);
    assert_eq!(wrong[0]["detail"]["home_device"], "cab-2");
    // Moved on to its home cabinet: not a removal from cab-1 (it is in cab-2's contents).
    w.ack(
        &w.cab2,
        &batch(&w.cab2, 1, vec![snapshot(1, t + 6 * min, &[tag(4)])]),
    )
    .await;
    w.ack(
        &w.cab1,
        &batch(
            &w.cab1,
            1,
            vec![snapshot(7, t + 7 * min, &[tag(2), tag(3)])],
        ),
    )
    .await;
    assert_eq!(w.server.rows("pending_removals").await, 0);
    assert_eq!(
        w.int(&format!(
            "SELECT count(*) FROM carrier_events WHERE carrier_id = {c4} AND kind = 'cabinet'"
        ))
        .await,
        3,
        "arrived in cab-1, arrived in cab-2, left cab-1"
    );
    assert!(w.alerts("tag_clone_suspected").await.is_empty());
}

/// A carrier signed out while it sits on its shelf is not returned by being seen there: the
/// first snapshot after a (daemon or server) start lists it as arriving, since the server has
/// no contents for the cabinet yet, and that must not close the sign-out. Once the cabinet has
/// seen it leave, seeing it again is a return. A carrier that was already off the shelf when
/// its sign-out was issued (taken to the desk first) is returned when it comes back.
#[tokio::test]
async fn a_signed_out_carrier_still_on_its_shelf_is_not_returned_by_a_first_count() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", Some("cab-1")).await;
    let c2 = w.carrier(2, "S", Some("cab-1")).await;
    let t = w.now_ms();
    let min = 60_000;
    let signout = w.sign_out(c1, w.alice, true, 3_600_000).await;
    let carrier_state =
        |id: i64| w.text_owned(format!("SELECT state FROM carriers WHERE id = {id}"));
    let signout_state =
        |id: i64| w.text_owned(format!("SELECT state FROM signouts WHERE id = {id}"));

    // The first count after a start still lists C1: its presence is recorded, nothing else.
    w.ack(
        &w.cab1,
        &batch(&w.cab1, 1, vec![snapshot(1, t + min, &[tag(1), tag(2)])]),
    )
    .await;
    assert_eq!(carrier_state(c1).await.as_deref(), Some("out"));
    assert_eq!(signout_state(signout).await.as_deref(), Some("out"));
    assert_eq!(
        w.int(&format!(
            "SELECT count(*) FROM cabinet_contents WHERE device_id = 'cab-1' AND carrier_id = {c1}"
        ))
        .await,
        1,
        "present on the shelf"
    );
    assert_eq!(
        w.int("SELECT count(*) FROM signout_carriers WHERE returned_at_ms IS NOT NULL")
            .await,
        0
    );
    // The same count again (a restart of the daemon) changes nothing.
    w.ack(
        &w.cab1,
        &batch(
            &w.cab1,
            2,
            vec![snapshot(1, t + 2 * min, &[tag(1), tag(2)])],
        ),
    )
    .await;
    assert_eq!(signout_state(signout).await.as_deref(), Some("out"));

    // The borrower takes C1; C2 leaves its shelf too and is signed out afterwards (taken to
    // the desk first).
    w.ack(
        &w.cab1,
        &batch(&w.cab1, 2, vec![snapshot(2, t + 3 * min, &[])]),
    )
    .await;
    assert_eq!(signout_state(signout).await.as_deref(), Some("out"));
    let signout2 = w.sign_out(c2, w.bob, true, 3_600_000).await;

    // Both come back: returned.
    w.ack(
        &w.cab1,
        &batch(
            &w.cab1,
            2,
            vec![snapshot(3, t + 4 * min, &[tag(1), tag(2)])],
        ),
    )
    .await;
    for (carrier, signout) in [(c1, signout), (c2, signout2)] {
        assert_eq!(carrier_state(carrier).await.as_deref(), Some("in_storage"));
        assert_eq!(signout_state(signout).await.as_deref(), Some("returned"));
        assert_eq!(
            w.text(&format!(
                "SELECT returned_by FROM signout_carriers WHERE carrier_id = {carrier}"
            ))
            .await
            .as_deref(),
            Some("device:cab-1")
        );
    }
    assert_eq!(w.server.rows("pending_removals").await, 0);
    assert!(w.alerts("cabinet_removal").await.is_empty());
}

#[tokio::test]
async fn the_same_tag_at_two_devices_too_soon_is_a_suspected_clone() {
    let w = World::new().await;
    let c2 = w.carrier(2, "S", Some("cab-1")).await;
    let t = w.now_ms();
    w.ack(&w.cab1, &batch(&w.cab1, 1, vec![snapshot(1, t, &[tag(2)])]))
        .await;
    // Five seconds later at the gate, coming in (it should still be on its shelf).
    let ack = w
        .ack(
            &w.gate,
            &batch(
                &w.gate,
                1,
                vec![passage(1, t + 5_000, Direction::In, &[tag(2)], &[])],
            ),
        )
        .await;
    assert!(allowed(&ack, 1), "a clone does not decide the verdict");
    let clones = w.alerts("tag_clone_suspected").await;
    assert_eq!(clones.len(), 1);
    assert_eq!(clones[0]["carrier_id"], c2);
    assert_eq!(clones[0]["detail"]["previous_device"], "cab-1");
    assert_eq!(clones[0]["detail"]["device"], "gate-1");
    assert_eq!(clones[0]["detail"]["interval_ms"], 5_000);
    // Much later at the other cabinet: a plausible walk, no new suspicion.
    w.ack(
        &w.cab2,
        &batch(&w.cab2, 1, vec![snapshot(1, t + 600_000, &[tag(2)])]),
    )
    .await;
    assert_eq!(w.alerts("tag_clone_suspected").await[0]["occurrences"], 1);
}

#[tokio::test]
async fn scans_resolve_to_carriers() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", None).await;
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "INSERT INTO carrier_tags (tag, carrier_id) VALUES ('em:1A00B54E12', ?1), ('barcode:CUS-1', ?1)",
                [c1],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let t = w.now_ms();
    let scan = |seq, code| Event {
        seq,
        at_ms: t,
        body: EventBody::Scan {
            reader: "desk".into(),
            code,
        },
    };
    let b = batch(
        &w.cab1,
        1,
        vec![
            scan(
                1,
                ScannedCode::EmCard {
                    id: "1A00B54E12".into(),
                },
            ),
            scan(
                2,
                ScannedCode::Barcode {
                    text: "CUS-1".into(),
                },
            ),
            scan(
                3,
                ScannedCode::Barcode {
                    text: "unrelated".into(),
                },
            ),
        ],
    );
    w.ack(&w.cab1, &b).await;
    assert_eq!(w.server.rows("events").await, 3);
    assert_eq!(
        w.int(&format!(
            "SELECT count(*) FROM carrier_events WHERE carrier_id = {c1} AND kind = 'scan'"
        ))
        .await,
        2
    );
}

#[tokio::test]
async fn the_gate_policy_lists_who_may_leave_and_is_signed() {
    let w = World::new().await;
    let c1 = w.carrier(1, "S", None).await;
    let c2 = w.carrier(2, "S", None).await;
    let c3 = w.carrier(3, "S", None).await;
    w.sign_out(c1, w.alice, true, 3_600_000).await;
    w.sign_out(c2, w.bob, false, 3_600_000).await;
    w.sign_out(c3, w.bob, true, -1).await;
    let request = |at_ms| PolicyRequest {
        device_id: "gate-1".into(),
        epoch: 1,
        at_ms,
        have_version: 0,
    };
    let fetch = |at_ms| {
        let body = serde_json::to_vec(&request(at_ms)).unwrap();
        post_signed(
            &w.server,
            &w.gate,
            "policy",
            SignedKind::PolicyRequest,
            body,
        )
    };
    let asked_at = w.now_ms();
    let reply = fetch(asked_at).await;
    let policy: GatePolicy = open(&reply, &w.key, SignedKind::Policy);
    policy.validate("gate-1").unwrap();
    let now = w.now_ms();
    assert!((asked_at..=now).contains(&policy.issued_at_ms));
    assert_eq!(policy.valid_until_ms - policy.issued_at_ms, 600_000);
    assert!(policy.version >= 1);
    assert_eq!(policy.allowed.len(), 1, "{policy:?}");
    assert_eq!(policy.allowed[0].epc, tag(1));
    assert_eq!(policy.allowed[0].borrower_badges, [epc(ALICE_BADGE)]);
    let due = w
        .int(&format!("SELECT due_at_ms FROM signouts s JOIN signout_carriers sc ON sc.signout_id = s.id WHERE sc.carrier_id = {c1}"))
        .await;
    assert_eq!(policy.allowed[0].until_ms, due);
    // The policy decides as the server does.
    assert!(!policy.decide(&[tag(1)], &[epc(ALICE_BADGE)], now).alarm());
    assert!(policy.decide(&[tag(1)], &[epc(BOB_BADGE)], now).alarm());
    assert!(policy.decide(&[tag(2)], &[], now).alarm());

    // Unchanged contents keep the version; a return changes it upwards.
    let again: GatePolicy = open(&fetch(w.now_ms()).await, &w.key, SignedKind::Policy);
    assert_eq!(again.version, policy.version);
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE carriers SET state = 'in_storage' WHERE id = ?1",
                [c1],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let after: GatePolicy = open(&fetch(w.now_ms()).await, &w.key, SignedKind::Policy);
    assert_eq!(after.version, policy.version + 1);
    assert!(after.allowed.is_empty());
    // The heartbeat and batch answers carry the newest version.
    let hb = Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 1,
        at_ms: w.now_ms(),
        readers: vec![],
        outbox_depth: 0,
        policy_version: after.version,
        faults: vec![],
    };
    let ack: HeartbeatAck = open(
        &w.heartbeat(&w.gate, &hb).await,
        &w.key,
        SignedKind::HeartbeatAck,
    );
    assert_eq!(ack.policy_version, after.version);
    assert!(
        !ack.directives.contains(&Directive::RefreshPolicy),
        "up to date"
    );

    // A stale request, and a cabinet asking, are refused.
    assert_eq!(fetch(w.now_ms() - 3_600_000).await.status, 409);
    let body = serde_json::to_vec(&PolicyRequest {
        device_id: "cab-1".into(),
        ..request(w.now_ms())
    })
    .unwrap();
    let reply = post_signed(
        &w.server,
        &w.cab1,
        "policy",
        SignedKind::PolicyRequest,
        body,
    )
    .await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["error"], "not_a_gate");
}

#[tokio::test]
async fn a_guard_acknowledgement_silences_the_gate() {
    let w = World::new().await;
    w.carrier(1, "S", None).await;
    let ack = w
        .ack(
            &w.gate,
            &batch(
                &w.gate,
                1,
                vec![passage(1, w.now_ms(), Direction::Out, &[tag(1)], &[])],
            ),
        )
        .await;
    let alert_id = alarm_of(&ack, 1).unwrap().1.unwrap();
    let now = w.now_ms();
    let id: i64 = alert_id.parse().unwrap();
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = 'guard',
                                   acknowledged_at_ms = ?2 WHERE id = ?1",
                rusqlite::params![id, now],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let hb = Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 1,
        at_ms: now,
        readers: vec![],
        outbox_depth: 0,
        policy_version: 0,
        faults: vec![],
    };
    let answer: HeartbeatAck = open(
        &w.heartbeat(&w.gate, &hb).await,
        &w.key,
        SignedKind::HeartbeatAck,
    );
    assert!(
        answer
            .directives
            .contains(&Directive::SilenceAlarm { alert_id }),
        "{answer:?}"
    );
}

/// Finding 1 (High): a signed batch with a poisoned event time (i64 limits, year 10000) is
/// refused whole with 409 `clock_skew` naming the seq, raises a `reader_fault` (clock_skew)
/// alert and stores nothing; the same seqs with the event restamped are then stored, so no
/// later event is lost; and the carrier lists keep answering.
#[tokio::test]
async fn a_batch_with_a_poisoned_time_is_refused_and_its_seqs_stay_free() {
    let w = World::new().await;
    let id = w.carrier(1, "S", None).await;
    let now = w.now_ms();
    let before = w.ingest_counts().await;
    for (n, bad) in [i64::MAX, i64::MIN, 253_402_300_800_000, 0]
        .into_iter()
        .enumerate()
    {
        let b = batch(
            &w.gate,
            1,
            vec![
                passage(1, now, Direction::In, &[tag(1)], &[]),
                Event {
                    seq: 2,
                    at_ms: bad,
                    body: EventBody::Scan {
                        reader: "desk".into(),
                        code: ScannedCode::Barcode { text: "x".into() },
                    },
                },
            ],
        );
        let reply = w.send_batch(&w.gate, &b).await;
        assert_eq!(reply.status, 409, "{bad}");
        let body = reply.json();
        assert_eq!(body["error"], "clock_skew", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("seq 2"),
            "{body}"
        );
        assert_eq!(
            w.ingest_counts().await,
            before,
            "attempt {n} stored nothing"
        );
    }
    let faults = w.alerts("reader_fault").await;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["detail"]["fault"], "clock_skew");
    assert_eq!(faults[0]["device_id"], "gate-1");
    // The daemon restamps the event: the same seqs are stored, nothing lost, nothing doubled.
    let b = batch(
        &w.gate,
        1,
        vec![
            passage(1, now, Direction::In, &[tag(1)], &[]),
            passage(2, now + 1, Direction::In, &[tag(1)], &[]),
        ],
    );
    let ack = w.ack(&w.gate, &b).await;
    assert_eq!(ack.acked_through, 2);
    assert_eq!(w.server.rows("events").await, 2);
    let token = w.server.login("officer", PASSWORD).await;
    for path in [
        "/api/v1/carriers".to_owned(),
        format!("/api/v1/carriers/{id}"),
        format!("/api/v1/carriers/{id}/history"),
    ] {
        let reply = w.server.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
}

/// Finding 1, second half: a time the calendar cannot show, already in the database (written
/// before the bound existed), shows degraded; no list or page answers 500.
#[tokio::test]
async fn an_unreadable_stored_time_degrades_one_row_not_the_list() {
    let w = World::new().await;
    let id = w.carrier(1, "S", None).await;
    let other = w.carrier(2, "S", None).await;
    let b = batch(
        &w.gate,
        1,
        vec![passage(1, w.now_ms(), Direction::In, &[tag(1)], &[])],
    );
    w.ack(&w.gate, &b).await;
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE carriers SET last_seen_at_ms = ?2, missing_since_ms = ?3 WHERE id = ?1",
                rusqlite::params![id, i64::MAX, i64::MIN],
            )?;
            c.execute(
                "UPDATE carrier_events SET at_ms = ?2 WHERE carrier_id = ?1",
                rusqlite::params![id, i64::MIN],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let token = w.server.login("officer", PASSWORD).await;
    let reply = w
        .server
        .call(Method::GET, "/api/v1/carriers", Some(&token), None)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let list = reply.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|c| c["id"] == json!(other.to_string())));
    let row = list
        .iter()
        .find(|c| c["id"] == json!(id.to_string()))
        .unwrap();
    assert_eq!(row["last_seen"]["at"], "9999-12-31T23:59:59Z", "{row}");
    for path in [
        format!("/api/v1/carriers/{id}"),
        format!("/api/v1/carriers/{id}/history"),
    ] {
        let reply = w.server.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
    let admin = w.server.login("admin", ADMIN_PASSWORD).await;
    w.server.account(&admin, "keeper", &[Role::Custodian]).await;
    for (user, pages) in [
        (
            "keeper",
            vec![
                "/carriers".to_owned(),
                format!("/carriers/{id}"),
                "/cabinets".to_owned(),
                "/cabinets/cab-1".to_owned(),
                "/signouts/new".to_owned(),
            ],
        ),
        ("officer", vec!["/missing".to_owned()]),
    ] {
        let mut browser = common::browser::Browser::new(&w.server);
        browser.sign_in(user, PASSWORD).await;
        for page in pages {
            let answer = browser.get(&page).await;
            assert_eq!(answer.status, 200, "{user} {page}: {}", answer.body);
        }
    }
}

/// Finding 4 (Medium): small-order device keys. Registration refuses `01 00..00` and all
/// zeros (400 `bad_request` naming small-order keys); and a device whose weak key
/// was stored before the check cannot be impersonated: the exact forged batch of the finding
/// (signature `01 00..00 ‖ 00..00`) answers 401 and raises `device_auth_failed`.
#[tokio::test]
async fn small_order_device_keys_are_refused_and_cannot_sign() {
    let w = World::new().await;
    let admin = w.server.login("admin", ADMIN_PASSWORD).await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let devices_before = w.server.rows("devices").await;
    for (n, weak) in [identity, [0u8; 32]].into_iter().enumerate() {
        let reply = w
            .server
            .call(
                Method::POST,
                "/api/v1/devices",
                Some(&admin),
                Some(
                    json!({"id": format!("weak-{n}"), "kind": "cabinet", "zone": "vault",
                            "public_key": STANDARD.encode(weak)}),
                ),
            )
            .await;
        assert_eq!(reply.status, 400, "{:?}", reply.body);
        assert_eq!(reply.body["error"], "bad_request", "{:?}", reply.body);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("small-order"),
            "{:?}",
            reply.body
        );
    }
    assert_eq!(w.server.rows("devices").await, devices_before);
    // A weak key stored before registration checked keys.
    w.server
        .state
        .store()
        .write(move |c| {
            c.execute(
                "INSERT INTO devices (id, kind, public_key, zone, created_at)
                 VALUES ('weak-cab', 'cabinet', ?1, 'vault', '2026-01-01T00:00:00Z')",
                [identity.to_vec()],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let forged = Batch {
        device_id: "weak-cab".into(),
        epoch: 1,
        events: vec![snapshot(1, w.now_ms(), &[])],
    };
    let mut sig = [0u8; 64];
    sig[0] = 1;
    let before = w.ingest_counts().await;
    let reply = post_raw(
        &w.server,
        "weak-cab",
        "batches",
        Some(&STANDARD.encode(sig)),
        serde_json::to_vec(&forged).unwrap(),
    )
    .await;
    assert_eq!(
        reply.status,
        401,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    assert_eq!(reply.json()["error"], "device_auth_failed");
    assert_eq!(w.ingest_counts().await, before);
    let failed = w.alerts("device_auth_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["device_id"], "weak-cab");
}

/// Device lifecycle: a revoked device is refused at every device endpoint with
/// `device_auth_failed` (alert naming it) and listed as revoked; a rotated key refuses the old
/// key at once while the backlog the daemon signs with the new key continues the same
/// sequence. Both are audited; only an administrator may do either.
#[tokio::test]
async fn a_revoked_device_is_refused_and_a_rotated_key_replaces_the_old_one() {
    let w = World::new().await;
    let admin = w.server.login("admin", ADMIN_PASSWORD).await;
    let officer = w.server.login("officer", PASSWORD).await;
    let now = w.now_ms();
    w.ack(&w.cab1, &batch(&w.cab1, 1, vec![snapshot(1, now, &[])]))
        .await;
    // Only an administrator.
    let reply = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/cab-1/revoke",
            Some(&officer),
            None,
        )
        .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);
    let reply = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/nobody/revoke",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    let audit = w.server.audit_count().await;
    let reply = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/cab-1/revoke",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.body["revoked_at"].is_string(), "{:?}", reply.body);
    assert_eq!(w.server.audit_count().await, audit + 1);
    assert_eq!(
        w.text("SELECT action FROM audit ORDER BY id DESC LIMIT 1")
            .await
            .as_deref(),
        Some("device.revoke")
    );
    // Its next batch and heartbeat, correctly signed, are refused and change nothing.
    let before = w.ingest_counts().await;
    let reply = w
        .send_batch(&w.cab1, &batch(&w.cab1, 1, vec![snapshot(2, now, &[])]))
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"], "device_auth_failed");
    let hb = Heartbeat {
        device_id: "cab-1".into(),
        epoch: 1,
        hb_seq: 1,
        at_ms: now,
        readers: vec![],
        outbox_depth: 0,
        policy_version: 0,
        faults: vec![],
    };
    assert_eq!(w.heartbeat(&w.cab1, &hb).await.status, 401);
    assert_eq!(w.ingest_counts().await, before);
    let failed = w.alerts("device_auth_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["device_id"], "cab-1");
    assert_eq!(failed[0]["detail"]["reason"], "device revoked");
    // Listed as revoked, in the API and on the administrator's page.
    let list = w
        .server
        .call(Method::GET, "/api/v1/devices", Some(&admin), None)
        .await;
    let revoked: Vec<&Value> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["revoked_at"].is_string())
        .collect();
    assert_eq!(revoked.len(), 1, "{:?}", list.body);
    assert_eq!(revoked[0]["id"], "cab-1");
    let mut browser = common::browser::Browser::new(&w.server);
    browser.sign_in("admin", ADMIN_PASSWORD).await;
    let page = browser.get("/admin/devices").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"data-device-id="cab-1" data-revoked="true""#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"data-device-id="cab-2" data-revoked="false""#)
    );

    // Rotation: cab-2 delivered seq 1 under its first key, then gets a new one.
    w.ack(&w.cab2, &batch(&w.cab2, 1, vec![snapshot(1, now, &[])]))
        .await;
    let new_key = Dev::new("cab-2");
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/cab-2/key",
            Some(&admin),
            Some(json!({"public_key": STANDARD.encode(identity)})),
        )
        .await;
    assert_eq!(weak.status, 400, "{:?}", weak.body);
    let taken = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/cab-2/key",
            Some(&admin),
            Some(json!({"public_key": w.gate.public_b64()})),
        )
        .await;
    assert_eq!(taken.status, 409, "{:?}", taken.body);
    let reply = w
        .server
        .call(
            Method::POST,
            "/api/v1/devices/cab-2/key",
            Some(&admin),
            Some(json!({"public_key": new_key.public_b64()})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["public_key"], new_key.public_b64());
    assert_eq!(
        w.text("SELECT action FROM audit ORDER BY id DESC LIMIT 1")
            .await
            .as_deref(),
        Some("device.key_rotate")
    );
    // The old key is refused; the backlog signed with the new key continues the sequence.
    let backlog = batch(
        &w.cab2,
        1,
        vec![snapshot(2, now + 1, &[]), snapshot(3, now + 2, &[])],
    );
    assert_eq!(w.send_batch(&w.cab2, &backlog).await.status, 401);
    let ack = w.ack(&new_key, &backlog).await;
    assert_eq!(ack.acked_through, 3);
}

fn decided_at_gate(mut event: Event, alarm: bool) -> Event {
    if let EventBody::Passage { local_verdict, .. } = &mut event.body {
        *local_verdict = Some(custos_protocol::uplink::LocalVerdict {
            alarm,
            policy_version: 3,
            reason: alarm.then_some(AlarmReason::UnauthorizedRemoval),
        });
    }
    event
}

fn sound_orders(ack: &BatchAck) -> usize {
    ack.directives
        .iter()
        .filter(|d| matches!(d, Directive::SoundAlarm { .. }))
        .count()
}

/// Finding 8 (Medium): a passage the gate decided offline carries its local verdict; the
/// server stores it, raises its alert and answers the verdict, but orders no alarm for it (the
/// gate re-sounded and re-locked 4-7 s after the passages). A passage first uploaded without
/// it (its answer came too late) may be re-delivered with it: accepted and recorded, while any
/// other difference stays a replay.
#[tokio::test]
async fn passages_decided_at_the_gate_keep_their_local_verdict_and_get_no_alarm_order() {
    let w = World::new().await;
    w.carrier(1, "S", None).await;
    let now = w.now_ms();
    // The usual online case: the server orders the alarm.
    let online = batch(
        &w.gate,
        1,
        vec![passage(1, now, Direction::Out, &[tag(1)], &[])],
    );
    let ack = w.ack(&w.gate, &online).await;
    assert!(alarm_of(&ack, 1).is_some());
    assert_eq!(sound_orders(&ack), 1);
    // Decided offline by the policy: verdict and alert, no order.
    let offline = batch(
        &w.gate,
        1,
        vec![decided_at_gate(
            passage(2, now + 1_000, Direction::Out, &[tag(1)], &[]),
            true,
        )],
    );
    let ack = w.ack(&w.gate, &offline).await;
    assert_eq!(
        alarm_of(&ack, 2).map(|(r, _)| r),
        Some(AlarmReason::UnauthorizedRemoval)
    );
    assert_eq!(sound_orders(&ack), 0, "{:?}", ack.directives);
    assert_eq!(
        w.text(
            "SELECT json_extract(body_json, '$.local_verdict.reason') FROM events WHERE seq = 2"
        )
        .await
        .as_deref(),
        Some("unauthorized_removal")
    );
    // Uploaded first without it (the answer was late), then re-delivered with it.
    let first = passage(3, now + 2_000, Direction::Out, &[tag(1)], &[]);
    w.ack(&w.gate, &batch(&w.gate, 1, vec![first.clone()]))
        .await;
    let events = w.server.rows("events").await;
    let again = batch(&w.gate, 1, vec![decided_at_gate(first.clone(), true)]);
    let ack = w.ack(&w.gate, &again).await;
    assert_eq!(ack.acked_through, 3);
    assert_eq!(sound_orders(&ack), 0, "{:?}", ack.directives);
    assert_eq!(
        w.server.rows("events").await,
        events,
        "nothing stored twice"
    );
    assert_eq!(
        w.int("SELECT json_extract(body_json, '$.local_verdict.alarm') FROM events WHERE seq = 3")
            .await,
        1
    );
    assert!(w.alerts("replay_rejected").await.is_empty());
    // Anything else that differs (here: a recorded verdict changed) is still a replay.
    let altered = decided_at_gate(first, false);
    let reply = w
        .send_batch(&w.gate, &batch(&w.gate, 1, vec![altered]))
        .await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.json()["error"], "replay_rejected");
}
