//! How every search orders its hits: higher score first, then lower id. One
//! order for the name index, the vector index and the records read outside
//! them, so tied hits come back in the same order whichever supplied them.

use std::cmp::Ordering;

use crate::model::Id;

/// A hit: its score and id. The best hit is the *least* (`sort` puts it
/// first; a `BinaryHeap` keeps the worst on top, ready to be replaced).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked(pub f32, pub Id);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dim;

    #[test]
    fn higher_scores_then_lower_ids_come_first() {
        let id = |n| Id::from_raw(Dim::Thing, n);
        let mut hits = vec![Ranked(1.0, id(5)), Ranked(2.0, id(9)), Ranked(1.0, id(3))];
        hits.sort();
        assert_eq!(
            hits,
            vec![Ranked(2.0, id(9)), Ranked(1.0, id(3)), Ranked(1.0, id(5))]
        );
        let mut heap: std::collections::BinaryHeap<Ranked> = hits.into_iter().collect();
        assert_eq!(heap.pop(), Some(Ranked(1.0, id(5))), "the worst is on top");
    }
}
