//! The R1 scenario (RELIABILITY.md): expensive queries run on one database
//! while other clients do point reads. Shared by `tests/budget.rs` (the
//! expensive queries must stop in time with a budget error) and
//! `benches/r1.rs` (the point reads' latency, against the same reads on a
//! quiet database). Public API only.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use onedb::query::run::{QueryLimits, Runner};
use onedb::{Database, Error, Id, NewConnection, NewThing, Plan, Session};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

pub const SEED: u64 = 0xB0D6E7;
pub const ORG: &str = "r1";
pub const POINT_READ: &str = "MATCH (t) WHERE t.id = $id RETURN t.name";

/// One expensive query and its limits.
pub struct Expensive {
    pub text: &'static str,
    pub limits: QueryLimits,
}

/// (case index, rows or error, time) of one expensive run.
pub type Run = (usize, Result<usize, Error>, Duration);

/// The data: 5,000 tasks and a dense `following` graph of 400 creators.
pub struct Data {
    pub tasks: Vec<Id>,
    pub graph: Vec<Id>,
}

impl Data {
    pub fn ids(&self) -> Vec<Id> {
        self.tasks.iter().chain(&self.graph).copied().collect()
    }
}

pub fn limits(timeout: Duration, max_rows: usize) -> QueryLimits {
    QueryLimits { timeout, max_rows }
}

/// `count` things of `kind` with `n` = 0, 1, …; in one transaction.
pub fn things(session: &Session, kind: &str, count: usize) -> Vec<Id> {
    let mut t = session.write().expect("write");
    let ids = (0..count)
        .map(|n| {
            t.create_thing(NewThing {
                kind: kind.into(),
                name: format!("{kind} {n}"),
                properties: json!({ "n": n }).as_object().cloned().unwrap(),
            })
            .expect("create thing")
            .id
        })
        .collect();
    t.commit().expect("commit");
    ids
}

pub fn connect_all(session: &Session, edges: &[(Id, Id)]) {
    for chunk in edges.chunks(500) {
        let mut t = session.write().expect("write");
        for &(from, to) in chunk {
            t.connect(NewConnection {
                from: Some(from),
                to: Some(to),
                kind: "following".into(),
                ..Default::default()
            })
            .expect("connect");
        }
        t.commit().expect("commit");
    }
}

/// `size` creators, each following `degree` distinct random others.
pub fn dense_graph(session: &Session, size: usize, degree: usize, rng: &mut StdRng) -> Vec<Id> {
    let nodes = things(session, "creator", size);
    let mut edges = Vec::new();
    for (i, &from) in nodes.iter().enumerate() {
        let mut picked = std::collections::BTreeSet::new();
        while picked.len() < degree {
            let j = rng.gen_range(0..size);
            if j != i {
                picked.insert(j);
            }
        }
        edges.extend(picked.into_iter().map(|j| (from, nodes[j])));
    }
    connect_all(session, &edges);
    nodes
}

/// Creates the org and its data.
pub fn build(db: &Database) -> Data {
    let mut root = db.local_session().expect("root");
    root.run(|t| t.create_org(ORG, "R1", Plan::Enterprise).map(|_| ()))
        .expect("create org");
    root.use_org(ORG).expect("use org");
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    let tasks = things(&root, "task", 5_000);
    let graph = dense_graph(&root, 400, 8, &mut rng);
    Data { tasks, graph }
}

/// Long variable-length paths on a dense graph, cartesian products and
/// huge scans, each with a 300 ms deadline (one with 1 ms).
pub fn expensive_cases() -> Vec<Expensive> {
    let timeout = Duration::from_millis(300);
    let case = |text, limits| Expensive { text, limits };
    vec![
        case(
            "MATCH (a)-[:following*..10]->(b) WHERE a.id = $x RETURN b.name",
            limits(timeout, 10_000),
        ),
        case(
            "MATCH (a)-[:following*..10]-(b) WHERE a.id = $x RETURN count(DISTINCT b)",
            limits(timeout, 10_000),
        ),
        case(
            "MATCH (a:task), (b:task), (c:task) RETURN count(*)",
            limits(timeout, 10_000),
        ),
        case(
            "MATCH (a:task), (b) WHERE a.name = b.name + \"!\" RETURN a.name",
            limits(timeout, 10_000),
        ),
        case(
            "MATCH (a:task), (b:task) RETURN DISTINCT a.name, b.name ORDER BY a.name LIMIT 10",
            limits(timeout, 10_000),
        ),
        // Huge scans: more rows than the cap, and more work than the deadline.
        case("MATCH (t) RETURN t", limits(timeout, 1_000)),
        case(
            "MATCH (t) WHERE t.name ENDS WITH \"never\" RETURN t",
            limits(Duration::from_millis(1), 10_000),
        ),
    ]
}

/// Runs the expensive cases on `workers` threads for `how_long` (none for
/// a quiet baseline: the readers then run for `how_long` alone) while
/// `readers` threads do point reads with 1 ms think time. Returns every
/// expensive run and every point read's latency, sorted.
pub fn run(
    db: &Database,
    data: &Data,
    workers: usize,
    readers: usize,
    how_long: Duration,
) -> (Vec<Run>, Vec<Duration>) {
    let cases = Arc::new(expensive_cases());
    let done = Arc::new(AtomicBool::new(false));
    let mut expensive = Vec::new();
    for worker in 0..workers {
        let (db, cases, start) = (db.clone(), cases.clone(), data.graph[worker]);
        expensive.push(thread::spawn(move || {
            let session = session(&db);
            let mut r = Runner::new(&session);
            r.set_param("x", json!(start.to_string())).expect("param");
            let mut runs: Vec<Run> = Vec::new();
            let until = Instant::now() + how_long;
            while Instant::now() < until {
                for (i, case) in cases.iter().enumerate() {
                    r.set_limits(case.limits);
                    let started = Instant::now();
                    let result = r.execute(case.text);
                    runs.push((i, result.map(|o| o.rows.len()), started.elapsed()));
                }
            }
            runs
        }));
    }
    let mut reading = Vec::new();
    for reader in 0..readers {
        let (db, done, ids) = (db.clone(), done.clone(), data.ids());
        reading.push(thread::spawn(move || {
            let session = session(&db);
            let mut r = Runner::new(&session);
            let mut rng = StdRng::seed_from_u64(SEED + reader as u64);
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let id = ids[rng.gen_range(0..ids.len())];
                r.set_param("id", json!(id.to_string())).expect("param");
                let started = Instant::now();
                let out = r.execute(POINT_READ).expect("point read");
                latencies.push(started.elapsed());
                assert_eq!(out.rows.len(), 1);
                // A client with think time, not a second load generator.
                thread::sleep(Duration::from_millis(1));
            }
            latencies
        }));
    }
    if workers == 0 {
        thread::sleep(how_long);
    }
    let runs: Vec<Run> = expensive
        .into_iter()
        .flat_map(|h| h.join().expect("expensive thread"))
        .collect();
    done.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = reading
        .into_iter()
        .flat_map(|h| h.join().expect("reader thread"))
        .collect();
    latencies.sort();
    (runs, latencies)
}

fn session(db: &Database) -> Session {
    let mut session = db.local_session().expect("root");
    session.use_org(ORG).expect("use org");
    session
}

/// The `p` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted
        .get(i.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}
