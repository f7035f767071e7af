//! The lines of a dump (docs/dump-format.md): a header, then one JSON
//! object per record with a `kind` field. Records are written with their
//! stored fields; lines of records that do not name their org themselves
//! (connections, knowledge, links, triggers, schemas, events) carry the
//! `org` of their tenant (null: the platform).

use serde::{Deserialize, Serialize};

use crate::model::{Id, JunctionRole, Knowledge, KnowledgeKind, Lazy, Millis, Props};

/// The dump format this onedb writes and reads.
pub const DUMP_FORMAT: u32 = 1;

/// The first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub onedb_dump: u32,
    /// The onedb that wrote it.
    pub version: String,
    /// The commit the dump's snapshot saw.
    pub commit: u64,
    /// The org's slug, or null for the whole database.
    pub org: Option<String>,
}

/// A record line: `kind`, optionally the tenant's `org`, then the record's
/// own fields.
#[derive(Serialize)]
pub struct Tagged<'a, T: Serialize> {
    pub kind: &'static str,
    /// Present (possibly null) on lines whose record does not say its org.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<Option<Id>>,
    #[serde(flatten)]
    pub record: &'a T,
}

/// What the loader reads first of every line.
#[derive(Deserialize)]
pub struct Head {
    pub kind: String,
    #[serde(default)]
    pub org: Option<Id>,
}

/// A vocabulary addition.
#[derive(Debug, Serialize, Deserialize)]
pub struct TypeLine {
    /// `thing`, `connection` or `event`.
    pub of: String,
    pub name: String,
    pub category: String,
}

/// A knowledge item; its own kind (label or chunk) is `knowledgeType`, the
/// ontology's name, since `kind` names the line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeLine {
    pub id: Id,
    pub knowledge_type: KnowledgeKind,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Id>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
}

impl From<KnowledgeLine> for Knowledge {
    fn from(k: KnowledgeLine) -> Knowledge {
        Knowledge {
            id: k.id,
            kind: k.knowledge_type,
            text: k.text,
            embedding: k.embedding.map(Lazy::from),
            labels: k.labels,
            source: k.source,
            created_at: k.created_at,
            deleted_at: k.deleted_at,
        }
    }
}

/// An entry of the knowledge–thing junction.
#[derive(Debug, Serialize, Deserialize)]
pub struct LinkLine {
    pub knowledge: Id,
    pub thing: Id,
    pub role: JunctionRole,
}

/// A thing type's property schema.
#[derive(Debug, Serialize, Deserialize)]
pub struct SchemaLine {
    #[serde(rename = "type")]
    pub kind: String,
    pub schema: Props,
}
