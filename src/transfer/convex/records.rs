//! One Convex document of the original backend's tables (ONTOLOGY.md, the
//! fields in their camelCase names) as the onedb record the loader takes,
//! with its references rewritten through the id map. Each function returns
//! the reason a document cannot become a record; the loader then checks
//! the record as it checks a dump's line.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{
    Connection, Dim, Event, Id, JunctionRole, Knowledge, KnowledgeKind, Lazy, Millis, Org,
    OrgStatus, Person, PersonStatus, Plan, Props, Role, Status, Thing,
};
use crate::transfer::convex::ids::{Ids, Ref, id_of};

/// The highest time an id's 48 time bits hold.
const MAX_ID_MS: i64 = (1 << 48) - 1;

/// A document's own fields and what Convex adds to every document.
pub struct Doc<'a> {
    pub id: &'a str,
    /// `_creationTime`, in whole milliseconds.
    pub created: Millis,
    fields: &'a Props,
}

type Mapped<T> = Result<T, String>;

impl<'a> Doc<'a> {
    /// `fields` must hold `_id`; the reason when `_creationTime` is bad.
    pub fn new(id: &'a str, fields: &'a Props) -> Mapped<Doc<'a>> {
        let created = match fields.get("_creationTime") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(-1.0),
            _ => return Err("_creationTime is not a number".into()),
        };
        if !(0.0..=MAX_ID_MS as f64).contains(&created) {
            return Err(format!(
                "_creationTime {created} is no time in milliseconds"
            ));
        }
        Ok(Doc {
            id,
            created: created.floor() as Millis,
            fields,
        })
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.fields.get(name).filter(|v| !v.is_null())
    }

    fn text(&self, name: &str) -> Mapped<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{name} is not a string")),
        }
    }

    fn required(&self, name: &str) -> Mapped<&'a str> {
        self.text(name)?.ok_or_else(|| format!("{name} is missing"))
    }

    fn millis(&self, name: &str) -> Mapped<Option<Millis>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(ms) => Ok(Some(ms)),
                None => n
                    .as_f64()
                    .filter(|x| x.abs() < 1e15)
                    .map(|x| Some(x.floor() as Millis))
                    .ok_or_else(|| format!("{name} is no time in milliseconds")),
            },
            Some(_) => Err(format!("{name} is not a number (milliseconds)")),
        }
    }

    /// A JSON object field; empty when absent.
    fn object(&self, name: &str) -> Mapped<Props> {
        match self.get(name) {
            None => Ok(Props::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(format!("{name} is not an object")),
        }
    }

    /// A reference field, resolved; None when absent.
    fn reference(&self, ids: &Ids, name: &str, dims: &[Dim]) -> Mapped<Option<Ref>> {
        self.text(name)?
            .map(|convex| ids.resolve(name, convex, dims))
            .transpose()
    }

    fn onedb_id(&self, dim: Dim) -> Id {
        id_of(dim, self.id, self.created)
    }
}

/// A closed-set field through its own parser (with its "did you mean").
fn named<T>(
    doc: &Doc,
    name: &str,
    parse: fn(&str) -> crate::error::Result<T>,
) -> Mapped<Option<T>> {
    doc.text(name)?
        .map(|text| parse(text).map_err(|e| e.message))
        .transpose()
}

/// The Convex names of the original's limits, as onedb's counters.
fn limit_name(convex: &str) -> &str {
    match convex {
        "users" => "people",
        "apiCalls" => "api_calls",
        other => other,
    }
}

pub fn org(doc: &Doc) -> Mapped<Org> {
    let slug = doc.required("slug")?;
    let plan = named(doc, "plan", Plan::parse)?.unwrap_or(Plan::Starter);
    let mut limits: BTreeMap<String, i64> = plan.default_limits();
    for (name, value) in doc.object("limits")? {
        let limit = value
            .as_i64()
            .filter(|n| *n >= -1)
            .ok_or_else(|| format!("limits.{name} is not a whole number ≥ -1"))?;
        // Storage is counted in bytes here, in GB in the original's plans.
        let (name, limit) = match name.as_str() {
            "storage" if limit > 0 => ("storage_bytes", limit.saturating_mul(1_000_000_000)),
            "storage" => ("storage_bytes", limit),
            other => (limit_name(other), limit),
        };
        limits.insert(name.to_string(), limit);
    }
    Ok(Org {
        id: doc.onedb_id(Dim::Org),
        slug: slug.to_string(),
        name: doc.text("name")?.unwrap_or(slug).to_string(),
        plan,
        status: named(doc, "status", OrgStatus::parse)?.unwrap_or(OrgStatus::Active),
        limits,
        settings: doc.object("settings")?,
        created_at: doc.created,
        updated_at: doc.millis("updatedAt")?.unwrap_or(doc.created),
    })
}

