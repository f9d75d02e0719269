//! Issue #9's load and exposure findings, against the real server on real sockets:
//! - sign-ins: a malformed username is refused without hashing, and a source address that
//!   keeps failing is blocked (429) across usernames;
//! - device endpoints: a source that keeps sending badly signed requests is refused with 429
//!   before any database work (the alert stops counting);
//! - the live stream: a deduplicated alert bumped many times reaches every console as a few
//!   coalesced events with identical bytes, not one per bump;
//! - `/metrics` is not public by default (404), needs its token (401 without), or is served on
//!   its own port; `/healthz` is public and says nothing but "ok";
//! - HTTPS: the real `custos-server serve` with `[tls]` speaks TLS, announces `https://`, and
//!   marks the session cookie `Secure`.
//!
//! The flood's memory and latency figures are measured by `benches/flood.rs` (BENCHMARKS.md).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::binary::{BIN, Serving};
use common::{Reply, Server, raw_request};
use custos_server::auth::source::FAILURE_BURST;
use custos_server::auth::throttle::SOURCE_FREE_FAILURES;
use custos_server::domain::role::Role;
use custos_server::{Listeners, Public, launch_with};
use http_body_util::{BodyExt, Empty, Full};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// Every bounded wait in these tests (a broken server fails instead of hanging).
const WAIT: Duration = Duration::from_secs(30);

