//! Behaviour under concurrency: no quota overshoot (Q1), FoundationDB's cycle
//! test without kills (C5), no lost update, and pairs of overlapping
//! transactions whose outcome must be serializable (delete vs connect,
//! connect vs the same connect).
//!
//! Every randomized test prints its seed; replay with the environment
//! variable it names (`ONEDB_Q1_SEED`, `ONEDB_CYCLE_SEED`, `ONEDB_DELETE_SEED`,
//! `ONEDB_PAIRS_SEED`). A seed fixes every random choice; the threads'
//! interleaving is still up to the scheduler.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use onedb::query::run::Runner;
use onedb::query::script::run_text;
use onedb::{
    Database, Dim, Direction, Error, ErrorCode, EventFilter, Id, NewConnection, NewThing, ReadTxn,
    Session, ThingUpdate, WriteTxn,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

// ---------------------------------------------------------------- helpers

fn seed(var: &str) -> u64 {
    match std::env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{var} is not a number: {v:?}")),
        Err(_) => rand::random(),
    }
}

/// A session of root inside `slug` (each thread gets its own).
fn session_in(db: &Database, slug: &str) -> Session {
    let mut s = db.local_session().expect("root session");
    s.use_org(slug).expect("use org");
    s
}

fn set_limit(root: &mut Session, slug: &str, counter: &str, limit: i64) {
    root.run(|t| {
        t.set_limits(slug, BTreeMap::from([(counter.to_string(), limit)]))
            .map(|_| ())
    })
    .expect("set limits");
    root.refresh_org().expect("refresh org");
}

fn usage_of(session: &Session, counter: &str) -> i64 {
    session
        .read()
        .expect("read")
        .usage()
        .expect("usage")
        .into_iter()
        .find(|r| r.counter == counter)
        .map_or(0, |r| r.used)
}

/// Targets of the events of one kind in the session's org.
fn event_targets(session: &Session, kind: &str) -> Vec<Id> {
    session
        .read()
        .expect("read")
        .events(&EventFilter {
            kind: Some(kind.into()),
            limit: usize::MAX,
            ..Default::default()
        })
        .expect("events")
        .into_iter()
        .filter_map(|e| e.target)
        .collect()
}

fn live_things(session: &Session) -> BTreeSet<Id> {
    session
        .read()
        .expect("read")
        .all_things()
        .expect("things")
        .map(|t| t.expect("thing").id)
        .collect()
}

/// What one client saw of its create attempts.
#[derive(Default)]
struct Outcome {
    created: Vec<Id>,
    limit_reached: usize,
    /// Anything else: each one fails the test.
    unexpected: Vec<Error>,
}

