//! `onedb serve`: the TCP server of docs/protocol.md. Shaped like
//! mini-redis: a listener whose accept loop takes a slot of a semaphore
//! per connection (one more than the cap is told so and closed), one
//! handler per connection, shutdown by broadcast on SIGINT/SIGTERM, then a
//! wait until every connection has answered what it had read.
//!
//! Files: `limits.rs` the configuration, `connection.rs` framing,
//! `protocol.rs` the JSON requests and responses, `handler.rs` one
//! connection, `subscribe.rs` its subscriptions, `lockout.rs` the
//! failed-login waits, `tls.rs` the optional TLS layer; `client.rs` the
//! other end, for `onedb connect`.

pub mod client;
mod connection;
mod handler;
mod limits;
mod lockout;
mod protocol;
mod subscribe;
mod tls;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_rustls::TlsAcceptor;

use crate::db::Database;
use crate::error::{Error, ErrorCode, Result};
pub use crate::server::limits::{Limits, parse_duration};
use crate::server::lockout::Lockout;

/// What every connection of one server shares.
struct Shared {
    db: Database,
    limits: Limits,
    lockout: Lockout,
    /// Password checks running at once (each holds argon2's memory).
    password_checks: Semaphore,
    /// For the session threads, which wait on `password_checks`.
    runtime: tokio::runtime::Handle,
    /// Plain connections, read by their session threads: the watchdog
    /// reads for those busy answering.
    #[cfg(unix)]
    intakes: handler::Intakes,
}

/// Extra time, beyond a query's budget, that shutdown waits for
/// connections to write their last answers before it exits anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long counted API calls wait in memory before they are stored
/// (`db/api_calls.rs`): what a crash may forget.
const STORE_API_CALLS_EVERY: Duration = Duration::from_secs(1);

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Serves `db` on `listen` (inside TLS when `tls` is given) until SIGINT or
/// SIGTERM; prints `listening on ADDR` (the bound address: port 0 picks
/// one) to `out` once it accepts.
pub fn serve(
    db: Database,
    listen: &str,
    limits: Limits,
    tls: Option<&TlsFiles>,
    out: &mut impl Write,
) -> Result<()> {
    limits.validate()?;
    let tls = tls.map(|t| tls::acceptor(&t.cert, &t.key)).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("onedb-net")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {listen}: {e}")))?;
        // Handlers first, so a signal right after the address is printed
        // is a clean shutdown.
        let signals = Signals::new()?;
        // Made once, now: the first unknown email costs no extra hash.
        crate::auth::dummy_hash();
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
        let lockout = Lockout::for_database(limits.login_lockout, &db);
        let shared = Arc::new(Shared {
            db,
            limits,
            lockout,
            password_checks: Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
            runtime: tokio::runtime::Handle::current(),
            #[cfg(unix)]
            intakes: handler::Intakes::default(),
        });
        #[cfg(unix)]
        tokio::spawn(handler::watch(shared.clone()));
        tokio::spawn(store_api_calls(shared.db.clone()));
        accept_until_signal(listener, shared, tls, signals).await
    })
}

/// Stores the API calls counted in memory, every
/// `STORE_API_CALLS_EVERY` (the last ones when the server stops). A
/// failed store keeps its calls pending for the next.
async fn store_api_calls(db: Database) {
    let mut every = tokio::time::interval(STORE_API_CALLS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let db = db.clone();
        // A commit: off the reactor.
        match tokio::task::spawn_blocking(move || db.store_api_calls()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("onedb serve: cannot store API calls yet: {e}"),
            Err(e) => eprintln!("onedb serve: storing API calls failed: {e}"),
        }
    }
}

/// The accept loop, then the drain.
async fn accept_until_signal(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    mut signals: Signals,
) -> Result<()> {
    let limits = shared.limits;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    // Every connection holds a sender; recv() ends when all are gone.
    let (drained_tx, mut drained_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let opened = Instant::now();
                    let _ = stream.set_nodelay(true);
                    let tls = tls.clone();
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let shared = shared.clone();
                            let shutdown = notify_shutdown.subscribe();
                            let drained = drained_tx.clone();
                            tokio::spawn(async move {
                                match tls {
                                    None => serve_plain(stream, peer, opened, shared, shutdown).await,
                                    // The handshake counts against the auth timeout.
                                    Some(tls) => {
                                        let handshake = tokio::time::timeout(
                                            limits.auth_timeout,
                                            tls.accept(stream),
                                        );
                                        if let Ok(Ok(stream)) = handshake.await {
                                            handler::serve(
                                                stream, peer, opened, shared, shutdown,
                                            )
                                            .await;
                                        }
                                    }
                                }
                                drop(slot);
                                drop(drained);
                            });
                        }
                        Err(_) => {
                            let cap = limits.max_connections;
                            tokio::spawn(async move {
                                match tls {
                                    None => refuse(stream, peer, cap).await,
                                    Some(tls) => {
                                        let handshake =
                                            tokio::time::timeout(REFUSE_TIME, tls.accept(stream));
                                        if let Ok(Ok(stream)) = handshake.await {
                                            refuse(stream, peer, cap).await;
                                        }
                                    }
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors, most likely: let some close.
                    eprintln!("onedb serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = signals.recv() => break,
        }
    }
    drop(listener);
    let _ = notify_shutdown.send(());
    drop(drained_tx);
    let grace = limits.query_timeout + DRAIN_GRACE;
    if tokio::time::timeout(grace, drained_rx.recv())
        .await
        .is_err()
    {
        eprintln!(
            "onedb serve: some connections did not finish within {} s; closing them",
            grace.as_secs()
        );
    }
    shared.db.store_api_calls()?;
    shared.db.flush_indexes()
}

/// A plain TCP connection: on Unix its socket leaves the reactor for the
/// session thread, which reads it (`handler::serve_direct`).
async fn serve_plain(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    opened: Instant,
    shared: Arc<Shared>,
    shutdown: broadcast::Receiver<()>,
) {
    #[cfg(unix)]
    match stream.into_std() {
        Ok(socket) => handler::serve_direct(socket, peer, opened, shared, shutdown).await,
        Err(e) => eprintln!("onedb serve: cannot serve {peer}: {e}"),
    }
    #[cfg(not(unix))]
    handler::serve(stream, peer, opened, shared, shutdown).await
}

/// How long a connection over the cap may take to be told so.
const REFUSE_TIME: Duration = Duration::from_secs(1);

/// One connection over the cap: an error line, then close.
async fn refuse(mut stream: impl AsyncWrite + Unpin, peer: SocketAddr, cap: usize) {
    let notice = protocol::notice(
        ErrorCode::LimitReached,
        format!("the server has its maximum of {cap} connections: try again later"),
    );
    let written = tokio::time::timeout(REFUSE_TIME, async {
        stream.write_all(&protocol::line(&notice)).await?;
        stream.shutdown().await
    })
    .await;
    if let Ok(Err(e)) = written {
        eprintln!("onedb serve: refusing {peer}: {e}");
    }
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
