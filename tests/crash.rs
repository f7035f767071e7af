//! C1: crash safety. A child process (this test binary, re-executed to run
//! only `crash_child`) commits mutations in a loop with `Durability::Sync` and
//! is killed with SIGKILL at random moments, again and again on the same data
//! directory. After every kill the parent reopens the directory and checks it
//! against a model built from what the child acknowledged:
//!
//! - it opens, and `validate()` finds nothing wrong (indexes, edges, usage
//!   recount);
//! - every acknowledged mutation is there (creates, deletes, status changes,
//!   counter increments); the one mutation in flight at the kill is either
//!   fully present or fully absent (a batch of things, a thing with its
//!   connection), nothing else differs from the model;
//! - one `entity_created` event per thing ever created, one `entity_deleted`
//!   per thing deleted, one `entity_updated` per counter increment; the
//!   `things` usage equals the number of live things.
//!
//! The child announces each mutation before it commits (`try …`) and
//! acknowledges it after the commit returned Ok (`ok …`), so the parent knows
//! exactly which single mutation may have been cut short.
//!
//! - the commit counter (`last_commit`, the watermark derived indexes rely
//!   on) equals the number of committed transactions.
//!
//! Replay: `ONEDB_CRASH_SEED=<seed>` (printed at the start) fixes the kill
//! delays and the child's choices, not the exact instant the kill lands; the
//! number of kills can be raised with `ONEDB_CRASH_ROUNDS`.
//!
//! Not covered here: a kill cannot tell synced from unsynced WAL writes
//! (the OS keeps them either way), so this does not prove `Sync` durability
//! against power loss. The search and vector indexes have their own kill
//! and crash-point test in `tests/search_crash.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use onedb::{
    Database, Dim, Direction, Durability, ErrorCode, EventFilter, Id, NewConnection, NewThing,
    Options, Plan, Session, Status, Thing, ThingUpdate,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIR_VAR: &str = "ONEDB_CRASH_DIR";
const CHILD_SEED_VAR: &str = "ONEDB_CRASH_CHILD_SEED";
const ROUND_VAR: &str = "ONEDB_CRASH_ROUND";
const ORG: &str = "acme";
/// Starts every protocol line (libtest may print on the same line first).
const MARK: &str = "@crash@ ";
/// The thing type of the workload (no plan limit on it).
const LESSON: &str = "lesson";
/// The one thing whose `count` property the child increments.
const TALLY_KIND: &str = "course";
const TALLY_NAME: &str = "tally";

// ---------------------------------------------------------------- the child

/// Writes one protocol line in a single write and flushes it.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{MARK}{line}\n").as_bytes())
        .expect("stdout");
    out.flush().expect("flush");
}

fn status_name(s: Status) -> &'static str {
    s.as_str()
}

fn next_status(s: Status) -> Option<Status> {
    match s {
        Status::Draft => Some(Status::Active),
        Status::Active => Some(Status::Published),
        Status::Published => Some(Status::Active),
        Status::Inactive => Some(Status::Active),
        Status::Archived => None,
    }
}

