//! The etcd engine: onedb's keys in an etcd v3 cluster that several onedb
//! servers share (`--store etcd://h:p,h:p,h:p/namespace`).
//!
//! - **Sequence numbers are etcd revisions.** A snapshot is a revision, so
//!   its reads (`Range` at that revision) are exact until etcd compacts it.
//! - **Keys** live under `NAMESPACE/d/`. A deletion also stamps a guard key
//!   under `NAMESPACE/g/` with the same suffix: etcd compares a range by the
//!   `mod_revision` of the keys it holds, so a deleted key would vanish from
//!   the check; its guard does not.
//! - **Conflicts are checked by etcd** in the transaction that writes: every
//!   key read for update, and every range scanned for update, must have no
//!   data or guard key modified after the reader's snapshot.
//! - **Exactly once across failover.** Each write also puts this process's
//!   marker key (`NAMESPACE/m/<random>`) with a fresh nonce, on condition
//!   that the marker is as this process last left it. When a member dies
//!   mid-write the same transaction is sent to the next member: if the first
//!   attempt landed, the marker check fails and the marker's value shows the
//!   nonce, so the write is reported done, never applied twice. Only when no
//!   member answers before the deadline is the result `OUTCOME_UNKNOWN`.
//!
//! The client (`etcd-client`) is async; this engine owns a small tokio
//! runtime and blocks on it, since storage calls come from plain threads.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, GetResponse, KvClient, SortOrder,
    SortTarget, Txn, TxnOp, TxnOpResponse,
};
use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::storage::engine::{Engine, EngineSnapshot, ReadSet, Reads};
use crate::storage::engines::cluster::{
    Blocking, CHUNK, ChunkCursor, ChunkSource, ClusterConfig, Keyspace,
};
use crate::storage::hash::FxHashSet as HashSet;

/// How long a request keeps trying members before it gives up (a leader
/// election after a member dies takes about a second).
const FAILOVER: Duration = Duration::from_secs(15);
/// One request's own deadline, so a member that hangs is left quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest message the client accepts (a large value, a large scan chunk).
const MAX_MESSAGE: usize = 256 << 20;

pub(crate) struct Etcd {
    blocking: Blocking,
    /// One client per member, so a dead member can be skipped.
    members: Vec<KvClient>,
    /// The member that answered last: asked first.
    preferred: AtomicUsize,
    keys: Keyspace,
    /// The newest revision this process has seen.
    seen: AtomicU64,
    marker: Mutex<Marker>,
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicU8,
    /// Tests: requests sent to the cluster.
    #[cfg(test)]
    requests: AtomicU64,
}

/// This process's marker key, and the revision of its last write.
struct Marker {
    key: Vec<u8>,
    revision: i64,
}

/// What a failed etcd request means for the caller.
enum Failure {
    /// The member could not answer: ask another.
    Retry(String),
    /// The request itself is wrong (too large, compacted revision…).
    Fatal(Error),
}

fn classify(e: etcd_client::Error) -> Failure {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message().to_owned();
            match status.code() {
                Code::OutOfRange if message.contains("compacted") => Failure::Fatal(Error::new(
                    ErrorCode::Conflict,
                    "the snapshot is older than etcd keeps (compacted); retry",
                )),
                Code::InvalidArgument | Code::ResourceExhausted | Code::FailedPrecondition
                    if message.contains("too many") || message.contains("too large") =>
                {
                    Failure::Fatal(Error::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the write is larger than etcd accepts ({message}); raise --max-txn-ops and --max-request-bytes"
                        ),
                    ))
                }
                Code::InvalidArgument | Code::PermissionDenied | Code::Unauthenticated => {
                    Failure::Fatal(Error::io(format!("etcd refused the request: {message}")))
                }
                _ => Failure::Retry(format!("{}: {message}", status.code())),
            }
        }
        other => Failure::Retry(other.to_string()),
    }
}

