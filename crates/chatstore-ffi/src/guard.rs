//! The panic guard around every export, and out-parameter helpers.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use chatstore::Store;

use crate::error::{self, CsStatus, FfiError};
use crate::CsStore;

/// Runs `f`, records its outcome in the thread-local last error and returns
/// the status. A panic becomes [`CsStatus::Internal`].
pub fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> i32 {
    let r = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(FfiError::Internal(chatstore::panic_message(p.as_ref()))),
    };
    match r {
        Ok(()) => {
            error::set(0, "");
            CsStatus::Ok as i32
        }
        Err(e) => {
            let code = e.status() as i32;
            error::set(code, &e.to_string());
            code
        }
    }
}

/// The store behind a handle.
pub fn store_ref<'a>(p: *const CsStore) -> Result<&'a Store, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null("store"));
    }
    // SAFETY: a non-NULL handle comes from cs_store_open and is not closed
    // while in use (documented in the header).
    Ok(&unsafe { &*p }.0)
}

/// An out-parameter.
pub struct Out<T>(*mut T);

impl<T> Out<T> {
    /// A required out-parameter.
    pub fn new(p: *mut T, what: &'static str) -> Result<Out<T>, FfiError> {
        if p.is_null() {
            Err(FfiError::Null(what))
        } else {
            Ok(Out(p))
        }
    }
    /// An out-parameter that may be NULL (then nothing is written).
    pub fn optional(p: *mut T) -> Out<T> {
        Out(p)
    }
    /// Whether the caller asked for the value.
    pub fn is_set(&self) -> bool {
        !self.0.is_null()
    }
    /// Writes the value (nothing when NULL).
    pub fn set(&self, v: T) {
        if !self.0.is_null() {
            // SAFETY: a non-NULL out-parameter points to writable memory (documented).
            unsafe { self.0.write(v) };
        }
    }
}

impl Out<*mut c_char> {
    /// Writes an owned string, to be released with `cs_string_free`.
    pub fn set_string(&self, s: String) -> Result<(), FfiError> {
        let c = CString::new(s).map_err(|_| FfiError::Internal("NUL in output".into()))?;
        self.set(c.into_raw());
        Ok(())
    }
}
