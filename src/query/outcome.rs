//! What one statement produced: columns, rows, statistics, and the value
//! `LET` binds.

use serde::Serialize;
use serde_json::{Value as Json, json};

/// What one statement produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Json>>,
    pub stats: Stats,
    /// The statement's value for `LET`: the id it created, or its single value.
    #[serde(skip)]
    pub value: Option<Json>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub rows: usize,
    pub micros: u64,
}

impl Outcome {
    pub(crate) fn table(columns: &[&str], rows: Vec<Vec<Json>>) -> Outcome {
        Outcome {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Default::default()
        }
    }

    /// A statement that made or changed one entity: its id.
    pub(crate) fn id(id: impl ToString) -> Outcome {
        let id = json!(id.to_string());
        Outcome {
            columns: vec!["id".into()],
            rows: vec![vec![id.clone()]],
            value: Some(id),
            ..Default::default()
        }
    }

    pub(crate) fn done() -> Outcome {
        Outcome::default()
    }
}
