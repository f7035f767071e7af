//! Memory: peak RSS (VmHWM) after loading 100,000 things and 400,000
//! connections through the public API, in transactions of 1,000 writes
//! (relaxed durability). Target: at most 300 MB.
//!
//! After the peak is taken, a diagnostic: random point reads of things on
//! the loaded database, onedb against raw gets of the same keys on a RocksDB
//! checkpoint of it (onedb's options), to show read cost at this size.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::time::Instant;

use onedb::internals::{Key, TenantKey};
use onedb::{Durability, Id, NewConnection};

const THINGS: usize = 100_000;
const CONNECTIONS_PER_THING: usize = 4;
const PER_TXN: usize = 1_000;
const TARGET_MB: f64 = 300.0;

/// A `/proc/self/status` field in MB (Linux).
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .expect("field in /proc/self/status")
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "memory".contains(f.as_str())) {
        return;
    }
    let start = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
    println!("memory: after open, RSS {:.1} MB", status_mb("VmRSS"));

    let mut things: Vec<Id> = Vec::with_capacity(THINGS);
    for chunk in 0..THINGS / PER_TXN {
        let mut t = owner.write().expect("write txn");
        for i in 0..PER_TXN {
            let n = (chunk * PER_TXN + i) as u64;
            things.push(
                t.create_thing(common::new_thing(n))
                    .expect("create thing")
                    .id,
            );
        }
        t.commit().expect("commit");
    }
    let loaded_things = start.elapsed();
    println!(
        "memory: {THINGS} things in {:.1}s, RSS {:.1} MB, peak {:.1} MB",
        loaded_things.as_secs_f64(),
        status_mb("VmRSS"),
        status_mb("VmHWM")
    );

    // Thing i owns things i+1 … i+4: 400,000 distinct connections.
    let pairs: Vec<(usize, usize)> = (0..THINGS)
        .flat_map(|i| (1..=CONNECTIONS_PER_THING).map(move |k| (i, (i + k) % THINGS)))
        .collect();
    for (batch, chunk) in pairs.chunks(PER_TXN).enumerate() {
        let mut t = owner.write().expect("write txn");
        for &(from, to) in chunk {
            t.connect(NewConnection {
                from: Some(things[from]),
                to: Some(things[to]),
                kind: common::OWNS.into(),
                ..Default::default()
            })
            .expect("connect");
        }
        t.commit().expect("commit");
        if (batch + 1) % 100 == 0 {
            println!(
                "memory: {} connections, RSS {:.1} MB, peak {:.1} MB",
                (batch + 1) * PER_TXN,
                status_mb("VmRSS"),
                status_mb("VmHWM")
            );
        }
    }
    let usage = owner.read().expect("read").usage().expect("usage");
    let count = |name: &str| {
        usage
            .iter()
            .find(|r| r.counter == name)
            .map_or(0, |r| r.used)
    };
    assert_eq!(count("things"), THINGS as i64);
    assert_eq!(
        count("connections"),
        (THINGS * CONNECTIONS_PER_THING) as i64
    );
    let peak = status_mb("VmHWM");
    println!();
    println!("== memory ==");
    println!(
        "loaded {THINGS} things and {} connections in {:.1}s (things {:.1}s)",
        THINGS * CONNECTIONS_PER_THING,
        start.elapsed().as_secs_f64(),
        loaded_things.as_secs_f64()
    );
    println!("RSS now {:.1} MB", status_mb("VmRSS"));
    println!(
        "peak RSS (VmHWM) {peak:.1} MB  target ≤ {TARGET_MB:.0} MB  {}",
        if peak <= TARGET_MB { "PASS" } else { "FAIL" }
    );

    // Diagnostic: random point reads at this size.
    let org = owner.org().expect("org").id;
    let thing_key = |id: Id| {
        let mut k = vec![0x02];
        k.extend_from_slice(&org.raw().to_be_bytes());
        k.push(0x01);
        k.extend_from_slice(&id.raw().to_be_bytes());
        k
    };
    assert!(matches!(
        onedb::internals::decode_key(&thing_key(things[7])),
        Ok(Key::Tenant(_, TenantKey::Thing(id))) if id == things[7]
    ));
    let reads = 1_000;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut pick = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        things[(x % THINGS as u64) as usize]
    };
    let t = Instant::now();
    for _ in 0..reads {
        let id = pick();
        assert!(
            owner
                .read()
                .expect("read")
                .thing(id)
                .expect("thing")
                .is_some()
        );
    }
    let onedb_rate = reads as f64 / t.elapsed().as_secs_f64();
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw_path = raw_dir.path().join("checkpoint");
    db.backup(&raw_path).expect("checkpoint");
    let raw = common::open_raw(&raw_path);
    let t = Instant::now();
    for _ in 0..reads {
        let key = thing_key(pick());
        assert!(raw.get(&key).expect("raw get").is_some());
    }
    let raw_rate = reads as f64 / t.elapsed().as_secs_f64();
    println!(
        "diagnostic, random point reads of things after the load: onedb {onedb_rate:.0}/s, raw get {raw_rate:.0}/s"
    );
    drop(raw);
    drop(db);
}
