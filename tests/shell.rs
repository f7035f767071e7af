//! The shell: driven through its input and output (piped input and the
//! backslash commands), through a real pseudo-terminal running the real
//! `onedb` binary (line editing, history, completion, Ctrl-C, Ctrl-D), and
//! its table formatter against golden files under `tests/shell/`
//! (`ONEDB_BLESS=1` rewrites them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/server.rs"]
mod harness;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use onedb::query::outcome::{Outcome, Stats};
use onedb::repl::table::{Expanded, Format, Style, render};
use rexpect::session::{PtySession, spawn_with_options};
use serde_json::json;

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
    assert!(
        out.contains("acme>  ...> "),
        "continuation ends under the `>`: {out}"
    );
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

#[test]
fn backslash_commands_change_the_output_and_run_files() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("seed.oql");
    std::fs::write(
        &script,
        "CREATE ORG acme NAME \"Acme\";\nUSE ORG acme;\nCREATE THING course \"Rust\" {price: 39};\n",
    )
    .unwrap();
    let results = dir.path().join("out.txt");
    let out = shell(&format!(
        "\\i {}\n\\format json\nMATCH (c:course) RETURN c.name;\n\\format csv\nMATCH (c:course) RETURN c.name, c.price;\n\\format table\n\\x\nMATCH (c:course) RETURN c.name;\n\\x off\n\\timing on\nWHOAMI;\n\\timing off\n\\o {}\nSHOW ORGS;\n\\o\n\\types cour*\n\\orgs\n\\usage\n\\whoami\n\\conninfo\n\\help CREATE THING\n\\frobnicate\n\\format yaml\n",
        script.display(),
        results.display()
    ));
    assert!(out.contains("acme> "), "\\i ran the script: {out}");
    assert!(
        out.contains(r#"{"columns":["c.name"],"rows":[["Rust"]]"#),
        "{out}"
    );
    assert!(out.contains("c.name,c.price\r\nRust,39\r\n"), "{out}");
    assert!(
        out.contains("-[ row 1 ]") && out.contains("c.name | Rust"),
        "{out}"
    );
    assert!(out.contains("time: "), "{out}");
    // \o: SHOW ORGS went to the file, not the terminal.
    let file = std::fs::read_to_string(&results).unwrap();
    assert!(file.contains("| acme "), "{file}");
    assert!(out.contains("results go to the terminal"), "{out}");
    assert!(out.contains("| course "), "\\types: {out}");
    assert!(!out.contains("| lesson "), "\\types filters: {out}");
    assert!(out.contains("root"), "\\whoami: {out}");
    assert!(
        out.contains("connected to ") && out.contains(" as root (acme)"),
        "{out}"
    );
    assert!(out.contains("CREATE THING type \"name\""), "\\help: {out}");
    assert!(out.contains("unknown command \\frobnicate"), "{out}");
    assert!(out.contains("\\format takes table, json or csv"), "{out}");
    // The orgs table once: from \\orgs; SHOW ORGS went to the file.
    assert_eq!(out.matches("| slug ").count(), 1, "{out}");
}

// ---- The table formatter, against golden files ----

fn outcome(columns: &[&str], rows: Vec<Vec<serde_json::Value>>) -> Outcome {
    Outcome {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        stats: Stats {
            rows: rows.len(),
            micros: 42,
        },
        rows,
        ..Default::default()
    }
}

/// A table on an 80-column terminal.
const TERMINAL: Style = Style {
    format: Format::Table,
    expanded: Expanded::Off,
    width: Some(80),
};

