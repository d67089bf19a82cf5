//! A throwaway MariaDB server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::free_port;

/// A throwaway MariaDB server: a fresh datadir in a temp dir, a free loopback port, user
/// `mover` with a password, database `test`. Killed when dropped.
pub struct Mariadb {
    child: Child,
    pub port: u16,
    /// The server's own options, given again after a crash.
    options: Vec<String>,
    dir: tempfile::TempDir,
}

impl Mariadb {
    pub const PASSWORD: &'static str = "maria-test-password-3Kq";

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `mariadbd` options (`--local-infile=0`, `--ssl-cert=...`).
    pub fn start_with(options: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        copy_tree(mariadb_template(&which("mariadb-install-db")), &data);
        // Each server its own temporary files.
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        // A free port can be taken by another test's server before this one binds it: the
        // server is ready only when the port answers with this server's own socket path.
        let mut attempts = 0;
        let (child, port) = loop {
            attempts += 1;
            let port = free_port();
            if let Some(child) = spawn_ready(dir.path(), port, &options) {
                break (child, port);
            }
            let log = std::fs::read_to_string(dir.path().join("mariadb.log")).unwrap_or_default();
            assert!(attempts < 5, "mariadbd did not start:\n{log}");
        };
        let server = Mariadb {
            child,
            port,
            options,
            dir,
        };
        server.sql(&format!(
            "CREATE USER mover@'%' IDENTIFIED BY '{}'; GRANT ALL ON *.* TO mover@'%'; \
             CREATE DATABASE test CHARACTER SET utf8mb4;",
            Self::PASSWORD
        ));
        server
    }

    /// The server killed as a crash would (SIGKILL, no chance to clean up), then started again
    /// on the same port and data: InnoDB recovers from its redo log.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(child) = spawn_ready(self.dir.path(), self.port, &self.options) {
                self.child = child;
                return;
            }
            let log = std::fs::read_to_string(self.dir.path().join("mariadb.log"));
            assert!(
                std::time::Instant::now() < deadline,
                "mariadbd did not start again:\n{}",
                log.unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
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

/// mariadbd on `port` over the data in `dir`, with `options` after the harness's own, once
/// it answers ([`answers_as`]); `None` if it exited or did not answer.
fn spawn_ready(dir: &Path, port: u16, options: &[String]) -> Option<Child> {
    let sock = dir.join("sock");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("mariadb.log"))
        .unwrap();
    let mut child = Command::new(which("mariadbd"))
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
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
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
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
