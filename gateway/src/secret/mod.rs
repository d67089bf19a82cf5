//! Secrets, only ever by reference: the environment variable, file or program a config names
//! holds the value. A [`Secret`] never shows its value in `Debug`, and errors name where the
//! secret was looked for, never what it is.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

pub mod db_facts;

/// A secret read from where the config points; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The secret in the variable `var`, which `key` (the config key that named it) names.
pub fn from_env(key: &str, var: &str) -> Result<Secret> {
    std::env::var(var)
        .map(Secret)
        .map_err(|_| Error::invalid(format!("{key}: the variable {var} is not set")))
}

/// The secret in `file` (relative to `base`), without a trailing line end.
pub fn from_file(key: &str, base: &Path, file: &Path) -> Result<Secret> {
    let path = resolve(base, file);
    std::fs::read_to_string(&path)
        .map(|v| Secret(v.trim_end_matches(['\r', '\n']).to_string()))
        .map_err(|e| Error::invalid(format!("{key}: {}: {e}", path.display())))
}

/// Where a database's password is: at most one of these.
#[derive(Debug, Default, Clone, Copy)]
pub struct PasswordFrom<'a> {
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
    /// A program and its arguments, run without a shell.
    pub command: Option<&'a [String]>,
    /// A db-facts name, and the program that answers for it (empty: `db-facts`).
    pub db_facts: Option<(&'a str, &'a [String])>,
    /// How long the program may take.
    pub timeout: Duration,
}

/// A password given by `password_env`, `password_file`, `password_command` or `db_facts` (or
/// none; never two).
pub fn password(from: PasswordFrom, base: &Path) -> Result<Option<Secret>> {
    let given = [
        from.env.is_some(),
        from.file.is_some(),
        from.command.is_some(),
        from.db_facts.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Error::invalid(
            "give one of password_env, password_file, password_command and db_facts, not several",
        ));
    }
    if let Some(var) = from.env {
        return from_env("password_env", var).map(Some);
    }
    if let Some(file) = from.file {
        return from_file("password_file", base, file).map(Some);
    }
    if let Some(argv) = from.command {
        return from_command("password_command", base, argv, from.timeout).map(Some);
    }
    if let Some((name, command)) = from.db_facts {
        return db_facts::read(name, command, base, from.timeout).map(|f| f.password);
    }
    Ok(None)
}

/// How long a password program may take, unless the config says.
pub fn default_command_timeout_seconds() -> u64 {
    10
}

/// Reads a database's password again from where its config says (a rotated one).
pub type Reread = std::sync::Arc<dyn Fn() -> Result<Secret> + Send + Sync>;

/// What reads the password of `from` again, owning what it needs; `None` when the config
/// gives no password.
pub fn reread(from: PasswordFrom, base: &Path) -> Option<Reread> {
    let (env, file, command) = (
        from.env.map(str::to_string),
        from.file.map(Path::to_path_buf),
        from.command.map(<[String]>::to_vec),
    );
    let facts = from.db_facts.map(|(n, c)| (n.to_string(), c.to_vec()));
    if env.is_none() && file.is_none() && command.is_none() && facts.is_none() {
        return None;
    }
    let (timeout, base) = (from.timeout, base.to_path_buf());
    Some(std::sync::Arc::new(move || {
        let from = PasswordFrom {
            env: env.as_deref(),
            file: file.as_deref(),
            command: command.as_deref(),
            db_facts: facts.as_ref().map(|(n, c)| (n.as_str(), c.as_slice())),
            timeout,
        };
        password(from, &base)?.ok_or_else(|| Error::internal("the password went away"))
    }))
}

/// The most a password program may print.
const MAX_COMMAND_OUTPUT: u64 = 64 * 1024;

/// The secret a program prints: `argv[0]` (found on PATH, or relative to `base` when it holds
/// a `/`) run with the rest as its arguments, no shell, no input, within `timeout`; its
/// standard output, trimmed, is the secret. A failure names the program and how it failed
/// (could not start, its exit status, no answer in time, printed nothing), never what it
/// printed, on either stream.
pub fn from_command(key: &str, base: &Path, argv: &[String], timeout: Duration) -> Result<Secret> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::invalid(format!(
            "{key}: give the program to run, and its arguments"
        )));
    };
    let path = match program.contains('/') {
        true => resolve(base, Path::new(program)),
        false => PathBuf::from(program),
    };
    let failed = |why: String| Error::invalid(format!("{key}: {program} {why}"));
    let mut child = std::process::Command::new(&path)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot be run: {e}")))?;
    // Read on a thread of its own: a program that prints more than a pipe holds would
    // otherwise never exit.
    let stdout = child.stdout.take().expect("piped stdout");
    let reading = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout
            .take(MAX_COMMAND_OUTPUT + 1)
            .read_to_end(&mut out)
            .map(|_| out)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "gave no answer within {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Err(e) => return Err(failed(format!("cannot be waited for: {e}"))),
        }
    };
    let out = reading
        .join()
        .map_err(|_| failed("could not be read".into()))?
        .map_err(|e| failed(format!("could not be read: {e}")))?;
    // Too much output first: a program cut off by the closed pipe fails because of it.
    if out.len() as u64 > MAX_COMMAND_OUTPUT {
        return Err(failed(format!(
            "printed more than {MAX_COMMAND_OUTPUT} bytes"
        )));
    }
    if !status.success() {
        return Err(failed(format!("failed ({status})")));
    }
    let text =
        String::from_utf8(out).map_err(|_| failed("printed something that is not UTF-8".into()))?;
    match text.trim() {
        "" => Err(failed("printed nothing".into())),
        secret => Ok(Secret(secret.to_string())),
    }
}

/// A path from a config, resolved against the config's directory.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A URL that carries a password is refused: secrets come by reference.
pub fn refuse_inline_password(url: &str) -> Result<()> {
    if let Ok(parsed) = url::Url::parse(url)
        && parsed.password().is_some()
    {
        return Err(Error::invalid(
            "the URL carries a password; give it by reference with password_env or password_file",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], timeout: u64) -> Result<Secret> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        from_command(
            "password_command",
            Path::new("/"),
            &argv,
            Duration::from_secs(timeout),
        )
    }

    #[test]
    fn a_password_command_prints_the_secret_or_fails_naming_only_itself() {
        assert_eq!(
            run(&["printf", "  pw-Zq8 \\n"], 5).unwrap().expose(),
            "pw-Zq8"
        );
        let said = |argv: &[&str], timeout| run(argv, timeout).unwrap_err().message;
        let missing = said(&["no-such-program-x1"], 5);
        assert!(
            missing.contains("password_command: no-such-program-x1 cannot be run"),
            "{missing}"
        );
        // The exit status, never what it printed (on either stream).
        let failing = said(
            &["sh", "-c", "echo pw-leaked; echo pw-leaked >&2; exit 3"],
            5,
        );
        assert!(
            failing.contains("sh failed") && failing.contains('3'),
            "{failing}"
        );
        assert!(!failing.contains("pw-leaked"), "{failing}");
        let empty = said(&["true"], 5);
        assert!(empty.contains("true printed nothing"), "{empty}");
        let started = Instant::now();
        let slow = said(&["sleep", "30"], 1);
        assert!(slow.contains("sleep gave no answer within 1 s"), "{slow}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let chatty = said(&["sh", "-c", "yes pw-leaked | head -c 200000"], 5);
        assert!(
            chatty.contains("printed more than") && !chatty.contains("pw-leaked"),
            "{chatty}"
        );
        assert!(run(&[], 5).is_err());
    }
}
