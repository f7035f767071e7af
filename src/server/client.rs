//! `onedb connect`: a blocking client of docs/protocol.md that the shell
//! runs statements on, exactly as it runs them on a local session. One
//! request at a time; the answer's JSON turns back into the `Outcome` or
//! `Error` the local runner would have given.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use crate::error::{Error, ErrorCode, Position, Result};
use crate::query::outcome::{Outcome, Stats};
use crate::repl::Backend;

/// How `onedb connect` logs in.
pub enum Login {
    Password { email: String, password: String },
    Token(String),
}

/// How long the client waits for the server to answer a request (the
/// server's own query timeout ends long before).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest answer line the client reads (a result of the server's
/// largest allowed size fits).
const MAX_ANSWER_BYTES: u64 = 1 << 30;
/// How often a client waiting for an answer looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// A logged-in connection to a server.
pub struct Remote {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    host: String,
    email: String,
    org: Option<String>,
    in_block: bool,
    next_id: u64,
    /// Set by Ctrl-C: the request waiting for its answer is cancelled.
    cancel: Arc<AtomicBool>,
}

impl Remote {
    /// Connects to `addr` (`host:port`) and logs in.
    pub fn connect(addr: &str, login: &Login) -> Result<Remote> {
        let stream = TcpStream::connect(addr)
            .map_err(|e| Error::io(format!("cannot connect to {addr}: {e}")))?;
        stream.set_read_timeout(Some(CANCEL_POLL))?;
        stream.set_nodelay(true)?;
        let mut remote = Remote {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            host: addr.to_string(),
            email: String::new(),
            org: None,
            in_block: false,
            next_id: 0,
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let request = match login {
            Login::Password { email, password } => {
                json!({"op": "auth", "email": email, "password": password})
            }
            Login::Token(token) => json!({"op": "auth", "token": token}),
        };
        let answer = remote.call(request)?;
        remote.org = answer.get("org").and_then(Json::as_str).map(str::to_string);
        remote.email = match login {
            Login::Password { email, .. } => email.trim().to_lowercase(),
            Login::Token(_) => remote.whoami_email()?,
        };
        Ok(remote)
    }

    /// Asks the server for a consistent copy of its data directory in
    /// `dir`, a path on the server's machine (platform owner only).
    pub fn backup(&mut self, dir: &str) -> Result<()> {
        self.call(json!({"op": "backup", "dir": dir})).map(|_| ())
    }

    /// Sends one request and reads its answer; the error it carries, if any.
    fn call(&mut self, mut request: Json) -> Result<Map<String, Json>> {
        self.next_id += 1;
        let id = self.next_id;
        if let Json::Object(fields) = &mut request {
            fields.insert("id".into(), json!(id));
        }
        self.send(&request)?;
        loop {
            let answer = self.read_answer(id)?;
            // Lines for another id (a notice with id null closes the
            // connection; it is reported as the error it is).
            if answer.get("id") == Some(&json!(id)) || answer.get("id") == Some(&Json::Null) {
                return answer_or_error(answer);
            }
        }
    }

    fn send(&mut self, request: &Json) -> Result<()> {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|e| Error::io(format!("the server at {} is gone: {e}", self.host)))
    }

    /// Reads the next answer line; while waiting, a set cancel flag sends
    /// one `cancel` for request `id` (its answer is skipped by `call`).
    fn read_answer(&mut self, id: u64) -> Result<Map<String, Json>> {
        let mut line = Vec::new();
        let started = Instant::now();
        let mut cancel_sent = false;
        loop {
            let room = MAX_ANSWER_BYTES.saturating_sub(line.len() as u64);
            // A timed-out read keeps the bytes it already moved into `line`.
            match (&mut self.reader).take(room).read_until(b'\n', &mut line) {
                Ok(_) => break,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if started.elapsed() > ANSWER_TIMEOUT {
                        return Err(Error::io(format!("{} did not answer", self.host)));
                    }
                    if !cancel_sent && self.cancel.load(Ordering::SeqCst) {
                        cancel_sent = true;
                        self.next_id += 1;
                        let cancel = json!({"op": "cancel", "target": id, "id": self.next_id});
                        self.send(&cancel)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("reading from {}: {e}", self.host))),
            }
        }
        if line.is_empty() {
            return Err(Error::io(format!(
                "the server at {} closed the connection",
                self.host
            )));
        }
        match serde_json::from_slice(&line) {
            Ok(Json::Object(fields)) => Ok(fields),
            _ => Err(Error::io(format!(
                "the server at {} sent a line that is not a JSON object",
                self.host
            ))),
        }
    }

    fn whoami_email(&mut self) -> Result<String> {
        let outcome = self.execute("WHOAMI")?;
        let email = outcome
            .rows
            .first()
            .and_then(|row| row.get(1))
            .and_then(Json::as_str);
        Ok(email.unwrap_or_default().to_string())
    }
}

/// An answer as the shell's result: `ok` true, or its error.
fn answer_or_error(answer: Map<String, Json>) -> Result<Map<String, Json>> {
    if answer.get("ok") == Some(&Json::Bool(true)) {
        return Ok(answer);
    }
    let body = answer.get("error").cloned().unwrap_or(Json::Null);
    let text = |field: &str| body.get(field).and_then(Json::as_str).unwrap_or_default();
    let code = ErrorCode::parse(text("code")).unwrap_or(ErrorCode::Io);
    let mut error = Error::new(code, text("message"));
    let number = |field: &str| body.get(field).and_then(Json::as_u64);
    if let (Some(line), Some(col)) = (number("line"), number("col")) {
        error.position = Some(Position {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            offset: 0,
        });
    }
    Err(error)
}

/// An `ok` answer of a query as the outcome the local runner gives.
fn outcome(answer: &Map<String, Json>) -> Outcome {
    let columns = match answer.get("columns") {
        Some(Json::Array(c)) => c
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => Vec::new(),
    };
    let rows: Vec<Vec<Json>> = match answer.get("rows") {
        Some(Json::Array(rows)) => rows
            .iter()
            .map(|r| r.as_array().cloned().unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    };
    let stat = |field: &str| {
        answer
            .get("stats")
            .and_then(|s| s.get(field))
            .and_then(Json::as_u64)
            .unwrap_or(0)
    };
    Outcome {
        stats: Stats {
            rows: usize::try_from(stat("rows")).unwrap_or(usize::MAX),
            micros: stat("micros"),
        },
        columns,
        rows,
        value: None,
    }
}

impl Backend for Remote {
    fn execute(&mut self, statement: &str) -> Result<Outcome> {
        let answer = self.call(json!({"op": "query", "text": statement}))?;
        // What the prompt and the end-of-session warning need, from the
        // statement that changed it.
        let first = statement
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" => self.in_block = true,
            "COMMIT" | "ROLLBACK" => self.in_block = false,
            "USE" => {
                let outcome = self.execute("WHOAMI")?;
                self.org = outcome
                    .rows
                    .first()
                    .and_then(|row| row.get(3))
                    .and_then(Json::as_str)
                    .map(str::to_string);
            }
            _ => {}
        }
        Ok(outcome(&answer))
    }

    fn prompt(&self) -> String {
        match &self.org {
            Some(org) => format!("{}@{}/{org}> ", self.email, self.host),
            None => format!("{}@{}> ", self.email, self.host),
        }
    }

    fn describe(&self) -> String {
        format!("{} as {}", self.host, self.email)
    }

    fn in_block(&self) -> bool {
        self.in_block
    }

    fn set_cancel(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = flag;
    }
}
