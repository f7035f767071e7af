//! Property schemas (issue 19) through the public API: random property maps
//! are accepted exactly when the JSON Schema crate's own validator accepts
//! them, and a refused write leaves every key as it was; schemas given as
//! parameters (with `$ref`s); a schema defined while a write is open is
//! ordered against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use onedb::query::run::Runner;
use onedb::{ErrorCode, NewThing, ThingUpdate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn map(v: Value) -> onedb::model::Props {
    v.as_object().cloned().expect("a map")
}

fn course_schema() -> Value {
    json!({
        "type": "object",
        "required": ["price"],
        "properties": {
            "price": {"type": "number", "minimum": 0, "maximum": 1000},
            "level": {"enum": ["beginner", "advanced"]},
            "seats": {"type": "integer", "exclusiveMinimum": 0},
            "code": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[A-Z]+[0-9]*$"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3, "uniqueItems": true},
            "meta": {"type": "object", "required": ["duration"],
                     "properties": {"duration": {"type": "integer", "minimum": 1}},
                     "additionalProperties": false}
        }
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..1_200).prop_map(|n| json!(n)),
        (-5.0f64..1_200.0).prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "beginner", "advanced", "expert", "", "AB1", "x", "ABCDEF"
        ])
        .prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Value::Null),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..5).prop_map(Value::Array),
        1 => prop::collection::btree_map(
            prop::sample::select(vec!["duration", "codec"]),
            scalar(),
            0..3
        )
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "price", "level", "seats", "code", "tags", "meta", "other",
    ])
    .prop_map(str::to_string)
}

/// Random maps, most with a valid price (the one required property), so
/// that both answers are common.
fn properties() -> impl Strategy<Value = onedb::model::Props> {
    (
        prop::collection::btree_map(key(), value(), 0..4),
        prop::option::weighted(0.8, 0u32..1_000),
    )
        .prop_map(|(m, price)| {
            let mut props: onedb::model::Props = m.into_iter().collect();
            if let Some(p) = price {
                props.insert("price".into(), json!(p));
            }
            props
        })
}

#[test]
fn random_properties_are_accepted_exactly_when_the_validator_accepts_them() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "acme");
    let owner = common::person(&db, &root, "owner@acme.io", onedb::Role::OrgOwner);
    let schema = course_schema();
    let validator = jsonschema::validator_for(&schema).expect("the crate compiles it");
    owner
        .run(|t| t.define_schema("course", map(schema.clone())))
        .expect("define");
    let target = owner
        .run(|t| {
            t.create_thing(NewThing {
                kind: "course".into(),
                name: "Target".into(),
                properties: map(json!({"price": 1})),
            })
        })
        .expect("a valid course")
        .id;

    let mut runner = TestRunner::new(Config {
        cases: 150,
        ..Config::default()
    });
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&(properties(), key(), value()), |(props, k, v)| {
            // A create.
            let expected = validator.is_valid(&Value::Object(props.clone()));
            let before = common::all_entries(&db);
            let result = owner.run(|t| {
                t.create_thing(NewThing {
                    kind: "course".into(),
                    name: "Random".into(),
                    properties: props.clone(),
                })
            });
            match (expected, result) {
                (true, Ok(thing)) => {
                    prop_assert_eq!(thing.properties.value(), &props);
                    accepted.set(accepted.get() + 1);
                }
                (false, Err(e)) => {
                    prop_assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e);
                    prop_assert!(e.message.starts_with("properties"), "{}", e);
                    prop_assert!(common::all_entries(&db) == before, "a refused create wrote");
                    refused.set(refused.get() + 1);
                }
                (expected, result) => {
                    prop_assert!(
                        false,
                        "{props:?}: validator says {expected}, onedb {result:?}"
                    );
                }
            }
            // An update of one property of a valid thing.
            let current = owner.read().unwrap().thing(target).unwrap().unwrap();
            let mut merged = current.properties.value().clone();
            merged.insert(k.clone(), v.clone());
            let expected = validator.is_valid(&Value::Object(merged.clone()));
            let before = common::all_entries(&db);
            let result = owner.run(|t| {
                t.update_thing(
                    target,
                    ThingUpdate {
                        set: vec![(vec![k.clone()], v.clone())],
                        ..Default::default()
                    },
                )
            });
            match (expected, result) {
                (true, Ok(thing)) => prop_assert_eq!(thing.properties.value(), &merged),
                (false, Err(e)) => {
                    prop_assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e);
                    prop_assert!(common::all_entries(&db) == before, "a refused update wrote");
                }
                (expected, result) => {
                    prop_assert!(
                        false,
                        "{merged:?}: validator says {expected}, onedb {result:?}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    // Both sides of the property were exercised.
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted > 10 && refused > 10, "{accepted} / {refused}");
    common::assert_valid(&db);
}

