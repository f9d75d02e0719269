//! The uplink: the signed HTTP exchanges with the server, and the tasks that drive them.
//!
//! [`Uplink`] is the client (hyper's pooled legacy client over plain HTTP/1.1 with `TCP_NODELAY`;
//! no TLS: every message is signed, see `custos_protocol::uplink`, "Signatures"). Each request
//! body is serialised once, signed over exactly those bytes with the device key, and sent with
//! the `custos-signature` header. Each answer is read with a size limit and, when a server key
//! is pinned, verified over its raw bytes *before* it is parsed; then it is checked against the
//! request (`BatchAck::check_answers`, `HeartbeatAck::check_answers`, `GatePolicy::validate`).
//! The whole exchange runs under one deadline. Every failure is an [`UplinkError`]; the caller
//! keeps its events in the outbox and tries again.
//!
//! Without a pinned server key answers cannot be authenticated. Acks are still used to delete
//! acknowledged events (a forged ack can delete events the server does not have; the server then
//! sees a seq gap and refuses that epoch's later batches with 409, which is loud rather than
//! silent), but the [`ServerAnswer`]s the tasks report carry
//! `authenticated: false`, and the gate must not act on their verdicts or directives; a policy is
//! never fetched ([`UplinkError::Unpinned`]).
//!
//! Before signing a batch the shipper restamps events whose time the server would refuse
//! (`custos_protocol::uplink::event_time_plausible`; see the outbox's "Implausible times"); a
//! 409 `clock_skew` that still comes back is retried with backoff like any failure, so a
//! poisoned time neither blocks the backlog for ever nor drops an event.
//!
//! [`Shipper`] uploads the outbox: oldest events first, at most `batch_max` per batch, the next
//! batch as soon as the previous is acknowledged, and capped exponential backoff after a failure.
//! It sleeps on the outbox's notifier while there is nothing to send, so a passage is on the wire
//! as soon as it is on disk. [`Heartbeats`] sends a heartbeat every interval. Both report what
//! the server answered on a channel and stop when their shutdown future completes: an upload in
//! flight is abandoned (the server ignores the overlap when it is sent again), then the shipper
//! makes one last attempt (one batch, under the request deadline) so that what the daemon
//! flushed at shutdown has a chance to reach the server before the process exits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use custos_protocol::uplink::AUDIT_HEAD_HEADER;
use custos_protocol::uplink::{
    self as proto, Batch, BatchAck, DeviceFault, DeviceFaultKind, Directive, GatePolicy, Heartbeat,
    HeartbeatAck, MAX_BODY_BYTES, MAX_READERS, NamedHealth, PolicyRequest, ReaderHealth,
    SIGNATURE_HEADER, SignedKind, Verdict,
};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc, watch};

use crate::backoff::Backoff;
use crate::config::UplinkConfig;
use crate::keys::{DeviceKey, PublicKey, SignatureError};
use crate::model::now_ms;
use crate::outbox::Outbox;
use crate::witness::Witness;

