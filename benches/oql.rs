//! OQL against the direct API (issue 3): the same reads written as OQL text
//! through `onedb::query::run::Runner` and as calls on a `ReadTxn`,
//! measured side by side on one database of 100,000 things.
//!
//! - a thing by id: `MATCH (t) WHERE t.id = $id RETURN t` against
//!   `session.read()?.thing(id)`;
//! - things by type and status, `LIMIT 50`, against
//!   `things_of_type_first(…, 50).take(50)` (the first batch sized as OQL's
//!   LIMIT sizes it);
//! - friends' things (`following` then `owns`, distinct count) against two
//!   nested `edges` loops into a `HashSet`;
//! - the plan cache: parse + plan of each statement alone against the
//!   statement's cached end-to-end run (and an uncached run, a new `Runner`
//!   each time, to show what the cache saves).
//!
//! Each pair runs under criterion (direct first, then OQL) and interleaved
//! (blocks of each alternating); the summary reads criterion's estimates of
//! this run and prints both.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Throughput, black_box};
use onedb::model::now_ms;
use onedb::query::ast::StatementKind;
use onedb::query::parser::parse_statement;
use onedb::query::plan::plan_match;
use onedb::query::run::Runner;
use onedb::{Database, Direction, Durability, Id, NewConnection, NewThing, Session, Status};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

const SEED: u64 = 0x01DB_0003;
const THINGS: usize = 100_000;
/// Every fifth thing is a creator; creators follow and own.
const CREATOR_EVERY: usize = 5;
/// Out-degree of `following` (creator → creator) and `owns` (creator →
/// other thing).
const DEGREE: usize = 4;
/// Creates or connects per transaction.
const BATCH: usize = 1_000;
/// Ids the point reads and traversals cycle through.
const PROBES: usize = 1_024;

const POINT: &str = "MATCH (t) WHERE t.id = $id RETURN t";
const SCAN: &str = "MATCH (t:blog_post) WHERE t.status = \"published\" RETURN t LIMIT 50";
/// Diagnostic: the same scan returning ids only.
const SCAN_IDS: &str = "MATCH (t:blog_post) WHERE t.status = \"published\" RETURN t.id LIMIT 50";
const FRIENDS: &str =
    "MATCH (c)-[:following]->(f)-[:owns]->(x) WHERE c.id = $id RETURN count(DISTINCT x) AS things";

struct Data {
    things: Vec<Id>,
    creators: Vec<Id>,
}

/// Thing `i`: a creator, a blog post or a digital product; posts and
/// products are spread over draft, active and published.
fn kind_and_status(i: usize) -> (&'static str, Status) {
    if i.is_multiple_of(CREATOR_EVERY) {
        return ("creator", Status::Draft);
    }
    let kind = if i.is_multiple_of(2) {
        "blog_post"
    } else {
        common::KIND
    };
    let status = match (i / CREATOR_EVERY) % 3 {
        0 => Status::Draft,
        1 => Status::Active,
        _ => Status::Published,
    };
    (kind, status)
}

