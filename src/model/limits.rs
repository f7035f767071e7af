//! Size limits on stored fields.

pub const NAME_BYTES: usize = 1024;
pub const PROPERTIES_BYTES: usize = 1 << 20;
pub const METADATA_BYTES: usize = 64 << 10;
pub const TEXT_BYTES: usize = 1 << 20;
pub const EMBEDDING_DIMS: usize = 65_536;
pub const LABELS: usize = 256;
pub const LABEL_BYTES: usize = 256;
pub const EMAIL_BYTES: usize = 254;
pub const SLUG_BYTES: usize = 64;
pub const TRIGGERS_PER_ORG: usize = 256;
/// A property schema's encoded JSON, and how deeply it may nest.
pub const SCHEMA_BYTES: usize = 64 << 10;
pub const SCHEMA_DEPTH: usize = 32;
