//! Support for the integration tests: real gateway processes on free ports, the real `mvrec`
//! binary, and throwaway directories. Each test reads as a story of what a user does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// The directory holding this workspace's binaries, built fresh once per test run so a test
/// never drives a stale gateway.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "mover-gateway",
                "-p",
                "mvrec",
                "--bins",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cannot run cargo to build the gateway and mvrec binaries");
        assert!(
            status.success(),
            "building the gateway and mvrec binaries failed"
        );
        // target/debug/deps/<test> -> target/debug
        let exe = std::env::current_exe().expect("test executable path");
        exe.parent()
            .and_then(Path::parent)
            .expect("target directory")
            .to_path_buf()
    })
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run cargo build --workspace --bins",
        path.display()
    );
    path
}

/// A `gateway` process serving on a free loopback port; killed when dropped.
pub struct Gateway {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Gateway {
    /// The embedded default, served from `dir` (so its data lives in `dir/data`).
    pub fn start_default(dir: &Path) -> Self {
        Self::spawn(dir, &[], &[])
    }

    /// A gateway with this config text, written to `dir/gateway.toml`.
    pub fn start_with_config(dir: &Path, config: &str) -> Self {
        Self::start_with_config_env(dir, config, &[])
    }

    /// The same, with these environment variables (the secrets a config refers to).
    pub fn start_with_config_env(dir: &Path, config: &str, envs: &[(&str, &str)]) -> Self {
        let file = dir.join("gateway.toml");
        std::fs::write(&file, config).expect("write config");
        Self::spawn(dir, &["--config", file.to_str().expect("utf-8 path")], envs)
    }

    fn spawn(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        // The log goes to a file: a pipe nobody reads would fill and stall the gateway.
        let log = dir.join("gateway.log");
        let mut child = Command::new(bin("gateway"))
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the gateway log"))
            .spawn()
            .expect("start the gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the gateway's first line");
        let Some(addr) = line.trim().strip_prefix("gateway listening on ") else {
            let _ = child.wait();
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the gateway did not start: {line:?}\n{err}");
        };
        Gateway {
            url: format!("grpc://{addr}"),
            child,
            log,
        }
    }

    /// The URL for TLS clients (the gateway's certificate names 127.0.0.1).
    pub fn tls_url(&self) -> String {
        self.url.replace("grpc://", "grpc+tls://")
    }

    /// Kill the process now (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The `host:port` it listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.url
            .trim_start_matches("grpc://")
            .parse()
            .expect("a socket address")
    }