/// Runs `clients` threads that each try `attempts` creates in `slug`, all
/// released together; `jitter` seeds each client's pauses.
fn race_creates(
    db: &Database,
    slug: &str,
    clients: usize,
    attempts: usize,
    jitter: Option<u64>,
) -> Outcome {
    let barrier = Arc::new(Barrier::new(clients));
    let kinds = ["lesson", "video", "blog_post", "course"];
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let db = db.clone();
            let slug = slug.to_string();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let session = session_in(&db, &slug);
                let mut rng = jitter.map(|s| StdRng::seed_from_u64(s ^ (client as u64 + 1)));
                let mut out = Outcome::default();
                barrier.wait();
                for i in 0..attempts {
                    let kind = match rng.as_mut() {
                        Some(rng) => *kinds.choose(rng).expect("kinds"),
                        None => "lesson",
                    };
                    if let Some(rng) = rng.as_mut() {
                        match rng.gen_range(0..10) {
                            0 => std::thread::yield_now(),
                            1 => std::thread::sleep(Duration::from_micros(rng.gen_range(1..200))),
                            _ => {}
                        }
                    }
                    let result = session.run(|t| {
                        t.create_thing(NewThing {
                            kind: kind.into(),
                            name: format!("c{client} #{i}"),
                            ..Default::default()
                        })
                    });
                    match result {
                        Ok(thing) => out.created.push(thing.id),
                        Err(e) if e.code == ErrorCode::LimitReached => out.limit_reached += 1,
                        Err(e) => out.unexpected.push(e),
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Outcome::default();
    for h in handles {
        let out = h.join().expect("client thread");
        total.created.extend(out.created);
        total.limit_reached += out.limit_reached;
        total.unexpected.extend(out.unexpected);
    }
    total
}

/// The limit held exactly: `limit` things stored, counted, and logged.
fn assert_exactly_at_limit(
    session: &Session,
    outcome: &Outcome,
    attempts: usize,
    limit: usize,
    what: &str,
) {
    assert!(
        outcome.unexpected.is_empty(),
        "{what}: {} errors other than LIMIT_REACHED, the first: {:?}",
        outcome.unexpected.len(),
        &outcome.unexpected[..outcome.unexpected.len().min(3)]
    );
    let accepted: BTreeSet<Id> = outcome.created.iter().copied().collect();
    assert_eq!(accepted.len(), outcome.created.len(), "{what}: an id twice");
    assert_eq!(accepted.len(), limit, "{what}: accepted creates");
    assert_eq!(
        outcome.limit_reached,
        attempts - limit,
        "{what}: LIMIT_REACHED answers"
    );
    assert_eq!(live_things(session), accepted, "{what}: stored things");
    assert_eq!(usage_of(session, "things"), limit as i64, "{what}: usage");
    let created: Vec<Id> = event_targets(session, "entity_created")
        .into_iter()
        .filter(|id| id.dim() == Dim::Thing)
        .collect();
    assert_eq!(created.len(), limit, "{what}: entity_created events");
    assert_eq!(
        created.into_iter().collect::<BTreeSet<_>>(),
        accepted,
        "{what}: events name the accepted things"
    );
}

// ---------------------------------------------------------------- limits

#[test]
fn eight_threads_racing_to_create_stop_exactly_at_the_limit() {
    let (_dir, db) = open();
    let mut root = org(&db, "acme");
    set_limit(&mut root, "acme", "things", 100);
    let started = Instant::now();
    let outcome = race_creates(&db, "acme", 8, 30, None);
    println!("8 x 30 creates against 100: {:?}", started.elapsed());
    assert_exactly_at_limit(&root, &outcome, 8 * 30, 100, "8 threads");

    // At the limit one more is refused and writes nothing; at limit + 1 it is
    // accepted.
    let before = all_entries(&db);
    let refused = root.run(|t| t.create_thing(new_thing("lesson", "one too many")));
    assert_eq!(refused.unwrap_err().code, ErrorCode::LimitReached);
    assert_eq!(all_entries(&db), before, "a refused create writes nothing");
    set_limit(&mut root, "acme", "things", 101);
    root.run(|t| t.create_thing(new_thing("lesson", "the 101st")))
        .expect("under the raised limit");
    assert_eq!(usage_of(&root, "things"), 101);
    assert_valid(&db);
}

/// Q1: 32 clients x 50 creates against a limit of 100, 20 seeded rounds, each
/// in a fresh org of one database.
#[test]
fn q1_thirty_two_clients_never_pass_a_limit_of_one_hundred() {
    let seed = seed("ONEDB_Q1_SEED");
    println!("Q1: seed {seed} (replay with ONEDB_Q1_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (_dir, db) = open();
    let (clients, attempts, limit, rounds) = (32, 50, 100, 20);
    let started = Instant::now();
    for round in 0..rounds {
        let slug = format!("q1-round-{round}");
        let mut root = org(&db, &slug);
        set_limit(&mut root, &slug, "things", limit as i64);
        let outcome = race_creates(&db, &slug, clients, attempts, Some(rng.r#gen()));
        assert_exactly_at_limit(
            &root,
            &outcome,
            clients * attempts,
            limit,
            &format!("Q1 round {round} (seed {seed})"),
        );
    }
    println!("Q1: {rounds} rounds in {:?}", started.elapsed());
    assert_valid(&db);
}

// ---------------------------------------------------------------- C5: cycle

/// The one current `references` successor of `node`; anything else breaks
/// the ring invariant (reported as CORRUPTION so it is never retried).
fn successor(t: &ReadTxn<'_>, node: Id, now: i64) -> onedb::Result<Id> {
    let out: Vec<Id> = t
        .edges(node, Direction::Out, Some("references"), now)?
        .map(|e| e.map(|e| e.to))
        .collect::<onedb::Result<_>>()?;
    match out.as_slice() {
        [next] => Ok(*next),
        _ => Err(Error::new(
            ErrorCode::Corruption,
            format!("ring broken: {node} has {} successors", out.len()),
        )),
    }
}

/// a→b→c→d becomes a→c→b→d, in one transaction.
fn rotate(t: &mut WriteTxn<'_>, a: Id) -> onedb::Result<()> {
    let now = onedb::model::now_ms();
    let b = successor(t, a, now)?;
    let c = successor(t, b, now)?;
    let d = successor(t, c, now)?;
    for (from, to) in [(a, b), (b, c), (c, d)] {
        t.disconnect(from, "references", to)?;
    }
    for (from, to) in [(a, c), (c, b), (b, d)] {
        t.connect(NewConnection {
            from: Some(from),
            to: Some(to),
            kind: "references".into(),
            ..Default::default()
        })?;
    }
    Ok(())
}

/// Creates `n` things linked a0→a1→…→a(n-1)→a0.
fn build_ring(session: &Session, n: usize) -> Vec<Id> {
    let mut nodes = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(100) {
        let count = (n - chunk * 100).min(100);
        let ids = session
            .run(|t| {
                (0..count)
                    .map(|i| {
                        t.create_thing(new_thing("blog_post", &format!("node {}", chunk * 100 + i)))
                            .map(|th| th.id)
                    })
                    .collect::<onedb::Result<Vec<Id>>>()
            })
            .expect("create nodes");
        nodes.extend(ids);
    }
    for chunk in nodes
        .chunks(100)
        .enumerate()
        .map(|(i, c)| i * 100..i * 100 + c.len())
    {
        session
            .run(|t| {
                for i in chunk.clone() {
                    t.connect(NewConnection {
                        from: Some(nodes[i]),
                        to: Some(nodes[(i + 1) % n]),
                        kind: "references".into(),
                        ..Default::default()
                    })?;
                }
                Ok(())
            })
            .expect("connect ring");
    }
    nodes
}

/// Exactly one ring through all nodes, every node with one successor and
/// one predecessor; one event per committed change; usage equals the ring.
fn assert_one_ring(db: &Database, session: &Session, nodes: &[Id], rotations: usize, what: &str) {
    let read = session.read().expect("read");
    let now = onedb::model::now_ms();
    let degree = |node: Id, dir: Direction| -> Vec<Id> {
        read.edges(node, dir, Some("references"), now)
            .expect("edges")
            .map(|e| {
                let e = e.expect("edge");
                if dir == Direction::Out { e.to } else { e.from }
            })
            .collect()
    };
    for &node in nodes {
        assert_eq!(
            degree(node, Direction::Out).len(),
            1,
            "{what}: out-degree of {node}"
        );
        assert_eq!(
            degree(node, Direction::In).len(),
            1,
            "{what}: in-degree of {node}"
        );
    }
    let all: BTreeSet<Id> = nodes.iter().copied().collect();
    let mut seen = BTreeSet::new();
    let mut at = nodes[0];
    for _ in 0..nodes.len() {
        assert!(
            seen.insert(at),
            "{what}: the walk from {} revisits {at}",
            nodes[0]
        );
        at = degree(at, Direction::Out)[0];
        assert!(all.contains(&at), "{what}: an edge leaves the ring to {at}");
    }
    assert_eq!(
        at,
        nodes[0],
        "{what}: the walk does not close after {} steps",
        nodes.len()
    );
    assert_eq!(seen, all, "{what}: one ring through every node");
    drop(read);

    let n = nodes.len();
    assert_eq!(usage_of(session, "connections"), n as i64, "{what}: usage");
    assert_eq!(
        event_targets(session, "connection_created").len(),
        n + 3 * rotations,
        "{what}: connection_created events"
    );
    assert_eq!(
        event_targets(session, "connection_ended").len(),
        3 * rotations,
        "{what}: connection_ended events"
    );
    assert_valid(db);
}

struct CycleRun {
    rotations: usize,
    attempts: usize,
    gave_up: usize,
}

/// `threads` sessions each rotating at random nodes `per_thread` times.
fn run_cycle(
    db: &Database,
    nodes: &[Id],
    threads: usize,
    per_thread: usize,
    seed: u64,
) -> CycleRun {
    let attempts = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(threads));
    let nodes = Arc::new(nodes.to_vec());
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (db, attempts, barrier, nodes) =
                (db.clone(), attempts.clone(), barrier.clone(), nodes.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ ((thread as u64 + 1) << 32));
                let session = session_in(&db, "ring");
                let (mut done, mut gave_up) = (0, 0);
                barrier.wait();
                for _ in 0..per_thread {
                    let a = *nodes.choose(&mut rng).expect("nodes");
                    let result = session.run(|t| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        rotate(t, a)
                    });
                    match result {
                        Ok(()) => done += 1,
                        // `run` retried a commit conflict 32 times and gave
                        // up: allowed, and the rotation must have left nothing.
                        Err(e)
                            if e.code == ErrorCode::Conflict
                                && e.message.contains("concurrent transaction") =>
                        {
                            gave_up += 1
                        }
                        Err(e) => panic!("thread {thread}: rotation at {a} failed: {e}"),
                    }
                }
                (done, gave_up)
            })
        })
        .collect();
    let mut run = CycleRun {
        rotations: 0,
        attempts: 0,
        gave_up: 0,
    };
    for h in handles {
        let (done, gave_up) = h.join().expect("rotation thread");
        run.rotations += done;
        run.gave_up += gave_up;
    }
    run.attempts = attempts.load(Ordering::Relaxed);
    run
}

