//! Vector search over one organization's knowledge chunks.
//!
//! [`OrgVectors`] holds an org's unit vectors, what each item may be
//! filtered by (labels, source thing and its type) and an HNSW graph over
//! them. A search chooses its method from the candidate count the filter
//! leaves: exact (every candidate scored) where that is small, the graph
//! where it is large — and exact again when the graph found fewer than `k`
//! accepted items, so a filter never makes results go missing.
//!
//! Items are only ever added or deleted (knowledge is immutable); a deleted
//! item stays in the graph as a waypoint and is never returned.

pub mod aligned;
pub mod codes;
pub mod distance;
pub mod file;
pub mod hnsw;

use std::collections::{BinaryHeap, HashMap};

use parking_lot::Mutex;

use crate::model::{Id, Ranked};
use crate::vector::aligned::CacheAligned;
use crate::vector::codes::Codes;
use crate::vector::distance::{dot, normalize};
use crate::vector::hnsw::{Graph, Near, Params, Points, Visited};

thread_local! {
    /// The unit query a search scores with, on a cache line like the
    /// data (every row's dot product reads all of it; loads that straddle
    /// lines cost ~7 %). Reused: a fresh 1.5 KB buffer per search makes
    /// glibc consolidate its small-chunk bins every statement.
    static QUERY: std::cell::RefCell<CacheAligned> = const { std::cell::RefCell::new(CacheAligned::new()) };
}

/// Candidate sets up to this size are scored exactly: below it, exact
/// search is about as fast as the graph and always right
/// (docs/performance.md, "Vector search").
pub const EXACT_MAX: usize = 5_000;
/// The graph's candidate list when searching (at least `k`).
pub const EF_SEARCH: usize = 96;

/// What a vector search may return: all of the labels, one of the source
/// types, one of the sources (each None or empty: no condition).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorFilter {
    pub labels: Vec<String>,
    pub source_types: Option<Vec<String>>,
    pub sources: Option<Vec<Id>>,
}

impl VectorFilter {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.source_types.is_none() && self.sources.is_none()
    }
}

/// One item as the index stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: Id,
    pub labels: Vec<String>,
    pub source: Option<Id>,
    pub source_type: Option<String>,
}

/// How a search was answered (for EXPLAIN, PROFILE and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Graph,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Graph => "hnsw",
        }
    }
}

/// Names stored once, referred to by number.
#[derive(Debug, Clone, Default, PartialEq)]
struct Names {
    names: Vec<String>,
    index: HashMap<String, u32>,
    /// Live items per name.
    live: Vec<usize>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        self.live.push(0);
        i
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Meta {
    labels: Vec<u32>,
    source: Option<Id>,
    source_type: Option<u32>,
}

/// One org's vectors, their filter data and the graph.
pub struct OrgVectors {
    dim: usize,
    ids: Vec<Id>,
    slots: HashMap<Id, u32>,
    /// Every slot's unit vector, one after the other, from a cache line.
    data: CacheAligned,
    /// The same vectors as 8-bit codes, for exact search's first pass.
    codes: Codes,
    meta: Vec<Meta>,
    deleted: Vec<bool>,
    live: usize,
    labels: Names,
    /// Slots carrying each label (deleted ones included; checked on use).
    postings: Vec<Vec<u32>>,
    types: Names,
    graph: Graph,
    visited: Mutex<Vec<Visited>>,
    /// The newest store snapshot (its sequence) a change applied here was
    /// read from; 0 for what the vector file held. A reader whose snapshot
    /// is at least this new sees every record the index reflects.
    read_at: u64,
}

struct Flat<'a> {
    dim: usize,
    data: &'a [f32],
}

impl Points for Flat<'_> {
    fn point(&self, slot: u32) -> &[f32] {
        let s = slot as usize * self.dim;
        &self.data[s..s + self.dim]
    }
}

impl OrgVectors {
    pub fn new(dim: usize) -> OrgVectors {
        OrgVectors {
            dim,
            ids: Vec::new(),
            slots: HashMap::new(),
            data: CacheAligned::new(),
            codes: Codes::new(dim),
            meta: Vec::new(),
            deleted: Vec::new(),
            live: 0,
            labels: Names::default(),
            postings: Vec::new(),
            types: Names::default(),
            graph: Graph::new(Params::default()),
            visited: Mutex::new(Vec::new()),
            read_at: 0,
        }
    }

