//! Group commit with conflict detection.
//!
//! Committers queue their requests; one of them (the leader) takes the whole
//! queue, checks each request in order — keys it read for update must not have
//! changed since its snapshot, counters must stay within their limits — and
//! writes the accepted ones as ONE engine write (one RocksDB batch, one WAL
//! sync). The others wait and get their own verdict. Under load many
//! commits share a sync; alone, a commit pays exactly one.
//!
//! The leader is the only writer, so the latest stored value of a counter is
//! exact while it decides; usage can never pass a limit, whatever the
//! concurrency.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorCode, Result};
use crate::keys::{self, Changed, Tenant};
use crate::model::Id;
use crate::storage::Durability;
use crate::storage::cache::{Guesses, RecordCache};
use crate::storage::engine::{
    AnyEngine, AnySnapshot, ConflictMode, Engine, EngineSnapshot, ReadSet, Reads,
};
use crate::storage::hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// A change to a counter: applied to the latest value at commit.
#[derive(Debug, Clone)]
pub(crate) struct CounterChange {
    pub delta: i64,
    /// A limit ≥ 0 that an increase may not pass.
    pub limit: Option<i64>,
    pub exceeded: String,
    /// The counter's value in the transaction's snapshot, once read there
    /// (the leader goes by the latest value instead).
    pub seen: Option<i64>,
}

#[derive(Clone)]
pub(crate) struct CommitRequest {
    pub snapshot_seq: u64,
    pub reads: HashSet<Vec<u8>>,
    pub read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub counters: BTreeMap<Vec<u8>, CounterChange>,
    /// Records the request creates (`Txn::mark_created`).
    pub created: Vec<Changed>,
    /// Bookkeeping of the engine itself (pruning the index log): not
    /// counted as a commit, never a searchable change.
    pub maintenance: bool,
    /// On a shared store: the keys read from copies older than the
    /// snapshot (`cache::Guesses`), by the revision each copy was read at;
    /// the write is refused if any of them changed after it.
    pub guessed: Vec<ReadSet>,
}

impl CommitRequest {
    /// What the request itself read for update, at its snapshot.
    fn own_reads(&self) -> Reads<'_> {
        Reads {
            snapshot: self.snapshot_seq,
            keys: &self.reads,
            ranges: &self.read_ranges,
        }
    }

    /// `own_reads` and the keys it read from copies, each at the copy's
    /// revision.
    fn all_reads(&self) -> Vec<Reads<'_>> {
        let own =
            (!self.reads.is_empty() || !self.read_ranges.is_empty()).then(|| self.own_reads());
        own.into_iter()
            .chain(self.guessed.iter().map(ReadSet::as_reads))
            .collect()
    }
}

/// Most commits a leader takes into one batch.
const MAX_GROUP: usize = 256;
/// Times a group is written again on a shared store when another server
/// overtook it (`commit_group_shared`).
const SHARED_RETRIES: usize = 8;
/// Groups whose keys the tracker keeps as written, newest last; older
/// ones go into its map (only while a long-lived snapshot needs them).
const RECENT_GROUPS: usize = 64;
/// Tracker size at which history nobody can conflict with is dropped.
const PRUNE_AT: usize = 100_000;

/// Told, by the commit leader, of every durable commit that changed
/// searchable records — before any of its committers is acknowledged, so a
/// session's next search sees its own writes. Must be quick: commits wait.
/// The changed records come with the values written (`Committed`), so the
/// indexer need not read them back.
pub(crate) type CommitHook = Box<dyn Fn(u64, &Arc<Committed>) + Send + Sync>;

/// Told, by the commit leader, of the events of every durable commit
/// while `wanted` says so (someone subscribed). Both are called after the
/// write and before any committer is acknowledged, in commit order; they
/// must be quick: commits wait. `wanted` is asked after the write, so a
/// subscriber that registers and then reads the store misses nothing: a
/// commit it is not told of was written before it registered.
pub(crate) trait EventHook: Send + Sync {
    fn wanted(&self) -> bool;
    fn committed(&self, events: CommittedEvents);
}

/// The events one commit wrote, in key order (tenant, then event id),
/// their stored bytes with `seq` in them.
pub(crate) struct CommittedEvents {
    pub commit: u64,
    pub events: Vec<(Tenant, Id, Vec<u8>)>,
}

/// The searchable records one commit wrote, with their values copied into
/// one buffer: one allocation per commit, which the indexer thread frees
/// whole (freeing thousands of the writer's own small allocations from
/// another thread slowed the writer's malloc).
pub(crate) struct Committed {
    bytes: Vec<u8>,
    records: Vec<CommittedRecord>,
}

/// A record of a commit: where its value is in `bytes` (None: deleted),
/// and whether the commit created it.
type CommittedRecord = (Changed, Option<(usize, usize)>, bool);

