//! Expressions compiled for execution: variables resolved to row slots at
//! plan time, evaluated per row against the tenant transaction.

use std::fmt;

use serde_json::{Value as Json, json};

use crate::error::{Error, Result};
use crate::graph::ReadTxn;
use crate::keys::Direction;
use crate::model::Millis;
use crate::query::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use crate::query::params::Params;
use crate::query::value::{NULL, Val, compare, edge_json, equal};

/// Scalar functions (aggregates are planned separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Length,
    Nodes,
    Relationships,
    Connections,
    Size,
    ToLower,
    ToUpper,
    Coalesce,
    Id,
    Type,
}

impl Func {
    pub fn parse(name: &str) -> Option<Func> {
        Some(match name.to_ascii_lowercase().as_str() {
            "length" => Func::Length,
            "nodes" => Func::Nodes,
            "relationships" => Func::Relationships,
            "connections" => Func::Connections,
            "size" => Func::Size,
            "tolower" | "lower" => Func::ToLower,
            "toupper" | "upper" => Func::ToUpper,
            "coalesce" => Func::Coalesce,
            "id" => Func::Id,
            "type" => Func::Type,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Length => "length",
            Func::Nodes => "nodes",
            Func::Relationships => "relationships",
            Func::Connections => "connections",
            Func::Size => "size",
            Func::ToLower => "toLower",
            Func::ToUpper => "toUpper",
            Func::Coalesce => "coalesce",
            Func::Id => "id",
            Func::Type => "type",
        }
    }
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Collect,
}

impl AggFunc {
    pub fn parse(name: &str) -> Option<AggFunc> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "collect" => AggFunc::Collect,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CExpr {
    Const(Val),
    Param(String),
    Slot(usize, String),
    Field(Box<CExpr>, String),
    List(Vec<CExpr>),
    Map(Vec<(String, CExpr)>),
    Not(Box<CExpr>),
    Neg(Box<CExpr>),
    Binary(BinaryOp, Box<CExpr>, Box<CExpr>),
    IsNull(Box<CExpr>, bool),
    Func(Func, Vec<CExpr>),
}

/// What evaluation may look at besides the row.
pub struct Env<'e, 't> {
    pub params: &'e Params,
    pub txn: &'e ReadTxn<'t>,
    /// The time connections are read at (`connections(n)`).
    pub now: Millis,
}

/// Compiles an expression; `resolve` maps a variable name to its slot.
pub fn compile(expr: &Expr, resolve: &dyn Fn(&str) -> Option<usize>) -> Result<CExpr> {
    let bad = |msg: String| Error::invalid(msg);
    Ok(match &expr.kind {
        ExprKind::Null => CExpr::Const(NULL),
        ExprKind::Bool(b) => CExpr::Const(Val::Data(json!(b))),
        ExprKind::Int(i) => CExpr::Const(Val::Data(json!(i))),
        ExprKind::Float(f) => CExpr::Const(Val::Data(json!(f))),
        ExprKind::Str(s) => CExpr::Const(Val::Data(json!(s))),
        ExprKind::Param(name) => CExpr::Param(name.clone()),
        ExprKind::Var(name) => match resolve(name) {
            Some(slot) => CExpr::Slot(slot, name.clone()),
            None => return Err(bad(format!("unknown variable {name}"))),
        },
        ExprKind::Prop(base, name) => {
            CExpr::Field(Box::new(compile(base, resolve)?), name.name.clone())
        }
        ExprKind::List(items) => CExpr::List(
            items
                .iter()
                .map(|e| compile(e, resolve))
                .collect::<Result<_>>()?,
        ),
        ExprKind::Map(entries) => CExpr::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.name.clone(), compile(v, resolve)?)))
                .collect::<Result<_>>()?,
        ),
        ExprKind::Unary(UnaryOp::Not, e) => CExpr::Not(Box::new(compile(e, resolve)?)),
        ExprKind::Unary(UnaryOp::Neg, e) => CExpr::Neg(Box::new(compile(e, resolve)?)),
        ExprKind::Binary(op, l, r) => CExpr::Binary(
            *op,
            Box::new(compile(l, resolve)?),
            Box::new(compile(r, resolve)?),
        ),
        ExprKind::IsNull { expr, negated } => {
            CExpr::IsNull(Box::new(compile(expr, resolve)?), *negated)
        }
        ExprKind::Call { name, args, .. } => match Func::parse(&name.name) {
            Some(f) => CExpr::Func(
                f,
                args.iter()
                    .map(|e| compile(e, resolve))
                    .collect::<Result<_>>()?,
            ),
            None if AggFunc::parse(&name.name).is_some() => {
                return Err(bad(format!(
                    "{}() is an aggregate and may appear only in RETURN",
                    name.name
                )));
            }
            None => return Err(bad(format!("unknown function {}()", name.name))),
        },
    })
}

