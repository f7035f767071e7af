//! Plain TCP: the session thread reads its own socket.
//!
//! Handing each read from the connection's task to the session thread cost
//! a thread wake-up per read, on top of the client's and the answer's:
//! with 8 clients pipelining point queries the reactor hop held the server
//! to ~42 % of in-process work; reading on the session thread takes it to
//! ~50 %, and sync mutations from ~75 % to ~80 %. So a plain connection's
//! socket leaves the reactor: the session thread polls and reads it while
//! it has nothing to answer, and the reactor only writes (registered for
//! writability alone, so arriving requests do not wake it).
//!
//! While the thread answers, nobody reads, so a `cancel` sent meanwhile
//! would wait behind the query it cancels. The watchdog (one task per
//! server) therefore reads for a worker busy longer than `WATCH_EVERY`:
//! it makes the jobs of the lines that arrived, setting cancel flags at
//! once as the reader task does, within the queue's bound in bytes.
//! TLS connections keep the reader task (`handler::serve`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncWrite, Interest};

use super::{
    BUSY_RECHECK, Group, JOB_BYTES, LINGER, LINGER_BYTES, PIPELINE_BYTES, ReadEnd, State, Waiter,
    close_at, dispatch, timeout_notice, too_large_notice,
};
use crate::server::Shared;

/// Bytes asked of the socket per read (what tokio's reader buffers).
const READ_BYTES: usize = 8 << 10;
/// How often the watchdog looks, and how long a worker answers before the
/// watchdog reads for it.
const WATCH_EVERY: Duration = Duration::from_millis(10);

/// The connections read on their session threads, for the watchdog.
pub(in crate::server) type Intakes = Mutex<Vec<Weak<Intake>>>;

/// What the session thread and the watchdog share of one connection's
/// reading. Whoever holds `taken` may read the socket.
pub(in crate::server) struct Intake {
    socket: Arc<TcpStream>,
    state: Arc<State>,
    max_line: usize,
    /// Set when the server shuts down or the writer gave up: nothing more
    /// is read (whole lines read already are answered).
    stopped: AtomicBool,
    taken: Mutex<Taken>,
}

#[derive(Default)]
struct Taken {
    /// Bytes read and not yet made into jobs: at most the start of a line
    /// once the lines before it are taken.
    buf: Vec<u8>,
    /// Jobs the watchdog made while the worker answered, and what they
    /// count against `PIPELINE_BYTES`.
    early: Group,
    early_bytes: usize,
    /// Since when the worker has been answering the group it took (None:
    /// it is reading).
    busy_since: Option<Instant>,
    /// How reading ended, once it has.
    end: Option<ReadEnd>,
}

impl Intake {
    /// Moves whole lines of `buf` into jobs on `group`, counting them in
    /// `bytes`, until `bytes` reaches `budget`; the end if a line is
    /// longer than allowed (then the `TOO_LARGE` notice is the last job).
    fn take_lines(
        &self,
        buf: &mut Vec<u8>,
        group: &mut Group,
        bytes: &mut usize,
        budget: usize,
    ) -> Option<ReadEnd> {
        let mut start = 0;
        let mut end = None;
        while *bytes < budget {
            let rest = &buf[start..];
            match memchr::memchr(b'\n', rest) {
                Some(n) if n <= self.max_line => {
                    group.extend(dispatch(&rest[..=n], &self.state));
                    *bytes += (n + 1).max(JOB_BYTES);
                    start += n + 1;
                }
                None if rest.len() <= self.max_line => break,
                _ => {
                    group.push(too_large_notice(self.max_line));
                    end = Some(ReadEnd::TooLarge);
                    break;
                }
            }
        }
        buf.drain(..start);
        end
    }

    /// Reads what the socket has (without waiting) onto `buf`: the bytes
    /// read, 0 at the end of the stream.
    fn fill(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let len = buf.len();
        buf.resize(len + READ_BYTES, 0);
        let read = (&*self.socket).read(&mut buf[len..]);
        buf.truncate(len + *read.as_ref().unwrap_or(&0));
        read
    }

