//! A record field decoded only when read: a thing's properties, a chunk's
//! embedding. Reading a record keeps the field's JSON text (checked to be
//! well-formed JSON of the right shape, but not turned into values); the
//! first access parses it. A statement that returns `t.name` never pays
//! for `properties`, a vector search's hits never parse 384 floats.

use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A value kept as its JSON text until first read.
pub struct Lazy<T> {
    /// The JSON text as stored; None once the value was built in memory.
    raw: Option<Box<str>>,
    value: OnceLock<T>,
}

impl<T> Lazy<T> {
    /// A value from JSON text a stored record holds, not checked here (a
    /// decoder that found the text's bounds by its own means). Text that
    /// is not the value reads as empty, as a corrupted record does.
    pub(crate) fn from_stored_text(text: &str) -> Lazy<T> {
        Lazy {
            raw: Some(text.into()),
            value: OnceLock::new(),
        }
    }
}

impl<T: DeserializeOwned + Default> Lazy<T> {
    /// The value, parsed on first use. The text was checked when the record
    /// was read; a value of the wrong inner shape (only a corrupted store
    /// holds one) reads as empty rather than failing every later access.
    pub fn value(&self) -> &T {
        self.value.get_or_init(|| match &self.raw {
            Some(raw) => serde_json::from_str(raw).unwrap_or_default(),
            None => T::default(),
        })
    }

    /// The value, owned (to change it and store it back).
    pub fn into_inner(self) -> T {
        match self.value.into_inner() {
            Some(v) => v,
            None => match &self.raw {
                Some(raw) => serde_json::from_str(raw).unwrap_or_default(),
                None => T::default(),
            },
        }
    }
}

impl<T> From<T> for Lazy<T> {
    fn from(value: T) -> Lazy<T> {
        Lazy {
            raw: None,
            value: OnceLock::from(value),
        }
    }
}

impl<T: Default> Default for Lazy<T> {
    fn default() -> Lazy<T> {
        Lazy::from(T::default())
    }
}

impl<T: DeserializeOwned + Default> Deref for Lazy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value()
    }
}

impl<T: Clone> Clone for Lazy<T> {
    fn clone(&self) -> Lazy<T> {
        Lazy {
            raw: self.raw.clone(),
            value: self.value.clone(),
        }
    }
}

impl<T: DeserializeOwned + Default + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Lazy<T>) -> bool {
        self.value() == other.value()
    }
}

impl<T: DeserializeOwned + Default + fmt::Debug> fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

/// Written back as it was read when it was never built in memory: the
/// same bytes, no parse.
impl<T: Serialize> Serialize for Lazy<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.value.get(), &self.raw) {
            (Some(v), _) => v.serialize(s),
            // Checked here, not on read: writing a record back is rare.
            (None, Some(raw)) => RawValue::from_string(raw.to_string())
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            (None, None) => s.serialize_none(),
        }
    }
}

/// The JSON shape a lazily read field must have: checked on read, so a
/// record of the wrong shape fails where it is decoded, as before.
pub trait Shape {
    /// The first byte of the field's JSON text (`{` or `[`).
    const OPENS_WITH: u8;
    const EXPECTED: &'static str;
}

impl Shape for serde_json::Map<String, serde_json::Value> {
    const OPENS_WITH: u8 = b'{';
    const EXPECTED: &'static str = "a JSON object";
}

impl Shape for Vec<f32> {
    const OPENS_WITH: u8 = b'[';
    const EXPECTED: &'static str = "a list of numbers";
}

impl<'de, T: Shape> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Lazy<T>, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if raw.get().as_bytes().first() != Some(&T::OPENS_WITH) {
            return Err(D::Error::custom(format_args!("expected {}", T::EXPECTED)));
        }
        Ok(Lazy {
            raw: Some(raw.into()),
            value: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Record {
        name: String,
        properties: Lazy<Map<String, Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        embedding: Option<Lazy<Vec<f32>>>,
    }

    #[test]
    fn a_read_field_is_written_back_byte_for_byte_and_parsed_only_on_use() {
        let text =
            r#"{"name":"a","properties":{"b":[1,2.5,{"c":null}],"a":"x"},"embedding":[0.5,-1.0]}"#;
        let r: Record = serde_json::from_str(text).unwrap();
        assert!(r.properties.value.get().is_none(), "not parsed by reading");
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
        assert_eq!(r.properties.get("a"), Some(&json!("x")));
        assert_eq!(**r.embedding.as_ref().unwrap(), vec![0.5, -1.0]);
        // Parsed, it serializes to the same text (key order kept).
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
        assert_eq!(r.properties.clone().into_inner().len(), 2);
    }

    #[test]
    fn a_field_of_the_wrong_shape_fails_the_read() {
        for bad in [
            r#"{"name":"a","properties":[1]}"#,
            r#"{"name":"a","properties":"x"}"#,
            r#"{"name":"a","properties":{"a":}"#,
            r#"{"name":"a","properties":{},"embedding":{"a":1}}"#,
        ] {
            assert!(serde_json::from_str::<Record>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_built_in_memory_compare_with_read_ones() {
        let built = Record {
            name: "a".into(),
            properties: Lazy::from(json!({"k": 1}).as_object().cloned().unwrap()),
            embedding: None,
        };
        let read: Record = serde_json::from_str(r#"{"name":"a","properties":{"k":1}}"#).unwrap();
        assert_eq!(built, read);
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            serde_json::to_string(&read).unwrap()
        );
    }
}