    /// The newest store snapshot a change applied here was read from.
    pub fn read_at(&self) -> u64 {
        self.read_at
    }

    /// Notes that a change read from the snapshot at `sequence` was applied.
    pub fn applied_from(&mut self, sequence: u64) {
        self.read_at = self.read_at.max(sequence);
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live items.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Slots ever used, deleted ones included.
    pub fn slots(&self) -> usize {
        self.ids.len()
    }

    pub fn contains(&self, id: Id) -> bool {
        self.slots
            .get(&id)
            .is_some_and(|s| !self.deleted[*s as usize])
    }

    /// Every live item's id.
    pub fn live_ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.ids
            .iter()
            .zip(&self.deleted)
            .filter(|(_, d)| !**d)
            .map(|(id, _)| *id)
    }

    /// Adds an item; a second add of the same id changes nothing (replays
    /// are idempotent). The vector must have the org's dimension.
    pub fn add(&mut self, item: &Item, vector: &[f32]) -> bool {
        if vector.len() != self.dim || self.slots.contains_key(&item.id) {
            return false;
        }
        let slot = self.ids.len() as u32;
        let start = self.data.len();
        self.data.extend_from_slice(vector);
        normalize(&mut self.data[start..]);
        self.codes.push(&self.data[start..]);
        let labels: Vec<u32> = item.labels.iter().map(|l| self.labels.intern(l)).collect();
        for &l in &labels {
            if self.postings.len() <= l as usize {
                self.postings.resize(l as usize + 1, Vec::new());
            }
            self.postings[l as usize].push(slot);
            self.labels.live[l as usize] += 1;
        }
        let source_type = item.source_type.as_deref().map(|t| self.types.intern(t));
        if let Some(t) = source_type {
            self.types.live[t as usize] += 1;
        }
        self.ids.push(item.id);
        self.slots.insert(item.id, slot);
        self.meta.push(Meta {
            labels,
            source: item.source,
            source_type,
        });
        self.deleted.push(false);
        self.live += 1;
        let level = self.graph.level_for(item.id.raw());
        let mut visited = self.take_visited();
        let points = Flat {
            dim: self.dim,
            data: &self.data,
        };
        self.graph.insert(&points, slot, level, &mut visited);
        self.visited.lock().push(visited);
        true
    }

    /// Deletes an item; deleting a missing or deleted one changes nothing.
    pub fn delete(&mut self, id: Id) -> bool {
        let Some(&slot) = self.slots.get(&id) else {
            return false;
        };
        if self.deleted[slot as usize] {
            return false;
        }
        self.deleted[slot as usize] = true;
        self.live -= 1;
        for &l in &self.meta[slot as usize].labels {
            self.labels.live[l as usize] -= 1;
        }
        if let Some(t) = self.meta[slot as usize].source_type {
            self.types.live[t as usize] -= 1;
        }
        true
    }

    fn take_visited(&self) -> Visited {
        self.visited.lock().pop().unwrap_or_default()
    }

    /// The filter in slot terms; None when nothing can match (a label or
    /// type the org has never seen).
    fn compile(&self, filter: &VectorFilter) -> Option<Compiled> {
        let mut labels = Vec::with_capacity(filter.labels.len());
        for l in &filter.labels {
            labels.push(self.labels.find(l)?);
        }
        let types = match &filter.source_types {
            Some(ts) => {
                let found: Vec<u32> = ts.iter().filter_map(|t| self.types.find(t)).collect();
                if found.is_empty() {
                    return None;
                }
                Some(found)
            }
            None => None,
        };
        Some(Compiled {
            labels,
            types,
            sources: filter.sources.clone(),
        })
    }

    fn accepts(&self, c: &Compiled, slot: u32, exclude: &dyn Fn(Id) -> bool) -> bool {
        let s = slot as usize;
        if self.deleted[s] || exclude(self.ids[s]) {
            return false;
        }
        let meta = &self.meta[s];
        c.labels.iter().all(|l| meta.labels.contains(l))
            && c.types
                .as_ref()
                .is_none_or(|ts| meta.source_type.is_some_and(|t| ts.contains(&t)))
            && c.sources
                .as_ref()
                .is_none_or(|ss| meta.source.is_some_and(|x| ss.contains(&x)))
    }

