//! A hierarchical navigable small-world graph (Malkov & Yashunin, 2016)
//! over unit vectors held elsewhere ([`Points`]).
//!
//! Nodes are dense `u32` slots. Layer 0 keeps up to `m0` neighbours per node
//! in one flat array; the few nodes above layer 0 keep their upper lists
//! apart. Neighbours are chosen with the paper's heuristic (a candidate is
//! kept only if it is nearer to the new node than to every neighbour kept so
//! far), which keeps clustered data navigable.
//!
//! Searches take an `accept` predicate: rejected nodes (deleted items,
//! filtered-out items) are still walked through — the graph stays connected
//! — but never returned. A visit budget bounds the work of a very selective
//! filter; the caller then falls back to exact search.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::vector::distance::{distance, distances, prefetch};

/// Where the vectors live: slot → unit vector.
pub trait Points {
    fn point(&self, slot: u32) -> &[f32];
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Neighbours per node on the upper layers.
    pub m: usize,
    /// Neighbours per node on layer 0.
    pub m0: usize,
    /// Candidate list size while inserting.
    pub ef_construction: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            m: 16,
            m0: 32,
            ef_construction: 64,
        }
    }
}

/// A distance and a slot, ordered by distance (then slot, so ties are
/// deterministic).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near(pub f32, pub u32);

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Marks of the nodes one search has seen, reset in O(1) by an epoch;
/// and the search's buffers for a node's neighbours and their distances.
#[derive(Default)]
pub struct Visited {
    marks: Vec<u32>,
    epoch: u32,
    fresh: Vec<u32>,
    scores: Vec<f32>,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Starts loading `slot`'s mark.
    fn prefetch(&self, slot: u32) {
        if let Some(mark) = self.marks.get(slot as usize) {
            prefetch(std::slice::from_ref(mark));
        }
    }

    /// Marks `slot`; true if it was not marked yet.
    fn first_visit(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

/// The graph. Every slot below `len()` is a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    params: Params,
    /// The top layer of each node.
    levels: Vec<u8>,
    /// Layer 0: `m0` slots per node, the first `layer0_len[node]` used.
    layer0: Vec<u32>,
    layer0_len: Vec<u8>,
    /// Layers 1..=level of nodes above layer 0 (empty for the others).
    upper: Vec<Vec<Vec<u32>>>,
    entry: Option<u32>,
    max_level: u8,
}

/// The highest layer a node may reach (16 is far above any real graph).
const MAX_LEVEL: u8 = 15;

impl Graph {
    pub fn new(params: Params) -> Graph {
        Graph {
            params,
            levels: Vec::new(),
            layer0: Vec::new(),
            layer0_len: Vec::new(),
            upper: Vec::new(),
            entry: None,
            max_level: 0,
        }
    }