    /// Stops reading and wakes a session thread waiting for the socket.
    pub(in crate::server) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = self.socket.shutdown(Shutdown::Read);
    }

    /// The watchdog's turn: for a worker answering longer than
    /// `WATCH_EVERY`, reads what arrived and makes its jobs (so a `cancel`
    /// reaches what runs), up to the queue's bound.
    fn read_ahead(&self) {
        let Some(mut taken) = self.taken.try_lock() else {
            return;
        };
        let taken = &mut *taken;
        let busy_long = taken
            .busy_since
            .is_some_and(|since| since.elapsed() >= WATCH_EVERY);
        if !busy_long || taken.end.is_some() || self.stopped.load(Ordering::SeqCst) {
            return;
        }
        loop {
            let end = self.take_lines(
                &mut taken.buf,
                &mut taken.early,
                &mut taken.early_bytes,
                PIPELINE_BYTES,
            );
            if end.is_some() {
                taken.end = end;
                return;
            }
            if taken.early_bytes >= PIPELINE_BYTES {
                return;
            }
            match self.fill(&mut taken.buf) {
                Ok(0) => {
                    taken.end = Some(ReadEnd::Eof);
                    return;
                }
                Ok(_) => {}
                Err(e) if is_transient(&e) => return,
                Err(_) => {
                    taken.end = Some(ReadEnd::Failed);
                    return;
                }
            }
        }
    }

    /// After `TOO_LARGE`: reads and drops the rest of what the client
    /// sends, for a while, so closing does not reset the connection before
    /// the client has read the error.
    pub(in crate::server) fn linger(&self) {
        if self.taken.lock().end != Some(ReadEnd::TooLarge) {
            return;
        }
        let until = Instant::now() + LINGER;
        let mut dropped = 0u64;
        let mut buf = Vec::new();
        while dropped < LINGER_BYTES {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_readable(&self.socket, left) {
                return;
            }
            buf.clear();
            match self.fill(&mut buf) {
                Ok(0) => return,
                Ok(n) => dropped += n as u64,
                Err(e) if is_transient(&e) => {}
                Err(_) => return,
            }
        }
    }
}

/// A read that found nothing yet (or was interrupted): try again later.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Waits up to `timeout` for `socket` to have something to read (or to
/// have ended); false if the time ran out.
fn wait_readable(socket: &TcpStream, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(socket, PollFlags::IN)];
    // A day at most: the caller looks at the clock and waits again.
    let timeout = Timespec::try_from(timeout.min(Duration::from_secs(86_400))).ok();
    match poll(&mut fds, timeout.as_ref()) {
        Ok(n) => n > 0,
        // Interrupted: the caller looks at the clock and waits again.
        Err(_) => false,
    }
}

/// The session thread's reading: the requests of a plain connection, a
/// group per read, until the client leaves, a limit is hit or the server
/// shuts down.
pub(super) struct Reader {
    intake: Arc<Intake>,
    shared: Arc<Shared>,
    opened: Instant,
    last_line: Instant,
    waiter: Waiter,
    ended: bool,
}

impl Reader {
    /// A reader of `socket` (plain TCP, non-blocking) for the session of
    /// `state`; registered with the watchdog.
    pub(super) fn new(
        socket: Arc<TcpStream>,
        state: Arc<State>,
        shared: Arc<Shared>,
        opened: Instant,
    ) -> (Reader, Arc<Intake>) {
        let intake = Arc::new(Intake {
            socket,
            state,
            max_line: shared.limits.max_line_bytes,
            stopped: AtomicBool::new(false),
            taken: Mutex::new(Taken::default()),
        });
        shared.intakes.lock().push(Arc::downgrade(&intake));
        let reader = Reader {
            intake: intake.clone(),
            shared,
            opened,
            last_line: opened,
            waiter: Waiter::default(),
            ended: false,
        };
        (reader, intake)
    }

