//! Canonical OQL printing of the AST: keywords uppercase, single spaces,
//! `, ` separators, strings re-escaped, floats that parse back to the same
//! `f64`, and parentheses only where precedence needs them. For every tree
//! the parser returns, `parse(print(tree))` gives the same tree (spans
//! aside).
//!
//! Printing recurses once per expression level; the parser bounds that by
//! `MAX_DEPTH`.

use std::fmt::{self, Display, Formatter, Write};

use crate::query::ast::{
    Assignment, Expr, ExprKind, Hops, Ident, KnowledgeKindAst, LetValue, NodePattern, Pattern,
    Query, RelDirection, RelPattern, Return, Search, SearchTarget, Statement, StatementKind,
    UnaryOp,
};

/// Binding strength of each printed form (higher binds tighter); binary
/// operators use `BinaryOp::precedence`.
const NOT_PREC: u8 = 3;
const IS_NULL_PREC: u8 = 4;
const NEG_PREC: u8 = 7;
const POSTFIX_PREC: u8 = 8;
const ATOM_PREC: u8 = 9;

fn precedence(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Binary(op, _, _) => op.precedence(),
        ExprKind::Unary(UnaryOp::Not, _) => NOT_PREC,
        ExprKind::IsNull { .. } => IS_NULL_PREC,
        ExprKind::Unary(UnaryOp::Neg, _) => NEG_PREC,
        // A negative number (never parsed, but constructible) prints with
        // its sign, so it binds like unary minus.
        ExprKind::Int(n) if *n < 0 => NEG_PREC,
        ExprKind::Float(x) if x.is_sign_negative() => NEG_PREC,
        ExprKind::Prop(..) => POSTFIX_PREC,
        _ => ATOM_PREC,
    }
}

/// Prints `e`, parenthesized if it binds looser than `min`.
fn write_expr(f: &mut Formatter, e: &Expr, min: u8) -> fmt::Result {
    if precedence(e) < min {
        f.write_char('(')?;
        write_bare(f, e)?;
        return f.write_char(')');
    }
    write_bare(f, e)
}

fn write_bare(f: &mut Formatter, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Null => f.write_str("NULL"),
        ExprKind::Bool(true) => f.write_str("TRUE"),
        ExprKind::Bool(false) => f.write_str("FALSE"),
        ExprKind::Int(n) => write!(f, "{n}"),
        // Debug is the shortest text that reads back as the same f64 and
        // always has a `.` or an exponent (`1.0`, `1e16`, `0.1`).
        ExprKind::Float(x) => write!(f, "{x:?}"),
        ExprKind::Str(s) => write_string(f, s),
        ExprKind::Param(name) => write!(f, "${name}"),
        ExprKind::Var(name) => f.write_str(name),
        ExprKind::Prop(inner, name) => {
            write_expr(f, inner, POSTFIX_PREC)?;
            write!(f, ".{}", name.name)
        }
        ExprKind::List(items) => {
            f.write_char('[')?;
            write_list(f, items)?;
            f.write_char(']')
        }
        ExprKind::Map(entries) => write_map(f, entries),
        ExprKind::Unary(UnaryOp::Not, inner) => {
            f.write_str("NOT ")?;
            write_expr(f, inner, NOT_PREC)
        }
        ExprKind::Unary(UnaryOp::Neg, inner) => {
            f.write_char('-')?;
            // `--` would start a comment: parenthesize a negative operand.
            if precedence(inner) == NEG_PREC {
                f.write_char('(')?;
                write_bare(f, inner)?;
                return f.write_char(')');
            }
            write_expr(f, inner, NEG_PREC)
        }
        ExprKind::Binary(op, left, right) => {
            let p = op.precedence();
            write_expr(f, left, p)?;
            write!(f, " {} ", op.symbol())?;
            // Left-associative: an equal-precedence right operand needs
            // parentheses.
            write_expr(f, right, p + 1)
        }
        ExprKind::Call {
            name,
            distinct,
            star,
            args,
        } => {
            write!(f, "{}(", name.name)?;
            if *star {
                f.write_char('*')?;
            } else {
                if *distinct {
                    f.write_str("DISTINCT ")?;
                }
                write_list(f, args)?;
            }
            f.write_char(')')
        }
        ExprKind::IsNull { expr, negated } => {
            write_expr(f, expr, IS_NULL_PREC)?;
            f.write_str(if *negated { " IS NOT NULL" } else { " IS NULL" })
        }
    }
}

