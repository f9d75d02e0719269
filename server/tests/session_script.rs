//! The scripted session of the server issue's "done when", through the real binary and real
//! HTTP: `init` with a password file, `serve --listen 127.0.0.1:0` (waiting for its
//! `listening on` line, never a fixed sleep), then as the administrator: an account per role
//! (two security officers, for TS), a zone pair (S inside, public outside), a gate with an
//! Ed25519 key generated here, people with training and commitment dates, a carrier with an EPC
//! tag, and a TS sign-out of ANOTHER carrier approved by both officers and issued. The gate
//! then posts a signed batch with an outward passage of the first carrier, which has no
//! sign-out: the signed ack alarms (`unauthorized_removal`, `SoundAlarm` with the door locked)
//! and one open `unauthorized_removal` alert exists. The same bytes posted again get the same
//! answer and no second alert. After SIGTERM, `audit verify` exits 0.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::binary::{Serving, run, text};
use common::{RawReply, Reply, call, raw_exchange};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, Batch, BatchAck, Direction, Directive, Event, EventBody, Outcome,
    SIGNATURE_HEADER, SignedKind, TagSighting, signing_bytes,
};
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "session operator secret";
const PASSWORD: &str = "session user password";
const INITIAL_PASSWORD: &str = "temporary passphrase 1";
/// The carrier that leaves without a sign-out.
const LEAVING_EPC: &str = "3474257BF40000000000162E";
/// The carrier that is signed out.
const LENT_EPC: &str = "3474257BF40000000000162F";
const ALICE_BADGE: &str = "E20000000000000000000A11";

/// An HTTP session against the served address.
struct Client {
    addr: SocketAddr,
}

impl Client {
    async fn send(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        call(self.addr, method, path, Some(token), body).await
    }

