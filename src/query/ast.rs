//! The OQL syntax tree: syntax only, with spans. Names are resolved against
//! the ontology later (query/analyze.rs). Every node prints back as canonical
//! OQL (query/print.rs), and parse(print(ast)) == ast.
//!
//! The syntax of each statement is shown on its variant; `grammar/oql.ebnf`
//! is the full specification. Keywords are case-insensitive; identifiers are
//! `[A-Za-z_][A-Za-z0-9_]*` (type, role, status names are lowercase words);
//! strings use double quotes with `\"`, `\\`, `\n`, `\t`, `\u{…}` escapes;
//! `--` starts a comment that runs to the end of the line.

pub use crate::error::Span;

/// A name as written (identifiers, type names, slugs), with where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one statement at a time: boxing variants buys nothing"
)]
pub enum StatementKind {
    /// `CREATE ORG slug NAME "name" [PLAN plan]`
    CreateOrg {
        slug: Ident,
        name: Expr,
        plan: Option<Ident>,
    },
    /// `ALTER ORG slug SET field = expr {, field = expr}` — fields: name,
    /// plan, status, settings.
    AlterOrg {
        slug: Ident,
        sets: Vec<(Ident, Expr)>,
    },
    /// `SET LIMITS ON ORG slug {name: n, …}`
    SetLimits {
        org: Ident,
        limits: Expr,
    },
    /// `CREATE PERSON "email" NAME "name" ROLE role [IN ORG slug] [PASSWORD "p"]`
    CreatePerson {
        email: Expr,
        name: Expr,
        role: Ident,
        org: Option<Ident>,
        password: Option<Expr>,
    },
    /// `REMOVE PERSON expr`
    RemovePerson {
        target: Expr,
    },
    /// `USE ORG slug` or `USE PLATFORM`
    UseOrg {
        slug: Option<Ident>,
    },
    /// `CREATE THING type "name" [{properties}]` (a map literal or a parameter)
    CreateThing {
        kind: Ident,
        name: Expr,
        properties: Option<Expr>,
    },
    /// `UPDATE expr SET assignment {, assignment}`
    Update {
        target: Expr,
        sets: Vec<Assignment>,
    },
    /// `PUBLISH expr` / `ARCHIVE expr` / `ACTIVATE expr` / `DEACTIVATE expr`
    /// and `UPDATE expr SET STATUS s` (printed back as the UPDATE form).
    SetStatus {
        target: Expr,
        status: Ident,
        shorthand: bool,
    },
    /// `DELETE expr`
    Delete {
        target: Expr,
    },
    /// `CONNECT expr -[type [{metadata}]]-> expr [STRENGTH n] [VALID FROM t] [UNTIL t]`
    Connect {
        from: Expr,
        kind: Ident,
        metadata: Option<Expr>,
        to: Expr,
        strength: Option<Expr>,
        valid_from: Option<Expr>,
        valid_to: Option<Expr>,
    },
    /// `DISCONNECT expr -[type]-> expr`
    Disconnect {
        from: Expr,
        kind: Ident,
        to: Expr,
    },
    /// `CREATE KNOWLEDGE (CHUNK|LABEL) "text" [EMBEDDING expr] [LABELS expr]
    /// [FOR expr [AS role] {, expr [AS role]}]`
    CreateKnowledge {
        kind: KnowledgeKindAst,
        text: Expr,
        embedding: Option<Expr>,
        labels: Option<Expr>,
        links: Vec<(Expr, Option<Ident>)>,
    },
    /// `EMIT type [TARGET expr] [{metadata}]`
    Emit {
        kind: Ident,
        target: Option<Expr>,
        metadata: Option<Expr>,
    },
    /// `CREATE TRIGGER name ON (CREATE|UPDATE|STATUS|CONNECT) type EMIT type [{metadata}]`
    CreateTrigger {
        name: Ident,
        on: Ident,
        kind: Ident,
        emit: Ident,
        metadata: Option<Expr>,
    },
    /// `DROP TRIGGER name`
    DropTrigger {
        name: Ident,
    },
    /// `CREATE TOKEN "name" [EXPIRES expr]`
    CreateToken {
        name: Expr,
        expires: Option<Expr>,
    },
    /// `REVOKE TOKEN expr`
    RevokeToken {
        target: Expr,
    },
    /// `DEFINE SCHEMA type {json schema}` (a map literal or a parameter)
    DefineSchema {
        kind: Ident,
        schema: Expr,
    },
    /// `DROP SCHEMA type`
    DropSchema {
        kind: Ident,
    },
    /// `SHOW SCHEMA type`
    ShowSchema {
        kind: Ident,
    },
    /// `CREATE TYPE (THING|CONNECTION|EVENT) name`
    CreateType {
        kind: Ident,
        name: Ident,
    },
    /// `LET $name = expr` or `LET $name = statement` (a statement's value:
    /// the id it created, or its single value)
    Let {
        var: Ident,
        value: LetValue,
    },
    /// `MATCH …`
    Match(Box<Query>),
    /// `EVENTS [WHERE expr] [SINCE expr] [UNTIL expr] [LIMIT expr]`
    Events {
        filter: Option<Expr>,
        since: Option<Expr>,
        until: Option<Expr>,
        limit: Option<Expr>,
    },
    /// `SEARCH THINGS expr [WHERE expr] [LIMIT expr] [THEN MATCH …]` or
    /// `SEARCH KNOWLEDGE NEAREST expr K expr [WHERE expr] [RETURN items] [THEN MATCH …]`
    Search(Box<Search>),
    /// `SHOW ORGS|USAGE|TYPES|TRIGGERS|PEOPLE|TOKENS`
    Show(Ident),
    /// `WHOAMI`
    WhoAmI,
    /// `EXPLAIN statement` / `PROFILE statement`
    Explain {
        statement: Box<Statement>,
        profile: bool,
    },
    Begin,
    Commit,
    Rollback,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LetValue {
    Expr(Expr),
    Statement(Box<Statement>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnowledgeKindAst {
    Chunk,
    Label,
}

/// One `SET` item of `UPDATE`.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// `name = expr`
    Name(Expr),
    /// `properties = expr` (replaces the map)
    Properties(Expr),
    /// `properties.a.b = expr`
    Property(Vec<Ident>, Expr),
    /// `STATUS status`
    Status(Ident),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Comma-separated patterns after `MATCH`.
    pub patterns: Vec<Pattern>,
    pub filter: Option<Expr>,
    pub ret: Return,
    pub order: Vec<(Expr, bool)>,
    pub skip: Option<Expr>,
    pub limit: Option<Expr>,
    pub span: Span,
}

/// `[var =] [SHORTEST] (node) {-[rel]- (node)}`
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub path_var: Option<Ident>,
    pub shortest: bool,
    pub start: NodePattern,
    pub steps: Vec<(RelPattern, NodePattern)>,
    pub span: Span,
}

/// `(var:label {key: expr, …})`, each part optional.
#[derive(Debug, Clone, PartialEq)]
pub struct NodePattern {
    pub var: Option<Ident>,
    pub label: Option<Ident>,
    pub props: Vec<(Ident, Expr)>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelDirection {
    /// `-[…]->`
    Out,
    /// `<-[…]-`
    In,
    /// `-[…]-`
    Both,
}

/// `-[var:type|type *min..max AT expr]->`; every part optional (`-->`,
/// `-[]->`, `-[:t]->` are all fine).
#[derive(Debug, Clone, PartialEq)]
pub struct RelPattern {
    pub var: Option<Ident>,
    pub types: Vec<Ident>,
    pub dir: RelDirection,
    /// Some for variable length: `*` (1..), `*n`, `*n..`, `*..m`, `*n..m`.
    pub hops: Option<Hops>,
    pub at: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hops {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Return {
    pub distinct: bool,
    /// `expr [AS alias]`; `*` is not supported.
    pub items: Vec<(Expr, Option<Ident>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub target: SearchTarget,
    pub filter: Option<Expr>,
    pub ret: Option<Return>,
    pub limit: Option<Expr>,
    /// `THEN MATCH …`: the hits feed the pattern (first node variable).
    pub then: Option<Box<Query>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchTarget {
    /// `THINGS "text"`
    Things(Expr),
    /// `KNOWLEDGE NEAREST expr K expr`
    Knowledge { vector: Expr, k: Expr },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `$name`
    Param(String),
    /// A pattern variable or a bare word such as `labels` in `"x" IN labels`.
    Var(String),
    /// `expr.name`
    Prop(Box<Expr>, Ident),
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{key: expr, …}`
    Map(Vec<(Ident, Expr)>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `name([DISTINCT] args)`, and `count(*)` as Call with `star`.
    Call {
        name: Ident,
        distinct: bool,
        star: bool,
        args: Vec<Expr>,
    },
    /// `expr IS [NOT] NULL`
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

/// Binary operators, loosest first: OR; AND; = <> < <= > >= IN CONTAINS
/// STARTS WITH ENDS WITH; + -; * / %.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::In => "IN",
            BinaryOp::Contains => "CONTAINS",
            BinaryOp::StartsWith => "STARTS WITH",
            BinaryOp::EndsWith => "ENDS WITH",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
        }
    }

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge
            | BinaryOp::In
            | BinaryOp::Contains
            | BinaryOp::StartsWith
            | BinaryOp::EndsWith => 4,
            BinaryOp::Add | BinaryOp::Sub => 5,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 6,
        }
    }
}
