//! S3 on moto, from the test virtualenv.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// An S3-compatible server on a loopback port of its own choosing: moto, from the test
/// virtualenv (which scripts/test makes). Killed when dropped.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    port: u16,
}

/// moto binds port 0 and prints the port it got. A port picked here and handed over could be
/// taken by another test's server first, and this one's requests would go there.
const MOTO: &str = "from moto.server import ThreadedMotoServer
import signal
server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
signal.pause()
";

impl S3Server {
    pub fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        assert!(
            root.join(".venv/bin/moto_server").exists(),
            "{} has no moto: run scripts/test (it installs moto[server] into .venv), or pip install 'moto[server]' there",
            root.join(".venv").display()
        );
        let mut child = Command::new(&python)
            .args(["-c", MOTO])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("moto's stdout"))
            .read_line(&mut line)
            .expect("read moto's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto did not start (it printed {line:?})"));
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// One raw HTTP request; returns the status line, headers and body as text. A connection
    /// the busy server resets is tried again (these requests only read or are idempotent).
    pub fn http(&self, method: &str, target: &str) -> String {
        use std::io::{Read, Write};
        let attempt = || -> std::io::Result<String> {
            let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port))?;
            write!(
                conn,
                "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            )?;
            let mut out = String::new();
            conn.read_to_string(&mut out)?;
            Ok(out)
        };
        let mut last = None;
        for _ in 0..3 {
            match attempt() {
                Ok(out) => return out,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("moto did not answer {method} {target}: {last:?}")
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = self.http("PUT", &format!("/{bucket}"));
        assert!(
            r.starts_with("HTTP/1.1 200"),
            "creating bucket {bucket}: {r}"
        );
    }

    /// Every key in the bucket, as S3 lists it.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let r = self.http("GET", &format!("/{bucket}?list-type=2"));
        xml_values(&r, "Key")
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn pending_uploads(&self, bucket: &str) -> Vec<String> {
        let r = self.http("GET", &format!("/{bucket}?uploads"));
        xml_values(&r, "UploadId")
    }

    /// The same, each with its key and how many parts it holds.
    pub fn pending_uploads_with_parts(&self, bucket: &str) -> Vec<(String, String, usize)> {
        let r = self.http("GET", &format!("/{bucket}?uploads"));
        let keys = xml_values(&r, "Key");
        let ids = xml_values(&r, "UploadId");
        keys.into_iter()
            .zip(ids)
            .map(|(key, id)| {
                let parts = self.http("GET", &format!("/{bucket}/{key}?uploadId={id}"));
                let n = xml_values(&parts, "PartNumber").len();
                (key, id, n)
            })
            .collect()
    }

    /// The ETag S3 gives an object: `"<md5>-N"` when it was uploaded in N parts.
    pub fn etag(&self, bucket: &str, key: &str) -> String {
        let r = self.http("HEAD", &format!("/{bucket}/{key}"));
        r.lines()
            .find_map(|l| {
                l.strip_prefix("ETag: ")
                    .or_else(|| l.strip_prefix("etag: "))
            })
            .unwrap_or_else(|| panic!("no ETag for {key}: {r}"))
            .trim()
            .trim_matches('"')
            .to_string()
    }

    /// Config for a bucket named `name` on this server, with keys from the environment
    /// variables that [`S3Server::envs`] sets.
    pub fn bucket_config(&self, name: &str, url: &str) -> String {
        format!(
            "[buckets.{name}]\nurl = \"{url}\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\naccess_key_id_env = \"MOVER_TEST_S3_KEY\"\nsecret_access_key_env = \"MOVER_TEST_S3_SECRET\"\n",
            self.endpoint
        )
    }

    /// The credentials `bucket_config` refers to (moto accepts any).
    pub fn envs() -> [(&'static str, &'static str); 2] {
        [
            ("MOVER_TEST_S3_KEY", "testing-key-id"),
            ("MOVER_TEST_S3_SECRET", "testing-secret-value"),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next())
        .map(str::to_string)
        .collect()
}
