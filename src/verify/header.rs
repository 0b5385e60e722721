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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<String>,
    cty: Option<String>,
}

impl TokenHeader {
    /// The algorithm the signature was checked with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The `kid` that selected the key; `None` when the token had none (see
    /// [`NoKidPolicy`](crate::NoKidPolicy)).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `typ` member (for example `"JWT"` or `"at+jwt"`), if any.
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The `cty` member, if any.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
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
        TokenHeader {
            alg: self.alg,
            kid: self.kid.as_deref().map(str::to_owned),
            typ: self.typ.as_deref().map(str::to_owned),
            cty: self.cty.as_deref().map(str::to_owned),
        }
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
