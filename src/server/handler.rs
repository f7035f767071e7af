//! One connection: a worker thread that owns the person's session and
//! runner answers auth and query in arrival order; the writer task sends
//! the answers. Who reads the requests: on plain TCP the worker thread
//! itself, between answers (`direct`: a thread hand-off less per read); in
//! TLS this task, which hands them to the worker through a queue. Both
//! answer what needs no database (ping, cancel, bad lines) in the same
//! order as the rest. A slow client holds nothing but its own connection:
//! what is read ahead of the worker is bounded, and so are the answers
//! waiting to be written.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value as Json, json};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};

use crate::db::Session;
use crate::error::{Error, ErrorCode, Result};
use crate::model::limits::EMAIL_BYTES;
use crate::query::run::{Outcome, Runner};
use crate::query::script::{is_one_block, run_text};
use crate::server::Shared;
use crate::server::connection::{Frame, Out, WriteEnd, read_line, write_lines};
use crate::server::limits::Limits;
use crate::server::lockout;
use crate::server::protocol::{self, Credentials, Op, Params, Request};
use crate::server::subscribe::Subscriptions;

#[cfg(unix)]
mod direct;
#[cfg(unix)]
pub(super) use direct::{Intakes, watch};

/// Reads of requests (groups, see `Group`) ahead of the one running
/// (pipelining) before the reader waits; and the bytes of request lines
/// they may hold together (a group counts at most this much, so any one
/// fits).
const PIPELINE: usize = 64;
const PIPELINE_BYTES: usize = 4 << 20;
/// What a request line counts against `PIPELINE_BYTES` at least: a
/// group may hold thousands of tiny lines, and each becomes a job with
/// its own allocations (a garbage line, its error answer), so the bytes
/// bound the jobs' memory too (8,192 jobs at most).
const JOB_BYTES: usize = 512;
/// The worker thread's stack: as deep as the main thread's shell.
const WORKER_STACK: usize = 8 << 20;
/// How often a connection whose timer ran out while work was in flight
/// looks again.
const BUSY_RECHECK: Duration = Duration::from_millis(50);
/// After `TOO_LARGE`, how long and how much of the rest of the line is
/// read and dropped, so closing does not reset the connection before the
/// client has read the error.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 64 << 20;

/// What the worker is asked, in arrival order.
enum Job {
    Backup {
        id: Json,
        dir: String,
    },
    Auth {
        id: Json,
        credentials: Credentials,
    },
    Query {
        id: Json,
        text: String,
        params: Params,
        cancel: Arc<AtomicBool>,
    },
    Subscribe {
        id: Json,
        text: String,
        params: Params,
        after: Option<u64>,
    },
    Unsubscribe {
        id: Json,
        sub: Json,
    },
    /// A cancel already applied to `cancelled` queries of this id.
    Cancel {
        id: Json,
        target: Json,
        cancelled: usize,
    },
    /// An answer the reader made; passed on in its place in the order.
    Reply(Vec<u8>),
}

/// The requests of one read from the socket, in order: they travel to the
/// worker together (one hand-off, not one each), and their answers leave
/// together (what Redis does with the replies to one read).
type Group = Vec<Job>;

/// What the reader, the worker and the writer of one connection share.
#[derive(Default)]
struct State {
    authenticated: AtomicBool,
    /// Auth and query jobs sent and not yet answered.
    busy: AtomicUsize,
    /// When the worker last answered the only one in flight: the idle
    /// time counts from there.
    last_done: Mutex<Option<Instant>>,
    /// Queries sent and not yet answered, by request id: what `cancel` sets.
    running: Mutex<Vec<(Json, Arc<AtomicBool>)>>,
    /// Subscriptions open: a connection with one is not idle.
    subscriptions: AtomicUsize,
}

impl State {
    fn started(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    fn finished(&self, query: Option<&Arc<AtomicBool>>) {
        if let Some(flag) = query {
            self.running.lock().retain(|(_, f)| !Arc::ptr_eq(f, flag));
        }
        // Only the last one in flight starts the idle time (before the
        // count falls, so a reader that sees none in flight sees its
        // time); a pipeline's others skip the clock and the lock.
        if self.busy.load(Ordering::SeqCst) == 1 {
            *self.last_done.lock() = Some(Instant::now());
        }
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst) > 0 || self.subscriptions.load(Ordering::SeqCst) > 0
    }

    fn register(&self, id: &Json) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running.lock().push((id.clone(), flag.clone()));
        flag
    }

    /// Cancels the queries with request id `target`; how many there were.
    fn cancel(&self, target: &Json) -> usize {
        let running = self.running.lock();
        let mut n = 0;
        for (_, flag) in running.iter().filter(|(id, _)| id == target) {
            flag.store(true, Ordering::Relaxed);
            n += 1;
        }
        n
    }

    fn cancel_all(&self) {
        for (_, flag) in self.running.lock().iter() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Why the reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    Eof,
    TooLarge,
    TimedOut,
    Shutdown,
    /// The socket failed or the worker is gone.
    Failed,
}

