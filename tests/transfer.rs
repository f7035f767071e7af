//! `onedb dump` and `onedb load` through the real binary (D1): a round
//! trip of a generated database is byte-identical and answers the same
//! queries; damaged dumps stop at their line and leave nothing; a load
//! killed with SIGKILL at random moments leaves the database as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/server.rs"]
mod harness;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::binary::{ok, onedb, text};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Things per org in the generated database (two orgs: ≥ 10,000 in all).
const THINGS: usize = 5_100;

/// An OQL script for one org: things of built-in and added types, every
/// status, deleted ones, connections (some ended, some to a global
/// thing), knowledge with embeddings and labels, a trigger, a schema, a
/// custom event, a token.
fn org_script(slug: &str, rng: &mut StdRng) -> String {
    let mut s = String::new();
    writeln!(s, "CREATE ORG {slug} NAME \"{slug} inc\" PLAN enterprise;").unwrap();
    writeln!(s, "SET LIMITS ON ORG {slug} {{course: -1}};").unwrap();
    writeln!(
        s,
        "LET $owner = CREATE PERSON \"owner@{slug}.io\" NAME \"Owner\" ROLE org_owner IN ORG {slug} PASSWORD \"pass-{slug}-1234\";"
    )
    .unwrap();
    writeln!(
        s,
        "LET $gone = CREATE PERSON \"gone@{slug}.io\" NAME \"Gone\" ROLE org_user IN ORG {slug};"
    )
    .unwrap();
    writeln!(s, "USE ORG {slug};").unwrap();
    writeln!(s, "REMOVE PERSON $gone;").unwrap();
    writeln!(
        s,
        "DEFINE SCHEMA course {{type: \"object\", properties: {{price: {{type: \"number\", minimum: 0}}}}}};"
    )
    .unwrap();
    writeln!(
        s,
        "CREATE TRIGGER mail ON CONNECT enrolled_in EMIT communication_event {{channel: \"email\"}};"
    )
    .unwrap();
    writeln!(s, "CREATE TOKEN \"ci-{slug}\";").unwrap();
    let kinds = ["course", "lesson", "gadget", "blog_post"];
    for block in 0..THINGS / 300 {
        writeln!(s, "BEGIN;").unwrap();
        for i in block * 300..(block + 1) * 300 {
            let kind = kinds[i % kinds.len()];
            writeln!(
                s,
                "LET $t{i} = CREATE THING {kind} \"{slug} {kind} {i} word{}\" {{price: {}, n: {i}}};",
                rng.gen_range(0..50),
                rng.gen_range(0..100)
            )
            .unwrap();
            match i % 7 {
                1 => writeln!(s, "UPDATE $t{i} SET STATUS active;").unwrap(),
                2 => writeln!(s, "UPDATE $t{i} SET STATUS active;\nPUBLISH $t{i};").unwrap(),
                3 => writeln!(s, "UPDATE $t{i} SET name = \"{slug} renamed {i}\";").unwrap(),
                _ => {}
            }
            if i > block * 300 {
                let j = rng.gen_range(block * 300..i);
                writeln!(s, "CONNECT $t{i} -[references {{w: {i}}}]-> $t{j};").unwrap();
            }
            if i % 10 == 0 {
                let e: Vec<String> = (0..8)
                    .map(|_| format!("{:.3}", rng.gen_range(-1.0..1.0f32)))
                    .collect();
                writeln!(
                    s,
                    "CREATE KNOWLEDGE CHUNK \"chunk {i} of {slug}\" EMBEDDING [{}] LABELS [\"l{}\"] FOR $t{i};",
                    e.join(", "),
                    i % 3
                )
                .unwrap();
            }
            if i % 50 == 0 {
                writeln!(s, "CONNECT $owner -[enrolled_in]-> $t{i};").unwrap();
                writeln!(s, "CONNECT $t{i} -[part_of]-> $global;").unwrap();
                writeln!(s, "EMIT gadget_event TARGET $t{i} {{n: {i}}};").unwrap();
            }
        }
        writeln!(s, "COMMIT;").unwrap();
        // Deletions after the block: edges to deleted things get hidden.
        writeln!(s, "DELETE $t{};", block * 300 + 17).unwrap();
        writeln!(s, "ARCHIVE $t{};", block * 300 + 23).unwrap();
    }
    // Ended connections: a custom type's, and an enrolment.
    writeln!(s, "CONNECT $t3 -[mentors]-> $t4;").unwrap();
    writeln!(s, "DISCONNECT $t3 -[mentors]-> $t4;").unwrap();
    writeln!(s, "DISCONNECT $owner -[enrolled_in]-> $t50;").unwrap();
    s
}

