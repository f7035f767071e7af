//! The public way in: a `Database` (open, catch up the indexes, create
//! root) and a `Session` (one person, one org at a time) that hands out
//! tenant-scoped transactions; and subscriptions to committed events.

mod api_calls;
mod database;
mod session;
mod subscriptions;

pub use database::{Database, Options, ROOT_EMAIL};
pub use session::Session;
pub(crate) use session::{CONFLICT_RETRIES, pause_before_retry};
pub use subscriptions::{
    Ended, MAX_QUEUE, SentEvent, SubscribeTo, Subscription, SubscriptionReader, Taken, Wake,
};