fn build(owner: &Session) -> Data {
    let mut rng = StdRng::seed_from_u64(SEED);
    let started = Instant::now();
    let mut things = Vec::with_capacity(THINGS);
    let mut creators = Vec::new();
    let mut others = Vec::new();
    for chunk in (0..THINGS).collect::<Vec<_>>().chunks(BATCH) {
        let mut t = owner.write().expect("write");
        for &i in chunk {
            let (kind, status) = kind_and_status(i);
            let thing = t
                .create_thing(NewThing {
                    kind: kind.into(),
                    name: format!("{kind} {i:06}"),
                    properties: json!({"n": i, "price": rng.gen_range(1..100)})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                })
                .expect("create thing");
            if status != Status::Draft {
                t.set_status(thing.id, Status::Active).expect("activate");
            }
            if status == Status::Published {
                t.set_status(thing.id, Status::Published).expect("publish");
            }
            things.push(thing.id);
            if kind == "creator" {
                creators.push(thing.id);
            } else {
                others.push(thing.id);
            }
        }
        t.commit().expect("commit things");
    }
    eprintln!(
        "oql bench: {} things ({} creators) in {:.1} s",
        things.len(),
        creators.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut edges = Vec::new();
    for (n, &c) in creators.iter().enumerate() {
        let mut follows = HashSet::new();
        while follows.len() < DEGREE {
            let f = creators[rng.gen_range(0..creators.len())];
            if f != c {
                follows.insert(f);
            }
        }
        let mut owns = HashSet::new();
        while owns.len() < DEGREE {
            owns.insert(others[rng.gen_range(0..others.len())]);
        }
        // Sorted so the seeded run connects in the same order every time.
        let mut follows: Vec<Id> = follows.into_iter().collect();
        let mut owns: Vec<Id> = owns.into_iter().collect();
        follows.sort();
        owns.sort();
        edges.extend(follows.into_iter().map(|f| (c, "following", f)));
        edges.extend(owns.into_iter().map(|o| (c, common::OWNS, o)));
        let _ = n;
    }
    for chunk in edges.chunks(BATCH) {
        let mut t = owner.write().expect("write");
        for &(from, kind, to) in chunk {
            t.connect(NewConnection {
                from: Some(from),
                to: Some(to),
                kind: kind.into(),
                ..Default::default()
            })
            .expect("connect");
        }
        t.commit().expect("commit connections");
    }
    eprintln!(
        "oql bench: {} connections in {:.1} s",
        edges.len(),
        started.elapsed().as_secs_f64()
    );
    Data { things, creators }
}

/// Cycles through `ids`.
struct Probe<'a> {
    ids: &'a [Id],
    next: usize,
}

