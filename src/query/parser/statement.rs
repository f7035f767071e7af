//! Statement productions. `simple_statement` dispatches on the first word
//! (and `create_statement` on the second), so each production commits to
//! its own errors after its leading keywords.

use nom::Parser;

use crate::query::ast::{
    Assignment, Expr, ExprKind, Ident, KnowledgeKindAst, LetValue, Span, Statement, StatementKind,
};

use super::expr::{endpoint, expr, map_or_parameter, property_name};
use super::input::{Expect, In, PError, PResult, commit};
use super::lexer::{
    STATEMENT_WORDS, clause, comma_list, identifier, keyword, kw, parameter, peek_word, punct,
    punctuation, skip,
};
use super::pattern::{limit_clause, query, search, where_clause};

/// `statement ::= explain_statement | let_statement | simple_statement`
///
/// Statements come out boxed: a `StatementKind` is large, and a box keeps
/// the frames of the statement productions (which stay on the stack while
/// nested expressions are parsed) small.
pub(crate) fn statement(i: In) -> PResult<Box<Statement>> {
    let production = match peek_word(i).as_str() {
        "EXPLAIN" | "PROFILE" => explain_statement,
        "LET" => let_statement,
        _ => simple_statement,
    };
    production(i)
}

/// `explain_statement ::= ("EXPLAIN" | "PROFILE") (let_statement | simple_statement)`
#[inline(never)]
pub(crate) fn explain_statement(i: In) -> PResult<Box<Statement>> {
    let i = skip(i);
    let start = i.offset();
    let profile = peek_word(i) == "PROFILE";
    let (i, _) = keyword(i, if profile { "PROFILE" } else { "EXPLAIN" })?;
    let inner = if peek_word(i) == "LET" {
        let_statement
    } else {
        simple_statement
    };
    let (i, statement) = commit(inner(i))?;
    let kind = StatementKind::Explain { statement, profile };
    Ok((i, spanned(i, kind, start)))
}

/// `let_statement ::= "LET" parameter "=" (simple_statement | expr)`
#[inline(never)]
pub(crate) fn let_statement(i: In) -> PResult<Box<Statement>> {
    let i = skip(i);
    let start = i.offset();
    let (i, _) = keyword(i, "LET")?;
    commit((|| {
        let (i, var) = parameter(i)?;
        let (i, _) = punctuation(i, "=")?;
        let word = peek_word(i);
        let (i, value) = if STATEMENT_WORDS.contains(&word.as_str()) {
            let (i, s) = simple_statement(i)?;
            (i, LetValue::Statement(s))
        } else {
            let (i, e) = expr(i)?;
            (i, LetValue::Expr(e))
        };
        Ok((i, spanned(i, StatementKind::Let { var, value }, start)))
    })())
}

/// `simple_statement ::= create_statement | alter_org | set_limits
///     | remove_person | revoke_token | use_org | update_statement | set_status
///     | delete | connect | disconnect | emit | define_schema | drop_statement
///     | match_statement | events | search_statement | show | whoami
///     | transaction`
#[inline(never)]
pub(crate) fn simple_statement(i: In) -> PResult<Box<Statement>> {
    let i = skip(i);
    let start = i.offset();
    let production: fn(In) -> PResult<StatementKind> = match peek_word(i).as_str() {
        "CREATE" => create_statement,
        "ALTER" => alter_org,
        "SET" => set_limits,
        "REMOVE" => remove_person,
        "REVOKE" => revoke_token,
        "USE" => use_org,
        "UPDATE" => update_statement,
        "PUBLISH" | "ARCHIVE" | "ACTIVATE" | "DEACTIVATE" => set_status,
        "DELETE" => delete,
        "CONNECT" => connect,
        "DISCONNECT" => disconnect,
        "EMIT" => emit,
        "DEFINE" => define_schema,
        "DROP" => drop_statement,
        "MATCH" => match_statement,
        "EVENTS" => events,
        "SEARCH" => search_statement,
        "SHOW" => show,
        "WHOAMI" => whoami,
        "BEGIN" | "COMMIT" | "ROLLBACK" => transaction,
        _ => return Err(PError::expected(i, Expect::What("a statement"))),
    };
    // One call site: one (large) result slot in this frame.
    let (i, kind) = production(i)?;
    Ok((i, spanned(i, kind, start)))
}

