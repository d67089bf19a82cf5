//! The workspace's binaries, a `gateway` process on a free port, `mvrec`, work directories.

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
    /// How it was started, to start it again ([`Gateway::restart`]).
    dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
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
        Self::spawn_on(dir, args, envs, "127.0.0.1:0")
    }

    fn spawn_on(dir: &Path, args: &[&str], envs: &[(&str, &str)], listen: &str) -> Self {
        // The log goes to a file: a pipe nobody reads would fill and stall the gateway.
        let log = dir.join("gateway.log");
        let mut child = Command::new(bin("gateway"))
            .args(args)
            .args(["--listen", listen])
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
            dir: dir.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Kill the process (as a crash would) and start it again on the same address and config,
    /// as a supervisor restarting it would: its peers find it where they knew it.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.addr().to_string();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = self
            .envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let again = Self::spawn_on(&self.dir, &args, &envs, &addr);
        *self = again;
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

    /// Send the process SIGTERM, as an orchestrator stopping it would.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Wait for the process to exit, at most `secs` seconds (panics with its log after).
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().expect("the gateway's status") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the gateway did not exit within {secs} s:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// How many file descriptors the process has open now (sockets, files, the database).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the gateway's /proc fd folder")
            .count()
    }

    /// The most memory the process has held (its peak resident set), in MiB.
    pub fn peak_rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the gateway's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb / 1024)
            .expect("VmHWM in /proc status")
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

    /// Start `mvrec` against this gateway and leave it running (its output piped).
    pub fn mvrec_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(bin("mvrec"))
            .args(["--gateway", &self.url])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mvrec")
    }
}

/// `gateway --config CONFIG check`.
pub fn gateway_check(config: &Path) -> Output {
    Command::new(bin("gateway"))
        .args(["--config", config.to_str().expect("utf-8 path"), "check"])
        .output()
        .expect("run gateway check")
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

/// A fresh directory with a `data` folder, the embedded default's bucket. The folder holds a
/// hidden file (which no listing shows), so that the embedded default, which writes its
/// sample into an empty one, leaves it to the test.
pub fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(dir.path().join("data/.keep"), "").expect("data/.keep");
    dir
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
