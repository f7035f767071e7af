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
