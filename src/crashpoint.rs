//! Named crash points for tests (RELIABILITY.md C2): with
//! `ONEDB_CRASHPOINT=name` (or `name:N`, the Nth time) in the environment,
//! the process aborts when it reaches that point — as a power cut or a
//! `kill -9` landing exactly there would stop it. Unset, a check is one
//! load of an initialized cell.
//!
//! Points: `commit.after_write` (the batch is in RocksDB, nobody was
//! acknowledged), `index.before_commit` (changes applied to the tantivy
//! writer, not committed), `index.after_commit` (committed, the indexer's
//! state not yet updated), `vectors.after_write` (the new vector file is
//! written and synced under its temporary name, not yet renamed),
//! `vectors.after_rename` (renamed, the directory not yet synced).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed() -> &'static Option<Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = std::env::var("ONEDB_CRASHPOINT").ok()?;
        let (name, nth) = match spec.split_once(':') {
            Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some(Armed {
            name,
            nth,
            seen: AtomicU64::new(0),
        })
    })
}

/// Aborts the process if `name` is the armed crash point (its Nth visit).
pub fn hit(name: &str) {
    if let Some(a) = armed()
        && a.name == name
        && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
    {
        eprintln!("onedb: crash point {name} reached; aborting");
        std::process::abort();
    }
}
