//! Search through the public API: results never depend on how far the
//! indexer has got, survive a reopen and a rebuild (C4), respect the
//! store's visibility rules, and come back full under filters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use common::{create, new_thing, open, org, person};
use onedb::{
    Database, Durability, KnowledgeKind, KnowledgeSearch, NameSearch, NewKnowledge, Options, Role,
    Session, Status, VectorFilter, VectorMethod,
};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// (name, score) of a name search.
fn names(s: &Session, text: &str, limit: usize) -> Vec<(String, f32)> {
    let t = s.read().expect("read");
    let q = NameSearch {
        text,
        kinds: None,
        statuses: None,
        limit,
        deadline: deadline(),
    };
    s.search_names(&t, &q, &mut |_| Ok(true))
        .expect("search")
        .into_iter()
        .map(|h| (h.found.name().to_string(), h.score))
        .collect()
}

fn nearest(
    s: &Session,
    v: &[f32],
    k: usize,
    filter: VectorFilter,
) -> (Vec<(String, f32)>, VectorMethod) {
    let t = s.read().expect("read");
    let q = KnowledgeSearch {
        vector: v,
        k,
        filter,
        deadline: deadline(),
    };
    let (hits, method) = s
        .search_knowledge(&t, &q, &mut |_| Ok(true))
        .expect("search");
    (
        hits.into_iter()
            .map(|h| (h.knowledge.text, h.score))
            .collect(),
        method,
    )
}

fn chunk(s: &Session, text: &str, v: Vec<f32>, labels: &[&str], source: onedb::Id) {
    s.run(|t| {
        t.create_knowledge(NewKnowledge {
            kind: KnowledgeKind::Chunk,
            text: text.into(),
            embedding: Some(v.clone()),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            source: Some(source),
            links: vec![],
        })
        .map(|_| ())
    })
    .expect("chunk");
}

fn seed(s: &Session) {
    let words = [
        "rust", "go", "graph", "search", "vector", "tenant", "index", "audit",
    ];
    // Chunks of two sources of two types: the index keeps each chunk's
    // source type for filters, also when it is rebuilt.
    let sources = [create(s, "lesson", "source"), create(s, "course", "origin")];
    for i in 0..120usize {
        let name = format!(
            "{} {} {}",
            words[i % 8],
            words[(i / 8) % 8],
            if i % 3 == 0 { "guide" } else { "notes" }
        );
        create(s, "course", &name);
        let v = vec![(i % 7) as f32, (i % 5) as f32 + 0.5, (i % 3) as f32 - 1.0];
        let label = if i % 4 == 0 { "even" } else { "odd" };
        chunk(s, &format!("chunk {i}"), v, &[label], sources[i % 2].id);
    }
}

#[test]
fn results_are_the_same_before_and_after_the_indexer_applies_them() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    seed(&acme);
    // Straight after the writes most of it is pending in the indexer.
    let queries = ["rust guide", "graph", "vector notes", "audit tenant index"];
    let before: Vec<_> = queries.iter().map(|q| names(&acme, q, 10)).collect();
    let v = [1.0, 2.0, -0.5];
    let near_before = nearest(&acme, &v, 7, VectorFilter::default()).0;
    db.flush_indexes().expect("flush");
    let after: Vec<_> = queries.iter().map(|q| names(&acme, q, 10)).collect();
    let near_after = nearest(&acme, &v, 7, VectorFilter::default()).0;
    assert_eq!(before, after);
    assert_eq!(near_before, near_after);
    assert!(before.iter().all(|r| r.len() == 10), "{before:?}");
    let report = db.check_indexes().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.names, 122);
    assert_eq!(report.vectors, 120);
}

