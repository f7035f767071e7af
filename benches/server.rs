//! The server's cost over in-process work (issue 13), each figure a ratio
//! to a baseline measured in the same run:
//!
//! - point queries, 8 clients pipelined 16 deep, against 8 in-process
//!   sessions running the same statement (target ≥ 50 %);
//! - one client, one request at a time, against a minimal echo server
//!   answering the same bytes on the same loopback (target ≥ 70 %);
//! - the standard mutation (a thing and its `owns` edge, with their events
//!   and usage, in one commit) in `sync`, 16 clients against 16 in-process
//!   sessions (target ≥ 80 %);
//! - memory added per idle logged-in connection, 1,000 of them (target
//!   ≤ 100 KB).
//!
//! The server runs in this process (`onedb::server::serve` on a thread) on
//! the same `Database` the in-process phases use; each pair runs in
//! rounds of both sides, in ABBA order. `cargo bench --bench server`;
//! `ONEDB_BENCH_SECONDS` sets each side's time (default 3);
//! `SERVER_BENCH_ROUNDS=1` prints each round's rates.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "common/tcp.rs"]
mod tcp;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use onedb::query::run::Runner;
use onedb::server::Limits;
use onedb::{Database, Durability, Id, Options, Session};
use serde_json::{Value as Json, json};
use tcp::{Conn, MUTATION, acme_with_alice, answered_ok, mutations, rate, start_server};

const POINT_QUERY: &str = "MATCH (t) WHERE t.id = $id RETURN t.id, t.name, t.status";
const THINGS: usize = 1_000;
const IDLE: usize = 1_000;

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "server".contains(f.as_str())) {
        return;
    }
    let seconds = std::env::var("ONEDB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let phase = Duration::from_secs(seconds);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open_with(
        dir.path(),
        Options {
            durability: Durability::Sync,
            ..Default::default()
        },
    )
    .expect("open");
    let (ids, token) = fixture(&db);
    let limits = Limits {
        max_connections: 4 * IDLE,
        ..Limits::default()
    };
    let addr = start_server(&db, limits);
    let session = db.session_as("alice@acme.io").expect("alice");
    let lines = point_lines(&ids);

    println!("onedb server bench: {seconds} s per phase, {THINGS} things");
    let (remote, local) = alternating(
        "pipelined",
        8,
        phase,
        |n, stop| remote_points(addr, &token, &lines, n, stop, 16),
        |n, stop| local_points(&session, &ids, n, stop),
    );
    report("point queries, 8 clients pipelined 16", remote, local, 0.5);

    let answer = one_answer(addr, &token, &ids);
    let echo = echo_server(answer.clone());
    let (single, baseline) = alternating(
        "in flight",
        1,
        phase,
        |n, stop| remote_points(addr, &token, &lines, n, stop, 1),
        |n, stop| echo_client(echo, &lines, n, stop),
    );
    report(
        "point queries, 1 client, 1 in flight",
        single,
        baseline,
        0.7,
    );

    let (remote, local) = alternating(
        "mutation",
        16,
        phase,
        |_, stop| mutations(addr, &token, stop),
        |_, stop| local_mutations(&db, stop),
    );
    report("standard mutation, 16 clients, sync", remote, local, 0.8);

    let per_connection = idle_memory(addr, &token);
    let met = if per_connection <= 100.0 * 1024.0 {
        "met"
    } else {
        "NOT MET"
    };
    println!(
        "{:<40} {:>10.1} KB per connection ({IDLE} logged in)   target ≤ 100 KB: {met}",
        "idle connections",
        per_connection / 1024.0
    );
}

/// The rates of `onedb` and its `baseline`, each run for `phase` in all,
/// in rounds of both: a shared machine's drift (its fsync latency above
/// all) falls on both sides alike. Which side runs first alternates
/// (ABBA), as a store that slows while it grows (the mutation pair's
/// compactions) would favour whichever side always went first.
/// With `SERVER_BENCH_ONLY` set to another pair's `name`, skipped (NaN):
/// profiling one pair with `perf` runs only it. With `SERVER_BENCH_ROUNDS`
/// set, each round's rates and the process's CPU time per operation are
/// printed too.
fn alternating(
    name: &str,
    clients: usize,
    phase: Duration,
    onedb: impl Fn(usize, &AtomicBool) -> u64 + Sync,
    baseline: impl Fn(usize, &AtomicBool) -> u64 + Sync,
) -> (f64, f64) {
    if std::env::var("SERVER_BENCH_ONLY").is_ok_and(|only| only != name) {
        return (f64::NAN, f64::NAN);
    }
    const ROUNDS: u32 = 8;
    let round = phase / ROUNDS;
    let (mut o, mut b) = (0.0, 0.0);
    let verbose = std::env::var_os("SERVER_BENCH_ROUNDS").is_some();
    let measure = |side: &str, work: &(dyn Fn(usize, &AtomicBool) -> u64 + Sync)| {
        let (cpu, started) = (cpu_seconds(), Instant::now());
        let ops = rate(clients, round, work);
        if verbose {
            let per_op = (cpu_seconds() - cpu) / (ops * started.elapsed().as_secs_f64());
            println!(
                "  {name} {side:<8} {ops:>9.0}/s  {:>6.1} µs CPU each",
                per_op * 1e6
            );
        }
        ops
    };
    for r in 0..ROUNDS {
        if r % 2 == 0 {
            o += measure("onedb", &onedb);
            b += measure("baseline", &baseline);
        } else {
            b += measure("baseline", &baseline);
            o += measure("onedb", &onedb);
        }
    }
    (o / ROUNDS as f64, b / ROUNDS as f64)
}

