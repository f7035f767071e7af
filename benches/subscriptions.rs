//! Write throughput of the standard mutation with 0 and with 100
//! subscribers (issue 13: "100 subscribers: write throughput at least 80%
//! of none"), in the same run, as a ratio.
//!
//! The subscribers are 100 subscriptions to every event of the org (two
//! per mutation), drained by one consumer thread that formats each event
//! line as a connection's writer does — the server's network side, minus
//! the sockets. Both durability modes: `relaxed` shows the cost best
//! (nothing hides it), `sync` is the default.
//!
//! Measured twice: by criterion, and interleaved (blocks with and without
//! subscribers alternating on one open database), whose ratio is printed.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, black_box};
use onedb::query::run::Runner;
use onedb::{Durability, Session, Subscription};

const SUBSCRIBERS: usize = 100;

/// 100 subscriptions and the thread that drains them.
struct Subscribers {
    subscriptions: Vec<Subscription>,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    consumer: Option<JoinHandle<()>>,
}

impl Subscribers {
    fn start(session: &Session) -> Subscribers {
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<std::thread::Thread>();
        let consumer_thread = Arc::new(parking::Slot::default());
        let mut runner = Runner::new(session);
        let subscriptions: Vec<Subscription> = (0..SUBSCRIBERS)
            .map(|_| {
                let slot = consumer_thread.clone();
                runner
                    .subscribe("EVENTS", None, 10_000, Arc::new(move || slot.unpark()))
                    .expect("subscribe")
            })
            .collect();
        let readers: Vec<_> = subscriptions.iter().map(Subscription::reader).collect();
        let consumer = std::thread::spawn({
            let stop = stop.clone();
            let received = received.clone();
            move || {
                let _ = tx.send(std::thread::current());
                let mut line = Vec::with_capacity(1 << 16);
                while !stop.load(Ordering::SeqCst) {
                    let mut any = false;
                    for reader in &readers {
                        let taken = reader.take(256);
                        assert!(taken.ended.is_none(), "a subscriber was cancelled");
                        for event in &taken.events {
                            line.clear();
                            line.extend_from_slice(b"{\"id\":1,\"event\":");
                            line.extend_from_slice(event.json.as_bytes());
                            line.extend_from_slice(b"}\n");
                            black_box(&line);
                        }
                        any |= !taken.events.is_empty();
                        received.fetch_add(taken.events.len() as u64, Ordering::SeqCst);
                    }
                    if !any {
                        std::thread::park_timeout(Duration::from_millis(5));
                    }
                }
            }
        });
        consumer_thread.set(rx.recv().expect("consumer started"));
        Subscribers {
            subscriptions,
            stop,
            received,
            consumer: Some(consumer),
        }
    }

    /// Waits until the consumer has taken `events` per subscriber.
    fn drained(&self, events: u64) {
        let started = Instant::now();
        while self.received.load(Ordering::SeqCst) < events * SUBSCRIBERS as u64 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "subscribers did not receive every event"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(c) = self.consumer.take() {
            c.thread().unpark();
            let _ = c.join();
        }
        self.subscriptions.clear();
    }
}

/// The consumer's thread, once known, for the wake callbacks.
mod parking {
    use std::sync::OnceLock;
    use std::thread::Thread;

    #[derive(Default)]
    pub struct Slot(OnceLock<Thread>);

    impl Slot {
        pub fn set(&self, t: Thread) {
            let _ = self.0.set(t);
        }
        pub fn unpark(&self) {
            if let Some(t) = self.0.get() {
                t.unpark();
            }
        }
    }
}

fn bench(c: &mut Criterion, group: &str, durability: Durability) {
    let sync = durability == Durability::Sync;
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, owner) = common::db_with_owner(dir.path(), durability);
    let id = owner.actor().person;
    let mut n = 1_000;
    g.bench_function("0_subscribers", |b| {
        b.iter(|| {
            n += 1;
            black_box(common::standard_mutation(&owner, id, n))
        })
    });
    {
        let subscribers = Subscribers::start(&owner);
        g.bench_function("100_subscribers", |b| {
            b.iter(|| {
                n += 1;
                black_box(common::standard_mutation(&owner, id, n))
            })
        });
        drop(subscribers);
    }
    g.finish();
    assert_eq!(db.subscriptions(), 0);

    // Interleaved: blocks of mutations without and with subscribers.
    let block: u64 = if sync { 100 } else { 2_000 };
    let rounds = 6;
    let (mut none, mut hundred) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..block {
            n += 1;
            common::standard_mutation(&owner, id, n);
        }
        none.push(block as f64 / started.elapsed().as_secs_f64());

        let subscribers = Subscribers::start(&owner);
        let started = Instant::now();
        for _ in 0..block {
            n += 1;
            common::standard_mutation(&owner, id, n);
        }
        hundred.push(block as f64 / started.elapsed().as_secs_f64());
        // Two events per mutation, every one delivered to all 100.
        subscribers.drained(2 * block);
        drop(subscribers);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (none, hundred) = (median(&mut none), median(&mut hundred));
    eprintln!(
        "{group}: interleaved medians: 0 subscribers {none:.0} mutations/s, \
         {SUBSCRIBERS} subscribers {hundred:.0} mutations/s: ratio {:.2}",
        hundred / none
    );
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    bench(&mut c, "subscribers_relaxed", Durability::Relaxed);
    bench(&mut c, "subscribers_sync", Durability::Sync);
    c.final_summary();
}