impl Committed {
    fn of(batch: &BTreeMap<Vec<u8>, Option<Vec<u8>>>, mut created: Vec<Changed>) -> Committed {
        let found: Vec<(Changed, Option<&[u8]>)> = batch
            .iter()
            .filter_map(|(k, v)| Some((Changed::of_key(k)?, v.as_deref())))
            .collect();
        let size = found.iter().map(|(_, v)| v.map_or(0, <[u8]>::len)).sum();
        let mut bytes = Vec::with_capacity(size);
        created.sort_unstable();
        let records = found
            .into_iter()
            .map(|(c, v)| {
                let span = v.map(|v| {
                    bytes.extend_from_slice(v);
                    (bytes.len() - v.len(), bytes.len())
                });
                (c, span, created.binary_search(&c).is_ok())
            })
            .collect();
        Committed { bytes, records }
    }

    /// Whether the commit created the `i`th record (no older version of
    /// it exists anywhere).
    pub fn created(&self, i: usize) -> bool {
        self.records.get(i).is_some_and(|r| r.2)
    }

    /// Whether the commit changed no searchable record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The changed records, in key order.
    pub fn changes(&self) -> impl Iterator<Item = Changed> + '_ {
        self.records.iter().map(|r| r.0)
    }

    /// The value the commit gave the `i`th record: None if it deleted it.
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        let (from, to) = self.records.get(i)?.1?;
        self.bytes.get(from..to)
    }
}

#[derive(Default)]
pub(crate) struct CommitQueue {
    /// Shared with the commit thread, which waits on it without keeping
    /// the store open.
    backlog: Arc<Backlog>,
    /// Whether the commit thread runs (None: not needed yet).
    thread: OnceLock<bool>,
    tracker: Mutex<Tracker>,
    latest: Mutex<Latest>,
    records: RecordCache,
    guesses: Guesses,
    hook: OnceLock<CommitHook>,
    event_hook: OnceLock<Arc<dyn EventHook>>,
    /// The sequence number of the last batch whose hook has run: a reader
    /// whose snapshot is past it waits (`wait_for_hooks`), so no commit it
    /// can see is missing from the derived indexes' pending changes.
    hooked_seq: AtomicU64,
}

#[derive(Default)]
struct Backlog {
    queue: Mutex<Queue>,
    /// Wakes the commit thread when it is to lead, or the store closed.
    work: Condvar,
}

#[derive(Default)]
struct Queue {
    pending: Vec<(CommitRequest, Arc<Waiter>)>,
    leader_busy: bool,
    /// The commit thread leads: committers queued behind a group.
    thread_leads: bool,
    /// The durability of the commits the thread writes.
    durability: Durability,
    /// The store is closing: the commit thread ends.
    closed: bool,
}

/// Where one committer waits: woken once, with its verdict or to lead the
/// next group. One per commit, so a finished group wakes only its own
/// committers and the next leader: with one condvar for all, each group of
/// three or four commits in the group-commit bench woke all 16 sessions.
#[derive(Default)]
struct Waiter {
    state: Mutex<Turn>,
    wake: Condvar,
}

#[derive(Default)]
enum Turn {
    #[default]
    Waiting,
    Lead,
    /// The verdict, and the group's committers to wake next: the leader
    /// wakes only the first and each woken committer two more, so the
    /// wake-up calls are off the path from one WAL sync to the next.
    Done(Result<u64>, [Option<Arc<Waiter>>; 2]),
}

impl Waiter {
    fn lead(&self) {
        *self.state.lock() = Turn::Lead;
        self.wake.notify_one();
    }

    /// Blocks until told; returns the verdict, or None to lead.
    fn wait(&self) -> Option<Result<u64>> {
        let mut state = self.state.lock();
        loop {
            match std::mem::take(&mut *state) {
                Turn::Waiting => self.wake.wait(&mut state),
                Turn::Lead => return None,
                Turn::Done(result, next) => {
                    drop(state);
                    for next in next.iter().flatten() {
                        next.wake.notify_one();
                    }
                    return Some(result);
                }
            }
        }
    }
}

/// Gives each committer of a group its verdict and wakes the first; each
/// woken committer wakes two more, a binary tree: the last of 8 is woken
/// after 3 wake-ups in turn, not 7 (each waits for a core on a busy
/// machine). Every verdict is set before the first wake-up, so no
/// wake-up is lost.
fn tell_group(done: Vec<(Result<u64>, Arc<Waiter>)>) {
    let waiters: Vec<Arc<Waiter>> = done.iter().map(|(_, w)| Arc::clone(w)).collect();
    let child = |i: usize| waiters.get(i).cloned();
    for (i, (result, waiter)) in done.into_iter().enumerate() {
        *waiter.state.lock() = Turn::Done(result, [child(2 * i + 1), child(2 * i + 2)]);
    }
    if let Some(first) = waiters.first() {
        first.wake.notify_one();
    }
}

/// The commit thread: each time committers queue behind a group, it leads
/// until the queue is empty (`CommitQueue::commit`); it ends when the
/// store closes.
fn lead_backlogs(backlog: &Backlog, commits: &Weak<CommitQueue>, engine: &Weak<AnyEngine>) {
    loop {
        let durability = {
            let mut queue = backlog.queue.lock();
            while !queue.thread_leads && !queue.closed {
                backlog.work.wait(&mut queue);
            }
            if queue.closed {
                return;
            }
            queue.durability
        };
        // The queued committers keep the store open while they wait.
        let (Some(commits), Some(engine)) = (commits.upgrade(), engine.upgrade()) else {
            let mut queue = backlog.queue.lock();
            queue.thread_leads = false;
            queue.leader_busy = false;
            let closed = || Err(Error::io("the store closed before the commit was written"));
            tell_group(
                queue
                    .pending
                    .drain(..)
                    .map(|(_, w)| (closed(), w))
                    .collect(),
            );
            return;
        };
        let last = loop {
            let done = commits.write_next(&engine, durability);
            if !commits.pass_lead(&engine, durability) {
                break done;
            }
            tell_group(done);
        };
        // Let go of the store before the last committers hear their
        // verdicts: once they return, it may be dropped, and its engine
        // must close then (a second open of the directory waits for that).
        drop((commits, engine));
        tell_group(last);
    }
}

