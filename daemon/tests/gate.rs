//! The whole daemon in-process: fake reads go into the pipeline, passages go to a stub server
//! (hyper, written here: it verifies the device's signatures with ring and signs its answers),
//! and alarms go to a real Modbus TCP server (tokio-modbus) standing in for the gate I/O module.
//!
//! Waits are on conditions (gate reports, watch channels, counters) under one overall deadline,
//! never fixed sleeps.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custos_daemon::app::{self, Running, StartOptions};
use custos_daemon::config::Config;
use custos_daemon::gate::{DecidedBy, Decision, GateReport};
use custos_daemon::keys::{DeviceKey, PublicKey};
use custos_daemon::model::now_ms;
use custos_daemon::model::{ReaderOutput, TagRead};
use custos_daemon::uplink::SignedPolicy;
use custos_protocol::epc::Epc;
use custos_protocol::modbus_map::{Beam, GateInputs};
use custos_protocol::uplink::{
    AlarmReason, AllowedCarrier, Batch, BatchAck, DeviceFaultKind, Direction, Directive, Event,
    EventBody, GatePolicy, HealthState, Heartbeat, HeartbeatAck, LocalVerdict, Outcome,
    ReaderFault, ReaderHealth, SIGNATURE_HEADER, ScannedCode, SignedKind, Verdict, signing_bytes,
};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_modbus::server::tcp::{Server, accept_tcp_connection};
use tokio_modbus::{ExceptionCode, Request as ModbusRequest, Response as ModbusResponse};

const DEVICE: &str = "gate-1";
const DEADLINE: Duration = Duration::from_secs(60);
const HOUR: i64 = 3_600_000;

fn doc() -> Epc {
    Epc::from_hex("3474257BF40000000000162E").unwrap()
}

fn disk() -> Epc {
    Epc::from_hex("3474257BF40000000000162F").unwrap()
}

/// A staff badge (in the policy's staff list; nothing signed out to its holder).
fn staff() -> Epc {
    Epc::from_hex("E20000000000000000000B0B").unwrap()
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("custos_daemon=debug")
        .try_init();
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("test deadline passed")
}

/// Polls `condition` until it holds (bounded by the test deadline).
async fn until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The stub server.

#[derive(Default)]
struct State {
    /// Answer 503 to everything.
    down: bool,
    /// Per epoch, the highest seq stored.
    stored: BTreeMap<u64, u64>,
    /// Every event stored, once, with its epoch.
    events: Vec<(u64, Event)>,
    /// Every (epoch, seq) received in an accepted batch, duplicates included.
    deliveries: Vec<(u64, u64)>,
    /// Carriers whose exit the server refuses.
    forbidden: HashSet<Epc>,
    /// The policy to hand out.
    policy: Option<GatePolicy>,
    /// Every heartbeat received, in order.
    heartbeats: Vec<Heartbeat>,
    /// How long a batch waits before it is stored and answered (a slow server).
    batch_delay: Duration,
}

struct Ctx {
    device_public: [u8; 32],
    server: Ed25519KeyPair,
    state: Mutex<State>,
}

struct Stub {
    addr: SocketAddr,
    ctx: Arc<Ctx>,
}