fn spanned(i: In, kind: StatementKind, start: usize) -> Box<Statement> {
    Box::new(Statement {
        kind,
        span: i.span_from(start),
    })
}

/// `create_statement ::= create_org | create_person | create_thing
///     | create_knowledge | create_trigger | create_type | create_token`
pub(crate) fn create_statement(i: In) -> PResult<StatementKind> {
    let (after, _) = keyword(i, "CREATE")?;
    match peek_word(after).as_str() {
        "ORG" => create_org(i),
        "PERSON" => create_person(i),
        "THING" => create_thing(i),
        "KNOWLEDGE" => create_knowledge(i),
        "TRIGGER" => create_trigger(i),
        "TYPE" => create_type(i),
        "TOKEN" => create_token(i),
        _ => Err(PError::expected_any(
            skip(after),
            &[
                "ORG",
                "PERSON",
                "THING",
                "KNOWLEDGE",
                "TRIGGER",
                "TYPE",
                "TOKEN",
            ]
            .map(Expect::Token),
        )),
    }
}

/// `create_org ::= "CREATE" "ORG" identifier "NAME" expr ("PLAN" identifier)?`
pub(crate) fn create_org(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("ORG")).parse(i)?;
    commit((|| {
        let (i, slug) = identifier(i)?;
        let (i, _) = keyword(i, "NAME")?;
        let (i, name) = expr(i)?;
        let (i, plan) = clause(i, "PLAN", identifier)?;
        Ok((i, StatementKind::CreateOrg { slug, name, plan }))
    })())
}

/// `alter_org ::= "ALTER" "ORG" identifier "SET" org_setting ("," org_setting)*`
pub(crate) fn alter_org(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("ALTER"), kw("ORG")).parse(i)?;
    commit((|| {
        let (i, slug) = identifier(i)?;
        let (i, _) = keyword(i, "SET")?;
        let (i, sets) = comma_list(i, org_setting)?;
        Ok((i, StatementKind::AlterOrg { slug, sets }))
    })())
}

/// `org_setting ::= identifier "=" expr` (name, plan, status, settings:
/// checked by the analyzer)
pub(crate) fn org_setting(i: In) -> PResult<(Ident, Expr)> {
    let (i, field) = identifier(i)?;
    let (i, _) = commit(punctuation(i, "="))?;
    let (i, value) = commit(expr(i))?;
    Ok((i, (field, value)))
}

/// `set_limits ::= "SET" "LIMITS" "ON" "ORG" identifier map_or_parameter`
pub(crate) fn set_limits(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("SET"), kw("LIMITS")).parse(i)?;
    commit((|| {
        let (i, _) = (kw("ON"), kw("ORG")).parse(i)?;
        let (i, org) = identifier(i)?;
        let (i, limits) = map_or_parameter(i)?;
        Ok((i, StatementKind::SetLimits { org, limits }))
    })())
}

/// `create_person ::= "CREATE" "PERSON" expr "NAME" expr "ROLE" identifier
///     ("IN" "ORG" identifier)? ("PASSWORD" expr)?`
pub(crate) fn create_person(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("PERSON")).parse(i)?;
    commit((|| {
        let (i, email) = expr(i)?;
        let (i, _) = keyword(i, "NAME")?;
        let (i, name) = expr(i)?;
        let (i, _) = keyword(i, "ROLE")?;
        let (i, role) = identifier(i)?;
        let (i, org) = clause(i, "IN", |i| {
            let (i, _) = keyword(i, "ORG")?;
            identifier(i)
        })?;
        let (i, password) = clause(i, "PASSWORD", expr)?;
        let kind = StatementKind::CreatePerson {
            email,
            name,
            role,
            org,
            password,
        };
        Ok((i, kind))
    })())
}

