//! The OQL parser, printer and script splitter through the public API:
//! DESIGN.md's examples parse; canonical printing; round trips; error
//! positions and messages; limits at and past each bound (P2); literals
//! that keep their contents (P3); and property tests that nothing panics
//! (P1).

// Test helpers fail by panicking: that is a failed test, not a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufReader, Read};
use std::thread;
use std::time::{Duration, Instant};

use onedb::ErrorCode;
use onedb::query::ast::{
    Assignment, BinaryOp, Expr, ExprKind, Hops, LetValue, RelDirection, Statement, StatementKind,
    UnaryOp,
};
use onedb::query::parser::{
    Limits, MAX_DEPTH, MAX_LITERAL_BYTES, MAX_NODES, MAX_STATEMENT_BYTES, parse_statement,
    parse_statement_with,
};
use onedb::query::script::ScriptReader;
use proptest::prelude::*;

/// The "OQL by example" block of DESIGN.md, verbatim.
const DESIGN_EXAMPLES: &str = r#"
-- platform administration (platform_owner only)
CREATE ORG acme NAME "Acme Inc" PLAN pro;
SET LIMITS ON ORG acme {things: 10000, people: 50};
LET $alice = CREATE PERSON "alice@acme.io" NAME "Alice" ROLE org_owner IN ORG acme PASSWORD "s3cret-pass";
SHOW ORGS;
USE ORG acme;                         -- later statements run inside acme

-- things (the current org is implicit; the actor is the current person, $me)
LET $course = CREATE THING course "Rust for Beginners" {level: "beginner", price: 49};
UPDATE $course SET name = "Rust for Everyone", properties.price = 39;
UPDATE $course SET STATUS active;     -- lifecycle: draft -> active -> published -> archived
PUBLISH $course;                      -- shorthand for SET STATUS published
LET $old = CREATE THING blog_post "Draft notes" {};
ARCHIVE $old;
DELETE $old;                          -- gone from queries; its events stay

-- connections (temporal validity; metadata is a map)
LET $l = CREATE THING lesson "Ownership" {};
CONNECT $l -[part_of {order: 1}]-> $course VALID FROM "2025-01-01";
CONNECT $alice -[owns]-> $course VALID FROM "2025-01-01" UNTIL "2030-01-01";
LET $a = CREATE THING creator "Ada" {};
LET $b = CREATE THING creator "Grace" {};
CONNECT $a -[following]-> $b;
CONNECT $b -[authored]-> $course;
MATCH (p:person {email: "alice@acme.io"})-[:owns]->(c:course) RETURN c.id, c.name;
DISCONNECT $alice -[owns]-> $course;  -- ends its validity now; history stays

-- knowledge (labels and chunks with embeddings, linked to things)
CREATE KNOWLEDGE CHUNK "Ownership moves values between bindings." EMBEDDING [0.12, -0.5, 0.33] LABELS ["rust", "memory"] FOR $l;
CREATE KNOWLEDGE LABEL "beginner" FOR $course;

-- events: written by the engine for every mutation; custom ones too
EMIT payment_event TARGET $course {protocol: "stripe", amount: 39};
CREATE TRIGGER enroll_mail ON CONNECT enrolled_in EMIT communication_event {channel: "email"};
CONNECT $a -[enrolled_in]-> $course;  -- also writes a communication_event

-- reading
MATCH (c:course) WHERE c.status = "published" RETURN c.name, c.properties.price ORDER BY c.name LIMIT 10;
MATCH (x)-[:following*1..2]->(y)-[:authored]->(c:course) WHERE x.id = $a RETURN DISTINCT c.name;
MATCH (c:course)<-[:part_of AT "2026-06-01"]-(l:lesson) RETURN c.name, count(l) AS lessons;
MATCH (c:course) RETURN c.name, connections(c);   -- each thing with its current connections
MATCH p = SHORTEST (x)-[:following*..6]-(y) WHERE x.id = $a AND y.id = $b RETURN length(p), nodes(p);
SEARCH THINGS "rust everyone" WHERE type = "course" AND status = "published" LIMIT 10;
LET $q = [0.1, -0.4, 0.3];
SEARCH KNOWLEDGE NEAREST $q K 5 WHERE "rust" IN labels RETURN text, source, score;
SEARCH KNOWLEDGE NEAREST $q K 20 THEN MATCH (k)-[:about]->(t) RETURN DISTINCT t.name;
EVENTS WHERE target = $course AND type = "entity_updated" SINCE "2025-01-01" UNTIL "2030-01-01" LIMIT 20;
SHOW USAGE; SHOW TYPES; WHOAMI;
EXPLAIN MATCH (c:course) WHERE c.status = "published" RETURN c;
PROFILE MATCH (c:course)<-[:part_of]-(l:lesson) RETURN c.name, count(l);
BEGIN;
LET $t1 = CREATE THING task "one" {};
LET $t2 = CREATE THING task "two" {};
CONNECT $t1 -[references]-> $t2;
COMMIT;
"#;

/// Each statement of the DESIGN.md block, with its line in the block.
fn design_statements() -> Vec<(String, u32)> {
    ScriptReader::new(DESIGN_EXAMPLES.as_bytes())
        .map(|s| {
            let s = s.expect("the examples split");
            (s.text, s.line)
        })
        .collect()
}

fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} does not parse: {e} at {:?}", e.position),
    }
}

/// Canonical text of a statement.
fn canon(text: &str) -> String {
    parse(text).to_string()
}

