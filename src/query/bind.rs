//! Binding write statements to mutations: each write statement's
//! expressions are evaluated (parameters, `LET` variables, `$me`) and the
//! statement becomes the [`Mutation`]s it says, which the write
//! transaction's one door (`WriteTxn::apply`) runs. Also the `View` that
//! evaluates a statement's expressions for the runner.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::error::{Error, ErrorCode, Result, Span};
use crate::graph::{
    Applied, Mutation, NewConnection, NewKnowledge, NewPerson, NewThing, NewToken, OrgUpdate,
    ReadTxn, ThingUpdate, WriteTxn,
};
use crate::model::{Id, JunctionRole, KnowledgeKind, OrgStatus, Plan, Props, TriggerOn};
use crate::ontology::{Role, Status, TypeKind};
use crate::query::ast::{Assignment, Expr, Ident, KnowledgeKindAst, Statement, StatementKind};
use crate::query::expr::{CExpr, Env, compile};
use crate::query::outcome::Outcome;
use crate::query::params::Params;
use crate::query::value::Val;

/// A write statement as mutations.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub mutations: Vec<Mutation>,
    /// `CREATE PERSON … IN ORG slug`: the org the mutations run in.
    pub in_org: Option<Ident>,
    /// Where the statement names a thing, connection or event type (an
    /// `UNKNOWN_TYPE` error points there).
    pub type_span: Option<Span>,
    /// What the statement answers when that is not the last mutation's
    /// result: UPDATE and DELETE answer the id they were given.
    pub answer: Option<Id>,
}

impl Bound {
    fn one(mutation: Mutation) -> Bound {
        Bound {
            mutations: vec![mutation],
            in_org: None,
            type_span: None,
            answer: None,
        }
    }

    fn typed(mutation: Mutation, span: Span) -> Bound {
        Bound {
            type_span: Some(span),
            ..Bound::one(mutation)
        }
    }
}

