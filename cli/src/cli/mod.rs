//! `mvrec`: move records between databases and files through a gateway.

mod cat;
mod cp;
mod ls;
mod moves;
mod schema;
mod sniff;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mover_proto::{CsvOptions, FileFormat, FileOptions, Path, Query, Read, read::What};

use crate::embedded::Embedded;
use mover_client::client::{Client, Connect, DEFAULT_GATEWAY};
use mover_client::names;

const EXAMPLES: &str = "\
Names:
  demo/main/orders          a table: database/schema/table
  files/exports/orders.csv  a file in a bucket (format from the extension, or --format)
  files/exports/orders/     a prefix: every data file under it, read as one dataset
  files/exports/2026-*/*.csv  a glob (* ? [..] within one part): the files it matches

Examples:
  mvrec ls
  mvrec schema files/orders.csv
  mvrec cp files/orders.csv demo/main/orders
  mvrec cp demo/main/orders files/out/orders.parquet
  mvrec cat demo/main/orders --limit 20
  mvrec cp files/more.csv demo/main/orders --existing-table append
  mvrec cat demo --sql 'SELECT status, count(*) FROM orders GROUP BY status'
  mvrec cat files/exports/2026-*/part-*.parquet --columns id,total
  mvrec cp demo/main/orders files/exports/orders/      # a prefix: Parquet parts
  mvrec cp demo/main/orders files/rd/ --to-format records --to-variant csv   # a records directory
  mvrec --config gateway.toml cp files/a.csv demo/main/a   # no server to start
  mvrec --ca ca.pem --cert me.pem --key me.key \
    cp grpc+tls://east:50051/warehouse/public/orders grpc+tls://west:50051/lake/orders.parquet
                                     # west pulls from east; the data skips this machine
  mvrec --gateway grpc+tls://gw:50051 --ca ca.pem --cert me.pem --key me.key ls
  MVREC_PASSWORD=... mvrec --gateway grpc+tls://gw:50051 --ca ca.pem --user alice ls";

/// Move records between databases and files through a Records Mover gateway.
#[derive(Parser, Debug)]
#[command(name = "mvrec", version, after_help = EXAMPLES)]
pub struct Cli {
    /// The gateway to talk to.
    #[arg(long, global = true, env = "MVREC_GATEWAY", default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// Run the gateway described by this config file inside mvrec instead (no server needed).
    #[arg(long, global = true, env = "MVREC_CONFIG", conflicts_with = "gateway")]
    config: Option<PathBuf>,
    /// CA certificate (PEM) the gateway's certificate must chain to (grpc+tls:// URLs).
    #[arg(long, global = true, env = "MVREC_CA")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), for gateways that require one.
    #[arg(long, global = true, env = "MVREC_CERT", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, global = true, env = "MVREC_KEY", requires = "cert")]
    key: Option<PathBuf>,
    /// A bearer token (best from the environment: it stays out of shell history and ps).
    #[arg(long, global = true, env = "MVREC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Log in as this user; the password comes from the MVREC_PASSWORD environment variable.
    #[arg(long, global = true, env = "MVREC_USER", conflicts_with = "token")]
    user: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every table and file the gateway serves, with row counts where cheap.
    #[command(
        after_help = "Examples:\n  mvrec ls\n  mvrec ls demo/main\n  mvrec ls files/exports/ --json"
    )]
    Ls(ls::LsArgs),
    /// Show the Arrow schema of a table, file or query.
    #[command(
        after_help = "Examples:\n  mvrec schema files/orders.csv\n  mvrec schema demo/main/orders --json\n  mvrec schema demo --sql 'SELECT 1 AS one'"
    )]
    Schema(schema::SchemaArgs),
    /// Print the first rows of a table, file or query.
    #[command(
        after_help = "Examples:\n  mvrec cat demo/main/orders\n  mvrec cat files/orders.parquet --limit 5\n  mvrec cat demo --sql 'SELECT * FROM orders WHERE qty > 10'"
    )]
    Cat(cat::CatArgs),
    /// Copy a table, file or query to a table or file; the gateway moves the data itself.
    #[command(
        after_help = "Examples:\n  mvrec cp files/orders.csv demo/main/orders\n  mvrec cp demo/main/orders files/out/orders.parquet\n  mvrec cp files/more.csv demo/main/orders --existing-table append\n  mvrec cp files/data.txt demo/main/t --from-format csv --from-delimiter '|'\n  mvrec cp files/export.dat demo/main/t --from-format records   (hints sniffed)\n  mvrec cp demo --sql 'SELECT * FROM orders' files/out/o.jsonl"
    )]
    Cp(cp::CpArgs),
    /// Tell a delimited file's records hints from its first bytes (printed as JSON).
    #[command(
        after_help = "Examples:\n  mvrec sniff files/export.csv.gz\n  mvrec sniff files/vertica.dat"
    )]
    Sniff(sniff::SniffArgs),
    /// List your moves running on the gateway (id, rows so far, rate), or cancel one.
    #[command(after_help = "Examples:\n  mvrec moves\n  mvrec moves cancel 3f9c2a1b8d7e6f50")]
    Moves(moves::MovesArgs),
}

