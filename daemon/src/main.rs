//! custosd: the command line over the `custos_daemon` library (INTERFACES.md, "Binaries").
//!
//! Logs go to stderr (text, or JSON lines with `--log-format json`); stdout carries only what a
//! command prints for scripts (the public key, the example configuration).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use custos_daemon::config::{Config, EXAMPLE_GATE};
use custos_daemon::keys::DeviceKey;
use custos_protocol::cli_text::{causes_line, usage_line};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "custosd", version, about = "The Custos reader daemon")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an Ed25519 key pair (mode 0600, never overwrites) and print its public key.
    Keygen {
        /// The key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Run the daemon.
    Run {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print an annotated example configuration.
    PrintConfig,
    /// Validate a configuration, its key file and its readers, then exit.
    Check {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_tracing(cli.log_format);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custosd: {}", causes_line(e.chain()));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("custosd=info,custos_daemon=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Keygen { out } => {
            let key = DeviceKey::generate(&out)?;
            println!("{}", key.public_key());
            Ok(())
        }
        Command::PrintConfig => {
            print!("{EXAMPLE_GATE}");
            Ok(())
        }
        Command::Check { config } => runtime()?.block_on(check(&config)),
        Command::Run { config } => runtime()?.block_on(run(&config)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Validates the file and the key, opens every device once, then asks the server whether it
/// knows this device and whether its key is the pinned one: one line per device and two for
/// the server on stdout, then the summary line; fails if any of them failed.
async fn check(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let key = config.device_key()?;
    let public_key = key.public_key();
    let mut results = custos_daemon::app::check(&config).await;
    results.extend(custos_daemon::app::check_server(&config, key).await);
    let mut failed = 0_usize;
    for r in &results {
        match &r.result {
            Ok(detail) => println!("{}: ok: {detail}", r.device),
            Err(error) => {
                println!("{}: FAILED: {error}", r.device);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        // Each failure is on its own line above: named once, not again here.
        anyhow::bail!("{failed} of {} checks failed (see above)", results.len());
    }
    println!(
        "ok: device={} role={} readers={} public_key={public_key}",
        config.device_id,
        custos_daemon::app::role_name(config.role()),
        config.readers.len(),
    );
    Ok(())
}

async fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let key = config.device_key()?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; SIGTERM still stops the daemon");
            std::future::pending::<()>().await;
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM"),
            () = interrupt => tracing::info!("interrupted"),
        }
    };
    custos_daemon::app::run(config, key, shutdown).await?;
    Ok(())
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
        "custosd: {} (see --help)",
        usage_line(&e.render().to_string())
    );
    ExitCode::from(2)
}