/// Serves one connection (inside TLS) until the client leaves, a limit
/// closes it, or the server shuts down (what was read by then is answered
/// first): this task reads the requests and hands them to the session
/// thread. Plain connections are read by the session thread itself
/// (`serve_direct`).
pub(super) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    opened: Instant,
    shared: Arc<Shared>,
    mut shutdown: broadcast::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read_half, mut write_half) = tokio::io::split(stream);
    let mut reader = BufReader::new(read_half);
    let state = Arc::new(State::default());
    let (jobs_tx, jobs_rx) = mpsc::channel(PIPELINE);
    let jobs_tx = Queue {
        jobs: jobs_tx,
        room: Arc::new(Semaphore::new(PIPELINE_BYTES)),
    };
    let Some(mut thread) =
        SessionThread::start(&shared, peer, &state, Source::Queue(jobs_rx), None, || {})
    else {
        return;
    };
    let (read_end, write_end) = {
        let reading = read_requests(&mut reader, jobs_tx, &state, &shared, opened, &mut shutdown);
        let writing = thread.write(&mut write_half, &shared.limits);
        tokio::pin!(reading, writing);
        tokio::select! {
            read_end = &mut reading => (Some(read_end), (&mut writing).await),
            write_end = &mut writing => (None, write_end),
        }
    };
    if read_end.is_none() {
        // Nobody will read the answers: stop what runs for them.
        state.cancel_all();
    }
    report(&write_end, peer);
    if read_end == Some(ReadEnd::TooLarge) && matches!(write_end, WriteEnd::Done) {
        let mut rest = (&mut reader).take(LINGER_BYTES);
        let _ =
            tokio::time::timeout(LINGER, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
    }
    thread.finish().await;
}

/// Serves one plain TCP connection (see `serve`): the session thread reads
/// the socket itself, this task only writes (see `direct`).
#[cfg(unix)]
pub(super) async fn serve_direct(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    opened: Instant,
    shared: Arc<Shared>,
    mut shutdown: broadcast::Receiver<()>,
) {
    let mut writer = match direct::Writer::new(&socket) {
        Ok(writer) => writer,
        Err(e) => {
            eprintln!("onedb serve: cannot serve {peer}: {e}");
            return;
        }
    };
    // The session thread reads and writes through one descriptor, the
    // writer through the other.
    let own = Arc::new(socket);
    let state = Arc::new(State::default());
    let (reader, intake) = direct::Reader::new(own.clone(), state.clone(), shared.clone(), opened);
    let lingering = intake.clone();
    let source = Source::Socket(reader);
    let Some(mut thread) =
        SessionThread::start(&shared, peer, &state, source, Some(own), move || {
            lingering.linger()
        })
    else {
        return;
    };
    let write_end = {
        let writing = thread.write(&mut writer, &shared.limits);
        tokio::pin!(writing);
        tokio::select! {
            write_end = &mut writing => write_end,
            _ = shutdown.recv() => {
                intake.stop();
                (&mut writing).await
            }
        }
    };
    if !matches!(write_end, WriteEnd::Done) {
        // Nobody will read the answers: stop what runs for them, and the
        // reading.
        state.cancel_all();
        intake.stop();
    }
    report(&write_end, peer);
    thread.finish().await;
}

/// Logs a writer's failure, unless it is the client's leaving.
fn report(write_end: &WriteEnd, peer: SocketAddr) {
    if let WriteEnd::Failed(e) = write_end
        && !matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::TimedOut
        )
    {
        eprintln!("onedb serve: writing to {peer} failed: {e}");
    }
}

/// A connection's session thread, and what its writer takes from it.
struct SessionThread {
    lines: mpsc::UnboundedReceiver<Out>,
    wake: Arc<Notify>,
    written: Arc<AtomicU64>,
    done: oneshot::Receiver<()>,
}

impl SessionThread {
    /// Starts the thread that answers the jobs of `source`; `socket`: the
    /// connection's (plain TCP), for answers the thread writes itself
    /// when the writer has nothing waiting. `after` runs on the thread
    /// once it has answered its last job.
    fn start(
        shared: &Arc<Shared>,
        peer: SocketAddr,
        state: &Arc<State>,
        source: Source,
        socket: Option<Arc<std::net::TcpStream>>,
        after: impl FnOnce() + Send + 'static,
    ) -> Option<SessionThread> {
        let (lines_tx, lines) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel::<()>();
        let wake = Arc::new(Notify::new());
        let written = Arc::new(AtomicU64::new(0));
        let worker = Worker {
            shared: shared.clone(),
            peer: peer.ip(),
            state: state.clone(),
            lines: lines_tx,
            direct: socket.map(|socket| Direct {
                socket,
                written: written.clone(),
            }),
            wake: wake.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("onedb-session".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                worker.run(source);
                after();
                drop(done_tx);
            });
        if let Err(e) = spawned {
            eprintln!("onedb serve: cannot start a session thread: {e}");
            return None;
        }
        Some(SessionThread {
            lines,
            wake,
            written,
            done,
        })
    }

    /// Writes the thread's answers (and its subscriptions' lines) to
    /// `writer` until the thread is done, the client stops reading or the
    /// socket fails.
    async fn write<W: AsyncWrite + Unpin>(&mut self, writer: &mut W, limits: &Limits) -> WriteEnd {
        write_lines(
            writer,
            &mut self.lines,
            &self.wake,
            limits.max_output_bytes,
            limits.idle_timeout,
            &self.written,
        )
        .await
    }

    /// Waits for the thread: the session ends before the connection's
    /// slot is given back.
    async fn finish(self) {
        drop(self.lines);
        let _ = self.done.await;
    }
}

/// The worker's queue: bounded in groups and in their bytes. Each group
/// travels with its share of the bytes, given back once it is answered.
struct Queue {
    jobs: mpsc::Sender<(Group, OwnedSemaphorePermit)>,
    room: Arc<Semaphore>,
}

impl Queue {
    /// Waits for room, then queues; false if the worker is gone.
    async fn send(&self, group: Group, bytes: usize) -> bool {
        let bytes = u32::try_from(bytes.clamp(1, PIPELINE_BYTES)).unwrap_or(1);
        let Ok(room) = self.room.clone().acquire_many_owned(bytes).await else {
            return false;
        };
        self.jobs.send((group, room)).await.is_ok()
    }

