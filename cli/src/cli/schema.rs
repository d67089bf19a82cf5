use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use clap::Args;

use super::{SourceArgs, read_of};
use mover_client::client::Client;

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// A table or file name, or a database name with --sql; `grpc+tls://host:port/NAME` asks
    /// that gateway.
    name: String,
    /// A SQL query against the database NAME (it must allow SQL).
    #[arg(long)]
    sql: Option<String>,
    /// Print the schema as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    file: SourceArgs,
}

impl SchemaArgs {
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub async fn run(client: &mut Client, args: SchemaArgs) -> anyhow::Result<()> {
    let read = read_of(&args.name, args.sql.as_deref(), &args.file, 0)?;
    let schema = client.schema(&read).await?;
    if args.json {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "type": f.data_type().to_string(),
                    "nullable": f.is_nullable(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&fields)?);
        return Ok(());
    }
    let out = Arc::new(Schema::new(vec![
        Field::new("column", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("nullable", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        out,
        vec![
            Arc::new(StringArray::from_iter_values(
                schema.fields().iter().map(|f| f.name().clone()),
            )),
            Arc::new(StringArray::from_iter_values(
                schema.fields().iter().map(|f| f.data_type().to_string()),
            )),
            Arc::new(BooleanArray::from_iter(
                schema.fields().iter().map(|f| Some(f.is_nullable())),
            )),
        ],
    )?;
    println!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    Ok(())
}
