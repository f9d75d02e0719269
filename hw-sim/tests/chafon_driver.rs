//! The daemon's CHAFON driver (`custos_daemon::readers::run_reader`, as custosd runs it) against
//! the simulated CHAFON reader on a real pty, started in its out-of-the-box configuration:
//! antenna 1 enabled only, as the captured reader of `../shared/vectors/uhf-chafon.txt`
//! reports. A gate must never be blind without an alarm: the driver enables the antennas it
//! needs, reads them back, and reports what it cannot fix by antenna number, and a reader of the
//! other reply form is a protocol mismatch rather than an endless "no reply".

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ControlClient, TempDir, init_tracing, within};
use custos_daemon::model::ReaderOutput;
use custos_daemon::readers::{self, Protocol, ReaderSettings};
use custos_protocol::chafon::InventoryForm;
use custos_protocol::uplink::{HealthState, ReaderFault, ReaderHealth};
use custos_sim::reader::{Protocol as SimProtocol, ReaderModel, SimReader};
use custos_sim::uhf_reader::UhfReaderDevice;
use custos_sim::{ControlSocket, PtyLink, run_serial_device};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

const EPC: &str = "3474257BF40000000000162E";

/// How long a test waits for one expected report.
const WAIT: Duration = Duration::from_secs(5);

struct Sim {
    _dir: TempDir,
    link: PathBuf,
    control: PathBuf,
    _stop: oneshot::Sender<()>,
}

/// A simulated CHAFON reader with `ports` antenna ports, as it leaves the factory.
async fn start_sim(protocol: SimProtocol, ports: u8) -> Sim {
    init_tracing();
    let dir = TempDir::new("chafon-driver");
    let link = dir.join("uhf");
    let control = dir.join("uhf.sock");
    let model = ReaderModel::new(0x00, ports).expect("model");
    let reader = SimReader::with_model(protocol, model).expect("reader");
    let pty = PtyLink::open(&link).expect("pty");
    let socket = ControlSocket::bind(&control).expect("control socket");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(run_serial_device(
        UhfReaderDevice::new(reader),
        pty,
        Some(socket),
        async {
            let _ = stopped.await;
        },
    ));
    Sim {
        _dir: dir,
        link,
        control,
        _stop: stop,
    }
}

/// A gate's reader: inner antenna 1, outer antenna 2.
fn gate(link: &Path) -> ReaderSettings {
    ReaderSettings {
        antennas: vec![1, 2],
        gate: true,
        backoff_max: Duration::from_millis(500),
        ..ReaderSettings::new("gate-uhf", Protocol::UhfChafon, link)
    }
}

/// A cabinet's one-antenna reader of the given configured form.
fn cabinet(link: &Path, form: InventoryForm) -> ReaderSettings {
    ReaderSettings {
        chafon_form: Some(form),
        backoff_max: Duration::from_millis(500),
        ..ReaderSettings::new("shelf", Protocol::UhfChafon, link)
    }
}

/// Runs the driver; dropping the returned sender stops it.
fn start_driver(s: ReaderSettings) -> (mpsc::Receiver<ReaderOutput>, oneshot::Sender<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(readers::run_reader(s, tx, async {
        let _ = stopped.await;
    }));
    (rx, stop)
}

/// The next health report that `want` accepts, within [`WAIT`]; every health report on the way
/// goes to `seen`.
async fn health_where(
    rx: &mut mpsc::Receiver<ReaderOutput>,
    seen: &mut Vec<ReaderHealth>,
    want: impl Fn(&ReaderHealth) -> bool,
) -> ReaderHealth {
    let deadline = Instant::now() + WAIT;
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        match next {
            Ok(Some(ReaderOutput::Health { reader, health })) => {
                assert!(!reader.is_empty());
                seen.push(health.clone());
                if want(&health) {
                    return health;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the driver stopped"),
            Err(_) => panic!("no such health report within {WAIT:?}; seen {seen:#?}"),
        }
    }
}

/// The antenna of the next read of `epc`, within [`WAIT`].
async fn read_antenna(rx: &mut mpsc::Receiver<ReaderOutput>, epc: &str) -> u8 {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ReaderOutput::Tag { read, .. })) if read.epc.to_string() == epc => {
                return read.antenna;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the driver stopped"),
            Err(_) => panic!("{epc} not read within {WAIT:?}"),
        }
    }
}

fn is_missing(antenna: u8) -> impl Fn(&ReaderHealth) -> bool {
    move |h| h.fault == Some(ReaderFault::AntennaMissing { antenna })
}