/// C5, without kills: a ring of 1,000 things, 8 sessions rotating edges.
#[test]
fn c5_cycle_test_keeps_one_ring_of_a_thousand() {
    let seed = seed("ONEDB_CYCLE_SEED");
    println!("C5: seed {seed} (replay with ONEDB_CYCLE_SEED={seed})");
    let (_dir, db) = open();
    let root = org(&db, "ring");
    let n = 1000;
    let started = Instant::now();
    let nodes = build_ring(&root, n);
    let built = started.elapsed();
    let run = run_cycle(&db, &nodes, 8, 1000, seed);
    println!(
        "C5: ring of {n} built in {built:?}; {} rotations ({} attempts, {} given up) in {:?}",
        run.rotations,
        run.attempts,
        run.gave_up,
        started.elapsed() - built
    );
    assert_one_ring(&db, &root, &nodes, run.rotations, "C5");
    assert!(run.rotations > 0);
}

/// The same on a ring of 12, where nearly every pair of rotations conflicts:
/// the conflict path itself must keep the ring.
#[test]
fn c5_cycle_test_under_heavy_contention() {
    let seed = seed("ONEDB_CYCLE_SEED");
    println!("C5 contention: seed {seed} (replay with ONEDB_CYCLE_SEED={seed})");
    let (_dir, db) = open();
    let root = org(&db, "ring");
    let nodes = build_ring(&root, 12);
    let started = Instant::now();
    // Kept short: adjacency scans also read ended edges, and on 12 nodes
    // each node's history grows by ~0.5 entries per rotation, so the cost
    // of a rotation grows with the number done.
    let run = run_cycle(&db, &nodes, 8, 100, seed);
    println!(
        "C5 contention: {} rotations ({} attempts, {} given up) in {:?}",
        run.rotations,
        run.attempts,
        run.gave_up,
        started.elapsed()
    );
    assert_one_ring(&db, &root, &nodes, run.rotations, "C5 contention");
}