    /// Wait until the log holds `text`; panics with the log after `secs` seconds.
    pub fn wait_for_log(&self, text: &str, secs: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while !self.log().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "{text:?} never logged:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `mvrec` against this gateway.
    pub fn mvrec(&self, args: &[&str]) -> Output {
        mvrec(&[&["--gateway", &self.url], args].concat())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `mvrec` with these arguments.
pub fn mvrec(args: &[&str]) -> Output {
    Command::new(bin("mvrec"))
        .args(args)
        .output()
        .expect("run mvrec")
}

/// stdout of a successful command; panics with stderr otherwise.
pub fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "command failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

/// stderr of a failed command; panics if it succeeded.
pub fn fails(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "command succeeded but should have failed: {stdout}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory with a `data` folder, the embedded default's bucket.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    dir
}

/// Rows of a SQLite table, each row's values as text ("NULL" for null), in rowid order.
pub fn sqlite_rows(db: &Path, table: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    let sql = format!(
        "SELECT * FROM \"{}\" ORDER BY rowid",
        table.replace('"', "\"\"")
    );
    let mut stmt = match conn.prepare(&sql) {
        Ok(s) => s,
        Err(_) => return vec![],
    };
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "NULL".into(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// True when the SQLite database has a table of this name.
pub fn sqlite_has_table(db: &Path, table: &str) -> bool {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, i64>(0),
    )
    .expect("query")
        > 0
}

/// Every file under `dir`, relative, sorted: to assert that nothing partial was left.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

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

/// A TCP relay on a free loopback port to `target` that counts the bytes each way: what a
/// client behind it sent and received, TLS included.
pub struct CountingProxy {
    pub addr: std::net::SocketAddr,
    /// Bytes from the target to the client.
    pub down: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Bytes from the client to the target.
    pub up: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    pub fn start(target: std::net::SocketAddr) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (down, up) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let pump =
            |mut from: std::net::TcpStream, mut to: std::net::TcpStream, count: Arc<AtomicU64>| {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match std::io::Read::read(&mut from, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        count.fetch_add(n as u64, Ordering::Relaxed);
                        if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    let _ = from.shutdown(std::net::Shutdown::Both);
                });
            };
        let (d, u) = (down.clone(), up.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(client, server, u.clone());
                pump(s2, c2, d.clone());
            }
        });
        CountingProxy { addr, down, up }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Certificates made in the test: a CA, the gateway's (for localhost and 127.0.0.1), gateways
/// `east` and `west` (and `third`, from another CA), clients `alice` and `bob`, and the bad
/// ones: expired, not yet valid, from another CA, self-signed.
/// Each `NAME` is written as `NAME.pem` and `NAME.key` in `dir`.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        std::fs::create_dir_all(dir).expect("pki dir");
        let write = |name: &str, pem: String, key: &KeyPair| {
            std::fs::write(dir.join(format!("{name}.pem")), pem).expect("write cert");
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())
                .expect("write key");
        };
        let ca_params = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            p
        };
        let leaf = |cn: &str, sans: &[&str]| {
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .expect("params");
            p.distinguished_name.push(DnType::CommonName, cn);
            p
        };
        let ca =
            CertifiedIssuer::self_signed(ca_params("Mover Test CA"), KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let other =
            CertifiedIssuer::self_signed(ca_params("Some Other CA"), KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();

        let sign = |name: &str, params: CertificateParams, issuer: &rcgen::Issuer<'_, KeyPair>| {
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            write(name, cert.pem(), &key);
        };
        sign("gateway", leaf("gateway", &["localhost", "127.0.0.1"]), &ca);
        // Gateways that talk to each other: each its own name, both from the test CA; and one
        // from another CA.
        sign("east", leaf("east", &["localhost", "127.0.0.1"]), &ca);
        sign("west", leaf("west", &["localhost", "127.0.0.1"]), &ca);
        sign("third", leaf("third", &["localhost", "127.0.0.1"]), &other);
        sign("alice", leaf("alice", &["alice.example.org"]), &ca);
        sign("bob", leaf("bob", &[]), &ca);
        let mut expired = leaf("alice", &[]);
        expired.not_before = rcgen::date_time_ymd(2000, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2001, 1, 1);
        sign("expired", expired, &ca);
        let mut future = leaf("alice", &[]);
        future.not_before = rcgen::date_time_ymd(2100, 1, 1);
        future.not_after = rcgen::date_time_ymd(2101, 1, 1);
        sign("future", future, &ca);
        sign("stranger", leaf("alice", &[]), &other);
        let key = KeyPair::generate().unwrap();
        let selfsigned = leaf("alice", &[]).self_signed(&key).unwrap();
        write("selfsigned", selfsigned.pem(), &key);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn pem(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    /// `[server.tls]` for the gateway, requiring client certificates from the test CA.
    pub fn server_tls(&self) -> String {
        self.server_tls_as("gateway", "ca")
    }

    /// `[server.tls]` with the certificate `name`, requiring client certificates from `ca`.
    pub fn server_tls_as(&self, name: &str, ca: &str) -> String {
        format!(
            "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            self.pem(name).display(),
            self.key(name).display(),
            self.pem(ca).display()
        )
    }
}

/// An argon2 hash of `password`, made by the real `gateway hash-password`.
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(bin("gateway"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gateway hash-password");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A throwaway Postgres server: `initdb` in a temp dir, run as the `postgres` user when this
/// process is root (initdb refuses root), on a free loopback port; stopped when dropped.
/// The superuser is `mover` with the password [`Postgres::PASSWORD`] over TCP.
pub struct Postgres {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub const PASSWORD: &'static str = "pg-test-password-7Yx";

    pub fn start() -> Self {
        Self::start_with_tls(None)
    }

    /// With TLS: the server presents `cert`/`key` (PEM) and refuses nothing else.
    pub fn start_with_tls(tls: Option<(&Path, &Path)>) -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let owner = run_as();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, Self::PASSWORD).unwrap();
        if let Some((uid, gid)) = owner {
            chown_tree(dir.path(), uid, gid);
        }
        let status = as_owner(Command::new(bin.join("initdb")), owner)
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "mover",
                "--no-locale",
                "-E",
                "UTF8",
            ])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        let mut args = vec![
            "-D".to_string(),
            data.to_str().unwrap().to_string(),
            "-k".into(),
            dir.path().to_str().unwrap().to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            "fsync=off".into(),
        ];
        if let Some((cert, key)) = tls {
            for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
                let to = data.join(name);
                std::fs::copy(from, &to).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(&to, Some(uid), Some(gid)).unwrap();
                }
            }
            args.extend(["-c".into(), "ssl=on".into()]);
        }
        // A free port can be taken by another test's server before this one binds it; then
        // postgres exits and is started again on another. It is ready when its pid file says
        // so, as pg_ctl -w reads it.
        let mut attempts = 0;
        let (child, port) = loop {
            attempts += 1;
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
            let mut child = as_owner(Command::new(bin.join("postgres")), owner)
                .args(&args)
                .args(["-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start postgres");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let ready = loop {
                if child.try_wait().ok().flatten().is_some() {
                    break false;
                }
                let pid_file =
                    std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
                if pid_file.lines().nth(7).map(str::trim) == Some("ready") {
                    break true;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break false;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            };
            if ready {
                break (child, port);
            }
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
            assert!(attempts < 5, "postgres did not start:\n{log}");
        };
        Postgres {
            child,
            port,
            _dir: dir,
        }
    }

    /// A URL without the password (the gateway takes it by reference).
    pub fn url(&self) -> String {
        format!("postgres://mover@127.0.0.1:{}/postgres", self.port)
    }

    /// Run SQL with psql; returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql failed: {e}"))
    }

    /// The same, with psql's error instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mover",
                "-d",
                "postgres",
            ])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", Self::PASSWORD)
            .env("PGSSLMODE", "prefer")
            .output()
            .expect("run psql (Debian: postgresql-client)");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MOVER_PG_BIN") {
        return PathBuf::from(dir);
    }
    // Debian puts the server under /usr/lib/postgresql/<version>/bin.
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("no Postgres server found: install postgresql (Debian) or set MOVER_PG_BIN to the directory holding initdb and postgres")
    })
}

