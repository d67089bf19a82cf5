use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use clap::Args;
use std::sync::Arc;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only names starting with this (such as demo/main or files/exports/).
    prefix: Option<String>,
    /// Print JSON (one object per dataset) instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(client: &mut Client, args: LsArgs) -> anyhow::Result<()> {
    let infos = client.list(args.prefix.as_deref().unwrap_or("")).await?;
    let mut rows = Vec::new();
    for info in &infos {
        let name = info
            .flight_descriptor
            .as_ref()
            .map(|d| d.path.join("/"))
            .unwrap_or_default();
        let columns = info
            .clone()
            .try_decode_schema()
            .map(|s| s.fields().len())
            .unwrap_or(0);
        let count = |n: i64| (n >= 0).then_some(n);
        rows.push((name, count(info.total_records), count(info.total_bytes), columns));
    }
    if args.json {
        for (name, records, bytes, columns) in rows {
            let v = serde_json::json!({"name": name, "rows": records, "bytes": bytes, "columns": columns});
            println!("{v}");
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("(nothing)");
        return Ok(());
    }
    let text = |f: &dyn Fn(&(String, Option<i64>, Option<i64>, usize)) -> String| {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let opt = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
    let schema = Arc::new(Schema::new(
        ["name", "rows", "bytes", "columns"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            text(&|r| r.0.clone()),
            text(&|r| opt(r.1)),
            text(&|r| opt(r.2)),
            text(&|r| r.3.to_string()),
        ],
    )?;
    println!("{}", arrow::util::pretty::pretty_format_batches(&[batch])?);
    Ok(())
}