const EXPANDED: Style = Style {
    format: Format::Table,
    expanded: Expanded::On,
    width: Some(80),
};

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/shell")
        .join(format!("{name}.txt"));
    if std::env::var("ONEDB_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: ONEDB_BLESS=1", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

fn wide() -> Outcome {
    outcome(
        &["c.name", "c.description", "c.price"],
        vec![
            vec![
                json!("Rust for people who already program in another language"),
                json!(
                    "A long description that goes on and on well past any reasonable column width, and then some more"
                ),
                json!(39),
            ],
            vec![json!("Go"), json!("short"), json!(null)],
        ],
    )
}

fn nested() -> Outcome {
    outcome(
        &["c.name", "c.properties"],
        vec![
            vec![
                json!("Rust"),
                json!({"price": 39, "tags": ["systems", "beginner"], "meta": {"level": 2}}),
            ],
            vec![
                json!("Go"),
                json!({"note": "line one\nline two", "odd key": true}),
            ],
        ],
    )
}

fn unicode() -> Outcome {
    outcome(
        &["city", "name", "emoji"],
        vec![
            vec![json!("東京"), json!("Tōkyō"), json!("🦀🦀")],
            vec![json!("München"), json!("Munich"), json!("🍺")],
            vec![
                json!("北京市朝阳区建国门外大街一号国贸大厦写字楼三十层"),
                json!("Beijing"),
                json!("👩‍💻"),
            ],
        ],
    )
}

#[test]
fn wide_tables_cut_long_cells_with_an_ellipsis() {
    golden("wide", &render(&wide(), &TERMINAL));
}

#[test]
fn nested_maps_read_as_literals() {
    golden("nested", &render(&nested(), &TERMINAL));
}

#[test]
fn unicode_cells_align_by_display_width() {
    // On a 50-column terminal the widest column is cut inside its CJK text.
    let narrow = Style {
        width: Some(50),
        ..TERMINAL
    };
    golden("unicode", &render(&unicode(), &narrow));
}

#[test]
fn empty_results_and_statements_without_columns() {
    let empty = outcome(&["c.name", "c.price"], vec![]);
    let done = outcome(&[], vec![]);
    golden(
        "empty",
        &format!("{}{}", render(&empty, &TERMINAL), render(&done, &TERMINAL)),
    );
}

#[test]
fn expanded_auto_only_for_tables_wider_than_the_terminal() {
    let auto = Style {
        expanded: Expanded::Auto,
        ..TERMINAL
    };
    assert_eq!(render(&wide(), &auto), render(&wide(), &EXPANDED));
    assert_eq!(render(&nested(), &auto), render(&nested(), &TERMINAL));
}

#[test]
fn expanded_rows_show_every_value_whole() {
    golden(
        "expanded",
        &format!(
            "{}{}",
            render(&wide(), &EXPANDED),
            render(&nested(), &EXPANDED)
        ),
    );
}

// ---- Through a pseudo-terminal ----

/// `onedb` on a pseudo-terminal, on `data`, with its history in `history`.
/// Types `typed`, presses Tab, and expects `completed` on the screen.
fn complete(p: &mut PtySession, typed: &str, completed: &str) {
    p.send(typed).unwrap();
    p.flush().unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string(completed).unwrap();
}

fn pty(data: &Path, history: &Path, args: &[&str]) -> PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onedb"));
    command.arg("--data").arg(data).args(args);
    on_pty(command, history)
}

/// `command` on a pseudo-terminal, as a person at a terminal would run it.
fn on_pty(mut command: Command, history: &Path) -> PtySession {
    command
        .env("ONEDB_HISTORY", history)
        .env("TERM", "xterm")
        .env("PAGER", "sed 's/^/paged: /'")
        .env_remove("NO_COLOR");
    let options = rexpect::reader::Options::new()
        .timeout_ms(Some(30_000))
        .strip_ansi_escape_codes(true);
    spawn_with_options(command, options).expect("spawn onedb on a pty")
}

