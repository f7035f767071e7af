//! Engine errors become the package's exceptions: `onedb.Error` and one
//! subclass per stable code, defined once in Python (`onedb/_errors.py`) so
//! the embedded and the TCP door raise the same classes.

use onedb::{Error, ErrorCode};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static MAKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The exception for `error`; `statement` is the index of the failing
/// statement in a text of several, `last_seq` where a subscription ended.
pub fn to_py(
    py: Python<'_>,
    error: &Error,
    statement: Option<usize>,
    last_seq: Option<u64>,
) -> PyErr {
    match build(py, error, statement, last_seq) {
        Ok(e) => e,
        Err(e) => e,
    }
}

fn build(
    py: Python<'_>,
    error: &Error,
    statement: Option<usize>,
    last_seq: Option<u64>,
) -> PyResult<PyErr> {
    let make = MAKE.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("onedb._errors")?.getattr("make")?.unbind())
    })?;
    let details = PyDict::new(py);
    if let Some(p) = error.position {
        details.set_item("line", p.line)?;
        details.set_item("col", p.col)?;
    }
    if let Some(s) = statement {
        details.set_item("statement", s)?;
    }
    if let Some(s) = last_seq {
        details.set_item("last_seq", s)?;
    }
    let exception = make
        .bind(py)
        .call1((error.code.as_str(), error.message.as_str(), details))?;
    Ok(PyErr::from_value(exception))
}

/// `INVALID_ARGUMENT` for a value the engine cannot take.
pub fn invalid(py: Python<'_>, message: String) -> PyErr {
    to_py(
        py,
        &Error::new(ErrorCode::InvalidArgument, message),
        None,
        None,
    )
}
