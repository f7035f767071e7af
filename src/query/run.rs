//! The runner: statements of one session, with its LET variables and
//! parameters, its current org, autocommit (retried on CONFLICT) or one
//! `BEGIN … COMMIT` block, and the plan cache. It dispatches: writes to
//! `bind.rs`, reads to `read.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::db::{CONFLICT_RETRIES, Session, SubscribeTo, Subscription, Wake, pause_before_retry};
use crate::error::{Error, ErrorCode, Position, Result};
use crate::graph::{ReadTxn, WriteTxn};
use crate::model::Org;
use crate::ontology::Role;
use crate::query::ast::{LetValue, Statement, StatementKind};
use crate::query::bind::{View, apply_write, self_view};
pub use crate::query::exec::QueryLimits;
use crate::query::exec::{Budget, ProfileStats};
pub use crate::query::outcome::{Outcome, Stats};
use crate::query::params::Params;
use crate::query::parser::parse_statement;
use crate::query::plan::{Optimize, Plan, plan_search, plan_with};
use crate::query::read::{explain, read_statement, subscription_filter};
use crate::query::script::ScriptStatement;
use crate::query::value::Val;
use crate::search::Indexes;

/// The variable that names the session's person.
const ME: &str = "me";

#[expect(
    clippy::large_enum_variant,
    reason = "one per runner: the open transaction is the point"
)]
enum Block<'s> {
    None,
    Open(WriteTxn<'s>),
    /// A statement inside the block failed: everything was rolled back.
    /// `guessed_wrong`: a copy of a record its transaction used had
    /// changed (`WriteTxn::guessed_wrong`), so the failure may be its doing.
    Failed {
        guessed_wrong: bool,
    },
}

/// Runs OQL statements for one session.
pub struct Runner<'s> {
    session: &'s Session,
    org: Option<Arc<Org>>,
    vars: Params,
    block: Block<'s>,
    limits: QueryLimits,
    /// Set from another thread to stop the running statement.
    cancel: Option<Arc<AtomicBool>>,
    optimize: Optimize,
    /// Statement text → its parse and (for MATCH) plan.
    prepared: HashMap<String, Arc<Prepared>>,
    /// Running a whole block (`run_whole_block`): its transaction may guess.
    whole_block: bool,
    /// The session's liveness check, left to the next whole block's
    /// commit (`defer_liveness_check`), and what it found if it failed.
    liveness: Option<(Vec<Vec<u8>>, u64)>,
    liveness_failed: Option<Error>,
}

/// A statement ready to run: parsed, and planned when it is a query.
struct Prepared {
    statement: Statement,
    plan: Option<Arc<Plan>>,
}

/// Plans kept per runner before the cache is cleared.
const PLAN_CACHE: usize = 512;

impl<'s> Runner<'s> {
    pub fn new(session: &'s Session) -> Runner<'s> {
        // `$me` is the session's person, always.
        let me = Val::Data(json!(session.actor().person.to_string()));
        Runner {
            session,
            org: session.org().map(|o| Arc::new(o.clone())),
            vars: Params::from([(ME.to_string(), me)]),
            block: Block::None,
            limits: QueryLimits::default(),
            cancel: None,
            optimize: Optimize::ALL,
            prepared: HashMap::new(),
            whole_block: false,
            liveness: None,
            liveness_failed: None,
        }
    }

    pub fn set_limits(&mut self, limits: QueryLimits) {
        self.limits = limits;
    }

    /// The flag that cancels statements from now on: once it is set, a
    /// statement that has not started answers `CANCELLED`, and a query
    /// stops with `CANCELLED` where it would check its deadline.
    pub fn set_cancel(&mut self, flag: Option<Arc<AtomicBool>>) {
        self.cancel = flag;
    }

    /// Which optional planner passes run (all, by default). Results are
    /// the same either way; plans and speed are not.
    pub fn set_optimize(&mut self, optimize: Optimize) {
        self.optimize = optimize;
        self.prepared.clear();
    }

    /// Binds `$name` (a parameter: only ever data, never OQL text).
    /// `$me` cannot be rebound: it is the session's person.
    pub fn set_param(&mut self, name: &str, value: Json) -> Result<()> {
        if name == ME {
            return Err(Error::invalid(
                "$me is the session's person; it cannot be rebound",
            ));
        }
        self.vars.insert(name, Val::Data(value));
        Ok(())
    }

    pub fn in_block(&self) -> bool {
        !matches!(self.block, Block::None)
    }

    /// The session statements run in.
    pub fn session(&self) -> &'s Session {
        self.session
    }

    /// The current org's slug, for prompts.
    pub fn org_slug(&self) -> Option<&str> {
        self.org.as_deref().map(|o| o.slug.as_str())
    }