impl CExpr {
    pub fn eval(&self, row: &[Val], env: &Env<'_, '_>) -> Result<Val> {
        Ok(match self {
            CExpr::Const(v) => v.clone(),
            CExpr::Param(name) => match env.params.get(name) {
                Some(v) => v.clone(),
                None => return Err(Error::invalid(format!("parameter ${name} is not set"))),
            },
            CExpr::Slot(slot, _) => row.get(*slot).cloned().unwrap_or(NULL),
            // A field of a row's value is read in place, not from a copy.
            CExpr::Field(base, name) => match &**base {
                CExpr::Slot(slot, _) => row.get(*slot).map_or(NULL, |v| v.field(name)),
                _ => base.eval(row, env)?.field(name),
            },
            CExpr::List(items) => Val::Data(Json::Array(
                items
                    .iter()
                    .map(|e| e.eval(row, env).map(|v| v.to_json()))
                    .collect::<Result<_>>()?,
            )),
            CExpr::Map(entries) => Val::Data(Json::Object(
                entries
                    .iter()
                    .map(|(k, e)| Ok((k.clone(), e.eval(row, env)?.to_json())))
                    .collect::<Result<_>>()?,
            )),
            CExpr::Not(e) => match e.eval(row, env)? {
                v if v.is_null() => NULL,
                v => Val::Data(json!(!v.truthy())),
            },
            CExpr::Neg(e) => {
                let v = e.eval(row, env)?;
                match (v.as_i64(), v.as_f64()) {
                    (Some(i), _) => Val::Data(json!(
                        i.checked_neg()
                            .ok_or_else(|| Error::invalid("integer overflow"))?
                    )),
                    (None, Some(f)) => Val::Data(json!(-f)),
                    _ if v.is_null() => NULL,
                    _ => return Err(Error::invalid(format!("cannot negate {}", v.describe()))),
                }
            }
            CExpr::IsNull(e, negated) => Val::Data(json!(e.eval(row, env)?.is_null() != *negated)),
            CExpr::Binary(op, l, r) => binary(*op, l, r, row, env)?,
            CExpr::Func(f, args) => call(*f, args, row, env)?,
        })
    }

    /// The slots an expression reads (for pushing filters down).
    pub fn slots(&self, out: &mut Vec<usize>) {
        match self {
            CExpr::Slot(s, _) => out.push(*s),
            CExpr::Field(e, _) | CExpr::Not(e) | CExpr::Neg(e) | CExpr::IsNull(e, _) => {
                e.slots(out)
            }
            CExpr::List(items) | CExpr::Func(_, items) => items.iter().for_each(|e| e.slots(out)),
            CExpr::Map(entries) => entries.iter().for_each(|(_, e)| e.slots(out)),
            CExpr::Binary(_, l, r) => {
                l.slots(out);
                r.slots(out);
            }
            CExpr::Const(_) | CExpr::Param(_) => {}
        }
    }
}