/// The postgres user's uid and gid when this process is root (initdb refuses root).
fn run_as() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let uid =
        id(&["-u", "postgres"]).expect("running as root needs a `postgres` user to run initdb as");
    let gid = id(&["-g", "postgres"]).expect("the postgres user's group");
    Some((uid, gid))
}

fn as_owner(mut cmd: Command, owner: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            chown_tree(&p, uid, gid);
        } else {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
    }
}

/// A throwaway MariaDB server: a fresh datadir in a temp dir, a free loopback port, user
/// `mover` with a password, database `test`. Killed when dropped.
pub struct Mariadb {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mariadb {
    pub const PASSWORD: &'static str = "maria-test-password-3Kq";

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `mariadbd` options (`--local-infile=0`, `--ssl-cert=...`).
    pub fn start_with(options: &[&str]) -> Self {
        let server = which("mariadbd");
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        copy_tree(mariadb_template(&which("mariadb-install-db")), &data);
        // A free port can be taken by another test's server before this one binds it: the
        // server is ready only when the port answers with this server's own socket path.
        let sock = dir.path().join("sock");
        // Each server its own temporary files.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        let mut attempts = 0;
        let (child, port) = loop {
            attempts += 1;
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("mariadb.log")).unwrap();
            let mut child = Command::new(&server)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", sock.display()))
                .arg(format!("--tmpdir={}", tmp.display()))
                .arg(format!("--port={port}"))
                .args(["--bind-address=127.0.0.1", "--user=root"])
                .args([
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-flush-log-at-trx-commit=0",
                ])
                .args(options)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start mariadbd");
            let tls = options.iter().any(|o| o.starts_with("--ssl-cert"));
            if answers_as(&mut child, port, &sock, tls) {
                break (child, port);
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("mariadb.log")).unwrap_or_default();
            assert!(attempts < 5, "mariadbd did not start:\n{log}");
        };
        let server = Mariadb { child, port, dir };
        server.sql(&format!(
            "CREATE USER mover@'%' IDENTIFIED BY '{}'; GRANT ALL ON *.* TO mover@'%'; \
             CREATE DATABASE test CHARACTER SET utf8mb4;",
            Self::PASSWORD
        ));
        server
    }

