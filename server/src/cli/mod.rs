//! The command line (see INTERFACES.md): `init`, `serve`, `print-config`, `audit verify`.

mod audit;
mod backup;
mod init;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, EXAMPLE, LogFormat};
pub use init::{InitError, initialise};

/// `custos-server`: the Custos system of record.
#[derive(Debug, Parser)]
#[command(name = "custos-server", version, about)]
pub struct Cli {
    /// Log format on stderr (overrides the configuration's `log_format`): `json` for journald
    /// or ELK, one object per line.
    #[arg(long, value_enum, global = true)]
    pub log_format: Option<LogFormatArg>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines; colour only when stderr is a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database, the server signing key and the first administrator.
    Init(InitArgs),
    /// Run the server.
    Serve(ServeArgs),
    /// Print an annotated example configuration (all defaults).
    PrintConfig,
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent snapshot of a data directory (the server may be running).
    Backup {
        /// Data directory to back up.
        #[arg(long)]
        data_dir: PathBuf,
        /// The snapshot file to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a snapshot into an empty data directory, after verifying its audit chain.
    Restore {
        /// The snapshot `backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The data directory to fill (missing or empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

/// `init` arguments.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory to create or fill.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Username of the first administrator.
    #[arg(long)]
    pub admin_user: String,
    /// File holding the administrator's password (one trailing newline is ignored).
    #[arg(long)]
    pub admin_password_file: PathBuf,
}

/// `serve` arguments: a configuration file, or a data directory (with defaults for the rest);
/// `--data-dir` and `--listen` override the file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides the file's `data_dir`).
    #[arg(long, required_unless_present = "config")]
    pub data_dir: Option<PathBuf>,
    /// Listen address (overrides the file's `listen`); port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain and check the signed heads; exit 0 if intact, 1 if not.
    Verify {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Anchor file (`[audit] anchor_file`): the trail must hold every head in it.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        /// Witness files collected from devices (their data directory's `audit-witness`):
        /// the trail must hold each one's head.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        witness: Vec<PathBuf>,
    },
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `init` failed.
    #[error(transparent)]
    Init(#[from] InitError),
    /// `serve` failed.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// `audit verify` could not run.
    #[error(transparent)]
    Audit(#[from] audit::VerifyError),
    /// `backup` or `restore` failed.
    #[error(transparent)]
    Backup(#[from] backup::BackupError),
}

fn init_tracing(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A subscriber may already be installed when the CLI runs in-process; keep that one.
    // Colour codes only for a terminal: in a journal or a file they are noise.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Run a parsed command line; the exit code tells success (0) or a failed check (1).
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let log_format = cli.log_format.map(LogFormat::from);
    match cli.command {
        Command::Init(args) => {
            init_tracing(log_format.unwrap_or(LogFormat::Text), "warn");
            init::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let mut config = match &args.config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if let Some(dir) = args.data_dir {
                config.data_dir = dir;
            }
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            init_tracing(log_format.unwrap_or(config.log_format), &config.log_filter);
            serve::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::PrintConfig => {
            print!("{EXAMPLE}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify {
            data_dir,
            anchor,
            witness,
        }) => {
            init_tracing(log_format.unwrap_or(LogFormat::Text), "warn");
            let external: Vec<PathBuf> = anchor.into_iter().chain(witness).collect();
            Ok(audit::verify(&data_dir, &external).await?)
        }
        Command::Backup { data_dir, out } => {
            init_tracing(LogFormat::Text, "warn");
            Ok(backup::backup(&data_dir, &out).await?)
        }
        Command::Restore { from, data_dir } => {
            init_tracing(LogFormat::Text, "warn");
            Ok(backup::restore(&from, &data_dir).await?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_matches_the_interface() {
        let cli = Cli::try_parse_from([
            "custos-server",
            "init",
            "--data-dir",
            "d",
            "--admin-user",
            "root",
            "--admin-password-file",
            "pw",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Init(ref a) if a.admin_user == "root"));
        let cli = Cli::try_parse_from([
            "custos-server",
            "serve",
            "--data-dir",
            "d",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Serve(ref a) if a.listen.unwrap().port() == 0));
        assert!(Cli::try_parse_from(["custos-server", "serve", "--config", "c.toml"]).is_ok());
        assert!(Cli::try_parse_from(["custos-server", "serve"]).is_err());
        assert!(Cli::try_parse_from(["custos-server", "print-config"]).is_ok());
        assert!(
            Cli::try_parse_from(["custos-server", "audit", "verify", "--data-dir", "d"]).is_ok()
        );
        assert!(
            Cli::try_parse_from(["custos-server", "backup", "--data-dir", "d", "--out", "f"])
                .is_ok()
        );
        assert!(
            Cli::try_parse_from(["custos-server", "restore", "--from", "f", "--data-dir", "d"])
                .is_ok()
        );
        let cli = Cli::try_parse_from([
            "custos-server",
            "audit",
            "verify",
            "--data-dir",
            "d",
            "--anchor",
            "a",
            "--witness",
            "w1",
            "w2",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Audit(AuditCommand::Verify { ref anchor, ref witness, .. })
                if anchor.as_deref() == Some(std::path::Path::new("a")) && witness.len() == 2
        ));
    }
}
