use clap::Args;

use super::{SourceArgs, read_of};
use mover_client::client::Client;

#[derive(Args, Debug)]
pub struct SniffArgs {
    /// A file in a bucket; `grpc+tls://host:port/NAME` asks that gateway.
    name: String,
}

impl SniffArgs {
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub async fn run(client: &mut Client, args: SniffArgs) -> anyhow::Result<()> {
    let read = read_of(&args.name, None, &SourceArgs::default(), 0)?;
    let hints = client.sniff(&read).await?;
    println!("{}", serde_json::to_string_pretty(&hints)?);
    Ok(())
}
