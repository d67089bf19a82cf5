//! A database's whole connection from db-facts (`db-facts json NAME`), as Records Mover
//! resolves `--source.db_name`: db-facts knows the type, host, port, database, user and
//! password, and fetches the password from whatever secrets service its own config names. Its
//! output holds the password, so it is held as a [`Secret`] until parsed, and never shown.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::{Secret, from_command};
use crate::error::{Error, Result};

/// The program run when the config names none.
pub const DEFAULT_COMMAND: &str = "db-facts";

/// What db-facts says of one database.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "type")]
    kind: Option<String>,
    protocol: Option<String>,
    host: Option<String>,
    port: Option<serde_json::Value>,
    database: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

/// A database's connection as db-facts gave it.
pub struct Facts {
    /// `postgres://user@host:port/database` or `mysql://...`: no password.
    pub url: String,
    pub password: Option<Secret>,
}

impl std::fmt::Debug for Facts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("url", &self.url)
            .field("password", &self.password)
            .finish()
    }
}

/// Run `command` (`["db-facts"]` unless the config says) with `json NAME`, within `timeout`.
/// A failure names the program, the database name and how it failed, never its output.
pub fn read(name: &str, command: &[String], base: &Path, timeout: Duration) -> Result<Facts> {
    let mut argv = match command {
        [] => vec![DEFAULT_COMMAND.to_string()],
        given => given.to_vec(),
    };
    argv.extend(["json".to_string(), name.to_string()]);
    let key = format!("db_facts {name:?}");
    let output = from_command(&key, base, &argv, timeout)?;
    let answer: Answer = serde_json::from_str(output.expose()).map_err(|e| {
        let program = &argv[0];
        Error::invalid(format!(
            "{key}: {program} printed no answer ({})",
            json_error(&e)
        ))
    })?;
    facts(&key, answer)
}

/// What kind of error, without the line and column text that could quote the output.
fn json_error(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "not the fields db-facts gives",
        serde_json::error::Category::Eof => "cut short",
    }
}

fn facts(key: &str, answer: Answer) -> Result<Facts> {
    let kind = answer
        .kind
        .or(answer.protocol)
        .ok_or_else(|| Error::invalid(format!("{key}: db-facts gives no type")))?;
    let scheme = match kind.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "redshift" => "postgres",
        "mysql" | "mariadb" => "mysql",
        other => {
            return Err(Error::invalid(format!(
                "{key}: a {other} database is not served here (postgres, redshift, mysql and mariadb are)"
            )));
        }
    };
    let missing = |what: &str| Error::invalid(format!("{key}: db-facts gives no {what}"));
    let host = answer.host.ok_or_else(|| missing("host"))?;
    let mut url = url::Url::parse(&format!("{scheme}://placeholder"))
        .map_err(|e| Error::internal(e.to_string()))?;
    url.set_host(Some(&host))
        .map_err(|e| Error::invalid(format!("{key}: host {host:?}: {e}")))?;
    let port = match answer.port {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(_) => None,
    };
    if let Some(port) = port {
        let _ = url.set_port(Some(port));
    }
    if let Some(user) = &answer.user {
        url.set_username(user)
            .map_err(|()| Error::invalid(format!("{key}: the user name cannot be in a URL")))?;
    }
    if let Some(database) = &answer.database {
        url.set_path(database);
    }
    Ok(Facts {
        url: url.to_string(),
        password: answer.password.map(Secret::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Result<Facts> {
        facts("db_facts \"w\"", serde_json::from_str(json).unwrap())
    }

    #[test]
    fn db_facts_answers_become_urls_without_their_password() {
        let f = answer(r#"{"type": "postgres", "host": "db.example", "port": 5439, "database": "analytics", "user": "mover", "password": "hunter2"}"#).unwrap();
        assert_eq!(f.url, "postgres://mover@db.example:5439/analytics");
        assert_eq!(f.password.as_ref().map(Secret::expose), Some("hunter2"));
        assert!(!format!("{f:?}").contains("hunter2"));
        let f = answer(r#"{"type": "mysql", "host": "127.0.0.1", "port": "3306", "database": "db", "user": "a@b"}"#).unwrap();
        assert_eq!(f.url, "mysql://a%40b@127.0.0.1:3306/db");
        assert!(f.password.is_none());
        let e = answer(r#"{"type": "vertica", "host": "h"}"#).unwrap_err();
        assert!(e.message.contains("vertica"), "{e}");
        let e = answer(r#"{"type": "postgres"}"#).unwrap_err();
        assert!(e.message.contains("no host"), "{e}");
    }
}
