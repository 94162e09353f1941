//! Status codes and the thread-local last error.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::fmt;

use chatstore::ErrorKind;

/// Status of a call: 0 or a negative code.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsStatus {
    /// Success.
    Ok = 0,
    /// A NULL pointer, invalid UTF-8, malformed JSON, or a value out of range.
    InvalidInput = -1,
    /// A record the call refers to does not exist.
    NotFound = -2,
    /// The store is held by another process.
    Locked = -3,
    /// The write would break a rule (e.g. deleting an agent with sessions).
    Conflict = -4,
    /// The store was written by a newer chatstore.
    Format = -5,
    /// The store is damaged.
    Corrupt = -6,
    /// An I/O or storage error.
    Io = -7,
    /// The store was closed.
    Closed = -8,
    /// A bug in chatstore (a caught panic).
    Internal = -9,
}

/// The errors of the C ABI layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum FfiError {
    /// An error of the engine.
    Core(chatstore::Error),
    /// A required pointer argument was NULL.
    Null(&'static str),
    /// A text argument was not UTF-8.
    Utf8(&'static str),
    /// A panic or another bug.
    Internal(String),
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FfiError::Core(e) => write!(f, "{e}"),
            FfiError::Null(what) => write!(f, "invalid {what}: NULL pointer"),
            FfiError::Utf8(what) => write!(f, "invalid {what}: not valid UTF-8"),
            FfiError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for FfiError {}

impl From<chatstore::Error> for FfiError {
    fn from(e: chatstore::Error) -> Self {
        FfiError::Core(e)
    }
}

impl FfiError {
    /// The status code of this error.
    pub fn status(&self) -> CsStatus {
        match self {
            FfiError::Core(e) => match e.kind() {
                ErrorKind::Locked => CsStatus::Locked,
                ErrorKind::NotFound => CsStatus::NotFound,
                ErrorKind::InvalidInput => CsStatus::InvalidInput,
                ErrorKind::Conflict => CsStatus::Conflict,
                ErrorKind::Format => CsStatus::Format,
                ErrorKind::Corrupt => CsStatus::Corrupt,
                ErrorKind::Closed => CsStatus::Closed,
                ErrorKind::Internal => CsStatus::Internal,
                _ => CsStatus::Io,
            },
            FfiError::Null(_) | FfiError::Utf8(_) => CsStatus::InvalidInput,
            FfiError::Internal(_) => CsStatus::Internal,
        }
    }
}

thread_local! {
    static LAST: RefCell<(i32, CString)> = RefCell::new((0, CString::default()));
}

/// Records the outcome of a call.
pub(crate) fn set(code: i32, message: &str) {
    let msg = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = (code, msg));
}

/// The last message (borrowed from the thread-local).
pub(crate) fn last_message() -> *const c_char {
    LAST.with(|l| l.borrow().1.as_ptr())
}

/// The last code.
pub(crate) fn last_code() -> i32 {
    LAST.with(|l| l.borrow().0)
}