/// `Debug` of a tree without its spans, to compare trees of different texts.
fn without_spans(statement: &Statement) -> String {
    let debug = format!("{statement:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(at) = rest.find("span: Span {") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let close = after.find('}').expect("a span closes");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// print(parse(s)) is a fixed point and parses back to the same tree.
fn assert_round_trip(text: &str) {
    let first = parse(text);
    let printed = first.to_string();
    let second = match parse_statement(&printed) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} printed as {printed:?}, which does not parse: {e}"),
    };
    assert_eq!(
        second.to_string(),
        printed,
        "printing {text:?} is not stable"
    );
    assert_eq!(
        without_spans(&second),
        without_spans(&first),
        "{text:?} vs {printed:?}"
    );
}

fn filter_of(statement: &Statement) -> &Expr {
    match &statement.kind {
        StatementKind::Match(q) => q.filter.as_ref().expect("a WHERE"),
        other => panic!("not a MATCH: {other:?}"),
    }
}

fn let_expr(text: &str) -> Expr {
    match parse(text).kind {
        StatementKind::Let {
            value: LetValue::Expr(e),
            ..
        } => e,
        other => panic!("not LET $x = expr: {other:?}"),
    }
}

fn code_of(text: &str) -> ErrorCode {
    parse_statement(text).map(|_| ()).unwrap_err().code
}

// (a) ---------------------------------------------------------------------

#[test]
fn every_design_example_parses() {
    let statements = design_statements();
    assert_eq!(statements.len(), 46);
    for (text, line) in &statements {
        if let Err(e) = parse_statement(text) {
            panic!("DESIGN.md example at block line {line}: {text:?}: {e}");
        }
    }
}

/// Every production of grammar/oql.ebnf is a parser function of the same
/// name (STYLE.md), so the grammar cannot drift from the code unnoticed.
#[test]
fn every_grammar_production_has_its_parser_function() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let grammar = std::fs::read_to_string(root.join("grammar/oql.ebnf")).unwrap();
    let mut code = String::new();
    for entry in std::fs::read_dir(root.join("src/query/parser")).unwrap() {
        code += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
    }
    // Character-level rules that the lexer functions implement inline.
    let inline = ["digits", "whitespace", "comment", "reserved_word"];
    let mut productions = 0;
    for line in grammar.lines() {
        // Productions start in the first column; the header's examples do not.
        let Some((name, _)) = line.split_once("::=") else {
            continue;
        };
        let name = name.trim_end();
        if name.is_empty() || name.starts_with(' ') || inline.contains(&name) {
            continue;
        }
        productions += 1;
        assert!(
            code.contains(&format!("fn {name}(")) || code.contains(&format!("fn {name}<")),
            "grammar production {name} has no parser function"
        );
    }
    assert!(productions > 60, "{productions}");
}

// (b) ---------------------------------------------------------------------

#[test]
fn design_examples_print_canonically() {
    let golden = [
        (
            "create org acme name \"Acme Inc\" plan pro",
            "CREATE ORG acme NAME \"Acme Inc\" PLAN pro",
        ),
        (
            "SET LIMITS ON ORG acme {things: 10000,people:50}",
            "SET LIMITS ON ORG acme {things: 10000, people: 50}",
        ),
        (
            "UPDATE $course SET name = \"Rust for Everyone\", properties.price = 39;",
            "UPDATE $course SET name = \"Rust for Everyone\", properties.price = 39",
        ),
        (
            "UPDATE $course SET STATUS active",
            "UPDATE $course SET STATUS active",
        ),
        ("publish $course", "PUBLISH $course"),
        ("Archive $old", "ARCHIVE $old"),
        ("activate $x", "ACTIVATE $x"),
        ("DEACTIVATE $x", "DEACTIVATE $x"),
        (
            "CONNECT $l -[ part_of {order: 1} ]-> $course VALID FROM \"2025-01-01\"",
            "CONNECT $l -[part_of {order: 1}]-> $course VALID FROM \"2025-01-01\"",
        ),
        (
            "MATCH (p:person {email: \"alice@acme.io\"})-[:owns]->(c:course) RETURN c.id, c.name",
            "MATCH (p:person {email: \"alice@acme.io\"})-[:owns]->(c:course) RETURN c.id, c.name",
        ),
        (
            "CREATE KNOWLEDGE CHUNK \"x\" EMBEDDING [0.12, -0.5, 0.33] LABELS [\"rust\"] FOR $l",
            "CREATE KNOWLEDGE CHUNK \"x\" EMBEDDING [0.12, -0.5, 0.33] LABELS [\"rust\"] FOR $l",
        ),
        (
            "create trigger t on connect enrolled_in emit communication_event {channel: \"email\"}",
            "CREATE TRIGGER t ON CONNECT enrolled_in EMIT communication_event {channel: \"email\"}",
        ),
        (
            "MATCH (x)-[:following*1..2]->(y) WHERE x.id = $a RETURN DISTINCT c.name",
            "MATCH (x)-[:following*1..2]->(y) WHERE x.id = $a RETURN DISTINCT c.name",
        ),
        (
            "MATCH p = SHORTEST (x)-[:following*..6]-(y) RETURN length(p), nodes(p)",
            "MATCH p = SHORTEST (x)-[:following*..6]-(y) RETURN length(p), nodes(p)",
        ),
        (
            "SEARCH KNOWLEDGE NEAREST $q K 20 THEN MATCH (k)-[:about]->(t) RETURN DISTINCT t.name",
            "SEARCH KNOWLEDGE NEAREST $q K 20 THEN MATCH (k)-[:about]->(t) RETURN DISTINCT t.name",
        ),
        (
            "events where target = $course since \"2025-01-01\" until \"2030\" limit 20",
            "EVENTS WHERE target = $course SINCE \"2025-01-01\" UNTIL \"2030\" LIMIT 20",
        ),
        ("show usage", "SHOW USAGE"),
        ("whoami;", "WHOAMI"),
        ("  begin  ; -- go", "BEGIN"),
    ];
    for (input, expected) in golden {
        assert_eq!(canon(input), expected, "for {input:?}");
    }
}