impl Drop for CommitQueue {
    fn drop(&mut self) {
        self.backlog.queue.lock().closed = true;
        self.backlog.work.notify_one();
    }
}

/// What the leader needs to detect conflicts: which keys each recent
/// group wrote, the sequence at which older written keys last changed, and
/// the snapshots still open.
#[derive(Default)]
struct Tracker {
    /// The keys of the groups written last, oldest first: each group's
    /// sequence and its keys in order. Remembering a group is one push:
    /// inserting its ~100 keys one by one into `last_write` took a third
    /// of the commit thread's time with 16 sessions writing.
    recent: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// Writes older than `recent` holds (a long-lived snapshot keeps them):
    /// ordered, so a read range can be checked with one range query.
    last_write: BTreeMap<Vec<u8>, u64>,
    open_snapshots: BTreeMap<u64, usize>,
    /// Size at which `last_write` is pruned next (at least `PRUNE_AT`).
    prune_at: usize,
}

impl CommitQueue {
    /// Takes a writer's snapshot while registered, so no write it could
    /// conflict with is forgotten. Returns the snapshot and its sequence.
    pub fn register<'a>(&self, take: impl FnOnce() -> AnySnapshot<'a>) -> (AnySnapshot<'a>, u64) {
        let mut tracker = self.tracker.lock();
        let snapshot = take();
        let seq = snapshot.sequence();
        *tracker.open_snapshots.entry(seq).or_default() += 1;
        (snapshot, seq)
    }

    pub fn unregister(&self, seq: u64) {
        let mut tracker = self.tracker.lock();
        if let Some(n) = tracker.open_snapshots.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                tracker.open_snapshots.remove(&seq);
            }
        }
    }

    /// Decoded records shared by transactions; the leader keeps it honest.
    pub fn records(&self) -> &RecordCache {
        &self.records
    }

    /// On a shared store: copies kept across retried transactions, which
    /// their commits check (`cache::Guesses`).
    pub fn guesses(&self) -> &Guesses {
        &self.guesses
    }

    /// Hands the lead to queued committers, as if the commit thread could
    /// not be started.
    #[cfg(test)]
    pub fn without_thread(&self) {
        let _ = self.thread.set(false);
    }

    /// How many requests wait for a leader.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.backlog.queue.lock().pending.len()
    }

    /// How many written keys the conflict tracker holds.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        let tracker = self.tracker.lock();
        tracker
            .recent
            .iter()
            .map(|(_, keys)| keys.len())
            .sum::<usize>()
            + tracker.last_write.len()
    }

    /// Installs the hook that feeds the derived indexes (once per database),
    /// `latest` being the store's last sequence number now.
    pub fn set_hook(&self, hook: CommitHook, latest: u64) {
        let _ = self.hook.set(hook);
        self.hooked_seq.fetch_max(latest, Ordering::SeqCst);
    }

    /// Installs the hook that feeds subscriptions (once per database).
    pub fn set_event_hook(&self, hook: Arc<dyn EventHook>) {
        let _ = self.event_hook.set(hook);
    }

    /// Waits until every batch up to sequence `seq` has been reported to
    /// the hook. The leader reports right after its write, so this waits
    /// microseconds, and only for a reader that raced a commit; it gives up
    /// after a second rather than hang on a failed write.
    pub fn wait_for_hooks(&self, seq: u64) {
        let started = std::time::Instant::now();
        while self.hooked_seq.load(Ordering::SeqCst) < seq
            && started.elapsed() < std::time::Duration::from_secs(1)
        {
            std::thread::yield_now();
        }
    }

    /// Commits one request, as leader or follower; returns its sequence.
    ///
    /// A committer that finds no leader leads: it takes the queue (its own
    /// request first) and writes it as one batch. Requests queued meanwhile
    /// go to the commit thread, which writes group after group until the
    /// queue is empty. Handing the lead to a queued committer instead put
    /// a thread's wake-up between one WAL sync and the next: 45 µs on a
    /// 2-core machine busy with 16 sessions, 90 µs with their clients'
    /// sockets too, against a sync of ~230 µs.
    pub fn commit(
        self: &Arc<Self>,
        engine: &Arc<AnyEngine>,
        durability: Durability,
        request: CommitRequest,
    ) -> Result<u64> {
        let me = Arc::new(Waiter::default());
        let lead = {
            let mut queue = self.backlog.queue.lock();
            queue.pending.push((request, Arc::clone(&me)));
            !std::mem::replace(&mut queue.leader_busy, true)
        };
        if !lead && let Some(result) = me.wait() {
            return result;
        }
        let done = self.write_next(engine, durability);
        // The next group's write starts before this one's committers wake.
        self.pass_lead(engine, durability);
        let mut mine = None;
        let mut others = Vec::with_capacity(done.len());
        for (result, waiter) in done {
            if Arc::ptr_eq(&waiter, &me) {
                mine = Some(result);
            } else {
                others.push((result, waiter));
            }
        }
        tell_group(others);
        mine.unwrap_or_else(|| Err(Error::io("a commit leader lost its own request")))
    }

    /// Takes the next group from the queue and writes it: each
    /// committer's verdict. A leader's own request is the queue's first:
    /// a committer leads only on an empty queue (or, without the commit
    /// thread, as the first queued).
    fn write_next(
        &self,
        engine: &AnyEngine,
        durability: Durability,
    ) -> Vec<(Result<u64>, Arc<Waiter>)> {
        let group: Vec<_> = {
            let mut queue = self.backlog.queue.lock();
            let take = queue.pending.len().min(MAX_GROUP);
            queue.pending.drain(..take).collect()
        };
        let (requests, waiters): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let results = if engine.shared() {
            self.commit_group_shared(engine, durability, requests)
        } else {
            self.commit_group(engine, durability, requests)
        };
        results.into_iter().zip(waiters).collect()
    }

    /// After a group: the lead passes to the commit thread if committers
    /// queued meanwhile (to the first of them if the thread cannot run),
    /// or nobody leads. Whether somebody leads on.
    fn pass_lead(self: &Arc<Self>, engine: &Arc<AnyEngine>, durability: Durability) -> bool {
        let mut queue = self.backlog.queue.lock();
        let Some((_, first)) = queue.pending.first() else {
            queue.leader_busy = false;
            queue.thread_leads = false;
            return false;
        };
        if self.commit_thread(engine) {
            queue.durability = durability;
            if !std::mem::replace(&mut queue.thread_leads, true) {
                self.backlog.work.notify_one();
            }
        } else {
            first.lead();
        }
        true
    }

    /// Starts the commit thread the first time it is needed; whether it
    /// runs. It holds the store only while it leads, so dropping the
    /// store closes the engine at once and ends the thread.
    fn commit_thread(self: &Arc<Self>, engine: &Arc<AnyEngine>) -> bool {
        *self.thread.get_or_init(|| {
            let (backlog, commits, engine) = (
                Arc::clone(&self.backlog),
                Arc::downgrade(self),
                Arc::downgrade(engine),
            );
            std::thread::Builder::new()
                .name("onedb-commit".into())
                .spawn(move || lead_backlogs(&backlog, &commits, &engine))
                .is_ok()
        })
    }

    /// `commit_group` on a store other servers write too. A group refused
    /// because another server committed between its snapshot and its write
    /// (the commit number or a counter moved) is written again at once,
    /// instead of failing every committer of the group: only a request
    /// whose own reads changed keeps its `CONFLICT`. The refused requests'
    /// reads are checked together first (one request to the store), and
    /// each on its own only if some changed.
    fn commit_group_shared(
        &self,
        engine: &AnyEngine,
        durability: Durability,
        group: Vec<CommitRequest>,
    ) -> Vec<Result<u64>> {
        let mut results: Vec<Option<Result<u64>>> = vec![None; group.len()];
        let mut pending: Vec<usize> = (0..group.len()).collect();
        for attempt in 0..=SHARED_RETRIES {
            let requests = pending.iter().map(|&i| group[i].clone()).collect();
            let outcome = self.commit_group(engine, durability, requests);
            let refused: Vec<bool> = outcome
                .iter()
                .map(|r| {
                    attempt < SHARED_RETRIES && matches!(r, Err(e) if e.code == ErrorCode::Conflict)
                })
                .collect();
            let all_overtaken = refused.iter().filter(|r| **r).count() > 1 && {
                let reads: Vec<Reads<'_>> = pending
                    .iter()
                    .zip(&refused)
                    .filter(|(_, r)| **r)
                    .flat_map(|(&i, _)| group[i].all_reads())
                    .collect();
                engine.conflicts(&reads).is_ok_and(|changed| !changed)
            };
            let mut again = Vec::new();
            for ((&i, result), refused) in pending.iter().zip(outcome).zip(refused) {
                let overtaken = refused
                    && (all_overtaken
                        || engine
                            .conflicts(&group[i].all_reads())
                            .is_ok_and(|changed| !changed));
                if overtaken {
                    again.push(i);
                } else {
                    results[i] = Some(result);
                }
            }
            if again.is_empty() {
                break;
            }
            pending = again;
        }
        results
            .into_iter()
            .map(|r| {
                // Every request has its verdict after the last attempt.
                r.unwrap_or_else(|| {
                    Err(Error::conflict(
                        "a concurrent transaction changed the same data; retry",
                    ))
                })
            })
            .collect()
    }

    fn commit_group(
        &self,
        engine: &AnyEngine,
        durability: Durability,
        group: Vec<CommitRequest>,
    ) -> Vec<Result<u64>> {
        // Only one leader at a time: this lock is never contended.
        let mut latest = self.latest.lock();
        // A shared store: other servers commit too, so the group's counters
        // and the commit number are read afresh, together, and the write is
        // refused if any of them changed after that read
        // (`commit_group_shared` then writes the group again).
        if engine.shared() {
            let mut wanted: Vec<Vec<u8>> = group
                .iter()
                .flat_map(|r| r.counters.keys().cloned())
                .collect();
            wanted.push(keys::commit_seq());
            wanted.sort_unstable();
            wanted.dedup();
            if let Err(e) = latest.read_fresh(engine, wanted) {
                return group.iter().map(|_| Err(e.clone())).collect();
            }
        }
        let mut verdicts: Vec<Result<()>> = Vec::with_capacity(group.len());
        let mut batch: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut counters: HashMap<Vec<u8>, i64> = HashMap::default();
        // The group's own snapshots: they end with this group, so they never
        // need its writes remembered.
        let mut snapshots: Vec<u64> = Vec::with_capacity(group.len());
        let mut created: Vec<Changed> = Vec::new();
        // Whether an accepted request is a real commit (not bookkeeping).
        let mut counted = false;
        let in_engine = engine.conflict_mode() == ConflictMode::InEngine;
        // In-engine mode: the accepted requests' read sets, which the
        // engine checks again as it writes.
        let mut guards: Vec<ReadSet> = Vec::new();
        {
            let tracker = self.tracker.lock();
            for mut request in group {
                snapshots.push(request.snapshot_seq);
                let verdict = check(
                    &tracker,
                    engine,
                    &mut latest,
                    &request,
                    &batch,
                    &mut counters,
                );
                if verdict.is_ok() {
                    counted |= !request.maintenance;
                    created.append(&mut request.created);
                    if in_engine {
                        let reads = ReadSet {
                            snapshot: request.snapshot_seq,
                            keys: std::mem::take(&mut request.reads),
                            ranges: std::mem::take(&mut request.read_ranges),
                        };
                        if !reads.is_empty() {
                            guards.push(reads);
                        }
                        guards.append(&mut request.guessed);
                    }
                    apply(request, &mut batch, &mut counters);
                }
                verdicts.push(verdict);
            }
        }
        for (key, value) in &counters {
            batch.insert(key.clone(), Some(keys::encode_i64(*value)));
        }
        if batch.is_empty() {
            return verdicts
                .into_iter()
                .map(|v| v.map(|()| engine.latest_sequence()))
                .collect();
        }
        let written = Written {
            snapshots,
            guards,
            commit: None,
            events: 0,
        };
        if !counted {
            return self.write_batch(engine, durability, &mut latest, batch, verdicts, written);
        }
        // The commit counter: derived indexes record the last one they applied.
        let commits = match latest.commits {
            Some(n) => Ok(n),
            None => match latest.read(engine, &keys::commit_seq()) {
                Ok(Some(bytes)) => keys::decode_u64(&bytes),
                Ok(None) => Ok(0),
                Err(e) => Err(e),
            },
        };
        let commits = match commits {
            Ok(n) => n,
            Err(e) => {
                return verdicts
                    .into_iter()
                    .map(|v| v.and(Err(e.clone())))
                    .collect();
            }
        };
        let commit = commits + 1;
        batch.insert(keys::commit_seq(), Some(keys::encode_u64(commit)));
        let events = stamp_events(&mut batch, commit);
        // The index log: which searchable records this commit wrote, in the
        // same atomic batch, so the derived indexes can always catch up.
        let committed = Committed::of(&batch, created);
        if !committed.is_empty() {
            let changed: Vec<Changed> = committed.changes().collect();
            batch.insert(
                keys::index_log(commit),
                Some(keys::encode_changes(&changed)),
            );
        }
        let written = Written {
            commit: Some((commit, committed)),
            events,
            ..written
        };
        self.write_batch(engine, durability, &mut latest, batch, verdicts, written)
    }

    /// Writes the accepted requests' batch; then reports the changed
    /// records of the commit to the hook and brings `latest` up to date.
    fn write_batch(
        &self,
        engine: &AnyEngine,
        durability: Durability,
        latest: &mut Latest,
        batch: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        verdicts: Vec<Result<()>>,
        written: Written,
    ) -> Vec<Result<u64>> {
        let mut guards = written.guards;
        if let Some(read) = latest.read_set() {
            guards.push(read);
        }
        let written = Written { guards, ..written };
        let slots = self.records.writing(batch.keys().map(Vec::as_slice));
        // RocksDB's record: a header, then per entry a tag, two varint
        // lengths, the key and the value.
        let bytes = 12
            + batch
                .iter()
                .map(|(k, v)| 11 + k.len() + v.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        let result = engine.write(
            batch.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
            bytes,
            durability.syncs_wal(),
            &written.guards,
        );
        if !slots.is_empty() {
            let seq = result
                .as_ref()
                .map_or_else(|_| engine.latest_sequence(), |seq| *seq);
            self.records.written(&slots, seq);
        }
        match result {
            Ok(seq) => {
                crate::crashpoint::hit("commit.after_write");
                let Written {
                    snapshots,
                    commit,
                    events,
                    guards: _,
                } = written;
                if let Some((commit, committed)) = commit {
                    latest.commits = Some(commit);
                    if !committed.is_empty()
                        && let Some(hook) = self.hook.get()
                    {
                        hook(commit, &Arc::new(committed));
                    }
                    if events > 0
                        && let Some(hook) = self.event_hook.get()
                        && hook.wanted()
                    {
                        hook.committed(CommittedEvents {
                            commit,
                            events: events_of(&batch, events),
                        });
                    }
                }
                self.hooked_seq.fetch_max(seq, Ordering::SeqCst);
                latest.wrote(&batch);
                if engine.conflict_mode() == ConflictMode::InProcess {
                    self.remember(batch.into_keys().collect(), seq, snapshots);
                }
                verdicts.into_iter().map(|v| v.map(|()| seq)).collect()
            }
            Err(e) => {
                // What the store holds is no longer known for certain (an
                // OUTCOME_UNKNOWN write may have happened): the counters
                // and decoded records are read again from the store.
                latest.forget();
                self.records.reset();
                verdicts
                    .into_iter()
                    .map(|v| v.and(Err(e.clone())))
                    .collect()
            }
        }
    }

    /// Records the batch's keys for conflict checks, unless no open
    /// snapshot outside the committing group is older than the write: a
    /// transaction that starts later already sees it, so nothing can ever
    /// conflict with it (the common case of one writer at a time).
    fn remember(&self, written: Vec<Vec<u8>>, seq: u64, mut group: Vec<u64>) {
        let mut tracker = self.tracker.lock();
        group.sort_unstable();
        if !tracker.open_outside(&group, seq) {
            // Older entries are as useless: every open snapshot is newer.
            tracker.recent.clear();
            tracker.last_write.clear();
            return;
        }
        tracker.remember(written, seq);
    }
}

