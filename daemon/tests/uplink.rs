//! The uplink client and the shipper against a stub server written here with hyper's server.
//!
//! The stub checks every request's signature with ring directly (not with the daemon's own
//! verification code), so these tests pin the frozen signing layout from both ends, and signs its
//! answers with its own key, which the client pins. Waits are driven by the stub's request log
//! and the shipper's answers, never by fixed sleeps; every test has an overall deadline.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custos_daemon::keys::{DeviceKey, PublicKey, SignatureError};
use custos_daemon::outbox::Outbox;
use custos_daemon::uplink::{
    HeartbeatState, Heartbeats, ServerAnswer, Shipper, ShipperConfig, Uplink, UplinkError,
};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AllowedCarrier, Batch, BatchAck, DeviceFault, DeviceFaultKind, Direction, EventBody,
    GatePolicy, Heartbeat, HeartbeatAck, MAX_BODY_BYTES, Outcome, PolicyRequest, SIGNATURE_HEADER,
    ScannedCode, SignedKind, Verdict, signing_bytes,
};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

const DEVICE: &str = "gate-1";
const DEADLINE: Duration = Duration::from_secs(20);

/// How the stub answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Process and answer correctly, signed.
    Normal,
    /// 503 without processing.
    Unavailable,
    /// Process (store the events), then answer 503: the ack is lost.
    LoseAck,
    /// Process, sign the answer, then change the body.
    Tamper,
    /// Answer 200 with a signed body that is not JSON.
    Garbage,
    /// Answer for another device, signed.
    OtherDevice,
    /// Never answer.
    Hang,
}

/// What the stub saw: one entry per request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    status: StatusCode,
}

#[derive(Default)]
struct State {
    /// Modes for the next requests, in order; then `Normal`.
    script: VecDeque<Mode>,
    /// Per epoch, the highest seq stored.
    stored: BTreeMap<u64, u64>,
    /// Every (epoch, seq) stored, once each.
    unique: Vec<(u64, u64)>,
    /// Every (epoch, seq) received in an accepted batch, duplicates included.
    deliveries: Vec<(u64, u64)>,
    /// The body size of every accepted batch.
    batch_bytes: Vec<usize>,
    /// The policy to hand out.
    policy: Option<GatePolicy>,
}

struct Ctx {
    device_public: [u8; 32],
    server: Ed25519KeyPair,
    state: Mutex<State>,
    seen: mpsc::UnboundedSender<Seen>,
}

struct Stub {
    addr: SocketAddr,
    ctx: Arc<Ctx>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Stub {
    async fn start(device_public: PublicKey) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let ctx = Arc::new(Ctx {
            device_public: *device_public.as_bytes(),
            server: keypair(),
            state: Mutex::new(State::default()),
            seen: seen_tx,
        });
        let server_ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let ctx = server_ctx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let ctx = ctx.clone();
                        async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Stub { addr, ctx, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn server_public(&self) -> PublicKey {
        public_of(&self.ctx.server)
    }

    fn script(&self, modes: &[Mode]) {
        self.ctx.state.lock().unwrap().script.extend(modes);
    }

    fn state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.ctx.state.lock().unwrap())
    }

    async fn next_seen(&mut self) -> Seen {
        self.seen.recv().await.unwrap()
    }
}

fn keypair() -> Ed25519KeyPair {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
}

fn public_of(pair: &Ed25519KeyPair) -> PublicKey {
    PublicKey::from_bytes(pair.public_key().as_ref().try_into().unwrap())
}

fn device_key() -> DeviceKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    DeviceKey::from_pkcs8(doc.as_ref()).unwrap()
}

fn json_response(
    status: StatusCode,
    body: Vec<u8>,
    signature: Option<String>,
) -> Response<Full<Bytes>> {
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
    json_response(status, body.into_bytes(), None)
}

async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let response = answer(ctx, req).await;
    let _ = ctx.seen.send(Seen {
        path,
        status: response.status(),
    });
    response
}

