//! The backslash commands: the shell's own settings and shortcuts, never
//! sent to the backend as OQL.

use std::io::{BufReader, Write};
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::query::format::error_text;
use crate::repl::Backend;
use crate::repl::shell::{Flow, Piece, Shell};
use crate::repl::table::{Expanded, Format};

/// Every command with its one-line help (completion and `\help` read it).
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "help",
        "[STATEMENT]  this list, or a statement's syntax from docs/oql.md",
    ),
    ("q", "quit (also Ctrl-D on an empty line)"),
    ("timing", "[on|off]  print each statement's time"),
    ("format", "table|json|csv  how results are printed"),
    (
        "x",
        "[on|off|auto]  expanded rows: one line per column, values whole (auto: when too wide)",
    ),
    ("i", "FILE  run the statements of a script"),
    (
        "o",
        "[FILE]  send results to FILE (no FILE: back to the terminal)",
    ),
    (
        "types",
        "[PATTERN]  the vocabulary (* and ? match any text / one character)",
    ),
    ("orgs", "the organizations (SHOW ORGS)"),
    ("usage", "the org's counters and limits (SHOW USAGE)"),
    ("whoami", "who and where you are (WHOAMI)"),
    ("conninfo", "the data directory or server, person and org"),
];

/// The keys, for `\help`.
const KEYS: &str = "\
Keys: Enter runs the statement once it ends with ';' (else the next line
continues it); Up/Down walk the history, Ctrl-R searches it; Tab completes
keywords, types, org slugs after ORG, $variables and commands; Ctrl-C
cancels the line being typed or the running statement; Ctrl-D on an empty
line quits. Emacs keys edit the line (Ctrl-A/E, Alt-B/F, Ctrl-K/U/W/Y).
";

/// docs/oql.md, for `\help STATEMENT`.
const REFERENCE: &str = include_str!("../../docs/oql.md");

impl<B: Backend> Shell<'_, B> {
    /// Runs a backslash command (`line` starts with `\`).
    pub fn command(&mut self, line: &str, out: &mut dyn Write) -> Result<Flow> {
        let line = line.trim().trim_end_matches(';').trim_end();
        let (name, arg) = line
            .trim_start_matches('\\')
            .split_once(char::is_whitespace)
            .map_or((line.trim_start_matches('\\'), ""), |(n, a)| (n, a.trim()));
        let note = |out: &mut dyn Write, text: String| -> Result<Flow> {
            writeln!(out, "{text}")?;
            Ok(Flow::Go)
        };
        match name {
            "q" | "quit" | "exit" => Ok(Flow::Quit),
            "h" | "help" | "?" if arg.is_empty() => note(out, help()),
            "h" | "help" => note(out, statement_help(arg)),
            "timing" => {
                self.timing = switch(arg, self.timing)?;
                note(out, format!("timing is {}", on_off(self.timing)))
            }
            "x" => {
                self.style.expanded = match arg.to_ascii_lowercase().as_str() {
                    "auto" => Expanded::Auto,
                    _ if switch(arg, self.style.expanded == Expanded::On)? => Expanded::On,
                    _ => Expanded::Off,
                };
                let now = match self.style.expanded {
                    Expanded::On => "on",
                    Expanded::Off => "off",
                    Expanded::Auto => "auto (for tables wider than the terminal)",
                };
                note(out, format!("expanded rows are {now}"))
            }
            "format" => {
                self.style.format = Format::parse(arg).ok_or_else(|| {
                    Error::invalid(format!("\\format takes table, json or csv, not {arg:?}"))
                })?;
                note(
                    out,
                    format!("results print as {}", self.style.format.as_str()),
                )
            }
            "o" if arg.is_empty() => {
                self.output = None;
                note(out, "results go to the terminal".into())
            }
            "o" => {
                let path = PathBuf::from(arg);
                let file = std::fs::File::create(&path)
                    .map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
                self.output = Some((path, file));
                note(out, format!("results go to {arg}"))
            }
            "i" | "include" => {
                let file =
                    std::fs::File::open(arg).map_err(|e| Error::io(format!("{arg}: {e}")))?;
                self.run_to(BufReader::new(file), out)?;
                Ok(Flow::Go)
            }
            "types" => {
                let pattern = (!arg.is_empty()).then_some(arg);
                self.statement("SHOW TYPES", out, |row| {
                    let name = row.get(2).and_then(Json::as_str).unwrap_or_default();
                    pattern.is_none_or(|p| matches(p, name))
                })
            }
            "orgs" => self.statement("SHOW ORGS", out, |_| true),
            "usage" => self.statement("SHOW USAGE", out, |_| true),
            "whoami" => self.statement("WHOAMI", out, |_| true),
            "conninfo" => {
                let block = if self.backend.in_block() {
                    ", inside BEGIN"
                } else {
                    ""
                };
                let prompt = self.backend.prompt();
                let org = prompt.trim_end().trim_end_matches('>');
                note(
                    out,
                    format!("connected to {} ({org}){block}", self.backend.describe()),
                )
            }
            _ => Err(Error::invalid(format!(
                "unknown command \\{name}: \\help lists the commands"
            ))),
        }
    }

    /// A command that is a statement, its rows filtered by `keep`.
    fn statement(
        &mut self,
        text: &str,
        out: &mut dyn Write,
        keep: impl Fn(&[Json]) -> bool,
    ) -> Result<Flow> {
        match self.backend.execute(text) {
            Ok(mut outcome) => {
                outcome.rows.retain(|row| keep(row));
                outcome.stats.rows = outcome.rows.len();
                let shown = crate::repl::table::render(&outcome, &self.style);
                self.deliver(Piece::Result(shown), out)?;
            }
            Err(e) => self.deliver(Piece::Message(error_text(&e, None)), out)?,
        }
        Ok(Flow::Go)
    }
}

