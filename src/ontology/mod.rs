//! The ontology as data: vocabulary, roles and permissions, lifecycle,
//! property schemas.

pub mod lifecycle;
pub mod roles;
pub mod schema;
pub mod vocabulary;

pub use lifecycle::Status;
pub use roles::{Action, Grant, Role};
pub use schema::PropertySchema;
pub use vocabulary::{TypeKind, Vocabulary};