#[test]
fn schemas_given_as_parameters_may_use_local_references_never_remote_ones() {
    let (_dir, db) = common::open();
    let session = db.local_session().expect("root");
    let mut runner = Runner::new(&session);
    runner.execute("CREATE ORG acme NAME \"Acme\";").unwrap();
    runner.execute("USE ORG acme;").unwrap();
    for (schema, reason) in [
        (
            json!({"$ref": "https://example.com/schema.json"}),
            "not followed",
        ),
        (json!({"$ref": "file:///etc/passwd"}), "not followed"),
        (
            json!({"$schema": "https://example.com/meta", "type": "object"}),
            "",
        ),
        (
            json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}),
            "",
        ),
    ] {
        runner.set_param("s", schema.clone()).unwrap();
        match runner.execute("DEFINE SCHEMA course $s;") {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidArgument, "{schema}: {e}");
                assert!(e.message.contains(reason), "{schema}: {e}");
            }
            // A self-reference may compile; then it must check without
            // looping, and is dropped again.
            Ok(_) => {
                assert!(reason.is_empty(), "{schema} was accepted");
                let _ = runner.execute("CREATE THING course \"Loop\" {a: 1};");
                runner.execute("DROP SCHEMA course;").unwrap();
            }
        }
    }
    runner
        .set_param(
            "s",
            json!({
                "$defs": {"money": {"type": "number", "minimum": 0}},
                "properties": {"price": {"$ref": "#/$defs/money"}}
            }),
        )
        .unwrap();
    runner.execute("DEFINE SCHEMA course $s;").unwrap();
    runner
        .execute("CREATE THING course \"Rust\" {price: 3};")
        .unwrap();
    let err = runner
        .execute("CREATE THING course \"Rust\" {price: -3};")
        .unwrap_err();
    assert_eq!(
        err.message,
        "properties.price: -3 is less than the minimum of 0"
    );
    common::assert_valid(&db);
}

#[test]
fn a_schema_defined_while_a_write_is_open_is_ordered_against_it() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "acme");
    let owner = common::person(&db, &root, "owner@acme.io", onedb::Role::OrgOwner);
    // The write checks the (absent) schema, then the schema commits: the
    // write's commit must not slip a violating thing past it.
    let mut open = owner.write().unwrap();
    open.create_thing(NewThing {
        kind: "course".into(),
        name: "Negative".into(),
        properties: map(json!({"price": -1})),
    })
    .unwrap();
    owner
        .run(|t| {
            t.define_schema(
                "course",
                map(json!({"properties": {"price": {"minimum": 0}}})),
            )
        })
        .unwrap();
    assert_eq!(open.commit().unwrap_err().code, ErrorCode::Conflict);
    // The other order: the schema is open, a write commits first; the
    // schema's check of stored data then runs again on retry and refuses.
    owner.run(|t| t.drop_schema("course")).unwrap();
    let mut define = owner.write().unwrap();
    define
        .define_schema(
            "course",
            map(json!({"properties": {"price": {"minimum": 0}}})),
        )
        .unwrap();
    owner
        .run(|t| {
            t.create_thing(NewThing {
                kind: "course".into(),
                name: "Negative".into(),
                properties: map(json!({"price": -1})),
            })
        })
        .unwrap();
    assert_eq!(define.commit().unwrap_err().code, ErrorCode::Conflict);
    let err = owner
        .run(|t| {
            t.define_schema(
                "course",
                map(json!({"properties": {"price": {"minimum": 0}}})),
            )
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err}");
    assert!(
        err.message
            .starts_with("1 stored course thing would violate"),
        "{err}"
    );
    common::assert_valid(&db);
}
