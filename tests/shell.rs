//! The shell, driven through its input and output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

fn shell(input: &str) -> String {
    let (_dir, db) = common::open();
    let session = db.local_session().expect("root");
    let mut out = Vec::new();
    let mut runner = onedb::query::run::Runner::new(&session);
    onedb::repl::run(&mut runner, input.as_bytes(), &mut out, true).expect("shell");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn runs_statements_across_lines_and_shows_tables_prompts_and_errors() {
    let out = shell(
        "CREATE ORG acme NAME \"Acme\";\nUSE ORG acme;\nCREATE THING course\n  \"Rust\" {price: 39};\nMATCH (c:course) RETURN c.name, c.price;\nMATCH (c:cours) RETURN c;\n\\quit\nSHOW ORGS;\n",
    );
    assert!(out.contains("onedb> "), "{out}");
    assert!(out.contains("acme> "), "prompt shows the org: {out}");
    assert!(out.contains("   ...> "), "continuation prompt: {out}");
    assert!(out.contains("| Rust   | 39      |"), "{out}");
    assert!(
        out.contains("error UNKNOWN_TYPE at line 1, column 10"),
        "{out}"
    );
    assert!(out.contains("did you mean course"), "{out}");
    assert!(!out.contains("Acme |"), "nothing runs after \\quit: {out}");
}

#[test]
fn an_unfinished_block_is_not_committed() {
    let out = shell(
        "CREATE ORG acme NAME \"Acme\";\nUSE ORG acme;\nBEGIN;\nCREATE THING task \"t\" {};\n",
    );
    assert!(out.contains("nothing in the block was committed"), "{out}");
}
