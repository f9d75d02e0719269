//! The daemon's LLRP reader driver (`custos_daemon::readers::run_reader`, as custosd runs it)
//! against our simulated LLRP reader over real TCP on port 0, and against an independent LLRP
//! implementation: llrpkit's reader emulator (`llrpkit emulate`, PyPI `llrpkit==0.3.0`).
//!
//! The llrpkit tests find the emulator through `CUSTOS_LLRPKIT_VENV` (a virtual environment with
//! llrpkit installed; `.ci/run` creates it and sets the variable). Without the variable they are
//! skipped with a note on stderr, except under CI (`CI` set), where a missing emulator fails.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{ControlClient, TempDir, init_tracing, within};
use custos_daemon::model::ReaderOutput;
use custos_daemon::readers::{self, Protocol, ReaderSettings};
use custos_protocol::uplink::{HealthState, ReaderFault};
use custos_sim::ControlSocket;
use custos_sim::llrp_reader::{GpoChange, LlrpReader, run_llrp_reader};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The issue's bound: a killed reader is a reader fault within 5 s.
const FAULT_BOUND: Duration = Duration::from_secs(5);

const EPC: &str = "3474257BF40000000000162E";

struct Sim {
    _dir: TempDir,
    addr: SocketAddr,
    control: PathBuf,
    gpo: mpsc::UnboundedReceiver<GpoChange>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), custos_sim::SimError>>,
}

async fn start_sim() -> Sim {
    init_tracing();
    let dir = TempDir::new("llrp");
    let control = dir.join("llrp.sock");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let socket = ControlSocket::bind(&control).unwrap();
    let (gpo_tx, gpo) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_llrp_reader(
        listener,
        LlrpReader::new(),
        Some(socket),
        gpo_tx,
        async {
            let _ = stopped.await;
        },
    ));
    Sim {
        _dir: dir,
        addr,
        control,
        gpo,
        stop,
        task,
    }
}

fn settings(address: &str, antennas: Vec<u8>) -> ReaderSettings {
    ReaderSettings {
        antennas,
        network: Some(address.to_owned()),
        backoff_max: Duration::from_millis(500),
        keepalive: Duration::from_millis(300),
        watchdog: Duration::from_secs(1),
        ..ReaderSettings::new("portal", Protocol::Llrp, "")
    }
}

/// Runs the driver; returns its outputs and a handle whose drop stops it.
fn start_driver(s: ReaderSettings) -> (mpsc::Receiver<ReaderOutput>, oneshot::Sender<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(readers::run_reader(s, tx, async {
        let _ = stopped.await;
    }));
    (rx, stop)
}

/// The next tag read, skipping health reports.
async fn next_tag(rx: &mut mpsc::Receiver<ReaderOutput>) -> (String, u8) {
    loop {
        match rx.recv().await.expect("driver ended") {
            ReaderOutput::Tag { read, .. } => return (read.epc.to_string(), read.antenna),
            _ => continue,
        }
    }
}

/// Waits for a health report in fault; returns the fault.
async fn next_fault(rx: &mut mpsc::Receiver<ReaderOutput>) -> ReaderFault {
    loop {
        if let ReaderOutput::Health { health, .. } = rx.recv().await.expect("driver ended") {
            if health.state == HealthState::Fault {
                if let Some(f) = health.fault {
                    return f;
                }
            }
        }
    }
}

async fn wait_ok(rx: &mut mpsc::Receiver<ReaderOutput>) {
    loop {
        if let ReaderOutput::Health { health, .. } = rx.recv().await.expect("driver ended") {
            if health.state == HealthState::Ok {
                return;
            }
        }
    }
}

