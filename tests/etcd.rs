//! Several `onedb serve` processes over one etcd cluster
//! (docs/ARCHITECTURE.md, "Scale-out"): what one server commits, the
//! other reads, finds by name and by vector; racing writers through both
//! never pass a quota; a killed etcd member loses no acknowledged write.
//!
//! The shared cluster is `ONEDB_ETCD=HOST:PORT,…` (`.ci/run` starts one);
//! without it these tests are skipped with a note, unless
//! `ONEDB_REQUIRE_ETCD` is set. The failover test starts a 3-member
//! cluster of its own (`.ci/etcd-cluster`), since it kills a member.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/binary.rs"]
mod binary;
#[path = "common/server.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{ALICE, ALICE_PASSWORD, Client, ROOT_PASSWORD, Server};
use serde_json::{Value as Json, json};

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_onedb")
}

/// The shared cluster, or None (skipped) when none is named.
fn shared_cluster() -> Option<String> {
    match std::env::var("ONEDB_ETCD") {
        Ok(endpoints) if !endpoints.is_empty() => Some(endpoints),
        _ if std::env::var_os("ONEDB_REQUIRE_ETCD").is_some() => {
            panic!("ONEDB_REQUIRE_ETCD is set but ONEDB_ETCD names no cluster")
        }
        _ => {
            eprintln!("skipped: set ONEDB_ETCD=HOST:PORT,… to run the etcd tests");
            None
        }
    }
}

/// A store URL in a namespace no other test uses.
fn fresh_store(endpoints: &str) -> String {
    format!("etcd://{endpoints}/it-{:016x}", rand::random::<u64>())
}

/// A 3-member cluster of this test's own on tmpfs; stopped on drop.
struct OwnCluster {
    dir: tempfile::TempDir,
    endpoints: String,
}