#[test]
fn every_statement_of_the_syntax_tree_prints_canonically() {
    let golden = [
        ("CREATE ORG acme NAME $n", "CREATE ORG acme NAME $n"),
        (
            "ALTER ORG acme SET name = \"A\", plan = \"team\"",
            "ALTER ORG acme SET name = \"A\", plan = \"team\"",
        ),
        (
            "SET LIMITS ON ORG acme $limits",
            "SET LIMITS ON ORG acme $limits",
        ),
        (
            "CREATE PERSON $e NAME \"B\" ROLE editor",
            "CREATE PERSON $e NAME \"B\" ROLE editor",
        ),
        ("REMOVE PERSON \"b@x.io\"", "REMOVE PERSON \"b@x.io\""),
        ("USE PLATFORM", "USE PLATFORM"),
        (
            "CREATE THING course \"Rust\"",
            "CREATE THING course \"Rust\"",
        ),
        (
            "CREATE THING course \"Rust\" $props",
            "CREATE THING course \"Rust\" $props",
        ),
        (
            "UPDATE $c SET properties = {a: 1}, STATUS active, properties.a.b = 2",
            "UPDATE $c SET properties = {a: 1}, STATUS active, properties.a.b = 2",
        ),
        ("DELETE $c", "DELETE $c"),
        (
            "CONNECT $a -[owns $meta]-> ($b) STRENGTH 0.5 UNTIL 1767225600000",
            "CONNECT $a -[owns $meta]-> $b STRENGTH 0.5 UNTIL 1767225600000",
        ),
        (
            "DISCONNECT $a.id -[owns]-> $b",
            "DISCONNECT $a.id -[owns]-> $b",
        ),
        (
            "CREATE KNOWLEDGE LABEL \"x\" FOR $a AS about, $b",
            "CREATE KNOWLEDGE LABEL \"x\" FOR $a AS about, $b",
        ),
        ("EMIT payment_event", "EMIT payment_event"),
        ("EMIT payment_event $m", "EMIT payment_event $m"),
        (
            "CREATE TRIGGER t ON status course EMIT x",
            "CREATE TRIGGER t ON STATUS course EMIT x",
        ),
        ("DROP TRIGGER t", "DROP TRIGGER t"),
        (
            "create type connection mentors",
            "CREATE TYPE CONNECTION mentors",
        ),
        ("LET $n = 1 + 2", "LET $n = 1 + 2"),
        ("EVENTS", "EVENTS"),
        (
            "SEARCH THINGS $text RETURN name LIMIT 5 THEN MATCH (t) RETURN t",
            "SEARCH THINGS $text RETURN name LIMIT 5 THEN MATCH (t) RETURN t",
        ),
        ("SHOW PEOPLE", "SHOW PEOPLE"),
        ("SHOW triggers", "SHOW TRIGGERS"),
        ("ROLLBACK", "ROLLBACK"),
        (
            "PROFILE LET $x = MATCH (a) RETURN a",
            "PROFILE LET $x = MATCH (a) RETURN a",
        ),
        (
            "MATCH (a), (b:x)-[r:t1|t2*2]-(c) RETURN a ORDER BY a.x ASC, b DESC SKIP 5 LIMIT 10",
            "MATCH (a), (b:x)-[r:t1|t2*2]-(c) RETURN a ORDER BY a.x, b DESC SKIP 5 LIMIT 10",
        ),
        (
            "MATCH ()-[]->({name: \"x\"})<-[*]-(:t) RETURN 1",
            "MATCH ()-[]->({name: \"x\"})<-[*]-(:t) RETURN 1",
        ),
        (
            "MATCH (a)-[AT 5]->(b) RETURN a",
            "MATCH (a)-[AT 5]->(b) RETURN a",
        ),
        (
            "MATCH (a)-[*3..]->(b) RETURN a",
            "MATCH (a)-[*3..]->(b) RETURN a",
        ),
    ];
    for (input, expected) in golden {
        assert_eq!(canon(input), expected, "for {input:?}");
        assert_round_trip(input);
    }
}

