//! A bucket's keys in the config, and what its URL names. Keys that belong to another kind of
//! bucket (an S3 region on a local folder) are errors, not silent no-ops.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::connectors::Setup;
use crate::error::{Error, Result};
use crate::secret;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `file://dir`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`, or
    /// `https://host/path` (read-only).
    pub url: String,
    /// S3: the region (default: the standard chain's, else us-east-1).
    pub region: Option<String>,
    /// Another server that speaks the provider's API: an S3-compatible server (requests are
    /// then path-style), a GCS emulator (its base URL), Azurite (`http://host:port/account`).
    /// `http://` is allowed here only.
    pub endpoint: Option<String>,
    /// S3: environment variables holding the keys. Without them the provider's standard
    /// credential chain applies (AWS_* variables, profiles, instance metadata).
    pub access_key_id_env: Option<String>,
    pub secret_access_key_env: Option<String>,
    pub session_token_env: Option<String>,
    /// GCS: a service account key file (else the standard chain).
    pub service_account_file: Option<PathBuf>,
    /// Azure: the storage account, and an environment variable holding its access key.
    pub account: Option<String>,
    pub access_key_env: Option<String>,
    /// Writing to a prefix splits the output into parts of about this many megabytes.
    #[serde(default = "default_part_size_mb")]
    pub part_size_mb: u64,
    /// The longest line a text file (CSV, records, JSON lines) may have, decompressed; a
    /// longer one is refused by file and line before it is held in memory.
    #[serde(default = "default_max_line_mb")]
    pub max_line_mb: usize,
    /// How many times its compressed size a compressed file may expand to (past its first
    /// 64 MiB): more is taken for a decompression bomb and refused. gzip cannot pass 1032:1,
    /// so the default stops zstd and bzip2 bombs and no real gzip file.
    #[serde(default = "default_max_expansion")]
    pub max_expansion: u64,
    /// The most of one Parquet row group a read may hold at once (the column chunks it reads
    /// of it, as the file's footer claims them): a bigger one is refused before it is fetched.
    #[serde(default = "default_max_row_group_mb")]
    pub max_row_group_mb: u64,
}

fn default_max_row_group_mb() -> u64 {
    1024
}

fn default_max_expansion() -> u64 {
    2000
}

fn default_part_size_mb() -> u64 {
    256
}

fn default_max_line_mb() -> usize {
    64
}

/// What a bucket URL names, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketTarget {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Azure {
        container: String,
        prefix: String,
    },
    /// Read-only: a web server's files.
    Http {
        url: String,
    },
    /// Held in this process's memory (object_store's InMemory): for tests and scratch.
    Memory,
}

impl Options {
    /// What the URL names, with the keys checked against its kind of bucket.
    pub fn target(&self, setup: &Setup) -> Result<BucketTarget> {
        let bucket = self;
        let (scheme, rest) = bucket.url.split_once("://").ok_or_else(|| {
            Error::invalid(format!("{:?} is not a URL (scheme://...)", bucket.url))
        })?;
        let cloud = |rest: &str| -> Result<(String, String)> {
            let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(Error::invalid("the URL names no bucket"));
            }
            Ok((name.to_string(), prefix.trim_matches('/').to_string()))
        };
        let target = match scheme {
            "file" if rest.is_empty() => return Err(Error::invalid("the URL names no path")),
            "file" => BucketTarget::Local(setup.path(Path::new(rest))),
            "s3" => {
                let (bucket, prefix) = cloud(rest)?;
                BucketTarget::S3 { bucket, prefix }
            }
            "gs" => {
                let (bucket, prefix) = cloud(rest)?;
                BucketTarget::Gcs { bucket, prefix }
            }
            "az" => {
                let (container, prefix) = cloud(rest)?;
                BucketTarget::Azure { container, prefix }
            }
            // Nothing kept: for tests and scratch work, gone with the process.
            "memory" => BucketTarget::Memory,
            "https" | "http" => {
                secret::refuse_inline_password(&bucket.url)?;
                BucketTarget::Http {
                    url: bucket.url.clone(),
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "unknown bucket scheme {other:?}; expected file://, s3://, gs://, az://, https:// or memory://"
                )));
            }
        };
        self.check_keys(&target)?;
        Ok(target)
    }

    /// Keys that belong to another kind of bucket are mistakes, not silent no-ops.
    fn check_keys(&self, target: &BucketTarget) -> Result<()> {
        let b = self;
        // `endpoint` (an S3-compatible server, a GCS or Azure emulator) is for every cloud.
        let s3 = b.region.is_some()
            || b.access_key_id_env.is_some()
            || b.secret_access_key_env.is_some()
            || b.session_token_env.is_some();
        let (kind, stray) = match target {
            BucketTarget::S3 { .. } => (
                "s3",
                b.service_account_file.is_some()
                    || b.account.is_some()
                    || b.access_key_env.is_some(),
            ),
            BucketTarget::Gcs { .. } => (
                "gs",
                s3 || b.account.is_some() || b.access_key_env.is_some(),
            ),
            BucketTarget::Azure { .. } => ("az", s3 || b.service_account_file.is_some()),
            BucketTarget::Local(_) | BucketTarget::Http { .. } | BucketTarget::Memory => (
                "this",
                s3 || b.endpoint.is_some()
                    || b.service_account_file.is_some()
                    || b.account.is_some()
                    || b.access_key_env.is_some(),
            ),
        };
        if stray {
            return Err(Error::invalid(format!(
                "a credential or endpoint key is set that {kind} buckets do not use"
            )));
        }
        if b.access_key_id_env.is_some() != b.secret_access_key_env.is_some() {
            return Err(Error::invalid(
                "give both access_key_id_env and secret_access_key_env, or neither",
            ));
        }
        if matches!(target, BucketTarget::Azure { .. }) && b.account.is_none() {
            return Err(Error::invalid("az:// buckets need `account`"));
        }
        if b.part_size_mb == 0 {
            return Err(Error::invalid("part_size_mb must be at least 1"));
        }
        Ok(())
    }
}
