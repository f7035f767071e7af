//! Running statements in a session: LET variables and parameters, the
//! current org, autocommit (retried on CONFLICT) or one `BEGIN … COMMIT`
//! block, and the result of each statement.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::error::{Error, ErrorCode, Position, Result};
use crate::graph::{
    EventFilter, NewConnection, NewKnowledge, NewPerson, NewThing, OrgUpdate, TenantTxn,
    ThingUpdate,
};
use crate::model::{JunctionRole, KnowledgeKind, Org, Props, TriggerOn, now_ms};
use crate::ontology::{Role, Status, TypeKind};
use crate::query::ast::{
    Assignment, BinaryOp, Expr, ExprKind, KnowledgeKindAst, LetValue, Statement, StatementKind,
};
use crate::query::exec::{self, Context};
use crate::query::expr::{CExpr, Env, compile};
use crate::query::parser::parse_statement;
use crate::query::plan::{Plan, plan_match, plan_seeded};
use crate::query::value::Val;
use crate::session::Session;

/// The variable that names the session's person.
const ME: &str = "me";

/// How often an autocommitted statement is retried after a `CONFLICT`.
const CONFLICT_RETRIES: usize = 32;

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
    fn table(columns: &[&str], rows: Vec<Vec<Json>>) -> Outcome {
        Outcome {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            ..Default::default()
        }
    }

    /// A statement that made or changed one entity: its id.
    fn id(id: impl ToString) -> Outcome {
        let id = json!(id.to_string());
        Outcome {
            columns: vec!["id".into()],
            rows: vec![vec![id.clone()]],
            value: Some(id),
            ..Default::default()
        }
    }

    fn done() -> Outcome {
        Outcome::default()
    }
}

enum Block<'s> {
    None,
    Open(TenantTxn<'s>),
    /// A statement inside the block failed: everything was rolled back.
    Failed,
}

