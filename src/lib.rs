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

mod auth;
pub mod bench;
pub mod cli;
mod crashpoint;
pub mod db;
pub mod error;
mod graph;
mod keys;
pub mod model;
pub mod ontology;
pub mod query;
pub mod repl;
mod search;
pub mod server;
mod storage;
pub mod transfer;
mod vector;

pub use db::{Database, Options, ROOT_EMAIL, Session, Subscription};
pub use error::{Error, ErrorCode, Position, Result};
pub use graph::validate::Report;
pub use graph::{
    Actor, Applied, Edge, EventFilter, EventsAfter, IssuedToken, Mutation, NewConnection,
    NewKnowledge, NewPerson, NewThing, NewToken, OrgUpdate, ReadTxn, ThingUpdate, UsageRow,
    WriteTxn,
};
pub use keys::Direction;
pub use model::{
    Connection, Dim, Event, Id, JunctionRole, Knowledge, KnowledgeKind, Org, OrgStatus, Person,
    Plan, Props, Thing, Token, Trigger, TriggerOn,
};
pub use ontology::{Role, Status, TypeKind};
pub use search::{Found, IndexReport, KnowledgeHit, KnowledgeSearch, NameHit, NameSearch};
pub use storage::{ClusterConfig, Durability, Store};
pub use vector::{Method as VectorMethod, VectorFilter};

/// Engine internals that the benches and fault-injection tests reach for:
/// key layouts, the raw RocksDB settings of a baseline, the index files.
/// Not part of the API: a person's session never leads here, and any of
/// it may change without notice.
#[doc(hidden)]
pub mod internals {
    pub use crate::keys::{Key, Tenant, TenantKey, decode as decode_key, prefix_end};
    pub use crate::search::index_dir;
    pub use crate::storage::{rocksdb_options, rocksdb_write_options};
    pub use crate::vector::aligned::CacheAligned;
    pub use crate::vector::codes::Codes;
    pub use crate::vector::distance::{dot, dot_each, normalize};
    pub use crate::vector::file::{fail_file_operation_at, load as load_vector_file};
    pub use crate::vector::{Item, OrgVectors};

    /// Every key and value, from one snapshot: compares whole databases
    /// before and after an operation.
    pub fn raw_entries(db: &crate::Database) -> crate::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        db.raw_entries()
    }
}
