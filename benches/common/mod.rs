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
use rocksdb::{DB, WriteBatch};

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

/// One key a onedb commit wrote (None: deleted). `fresh` when the key did
/// not exist before (new records and index entries), as opposed to keys it
/// rewrote (usage counters, the commit counter).
#[derive(Debug, Clone)]
pub struct Change {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub fresh: bool,
}

pub fn snapshot(db: &Database) -> BTreeMap<Vec<u8>, Vec<u8>> {
    onedb::internals::raw_entries(db)
        .expect("raw entries")
        .into_iter()
        .collect()
}

/// Every key whose value differs between two full scans.
pub fn diff(
    before: &BTreeMap<Vec<u8>, Vec<u8>>,
    after: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (k, v) in after {
        match before.get(k) {
            Some(old) if old == v => {}
            Some(_) => changes.push(Change {
                key: k.clone(),
                value: Some(v.clone()),
                fresh: false,
            }),
            None => changes.push(Change {
                key: k.clone(),
                value: Some(v.clone()),
                fresh: true,
            }),
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            changes.push(Change {
                key: k.clone(),
                value: None,
                fresh: false,
            });
        }
    }
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    changes
}

/// The key/values one commit wrote, replayable as raw `WriteBatch`es.
///
/// Fresh keys are made fresh again on every replay: in each new record or
/// index key (`02 tenant(16) family(1) rest…`), the first 8 bytes of `rest`
/// are replaced by a per-replay salt that grows with every replay. So each
/// replay writes new, never-seen keys of the same length, in the same
/// tenant and the same families as onedb's, landing at the end of each
/// family's range as onedb's time-ordered ids do (RocksDB's memtable inserts
/// are scattered over the same number of places). Every such key still ends
/// with its own record id, so keys stay distinct. Rewritten keys (counters,
/// the commit counter) are rewritten as they are, as onedb does.
pub struct Replay {
    pub changes: Vec<Change>,
    round: u64,
}

/// Where the salt goes: after `02 tenant(16) family(1)`.
const SALT_AT: usize = 18;

impl Replay {
    pub fn new(changes: Vec<Change>) -> Replay {
        Replay::starting_at(changes, 0)
    }

    /// A replay whose salts start at `round` (for several writers replaying
    /// the same changes without sharing keys).
    pub fn starting_at(changes: Vec<Change>, round: u64) -> Replay {
        let replay = Replay { changes, round };
        let keys: std::collections::BTreeSet<Vec<u8>> =
            replay.changes.iter().map(|c| replay.key(c, 1)).collect();
        assert_eq!(
            keys.len(),
            replay.changes.len(),
            "salted keys must stay distinct"
        );
        replay
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn bytes(&self) -> usize {
        self.changes
            .iter()
            .map(|c| c.key.len() + c.value.as_ref().map_or(0, Vec::len))
            .sum()
    }

    fn salted(c: &Change) -> bool {
        c.fresh && c.key.len() >= SALT_AT + 16 && c.key[0] == 0x02
    }

    fn key(&self, c: &Change, round: u64) -> Vec<u8> {
        let mut key = c.key.clone();
        if Self::salted(c) {
            key[SALT_AT..SALT_AT + 8].copy_from_slice(&((1 << 63) | round).to_be_bytes());
        }
        key
    }

    /// The next batch (fresh keys with the next salt).
    pub fn batch(&mut self) -> WriteBatch {
        self.round += 1;
        let salt = ((1u64 << 63) | self.round).to_be_bytes();
        let mut batch = WriteBatch::default();
        let mut buf: Vec<u8> = Vec::with_capacity(128);
        for c in &self.changes {
            let key: &[u8] = if Self::salted(c) {
                buf.clear();
                buf.extend_from_slice(&c.key);
                buf[SALT_AT..SALT_AT + 8].copy_from_slice(&salt);
                &buf
            } else {
                &c.key
            };
            match &c.value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            }
        }
        batch
    }

    /// Writes the next batch with onedb's write options.
    pub fn write(&mut self, db: &DB, sync: bool) {
        let batch = self.batch();
        db.write_opt(batch, &onedb::internals::rocksdb_write_options(sync))
            .expect("raw write");
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
