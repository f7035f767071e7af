//! The server under load and under faults, over real sockets: 200 clients
//! reading and writing at once beside hostile ones (RELIABILITY.md N1), and
//! Jepsen's set test: unique inserts acknowledged while the server is
//! killed with SIGKILL and restarted; every acknowledged insert survives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/server.rs"]
mod harness;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use harness::{ALICE, ALICE_PASSWORD, Client, ROOT_PASSWORD, Server};
use serde_json::json;

/// A token of alice's, so hundreds of clients log in without hundreds of
/// argon2 checks.
fn token(server: &Server) -> String {
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(1, "CREATE TOKEN \"load\";");
    assert_eq!(r["ok"], json!(true), "{r}");
    r["rows"][0][1].as_str().unwrap().to_string()
}

/// A connection logged in with `token`; None if the server is not there
/// (it was just killed).
fn login_with(addr: SocketAddr, token: &str) -> Option<Client> {
    let mut c = Client::try_connect(addr).ok()?;
    let r = c.try_call(json!({"id": 0, "op": "auth", "token": token}))?;
    assert_eq!(r["ok"], json!(true), "{r}");
    Some(c)
}

#[test]
fn two_hundred_clients_read_and_write_while_hostile_ones_get_nowhere() {
    const CLIENTS: usize = 200;
    const REQUESTS: usize = 20;
    let server = Server::start(&[]);
    let token = token(&server);

    // The hostile: garbage, a 2 MiB line, a half-sent line then silence,
    // and a client that pipelines queries and never reads.
    let mut garbage = server.connect();
    let mut huge = server.connect();
    let mut half = server.connect();
    half.send_raw(b"{\"id\":1,\"op\":\"query\",\"text\":\"MATCH");
    let mut deaf = login_with(server.addr, &token).unwrap();
    let hostile = std::thread::spawn({
        let deaf_requests: Vec<u8> = (0..2_000)
            .flat_map(|n| {
                let mut line = json!({"id": n, "op": "query", "text": "MATCH (t) RETURN t.id, t.name LIMIT 200"})
                    .to_string()
                    .into_bytes();
                line.push(b'\n');
                line
            })
            .collect();
        move || {
            let _ = deaf.stream.write_all(&deaf_requests);
            for _ in 0..200 {
                garbage.send_raw(b"{not json at all\n\x00\x01\xff\n");
            }
            let _ = huge.stream.write_all(&vec![b'x'; 2 << 20]);
            (garbage, huge, deaf)
        }
    });

    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (addr, token) = (server.addr, token.clone());
            std::thread::spawn(move || {
                let mut c = login_with(addr, &token).unwrap();
                let mut created = 0;
                for k in 0..REQUESTS {
                    let id = (n * REQUESTS + k) as u64;
                    let r = if k % 2 == 0 {
                        c.query(id, &format!("CREATE THING task \"c{n}-{k}\";"))
                    } else {
                        c.query(id, "MATCH (t:task) RETURN count(*)")
                    };
                    assert_eq!(r["id"], json!(id), "answers come in order: {r}");
                    assert_eq!(r["ok"], json!(true), "{r}");
                    created += usize::from(k % 2 == 0);
                }
                created
            })
        })
        .collect();
    let created: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(created, CLIENTS * REQUESTS / 2);

    let (mut garbage, mut huge, _deaf) = hostile.join().unwrap();
    let r = garbage.recv();
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT");
    let closed = huge.until_closed(Duration::from_secs(10));
    assert_eq!(
        closed.last().map(Client::code).as_deref(),
        Some("TOO_LARGE")
    );
    // Every write is there, once.
    let mut check = login_with(server.addr, &token).unwrap();
    let r = check.query(1, "MATCH (t:task) RETURN count(*), count(DISTINCT t.name)");
    assert_eq!(r["rows"], json!([[created, created]]), "{r}");
    drop(half);
}

/// Jepsen's set test. Writers add unique elements (things named
/// `w<writer>-<n>`) and remember which were acknowledged; meanwhile the
/// server is killed with SIGKILL and restarted, again and again. At the
/// end every acknowledged element is read back, nothing appears that was
/// never sent, and `onedb check` finds the store whole.
#[test]
fn jepsen_set_every_acknowledged_insert_survives_sigkill_restarts() {
    const WRITERS: usize = 6;
    const KILLS: usize = 5;
    // `--durability relaxed` (the harness's): a commit is acknowledged once
    // its log reached the operating system, which a killed process cannot
    // take back.
    let server = Arc::new(Mutex::new(Server::start(&[])));
    let token = token(&server.lock().unwrap());
    // Thousands of requests: past the starter plan's api_calls.
    let mut root = server.lock().unwrap().login("root", ROOT_PASSWORD);
    let r = root.query(1, "SET LIMITS ON ORG acme {api_calls: -1, things: -1};");
    assert_eq!(r["ok"], json!(true), "{r}");
    drop(root);
    let addr = Arc::new(RwLock::new(server.lock().unwrap().addr));
    let stop = Arc::new(AtomicBool::new(false));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (addr, stop, token) = (addr.clone(), stop.clone(), token.clone());
            std::thread::spawn(move || {
                let (mut acked, mut sent) = (Vec::new(), Vec::new());
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let at = *addr.read().unwrap();
                    let Some(mut c) = login_with(at, &token) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    // One request at a time until the connection breaks.
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("w{w}-{n}");
                        n += 1;
                        sent.push(name.clone());
                        let text = format!("CREATE THING task \"{name}\";");
                        match c.try_call(json!({"id": n, "op": "query", "text": text})) {
                            Some(r) if r["ok"] == json!(true) => acked.push(name),
                            Some(r) => panic!("refused while up: {r}"),
                            // Killed: the outcome of this one is unknown.
                            None => break,
                        }
                    }
                }
                (acked, sent)
            })
        })
        .collect();

    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(700));
        let mut s = server.lock().unwrap();
        s.restart(); // SIGKILL, then start again
        *addr.write().unwrap() = s.addr;
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut acked = BTreeSet::new();
    let mut sent = BTreeSet::new();
    for w in writers {
        let (a, s) = w.join().unwrap();
        acked.extend(a);
        sent.extend(s);
    }
    assert!(
        acked.len() > 50,
        "too few acknowledged writes: {}",
        acked.len()
    );

    let mut s = server.lock().unwrap();
    let mut c = login_with(s.addr, &token).unwrap();
    let r = c.query(1, "MATCH (t:task) RETURN t.name LIMIT 100000");
    assert_eq!(r["ok"], json!(true), "{r}");
    let read: BTreeSet<String> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<_> = acked.difference(&read).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let phantom: Vec<_> = read.difference(&sent).collect();
    assert!(phantom.is_empty(), "never sent, yet there: {phantom:?}");

    s.kill();
    s.check();
}