fn write_list(f: &mut Formatter, items: &[Expr]) -> fmt::Result {
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        write_expr(f, item, 0)?;
    }
    Ok(())
}

fn write_map(f: &mut Formatter, entries: &[(Ident, Expr)]) -> fmt::Result {
    f.write_char('{')?;
    for (n, (key, value)) in entries.iter().enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}: ", key.name)?;
        write_expr(f, value, 0)?;
    }
    f.write_char('}')
}

/// A string literal with `"`, `\` and control characters escaped.
fn write_string(f: &mut Formatter, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        write_expr(f, self, 0)
    }
}

impl Display for Ident {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Display for Statement {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        self.kind.fmt(f)
    }
}

/// ` KEYWORD expr` if present.
fn write_clause(f: &mut Formatter, keyword: &str, e: &Option<Expr>) -> fmt::Result {
    match e {
        Some(e) => write!(f, " {keyword} {e}"),
        None => Ok(()),
    }
}

/// ` expr` if present (optional property maps and metadata).
fn write_opt(f: &mut Formatter, e: &Option<Expr>) -> fmt::Result {
    match e {
        Some(e) => write!(f, " {e}"),
        None => Ok(()),
    }
}

/// The two ends of CONNECT/DISCONNECT bind like postfix expressions.
struct Endpoint<'a>(&'a Expr);

impl Display for Endpoint<'_> {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        write_expr(f, self.0, POSTFIX_PREC)
    }
}

fn status_keyword(status: &str) -> Option<&'static str> {
    match status {
        "published" => Some("PUBLISH"),
        "archived" => Some("ARCHIVE"),
        "active" => Some("ACTIVATE"),
        "inactive" => Some("DEACTIVATE"),
        _ => None,
    }
}

