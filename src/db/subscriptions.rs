//! Event subscriptions: every committed event that passes a filter, once,
//! in commit order, for one person in one org.
//!
//! One dispatcher thread per database takes each commit's events from the
//! commit leader (`storage::EventHook`: in memory, no read of the store),
//! decodes each event once and hands it to every subscription of its org
//! whose filter it passes. A subscription's queue is bounded: one that
//! falls behind is cancelled (its owner learns the last commit it was fully
//! sent, and may resume after it) — the leader never waits for a
//! subscriber and no queue grows past its bound. The hand-over from the
//! leader to the dispatcher is bounded too (`MAX_IN_FLIGHT_BYTES`); past
//! it every subscription is cancelled the same way.
//!
//! On a shared store (several servers over one etcd cluster) the commit
//! leader's events are not used: a follower thread reads each commit's
//! events from the store instead, in commit order, every `FOLLOW_TICK`, so
//! commits made through other servers reach this server's subscribers, in
//! the same order as this server's own.
//!
//! Resuming (`after`): a subscription registers for live events first,
//! then reads the org's commit-order index (`keys` family 13) from `after`
//! on, in chunks on its own thread, while live events wait in a second
//! bounded buffer; when the reader reaches the end it appends the live
//! events past its last position. Positions (commit, event id) only grow,
//! so whatever both saw is sent once, and nothing falls between: a commit
//! the leader reports before the registration was written before it, so
//! the reader's later snapshots hold it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak, mpsc};

use parking_lot::{Condvar, Mutex};

use crate::db::Session;
use crate::error::{Error, Result};
use crate::graph::{EventFilter, event_json};
use crate::keys::{self, Key, Tenant, TenantKey};
use crate::model::{Event, Id, Org};
use crate::storage::{CommittedEvents, EventHook, Scope, Storage};

/// Bytes of event records handed to the dispatcher and not yet dispatched.
const MAX_IN_FLIGHT_BYTES: usize = 64 << 20;
/// Commit-order entries a resuming subscription reads per snapshot (it
/// finishes the commit it is in).
const CATCH_UP_CHUNK: usize = 512;

/// How often the dispatcher checks that every subscriber may still read:
/// a subscription ends this long at most after its token is revoked or
/// expires, or its person is removed.
const LIVENESS_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// How often, on a shared store, the hub reads the commits made since
/// (the delay before another server's commit reaches a subscriber).
const FOLLOW_TICK: std::time::Duration = std::time::Duration::from_millis(20);
/// How often that thread looks at the store while no one subscribes
/// (each look is a round trip to a shared store).
const IDLE_LOOK: std::time::Duration = std::time::Duration::from_secs(1);

/// The most events a subscription's queue holds (`--subscription-queue`).
pub const MAX_QUEUE: usize = 10_000_000;

/// Called when a subscription has something to take (or has ended) and
/// had nothing before.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

/// An event as a subscription sends it: its position and its JSON object
/// (`graph::event_json`, `seq` included), serialized once for every
/// subscription that gets it.
#[derive(Debug)]
pub struct SentEvent {
    pub seq: u64,
    pub id: Id,
    pub json: Box<str>,
}

impl SentEvent {
    fn of(event: &Event, seq: u64) -> SentEvent {
        SentEvent {
            seq,
            id: event.id,
            json: event_json(event).to_string().into_boxed_str(),
        }
    }

    fn position(&self) -> (u64, u128) {
        (self.seq, self.id.raw())
    }
}

/// How a subscription ended, told once its queue is empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// It fell behind its queue's bound; `last_seq` is the last commit
    /// whose matching events it was all sent: resume after it.
    Cancelled { last_seq: u64, message: String },
    /// Reading the store for it failed.
    Failed { last_seq: u64, error: Error },
}

/// What `take` found.
#[derive(Debug, Default)]
pub struct Taken {
    pub events: Vec<Arc<SentEvent>>,
    /// Set once, after the last event: the subscription is over.
    pub ended: Option<Ended>,
}

