//! The `api_calls` meter. Every server request counts against its org's
//! monthly `api_calls`; storing each count in its own commit would cost a
//! WAL sync per request (a point query over TCP waited ~4 ms for it). So
//! calls are counted here, in memory, checked against the limit together
//! with what is stored, and stored in one commit per org at least once a
//! second (and when the server stops). A crash forgets at most the last
//! second's calls; the limit is never passed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};

/// How long counted calls may wait before they are stored.
const STORE_EVERY: Duration = Duration::from_secs(1);

/// Calls counted and not stored yet, per org (0: the platform).
#[derive(Default)]
pub(crate) struct ApiCalls {
    orgs: Mutex<HashMap<u128, Arc<Mutex<Pending>>>>,
}

struct Pending {
    calls: i64,
    since: Instant,
}

impl ApiCalls {
    fn pending(&self, org: u128) -> Arc<Mutex<Pending>> {
        self.orgs
            .lock()
            .entry(org)
            .or_insert_with(|| {
                Arc::new(Mutex::new(Pending {
                    calls: 0,
                    since: Instant::now(),
                }))
            })
            .clone()
    }

    /// Counts one call of the org `org`: `LIMIT_REACHED` (and nothing
    /// counted) if stored and pending calls reached `limit`. `stored` reads
    /// this month's stored count (only when there is a limit); `store`
    /// commits a batch. The org's lock is held across the check and any
    /// store, so concurrent calls never pass the limit together.
    pub(crate) fn count(
        &self,
        org: u128,
        label: &str,
        limit: Option<i64>,
        stored: impl FnOnce() -> Result<i64>,
        store: impl FnOnce(i64) -> Result<()>,
    ) -> Result<()> {
        let pending = self.pending(org);
        let mut pending = pending.lock();
        if let Some(limit) = limit
            && stored()? + pending.calls >= limit
        {
            return Err(Error::new(
                ErrorCode::LimitReached,
                format!("organization {label}: api_calls limit {limit} reached"),
            ));
        }
        if pending.calls == 0 {
            pending.since = Instant::now();
        }
        pending.calls += 1;
        if pending.since.elapsed() >= STORE_EVERY {
            store(pending.calls)?;
            pending.calls = 0;
        }
        Ok(())
    }

    /// Stores every org's pending calls with `store(org, calls)`.
    pub(crate) fn store_all(&self, mut store: impl FnMut(u128, i64) -> Result<()>) -> Result<()> {
        let orgs: Vec<_> = self
            .orgs
            .lock()
            .iter()
            .map(|(o, p)| (*o, p.clone()))
            .collect();
        for (org, pending) in orgs {
            let mut pending = pending.lock();
            if pending.calls > 0 {
                store(org, pending.calls)?;
                pending.calls = 0;
            }
        }
        Ok(())
    }
}
