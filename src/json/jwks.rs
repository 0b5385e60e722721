//! A JWKS document read straight into borrowed, typed entries: no
//! `serde_json::Value` tree, member strings borrowed from the body unless
//! they carry escapes, every other member skipped over unread.
//!
//! The strictness is the tree reader's (see the parent module): a member
//! repeated inside one `keys` entry, at any depth, is that entry's (it is
//! skipped), any other repeat is the document's (it is rejected), and of a
//! repeated member the first occurrence is the one kept.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{Names, Str};

/// A member the key rules read, as found.
#[derive(Debug)]
pub(crate) enum Member<'de> {
    /// A string, borrowed from the document unless it had escapes.
    Str(Cow<'de, str>),
    /// Any other JSON type.
    Other,
}

impl Member<'_> {
    /// The string, if the member is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Member::Str(s) => Some(s),
            Member::Other => None,
        }
    }
}

/// What a `key_ops` member held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOps {
    /// An array; whether one of its elements is the string `verify`.
    Array { verify: bool },
    /// Not an array.
    Other,
}

/// One `keys` entry as read: the members the key rules look at (first
/// occurrence), and the first member name the entry repeats.
#[derive(Debug, Default)]
pub(crate) struct Entry<'de> {
    /// `false` when the entry is not a JSON object.
    pub(crate) object: bool,
    pub(crate) kty: Option<Member<'de>>,
    pub(crate) kid: Option<Member<'de>>,
    /// The `use` member.
    pub(crate) usage: Option<Member<'de>>,
    pub(crate) alg: Option<Member<'de>>,
    pub(crate) crv: Option<Member<'de>>,
    pub(crate) n: Option<Member<'de>>,
    pub(crate) e: Option<Member<'de>>,
    pub(crate) x: Option<Member<'de>>,
    pub(crate) y: Option<Member<'de>>,
    /// The `issuer` member (Entra publishes one per key).
    pub(crate) issuer: Option<Member<'de>>,
    pub(crate) key_ops: Option<KeyOps>,
    /// A private-key member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`) is
    /// present, whatever its type.
    pub(crate) private: bool,
    /// The first member name repeated in the entry or in an object inside it.
    pub(crate) repeated: Option<String>,
}

/// The member names the key rules look at, one bit each (by position):
/// the string members with a slot in [`Entry`], `key_ops`, then the
/// private-key members. Repeats among them are found with a bit mask;
/// only other names go to a [`Names`] list.
const KNOWN: [&str; 18] = [
    "kty", "kid", "use", "alg", "crv", "n", "e", "x", "y", "issuer",  // slots
    "key_ops", // KEY_OPS
    "d", "p", "q", "dp", "dq", "qi", "k", // private-key members
];
const KEY_OPS: usize = 10;

impl<'de> Entry<'de> {
    /// The slot of the string member at `KNOWN[index]`, for
    /// `index < KEY_OPS`. A new member the rules need is one name in
    /// `KNOWN` and one line here.
    fn slot(&mut self, index: usize) -> &mut Option<Member<'de>> {
        match index {
            0 => &mut self.kty,
            1 => &mut self.kid,
            2 => &mut self.usage,
            3 => &mut self.alg,
            4 => &mut self.crv,
            5 => &mut self.n,
            6 => &mut self.e,
            7 => &mut self.x,
            8 => &mut self.y,
            _ => &mut self.issuer,
        }
    }

    /// The entry's `kid`, when it is a string.
    pub(crate) fn kid_str(&self) -> Option<&str> {
        self.kid.as_ref().and_then(Member::as_str)
    }
}

/// A JWKS document as read.
#[derive(Debug)]
pub(crate) struct Jwks<'de> {
    /// The `keys` array (the first one); `None` when the document is not
    /// an object with a `keys` array.
    pub(crate) keys: Option<Vec<Entry<'de>>>,
    /// A member repeated at the top level or inside a member other than an
    /// entry of `keys`.
    pub(crate) repeated: Option<String>,
}

/// Parses a JWKS document; `Err` only when `bytes` is not one JSON value.
pub(crate) fn jwks_from_slice(bytes: &[u8]) -> Result<Jwks<'_>, serde_json::Error> {
    super::parse(bytes, JwksSeed)
}