    /// At most how many live items the filter can accept.
    fn estimate(&self, c: &Compiled) -> usize {
        let mut n = self.live;
        for &l in &c.labels {
            n = n.min(self.labels.live[l as usize]);
        }
        if let Some(ts) = &c.types {
            n = n.min(ts.iter().map(|t| self.types.live[*t as usize]).sum());
        }
        if let Some(ss) = &c.sources {
            // Each source has any number of chunks; only "none" is certain.
            if ss.is_empty() {
                n = 0;
            }
        }
        n
    }

    /// The method a search with this filter uses, and the candidate count
    /// it was chosen by.
    pub fn plan(&self, filter: &VectorFilter) -> (Method, usize) {
        match self.compile(filter) {
            None => (Method::Exact, 0),
            Some(c) => {
                let n = self.estimate(&c);
                let method = if n <= EXACT_MAX {
                    Method::Exact
                } else {
                    Method::Graph
                };
                (method, n)
            }
        }
    }

    /// The `k` items most similar to `query` (cosine, highest first) that
    /// pass `filter` and are not `exclude`d, and how they were found.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &VectorFilter,
        exclude: &dyn Fn(Id) -> bool,
    ) -> (Vec<(Id, f32)>, Method) {
        let (method, _) = self.plan(filter);
        if method == Method::Graph
            && let Some(hits) = self.search_by(Method::Graph, query, k, filter, exclude)
            && hits.len() == k
        {
            return (hits, Method::Graph);
        }
        let hits = self
            .search_by(Method::Exact, query, k, filter, exclude)
            .unwrap_or_default();
        (hits, Method::Exact)
    }

    /// A search by the given method (benchmarks compare the two on the
    /// same data). None when the query cannot match (wrong dimension, a
    /// label the org never saw). The graph may return fewer than `k`.
    pub fn search_by(
        &self,
        method: Method,
        query: &[f32],
        k: usize,
        filter: &VectorFilter,
        exclude: &dyn Fn(Id) -> bool,
    ) -> Option<Vec<(Id, f32)>> {
        let c = self.compile(filter)?;
        if k == 0 || query.len() != self.dim {
            return None;
        }
        let search = |q: &mut CacheAligned| {
            q.clear();
            q.extend_from_slice(query);
            normalize(q);
            Some(self.search_unit(method, q, k, &c, exclude))
        };
        // A search started from inside another (an `exclude` that searches)
        // gets a buffer of its own instead of a panic.
        QUERY.with(|cell| match cell.try_borrow_mut() {
            Ok(mut q) => search(&mut q),
            Err(_) => search(&mut CacheAligned::new()),
        })
    }

    /// `search_by` once the query is a unit vector on a cache line.
    fn search_unit(
        &self,
        method: Method,
        q: &[f32],
        k: usize,
        c: &Compiled,
        exclude: &dyn Fn(Id) -> bool,
    ) -> Vec<(Id, f32)> {
        if method == Method::Exact {
            return self.exact(q, k, c, exclude);
        }
        let points = Flat {
            dim: self.dim,
            data: &self.data,
        };
        let mut visited = self.take_visited();
        // A filter that keeps a fraction f of the items needs about 1/f
        // times the candidates to fill k; the budget bounds the walk.
        let share = (self.estimate(c) as f64 / self.live.max(1) as f64).max(0.01);
        let ef = ((EF_SEARCH.max(k) as f64 / share) as usize).min(self.slots());
        let accept = |s: u32| self.accepts(c, s, exclude);
        let found = self
            .graph
            .search(&points, q, k, ef, &accept, 20 * ef + 1_000, &mut visited);
        self.visited.lock().push(visited);
        found.into_iter().map(|Near(_, s)| self.hit(q, s)).collect()
    }

    /// Scores every candidate: the smallest label posting list if the
    /// filter names a label, else every slot.
    fn exact(
        &self,
        q: &[f32],
        k: usize,
        c: &Compiled,
        exclude: &dyn Fn(Id) -> bool,
    ) -> Vec<(Id, f32)> {
        let shortest = c
            .labels
            .iter()
            .map(|l| &self.postings[*l as usize])
            .min_by_key(|p| p.len());
        // Best first; equal scores by id, as the search's merge orders them.
        // The heap's top is the worst kept hit.
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        // Keeps `ranked` if it is among the best k so far.
        let mut offer = |ranked: Ranked| {
            if heap.len() < k {
                heap.push(ranked);
            } else if let Some(mut worst) = heap.peek_mut()
                && ranked < *worst
            {
                *worst = ranked;
            }
        };
        let mut score = |slot: u32| {
            if self.accepts(c, slot, exclude) {
                offer(self.ranked(q, slot));
            }
        };
        match shortest {
            Some(list) => list.iter().for_each(|s| score(*s)),
            // No filter: one pass over the 8-bit codes, then the f32
            // kernel only for the rows whose bound reaches the k-th best
            // lower bound (`codes`: the same hits, the same score bits).
            None if c.is_empty() => {
                let mut lower = Best::new(k);
                // Sized for what usually comes through: no regrowth per search.
                let mut candidates = Vec::with_capacity(8 * k);
                let coded = self.codes.estimate_each(q, |slot, estimate, bound| {
                    let upper = estimate + bound;
                    if upper < lower.floor() {
                        return;
                    }
                    if !self.deleted[slot] && !exclude(self.ids[slot]) {
                        lower.offer(estimate - bound);
                        candidates.push((slot as u32, upper));
                    }
                });
                if coded {
                    let floor = lower.floor();
                    for (slot, upper) in candidates {
                        if upper >= floor {
                            offer(self.ranked(q, slot));
                        }
                    }
                } else {
                    // A query the codes cannot take (not finite): every row.
                    (0..self.ids.len() as u32).for_each(&mut score)
                }
            }
            None => (0..self.ids.len() as u32).for_each(&mut score),
        }
        let mut out = heap.into_vec();
        out.sort();
        out.into_iter()
            .map(|Ranked(score, id)| (id, score))
            .collect()
    }

    /// A result: the id and its cosine, computed as a caller computing
    /// `dot(unit query, unit vector)` would, to the last bit.
    fn hit(&self, q: &[f32], slot: u32) -> (Id, f32) {
        let s = slot as usize * self.dim;
        (self.ids[slot as usize], dot(q, &self.data[s..s + self.dim]))
    }

    fn ranked(&self, q: &[f32], slot: u32) -> Ranked {
        let (id, score) = self.hit(q, slot);
        Ranked(score, id)
    }
}

