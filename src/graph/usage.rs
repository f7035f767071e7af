//! Usage counters and limits (ONTOLOGY.md "Organizations"): every write that
//! changes what is stored changes its counter in the same commit, bounded by
//! the org's limit.

use serde::Serialize;

use crate::error::Result;
use crate::graph::{ReadTxn, WriteTxn};
use crate::model::{COUNTERS, MONTHLY_COUNTERS, Millis, records::Org, time::month_of};

/// One line of `SHOW USAGE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub counter: String,
    pub used: i64,
    /// -1 for unlimited.
    pub limit: i64,
}

/// The stored counter name for a thing type's own count.
pub(crate) fn type_counter(kind: &str) -> String {
    let mut name = String::with_capacity(5 + kind.len());
    name.push_str("type:");
    name.push_str(kind);
    name
}

/// The stored counter name of a monthly counter for the current month.
pub(crate) fn monthly_counter(name: &str, now: Millis) -> String {
    format!("{name}:{}", month_of(now))
}

/// The limit on a counter (by its limit name), if any.
pub(crate) fn limit_of(org: Option<&Org>, limit_name: &str) -> Option<i64> {
    org.and_then(|o| o.limits.get(limit_name).copied())
        .filter(|l| *l >= 0)
}

impl ReadTxn<'_> {
    /// Adds `delta` to the counter stored as `counter`, bounded by the limit
    /// named `limit_name`.
    fn count(&mut self, limit_name: &str, counter: &str, delta: i64) -> Result<()> {
        let limit = limit_of(self.org.as_deref(), limit_name);
        let label = self.org.as_ref().map_or("platform", |o| o.slug.as_str());
        let key = self.tenant().counter(counter);
        self.txn.add_counter_with(key, delta, limit, || {
            format!(
                "organization {label}: {limit_name} limit {} reached",
                limit.unwrap_or(-1)
            )
        })
    }

    pub(crate) fn count_standard(&mut self, name: &str, delta: i64) -> Result<()> {
        self.count(name, name, delta)
    }

    pub(crate) fn count_thing_type(&mut self, kind: &str, delta: i64) -> Result<()> {
        self.count(kind, &type_counter(kind), delta)
    }

    pub(crate) fn count_monthly(&mut self, name: &str, delta: i64) -> Result<()> {
        self.count(name, &monthly_counter(name, self.now()), delta)
    }

    pub(crate) fn count_storage(&mut self, delta: i64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        self.count("storage_bytes", "storage_bytes", delta)
    }

    /// This month's stored `api_calls`.
    pub(crate) fn api_calls(&self) -> Result<i64> {
        self.counter_value(&monthly_counter("api_calls", self.now()))
    }

    /// The value of a stored counter as this transaction sees it.
    pub fn counter_value(&self, counter: &str) -> Result<i64> {
        self.txn.counter(&self.tenant().counter(counter))
    }

    /// Every standard counter, then each thing type with a limit or a count.
    pub fn usage(&self) -> Result<Vec<UsageRow>> {
        self.authorize(crate::ontology::Action::ReadAll)?;
        let org = self.org.as_deref();
        let mut rows = Vec::new();
        for name in COUNTERS {
            let stored = if MONTHLY_COUNTERS.contains(name) {
                monthly_counter(name, self.now())
            } else {
                name.to_string()
            };
            rows.push(UsageRow {
                counter: name.to_string(),
                used: self.counter_value(&stored)?,
                limit: limit_of(org, name).unwrap_or(-1),
            });
        }
        let prefix = self.tenant().counter("type:");
        let mut typed = Vec::new();
        for entry in self.txn.scan_prefix(&prefix[..prefix.len() - 1], false)? {
            let (key, _) = entry?;
            if let crate::keys::Key::Tenant(_, crate::keys::TenantKey::Counter(name)) =
                crate::keys::decode(&key)?
                && let Some(kind) = name.strip_prefix("type:")
            {
                typed.push(kind.to_string());
            }
        }
        if let Some(org) = org {
            for name in org.limits.keys() {
                if !COUNTERS.contains(&name.as_str()) && !typed.contains(name) {
                    typed.push(name.clone());
                }
            }
        }
        typed.sort();
        for kind in typed {
            let used = self.counter_value(&type_counter(&kind))?;
            let limit = limit_of(org, &kind).unwrap_or(-1);
            if used != 0 || limit >= 0 {
                rows.push(UsageRow {
                    counter: kind,
                    used,
                    limit,
                });
            }
        }
        Ok(rows)
    }
}

impl WriteTxn<'_> {
    /// Stores `calls` API calls in this month's counter (the session's
    /// meter does, in batches: `Session::count_api_call`).
    pub(crate) fn count_api_calls(&mut self, calls: i64) -> Result<()> {
        self.0.count_monthly("api_calls", calls)
    }
}