/// What a group's write carries besides the batch.
struct Written {
    /// Snapshot sequences of the group's requests.
    snapshots: Vec<u64>,
    /// In-engine mode: the read sets the engine checks as it writes.
    guards: Vec<ReadSet>,
    /// The commit number and its changed records, with the values the
    /// hook hands on (None for bookkeeping).
    commit: Option<(u64, Committed)>,
    /// How many events the commit wrote.
    events: usize,
}

/// Gives every event record the batch writes its commit number: the
/// record's `seq` field and its commit-order entry (`keys` family 13).
/// Returns how many there were.
fn stamp_events(batch: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>, commit: u64) -> usize {
    let mut entries = Vec::new();
    for (key, value) in batch.range_mut(keys::tenant_data_start()..) {
        if let (Some((tenant, id)), Some(value)) = (keys::event_of_key(key), value) {
            keys::stamp_event(value, commit);
            entries.push(tenant.event_by_seq(commit, id));
        }
    }
    let n = entries.len();
    for key in entries {
        batch.insert(key, Some(Vec::new()));
    }
    n
}

/// The event records of a written batch, copied for the event hook.
fn events_of(batch: &BTreeMap<Vec<u8>, Option<Vec<u8>>>, n: usize) -> Vec<(Tenant, Id, Vec<u8>)> {
    let mut out = Vec::with_capacity(n);
    for (key, value) in batch.range(keys::tenant_data_start()..) {
        if let (Some((tenant, id)), Some(value)) = (keys::event_of_key(key), value) {
            out.push((tenant, id, value.clone()));
        }
    }
    out
}