/// The `k` largest of the numbers offered, for the least of them.
struct Best {
    k: usize,
    /// Smallest first (a min-heap through `Reverse`).
    heap: BinaryHeap<std::cmp::Reverse<Ordered>>,
}

/// An f32 ordered by `total_cmp`.
#[derive(PartialEq)]
struct Ordered(f32);

impl Eq for Ordered {}

impl PartialOrd for Ordered {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ordered {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Best {
    fn new(k: usize) -> Best {
        Best {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    fn offer(&mut self, x: f32) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(Ordered(x)));
        } else if let Some(mut least) = self.heap.peek_mut()
            && x > least.0.0
        {
            *least = std::cmp::Reverse(Ordered(x));
        }
    }

    /// The k-th largest number offered; −∞ until k were.
    fn floor(&self) -> f32 {
        match self.heap.peek() {
            Some(least) if self.heap.len() == self.k => least.0.0,
            _ => f32::NEG_INFINITY,
        }
    }
}

struct Compiled {
    labels: Vec<u32>,
    types: Option<Vec<u32>>,
    sources: Option<Vec<Id>>,
}

impl Compiled {
    /// Whether the filter accepts every live item.
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.types.is_none() && self.sources.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dim;

    fn item(labels: &[&str]) -> Item {
        Item {
            id: Id::generate(Dim::Knowledge),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            source: None,
            source_type: None,
        }
    }

