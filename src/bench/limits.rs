//! The physical limit beside each figure: raw RocksDB doing the same
//! physical work as onedb (W1's batch of keys, point gets, the index
//! prefix scans, Q4's two-level scan, a load's batched writes), bare
//! tantivy for name search and exact search for vectors. Raw RocksDB opens
//! a data directory with exactly onedb's options; nothing here decodes a
//! record, checks a permission or builds a row.
//!
//! `Replay` is also what the criterion benches replay as their raw batch.
#![allow(
    clippy::disallowed_types,
    reason = "the raw RocksDB baseline is the point of this file"
)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rocksdb::{DB, ReadOptions, WriteBatch};

use crate::bench::workloads::Query;
use crate::error::{Error, Result};
use crate::keys::{Direction, Tenant, prefix_end};
use crate::model::{Dim, Id};
use crate::storage::{rocksdb_options, rocksdb_write_options};
use crate::vector::distance::dot;

/// A raw RocksDB over a data directory, with onedb's options.
pub struct Raw {
    db: DB,
}

/// Bytes of a node reference in an edge key (dimension tag, then the id).
const NODE: usize = 17;

impl Raw {
    pub fn open(dir: &Path) -> Result<Raw> {
        Ok(Raw {
            db: DB::open(&rocksdb_options(), dir)?,
        })
    }

    /// Compacts the whole database: a load ingests its files into level 0,
    /// and the compactions that follow would otherwise run under the
    /// first side measured (raw's) and not under the second (onedb's).
    pub fn compact(&self) {
        self.db.compact_range::<&[u8], &[u8]>(None, None);
    }

