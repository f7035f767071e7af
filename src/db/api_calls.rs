//! The `api_calls` meter. Every server request counts against its org's
//! monthly `api_calls`; storing each count in its own commit would cost a
//! WAL sync per request (a point query over TCP waited ~4 ms for it). So
//! calls are counted here, in memory, checked against the limit together
//! with what is stored, and stored in one commit per org by
//! `Database::store_api_calls`, which a server runs every second and when
//! it stops. A crash forgets at most the last second's calls; the limit is
//! never passed.
//!
//! Counting is a request's bookkeeping, so it is kept to one uncontended
//! lock: a session keeps its org's `OrgCalls` (no map lookup), and no
//! clock is read (the server's timer stores).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};

/// Calls counted and not stored yet, per org (0: the platform).
#[derive(Default)]
pub(crate) struct ApiCalls {
    orgs: Mutex<HashMap<u128, Arc<OrgCalls>>>,
}

/// One org's calls counted and not stored yet.
#[derive(Default)]
pub(crate) struct OrgCalls {
    pending: Mutex<i64>,
}

impl ApiCalls {
    /// The org `org`'s counter (made on its first call).
    pub(crate) fn of(&self, org: u128) -> Arc<OrgCalls> {
        self.orgs.lock().entry(org).or_default().clone()
    }

    /// Stores every org's pending calls with `store(org, calls)`.
    pub(crate) fn store_all(&self, mut store: impl FnMut(u128, i64) -> Result<()>) -> Result<()> {
        let orgs: Vec<_> = self
            .orgs
            .lock()
            .iter()
            .map(|(o, p)| (*o, p.clone()))
            .collect();
        for (org, calls) in orgs {
            // Held across the store: a concurrent count sees the calls
            // either pending or stored, never neither.
            let mut pending = calls.pending.lock();
            if *pending > 0 {
                store(org, *pending)?;
                *pending = 0;
            }
        }
        Ok(())
    }
}

impl OrgCalls {
    /// Counts one call of the org (`label` in messages): `LIMIT_REACHED`
    /// (and nothing counted) if stored and pending calls reached `limit`.
    /// `stored` reads this month's stored count (only when there is a
    /// limit). The lock is held across the check, so concurrent calls
    /// never pass the limit together.
    pub(crate) fn count(
        &self,
        label: &str,
        limit: Option<i64>,
        stored: impl FnOnce() -> Result<i64>,
    ) -> Result<()> {
        let mut pending = self.pending.lock();
        if let Some(limit) = limit
            && stored()? + *pending >= limit
        {
            return Err(Error::new(
                ErrorCode::LimitReached,
                format!("organization {label}: api_calls limit {limit} reached"),
            ));
        }
        *pending += 1;
        Ok(())
    }
}
