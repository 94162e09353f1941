//! Which storage engine a store is made of, and how to tell from its
//! files. Low: imports only the error type, so `options` and `storage`
//! both build on it.

use std::path::Path;

use crate::error::{Error, Result};

/// LMDB's data file in a store directory.
pub(crate) const LMDB_DATA_FILE: &str = "data.mdb";

/// The engine a store is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// LMDB (through heed): the default for new stores; every process opens
    /// the store directly.
    Lmdb,
    /// sled 0.34.7: one process owns the store and serves the others.
    Sled,
}

impl Backend {
    /// Parses `"lmdb"` or `"sled"`.
    pub fn parse(s: &str) -> Result<Backend> {
        match s {
            "lmdb" => Ok(Backend::Lmdb),
            "sled" => Ok(Backend::Sled),
            other => Err(Error::invalid(
                "backend",
                format!("{other:?} is neither \"lmdb\" nor \"sled\""),
            )),
        }
    }

    /// LMDB, unless the environment variable `CHATSTORE_BACKEND` says
    /// `sled` (anything else is LMDB).
    pub fn default_for_new_stores() -> Backend {
        match std::env::var("CHATSTORE_BACKEND").as_deref() {
            Ok("sled") => Backend::Sled,
            _ => Backend::Lmdb,
        }
    }

    /// Whether other processes reach a store of this backend through an
    /// owner process (sled) rather than opening it themselves (LMDB).
    pub fn needs_owner(self) -> bool {
        self == Backend::Sled
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Lmdb => "lmdb",
            Backend::Sled => "sled",
        }
    }

    /// What the directory `path` already holds: a store of this backend, or
    /// `None` when it holds no store yet (absent or empty).
    pub fn of_existing(path: &Path) -> Option<Backend> {
        if path.join(LMDB_DATA_FILE).exists() {
            Some(Backend::Lmdb)
        } else if path.join("conf").exists() || path.join("db").exists() {
            Some(Backend::Sled)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
