//! JSON documents read strictly: serde_json keeps the *last* of two
//! members with the same name, another parser the first, so a document
//! that repeats a member means different things to different readers. Here
//! every object, at every depth, is checked for repeated names while the
//! tree is built, and the first repeat is reported in band.
//!
//! - [`from_slice`]: one value (the discovery document).
//! - [`jwks_from_slice`]: a JWKS document, where a repeat inside one
//!   `keys` entry belongs to that entry (it is skipped) and any other
//!   repeat to the document (it is rejected).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// A JWKS document as read: its entries, each with its own repeat, and the
/// first repeat outside the entries.
#[derive(Debug)]
pub(crate) struct Jwks {
    /// The `keys` array; `None` when the document is not an object with a
    /// `keys` array.
    pub(crate) keys: Option<Vec<Checked>>,
    /// A member repeated at the top level or inside a member other than an
    /// entry of `keys`.
    pub(crate) repeated: Option<String>,
}

/// Parses a JWKS document.
pub(crate) fn jwks_from_slice(bytes: &[u8]) -> Result<Jwks, serde_json::Error> {
    parse(bytes, JwksSeed)
}

/// Runs `seed` over `bytes`, which must hold exactly one JSON value (the
/// token reader in `verify/json.rs` uses it too).
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct CheckedSeed;

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

struct JwksSeed;

impl<'de> DeserializeSeed<'de> for JwksSeed {
    type Value = Jwks;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Jwks, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Anything but an object: read through (so a non-JSON tail is still an
/// error), with no `keys`.
fn not_an_object(_: Checked) -> Jwks {
    Jwks {
        keys: None,
        repeated: None,
    }
}

impl<'de> Visitor<'de> for JwksSeed {
    type Value = Jwks;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWKS document")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Jwks, E> {
        CheckedSeed.visit_bool(v).map(not_an_object)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Jwks, E> {
        CheckedSeed.visit_i64(v).map(not_an_object)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Jwks, E> {
        CheckedSeed.visit_u64(v).map(not_an_object)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Jwks, E> {
        CheckedSeed.visit_f64(v).map(not_an_object)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Jwks, E> {
        CheckedSeed.visit_str(v).map(not_an_object)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Jwks, E> {
        CheckedSeed.visit_unit().map(not_an_object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Jwks, A::Error> {
        CheckedSeed.visit_seq(seq).map(not_an_object)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Jwks, A::Error> {
        let mut names: Vec<String> = Vec::new();
        let mut keys = None;
        let mut repeated = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "keys" {
                let entries = map.next_value_seed(KeysSeed)?;
                match entries {
                    Ok(entries) => keys = keys.or(Some(entries)),
                    Err(other) => repeated = repeated.or(other.repeated),
                }
            } else {
                repeated = repeated.or(map.next_value_seed(CheckedSeed)?.repeated);
            }
            // Top-level members are few; a hostile document is capped in
            // bytes before it is parsed.
            if names.contains(&name) {
                repeated = repeated.or(Some(name));
            } else {
                names.push(name);
            }
        }
        Ok(Jwks { keys, repeated })
    }
}

/// The `keys` member: its entries one by one, or the value it held instead
/// of an array.
struct KeysSeed;

impl<'de> DeserializeSeed<'de> for KeysSeed {
    type Value = Result<Vec<Checked>, Checked>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match CheckedOrEntries::deserialize_seed(deserializer)? {
            CheckedOrEntries::Entries(entries) => Ok(Ok(entries)),
            CheckedOrEntries::Other(value) => Ok(Err(value)),
        }
    }
}

enum CheckedOrEntries {
    Entries(Vec<Checked>),
    Other(Checked),
}

impl CheckedOrEntries {
    fn deserialize_seed<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

macro_rules! other {
    ($($name:ident($($arg:ident: $ty:ty)?)),*) => {$(
        fn $name<E: de::Error>(self, $($arg: $ty)?) -> Result<CheckedOrEntries, E> {
            CheckedSeed.$name($($arg)?).map(CheckedOrEntries::Other)
        }
    )*};
}

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = CheckedOrEntries;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of JWKs")
    }
    other!(
        visit_bool(v: bool),
        visit_i64(v: i64),
        visit_u64(v: u64),
        visit_f64(v: f64),
        visit_str(v: &str),
        visit_string(v: String),
        visit_unit(),
        visit_none()
    );
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CheckedOrEntries, A::Error> {
        CheckedSeed.visit_map(map).map(CheckedOrEntries::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CheckedOrEntries, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element_seed(CheckedSeed)? {
            entries.push(entry);
        }
        Ok(CheckedOrEntries::Entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_found_at_any_depth_and_the_first_value_kept() {
        let c = from_slice(br#"{"a":1,"b":{"c":[{"d":1,"d":2}]},"a":3}"#).expect("json");
        assert_eq!(c.repeated.as_deref(), Some("d"));
        assert_eq!(c.value["a"], 1);
        let c = from_slice(br#"{"a":1,"\u0061":2}"#).expect("json");
        assert_eq!(c.repeated.as_deref(), Some("a"));
        let c = from_slice(br#"[{"a":1},{"a":1}]"#).expect("json");
        assert_eq!(c.repeated, None);
        assert!(from_slice(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn jwks_repeats_belong_to_the_entry_or_to_the_document() {
        let doc = jwks_from_slice(br#"{"keys":[{"n":"a","n":"b"},{"kty":"EC"}]}"#).expect("json");
        assert_eq!(doc.repeated, None);
        let keys = doc.keys.expect("keys");
        assert_eq!(keys[0].repeated.as_deref(), Some("n"));
        assert_eq!(keys[1].repeated, None);
        for top in [
            &br#"{"keys":[],"keys":[{"kty":"EC"}]}"#[..],
            br#"{"keys":[],"x":{"y":1,"y":2}}"#,
            br#"{"keys":{"a":1,"a":1}}"#,
        ] {
            let doc = jwks_from_slice(top).expect("json");
            assert!(doc.repeated.is_some(), "{}", String::from_utf8_lossy(top));
        }
        assert!(jwks_from_slice(b"[]").expect("json").keys.is_none());
        assert!(jwks_from_slice(br#"{"keys":5}"#)
            .expect("json")
            .keys
            .is_none());
        assert!(jwks_from_slice(b"{} {}").is_err());
    }
}
