//! Every ```oql block of docs/oql.md runs without an error on a new
//! database, so the reference cannot drift from the language.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use onedb::query::run::Runner;
use onedb::query::script::ScriptReader;

#[test]
fn every_example_in_the_oql_reference_runs() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/oql.md"))
        .expect("docs/oql.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```oql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 10, "found only {} examples", blocks.len());
    let (_dir, db) = common::open();
    for block in &blocks {
        let session = db.local_session().expect("root");
        let mut runner = Runner::new(&session);
        for statement in ScriptReader::new(block.as_bytes()) {
            let statement = statement.expect("split");
            if let Err(e) = runner.execute(&statement.text) {
                panic!(
                    "docs/oql.md example failed: {}\n  {e}\nin block:\n{block}",
                    statement.text
                );
            }
        }
    }
}
