//! A transaction: a snapshot, the writes buffered over it (read back by its
//! own reads), the keys it read (for conflict detection) and the counters it
//! changes (checked against their limits at commit).

use std::any::Any;
use std::collections::btree_map::{self, BTreeMap};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::keys::{self, Changed, Tenant};
use crate::storage::Storage;
use crate::storage::cache::{self, Decoded};
use crate::storage::commit::{CommitRequest, CounterChange};
use crate::storage::engine::{
    AnyCursor, AnySnapshot, Engine, EngineCursor, EngineSnapshot, ReadSet, Reads,
};
use crate::storage::hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The right to write the platform tables (orgs, slugs, emails, the
/// vocabulary) — keys outside every tenant, which any scope may read.
/// `graph` makes one only on the paths that keep those tables: creating and
/// changing orgs, adding and removing people, extending the vocabulary
/// (tests/layers.rs checks that no other file makes one). Meta keys (the
/// commit counter, the index log) are the commit leader's alone.
#[derive(Debug)]
pub(crate) struct PlatformTables(());

impl PlatformTables {
    pub(crate) fn grant() -> PlatformTables {
        PlatformTables(())
    }
}

/// The tenants a transaction may touch. Enforced on every key it reads or
/// writes: a transaction of org A cannot read or write org B's keys, however
/// the key was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    tenant: Tenant,
    every_tenant: bool,
}

impl Scope {
    /// One org's keys, plus reads of the platform tenant (global things).
    pub(crate) fn tenant(tenant: Tenant) -> Scope {
        Scope {
            tenant,
            every_tenant: false,
        }
    }

    /// Every tenant: the platform owner and whole-database checks.
    pub(crate) fn platform(current: Tenant) -> Scope {
        Scope {
            tenant: current,
            every_tenant: true,
        }
    }

    pub(super) fn check(self, key: &[u8], write: bool) -> Result<()> {
        if keys::is_platform_key(key) {
            // Platform tables and meta keys are read by every scope and
            // written only through `put_platform` with its capability.
            return if write {
                Err(Error::forbidden(
                    "platform tables are written only by the org, person, vocabulary, token and login-count paths",
                ))
            } else {
                Ok(())
            };
        }
        if self.every_tenant {
            return Ok(());
        }
        match keys::tenant_of(key) {
            Some(t) if t == self.tenant => Ok(()),
            Some(t) if t == Tenant::PLATFORM && !write => Ok(()),
            _ => Err(Error::forbidden("access outside the organization")),
        }
    }
}

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// Keys read from copies, each with the revision its copy was read at.
type Guessed = Vec<(Vec<u8>, u64)>;

pub struct Txn<'a> {
    storage: &'a Storage,
    snapshot: AnySnapshot<'a>,
    /// Writers only: keeps the conflict tracker's history back to our snapshot.
    _registration: Option<Registration<'a>>,
    scope: Scope,
    writable: bool,
    writes: Writes,
    reads: HashSet<Vec<u8>>,
    /// Key ranges `[lower, upper)` read for update: a commit that adds or
    /// changes any key inside one after our snapshot conflicts (phantoms).
    read_ranges: Vec<(Vec<u8>, Vec<u8>)>,
    counters: BTreeMap<Vec<u8>, CounterChange>,
    /// Records this transaction created (`mark_created`).
    created: Vec<Changed>,
    /// On a shared store: the cached-record kind (`keys::is_cached_record`)
    /// read at this snapshot, decoded.
    memo: Mutex<HashMap<Vec<u8>, cache::Copy>>,
    /// A guessing transaction (`Storage::write_guessing`): the keys it read
    /// from copies older than its snapshot, with each copy's revision.
    guessed: Option<Mutex<Guessed>>,
}