impl Tracker {
    /// Whether `key` was written after `snapshot`.
    fn changed(&self, key: &[u8], snapshot: u64) -> bool {
        self.newer(snapshot)
            .any(|keys| keys.binary_search_by(|k| k.as_slice().cmp(key)).is_ok())
            || self.last_write.get(key).is_some_and(|s| *s > snapshot)
    }

    /// Whether a key in `lower..upper` was written after `snapshot`.
    fn changed_in(&self, lower: &[u8], upper: &[u8], snapshot: u64) -> bool {
        self.newer(snapshot).any(|keys| {
            let first = keys.partition_point(|k| k.as_slice() < lower);
            keys.get(first).is_some_and(|k| k.as_slice() < upper)
        }) || self
            .last_write
            .range(lower.to_vec()..upper.to_vec())
            .any(|(_, s)| *s > snapshot)
    }

    /// The keys of the recent groups written after `snapshot`.
    fn newer(&self, snapshot: u64) -> impl Iterator<Item = &[Vec<u8>]> {
        self.recent
            .iter()
            .rev()
            .take_while(move |(seq, _)| *seq > snapshot)
            .map(|(_, keys)| keys.as_slice())
    }

    /// Adds a group's sorted keys, written at `seq`; forgets what no open
    /// snapshot can conflict with (a write its snapshot already saw).
    fn remember(&mut self, keys: Vec<Vec<u8>>, seq: u64) {
        let oldest = self.open_snapshots.keys().next().copied();
        let seen = |s: u64| oldest.is_none_or(|o| s <= o);
        while self.recent.front().is_some_and(|(s, _)| seen(*s)) {
            self.recent.pop_front();
        }
        self.recent.push_back((seq, keys));
        if self.recent.len() <= RECENT_GROUPS {
            return;
        }
        if let Some((s, keys)) = self.recent.pop_front() {
            for key in keys {
                self.last_write.insert(key, s);
            }
        }
        if self.last_write.len() >= self.prune_at.max(PRUNE_AT) {
            self.last_write.retain(|_, s| !seen(*s));
            // A long-lived snapshot keeps history alive: then wait for the
            // map to double, so pruning stays linear overall.
            self.prune_at = 2 * self.last_write.len();
        }
    }