#[test]
fn expressions_print_with_only_the_parentheses_they_need() {
    let golden = [
        ("a OR b AND c", "a OR b AND c"),
        ("(a OR b) AND c", "(a OR b) AND c"),
        ("((a))", "a"),
        ("NOT a = 1 AND b", "NOT a = 1 AND b"),
        ("NOT (a AND b)", "NOT (a AND b)"),
        ("not not a", "NOT NOT a"),
        ("a = (NOT b)", "a = (NOT b)"),
        ("1 - 2 - 3", "1 - 2 - 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("1 + 2 * 3 % 4 / 5", "1 + 2 * 3 % 4 / 5"),
        ("- -x", "-(-x)"),
        ("-(-1)", "-(-1)"),
        ("-a.b", "-a.b"),
        ("(-a).b", "(-a).b"),
        ("-2 * 3", "-2 * 3"),
        ("-(2 * 3)", "-(2 * 3)"),
        ("a<-1", "a < -1"),
        ("x IS NULL", "x IS NULL"),
        ("x.y is not null AND y", "x.y IS NOT NULL AND y"),
        ("(a = b) IS NULL", "a = b IS NULL"),
        ("a = (b IS NULL)", "a = (b IS NULL)"),
        ("a <> b AND a != c", "a <> b AND a <> c"),
        (
            "a <= b OR a >= c OR a < d OR a > e",
            "a <= b OR a >= c OR a < d OR a > e",
        ),
        ("\"rust\" IN labels", "\"rust\" IN labels"),
        (
            "name STARTS WITH \"a\" OR name ENDS WITH \"b\" OR name CONTAINS \"c\"",
            "name STARTS WITH \"a\" OR name ENDS WITH \"b\" OR name CONTAINS \"c\"",
        ),
        ("count(DISTINCT x)", "count(DISTINCT x)"),
        ("count( * )", "count(*)"),
        ("f()", "f()"),
        (
            "[1, [], {}, {a: [2]}, null, TRUE, false]",
            "[1, [], {}, {a: [2]}, NULL, TRUE, FALSE]",
        ),
        ("{match: 1, set: c.match}", "{match: 1, set: c.match}"),
        ("1.5", "1.5"),
        ("1e3", "1000.0"),
        ("1.0", "1.0"),
        ("0.1", "0.1"),
        ("1E300", "1e300"),
        ("2.5e-8", "2.5e-8"),
        ("1.x", "1.x"),
        (
            "\"a\\\"b\\\\c\\nd\\te\\r\\u{1F600}\\u{0}\"",
            "\"a\\\"b\\\\c\\nd\\te\\r😀\\u{0}\"",
        ),
        ("$me.name", "$me.name"),
        ("ORDERS", "ORDERS"),
    ];
    for (input, expected) in golden {
        let text = format!("LET $x = {input}");
        assert_eq!(
            canon(&text),
            format!("LET $x = {expected}"),
            "for {input:?}"
        );
        assert_round_trip(&text);
    }
}

#[test]
fn operator_precedence_and_structure() {
    let e = filter_of(&parse("MATCH (a) WHERE a OR b AND c RETURN a")).clone();
    let ExprKind::Binary(BinaryOp::Or, left, right) = e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(left.kind, ExprKind::Var("a".into()));
    assert!(matches!(right.kind, ExprKind::Binary(BinaryOp::And, _, _)));

    let e = let_expr("LET $x = NOT a AND b");
    let ExprKind::Binary(BinaryOp::And, left, _) = e.kind else {
        panic!("{e:?}")
    };
    assert!(matches!(left.kind, ExprKind::Unary(UnaryOp::Not, _)));

    let e = let_expr("LET $x = NOT a = 1");
    let ExprKind::Unary(UnaryOp::Not, inner) = e.kind else {
        panic!("{e:?}")
    };
    assert!(matches!(inner.kind, ExprKind::Binary(BinaryOp::Eq, _, _)));

    let e = let_expr("LET $x = \"rust\" IN labels");
    assert_eq!(
        e.kind,
        ExprKind::Binary(
            BinaryOp::In,
            Box::new(Expr {
                kind: ExprKind::Str("rust".into()),
                span: span(9, 15)
            }),
            Box::new(Expr {
                kind: ExprKind::Var("labels".into()),
                span: span(19, 25)
            }),
        )
    );

    // `-` is a unary operator, not part of the number.
    let e = let_expr("LET $x = -2");
    assert!(matches!(e.kind, ExprKind::Unary(UnaryOp::Neg, ref n) if n.kind == ExprKind::Int(2)));

    let e = let_expr("LET $x = count(DISTINCT x)");
    let ExprKind::Call {
        name,
        distinct,
        star,
        args,
    } = e.kind
    else {
        panic!()
    };
    assert_eq!(
        (name.name.as_str(), distinct, star, args.len()),
        ("count", true, false, 1)
    );
    let e = let_expr("LET $x = count(*)");
    let ExprKind::Call {
        distinct,
        star,
        args,
        ..
    } = e.kind
    else {
        panic!()
    };
    assert_eq!((distinct, star, args.len()), (false, true, 0));
}

fn span(start: usize, end: usize) -> onedb::query::ast::Span {
    onedb::query::ast::Span::new(start, end)
}

#[test]
fn patterns_have_the_right_shape() {
    let s = parse("MATCH (c:course)<-[:part_of AT \"2026-06-01\"]-(l:lesson) RETURN c");
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    let (rel, node) = &q.patterns[0].steps[0];
    assert_eq!(rel.dir, RelDirection::In);
    assert_eq!(rel.types[0].name, "part_of");
    assert_eq!(
        rel.at.as_ref().map(|e| &e.kind),
        Some(&ExprKind::Str("2026-06-01".into()))
    );
    assert_eq!(node.label.as_ref().map(|l| l.name.as_str()), Some("lesson"));

    let s = parse("MATCH (a)-[:part_of AT \"2026-06-01\"]-(b) RETURN a");
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    assert_eq!(q.patterns[0].steps[0].0.dir, RelDirection::Both);

    let hops = |text: &str| {
        let s = parse(&format!("MATCH (a)-[{text}]->(b) RETURN a"));
        let StatementKind::Match(q) = s.kind else {
            panic!()
        };
        q.patterns[0].steps[0].0.hops
    };
    assert_eq!(
        hops(":following*1..2"),
        Some(Hops {
            min: Some(1),
            max: Some(2)
        })
    );
    assert_eq!(
        hops(":following*..6"),
        Some(Hops {
            min: None,
            max: Some(6)
        })
    );
    assert_eq!(
        hops("*"),
        Some(Hops {
            min: None,
            max: None
        })
    );
    assert_eq!(
        hops("*3"),
        Some(Hops {
            min: Some(3),
            max: Some(3)
        })
    );
    assert_eq!(
        hops("*3..3"),
        Some(Hops {
            min: Some(3),
            max: Some(3)
        })
    );
    assert_eq!(
        hops("*2.."),
        Some(Hops {
            min: Some(2),
            max: None
        })
    );
    assert_eq!(hops(":t"), None);

    let s = parse("MATCH p = SHORTEST (x)-[:following*..6]-(y) RETURN p");
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    assert!(q.patterns[0].shortest);
    assert_eq!(
        q.patterns[0].path_var.as_ref().map(|v| v.name.as_str()),
        Some("p")
    );

    let s = parse("MATCH (a) RETURN a ORDER BY a DESC, b");
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    let order: Vec<_> = q
        .order
        .iter()
        .map(|(e, desc)| (e.to_string(), *desc))
        .collect();
    assert_eq!(
        order,
        vec![("a".to_string(), true), ("b".to_string(), false)]
    );
}

#[test]
fn let_explain_and_status_statements_have_the_right_shape() {
    let s = parse("LET $x = CREATE THING course \"Rust\" {price: 49}");
    let StatementKind::Let {
        var,
        value: LetValue::Statement(inner),
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!(var.name, "x");
    assert_eq!(var.span, span(4, 6));
    assert!(matches!(inner.kind, StatementKind::CreateThing { .. }));

    let s = parse("EXPLAIN MATCH (c:course) RETURN c");
    let StatementKind::Explain { statement, profile } = &s.kind else {
        panic!()
    };
    assert!(!profile);
    assert!(matches!(statement.kind, StatementKind::Match(_)));
    assert_eq!(statement.span, span(8, 33));

    let s = parse("PUBLISH $course");
    let StatementKind::SetStatus {
        status, shorthand, ..
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!((status.name.as_str(), *shorthand), ("published", true));
    let s = parse("UPDATE $course SET STATUS published");
    let StatementKind::SetStatus {
        status, shorthand, ..
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!((status.name.as_str(), *shorthand), ("published", false));
    assert_eq!(s.to_string(), "UPDATE $course SET STATUS published");

    let s = parse("UPDATE $c SET name = \"n\", STATUS active");
    let StatementKind::Update { sets, .. } = &s.kind else {
        panic!()
    };
    assert!(matches!(sets[1], Assignment::Status(_)));
}

#[test]
fn spans_cover_their_source_text() {
    let text = "  MATCH (c:course) WHERE c.price > 10 RETURN c.name AS n ;  -- x";
    let s = parse(text);
    let slice = |sp: onedb::query::ast::Span| &text[sp.start..sp.end];
    assert_eq!(
        slice(s.span),
        "MATCH (c:course) WHERE c.price > 10 RETURN c.name AS n"
    );
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    assert_eq!(slice(q.span), slice(s.span));
    assert_eq!(slice(q.patterns[0].span), "(c:course)");
    assert_eq!(slice(q.patterns[0].start.span), "(c:course)");
    assert_eq!(
        slice(q.patterns[0].start.label.as_ref().unwrap().span),
        "course"
    );
    assert_eq!(slice(q.filter.as_ref().unwrap().span), "c.price > 10");
    let (item, alias) = &q.ret.items[0];
    assert_eq!(slice(item.span), "c.name");
    assert_eq!(slice(alias.as_ref().unwrap().span), "n");

    let text = "MATCH (a)<-[r:x*1..2]-(b) RETURN (a.x + 1)";
    let s = parse(text);
    let StatementKind::Match(q) = &s.kind else {
        panic!()
    };
    assert_eq!(
        &text[q.patterns[0].steps[0].0.span.start..q.patterns[0].steps[0].0.span.end],
        "<-[r:x*1..2]-"
    );
    let e = &q.ret.items[0].0;
    assert_eq!(&text[e.span.start..e.span.end], "(a.x + 1)");
}

// (c) ---------------------------------------------------------------------

#[test]
fn every_design_example_round_trips() {
    for (text, _) in design_statements() {
        assert_round_trip(&text);
    }
}

// (d) ---------------------------------------------------------------------

#[test]
fn a_missing_parenthesis_is_reported_where_it_is_missing() {
    let text = "MATCH (c:course)\nWHERE (c.price > 10\nRETURN c.name";
    let e = parse_statement(text).unwrap_err();
    assert_eq!(e.code, ErrorCode::ParseError);
    assert_eq!(e.message, "expected \")\" but found \"RETURN\"");
    let p = e.position.unwrap();
    assert_eq!((p.line, p.col, p.offset), (3, 1, 37));

    let e = parse_statement("MATCH (c:course RETURN c").unwrap_err();
    assert_eq!(e.message, "expected \")\" but found \"RETURN\"");
    assert_eq!(e.position.map(|p| (p.line, p.col)), Some((1, 17)));

    let e = parse_statement("LET $x = count(a, b").unwrap_err();
    assert_eq!(e.message, "expected \")\" but found end of input");
    assert_eq!(e.position.map(|p| p.col), Some(20));
}

#[test]
fn parse_errors_name_what_was_expected() {
    let cases = [
        ("", "expected a statement but found end of input", 1),
        (
            "-- only a comment",
            "expected a statement but found end of input",
            18,
        ),
        ("FROB x", "expected a statement but found \"FROB\"", 1),
        (
            "CREATE FOO x",
            "expected \"ORG\", \"PERSON\", \"THING\", \"KNOWLEDGE\", \"TRIGGER\", \"TYPE\" or \"TOKEN\" but found \"FOO\"",
            8,
        ),
        (
            "SHOW USAGE; SHOW TYPES",
            "expected end of statement but found \"SHOW\"",
            13,
        ),
        (
            "MATCH (a) WHERE RETURN a",
            "expected an expression but found \"RETURN\"",
            17,
        ),
        (
            "MATCH (a) WHERE a.x = RETURN a",
            "expected an expression but found \"RETURN\"",
            23,
        ),
        (
            "MATCH (a)",
            "expected \"RETURN\" but found end of input",
            10,
        ),
        (
            "LET $x = [1, 2,]",
            "expected an expression but found \"]\"",
            16,
        ),
        (
            "USE ACME",
            "expected \"ORG\" or \"PLATFORM\" but found \"ACME\"",
            5,
        ),
        (
            "LET $x = a IS NOT 5",
            "expected \"NULL\" but found \"5\"",
            19,
        ),
        (
            "UPDATE $c SET price = 3",
            "expected \"name\", \"properties\" or \"STATUS\" but found \"price\"",
            15,
        ),
        (
            "CONNECT $a -[owns]- $b",
            "expected \"->\" but found \"-\"",
            19,
        ),
    ];
    for (text, message, col) in cases {
        let e = parse_statement(text).unwrap_err();
        assert_eq!(e.code, ErrorCode::ParseError, "{text:?}");
        assert_eq!(e.message, message, "{text:?}");
        assert_eq!(e.position.map(|p| p.col), Some(col), "{text:?}");
    }
}

#[test]
fn bad_literals_are_parse_errors() {
    for text in [
        "LET $x = 9223372036854775808",
        "LET $x = 1e999",
        "LET $x = \"abc",
        "LET $x = \"a\\qb\"",
        "LET $x = \"\\u{110000}\"",
        "LET $x = \"\\u{}\"",
        "LET $x = \"\\u{1234567}\"",
        "LET $x = 12abc",
        "MATCH (a)-[*3..1]->(b) RETURN a",
        "MATCH (a)-[*99999999999]->(b) RETURN a",
        "LET $x = $",
        "LET $x = a.",
        "LET $x = é",
        "LET $x = 1 \u{0} 2",
    ] {
        let e = parse_statement(text).unwrap_err();
        assert_eq!(e.code, ErrorCode::ParseError, "{text:?}: {e}");
        assert!(e.position.is_some(), "{text:?}");
    }
    let e = parse_statement("LET $x = 99999999999999999999").unwrap_err();
    assert!(e.message.contains("out of range"), "{}", e.message);
    assert!(parse_statement("LET $x = 9223372036854775807").is_ok());
}

#[test]
fn reserved_words_cannot_be_variables_but_can_be_keys_and_names() {
    assert_eq!(code_of("LET $x = match"), ErrorCode::ParseError);
    assert_eq!(code_of("MATCH (a) RETURN distinct"), ErrorCode::ParseError);
    assert_eq!(canon("LET $x = {match: 1}"), "LET $x = {match: 1}");
    assert_eq!(
        canon("MATCH (a) RETURN a.match AS set"),
        "MATCH (a) RETURN a.match AS set"
    );
    assert_eq!(canon("LET $match = type"), "LET $match = type");
    assert_eq!(
        canon("MATCH (k) RETURN k, labels, status, text"),
        "MATCH (k) RETURN k, labels, status, text"
    );
}

// (f) P2: limits --------------------------------------------------------

/// Runs `f` on a thread with a 256 KiB stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic, no overflow")
}

/// The over-limit inputs of P2, each with the error code it must get.
fn hostile_inputs() -> Vec<(&'static str, String)> {
    vec![
        ("100k (", format!("LET $x = {}", "(".repeat(100_000))),
        ("100k [", format!("LET $x = {}", "[".repeat(100_000))),
        (
            "100k [ closed",
            format!("LET $x = {}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        ("100k {", format!("LET $x = {}", "{a: ".repeat(100_000))),
        ("100k NOT", format!("LET $x = {}a", "NOT ".repeat(100_000))),
        ("100k -", format!("LET $x = {}a", "- ".repeat(100_000))),
        ("100k +", format!("LET $x = 1{}", " + 1".repeat(100_000))),
        ("100k .", format!("LET $x = a{}", ".b".repeat(100_000))),
        (
            "100k IS NULL",
            format!("LET $x = a{}", " IS NULL".repeat(100_000)),
        ),
        (
            "100k list items",
            format!("LET $x = [{}1]", "1, ".repeat(100_000)),
        ),
        (
            "10 MiB literal",
            format!("LET $x = \"{}\"", "x".repeat(10 * 1024 * 1024)),
        ),
        (
            "10 MiB text",
            format!("LET $x = 1{}", " ".repeat(10 * 1024 * 1024)),
        ),
    ]
}

#[test]
fn hostile_inputs_fail_fast_with_too_large() {
    for (name, text) in hostile_inputs() {
        let started = Instant::now();
        let e = parse_statement(&text).unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.code, ErrorCode::TooLarge, "{name}: {e}");
        assert!(took < Duration::from_millis(100), "{name} took {took:?}");
    }
}

#[test]
fn hostile_inputs_fail_cleanly_on_a_small_stack() {
    on_small_stack(|| {
        for (name, text) in hostile_inputs() {
            let e = parse_statement(&text).unwrap_err();
            assert_eq!(e.code, ErrorCode::TooLarge, "{name}");
        }
    });
}

/// Inputs exactly at each limit (accepted) and one past it (rejected).
fn at_and_past_the_limits() -> Vec<(&'static str, String, String)> {
    let nest = |open: &str, close: &str, n: usize| {
        format!("LET $x = {}1{}", open.repeat(n), close.repeat(n))
    };
    let items = |n: usize| format!("LET $x = [{}1]", "1, ".repeat(n - 2));
    let searched = |n: usize| {
        let calls = format!("{}1{}", "f(".repeat(n), ")".repeat(n));
        format!("SEARCH THINGS \"x\" WHERE a LIMIT 1 THEN MATCH (a) WHERE {calls} RETURN a")
    };
    let prefix = "LET $x = \"";
    let padded = |n: usize| format!("{prefix}{}\"", "p".repeat(n - prefix.len() - 1));
    vec![
        (
            "parentheses",
            nest("(", ")", MAX_DEPTH),
            nest("(", ")", MAX_DEPTH + 1),
        ),
        (
            "lists",
            nest("[", "]", MAX_DEPTH),
            nest("[", "]", MAX_DEPTH + 1),
        ),
        (
            "maps",
            nest("{a: ", "}", MAX_DEPTH),
            nest("{a: ", "}", MAX_DEPTH + 1),
        ),
        (
            "calls",
            nest("f(", ")", MAX_DEPTH),
            nest("f(", ")", MAX_DEPTH + 1),
        ),
        (
            // The deepest statement context: a SEARCH's THEN MATCH's WHERE.
            "calls in a SEARCH",
            searched(MAX_DEPTH),
            searched(MAX_DEPTH + 1),
        ),
        (
            "NOT",
            nest("NOT ", "", MAX_DEPTH),
            nest("NOT ", "", MAX_DEPTH + 1),
        ),
        (
            "minus",
            nest("- ", "", MAX_DEPTH),
            nest("- ", "", MAX_DEPTH + 1),
        ),
        (
            "mixed",
            nest("[NOT (", ")]", MAX_DEPTH / 2),
            nest("[NOT (", ")]", MAX_DEPTH / 2 + 1),
        ),
        (
            "operator chain",
            format!("LET $x = 1{}", " + 1".repeat(MAX_DEPTH)),
            format!("LET $x = 1{}", " + 1".repeat(MAX_DEPTH + 1)),
        ),
        (
            "property chain",
            format!("LET $x = a{}", ".b".repeat(MAX_DEPTH)),
            format!("LET $x = a{}", ".b".repeat(MAX_DEPTH + 1)),
        ),
        // A list of n - 1 items is n nodes.
        ("nodes", items(MAX_NODES), items(MAX_NODES + 1)),
        (
            "statement bytes",
            padded(MAX_STATEMENT_BYTES),
            padded(MAX_STATEMENT_BYTES + 1),
        ),
    ]
}

#[test]
fn each_limit_holds_at_the_limit_and_fails_one_past_it() {
    for (name, at, past) in at_and_past_the_limits() {
        if let Err(e) = parse_statement(&at) {
            panic!("{name} at the limit: {e}");
        }
        let started = Instant::now();
        let e = parse_statement(&past).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge, "{name} past the limit: {e}");
        assert!(started.elapsed() < Duration::from_millis(100), "{name}");
    }
}

#[test]
fn the_literal_limit_holds_at_the_limit_and_fails_one_past_it() {
    // The statement limit would hide this one, so raise it.
    let limits = Limits {
        max_statement_bytes: 4 * MAX_LITERAL_BYTES,
        ..Limits::default()
    };
    let literal = |n: usize| format!("LET $x = \"{}\"", "é".repeat(n / 2));
    let s = parse_statement_with(&literal(MAX_LITERAL_BYTES), &limits).unwrap();
    let StatementKind::Let {
        value: LetValue::Expr(e),
        ..
    } = s.kind
    else {
        panic!()
    };
    assert!(matches!(e.kind, ExprKind::Str(ref s) if s.len() == MAX_LITERAL_BYTES));
    let e = parse_statement_with(&literal(MAX_LITERAL_BYTES + 2), &limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::TooLarge);
    assert_eq!(e.position.map(|p| p.col), Some(10));
    // Escapes count as what they stand for.
    let escaped = format!("LET $x = \"{}\"", "\\n".repeat(MAX_LITERAL_BYTES));
    assert!(parse_statement_with(&escaped, &limits).is_ok());
}

#[test]
fn the_largest_accepted_trees_parse_print_and_drop_on_a_small_stack() {
    on_small_stack(|| {
        for (name, at, _) in at_and_past_the_limits() {
            if name == "statement bytes" {
                continue;
            }
            let statement = parse_statement(&at).unwrap_or_else(|e| panic!("{name}: {e}"));
            let printed = statement.to_string();
            let again = parse_statement(&printed).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(again.to_string(), printed, "{name}");
            drop(statement);
            drop(again);
        }
    });
}

#[test]
fn a_million_statement_script_streams() {
    /// An endless-looking script made on the fly: it is never in memory.
    struct Generated {
        left: usize,
        pending: Vec<u8>,
    }
    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pending.is_empty() && self.left > 0 {
                self.left -= 1;
                self.pending = format!("LET $v{} = [1, \"a;b\"] -- c;\n;", self.left).into_bytes();
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }
    const COUNT: usize = 1_000_000;
    let script = Generated {
        left: COUNT,
        pending: Vec::new(),
    };
    let mut reader = ScriptReader::new(BufReader::with_capacity(8192, script));
    let first = reader.next().unwrap().unwrap();
    assert_eq!(
        first.text,
        format!("LET $v{} = [1, \"a;b\"] -- c;", COUNT - 1)
    );
    let mut n = 1;
    let mut last_line = first.line;
    for statement in reader {
        let statement = statement.unwrap();
        assert!(statement.line > last_line);
        last_line = statement.line;
        if n % 1000 == 0 {
            parse(&statement.text);
        }
        n += 1;
    }
    assert_eq!(n, COUNT);
}

#[test]
fn the_script_reader_reads_one_statement_at_a_time() {
    struct Counting<'a> {
        data: &'a [u8],
        served: std::rc::Rc<std::cell::Cell<usize>>,
    }
    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.data.read(buf)?;
            self.served.set(self.served.get() + n);
            Ok(n)
        }
    }
    let script = "WHOAMI;".repeat(100_000);
    let served = std::rc::Rc::new(std::cell::Cell::new(0));
    let source = Counting {
        data: script.as_bytes(),
        served: served.clone(),
    };
    let mut reader = ScriptReader::new(BufReader::with_capacity(1024, source));
    assert_eq!(reader.next().unwrap().unwrap().text, "WHOAMI");
    assert!(
        served.get() <= 1024,
        "read {} bytes for one statement",
        served.get()
    );
    // A statement over the limit is one error, not a buffer of the rest.
    let long = format!(
        "LET $x = \"{}\"; WHOAMI",
        "y".repeat(3 * MAX_STATEMENT_BYTES)
    );
    let out: Vec<_> = ScriptReader::new(long.as_bytes()).collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].as_ref().unwrap_err().code, ErrorCode::TooLarge);
    assert_eq!(out[1].as_ref().unwrap().text, "WHOAMI");
}