/// The default deadline of one exchange (request and answer).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// An exchange with the server failed. The request may or may not have reached the server;
/// everything the daemon sends is idempotent or sequenced, so sending it again is safe.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The server URL or the device id do not make a valid request URI.
    #[error("bad server URL: {0}")]
    BadUrl(String),
    /// The connection failed (refused, reset, DNS).
    /// (Shown with its whole source chain, so it is not also exposed as `source`.)
    #[error("connection failed: {}", error_chain(.0))]
    Connect(hyper_util::client::legacy::Error),
    /// Reading the answer failed, or it exceeded [`MAX_BODY_BYTES`].
    #[error("reading the answer failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No complete answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server refused or failed the request (not 2xx).
    #[error("server answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The API error code (`"error"` of the JSON error body), if any.
        code: Option<String>,
        /// The API error message, or the start of the body.
        message: String,
    },
    /// The request body would exceed [`MAX_BODY_BYTES`]; send fewer events.
    #[error("request of {len} bytes exceeds the {max} byte limit", max = MAX_BODY_BYTES)]
    RequestTooLarge {
        /// The serialised size.
        len: usize,
    },
    /// The request itself breaks the uplink rules (refused before sending).
    #[error("invalid request: {0}")]
    InvalidRequest(#[source] proto::UplinkError),
    /// The answer's signature is missing or does not verify against the pinned server key.
    #[error("server signature: {0}")]
    Signature(#[from] SignatureError),
    /// The answer is not the expected JSON.
    #[error("answer is not a valid {what}: {source}")]
    Malformed {
        /// The message expected.
        what: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The answer does not answer this request (another device, epoch or seq).
    #[error("answer does not match the request: {0}")]
    Mismatch(#[source] proto::UplinkError),
    /// A gate policy was requested but no server key is pinned to verify it.
    #[error("no server_public_key pinned: a policy cannot be verified")]
    Unpinned,
    /// `GET /server-key` answered something that is not a 32-byte Ed25519 key.
    #[error("the server's key is not 32 bytes of standard base64")]
    BadServerKey,
    /// Building the HTTP request failed.
    #[error("building the request: {0}")]
    Http(#[from] hyper::http::Error),
}

/// An error and its sources, `: `-separated (hyper's client errors say little on their own:
/// "client error (Connect)" hides "Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A gate policy together with the exact bytes and signature it arrived with, so a cached copy
/// can be verified again when it is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    /// The parsed, validated policy.
    pub policy: GatePolicy,
    /// The HTTP body exactly as received.
    pub body: Bytes,
    /// The `custos-signature` header value (base64).
    pub signature: String,
}

impl SignedPolicy {
    /// Verifies `body` against `signature` with the server key, parses it and checks it is a
    /// valid policy for `device_id` (for a copy loaded from a cache, or one just received).
    pub fn verify(
        body: Bytes,
        signature: String,
        server_key: &PublicKey,
        device_id: &str,
    ) -> Result<SignedPolicy, UplinkError> {
        server_key.verify(SignedKind::Policy, &body, signature.as_bytes())?;
        let policy: GatePolicy = parse(&body, "gate policy")?;
        policy.validate(device_id).map_err(UplinkError::Mismatch)?;
        Ok(SignedPolicy {
            policy,
            body,
            signature,
        })
    }
}

fn parse<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, UplinkError> {
    serde_json::from_slice(body).map_err(|source| UplinkError::Malformed { what, source })
}

/// A raw answer: its body and signature header.
struct RawAnswer {
    body: Bytes,
    signature: Option<HeaderValue>,
    audit_head: Option<HeaderValue>,
}

/// The signed HTTP client to the server for one device.
pub struct Uplink {
    client: Client<HttpConnector, Full<Bytes>>,
    device_id: String,
    key: DeviceKey,
    server_key: Option<PublicKey>,
    witness: Option<std::sync::Mutex<Witness>>,
    request_timeout: Duration,
    batches: Uri,
    heartbeats: Uri,
    policy: Uri,
    server_key_uri: Uri,
}

/// What the server says about this device (`custosd check`, [`Uplink::probe_registration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// The server knows this device id with this key.
    Registered,
    /// The server refused the signature (401): no such device, another key registered for
    /// it, or the device was revoked. (The server does not say which, by design.)
    Unknown,
    /// Registered, but the device's clock is too far from the server's (409 `clock_skew`).
    ClockSkew,
}

impl std::fmt::Debug for Uplink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uplink")
            .field("device_id", &self.device_id)
            .field("batches", &self.batches)
            .field("server_key", &self.server_key)
            .finish_non_exhaustive()
    }
}