    /// Queues one job alone.
    async fn send_one(&self, job: Job) -> bool {
        self.send(vec![job], 1).await
    }
}

/// Where the worker's groups come from.
enum Source {
    /// The queue the connection's reader task fills (TLS).
    Queue(mpsc::Receiver<(Group, OwnedSemaphorePermit)>),
    /// The socket, read by the session thread itself (plain TCP).
    #[cfg(unix)]
    Socket(direct::Reader),
}

/// The worker's end of the queue: the jobs of the groups, one at a time.
struct Jobs {
    source: Source,
    group: std::vec::IntoIter<Job>,
    /// The current group's bytes, given back when the worker comes for
    /// the job after its last (its answers have been handed on by then).
    room: Option<OwnedSemaphorePermit>,
}

impl Jobs {
    fn new(source: Source) -> Jobs {
        Jobs {
            source,
            group: Vec::new().into_iter(),
            room: None,
        }
    }

    /// The next job, waiting for the next group (from a queue, with
    /// `wait`); None once reading has ended and every job is taken.
    fn next(
        &mut self,
        mut wait: impl FnMut(
            &mut mpsc::Receiver<(Group, OwnedSemaphorePermit)>,
        ) -> Option<(Group, OwnedSemaphorePermit)>,
    ) -> Option<Job> {
        loop {
            if let Some(job) = self.group.next() {
                return Some(job);
            }
            self.room = None;
            let group = match &mut self.source {
                Source::Queue(groups) => {
                    let (group, room) = wait(groups)?;
                    self.room = Some(room);
                    group
                }
                #[cfg(unix)]
                Source::Socket(reader) => reader.next_group()?,
            };
            self.group = group.into_iter();
        }
    }

    /// Whether a job is ready behind the one taken last.
    fn more(&self) -> bool {
        self.group.len() > 0
            || match &self.source {
                Source::Queue(groups) => !groups.is_empty(),
                #[cfg(unix)]
                Source::Socket(reader) => reader.more(),
            }
    }
}

/// Reads request lines until the client leaves, a limit is hit or the
/// server shuts down; queues the requests of each read for the worker.
async fn read_requests<R>(
    reader: &mut BufReader<R>,
    jobs: Queue,
    state: &State,
    shared: &Shared,
    opened: Instant,
    shutdown: &mut broadcast::Receiver<()>,
) -> ReadEnd
where
    R: AsyncRead + Unpin,
{
    let limits = &shared.limits;
    let mut last_line = opened;
    let mut buf = Vec::new();
    let mut recheck: Option<Instant> = None;
    loop {
        let mut deadline = close_at(state, opened, last_line, limits);
        if let Some(at) = recheck {
            deadline = deadline.max(at);
        }
        let frame = tokio::select! {
            _ = shutdown.recv() => return ReadEnd::Shutdown,
            frame = tokio::time::timeout_at(
                deadline.into(),
                read_line(reader, &mut buf, limits.max_line_bytes),
            ) => frame,
        };
        recheck = None;
        let frame = match frame {
            Ok(Ok(frame)) => frame,
            Ok(Err(_)) => return ReadEnd::Failed,
            Err(_elapsed) => {
                if state.is_busy() {
                    // Work in flight is activity: look again soon.
                    recheck = Some(Instant::now() + BUSY_RECHECK);
                    continue;
                }
                if Instant::now() < close_at(state, opened, last_line, limits) {
                    continue; // it logged in, or finished work, meanwhile
                }
                jobs.send_one(timeout_notice(state, limits)).await;
                return ReadEnd::TimedOut;
            }
        };
        match frame {
            Frame::Eof => return ReadEnd::Eof,
            Frame::TooLong => {
                jobs.send_one(too_large_notice(limits.max_line_bytes)).await;
                return ReadEnd::TooLarge;
            }
            Frame::Line => {
                last_line = Instant::now();
                let mut group = Group::new();
                let mut bytes = 0;
                loop {
                    group.extend(dispatch(&buf, state));
                    bytes += buf.len().max(JOB_BYTES);
                    buf.clear();
                    // The whole lines this read brought need no wait.
                    if !take_buffered_line(reader, &mut buf, limits.max_line_bytes) {
                        break;
                    }
                }
                if !group.is_empty() && !jobs.send(group, bytes).await {
                    return ReadEnd::Failed;
                }
            }
        }
    }
}

/// The notice before a connection closes for want of a request (or of a
/// login).
fn timeout_notice(state: &State, limits: &Limits) -> Job {
    let message = if state.authenticated.load(Ordering::SeqCst) {
        format!(
            "no request for {} s: closing the connection",
            limits.idle_timeout.as_secs_f64()
        )
    } else {
        format!(
            "not authenticated within {} s: closing the connection",
            limits.auth_timeout.as_secs_f64()
        )
    };
    Job::Reply(protocol::line(&protocol::notice(
        ErrorCode::Timeout,
        message,
    )))
}

/// The notice before a connection closes on a line over `max` bytes.
fn too_large_notice(max: usize) -> Job {
    let notice = protocol::notice(
        ErrorCode::TooLarge,
        format!("a request line has at most {max} bytes: closing the connection"),
    );
    Job::Reply(protocol::line(&notice))
}

/// Moves the next line `reader` holds already into `buf`, if it holds a
/// whole one within `max` bytes before its newline (a longer one is left
/// for `read_line` to refuse).
fn take_buffered_line<R>(reader: &mut BufReader<R>, buf: &mut Vec<u8>, max: usize) -> bool
where
    R: AsyncRead + Unpin,
{
    let held = reader.buffer();
    match held.iter().position(|&b| b == b'\n') {
        Some(end) if end <= max => {
            buf.extend_from_slice(&held[..=end]);
            // `consume` is the buffered-read trait's: inherent on no type.
            std::pin::Pin::new(reader).consume(end + 1);
            true
        }
        _ => false,
    }
}