// (g) P3: what is inside a string stays there -----------------------------

#[test]
fn quotes_braces_newlines_nul_and_comments_stay_inside_strings() {
    let value = "a\"b'c{d}e[f](g);h\ni\r\nj\0k -- l /* m */ $n \\ o";
    // Escaped by the printer, and raw where the lexer allows it.
    let escaped = Statement {
        kind: StatementKind::Let {
            var: onedb::query::ast::Ident {
                name: "x".into(),
                span: span(0, 0),
            },
            value: LetValue::Expr(Expr {
                kind: ExprKind::Str(value.into()),
                span: span(0, 0),
            }),
        },
        span: span(0, 0),
    }
    .to_string();
    let raw = "LET $x = \"a\\\"b'c{d}e[f](g);h\ni\r\nj\0k -- l /* m */ $n \\\\ o\"".to_string();
    for text in [escaped, raw] {
        let statements: Vec<_> = ScriptReader::new(format!("{text}; WHOAMI;").as_bytes())
            .map(|s| s.unwrap().text)
            .collect();
        assert_eq!(statements, vec![text.clone(), "WHOAMI".to_string()]);
        let e = let_expr(&text);
        assert_eq!(e.kind, ExprKind::Str(value.into()), "{text:?}");
        assert_round_trip(&text);
    }
    // Parameters are data: a `$name` is only ever a name.
    assert_eq!(code_of("LET $x = $a\"; DROP"), ErrorCode::ParseError);
    assert_eq!(code_of("LET $x = $a--\nb"), ErrorCode::ParseError);
}

