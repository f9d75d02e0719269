//! Notifications of alerts against real counterparts started here: an HTTP receiver (axum on
//! port 0) for webhooks, and a real SMTP server process (Debian's `python3-aiosmtpd`) for
//! e-mail. Both include a server restart with deliveries pending.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::Server;
use custos_server::config::{Config, MailRoute, SmtpTls, Webhook};
use custos_server::domain::alert::{AlertKind, NewAlert, cause};
use custos_server::domain::role::Role;
use custos_server::notify::webhook::signature;
use custos_server::store::StoreError;
use hyper::Method;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

/// A carrier title that must never leave the server in a notification.
const TITLE: &str = "Nightjar reactor drawings";
const SECRET: &str = "webhook secret 0123456789";
/// Every bounded wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// One POST as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// A webhook receiver: a real HTTP server on 127.0.0.1 that can go down and come back on
/// the same port.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
    count: watch::Sender<usize>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
            count: watch::Sender::new(0),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let got = Arc::clone(&self.got);
        let count = self.count.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let got = Arc::clone(&got);
                let count = count.clone();
                async move {
                    let mut got = got.lock().unwrap();
                    got.push(Received { headers, body });
                    count.send_replace(got.len());
                    StatusCode::NO_CONTENT
                }
            }),
        );
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    /// Stop listening (connections are refused until [`Receiver::up`]).
    fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listen again on the same port.
    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Wait until at least `n` POSTs have arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} webhook POSTs did not arrive"))
            .unwrap();
        self.got.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
}

async fn carrier(server: &Server, id: i64, control_no: &str) {
    server
        .exec(format!(
            "INSERT INTO carriers (id, control_no, kind, level, title, owner_unit, state, created_at)
             VALUES ({id}, '{control_no}', 'paper', 'TS', '{TITLE}', 'Unit 7', 'in_storage',
                     '2025-01-01T00:00:00Z')"
        ))
        .await;
}

