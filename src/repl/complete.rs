//! Tab completion: what the word under the cursor may become, from what
//! the session knows — the grammar's keywords, the live vocabulary, the
//! org slugs, the `$variables` set so far and the backslash commands.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::error::Result;
use crate::repl::Backend;
use crate::repl::commands::COMMANDS;

/// The words completion offers, refreshed from the backend as they change.
#[derive(Debug, Clone, Default)]
pub struct Words {
    /// Thing, connection and event types (with the platform owner's).
    pub types: BTreeSet<String>,
    /// Org slugs the person can see.
    pub orgs: BTreeSet<String>,
    /// `$variables` of the session, without the `$`.
    pub vars: BTreeSet<String>,
}

impl Words {
    /// The vocabulary and the orgs as the backend sees them now (`SHOW
    /// TYPES`, `SHOW ORGS`: the same statements locally and over TCP). A
    /// list the person may not read stays empty.
    pub fn refresh(&mut self, backend: &mut impl Backend) {
        self.types = column(backend.execute("SHOW TYPES"), "name");
        self.orgs = column(backend.execute("SHOW ORGS"), "slug");
        self.vars.insert("me".into());
    }

    /// Remembers the variable a `LET $name = …` statement set.
    pub fn learn(&mut self, statement: &str) {
        let mut words = statement.split_whitespace();
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("LET"))
            && let Some(var) = words.next().and_then(|w| w.strip_prefix('$'))
        {
            let name: String = var
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                self.vars.insert(name);
            }
        }
    }

    /// Where the word under the cursor starts in `line` and what it may
    /// become.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = line.get(..pos).unwrap_or(line);
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || matches!(c, '_' | '$' | '\\'))
            .last()
            .map_or(pos, |(i, _)| i);
        let word = &before[start..];
        let previous: Vec<String> = before[..start]
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        let candidates: Vec<String> = if let Some(command) = word.strip_prefix('\\') {
            if !before[..start].trim().is_empty() {
                return (start, Vec::new());
            }
            COMMANDS
                .iter()
                .filter(|(name, _)| name.starts_with(command))
                .map(|(name, _)| format!("\\{name}"))
                .collect()
        } else if let Some(var) = word.strip_prefix('$') {
            self.vars
                .iter()
                .filter(|v| v.starts_with(var))
                .map(|v| format!("${v}"))
                .collect()
        } else if previous.last().is_some_and(|w| w == "ORG") {
            // USE ORG, IN ORG, ON ORG, ALTER ORG.
            starting_with(&self.orgs, word)
        } else if before[..start].ends_with(':') {
            // A label or a relationship type in a pattern.
            starting_with(&self.types, word)
        } else if word.is_empty() {
            Vec::new()
        } else {
            let mut all = keywords_starting_with(word);
            all.extend(starting_with(&self.types, word));
            all
        };
        (start, candidates)
    }
}

fn starting_with(words: &BTreeSet<String>, prefix: &str) -> Vec<String> {
    words
        .iter()
        .filter(|w| w.starts_with(prefix))
        .cloned()
        .collect()
}

/// Keywords that start with `prefix` (any case), in the case it was typed.
fn keywords_starting_with(prefix: &str) -> Vec<String> {
    let upper = prefix.to_ascii_uppercase();
    let lower = prefix.chars().all(|c| !c.is_ascii_uppercase());
    keywords()
        .iter()
        .filter(|k| k.starts_with(&upper))
        .map(|k| {
            if lower {
                k.to_ascii_lowercase()
            } else {
                k.clone()
            }
        })
        .collect()
}

/// Every keyword of the grammar (its quoted upper-case words), so the
/// list cannot drift from the language.
fn keywords() -> &'static BTreeSet<String> {
    static KEYWORDS: OnceLock<BTreeSet<String>> = OnceLock::new();
    KEYWORDS.get_or_init(|| {
        include_str!("../../grammar/oql.ebnf")
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(str::to_string)
            .collect()
    })
}

/// The values of one column of a result (empty on an error).
fn column(outcome: Result<crate::query::outcome::Outcome>, name: &str) -> BTreeSet<String> {
    let Ok(outcome) = outcome else {
        return BTreeSet::new();
    };
    let Some(i) = outcome.columns.iter().position(|c| c == name) else {
        return BTreeSet::new();
    };
    outcome
        .rows
        .iter()
        .filter_map(|row| row.get(i).and_then(Json::as_str).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words {
            types: ["course", "lesson", "part_of"].map(String::from).into(),
            orgs: ["acme", "globex"].map(String::from).into(),
            vars: ["me", "price"].map(String::from).into(),
        }
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        words().complete(line, line.len())
    }

    #[test]
    fn completes_types_keywords_slugs_variables_and_commands() {
        assert_eq!(complete("MATCH (c:cours"), (9, vec!["course".to_string()]));
        assert_eq!(complete("CREATE THING cours").1, vec!["course".to_string()]);
        assert!(complete("MAT").1.contains(&"MATCH".to_string()));
        assert!(complete("mat").1.contains(&"match".to_string()));
        assert_eq!(complete("USE ORG gl"), (8, vec!["globex".to_string()]));
        assert_eq!(complete("use org ").1, vec!["acme", "globex"]);
        assert_eq!(complete("RETURN $pr").1, vec!["$price".to_string()]);
        assert_eq!(complete("\\tim").1, vec!["\\timing".to_string()]);
        assert!(complete("SHOW ORGS \\q").1.is_empty());
        assert!(complete("").1.is_empty());
    }

    #[test]
    fn let_statements_add_variables() {
        let mut w = Words::default();
        w.learn("LET $course_id = CREATE THING course \"x\"");
        w.learn("let   $n=1");
        w.learn("MATCH (c) RETURN $x");
        assert_eq!(w.vars, ["course_id", "n"].map(String::from).into());
    }

    #[test]
    fn keywords_come_from_the_grammar() {
        for k in ["MATCH", "CREATE", "THING", "USE", "ORG", "RETURN", "SEARCH"] {
            assert!(keywords().contains(k), "{k}");
        }
    }
}