impl Stub {
    async fn start(device_public: PublicKey) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let ctx = Arc::new(Ctx {
            device_public: *device_public.as_bytes(),
            server: Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap(),
            state: Mutex::new(State::default()),
        });
        let server_ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let ctx = server_ctx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(answer(&ctx, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub { addr, ctx }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn public(&self) -> PublicKey {
        PublicKey::from_bytes(self.ctx.server.public_key().as_ref().try_into().unwrap())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.ctx.state.lock().unwrap())
    }

    /// `policy` signed with the server key, as the daemon would have fetched it.
    fn sign(&self, policy: &GatePolicy) -> SignedPolicy {
        let body = serde_json::to_vec(policy).unwrap();
        let sig = self
            .ctx
            .server
            .sign(&signing_bytes(SignedKind::Policy, &body));
        SignedPolicy {
            policy: policy.clone(),
            body: Bytes::from(body),
            signature: STANDARD.encode(sig),
        }
    }

    /// The passages stored for `epoch`: (seq, direction, carrier tags).
    fn passages(&self, epoch: u64) -> Vec<(u64, Direction, Vec<Epc>)> {
        self.with(|s| {
            s.events
                .iter()
                .filter(|(e, _)| *e == epoch)
                .filter_map(|(_, ev)| match &ev.body {
                    EventBody::Passage {
                        direction, tags, ..
                    } => Some((ev.seq, *direction, tags.iter().map(|t| t.epc).collect())),
                    _ => None,
                })
                .collect()
        })
    }
}

fn respond(status: StatusCode, body: Vec<u8>, signature: Option<String>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(sig) = signature {
        builder = builder.header(SIGNATURE_HEADER, sig);
    }
    builder.body(Full::new(Bytes::from(body))).unwrap()
}

fn api_error(status: StatusCode, code: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": code, "message": code}).to_string();
    respond(status, body.into_bytes(), None)
}

async fn answer(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(what) = path.strip_prefix(&format!("/api/v1/devices/{DEVICE}/")) else {
        return api_error(StatusCode::NOT_FOUND, "not_found");
    };
    let (request_kind, answer_kind) = match what {
        "batches" => (SignedKind::Batch, SignedKind::BatchAck),
        "heartbeats" => (SignedKind::Heartbeat, SignedKind::HeartbeatAck),
        "policy" => (SignedKind::PolicyRequest, SignedKind::Policy),
        _ => return api_error(StatusCode::NOT_FOUND, "not_found"),
    };
    let what = what.to_owned();
    let signature = req.headers().get(SIGNATURE_HEADER).cloned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    // The device's signature, checked with ring over the frozen layout before parsing.
    let verified = signature
        .and_then(|s| STANDARD.decode(s.as_bytes()).ok())
        .is_some_and(|sig| {
            UnparsedPublicKey::new(&ED25519, &ctx.device_public)
                .verify(&signing_bytes(request_kind, &body), &sig)
                .is_ok()
        });
    if !verified {
        return api_error(StatusCode::UNAUTHORIZED, "device_auth_failed");
    }
    if what == "batches" {
        // A slow server: the batch (sent before this wait) is stored and answered after it.
        let delay = ctx.state.lock().unwrap().batch_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let mut state = ctx.state.lock().unwrap();
    if state.down {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "down");
    }
    let answer_body = match what.as_str() {
        "batches" => {
            let batch: Batch = serde_json::from_slice(&body).unwrap();
            assert_eq!(batch.validate(), Ok(()));
            let (first, last) = batch.seq_range().unwrap();
            let stored = state.stored.get(&batch.epoch).copied().unwrap_or(0);
            if first > stored + 1 {
                return api_error(StatusCode::CONFLICT, "seq_gap");
            }
            let mut verdicts = Vec::new();
            let mut directives = Vec::new();
            for e in &batch.events {
                state.deliveries.push((batch.epoch, e.seq));
                if e.seq > stored {
                    state.events.push((batch.epoch, e.clone()));
                } else if let EventBody::Passage {
                    local_verdict: Some(verdict),
                    ..
                } = &e.body
                {
                    // As the server does: a re-delivery that adds the gate's local verdict.
                    let kept = state
                        .events
                        .iter_mut()
                        .find(|(epoch, k)| *epoch == batch.epoch && k.seq == e.seq);
                    if let Some((
                        _,
                        Event {
                            body: EventBody::Passage { local_verdict, .. },
                            ..
                        },
                    )) = kept
                    {
                        *local_verdict = Some(*verdict);
                    }
                }
                if let EventBody::Passage {
                    direction: Direction::Out,
                    tags,
                    ..
                } = &e.body
                {
                    let refused = tags.iter().any(|t| state.forbidden.contains(&t.epc));
                    let outcome = if refused {
                        let alert = format!("A-{}-{}", batch.epoch, e.seq);
                        directives.push(Directive::SoundAlarm {
                            duration_ms: 3_000,
                            lock_door: false,
                            alert_id: Some(alert.clone()),
                        });
                        Outcome::Alarm {
                            reason: AlarmReason::UnauthorizedRemoval,
                            alert_id: Some(alert),
                        }
                    } else {
                        Outcome::Allowed
                    };
                    verdicts.push(Verdict {
                        seq: e.seq,
                        outcome,
                    });
                }
            }
            state.stored.insert(batch.epoch, stored.max(last));
            serde_json::to_vec(&BatchAck {
                device_id: DEVICE.into(),
                epoch: batch.epoch,
                acked_through: stored.max(last),
                verdicts,
                directives,
                policy_version: state.policy.as_ref().map_or(0, |p| p.version),
            })
            .unwrap()
        }
        "heartbeats" => {
            let hb: Heartbeat = serde_json::from_slice(&body).unwrap();
            assert_eq!(hb.validate(), Ok(()));
            let ack = serde_json::to_vec(&HeartbeatAck {
                device_id: DEVICE.into(),
                epoch: hb.epoch,
                hb_seq: hb.hb_seq,
                policy_version: state.policy.as_ref().map_or(0, |p| p.version),
                directives: vec![],
            })
            .unwrap();
            state.heartbeats.push(hb);
            ack
        }
        _ => match &state.policy {
            Some(policy) => serde_json::to_vec(policy).unwrap(),
            None => return api_error(StatusCode::NOT_FOUND, "no_policy"),
        },
    };
    drop(state);
    let sig = STANDARD.encode(ctx.server.sign(&signing_bytes(answer_kind, &answer_body)));
    respond(StatusCode::OK, answer_body, Some(sig))
}

/// The document may leave through this gate for the next hour; the disk may not.
fn policy() -> GatePolicy {
    let now = now_ms();
    GatePolicy {
        device_id: DEVICE.into(),
        version: 4,
        issued_at_ms: now - 60_000,
        valid_until_ms: now + HOUR,
        allowed: vec![AllowedCarrier {
            epc: doc(),
            until_ms: now + HOUR,
            borrower_badges: vec![],
            badge_required: false,
        }],
        badges: vec![staff()],
    }
}

// ---------------------------------------------------------------------------------------------
// The gate I/O module.

/// 8 coils and 8 discrete inputs (all closed: beams intact); every coil change is published.
#[derive(Clone)]
struct Module {
    coils: Arc<watch::Sender<[bool; 8]>>,
    inputs: Arc<Mutex<[bool; 8]>>,
}

impl tokio_modbus::server::Service for Module {
    type Request = ModbusRequest<'static>;
    type Response = ModbusResponse;
    type Exception = ExceptionCode;
    type Future = std::future::Ready<Result<ModbusResponse, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let reply = match req {
            ModbusRequest::WriteSingleCoil(addr, value) if addr < 8 => {
                self.coils.send_modify(|c| c[usize::from(addr)] = value);
                Ok(ModbusResponse::WriteSingleCoil(addr, value))
            }
            ModbusRequest::ReadDiscreteInputs(addr, count) if addr + count <= 8 => {
                let inputs = self.inputs.lock().unwrap();
                let (a, n) = (usize::from(addr), usize::from(count));
                Ok(ModbusResponse::ReadDiscreteInputs(
                    inputs[a..a + n].to_vec(),
                ))
            }
            _ => Err(ExceptionCode::IllegalDataAddress),
        };
        std::future::ready(reply)
    }
}

