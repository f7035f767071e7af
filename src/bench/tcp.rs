//! `--via tcp`: the server on loopback in this process, and pipelining
//! clients (redis-benchmark's `-P`): each sends a batch of requests in one
//! write and reads their answers before the next batch. The benches'
//! server runs (benches/server.rs, benches/r1.rs) use the same pieces.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::bench::workloads::{Answer, Query};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::server::Limits;

/// `server::serve` on a thread of this process, on `db`; its address. The
/// server lives until the process ends.
pub fn start_server(db: &Database, limits: Limits) -> Result<SocketAddr> {
    struct Lines(mpsc::Sender<String>);
    impl Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(String::from_utf8_lossy(bytes).to_string());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let (tx, rx) = mpsc::channel();
    let db = db.clone();
    let errors = tx.clone();
    std::thread::spawn(move || {
        if let Err(e) = crate::server::serve(db, "127.0.0.1:0", limits, None, &mut Lines(tx)) {
            let _ = errors.send(format!("error: {e}\n"));
        }
    });
    let mut text = String::new();
    while !text.contains('\n') {
        let part = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| Error::io("the bench's server did not start"))?;
        text.push_str(&part);
    }
    text.trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| Error::io(format!("the bench's server: {}", text.trim())))
}

/// A connection speaking JSON lines.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// A connection, not logged in.
    pub fn connect(addr: SocketAddr) -> Result<Conn> {
        let writer = TcpStream::connect(addr)?;
        writer.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        })
    }

    /// A connection logged in with `token`.
    pub fn open(addr: SocketAddr, token: &str) -> Result<Conn> {
        let mut c = Conn::connect(addr)?;
        c.send_all([json!({"id": 0, "op": "auth", "token": token})])?;
        let r = c.recv()?;
        if r["ok"] != json!(true) {
            return Err(Error::io(format!("the bench's login failed: {r}")));
        }
        Ok(c)
    }

    /// Sends `requests` in one write, as a pipelining client does.
    pub fn send_all(&mut self, requests: impl IntoIterator<Item = Json>) -> Result<()> {
        let mut lines = Vec::new();
        for request in requests {
            lines.extend_from_slice(request.to_string().as_bytes());
            lines.push(b'\n');
        }
        self.send_bytes(&lines)
    }

    /// Sends request lines already encoded, in one write.
    pub fn send_bytes(&mut self, lines: &[u8]) -> Result<()> {
        self.writer.write_all(lines)?;
        Ok(())
    }

    /// Reads the next answer line into `line` (cleared first), newline
    /// included: a client that only checks its answers parses nothing.
    pub fn recv_into(&mut self, line: &mut Vec<u8>) -> Result<()> {
        line.clear();
        if self.reader.read_until(b'\n', line)? == 0 {
            return Err(Error::io("the server closed the connection"));
        }
        Ok(())
    }

    pub fn recv_line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(Error::io("the server closed the connection"));
        }
        Ok(line)
    }

    pub fn recv(&mut self) -> Result<Json> {
        serde_json::from_str(&self.recv_line()?)
            .map_err(|e| Error::io(format!("not a JSON answer: {e}")))
    }
}

/// One operation's outcome over the wire: its index in the list, its
/// answer (or the error the server gave) and its latency.
pub type Sample = (usize, std::result::Result<Answer, String>, Duration);

/// The request a query becomes: all its statements in one `query` op.
fn request(id: usize, query: &Query) -> Json {
    let (statements, params) = query.oql();
    json!({"id": id, "op": "query", "text": statements.join("; "), "params": params})
}

/// Runs `queries` over `clients` connections, `depth` requests in flight
/// on each; every answer with its latency (from its batch's write to its
/// line read back), and the wall time of the whole run.
pub fn run(
    addr: SocketAddr,
    token: &str,
    clients: usize,
    depth: usize,
    queries: &[Query],
) -> Result<(Vec<Sample>, Duration)> {
    let clients = clients.max(1);
    let conns: Vec<Conn> = (0..clients)
        .map(|_| Conn::open(addr, token))
        .collect::<Result<_>>()?;
    let states: Vec<(usize, Conn)> = conns.into_iter().enumerate().collect();
    crate::bench::parallel(states, |(c, conn)| {
        let mine: Vec<usize> = (c..queries.len()).step_by(clients).collect();
        client(conn, depth, queries, &mine)
    })
}

fn client(mut conn: Conn, depth: usize, queries: &[Query], mine: &[usize]) -> Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(mine.len());
    for batch in mine.chunks(depth.max(1)) {
        let sent = Instant::now();
        conn.send_all(batch.iter().map(|i| request(*i, &queries[*i])))?;
        let mut answers = Vec::with_capacity(batch.len());
        for _ in batch {
            answers.push((conn.recv()?, sent.elapsed()));
        }
        // A write that conflicted is sent again alone once the batch is
        // read (answers come in request order), as a client would.
        for (i, (mut r, mut took)) in batch.iter().zip(answers) {
            let mut attempt = 0;
            while r["error"]["code"] == "CONFLICT" && attempt < crate::bench::doors::RETRIES {
                attempt += 1;
                conn.send_all([request(*i, &queries[*i])])?;
                r = conn.recv()?;
                took = sent.elapsed();
            }
            out.push((*i, answer_of(&queries[*i], &r)?, took));
        }
    }
    Ok(out)
}

/// The answer in a `query` op's response line, or the error it gave.
fn answer_of(query: &Query, r: &Json) -> Result<std::result::Result<Answer, String>> {
    if r["ok"] != json!(true) {
        return Ok(Err(r["error"].to_string()));
    }
    let columns: Vec<String> = serde_json::from_value(r["columns"].clone())
        .map_err(|e| Error::io(format!("columns: {e}")))?;
    let rows: Vec<Vec<Json>> =
        serde_json::from_value(r["rows"].clone()).map_err(|e| Error::io(format!("rows: {e}")))?;
    Ok(Ok(query.answer_of_rows(&columns, &rows)))
}
