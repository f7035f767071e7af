//! A real `onedb serve` child process on 127.0.0.1:0 and raw-socket
//! clients for it (tests/server.rs). The child is killed when the guard
//! drops, whatever the test did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

pub const ROOT_PASSWORD: &str = "root-Secret-0815";
pub const ALICE: &str = "alice@acme.io";
pub const ALICE_PASSWORD: &str = "alice-Secret-4711";
pub const BOB: &str = "bob@globex.io";
pub const BOB_PASSWORD: &str = "bob-Secret-1234";

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_onedb")
}

/// A data directory with orgs acme and globex, alice (org_owner of
/// acme) and bob (org_owner of globex), made by the real binary.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let script = format!(
        "CREATE ORG acme NAME \"Acme\";\n\
         CREATE ORG globex NAME \"Globex\";\n\
         CREATE PERSON \"{ALICE}\" NAME \"Alice\" ROLE org_owner IN ORG acme PASSWORD \"{ALICE_PASSWORD}\";\n\
         CREATE PERSON \"{BOB}\" NAME \"Bob\" ROLE org_owner IN ORG globex PASSWORD \"{BOB_PASSWORD}\";\n"
    );
    let mut child = Command::new(binary())
        .arg("--data")
        .arg(&data)
        .args(["--durability", "relaxed", "run", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn onedb run");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("onedb run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, data)
}

/// `onedb serve` on a fresh data directory; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data: PathBuf,
    stderr: Option<JoinHandle<Vec<u8>>>,
    /// How it was started, for `restart`.
    args: Vec<String>,
    root_password: Option<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with the extra `args` (limits), root's password set.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(args, Some(ROOT_PASSWORD))
    }

    /// Starts a server; `root_password` goes to ONEDB_ROOT_PASSWORD.
    pub fn start_with(args: &[&str], root_password: Option<&str>) -> Server {
        let (dir, data) = data_dir();
        Self::start_on(dir, data, args, root_password)
    }

    /// Starts a server on a new, empty data directory (root only).
    pub fn start_empty(root_password: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        Self::start_on(dir, data, &[], Some(root_password))
    }

    /// Starts a server on `data` (inside `dir`, kept as long as the server).
    pub fn start_on(
        dir: tempfile::TempDir,
        data: PathBuf,
        args: &[&str],
        root_password: Option<&str>,
    ) -> Server {
        let mut server = Server {
            child: None,
            addr: "127.0.0.1:1".parse().unwrap(),
            data,
            stderr: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            root_password: root_password.map(str::to_string),
            _dir: dir,
        };
        server.spawn();
        server
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and
    /// waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }

    /// Starts the server again on the same data directory, with the same
    /// arguments, on a new port (`addr`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let (data, args) = (&self.data, &self.args);
        let mut command = Command::new(binary());
        command
            .arg("--data")
            .arg(data)
            .args([
                "--durability",
                "relaxed",
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .env_remove("ONEDB_ROOT_PASSWORD");
        if let Some(password) = &self.root_password {
            command.env("ONEDB_ROOT_PASSWORD", password);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn onedb serve");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            all
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        self.child = Some(child);
        self.stderr = Some(stderr);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server printed its address");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.addr = addr.parse().expect("an address");
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// A connection logged in as `email`.
    pub fn login(&self, email: &str, password: &str) -> Client {
        let mut c = self.connect();
        let r = c.call(json!({"id": "login", "op": "auth", "email": email, "password": password}));
        assert_eq!(r["ok"], json!(true), "{r}");
        c
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM (through `kill`: the tests forbid unsafe code).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill failed");
    }

    /// Waits for the process to exit (at most `limit`); its status and
    /// everything it wrote on stderr.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, Vec<u8>) {
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("the server did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status, stderr)
    }

    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Runs `onedb check` on the data directory (the server must be
    /// stopped) and asserts the store, usage and indexes are whole.
    pub fn check(&self) {
        let check = Command::new(binary())
            .arg("--data")
            .arg(&self.data)
            .arg("check")
            .output()
            .expect("onedb check");
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw TCP client: sends bytes or JSON lines, reads JSON lines.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr).expect("connect")
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client { stream, reader })
    }

    /// Sends a request and reads its answer; None when the connection
    /// broke on the way (the server died: the outcome is unknown).
    pub fn try_call(&mut self, request: Json) -> Option<Json> {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.stream.write_all(&line).ok()?;
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(_) if answer.ends_with('\n') => serde_json::from_str(&answer).ok(),
            _ => None,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    pub fn send(&mut self, request: Json) {
        let mut line = request.to_string().into_bytes();
        line.push(b'\n');
        self.send_raw(&line);
    }

    /// The next response line, parsed; panics on EOF or timeout.
    pub fn recv(&mut self) -> Json {
        match self.try_recv() {
            Ok(Some(v)) => v,
            Ok(None) => panic!("the server closed the connection"),
            Err(e) => panic!("no response: {e}"),
        }
    }

    /// The next response; None at EOF.
    pub fn try_recv(&mut self) -> std::io::Result<Option<Json>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        assert!(line.ends_with('\n'), "a cut line: {line:?}");
        Ok(Some(
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")),
        ))
    }

    pub fn call(&mut self, request: Json) -> Json {
        self.send(request);
        self.recv()
    }

    /// A query's response.
    pub fn query(&mut self, id: u64, text: &str) -> Json {
        self.call(json!({"id": id, "op": "query", "text": text}))
    }

    /// Reads until the server closes the connection (EOF or reset) within
    /// `limit`; the lines that came before.
    pub fn until_closed(&mut self, limit: Duration) -> Vec<Json> {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return lines,
                Ok(_) if line.ends_with('\n') => {
                    lines.push(serde_json::from_str(&line).expect("JSON"))
                }
                Ok(_) => return lines,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return lines,
                Err(e) => panic!("the connection stayed open: {e}"),
            }
        }
    }

    /// The error code of a response (panics on success).
    pub fn code(response: &Json) -> String {
        assert_eq!(response["ok"], json!(false), "{response}");
        response["error"]["code"].as_str().unwrap().to_string()
    }
}
