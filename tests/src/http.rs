//! A small HTTP/1.1 client (hyper, one connection per request) and a reader of the alert stream
//! (Server-Sent Events).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body exactly as received.
    pub bytes: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` if empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// One request over a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> anyhow::Result<Reply> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", addr.to_string());
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let response = sender
            .send_request(builder.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(Reply {
            status,
            headers,
            bytes,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path}: no answer in {REQUEST_TIMEOUT:?}"))?
}

/// A JSON request with an optional bearer token.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let bytes = body
        .map(serde_json::to_vec)
        .transpose()?
        .unwrap_or_default();
    request(addr, method, path, &headers, bytes).await
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` name (`message` if none was given).
    pub event: String,
    /// The `data:` lines, parsed as JSON (`Null` if they are not JSON).
    pub data: Value,
}

#[derive(Debug, Default)]
struct Received {
    events: Mutex<Vec<SseEvent>>,
    ended: Mutex<Option<String>>,
    changed: Notify,
}

/// A connection to `GET /api/v1/alerts/stream`, read on a background task; every event is kept.
#[derive(Debug)]
pub struct AlertStream {
    received: Arc<Received>,
    task: JoinHandle<()>,
}

impl AlertStream {
    /// Connects with `token` (a guard's or security officer's) and waits for the stream's
    /// `hello`, after which every new or changed alert is delivered.
    pub async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<AlertStream> {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(Method::GET)
            .uri("/api/v1/alerts/stream")
            .header("host", addr.to_string())
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
            .await
            .context("alert stream: no answer")??;
        if response.status() != 200 {
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            bail!(
                "alert stream refused: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let received = Arc::new(Received::default());
        let sink = received.clone();
        let task = tokio::spawn(async move {
            let mut body = response.into_body();
            let mut buffer = String::new();
            let end = loop {
                match body.frame().await {
                    None => break "stream ended".to_owned(),
                    Some(Err(e)) => break format!("stream failed: {e}"),
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        buffer.push_str(&String::from_utf8_lossy(&data));
                        // Events end with a blank line; line ends may be \n or \r\n.
                        let normalized = buffer.replace("\r\n", "\n");
                        buffer = normalized;
                        while let Some(end) = buffer.find("\n\n") {
                            let block: String = buffer.drain(..end + 2).collect();
                            if let Some(event) = parse_event(&block) {
                                sink.events
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(event);
                                sink.changed.notify_waiters();
                            }
                        }
                    }
                }
            };
            *sink.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(end);
            sink.changed.notify_waiters();
        });
        let stream = AlertStream { received, task };
        stream
            .wait(
                0,
                Instant::now() + REQUEST_TIMEOUT,
                "the stream's hello",
                |e| e.event == "hello",
            )
            .await?;
        Ok(stream)
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<SseEvent> {
        self.received
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The alerts (`event: alert`) received so far, in order.
    pub fn alerts(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e.event == "alert")
            .map(|e| e.data)
            .collect()
    }

    /// A mark for [`AlertStream::wait`]: how many events were received so far.
    pub fn mark(&self) -> usize {
        self.received
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Waits for the first event that `matches` among those received after `mark` (0: any).
    pub async fn wait(
        &self,
        mark: usize,
        deadline: Instant,
        what: &str,
        mut matches: impl FnMut(&SseEvent) -> bool,
    ) -> anyhow::Result<SseEvent> {
        loop {
            let changed = self.received.changed.notified();
            if let Some(found) = self
                .received
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .skip(mark)
                .find(|e| matches(e))
            {
                return Ok(found.clone());
            }
            if let Some(end) = self
                .received
                .ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
            {
                bail!("alert stream: {end} before {what}");
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                bail!("timed out waiting for {what} on the alert stream");
            }
        }
    }

    /// Waits for an alert of `kind` (received at any time) for which `matches` holds; returns
    /// the alert.
    pub async fn wait_alert(
        &self,
        kind: &str,
        within: Duration,
        matches: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        self.wait_alert_after(0, kind, within, matches).await
    }

    /// Like [`AlertStream::wait_alert`], among the events received after `mark`.
    pub async fn wait_alert_after(
        &self,
        mark: usize,
        kind: &str,
        within: Duration,
        mut matches: impl FnMut(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let what = format!("a {kind} alert");
        let event = self
            .wait(mark, Instant::now() + within, &what, |e| {
                e.event == "alert" && e.data["kind"] == kind && matches(&e.data)
            })
            .await?;
        Ok(event.data)
    }
}

impl Drop for AlertStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse_event(block: &str) -> Option<SseEvent> {
    let mut event = None;
    let mut data = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    if event.is_none() && data.is_empty() {
        return None; // a keep-alive comment
    }
    let data = data.join("\n");
    Some(SseEvent {
        event: event.unwrap_or_else(|| "message".to_owned()),
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_and_comments_skipped() {
        let e = parse_event("event: alert\ndata: {\"id\":\"3\"}\n\n").unwrap();
        assert_eq!(e.event, "alert");
        assert_eq!(e.data["id"], "3");
        assert_eq!(parse_event(":\n\n"), None);
        let e = parse_event("data: 1\n\n").unwrap();
        assert_eq!(e.event, "message");
        assert_eq!(e.data, Value::from(1));
    }
}