impl Uplink {
    /// A client for `device_id` talking to `server_url` (`http://HOST:PORT`), signing with `key`
    /// and, if given, verifying answers with `server_public_key`.
    pub fn new(
        server_url: &str,
        device_id: &str,
        key: DeviceKey,
        server_public_key: Option<PublicKey>,
    ) -> Result<Uplink, UplinkError> {
        let base = server_url.trim_end_matches('/');
        let uri = |what: &str| {
            format!("{base}/api/v1/devices/{device_id}/{what}")
                .parse::<Uri>()
                .map_err(|e| UplinkError::BadUrl(format!("{base}: {e}")))
        };
        let (batches, heartbeats, policy) = (uri("batches")?, uri("heartbeats")?, uri("policy")?);
        let server_key_uri = format!("{base}/api/v1/server-key")
            .parse::<Uri>()
            .map_err(|e| UplinkError::BadUrl(format!("{base}: {e}")))?;
        if batches.scheme_str() != Some("http") {
            return Err(UplinkError::BadUrl(format!("{base}: not an http:// URL")));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Uplink {
            client,
            device_id: device_id.to_owned(),
            key,
            server_key: server_public_key,
            witness: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            batches,
            heartbeats,
            policy,
            server_key_uri,
        })
    }

    /// The server's own signing key, as `GET /api/v1/server-key` answers it (no
    /// authentication): `custosd check` compares it with the pin.
    pub async fn fetch_server_key(&self) -> Result<PublicKey, UplinkError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            public_key: String,
        }
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.server_key_uri.clone())
            .body(Full::new(Bytes::new()))?;
        let answer = self.send(request).await?;
        let answer: Answer = parse(&answer.body, "server key")?;
        answer
            .public_key
            .parse()
            .map_err(|_| UplinkError::BadServerKey)
    }

    /// Whether the server knows this device with this key: a signed policy request (read-only
    /// on the server; a cabinet or desk is told it is not a gate, which proves the same). An
    /// unknown device is refused as any unknown signer is, so the server also raises its
    /// `device_auth_failed` alert: the guard sees the attempt.
    pub async fn probe_registration(&self) -> Result<Registration, UplinkError> {
        let request = PolicyRequest {
            device_id: self.device_id.clone(),
            epoch: 0,
            at_ms: now_ms(),
            have_version: 0,
        };
        request.validate().map_err(UplinkError::InvalidRequest)?;
        let body = to_json(&request)?;
        match self
            .exchange(&self.policy, SignedKind::PolicyRequest, body)
            .await
        {
            Ok(_) => Ok(Registration::Registered),
            Err(UplinkError::Status { status, .. }) if status == StatusCode::UNAUTHORIZED => {
                Ok(Registration::Unknown)
            }
            Err(UplinkError::Status { code: Some(c), .. }) if c == "not_a_gate" => {
                Ok(Registration::Registered)
            }
            Err(UplinkError::Status { code: Some(c), .. }) if c == "clock_skew" => {
                Ok(Registration::ClockSkew)
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the deadline of one exchange (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Uplink {
        self.request_timeout = timeout;
        self
    }

    /// Keep the server's audit heads from verified answers in `witness` (see
    /// [`crate::witness`]; needs a pinned server key to take any).
    pub fn with_witness(mut self, witness: Witness) -> Uplink {
        self.witness = Some(std::sync::Mutex::new(witness));
        self
    }

    /// The audit trail fork seen, if any: since when (ms) and what (see [`crate::witness`]).
    pub fn witness_fork(&self) -> Option<(i64, String)> {
        let witness = self.witness.as_ref()?;
        witness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fork()
            .cloned()
    }

    /// The device id this client speaks for.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// Whether answers are verified against a pinned server key.
    pub fn is_pinned(&self) -> bool {
        self.server_key.is_some()
    }

    /// Uploads `batch` and returns the server's acknowledgement, checked against it.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(epoch = batch.epoch, seqs = ?batch.seq_range()))]
    pub async fn send_batch(&self, batch: &Batch) -> Result<BatchAck, UplinkError> {
        batch.validate().map_err(UplinkError::InvalidRequest)?;
        let body = to_json(batch)?;
        let answer = self
            .exchange(&self.batches, SignedKind::Batch, body)
            .await?;
        let ack: BatchAck = self.open(answer, SignedKind::BatchAck, "batch ack")?;
        ack.check_answers(batch).map_err(UplinkError::Mismatch)?;
        Ok(ack)
    }

    /// Sends `heartbeat` and returns the server's answer, checked against it.
    #[tracing::instrument(skip_all, err(level = "debug"), fields(epoch = heartbeat.epoch, hb_seq = heartbeat.hb_seq))]
    pub async fn send_heartbeat(&self, heartbeat: &Heartbeat) -> Result<HeartbeatAck, UplinkError> {
        heartbeat.validate().map_err(UplinkError::InvalidRequest)?;
        let body = to_json(heartbeat)?;
        let answer = self
            .exchange(&self.heartbeats, SignedKind::Heartbeat, body)
            .await?;
        let ack: HeartbeatAck = self.open(answer, SignedKind::HeartbeatAck, "heartbeat ack")?;
        ack.check_answers(heartbeat)
            .map_err(UplinkError::Mismatch)?;
        Ok(ack)
    }

    /// Fetches the current gate policy (needs a pinned server key: an unverifiable policy is
    /// never trusted). `have_version` is the version held now (0 = none).
    #[tracing::instrument(skip_all, err(level = "debug"), fields(epoch = epoch, have_version = have_version))]
    pub async fn fetch_policy(
        &self,
        epoch: u64,
        have_version: u64,
    ) -> Result<SignedPolicy, UplinkError> {
        let server_key = self.server_key.as_ref().ok_or(UplinkError::Unpinned)?;
        let request = PolicyRequest {
            device_id: self.device_id.clone(),
            epoch,
            at_ms: now_ms(),
            have_version,
        };
        request.validate().map_err(UplinkError::InvalidRequest)?;
        let body = to_json(&request)?;
        let answer = self
            .exchange(&self.policy, SignedKind::PolicyRequest, body)
            .await?;
        let signature = answer
            .signature
            .ok_or(SignatureError::Missing)?
            .to_str()
            .map_err(|_| SignatureError::Malformed)?
            .to_owned();
        SignedPolicy::verify(answer.body, signature, server_key, &self.device_id)
    }

    /// Verifies (when pinned) and parses an answer.
    fn open<T: DeserializeOwned>(
        &self,
        answer: RawAnswer,
        kind: SignedKind,
        what: &'static str,
    ) -> Result<T, UplinkError> {
        if let Some(server_key) = &self.server_key {
            let signature = answer.signature.ok_or(SignatureError::Missing)?;
            server_key.verify(kind, &answer.body, signature.as_bytes())?;
            if let (Some(witness), Some(head)) = (&self.witness, &answer.audit_head) {
                let mut witness = witness
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // A head that cannot be taken does not spoil the answer it came with.
                match head.to_str() {
                    Ok(line) => {
                        if let Err(e) = witness.observe(line, now_ms()) {
                            tracing::warn!(error = %e, "audit head not witnessed");
                        }
                    }
                    Err(_) => tracing::warn!("audit head header is not text"),
                }
            }
        }
        parse(&answer.body, what)
    }

    /// POSTs `body` signed as `kind` and returns the 2xx answer, all under the deadline.
    async fn exchange(
        &self,
        uri: &Uri,
        kind: SignedKind,
        body: Vec<u8>,
    ) -> Result<RawAnswer, UplinkError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(UplinkError::RequestTooLarge { len: body.len() });
        }
        let signature = self.key.sign(kind, &body);
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))?;
        self.send(request).await
    }

    /// Sends a request and returns the 2xx answer, all under the deadline.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<RawAnswer, UplinkError> {
        let timeout = self.request_timeout;
        tokio::time::timeout(timeout, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(UplinkError::Connect)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(UplinkError::Body)?
                .to_bytes();
            if !parts.status.is_success() {
                return Err(status_error(parts.status, &body));
            }
            Ok(RawAnswer {
                body,
                signature: parts.headers.get(SIGNATURE_HEADER).cloned(),
                audit_head: parts.headers.get(AUDIT_HEAD_HEADER).cloned(),
            })
        })
        .await
        .map_err(|_| UplinkError::Timeout(timeout))?
    }
}

