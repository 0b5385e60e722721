//! The second JWKS reader, for tests and the fuzz oracle: each entry as a
//! `serde_json::Value` tree with its own first repeat. Slower than
//! [`jwks`](super::jwks) and independent of it, so the two can be checked
//! against each other.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{parse, Checked, CheckedSeed};

/// A JWKS document as `Value` trees: its entries, each with its own repeat,
/// and the first repeat outside the entries.
#[derive(Debug)]
pub(crate) struct JwksTree {
    /// The `keys` array; `None` when the document is not an object with a
    /// `keys` array.
    pub(crate) keys: Option<Vec<Checked>>,
    /// A member repeated at the top level or inside a member other than an
    /// entry of `keys`.
    pub(crate) repeated: Option<String>,
}

/// Parses a JWKS document into trees (the second reader).
pub(crate) fn jwks_tree_from_slice(bytes: &[u8]) -> Result<JwksTree, serde_json::Error> {
    parse(bytes, JwksSeed)
}

struct JwksSeed;

impl<'de> DeserializeSeed<'de> for JwksSeed {
    type Value = JwksTree;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JwksTree, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Anything but an object: read through (so a non-JSON tail is still an
/// error), with no `keys`.
fn not_an_object(_: Checked) -> JwksTree {
    JwksTree {
        keys: None,
        repeated: None,
    }
}

impl<'de> Visitor<'de> for JwksSeed {
    type Value = JwksTree;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWKS document")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<JwksTree, E> {
        CheckedSeed.visit_bool(v).map(not_an_object)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<JwksTree, E> {
        CheckedSeed.visit_i64(v).map(not_an_object)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<JwksTree, E> {
        CheckedSeed.visit_u64(v).map(not_an_object)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JwksTree, E> {
        CheckedSeed.visit_f64(v).map(not_an_object)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<JwksTree, E> {
        CheckedSeed.visit_str(v).map(not_an_object)
    }
    fn visit_unit<E: de::Error>(self) -> Result<JwksTree, E> {
        CheckedSeed.visit_unit().map(not_an_object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<JwksTree, A::Error> {
        CheckedSeed.visit_seq(seq).map(not_an_object)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JwksTree, A::Error> {
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
        Ok(JwksTree { keys, repeated })
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