/// Binds a write statement, evaluating its expressions through `t`.
pub fn bind(view: View<'_>, t: &ReadTxn<'_>, statement: &Statement) -> Result<Bound> {
    use StatementKind as S;
    Ok(match &statement.kind {
        S::CreateOrg { slug, name, plan } => {
            let name = view.string(name, t, "an org's name")?;
            let plan = match plan {
                Some(p) => Plan::parse(&p.name).map_err(|e| e.at_span(p.span))?,
                None => Plan::Starter,
            };
            Bound::one(Mutation::CreateOrg {
                slug: slug.name.clone(),
                name,
                plan,
            })
        }
        S::AlterOrg { slug, sets } => {
            let mut update = OrgUpdate::default();
            for (field, expr) in sets {
                match field.name.to_ascii_lowercase().as_str() {
                    "name" => update.name = Some(view.string(expr, t, "name")?),
                    "plan" => update.plan = Some(Plan::parse(&view.string(expr, t, "plan")?)?),
                    "status" => {
                        update.status = Some(OrgStatus::parse(&view.string(expr, t, "status")?)?)
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
            Bound::one(Mutation::UpdateOrg {
                slug: slug.name.clone(),
                update,
            })
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
            Bound::one(Mutation::SetLimits {
                slug: org.name.clone(),
                limits: parsed,
            })
        }
        S::CreatePerson {
            email,
            name,
            role,
            org,
            password,
        } => Bound {
            in_org: org.clone(),
            ..Bound::one(Mutation::CreatePerson(NewPerson {
                email: view.string(email, t, "an email")?,
                name: view.string(name, t, "a name")?,
                role: Role::parse(&role.name).map_err(|e| e.at_span(role.span))?,
                password: password
                    .as_ref()
                    .map(|p| view.string(p, t, "a password"))
                    .transpose()?,
            }))
        },
        S::RemovePerson { target } => Bound::one(Mutation::RemovePerson(view.id(target, t)?)),
        S::CreateThing {
            kind,
            name,
            properties,
        } => Bound::typed(
            Mutation::CreateThing(NewThing {
                kind: kind.name.clone(),
                name: view.string(name, t, "a thing's name")?,
                properties: view.map(properties, t, "properties")?,
            }),
            kind.span,
        ),
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
            let mut mutations = Vec::new();
            if update != ThingUpdate::default() {
                mutations.push(Mutation::UpdateThing { id, update });
            }
            if let Some(status) = status {
                mutations.push(Mutation::SetStatus { id, status });
            }
            Bound {
                mutations,
                in_org: None,
                type_span: None,
                answer: Some(id),
            }
        }
        S::SetStatus { target, status, .. } => Bound::one(Mutation::SetStatus {
            id: view.id(target, t)?,
            status: Status::parse(&status.name).map_err(|e| e.at_span(status.span))?,
        }),
        S::Delete { target } => {
            let id = view.id(target, t)?;
            let mutation = match id.dim() {
                crate::model::Dim::Knowledge => Mutation::DeleteKnowledge(id),
                _ => Mutation::DeleteThing(id),
            };
            Bound {
                answer: Some(id),
                ..Bound::one(mutation)
            }
        }
        S::Connect {
            from,
            kind,
            metadata,
            to,
            strength,
            valid_from,
            valid_to,
        } => Bound::typed(
            Mutation::Connect(NewConnection {
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
            }),
            kind.span,
        ),
        S::Disconnect { from, kind, to } => Bound::one(Mutation::Disconnect {
            from: view.id(from, t)?,
            kind: kind.name.clone(),
            to: view.id(to, t)?,
        }),
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
            Bound::one(Mutation::CreateKnowledge(NewKnowledge {
                kind,
                text: view.string(text, t, "knowledge text")?,
                embedding,
                labels,
                source,
                links: resolved,
            }))
        }
        S::Emit {
            kind,
            target,
            metadata,
        } => Bound::typed(
            Mutation::Emit {
                kind: kind.name.clone(),
                target: target.as_ref().map(|e| view.id(e, t)).transpose()?,
                metadata: view.map(metadata, t, "metadata")?,
            },
            kind.span,
        ),
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
            Bound::one(Mutation::CreateTrigger {
                name: name.name.clone(),
                on,
                kind: kind.name.clone(),
                emit: emit.name.clone(),
                metadata: view.map(metadata, t, "metadata")?,
            })
        }
        S::DropTrigger { name } => Bound::one(Mutation::DropTrigger(name.name.clone())),
        S::CreateToken { name, expires } => Bound::one(Mutation::CreateToken(NewToken {
            name: view.string(name, t, "a token's name")?,
            expires_at: view.millis(expires, t)?,
        })),
        S::RevokeToken { target } => Bound::one(Mutation::RevokeToken(view.id(target, t)?)),
        S::DefineSchema { kind, schema } => {
            let schema = match view.value(schema, t)?.to_json() {
                Json::Object(map) => map,
                other => {
                    return Err(Error::invalid(format!(
                        "a schema is a map {{…}} (a JSON Schema object), not {}",
                        Val::Data(other).describe()
                    ))
                    .at_span(schema.span));
                }
            };
            Bound::typed(
                Mutation::DefineSchema {
                    kind: kind.name.clone(),
                    schema,
                },
                kind.span,
            )
        }
        S::DropSchema { kind } => Bound::typed(Mutation::DropSchema(kind.name.clone()), kind.span),
        S::CreateType { kind, name } => Bound::one(Mutation::AddType {
            kind: TypeKind::parse(&kind.name.to_ascii_lowercase())
                .map_err(|e| e.at_span(kind.span))?,
            name: name.name.clone(),
        }),
        _ => return Err(Error::invalid("not a write statement")),
    })
}

/// Runs a write statement in `t`: binds it, applies its mutations (inside
/// the named org for `IN ORG`, returning to the current one after) and
/// answers with what they wrote.
pub fn apply_write(view: View<'_>, t: &mut WriteTxn<'_>, statement: &Statement) -> Result<Outcome> {
    let bound = bind(view, t, statement)?;
    let previous = t.org().map(|o| o.slug.clone());
    if let Some(slug) = &bound.in_org {
        t.enter_org(&slug.name).map_err(|e| e.at_span(slug.span))?;
    }
    let mut last = None;
    let mut result = Ok(());
    for mutation in bound.mutations {
        match t.apply(mutation) {
            Ok(applied) => last = Some(applied),
            Err(e) => {
                result = Err(match bound.type_span {
                    Some(span) if e.code == ErrorCode::UnknownType => e.at_span(span),
                    _ => e,
                });
                break;
            }
        }
    }
    if bound.in_org.is_some() {
        match previous {
            Some(p) => t.enter_org(&p).map(|_| ())?,
            None => t.enter_platform()?,
        }
    }
    result?;
    Ok(match (bound.answer, last) {
        (Some(id), _) => Outcome::id(id),
        (None, Some(applied)) => answer(applied),
        (None, None) => Outcome::done(),
    })
}