/// When the connection is closed unless something happens: idle time
/// after its last request or answer, and the auth timeout until it logs in.
fn close_at(state: &State, opened: Instant, last_line: Instant, limits: &Limits) -> Instant {
    let last_done = (*state.last_done.lock()).unwrap_or(opened);
    let idle = last_line.max(last_done) + limits.idle_timeout;
    if state.authenticated.load(Ordering::SeqCst) {
        idle
    } else {
        idle.min(opened + limits.auth_timeout)
    }
}

/// What one line asks of the worker; blank lines ask nothing.
fn dispatch(line: &[u8], state: &State) -> Option<Job> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    let reply = |response: Json| Some(Job::Reply(protocol::line(&response)));
    match protocol::decode(line) {
        Err(bad) => reply(bad.response()),
        Ok(Request { id, op: Op::Ping }) => reply(protocol::ok(&id, Map::new())),
        // The flags are set now, while the target runs; whether the
        // cancel was allowed is answered in order (after an auth before it).
        Ok(Request {
            id,
            op: Op::Cancel { target },
        }) => {
            let cancelled = state.cancel(&target);
            Some(Job::Cancel {
                id,
                target,
                cancelled,
            })
        }
        Ok(Request {
            id,
            op: Op::Auth(credentials),
        }) => {
            state.started();
            Some(Job::Auth { id, credentials })
        }
        Ok(Request {
            id,
            op:
                Op::Subscribe {
                    text,
                    params,
                    after,
                },
        }) => {
            state.started();
            Some(Job::Subscribe {
                id,
                text,
                params,
                after,
            })
        }
        Ok(Request {
            id,
            op: Op::Unsubscribe { sub },
        }) => Some(Job::Unsubscribe { id, sub }),
        Ok(Request {
            id,
            op: Op::Backup { dir },
        }) => {
            state.started();
            Some(Job::Backup { id, dir })
        }
        Ok(Request {
            id,
            op: Op::Query { text, params },
        }) => {
            let cancel = state.register(&id);
            state.started();
            Some(Job::Query {
                id,
                text,
                params,
                cancel,
            })
        }
    }
}

fn not_authenticated() -> Error {
    Error::new(
        ErrorCode::NotAuthenticated,
        "authenticate first: {\"op\":\"auth\",\"email\":…,\"password\":…} or {\"op\":\"auth\",\"token\":…}",
    )
}

/// Largest batch of answers handed to the writer at once, and the longest
/// an answer waits in one for the requests queued behind it.
const BATCH_BYTES: usize = 64 << 10;
const BATCH_WAIT: Duration = Duration::from_millis(1);

/// Answers on their way to the writer. While more requests wait
/// (pipelining), answer lines are gathered and handed on together: one
/// wake of the writer and one socket write for many answers, instead of
/// one each (what Redis does with the replies to one read).
/// A single answer is written to the socket by the session thread itself
/// when the writer has written everything handed to it and no subscription
/// ever fed it lines: one thread hand-off less for a client that sends one
/// request at a time. What the socket does not take goes to the writer.
struct Batch {
    lines: mpsc::UnboundedSender<Out>,
    pending: Vec<u8>,
    /// When the oldest gathered answer was ready.
    since: Instant,
    direct: Option<Direct>,
    /// Answers handed to the writer.
    sent: u64,
    /// A subscription started: the writer may be writing its lines.
    subscribed: bool,
}

/// The connection's socket, shared with the writer (see `Batch`).
struct Direct {
    socket: Arc<std::net::TcpStream>,
    /// Answers the writer took and wrote in full.
    written: Arc<AtomicU64>,
}

impl Batch {
    fn new(lines: mpsc::UnboundedSender<Out>, direct: Option<Direct>) -> Batch {
        Batch {
            lines,
            pending: Vec::new(),
            since: Instant::now(),
            direct,
            sent: 0,
            subscribed: false,
        }
    }

    /// Writes `bytes` to the socket if the writer is done with all it was
    /// handed; how many were written (0 when it would block or failed:
    /// the writer then waits, or reports it).
    fn write_direct(&self, bytes: &[u8]) -> usize {
        let Some(direct) = &self.direct else {
            return 0;
        };
        if self.subscribed || direct.written.load(Ordering::Acquire) != self.sent {
            return 0;
        }
        (&*direct.socket).write(bytes).unwrap_or(0)
    }

    /// Gives `out` to the writer (or, for a line, to the socket).
    fn hand_on(&mut self, out: Out) -> bool {
        let out = match out {
            Out::Line(mut line) => {
                let written = self.write_direct(&line);
                if written == line.len() {
                    return true;
                }
                Out::Line(unwritten(&mut line, written))
            }
            Out::Start(line, feed) => {
                self.subscribed = true;
                Out::Start(line, feed)
            }
            stop => stop,
        };
        self.sent += 1;
        self.lines.send(out).is_ok()
    }

    /// Hands `out` on, or keeps it for the next when `more` requests wait;
    /// false once the writer is gone.
    fn send(&mut self, out: Out, more: bool) -> bool {
        match out {
            Out::Line(line) if self.pending.is_empty() && !more => self.hand_on(Out::Line(line)),
            Out::Line(line) => {
                if self.pending.is_empty() {
                    self.since = Instant::now();
                }
                self.pending.extend_from_slice(&line);
                if more && self.pending.len() < BATCH_BYTES && self.since.elapsed() < BATCH_WAIT {
                    return true;
                }
                self.flush()
            }
            // A subscription's start or stop keeps its place in the order.
            other => self.flush() && self.hand_on(other),
        }
    }

