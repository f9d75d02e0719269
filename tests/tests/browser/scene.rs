//! The scene of the browser tests: a real server started in this process on 127.0.0.1:0 over
//! a fresh data directory (as `custos-server serve` does: `cli::initialise`, `Store::open`,
//! `AppState`, `launch`), seeded through its JSON API, and a gate device with its own
//! Ed25519 key that posts signed batches.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use custos_protocol::barcode::CarrierLabel;
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, Batch, BatchAck, Direction, Event, EventBody, Outcome, SIGNATURE_HEADER,
    SignedKind, TagSighting, signing_bytes,
};
use custos_server::config::Config;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::{DB_FILE, Store, StoreOptions};
use custos_server::{AppState, LaunchError, Settings, launch};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The administrator's password (set by `initialise`).
pub const ADMIN_PASSWORD: &str = "first operator key 1";
/// What the administrator gives a new account; replaced with [`PASSWORD`] at the first sign-in.
const INITIAL_PASSWORD: &str = "temporary passphrase 1";
/// Every other account's password.
pub const PASSWORD: &str = "long enough password";
/// The gate between the vault and the street.
pub const GATE: &str = "gate-1";
/// The badge the person walking out wears.
const BADGE: &str = "E20000000000000000000B0B";

/// The EPC of carrier `n` (a GIAI-96 header, serial `n`).
pub fn epc(n: u16) -> Epc {
    Epc::from_hex(&format!("3474257BF40000000000{n:04X}")).expect("24 hex digits")
}

/// The printed label text of a control number: `CU` + number + MOD 37-2 check character.
pub fn label(control_no: &str) -> String {
    CarrierLabel::new(control_no)
        .expect("a valid control number")
        .to_string()
}

/// An answer of the JSON API.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// A running server and the tokens of its accounts.
pub struct Scene {
    pub addr: SocketAddr,
    pub state: AppState,
    /// Bearer tokens: guard, custodian, officer1, officer2.
    pub guard: String,
    pub custodian: String,
    pub officers: [String; 2],
    /// Bob, who carries things out through the gate.
    pub walker: String,
    /// Lin, who borrows at the desk (cleared for top secret, trained, committed).
    pub borrower: String,
    gate: Ed25519KeyPair,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), LaunchError>>>,
}

