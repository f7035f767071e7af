//! Runtime values of OQL: JSON data, plus graph elements (nodes,
//! relationships, paths) that keep their records until they are printed.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value as Json, json};

use crate::error::{Error, Result};
use crate::graph::Edge;
use crate::model::{Id, Knowledge, Millis, Person, Thing, parse_iso};

/// A node a pattern variable can bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Thing(Thing),
    Person(Person),
    Knowledge(Knowledge),
    /// A node reached over an edge and bound by its id alone, its record
    /// not read: the planner binds one only where no expression reads more
    /// of the node than its id (`plan::record_slots`), and the edge index
    /// only holds edges whose both ends are live and visible.
    Bare(Id),
}

impl Node {
    pub fn id(&self) -> Id {
        match self {
            Node::Thing(t) => t.id,
            Node::Person(p) => p.id,
            Node::Knowledge(k) => k.id,
            Node::Bare(id) => *id,
        }
    }

    /// The label a node pattern matches: the thing type, `person` or
    /// `knowledge` (a bare node has none; nodes with a label to check are
    /// always loaded).
    pub fn label(&self) -> &str {
        match self {
            Node::Thing(t) => &t.kind,
            Node::Person(_) => "person",
            Node::Knowledge(_) => "knowledge",
            Node::Bare(_) => "",
        }
    }

    /// A field by name; unknown names fall back to a thing's properties
    /// (`c.price` reads `properties.price`).
    pub fn field(&self, name: &str) -> Json {
        // The fields queries read most, straight from the record: the same
        // values `to_json` holds, without building the whole map per access.
        if let Some(v) = self.quick_field(name) {
            return v;
        }
        let fields = self.to_json();
        match fields.get(name) {
            Some(v) => v.clone(),
            None => match self {
                Node::Thing(t) => t
                    .properties
                    .value()
                    .get(name)
                    .cloned()
                    .unwrap_or(Json::Null),
                _ => Json::Null,
            },
        }
    }

    /// `field(name)` for the names that do not need the whole map; None
    /// for the others. Each value is what `to_json` has under that name.
    fn quick_field(&self, name: &str) -> Option<Json> {
        if name == "id" {
            return Some(id_json(self.id()));
        }
        match self {
            Node::Thing(t) => Some(match name {
                "type" => json!(t.kind),
                "name" => json!(t.name),
                "status" => json!(t.status),
                "properties" => Json::Object(t.properties.value().clone()),
                "org" => json!(t.org),
                "createdAt" => json!(t.created_at),
                "updatedAt" => json!(t.updated_at),
                // `deletedAt` is absent from the map of a live thing, so it
                // falls back to the properties like any unknown name.
                "deletedAt" => return None,
                other => t
                    .properties
                    .value()
                    .get(other)
                    .cloned()
                    .unwrap_or(Json::Null),
            }),
            Node::Person(p) => match name {
                "type" => Some(json!("person")),
                "name" => Some(json!(p.name)),
                "email" => Some(json!(p.email)),
                _ => None,
            },
            Node::Knowledge(k) => match name {
                "type" => Some(json!("knowledge")),
                "text" => Some(json!(k.text)),
                _ => None,
            },
            // Only its id is ever read (see the variant).
            Node::Bare(_) => Some(Json::Null),
        }
    }

    /// `to_json` of a node the caller owns (moves a thing's strings).
    pub fn into_json(self) -> Json {
        match self {
            Node::Thing(t) => thing_into_json(t),
            other => other.to_json(),
        }
    }

    /// All fields as a map; a person's password hash never appears.
    pub fn to_json(&self) -> Json {
        if let Node::Thing(t) = self {
            return thing_json(t);
        }
        let mut value = match self {
            Node::Thing(t) => serde_json::to_value(t),
            Node::Person(p) => serde_json::to_value(p),
            Node::Knowledge(k) => serde_json::to_value(k),
            Node::Bare(id) => Ok(json!({ "id": id })),
        }
        .unwrap_or(Json::Null);
        if let Json::Object(map) = &mut value {
            map.remove("passwordHash");
            if matches!(self, Node::Person(_)) {
                map.insert("type".into(), json!("person"));
            }
            if matches!(self, Node::Knowledge(_)) {
                map.insert("type".into(), json!("knowledge"));
            }
        }
        value
    }
}