async fn answer(ctx: &Ctx, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(what) = path
        .strip_prefix(&format!("/api/v1/devices/{DEVICE}/"))
        .map(str::to_owned)
    else {
        return api_error(StatusCode::NOT_FOUND, "not_found");
    };
    let (request_kind, answer_kind) = match what.as_str() {
        "batches" => (SignedKind::Batch, SignedKind::BatchAck),
        "heartbeats" => (SignedKind::Heartbeat, SignedKind::HeartbeatAck),
        "policy" => (SignedKind::PolicyRequest, SignedKind::Policy),
        _ => return api_error(StatusCode::NOT_FOUND, "not_found"),
    };
    assert_eq!(req.method(), hyper::Method::POST);
    assert_eq!(req.headers()["content-type"], "application/json");
    let signature = req.headers().get(SIGNATURE_HEADER).cloned();
    let body = req.into_body().collect().await.unwrap().to_bytes();

    // Verify the device's signature with ring over the frozen layout, before parsing.
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

    let mode = ctx
        .state
        .lock()
        .unwrap()
        .script
        .pop_front()
        .unwrap_or(Mode::Normal);
    match mode {
        Mode::Unavailable => return api_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Mode::Hang => std::future::pending::<()>().await,
        _ => {}
    }

    let device = if mode == Mode::OtherDevice {
        "gate-2"
    } else {
        DEVICE
    };
    let answer_body = match what.as_str() {
        "batches" => {
            let batch: Batch = serde_json::from_slice(&body).unwrap();
            assert_eq!(batch.validate(), Ok(()));
            assert_eq!(batch.device_id, DEVICE);
            let (first, last) = batch.seq_range().unwrap();
            let mut state = ctx.state.lock().unwrap();
            let stored = state.stored.get(&batch.epoch).copied().unwrap_or(0);
            if first > stored + 1 {
                drop(state);
                return api_error(StatusCode::CONFLICT, "seq_gap");
            }
            state.batch_bytes.push(body.len());
            for e in &batch.events {
                state.deliveries.push((batch.epoch, e.seq));
                if e.seq > stored {
                    state.unique.push((batch.epoch, e.seq));
                }
            }
            state.stored.insert(batch.epoch, stored.max(last));
            let verdicts = batch
                .events
                .iter()
                .filter(|e| matches!(e.body, EventBody::Passage { .. }))
                .map(|e| Verdict {
                    seq: e.seq,
                    outcome: Outcome::Allowed,
                })
                .collect();
            serde_json::to_vec(&BatchAck {
                device_id: device.into(),
                epoch: batch.epoch,
                acked_through: stored.max(last),
                verdicts,
                directives: vec![],
                policy_version: 7,
            })
            .unwrap()
        }
        "heartbeats" => {
            let hb: Heartbeat = serde_json::from_slice(&body).unwrap();
            serde_json::to_vec(&HeartbeatAck {
                device_id: device.into(),
                epoch: hb.epoch,
                hb_seq: hb.hb_seq,
                policy_version: 7,
                directives: vec![],
            })
            .unwrap()
        }
        _ => {
            let request: PolicyRequest = serde_json::from_slice(&body).unwrap();
            assert_eq!(request.device_id, DEVICE);
            let mut policy = ctx.state.lock().unwrap().policy.clone().unwrap();
            policy.device_id = device.into();
            serde_json::to_vec(&policy).unwrap()
        }
    };
    if mode == Mode::LoseAck {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "lost");
    }
    let mut answer_body = if mode == Mode::Garbage {
        b"<html>oops</html>".to_vec()
    } else {
        answer_body
    };
    let sig = STANDARD.encode(ctx.server.sign(&signing_bytes(answer_kind, &answer_body)));
    if mode == Mode::Tamper {
        // Same JSON meaning, different bytes: still refused, the bytes are what is signed.
        answer_body.push(b' ');
    }
    json_response(StatusCode::OK, answer_body, Some(sig))
}

fn scan(n: u32) -> EventBody {
    EventBody::Scan {
        reader: "desk".into(),
        code: ScannedCode::Barcode {
            text: format!("CUS-{n:06}"),
        },
    }
}

