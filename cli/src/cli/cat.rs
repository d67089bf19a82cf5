use clap::Args;
use futures::TryStreamExt;

use super::{SourceArgs, read_of};
use mover_client::client::{Client, ClientError};

#[derive(Args, Debug)]
pub struct CatArgs {
    /// A table or file name, or a database name with --sql; `grpc+tls://host:port/NAME` asks
    /// that gateway.
    name: String,
    /// A SQL query against the database NAME (it must allow SQL).
    #[arg(long)]
    sql: Option<String>,
    /// Rows to print (the gateway stops reading after them).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
    #[command(flatten)]
    file: SourceArgs,
}

impl CatArgs {
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub async fn run(client: &mut Client, args: CatArgs) -> anyhow::Result<()> {
    let read = read_of(&args.name, args.sql.as_deref(), &args.file, args.limit)?;
    let mut stream = client.read(&read).await?;
    // The gateway applies the limit, so what arrives is small enough to print as one table.
    let mut batches = Vec::new();
    while let Some(batch) = stream.try_next().await.map_err(ClientError::from)? {
        batches.push(batch);
    }
    if batches.iter().all(|b| b.num_rows() == 0) {
        let columns: Vec<String> = stream
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        println!("(no rows; columns: {})", columns.join(", "));
        return Ok(());
    }
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches)?);
    Ok(())
}