impl<'a> Txn<'a> {
    pub(super) fn begin(storage: &'a Storage, scope: Scope, writable: bool) -> Txn<'a> {
        // Writers register before taking their snapshot, so the conflict
        // tracker keeps every write they could miss. (On a shared store
        // the engine checks conflicts and the tracker keeps nothing.)
        let (snapshot, registration) = if writable && !storage.engine().shared() {
            let (snapshot, seq) = storage.commits().register(|| storage.engine().snapshot());
            (snapshot, Some(Registration { storage, seq }))
        } else {
            (storage.engine().snapshot(), None)
        };
        Txn::over(storage, scope, writable, snapshot, registration)
    }

    /// See `Storage::write_guessing`. On a shared store its snapshot is
    /// taken at first use (`Engine::snapshot_at_first_use`): a transaction
    /// that reads only what it guessed and what it wrote never takes one.
    pub(super) fn begin_guessing(storage: &'a Storage, scope: Scope) -> Txn<'a> {
        let engine = storage.engine();
        if !engine.shared() {
            return Txn::begin(storage, scope, true);
        }
        let mut txn = Txn::over(storage, scope, true, engine.snapshot_at_first_use(), None);
        txn.guessed = Some(Mutex::default());
        txn
    }

    fn over(
        storage: &'a Storage,
        scope: Scope,
        writable: bool,
        snapshot: AnySnapshot<'a>,
        registration: Option<Registration<'a>>,
    ) -> Txn<'a> {
        Txn {
            storage,
            snapshot,
            _registration: registration,
            scope,
            writable,
            writes: BTreeMap::new(),
            reads: HashSet::default(),
            read_ranges: Vec::new(),
            counters: BTreeMap::new(),
            created: Vec::new(),
            memo: Mutex::default(),
            guessed: None,
        }
    }

    /// A guessing transaction: takes `keys` as unchanged since `seq`, as
    /// if it had read them from copies of then; its commit checks it. False
    /// (and nothing assumed) for a transaction that does not guess.
    pub(crate) fn assume_unchanged(&self, keys: &[Vec<u8>], seq: u64) -> bool {
        let Some(guessed) = &self.guessed else {
            return false;
        };
        guessed.lock().extend(keys.iter().map(|k| (k.clone(), seq)));
        true
    }

    /// Whether a copy this transaction used from an earlier one changed
    /// after that copy was read (the copies of its keys are then dropped):
    /// then what it decided may rest on an out-of-date record, and its
    /// caller runs it again. False when no copy was used or the store
    /// cannot tell.
    pub(crate) fn guessed_wrong(&self) -> bool {
        let Some(guessed) = &self.guessed else {
            return false;
        };
        let guessed = guessed.lock().clone();
        guesses_changed(self.storage, &guessed).unwrap_or(false)
    }

    /// The store this transaction reads (and commits to).
    pub(crate) fn storage(&self) -> &'a Storage {
        self.storage
    }

    pub fn tenant(&self) -> Tenant {
        self.scope.tenant
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Moves a platform-wide transaction to another tenant; others may only
    /// stay where they are.
    pub fn switch_tenant(&mut self, tenant: Tenant) -> Result<()> {
        if tenant != self.scope.tenant && !self.scope.every_tenant {
            return Err(Error::forbidden("access outside the organization"));
        }
        self.scope.tenant = tenant;
        Ok(())
    }

    /// Returns once every commit this transaction's snapshot sees has been
    /// reported to the derived indexes (see `CommitQueue::wait_for_hooks`).
    pub(crate) fn wait_for_index_hooks(&self) {
        self.storage
            .commits()
            .wait_for_hooks(self.snapshot.sequence());
    }

    /// The searchable records this transaction wrote (see `keys::Changed`).
    pub fn written_changes(&self) -> impl Iterator<Item = keys::Changed> + '_ {
        self.writes.keys().filter_map(|k| keys::Changed::of_key(k))
    }

    /// The store sequence this transaction's snapshot sees up to.
    pub fn sequence(&self) -> u64 {
        self.snapshot.sequence()
    }

    /// Whether anything would be committed.
    pub fn is_dirty(&self) -> bool {
        !self.writes.is_empty() || !self.counters.is_empty()
    }

