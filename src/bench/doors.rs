//! Two of the three doors a workload goes through in process: the Rust API
//! (`--via api`: calls on a `ReadTxn` / `WriteTxn`) and OQL text (`--via
//! oql`: a `Runner` with `$parameters`). The third, TCP, is `tcp.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::bench::workloads::{Answer, Query};
use crate::db::Session;
use crate::error::{ErrorCode, Result};
use crate::graph::{EventFilter, NewConnection, NewThing};
use crate::keys::Direction;
use crate::query::run::Runner;
use crate::search::{KnowledgeSearch, NameSearch};
use crate::vector::VectorFilter;

/// Something that answers a workload's operations, one at a time.
pub trait Door {
    fn run(&mut self, query: &Query) -> Result<Answer>;
}

const BUDGET: Duration = Duration::from_secs(5);

/// `--via api`: the public Rust API, as an embedding program calls it.
pub struct Api<'s> {
    pub session: &'s Session,
}

impl Door for Api<'_> {
    fn run(&mut self, query: &Query) -> Result<Answer> {
        let s = self.session;
        if let Query::W1 { n } = query {
            s.run(|t| {
                let me = t.actor().person;
                let thing = t.create_thing(NewThing {
                    kind: "digital_product".into(),
                    name: format!("bench item {n}"),
                    ..Default::default()
                })?;
                t.connect(NewConnection {
                    from: Some(me),
                    to: Some(thing.id),
                    kind: "owns".into(),
                    ..Default::default()
                })?;
                Ok(())
            })?;
            return Ok(Answer::Done);
        }
        let txn = s.read()?;
        let now = txn.now();
        Ok(match query {
            Query::W1 { .. } => Answer::Done,
            Query::Q1 { thing } => {
                Answer::Names(txn.thing(*thing)?.map(|t| t.name).into_iter().collect())
            }
            Query::Q2 { kind, status } => Answer::Ids(
                txn.things_of_type(kind, Some(*status))?
                    .take(50)
                    .map(|t| t.map(|t| t.id))
                    .collect::<Result<_>>()?,
            ),
            Query::Q3 { person } => {
                let ids: Vec<_> = txn
                    .edges(*person, Direction::Out, Some("owns"), now)?
                    .map(|e| e.map(|e| e.to))
                    .collect::<Result<_>>()?;
                Answer::Names(
                    txn.things(&ids)?
                        .into_iter()
                        .flatten()
                        .map(|t| t.name)
                        .collect(),
                )
            }
            Query::Q4 { person } => {
                let mut seen = HashSet::new();
                for f in txn.edges(*person, Direction::Out, Some("following"), now)? {
                    for e in txn.edges(f?.to, Direction::Out, Some("owns"), now)? {
                        seen.insert(e?.to);
                    }
                }
                Answer::Count(seen.len() as u64)
            }
            Query::Q5 { word } => {
                let q = NameSearch {
                    text: word,
                    kinds: None,
                    statuses: None,
                    limit: 10,
                    deadline: Instant::now() + BUDGET,
                };
                let hits = s.search_names(&txn, &q, &mut |_| Ok(true))?;
                Answer::Ids(hits.iter().map(|h| h.found.id()).collect())
            }
            Query::Q6 { vector } => {
                let q = KnowledgeSearch {
                    vector,
                    k: 10,
                    filter: VectorFilter::default(),
                    deadline: Instant::now() + BUDGET,
                };
                let (hits, _) = s.search_knowledge(&txn, &q, &mut |_| Ok(true))?;
                Answer::Ids(hits.iter().map(|h| h.knowledge.id).collect())
            }
            Query::Q7 {
                thing,
                since,
                until,
            } => Answer::Ids(
                txn.events(&EventFilter {
                    target: Some(*thing),
                    since: Some(*since),
                    until: Some(*until),
                    limit: 20,
                    ..Default::default()
                })?
                .into_iter()
                .map(|e| e.id)
                .collect(),
            ),
        })
    }
}

/// `--via oql`: OQL text through the session's runner (cached plans).
pub struct Oql<'s> {
    pub runner: Runner<'s>,
}

impl Door for Oql<'_> {
    fn run(&mut self, query: &Query) -> Result<Answer> {
        let (statements, params) = query.oql();
        if let Some(map) = params.as_object() {
            for (name, value) in map {
                self.runner.set_param(name, value.clone())?;
            }
        }
        // A block that conflicts with a concurrent one (the mixed run) is
        // rolled back whole; run it again, as `Session::run` does.
        let mut attempt = 0;
        loop {
            match self.statements(&statements) {
                Err(e) if e.code == ErrorCode::Conflict && attempt < RETRIES => attempt += 1,
                Err(e) => return Err(e),
                Ok(outcome) => return Ok(query.answer_of_rows(&outcome.columns, &outcome.rows)),
            }
        }
    }
}

/// Times a conflicting write is tried again.
pub const RETRIES: usize = 5;

impl Oql<'_> {
    fn statements(&mut self, statements: &[String]) -> Result<crate::query::outcome::Outcome> {
        let mut last = None;
        for text in statements {
            last = Some(self.runner.execute(text)?);
        }
        Ok(last.unwrap_or_default())
    }
}