pub fn person(doc: &Doc, ids: &Ids) -> Mapped<Person> {
    let email =
        crate::graph::people::normalize_email(doc.required("email")?).map_err(|e| e.message)?;
    let name = match doc.text("name")?.or(doc.text("displayName")?) {
        Some(name) => name.to_string(),
        None => doc.text("username")?.unwrap_or(&email).to_string(),
    };
    let status = match doc.text("status")? {
        None | Some("active") => PersonStatus::Active,
        Some("removed" | "inactive" | "suspended" | "deleted") => PersonStatus::Removed,
        Some(other) => {
            return Err(format!(
                "unknown person status {other:?} (active or removed)"
            ));
        }
    };
    Ok(Person {
        id: doc.onedb_id(Dim::Person),
        email,
        name,
        role: named(doc, "role", Role::parse)?.ok_or("role is missing")?,
        org: doc
            .reference(ids, "organizationId", &[Dim::Org])?
            .map(|r| r.id),
        status,
        // People come without passwords: `onedb passwd` or a token later.
        password_hash: None,
        created_at: doc.created,
        updated_at: doc.millis("updatedAt")?.unwrap_or(doc.created),
    })
}

pub fn thing(doc: &Doc, ids: &Ids) -> Mapped<Thing> {
    Ok(Thing {
        id: doc.onedb_id(Dim::Thing),
        kind: doc.required("type")?.to_string(),
        name: doc.required("name")?.to_string(),
        properties: Lazy::from(doc.object("properties")?),
        status: named(doc, "status", Status::parse)?.unwrap_or(Status::Draft),
        org: doc
            .reference(ids, "organizationId", &[Dim::Org])?
            .map(|r| r.id),
        created_at: doc.created,
        updated_at: doc.millis("updatedAt")?.unwrap_or(doc.created),
        deleted_at: doc.millis("deletedAt")?,
    })
}

/// Whether a record of org `other` may be joined to one of `org`: the same
/// org, or a platform record (a global thing, a platform owner).
fn same_org(org: Option<Id>, other: Option<Id>) -> bool {
    other.is_none() || other == org
}

/// A connection and its org (its `from`'s).
pub fn connection(doc: &Doc, ids: &Ids) -> Mapped<(Connection, Option<Id>)> {
    let ends = [Dim::Thing, Dim::Person];
    let from = doc
        .reference(ids, "fromThingId", &ends)?
        .ok_or("fromThingId is missing")?;
    let to = doc
        .reference(ids, "toThingId", &ends)?
        .ok_or("toThingId is missing")?;
    if from.id == to.id {
        return Err("fromThingId and toThingId are the same record: no self-connections".into());
    }
    if from.org != to.org && !(to.org.is_none() && to.id.dim() == Dim::Thing) {
        return Err(
            "an edge across organizations: fromThingId and toThingId belong to different orgs"
                .into(),
        );
    }
    if let Some(org) = doc.reference(ids, "organizationId", &[Dim::Org])?
        && Some(org.id) != from.org
    {
        return Err("organizationId is not the org of fromThingId and toThingId".into());
    }
    let strength = match doc.get("strength") {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| format!("strength {v} is outside 0..1"))?,
        ),
    };
    let valid_from = doc.millis("validFrom")?.unwrap_or(doc.created);
    let valid_to = doc.millis("validTo")?;
    if valid_to.is_some_and(|to| to < valid_from) {
        return Err("validTo is before validFrom".into());
    }
    let kind = doc.required("relationshipType")?.to_string();
    let connection = Connection {
        id: doc.onedb_id(Dim::Connection),
        from: from.id,
        to: to.id,
        kind,
        metadata: doc.object("metadata")?,
        strength,
        valid_from,
        valid_to,
        created_at: doc.created,
        ended_at: None,
    };
    Ok((connection, from.org))
}

