//! Floats that start on a cache line.
//!
//! An exact search reads every vector of an org with 32-byte SIMD loads.
//! A `Vec<f32>` of that size starts wherever the allocator puts it (often
//! 16 bytes past a page), and then half the loads straddle two cache
//! lines: the same scan took ~15 % longer (`benches/read_path.rs`). Here
//! the data starts on a 64-byte boundary, so with a dimension that is a
//! multiple of 16 (384, 768, 1536…) every vector does. No `unsafe`: the
//! buffer is an ordinary `Vec<f32>` with a few unused floats before the
//! data, and it only ever moves when this type grows it.

use std::ops::{Deref, DerefMut};

/// The boundary the data starts on, in bytes.
const LINE: usize = 64;
/// The most floats of padding that boundary can need.
const MAX_PAD: usize = LINE / size_of::<f32>();

/// A growable list of floats whose first one sits on a cache line.
#[derive(Default)]
pub struct CacheAligned {
    buf: Vec<f32>,
    /// Where the data starts in `buf`.
    start: usize,
}

impl CacheAligned {
    pub const fn new() -> CacheAligned {
        CacheAligned {
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Empties the list and keeps its buffer (and alignment).
    pub fn clear(&mut self) {
        self.buf.truncate(self.start);
    }

    /// Appends `values`; the data moves (and stays aligned) only when
    /// the buffer is full, to one about twice the size.
    pub fn extend_from_slice(&mut self, values: &[f32]) {
        if self.buf.capacity() - self.buf.len() < values.len() {
            let len = self.len();
            self.regrow((len + values.len()).max(len * 2));
        }
        self.buf.extend_from_slice(values);
    }

    /// Moves the data into a new buffer with room for `floats`.
    fn regrow(&mut self, floats: usize) {
        let mut buf: Vec<f32> = Vec::with_capacity(floats + MAX_PAD);
        let misaligned = buf.as_ptr() as usize % LINE;
        let pad = (LINE - misaligned) % LINE / size_of::<f32>();
        buf.resize(pad, 0.0);
        buf.extend_from_slice(self);
        self.buf = buf;
        self.start = pad;
    }
}

impl From<Vec<f32>> for CacheAligned {
    fn from(values: Vec<f32>) -> CacheAligned {
        let mut aligned = CacheAligned::new();
        aligned.regrow(values.len());
        aligned.buf.extend_from_slice(&values);
        aligned
    }
}

impl Deref for CacheAligned {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buf[self.start..]
    }
}

impl DerefMut for CacheAligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..]
    }
}

impl std::fmt::Debug for CacheAligned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for CacheAligned {
    fn eq(&self, other: &CacheAligned) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_a_line(a: &CacheAligned) -> bool {
        (a.as_ptr() as usize).is_multiple_of(LINE)
    }

    #[test]
    fn the_data_starts_on_a_cache_line_however_it_grew() {
        let mut a = CacheAligned::new();
        let mut plain = Vec::new();
        for round in 0..300 {
            let row: Vec<f32> = (0..(1 + round % 37))
                .map(|i| (round * 100 + i) as f32)
                .collect();
            a.extend_from_slice(&row);
            plain.extend_from_slice(&row);
            assert!(on_a_line(&a), "after {} floats", a.len());
            assert_eq!(*a, *plain);
        }
        a[0] = -1.0;
        assert_eq!(a[0], -1.0);
        let copied = CacheAligned::from(plain.clone());
        assert!(on_a_line(&copied));
        assert_eq!(*copied, *plain);
        assert!(CacheAligned::from(Vec::new()).is_empty());
    }
}