    /// Whether a snapshot older than `seq` is open besides the sorted
    /// `group`'s (a snapshot sequence may be shared by several writers).
    fn open_outside(&self, group: &[u64], seq: u64) -> bool {
        self.open_snapshots.range(..seq).any(|(s, open)| {
            let mine = group.partition_point(|g| g < s)..group.partition_point(|g| g <= s);
            *open > mine.len()
        })
    }
}

/// What the leader knows of the store between groups: the latest stored
/// values of usage counters (`keys::is_counter`) it read or wrote, and the
/// commit counter. Every write after open goes through the leader, so they
/// equal what is stored; a failed write forgets them, and they are read
/// again.
#[derive(Default)]
pub(super) struct Latest {
    counters: HashMap<Vec<u8>, i64>,
    commits: Option<u64>,
    /// A shared store: the sequence the group's counters and commit number
    /// were read at, and the keys read, which the write guards.
    base: Option<u64>,
    guarded: HashSet<Vec<u8>>,
}

/// Counters remembered at most (then forgotten and read again as needed).
const LATEST_COUNTERS: usize = 65_536;

impl Latest {
    /// The newest stored value of `key` (on a shared store, noted for the
    /// write's guard: it must not change before the write).
    fn read(&mut self, engine: &AnyEngine, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.base.is_some() {
            self.guarded.insert(key.to_vec());
        }
        engine.get_latest(key)
    }

