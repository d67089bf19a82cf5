use clap::{Args, Subcommand};
use indicatif::{HumanBytes, HumanCount};

use mover_client::client::Client;

#[derive(Args, Debug)]
pub struct MovesArgs {
    #[command(subcommand)]
    what: Option<MovesCommand>,
}

#[derive(Subcommand, Debug)]
enum MovesCommand {
    /// Cancel one of your running moves by its id; its target rolls back.
    Cancel {
        /// The id `mvrec moves` shows.
        id: String,
    },
}

pub async fn run(client: &mut Client, args: MovesArgs) -> anyhow::Result<()> {
    if let Some(MovesCommand::Cancel { id }) = args.what {
        client.cancel_move(&id).await?;
        println!("cancelled move {id}");
        return Ok(());
    }
    let moves = client.list_moves().await?;
    if moves.is_empty() {
        println!("no moves of yours are running");
        return Ok(());
    }
    println!(
        "{:<16}  {:<10}  {:>12}  {:>10}  {:>8}  source -> target",
        "id", "principal", "rows", "rows/s", "seconds"
    );
    for m in moves {
        let rate = match m.seconds > 0.0 {
            true => (m.rows_read as f64 / m.seconds) as u64,
            false => 0,
        };
        println!(
            "{:<16}  {:<10}  {:>12}  {:>10}  {:>8.1}  {} -> {} ({})",
            m.id,
            m.principal,
            HumanCount(m.rows_read).to_string(),
            HumanCount(rate).to_string(),
            m.seconds,
            m.source,
            m.target,
            HumanBytes(m.bytes_read),
        );
    }
    Ok(())
}
