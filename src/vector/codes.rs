//! An 8-bit copy of an org's unit vectors: exact search reads a quarter
//! of the memory and rules most vectors out without their floats.
//!
//! The f32 scan is bound by loads: every multiply-add reads a float of the
//! query and one of the vector. Here each vector `v` is also kept as
//! 8-bit codes `c` with a scale `s` (`v̂ = s·c`) and the norm of what that
//! rounding lost, `‖v − v̂‖`; a query `q` becomes 16-bit codes the same way
//! (`q̂`). One integer dot product of the codes then gives an estimate of
//! the cosine with a bound that always holds:
//!
//! ```text
//! q·v = q̂·v̂ + q̂·(v − v̂) + (q − q̂)·v,   |q̂·(v − v̂) + (q − q̂)·v| ≤ ‖q̂‖‖v − v̂‖ + ‖q − q̂‖‖v‖
//! ```
//!
//! A search scores with the f32 kernel only the vectors whose estimate
//! plus bound reaches the k-th best estimate minus bound, so it returns
//! the same hits, with the same score bits, as a full f32 scan.

use crate::vector::distance::dot;

thread_local! {
    /// The integer sums of a scan, reused (a scan of 5,000 rows fills 20 KB).
    static SUMS: std::cell::RefCell<Vec<i32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The largest 8-bit code: symmetric, so a code's negation is a code.
const CODE_MAX: f32 = 127.0;
/// The largest norm of a stored unit vector, with room for the rounding
/// of its normalisation.
const MAX_NORM: f32 = 1.001;
/// The largest 16-bit query code.
const QUERY_MAX: i64 = i16::MAX as i64;

/// One org's vectors as 8-bit codes, row after row in slot order.
#[derive(Default)]
pub struct Codes {
    dim: usize,
    codes: Vec<i8>,
    rows: Vec<Row>,
}

/// What a row's codes need beside them.
#[derive(Clone, Copy)]
struct Row {
    /// The value of code 1.
    scale: f32,
    /// `‖v − scale·codes‖`, rounded up.
    error: f32,
}

impl Codes {
    pub fn new(dim: usize) -> Codes {
        Codes {
            dim,
            ..Codes::default()
        }
    }

    /// The codes of `data`, unit vectors of `dim` floats end to end.
    pub fn of_rows(dim: usize, data: &[f32]) -> Codes {
        let mut codes = Codes::new(dim);
        if let Some(rows) = data.len().checked_div(dim) {
            codes.codes.reserve(data.len());
            codes.rows.reserve(rows);
            data.chunks_exact(dim).for_each(|v| codes.push(v));
        }
        codes
    }

    /// Appends the codes of `v`, a unit (or zero) vector.
    pub fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        let largest = kernel::largest_magnitude(v);
        let mut wide = vec![0i16; v.len()];
        let mut row = Row {
            scale: 0.0,
            error: 0.0,
        };
        if largest > 0.0 {
            row.scale = largest / CODE_MAX;
            let (_, lost) =
                kernel::quantize(v, CODE_MAX / largest, row.scale, CODE_MAX as i32, &mut wide);
            // The f32 sum of squares is off by at most ~dim·ε relative.
            row.error = (lost * (1.0 + 1e-3)).sqrt();
            // The bound takes ‖v‖ ≤ 1 (up to rounding): a vector too large
            // to normalise, or not finite, is never ruled out.
            let norm = dot(v, v).sqrt();
            if norm.is_nan() || norm > MAX_NORM {
                row.error = f32::MAX;
            }
        }
        self.codes.extend(wide.iter().map(|c| *c as i8));
        self.rows.push(row);
    }

    /// Calls `each(row, estimate, bound)` for every row: `|dot(q, row) −
    /// estimate| ≤ bound` for the f32 kernel's `dot` of a unit query `q`.
    /// Returns false, calling nothing, when `q` cannot be coded (not of
    /// the org's dimension, or not finite).
    pub fn estimate_each(&self, q: &[f32], mut each: impl FnMut(usize, f32, f32)) -> bool {
        let Some(query) = Query::new(q, self.dim) else {
            return false;
        };
        // The f32 kernel's own rounding is at most about dim·ε of ‖q‖‖v‖.
        let slack = (self.dim as f32 + 16.0) * f32::EPSILON * 2.0;
        let fixed = query.error * MAX_NORM + slack;
        let norm = query.norm;
        // Taken, not borrowed: `each` may run a search of its own.
        let mut sums = SUMS.take();
        sums.resize(self.rows.len(), 0);
        kernel::int_dots(&query.codes, &self.codes, |row, int| sums[row] = int);
        for (row, (int, r)) in sums.iter().zip(&self.rows).enumerate() {
            let estimate = query.scale * r.scale * *int as f32;
            each(row, estimate, norm * r.error + fixed);
        }
        SUMS.set(sums);
        true
    }
}