/// Runs OQL statements for one session.
pub struct Runner<'s> {
    session: &'s Session,
    org: Option<Arc<Org>>,
    vars: HashMap<String, Val>,
    block: Block<'s>,
    limits: QueryLimits,
    /// Statement text → its parse and (for MATCH) plan.
    prepared: HashMap<String, Arc<Prepared>>,
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
            vars: HashMap::from([(ME.to_string(), me)]),
            block: Block::None,
            limits: QueryLimits::default(),
            prepared: HashMap::new(),
        }
    }

    pub fn set_limits(&mut self, limits: QueryLimits) {
        self.limits = limits;
    }

    /// Binds `$name` (a parameter: only ever data, never OQL text).
    /// `$me` cannot be rebound: it is the session's person.
    pub fn set_param(&mut self, name: &str, value: Json) -> Result<()> {
        if name == ME {
            return Err(Error::invalid(
                "$me is the session's person; it cannot be rebound",
            ));
        }
        self.vars.insert(name.to_string(), Val::Data(value));
        Ok(())
    }

    pub fn in_block(&self) -> bool {
        !matches!(self.block, Block::None)
    }

    /// The current org's slug, for prompts.
    pub fn org_slug(&self) -> Option<&str> {
        self.org.as_deref().map(|o| o.slug.as_str())
    }

    /// Parses and runs one statement. Errors carry their position in `text`.
    pub fn execute(&mut self, text: &str) -> Result<Outcome> {
        let started = Instant::now();
        let prepared = self.prepare(text).map_err(|e| locate(e, text))?;
        let mut outcome = self
            .execute_statement(&prepared.statement, prepared.plan.clone(), text)
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
        text: &str,
    ) -> Result<Outcome> {
        use StatementKind as S;
        match &statement.kind {
            S::Begin => match self.block {
                Block::None => {
                    self.block = Block::Open(self.session.write_in(self.org.clone())?);
                    Ok(Outcome::done())
                }
                _ => Err(Error::invalid(
                    "already inside BEGIN; COMMIT or ROLLBACK first",
                )),
            },
            S::Commit => match std::mem::replace(&mut self.block, Block::None) {
                Block::Open(txn) => txn.commit().map(|_| Outcome::done()),
                Block::Failed => Err(Error::conflict(
                    "the transaction was rolled back by an earlier error; nothing was committed",
                )),
                Block::None => Err(Error::invalid("COMMIT outside BEGIN")),
            },
            S::Rollback => match std::mem::replace(&mut self.block, Block::None) {
                Block::None => Err(Error::invalid("ROLLBACK outside BEGIN")),
                _ => Ok(Outcome::done()),
            },
            _ if matches!(self.block, Block::Failed) => Err(Error::conflict(
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
                        let outcome = self.execute_statement(inner, plan, text)?;
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
                self.vars.insert(name.to_string(), bound);
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
                self.block = Block::Failed;
            }
            return result;
        }
        let mut attempt = 0;
        loop {
            let mut txn = self.session.write_in(self.org.clone())?;
            let outcome = apply_write(self_view(&self.vars), &mut txn, statement)?;
            match txn.commit() {
                Err(e) if e.code == ErrorCode::Conflict && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_micros(50 * attempt as u64));
                }
                Err(e) => return Err(e),
                Ok(_) => return Ok(outcome),
            }
        }
    }

    /// Runs a read statement on the block's transaction or a snapshot.
    fn read(&mut self, statement: &Statement, plan: Option<Arc<Plan>>) -> Result<Outcome> {
        let view = self_view(&self.vars);
        let limits = self.limits;
        match &mut self.block {
            Block::Open(txn) => read_statement(view, txn, statement, plan.as_deref(), limits, None),
            _ => {
                let txn = self.session.read_in(self.org.clone())?;
                read_statement(view, &txn, statement, plan.as_deref(), limits, None)
            }
        }
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
    /// other statements).
    fn plan_for(&self, statement: &Statement) -> Result<Option<Arc<Plan>>> {
        match &statement.kind {
            StatementKind::Match(query) => Ok(Some(Arc::new(plan_match(
                query,
                &self.session.database().vocabulary(),
            )?))),
            StatementKind::Search(search) => match &search.then {
                Some(query) => Ok(Some(Arc::new(plan_seeded(
                    query,
                    &self.session.database().vocabulary(),
                )?))),
                None => Ok(None),
            },
            StatementKind::Explain { statement, .. } => self.plan_for(statement),
            StatementKind::Let {
                value: LetValue::Statement(inner),
                ..
            } => self.plan_for(inner),
            _ => Ok(None),
        }
    }

    fn explain(
        &mut self,
        inner: &Statement,
        plan: Option<Arc<Plan>>,
        profile: bool,
    ) -> Result<Outcome> {
        if let StatementKind::Search(search) = &inner.kind
            && !profile
        {
            let view = self_view(&self.vars);
            let params = view.params();
            let lines = match &mut self.block {
                Block::Open(txn) => explain_search(search, plan.as_deref(), params, txn)?,
                _ => {
                    let txn = self.session.read_in(self.org.clone())?;
                    explain_search(search, plan.as_deref(), params, &txn)?
                }
            };
            return Ok(Outcome::table(
                &["plan"],
                lines.into_iter().map(|l| vec![json!(l)]).collect(),
            ));
        }
        let Some(plan) = plan else {
            return Err(Error::invalid(
                "EXPLAIN takes a MATCH or SEARCH statement; PROFILE a MATCH",
            ));
        };
        if !profile {
            let lines = plan.root.tree(&|_| String::new());
            return Ok(Outcome::table(
                &["plan"],
                lines.lines().map(|l| vec![json!(l)]).collect(),
            ));
        }
        let stats = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let view = self_view(&self.vars);
        let limits = self.limits;
        let rows = match &mut self.block {
            Block::Open(txn) => {
                read_statement(view, txn, inner, Some(&plan), limits, Some(stats.clone()))?
            }
            _ => {
                let txn = self.session.read_in(self.org.clone())?;
                read_statement(view, &txn, inner, Some(&plan), limits, Some(stats.clone()))?
            }
        };
        let stats = stats.borrow();
        let lines = plan.root.tree(&|id| {
            let (n, t) = stats.get(id).copied().unwrap_or_default();
            format!("  (rows={n}, time={}µs)", t.as_micros())
        });
        let mut out = Outcome::table(&["plan"], lines.lines().map(|l| vec![json!(l)]).collect());
        out.value = Some(json!(rows.rows.len()));
        Ok(out)
    }
}

