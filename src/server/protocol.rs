//! The wire format (docs/protocol.md): one JSON object per line each way.
//! Requests are decoded here; responses are built here, with the objects
//! `--format json` prints (`query::format`) inside them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, ErrorCode};
use crate::query::format::json_error;
use crate::query::outcome::Stats;
use crate::query::run::Outcome;

/// One request: its `id` (any JSON value, echoed in the response; null
/// when absent) and what it asks.
#[derive(Debug)]
pub struct Request {
    pub id: Json,
    pub op: Op,
}

/// The operations. Unknown fields are ignored.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Auth(Credentials),
    Query {
        text: String,
        #[serde(default, deserialize_with = "params")]
        params: Params,
    },
    Ping,
    Cancel {
        target: Json,
    },
    Subscribe {
        text: String,
        #[serde(default, deserialize_with = "params")]
        params: Params,
        /// Resume after this commit.
        #[serde(default)]
        after: Option<u64>,
    },
    Unsubscribe {
        sub: Json,
    },
    /// A consistent copy of the served data directory in `dir`, on the
    /// server's machine (platform owner only).
    Backup {
        dir: String,
    },
}

/// A request's `params` object, its fields in order (a name given twice
/// is bound twice, the last value staying, as in a JSON object read whole).
pub type Params = Vec<(String, Json)>;

/// Reads `params` as the list it is used as: no map is built per request.
fn params<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Params, D::Error> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Params;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object of parameters")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
            let mut fields = Params::with_capacity(map.size_hint().unwrap_or(0).min(64));
            while let Some(field) = map.next_entry()? {
                fields.push(field);
            }
            Ok(fields)
        }
    }
    d.deserialize_map(Fields)
}

/// How an `auth` request logs in: email and password, or a token.
#[derive(Deserialize)]
#[serde(try_from = "AuthFields")]
pub enum Credentials {
    Password { email: String, password: String },
    Token(String),
}

/// An `auth` request's fields as they arrive; exactly one way to log in.
#[derive(Deserialize)]
struct AuthFields {
    email: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

impl TryFrom<AuthFields> for Credentials {
    type Error = &'static str;

    fn try_from(fields: AuthFields) -> Result<Credentials, &'static str> {
        match fields {
            AuthFields {
                email: Some(email),
                password: Some(password),
                token: None,
            } => Ok(Credentials::Password { email, password }),
            AuthFields {
                email: None,
                password: None,
                token: Some(token),
            } => Ok(Credentials::Token(token)),
            _ => Err(AUTH_FIELDS),
        }
    }
}

const AUTH_FIELDS: &str = "auth takes \"email\" and \"password\" strings, or a \"token\" string";

/// Never prints a password or a token.
impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Auth(Credentials::Password { email, .. }) => write!(f, "Auth({email})"),
            Op::Auth(Credentials::Token(_)) => f.write_str("Auth(token)"),
            Op::Query { text, .. } => write!(f, "Query({text:?})"),
            Op::Ping => f.write_str("Ping"),
            Op::Cancel { target } => write!(f, "Cancel({target})"),
            Op::Subscribe { text, after, .. } => write!(f, "Subscribe({text:?}, {after:?})"),
            Op::Unsubscribe { sub } => write!(f, "Unsubscribe({sub})"),
            Op::Backup { dir } => write!(f, "Backup({dir:?})"),
        }
    }
}

/// A line that is not a request: the id it named (if any could be read)
/// and what is wrong, answered as `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct BadRequest {
    pub id: Json,
    pub message: String,
}

impl BadRequest {
    pub fn response(&self) -> Json {
        error(&self.id, &Error::invalid(self.message.clone()), None)
    }
}

/// The fields of the requests that come by the thousand, `query` and
/// `ping`, read in one pass. Anything else, and anything odd (a duplicate
/// field, a field of the wrong type), takes `decode`'s general path, which
/// reads the line as a JSON tree first to answer with its `id` and a reason.
#[derive(Deserialize)]
struct Common<'a> {
    #[serde(default)]
    id: Json,
    #[serde(borrow)]
    op: Cow<'a, str>,
    text: Option<String>,
    #[serde(default, deserialize_with = "params")]
    params: Params,
}