    /// Hands on what was gathered; false once the writer is gone. The
    /// buffer is kept for the next batch when the socket took it all.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        let written = self.write_direct(&self.pending);
        if written == self.pending.len() {
            self.pending.clear();
            return true;
        }
        let rest = unwritten(&mut self.pending, written);
        self.sent += 1;
        self.lines.send(Out::Line(rest)).is_ok()
    }

    /// Answers request `id` with why the session may not go on (after
    /// what was gathered); the connection then closes.
    fn end_session(&mut self, id: &Json, e: &Error) {
        let line = protocol::line(&protocol::error(id, e, None));
        let _ = self.send(Out::Line(line), false);
    }
}

/// What is left of `buf` after its first `written` bytes, taken out of it
/// (without a copy when none were written).
fn unwritten(buf: &mut Vec<u8>, written: usize) -> Vec<u8> {
    if written == 0 {
        return std::mem::take(buf);
    }
    let rest = buf[written..].to_vec();
    buf.clear();
    rest
}

/// How long a session thread that has just answered looks for the next
/// request before it sleeps. Waking a sleeping thread took ~35 µs per
/// request on a VM, more than the request; a client that sends its next
/// request as soon as it has the answer finds the thread still awake.
const SPIN: Duration = Duration::from_micros(50);

/// Session threads looking for a request without sleeping: a spin holds
/// a core, so at most one per two cores does at a time.
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// Session threads answering a job now. A thread spins only while this
/// is zero: the core it holds would otherwise be idle.
static WORKING: AtomicUsize = AtomicUsize::new(0);

fn max_spinning() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

/// How a session thread waits for its next job. It spins only while
/// spinning pays: after two waits in a row that a spin did not end (a
/// client slower than `SPIN` between requests), it tries again only
/// every 16th wait.
#[derive(Default)]
struct Waiter {
    /// Waits since a spin last found a job.
    misses: u32,
    /// Counted in `WORKING`: the job last returned is being answered.
    working: bool,
}

impl Waiter {
    fn next<T>(&mut self, jobs: &mut mpsc::Receiver<T>) -> Option<T> {
        self.set_working(false);
        let job = self.wait(jobs);
        self.set_working(job.is_some());
        job
    }

    fn wait<T>(&mut self, jobs: &mut mpsc::Receiver<T>) -> Option<T> {
        use mpsc::error::TryRecvError;
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        let mut found = None;
        let spun = self.spin(|| match jobs.try_recv() {
            Ok(job) => {
                found = Some(job);
                true
            }
            // Closed: the blocking receive below says so at once.
            Err(TryRecvError::Disconnected) => true,
            Err(TryRecvError::Empty) => false,
        });
        match found {
            Some(job) if spun => Some(job),
            _ => jobs.blocking_recv(),
        }
    }

    /// Looks for work with `ready` for up to `SPIN`, when spinning pays;
    /// whether `ready` found some.
    fn spin(&mut self, ready: impl FnMut() -> bool) -> bool {
        if (self.misses < 2 || self.misses.is_multiple_of(16)) && spin(ready) {
            self.misses = 0;
            return true;
        }
        self.misses = self.misses.wrapping_add(1);
        false
    }

    fn set_working(&mut self, working: bool) {
        match (self.working, working) {
            (false, true) => WORKING.fetch_add(1, Ordering::Relaxed),
            (true, false) => WORKING.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
        self.working = working;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.set_working(false);
    }
}

/// Whether `ready` says work arrived within `SPIN`, while no session
/// thread has work and few others spin.
fn spin(mut ready: impl FnMut() -> bool) -> bool {
    let mut found = false;
    if SPINNING.fetch_add(1, Ordering::Relaxed) < max_spinning() {
        let until = Instant::now() + SPIN;
        while WORKING.load(Ordering::Relaxed) == 0 && Instant::now() < until {
            if ready() {
                found = true;
                break;
            }
            std::hint::spin_loop();
        }
    }
    SPINNING.fetch_sub(1, Ordering::Relaxed);
    found
}

/// The thread that owns the connection's session: answers jobs in order.
struct Worker {
    shared: Arc<Shared>,
    peer: IpAddr,
    state: Arc<State>,
    lines: mpsc::UnboundedSender<Out>,
    direct: Option<Direct>,
    /// The writer's: a subscription has lines.
    wake: Arc<Notify>,
}

impl Worker {
    fn run(mut self, source: Source) {
        let mut jobs = Jobs::new(source);
        let mut answers = Batch::new(self.lines.clone(), self.direct.take());
        let Some(session) = self.authenticate(&mut jobs, &mut answers) else {
            answers.flush();
            return;
        };
        let mut runner = Runner::new(&session);
        runner.set_limits(self.shared.limits.query());
        // Declared after the runner, so dropped before it: they end with
        // the connection.
        let mut subscriptions = Subscriptions::new(self.wake.clone());
        let mut waiter = Waiter::default();
        while let Some(job) = jobs.next(|groups| waiter.next(groups)) {
            let response = match job {
                Job::Reply(line) => Out::Line(line),
                Job::Cancel {
                    id,
                    target,
                    cancelled,
                } => Out::Line(protocol::line(&cancel_answer(&id, &target, cancelled))),
                Job::Auth { id, .. } => {
                    self.state.finished(None);
                    let e = Error::invalid("this connection is already authenticated");
                    Out::Line(protocol::line(&protocol::error(&id, &e, None)))
                }
                Job::Query {
                    id,
                    text,
                    params,
                    cancel,
                } => {
                    // A revoked or expired token, or a removed person, ends
                    // the session here; on a shared store, for a block sent
                    // whole, at its commit (saving the store a request).
                    let deferred = session
                        .liveness_guesses()
                        .filter(|_| !runner.in_block() && is_one_block(&text));
                    match deferred {
                        Some(guesses) => runner.defer_liveness_check(guesses),
                        None => {
                            if let Err(e) = session.check_live() {
                                self.state.finished(Some(&cancel));
                                return answers.end_session(&id, &e);
                            }
                        }
                    }
                    let response = query(&session, &mut runner, &id, &text, params, &cancel);
                    self.state.finished(Some(&cancel));
                    if let Some(e) = runner.take_liveness_failure() {
                        return answers.end_session(&id, &e);
                    }
                    Out::Line(response)
                }
                Job::Subscribe {
                    id,
                    text,
                    params,
                    after,
                } => {
                    if let Err(e) = session.check_live() {
                        self.state.finished(None);
                        return answers.end_session(&id, &e);
                    }
                    let out = match prepare_subscription(&session, &mut runner, params) {
                        Ok(()) => subscriptions.subscribe(
                            &mut runner,
                            &self.shared.limits,
                            &id,
                            &text,
                            after,
                        ),
                        Err(e) => Out::Line(protocol::line(&protocol::error(&id, &e, None))),
                    };
                    self.state
                        .subscriptions
                        .store(subscriptions.len(), Ordering::SeqCst);
                    self.state.finished(None);
                    out
                }
                Job::Backup { id, dir } => {
                    // Busy until the copy is written: a long backup is not idle.
                    let done = session.check_live().and_then(|()| session.backup(&dir));
                    self.state.finished(None);
                    let response = match done {
                        Ok(()) => protocol::ok(&id, Map::from_iter([("dir".into(), json!(dir))])),
                        Err(e) => protocol::error(&id, &e, None),
                    };
                    Out::Line(protocol::line(&response))
                }
                Job::Unsubscribe { id, sub } => {
                    let out = subscriptions.unsubscribe(&id, &sub);
                    self.state
                        .subscriptions
                        .store(subscriptions.len(), Ordering::SeqCst);
                    out
                }
            };
            if !answers.send(response, jobs.more()) {
                return;
            }
        }
        answers.flush();
    }

