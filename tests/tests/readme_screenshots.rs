//! The README's screenshots, one per role, taken from the DEMO: this test starts the built
//! `custos-sim demo` (its own server, devices, daemons and seed) on a free port, reads the URL
//! and the logins it prints, waits until the scenario has played the morning (the clock of its
//! step lines past [`PLAYED_UNTIL`]: sign-outs out, alarms raised, a carrier missing, a loan
//! overdue), then signs in as each role in headless Chromium at 1400 px and saves
//! `docs/screenshots/{guard,security_officer,custodian,auditor,admin}.png`.
//!
//! ```text
//! cargo test -p custos-e2e --test readme_screenshots -- --ignored
//! ```
//!
//! It is `#[ignore]`d because it rewrites files in the repository and plays minutes of the
//! demo; run it after a page changes and commit the pictures.

#[path = "browser/scene.rs"]
#[allow(dead_code)]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::wait_css;
use webdriver::{Driver, Session, WdResult};

/// The scenario time the demo has played to before the pictures are taken (HH:MM).
const PLAYED_UNTIL: &str = "12:05";
/// The scenario speed: the morning plays in about a minute and a half.
const SPEED: &str = "2";
/// The longest the demo may take to start and to play the morning.
const DEMO_DEADLINE: Duration = Duration::from_secs(600);
/// The window the pictures are taken in.
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;

/// Each role's picture: who signs in, the page, the element that says the page is ready.
const PICTURES: &[(&str, &str, &str, &str)] = &[
    // (file name, username, path, ready when this is on the page)
    (
        "guard",
        "guard",
        "/guard",
        r#"#live-status[data-live="on"]"#,
    ),
    ("security_officer", "officer1", "/officer", "#current-user"),
    ("custodian", "custodian", "/carriers", "#current-user"),
    ("auditor", "auditor", "/audit", "#audit-table"),
    ("admin", "admin", "/admin/devices", "#device-table"),
];

/// The running demo, stopped when dropped (also when a step of the test panics).
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// Start `custos-sim demo` on a free port in a fresh directory; its stdout is read line by
    /// line on a thread.
    fn start(sim: &Path) -> Demo {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut child = Command::new(sim)
            .args([
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--speed",
                SPEED,
                "--data-dir",
            ])
            .arg(dir.path().join("demo"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", sim.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("demo | {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Demo {
            child,
            lines,
            _dir: dir,
        }
    }

    /// The next line the demo prints, before `deadline`.
    fn next_line(&self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("the demo printed nothing more in time ({e})"))
    }
}

/// What the demo's banner says: the site's URL and each username's password.
struct Banner {
    url: String,
    passwords: HashMap<String, String>,
}

/// Read the banner: `Custos is running at URL`, then the logins table (`role username
/// password`) up to the line that lists the pages.
fn read_banner(demo: &Demo, deadline: Instant) -> Banner {
    let mut url = None;
    let mut passwords = HashMap::new();
    let mut in_logins = false;
    loop {
        let line = demo.next_line(deadline);
        if let Some(rest) = line.trim().strip_prefix("Custos is running at ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        } else if line.trim_start().starts_with("role ") {
            in_logins = true;
        } else if in_logins {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                [_role, username, password] => {
                    passwords.insert(username.to_owned(), password.to_owned());
                }
                _ => break,
            }
        }
    }
    Banner {
        url: url.expect("the demo printed its URL before its logins"),
        passwords,
    }
}

/// The scenario time of a step line (`[09:14 | …] …`), as `HH:MM`.
fn scenario_time(line: &str) -> Option<&str> {
    let time = line.strip_prefix('[')?.get(..5)?;
    let digits = time.bytes().enumerate().all(|(i, b)| match i {
        2 => b == b':',
        _ => b.is_ascii_digit(),
    });
    digits.then_some(time)
}

/// Wait until the scenario's clock has passed `until`.
fn wait_played(demo: &Demo, until: &str, deadline: Instant) {
    loop {
        let line = demo.next_line(deadline);
        if scenario_time(&line).is_some_and(|t| t >= until) {
            return;
        }
    }
}

async fn sign_in(session: &Session, url: &str, username: &str, password: &str) -> WdResult<()> {
    session.goto(&format!("{url}login")).await?;
    let user = wait_css(session, "#login-username").await?;
    session.send_keys(&user, username).await?;
    let field = session.find("#login-password").await?;
    session.send_keys(&field, password).await?;
    let submit = session.find("#login-submit").await?;
    session.click(&submit).await?;
    wait_css(session, "#current-user").await?;
    Ok(())
}

async fn sign_out(session: &Session) -> WdResult<()> {
    let logout = wait_css(session, "#logout-submit").await?;
    session.click(&logout).await?;
    wait_css(session, "#login-username").await?;
    Ok(())
}

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/screenshots")
        .join(format!("{name}.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rewrites docs/screenshots from a demo run; run by hand after a page changes"]
async fn readme_screenshots_from_the_demo() {
    let sim = custos_e2e::bins::binaries().sim.clone();
    let demo = Demo::start(&sim);
    let deadline = Instant::now() + DEMO_DEADLINE;
    let banner = read_banner(&demo, deadline);
    wait_played(&demo, PLAYED_UNTIL, deadline);

    let driver = Driver::start().await;
    let session = driver.session().await;
    session
        .set_window_size(WIDTH, HEIGHT)
        .await
        .expect("window size");
    for (name, username, path, ready) in PICTURES {
        let password = banner
            .passwords
            .get(*username)
            .unwrap_or_else(|| panic!("the demo printed no login for {username}"));
        let taken = async {
            sign_in(&session, &banner.url, username, password).await?;
            session
                .goto(&format!("{}{}", banner.url, path.trim_start_matches('/')))
                .await?;
            wait_css(&session, ready).await?;
            let file = screenshot_path(name);
            session
                .save_screenshot(&file)
                .await
                .unwrap_or_else(|e| panic!("screenshot {}: {e}", file.display()));
            eprintln!("screenshot: {}", file.display());
            sign_out(&session).await
        };
        taken
            .await
            .unwrap_or_else(|e| panic!("{name} ({username} on {path}): {e}"));
    }
    session.delete().await.expect("closing the browser session");
}

#[test]
fn a_step_line_tells_the_scenario_time() {
    assert_eq!(
        scenario_time("[09:14 | 10:02:03] custodian issues"),
        Some("09:14")
    );
    assert_eq!(scenario_time("[+00:12 | 10:02:03] starting"), None);
    assert_eq!(scenario_time("Custos is running at"), None);
    assert!(Some("12:30") >= Some(PLAYED_UNTIL));
}
