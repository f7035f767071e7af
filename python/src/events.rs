//! An embedded subscription: events taken from the engine's bounded queue,
//! waited for with the GIL released.

use std::sync::Arc;
use std::time::{Duration, Instant};

use onedb::db::{Ended, SubscriptionReader, Wake};
use onedb::{Error, ErrorCode, Subscription};
use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// Set by the engine when events wait; the reader clears it before taking.
pub type Signal = Arc<(Mutex<bool>, Condvar)>;

/// Events taken at once, at most (whole commits).
const BATCH: usize = 512;

#[pyclass(module = "onedb._onedb", frozen)]
pub struct Events {
    subscription: Mutex<Option<Subscription>>,
    reader: SubscriptionReader,
    signal: Signal,
    start: u64,
}

enum Took {
    Events(Vec<String>),
    Ended(Ended),
    Closed,
}

impl Events {
    pub fn signal() -> (Signal, Wake) {
        let signal: Signal = Arc::new((Mutex::new(false), Condvar::new()));
        let s = signal.clone();
        let wake: Wake = Arc::new(move || {
            *s.0.lock() = true;
            s.1.notify_all();
        });
        (signal, wake)
    }

    pub fn new(subscription: Subscription, signal: Signal) -> Events {
        Events {
            reader: subscription.reader(),
            start: subscription.start(),
            subscription: Mutex::new(Some(subscription)),
            signal,
        }
    }

    fn wait(&self, timeout: Option<Duration>) -> Took {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.subscription.lock().is_none() {
                return Took::Closed;
            }
            *self.signal.0.lock() = false;
            let taken = self.reader.take(BATCH);
            if !taken.events.is_empty() {
                // The end (if any) is told once the queue is empty: next time.
                return Took::Events(taken.events.iter().map(|e| e.json.to_string()).collect());
            }
            if let Some(ended) = taken.ended {
                return Took::Ended(ended);
            }
            let mut flag = self.signal.0.lock();
            while !*flag {
                match deadline {
                    Some(d) => {
                        if self.signal.1.wait_until(&mut flag, d).timed_out() {
                            return Took::Events(Vec::new());
                        }
                    }
                    // Wake now and then to notice `close` from another thread.
                    None => {
                        self.signal
                            .1
                            .wait_for(&mut flag, Duration::from_millis(200));
                        if self.subscription.lock().is_none() {
                            return Took::Closed;
                        }
                    }
                }
            }
        }
    }
}

#[pymethods]
impl Events {
    /// The commit the subscription starts after.
    #[getter]
    fn start(&self) -> u64 {
        self.start
    }

    /// The next events (JSON texts, in commit order), waiting at most
    /// `timeout` seconds (None: until there are some): an empty list when
    /// none came in time, None once closed. A subscription that fell behind
    /// raises `onedb.Cancelled` with `last_seq`.
    #[pyo3(signature = (timeout=None))]
    fn take<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let timeout = match timeout {
            Some(t) if t.is_finite() && t >= 0.0 => Some(Duration::from_secs_f64(t.min(1e9))),
            Some(_) => {
                return Err(crate::errors::invalid(
                    py,
                    "timeout must be a number of seconds ≥ 0".into(),
                ));
            }
            None => None,
        };
        match py.detach(|| self.wait(timeout)) {
            Took::Events(events) => Ok(Some(PyList::new(py, events)?)),
            Took::Closed => Ok(None),
            Took::Ended(Ended::Cancelled { last_seq, message }) => Err(crate::errors::to_py(
                py,
                &Error::new(ErrorCode::Cancelled, message),
                None,
                Some(last_seq),
            )),
            Took::Ended(Ended::Failed { last_seq, error }) => {
                Err(crate::errors::to_py(py, &error, None, Some(last_seq)))
            }
        }
    }

    /// Ends the subscription.
    fn close(&self, py: Python<'_>) {
        py.detach(|| drop(self.subscription.lock().take()));
        let (lock, cvar) = &*self.signal;
        *lock.lock() = true;
        cvar.notify_all();
    }
}