/// Decodes one request line (without its newline). Error messages never
/// quote the line: it may hold a password.
pub fn decode(line: &[u8]) -> Result<Request, BadRequest> {
    if let Ok(common) = serde_json::from_slice::<Common<'_>>(line) {
        match (common.op.as_ref(), common.text) {
            ("query", Some(text)) => {
                return Ok(Request {
                    id: common.id,
                    op: Op::Query {
                        text,
                        params: common.params,
                    },
                });
            }
            ("ping", _) => {
                return Ok(Request {
                    id: common.id,
                    op: Op::Ping,
                });
            }
            _ => {}
        }
    }
    decode_tree(line)
}

/// The general path of `decode`: any op, and a reason for any bad line.
fn decode_tree(line: &[u8]) -> Result<Request, BadRequest> {
    let bad = |id: Json, message: String| BadRequest { id, message };
    let value: Json = serde_json::from_slice(line).map_err(|e| {
        bad(
            Json::Null,
            format!(
                "a request is one JSON object per line; this line is not JSON ({})",
                e.classify_text()
            ),
        )
    })?;
    let Json::Object(fields) = value else {
        return Err(bad(
            Json::Null,
            "a request is a JSON object with an \"op\"".into(),
        ));
    };
    let id = fields.get("id").cloned().unwrap_or(Json::Null);
    let op_name = match fields.get("op") {
        Some(Json::String(op)) => op.clone(),
        Some(_) => return Err(bad(id, "\"op\" is a string".into())),
        None => return Err(bad(id, "the request has no \"op\"".into())),
    };
    let op = serde_json::from_value::<Op>(Json::Object(fields)).map_err(|e| {
        let message = match op_name.as_str() {
            // serde quotes wrong values; an auth request's may be a secret.
            "auth" => AUTH_FIELDS.to_string(),
            "query" | "ping" | "cancel" | "subscribe" | "unsubscribe" => {
                format!("{op_name}: {e}")
            }
            _ => format!(
                "unknown op {op_name:?}: the ops are auth, query, subscribe, unsubscribe, ping and cancel"
            ),
        };
        bad(id.clone(), message)
    })?;
    Ok(Request { id, op })
}

/// serde_json's error category, without its position text.
trait Classify {
    fn classify_text(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_text(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Eof => "it ends early",
            serde_json::error::Category::Data => "wrong data",
            serde_json::error::Category::Io => "unreadable",
        }
    }
}

/// `{"id":…,"ok":true, …fields}`
pub fn ok(id: &Json, fields: Map<String, Json>) -> Json {
    let mut out = Map::new();
    out.insert("id".into(), id.clone());
    out.insert("ok".into(), Json::Bool(true));
    out.extend(fields);
    Json::Object(out)
}

/// A query's answer line: `{"id":…,"ok":true,"columns":…,"rows":…,"stats":…}`
/// and its newline, written straight from the outcome: building it as a
/// JSON tree first cost more than a point query's own execution.
pub fn result_line(id: &Json, outcome: &Outcome) -> Vec<u8> {
    #[derive(Serialize)]
    struct Answer<'a> {
        id: &'a Json,
        ok: bool,
        columns: &'a [String],
        rows: &'a [Vec<Json>],
        stats: &'a Stats,
    }
    let answer = Answer {
        id,
        ok: true,
        columns: &outcome.columns,
        rows: &outcome.rows,
        stats: &outcome.stats,
    };
    let mut bytes = Vec::with_capacity(256);
    match serde_json::to_writer(&mut bytes, &answer) {
        Ok(()) => {
            bytes.push(b'\n');
            bytes
        }
        // JSON values always serialize; should one not, the client still
        // gets an answer to its request.
        Err(e) => line(&error(id, &Error::io(e), None)),
    }
}

/// `{"id":…,"ok":false,"error":{"code":…,"message":…[,"line","col"]}}`,
/// with `statement` (0-based) in the error when a query's statement failed.
pub fn error(id: &Json, error: &Error, statement: Option<usize>) -> Json {
    let mut body = match json_error(error) {
        Json::Object(mut outer) => outer.remove("error").unwrap_or(Json::Null),
        other => other,
    };
    if let (Some(index), Json::Object(fields)) = (statement, &mut body) {
        fields.insert("statement".into(), json!(index));
    }
    json!({"id": id, "ok": false, "error": body})
}