impl Scene {
    /// Start the server and seed it: accounts `guard`, `custodian`, `officer1`, `officer2`
    /// (security officers); zones `vault` (TS) and `street` (public) with gate [`GATE`]
    /// between them, registered with a key generated here; people Bob (badge) and Lin.
    pub async fn start() -> Scene {
        let dir = tempfile::tempdir().expect("data directory");
        custos_server::cli::initialise(dir.path(), "admin", ADMIN_PASSWORD.to_owned())
            .await
            .expect("initialise the data directory");
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let store = Store::open(&dir.path().join(DB_FILE), StoreOptions::default())
            .await
            .expect("open the store");
        let key = ServerKey::load(&dir.path().join(KEY_FILE)).expect("server key");
        let state = AppState::new(store, key, Settings::from(&config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(launch(listener, state.clone(), async {
            let _ = stopped.await;
        }));

        let admin = login(addr, "admin", ADMIN_PASSWORD).await;
        for (name, role) in [
            ("guard", "guard"),
            ("custodian", "custodian"),
            ("officer1", "security_officer"),
            ("officer2", "security_officer"),
        ] {
            created(
                call(
                    addr,
                    Method::POST,
                    "/api/v1/users",
                    Some(&admin),
                    Some(account_body(name, role)),
                )
                .await,
            );
            // A new account sets its own password before anything else.
            let first = login(addr, name, INITIAL_PASSWORD).await;
            let changed = call(
                addr,
                Method::POST,
                "/api/v1/session/password",
                Some(&first),
                Some(json!({"old": INITIAL_PASSWORD, "new": PASSWORD})),
            )
            .await;
            assert_eq!(changed.status, 204, "{:?}", changed.body);
        }
        let guard = login(addr, "guard", PASSWORD).await;
        let custodian = login(addr, "custodian", PASSWORD).await;
        let officers = [
            login(addr, "officer1", PASSWORD).await,
            login(addr, "officer2", PASSWORD).await,
        ];
        for (id, name, level) in [("vault", "保密室", "TS"), ("street", "大门外", "public")] {
            created(
                call(
                    addr,
                    Method::POST,
                    "/api/v1/zones",
                    Some(&admin),
                    Some(json!({"id": id, "name": name, "level": level})),
                )
                .await,
            );
        }
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key generation");
        let gate = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("generated key parses");
        created(
            call(
                addr,
                Method::POST,
                "/api/v1/devices",
                Some(&admin),
                Some(json!({"id": GATE, "kind": "gate", "inside_zone": "vault",
                            "outside_zone": "street",
                            "public_key": STANDARD.encode(gate.public_key().as_ref())})),
            )
            .await,
        );
        let walker = created(
            call(
                addr,
                Method::POST,
                "/api/v1/people",
                Some(&officers[0]),
                Some(
                    json!({"name": "Bob", "department": "R&D", "category": "core",
                            "badge_tag": BADGE}),
                ),
            )
            .await,
        );
        let borrower = created(
            call(
                addr,
                Method::POST,
                "/api/v1/people",
                Some(&officers[0]),
                Some(
                    json!({"name": "林",  "department": "研发部", "category": "core",
                            "training_valid_until": "2099-12-31",
                            "commitment_signed_on": "2020-01-01"}),
                ),
            )
            .await,
        );
        Scene {
            addr,
            state,
            guard,
            custodian,
            officers,
            walker,
            borrower,
            gate,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The page URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A JSON API call with a bearer token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        call(self.addr, method, path, Some(token), body).await
    }

    /// Register carrier `control_no` (top secret, home in the vault) with its EPC tag and its
    /// printed `CU` label as a barcode tag; returns its id.
    pub async fn carrier(&self, control_no: &str, n: u16) -> String {
        created(
            self.call(
                Method::POST,
                "/api/v1/carriers",
                &self.custodian,
                Some(
                    json!({"control_no": control_no, "kind": "paper", "level": "TS",
                            "title": "Reactor drawings (never shown to guards)",
                            "copy_no": 1, "copies": 1, "owner_unit": "保密办",
                            "tags": [format!("epc:{}", epc(n)),
                                     format!("barcode:{}", label(control_no))]}),
                ),
            )
            .await,
        )
    }

    /// A sign-out of `carrier` to the borrower, requested by the custodian and approved by
    /// both security officers (top secret needs two); returns its id.
    pub async fn approved_sign_out(&self, carrier: &str) -> String {
        let due = self.state.now().plus_secs(86_400).to_string();
        let id = created(
            self.call(
                Method::POST,
                "/api/v1/signouts",
                &self.custodian,
                Some(json!({"carrier_ids": [carrier], "borrower": self.borrower,
                            "purpose": "review", "due_at": due, "may_leave": false})),
            )
            .await,
        );
        for officer in &self.officers {
            let reply = self
                .call(
                    Method::POST,
                    &format!("/api/v1/signouts/{id}/approve"),
                    officer,
                    None,
                )
                .await;
            assert_eq!(reply.status, 200, "approve: {:?}", reply.body);
        }
        let reply = self
            .call(
                Method::GET,
                &format!("/api/v1/signouts/{id}"),
                &self.custodian,
                None,
            )
            .await;
        assert_eq!(reply.body["state"], "approved", "{:?}", reply.body);
        id
    }

    /// The gate posts a signed batch: Bob walks out carrying carrier `n`'s tag. Returns the
    /// alert id of the server's `unauthorized_removal` verdict.
    pub async fn walk_out_with(&self, n: u16) -> String {
        let at_ms = self.state.now().unix_ms();
        let sighting = |e: Epc| TagSighting {
            epc: e,
            antenna_first: 1,
            antenna_last: 2,
            reads: 5,
            peak_rssi: 180,
            first_ms: at_ms - 600,
            last_ms: at_ms,
        };
        let batch = Batch {
            device_id: GATE.into(),
            epoch: 1,
            events: vec![Event {
                seq: 1,
                at_ms,
                body: EventBody::Passage {
                    reader: "uhf-main".into(),
                    direction: Direction::Out,
                    tags: vec![sighting(epc(n))],
                    badges: vec![sighting(Epc::from_hex(BADGE).expect("badge hex"))],
                    local_verdict: None,
                },
            }],
        };
        let body = serde_json::to_vec(&batch).expect("a batch serialises");
        let signature = STANDARD.encode(
            self.gate
                .sign(&signing_bytes(SignedKind::Batch, &body))
                .as_ref(),
        );
        let (status, bytes) = exchange(
            self.addr,
            Method::POST,
            &format!("/api/v1/devices/{GATE}/batches"),
            &[
                ("content-type", "application/json"),
                (SIGNATURE_HEADER, &signature),
            ],
            body,
        )
        .await;
        assert_eq!(status, 200, "batch: {}", String::from_utf8_lossy(&bytes));
        let ack: BatchAck = serde_json::from_slice(&bytes).expect("a batch ack");
        ack.check_answers(&batch)
            .expect("the ack answers the batch");
        let verdict = ack
            .verdicts
            .iter()
            .find(|v| v.seq == 1)
            .expect("a verdict for the passage");
        match &verdict.outcome {
            Outcome::Alarm {
                reason: AlarmReason::UnauthorizedRemoval,
                alert_id: Some(id),
            } => id.clone(),
            other => panic!("expected an unauthorised-removal alarm, got {other:?}"),
        }
    }

    /// Stop the server gracefully.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

/// The `id` of a 201 answer.
fn created(reply: Reply) -> String {
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    match &reply.body["id"] {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

async fn login(addr: SocketAddr, username: &str, password: &str) -> String {
    let reply = call(
        addr,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(reply.status, 200, "login {username}: {:?}", reply.body);
    reply.body["token"]
        .as_str()
        .expect("a session token")
        .to_owned()
}

/// A JSON request with an optional bearer token.
async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let bytes = body
        .map(|b| serde_json::to_vec(&b).expect("JSON values serialise"))
        .unwrap_or_default();
    let (status, bytes) = exchange(addr, method, path, &headers, bytes).await;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path}: non-JSON answer {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply { status, body }
}

/// One request over a fresh connection: status and body bytes.
async fn exchange(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the server");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .expect("a well-formed request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("answer body")
        .to_bytes();
    (status, bytes)
}

/// A new account's body: every privileged account is linked to a person of its own (the
/// holder is registered with the account), as separation of duties per person asks.
fn account_body(name: &str, role: &str) -> serde_json::Value {
    let mut body = json!({"username": name, "password": INITIAL_PASSWORD, "roles": [role]});
    if matches!(role, "admin" | "security_officer" | "auditor") {
        body["new_person"] = json!({"name": name, "department": "保密办", "category": "core"});
    }
    body
}
