//! Golden in/out tests of the planner's passes: each MATCH of
//! `tests/planner/*.oql` is followed by what every pass hands the next
//! (`onedb::query::plan::passes`), so a change to one pass shows as a
//! change of its own output. `ONEDB_BLESS=1` rewrites the expectations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use onedb::ontology::Vocabulary;
use onedb::query::ast::StatementKind;
use onedb::query::parser::parse_statement;
use onedb::query::plan::passes;

/// The expected lines of one statement: `== pass` then its output.
fn render(statement: &str, vocabulary: &Vocabulary) -> Vec<String> {
    let parsed = match parse_statement(statement) {
        Ok(s) => s,
        Err(e) => return vec![format!("error {}", e.code)],
    };
    let StatementKind::Match(query) = &parsed.kind else {
        return vec!["error not a MATCH".into()];
    };
    match passes(query, vocabulary) {
        Err(e) => vec![format!("error {}", e.code)],
        Ok(all) => all
            .into_iter()
            .flat_map(|(name, out)| {
                std::iter::once(format!("== {name}"))
                    .chain(out.lines().map(str::to_string).collect::<Vec<_>>())
            })
            .collect(),
    }
}

/// (the file as it should read, mismatches).
fn run_file(path: &Path, vocabulary: &Vocabulary) -> (String, Vec<String>) {
    let text = fs::read_to_string(path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let (mut out, mut mismatches) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty() || line.starts_with("--") {
            out.push(line.to_string());
            continue;
        }
        out.push(line.to_string());
        let mut expected = Vec::new();
        while i < lines.len() && lines[i].starts_with("-- ") {
            expected.push(lines[i][3..].to_string());
            i += 1;
        }
        let actual = render(line, vocabulary);
        if actual != expected {
            mismatches.push(format!(
                "{}: {line}\n  expected:\n    {}\n  actual:\n    {}",
                path.display(),
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
        out.extend(actual.into_iter().map(|l| format!("-- {l}")));
    }
    (out.join("\n") + "\n", mismatches)
}

#[test]
fn every_pass_hands_on_what_its_golden_file_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/planner");
    let vocabulary = Vocabulary::builtin();
    let bless = std::env::var("ONEDB_BLESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut files = 0;
    for entry in fs::read_dir(&dir).expect("tests/planner") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "oql") {
            continue;
        }
        files += 1;
        let (rewritten, mismatches) = run_file(&path, &vocabulary);
        if bless {
            fs::write(&path, rewritten).expect("bless");
        } else {
            failures.extend(mismatches);
        }
    }
    assert!(files > 0, "no planner golden files");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