// (e) P1: nothing panics -------------------------------------------------

/// Tokens for random statements: keywords, punctuation, names, literals.
const TOKENS: &[&str] = &[
    "CREATE",
    "ORG",
    "PERSON",
    "THING",
    "KNOWLEDGE",
    "CHUNK",
    "LABEL",
    "TRIGGER",
    "TYPE",
    "NAME",
    "PLAN",
    "ROLE",
    "IN",
    "PASSWORD",
    "ALTER",
    "SET",
    "LIMITS",
    "ON",
    "REMOVE",
    "USE",
    "PLATFORM",
    "UPDATE",
    "STATUS",
    "PUBLISH",
    "ARCHIVE",
    "DELETE",
    "CONNECT",
    "DISCONNECT",
    "VALID",
    "FROM",
    "UNTIL",
    "STRENGTH",
    "EMBEDDING",
    "LABELS",
    "FOR",
    "AS",
    "EMIT",
    "TARGET",
    "DROP",
    "LET",
    "MATCH",
    "WHERE",
    "RETURN",
    "DISTINCT",
    "ORDER",
    "BY",
    "DESC",
    "ASC",
    "SKIP",
    "LIMIT",
    "SHORTEST",
    "AT",
    "EVENTS",
    "SINCE",
    "SEARCH",
    "THINGS",
    "NEAREST",
    "K",
    "THEN",
    "SHOW",
    "ORGS",
    "USAGE",
    "WHOAMI",
    "EXPLAIN",
    "PROFILE",
    "BEGIN",
    "COMMIT",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "CONTAINS",
    "STARTS",
    "ENDS",
    "WITH",
    "name",
    "properties",
    "a",
    "b",
    "c",
    "course",
    "count",
    "$x",
    "$me",
    "0",
    "1",
    "42",
    "1.5",
    "1e3",
    "\"s\"",
    "\"a;b\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    ".",
    "..",
    "*",
    "-",
    "->",
    "<-",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "/",
    "%",
    "|",
    ";",
    "--",
    "\n",
];

