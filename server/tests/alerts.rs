//! Alerts against the real router on a real socket: the role matrix, the lifecycle
//! (acknowledge, resolve, illegal moves change nothing), titles never shown, the SSE stream
//! (delivery, lag → resync, shutdown), the sweeps on a moved clock, and `/metrics` (with the
//! scrapers' token; its refusals are in `load.rs`).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Reply, Server};
use custos_server::alert_hub::HUB_CAPACITY;
use custos_server::domain::alert::{AlertKind, NewAlert, cause};
use custos_server::domain::role::Role;
use custos_server::jobs::sweep_once;
use custos_server::store::StoreError;
use http_body_util::{BodyExt, Empty};
use hyper::Method;
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// A carrier title that must never reach a guard (nor the audit trail).
const TITLE: &str = "Nightjar reactor drawings";
/// Every bounded wait in these tests.
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Set-up helpers
// ---------------------------------------------------------------------------------------

/// Register a carrier directly (the custody API is another part's).
async fn carrier(server: &Server, id: i64, control_no: &str, level: &str, state: &str) {
    server
        .exec(format!(
            "INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, state, created_at)
             VALUES ({id}, '{control_no}', 'paper', '{level}', '{TITLE} {id}', 'Unit 7', '{state}',
                     '2025-01-01T00:00:00Z')"
        ))
        .await;
}

/// Raise an alert as a rule would (inside a write job), then tell the hub.
async fn raise_alert(server: &Server, kind: AlertKind, key: &str, carrier_id: Option<i64>) -> i64 {
    let mut alert = NewAlert::new(kind, cause(kind, &[("test", key)]), server.now().unix_ms());
    alert.carrier_id = carrier_id;
    let id = server
        .state
        .store()
        .transact(move |tx| Ok::<_, StoreError>(tx.raise_alert(&alert)?.id()))
        .await
        .unwrap();
    server.state.alerts().notify([id]);
    id
}

async fn alert_json(server: &Server, token: &str, id: i64) -> Value {
    let reply = server
        .call(
            Method::GET,
            &format!("/api/v1/alerts/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn ack(server: &Server, token: &str, id: i64) -> Reply {
    server
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            Some(token),
            None,
        )
        .await
}

async fn resolve(server: &Server, token: &str, id: i64, body: Value) -> Reply {
    server
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{id}/resolve"),
            Some(token),
            Some(body),
        )
        .await
}

/// `(kind, state, occurrences, carrier_id, device_id)` of an alert row.
type AlertRow = (String, String, i64, Option<i64>, Option<String>);

/// Every alert row, by id.
async fn alert_rows(server: &Server) -> Vec<AlertRow> {
    server
        .state
        .store()
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT kind, state, occurrences, carrier_id, device_id FROM alerts ORDER BY id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap()
}

fn count_kind(rows: &[AlertRow], kind: &str) -> usize {
    rows.iter().filter(|r| r.0 == kind).count()
}

// ---------------------------------------------------------------------------------------
// A raw HTTP client for text and event-stream answers
// ---------------------------------------------------------------------------------------

/// The head of an answer and its body, unread.
async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Empty::<Bytes>::new()).expect("request");
    sender.send_request(request).await.expect("send")
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Sse {
    event: String,
    data: String,
}

impl Sse {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| panic!("data of {self:?}"))
    }
}

/// A live `GET /alerts/stream`, read event by event.
struct EventStream {
    body: Incoming,
    buffer: String,
}

impl EventStream {
    async fn connect(addr: SocketAddr, headers: &[(&str, &str)]) -> EventStream {
        let response = open(addr, "/api/v1/alerts/stream", headers).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        EventStream {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    async fn bearer(addr: SocketAddr, token: &str) -> EventStream {
        EventStream::connect(addr, &[("authorization", &format!("Bearer {token}"))]).await
    }

    /// The next event (keep-alive comments skipped), waiting at most [`WAIT`].
    async fn next(&mut self) -> Sse {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("no event within the wait")
    }

    async fn next_unbounded(&mut self) -> Sse {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if event.is_empty() && data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Sse {
                    event,
                    data: data.join("\n"),
                };
            }
            let frame = self
                .body
                .frame()
                .await
                .expect("the stream ended")
                .expect("stream error");
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }

    /// Read events until one satisfies `wanted`, within [`WAIT`] in all.
    async fn until(&mut self, wanted: impl Fn(&Sse) -> bool) -> Sse {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = self.next_unbounded().await;
                if wanted(&event) {
                    return event;
                }
            }
        })
        .await
        .expect("the wanted event did not come within the wait")
    }
}

