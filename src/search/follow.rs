//! The indexer: catches the indexes up with the store on open, then
//! applies what commits report, commits and saves, and prunes the part of
//! the index log every index has durably applied.
//!
//! Changes are applied from committed records — a name record as the last
//! commit that changed it reported it to the hook, else the latest stored
//! one — never from the log itself, so applying a change twice, or a newer
//! state than the log entry describes, is harmless: replay is idempotent.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::keys::{self, Changed, Key, Tenant};
use crate::model::codec::decode;
use crate::model::{Dim, Id, Knowledge, KnowledgeKind, Millis, Org, PersonStatus};
use crate::ontology::Status;
use crate::search::names::NameDoc;
use crate::search::{COMMIT_INTERVAL, IndexReport, Inner, PRUNE_EVERY, SAVE_INTERVAL, vector_file};
use crate::storage::Committed;
use crate::storage::{Scope, Storage, Txn};
use crate::vector::{Item, OrgVectors};

use super::Follow;

/// Where each index starts on open: its watermark, or None to rebuild.
pub(super) struct Start {
    pub names: Option<u64>,
    pub vectors: Option<u64>,
}

/// Records a rebuild reports progress after (on stderr).
const PROGRESS_EVERY: usize = 100_000;

fn platform_read(storage: &Storage) -> Txn<'_> {
    storage.read(Scope::platform(Tenant::PLATFORM))
}

fn read_u64(txn: &Txn<'_>, key: &[u8]) -> Result<u64> {
    match txn.get(key)? {
        Some(bytes) => keys::decode_u64(&bytes),
        None => Ok(0),
    }
}

/// Through which commit the log was pruned, for names and for vectors.
fn read_pruned(txn: &Txn<'_>) -> Result<(u64, u64)> {
    match txn.get(&keys::index_log_pruned())? {
        Some(bytes) if bytes.len() == 16 => Ok((
            keys::decode_u64(&bytes[..8])?,
            keys::decode_u64(&bytes[8..])?,
        )),
        Some(_) => Err(Error::corruption(
            "index log",
            "pruned mark is not 16 bytes",
        )),
        None => Ok((0, 0)),
    }
}

pub(super) fn catch_up(inner: &Inner, storage: &Storage, start: Start) -> Result<()> {
    let txn = platform_read(storage);
    let last = read_u64(&txn, &keys::commit_seq())?;
    let (names_pruned, vectors_pruned) = read_pruned(&txn)?;
    // A watermark past the store's last commit belongs to another history
    // (e.g. a restored backup); one before the pruned log cannot catch up.
    let usable = |mark: Option<u64>, pruned: u64| mark.filter(|m| *m >= pruned && *m <= last);
    let names_mark = usable(start.names, names_pruned);
    let vectors_mark = usable(start.vectors, vectors_pruned);
    // Rebuilding both (a new or restored directory, or after `onedb
    // load`): the name index on a second thread, each from its own read of
    // the same store (nothing writes before the open returns).
    std::thread::scope(|scope| {
        let names = names_mark
            .is_none()
            .then(|| scope.spawn(|| rebuild_names(inner, &platform_read(storage), last)));
        if vectors_mark.is_none() {
            // Rebuilt in memory: durable once the flush below saves it.
            rebuild_vectors(inner, storage, &txn)?;
        }
        match names.map(|h| h.join()) {
            Some(Ok(done)) => done,
            Some(Err(_)) => Err(Error::io("the name index rebuild failed")),
            None => Ok(()),
        }
    })?;
    let names_mark = names_mark.unwrap_or(last);
    let (vectors_mark, vectors_saved) = match vectors_mark {
        Some(m) => (m, m),
        None => (last, 0),
    };
    let from = names_mark.min(vectors_mark) + 1;
    let logged = read_log(&txn, from, last)?;
    let mut f = inner.follow.lock();
    pend(&mut f, logged, names_mark, vectors_mark);
    f.hooked = f.hooked.max(last);
    f.followed = last;
    f.names_durable = names_mark;
    f.vectors_applied = vectors_mark;
    f.vectors_durable = vectors_saved;
    drop(f);
    drop(txn);
    let mut clock = Clock::default();
    flush(inner, storage, true, &mut clock)
}