/// What statement code needs of the runner: its variables and parameters
/// (`$me` among them).
#[derive(Clone, Copy)]
struct View<'v> {
    vars: &'v HashMap<String, Val>,
}

fn self_view(vars: &HashMap<String, Val>) -> View<'_> {
    View { vars }
}

impl View<'_> {
    /// The statement's parameters: LET variables, bound parameters, `$me`.
    fn params(&self) -> &HashMap<String, Val> {
        self.vars
    }

    fn value(&self, expr: &Expr, txn: &TenantTxn<'_>) -> Result<Val> {
        let compiled: CExpr = compile(expr, &|_| None).map_err(|e| e.at_span(expr.span))?;
        let env = Env {
            params: self.params(),
            txn,
            now: now_ms(),
        };
        compiled.eval(&[], &env).map_err(|e| e.at_span(expr.span))
    }

    fn string(&self, expr: &Expr, txn: &TenantTxn<'_>, what: &str) -> Result<String> {
        match self.value(expr, txn)? {
            Val::Data(Json::String(s)) => Ok(s),
            other => Err(Error::invalid(format!(
                "{what} must be a string, not {}",
                other.describe()
            ))
            .at_span(expr.span)),
        }
    }

    fn id(&self, expr: &Expr, txn: &TenantTxn<'_>) -> Result<crate::model::Id> {
        self.value(expr, txn)?
            .as_id()
            .map_err(|e| e.at_span(expr.span))
    }

    fn map(&self, expr: &Option<Expr>, txn: &TenantTxn<'_>, what: &str) -> Result<Props> {
        match expr {
            None => Ok(Props::new()),
            Some(e) => match self.value(e, txn)?.to_json() {
                Json::Object(m) => Ok(m),
                Json::Null => Ok(Props::new()),
                _ => Err(Error::invalid(format!("{what} must be a map {{…}}")).at_span(e.span)),
            },
        }
    }

    fn millis(&self, expr: &Option<Expr>, txn: &TenantTxn<'_>) -> Result<Option<i64>> {
        expr.as_ref()
            .map(|e| {
                self.value(e, txn)?
                    .as_millis()
                    .map_err(|x| x.at_span(e.span))
            })
            .transpose()
    }
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