impl OwnCluster {
    fn start(base_port: u16) -> OwnCluster {
        let dir = tempfile::Builder::new()
            .prefix("onedb-etcd-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let out = Command::new(script())
            .args([
                "start",
                dir.path().to_str().unwrap(),
                &base_port.to_string(),
            ])
            .output()
            .expect("run .ci/etcd-cluster");
        assert!(
            out.status.success(),
            "the cluster did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoints = String::from_utf8(out.stdout).unwrap().trim().to_string();
        OwnCluster { dir, endpoints }
    }

    /// SIGKILLs member `i` (0, 1 or 2).
    fn kill(&self, i: usize) {
        let pid = std::fs::read_to_string(self.dir.path().join(format!("m{i}.pid"))).unwrap();
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/etcd-cluster")
}

/// Org acme with alice (its owner) in `store`, through `onedb run`,
/// with at most `things` things.
fn seed(store: &str, things: i64) {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "CREATE ORG acme NAME \"Acme\";\n\
         SET LIMITS ON ORG acme {{things: {things}}};\n\
         CREATE PERSON \"{ALICE}\" NAME \"Alice\" ROLE org_owner IN ORG acme PASSWORD \"{ALICE_PASSWORD}\";\n"
    );
    binary::ok(binary::onedb(
        dir.path(),
        &["--store", store, "run", "-"],
        Some(script.as_bytes()),
    ));
}

/// A server over `store` with a data directory (its indexes) of its own.
fn serve(store: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    Server::start_on(dir, data, &["--store", store], Some(ROOT_PASSWORD))
}

/// Two servers over a fresh store of the shared cluster, seeded with
/// acme (at most `things` things) and alice; None when no cluster is named.
fn two_servers(things: i64) -> Option<[Server; 2]> {
    let store = fresh_store(&shared_cluster()?);
    seed(&store, things);
    Some([serve(&store), serve(&store)])
}

fn rows(r: &Json) -> &Vec<Json> {
    assert_eq!(r["ok"], json!(true), "{r}");
    r["rows"].as_array().unwrap()
}

/// Asks until `ok` holds of the answer (the other server's indexer may
/// still be catching up) or 10 s pass; returns the last answer.
fn eventually(c: &mut Client, text: &str, ok: impl Fn(&Json) -> bool) -> Json {
    let started = Instant::now();
    loop {
        let r = c.query(1, text);
        if ok(&r) || started.elapsed() > Duration::from_secs(10) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn what_one_server_commits_the_other_reads_and_finds_by_name_and_vector() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let mut on_a = a.login(ALICE, ALICE_PASSWORD);
    let mut on_b = b.login(ALICE, ALICE_PASSWORD);
    // b has answered a search before the thing exists: its index is warm.
    assert!(rows(&on_b.query(1, "SEARCH THINGS \"ferris\" RETURN id")).is_empty());
    for (i, text) in [
        "LET $c = CREATE THING course \"Ferris Crab Course\" {level: 2}",
        "CREATE KNOWLEDGE CHUNK \"crabs\" EMBEDDING [1.0, 0.0, 0.0] FOR $c",
    ]
    .into_iter()
    .enumerate()
    {
        let made = on_a.query(10 + i as u64, text);
        assert_eq!(made["ok"], json!(true), "{made}");
    }
    let read = on_b.query(3, "MATCH (c:course) RETURN c.name, c.properties.level");
    assert_eq!(rows(&read), &vec![json!(["Ferris Crab Course", 2])]);
    let found = on_b.query(4, "SEARCH THINGS \"ferris\" RETURN name");
    assert_eq!(rows(&found), &vec![json!(["Ferris Crab Course"])]);
    let near = on_b.query(
        5,
        "SEARCH KNOWLEDGE NEAREST [0.9, 0.1, 0.0] K 1 RETURN text",
    );
    assert_eq!(rows(&near), &vec![json!(["crabs"])]);
    // And back: a rename through b is found through a.
    for text in [
        "LET $c = MATCH (c:course) RETURN c.id",
        "UPDATE $c SET name = \"Gopher Course\"",
    ] {
        let renamed = on_b.query(6, text);
        assert_eq!(renamed["ok"], json!(true), "{renamed}");
    }
    let found = eventually(&mut on_a, "SEARCH THINGS \"gopher\" RETURN name", |r| {
        r["rows"] == json!([["Gopher Course"]])
    });
    assert_eq!(rows(&found), &vec![json!(["Gopher Course"])]);
    assert!(rows(&on_a.query(7, "SEARCH THINGS \"ferris\" RETURN name")).is_empty());
}

/// Alice logged in on `a`, and her new token "bot" logged in on `b`:
/// both connections, the token's id and its secret.
fn alice_and_her_bot(a: &Server, b: &Server) -> (Client, Client, String, String) {
    let mut alice = a.login(ALICE, ALICE_PASSWORD);
    let made = alice.query(1, "CREATE TOKEN \"bot\"");
    let row = &rows(&made)[0];
    let id = row[0].as_str().unwrap().to_string();
    let secret = row[1].as_str().unwrap().to_string();
    let mut bot = b.connect();
    let r = bot.call(json!({"id": 1, "op": "auth", "token": secret}));
    assert_eq!(r["ok"], json!(true), "{r}");
    (alice, bot, id, secret)
}

#[test]
fn a_token_revoked_through_one_server_ends_its_session_on_the_other() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let (mut alice, mut bot, id, secret) = alice_and_her_bot(&a, &b);
    assert_eq!(bot.query(2, "WHOAMI")["rows"][0][1], json!(ALICE));
    let revoked = alice.query(3, &format!("REVOKE TOKEN \"{id}\""));
    assert_eq!(revoked["ok"], json!(true), "{revoked}");
    let r = bot.query(4, "WHOAMI");
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");
    let r = b
        .connect()
        .call(json!({"id": 1, "op": "auth", "token": secret}));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");
}

/// A block sent whole skips the liveness read before it runs and has its
/// commit check that the session's person and token are unchanged
/// instead: a token revoked through the other server still stops it —
/// nothing of it is stored — and ends the session. A block that fails
/// before its commit answers its error only to a session still live.
#[test]
fn a_block_sent_whole_after_its_token_was_revoked_elsewhere_stores_nothing() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let (mut alice, mut bot, id, secret) = alice_and_her_bot(&a, &b);
    let mut reader = b.connect();
    let r = reader.call(json!({"id": 1, "op": "auth", "token": secret}));
    assert_eq!(r["ok"], json!(true), "{r}");
    for i in 0..3 {
        let r = bot.query(
            2 + i,
            &format!("BEGIN; CREATE THING task \"before{i}\"; COMMIT;"),
        );
        assert_eq!(r["ok"], json!(true), "{r}");
        let r = reader.query(2 + i, "BEGIN; MATCH (t:task) RETURN t.name; COMMIT;");
        assert_eq!(r["ok"], json!(true), "{r}");
    }
    let revoked = alice.query(10, &format!("REVOKE TOKEN \"{id}\""));
    assert_eq!(revoked["ok"], json!(true), "{revoked}");
    let r = bot.query(11, "BEGIN; CREATE THING task \"after\"; COMMIT;");
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED", "{r}");
    let r = reader.query(11, "BEGIN; MATCH (g:gadgett) RETURN g; COMMIT;");
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED", "{r}");
    let r = alice.query(13, "MATCH (t:task) RETURN t.name ORDER BY t.name");
    assert_eq!(
        rows(&r),
        &vec![json!(["before0"]), json!(["before1"]), json!(["before2"])]
    );
}

#[test]
fn a_subscriber_on_one_server_gets_both_servers_commits_once_in_commit_order() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let mut watcher = b.login(ALICE, ALICE_PASSWORD);
    let text = "EVENTS WHERE type = \"entity_created\"";
    let ack = watcher.call(json!({"id": 9, "op": "subscribe", "text": text}));
    assert_eq!(ack["ok"], json!(true), "{ack}");
    // Writers on both servers at once.
    std::thread::scope(|scope| {
        for (n, server) in [&a, &b, &a].into_iter().enumerate() {
            scope.spawn(move || {
                let mut c = server.login(ALICE, ALICE_PASSWORD);
                for i in 0..15 {
                    let r = c.query(i, &format!("CREATE THING task \"s{n}-{i}\""));
                    assert_eq!(r["ok"], json!(true), "{r}");
                }
            });
        }
    });
    let mut names = Vec::new();
    let mut seqs = Vec::new();
    while names.len() < 45 {
        let line = watcher.recv();
        assert_eq!(line["id"], json!(9), "{line}");
        names.push(
            line["event"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        seqs.push(line["event"]["seq"].as_u64().unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[0] <= w[1]),
        "out of commit order: {seqs:?}"
    );
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 45, "each event once: {names:?}");
}

#[test]
fn failed_logins_on_one_server_lock_the_account_on_the_other() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let auth =
        |password: &str| json!({"id": 1, "op": "auth", "email": ALICE, "password": password});
    for _ in 0..3 {
        let r = a.connect().call(auth("wrong-Guess-999"));
        assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");
        assert!(r["error"].get("retry_after_ms").is_none(), "{r}");
    }
    // The right password, through the other server: not even checked.
    let r = b.connect().call(auth(ALICE_PASSWORD));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");
    let wait = r["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((3_000..=5_000).contains(&wait), "{r}");
    // Once the wait is over it logs in, and that clears the count for both.
    std::thread::sleep(Duration::from_millis(wait + 100));
    let r = b.connect().call(auth(ALICE_PASSWORD));
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = a.connect().call(auth("wrong-Guess-999"));
    assert!(r["error"].get("retry_after_ms").is_none(), "{r}");
}

#[test]
fn a_type_added_through_one_server_is_usable_through_the_other() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let mut alice = b.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(1, "CREATE THING gadget \"Sprocket\"");
    assert_eq!(Client::code(&r), "UNKNOWN_TYPE");
    let mut root = a.login("root", ROOT_PASSWORD);
    let r = root.query(2, "CREATE TYPE THING gadget");
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = alice.query(3, "CREATE THING gadget \"Sprocket\"");
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = alice.query(4, "MATCH (g:gadget) RETURN g.name");
    assert_eq!(rows(&r), &vec![json!(["Sprocket"])]);
}