fn binary(op: BinaryOp, l: &CExpr, r: &CExpr, row: &[Val], env: &Env<'_, '_>) -> Result<Val> {
    // AND / OR short-circuit with three-valued logic.
    if op == BinaryOp::And || op == BinaryOp::Or {
        let a = l.eval(row, env)?;
        if op == BinaryOp::And && !a.is_null() && !a.truthy() {
            return Ok(Val::Data(json!(false)));
        }
        if op == BinaryOp::Or && a.truthy() {
            return Ok(Val::Data(json!(true)));
        }
        let b = r.eval(row, env)?;
        return Ok(match (op, a.is_null() || b.is_null(), b.truthy()) {
            (BinaryOp::And, _, false) if !b.is_null() => Val::Data(json!(false)),
            (BinaryOp::Or, _, true) => Val::Data(json!(true)),
            (_, true, _) => NULL,
            (BinaryOp::And, false, t) => Val::Data(json!(a.truthy() && t)),
            (_, false, t) => Val::Data(json!(a.truthy() || t)),
        });
    }
    let a = l.eval(row, env)?;
    let b = r.eval(row, env)?;
    let boolean = |x: bool| Ok(Val::Data(json!(x)));
    match op {
        BinaryOp::Eq | BinaryOp::Ne if a.is_null() || b.is_null() => Ok(NULL),
        BinaryOp::Eq => boolean(equal(&a, &b)),
        BinaryOp::Ne => boolean(!equal(&a, &b)),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            if a.is_null()
                || b.is_null()
                || std::mem::discriminant(&a.to_json()) != std::mem::discriminant(&b.to_json())
            {
                return Ok(NULL);
            }
            let o = compare(&a, &b);
            boolean(match op {
                BinaryOp::Lt => o.is_lt(),
                BinaryOp::Le => o.is_le(),
                BinaryOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        BinaryOp::In => match b.to_json() {
            Json::Array(items) => boolean(items.iter().any(|i| equal(&a, &Val::Data(i.clone())))),
            Json::Null => Ok(NULL),
            _ => Err(Error::invalid(format!(
                "IN needs a list on its right, found {}",
                b.describe()
            ))),
        },
        BinaryOp::Contains | BinaryOp::StartsWith | BinaryOp::EndsWith => {
            match (a.to_json(), b.as_str()) {
                (Json::String(s), Some(t)) => boolean(match op {
                    BinaryOp::Contains => s.contains(t),
                    BinaryOp::StartsWith => s.starts_with(t),
                    _ => s.ends_with(t),
                }),
                (Json::Array(items), _) if op == BinaryOp::Contains => {
                    boolean(items.iter().any(|i| equal(&Val::Data(i.clone()), &b)))
                }
                _ => Ok(NULL),
            }
        }
        BinaryOp::Add if a.as_str().is_some() || b.as_str().is_some() => {
            match (a.to_json(), b.to_json()) {
                (Json::String(x), Json::String(y)) => Ok(Val::Data(json!(x + &y))),
                _ => Ok(NULL),
            }
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
            arithmetic(op, &a, &b)
        }
        BinaryOp::And | BinaryOp::Or => Ok(NULL),
    }
}

fn arithmetic(op: BinaryOp, a: &Val, b: &Val) -> Result<Val> {
    if a.is_null() || b.is_null() {
        return Ok(NULL);
    }
    let overflow = || Error::invalid("integer overflow");
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let v = match op {
            BinaryOp::Add => x.checked_add(y).ok_or_else(overflow)?,
            BinaryOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
            BinaryOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
            BinaryOp::Div | BinaryOp::Mod if y == 0 => {
                return Err(Error::invalid("division by zero"));
            }
            BinaryOp::Div => x.checked_div(y).ok_or_else(overflow)?,
            _ => x.checked_rem(y).ok_or_else(overflow)?,
        };
        return Ok(Val::Data(json!(v)));
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => {
            let v = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                _ => x % y,
            };
            Ok(if v.is_finite() {
                Val::Data(json!(v))
            } else {
                NULL
            })
        }
        _ => Err(Error::invalid(format!(
            "cannot compute {} {} {}",
            a.describe(),
            op.symbol(),
            b.describe()
        ))),
    }
}