/// A login refused unchecked because the account or the address must
/// still wait: `NOT_AUTHENTICATED` with `retry_after_ms`.
pub fn locked(id: &Json, wait: std::time::Duration) -> Json {
    let e = Error::new(
        ErrorCode::NotAuthenticated,
        "too many failed logins for this account or address: try again later",
    );
    let mut response = error(id, &e, None);
    if let Some(Json::Object(body)) = response.get_mut("error") {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        body.insert("retry_after_ms".into(), json!(ms));
    }
    response
}

/// The start of a subscription's event lines, `{"id":…,"event":`; each
/// line is this, the event's JSON object, then `}` and a newline.
pub fn event_prefix(id: &Json) -> Vec<u8> {
    let mut prefix = b"{\"id\":".to_vec();
    prefix.extend_from_slice(id.to_string().as_bytes());
    prefix.extend_from_slice(b",\"event\":");
    prefix
}

/// The line that ends a subscription that fell behind or failed: its
/// error, with `last_seq`, the last commit whose events it was all sent.
pub fn subscription_ended(id: &Json, error: &Error, last_seq: u64) -> Json {
    let mut response = self::error(id, error, None);
    if let Some(Json::Object(body)) = response.get_mut("error") {
        body.insert("last_seq".into(), json!(last_seq));
    }
    response
}

/// An error about the connection rather than a request (`id` null).
pub fn notice(code: ErrorCode, message: impl Into<String>) -> Json {
    error(&Json::Null, &Error::new(code, message), None)
}