/// `remove_person ::= "REMOVE" "PERSON" expr`
pub(crate) fn remove_person(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "REMOVE")?;
    let (i, _) = commit(keyword(i, "PERSON"))?;
    let (i, target) = commit(expr(i))?;
    Ok((i, StatementKind::RemovePerson { target }))
}

/// `use_org ::= "USE" ("ORG" identifier | "PLATFORM")`
pub(crate) fn use_org(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "USE")?;
    match peek_word(i).as_str() {
        "PLATFORM" => {
            let (i, _) = keyword(i, "PLATFORM")?;
            Ok((i, StatementKind::UseOrg { slug: None }))
        }
        "ORG" => {
            let (i, _) = keyword(i, "ORG")?;
            let (i, slug) = commit(identifier(i))?;
            Ok((i, StatementKind::UseOrg { slug: Some(slug) }))
        }
        _ => commit(Err(PError::expected_any(
            skip(i),
            &[Expect::Token("ORG"), Expect::Token("PLATFORM")],
        ))),
    }
}

/// `create_thing ::= "CREATE" "THING" identifier expr map_or_parameter?`
pub(crate) fn create_thing(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("THING")).parse(i)?;
    commit((|| {
        let (i, kind) = identifier(i)?;
        let (i, name) = expr(i)?;
        let (i, properties) = optional_map(i)?;
        Ok((
            i,
            StatementKind::CreateThing {
                kind,
                name,
                properties,
            },
        ))
    })())
}

/// `map_or_parameter?`: present only if a `{` or `$` comes next.
fn optional_map(i: In) -> PResult<Option<Expr>> {
    if skip(i).rest.starts_with(['{', '$']) {
        let (i, e) = map_or_parameter(i)?;
        return Ok((i, Some(e)));
    }
    Ok((i, None))
}

/// `update_statement ::= "UPDATE" expr "SET" assignment ("," assignment)*`
///
/// A lone `SET STATUS s` is the `SetStatus` statement (not shorthand).
pub(crate) fn update_statement(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "UPDATE")?;
    commit((|| {
        let (i, target) = expr(i)?;
        let (i, _) = keyword(i, "SET")?;
        let (i, mut sets) = comma_list(i, assignment)?;
        if let [Assignment::Status(_)] = sets.as_slice()
            && let Some(Assignment::Status(status)) = sets.pop()
        {
            let kind = StatementKind::SetStatus {
                target,
                status,
                shorthand: false,
            };
            return Ok((i, kind));
        }
        Ok((i, StatementKind::Update { target, sets }))
    })())
}

/// `assignment ::= "STATUS" identifier | "NAME" "=" expr
///     | "PROPERTIES" ("." property_name)* "=" expr`
pub(crate) fn assignment(i: In) -> PResult<Assignment> {
    match peek_word(i).as_str() {
        "STATUS" => {
            let (i, _) = keyword(i, "STATUS")?;
            let (i, status) = commit(identifier(i))?;
            Ok((i, Assignment::Status(status)))
        }
        "NAME" => {
            let (i, _) = keyword(i, "NAME")?;
            let (i, value) = assigned_value(i)?;
            Ok((i, Assignment::Name(value)))
        }
        "PROPERTIES" => {
            let (mut i, _) = keyword(i, "PROPERTIES")?;
            let mut path = Vec::new();
            while let Ok((j, _)) = punctuation(i, ".") {
                let (j, key) = commit(property_name(j))?;
                path.push(key);
                i = j;
            }
            let (i, value) = assigned_value(i)?;
            if path.is_empty() {
                Ok((i, Assignment::Properties(value)))
            } else {
                Ok((i, Assignment::Property(path, value)))
            }
        }
        _ => Err(PError::expected_any(
            skip(i),
            &[
                Expect::Token("name"),
                Expect::Token("properties"),
                Expect::Token("STATUS"),
            ],
        )),
    }
}

/// `"=" expr`
fn assigned_value(i: In) -> PResult<Expr> {
    let (i, _) = commit(punctuation(i, "="))?;
    commit(expr(i))
}

