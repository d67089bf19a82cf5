//! A SQLite database's keys in the config (none but the URL's path), and the connector built
//! from them.

use std::sync::Arc;

use serde::Deserialize;

use super::Sqlite;
use crate::connectors::{Connector, DatabaseOptions, Setup};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {}

impl DatabaseOptions for Options {
    /// `url` is `sqlite://relative/or/absolute.db`; a relative path is the config's.
    fn check(&self, url: &str, _setup: &Setup) -> Result<()> {
        match url.split_once("://") {
            Some((_, "")) | None => Err(Error::invalid("the URL names no path")),
            Some(_) => Ok(()),
        }
    }

    fn open(&self, name: &str, url: &str, setup: &Setup) -> Result<Arc<dyn Connector>> {
        self.check(url, setup)?;
        let (_, path) = url.split_once("://").expect("checked above");
        let path = setup.path(std::path::Path::new(path));
        Ok(Arc::new(Sqlite::open(name, path, setup.batch_rows)?))
    }
}