    /// The value as this transaction sees it (its own writes first).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.scope.check(key, false)?;
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.snapshot.get(key)
    }

    /// Several values at once, as `get` would return each.
    pub fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out: Vec<Option<Option<Vec<u8>>>> = Vec::with_capacity(keys.len());
        let mut stored: Vec<&[u8]> = Vec::new();
        for key in keys {
            self.scope.check(key, false)?;
            match self.writes.get(key) {
                Some(v) => out.push(Some(v.clone())),
                None => {
                    out.push(None);
                    stored.push(key);
                }
            }
        }
        let mut read = self.snapshot.get_many(&stored)?.into_iter();
        Ok(out
            .into_iter()
            .map(|own| match own {
                Some(v) => v,
                None => read.next().flatten(),
            })
            .collect())
    }

    /// Like `get`, and the commit fails with `CONFLICT` if another commit
    /// changed the key after this transaction's snapshot.
    pub fn get_for_update(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read_for_update(key);
        self.get(key)
    }

    /// Enters `key` into the read set (unless this transaction wrote it:
    /// then what it reads is its own).
    fn read_for_update(&mut self, key: &[u8]) {
        if self.writable && !self.reads.contains(key) && !self.writes.contains_key(key) {
            self.reads.insert(key.to_vec());
        }
    }

    /// `get`, decoded by `decode`. Records that every writer reads and
    /// few write (`keys::is_cached_record`) come from a copy shared across
    /// transactions when it is valid for this snapshot (`storage/cache.rs`).
    /// Also returns the stored size.
    pub fn get_decoded<T: Any + Send + Sync>(
        &self,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<(Arc<T>, usize)>> {
        self.scope.check(key, false)?;
        if let Some(own) = self.writes.get(key) {
            return match own {
                Some(bytes) => Ok(Some((Arc::new(decode(bytes)?), bytes.len()))),
                None => Ok(None),
            };
        }
        if !keys::is_cached_record(key) {
            return match self.snapshot.get(key)? {
                Some(bytes) => Ok(Some((Arc::new(decode(&bytes)?), bytes.len()))),
                None => Ok(None),
            };
        }
        // On a shared store another server may change any record, so no
        // copy outlives the transaction; within it the snapshot is fixed,
        // and what each statement of a block reads again (the org, the
        // person, a schema) is one request to the store, not one each.
        let shared = self.storage.engine().shared();
        let records = self.storage.commits().records();
        let copy = if shared {
            self.memo_or_guess(key)
        } else {
            records.get(key, self.snapshot.sequence())
        };
        if let Some((copy, len)) = copy {
            match copy.map(Arc::downcast::<T>) {
                None => return Ok(None),
                Some(Ok(value)) => return Ok(Some((value, len))),
                Some(Err(_)) => {} // decoded as another type: read again
            }
        }
        let found = match self.snapshot.get(key)? {
            Some(bytes) => Some((Arc::new(decode(&bytes)?), bytes.len())),
            None => None,
        };
        let seq = self.snapshot.sequence();
        let (copy, len) = match &found {
            Some((value, len)) => (Some(value.clone() as Decoded), *len),
            None => (None, 0),
        };
        if shared {
            self.memo.lock().insert(key.to_vec(), (copy.clone(), len));
            self.storage
                .commits()
                .guesses()
                .insert(key, (copy, len), seq);
        } else {
            records.insert(key, copy, len, seq);
        }
        Ok(found)
    }

    /// A shared store: this transaction's copy of `key`; or, when it is
    /// guessing, one kept from an earlier transaction (at a revision its
    /// snapshot sees, if it has taken one yet), which the commit then
    /// checks: unchanged from the copy's revision to the commit, it is the
    /// value at every revision between.
    fn memo_or_guess(&self, key: &[u8]) -> Option<cache::Copy> {
        let mut memo = self.memo.lock();
        if let Some(copy) = memo.get(key) {
            return Some(copy.clone());
        }
        let guessed = self.guessed.as_ref()?;
        let (copy, read_at) = self.storage.commits().guesses().get(key)?;
        let seq = self.snapshot.sequence_if_taken();
        if seq.is_some_and(|seq| read_at > seq) {
            return None;
        }
        if seq != Some(read_at) {
            guessed.lock().push((key.to_vec(), read_at));
        }
        memo.insert(key.to_vec(), copy.clone());
        Some(copy)
    }

    /// `get_decoded`, read for update (see `get_for_update`).
    pub fn get_decoded_for_update<T: Any + Send + Sync>(
        &mut self,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<(Arc<T>, usize)>> {
        self.read_for_update(key);
        self.get_decoded(key, decode)
    }

    /// Like `scan_prefix`, and the commit fails with `CONFLICT` if another
    /// commit wrote any key under the prefix after this snapshot — so a scan
    /// that found nothing stays true until we commit.
    pub fn scan_prefix_for_update(&mut self, prefix: &[u8], reverse: bool) -> Result<Scan<'_>> {
        if self.writable {
            self.read_ranges
                .push((prefix.to_vec(), keys::prefix_end(prefix)));
        }
        self.scan_prefix(prefix, reverse)
    }

    /// The entries this transaction itself wrote under `prefix` (deletes
    /// left out): for a range the caller knows the snapshot holds nothing
    /// of. No conflict is recorded.
    pub fn scan_prefix_own_writes(
        &self,
        prefix: &[u8],
    ) -> Result<impl Iterator<Item = (&[u8], &[u8])> + '_> {
        let upper = keys::prefix_end(prefix);
        self.check_range(prefix, &upper)?;
        let range = self
            .writes
            .range::<[u8], _>((Bound::Included(prefix), Bound::Excluded(upper.as_slice())));
        Ok(range.filter_map(|(k, v)| v.as_deref().map(|v| (k.as_slice(), v))))
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.check_write(&key)?;
        self.writes.insert(key, Some(value));
        Ok(())
    }

    /// Tells the commit that these records are new — their keys were
    /// absent from the store, under ids no other transaction can know — so
    /// the name index has no older version of them to delete. Deletes are
    /// most of what a bulk load costs the index (tantivy looks each one up
    /// in every segment). The caller vouches; a wrong mark would leave a
    /// stale version searchable.
    pub fn mark_created(&mut self, records: impl IntoIterator<Item = Changed>) {
        self.created.extend(records);
    }

    pub fn delete(&mut self, key: Vec<u8>) -> Result<()> {
        self.check_write(&key)?;
        self.writes.insert(key, None);
        Ok(())
    }

    /// Writes (or, with None, deletes) a platform-table key.
    pub(crate) fn put_platform(
        &mut self,
        _: &PlatformTables,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
    ) -> Result<()> {
        if !self.writable {
            return Err(Error::invalid("write in a read-only transaction"));
        }
        if !keys::is_platform_table_key(&key) {
            return Err(Error::forbidden("not a platform-table key"));
        }
        self.writes.insert(key, value);
        Ok(())
    }

    fn check_write(&self, key: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::invalid("write in a read-only transaction"));
        }
        if self.counters.contains_key(key) {
            return Err(Error::invalid(
                "a counter key is changed through add_counter only",
            ));
        }
        self.scope.check(key, true)
    }

    /// A counter's value as this transaction sees it.
    pub fn counter(&self, key: &[u8]) -> Result<i64> {
        let change = self.counters.get(key);
        let stored = match change.and_then(|c| c.seen) {
            Some(seen) => seen,
            None => self.stored_counter(key)?,
        };
        Ok(stored + change.map_or(0, |c| c.delta))
    }

    fn stored_counter(&self, key: &[u8]) -> Result<i64> {
        Ok(match self.get(key)? {
            Some(bytes) => keys::decode_i64(&bytes)?,
            None => 0,
        })
    }

    /// Adds `delta` to a counter. With a limit (≥ 0), an increase that would
    /// pass it fails with `LIMIT_REACHED` — now against the snapshot (not
    /// on a shared store), and again at commit against the latest value, so
    /// concurrent transactions never pass it together. `exceeded` is the
    /// error message.
    #[cfg(test)]
    pub fn add_counter(
        &mut self,
        key: Vec<u8>,
        delta: i64,
        limit: Option<i64>,
        exceeded: impl Into<String>,
    ) -> Result<()> {
        self.add_counter_with(key, delta, limit, move || exceeded.into())
    }

    /// `add_counter`, with the message made only when it may be needed:
    /// it must be the same for every change of the key under one limit.
    pub fn add_counter_with(
        &mut self,
        key: Vec<u8>,
        delta: i64,
        limit: Option<i64>,
        exceeded: impl FnOnce() -> String,
    ) -> Result<()> {
        self.scope.check(&key, true)?;
        if !self.writable {
            return Err(Error::invalid("write in a read-only transaction"));
        }
        let mut seen = None;
        // On a shared store the snapshot's value costs a request, and the
        // commit checks the limit against the latest value anyway (one
        // request for the whole group's counters): there it is checked only
        // then, and a block that passes it fails at COMMIT.
        if delta > 0
            && let Some(limit) = limit.filter(|l| *l >= 0)
            && !self.storage.engine().shared()
        {
            let change = self.counters.get(&key);
            // The snapshot's value is read once per transaction: once the
            // key is a counter here, nothing in it can write the key.
            let stored = match change.and_then(|c| c.seen) {
                Some(v) => v,
                None => self.stored_counter(&key)?,
            };
            if stored + change.map_or(0, |c| c.delta) + delta > limit {
                return Err(Error::new(ErrorCode::LimitReached, exceeded()));
            }
            seen = Some(stored);
        }
        let change = self.counters.entry(key).or_insert_with(|| CounterChange {
            delta: 0,
            limit: None,
            exceeded: String::new(),
            seen: None,
        });
        change.delta += delta;
        change.seen = change.seen.or(seen);
        if limit.is_some() && (change.limit != limit || change.exceeded.is_empty()) {
            change.limit = limit;
            change.exceeded = exceeded();
        }
        Ok(())
    }

    /// Entries with keys in `[prefix, prefix_end)`, merged with this
    /// transaction's own writes, ascending or descending.
    pub fn scan_prefix(&self, prefix: &[u8], reverse: bool) -> Result<Scan<'_>> {
        self.scan_range(prefix, &keys::prefix_end(prefix), reverse)
    }

    /// Entries with keys in `[lower, upper)`.
    pub fn scan_range(&self, lower: &[u8], upper: &[u8], reverse: bool) -> Result<Scan<'_>> {
        self.check_range(lower, upper)?;
        let range = (
            Bound::Included(lower.to_vec()),
            Bound::Excluded(upper.to_vec()),
        );
        let overlay = self.writes.range(range);
        Ok(Scan {
            snapshot: self.snapshot.cursor(lower, upper, reverse),
            overlay: if reverse {
                Overlay::Reverse(overlay.rev().peekable())
            } else {
                Overlay::Forward(overlay.peekable())
            },
            reverse,
            pending: Pending::None,
        })
    }

    /// A scan may not run past the tenant (or the platform tables) its lower
    /// bound is in, so a range can never spill into another tenant.
    fn check_range(&self, lower: &[u8], upper: &[u8]) -> Result<()> {
        self.scope.check(lower, false)?;
        let limit = match keys::tenant_of(lower) {
            Some(tenant) => keys::prefix_end(&tenant.prefix()),
            None => keys::tenant_data_start(),
        };
        if upper > limit.as_slice() && !self.scope.every_tenant {
            return Err(Error::forbidden("scan outside the organization"));
        }
        Ok(())
    }

    /// Commits atomically. `CONFLICT` if a key read for update changed
    /// since the snapshot; `LIMIT_REACHED` if a counter would pass its limit.
    /// Acknowledged only once durable to the configured level.
    pub fn commit(self) -> Result<u64> {
        self.commit_as(false)
    }

    /// Prunes the index log: deletes the entries `applied` (index-log
    /// keys, which every index has durably applied) and records how far
    /// each index's pruning got (`pruned`, the value of
    /// `keys::index_log_pruned`). Engine bookkeeping on meta keys, which no
    /// other write may touch: not counted by the commit counter, and the
    /// transaction may hold nothing else.
    pub(crate) fn commit_index_log_pruning(
        mut self,
        applied: Vec<Vec<u8>>,
        pruned: Vec<u8>,
    ) -> Result<u64> {
        if !self.writable || self.is_dirty() {
            return Err(Error::invalid(
                "index-log pruning needs a write transaction that holds nothing else",
            ));
        }
        let log = keys::index_log_prefix();
        if applied.iter().any(|k| !k.starts_with(&log)) {
            return Err(Error::forbidden("only index-log entries are pruned"));
        }
        for key in applied {
            self.writes.insert(key, None);
        }
        self.writes.insert(keys::index_log_pruned(), Some(pruned));
        self.commit_as(true)
    }

    fn commit_as(mut self, maintenance: bool) -> Result<u64> {
        let guessed = self
            .guessed
            .take()
            .map(Mutex::into_inner)
            .unwrap_or_default();
        let storage = self.storage;
        if !self.is_dirty() {
            // Nothing to write, but what the copies told must still hold.
            return if guesses_changed(storage, &guessed)? {
                Err(out_of_date())
            } else {
                Ok(0)
            };
        }
        let shared = storage.engine().shared();
        let wrote_cached: Vec<Vec<u8>> = if shared {
            self.writes
                .keys()
                .filter(|k| keys::is_cached_record(k))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        // A snapshot never used has no revision: every key read for
        // update then came from a guess, which carries its own, and the
        // newest revision this process knows is as good as any.
        let snapshot_seq = self
            .snapshot
            .sequence_if_taken()
            .unwrap_or_else(|| storage.engine().latest_sequence());
        let request = CommitRequest {
            snapshot_seq,
            reads: self.reads,
            read_ranges: self.read_ranges,
            writes: self.writes,
            counters: self.counters,
            created: self.created,
            maintenance,
            guessed: read_sets(&guessed),
        };
        let commits = storage.commits();
        let result = commits.commit(storage.engine(), storage.durability(), request);
        // The registration drops here, after the commit is decided.
        if shared {
            let guesses = commits.guesses();
            guesses.forget(wrote_cached.iter().map(Vec::as_slice));
            if result.is_err() {
                guesses.forget(guessed.iter().map(|(k, _)| k.as_slice()));
            }
        }
        result
    }
}

