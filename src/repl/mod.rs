//! The shell: reads statements as they are typed, runs each when its `;`
//! arrives, prints a table or an error with a caret. On a terminal it is a
//! line editor with history and completion (`editor`); on piped input it
//! reads lines (`run`). Either way it is generic over what runs the
//! statements: a local session's runner, or a server (`onedb connect`).

pub mod commands;
pub mod complete;
pub mod editor;
pub mod progress;
pub mod shell;
pub mod table;

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::Result;
use crate::query::format;
use crate::query::outcome::Outcome;
use crate::query::run::Runner;
use crate::query::script::ends_at_boundary;
use crate::repl::shell::{Flow, Shell};

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
    /// The flag that, once set (Ctrl-C), stops the running statement with
    /// `CANCELLED`; the shell clears it before each statement.
    fn set_cancel(&mut self, flag: Arc<AtomicBool>);
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

    fn set_cancel(&mut self, flag: Arc<AtomicBool>) {
        Runner::set_cancel(self, Some(flag));
    }
}

/// Runs the shell on lines of `input` (piped input, tests) until `\q`
/// or the end: a statement runs once its `;` has arrived; backslash
/// commands work at the start of a statement. With `interactive`, it
/// prints the banner and prompts.
pub fn run(
    backend: &mut impl Backend,
    input: impl BufRead,
    out: &mut impl Write,
    interactive: bool,
) -> Result<()> {
    if interactive {
        writeln!(out, "{}", banner(backend))?;
    }
    let mut shell = Shell::new(backend);
    let mut buffer = String::new();
    let mut lines = input.lines();
    loop {
        if interactive {
            let prompt = prompt(&*shell.backend, &buffer);
            write!(out, "{prompt}")?;
            out.flush()?;
        }
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        if buffer.trim().is_empty() && is_command(&line) {
            match shell.command(&line, out) {
                Ok(Flow::Quit) => break,
                Ok(Flow::Go) => {}
                Err(e) => write!(out, "{}", format::error_text(&e, None))?,
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if ends_at_boundary(&buffer) {
            let text = std::mem::take(&mut buffer);
            shell.run_to(text.as_bytes(), out)?;
        }
    }
    if shell.backend.in_block() {
        writeln!(out, "{UNFINISHED_BLOCK}")?;
    }
    Ok(())
}

/// Said when the shell ends inside `BEGIN`.
const UNFINISHED_BLOCK: &str = "the session ended inside BEGIN: nothing in the block was committed";

/// The first line of an interactive shell.
fn banner(backend: &impl Backend) -> String {
    format!(
        "onedb {} — {}. \\help for help.",
        env!("CARGO_PKG_VERSION"),
        backend.describe()
    )
}

/// Whether a line (at the start of a statement) is a shell command; the
/// bare words psql and sqlite users type to leave or ask work too.
fn is_command(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('\\') || matches!(line, "exit" | "quit" | "help")
}

/// The prompt before a line: the backend's before a new statement; a
/// continuation's `...>` ends under the first one's `>`.
fn prompt(backend: &impl Backend, buffer: &str) -> String {
    let first = backend.prompt();
    if buffer.trim().is_empty() {
        return first;
    }
    let width = table::width(&first).saturating_sub(2).max(3);
    format!("{:>width$}> ", "...")
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