/// Reads one entry on its own (the tests' and the fuzz oracle's door to
/// the same rules a document applies).
#[cfg(any(test, fuzzing))]
pub(crate) fn entry_from_slice(bytes: &[u8]) -> Result<Entry<'_>, serde_json::Error> {
    super::parse(bytes, EntrySeed)
}

/// Skips any value; the first member name repeated in an object inside it.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The scalar visits of a visitor that has nothing to keep from them.
macro_rules! scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

impl<'de> Visitor<'de> for Skip {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars!(None);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut repeated = None;
        while let Some(inner) = seq.next_element_seed(Skip)? {
            repeated = repeated.or(inner);
        }
        Ok(repeated)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut names = Names::default();
        let mut repeated = None;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            // As the tree reader: a repeat inside the value is found before
            // the repeat of the name that holds it.
            repeated = repeated.or(map.next_value_seed(Skip)?);
            if !names.insert(name.clone()) {
                repeated = repeated.or_else(|| Some(name.into_owned()));
            }
        }
        Ok(repeated)
    }
}

/// A member the rules read: a string, or another type skipped over.
struct MemberSeed;

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = (Member<'de>, Option<String>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = (Member<'de>, Option<String>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Member::Other, None))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok((Member::Str(Cow::Borrowed(v)), None))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((Member::Str(Cow::Owned(v.to_owned())), None))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok((Member::Str(Cow::Owned(v)), None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok((Member::Other, Skip.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok((Member::Other, Skip.visit_map(map)?))
    }
}

/// The `key_ops` member: whether it is an array naming `verify`.
struct KeyOpsSeed;

impl<'de> DeserializeSeed<'de> for KeyOpsSeed {
    type Value = (KeyOps, Option<String>);
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyOpsSeed {
    type Value = (KeyOps, Option<String>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }
    scalars!((KeyOps::Other, None));
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (mut verify, mut repeated) = (false, None);
        while let Some((op, inner)) = seq.next_element_seed(MemberSeed)? {
            verify |= op.as_str() == Some("verify");
            repeated = repeated.or(inner);
        }
        Ok((KeyOps::Array { verify }, repeated))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok((KeyOps::Other, Skip.visit_map(map)?))
    }
}

/// One entry of `keys`.
struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// An entry that is not an object (only its repeats are kept).
fn not_an_object<'de>(repeated: Option<String>) -> Entry<'de> {
    Entry {
        repeated,
        ..Entry::default()
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Entry<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWK")
    }
    scalars!(not_an_object(None));
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(not_an_object(Skip.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entry = Entry {
            object: true,
            ..Entry::default()
        };
        let mut seen = 0u32;
        // Only for names outside `KNOWN`: none in the usual entry.
        let mut others: Option<Names<'de>> = None;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            let known = KNOWN.iter().position(|k| **k == *name);
            let inner = match known {
                Some(index) if index < KEY_OPS => {
                    let (member, inner) = map.next_value_seed(MemberSeed)?;
                    // Of a repeated member the first is kept (the entry is
                    // skipped anyway; its kid is reported).
                    let slot = entry.slot(index);
                    if slot.is_none() {
                        *slot = Some(member);
                    }
                    inner
                }
                Some(KEY_OPS) => {
                    let (ops, inner) = map.next_value_seed(KeyOpsSeed)?;
                    entry.key_ops = entry.key_ops.or(Some(ops));
                    inner
                }
                Some(_) => {
                    entry.private = true;
                    map.next_value_seed(Skip)?
                }
                None => map.next_value_seed(Skip)?,
            };
            entry.repeated = entry.repeated.take().or(inner);
            let first = match known {
                Some(index) => {
                    let bit = 1u32 << index;
                    let first = seen & bit == 0;
                    seen |= bit;
                    first
                }
                None => others
                    .get_or_insert_with(Names::default)
                    .insert(name.clone()),
            };
            if !first {
                entry.repeated = entry.repeated.take().or_else(|| Some(name.into_owned()));
            }
        }
        Ok(entry)
    }
}

/// The `keys` member: its entries, or (not an array) the first repeat in
/// the value it held.
struct KeysSeed;

impl<'de> DeserializeSeed<'de> for KeysSeed {
    type Value = Result<Vec<Entry<'de>>, Option<String>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeysSeed {
    type Value = Result<Vec<Entry<'de>>, Option<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of JWKs")
    }
    scalars!(Err(None));
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Err(Skip.visit_map(map)?))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The byte cap bounds the entries; the hint is serde_json's (none).
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(entry) = seq.next_element_seed(EntrySeed)? {
            entries.push(entry);
        }
        Ok(Ok(entries))
    }
}

