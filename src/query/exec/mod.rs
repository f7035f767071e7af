//! Executing a plan: pull operators over one tenant snapshot, one operator
//! per file (`build` turns each plan node into its operator). Every loop
//! checks the deadline and the cancel flag; results without LIMIT are capped.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::error::{Error, ErrorCode, Result};
use crate::graph::{Edge, ReadTxn};
use crate::keys::Direction;
use crate::model::{Dim, Id, Millis};
use crate::query::expr::{AggFunc, CExpr, Env};
use crate::query::plan::{Access, AggOut, Aggregate, Expand, Op, Plan, Shortest, Way};
use crate::query::value::{Key, NULL, Node, Path, Val, compare, equal};
use crate::search::Indexes;

mod aggregate;
mod distinct;
mod expand;
mod filter;
mod limit;
mod product;
mod project;
mod scan;
mod search;
mod shortest;
mod skip;
mod sort;
mod trim;

// The operators, and the helpers they share through `use super::*`.
use aggregate::AggregateOp;
use distinct::Distinct;
use expand::{ExpandOp, far_end, neighbours};
use filter::Filter;
use limit::Limit;
use product::Product;
use project::Project;
use scan::{Scan, label_ok};
pub use scan::{load_node, load_nodes};
use search::SearchOp;
pub use search::explain_note;
use shortest::ShortestOp;
use skip::Skip;
use sort::Sort;
use trim::Trim;

pub type Row = Vec<Val>;

/// Limits on one query (RELIABILITY.md).
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub timeout: Duration,
    /// Rows a result may have without LIMIT.
    pub max_rows: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            timeout: Duration::from_secs(5),
            max_rows: 10_000,
        }
    }
}

/// What bounds one execution: its limits, and the flag that cancels it
/// (the server's `cancel` op sets it; it is checked where the deadline is).
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget<'a> {
    pub limits: QueryLimits,
    pub cancel: Option<&'a AtomicBool>,
}

impl Budget<'_> {
    /// `CANCELLED` once the flag is set.
    pub fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(cancelled()),
            _ => Ok(()),
        }
    }
}

fn cancelled() -> Error {
    Error::new(ErrorCode::Cancelled, "the query was cancelled")
}

/// Per-operator (rows, time) of a PROFILE, in plan pre-order.
pub type ProfileStats = Rc<RefCell<Vec<(u64, Duration)>>>;

/// Limits and inputs of one execution.
pub struct Context<'e, 't> {
    pub env: Env<'e, 't>,
    /// The database's search indexes (SEARCH adds the tenant itself).
    pub indexes: &'e Indexes,
    pub deadline: Instant,
    /// Set from outside to stop the query (`CANCELLED`).
    pub cancel: Option<&'e AtomicBool>,
    /// Most rows a result may have without LIMIT.
    pub max_rows: usize,
    /// Per-operator (rows, time), in plan pre-order, when profiling.
    pub profile: Option<ProfileStats>,
}

/// An operator that holds rows or values in memory (ORDER BY, DISTINCT,
/// grouping and its `collect` / `count(DISTINCT …)`, an expansion's
/// pending rows, the subgraph SHORTEST explores) holds at most this many
/// times the row cap; a result with LIMIT may have as many rows. So memory
/// stays bounded by the limits, not by how long the deadline lets a query
/// run.
pub const BUFFER_FACTOR: usize = 10;

impl Context<'_, '_> {
    /// Most rows or values one operator may hold (and a LIMITed result may
    /// have): `BUFFER_FACTOR` × the row cap.
    pub fn buffer_cap(&self) -> usize {
        self.max_rows.saturating_mul(BUFFER_FACTOR)
    }

    fn check_deadline(&self) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(cancelled());
        }
        if Instant::now() > self.deadline {
            return Err(Error::new(
                ErrorCode::Timeout,
                "the query ran past its time limit",
            ));
        }
        Ok(())
    }
}

/// Runs a plan to completion; returns its rows.
pub fn run(plan: &Plan, ctx: &Context<'_, '_>) -> Result<Vec<Row>> {
    let mut next_id = 0;
    let mut root = build(&plan.root, plan.width, ctx, &mut next_id, None)?;
    // Room for a typical small result at once, not grown 1, 4, 8, 16.
    let mut rows = Vec::with_capacity(16);
    while let Some(row) = root.next()? {
        if !plan.limited && rows.len() >= ctx.max_rows {
            return Err(Error::too_large(format!(
                "the result has more than {} rows; add LIMIT (up to {})",
                ctx.max_rows,
                ctx.buffer_cap()
            )));
        }
        if rows.len() >= ctx.buffer_cap() {
            return Err(Error::too_large(format!(
                "the result has more than {} rows, the most a LIMIT allows",
                ctx.buffer_cap()
            )));
        }
        rows.push(row);
    }
    Ok(rows)
}

