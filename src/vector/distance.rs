//! Cosine similarity on unit vectors: a dot product in SIMD registers,
//! the instruction set chosen at run time (`pulp`: AVX2 with FMA on most
//! x86-64 servers, NEON on ARM, scalar otherwise; AVX-512 is not used,
//! as an exact scan is bound by memory, not arithmetic). Exact
//! search and the HNSW graph share this one kernel, so a score is the
//! same bits whichever path found it.

use std::sync::LazyLock;

use pulp::{Arch, Simd, WithSimd};

/// The CPU's best instruction set, detected once.
static ARCH: LazyLock<Arch> = LazyLock::new(Arch::new);

/// The dot product of two equally long vectors (the shorter length if not).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    ARCH.dispatch(Dot(&a[..n], &b[..n]))
}

/// Calls `each(row, dot(q, row_vector))` for every row of `data`, rows of
/// `q.len()` floats laid end to end (an org's vectors). One dispatch for
/// the whole scan: per-vector dispatch costs as much as a short dot
/// product. The scores are the same bits `dot` gives. Exact search reads
/// 8-bit codes first (`codes.rs`); this full f32 scan is the limit the
/// benchmarks hold it against.
pub fn dot_each(q: &[f32], data: &[f32], each: impl FnMut(usize, f32)) {
    if q.is_empty() {
        return;
    }
    ARCH.dispatch(DotEach { q, data, each });
}

struct Dot<'a>(&'a [f32], &'a [f32]);

impl WithSimd for Dot<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        dot_in(simd, self.0, self.1)
    }
}

struct DotEach<'a, F> {
    q: &'a [f32],
    data: &'a [f32],
    each: F,
}

impl<F: FnMut(usize, f32)> WithSimd for DotEach<'_, F> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(mut self, simd: S) {
        for (row, v) in self.data.chunks_exact(self.q.len()).enumerate() {
            (self.each)(row, dot_in(simd, self.q, v));
        }
    }
}

/// Asks the CPU to start loading the cache lines of `data` (a few at
/// most), so a load that follows soon finds them near: a graph search
/// knows which scattered vectors and lists it reads next before it reads
/// them. A hint only; nothing on CPUs without it.
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = *PREFETCH {
        const LINE: usize = 64;
        const MOST: usize = 4;
        let start = data.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(data).min(MOST * LINE);
        let mut offset = 0;
        while offset < bytes {
            simd._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(start.wrapping_add(offset));
            offset += LINE;
        }
    }
}

/// SSE, where `prefetch` is, detected once (every x86-64 has it).
#[cfg(target_arch = "x86_64")]
static PREFETCH: LazyLock<Option<pulp::core_arch::x86::Sse>> =
    LazyLock::new(pulp::core_arch::x86::Sse::try_new);

/// `distance(q, v)` for the vector of each slot of `slots`, into `out`
/// (cleared first), with the bits `distance` gives. One dispatch for all:
/// a graph search scores a node's neighbours together, so their loads
/// (scattered in memory, most of them cache misses) overlap instead of
/// each waiting for the one before.
pub fn distances<'p>(
    q: &[f32],
    slots: &[u32],
    point: impl Fn(u32) -> &'p [f32],
    out: &mut Vec<f32>,
) {
    out.clear();
    ARCH.dispatch(Distances {
        q,
        slots,
        point,
        out,
    });
}

struct Distances<'a, P> {
    q: &'a [f32],
    slots: &'a [u32],
    point: P,
    out: &'a mut Vec<f32>,
}

impl<'p, P: Fn(u32) -> &'p [f32]> WithSimd for Distances<'_, P> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        for &slot in self.slots {
            let v = (self.point)(slot);
            let n = self.q.len().min(v.len());
            self.out.push(1.0 - dot_in(simd, &self.q[..n], &v[..n]));
        }
    }
}

/// The kernel every entry point shares.
#[inline(always)]
fn dot_in<S: Simd>(simd: S, a: &[f32], b: &[f32]) -> f32 {
    let (a, a_tail) = S::as_simd_f32s(a);
    let (b, b_tail) = S::as_simd_f32s(b);
    // Four independent accumulators keep the FMA units busy (each
    // add waits on the one before it in the same register).
    let zero = simd.splat_f32s(0.0);
    let mut acc = [zero; 4];
    let mut quads_a = a.chunks_exact(4);
    let mut quads_b = b.chunks_exact(4);
    for (x, y) in (&mut quads_a).zip(&mut quads_b) {
        for i in 0..4 {
            acc[i] = simd.mul_add_f32s(x[i], y[i], acc[i]);
        }
    }
    for (x, y) in quads_a.remainder().iter().zip(quads_b.remainder()) {
        acc[0] = simd.mul_add_f32s(*x, *y, acc[0]);
    }
    let sum = simd.add_f32s(simd.add_f32s(acc[0], acc[1]), simd.add_f32s(acc[2], acc[3]));
    let mut total = simd.reduce_sum_f32s(sum);
    for (x, y) in a_tail.iter().zip(b_tail) {
        total += x * y;
    }
    total
}

/// Scales `v` to unit length in place; a zero vector stays zero (it is
/// then similar to nothing: every cosine with it is 0).
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// The distance the graph orders by: smaller is nearer. For unit vectors,
/// `1 - cosine`.
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - dot(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for n in (0..70).chain([383, 384, 385, 1536]) {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let tolerance = 1e-5 * a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum::<f32>();
            assert!(
                (dot(&a, &b) - plain).abs() <= tolerance.max(1e-6),
                "length {n}"
            );
            // Unequal lengths: the common prefix.
            if n > 0 {
                assert!((dot(&a, &b[..n - 1]) - dot(&a[..n - 1], &b)).abs() == 0.0);
            }
        }
    }

    #[test]
    fn dot_each_gives_the_bits_of_dot_for_every_row() {
        for dim in [1, 7, 16, 384, 385] {
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let data: Vec<f32> = (0..dim * 9).map(|i| (i as f32 * 0.11).cos()).collect();
            let mut seen = Vec::new();
            dot_each(&q, &data, |row, score| seen.push((row, score.to_bits())));
            let want: Vec<(usize, u32)> = data
                .chunks_exact(dim)
                .map(|v| dot(&q, v).to_bits())
                .enumerate()
                .collect();
            assert_eq!(seen, want, "dimension {dim}");
        }
        let mut called = false;
        dot_each(&[], &[1.0], |_, _| called = true);
        assert!(!called);
    }

    #[test]
    fn distances_give_the_bits_of_distance_for_every_slot() {
        for dim in [1, 7, 16, 32, 384, 385] {
            let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let data: Vec<f32> = (0..dim * 9).map(|i| (i as f32 * 0.11).cos()).collect();
            let point = |slot: u32| &data[slot as usize * dim..(slot as usize + 1) * dim];
            let slots = [8, 0, 3, 3, 5];
            let mut out = vec![7.0];
            distances(&q, &slots, point, &mut out);
            let got: Vec<u32> = out.iter().map(|d| d.to_bits()).collect();
            let want: Vec<u32> = slots
                .iter()
                .map(|&s| distance(&q, point(s)).to_bits())
                .collect();
            assert_eq!(got, want, "dimension {dim}");
        }
    }

    #[test]
    fn normalized_vectors_have_unit_length_and_zero_stays_zero() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0; 5];
        normalize(&mut z);
        assert!(z.iter().all(|x| *x == 0.0));
        assert!(distance(&v, &v).abs() < 1e-6);
    }
}
