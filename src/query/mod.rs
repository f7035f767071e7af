//! OQL: text → parser → AST → analysis → plan → execution over one tenant snapshot →
//! rows. `run::Runner` is the entry point: it runs statement texts for one
//! session.

pub mod analyze;
pub mod ast;
pub mod bind;
pub(crate) mod exec;
pub mod expr;
pub mod format;
pub mod outcome;
pub mod params;
pub mod parser;
pub mod plan;
pub mod print;
mod read;
pub mod run;
pub mod script;
pub mod value;
