//! Ids, time and the records of the six dimensions.

pub mod codec;
pub mod id;
pub mod lazy;
pub mod limits;
pub mod names;
pub mod ranked;
pub mod records;
pub mod time;

pub use id::{Dim, Id};
pub use lazy::Lazy;
pub use names::{OrgStatus, Plan, Role, Status};
pub use ranked::Ranked;
pub use records::*;
pub use time::{Clock, Millis, iso_of, now_ms, parse_iso};