impl<'a> Probe<'a> {
    fn new(ids: &'a [Id]) -> Probe<'a> {
        Probe { ids, next: 0 }
    }

    fn next(&mut self) -> Id {
        self.next = (self.next + 1) % self.ids.len();
        self.ids[self.next]
    }
}

fn probes(all: &[Id], rng: &mut StdRng) -> Vec<Id> {
    let mut ids = all.to_vec();
    ids.shuffle(rng);
    ids.truncate(PROBES);
    ids
}

// ---- the direct API side ----

fn direct_point(owner: &Session, id: Id) -> usize {
    usize::from(
        owner
            .read()
            .expect("read")
            .thing(id)
            .expect("thing")
            .is_some(),
    )
}

fn direct_scan(owner: &Session) -> usize {
    let t = owner.read().expect("read");
    let things: Vec<_> = t
        .things_of_type_first("blog_post", Some(Status::Published), 50)
        .expect("scan")
        .take(50)
        .collect::<Result<_, _>>()
        .expect("things");
    things.len()
}

/// Diagnostic: the direct scan, each thing then turned into the JSON map
/// an OQL result row holds.
fn direct_scan_json(owner: &Session) -> usize {
    let t = owner.read().expect("read");
    let things: Vec<serde_json::Value> = t
        .things_of_type_first("blog_post", Some(Status::Published), 50)
        .expect("scan")
        .take(50)
        .map(|t| serde_json::to_value(t.expect("thing")).expect("json"))
        .collect();
    things.len()
}

fn direct_friends(owner: &Session, id: Id) -> usize {
    let t = owner.read().expect("read");
    let now = now_ms();
    let mut seen = HashSet::new();
    for e in t
        .edges(id, Direction::Out, Some("following"), now)
        .expect("edges")
    {
        let friend = e.expect("edge").to;
        for e in t
            .edges(friend, Direction::Out, Some(common::OWNS), now)
            .expect("edges")
        {
            seen.insert(e.expect("edge").to);
        }
    }
    seen.len()
}

// ---- the OQL side ----

fn oql(runner: &mut Runner<'_>, text: &str, id: Option<Id>) -> usize {
    if let Some(id) = id {
        runner
            .set_param("id", json!(id.to_string()))
            .expect("param");
    }
    runner.execute(text).expect("oql").rows.len()
}

fn oql_friends(runner: &mut Runner<'_>, id: Id) -> usize {
    runner
        .set_param("id", json!(id.to_string()))
        .expect("param");
    let out = runner.execute(FRIENDS).expect("oql");
    out.rows[0][0].as_u64().expect("a count") as usize
}

fn parse_and_plan(db: &Database, text: &str) -> usize {
    let statement = parse_statement(text).expect("parse");
    let StatementKind::Match(query) = &statement.kind else {
        panic!("not a MATCH");
    };
    plan_match(query, &db.vocabulary()).expect("plan").width
}

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion(20, Duration::from_secs(3));

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), Durability::Relaxed);
    let data = build(&owner);
    // The search indexer follows the load on its own thread: let it finish
    // before anything is timed.
    db.flush_indexes().expect("flush indexes");

    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    let point_ids = probes(&data.things, &mut rng);
    let creator_ids = probes(&data.creators, &mut rng);

    // Both sides give the same answers.
    let mut runner = Runner::new(&owner);
    for &id in point_ids.iter().take(50) {
        assert_eq!(direct_point(&owner, id), 1);
        assert_eq!(oql(&mut runner, POINT, Some(id)), 1);
    }
    assert_eq!(direct_scan(&owner), 50);
    assert_eq!(oql(&mut runner, SCAN, None), 50);
    let mut total = 0;
    for &id in &creator_ids {
        let d = direct_friends(&owner, id);
        assert_eq!(oql_friends(&mut runner, id), d, "friends' things of {id}");
        total += d;
    }
    eprintln!(
        "oql bench: friends' things per creator: {:.1} on average",
        total as f64 / creator_ids.len() as f64
    );

    {
        let mut g = c.benchmark_group("oql_point_read");
        g.throughput(Throughput::Elements(1));
        let mut p = Probe::new(&point_ids);
        g.bench_function("direct", |b| {
            b.iter(|| direct_point(&owner, black_box(p.next())))
        });
        let mut p = Probe::new(&point_ids);
        g.bench_function("oql", |b| {
            b.iter(|| oql(&mut runner, POINT, Some(black_box(p.next()))))
        });
        g.finish();
    }
    {
        let mut g = c.benchmark_group("oql_type_status_limit_50");
        g.throughput(Throughput::Elements(50));
        g.bench_function("direct", |b| b.iter(|| direct_scan(&owner)));
        g.bench_function("oql", |b| b.iter(|| oql(&mut runner, SCAN, None)));
        g.finish();
    }
    {
        let mut g = c.benchmark_group("oql_friends_things");
        g.throughput(Throughput::Elements(1));
        let mut p = Probe::new(&creator_ids);
        g.bench_function("direct", |b| {
            b.iter(|| direct_friends(&owner, black_box(p.next())))
        });
        let mut p = Probe::new(&creator_ids);
        g.bench_function("oql", |b| {
            b.iter(|| oql_friends(&mut runner, black_box(p.next())))
        });
        g.finish();
    }
    {
        // The parse + plan of each statement alone, and its uncached run
        // (a new Runner: an empty cache). The cached runs are the `oql`
        // figures above.
        let mut g = c.benchmark_group("oql_prepare");
        for (name, text) in [("point", POINT), ("scan", SCAN), ("friends", FRIENDS)] {
            g.bench_function(format!("{name}_parse_plan"), |b| {
                b.iter(|| parse_and_plan(&db, black_box(text)))
            });
            g.bench_function(format!("{name}_parse"), |b| {
                b.iter(|| parse_statement(black_box(text)).expect("parse"))
            });
            // What a cache hit costs in Runner::prepare: one lookup of the
            // statement text in a HashMap<String, Arc<_>> (the same std
            // map and hasher), here with the runner's 512 entries.
            let mut cache: HashMap<String, Arc<usize>> = (0..511)
                .map(|i| (format!("MATCH (t) WHERE t.n = {i} RETURN t"), Arc::new(i)))
                .collect();
            cache.insert(text.to_string(), Arc::new(0));
            g.bench_function(format!("{name}_cache_hit"), |b| {
                b.iter(|| cache.get(black_box(text)).cloned())
            });
        }
        let mut p = Probe::new(&point_ids);
        g.bench_function("point_uncached", |b| {
            b.iter(|| oql(&mut Runner::new(&owner), POINT, Some(p.next())))
        });
        let mut p = Probe::new(&creator_ids);
        g.bench_function("friends_uncached", |b| {
            b.iter(|| oql_friends(&mut Runner::new(&owner), p.next()))
        });
        g.finish();
    }

    // Interleaved: blocks of each side alternating, robust to drift.
    let mut inter: Vec<(&str, Paired)> = Vec::new();
    {
        let (mut p, mut q) = (Probe::new(&point_ids), Probe::new(&point_ids));
        let m = paired(
            200,
            Duration::from_secs(3),
            || {
                black_box(oql(&mut runner, POINT, Some(p.next())));
            },
            || {
                black_box(direct_point(&owner, q.next()));
            },
        );
        inter.push(("point", m));
        let m = paired(
            20,
            Duration::from_secs(3),
            || {
                black_box(oql(&mut runner, SCAN, None));
            },
            || {
                black_box(direct_scan(&owner));
            },
        );
        inter.push(("scan", m));
        let (mut p, mut q) = (Probe::new(&creator_ids), Probe::new(&creator_ids));
        let m = paired(
            50,
            Duration::from_secs(3),
            || {
                black_box(oql_friends(&mut runner, p.next()));
            },
            || {
                black_box(direct_friends(&owner, q.next()));
            },
        );
        inter.push(("friends", m));
        // Diagnostics: where the scan's gap is. OQL returning only ids,
        // and the direct scan turning each thing into its JSON map as a
        // result row must.
        let m = paired(
            20,
            Duration::from_secs(2),
            || {
                black_box(oql(&mut runner, SCAN_IDS, None));
            },
            || {
                black_box(direct_scan(&owner));
            },
        );
        inter.push(("scan_ids", m));
        let m = paired(
            20,
            Duration::from_secs(2),
            || {
                black_box(oql(&mut runner, SCAN, None));
            },
            || {
                black_box(direct_scan_json(&owner));
            },
        );
        inter.push(("scan_json", m));
        let m = paired(
            20,
            Duration::from_secs(2),
            || {
                black_box(direct_scan_json(&owner));
            },
            || {
                black_box(direct_scan(&owner));
            },
        );
        inter.push(("json_cost", m));
    }
    for (name, text, probe) in [
        ("point_cache", POINT, Some(&point_ids)),
        ("scan_cache", SCAN, None),
        ("friends_cache", FRIENDS, Some(&creator_ids)),
    ] {
        let mut p = probe.map(|ids| Probe::new(ids));
        let m = paired(
            50,
            Duration::from_secs(2),
            || {
                black_box(parse_and_plan(&db, black_box(text)));
            },
            || {
                let id = p.as_mut().map(|p| p.next());
                black_box(oql(&mut runner, text, id));
            },
        );
        inter.push((name, m));
    }

    c.final_summary();
    summary(since, &inter);
}

