//! The real `custos-server` binary, for the tests that run it: one-shot commands, and a
//! `serve` child that announced its address.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The server binary this package built.
pub const BIN: &str = env!("CARGO_BIN_EXE_custos-server");

/// Runs `custos-server ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run custos-server")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `serve` child and the address it announced.
pub struct Serving {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Serving {
    pub fn start(data_dir: &Path) -> Serving {
        Serving::start_with(&[
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
    }

    /// `custos-server ARGS` (a `serve` command line), once it announced its address.
    pub fn start_with(args: &[&str]) -> Serving {
        Serving::start_command(BIN, args)
    }

    /// `PROGRAM ARGS` that execs a `serve`, once it announced its address.
    pub fn start_command(program: &str, args: &[&str]) -> Serving {
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Bounded only so that a broken server fails the test instead of hanging it.
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve printed its listening line");
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Serving { child, addr }
    }

    /// SIGTERM, then wait for a clean exit (the audit head is signed on the way out).
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