/// Two transactions that rotate at overlapping places: whichever commits
/// second gets CONFLICT and changes nothing.
#[test]
fn overlapping_rotations_conflict_and_the_loser_writes_nothing() {
    let (_dir, db) = open();
    let root = org(&db, "ring");
    let nodes = build_ring(&root, 6);
    let other = session_in(&db, "ring");
    // a0→a1→a2→a3 and a1→a2→a3→a4 share the edges a1→a2 and a2→a3.
    let mut first = root.write().expect("write");
    let mut second = other.write().expect("write");
    rotate(&mut first, nodes[0]).expect("rotate");
    rotate(&mut second, nodes[1]).expect("rotate");
    first.commit().expect("the first commit wins");
    let before = all_entries(&db);
    let err = second.commit().expect_err("the second must conflict");
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(all_entries(&db), before, "the loser wrote something");
    assert_one_ring(&db, &root, &nodes, 1, "after the conflict");

    // Rotations at disjoint places both commit.
    let mut first = root.write().expect("write");
    let mut second = other.write().expect("write");
    let now = onedb::model::now_ms();
    let at = nodes[0];
    let far = {
        // Three steps past a0's window.
        let mut x = at;
        for _ in 0..3 {
            x = successor(&first, x, now).expect("successor");
        }
        x
    };
    rotate(&mut first, at).expect("rotate");
    rotate(&mut second, far).expect("rotate");
    first.commit().expect("disjoint");
    second.commit().expect("disjoint");
    assert_one_ring(&db, &root, &nodes, 3, "after disjoint rotations");
}

