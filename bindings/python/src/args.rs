//! Arguments as Python passes them: every method takes its numbers, texts
//! and paths through these types, so a value of the wrong type or out of
//! range is `chatstore.InvalidInputError` (also a `ValueError` and a
//! `TypeError`) for every method alike, where pyo3's own conversions raise a
//! bare `TypeError` or `OverflowError`. pyo3 notes which argument it was
//! converting ("while processing 'pagesize'"), which the error's text shows.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

/// How a value is shown in an error: its repr (cut to 60 characters) and
/// its type.
fn shown(obj: &Bound<'_, PyAny>) -> String {
    let repr = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into());
    let repr = match repr.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &repr[..at]),
        None => repr,
    };
    let ty = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{repr} ({ty})")
}

fn whole_number<'py, T: for<'a> FromPyObject<'a, 'py>>(
    obj: &Bound<'py, PyAny>,
    range: &str,
) -> PyResult<T> {
    let bad = || {
        crate::invalid(format!(
            "expected a whole number {range}, got {}",
            shown(obj)
        ))
    };
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(bad());
    }
    obj.extract::<T>().map_err(|_| bad())
}

/// An id, a count or a page: a Python `int` from 0 to 2^64 - 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Whole(pub u64);

impl<'a, 'py> FromPyObject<'a, 'py> for Whole {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        whole_number(&obj.to_owned(), "from 0 to 18446744073709551615").map(Whole)
    }
}

/// A page or page size the endpoints read leniently (below 1 becomes the
/// default): a Python `int` that fits 64 signed bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signed(pub i64);

impl<'a, 'py> FromPyObject<'a, 'py> for Signed {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        whole_number(&obj.to_owned(), "that fits 64 signed bits").map(Signed)
    }
}

/// A text: a Python `str`.
#[derive(Debug, Clone)]
pub(crate) struct Text(pub String);

impl<'a, 'py> FromPyObject<'a, 'py> for Text {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj = obj.to_owned();
        if !obj.is_instance_of::<PyString>() {
            return Err(crate::invalid(format!(
                "expected a str, got {}",
                shown(&obj)
            )));
        }
        obj.extract::<String>()
            .map(Text)
            .map_err(|e| crate::invalid(format!("not a valid text: {e}")))
    }
}

/// A file or store path: a `str` or an `os.PathLike`.
#[derive(Debug, Clone)]
pub(crate) struct StorePath(pub PathBuf);

impl<'a, 'py> FromPyObject<'a, 'py> for StorePath {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj = obj.to_owned();
        obj.extract::<PathBuf>().map(StorePath).map_err(|_| {
            crate::invalid(format!(
                "expected a path (str or os.PathLike), got {}",
                shown(&obj)
            ))
        })
    }
}
