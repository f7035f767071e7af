//! C1 and C2 for the derived indexes. A child process (this test binary,
//! re-executed to run only `index_crash_child`) creates things with unique
//! names and knowledge chunks with unique embeddings, and deletes some, with
//! `Durability::Sync`; it is killed with SIGKILL at random moments (C1), or
//! aborts itself at a named crash point inside an index commit or a vector
//! file save (C2). After each stop the parent reopens the directory and
//! checks that the indexes agree with the store:
//!
//! - `check_indexes` finds the name index holding exactly the live things
//!   and people, and the vector index exactly the live chunks, per tenant;
//! - every acknowledged live name is found by a name search, no deleted one
//!   is; every acknowledged live chunk is its own nearest neighbour, no
//!   deleted one comes back.
//!
//! Replay: `ONEDB_CRASH_SEED=<seed>` (printed) fixes the kill delays and the
//! child's choices; `ONEDB_CRASH_ROUNDS` raises the number of kills.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use onedb::{
    Database, Durability, Id, KnowledgeKind, KnowledgeSearch, NameSearch, NewKnowledge, NewThing,
    Options, Plan, Session, VectorFilter,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIR_VAR: &str = "ONEDB_INDEX_CRASH_DIR";
const SEED_VAR: &str = "ONEDB_INDEX_CRASH_CHILD_SEED";
const ROUND_VAR: &str = "ONEDB_INDEX_CRASH_ROUND";
const MARK: &str = "@icrash@ ";
const DIM: usize = 8;

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{MARK}{line}\n").as_bytes())
        .expect("stdout");
    out.flush().expect("flush");
}

fn options() -> Options {
    Options {
        durability: Durability::Sync,
        ..Default::default()
    }
}

fn acme(db: &Database) -> Session {
    let mut root = db.local_session().expect("root");
    if root.use_org("acme").is_err() {
        root.run(|t| t.create_org("acme", "Acme", Plan::Enterprise).map(|_| ()))
            .expect("create org");
        root.use_org("acme").expect("use org");
    }
    root
}

fn embedding(rng: &mut StdRng) -> Vec<f32> {
    (0..DIM).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn floats(text: &str) -> Vec<f32> {
    text.split(',').map(|x| x.parse().expect("float")).collect()
}

/// The writer. Does nothing unless the parent started it.
#[test]
fn index_crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let seed = common::child::env_u64(SEED_VAR);
    let round = common::child::env_u64(ROUND_VAR);
    let mut rng = StdRng::seed_from_u64(seed);
    let db = Database::open_with(&dir, options()).expect("child open");
    let s = acme(&db);
    let source = s
        .run(|t| {
            t.create_thing(NewThing {
                kind: "lesson".into(),
                name: format!("source{round}"),
                ..Default::default()
            })
        })
        .expect("source")
        .id;
    let mut live: Vec<Id> = Vec::new();
    for n in 0u64.. {
        match rng.gen_range(0..10) {
            0..=4 => {
                let name = format!("item{round}x{n}");
                say(format!("try thing {name}"));
                let id = s
                    .run(|t| {
                        t.create_thing(NewThing {
                            kind: "lesson".into(),
                            name: name.clone(),
                            ..Default::default()
                        })
                    })
                    .expect("create")
                    .id;
                live.push(id);
                say(format!("ok thing {name} {id}"));
            }
            5..=7 => {
                let v = embedding(&mut rng);
                let text: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                let text = text.join(",");
                say(format!("try chunk {text}"));
                let id = s
                    .run(|t| {
                        t.create_knowledge(NewKnowledge {
                            kind: KnowledgeKind::Chunk,
                            text: format!("chunk {round} {n}"),
                            embedding: Some(v.clone()),
                            labels: vec![],
                            source: Some(source),
                            links: vec![],
                        })
                    })
                    .expect("chunk")
                    .id;
                live.push(id);
                say(format!("ok chunk {text} {id}"));
            }
            _ if !live.is_empty() => {
                let id = live.swap_remove(rng.gen_range(0..live.len()));
                say(format!("try delete {id}"));
                s.run(|t| match id.dim() {
                    onedb::Dim::Knowledge => t.delete_knowledge(id),
                    _ => t.delete_thing(id),
                })
                .expect("delete");
                say(format!("ok delete {id}"));
            }
            _ => {}
        }
        if n % 25 == 24 {
            // Now and then an explicit flush: index commits and vector file
            // saves happen often enough for kills and crash points to land in.
            db.flush_indexes().expect("flush");
        }
    }
}

/// What the child acknowledged.
#[derive(Default)]
struct Model {
    /// Live things: id → name.
    things: BTreeMap<Id, String>,
    /// Live chunks: id → embedding.
    chunks: BTreeMap<Id, Vec<f32>>,
    deleted_things: BTreeMap<Id, String>,
    deleted_chunks: BTreeMap<Id, Vec<f32>>,
}