impl Display for StatementKind {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match self {
            StatementKind::CreateOrg { slug, name, plan } => {
                write!(f, "CREATE ORG {slug} NAME {name}")?;
                if let Some(plan) = plan {
                    write!(f, " PLAN {plan}")?;
                }
                Ok(())
            }
            StatementKind::AlterOrg { slug, sets } => {
                write!(f, "ALTER ORG {slug} SET ")?;
                for (n, (field, value)) in sets.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{field} = {value}")?;
                }
                Ok(())
            }
            StatementKind::SetLimits { org, limits } => {
                write!(f, "SET LIMITS ON ORG {org} {limits}")
            }
            StatementKind::CreatePerson {
                email,
                name,
                role,
                org,
                password,
            } => {
                write!(f, "CREATE PERSON {email} NAME {name} ROLE {role}")?;
                if let Some(org) = org {
                    write!(f, " IN ORG {org}")?;
                }
                write_clause(f, "PASSWORD", password)
            }
            StatementKind::RemovePerson { target } => write!(f, "REMOVE PERSON {target}"),
            StatementKind::UseOrg { slug: Some(slug) } => write!(f, "USE ORG {slug}"),
            StatementKind::UseOrg { slug: None } => f.write_str("USE PLATFORM"),
            StatementKind::CreateThing {
                kind,
                name,
                properties,
            } => {
                write!(f, "CREATE THING {kind} {name}")?;
                write_opt(f, properties)
            }
            StatementKind::Update { target, sets } => {
                write!(f, "UPDATE {target} SET ")?;
                for (n, set) in sets.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{set}")?;
                }
                Ok(())
            }
            StatementKind::SetStatus {
                target,
                status,
                shorthand,
            } => match status_keyword(&status.name) {
                Some(keyword) if *shorthand => write!(f, "{keyword} {target}"),
                _ => write!(f, "UPDATE {target} SET STATUS {status}"),
            },
            StatementKind::Delete { target } => write!(f, "DELETE {target}"),
            StatementKind::Connect {
                from,
                kind,
                metadata,
                to,
                strength,
                valid_from,
                valid_to,
            } => {
                write!(f, "CONNECT {} -[{kind}", Endpoint(from))?;
                write_opt(f, metadata)?;
                write!(f, "]-> {}", Endpoint(to))?;
                write_clause(f, "STRENGTH", strength)?;
                write_clause(f, "VALID FROM", valid_from)?;
                write_clause(f, "UNTIL", valid_to)
            }
            StatementKind::Disconnect { from, kind, to } => {
                write!(
                    f,
                    "DISCONNECT {} -[{kind}]-> {}",
                    Endpoint(from),
                    Endpoint(to)
                )
            }
            StatementKind::CreateKnowledge {
                kind,
                text,
                embedding,
                labels,
                links,
            } => {
                let kind = match kind {
                    KnowledgeKindAst::Chunk => "CHUNK",
                    KnowledgeKindAst::Label => "LABEL",
                };
                write!(f, "CREATE KNOWLEDGE {kind} {text}")?;
                write_clause(f, "EMBEDDING", embedding)?;
                write_clause(f, "LABELS", labels)?;
                for (n, (target, role)) in links.iter().enumerate() {
                    f.write_str(if n == 0 { " FOR " } else { ", " })?;
                    write!(f, "{target}")?;
                    if let Some(role) = role {
                        write!(f, " AS {role}")?;
                    }
                }
                Ok(())
            }
            StatementKind::Emit {
                kind,
                target,
                metadata,
            } => {
                write!(f, "EMIT {kind}")?;
                write_clause(f, "TARGET", target)?;
                write_opt(f, metadata)
            }
            StatementKind::CreateTrigger {
                name,
                on,
                kind,
                emit,
                metadata,
            } => {
                let on = on.name.to_ascii_uppercase();
                write!(f, "CREATE TRIGGER {name} ON {on} {kind} EMIT {emit}")?;
                write_opt(f, metadata)
            }
            StatementKind::DropTrigger { name } => write!(f, "DROP TRIGGER {name}"),
            StatementKind::CreateToken { name, expires } => {
                write!(f, "CREATE TOKEN {name}")?;
                match expires {
                    Some(at) => write!(f, " EXPIRES {at}"),
                    None => Ok(()),
                }
            }
            StatementKind::RevokeToken { target } => write!(f, "REVOKE TOKEN {target}"),
            StatementKind::DefineSchema { kind, schema } => {
                write!(f, "DEFINE SCHEMA {kind} {schema}")
            }
            StatementKind::DropSchema { kind } => write!(f, "DROP SCHEMA {kind}"),
            StatementKind::ShowSchema { kind } => write!(f, "SHOW SCHEMA {kind}"),
            StatementKind::CreateType { kind, name } => {
                write!(f, "CREATE TYPE {} {name}", kind.name.to_ascii_uppercase())
            }
            StatementKind::Let { var, value } => {
                write!(f, "LET ${} = ", var.name)?;
                match value {
                    LetValue::Expr(e) => write!(f, "{e}"),
                    LetValue::Statement(s) => write!(f, "{s}"),
                }
            }
            StatementKind::Match(query) => write!(f, "{query}"),
            StatementKind::Events {
                filter,
                since,
                until,
                limit,
            } => {
                f.write_str("EVENTS")?;
                write_clause(f, "WHERE", filter)?;
                write_clause(f, "SINCE", since)?;
                write_clause(f, "UNTIL", until)?;
                write_clause(f, "LIMIT", limit)
            }
            StatementKind::Search(search) => write!(f, "{search}"),
            StatementKind::Show(what) => write!(f, "SHOW {}", what.name.to_ascii_uppercase()),
            StatementKind::WhoAmI => f.write_str("WHOAMI"),
            StatementKind::Explain { statement, profile } => {
                let word = if *profile { "PROFILE" } else { "EXPLAIN" };
                write!(f, "{word} {statement}")
            }
            StatementKind::Begin => f.write_str("BEGIN"),
            StatementKind::Commit => f.write_str("COMMIT"),
            StatementKind::Rollback => f.write_str("ROLLBACK"),
        }
    }
}

