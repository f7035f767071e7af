//! The TiKV engine (cargo feature `tikv`): onedb's keys in a TiKV cluster
//! that several onedb servers share (`--store tikv://pd:port,…/namespace`).
//!
//! - **Sequence numbers are TSO timestamps** from the placement driver. A
//!   snapshot is a timestamp; its reads are TiKV's MVCC reads at it.
//! - **Keys** live under `NAMESPACE/d/`. With org-prefixed keys
//!   (`keys::Tenant`), an org's data is one contiguous range, so TiKV's
//!   region splits follow orgs as shard keys.
//! - **Conflicts.** TiKV checks write-write conflicts only on the keys a
//!   transaction writes or locks, never on a range. So every write also
//!   writes one commit key (`NAMESPACE/c`): two writes overlap in time only
//!   if one of them fails at prewrite. A write begins at a fresh timestamp
//!   `now`, checks that every key and range of its read sets reads the same
//!   at `now` as at the reader's snapshot, and commits — nothing can commit
//!   in between without refusing ours, which is then tried again from a new
//!   `now`. Write throughput is that of one key (a few hundred commits a
//!   second); reads scale with the cluster.
//! - **Exactly once.** Each write also puts this process's marker key with
//!   a fresh nonce. When TiKV cannot say whether a commit happened
//!   (`UndeterminedError`), the marker is read back (the read resolves the
//!   commit's locks): our nonce means it landed. Only when that read fails
//!   too is the result `OUTCOME_UNKNOWN`.
//!
//! Not tested on these machines: no TiKV or PD server can be installed here.
//! The conformance suite runs against a cluster named by `ONEDB_TIKV_PD`
//! (docs/ARCHITECTURE.md, "Scale-out").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tikv_client::{
    BoundRange, CheckLevel, Config, Key, KvPair, Snapshot, Timestamp, TimestampExt,
    TransactionClient, TransactionOptions,
};

use crate::error::{Error, Result};
use crate::storage::engine::{Engine, EngineSnapshot, ReadSet, Reads};
use crate::storage::engines::cluster::{
    Blocking, CHUNK, ChunkCursor, ChunkSource, ClusterConfig, Keyspace,
};
use crate::storage::hash::FxHashSet as HashSet;

/// One request's deadline inside the client (it retries region errors and
/// leader changes itself within it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a write is begun again after a concurrent write took the
/// commit key first, before it gives up with `CONFLICT`.
const ATTEMPTS: usize = 16;

pub(crate) struct Tikv {
    blocking: Blocking,
    client: std::sync::Arc<TransactionClient>,
    keys: Keyspace,
    /// The commit key every write writes (`NAMESPACE/c/`).
    commit_key: Vec<u8>,
    /// The newest timestamp this process has seen.
    seen: AtomicU64,
    /// This process's marker key; held while writing, so writes of one
    /// process go one at a time.
    marker: Mutex<Vec<u8>>,
    #[cfg(test)]
    fail_next_write: std::sync::atomic::AtomicU8,
}

