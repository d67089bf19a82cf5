//! Secrets, only ever by reference: the environment variable or file a config names holds the
//! value. A [`Secret`] never shows its value in `Debug`, and errors name where the secret
//! was looked for, never what it is.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

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

/// A password given by `password_env` or `password_file` (or neither; never both).
pub fn password(env: Option<&str>, file: Option<&Path>, base: &Path) -> Result<Option<Secret>> {
    match (env, file) {
        (Some(var), None) => from_env("password_env", var).map(Some),
        (None, Some(file)) => from_file("password_file", base, file).map(Some),
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Error::invalid(
            "give password_env or password_file, not both",
        )),
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