/// acme with alice (org_owner), THINGS tasks, no api_calls limit; the
/// things' ids and a token of alice's.
fn fixture(db: &Database) -> (Vec<Id>, String) {
    let (root, token) = acme_with_alice(db);
    let ids = root
        .run(|t| {
            (0..THINGS)
                .map(|n| {
                    t.create_thing(onedb::NewThing {
                        kind: "task".into(),
                        name: format!("task {n}"),
                        ..Default::default()
                    })
                    .map(|x| x.id)
                })
                .collect::<onedb::Result<Vec<_>>>()
        })
        .expect("things");
    (ids, token)
}

fn report(what: &str, onedb: f64, baseline: f64, target: f64) {
    let ratio = onedb / baseline;
    let met = if ratio >= target { "met" } else { "NOT MET" };
    println!(
        "{what:<40} {onedb:>10.0}/s vs {baseline:>10.0}/s = {:>5.1} %   target ≥ {:.0} %: {met}",
        100.0 * ratio,
        100.0 * target
    );
}

fn local_points(session: &Session, ids: &[Id], n: usize, stop: &AtomicBool) -> u64 {
    let mut runner = Runner::new(session);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = ids[(n * 7919 + done as usize) % ids.len()];
        runner
            .set_param("id", json!(id.to_string()))
            .expect("param");
        runner.execute(POINT_QUERY).expect("point query");
        done += 1;
    }
    done
}

fn point_request(ids: &[Id], k: usize) -> Json {
    let id = ids[k % ids.len()];
    json!({"id": k, "op": "query", "text": POINT_QUERY, "params": {"id": id.to_string()}})
}

/// The point requests as the lines a client sends, one per thing, encoded
/// once: the clients share the machine with the server, and what they
/// spend building requests and parsing answers is taken from it (the
/// in-process side builds nothing). redis-benchmark encodes its commands
/// once, too.
fn point_lines(ids: &[Id]) -> Vec<Vec<u8>> {
    (0..ids.len())
        .map(|k| {
            let mut line = point_request(ids, k).to_string().into_bytes();
            line.push(b'\n');
            line
        })
        .collect()
}

/// Point queries over TCP, `depth` at a time: each batch goes out in one
/// write and its answers are read before the next (redis-benchmark's
/// `-P depth`); `depth` 1 is one request in flight.
fn remote_points(
    addr: SocketAddr,
    token: &str,
    lines: &[Vec<u8>],
    n: usize,
    stop: &AtomicBool,
    depth: usize,
) -> u64 {
    let mut c = Conn::open(addr, token);
    let mut sent = n * 7919;
    let mut done = 0;
    let (mut batch, mut answer) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        batch.clear();
        for k in sent..sent + depth {
            batch.extend_from_slice(&lines[k % lines.len()]);
        }
        c.send_bytes(&batch);
        sent += depth;
        for _ in 0..depth {
            c.recv_into(&mut answer);
            assert!(answered_ok(&answer), "{}", String::from_utf8_lossy(&answer));
            done += 1;
        }
    }
    done
}

/// A real answer line to a point query, for the echo server to repeat.
fn one_answer(addr: SocketAddr, token: &str, ids: &[Id]) -> String {
    let mut c = Conn::open(addr, token);
    c.send(&point_request(ids, 1));
    c.recv_line()
}

/// The network's limit: a server that answers each request line with
/// `answer` and does nothing else.
fn echo_server(answer: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.expect("accept");
            let answer = answer.clone();
            std::thread::spawn(move || {
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    addr
}

fn echo_client(addr: SocketAddr, lines: &[Vec<u8>], n: usize, stop: &AtomicBool) -> u64 {
    let mut c = Conn::connect(addr);
    let mut done = 0;
    let mut answer = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        c.send_bytes(&lines[(n + done as usize) % lines.len()]);
        c.recv_into(&mut answer);
        assert!(answered_ok(&answer));
        done += 1;
    }
    done
}

fn local_mutations(db: &Database, stop: &AtomicBool) -> u64 {
    let session = db.session_as("alice@acme.io").expect("alice");
    let mut runner = Runner::new(&session);
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        for statement in MUTATION.split(';').filter(|s| !s.trim().is_empty()) {
            runner.execute(statement).expect("mutation");
        }
        done += 1;
    }
    done
}

/// Bytes of resident memory this process gains per idle, logged-in
/// connection (server side and the client socket's user-space buffer).
fn idle_memory(addr: SocketAddr, token: &str) -> f64 {
    let before = rss_bytes();
    let conns: Vec<Conn> = (0..IDLE).map(|_| Conn::open(addr, token)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes();
    drop(conns);
    after.saturating_sub(before) as f64 / IDLE as f64
}

/// CPU time this process has used (all threads, user and system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command name: state is field 3, utime and stime 14 and 15,
    // in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11..13]
        .iter()
        .filter_map(|f| f.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