/// Starts the module; returns its address and a watch of its coils.
async fn module() -> (SocketAddr, watch::Receiver<[bool; 8]>) {
    let (addr, coils, _) = module_with_inputs().await;
    (addr, coils)
}

/// Starts the module; also returns its inputs, to set.
async fn module_with_inputs() -> (
    SocketAddr,
    watch::Receiver<[bool; 8]>,
    Arc<Mutex<[bool; 8]>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel([false; 8]);
    let inputs = Arc::new(Mutex::new([true; 8]));
    let module = Module {
        coils: Arc::new(tx),
        inputs: inputs.clone(),
    };
    tokio::spawn(async move {
        let server = Server::new(listener);
        let on_connected = |stream, socket_addr| {
            let module = module.clone();
            async move { accept_tcp_connection(stream, socket_addr, |_| Ok(Some(module.clone()))) }
        };
        let _ = server.serve(&on_connected, |_err| {}).await;
    });
    (addr, rx, inputs)
}

// ---------------------------------------------------------------------------------------------
// The daemon.

fn config(dir: &Path, stub: &Stub, module: SocketAddr, deadline_ms: u64, extra: &str) -> Config {
    gate_config(dir, stub, module, "", deadline_ms, extra)
}

/// A gate whose `[gate_io]` table has `gate_io` added.
fn gate_config(
    dir: &Path,
    stub: &Stub,
    module: SocketAddr,
    gate_io: &str,
    deadline_ms: u64,
    extra: &str,
) -> Config {
    let text = format!(
        r#"
device_id = "{DEVICE}"
server = "{url}"
key_file = "gate-1.key"
data_dir = "data"
server_public_key = "{pin}"

[[readers]]
name = "uhf-main"
protocol = "uhf-a0"
port = "/nonexistent/ttyUSB0"
inner_antennas = [1, 2]
outer_antennas = [3, 4]

[gate_io]
transport = "tcp"
address = "{module}"
call_timeout_ms = 1000
{gate_io}

[uplink]
retry_min_ms = 20
retry_max_ms = 200
heartbeat_interval_ms = 200
verdict_deadline_ms = {deadline_ms}

[alarm]
duration_ms = 3000

[smoothing]
holdoff_ms = 300
passage_gap_ms = 300
{extra}
"#,
        url = stub.url(),
        pin = stub.public(),
    );
    Config::parse(&text, &dir.join("custosd.toml")).unwrap()
}

fn key(dir: &Path) -> DeviceKey {
    let path = dir.join("gate-1.key");
    if path.exists() {
        DeviceKey::load(&path).unwrap()
    } else {
        DeviceKey::generate(&path).unwrap()
    }
}

async fn start(config: Config, dir: &Path) -> Running {
    app::start_with(
        config,
        key(dir),
        StartOptions {
            open_readers: false,
        },
    )
    .await
    .unwrap()
}

