//! Test fixture: a real server on 127.0.0.1:0 over a fresh data directory, and a small HTTP/1.1
//! client (hyper) that speaks to it over a real socket.

#![allow(dead_code)] // Each test binary uses a different part of the fixture.

pub mod binary;
pub mod browser;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use custos_server::config::Config;
use custos_server::domain::role::Role;
use custos_server::domain::time::Timestamp;
use custos_server::keys::{KEY_FILE, ServerKey};
use custos_server::store::{DB_FILE, Store, StoreOptions};
use custos_server::{AppState, Clock, LaunchError, Settings, launch};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The first administrator's password.
pub const ADMIN_PASSWORD: &str = "first operator key 1";
/// Every other test account's password, once its holder has set it (see [`Server::activate`]).
pub const PASSWORD: &str = "long enough password";
/// The password an administrator gives a new test account; its holder must replace it.
pub const INITIAL_PASSWORD: &str = "temporary passphrase 1";

/// A valid device public key (standard base64), different for every `n`: the public half of
/// the Ed25519 key whose seed is `n` (registration refuses small-order and malformed keys).
pub fn device_key_b64(n: u32) -> String {
    use base64::Engine as _;
    let mut seed = [0x5a_u8; 32];
    seed[..4].copy_from_slice(&n.to_be_bytes());
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed");
    base64::engine::general_purpose::STANDARD
        .encode(ring::signature::KeyPair::public_key(&pair).as_ref())
}

/// Route tracing output through the test harness so failures show it.
pub fn tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("custos_server=debug")
        .try_init();
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `error` code of a JSON error answer.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

/// One request over a fresh connection.
pub async fn raw_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    // A text answer (the CSV exports, `text/csv`) is its text; anything else must be JSON.
    let text_answer = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/"));
    let body = if bytes.is_empty() {
        Value::Null
    } else if text_answer {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON answer {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A JSON request with an optional bearer token.
pub async fn call(
    addr: SocketAddr,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    raw_request(
        addr,
        method,
        path,
        &headers,
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    /// Seconds added to the system clock (tests move time forward).
    pub clock_offset: Arc<AtomicI64>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), LaunchError>>>,
}

impl Server {
    /// Initialise a data directory with `admin` / [`ADMIN_PASSWORD`] and serve it.
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// Graceful shutdown; returns what `launch` returned.
    pub async fn stop(mut self) -> Result<(), LaunchError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }

    /// Log in and return the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(reply.status, 200, "login {username}: {:?}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// The first sign-in of an account an administrator created with [`INITIAL_PASSWORD`]:
    /// log in, set [`PASSWORD`] (as its holder must before anything else), return the token.
    pub async fn activate(&self, username: &str) -> String {
        let token = self.login(username, INITIAL_PASSWORD).await;
        let reply = self
            .call(
                Method::POST,
                "/api/v1/session/password",
                Some(&token),
                Some(json!({"old": INITIAL_PASSWORD, "new": PASSWORD})),
            )
            .await;
        assert_eq!(reply.status, 204, "activate {username}: {:?}", reply.body);
        token
    }

    /// Create an account (as `admin_token`) and activate it; its token.
    pub async fn account(&self, admin_token: &str, username: &str, roles: &[Role]) -> String {
        let reply = self
            .call(
                Method::POST,
                "/api/v1/users",
                Some(admin_token),
                Some(json!({"username": username, "password": INITIAL_PASSWORD, "roles": roles})),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        self.activate(username).await
    }

    /// A JSON request.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        call(self.addr, method, path, token, body).await
    }

    /// Create one account per role (username = role name) and log each in.
    pub async fn tokens_per_role(&self) -> HashMap<Role, String> {
        let admin = self.login("admin", ADMIN_PASSWORD).await;
        let mut tokens = HashMap::new();
        for role in Role::ALL {
            if role == Role::Admin {
                tokens.insert(role, admin.clone());
                continue;
            }
            tokens.insert(role, self.account(&admin, role.as_str(), &[role]).await);
        }
        tokens
    }

    /// Number of audit entries.
    pub async fn audit_count(&self) -> i64 {
        self.state
            .store()
            .query(|tx| tx.audit_count())
            .await
            .unwrap()
    }

    /// Row count of a table, read directly.
    pub async fn rows(&self, table: &'static str) -> i64 {
        self.state
            .store()
            .read(move |c| {
                Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
            })
            .await
            .unwrap()
    }

    /// The server's public key.
    pub fn public_key(&self) -> [u8; 32] {
        ServerKey::load(&self.dir.path().join(KEY_FILE))
            .unwrap()
            .public_key()
    }

    /// Now, as the server sees it.
    pub fn now(&self) -> Timestamp {
        self.state.now()
    }
}

impl Server {
    /// Like [`Server::start`], but `adjust` edits the configuration first (e.g. to slow the
    /// background sweeps down so that a test drives them itself).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Server {
        tracing();
        let dir = tempfile::tempdir().unwrap();
        custos_server::cli::initialise(dir.path(), "admin", ADMIN_PASSWORD.to_owned())
            .await
            .expect("init");
        Server::serve(dir, adjust, Arc::new(AtomicI64::new(0))).await
    }

    /// Stop gracefully and serve the same data directory again (same clock offset) with the
    /// configuration `adjust` makes: a server restart.
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Config)) -> Server {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task
            .take()
            .unwrap()
            .await
            .unwrap()
            .expect("clean stop");
        let Server {
            dir,
            clock_offset,
            state,
            ..
        } = self;
        drop(state);
        Server::serve(dir, adjust, clock_offset).await
    }

    async fn serve(
        dir: tempfile::TempDir,
        adjust: impl FnOnce(&mut Config),
        clock_offset: Arc<AtomicI64>,
    ) -> Server {
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            body_limit_bytes: 16 * 1024,
            ..Config::default()
        };
        // The fixture's accounts (`tokens_per_role`) are not linked to people; the tests of
        // per-person duties turn this back on.
        config.people.privileged_accounts_need_person = false;
        adjust(&mut config);
        let store = Store::open(&dir.path().join(DB_FILE), StoreOptions::default())
            .await
            .unwrap();
        let key = ServerKey::load(&dir.path().join(KEY_FILE)).unwrap();
        let offset = Arc::clone(&clock_offset);
        let system = Clock::system();
        let clock = Clock::from_fn(move || system.now().plus_secs(offset.load(Ordering::SeqCst)));
        let state = AppState::with_clock(store, key, Settings::from(&config), clock);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(launch(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            state,
            dir,
            clock_offset,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Move the server's clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Run SQL directly on the writer (test set-up only).
    pub async fn exec(&self, sql: impl Into<String>) {
        let sql = sql.into();
        self.state
            .store()
            .write(move |c| Ok(c.execute_batch(&sql)?))
            .await
            .unwrap_or_else(|e| panic!("set-up SQL failed: {e}"));
    }
}

/// An answer with its raw body bytes (to check a signature over exactly those bytes).
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl RawReply {
    /// The body as JSON (`Null` if empty).
    pub fn json(&self) -> Value {
        if self.bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.bytes).expect("JSON answer")
        }
    }
}

/// One request over a fresh connection, keeping the answer's raw bytes.
pub async fn raw_exchange(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> RawReply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::new(Bytes::from(body))).expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    RawReply {
        status,
        headers,
        bytes,
    }
}