    /// Answers jobs until one logs in; None if the connection ends first.
    fn authenticate(&self, jobs: &mut Jobs, answers: &mut Batch) -> Option<Session> {
        while let Some(job) = jobs.next(|groups| groups.blocking_recv()) {
            let (response, session) = match job {
                Job::Reply(line) => (line, None),
                Job::Cancel { id, .. } | Job::Unsubscribe { id, .. } => {
                    let e = not_authenticated();
                    (protocol::line(&protocol::error(&id, &e, None)), None)
                }
                Job::Subscribe { id, .. } | Job::Backup { id, .. } => {
                    self.state.finished(None);
                    let e = not_authenticated();
                    (protocol::line(&protocol::error(&id, &e, None)), None)
                }
                Job::Query { id, cancel, .. } => {
                    self.state.finished(Some(&cancel));
                    let e = not_authenticated();
                    (protocol::line(&protocol::error(&id, &e, None)), None)
                }
                Job::Auth { id, credentials } => {
                    let (response, session) = match self.login(&credentials) {
                        Ok(session) => (logged_in(&id, &session), Some(session)),
                        Err(Refused::Error(e)) => (protocol::error(&id, &e, None), None),
                        Err(Refused::Locked(wait)) => (protocol::locked(&id, wait), None),
                    };
                    if session.is_some() {
                        self.state.authenticated.store(true, Ordering::SeqCst);
                    }
                    self.state.finished(None);
                    (protocol::line(&response), session)
                }
            };
            if !answers.send(Out::Line(response), session.is_none() && jobs.more()) {
                return None;
            }
            if session.is_some() {
                return session;
            }
        }
        None
    }

    /// Checks a password or a token, unless the account (the email, or
    /// the token's id) or the address must wait.
    fn login(&self, credentials: &Credentials) -> std::result::Result<Session, Refused> {
        match credentials {
            Credentials::Password { email, password } => self.login_password(email, password),
            Credentials::Token(secret) => {
                let account = token_account(secret);
                self.with_lockout(&account, || self.shared.db.login_token(secret))
            }
        }
    }

    fn login_password(&self, email: &str, password: &str) -> std::result::Result<Session, Refused> {
        if email.trim().len() > EMAIL_BYTES {
            // No account has it, and the lockout table keeps no such key.
            return Err(Refused::Error(Error::invalid(format!(
                "an email has at most {EMAIL_BYTES} bytes"
            ))));
        }
        self.with_lockout(email, || {
            // Each check holds ~19 MiB for tens of milliseconds: a few at once.
            let _permit = self
                .shared
                .runtime
                .block_on(self.shared.password_checks.acquire())
                .map_err(|_| Error::io("the server is shutting down"))?;
            self.shared.db.login(email, password)
        })
    }

    /// Runs a login check unless `account` or the address must wait, and
    /// counts its failure or success.
    fn with_lockout(
        &self,
        account: &str,
        check: impl FnOnce() -> Result<Session>,
    ) -> std::result::Result<Session, Refused> {
        let lockout = &self.shared.lockout;
        if let Some(wait) = lockout.wait(account, self.peer, lockout::now())? {
            return Err(Refused::Locked(wait));
        }
        match check() {
            Ok(session) => {
                lockout.succeeded(account, self.peer)?;
                Ok(session)
            }
            Err(e) if e.code == ErrorCode::NotAuthenticated => {
                lockout.failed(account, self.peer, lockout::now())?;
                Err(Refused::Error(e))
            }
            Err(e) => Err(Refused::Error(e)),
        }
    }
}

/// The lockout account of a token login: its id part (never the secret),
/// bounded like an email.
fn token_account(secret: &str) -> String {
    let id = secret.split('.').next().unwrap_or_default();
    let id: String = id.chars().take(EMAIL_BYTES / 4).collect();
    format!("token:{id}")
}

fn cancel_answer(id: &Json, target: &Json, cancelled: usize) -> Json {
    if cancelled == 0 {
        let e = Error::not_found(format!("no query with id {target} is running"));
        return protocol::error(id, &e, None);
    }
    protocol::ok(
        id,
        Map::from_iter([("cancelled".to_string(), json!(cancelled))]),
    )
}

enum Refused {
    Error(Error),
    Locked(Duration),
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Error(e)
    }
}

