//! Property schemas: a JSON Schema (draft 2020-12) for the `properties` of
//! one thing type, compiled once into a [`PropertySchema`] and then checked
//! against every create and update of a thing of that type.
//!
//! A schema is user input like any other and may be hostile, so compiling
//! one is bounded: its encoded size, its nesting depth, its regular
//! expressions (the `regex` engine: linear time, no look-around, a size
//! cap) and its references (nothing is ever fetched: a `$ref` that leaves
//! the schema is an error). A failure is `INVALID_ARGUMENT` with the reason.

use std::panic::{AssertUnwindSafe, catch_unwind};

use jsonschema::{PatternOptions, Retrieve, Uri, Validator};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::Props;
use crate::model::limits;

/// A compiled schema, with the map it was compiled from.
pub struct PropertySchema {
    source: Props,
    validator: Validator,
}

impl std::fmt::Debug for PropertySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertySchema")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Refuses every outside document: schemas are checked inside a commit,
/// where a network or file read has no place (and could be aimed at
/// anything the server reaches).
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("references outside the schema are not followed ({uri})").into())
    }
}

/// Compiled regular expressions may use at most this much memory each.
const REGEX_BYTES: usize = 1 << 20;

impl PropertySchema {
    /// Compiles `schema`, the JSON Schema of `kind`'s properties.
    pub fn compile(kind: &str, schema: &Props) -> Result<PropertySchema> {
        let bad = |reason: String| Error::invalid(format!("the schema of {kind} {reason}"));
        let size = serde_json::to_vec(schema)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > limits::SCHEMA_BYTES {
            return Err(Error::too_large(format!(
                "the schema of {kind} is {size} bytes; the limit is {}",
                limits::SCHEMA_BYTES
            )));
        }
        let value = Value::Object(schema.clone());
        let depth = depth_of(&value);
        if depth > limits::SCHEMA_DEPTH {
            return Err(Error::too_large(format!(
                "the schema of {kind} nests {depth} levels deep; the limit is {}",
                limits::SCHEMA_DEPTH
            )));
        }
        let options = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_retriever(NoRetrieval)
            .with_pattern_options(
                PatternOptions::regex()
                    .size_limit(REGEX_BYTES)
                    .dfa_size_limit(REGEX_BYTES),
            );
        // The crate is not expected to panic; if it does on some input,
        // that input is refused rather than taking the process down.
        let built = catch_unwind(AssertUnwindSafe(|| options.build(&value)))
            .map_err(|_| bad("could not be compiled".into()))?;
        let validator = built.map_err(|e| {
            bad(format!(
                "is not a valid JSON Schema: {}",
                short(&e.to_string())
            ))
        })?;
        Ok(PropertySchema {
            source: schema.clone(),
            validator,
        })
    }

    /// Compiles a stored schema (the JSON bytes of its map).
    pub fn decode(kind: &str, bytes: &[u8]) -> Result<PropertySchema> {
        let schema: Props = serde_json::from_slice(bytes)
            .map_err(|e| Error::corruption("property schema", format!("{kind}: {e}")))?;
        PropertySchema::compile(kind, &schema)
    }

    /// The schema as it was given.
    pub fn source(&self) -> &Props {
        &self.source
    }

    /// Checks a thing's properties: `INVALID_ARGUMENT` naming the JSON path
    /// and the rule of the first violation (`properties.price: -1 is less
    /// than the minimum of 0`). The map is lent to the validator and given
    /// back, never copied.
    pub fn check(&self, properties: &mut Props) -> Result<()> {
        let value = Value::Object(std::mem::take(properties));
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            if self.validator.is_valid(&value) {
                return None;
            }
            let error = self.validator.validate(&value).err()?;
            let path = path_of(&value, &error.instance_path().to_string());
            Some(format!("{path}: {}", short(&error.to_string())))
        }));
        if let Value::Object(map) = value {
            *properties = map;
        }
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(message)) => Err(Error::invalid(message)),
            Err(_) => Err(Error::invalid(
                "properties could not be checked against the schema",
            )),
        }
    }

    /// Whether `properties` satisfy the schema (for whole-database checks).
    pub fn violation(&self, properties: &Props) -> Option<String> {
        let mut copy = properties.clone();
        self.check(&mut copy).err().map(|e| e.message)
    }
}

