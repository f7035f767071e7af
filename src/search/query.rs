//! Searches on a tenant transaction. The tenant comes from the transaction
//! — there is no way to name another — and every hit is read back through
//! the transaction, so the store's visibility rules (customers, deleted
//! records) apply to search as to every other read.
//!
//! A search merges two sources: the index, for what it has applied, and
//! the records changed since (pending in the indexer, or written by this
//! very transaction), read and matched one by one. Hits the caller's
//! residual filter (`keep`) refuses are replaced by fetching deeper, so a
//! filter never makes a result shorter than it could be.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::error::{Error, ErrorCode, Result};
use crate::graph::ReadTxn;
use crate::keys::{Changed, Tenant};
use crate::model::{Dim, Id, Knowledge, KnowledgeKind, Person, Ranked, Thing};
use crate::search::Indexes;
use crate::search::names::NameFilter;
use crate::vector::distance::{dot, normalize};
use crate::vector::{Method, VectorFilter};

/// `SEARCH THINGS "text" WHERE type = … AND status = … LIMIT n`
#[derive(Debug, Clone)]
pub struct NameSearch<'a> {
    pub text: &'a str,
    /// Thing types (or `person`) to keep; None: all.
    pub kinds: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    pub limit: usize,
    pub deadline: Instant,
}

/// A record found by name.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Thing(Thing),
    Person(Person),
}

