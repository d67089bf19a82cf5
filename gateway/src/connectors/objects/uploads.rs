//! The multipart uploads left open in an S3 bucket by a gateway killed while it wrote. They
//! hold parts (and are billed for them) but make no object, and no client knows their ids.
//! object_store lists objects, not uploads, so the listing here is a request of our own
//! (ListMultipartUploads), signed by object_store's SigV4 signer with the store's own
//! credentials; the aborts go through object_store.

use std::sync::Arc;
use std::time::SystemTime;

use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use serde::Deserialize;

use crate::error::{Context, Error, Result};

/// Pages of a listing read at most (1,000 uploads a page): a bound on what a bucket's answer
/// may make the gateway hold.
const MOST_PAGES: usize = 100;

/// The biggest page of a listing read (one of 1,000 uploads with 1 KiB keys is under 2 MiB).
const MOST_PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// What lists and aborts the open uploads below the bucket's configured prefix.
pub(super) struct OpenUploads {
    s3: Arc<AmazonS3>,
    client: HttpClient,
    /// The bucket's URL, path-style as the store addresses it.
    url: url::Url,
    region: String,
    /// The configured prefix with its trailing `/`, or empty.
    prefix: String,
    bucket: String,
}

/// One open upload: its key below the bucket's prefix, where it is (`s3://BUCKET/KEY`), its
/// id, when it began.
pub(super) struct Open {
    pub key: Path,
    pub location: String,
    full_key: Path,
    id: String,
    pub initiated: SystemTime,
}

impl std::fmt::Debug for OpenUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenUploads")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl OpenUploads {
    /// For the store `builder` built, which holds the bucket `bucket`, keys below `prefix`.
    pub(super) fn new(
        builder: &AmazonS3Builder,
        s3: Arc<AmazonS3>,
        bucket: &str,
        prefix: &str,
    ) -> Result<Self> {
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let url = url::Url::parse(&format!("{}/{bucket}", endpoint.trim_end_matches('/')))
            .invalid("the S3 bucket's endpoint is no URL")?;
        let options = ClientOptions::new().with_allow_http(url.scheme() == "http");
        let client = ReqwestConnector::default()
            .connect(&options)
            .internal("cannot make an HTTP client for the S3 bucket")?;
        let prefix = match prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(Self {
            s3,
            client,
            url,
            region,
            prefix,
            bucket: bucket.to_string(),
        })
    }

    /// Every upload open below the prefix.
    pub(super) async fn list(&self) -> Result<Vec<Open>> {
        let mut open = Vec::new();
        let mut marker: Option<(String, String)> = None;
        for _ in 0..MOST_PAGES {
            let page = self.page(marker.as_ref()).await?;
            for upload in page.upload {
                let Ok(full_key) = Path::parse(&upload.key) else {
                    continue;
                };
                let Some(key) = upload.key.strip_prefix(&self.prefix) else {
                    continue;
                };
                let Ok(key) = Path::parse(key) else {
                    continue;
                };
                let initiated = chrono::DateTime::parse_from_rfc3339(&upload.initiated)
                    .internal(format!("S3 gave a bad time {:?}", upload.initiated))?;
                open.push(Open {
                    location: format!("s3://{}/{full_key}", self.bucket),
                    key,
                    full_key,
                    id: upload.upload_id,
                    initiated: initiated.into(),
                });
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(key), Some(id)) => marker = Some((key, id)),
                _ => return Ok(open),
            }
        }
        Ok(open)
    }

    /// Abort `upload`: its parts are removed.
    pub(super) async fn abort(&self, upload: &Open) -> Result<()> {
        self.s3
            .abort_multipart(&upload.full_key, &upload.id)
            .await
            .internal(format!(
                "cannot abort the open upload of {} in {}",
                upload.full_key, self.s3
            ))
    }

    async fn page(&self, marker: Option<&(String, String)>) -> Result<ListPage> {
        let mut url = self.url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_key_only("uploads");
            if !self.prefix.is_empty() {
                query.append_pair("prefix", &self.prefix);
            }
            if let Some((key, id)) = marker {
                query.append_pair("key-marker", key);
                query.append_pair("upload-id-marker", id);
            }
        }
        // The signer reads the query back decoded; `+` would reach S3 as itself.
        let query = url.query().unwrap_or_default().replace('+', "%20");
        url.set_query(Some(&query));
        let mut request = http::Request::get(url.as_str())
            .body(HttpRequestBody::empty())
            .internal("building a request to list open uploads")?;
        let credential = self
            .s3
            .credentials()
            .get_credential()
            .await
            .internal("cannot get the S3 bucket's credentials")?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .internal("cannot sign a request to list open uploads")?;
        let response = self
            .client
            .execute(request)
            .await
            .internal(format!("listing the open uploads of {}", self.s3))?;
        let status = response.status();
        let length = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if length.is_some_and(|n| n > MOST_PAGE_BYTES) {
            return Err(Error::internal(format!(
                "the listing of open uploads of {} is over {MOST_PAGE_BYTES} bytes a page",
                self.s3
            )));
        }
        let body = response
            .into_body()
            .bytes()
            .await
            .internal(format!("listing the open uploads of {}", self.s3))?;
        if !status.is_success() {
            let said = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(Error::internal(format!(
                "listing the open uploads of {} answered {status}: {said}",
                self.s3
            )));
        }
        quick_xml::de::from_reader(body.as_ref())
            .internal(format!("S3's listing of open uploads of {}", self.s3))
    }
}

/// One page of ListMultipartUploads' answer: what is read of it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListPage {
    #[serde(default)]
    upload: Vec<UploadEntry>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
    initiated: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_of_s3s_answer_is_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>under/b.csv</NextKeyMarker><NextUploadIdMarker>id2</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>under/a &amp; b.parquet</Key><UploadId>id1</UploadId>
    <Initiator><ID>x</ID></Initiator><StorageClass>STANDARD</StorageClass>
    <Initiated>2026-12-06T21:00:00.000Z</Initiated></Upload>
  <Upload><Key>under/b.csv</Key><UploadId>id2</UploadId>
    <Initiated>2026-12-06T21:00:01Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListPage = quick_xml::de::from_str(xml).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("id2"));
        assert_eq!(page.upload.len(), 2);
        assert_eq!(page.upload[0].key, "under/a & b.parquet");
        assert_eq!(page.upload[1].initiated, "2026-12-06T21:00:01Z");
        let none: ListPage = quick_xml::de::from_str(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(none.upload.is_empty() && !none.is_truncated);
    }
}