/// A thing's map, built straight from the record: exactly what
/// `serde_json::to_value(thing)` gives (the same keys in the same order,
/// tested below), with one allocation for the map instead of a growing one
/// and no detour through serde's value serializer. Results that return
/// whole things spend most of their time here.
fn thing_json(t: &Thing) -> Json {
    thing_map(
        t,
        t.kind.clone(),
        t.name.clone(),
        t.properties.value().clone(),
    )
}

/// `thing_json` of a thing the caller owns: its strings and properties
/// move into the map instead of being copied.
fn thing_into_json(mut t: Thing) -> Json {
    let kind = std::mem::take(&mut t.kind);
    let name = std::mem::take(&mut t.name);
    let properties = std::mem::take(&mut t.properties).into_inner();
    thing_map(&t, kind, name, properties)
}

fn thing_map(t: &Thing, kind: String, name: String, properties: Map<String, Json>) -> Json {
    let mut m = Map::with_capacity(9);
    m.insert("id".into(), id_json(t.id));
    m.insert("type".into(), Json::String(kind));
    m.insert("name".into(), Json::String(name));
    m.insert("properties".into(), Json::Object(properties));
    m.insert("status".into(), Json::String(t.status.as_str().into()));
    m.insert("org".into(), t.org.map_or(Json::Null, id_json));
    m.insert("createdAt".into(), Json::from(t.created_at));
    m.insert("updatedAt".into(), Json::from(t.updated_at));
    if let Some(d) = t.deleted_at {
        m.insert("deletedAt".into(), Json::from(d));
    }
    Json::Object(m)
}

/// An id as JSON text, in one allocation of its exact size.
fn id_json(id: Id) -> Json {
    Json::String(id.to_text())
}

/// A path: nodes joined by relationships (`nodes.len() == rels.len() + 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub nodes: Vec<Arc<Node>>,
    pub rels: Vec<Arc<Edge>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Data(Json),
    Node(Arc<Node>),
    Rel(Arc<Edge>),
    Path(Arc<Path>),
}

pub const NULL: Val = Val::Data(Json::Null);

pub fn edge_json(e: &Edge) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(e.con));
    m.insert("type".into(), json!(e.kind));
    m.insert("from".into(), json!(e.from));
    m.insert("to".into(), json!(e.to));
    m.insert("validFrom".into(), json!(e.valid_from));
    m.insert(
        "validTo".into(),
        e.valid_to.map_or(Json::Null, |t| json!(t)),
    );
    Json::Object(m)
}

/// `edge_json(e)[name]`, without building the map.
fn edge_field(e: &Edge, name: &str) -> Json {
    match name {
        "id" => json!(e.con),
        "type" => json!(e.kind),
        "from" => json!(e.from),
        "to" => json!(e.to),
        "validFrom" => json!(e.valid_from),
        "validTo" => e.valid_to.map_or(Json::Null, |t| json!(t)),
        _ => Json::Null,
    }
}

impl Val {
    pub fn from_json(v: Json) -> Val {
        Val::Data(v)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Data(Json::Null))
    }

    /// The value as JSON, for output and for comparisons with data.
    pub fn to_json(&self) -> Json {
        match self {
            Val::Data(v) => v.clone(),
            Val::Node(n) => n.to_json(),
            Val::Rel(e) => edge_json(e),
            Val::Path(p) => json!({
                "nodes": p.nodes.iter().map(|n| n.to_json()).collect::<Vec<_>>(),
                "relationships": p.rels.iter().map(|e| edge_json(e)).collect::<Vec<_>>(),
            }),
        }
    }

    /// `to_json` of a value the caller no longer needs: data moves out
    /// instead of being copied, and so does a node no other row holds.
    /// For turning result rows into output.
    pub fn into_json(self) -> Json {
        match self {
            Val::Data(v) => v,
            Val::Node(n) => match Arc::try_unwrap(n) {
                Ok(node) => node.into_json(),
                Err(shared) => shared.to_json(),
            },
            other => other.to_json(),
        }
    }

    /// `value.name`: a node's field, a map's entry, a relationship's field.
    pub fn field(&self, name: &str) -> Val {
        match self {
            Val::Node(n) => Val::Data(n.field(name)),
            Val::Rel(e) => Val::Data(edge_field(e, name)),
            Val::Data(Json::Object(m)) => Val::Data(m.get(name).cloned().unwrap_or(Json::Null)),
            _ => NULL,
        }
    }

    /// Truth in WHERE: only `true` is true (null and everything else is not).
    pub fn truthy(&self) -> bool {
        matches!(self, Val::Data(Json::Bool(true)))
    }

    /// An id, from an id string or a node or relationship.
    pub fn as_id(&self) -> Result<Id> {
        match self {
            Val::Node(n) => Ok(n.id()),
            Val::Rel(e) => Ok(e.con),
            Val::Data(Json::String(s)) => s.parse(),
            other => Err(Error::invalid(format!(
                "expected an id, found {}",
                other.describe()
            ))),
        }
    }

    /// A time: epoch milliseconds, or an ISO date / date-time string.
    pub fn as_millis(&self) -> Result<Millis> {
        match self {
            Val::Data(Json::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| Error::invalid("a time must be whole milliseconds")),
            Val::Data(Json::String(s)) => parse_iso(s),
            other => Err(Error::invalid(format!(
                "expected a time, found {}",
                other.describe()
            ))),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Data(Json::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Data(Json::Number(n)) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Data(Json::Number(n)) => n.as_f64(),
            _ => None,
        }
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Val::Data(Json::Null) => "null".into(),
            Val::Data(Json::Bool(_)) => "a boolean".into(),
            Val::Data(Json::Number(_)) => "a number".into(),
            Val::Data(Json::String(_)) => "a string".into(),
            Val::Data(Json::Array(_)) => "a list".into(),
            Val::Data(Json::Object(_)) => "a map".into(),
            Val::Node(_) => "a node".into(),
            Val::Rel(_) => "a relationship".into(),
            Val::Path(_) => "a path".into(),
        }
    }
}

