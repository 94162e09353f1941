//! The CLI's error type.

use std::fmt;

/// What can stop a command.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// An error of the engine (its message names what was wrong).
    Store(chatstore::Error),
    /// Reading or writing a file or a stream.
    Io(String, std::io::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<chatstore::Error> for CliError {
    fn from(e: chatstore::Error) -> Self {
        CliError::Store(e)
    }
}
