//! The derived indexes — tantivy name search and vector search — and how
//! they follow the store.
//!
//! Every commit that writes a thing, person or knowledge record also writes
//! an index log entry naming them (storage/commit.rs), in the same atomic
//! batch. The commit leader then hands those names (with the values
//! written) to [`Indexes`] before acknowledging the commit: they become
//! *pending*. A background indexer applies pending changes from committed
//! records about once a second ([`COMMIT_INTERVAL`]): it commits the name
//! index with the last commit it applied as the watermark, updates the
//! in-memory vector graphs, and saves the vector file now and then
//! ([`SAVE_INTERVAL`]) and on close.
//!
//! A search combines the index with the pending records, read from the
//! searcher's own snapshot (and a transaction's uncommitted writes), so it
//! always agrees with the store it reads — its own writes included — between
//! index commits too. On open, each index replays the log after its
//! watermark before anything is answered; a missing, damaged or too old
//! index is rebuilt from the store (`onedb reindex` forces that).
//!
//! `query.rs` holds the tenant-scoped searches; `names.rs` the tantivy
//! index; `follow.rs` the indexer.

mod follow;
pub mod names;
mod query;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, ErrorCode, Result};
use crate::keys::{Changed, Tenant};
use crate::model::{Dim, Id};
use crate::storage::Committed;
use crate::storage::hash::FxHashMap;
use crate::storage::{Storage, Txn};
use crate::vector::OrgVectors;

pub use names::NameIndex;
pub use query::{Found, KnowledgeHit, KnowledgeSearch, NameHit, NameSearch};

/// How often the indexer applies pending changes and commits the name index.
pub const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// How often, at most, the vector file is rewritten while changes come in.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// Pending changes that make the indexer start at once.
const FLUSH_AT: usize = 10_000;
/// Pending records a search reads from its snapshot; with more, the search
/// waits for the indexer first (bounded by the query's deadline).
pub const PENDING_MAX: usize = 2_000;
/// Applied log entries between deletions of the log's applied prefix.
const PRUNE_EVERY: u64 = 4_096;

/// Where the derived indexes live inside the data directory.
pub fn index_dir(data: &Path) -> PathBuf {
    data.join("indexes")
}

/// What has to be applied, and how far each index has got.
#[derive(Default)]
struct Follow {
    /// Changed records → the last commit that changed them (for names,
    /// with what it wrote, when the hook reported it).
    names: FxHashMap<Changed, PendingName>,
    vectors: FxHashMap<Changed, u64>,
    /// The newest commit the hook reported.
    hooked: u64,
    /// A shared store: the index log is pending or applied through this
    /// commit (`follow::follow_log`).
    followed: u64,
    /// The name index's committed watermark (what its searchers reflect).
    names_durable: u64,
    /// The vector graphs in memory reflect commits up to this one.
    vectors_applied: u64,
    /// The saved vector file's watermark.
    vectors_durable: u64,
    /// The newest commit when the log was last pruned.
    prune_checked: u64,
    /// Flushes begun and done (searches waiting for the indexer watch
    /// them move).
    started: u64,
    flushes: u64,
    flush_requested: bool,
    /// The next flush also saves the vector file (an explicit flush).
    save_requested: bool,
    stop: bool,
    /// The indexer's last failure, if its last flush failed.
    failure: Option<String>,
    /// Flushes that failed since the database was opened.
    failures: u64,
}

/// A name record's last change not yet applied to the name index.
struct PendingName {
    commit: u64,
    /// Where that commit's value of the record is (its `Committed` and
    /// position), so the indexer need not read the store; None for changes
    /// found in the log on open, and once the indexer took it.
    value: Option<(Arc<Committed>, usize)>,
}

/// One org's vectors, shared by the indexer (writing) and searches.
type SharedOrg = Arc<RwLock<OrgVectors>>;

/// The state the indexer and the searches share.
pub(crate) struct Inner {
    dir: PathBuf,
    names: NameIndex,
    vectors: RwLock<HashMap<Tenant, SharedOrg>>,
    follow: Mutex<Follow>,
    /// One reader of the log at a time (`follow::follow_log`).
    following: Mutex<()>,
    /// Wakes the indexer.
    work: Condvar,
    /// Tells waiting searches a flush finished.
    flushed: Condvar,
}

/// The derived indexes of one open database, with their indexer thread.
pub(crate) struct Indexes {
    inner: Arc<Inner>,
    indexer: Option<JoinHandle<()>>,
}