fn apply_write(view: View<'_>, t: &mut TenantTxn<'_>, statement: &Statement) -> Result<Outcome> {
    use StatementKind as S;
    match &statement.kind {
        S::CreateOrg { slug, name, plan } => {
            let name = view.string(name, t, "an org's name")?;
            let plan = match plan {
                Some(p) => crate::graph::parse_plan(&p.name).map_err(|e| e.at_span(p.span))?,
                None => crate::model::Plan::Starter,
            };
            Ok(Outcome::id(t.create_org(&slug.name, &name, plan)?.id))
        }
        S::AlterOrg { slug, sets } => {
            let mut update = OrgUpdate::default();
            for (field, expr) in sets {
                match field.name.to_ascii_lowercase().as_str() {
                    "name" => update.name = Some(view.string(expr, t, "name")?),
                    "plan" => {
                        update.plan =
                            Some(crate::graph::parse_plan(&view.string(expr, t, "plan")?)?)
                    }
                    "status" => {
                        update.status = Some(crate::graph::parse_org_status(
                            &view.string(expr, t, "status")?,
                        )?)
                    }
                    "settings" => {
                        update.settings = Some(view.map(&Some(expr.clone()), t, "settings")?)
                    }
                    other => {
                        return Err(Error::invalid(format!(
                            "ALTER ORG sets name, plan, status or settings, not {other}"
                        ))
                        .at_span(field.span));
                    }
                }
            }
            Ok(Outcome::id(t.update_org(&slug.name, update)?.id))
        }
        S::SetLimits { org, limits } => {
            let map = view.map(&Some(limits.clone()), t, "limits")?;
            let mut parsed = BTreeMap::new();
            for (name, value) in map {
                let n = value.as_i64().ok_or_else(|| {
                    Error::invalid(format!("limit {name} must be a whole number"))
                        .at_span(limits.span)
                })?;
                parsed.insert(name, n);
            }
            Ok(Outcome::id(t.set_limits(&org.name, parsed)?.id))
        }
        S::CreatePerson {
            email,
            name,
            role,
            org,
            password,
        } => {
            let new = NewPerson {
                email: view.string(email, t, "an email")?,
                name: view.string(name, t, "a name")?,
                role: Role::parse(&role.name).map_err(|e| e.at_span(role.span))?,
                password: password
                    .as_ref()
                    .map(|p| view.string(p, t, "a password"))
                    .transpose()?,
            };
            let person = match org {
                Some(slug) => {
                    let previous = t.org().map(|o| o.slug.clone());
                    t.enter_org(&slug.name).map_err(|e| e.at_span(slug.span))?;
                    let created = t.create_person(new);
                    match previous {
                        Some(p) => t.enter_org(&p).map(|_| ())?,
                        None => t.enter_platform()?,
                    }
                    created?
                }
                None => t.create_person(new)?,
            };
            Ok(Outcome::id(person.id))
        }
        S::RemovePerson { target } => Ok(Outcome::id(t.remove_person(view.id(target, t)?)?.id)),
        S::CreateThing {
            kind,
            name,
            properties,
        } => {
            let new = NewThing {
                kind: kind.name.clone(),
                name: view.string(name, t, "a thing's name")?,
                properties: view.map(properties, t, "properties")?,
            };
            let thing = t.create_thing(new).map_err(at_type(kind.span))?;
            Ok(Outcome::id(thing.id))
        }
        S::Update { target, sets } => {
            let id = view.id(target, t)?;
            let mut update = ThingUpdate::default();
            let mut status = None;
            for set in sets {
                match set {
                    Assignment::Name(e) => {
                        update.name = Some(view.string(e, t, "a thing's name")?)
                    }
                    Assignment::Properties(e) => {
                        update.properties = Some(view.map(&Some(e.clone()), t, "properties")?)
                    }
                    Assignment::Property(path, e) => update.set.push((
                        path.iter().map(|p| p.name.clone()).collect(),
                        view.value(e, t)?.to_json(),
                    )),
                    Assignment::Status(s) => {
                        status = Some(Status::parse(&s.name).map_err(|e| e.at_span(s.span))?)
                    }
                }
            }
            if update != ThingUpdate::default() {
                t.update_thing(id, update)?;
            }
            if let Some(s) = status {
                t.set_status(id, s)?;
            }
            Ok(Outcome::id(id))
        }
        S::SetStatus { target, status, .. } => {
            let id = view.id(target, t)?;
            let status = Status::parse(&status.name).map_err(|e| e.at_span(status.span))?;
            Ok(Outcome::id(t.set_status(id, status)?.id))
        }
        S::Delete { target } => {
            let id = view.id(target, t)?;
            match id.dim() {
                crate::model::Dim::Knowledge => t.delete_knowledge(id)?,
                _ => t.delete_thing(id)?,
            }
            Ok(Outcome::id(id))
        }
        S::Connect {
            from,
            kind,
            metadata,
            to,
            strength,
            valid_from,
            valid_to,
        } => {
            let new = NewConnection {
                from: Some(view.id(from, t)?),
                to: Some(view.id(to, t)?),
                kind: kind.name.clone(),
                metadata: view.map(metadata, t, "metadata")?,
                strength: strength
                    .as_ref()
                    .map(|s| {
                        view.value(s, t)?
                            .as_f64()
                            .ok_or_else(|| Error::invalid("STRENGTH takes a number"))
                    })
                    .transpose()?,
                valid_from: view.millis(valid_from, t)?,
                valid_to: view.millis(valid_to, t)?,
            };
            Ok(Outcome::id(t.connect(new).map_err(at_type(kind.span))?.id))
        }
        S::Disconnect { from, kind, to } => {
            let ended = t.disconnect(view.id(from, t)?, &kind.name, view.id(to, t)?)?;
            let ids: Vec<Vec<Json>> = ended
                .iter()
                .map(|c| vec![json!(c.id.to_string())])
                .collect();
            let value = ids.first().and_then(|r| r.first().cloned());
            Ok(Outcome {
                columns: vec!["id".into()],
                rows: ids,
                value,
                ..Default::default()
            })
        }
        S::CreateKnowledge {
            kind,
            text,
            embedding,
            labels,
            links,
        } => {
            let kind = match kind {
                KnowledgeKindAst::Chunk => KnowledgeKind::Chunk,
                KnowledgeKindAst::Label => KnowledgeKind::Label,
            };
            let embedding = match embedding {
                Some(e) => Some(floats(&view.value(e, t)?).map_err(|x| x.at_span(e.span))?),
                None => None,
            };
            let labels = match labels {
                Some(e) => strings(&view.value(e, t)?).map_err(|x| x.at_span(e.span))?,
                None => vec![],
            };
            let default_role = if kind == KnowledgeKind::Chunk {
                JunctionRole::ChunkOf
            } else {
                JunctionRole::Label
            };
            let mut resolved = Vec::new();
            for (target, role) in links {
                let role = match role {
                    Some(r) => JunctionRole::ALL
                        .into_iter()
                        .find(|x| x.as_str() == r.name)
                        .ok_or_else(|| {
                            Error::invalid(format!("unknown junction role {}", r.name))
                                .at_span(r.span)
                        })?,
                    None => default_role,
                };
                resolved.push((view.id(target, t)?, role));
            }
            let source = if kind == KnowledgeKind::Chunk {
                resolved.first().map(|(id, _)| *id)
            } else {
                None
            };
            let new = NewKnowledge {
                kind,
                text: view.string(text, t, "knowledge text")?,
                embedding,
                labels,
                source,
                links: resolved,
            };
            Ok(Outcome::id(t.create_knowledge(new)?.id))
        }
        S::Emit {
            kind,
            target,
            metadata,
        } => {
            let target = target.as_ref().map(|e| view.id(e, t)).transpose()?;
            let metadata = view.map(metadata, t, "metadata")?;
            Ok(Outcome::id(
                t.emit(&kind.name, target, metadata)
                    .map_err(at_type(kind.span))?
                    .id,
            ))
        }
        S::CreateTrigger {
            name,
            on,
            kind,
            emit,
            metadata,
        } => {
            let on = match on.name.to_ascii_lowercase().as_str() {
                "create" => TriggerOn::Create,
                "update" => TriggerOn::Update,
                "status" => TriggerOn::Status,
                "connect" => TriggerOn::Connect,
                other => {
                    return Err(Error::invalid(format!(
                        "a trigger fires ON CREATE, UPDATE, STATUS or CONNECT, not {other}"
                    ))
                    .at_span(on.span));
                }
            };
            let metadata = view.map(metadata, t, "metadata")?;
            let trigger = t.create_trigger(&name.name, on, &kind.name, &emit.name, metadata)?;
            let value = json!(trigger.name);
            Ok(Outcome {
                columns: vec!["trigger".into()],
                rows: vec![vec![value.clone()]],
                value: Some(value),
                ..Default::default()
            })
        }
        S::DropTrigger { name } => t.drop_trigger(&name.name).map(|_| Outcome::done()),
        S::CreateType { kind, name } => {
            let kind = TypeKind::parse(&kind.name.to_ascii_lowercase())
                .map_err(|e| e.at_span(kind.span))?;
            t.add_type(kind, &name.name).map(|_| Outcome::done())
        }
        _ => Err(Error::invalid("not a write statement")),
    }
}

