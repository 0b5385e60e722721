//! JSON documents read strictly: serde_json keeps the *last* of two
//! members with the same name, another parser the first, so a document
//! that repeats a member means different things to different readers. Here
//! every object, at every depth, is checked for repeated names while the
//! tree is built, and the first repeat is reported in band.
//!
//! - [`from_slice`]: one value, as a `serde_json::Value` tree (the
//!   discovery document).
//! - [`jwks_from_slice`] ([`jwks`]): a JWKS document read into borrowed,
//!   typed entries, no tree, where a repeat inside one `keys` entry
//!   belongs to that entry (it is skipped) and any other repeat to the
//!   document (it is rejected).
//! - `jwks_tree_from_slice` (tests and the fuzz oracle only): the same
//!   document as `Value` trees, a second reader to check the first against.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

mod jwks;
#[cfg(any(test, fuzzing))]
mod jwks_tree;
#[cfg(any(feature = "http", test, fuzzing))]
mod tree;

#[cfg(any(test, fuzzing))]
pub(crate) use jwks::entry_from_slice;
pub(crate) use jwks::{jwks_from_slice, Entry, KeyOps, Member};
#[cfg(any(test, fuzzing))]
pub(crate) use jwks_tree::jwks_tree_from_slice;
#[cfg(any(feature = "http", test))]
pub(crate) use tree::from_slice;
#[cfg(any(test, fuzzing))]
pub(crate) use tree::{Checked, CheckedSeed};

/// A string, borrowed from the input unless it had escapes.
pub(crate) struct Str<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The member names of one object seen so far: a short list on the stack
/// scanned linearly (headers, claims and JWKs have a dozen members; no heap
/// allocation), a hash set past it so that a hostile object of thousands
/// of members stays linear.
pub(crate) struct Names<'de> {
    few: [Cow<'de, str>; Names::FEW],
    len: usize,
    many: HashSet<Cow<'de, str>>,
}

impl Default for Names<'_> {
    fn default() -> Self {
        Self {
            few: std::array::from_fn(|_| Cow::Borrowed("")),
            len: 0,
            many: HashSet::new(),
        }
    }
}

impl<'de> Names<'de> {
    const FEW: usize = 16;

    /// Records `name`; `false` when it was already there.
    pub(crate) fn insert(&mut self, name: Cow<'de, str>) -> bool {
        let few = &mut self.few[..];
        if few[..self.len].contains(&name) {
            return false;
        }
        if let Some(slot) = few.get_mut(self.len) {
            *slot = name;
            self.len += 1;
            return true;
        }
        self.many.insert(name)
    }
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
    fn jwks_tree_repeats_belong_to_the_entry_or_to_the_document() {
        let doc =
            jwks_tree_from_slice(br#"{"keys":[{"n":"a","n":"b"},{"kty":"EC"}]}"#).expect("json");
        assert_eq!(doc.repeated, None);
        let keys = doc.keys.expect("keys");
        assert_eq!(keys[0].repeated.as_deref(), Some("n"));
        assert_eq!(keys[1].repeated, None);
        for top in [
            &br#"{"keys":[],"keys":[{"kty":"EC"}]}"#[..],
            br#"{"keys":[],"x":{"y":1,"y":2}}"#,
            br#"{"keys":{"a":1,"a":1}}"#,
        ] {
            let doc = jwks_tree_from_slice(top).expect("json");
            assert!(doc.repeated.is_some(), "{}", String::from_utf8_lossy(top));
        }
        assert!(jwks_tree_from_slice(b"[]").expect("json").keys.is_none());
        assert!(jwks_tree_from_slice(br#"{"keys":5}"#)
            .expect("json")
            .keys
            .is_none());
        assert!(jwks_tree_from_slice(b"{} {}").is_err());
    }
}