/// A person carrying `tag` walks out: read on the inner antennas, then on the outer ones.
async fn walk_out(running: &Running, tag: Epc) {
    walk_out_together(running, &[tag]).await;
}

/// Several tags carried out together (read in turn on each antenna).
async fn walk_out_together(running: &Running, tags: &[Epc]) {
    walk(running, tags, &[1, 2, 1, 3, 4, 3]).await;
}

/// Tags carried past `antennas` in turn, one read each 20 ms apart.
async fn walk(running: &Running, tags: &[Epc], antennas: &[u8]) {
    let input = running.reader_input();
    let t = now_ms();
    for (i, &antenna) in antennas.iter().enumerate() {
        for &epc in tags {
            let read = TagRead {
                at_ms: t + 20 * i as i64,
                epc,
                antenna,
                rssi: 60,
            };
            input
                .send(ReaderOutput::Tag {
                    reader: "uhf-main".into(),
                    read,
                })
                .await
                .unwrap();
        }
    }
}

/// The gate's reports, searchable in any order (a coil write may be reported before the
/// decision that caused it is logged).
struct Reports {
    rx: broadcast::Receiver<GateReport>,
    seen: Vec<GateReport>,
}

impl Reports {
    fn new(running: &Running) -> Self {
        Self {
            rx: running.subscribe(),
            seen: Vec::new(),
        }
    }

    /// The first report (seen or to come) that `pick` accepts; it is taken out.
    async fn find<T>(&mut self, pick: impl Fn(&GateReport) -> Option<T>) -> T {
        if let Some(i) = self.seen.iter().position(|r| pick(r).is_some()) {
            let report = self.seen.remove(i);
            if let Some(found) = pick(&report) {
                return found;
            }
        }
        loop {
            let report = self.rx.recv().await.unwrap();
            match pick(&report) {
                Some(found) => return found,
                None => self.seen.push(report),
            }
        }
    }

    /// The next decision on an exit with `tag`.
    async fn decision(&mut self, tag: Epc) -> Decision {
        self.find(|r| match r {
            GateReport::Decided(d) if d.tags.contains(&tag) => Some(d.clone()),
            _ => None,
        })
        .await
    }

