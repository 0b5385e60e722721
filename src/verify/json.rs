//! Just enough JSON for the token checks: object members seen one by one,
//! values reduced to what a rule needs, strings borrowed from the decoded
//! bytes whenever they carry no escapes.
//!
//! Wrong JSON *types* are reported in band (as [`Value::Other`] and the
//! like), never as serde errors, so that a serde error always means "not
//! JSON" and a type confusion always names the member it happened in.
//!
//! Repeated members are reported in band too, at any depth: an object
//! anywhere in a header or claims that names a member twice (compared
//! after unescaping, so `"a"` and `"\u0061"` are the same name) makes the
//! whole token malformed. serde_json would keep the last one silently, and
//! another parser the first: a parser differential an attacker can use.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

pub(super) use crate::json::Str;

/// Any JSON value, reduced to its type (and its content for strings and
/// numbers). Arrays and objects are skipped over, not kept.
pub(super) enum Value<'de> {
    Str(Cow<'de, str>),
    /// A non-negative integer.
    Uint(u64),
    /// A negative integer.
    Int,
    Float(f64),
    Null,
    /// `true`, `false`, an array or an object.
    Other,
    /// An array or object in which some object repeats a member.
    Repeats,
}

impl Value<'_> {
    /// Whether an object inside this value repeats a member.
    pub(super) fn repeats(&self) -> bool {
        matches!(self, Value::Repeats)
    }
}

pub(super) use crate::json::Names;

/// Skips any JSON value; `true` when an object inside it repeats a member.
pub(super) struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut repeats = false;
        while let Some(inner) = seq.next_element_seed(Skip)? {
            repeats |= inner;
        }
        Ok(repeats)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut names = Names::default();
        let mut repeats = false;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            repeats |= !names.insert(name);
            repeats |= map.next_value_seed(Skip)?;
        }
        Ok(repeats)
    }
}

impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Value::Other)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Value::Int, Value::Uint))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Value::Uint(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(nested(Skip.visit_seq(seq)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(nested(Skip.visit_map(map)?))
    }
}

fn nested<'de>(repeats: bool) -> Value<'de> {
    if repeats {
        Value::Repeats
    } else {
        Value::Other
    }
}

/// What a "string or array of strings" member held, checked against a
/// list of accepted values as it is read (no array is collected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StringsSeen {
    /// Well-typed; `any` strings were seen and `matched` says whether one
    /// of them is accepted.
    Strings { any: bool, matched: bool },
    /// Some other type, or an array with a non-string element.
    WrongType,
}

/// Reads a string or an array of strings, matching each against `accepted`.
pub(super) struct StringsSeed<'a> {
    pub(super) accepted: &'a [Box<str>],
    /// Whether a single string is allowed (`aud`) or only arrays (`crit`).
    pub(super) single: bool,
}

impl<'de> DeserializeSeed<'de> for StringsSeed<'_> {
    type Value = StringsSeen;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringsSeed<'_> {
    type Value = StringsSeen;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(StringsSeen::WrongType)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if !self.single {
            return Ok(StringsSeen::WrongType);
        }
        Ok(StringsSeen::Strings {
            any: true,
            matched: self.accepted.iter().any(|a| **a == *v),
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let (mut any, mut matched, mut wrong) = (false, false, false);
        while let Some(element) = seq.next_element::<Value<'de>>()? {
            match element {
                Value::Str(s) => {
                    any = true;
                    matched |= self.accepted.iter().any(|a| **a == *s);
                }
                _ => wrong = true,
            }
        }
        Ok(if wrong {
            StringsSeen::WrongType
        } else {
            StringsSeen::Strings { any, matched }
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(StringsSeen::WrongType)
    }
}

/// Runs `seed` over `bytes`, which must hold exactly one JSON value.
pub(super) use crate::json::parse;