/// The writer. Does nothing unless the parent started it.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let seed = common::child::env_u64(CHILD_SEED_VAR);
    let round = common::child::env_u64(ROUND_VAR);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = Database::open_with(
        &dir,
        Options {
            durability: Durability::Sync,
            ..Default::default()
        },
    )
    .expect("the child opens the database");
    let mut session = db.local_session().expect("root session");
    match session.use_org(ORG) {
        Ok(()) => {}
        Err(e) if e.code == ErrorCode::NotFound => {
            say("try org".into());
            session
                .run(|t| t.create_org(ORG, "Acme Inc", Plan::Enterprise).map(|_| ()))
                .expect("create org");
            say("ok org".into());
            session.use_org(ORG).expect("use org");
        }
        Err(e) => panic!("use_org: {e}"),
    }

    // The child's view of the org, from the database.
    let mut live: Vec<(Id, Status)> = Vec::new();
    let mut tally = None;
    {
        let read = session.read().expect("read");
        for thing in read.all_things().expect("things") {
            let thing = thing.expect("thing");
            if thing.kind == LESSON {
                live.push((thing.id, thing.status));
            } else if thing.kind == TALLY_KIND && thing.name == TALLY_NAME {
                tally = Some(thing.id);
            }
        }
    }
    let tally = match tally {
        Some(id) => id,
        None => {
            say("try tallycreate".into());
            let thing = session
                .run(|t| {
                    t.create_thing(NewThing {
                        kind: TALLY_KIND.into(),
                        name: TALLY_NAME.into(),
                        properties: json!({"count": 0}).as_object().cloned().unwrap_or_default(),
                    })
                })
                .expect("create tally");
            say(format!("ok tallycreate {}", thing.id));
            thing.id
        }
    };
    say("ready".into());

    let started = Instant::now();
    let mut op = 0u64;
    // Safety net: the parent kills us long before this.
    while started.elapsed() < Duration::from_secs(20) {
        op += 1;
        let roll: u32 = rng.gen_range(0..100);
        if roll < 60 || live.is_empty() {
            // Create one or a batch of three lessons, each connected part_of
            // a random live lesson, in one commit.
            let k = if roll < 15 { 3 } else { 1 };
            let parent = live.choose(&mut rng).map(|(id, _)| *id);
            let tag = format!("r{round}o{op}");
            say(format!("try create {tag} {k}"));
            let created = session
                .run(|t| {
                    let mut ids = Vec::new();
                    for i in 0..k {
                        let mut properties = serde_json::Map::new();
                        properties.insert("tag".into(), json!(tag));
                        properties.insert("batch".into(), json!(k));
                        properties.insert("parent".into(), json!(parent));
                        let thing = t.create_thing(NewThing {
                            kind: LESSON.into(),
                            name: format!("lesson {tag}.{i}"),
                            properties,
                        })?;
                        if let Some(parent) = parent {
                            t.connect(NewConnection {
                                from: Some(thing.id),
                                to: Some(parent),
                                kind: "part_of".into(),
                                ..Default::default()
                            })?;
                        }
                        ids.push(thing.id);
                    }
                    Ok(ids)
                })
                .expect("create lessons");
            let list: Vec<String> = created.iter().map(|id| id.to_string()).collect();
            say(format!("ok create {tag} {}", list.join(" ")));
            live.extend(created.into_iter().map(|id| (id, Status::Draft)));
        } else if roll < 75 {
            let next = session
                .read()
                .expect("read")
                .thing(tally)
                .expect("tally")
                .expect("tally exists")
                .properties["count"]
                .as_i64()
                .expect("count")
                + 1;
            say(format!("try tally {next}"));
            let stored = session
                .run(|t| {
                    let current = t
                        .thing(tally)?
                        .and_then(|th| th.properties["count"].as_i64())
                        .unwrap_or(-1);
                    t.update_thing(
                        tally,
                        ThingUpdate {
                            set: vec![(vec!["count".into()], json!(current + 1))],
                            ..Default::default()
                        },
                    )
                })
                .expect("increment");
            assert_eq!(stored.properties["count"], json!(next), "single writer");
            say(format!("ok tally {next}"));
        } else if roll < 90 {
            let i = rng.gen_range(0..live.len());
            let (id, from) = live[i];
            let Some(to) = next_status(from) else {
                continue;
            };
            say(format!("try status {id} {}", status_name(to)));
            session.run(|t| t.set_status(id, to)).expect("set status");
            say(format!("ok status {id} {}", status_name(to)));
            live[i].1 = to;
        } else {
            let i = rng.gen_range(0..live.len());
            let (id, _) = live.swap_remove(i);
            say(format!("try del {id}"));
            session.run(|t| t.delete_thing(id)).expect("delete");
            say(format!("ok del {id}"));
        }
    }
}

// ---------------------------------------------------------------- the parent