    /// The next coil write of an exit decided by `by`: its passage-to-coil latency.
    async fn coil(&mut self, by: DecidedBy) -> Duration {
        self.find(|r| match r {
            GateReport::CoilWritten {
                by: b,
                passage_to_coil,
                ..
            } if *b == by => Some(*passage_to_coil),
            _ => None,
        })
        .await
    }
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_verdict_sounds_the_coil_and_final_passages_are_not_stored_twice() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| {
            s.policy = Some(policy());
            // The server refuses the document, which the policy lets go: only the server's
            // verdict can explain an alarm.
            s.forbidden = [doc()].into();
        });
        let (module, mut coils) = module().await;
        // A deadline generous enough for a loaded test machine: the server must decide.
        let running = start(config(dir.path(), &stub, module, 5_000, ""), dir.path()).await;
        let mut reports = Reports::new(&running);
        let metrics = running.metrics();

        // The verdict is in the ack of the crossing's provisional passage.
        walk_out(&running, doc()).await;
        let d = reports.decision(doc()).await;
        assert_eq!(d.by, DecidedBy::Server);
        assert_eq!(d.alarm, Some(AlarmReason::UnauthorizedRemoval));
        let seq = d.event.unwrap().seq;
        assert_eq!(d.alert_id, Some(format!("A-1-{seq}")));
        let latency = reports.coil(DecidedBy::Server).await;
        assert!(latency < Duration::from_secs(5), "{latency:?}");
        coils.wait_for(|c| c[0] && c[1]).await.unwrap();
        assert_eq!(metrics.gate.passage_to_coil().count(), 1);

        // The final passage of that crossing is not stored again.
        until(|| count(&metrics.pipeline.final_passages_dropped) == 1).await;
        assert_eq!(count(&metrics.pipeline.final_passages_stored), 0);
        until(|| running.heartbeat_state().borrow().policy_version == 4).await;

        // Health: every report updates the heartbeat, only changes are stored.
        let input = running.reader_input();
        let health = |state, fault, frames_ok| ReaderOutput::Health {
            reader: "uhf-main".into(),
            health: ReaderHealth {
                state,
                fault,
                frames_ok,
                checksum_errors: 0,
                dropped_bytes: 0,
                last_read_ms: None,
            },
        };
        input.send(health(HealthState::Ok, None, 5)).await.unwrap();
        input.send(health(HealthState::Ok, None, 9)).await.unwrap();
        input
            .send(health(HealthState::Fault, Some(ReaderFault::NoReply), 9))
            .await
            .unwrap();
        // A scan from a reader goes straight to the outbox.
        input
            .send(ReaderOutput::Scan {
                reader: "uhf-main".into(),
                at_ms: now_ms(),
                code: ScannedCode::Barcode {
                    text: "CUS-000123".into(),
                },
            })
            .await
            .unwrap();
        // The reader's latest report is what the heartbeat carries.
        let mut heartbeat = running.heartbeat_state();
        heartbeat
            .wait_for(|s| {
                s.readers.iter().any(|r| {
                    r.reader == "uhf-main"
                        && r.health.state == HealthState::Fault
                        && r.health.frames_ok == 9
                })
            })
            .await
            .unwrap();
        until(|| count(&metrics.pipeline.events_stored) == 4).await;
        assert_eq!(count(&metrics.pipeline.health_events), 2);

        running.stop().await;
        let passages = stub.passages(1);
        assert_eq!(passages, [(seq, Direction::Out, vec![doc()])]);
        let kinds: Vec<&str> = stub.with(|s| {
            s.events
                .iter()
                .map(|(_, e)| match &e.body {
                    EventBody::Passage { .. } => "passage",
                    EventBody::ReaderHealth { .. } => "health",
                    EventBody::Scan { .. } => "scan",
                    _ => "other",
                })
                .collect()
        });
        assert_eq!(kinds, ["passage", "health", "health", "scan"]);
        // Every stored event once, seqs consecutive from 1.
        let seqs: Vec<u64> = stub.with(|s| s.events.iter().map(|(_, e)| e.seq).collect());
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carriers_that_turn_back_are_reported_as_not_passed() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| {
            s.policy = Some(policy());
            s.forbidden = [disk()].into();
        });
        let (module, _coils) = module().await;
        let running = start(config(dir.path(), &stub, module, 300, ""), dir.path()).await;
        let metrics = running.metrics();
        let mut reports = Reports::new(&running);
        // The document and the disk reach the outer field together; the document goes out,
        // the disk is carried back in (within the hold-off, whenever the gate decides). The
        // crossing was announced all the same, and decided: the disk alarms.
        walk(&running, &[doc(), disk()], &[1, 2, 1, 3, 4, 3]).await;
        walk(&running, &[disk()], &[2, 1, 2]).await;
        let d = reports.decision(disk()).await;
        assert!(d.alarm.is_some());
        until(|| count(&metrics.pipeline.turned_back_stored) == 1).await;
        until(|| count(&metrics.pipeline.final_passages_dropped) == 1).await;
        running.stop().await;

        let events: Vec<Event> = stub.with(|s| s.events.iter().map(|(_, e)| e.clone()).collect());
        let moves: Vec<(u64, String)> = events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Passage {
                    direction, tags, ..
                } => Some((e.seq, format!("{direction:?} {}", tags.len()))),
                EventBody::TurnedBack {
                    passage_seq, tags, ..
                } => Some((e.seq, format!("back from {passage_seq}: {:?}", tags))),
                _ => None,
            })
            .collect();
        let (passage_seq, _) = moves[0];
        assert_eq!(
            moves,
            [
                (passage_seq, "Out 2".to_owned()),
                (
                    moves[1].0,
                    format!("back from {passage_seq}: {:?}", [disk()])
                ),
            ],
            "the provisional passage of both, then the disk's turning back; the final passage \
             (the document alone) is not stored again"
        );
        assert!(moves[1].0 > passage_seq);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_down_the_cached_policy_decides_and_events_arrive_later_once() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| {
            s.policy = Some(policy());
            s.forbidden = [disk()].into();
        });
        let (module, mut coils) = module().await;

        // First run: the policy is fetched and cached on disk.
        let running = start(config(dir.path(), &stub, module, 300, ""), dir.path()).await;
        let mut policy_rx = running.policy();
        policy_rx.wait_for(Option::is_some).await.unwrap();
        assert!(dir.path().join("data/policy.json").exists());
        running.stop().await;

        // The server goes down; the daemon restarts and decides from the cached policy.
        stub.with(|s| s.down = true);
        let running = start(config(dir.path(), &stub, module, 300, ""), dir.path()).await;
        assert_eq!(running.epoch(), 2);
        assert_eq!(
            running.policy().borrow().as_ref().map(|p| p.policy.version),
            Some(4),
            "loaded from the cache at start"
        );
        let mut reports = Reports::new(&running);
        let metrics = running.metrics();

        // The document goes out with a member of staff, whose badge the cached policy names:
        // the badge is a person, not a carrier nobody signed out.
        walk_out_together(&running, &[doc(), staff()]).await;
        let d = reports.decision(doc()).await;
        assert_eq!(
            (d.by, d.alarm, d.policy_version, d.tags.as_slice()),
            (DecidedBy::Policy, None, 4, [doc()].as_slice())
        );
        assert!(!coils.borrow()[0], "no alarm for a signed-out carrier");
        until(|| count(&metrics.pipeline.final_passages_dropped) == 1).await;

        walk_out(&running, disk()).await;
        let d = reports.decision(disk()).await;
        // The first exit's upload failed (or its deadline passed): the gate knows the server
        // is down, and this exit was decided without waiting for a verdict.
        assert_eq!(
            (d.by, d.alarm, d.server_down),
            (
                DecidedBy::Policy,
                Some(AlarmReason::UnauthorizedRemoval),
                true
            )
        );
        reports.coil(DecidedBy::Policy).await;
        coils.wait_for(|c| c[0]).await.unwrap();
        until(|| count(&metrics.pipeline.final_passages_dropped) == 2).await;
        assert!(running.outbox_depth().await.unwrap() >= 2);

        // The server comes back: everything is delivered, each event once; the late verdict
        // on the disk names the alert of the alarm already sounding.
        stub.with(|s| s.down = false);
        loop {
            if running.outbox_depth().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let late = reports.decision(doc()).await;
        assert_eq!((late.by, late.alarm), (DecidedBy::LateServer, None));
        running.stop().await;

        let passages = stub.passages(2);
        let tags: Vec<Vec<Epc>> = passages.iter().map(|(_, _, t)| t.clone()).collect();
        assert_eq!(tags, [vec![doc()], vec![disk()]]);
        type Ids = Vec<(u64, u64)>;
        let (delivered, unique): (Ids, Ids) = stub.with(|s| {
            (
                s.deliveries.clone(),
                s.events.iter().map(|(epoch, e)| (*epoch, e.seq)).collect(),
            )
        });
        let distinct: HashSet<_> = unique.iter().collect();
        assert_eq!(distinct.len(), unique.len(), "stored once each: {unique:?}");
        for (epoch, seq) in &delivered {
            assert!(unique.contains(&(*epoch, *seq)));
        }
        let second: Vec<u64> = unique
            .iter()
            .filter(|(e, _)| *e == 2)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(second, (1..=second.len() as u64).collect::<Vec<_>>());
    })
    .await;
}

