//! The server in the bench's own process and a JSON-lines client for it
//! (benches/server.rs, benches/r1.rs, benches/etcd.rs): `onedb bench`'s
//! pieces (`onedb::bench::tcp`), failing loudly instead of returning
//! errors; and clients running for a timed phase.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use onedb::query::run::Runner;
use onedb::server::Limits;
use onedb::{Database, NewToken, Plan, Session};
use serde_json::{Value as Json, json};

/// The standard mutation: a thing and its `owns` edge, with their events
/// and usage, in one commit.
pub const MUTATION: &str =
    "BEGIN; LET $t = CREATE THING task \"bench\"; CONNECT $me -[owns]-> $t; COMMIT;";

/// Runs `clients` threads for `phase`; operations per second.
pub fn rate(
    clients: usize,
    phase: Duration,
    work: impl Fn(usize, &AtomicBool) -> u64 + Sync,
) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for n in 0..clients {
            let (stop, done, work) = (&stop, &done, &work);
            s.spawn(move || done.fetch_add(work(n, stop), Ordering::Relaxed));
        }
        std::thread::sleep(phase);
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The standard mutation through the server at `addr`, one at a time,
/// until `stop`; how many. The request line is encoded once and each
/// answer is checked for `"ok":true`, not parsed: the clients share the
/// machine with the server, and the in-process side builds nothing.
pub fn mutations(addr: SocketAddr, token: &str, stop: &AtomicBool) -> u64 {
    let mut c = Conn::open(addr, token);
    let mut request = json!({"id": 1, "op": "query", "text": MUTATION})
        .to_string()
        .into_bytes();
    request.push(b'\n');
    let mut answer = Vec::new();
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) {
        c.send_bytes(&request);
        c.recv_into(&mut answer);
        assert!(answered_ok(&answer), "{}", String::from_utf8_lossy(&answer));
        done += 1;
    }
    done
}

/// An answer line that says `"ok":true` (found, not parsed).
pub fn answered_ok(line: &[u8]) -> bool {
    line.windows(9).any(|w| w == b"\"ok\":true")
}

/// `onedb::server::serve` on a thread of this process, on `db`; its address.
pub fn start_server(db: &Database, limits: Limits) -> SocketAddr {
    onedb::bench::tcp::start_server(db, limits).expect("serve")
}

/// A connection speaking JSON lines.
pub struct Conn(onedb::bench::tcp::Conn);

impl Conn {
    /// A connection, not logged in (also for servers that are not onedb).
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn(onedb::bench::tcp::Conn::connect(addr).expect("connect"))
    }

    /// A connection logged in with `token`.
    pub fn open(addr: SocketAddr, token: &str) -> Conn {
        Conn(onedb::bench::tcp::Conn::open(addr, token).expect("log in"))
    }

    pub fn send(&mut self, request: &Json) {
        self.send_all([request.clone()]);
    }

    /// Sends `requests` in one write, as a pipelining client does.
    pub fn send_all(&mut self, requests: impl IntoIterator<Item = Json>) {
        self.0.send_all(requests).expect("send");
    }

    pub fn send_bytes(&mut self, lines: &[u8]) {
        self.0.send_bytes(lines).expect("send");
    }

    pub fn recv_into(&mut self, line: &mut Vec<u8>) {
        self.0.recv_into(line).expect("recv");
    }

    pub fn recv_line(&mut self) -> String {
        self.0.recv_line().expect("recv")
    }

    pub fn recv(&mut self) -> Json {
        self.0.recv().expect("JSON answer")
    }

    pub fn call(&mut self, request: &Json) -> Json {
        self.send(request);
        self.recv()
    }
}

/// Org acme (no limits on API calls, things or connections) with alice as
/// its owner: root's session inside acme, and an API token of alice's.
pub fn acme_with_alice(db: &Database) -> (Session, String) {
    let mut root = db.local_session().expect("root");
    root.run(|t| t.create_org("acme", "Acme", Plan::Enterprise).map(|_| ()))
        .expect("org");
    root.use_org("acme").expect("use");
    {
        let mut runner = Runner::new(&root);
        runner
            .execute("SET LIMITS ON ORG acme {api_calls: -1, things: -1, connections: -1}")
            .expect("limits");
        runner
            .execute("CREATE PERSON \"alice@acme.io\" NAME \"Alice\" ROLE org_owner")
            .expect("alice");
    }
    let alice = db.session_as("alice@acme.io").expect("alice");
    let token = alice
        .run(|t| {
            t.create_token(NewToken {
                name: "bench".into(),
                expires_at: None,
            })
        })
        .expect("token")
        .secret;
    (root, token)
}
