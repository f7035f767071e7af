//! C3: our own file operations for the derived indexes (the name index
//! commit, every step of writing the vector file, reading it back) fail at
//! the Nth call, N = 1, 2, …. Writers are never told a false success —
//! their commits do not depend on the indexes — a flush reports the failure
//! as an error, nothing panics, and after a restart the indexes agree with
//! the store again.
//!
//! One test in its own binary: the fault counter is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{create, org};
use onedb::internals::fail_file_operation_at;
use onedb::{
    Database, Durability, ErrorCode, KnowledgeKind, KnowledgeSearch, NameSearch, NewKnowledge,
    Options, VectorFilter,
};

fn options() -> Options {
    Options {
        durability: Durability::Relaxed,
        ..Default::default()
    }
}

#[test]
fn failed_index_file_operations_never_lose_or_fake_anything() {
    let dir = tempfile::tempdir().expect("dir");
    let mut names = Vec::new();
    let mut failures = 0;
    for n in 1..=10usize {
        let db = Database::open_with(dir.path(), options()).expect("open");
        let mut root = db.local_session().expect("root");
        if root.use_org("acme").is_err() {
            drop(root);
            root = org(&db, "acme");
        }
        fail_file_operation_at(n);
        // Writes are acknowledged whatever happens to the index files.
        let name = format!("fault{n}");
        let thing = create(&root, "lesson", &name);
        root.run(|t| {
            t.create_knowledge(NewKnowledge {
                kind: KnowledgeKind::Chunk,
                text: name.clone(),
                embedding: Some(vec![n as f32, 1.0, -(n as f32)]),
                labels: vec![],
                source: Some(thing.id),
                links: vec![],
            })
            .map(|_| ())
        })
        .expect("a write is acknowledged while index files fail");
        names.push(name);
        // The indexer reports the failure and retries; a flush either
        // sees the retry succeed or reports the error.
        if let Err(e) = db.flush_indexes() {
            assert_eq!(e.code, ErrorCode::Io, "fault {n}: {e}");
        }
        failures += db.index_failures();
        // Searches stay exact meanwhile: what the index lacks is pending.
        let t = root.read().expect("read");
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in &names {
            let q = NameSearch {
                text: name,
                kinds: None,
                statuses: None,
                limit: 1,
                deadline,
            };
            let hits = root
                .search_names(&t, &q, &mut |_| Ok(true))
                .expect("search");
            assert_eq!(hits.len(), 1, "fault {n}: {name} not found");
        }
        let q = KnowledgeSearch {
            vector: &[n as f32, 1.0, -(n as f32)],
            k: 1,
            filter: VectorFilter::default(),
            deadline,
        };
        let (hits, _) = root
            .search_knowledge(&t, &q, &mut |_| Ok(true))
            .expect("nearest");
        assert_eq!(hits[0].knowledge.text, format!("fault{n}"));
        drop(t);
        fail_file_operation_at(0);
        drop(root);
        drop(db);
        let db = Database::open_with(dir.path(), options()).expect("reopen");
        let report = db.check_indexes().expect("check");
        assert!(
            report.problems.is_empty(),
            "fault {n}: after a restart {:?}",
            report.problems
        );
        assert_eq!(report.names, names.len(), "fault {n}");
        assert_eq!(report.vectors, names.len(), "fault {n}");
    }
    // Six file operations per flush: the first six faults hit one each.
    assert!(
        failures >= 6,
        "only {failures} of the injected faults surfaced"
    );
}