/// The index log's entries from commit `from` through `last`.
fn read_log(txn: &Txn<'_>, from: u64, last: u64) -> Result<Vec<(u64, Vec<Changed>)>> {
    let mut logged = Vec::new();
    if from > last {
        return Ok(logged);
    }
    for entry in txn.scan_range(&keys::index_log(from), &keys::index_log(last + 1), false)? {
        let (key, value) = entry?;
        if let Key::IndexLog(n) = keys::decode(&key)? {
            logged.push((n, keys::decode_changes(&value)?));
        }
    }
    Ok(logged)
}

/// Makes the logged changes pending (read from the store when applied),
/// those after each index's mark; never replacing a newer pending change.
fn pend(f: &mut Follow, logged: Vec<(u64, Vec<Changed>)>, names_mark: u64, vectors_mark: u64) {
    for (n, changes) in logged {
        for c in changes {
            match c.id.dim() {
                Dim::Knowledge if n > vectors_mark => {
                    let commit = f.vectors.entry(c).or_insert(n);
                    *commit = (*commit).max(n);
                }
                Dim::Thing | Dim::Person
                    if n > names_mark && f.names.get(&c).is_none_or(|p| p.commit < n) =>
                {
                    let pending = super::PendingName {
                        commit: n,
                        value: None,
                    };
                    f.names.insert(c, pending);
                }
                _ => {}
            }
        }
    }
}

/// A shared store: makes pending what other servers committed since the
/// log was last followed, through the store's last commit now. Commits
/// are numbered without gaps across servers (storage/commit.rs), so the
/// log read in order misses none; this server's own commits come again
/// and are applied again, which is harmless.
pub(super) fn follow_log(inner: &Inner, storage: &Storage) -> Result<()> {
    let _alone = inner.following.lock();
    let txn = platform_read(storage);
    let last = read_u64(&txn, &keys::commit_seq())?;
    let followed = inner.follow.lock().followed;
    if last <= followed {
        return Ok(());
    }
    let logged = read_log(&txn, followed + 1, last)?;
    let mut f = inner.follow.lock();
    pend(&mut f, logged, followed, followed);
    f.followed = last;
    f.hooked = f.hooked.max(last);
    if f.names.len() + f.vectors.len() >= super::FLUSH_AT {
        inner.work.notify_one();
    }
    Ok(())
}

/// When the vector file was last saved, and whether that failed.
#[derive(Default)]
pub(super) struct Clock {
    last_save: Option<Instant>,
    save_failed: bool,
}

/// The indexer thread's loop.
pub(super) fn run(inner: &Arc<Inner>, storage: &Arc<Storage>) {
    let mut clock = Clock {
        last_save: Some(Instant::now()),
        save_failed: false,
    };
    loop {
        let (stop, save) = {
            let mut f = inner.follow.lock();
            if !f.stop && !f.flush_requested && f.names.len() + f.vectors.len() < super::FLUSH_AT {
                inner.work.wait_for(&mut f, COMMIT_INTERVAL);
            }
            f.flush_requested = false;
            f.started += 1;
            let save = f.stop || std::mem::take(&mut f.save_requested);
            (f.stop, save)
        };
        // Other servers' commits reach this one through the log.
        let result = if storage.engine().shared() {
            follow_log(inner, storage).and_then(|()| flush(inner, storage, save, &mut clock))
        } else {
            flush(inner, storage, save, &mut clock)
        };
        let failed = result.is_err();
        {
            let mut f = inner.follow.lock();
            f.flushes += 1;
            if let Err(e) = &result {
                eprintln!("onedb: indexer: {} (will retry)", e.message);
                f.failures += 1;
            }
            f.failure = result.err().map(|e| e.message);
        }
        inner.flushed.notify_all();
        if stop {
            return;
        }
        if failed {
            std::thread::sleep(COMMIT_INTERVAL);
        }
    }
}

