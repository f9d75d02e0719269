//! `custos-sim demo`: a simulated gate, end to end through the real serial and Modbus paths.
//!
//! What runs, all in this process:
//! - a simulated 0xA0 UHF reader on a real pseudo-terminal (`<dir>/gate-uhf`, steered through
//!   its control socket `<dir>/gate-uhf.sock` exactly as an operator would steer it), with
//!   antennas 1-2 on the secure side of the door and 3-4 on the public side;
//! - a simulated Modbus TCP gate I/O module (alarm light, sounder) on `127.0.0.1:<port>`;
//! - the daemon's real reader driver (`custos_daemon::readers`) polling that reader over the pty,
//!   its gate smoothing (direction from antenna order) and its Modbus gate I/O client;
//! - a scenario loop that walks carriers through the door: some signed out, some not, one person
//!   who turns back.
//!
//! A carrier that crosses outward without being on the demo's sign-out list sets the alarm coils;
//! the time from the crossing being recognised to the coil write is printed. This is the reader
//! and gate half of Custos; the server, its rules and the browser pages join the demo as they
//! are built.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use custos_daemon::actuators::{GateIo, GateIoSettings, Transport};
use custos_daemon::model::ReaderOutput;
use custos_daemon::readers::{Protocol as DaemonProtocol, ReaderSettings, run_reader};
use custos_daemon::smoothing::{GateConfig, GateSmoother, Output};
use custos_protocol::epc::{Epc, tds};
use custos_protocol::modbus_map::Outputs;
use custos_protocol::uplink::Direction;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

use crate::gate_io::{GateIo as SimGateIo, run_gate_io};
use crate::reader::{Protocol, SimReader};
use crate::uhf_reader::UhfReaderDevice;
use crate::{ControlSocket, PtyLink, run_serial_device};

/// GS1 company prefix of the demo's carrier labels (GIAI-96, filter 0).
const COMPANY_PREFIX: &str = "0614141";

/// Options of `custos-sim demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the pty links and control sockets go.
    pub dir: PathBuf,
    /// Scenario speed factor (2.0 = twice as fast as real time).
    pub speed: f64,
    /// Leave the site idle for manual play through the control socket.
    pub scenario: bool,
}

/// A carrier of the demo.
#[derive(Debug, Clone, Copy)]
struct Carrier {
    control_no: &'static str,
    level: &'static str,
    asset: u64,
    signed_out: bool,
}

const CARRIERS: [Carrier; 4] = [
    Carrier {
        control_no: "S-2026-0017",
        level: "S",
        asset: 1017,
        signed_out: true,
    },
    Carrier {
        control_no: "TS-2026-0003",
        level: "TS",
        asset: 1003,
        signed_out: false,
    },
    Carrier {
        control_no: "C-2026-0102",
        level: "C",
        asset: 1102,
        signed_out: true,
    },
    Carrier {
        control_no: "S-2026-0020",
        level: "S",
        asset: 1020,
        signed_out: false,
    },
];

fn epc_of(carrier: &Carrier) -> anyhow::Result<Epc> {
    tds::giai96(0, COMPANY_PREFIX, carrier.asset).context("demo carrier EPC")
}

