//! Bucket configuration to an object store: one builder per provider, then the configured
//! prefix as a decorator, so everything above sees keys relative to the bucket's root.
//!
//! Secrets are read here from the environment variables or files the config names, and go
//! straight into the builder; they are never logged, and errors name the variable, not its value.

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::chunked::ChunkedStore;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore};

use super::options::{BucketTarget, Options as BucketConfig};
use super::uploads::OpenUploads;
use crate::error::{Context, Error, Result};

/// The chunks a local file is read in.
const LOCAL_CHUNK_BYTES: usize = 1024 * 1024;

/// A store for the bucket, and whether it may be written.
pub struct Built {
    pub store: Arc<dyn ObjectStore>,
    pub writable: bool,
    /// What lists the uploads a killed writer left open (S3's: other stores have no such
    /// listing here).
    pub uploads: Option<OpenUploads>,
}

pub fn build(target: &BucketTarget, config: &BucketConfig) -> Result<Built> {
    let mut uploads = None;
    let (store, prefix, writable): (Arc<dyn ObjectStore>, &str, bool) = match target {
        BucketTarget::Local(dir) => {
            std::fs::create_dir_all(dir).internal(format!("cannot create {}", dir.display()))?;
            let store = LocalFileSystem::new_with_prefix(dir)
                .internal(format!("cannot open {}", dir.display()))?;
            // A local file is read in 8 KiB chunks by default, each a blocking task of its
            // own: a CSV -> Parquet move of 170 MB spent a tenth of its time on them.
            let store = ChunkedStore::new(Arc::new(store), LOCAL_CHUNK_BYTES);
            (Arc::new(store), "", true)
        }
        BucketTarget::S3 { bucket, prefix } => {
            let builder = s3(bucket, config)?;
            let store = Arc::new(
                builder
                    .clone()
                    .build()
                    .invalid("cannot configure the S3 bucket")?,
            );
            uploads = Some(OpenUploads::new(
                &builder,
                Arc::clone(&store),
                bucket,
                prefix,
            )?);
            (store, prefix, true)
        }
        BucketTarget::Gcs { bucket, prefix } => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
            if let Some(file) = &config.service_account_file {
                b = b.with_service_account_path(file.to_string_lossy());
            }
            if let Some(endpoint) = &config.endpoint {
                b = b
                    .with_base_url(endpoint)
                    .with_client_options(client_options(endpoint));
            }
            let store = b.build().invalid("cannot configure the GCS bucket")?;
            (Arc::new(store), prefix, true)
        }
        BucketTarget::Azure { container, prefix } => {
            let account = config
                .account
                .as_deref()
                .ok_or_else(|| Error::invalid("az:// buckets need `account`"))?;
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_account(account)
                .with_container_name(container);
            if let Some(var) = &config.access_key_env {
                b = b.with_access_key(secret_env(var)?);
            }
            if let Some(endpoint) = &config.endpoint {
                b = b
                    .with_endpoint(endpoint.clone())
                    .with_client_options(client_options(endpoint));
            }
            let store = b.build().invalid("cannot configure the Azure container")?;
            (Arc::new(store), prefix, true)
        }
        BucketTarget::Memory => (Arc::new(InMemory::new()), "", true),
        BucketTarget::Http { url } => {
            let store = HttpBuilder::new()
                .with_url(url)
                .with_client_options(ClientOptions::new().with_allow_http(plain_http_ok(url)?))
                .build()
                .invalid("cannot configure the HTTP bucket")?;
            (Arc::new(store), "", false)
        }
    };
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix))
    };
    Ok(Built {
        store,
        writable,
        uploads,
    })
}

fn s3(bucket: &str, config: &BucketConfig) -> Result<AmazonS3Builder> {
    // from_env: the standard chain (AWS_* variables, web identity, instance metadata) fills
    // whatever the config does not say.
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(region) = &config.region {
        b = b.with_region(region);
    }
    if let Some(endpoint) = &config.endpoint {
        b = b
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let (Some(id), Some(secret)) = (&config.access_key_id_env, &config.secret_access_key_env) {
        b = b
            .with_access_key_id(secret_env(id)?)
            .with_secret_access_key(secret_env(secret)?);
    }
    if let Some(token) = &config.session_token_env {
        b = b.with_token(secret_env(token)?);
    }
    Ok(b)
}

/// Options for a configured endpoint: plain `http://` is allowed when it says so.
fn client_options(endpoint: &str) -> ClientOptions {
    ClientOptions::new().with_allow_http(endpoint.starts_with("http://"))
}

/// Plain http:// only to this machine: anything else must be https://.
fn plain_http_ok(url: &str) -> Result<bool> {
    let parsed = url::Url::parse(url).invalid("bad URL")?;
    if parsed.scheme() != "http" {
        return Ok(false);
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if loopback {
        Ok(true)
    } else {
        Err(Error::invalid(
            "http:// is allowed only for loopback hosts; use https://",
        ))
    }
}

/// The value of a secret's environment variable; the error names the variable only.
fn secret_env(var: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(Error::invalid(format!(
            "the environment variable {var} (named in the config) is not set"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> (BucketTarget, BucketConfig) {
        let b: BucketConfig = toml::from_str(text).unwrap();
        let setup = crate::connectors::Setup {
            base_dir: "/tmp".into(),
            batch_rows: 8192,
            hold: std::time::Duration::from_secs(60),
            write_ttl: std::time::Duration::from_secs(3600),
        };
        (b.target(&setup).unwrap(), b)
    }

    #[test]
    fn every_provider_builds_without_a_network() {
        // SAFETY: tests in this module do not read these variables concurrently elsewhere.
        unsafe {
            std::env::set_var("MOVER_TEST_KEY_ID", "AKIDEXAMPLE");
            std::env::set_var("MOVER_TEST_SECRET", "wJalrXUtnFEMI/K7MDENG");
            std::env::set_var("MOVER_TEST_AZ_KEY", "c2VjcmV0LWtleQ==");
        }
        let (t, b) = cfg(
            "url = \"s3://b/p\"\nregion = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key_id_env = \"MOVER_TEST_KEY_ID\"\nsecret_access_key_env = \"MOVER_TEST_SECRET\"\n",
        );
        assert!(build(&t, &b).unwrap().writable);
        let (t, b) =
            cfg("url = \"az://c/p\"\naccount = \"acct\"\naccess_key_env = \"MOVER_TEST_AZ_KEY\"\n");
        assert!(build(&t, &b).unwrap().writable);
        let (t, b) = cfg("url = \"gs://b/p\"\n");
        assert!(build(&t, &b).unwrap().writable);
        let (t, b) = cfg("url = \"https://example.org/data\"\n");
        assert!(!build(&t, &b).unwrap().writable);
        let (t, b) = cfg("url = \"http://127.0.0.1:8000/data\"\n");
        assert!(!build(&t, &b).unwrap().writable);
        let (t, b) = cfg("url = \"http://example.org/data\"\n");
        assert!(build(&t, &b).err().unwrap().message.contains("https"));
    }

    #[test]
    fn a_missing_secret_names_the_variable() {
        let (t, b) = cfg(
            "url = \"s3://b\"\naccess_key_id_env = \"MOVER_TEST_UNSET_ID\"\nsecret_access_key_env = \"MOVER_TEST_UNSET_SECRET\"\n",
        );
        let e = build(&t, &b).err().unwrap();
        assert!(e.message.contains("MOVER_TEST_UNSET_ID"), "{e}");
    }
}
