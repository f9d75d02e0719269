//! Tests of the real `custos-server` binary: init, serve on port 0, login, shutdown, and
//! `audit verify` exit codes (including a row edited behind the server's back).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use common::binary::{Serving, run, text};
use custos_server::config::Config;
use hyper::Method;
use serde_json::json;

const PASSWORD: &str = "cli operator secret";

fn init(data_dir: &Path, password: &str) -> Output {
    let pw_file = data_dir.with_extension("pw");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(&[
        "init",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--admin-user",
        "root",
        "--admin-password-file",
        pw_file.to_str().unwrap(),
    ])
}

#[tokio::test]
async fn init_serve_login_shutdown_and_verify() {
    common::tracing();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let out = init(&data, PASSWORD);
    assert!(out.status.success(), "init: {}", text(&out.stderr));
    let mode = std::fs::metadata(data.join("server.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the signing key is private");
    assert!(data.join("custos.db").exists());

    let again = init(&data, PASSWORD);
    assert!(!again.status.success(), "a second init must be refused");
    assert!(
        text(&again.stderr).contains("already initialised"),
        "{}",
        text(&again.stderr)
    );

    let serving = Serving::start(&data);
    let health = common::call(serving.addr, Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    let login = common::call(
        serving.addr,
        Method::POST,
        "/api/v1/session",
        None,
        Some(json!({"username": "root", "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["roles"], json!(["admin"]));
    let token = login.body["token"].as_str().unwrap().to_owned();
    let zone = common::call(
        serving.addr,
        Method::POST,
        "/api/v1/zones",
        Some(&token),
        Some(json!({"id": "vault", "name": "Vault", "level": "TS"})),
    )
    .await;
    assert_eq!(zone.status, 201);
    serving.terminate();

    let out = run(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", text(&out.stderr));
    // init's user, the session, the zone; the head was signed at shutdown.
    assert!(
        stdout.contains("intact: 3 entries, signed through entry 3"),
        "{stdout}"
    );

    // Edit entry 2 with a raw connection, as someone with access to the file could.
    let conn = rusqlite::Connection::open(data.join("custos.db")).unwrap();
    conn.execute_batch("DROP TRIGGER audit_no_update").unwrap();
    conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 2", [])
        .unwrap();
    drop(conn);
    let out = run(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("first bad entry 2 "), "{stdout}");
}

#[test]
fn a_failed_init_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = init(&data, "short");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("at least 12 characters"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.join("custos.db").exists() && !data.join("server.key").exists());
    let out = init(&data, PASSWORD);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn serve_refuses_an_uninitialised_directory_and_a_bad_config() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "serve",
        "--data-dir",
        tmp.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not initialised"),
        "{}",
        text(&out.stderr)
    );

    let config = tmp.path().join("custos.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nsesion_ttl_secs = 60\n").unwrap();
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 2") && stderr.contains("sesion_ttl_secs"),
        "{stderr}"
    );
}

#[test]
fn print_config_parses_back_to_the_defaults() {
    let out = run(&["print-config"]);
    assert!(out.status.success());
    let config = Config::parse(&text(&out.stdout), "print-config").unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn verify_of_a_missing_directory_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "audit",
        "verify",
        "--data-dir",
        tmp.path().join("none").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not initialised"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue #9: under the usual umask 022 the database, its `-wal` and `-shm`, the key and the
/// anchor file are the server's user's alone (0600), the data directory 0700.
#[tokio::test]
async fn data_files_are_private_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let anchor = tmp.path().join("anchor");
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = tmp.path().join("custos.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[audit]\nanchor_file = {:?}\n",
            data.to_str().unwrap(),
            anchor.to_str().unwrap()
        ),
    )
    .unwrap();
    // `sh -c 'umask 022; exec BIN ARGS'`: the binary starts with umask 022 whatever ours is.
    let under_umask = |args: &[&str]| {
        let mut all = vec!["-c", "umask 022; exec \"$0\" \"$@\"", common::binary::BIN];
        all.extend_from_slice(args);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let out = std::process::Command::new("sh")
        .args(under_umask(&[
            "init",
            "--data-dir",
            data.to_str().unwrap(),
            "--admin-user",
            "root",
            "--admin-password-file",
            pw.to_str().unwrap(),
        ]))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let args = under_umask(&["serve", "--config", config.to_str().unwrap()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let serving = Serving::start_command("sh", &args);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for name in ["custos.db", "custos.db-wal", "custos.db-shm", "server.key"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    assert_eq!(mode(&anchor), 0o600);
    // Served once: the signal handlers are installed (a SIGTERM right after the listening
    // line would still find the default action).
    let health = common::call(serving.addr, Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    serving.terminate();
}

/// `serve` with stderr captured (not a terminal) until its listening line, then SIGTERM: what
/// it logged, line by line.
fn serve_logs(data: &Path, format: Option<&str>) -> Vec<String> {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let mut args: Vec<&str> = Vec::new();
    if let Some(format) = format {
        args.extend(["--log-format", format]);
    }
    args.extend([
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos-server"))
        .args(&args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("listening on http://"), "{first:?}");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<String> = stderr.lines().map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    assert!(!lines.is_empty(), "serve logged nothing at info");
    lines
}

/// Issue #14: no ANSI colour codes when stderr is not a terminal (a journal, a file), and
/// `--log-format json` gives one JSON object per line, for journald and ELK.
#[test]
fn logs_are_plain_off_a_terminal_and_json_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(init(&data, PASSWORD).status.success());
    let text_lines = serve_logs(&data, None);
    for line in &text_lines {
        assert!(!line.contains('\u{1b}'), "colour code in {line:?}");
    }
    let json_lines = serve_logs(&data, Some("json"));
    for line in &json_lines {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(entry["level"].is_string(), "{entry}");
    }
    assert!(
        json_lines.iter().any(|l| l.contains("server stopped")),
        "{json_lines:?}"
    );
}

/// Issue #14: the server's systemd unit, next to the daemon's, is hardened, runs as a
/// dedicated user in the data directory `print-config` defaults to, and its command line is one
/// the binary accepts.
#[test]
fn the_systemd_unit_is_hardened_and_runs_the_default_data_dir() {
    use clap::Parser as _;
    let unit = include_str!("../custos-server.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "User=custos",
        "Group=custos",
        "StateDirectory=custos",
        "ReadWritePaths=/var/lib/custos",
        "CapabilityBoundingSet=",
        "PrivateDevices=yes",
    ] {
        assert!(lines.contains(&want), "{want} missing from the unit");
    }
    // StateDirectory=custos is /var/lib/custos: the default data directory.
    assert_eq!(Config::default().data_dir, Path::new("/var/lib/custos"));
    let exec = lines
        .iter()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[0], "/usr/bin/custos-server");
    let cli = custos_server::cli::Cli::try_parse_from(&args).unwrap();
    assert!(matches!(cli.command, custos_server::cli::Command::Serve(_)));
}