// ---------------------------------------------------------------- lost update

/// A course whose property `n` counts increments, from 0.
fn create_counter(root: &Session) -> onedb::Thing {
    root.run(|t| {
        t.create_thing(NewThing {
            kind: "course".into(),
            name: "counter".into(),
            properties: json!({"n": 0}).as_object().cloned().expect("object"),
        })
    })
    .expect("create")
}

#[test]
fn concurrent_increments_of_one_property_lose_no_update() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let counter = create_counter(&root);
    let (threads, per_thread) = (8, 60);
    let barrier = Arc::new(Barrier::new(threads));
    let attempts = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (db, barrier, attempts) = (db.clone(), barrier.clone(), attempts.clone());
            std::thread::spawn(move || {
                let session = session_in(&db, "acme");
                let (mut ok, mut gave_up) = (0usize, 0usize);
                barrier.wait();
                for _ in 0..per_thread {
                    let result = session.run(|t| {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let n = t
                            .thing(counter.id)?
                            .and_then(|c| c.properties["n"].as_i64())
                            .ok_or_else(|| Error::not_found("the counter is gone"))?;
                        // Let another session read the same value meanwhile.
                        std::thread::yield_now();
                        t.update_thing(
                            counter.id,
                            ThingUpdate {
                                set: vec![(vec!["n".into()], json!(n + 1))],
                                ..Default::default()
                            },
                        )
                    });
                    match result {
                        Ok(_) => ok += 1,
                        Err(e) if e.code == ErrorCode::Conflict => gave_up += 1,
                        Err(e) => panic!("increment failed: {e}"),
                    }
                }
                (ok, gave_up)
            })
        })
        .collect();
    let (mut ok, mut gave_up) = (0, 0);
    for h in handles {
        let (o, g) = h.join().expect("thread");
        ok += o;
        gave_up += g;
    }
    let stored = root
        .read()
        .expect("read")
        .thing(counter.id)
        .expect("read")
        .expect("counter");
    println!(
        "lost update: {ok} increments acknowledged, {gave_up} gave up after retries, {} attempts, {:?}",
        attempts.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(ok > 0);
    assert_eq!(
        stored.properties["n"],
        json!(ok),
        "acknowledged increments vs the stored value"
    );
    let updates = event_targets(&root, "entity_updated")
        .into_iter()
        .filter(|id| *id == counter.id)
        .count();
    assert_eq!(updates, ok, "one entity_updated event per increment");
    assert_valid(&db);
}

