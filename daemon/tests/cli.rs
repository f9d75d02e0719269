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

/// A pseudo-terminal standing in for a scanner's serial port: its slave's path. The pair stays
/// open as long as the returned runtime and streams live.
fn pty() -> (
    tokio::runtime::Runtime,
    (tokio_serial::SerialStream, tokio_serial::SerialStream),
    String,
) {
    use tokio_serial::SerialPort as _;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pair = rt
        .block_on(async { tokio_serial::SerialStream::pair() })
        .unwrap();
    let path = pair.1.name().unwrap();
    (rt, pair, path)
}

#[test]
fn check_opens_every_device_once_and_prints_a_line_for_each() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, _pair, tty) = pty();
    let key = dir.path().join("gate-1.key");
    DeviceKey::generate(&key).unwrap();
    // Nothing listens on this port: the gate I/O fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gate_io = closed.local_addr().unwrap();
    drop(closed);
    let write = |gate: &str| {
        let config = dir.path().join("custosd.toml");
        std::fs::write(
            &config,
            format!(
                "device_id = \"desk-1\"\nserver = \"http://127.0.0.1:9\"\nkey_file = \"gate-1.key\"\n\
                 data_dir = \"data\"\n[[readers]]\nname = \"scanner\"\nprotocol = \"barcode\"\n\
                 port = \"{tty}\"\n{gate}"
            ),
        )
        .unwrap();
        config
    };
    let config = write("");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    // Nothing answers at the server's address: the reader is fine, the server is not (a check
    // against a real server is in the end-to-end tests).
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("readers[0] (scanner): ok: barcode: ") && lines[0].contains(&tty),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("server: FAILED: http://127.0.0.1:9 cannot be reached: "),
        "{stdout}"
    );
    assert!(text(&out.stderr).contains("1 of 2 checks failed (see above)"));
    assert!(key.exists());

    let config = write(&format!(
        "[gate_io]\ntransport = \"tcp\"\naddress = \"{gate_io}\"\ncall_timeout_ms = 300\n"
    ));
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("readers[0] (scanner): ok: "), "{stdout}");
    assert!(stdout.contains("gate_io: FAILED: "), "{stdout}");
    assert!(!stdout.contains("ok: device="), "{stdout}");
    let err = text(&out.stderr);
    // The failure is named once, on its stdout line; the summary only counts.
    assert!(err.contains("2 of 3 checks failed (see above)"), "{err}");
    assert!(!err.contains("gate_io: FAILED"), "{err}");
}

#[test]
fn check_validates_file_key_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file is not a serial port: the reader cannot be opened.
    std::fs::write(dir.path().join("tty0"), b"").unwrap();
    let config = write_config(dir.path(), "tty0", "http://127.0.0.1:9", "");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).starts_with("readers[0] (uhf-main): FAILED: cannot open "),
        "{}",
        text(&out.stdout)
    );

    let config = write_config(dir.path(), "tty-absent", "http://127.0.0.1:9", "");
    let out = custosd(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("readers[0].port") && stdout.contains("tty-absent"),
        "{stdout}"
    );
    assert!(!err.contains("tty-absent"), "named once: {err}");

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

/// Issue #14: the unit's key file is the one `print-config` names (relative to the unit's
/// configuration directory), and the unit does not run `check` before starting: a reader
/// unplugged at boot must not keep the daemon down.
#[test]
fn the_systemd_unit_uses_the_printed_key_name_and_starts_without_check() {
    let unit = include_str!("../custosd.service");
    let config = Config::parse(EXAMPLE_GATE, Path::new("/etc/custosd/custosd.toml")).unwrap();
    let key = config.key_file.display().to_string();
    assert_eq!(key, "/etc/custosd/gate-1.key");
    assert!(
        unit.contains(&format!("custosd keygen --out {key} ")),
        "{unit}"
    );
    assert!(
        unit.contains(&format!("chown custosd:custosd {key} ")),
        "{unit}"
    );
    assert!(unit.contains("custosd print-config > /etc/custosd/custosd.toml"));
    let lines: Vec<&str> = unit.lines().collect();
    assert!(lines.contains(&"ExecStart=/usr/bin/custosd run --config /etc/custosd/custosd.toml"));
    assert!(
        !lines.iter().any(|l| l.starts_with("ExecStartPre=")),
        "{unit}"
    );
    assert!(lines.contains(&format!("ReadWritePaths={}", config.data_dir.display()).as_str()));
}

/// Issue #14: a reader that is unplugged at start does not stop the daemon: it starts (the
/// missing port is logged) and runs; the reader reports its fault from then on. Text logs off
/// a terminal carry no colour codes.
#[test]
fn run_starts_with_an_unplugged_reader() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = write_config(dir.path(), "tty-unplugged", &server, "");
    let daemon = Running::start(&["run", "--config", config.to_str().unwrap()]);
    let missing = daemon.wait_for("tty-unplugged");
    assert!(missing.contains("does not exist"), "{missing}");
    let running = daemon.wait_for("custosd running");
    assert!(
        !running.contains('\u{1b}') && !missing.contains('\u{1b}'),
        "{running:?}"
    );
    assert!(daemon.terminate().success());
}
