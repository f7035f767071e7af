//! Reads: a point read of a thing by id against a raw `get` of its record
//! key, and a 50-edge adjacency scan against a raw bounded iteration over
//! the same 50 keys.
//!
//! The raw database is a RocksDB checkpoint of the onedb database
//! (`Database::backup`), opened with onedb's options: the same keys, values
//! and SST files. The checkpoint flushes the memtable, so both sides read
//! from the same on-disk tables through the block cache.
//!
//! Besides criterion's (sequential) figures, each pair is also measured
//! interleaved (blocks of onedb and raw alternating), robust to drift.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::time::{Duration, SystemTime};

use common::Target;
use criterion::{Throughput, black_box};
use onedb::internals::{TenantKey, prefix_end};
use onedb::model::now_ms;
use onedb::{Direction, Durability, Id};
use rocksdb::ReadOptions;

/// Edges out of the scanned node.
const EDGES: usize = 50;
/// Standard mutations by another person around them, so the scanned keys
/// sit among others.
const OTHERS: usize = 2_000;

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion(20, Duration::from_secs(3));

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
    let root = {
        let mut r = db.local_session().expect("root");
        r.use_org(common::ORG).expect("use org");
        r
    };
    let other = common::person(&db, &root, "other@bench.example");
    let owner_id = owner.actor().person;
    let other_id = other.actor().person;

    // OTHERS mutations by `other`, with the owner's EDGES spread among them;
    // the diff around the owner's middle one gives the keys to read.
    let every = OTHERS / EDGES;
    let mut diffed = None;
    let mut owned = 0;
    for i in 0..OTHERS {
        common::standard_mutation(&other, other_id, i as u64);
        if i % every == every / 2 && owned < EDGES {
            let middle = owned == EDGES / 2;
            let before = middle.then(|| common::snapshot(&db));
            let thing = common::standard_mutation(&owner, owner_id, (OTHERS + owned) as u64);
            if let Some(before) = before {
                diffed = Some((thing, common::diff(&before, &common::snapshot(&db))));
            }
            owned += 1;
        }
    }
    assert_eq!(owned, EDGES);
    let (thing_id, changes): (Id, _) = diffed.expect("diffed mutation");
    let thing_key = changes
        .iter()
        .find(|ch| matches!(common::tenant_key(&ch.key), Some(TenantKey::Thing(id)) if id == thing_id))
        .expect("the thing record key in the diff")
        .key
        .clone();
    // `02 tenant(16) 06 from(17) "owns" 00 | to(17) con(16)`: the scan prefix
    // is the out-edge key without its last 33 bytes.
    let edge_key = changes
        .iter()
        .find(|ch| {
            matches!(common::tenant_key(&ch.key),
                Some(TenantKey::Edge { dir: Direction::Out, node, .. }) if node == owner_id)
        })
        .expect("the owner's out-edge key in the diff")
        .key
        .clone();
    let prefix = edge_key[..edge_key.len() - 33].to_vec();
    let upper = prefix_end(&prefix);

    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw_path = raw_dir.path().join("checkpoint");
    db.backup(&raw_path).expect("checkpoint");
    let raw = common::open_raw(&raw_path);

    // Both sides see the same data.
    let stored = raw.get(&thing_key).expect("raw get").expect("thing in raw");
    let read = owner
        .read()
        .expect("read")
        .thing(thing_id)
        .expect("thing")
        .expect("visible");
    assert_eq!(read.id, thing_id);
    assert!(!stored.is_empty());
    let raw_scan = || {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.clone());
        opts.set_iterate_upper_bound(upper.clone());
        let mut it = raw.raw_iterator_opt(opts);
        it.seek_to_first();
        let mut n = 0;
        while let Some(item) = it.item() {
            black_box(item);
            n += 1;
            it.next();
        }
        n
    };
    let onedb_scan = || {
        let t = owner.read().expect("read");
        t.edges(owner_id, Direction::Out, Some(common::OWNS), now_ms())
            .expect("edges")
            .count()
    };
    assert_eq!(raw_scan(), EDGES);
    assert_eq!(onedb_scan(), EDGES);

    {
        let mut g = c.benchmark_group("point_read");
        g.throughput(Throughput::Elements(1));
        g.bench_function("raw_get", |b| {
            b.iter(|| raw.get(black_box(&thing_key)).expect("get"))
        });
        g.bench_function("onedb", |b| {
            b.iter(|| {
                owner
                    .read()
                    .expect("read")
                    .thing(black_box(thing_id))
                    .expect("thing")
            })
        });
        // Diagnostic: the same read in an already open read transaction.
        let t = owner.read().expect("read");
        g.bench_function("onedb_open_txn", |b| {
            b.iter(|| t.thing(black_box(thing_id)).expect("thing"))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("adjacency_scan_50");
        g.throughput(Throughput::Elements(EDGES as u64));
        g.bench_function("raw_scan", |b| b.iter(raw_scan));
        g.bench_function("onedb", |b| b.iter(onedb_scan));
        let t = owner.read().expect("read");
        g.bench_function("onedb_open_txn", |b| {
            b.iter(|| {
                t.edges(owner_id, Direction::Out, Some(common::OWNS), now_ms())
                    .expect("edges")
                    .count()
            })
        });
        g.finish();
    }

    // Interleaved checks: blocks of onedb and raw alternating.
    let (o, r) = common::interleaved(
        1_000,
        Duration::from_secs(2),
        || {
            black_box(
                owner
                    .read()
                    .expect("read")
                    .thing(black_box(thing_id))
                    .expect("thing"),
            );
        },
        || {
            black_box(raw.get(black_box(&thing_key)).expect("get"));
        },
    );
    println!(
        "point_read interleaved: onedb {:.2} µs ({}), raw {:.2} µs ({}), ratio {:.1}%",
        o / 1e3,
        common::rate(o),
        r / 1e3,
        common::rate(r),
        100.0 * r / o
    );
    let (o, r) = common::interleaved(
        100,
        Duration::from_secs(2),
        || {
            black_box(onedb_scan());
        },
        || {
            black_box(raw_scan());
        },
    );
    println!(
        "adjacency_scan_50 interleaved: onedb {:.2} µs ({}), raw {:.2} µs ({}), ratio {:.1}%",
        o / 1e3,
        common::rate(o),
        r / 1e3,
        common::rate(r),
        100.0 * r / o
    );

    c.final_summary();
    common::report(
        &[
            Target {
                what: "point read of a thing by id",
                onedb: "point_read/onedb",
                raw: "point_read/raw_get",
                min_ratio: 0.6,
            },
            Target {
                what: "50-edge adjacency scan",
                onedb: "adjacency_scan_50/onedb",
                raw: "adjacency_scan_50/raw_scan",
                min_ratio: 0.6,
            },
            Target {
                what: "(diagnostic) point read, open txn",
                onedb: "point_read/onedb_open_txn",
                raw: "point_read/raw_get",
                min_ratio: 0.6,
            },
            Target {
                what: "(diagnostic) adjacency scan, open txn",
                onedb: "adjacency_scan_50/onedb_open_txn",
                raw: "adjacency_scan_50/raw_scan",
                min_ratio: 0.6,
            },
        ],
        since,
    );
}