struct JwksSeed;

impl<'de> DeserializeSeed<'de> for JwksSeed {
    type Value = Jwks<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JwksSeed {
    type Value = Jwks<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWKS document")
    }
    // Anything but an object: read through (so a non-JSON tail is still
    // an error), with no `keys`.
    scalars!(Jwks {
        keys: None,
        repeated: None
    });
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip.visit_seq(seq)?;
        Ok(Jwks {
            keys: None,
            repeated: None,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut names = Names::default();
        let mut keys = None;
        let mut repeated = None;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            if name == "keys" {
                match map.next_value_seed(KeysSeed)? {
                    Ok(entries) => keys = keys.or(Some(entries)),
                    Err(inner) => repeated = repeated.or(inner),
                }
            } else {
                repeated = repeated.or(map.next_value_seed(Skip)?);
            }
            if !names.insert(name.clone()) {
                repeated = repeated.or_else(|| Some(name.into_owned()));
            }
        }
        Ok(Jwks { keys, repeated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(doc: &[u8]) -> Entry<'_> {
        let mut keys = jwks_from_slice(doc).expect("json").keys.expect("keys");
        assert_eq!(keys.len(), 1);
        keys.remove(0)
    }

    #[test]
    fn members_are_borrowed_typed_and_the_first_kept() {
        let doc = br#"{"keys":[{"kty":"EC","kid":"a","kid":"b","x":5,"zz":[1],"key_ops":["sign","verify"]}]}"#;
        let entry = only(doc);
        assert!(entry.object);
        assert!(matches!(entry.kty, Some(Member::Str(Cow::Borrowed("EC")))));
        assert_eq!(entry.kid_str(), Some("a"));
        assert!(matches!(entry.x, Some(Member::Other)));
        assert_eq!(entry.key_ops, Some(KeyOps::Array { verify: true }));
        assert_eq!(entry.repeated.as_deref(), Some("kid"));
        assert!(!entry.private);
        let escaped = only(br#"{"keys":[{"\u006bty":"R\u0053A","d":null}]}"#);
        assert_eq!(escaped.kty.as_ref().and_then(Member::as_str), Some("RSA"));
        assert!(escaped.private);
        assert!(!only(br#"{"keys":[[{"a":1}]]}"#).object);
        let private = only(br#"{"keys":[{"d":1,"q":2,"\u0064":3}]}"#);
        assert!(private.private);
        assert_eq!(private.repeated.as_deref(), Some("d"));
    }

    #[test]
    fn repeats_belong_to_the_entry_or_to_the_document() {
        let doc = jwks_from_slice(br#"{"keys":[{"n":"a","n":"b"},{"kty":"EC"}]}"#).expect("json");
        assert_eq!(doc.repeated, None);
        let keys = doc.keys.expect("keys");
        assert_eq!(keys[0].repeated.as_deref(), Some("n"));
        assert_eq!(keys[1].repeated, None);
        // Inside a value first, then the name holding it: the tree
        // reader's order.
        let nested = only(br#"{"keys":[{"a":{"b":1,"b":2},"a":3,"c":[{"d":0,"d":0}]}]}"#);
        assert_eq!(nested.repeated.as_deref(), Some("b"));
        let ops = only(br#"{"keys":[{"key_ops":[{"v":1,"v":2}]}]}"#);
        assert_eq!(ops.repeated.as_deref(), Some("v"));
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
        assert!(jwks_from_slice(br#"{"keys":[{"a":1]}"#).is_err());
    }

    #[test]
    fn thousands_of_members_are_checked_in_linear_time() {
        let mut doc = String::from(r#"{"keys":[{"#);
        for i in 0..20_000 {
            doc.push_str(&format!(r#""m{i}":{i},"#));
        }
        doc.push_str(r#""m7":0}]}"#);
        assert_eq!(only(doc.as_bytes()).repeated.as_deref(), Some("m7"));
    }
}