/// Applies everything pending, commits the name index, saves the vector
/// file when due (`durable`: now), and prunes the log when due.
fn flush(inner: &Inner, storage: &Storage, durable: bool, clock: &mut Clock) -> Result<()> {
    let (names, vectors, upto) = {
        let mut f = inner.follow.lock();
        // Taken with their committed values: a failed flush reads them from
        // the store when it retries.
        let names: Vec<_> = f
            .names
            .iter_mut()
            .map(|(c, p)| (*c, p.value.take()))
            .collect();
        // A shared store: applied through the followed log, since a
        // commit of another server may be numbered below one of this
        // server's own commits and still be on its way.
        let upto = if storage.engine().shared() {
            f.followed
        } else {
            f.hooked
        };
        (names, f.vectors.keys().copied().collect::<Vec<_>>(), upto)
    };
    let txn = platform_read(storage);
    let names_behind = inner.follow.lock().names_durable < upto;
    if !names.is_empty() || (names_behind && (durable || due_for_prune(inner, upto))) {
        for (c, committed) in names {
            apply_name(inner, &txn, c, committed)?;
        }
        crate::crashpoint::hit("index.before_commit");
        crate::vector::file::file_op("commit the name index")?;
        inner.names.commit(upto)?;
        crate::crashpoint::hit("index.after_commit");
        let mut f = inner.follow.lock();
        f.names_durable = upto;
        f.names.retain(|_, p| p.commit > upto);
    }
    if !vectors.is_empty() {
        for c in &vectors {
            apply_vector(inner, &txn, *c)?;
        }
    }
    {
        let mut f = inner.follow.lock();
        f.vectors_applied = upto;
        f.vectors.retain(|_, n| *n > upto);
    }
    drop(txn);
    let (applied, saved) = {
        let f = inner.follow.lock();
        (f.vectors_applied, f.vectors_durable)
    };
    let due = durable
        || clock.save_failed
        || clock.last_save.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
    if applied > saved && (due || due_for_prune(inner, upto)) {
        let saved = save_vectors(inner, applied);
        clock.save_failed = saved.is_err();
        saved?;
        clock.last_save = Some(Instant::now());
        inner.follow.lock().vectors_durable = applied;
    }
    // A shared store keeps its log: the other servers follow it too.
    if (durable || due_for_prune(inner, upto)) && !storage.engine().shared() {
        prune(inner, storage, upto)?;
    }
    Ok(())
}

fn due_for_prune(inner: &Inner, upto: u64) -> bool {
    upto >= inner.follow.lock().prune_checked + PRUNE_EVERY
}

/// What the name index takes from a thing record. Decoding only these
/// fields skips the properties and timestamps: the indexer decodes every
/// thing a commit writes.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingName {
    id: Id,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    status: Status,
    #[serde(default)]
    deleted_at: Option<Millis>,
}

/// What the name index takes from a person record.
#[derive(serde::Deserialize)]
struct PersonName {
    id: Id,
    name: String,
    status: PersonStatus,
}

fn thing_doc(tenant: Tenant, t: ThingName) -> Option<NameDoc> {
    t.deleted_at.is_none().then(|| NameDoc {
        tenant,
        id: t.id,
        kind: t.kind,
        status: t.status.as_str().to_string(),
        name: t.name,
    })
}

/// People of the platform tenant (platform owners) are not searchable:
/// no org may find them.
fn person_doc(tenant: Tenant, p: PersonName) -> Option<NameDoc> {
    (p.status == PersonStatus::Active && tenant != Tenant::PLATFORM).then(|| NameDoc {
        tenant,
        id: p.id,
        kind: "person".to_string(),
        status: "active".to_string(),
        name: p.name,
    })
}

/// Indexes the record `c` as `committed` by the last commit that changed
/// it, or as stored when that is not known.
fn apply_name(
    inner: &Inner,
    txn: &Txn<'_>,
    c: Changed,
    committed: Option<(Arc<Committed>, usize)>,
) -> Result<()> {
    let stored;
    let record = match &committed {
        Some((commit, i)) => commit.value(*i),
        None => {
            stored = txn.get(&c.key())?;
            stored.as_deref()
        }
    };
    // A record the commit created has no older version in the index.
    let created = committed
        .as_ref()
        .is_some_and(|(commit, i)| commit.created(*i));
    let doc = match record {
        None => None,
        Some(bytes) => match c.id.dim() {
            Dim::Thing => thing_doc(c.tenant, decode::<ThingName>("thing", bytes)?),
            Dim::Person => person_doc(c.tenant, decode::<PersonName>("person", bytes)?),
            _ => None,
        },
    };
    match doc {
        Some(d) if created => inner.names.add(&d),
        Some(d) => inner.names.upsert(&d),
        None => inner.names.remove(c.id),
    }
}