/// A block sent whole (`BEGIN` to `COMMIT` in one request: `run_text`)
/// whose commit conflicts runs again like a single statement, from the
/// variables it started with; so racing read-modify-write blocks all land
/// and none is lost.
#[test]
fn whole_blocks_that_conflict_at_commit_run_again_from_their_start() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let counter = create_counter(&root);
    let (threads, per_thread) = (4, 25);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let session = session_in(&db, "acme");
                let mut runner = Runner::new(&session);
                runner
                    .set_param("c", json!(counter.id.to_string()))
                    .expect("bind");
                barrier.wait();
                for _ in 0..per_thread {
                    run_text(&mut runner, "LET $k = 0;").expect("let");
                    run_text(
                        &mut runner,
                        "BEGIN;
                         LET $k = $k + 1;
                         LET $n = MATCH (c) WHERE c.id = $c RETURN c.properties.n;
                         UPDATE $c SET properties.n = $n + 1;
                         COMMIT;",
                    )
                    .unwrap_or_else(|(e, i)| panic!("statement {i:?}: {e}"));
                    let k = run_text(&mut runner, "LET $seen = $k;").expect("let");
                    assert_eq!(k.value, Some(json!(1)), "a block ran again from its start");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let stored = root
        .read()
        .expect("read")
        .thing(counter.id)
        .expect("read")
        .expect("counter");
    assert_eq!(stored.properties["n"], json!(threads * per_thread));
    assert_valid(&db);
}

// ---------------------------------------------------------------- delete vs connect

fn link(from: Id, to: Id) -> NewConnection {
    NewConnection {
        from: Some(from),
        to: Some(to),
        kind: "references".into(),
        ..Default::default()
    }
}