/// The keys read from copies, as one read set per copy revision.
fn read_sets(guessed: &Guessed) -> Vec<ReadSet> {
    let mut sets: BTreeMap<u64, HashSet<Vec<u8>>> = BTreeMap::new();
    for (key, read_at) in guessed {
        sets.entry(*read_at).or_default().insert(key.clone());
    }
    sets.into_iter()
        .map(|(snapshot, keys)| ReadSet {
            snapshot,
            keys,
            ranges: Vec::new(),
        })
        .collect()
}

/// Whether a key of `guessed` changed after its copy's revision; if one
/// did, the copies of them all are dropped.
fn guesses_changed(storage: &Storage, guessed: &Guessed) -> Result<bool> {
    if guessed.is_empty() {
        return Ok(false);
    }
    let sets = read_sets(guessed);
    let reads: Vec<Reads<'_>> = sets.iter().map(ReadSet::as_reads).collect();
    let changed = storage.engine().conflicts(&reads)?;
    if changed {
        storage
            .commits()
            .guesses()
            .forget(guessed.iter().map(|(k, _)| k.as_slice()));
    }
    Ok(changed)
}

/// A guess turned out wrong: the caller runs the transaction again.
pub(crate) fn out_of_date() -> Error {
    Error::conflict("a record changed on another server meanwhile; retry")
}

