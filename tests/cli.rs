//! The `onedb` binary: `run`, `check` (store and search indexes) and
//! `reindex`, as a user types them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn onedb(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .arg("--data")
        .arg(data)
        .args(["--durability", "relaxed"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn onedb");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("onedb")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn check_and_reindex_cover_the_search_indexes() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let script = r#"
CREATE ORG acme NAME "Acme";
USE ORG acme;
LET $l = CREATE THING lesson "Ownership and borrowing" {};
CREATE KNOWLEDGE CHUNK "moves" EMBEDDING [1.0, 0.0] FOR $l;
SEARCH THINGS "borrowing" RETURN name;
"#;
    let run = onedb(&data, &["run", "-", "--format", "json"], Some(script));
    assert!(
        run.status.success(),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert!(text(&run.stdout).contains("Ownership and borrowing"));

    let check = onedb(&data, &["check"], None);
    let out = text(&check.stdout);
    assert!(check.status.success(), "{out}{}", text(&check.stderr));
    assert!(out.contains("search indexes: 1 names, 1 vectors"), "{out}");
    assert!(out.ends_with("ok\n"), "{out}");

    let reindex = onedb(&data, &["reindex"], None);
    let out = text(&reindex.stdout);
    assert!(reindex.status.success(), "{out}{}", text(&reindex.stderr));
    assert!(out.contains("reindexed 1 names and 1 vectors"), "{out}");

    // Deleted indexes come back on the next open, and agree with the store.
    std::fs::remove_dir_all(data.join("indexes")).expect("delete indexes");
    let check = onedb(&data, &["check"], None);
    assert!(check.status.success(), "{}", text(&check.stdout));
    let search = onedb(
        &data,
        &["run", "-"],
        Some("USE ORG acme;\nSEARCH THINGS \"ownership\" RETURN name;\n"),
    );
    assert!(text(&search.stdout).contains("Ownership and borrowing"));
}

/// `onedb check` reports stored things that violate their property schemas:
/// here a schema that arrived after the data (as a load of records and
/// schemas from different times would leave it), written with raw RocksDB
/// while onedb is closed, since `DEFINE SCHEMA` itself refuses it.
#[test]
fn check_reports_things_that_violate_their_schemas() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let script = r#"
CREATE ORG acme NAME "Acme";
USE ORG acme;
CREATE THING course "Free" {price: -1};
CREATE THING course "Paid" {price: 3};
DEFINE SCHEMA course {properties: {price: {minimum: 0}}};
"#;
    let run = onedb(&data, &["run", "-", "--continue"], Some(script));
    let out = text(&run.stdout) + &text(&run.stderr);
    assert!(
        out.contains("1 stored course thing would violate this schema"),
        "{out}"
    );
    let check = onedb(&data, &["check"], None);
    assert!(check.status.success(), "{}", text(&check.stdout));

    plant(
        &data,
        &onedb::internals::Tenant::PLATFORM.schema("course"),
        br#"{"properties":{"price":{"minimum":0}}}"#,
    );
    let check = onedb(&data, &["check"], None);
    let out = text(&check.stdout);
    assert!(!check.status.success(), "{out}");
    assert!(
        out.contains(
            "violates the platform's schema of course: properties.price: -1 is less than the minimum of 0"
        ),
        "{out}"
    );
    assert_eq!(out.matches("problem:").count(), 1, "{out}");
    // The schema is in force: the same write is refused now.
    let run = onedb(
        &data,
        &["run", "-"],
        Some("USE ORG acme;\nCREATE THING course \"Free again\" {price: -1};\n"),
    );
    let out = text(&run.stdout) + &text(&run.stderr);
    assert!(!run.status.success(), "{out}");
    assert!(out.contains("INVALID_ARGUMENT"), "{out}");
}

/// Writes one key with raw RocksDB into a closed data directory.
#[expect(
    clippy::disallowed_types,
    reason = "the test plants what no statement may write"
)]
fn plant(data: &Path, key: &[u8], value: &[u8]) {
    let raw = rocksdb::DB::open(&onedb::internals::rocksdb_options(), data).expect("raw");
    raw.put(key, value).expect("plant");
}

/// `--store memory`: the records live in memory only — a second run on the
/// same directory starts empty, with search indexes that agree — and no
/// RocksDB files are written.
#[test]
fn the_memory_store_keeps_nothing_between_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let script = r#"
CREATE ORG acme NAME "Acme";
USE ORG acme;
CREATE THING lesson "Ownership and borrowing" {};
SEARCH THINGS "borrowing" RETURN name;
"#;
    for _ in 0..2 {
        let run = onedb(
            &data,
            &["--store", "memory", "run", "-", "--format", "json"],
            Some(script),
        );
        let out = text(&run.stdout);
        assert!(run.status.success(), "{out}{}", text(&run.stderr));
        assert_eq!(out.matches("Ownership and borrowing").count(), 1, "{out}");
    }
    assert!(!data.join("CURRENT").exists(), "RocksDB files were written");
    let load = onedb(&data, &["--store", "memory", "load", "-"], Some(""));
    assert!(!load.status.success());
    assert!(
        text(&load.stderr).contains("rocks store"),
        "{}",
        text(&load.stderr)
    );
}

/// `--store tikv://` names a TiKV cluster: a binary built without the
/// feature `tikv` says so and how to get it; with it, a placement driver
/// that does not answer is an error, not a hang or a panic. A malformed
/// URL is refused either way.
#[test]
fn a_tikv_store_needs_the_feature_and_a_cluster() {
    let dir = tempfile::tempdir().expect("dir");
    let out = onedb(
        dir.path(),
        &["--store", "tikv://127.0.0.1:1/x", "info"],
        None,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    if cfg!(feature = "tikv") {
        assert!(err.contains("tikv"), "{err}");
    } else {
        assert!(err.contains("--features tikv"), "{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let out = onedb(dir.path(), &["--store", "tikv://", "info"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("HOST:PORT"),
        "{}",
        text(&out.stderr)
    );
}