impl Display for Assignment {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match self {
            Assignment::Name(e) => write!(f, "name = {e}"),
            Assignment::Properties(e) => write!(f, "properties = {e}"),
            Assignment::Property(path, e) => {
                f.write_str("properties")?;
                for key in path {
                    write!(f, ".{key}")?;
                }
                write!(f, " = {e}")
            }
            Assignment::Status(s) => write!(f, "STATUS {s}"),
        }
    }
}

impl Display for Query {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_str("MATCH ")?;
        for (n, p) in self.patterns.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        write_clause(f, "WHERE", &self.filter)?;
        write!(f, " {}", self.ret)?;
        for (n, (e, descending)) in self.order.iter().enumerate() {
            f.write_str(if n == 0 { " ORDER BY " } else { ", " })?;
            write!(f, "{e}")?;
            if *descending {
                f.write_str(" DESC")?;
            }
        }
        write_clause(f, "SKIP", &self.skip)?;
        write_clause(f, "LIMIT", &self.limit)
    }
}

impl Display for Return {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_str(if self.distinct {
            "RETURN DISTINCT "
        } else {
            "RETURN "
        })?;
        for (n, (e, alias)) in self.items.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
            if let Some(alias) = alias {
                write!(f, " AS {alias}")?;
            }
        }
        Ok(())
    }
}

impl Display for Pattern {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        if let Some(var) = &self.path_var {
            write!(f, "{var} = ")?;
        }
        if self.shortest {
            f.write_str("SHORTEST ")?;
        }
        write!(f, "{}", self.start)?;
        for (rel, node) in &self.steps {
            write!(f, "{rel}{node}")?;
        }
        Ok(())
    }
}

impl Display for NodePattern {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_char('(')?;
        if let Some(var) = &self.var {
            write!(f, "{var}")?;
        }
        if let Some(label) = &self.label {
            write!(f, ":{label}")?;
        }
        if !self.props.is_empty() {
            if self.var.is_some() || self.label.is_some() {
                f.write_char(' ')?;
            }
            write_map(f, &self.props)?;
        }
        f.write_char(')')
    }
}

impl Display for RelPattern {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        f.write_str(if self.dir == RelDirection::In {
            "<-["
        } else {
            "-["
        })?;
        if let Some(var) = &self.var {
            write!(f, "{var}")?;
        }
        for (n, t) in self.types.iter().enumerate() {
            f.write_char(if n == 0 { ':' } else { '|' })?;
            write!(f, "{t}")?;
        }
        if let Some(hops) = &self.hops {
            write!(f, "{hops}")?;
        }
        if let Some(at) = &self.at {
            let empty = self.var.is_none() && self.types.is_empty() && self.hops.is_none();
            write!(f, "{}AT {at}", if empty { "" } else { " " })?;
        }
        f.write_str(if self.dir == RelDirection::Out {
            "]->"
        } else {
            "]-"
        })
    }
}

impl Display for Hops {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match (self.min, self.max) {
            (None, None) => f.write_str("*"),
            (Some(a), Some(b)) if a == b => write!(f, "*{a}"),
            (Some(a), None) => write!(f, "*{a}.."),
            (None, Some(b)) => write!(f, "*..{b}"),
            (Some(a), Some(b)) => write!(f, "*{a}..{b}"),
        }
    }
}

impl Display for Search {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        write!(f, "SEARCH {}", self.target)?;
        write_clause(f, "WHERE", &self.filter)?;
        if let Some(ret) = &self.ret {
            write!(f, " {ret}")?;
        }
        write_clause(f, "LIMIT", &self.limit)?;
        if let Some(then) = &self.then {
            write!(f, " THEN {then}")?;
        }
        Ok(())
    }
}

impl Display for SearchTarget {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match self {
            SearchTarget::Things(text) => write!(f, "THINGS {text}"),
            SearchTarget::Knowledge { vector, k } => write!(f, "KNOWLEDGE NEAREST {vector} K {k}"),
        }
    }
}

impl Display for LetValue {
    fn fmt(&self, f: &mut Formatter) -> fmt::Result {
        match self {
            LetValue::Expr(e) => write!(f, "{e}"),
            LetValue::Statement(s) => write!(f, "{s}"),
        }
    }
}