    /// The keys in `[lower, upper)`, at most `limit`, ascending or not.
    fn keys(
        &self,
        lower: &[u8],
        upper: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        opts.set_iterate_upper_bound(upper.to_vec());
        let mut it = self.db.raw_iterator_opt(opts);
        if reverse {
            it.seek_to_last();
        } else {
            it.seek_to_first();
        }
        let mut out = Vec::new();
        while it.valid() && out.len() < limit {
            if let Some(k) = it.key() {
                out.push(k.to_vec());
            }
            if reverse {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status()?;
        Ok(out)
    }

    fn prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        self.keys(prefix, &prefix_end(prefix), false, limit)
    }

    /// Reads every key in one go; the count of values found.
    fn get_all(&self, keys: &[Vec<u8>]) -> Result<usize> {
        let mut n = 0;
        for v in self.db.multi_get(keys) {
            n += usize::from(v?.is_some());
        }
        Ok(n)
    }

    /// The far ends of the `kind` edges out of `node`.
    fn far_ends(&self, t: Tenant, node: Id, kind: &str) -> Result<Vec<[u8; 16]>> {
        let prefix = t.edges(Direction::Out, node, Some(kind));
        Ok(self
            .prefix(&prefix, usize::MAX)?
            .iter()
            .filter_map(|k| {
                k.get(prefix.len() + 1..prefix.len() + NODE)?
                    .try_into()
                    .ok()
            })
            .collect())
    }

    /// The physical work of `query` in tenant `t`: the keys onedb reads to
    /// answer it. Returns how many records it read (so no work is skipped).
    pub fn run(&self, t: Tenant, query: &Query) -> Result<usize> {
        let thing = |raw: &[u8; 16]| t.thing(Id::from_raw(Dim::Thing, u128::from_be_bytes(*raw)));
        match query {
            Query::Q1 { thing } => Ok(usize::from(self.db.get(t.thing(*thing))?.is_some())),
            Query::Q2 { kind, status } => {
                let keys: Vec<Vec<u8>> = self
                    .prefix(&t.things_of_status(kind, *status), 50)?
                    .iter()
                    .filter_map(|k| k.get(k.len().checked_sub(16)?..)?.try_into().ok())
                    .map(|raw: [u8; 16]| thing(&raw))
                    .collect();
                self.get_all(&keys)
            }
            Query::Q3 { person } => {
                let keys: Vec<Vec<u8>> = self
                    .far_ends(t, *person, "owns")?
                    .iter()
                    .map(thing)
                    .collect();
                self.get_all(&keys)
            }
            Query::Q4 { person } => {
                let mut seen = HashSet::new();
                for f in self.far_ends(t, *person, "following")? {
                    let f = Id::from_raw(Dim::Person, u128::from_be_bytes(f));
                    seen.extend(self.far_ends(t, f, "owns")?);
                }
                Ok(seen.len())
            }
            Query::Q7 {
                thing,
                since,
                until,
            } => {
                let at = |ms: i64| Id::from_raw(Dim::Event, (ms.max(0) as u128) << 80);
                let lower = t.event_by_target(*thing, at(*since));
                let upper = t.event_by_target(*thing, at(until.saturating_add(1)));
                let keys: Vec<Vec<u8>> = self
                    .keys(&lower, &upper, true, 20)?
                    .iter()
                    .filter_map(|k| k.get(k.len().checked_sub(16)?..)?.try_into().ok())
                    .map(|raw: [u8; 16]| {
                        t.event(Id::from_raw(Dim::Event, u128::from_be_bytes(raw)))
                    })
                    .collect();
                self.get_all(&keys)
            }
            Query::W1 { .. } | Query::Q5 { .. } | Query::Q6 { .. } => Err(Error::invalid(
                "W1, Q5 and Q6 have their own limits (Replay, BareTantivy, exact search)",
            )),
        }
    }

    /// Writes every key of this database into `to` in batches of `batch`
    /// keys, unsynced, as a load would; the keys written and the time the
    /// writes took (reading them here is not counted).
    pub fn copy_into(&self, to: &Raw, batch: usize) -> Result<(u64, Duration)> {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        let opts = rocksdb_write_options(false);
        let (mut keys, mut took) = (0u64, Duration::ZERO);
        let mut wb = WriteBatch::default();
        while it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                let t = Instant::now();
                wb.put(k, v);
                keys += 1;
                if wb.len() >= batch {
                    to.db.write_opt(std::mem::take(&mut wb), &opts)?;
                }
                took += t.elapsed();
            }
            it.next();
        }
        it.status()?;
        let t = Instant::now();
        if !wb.is_empty() {
            to.db.write_opt(wb, &opts)?;
        }
        to.db.flush()?;
        Ok((keys, took + t.elapsed()))
    }

    /// Every key and value (for `diff`).
    pub fn entries(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        let mut out = BTreeMap::new();
        while it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                out.insert(k.to_vec(), v.to_vec());
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        Ok(self.db.write_opt(batch, &rocksdb_write_options(sync))?)
    }
}

// ---- a commit's keys, replayed ----

/// One key a onedb commit wrote (None: deleted). `fresh` when the key did
/// not exist before (new records and index entries), as opposed to keys it
/// rewrote (usage counters, the commit counter).
#[derive(Debug, Clone)]
pub struct Change {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    pub fresh: bool,
}

/// Every key whose value differs between two full scans.
pub fn diff(
    before: &BTreeMap<Vec<u8>, Vec<u8>>,
    after: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (k, v) in after {
        match before.get(k) {
            Some(old) if old == v => {}
            old => changes.push(Change {
                key: k.clone(),
                value: Some(v.clone()),
                fresh: old.is_none(),
            }),
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            changes.push(Change {
                key: k.clone(),
                value: None,
                fresh: false,
            });
        }
    }
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    changes
}

/// The key/values one commit wrote, replayable as raw `WriteBatch`es.
///
/// Fresh keys are made fresh again on every replay: in each new record or
/// index key (`02 tenant(16) family(1) rest…`), the first 8 bytes of `rest`
/// are replaced by a per-replay salt that grows with every replay. So each
/// replay writes new, never-seen keys of the same length, in the same
/// tenant and the same families as onedb's, landing at the end of each
/// family's range as onedb's time-ordered ids do. Every such key still ends
/// with its own record id, so keys stay distinct. Rewritten keys (counters,
/// the commit counter) are rewritten as they are, as onedb does.
pub struct Replay {
    pub changes: Vec<Change>,
    round: u64,
}