/// Visible edges that touch a deleted thing (there must be none: "edges to
/// deleted nodes never appear").
fn edges_to_the_dead(session: &Session, things: &[Id]) -> Vec<String> {
    let read = session.read().expect("read");
    let now = onedb::model::now_ms();
    let live: BTreeSet<Id> = read
        .all_things()
        .expect("things")
        .map(|t| t.expect("thing").id)
        .collect();
    let mut bad = Vec::new();
    for &id in things {
        for dir in [Direction::Out, Direction::In] {
            for e in read.edges(id, dir, None, now).expect("edges") {
                let e = e.expect("edge");
                if !live.contains(&e.from) || !live.contains(&e.to) {
                    bad.push(format!("{} {} -> {}", e.con, e.from, e.to));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

/// A delete of b and a connect a→b in two overlapping transactions, in both
/// commit orders. Serializable outcomes: b deleted with no visible edge to
/// it, or the edge made and b still live — never a live edge to a deleted
/// thing.
#[test]
fn a_delete_and_a_concurrent_connect_to_it_never_leave_an_edge_to_a_deleted_thing() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let other = session_in(&db, "acme");
    for delete_commits_first in [false, true] {
        let a = create(&root, "lesson", "a");
        let b = create(&root, "lesson", "b");
        // Both transactions take their snapshots before either commits.
        let mut del = root.write().expect("write");
        let mut con = other.write().expect("write");
        del.delete_thing(b.id).expect("delete staged");
        let edge = con.connect(link(a.id, b.id)).expect("connect staged").id;
        let (del_result, con_result) = if delete_commits_first {
            let d = del.commit();
            (d, con.commit())
        } else {
            let c = con.commit();
            (del.commit(), c)
        };
        let order = if delete_commits_first {
            "delete committed first"
        } else {
            "connect committed first"
        };
        println!(
            "{order}: delete -> {:?}, connect -> {:?}",
            del_result.as_ref().map(|_| ()).map_err(|e| e.code),
            con_result.as_ref().map(|_| ()).map_err(|e| e.code)
        );
        let dead = edges_to_the_dead(&root, &[a.id, b.id]);
        assert!(
            dead.is_empty(),
            "{order}: delete {:?} and connect {:?} both committed; visible edges to the deleted \
             thing: {dead:?}",
            del_result.map(|_| ()),
            con_result.map(|_| edge)
        );
        for e in [del_result.err(), con_result.err()].into_iter().flatten() {
            assert_eq!(e.code, ErrorCode::Conflict, "{order}: {e}");
        }
        assert_valid(&db);
    }
}

/// The same race with many sessions: some connect random pairs, some delete
/// random things, concurrently.
#[test]
fn concurrent_deletes_and_connects_keep_edges_and_usage_consistent() {
    let seed = seed("ONEDB_DELETE_SEED");
    println!("delete vs connect: seed {seed} (replay with ONEDB_DELETE_SEED={seed})");
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let things: Vec<Id> = root
        .run(|t| {
            (0..300)
                .map(|i| {
                    t.create_thing(new_thing("lesson", &format!("l{i}")))
                        .map(|x| x.id)
                })
                .collect::<onedb::Result<Vec<Id>>>()
        })
        .expect("create");
    let things = Arc::new(things);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (db, barrier, things) = (db.clone(), barrier.clone(), things.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ ((thread as u64 + 1) << 40));
                let session = session_in(&db, "acme");
                let deleter = thread % 4 == 0;
                // Deleters delete about one thing per connector's ten connects.
                let rounds = if deleter { 40 } else { 200 };
                let mut counts = [0usize; 3]; // ok, not found, conflict given up
                barrier.wait();
                for _ in 0..rounds {
                    let result = if deleter {
                        let x = *things.choose(&mut rng).expect("things");
                        session.run(|t| {
                            t.delete_thing(x)?;
                            // Widen the window between the delete's snapshot
                            // and its commit.
                            std::thread::yield_now();
                            Ok(())
                        })
                    } else {
                        let x = *things.choose(&mut rng).expect("things");
                        let y = *things.choose(&mut rng).expect("things");
                        if x == y {
                            continue;
                        }
                        session.run(|t| t.connect(link(x, y)).map(|_| ()))
                    };
                    match result {
                        Ok(()) => counts[0] += 1,
                        Err(e) if e.code == ErrorCode::NotFound => counts[1] += 1,
                        // Already connected, or retries exhausted.
                        Err(e) if e.code == ErrorCode::Conflict => counts[2] += 1,
                        Err(e) => panic!("thread {thread}: {e}"),
                    }
                }
                counts
            })
        })
        .collect();
    for h in handles {
        let counts = h.join().expect("thread");
        println!(
            "  ok {}, not found {}, conflict {}",
            counts[0], counts[1], counts[2]
        );
    }
    let dead = edges_to_the_dead(&root, &things);
    let report = db.validate().expect("validate");
    assert!(
        dead.is_empty(),
        "visible edges touching deleted things (seed {seed}): {} of them, e.g. {:?}; validate: {:?}",
        dead.len(),
        &dead[..dead.len().min(3)],
        &report.problems[..report.problems.len().min(3)]
    );
    assert!(report.is_ok(), "seed {seed}: {:#?}", report.problems);
}

