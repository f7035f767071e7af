//! What the benches share: databases, the standard mutation, raw RocksDB
//! baselines rebuilt from a diff of `Database::raw_entries`, and the ratio
//! report printed at the end of a run.
//!
//! Raw baselines open their own RocksDB directory with exactly onedb's
//! settings (`onedb::internals::rocksdb_options` / `rocksdb_write_options`).
#![allow(
    dead_code,
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use onedb::internals::{Key, TenantKey, decode_key};
use onedb::{
    Database, Durability, Id, NewConnection, NewPerson, NewThing, Options, Plan, Role, Session,
};
use rocksdb::DB;

/// The thing type the benches create (no plan limit applies to it).
pub const KIND: &str = "digital_product";
/// The connection of the standard mutation.
pub const OWNS: &str = "owns";
pub const ORG: &str = "bench";

pub fn open(dir: &Path, durability: Durability) -> Database {
    Database::open_with(
        dir,
        Options {
            durability,
            ..Default::default()
        },
    )
    .expect("open onedb")
}

/// A raw RocksDB with onedb's exact options.
pub fn open_raw(dir: &Path) -> DB {
    DB::open(&onedb::internals::rocksdb_options(), dir).expect("open raw rocksdb")
}

/// Creates the enterprise org `bench`; returns root's session inside it.
pub fn bench_org(db: &Database) -> Session {
    let mut root = db.local_session().expect("root session");
    root.run(|t| t.create_org(ORG, "Bench Inc", Plan::Enterprise).map(|_| ()))
        .expect("create org");
    root.use_org(ORG).expect("use org");
    root
}

/// Adds an org_owner to root's current org and returns their session.
pub fn person(db: &Database, root: &Session, email: &str) -> Session {
    root.run(|t| {
        t.create_person(NewPerson {
            email: email.into(),
            name: email.into(),
            role: Role::OrgOwner,
            password: None,
        })
        .map(|_| ())
    })
    .expect("create person");
    db.session_as(email).expect("session as")
}

/// A fresh database with the org and one owner.
pub fn db_with_owner(dir: &Path, durability: Durability) -> (Database, Session) {
    let db = open(dir, durability);
    let root = bench_org(&db);
    let owner = person(&db, &root, "owner@bench.example");
    (db, owner)
}

/// Fixed-width names so every mutation writes records of the same size.
pub fn new_thing(n: u64) -> NewThing {
    NewThing {
        kind: KIND.into(),
        name: format!("item {n:010}"),
        ..Default::default()
    }
}

/// THE standard mutation: one commit holding a new thing, its indexes, an
/// `owns` connection from `owner` with its edge entries, both events and
/// the usage counters.
pub fn standard_mutation(session: &Session, owner: Id, n: u64) -> Id {
    session
        .run(|t| {
            let thing = t.create_thing(new_thing(n))?;
            t.connect(NewConnection {
                from: Some(owner),
                to: Some(thing.id),
                kind: OWNS.into(),
                ..Default::default()
            })?;
            Ok(thing.id)
        })
        .expect("standard mutation")
}

// ---- raw baselines from a diff ----

#[allow(unused_imports, reason = "not every bench diffs")]
pub use onedb::bench::limits::{Change, diff};

pub fn snapshot(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
    onedb::internals::raw_entries(db)
        .expect("raw entries")
        .into_iter()
        .collect()
}

/// `onedb bench`'s replay of one commit's keys (`onedb::bench::limits::
/// Replay`: fresh keys get a new salt on every replay), written to a raw
/// RocksDB with onedb's write options.
pub struct Replay(onedb::bench::limits::Replay);

impl Replay {
    pub fn new(changes: Vec<Change>) -> Replay {
        Replay(onedb::bench::limits::Replay::new(changes).expect("distinct salted keys"))
    }

    /// A replay whose salts start at `round` (for several writers replaying
    /// the same changes without sharing keys).
    pub fn starting_at(changes: Vec<Change>, round: u64) -> Replay {
        Replay(
            onedb::bench::limits::Replay::starting_at(changes, round)
                .expect("distinct salted keys"),
        )
    }

    /// Writes the next batch with onedb's write options.
    pub fn write(&mut self, db: &DB, sync: bool) {
        db.write_opt(
            self.0.batch(),
            &onedb::internals::rocksdb_write_options(sync),
        )
        .expect("raw write");
    }
}

