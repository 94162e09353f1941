//! The CLI's error type.

use std::fmt;

/// What can stop a command.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum CliError {
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

impl CliError {
    /// Whether standard output was closed by its reader.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        let io = match self {
            CliError::Io(_, e) => Some(e),
            CliError::Store(chatstore::Error::Io(e)) => Some(e),
            _ => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl From<chatstore::Error> for CliError {
    fn from(e: chatstore::Error) -> Self {
        CliError::Store(e)
    }
}
