//! Bulk load: N things created inside ONE transaction, against raw batched
//! writes of the same keys and values (one `WriteBatch` per load, the
//! key/values taken from a diff of `Database::raw_entries` around one such
//! load on a scratch database; fresh keys on every iteration).
//!
//! Each mode is measured by criterion (raw, then onedb) and interleaved
//! (one load of each alternating on two open directories).
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::time::{Duration, SystemTime};

use common::{Replay, Target};
use criterion::{Criterion, Throughput, black_box};
use onedb::{Durability, Session};

/// Things per transaction.
const N: u64 = 1_000;

fn load(session: &Session, first: u64) -> u64 {
    let mut t = session.write().expect("write txn");
    for n in first..first + N {
        t.create_thing(common::new_thing(n)).expect("create thing");
    }
    t.commit().expect("commit")
}

fn load_writes() -> Replay {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
    load(&owner, 0);
    let before = common::snapshot(&db);
    load(&owner, N);
    let after = common::snapshot(&db);
    Replay::new(common::diff(&before, &after))
}

fn bench(c: &mut Criterion, group: &str, durability: Durability) {
    let sync = durability == Durability::Sync;
    let mut replay = load_writes();
    eprintln!(
        "{group}: a load of {N} things writes {}",
        common::describe(&replay.changes)
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(N));
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = common::open_raw(dir.path());
        g.bench_function("raw_batch", |b| b.iter(|| replay.write(&raw, sync)));
    }
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, owner) = common::db_with_owner(dir.path(), durability);
        let mut first = 0;
        g.bench_function("onedb", |b| {
            b.iter(|| {
                first += N;
                black_box(load(&owner, first))
            })
        });
    }
    g.finish();

    // Interleaved check: one load of each at a time, alternating.
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = common::open_raw(raw_dir.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, owner) = common::db_with_owner(dir.path(), durability);
    let mut first = 1_000_000_000;
    let (o, r) = common::interleaved(
        1,
        Duration::from_secs(4),
        || {
            first += N;
            black_box(load(&owner, first));
        },
        || replay.write(&raw, sync),
    );
    println!(
        "{group} interleaved: onedb {:.2} ms ({} things/s), raw {:.2} ms ({} things/s), ratio {:.1}%",
        o / 1e6,
        common::rate(o / N as f64).trim_end_matches("/s"),
        r / 1e6,
        common::rate(r / N as f64).trim_end_matches("/s"),
        100.0 * r / o
    );
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion(10, Duration::from_secs(4));
    bench(&mut c, "bulk_load_relaxed", Durability::Relaxed);
    bench(&mut c, "bulk_load_sync", Durability::Sync);
    c.final_summary();
    common::report(
        &[
            Target {
                what: "bulk load 1,000 things, relaxed",
                onedb: "bulk_load_relaxed/onedb",
                raw: "bulk_load_relaxed/raw_batch",
                min_ratio: 0.5,
            },
            Target {
                what: "bulk load 1,000 things, sync",
                onedb: "bulk_load_sync/onedb",
                raw: "bulk_load_sync/raw_batch",
                min_ratio: 0.5,
            },
        ],
        since,
    );
}
