//! `custos-sim demo` as a user runs it: it prints the URL and one login per role, the scenario's
//! first unauthorised exit becomes an open `unauthorized_removal` alert that the guard can list
//! over HTTP, Ctrl-C (SIGINT) stops it cleanly, and a second start on the same data directory
//! works.

mod common;

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use common::{TempDir, init_tracing};
use custos_sim::site::ApiClient;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The longest the site may take to start (a debug build on a loaded machine: password hashing,
/// 130 registrations over HTTP, the cabinets' first counts).
const START: Duration = Duration::from_secs(90);

/// The longest the scenario may take to reach its first unauthorised exit (at `--speed 20` it
/// is about ten seconds in; its pauses never drop below what the gate smoothing needs).
const FIRST_ALARM: Duration = Duration::from_secs(120);

/// The longest a clean stop may take.
const STOP: Duration = Duration::from_secs(30);

struct Demo {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Demo {
    fn spawn(data: &Path, extra: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custos-sim"))
            .arg("demo")
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "custos_sim=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Demo {
            child,
            stdout,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `want`, for at most `limit`; returns it.
    async fn line_where(
        &mut self,
        what: &str,
        limit: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let found = tokio::time::timeout(limit, async {
            loop {
                let line = self.stdout.next_line().await.unwrap().unwrap_or_else(|| {
                    panic!("demo exited before {what}; output: {:#?}", self.seen)
                });
                self.seen.push(line.clone());
                if want(&line) {
                    return line;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {what} within {limit:?}; output: {:#?}", self.seen))
    }

    /// Waits for the URL line; returns the server's base URL (`http://127.0.0.1:PORT`).
    async fn url(&mut self) -> String {
        let line = self
            .line_where("URL", START, |l| l.contains("running at http://"))
            .await;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap();
        url.trim_end_matches('/').to_owned()
    }

    /// Waits for the login line of `role`; returns (username, password).
    async fn login(&mut self, role: &str) -> (String, String) {
        let line = self
            .line_where("login line", START, |l| {
                l.split_whitespace().next() == Some(role)
            })
            .await;
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 3, "role username password: {line:?}");
        (words[1].to_owned(), words[2].to_owned())
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit.
    async fn interrupt(mut self) -> (ExitStatus, Vec<String>) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap())
            .unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let rest = tokio::time::timeout(STOP, async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                self.seen.push(line);
            }
            self.child.wait().await.unwrap()
        })
        .await;
        let status = rest.unwrap_or_else(|_| panic!("no exit within {STOP:?}: {:#?}", self.seen));
        (status, self.seen)
    }
}

#[tokio::test]
async fn the_demo_raises_an_alert_the_guard_sees_stops_on_sigint_and_starts_again_where_asked() {
    init_tracing();
    let dir = TempDir::new("demo");
    let data = dir.join("site");

    let mut demo = Demo::spawn(&data, &["--speed", "20"]);
    let url = demo.url().await;
    let (user, password) = demo.login("guard").await;
    let guard = ApiClient::new(&url)
        .login(&user, &password)
        .await
        .expect("the printed guard login works");
    let alarm = demo
        .line_where("unauthorized_removal line", FIRST_ALARM, |l| {
            l.contains("ALERT unauthorized_removal")
        })
        .await;
    assert!(alarm.contains("at gate-"), "{alarm}");
    assert!(
        alarm.contains("alarm coil on") || alarm.contains("alarm coil already on"),
        "the gate sounded: {alarm}"
    );
    let open = guard.get("/api/v1/alerts?state=open").await.unwrap();
    let open = open.as_array().expect("a JSON array");
    assert!(
        open.iter()
            .any(|a| a["kind"] == "unauthorized_removal" && a["state"] == "open"),
        "open alerts: {open:#?}"
    );
    // Someone turns back at the alarm: the carrier's history, as the server keeps it, says so.
    let turned = demo
        .line_where("the turned-back carrier's history", FIRST_ALARM, |l| {
            l.contains("the custodian looks up")
        })
        .await;
    assert!(
        turned.contains("passage out at gate-west, then turned back at gate-west (did not pass)"),
        "{turned}"
    );
    // The register is kept current: a renewed training, then a departure with its 脱密期.
    let renewed = demo
        .line_where("a renewed training", FIRST_ALARM, |l| {
            l.contains("records the renewed training of")
        })
        .await;
    assert!(renewed.contains("valid until 20"), "{renewed}");
    let departed = demo
        .line_where("a departure", FIRST_ALARM, |l| {
            l.contains("approves the departure of")
        })
        .await;
    assert!(
        departed.contains("清退 certified; 脱密期 until 20"),
        "{departed}"
    );
    let (status, seen) = demo.interrupt().await;
    assert!(status.success(), "{status}; output: {seen:#?}");
    assert!(seen.iter().any(|l| l == "demo stopped"), "{seen:#?}");
    assert!(!data.join("links").exists(), "pty links removed");
    assert!(!data.join("control").exists(), "control sockets removed");
    assert!(
        data.join("server/custos.db").exists(),
        "the database stays until the next start"
    );

    // Again, on the same directory and on an address asked for: a fresh site, new passwords,
    // the old ones refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let asked = free.local_addr().unwrap().to_string();
    drop(free);
    let mut demo = Demo::spawn(&data, &["--no-scenario", "--listen", &asked]);
    let url = demo.url().await;
    assert_eq!(url, format!("http://{asked}"), "serves where --listen says");
    let (user, new_password) = demo.login("guard").await;
    assert!(
        demo.seen.iter().any(|l| l.contains("wiped")),
        "says it started afresh: {:#?}",
        demo.seen
    );
    let api = ApiClient::new(&url);
    let guard = api.login(&user, &new_password).await.expect("new login");
    let refused = api.login(&user, &password).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    let open = guard.get("/api/v1/alerts?state=open").await.unwrap();
    assert!(
        !open
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "unauthorized_removal"),
        "the old day is gone: {open}"
    );
    let (status, seen) = demo.interrupt().await;
    assert!(status.success(), "{status}; output: {seen:#?}");
}
