//! A session's statement parameters: `LET` variables, bound `$parameters`
//! and `$me`, by name. An embedding bound once is often searched with
//! many times, so the floats a vector search reads from a parameter are
//! kept until the name is bound again: ~2 % of an exact top 10 over
//! 1,000 × 384 was converting the same 384 JSON numbers each time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;

use crate::error::Result;
use crate::query::bind::floats;
use crate::query::value::Val;

#[derive(Default, Clone)]
pub struct Params {
    values: HashMap<String, Val>,
    /// Parameters already read as embeddings, as floats.
    floats: RefCell<HashMap<String, Arc<[f32]>>>,
}

impl Params {
    pub fn new() -> Params {
        Params::default()
    }

    /// Binds `name` to `value`, replacing what it held.
    pub fn insert(&mut self, name: impl Into<String>, value: Val) {
        let name = name.into();
        self.floats.get_mut().remove(&name);
        self.values.insert(name, value);
    }

    /// `$name` as an embedding (a list of numbers), or None if it is
    /// not bound.
    pub fn floats(&self, name: &str) -> Option<Result<Arc<[f32]>>> {
        if let Some(known) = self.floats.borrow().get(name) {
            return Some(Ok(known.clone()));
        }
        let value = self.values.get(name)?;
        Some(floats(value).map(|v| {
            let v: Arc<[f32]> = v.into();
            self.floats.borrow_mut().insert(name.to_string(), v.clone());
            v
        }))
    }
}

impl Deref for Params {
    type Target = HashMap<String, Val>;

    fn deref(&self) -> &HashMap<String, Val> {
        &self.values
    }
}

impl<const N: usize> From<[(String, Val); N]> for Params {
    fn from(values: [(String, Val); N]) -> Params {
        Params {
            values: HashMap::from(values),
            floats: RefCell::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_embedding_is_converted_once_and_forgotten_when_rebound() {
        let mut p = Params::new();
        assert!(p.floats("v").is_none());
        p.insert("v", Val::Data(json!([1, 2.5])));
        let first = p.floats("v").unwrap().unwrap();
        assert_eq!(&*first, &[1.0, 2.5]);
        // The same floats, not a second conversion.
        assert!(Arc::ptr_eq(&first, &p.floats("v").unwrap().unwrap()));
        p.insert("v", Val::Data(json!([3])));
        assert_eq!(&*p.floats("v").unwrap().unwrap(), &[3.0]);
        p.insert("v", Val::Data(json!("text")));
        assert!(p.floats("v").unwrap().is_err());
    }
}
