//! A guard screen's view of the alerts: a real HTTP client of the server's live alert stream
//! (`GET /api/v1/alerts/stream`, Server-Sent Events), logged in as the guard, that notes when
//! each `alert` event arrived, and a guard who handles every gate alarm at once.
//!
//! The server keeps a gate sounding for 30 s after an alarmed passage (its `SoundAlarm`
//! directive) until a guard acknowledges the alert; meanwhile another alarm at that gate finds
//! the coil on already and writes nothing. So that every unauthorised passage of a benchmark
//! writes the coil afresh, the guard acknowledges and resolves each new `unauthorized_removal`
//! or `clearance_violation` alert as soon as it appears (the gate hears the `SilenceAlarm` with
//! its next heartbeat), as a very quick guard would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One `alert` event as the screen received it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenAlert {
    /// When its last line arrived.
    pub at: Instant,
    /// The alert's JSON (as a list item of `GET /alerts`).
    pub alert: Value,
}

/// What the stream delivered so far.
#[derive(Debug, Default)]
pub struct Screen {
    alerts: Mutex<Vec<SeenAlert>>,
    resyncs: Mutex<u64>,
    handled: Mutex<(u64, u64)>,
    /// Alerts the guard has taken on (each is handled once).
    taken: Mutex<std::collections::HashSet<String>>,
}

impl Screen {
    /// Every `alert` event so far, in arrival order.
    #[must_use]
    pub fn alerts(&self) -> Vec<SeenAlert> {
        self.alerts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `resync` events so far (the server said the screen fell behind and missed alerts).
    #[must_use]
    pub fn resyncs(&self) -> u64 {
        *self.resyncs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Alarms the guard handled (acknowledged and resolved), and attempts that failed.
    #[must_use]
    pub fn handled(&self) -> (u64, u64) {
        *self.handled.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The guard's session on the server.
#[derive(Clone)]
struct Guard {
    client: Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    token: String,
}

impl Guard {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<()> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{path}", self.addr))
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        anyhow::ensure!(status.is_success(), "{path} answered {status}");
        Ok(())
    }

    /// Acknowledges and resolves alert `id`.
    async fn handle(&self, id: &str) -> anyhow::Result<()> {
        self.post(&format!("/api/v1/alerts/{id}/ack"), &json!({}))
            .await?;
        self.post(
            &format!("/api/v1/alerts/{id}/resolve"),
            &json!({"note": "benchmark: the guard stopped the carrier"}),
        )
        .await
    }
}

/// Logs in over HTTP and returns the session's bearer token.
///
/// # Errors
/// The request failed or the answer held no token.
pub async fn login(addr: SocketAddr, username: &str, password: &str) -> anyhow::Result<String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let body = json!({"username": username, "password": password}).to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/api/v1/session"))
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = client.request(request).await.context("login request")?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "login answered {status}");
    let answer: Value = serde_json::from_slice(&bytes).context("login answer")?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the login answer")
}

/// Opens the stream with `token` and keeps reading it in a task until aborted or the server
/// ends it. Returns once the server's `hello` event arrived (so nothing raised after this
/// call is missed), with the screen and the task.
///
/// # Errors
/// The stream did not open, or no `hello` came within 10 s.
pub async fn open(addr: SocketAddr, token: &str) -> anyhow::Result<(Arc<Screen>, JoinHandle<()>)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("http://{addr}/api/v1/alerts/stream"))
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await.context("alert stream")?;
    anyhow::ensure!(
        response.status().is_success(),
        "alert stream answered {}",
        response.status()
    );
    let screen = Arc::new(Screen::default());
    let (hello_tx, hello_rx) = oneshot::channel();
    let guard = Guard {
        client,
        addr,
        token: token.to_owned(),
    };
    let task = tokio::spawn(read_stream(
        response.into_body(),
        screen.clone(),
        hello_tx,
        guard,
    ));
    tokio::time::timeout(Duration::from_secs(10), hello_rx)
        .await
        .context("no hello on the alert stream within 10 s")?
        .context("the alert stream ended before its hello")?;
    Ok((screen, task))
}

async fn read_stream(
    mut body: hyper::body::Incoming,
    screen: Arc<Screen>,
    hello: oneshot::Sender<()>,
    guard: Guard,
) {
    let mut hello = Some(hello);
    let mut parser = Parser::default();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            tracing::warn!("alert stream broke");
            return;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let at = Instant::now();
        for (event, data) in parser.push(&data) {
            match event.as_str() {
                "hello" => {
                    if let Some(tx) = hello.take() {
                        let _ = tx.send(());
                    }
                }
                "alert" => match serde_json::from_str::<Value>(&data) {
                    Ok(alert) => {
                        let gate_alarm = matches!(
                            alert["kind"].as_str(),
                            Some("unauthorized_removal" | "clearance_violation")
                        );
                        let id = alert["id"].as_str().filter(|id| {
                            gate_alarm
                                && alert["state"] == "open"
                                && screen
                                    .taken
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .insert((*id).to_owned())
                        });
                        if let Some(id) = id {
                            let (guard, screen, id) =
                                (guard.clone(), screen.clone(), id.to_owned());
                            tokio::spawn(async move {
                                let ok = guard.handle(&id).await;
                                if let Err(e) = &ok {
                                    tracing::warn!("guard could not handle alert {id}: {e}");
                                }
                                let mut h = screen
                                    .handled
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner);
                                if ok.is_ok() {
                                    h.0 += 1;
                                } else {
                                    h.1 += 1;
                                }
                            });
                        }
                        screen
                            .alerts
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(SeenAlert { at, alert });
                    }
                    Err(e) => tracing::warn!("alert event is not JSON: {e}"),
                },
                "resync" => {
                    *screen
                        .resyncs
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) += 1;
                }
                _ => {}
            }
        }
    }
}

/// Splits a Server-Sent Events byte stream into `(event, data)` pairs.
#[derive(Debug, Default)]
struct Parser {
    buf: String,
    event: String,
    data: Vec<String>,
}

impl Parser {
    /// Feeds bytes; returns the events they completed.
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        let mut out = Vec::new();
        while let Some(end) = self.buf.find('\n') {
            let line: String = self.buf.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() || !self.event.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    let data = std::mem::take(&mut self.data).join("\n");
                    out.push((
                        if event.is_empty() {
                            "message".into()
                        } else {
                            event
                        },
                        data,
                    ));
                }
            } else if line.starts_with(':') {
                // A comment (keep-alive).
            } else {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => self.event = value.to_owned(),
                    "data" => self.data.push(value.to_owned()),
                    _ => {}
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments() {
        let mut p = Parser::default();
        assert!(p.push(b"event: hello\ndata: {\"max_id\":\"3\"}").is_empty());
        let got = p.push(
            b"\n\n: keep-alive\n\nevent: alert\r\ndata: {\"id\":\"4\"}\n\ndata: x\ndata: y\n\n",
        );
        assert_eq!(
            got,
            [
                ("hello".to_owned(), "{\"max_id\":\"3\"}".to_owned()),
                ("alert".to_owned(), "{\"id\":\"4\"}".to_owned()),
                ("message".to_owned(), "x\ny".to_owned()),
            ]
        );
    }
}
