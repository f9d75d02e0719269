//! A mistake at the command line is one clear line on stderr, also with `RUST_BACKTRACE=1` in
//! the environment (issue #9), for all three binaries: configuration errors, a short password,
//! an initialised data directory, a missing file, an open password file; and `custosd check`
//! names a missing reader port once.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use custos_e2e::bins::binaries;
use custos_e2e::*;

fn run(bin: &Path, args: &[&str]) -> Output {
    std::process::Command::new(bin)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the binary")
}

/// The command failed with exactly one line on stderr, containing `expected`.
fn one_line(what: &str, out: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{what}: succeeded: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: not one line:\n{stderr}");
    assert!(
        stderr.contains(expected),
        "{what}: {expected:?} not in {stderr:?}"
    );
    stderr
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn server_errors_are_one_line() {
    let server = &binaries().server;
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name).to_str().unwrap().to_owned();
    let short = dir("short.pw");
    private(Path::new(&short), "short\n");
    let good = dir("good.pw");
    private(Path::new(&good), "a long enough password\n");
    let open = dir("open.pw");
    std::fs::write(&open, "a long enough password\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bad_config = dir("bad.toml");
    std::fs::write(
        &bad_config,
        "listen = \"127.0.0.1:0\"\nsesion_ttl_secs = 60\n",
    )
    .unwrap();
    let wrong_type = dir("wrong.toml");
    std::fs::write(&wrong_type, "\nlisten = 8080\n").unwrap();
    let init = |data: &str, pw: &str| {
        run(
            server,
            &[
                "init",
                "--data-dir",
                data,
                "--admin-user",
                "root",
                "--admin-password-file",
                pw,
            ],
        )
    };

    one_line("short password", &init(&dir("d1"), &short), "12");
    one_line(
        "open password file",
        &init(&dir("d1"), &open),
        "readable by group or others",
    );
    one_line(
        "missing password file",
        &init(&dir("d1"), &dir("none.pw")),
        "none.pw",
    );
    assert!(init(&dir("d2"), &good).status.success());
    one_line(
        "initialised",
        &init(&dir("d2"), &good),
        "already initialised",
    );
    one_line(
        "unknown key",
        &run(server, &["serve", "--config", &bad_config]),
        "sesion_ttl_secs",
    );
    one_line(
        "wrong type",
        &run(server, &["serve", "--config", &wrong_type]),
        "listen",
    );
    one_line(
        "missing config",
        &run(server, &["serve", "--config", &dir("none.toml")]),
        "none.toml",
    );
    one_line(
        "not initialised",
        &run(server, &["audit", "verify", "--data-dir", &dir("d3")]),
        "not initialised",
    );
    one_line(
        "missing anchor",
        &run(
            server,
            &[
                "audit",
                "verify",
                "--data-dir",
                &dir("d2"),
                "--anchor",
                &dir("none.anchor"),
            ],
        ),
        "none.anchor",
    );
    one_line(
        "bad argument",
        &run(server, &["serve", "--bogus"]),
        "--bogus",
    );
}

#[test]
fn daemon_and_simulator_errors_are_one_line() {
    let (daemon, sim) = (&binaries().daemon, &binaries().sim);
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name);
    one_line(
        "missing config",
        &run(
            daemon,
            &["run", "--config", path("none.toml").to_str().unwrap()],
        ),
        "none.toml",
    );
    let bad = path("bad.toml");
    std::fs::write(&bad, "device_id = \"gate-1\"\nbogus = 1\n").unwrap();
    one_line(
        "bad config",
        &run(daemon, &["check", "--config", bad.to_str().unwrap()]),
        "bogus",
    );

    // A reader port that does not exist: named once in everything `check` says.
    let key = path("gate.key");
    let out = run(daemon, &["keygen", "--out", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = path("ttyMISSING");
    let config = path("gate.toml");
    std::fs::write(
        &config,
        daemon_config(
            "gate-1",
            SocketAddr::from(([127, 0, 0, 1], 9)),
            &key,
            &path("data"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            &port,
            None,
            DaemonTuning::default(),
        ),
    )
    .unwrap();
    let out = run(daemon, &["check", "--config", config.to_str().unwrap()]);
    let stderr = one_line("missing port", &out, "failed");
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        all.matches("ttyMISSING").count(),
        1,
        "the missing port is named once:\n{all}"
    );

    one_line(
        "simulator: bad listen address",
        &run(sim, &["gate-io", "--listen", "not-an-address"]),
        "not-an-address",
    );
    one_line(
        "simulator: bad protocol",
        &run(
            sim,
            &[
                "uhf-reader",
                "--protocol",
                "nope",
                "--link",
                path("l").to_str().unwrap(),
            ],
        ),
        "nope",
    );
}