/// A slow server: the passage's upload is on its way when the deadline passes, the policy
/// decides, and the ack comes after. The server still learns the gate's decision: the
/// passage outlives that ack and is delivered again with its local verdict (issue 9,
/// finding 8). Without that, the ack deleted it and the server kept `null`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passage_decided_while_its_upload_was_in_flight_reaches_the_server_with_its_verdict() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| s.policy = Some(policy()));
        let (module, coils) = module().await;
        let running = start(config(dir.path(), &stub, module, 50, ""), dir.path()).await;
        let mut policy_rx = running.policy();
        policy_rx.wait_for(Option::is_some).await.unwrap();
        let mut reports = Reports::new(&running);
        stub.with(|s| s.batch_delay = Duration::from_millis(500));

        walk_out(&running, doc()).await;
        let d = reports.decision(doc()).await;
        assert_eq!(
            (d.by, d.alarm, d.policy_version),
            (DecidedBy::Policy, None, 4)
        );
        let seq = d.event.expect("stored").seq;
        let late = reports.decision(doc()).await;
        assert_eq!((late.by, late.alarm), (DecidedBy::LateServer, None));
        loop {
            if running.outbox_depth().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!coils.borrow()[0], "no alarm for a signed-out carrier");
        let epoch = running.epoch();
        running.stop().await;

        let (stored, deliveries) = stub.with(|s| {
            let stored = s
                .events
                .iter()
                .find(|(e, ev)| *e == epoch && ev.seq == seq)
                .map(|(_, ev)| ev.body.clone());
            let n = s.deliveries.iter().filter(|d| **d == (epoch, seq)).count();
            (stored, n)
        });
        match stored {
            Some(EventBody::Passage { local_verdict, .. }) => assert_eq!(
                local_verdict,
                Some(LocalVerdict {
                    alarm: false,
                    policy_version: 4,
                    reason: None
                })
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(deliveries, 2, "sent without, then again with the verdict");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_raises_a_fault_and_the_gate_still_alarms() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| {
            s.down = true;
            s.forbidden = [disk()].into();
        });
        let (module, mut coils) = module().await;
        // A policy fetched on an earlier run (signed by the server), cached on disk.
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        custos_daemon::policy::save(&dir.path().join("data/policy.json"), &stub.sign(&policy()))
            .unwrap();
        let config = config(dir.path(), &stub, module, 300, "[outbox]\nmax_events = 1\n");
        let running = start(config, dir.path()).await;
        let mut reports = Reports::new(&running);
        let metrics = running.metrics();
        let mut heartbeat = running.heartbeat_state();

        // The document's passage takes the only place.
        walk_out(&running, doc()).await;
        let d = reports.decision(doc()).await;
        assert_eq!((d.by, d.alarm), (DecidedBy::Policy, None));
        assert!(d.event.is_some());
        until(|| count(&metrics.pipeline.final_passages_dropped) == 1).await;

        // The disk's is refused: the fault is raised and the policy decides at once.
        walk_out(&running, disk()).await;
        let d = reports.decision(disk()).await;
        assert_eq!(
            (d.by, d.alarm, d.event),
            (
                DecidedBy::Policy,
                Some(AlarmReason::UnauthorizedRemoval),
                None
            )
        );
        reports.coil(DecidedBy::Policy).await;
        coils.wait_for(|c| c[0]).await.unwrap();
        heartbeat
            .wait_for(|s| s.has_fault(DeviceFaultKind::OutboxFull))
            .await
            .unwrap();
        let faults = heartbeat.borrow().faults.clone();
        assert!(
            faults
                .iter()
                .any(|f| f.kind == DeviceFaultKind::OutboxFull && f.detail.contains("refused")),
            "{faults:?}"
        );
        assert!(count(&metrics.pipeline.events_refused) >= 1);

        // The server comes back: the outbox drains, the fault is recorded and cleared.
        stub.with(|s| s.down = false);
        heartbeat
            .wait_for(|s| !s.has_fault(DeviceFaultKind::OutboxFull))
            .await
            .unwrap();
        loop {
            if running.outbox_depth().await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        running.stop().await;
        let faults: Vec<DeviceFaultKind> = stub.with(|s| {
            s.events
                .iter()
                .filter_map(|(_, e)| match &e.body {
                    EventBody::DeviceFault { kind, .. } => Some(*kind),
                    _ => None,
                })
                .collect()
        });
        assert_eq!(faults, [DeviceFaultKind::OutboxFull]);
        assert_eq!(
            stub.passages(1).len(),
            1,
            "only the document's passage was stored"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_eyes_give_the_direction() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        stub.with(|s| s.forbidden = [doc()].into());
        let (module, mut coils, inputs) = module_with_inputs().await;
        let config = gate_config(
            dir.path(),
            &stub,
            module,
            "inner_beam_input = 0\nouter_beam_input = 1",
            5_000,
            "",
        );
        let running = start(config, dir.path()).await;
        let mut reports = Reports::new(&running);
        let metrics = running.metrics();
        let mut eyes = running.gate_inputs().expect("both photo-eyes configured");
        eyes.wait_for(|i| i.is_some()).await.unwrap();
        let beam = |input: usize, intact: bool| inputs.lock().unwrap()[input] = intact;
        let seen = |i: &Option<GateInputs>, inner, outer| {
            i.is_some_and(|i| i.inner_beam == Some(inner) && i.outer_beam == Some(outer))
        };

        // Someone steps into the inner beam, carrying the document (read on any antenna),
        // then into the outer beam: outward.
        beam(0, false);
        eyes.wait_for(|i| seen(i, Beam::Broken, Beam::Intact))
            .await
            .unwrap();
        // The reader keeps reading the document while the person is between the beams, as a
        // real one does (two reads, then silence, would let it disappear after the hold-off
        // on a slow machine before the second beam breaks).
        let input = running.reader_input();
        let reading = tokio::spawn(async move {
            loop {
                let read = TagRead {
                    at_ms: now_ms(),
                    epc: doc(),
                    antenna: 3,
                    rssi: 50,
                };
                let tag = ReaderOutput::Tag {
                    reader: "uhf-main".into(),
                    read,
                };
                if input.send(tag).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        until(|| count(&metrics.pipeline.reads) >= 2).await;
        beam(1, false);
        let d = reports.decision(doc()).await;
        assert_eq!((d.by, d.alarm.is_some()), (DecidedBy::Server, true));
        coils.wait_for(|c| c[0]).await.unwrap();
        reading.abort();
        // Both beams restored: the passage is final, and not stored twice.
        beam(0, true);
        beam(1, true);
        until(|| count(&metrics.pipeline.final_passages_dropped) == 1).await;
        running.stop().await;
        assert_eq!(stub.passages(1).len(), 1);
        assert_eq!(stub.passages(1)[0].1, Direction::Out);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cabinet_takes_a_final_count_at_shutdown() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        let text = format!(
            r#"
device_id = "{DEVICE}"
server = "{url}"
key_file = "gate-1.key"
data_dir = "data"
server_public_key = "{pin}"

[[readers]]
name = "shelf"
protocol = "uhf-chafon"
port = "/nonexistent/ttyUSB0"
antennas = [1, 2]

[uplink]
retry_min_ms = 20
retry_max_ms = 200

[smoothing]
holdoff_ms = 5000
"#,
            url = stub.url(),
            pin = stub.public(),
        );
        let config = Config::parse(&text, &dir.path().join("custosd.toml")).unwrap();
        let running = start(config, dir.path()).await;
        let metrics = running.metrics();
        let input = running.reader_input();
        let shelf = |at_ms: i64, epc: Epc| ReaderOutput::Tag {
            reader: "shelf".into(),
            read: TagRead {
                at_ms,
                epc,
                antenna: 1,
                rssi: 70,
            },
        };
        // Two documents on the shelf, read again once the first count's warm-up (appear
        // window + hold-off) has passed on the reads' clock: the first count lists both.
        // (Rounds less than a hold-off apart: the pipeline may poll between the two reads of
        // a round, and then the other document must still count as present.)
        let t = now_ms();
        for at in [t, t + 10, t + 3_000, t + 6_000] {
            input.send(shelf(at, doc())).await.unwrap();
            input.send(shelf(at, disk())).await.unwrap();
        }
        until(|| count(&metrics.pipeline.events_stored) == 1).await;
        // A third document arrives; one change per hold-off, so it waits...
        let third = Epc::from_hex("3474257BF400000000001630").unwrap();
        input.send(shelf(t + 6_010, third)).await.unwrap();
        input.send(shelf(t + 6_020, third)).await.unwrap();
        until(|| count(&metrics.pipeline.reads) == 10).await;
        // ...until the shutdown's final count, which is uploaded before the daemon exits.
        running.stop().await;
        let snapshots: Vec<(Vec<Epc>, Vec<Epc>)> = stub.with(|s| {
            s.events
                .iter()
                .filter_map(|(_, e)| match &e.body {
                    EventBody::CabinetSnapshot { present, added, .. } => {
                        Some((present.clone(), added.clone()))
                    }
                    _ => None,
                })
                .collect()
        });
        assert_eq!(snapshots.len(), 2, "{snapshots:?}");
        assert_eq!(snapshots[0].0, [doc(), disk()]);
        assert_eq!(snapshots[1].0, [doc(), disk(), third]);
        assert_eq!(snapshots[1].1, [third]);
    })
    .await;
}

/// The health a heartbeat carries for `reader`, if it lists it.
fn health_in(hb: &Heartbeat, reader: &str) -> Option<(HealthState, Option<ReaderFault>)> {
    hb.readers
        .iter()
        .find(|r| r.reader == reader)
        .map(|r| (r.health.state, r.health.fault.clone()))
}

/// A reader that has not reported yet is not a fault: starting the daemon must not raise a
/// `reader_fault` on the server for every reader that has not answered in the first
/// milliseconds. A reader that does not answer is still reported by its driver once its reply
/// timeout has passed, and that report travels with the next heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_heartbeat_has_no_fault_for_a_reader_that_has_not_reported() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let stub = Stub::start(key(dir.path()).public_key()).await;
        let (module, _coils) = module().await;
        let config = config(dir.path(), &stub, module, 300, "");
        let settings = app::reader_settings(&config.readers[0]);
        let started = tokio::time::Instant::now();
        let running = start(config, dir.path()).await;

        // The first heartbeat goes out at once, before the reader has said anything.
        until(|| stub.with(|s| !s.heartbeats.is_empty())).await;
        let first = stub.with(|s| s.heartbeats[0].clone());
        assert_eq!(first.hb_seq, 1);
        assert_eq!(
            health_in(&first, "uhf-main"),
            None,
            "a reader that has not reported is not listed: {:?}",
            first.readers
        );
        assert!(
            first
                .readers
                .iter()
                .all(|r| r.health.state != HealthState::Fault),
            "{:?}",
            first.readers
        );

        // The reader is connected but silent: its driver reports NoReply after its reply
        // timeout (500 ms), and the next heartbeat carries it.
        // (Every session gets a fresh link whose far end is kept open and never answers.)
        let far_ends = Arc::new(Mutex::new(Vec::new()));
        let keep = far_ends.clone();
        let driver = tokio::spawn(custos_daemon::readers::run_reader_on(
            settings,
            running.reader_input(),
            std::future::pending::<()>(),
            move || {
                let (near, far) = tokio::io::duplex(256);
                keep.lock().unwrap().push(far);
                async move { Ok::<_, custos_daemon::readers::ReaderError>(near) }
            },
        ));
        let no_reply = Some((HealthState::Fault, Some(ReaderFault::NoReply)));
        until(|| {
            stub.with(|s| {
                s.heartbeats
                    .iter()
                    .any(|hb| health_in(hb, "uhf-main") == no_reply)
            })
        })
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a dead reader is reported within seconds: {:?}",
            started.elapsed()
        );
        driver.abort();
        drop(far_ends);
        running.stop().await;
    })
    .await;
}
