//! The `custos-server` binary: parse the command line and hand over to the library.
//!
//! A failure is one line on stderr (`custos-server: what went wrong`) and exit 1, also when
//! `RUST_BACKTRACE=1` is set: a user mistake is not a crash, so no backtrace (issue #9). A
//! command line clap refuses is one line too, exit 2.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
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
    let text = e.render().to_string();
    let what: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let what = what.join(" ");
    let what = what.strip_prefix("error: ").unwrap_or(&what);
    eprintln!("custos-server: {what} (see --help)");
    ExitCode::from(2)
}

/// `text` with its line breaks folded, so that an error is one line whatever its source says.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