/// A list whose every item `item` converts; otherwise `INVALID_ARGUMENT`
/// saying what the list must be.
fn list_of<T>(v: &Val, what: &str, item: impl Fn(&Json) -> Option<T>) -> Result<Vec<T>> {
    let bad = || Error::invalid(what.to_string());
    match v.to_json() {
        Json::Array(items) => items.iter().map(|x| item(x).ok_or_else(bad)).collect(),
        _ => Err(bad()),
    }
}

/// Points an `UNKNOWN_TYPE` error at the type name that caused it.
fn at_type(span: crate::query::ast::Span) -> impl FnOnce(Error) -> Error {
    move |e| {
        if e.code == ErrorCode::UnknownType {
            e.at_span(span)
        } else {
            e
        }
    }
}

pub(crate) fn floats(v: &Val) -> Result<Vec<f32>> {
    list_of(v, "an embedding is a list of numbers", |x| {
        x.as_f64().map(|f| f as f32)
    })
}

fn strings(v: &Val) -> Result<Vec<String>> {
    list_of(v, "labels are a list of strings", |x| {
        x.as_str().map(str::to_string)
    })
}

/// Per-operator (rows, time) of a PROFILE, in plan pre-order.
type ProfileStats = std::rc::Rc<std::cell::RefCell<Vec<(u64, Duration)>>>;

