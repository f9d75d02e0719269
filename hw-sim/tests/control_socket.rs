//! The control socket, end to end on a barcode scanner over a real pty: good ops act, bad ones are
//! refused without effect, several clients work at once, the socket file is managed.

mod common;

use std::path::PathBuf;

use common::{ControlClient, TempDir, assert_quiet, init_tracing, open_host, read_n, within};
use custos_sim::barcode::{BarcodeScanner, Terminator};
use custos_sim::control::MAX_LINE;
use custos_sim::{ControlSocket, PtyLink, SimError, run_serial_device};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    _dir: TempDir,
    link: PathBuf,
    control: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), SimError>>,
}

fn start(label: &str) -> Running {
    init_tracing();
    let dir = TempDir::new(label);
    let link = dir.join("scanner");
    let control = dir.join("control.sock");
    let pty = PtyLink::open(&link).unwrap();
    let socket = ControlSocket::bind(&control).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let scanner = BarcodeScanner::new(Terminator::Cr, None);
    let task = tokio::spawn(run_serial_device(scanner, pty, Some(socket), async {
        let _ = stopped.await;
    }));
    Running {
        _dir: dir,
        link,
        control,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        within("device stop", self.task).await.unwrap().unwrap();
        assert!(
            std::fs::symlink_metadata(&self.control).is_err(),
            "control socket removed"
        );
        assert!(
            std::fs::symlink_metadata(&self.link).is_err(),
            "link removed"
        );
    }
}

#[tokio::test]
async fn good_ops_act_and_bad_ones_change_nothing() {
    let sim = start("ops");
    let mut host = open_host(&sim.link);
    let mut ctl = ControlClient::connect(&sim.control).await;

    ctl.ok(r#"{"op":"scan","text":"CU-1"}"#).await;
    assert_eq!(read_n(&mut host, 5).await, b"CU-1\r");

    let refusals = [
        ("{not json", "malformed request"),
        (r#"{"op":"launch"}"#, "unknown variant `launch`"),
        (r#"{"op":"scan"}"#, "missing field `text`"),
        (
            r#"{"op":"scan","text":"A","extra":true}"#,
            "unknown field `extra`",
        ),
        (
            r#"{"op":"scan","text":"A\rB"}"#,
            "bad text: control character U+000D",
        ),
        (
            r#"{"op":"card","hex":"1A00B54E12"}"#,
            "barcode does not support op \"card\"",
        ),
        (r#"{"op":"garbage","hex":"0"}"#, "odd number of hex digits"),
        (r#"{"op":"garbage","hex":""}"#, "bad hex: no bytes"),
    ];
    for (line, needle) in refusals {
        let error = ctl.refused(line).await;
        assert!(error.contains(needle), "{line}: {error:?} lacks {needle:?}");
    }
    // Blank lines get no answer: the first answer is the scan's.
    ctl.ok("\n\r\n{\"op\":\"scan\",\"text\":\"CU-2\"}").await;
    assert_eq!(
        read_n(&mut host, 5).await,
        b"CU-2\r",
        "nothing from the refused ops came before"
    );
    sim.stop().await;
}

#[tokio::test]
async fn oversized_and_non_utf8_lines_are_refused() {
    let sim = start("sizes");
    let mut host = open_host(&sim.link);
    let mut ctl = ControlClient::connect(&sim.control).await;
    let long = format!(r#"{{"op":"scan","text":"{}"}}"#, "x".repeat(MAX_LINE));
    let error = ctl.refused(&long).await;
    assert!(error.contains("longer than"), "{error}");
    let mut raw = BufReader::new(UnixStream::connect(&sim.control).await.unwrap());
    raw.get_mut().write_all(b"\xFF\xFE\n").await.unwrap();
    let mut answer = String::new();
    within("answer", raw.read_line(&mut answer)).await.unwrap();
    assert_eq!(
        answer,
        "{\"ok\":false,\"error\":\"malformed request: not UTF-8\"}\n"
    );
    ctl.ok(r#"{"op":"scan","text":"after"}"#).await;
    assert_eq!(read_n(&mut host, 6).await, b"after\r");
    sim.stop().await;
}

#[tokio::test]
async fn several_clients_at_once() {
    let sim = start("clients");
    let mut host = open_host(&sim.link);
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(ControlClient::connect(&sim.control).await);
    }
    // All connected at once; each gets its own answers, interleaved.
    for round in 0..3 {
        for (i, client) in clients.iter_mut().enumerate() {
            client
                .ok(&format!(r#"{{"op":"scan","text":"{i}{round}"}}"#))
                .await;
            let error = client.refused(r#"{"op":"input","n":0,"value":true}"#).await;
            assert!(error.contains("does not support"), "{error}");
        }
    }
    let expected: Vec<u8> = (0..3)
        .flat_map(|round| (0..4).map(move |i| format!("{i}{round}\r")))
        .collect::<String>()
        .into_bytes();
    assert_eq!(read_n(&mut host, expected.len()).await, expected);
    // Many concurrent clients racing: every op is applied exactly once.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let path = sim.control.clone();
            tokio::spawn(async move {
                let mut client = ControlClient::connect(&path).await;
                client
                    .ok(&format!(r#"{{"op":"scan","text":"R{i}"}}"#))
                    .await;
            })
        })
        .collect();
    for racer in racers {
        within("racer", racer).await.unwrap();
    }
    let mut got = read_n(&mut host, 8 * 3).await;
    got.sort_unstable();
    let mut want: Vec<u8> = (0..8)
        .flat_map(|i| format!("R{i}\r").into_bytes())
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
    sim.stop().await;
}

#[tokio::test]
async fn silence_and_garbage_over_the_socket() {
    let sim = start("faults");
    let mut host = open_host(&sim.link);
    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(r#"{"op":"silence","on":true}"#).await;
    ctl.ok(r#"{"op":"scan","text":"lost"}"#).await;
    ctl.ok(r#"{"op":"garbage","hex":"00ff0D0a"}"#).await;
    assert_eq!(read_n(&mut host, 4).await, [0x00, 0xFF, 0x0D, 0x0A]);
    assert_quiet(&mut host).await;
    ctl.ok(r#"{"op":"silence","on":false}"#).await;
    ctl.ok(r#"{"op":"scan","text":"back"}"#).await;
    assert_eq!(read_n(&mut host, 5).await, b"back\r");
    sim.stop().await;
}

#[tokio::test]
async fn socket_files_are_managed() {
    init_tracing();
    let dir = TempDir::new("sockfile");
    // A stale socket (nobody accepting) is replaced.
    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(std::fs::symlink_metadata(&stale).is_ok());
    let socket = ControlSocket::bind(&stale).unwrap();
    // A live one is refused, and stays usable.
    match ControlSocket::bind(&stale) {
        Err(SimError::ControlInUse(p)) => assert_eq!(p, stale),
        other => panic!("expected ControlInUse, got {other:?}"),
    }
    assert!(std::fs::symlink_metadata(&stale).is_ok());
    drop(socket);
    assert!(
        std::fs::symlink_metadata(&stale).is_err(),
        "removed on drop"
    );
    // A regular file is never replaced.
    let file = dir.join("file");
    std::fs::write(&file, b"keep").unwrap();
    assert!(matches!(
        ControlSocket::bind(&file),
        Err(SimError::ControlOccupied(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
}
