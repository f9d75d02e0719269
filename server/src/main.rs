//! The `custos-server` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = custos_server::cli::Cli::parse();
    Ok(custos_server::cli::run(cli).await?)
}