impl Found {
    pub fn id(&self) -> Id {
        match self {
            Found::Thing(t) => t.id,
            Found::Person(p) => p.id,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Found::Thing(t) => &t.name,
            Found::Person(p) => &p.name,
        }
    }
    fn kind(&self) -> &str {
        match self {
            Found::Thing(t) => &t.kind,
            Found::Person(_) => "person",
        }
    }
    fn status(&self) -> &str {
        match self {
            Found::Thing(t) => t.status.as_str(),
            Found::Person(_) => "active",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NameHit {
    pub found: Found,
    pub score: f32,
}

/// `SEARCH KNOWLEDGE NEAREST vector K k WHERE …`
#[derive(Debug, Clone)]
pub struct KnowledgeSearch<'a> {
    pub vector: &'a [f32],
    pub k: usize,
    pub filter: VectorFilter,
    pub deadline: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeHit {
    pub knowledge: Knowledge,
    /// Cosine similarity, 1 for the same direction.
    pub score: f32,
}

/// Different words a name search may look for (each is a term of the query).
pub const MAX_WORDS: usize = 64;

/// The most a search fetches from an index before it stops deepening.
const MAX_FETCH: usize = 1 << 20;

fn check_deadline(deadline: Instant) -> Result<()> {
    if Instant::now() > deadline {
        return Err(Error::new(
            ErrorCode::Timeout,
            "the search ran past its time limit",
        ));
    }
    Ok(())
}

/// Whether hit `a` ranks before hit `b`.
fn before(a: (f32, Id), b: (f32, Id)) -> bool {
    Ranked(a.0, a.1) < Ranked(b.0, b.1)
}

/// Orders hits best first (`Ranked`'s order).
fn rank<T>(hits: &mut [(f32, Id, T)]) {
    hits.sort_by_key(|h| Ranked(h.0, h.1));
}

/// The best `limit` of `found` (hits from outside the index, verified)
/// and `top` (the index's best in rank order, skipping `outside` ids,
/// verified one by one as needed). `last` bounds the index hits not in
/// `top` (they rank after it; None: there are none). None when the result
/// needs more of the index than `top` holds. Index hits are read from the
/// store only until the result is decided: once `limit` candidates rank
/// before the next index hit, no later one can enter.
fn merge<T: Clone>(
    found: &[(f32, Id, T)],
    outside: &HashSet<Id>,
    top: Vec<(f32, Id)>,
    last: Option<(f32, Id)>,
    limit: usize,
    mut verify: impl FnMut(Id) -> Result<Option<T>>,
) -> Result<Option<Vec<(f32, Id, T)>>> {
    let mut found = found.to_vec();
    rank(&mut found);
    let better_outside = |key: (f32, Id)| found.iter().filter(|h| before((h.0, h.1), key)).count();
    let mut kept: Vec<(f32, Id, T)> = Vec::new();
    let mut decided = false;
    for (score, id) in top {
        if kept.len() + better_outside((score, id)) >= limit {
            decided = true;
            break;
        }
        if outside.contains(&id) {
            continue;
        }
        if let Some(item) = verify(id)? {
            kept.push((score, id, item));
        }
    }
    match last {
        // Index hits not fetched rank after `last`.
        Some(last) if !decided && kept.len() + better_outside(last) < limit => return Ok(None),
        _ => {}
    }
    found.extend(kept);
    rank(&mut found);
    found.truncate(limit);
    Ok(Some(found))
}

impl Indexes {
    /// Things and people whose names match `q.text` best (BM25), with the
    /// type and status filters, that `keep` accepts.
    pub fn search_names(
        &self,
        t: &ReadTxn<'_>,
        q: &NameSearch<'_>,
        keep: &mut dyn FnMut(&Found) -> Result<bool>,
    ) -> Result<Vec<NameHit>> {
        if q.text.trim().is_empty() {
            return Err(Error::invalid("SEARCH THINGS needs some words to look for"));
        }
        let indexes = self.inner();
        let tenants = search_tenants(t);
        indexes.await_commits(t.storage_txn())?;
        let (searcher, mut outside) = indexes.names_snapshot(&tenants, q.deadline)?;
        outside.extend(own_changes(t, &tenants, &[Dim::Thing, Dim::Person]));
        let outside: HashSet<Id> = outside.into_iter().collect();
        let mut words = indexes.names.words(q.text);
        words.sort();
        words.dedup();
        if words.len() > MAX_WORDS {
            return Err(Error::too_large(format!(
                "a name search takes at most {MAX_WORDS} different words, not {}",
                words.len()
            )));
        }
        let filter = NameFilter {
            tenants,
            kinds: q.kinds.clone(),
            statuses: q.statuses.clone(),
        };
        let matches = |f: &Found| {
            filter
                .kinds
                .as_ref()
                .is_none_or(|k| k.iter().any(|x| x == f.kind()))
                && filter
                    .statuses
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == f.status()))
        };
        // Records outside the index: read from this snapshot, counted in the
        // statistics, scored like indexed ones.
        let mut candidates: Vec<(Id, Found, Vec<String>)> = Vec::new();
        for id in &outside {
            check_deadline(q.deadline)?;
            if let Some(found) = found(t, *id)? {
                let doc_words = indexes.names.words(found.name());
                candidates.push((*id, found, doc_words));
            }
        }
        let current: Vec<Vec<String>> = candidates.iter().map(|c| c.2.clone()).collect();
        let replaced: Vec<Id> = outside.iter().copied().collect();
        let stats = indexes
            .names
            .stats(&searcher, &filter, &words, &replaced, &current)?;
        let mut hits: Vec<(f32, Id, Found)> = Vec::new();
        for (id, found, doc_words) in candidates {
            if !matches(&found) {
                continue;
            }
            let score = stats.score(&words, &doc_words);
            if score > 0.0 && keep(&found)? {
                hits.push((score, id, found));
            }
        }
        let mut fetch = q.limit.saturating_add(outside.len());
        loop {
            check_deadline(q.deadline)?;
            let top = indexes
                .names
                .query(&searcher, &stats, &words, &filter, fetch)?;
            let exhausted = top.len() < fetch || fetch >= MAX_FETCH;
            // Ranked as the merge ranks (score, then id): what was not
            // fetched ranks after the last hit.
            let last = (!exhausted).then(|| top.last().copied()).flatten();
            // The first hits are nearly always the answer: read them in one
            // batch; any further ones one by one.
            let first: Vec<Id> = top
                .iter()
                .map(|h| h.1)
                .filter(|id| id.dim() == Dim::Thing && !outside.contains(id))
                .take(q.limit)
                .collect();
            let mut read: HashMap<Id, Option<Found>> = first
                .iter()
                .copied()
                .zip(t.things(&first)?.into_iter().map(|t| t.map(Found::Thing)))
                .collect();
            let verify = |id: Id| -> Result<Option<Found>> {
                let found = match read.remove(&id) {
                    Some(f) => f,
                    None => found(t, id)?,
                };
                Ok(match found {
                    Some(found) if matches(&found) && keep(&found)? => Some(found),
                    _ => None,
                })
            };
            if let Some(best) = merge(&hits, &outside, top, last, q.limit, verify)? {
                hits = best;
                break;
            }
            fetch = fetch.saturating_mul(4).min(MAX_FETCH);
        }
        Ok(hits
            .into_iter()
            .map(|(score, _, found)| NameHit { found, score })
            .collect())
    }

    /// The `q.k` chunks most similar to `q.vector` (cosine) that pass the
    /// filter and `keep`, and whether the index searched exactly or by its
    /// graph.
    pub fn search_knowledge(
        &self,
        t: &ReadTxn<'_>,
        q: &KnowledgeSearch<'_>,
        keep: &mut dyn FnMut(&Knowledge) -> Result<bool>,
    ) -> Result<(Vec<KnowledgeHit>, Method)> {
        check_query_vector(t.embedding_dim()?, q.vector)?;
        let indexes = self.inner();
        let tenant = t.tenant();
        indexes.await_commits(t.storage_txn())?;
        let (org, mut outside) = indexes.vectors_snapshot(tenant, q.deadline)?;
        outside.extend(own_changes(t, &[tenant], &[Dim::Knowledge]));
        let outside: HashSet<Id> = outside.into_iter().collect();
        let mut query = q.vector.to_vec();
        normalize(&mut query);

        let mut hits: Vec<(f32, Id, Knowledge)> = Vec::new();
        for id in &outside {
            check_deadline(q.deadline)?;
            if let Some(k) = t.knowledge(*id)?
                && chunk_matches(t, &k, &q.filter)?
                && keep(&k)?
                && let Some(e) = &k.embedding
            {
                let mut v = e.value().clone();
                normalize(&mut v);
                hits.push((dot(&query, &v), *id, k));
            }
        }
        let mut method = Method::Exact;
        if let Some(org) = org {
            let mut fetch = q.k.saturating_add(outside.len());
            loop {
                check_deadline(q.deadline)?;
                let (found, used) = org
                    .read()
                    .search(q.vector, fetch, &q.filter, &|id| outside.contains(&id));
                method = used;
                let exhausted = found.len() < fetch || fetch >= MAX_FETCH;
                let top: Vec<(f32, Id)> =
                    found.into_iter().map(|(id, score)| (score, id)).collect();
                // Ranked exactly (exact search) or as well as the graph can.
                let last = (!exhausted).then(|| top.last().copied()).flatten();
                let verify = |id: Id| -> Result<Option<Knowledge>> {
                    Ok(match t.knowledge(id)? {
                        Some(k) if keep(&k)? => Some(k),
                        _ => None,
                    })
                };
                if let Some(best) = merge(&hits, &outside, top, last, q.k, verify)? {
                    hits = best;
                    break;
                }
                fetch = fetch.saturating_mul(4).min(MAX_FETCH);
            }
        } else {
            rank(&mut hits);
            hits.truncate(q.k);
        }
        Ok((
            hits.into_iter()
                .map(|(score, _, knowledge)| KnowledgeHit { knowledge, score })
                .collect(),
            method,
        ))
    }

    /// `search_knowledge` for a caller that reads nothing of a hit but its
    /// id and score: the same hits, without reading them back. The index
    /// answers alone when it holds exactly what the reader sees — the
    /// reader sees every chunk of the org (not a customer), wrote nothing,
    /// nothing is waiting for the indexer, and the index read nothing from
    /// a snapshot newer than the reader's; otherwise the hits are read.
    pub fn nearest_ids(&self, t: &ReadTxn<'_>, q: &KnowledgeSearch<'_>) -> Result<Vec<(Id, f32)>> {
        let txn = t.storage_txn();
        if t.reads_all() && !txn.is_dirty() {
            let indexes = self.inner();
            indexes.await_commits(txn)?;
            let (org, pending) = indexes.vectors_snapshot(t.tenant(), q.deadline)?;
            if let Some(org) = org
                && pending.is_empty()
            {
                let org = org.read();
                if org.read_at() <= txn.sequence() {
                    check_query_vector(Some(org.dim()), q.vector)?;
                    check_deadline(q.deadline)?;
                    let (hits, _) = org.search(q.vector, q.k, &q.filter, &|_| false);
                    return Ok(hits);
                }
            }
        }
        let (hits, _) = self.search_knowledge(t, q, &mut |_| Ok(true))?;
        Ok(hits
            .into_iter()
            .map(|h| (h.knowledge.id, h.score))
            .collect())
    }

    /// How a knowledge search with this filter would run now (EXPLAIN):
    /// the method and the candidate count it is chosen by.
    /// Records not yet in the index count as candidates: they are scored
    /// one by one.
    pub fn plan_knowledge_search(&self, t: &ReadTxn<'_>, filter: &VectorFilter) -> (Method, usize) {
        let indexes = self.inner();
        let tenant = t.tenant();
        let pending =
            indexes.pending_vectors(tenant) + own_changes(t, &[tenant], &[Dim::Knowledge]).len();
        match indexes.vectors.read().get(&tenant) {
            Some(org) => {
                let (method, n) = org.read().plan(filter);
                (method, n + pending)
            }
            None => (Method::Exact, pending),
        }
    }
}

/// A query vector fits the org's embeddings (`dim`, if it has any) and
/// holds finite numbers.
fn check_query_vector(dim: Option<usize>, vector: &[f32]) -> Result<()> {
    if let Some(dim) = dim
        && dim != vector.len()
    {
        return Err(Error::invalid(format!(
            "embeddings in this organization have {dim} dimensions; the query has {}",
            vector.len()
        )));
    }
    // A fold without early exit: the compiler turns it into SIMD.
    if !vector.iter().fold(true, |ok, x| ok & x.is_finite()) {
        return Err(Error::invalid("a query vector holds finite numbers only"));
    }
    Ok(())
}

/// The tenants a name search covers: the org and the platform's
/// global things.
fn search_tenants(t: &ReadTxn<'_>) -> Vec<Tenant> {
    let t = t.tenant();
    if t == Tenant::PLATFORM {
        vec![t]
    } else {
        vec![t, Tenant::PLATFORM]
    }
}

/// Records this transaction wrote (not yet committed) in `tenants`.
fn own_changes(t: &ReadTxn<'_>, tenants: &[Tenant], dims: &[Dim]) -> Vec<Id> {
    t.storage_txn()
        .written_changes()
        .filter(|c: &Changed| tenants.contains(&c.tenant) && dims.contains(&c.id.dim()))
        .map(|c| c.id)
        .collect()
}

fn found(t: &ReadTxn<'_>, id: Id) -> Result<Option<Found>> {
    Ok(match id.dim() {
        Dim::Thing => t.thing(id)?.map(Found::Thing),
        Dim::Person => t.person(id)?.map(Found::Person),
        _ => None,
    })
}

/// Whether a chunk read from the store passes a vector filter (what the
/// index checks for the items it holds).
fn chunk_matches(t: &ReadTxn<'_>, k: &Knowledge, filter: &VectorFilter) -> Result<bool> {
    if k.kind != KnowledgeKind::Chunk || k.embedding.is_none() {
        return Ok(false);
    }
    if !filter.labels.iter().all(|l| k.labels.contains(l)) {
        return Ok(false);
    }
    if let Some(sources) = &filter.sources
        && !k.source.is_some_and(|s| sources.contains(&s))
    {
        return Ok(false);
    }
    if let Some(types) = &filter.source_types {
        let kind = match k.source {
            Some(s) => t.thing(s)?.map(|t| t.kind),
            None => None,
        };
        if !kind.is_some_and(|t| types.contains(&t)) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dim;
    use proptest::prelude::*;

    proptest! {
        /// Deepening `merge` over prefixes of the index's list gives exactly
        /// the best `limit` of everything, read one by one.
        #[test]
        fn merge_finds_the_best_of_index_and_outside(
            index in prop::collection::vec((0u8..6, any::<bool>()), 0..40),
            outside in prop::collection::vec(0u8..6, 0..8),
            limit in 0usize..12,
        ) {
            let id = |n: usize| Id::from_raw(Dim::Thing, n as u128 + 1);
            // The index's hits, best first; some fail verification.
            let mut top: Vec<(f32, Id, bool)> = index
                .iter()
                .enumerate()
                .map(|(n, (s, ok))| (*s as f32, id(n), *ok))
                .collect();
            top.sort_by_key(|h| Ranked(h.0, h.1));
            let found: Vec<(f32, Id, ())> = outside
                .iter()
                .enumerate()
                .map(|(n, s)| (*s as f32 + 0.5, id(1_000 + n), ()))
                .collect();
            // Outside ids the index also holds (stale versions) are skipped.
            let excluded: HashSet<Id> = top.iter().step_by(5).map(|h| h.1).collect();
            let mut want: Vec<(f32, Id, ())> = top
                .iter()
                .filter(|h| h.2 && !excluded.contains(&h.1))
                .map(|h| (h.0, h.1, ()))
                .chain(found.iter().cloned())
                .collect();
            rank(&mut want);
            want.truncate(limit);
            let mut fetch = limit + excluded.len();
            let got = loop {
                let prefix: Vec<(f32, Id)> = top.iter().take(fetch).map(|h| (h.0, h.1)).collect();
                let last = (prefix.len() == fetch).then(|| prefix.last().copied()).flatten();
                let ok: HashSet<Id> = top.iter().filter(|h| h.2).map(|h| h.1).collect();
                let verify = |i: Id| Ok(ok.contains(&i).then_some(()));
                if let Some(best) = merge(&found, &excluded, prefix, last, limit, verify).unwrap() {
                    break best;
                }
                fetch = fetch * 4 + 1;
            };
            let key = |v: &[(f32, Id, ())]| v.iter().map(|h| (h.0.to_bits(), h.1)).collect::<Vec<_>>();
            prop_assert_eq!(key(&got), key(&want));
        }
    }
}