/// Unregisters a writer's snapshot from the conflict tracker when dropped.
struct Registration<'a> {
    storage: &'a Storage,
    seq: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.storage.commits().unregister(self.seq);
    }
}

type OverlayRange<'t> = btree_map::Range<'t, Vec<u8>, Option<Vec<u8>>>;

enum Overlay<'t> {
    Forward(Peekable<OverlayRange<'t>>),
    Reverse(Peekable<std::iter::Rev<OverlayRange<'t>>>),
}

impl<'t> Overlay<'t> {
    fn peek(&mut self) -> Option<(&'t Vec<u8>, &'t Option<Vec<u8>>)> {
        match self {
            Overlay::Forward(it) => it.peek().copied(),
            Overlay::Reverse(it) => it.peek().copied(),
        }
    }
    fn advance(&mut self) {
        match self {
            Overlay::Forward(it) => {
                it.next();
            }
            Overlay::Reverse(it) => {
                it.next();
            }
        }
    }
}

/// A scan: the snapshot's entries merged with the transaction's writes.
pub struct Scan<'t> {
    snapshot: AnyCursor<'t>,
    overlay: Overlay<'t>,
    reverse: bool,
    /// Where the entry last handed out by `next_ref` came from: advanced
    /// past at the next call, so that entry could be lent, not copied.
    pending: Pending,
}