#[tokio::test]
async fn tags_in_the_sim_field_arrive_as_reads_and_a_killed_reader_is_a_fault() {
    let sim = start_sim().await;
    let (mut rx, _stop) = start_driver(settings(&sim.addr.to_string(), vec![1, 2]));
    within("reader ok", wait_ok(&mut rx)).await;
    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(&format!(r#"{{"op":"field","antenna":2,"tags":["{EPC}"]}}"#))
        .await;
    // Antenna 3 is not configured: the driver's ROSpec does not inventory it.
    ctl.ok(r#"{"op":"field","antenna":3,"tags":["E20000170000000000000001"]}"#)
        .await;
    let (epc, antenna) = within("tag read", next_tag(&mut rx)).await;
    assert_eq!((epc.as_str(), antenna), (EPC, 2));
    for _ in 0..5 {
        let (epc, _) = within("tag read", next_tag(&mut rx)).await;
        assert_eq!(epc, EPC, "only configured antennas are inventoried");
    }
    // Kill the reader: listener and connection go away.
    sim.stop.send(()).unwrap();
    sim.task.await.unwrap().unwrap();
    let fault = tokio::time::timeout(FAULT_BOUND, next_fault(&mut rx))
        .await
        .expect("a killed reader is a fault within 5 s");
    assert!(
        matches!(fault, ReaderFault::SerialLost),
        "link lost, got {fault:?}"
    );
}

#[tokio::test]
async fn a_silent_reader_trips_the_watchdog_and_a_second_client_is_refused() {
    let sim = start_sim().await;
    let (mut rx, _stop) = start_driver(settings(&sim.addr.to_string(), vec![1]));
    within("reader ok", wait_ok(&mut rx)).await;

    // A second client while the first holds the reader: reported, naming the reason.
    let (mut rx2, stop2) = start_driver(settings(&sim.addr.to_string(), vec![1]));
    match within("refusal", next_fault(&mut rx2)).await {
        ReaderFault::Other { detail } => assert!(detail.contains("another client"), "{detail}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(stop2);

    // Silence: no keepalives, no reports, the connection stays open.
    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(r#"{"op":"silence","on":true}"#).await;
    let fault = tokio::time::timeout(FAULT_BOUND, next_fault(&mut rx))
        .await
        .expect("a silent reader is a fault within 5 s");
    assert_eq!(fault, ReaderFault::NoReply);
    ctl.ok(r#"{"op":"silence","on":false}"#).await;
    // The driver reconnects (its old connection is gone) and is Ok again.
    within("reader ok again", wait_ok(&mut rx)).await;
    drop(sim.stop);
}

#[tokio::test]
async fn antenna_unplugged_is_reported_and_garbage_is_dropped_and_counted() {
    let sim = start_sim().await;
    let (mut rx, _stop) = start_driver(settings(&sim.addr.to_string(), vec![1, 2]));
    within("reader ok", wait_ok(&mut rx)).await;
    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(r#"{"op":"disconnect","antenna":2}"#).await;
    let fault = within("antenna fault", async {
        loop {
            if let ReaderOutput::Health { health, .. } = rx.recv().await.unwrap() {
                if let Some(f @ ReaderFault::AntennaMissing { .. }) = health.fault {
                    assert_eq!(health.state, HealthState::Degraded);
                    return f;
                }
            }
        }
    })
    .await;
    assert_eq!(fault, ReaderFault::AntennaMissing { antenna: 2 });
    // A header with a 4 GB length: refused from the header alone (no 4 GB wait or buffer); its
    // bytes are dropped and counted, and the messages after it still arrive.
    ctl.ok(r#"{"op":"garbage","hex":"083DFFFFFFFF00000001"}"#)
        .await;
    ctl.ok(r#"{"op":"connect","antenna":2}"#).await;
    ctl.ok(&format!(r#"{{"op":"field","antenna":1,"tags":["{EPC}"]}}"#))
        .await;
    within("counted and read on", async {
        let (mut dropped, mut read) = (false, false);
        while !(dropped && read) {
            match rx.recv().await.unwrap() {
                ReaderOutput::Health { health, .. } => {
                    dropped |= health.dropped_bytes >= 10 && health.state == HealthState::Ok;
                }
                ReaderOutput::Tag { read: r, .. } => read |= r.epc.to_string() == EPC,
                _ => {}
            }
        }
    })
    .await;
    drop(sim.stop);
}

/// The reader's own I/O instead of a gate I/O module: the gate's alarm (the same pure `Alarm` as
/// with Modbus, behind its handle) drives the reader's GPOs, and a GPI change arrives as an
/// input of the reader (the pipeline maps it to a photo-eye).
#[tokio::test]
async fn alarm_drives_the_readers_gpos_and_gpi_changes_arrive() {
    use custos_daemon::actuators::AlarmHandle;
    use custos_daemon::readers::llrp::{GpoMap, run_gpo_alarm};
    let mut sim = start_sim().await;
    let (tx, mut rx) = mpsc::channel(1024);
    let (gpo_tx, gpo_rx) = mpsc::channel(16);
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(readers::run_reader_with_gpo(
        settings(&sim.addr.to_string(), vec![1, 2]),
        tx,
        async {
            let _ = stopped.await;
        },
        Some(gpo_rx),
    ));
    let (handle, commands, status) = AlarmHandle::detached();
    let map = GpoMap {
        alarm_light: Some(1),
        sounder: Some(2),
    };
    tokio::spawn(run_gpo_alarm(
        commands,
        status,
        gpo_tx,
        map,
        std::future::pending(),
    ));
    within("reader ok", wait_ok(&mut rx)).await;
    assert!(handle.sound(Duration::from_secs(30), false).await);
    let mut on = std::collections::BTreeSet::new();
    within("light and sounder on", async {
        while on.len() < 2 {
            let c = sim.gpo.recv().await.unwrap();
            assert!(c.value, "{c:?}");
            on.insert(c.gpo);
        }
    })
    .await;
    assert!(handle.silence().await);
    let mut off = std::collections::BTreeSet::new();
    within("light and sounder off", async {
        while off.len() < 2 {
            let c = sim.gpo.recv().await.unwrap();
            if !c.value {
                off.insert(c.gpo);
            }
        }
    })
    .await;
    assert_eq!(on, off);

    let mut ctl = ControlClient::connect(&sim.control).await;
    ctl.ok(r#"{"op":"input","n":2,"value":true}"#).await;
    let (port, high) = within("gpi input", async {
        loop {
            if let ReaderOutput::Input { port, high, .. } = rx.recv().await.unwrap() {
                return (port, high);
            }
        }
    })
    .await;
    assert_eq!((port, high), (2, true));
    drop(sim.stop);
}

// ---------------------------------------------------------------------------------------------
// Against llrpkit's emulator.

/// The llrpkit executable, or `None` (test skipped) when `CUSTOS_LLRPKIT_VENV` is unset
/// outside CI.
fn llrpkit() -> Option<PathBuf> {
    match std::env::var_os("CUSTOS_LLRPKIT_VENV") {
        Some(venv) => {
            let exe = PathBuf::from(venv).join("bin").join("llrpkit");
            assert!(
                exe.exists(),
                "CUSTOS_LLRPKIT_VENV is set but {} does not exist",
                exe.display()
            );
            Some(exe)
        }
        None if std::env::var_os("CI").is_some() => {
            panic!("CUSTOS_LLRPKIT_VENV is unset under CI: .ci/run installs llrpkit and sets it")
        }
        None => {
            eprintln!("skipped: set CUSTOS_LLRPKIT_VENV to a venv with llrpkit==0.3.0");
            None
        }
    }
}

/// Starts `llrpkit emulate --port 0` and returns it with the port it listens on.
async fn start_emulator(exe: &PathBuf) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(exe)
        .args([
            "emulate",
            "--port",
            "0",
            "--tags",
            "4",
            "--antennas",
            "2",
            "--rate",
            "40",
        ])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("llrpkit starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // "emulated Impinj-style reader on port 40123 (4 tags, 2 antennas, ~40 reads/s) — ..."
    let port = within("llrpkit ready line", async {
        loop {
            let line = lines.next_line().await.unwrap().expect("llrpkit exited");
            if let Some(rest) = line.split("on port ").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().expect("port number");
            }
        }
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

#[tokio::test]
async fn llrpkit_emulator_tags_arrive_as_reads_and_killing_it_is_a_fault() {
    let Some(exe) = llrpkit() else { return };
    init_tracing();
    let (mut child, port) = start_emulator(&exe).await;
    let (mut rx, _stop) = start_driver(settings(&format!("127.0.0.1:{port}"), vec![1, 2]));
    within("reader ok", wait_ok(&mut rx)).await;
    // llrpkit's default population: EPCs E200 0017 010B 0162 1000 00nn, tag nn on antenna
    // 1 + nn % antennas.
    let mut seen = std::collections::BTreeSet::new();
    within("every emulated tag read", async {
        while seen.len() < 4 {
            let (epc, antenna) = next_tag(&mut rx).await;
            assert!(epc.starts_with("E2000017010B016210000"), "{epc}");
            let n = u8::from_str_radix(&epc[22..], 16).unwrap();
            assert_eq!(antenna, 1 + n % 2, "{epc} on antenna {antenna}");
            seen.insert(epc);
        }
    })
    .await;
    child.kill().await.unwrap();
    let fault = tokio::time::timeout(FAULT_BOUND, next_fault(&mut rx))
        .await
        .expect("a killed emulator is a reader fault within 5 s");
    assert!(
        matches!(fault, ReaderFault::SerialLost | ReaderFault::NoReply),
        "{fault:?}"
    );
}