const REQUIRE_PRIORITY: &str = "DEFINE SCHEMA task {type: \"object\", required: [\"priority\"]}";

/// A server keeps copies of the records every write reads (the org, the
/// person, schemas) across transactions, and checks them only as it
/// commits. A schema defined and dropped through the other server must
/// still decide this server's very next writes — single statements and
/// whole blocks alike, in both directions: a copy that wrongly allows, and
/// one that wrongly refuses.
#[test]
fn a_schema_changed_through_one_server_decides_the_next_write_through_the_other() {
    let Some([a, b]) = two_servers(-1) else {
        return;
    };
    let mut writer = b.login(ALICE, ALICE_PASSWORD);
    // Warm the copies on b: the org, alice, task without a schema.
    for i in 0..3 {
        let r = writer.query(
            i,
            &format!("CREATE THING task \"warm{i}\" {{priority: {i}}}"),
        );
        assert_eq!(r["ok"], json!(true), "{r}");
    }
    let mut owner = a.login(ALICE, ALICE_PASSWORD);
    let r = owner.query(10, REQUIRE_PRIORITY);
    assert_eq!(r["ok"], json!(true), "{r}");
    let single = writer.query(11, "CREATE THING task \"bare\"");
    assert_eq!(Client::code(&single), "INVALID_ARGUMENT", "{single}");
    let block = writer.query(12, "BEGIN; CREATE THING task \"bare\"; COMMIT;");
    assert_eq!(Client::code(&block), "INVALID_ARGUMENT", "{block}");
    let r = writer.query(13, "ROLLBACK");
    assert_eq!(r["ok"], json!(true), "a failed block stays open: {r}");
    let r = owner.query(13, "DROP SCHEMA task");
    assert_eq!(r["ok"], json!(true), "{r}");
    let single = writer.query(14, "LET $bare1 = CREATE THING task \"bare1\"");
    assert_eq!(single["ok"], json!(true), "{single}");
    // Again for a block: b takes a copy of a new schema (refused with
    // it), then a drops that schema.
    let r = writer.query(15, "DELETE $bare1");
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = owner.query(17, REQUIRE_PRIORITY);
    assert_eq!(r["ok"], json!(true), "{r}");
    let refused = writer.query(18, "CREATE THING task \"bare\"");
    assert_eq!(Client::code(&refused), "INVALID_ARGUMENT", "{refused}");
    let r = owner.query(19, "DROP SCHEMA task");
    assert_eq!(r["ok"], json!(true), "{r}");
    let block = writer.query(20, "BEGIN; LET $t = CREATE THING task \"bare2\"; COMMIT;");
    assert_eq!(block["ok"], json!(true), "{block}");
    let r = owner.query(
        21,
        "MATCH (t:task) WHERE t.name STARTS WITH \"bare\" RETURN t.name",
    );
    assert_eq!(rows(&r), &vec![json!(["bare2"])]);
}