    fn root_args(&self) -> Vec<String> {
        vec![
            "--no-defaults".into(),
            format!("--socket={}", self.dir.path().join("sock").display()),
            "--default-character-set=utf8mb4".into(),
            "-u".into(),
            "root".into(),
        ]
    }

    /// A URL without the password (the gateway takes it by reference).
    pub fn url(&self) -> String {
        format!("mysql://mover@127.0.0.1:{}/test", self.port)
    }

    /// Run SQL as root in database `test` (or none before it exists); returns tab-separated
    /// rows without headers.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("mariadb failed: {e}"))
    }

    /// The same, with the client's error instead of a panic.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .args(self.root_args())
            .args(["-N", "-B", "-e", sql])
            .arg(if sql.contains("CREATE DATABASE test") {
                "mysql"
            } else {
                "test"
            })
            .output()
            .expect("run the mariadb client (Debian: mariadb-client)");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("mariadb.log"));
            eprintln!("the MariaDB server's log:\n{}", log.unwrap_or_default());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A datadir made once per test process by mariadb-install-db (bootstraps running at once
/// can fail), copied for every server.
fn mariadb_template(install: &Path) -> &'static Path {
    static TEMPLATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let out = Command::new(install)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.path().join("data").display()))
                .args(["--user=root", "--auth-root-authentication-method=normal"])
                .args(["--skip-test-db"])
                .output()
                .expect("run mariadb-install-db");
            assert!(
                out.status.success(),
                "mariadb-install-db failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .path()
}

fn copy_tree(template: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(template.join("data"))
        .arg(to)
        .status()
        .expect("run cp");
    assert!(status.success(), "copying the MariaDB datadir failed");
}

/// Whether the server `child` answers on `port` as itself (its socket path) within 30 s;
/// false when it exited first (its port was taken) or never answered.
fn answers_as(child: &mut Child, port: u16, sock: &Path, tls: bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        let answer = Command::new("mariadb")
            .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root", "-N", "-B"])
            .args(["-P", &port.to_string(), "-e", "SELECT @@socket"])
            .args(tls.then_some("--ssl"))
            .output();
        if let Ok(out) = answer
            && String::from_utf8_lossy(&out.stdout).trim() == sock.to_string_lossy()
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

/// A program on PATH (or in /usr/sbin, where Debian puts mariadbd); panics naming the package.
fn which(program: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{program} not found: install mariadb-server and mariadb-client (Debian)")
        })
}

pub mod contract;

/// The rows a read returns, or the error it ends with.
pub async fn count_rows(
    client: &mut mover_client::Client,
    read: &mover_proto::Read,
) -> Result<usize, String> {
    use futures::TryStreamExt;
    let batches = client.read(read).await.map_err(|e| e.to_string())?;
    let all: Vec<arrow::array::RecordBatch> =
        batches.try_collect().await.map_err(|e| e.to_string())?;
    Ok(all.iter().map(|b| b.num_rows()).sum())
}
