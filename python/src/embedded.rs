//! The embedded door: `Engine` is an open data directory, `Session` one
//! person's session on it with its own runner (LET variables, current
//! org, open block). Every engine call runs with the GIL released, so
//! Python threads with their own sessions run queries in parallel.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use onedb::query::run::{Outcome, Runner};
use onedb::query::script::run_text;
use onedb::{Database, Durability, Error, ErrorCode, Options, Store};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value as Json;

use crate::convert::{params, rows_to_py};
use crate::errors::to_py;
use crate::events::Events;

self_cell::self_cell!(
    /// A session and the runner that borrows it.
    struct Live {
        owner: onedb::Session,
        #[not_covariant]
        dependent: Runner,
    }
);

/// An error and the index of the statement it came from.
type Failed = (Error, Option<usize>);

fn closed(what: &str) -> Error {
    Error::new(ErrorCode::InvalidArgument, format!("the {what} is closed"))
}

/// An open data directory.
#[pyclass(module = "onedb._onedb", frozen)]
pub struct Engine {
    db: Mutex<Option<Database>>,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (path, durability, store = "rocks"))]
    fn new(py: Python<'_>, path: PathBuf, durability: &str, store: &str) -> PyResult<Engine> {
        let durability = Durability::parse(durability).map_err(|e| to_py(py, &e, None, None))?;
        let store = Store::parse(store).map_err(|e| to_py(py, &e, None, None))?;
        let options = Options {
            durability,
            store,
            ..Default::default()
        };
        let db = py
            .detach(|| Database::open_with(&path, options))
            .map_err(|e| to_py(py, &e, None, None))?;
        Ok(Engine {
            db: Mutex::new(Some(db)),
        })
    }

    /// A session acting as root (local mode), or as the person whose login
    /// is `as_email`.
    #[pyo3(signature = (as_email=None))]
    fn session(&self, py: Python<'_>, as_email: Option<String>) -> PyResult<Session> {
        let session = py
            .detach(|| {
                let db = self.db.lock().clone().ok_or_else(|| closed("database"))?;
                match &as_email {
                    Some(email) => db.session_as(email),
                    None => db.local_session(),
                }
            })
            .map_err(|e| to_py(py, &e, None, None))?;
        Ok(Session::new(session))
    }

    /// Closes the data directory once no session of it is left open.
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(self.db.lock().take()));
    }
}

/// One person's session with its runner.
#[pyclass(module = "onedb._onedb", frozen)]
pub struct Session {
    live: Mutex<Option<Live>>,
    /// Set by `cancel` from another thread; cleared when a query starts.
    cancel: Arc<AtomicBool>,
}

impl Session {
    fn new(session: onedb::Session) -> Session {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let live = Live::new(session, |s| {
            let mut runner = Runner::new(s);
            runner.set_cancel(Some(flag));
            runner
        });
        Session {
            live: Mutex::new(Some(live)),
            cancel,
        }
    }

    /// Runs `work` on the runner with the GIL released.
    fn with_runner<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut Runner<'_>) -> Result<T, Failed> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.live.lock();
            let live = guard.as_mut().ok_or_else(|| (closed("session"), None))?;
            live.with_dependent_mut(|_, runner| work(runner))
        })
        .map_err(|(e, statement)| to_py(py, &e, statement, None))
    }
}

/// Binds the parameters and runs the statements of `text` in order: the
/// last one's outcome, or the first error with its statement's index.
fn run(
    runner: &mut Runner<'_>,
    text: &str,
    params: Vec<(String, Json)>,
) -> Result<Outcome, Failed> {
    for (name, value) in params {
        runner.set_param(&name, value).map_err(|e| (e, None))?;
    }
    run_text(runner, text)
}

