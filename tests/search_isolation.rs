//! T1 for search: random things, people and chunks across three orgs that
//! share names, words and vectors, plus global platform things. Every name
//! search and vector search in an org returns exactly that org's matches
//! (and the global things), whether the indexer has applied the writes yet
//! or not; another org's writes never change an org's results.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use onedb::{
    Database, Id, KnowledgeKind, KnowledgeSearch, NameSearch, NewKnowledge, NewThing, Plan,
    Session, VectorFilter,
};
use proptest::prelude::*;

const WORDS: [&str; 5] = ["alpha", "beta", "gamma", "delta", "omega"];
const ORGS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    /// A thing in org `org` (3: a global thing) named by two words.
    Thing { org: usize, w1: usize, w2: usize },
    /// A chunk in an org with a small vector.
    Chunk { org: usize, v: [i8; 3] },
    /// Delete the `n`th live thing of the model (modulo).
    Delete { n: usize },
    /// Let the indexer catch up.
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..5usize, 0..5usize).prop_map(|(org, w1, w2)| Op::Thing { org, w1, w2 }),
        3 => (0..3usize, any::<[i8; 3]>()).prop_map(|(org, v)| Op::Chunk { org, v }),
        1 => any::<usize>().prop_map(|n| Op::Delete { n }),
        1 => Just(Op::Flush),
    ]
}

struct Thing {
    org: usize,
    id: Id,
    words: [usize; 2],
}

fn session(db: &Database, org: usize) -> Session {
    let mut root = db.local_session().expect("root");
    if org < ORGS.len() {
        root.use_org(ORGS[org]).expect("use org");
    }
    root
}

fn found_ids(s: &Session, word: &str) -> BTreeSet<Id> {
    let t = s.read().expect("read");
    let q = NameSearch {
        text: word,
        kinds: None,
        statuses: None,
        limit: 1_000,
        deadline: Instant::now() + Duration::from_secs(30),
    };
    s.search_names(&t, &q, &mut |_| Ok(true))
        .expect("search")
        .into_iter()
        .map(|h| h.found.id())
        .collect()
}

fn near_ids(s: &Session, k: usize) -> BTreeSet<Id> {
    let t = s.read().expect("read");
    let q = KnowledgeSearch {
        vector: &[1.0, 0.5, -0.25],
        k,
        filter: VectorFilter::default(),
        deadline: Instant::now() + Duration::from_secs(30),
    };
    s.search_knowledge(&t, &q, &mut |_| Ok(true))
        .expect("nearest")
        .0
        .into_iter()
        .map(|h| h.knowledge.id)
        .collect()
}

fn check(db: &Database, things: &[Thing], chunks: &[(usize, Id)]) -> Result<(), TestCaseError> {
    for (o, _) in ORGS.iter().enumerate() {
        let s = session(db, o);
        for (w, word) in WORDS.iter().enumerate() {
            let want: BTreeSet<Id> = things
                .iter()
                .filter(|t| (t.org == o || t.org == ORGS.len()) && t.words.contains(&w))
                .map(|t| t.id)
                .collect();
            prop_assert_eq!(found_ids(&s, word), want, "org {} word {}", ORGS[o], word);
        }
        let want: BTreeSet<Id> = chunks
            .iter()
            .filter(|(c, _)| *c == o)
            .map(|(_, id)| *id)
            .collect();
        prop_assert_eq!(
            near_ids(&s, chunks.len() + 1),
            want,
            "org {} chunks",
            ORGS[o]
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn searches_in_an_org_return_exactly_its_own_matches(ops in prop::collection::vec(op(), 1..40)) {
        let (_dir, db) = common::open();
        let root = db.local_session().expect("root");
        for slug in ORGS {
            root.run(|t| t.create_org(slug, slug, Plan::Enterprise).map(|_| ())).expect("org");
        }
        let sources: Vec<Id> = (0..ORGS.len())
            .map(|o| {
                session(&db, o)
                    .run(|t| t.create_thing(NewThing { kind: "lesson".into(), name: "source".into(), ..Default::default() }))
                    .expect("source")
                    .id
            })
            .collect();
        let mut things: Vec<Thing> = Vec::new();
        let mut chunks: Vec<(usize, Id)> = Vec::new();
        for op in ops {
            match op {
                Op::Thing { org, w1, w2 } => {
                    let name = format!("{} {}", WORDS[w1], WORDS[w2]);
                    let t = session(&db, org)
                        .run(|t| t.create_thing(NewThing { kind: "lesson".into(), name: name.clone(), ..Default::default() }))
                        .expect("thing");
                    things.push(Thing { org, id: t.id, words: [w1, w2] });
                }
                Op::Chunk { org, v } => {
                    let embedding: Vec<f32> = v.iter().map(|x| *x as f32 + 0.5).collect();
                    let k = session(&db, org)
                        .run(|t| t.create_knowledge(NewKnowledge {
                            kind: KnowledgeKind::Chunk,
                            text: "chunk".into(),
                            embedding: Some(embedding.clone()),
                            labels: vec![],
                            source: Some(sources[org]),
                            links: vec![],
                        }))
                        .expect("chunk");
                    chunks.push((org, k.id));
                }
                Op::Delete { n } => {
                    if !things.is_empty() {
                        let t = things.remove(n % things.len());
                        session(&db, t.org).run(|x| x.delete_thing(t.id)).expect("delete");
                    }
                }
                Op::Flush => db.flush_indexes().expect("flush"),
            }
            // The "source" lessons match no query word.
        }
        check(&db, &things, &chunks)?;
        db.flush_indexes().expect("flush");
        check(&db, &things, &chunks)?;
        let report = db.check_indexes().expect("check");
        prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