/// Medians of an interleaved run.
#[derive(Clone, Copy)]
struct Paired {
    /// ns per operation of the first and the second side.
    a: f64,
    b: f64,
    /// b's time over a's, the median over rounds.
    ratio: f64,
}

/// Runs `a` and `b` alternately, a block of `block` operations each per
/// round (taking turns going first), for about `total`; returns the
/// medians over rounds. The other
/// engineers' builds share the two cores: a burst of load lands on a few
/// rounds, and the median of the per-round ratios ignores them where a
/// mean would not.
fn paired(block: usize, total: Duration, mut a: impl FnMut(), mut b: impl FnMut()) -> Paired {
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..block {
            f();
        }
        t.elapsed().as_nanos() as f64 / block as f64
    };
    while start.elapsed() < total || ratios.len() < 5 {
        // Both sides read the same ids in the same order: whichever goes
        // second finds the blocks the first one brought into the cache.
        // So they take turns going first.
        let (da, db) = if ratios.len() % 2 == 0 {
            let da = time(&mut a);
            (da, time(&mut b))
        } else {
            let db = time(&mut b);
            (time(&mut a), db)
        };
        ta.push(da);
        tb.push(db);
        ratios.push(db / da);
    }
    Paired {
        a: median(&mut ta),
        b: median(&mut tb),
        ratio: median(&mut ratios),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- the summary ----

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn summary(since: SystemTime, inter: &[(&str, Paired)]) {
    let find = |name: &str| inter.iter().find(|(n, _)| *n == name).map(|(_, m)| *m);
    // Interleaved runs list the OQL side first; the ratio is direct/OQL.
    let line = |label: &str, o: f64, d: f64, ratio: f64, min: f64| {
        println!(
            "{label:<44} oql {:>8.2} µs ({:>9})  direct {:>8.2} µs ({:>9})  ratio {:>5.1}%  target ≥ {:.0}%  {}",
            o / 1e3,
            common::rate(o),
            d / 1e3,
            common::rate(d),
            100.0 * ratio,
            100.0 * min,
            verdict(ratio >= min)
        )
    };
    println!();
    println!("== OQL vs the direct API (same run, same database) ==");
    for (what, group, name, min) in [
        ("a thing by id", "oql_point_read", "point", 0.5),
        (
            "type + status, LIMIT 50, of 100k things",
            "oql_type_status_limit_50",
            "scan",
            0.7,
        ),
        (
            "friends' things (distinct), degree 4",
            "oql_friends_things",
            "friends",
            0.7,
        ),
    ] {
        match (
            common::estimate_ns(&format!("{group}/oql"), since),
            common::estimate_ns(&format!("{group}/direct"), since),
        ) {
            (Some(o), Some(d)) => line(&format!("{what} (criterion)"), o, d, d / o, min),
            _ => println!("{what} (criterion): not run"),
        }
        if let Some(m) = find(name) {
            line(&format!("{what} (interleaved)"), m.a, m.b, m.ratio, min);
        }
    }
    if let Some(m) = find("scan_ids") {
        line(
            "(diagnostic) scan, OQL returning t.id",
            m.a,
            m.b,
            m.ratio,
            0.7,
        );
    }
    if let Some(m) = find("scan_json") {
        line(
            "(diagnostic) scan, direct + to_value",
            m.a,
            m.b,
            m.ratio,
            0.7,
        );
    }
    if let Some(m) = find("json_cost") {
        println!(
            "{:<44} direct + to_value {:>8.2} µs  direct {:>8.2} µs  ratio {:>5.1}%  (what the maps cost a scan returning whole things)",
            "(diagnostic) scan, the maps alone",
            m.a / 1e3,
            m.b / 1e3,
            100.0 * m.ratio
        );
    }
    println!();
    // The target is what a repeated statement pays for parse + plan: a
    // cache hit. Parse + plan alone is what the hit saves.
    println!(
        "== plan cache: what a repeated statement pays for parse + plan (a hit) vs its cached run =="
    );
    for (name, group) in [
        ("point", "oql_point_read"),
        ("scan", "oql_type_status_limit_50"),
        ("friends", "oql_friends_things"),
    ] {
        let pp = common::estimate_ns(&format!("oql_prepare/{name}_parse_plan"), since);
        let cached = common::estimate_ns(&format!("{group}/oql"), since);
        let uncached = common::estimate_ns(&format!("oql_prepare/{name}_uncached"), since);
        let parse = common::estimate_ns(&format!("oql_prepare/{name}_parse"), since);
        let hit = common::estimate_ns(&format!("oql_prepare/{name}_cache_hit"), since);
        if let (Some(hit), Some(cached)) = (hit, cached) {
            println!(
                "{name:<8} criterion:   cache hit   {:>7.3} µs  cached run {:>8.2} µs  share {:>5.2}%  target ≤ 10%  {}  (parse alone {:.2} µs)",
                hit / 1e3,
                cached / 1e3,
                100.0 * hit / cached,
                verdict(hit / cached <= 0.10),
                parse.unwrap_or(f64::NAN) / 1e3
            );
        }
        if let (Some(pp), Some(cached)) = (pp, cached) {
            let miss = uncached.map_or(String::new(), |u| {
                format!(
                    "  (uncached run {:.2} µs: the cache saves {:.2} µs)",
                    u / 1e3,
                    (u - cached) / 1e3
                )
            });
            println!(
                "{name:<8} criterion:   parse+plan {:>7.2} µs  cached run {:>8.2} µs  share {:>5.1}%  (what a hit saves; no target){miss}",
                pp / 1e3,
                cached / 1e3,
                100.0 * pp / cached,
            );
        }
        if let Some(m) = find(&format!("{name}_cache")) {
            // Here a is parse+plan and b the cached run: the share is a/b.
            let share = 1.0 / m.ratio;
            println!(
                "{:<8} interleaved: parse+plan {:>7.2} µs  cached run {:>8.2} µs  share {:>5.1}%  (what a hit saves; no target)",
                "",
                m.a / 1e3,
                m.b / 1e3,
                100.0 * share,
            );
        }
    }
}