fn to_json<T: serde::Serialize>(message: &T) -> Result<Vec<u8>, UplinkError> {
    // The uplink types are plain structs, enums and strings: serialising cannot fail, but a
    // failure is reported rather than assumed away.
    serde_json::to_vec(message).map_err(|source| UplinkError::Malformed {
        what: "request",
        source,
    })
}

/// The API's `{"error","message"}` body, or the start of whatever came instead.
fn status_error(status: StatusCode, body: &[u8]) -> UplinkError {
    #[derive(serde::Deserialize)]
    struct ApiError {
        error: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => UplinkError::Status {
            status,
            code: Some(e.error),
            message: e.message,
        },
        Err(_) => UplinkError::Status {
            status,
            code: None,
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

/// What the server answered, reported by [`Shipper`] and [`Heartbeats`] to the gate logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    /// A batch was acknowledged.
    Batch {
        /// The batch's epoch.
        epoch: u64,
        /// Every seq ≤ this in `epoch` is stored on the server.
        acked_through: u64,
        /// The server's verdicts on passages of the batch.
        verdicts: Vec<Verdict>,
        /// What the device should do.
        directives: Vec<Directive>,
        /// The newest gate policy version.
        policy_version: u64,
        /// Whether the answer was verified with the pinned server key. Act on verdicts and
        /// directives only when `true`.
        authenticated: bool,
    },
    /// A heartbeat was answered.
    Heartbeat {
        /// The heartbeat's seq.
        hb_seq: u64,
        /// What the device should do.
        directives: Vec<Directive>,
        /// The newest gate policy version.
        policy_version: u64,
        /// Whether the answer was verified with the pinned server key.
        authenticated: bool,
    },
    /// An upload or a heartbeat got no usable answer: the server was unreachable or too slow,
    /// answered with an error or garbage, or its answer did not match or verify.
    Failed,
}

/// Hands an answer to the gate logic without ever blocking the upload: a full channel drops the
/// answer with a warning (a verdict that late is past its deadline anyway; the gate has decided
/// with its policy).
fn report(answers: &mpsc::Sender<ServerAnswer>, answer: ServerAnswer) {
    match answers.try_send(answer) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("answer channel full; server answer dropped");
        }
    }
}

