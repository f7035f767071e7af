//! The ontology as data: vocabulary, roles and permissions, lifecycle.

pub mod lifecycle;
pub mod roles;
pub mod vocabulary;

pub use lifecycle::Status;
pub use roles::{Action, Grant, Role};
pub use vocabulary::{TypeKind, Vocabulary};