/// Knowledge and its org: `organizationId`, else its source thing's, else
/// that of the thing `thingKnowledge` links it to (`linked`, resolved or
/// why not: then its org is unknown and it is invalid too).
pub fn knowledge(
    doc: &Doc,
    ids: &Ids,
    linked: Option<Mapped<Ref>>,
) -> Mapped<(Knowledge, Option<Id>)> {
    let kind = match doc.text("knowledgeType")? {
        Some("label") => KnowledgeKind::Label,
        // The original's documents and bare vectors are chunks of text here.
        Some("chunk" | "document" | "vector_only") => KnowledgeKind::Chunk,
        Some(other) => {
            return Err(format!(
                "unknown knowledgeType {other:?} (label, chunk, document or vector_only)"
            ));
        }
        None => return Err("knowledgeType is missing".into()),
    };
    let embedding = match doc.get("embedding") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or("embedding holds something other than numbers")?,
        ),
        Some(_) => return Err("embedding is not an array of numbers".into()),
    };
    if let (Some(e), Some(dim)) = (&embedding, doc.get("embeddingDim"))
        && dim.as_u64() != Some(e.len() as u64)
    {
        return Err(format!(
            "a wrong embedding dimension: embeddingDim {dim}, the embedding has {}",
            e.len()
        ));
    }
    let labels = match doc.get("labels") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|l| l.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or("labels holds something other than strings")?,
        Some(_) => return Err("labels is not an array of strings".into()),
    };
    let source = doc.reference(ids, "sourceThingId", &[Dim::Thing])?;
    let org = match doc.reference(ids, "organizationId", &[Dim::Org])? {
        Some(org) => Some(org.id),
        None => match (source, linked) {
            (Some(source), _) => source.org,
            (None, Some(linked)) => linked?.org,
            (None, None) => None,
        },
    };
    if let Some(source) = source
        && source.org != org
    {
        return Err("sourceThingId belongs to another organization".into());
    }
    let knowledge = Knowledge {
        id: doc.onedb_id(Dim::Knowledge),
        kind,
        text: doc.text("text")?.unwrap_or_default().to_string(),
        embedding: embedding.map(Lazy::from),
        labels,
        source: source.map(|r| r.id),
        created_at: doc.created,
        deleted_at: doc.millis("deletedAt")?,
    };
    Ok((knowledge, org))
}

/// A knowledge–thing link: knowledge, thing, role and the org.
pub fn link(doc: &Doc, ids: &Ids) -> Mapped<(Id, Id, JunctionRole, Option<Id>)> {
    let thing = doc
        .reference(ids, "thingId", &[Dim::Thing])?
        .ok_or("thingId is missing")?;
    let knowledge = doc
        .reference(ids, "knowledgeId", &[Dim::Knowledge])?
        .ok_or("knowledgeId is missing")?;
    if thing.org != knowledge.org {
        return Err(
            "a link across organizations: thingId and knowledgeId belong to different orgs".into(),
        );
    }
    let role = match doc.text("role")? {
        None if knowledge.chunk => JunctionRole::ChunkOf,
        None => JunctionRole::Label,
        Some(text) => JunctionRole::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                format!("unknown role {text:?} (label, summary, chunk_of, caption or keyword)")
            })?,
    };
    Ok((knowledge.id, thing.id, role, thing.org))
}

/// An event and its org: `organizationId`, else its target's, else its
/// actor's. Its id's time is its `timestamp`: event time ranges are id
/// ranges.
pub fn event(doc: &Doc, ids: &Ids) -> Mapped<(Event, Option<Id>)> {
    let actor = doc.reference(ids, "actorId", &[Dim::Person])?;
    let any = [
        Dim::Org,
        Dim::Person,
        Dim::Thing,
        Dim::Connection,
        Dim::Knowledge,
        Dim::Event,
    ];
    let target = doc.reference(ids, "targetId", &any)?;
    let org = match doc.reference(ids, "organizationId", &[Dim::Org])? {
        Some(org) => Some(org.id),
        None => target.and_then(|t| t.org).or(actor.and_then(|a| a.org)),
    };
    if actor.is_some_and(|a| !same_org(org, a.org)) {
        return Err("actorId belongs to another organization than the event".into());
    }
    if target.is_some_and(|t| !same_org(org, t.org)) {
        return Err("targetId belongs to another organization than the event".into());
    }
    let timestamp = doc.millis("timestamp")?.unwrap_or(doc.created);
    if !(0..=MAX_ID_MS).contains(&timestamp) {
        return Err(format!("timestamp {timestamp} is no time in milliseconds"));
    }
    let event = Event {
        id: id_of(Dim::Event, doc.id, timestamp),
        kind: doc.required("type")?.to_string(),
        actor: actor.map(|a| a.id),
        target: target.map(|t| t.id),
        timestamp,
        metadata: doc.object("metadata")?,
        seq: None,
    };
    Ok((event, org))
}
