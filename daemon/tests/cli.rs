//! The `custosd` binary: keygen, print-config, check and run, as scripts and operators use them.
//! Waits read the daemon's stderr line by line with a deadline; nothing sleeps a fixed time.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use custos_daemon::config::{Config, EXAMPLE_GATE, Role};
use custos_daemon::keys::DeviceKey;

const DEADLINE: Duration = Duration::from_secs(30);

fn custosd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custosd"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keygen_creates_a_private_key_prints_its_public_half_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate-1.key");
    let out = custosd(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let printed = text(&out.stdout);
    let key = DeviceKey::load(&path).unwrap();
    assert_eq!(printed, format!("{}\n", key.public_key()));
    assert_eq!(printed.trim().len(), 44, "standard base64 of 32 bytes");

    let before = std::fs::read(&path).unwrap();
    let again = custosd(&["keygen", "--out", path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn print_config_prints_the_example_and_it_parses_back() {
    let out = custosd(&["print-config"]);
    assert!(out.status.success());
    let printed = text(&out.stdout);
    assert_eq!(printed, EXAMPLE_GATE);
    let config = Config::parse(&printed, Path::new("/etc/custosd/custosd.toml")).unwrap();
    assert_eq!(config.role(), Role::Gate);
    assert!(!printed.contains("PRIVATE"), "no secrets in the example");
}

/// A gate configuration in `dir` with a fresh key; the reader's port is `port` (relative to
/// `dir`).
fn write_config(dir: &Path, port: &str, server: &str, extra: &str) -> std::path::PathBuf {
    let key = dir.join("gate-1.key");
    if !key.exists() {
        DeviceKey::generate(&key).unwrap();
    }
    let config = dir.join("custosd.toml");
    std::fs::write(
        &config,
        format!(
            "device_id = \"gate-1\"\nserver = \"{server}\"\nkey_file = \"gate-1.key\"\n\
             data_dir = \"data\"\n{extra}\n[[readers]]\nname = \"uhf-main\"\nprotocol = \"uhf-a0\"\n\
             port = \"{port}\"\ninner_antennas = [1, 2]\nouter_antennas = [3, 4]\n"
        ),
    )
    .unwrap();
    config
}

#[test]
fn check_validates_file_key_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tty0"), b"").unwrap();
    let config = write_config(dir.path(), "tty0", "http://127.0.0.1:9", "");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = DeviceKey::load(&dir.path().join("gate-1.key")).unwrap();
    assert_eq!(
        text(&out.stdout),
        format!(
            "ok: device=gate-1 role=Gate readers=1 public_key={}\n",
            key.public_key()
        )
    );

    let config = write_config(dir.path(), "tty-absent", "http://127.0.0.1:9", "");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("readers[0].port") && err.contains("tty-absent"),
        "{err}"
    );

    let config = write_config(dir.path(), "tty0", "http://127.0.0.1:9", "colour = \"red\"");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("custosd.toml:5:1:") && err.contains("unknown field `colour`"),
        "{err}"
    );

    std::fs::set_permissions(
        dir.path().join("gate-1.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = write_config(dir.path(), "tty0", "http://127.0.0.1:9", "");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("key_file") && err.contains("chmod 600"),
        "{err}"
    );
}

/// Stderr lines of a running daemon, read on a thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_custosd"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The first stderr line containing `needle`.
    fn wait_for(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line containing {needle:?}: {e}"),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for("stopped");
        self.child.wait().unwrap()
    }
}

#[test]
fn run_starts_reports_its_epoch_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tty0"), b"").unwrap();
    // A port nothing listens on: the uplink fails and retries, the daemon keeps running.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = write_config(dir.path(), "tty0", &server, "");
    let config = config.to_str().unwrap();

    let daemon = Running::start(&["run", "--config", config]);
    let line = daemon.wait_for("custosd running");
    assert!(
        line.contains("custosd running device=gate-1 epoch=1 role=Gate"),
        "{line}"
    );
    assert!(dir.path().join("data/outbox.db").exists());
    assert!(daemon.terminate().success());

    // The epoch is persisted; JSON logs on request.
    let daemon = Running::start(&["--log-format", "json", "run", "--config", config]);
    let line = daemon.wait_for("custosd running");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        json["fields"]["message"],
        "custosd running device=gate-1 epoch=2 role=Gate readers=1"
    );
    assert!(daemon.terminate().success());
}
