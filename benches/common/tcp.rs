//! The server in the bench's own process and a JSON-lines client for it
//! (benches/server.rs, benches/r1.rs): `onedb bench`'s pieces
//! (`onedb::bench::tcp`), failing loudly instead of returning errors.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;

use onedb::Database;
use onedb::server::Limits;
use serde_json::Value as Json;

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