/// What the merge takes next.
enum Step {
    /// The transaction's own entry; `shadows` when it replaces a stored one.
    Own {
        shadows: bool,
    },
    Stored,
}

#[derive(Clone, Copy)]
enum Pending {
    None,
    Own { shadows: bool },
    Stored,
}

impl Scan<'_> {
    /// The next entry, lent until the next call: scans that look at each
    /// entry once need not copy it.
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => {}
            Pending::Stored => self.snapshot.advance(),
            Pending::Own { shadows } => {
                if shadows {
                    self.snapshot.advance();
                }
                self.overlay.advance();
            }
        }
        loop {
            let own = self.overlay.peek();
            let step = match (self.snapshot.peek(), own) {
                (Some(Err(e)), _) => return Some(Err(e)),
                (None, None) => return None,
                (None, Some(_)) => Step::Own { shadows: false },
                (Some(Ok((sk, _))), own) => match own {
                    Some((ok, _)) if ok.as_slice() == sk => Step::Own { shadows: true },
                    Some((ok, _)) if (ok.as_slice() < sk) != self.reverse => {
                        Step::Own { shadows: false }
                    }
                    _ => Step::Stored,
                },
            };
            match step {
                Step::Stored => {
                    self.pending = Pending::Stored;
                    return self.snapshot.peek();
                }
                Step::Own { shadows } => {
                    let (k, v) = own?;
                    if let Some(v) = v {
                        self.pending = Pending::Own { shadows };
                        return Some(Ok((k.as_slice(), v.as_slice())));
                    }
                    // Deleted by this transaction: skip it (and what it hides).
                    if shadows {
                        self.snapshot.advance();
                    }
                    self.overlay.advance();
                }
            }
        }
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }
}
