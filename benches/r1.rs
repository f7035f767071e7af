//! R1 (RELIABILITY.md): point reads stay fast while expensive queries run.
//! Two point-reading clients (1 ms think time) on the R1 data of
//! `tests/common/r1.rs`, first on a quiet database, then while two clients
//! run long variable-length paths, cartesian products and huge scans that
//! their budgets stop. Target: p99 of the point reads under load at most
//! 50 ms; the ratio to the quiet p99 of the same run says what the load
//! costs on this machine.
//!
//! Then the same over TCP (the server in this process, its query budget
//! 300 ms): the point reads' p99 under load against the quiet p99 over
//! TCP, and every expensive query answered `TIMEOUT` or `TOO_LARGE`
//! within 2× its budget (target).
//!
//! `cargo bench --bench r1` (`ONEDB_R1_SECONDS` sets each phase's length,
//! default 10).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "../tests/common/r1.rs"]
mod r1;
#[path = "common/tcp.rs"]
mod tcp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use onedb::query::run::Runner;
use onedb::server::Limits;
use onedb::{Database, Durability, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tcp::Conn;

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

    // Over TCP.
    let budget = Duration::from_millis(300);
    let token = tcp_token(&db);
    let limits = Limits {
        query_timeout: budget,
        ..Limits::default()
    };
    let addr = tcp::start_server(&db, limits);
    let (_, quiet) = run_tcp(addr, &token, &data, 0, 2, phase);
    let (answers, loaded) = run_tcp(addr, &token, &data, 2, 2, phase);
    println!("R1 over TCP: point reads, {seconds} s per phase, query budget {budget:?}");
    row("quiet", &quiet);
    row("under expensive queries", &loaded);
    let p99 = r1::percentile(&loaded, 0.99);
    let ratio = p99.as_secs_f64() / r1::percentile(&quiet, 0.99).as_secs_f64().max(1e-9);
    println!(
        "p99 under load {p99:.2?} ({ratio:.1}× quiet); target ≤ {TARGET_P99:?}: {}",
        if p99 <= TARGET_P99 { "met" } else { "MISSED" }
    );
    let stopped = answers.iter().filter(|(code, _)| code.is_some()).count();
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let late = answers.iter().filter(|(_, t)| *t > 2 * budget).count();
    println!(
        "expensive queries: {} answered, {stopped} stopped by their budget; slowest answer {slowest:.2?}, {late} later than 2× the budget; target none: {}",
        answers.len(),
        if late == 0 { "met" } else { "MISSED" }
    );
}

/// A token of an org_owner of the R1 org.
fn tcp_token(db: &Database) -> String {
    let mut root = db.local_session().expect("root");
    root.use_org(r1::ORG).expect("use org");
    let mut runner = Runner::new(&root);
    runner
        .execute("SET LIMITS ON ORG r1 {api_calls: -1}")
        .expect("limits");
    runner
        .execute("CREATE PERSON \"r1@r1.io\" NAME \"R1\" ROLE org_owner")
        .expect("person");
    let owner = db.session_as("r1@r1.io").expect("owner");
    let out = Runner::new(&owner)
        .execute("CREATE TOKEN \"r1\"")
        .expect("token");
    out.rows[0][1].as_str().expect("secret").to_string()
}

/// `r1::run` over TCP: `workers` clients send the expensive queries (the
/// server's budget stops them), `readers` clients do point reads with 1 ms
/// think time. Each expensive answer's error code (None: it finished) and
/// time; the point reads' latencies, sorted.
fn run_tcp(
    addr: SocketAddr,
    token: &str,
    data: &r1::Data,
    workers: usize,
    readers: usize,
    how_long: Duration,
) -> (Vec<(Option<String>, Duration)>, Vec<Duration>) {
    let cases = r1::expensive_cases();
    let done = AtomicBool::new(false);
    let ids = data.ids();
    thread::scope(|scope| {
        let expensive: Vec<_> = (0..workers)
            .map(|worker| {
                let (cases, start) = (&cases, data.graph[worker]);
                scope.spawn(move || {
                    let mut c = Conn::open(addr, token);
                    let mut answers = Vec::new();
                    let until = Instant::now() + how_long;
                    while Instant::now() < until {
                        for case in cases {
                            let started = Instant::now();
                            let r = c.call(&json!({
                                "id": 1, "op": "query", "text": case.text,
                                "params": {"x": start.to_string()},
                            }));
                            let code = r["error"]["code"].as_str().map(str::to_string);
                            answers.push((code, started.elapsed()));
                        }
                    }
                    answers
                })
            })
            .collect();
        let reading: Vec<_> = (0..readers)
            .map(|reader| {
                let (done, ids) = (&done, &ids);
                scope.spawn(move || {
                    let mut c = Conn::open(addr, token);
                    let mut rng = StdRng::seed_from_u64(r1::SEED + reader as u64);
                    let mut latencies = Vec::new();
                    while !done.load(Ordering::Relaxed) {
                        let id = ids[rng.gen_range(0..ids.len())];
                        let started = Instant::now();
                        let r = c.call(&json!({
                            "id": 2, "op": "query", "text": r1::POINT_READ,
                            "params": {"id": id.to_string()},
                        }));
                        latencies.push(started.elapsed());
                        assert_eq!(r["rows"].as_array().map(Vec::len), Some(1), "{r}");
                        thread::sleep(Duration::from_millis(1));
                    }
                    latencies
                })
            })
            .collect();
        if workers == 0 {
            thread::sleep(how_long);
        }
        let answers: Vec<_> = expensive
            .into_iter()
            .flat_map(|h| h.join().expect("expensive client"))
            .collect();
        done.store(true, Ordering::Relaxed);
        let mut latencies: Vec<Duration> = reading
            .into_iter()
            .flat_map(|h| h.join().expect("reader"))
            .collect();
        latencies.sort();
        (answers, latencies)
    })
}
