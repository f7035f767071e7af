//! The standard mutation (a thing + an `owns` connection from its owner, with
//! indexes, edge entries, two events and the usage counters, in ONE commit)
//! against a raw RocksDB `WriteBatch` of the same keys and values, in both
//! durability modes.
//!
//! The baseline's key/values come from a diff of `Database::raw_entries`
//! around one standard mutation on a scratch database; each iteration
//! writes them again with fresh keys (see `common::Replay`).
//!
//! Each mode is measured twice: by criterion (raw, then onedb, each on its
//! own fresh directory), and interleaved (blocks of raw and onedb writes
//! alternating on two open directories), which is robust to drift in the
//! machine's fsync latency while the run lasts.
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
use onedb::Durability;

/// The key/values of one standard mutation in steady state (its counters
/// already exist), from a scratch database.
fn standard_mutation_writes() -> Replay {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
    let id = owner.actor().person;
    common::standard_mutation(&owner, id, 0);
    let before = common::snapshot(&db);
    common::standard_mutation(&owner, id, 1);
    let after = common::snapshot(&db);
    Replay::new(common::diff(&before, &after))
}

fn bench(c: &mut Criterion, group: &str, durability: Durability) {
    let sync = durability == Durability::Sync;
    let mut replay = standard_mutation_writes();
    eprintln!(
        "{group}: the standard mutation writes {}",
        common::describe(&replay.changes)
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = common::open_raw(dir.path());
        g.bench_function("raw_batch", |b| b.iter(|| replay.write(&raw, sync)));
        // Closed before onedb runs: no background work of one during the other.
    }
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, owner) = common::db_with_owner(dir.path(), durability);
        let id = owner.actor().person;
        let mut n = 1_000;
        g.bench_function("onedb", |b| {
            b.iter(|| {
                n += 1;
                black_box(common::standard_mutation(&owner, id, n))
            })
        });
    }
    g.finish();

    // Interleaved check.
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = common::open_raw(raw_dir.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let (_db, owner) = common::db_with_owner(dir.path(), durability);
    let id = owner.actor().person;
    let mut n = 1_000_000;
    let block = if sync { 20 } else { 200 };
    let (o, r) = common::interleaved(
        block,
        Duration::from_secs(4),
        || {
            n += 1;
            black_box(common::standard_mutation(&owner, id, n));
        },
        || replay.write(&raw, sync),
    );
    println!(
        "{group} interleaved: onedb {:.2} µs ({}), raw {:.2} µs ({}), ratio {:.1}%",
        o / 1e3,
        common::rate(o),
        r / 1e3,
        common::rate(r),
        100.0 * r / o
    );
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion(20, Duration::from_secs(4));
    bench(&mut c, "mutation_relaxed", Durability::Relaxed);
    bench(&mut c, "mutation_sync", Durability::Sync);
    c.final_summary();
    common::report(
        &[
            Target {
                what: "standard mutation, relaxed (vs unsynced batch)",
                onedb: "mutation_relaxed/onedb",
                raw: "mutation_relaxed/raw_batch",
                min_ratio: 0.5,
            },
            Target {
                what: "standard mutation, sync (vs synced batch)",
                onedb: "mutation_sync/onedb",
                raw: "mutation_sync/raw_batch",
                min_ratio: 0.8,
            },
        ],
        since,
    );
}