/// A read set in the store's own keys, owned for the async check.
struct Check {
    snapshot: u64,
    keys: Vec<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How one attempt at a write ended.
enum Attempt {
    Committed(u64),
    /// A key or range of a read set reads differently now.
    Changed,
    /// Another write committed between our start and our prewrite.
    Overtaken,
    /// TiKV could not say whether the commit happened.
    Undetermined(String),
}

fn failed(what: &str, e: tikv_client::Error) -> Error {
    Error::io(format!("tikv: {what}: {e}"))
}

/// Whether `e` is a write conflict (another transaction wrote or locked a
/// key of ours after our start).
fn is_conflict(e: &tikv_client::Error) -> bool {
    use tikv_client::Error as E;
    match e {
        E::KeyError(k) => k.conflict.is_some() || !k.retryable.is_empty(),
        E::MultipleKeyErrors(all) | E::ExtractedErrors(all) => all.iter().any(is_conflict),
        E::PessimisticLockError { inner, .. } => is_conflict(inner),
        _ => false,
    }
}

fn ts(version: u64) -> Timestamp {
    Timestamp::from_version(version)
}

fn range(lower: &[u8], upper: &[u8]) -> BoundRange {
    BoundRange::from(Key::from(lower.to_vec())..Key::from(upper.to_vec()))
}

fn pairs(found: impl Iterator<Item = KvPair>) -> Vec<(Vec<u8>, Vec<u8>)> {
    found
        .map(|kv| {
            let (key, value): (Key, Vec<u8>) = kv.into();
            (Vec::from(key), value)
        })
        .collect()
}

/// Every entry of `[lower, upper)` in a snapshot.
async fn scan_all(
    snapshot: &mut Snapshot,
    lower: &[u8],
    upper: &[u8],
) -> tikv_client::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut all = Vec::new();
    let mut from = lower.to_vec();
    loop {
        let chunk = pairs(snapshot.scan(range(&from, upper), CHUNK as u32).await?);
        let more = chunk.len() == CHUNK;
        if let Some((last, _)) = chunk.last() {
            from = last.clone();
            from.push(0);
        }
        all.extend(chunk);
        if !more {
            return Ok(all);
        }
    }
}