/// The per-database hub: the registry of subscriptions and the way to
/// the dispatcher. Installed as the commit leader's event hook on the
/// first subscription.
pub(crate) struct Hub {
    registry: Arc<Mutex<Registry>>,
    to_dispatcher: mpsc::Sender<Dispatch>,
    in_flight: Arc<AtomicUsize>,
    /// Set when a commit's events could not be handed over; cleared by the
    /// dispatcher when it cancels every subscription for it.
    lost: AtomicBool,
    /// A shared store: events come from the store, not the leader.
    follows_store: bool,
}

#[derive(Default)]
struct Registry {
    /// Copied on change, so the dispatcher takes an org's list with one
    /// reference count and never holds the lock while it delivers.
    by_tenant: HashMap<Tenant, Arc<Vec<Arc<Feed>>>>,
    count: usize,
}

impl Registry {
    fn add(&mut self, feed: Arc<Feed>) {
        let list = self.by_tenant.entry(feed.tenant).or_default();
        let mut copy = Vec::clone(list);
        copy.push(feed);
        *list = Arc::new(copy);
        self.count += 1;
    }

    fn all(&self) -> Vec<Arc<Feed>> {
        self.by_tenant
            .values()
            .flat_map(|l| l.iter().cloned())
            .collect()
    }

    fn remove(&mut self, feed: &Arc<Feed>) {
        if let Some(list) = self.by_tenant.get_mut(&feed.tenant) {
            let before = list.len();
            let copy: Vec<_> = list
                .iter()
                .filter(|f| !Arc::ptr_eq(f, feed))
                .cloned()
                .collect();
            self.count -= before - copy.len();
            if copy.is_empty() {
                self.by_tenant.remove(&feed.tenant);
            } else {
                *list = Arc::new(copy);
            }
        }
    }
}

enum Dispatch {
    Commit(CommittedEvents, usize),
    /// Events were dropped at the hand-over: cancel everyone.
    Lost,
}

impl EventHook for Hub {
    fn wanted(&self) -> bool {
        !self.follows_store && self.registry.lock().count > 0
    }

    fn committed(&self, events: CommittedEvents) {
        let bytes: usize = events.events.iter().map(|(_, _, v)| v.len()).sum();
        if self.in_flight.load(Ordering::SeqCst) + bytes > MAX_IN_FLIGHT_BYTES {
            if !self.lost.swap(true, Ordering::SeqCst) {
                let _ = self.to_dispatcher.send(Dispatch::Lost);
            }
            return;
        }
        self.in_flight.fetch_add(bytes, Ordering::SeqCst);
        let _ = self.to_dispatcher.send(Dispatch::Commit(events, bytes));
    }
}