/// Equality as `=` sees it: graph elements by identity, numbers by value
/// (1 = 1.0), everything else as JSON.
pub fn equal(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Node(x), Val::Node(y)) => x.id() == y.id(),
        (Val::Rel(x), Val::Rel(y)) => x.con == y.con,
        (Val::Node(n), other) | (other, Val::Node(n)) => {
            other.as_str() == Some(&n.id().to_string())
        }
        (Val::Data(x), Val::Data(y)) => json_equal(x, y),
        _ => json_equal(&a.to_json(), &b.to_json()),
    }
}

fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        _ => a == b,
    }
}

/// Ordering for `<`, ORDER BY, min and max: nulls first, then booleans,
/// numbers, strings, lists, maps; values of different kinds compare by kind.
pub fn compare(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        // Data compares in place: sorting must not copy every value twice
        // per comparison.
        (Val::Data(x), Val::Data(y)) => compare_json(x, y),
        _ => compare_json(&a.to_json(), &b.to_json()),
    }
}

/// What DISTINCT and grouping compare a value by: two values get the same
/// key exactly when they count as the same. Data by its JSON text; a node
/// by its id (within one snapshot a node's fields follow from its id, so
/// this is the same as comparing its map, without building it);
/// relationships and paths by their JSON (junction relationships share an
/// id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Node(Id),
    Json(String),
}

impl Key {
    pub fn of(v: &Val) -> Key {
        match v {
            Val::Node(n) => Key::Node(n.id()),
            Val::Data(d) => Key::Json(d.to_string()),
            other => Key::Json(other.to_json().to_string()),
        }
    }

    /// The key of several values (a row, a group's key columns).
    pub fn of_all(values: &[Val]) -> Vec<Key> {
        values.iter().map(Key::of).collect()
    }
}

fn rank(v: &Json) -> u8 {
    match v {
        Json::Null => 0,
        Json::Bool(_) => 1,
        Json::Number(_) => 2,
        Json::String(_) => 3,
        Json::Array(_) => 4,
        Json::Object(_) => 5,
    }
}