    /// A shared store: forgets everything, then reads `wanted` (counters
    /// and the commit number) in one step; the write is guarded by them.
    fn read_fresh(&mut self, engine: &AnyEngine, wanted: Vec<Vec<u8>>) -> Result<()> {
        self.forget();
        let (seq, values) = engine.get_latest_many(&wanted)?;
        for (key, value) in wanted.iter().zip(values) {
            if *key == keys::commit_seq() {
                self.commits = Some(value.as_deref().map_or(Ok(0), keys::decode_u64)?);
            } else {
                let v = value.as_deref().map_or(Ok(0), keys::decode_i64)?;
                self.counters.insert(key.clone(), v);
            }
        }
        self.base = Some(seq);
        self.guarded = wanted.into_iter().collect();
        Ok(())
    }

    /// A shared store: what the group read, for the write to check.
    fn read_set(&mut self) -> Option<ReadSet> {
        let snapshot = self.base.take()?;
        let keys = std::mem::take(&mut self.guarded);
        (!keys.is_empty()).then_some(ReadSet {
            snapshot,
            keys,
            ranges: Vec::new(),
        })
    }

    fn counter(&mut self, engine: &AnyEngine, key: &[u8]) -> Result<i64> {
        if let Some(v) = self.counters.get(key) {
            return Ok(*v);
        }
        let v = match self.read(engine, key)? {
            Some(bytes) => keys::decode_i64(&bytes)?,
            None => 0,
        };
        if keys::is_counter(key) {
            if self.counters.len() >= LATEST_COUNTERS {
                self.counters.clear();
            }
            self.counters.insert(key.to_vec(), v);
        }
        Ok(v)
    }

    /// After a successful write: every counter key it wrote holds what was
    /// written — a new count, or plain data put there by a request.
    fn wrote(&mut self, batch: &BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (key, value) in batch.iter().filter(|(k, _)| keys::is_counter(k)) {
            match value.as_deref().map(keys::decode_i64) {
                Some(Ok(v)) => {
                    if let Some(slot) = self.counters.get_mut(key) {
                        *slot = v;
                    } else {
                        if self.counters.len() >= LATEST_COUNTERS {
                            self.counters.clear();
                        }
                        self.counters.insert(key.clone(), v);
                    }
                }
                _ => {
                    self.counters.remove(key);
                }
            }
        }
    }

    fn forget(&mut self) {
        self.counters.clear();
        self.commits = None;
        self.base = None;
        self.guarded.clear();
    }
}

/// Whether `request` may commit after the requests accepted into `batch`.
fn check(
    tracker: &Tracker,
    engine: &AnyEngine,
    latest: &mut Latest,
    request: &CommitRequest,
    batch: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    counters: &mut HashMap<Vec<u8>, i64>,
) -> Result<()> {
    // In engine mode the tracker remembers nothing: the engine knows
    // which keys changed after the snapshot.
    let in_engine = engine.conflict_mode() == ConflictMode::InEngine;
    // A shared store checks read sets only as it writes (one round trip
    // for the group, not one per request); `commit_group_shared` sorts
    // out whose reads changed.
    if in_engine
        && !engine.shared()
        && (!request.reads.is_empty() || !request.read_ranges.is_empty())
        && engine.conflicts(&[request.own_reads()])?
    {
        return Err(Error::conflict(
            "a concurrent transaction changed the same data; retry",
        ));
    }
    for key in &request.reads {
        let changed_since = !in_engine && tracker.changed(key, request.snapshot_seq);
        if changed_since || batch.contains_key(key) {
            return Err(Error::conflict(
                "a concurrent transaction changed the same data; retry",
            ));
        }
    }
    for (lower, upper) in &request.read_ranges {
        let changed_since = !in_engine && tracker.changed_in(lower, upper, request.snapshot_seq);
        if changed_since || batch.range(lower.clone()..upper.clone()).next().is_some() {
            return Err(Error::conflict(
                "a concurrent transaction changed the same data; retry",
            ));
        }
    }
    for (key, change) in &request.counters {
        let current = match counters.get(key) {
            Some(v) => *v,
            None => {
                let v = latest.counter(engine, key)?;
                counters.insert(key.clone(), v);
                v
            }
        };
        if change.delta > 0
            && let Some(limit) = change.limit.filter(|l| *l >= 0)
            && current + change.delta > limit
        {
            return Err(Error::new(ErrorCode::LimitReached, change.exceeded.clone()));
        }
    }
    Ok(())
}