/// How deeply a JSON value nests (a scalar is 0), without recursion.
fn depth_of(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|x| (x, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// A JSON pointer into `properties` as OQL writes the path:
/// `properties.address.city`, `properties.tags[2]`.
fn path_of(root: &Value, pointer: &str) -> String {
    let mut path = String::from("properties");
    let mut at = Some(root);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Some(Value::Array(items)) => {
                path.push_str(&format!("[{segment}]"));
                at = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            Some(Value::Object(map)) => {
                path.push('.');
                path.push_str(&segment);
                at = map.get(&segment);
            }
            _ => {
                path.push('.');
                path.push_str(&segment);
                at = None;
            }
        }
    }
    path
}

/// Messages quote values; a huge value is cut, not repeated whole.
fn short(message: &str) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Props {
        match v {
            Value::Object(m) => m,
            _ => panic!("not a map"),
        }
    }

    fn schema(v: Value) -> Result<PropertySchema> {
        PropertySchema::compile("course", &props(v))
    }

    fn check(s: &PropertySchema, v: Value) -> std::result::Result<(), String> {
        let mut p = props(v);
        let before = p.clone();
        let r = s.check(&mut p).map_err(|e| e.message);
        assert_eq!(p, before, "the map comes back unchanged");
        r
    }

    #[test]
    fn messages_name_the_path_and_the_rule() {
        let s = schema(json!({
            "type": "object",
            "required": ["price"],
            "properties": {
                "price": {"type": "number", "minimum": 0},
                "address": {"type": "object", "properties": {"city": {"type": "string"}}},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}}
            }
        }))
        .unwrap();
        assert_eq!(check(&s, json!({"price": 3})), Ok(()));
        assert_eq!(
            check(&s, json!({"price": -1})).unwrap_err(),
            "properties.price: -1 is less than the minimum of 0"
        );
        assert_eq!(
            check(&s, json!({})).unwrap_err(),
            "properties: \"price\" is a required property"
        );
        assert_eq!(
            check(&s, json!({"price": 1, "address": {"city": 5}})).unwrap_err(),
            "properties.address.city: 5 is not of type \"string\""
        );
        assert_eq!(
            check(&s, json!({"price": 1, "tags": ["a", "long"]})).unwrap_err(),
            "properties.tags[1]: \"long\" is longer than 3 characters"
        );
    }

    #[test]
    fn hostile_schemas_are_refused_with_a_reason() {
        let cases = [
            json!({"type": 12}),
            json!({"pattern": "(unclosed"}),
            json!({"pattern": "(?=lookahead)"}),
            json!({"$ref": "https://example.com/schema.json"}),
            json!({"$ref": "file:///etc/passwd"}),
            json!({"minimum": "zero"}),
        ];
        for case in cases {
            let err = schema(case.clone()).unwrap_err();
            assert_eq!(
                err.code,
                crate::error::ErrorCode::InvalidArgument,
                "{case}: {err}"
            );
            assert!(err.message.starts_with("the schema of course "), "{err}");
        }
        // An unknown meta-schema is not fetched either: the schema is
        // read as draft 2020-12.
        assert!(schema(json!({"$schema": "https://example.com/unknown-meta"})).is_ok());
        // Too deep and too big: TOO_LARGE.
        let mut deep = json!({});
        for _ in 0..40 {
            deep = json!({"properties": {"a": deep}});
        }
        assert_eq!(
            schema(deep).unwrap_err().code,
            crate::error::ErrorCode::TooLarge
        );
        let big: Props = (0..5_000)
            .map(|i| (format!("p{i}"), json!({"type": "string", "maxLength": 10})))
            .collect();
        assert_eq!(
            schema(json!({"properties": big})).unwrap_err().code,
            crate::error::ErrorCode::TooLarge
        );
    }

    #[test]
    fn local_references_and_recursion_work() {
        let s = schema(json!({
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "v": {"type": "integer"}}}},
            "properties": {"list": {"$ref": "#/$defs/node"}}
        }))
        .unwrap();
        assert_eq!(
            check(&s, json!({"list": {"v": 1, "next": {"v": 2}}})),
            Ok(())
        );
        assert_eq!(
            check(&s, json!({"list": {"v": 1, "next": {"v": "x"}}})).unwrap_err(),
            "properties.list.next.v: \"x\" is not of type \"integer\""
        );
        // A reference to itself and nothing else: compiles or is refused,
        // never loops forever or overflows the stack.
        if let Ok(s) = schema(json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})) {
            let _ = check(&s, json!({"x": 1}));
        }
    }

    #[test]
    fn huge_values_are_cut_in_messages() {
        let s = schema(json!({"properties": {"a": {"type": "integer"}}})).unwrap();
        let long = "x".repeat(10_000);
        let err = check(&s, json!({ "a": long })).unwrap_err();
        assert!(err.len() < 400, "{}", err.len());
    }
}
