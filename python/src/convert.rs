//! Python values ⇄ the engine's JSON values. Parameters come in as Python
//! objects (number buffers such as numpy arrays read in place, never through
//! Python floats);
//! rows go out as lists, dicts, str, int, float, bool and None.

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PySequence, PyString, PyTuple};
use serde_json::{Map, Number, Value as Json};

use crate::errors::invalid;

/// Nested lists and maps deeper than this are refused (no stack overflow).
const MAX_DEPTH: usize = 128;

/// A row value for Python.
pub fn to_py<'py>(py: Python<'py>, value: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(items) => PyList::new(
            py,
            items
                .iter()
                .map(|i| to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Json::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Rows for Python: a list of lists.
pub fn rows_to_py<'py>(py: Python<'py>, rows: &[Vec<Json>]) -> PyResult<Bound<'py, PyList>> {
    let rows = rows
        .iter()
        .map(|row| {
            PyList::new(
                py,
                row.iter()
                    .map(|c| to_py(py, c))
                    .collect::<PyResult<Vec<_>>>()?,
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, rows)
}

/// Parameters (`**params`) as the runner binds them: name → JSON value.
pub fn params(py: Python<'_>, params: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, Json)>> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(params.len());
    for (name, value) in params.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid(py, "parameter names are strings".into()))?;
        let bare = name.trim_start_matches('$').to_string();
        if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid(
                py,
                format!("parameter name {name:?} must be a word (letters, digits, _)"),
            ));
        }
        let json = from_py(&value, 0).map_err(|e| match e {
            Refused::Py(e) => e,
            Refused::Value(why) => invalid(py, format!("parameter ${bare}: {why}")),
        })?;
        out.push((bare, json));
    }
    Ok(out)
}

/// Why a Python value could not become a parameter.
enum Refused {
    Py(PyErr),
    Value(String),
}

impl From<PyErr> for Refused {
    fn from(e: PyErr) -> Self {
        Refused::Py(e)
    }
}

fn number(x: f64) -> Result<Json, Refused> {
    Number::from_f64(x)
        .map(Json::Number)
        .ok_or_else(|| Refused::Value(format!("{x} is not a finite number")))
}

/// A 1-D buffer of numbers (a numpy array, `array.array`, a
/// `memoryview`), read in place: no Python float is made per element.
fn from_buffer(value: &Bound<'_, PyAny>) -> Result<Option<Json>, Refused> {
    fn items<T: Element + Copy>(
        value: &Bound<'_, PyAny>,
        to: impl Fn(T) -> Result<Json, Refused>,
    ) -> Result<Option<Json>, Refused> {
        let Ok(buffer) = PyBuffer::<T>::get(value) else {
            return Ok(None);
        };
        if buffer.dimensions() != 1 {
            return Err(Refused::Value(format!(
                "an array with {} dimensions (only 1-D arrays are values)",
                buffer.dimensions()
            )));
        }
        // One copy of the raw numbers (safe while other threads may write
        // the buffer), then straight to JSON.
        let numbers = buffer.to_vec(value.py())?;
        Ok(Some(Json::Array(
            numbers.into_iter().map(to).collect::<Result<_, _>>()?,
        )))
    }
    // Strings and bytes are buffers of bytes, not number arrays.
    if value.is_instance_of::<PyBytes>() {
        return Ok(None);
    }
    if let Some(json) = items::<f32>(value, |x| number(f64::from(x)))? {
        return Ok(Some(json));
    }
    if let Some(json) = items::<f64>(value, number)? {
        return Ok(Some(json));
    }
    if let Some(json) = items::<i64>(value, |x| Ok(Json::from(x)))? {
        return Ok(Some(json));
    }
    items::<i32>(value, |x| Ok(Json::from(x)))
}

static DATETIME: PyOnceLock<(Py<PyAny>, Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// `datetime` → epoch milliseconds (a naive one is taken as UTC); a `date`
/// → its midnight UTC.
fn from_datetime(value: &Bound<'_, PyAny>) -> Result<Option<Json>, Refused> {
    let py = value.py();
    let (datetime, date, utc) = DATETIME.get_or_try_init(py, || -> PyResult<_> {
        let m = py.import("datetime")?;
        let utc = m.getattr("timezone")?.getattr("utc")?;
        Ok((
            m.getattr("datetime")?.unbind(),
            m.getattr("date")?.unbind(),
            utc.unbind(),
        ))
    })?;
    let moment = if value.is_instance(datetime.bind(py))? {
        if value.getattr("tzinfo")?.is_none() {
            let kwargs = PyDict::new(py);
            kwargs.set_item("tzinfo", utc.bind(py))?;
            value.call_method("replace", (), Some(&kwargs))?
        } else {
            value.clone()
        }
    } else if value.is_instance(date.bind(py))? {
        let (y, m, d): (i32, u32, u32) = (
            value.getattr("year")?.extract()?,
            value.getattr("month")?.extract()?,
            value.getattr("day")?.extract()?,
        );
        let kwargs = PyDict::new(py);
        kwargs.set_item("tzinfo", utc.bind(py))?;
        datetime.bind(py).call((y, m, d), Some(&kwargs))?
    } else {
        return Ok(None);
    };
    let seconds: f64 = moment.call_method0("timestamp")?.extract()?;
    Ok(Some(Json::from((seconds * 1000.0).round() as i64)))
}

fn from_py(value: &Bound<'_, PyAny>, depth: usize) -> Result<Json, Refused> {
    if depth > MAX_DEPTH {
        return Err(Refused::Value(format!(
            "nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if value.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Json::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Json::from(u));
        }
        return Err(Refused::Value("an integer outside 64 bits".into()));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return number(f.value());
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Json::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let Ok(k) = k.cast::<PyString>() else {
                return Err(Refused::Value("map keys must be strings".into()));
            };
            map.insert(k.to_cow()?.into_owned(), from_py(&v, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    if let Ok(l) = value.cast::<PyList>() {
        return l
            .iter()
            .map(|v| from_py(&v, depth + 1))
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Ok(t) = value.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| from_py(&v, depth + 1))
            .collect::<Result<_, _>>()
            .map(Json::Array);
    }
    if let Some(json) = from_buffer(value)? {
        return Ok(json);
    }
    if let Some(json) = from_datetime(value)? {
        return Ok(json);
    }
    // numpy scalars and other numbers: what they say they are.
    if value.hasattr("__index__")?
        && let Ok(i) = value.call_method0("__index__")?.extract::<i64>()
    {
        return Ok(Json::from(i));
    }
    if value.hasattr("__float__")? && !value.is_instance_of::<PyBytes>() {
        return number(value.call_method0("__float__")?.extract::<f64>()?);
    }
    // Any other sequence (a numpy array of another dtype, array.array,
    // range…): its items.
    if let Ok(seq) = value.cast::<PySequence>()
        && !value.is_instance_of::<PyBytes>()
    {
        let mut items = Vec::new();
        for item in seq.try_iter()? {
            items.push(from_py(&item?, depth + 1)?);
        }
        return Ok(Json::Array(items));
    }
    Err(Refused::Value(format!(
        "a {} is not a value (use None, bool, int, float, str, list, dict, datetime or a numpy array)",
        value.get_type().name()?
    )))
}

/// JSON text of a value as parameters take it (number buffers read in
/// place): the TCP client's encoder for values `json` does not know.
#[pyfunction]
pub fn encode_json(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    match from_py(value, 0) {
        Ok(json) => Ok(json.to_string()),
        Err(Refused::Py(e)) => Err(e),
        Err(Refused::Value(why)) => Err(invalid(py, why)),
    }
}
