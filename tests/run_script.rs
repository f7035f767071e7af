//! `onedb run` semantics (RELIABILITY.md B1): a script that fails at
//! statement 500 of 1,000 stops there with the committed prefix reported,
//! or goes on with --continue; inside BEGIN it is all or nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::ExitCode;

use onedb::cli::{Format, run_script};

fn script(failing_at: usize, total: usize, block: bool) -> String {
    let mut s = String::from("CREATE ORG acme NAME \"Acme\";\nUSE ORG acme;\n");
    if block {
        s.push_str("BEGIN;\n");
    }
    for i in 1..=total {
        if i == failing_at {
            s.push_str("CREATE THING cours \"typo\" {};\n");
        } else {
            s.push_str(&format!("CREATE THING task \"t{i}\" {{}};\n"));
        }
    }
    if block {
        s.push_str("COMMIT;\n");
    }
    s
}

/// Runs a script; returns the exit code, the JSON lines, and the tasks stored.
fn run(text: &str, keep_going: bool) -> (ExitCode, Vec<serde_json::Value>, usize) {
    let (_dir, db) = common::open();
    let session = db.local_session().expect("root");
    let mut out = Vec::new();
    let code = run_script(
        &session,
        text.as_bytes(),
        Format::Json,
        &[],
        keep_going,
        &mut out,
    )
    .expect("run");
    let lines = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let mut root = db.local_session().expect("root");
    let tasks = match root.use_org("acme") {
        Ok(()) => root
            .read()
            .expect("read")
            .things_of_type("task", None)
            .expect("scan")
            .count(),
        Err(_) => 0,
    };
    (code, lines, tasks)
}

#[test]
fn a_failure_stops_the_script_with_the_committed_prefix_reported() {
    let (code, lines, tasks) = run(&script(500, 1000, false), false);
    assert_eq!(code, ExitCode::FAILURE);
    // 2 setup statements + 499 creates succeeded, then one error line.
    assert_eq!(lines.len(), 2 + 500);
    assert!(lines[..501].iter().all(|l| l.get("columns").is_some()));
    assert_eq!(lines[501]["error"]["code"], "UNKNOWN_TYPE");
    assert_eq!(lines[501]["error"]["line"], 502, "the line in the script");
    assert_eq!(tasks, 499, "exactly the reported prefix is stored");
}

#[test]
fn with_continue_every_other_statement_runs_and_the_exit_status_still_fails() {
    let (code, lines, tasks) = run(&script(500, 1000, false), true);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(lines.len(), 2 + 1000);
    assert_eq!(lines.iter().filter(|l| l.get("error").is_some()).count(), 1);
    assert_eq!(tasks, 999);
}

#[test]
fn inside_begin_a_failure_commits_nothing() {
    let (code, lines, tasks) = run(&script(500, 1000, true), false);
    assert_eq!(code, ExitCode::FAILURE);
    let errors: Vec<&serde_json::Value> = lines.iter().filter_map(|l| l.get("error")).collect();
    assert_eq!(
        errors.len(),
        2,
        "the failure, then that the block was never committed"
    );
    assert_eq!(errors[0]["code"], "UNKNOWN_TYPE");
    assert!(
        errors[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("inside BEGIN")),
        "{errors:?}"
    );
    assert_eq!(tasks, 0, "all or nothing");
    let (code, _, tasks) = run(&script(0, 1000, true), false);
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(tasks, 1000);
}

#[test]
fn parameters_bind_values_and_stay_data() {
    let (_dir, db) = common::open();
    let session = db.local_session().expect("root");
    let text = "CREATE ORG acme NAME \"Acme\"; USE ORG acme; CREATE THING task $name {n: $n}; MATCH (t:task) RETURN t.name, t.properties.n;";
    let params = vec![
        "name=\"x\\\"; DELETE $a; --\"".to_string(),
        "n=41".to_string(),
    ];
    let mut out = Vec::new();
    let code = run_script(
        &session,
        text.as_bytes(),
        Format::Json,
        &params,
        false,
        &mut out,
    )
    .expect("run");
    assert_eq!(code, ExitCode::SUCCESS);
    let last: serde_json::Value = serde_json::from_str(
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .last()
            .expect("line"),
    )
    .expect("json");
    assert_eq!(
        last["rows"],
        serde_json::json!([["x\"; DELETE $a; --", 41]])
    );
}

#[test]
fn the_design_example_runs_top_to_bottom_as_one_script() {
    // The golden file is DESIGN.md's block with expectations as comments.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/queries/design_example.oql"
    ))
    .expect("design example");
    let (code, lines, tasks) = run(&text, false);
    assert_eq!(code, ExitCode::SUCCESS, "{lines:?}");
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{lines:?}");
    assert_eq!(tasks, 2);
    // SEARCH THINGS found the course, SEARCH KNOWLEDGE the chunk.
    let found = |column: &str, value: &str| {
        lines.iter().any(|l| {
            l["columns"]
                .as_array()
                .is_some_and(|c| c.iter().any(|x| x == column))
                && l["rows"].to_string().contains(value)
        })
    };
    assert!(found("score", "Rust for Everyone"));
    assert!(found("score", "Ownership moves values between bindings."));
}
