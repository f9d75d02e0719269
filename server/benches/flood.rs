//! Issue #9's floods against a real `custos-server` process: memory (RSS) and `GET /carriers`
//! latency before, during and after
//! 1. a sign-in flood: `--concurrency` clients posting `POST /session` back to back, each with
//!    a wrong password (`"not a valid name"` as the username, as in the report; with
//!    `--botnet`, valid-looking unknown usernames from a different address per request);
//! 2. an SSE amplification: `--streams` guard consoles on `GET /alerts/stream` while unsigned
//!    device batches arrive at `--rate` per second (each one a `device_auth_failed` bump).
//!
//! ```sh
//! cargo bench -p custos-server --bench flood                      # this branch's server
//! cargo bench -p custos-server --bench flood -- --server PATH     # another build (e.g. main)
//! cargo bench -p custos-server --bench flood -- --botnet          # many source addresses
//! ```
//!
//! The server runs as its own process (`init`, then `serve` on 127.0.0.1:0, log level warn),
//! so that its RSS is its own: read from `/proc/PID/status` every 50 ms (peak) and at the end
//! of each phase. Latency is of `GET /api/v1/carriers` (a custodian's token), one request at
//! a time over a fresh connection, for the whole phase; the baseline is 100 such requests on
//! the idle server. `--botnet` makes the server trust 127.0.0.1 as a proxy and sends a
//! different `X-Forwarded-For` with every flood request: the attack from many addresses,
//! which the per-address limits cannot stop (the hashing bound and the coalescing must). A
//! server that does not know the proxy settings (main before the fix) cannot run `--botnet`.
//! Clients and server share the machine's cores.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

const PASSWORD: &str = "bench password 123";

#[derive(Debug, Clone)]
struct Args {
    server: PathBuf,
    secs: u64,
    concurrency: usize,
    streams: usize,
    rate: u32,
    botnet: bool,
}

fn args() -> Args {
    let mut args = Args {
        server: PathBuf::from(env!("CARGO_BIN_EXE_custos-server")),
        secs: 10,
        concurrency: 64,
        streams: 500,
        rate: 87,
        botnet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match a.as_str() {
            "--server" => args.server = PathBuf::from(value()),
            "--secs" => args.secs = value().parse().expect("--secs N"),
            "--concurrency" => args.concurrency = value().parse().expect("--concurrency N"),
            "--streams" => args.streams = value().parse().expect("--streams N"),
            "--rate" => args.rate = value().parse().expect("--rate N"),
            "--botnet" => args.botnet = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// One request over a fresh connection: status and body (`None`: the connection failed).
async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Option<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, bytes))
}