/// Whether every key and range of `check` reads the same at `now` as at
/// its snapshot.
async fn unchanged(
    client: &TransactionClient,
    check: &Check,
    now: u64,
) -> tikv_client::Result<bool> {
    let at = |v| client.snapshot(ts(v), TransactionOptions::new_optimistic());
    let (mut then, mut current) = (at(check.snapshot), at(now));
    if !check.keys.is_empty() {
        let before: BTreeMap<_, _> = pairs(then.batch_get(check.keys.clone()).await?)
            .into_iter()
            .collect();
        let after: BTreeMap<_, _> = pairs(current.batch_get(check.keys.clone()).await?)
            .into_iter()
            .collect();
        if before != after {
            return Ok(false);
        }
    }
    for (lower, upper) in &check.ranges {
        if scan_all(&mut then, lower, upper).await? != scan_all(&mut current, lower, upper).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Tikv {
    pub fn open(config: &ClusterConfig) -> Result<Tikv> {
        let blocking = Blocking::new("onedb-tikv")?;
        let endpoints = config.endpoints.clone();
        let client = blocking
            .call(async move {
                let config = Config::default().with_timeout(REQUEST_TIMEOUT);
                TransactionClient::new_with_config(endpoints, config).await
            })
            .ok_or_else(|| Error::io("the tikv client is shutting down"))?
            .map_err(|e| failed("connecting to the placement driver", e))?;
        let keys = Keyspace::new(&config.namespace);
        let tikv = Tikv {
            blocking,
            client: std::sync::Arc::new(client),
            commit_key: keys.key(b'c', b""),
            marker: Mutex::new(keys.marker()),
            keys,
            seen: AtomicU64::new(0),
            #[cfg(test)]
            fail_next_write: Default::default(),
        };
        // Fails fast when the placement driver does not answer.
        tikv.now()?;
        Ok(tikv)
    }

    #[cfg(test)]
    pub fn fail_next_write(&self, unknown: bool) {
        self.fail_next_write
            .store(1 + u8::from(unknown), Ordering::SeqCst);
    }

    fn data(&self, key: &[u8]) -> Vec<u8> {
        self.keys.key(b'd', key)
    }

    /// Runs a request against the client on the runtime.
    fn run<T: Send + 'static, F>(
        &self,
        what: &str,
        request: impl FnOnce(std::sync::Arc<TransactionClient>) -> F,
    ) -> Result<T>
    where
        F: std::future::Future<Output = tikv_client::Result<T>> + Send + 'static,
    {
        self.blocking
            .call(request(self.client.clone()))
            .ok_or_else(|| Error::io("the tikv client is shutting down"))?
            .map_err(|e| failed(what, e))
    }

    fn saw(&self, version: u64) {
        self.seen.fetch_max(version, Ordering::SeqCst);
    }

    /// A fresh timestamp from the placement driver.
    fn now(&self) -> Result<u64> {
        let now = self.run("a timestamp", |c| async move {
            c.current_timestamp().await.map(|t| t.version())
        })?;
        self.saw(now);
        Ok(now)
    }

    /// The values of `keys` (onedb's keys) at `at`, in the order asked.
    fn read_at(&self, at: u64, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| self.data(k)).collect();
        let asked = wanted.clone();
        let found = self.run("a read", |c| async move {
            let mut snapshot = c.snapshot(ts(at), TransactionOptions::new_optimistic());
            Ok(pairs(snapshot.batch_get(asked).await?))
        })?;
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = found.into_iter().collect();
        Ok(wanted.iter().map(|k| found.remove(k)).collect())
    }

    fn checks(&self, guards: &[ReadSet]) -> Vec<Check> {
        guards
            .iter()
            .map(|g| self.check(g.snapshot, &g.keys, &g.ranges))
            .collect()
    }

    /// The check of one read set, given by its parts, in TiKV's keys.
    fn check(
        &self,
        snapshot: u64,
        keys: &HashSet<Vec<u8>>,
        ranges: &[(Vec<u8>, Vec<u8>)],
    ) -> Check {
        Check {
            snapshot,
            keys: keys.iter().map(|k| self.data(k)).collect(),
            ranges: ranges
                .iter()
                .map(|(l, u)| (self.data(l), self.keys.end(b'd', u)))
                .collect(),
        }
    }

    /// One attempt: begin at a fresh timestamp, check the read sets, write.
    fn attempt(
        &self,
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
        checks: &std::sync::Arc<Vec<Check>>,
        marker: &[u8],
        nonce: &[u8],
    ) -> Result<Attempt> {
        let (writes, checks) = (writes.to_vec(), checks.clone());
        let (commit_key, marker, nonce) =
            (self.commit_key.clone(), marker.to_vec(), nonce.to_vec());
        self.run("a write", |c| async move {
            let options = TransactionOptions::new_optimistic().drop_check(CheckLevel::None);
            let mut txn = c.begin_with_options(options).await?;
            let now = txn.start_timestamp().version();
            for check in checks.iter() {
                if !unchanged(&c, check, now).await? {
                    txn.rollback().await?;
                    return Ok(Attempt::Changed);
                }
            }
            // The commit key first: it is the transaction's primary.
            txn.put(commit_key, nonce.clone()).await?;
            for (key, value) in writes {
                match value {
                    Some(v) => txn.put(key, v).await?,
                    None => txn.delete(key).await?,
                }
            }
            txn.put(marker, nonce).await?;
            match txn.commit().await {
                Ok(at) => Ok(Attempt::Committed(at.map_or(now, |t| t.version()))),
                Err(tikv_client::Error::UndeterminedError(e)) => {
                    Ok(Attempt::Undetermined(e.to_string()))
                }
                Err(e) if is_conflict(&e) => {
                    // Our prewritten locks would block readers until their TTL.
                    let _ = txn.rollback().await;
                    Ok(Attempt::Overtaken)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// After an undetermined commit: whether the marker holds our nonce.
    fn landed(&self, marker: &[u8], nonce: &[u8]) -> Result<bool> {
        let now = self.now()?;
        let key = marker.to_vec();
        let value = self.run("reading the marker back", |c| async move {
            c.snapshot(ts(now), TransactionOptions::new_optimistic())
                .get(key)
                .await
        })?;
        Ok(value.as_deref() == Some(nonce))
    }
}

impl Engine for Tikv {
    type Snapshot<'a> = TikvSnapshot<'a>;

    fn snapshot(&self) -> TikvSnapshot<'_> {
        // With no placement driver answering, the reads at the last known
        // timestamp fail the same way; nothing is read from a stale view.
        let at = self
            .now()
            .unwrap_or_else(|_| self.seen.load(Ordering::SeqCst));
        TikvSnapshot { engine: self, at }
    }

    fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.get_latest_many(&[key.to_vec()])?.1.pop().flatten())
    }

    fn latest_sequence(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }

    fn get_latest_many(&self, keys: &[Vec<u8>]) -> Result<(u64, Vec<Option<Vec<u8>>>)> {
        let now = self.now()?;
        let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        Ok((now, self.read_at(now, &keys)?))
    }

    fn write<'k>(
        &self,
        entries: impl Iterator<Item = (&'k [u8], Option<&'k [u8]>)>,
        _bytes: usize,
        _sync: bool,
        guards: &[ReadSet],
    ) -> Result<u64> {
        let marker = self.marker.lock();
        #[cfg(test)]
        let fault = self.fail_next_write.swap(0, Ordering::SeqCst);
        #[cfg(test)]
        if fault == 1 {
            return Err(Error::io("injected write failure"));
        }
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = entries
            .map(|(k, v)| (self.data(k), v.map(<[u8]>::to_vec)))
            .collect();
        let checks = std::sync::Arc::new(self.checks(guards));
        for _ in 0..ATTEMPTS {
            let nonce = rand::random::<u128>().to_be_bytes();
            match self.attempt(&writes, &checks, &marker, &nonce)? {
                Attempt::Committed(at) => {
                    self.saw(at);
                    #[cfg(test)]
                    if fault == 2 {
                        return Err(Error::outcome_unknown(
                            "injected: written, reported unknown",
                        ));
                    }
                    return Ok(at);
                }
                Attempt::Changed => break,
                Attempt::Overtaken => continue,
                Attempt::Undetermined(why) => match self.landed(&marker, &nonce) {
                    Ok(true) => return Ok(self.seen.load(Ordering::SeqCst)),
                    // Reading the marker resolved the commit: it did not land.
                    Ok(false) => continue,
                    Err(_) => {
                        return Err(Error::outcome_unknown(format!(
                            "TiKV did not confirm the write, which may or may not have happened: {why}"
                        )));
                    }
                },
            }
        }
        Err(Error::conflict(
            "a concurrent transaction changed the same data; retry",
        ))
    }

    fn conflicts(&self, sets: &[Reads<'_>]) -> Result<bool> {
        let now = self.now()?;
        for set in sets {
            let check = self.check(set.snapshot, set.keys, set.ranges);
            if self.run("a conflict check", |c| async move {
                Ok(!unchanged(&c, &check, now).await?)
            })? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

pub(crate) struct TikvSnapshot<'a> {
    engine: &'a Tikv,
    at: u64,
}

impl EngineSnapshot for TikvSnapshot<'_> {
    type Cursor<'c>
        = TikvCursor<'c>
    where
        Self: 'c;

    fn sequence(&self) -> u64 {
        self.at
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.engine.read_at(self.at, &[key])?.pop().flatten())
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>> {
        self.engine.read_at(self.at, keys)
    }

    fn cursor(&self, lower: &[u8], upper: &[u8], reverse: bool) -> TikvCursor<'_> {
        ChunkCursor::new(self.engine, self.at, lower, upper, reverse)
    }
}

/// A scan: `CHUNK` entries at a time at the snapshot's timestamp.
pub(crate) type TikvCursor<'a> = ChunkCursor<'a, Tikv>;

impl ChunkSource for Tikv {
    fn chunk(
        &self,
        lower: &[u8],
        upper: &[u8],
        at: u64,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let bounds = range(&self.data(lower), &self.keys.end(b'd', upper));
        let found = self.run("a scan", |c| async move {
            let mut snapshot = c.snapshot(ts(at), TransactionOptions::new_optimistic());
            let found = if reverse {
                pairs(snapshot.scan_reverse(bounds, CHUNK as u32).await?)
            } else {
                pairs(snapshot.scan(bounds, CHUNK as u32).await?)
            };
            Ok(found)
        })?;
        let strip = self.keys.overhead();
        Ok(found
            .into_iter()
            .map(|(k, v)| (k[strip..].to_vec(), v))
            .collect())
    }
}