/// The generated database, its whole dump (with secrets) and the data
/// directory it was made in, built once per test binary.
struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    dump: Vec<u8>,
    /// One process at a time may hold the data directory.
    busy: std::sync::Mutex<()>,
}

impl Fixture {
    /// The binary on the fixture's data directory (tests run in parallel).
    fn onedb(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let _turn = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        ok(onedb(&self.data, args, stdin))
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut rng = StdRng::seed_from_u64(15);
        let mut script = String::from(
            "CREATE TYPE THING gadget;\nCREATE TYPE EVENT gadget_event;\nCREATE TYPE CONNECTION mentors;\n\
             LET $global = CREATE THING course \"A global course\" {price: 1};\n",
        );
        for slug in ["acme", "globex"] {
            script.push_str(&org_script(slug, &mut rng));
        }
        ok(onedb(&data, &["run", "-"], Some(script.as_bytes())));
        let dump = ok(onedb(&data, &["dump", "--with-secrets"], None)).stdout;
        Fixture {
            _dir: dir,
            data,
            dump,
            busy: Default::default(),
        }
    })
}

/// Everything but the header line.
fn body(dump: &[u8]) -> &[u8] {
    let at = dump.iter().position(|b| *b == b'\n').unwrap();
    &dump[at + 1..]
}

fn lines_of_kind<'d>(dump: &'d str, kind: &str) -> Vec<&'d str> {
    let tag = format!("{{\"kind\":\"{kind}\"");
    dump.lines().filter(|l| l.starts_with(&tag)).collect()
}

/// Seeded queries whose answers must survive a round trip (timings cut).
fn answers(run: impl FnOnce(&[&str], Option<&[u8]>) -> Output) -> String {
    let script = r#"
USE ORG acme;
MATCH (c:course) RETURN c.status, count(c) ORDER BY c.status;
MATCH (g:gadget) WHERE g.status = "published" RETURN g.id, g.name ORDER BY g.id LIMIT 50;
MATCH (a)-[:references]->(b) RETURN count(a);
MATCH (p:person)-[:enrolled_in]->(c) RETURN p.email, count(c);
SEARCH THINGS "word7" LIMIT 20;
SEARCH KNOWLEDGE NEAREST [0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8] K 10 RETURN text, score;
EVENTS WHERE type = "gadget_event" LIMIT 20;
SHOW TRIGGERS;
USE ORG globex;
MATCH (x)-[:part_of]->(g) RETURN g.name, count(x);
SEARCH THINGS "renamed" LIMIT 10;
"#;
    let out = run(&["run", "-", "--format", "json"], Some(script.as_bytes()));
    let mut cleaned = String::new();
    for line in text(&out.stdout).lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object_mut().unwrap().remove("stats");
        cleaned.push_str(&v.to_string());
        cleaned.push('\n');
    }
    cleaned
}

fn check_ok(data: &Path) {
    let out = ok(onedb(data, &["check"], None));
    assert!(text(&out.stdout).ends_with("ok\n"), "{}", text(&out.stdout));
}

#[test]
fn a_round_trip_gives_the_same_bytes_and_answers() {
    let f = fixture();
    let dump = text(&f.dump);
    assert!(lines_of_kind(&dump, "thing").len() >= 10_000);
    for kind in [
        "type",
        "org",
        "person",
        "thing",
        "connection",
        "knowledge",
        "link",
        "trigger",
        "schema",
        "token",
        "event",
    ] {
        assert!(!lines_of_kind(&dump, kind).is_empty(), "no {kind} line");
    }
    assert!(dump.contains("\"deletedAt\""), "no deleted thing");
    assert!(dump.contains("\"endedAt\""), "no ended connection");

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let load = ok(onedb(&copy, &["load", "-"], Some(&f.dump)));
    assert!(
        text(&load.stdout).starts_with("loaded "),
        "{}",
        text(&load.stdout)
    );
    let again = ok(onedb(&copy, &["dump", "--with-secrets"], None)).stdout;
    assert!(body(&again) == body(&f.dump), "the second dump differs");
    check_ok(&copy);
    assert_eq!(
        answers(|args, stdin| f.onedb(args, stdin)),
        answers(|args, stdin| ok(onedb(&copy, args, stdin)))
    );
    // The load's commit is past every loaded event's seq: new events follow.
    let header: serde_json::Value =
        serde_json::from_slice(&again[..again.iter().position(|b| *b == b'\n').unwrap()]).unwrap();
    let before: serde_json::Value =
        serde_json::from_slice(&f.dump[..f.dump.iter().position(|b| *b == b'\n').unwrap()])
            .unwrap();
    assert!(header["commit"].as_u64() > before["commit"].as_u64());
}