/// Runs the demo until `shutdown` completes.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let link = options.dir.join("gate-uhf");
    let control_path = options.dir.join("gate-uhf.sock");
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // The simulated hardware.
    let pty = PtyLink::open(&link)?;
    let control = ControlSocket::bind(&control_path)?;
    let reader = UhfReaderDevice::new(SimReader::new(Protocol::A0, 1));
    let sim_reader = tokio::spawn(run_serial_device(
        reader,
        pty,
        Some(control),
        stopped(stop_rx.clone()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gate_addr: SocketAddr = listener.local_addr()?;
    let (coil_tx, mut coil_rx) = mpsc::unbounded_channel();
    let sim_gate = tokio::spawn(run_gate_io(
        listener,
        SimGateIo::default(),
        None,
        coil_tx,
        stopped(stop_rx.clone()),
    ));

    // The daemon side: reader driver, smoothing, gate I/O.
    let (read_tx, read_rx) = mpsc::channel(1024);
    let mut settings = ReaderSettings::new("gate-uhf", DaemonProtocol::UhfA0, &link);
    settings.antennas = vec![1, 2, 3, 4];
    let driver = tokio::spawn(run_reader(settings, read_tx, stopped(stop_rx.clone())));
    let io = GateIo::connect(GateIoSettings::new(Transport::Tcp(gate_addr))).await?;

    println!("Custos demo: one simulated gate (issue-by-issue; the server and pages join later)");
    println!(
        "  UHF reader (0xA0 protocol) on pty {}  antennas 1-2 inside, 3-4 outside",
        link.display()
    );
    println!("  reader control socket {}", control_path.display());
    println!("  gate I/O module (Modbus TCP) on {gate_addr}  coil 0 alarm light, coil 1 sounder");
    println!("  carriers signed out (may leave): {}", signed_out_list());
    println!("Press Ctrl-C to stop.\n");

    let allowed: HashSet<Epc> = CARRIERS
        .iter()
        .filter(|c| c.signed_out)
        .map(epc_of)
        .collect::<Result<_, _>>()?;
    let names: Vec<(Epc, Carrier)> = CARRIERS
        .iter()
        .map(|c| Ok((epc_of(c)?, *c)))
        .collect::<anyhow::Result<_>>()?;
    let gate = tokio::spawn(gate_loop(
        read_rx,
        io,
        allowed,
        names,
        stopped(stop_rx.clone()),
    ));
    let coils = tokio::spawn(async move {
        while let Some(change) = coil_rx.recv().await {
            println!(
                "  gate I/O: coil {} -> {}",
                change.coil,
                if change.value { "ON" } else { "off" }
            );
        }
    });

    let scenario = async {
        if options.scenario {
            if let Err(e) = scenario(&control_path, options.speed).await {
                eprintln!("scenario stopped: {e:#}");
            }
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = shutdown => {}
        () = scenario => {}
    }
    let _ = stop_tx.send(true);
    let _ = driver.await;
    let _ = gate.await;
    let _ = sim_reader.await;
    let _ = sim_gate.await;
    coils.abort();
    println!("\ndemo stopped");
    Ok(())
}

fn signed_out_list() -> String {
    CARRIERS
        .iter()
        .filter(|c| c.signed_out)
        .map(|c| c.control_no)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads → smoothing → decision → alarm coils.
async fn gate_loop(
    mut reads: mpsc::Receiver<ReaderOutput>,
    mut io: GateIo,
    allowed: HashSet<Epc>,
    names: Vec<(Epc, Carrier)>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut smoother = GateSmoother::new(
        Arc::from("gate-uhf"),
        GateConfig::new(vec![1, 2], vec![3, 4]),
    );
    let epoch = Instant::now();
    let wall = || {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(unix.as_millis()).unwrap_or(i64::MAX)
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut alarm_until: Option<Instant> = None;
    let mut last_health = None;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            msg = reads.recv() => match msg {
                Some(ReaderOutput::Tag { read, .. }) => smoother.handle_read(read),
                Some(ReaderOutput::Health { health, .. }) => {
                    let state = (health.state, health.fault.clone());
                    if last_health.as_ref() == Some(&state) {
                        continue;
                    }
                    last_health = Some(state);
                    println!("  reader health: {:?}{}", health.state, health.fault.map(|f| format!(" ({f:?})")).unwrap_or_default());
                }
                Some(ReaderOutput::Scan { .. }) => {}
                None => break,
            },
            _ = tick.tick() => {}
        }
        for output in smoother.poll(wall()) {
            match output {
                Output::Crossing(crossing) => {
                    let recognised = Instant::now();
                    let mut alarm = false;
                    for epc in &crossing.tags {
                        let (label, level) = names
                            .iter()
                            .find(|(e, _)| e == epc)
                            .map_or((epc.to_string(), "?"), |(_, c)| {
                                (c.control_no.to_owned(), c.level)
                            });
                        let uri = tds::pure_identity_uri(epc).unwrap_or_else(|| epc.to_string());
                        let dir = match crossing.direction {
                            Direction::Out => "OUT",
                            Direction::In => "in",
                        };
                        let verdict = match crossing.direction {
                            Direction::In => "welcome back",
                            Direction::Out if allowed.contains(epc) => "signed out: may leave",
                            Direction::Out => {
                                alarm = true;
                                "NOT signed out: UNAUTHORIZED REMOVAL"
                            }
                        };
                        println!(
                            "[{:>6.1}s] {label} ({level}, {uri}) crossing {dir}: {verdict}",
                            epoch.elapsed().as_secs_f64()
                        );
                    }
                    if alarm {
                        match io.set_outputs(&Outputs::alarm(false)).await {
                            Ok(_) => println!(
                                "  alarm on {:.1} ms after the crossing was recognised",
                                recognised.elapsed().as_secs_f64() * 1000.0
                            ),
                            Err(e) => println!("  ALARM WRITE FAILED: {e}"),
                        }
                        alarm_until = Some(Instant::now() + Duration::from_secs(3));
                    }
                }
                Output::TurnedBack { .. } => println!(
                    "[{:>6.1}s] someone turned back before the door: no passage",
                    epoch.elapsed().as_secs_f64()
                ),
                Output::Passage { .. } => {}
            }
        }
        if alarm_until.is_some_and(|t| Instant::now() >= t) {
            alarm_until = None;
            if let Err(e) = io.set_outputs(&Outputs::IDLE).await {
                println!("  alarm reset failed: {e}");
            }
        }
    }
    let _ = io.set_outputs(&Outputs::IDLE).await;
}

/// A control-socket client, as an operator's script would use it.
struct Control {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Control {
    async fn connect(path: &Path) -> anyhow::Result<Control> {
        let (read, write) = UnixStream::connect(path).await?.into_split();
        Ok(Control {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn op(&mut self, json: String) -> anyhow::Result<()> {
        self.write.write_all(json.as_bytes()).await?;
        self.write.write_all(b"\n").await?;
        let reply = self
            .lines
            .next_line()
            .await?
            .context("control socket closed")?;
        anyhow::ensure!(reply.contains("\"ok\":true"), "control op refused: {reply}");
        Ok(())
    }

    async fn field(&mut self, antenna: u8, tags: &[Epc]) -> anyhow::Result<()> {
        let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        self.op(format!(
            r#"{{"op":"field","antenna":{antenna},"tags":[{}]}}"#,
            tags.join(",")
        ))
        .await
    }
}

/// People walk through the door, forever.
async fn scenario(control: &Path, speed: f64) -> anyhow::Result<()> {
    let mut ctl = Control::connect(control).await?;
    // Speed compresses the walk, never below what the gate's smoothing needs to tell one passage
    // from the next (its hold-off and grouping window are real time).
    let scaled = move |ms: u64, min_s: f64| {
        tokio::time::sleep(Duration::from_secs_f64(
            (ms as f64 / 1000.0 / speed.max(0.01)).max(min_s),
        ))
    };
    let step = |ms: u64| scaled(ms, 0.3);
    let gap = |ms: u64| scaled(ms, 3.0);
    loop {
        for (i, carrier) in CARRIERS.iter().enumerate() {
            let epc = epc_of(carrier)?;
            // Inside (antenna 1), through the door (antenna 3), gone.
            ctl.field(1, &[epc]).await?;
            step(800).await;
            ctl.field(1, &[]).await?;
            ctl.field(3, &[epc]).await?;
            step(800).await;
            ctl.field(3, &[]).await?;
            gap(4000).await;
            if i == 1 {
                // Someone walks up to the door with a carrier and turns back.
                println!(
                    "  (someone brings {} up to the door and turns back: no passage)",
                    CARRIERS[3].control_no
                );
                let other = epc_of(&CARRIERS[3])?;
                ctl.field(2, &[other]).await?;
                step(1000).await;
                ctl.field(2, &[]).await?;
                gap(4000).await;
            }
            // The carrier comes back in.
            ctl.field(4, &[epc]).await?;
            step(800).await;
            ctl.field(4, &[]).await?;
            ctl.field(2, &[epc]).await?;
            step(800).await;
            ctl.field(2, &[]).await?;
            gap(4000).await;
        }
    }
}
