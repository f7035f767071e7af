//! `onedb bench`: the workload benchmark (DESIGN.md "The workload
//! benchmark", docs/bench.md). Generates a seeded dataset, loads it through
//! `onedb load`'s path, measures the physical limits on the same data, then
//! runs every workload through each door asked for and checks every
//! answer against the generated data.
//!
//! Files: `generator.rs` the dataset, `workloads.rs` the operations and
//! their checks, `doors.rs` the api and oql doors, `tcp.rs` the server and
//! its pipelining clients, `limits.rs` raw RocksDB, bare tantivy and exact
//! search, `report.rs` the table and the JSON.

pub mod doors;
pub mod generator;
pub mod limits;
pub mod report;
pub mod tcp;
pub mod workloads;

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::bench::doors::{Api, Door, Oql};
use crate::bench::generator::{Shape, Truth};
use crate::bench::limits::{BareTantivy, Raw, Replay, diff};
use crate::bench::report::{Figures, Load, Report, Row};
use crate::bench::workloads::{Plan as Workloads, Query, Workload};
use crate::db::{Database, Options as DbOptions, Session};
use crate::error::{Error, Result};
use crate::graph::{NewPerson, NewToken};
use crate::keys::Tenant;
use crate::model::{Plan, Role};
use crate::query::run::Runner;
use crate::storage::Durability;

/// `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    #[value(name = "XS", alias = "xs")]
    Xs,
    #[value(name = "S", alias = "s")]
    S,
    #[value(name = "M", alias = "m")]
    M,
}

impl Scale {
    pub fn shape(self) -> Shape {
        match self {
            Scale::Xs => Shape::XS,
            Scale::S => Shape::S,
            Scale::M => Shape::M,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scale::Xs => "XS",
            Scale::S => "S",
            Scale::M => "M",
        }
    }

    /// Operations per workload and door.
    fn ops(self) -> usize {
        match self {
            Scale::Xs => 500,
            Scale::S | Scale::M => 5_000,
        }
    }
}

/// `--via`: the door the workloads go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Via {
    Api,
    Oql,
    Tcp,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Oql => "oql",
            Via::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub scale: Scale,
    pub via: Vec<Via>,
    /// Clients of the TCP door and of every door's mixed run.
    pub clients: usize,
    pub seed: u64,
    /// Where the run's scratch directory goes (the system's temporary
    /// directory by default); it is removed at the end.
    pub dir: Option<PathBuf>,
    /// Operations per workload (default: by scale).
    pub ops: Option<usize>,
}