impl Etcd {
    pub fn open(config: &ClusterConfig) -> Result<Etcd> {
        let blocking = Blocking::new("onedb-etcd")?;
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        let members = config
            .endpoints
            .iter()
            .map(|endpoint| {
                let (options, member) = (options.clone(), endpoint.clone());
                let client = blocking
                    .call(async move { Client::connect([member], Some(options)).await })
                    .ok_or_else(|| Error::io("the etcd client is shutting down"))?;
                client
                    .map(|c| {
                        c.kv_client()
                            .max_decoding_message_size(MAX_MESSAGE)
                            .max_encoding_message_size(MAX_MESSAGE)
                    })
                    .map_err(|e| Error::io(format!("etcd member {endpoint}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let keys = Keyspace::new(&config.namespace);
        let etcd = Etcd {
            blocking,
            members,
            preferred: AtomicUsize::new(0),
            seen: AtomicU64::new(0),
            marker: Mutex::new(Marker {
                key: keys.marker(),
                revision: 0,
            }),
            keys,
            #[cfg(test)]
            fail_next_write: Default::default(),
            #[cfg(test)]
            requests: AtomicU64::new(0),
        };
        // Fails fast when no member answers, and learns the revision.
        etcd.current_revision()?;
        Ok(etcd)
    }

    #[cfg(test)]
    pub fn fail_next_write(&self, unknown: bool) {
        self.fail_next_write
            .store(1 + u8::from(unknown), Ordering::SeqCst);
    }

    #[cfg(test)]
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Tests: counts `n` requests.
    fn sent(&self, n: usize) {
        #[cfg(test)]
        self.requests.fetch_add(n as u64, Ordering::Relaxed);
        #[cfg(not(test))]
        let _ = n;
    }

    fn data(&self, key: &[u8]) -> Vec<u8> {
        self.keys.key(b'd', key)
    }

    fn guard(&self, key: &[u8]) -> Vec<u8> {
        self.keys.key(b'g', key)
    }

    fn saw(&self, revision: i64) {
        self.seen
            .fetch_max(revision.max(0) as u64, Ordering::SeqCst);
    }

    /// Asks the members in turn, starting with the preferred one, until
    /// one answers or the failover deadline passes.
    fn ask<T, F, Fut>(&self, what: &str, request: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(KvClient) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>> + Send + 'static,
    {
        let started = Instant::now();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last = String::new();
        for attempt in 0.. {
            let member = first + attempt;
            let client = self.members[member % self.members.len()].clone();
            self.sent(1);
            match self
                .blocking
                .call(request(client))
                .ok_or_else(|| Error::io("the etcd client is shutting down"))?
            {
                Ok(answer) => {
                    self.preferred
                        .store(member % self.members.len(), Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(e) => match classify(e) {
                    Failure::Fatal(e) => return Err(e),
                    Failure::Retry(why) => last = why,
                },
            }
            if started.elapsed() > FAILOVER {
                break;
            }
            if attempt % self.members.len() == self.members.len() - 1 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Err(Error::io(format!(
            "etcd: no member answered {what}: {last}"
        )))
    }

    /// The cluster's current revision (a linearizable read).
    fn current_revision(&self) -> Result<u64> {
        let key = self.keys.key(b'r', b"");
        let revision = self.ask("a revision read", move |mut kv| {
            let key = key.clone();
            async move {
                let answer = kv
                    .get(key, Some(GetOptions::new().with_count_only()))
                    .await?;
                Ok(answer.header().map_or(0, |h| h.revision()))
            }
        })?;
        self.saw(revision);
        Ok(revision.max(0) as u64)
    }

    /// A range request. At a fixed revision it is first served by the
    /// preferred member alone (serializable: what a revision holds never
    /// changes, and that member answered the snapshot's linearizable read,
    /// so it has applied the revision); if that fails, it goes through
    /// consensus with failover like every other request.
    fn fetch(
        &self,
        what: &str,
        key: Vec<u8>,
        options: GetOptions,
        revision: u64,
    ) -> Result<GetResponse> {
        let options = options.with_revision(revision as i64);
        if revision > 0 {
            let member = self.preferred.load(Ordering::Relaxed) % self.members.len();
            let mut kv = self.members[member].clone();
            let (key, local) = (key.clone(), options.clone().with_serializable());
            self.sent(1);
            if let Some(Ok(answer)) = self
                .blocking
                .call(async move { kv.get(key, Some(local)).await })
            {
                return Ok(answer);
            }
        }
        self.ask(what, move |mut kv| {
            let (key, options) = (key.clone(), options.clone());
            async move { kv.get(key, Some(options)).await }
        })
    }

    /// `key`'s value at `revision` (0: the newest).
    fn read(&self, key: &[u8], revision: u64) -> Result<Option<Vec<u8>>> {
        let mut got = self.fetch("a read", self.data(key), GetOptions::new(), revision)?;
        Ok(got
            .take_kvs()
            .into_iter()
            .next()
            .map(|kv| kv.value().to_vec()))
    }

    /// The comparisons that hold when no key of `guards` changed after
    /// its snapshot: data and guard keys alike.
    fn unchanged(&self, guards: &[ReadSet]) -> Vec<Compare> {
        let mut compares = Vec::new();
        for g in guards {
            self.unchanged_since(g.snapshot, &g.keys, &g.ranges, &mut compares);
        }
        compares
    }

    /// `unchanged` of one read set, given by its parts (the leader's
    /// check holds them apart; nothing is copied).
    fn unchanged_since(
        &self,
        snapshot: u64,
        keys: &HashSet<Vec<u8>>,
        ranges: &[(Vec<u8>, Vec<u8>)],
        compares: &mut Vec<Compare>,
    ) {
        let after = snapshot as i64 + 1;
        for key in keys {
            for stored in [self.data(key), self.guard(key)] {
                compares.push(Compare::mod_revision(stored, CompareOp::Less, after));
            }
        }
        for (lower, upper) in ranges {
            for space in [b'd', b'g'] {
                compares.push(
                    Compare::mod_revision(self.keys.key(space, lower), CompareOp::Less, after)
                        .with_range(self.keys.end(space, upper)),
                );
            }
        }
    }
}

impl Engine for Etcd {
    type Snapshot<'a> = EtcdSnapshot<'a>;

    fn snapshot(&self) -> EtcdSnapshot<'_> {
        let snapshot = self.snapshot_at_first_use();
        snapshot.sequence();
        snapshot
    }

    /// The revision is read when the snapshot is first used: a write
    /// transaction that reads only what it guessed
    /// (`Storage::write_guessing`) and its own writes never needs one.
    fn snapshot_at_first_use(&self) -> EtcdSnapshot<'_> {
        EtcdSnapshot {
            engine: self,
            revision: OnceLock::new(),
        }
    }

    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.read(key, 0)
    }

    fn latest_sequence(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    /// One read-only transaction: every value at one revision.
    fn get_latest_many(&self, keys: &[Vec<u8>]) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        let reads: Vec<TxnOp> = keys
            .iter()
            .map(|k| TxnOp::get(self.data(k), None))
            .collect();
        let txn = Txn::new().and_then(reads);
        let answer = self.ask("a read", move |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })?;
        let revision = answer.header().map_or(0, |h| h.revision());
        self.saw(revision);
        let values = answer
            .op_responses()
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Get(got) => got.kvs().first().map(|kv| kv.value().to_vec()),
                _ => None,
            })
            .collect();
        Ok((revision.max(0) as u64, values))
    }

    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        _bytes: usize,
        _sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64> {
        // One writer at a time per process: the marker orders them.
        let mut marker = self.marker.lock();
        #[cfg(test)]
        let fault = self.fail_next_write.swap(0, Ordering::SeqCst);
        #[cfg(test)]
        if fault == 1 {
            return Err(Error::io("injected write failure"));
        }
        let nonce = rand::random::<u128>().to_be_bytes().to_vec();
        let mut compares = self.unchanged(guards);
        compares.push(Compare::mod_revision(
            marker.key.clone(),
            CompareOp::Equal,
            marker.revision,
        ));
        let mut ops: Vec<TxnOp> = Vec::new();
        for (key, value) in entries {
            match value {
                Some(v) => ops.push(TxnOp::put(self.data(key), v.to_vec(), None)),
                None => {
                    ops.push(TxnOp::delete(self.data(key), None));
                    ops.push(TxnOp::put(self.guard(key), Vec::new(), None));
                }
            }
        }
        ops.push(TxnOp::put(marker.key.clone(), nonce.clone(), None));
        // Refused: the marker tells whether an earlier attempt landed.
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else([TxnOp::get(marker.key.clone(), None)]);
        let answer = self.ask("a write", move |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        });
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) if e.code == ErrorCode::Io => {
                return Err(Error::outcome_unknown(format!(
                    "etcd did not confirm the write, which may or may not have happened: {}",
                    e.message
                )));
            }
            Err(e) => return Err(e),
        };
        let revision = answer.header().map_or(0, |h| h.revision());
        let landed = if answer.succeeded() {
            Some(revision)
        } else {
            // The marker as it is now: our nonce means an attempt landed.
            answer.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(got) => got
                    .kvs()
                    .first()
                    .filter(|kv| kv.value() == nonce.as_slice())
                    .map(|kv| kv.mod_revision()),
                _ => None,
            })
        };
        self.saw(revision);
        match landed {
            Some(at) => {
                marker.revision = at;
                #[cfg(test)]
                if fault == 2 {
                    return Err(Error::outcome_unknown(
                        "injected: written, reported unknown",
                    ));
                }
                Ok(at.max(0) as u64)
            }
            None => Err(Error::conflict(
                "a concurrent transaction changed the same data; retry",
            )),
        }
    }

    fn conflicts(&self, sets: &[Reads<'_>]) -> Result<bool> {
        let mut compares = Vec::new();
        for set in sets {
            self.unchanged_since(set.snapshot, set.keys, set.ranges, &mut compares);
        }
        let txn = Txn::new().when(compares);
        let answer = self.ask("a conflict check", move |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })?;
        self.saw(answer.header().map_or(0, |h| h.revision()));
        Ok(!answer.succeeded())
    }
}