/// A unit query as 16-bit codes.
struct Query {
    codes: Vec<i16>,
    scale: f32,
    /// `‖scale·codes‖`, rounded up.
    norm: f32,
    /// `‖q − scale·codes‖`, rounded up.
    error: f32,
}

impl Query {
    fn new(q: &[f32], dim: usize) -> Option<Query> {
        if q.len() != dim || dim == 0 {
            return None;
        }
        // No integer sum may overflow: |Σ q_i·c_i| ≤ dim·max_q·127.
        let max_code = QUERY_MAX.min(i32::MAX as i64 / (dim as i64 * CODE_MAX as i64));
        let largest = kernel::largest_magnitude(q);
        if max_code < 255 || !largest.is_finite() {
            return None;
        }
        let (scale, inverse) = if largest > 0.0 {
            (largest / max_code as f32, max_code as f32 / largest)
        } else {
            (0.0, 0.0)
        };
        let mut codes = vec![0i16; dim];
        let (norm, error) = kernel::quantize(q, inverse, scale, max_code as i32, &mut codes);
        // f32 sums of squares are off by at most ~dim·ε relative; the
        // search's slack covers what that leaves.
        let up = |sum: f32| (sum * (1.0 + 1e-3)).sqrt();
        Some(Query {
            codes,
            scale,
            norm: up(norm),
            error: up(error),
        })
    }
}

