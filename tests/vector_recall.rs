//! Recall@10 of the vector index against exact search, on clustered random
//! vectors (100,000 × 384): at least 0.95 without a filter, with a label
//! filter keeping 1 % of the items, and with one keeping 10 % (where the
//! graph, not exact search, answers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/clustered.rs"]
mod clustered;

use std::collections::HashSet;
use std::time::Instant;

use clustered::{Clustered, exact_top};
use onedb::internals::{Item, OrgVectors};
use onedb::{Dim, Id};
use onedb::{VectorFilter, VectorMethod as Method};

const DIM: usize = 384;
const QUERIES: usize = 100;
const K: usize = 10;

/// `ONEDB_RECALL_N` overrides it for quick experiments.
fn n() -> usize {
    std::env::var("ONEDB_RECALL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn rare(i: usize) -> bool {
    i.is_multiple_of(100)
}

fn tenth(i: usize) -> bool {
    i % 10 == 3
}

#[test]
fn recall_at_10_is_at_least_0_95_with_and_without_filters() {
    let seed = 20261201;
    println!("seed {seed}");
    let mut space = Clustered::new(seed, 100, DIM);
    let mut org = OrgVectors::new(DIM);
    let n = n();
    let mut data = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let v = space.point();
        let mut labels = Vec::new();
        if rare(i) {
            labels.push("rare".to_string());
        }
        if tenth(i) {
            labels.push("tenth".to_string());
        }
        let id = Id::generate(Dim::Knowledge);
        org.add(
            &Item {
                id,
                labels,
                source: None,
                source_type: None,
            },
            &v,
        );
        data.push((id, v));
    }
    println!("built {n} × {DIM} in {:.1?}", started.elapsed());

    let label = |l: &str| VectorFilter {
        labels: vec![l.into()],
        ..Default::default()
    };
    // (name, filter, which items pass it, the method expected)
    type Case = (&'static str, VectorFilter, fn(usize) -> bool, Method);
    let cases: [Case; 3] = [
        (
            "no filter",
            VectorFilter::default(),
            |_| true,
            Method::Graph,
        ),
        ("label kept by 1 %", label("rare"), rare, Method::Exact),
        ("label kept by 10 %", label("tenth"), tenth, Method::Graph),
    ];
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| space.point()).collect();
    for (name, filter, keep, method) in cases {
        let mut found = 0;
        let started = Instant::now();
        for q in &queries {
            let truth: HashSet<Id> = exact_top(&data, q, K, keep).into_iter().collect();
            let (hits, used) = org.search(q, K, &filter, &|_| false);
            assert_eq!(used, method, "{name}: the planner's choice");
            assert_eq!(hits.len(), K, "{name}: K results exist, K must come back");
            found += hits.iter().filter(|(id, _)| truth.contains(id)).count();
        }
        let recall = found as f64 / (QUERIES * K) as f64;
        println!(
            "{name}: recall@10 {recall:.3} ({:?} for {QUERIES} queries and their exact answers)",
            started.elapsed()
        );
        assert!(
            recall >= 0.95,
            "{name}: recall@10 {recall:.3} < 0.95 (seed {seed})"
        );
    }
}
