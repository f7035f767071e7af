//! Helpers shared by the integration tests (public API only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod binary;
pub mod child;

use onedb::model::Clock;
use onedb::{
    Database, Durability, NewPerson, NewThing, Options, Plan, Role, Session, Store, Thing,
};

pub fn open() -> (tempfile::TempDir, Database) {
    open_at(Clock::system())
}

/// The store the tests run on: RocksDB, or the in-memory engine when
/// `ONEDB_TEST_STORE=memory` (.ci/run reruns some suites so).
pub fn test_store() -> Store {
    match std::env::var("ONEDB_TEST_STORE") {
        Ok(name) if !name.is_empty() => Store::parse(&name).expect("ONEDB_TEST_STORE"),
        _ => Store::Rocks,
    }
}

/// A new database on RocksDB whatever `ONEDB_TEST_STORE` says: for tests
/// of what only a durable store has (reopening, the directory's lock).
pub fn open_durable() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open_with(
        dir.path(),
        Options {
            durability: Durability::Relaxed,
            ..Default::default()
        },
    )
    .expect("open");
    (dir, db)
}

/// A new database whose timestamps come from `clock`.
pub fn open_at(clock: Clock) -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open_with(
        dir.path(),
        Options {
            durability: Durability::Relaxed,
            clock,
            store: test_store(),
            ..Default::default()
        },
    )
    .expect("open");
    (dir, db)
}

/// Creates an org (as root) and returns root's session inside it.
pub fn org(db: &Database, slug: &str) -> Session {
    let mut root = db.local_session().expect("root");
    root.run(|t| {
        t.create_org(slug, &format!("{slug} inc"), Plan::Enterprise)
            .map(|_| ())
    })
    .expect("create org");
    root.use_org(slug).expect("use org");
    root
}

/// Adds a person to the session's org and returns their session.
pub fn person(db: &Database, admin: &Session, email: &str, role: Role) -> Session {
    admin
        .run(|t| {
            t.create_person(NewPerson {
                email: email.into(),
                name: email.into(),
                role,
                password: None,
            })
            .map(|_| ())
        })
        .expect("create person");
    db.session_as(email).expect("session as")
}

pub fn new_thing(kind: &str, name: &str) -> NewThing {
    NewThing {
        kind: kind.into(),
        name: name.into(),
        ..Default::default()
    }
}

pub fn create(session: &Session, kind: &str, name: &str) -> Thing {
    session
        .run(|t| t.create_thing(new_thing(kind, name)))
        .expect("create thing")
}

/// Every key and value in the database, for before/after comparisons.
pub fn all_entries(db: &Database) -> Vec<(Vec<u8>, Vec<u8>)> {
    onedb::internals::raw_entries(db).expect("scan")
}

pub fn assert_valid(db: &Database) {
    let report = db.validate().expect("validate");
    assert!(
        report.is_ok(),
        "validate found problems: {:#?}",
        report.problems
    );
}
