//! Azure Blob Storage on Azurite (npm `azurite`, which scripts/test installs into `.node/`),
//! on a loopback port of its own choosing, with its well-known development account.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Azurite's development account and key (public, the same in every Azurite).
    pub const ACCOUNT: &'static str = "devstoreaccount1";
    pub const KEY: &'static str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    pub fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = root.join(".node/node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/test (it installs the npm package azurite into .node; Node and npm come from Debian's nodejs and npm)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "0",
                "--skipApiVersionCheck",
            ])
            .arg("--location")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        // It binds port 0 and says where it listens: no port to lose to another test.
        let mut lines = BufReader::new(child.stdout.take().expect("azurite's stdout")).lines();
        let port = lines
            .by_ref()
            .map_while(|line| line.ok())
            .find_map(|line| {
                let at = line.split("listens on http://127.0.0.1:").nth(1)?;
                at.trim().parse::<u16>().ok()
            })
            .expect("Azurite did not say where it listens");
        // What it says later is read and dropped: a closed pipe would make it exit.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// The blob endpoint, path-style with the account, as object_store takes it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, Self::ACCOUNT)
    }

    /// Config for a bucket named `name` on container `container`, its key from
    /// `MOVER_TEST_AZURE_KEY` ([`Azurite::envs`]).
    pub fn bucket_config(&self, name: &str, container: &str, prefix: &str) -> String {
        format!(
            "[buckets.{name}]\nurl = \"az://{container}/{prefix}\"\naccount = \"{}\"\naccess_key_env = \"MOVER_TEST_AZURE_KEY\"\nendpoint = \"{}\"\n",
            Self::ACCOUNT,
            self.endpoint()
        )
    }

    pub fn envs() -> [(&'static str, &'static str); 1] {
        [("MOVER_TEST_AZURE_KEY", Self::KEY)]
    }

    /// Create Container, signed with the account key (SharedKey), as no client here does it.
    pub fn create_container(&self, container: &str) {
        let answer = self.signed("PUT", container, &[("restype", "container")]);
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "creating container {container}: {answer}"
        );
    }

    /// Every committed blob in `container`, with its size and ETag, one line each. (Blocks
    /// staged by an upload that was never committed are not blobs yet; Azure has no call that
    /// discards them, and drops them after seven days.)
    pub fn blobs(&self, container: &str) -> Vec<String> {
        let answer = self.signed(
            "GET",
            container,
            &[("comp", "list"), ("restype", "container")],
        );
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "listing {container}: {answer}"
        );
        answer
            .split("<Blob>")
            .skip(1)
            .map(|blob| {
                let value = |tag: &str| {
                    blob.split(&format!("<{tag}>"))
                        .nth(1)
                        .and_then(|v| v.split(&format!("</{tag}>")).next())
                        .unwrap_or_default()
                        .to_string()
                };
                format!(
                    "{} {} {}",
                    value("Name"),
                    value("Content-Length"),
                    value("Etag")
                )
            })
            .collect()
    }

    /// One request on `container` with these query parameters (sorted by name), signed
    /// with the account key; the status line, headers and body as text.
    fn signed(&self, method: &str, container: &str, query: &[(&str, &str)]) -> String {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-08-06";
        let mut resource = format!("/{0}/{0}/{container}", Self::ACCOUNT);
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{method}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let signature = sign(Self::KEY, &to_sign);
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("azurite");
        write!(
            conn,
            "{method} /{}/{container}?{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            Self::ACCOUNT,
            query.join("&"),
            self.port,
            Self::ACCOUNT
        )
        .expect("send to azurite");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("azurite's answer");
        answer
    }
}

/// base64(HMAC-SHA256(base64-decoded key, text)): Azure's SharedKey signature.
fn sign(key: &str, text: &str) -> String {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(key).expect("a base64 key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(text.as_bytes());
    engine.encode(mac.finalize().into_bytes())
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