/// Runs `script` with `onedb run` (no terminal) on `data`.
fn seed(data: &Path, script: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .arg("--data")
        .arg(data)
        .args(["run", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn pty_lines_continue_history_survives_a_restart_and_keeps_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let (data, history) = (dir.path().join("data"), dir.path().join("history"));
    let mut p = pty(&data, &history, &[]);
    p.exp_string("onedb> ").unwrap();
    p.send_line("CREATE ORG acme NAME \"Acme\";").unwrap();
    p.exp_string("onedb> ").unwrap();
    p.send_line("USE ORG acme;").unwrap();
    p.exp_string("acme> ").unwrap();
    // A statement across two lines, the second under a continuation prompt.
    p.send_line("CREATE THING course").unwrap();
    p.exp_string(" ...> ").unwrap();
    p.send_line("  \"Rust\" {price: 39};").unwrap();
    p.exp_string("1 row").unwrap();
    p.send_line("SHOW ORGS;").unwrap();
    p.exp_string("| acme ").unwrap();
    p.exp_string("1 row").unwrap();
    p.send_line(
        "CREATE PERSON \"ann@acme.io\" NAME \"Ann\" ROLE org_user PASSWORD \"hunter2-secret-pw\";",
    )
    .unwrap();
    p.exp_string("| per_").unwrap();
    p.exp_string("1 row").unwrap();
    p.exp_string("acme> ").unwrap();
    // Ctrl-D on an empty line ends the shell.
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("SHOW ORGS;"), "{saved}");
    assert!(saved.contains("CREATE THING course"), "{saved}");
    assert!(
        !saved.contains("hunter2"),
        "a password in the history: {saved}"
    );
    assert!(!saved.contains("PASSWORD"), "{saved}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&history).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only its owner reads the history");

    // A new shell: Up recalls the last statement of the previous one.
    let mut p = pty(&data, &history, &[]);
    p.exp_string("onedb> ").unwrap();
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.exp_string("SHOW ORGS;").unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("| acme ").unwrap();
    p.exp_string("1 row").unwrap();
    // Ctrl-R searches the history; Ctrl-C drops what it found.
    p.send_control('r').unwrap();
    p.exp_string("reverse-i-search").unwrap();
    p.send("THING").unwrap();
    p.flush().unwrap();
    p.exp_string("CREATE THING course").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("onedb> ").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn pty_tab_completes_types_and_org_slugs_and_errors_show_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let (data, history) = (dir.path().join("data"), dir.path().join("history"));
    seed(&data, "CREATE ORG globex NAME \"Globex\";");
    let mut p = pty(&data, &history, &[]);
    p.exp_string("onedb> ").unwrap();
    complete(&mut p, "USE ORG glo", "globex");
    p.send_line(";").unwrap();
    p.exp_string("globex> ").unwrap();
    complete(&mut p, "MATCH (c:cours", "course");
    p.send_line(") RETURN count(c);").unwrap();
    p.exp_string("1 row").unwrap();
    // A type the platform owner adds, and a variable, complete at once.
    p.send_line("CREATE TYPE THING workshop;").unwrap();
    p.exp_string("ok (").unwrap();
    p.send_line("LET $budget = 39;").unwrap();
    p.exp_string("ok (").unwrap();
    complete(&mut p, "MATCH (w:worksh", "workshop");
    complete(&mut p, ") WHERE w.properties.price < $bud", "$budget");
    p.send_line(" RETURN count(w);").unwrap();
    p.exp_string("1 row").unwrap();
    // A parse error: the caret under the place.
    p.send_line("MATCH (c:course RETURN c;").unwrap();
    p.exp_regex("error PARSE_ERROR at line 1, column [0-9]+")
        .unwrap();
    p.exp_regex(r"\n\s+\^").unwrap();
    p.exp_string("globex> ").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn pty_ctrl_c_cancels_a_running_statement_and_ctrl_d_warns_inside_begin() {
    let dir = tempfile::tempdir().unwrap();
    let (data, history) = (dir.path().join("data"), dir.path().join("history"));
    let mut script = String::from("CREATE ORG acme NAME \"Acme\";\nUSE ORG acme;\nBEGIN;\n");
    for i in 0..300 {
        script.push_str(&format!("CREATE THING task \"t{i}\" {{}};\n"));
    }
    script.push_str("COMMIT;\n");
    seed(&data, &script);
    let mut p = pty(&data, &history, &[]);
    p.exp_string("onedb> ").unwrap();
    p.send_line("USE ORG acme;").unwrap();
    p.exp_string("acme> ").unwrap();
    // Ctrl-C on a line being typed drops it.
    p.send("MATCH (broken").unwrap();
    p.flush().unwrap();
    p.exp_string("MATCH (broken").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("acme> ").unwrap();
    // 27 million combinations: far longer than the moment before Ctrl-C.
    p.send_line("MATCH (a:task), (b:task), (c:task) RETURN count(*);")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("error CANCELLED").unwrap();
    p.exp_string("acme> ").unwrap();
    p.send_line("SHOW ORGS;").unwrap();
    p.exp_string("| acme ").unwrap();
    p.send_line("BEGIN;").unwrap();
    p.exp_string("ok (").unwrap();
    p.exp_string("acme> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("warning: the session ended inside BEGIN")
        .unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn progress_shows_on_a_terminal_and_never_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let (data, history) = (dir.path().join("data"), dir.path().join("history"));
    let script = dir.path().join("s.oql");
    std::fs::write(&script, "SHOW ORGS;\nWHOAMI;\nSHOW TYPES;\n").unwrap();
    let mut p = pty(
        &data,
        &history,
        &["run", "--progress", script.to_str().unwrap()],
    );
    p.exp_string("3 statements").unwrap();
    p.exp_eof().unwrap();
    // Dump and load draw the same bar.
    let dump = dir.path().join("dump.jsonl");
    let mut p = pty(&data, &history, &["dump", "--out", dump.to_str().unwrap()]);
    p.exp_string("records dumped").unwrap();
    p.exp_eof().unwrap();
    let copy = dir.path().join("copy");
    let mut p = pty(&copy, &history, &["load", dump.to_str().unwrap()]);
    p.exp_string("records loaded").unwrap();
    p.exp_eof().unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .arg("--data")
        .arg(&data)
        .args(["run", "--progress", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_onedb"))
        .arg("--data")
        .arg(&data)
        .args(["dump", "--out", dump.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("records dumped"), "{stderr}");
}

#[test]
fn pty_over_tcp_completes_slugs_and_ctrl_c_cancels_on_the_server() {
    let server = harness::Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.oql");
    let mut script = String::from("BEGIN;\n");
    for i in 0..300 {
        script.push_str(&format!("CREATE THING task \"t{i}\" {{}};\n"));
    }
    script.push_str("COMMIT;\nMATCH (t:task) RETURN count(t);\n");
    std::fs::write(&seed, script).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_onedb"));
    command
        .args(["connect", &server.addr.to_string(), "--email", "root"])
        .env("ONEDB_PASSWORD", harness::ROOT_PASSWORD);
    let mut p = on_pty(command, &dir.path().join("history"));
    let prompt = format!("root@{}> ", server.addr);
    p.exp_string(&prompt).unwrap();
    // The slugs come from the server.
    complete(&mut p, "USE ORG glo", "globex");
    p.send_line(";").unwrap();
    p.exp_string(&format!("root@{}/globex> ", server.addr))
        .unwrap();
    p.send_line(&format!("\\i {}", seed.display())).unwrap();
    p.exp_string("| 300 ").unwrap();
    p.exp_string("1 row").unwrap();
    p.send_line("MATCH (a:task), (b:task), (c:task) RETURN count(*);")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("error CANCELLED").unwrap();
    // The connection and the shell go on.
    p.send_line("SHOW ORGS;").unwrap();
    p.exp_string("| acme ").unwrap();
    p.exp_string("2 rows").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn pty_results_taller_than_the_terminal_go_through_the_pager() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("stty rows 12 cols 100 && exec \"$0\" --data \"$1\"")
        .arg(env!("CARGO_BIN_EXE_onedb"))
        .arg(dir.path().join("data"));
    let mut p = on_pty(command, &dir.path().join("history"));
    p.exp_string("onedb> ").unwrap();
    p.send_line("WHOAMI;").unwrap();
    p.exp_string("1 row").unwrap();
    p.send_line("SHOW TYPES;").unwrap();
    p.exp_string("paged: | thing ").unwrap();
    p.exp_string("paged: ").unwrap();
    p.exp_regex("paged: [0-9]+ rows").unwrap();
    p.send_line("\\q").unwrap();
    p.exp_eof().unwrap();
}
