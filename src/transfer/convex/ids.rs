//! Convex `_id`s become onedb ids deterministically — the time bits from
//! the document's creation time, the random bits from SHA-256 of the
//! `_id` — so the same export always gives the same ids. The map of what
//! each `_id` became (or that it was invalid) rewrites every reference.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::model::{Dim, Id, Millis};

/// The onedb id of the Convex document `convex` made at `ms` (checked to
/// fit the id's 48 time bits by the caller).
pub fn id_of(dim: Dim, convex: &str, ms: Millis) -> Id {
    let digest = Sha256::digest(convex.as_bytes());
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let time = (ms.max(0) as u128) << 80;
    Id::from_raw(dim, time | u128::from_be_bytes(random))
}

/// What a loaded document became.
#[derive(Debug, Clone, Copy)]
pub struct Ref {
    pub id: Id,
    /// Its org: None for platform owners and global things (an org's own
    /// is itself).
    pub org: Option<Id>,
    /// A knowledge chunk (its links default to `chunk_of`).
    pub chunk: bool,
}

enum Seen {
    Loaded(Ref),
    /// Reported; the table it was in.
    Invalid(&'static str),
}

/// Every `_id` seen so far.
#[derive(Default)]
pub struct Ids {
    seen: HashMap<String, Seen>,
}

impl Ids {
    pub fn loaded(&mut self, convex: &str, r: Ref) {
        self.seen.insert(convex.to_string(), Seen::Loaded(r));
    }

    /// Marks `convex` invalid, unless an earlier document with the same
    /// `_id` loaded (the second is the invalid duplicate).
    pub fn invalid(&mut self, convex: &str, table: &'static str) {
        self.seen
            .entry(convex.to_string())
            .or_insert(Seen::Invalid(table));
    }

    /// The record `field` (holding `convex`) refers to, if it is one of
    /// `dims`; the reason the referring document is invalid otherwise.
    pub fn resolve(&self, field: &str, convex: &str, dims: &[Dim]) -> Result<Ref, String> {
        match self.seen.get(convex) {
            Some(Seen::Loaded(r)) if dims.contains(&r.id.dim()) => Ok(*r),
            Some(Seen::Loaded(r)) => Err(format!(
                "{field} {convex} names {}, not {}",
                what(r.id.dim()),
                dims.iter()
                    .map(|d| what(*d))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            Some(Seen::Invalid(table)) => Err(format!(
                "{field} {convex} names the invalid {table}/{convex}"
            )),
            None => Err(format!(
                "{field} {convex} names no document loaded before it (a missing endpoint)"
            )),
        }
    }
}

fn what(dim: Dim) -> &'static str {
    match dim {
        Dim::Org => "an organization",
        Dim::Person => "a person",
        Dim::Thing => "a thing",
        Dim::Connection => "a connection",
        Dim::Event => "an event",
        Dim::Knowledge => "knowledge",
        Dim::Token => "a token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_sort_by_creation() {
        let a = id_of(Dim::Thing, "j57a", 1_700_000_000_000);
        assert_eq!(a, id_of(Dim::Thing, "j57a", 1_700_000_000_000));
        assert_ne!(a, id_of(Dim::Thing, "j57b", 1_700_000_000_000));
        assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
        assert!(id_of(Dim::Thing, "zzz", 1_700_000_000_001) > a);
    }

    #[test]
    fn references_follow_the_map() {
        let mut ids = Ids::default();
        let id = id_of(Dim::Thing, "t1", 5);
        ids.loaded(
            "t1",
            Ref {
                id,
                org: None,
                chunk: false,
            },
        );
        ids.invalid("t2", "things");
        assert_eq!(ids.resolve("thingId", "t1", &[Dim::Thing]).unwrap().id, id);
        assert!(
            ids.resolve("actorId", "t1", &[Dim::Person])
                .unwrap_err()
                .contains("names a thing, not a person")
        );
        assert!(
            ids.resolve("thingId", "t2", &[Dim::Thing])
                .unwrap_err()
                .contains("invalid things/t2")
        );
        assert!(
            ids.resolve("thingId", "t3", &[Dim::Thing])
                .unwrap_err()
                .contains("missing endpoint")
        );
    }
}