/// `on`, `off`, or nothing (which flips the setting).
fn switch(arg: &str, now: bool) -> Result<bool> {
    match arg.to_ascii_lowercase().as_str() {
        "" => Ok(!now),
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(Error::invalid(format!("on or off, not {other:?}"))),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// `\help`: the commands and the keys.
fn help() -> String {
    let mut text = String::from(
        "Type OQL statements ending with ';' (docs/oql.md), for example:\n  \
         CREATE ORG acme NAME \"Acme Inc\";  USE ORG acme;\n  \
         CREATE THING course \"Rust\" {price: 39};\n  \
         MATCH (c:course) RETURN c.name;\nCommands:\n",
    );
    for (name, what) in COMMANDS {
        text.push_str(&format!("  \\{name:<9} {what}\n"));
    }
    text.push_str(KEYS);
    text
}

/// `\help STATEMENT`: the section of docs/oql.md of that name (`MATCH`,
/// `SEARCH`), else the syntax lines that start with the statement's words
/// (with what they do).
fn statement_help(topic: &str) -> String {
    let topic = topic.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = topic.to_ascii_uppercase();
    if let Some(section) = section(&wanted) {
        return section;
    }
    let mut found = String::new();
    let mut heading = "";
    let mut in_code = false;
    for line in REFERENCE.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if let Some(h) = line.strip_prefix('#') {
            heading = h.trim_start_matches('#').trim();
            continue;
        }
        let spans: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
        for span in spans {
            if span.to_ascii_uppercase().starts_with(&wanted) && !found.contains(span) {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let what = cells
                    .iter()
                    .rev()
                    .find(|c| !c.is_empty())
                    .filter(|c| line.starts_with('|') && !c.contains(span))
                    .map(|c| format!("\n    {c}"))
                    .unwrap_or_default();
                found.push_str(&format!("  {}{what}\n", span.replace("\\|", "|")));
                found.push_str(&format!("    (docs/oql.md, {heading})\n"));
            }
        }
    }
    if !found.is_empty() {
        return found.trim_end().to_string();
    }
    let topics: Vec<&str> = REFERENCE
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    format!(
        "no help for {topic}; sections of docs/oql.md: {}",
        topics.join(", ")
    )
}

/// The section of docs/oql.md whose heading starts with the words of
/// `wanted`.
fn section(wanted: &str) -> Option<String> {
    let mut lines = REFERENCE.lines().skip_while(|l| {
        let heading = l.trim_start_matches('#').trim().to_ascii_uppercase();
        let whole_words = heading
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
        !(l.starts_with('#') && whole_words)
    });
    let first = lines.next()?;
    let level = first.len() - first.trim_start_matches('#').len();
    let mut text = vec![first];
    for l in lines {
        let depth = l.len() - l.trim_start_matches('#').len();
        if depth > 0 && depth <= level {
            break;
        }
        text.push(l);
    }
    Some(text.join("\n").trim_end().to_string())
}

/// A `\types` pattern: `*` any text, `?` one character; a pattern without
/// either matches names that contain it.
fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative glob match with one backtrack point (linear in practice).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_globs_or_substrings() {
        assert!(matches("cour*", "course"));
        assert!(matches("*son", "lesson"));
        assert!(matches("l?sson", "lesson"));
        assert!(!matches("cour*x", "course"));
        assert!(matches("ours", "course"));
        assert!(!matches("xyz", "course"));
    }

    #[test]
    fn statement_help_finds_syntax_and_sections() {
        let h = statement_help("create org");
        assert!(h.contains("CREATE ORG slug NAME"), "{h}");
        assert!(h.contains("Administration"), "{h}");
        let h = statement_help("MATCH");
        assert!(h.starts_with("## MATCH"), "{h}");
        let h = statement_help("FROBNICATE");
        assert!(h.contains("no help for FROBNICATE"), "{h}");
    }
}
