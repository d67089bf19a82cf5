//! `mvrec`: parse the command line, run the command, report errors plainly.

use std::process::ExitCode;

use clap::Parser;
use mover_client::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mvrec: {e:#}");
            ExitCode::FAILURE
        }
    }
}