/// Raise an alert as a rule would (inside a write job), then tell the hub.
async fn raise(server: &Server, kind: AlertKind, key: &str, carrier_id: Option<i64>) -> i64 {
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

/// Poll the delivery list (security officer) until `done` holds for it.
async fn wait_deliveries(
    server: &Server,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = server
            .call(Method::GET, "/api/v1/notifications", Some(token), None)
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let list = reply.body.as_array().unwrap().clone();
        if done(&list) {
            return list;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries never reached the expected state: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast(config: &mut Config) {
    config.notifications.poll_interval_ms = 20;
    config.notifications.retry_initial_ms = 20;
    config.notifications.retry_max_ms = 100;
}

fn hook(config: &mut Config, url: String) {
    fast(config);
    config.webhooks = vec![Webhook {
        name: "soc".into(),
        url,
        secret: SECRET.into(),
        kinds: vec![AlertKind::UnauthorizedRemoval],
    }];
}

fn state_of<'a>(list: &'a [Value], state: &str) -> Vec<&'a Value> {
    list.iter().filter(|d| d["state"] == state).collect()
}

#[tokio::test]
async fn webhooks_are_signed_retried_across_a_restart_and_reported_when_stuck() {
    let mut receiver = Receiver::start().await;
    let url = receiver.url();
    let server = Server::start_with(|c| {
        hook(c, url.clone());
        c.notifications.failed_alert_after_secs = 60;
    })
    .await;
    let tokens = server.tokens_per_role().await;
    let officer = &tokens[&Role::SecurityOfficer];
    carrier(&server, 1, "JM-1").await;

    // 1. Delivered, signed, with a delivery id and without the title.
    let first = raise(&server, AlertKind::UnauthorizedRemoval, "a", Some(1)).await;
    raise(&server, AlertKind::UnknownTag, "not-routed", None).await;
    let got = receiver.wait_for(1).await;
    let post = &got[0];
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        post.headers["custos-signature"].to_str().unwrap(),
        signature(SECRET.as_bytes(), &post.body),
        "the signature is the HMAC-SHA256 of the exact body"
    );
    assert_eq!(
        post.headers["custos-delivery"],
        body["delivery_id"].as_str().unwrap()
    );
    assert_eq!(post.headers["custos-event"], "alert.raised");
    assert_eq!(body["alert"]["id"], first.to_string());
    assert_eq!(body["alert"]["carrier_control_no"], "JM-1");
    assert_eq!(body["alert"]["carrier_level"], "TS");
    assert!(!String::from_utf8_lossy(&post.body).contains("Nightjar"));
    wait_deliveries(&server, officer, |l| state_of(l, "sent").len() == 1).await;

    // 2. The receiver goes down; two alarms wait, retrying, and the server restarts.
    receiver.down();
    let second = raise(&server, AlertKind::UnauthorizedRemoval, "b", Some(1)).await;
    raise(&server, AlertKind::UnauthorizedRemoval, "c", Some(1)).await;
    let list = wait_deliveries(&server, officer, |l| state_of(l, "retrying").len() == 2).await;
    assert!(state_of(&list, "retrying")[0]["last_error"].is_string());
    // Stuck past `failed_alert_after_secs`: one notification_failed alert for the target.
    server.advance(61);
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        let reply = server
            .call(
                Method::GET,
                "/api/v1/alerts?kind=notification_failed",
                Some(officer),
                None,
            )
            .await;
        if let Some(alert) = reply.body.as_array().and_then(|a| a.first()) {
            break alert.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification_failed alert"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed["detail"]["target"], "soc");
    assert_eq!(failed["detail"]["channel"], "webhook");

    let url = receiver.url();
    let server = server
        .restart_with(|c| {
            hook(c, url.clone());
            c.notifications.failed_alert_after_secs = 60;
        })
        .await;
    let officer = &server.login("security_officer", common::PASSWORD).await;
    // Still pending after the restart, nothing lost.
    let list = wait_deliveries(&server, officer, |l| l.len() == 3).await;
    assert_eq!(state_of(&list, "sent").len(), 1, "{list:#?}");

    // 3. The receiver comes back: everything arrives, each delivery id once or more, and the
    // delivery list says sent.
    receiver.up().await;
    let got = receiver.wait_for(3).await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|p| p.headers["custos-delivery"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "three distinct deliveries: {ids:?}");
    let alerts: BTreeSet<String> = got
        .iter()
        .map(|p| serde_json::from_slice::<Value>(&p.body).unwrap()["alert"]["id"].to_string())
        .collect();
    assert!(alerts.contains(&format!("\"{second}\"")), "{alerts:?}");
    wait_deliveries(&server, officer, |l| state_of(l, "sent").len() == 3).await;

    // An acknowledgement is a change too.
    let reply = server
        .call(
            Method::POST,
            &format!("/api/v1/alerts/{first}/ack"),
            Some(officer),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let got = receiver.wait_for(4).await;
    assert!(
        got.iter()
            .any(|p| p.headers["custos-event"] == "alert.acknowledged")
    );

    // The security officer's page shows the same deliveries; a guard's browser gets 403.
    let mut browser = common::browser::Browser::new(&server);
    assert_eq!(
        browser
            .sign_in("security_officer", common::PASSWORD)
            .await
            .status,
        303
    );
    let page = browser.get("/notifications").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="delivery-table""#));
    assert!(
        page.body
            .matches(r#"class="delivery" data-delivery-id="#)
            .count()
            >= 4
    );
    assert!(page.body.contains(r#"data-state="sent""#));
    let mut guard = common::browser::Browser::new(&server);
    assert_eq!(guard.sign_in("guard", common::PASSWORD).await.status, 303);
    assert_eq!(guard.get("/notifications").await.status, 403);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_delivery_list_is_the_security_officers_and_checks_its_query() {
    let server = Server::start_with(fast).await;
    let tokens = server.tokens_per_role().await;
    for role in Role::ALL {
        let reply = server
            .call(
                Method::GET,
                "/api/v1/notifications",
                Some(&tokens[&role]),
                None,
            )
            .await;
        let expected = if role == Role::SecurityOfficer {
            200
        } else {
            403
        };
        assert_eq!(reply.status, expected, "{role:?}");
    }
    let officer = &tokens[&Role::SecurityOfficer];
    for bad in ["state=lost", "limit=0", "limit=x"] {
        let reply = server
            .call(
                Method::GET,
                &format!("/api/v1/notifications?{bad}"),
                Some(officer),
                None,
            )
            .await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
        assert_eq!(reply.error(), "bad_request");
    }
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// E-mail against a real SMTP server (aiosmtpd)
// ---------------------------------------------------------------------------------------

/// The SMTP server: aiosmtpd's SMTP protocol on port 0, printing `ready PORT` and then one
/// JSON line per message it accepted. With `CERT KEY starttls` it requires STARTTLS, with
/// `CERT KEY implicit` it speaks TLS from the first byte; either way it then requires AUTH
/// (user `custos`, password `mail password`).
const SMTP_SINK: &str = r#"
import asyncio, json, ssl, sys
from aiosmtpd.smtp import SMTP, AuthResult

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                          "data": envelope.content.decode("utf-8", "replace"),
                          "tls": server.transport.get_extra_info("sslcontext") is not None,
                          "auth": session.authenticated}), flush=True)
        return "250 OK"

def check(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"custos" and auth_data.password == b"mail password"
    return AuthResult(success=ok)

async def main():
    kwargs, wrap = {}, None
    if len(sys.argv) > 3:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        kwargs = dict(authenticator=check, auth_required=True)
        if sys.argv[3] == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(auth_require_tls=False)
            wrap = ctx
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Handler(), **kwargs), "127.0.0.1", 0, ssl=wrap)
    print("ready", srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
"#;

struct SmtpSink {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    port: u16,
}

impl SmtpSink {
    async fn start(args: &[&str]) -> SmtpSink {
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(SMTP_SINK)
            .args(args)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("aiosmtpd ready")
            .unwrap()
            .expect("aiosmtpd printed its port (is python3-aiosmtpd installed?)");
        let port = ready.strip_prefix("ready ").unwrap().parse().unwrap();
        SmtpSink {
            _child: child,
            lines,
            port,
        }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("an e-mail arrived")
            .unwrap()
            .unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

fn mail(config: &mut Config, port: u16) {
    fast(config);
    config.smtp.host = "127.0.0.1".into();
    config.smtp.port = port;
    config.smtp.tls = SmtpTls::None;
    config.smtp.from = "custos@site.test".into();
    config.smtp.roles.insert(
        "security_officer".into(),
        vec!["so@site.test".into(), "deputy@site.test".into()],
    );
    config.smtp.routes = vec![MailRoute {
        kinds: vec![],
        to: vec!["role:security_officer".into()],
    }];
}

/// Decode the quoted-printable or base64 body lettre chose, enough to search it.
fn readable(data: &str) -> String {
    use base64::Engine as _;
    let (head, body) = data
        .split_once("\n\n")
        .or_else(|| data.split_once("\r\n\r\n"))
        .unwrap();
    if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: base64")
    {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap(),
        )
        .unwrap()
    } else if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable")
    {
        let mut bytes = Vec::new();
        let raw = body.replace("=\r\n", "").replace("=\n", "");
        let raw = raw.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'=' && i + 2 < raw.len() {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                bytes.push(raw[i]);
                i += 1;
            }
        }
        String::from_utf8(bytes).unwrap()
    } else {
        body.to_owned()
    }
}

#[tokio::test]
async fn an_alarm_reaches_every_routed_address_at_once_and_survives_a_restart() {
    let mut sink = SmtpSink::start(&[]).await;
    let port = sink.port;
    let server = Server::start_with(|c| mail(c, port)).await;
    carrier(&server, 1, "JM-7").await;
    raise(&server, AlertKind::UnauthorizedRemoval, "a", Some(1)).await;
    // A reminder waits for the digest: nothing is sent for it now.
    raise(&server, AlertKind::Overdue, "b", Some(1)).await;
    let mut to = BTreeSet::new();
    for _ in 0..2 {
        let got = sink.next().await;
        assert_eq!(got["from"], "custos@site.test");
        let data = got["data"].as_str().unwrap();
        let text = readable(data);
        assert!(text.contains("JM-7"), "{text}");
        assert!(
            text.contains("绝密") && text.contains("Top Secret"),
            "{text}"
        );
        assert!(!data.contains("Nightjar") && !text.contains("Nightjar"));
        assert!(data.contains("Subject: "));
        to.insert(got["to"][0].as_str().unwrap().to_owned());
    }
    assert_eq!(
        to,
        BTreeSet::from(["deputy@site.test".to_owned(), "so@site.test".to_owned()])
    );

    // The sink prints a message once it has the data, before the client has read the final
    // 250: until the server has recorded both as sent, taking the sink away would make it retry
    // them (correctly: delivery is at least once), which is not what this step is about.
    let officer = server.tokens_per_role().await[&Role::SecurityOfficer].clone();
    wait_deliveries(&server, &officer, |l| {
        l.iter()
            .filter(|d| d["channel"] == "email" && d["state"] == "sent")
            .count()
            == 2
    })
    .await;

    // The SMTP server goes away; an alarm waits in the outbox across a restart.
    drop(sink);
    raise(&server, AlertKind::ReaderFault, "c", None).await;
    wait_deliveries(&server, &officer, |l| {
        l.iter()
            .filter(|d| d["channel"] == "email" && d["state"] == "retrying")
            .count()
            == 2
    })
    .await;
    let mut sink = SmtpSink::start(&[]).await;
    let port = sink.port;
    let server = server.restart_with(|c| mail(c, port)).await;
    for _ in 0..2 {
        let got = sink.next().await;
        let text = readable(got["data"].as_str().unwrap());
        assert!(text.contains("Reader fault"), "{text}");
    }
    let list = wait_deliveries(&server, &officer, |l| {
        l.iter()
            .filter(|d| d["channel"] == "email" && d["state"] == "sent")
            .count()
            == 4
    })
    .await;
    assert_eq!(
        list.iter().filter(|d| d["channel"] == "digest").count(),
        2,
        "the overdue reminder waits for the digest: {list:#?}"
    );

    // A day later the digest hour has come: one digest per recipient with the reminder.
    server.advance(86_400);
    for _ in 0..2 {
        let got = sink.next().await;
        let data = got["data"].as_str().unwrap();
        let text = readable(data);
        assert!(text.contains("Custos daily reminders"), "{text}");
        assert!(
            text.contains("逾期未还 / Overdue") && text.contains("JM-7"),
            "{text}"
        );
        assert!(!text.contains("Nightjar"));
    }
    let officer = server.login("security_officer", common::PASSWORD).await;
    wait_deliveries(&server, &officer, |l| {
        l.iter()
            .filter(|d| d["channel"] == "digest" && d["state"] == "sent")
            .count()
            == 2
    })
    .await;
    server.stop().await.unwrap();
}

/// A test CA and a certificate for `localhost` it signed (openssl), in `dir`.
fn certificates(dir: &std::path::Path) -> (String, String, String) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=custos test CA",
            "-days",
            "2",
        ][..],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec[..],
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ][..],
    ]
    .concat());
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    let path = |f: &str| dir.join(f).display().to_string();
    (path("ca.pem"), path("leaf.pem"), path("leaf.key"))
}