/// Event times the shipper sends as they are (it restamps implausible ones).
fn now_ms() -> i64 {
    custos_daemon::model::now_ms()
}

fn passage() -> EventBody {
    EventBody::Passage {
        reader: "uhf-main".into(),
        direction: Direction::Out,
        tags: vec![],
        badges: vec![],
        local_verdict: None,
    }
}

fn batch(epoch: u64, first: u64, bodies: Vec<EventBody>) -> Batch {
    Batch {
        device_id: DEVICE.into(),
        epoch,
        events: (first..)
            .zip(bodies)
            .map(|(seq, body)| custos_protocol::uplink::Event {
                seq,
                at_ms: 1_767_225_600_000,
                body,
            })
            .collect(),
    }
}

/// A pinned client and the stub it talks to.
async fn pinned_pair() -> (Uplink, Stub) {
    let key = device_key();
    let stub = Stub::start(key.public_key()).await;
    let uplink = Uplink::new(&stub.url(), DEVICE, key, Some(stub.server_public())).unwrap();
    (uplink, stub)
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("test deadline passed")
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("custos_daemon=debug")
        .try_init();
}

#[tokio::test]
async fn batch_is_signed_and_the_signed_ack_verified() {
    init_tracing();
    within(async {
        let (uplink, mut stub) = pinned_pair().await;
        let b = batch(3, 1, vec![scan(1), passage()]);
        let ack = uplink.send_batch(&b).await.unwrap();
        assert_eq!(
            (ack.device_id.as_str(), ack.epoch, ack.acked_through),
            (DEVICE, 3, 2)
        );
        assert_eq!(
            ack.verdicts,
            [Verdict {
                seq: 2,
                outcome: Outcome::Allowed
            }]
        );
        let seen = stub.next_seen().await;
        assert_eq!(
            (seen.path.as_str(), seen.status),
            ("/api/v1/devices/gate-1/batches", StatusCode::OK)
        );
        assert_eq!(stub.state(|s| s.unique.clone()), [(3, 1), (3, 2)]);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_device_key_is_refused_by_the_server() {
    within(async {
        let stub = Stub::start(device_key().public_key()).await;
        let uplink = Uplink::new(&stub.url(), DEVICE, device_key(), None).unwrap();
        let err = uplink
            .send_batch(&batch(1, 1, vec![scan(1)]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, UplinkError::Status { status, code: Some(c), .. }
                if *status == StatusCode::UNAUTHORIZED && c == "device_auth_failed"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn tampered_or_unsigned_answers_are_refused_when_pinned() {
    within(async {
        let (uplink, stub) = pinned_pair().await;
        stub.script(&[Mode::Tamper]);
        let err = uplink
            .send_batch(&batch(1, 1, vec![scan(1)]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, UplinkError::Signature(SignatureError::Invalid)),
            "{err}"
        );

        // Pinned to another key: every answer is refused.
        let key = device_key();
        let stub = Stub::start(key.public_key()).await;
        let wrong = public_of(&keypair());
        let uplink = Uplink::new(&stub.url(), DEVICE, key, Some(wrong)).unwrap();
        let err = uplink
            .send_batch(&batch(1, 1, vec![scan(1)]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, UplinkError::Signature(SignatureError::Invalid)),
            "{err}"
        );

        // Not pinned: the same tampered answer is accepted (so pinning is what refused it).
        let key = device_key();
        let stub = Stub::start(key.public_key()).await;
        let uplink = Uplink::new(&stub.url(), DEVICE, key, None).unwrap();
        stub.script(&[Mode::Tamper]);
        assert_eq!(
            uplink
                .send_batch(&batch(1, 1, vec![scan(1)]))
                .await
                .unwrap()
                .acked_through,
            1
        );
    })
    .await;
}

#[tokio::test]
async fn garbage_and_foreign_answers_are_typed_errors() {
    within(async {
        let (uplink, stub) = pinned_pair().await;
        stub.script(&[Mode::Garbage, Mode::OtherDevice]);
        let b = batch(1, 1, vec![scan(1)]);
        let err = uplink.send_batch(&b).await.unwrap_err();
        assert!(
            matches!(
                err,
                UplinkError::Malformed {
                    what: "batch ack",
                    ..
                }
            ),
            "{err}"
        );
        let err = uplink.send_batch(&b).await.unwrap_err();
        assert!(
            matches!(
                err,
                UplinkError::Mismatch(custos_protocol::uplink::UplinkError::Mismatch {
                    field: "device_id"
                })
            ),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_silent_server_times_out() {
    within(async {
        let (uplink, stub) = pinned_pair().await;
        let uplink = uplink.with_request_timeout(Duration::from_millis(200));
        stub.script(&[Mode::Hang]);
        let err = uplink
            .send_batch(&batch(1, 1, vec![scan(1)]))
            .await
            .unwrap_err();
        assert!(
            matches!(err, UplinkError::Timeout(d) if d == Duration::from_millis(200)),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn unavailable_server_leaves_events_in_the_outbox() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        outbox.append(now_ms() + 1, &scan(1)).await.unwrap();
        outbox.append(now_ms() + 2, &scan(2)).await.unwrap();
        let (uplink, mut stub) = pinned_pair().await;
        stub.script(&[Mode::Unavailable]);
        let pending = outbox.pending(10).await.unwrap().unwrap();
        let b = pending.clone().into_batch(DEVICE);
        let err = uplink.send_batch(&b).await.unwrap_err();
        assert!(
            matches!(&err, UplinkError::Status { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE),
            "{err}"
        );
        assert_eq!(stub.next_seen().await.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(outbox.depth().await.unwrap(), 2);
        assert_eq!(outbox.pending(10).await.unwrap(), Some(pending));
        assert!(stub.state(|s| s.unique.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn heartbeat_and_policy_are_signed_both_ways() {
    within(async {
        let (uplink, stub) = pinned_pair().await;
        let hb = Heartbeat {
            device_id: DEVICE.into(),
            epoch: 4,
            hb_seq: 9,
            at_ms: 1_767_225_600_000,
            readers: vec![],
            outbox_depth: 0,
            policy_version: 0,
            faults: vec![DeviceFault {
                kind: DeviceFaultKind::GateIoLost,
                since_ms: 1_767_225_500_000,
                detail: "gate i/o module not answering".into(),
            }],
        };
        let ack = uplink.send_heartbeat(&hb).await.unwrap();
        assert_eq!((ack.epoch, ack.hb_seq, ack.policy_version), (4, 9, 7));

        let policy = GatePolicy {
            device_id: DEVICE.into(),
            version: 7,
            issued_at_ms: 1_000,
            valid_until_ms: 2_000,
            allowed: vec![AllowedCarrier {
                epc: Epc::from_hex("3474257BF40000000000162E").unwrap(),
                until_ms: 1_500,
                borrower_badges: vec![],
                badge_required: false,
            }],
            badges: vec![],
        };
        stub.ctx.state.lock().unwrap().policy = Some(policy.clone());
        let signed = uplink.fetch_policy(4, 0).await.unwrap();
        assert_eq!(signed.policy, policy);
        // The cached bytes and signature verify again, and only for this device and key.
        let again = custos_daemon::uplink::SignedPolicy::verify(
            signed.body.clone(),
            signed.signature.clone(),
            &stub.server_public(),
            DEVICE,
        )
        .unwrap();
        assert_eq!(again, signed);
        assert!(
            custos_daemon::uplink::SignedPolicy::verify(
                signed.body.clone(),
                signed.signature.clone(),
                &stub.server_public(),
                "gate-2",
            )
            .is_err()
        );
        let mut forged = signed.body.to_vec();
        forged.push(b'\n');
        assert!(matches!(
            custos_daemon::uplink::SignedPolicy::verify(
                forged.into(),
                signed.signature.clone(),
                &stub.server_public(),
                DEVICE,
            ),
            Err(UplinkError::Signature(SignatureError::Invalid))
        ));

        stub.script(&[Mode::OtherDevice]);
        assert!(matches!(
            uplink.fetch_policy(4, 0).await,
            Err(UplinkError::Mismatch(_))
        ));

        // Without a pinned key no policy is fetched at all.
        let key = device_key();
        let stub = Stub::start(key.public_key()).await;
        let unpinned = Uplink::new(&stub.url(), DEVICE, key, None).unwrap();
        assert!(matches!(
            unpinned.fetch_policy(4, 0).await,
            Err(UplinkError::Unpinned)
        ));
    })
    .await;
}

/// Polls `condition` until it holds (bounded by the test deadline).
async fn until(mut condition: impl AsyncFnMut() -> bool) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn shipper_config(batch_max: usize) -> ShipperConfig {
    ShipperConfig {
        batch_max,
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
    }
}

#[tokio::test]
async fn shipper_delivers_every_event_exactly_once_across_an_outage() {
    init_tracing();
    within(async {
        let dir = tempfile::tempdir().unwrap();
        // A backlog from an earlier start goes first.
        let old = Outbox::open(dir.path().to_owned(), 1000).await.unwrap();
        for n in 1..=4 {
            old.append(now_ms() + i64::from(n), &scan(n)).await.unwrap();
        }
        old.close().await;
        let outbox = Outbox::open(dir.path().to_owned(), 1000).await.unwrap();
        assert_eq!(outbox.epoch(), 2);
        for n in 1..=5 {
            outbox
                .append(now_ms() + i64::from(n), &scan(n))
                .await
                .unwrap();
        }

        let (uplink, mut stub) = pinned_pair().await;
        // Two refusals, then a batch stored whose ack is lost, then a refusal again.
        stub.script(&[
            Mode::Unavailable,
            Mode::Unavailable,
            Mode::LoseAck,
            Mode::Unavailable,
        ]);
        let (answers, mut answer_rx) = mpsc::channel(64);
        let (stop, stopped) = watch::channel(false);
        let shipper = Shipper::new(outbox.clone(), Arc::new(uplink), shipper_config(3), answers);
        let task = tokio::spawn(shipper.run(async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));

        // Wait for the lost ack, then add events while the shipper is retrying.
        loop {
            if stub.next_seen().await.path.ends_with("/batches")
                && stub.state(|s| !s.deliveries.is_empty())
            {
                break;
            }
        }
        for n in 6..=8 {
            outbox
                .append(now_ms() + i64::from(n), &scan(n))
                .await
                .unwrap();
        }
        loop {
            if let Some(ServerAnswer::Batch {
                epoch: 2,
                acked_through: 8,
                authenticated,
                ..
            }) = answer_rx.recv().await
            {
                assert!(authenticated);
                break;
            }
        }
        until(async || outbox.depth().await.unwrap() == 0).await;
        stop.send(true).unwrap();
        task.await.unwrap();

        let expected: Vec<(u64, u64)> = (1..=4)
            .map(|s| (1, s))
            .chain((1..=8).map(|s| (2, s)))
            .collect();
        let (unique, deliveries) = stub.state(|s| (s.unique.clone(), s.deliveries.clone()));
        assert_eq!(
            unique, expected,
            "every event stored once, in order, old epoch first"
        );
        assert!(
            deliveries.len() > unique.len(),
            "the batch whose ack was lost was sent again: {deliveries:?}"
        );
        assert_eq!(outbox.pending(10).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn shipper_sends_a_new_event_at_once() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        let (uplink, mut stub) = pinned_pair().await;
        let (answers, mut answer_rx) = mpsc::channel(8);
        // A backoff of an hour: only the new-event notification can explain a prompt upload.
        let config = ShipperConfig {
            batch_max: 256,
            retry_min: Duration::from_secs(3600),
            retry_max: Duration::from_secs(3600),
        };
        let task = tokio::spawn(
            Shipper::new(outbox.clone(), Arc::new(uplink), config, answers)
                .run(std::future::pending()),
        );
        for seq in 1..=3 {
            let id = outbox.append(now_ms(), &passage()).await.unwrap();
            assert_eq!(id.seq, seq);
            match answer_rx.recv().await.unwrap() {
                ServerAnswer::Batch {
                    acked_through,
                    verdicts,
                    ..
                } => {
                    assert_eq!(acked_through, seq);
                    assert_eq!(verdicts[0].seq, seq);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(stub.next_seen().await.status, StatusCode::OK);
        }
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn shipper_halves_batches_larger_than_the_body_limit() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        // Cabinet snapshots of 1024 tags each: about 27 KiB of JSON per list.
        let tags: Vec<Epc> = (0..1024u32)
            .map(|i| {
                let mut bytes = [0x30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                bytes[8..].copy_from_slice(&i.to_be_bytes());
                Epc::new(&bytes).unwrap()
            })
            .collect();
        let snapshot = EventBody::CabinetSnapshot {
            reader: "shelf".into(),
            present: tags.clone(),
            added: tags.clone(),
            removed: tags,
        };
        let events: Vec<(i64, EventBody)> = (0..16).map(|_| (now_ms(), snapshot.clone())).collect();
        outbox.append_many(&events).await.unwrap();
        let (uplink, stub) = pinned_pair().await;
        let (answers, mut answer_rx) = mpsc::channel(64);
        let task = tokio::spawn(
            Shipper::new(
                outbox.clone(),
                Arc::new(uplink),
                shipper_config(256),
                answers,
            )
            .run(std::future::pending()),
        );
        loop {
            if let Some(ServerAnswer::Batch {
                acked_through: 16, ..
            }) = answer_rx.recv().await
            {
                break;
            }
        }
        task.abort();
        let sizes = stub.state(|s| s.batch_bytes.clone());
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= MAX_BODY_BYTES), "{sizes:?}");
        assert_eq!(stub.state(|s| s.unique.len()), 16);
    })
    .await;
}

#[tokio::test]
async fn heartbeats_advance_hb_seq_and_report_answers() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        outbox.append(now_ms(), &scan(1)).await.unwrap();
        let (uplink, stub) = pinned_pair().await;
        stub.script(&[Mode::Unavailable]);
        let (answers, mut answer_rx) = mpsc::channel(8);
        let (_state, state_rx) = watch::channel(HeartbeatState {
            policy_version: 3,
            ..HeartbeatState::default()
        });
        let task = tokio::spawn(
            Heartbeats::new(
                Arc::new(uplink),
                outbox.clone(),
                Duration::from_millis(10),
                state_rx,
                answers,
            )
            .run(std::future::pending()),
        );
        // hb_seq 1 was refused (503); the next ones are answered, each with a new seq.
        let mut seqs = vec![];
        while seqs.len() < 2 {
            if let Some(ServerAnswer::Heartbeat {
                hb_seq,
                policy_version,
                authenticated,
                ..
            }) = answer_rx.recv().await
            {
                assert_eq!((policy_version, authenticated), (7, true));
                seqs.push(hb_seq);
            }
        }
        task.abort();
        assert_eq!(seqs, [2, 3]);
    })
    .await;
}

#[tokio::test]
async fn shipper_makes_one_last_attempt_at_shutdown() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().to_owned(), 100).await.unwrap();
        for n in 1..=3 {
            outbox
                .append(now_ms() + i64::from(n), &scan(n))
                .await
                .unwrap();
        }
        let (uplink, stub) = pinned_pair().await;
        let (answers, mut answer_rx) = mpsc::channel(8);
        // Shut down before the first upload: only the last attempt can send them.
        Shipper::new(outbox.clone(), Arc::new(uplink), shipper_config(2), answers)
            .run(std::future::ready(()))
            .await;
        assert!(matches!(
            answer_rx.recv().await,
            Some(ServerAnswer::Batch {
                acked_through: 2,
                ..
            })
        ));
        assert_eq!(stub.state(|s| s.unique.clone()), [(1, 1), (1, 2)]);
        assert_eq!(outbox.depth().await.unwrap(), 1, "one batch, not a drain");
    })
    .await;
}