/// The execution context of a read: parameters, the transaction, the
/// query's deadline and row cap.
fn context<'e, 't>(
    params: &'e HashMap<String, Val>,
    txn: &'e TenantTxn<'t>,
    limits: QueryLimits,
    profile: Option<ProfileStats>,
) -> Context<'e, 't> {
    Context {
        env: Env {
            params,
            txn,
            now: now_ms(),
        },
        deadline: Instant::now() + limits.timeout,
        max_rows: limits.max_rows,
        profile,
        seeds: Vec::new(),
    }
}

fn read_statement(
    view: View<'_>,
    t: &TenantTxn<'_>,
    statement: &Statement,
    plan: Option<&Plan>,
    limits: QueryLimits,
    profile: Option<ProfileStats>,
) -> Result<Outcome> {
    use StatementKind as S;
    match &statement.kind {
        S::Match(_) => {
            let plan = plan.ok_or_else(|| Error::invalid("MATCH without a plan"))?;
            let params = view.params();
            let rows = exec::run(plan, &context(params, t, limits, profile))?;
            let rows: Vec<Vec<Json>> = rows
                .into_iter()
                .map(|r| r.into_iter().map(Val::into_json).collect())
                .collect();
            Ok(Outcome {
                columns: plan.columns.clone(),
                rows,
                ..Default::default()
            })
        }
        S::Events {
            filter,
            since,
            until,
            limit,
        } => {
            let mut f = EventFilter {
                since: view.millis(since, t)?,
                until: view.millis(until, t)?,
                limit: match limit {
                    Some(l) => view
                        .value(l, t)?
                        .as_i64()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| Error::invalid("LIMIT takes a whole number"))?
                        as usize,
                    None => 100,
                },
                ..Default::default()
            };
            if let Some(expr) = filter {
                event_filter(view, t, expr, &mut f)?;
            }
            let rows = t
                .events(&f)?
                .into_iter()
                .map(|e| {
                    vec![
                        json!(e.id),
                        json!(e.kind),
                        e.actor.map_or(json!("system"), |a| json!(a)),
                        e.target.map_or(Json::Null, |x| json!(x)),
                        json!(e.timestamp),
                        Json::Object(e.metadata),
                    ]
                })
                .collect();
            Ok(Outcome::table(
                &["id", "type", "actor", "target", "timestamp", "metadata"],
                rows,
            ))
        }
        S::Show(what) => show(t, &what.name.to_ascii_lowercase()).map_err(|e| e.at_span(what.span)),
        S::WhoAmI => {
            let a = t.actor();
            let org = t.org().map_or(Json::Null, |o| json!(o.slug));
            Ok(Outcome::table(
                &["id", "email", "role", "org"],
                vec![vec![
                    json!(a.person),
                    json!(a.email),
                    json!(a.role.as_str()),
                    org,
                ]],
            ))
        }
        S::Search(search) => {
            let params = view.params();
            let ctx = context(params, t, limits, profile);
            let result = crate::query::search::run(search, plan, &ctx)?;
            Ok(Outcome {
                columns: result.columns,
                rows: result.rows,
                ..Default::default()
            })
        }
        _ => Err(Error::invalid("not a read statement")),
    }
}