/// An outcome as `(columns, rows, stats)`.
fn outcome_to_py<'py>(py: Python<'py>, outcome: &Outcome) -> PyResult<Bound<'py, PyAny>> {
    let stats = PyDict::new(py);
    stats.set_item(pyo3::intern!(py, "rows"), outcome.stats.rows)?;
    stats.set_item(pyo3::intern!(py, "micros"), outcome.stats.micros)?;
    let columns = PyList::new(py, &outcome.columns)?;
    Ok((columns, rows_to_py(py, &outcome.rows)?, stats)
        .into_pyobject(py)?
        .into_any())
}

#[pymethods]
impl Session {
    /// Runs `text` (one or more statements) with `params` bound as
    /// `$name`s; returns `(columns, rows, stats)` of the last statement.
    #[pyo3(signature = (text, params=None))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        params: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = crate::convert::params(py, params)?;
        self.cancel.store(false, Ordering::SeqCst);
        let outcome = self.with_runner(py, |runner| run(runner, text, params))?;
        outcome_to_py(py, &outcome)
    }

    /// Runs each `(text, params)` in order in one engine call; the
    /// outcomes, or the first error (with `.index`, its place in the list).
    fn query_many<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut work = Vec::with_capacity(items.len());
        for item in items.iter() {
            let (text, p): (String, Option<Bound<'py, PyDict>>) = item.extract()?;
            work.push((text, params(py, p.as_ref())?));
        }
        self.cancel.store(false, Ordering::SeqCst);
        let results = self.with_runner(py, |runner| {
            let mut results = Vec::with_capacity(work.len());
            for (text, p) in work {
                results.push(run(runner, &text, p));
            }
            Ok(results)
        })?;
        let out = PyList::empty(py);
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(outcome) => out.append(outcome_to_py(py, &outcome)?)?,
                Err((e, statement)) => {
                    let err = to_py(py, &e, statement, None);
                    err.value(py).setattr("index", index)?;
                    return Err(err);
                }
            }
        }
        Ok(out)
    }

    /// Stops the query running on this session (from another thread): it
    /// raises `onedb.Cancelled`.
    fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Subscribes to the events an `EVENTS` statement asks for, in the
    /// current org; `after` resumes after that commit.
    #[pyo3(signature = (text, params=None, after=None, queue=10_000))]
    fn subscribe(
        &self,
        py: Python<'_>,
        text: &str,
        params: Option<&Bound<'_, PyDict>>,
        after: Option<u64>,
        queue: usize,
    ) -> PyResult<Events> {
        let params = crate::convert::params(py, params)?;
        let (signal, wake) = Events::signal();
        let subscription = self.with_runner(py, |runner| {
            for (name, value) in params {
                runner.set_param(&name, value).map_err(|e| (e, None))?;
            }
            runner
                .subscribe(text, after, queue, wake)
                .map_err(|e| (e, None))
        })?;
        Ok(Events::new(subscription, signal))
    }

    /// For the bench (python/bench/bench.py): runs `text` with `params`
    /// `times` times from Rust, as a Rust program would (bind, execute),
    /// without Python in the loop; the seconds it took.
    #[pyo3(signature = (text, params, times))]
    fn _repeat(
        &self,
        py: Python<'_>,
        text: &str,
        params: Option<&Bound<'_, PyDict>>,
        times: u64,
    ) -> PyResult<f64> {
        let params = crate::convert::params(py, params)?;
        self.with_runner(py, |runner| {
            let started = std::time::Instant::now();
            for _ in 0..times {
                for (name, value) in &params {
                    runner
                        .set_param(name, value.clone())
                        .map_err(|e| (e, None))?;
                }
                std::hint::black_box(runner.execute(text).map_err(|e| (e, None))?);
            }
            Ok(started.elapsed().as_secs_f64())
        })
    }

    /// The current org's slug (None: the platform).
    #[getter]
    fn org(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with_runner(py, |runner| Ok(runner.org_slug().map(str::to_string)))
    }

    /// Ends the session (an open block is rolled back).
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(self.live.lock().take()));
    }
}