/// How to read the source: its columns, and for a file, what its name does not say.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Only these columns, in this order (comma-separated). Parquet reads only their bytes.
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Read the source file as this format (default: from its extension).
    #[arg(long = "from-format", value_enum)]
    format: Option<Format>,
    /// CSV delimiter of the source (one character; \t for tab).
    #[arg(long = "from-delimiter")]
    delimiter: Option<String>,
    /// The source CSV has no header row.
    #[arg(long = "from-no-header")]
    no_header: bool,
    /// Read the source file by records hints of this variant (bluelabs, csv, bigquery,
    /// vertica, dumb): escapes, quoting and date formats as the variant says.
    #[arg(long = "from-variant")]
    variant: Option<String>,
    /// Records hints as JSON: '{"field-delimiter": "|"}'. Laid over --from-variant when given,
    /// else over the hints sniffed from the file (what `mvrec sniff` prints): yours win.
    #[arg(long = "from-hints")]
    hints: Option<String>,
    /// Skip records hints, variants and values that are not understood, with a warning,
    /// instead of refusing them (Records Mover's fail_if_dont_understand = false). For cp it
    /// applies to the target's hints too.
    #[arg(long = "skip-unknown-hints")]
    skip_unknown_hints: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
    /// Avro object container files.
    Avro,
    /// A records directory (Records Mover's layout), written to a prefix ending in /. For a
    /// source file: delimited text read by the records hints sniffed from it.
    Records,
}

impl Format {
    fn proto(self) -> FileFormat {
        match self {
            Format::Csv => FileFormat::Csv,
            Format::Parquet => FileFormat::Parquet,
            Format::Jsonl => FileFormat::Jsonl,
            Format::Avro => FileFormat::Avro,
            Format::Records => FileFormat::Records,
        }
    }
}

/// File options from CLI flags; None when no flag was given.
fn file_options(
    format: Option<Format>,
    delimiter: Option<String>,
    no_header: bool,
) -> Option<FileOptions> {
    if format.is_none() && delimiter.is_none() && !no_header {
        return None;
    }
    let csv = (delimiter.is_some() || no_header).then(|| CsvOptions {
        header: no_header.then_some(false),
        delimiter,
    });
    Some(FileOptions {
        format: format.map(Format::proto).unwrap_or(FileFormat::Auto) as i32,
        csv,
        ..Default::default()
    })
}

impl SourceArgs {
    fn options(&self) -> Option<FileOptions> {
        let options = with_records(
            file_options(self.format, self.delimiter.clone(), self.no_header),
            &self.variant,
            &self.hints,
            None,
        );
        self.leniency(options)
    }

    /// `options` with `fail_if_dont_understand = false` when --skip-unknown-hints was given.
    fn leniency(&self, options: Option<FileOptions>) -> Option<FileOptions> {
        if !self.skip_unknown_hints {
            return options;
        }
        let mut options = options.unwrap_or_default();
        options.fail_if_dont_understand = Some(false);
        Some(options)
    }
}