// ---------------------------------------------------------------------------------------
// Role matrix
// ---------------------------------------------------------------------------------------

const READERS: [Role; 3] = [Role::Guard, Role::Custodian, Role::SecurityOfficer];
const HANDLERS: [Role; 2] = [Role::Guard, Role::SecurityOfficer];

#[tokio::test]
async fn role_matrix_for_every_alert_endpoint() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    for role in Role::ALL {
        let token = tokens[&role].as_str();
        let id = raise_alert(&server, AlertKind::UnknownTag, role.as_str(), None).await;
        let may_read = READERS.contains(&role);
        let may_handle = HANDLERS.contains(&role);
        let expect = |allowed: bool, reply: &Reply, what: &str| {
            if allowed {
                assert_eq!(reply.status, 200, "{what} as {role}: {:?}", reply.body);
            } else {
                assert_eq!(reply.status, 403, "{what} as {role}: {:?}", reply.body);
                assert_eq!(reply.error(), "forbidden");
            }
        };
        let list = server
            .call(Method::GET, "/api/v1/alerts", Some(token), None)
            .await;
        expect(may_read, &list, "list");
        let one = server
            .call(
                Method::GET,
                &format!("/api/v1/alerts/{id}"),
                Some(token),
                None,
            )
            .await;
        expect(may_read, &one, "one");

        let audit_before = server.audit_count().await;
        let acked = ack(&server, token, id).await;
        expect(may_handle, &acked, "ack");
        let resolved = resolve(&server, token, id, json!({"note": "checked"})).await;
        expect(may_handle, &resolved, "resolve");
        let written = server.audit_count().await - audit_before;
        assert_eq!(written, if may_handle { 2 } else { 0 }, "audit as {role}");
        if !may_handle {
            let state: String = server
                .state
                .store()
                .read(move |c| {
                    Ok(c.query_row("SELECT state FROM alerts WHERE id = ?1", [id], |r| r.get(0))?)
                })
                .await
                .unwrap();
            assert_eq!(state, "open", "a refused {role} changed nothing");
        }

        let stream = open(
            server.addr,
            "/api/v1/alerts/stream",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(
            stream.status().as_u16(),
            if may_handle { 200 } else { 403 },
            "stream as {role}"
        );
    }
    let id = raise_alert(&server, AlertKind::UnknownTag, "anonymous", None).await;
    for token in [None, Some("not-a-session-token")] {
        for (method, path, body) in [
            (Method::GET, "/api/v1/alerts".to_owned(), None),
            (Method::GET, format!("/api/v1/alerts/{id}"), None),
            (Method::POST, format!("/api/v1/alerts/{id}/ack"), None),
            (
                Method::POST,
                format!("/api/v1/alerts/{id}/resolve"),
                Some(json!({"note": "x"})),
            ),
        ] {
            let reply = server.call(method.clone(), &path, token, body).await;
            assert_eq!(reply.status, 401, "{method} {path} with {token:?}");
            assert_eq!(reply.error(), "unauthenticated");
        }
        let headers: Vec<(&str, String)> = token
            .map(|t| vec![("authorization", format!("Bearer {t}"))])
            .unwrap_or_default();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let stream = open(server.addr, "/api/v1/alerts/stream", &headers).await;
        assert_eq!(stream.status().as_u16(), 401);
    }
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn acknowledge_and_resolve_follow_the_lifecycle_and_illegal_moves_change_nothing() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let guard = tokens[&Role::Guard].as_str();
    let officer = tokens[&Role::SecurityOfficer].as_str();
    let id = raise_alert(&server, AlertKind::WrongCabinet, "1", None).await;

    let opened = alert_json(&server, guard, id).await;
    assert_eq!(opened["state"], "open");
    assert_eq!(opened["id"], id.to_string());
    assert_eq!(opened["kind"], "wrong_cabinet");
    assert_eq!(opened["severity"], "medium");
    assert_eq!(opened["occurrences"], 1);
    assert!(opened.get("acknowledged_by").is_none());
    assert!(opened["raised_at"].as_str().unwrap().ends_with('Z'));

    let reply = ack(&server, guard, id).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "acknowledged");
    assert_eq!(reply.body["acknowledged_by"], "guard");
    assert!(reply.body["acknowledged_at"].is_string());

    // Illegal moves: 409, and the alert and the audit trail stay as they were.
    let before = alert_json(&server, guard, id).await;
    let audit_before = server.audit_count().await;
    let again = ack(&server, officer, id).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.error(), "conflict");
    assert_eq!(alert_json(&server, guard, id).await, before);
    assert_eq!(server.audit_count().await, audit_before);

    let reply = resolve(
        &server,
        officer,
        id,
        json!({"note": "  returned to cabinet 2  "}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "resolved");
    assert_eq!(reply.body["resolved_by"], "security_officer");
    assert_eq!(reply.body["note"], "returned to cabinet 2");
    assert_eq!(reply.body["acknowledged_by"], "guard");

    let resolved = alert_json(&server, guard, id).await;
    let audit_before = server.audit_count().await;
    for reply in [
        ack(&server, guard, id).await,
        resolve(&server, guard, id, json!({"note": "again"})).await,
    ] {
        assert_eq!(reply.status, 409, "{:?}", reply.body);
    }
    assert_eq!(alert_json(&server, guard, id).await, resolved);
    assert_eq!(server.audit_count().await, audit_before);

    // open → resolved directly is allowed.
    let direct = raise_alert(&server, AlertKind::UnknownTag, "2", None).await;
    let reply = resolve(&server, guard, direct, json!({"note": "a visitor's badge"})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(reply.body.get("acknowledged_by").is_none());

    // Unknown and malformed ids.
    for path in ["/api/v1/alerts/99999", "/api/v1/alerts/abc"] {
        let reply = server.call(Method::GET, path, Some(guard), None).await;
        assert_eq!(reply.status, 404, "{path}");
    }
    assert_eq!(ack(&server, guard, 99_999).await.status, 404);
    assert_eq!(
        resolve(&server, guard, 99_999, json!({"note": "x"}))
            .await
            .status,
        404
    );

    // The audit trail names the actor and the before → after states.
    let auditor = tokens[&Role::Auditor].as_str();
    let trail = server
        .call(Method::GET, "/api/v1/audit", Some(auditor), None)
        .await;
    let subject = format!("alert:{id}");
    let entries: Vec<&Value> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == subject.as_str())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["action"], "alert.acknowledge");
    assert_eq!(entries[0]["actor"], "guard");
    assert_eq!(entries[0]["before"], json!({"state": "open"}));
    assert_eq!(entries[0]["after"], json!({"state": "acknowledged"}));
    assert_eq!(entries[1]["action"], "alert.resolve");
    assert_eq!(entries[1]["actor"], "security_officer");
    assert_eq!(entries[1]["before"], json!({"state": "acknowledged"}));
    assert_eq!(entries[1]["after"]["state"], "resolved");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn resolving_needs_a_sound_note_and_a_refusal_changes_nothing() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let guard = tokens[&Role::Guard].as_str();
    let id = raise_alert(&server, AlertKind::UnknownTag, "1", None).await;
    let before = alert_json(&server, guard, id).await;
    let audit_before = server.audit_count().await;
    let path = format!("/api/v1/alerts/{id}/resolve");
    for body in [
        json!({}),
        json!({"note": ""}),
        json!({"note": "   \n"}),
        json!({"note": null}),
        json!({"note": 5}),
        json!({"note": "x".repeat(2001)}),
        json!({"note": "bell \u{7}"}),
        json!({"note": "fine", "extra": 1}),
    ] {
        let reply = resolve(&server, guard, id, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
        assert_eq!(reply.error(), "bad_request");
    }
    // Malformed JSON and no body at all.
    let auth = format!("Bearer {guard}");
    for body in [Some(b"{\"note\":".to_vec()), None] {
        let reply = common::raw_request(
            server.addr,
            Method::POST,
            &path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
        assert_eq!(reply.status, 400, "{:?}", reply.body);
    }
    assert_eq!(alert_json(&server, guard, id).await, before);
    assert_eq!(server.audit_count().await, audit_before);
    let reply = resolve(&server, guard, id, json!({"note": "x".repeat(2000)})).await;
    assert_eq!(reply.status, 200, "2000 characters are allowed");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_list_is_newest_first_and_filters() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let custodian = tokens[&Role::Custodian].as_str();
    let guard = tokens[&Role::Guard].as_str();
    carrier(&server, 1, "S-0001", "S", "in_storage").await;
    let a = raise_alert(&server, AlertKind::UnknownTag, "a", None).await;
    let b = raise_alert(&server, AlertKind::WrongCabinet, "b", Some(1)).await;
    let c = raise_alert(&server, AlertKind::UnknownTag, "c", None).await;
    assert_eq!(ack(&server, guard, c).await.status, 200);
    let ids = |reply: &Reply| -> Vec<String> {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let s = |id: i64| id.to_string();
    for (query, expected) in [
        ("", vec![s(c), s(b), s(a)]),
        ("?state=open", vec![s(b), s(a)]),
        ("?state=acknowledged", vec![s(c)]),
        ("?state=resolved", vec![]),
        ("?kind=unknown_tag", vec![s(c), s(a)]),
        ("?kind=&state=", vec![s(c), s(b), s(a)]),
        ("?carrier_id=1", vec![s(b)]),
        ("?device_id=gate-9", vec![]),
        ("?limit=1", vec![s(c)]),
        (&format!("?after={a}"), vec![s(c), s(b)]),
        (&format!("?before={c}&limit=1"), vec![s(b)]),
    ] {
        let reply = server
            .call(
                Method::GET,
                &format!("/api/v1/alerts{query}"),
                Some(custodian),
                None,
            )
            .await;
        assert_eq!(ids(&reply), expected, "{query}");
    }
    for query in [
        "?state=closed",
        "?kind=fire",
        "?carrier_id=abc",
        "?device_id=a%20b",
        "?limit=0",
        "?limit=1001",
        "?after=x",
        "?colour=red",
    ] {
        let reply = server
            .call(
                Method::GET,
                &format!("/api/v1/alerts{query}"),
                Some(custodian),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{query}: {:?}", reply.body);
    }
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Titles
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn guards_see_the_control_number_and_level_never_the_title() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let guard = tokens[&Role::Guard].as_str();
    carrier(&server, 7, "TS-2025-007", "TS", "in_storage").await;
    let mut stream = EventStream::bearer(server.addr, guard).await;
    assert_eq!(stream.next().await.event, "hello");

    let id = raise_alert(&server, AlertKind::UnauthorizedRemoval, "7", Some(7)).await;
    let mut bodies = Vec::new();
    let event = stream.until(|e| e.event == "alert").await;
    bodies.push(event.data.clone());
    assert_eq!(event.json()["carrier_control_no"], "TS-2025-007");
    assert_eq!(event.json()["carrier_level"], "TS");
    assert_eq!(event.json()["carrier_id"], "7");

    let list = server
        .call(Method::GET, "/api/v1/alerts", Some(guard), None)
        .await;
    bodies.push(list.body.to_string());
    let one = alert_json(&server, guard, id).await;
    assert_eq!(one["carrier_control_no"], "TS-2025-007");
    assert_eq!(one["carrier_level"], "TS");
    bodies.push(one.to_string());
    bodies.push(ack(&server, guard, id).await.body.to_string());
    bodies.push(stream.until(|e| e.event == "alert").await.data);
    bodies.push(
        resolve(&server, guard, id, json!({"note": "stopped at the gate"}))
            .await
            .body
            .to_string(),
    );
    bodies.push(stream.until(|e| e.event == "alert").await.data);

    // The sweep marks a removed carrier missing: its alerts and audit entries carry no title.
    server
        .exec(format!(
            "INSERT INTO devices (id, kind, public_key, created_at)
             VALUES ('cab-1', 'cabinet', randomblob(32), '{}');
             INSERT INTO device_status (device_id, last_heartbeat_ms) VALUES ('cab-1', {});
             INSERT INTO pending_removals (device_id, carrier_id, removed_at_ms)
             VALUES ('cab-1', 7, {});",
            server.now(),
            server.now().unix_ms() + 3_600_000,
            server.now().unix_ms() - 60_000
        ))
        .await;
    sweep_once(&server.state).await.unwrap();
    let list = server
        .call(Method::GET, "/api/v1/alerts", Some(guard), None)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 3, "{:?}", list.body);
    bodies.push(list.body.to_string());
    let trail = server
        .call(
            Method::GET,
            "/api/v1/audit",
            Some(tokens[&Role::Auditor].as_str()),
            None,
        )
        .await;
    bodies.push(trail.body.to_string());

    for body in &bodies {
        assert!(!body.contains(TITLE), "title leaked: {body}");
        assert!(!body.contains("Nightjar"), "title leaked: {body}");
    }
    assert!(bodies.iter().filter(|b| b.contains("TS-2025-007")).count() >= 7);
    drop(stream);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The live stream
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_stream_announces_alerts_raised_and_changed_after_subscribing() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let earlier = raise_alert(&server, AlertKind::UnknownTag, "earlier", None).await;
    let mut stream = EventStream::bearer(server.addr, &tokens[&Role::Guard]).await;
    let hello = stream.next().await;
    assert_eq!(hello.event, "hello");
    assert_eq!(hello.json(), json!({"max_id": earlier.to_string()}));

    let id = raise_alert(&server, AlertKind::ReaderFault, "gate-1", None).await;
    let event = stream.next().await;
    assert_eq!(event.event, "alert");
    let alert = event.json();
    assert_eq!(alert["id"], id.to_string());
    assert_eq!(alert["kind"], "reader_fault");
    assert_eq!(alert["state"], "open");
    // The same JSON as the list item.
    assert_eq!(alert, alert_json(&server, &tokens[&Role::Guard], id).await);

    // A change made through the API is announced too.
    let officer = &tokens[&Role::SecurityOfficer];
    assert_eq!(ack(&server, officer, id).await.status, 200);
    let event = stream.next().await;
    assert_eq!(event.event, "alert");
    assert_eq!(event.json()["state"], "acknowledged");

    // Browsers: the session cookie alone opens the stream (a GET needs no CSRF header).
    let cookie = format!("custos_session={}", tokens[&Role::SecurityOfficer]);
    let mut browser = EventStream::connect(server.addr, &[("cookie", &cookie)]).await;
    assert_eq!(browser.next().await.event, "hello");
    let next = raise_alert(&server, AlertKind::UnknownTag, "browser", None).await;
    let event = browser.until(|e| e.event == "alert").await;
    assert_eq!(event.json()["id"], next.to_string());
    drop((stream, browser));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_to_resync() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let mut stream = EventStream::bearer(server.addr, &tokens[&Role::Guard]).await;
    assert_eq!(stream.next().await.event, "hello");
    // Far more changes than the hub holds, announced at once while the client reads nothing.
    let n = 2 * HUB_CAPACITY + 10;
    let now_ms = server.now().unix_ms();
    let ids = server
        .state
        .store()
        .transact(move |tx| {
            (0..n)
                .map(|i| {
                    let key = cause(AlertKind::UnknownTag, &[("lag", &i.to_string())]);
                    Ok(tx
                        .raise_alert(&NewAlert::new(AlertKind::UnknownTag, key, now_ms))?
                        .id())
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await
        .unwrap();
    server.state.alerts().notify(ids.iter().copied());
    let resync = stream.until(|e| e.event == "resync").await;
    let missed = resync.json()["missed"].as_u64().unwrap();
    assert!((1..=n as u64).contains(&missed), "{missed}");
    // After the resync the stream goes on with what the hub still holds.
    let after = stream.next().await;
    assert_eq!(after.event, "alert");
    drop(stream);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let mut stream = EventStream::bearer(server.addr, &tokens[&Role::Guard]).await;
    assert_eq!(stream.next().await.event, "hello");
    // Graceful shutdown waits for open connections: the stream must end by itself.
    tokio::time::timeout(WAIT, server.stop())
        .await
        .expect("shutdown hung on an open stream")
        .unwrap();
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(Ok(_)) = stream.body.frame().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream did not end");
}

// ---------------------------------------------------------------------------------------
// Sweeps
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sweeps_raise_each_alert_once_on_a_moved_clock() {
    // The background sweep is slowed down so that the test drives every sweep.
    let server = Server::start_with(|c| c.sweep_interval_ms = 3_600_000).await;
    let tokens = server.tokens_per_role().await;
    let guard = tokens[&Role::Guard].as_str();
    let t0 = server.now().unix_ms();
    let day = 86_400_000;
    server
        .exec(format!(
            "INSERT INTO people (id, name, department, category, created_at)
             VALUES (1, 'Borrower', 'Lab', 'core', '2025-01-01T00:00:00Z');
             INSERT INTO devices (id, kind, public_key, created_at)
             VALUES ('gate-1', 'gate', randomblob(32), '{now}'),
                    ('cab-1', 'cabinet', randomblob(32), '{now}');
             INSERT INTO device_status (device_id, last_heartbeat_ms) VALUES ('cab-1', {t0});",
            now = server.now()
        ))
        .await;
    carrier(&server, 1, "TS-1", "TS", "in_storage").await; // leaves cab-1 unaccounted
    carrier(&server, 2, "S-2", "S", "out").await; // on an overdue sign-out
    carrier(&server, 3, "TS-3", "TS", "missing").await; // missing 11 days: leak
    carrier(&server, 4, "C-4", "C", "missing").await; // missing 11 days: within 60
    carrier(&server, 5, "S-5", "S", "out").await; // left cab-1 on a sign-out
    carrier(&server, 6, "S-6", "S", "in_storage").await; // left cab-1 just now
    server
        .exec(format!(
            "UPDATE carriers SET missing_since_ms = {since} WHERE id IN (3, 4);
             INSERT INTO signouts (id, requester, borrower, purpose, due_at_ms, may_leave, state,
                                   created_at, issued_at_ms)
             VALUES (1, 1, 1, 'review', {due1}, 0, 'out', '2025-01-01T00:00:00Z', {t0}),
                    (2, 1, 1, 'review', {due2}, 0, 'out', '2025-01-01T00:00:00Z', {t0});
             INSERT INTO signout_carriers (signout_id, carrier_id) VALUES (1, 2), (2, 5);
             INSERT INTO pending_removals (device_id, carrier_id, removed_at_ms)
             VALUES ('cab-1', 1, {t0}), ('cab-1', 5, {t0});",
            since = t0 - 11 * day,
            due1 = t0 + 3_600_000,
            due2 = t0 + 30 * day,
        ))
        .await;

    // Two hours later.
    server.advance(7_200);
    let now = server.now().unix_ms();
    server
        .exec(format!(
            "INSERT INTO pending_removals (device_id, carrier_id, removed_at_ms)
             VALUES ('cab-1', 6, {})",
            now - 5_000
        ))
        .await;
    let first = sweep_once(&server.state).await.unwrap();
    let rows = alert_rows(&server).await;
    assert_eq!(first.raised, 6, "{rows:?}");
    assert_eq!(first.marked_missing, 1);
    for (kind, n) in [
        ("overdue", 1),
        ("cabinet_removal", 1),
        ("missing", 1),
        ("leak_deadline", 1),
        ("reader_silent", 2),
    ] {
        assert_eq!(count_kind(&rows, kind), n, "{kind}: {rows:?}");
    }
    assert!(rows.iter().all(|r| r.2 == 1 && r.1 == "open"), "{rows:?}");
    assert!(rows.contains(&("overdue".into(), "open".into(), 1, Some(2), None)));
    assert!(rows.contains(&(
        "cabinet_removal".into(),
        "open".into(),
        1,
        Some(1),
        Some("cab-1".into())
    )));
    assert!(rows.contains(&("leak_deadline".into(), "open".into(), 1, Some(3), None)));
    let carrier_state = |id: i64| {
        let server = &server;
        async move {
            server
                .state
                .store()
                .read(move |c| {
                    Ok(c.query_row(
                        "SELECT state, missing_since_ms FROM carriers WHERE id = ?1",
                        [id],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
                    )?)
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(carrier_state(1).await, ("missing".into(), Some(t0)));
    assert_eq!(
        carrier_state(5).await.0,
        "out",
        "a covered removal is no alert"
    );
    assert_eq!(
        server.rows("pending_removals").await,
        1,
        "only the one in grace is left"
    );
    let silent = server
        .call(
            Method::GET,
            "/api/v1/alerts?kind=reader_silent",
            Some(guard),
            None,
        )
        .await;
    let by_device: HashMap<String, Value> = silent
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["device_id"].as_str().unwrap().to_owned(),
                a["detail"].clone(),
            )
        })
        .collect();
    assert_eq!(by_device["gate-1"]["never_reported"], true);
    assert_eq!(by_device["cab-1"]["never_reported"], false);
    assert_eq!(by_device["cab-1"]["silent_since_ms"], t0);

    // The same sweep again raises nothing and repeats nothing.
    let audit_before = server.audit_count().await;
    let second = sweep_once(&server.state).await.unwrap();
    assert_eq!(second.raised, 0);
    assert!(second.changed.is_empty(), "{second:?}");
    assert_eq!(alert_rows(&server).await, rows);
    assert_eq!(server.audit_count().await, audit_before);
    // Carrier 6 is seen back in its cabinet before its grace ran out.
    server
        .exec("DELETE FROM pending_removals WHERE carrier_id = 6")
        .await;

    // An hour later the overdue alert is repeated (a reminder), nothing else.
    server.advance(3_600);
    let third = sweep_once(&server.state).await.unwrap();
    assert_eq!(third.raised, 0);
    assert_eq!(third.changed.len(), 1);
    let rows = alert_rows(&server).await;
    assert_eq!(count_kind(&rows, "overdue"), 1);
    assert!(rows.contains(&("overdue".into(), "open".into(), 2, Some(2), None)));

    // cab-1 speaks again: its alert stays open but says when it resumed.
    let now = server.now().unix_ms();
    server
        .exec(format!(
            "UPDATE device_status SET last_heartbeat_ms = {now} WHERE device_id = 'cab-1'"
        ))
        .await;
    let fourth = sweep_once(&server.state).await.unwrap();
    assert_eq!((fourth.raised, fourth.changed.len()), (0, 1));
    let cab = server
        .call(
            Method::GET,
            "/api/v1/alerts?device_id=cab-1&kind=reader_silent",
            Some(guard),
            None,
        )
        .await;
    let cab = &cab.body[0];
    assert_eq!(cab["state"], "open", "resumption does not resolve");
    assert_eq!(cab["detail"]["resumed_at_ms"], now);
    assert!(cab["detail"]["resumed_at"].is_string());
    assert_eq!(sweep_once(&server.state).await.unwrap().changed.len(), 0);

    // A resolved overdue alert comes back, as a new alert, at the next reminder. (cab-1 has
    // been quiet again since its heartbeat: that new silence repeats its live alert.)
    let overdue_id: i64 = server
        .call(
            Method::GET,
            "/api/v1/alerts?kind=overdue",
            Some(guard),
            None,
        )
        .await
        .body[0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let reply = resolve(
        &server,
        guard,
        overdue_id,
        json!({"note": "borrower called"}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(sweep_once(&server.state).await.unwrap().raised, 0);
    server.advance(3_600);
    assert_eq!(sweep_once(&server.state).await.unwrap().raised, 1);
    let rows = alert_rows(&server).await;
    assert_eq!(count_kind(&rows, "overdue"), 2);
    assert_eq!(
        rows.iter()
            .filter(|r| r.0 == "overdue" && r.1 == "open")
            .count(),
        1
    );

    // Ten days after the removal carrier 1 (TS) reaches its deadline; the C carrier is still
    // within its 60 days; cab-1's alert describes its new silence.
    server.advance(10 * 86_400);
    // Sessions last hours, not days: log in again.
    let guard = server.login("guard", common::PASSWORD).await;
    let guard = guard.as_str();
    let auditor = server.login("auditor", common::PASSWORD).await;
    let later = sweep_once(&server.state).await.unwrap();
    let rows = alert_rows(&server).await;
    assert_eq!(count_kind(&rows, "leak_deadline"), 2, "{rows:?}");
    assert!(rows.contains(&("leak_deadline".into(), "open".into(), 1, Some(1), None)));
    assert!(
        !rows
            .iter()
            .any(|r| r.0 == "leak_deadline" && r.3 == Some(4))
    );
    let cab = server
        .call(
            Method::GET,
            "/api/v1/alerts?device_id=cab-1&kind=reader_silent",
            Some(guard),
            None,
        )
        .await;
    assert_eq!(cab.body.as_array().unwrap().len(), 1);
    assert_eq!(cab.body[0]["occurrences"], 2);
    assert!(cab.body[0]["detail"].get("resumed_at").is_none());
    assert_eq!(cab.body[0]["detail"]["silent_since_ms"], now);
    assert!(later.raised >= 1);
    assert_eq!(sweep_once(&server.state).await.unwrap().raised, 0);

    // The missing carrier was recorded by the sweep, without its title.
    let trail = server
        .call(Method::GET, "/api/v1/audit", Some(&auditor), None)
        .await;
    let marked: Vec<&Value> = trail
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "carrier.missing")
        .collect();
    // The cabinet removal's, and (ten days on) the overdue loan's escalation to missing.
    assert_eq!(marked.len(), 2, "{marked:?}");
    assert_eq!(marked[1]["after"]["reason"], "overdue");
    assert_eq!(marked[1]["actor"], "@sweep");
    assert_eq!(marked[0]["actor"], "@sweep");
    assert_eq!(marked[0]["subject"], "carrier:1");
    assert!(!trail.body.to_string().contains(TITLE));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_background_sweep_runs_and_announces_on_the_stream() {
    let server = Server::start_with(|c| c.sweep_interval_ms = 100).await;
    let tokens = server.tokens_per_role().await;
    let mut stream = EventStream::bearer(server.addr, &tokens[&Role::Guard]).await;
    assert_eq!(stream.next().await.event, "hello");
    server
        .exec(format!(
            "INSERT INTO devices (id, kind, public_key, created_at)
             VALUES ('gate-9', 'gate', randomblob(32), '{}')",
            server.now()
        ))
        .await;
    server.advance(60);
    let event = stream.until(|e| e.event == "alert").await;
    assert_eq!(event.json()["kind"], "reader_silent");
    assert_eq!(event.json()["device_id"], "gate-9");
    assert!(server.state.metrics().sweeps() >= 1);
    drop(stream);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

/// Every sample line is `name{labels} value` (labels optional) with a numeric value.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line:?}");
            for pair in labels[1..labels.len() - 1].split(',') {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{line:?}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                assert!(
                    v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                    "{line:?}"
                );
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        assert!(
            out.insert(series.to_owned(), value).is_none(),
            "duplicate {series}"
        );
    }
    out
}

/// The scrapers' token of the metrics tests.
const METRICS_TOKEN: &str = "metrics token of the tests";

/// `GET /metrics` with the scrapers' bearer token (no session).
async fn metrics_text(addr: SocketAddr) -> (u16, String, String) {
    let auth = format!("Bearer {METRICS_TOKEN}");
    let response = open(addr, "/metrics", &[("authorization", &auth)]).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn metrics_need_no_session_and_parse() {
    let server = Server::start_with(|c| c.metrics_token = Some(METRICS_TOKEN.to_owned())).await;
    let (status, content_type, body) = metrics_text(server.addr).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let before = samples(&body);
    assert_eq!(before["custos_events_ingested_total"], 0.0);
    for kind in AlertKind::ALL {
        assert_eq!(
            before[&format!("custos_open_alerts{{kind=\"{kind}\"}}")],
            0.0
        );
        assert_eq!(
            before[&format!("custos_alerts_raised_total{{kind=\"{kind}\"}}")],
            0.0
        );
    }

    server
        .state
        .metrics()
        .observe_ingest(5, Duration::from_millis(3));
    let tokens = server.tokens_per_role().await;
    let a = raise_alert(&server, AlertKind::Overdue, "1", None).await;
    raise_alert(&server, AlertKind::Overdue, "2", None).await;
    let reply = resolve(&server, &tokens[&Role::Guard], a, json!({"note": "back"})).await;
    assert_eq!(reply.status, 200);
    sweep_once(&server.state).await.unwrap();

    let (_, _, body) = metrics_text(server.addr).await;
    let after = samples(&body);
    assert_eq!(after["custos_events_ingested_total"], 5.0);
    assert_eq!(after["custos_ingest_latency_seconds_count"], 1.0);
    assert_eq!(
        after["custos_ingest_latency_seconds_bucket{le=\"0.0025\"}"],
        0.0
    );
    assert_eq!(
        after["custos_ingest_latency_seconds_bucket{le=\"0.005\"}"],
        1.0
    );
    assert_eq!(
        after["custos_ingest_latency_seconds_bucket{le=\"+Inf\"}"],
        1.0
    );
    assert_eq!(after["custos_alerts_raised_total{kind=\"overdue\"}"], 2.0);
    assert_eq!(after["custos_open_alerts{kind=\"overdue\"}"], 1.0);
    assert!(after["custos_sweeps_total"] >= 1.0);
    assert!(after["custos_sweep_duration_seconds"] > 0.0);
    server.stop().await.unwrap();
}