/// Parses under a time budget; if it parses, the round trip must hold.
fn check_total(text: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let result = parse_statement(text);
    prop_assert!(
        started.elapsed() < Duration::from_secs(1),
        "slow on {text:?}"
    );
    match result {
        Ok(statement) => {
            let printed = statement.to_string();
            let again = parse_statement(&printed);
            prop_assert!(again.is_ok(), "{text:?} printed as {printed:?}: {again:?}");
            if let Ok(again) = again {
                prop_assert_eq!(again.to_string(), printed.clone());
                prop_assert_eq!(without_spans(&again), without_spans(&statement));
            }
        }
        Err(e) => {
            prop_assert!(
                matches!(e.code, ErrorCode::ParseError | ErrorCode::TooLarge),
                "{text:?}: {e}"
            );
            prop_assert!(e.position.is_some(), "{text:?}: {e} has no position");
        }
    }
    Ok(())
}

fn nested() -> impl Strategy<Value = String> {
    let opener = prop::sample::select(vec!["(", "[", "{a: ", "NOT ", "- ", "f(", "[1, ", "x.y + "]);
    (prop::collection::vec(opener, 0..300), any::<bool>()).prop_map(|(openers, close)| {
        let mut text = String::from("LET $x = ");
        for o in &openers {
            text.push_str(o);
        }
        text.push('1');
        if close {
            for o in openers.iter().rev() {
                text.push_str(match *o {
                    "(" | "f(" => ")",
                    "[" | "[1, " => "]",
                    "{a: " => "}",
                    _ => "",
                });
            }
        }
        text
    })
}