    /// The jobs of the next read (with those the watchdog made); None once
    /// reading has ended and everything read is taken.
    pub(super) fn next_group(&mut self) -> Option<Group> {
        if self.ended {
            return None;
        }
        let intake = &*self.intake;
        let limits = &self.shared.limits;
        loop {
            let wait = {
                let mut guard = intake.taken.lock();
                let taken = &mut *guard;
                taken.busy_since = None;
                let mut group = std::mem::take(&mut taken.early);
                taken.early_bytes = 0;
                let mut bytes = 0;
                if let Some(end) =
                    intake.take_lines(&mut taken.buf, &mut group, &mut bytes, usize::MAX)
                {
                    taken.end = Some(end);
                }
                if intake.stopped.load(Ordering::SeqCst) && taken.end.is_none() {
                    taken.end = Some(ReadEnd::Shutdown);
                }
                self.ended = taken.end.is_some();
                if !group.is_empty() {
                    self.last_line = Instant::now();
                    taken.busy_since = Some(self.last_line);
                    self.waiter.set_working(true);
                    return Some(group);
                }
                if self.ended {
                    return None;
                }
                self.waiter.set_working(false);
                // A client that sends its next request as soon as it has
                // the answer finds the thread awake (see `SPIN`).
                let mut end = None;
                let spun = self.waiter.spin(|| match intake.fill(&mut taken.buf) {
                    Ok(0) => {
                        end = Some(ReadEnd::Eof);
                        true
                    }
                    Ok(_) => true,
                    Err(e) if is_transient(&e) => false,
                    Err(_) => {
                        end = Some(ReadEnd::Failed);
                        true
                    }
                });
                if spun {
                    taken.end = taken.end.or(end);
                    continue;
                }
                // Until the idle (or auth) deadline; past it, a connection
                // with subscriptions is not idle: look again now and then.
                match self.close_at().saturating_duration_since(Instant::now()) {
                    wait if wait.is_zero() && intake.state.is_busy() => BUSY_RECHECK,
                    wait => wait,
                }
            };
            // Waits unlocked; the watchdog reads only for a busy worker.
            let readable = wait_readable(&intake.socket, wait);
            let mut guard = intake.taken.lock();
            let taken = &mut *guard;
            if readable {
                match intake.fill(&mut taken.buf) {
                    Ok(0) => taken.end = Some(ReadEnd::Eof),
                    Ok(_) => {}
                    Err(e) if is_transient(&e) => {}
                    Err(_) => taken.end = Some(ReadEnd::Failed),
                }
            } else if !intake.state.is_busy() && Instant::now() >= self.close_at() {
                taken.early.push(timeout_notice(&intake.state, limits));
                taken.end = Some(ReadEnd::TimedOut);
            }
        }
    }

    fn close_at(&self) -> Instant {
        close_at(
            &self.intake.state,
            self.opened,
            self.last_line,
            &self.shared.limits,
        )
    }

    /// Whether a job waits to be taken.
    pub(super) fn more(&self) -> bool {
        let taken = self.intake.taken.lock();
        !taken.early.is_empty() || (taken.end.is_none() && taken.buf.contains(&b'\n'))
    }
}

/// The watchdog: reads for session threads busy answering (see the module
/// comment). Runs until the server's runtime ends.
pub(in crate::server) async fn watch(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let live: Vec<Arc<Intake>> = {
            let mut intakes = shared.intakes.lock();
            intakes.retain(|i| i.strong_count() > 0);
            intakes.iter().filter_map(Weak::upgrade).collect()
        };
        for intake in live {
            intake.read_ahead();
        }
    }
}

/// The reactor's half of a plain connection: writes only. Registered for
/// writability alone, so requests arriving do not wake the reactor.
pub(super) struct Writer(AsyncFd<TcpStream>);