/// Where the salt goes: after `02 tenant(16) family(1)`.
const SALT_AT: usize = 18;

impl Replay {
    pub fn new(changes: Vec<Change>) -> Result<Replay> {
        Replay::starting_at(changes, 0)
    }

    /// A replay whose salts start at `round` (for several writers replaying
    /// the same changes without sharing keys).
    pub fn starting_at(changes: Vec<Change>, round: u64) -> Result<Replay> {
        let replay = Replay { changes, round };
        let keys: BTreeSet<Vec<u8>> = replay.changes.iter().map(|c| replay.key(c, 1)).collect();
        if keys.len() != replay.changes.len() {
            return Err(Error::invalid("salted keys must stay distinct"));
        }
        Ok(replay)
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.changes
            .iter()
            .map(|c| c.key.len() + c.value.as_ref().map_or(0, Vec::len))
            .sum()
    }

    fn salted(c: &Change) -> bool {
        c.fresh && c.key.len() >= SALT_AT + 16 && c.key[0] == 0x02
    }

    fn key(&self, c: &Change, round: u64) -> Vec<u8> {
        let mut key = c.key.clone();
        if Self::salted(c) {
            key[SALT_AT..SALT_AT + 8].copy_from_slice(&((1 << 63) | round).to_be_bytes());
        }
        key
    }

    /// The next batch (fresh keys with the next salt).
    pub fn batch(&mut self) -> WriteBatch {
        self.round += 1;
        let mut batch = WriteBatch::default();
        for c in &self.changes {
            let key = self.key(c, self.round);
            match &c.value {
                Some(v) => batch.put(&key, v),
                None => batch.delete(&key),
            }
        }
        batch
    }
}

// ---- bare tantivy ----

/// Names in a bare tantivy index: one text field, nothing else.
pub struct BareTantivy {
    searcher: tantivy::Searcher,
    name: tantivy::schema::Field,
}

impl BareTantivy {
    pub fn build(dir: &Path, names: impl Iterator<Item = String>) -> Result<BareTantivy> {
        let err = |e: tantivy::TantivyError| Error::io(format!("bare tantivy: {e}"));
        let mut schema = tantivy::schema::Schema::builder();
        let name = schema.add_text_field("name", tantivy::schema::TEXT);
        std::fs::create_dir_all(dir)?;
        let index = tantivy::Index::create_in_dir(dir, schema.build()).map_err(err)?;
        let mut writer: tantivy::IndexWriter = index.writer(50_000_000).map_err(err)?;
        for n in names {
            let mut doc = tantivy::TantivyDocument::default();
            doc.add_text(name, &n);
            writer.add_document(doc).map_err(err)?;
        }
        writer.commit().map_err(err)?;
        let searcher = index.reader().map_err(err)?.searcher();
        Ok(BareTantivy { searcher, name })
    }

    /// The top 10 documents by BM25 for one word; how many were found.
    pub fn top10(&self, word: &str) -> Result<usize> {
        let term = tantivy::Term::from_field_text(self.name, word);
        let query =
            tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::WithFreqs);
        let top = tantivy::collector::TopDocs::with_limit(10).order_by_score();
        let hits = self
            .searcher
            .search(&query, &top)
            .map_err(|e| Error::io(format!("bare tantivy: {e}")))?;
        Ok(hits.len())
    }
}

// ---- exact search ----

/// The 10 nearest of `chunks` to `vector` by a full scan (unit vectors:
/// the dot product is the cosine), with the vector index's own unrolled
/// dot product, so the limit is as fast as onedb's exact search.
pub fn exact_top10(chunks: &[(Id, Vec<f32>)], vector: &[f32]) -> Vec<Id> {
    let mut scored: Vec<(f32, Id)> = chunks.iter().map(|(id, v)| (dot(vector, v), *id)).collect();
    let k = 10.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
    scored.truncate(k);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().map(|(_, id)| id).collect()
}