/// Takes an accepted request's writes into the batch (moved, not copied).
fn apply(
    request: CommitRequest,
    batch: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    counters: &mut HashMap<Vec<u8>, i64>,
) {
    for (key, change) in &request.counters {
        *counters.entry(key.clone()).or_insert(0) += change.delta;
    }
    if batch.is_empty() {
        *batch = request.writes;
    } else {
        batch.extend(request.writes);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Keys are one byte of this many: enough that most groups folded
    /// into the map wrote keys no later group wrote.
    const KEYS: u8 = 200;

    #[derive(Debug, Clone)]
    enum Op {
        /// A snapshot at the latest write.
        Open,
        /// Closes the `n`th open snapshot (modulo how many are open).
        Close(usize),
        /// A group writing these keys.
        Write(Vec<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => Just(Op::Open),
            1 => any::<usize>().prop_map(Op::Close),
            8 => prop::collection::vec(0..KEYS, 1..5).prop_map(Op::Write),
        ]
    }

    /// Every committer of a group hears its own verdict, whatever the
    /// group's size: the tree of wake-ups loses none, whether a committer
    /// waits already or comes to wait after its verdict was set.
    #[test]
    fn every_committer_hears_its_own_verdict_through_the_tree_of_wake_ups() {
        for size in [1, 2, 3, 7, 8, 17] {
            let waiters: Vec<Arc<Waiter>> = (0..size).map(|_| Arc::default()).collect();
            let (heard, verdicts) = std::sync::mpsc::channel();
            for (i, waiter) in waiters.iter().enumerate() {
                let (waiter, heard) = (Arc::clone(waiter), heard.clone());
                // The last comes to wait after the verdicts are set.
                let late = i + 1 == size && size > 1;
                std::thread::spawn(move || {
                    if late {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    let _ = heard.send((i, waiter.wait()));
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let group = waiters
                .iter()
                .enumerate()
                .map(|(i, w)| (Ok(i as u64), Arc::clone(w)))
                .collect();
            tell_group(group);
            let mut told: Vec<usize> = (0..size)
                .map(|_| {
                    let (i, verdict) = verdicts
                        .recv_timeout(std::time::Duration::from_secs(10))
                        .expect("a committer was never woken");
                    assert_eq!(verdict.map(|v| v.ok()), Some(Some(i as u64)));
                    i
                })
                .collect();
            told.sort_unstable();
            assert_eq!(told, (0..size).collect::<Vec<_>>());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// For the open snapshots, the tracker says a key (or a range)
        /// changed exactly when a group written after the snapshot wrote
        /// it (or one in the range): through groups kept as written, groups
        /// folded into the map behind a long-lived snapshot, and forgetting.
        #[test]
        fn the_tracker_knows_every_write_an_open_snapshot_missed(
            ops in prop::collection::vec(op(), 1..400)
        ) {
            let queue = CommitQueue::default();
            // The sequence of each key's last write.
            let mut last = [0u64; KEYS as usize];
            let mut open: Vec<u64> = Vec::new();
            let mut seq = 1;
            for op in ops {
                match op {
                    Op::Open => {
                        *queue.tracker.lock().open_snapshots.entry(seq).or_default() += 1;
                        open.push(seq);
                    }
                    Op::Close(n) if !open.is_empty() => {
                        queue.unregister(open.remove(n % open.len()));
                    }
                    Op::Close(_) => {}
                    Op::Write(mut keys) => {
                        seq += 1;
                        keys.sort_unstable();
                        keys.dedup();
                        for k in &keys {
                            last[usize::from(*k)] = seq;
                        }
                        queue.remember(keys.iter().map(|k| vec![*k]).collect(), seq, Vec::new());
                    }
                }
                // The oldest and the newest snapshot open (checking all
                // of them made the test ten times slower).
                let tracker = queue.tracker.lock();
                let ends = [open.iter().min(), open.iter().max()];
                for &snapshot in ends.into_iter().flatten() {
                    for k in 0..KEYS {
                        let written = |k: u8| last[usize::from(k)] > snapshot;
                        prop_assert_eq!(tracker.changed(&[k], snapshot), written(k));
                        let upper = k.saturating_add(3);
                        prop_assert_eq!(
                            tracker.changed_in(&[k], &[upper], snapshot),
                            (k..upper.min(KEYS)).any(written)
                        );
                    }
                }
            }
        }
    }
}
