//! The `custos-server` binary: parse the command line and hand over to the library.
//!
//! A failure is one line on stderr (`custos-server: what went wrong`) and exit 1, also when
//! `RUST_BACKTRACE=1` is set: a user mistake is not a crash, so no backtrace (issue #9). A
//! command line clap refuses is one line too, exit 2.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use custos_protocol::cli_text::{one_line, usage_line};
use custos_server::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match custos_server::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("custos-server: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Help and version as clap prints them; any other refusal as one line.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    eprintln!(
        "custos-server: {} (see --help)",
        usage_line(&e.render().to_string())
    );
    ExitCode::from(2)
}
