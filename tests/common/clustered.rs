//! Clustered random unit vectors: points around random centres, the data
//! recall and vector-search speed are measured on (tests/vector_recall.rs,
//! benches/search.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.r#gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Each coordinate of a point is its centre's plus noise of about a third
/// of the centres' spread.
pub struct Clustered {
    centres: Vec<Vec<f32>>,
    rng: StdRng,
}

impl Clustered {
    pub fn new(seed: u64, clusters: usize, dim: usize) -> Clustered {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..clusters)
            .map(|_| (0..dim).map(|_| gaussian(&mut rng)).collect())
            .collect();
        Clustered { centres, rng }
    }

    pub fn point(&mut self) -> Vec<f32> {
        let c = self.rng.gen_range(0..self.centres.len());
        let noisy = self.centres[c]
            .clone()
            .into_iter()
            .map(|x| x + gaussian(&mut self.rng) * 0.35)
            .collect();
        unit(noisy)
    }
}

/// The ids of the `k` vectors of `data` most similar to `q` among those
/// whose index `keep` accepts (brute force).
pub fn exact_top<I: Copy>(
    data: &[(I, Vec<f32>)],
    q: &[f32],
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<I> {
    let mut scored: Vec<(f32, I)> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (id, v))| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), *id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}