#[test]
fn a_reopened_and_a_rebuilt_index_answer_the_same() {
    let dir = tempfile::tempdir().expect("dir");
    let options = Options {
        durability: Durability::Relaxed,
        ..Default::default()
    };
    let queries = ["rust guide", "search", "index notes"];
    let v = [0.0, 1.0, 1.0];
    let filter = VectorFilter {
        labels: vec!["even".into()],
        ..Default::default()
    };
    let of_courses = VectorFilter {
        source_types: Some(vec!["course".into()]),
        ..Default::default()
    };
    // Three orgs: a rebuild builds their graphs on parallel threads, and
    // each org's answers must stay its own.
    let orgs = ["acme", "globex", "initech"];
    let answers = |s: &Session| {
        let r: Vec<_> = queries.iter().map(|q| names(s, q, 5)).collect();
        let near = nearest(s, &v, 5, filter.clone()).0;
        (r, near, nearest(s, &v, 5, of_courses.clone()).0)
    };
    let first: Vec<_> = {
        let db = Database::open_with(dir.path(), options.clone()).expect("open");
        orgs.iter()
            .map(|slug| {
                let s = org(&db, slug);
                seed(&s);
                // Its own best hits: a name and a chunk nearest `v`.
                let own = create(&s, "course", &format!("{slug} rust guide"));
                chunk(&s, slug, vec![0.0, 1.0, 1.0], &["even"], own.id);
                answers(&s)
            })
            .collect()
    };
    assert_eq!(first[0].2.len(), 5, "{:?}", first[0].2);
    assert_ne!(first[0], first[1], "each org has its own records");
    assert!(
        dir.path().join("indexes/vectors.bin").exists(),
        "closing saves the vector index"
    );
    let check = |db: &Database| {
        for (slug, want) in orgs.iter().zip(&first) {
            let mut s = db.local_session().expect("root");
            s.use_org(slug).expect("use");
            assert_eq!(&answers(&s), want, "{slug}");
        }
        let report = db.check_indexes().expect("check");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.vectors, 3 * 121);
    };
    check(&Database::open_with(dir.path(), options.clone()).expect("reopen"));
    // C4: the indexes deleted, rebuilt from the store alone.
    std::fs::remove_dir_all(dir.path().join("indexes")).expect("delete indexes");
    check(&Database::open_with(dir.path(), options.clone()).expect("rebuild"));
    check(
        &Database::open_with(
            dir.path(),
            Options {
                rebuild_indexes: true,
                ..options.clone()
            },
        )
        .expect("reindex"),
    );
    // A damaged vector file is not served: it is rebuilt.
    let path = dir.path().join("indexes/vectors.bin");
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&path, bytes).expect("damage");
    check(&Database::open_with(dir.path(), options).expect("open damaged"));
}

#[test]
fn customers_find_only_what_they_may_read() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let draft = create(&acme, "course", "Rust draft");
    let public = create(&acme, "course", "Rust published");
    acme.run(|t| {
        t.set_status(public.id, Status::Active)?;
        t.set_status(public.id, Status::Published).map(|_| ())
    })
    .expect("publish");
    chunk(&acme, "hidden chunk", vec![1.0, 0.0], &[], draft.id);
    chunk(&acme, "public chunk", vec![0.9, 0.1], &[], public.id);
    let customer = person(&db, &acme, "c@acme.io", Role::Customer);
    for flushed in [false, true] {
        if flushed {
            db.flush_indexes().expect("flush");
        }
        let found: Vec<String> = names(&customer, "rust", 10)
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(
            found,
            vec!["Rust published".to_string()],
            "flushed {flushed}"
        );
        let near: Vec<String> = nearest(&customer, &[1.0, 0.0], 5, VectorFilter::default())
            .0
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(near, vec!["public chunk".to_string()], "flushed {flushed}");
        // The owner sees both.
        assert_eq!(names(&acme, "rust", 10).len(), 2);
    }
}

#[test]
fn a_residual_filter_never_shortens_the_result() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    for i in 0..300 {
        create(&acme, "course", &format!("common name {i}"));
    }
    db.flush_indexes().expect("flush");
    // Only every 50th passes the caller's own check: the search digs deeper.
    let t = acme.read().expect("read");
    let q = NameSearch {
        text: "common",
        kinds: None,
        statuses: None,
        limit: 5,
        deadline: deadline(),
    };
    let hits = acme
        .search_names(&t, &q, &mut |f| {
            Ok(f.name()
                .trim_start_matches("common name ")
                .parse::<u32>()
                .unwrap_or(1)
                % 50
                == 0)
        })
        .expect("search");
    assert_eq!(hits.len(), 5);
}

#[test]
fn many_pending_changes_make_the_search_wait_for_the_indexer() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    acme.run(|t| {
        for i in 0..5_000 {
            t.create_thing(new_thing("task", &format!("bulk {i}")))?;
        }
        Ok(())
    })
    .expect("bulk");
    // More than PENDING_MAX records changed: the search waits for the
    // indexer rather than reading them one by one, and is still exact.
    let hits = names(&acme, "bulk", 20);
    assert_eq!(hits.len(), 20);
    let report = db.check_indexes().expect("check");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.names, 5_000);
}

#[test]
fn exact_search_answers_small_orgs_and_a_dimension_mismatch_is_refused() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let l = create(&acme, "lesson", "l");
    chunk(&acme, "a", vec![1.0, 0.0, 0.0], &[], l.id);
    db.flush_indexes().expect("flush");
    let (hits, method) = nearest(&acme, &[1.0, 0.0, 0.0], 3, VectorFilter::default());
    assert_eq!(method, VectorMethod::Exact);
    assert_eq!(hits.len(), 1);
    assert!((hits[0].1 - 1.0).abs() < 1e-6);
    let t = acme.read().expect("read");
    let q = KnowledgeSearch {
        vector: &[1.0, 0.0],
        k: 3,
        filter: VectorFilter::default(),
        deadline: deadline(),
    };
    let err = acme
        .search_knowledge(&t, &q, &mut |_| Ok(true))
        .expect_err("mismatch");
    assert_eq!(err.code, onedb::ErrorCode::InvalidArgument);
}