/// `set_status ::= ("PUBLISH" | "ARCHIVE" | "ACTIVATE" | "DEACTIVATE") expr`
pub(crate) fn set_status(i: In) -> PResult<StatementKind> {
    let (word, status) = match peek_word(i).as_str() {
        "PUBLISH" => ("PUBLISH", "published"),
        "ARCHIVE" => ("ARCHIVE", "archived"),
        "ACTIVATE" => ("ACTIVATE", "active"),
        "DEACTIVATE" => ("DEACTIVATE", "inactive"),
        _ => return Err(PError::expected(skip(i), Expect::What("a statement"))),
    };
    let (i, span) = keyword(i, word)?;
    let (i, target) = commit(expr(i))?;
    let status = Ident {
        name: status.to_string(),
        span,
    };
    Ok((
        i,
        StatementKind::SetStatus {
            target,
            status,
            shorthand: true,
        },
    ))
}

/// `delete ::= "DELETE" expr`
pub(crate) fn delete(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "DELETE")?;
    let (i, target) = commit(expr(i))?;
    Ok((i, StatementKind::Delete { target }))
}

/// `connect ::= "CONNECT" endpoint "-" "[" identifier map_or_parameter? "]" "->"
///     endpoint ("STRENGTH" expr)? ("VALID" "FROM" expr)? ("UNTIL" expr)?`
pub(crate) fn connect(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "CONNECT")?;
    commit((|| {
        let (i, from) = endpoint(i)?;
        let (i, _) = (punct("-"), punct("[")).parse(i)?;
        let (i, kind) = identifier(i)?;
        let (i, metadata) = optional_map(i)?;
        let (i, _) = (punct("]"), punct("->")).parse(i)?;
        let (i, to) = endpoint(i)?;
        let (i, strength) = clause(i, "STRENGTH", expr)?;
        let (i, valid_from) = clause(i, "VALID", |i| {
            let (i, _) = keyword(i, "FROM")?;
            expr(i)
        })?;
        let (i, valid_to) = clause(i, "UNTIL", expr)?;
        let kind = StatementKind::Connect {
            from,
            kind,
            metadata,
            to,
            strength,
            valid_from,
            valid_to,
        };
        Ok((i, kind))
    })())
}

/// `disconnect ::= "DISCONNECT" endpoint "-" "[" identifier "]" "->" endpoint`
pub(crate) fn disconnect(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "DISCONNECT")?;
    commit((|| {
        let (i, from) = endpoint(i)?;
        let (i, _) = (punct("-"), punct("[")).parse(i)?;
        let (i, kind) = identifier(i)?;
        let (i, _) = (punct("]"), punct("->")).parse(i)?;
        let (i, to) = endpoint(i)?;
        Ok((i, StatementKind::Disconnect { from, kind, to }))
    })())
}

/// `create_knowledge ::= "CREATE" "KNOWLEDGE" ("CHUNK" | "LABEL") expr
///     ("EMBEDDING" expr)? ("LABELS" expr)? ("FOR" knowledge_link ("," knowledge_link)*)?`
pub(crate) fn create_knowledge(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("KNOWLEDGE")).parse(i)?;
    commit((|| {
        let (i, kind) = match peek_word(i).as_str() {
            "CHUNK" => (keyword(i, "CHUNK")?.0, KnowledgeKindAst::Chunk),
            "LABEL" => (keyword(i, "LABEL")?.0, KnowledgeKindAst::Label),
            _ => {
                return Err(PError::expected_any(
                    skip(i),
                    &[Expect::Token("CHUNK"), Expect::Token("LABEL")],
                ));
            }
        };
        let (i, text) = expr(i)?;
        let (i, embedding) = clause(i, "EMBEDDING", expr)?;
        let (i, labels) = clause(i, "LABELS", expr)?;
        let (i, links) = clause(i, "FOR", |i| comma_list(i, knowledge_link))?;
        let kind = StatementKind::CreateKnowledge {
            kind,
            text,
            embedding,
            labels,
            links: links.unwrap_or_default(),
        };
        Ok((i, kind))
    })())
}

/// `knowledge_link ::= expr ("AS" identifier)?`
pub(crate) fn knowledge_link(i: In) -> PResult<(Expr, Option<Ident>)> {
    let (i, target) = expr(i)?;
    let (i, role) = clause(i, "AS", identifier)?;
    Ok((i, (target, role)))
}