/// The index entry of a live chunk with an embedding.
fn vector_item(txn: &Txn<'_>, tenant: Tenant, k: Knowledge) -> Result<Option<(Item, Vec<f32>)>> {
    if !is_indexed(&k) {
        return Ok(None);
    }
    let source = match k.source {
        Some(s) => txn.get(&tenant.thing(s))?,
        None => None,
    };
    Ok(indexed(k, source_type(source)?))
}

/// Whether a knowledge record is in the vector index: a live chunk with
/// an embedding.
fn is_indexed(k: &Knowledge) -> bool {
    k.deleted_at.is_none() && k.kind == KnowledgeKind::Chunk && k.embedding.is_some()
}

/// The type of a chunk's source thing, from its record (if it has one).
fn source_type(record: Option<Vec<u8>>) -> Result<Option<String>> {
    record
        .map(|bytes| decode::<ThingType>("thing", &bytes).map(|t| t.kind))
        .transpose()
}

/// What the vector index takes from a thing record.
#[derive(serde::Deserialize)]
struct ThingType {
    #[serde(rename = "type")]
    kind: String,
}

/// The index entry of a chunk that `is_indexed`.
fn indexed(k: Knowledge, source_type: Option<String>) -> Option<(Item, Vec<f32>)> {
    let embedding = k.embedding?;
    Some((
        Item {
            id: k.id,
            labels: k.labels,
            source: k.source,
            source_type,
        },
        embedding.into_inner(),
    ))
}

/// `read_at`: the sequence of the snapshot the chunk was read from.
fn add_vector(inner: &Inner, tenant: Tenant, item: &Item, embedding: &[f32], read_at: u64) {
    let org = {
        let mut orgs = inner.vectors.write();
        orgs.entry(tenant)
            .or_insert_with(|| Arc::new(RwLock::new(OrgVectors::new(embedding.len()))))
            .clone()
    };
    let mut org = org.write();
    org.applied_from(read_at);
    if org.dim() != embedding.len() {
        // The org's dimension is fixed by its first chunk; the store enforces
        // it, so this only happens to an index built from another history.
        eprintln!(
            "onedb: indexer: {} has the wrong dimension; skipped",
            item.id
        );
        return;
    }
    org.add(item, embedding);
}

fn apply_vector(inner: &Inner, txn: &Txn<'_>, c: Changed) -> Result<()> {
    let entry = match txn.get(&c.key())? {
        Some(bytes) => vector_item(txn, c.tenant, decode::<Knowledge>("knowledge", &bytes)?)?,
        None => None,
    };
    match entry {
        Some((item, embedding)) => add_vector(inner, c.tenant, &item, &embedding, txn.sequence()),
        None => {
            if let Some(org) = inner.vectors.read().get(&c.tenant) {
                let mut org = org.write();
                org.applied_from(txn.sequence());
                org.delete(c.id);
            }
        }
    }
    Ok(())
}

/// Every tenant with data: the platform tenant and each org.
fn tenants(txn: &Txn<'_>) -> Result<Vec<Tenant>> {
    let mut out = vec![Tenant::PLATFORM];
    for entry in txn.scan_prefix(&keys::orgs_prefix(), false)? {
        let (_, value) = entry?;
        out.push(Tenant::of_org(decode::<Org>("org", &value)?.id));
    }
    Ok(out)
}

/// Every record of one family in every tenant, decoded.
fn each_record<T: serde::de::DeserializeOwned>(
    txn: &Txn<'_>,
    what: &str,
    prefix: impl Fn(Tenant) -> Vec<u8>,
    f: impl FnMut(Tenant, T) -> Result<()>,
) -> Result<()> {
    each_record_in(txn, &tenants(txn)?, what, prefix, f)
}

/// Every record of one family in `tenants`, decoded.
fn each_record_in<T: serde::de::DeserializeOwned>(
    txn: &Txn<'_>,
    tenants: &[Tenant],
    what: &str,
    prefix: impl Fn(Tenant) -> Vec<u8>,
    mut f: impl FnMut(Tenant, T) -> Result<()>,
) -> Result<()> {
    let mut seen = 0usize;
    for &tenant in tenants {
        for entry in txn.scan_prefix(&prefix(tenant), false)? {
            let (_, value) = entry?;
            f(tenant, decode::<T>(what, &value)?)?;
            seen += 1;
            if seen.is_multiple_of(PROGRESS_EVERY) {
                eprintln!("onedb: indexing: {seen} {what} records");
            }
        }
    }
    Ok(())
}

