//! `onedb._onedb`: the embedded door of the Python package. It opens a data
//! directory with the onedb crate itself and runs OQL through the same
//! `Runner` as the shell and the server; the GIL is released while the
//! engine works. The Python side (`onedb/__init__.py`) wraps it in the
//! package's one API, shared with the TCP client.

mod convert;
mod embedded;
mod errors;
mod events;

use pyo3::prelude::*;

#[pymodule]
fn _onedb(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<embedded::Engine>()?;
    m.add_class::<embedded::Session>()?;
    m.add_class::<events::Events>()?;
    m.add_function(wrap_pyfunction!(convert::encode_json, m)?)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
