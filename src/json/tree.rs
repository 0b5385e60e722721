//! One JSON value as a `serde_json::Value` tree, with the first member
//! name repeated in an object inside it (the discovery document, and the
//! second JWKS reader of the tests and the fuzz oracle).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::parse;

/// A JSON value and the first member name repeated in an object inside it.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The value; of a repeated member, the first occurrence is kept.
    pub(crate) value: Value,
    /// The first repeated member name, if any.
    pub(crate) repeated: Option<String>,
}

/// Parses exactly one JSON value from `bytes` (the discovery document).
#[cfg(any(feature = "http", test))]
pub(crate) fn from_slice(bytes: &[u8]) -> Result<Checked, serde_json::Error> {
    parse(bytes, CheckedSeed)
}

pub(crate) struct CheckedSeed;

impl<'de> DeserializeSeed<'de> for CheckedSeed {
    type Value = Checked;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Checked, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn plain(value: Value) -> Checked {
    Checked {
        value,
        repeated: None,
    }
}

impl<'de> Visitor<'de> for CheckedSeed {
    type Value = Checked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Checked, E> {
        Ok(plain(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Checked, E> {
        Ok(plain(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Checked, E> {
        Ok(plain(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Checked, E> {
        // JSON has no NaN or infinity; serde_json never hands us one.
        Ok(plain(
            Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked, E> {
        Ok(plain(Value::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Checked, E> {
        Ok(plain(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(plain(Value::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Checked, E> {
        Ok(plain(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut items = Vec::new();
        let mut repeated = None;
        while let Some(item) = seq.next_element_seed(CheckedSeed)? {
            repeated = repeated.or(item.repeated);
            items.push(item.value);
        }
        Ok(Checked {
            value: Value::Array(items),
            repeated,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut members = Map::new();
        let mut repeated = None;
        while let Some(name) = map.next_key::<String>()? {
            let item = map.next_value_seed(CheckedSeed)?;
            repeated = repeated.or(item.repeated);
            if members.contains_key(&name) {
                repeated = repeated.or(Some(name));
            } else {
                members.insert(name, item.value);
            }
        }
        Ok(Checked {
            value: Value::Object(members),
            repeated,
        })
    }
}