async fn login(addr: SocketAddr, username: &str, password: &str) -> Reply {
    common::call(
        addr,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

#[tokio::test]
async fn a_source_that_keeps_failing_sign_ins_is_blocked_across_usernames() {
    let server = Server::start().await;
    // Names that cannot be usernames are refused without hashing (nothing to hide), but they
    // count against their source like any failure.
    for n in 0..SOURCE_FREE_FAILURES {
        let name = if n % 2 == 0 {
            format!("not a valid name {n}")
        } else {
            format!("nobody{n}")
        };
        let reply = login(server.addr, &name, "wrong password").await;
        assert_eq!(reply.status, 401, "try {n}: {:?}", reply.body);
        assert_eq!(reply.error(), "invalid_credentials");
    }
    // The next one is counted and refused; from then on the source is blocked, whatever
    // username it tries: a spray over many usernames is stopped although none is blocked.
    let reply = login(server.addr, "guard7", "wrong password").await;
    assert_eq!(reply.status, 401);
    let reply = login(server.addr, "admin", common::ADMIN_PASSWORD).await;
    assert_eq!(reply.status, 429, "{:?}", reply.body);
    assert_eq!(reply.error(), "too_many_attempts");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    // The test client is 127.0.0.1: configured as the proxy, its header names the client.
    let server = Server::start_with(|c| {
        c.trusted_proxy_header = Some("X-Forwarded-For".to_owned());
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    for _ in 0..=SOURCE_FREE_FAILURES {
        assert_eq!(
            proxied(server.addr, "not a name, 198.51.100.7", "not a valid name")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        proxied(server.addr, "198.51.100.7", "not a valid name")
            .await
            .status,
        429,
        "that client is blocked"
    );
    // Another client behind the same proxy is not.
    let other = proxied(server.addr, "198.51.100.8", "someone").await;
    assert_eq!(other.status, 401, "{:?}", other.body);
    server.stop().await.unwrap();
}

/// A sign-in attempt relayed by the proxy at 127.0.0.1 for `client`.
async fn proxied(addr: SocketAddr, client: &str, username: &str) -> Reply {
    let body = serde_json::to_vec(&json!({"username": username, "password": "x"})).unwrap();
    raw_request(
        addr,
        Method::POST,
        "/api/v1/session",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", client),
        ],
        Some(body),
    )
    .await
}

async fn unsigned_heartbeat(addr: SocketAddr, device: &str) -> Reply {
    raw_request(
        addr,
        Method::POST,
        &format!("/api/v1/devices/{device}/heartbeats"),
        &[("content-type", "application/json")],
        Some(b"{}".to_vec()),
    )
    .await
}

async fn auth_failed_occurrences(server: &Server) -> i64 {
    server
        .state
        .store()
        .read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(sum(occurrences), 0) FROM alerts WHERE kind = 'device_auth_failed'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_source_of_badly_signed_device_requests_is_refused_before_any_work() {
    let server = Server::start().await;
    for n in 0..FAILURE_BURST {
        let reply = unsigned_heartbeat(server.addr, "ghost-1").await;
        assert_eq!(reply.status, 401, "try {n}");
        assert_eq!(reply.error(), "device_auth_failed");
    }
    assert_eq!(
        auth_failed_occurrences(&server).await,
        i64::from(FAILURE_BURST)
    );
    // The budget is spent: refused at once, and nothing more is written.
    for _ in 0..10 {
        let reply = unsigned_heartbeat(server.addr, "ghost-2").await;
        assert_eq!(reply.status, 429, "{:?}", reply.body);
        assert_eq!(reply.error(), "too_many_failures");
        assert!(reply.headers.contains_key("retry-after"));
    }
    assert_eq!(
        auth_failed_occurrences(&server).await,
        i64::from(FAILURE_BURST),
        "no database work for a refused source"
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The live stream
// ---------------------------------------------------------------------------------------

/// A live `GET /alerts/stream`, read event by event.
struct EventStream {
    body: Incoming,
    buffer: String,
}

impl EventStream {
    async fn open(addr: SocketAddr, token: &str) -> EventStream {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .uri("/api/v1/alerts/stream")
            .header("host", addr.to_string())
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("send");
        assert_eq!(response.status(), 200);
        EventStream {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The next `(event, data)`, keep-alive comments skipped, within [`WAIT`].
    async fn next(&mut self) -> (String, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut event = String::new();
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data = v.trim_start().to_owned();
                        }
                    }
                    if !event.is_empty() {
                        return (event, data);
                    }
                    continue;
                }
                let frame = self.body.frame().await.expect("ended").expect("error");
                if let Ok(bytes) = frame.into_data() {
                    self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
                }
            }
        })
        .await
        .expect("no event within the wait")
    }
}

#[tokio::test]
async fn a_bumped_alert_reaches_every_console_coalesced_and_built_once() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let guard = &tokens[&Role::Guard];
    let mut streams = Vec::new();
    for token in [guard, guard, &tokens[&Role::SecurityOfficer]] {
        let mut stream = EventStream::open(server.addr, token).await;
        assert_eq!(stream.next().await.0, "hello");
        streams.push(stream);
    }
    // Fifteen failures in a row bump one deduplicated alert fifteen times.
    let bumps = 15;
    for _ in 0..bumps {
        assert_eq!(unsigned_heartbeat(server.addr, "ghost-1").await.status, 401);
    }
    let mut seen = Vec::new();
    for stream in &mut streams {
        let mut events = Vec::new();
        loop {
            let (event, data) = stream.next().await;
            assert_eq!(event, "alert");
            let view: Value = serde_json::from_str(&data).unwrap();
            let occurrences = view["occurrences"].as_i64().unwrap();
            events.push(data);
            if occurrences == bumps {
                break;
            }
        }
        // Without coalescing every bump was an event (15); now the first goes at once and the
        // rest, less than a second later, as one more (a slow machine may split it in two).
        assert!(events.len() <= 3, "{} events: {events:?}", events.len());
        seen.push(events.last().unwrap().clone());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every console gets the same bytes"
    );
    drop(streams);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// /metrics and /healthz
// ---------------------------------------------------------------------------------------

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = sender
        .send_request(builder.body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("send");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_are_not_public_by_default_and_healthz_says_only_ok() {
    let server = Server::start().await;
    let (status, body) = get(server.addr, "/metrics", &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("custos_"), "{body}");
    let (status, body) = get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "ok"})
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_on_the_public_port_need_the_token() {
    let token = "a scraper token of 32 characters";
    let server = Server::start_with(|c| c.metrics_token = Some(token.to_owned())).await;
    for wrong in [
        &[][..],
        &[("authorization", "Bearer a scraper token of 32 characterS")],
    ] {
        let (status, body) = get(server.addr, "/metrics", wrong).await;
        assert_eq!(status, 401, "{body}");
        assert!(!body.contains("custos_"), "{body}");
    }
    let auth = format!("Bearer {token}");
    let (status, body) = get(server.addr, "/metrics", &[("authorization", &auth)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("custos_events_ingested_total"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_on_their_own_port_need_no_token_and_the_public_port_has_none() {
    let dir = tempfile::tempdir().unwrap();
    custos_server::cli::initialise(dir.path(), "admin", common::ADMIN_PASSWORD.to_owned())
        .await
        .unwrap();
    let state = state_of(dir.path(), &custos_server::config::Config::default()).await;
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public_addr, metrics_addr) = (public.local_addr().unwrap(), metrics.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(launch_with(
        Listeners {
            public: Public::Plain(public),
            metrics: Some(metrics),
        },
        state,
        async {
            let _ = stopped.await;
        },
    ));
    let (status, body) = get(metrics_addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("custos_events_ingested_total"));
    assert_eq!(get(metrics_addr, "/healthz", &[]).await.0, 200);
    assert_eq!(
        get(metrics_addr, "/api/v1/alerts", &[]).await.0,
        404,
        "nothing else on the metrics port"
    );
    assert_eq!(get(public_addr, "/metrics", &[]).await.0, 404);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

async fn state_of(
    dir: &std::path::Path,
    config: &custos_server::config::Config,
) -> custos_server::AppState {
    use custos_server::keys::{KEY_FILE, ServerKey};
    use custos_server::store::{DB_FILE, Store, StoreOptions};
    let store = Store::open(&dir.join(DB_FILE), StoreOptions::default())
        .await
        .unwrap();
    let key = ServerKey::load(&dir.join(KEY_FILE)).unwrap();
    custos_server::AppState::new(store, key, custos_server::Settings::from(config))
}

// ---------------------------------------------------------------------------------------
// HTTPS
// ---------------------------------------------------------------------------------------

/// One HTTPS request to `addr`, trusting only `ca_pem`, with SNI `localhost`.
async fn https(
    addr: SocketAddr,
    ca_pem: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, hyper::HeaderMap, Value) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    #[allow(deprecated)] // The ring provider, as the server uses (see server/src/tls.rs).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the trusted certificate");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let response = sender
        .send_request(builder.body(Full::new(Bytes::from(bytes))).unwrap())
        .await
        .expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn serve_speaks_https_with_the_configured_certificate_and_secure_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    custos_server::cli::initialise(&data, "admin", common::ADMIN_PASSWORD.to_owned())
        .await
        .unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
    let config = dir.path().join("custos.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            data, cert_file, key_file
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = BufReader::new(stdout).lines().next() {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(WAIT)
        .expect("serve printed its listening line");
    let addr: SocketAddr = line
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let serving = Serving { child, addr };

    let (status, _, body) = https(addr, &cert.pem(), Method::GET, "/healthz", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, headers, body) = https(
        addr,
        &cert.pem(),
        Method::POST,
        "/api/v1/session",
        Some(json!({"username": "admin", "password": common::ADMIN_PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the TLS port gets no answer from the application.
    let plain = tokio::time::timeout(WAIT, plain_get(addr))
        .await
        .expect("the plain request ends");
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
    serving.terminate();
}

/// A plain-HTTP GET of `/healthz`: its status, or why there was none.
async fn plain_get(addr: SocketAddr) -> Result<u16, hyper::Error> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::builder()
        .uri("/healthz")
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    Ok(sender.send_request(request).await?.status().as_u16())
}
