//! Golden query tests: every `tests/queries/**/*.oql` runs top to bottom on a
//! new database. After each statement, the `-- ` comment lines that follow
//! hold its expected result:
//!
//! ```text
//! MATCH (c:course) RETURN c.name;
//! -- c.name
//! -- "Rust"
//! CREATE THING cours "x";
//! -- error UNKNOWN_TYPE
//! ```
//!
//! A result prints as its columns, then one line per row (JSON values joined
//! by ` | `); a statement without columns prints `ok`. An error prints as
//! `error CODE`, or as `error CODE: message` where the expectation spells the
//! message out (then the message is compared too). Ids print as their
//! prefix (`<thg>`), times after 2001 as `<time>`. A statement must end its
//! line with `;`. `ONEDB_BLESS=1 cargo test --release --test golden` rewrites
//! the expectations after an intended change.
//!
//! A line `--! as EMAIL` runs the statements after it as that person (as
//! `onedb --as EMAIL` would), `--! as root` as the platform owner again; each
//! switch starts a new session (outside any org, without `LET` variables).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use onedb::query::plan::Optimize;
use onedb::query::run::Runner;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "oql") {
            out.push(path);
        }
    }
}

/// Replaces ids and wall-clock times, which differ between runs.
fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let id = ["org_", "per_", "thg_", "con_", "evt_", "kno_"]
            .iter()
            .find(|p| {
                rest.starts_with(*p)
                    && rest.len() >= 30
                    && rest.as_bytes()[4..30]
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric())
            });
        if let Some(prefix) = id {
            out.push_str(&format!("<{}>", &prefix[..3]));
            i += 30;
            continue;
        }
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let starts_number = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if digits == 13 && starts_number && rest[..13] > *"1000000000000" {
            out.push_str("<time>");
            i += 13;
            continue;
        }
        if let Some(after) = rest.strip_prefix("time=") {
            let n = after.bytes().take_while(|b| b.is_ascii_digit()).count();
            if n > 0 && after[n..].starts_with("µs") {
                out.push_str("time=<µs>");
                i += 5 + n + "µs".len();
                continue;
            }
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn render(result: &onedb::Result<onedb::query::run::Outcome>, message: bool) -> Vec<String> {
    match result {
        Err(e) if message => vec![mask(&format!("error {}: {}", e.code, e.message))],
        Err(e) => vec![format!("error {}", e.code)],
        Ok(o) if o.columns.is_empty() => vec!["ok".to_string()],
        Ok(o) => {
            let mut lines = vec![o.columns.join(" | ")];
            for row in &o.rows {
                lines.push(
                    row.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" | "),
                );
            }
            lines.into_iter().map(|l| mask(&l)).collect()
        }
    }
}

/// Runs one file with the planner's optional passes on or off; returns
/// (the file as it should read, mismatch messages). Without them, plans
/// differ (EXPLAIN and PROFILE are not compared) but every result must not.
fn run_file(path: &Path, optimize: Optimize) -> (String, Vec<String>) {
    let text = fs::read_to_string(path).expect("read golden file");
    let (_dir, db) = common::open();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut mismatches = Vec::new();
    let mut i = 0;
    let mut who = "root".to_string();
    while i < lines.len() {
        let session = if who == "root" {
            db.local_session()
        } else {
            db.session_as(&who)
        }
        .unwrap_or_else(|e| panic!("{}: --! as {who}: {e}", path.display()));
        let mut runner = Runner::new(&session);
        runner.set_optimize(optimize);
        while i < lines.len() {
            let line = lines[i];
            if let Some(email) = line.trim().strip_prefix("--! as ") {
                out.push(line.to_string());
                who = email.trim().to_string();
                i += 1;
                break;
            }
            if line.trim().is_empty() || line.trim_start().starts_with("--") {
                out.push(line.to_string());
                i += 1;
                continue;
            }
            // A statement: up to the line that ends with `;`.
            let start = i;
            while i < lines.len() && !lines[i].trim_end().ends_with(';') {
                i += 1;
            }
            let end = i.min(lines.len() - 1);
            let statement = lines[start..=end].join("\n");
            out.extend(lines[start..=end].iter().map(|l| l.to_string()));
            i = end + 1;
            let mut expected = Vec::new();
            while i < lines.len() && lines[i].starts_with("-- ") {
                expected.push(lines[i][3..].to_string());
                i += 1;
            }
            let message = expected
                .first()
                .is_some_and(|l| l.starts_with("error ") && l.contains(": "));
            let actual = render(&runner.execute(&statement), message);
            let shows_plan = statement
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("EXPLAIN")
                || statement
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("PROFILE");
            if actual != expected && (optimize == Optimize::ALL || !shows_plan) {
                mismatches.push(format!(
                    "{}:{}: {statement}\n  expected: {expected:?}\n  actual:   {actual:?}",
                    path.display(),
                    start + 1
                ));
            }
            out.extend(actual.into_iter().map(|l| format!("-- {l}")));
        }
    }
    (out.join("\n") + "\n", mismatches)
}

/// Every `tests/queries/**/*.oql`.
fn golden_files() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/queries");
    files(&root, &mut paths);
    paths
}

#[test]
fn golden_queries() {
    let paths = golden_files();
    assert!(!paths.is_empty(), "no golden files found");
    let bless = std::env::var("ONEDB_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    for path in &paths {
        let (rewritten, mismatches) = run_file(path, Optimize::ALL);
        if bless {
            fs::write(path, rewritten).expect("bless");
        } else {
            failures.extend(mismatches);
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The differential test: every golden query without the optimizing
/// passes gives the results the file expects of the optimized plans.
#[test]
fn golden_queries_give_the_same_results_unoptimized() {
    let paths = golden_files();
    let mut failures = Vec::new();
    let mut compared = 0;
    for path in &paths {
        let (_, mismatches) = run_file(path, Optimize::NONE);
        failures.extend(mismatches);
        compared += 1;
    }
    assert!(compared >= 5, "only {compared} golden files");
    assert!(
        failures.is_empty(),
        "{} results differ without the optimizer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The switch is real: without the optimizing passes a plan that used the
/// status index and bound a far end by id does neither.
#[test]
fn the_unoptimized_planner_plans_differently() {
    let (_dir, db) = common::open();
    let session = db.local_session().expect("root");
    let mut runner = Runner::new(&session);
    for statement in ["CREATE ORG acme NAME \"Acme\";", "USE ORG acme;"] {
        runner.execute(statement).expect("setup");
    }
    let explain =
        "EXPLAIN MATCH (a:course)-[:part_of]->(b) WHERE a.status = \"draft\" RETURN b.id;";
    let plan = |runner: &mut Runner<'_>| -> String {
        let out = runner.execute(explain).expect("explain");
        out.rows
            .iter()
            .map(|r| r[0].to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let optimized = plan(&mut runner);
    runner.set_optimize(Optimize::NONE);
    let plain = plan(&mut runner);
    assert_ne!(optimized, plain);
    assert!(optimized.contains("status"), "{optimized}");
}

#[test]
fn masking_hides_ids_and_times_only() {
    assert_eq!(
        mask("\"thg_01JD5ZK7Q9E8W3X2V1T0S9R8P7\" 1764000000000 42"),
        "\"<thg>\" <time> 42"
    );
    assert_eq!(mask("thg_short 12"), "thg_short 12");
}
