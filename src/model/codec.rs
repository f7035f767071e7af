//! The stored form of records: JSON, decoded with `CORRUPTION` naming what
//! did not decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::model::{Knowledge, Lazy};

/// Decodes a stored record; `CORRUPTION` names what did not decode.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::corruption(what, e))
}

/// Decodes a stored knowledge item, its embedding left as text. An
/// embedding is most of a chunk's record (384 numbers, ~4 KB), and even
/// skipping it through the JSON parser costs more than the rest of the
/// read; most reads (search hits, visibility checks) never look at it.
/// Its bounds are found by bytes: `,"embedding":[` cannot occur inside a
/// JSON string (its quotes would be escaped), so the first one is the
/// field, and a list of numbers ends at the first `]`.
pub fn decode_knowledge(bytes: &[u8]) -> Result<Knowledge> {
    const FIELD: &[u8] = b",\"embedding\":";
    let Some(at) = memchr::memmem::find(bytes, FIELD) else {
        return decode("knowledge", bytes);
    };
    let list = at + FIELD.len();
    let end = memchr::memchr(b']', &bytes[list..]).map(|n| list + n + 1);
    let (Some(end), Some(b'[')) = (end, bytes.get(list)) else {
        return decode("knowledge", bytes);
    };
    let Ok(text) = std::str::from_utf8(&bytes[list..end]) else {
        return decode("knowledge", bytes);
    };
    let mut rest = Vec::with_capacity(bytes.len() - (end - at));
    rest.extend_from_slice(&bytes[..at]);
    rest.extend_from_slice(&bytes[end..]);
    let mut k: Knowledge = decode("knowledge", &rest)?;
    k.embedding = Some(Lazy::from_stored_text(text));
    Ok(k)
}

pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    // Most records take a few hundred bytes: one allocation instead of
    // growing from serde_json's 128.
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, record)
        .map_err(|e| Error::invalid(format!("cannot encode record: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dim, Id, KnowledgeKind};

    fn chunk(text: &str, embedding: Option<Vec<f32>>) -> Knowledge {
        Knowledge {
            id: Id::generate(Dim::Knowledge),
            kind: KnowledgeKind::Chunk,
            text: text.into(),
            embedding: embedding.map(Lazy::from),
            labels: vec!["a".into()],
            source: None,
            created_at: 5,
            deleted_at: Some(9),
        }
    }

    #[test]
    fn a_knowledge_record_decodes_the_same_by_either_path_and_writes_back_the_same_bytes() {
        let tricky = r#"quote ","embedding":[1,2] and ] and \"embedding\":["#;
        for k in [
            chunk("plain", Some(vec![0.25, -1.5, 3.0e-7])),
            chunk(tricky, Some(vec![1.0; 384])),
            chunk(tricky, None),
            chunk("empty", Some(vec![])),
        ] {
            let bytes = encode(&k).unwrap();
            let fast = decode_knowledge(&bytes).unwrap();
            let slow: Knowledge = decode("knowledge", &bytes).unwrap();
            assert_eq!(fast, k);
            assert_eq!(slow, k);
            assert_eq!(fast.text, k.text);
            assert_eq!(encode(&fast).unwrap(), bytes);
        }
    }

    #[test]
    fn a_damaged_knowledge_record_is_corruption_not_a_panic() {
        let bytes = encode(&chunk("x", Some(vec![1.0, 2.0]))).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_knowledge(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