pub fn compare_json(a: &Json, b: &Json) -> Ordering {
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(f64::NAN)
                .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        },
        (Json::String(x), Json::String(y)) => x.cmp(y),
        (Json::Array(x), Json::Array(y)) => {
            for (a, b) in x.iter().zip(y) {
                let o = compare_json(a, b);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Json::Object(x), Json::Object(y)) => serde_json::to_string(x)
            .unwrap_or_default()
            .cmp(&serde_json::to_string(y).unwrap_or_default()),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_and_kinds_by_rank() {
        assert!(equal(&Val::Data(json!(1)), &Val::Data(json!(1.0))));
        assert!(!equal(&Val::Data(json!(1)), &Val::Data(json!("1"))));
        assert_eq!(
            compare(&Val::Data(json!(2)), &Val::Data(json!(10.5))),
            Ordering::Less
        );
        assert_eq!(compare(&NULL, &Val::Data(json!(false))), Ordering::Less);
        assert_eq!(
            compare(&Val::Data(json!("b")), &Val::Data(json!("a"))),
            Ordering::Greater
        );
    }

    fn thing(org: Option<Id>, deleted_at: Option<Millis>) -> Thing {
        Thing {
            id: Id::generate(crate::model::Dim::Thing),
            kind: "course".into(),
            name: "Rust \"quoted\"".into(),
            properties: json!({"price": 39, "tags": ["a"], "nested": {"x": null}})
                .as_object()
                .cloned()
                .unwrap()
                .into(),
            status: crate::ontology::Status::Published,
            org,
            created_at: 1,
            updated_at: -2,
            deleted_at,
        }
    }

    #[test]
    fn a_things_map_is_exactly_its_serde_value() {
        let org = Some(Id::generate(crate::model::Dim::Org));
        let built = [thing(None, None), thing(org, None), thing(org, Some(7))];
        // As read from the store: the properties still unparsed text.
        let read = built
            .clone()
            .map(|t| serde_json::from_str::<Thing>(&serde_json::to_string(&t).unwrap()).unwrap());
        for t in built.into_iter().chain(read) {
            let node = Node::Thing(t.clone());
            let want = serde_json::to_value(&t).unwrap();
            assert_eq!(node.to_json(), want);
            assert_eq!(node.clone().into_json().to_string(), want.to_string());
            let shared = Arc::new(node.clone());
            let held = shared.clone();
            assert_eq!(Val::Node(shared).into_json(), want);
            assert_eq!(Val::Node(held).into_json(), want);
            // Same key order too (results print maps in this order).
            assert_eq!(node.to_json().to_string(), want.to_string());
            for status in crate::ontology::Status::ALL {
                let t = Thing {
                    status,
                    ..t.clone()
                };
                assert_eq!(
                    Node::Thing(t.clone()).to_json(),
                    serde_json::to_value(&t).unwrap()
                );
            }
        }
    }

    #[test]
    fn quick_fields_are_the_fields_of_the_map() {
        let org = Some(Id::generate(crate::model::Dim::Org));
        for t in [thing(None, None), thing(org, Some(7))] {
            let node = Node::Thing(t.clone());
            let map = serde_json::to_value(&t).unwrap();
            for name in [
                "id",
                "type",
                "name",
                "properties",
                "status",
                "org",
                "createdAt",
                "updatedAt",
                "deletedAt",
                "price",
                "tags",
                "missing",
            ] {
                let want = map
                    .get(name)
                    .cloned()
                    .or_else(|| t.properties.get(name).cloned())
                    .unwrap_or(Json::Null);
                assert_eq!(node.field(name), want, "{name}");
            }
        }
        let e = Edge {
            con: Id::generate(crate::model::Dim::Connection),
            kind: "owns".into(),
            from: Id::generate(crate::model::Dim::Thing),
            to: Id::generate(crate::model::Dim::Thing),
            valid_from: 3,
            valid_to: None,
        };
        let rel = Val::Rel(Arc::new(e.clone()));
        for name in ["id", "type", "from", "to", "validFrom", "validTo", "other"] {
            let want = edge_json(&e).get(name).cloned().unwrap_or(Json::Null);
            assert_eq!(rel.field(name), Val::Data(want), "{name}");
        }
    }

    #[test]
    fn keys_tell_apart_what_distinct_tells_apart() {
        let t = thing(None, None);
        let node = Val::Node(Arc::new(Node::Thing(t.clone())));
        let bare = Val::Node(Arc::new(Node::Bare(t.id)));
        // A node is the same node whether its record was read or not.
        assert_eq!(Key::of(&node), Key::of(&bare));
        // Its id as a string, or its map as data, is another value.
        assert_ne!(Key::of(&node), Key::of(&Val::Data(json!(t.id))));
        assert_ne!(Key::of(&node), Key::of(&Val::Data(node.to_json())));
        assert_ne!(
            Key::of(&Val::Data(json!(1))),
            Key::of(&Val::Data(json!("1")))
        );
        assert_eq!(
            Key::of(&Val::Data(json!([1, "a"]))),
            Key::of(&Val::Data(json!([1, "a"])))
        );
    }

    #[test]
    fn times_accept_millis_and_iso_text() {
        assert_eq!(Val::Data(json!(5)).as_millis().unwrap(), 5);
        assert_eq!(
            Val::Data(json!("1970-01-02")).as_millis().unwrap(),
            86_400_000
        );
        assert!(Val::Data(json!(true)).as_millis().is_err());
    }
}