#[test]
fn scores_in_one_org_do_not_depend_on_another_orgs_data() {
    let (_dir, db) = open();
    let a = org(&db, "a");
    for name in ["rust guide", "rust notes", "graph guide", "search notes"] {
        create(&a, "lesson", name);
    }
    db.flush_indexes().expect("flush");
    let before = names(&a, "rust guide", 10);
    // Another org fills the index with the same words, many times over.
    let b = org(&db, "b");
    b.run(|t| {
        for i in 0..500 {
            let name = if i % 2 == 0 { "rust rust" } else { "guide" };
            t.create_thing(new_thing("lesson", name))?;
        }
        Ok(())
    })
    .expect("b's things");
    assert_eq!(names(&a, "rust guide", 10), before, "b's pending writes");
    db.flush_indexes().expect("flush");
    assert_eq!(names(&a, "rust guide", 10), before, "b's indexed writes");
    assert_eq!(before.len(), 3);
}

#[test]
fn under_concurrent_writes_a_search_finds_everything_its_snapshot_holds() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for w in 0..2 {
            let (db, stop) = (&db, &stop);
            scope.spawn(move || {
                let mut s = db.local_session().expect("root");
                s.use_org("acme").expect("use");
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    create(&s, "task", &format!("racer{w}x{n}"));
                    n += 1;
                }
            });
        }
        // The writers stop however the reader ends.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        let started = Instant::now();
        let mut checked = 0;
        while started.elapsed() < Duration::from_secs(2) {
            let t = acme.read().expect("read");
            // Everything this snapshot holds…
            let names: Vec<String> = t
                .things_of_type("task", None)
                .expect("scan")
                .map(|x| x.expect("thing").name)
                .collect();
            // …a search on the same snapshot finds (the newest few, each).
            for name in names.iter().rev().take(5) {
                let q = NameSearch {
                    text: name,
                    kinds: None,
                    statuses: None,
                    limit: 1,
                    deadline: deadline(),
                };
                let hits = acme
                    .search_names(&t, &q, &mut |_| Ok(true))
                    .expect("search");
                assert_eq!(
                    hits.first().map(|h| h.found.name()),
                    Some(name.as_str()),
                    "{name} is in the snapshot but not found"
                );
                checked += 1;
            }
        }
        println!("{checked} searches agreed with their snapshots");
        assert!(checked >= 10, "checked only {checked}");
    });
}

/// `RETURN id, score` of a nearest search with every planner pass (the
/// hits bound by id, answered by the index alone where it can) and with
/// none (every hit read back): the rows, and the first with the second.
fn by_id_and_read(runner: &mut onedb::query::run::Runner<'_>, v: &[f32]) -> (Json, Json) {
    use onedb::query::plan::Optimize;
    runner.set_param("v", json!(v)).expect("param");
    let mut rows = |optimize| {
        runner.set_optimize(optimize);
        let out = runner
            .execute("SEARCH KNOWLEDGE NEAREST $v K 4 RETURN id, score")
            .expect("search");
        json!(out.rows)
    };
    let by_id = rows(Optimize::ALL);
    let read = rows(Optimize::NONE);
    runner.set_optimize(Optimize::ALL);
    (by_id, read)
}

fn ids_of(rows: &Json) -> Vec<String> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r[0].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn hits_bound_by_id_are_the_hits_read_back() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let draft = create(&acme, "course", "draft");
    let public = create(&acme, "course", "published");
    acme.run(|t| {
        t.set_status(public.id, Status::Active)?;
        t.set_status(public.id, Status::Published).map(|_| ())
    })
    .expect("publish");
    for i in 0..12 {
        let source = if i % 2 == 0 { draft.id } else { public.id };
        chunk(
            &acme,
            &format!("c{i}"),
            vec![1.0, i as f32 * 0.1],
            &[],
            source,
        );
    }
    let v = [1.0, 0.0];
    let mut runner = onedb::query::run::Runner::new(&acme);
    // Pending in the indexer, then applied.
    let (pending, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(pending, read);
    db.flush_indexes().expect("flush");
    let (applied, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(applied, read);
    assert_eq!(applied, pending);
    assert_eq!(ids_of(&applied).len(), 4);
    // Answered by the index alone, a query vector of the wrong dimension
    // is refused as the read-back path refuses it.
    runner
        .set_param("v", json!([1.0, 0.0, 0.0]))
        .expect("param");
    let wrong = runner
        .execute("SEARCH KNOWLEDGE NEAREST $v K 4 RETURN id, score")
        .expect_err("a 3-dimensional query over 2-dimensional chunks");
    assert_eq!(wrong.code, onedb::ErrorCode::InvalidArgument, "{wrong}");

    // A deleted chunk is gone from both, pending and applied.
    let best = ids_of(&applied)[0].clone();
    runner
        .execute(&format!("DELETE \"{best}\""))
        .expect("delete");
    let (by_id, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(by_id, read);
    assert!(!ids_of(&by_id).contains(&best));
    db.flush_indexes().expect("flush");
    assert_eq!(by_id_and_read(&mut runner, &v), (by_id.clone(), by_id));

    // A customer sees the chunks of published things only.
    let customer = person(&db, &acme, "c@acme.io", Role::Customer);
    let mut theirs = onedb::query::run::Runner::new(&customer);
    let (by_id, read) = by_id_and_read(&mut theirs, &v);
    assert_eq!(by_id, read);
    let texts = |ids: Vec<String>| -> Vec<String> {
        let t = acme.read().expect("read");
        ids.iter()
            .map(|id| {
                t.knowledge(id.parse().expect("id"))
                    .expect("k")
                    .expect("live")
                    .text
            })
            .collect()
    };
    let seen = texts(ids_of(&by_id));
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|t| t[1..].parse::<u32>().unwrap() % 2 == 1),
        "{seen:?}"
    );
}

