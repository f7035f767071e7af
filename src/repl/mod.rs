//! The shell: reads statements as they are typed, runs each when its `;`
//! arrives, prints a table or an error with a caret. Generic over its input
//! and output so tests can drive it, and over what runs the statements: a
//! local session's runner, or a server (`onedb connect`).

use std::io::{BufRead, Write};

use crate::error::Result;
use crate::query::format;
use crate::query::outcome::Outcome;
use crate::query::run::Runner;
use crate::query::script::{ScriptReader, ends_at_boundary};

/// What the shell runs statements on.
pub trait Backend {
    /// Runs one statement (its text without the `;`).
    fn execute(&mut self, statement: &str) -> Result<Outcome>;
    /// The prompt before a new statement, e.g. `acme> `.
    fn prompt(&self) -> String;
    /// The banner's "where and who", e.g. `./onedb-data as root`.
    fn describe(&self) -> String;
    /// Whether a `BEGIN` block is open.
    fn in_block(&self) -> bool;
}

impl Backend for Runner<'_> {
    fn execute(&mut self, statement: &str) -> Result<Outcome> {
        Runner::execute(self, statement)
    }

    fn prompt(&self) -> String {
        format!("{}> ", self.org_slug().unwrap_or("onedb"))
    }

    fn describe(&self) -> String {
        let session = self.session();
        format!(
            "{} as {}",
            session.data_dir().display(),
            session.actor().email
        )
    }

    fn in_block(&self) -> bool {
        Runner::in_block(self)
    }
}

/// Shell commands that are not OQL (they start with a backslash).
const HELP: &str = "\
Type OQL statements ending with ';' (see docs/oql.md), for example:
  CREATE ORG acme NAME \"Acme Inc\";  USE ORG acme;
  CREATE THING course \"Rust\" {price: 39};
  MATCH (c:course) RETURN c.name;
Shell commands: \\help, \\quit (or end of input).
";

/// Runs the shell until `\quit` or the end of `input`.
pub fn run(
    runner: &mut impl Backend,
    input: impl BufRead,
    out: &mut impl Write,
    interactive: bool,
) -> Result<()> {
    let mut buffer = String::new();
    if interactive {
        writeln!(
            out,
            "onedb {} — {}. \\help for help.",
            env!("CARGO_PKG_VERSION"),
            runner.describe()
        )?;
    }
    let mut lines = input.lines();
    loop {
        if interactive {
            let prompt = if buffer.trim().is_empty() {
                runner.prompt()
            } else {
                "   ...> ".to_string()
            };
            write!(out, "{prompt}")?;
            out.flush()?;
        }
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        if buffer.trim().is_empty() {
            match line.trim() {
                "\\q" | "\\quit" | "exit" | "quit" => break,
                "\\h" | "\\help" | "help" => {
                    write!(out, "{HELP}")?;
                    continue;
                }
                _ => {}
            }
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !ends_at_boundary(&buffer) {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        for statement in ScriptReader::new(text.as_bytes()) {
            let shown = match statement {
                Ok(s) => match runner.execute(&s.text) {
                    Ok(outcome) => format::table(&outcome),
                    Err(e) => {
                        let snippet = e.position.map(|p| p.snippet(&s.text));
                        format::error_text(&e, snippet.as_deref())
                    }
                },
                Err(e) => format::error_text(&e, None),
            };
            write!(out, "{shown}")?;
        }
        out.flush()?;
    }
    if runner.in_block() {
        writeln!(
            out,
            "the session ended inside BEGIN: nothing in the block was committed"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_complete_at_a_semicolon_outside_strings_and_comments() {
        let complete = ends_at_boundary;
        assert!(complete("SHOW ORGS;"));
        assert!(complete("MATCH (a)\nRETURN a;  \n"));
        assert!(!complete("CREATE THING course \"a;"));
        assert!(complete("CREATE THING course \"a;\";"));
        assert!(!complete("SHOW ORGS -- ;"));
        assert!(!complete("MATCH (a)"));
        assert!(complete("SHOW ORGS; -- done"));
        assert!(complete("SHOW ORGS; SHOW ME;\n"));
        assert!(!complete("SHOW ORGS; SHOW"));
        assert!(!complete("  \n"));
    }
}