/// Out of the box the reader uses antenna 1 only; the gate's outer antenna 2 is enabled by the
/// driver, so a tag there is read as antenna 2 and the reader is Ok. When antenna 2 then stops
/// answering, the gate's reader is a fault naming antenna 2 (not a degradation: a gate blind
/// on one side cannot see an exit), and Ok again once it is back.
#[tokio::test]
async fn a_gate_enables_its_outer_antenna_and_a_dead_one_is_a_fault_naming_it() {
    within("gate antennas", async {
        let sim = start_sim(SimProtocol::Chafon288, 4).await;
        let mut ctl = ControlClient::connect(&sim.control).await;
        ctl.ok(&format!(r#"{{"op":"field","antenna":2,"tags":["{EPC}"]}}"#))
            .await;
        let (mut rx, _stop) = start_driver(gate(&sim.link));
        assert_eq!(read_antenna(&mut rx, EPC).await, 2);
        let mut seen = Vec::new();
        let ok = health_where(&mut rx, &mut seen, |h| h.state == HealthState::Ok).await;
        assert_eq!(ok.fault, None);
        assert!(
            !seen
                .iter()
                .any(|h| matches!(h.fault, Some(ReaderFault::AntennaMissing { .. }))),
            "{seen:#?}"
        );

        ctl.ok(r#"{"op":"disconnect","antenna":2}"#).await;
        let fault = health_where(&mut rx, &mut seen, is_missing(2)).await;
        assert_eq!(fault.state, HealthState::Fault);
        ctl.ok(r#"{"op":"connect","antenna":2}"#).await;
        health_where(&mut rx, &mut seen, |h| h.state == HealthState::Ok).await;
        assert_eq!(read_antenna(&mut rx, EPC).await, 2);
    })
    .await;
}

/// A reader that cannot enable the gate's antenna 2 (it has one port; the read-back of the
/// antenna configuration still says antenna 1 only) is a fault naming antenna 2, reported at
/// the start of every session rather than an "Ok" gate that never sees an exit.
#[tokio::test]
async fn an_antenna_the_reader_does_not_enable_is_a_fault_naming_it() {
    within("antenna not enabled", async {
        let sim = start_sim(SimProtocol::Chafon288, 1).await;
        let (mut rx, _stop) = start_driver(gate(&sim.link));
        let mut seen = Vec::new();
        let fault = health_where(&mut rx, &mut seen, is_missing(2)).await;
        assert_eq!(fault.state, HealthState::Fault);
        // It stays so: the reader answers, but antenna 2 is never read.
        tokio::time::sleep(Duration::from_millis(500)).await;
        while let Ok(o) = rx.try_recv() {
            if let ReaderOutput::Health { health, .. } = o {
                assert_eq!(
                    health.fault,
                    Some(ReaderFault::AntennaMissing { antenna: 2 })
                );
            }
        }
    })
    .await;
}

/// The configured reply form and the connected reader disagree, both ways round: a protocol
/// mismatch saying so, not "no reply within 500ms" in a loop.
#[tokio::test]
async fn the_other_reply_form_is_a_protocol_mismatch_both_ways() {
    within("form mismatch", async {
        for (sim_form, configured) in [
            (SimProtocol::Chafon288, InventoryForm::Reader18),
            (SimProtocol::Chafon18, InventoryForm::Reader288),
        ] {
            let sim = start_sim(sim_form, 1).await;
            let (mut rx, _stop) = start_driver(cabinet(&sim.link, configured));
            let mut seen = Vec::new();
            let fault = health_where(&mut rx, &mut seen, |h| {
                matches!(h.fault, Some(ReaderFault::ProtocolMismatch { .. }))
            })
            .await;
            assert_eq!(fault.state, HealthState::Fault);
            let Some(ReaderFault::ProtocolMismatch { detail }) = fault.fault else {
                unreachable!()
            };
            assert!(detail.contains("chafon_form"), "{detail}");
            // Every later report says the same (the reconnects find the same reader).
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            while let Ok(o) = rx.try_recv() {
                if let ReaderOutput::Health { health, .. } = o {
                    assert!(
                        matches!(health.fault, Some(ReaderFault::ProtocolMismatch { .. })),
                        "{health:?}"
                    );
                }
            }
        }
    })
    .await;
}

/// A cabinet's single antenna on the reader out of the box needs nothing set: it is read and
/// the reader is Ok (the configuration is read back, not rewritten).
#[tokio::test]
async fn a_one_antenna_cabinet_reads_the_factory_reader_as_it_is() {
    within("cabinet", async {
        let sim = start_sim(SimProtocol::Chafon288, 4).await;
        let mut ctl = ControlClient::connect(&sim.control).await;
        ctl.ok(&format!(r#"{{"op":"field","antenna":1,"tags":["{EPC}"]}}"#))
            .await;
        let (mut rx, _stop) = start_driver(cabinet(&sim.link, InventoryForm::Reader288));
        assert_eq!(read_antenna(&mut rx, EPC).await, 1);
        let mut seen = Vec::new();
        health_where(&mut rx, &mut seen, |h| h.state == HealthState::Ok).await;
    })
    .await;
}
