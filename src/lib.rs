//! onedb: a multi-tenant graph database whose data model is the
//! six-dimension ontology — organizations, people, things, connections,
//! events and knowledge.
//!
//! ```no_run
//! use onedb::{Database, NewThing};
//! let db = Database::open("./onedb-data")?;
//! let mut root = db.local_session()?;
//! root.run(|t| t.create_org("acme", "Acme Inc", onedb::Plan::Pro).map(|_| ()))?;
//! root.use_org("acme")?;
//! let course = root.run(|t| t.create_thing(NewThing { kind: "course".into(), name: "Rust".into(), ..Default::default() }))?;
//! # Ok::<(), onedb::Error>(())
//! ```

pub mod auth;
pub mod cli;
mod crashpoint;
mod database;
pub mod error;
pub mod graph;
pub mod keys;
pub mod model;
pub mod ontology;
pub mod query;
pub mod repl;
pub mod search;
mod session;
pub mod storage;
pub mod vector;

pub use database::{Database, Options, ROOT_EMAIL};
pub use error::{Error, ErrorCode, Position, Result};
pub use graph::validate::Report;
pub use graph::{
    Actor, Edge, EventFilter, NewConnection, NewKnowledge, NewPerson, NewThing, TenantTxn,
    ThingUpdate, UsageRow,
};
pub use keys::Direction;
pub use model::{
    Connection, Dim, Event, Id, JunctionRole, Knowledge, KnowledgeKind, Org, OrgStatus, Person,
    Plan, Props, Thing, Trigger, TriggerOn,
};
pub use ontology::{Role, Status, TypeKind};
pub use search::{Found, IndexReport, KnowledgeHit, KnowledgeSearch, NameHit, NameSearch};
pub use session::Session;
pub use storage::Durability;
pub use vector::{Method as VectorMethod, VectorFilter};
