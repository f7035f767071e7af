//! OQL: text → parser → AST → analysis → plan → execution over one tenant
//! snapshot → rows.

pub mod ast;
pub mod parser;
pub mod print;
pub mod script;