impl Writer {
    // Deprecated in tokio 1.54 for types that may close or swap their fd
    // while registered (the replacement is `unsafe`, which the crate
    // forbids); a `TcpStream` owns its fd and keeps it until dropped.
    #[allow(deprecated)]
    pub(super) fn new(socket: &TcpStream) -> io::Result<Writer> {
        Ok(Writer(AsyncFd::with_interest(
            socket.try_clone()?,
            Interest::WRITABLE,
        )?))
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.0.poll_write_ready(cx))?;
            if let Ok(written) = ready.try_io(|socket| socket.get_ref().write(buf)) {
                return Poll::Ready(written);
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::server::handler::Job;

    /// An intake on one end of a loopback connection; the other end.
    fn intake(max_line: usize) -> (Intake, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let intake = Intake {
            socket: Arc::new(socket),
            state: Arc::new(State::default()),
            max_line,
            stopped: AtomicBool::new(false),
            taken: Mutex::new(Taken::default()),
        };
        (intake, client)
    }

    /// Whole lines become jobs up to the budget; the start of a line waits
    /// for the rest; one past the limit ends reading with `TOO_LARGE`.
    #[test]
    fn lines_are_taken_whole_within_the_limit_and_the_budget() {
        let (intake, _client) = intake(5);
        let mut buf = b"ab\ncde\n\nfghij\nkl".to_vec();
        let (mut group, mut bytes) = (Group::new(), 0);
        assert_eq!(
            intake.take_lines(&mut buf, &mut group, &mut bytes, 2 * JOB_BYTES),
            None
        );
        assert_eq!((group.len(), bytes), (2, 2 * JOB_BYTES));
        assert_eq!(buf, b"\nfghij\nkl", "stopped at the budget");
        assert_eq!(
            intake.take_lines(&mut buf, &mut group, &mut bytes, usize::MAX),
            None
        );
        assert_eq!(group.len(), 3, "a blank line asks nothing");
        assert_eq!(buf, b"kl");
        buf.extend_from_slice(b"mnop");
        let end = intake.take_lines(&mut buf, &mut group, &mut bytes, usize::MAX);
        assert_eq!(end, Some(ReadEnd::TooLarge));
        match group.last() {
            Some(Job::Reply(line)) => assert!(String::from_utf8_lossy(line).contains("TOO_LARGE")),
            _ => panic!("no notice"),
        }
    }

    /// One read takes at most `READ_BYTES`, however large the buffer has
    /// grown (a line near the limit grows it): what one read holds bounds
    /// the jobs of one group.
    #[test]
    fn a_read_takes_at_most_read_bytes_whatever_the_buffer_holds() {
        let (intake, mut client) = intake(1 << 20);
        client.write_all(&vec![b'\n'; 8 * READ_BYTES]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let start = b"{\"op\":";
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(start);
        assert_eq!(intake.fill(&mut buf).unwrap(), READ_BYTES);
        assert_eq!(buf.len(), start.len() + READ_BYTES);
    }

    /// The watchdog reads only for a worker answering longer than
    /// `WATCH_EVERY`, and a cancel it reads stops the running query at once.
    #[test]
    fn the_watchdog_reads_for_a_busy_worker_and_cancels_at_once() {
        let (intake, mut client) = intake(1 << 20);
        let running = intake.state.register(&serde_json::json!(7));
        client
            .write_all(b"{\"id\":8,\"op\":\"cancel\",\"target\":7}\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        intake.read_ahead();
        assert!(
            intake.taken.lock().buf.is_empty(),
            "a reading worker reads itself"
        );
        intake.taken.lock().busy_since = Some(Instant::now());
        intake.read_ahead();
        assert!(intake.taken.lock().early.is_empty(), "busy too briefly");
        intake.taken.lock().busy_since = Some(Instant::now() - 2 * WATCH_EVERY);
        intake.read_ahead();
        assert!(running.load(Ordering::Relaxed), "the flag is set");
        let taken = intake.taken.lock();
        assert!(matches!(
            taken.early.as_slice(),
            [Job::Cancel { cancelled: 1, .. }]
        ));
        assert_eq!(taken.early_bytes, JOB_BYTES);
    }
}
