//! The server in the bench's own process and a JSON-lines client for it
//! (benches/server.rs, benches/r1.rs).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use onedb::Database;
use onedb::server::Limits;
use serde_json::{Value as Json, json};

/// `onedb::server::serve` on a thread of this process, on `db`; its address.
pub fn start_server(db: &Database, limits: Limits) -> SocketAddr {
    struct Lines(std::sync::mpsc::Sender<String>);
    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(bytes).to_string());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let db = db.clone();
    std::thread::spawn(move || {
        onedb::server::serve(db, "127.0.0.1:0", limits, None, &mut Lines(tx)).expect("serve");
    });
    let mut text = String::new();
    while !text.contains('\n') {
        text.push_str(&rx.recv_timeout(Duration::from_secs(30)).expect("address"));
    }
    let addr = text
        .trim()
        .strip_prefix("listening on ")
        .expect("address line");
    addr.parse().expect("an address")
}

/// A logged-in connection.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// A connection, not logged in (also for servers that are not onedb).
    pub fn connect(addr: SocketAddr) -> Conn {
        let writer = TcpStream::connect(addr).expect("connect");
        writer.set_nodelay(true).unwrap();
        Conn {
            reader: BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    /// A connection logged in with `token`.
    pub fn open(addr: SocketAddr, token: &str) -> Conn {
        let mut c = Conn::connect(addr);
        c.send(&json!({"id": 0, "op": "auth", "token": token}));
        let r = c.recv();
        assert_eq!(r["ok"], json!(true), "{r}");
        c
    }

    pub fn send(&mut self, request: &Json) {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.writer.write_all(&line).expect("send");
    }

    /// Sends `requests` in one write, as a pipelining client does.
    pub fn send_all(&mut self, requests: impl IntoIterator<Item = Json>) {
        let mut lines = Vec::new();
        for request in requests {
            serde_json::to_writer(&mut lines, &request).expect("JSON");
            lines.push(b'\n');
        }
        self.writer.write_all(&lines).expect("send");
    }

    pub fn recv_line(&mut self) -> String {
        let mut line = String::new();
        assert!(
            self.reader.read_line(&mut line).expect("recv") > 0,
            "closed"
        );
        line
    }

    pub fn recv(&mut self) -> Json {
        serde_json::from_str(&self.recv_line()).expect("JSON")
    }

    pub fn call(&mut self, request: &Json) -> Json {
        self.send(request);
        self.recv()
    }
}
