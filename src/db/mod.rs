//! The public way in: a `Database` (open, catch up the indexes, create
//! root) and a `Session` (one person, one org at a time) that hands out
//! tenant-scoped transactions.

mod api_calls;
mod database;
mod session;

pub use database::{Database, Options, ROOT_EMAIL};
pub use session::Session;