    async fn expect(
        &self,
        token: &str,
        (method, path): (Method, &str),
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let reply = self.send(method.clone(), path, token, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        reply.body
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let reply = call(
            self.addr,
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await;
        assert_eq!(reply.status, 200, "login {username}: {:?}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// Create an account with `roles` and log it in.
    async fn account(&self, admin: &str, username: &str, roles: &[&str]) -> String {
        self.expect(
            admin,
            (Method::POST, "/api/v1/users"),
            // Privileged accounts must name their holder on the register of people.
            Some(
                json!({"username": username, "password": INITIAL_PASSWORD, "roles": roles,
                "new_person": {"name": username, "department": "保密办", "category": "core"}}),
            ),
            201,
        )
        .await;
        // A new account sets its own password before anything else.
        let token = self.login(username, INITIAL_PASSWORD).await;
        self.expect(
            &token,
            (Method::POST, "/api/v1/session/password"),
            Some(json!({"old": INITIAL_PASSWORD, "new": PASSWORD})),
            204,
        )
        .await;
        token
    }

    async fn open_alerts(&self, token: &str, kind: &str) -> Vec<Value> {
        let path = format!("/api/v1/alerts?state=open&kind={kind}");
        let body = self.expect(token, (Method::GET, &path), None, 200).await;
        body.as_array().unwrap().clone()
    }

    async fn post_batch(&self, gate: &Ed25519KeyPair, body: &[u8]) -> RawReply {
        let signature = STANDARD.encode(gate.sign(&signing_bytes(SignedKind::Batch, body)));
        raw_exchange(
            self.addr,
            Method::POST,
            "/api/v1/devices/gate-1/batches",
            &[
                ("content-type", "application/json"),
                (SIGNATURE_HEADER, &signature),
            ],
            body.to_vec(),
        )
        .await
    }
}

/// Check the server's signature over the exact answer bytes, then parse the ack.
fn open_ack(reply: &RawReply, server_key: &[u8]) -> BatchAck {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    let signature = STANDARD
        .decode(reply.headers[SIGNATURE_HEADER].to_str().unwrap())
        .unwrap();
    UnparsedPublicKey::new(&ED25519, server_key)
        .verify(
            &signing_bytes(SignedKind::BatchAck, &reply.bytes),
            &signature,
        )
        .expect("the ack is signed by the server key");
    serde_json::from_slice(&reply.bytes).unwrap()
}

fn unix_ms_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn sighting(hex: &str, at_ms: i64) -> TagSighting {
    TagSighting {
        epc: Epc::from_hex(hex).unwrap(),
        antenna_first: 1,
        antenna_last: 3,
        reads: 5,
        peak_rssi: 190,
        first_ms: at_ms - 600,
        last_ms: at_ms,
    }
}

#[tokio::test]
async fn the_scripted_session_of_the_issue() {
    common::tracing();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let password_file = tmp.path().join("admin.pw");
    std::fs::write(&password_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(
        &password_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    // init
    let out = run(&[
        "init",
        "--data-dir",
        data.to_str().unwrap(),
        "--admin-user",
        "admin",
        "--admin-password-file",
        password_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "init: {}", text(&out.stderr));

    let serving = Serving::start(&data);
    let web = Client { addr: serving.addr };

    // log in; each role (two security officers, for TS)
    let admin = web.login("admin", ADMIN_PASSWORD).await;
    let officer = web.account(&admin, "officer", &["security_officer"]).await;
    let officer2 = web.account(&admin, "officer2", &["security_officer"]).await;
    let custodian = web.account(&admin, "custodian", &["custodian"]).await;
    let guard = web.account(&admin, "guard", &["guard"]).await;
    let auditor = web.account(&admin, "auditor", &["auditor"]).await;

    // a zone pair
    for (id, name, level) in [("vault", "Vault", "S"), ("street", "Street", "public")] {
        web.expect(
            &admin,
            (Method::POST, "/api/v1/zones"),
            Some(json!({"id": id, "name": name, "level": level})),
            201,
        )
        .await;
    }

    // a gate device with a key generated here
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let gate = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    web.expect(
        &admin,
        (Method::POST, "/api/v1/devices"),
        Some(json!({
            "id": "gate-1", "kind": "gate", "inside_zone": "vault", "outside_zone": "street",
            "public_key": STANDARD.encode(gate.public_key().as_ref()),
        })),
        201,
    )
    .await;

    // people, with training and commitment dates
    let alice = web
        .expect(
            &officer,
            (Method::POST, "/api/v1/people"),
            Some(json!({
                "name": "Alice", "department": "R&D", "category": "core",
                "badge_tag": ALICE_BADGE,
                "training_valid_until": "2099-12-31", "commitment_signed_on": "2025-01-15",
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    web.expect(
        &officer,
        (Method::POST, "/api/v1/people"),
        Some(json!({
            "name": "Bob", "department": "Archive", "category": "important",
            "training_valid_until": "2099-12-31", "commitment_signed_on": "2025-02-01",
        })),
        201,
    )
    .await;

    // a carrier with an EPC tag (the one that will leave), and another to lend
    let leaving = web
        .expect(
            &custodian,
            (Method::POST, "/api/v1/carriers"),
            Some(json!({
                "control_no": "CU-2026-0001", "kind": "paper", "level": "S",
                "title": "Annual plan", "owner_unit": "Office 1",
                "tags": [format!("epc:{LEAVING_EPC}")],
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let lent = web
        .expect(
            &custodian,
            (Method::POST, "/api/v1/carriers"),
            Some(json!({
                "control_no": "CU-2026-0002", "kind": "flash", "level": "TS",
                "title": "Design archive", "owner_unit": "Office 1", "copy_no": 1, "copies": 2,
                "tags": [format!("epc:{LENT_EPC}")],
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // a TS sign-out of the other carrier: requested, approved by both officers, issued
    let due = unix_ms_now() / 1000 + 86_400;
    let due_at = custos_server::domain::time::Timestamp::from_unix(due)
        .unwrap()
        .to_string();
    let signout = web
        .expect(
            &custodian,
            (Method::POST, "/api/v1/signouts"),
            Some(json!({
                "carrier_ids": [lent], "borrower": alice, "purpose": "design review",
                "due_at": due_at, "may_leave": false,
            })),
            201,
        )
        .await;
    assert_eq!(signout["state"], "requested");
    let sid = signout["id"].as_str().unwrap().to_owned();
    let approve = format!("/api/v1/signouts/{sid}/approve");
    let first = web
        .expect(&officer, (Method::POST, &approve), None, 200)
        .await;
    assert_eq!(
        (first["state"].as_str(), first["approvals_needed"].as_u64()),
        (Some("requested"), Some(1)),
        "TS waits for a second approver"
    );
    let second = web
        .expect(&officer2, (Method::POST, &approve), None, 200)
        .await;
    assert_eq!(second["state"], "approved");
    let issued = web
        .expect(
            &custodian,
            (Method::POST, &format!("/api/v1/signouts/{sid}/issue")),
            None,
            200,
        )
        .await;
    assert_eq!(issued["state"], "out");
    let lent_now = web
        .expect(
            &custodian,
            (Method::GET, &format!("/api/v1/carriers/{lent}")),
            None,
            200,
        )
        .await;
    assert_eq!(lent_now["state"], "out");

    // the gate reports the first carrier leaving without a sign-out
    let key = web
        .expect(&guard, (Method::GET, "/api/v1/server-key"), None, 200)
        .await;
    let server_key = STANDARD
        .decode(key["public_key"].as_str().unwrap())
        .unwrap();
    let at_ms = unix_ms_now();
    let batch = Batch {
        device_id: "gate-1".into(),
        epoch: 1,
        events: vec![Event {
            seq: 1,
            at_ms,
            body: EventBody::Passage {
                reader: "uhf-main".into(),
                direction: Direction::Out,
                tags: vec![sighting(LEAVING_EPC, at_ms)],
                badges: vec![],
                local_verdict: None,
            },
        }],
    };
    let bytes = serde_json::to_vec(&batch).unwrap();
    let ack = open_ack(&web.post_batch(&gate, &bytes).await, &server_key);
    ack.check_answers(&batch)
        .expect("the ack answers the batch");
    assert_eq!(ack.acked_through, 1);
    let [verdict] = &ack.verdicts[..] else {
        panic!("one verdict expected: {ack:?}");
    };
    let Outcome::Alarm {
        reason: AlarmReason::UnauthorizedRemoval,
        alert_id: Some(alert_id),
    } = &verdict.outcome
    else {
        panic!("an unauthorized_removal alarm expected: {verdict:?}");
    };
    assert!(
        ack.directives.iter().any(|d| matches!(
            d,
            Directive::SoundAlarm { lock_door: true, alert_id: Some(id), .. } if id == alert_id
        )),
        "{:?}",
        ack.directives
    );
    let open = web.open_alerts(&guard, "unauthorized_removal").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["id"].as_str(), Some(alert_id.as_str()));
    assert_eq!(open[0]["carrier_id"].as_str(), Some(leaving.as_str()));
    assert_eq!(open[0]["device_id"], "gate-1");
    assert_eq!(open[0]["state"], "open");

    // the same bytes again: the same answer, no second alert
    let again = open_ack(&web.post_batch(&gate, &bytes).await, &server_key);
    assert_eq!(again, ack, "a redelivered batch gets the same answer");
    let open = web.open_alerts(&officer, "unauthorized_removal").await;
    assert_eq!(open.len(), 1, "still exactly one alert: {open:?}");
    let every = web
        .expect(
            &officer,
            (Method::GET, "/api/v1/alerts?kind=unauthorized_removal"),
            None,
            200,
        )
        .await;
    assert_eq!(every.as_array().unwrap().len(), 1, "{every}");

    // the carrier's history shows the passage out and the alert
    let history = web
        .expect(
            &custodian,
            (Method::GET, &format!("/api/v1/carriers/{leaving}/history")),
            None,
            200,
        )
        .await;
    let items = history.as_array().unwrap();
    assert!(
        items.iter().any(|i| i["type"] == "passage"
            && i["direction"] == "out"
            && i["device_id"] == "gate-1"),
        "{history}"
    );
    assert!(items.iter().any(|i| i["type"] == "alert"), "{history}");
    let trail = web
        .expect(&auditor, (Method::GET, "/api/v1/audit"), None, 200)
        .await;
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "device.batch"),
        "the batch is audited"
    );

    serving.terminate();
    let out = run(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("intact"),
        "{}",
        text(&out.stdout)
    );
}
