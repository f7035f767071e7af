//! The stored records of the six dimensions (ONTOLOGY.md field lists).
//! Serialized as JSON with the ontology's camelCase field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::id::Id;
use crate::model::lazy::Lazy;
use crate::model::names::{OrgStatus, Plan, Role, Status};
use crate::model::time::Millis;

/// A JSON object: properties, metadata, settings.
pub type Props = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Org {
    pub id: Id,
    pub slug: String,
    pub name: String,
    pub plan: Plan,
    pub status: OrgStatus,
    /// Limit per counter name or thing type; -1 (or absent) is unlimited.
    pub limits: BTreeMap<String, i64>,
    pub settings: Props,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    Active,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: Id,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// None for the platform owner.
    pub org: Option<Id>,
    pub status: PersonStatus,
    /// argon2id PHC string; never leaves the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// Parsed on first read (`Lazy`): most statements never look inside.
    pub properties: Lazy<Props>,
    pub status: Status,
    /// None only for global platform things.
    pub org: Option<Id>,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: Id,
    pub from: Id,
    pub to: Id,
    #[serde(rename = "type")]
    pub kind: String,
    pub metadata: Props,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    pub valid_from: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Millis>,
    pub created_at: Millis,
    /// Set by DISCONNECT; an ended connection no longer counts against limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Millis>,
}

impl Connection {
    /// Valid at `at`: validFrom ≤ at < validTo.
    pub fn valid_at(&self, at: Millis) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: Id,
    #[serde(rename = "type")]
    pub kind: String,
    /// A person, or None for `system`.
    pub actor: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Id>,
    pub timestamp: Millis,
    pub metadata: Props,
    /// The number of the commit that wrote it (its position in commit
    /// order), added by the commit leader; None for an event written
    /// before onedb kept it, or not committed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnowledgeKind {
    Label,
    Chunk,
}

impl KnowledgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KnowledgeKind::Label => "label",
            KnowledgeKind::Chunk => "chunk",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Knowledge {
    pub id: Id,
    pub kind: KnowledgeKind,
    pub text: String,
    /// Parsed on first read (`Lazy`): search hits never need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Lazy<Vec<f32>>>,
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Id>,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Millis>,
}

/// How knowledge relates to a thing in the knowledge–thing junction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JunctionRole {
    Label,
    Summary,
    ChunkOf,
    Caption,
    Keyword,
}

impl JunctionRole {
    pub const ALL: [JunctionRole; 5] = [
        JunctionRole::Label,
        JunctionRole::Summary,
        JunctionRole::ChunkOf,
        JunctionRole::Caption,
        JunctionRole::Keyword,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            JunctionRole::Label => "label",
            JunctionRole::Summary => "summary",
            JunctionRole::ChunkOf => "chunk_of",
            JunctionRole::Caption => "caption",
            JunctionRole::Keyword => "keyword",
        }
    }
}

/// When a trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOn {
    Create,
    Update,
    Status,
    Connect,
}

impl TriggerOn {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerOn::Create => "create",
            TriggerOn::Update => "update",
            TriggerOn::Status => "status",
            TriggerOn::Connect => "connect",
        }
    }
}

/// A user-defined trigger: on an operation of a type, emit an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub name: String,
    pub on: TriggerOn,
    /// The thing type (create/update/status) or connection type (connect).
    #[serde(rename = "type")]
    pub kind: String,
    pub emit: String,
    pub metadata: Props,
    pub created_at: Millis,
}

/// An API token: a person's credential for logging in without a password.
/// Only the SHA-256 of its secret is kept; a revoked token stays listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: Id,
    pub name: String,
    pub person: Id,
    /// The person's org; None for a platform owner.
    pub org: Option<Id>,
    /// Hex SHA-256 of the secret; never leaves the engine.
    pub hash: String,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Millis>,
}

impl Token {
    /// Whether the token still logs in at `now`.
    pub fn is_live(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// Usage counter names (ONTOLOGY.md "Organizations").
pub const COUNTERS: &[&str] = &[
    "people",
    "things",
    "connections",
    "knowledge",
    "storage_bytes",
    "api_calls",
    "inference",
];

/// Counters kept per calendar month.
pub const MONTHLY_COUNTERS: &[&str] = &["api_calls", "inference"];

/// The plan defaults: (counter or thing type, starter, pro, enterprise).
pub const PLAN_LIMITS: &[(&str, [i64; 3])] = &[
    ("people", [3, 25, 1_000]),
    ("storage_bytes", [5 * GB, 100 * GB, 1_000 * GB]),
    ("api_calls", [10_000, 100_000, 1_000_000]),
    ("inference", [1_000, 10_000, 100_000]),
    ("course", [5, 50, 1_000]),
    ("ai_clone", [1, 5, 50]),
];

const GB: i64 = 1_000_000_000;

impl Plan {
    pub fn default_limits(self) -> BTreeMap<String, i64> {
        let column = match self {
            Plan::Starter => 0,
            Plan::Pro => 1,
            Plan::Enterprise => 2,
        };
        PLAN_LIMITS
            .iter()
            .map(|(name, limits)| (name.to_string(), limits[column]))
            .collect()
    }
}