/// The shipper's settings (see `[uplink]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShipperConfig {
    /// Events per batch, 1..=256.
    pub batch_max: usize,
    /// First wait after a failure.
    pub retry_min: Duration,
    /// Longest wait after repeated failures.
    pub retry_max: Duration,
}

impl From<&UplinkConfig> for ShipperConfig {
    fn from(c: &UplinkConfig) -> Self {
        ShipperConfig {
            batch_max: c.batch_max,
            retry_min: c.retry_min(),
            retry_max: c.retry_max(),
        }
    }
}

/// The task that uploads the outbox. See the module doc.
#[derive(Debug)]
pub struct Shipper {
    outbox: Outbox,
    uplink: Arc<Uplink>,
    config: ShipperConfig,
    answers: mpsc::Sender<ServerAnswer>,
    new_events: Arc<Notify>,
}

impl Shipper {
    /// A shipper uploading `outbox` through `uplink`, reporting acks on `answers`. It consumes
    /// the outbox's new-event notifications, so there must be one shipper per outbox.
    pub fn new(
        outbox: Outbox,
        uplink: Arc<Uplink>,
        config: ShipperConfig,
        answers: mpsc::Sender<ServerAnswer>,
    ) -> Shipper {
        let new_events = outbox.new_events();
        Shipper {
            outbox,
            uplink,
            config: ShipperConfig {
                batch_max: config.batch_max.clamp(1, proto::MAX_BATCH_EVENTS),
                ..config
            },
            answers,
            new_events,
        }
    }