/// What the acknowledged history says the database holds.
#[derive(Debug, Default)]
struct Model {
    org: bool,
    tally: Option<Id>,
    count: i64,
    /// Live lessons: status, and the lesson each is `part_of` (if any).
    live: BTreeMap<Id, (Status, Option<Id>)>,
    deleted: BTreeSet<Id>,
    /// Every thing ever created (lessons and the tally).
    created: BTreeSet<Id>,
}

/// A mutation that was announced but not acknowledged when the child died.
#[derive(Debug, Clone)]
enum InFlight {
    Org,
    TallyCreate,
    Create { tag: String, k: usize },
    Tally(i64),
    Status(Id, Status),
    Delete(Id),
}

impl InFlight {
    fn describe(&self) -> String {
        match self {
            InFlight::Org => "create org".into(),
            InFlight::TallyCreate => "create tally".into(),
            InFlight::Create { tag, k } => format!("create {k} lesson(s) {tag}"),
            InFlight::Tally(v) => format!("tally -> {v}"),
            InFlight::Status(id, s) => format!("status {id} -> {}", s.as_str()),
            InFlight::Delete(id) => format!("delete {id}"),
        }
    }
}

fn parse_id(text: &str) -> Id {
    Id::parse_as(text, Dim::Thing).unwrap_or_else(|e| panic!("bad id {text:?}: {e}"))
}

fn parse_status(text: &str) -> Status {
    Status::parse(text).unwrap_or_else(|e| panic!("bad status {text:?}: {e}"))
}

/// Applies the child's acknowledged lines to the model; returns the mutation
/// in flight at the kill, if any.
fn apply_lines(model: &mut Model, lines: &[String]) -> Option<InFlight> {
    let mut pending: Option<InFlight> = None;
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["try", rest @ ..] => {
                assert!(
                    pending.is_none(),
                    "the child announced {line:?} before acknowledging {pending:?}"
                );
                pending = Some(match rest {
                    ["org"] => InFlight::Org,
                    ["tallycreate"] => InFlight::TallyCreate,
                    ["create", tag, k] => InFlight::Create {
                        tag: tag.to_string(),
                        k: k.parse().expect("k"),
                    },
                    ["tally", v] => InFlight::Tally(v.parse().expect("v")),
                    ["status", id, s] => InFlight::Status(parse_id(id), parse_status(s)),
                    ["del", id] => InFlight::Delete(parse_id(id)),
                    _ => panic!("unknown announcement {line:?}"),
                });
            }
            ["ok", rest @ ..] => {
                let Some(p) = pending.take() else {
                    panic!("acknowledgment {line:?} without announcement");
                };
                match (p, rest) {
                    (InFlight::Org, ["org"]) => model.org = true,
                    (InFlight::TallyCreate, ["tallycreate", id]) => {
                        let id = parse_id(id);
                        model.tally = Some(id);
                        model.created.insert(id);
                    }
                    (InFlight::Create { tag, k }, ["create", t, ids @ ..]) => {
                        assert_eq!(tag, *t);
                        assert_eq!(ids.len(), k, "{line}");
                        // The parent lesson is not in the line: it is checked
                        // against the stored properties below.
                        for id in ids {
                            let id = parse_id(id);
                            model.live.insert(id, (Status::Draft, None));
                            model.created.insert(id);
                        }
                    }
                    (InFlight::Tally(v), ["tally", w]) => {
                        assert_eq!(v.to_string(), *w);
                        model.count = v;
                    }
                    (InFlight::Status(id, s), ["status", _, _]) => {
                        model.live.get_mut(&id).expect("status of a live lesson").0 = s;
                    }
                    (InFlight::Delete(id), ["del", _]) => {
                        assert!(model.live.remove(&id).is_some(), "deleted twice: {id}");
                        model.deleted.insert(id);
                    }
                    (p, _) => panic!("acknowledgment {line:?} does not match {p:?}"),
                }
            }
            ["ready"] => {}
            _ => panic!("unknown protocol line {line:?}"),
        }
    }
    pending
}