trait Operator {
    fn next(&mut self) -> Result<Option<Row>>;
}

type BoxOp<'c> = Box<dyn Operator + 'c>;

fn build<'c>(
    op: &'c Op,
    width: usize,
    ctx: &'c Context<'c, 'c>,
    next_id: &mut usize,
    want: Option<usize>,
) -> Result<BoxOp<'c>> {
    let id = *next_id;
    *next_id += 1;
    // `want`: how many rows the operators above will take at most, passed
    // only through operators that give one row per input row.
    let mut child = |o: &'c Op, want: Option<usize>| build(o, width, ctx, next_id, want);
    let built: BoxOp<'c> = match op {
        Op::Once => Box::new(Once { done: false, width }),
        Op::Scan { slot, access, .. } => Box::new(Scan::new(*slot, access, width, ctx, want)?),
        Op::Search {
            slot,
            label,
            score,
            step,
            load,
            ..
        } => Box::new(SearchOp {
            slot: *slot,
            score: *score,
            label,
            step,
            load: *load,
            width,
            ctx,
            hits: None,
        }),
        Op::Expand { input, expand } => Box::new(ExpandOp {
            input: child(input, None)?,
            e: expand,
            ctx,
            queue: VecDeque::new(),
        }),
        Op::Shortest { input, shortest } => Box::new(ShortestOp {
            input: child(input, None)?,
            s: shortest,
            ctx,
        }),
        Op::Filter { input, pred } => Box::new(Filter {
            input: child(input, None)?,
            pred,
            ctx,
        }),
        Op::Product { left, right } => Box::new(Product {
            left: child(left, None)?,
            right: Some(right),
            width,
            ctx,
            rights: None,
            current: None,
            index: 0,
        }),
        Op::Project { input, items } => Box::new(Project {
            input: child(input, want)?,
            items,
            ctx,
            spare: Vec::new(),
        }),
        Op::Aggregate {
            input,
            keys,
            aggs,
            out,
        } => Box::new(AggregateOp {
            input: child(input, None)?,
            keys,
            aggs,
            out,
            ctx,
            output: None,
        }),
        Op::Distinct { input } => Box::new(Distinct {
            input: child(input, None)?,
            ctx,
            seen: HashSet::new(),
        }),
        Op::Sort { input, keys, top } => Box::new(Sort {
            input: child(input, None)?,
            keys,
            keep: match top {
                None => None,
                Some((skip, limit)) => {
                    let skip = skip.as_ref().map_or(Ok(0), |s| count_of(s, ctx))?;
                    Some(skip.saturating_add(count_of(limit, ctx)?))
                }
            },
            ctx,
            sorted: None,
        }),
        Op::Skip { input, count } => {
            let left = count_of(count, ctx)?;
            Box::new(Skip {
                input: child(input, want.map(|w| w.saturating_add(left)))?,
                left,
            })
        }
        Op::Limit { input, count } => {
            let left = count_of(count, ctx)?;
            Box::new(Limit {
                input: child(input, Some(want.map_or(left, |w| w.min(left))))?,
                left,
            })
        }
        Op::Trim { input, width } => Box::new(Trim {
            input: child(input, want)?,
            width: *width,
        }),
    };
    Ok(match &ctx.profile {
        Some(stats) => Box::new(Profiled {
            inner: built,
            id,
            stats: stats.clone(),
        }),
        None => built,
    })
}

fn count_of(expr: &CExpr, ctx: &Context<'_, '_>) -> Result<usize> {
    let v = expr.eval(&[], &ctx.env)?;
    match v.as_i64() {
        Some(n) if n >= 0 => Ok(n as usize),
        _ => Err(Error::invalid(format!(
            "SKIP and LIMIT take a whole number ≥ 0, not {}",
            v.to_json()
        ))),
    }
}

struct Profiled<'c> {
    inner: BoxOp<'c>,
    id: usize,
    stats: Rc<RefCell<Vec<(u64, Duration)>>>,
}

impl Operator for Profiled<'_> {
    fn next(&mut self) -> Result<Option<Row>> {
        let started = Instant::now();
        let row = self.inner.next()?;
        let mut stats = self.stats.borrow_mut();
        if stats.len() <= self.id {
            stats.resize(self.id + 1, (0, Duration::ZERO));
        }
        // Time includes the children's: PROFILE shows inclusive time.
        stats[self.id].1 += started.elapsed();
        if row.is_some() {
            stats[self.id].0 += 1;
        }
        Ok(row)
    }
}

