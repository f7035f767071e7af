//! Splits a script into statements as it streams in. (Being written.)