pub(crate) struct EtcdSnapshot<'a> {
    engine: &'a Etcd,
    /// Read at first use (`sequence`).
    revision: OnceLock<u64>,
}

impl EngineSnapshot for EtcdSnapshot<'_> {
    type Cursor<'c>
        = EtcdCursor<'c>
    where
        Self: 'c;

    fn sequence(&self) -> u64 {
        *self.revision.get_or_init(|| {
            // With no member answering, the reads at the last known
            // revision fail the same way; nothing is read from a stale view.
            self.engine
                .current_revision()
                .unwrap_or_else(|_| self.engine.seen.load(Ordering::SeqCst))
        })
    }

    fn sequence_if_taken(&self) -> Option<u64> {
        self.revision.get().copied()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.read(key, self.sequence())
    }

    /// The reads go out together (served by the preferred member, as in
    /// `fetch`); any that fails is read again on its own, with failover.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.len() < 2 {
            return keys.iter().map(|k| self.get(k)).collect();
        }
        let engine = self.engine;
        let member = engine.preferred.load(Ordering::Relaxed) % engine.members.len();
        let options = GetOptions::new()
            .with_revision(self.sequence() as i64)
            .with_serializable();
        let requests: Vec<_> = keys
            .iter()
            .map(|k| {
                let (mut kv, key, options) = (
                    engine.members[member].clone(),
                    engine.data(k),
                    options.clone(),
                );
                async move { kv.get(key, Some(options)).await }
            })
            .collect();
        engine.sent(requests.len());
        let answers = engine
            .blocking
            .call(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for (i, request) in requests.into_iter().enumerate() {
                    tasks.spawn(async move { (i, request.await) });
                }
                let mut answers: Vec<Option<GetResponse>> = Vec::new();
                while let Some(Ok((i, answer))) = tasks.join_next().await {
                    if answers.len() <= i {
                        answers.resize(i + 1, None);
                    }
                    answers[i] = answer.ok();
                }
                answers
            })
            .unwrap_or_default();
        keys.iter()
            .enumerate()
            .map(|(i, key)| match answers.get(i).cloned().flatten() {
                Some(mut got) => Ok(got
                    .take_kvs()
                    .into_iter()
                    .next()
                    .map(|kv| kv.value().to_vec())),
                None => self.get(key),
            })
            .collect()
    }

    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> EtcdCursor<'_> {
        ChunkCursor::new(self.engine, self.sequence(), lower, upper, reverse)
    }
}

/// A scan: `CHUNK` entries at a time at the snapshot's revision.
pub(crate) type EtcdCursor<'a> = ChunkCursor<'a, Etcd>;

impl ChunkSource for Etcd {
    fn chunk(
        &self,
        lower: &[u8],
        upper: &[u8],
        revision: u64,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut options = GetOptions::new()
            .with_range(self.keys.end(b'd', upper))
            .with_limit(CHUNK as i64);
        if reverse {
            options = options.with_sort(SortTarget::Key, SortOrder::Descend);
        }
        let mut got = self.fetch("a scan", self.data(lower), options, revision)?;
        let strip = self.keys.overhead();
        Ok(got
            .take_kvs()
            .into_iter()
            .map(|kv| (kv.key()[strip..].to_vec(), kv.value().to_vec()))
            .collect())
    }
}