/// Applies the acknowledged lines. A mutation announced but not
/// acknowledged may or may not have committed: a delete in flight takes its
/// record out of the model (the store decides; `check_indexes` still holds
/// the indexes to exactly what the store has).
fn apply(model: &mut Model, lines: &[String]) {
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ok", "thing", name, id] => {
                model
                    .things
                    .insert(id.parse().expect("id"), name.to_string());
            }
            ["ok", "chunk", v, id] => {
                model.chunks.insert(id.parse().expect("id"), floats(v));
            }
            ["ok", "delete", id] => {
                let id: Id = id.parse().expect("id");
                if let Some(name) = model.things.remove(&id) {
                    model.deleted_things.insert(id, name);
                }
                if let Some(v) = model.chunks.remove(&id) {
                    model.deleted_chunks.insert(id, v);
                }
            }
            _ => {}
        }
    }
    if let Some(last) = lines.last()
        && let Some(id) = last.strip_prefix("try delete ")
    {
        let id: Id = id.parse().expect("id");
        model.things.remove(&id);
        model.chunks.remove(&id);
    }
}

fn run_child(dir: &Path, seed: u64, round: usize, stop: Stop) -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let mut cmd = Command::new(exe);
    cmd.args([
        "index_crash_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(DIR_VAR, dir)
    .env(SEED_VAR, seed.to_string())
    .env(ROUND_VAR, round.to_string())
    .env("RUST_BACKTRACE", "0")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Stop::At(point) = stop {
        cmd.env("ONEDB_CRASHPOINT", point);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let reader = common::child::marked_lines(&mut child, MARK);
    match stop {
        Stop::After(delay) => {
            std::thread::sleep(delay);
            let _ = child.kill();
        }
        Stop::At(point) => {
            // The child aborts itself; a child that never reaches the point
            // is killed after a while (and the test says so).
            let started = Instant::now();
            loop {
                if child.try_wait().expect("try_wait").is_some() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    panic!("round {round}: the child never reached crash point {point}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "round {round}: the child exited cleanly");
    reader.join().expect("reader")
}

#[derive(Clone, Copy)]
enum Stop {
    After(Duration),
    At(&'static str),
}

fn check(db: &Database, model: &Model, round: usize) {
    let report = db.check_indexes().expect("check indexes");
    assert!(
        report.problems.is_empty(),
        "round {round}: the indexes disagree with the store: {:#?}",
        report.problems
    );
    let s = acme(db);
    let t = s.read().expect("read");
    let deadline = Instant::now() + Duration::from_secs(30);
    let find = |name: &str| -> Vec<String> {
        let q = NameSearch {
            text: name,
            kinds: None,
            statuses: None,
            limit: 3,
            deadline,
        };
        s.search_names(&t, &q, &mut |_| Ok(true))
            .expect("search")
            .into_iter()
            .map(|h| h.found.name().to_string())
            .collect()
    };
    for name in model.things.values() {
        assert_eq!(
            find(name),
            vec![name.clone()],
            "round {round}: {name} is not found"
        );
    }
    for name in model.deleted_things.values() {
        assert!(
            find(name).is_empty(),
            "round {round}: deleted {name} is found"
        );
    }
    let nearest = |v: &[f32]| -> Vec<Id> {
        let q = KnowledgeSearch {
            vector: v,
            k: 1,
            filter: VectorFilter::default(),
            deadline,
        };
        s.search_knowledge(&t, &q, &mut |_| Ok(true))
            .expect("nearest")
            .0
            .into_iter()
            .map(|h| h.knowledge.id)
            .collect()
    };
    for (id, v) in &model.chunks {
        assert_eq!(
            nearest(v),
            vec![*id],
            "round {round}: chunk {id} is not its own nearest"
        );
    }
    for (id, v) in &model.deleted_chunks {
        assert!(
            !nearest(v).contains(id),
            "round {round}: deleted chunk {id} comes back"
        );
    }
}

fn rounds(stops: &[Stop], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut model = Model::default();
    for (round, stop) in stops.iter().enumerate() {
        let lines = run_child(dir.path(), rng.r#gen(), round, *stop);
        apply(&mut model, &lines);
        let db = Database::open_with(dir.path(), options())
            .unwrap_or_else(|e| panic!("round {round}: does not open: {e}"));
        check(&db, &model, round);
        println!(
            "round {round}: {} acknowledged lines; {} live things, {} live chunks, {} deleted",
            lines.iter().filter(|l| l.starts_with("ok ")).count(),
            model.things.len(),
            model.chunks.len(),
            model.deleted_things.len() + model.deleted_chunks.len()
        );
    }
    assert!(
        model.things.len() + model.chunks.len() > stops.len(),
        "the children did too little for the test to mean much"
    );
}

fn seed() -> u64 {
    let seed = std::env::var("ONEDB_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().r#gen());
    println!("ONEDB_CRASH_SEED={seed}");
    seed
}

#[test]
fn indexes_agree_with_the_store_after_every_kill() {
    let seed = seed();
    let n = std::env::var("ONEDB_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED);
    let stops: Vec<Stop> = (0..n)
        .map(|_| Stop::After(Duration::from_millis(rng.gen_range(150..1_500))))
        .collect();
    rounds(&stops, seed);
}

#[test]
fn indexes_agree_with_the_store_after_a_crash_at_each_index_point() {
    let points = [
        "commit.after_write",
        "index.before_commit",
        "index.after_commit",
        "vectors.after_write",
        "vectors.after_rename",
        "commit.after_write:40",
        "index.before_commit:3",
        "vectors.after_write:2",
    ];
    let stops: Vec<Stop> = points.iter().map(|p| Stop::At(p)).collect();
    rounds(&stops, seed());
}
