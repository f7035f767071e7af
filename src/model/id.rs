//! Ids: 128-bit, sortable by creation time (ULID layout), tagged with their
//! dimension. Printed as `thg_01J…`; the prefix says what the id names.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::{Generator, Ulid};

use crate::error::{Error, Result};

/// Which of the six dimensions an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Org,
    Person,
    Thing,
    Connection,
    Event,
    Knowledge,
    /// An API token: a credential of a person, not a node of the graph.
    Token,
}

impl Dim {
    pub const ALL: [Dim; 7] = [
        Dim::Org,
        Dim::Person,
        Dim::Thing,
        Dim::Connection,
        Dim::Event,
        Dim::Knowledge,
        Dim::Token,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Dim::Org => "org",
            Dim::Person => "per",
            Dim::Thing => "thg",
            Dim::Connection => "con",
            Dim::Event => "evt",
            Dim::Knowledge => "kno",
            Dim::Token => "tok",
        }
    }

    /// The byte that tags this dimension inside keys.
    pub fn tag(self) -> u8 {
        match self {
            Dim::Org => 1,
            Dim::Person => 2,
            Dim::Thing => 3,
            Dim::Connection => 4,
            Dim::Event => 5,
            Dim::Knowledge => 6,
            Dim::Token => 7,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.tag() == tag)
    }
}

/// An id of one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    dim: Dim,
    raw: u128,
}

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

impl Id {
    /// Below every id (a bound for ordered comparisons).
    pub const MIN: Id = Id {
        dim: Dim::Org,
        raw: 0,
    };

    /// A new id, strictly greater than every id this process made before.
    pub fn generate(dim: Dim) -> Id {
        let mut guard = GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let generator = guard.get_or_insert_with(Generator::new);
        // The generator only fails when 2^80 ids were made in one millisecond.
        let ulid = generator.generate().unwrap_or_else(|_| Ulid::new());
        Id { dim, raw: ulid.0 }
    }

    pub fn from_raw(dim: Dim, raw: u128) -> Id {
        Id { dim, raw }
    }

    pub fn dim(self) -> Dim {
        self.dim
    }

    pub fn raw(self) -> u128 {
        self.raw
    }

    /// Milliseconds since the epoch at which the id was made.
    pub fn timestamp_ms(self) -> i64 {
        (self.raw >> 80) as i64
    }

    /// Parses an id and checks it names the expected dimension.
    pub fn parse_as(text: &str, dim: Dim) -> Result<Id> {
        let id: Id = text.parse()?;
        if id.dim != dim {
            return Err(Error::invalid(format!(
                "{text} is not a {} id (expected the prefix {}_)",
                dim_name(dim),
                dim.prefix()
            )));
        }
        Ok(id)
    }
}

fn dim_name(dim: Dim) -> &'static str {
    match dim {
        Dim::Org => "organization",
        Dim::Person => "person",
        Dim::Thing => "thing",
        Dim::Connection => "connection",
        Dim::Event => "event",
        Dim::Knowledge => "knowledge",
        Dim::Token => "API token",
    }
}

/// `ppp_` and 26 base-32 digits.
const TEXT_LEN: usize = 30;

impl Id {
    /// The printed form, without the formatting machinery: ids are written
    /// several times into every stored record.
    fn text(self, buf: &mut [u8; TEXT_LEN]) -> &str {
        buf[..3].copy_from_slice(self.dim.prefix().as_bytes());
        buf[3] = b'_';
        let mut digits = [0u8; ulid::ULID_LEN];
        buf[4..].copy_from_slice(Ulid(self.raw).array_to_str(&mut digits).as_bytes());
        // ASCII by construction; the empty fallback is never taken.
        std::str::from_utf8(buf).unwrap_or_default()
    }
}

impl Id {
    /// The printed form as a `String` of its exact size, without the
    /// formatting machinery (ids are output in every result row).
    pub fn to_text(self) -> String {
        self.text(&mut [0; TEXT_LEN]).to_owned()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text(&mut [0; TEXT_LEN]))
    }
}

impl FromStr for Id {
    type Err = Error;
    fn from_str(text: &str) -> Result<Id> {
        let bad = || Error::invalid(format!("not a valid id: {text:?}"));
        let (prefix, body) = text.split_once('_').ok_or_else(bad)?;
        let dim = Dim::ALL
            .into_iter()
            .find(|d| d.prefix() == prefix)
            .ok_or_else(bad)?;
        let ulid = Ulid::from_string(body).map_err(|_| bad())?;
        Ok(Id { dim, raw: ulid.0 })
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.text(&mut [0; TEXT_LEN]))
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        // Parsed from the borrowed text where the format allows it.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Id, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_creation() {
        let a = Id::generate(Dim::Thing);
        let b = Id::generate(Dim::Thing);
        assert!(a < b, "later ids sort after earlier ones");
        let text = a.to_string();
        assert!(text.starts_with("thg_"));
        assert_eq!(text.parse::<Id>(), Ok(a));
        assert_eq!(Id::parse_as(&text, Dim::Thing), Ok(a));
        assert_eq!(text, format!("thg_{}", Ulid(a.raw())));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Id>(&json).unwrap(), a);
        let owned: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::from_value::<Id>(owned).unwrap(), a);
        assert!(serde_json::from_str::<Id>("5").is_err());
    }

    #[test]
    fn wrong_or_malformed_ids_are_rejected() {
        let a = Id::generate(Dim::Person).to_string();
        assert!(Id::parse_as(&a, Dim::Thing).is_err());
        for bad in ["", "thg", "thg_", "xyz_01J", "thg_!!!!", "thg_01J_2"] {
            assert!(bad.parse::<Id>().is_err(), "{bad}");
        }
    }
}