#[test]
fn hits_bound_by_id_follow_the_block_writes_and_its_snapshot() {
    let (_dir, db) = open();
    let acme = org(&db, "acme");
    let lesson = create(&acme, "lesson", "source");
    for i in 0..6 {
        chunk(
            &acme,
            &format!("c{i}"),
            vec![i as f32 * 0.1, 1.0],
            &[],
            lesson.id,
        );
    }
    db.flush_indexes().expect("flush");
    let v = [1.0, 0.0];
    let mut runner = onedb::query::run::Runner::new(&acme);
    runner.execute("BEGIN").expect("begin");
    let (before, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(before, read);
    // Written by another session after the block's snapshot, and indexed:
    // the block must not see it.
    let other = db.local_session().expect("root");
    let mut other = other;
    other.use_org("acme").expect("use");
    chunk(&other, "later", vec![1.0, 0.0], &[], lesson.id);
    db.flush_indexes().expect("flush");
    let (during, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(during, read);
    assert_eq!(
        during, before,
        "a commit after the block's snapshot leaked in"
    );
    // Written by the block itself: found by both.
    runner
        .execute(&format!(
            "CREATE KNOWLEDGE CHUNK \"mine\" EMBEDDING [1.0, 0.01] FOR \"{}\"",
            lesson.id
        ))
        .expect("create");
    let (mine, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(mine, read);
    assert_ne!(mine, before);
    runner.execute("ROLLBACK").expect("rollback");
    // After the block, the later chunk is the best hit.
    let (after, read) = by_id_and_read(&mut runner, &v);
    assert_eq!(after, read);
    assert_ne!(after, before);
}

#[test]
fn only_a_nearest_search_that_reads_nothing_but_ids_skips_the_records() {
    use onedb::query::ast::StatementKind;
    use onedb::query::parser::parse_statement;
    use onedb::query::plan::{Op, Optimize, plan_search};
    let vocabulary = onedb::ontology::Vocabulary::builtin();
    let load = |text: &str| -> Vec<bool> {
        let StatementKind::Search(search) = parse_statement(text).expect("parse").kind else {
            panic!("not a SEARCH: {text}");
        };
        let plan = plan_search(&search, &vocabulary, Optimize::ALL).expect("plan");
        let mut loads = Vec::new();
        plan.root.each(&mut |op| {
            if let Op::Search { load, .. } = op {
                loads.push(*load);
            }
        });
        loads
    };
    let v = "[1.0, 0.0]";
    assert_eq!(
        load(&format!(
            "SEARCH KNOWLEDGE NEAREST {v} K 3 RETURN id, score"
        )),
        [false]
    );
    assert_eq!(
        load(&format!("SEARCH KNOWLEDGE NEAREST {v} K 3 RETURN id")),
        [false]
    );
    assert_eq!(
        load(&format!(
            "SEARCH KNOWLEDGE NEAREST {v} K 3 WHERE source = $s RETURN id"
        )),
        [false],
        "a condition the index answers needs no record"
    );
    for reads in [
        format!("SEARCH KNOWLEDGE NEAREST {v} K 3"),
        format!("SEARCH KNOWLEDGE NEAREST {v} K 3 RETURN id, text"),
        format!("SEARCH KNOWLEDGE NEAREST {v} K 3 WHERE text <> \"x\" RETURN id"),
        "SEARCH THINGS \"rust\" RETURN id".to_string(),
    ] {
        assert_eq!(load(&reads), [true], "{reads}");
    }
}