impl Indexes {
    /// Opens (or builds) the indexes of `storage` in `dir`, catches them up
    /// with the store, and starts the indexer. `rebuild` throws the old
    /// indexes away first (`onedb reindex`).
    pub fn open(storage: Arc<Storage>, dir: &Path, rebuild: bool) -> Result<Indexes> {
        if rebuild && dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let names_dir = dir.join("names");
        let (names, names_mark, names_existed) = match NameIndex::open(&names_dir) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!(
                    "onedb: the name index does not open ({}); rebuilding it",
                    e.message
                );
                std::fs::remove_dir_all(&names_dir)?;
                NameIndex::open(&names_dir)?
            }
        };
        let vectors_path = vector_file(dir);
        let (vectors, vectors_mark, vectors_found) = match crate::vector::file::load(&vectors_path)
        {
            Ok(Some((mark, orgs))) => (orgs, mark, true),
            Ok(None) => (HashMap::new(), 0, false),
            Err(e) => {
                eprintln!(
                    "onedb: the vector index does not load ({}); rebuilding it",
                    e.message
                );
                (HashMap::new(), 0, false)
            }
        };
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            names,
            vectors: RwLock::new(
                vectors
                    .into_iter()
                    .map(|(t, o)| (t, Arc::new(RwLock::new(o))))
                    .collect(),
            ),
            follow: Mutex::new(Follow::default()),
            following: Mutex::new(()),
            work: Condvar::new(),
            flushed: Condvar::new(),
        });
        // From here on every commit is reported; the log covers the rest.
        let hook = inner.clone();
        storage.commits().set_hook(
            Box::new(move |commit, changed| hook.report(commit, changed)),
            storage.latest_sequence(),
        );
        follow::catch_up(
            &inner,
            &storage,
            follow::Start {
                names: names_existed.then_some(names_mark),
                vectors: vectors_found.then_some(vectors_mark),
            },
        )?;
        let thread_inner = inner.clone();
        let indexer = std::thread::Builder::new()
            .name("onedb-indexer".into())
            .spawn(move || follow::run(&thread_inner, &storage))
            .map_err(|e| Error::io(format!("cannot start the indexer: {e}")))?;
        Ok(Indexes {
            inner,
            indexer: Some(indexer),
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// How many times the indexer failed (and retried) since open.
    pub fn failures(&self) -> u64 {
        self.inner.follow.lock().failures
    }

    /// Applies every pending change now and makes both indexes durable.
    pub fn flush(&self) -> Result<()> {
        self.inner.follow.lock().save_requested = true;
        self.inner
            .wait_for_flush(Instant::now() + Duration::from_secs(600), true)
    }
}

impl Drop for Indexes {
    fn drop(&mut self) {
        self.inner.follow.lock().stop = true;
        self.inner.work.notify_all();
        if let Some(t) = self.indexer.take() {
            let _ = t.join();
        }
    }
}

fn vector_file(dir: &Path) -> PathBuf {
    dir.join("vectors.bin")
}

impl Inner {
    /// Returns once every commit `txn` sees is in the indexes or pending:
    /// this server's through the commit hook; on a shared store, other
    /// servers' read from the index log.
    pub(crate) fn await_commits(&self, txn: &Txn<'_>) -> Result<()> {
        if txn.storage().engine().shared() {
            follow::follow_log(self, txn.storage())
        } else {
            txn.wait_for_index_hooks();
            Ok(())
        }
    }

    /// The commit hook: called by the commit leader, before acknowledging.
    fn report(&self, commit: u64, changed: &Arc<Committed>) {
        let mut f = self.follow.lock();
        for (i, c) in changed.changes().enumerate() {
            if c.id.dim() == Dim::Knowledge {
                f.vectors.insert(c, commit);
            } else {
                let value = Some((changed.clone(), i));
                f.names.insert(c, PendingName { commit, value });
            }
        }
        f.hooked = f.hooked.max(commit);
        if f.names.len() + f.vectors.len() >= FLUSH_AT {
            self.work.notify_one();
        }
    }

    /// Waits until a flush that started after this call has finished; with
    /// `all`, its failure is an error.
    fn wait_for_flush(&self, deadline: Instant, all: bool) -> Result<()> {
        let mut f = self.follow.lock();
        // A flush that begins after this call: the one running now (if
        // any) may have taken its changes before ours.
        let target = f.started + 1;
        loop {
            if f.flushes >= target {
                // A search goes on either way (what the index lacks is read
                // from the store); an explicit flush reports the failure.
                return match &f.failure {
                    Some(why) if all => Err(Error::io(format!("the indexer failed: {why}"))),
                    _ => Ok(()),
                };
            }
            if f.stop {
                return Err(Error::io("the database is closing"));
            }
            f.flush_requested = true;
            self.work.notify_one();
            if self.flushed.wait_until(&mut f, deadline).timed_out() {
                return Err(Error::new(
                    ErrorCode::Timeout,
                    "the search indexes did not catch up in time",
                ));
            }
        }
    }

    /// Pending name changes of `tenants`, with a searcher taken together
    /// with them (so nothing falls between the two). With too many to read
    /// one by one, waits for one indexer flush first — one, so that writes
    /// faster than the indexer slow searches down but never stall them.
    fn names_snapshot(
        &self,
        tenants: &[Tenant],
        deadline: Instant,
    ) -> Result<(tantivy::Searcher, Vec<Id>)> {
        let take = |f: &Follow| -> Vec<Id> {
            f.names
                .keys()
                .filter(|c| tenants.contains(&c.tenant))
                .map(|c| c.id)
                .collect()
        };
        if take(&self.follow.lock()).len() > PENDING_MAX {
            self.wait_for_flush(deadline, false)?;
        }
        let f = self.follow.lock();
        Ok((self.names.searcher(), take(&f)))
    }

    /// How many knowledge changes of `tenant` the vector index has not
    /// applied yet.
    fn pending_vectors(&self, tenant: Tenant) -> usize {
        self.follow
            .lock()
            .vectors
            .keys()
            .filter(|c| c.tenant == tenant)
            .count()
    }

    /// The org's vectors (if it has any) and its pending knowledge changes
    /// (waiting for one flush first when there are many, as names do).
    fn vectors_snapshot(
        &self,
        tenant: Tenant,
        deadline: Instant,
    ) -> Result<(Option<SharedOrg>, Vec<Id>)> {
        let take = |f: &Follow| -> Vec<Id> {
            f.vectors
                .keys()
                .filter(|c| c.tenant == tenant)
                .map(|c| c.id)
                .collect()
        };
        if take(&self.follow.lock()).len() > PENDING_MAX {
            self.wait_for_flush(deadline, false)?;
        }
        let f = self.follow.lock();
        let pending = take(&f);
        Ok((self.vectors.read().get(&tenant).cloned(), pending))
    }
}

/// What `onedb check` reports about the derived indexes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IndexReport {
    pub names: usize,
    pub vectors: usize,
    pub problems: Vec<String>,
}