/// A response as its line, newline included.
pub fn line(response: &Json) -> Vec<u8> {
    let mut bytes = response.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(line: &str) -> (Json, String) {
        let e = decode(line.as_bytes()).unwrap_err();
        assert_eq!(e.response()["error"]["code"], json!("INVALID_ARGUMENT"));
        (e.id, e.message)
    }

    #[test]
    fn requests_decode_and_bad_ones_say_why_without_quoting_secrets() {
        let r = decode(br#"{"id":1,"op":"auth","email":"a@b.io","password":"pw-123456"}"#).unwrap();
        assert_eq!(r.id, json!(1));
        assert!(
            matches!(r.op, Op::Auth(Credentials::Password { ref email, .. }) if email == "a@b.io")
        );
        assert!(!format!("{:?}", r.op).contains("pw-123456"));
        let r = decode(br#"{"id":2,"op":"auth","token":"tok_A.ff"}"#).unwrap();
        assert!(matches!(r.op, Op::Auth(Credentials::Token(ref t)) if t == "tok_A.ff"));
        assert!(!format!("{:?}", r.op).contains("tok_A"));
        // Both ways at once, or half of one: refused without quoting.
        for both in [
            r#"{"op":"auth","email":"a","password":"s3cret","token":"tok_A.ff"}"#,
            r#"{"op":"auth","email":"a","token":"tok_A.ff"}"#,
            r#"{"op":"auth","password":"s3cret"}"#,
            r#"{"op":"auth"}"#,
        ] {
            let (_, message) = code(both);
            assert!(
                message.contains("token")
                    && !message.contains("s3cret")
                    && !message.contains("tok_A"),
                "{message}"
            );
        }
        let r = decode(br#"{"op":"query","text":"WHOAMI;","params":{"x":1},"extra":0}"#).unwrap();
        assert_eq!(r.id, Json::Null);
        assert!(
            matches!(r.op, Op::Query { ref params, .. } if params == &[("x".to_string(), json!(1))])
        );
        assert!(matches!(
            decode(br#"{"id":"a","op":"ping"}"#).unwrap().op,
            Op::Ping
        ));
        let r = decode(br#"{"id":3,"op":"subscribe","text":"EVENTS","after":1042}"#).unwrap();
        assert!(matches!(
            r.op,
            Op::Subscribe {
                after: Some(1042),
                ..
            }
        ));
        let r = decode(br#"{"id":3,"op":"subscribe","text":"EVENTS"}"#).unwrap();
        assert!(matches!(r.op, Op::Subscribe { after: None, .. }));
        let r = decode(br#"{"id":4,"op":"unsubscribe","sub":3}"#).unwrap();
        assert!(matches!(r.op, Op::Unsubscribe { ref sub } if *sub == json!(3)));
        for bad in [
            r#"{"id":5,"op":"subscribe","text":"EVENTS","after":-1}"#,
            r#"{"id":5,"op":"subscribe","text":"EVENTS","after":"7"}"#,
            r#"{"id":5,"op":"subscribe","text":"EVENTS","after":1.5}"#,
            r#"{"id":5,"op":"subscribe"}"#,
            r#"{"id":5,"op":"unsubscribe"}"#,
        ] {
            assert_eq!(code(bad).0, json!(5), "{bad}");
        }

        assert_eq!(code("not json").0, Json::Null);
        assert_eq!(code("[1,2]").0, Json::Null);
        assert_eq!(code(r#"{"id":7}"#).0, json!(7));
        assert_eq!(code(r#"{"id":7,"op":3}"#).0, json!(7));
        let (id, message) = code(r#"{"id":8,"op":"dance"}"#);
        assert_eq!(id, json!(8));
        assert!(message.contains("unknown op"), "{message}");
        assert!(code(r#"{"id":9,"op":"query"}"#).1.contains("text"));
        let (_, message) = code(r#"{"op":"auth","email":"a","password":123456789}"#);
        assert!(!message.contains("123456789"), "{message}");
        let (_, message) = code(r#"{"op":"auth","email":"a","password":"s3cret","#);
        assert!(!message.contains("s3cret"), "{message}");
        assert_eq!(code("\u{0}\u{1}").0, Json::Null);
    }

    proptest::proptest! {
        /// P1: no line, however malformed, panics the decoder; a bad one
        /// is INVALID_ARGUMENT.
        #[test]
        fn any_bytes_decode_or_are_invalid(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Err(bad) = decode(&line) {
                proptest::prop_assert_eq!(&bad.response()["error"]["code"], &json!("INVALID_ARGUMENT"));
            }
        }

        #[test]
        fn json_shaped_lines_decode_or_are_invalid(
            op in "(auth|query|ping|cancel|subscribe|unsubscribe|x)",
            field in "(id|email|password|text|params|target|after|sub)",
            value in "(1|\"s\"|null|\\[\\]|\\{\\}|true)",
        ) {
            let line = format!("{{\"op\":\"{op}\",\"{field}\":{value}}}");
            match decode(line.as_bytes()) {
                Ok(request) => proptest::prop_assert_eq!(request.id, if field == "id" {
                    serde_json::from_str::<Json>(&value).unwrap()
                } else {
                    Json::Null
                }),
                Err(bad) => proptest::prop_assert_eq!(&bad.response()["error"]["code"], &json!("INVALID_ARGUMENT")),
            }
        }
    }

    /// The answer written straight from an outcome is, byte for byte,
    /// the answer built as a JSON tree (`--format json`'s object in `ok`).
    #[test]
    fn a_result_line_is_the_tree_it_replaces() {
        let rows = vec![
            vec![json!(1), json!(-2.5), json!(null), json!(true)],
            vec![
                json!("quote \" slash \\ newline \n tab \t é \u{1}"),
                json!({"b": [1, {"z": 0, "a": 1}], "a": "x"}),
                json!(f64::MAX),
                json!(u64::MAX),
            ],
        ];
        for (id, outcome) in [
            (json!(7), Outcome::default()),
            (
                json!({"k": ["x", 1]}),
                Outcome {
                    columns: vec![
                        "t.id".into(),
                        "name \"quoted\"".into(),
                        "c".into(),
                        "d".into(),
                    ],
                    rows,
                    stats: Stats {
                        rows: 2,
                        micros: 1234,
                    },
                    value: Some(json!("ignored")),
                },
            ),
        ] {
            let tree = match crate::query::format::json_result(&outcome) {
                Json::Object(fields) => ok(&id, fields),
                other => panic!("{other}"),
            };
            assert_eq!(
                String::from_utf8(result_line(&id, &outcome)).unwrap(),
                String::from_utf8(line(&tree)).unwrap()
            );
        }
    }

    /// What a decoded line says, for comparing two decodings: parameters
    /// as they bind (a repeated name, its last value).
    fn said(decoded: Result<Request, BadRequest>) -> (Json, String) {
        match decoded {
            Ok(Request {
                id,
                op: Op::Query { text, params },
            }) => {
                let bound: std::collections::BTreeMap<String, Json> = params.into_iter().collect();
                (id, format!("query {text:?} {bound:?}"))
            }
            Ok(Request { id, op }) => (id, format!("{op:?}")),
            Err(bad) => (bad.id, format!("bad: {}", bad.message)),
        }
    }

    proptest::proptest! {
        /// The one-pass reading of queries and pings decodes every line as
        /// the general path does: the same request, or the same refusal
        /// (fields of the wrong type, duplicates, escapes, unknown fields).
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            op in proptest::sample::select(vec!["", r#""query""#, r#""ping""#, r#""cancel""#, r#""q\u0075ery""#, "1"]),
            text in proptest::sample::select(vec!["", r#""RETURN 1""#, r#""a\"b""#, "1", "null", r#""é \u00e9""#, "\"tab\there\""]),
            params in proptest::sample::select(vec![
                "", "{}", "{ }", r#"{"x":[1],"$y":"z"}"#, "null", "1", "[]", r#"{"a":"b","a":7}"#,
                r#"{"n":0}"#, r#"{"n":01}"#, r#"{"n":-1}"#, r#"{"n":1.5}"#, r#"{"n":2e3}"#,
                r#"{"n":18446744073709551616}"#, r#"{"n":true}"#, r#"{"a\"":"b"}"#, r#"{"a":"b",}"#,
            ]),
            id in proptest::sample::select(vec![
                "", "1", "0", "007", "-3", "4.0", "18446744073709551615", r#""a""#, r#""a\nb""#, "null",
                r#"{"k":[2]}"#,
            ]),
            extra in proptest::sample::select(vec!["", r#""op":"ping""#, r#""text":"RETURN 2""#, r#""params":{"w":1}"#, r#""id":9"#, r#""sub":1"#]),
            extra_first in proptest::prelude::any::<bool>(),
            // Compact, as serde writes; spaced, as Python's json.dumps does.
            spaced in proptest::prelude::any::<bool>(),
        ) {
            let (comma, colon) = if spaced { (", ", ": ") } else { (",", ":") };
            let mut body: Vec<String> = [("id", id), ("op", op), ("text", text), ("params", params)]
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| format!("\"{k}\"{colon}{v}"))
                .collect();
            if !extra.is_empty() {
                body.insert(if extra_first { 0 } else { body.len() }, extra.to_string());
            }
            let line = format!("{{{}}}", body.join(comma));
            proptest::prop_assert_eq!(said(decode(line.as_bytes())), said(decode_tree(line.as_bytes())), "{}", line);
        }
    }

    #[test]
    fn responses_have_the_documented_shapes() {
        let e = Error::forbidden("no").at("USE ORG x", 4);
        assert_eq!(
            error(&json!(4), &e, Some(1)),
            json!({"id":4,"ok":false,"error":{"code":"FORBIDDEN","message":"no","line":1,"col":5,"statement":1}})
        );
        let out = Outcome {
            columns: vec!["n".into()],
            rows: vec![vec![json!(1)]],
            ..Default::default()
        };
        let r: Json = serde_json::from_slice(&result_line(&json!(2), &out)).unwrap();
        assert_eq!(r["ok"], json!(true));
        assert_eq!(r["columns"], json!(["n"]));
        assert_eq!(r["rows"], json!([[1]]));
        assert!(r["stats"].is_object());
        assert_eq!(
            line(&ok(&json!(3), Map::new())),
            b"{\"id\":3,\"ok\":true}\n".to_vec()
        );
        assert_eq!(event_prefix(&json!("s")), br#"{"id":"s","event":"#.to_vec());
        let e = Error::new(ErrorCode::Cancelled, "behind");
        assert_eq!(
            subscription_ended(&json!(3), &e, 1042),
            json!({"id":3,"ok":false,"error":{"code":"CANCELLED","message":"behind","last_seq":1042}})
        );
    }
}