fn explain_search(
    search: &crate::query::ast::Search,
    then: Option<&Plan>,
    params: &HashMap<String, Val>,
    txn: &TenantTxn<'_>,
) -> Result<Vec<String>> {
    let env = Env {
        params,
        txn,
        now: now_ms(),
    };
    crate::query::search::explain(search, then, &env)
}

/// `EVENTS WHERE target = x AND actor = y AND type = "t"`.
fn event_filter(view: View<'_>, t: &TenantTxn<'_>, expr: &Expr, f: &mut EventFilter) -> Result<()> {
    match &expr.kind {
        ExprKind::Binary(BinaryOp::And, l, r) => {
            event_filter(view, t, l, f)?;
            event_filter(view, t, r, f)
        }
        ExprKind::Binary(BinaryOp::Eq, l, r) => {
            let ExprKind::Var(field) = &l.kind else {
                return Err(Error::invalid(
                    "EVENTS filters are field = value: target, actor, type",
                )
                .at_span(expr.span));
            };
            match field.as_str() {
                "target" => f.target = Some(view.id(r, t)?),
                "actor" => {
                    f.actor = Some(match view.value(r, t)? {
                        Val::Data(Json::String(s)) if s == "system" => None,
                        v => Some(v.as_id().map_err(|e| e.at_span(r.span))?),
                    })
                }
                "type" => f.kind = Some(view.string(r, t, "type")?),
                other => {
                    return Err(Error::invalid(format!(
                        "EVENTS filter on target, actor or type, not {other}"
                    ))
                    .at_span(l.span));
                }
            }
            Ok(())
        }
        _ => {
            Err(Error::invalid("EVENTS filters are field = value joined by AND").at_span(expr.span))
        }
    }
}

fn show(t: &TenantTxn<'_>, what: &str) -> Result<Outcome> {
    Ok(match what {
        "orgs" => Outcome::table(
            &["slug", "name", "plan", "status", "id"],
            t.orgs()?
                .into_iter()
                .map(|o| {
                    vec![
                        json!(o.slug),
                        json!(o.name),
                        json!(o.plan.as_str()),
                        json!(o.status.as_str()),
                        json!(o.id),
                    ]
                })
                .collect(),
        ),
        "usage" => Outcome::table(
            &["counter", "used", "limit"],
            t.usage()?
                .into_iter()
                .map(|u| vec![json!(u.counter), json!(u.used), json!(u.limit)])
                .collect(),
        ),
        "types" => {
            let mut rows = Vec::new();
            for kind in TypeKind::ALL {
                for (category, name) in t.vocabulary().types(kind) {
                    rows.push(vec![json!(kind.as_str()), json!(category), json!(name)]);
                }
            }
            Outcome::table(&["kind", "category", "name"], rows)
        }
        "triggers" => Outcome::table(
            &["name", "on", "type", "emit", "metadata"],
            t.triggers()?
                .into_iter()
                .map(|x| {
                    vec![
                        json!(x.name),
                        json!(x.on.as_str()),
                        json!(x.kind),
                        json!(x.emit),
                        Json::Object(x.metadata),
                    ]
                })
                .collect(),
        ),
        "people" => Outcome::table(
            &["id", "email", "name", "role"],
            t.people()?
                .into_iter()
                .map(|p| {
                    vec![
                        json!(p.id),
                        json!(p.email),
                        json!(p.name),
                        json!(p.role.as_str()),
                    ]
                })
                .collect(),
        ),
        _ => {
            return Err(Error::invalid(format!(
                "SHOW ORGS, USAGE, TYPES, TRIGGERS or PEOPLE, not {what}"
            )));
        }
    })
}
