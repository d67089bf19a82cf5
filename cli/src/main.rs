//! `mvrec`: parse the command line, run the command, report errors plainly.
//!
//! - [`cli`]: one module per subcommand (`ls`, `schema`, `cat`, `cp`, `sniff`); this file only
//!   parses and dispatches.
//! - [`embedded`]: `mvrec --config FILE` runs the gateway inside this process. That is why this
//!   binary, and not the `mover-client` library, depends on the gateway: a program that only
//!   talks to gateways links the client alone.

mod cli;
mod embedded;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, run};

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