/// Random expressions shaped like the grammar (most of them valid), to
/// exercise the round trip where random tokens rarely parse.
fn expr_text() -> impl Strategy<Value = String> {
    let string = "[a-z \"\\\\\n\t{};$é-]{0,8}"
        .prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")));
    let leaf = prop_oneof![
        (0..i64::MAX).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{:?}", f.abs())),
        string,
        "[a-z_][a-z0-9_]{0,5}",
        "\\$[a-z_][a-z0-9_]{0,5}",
        prop::sample::select(vec!["NULL", "TRUE", "false", "x.y", "count(*)"])
            .prop_map(String::from),
    ];
    let ops = vec![
        "OR",
        "AND",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "IN",
        "CONTAINS",
        "STARTS WITH",
        "ENDS WITH",
        "+",
        "-",
        "*",
        "/",
        "%",
    ];
    leaf.prop_recursive(6, 64, 4, move |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(ops.clone()),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.clone().prop_map(|a| format!("- {a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("{a} IS NOT NULL")),
            (inner.clone(), "[a-z]{1,4}").prop_map(|(a, p)| format!("({a}).{p}")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z]{1,4}", inner.clone()), 0..4).prop_map(|v| {
                let entries: Vec<_> = v.iter().map(|(k, e)| format!("{k}: {e}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
            (prop::collection::vec(inner.clone(), 1..3), any::<bool>()).prop_map(|(v, d)| {
                format!("f({}{})", if d { "DISTINCT " } else { "" }, v.join(", "))
            }),
        ]
    })
}

/// Statements with expressions in every kind of slot.
fn statement_text() -> impl Strategy<Value = String> {
    let templates = vec![
        "LET $v = {}",
        "MATCH (a:t {{k: {}}})-[r:x|y*1..3 AT {}]->(b), p = SHORTEST (c)<-[*]-(d) WHERE {} RETURN DISTINCT {} AS z, b ORDER BY {} DESC, a SKIP {} LIMIT 1",
        "SEARCH KNOWLEDGE NEAREST {} K {} WHERE {} RETURN {} LIMIT 3 THEN MATCH (k)-[]-(t) RETURN {}",
        "CONNECT ({}) -[t {{m: {}}}]-> $b STRENGTH {} VALID FROM {} UNTIL {}",
        "UPDATE {} SET name = {}, properties.a.b = {}, STATUS active, properties = {}",
        "CREATE PERSON {} NAME {} ROLE r IN ORG o PASSWORD {}",
        "CREATE KNOWLEDGE CHUNK {} EMBEDDING {} LABELS {} FOR {} AS about, {}",
        "EVENTS WHERE {} SINCE {} UNTIL {} LIMIT {}",
        "EMIT e TARGET {} {{a: {}}}",
        "PROFILE LET $x = CREATE THING t {} {{a: {}}}",
    ];
    (
        prop::sample::select(templates),
        prop::collection::vec(expr_text(), 9),
    )
        .prop_map(|(template, exprs)| {
            let mut out = String::new();
            let mut holes = exprs.iter();
            let mut rest = template;
            while let Some(at) = rest.find("{}") {
                out.push_str(&rest[..at].replace("{{", "{").replace("}}", "}"));
                out.push_str(holes.next().map_or("1", String::as_str));
                rest = &rest[at + 2..];
            }
            out.push_str(&rest.replace("{{", "{").replace("}}", "}"));
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,200}") {
        check_total(&text)?;
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_total(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn random_token_sequences_never_panic(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40),
        glue in prop::sample::select(vec![" ", "", "\n"]),
    ) {
        check_total(&tokens.join(glue))?;
    }

    #[test]
    fn statement_shaped_token_sequences_never_panic(
        head in prop::sample::select(vec!["MATCH (a)", "MATCH (a)-[r]->(b) WHERE", "LET $x =", "CREATE THING t", "SEARCH THINGS", "CONNECT $a -[t]->", "UPDATE $x SET"]),
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..30),
    ) {
        check_total(&format!("{head} {}", tokens.join(" ")))?;
    }

    #[test]
    fn grammar_shaped_statements_round_trip(text in statement_text()) {
        check_total(&text)?;
    }

    #[test]
    fn deeply_nested_inputs_never_panic(text in nested()) {
        check_total(&text)?;
    }

    #[test]
    fn the_script_reader_never_panics(text in "[\"\\\\;\\-\n a]{0,100}") {
        for statement in ScriptReader::new(text.as_bytes()).flatten() {
            let _ = parse_statement(&statement.text);
        }
    }
}