/// `emit ::= "EMIT" identifier ("TARGET" expr)? map_or_parameter?`
pub(crate) fn emit(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "EMIT")?;
    commit((|| {
        let (i, kind) = identifier(i)?;
        let (i, target) = clause(i, "TARGET", expr)?;
        let (i, metadata) = optional_map(i)?;
        Ok((
            i,
            StatementKind::Emit {
                kind,
                target,
                metadata,
            },
        ))
    })())
}

/// `create_trigger ::= "CREATE" "TRIGGER" identifier "ON" trigger_event
///     identifier "EMIT" identifier map_or_parameter?`
pub(crate) fn create_trigger(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("TRIGGER")).parse(i)?;
    commit((|| {
        let (i, name) = identifier(i)?;
        let (i, _) = keyword(i, "ON")?;
        let (i, on) = trigger_event(i)?;
        let (i, kind) = identifier(i)?;
        let (i, _) = keyword(i, "EMIT")?;
        let (i, emit) = identifier(i)?;
        let (i, metadata) = optional_map(i)?;
        let kind = StatementKind::CreateTrigger {
            name,
            on,
            kind,
            emit,
            metadata,
        };
        Ok((i, kind))
    })())
}

/// `trigger_event ::= "CREATE" | "UPDATE" | "STATUS" | "CONNECT"` (kept
/// lowercase in the tree)
pub(crate) fn trigger_event(i: In) -> PResult<Ident> {
    one_of_keywords(i, &["CREATE", "UPDATE", "STATUS", "CONNECT"])
}

/// `define_schema ::= "DEFINE" "SCHEMA" identifier map_or_parameter`
pub(crate) fn define_schema(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "DEFINE")?;
    commit((|| {
        let (i, _) = keyword(i, "SCHEMA")?;
        let (i, kind) = identifier(i)?;
        let (i, schema) = map_or_parameter(i)?;
        Ok((i, StatementKind::DefineSchema { kind, schema }))
    })())
}

/// `drop_statement ::= drop_trigger | drop_schema`
pub(crate) fn drop_statement(i: In) -> PResult<StatementKind> {
    let (after, _) = keyword(i, "DROP")?;
    match peek_word(after).as_str() {
        "TRIGGER" => drop_trigger(i),
        "SCHEMA" => drop_schema(i),
        _ => Err(PError::expected_any(
            skip(after),
            &["TRIGGER", "SCHEMA"].map(Expect::Token),
        )),
    }
}

/// `drop_schema ::= "DROP" "SCHEMA" identifier`
pub(crate) fn drop_schema(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("DROP"), kw("SCHEMA")).parse(i)?;
    let (i, kind) = commit(identifier(i))?;
    Ok((i, StatementKind::DropSchema { kind }))
}

/// `drop_trigger ::= "DROP" "TRIGGER" identifier`
pub(crate) fn drop_trigger(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "DROP")?;
    let (i, _) = commit(keyword(i, "TRIGGER"))?;
    let (i, name) = commit(identifier(i))?;
    Ok((i, StatementKind::DropTrigger { name }))
}

/// `create_type ::= "CREATE" "TYPE" type_kind identifier`
pub(crate) fn create_type(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("TYPE")).parse(i)?;
    commit((|| {
        let (i, kind) = type_kind(i)?;
        let (i, name) = identifier(i)?;
        Ok((i, StatementKind::CreateType { kind, name }))
    })())
}

/// `create_token ::= "CREATE" "TOKEN" expr ("EXPIRES" expr)?`
pub(crate) fn create_token(i: In) -> PResult<StatementKind> {
    let (i, _) = (kw("CREATE"), kw("TOKEN")).parse(i)?;
    commit((|| {
        let (i, name) = expr(i)?;
        let (i, expires) = clause(i, "EXPIRES", expr)?;
        Ok((i, StatementKind::CreateToken { name, expires }))
    })())
}

