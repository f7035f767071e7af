//! The stored form of records: JSON, decoded with `CORRUPTION` naming what
//! did not decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Decodes a stored record; `CORRUPTION` names what did not decode.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::corruption(what, e))
}

pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    // Most records take a few hundred bytes: one allocation instead of
    // growing from serde_json's 128.
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, record)
        .map_err(|e| Error::invalid(format!("cannot encode record: {e}")))?;
    Ok(bytes)
}