#[test]
fn racing_creates_through_two_servers_stop_exactly_at_the_limit() {
    let Some(servers) = two_servers(100) else {
        return;
    };
    let acknowledged = Mutex::new(Vec::new());
    let refused = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for client in 0..8 {
            let server = &servers[client % 2];
            let (acknowledged, refused) = (&acknowledged, &refused);
            scope.spawn(move || {
                let mut c = server.login(ALICE, ALICE_PASSWORD);
                for i in 0..40 {
                    let name = format!("t{client}-{i}");
                    let r = c.query(i, &format!("CREATE THING task \"{name}\""));
                    if r["ok"] == json!(true) {
                        acknowledged.lock().unwrap().push(name);
                    } else {
                        assert_eq!(Client::code(&r), "LIMIT_REACHED", "{r}");
                        *refused.lock().unwrap() += 1;
                    }
                }
            });
        }
    });
    let mut acknowledged = acknowledged.into_inner().unwrap();
    assert_eq!(
        acknowledged.len(),
        100,
        "creates acknowledged under a limit of 100"
    );
    assert_eq!(refused.into_inner().unwrap(), 8 * 40 - 100);
    let mut c = servers[1].login(ALICE, ALICE_PASSWORD);
    let stored = c.query(1, "MATCH (t:task) RETURN t.name ORDER BY t.name");
    let mut stored: Vec<String> = rows(&stored)
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);
    let usage = c.query(2, "SHOW USAGE");
    assert!(usage.to_string().contains("100"), "{usage}");
}

