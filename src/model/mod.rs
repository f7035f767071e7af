//! Ids, time and the records of the six dimensions.

pub mod id;
pub mod ranked;
pub mod records;
pub mod time;

pub use id::{Dim, Id};
pub use ranked::Ranked;
pub use records::*;
pub use time::{Millis, now_ms, parse_iso};