/// Each workload's limit: its figures and what it is.
type Limits = HashMap<Workload, (Figures, &'static str)>;

/// Requests in flight on each TCP client.
const DEPTH: usize = 16;
/// Keys per raw write batch in the load's limit.
const RAW_BATCH: usize = 10_000;
/// Failures kept per row for the report.
const SHOWN: usize = 3;

/// Runs the benchmark; the report says whether every answer was right.
/// `progress` hears what is happening (one line per phase).
pub fn run(options: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let base = options.dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = base.join(format!("onedb-bench-{}", std::process::id()));
    if scratch.exists() {
        return Err(Error::invalid(format!(
            "{} exists already",
            scratch.display()
        )));
    }
    std::fs::create_dir_all(&scratch)?;
    let result = run_in(options, &scratch, progress);
    // The server's copy of the database lives on (it stops with the
    // process), and tantivy may still be merging: try again a few times.
    for _ in 0..50 {
        if std::fs::remove_dir_all(&scratch).is_ok() || !scratch.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    result
}

fn run_in(options: &Options, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Report> {
    let started = Instant::now();
    let ops = options.ops.unwrap_or_else(|| options.scale.ops()).max(1);
    let clients = options.clients.max(1);

    progress("generating the dataset");
    let dump = dir.join("dataset.jsonl");
    let generated = {
        let mut out = BufWriter::new(std::fs::File::create(&dump)?);
        generator::generate(options.scale.shape(), options.seed, &mut out)?
    };
    let truth = &generated.truth;
    let plan = Workloads::new(truth);
    let queries: HashMap<Workload, Vec<Query>> = Workload::ALL
        .iter()
        .map(|w| (*w, plan.queries(*w, ops, options.seed)))
        .collect();

    progress("loading through onedb load's path");
    let data = dir.join("data");
    let bar = crate::repl::progress::counter("records");
    let t = Instant::now();
    let loaded = crate::transfer::load(
        &data,
        BufReader::new(std::fs::File::open(&dump)?),
        &mut |n| bar.set_position(n),
    )?;
    let load_time = t.elapsed();
    bar.finish_and_clear();
    std::fs::remove_file(&dump)?;

    progress("measuring the limits: raw RocksDB, bare tantivy, exact search");
    let (limits, raw_keys, raw_time) = measure_limits(dir, &data, &plan, &queries, ops)?;

    progress("opening the database: the search indexes are built from the store");
    let spinner = crate::repl::progress::spinner("building the search indexes");
    let t = Instant::now();
    let db = Database::open_with(
        &data,
        DbOptions {
            durability: Durability::Relaxed,
            ..Default::default()
        },
    )?;
    db.flush_indexes()?;
    let index_rebuild = t.elapsed();
    drop(spinner);
    let size_on_disk = report::size_on_disk(&data);

    progress("loading through OQL");
    let (oql_records, oql_time) = oql_load(&dir.join("oql-load"), truth, ops * 5)?;

    let mut rows = Vec::new();
    let session = db.session_as(&truth.owner_email)?;
    let server = match options.via.contains(&Via::Tcp) {
        true => Some(start_tcp(&db, &session)?),
        false => None,
    };
    for via in &options.via {
        progress(&format!("workloads through {}", via.name()));
        for w in Workload::ALL {
            let qs = &queries[&w];
            let (samples, elapsed) = match via {
                Via::Api => run_local(&mut Api { session: &session }, qs),
                Via::Oql => run_local(
                    &mut Oql {
                        runner: Runner::new(&session),
                    },
                    qs,
                ),
                Via::Tcp => tcp_run(server.as_ref(), clients, qs)?,
            };
            let limit = limits.get(&w).copied();
            rows.push(row(
                &plan,
                *via,
                w.name(),
                w.what(),
                qs,
                samples,
                elapsed,
                limit,
            ));
        }
        // The mixed run and the next door start without W1's names pending.
        db.flush_indexes()?;
        let mixed = plan.mixed(ops * 2, options.seed);
        let (samples, elapsed) = match via {
            Via::Tcp => tcp_run(server.as_ref(), clients, &mixed)?,
            local => run_mixed_local(&db, &truth.owner_email, *local, clients, &mixed)?,
        };
        let what = "90 % reads, 10 % W1";
        rows.push(row(
            &plan, *via, "mixed", what, &mixed, samples, elapsed, None,
        ));
        db.flush_indexes()?;
    }
    compare_doors(&mut rows);

    // Every acknowledged W1 is there: the owner owned nothing before.
    let writes_acknowledged: u64 = rows.iter().map(|r| r.writes).sum();
    let writes_found = {
        let txn = session.read()?;
        let owner = txn.actor().person;
        txn.edges(owner, crate::keys::Direction::Out, Some("owns"), txn.now())?
            .count() as u64
    };
    let checks_failed = rows.iter().map(|r| r.wrong).sum::<usize>()
        + usize::from(writes_found != writes_acknowledged);
    Ok(Report {
        scale: options.scale.name().into(),
        seed: options.seed,
        dataset_hash: generated.hash.clone(),
        clients,
        machine: report::machine(),
        commit: report::commit(),
        date: report::date(),
        load: Load {
            records: loaded.records,
            seconds: load_time.as_secs_f64(),
            records_per_second: loaded.records as f64 / load_time.as_secs_f64().max(1e-9),
            raw_keys,
            raw_seconds: raw_time.as_secs_f64(),
            ratio: raw_time.as_secs_f64() / load_time.as_secs_f64().max(1e-9),
            index_rebuild_seconds: index_rebuild.as_secs_f64(),
            oql_records,
            oql_records_per_second: oql_records as f64 / oql_time.as_secs_f64().max(1e-9),
        },
        size_on_disk_bytes: size_on_disk,
        peak_rss_bytes: report::peak_rss(),
        rows,
        writes_acknowledged,
        writes_found,
        seconds: started.elapsed().as_secs_f64(),
        checks_failed,
    })
}

/// The physical limit of each workload that has one, on the loaded
/// directory `data` before onedb opens it; with the load's limit (raw
/// batched writes of the same keys: their count and time).
fn measure_limits(
    dir: &Path,
    data: &Path,
    plan: &Workloads<'_>,
    queries: &HashMap<Workload, Vec<Query>>,
    ops: usize,
) -> Result<(Limits, u64, Duration)> {
    let truth = plan.truth;
    let org = truth
        .org
        .ok_or_else(|| Error::invalid("no org generated"))?;
    let tenant = Tenant::of_org(org);
    let mut limits = Limits::new();
    let (raw_keys, raw_time) = {
        let raw = Raw::open(data)?;
        raw.compact();
        for w in [
            Workload::Q1,
            Workload::Q2,
            Workload::Q3,
            Workload::Q4,
            Workload::Q7,
        ] {
            let name = match w {
                Workload::Q1 => "raw get",
                Workload::Q4 => "raw 2-level scan",
                _ => "raw prefix scan",
            };
            // The limit must read what the answer holds, or its rate means nothing.
            let f = time_each(&queries[&w], |q| {
                let read = raw.run(tenant, q)?;
                match plan.expected_count(q) {
                    Some(n) if n != read => Err(Error::invalid(format!(
                        "the raw limit of {} read {read} records, the answer holds {n}",
                        w.name()
                    ))),
                    _ => Ok(()),
                }
            })?;
            limits.insert(w, (f, name));
        }
        let copy = dir.join("raw-load");
        let result = raw.copy_into(&Raw::open(&copy)?, RAW_BATCH)?;
        std::fs::remove_dir_all(&copy)?;
        result
    };
    limits.insert(Workload::W1, (w1_limit(&dir.join("w1"), ops)?, "raw batch"));
    let tantivy = BareTantivy::build(
        &dir.join("tantivy"),
        truth.things.iter().map(|t| t.name.clone()),
    )?;
    for w in [Workload::Q5Frequent, Workload::Q5Rare] {
        let f = time_each(&queries[&w], |q| match q {
            Query::Q5 { word } => tantivy.top10(word).map(|_| ()),
            _ => Ok(()),
        })?;
        limits.insert(w, (f, "bare tantivy"));
    }
    let f = time_each(&queries[&Workload::Q6], |q| {
        if let Query::Q6 { vector } = q {
            limits::exact_top10(&truth.chunks, vector);
        }
        Ok(())
    })?;
    limits.insert(Workload::Q6, (f, "exact search"));
    Ok((limits, raw_keys, raw_time))
}

/// Times `work` on each query, after one untimed pass over the reads (so
/// both sides of a ratio run with warm caches); the figures.
fn time_each(queries: &[Query], mut work: impl FnMut(&Query) -> Result<()>) -> Result<Figures> {
    for q in queries.iter().filter(|q| !matches!(q, Query::W1 { .. })) {
        work(q)?;
    }
    let mut lat = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        let t = Instant::now();
        work(q)?;
        lat.push(t.elapsed());
    }
    Ok(Figures::of(&mut lat, started.elapsed()))
}

/// Every query through `door`, one at a time, after an untimed pass
/// over the reads.
fn run_local(door: &mut dyn Door, queries: &[Query]) -> (Vec<tcp::Sample>, Duration) {
    for q in queries.iter().filter(|q| !matches!(q, Query::W1 { .. })) {
        let _ = door.run(q);
    }
    let started = Instant::now();
    let samples = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let t = Instant::now();
            let answer = door.run(q).map_err(|e| e.to_string());
            (i, answer, t.elapsed())
        })
        .collect();
    (samples, started.elapsed())
}