    #[test]
    fn exact_search_ranks_by_cosine_then_id_and_honours_filters_and_deletes() {
        let mut org = OrgVectors::new(2);
        let a = item(&["x"]);
        let b = item(&[]);
        let c = item(&["x"]);
        let twin = item(&["x"]);
        org.add(&a, &[1.0, 0.0]);
        org.add(&b, &[0.0, 1.0]);
        org.add(&c, &[1.0, 1.0]);
        org.add(&twin, &[2.0, 2.0]);
        let q = [1.0, 0.2];
        let ids = |hits: Vec<(Id, f32)>| hits.into_iter().map(|h| h.0).collect::<Vec<_>>();
        let none = VectorFilter::default();
        let (hits, method) = org.search(&q, 4, &none, &|_| false);
        assert_eq!(method, Method::Exact);
        // c and twin point the same way: tied, in id order.
        assert_eq!(ids(hits), vec![a.id, c.id, twin.id, b.id]);
        let x = VectorFilter {
            labels: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(ids(org.search(&q, 2, &x, &|_| false).0), vec![a.id, c.id]);
        assert_eq!(
            ids(org.search(&q, 2, &x, &|id| id == a.id).0),
            vec![c.id, twin.id]
        );
        org.delete(c.id);
        assert_eq!(
            ids(org.search(&q, 9, &x, &|_| false).0),
            vec![a.id, twin.id]
        );
        assert_eq!(org.len(), 3);
        // A label nobody has matches nothing; a second add changes nothing.
        let unknown = VectorFilter {
            labels: vec!["nope".into()],
            ..Default::default()
        };
        assert!(org.search(&q, 3, &unknown, &|_| false).0.is_empty());
        assert!(!org.add(&a, &[1.0, 0.0]));
    }

    /// A vector from a seeded generator, in [-1, 1) per component.
    fn noise(state: &mut u64, dim: usize) -> Vec<f32> {
        (0..dim)
            .map(|_| {
                *state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (*state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// The 8-bit first pass never changes an answer: the same hits,
        /// in the same order, with the same score bits as scoring every
        /// live, unexcluded vector with the f32 kernel. Duplicates and
        /// near-duplicates make ties and near-ties at the k-th place.
        #[test]
        fn exact_search_returns_what_a_full_f32_scan_returns(
            dim in proptest::prop_oneof![1usize..24, proptest::strategy::Just(384)],
            n in 0usize..260,
            k in 1usize..16,
            seed in proptest::prelude::any::<u64>(),
            copy_every in 2usize..6,
            delete_every in 3usize..9,
            exclude_every in 4usize..11,
        ) {
            let mut state = seed;
            let mut org = OrgVectors::new(dim);
            let mut stored: Vec<(Id, Vec<f32>)> = Vec::new();
            for i in 0..n {
                let mut v = match stored.last() {
                    // A copy, or a copy moved by a rounding step, by
                    // less than the 8-bit codes' error, or by about it.
                    Some((_, last)) if i % copy_every == 0 => last.clone(),
                    Some((_, last)) if i % copy_every == 1 => {
                        let step = [1e-6, 1e-3, 1e-2][i % 3];
                        last.iter().zip(noise(&mut state, dim)).map(|(x, e)| x + e * step).collect()
                    }
                    _ => noise(&mut state, dim),
                };
                let it = item(&[]);
                org.add(&it, &v);
                normalize(&mut v);
                stored.push((it.id, v));
            }
            for (i, (id, _)) in stored.iter().enumerate() {
                if i % delete_every == 0 {
                    org.delete(*id);
                }
            }
            let excluded: Vec<Id> = stored.iter().step_by(exclude_every).map(|(id, _)| *id).collect();
            let exclude = |id: Id| excluded.contains(&id);
            let mut q = if n > 0 && seed % 3 == 0 {
                stored[(seed as usize / 3) % n].1.clone()
            } else {
                noise(&mut state, dim)
            };
            let (hits, method) = org.search(&q, k, &VectorFilter::default(), &exclude);
            proptest::prop_assert_eq!(method, Method::Exact);
            normalize(&mut q);
            let mut want: Vec<Ranked> = stored
                .iter()
                .enumerate()
                .filter(|(i, (id, _))| i % delete_every != 0 && !exclude(*id))
                .map(|(_, (id, v))| Ranked(dot(&q, v), *id))
                .collect();
            want.sort();
            want.truncate(k);
            let got: Vec<(Id, u32)> = hits.iter().map(|(id, s)| (*id, s.to_bits())).collect();
            let want: Vec<(Id, u32)> = want.iter().map(|r| (r.1, r.0.to_bits())).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_search_run_from_inside_another_gets_its_own_query_buffer() {
        let mut org = OrgVectors::new(2);
        let (a, b) = (item(&[]), item(&[]));
        org.add(&a, &[1.0, 0.0]);
        org.add(&b, &[0.0, 1.0]);
        let none = VectorFilter::default();
        // Excludes whatever a search for the other direction puts first.
        let exclude = |id: Id| org.search(&[0.0, 1.0], 1, &none, &|_| false).0[0].0 == id;
        let (hits, _) = org.search(&[1.0, 0.1], 2, &none, &exclude);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, a.id);
        assert!((hits[0].1 - 1.0 / 1.01f32.sqrt()).abs() < 1e-6);
    }
}