    /// Starts a subscription to the events an `EVENTS` statement (`text`,
    /// without `LIMIT`) asks for, in the current org, with the person's
    /// rights; `after` resumes after that commit. Errors carry their
    /// position in `text`.
    pub fn subscribe(
        &mut self,
        text: &str,
        after: Option<u64>,
        queue: usize,
        wake: Wake,
    ) -> Result<Subscription> {
        let statement = parse_statement(text).map_err(|e| locate(e, text))?;
        let filter = self
            .on_snapshot(|view, txn, _, _| subscription_filter(view, txn, &statement))
            .map_err(|e| locate(e, text))?;
        self.session.subscribe(SubscribeTo {
            org: self.org.clone(),
            filter,
            after,
            queue,
            wake,
        })
    }

    /// Runs a whole block — `BEGIN`, its statements, `COMMIT` — given at
    /// once (in one request or script), so nothing of it has been answered
    /// before it commits. Like a single statement it then runs again, from
    /// the variables it started with, when its commit conflicts with a
    /// concurrent one, or when a copy of a record its transaction used on a
    /// shared store had changed (`Storage::write_guessing`). Errors carry
    /// the index in `block` of the statement that failed.
    pub fn run_whole_block(
        &mut self,
        block: &[&ScriptStatement],
    ) -> std::result::Result<Outcome, (Error, usize)> {
        let before = self.vars.clone();
        let mut liveness = self.liveness.take();
        let mut attempt = 0;
        loop {
            if attempt > 0 && liveness.take().is_some() {
                // The commit that was to confirm the session failed: ask.
                self.check_live().map_err(|e| (e, 0))?;
            }
            self.whole_block = true;
            let mut last = Ok(Outcome::default());
            for (i, statement) in block.iter().enumerate() {
                last = self
                    .execute(&statement.text)
                    .map_err(|e| (statement.locate(e), i));
                if i == 0
                    && last.is_ok()
                    && let Some((keys, seq)) = &liveness
                {
                    let assumed = matches!(&self.block,
                        Block::Open(txn) if txn.assume_unchanged(keys, *seq));
                    if !assumed {
                        liveness = None;
                        last = self
                            .check_live()
                            .map(|()| Outcome::done())
                            .map_err(|e| (e, 0));
                    }
                }
                if last.is_err() {
                    break;
                }
            }
            self.whole_block = false;
            let again = match &last {
                Err((e, i)) => {
                    let committing = *i == 0 || *i + 1 == block.len();
                    (e.code == ErrorCode::Conflict && committing)
                        || matches!(
                            self.block,
                            Block::Failed {
                                guessed_wrong: true
                            }
                        )
                }
                Ok(_) => false,
            };
            if !again || attempt >= CONFLICT_RETRIES {
                // A block that did not commit confirmed nothing of the
                // session: its error goes only to a session still live.
                if last.is_err() && liveness.is_some() {
                    self.check_live().map_err(|e| (e, 0))?;
                }
                return last;
            }
            attempt += 1;
            self.block = Block::None;
            self.vars = before.clone();
            pause_before_retry(attempt);
        }
    }

    /// Leaves the session's liveness check (`Session::check_live`) to the
    /// commit of the block the next `run_text` runs whole: the records
    /// the last check read (`Session::liveness_guesses`) go into it as
    /// guesses. If they changed, the block runs again after a real check,
    /// whose failure `take_liveness_failure` then tells.
    pub fn defer_liveness_check(&mut self, guesses: (Vec<Vec<u8>>, u64)) {
        self.liveness = Some(guesses);
        self.liveness_failed = None;
    }

    /// Whether the deferred liveness check failed (the session must end);
    /// also drops a deferral no block used.
    pub fn take_liveness_failure(&mut self) -> Option<Error> {
        self.liveness = None;
        self.liveness_failed.take()
    }

    fn check_live(&mut self) -> Result<()> {
        self.session.check_live().inspect_err(|e| {
            self.liveness_failed = Some(e.clone());
        })
    }

    /// Parses and runs one statement. Errors carry their position in `text`.
    pub fn execute(&mut self, text: &str) -> Result<Outcome> {
        let started = Instant::now();
        self.budget().check_cancel()?;
        let prepared = self.prepare(text).map_err(|e| locate(e, text))?;
        let mut outcome = self
            .execute_statement(&prepared.statement, prepared.plan.clone())
            .map_err(|e| locate(e, text))?;
        outcome.stats = Stats {
            rows: outcome.rows.len(),
            micros: started.elapsed().as_micros() as u64,
        };
        Ok(outcome)
    }

