//! The panic guard around every export, and out-parameter helpers.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chatstore::Store;

use crate::error::{self, CsStatus, FfiError};
use crate::CsStore;

/// Runs `f`, records its outcome in the thread-local last error and returns
/// the status. A panic becomes [`CsStatus::Internal`].
pub(crate) fn guard(f: impl FnOnce() -> Result<(), FfiError>) -> i32 {
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

/// A store handle argument: NULL, or a handle from `cs_store_open`.
pub(crate) struct StoreArg<'a>(Option<&'a Store>);

impl<'a> StoreArg<'a> {
    /// Reads a handle argument.
    ///
    /// # Safety
    ///
    /// `p` is NULL or a handle returned by `cs_store_open` that is not
    /// closed (`cs_store_close`) before `'a` ends.
    pub(crate) unsafe fn new(p: *const CsStore) -> StoreArg<'a> {
        // SAFETY: non-NULL, `p` points to a live `CsStore` for `'a` (the
        // caller's contract).
        StoreArg(unsafe { p.as_ref() }.map(|s| &s.0))
    }

    /// The store, or the error naming the NULL argument.
    pub(crate) fn get(&self) -> Result<&'a Store, FfiError> {
        self.0.ok_or(FfiError::Null("store"))
    }
}

/// A text argument given as a pointer and a length (not NUL-terminated).
pub(crate) struct Bytes<'a>(Option<&'a [u8]>);

impl<'a> Bytes<'a> {
    /// Reads a pointer-and-length argument.
    ///
    /// # Safety
    ///
    /// `p` is NULL or points to `len` bytes that stay readable and unchanged
    /// for `'a`.
    pub(crate) unsafe fn new(p: *const c_char, len: usize) -> Bytes<'a> {
        if p.is_null() {
            return Bytes(None);
        }
        // SAFETY: `p` points to `len` readable bytes for `'a` (the caller's
        // contract).
        Bytes(Some(unsafe {
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }))
    }

    /// The text, or an error naming the argument `what` (NULL, not UTF-8).
    pub(crate) fn str(&self, what: &'static str) -> Result<&'a str, FfiError> {
        let b = self.0.ok_or(FfiError::Null(what))?;
        std::str::from_utf8(b).map_err(|_| FfiError::Utf8(what))
    }
}

/// A NUL-terminated text argument.
pub(crate) struct CText<'a>(Option<&'a CStr>);

impl<'a> CText<'a> {
    /// Reads a NUL-terminated argument.
    ///
    /// # Safety
    ///
    /// `p` is NULL or points to a NUL-terminated string that stays readable
    /// and unchanged for `'a`.
    pub(crate) unsafe fn new(p: *const c_char) -> CText<'a> {
        if p.is_null() {
            return CText(None);
        }
        // SAFETY: `p` is a NUL-terminated string readable for `'a` (the
        // caller's contract).
        CText(Some(unsafe { CStr::from_ptr(p) }))
    }

    /// Whether the argument is NULL.
    pub(crate) fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The text, or an error naming the argument `what` (NULL, not UTF-8).
    pub(crate) fn str(&self, what: &'static str) -> Result<&'a str, FfiError> {
        self.0
            .ok_or(FfiError::Null(what))?
            .to_str()
            .map_err(|_| FfiError::Utf8(what))
    }
}

/// An out-parameter: NULL, or where the call writes one `T`.
pub(crate) struct Out<'a, T> {
    p: *mut T,
    _life: PhantomData<&'a mut T>,
}

impl<'a, T> Out<'a, T> {
    /// Reads an out-parameter argument.
    ///
    /// # Safety
    ///
    /// `p` is NULL or points to memory where a `T` may be written, valid
    /// and not otherwise accessed for `'a`.
    pub(crate) unsafe fn new(p: *mut T) -> Out<'a, T> {
        Out {
            p,
            _life: PhantomData,
        }
    }

    /// The out-parameter, or an error naming it when it is NULL.
    pub(crate) fn required(self, what: &'static str) -> Result<Out<'a, T>, FfiError> {
        if self.p.is_null() {
            Err(FfiError::Null(what))
        } else {
            Ok(self)
        }
    }

    /// Whether the caller asked for the value.
    pub(crate) fn is_set(&self) -> bool {
        !self.p.is_null()
    }

    /// Writes the value (nothing when NULL).
    pub(crate) fn set(&self, v: T) {
        if !self.p.is_null() {
            // SAFETY: a non-NULL `p` is writable for `'a` (`Out::new`'s
            // contract), and `self` lives within `'a`.
            unsafe { self.p.write(v) };
        }
    }
}

impl Out<'_, *mut c_char> {
    /// Writes an owned string, to be released with `cs_string_free`.
    pub(crate) fn set_string(&self, s: String) -> Result<(), FfiError> {
        let c = CString::new(s).map_err(|_| FfiError::Internal("NUL in output".into()))?;
        self.set(c.into_raw());
        Ok(())
    }
}