/// What the reopened database holds.
struct Stored {
    org: bool,
    tally: Vec<Thing>,
    lessons: BTreeMap<Id, Thing>,
    things: usize,
}

fn read_stored(session: &Option<Session>) -> Stored {
    let Some(session) = session else {
        return Stored {
            org: false,
            tally: Vec::new(),
            lessons: BTreeMap::new(),
            things: 0,
        };
    };
    let read = session.read().expect("read");
    let mut tally = Vec::new();
    let mut lessons = BTreeMap::new();
    let mut things = 0;
    for thing in read.all_things().expect("all things") {
        let thing = thing.expect("thing");
        things += 1;
        match thing.kind.as_str() {
            LESSON => {
                lessons.insert(thing.id, thing);
            }
            TALLY_KIND if thing.name == TALLY_NAME => tally.push(thing),
            other => panic!("a thing nobody created: {other} {}", thing.id),
        }
    }
    Stored {
        org: true,
        tally,
        lessons,
        things,
    }
}

fn parent_of(thing: &Thing) -> Option<Id> {
    match &thing.properties["parent"] {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(parse_id(s)),
        other => panic!("bad parent property {other}"),
    }
}

/// Resolves the in-flight mutation against what is stored (it either fully
/// happened or fully did not), then requires the store to equal the model.
/// Returns whether the in-flight mutation turned out committed.
fn check_round(
    db: &Database,
    model: &mut Model,
    in_flight: Option<InFlight>,
    round: usize,
) -> Option<bool> {
    let report = db.validate().expect("validate runs");
    assert!(
        report.is_ok(),
        "round {round}: validate found problems: {:#?}",
        report.problems
    );
    let mut session = db.local_session().expect("root session");
    let session = match session.use_org(ORG) {
        Ok(()) => Some(session),
        Err(e) if e.code == ErrorCode::NotFound => None,
        Err(e) => panic!("use_org: {e}"),
    };
    let stored = read_stored(&session);

    let committed = match in_flight.clone() {
        None => None,
        Some(InFlight::Org) => {
            model.org = stored.org;
            Some(stored.org)
        }
        Some(InFlight::TallyCreate) => {
            if let [t] = stored.tally.as_slice() {
                model.tally = Some(t.id);
                model.created.insert(t.id);
            }
            Some(!stored.tally.is_empty())
        }
        Some(InFlight::Create { tag, k }) => {
            let batch: Vec<&Thing> = stored
                .lessons
                .values()
                .filter(|t| t.properties["tag"] == json!(tag))
                .collect();
            assert!(
                batch.is_empty() || batch.len() == k,
                "round {round}: a batch of {k} lessons committed partly: {} stored",
                batch.len()
            );
            let committed = !batch.is_empty();
            for t in batch {
                assert_eq!(t.status, Status::Draft);
                model.live.insert(t.id, (Status::Draft, None));
                model.created.insert(t.id);
            }
            Some(committed)
        }
        Some(InFlight::Tally(v)) => {
            let stored_count = stored
                .tally
                .first()
                .and_then(|t| t.properties["count"].as_i64());
            assert!(
                stored_count == Some(v) || stored_count == Some(v - 1),
                "round {round}: tally in flight to {v}, stored {stored_count:?}"
            );
            model.count = stored_count.unwrap_or(model.count);
            Some(stored_count == Some(v))
        }
        Some(InFlight::Status(id, to)) => {
            let s = stored.lessons.get(&id).map(|t| t.status);
            let before = model.live.get(&id).map(|l| l.0);
            assert!(
                s == Some(to) || s == before,
                "round {round}: {id} in flight {before:?} -> {to:?}, stored {s:?}"
            );
            if let (Some(s), Some(entry)) = (s, model.live.get_mut(&id)) {
                entry.0 = s;
            }
            Some(s == Some(to))
        }
        Some(InFlight::Delete(id)) => {
            let gone = !stored.lessons.contains_key(&id);
            if gone && model.live.remove(&id).is_some() {
                model.deleted.insert(id);
            }
            Some(gone)
        }
    };

    // The store equals the model.
    assert_eq!(stored.org, model.org, "round {round}: org existence");
    let stored_tally: Vec<Id> = stored.tally.iter().map(|t| t.id).collect();
    assert_eq!(
        stored_tally,
        model.tally.into_iter().collect::<Vec<_>>(),
        "round {round}: the tally thing"
    );
    if let Some(t) = stored.tally.first() {
        assert_eq!(
            t.properties["count"].as_i64(),
            Some(model.count),
            "round {round}: acknowledged increments of the tally (in flight: {in_flight:?})"
        );
    }
    let missing: Vec<&Id> = model
        .live
        .keys()
        .filter(|id| !stored.lessons.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: acknowledged lessons lost: {missing:?} (in flight: {in_flight:?})"
    );
    let unexpected: Vec<&Id> = stored
        .lessons
        .keys()
        .filter(|id| !model.live.contains_key(id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "round {round}: lessons nobody acknowledged, or acknowledged as deleted: {unexpected:?} \
         (in flight: {in_flight:?})"
    );
    for (id, thing) in &stored.lessons {
        let entry = model.live.get_mut(id).expect("checked above");
        assert_eq!(
            thing.status, entry.0,
            "round {round}: acknowledged status of {id}"
        );
        entry.1 = parent_of(thing);
    }

    let Some(session) = session else {
        assert!(model.created.is_empty());
        return committed;
    };
    let read = session.read().expect("read");
    let now = onedb::model::now_ms();

    // Each lesson was created together with its part_of edge: the edge is
    // there exactly when the parent is still live (deleting hides edges).
    for (id, (_, parent)) in &model.live {
        let out: Vec<Id> = read
            .edges(*id, Direction::Out, Some("part_of"), now)
            .expect("edges")
            .map(|e| e.expect("edge").to)
            .collect();
        let expected: Vec<Id> = parent
            .filter(|p| model.live.contains_key(p))
            .into_iter()
            .collect();
        assert_eq!(out, expected, "round {round}: part_of edges of {id}");
    }

    // One event per committed mutation, and usage equal to a recount.
    let events_of_kind = |kind: &str| -> Vec<Id> {
        read.events(&EventFilter {
            kind: Some(kind.into()),
            limit: usize::MAX,
            ..Default::default()
        })
        .expect("events")
        .into_iter()
        .filter_map(|e| e.target)
        .filter(|t| t.dim() == Dim::Thing)
        .collect()
    };
    let created_events = events_of_kind("entity_created");
    let created_set: BTreeSet<Id> = created_events.iter().copied().collect();
    assert_eq!(
        created_events.len(),
        created_set.len(),
        "round {round}: a thing with two entity_created events"
    );
    assert_eq!(
        created_set, model.created,
        "round {round}: entity_created events vs things created"
    );
    let deleted_events = events_of_kind("entity_deleted");
    let deleted_set: BTreeSet<Id> = deleted_events.iter().copied().collect();
    assert_eq!(deleted_events.len(), deleted_set.len());
    assert_eq!(
        deleted_set, model.deleted,
        "round {round}: entity_deleted events vs things deleted"
    );
    if let Some(tally) = model.tally {
        let increments = read
            .events(&EventFilter {
                target: Some(tally),
                kind: Some("entity_updated".into()),
                limit: usize::MAX,
                ..Default::default()
            })
            .expect("events")
            .len();
        assert_eq!(
            increments as i64, model.count,
            "round {round}: one entity_updated event per increment"
        );
    }
    let live_things = model.live.len() + usize::from(model.tally.is_some());
    assert_eq!(stored.things, live_things);
    let usage: BTreeMap<String, i64> = read
        .usage()
        .expect("usage")
        .into_iter()
        .map(|r| (r.counter, r.used))
        .collect();
    assert_eq!(
        usage.get("things").copied().unwrap_or(0),
        live_things as i64,
        "round {round}: usage of things"
    );
    assert_eq!(
        created_events.len() - deleted_events.len(),
        live_things,
        "round {round}: things == entity_created - entity_deleted"
    );
    assert_eq!(
        usage.get(LESSON).copied().unwrap_or(0),
        model.live.len() as i64,
        "round {round}: usage of lessons"
    );
    committed
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {v:?}")),
        Err(_) => default,
    }
}

