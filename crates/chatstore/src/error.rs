//! The one error type of the core crate.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in chatstore.
///
/// Every variant names what was wrong, so a host can show the message as is.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The store is held by another process for longer than the caller's
    /// deadline (`Options::attach_timeout_ms`): a sled store's lock with
    /// nobody serving it, or an LMDB store's write lock.
    Locked {
        /// The store's path.
        path: PathBuf,
        /// Who holds what, as far as is known.
        reason: String,
    },
    /// A record that a write or query refers to does not exist.
    NotFound {
        /// What was looked for, e.g. `member 2669 of tenant 2`.
        what: String,
    },
    /// A request or record is malformed: a field is out of range, too long, or of
    /// the wrong shape.
    InvalidInput {
        /// The field or parameter at fault.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A write would break a rule of the data model (for example deleting an
    /// agent that still has sessions), or a request needs what the store was
    /// created without (searching a tenant's messages in a store without the
    /// message-text index).
    Conflict {
        /// What rule would be broken.
        reason: String,
    },
    /// The store was written by a newer chatstore (or is not a chatstore store).
    Format {
        /// What was found.
        reason: String,
    },
    /// A stored value could not be decoded: the store is damaged.
    Corrupt {
        /// Which key or record.
        reason: String,
    },
    /// A fault of chatstore itself, not of the input or the store: a
    /// panic caught in a write or in the owning process, a value that could
    /// not be rendered, an answer of the wrong kind. Please report it.
    Internal {
        /// What went wrong.
        reason: String,
    },
    /// A line of a JSON Lines import was refused.
    Import {
        /// 1-based line number.
        line: u64,
        /// The underlying error.
        source: Box<Error>,
    },
    /// The store handle was closed.
    Closed,
    /// A call served by the process that owns the store failed there: its
    /// kind and message as that process reported them.
    Remote {
        /// What kind of error it was.
        kind: ErrorKind,
        /// Its message.
        message: String,
    },
    /// An error of the storage engine (LMDB or sled), with the store's path.
    Storage(String),
    /// An I/O error outside the storage engine (import or export files).
    Io(std::io::Error),
}

/// The category of an error, the same in every binding (C status codes,
/// PHP and Python exception classes are derived from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Locked`].
    Locked,
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::InvalidInput`] (and import lines refused for their content).
    InvalidInput,
    /// [`Error::Conflict`].
    Conflict,
    /// [`Error::Format`].
    Format,
    /// [`Error::Corrupt`].
    Corrupt,
    /// [`Error::Closed`].
    Closed,
    /// [`Error::Storage`] and [`Error::Io`].
    Io,
    /// [`Error::Internal`].
    Internal,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A shorthand for [`Error::NotFound`].
    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    /// A shorthand for [`Error::Internal`].
    pub fn internal(reason: impl Into<String>) -> Self {
        Error::Internal {
            reason: reason.into(),
        }
    }

    /// A shorthand for [`Error::Corrupt`].
    pub fn corrupt(reason: impl Into<String>) -> Self {
        Error::Corrupt {
            reason: reason.into(),
        }
    }

    /// The error's category; an import error has its line's category.
    pub fn kind(&self) -> ErrorKind {
        match self.root() {
            Error::Locked { .. } => ErrorKind::Locked,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Format { .. } => ErrorKind::Format,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Internal { .. } => ErrorKind::Internal,
            Error::Closed => ErrorKind::Closed,
            Error::Remote { kind, .. } => *kind,
            _ => ErrorKind::Io,
        }
    }

    /// The same error again, for each of several callers a failure hit
    /// (a shared commit): the variant and message are kept; an I/O error
    /// becomes [`Error::Storage`] with its message.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Locked { path, reason } => Error::Locked {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::NotFound { what } => Error::NotFound { what: what.clone() },
            Error::InvalidInput { field, reason } => Error::invalid(field.clone(), reason.clone()),
            Error::Conflict { reason } => Error::Conflict {
                reason: reason.clone(),
            },
            Error::Format { reason } => Error::Format {
                reason: reason.clone(),
            },
            Error::Corrupt { reason } => Error::corrupt(reason.clone()),
            Error::Internal { reason } => Error::internal(reason.clone()),
            Error::Import { line, source } => Error::Import {
                line: *line,
                source: Box::new(source.duplicate()),
            },
            Error::Closed => Error::Closed,
            Error::Remote { kind, message } => Error::Remote {
                kind: *kind,
                message: message.clone(),
            },
            Error::Storage(m) => Error::Storage(m.clone()),
            Error::Io(e) => Error::Storage(e.to_string()),
        }
    }

    /// The innermost error (through [`Error::Import`]).
    pub fn root(&self) -> &Error {
        match self {
            Error::Import { source, .. } => source.root(),
            other => other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Locked { path, reason } => write!(
                f,
                "store {} is locked by another process: {reason}",
                path.display()
            ),
            Error::NotFound { what } => write!(f, "{what} not found"),
            Error::InvalidInput { field, reason } => write!(f, "invalid {field}: {reason}"),
            Error::Conflict { reason } => write!(f, "conflict: {reason}"),
            Error::Format { reason } => write!(f, "unsupported store format: {reason}"),
            Error::Corrupt { reason } => write!(f, "store is corrupt: {reason}"),
            Error::Internal { reason } => {
                write!(
                    f,
                    "internal error in chatstore (please report it): {reason}"
                )
            }
            Error::Import { line, source } => write!(f, "line {line}: {source}"),
            Error::Closed => write!(f, "store is closed"),
            Error::Remote { message, .. } => f.write_str(message),
            Error::Storage(e) => write!(f, "storage error: {e}"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Import { source, .. } => Some(source.as_ref()),
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// The text of a panic's payload (a `&str` or `String` message, as
/// `panic!` makes them), for the boundaries that catch panics (the C ABI,
/// Python, the command line) and report them as errors.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod panic_tests {
    #[test]
    fn panic_messages_are_read_from_either_payload() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let s = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        let n = 3;
        let f = std::panic::catch_unwind(move || panic!("formatted {n}")).unwrap_err();
        std::panic::set_hook(quiet);
        assert_eq!(super::panic_message(s.as_ref()), "plain");
        assert_eq!(super::panic_message(f.as_ref()), "formatted 3");
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn internal_faults_are_not_reported_as_corruption() {
        let e = Error::internal("rendering JSON: oops");
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.to_string().contains("please report it"), "{e}");
        assert_eq!(e.duplicate().kind(), ErrorKind::Internal);
        // Through an import line too.
        let line = Error::Import {
            line: 3,
            source: Box::new(Error::internal("x")),
        };
        assert_eq!(line.kind(), ErrorKind::Internal);
        assert_eq!(Error::corrupt("bad value").kind(), ErrorKind::Corrupt);
    }
}