/// `options` with records options, when a variant, hints or a format type were given.
fn with_records(
    options: Option<FileOptions>,
    variant: &Option<String>,
    hints: &Option<String>,
    format_type: Option<RecordsType>,
) -> Option<FileOptions> {
    if variant.is_none() && hints.is_none() && format_type.is_none() {
        return options;
    }
    let mut options = options.unwrap_or_default();
    options.records = Some(mover_proto::RecordsOptions {
        variant: variant.clone().unwrap_or_default(),
        hints_json: hints.clone().unwrap_or_default(),
        format_type: match format_type {
            None => String::new(),
            Some(RecordsType::Delimited) => "delimited".into(),
            Some(RecordsType::Parquet) => "parquet".into(),
            Some(RecordsType::Avro) => "avro".into(),
        },
    });
    Some(options)
}

/// The format of a records directory's data files.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum RecordsType {
    Delimited,
    Parquet,
    Avro,
}

/// A read from a name (or a database name with --sql); a gateway in front of the name is
/// [`Gateways::connect`]'s business.
fn read_of(name: &str, sql: Option<&str>, source: &SourceArgs, limit: u64) -> anyhow::Result<Read> {
    let name = names::split_gateway(name).1;
    let what = match sql {
        Some(sql) => What::Query(Query {
            database: name.to_string(),
            sql: sql.to_string(),
            ..Default::default()
        }),
        None => What::Path(Path {
            parts: names::parse(name)?,
        }),
    };
    Ok(Read {
        what: Some(what),
        file: source.options(),
        limit,
        columns: source.columns.clone(),
        ..Default::default()
    })
}

/// The gateway commands talk to by default, and how to reach any gateway a name points at.
pub struct Gateways {
    here: String,
    how: Connect,
}

impl Gateways {
    /// The gateway at `url`, or the default one.
    pub async fn connect(&self, url: Option<&str>) -> anyhow::Result<Client> {
        Ok(Client::connect_with(url.unwrap_or(&self.here), &self.how).await?)
    }

    /// The gateway a name points at (`grpc+tls://host:port/...`), else the default.
    pub fn of(&self, name: &str) -> String {
        names::split_gateway(name)
            .0
            .unwrap_or_else(|| self.here.clone())
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let embedded = match &cli.config {
        Some(file) => Some(Embedded::start(file).await?),
        None => None,
    };
    let url = embedded
        .as_ref()
        .map(Embedded::url)
        .unwrap_or(cli.gateway.clone());
    let how = match &embedded {
        // The in-process gateway runs with the config owner's rights; it needs no credentials.
        Some(_) => Connect::default(),
        None => connect_options(&cli)?,
    };
    let gateways = Gateways { here: url, how };
    let result = async {
        match cli.command {
            Command::Ls(args) => ls::run(&mut gateways.connect(None).await?, args).await,
            Command::Schema(args) => {
                let url = gateways.of(args.name());
                schema::run(&mut gateways.connect(Some(&url)).await?, args).await
            }
            Command::Cat(args) => {
                let url = gateways.of(args.name());
                cat::run(&mut gateways.connect(Some(&url)).await?, args).await
            }
            Command::Cp(args) => cp::run(&gateways, args).await,
            Command::Sniff(args) => {
                let url = gateways.of(args.name());
                sniff::run(&mut gateways.connect(Some(&url)).await?, args).await
            }
            Command::Moves(args) => moves::run(&mut gateways.connect(None).await?, args).await,
        }
    }
    .await;
    if let Some(e) = embedded {
        e.stop().await?;
    }
    result
}

fn connect_options(cli: &Cli) -> anyhow::Result<Connect> {
    let login = match &cli.user {
        Some(user) => {
            let password = std::env::var("MVREC_PASSWORD").map_err(|_| {
                anyhow::anyhow!(
                    "--user {user}: set the password in the MVREC_PASSWORD environment variable"
                )
            })?;
            Some((user.clone(), password))
        }
        None => None,
    };
    Ok(Connect {
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
        token: cli.token.clone(),
        login,
        ..Default::default()
    })
}
