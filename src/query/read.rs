//! Running read statements over a read transaction (or an open block's
//! write transaction, whose own writes it sees): MATCH and SEARCH through
//! their plans, EVENTS, SHOW, WHOAMI; EXPLAIN's view of a
//! plan on the snapshot.

use std::time::Instant;

use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::graph::{EventFilter, ReadTxn, event_json};
use crate::ontology::TypeKind;
use crate::query::ast::{BinaryOp, Expr, ExprKind, Statement, StatementKind};
use crate::query::bind::View;
use crate::query::exec::{self, Budget, Context, ProfileStats};
use crate::query::expr::Env;
use crate::query::outcome::Outcome;
use crate::query::params::Params;
use crate::query::plan::{Op, Plan};
use crate::query::value::Val;
use crate::search::Indexes;

/// The execution context of a read: parameters, the transaction, the
/// query's deadline, cancel flag and row cap.
fn context<'e, 't>(
    params: &'e Params,
    txn: &'e ReadTxn<'t>,
    indexes: &'e Indexes,
    budget: Budget<'e>,
    profile: Option<ProfileStats>,
) -> Context<'e, 't> {
    Context {
        env: Env {
            params,
            txn,
            now: txn.now(),
        },
        indexes,
        deadline: Instant::now() + budget.limits.timeout,
        cancel: budget.cancel,
        max_rows: budget.limits.max_rows,
        profile,
    }
}

pub(super) fn read_statement(
    view: View<'_>,
    t: &ReadTxn<'_>,
    indexes: &Indexes,
    statement: &Statement,
    plan: Option<&Plan>,
    budget: Budget<'_>,
    profile: Option<ProfileStats>,
) -> Result<Outcome> {
    use StatementKind as S;
    match &statement.kind {
        S::Match(_) | S::Search(_) => {
            let plan = plan.ok_or_else(|| Error::invalid("a query without a plan"))?;
            let params = view.params();
            let rows = exec::run(plan, &context(params, t, indexes, budget, profile))?;
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
            let f = EventFilter {
                limit: match limit {
                    Some(l) => view
                        .value(l, t)?
                        .as_i64()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| Error::invalid("LIMIT takes a whole number"))?
                        as usize,
                    None => 100,
                },
                ..events_filter(view, t, filter.as_ref(), since, until)?
            };
            let rows = t
                .events(&f)?
                .iter()
                .map(|e| match event_json(e) {
                    Json::Object(fields) => fields.into_iter().map(|(_, v)| v).collect(),
                    other => vec![other],
                })
                .collect();
            Ok(Outcome::table(
                &[
                    "id",
                    "type",
                    "actor",
                    "target",
                    "timestamp",
                    "metadata",
                    "seq",
                ],
                rows,
            ))
        }
        S::Show(what) => show(t, &what.name.to_ascii_lowercase()).map_err(|e| e.at_span(what.span)),
        S::ShowSchema { kind } => {
            let rows = t
                .schemas_of(&kind.name)
                .map_err(|e| e.at_span(kind.span))?
                .into_iter()
                .map(|(scope, schema)| vec![json!(scope), Json::Object(schema)])
                .collect();
            Ok(Outcome::table(&["scope", "schema"], rows))
        }
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
        _ => Err(Error::invalid("not a read statement")),
    }
}

/// The plan as EXPLAIN shows it, one operator per line, with what each
/// SEARCH KNOWLEDGE step would choose on this snapshot.
pub(super) fn explain(
    view: View<'_>,
    t: &ReadTxn<'_>,
    indexes: &Indexes,
    plan: &Plan,
    budget: Budget<'_>,
) -> Result<String> {
    let ctx = context(view.params(), t, indexes, budget, None);
    let mut notes = Vec::new();
    let mut failed = None;
    plan.root.each(&mut |op| {
        let note = match op {
            Op::Search { step, .. } => exec::explain_note(step, &ctx),
            _ => Ok(String::new()),
        };
        notes.push(note.unwrap_or_else(|e| {
            failed.get_or_insert(e);
            String::new()
        }));
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(plan
        .root
        .tree(&|i| notes.get(i).cloned().unwrap_or_default()))
}

/// The filter of `EVENTS [WHERE …] [SINCE …] [UNTIL …]`, without a limit.
fn events_filter(
    view: View<'_>,
    t: &ReadTxn<'_>,
    filter: Option<&Expr>,
    since: &Option<Expr>,
    until: &Option<Expr>,
) -> Result<EventFilter> {
    let mut f = EventFilter {
        since: view.millis(since, t)?,
        until: view.millis(until, t)?,
        ..Default::default()
    };
    if let Some(expr) = filter {
        event_filter(view, t, expr, &mut f)?;
    }
    Ok(f)
}

/// What a subscription streams: the filter of an `EVENTS` statement
/// without `LIMIT`, narrowed to what the person may read (None: nothing).
pub(super) fn subscription_filter(
    view: View<'_>,
    t: &ReadTxn<'_>,
    statement: &Statement,
) -> Result<Option<EventFilter>> {
    let StatementKind::Events {
        filter,
        since,
        until,
        limit,
    } = &statement.kind
    else {
        return Err(Error::invalid(
            "a subscription takes an EVENTS statement: EVENTS [WHERE …] [SINCE …] [UNTIL …]",
        )
        .at_span(statement.span));
    };
    if let Some(limit) = limit {
        return Err(Error::invalid("a subscription has no LIMIT").at_span(limit.span));
    }
    let f = events_filter(view, t, filter.as_ref(), since, until)?;
    Ok(t.visible_events(&f))
}

/// `EVENTS WHERE target = x AND actor = y AND type = "t"`.
fn event_filter(view: View<'_>, t: &ReadTxn<'_>, expr: &Expr, f: &mut EventFilter) -> Result<()> {
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

fn show(t: &ReadTxn<'_>, what: &str) -> Result<Outcome> {
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
                for (category, name) in t.current_vocabulary()?.types(kind) {
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
        "tokens" => Outcome::table(
            &[
                "id",
                "name",
                "person",
                "createdAt",
                "expiresAt",
                "revokedAt",
            ],
            t.tokens()?
                .into_iter()
                .map(|x| {
                    vec![
                        json!(x.id),
                        json!(x.name),
                        json!(x.person),
                        json!(x.created_at),
                        json!(x.expires_at),
                        json!(x.revoked_at),
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