/// `revoke_token ::= "REVOKE" "TOKEN" (token_id | expr)`
pub(crate) fn revoke_token(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "REVOKE")?;
    let (i, _) = commit(keyword(i, "TOKEN"))?;
    let (i, target) = match token_id(i) {
        Ok(found) => found,
        Err(_) => commit(expr(i))?,
    };
    Ok((i, StatementKind::RevokeToken { target }))
}

/// `token_id ::= identifier` starting with `tok_`: a token's id as printed,
/// taken as its text (`REVOKE TOKEN tok_01J…`).
pub(crate) fn token_id(i: In) -> PResult<Expr> {
    let (j, word) = identifier(i)?;
    if !word.name.starts_with("tok_") {
        return Err(PError::expected(skip(i), Expect::What("a token id")));
    }
    let expr = Expr {
        kind: ExprKind::Str(word.name),
        span: word.span,
    };
    Ok((j, expr))
}

/// `type_kind ::= "THING" | "CONNECTION" | "EVENT"` (kept lowercase)
pub(crate) fn type_kind(i: In) -> PResult<Ident> {
    one_of_keywords(i, &["THING", "CONNECTION", "EVENT"])
}

/// `match_statement ::= query`
pub(crate) fn match_statement(i: In) -> PResult<StatementKind> {
    let (i, q) = query(i)?;
    Ok((i, StatementKind::Match(q)))
}

/// `events ::= "EVENTS" where_clause? ("SINCE" expr)? ("UNTIL" expr)? limit_clause?`
pub(crate) fn events(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "EVENTS")?;
    let (i, filter) = where_clause(i)?;
    let (i, since) = clause(i, "SINCE", expr)?;
    let (i, until) = clause(i, "UNTIL", expr)?;
    let (i, limit) = limit_clause(i)?;
    let kind = StatementKind::Events {
        filter,
        since,
        until,
        limit,
    };
    Ok((i, kind))
}

/// `search_statement ::= search`
pub(crate) fn search_statement(i: In) -> PResult<StatementKind> {
    let (i, s) = search(i)?;
    Ok((i, StatementKind::Search(s)))
}

/// `show ::= "SHOW" ("ORGS" | "USAGE" | "TYPES" | "TRIGGERS" | "PEOPLE"
///     | "TOKENS" | "SCHEMA" identifier)` (the word is kept lowercase)
pub(crate) fn show(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "SHOW")?;
    let (i, what) = commit(one_of_keywords(
        i,
        &[
            "ORGS", "USAGE", "TYPES", "TRIGGERS", "PEOPLE", "TOKENS", "SCHEMA",
        ],
    ))?;
    if what.name == "schema" {
        let (i, kind) = commit(identifier(i))?;
        return Ok((i, StatementKind::ShowSchema { kind }));
    }
    Ok((i, StatementKind::Show(what)))
}

/// `whoami ::= "WHOAMI"`
pub(crate) fn whoami(i: In) -> PResult<StatementKind> {
    let (i, _) = keyword(i, "WHOAMI")?;
    Ok((i, StatementKind::WhoAmI))
}

/// `transaction ::= "BEGIN" | "COMMIT" | "ROLLBACK"`
pub(crate) fn transaction(i: In) -> PResult<StatementKind> {
    let (i, word) = one_of_keywords(i, &["BEGIN", "COMMIT", "ROLLBACK"])?;
    let kind = match word.name.as_str() {
        "begin" => StatementKind::Begin,
        "commit" => StatementKind::Commit,
        _ => StatementKind::Rollback,
    };
    Ok((i, kind))
}

/// One of `words`, as a lowercase `Ident` with the keyword's span.
fn one_of_keywords<'a>(i: In<'a>, words: &[&'static str]) -> PResult<'a, Ident> {
    let word = peek_word(i);
    match words.iter().find(|w| **w == word) {
        Some(w) => {
            let (j, span): (In, Span) = keyword(i, w)?;
            let ident = Ident {
                name: w.to_ascii_lowercase(),
                span,
            };
            Ok((j, ident))
        }
        None => {
            let expected: Vec<Expect> = words.iter().map(|w| Expect::Token(w)).collect();
            Err(PError::expected_any(skip(i), &expected))
        }
    }
}
