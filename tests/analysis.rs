//! The analysis step between parser and planner (src/query/analyze.rs):
//! each mistake a query's text alone shows is refused before any plan is
//! made or any record read, with its message and its place.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use onedb::error::ErrorCode;
use onedb::query::run::Runner;

/// Runs `text` in a fresh org holding one course; returns the error's code,
/// message and 1-based column.
fn refused(text: &str) -> (ErrorCode, String, u32) {
    let (_dir, db) = common::open();
    let session = common::org(&db, "acme");
    common::create(&session, "course", "Rust");
    let mut runner = Runner::new(&session);
    let err = runner
        .execute(text)
        .expect_err(&format!("{text} should be refused"));
    let col = err.position.map_or(0, |p| p.col);
    (err.code, err.message, col)
}

fn col_of(text: &str, part: &str) -> u32 {
    text.find(part).expect("part of the text") as u32 + 1
}

#[test]
fn an_unknown_variable_is_named_where_it_is_read_with_a_hint() {
    let text = "MATCH (course:course) RETURN cours.name;";
    let (code, message, col) = refused(text);
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(message.contains("unknown variable cours"), "{message}");
    assert!(message.contains("did you mean course"), "{message}");
    assert_eq!(col, col_of(text, "cours.name"));

    for text in [
        "MATCH (a) WHERE b.name = \"x\" RETURN a;",
        "MATCH (a) RETURN a ORDER BY b.name;",
        "MATCH (a {name: b.name}) RETURN a;",
        "MATCH (a)-[:owns AT b.createdAt]->(c) RETURN a;",
    ] {
        let (code, message, col) = refused(text);
        assert_eq!(code, ErrorCode::InvalidArgument, "{text}");
        assert!(message.contains("unknown variable b"), "{text}: {message}");
        assert_eq!(col, col_of(text, "b."), "{text}");
    }
}

#[test]
fn order_by_may_name_a_return_column() {
    let (_dir, db) = common::open();
    let session = common::org(&db, "acme");
    common::create(&session, "course", "Rust");
    let mut runner = Runner::new(&session);
    for text in [
        "MATCH (c:course) RETURN c.name AS n ORDER BY n;",
        "MATCH (c:course) RETURN c.name, count(c) ORDER BY count(c);",
    ] {
        let out = runner.execute(text).expect(text);
        assert_eq!(out.rows.len(), 1, "{text}");
    }
}

#[test]
fn a_variable_has_one_kind_and_a_relationship_is_bound_once() {
    let text = "MATCH (a)-[a:owns]->(b) RETURN b;";
    let (code, message, col) = refused(text);
    assert_eq!(code, ErrorCode::InvalidArgument);
    assert!(
        message.contains("a is a node variable and cannot also name a relationship"),
        "{message}"
    );
    assert_eq!(col, col_of(text, "a:owns"));

    let text = "MATCH (a)-[r:owns]->(b), (c)-[r:owns]->(d) RETURN r;";
    let (_, message, col) = refused(text);
    assert!(message.contains("r is bound twice"), "{message}");
    assert_eq!(col, text.rfind("r:owns").unwrap() as u32 + 1);

    let text = "MATCH p = SHORTEST (a)-[:owns*..3]->(p) RETURN p;";
    let (_, message, _) = refused(text);
    assert!(
        message.contains("p is a path variable and cannot also name a node"),
        "{message}"
    );
}

#[test]
fn labels_and_relationship_types_are_checked_against_the_vocabulary() {
    let text = "MATCH (a:course)-[:ownz]->(b) RETURN b;";
    let (code, message, col) = refused(text);
    assert_eq!(code, ErrorCode::UnknownType);
    assert!(message.contains("did you mean owns"), "{message}");
    assert_eq!(col, col_of(text, "ownz"));
}

#[test]
fn literal_counts_and_search_inputs_are_checked_before_running() {
    for (text, part, says) in [
        (
            "MATCH (t) RETURN t LIMIT -1;",
            "-1",
            "SKIP and LIMIT take a whole number",
        ),
        (
            "MATCH (t) RETURN t SKIP \"two\";",
            "\"two\"",
            "whole number",
        ),
        ("SEARCH THINGS 42;", "42", "SEARCH THINGS takes a string"),
        (
            "SEARCH THINGS \"rust\" LIMIT 1.5;",
            "1.5",
            "LIMIT takes a whole number",
        ),
        (
            "SEARCH KNOWLEDGE NEAREST [1, 0] K -3;",
            "-3",
            "K takes a whole number",
        ),
    ] {
        let (code, message, col) = refused(text);
        assert_eq!(code, ErrorCode::InvalidArgument, "{text}");
        assert!(message.contains(says), "{text}: {message}");
        assert_eq!(col, col_of(text, part), "{text}");
    }
    let text = "SEARCH THINGS \"rust\" WHERE type IN [\"course\", \"lesons\"];";
    let (code, message, col) = refused(text);
    assert_eq!(code, ErrorCode::UnknownType);
    assert!(message.contains("did you mean lesson"), "{message}");
    assert_eq!(col, col_of(text, "\"lesons\""));
    let text = "SEARCH KNOWLEDGE NEAREST [1, 0] K 3 WHERE source.type = \"cours\";";
    let (code, _, col) = refused(text);
    assert_eq!(code, ErrorCode::UnknownType);
    assert_eq!(col, col_of(text, "\"cours\""));
}