/// Two sessions connect the same pair with the same type at the same time.
/// One at a time, the second is refused ("already connected in that
/// period"); overlapping, they must not both commit either.
#[test]
fn two_concurrent_identical_connects_make_one_edge() {
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let other = session_in(&db, "acme");
    let a = create(&root, "lesson", "a");
    let b = create(&root, "lesson", "b");
    // One at a time.
    root.run(|t| t.connect(link(a.id, b.id)).map(|_| ()))
        .expect("first");
    let again = root.run(|t| t.connect(link(a.id, b.id)).map(|_| ()));
    assert_eq!(again.unwrap_err().code, ErrorCode::Conflict);
    root.run(|t| t.disconnect(a.id, "references", b.id).map(|_| ()))
        .expect("disconnect");

    // Overlapping.
    let mut first = root.write().expect("write");
    let mut second = other.write().expect("write");
    first.connect(link(a.id, b.id)).expect("staged");
    second.connect(link(a.id, b.id)).expect("staged");
    let r1 = first.commit();
    let r2 = second.commit();
    let read = root.read().expect("read");
    let current: Vec<Id> = read
        .edges(
            a.id,
            Direction::Out,
            Some("references"),
            onedb::model::now_ms(),
        )
        .expect("edges")
        .map(|e| e.expect("edge").con)
        .collect();
    drop(read);
    println!(
        "identical connects: first {:?}, second {:?}, current edges {}",
        r1.as_ref().map(|_| ()).map_err(|e| e.code),
        r2.as_ref().map(|_| ()).map_err(|e| e.code),
        current.len()
    );
    assert_eq!(
        current.len(),
        1,
        "two current references edges a -> b after two overlapping connects ({:?}, {:?})",
        r1.map(|_| ()),
        r2.map(|_| ())
    );
    assert_eq!(usage_of(&root, "connections"), 1);
    assert_valid(&db);
}

/// The same check-then-act race under load: 8 sessions connecting random
/// ordered pairs of 5 things (and ending them again).
#[test]
fn racing_connects_on_few_pairs_never_duplicate_an_edge() {
    let seed = seed("ONEDB_PAIRS_SEED");
    println!("racing connects: seed {seed} (replay with ONEDB_PAIRS_SEED={seed})");
    let (_dir, db) = open();
    let root = org(&db, "acme");
    let nodes: Vec<Id> = (0..5)
        .map(|i| create(&root, "lesson", &format!("n{i}")).id)
        .collect();
    let nodes = Arc::new(nodes);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (db, barrier, nodes) = (db.clone(), barrier.clone(), nodes.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(seed ^ ((thread as u64 + 1) << 48));
                let session = session_in(&db, "acme");
                barrier.wait();
                for _ in 0..100 {
                    let pair: Vec<Id> = nodes.choose_multiple(&mut rng, 2).copied().collect();
                    let (x, y) = (pair[0], pair[1]);
                    let result = if rng.gen_bool(0.7) {
                        session.run(|t| {
                            t.connect(link(x, y))?;
                            // Let another session check the same pair.
                            std::thread::yield_now();
                            Ok(())
                        })
                    } else {
                        session.run(|t| t.disconnect(x, "references", y).map(|_| ()))
                    };
                    match result {
                        Ok(()) => {}
                        // Already connected / not connected / retries used up.
                        Err(e) if matches!(e.code, ErrorCode::Conflict | ErrorCode::NotFound) => {}
                        Err(e) => panic!("thread {thread}: {e}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let read = root.read().expect("read");
    let now = onedb::model::now_ms();
    let mut duplicated = Vec::new();
    let mut current = 0;
    for &x in nodes.iter() {
        let mut per_target: BTreeMap<Id, usize> = BTreeMap::new();
        for e in read
            .edges(x, Direction::Out, Some("references"), now)
            .expect("edges")
        {
            *per_target.entry(e.expect("edge").to).or_default() += 1;
            current += 1;
        }
        duplicated.extend(
            per_target
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(y, n)| format!("{x} -> {y}: {n} current edges")),
        );
    }
    drop(read);
    assert!(
        duplicated.is_empty(),
        "seed {seed}: pairs connected twice at once: {duplicated:?}"
    );
    assert_eq!(usage_of(&root, "connections"), current as i64);
    assert_valid(&db);
}