    /// Runs a parsed statement; `plan` is the plan of its MATCH (also when
    /// the MATCH sits inside LET or EXPLAIN).
    fn execute_statement(
        &mut self,
        statement: &Statement,
        plan: Option<Arc<Plan>>,
    ) -> Result<Outcome> {
        use StatementKind as S;
        match &statement.kind {
            S::Begin => match self.block {
                Block::None => {
                    let org = self.org.clone();
                    self.block = Block::Open(if self.whole_block {
                        self.session.write_guessing_in(org)?
                    } else {
                        self.session.write_in(org)?
                    });
                    Ok(Outcome::done())
                }
                _ => Err(Error::invalid(
                    "already inside BEGIN; COMMIT or ROLLBACK first",
                )),
            },
            S::Commit => match std::mem::replace(&mut self.block, Block::None) {
                Block::Open(txn) => txn.commit().map(|_| Outcome::done()),
                Block::Failed { .. } => Err(Error::conflict(
                    "the transaction was rolled back by an earlier error; nothing was committed",
                )),
                Block::None => Err(Error::invalid("COMMIT outside BEGIN")),
            },
            S::Rollback => match std::mem::replace(&mut self.block, Block::None) {
                Block::None => Err(Error::invalid("ROLLBACK outside BEGIN")),
                _ => Ok(Outcome::done()),
            },
            _ if matches!(self.block, Block::Failed { .. }) => Err(Error::conflict(
                "the transaction was rolled back by an earlier error; end it with ROLLBACK",
            )),
            S::UseOrg { slug } => {
                if self.in_block() {
                    return Err(Error::invalid("USE ORG inside BEGIN; COMMIT first"));
                }
                self.org = match slug {
                    Some(s) => Some(
                        self.session
                            .resolve_org(&s.name)
                            .map_err(|e| e.at_span(s.span))?,
                    ),
                    None if self.session.actor().role == Role::PlatformOwner => None,
                    None => {
                        return Err(Error::forbidden(
                            "only the platform owner works outside an organization",
                        ));
                    }
                };
                Ok(Outcome::done())
            }
            S::Let { var, value } => {
                let bound = match value {
                    LetValue::Expr(e) => {
                        let txn = self.session.read_in(self.org.clone())?;
                        self_view(&self.vars).value(e, &txn)?
                    }
                    LetValue::Statement(inner) => {
                        let outcome = self.execute_statement(inner, plan)?;
                        match outcome.value.or_else(|| single_value(&outcome.rows)) {
                            Some(v) => Val::Data(v),
                            None => {
                                return Err(Error::invalid(
                                    "LET needs a statement with one value (one row, one column)",
                                ));
                            }
                        }
                    }
                };
                let name = var.name.trim_start_matches('$');
                if name == ME {
                    return Err(Error::invalid(
                        "$me is the session's person; it cannot be rebound",
                    )
                    .at_span(var.span));
                }
                let shown = bound.to_json();
                self.vars.insert(name, bound);
                Ok(Outcome {
                    value: Some(shown),
                    ..Outcome::done()
                })
            }
            S::Explain {
                statement: inner,
                profile,
            } => self.explain(inner, plan, *profile),
            kind if is_write(kind) => self.write(statement),
            _ => self.read(statement, plan),
        }
    }

    /// Runs a write statement: in the open block, or in its own commit.
    fn write(&mut self, statement: &Statement) -> Result<Outcome> {
        if let Block::Open(txn) = &mut self.block {
            let result = apply_write(self_view(&self.vars), txn, statement);
            if result.is_err() {
                // A failure inside rolls the whole block back.
                let guessed_wrong = txn.guessed_wrong();
                self.block = Block::Failed { guessed_wrong };
            }
            return result;
        }
        let vars = &self.vars;
        self.session.run_in(self.org.clone(), |txn| {
            apply_write(self_view(vars), txn, statement)
        })
    }

    /// Runs a read statement on the block's transaction or a snapshot.
    fn read(&mut self, statement: &Statement, plan: Option<Arc<Plan>>) -> Result<Outcome> {
        self.on_snapshot(|view, txn, indexes, budget| {
            read_statement(view, txn, indexes, statement, plan.as_deref(), budget, None)
        })
    }

    /// Parses and plans `text`, or finds it in the cache: a repeated
    /// statement skips both. Failures are not cached.
    fn prepare(&mut self, text: &str) -> Result<Arc<Prepared>> {
        if let Some(p) = self.prepared.get(text) {
            return Ok(p.clone());
        }
        let statement = parse_statement(text)?;
        let plan = self.plan_for(&statement)?;
        let prepared = Arc::new(Prepared { statement, plan });
        if self.prepared.len() >= PLAN_CACHE {
            self.prepared.clear();
        }
        self.prepared.insert(text.to_string(), prepared.clone());
        Ok(prepared)
    }