async fn post_json(addr: SocketAddr, path: &str, token: Option<&str>, body: Value) -> Value {
    let headers: Vec<(&str, String)> = token
        .map(|t| vec![("authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    let (status, bytes) = request(
        addr,
        Method::POST,
        path,
        &headers,
        Some(serde_json::to_vec(&body).unwrap()),
    )
    .await
    .expect("set-up request");
    assert!(
        status < 300,
        "{path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

async fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let answer = post_json(
        addr,
        "/api/v1/session",
        None,
        json!({"username": user, "password": password}),
    )
    .await;
    answer["token"].as_str().unwrap().to_owned()
}

struct Serving {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &Args) -> Serving {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    let init = Command::new(&args.server)
        .args(["init", "--data-dir"])
        .arg(&data)
        .args(["--admin-user", "admin", "--admin-password-file"])
        .arg(&password_file)
        .output()
        .expect("run init");
    assert!(init.status.success(), "init: {init:?}");
    let config = dir.path().join("custos.toml");
    let mut text = format!("data_dir = {data:?}\nlisten = \"127.0.0.1:0\"\n");
    if args.botnet {
        text.push_str(
            "trusted_proxy_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.1\"]\n",
        );
    }
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(&args.server)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    Serving {
        child,
        addr,
        _dir: dir,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `GET /carriers` one at a time until `until`, or `count` times.
async fn probe(
    addr: SocketAddr,
    token: &str,
    until: Option<Instant>,
    count: usize,
) -> Vec<Duration> {
    let auth = vec![("authorization", format!("Bearer {token}"))];
    let mut out = Vec::new();
    loop {
        if until.is_some_and(|u| Instant::now() >= u) || (until.is_none() && out.len() >= count) {
            break;
        }
        let started = Instant::now();
        match request(addr, Method::GET, "/api/v1/carriers", &auth, None).await {
            Some((200, _)) => out.push(started.elapsed()),
            other => panic!("GET /carriers: {other:?}"),
        }
    }
    out.sort();
    out
}

/// Peak RSS sampled every 50 ms until `until`.
async fn peak_rss(pid: u32, until: Instant) -> f64 {
    let mut peak: f64 = 0.0;
    while Instant::now() < until {
        peak = peak.max(rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    peak
}

fn report(phase: &str, pid: u32, latencies: &[Duration], peak: f64, extra: &str) {
    println!(
        "| {phase} | {:.0} MiB peak, {:.0} MiB at end | {:.1} / {:.1} ms ({} requests) | {extra} |",
        peak,
        rss_mib(pid),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies.len()
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let server = start(&args);
    let addr = server.addr;
    let pid = server.child.id();
    let admin = login(addr, "admin", PASSWORD).await;
    for (user, role) in [("custodian1", "custodian"), ("guard1", "guard")] {
        post_json(
            addr,
            "/api/v1/users",
            Some(&admin),
            json!({"username": user, "password": PASSWORD, "roles": [role]}),
        )
        .await;
    }
    let custodian = login(addr, "custodian1", PASSWORD).await;
    let guard = login(addr, "guard1", PASSWORD).await;
    println!(
        "server {} ({}), {} s per phase, botnet: {}",
        args.server.display(),
        addr,
        args.secs,
        args.botnet
    );
    println!("| phase | server RSS | GET /carriers p50 / p99 | requests |");
    println!("|---|---|---|---|");
    let idle = probe(addr, &custodian, None, 100).await;
    report("idle", pid, &idle, rss_mib(pid), "");

    // 1. Sign-in flood.
    let until = Instant::now() + Duration::from_secs(args.secs);
    let counter = Arc::new(AtomicU64::new(0));
    let statuses = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    let mut flooders = Vec::new();
    for c in 0..args.concurrency {
        let counter = Arc::clone(&counter);
        let statuses = Arc::clone(&statuses);
        let botnet = args.botnet;
        flooders.push(tokio::spawn(async move {
            while Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (username, headers) = if botnet {
                    let xff = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                    (format!("nobody{c}x{n}"), vec![("x-forwarded-for", xff)])
                } else {
                    ("not a valid name".to_owned(), Vec::new())
                };
                let body = serde_json::to_vec(&json!({"username": username, "password": "guess"}))
                    .unwrap();
                let status = request(addr, Method::POST, "/api/v1/session", &headers, Some(body))
                    .await
                    .map_or(0, |(s, _)| s);
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    let (latencies, peak) = tokio::join!(
        probe(addr, &custodian, Some(until), 0),
        peak_rss(pid, until)
    );
    for f in flooders {
        f.await.unwrap();
    }
    let answered = statuses.lock().unwrap().clone();
    report(
        &format!("sign-in flood, {} clients", args.concurrency),
        pid,
        &latencies,
        peak,
        &format!(
            "{} sign-ins, statuses {answered:?}",
            counter.load(Ordering::Relaxed)
        ),
    );
    let settle = Instant::now() + Duration::from_secs(5);
    let after = probe(addr, &custodian, Some(settle), 0).await;
    report("5 s after the flood", pid, &after, rss_mib(pid), "");

    // 2. SSE amplification.
    let events = Arc::new(AtomicU64::new(0));
    let mut streams = Vec::new();
    for _ in 0..args.streams {
        let events = Arc::clone(&events);
        let guard = guard.clone();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::builder()
            .uri("/api/v1/alerts/stream")
            .header("host", addr.to_string())
            .header("authorization", format!("Bearer {guard}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        streams.push(tokio::spawn(async move {
            let _sender = sender;
            let mut body = response.into_body();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    let n = data.windows(12).filter(|w| w == b"event: alert").count();
                    events.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    let until = Instant::now() + Duration::from_secs(args.secs);
    let sent = Arc::new(std::sync::Mutex::new(
        std::collections::BTreeMap::<u16, u64>::new(),
    ));
    let sender = {
        let sent = Arc::clone(&sent);
        let rate = args.rate;
        let botnet = args.botnet;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            let mut n = 0u64;
            let mut inflight = Vec::new();
            while Instant::now() < until {
                tick.tick().await;
                n += 1;
                let sent = Arc::clone(&sent);
                let headers = if botnet {
                    vec![(
                        "x-forwarded-for",
                        format!("10.200.{}.{}", (n >> 8) & 255, n & 255),
                    )]
                } else {
                    Vec::new()
                };
                inflight.push(tokio::spawn(async move {
                    let status = request(
                        addr,
                        Method::POST,
                        "/api/v1/devices/ghost-1/batches",
                        &headers,
                        Some(b"{}".to_vec()),
                    )
                    .await
                    .map_or(0, |(s, _)| s);
                    *sent.lock().unwrap().entry(status).or_default() += 1;
                }));
            }
            for f in inflight {
                let _ = f.await;
            }
        })
    };
    let (latencies, peak) = tokio::join!(
        probe(addr, &custodian, Some(until), 0),
        peak_rss(pid, until)
    );
    sender.await.unwrap();
    let batches = sent.lock().unwrap().clone();
    report(
        &format!(
            "{} streams, unsigned batches at {}/s",
            args.streams, args.rate
        ),
        pid,
        &latencies,
        peak,
        &format!(
            "batches {batches:?}, alert events delivered {}",
            events.load(Ordering::Relaxed)
        ),
    );
    let settle = Instant::now() + Duration::from_secs(5);
    let after = probe(addr, &custodian, Some(settle), 0).await;
    report("5 s after the batches", pid, &after, rss_mib(pid), "");
    for s in streams {
        s.abort();
    }
}