fn call(f: Func, args: &[CExpr], row: &[Val], env: &Env<'_, '_>) -> Result<Val> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "{}() takes {n} argument(s)",
                f.name()
            )))
        }
    };
    if f == Func::Coalesce {
        for a in args {
            let v = a.eval(row, env)?;
            if !v.is_null() {
                return Ok(v);
            }
        }
        return Ok(NULL);
    }
    arity(1)?;
    let v = args[0].eval(row, env)?;
    Ok(match (f, &v) {
        (_, v) if v.is_null() => NULL,
        (Func::Length, Val::Path(p)) => Val::Data(json!(p.rels.len())),
        (Func::Length | Func::Size, Val::Data(Json::Array(a))) => Val::Data(json!(a.len())),
        (Func::Length | Func::Size, Val::Data(Json::String(s))) => {
            Val::Data(json!(s.chars().count()))
        }
        (Func::Nodes, Val::Path(p)) => {
            Val::Data(Json::Array(p.nodes.iter().map(|n| n.to_json()).collect()))
        }
        (Func::Relationships, Val::Path(p)) => {
            Val::Data(Json::Array(p.rels.iter().map(|e| edge_json(e)).collect()))
        }
        (Func::Connections, Val::Node(n)) => connections(n.id(), env)?,
        (Func::ToLower, Val::Data(Json::String(s))) => Val::Data(json!(s.to_lowercase())),
        (Func::ToUpper, Val::Data(Json::String(s))) => Val::Data(json!(s.to_uppercase())),
        (Func::Id, v) => Val::Data(json!(v.as_id()?.to_string())),
        (Func::Type, Val::Rel(e)) => Val::Data(json!(e.kind)),
        (Func::Type, Val::Node(n)) => Val::Data(json!(n.label())),
        (f, v) => {
            return Err(Error::invalid(format!(
                "{}() does not take {}",
                f.name(),
                v.describe()
            )));
        }
    })
}

/// A node's current connections, both directions, as maps.
fn connections(node: crate::model::Id, env: &Env<'_, '_>) -> Result<Val> {
    let mut out = Vec::new();
    for dir in [Direction::Out, Direction::In] {
        for edge in env.txn.edges(node, dir, None, env.now)? {
            let edge = edge?;
            let mut m = edge_json(&edge);
            if let Json::Object(map) = &mut m {
                map.insert(
                    "direction".into(),
                    json!(if dir == Direction::Out { "out" } else { "in" }),
                );
            }
            out.push(m);
        }
    }
    Ok(Val::Data(Json::Array(out)))
}

impl fmt::Display for CExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CExpr::Const(v) => write!(f, "{}", v.to_json()),
            CExpr::Param(p) => write!(f, "${p}"),
            CExpr::Slot(_, name) => write!(f, "{name}"),
            CExpr::Field(b, n) => write!(f, "{b}.{n}"),
            CExpr::List(items) => {
                write!(f, "[")?;
                for (i, e) in items.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "]")
            }
            CExpr::Map(entries) => {
                write!(f, "{{")?;
                for (i, (k, e)) in entries.iter().enumerate() {
                    write!(f, "{}{k}: {e}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, "}}")
            }
            CExpr::Not(e) => write!(f, "NOT {e}"),
            CExpr::Neg(e) => write!(f, "-{e}"),
            CExpr::IsNull(e, neg) => write!(f, "{e} IS {}NULL", if *neg { "NOT " } else { "" }),
            CExpr::Binary(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            CExpr::Func(func, args) => {
                write!(f, "{}(", func.name())?;
                for (i, e) in args.iter().enumerate() {
                    write!(f, "{}{e}", if i > 0 { ", " } else { "" })?;
                }
                write!(f, ")")
            }
        }
    }
}