    /// Uploads until `shutdown` completes, then makes one last attempt (see the module doc).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        tokio::select! {
            biased;
            () = &mut shutdown => {}
            () = self.ship() => {}
        }
        self.last_attempt().await;
        tracing::debug!("shipper stopped");
    }

    /// Uploads one batch of what is pending, if anything, and deletes what the server stored.
    async fn last_attempt(&self) {
        let pending = match self.outbox.pending(self.config.batch_max).await {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox for the last upload failed");
                return;
            }
        };
        let batch = pending.into_batch(self.uplink.device_id());
        match self.uplink.send_batch(&batch).await {
            Ok(ack) => {
                let (epoch, acked_through) = (ack.epoch, ack.acked_through);
                report(
                    &self.answers,
                    ServerAnswer::Batch {
                        epoch,
                        acked_through,
                        verdicts: ack.verdicts,
                        directives: ack.directives,
                        policy_version: ack.policy_version,
                        authenticated: self.uplink.is_pinned(),
                    },
                );
                match self.outbox.ack(epoch, acked_through).await {
                    Ok(deleted) => tracing::info!(epoch, acked_through, deleted, "last upload"),
                    Err(e) => tracing::warn!(error = %e, "deleting acknowledged events failed"),
                }
            }
            Err(e) => tracing::info!(error = %e, "last upload failed; events stay in the outbox"),
        }
    }

    async fn ship(&self) {
        let mut backoff = Backoff::new(self.config.retry_min, self.config.retry_max);
        let mut limit = self.config.batch_max;
        loop {
            let pending = match self.outbox.pending(limit).await {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.new_events.notified().await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the outbox failed");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            // Events recorded while the clock was wrong would be refused (`clock_skew`) and
            // block the rest: restamp them first (see the outbox's "Implausible times").
            let now = now_ms();
            let bad: Vec<(u64, i64)> = pending
                .events
                .iter()
                .filter(|e| !proto::event_time_plausible(e.at_ms, now))
                .map(|e| (e.seq, e.at_ms))
                .collect();
            if !bad.is_empty() {
                if let Err(e) = self.outbox.restamp(pending.epoch, bad, now).await {
                    tracing::error!(error = %e, "restamping implausible event times failed");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                continue;
            }
            let count = pending.events.len();
            let batch = pending.into_batch(self.uplink.device_id());
            let Some((first, last)) = batch.seq_range() else {
                continue;
            };
            match self.uplink.send_batch(&batch).await {
                Ok(ack) => {
                    limit = self.config.batch_max;
                    let acked_through = ack.acked_through;
                    report(
                        &self.answers,
                        ServerAnswer::Batch {
                            epoch: ack.epoch,
                            acked_through,
                            verdicts: ack.verdicts,
                            directives: ack.directives,
                            policy_version: ack.policy_version,
                            authenticated: self.uplink.is_pinned(),
                        },
                    );
                    if acked_through < first {
                        tracing::warn!(
                            epoch = batch.epoch,
                            first,
                            acked_through,
                            "server stored none of the batch"
                        );
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                    backoff.reset();
                    match self.outbox.ack(batch.epoch, acked_through).await {
                        Ok(deleted) => {
                            tracing::debug!(
                                epoch = batch.epoch,
                                first,
                                last,
                                acked_through,
                                deleted,
                                "batch acknowledged"
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "deleting acknowledged events failed");
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                }
                Err(UplinkError::RequestTooLarge { len }) if count > 1 => {
                    limit = (count / 2).max(1);
                    tracing::debug!(len, limit, "batch too large; halving");
                }
                Err(e) => {
                    report(&self.answers, ServerAnswer::Failed);
                    let wait = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?wait, epoch = batch.epoch, first, last, "upload failed");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// What a heartbeat reports besides the outbox depth, kept current by the rest of the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatState {
    /// The latest health of every reader that has reported. A reader is listed from its first
    /// report on: before it nothing is known, and a placeholder would reach the server as a
    /// fault (`reader_fault` at every start). A reader that never answers is still listed
    /// within its reply timeout, when its driver reports `NoReply`.
    pub readers: Vec<NamedHealth>,
    /// The gate policy version held (0 = none).
    pub policy_version: u64,
    /// The daemon's own faults standing now, at most one per kind, sent in every heartbeat.
    /// The durable record of a fault is a `DeviceFault` event in the outbox, written as soon
    /// as the outbox can take it.
    pub faults: Vec<DeviceFault>,
}

impl HeartbeatState {
    /// Raises the fault `kind` at `at_ms` with a detail for people (clipped to the protocol's
    /// limit), or updates the detail of the raised one (which keeps its `since_ms`); true if
    /// it was not raised before.
    pub fn raise(&mut self, kind: DeviceFaultKind, detail: impl Into<String>, at_ms: i64) -> bool {
        let mut detail = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(proto::MAX_TEXT_CHARS) {
            detail.truncate(cut);
        }
        match self.faults.iter_mut().find(|f| f.kind == kind) {
            Some(f) => {
                f.detail = detail;
                false
            }
            None => {
                self.faults.push(DeviceFault {
                    kind,
                    since_ms: at_ms,
                    detail,
                });
                true
            }
        }
    }

    /// Clears the fault `kind`; true if it was raised.
    pub fn clear(&mut self, kind: DeviceFaultKind) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.kind != kind);
        self.faults.len() != before
    }

    /// Whether the fault `kind` is raised.
    pub fn has_fault(&self, kind: DeviceFaultKind) -> bool {
        self.faults.iter().any(|f| f.kind == kind)
    }

    /// Sets the health of `reader`, adding it if it is not listed yet.
    pub fn set_reader(&mut self, reader: &str, health: ReaderHealth) {
        match self.readers.iter_mut().find(|r| r.reader == reader) {
            Some(r) => r.health = health,
            None => self.readers.push(NamedHealth {
                reader: reader.to_owned(),
                health,
            }),
        }
    }

    /// The reader list of a heartbeat: the readers, at most [`MAX_READERS`].
    pub fn heartbeat_readers(&self) -> Vec<NamedHealth> {
        self.readers.iter().take(MAX_READERS).cloned().collect()
    }
}

/// The task that tells the server the device is alive.
#[derive(Debug)]
pub struct Heartbeats {
    uplink: Arc<Uplink>,
    outbox: Outbox,
    interval: Duration,
    state: watch::Receiver<HeartbeatState>,
    answers: mpsc::Sender<ServerAnswer>,
}

impl Heartbeats {
    /// Heartbeats every `interval` for the outbox's epoch, reading reader health and policy
    /// version from `state`.
    pub fn new(
        uplink: Arc<Uplink>,
        outbox: Outbox,
        interval: Duration,
        state: watch::Receiver<HeartbeatState>,
        answers: mpsc::Sender<ServerAnswer>,
    ) -> Heartbeats {
        Heartbeats {
            uplink,
            outbox,
            interval,
            state,
            answers,
        }
    }

    /// Sends heartbeats until `shutdown` completes. `hb_seq` starts at 1 and advances with
    /// every attempt, so a heartbeat that reached the server but lost its answer is never
    /// repeated (the server would refuse it as a replay).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        for hb_seq in 1.. {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticks.tick() => {}
            }
            let mut state = self.state.borrow().clone();
            if let Some((since_ms, detail)) = self.uplink.witness_fork() {
                // The fork stands as an `other` fault (one per kind: joined to any standing).
                let detail = match state
                    .faults
                    .iter()
                    .find(|f| f.kind == DeviceFaultKind::Other)
                {
                    Some(f) => format!("{}; {detail}", f.detail),
                    None => detail,
                };
                state.raise(DeviceFaultKind::Other, detail, since_ms);
            }
            let outbox_depth = match self.outbox.depth().await {
                Ok(depth) => depth,
                Err(e) => {
                    tracing::error!(error = %e, "outbox depth unavailable");
                    0
                }
            };
            let heartbeat = Heartbeat {
                device_id: self.uplink.device_id().to_owned(),
                epoch: self.outbox.epoch(),
                hb_seq,
                at_ms: now_ms(),
                readers: state.heartbeat_readers(),
                outbox_depth,
                policy_version: state.policy_version,
                faults: state.faults,
            };
            let result = tokio::select! {
                biased;
                () = &mut shutdown => break,
                r = self.uplink.send_heartbeat(&heartbeat) => r,
            };
            match result {
                Ok(ack) => {
                    if failing {
                        tracing::info!("server reachable again");
                        failing = false;
                    }
                    report(
                        &self.answers,
                        ServerAnswer::Heartbeat {
                            hb_seq,
                            directives: ack.directives,
                            policy_version: ack.policy_version,
                            authenticated: self.uplink.is_pinned(),
                        },
                    );
                }
                Err(e) => {
                    report(&self.answers, ServerAnswer::Failed);
                    if std::mem::replace(&mut failing, true) {
                        tracing::debug!(error = %e, "heartbeat failed");
                    } else {
                        tracing::warn!(error = %e, "heartbeat failed");
                    }
                }
            }
        }
        tracing::debug!("heartbeats stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_travel_in_their_own_field_one_per_kind() {
        let mut state = HeartbeatState::default();
        let ok = ReaderHealth {
            state: proto::HealthState::Ok,
            fault: None,
            frames_ok: 3,
            checksum_errors: 0,
            dropped_bytes: 0,
            last_read_ms: Some(5),
        };
        state.set_reader("uhf-main", ok.clone());
        assert!(state.raise(DeviceFaultKind::OutboxFull, "full", 10));
        assert!(!state.raise(DeviceFaultKind::OutboxFull, "still full", 20));
        assert!(state.has_fault(DeviceFaultKind::OutboxFull));
        let readers = state.heartbeat_readers();
        assert_eq!(readers.len(), 1);
        assert_eq!(
            (readers[0].reader.as_str(), &readers[0].health),
            ("uhf-main", &ok)
        );
        // The detail follows the latest report; `since_ms` stays at the first.
        assert_eq!(
            state.faults,
            [DeviceFault {
                kind: DeviceFaultKind::OutboxFull,
                since_ms: 10,
                detail: "still full".into(),
            }]
        );
        // A detail longer than the protocol allows is clipped, not refused by the server.
        assert!(state.raise(DeviceFaultKind::GateIoLost, "é".repeat(2000), 30));
        let hb = Heartbeat {
            device_id: "gate-1".into(),
            epoch: 1,
            hb_seq: 1,
            at_ms: 0,
            readers,
            outbox_depth: 0,
            policy_version: 0,
            faults: state.faults.clone(),
        };
        assert_eq!(hb.validate(), Ok(()));
        // Never more readers than the heartbeat may carry.
        for i in 0..MAX_READERS {
            state.set_reader(&format!("r{i}"), ok.clone());
        }
        assert_eq!(state.heartbeat_readers().len(), MAX_READERS);
        assert!(state.clear(DeviceFaultKind::OutboxFull));
        assert!(!state.clear(DeviceFaultKind::OutboxFull));
        assert!(!state.has_fault(DeviceFaultKind::OutboxFull));
    }

    #[test]
    fn status_errors_carry_the_api_error() {
        let e = status_error(
            StatusCode::CONFLICT,
            br#"{"error":"seq_gap","message":"expected 5"}"#,
        );
        assert!(matches!(
            &e,
            UplinkError::Status { status, code: Some(code), message }
                if *status == StatusCode::CONFLICT && code == "seq_gap" && message == "expected 5"
        ));
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, b"<html>busy</html>");
        assert!(
            e.to_string().contains("503") && e.to_string().contains("busy"),
            "{e}"
        );
    }

    #[test]
    fn new_builds_the_three_paths_and_refuses_non_http() {
        let key = DeviceKey::from_pkcs8(
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        let u = Uplink::new("http://127.0.0.1:8080/", "gate-1", key, None).unwrap();
        assert_eq!(
            u.batches.to_string(),
            "http://127.0.0.1:8080/api/v1/devices/gate-1/batches"
        );
        assert_eq!(u.heartbeats.path(), "/api/v1/devices/gate-1/heartbeats");
        assert_eq!(u.policy.path(), "/api/v1/devices/gate-1/policy");
        assert!(!u.is_pinned());
        let key = DeviceKey::from_pkcs8(
            ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        assert!(matches!(
            Uplink::new("https://x", "gate-1", key, None),
            Err(UplinkError::BadUrl(_))
        ));
    }
}
