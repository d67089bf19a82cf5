use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressStyle};
use mover_proto::{ExistingTable, Move, Path, Progress, Write};

use super::{Format, Gateways, SourceArgs, file_options, read_of};
use mover_client::names;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// What to copy: a table or file name, or a database name with --sql.
    source: String,
    /// Where to copy it: a table (created if missing) or a file.
    target: String,
    /// A SQL query against the database SOURCE (it must allow SQL).
    #[arg(long)]
    sql: Option<String>,
    /// What to do when the target exists. Every mode runs in the load's own transaction.
    #[arg(long, value_enum, default_value_t = Existing::Fail)]
    existing_table: Existing,
    /// Fail if the target does not exist, rather than create it (with `--existing-table
    /// append`: add rows only to a table that is there).
    #[arg(long)]
    must_exist: bool,
    #[command(flatten)]
    from: SourceArgs,
    /// Write the target file as this format (default: from its extension).
    #[arg(long = "to-format", value_enum)]
    to_format: Option<Format>,
    /// CSV delimiter of the target (one character; \t for tab).
    #[arg(long = "to-delimiter")]
    to_delimiter: Option<String>,
    /// Write the target CSV without a header row.
    #[arg(long = "to-no-header")]
    to_no_header: bool,
    /// Write by records hints of this variant: bluelabs (default), csv, bigquery, vertica,
    /// dumb. A target ending in / becomes a records directory, a file name one hinted file.
    #[arg(long = "to-variant")]
    to_variant: Option<String>,
    /// Records hints over the variant, as JSON: '{"compression": null, "header-row": true}'.
    #[arg(long = "to-hints")]
    to_hints: Option<String>,
    /// The data files of a records directory target (ending in /): delimited (default, by
    /// the variant and hints) or parquet.
    #[arg(long = "to-records-type", value_enum)]
    to_records_type: Option<super::RecordsType>,
    /// Ask the source for up to this many endpoints to read at once (prefixes and globs of
    /// several files split). Between gateways the default is the peer's `parallel`.
    #[arg(long, default_value_t = 0)]
    partitions: u32,
    /// Pipe the data through this process (DoGet from the source's gateway, DoPut to the
    /// target's), for gateways that cannot reach each other. By default the target's gateway
    /// pulls from the source's, and the data never passes through here.
    #[arg(long)]
    via_client: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Existing {
    /// Refuse to touch an existing target.
    Fail,
    /// Add the rows to the existing table.
    Append,
    /// Empty the table (TRUNCATE where the database has it), then load.
    TruncateAndOverwrite,
    /// DELETE every row, then load.
    DeleteAndOverwrite,
    /// Drop the table and create it anew from the source's schema.
    DropAndRecreate,
}

impl Existing {
    fn proto(self) -> ExistingTable {
        match self {
            Existing::Fail => ExistingTable::Fail,
            Existing::Append => ExistingTable::Append,
            Existing::TruncateAndOverwrite => ExistingTable::TruncateAndOverwrite,
            Existing::DeleteAndOverwrite => ExistingTable::DeleteAndOverwrite,
            Existing::DropAndRecreate => ExistingTable::DropAndRecreate,
        }
    }
}

pub async fn run(gateways: &Gateways, args: CpArgs) -> anyhow::Result<()> {
    let mut source = read_of(&args.source, args.sql.as_deref(), &args.from, 0)?;
    source.partitions = args.partitions;
    let target = Write {
        path: Some(Path {
            parts: names::parse(names::split_gateway(&args.target).1)?,
        }),
        existing_table: args.existing_table.proto() as i32,
        file: target_file_options(&args),
        end_marker: false,
        must_exist: args.must_exist,
    };
    let (from, to) = (gateways.of(&args.source), gateways.of(&args.target));
    let same_gateway = names::same_gateway(&from, &to);
    let mut client = gateways.connect(Some(&to)).await?;
    // The total is asked of the gateway that reads; a pulling gateway's caller may have no
    // rights on the source's gateway, so there the bar just counts.
    let total = match same_gateway {
        true => client.info(&source).await.ok(),
        false => None,
    }
    .and_then(|i| u64::try_from(i.total_records).ok());
    let bar = progress_bar(args.quiet, total);
    let on_progress = |p: &Progress| {
        bar.set_position(p.rows_read);
        bar.set_message(describe(p));
    };
    let result = if args.via_client {
        let mut from_client = gateways.connect(Some(&from)).await?;
        client
            .copy_from(&mut from_client, &source, &target, on_progress)
            .await
    } else {
        let mv = Move {
            source: Some(source),
            target: Some(target),
            source_gateway: if same_gateway { String::new() } else { from },
        };
        client.move_dataset(&mv, on_progress).await
    };
    bar.finish_and_clear();
    let done = result?;
    println!(
        "copied {} row{} ({}) from {} to {} in {:.2}s ({} rows/s)",
        done.rows_committed,
        if done.rows_committed == 1 { "" } else { "s" },
        HumanBytes(done.bytes_read),
        args.source,
        args.target,
        done.seconds,
        HumanCount(rate(done.rows_read, done.seconds)),
    );
    for note in &done.notes {
        println!("note: {note}");
    }
    Ok(())
}

/// How to write the target: CSV options, or records hints (a records directory when the
/// target is a prefix, else one hinted file).
fn target_file_options(args: &CpArgs) -> Option<mover_proto::FileOptions> {
    let records =
        args.to_variant.is_some() || args.to_hints.is_some() || args.to_records_type.is_some();
    let format = match (args.to_format, records && args.target.ends_with('/')) {
        (None, true) => Some(Format::Records),
        (f, _) => f,
    };
    let options = super::with_records(
        file_options(format, args.to_delimiter.clone(), args.to_no_header),
        &args.to_variant,
        &args.to_hints,
        args.to_records_type,
    );
    args.from.leniency(options)
}

fn rate(rows: u64, seconds: f64) -> u64 {
    if seconds > 0.0 {
        (rows as f64 / seconds) as u64
    } else {
        rows
    }
}

fn describe(p: &Progress) -> String {
    format!(
        "{} ({}/s)",
        HumanBytes(p.bytes_read),
        HumanBytes(rate(p.bytes_read, p.seconds))
    )
}

fn progress_bar(quiet: bool, total: Option<u64>) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:30} {human_pos}/{human_len} rows  {msg}  {elapsed}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {human_pos} rows  {msg}  {elapsed}")
                .expect("valid template"),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
