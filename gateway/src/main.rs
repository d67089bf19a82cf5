//! `gateway`: serve the configured databases and buckets over Arrow Flight.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mover_gateway::{config::Config, server};

/// Serve databases and buckets as Arrow Flight streams.
///
/// With no --config, serves the embedded default on 127.0.0.1:50051: the SQLite database
/// ./data/mover.db as `demo` and the folder ./data as the bucket `files`.
#[derive(Parser)]
#[command(
    version,
    after_help = "Examples:\n  gateway\n  gateway --config gateway.toml\n  gateway --listen 127.0.0.1:0   # any free port; the chosen one is printed"
)]
struct Args {
    /// Configuration file (TOML); relative paths in it resolve against its directory.
    #[arg(long, env = "MOVER_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, overriding the config's server.listen.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// How the log (on standard error) is written: text for people, or json, one object a
    /// line, for a log collector.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Read a password from standard input and print its argon2 hash, for [[users]] password_hash.
    HashPassword,
    /// Check the config without serving: parse it, load its certificates, resolve every
    /// secret, and reach every database and bucket; one line each, exit 1 if any failed.
    Check,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let log = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => log.init(),
        LogFormat::Json => log.json().init(),
    }
    // A panic (a bug) is logged with its backtrace, inside the span of the move it hit.
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(panic = %info, %backtrace, "a panic");
    }));
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::HashPassword) = args.command {
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let password = password.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!password.is_empty(), "no password on standard input");
        println!("{}", mover_gateway::auth::tokens::hash_password(password)?);
        return Ok(());
    }
    // The embedded default on a fresh machine (no data folder yet, or an empty one) serves
    // a sample.
    let sample = args.config.is_none()
        && args.command.is_none()
        && mover_gateway::sample::nothing_in(std::path::Path::new(mover_gateway::sample::DATA));
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default(std::env::current_dir()?),
    };
    if sample {
        let catalog = mover_gateway::catalog::Catalog::from_config(&config)?;
        let data = config.base_dir.join(mover_gateway::sample::DATA);
        mover_gateway::sample::create(&catalog, &data).await?;
    }
    if let Some(Command::Check) = args.command {
        let mut failed = 0;
        for (what, result) in server::check(&config).await {
            match result {
                Ok(said) => println!("ok    {what}: {said}"),
                Err(e) => {
                    failed += 1;
                    println!("FAIL  {what}: {e}");
                }
            }
        }
        anyhow::ensure!(failed == 0, "{failed} check(s) failed");
        return Ok(());
    }
    let running = server::start(&config, args.listen).await?;
    // Tests and scripts read this line to find the port.
    println!("gateway listening on {}", running.addr);
    signalled().await?;
    let grace = std::time::Duration::from_secs(config.server.drain_seconds);
    tracing::info!(
        seconds = grace.as_secs(),
        "draining: no new calls; running ones may finish"
    );
    running.drain(grace, signalled()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The first SIGTERM or Ctrl-C.
async fn signalled() -> std::io::Result<()> {
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        r = terminate() => r,
    }
}

async fn terminate() -> std::io::Result<()> {
    let mut sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    sig.recv().await;
    Ok(())
}