impl std::ops::Deref for Replay {
    type Target = onedb::bench::limits::Replay;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The tenant-data part of a key, decoded (None for other keys).
pub fn tenant_key(key: &[u8]) -> Option<TenantKey> {
    match decode_key(key).ok()? {
        Key::Tenant(_, k) => Some(k),
        _ => None,
    }
}

/// A short description of a diff, by family, for the logs and the docs.
pub fn describe(changes: &[Change]) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for c in changes {
        let name = match decode_key(&c.key) {
            Ok(Key::Tenant(_, k)) => match k {
                TenantKey::Counter(n) => format!("counter {n}"),
                other => format!("{:?}", other.family()),
            },
            Ok(other) => format!("{other:?}"),
            Err(_) => "undecodable".into(),
        };
        *by.entry(name).or_default() += 1;
    }
    let parts: Vec<String> = by
        .into_iter()
        .map(|(k, n)| if n == 1 { k } else { format!("{k} ×{n}") })
        .collect();
    let fresh = changes.iter().filter(|c| c.fresh).count();
    format!(
        "{} keys ({} new, {} rewritten), {} bytes: {}",
        changes.len(),
        fresh,
        changes.len() - fresh,
        changes
            .iter()
            .map(|c| c.key.len() + c.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>(),
        parts.join(", ")
    )
}

// ---- interleaved measurement ----

/// Runs `a` and `b` alternately in blocks of `block` operations for about
/// `total`, and returns the mean time per operation of each (ns). Drift of
/// a shared machine (another process's fsyncs, compiles) hits both sides
/// alike, unlike two measurements taken one after the other.
pub fn interleaved(
    block: usize,
    total: Duration,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (f64, f64) {
    let (mut ta, mut tb, mut n) = (Duration::ZERO, Duration::ZERO, 0usize);
    let start = std::time::Instant::now();
    while start.elapsed() < total || n == 0 {
        let t = std::time::Instant::now();
        for _ in 0..block {
            a();
        }
        ta += t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..block {
            b();
        }
        tb += t.elapsed();
        n += block;
    }
    (
        ta.as_nanos() as f64 / n as f64,
        tb.as_nanos() as f64 / n as f64,
    )
}

// ---- criterion set-up and the ratio report ----

/// Short runs: the machines are shared and `cargo bench` of everything
/// should take a few minutes.
pub fn criterion(sample_size: usize, measurement: Duration) -> Criterion {
    Criterion::default()
        .sample_size(sample_size)
        .measurement_time(measurement)
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args()
}

/// One target: onedb's benchmark id against its baseline's, both
/// `group/function` ids of this run.
pub struct Target {
    pub what: &'static str,
    pub onedb: &'static str,
    pub raw: &'static str,
    /// onedb's rate must be at least this fraction of the baseline's.
    pub min_ratio: f64,
}

fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        PathBuf::from(home)
    } else if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(dir).join("criterion")
    } else {
        PathBuf::from("target/criterion")
    }
}

/// Criterion's estimate (ns per iteration) of a benchmark run by this
/// process: the slope when it has one, else the mean.
pub fn estimate_ns(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_home().join(id).join("new/estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < since {
        return None; // stale: not run by this process (filtered out)
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let pick = |name: &str| json.get(name)?.get("point_estimate")?.as_f64();
    pick("slope").or_else(|| pick("mean"))
}

pub fn rate(ns: f64) -> String {
    let per_s = 1e9 / ns;
    if per_s >= 100.0 {
        format!("{per_s:.0}/s")
    } else {
        format!("{per_s:.2}/s")
    }
}

/// Prints each target's figures and ratio (baseline time / onedb time).
pub fn report(targets: &[Target], since: SystemTime) {
    println!();
    println!("== onedb vs raw RocksDB (same run, same options) ==");
    for t in targets {
        match (estimate_ns(t.onedb, since), estimate_ns(t.raw, since)) {
            (Some(o), Some(r)) => {
                let ratio = r / o;
                println!(
                    "{:<44} onedb {:>10.2} µs ({:>9})  raw {:>10.2} µs ({:>9})  ratio {:>5.1}%  target ≥ {:.0}%  {}",
                    t.what,
                    o / 1e3,
                    rate(o),
                    r / 1e3,
                    rate(r),
                    ratio * 100.0,
                    t.min_ratio * 100.0,
                    if ratio >= t.min_ratio { "PASS" } else { "FAIL" }
                );
            }
            _ => println!("{:<44} (not run, or no estimates found)", t.what),
        }
    }
}
