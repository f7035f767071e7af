//! R1 (RELIABILITY.md): point reads stay fast while expensive queries run.
//! Two point-reading clients (1 ms think time) on the R1 data of
//! `tests/common/r1.rs`, first on a quiet database, then while two clients
//! run long variable-length paths, cartesian products and huge scans that
//! their budgets stop. Target: p99 of the point reads under load at most
//! 50 ms; the ratio to the quiet p99 of the same run says what the load
//! costs on this machine.
//!
//! `cargo bench --bench r1` (`ONEDB_R1_SECONDS` sets each phase's length,
//! default 10).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../tests/common/r1.rs"]
mod r1;

use std::time::Duration;

use onedb::{Database, Durability, Options};

const TARGET_P99: Duration = Duration::from_millis(50);

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another bench
    // skips this one.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "r1".contains(f.as_str())) {
        return;
    }
    let seconds = std::env::var("ONEDB_R1_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let phase = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open_with(
        dir.path(),
        Options {
            durability: Durability::Relaxed,
            ..Default::default()
        },
    )
    .expect("open");
    let data = r1::build(&db);

    let (_, quiet) = r1::run(&db, &data, 0, 2, phase);
    let (runs, loaded) = r1::run(&db, &data, 2, 2, phase);
    let stopped = runs.iter().filter(|(_, r, _)| r.is_err()).count();

    let row = |name: &str, l: &[Duration]| {
        println!(
            "{name:<28} {:>7} reads  p50 {:>9.2?}  p99 {:>9.2?}  p99.9 {:>9.2?}  max {:>9.2?}",
            l.len(),
            r1::percentile(l, 0.5),
            r1::percentile(l, 0.99),
            r1::percentile(l, 0.999),
            l.last().copied().unwrap_or_default(),
        )
    };
    println!("R1: point reads, {seconds} s per phase");
    row("quiet", &quiet);
    row("under expensive queries", &loaded);
    let p99 = r1::percentile(&loaded, 0.99);
    let ratio = p99.as_secs_f64() / r1::percentile(&quiet, 0.99).as_secs_f64().max(1e-9);
    println!(
        "expensive runs: {} ({stopped} stopped by their budget)",
        runs.len()
    );
    println!(
        "p99 under load {p99:.2?} ({ratio:.1}× quiet); target ≤ {TARGET_P99:?}: {}",
        if p99 <= TARGET_P99 { "met" } else { "MISSED" }
    );
}