/// What a statement answers for the mutation it ran.
fn answer(applied: Applied) -> Outcome {
    match applied {
        Applied::Org(o) => Outcome::id(o.id),
        Applied::Person(p) => Outcome::id(p.id),
        Applied::Thing(t) => Outcome::id(t.id),
        Applied::Connection(c) => Outcome::id(c.id),
        Applied::Knowledge(k) => Outcome::id(k.id),
        Applied::Event(e) => Outcome::id(e.id),
        Applied::Ended(ended) => {
            let ids: Vec<Vec<Json>> = ended
                .iter()
                .map(|c| vec![json!(c.id.to_string())])
                .collect();
            let value = ids.first().and_then(|r| r.first().cloned());
            Outcome {
                columns: vec!["id".into()],
                rows: ids,
                value,
                ..Default::default()
            }
        }
        Applied::Trigger(trigger) => {
            let value = json!(trigger.name);
            Outcome {
                columns: vec!["trigger".into()],
                rows: vec![vec![value.clone()]],
                value: Some(value),
                ..Default::default()
            }
        }
        Applied::IssuedToken(issued) => {
            // The only time the secret is shown; LET binds it.
            let secret = json!(issued.secret);
            Outcome {
                columns: ["id", "token", "name", "expiresAt"]
                    .map(String::from)
                    .into(),
                rows: vec![vec![
                    json!(issued.token.id),
                    secret.clone(),
                    json!(issued.token.name),
                    json!(issued.token.expires_at),
                ]],
                value: Some(secret),
                ..Default::default()
            }
        }
        Applied::Token(token) => Outcome::id(token.id),
        Applied::Done => Outcome::done(),
    }
}

/// What statement code needs of the runner: its variables and parameters
/// (`$me` among them).
#[derive(Clone, Copy)]
pub struct View<'v> {
    pub vars: &'v Params,
}

pub fn self_view(vars: &Params) -> View<'_> {
    View { vars }
}

impl View<'_> {
    /// The statement's parameters: LET variables, bound parameters, `$me`.
    pub fn params(&self) -> &Params {
        self.vars
    }

    pub fn value(&self, expr: &Expr, txn: &ReadTxn<'_>) -> Result<Val> {
        let compiled: CExpr = compile(expr, &|_| None).map_err(|e| e.at_span(expr.span))?;
        let env = Env {
            params: self.params(),
            txn,
            now: txn.now(),
        };
        compiled.eval(&[], &env).map_err(|e| e.at_span(expr.span))
    }

    pub fn string(&self, expr: &Expr, txn: &ReadTxn<'_>, what: &str) -> Result<String> {
        match self.value(expr, txn)? {
            Val::Data(Json::String(s)) => Ok(s),
            other => Err(Error::invalid(format!(
                "{what} must be a string, not {}",
                other.describe()
            ))
            .at_span(expr.span)),
        }
    }

    pub fn id(&self, expr: &Expr, txn: &ReadTxn<'_>) -> Result<crate::model::Id> {
        self.value(expr, txn)?
            .as_id()
            .map_err(|e| e.at_span(expr.span))
    }

    pub fn map(&self, expr: &Option<Expr>, txn: &ReadTxn<'_>, what: &str) -> Result<Props> {
        match expr {
            None => Ok(Props::new()),
            Some(e) => match self.value(e, txn)?.to_json() {
                Json::Object(m) => Ok(m),
                Json::Null => Ok(Props::new()),
                _ => Err(Error::invalid(format!("{what} must be a map {{…}}")).at_span(e.span)),
            },
        }
    }

    pub fn millis(&self, expr: &Option<Expr>, txn: &ReadTxn<'_>) -> Result<Option<i64>> {
        expr.as_ref()
            .map(|e| {
                self.value(e, txn)?
                    .as_millis()
                    .map_err(|x| x.at_span(e.span))
            })
            .transpose()
    }
}

fn list_of<T>(v: &Val, what: &str, item: impl Fn(&Json) -> Option<T>) -> Result<Vec<T>> {
    let bad = || Error::invalid(what.to_string());
    // A plain loop into a vector of the final size: collecting into a
    // Result grows the vector step by step (an embedding has ~1,000 items).
    let each = |items: &[Json]| {
        let mut out = Vec::with_capacity(items.len());
        for x in items {
            out.push(item(x).ok_or_else(bad)?);
        }
        Ok(out)
    };
    // Borrowed when the value is already JSON (a parameter's embedding).
    match v {
        Val::Data(Json::Array(items)) => each(items),
        _ => match v.to_json() {
            Json::Array(items) => each(&items),
            _ => Err(bad()),
        },
    }
}

pub fn floats(v: &Val) -> Result<Vec<f32>> {
    list_of(v, "an embedding is a list of numbers", |x| {
        x.as_f64().map(|f| f as f32)
    })
}

pub fn strings(v: &Val) -> Result<Vec<String>> {
    list_of(v, "labels are a list of strings", |x| {
        x.as_str().map(str::to_string)
    })
}