/// The mixed run in process: `clients` threads, each with its own session.
fn run_mixed_local(
    db: &Database,
    email: &str,
    via: Via,
    clients: usize,
    queries: &[Query],
) -> Result<(Vec<tcp::Sample>, Duration)> {
    parallel((0..clients).collect(), |c| {
        let session = db.session_as(email)?;
        let mine: Vec<Query> = queries.iter().skip(c).step_by(clients).cloned().collect();
        let (samples, _) = match via {
            Via::Api => run_local(&mut Api { session: &session }, &mine),
            _ => run_local(
                &mut Oql {
                    runner: Runner::new(&session),
                },
                &mine,
            ),
        };
        // Back to indexes into the whole list.
        Ok(samples
            .into_iter()
            .map(|(i, a, t)| (c + i * clients, a, t))
            .collect())
    })
}

/// Runs `work` on a thread per state, all at once; what they all returned
/// and the wall time.
fn parallel<S: Send, T: Send>(
    states: Vec<S>,
    work: impl Fn(S) -> Result<Vec<T>> + Sync,
) -> Result<(Vec<T>, Duration)> {
    let started = Instant::now();
    let parts: Vec<Result<Vec<T>>> = std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = states
            .into_iter()
            .map(|state| s.spawn(move || work(state)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::io("a bench client thread failed")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut out = Vec::new();
    for p in parts {
        out.extend(p?);
    }
    Ok((out, elapsed))
}

/// The figures of one run with every answer checked.
#[allow(clippy::too_many_arguments)]
fn row(
    plan: &Workloads<'_>,
    via: Via,
    workload: &str,
    what: &str,
    queries: &[Query],
    samples: Vec<tcp::Sample>,
    elapsed: Duration,
    limit: Option<(Figures, &'static str)>,
) -> Row {
    let mut latencies = Vec::with_capacity(samples.len());
    let (mut wrong, mut failures) = (0, Vec::new());
    let (mut recall_sum, mut recalls) = (0.0, 0usize);
    let mut writes = 0u64;
    for (i, answer, took) in samples {
        latencies.push(took);
        if answer.is_ok() && matches!(queries.get(i), Some(Query::W1 { .. })) {
            writes += 1;
        }
        let verdict = match (&answer, queries.get(i)) {
            (Ok(a), Some(q)) => plan.check(q, a).map(|r| (r, matches!(q, Query::Q6 { .. }))),
            (Err(e), _) => Err(format!("error: {e}")),
            (Ok(_), None) => Err("an answer to no query".into()),
        };
        match verdict {
            Ok((r, true)) => {
                recall_sum += r;
                recalls += 1;
            }
            Ok(_) => {}
            Err(why) => {
                wrong += 1;
                if failures.len() < SHOWN {
                    failures.push(format!("{:?}: {why}", queries.get(i).map(short)));
                }
            }
        }
    }
    let recall = (recalls > 0).then(|| recall_sum / recalls as f64);
    // A recall this low is a wrong answer, not a slow index.
    if recall.is_some_and(|r| r < RECALL_FLOOR) {
        wrong += 1;
        failures.push(format!(
            "recall@10 {:.3} < {RECALL_FLOOR}",
            recall.unwrap_or(0.0)
        ));
    }
    let figures = Figures::of(&mut latencies, elapsed);
    Row {
        door: via.name().into(),
        workload: workload.into(),
        what: what.into(),
        figures,
        limit: limit.map(|l| l.0),
        limit_name: limit.map(|l| l.1.to_string()),
        ratio: limit.map(|l| figures.per_second / l.0.per_second.max(1e-9)),
        vs_in_process: None,
        writes,
        wrong,
        recall,
        failures,
    }
}

/// Each TCP row's rate over the same workload's in process through OQL
/// (the text the server runs), when both ran.
fn compare_doors(rows: &mut [Row]) {
    let oql: HashMap<String, f64> = rows
        .iter()
        .filter(|r| r.door == "oql")
        .map(|r| (r.workload.clone(), r.figures.per_second))
        .collect();
    for r in rows.iter_mut().filter(|r| r.door == "tcp") {
        r.vs_in_process = oql
            .get(&r.workload)
            .map(|local| r.figures.per_second / local.max(1e-9));
    }
}

/// Mean recall@10 under which Q6's answers count as wrong (the target is
/// 0.95; below this the index is broken, not tuned).
const RECALL_FLOOR: f64 = 0.8;

fn short(q: &Query) -> String {
    let text = format!("{q:?}");
    text.chars().take(120).collect()
}

fn tcp_run(
    server: Option<&(std::net::SocketAddr, String)>,
    clients: usize,
    queries: &[Query],
) -> Result<(Vec<tcp::Sample>, Duration)> {
    let (addr, token) = server.ok_or_else(|| Error::invalid("no server started"))?;
    tcp::run(*addr, token, clients, DEPTH, queries)
}

/// The server on loopback over `db`, and a token of `session`'s person.
fn start_tcp(db: &Database, session: &Session) -> Result<(std::net::SocketAddr, String)> {
    let limits = crate::server::Limits::default();
    let addr = tcp::start_server(db, limits)?;
    let token = session.run(|t| {
        t.create_token(NewToken {
            name: "bench".into(),
            expires_at: None,
        })
    })?;
    Ok((addr, token.secret))
}

/// A new database with one enterprise org and its owner's session.
fn fresh(dir: &Path) -> Result<(Database, String)> {
    let db = Database::open_with(
        dir,
        DbOptions {
            durability: Durability::Relaxed,
            ..Default::default()
        },
    )?;
    let mut root = db.local_session()?;
    root.run(|t| t.create_org("bench", "Bench", Plan::Enterprise).map(|_| ()))?;
    root.use_org("bench")?;
    let email = "owner@bench.example".to_string();
    root.run(|t| {
        t.create_person(NewPerson {
            email: email.clone(),
            name: "Owner".into(),
            role: Role::OrgOwner,
            password: None,
        })
        .map(|_| ())
    })?;
    Ok((db, email))
}

/// W1's limit: the keys one W1 commit writes (found by diffing the store
/// around one), written again as raw batches with fresh keys, unsynced.
fn w1_limit(dir: &Path, ops: usize) -> Result<Figures> {
    let changes = {
        let (db, email) = fresh(dir)?;
        let session = db.session_as(&email)?;
        let mut api = Api { session: &session };
        for n in 0..2 {
            api.run(&Query::W1 { n })?;
        }
        let before = db.raw_entries()?.into_iter().collect();
        api.run(&Query::W1 { n: 2 })?;
        let after = db.raw_entries()?.into_iter().collect();
        diff(&before, &after)
    };
    let raw = Raw::open(dir)?;
    let mut replay = Replay::new(changes)?;
    let w1: Vec<Query> = (0..ops as u64).map(|n| Query::W1 { n }).collect();
    time_each(&w1, |_| raw.write(replay.batch(), false))
}

/// Creates `count` of the dataset's things through OQL, 100 statements
/// per block; the things made and the time it took.
fn oql_load(dir: &Path, truth: &Truth, count: usize) -> Result<(u64, Duration)> {
    let (db, email) = fresh(dir)?;
    let session = db.session_as(&email)?;
    let mut runner = Runner::new(&session);
    let things: Vec<_> = truth.things.iter().take(count).collect();
    let started = Instant::now();
    for block in things.chunks(100) {
        runner.execute("BEGIN")?;
        for t in block {
            runner.set_param("name", serde_json::json!(t.name))?;
            runner.execute(&format!("CREATE THING {} $name", t.kind))?;
        }
        runner.execute("COMMIT")?;
    }
    Ok((things.len() as u64, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workloads::Answer;

    #[test]
    fn a_wrong_answer_or_an_error_counts_against_the_run() {
        let shape = Shape {
            orgs: 1,
            people: 20,
            things: 300,
            chunks: 30,
        };
        let g = generator::generate(shape, 5, &mut std::io::sink()).unwrap();
        let plan = Workloads::new(&g.truth);
        let queries = plan.queries(Workload::Q4, 3, 1);
        let right = |q: &Query| match q {
            Query::Q4 { person } => Answer::Count(plan.friends_things(*person)),
            _ => unreachable!(),
        };
        let ms = Duration::from_millis(1);
        let samples = vec![
            (0, Ok(right(&queries[0])), ms),
            (1, Ok(Answer::Count(u64::MAX)), ms),
            (2, Err("TIMEOUT".to_string()), ms),
        ];
        let r = row(&plan, Via::Oql, "Q4", "", &queries, samples, ms * 3, None);
        assert_eq!(r.wrong, 2);
        assert_eq!(r.failures.len(), 2);
        assert!(r.failures[1].contains("TIMEOUT"), "{:?}", r.failures);
        assert_eq!(r.figures.ops, 3);
    }
}
