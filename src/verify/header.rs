//! The JOSE header: parsed by hand so that every member is seen, and the
//! algorithm rules applied before any key is looked up.
//!
//! - `alg` must be a string naming an asymmetric algorithm in the allowed
//!   set: `none` in any casing, every HMAC algorithm and unknown names are
//!   refused.
//! - `crit` rejects the token: this verifier implements no extension.
//! - `jku`, `x5u`, `jwk`, `x5c`, `x5t` are skipped unread: keys come only
//!   from the cached key set, never from the token.
//! - A member given twice is malformed (no parser-differential games), in
//!   the header object or in any object inside a member's value.

use std::borrow::Cow;
use std::fmt;

use crate::algorithm::Algorithm;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::error::{AlgorithmRejection, VerifyError};
use super::json::{self, Names, Skip, Str, StringsSeed, StringsSeen, Value};
use crate::jwk::AlgorithmSet;

/// The header of a verified token.
///
/// `kid`, `typ` and `cty` are kept in one buffer inside the header (on the
/// heap only when together they pass [`TokenHeader::INLINE`] bytes), so
/// that returning a header costs no allocation for the usual token.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHeader {
    alg: Algorithm,
    kid: Option<Span>,
    typ: Option<Span>,
    cty: Option<Span>,
    text: Text,
}

/// Where one member's text is in [`Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// `kid`, `typ` and `cty` one after the other. Unused inline bytes are
/// zero, so that two headers with the same members compare equal.
#[derive(Clone, PartialEq, Eq)]
enum Text {
    Inline([u8; TokenHeader::INLINE]),
    Heap(Box<str>),
}

impl TokenHeader {
    /// How many bytes of `kid`, `typ` and `cty` together a header holds
    /// without a heap allocation.
    pub const INLINE: usize = 96;

    /// The algorithm the signature was checked with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` that selected the key; `None` when the token had none (see
    /// [`NoKidPolicy`](crate::NoKidPolicy)).
    pub fn kid(&self) -> Option<&str> {
        self.text(self.kid)
    }

    /// The `typ` member (for example `"JWT"` or `"at+jwt"`), if any.
    pub fn typ(&self) -> Option<&str> {
        self.text(self.typ)
    }

    /// The `cty` member, if any.
    pub fn cty(&self) -> Option<&str> {
        self.text(self.cty)
    }

    fn new(alg: Algorithm, kid: Option<&str>, typ: Option<&str>, cty: Option<&str>) -> Self {
        let members = [kid, typ, cty];
        let total: usize = members.iter().flatten().map(|s| s.len()).sum();
        let mut spans = [None; 3];
        let text = if total <= Self::INLINE {
            let mut buf = [0u8; Self::INLINE];
            let mut at = 0;
            for (member, span) in members.iter().zip(&mut spans) {
                if let Some(s) = member {
                    buf[at..at + s.len()].copy_from_slice(s.as_bytes());
                    *span = Some(Span::of(at, s.len()));
                    at += s.len();
                }
            }
            Text::Inline(buf)
        } else {
            let mut all = String::with_capacity(total);
            for (member, span) in members.iter().zip(&mut spans) {
                if let Some(s) = member {
                    *span = Some(Span::of(all.len(), s.len()));
                    all.push_str(s);
                }
            }
            Text::Heap(all.into_boxed_str())
        };
        let [kid, typ, cty] = spans;
        Self {
            alg,
            kid,
            typ,
            cty,
            text,
        }
    }

    fn text(&self, span: Option<Span>) -> Option<&str> {
        let span = span?;
        let range = span.start..span.end;
        match &self.text {
            // Whole strings were copied in: always UTF-8.
            Text::Inline(buf) => std::str::from_utf8(buf.get(range)?).ok(),
            Text::Heap(all) => all.get(range),
        }
    }
}

impl Span {
    /// A member of `len` bytes at `start`.
    fn of(start: usize, len: usize) -> Self {
        Self {
            start,
            end: start + len,
        }
    }
}

impl fmt::Debug for TokenHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHeader")
            .field("alg", &self.alg)
            .field("kid", &self.kid())
            .field("typ", &self.typ())
            .field("cty", &self.cty())
            .finish()
    }
}

/// A header that passed every header rule, borrowing the decoded bytes.
pub(super) struct Header<'a> {
    pub(super) alg: Algorithm,
    pub(super) kid: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
    cty: Option<Cow<'a, str>>,
}

impl Header<'_> {
    pub(super) fn to_owned(&self) -> TokenHeader {
        TokenHeader::new(
            self.alg,
            self.kid.as_deref(),
            self.typ.as_deref(),
            self.cty.as_deref(),
        )
    }
}