/// The loops over every float or code: AVX2 where the CPU has it, plain
/// Rust elsewhere. The integer dot products take 16 codes a step, widened
/// to 16 bits and multiplied pairwise into 32-bit sums; integer sums are
/// exact, so every path gives the same numbers.
mod kernel {
    /// Calls `each(row, Σ q_i·row_i)` for every row of `codes`.
    pub fn int_dots(q: &[i16], codes: &[i8], each: impl FnMut(usize, i32)) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(avx2::Dots {
                simd,
                q,
                codes,
                each,
            });
        }
        plain(q, codes, each)
    }

    pub(super) fn plain(q: &[i16], codes: &[i8], mut each: impl FnMut(usize, i32)) {
        for (row, v) in codes.chunks_exact(q.len()).enumerate() {
            let sum = q.iter().zip(v).map(|(a, b)| *a as i32 * *b as i32).sum();
            each(row, sum);
        }
    }

    /// The largest |x| of `q`; NaN or infinite if any of `q` is not finite.
    pub fn largest_magnitude(q: &[f32]) -> f32 {
        // Eight lanes, so the compiler can keep them in one register.
        let mut lanes = [0.0f32; 8];
        let mut poison = [0.0f32; 8];
        for (i, x) in q.iter().enumerate() {
            let a = x.abs();
            lanes[i % 8] = if a > lanes[i % 8] { a } else { lanes[i % 8] };
            // 0·x is NaN exactly when x is not finite.
            poison[i % 8] += 0.0 * x;
        }
        lanes.iter().fold(0.0f32, |m, x| m.max(*x)) + poison.iter().sum::<f32>()
    }

    /// Writes `codes[i] = round(q[i]·inverse)` within ±`limit`, and returns
    /// `(‖scale·codes‖², ‖q − scale·codes‖²)` (as f32 sums).
    pub fn quantize(
        q: &[f32],
        inverse: f32,
        scale: f32,
        limit: i32,
        codes: &mut [i16],
    ) -> (f32, f32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return simd.vectorize(avx2::Quantize {
                simd,
                q,
                inverse,
                scale,
                limit,
                codes,
            });
        }
        quantize_plain(q, inverse, scale, limit, codes)
    }

    /// `quantize` one float at a time (other CPUs, and AVX2's tail).
    pub(super) fn quantize_plain(
        q: &[f32],
        inverse: f32,
        scale: f32,
        limit: i32,
        codes: &mut [i16],
    ) -> (f32, f32) {
        let (mut norm, mut error) = (0.0f32, 0.0f32);
        for (x, code) in q.iter().zip(codes) {
            let c = ((x * inverse).round() as i32).clamp(-limit, limit);
            *code = c as i16;
            let coded = c as f32 * scale;
            norm += coded * coded;
            error += (x - coded) * (x - coded);
        }
        (norm, error)
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use pulp::x86::V3;
        use std::arch::x86_64::{__m128i, __m256, __m256i};

        pub struct Quantize<'a> {
            pub simd: V3,
            pub q: &'a [f32],
            pub inverse: f32,
            pub scale: f32,
            pub limit: i32,
            pub codes: &'a mut [i16],
        }

        impl pulp::NullaryFnOnce for Quantize<'_> {
            type Output = (f32, f32);

            #[inline(always)]
            fn call(self) -> (f32, f32) {
                let (simd, avx, avx2) = (self.simd, self.simd.avx, self.simd.avx2);
                let inverse = avx._mm256_set1_ps(self.inverse);
                let scale = avx._mm256_set1_ps(self.scale);
                let (low, high) = (
                    avx._mm256_set1_epi32(-self.limit),
                    avx._mm256_set1_epi32(self.limit),
                );
                let mut norm = avx._mm256_setzero_ps();
                let mut error = norm;
                let (xs, x_tail) = pulp::as_arrays::<8, f32>(self.q);
                let (cs, c_tail) = pulp::as_arrays_mut::<8, i16>(self.codes);
                for (x, code) in xs.iter().zip(cs) {
                    let x: __m256 = pulp::cast(*x);
                    // Rounds to nearest (the default mode).
                    let c = avx._mm256_cvtps_epi32(avx._mm256_mul_ps(x, inverse));
                    let c = avx2._mm256_min_epi32(avx2._mm256_max_epi32(c, low), high);
                    let wide: [i32; 8] = pulp::cast(c);
                    *code = wide.map(|w| w as i16);
                    let coded = avx._mm256_mul_ps(avx._mm256_cvtepi32_ps(c), scale);
                    norm = simd.fma._mm256_fmadd_ps(coded, coded, norm);
                    let lost = avx._mm256_sub_ps(x, coded);
                    error = simd.fma._mm256_fmadd_ps(lost, lost, error);
                }
                let sum = |v: __m256| pulp::cast::<_, [f32; 8]>(v).iter().sum::<f32>();
                let (tail_norm, tail_error) =
                    super::quantize_plain(x_tail, self.inverse, self.scale, self.limit, c_tail);
                (sum(norm) + tail_norm, sum(error) + tail_error)
            }
        }

        pub struct Dots<'a, F> {
            pub simd: V3,
            pub q: &'a [i16],
            pub codes: &'a [i8],
            pub each: F,
        }

        impl<F: FnMut(usize, i32)> pulp::NullaryFnOnce for Dots<'_, F> {
            type Output = ();

            #[inline(always)]
            fn call(mut self) {
                let simd = self.simd;
                let dim = self.q.len();
                let (q, q_tail) = pulp::as_arrays::<16, i16>(self.q);
                let zero = simd.avx._mm256_setzero_si256();
                // Four rows a step: each load of the query serves four
                // multiplies.
                let mut quads = self.codes.chunks_exact(4 * dim);
                let mut row = 0;
                for quad in &mut quads {
                    let (r0, rest) = quad.split_at(dim);
                    let (r1, rest) = rest.split_at(dim);
                    let (r2, r3) = rest.split_at(dim);
                    let rows = [r0, r1, r2, r3].map(pulp::as_arrays::<16, i8>);
                    let mut acc = [zero; 4];
                    for (i, a) in q.iter().enumerate() {
                        let a: __m256i = pulp::cast(*a);
                        for r in 0..4 {
                            let b = simd
                                .avx2
                                ._mm256_cvtepi8_epi16(pulp::cast::<_, __m128i>(rows[r].0[i]));
                            acc[r] = simd
                                .avx2
                                ._mm256_add_epi32(acc[r], simd.avx2._mm256_madd_epi16(a, b));
                        }
                    }
                    // Lane sums of the four rows: [r0 r1 r2 r3] after two
                    // horizontal adds and the two halves added.
                    let h01 = simd.avx2._mm256_hadd_epi32(acc[0], acc[1]);
                    let h23 = simd.avx2._mm256_hadd_epi32(acc[2], acc[3]);
                    let h = simd.avx2._mm256_hadd_epi32(h01, h23);
                    let halves: [__m128i; 2] = pulp::cast(h);
                    let sums: [i32; 4] = pulp::cast(simd.sse2._mm_add_epi32(halves[0], halves[1]));
                    for r in 0..4 {
                        let mut sum = sums[r];
                        for (a, b) in q_tail.iter().zip(rows[r].1) {
                            sum += *a as i32 * *b as i32;
                        }
                        (self.each)(row + r, sum);
                    }
                    row += 4;
                }
                for v in quads.remainder().chunks_exact(dim) {
                    let (v, v_tail) = pulp::as_arrays::<16, i8>(v);
                    let mut acc = zero;
                    for (a, b) in q.iter().zip(v) {
                        let a: __m256i = pulp::cast(*a);
                        let b = simd.avx2._mm256_cvtepi8_epi16(pulp::cast::<_, __m128i>(*b));
                        acc = simd
                            .avx2
                            ._mm256_add_epi32(acc, simd.avx2._mm256_madd_epi16(a, b));
                    }
                    let lanes: [i32; 8] = pulp::cast(acc);
                    let mut sum: i32 = lanes.iter().sum();
                    for (a, b) in q_tail.iter().zip(v_tail) {
                        sum += *a as i32 * *b as i32;
                    }
                    (self.each)(row, sum);
                    row += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::distance::normalize;

    /// The f32 kernel's score of `q` and row `row` of `data`.
    fn exact(q: &[f32], data: &[f32], dim: usize, row: usize) -> f32 {
        dot(q, &data[row * dim..(row + 1) * dim])
    }

    /// Deterministic unit vectors, some clustered, some with one large
    /// component, one zero.
    fn vectors(dim: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centre: Vec<f32> = (0..dim).map(|_| next()).collect();
        let mut out = Vec::with_capacity(dim * n);
        for i in 0..n {
            let mut v: Vec<f32> = match i % 4 {
                0 => centre.iter().map(|c| c + 0.01 * next()).collect(),
                1 => (0..dim).map(|_| next()).collect(),
                2 => (0..dim)
                    .map(|d| if d == i % dim { 10.0 } else { next() * 0.1 })
                    .collect(),
                _ if i == 3 => vec![0.0; dim],
                _ => (0..dim).map(|_| next().powi(3)).collect(),
            };
            normalize(&mut v);
            out.extend_from_slice(&v);
        }
        out
    }

    #[test]
    fn every_estimate_is_within_its_bound_of_the_f32_score() {
        for dim in [1, 3, 16, 17, 384, 385, 1536] {
            let data = vectors(dim, 64, dim as u64);
            let codes = Codes::of_rows(dim, &data);
            for qi in 0..8 {
                let q = &data[qi * dim..(qi + 1) * dim];
                let mut rows = 0;
                let mut widest = 0.0f32;
                assert!(codes.estimate_each(q, |row, estimate, bound| {
                    let score = exact(q, &data, dim, row);
                    assert!(
                        (score - estimate).abs() <= bound,
                        "dim {dim} query {qi} row {row}: {score} vs {estimate} ± {bound}"
                    );
                    if row % 4 != 2 {
                        widest = widest.max(bound);
                    }
                    rows += 1;
                }));
                assert_eq!(rows, 64);
                // The bound is useful, not merely true: 8 bits leave about
                // a hundredth (more for a vector with one spike, whose
                // scale the spike sets).
                assert!(widest < 0.015, "dim {dim}: bound {widest}");
            }
        }
    }

    #[test]
    fn the_bound_is_reached_by_a_query_along_a_rounding_error() {
        // q·v − q̂·v̂ is largest when q points along v − v̂: then the
        // estimate misses by nearly the whole bound, so no smaller bound
        // would be safe.
        let dim = 384;
        let data = vectors(dim, 16, 7);
        let codes = Codes::of_rows(dim, &data);
        for row in [0, 1, 2, 4, 5] {
            let v = &data[row * dim..(row + 1) * dim];
            let r = codes.rows[row];
            let mut q: Vec<f32> = v
                .iter()
                .zip(&codes.codes[row * dim..(row + 1) * dim])
                .map(|(x, c)| x - r.scale * *c as f32)
                .collect();
            normalize(&mut q);
            codes.estimate_each(&q, |at, estimate, bound| {
                if at == row {
                    let miss = (exact(&q, &data, dim, row) - estimate).abs();
                    assert!(miss <= bound, "row {row}: {miss} > {bound}");
                    assert!(miss > 0.9 * bound, "row {row}: {miss} ≪ {bound}");
                }
            });
        }
    }

    #[test]
    fn the_simd_kernel_gives_the_plain_integer_sums() {
        for dim in [1, 15, 16, 33, 384, 1000] {
            let q: Vec<i16> = (0..dim)
                .map(|i| (i * 7919 % 65535) - 32767)
                .map(|x| x as i16)
                .collect();
            let codes: Vec<i8> = (0..dim * 5)
                .map(|i| (i * 31 % 255) - 127)
                .map(|x| x as i8)
                .collect();
            let (mut fast, mut plain) = (Vec::new(), Vec::new());
            kernel::int_dots(&q, &codes, |r, s| fast.push((r, s)));
            kernel::plain(&q, &codes, |r, s| plain.push((r, s)));
            assert_eq!(fast, plain, "dim {dim}");
            assert_eq!(fast.len(), 5);
        }
    }

    #[test]
    fn odd_queries_are_refused_and_odd_vectors_never_ruled_out() {
        let codes = Codes::of_rows(2, &[1.0, 0.0]);
        assert!(!codes.estimate_each(&[1.0], |_, _, _| panic!()));
        assert!(!codes.estimate_each(&[f32::NAN, 0.0], |_, _, _| panic!()));
        // The zero query estimates 0 everywhere, within the bound.
        assert!(codes.estimate_each(&[0.0, 0.0], |_, e, b| assert!(e == 0.0 && b >= 0.0)));
        // A vector normalize could not scale (its norm overflows) is
        // never ruled out: the bound assumes unit length.
        let long = Codes::of_rows(2, &[3e30, 4e30, 30.0, 40.0, 0.6, 0.8]);
        let errors: Vec<f32> = long.rows.iter().map(|r| r.error).collect();
        assert_eq!(&errors[..2], &[f32::MAX, f32::MAX]);
        assert!(errors[2] < 1e-2);
        // The largest dimension still codes (the integer sums cannot overflow).
        let dim = crate::model::limits::EMBEDDING_DIMS;
        let mut v = vec![1.0f32; dim];
        normalize(&mut v);
        let big = Codes::of_rows(dim, &v);
        assert!(big.estimate_each(&v, |_, e, b| assert!((e - 1.0).abs() <= b)));
    }
}