#[test]
fn without_secrets_no_hash_leaves() {
    let f = fixture();
    let out = f.onedb(&["dump"], None).stdout;
    let dump = text(&out);
    assert!(text(&f.dump).contains("\"passwordHash\""));
    assert!(
        !dump.contains("passwordHash"),
        "a password hash in the dump"
    );
    assert!(!dump.contains("\"hash\""), "a token hash in the dump");
    assert!(lines_of_kind(&dump, "token").is_empty());
    // No directory, no dump (and none made).
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let refused = onedb(&missing, &["dump"], None);
    assert!(!refused.status.success() && text(&refused.stderr).contains("NOT_FOUND"));
    assert!(!missing.exists());
    // Two dumps of the same data are the same bytes.
    let second = f.onedb(&["dump", "--out", "/dev/stdout"], None).stdout;
    assert!(second == out);
}

#[test]
fn one_org_moves_into_a_database_that_lacks_it() {
    let f = fixture();
    let dump = f.onedb(&["dump", "--org", "globex"], None).stdout;
    let header = text(&dump).lines().next().unwrap().to_string();
    assert!(header.contains("\"org\":\"globex\""), "{header}");
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other");
    // A database with its own org and root, and the global thing missing:
    // globex's edges to it must stop the load.
    ok(onedb(
        &other,
        &["run", "-"],
        Some(b"CREATE ORG initech NAME \"Initech\";"),
    ));
    let refused = onedb(&other, &["load", "-"], Some(&dump));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("is not loaded before the connection"),
        "{}",
        text(&refused.stderr)
    );
    // Without those edges it loads, keeps the ids, and passes the check.
    let trimmed = orgs_only(&text(&dump));
    ok(onedb(&other, &["load", "-"], Some(trimmed.as_bytes())));
    check_ok(&other);
    let out = ok(onedb(&other, &["dump", "--org", "globex"], None)).stdout;
    assert!(
        body(&out) == body(trimmed.as_bytes()),
        "the org's dump differs after loading it"
    );
    // A second load of the same org is refused at its org line.
    let twice = onedb(&other, &["load", "-"], Some(trimmed.as_bytes()));
    let org_line = line_of(&trimmed, "{\"kind\":\"org\"");
    let expected = format!("line {org_line}: organization globex already exists");
    assert!(
        text(&twice.stderr).contains(&expected),
        "{}",
        text(&twice.stderr)
    );
}

/// A small database with two orgs, and its dump.
fn small() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("src");
    let script = r#"
CREATE ORG acme NAME "Acme";
CREATE ORG globex NAME "Globex";
USE ORG acme;
LET $a = CREATE THING course "Rust" {price: 3};
LET $b = CREATE THING lesson "Ownership" {};
CONNECT $b -[references]-> $a;
CREATE KNOWLEDGE CHUNK "moves" EMBEDDING [1.0, 0.0, 0.5] FOR $b;
USE ORG globex;
LET $g = CREATE THING course "Go" {};
"#;
    ok(onedb(&data, &["run", "-"], Some(script.as_bytes())));
    let dump = orgs_only(&text(&ok(onedb(&data, &["dump"], None)).stdout));
    (dir, data, dump)
}