struct Once {
    done: bool,
    width: usize,
}

impl Operator for Once {
    fn next(&mut self) -> Result<Option<Row>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(vec![NULL; self.width]))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;
    use crate::graph::{NewConnection, NewPerson, NewThing};
    use crate::model::{Clock, Plan as OrgPlan};
    use crate::ontology::{Role, Status};
    use crate::query::ast::StatementKind;
    use crate::query::params::Params;
    use crate::query::parser::parse_statement;
    use crate::query::plan::plan_match;
    use crate::{Database, Session};

    fn force_loads(op: &mut Op) {
        if let Op::Expand { expand, .. } = op {
            expand.load = true;
        }
        if let Op::Scan {
            access: Access::ById { load, .. },
            ..
        } = op
        {
            *load = true;
        }
        for child in op.children_mut() {
            force_loads(child);
        }
    }

    fn run_text(
        session: &Session,
        text: &str,
        params: &Params,
        loads: bool,
    ) -> (Result<Vec<Vec<Json>>>, bool) {
        let statement = parse_statement(text).unwrap();
        let StatementKind::Match(query) = &statement.kind else {
            panic!("{text} is not a MATCH");
        };
        let mut plan = plan_match(query, &session.vocabulary()).unwrap();
        let before = plan.clone();
        if loads {
            force_loads(&mut plan.root);
        }
        let txn = session.read().unwrap();
        let ctx = Context {
            env: Env {
                params,
                txn: &txn,
                now: txn.now(),
            },
            indexes: session.indexes(),
            deadline: Instant::now() + Duration::from_secs(30),
            cancel: None,
            max_rows: 10_000,
            profile: None,
        };
        let rows = run(&plan, &ctx).map(|rows| {
            rows.into_iter()
                .map(|r| r.into_iter().map(|v| v.to_json()).collect())
                .collect()
        });
        (rows, before != plan)
    }

    /// root on a new database with an enterprise org `acme`.
    fn root_with_acme(clock: Clock) -> (tempfile::TempDir, Database, Session) {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::Options {
            clock,
            ..Default::default()
        };
        let db = Database::open_with(dir.path(), options).unwrap();
        let root = db.local_session().unwrap();
        root.run(|t| {
            t.create_org("acme", "Acme", OrgPlan::Enterprise)
                .map(|_| ())
        })
        .unwrap();
        (dir, db, root)
    }

    /// A sort under SKIP/LIMIT keeps only the first SKIP + LIMIT rows
    /// (cutting its buffer back as it goes); its rows are exactly the
    /// slice of the full sort, ties in input order included.
    #[test]
    fn a_top_k_sort_gives_the_slice_of_the_full_sort() {
        let (_dir, _db, mut root) = root_with_acme(Clock::system());
        root.use_org("acme").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        root.run(|t| {
            for n in 0..300 {
                // Few distinct values: many ties.
                let v: u32 = rng.gen_range(0..12);
                t.create_thing(NewThing {
                    kind: "task".into(),
                    name: format!("t{n}"),
                    properties: json!({ "v": v, "n": n }).as_object().cloned().unwrap(),
                })?;
            }
            Ok(())
        })
        .unwrap();
        let params = Params::new();
        let base = "MATCH (t:task) RETURN t.properties.v, t.name ORDER BY t.properties.v DESC";
        let (all, _) = run_text(&root, base, &params, false);
        let all = all.unwrap();
        assert_eq!(all.len(), 300);
        for (skip, limit) in [
            (0, 0),
            (0, 1),
            (0, 7),
            (3, 5),
            (10, 40),
            (0, 299),
            (250, 100),
            (400, 5),
        ] {
            let text = format!("{base} SKIP {skip} LIMIT {limit}");
            let (got, _) = run_text(&root, &text, &params, false);
            let want: Vec<_> = all.iter().skip(skip).take(limit).cloned().collect();
            assert_eq!(got.unwrap(), want, "{text}");
        }
    }

    /// A LIMIT over a type (and status) scan, with only row-for-row
    /// operators between, reads exactly the records it returns, in one
    /// batch; a filter in between reads in growing batches again.
    #[test]
    fn a_limit_reads_only_the_records_it_returns() {
        let (_dir, _db, mut root) = root_with_acme(Clock::system());
        root.use_org("acme").unwrap();
        root.run(|t| {
            for n in 0..300 {
                t.create_thing(NewThing {
                    kind: "task".into(),
                    name: format!("t{n}"),
                    ..Default::default()
                })?;
            }
            Ok(())
        })
        .unwrap();
        let params = Params::new();
        let loaded = |text: &str| {
            let before = crate::graph::LOADED.get();
            let (rows, _) = run_text(&root, text, &params, false);
            (rows.unwrap().len(), crate::graph::LOADED.get() - before)
        };
        let scan = r#"MATCH (t:task) WHERE t.status = "draft""#;
        assert_eq!(loaded(&format!("{scan} RETURN t.name LIMIT 50")), (50, 50));
        assert_eq!(
            loaded(&format!("{scan} RETURN t.name SKIP 10 LIMIT 5")),
            (5, 15)
        );
        assert_eq!(loaded("MATCH (t:task) RETURN t.id LIMIT 3"), (3, 3));
        // Without a LIMIT, or with a filter under it: 8, 16, 32… as before.
        assert_eq!(loaded(&format!("{scan} RETURN t.name")), (300, 300));
        let filtered = format!(r#"{scan} AND t.name <> "t0" RETURN t.name LIMIT 50"#);
        assert_eq!(loaded(&filtered), (50, 8 + 16 + 32));
    }

    /// Binding nodes by id where no expression reads their record changes
    /// no result: the same queries with every expansion loading its far end
    /// give the same rows, as an org owner and as a customer, over a graph
    /// with deleted things, a removed person, ended connections, a deleted
    /// global thing and unpublished things.
    #[test]
    fn nodes_bound_by_id_give_the_results_of_loaded_nodes() {
        let clock = Clock::manual(1_700_000_000_000);
        let (_dir, db, mut root) = root_with_acme(clock.clone());
        root.use_platform().unwrap();
        let global = root
            .run(|t| {
                t.create_thing(NewThing {
                    kind: "creator".into(),
                    name: "global".into(),
                    ..Default::default()
                })
            })
            .unwrap()
            .id;
        root.use_org("acme").unwrap();
        let mut people = Vec::new();
        for (email, role) in [
            ("cust@acme.io", Role::Customer),
            ("ann@acme.io", Role::OrgUser),
            ("bob@acme.io", Role::OrgUser),
        ] {
            let p = root
                .run(|t| {
                    t.create_person(NewPerson {
                        email: email.into(),
                        name: email.into(),
                        role,
                        password: None,
                    })
                })
                .unwrap();
            people.push(p.id);
        }
        let mut rng = StdRng::seed_from_u64(7);
        let mut things = Vec::new();
        for i in 0..40 {
            let status = [Status::Draft, Status::Active, Status::Published][i % 3];
            let id = root
                .run(|t| {
                    let id = t
                        .create_thing(NewThing {
                            kind: if i % 2 == 0 { "creator" } else { "blog_post" }.into(),
                            name: format!("t{i}"),
                            properties: json!({"n": i}).as_object().cloned().unwrap(),
                        })?
                        .id;
                    if status != Status::Draft {
                        t.set_status(id, Status::Active)?;
                    }
                    if status == Status::Published {
                        t.set_status(id, Status::Published)?;
                    }
                    Ok(id)
                })
                .unwrap();
            things.push(id);
        }
        let connect = |from, kind: &str, to| {
            // Random pairs repeat: a duplicate is CONFLICT, and skipped.
            let _ = root.run(|t| {
                t.connect(NewConnection {
                    from: Some(from),
                    to: Some(to),
                    kind: kind.into(),
                    ..Default::default()
                })
                .map(|_| ())
            });
        };
        for _ in 0..160 {
            let a = things[rng.gen_range(0..things.len())];
            let b = things[rng.gen_range(0..things.len())];
            if a != b {
                connect(a, "following", b);
            }
        }
        for &p in &people {
            for _ in 0..6 {
                connect(p, "owns", things[rng.gen_range(0..things.len())]);
            }
        }
        for &t in things.iter().take(5) {
            connect(t, "following", global);
        }
        clock.advance(5);
        let past = clock.now();
        clock.advance(5);
        root.run(|t| {
            for &id in &things[30..33] {
                t.delete_thing(id)?;
            }
            t.remove_person(people[2])?;
            Ok(())
        })
        .unwrap();
        for i in 0..6 {
            let _ = root.run(|t| {
                t.disconnect(things[i], "following", things[i + 1])
                    .map(|_| ())
            });
        }
        root.use_platform().unwrap();
        root.run(|t| t.delete_thing(global)).unwrap();
        root.use_org("acme").unwrap();
        let customer = db.session_as("cust@acme.io").unwrap();

        let mut params = Params::new();
        params.insert("past".to_string(), Val::Data(json!(past)));
        params.insert("x".to_string(), Val::Data(json!(things[7].to_string())));
        params.insert("p".to_string(), Val::Data(json!(people[0].to_string())));
        params.insert("dead".to_string(), Val::Data(json!(things[31].to_string())));
        // A draft creator and an active blog post: hidden from the customer.
        params.insert("draft".to_string(), Val::Data(json!(things[0].to_string())));
        params.insert("post".to_string(), Val::Data(json!(things[1].to_string())));
        params.insert(
            "removed".to_string(),
            Val::Data(json!(people[2].to_string())),
        );
        params.insert("global".to_string(), Val::Data(json!(global.to_string())));
        let queries = [
            "MATCH (a)-[:following]->(b) RETURN count(b), count(DISTINCT b)",
            "MATCH (a)-[:following]->(b) RETURN a.id, b.id",
            "MATCH (a)-[:following AT $past]->(b) RETURN a.id, b.id, id(b)",
            "MATCH (a)-[:following*1..3]->(b) RETURN DISTINCT b.id",
            "MATCH (a)-[:following*0..2 AT $past]-(b) RETURN count(DISTINCT b)",
            "MATCH (a)-[*1..2]-(b) WHERE a.id = $x RETURN count(DISTINCT b), count(*)",
            "MATCH (a)-[:following]->(b) WHERE b.id = $x RETURN a.name",
            "MATCH (a)-[:following]->(b) WHERE b = $x RETURN a.name ORDER BY a.name",
            "MATCH (p:person)-[:owns]->(t) RETURN p.email, count(t), collect(t.id)",
            "MATCH (t)<-[:owns]-(p) RETURN t.name, p.id ORDER BY t.name",
            "MATCH (t)<-[:owns AT $past]-(p) RETURN count(DISTINCT p)",
            "MATCH (a)-[r:following]->(b) RETURN r.type, b.id, r.from",
            "MATCH (a)-[:following]->(b)-[:following]->(c) WHERE a <> c RETURN count(*)",
            "MATCH (a)-[:following]->(b)-[:following]->(c) RETURN DISTINCT a.id, c.id",
            "MATCH (a)-[:following]->(b), (b)-[:following]->(a) RETURN a.id, b.id",
            "MATCH (a)-[:following]->(b) WHERE b IS NOT NULL RETURN count(b), size(connections(b))",
            "MATCH (a)-[:following]->(b) RETURN b",
            "MATCH (a)-[:following]->(b:creator) RETURN b.id",
            "MATCH (p)-[:owns]->(t) WHERE p.id = $p RETURN t.name, t.status",
            "MATCH (p)-[:owns]->(t) WHERE p.id = $p RETURN count(DISTINCT t)",
            "MATCH (p)-[:owns AT $past]->(t) WHERE p.id = $removed RETURN count(t)",
            "MATCH (a)-[:following]->(b) WHERE a.id = $dead RETURN count(b)",
            "MATCH (a)-[:following AT $past]-(b) WHERE a.id = $dead RETURN count(b)",
            "MATCH (a)-[:following]-(b) WHERE a.id = $draft RETURN count(b)",
            "MATCH (a)-[:following*1..2]-(b) WHERE a.id = $post RETURN count(DISTINCT b)",
            "MATCH (a)-[:following*0..2]-(b) WHERE a.id = $dead RETURN count(DISTINCT b)",
            "MATCH (a)<-[:following AT $past]-(b) WHERE a.id = $global RETURN count(b)",
            "MATCH (a)-[:following]->(b) WHERE a.id = $p RETURN count(b)",
            "MATCH (a:creator)-[:following]->(b) WHERE a.id = $post RETURN count(b)",
            "MATCH (a:blog_post)-[:following]->(b) WHERE a.id = $post RETURN count(b)",
            "MATCH (t:creator) WHERE t.id = $post RETURN t.name",
            "MATCH (t) WHERE t.id = $dead RETURN count(t)",
        ];
        let mut skipped_some = false;
        for session in [&root, &customer] {
            for q in queries {
                let (fast, _) = run_text(session, q, &params, false);
                let (slow, forced) = run_text(session, q, &params, true);
                skipped_some |= forced;
                match (fast, slow) {
                    (Ok(f), Ok(s)) => assert_eq!(f, s, "{q} as {}", session.actor().email),
                    (f, s) => assert_eq!(
                        f.map_err(|e| e.code),
                        s.map_err(|e| e.code),
                        "{q} as {}",
                        session.actor().email
                    ),
                }
            }
        }
        assert!(skipped_some, "some query binds nodes by id");
    }
}