    pub fn params(&self) -> Params {
        self.params
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// The layer a node with this seed reaches: geometric with ratio 1/m,
    /// from a hash of the seed, so a rebuild makes the same graph shape.
    pub fn level_for(&self, seed: u128) -> u8 {
        let mut x = (seed as u64) ^ ((seed >> 64) as u64) ^ 0x9E37_79B9_7F4A_7C15;
        // splitmix64
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let uniform = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
        let ml = 1.0 / (self.params.m.max(2) as f64).ln();
        ((-uniform.ln() * ml).floor() as u64).min(MAX_LEVEL as u64) as u8
    }

    fn neighbours(&self, slot: u32, level: u8) -> &[u32] {
        if level == 0 {
            let start = slot as usize * self.params.m0;
            &self.layer0[start..start + self.layer0_len[slot as usize] as usize]
        } else {
            self.upper[slot as usize]
                .get(level as usize - 1)
                .map_or(&[], Vec::as_slice)
        }
    }

    /// Starts loading `slot`'s list on `level` (layer 0's, where the
    /// searches spend their time).
    fn prefetch_neighbours(&self, slot: u32, level: u8) {
        if level == 0 {
            let start = slot as usize * self.params.m0;
            prefetch(&self.layer0_len[slot as usize..=slot as usize]);
            prefetch(&self.layer0[start..start + self.params.m0]);
        }
    }

    fn set_neighbours(&mut self, slot: u32, level: u8, list: &[u32]) {
        if level == 0 {
            let m0 = self.params.m0;
            let start = slot as usize * m0;
            let n = list.len().min(m0);
            self.layer0[start..start + n].copy_from_slice(&list[..n]);
            self.layer0_len[slot as usize] = n as u8;
        } else {
            self.upper[slot as usize][level as usize - 1] = list.to_vec();
        }
    }

    /// Adds node `slot` (the next slot: `len()`), whose vector `points`
    /// already holds, at layer `level`.
    pub fn insert(&mut self, points: &dyn Points, slot: u32, level: u8, visited: &mut Visited) {
        debug_assert_eq!(slot as usize, self.len());
        let m0 = self.params.m0;
        self.levels.push(level);
        self.layer0.extend(std::iter::repeat_n(0, m0));
        self.layer0_len.push(0);
        self.upper.push(vec![Vec::new(); level as usize]);
        let Some(entry) = self.entry else {
            self.entry = Some(slot);
            self.max_level = level;
            return;
        };
        let q = points.point(slot);
        let mut nearest = vec![Near(distance(q, points.point(entry)), entry)];
        for lc in (level.saturating_add(1)..=self.max_level).rev() {
            nearest = self.search_layer(points, q, &nearest, 1, lc, visited, &|_| true, usize::MAX);
        }
        for lc in (0..=level.min(self.max_level)).rev() {
            let found = self.search_layer(
                points,
                q,
                &nearest,
                self.params.ef_construction,
                lc,
                visited,
                &|s| s != slot,
                usize::MAX,
            );
            let chosen = select(points, &found, self.params.m);
            let list: Vec<u32> = chosen.iter().map(|n| n.1).collect();
            self.set_neighbours(slot, lc, &list);
            let cap = if lc == 0 { m0 } else { self.params.m };
            for &Near(d, other) in &chosen {
                self.link(points, other, slot, d, lc, cap);
            }
            if !found.is_empty() {
                nearest = found;
            }
        }
        if level > self.max_level {
            self.entry = Some(slot);
            self.max_level = level;
        }
    }

    /// Adds `new` to `node`'s list on `level`, pruning it with the heuristic
    /// when it is full.
    fn link(&mut self, points: &dyn Points, node: u32, new: u32, d: f32, level: u8, cap: usize) {
        let current = self.neighbours(node, level);
        if current.contains(&new) {
            return;
        }
        if current.len() < cap {
            let mut list = current.to_vec();
            list.push(new);
            self.set_neighbours(node, level, &list);
            return;
        }
        let base = points.point(node);
        let mut candidates: Vec<Near> = current
            .iter()
            .map(|&s| Near(distance(base, points.point(s)), s))
            .collect();
        candidates.push(Near(d, new));
        candidates.sort();
        let kept: Vec<u32> = select(points, &candidates, cap)
            .iter()
            .map(|n| n.1)
            .collect();
        self.set_neighbours(node, level, &kept);
    }

    /// The `k` accepted nodes nearest `q` (ascending distance), searching
    /// layer 0 with a list of `ef` candidates. Fewer than `k` when fewer are
    /// accepted or the visit budget ran out.
    #[allow(clippy::too_many_arguments)]
    pub fn search(
        &self,
        points: &dyn Points,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        max_visits: usize,
        visited: &mut Visited,
    ) -> Vec<Near> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let mut nearest = vec![Near(distance(q, points.point(entry)), entry)];
        for lc in (1..=self.max_level).rev() {
            nearest = self.search_layer(points, q, &nearest, 1, lc, visited, &|_| true, usize::MAX);
        }
        let mut found = self.search_layer(
            points,
            q,
            &nearest,
            ef.max(k),
            0,
            visited,
            accept,
            max_visits,
        );
        found.truncate(k);
        found
    }