/// A whole dump without the platform's records (they load only into a
/// new directory) nor edges to global things: the orgs alone.
fn orgs_only(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.contains("\"org\":null") || l.starts_with("{\"onedb_dump\""))
        .filter(|l| !l.contains("\"type\":\"part_of\"") || !l.contains("\"kind\":\"connection\""))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every key and value of a data directory (opened read-only by the
/// library after the binary exited).
fn full_scan(data: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = onedb::Database::open(data).unwrap();
    let entries = common::all_entries(&db);
    drop(db);
    entries
}

/// The number of the first line of `dump` holding `needle`.
fn line_of(dump: &str, needle: &str) -> usize {
    dump.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_damaged_dump_stops_at_its_line_and_leaves_nothing() {
    let (_src, data, dump) = small();
    let lines: Vec<&str> = dump.lines().collect();
    let thing = line_of(&dump, "\"name\":\"Ownership\"");
    let chunk = line_of(&dump, "\"kind\":\"knowledge\"");
    let globex_course = line_of(&dump, "\"name\":\"Go\"");
    let connection = line_of(&dump, "\"kind\":\"connection\"");
    let go_id = {
        let v: serde_json::Value = serde_json::from_str(lines[globex_course - 1]).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let edit = |n: usize, f: &dyn Fn(&str) -> String| -> String {
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[n - 1] = f(lines[n - 1]);
        out.join("\n") + "\n"
    };
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "a truncated line",
            edit(thing, &|l| l[..l.len() / 2].to_string()),
            thing,
            "EOF while parsing",
        ),
        (
            "a truncated last line",
            dump[..dump.len() - 20].to_string(),
            lines.len(),
            "EOF while parsing",
        ),
        (
            "an unknown type",
            edit(thing, &|l| {
                l.replace("\"type\":\"lesson\"", "\"type\":\"lessen\"")
            }),
            thing,
            "lessen",
        ),
        (
            "an edge into another org",
            {
                // The connection moves to after globex's thing, pointing at it.
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                let moved = out.remove(connection - 1);
                let v: serde_json::Value = serde_json::from_str(&moved).unwrap();
                let to = v["to"].as_str().unwrap().to_string();
                out.push(moved.replace(&to, &go_id));
                out.join("\n") + "\n"
            },
            lines.len(),
            "belongs to another organization",
        ),
        (
            "a duplicate id",
            {
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                out.insert(thing, lines[thing - 1].to_string());
                out.join("\n") + "\n"
            },
            thing + 1,
            "duplicate id",
        ),
        (
            "an embedding of the wrong dimension",
            {
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                // The same chunk with a fresh id and two dimensions.
                let mut v: serde_json::Value = serde_json::from_str(lines[chunk - 1]).unwrap();
                v["id"] = serde_json::json!("kno_01J00000000000000000000000");
                v["embedding"] = serde_json::json!([1.0, 0.0]);
                out.insert(chunk, v.to_string());
                out.join("\n") + "\n"
            },
            chunk + 1,
            "dimensions",
        ),
        (
            "an unknown line kind",
            edit(thing, &|l| {
                l.replace("\"kind\":\"thing\"", "\"kind\":\"thingy\"")
            }),
            thing,
            "unknown line kind",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    ok(onedb(
        &target,
        &["run", "-"],
        Some(b"CREATE ORG initech NAME \"Initech\";"),
    ));
    let before = full_scan(&target);
    for (what, damaged, line, reason) in cases {
        let out = onedb(&target, &["load", "-"], Some(damaged.as_bytes()));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{what}: loaded");
        assert!(err.contains(&format!("line {line}: ")), "{what}: {err}");
        assert!(err.contains(reason), "{what}: {err}");
        assert!(full_scan(&target) == before, "{what}: the database changed");
        assert!(
            !target.join("load-staging").exists(),
            "{what}: staging left behind"
        );
    }
    // A whole database's dump holds the platform: not into this one.
    let whole = ok(onedb(&data, &["dump"], None)).stdout;
    let out = onedb(&target, &["load", "-"], Some(&whole));
    assert!(
        text(&out.stderr)
            .contains("line 2: a platform record (org null) loads only into a new data directory"),
        "{}",
        text(&out.stderr)
    );
    assert!(full_scan(&target) == before);
    // The undamaged dump loads into the same database.
    ok(onedb(&target, &["load", "-"], Some(dump.as_bytes())));
    check_ok(&target);
}

#[test]
fn a_killed_load_leaves_the_database_as_it_was() {
    let f = fixture();
    let seed: u64 = std::env::var("ONEDB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill seed {seed} (ONEDB_KILL_SEED reruns it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let dump_file = dir.path().join("dump.jsonl");
    std::fs::write(&dump_file, &f.dump).unwrap();
    let target = dir.path().join("target");
    ok(onedb(
        &target,
        &["run", "-"],
        Some(b"CREATE ORG initech NAME \"Initech\";"),
    ));
    // How long loading takes here (before the index rebuild), to kill
    // inside it: the command prints it.
    let timing = dir.path().join("timing");
    let out = ok(onedb(&timing, &["load", dump_file.to_str().unwrap()], None)).stdout;
    let loading = load_time(&text(&out));
    let before = full_scan(&target);
    // The fixture's dump holds the platform: it loads only into a new
    // directory. Strip it to the two orgs so it loads into `target`.
    std::fs::write(&dump_file, orgs_only(&text(&f.dump))).unwrap();
    let expected_acme = orgs_only(&text(
        &f.onedb(&["dump", "--org", "acme", "--with-secrets"], None)
            .stdout,
    ));
    for round in 0..8 {
        let delay = Duration::from_millis(rng.gen_range(0..loading.as_millis().max(1) as u64 + 50));
        let mut child = Command::new(env!("CARGO_BIN_EXE_onedb"))
            .arg("--data")
            .arg(&target)
            .args(["load", dump_file.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let after = full_scan(&target);
        assert!(!target.join("load-staging").exists());
        if after != before {
            // The kill came after the load's one atomic step (in the
            // index rebuild, or it finished): all of it is there.
            check_ok(&target);
            let dump = ["dump", "--org", "acme", "--with-secrets"];
            let acme = ok(onedb(&target, &dump, None)).stdout;
            assert!(
                body(&acme) == body(expected_acme.as_bytes()),
                "round {round}: a partial load (seed {seed})"
            );
            eprintln!("round {round}: killed after {delay:?}, past the commit point ({status})");
            return;
        }
        eprintln!("round {round}: killed after {delay:?}, nothing loaded");
    }
}

/// The loading time `onedb load` reports ("… as commit N in 1.2s; …").
fn load_time(report: &str) -> Duration {
    let after = report.split(" in ").nth(1).unwrap();
    let value = after.split(';').next().unwrap();
    match value.strip_suffix("ms") {
        Some(ms) => Duration::from_secs_f64(ms.parse::<f64>().unwrap() / 1000.0),
        None => Duration::from_secs_f64(value.strip_suffix('s').unwrap().parse().unwrap()),
    }
}

/// A backup taken through a serving process while 8 clients write is a
/// consistent prefix: it opens, passes `onedb check` (usage equals its
/// recount), and every entity an event names is in it.
#[test]
fn a_backup_while_eight_clients_write_is_consistent() {
    use harness::{ALICE, ALICE_PASSWORD, ROOT_PASSWORD, Server};
    use serde_json::json;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let server = Server::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let mut client = server.login(ALICE, ALICE_PASSWORD);
            let (stop, written) = (stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let text = format!(
                        "LET $a = CREATE THING task \"w{w} {n}\" {{}}; \
                         LET $b = CREATE THING task \"w{w} {n}b\" {{}}; \
                         CONNECT $a -[references]-> $b; UPDATE $b SET STATUS active;"
                    );
                    let r = client.call(json!({"id": n, "op": "query", "text": text}));
                    assert_eq!(r["ok"], json!(true), "{r}");
                    written.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            })
        })
        .collect();
    while written.load(Ordering::SeqCst) < 40 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    // A person of an org may not take one.
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let refused = alice.call(json!({"id": 1, "op": "backup", "dir": copy.to_str().unwrap()}));
    assert_eq!(refused["error"]["code"], json!("FORBIDDEN"), "{refused}");
    // The command line asks the server, as root, while the writers write.
    let out = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .args([
            "backup",
            copy.to_str().unwrap(),
            "--server",
            &server.addr.to_string(),
        ])
        .args(["--email", "root"])
        .env("ONEDB_PASSWORD", ROOT_PASSWORD)
        .output()
        .unwrap();
    let during = written.load(Ordering::SeqCst);
    assert!(out.status.success(), "{}", text(&out.stderr));
    while written.load(Ordering::SeqCst) < during + 40 {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    check_ok(&copy);
    let dump = text(&ok(onedb(&copy, &["dump"], None)).stdout);
    let mut ids = std::collections::HashSet::new();
    for line in dump.lines().skip(1) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(id) = v["id"].as_str() {
            ids.insert(id.to_string());
        }
    }
    let mut events = 0;
    for line in lines_of_kind(&dump, "event") {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(target) = v["target"].as_str() {
            assert!(
                ids.contains(target),
                "event {} names {target}, not in the backup",
                v["id"]
            );
        }
        events += 1;
    }
    assert!(events > 40, "{events} events");
    // The copy is a prefix: the server went on writing after it.
    let mut server = server;
    server.kill();
    let things = |dump: &str| lines_of_kind(dump, "thing").len();
    let later = text(&ok(onedb(&server.data, &["dump"], None)).stdout);
    assert!(
        things(&later) > things(&dump),
        "{} vs {}",
        things(&later),
        things(&dump)
    );
}