/// Parses the decoded header JSON and applies the header rules.
pub(super) fn parse(bytes: &[u8], allowed: AlgorithmSet) -> Result<Header<'_>, VerifyError> {
    let raw = json::parse(bytes, RawSeed)
        .map_err(|_| VerifyError::Malformed("header is not a JSON object"))?;
    if raw.duplicate {
        return Err(VerifyError::Malformed("header repeats a member"));
    }
    let alg = match raw.alg {
        Some(Value::Str(name)) => algorithm(&name, allowed)?,
        Some(_) => return Err(VerifyError::Malformed("header alg is not a string")),
        None => return Err(VerifyError::Malformed("header has no alg")),
    };
    match raw.crit {
        None => {}
        Some(StringsSeen::Strings { any: true, .. }) => {
            return Err(VerifyError::UnsupportedCritical)
        }
        // RFC 7515 §4.1.11: an array of at least one string.
        Some(_) => {
            return Err(VerifyError::Malformed(
                "header crit is not a non-empty array of strings",
            ))
        }
    }
    Ok(Header {
        alg,
        kid: string(raw.kid, "header kid is not a string")?,
        typ: string(raw.typ, "header typ is not a string")?,
        cty: string(raw.cty, "header cty is not a string")?,
    })
}

fn string<'a>(
    value: Option<Value<'a>>,
    what: &'static str,
) -> Result<Option<Cow<'a, str>>, VerifyError> {
    match value {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::Malformed(what)),
    }
}

/// The algorithm rules, in order: `none` in any casing, HMAC, unknown,
/// not allowed.
pub(super) fn algorithm(name: &str, allowed: AlgorithmSet) -> Result<Algorithm, VerifyError> {
    let reject = |why| Err(VerifyError::DisallowedAlgorithm(why));
    if name.eq_ignore_ascii_case("none") {
        return reject(AlgorithmRejection::None);
    }
    // `Algorithm`'s names (RFC 9864's "Ed25519" included); HMAC is named
    // to be refused, never used with a remote key set.
    let alg = match name.parse::<Algorithm>() {
        Ok(hmac @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
            return reject(AlgorithmRejection::Hmac(hmac))
        }
        Ok(alg) => alg,
        Err(_) => return reject(AlgorithmRejection::Unknown),
    };
    if !allowed.contains(alg) {
        return reject(AlgorithmRejection::NotAllowed(alg));
    }
    Ok(alg)
}

/// The members the rules look at, as found.
#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<Value<'de>>,
    kid: Option<Value<'de>>,
    typ: Option<Value<'de>>,
    cty: Option<Value<'de>>,
    crit: Option<StringsSeen>,
    duplicate: bool,
}

struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = RawHeader<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed {
    type Value = RawHeader<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawHeader::default();
        let mut names = Names::default();
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            raw.duplicate |= !names.insert(name.clone());
            let slot = match &*name {
                "alg" => &mut raw.alg,
                "kid" => &mut raw.kid,
                "typ" => &mut raw.typ,
                "cty" => &mut raw.cty,
                "crit" => {
                    let seen = map.next_value_seed(StringsSeed {
                        accepted: &[],
                        single: false,
                    })?;
                    raw.crit = Some(seen);
                    continue;
                }
                // jku, x5u, jwk, x5c, x5t and anything else: never used,
                // only checked for repeated members.
                _ => {
                    raw.duplicate |= map.next_value_seed(Skip)?;
                    continue;
                }
            };
            let value = map.next_value::<Value<'de>>()?;
            raw.duplicate |= value.repeats();
            *slot = Some(value);
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_inline_or_on_the_heap_read_back_the_same() {
        let long = "k".repeat(TokenHeader::INLINE);
        for (kid, typ, cty) in [
            (Some("k1"), Some("JWT"), None),
            (None, None, None),
            (Some(""), None, Some("c")),
            (Some(long.as_str()), None, None),
            (Some(long.as_str()), Some("at+jwt"), Some("x")),
        ] {
            let header = TokenHeader::new(Algorithm::ES256, kid, typ, cty);
            assert_eq!((header.kid(), header.typ(), header.cty()), (kid, typ, cty));
            assert_eq!(header.alg(), Algorithm::ES256);
            assert_eq!(header, header.clone());
            let heap = matches!(header.text, Text::Heap(_));
            let total = [kid, typ, cty]
                .iter()
                .flatten()
                .map(|s| s.len())
                .sum::<usize>();
            assert_eq!(heap, total > TokenHeader::INLINE);
        }
        let a = TokenHeader::new(Algorithm::RS256, Some("ab"), None, Some("c"));
        let b = TokenHeader::new(Algorithm::RS256, Some("a"), Some("b"), Some("c"));
        assert_ne!(a, b, "same bytes, other members");
        assert_eq!(
            format!("{a:?}"),
            r#"TokenHeader { alg: RS256, kid: Some("ab"), typ: None, cty: Some("c") }"#
        );
    }
}
