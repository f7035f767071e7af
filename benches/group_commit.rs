//! Group commit: standard mutations per second in `sync` mode with 1 and
//! with 16 concurrent sessions (one thread and one org_owner each), in the
//! same run. The target is 16 sessions ≥ 5× one session.
//!
//! For context the same run measures raw RocksDB writing the standard
//! mutation's key/values as synced `WriteBatch`es from 1 and from 16
//! threads (RocksDB's own write grouping), on its own directory with
//! onedb's options.
//!
//! A plain timed loop: each measurement runs for a fixed time; rounds
//! repeat all four measurements in the same order so drift on a shared
//! machine hits all of them. The figure is the median over rounds of each
//! round's 16-session/1-session ratio (the one-session rate follows the
//! machine's fsync latency, which drifts while the run lasts).
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Replay;
use onedb::{Durability, Session};

const SESSIONS: usize = 16;
const ROUNDS: usize = 5;
const ROUND_TIME: Duration = Duration::from_secs(2);
/// Lets background flushes of the previous measurement settle.
const PAUSE: Duration = Duration::from_millis(300);
const TARGET: f64 = 5.0;

/// The process's CPU time (user + system) in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the command: state is field 3, utime 14 and stime 15.
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0 // USER_HZ
}

struct Measured {
    rate: f64,
    ops: u64,
    /// CPU time of the whole process (every thread, RocksDB's too) per op.
    cpu_us: f64,
}

/// Operations per second of `workers`, each on its own thread running `op`
/// in a loop for ROUND_TIME.
fn timed<W: Send>(workers: Vec<W>, op: impl Fn(&mut W) + Sync) -> Measured {
    std::thread::sleep(PAUSE);
    let stop = AtomicBool::new(false);
    let cpu = cpu_seconds();
    let start = Instant::now();
    let done: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut w| {
                let (stop, op) = (&stop, &op);
                s.spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        op(&mut w);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(ROUND_TIME);
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().expect("worker")).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    Measured {
        rate: done as f64 / elapsed,
        ops: done,
        cpu_us: cpu * 1e6 / done.max(1) as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench -- FILTER`: run only when the filter names this bench.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "group_commit".contains(f.as_str())) {
        return;
    }

    // The standard mutation's key/values, from a scratch database.
    let changes = {
        let dir = tempfile::tempdir().expect("tempdir");
        let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
        let id = owner.actor().person;
        common::standard_mutation(&owner, id, 0);
        let before = common::snapshot(&db);
        common::standard_mutation(&owner, id, 1);
        common::diff(&before, &common::snapshot(&db))
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let db = common::open(dir.path(), Durability::Sync);
    let root = common::bench_org(&db);
    let sessions: Vec<Session> = (0..SESSIONS)
        .map(|i| common::person(&db, &root, &format!("writer{i}@bench.example")))
        .collect();
    let raw_dir = tempfile::tempdir().expect("tempdir");
    let raw = common::open_raw(raw_dir.path());

    let names = AtomicU64::new(0);
    let mutate = |s: &mut &Session| {
        common::standard_mutation(s, s.actor().person, names.fetch_add(1, Ordering::Relaxed));
    };
    let rounds = AtomicU64::new(1);
    let replays = |n: usize| -> Vec<Replay> {
        (0..n)
            .map(|_| {
                Replay::starting_at(
                    changes.clone(),
                    rounds.fetch_add(1 << 32, Ordering::Relaxed),
                )
            })
            .collect()
    };
    let raw_write = |r: &mut Replay| r.write(&raw, true);

    // Warm-up.
    timed(sessions.iter().take(1).collect(), mutate);
    timed(replays(1), raw_write);

    let commits_before = db.last_commit().expect("commits");
    let mut onedb_mutations = 0;
    let (mut one, mut many, mut raw_one, mut raw_many) = (vec![], vec![], vec![], vec![]);
    let (mut ratios, mut raw_ratios) = (vec![], vec![]);
    for round in 1..=ROUNDS {
        let o1 = timed(sessions.iter().take(1).collect(), mutate);
        let o16 = timed(sessions.iter().collect(), mutate);
        let w1 = timed(replays(1), raw_write);
        let w16 = timed(replays(SESSIONS), raw_write);
        onedb_mutations += o1.ops + o16.ops;
        println!(
            "group_commit round {round}: onedb 1 session {:.0}/s ({:.0} µs CPU each), {SESSIONS} sessions {:.0}/s ({:.0} µs CPU each), {:.2}×; \
             raw synced batch 1 thread {:.0}/s ({:.0} µs CPU each), {SESSIONS} threads {:.0}/s ({:.0} µs CPU each), {:.2}×",
            o1.rate,
            o1.cpu_us,
            o16.rate,
            o16.cpu_us,
            o16.rate / o1.rate,
            w1.rate,
            w1.cpu_us,
            w16.rate,
            w16.cpu_us,
            w16.rate / w1.rate
        );
        ratios.push(o16.rate / o1.rate);
        raw_ratios.push(w16.rate / w1.rate);
        one.push(o1.rate);
        many.push(o16.rate);
        raw_one.push(w1.rate);
        raw_many.push(w16.rate);
    }
    let commits = db.last_commit().expect("commits") - commits_before;
    let (one, many, raw_one, raw_many) =
        (median(one), median(many), median(raw_one), median(raw_many));
    let ratio = median(ratios);
    let raw_ratio = median(raw_ratios);
    println!();
    println!(
        "== group commit, sync durability (median of {ROUNDS} rounds of {}s each) ==",
        ROUND_TIME.as_secs()
    );
    println!("onedb, 1 session:        {one:>8.0} standard mutations/s (median)");
    println!("onedb, {SESSIONS} sessions:      {many:>8.0} standard mutations/s (median)");
    println!(
        "ratio (median of the rounds' ratios) {ratio:.2}×  target ≥ {TARGET:.0}×  {}",
        if ratio >= TARGET { "PASS" } else { "FAIL" }
    );
    println!(
        "onedb: {onedb_mutations} mutations in {commits} commits of the leader ({:.2} mutations per WAL sync)",
        onedb_mutations as f64 / commits.max(1) as f64
    );
    println!(
        "context, raw synced batch of the same keys: 1 thread {raw_one:.0}/s, {SESSIONS} threads {raw_many:.0}/s (medians; ratio {raw_ratio:.2}×); \
         onedb/raw: 1 session {:.0}%, {SESSIONS} sessions {:.0}%",
        100.0 * one / raw_one,
        100.0 * many / raw_many
    );
}
