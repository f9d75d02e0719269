//! custos-sim: the command line over the `custos_sim` library.
//!
//! Each subcommand opens its endpoint (pty link or TCP listener) and control socket, prints its
//! ready line on stdout, and runs until SIGINT or SIGTERM, then removes its link and socket.
//! Stdout carries only the ready line, gate-io's coil changes and llrp-reader's GPO changes; logs go to stderr.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use custos_protocol::cli_text::{causes_line, usage_line};
use custos_sim::barcode::{AimPrefix, BarcodeScanner, Terminator};
use custos_sim::em4100::Em4100Reader;
use custos_sim::flat_reader::{FlatReader, FlatReaderMap, run_modbus_reader};
use custos_sim::gate_io::{GateIo, run_gate_io};
use custos_sim::reader::{Protocol, SimReader};
use custos_sim::uhf_reader::UhfReaderDevice;
use custos_sim::{ControlSocket, PtyLink, SerialDevice, SimError, ready_line, run_serial_device};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "custos-sim",
    version,
    about = "Simulated Custos reader hardware"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Gate I/O module (alarm light, sounder, lock, barrier; photo-eyes) as a Modbus TCP server.
    GateIo {
        /// Address to listen on; port 0 picks a free port (the ready line shows the real one).
        #[arg(long, value_name = "HOST:PORT")]
        listen: String,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
    },
    /// LLRP reader (fixed UHF reader, GS1 LLRP 1.1) on a TCP listener; prints GPO changes.
    LlrpReader {
        /// Address to listen on; port 0 picks a free port (the ready line shows the real one).
        #[arg(long, value_name = "HOST:PORT")]
        listen: String,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
    },
    /// Flat Modbus RTU card reader (UID in holding registers 6..=9, "new read" coil 0) on a pty.
    ModbusReader {
        /// Symlink to create to the pty the host opens.
        #[arg(long, value_name = "PATH")]
        link: PathBuf,
        /// Modbus unit (slave) address.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=247))]
        unit: u8,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
    },
    /// A simulated site, end to end, with a scenario that plays itself (Ctrl-C stops it).
    Demo {
        /// Where links, sockets and data go.
        #[arg(long, value_name = "DIR", default_value = "custos-demo")]
        data_dir: PathBuf,
        /// Scenario speed factor (2 = twice real time).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Leave the site idle for manual play through the control sockets.
        #[arg(long)]
        no_scenario: bool,
        /// The server's address (port 0: a free one); default 127.0.0.1:8080 or the next free
        /// port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Start a local SMTP server (python3-aiosmtpd) and deliver the alert e-mails to it,
        /// printing each; without it the demo prints where its e-mails would go.
        #[arg(long)]
        smtp_sink: bool,
    },
    /// UHF RFID reader (0xA0 family or CHAFON) on a pty; `field` ops put tags in its antennas' fields.
    UhfReader {
        /// The wire protocol: uhf-a0, uhf-chafon (288 form), uhf-chafon18 or uhf-chafon288.
        #[arg(long, value_name = "PROTOCOL")]
        protocol: Protocol,
        /// Symlink to create to the pty the host opens.
        #[arg(long, value_name = "PATH")]
        link: PathBuf,
        /// The reader's bus address (0xA0 readers default to 1, CHAFON readers to 0).
        #[arg(long, value_name = "N")]
        address: Option<u8>,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
    },
    /// 125 kHz EM4100 card module (RDM6300 family) on a pty; `card` ops present a card.
    Em4100 {
        /// Symlink to create to the pty the host opens.
        #[arg(long, value_name = "PATH")]
        link: PathBuf,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
    },
    /// Load and latency benchmarks of the whole system on simulated hardware (BENCHMARKS.md).
    ///
    /// Without --daemon: the site load for each gate count (default 1,10,50). With --daemon:
    /// the daemon benchmark (the custosd binary next to this one, or --custosd), plus the site
    /// load if --gates is given.
    Bench {
        /// Gate counts of the site load, comma separated.
        #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
        gates: Option<Vec<usize>>,
        /// Seconds of steady load per measurement.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Share of unauthorised passages in the site load (0 to 1).
        #[arg(long, default_value_t = 0.2)]
        unauthorised_share: f64,
        /// Run the daemon benchmark (custosd out of process, four readers at the wire ceiling).
        #[arg(long)]
        daemon: bool,
        /// Also write the results as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Where the sites and the daemon keep their files (wiped first; default: a temporary
        /// directory, removed afterwards).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The custosd binary for --daemon (default: next to this executable).
        #[arg(long, value_name = "PATH")]
        custosd: Option<PathBuf>,
        /// Serial line speed of the site's simulated readers, in baud (0: unpaced).
        #[arg(long, default_value_t = 115_200, value_name = "BAUD")]
        site_baud: u32,
    },
    /// Barcode scanner in serial mode on a pty.
    Barcode {
        /// Symlink to create to the pty the host opens.
        #[arg(long, value_name = "PATH")]
        link: PathBuf,
        /// Unix socket for control ops (JSON lines).
        #[arg(long, value_name = "SOCK")]
        control: Option<PathBuf>,
        /// What ends each scanned line.
        #[arg(long, value_enum, default_value_t = Terminator::Cr)]
        terminator: Terminator,
        /// AIM symbology identifier sent before each text, e.g. "]C0".
        #[arg(long, value_name = "PREFIX")]
        aim: Option<AimPrefix>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // A benchmark's stderr carries its progress; the simulators' info lines and the daemons'
    // alarm warnings (every unauthorised passage) would drown it.
    let default_filter = match cli.command {
        Command::Bench { .. } => "error,custos_sim=warn",
        _ => "custos_sim=info",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .init();
    let result = match cli.command {
        Command::Bench {
            gates,
            seconds,
            unauthorised_share,
            daemon,
            json,
            data_dir,
            custosd,
            site_baud,
        } => custos_sim::bench::main(custos_sim::bench::BenchOptions {
            gates,
            seconds,
            unauthorised_share,
            daemon,
            json,
            data_dir,
            custosd,
            site_baud,
            command: std::env::args().collect::<Vec<_>>().join(" "),
        }),
        command => run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custos-sim: {}", causes_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = Shutdown::install().context("cannot install signal handlers")?;
    match command {
        Command::Bench { .. } => anyhow::bail!("bench runs on its own runtime"),
        Command::GateIo { listen, control } => gate_io(&listen, control.as_deref(), shutdown).await,
        Command::LlrpReader { listen, control } => {
            llrp_reader(&listen, control.as_deref(), shutdown).await
        }
        Command::ModbusReader {
            link,
            unit,
            control,
        } => {
            let pty = PtyLink::open(&link)?;
            let control = bind_control(control.as_deref())?;
            print_line(&ready_line(FlatReader::KIND, link.display()));
            let reader = FlatReader::new(unit, FlatReaderMap::default());
            run_modbus_reader(reader, pty, control, shutdown.wait()).await?;
            Ok(())
        }
        Command::Demo {
            data_dir,
            speed,
            no_scenario,
            listen,
            smtp_sink,
        } => {
            let options = custos_sim::demo::DemoOptions {
                dir: data_dir,
                speed,
                scenario: !no_scenario,
                listen,
                smtp_sink,
            };
            custos_sim::demo::run(options, shutdown.wait()).await
        }
        Command::UhfReader {
            protocol,
            link,
            address,
            control,
        } => {
            let address = address.unwrap_or(match protocol {
                Protocol::A0 => 1,
                Protocol::Chafon18 | Protocol::Chafon288 => 0,
            });
            let device = UhfReaderDevice::new(SimReader::new(protocol, address));
            serve_serial(device, &link, control.as_deref(), shutdown).await
        }
        Command::Em4100 { link, control } => {
            serve_serial(Em4100Reader::new(), &link, control.as_deref(), shutdown).await
        }
        Command::Barcode {
            link,
            control,
            terminator,
            aim,
        } => {
            let scanner = BarcodeScanner::new(terminator, aim);
            serve_serial(scanner, &link, control.as_deref(), shutdown).await
        }
    }
}

/// Opens the pty and control socket, prints the ready line and runs a serial device.
async fn serve_serial<D: SerialDevice>(
    device: D,
    link: &Path,
    control: Option<&Path>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let pty = PtyLink::open(link)?;
    let control = bind_control(control)?;
    print_line(&ready_line(D::KIND, link.display()));
    run_serial_device(device, pty, control, shutdown.wait()).await?;
    Ok(())
}

async fn gate_io(listen: &str, control: Option<&Path>, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let addr = listener.local_addr().context("listener has no address")?;
    let control = bind_control(control)?;
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(change) = changes_rx.recv().await {
            match serde_json::to_string(&change) {
                Ok(line) => print_line(&line),
                Err(e) => tracing::error!("cannot print coil change: {e}"),
            }
        }
    });
    print_line(&ready_line(GateIo::KIND, addr));
    let result = run_gate_io(
        listener,
        GateIo::default(),
        control,
        changes_tx,
        shutdown.wait(),
    )
    .await;
    // The sender is gone with run_gate_io; the printer prints what is left and ends.
    printer.await.context("coil printer failed")?;
    Ok(result?)
}