/// Every document the name index should hold: live things of every tenant,
/// active people of the orgs.
fn each_name_doc(txn: &Txn<'_>, mut f: impl FnMut(NameDoc) -> Result<()>) -> Result<()> {
    each_record(
        txn,
        "thing",
        |t| t.things(),
        |tenant, thing: ThingName| thing_doc(tenant, thing).map_or(Ok(()), &mut f),
    )?;
    each_record(
        txn,
        "person",
        |t| t.people(),
        |tenant, person: PersonName| person_doc(tenant, person).map_or(Ok(()), &mut f),
    )
}

/// Chunks read ahead of the one multi-get of their source things: a get
/// per chunk took a tenth of a rebuild.
const SOURCE_BATCH: usize = 1024;

/// Every item the vector index should hold: live chunks with embeddings,
/// in the store's order.
fn each_vector_item(
    txn: &Txn<'_>,
    f: impl FnMut(Tenant, Item, Vec<f32>) -> Result<()>,
) -> Result<()> {
    each_vector_item_in(txn, &tenants(txn)?, f)
}

/// `each_vector_item` of `tenants` only.
fn each_vector_item_in(
    txn: &Txn<'_>,
    tenants: &[Tenant],
    mut f: impl FnMut(Tenant, Item, Vec<f32>) -> Result<()>,
) -> Result<()> {
    let mut chunks = Vec::with_capacity(SOURCE_BATCH);
    each_record_in(
        txn,
        tenants,
        "knowledge",
        |t| t.knowledge_all(),
        |tenant, k: Knowledge| {
            if is_indexed(&k) {
                chunks.push((tenant, k));
            }
            if chunks.len() == SOURCE_BATCH {
                with_sources(txn, &mut chunks, &mut f)?;
            }
            Ok(())
        },
    )?;
    with_sources(txn, &mut chunks, &mut f)
}

/// Hands `chunks` on in order as index items, their source things read
/// in one multi-get; empties `chunks`.
fn with_sources(
    txn: &Txn<'_>,
    chunks: &mut Vec<(Tenant, Knowledge)>,
    f: &mut impl FnMut(Tenant, Item, Vec<f32>) -> Result<()>,
) -> Result<()> {
    let keys: Vec<Vec<u8>> = chunks
        .iter()
        .filter_map(|(tenant, k)| k.source.map(|s| tenant.thing(s)))
        .collect();
    let mut sources = txn.get_many(&keys)?.into_iter();
    for (tenant, k) in chunks.drain(..) {
        let source = match k.source {
            Some(_) => sources.next().flatten(),
            None => None,
        };
        if let Some((item, embedding)) = indexed(k, source_type(source)?) {
            f(tenant, item, embedding)?;
        }
    }
    Ok(())
}

fn rebuild_names(inner: &Inner, txn: &Txn<'_>, last: u64) -> Result<()> {
    inner.names.clear()?;
    // `add`, not `upsert`: after the clear there is nothing to replace, and
    // tantivy keeps every delete operation (a term query's weight, ~1 KB)
    // until the commit; on 400,000 things they took ~500 MB.
    each_name_doc(txn, |d| inner.names.add(&d))?;
    inner.names.commit(last)
}

/// Rebuilds the vector index, orgs in parallel: up to
/// `available_parallelism` threads (this one among them) each take the
/// next org, read its chunks from their own read of the store and build
/// its graph (in store order, so it is the graph one thread builds).
/// Nothing writes while the open rebuilds, so every read sees `txn`'s data.
fn rebuild_vectors(inner: &Inner, storage: &Storage, txn: &Txn<'_>) -> Result<()> {
    inner.vectors.write().clear();
    let tenants = tenants(txn)?;
    let read_at = txn.sequence();
    let next = AtomicUsize::new(0);
    let build = || -> Result<()> {
        let txn = platform_read(storage);
        while let Some(&tenant) = tenants.get(next.fetch_add(1, Ordering::Relaxed)) {
            each_vector_item_in(&txn, &[tenant], |tenant, item, embedding| {
                add_vector(inner, tenant, &item, &embedding, read_at);
                Ok(())
            })?;
        }
        Ok(())
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(tenants.len()))
            .map(|_| scope.spawn(build))
            .collect();
        let mine = build();
        helpers
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::io("a vector index builder failed")))
            })
            .fold(mine, Result::and)
    })
}