impl Hub {
    /// A hub with its dispatcher thread (which ends when the hub does);
    /// on a shared store also the thread that reads commits from it.
    pub(crate) fn start(storage: &Arc<Storage>) -> Result<Arc<Hub>> {
        let (tx, rx) = mpsc::channel();
        let registry = Arc::new(Mutex::new(Registry::default()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let follows_store = storage.engine().shared();
        let hub = Arc::new(Hub {
            registry: registry.clone(),
            to_dispatcher: tx,
            in_flight: in_flight.clone(),
            lost: AtomicBool::new(false),
            follows_store,
        });
        let weak = Arc::downgrade(&hub);
        std::thread::Builder::new()
            .name("onedb-events".into())
            .spawn(move || dispatch(&rx, &registry, &in_flight, &weak))?;
        if follows_store {
            // Before any subscription registers, so none starts earlier.
            let seen = storage.last_commit()?;
            let (storage, hub) = (Arc::downgrade(storage), Arc::downgrade(&hub));
            std::thread::Builder::new()
                .name("onedb-events-follow".into())
                .spawn(move || follow_store(&storage, &hub, seen))?;
        }
        Ok(hub)
    }

    /// How many subscriptions are open.
    pub(crate) fn count(&self) -> usize {
        self.registry.lock().count
    }

    fn remove(&self, feed: &Arc<Feed>) {
        self.registry.lock().remove(feed);
    }
}

/// A shared store: hands the dispatcher the events of every commit after
/// `seen`, read from the store in commit order, until the hub or the
/// store is gone.
fn follow_store(storage: &Weak<Storage>, hub: &Weak<Hub>, mut seen: u64) {
    let mut looked = std::time::Instant::now();
    loop {
        std::thread::sleep(FOLLOW_TICK);
        let (Some(storage), Some(hub)) = (storage.upgrade(), hub.upgrade()) else {
            return;
        };
        // With no subscription, only keep `seen` recent: a subscription
        // that registers later starts after it, and is caught up to at
        // the next tick (its feed drops what precedes its start).
        if hub.count() == 0 && looked.elapsed() < IDLE_LOOK {
            continue;
        }
        looked = std::time::Instant::now();
        if let Err(e) = follow_once(&storage, &hub, &mut seen) {
            eprintln!(
                "onedb: reading events from the store: {} (will retry)",
                e.message
            );
        }
    }
}

/// One step of `follow_store`.
fn follow_once(storage: &Storage, hub: &Hub, seen: &mut u64) -> Result<()> {
    let txn = storage.read(Scope::platform(Tenant::PLATFORM));
    let last = match txn.get(&keys::commit_seq())? {
        Some(bytes) => keys::decode_u64(&bytes)?,
        None => 0,
    };
    // Read before the registry: a subscription registered after this
    // look starts at or after `last`, so skipping to it loses nothing.
    let tenants: Vec<Tenant> = hub.registry.lock().by_tenant.keys().copied().collect();
    if last <= *seen || tenants.is_empty() {
        *seen = last.max(*seen);
        return Ok(());
    }
    let mut commits: BTreeMap<u64, Vec<(Tenant, Id, Vec<u8>)>> = BTreeMap::new();
    for tenant in tenants {
        let (from, to) = (
            tenant.events_from_seq(*seen + 1),
            tenant.events_from_seq(last + 1),
        );
        for entry in txn.scan_range(&from, &to, false)? {
            let (key, _) = entry?;
            if let Key::Tenant(_, TenantKey::EventBySeq { seq, event }) = keys::decode(&key)?
                && let Some(bytes) = txn.get(&tenant.event(event))?
            {
                commits.entry(seq).or_default().push((tenant, event, bytes));
            }
        }
    }
    for (commit, mut events) in commits {
        events.sort_unstable_by_key(|(tenant, id, _)| (*tenant, *id));
        hub.committed(CommittedEvents { commit, events });
    }
    *seen = last;
    Ok(())
}

/// The dispatcher: one pass over each commit's events for all
/// subscriptions.
fn dispatch(
    rx: &mpsc::Receiver<Dispatch>,
    registry: &Mutex<Registry>,
    in_flight: &AtomicUsize,
    hub: &std::sync::Weak<Hub>,
) {
    let mut checked = std::time::Instant::now();
    loop {
        let message = match rx.recv_timeout(LIVENESS_TICK) {
            Ok(message) => Some(message),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if checked.elapsed() >= LIVENESS_TICK {
            end_the_unauthorized(registry);
            checked = std::time::Instant::now();
        }
        let Some(message) = message else {
            continue;
        };
        match message {
            Dispatch::Lost => {
                if let Some(hub) = hub.upgrade() {
                    hub.lost.store(false, Ordering::SeqCst);
                }
                let all = std::mem::take(&mut *registry.lock()).all();
                for feed in all {
                    feed.cancel("the server fell behind delivering events");
                }
            }
            Dispatch::Commit(commit, bytes) => {
                deliver(&commit, registry);
                in_flight.fetch_sub(bytes, Ordering::SeqCst);
            }
        }
    }
}

/// Ends the subscriptions whose session is no longer live (revoked or
/// expired token, removed person): cheap while nobody's access changed.
fn end_the_unauthorized(registry: &Mutex<Registry>) {
    let all = registry.lock().all();
    for feed in all {
        if let Err(e) = feed.owner.check_live() {
            feed.fail(e);
        }
    }
}

/// Hands one commit's events to the subscriptions of their orgs.
fn deliver(commit: &CommittedEvents, registry: &Mutex<Registry>) {
    let mut i = 0;
    let events = &commit.events;
    while i < events.len() {
        let tenant = events[i].0;
        let end = i + events[i..]
            .iter()
            .take_while(|(t, _, _)| *t == tenant)
            .count();
        let feeds = registry.lock().by_tenant.get(&tenant).cloned();
        if let Some(feeds) = feeds {
            let decoded: Vec<(Event, std::cell::OnceCell<Arc<SentEvent>>)> = events[i..end]
                .iter()
                .filter_map(|(_, _, bytes)| {
                    // A record that does not decode is `onedb check`'s to
                    // report; a subscription skips it as a read would fail.
                    serde_json::from_slice::<Event>(bytes).ok()
                })
                .map(|e| (e, std::cell::OnceCell::new()))
                .collect();
            for feed in feeds.iter() {
                let Some(filter) = &feed.filter else {
                    continue;
                };
                let matching: Vec<Arc<SentEvent>> = decoded
                    .iter()
                    .filter(|(e, _)| filter.matches(e))
                    .map(|(e, sent)| {
                        sent.get_or_init(|| Arc::new(SentEvent::of(e, commit.commit)))
                            .clone()
                    })
                    .collect();
                if !matching.is_empty() {
                    feed.push_live(matching);
                }
            }
        }
        i = end;
    }
}

/// One subscription's state, shared by the dispatcher, its catch-up
/// reader and its consumer.
struct Feed {
    tenant: Tenant,
    /// The subscriber: whether it may still read.
    owner: Session,
    /// None: the person may read none of what it asks for.
    filter: Option<EventFilter>,
    cap: usize,
    state: Mutex<FeedState>,
    /// The catch-up reader waits here for room in the queue.
    room: Condvar,
    wake: Wake,
    /// Set when it is cancelled or failed.
    over: AtomicBool,
}

struct FeedState {
    /// Events ready for the consumer, in commit order, whole commits.
    queue: VecDeque<Arc<SentEvent>>,
    /// Live events that came while the catch-up reader runs (Some then).
    live: Option<VecDeque<Arc<SentEvent>>>,
    /// The position of the last event queued: live events at or before it
    /// were already queued by the reader.
    queued: (u64, u128),
    /// The last commit the consumer took all matching events of.
    sent: u64,
    ended: Option<Ended>,
    /// Closed by its owner: nothing more is told.
    closed: bool,
}

impl Feed {
    fn push_live(&self, events: Vec<Arc<SentEvent>>) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        if state.ended.is_some() || state.closed {
            return;
        }
        let queued = state.queued;
        let events: Vec<_> = events
            .into_iter()
            .filter(|e| e.position() > queued)
            .collect();
        let Some(last) = events.last().map(|e| e.position()) else {
            return;
        };
        let catching_up = state.live.is_some();
        let was_empty = state.queue.is_empty();
        let target = match state.live.as_mut() {
            Some(live) => live,
            None => &mut state.queue,
        };
        // One commit bigger than the bound still fits an empty queue.
        if !target.is_empty() && target.len() + events.len() > self.cap {
            drop(guard);
            self.cancel(&format!(
                "the subscriber fell more than {} events behind",
                self.cap
            ));
            return;
        }
        target.extend(events);
        if !catching_up {
            state.queued = last;
            drop(guard);
            if was_empty {
                (self.wake)();
            }
        }
    }

    /// Ends the subscription for falling behind: what is queued is
    /// dropped, and the consumer is told the last commit it was sent.
    fn cancel(&self, message: &str) {
        self.end(|sent| Ended::Cancelled {
            last_seq: sent,
            message: format!("{message}: resume with \"after\": {sent}"),
        });
    }

    fn fail(&self, error: Error) {
        self.end(|sent| Ended::Failed {
            last_seq: sent,
            error,
        });
    }

    /// Ends the subscription (once) with what `ended` says, given the last
    /// commit the consumer was sent; drops what is queued.
    fn end(&self, ended: impl FnOnce(u64) -> Ended) {
        let mut state = self.state.lock();
        if state.ended.is_some() || state.closed {
            return;
        }
        state.queue.clear();
        state.live = None;
        self.over.store(true, Ordering::SeqCst);
        state.ended = Some(ended(state.sent));
        drop(state);
        self.room.notify_all();
        (self.wake)();
    }

    /// Queues events the catch-up reader found (whole commits), waiting
    /// for room; false once the subscription is over.
    fn push_caught_up(&self, events: Vec<Arc<SentEvent>>) -> bool {
        let mut state = self.state.lock();
        loop {
            if state.ended.is_some() || state.closed {
                return false;
            }
            if state.queue.is_empty() || state.queue.len() + events.len() <= self.cap {
                break;
            }
            self.room.wait(&mut state);
        }
        let Some(last) = events.last().map(|e| e.position()) else {
            return true;
        };
        let was_empty = state.queue.is_empty();
        state.queue.extend(events);
        state.queued = last;
        drop(state);
        if was_empty {
            (self.wake)();
        }
        true
    }

    /// The reader reached the end: the live events past it follow.
    fn caught_up(&self, through: Option<(u64, u128)>) {
        let mut state = self.state.lock();
        if let Some(through) = through
            && through > state.queued
        {
            state.queued = through;
        }
        let Some(live) = state.live.take() else {
            return;
        };
        let queued = state.queued;
        let was_empty = state.queue.is_empty();
        let mut last = None;
        for e in live.into_iter().filter(|e| e.position() > queued) {
            last = Some(e.position());
            state.queue.push_back(e);
        }
        if let Some(last) = last {
            state.queued = last;
        }
        let wake = was_empty && !state.queue.is_empty();
        drop(state);
        if wake {
            (self.wake)();
        }
    }
}

/// A subscription, owned by whoever asked for it: dropping it ends it.
pub struct Subscription {
    feed: Arc<Feed>,
    hub: Arc<Hub>,
    start: u64,
}

/// The consumer's side of a subscription (the connection's writer).
#[derive(Clone)]
pub struct SubscriptionReader {
    feed: Arc<Feed>,
}

impl Subscription {
    /// The commit it starts after: `after`, or the last commit when it was
    /// made.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Whether it was cancelled or failed (its last line may still be
    /// waiting for the reader).
    pub fn is_over(&self) -> bool {
        self.feed.over.load(Ordering::SeqCst)
    }

    pub fn reader(&self) -> SubscriptionReader {
        SubscriptionReader {
            feed: self.feed.clone(),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(&self.feed);
        let mut state = self.feed.state.lock();
        state.closed = true;
        state.queue.clear();
        state.live = None;
        drop(state);
        self.feed.room.notify_all();
    }
}

impl SubscriptionReader {
    /// Takes queued events: at least `max` (if there are), and whole
    /// commits; then, once nothing is left of an ended subscription, how
    /// it ended (once).
    pub fn take(&self, max: usize) -> Taken {
        let mut state = self.feed.state.lock();
        let mut taken = Taken::default();
        while let Some(front) = state.queue.front() {
            let same_commit = taken.events.last().is_some_and(|l| l.seq == front.seq);
            if taken.events.len() >= max.max(1) && !same_commit {
                break;
            }
            if let Some(e) = state.queue.pop_front() {
                taken.events.push(e);
            }
        }
        if let Some(last) = taken.events.last() {
            // Commits are queued whole, so the last one taken is complete.
            state.sent = last.seq;
        }
        if state.queue.is_empty() {
            taken.ended = state.ended.take();
        }
        drop(state);
        if !taken.events.is_empty() {
            self.feed.room.notify_all();
        }
        taken
    }

    /// Whether it is the reader of `subscription`.
    pub fn reads(&self, subscription: &Subscription) -> bool {
        Arc::ptr_eq(&self.feed, &subscription.feed)
    }
}

/// What a subscription asks for (see `Session::subscribe`).
pub struct SubscribeTo {
    /// The org whose events it streams (None: the platform's).
    pub org: Option<Arc<Org>>,
    /// From `query`: the filter narrowed to what the person may read.
    pub filter: Option<EventFilter>,
    /// Resume after this commit; None: from now on.
    pub after: Option<u64>,
    /// The queue's bound, in events (1 to `MAX_QUEUE`).
    pub queue: usize,
    pub wake: Wake,
}

impl Session {
    /// Starts a subscription to the events of `to.org` that pass
    /// `to.filter`. The filter must come from this session
    /// (`query::run::Runner::subscribe` makes it), so it holds the
    /// person's rights; the org must be one the person may act in.
    pub fn subscribe(&self, to: SubscribeTo) -> Result<Subscription> {
        if to.queue == 0 || to.queue > MAX_QUEUE {
            return Err(Error::invalid(format!(
                "a subscription queue holds 1 to {MAX_QUEUE} events"
            )));
        }
        // Refuses an org the person may not act in, as every read does.
        let tenant = self.read_in(to.org.clone())?.tenant();
        let db = self.shared_db();
        let hub = db.subscription_hub()?;
        let feed = Arc::new(Feed {
            tenant,
            owner: self.fork(to.org.clone()),
            filter: to.filter,
            cap: to.queue,
            state: Mutex::new(FeedState {
                queue: VecDeque::new(),
                // Live events wait here until the start is known.
                live: Some(VecDeque::new()),
                queued: (0, 0),
                sent: 0,
                ended: None,
                closed: false,
            }),
            room: Condvar::new(),
            wake: to.wake,
            over: AtomicBool::new(false),
        });
        // Registered first, then the store is read: see the module's note.
        hub.registry.lock().add(feed.clone());
        let subscription = |start: u64| Subscription {
            feed: feed.clone(),
            hub: hub.clone(),
            start,
        };
        let start = match to.after {
            None => match db.shared().storage.last_commit() {
                Ok(now) => now,
                Err(e) => {
                    hub.remove(&feed);
                    return Err(e);
                }
            },
            Some(after) => after,
        };
        feed.state.lock().sent = start;
        let handle = subscription(start);
        if to.after.is_none() {
            // From now on: what was heard before the start is dropped.
            feed.caught_up(Some((start, u128::MAX)));
        } else {
            feed.state.lock().queued = (start, u128::MAX);
            let reader = self.fork(to.org.clone());
            let feed = feed.clone();
            std::thread::Builder::new()
                .name("onedb-catch-up".into())
                .spawn(move || catch_up(&reader, &feed, start))
                .map_err(|e| Error::io(format!("cannot start a subscription's reader: {e}")))?;
        }
        Ok(handle)
    }
}

/// Reads the org's events after `after` in commit order into the feed,
/// then lets the live ones follow.
fn catch_up(session: &Session, feed: &Feed, after: u64) {
    let Some(filter) = feed.filter.clone() else {
        feed.caught_up(None);
        return;
    };
    let mut position: (u64, Option<Id>) = (after, None);
    loop {
        let chunk = session
            .read()
            .and_then(|t| t.events_after(&filter, position, CATCH_UP_CHUNK));
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                feed.fail(e);
                return;
            }
        };
        let events = chunk
            .events
            .iter()
            .filter_map(|e| Some(Arc::new(SentEvent::of(e, e.seq?))))
            .collect();
        if !feed.push_caught_up(events) {
            return;
        }
        if let Some((seq, id)) = chunk.last {
            position = (seq, Some(id));
        }
        if chunk.done {
            feed.caught_up(position.1.map(|id| (position.0, id.raw())));
            return;
        }
    }
}
