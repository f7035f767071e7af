//! The `api_calls` meter (src/db/api_calls.rs): counted in memory, never
//! past the limit under concurrency, against the org the session is in,
//! stored in batches when asked (a server asks every second and when it
//! stops: tests/server.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use onedb::query::run::Runner;
use onedb::{ErrorCode, Session};

fn stored_api_calls(session: &Session) -> i64 {
    let usage = session.read().unwrap().usage().unwrap();
    usage
        .iter()
        .find(|u| u.counter == "api_calls")
        .expect("api_calls row")
        .used
}

#[test]
fn concurrent_calls_stop_exactly_at_the_limit_and_are_stored() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "acme");
    Runner::new(&root)
        .execute("SET LIMITS ON ORG acme {api_calls: 100}")
        .unwrap();
    let mut admin = db.local_session().unwrap();
    admin.use_org("acme").unwrap();
    let (ok, refused) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut session = db.local_session().unwrap();
                    session.use_org("acme").unwrap();
                    let (mut ok, mut refused) = (0, 0);
                    for _ in 0..30 {
                        match session.count_api_call() {
                            Ok(()) => ok += 1,
                            Err(e) if e.code == ErrorCode::LimitReached => refused += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                    (ok, refused)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    });
    assert_eq!((ok, refused), (100, 140));
    db.store_api_calls().unwrap();
    assert_eq!(stored_api_calls(&admin), 100);
    // Stored once: storing again adds nothing.
    db.store_api_calls().unwrap();
    assert_eq!(stored_api_calls(&admin), 100);
    common::assert_valid(&db);
}

#[test]
fn a_session_counts_against_the_org_it_is_in_after_use_org_too() {
    let (_dir, db) = common::open();
    common::org(&db, "acme");
    common::org(&db, "beta");
    let mut session = db.local_session().unwrap();
    session.use_org("acme").unwrap();
    session.count_api_call().unwrap();
    session.use_org("beta").unwrap();
    for _ in 0..3 {
        session.count_api_call().unwrap();
    }
    db.store_api_calls().unwrap();
    assert_eq!(stored_api_calls(&session), 3);
    session.use_org("acme").unwrap();
    assert_eq!(stored_api_calls(&session), 1);
}
