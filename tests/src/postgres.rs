//! A throwaway Postgres server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::free_port;

/// A throwaway Postgres server: `initdb` in a temp dir, run as the `postgres` user when this
/// process is root (initdb refuses root), on a free loopback port; stopped when dropped.
/// The superuser is `mover` with the password [`Postgres::PASSWORD`] over TCP.
pub struct Postgres {
    child: Child,
    pub port: u16,
    /// How the server is started, again after a crash.
    args: Vec<String>,
    owner: Option<(u32, u32)>,
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
        // postgres exits and is started again on another.
        let mut attempts = 0;
        let (child, port) = loop {
            attempts += 1;
            let port = free_port();
            if let Some(child) = spawn_ready(&bin, owner, &args, port, dir.path()) {
                break (child, port);
            }
            let log = std::fs::read_to_string(dir.path().join("postgres.log")).unwrap_or_default();
            assert!(attempts < 5, "postgres did not start:\n{log}");
        };
        Postgres {
            child,
            port,
            args,
            owner,
            _dir: dir,
        }
    }

    /// The server killed as a crash would (SIGKILL to the postmaster and every backend, no
    /// chance to clean up), then started again on the same port and data: it recovers from
    /// its write-ahead log, as after a power cut.
    pub fn crash_and_restart(&mut self) {
        kill_group(&mut self.child);
        let dir = self._dir.path().to_path_buf();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // Until the killed backends are gone, the new server finds their shared memory
            // still in use and exits: it is started again.
            if let Some(child) =
                spawn_ready(&postgres_bin_dir(), self.owner, &self.args, self.port, &dir)
            {
                self.child = child;
                return;
            }
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "postgres did not start again:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// A URL without the password (the gateway takes it by reference).
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of another database on this server.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://mover@127.0.0.1:{}/{database}", self.port)
    }

    /// Run SQL with psql; returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql failed: {e}"))
    }

    /// Run SQL with psql in another database of this server.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        self.try_psql_in(database, sql)
            .unwrap_or_else(|e| panic!("psql failed: {e}"))
    }

    /// The same, with psql's error instead of a panic.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.try_psql_in("postgres", sql)
    }

    fn try_psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mover",
                "-d",
                database,
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
        kill_group(&mut self.child);
    }
}

/// Start postgres with `args` on `port` in its own process group, and wait until its pid file
/// says it is ready (as pg_ctl -w reads it); `None` if it exited or did not become ready in
/// 30 s.
fn spawn_ready(
    bin: &Path,
    owner: Option<(u32, u32)>,
    args: &[String],
    port: u16,
    dir: &Path,
) -> Option<Child> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .unwrap();
    let mut child = as_owner(Command::new(bin.join("postgres")), owner)
        .args(args)
        .args(["-p", &port.to_string()])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start postgres");
    let data = dir.join("data");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        let ours = pid_file.lines().next().map(str::trim) == Some(&child.id().to_string());
        if ours && pid_file.lines().nth(7).map(str::trim) == Some("ready") {
            return Some(child);
        }
        if std::time::Instant::now() > deadline {
            kill_group(&mut child);
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// SIGKILL to the server's whole process group (the postmaster and its backends), and wait
/// for the postmaster.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
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