fn logged_in(id: &Json, session: &Session) -> Json {
    let actor = session.actor();
    protocol::ok(
        id,
        Map::from_iter([
            ("person".to_string(), json!(actor.person.to_string())),
            (
                "org".to_string(),
                session.org().map_or(Json::Null, |o| json!(o.slug)),
            ),
            ("role".to_string(), json!(actor.role.as_str())),
        ]),
    )
}

/// Runs a query request: binds its parameters, counts the API call, runs
/// its statements in order; the answer line: the last one's result or the
/// first error with the statement's index.
fn query(
    session: &Session,
    runner: &mut Runner<'_>,
    id: &Json,
    text: &str,
    params: Params,
    cancel: &Arc<AtomicBool>,
) -> Vec<u8> {
    runner.set_cancel(Some(cancel.clone()));
    let response = match run_statements(session, runner, text, params, cancel) {
        Ok(outcome) => protocol::result_line(id, &outcome),
        Err((e, statement)) => protocol::line(&protocol::error(id, &e, statement)),
    };
    runner.set_cancel(None);
    response
}

fn run_statements(
    session: &Session,
    runner: &mut Runner<'_>,
    text: &str,
    params: Params,
    cancel: &Arc<AtomicBool>,
) -> std::result::Result<Outcome, (Error, Option<usize>)> {
    let whole = |e: Error| (e, None);
    if cancel.load(Ordering::Relaxed) {
        return Err(whole(Error::new(
            ErrorCode::Cancelled,
            "the query was cancelled before it started",
        )));
    }
    for (name, _) in &params {
        check_param_name(name).map_err(whole)?;
    }
    // Over the org's api_calls limit nothing runs (LIMIT_REACHED).
    session.count_api_call().map_err(whole)?;
    for (name, value) in params {
        runner
            .set_param(name.trim_start_matches('$'), value)
            .map_err(whole)?;
    }
    run_text(runner, text)
}

/// Before a subscription starts: its parameters are bound (as a query's
/// are) and it counts one API call (over the limit: `LIMIT_REACHED`).
fn prepare_subscription(session: &Session, runner: &mut Runner<'_>, params: Params) -> Result<()> {
    for (name, _) in &params {
        check_param_name(name)?;
    }
    session.count_api_call()?;
    for (name, value) in params {
        runner.set_param(name.trim_start_matches('$'), value)?;
    }
    Ok(())
}