async fn tls_and_auth(mode: &str, tls: SmtpTls) {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let mut sink = SmtpSink::start(&[&cert, &key, mode]).await;
    let port = sink.port;
    let server = Server::start_with(|c| {
        mail(c, port);
        c.smtp.host = "localhost".into();
        c.smtp.tls = tls;
        c.smtp.ca_file = ca.clone().into();
        c.smtp.username = "custos".into();
        c.smtp.password = "mail password".into();
        c.smtp.roles.clear();
        c.smtp.routes = vec![MailRoute {
            kinds: vec![AlertKind::ReaderSilent],
            to: vec!["guard@site.test".into()],
        }];
    })
    .await;
    raise(&server, AlertKind::ReaderSilent, "a", None).await;
    let got = sink.next().await;
    assert_eq!(got["to"][0], "guard@site.test");
    assert_eq!(got["tls"], true, "{mode}");
    assert_eq!(got["auth"], true, "{mode}");
    assert!(readable(got["data"].as_str().unwrap()).contains("Reader silent"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mail_goes_over_starttls_with_authentication() {
    tls_and_auth("starttls", SmtpTls::Starttls).await;
}

#[tokio::test]
async fn mail_goes_over_implicit_tls_with_authentication() {
    tls_and_auth("implicit", SmtpTls::Implicit).await;
}

/// Opening a year-end collection tells each holder of a called-in carrier: one
/// `collection_due` reminder per holder, to the webhooks that take the kind at once (with the
/// person's id, so an office system can reach the person) and to the routed custodians' e-mail
/// in the daily digest. No carrier title in either.
#[tokio::test]
async fn a_collection_tells_each_holder_through_the_routed_channels() {
    let receiver = Receiver::start().await;
    let mut sink = SmtpSink::start(&[]).await;
    let (port, url) = (sink.port, receiver.url());
    let server = Server::start_with(|c| {
        mail(c, port);
        c.smtp
            .roles
            .insert("custodian".into(), vec!["keeper@site.test".into()]);
        c.smtp.routes = vec![MailRoute {
            kinds: vec![AlertKind::CollectionDue],
            to: vec!["role:custodian".into()],
        }];
        c.webhooks = vec![Webhook {
            name: "oa".into(),
            url,
            secret: SECRET.into(),
            kinds: vec![AlertKind::CollectionDue],
        }];
    })
    .await;
    let tokens = server.tokens_per_role().await;
    let officer = &tokens[&Role::SecurityOfficer];
    let mut people = Vec::new();
    for name in ["张三", "李四"] {
        let reply = server
            .call(
                Method::POST,
                "/api/v1/people",
                Some(officer),
                Some(serde_json::json!({
                    "name": name, "department": "一处", "category": "important",
                    "training_valid_until": "2099-12-31", "commitment_signed_on": "2020-01-01"
                })),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        people.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    // Three carriers out: two with the first holder, one with the second.
    for (id, holder) in [(1, &people[0]), (2, &people[0]), (3, &people[1])] {
        carrier(&server, id, &format!("JM-{id}")).await;
        server
            .exec(format!(
                "UPDATE carriers SET state = 'out', holder = {holder} WHERE id = {id}"
            ))
            .await;
    }

    let reply = server
        .call(
            Method::POST,
            "/api/v1/collections",
            Some(officer),
            Some(serde_json::json!({"year": 2026})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);

    // The webhook at once: one notice per holder, naming the person, never a title.
    let got = receiver.wait_for(2).await;
    let mut told = BTreeSet::new();
    for r in &got {
        assert!(!String::from_utf8_lossy(&r.body).contains(TITLE));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"], "alert.raised");
        assert_eq!(body["alert"]["kind"], "collection_due");
        told.insert(body["alert"]["person_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(told, people.iter().cloned().collect::<BTreeSet<_>>());
    let alerts = server
        .call(Method::GET, "/api/v1/alerts", Some(officer), None)
        .await;
    let due: Vec<&Value> = alerts
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "collection_due")
        .collect();
    assert_eq!(due.len(), 2, "{:?}", alerts.body);

    // The custodian's e-mail in the digest: a reminder, not an alarm.
    server.advance(86_400);
    let got = sink.next().await;
    assert_eq!(got["to"][0], "keeper@site.test");
    let data = got["data"].as_str().unwrap();
    let text = readable(data);
    assert!(
        text.contains("年底收缴") && text.contains("Year-end collection"),
        "{text}"
    );
    assert!(!data.contains("Nightjar") && !text.contains("Nightjar"));
    server.stop().await.unwrap();
}

/// The `training_expiring` alerts, as the security officer lists them.
async fn reminders(server: &Server, officer: &str) -> Vec<Value> {
    let reply = server
        .call(
            Method::GET,
            "/api/v1/alerts?kind=training_expiring",
            Some(officer),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body.as_array().unwrap().clone()
}

/// Reminders reach people through the notifications: the sweep raises one low-severity
/// `training_expiring` alert for a person whose training runs out within the window (none for
/// someone whose training is years away), the webhook routed for it gets it at once, and the
/// same window is not reminded again on later sweeps; a renewal ends the reminders.
#[tokio::test]
async fn training_about_to_expire_is_reminded_once_through_the_notifications() {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let server = Server::start_with(|c| {
        fast(c);
        c.sweep_interval_ms = 3_600_000;
        c.silence_watch = false;
        c.webhooks = vec![Webhook {
            name: "hr".into(),
            url,
            secret: SECRET.into(),
            kinds: vec![
                AlertKind::TrainingExpiring,
                AlertKind::CommitmentExpiring,
                AlertKind::DecommissioningEnding,
            ],
        }];
    })
    .await;
    let tokens = server.tokens_per_role().await;
    let officer = &tokens[&Role::SecurityOfficer];
    let today = server.now().date();
    let mut ids = Vec::new();
    for (name, training) in [
        ("Zhou", today.plus_days(10)),
        ("Qian", today.plus_days(3 * 365)),
    ] {
        let reply = server
            .call(
                Method::POST,
                "/api/v1/people",
                Some(officer),
                Some(serde_json::json!({
                    "name": name, "department": "R&D", "category": "important",
                    "training_valid_until": training.to_string(),
                    "commitment_signed_on": "2020-01-01"
                })),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    custos_server::jobs::sweep_once(&server.state)
        .await
        .unwrap();
    let got = receiver.wait_for(1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(got[0].headers["custos-event"], "alert.raised");
    assert_eq!(body["alert"]["kind"], "training_expiring");
    assert_eq!(body["alert"]["severity"], "low");
    assert_eq!(body["alert"]["person_id"], ids[0].as_str());
    assert!(
        !String::from_utf8_lossy(&got[0].body).contains("Zhou"),
        "the person is named by id only"
    );
    let list = reminders(&server, officer).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["detail"]["days_left"], 10);
    assert_eq!(list[0]["detail"]["due_on"], today.plus_days(10).to_string());

    // Later sweeps, the same day and days later, do not remind the same window again.
    custos_server::jobs::sweep_once(&server.state)
        .await
        .unwrap();
    server.advance(2 * 86_400);
    custos_server::jobs::sweep_once(&server.state)
        .await
        .unwrap();
    // Sessions do not outlive the two days: sign in again.
    let officer = &server.login("security_officer", common::PASSWORD).await;
    let list = reminders(&server, officer).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["occurrences"], 1);
    // Renewed: nothing more to remind.
    let reply = server
        .call(
            Method::PATCH,
            &format!("/api/v1/people/{}", ids[0]),
            Some(officer),
            Some(serde_json::json!({
                "training_valid_until": today.plus_days(5 * 365).to_string(),
                "reason": "re-examined"
            })),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    server.advance(86_400);
    custos_server::jobs::sweep_once(&server.state)
        .await
        .unwrap();
    let officer = &server.login("security_officer", common::PASSWORD).await;
    assert_eq!(reminders(&server, officer).await.len(), 1);
    // One reminder, one delivery, sent.
    let list = wait_deliveries(&server, officer, |l| state_of(l, "sent").len() == 1).await;
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(receiver.got.lock().unwrap().len(), 1);
}