async fn llrp_reader(
    listen: &str,
    control: Option<&Path>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    use custos_sim::llrp_reader::{LlrpReader, run_llrp_reader};
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let addr = listener.local_addr().context("listener has no address")?;
    let control = bind_control(control)?;
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(change) = changes_rx.recv().await {
            match serde_json::to_string(&change) {
                Ok(line) => print_line(&line),
                Err(e) => tracing::error!("cannot print gpo change: {e}"),
            }
        }
    });
    print_line(&ready_line(LlrpReader::KIND, addr));
    let result = run_llrp_reader(
        listener,
        LlrpReader::new(),
        control,
        changes_tx,
        shutdown.wait(),
    )
    .await;
    printer.await.context("gpo printer failed")?;
    Ok(result?)
}

fn bind_control(path: Option<&Path>) -> Result<Option<ControlSocket>, SimError> {
    path.map(ControlSocket::bind).transpose()
}

/// Prints one line on stdout and flushes it. A closed stdout (the parent stopped reading) is
/// not a reason to stop simulating, so it is only logged.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        tracing::debug!("stdout closed: {e}");
    }
}

/// SIGINT and SIGTERM, installed before the ready line so no signal can kill the process without
/// its cleanup.
struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    fn install() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        tracing::info!("shutting down");
    }
}

/// Help and version as clap prints them; any other refusal as one line (issue #9: a user
/// mistake on the command line is one clear line), exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!(
        "custos-sim: {} (see --help)",
        usage_line(&e.render().to_string())
    );
    ExitCode::from(2)
}
