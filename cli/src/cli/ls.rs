use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use clap::Args;
use std::sync::Arc;

use mover_client::client::Client;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only names starting with this (such as demo/main or files/exports/).
    prefix: Option<String>,
    /// Print JSON (one object per dataset) instead of a table.
    #[arg(long)]
    json: bool,
}

/// One line of the listing.
struct Row {
    name: String,
    rows: Option<i64>,
    bytes: Option<i64>,
    columns: usize,
}

pub async fn run(client: &mut Client, args: LsArgs) -> anyhow::Result<()> {
    let (infos, failed) = client
        .list_what_can_be(args.prefix.as_deref().unwrap_or(""))
        .await?;
    let known = |n: i64| (n >= 0).then_some(n);
    let rows: Vec<Row> = infos
        .iter()
        .map(|info| Row {
            name: info
                .flight_descriptor
                .as_ref()
                .map(|d| d.path.join("/"))
                .unwrap_or_default(),
            rows: known(info.total_records),
            bytes: known(info.total_bytes),
            columns: info
                .clone()
                .try_decode_schema()
                .map(|s| s.fields().len())
                .unwrap_or(0),
        })
        .collect();
    print_rows(&rows, args.json)?;
    // Like `ls` with a directory it cannot read: the rest is printed, the failure said, and
    // the exit status is not 0.
    match failed {
        None => Ok(()),
        Some(e) => Err(e.into()),
    }
}

fn print_rows(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        for r in rows {
            let v = serde_json::json!({"name": r.name, "rows": r.rows, "bytes": r.bytes, "columns": r.columns});
            println!("{v}");
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("(nothing)");
        return Ok(());
    }
    let text = |f: fn(&Row) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let schema = Arc::new(Schema::new(
        ["name", "rows", "bytes", "columns"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            text(|r| r.name.clone()),
            text(|r| r.rows.map(|n| n.to_string()).unwrap_or_default()),
            text(|r| r.bytes.map(|n| n.to_string()).unwrap_or_default()),
            // Listing reads no file contents: a file's columns show in `mvrec schema`.
            text(|r| match r.columns {
                0 => String::new(),
                n => n.to_string(),
            }),
        ],
    )?;
    println!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    Ok(())
}
