//! Property schemas (issue 19): the standard mutation (a thing + an `owns`
//! connection, one commit) whose thing carries 10 properties, on a type
//! with a 10-property JSON Schema, against the same mutation on a database
//! without the schema. Same run, `relaxed` durability (where the engine's
//! CPU shows most). Target: validated ≥ 90 % of unvalidated.
//!
//! Measured twice, like `benches/mutation.rs`: by criterion (each side on
//! its own fresh directory) and interleaved (blocks of both alternating on
//! two open directories, robust to drift of the machine while it runs).
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::time::{Duration, SystemTime};

use criterion::{Throughput, black_box};
use onedb::{Database, Durability, Id, NewConnection, NewThing, Session};
use serde_json::json;

/// Ten properties of every JSON type and several rules each.
fn schema() -> onedb::model::Props {
    json!({
        "type": "object",
        "required": ["sku", "price", "currency", "stock"],
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
            "price": {"type": "number", "minimum": 0, "maximum": 100000},
            "currency": {"enum": ["EUR", "USD", "GBP"]},
            "stock": {"type": "integer", "minimum": 0},
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "active": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            "weight": {"type": "number", "exclusiveMinimum": 0},
            "dimensions": {
                "type": "object",
                "properties": {"w": {"type": "number"}, "h": {"type": "number"}},
                "required": ["w", "h"]
            },
            "rating": {"type": "integer", "minimum": 1, "maximum": 5}
        }
    })
    .as_object()
    .cloned()
    .expect("a map")
}

fn properties(n: u64) -> onedb::model::Props {
    json!({
        "sku": format!("ABC-{:04}", n % 10_000),
        "price": (n % 500) as f64 + 0.99,
        "currency": "EUR",
        "stock": n % 100,
        "title": format!("Product {n}"),
        "active": n.is_multiple_of(2),
        "tags": ["bench", "schema"],
        "weight": 1.5,
        "dimensions": {"w": 10, "h": 20},
        "rating": 1 + n % 5
    })
    .as_object()
    .cloned()
    .expect("a map")
}

/// The standard mutation, its thing with the ten properties.
fn mutation(session: &Session, owner: Id, n: u64) -> Id {
    session
        .run(|t| {
            let thing = t.create_thing(NewThing {
                kind: common::KIND.into(),
                name: format!("item {n:010}"),
                properties: properties(n),
            })?;
            t.connect(NewConnection {
                from: Some(owner),
                to: Some(thing.id),
                kind: common::OWNS.into(),
                ..Default::default()
            })?;
            Ok(thing.id)
        })
        .expect("mutation")
}

/// A database with the bench org and its owner; with the schema on the
/// bench's thing type (the platform's, so it holds in every org) or not.
fn setup(dir: &std::path::Path, with_schema: bool) -> (Database, Session, Id) {
    let (db, owner) = common::db_with_owner(dir, Durability::Relaxed);
    if with_schema {
        let root = db.local_session().expect("root");
        root.run(|t| t.define_schema(common::KIND, schema()))
            .expect("define schema");
    }
    let id = owner.actor().person;
    // Steady state: counters and caches exist.
    for n in 0..100 {
        mutation(&owner, id, n);
    }
    (db, owner, id)
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion(20, Duration::from_secs(4));
    let mut g = c.benchmark_group("schema");
    g.throughput(Throughput::Elements(1));
    for (name, with_schema) in [("unvalidated", false), ("validated", true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_db, owner, id) = setup(dir.path(), with_schema);
        let mut n = 1_000;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                black_box(mutation(&owner, id, n))
            })
        });
    }
    g.finish();
    c.final_summary();

    // Interleaved, both databases open.
    let plain_dir = tempfile::tempdir().expect("tempdir");
    let (_plain_db, plain, plain_id) = setup(plain_dir.path(), false);
    let checked_dir = tempfile::tempdir().expect("tempdir");
    let (_checked_db, checked, checked_id) = setup(checked_dir.path(), true);
    let (mut a, mut b) = (1_000_000, 1_000_000);
    let (v, u) = common::interleaved(
        200,
        Duration::from_secs(6),
        || {
            a += 1;
            black_box(mutation(&checked, checked_id, a));
        },
        || {
            b += 1;
            black_box(mutation(&plain, plain_id, b));
        },
    );

    println!();
    println!("== validated vs unvalidated create (same run, relaxed) ==");
    if let (Some(v), Some(u)) = (
        common::estimate_ns("schema/validated", since),
        common::estimate_ns("schema/unvalidated", since),
    ) {
        print_ratio("criterion:  ", v, u);
    }
    print_ratio("interleaved:", v, u);
}

/// One line: validated `v` and unvalidated `u` ns per create, and the ratio.
fn print_ratio(label: &str, v: f64, u: f64) {
    println!(
        "{label} validated {:.2} µs ({}), unvalidated {:.2} µs ({}), ratio {:.1}%  target ≥ 90%  {}",
        v / 1e3,
        common::rate(v),
        u / 1e3,
        common::rate(u),
        100.0 * u / v,
        if u / v >= 0.9 { "PASS" } else { "FAIL" }
    );
}