impl Indexes {
    /// Flushes, then compares both indexes with the store: the name index
    /// holds exactly the live things and people, the vector index exactly
    /// the live chunks with embeddings, each under its tenant.
    pub fn verify(&self, storage: &Storage) -> Result<IndexReport> {
        self.flush()?;
        follow::verify(&self.inner, storage)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use crate::{Database, NameSearch, NewThing, Plan, Session, ThingUpdate};

    /// The root session in a new org "acme".
    fn acme(db: &Database) -> Session {
        let mut root = db.local_session().unwrap();
        root.run(|t| t.create_org("acme", "Acme", Plan::Enterprise).map(|_| ()))
            .unwrap();
        root.use_org("acme").unwrap();
        root
    }

    fn names(s: &Session, text: &str) -> Vec<String> {
        let q = NameSearch {
            text,
            kinds: None,
            statuses: None,
            limit: 10,
            deadline: Instant::now() + Duration::from_secs(30),
        };
        let t = s.read().unwrap();
        let hits = s.search_names(&t, &q, &mut |_| Ok(true)).unwrap();
        hits.into_iter()
            .map(|h| h.found.name().to_string())
            .collect()
    }

    /// Records a commit created need no delete in the name index (the
    /// costly part of indexing a bulk load); a later change of one still
    /// replaces its document.
    #[test]
    fn created_records_are_added_without_a_delete_and_changes_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).unwrap();
        let root = acme(&db);
        db.flush_indexes().unwrap();
        let deletes = || {
            db.shared()
                .indexes()
                .inner
                .names
                .deletes
                .load(Ordering::Relaxed)
        };
        let before = deletes();
        let ids = root
            .run(|t| {
                (0..50)
                    .map(|n| {
                        let new = NewThing {
                            kind: "task".into(),
                            name: format!("draft {n}"),
                            ..Default::default()
                        };
                        t.create_thing(new).map(|thing| thing.id)
                    })
                    .collect::<crate::Result<Vec<_>>>()
            })
            .unwrap();
        db.flush_indexes().unwrap();
        assert_eq!(deletes(), before, "creations issued deletes");
        assert_eq!(names(&root, "draft").len(), 10);
        root.run(|t| {
            let update = ThingUpdate {
                name: Some("final text".into()),
                ..Default::default()
            };
            t.update_thing(ids[0], update).map(|_| ())
        })
        .unwrap();
        db.flush_indexes().unwrap();
        assert_eq!(deletes(), before + 1);
        assert_eq!(names(&root, "final"), vec!["final text".to_string()]);
        assert!(!names(&root, "0").contains(&"draft 0".to_string()));
    }

    /// A rebuild adds every document without a delete: tantivy keeps each
    /// delete until the commit, and on a 400,000-thing load they took
    /// ~500 MB. The rebuilt index still answers, each name once.
    #[test]
    fn a_rebuild_issues_no_deletes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(dir.path()).unwrap();
            acme(&db)
                .run(|t| {
                    for n in 0..30 {
                        let new = NewThing {
                            kind: "task".into(),
                            name: format!("rebuilt {n}"),
                            ..Default::default()
                        };
                        t.create_thing(new)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let options = crate::Options {
            rebuild_indexes: true,
            ..Default::default()
        };
        let db = Database::open_with(dir.path(), options).unwrap();
        let inner = &db.shared().indexes().inner;
        assert_eq!(inner.names.deletes.load(Ordering::Relaxed), 0);
        let mut root = db.local_session().unwrap();
        root.use_org("acme").unwrap();
        let mut found = names(&root, "rebuilt");
        found.sort();
        found.dedup();
        assert_eq!(found.len(), 10);
        assert!(db.check_indexes().unwrap().problems.is_empty());
    }
}