fn save_vectors(inner: &Inner, watermark: u64) -> Result<()> {
    let orgs = inner.vectors.read();
    let guards: Vec<_> = orgs.iter().map(|(t, o)| (*t, o.read())).collect();
    let refs: Vec<(Tenant, &OrgVectors)> = guards.iter().map(|(t, g)| (*t, &**g)).collect();
    crate::vector::file::save(&vector_file(&inner.dir), watermark, &refs)
}

/// Log entries deleted per transaction while pruning.
const PRUNE_BATCH: usize = 10_000;

/// Deletes the log entries every index has durably applied: an entry goes
/// once the name index has its thing and person changes and the vector
/// file its knowledge changes.
fn prune(inner: &Inner, storage: &Storage, upto: u64) -> Result<()> {
    let (names_mark, vectors_mark) = {
        let f = inner.follow.lock();
        (f.names_durable, f.vectors_durable)
    };
    loop {
        let txn = storage.write(Scope::platform(Tenant::PLATFORM));
        let (mut names_pruned, mut vectors_pruned) = read_pruned(&txn)?;
        let mut doomed = Vec::new();
        let upper = keys::index_log(names_mark.max(vectors_mark) + 1);
        for entry in txn.scan_range(&keys::index_log_prefix(), &upper, false)? {
            let (key, value) = entry?;
            let Key::IndexLog(n) = keys::decode(&key)? else {
                continue;
            };
            let changes = keys::decode_changes(&value)?;
            let has_names = changes.iter().any(|c| c.id.dim() != Dim::Knowledge);
            let has_vectors = changes.iter().any(|c| c.id.dim() == Dim::Knowledge);
            if (has_names && n > names_mark) || (has_vectors && n > vectors_mark) {
                continue;
            }
            if has_names {
                names_pruned = names_pruned.max(n);
            }
            if has_vectors {
                vectors_pruned = vectors_pruned.max(n);
            }
            doomed.push(key);
            if doomed.len() >= PRUNE_BATCH {
                break;
            }
        }
        let full = doomed.len() >= PRUNE_BATCH;
        if doomed.is_empty() {
            inner.follow.lock().prune_checked = upto;
            return Ok(());
        }
        let mut mark = keys::encode_u64(names_pruned);
        mark.extend(keys::encode_u64(vectors_pruned));
        txn.commit_index_log_pruning(doomed, mark)?;
        if !full {
            inner.follow.lock().prune_checked = upto;
            return Ok(());
        }
    }
}

pub(super) fn verify(inner: &Inner, storage: &Storage) -> Result<IndexReport> {
    let txn = platform_read(storage);
    let mut report = IndexReport::default();
    let mut want_names = BTreeSet::new();
    each_name_doc(&txn, |d| {
        want_names.insert((d.tenant, d.id));
        Ok(())
    })?;
    let got_names: Vec<(Tenant, crate::model::Id)> = inner.names.all_ids()?;
    report.names = got_names.len();
    let got_set: BTreeSet<_> = got_names.iter().copied().collect();
    if got_set.len() != got_names.len() {
        report
            .problems
            .push("the name index holds a record twice".into());
    }
    compare("name index", &want_names, &got_set, &mut report);

    let mut want_vectors = BTreeSet::new();
    each_vector_item(&txn, |tenant, item, _| {
        want_vectors.insert((tenant, item.id));
        Ok(())
    })?;
    let mut got_vectors = BTreeSet::new();
    let orgs: HashMap<Tenant, _> = inner.vectors.read().clone();
    for (tenant, org) in orgs {
        for id in org.read().live_ids() {
            got_vectors.insert((tenant, id));
        }
    }
    report.vectors = got_vectors.len();
    compare("vector index", &want_vectors, &got_vectors, &mut report);
    Ok(report)
}

fn compare(
    what: &str,
    want: &BTreeSet<(Tenant, crate::model::Id)>,
    got: &BTreeSet<(Tenant, crate::model::Id)>,
    report: &mut IndexReport,
) {
    for (t, id) in want.difference(got) {
        report
            .problems
            .push(format!("{what} misses {id} of tenant {:032x}", t.raw()));
    }
    for (t, id) in got.difference(want) {
        report.problems.push(format!(
            "{what} holds {id} of tenant {:032x}, which is not live there",
            t.raw()
        ));
    }
}