#[test]
fn killing_the_etcd_member_a_server_talks_to_loses_no_acknowledged_write() {
    if shared_cluster().is_none() {
        return;
    }
    let cluster = OwnCluster::start(24790);
    let store = format!("etcd://{}/failover", cluster.endpoints);
    seed(&store, -1);
    let server = serve(&store);
    let stop = AtomicBool::new(false);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let unknown = Mutex::new(Vec::<Json>::new());
    std::thread::scope(|scope| {
        for client in 0..4 {
            let (server, stop, acknowledged, unknown) = (&server, &stop, &acknowledged, &unknown);
            scope.spawn(move || {
                let mut c = server.login(ALICE, ALICE_PASSWORD);
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("w{client}-{i}");
                    let r = c.query(i, &format!("CREATE THING task \"{name}\""));
                    if r["ok"] == json!(true) {
                        acknowledged.lock().unwrap().push(name);
                    } else {
                        unknown.lock().unwrap().push(r);
                        break;
                    }
                }
            });
        }
        let count = || acknowledged.lock().unwrap().len();
        let wait_for = |n: usize| {
            let started = Instant::now();
            while count() < n && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(10));
            }
            count()
        };
        let before = wait_for(20);
        // The first member named: the one the server asks first, and
        // the leader one time in three.
        cluster.kill(0);
        let after_kill = wait_for(before + 40);
        stop.store(true, Ordering::SeqCst);
        assert!(
            after_kill >= before + 40,
            "writes stopped being acknowledged after the kill: {before} then {after_kill}"
        );
    });
    let unknown = unknown.into_inner().unwrap();
    assert!(
        unknown.is_empty(),
        "writes failed across the failover: {unknown:?}"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut c = server.login(ALICE, ALICE_PASSWORD);
    let stored = c.query(1, "MATCH (n:task) RETURN n.name");
    let stored: std::collections::HashSet<String> = rows(&stored)
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(*n))
        .collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert_eq!(stored.len(), acknowledged.len(), "each write stored once");
    drop(c);
    drop(server);
    let check = Command::new(binary())
        .arg("--data")
        .arg(tempfile::tempdir().unwrap().path())
        .args(["--store", &store, "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A store URL that names no live member, or is not a URL, is a clear
/// error and an exit status, never a hang or a panic.
#[test]
fn an_unreachable_or_malformed_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary::onedb(
        dir.path(),
        &["--store", "etcd://127.0.0.1:1/x", "info"],
        None,
    );
    assert!(!out.status.success());
    let err = binary::text(&out.stderr);
    assert!(
        err.contains("etcd") && err.contains("no member answered"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let out = binary::onedb(dir.path(), &["--store", "etcd://nohostport", "info"], None);
    assert!(!out.status.success());
    let err = binary::text(&out.stderr);
    assert!(err.contains("HOST:PORT"), "{err}");
}