/// Runs one child until the kill; returns its protocol lines.
fn run_child(dir: &Path, seed: u64, round: usize, kill_after: Duration) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .env(ROUND_VAR, round.to_string())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let reader = common::child::marked_lines(&mut child, MARK);
    std::thread::sleep(kill_after);
    if let Some(status) = child.try_wait().expect("try_wait") {
        let lines = reader.join().expect("reader");
        panic!(
            "round {round}: the child exited by itself ({status}) before the kill; last lines: {:?}",
            &lines[lines.len().saturating_sub(5)..]
        );
    }
    child.kill().expect("kill"); // SIGKILL on Unix
    child.wait().expect("wait");
    reader.join().expect("reader")
}

#[test]
fn killed_writers_lose_no_acknowledged_write() {
    if std::env::var(DIR_VAR).is_ok() {
        return; // we are a child
    }
    let seed: u64 = env_or("ONEDB_CRASH_SEED", rand::random());
    let rounds: usize = env_or("ONEDB_CRASH_ROUNDS", 24);
    println!("crash test: seed {seed} (replay with ONEDB_CRASH_SEED={seed}), {rounds} kills");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut model = Model::default();
    let (mut acks, mut in_flight_seen, mut resolved_present) = (0usize, 0usize, 0usize);
    let mut commits = 0u64;
    let started = Instant::now();
    for round in 0..rounds {
        // Mostly mid-workload; every sixth kill lands while the child is
        // still starting (opening and recovering the database).
        let kill_after = if round % 6 == 5 {
            Duration::from_millis(rng.gen_range(1..30))
        } else {
            Duration::from_millis(rng.gen_range(30..=300))
        };
        let child_seed: u64 = rng.r#gen();
        let lines = run_child(dir.path(), child_seed, round, kill_after);
        let round_acks = lines.iter().filter(|l| l.starts_with("ok ")).count();
        acks += round_acks;
        let before = model.created.len() + model.deleted.len() + model.count as usize;
        let in_flight = apply_lines(&mut model, &lines);
        let acked_effects = model.created.len() + model.deleted.len() + model.count as usize;
        in_flight_seen += usize::from(in_flight.is_some());

        let db = Database::open_with(
            dir.path(),
            Options {
                durability: Durability::Sync,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("round {round}: the database does not open after a kill: {e}"));
        let committed = check_round(&db, &mut model, in_flight.clone(), round);
        resolved_present += usize::from(committed == Some(true));
        // The commit counter (the watermark derived indexes rely on) counts
        // exactly the committed transactions: every acknowledged one, the
        // one in flight if it landed, and root's creation in the first round.
        commits += round_acks as u64 + u64::from(committed == Some(true)) + u64::from(round == 0);
        assert_eq!(
            db.last_commit().expect("last commit"),
            commits,
            "round {round}: the commit counter"
        );
        println!(
            "round {round}: killed after {} ms, {round_acks} acks ({} created/deleted/incremented), \
             in flight: {} (committed: {committed:?}), live lessons {}",
            kill_after.as_millis(),
            acked_effects - before,
            in_flight
                .as_ref()
                .map_or("nothing".to_string(), InFlight::describe),
            model.live.len()
        );
        drop(db); // the next child needs the directory lock
    }
    println!(
        "crash test: {rounds} kills, {acks} acknowledged mutations, {in_flight_seen} cut short \
         ({resolved_present} of them found committed), {} lessons live, {} deleted, tally {}, {:?}",
        model.live.len(),
        model.deleted.len(),
        model.count,
        started.elapsed()
    );
    assert!(
        acks >= rounds,
        "the children acknowledged only {acks} mutations in {rounds} rounds: the test did not test much"
    );
}