fn check_param_name(name: &str) -> Result<()> {
    let bare = name.trim_start_matches('$');
    if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(format!(
            "parameter name {name:?} must be a word (letters, digits, _)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker takes a group's jobs in order, knows while another is
    /// ready behind the one it took, and gives a group's bytes back only
    /// when it comes for the job after the group's last.
    #[test]
    fn jobs_come_in_order_from_their_groups_and_free_their_room_after() {
        let room = Arc::new(Semaphore::new(100));
        let (tx, rx) = mpsc::channel(4);
        let reply = |s: &str| Job::Reply(s.as_bytes().to_vec());
        let permit = |n| room.clone().try_acquire_many_owned(n).unwrap();
        tx.try_send((vec![reply("a"), reply("b")], permit(30)))
            .unwrap();
        tx.try_send((vec![reply("c")], permit(20))).unwrap();
        let mut jobs = Jobs::new(Source::Queue(rx));
        let mut taken = Vec::new();
        let mut take = |jobs: &mut Jobs| match jobs.next(|groups| groups.try_recv().ok()) {
            Some(Job::Reply(line)) => {
                taken.push(String::from_utf8(line).unwrap());
                true
            }
            Some(_) => panic!("not a reply"),
            None => false,
        };
        assert!(take(&mut jobs) && jobs.more()); // a, b behind it
        assert!(take(&mut jobs) && jobs.more()); // b, c queued
        assert_eq!(room.available_permits(), 50);
        assert!(take(&mut jobs) && !jobs.more()); // c, nothing behind
        assert_eq!(
            room.available_permits(),
            80,
            "a and b's group is given back"
        );
        drop(tx);
        assert!(!take(&mut jobs));
        assert_eq!(room.available_permits(), 100);
        assert_eq!(taken, ["a", "b", "c"]);
    }

    /// The lines one read brought are taken whole, up to the limit; a
    /// longer or unfinished one is left for `read_line`.
    #[test]
    fn buffered_lines_are_taken_whole_within_the_limit() {
        use tokio::io::AsyncBufReadExt;
        let input = b"ab\ncde\n\nfghij\nkl".to_vec();
        let mut reader = BufReader::new(&input[..]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(reader.fill_buf()).unwrap();
        let mut buf = Vec::new();
        let mut taken = Vec::new();
        while take_buffered_line(&mut reader, &mut buf, 4) {
            taken.push(String::from_utf8(std::mem::take(&mut buf)).unwrap());
        }
        assert_eq!(taken, ["ab\n", "cde\n", "\n"]);
        assert_eq!(reader.buffer(), b"fghij\nkl");
        assert!(take_buffered_line(&mut reader, &mut buf, 5));
        assert_eq!(buf, b"fghij\n");
        assert!(!take_buffered_line(&mut reader, &mut buf, 5));
        assert_eq!(reader.buffer(), b"kl");
    }

    #[test]
    fn a_waiter_gets_every_job_in_order_spinning_or_sleeping_and_ends_with_the_channel() {
        let (tx, mut rx) = mpsc::channel(4);
        let sender = std::thread::spawn(move || {
            for i in 0..40u32 {
                // Some arrive within a spin, some after it (the waiter has
                // gone to sleep by then), some are already waiting.
                let pause = [5, 300, 0][i as usize % 3];
                std::thread::sleep(Duration::from_micros(pause));
                tx.blocking_send(i).unwrap();
            }
        });
        let mut waiter = Waiter::default();
        let got: Vec<u32> = std::iter::from_fn(|| waiter.next(&mut rx)).collect();
        sender.join().unwrap();
        assert_eq!(got, (0..40).collect::<Vec<_>>());
        assert!(
            !waiter.working,
            "a waiter whose channel closed answers nothing"
        );
    }

    fn lines(rx: &mut mpsc::UnboundedReceiver<Out>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            out.push(match o {
                Out::Line(l) => String::from_utf8(l).unwrap(),
                Out::Start(l, _) => format!("start {}", String::from_utf8(l).unwrap()),
                Out::Stop(l, _) => format!("stop {}", String::from_utf8(l).unwrap()),
            });
        }
        out
    }

    #[test]
    fn pipelined_answers_travel_together_and_a_lone_one_at_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut batch = Batch::new(tx, None);
        assert!(batch.send(Out::Line(b"a\n".to_vec()), false));
        assert_eq!(lines(&mut rx), ["a\n"]);
        // More queued: held, then handed on together with the last.
        assert!(batch.send(Out::Line(b"b\n".to_vec()), true));
        assert!(batch.send(Out::Line(b"c\n".to_vec()), true));
        assert!(lines(&mut rx).is_empty());
        assert!(batch.send(Out::Line(b"d\n".to_vec()), false));
        assert_eq!(lines(&mut rx), ["b\nc\nd\n"]);
        // A subscription's stop keeps its place after what was gathered.
        assert!(batch.send(Out::Line(b"e\n".to_vec()), true));
        assert!(batch.send(Out::Stop(b"f\n".to_vec(), 1), true));
        assert_eq!(lines(&mut rx), ["e\n", "stop f\n"]);
        // The session's end follows what was gathered.
        assert!(batch.send(Out::Line(b"g\n".to_vec()), true));
        batch.end_session(&json!(7), &Error::invalid("gone"));
        let last = lines(&mut rx);
        assert_eq!(last.len(), 1);
        assert!(
            last[0].starts_with("g\n{") && last[0].contains("gone"),
            "{last:?}"
        );
    }

    #[test]
    fn a_lone_answer_goes_to_the_socket_only_while_the_writer_has_written_all() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // Non-blocking, as the server's sockets are.
        socket.set_nonblocking(true).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let direct = Direct {
            socket: Arc::new(socket),
            written: written.clone(),
        };
        let mut batch = Batch::new(tx, Some(direct));
        let mut read = |n: usize| {
            let mut buf = vec![0; n];
            peer.read_exact(&mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert!(batch.send(Out::Line(b"a\n".to_vec()), false));
        assert_eq!(read(2), "a\n");
        assert!(lines(&mut rx).is_empty());
        // What the socket does not take goes to the writer; while the
        // writer has not written it, the next answers follow it there.
        let big = vec![b'x'; 32 << 20];
        assert!(batch.send(Out::Line(big.clone()), false));
        let handed = lines(&mut rx);
        assert_eq!(handed.len(), 1);
        let rest = handed[0].len();
        assert!(rest > 0 && rest < big.len(), "{rest}");
        assert!(batch.send(Out::Line(b"b\n".to_vec()), true));
        assert!(batch.send(Out::Line(b"c\n".to_vec()), false));
        assert_eq!(lines(&mut rx), ["b\nc\n"]);
        assert_eq!(read(big.len() - rest), "x".repeat(big.len() - rest));
        // Once it has, straight to the socket again.
        written.store(2, Ordering::Release);
        assert!(batch.send(Out::Line(b"e\n".to_vec()), false));
        assert_eq!(read(2), "e\n");
        // After a subscription started, never.
        struct NoLines;
        impl crate::server::connection::Feed for NoLines {
            fn key(&self) -> u64 {
                1
            }
            fn fill(&mut self, _: &mut Vec<u8>) -> bool {
                false
            }
        }
        assert!(batch.send(Out::Start(b"s\n".to_vec(), Box::new(NoLines)), false));
        written.store(3, Ordering::Release);
        assert!(batch.send(Out::Line(b"f\n".to_vec()), false));
        assert_eq!(lines(&mut rx), ["start s\n", "f\n"]);
    }

    #[test]
    fn a_batch_is_bounded_in_bytes_and_in_time() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut batch = Batch::new(tx, None);
        let line = vec![b'x'; 1000];
        let mut sent = 0;
        while lines(&mut rx).is_empty() {
            assert!(batch.send(Out::Line(line.clone()), true));
            sent += line.len();
            assert!(sent <= BATCH_BYTES + line.len(), "{sent}");
        }
        assert!(sent >= BATCH_BYTES);
        assert!(batch.send(Out::Line(b"a\n".to_vec()), true));
        std::thread::sleep(BATCH_WAIT * 2);
        assert!(batch.send(Out::Line(b"b\n".to_vec()), true));
        assert_eq!(lines(&mut rx), ["a\nb\n"]);
    }
}