    /// The plan of a MATCH, or of the MATCH inside EXPLAIN or LET (None for
    /// other statements). A label the vocabulary lacks is looked up again
    /// on a shared store, where another server may have just added it.
    fn plan_for(&self, statement: &Statement) -> Result<Option<Arc<Plan>>> {
        match self.plan_with_vocabulary(statement) {
            Err(e) if e.code == ErrorCode::UnknownType && self.session.reread_vocabulary() => {
                self.plan_with_vocabulary(statement)
            }
            planned => planned,
        }
    }

    fn plan_with_vocabulary(&self, statement: &Statement) -> Result<Option<Arc<Plan>>> {
        match &statement.kind {
            StatementKind::Match(query) => Ok(Some(Arc::new(plan_with(
                query,
                &self.session.vocabulary(),
                self.optimize,
            )?))),
            StatementKind::Search(search) => Ok(Some(Arc::new(plan_search(
                search,
                &self.session.vocabulary(),
                self.optimize,
            )?))),
            StatementKind::Explain { statement, .. } => self.plan_with_vocabulary(statement),
            StatementKind::Let {
                value: LetValue::Statement(inner),
                ..
            } => self.plan_with_vocabulary(inner),
            _ => Ok(None),
        }
    }

    fn explain(
        &mut self,
        inner: &Statement,
        plan: Option<Arc<Plan>>,
        profile: bool,
    ) -> Result<Outcome> {
        let Some(plan) = plan else {
            return Err(Error::invalid(
                "EXPLAIN and PROFILE take a MATCH or SEARCH statement",
            ));
        };
        if !profile {
            let lines = self.on_snapshot(|view, txn, indexes, budget| {
                explain(view, txn, indexes, &plan, budget)
            })?;
            return Ok(table_of_lines(&lines));
        }
        let stats = ProfileStats::default();
        let rows = self.on_snapshot(|view, txn, indexes, budget| {
            read_statement(
                view,
                txn,
                indexes,
                inner,
                Some(&plan),
                budget,
                Some(stats.clone()),
            )
        })?;
        let stats = stats.borrow();
        let lines = plan.root.tree(&|id| {
            let (n, t) = stats.get(id).copied().unwrap_or_default();
            format!("  (rows={n}, time={}µs)", t.as_micros())
        });
        let mut out = table_of_lines(&lines);
        out.value = Some(json!(rows.rows.len()));
        Ok(out)
    }

    /// The query limits and the cancel flag of the next statement.
    fn budget(&self) -> Budget<'_> {
        Budget {
            limits: self.limits,
            cancel: self.cancel.as_deref(),
        }
    }

    /// Runs `read` on the open block's transaction (whose own writes it
    /// sees), else on a snapshot of the current org.
    fn on_snapshot<T>(
        &mut self,
        read: impl FnOnce(View<'_>, &ReadTxn<'_>, &Indexes, Budget<'_>) -> Result<T>,
    ) -> Result<T> {
        let view = self_view(&self.vars);
        let indexes = self.session.indexes();
        let budget = Budget {
            limits: self.limits,
            cancel: self.cancel.as_deref(),
        };
        match &mut self.block {
            Block::Open(txn) => read(view, txn, indexes, budget),
            _ => read(
                view,
                &self.session.read_in(self.org.clone())?,
                indexes,
                budget,
            ),
        }
    }
}

/// A plan's lines as a one-column table.
fn table_of_lines(lines: &str) -> Outcome {
    Outcome::table(&["plan"], lines.lines().map(|l| vec![json!(l)]).collect())
}

fn is_write(kind: &StatementKind) -> bool {
    use StatementKind as S;
    matches!(
        kind,
        S::CreateOrg { .. }
            | S::AlterOrg { .. }
            | S::SetLimits { .. }
            | S::CreatePerson { .. }
            | S::RemovePerson { .. }
            | S::CreateThing { .. }
            | S::Update { .. }
            | S::SetStatus { .. }
            | S::Delete { .. }
            | S::Connect { .. }
            | S::Disconnect { .. }
            | S::CreateKnowledge { .. }
            | S::Emit { .. }
            | S::CreateTrigger { .. }
            | S::DropTrigger { .. }
            | S::CreateToken { .. }
            | S::RevokeToken { .. }
            | S::DefineSchema { .. }
            | S::DropSchema { .. }
            | S::CreateType { .. }
    )
}

fn single_value(rows: &[Vec<Json>]) -> Option<Json> {
    match rows {
        [row] if row.len() == 1 => row.first().cloned(),
        _ => None,
    }
}

/// Resolves a span-only position (line 0) against the statement text.
fn locate(mut e: Error, text: &str) -> Error {
    if let Some(p) = e.position
        && p.line == 0
    {
        e.position = Some(Position::of(text, p.offset));
    }
    e
}
