//! RELIABILITY.md A1 over the wire: the same checked-in table as the local
//! test (tests/roles/table.txt), each cell's OQL sent by the real server
//! to a session of that role logged in with a password. A person over TCP
//! has exactly the rights of the local session of that person.
//!
//! Each cell gets its own copy of one fixture and its own `onedb serve`
//! (allowed writes change the data); cells run four at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/server.rs"]
mod harness;
mod roles;

use std::path::Path;
use std::sync::Mutex;

use harness::{Client, Server};
use roles::{COLUMNS, CUSTOMER, Expect, Fx, OWNER, Outcome, PASSWORD, ROOT, Seen, USER};
use serde_json::{Map, Value as Json, json};

/// The fixture, closed, with what the cells need to know of it.
struct Template {
    dir: tempfile::TempDir,
    emails: [String; 4],
    me: [String; 4],
    params: [Map<String, Json>; 4],
}

fn template() -> Template {
    let fx = Fx::durable().with_passwords();
    let emails = [0, 1, 2, 3].map(|a| fx.s[a].actor().email.clone());
    let me = fx.me.map(|id| id.to_string());
    let params = [0, 1, 2, 3].map(|a| fx.params(a));
    let Fx { _dir, db, s, .. } = fx;
    drop(s);
    drop(db);
    Template {
        dir: _dir,
        emails,
        me,
        params,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What a response says, classified as the local test classifies the
/// Rust API's results: a read (its last statement is MATCH, EVENTS, SHOW
/// or SEARCH) by the owners in its `owner`, `actor` or `person` column.
fn outcome(oql: &str, response: &Json, me: &str) -> Outcome {
    if response["ok"] != json!(true) {
        return Err(Client::code(response));
    }
    let last = oql.trim_end_matches(';').rsplit(';').next().unwrap_or("");
    let first_word = last.split_whitespace().next().unwrap_or("");
    if !matches!(first_word, "MATCH" | "EVENTS" | "SHOW" | "SEARCH") {
        return Ok(Seen::Wrote);
    }
    let columns: Vec<&str> = response["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let rows = response["rows"].as_array().unwrap();
    let owner = ["owner", "actor", "person"]
        .iter()
        .find_map(|name| columns.iter().position(|c| c == name));
    Ok(match owner {
        Some(at) => roles::seen(rows.iter().map(|r| r[at] == json!(me))),
        None if rows.is_empty() => Seen::Nothing,
        None => Seen::Data,
    })
}

/// Runs one cell on its own server; None when it matches the table.
fn run_cell(t: &Template, op: &str, oql: &str, expect: &Expect, a: usize) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(t.dir.path(), &data);
    let server = Server::start_on(dir, data, &[], None);
    let mut client = server.login(&t.emails[a], PASSWORD);
    // Root works inside acme in the fixture, as the local test's root does.
    let text = if a == ROOT {
        format!("USE ORG acme; {oql}")
    } else {
        oql.to_string()
    };
    let response = client.call(json!({
        "id": 1, "op": "query", "text": text, "params": t.params[a],
    }));
    let got = outcome(oql, &response, &t.me[a]);
    (!roles::matches(expect, &got)).then(|| {
        format!(
            "{op:<50} {:<15} expected {expect:?}, got {got:?}: {response}",
            COLUMNS[a]
        )
    })
}

#[test]
fn every_role_and_operation_follows_the_table_over_the_wire() {
    let t = template();
    let table = roles::table();
    let cells: Vec<(usize, usize)> = (0..table.len())
        .flat_map(|row| [ROOT, OWNER, USER, CUSTOMER].map(|a| (row, a)))
        .filter(|&(row, a)| table[row].expect[a] != Expect::Skip)
        .collect();
    let next = Mutex::new(cells.iter());
    let mismatches = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some(&(row, a)) = next.lock().unwrap().next() else {
                        return;
                    };
                    let line = &table[row];
                    if let Some(m) = run_cell(&t, &line.op, &line.oql, &line.expect[a], a) {
                        mismatches.lock().unwrap().push(m);
                    }
                }
            });
        }
    });
    let mismatches = mismatches.into_inner().unwrap();
    println!(
        "{} rows, {} cells, {} mismatches",
        table.len(),
        cells.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cells differ from the table:\n{}",
        mismatches.len(),
        cells.len(),
        mismatches.join("\n")
    );
}