    /// Best-first search of one layer from `entry`: the `ef` accepted nodes
    /// nearest `q`, ascending. Rejected nodes are walked, not returned.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        points: &dyn Points,
        q: &[f32],
        entry: &[Near],
        ef: usize,
        level: u8,
        visited: &mut Visited,
        accept: &dyn Fn(u32) -> bool,
        max_visits: usize,
    ) -> Vec<Near> {
        visited.reset(self.len());
        let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::new();
        let mut results: BinaryHeap<Near> = BinaryHeap::new();
        let mut visits = 0usize;
        for &n in entry {
            if visited.first_visit(n.1) {
                candidates.push(Reverse(n));
                if accept(n.1) {
                    results.push(n);
                }
            }
        }
        while let Some(Reverse(current)) = candidates.pop() {
            if results.len() >= ef && results.peek().is_some_and(|far| current.0 > far.0) {
                break;
            }
            // The next node's list loads while this one's are scored.
            if let Some(Reverse(next)) = candidates.peek() {
                self.prefetch_neighbours(next.1, level);
            }
            // The neighbours not seen yet, scored together (their vectors
            // asked for first); then taken in order, as one at a time would.
            let list = self.neighbours(current.1, level);
            list.iter().for_each(|&next| visited.prefetch(next));
            let mut fresh = std::mem::take(&mut visited.fresh);
            let mut scores = std::mem::take(&mut visited.scores);
            fresh.clear();
            fresh.extend(list.iter().filter(|&&next| visited.first_visit(next)));
            fresh.iter().for_each(|&next| prefetch(points.point(next)));
            visits += fresh.len();
            distances(q, &fresh, |slot| points.point(slot), &mut scores);
            for (&next, &d) in fresh.iter().zip(&scores) {
                let improves = results.len() < ef || results.peek().is_some_and(|far| d < far.0);
                if improves {
                    candidates.push(Reverse(Near(d, next)));
                    if accept(next) {
                        results.push(Near(d, next));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
            visited.fresh = fresh;
            visited.scores = scores;
            if visits > max_visits {
                break;
            }
        }
        let mut out = results.into_vec();
        out.sort();
        out
    }

    // ---- persistence (see vector/file.rs) ----

    /// The graph as plain arrays: levels, layer-0 lengths and slots, the
    /// upper lists, the entry point.
    pub fn parts(&self) -> GraphParts<'_> {
        GraphParts {
            levels: &self.levels,
            layer0_len: &self.layer0_len,
            layer0: &self.layer0,
            upper: &self.upper,
            entry: self.entry,
        }
    }

    /// Rebuilds a graph from its parts; None if they do not fit together
    /// (a corrupt file is never served).
    pub fn from_parts(
        params: Params,
        levels: Vec<u8>,
        layer0_len: Vec<u8>,
        layer0: Vec<u32>,
        upper: Vec<Vec<Vec<u32>>>,
        entry: Option<u32>,
    ) -> Option<Graph> {
        let n = levels.len();
        let fits = layer0_len.len() == n
            && layer0.len() == n * params.m0
            && upper.len() == n
            && entry.is_none_or(|e| (e as usize) < n)
            && (entry.is_some() || n == 0)
            && layer0_len.iter().all(|l| (*l as usize) <= params.m0)
            && layer0.iter().all(|s| (*s as usize) < n)
            && levels.iter().all(|l| *l <= MAX_LEVEL)
            && upper.iter().zip(&levels).all(|(u, l)| {
                u.len() == *l as usize && u.iter().flatten().all(|s| (*s as usize) < n)
            });
        if !fits {
            return None;
        }
        let max_level = entry.map_or(0, |e| levels[e as usize]);
        Some(Graph {
            params,
            levels,
            layer0,
            layer0_len,
            upper,
            entry,
            max_level,
        })
    }
}

pub struct GraphParts<'g> {
    pub levels: &'g [u8],
    pub layer0_len: &'g [u8],
    pub layer0: &'g [u32],
    pub upper: &'g [Vec<Vec<u32>>],
    pub entry: Option<u32>,
}

/// The neighbour heuristic: walking candidates nearest first, keep one only
/// if it is nearer to the base than to every one kept so far; at most `m`.
fn select(points: &dyn Points, candidates: &[Near], m: usize) -> Vec<Near> {
    let mut kept: Vec<Near> = Vec::with_capacity(m);
    for &c in candidates {
        if kept.len() >= m {
            break;
        }
        let p = points.point(c.1);
        if kept.iter().all(|k| distance(p, points.point(k.1)) > c.0) {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::distance::normalize;

    struct Flat {
        dim: usize,
        data: Vec<f32>,
    }

    impl Points for Flat {
        fn point(&self, slot: u32) -> &[f32] {
            let s = slot as usize * self.dim;
            &self.data[s..s + self.dim]
        }
    }

    fn random_points(n: usize, dim: usize, seed: u64) -> Flat {
        let mut state = seed;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let mut data = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dim).map(|_| next()).collect();
            normalize(&mut v);
            data.extend(v);
        }
        Flat { dim, data }
    }

    fn build(points: &Flat, n: usize) -> Graph {
        let mut g = Graph::new(Params::default());
        let mut visited = Visited::default();
        for slot in 0..n as u32 {
            let level = g.level_for(slot as u128 * 7919);
            g.insert(points, slot, level, &mut visited);
        }
        g
    }

    fn exact(
        points: &Flat,
        n: usize,
        q: &[f32],
        k: usize,
        accept: &dyn Fn(u32) -> bool,
    ) -> Vec<u32> {
        let mut all: Vec<Near> = (0..n as u32)
            .filter(|s| accept(*s))
            .map(|s| Near(distance(q, points.point(s)), s))
            .collect();
        all.sort();
        all.into_iter().take(k).map(|n| n.1).collect()
    }

    #[test]
    fn finds_the_true_neighbours_of_random_points() {
        let n = 2000;
        let points = random_points(n + 50, 16, 7);
        let g = build(&points, n);
        let mut visited = Visited::default();
        let mut hits = 0;
        for qi in 0..50 {
            let q = points.point((n + qi) as u32);
            let truth = exact(&points, n, q, 10, &|_| true);
            let got: Vec<u32> = g
                .search(&points, q, 10, 64, &|_| true, usize::MAX, &mut visited)
                .into_iter()
                .map(|x| x.1)
                .collect();
            hits += got.iter().filter(|s| truth.contains(s)).count();
        }
        let recall = hits as f64 / 500.0;
        assert!(recall >= 0.95, "recall {recall}");
    }

    #[test]
    fn rejected_nodes_are_walked_but_never_returned() {
        let n = 1000;
        let points = random_points(n, 8, 3);
        let g = build(&points, n);
        let mut visited = Visited::default();
        let even = |s: u32| s.is_multiple_of(2);
        let got = g.search(
            &points,
            points.point(1),
            10,
            64,
            &even,
            usize::MAX,
            &mut visited,
        );
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|x| x.1 % 2 == 0));
        // The query point itself (odd) is not returned.
        assert!(!got.iter().any(|x| x.1 == 1));
    }

    #[test]
    fn a_search_returns_distinct_nodes_in_ascending_distance() {
        let points = random_points(300, 4, 11);
        let g = build(&points, 300);
        let mut visited = Visited::default();
        let got = g.search(
            &points,
            points.point(5),
            20,
            40,
            &|_| true,
            usize::MAX,
            &mut visited,
        );
        assert_eq!(got[0].1, 5);
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
        let mut slots: Vec<u32> = got.iter().map(|x| x.1).collect();
        slots.dedup();
        assert_eq!(slots.len(), 20);
    }

    #[test]
    fn the_same_inserts_make_the_same_graph_and_parts_round_trip() {
        let points = random_points(500, 8, 5);
        let a = build(&points, 500);
        let b = build(&points, 500);
        assert_eq!(a, b);
        let p = a.parts();
        let back = Graph::from_parts(
            a.params(),
            p.levels.to_vec(),
            p.layer0_len.to_vec(),
            p.layer0.to_vec(),
            p.upper.to_vec(),
            p.entry,
        )
        .unwrap();
        assert_eq!(back, a);
        // Parts that do not fit are refused.
        let mut bad = p.layer0.to_vec();
        bad[0] = 10_000;
        assert!(
            Graph::from_parts(
                a.params(),
                p.levels.to_vec(),
                p.layer0_len.to_vec(),
                bad,
                p.upper.to_vec(),
                p.entry
            )
            .is_none()
        );
    }

    #[test]
    fn an_empty_graph_finds_nothing_and_a_tiny_visit_budget_stops_early() {
        let g = Graph::new(Params::default());
        let points = random_points(1, 4, 1);
        let mut visited = Visited::default();
        assert!(
            g.search(
                &points,
                points.point(0),
                5,
                10,
                &|_| true,
                usize::MAX,
                &mut visited
            )
            .is_empty()
        );
        let points = random_points(2000, 8, 9);
        let g = build(&points, 2000);
        let none = |_: u32| false;
        let got = g.search(&points, points.point(0), 5, 10, &none, 50, &mut visited);
        assert!(got.is_empty());
    }
}
