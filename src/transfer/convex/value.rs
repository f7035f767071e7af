//! Convex's typed JSON: an export writes the values plain JSON cannot hold
//! as one-key objects — `{"$integer": base64}` (an int64, 8 bytes little
//! endian), `{"$float": base64}` (a float64 that is not a finite JSON
//! number), `{"$bytes": base64}`. Field names never start with `$` in
//! Convex, so these objects are unambiguous. Integers become JSON numbers;
//! bytes and non-finite floats have no place in onedb's records and make
//! the document invalid with a reason.

use base64ct::{Base64, Encoding};
use serde_json::{Number, Value};

/// `value` with every typed value decoded; the reason otherwise.
pub fn decode(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some((key, inner)) = map.iter().next()
                && key.starts_with('$')
            {
                return typed(key, inner);
            }
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, inner) in map {
                out.insert(key, decode(inner)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        plain => Ok(plain),
    }
}

fn typed(key: &str, inner: &Value) -> Result<Value, String> {
    let eight = || -> Result<[u8; 8], String> {
        let text = inner
            .as_str()
            .ok_or_else(|| format!("{{\"{key}\": …}} holds no base64 text"))?;
        let bytes = Base64::decode_vec(text)
            .map_err(|_| format!("{{\"{key}\": {text:?}}} is not base64"))?;
        bytes
            .try_into()
            .map_err(|_| format!("{{\"{key}\": {text:?}}} is not 8 bytes"))
    };
    match key {
        "$integer" => Ok(Value::Number(i64::from_le_bytes(eight()?).into())),
        "$float" => {
            let x = f64::from_le_bytes(eight()?);
            Number::from_f64(x)
                .map(Value::Number)
                .ok_or_else(|| format!("the float {x} is not a finite number"))
        }
        "$bytes" => Err("holds bytes ({\"$bytes\": …}), which onedb records cannot store".into()),
        other => Err(format!("an unknown Convex value {{\"{other}\": …}}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_decoded_and_bytes_refused() {
        let seven = Base64::encode_string(&7i64.to_le_bytes());
        let minus = Base64::encode_string(&(-2i64).to_le_bytes());
        let doc =
            json!({"n": {"$integer": seven}, "list": [{"$integer": minus}], "plain": {"a": 1}});
        assert_eq!(
            decode(doc).unwrap(),
            json!({"n": 7, "list": [-2], "plain": {"a": 1}})
        );
        let half = Base64::encode_string(&0.5f64.to_le_bytes());
        assert_eq!(decode(json!({"$float": half})).unwrap(), json!(0.5));
        let nan = Base64::encode_string(&f64::NAN.to_le_bytes());
        assert!(decode(json!({"$float": nan})).is_err());
        let err = decode(json!({"blob": {"$bytes": "AAE="}})).unwrap_err();
        assert!(err.contains("$bytes"), "{err}");
        assert!(decode(json!({"$integer": "AAE="})).is_err());
        assert!(decode(json!({"$integer": 5})).is_err());
        assert!(decode(json!({"$set": []})).is_err());
    }
}
