//! Recall@10 of the vector index against exact search, on clustered random
//! vectors (100,000 × 384): at least 0.95 without a filter, with a label
//! filter keeping 1 % of the items, and with one keeping 10 % (where the
//! graph, not exact search, answers).

use std::collections::HashSet;
use std::time::Instant;

use onedb::vector::{Item, Method, OrgVectors, VectorFilter};
use onedb::{Dim, Id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `ONEDB_RECALL_N` overrides it for quick experiments.
fn n() -> usize {
    std::env::var("ONEDB_RECALL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}
const DIM: usize = 384;
const CLUSTERS: usize = 100;
const QUERIES: usize = 100;
const K: usize = 10;

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box–Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Points around random centres: each coordinate of a point is its
/// centre's plus noise of a third of the centres' spread.
struct Clustered {
    centres: Vec<Vec<f32>>,
}

impl Clustered {
    fn new(rng: &mut StdRng) -> Clustered {
        Clustered {
            centres: (0..CLUSTERS)
                .map(|_| (0..DIM).map(|_| gaussian(rng)).collect())
                .collect(),
        }
    }
    fn point(&self, rng: &mut StdRng) -> Vec<f32> {
        let c = &self.centres[rng.gen_range(0..CLUSTERS)];
        unit(c.iter().map(|x| x + gaussian(rng) * 0.35).collect())
    }
}

fn exact(
    data: &[(Id, Vec<f32>, bool, bool)],
    q: &[f32],
    keep: impl Fn(bool, bool) -> bool,
) -> HashSet<Id> {
    let mut scored: Vec<(f32, Id)> = data
        .iter()
        .filter(|(_, _, rare, tenth)| keep(*rare, *tenth))
        .map(|(id, v, _, _)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(K).map(|(_, id)| id).collect()
}

#[test]
fn recall_at_10_is_at_least_0_95_with_and_without_filters() {
    let seed = 20261201;
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let space = Clustered::new(&mut rng);
    let mut org = OrgVectors::new(DIM);
    let n = n();
    let mut data = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let v = space.point(&mut rng);
        let rare = i % 100 == 0;
        let tenth = i % 10 == 3;
        let mut labels = Vec::new();
        if rare {
            labels.push("rare".to_string());
        }
        if tenth {
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
        data.push((id, v, rare, tenth));
    }
    println!("built {n} × {DIM} in {:.1?}", started.elapsed());

    let cases: [(&str, VectorFilter, fn(bool, bool) -> bool, Method); 3] = [
        (
            "no filter",
            VectorFilter::default(),
            |_, _| true,
            Method::Graph,
        ),
        (
            "label kept by 1 %",
            VectorFilter {
                labels: vec!["rare".into()],
                ..Default::default()
            },
            |rare, _| rare,
            Method::Exact,
        ),
        (
            "label kept by 10 %",
            VectorFilter {
                labels: vec!["tenth".into()],
                ..Default::default()
            },
            |_, tenth| tenth,
            Method::Graph,
        ),
    ];
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| space.point(&mut rng)).collect();
    for (name, filter, keep, method) in cases {
        let mut found = 0;
        let started = Instant::now();
        for q in &queries {
            let truth = exact(&data, q, keep);
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
