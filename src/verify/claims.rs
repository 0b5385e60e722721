//! The registered-claim rules (RFC 7519 §4.1), pure: the caller passes
//! `now` in Unix seconds.
//!
//! Claims are read once, with borrowed strings and no tree: registered
//! members are type-checked, `aud` is matched as it is read, the names in
//! `required` are ticked off in a bit mask, and everything else is skipped.
//! The rules then run in a fixed order, whatever the member order:
//!
//! 1. no member given twice, in the claims object or in any object inside
//!    a claim value (names compared after unescaping);
//! 2. types: `exp`, `nbf`, `iat` NumericDates: non-negative JSON numbers
//!    below 2^63 seconds (an integer or a fraction; `-1`, `2^63`,
//!    `u64::MAX`, `1e20`, `1e300` are wrong types, never "far future");
//!    `iss`, `sub` strings; `aud` a string or an array of strings;
//! 3. every required claim present and not `null`;
//! 4. `exp`: rejected once `now >= exp + leeway` (fractional `exp` rounds
//!    down, so never later than written);
//! 5. `nbf`: rejected while `now + leeway < nbf` (fractional `nbf` rounds up);
//! 6. `iat`, only when configured: in the future (`now + leeway < iat`,
//!    rounded up) rejects; older than the maximum token age
//!    (`now >= iat + max_age + leeway`, rounded down) rejects;
//! 7. `iss` one of the accepted issuers, when any are configured;
//! 8. `aud` names an accepted audience; with none configured, a token that
//!    names any audience is rejected (RFC 7519 §4.1.3) unless any audience
//!    is explicitly accepted.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::error::VerifyError;
use super::json::{self, Names, Skip, Str, StringsSeed, StringsSeen, Value};

/// At most this many required claim names (one bit each).
pub(super) const MAX_REQUIRED: usize = 64;

/// Which audiences a token may name.
#[derive(Debug, Clone)]
pub(super) enum Audiences {
    /// None configured: a token with a non-empty `aud` is rejected.
    Unset,
    /// Any `aud`, or none (the risky opt-out).
    Any,
    /// At least one of these.
    OneOf(Box<[Box<str>]>),
}

/// The claim rules of one verifier.
#[derive(Debug, Clone)]
pub(super) struct ClaimRules {
    /// Accepted issuers; empty: any.
    issuers: Box<[Box<str>]>,
    audiences: Audiences,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    leeway: u64,
    /// The `iat` rules (both off by default).
    iat: IatRules,
    /// Claims that must be present (at most [`MAX_REQUIRED`]); bit `i` of
    /// a presence mask stands for `required[i]`.
    required: Box<[Box<str>]>,
    /// The presence bits of each registered claim, in [`REGISTERED`] order,
    /// worked out once so that reading a member costs no name comparisons.
    registered_bits: [u64; REGISTERED.len()],
    /// Required claims that are not registered ones, with their bits.
    other_required: Box<[(Box<str>, u64)]>,
}

/// The optional `iat` rules.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct IatRules {
    /// Tokens issued longer ago than this many seconds (plus the leeway)
    /// are rejected; `iat` is then required.
    pub(super) max_age: Option<u64>,
    /// Tokens issued after `now + leeway` are rejected.
    pub(super) reject_future: bool,
}

/// The registered claims the rules read, in slot order.
const REGISTERED: [&str; 6] = ["exp", "nbf", "iat", "iss", "sub", "aud"];

impl ClaimRules {
    /// `required` must hold at most [`MAX_REQUIRED`] distinct names.
    pub(super) fn new(
        issuers: Box<[Box<str>]>,
        audiences: Audiences,
        leeway: u64,
        iat: IatRules,
        required: Box<[Box<str>]>,
    ) -> Self {
        let bit = |i: usize| {
            1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX))
                .unwrap_or(0)
        };
        let mut registered_bits = [0u64; REGISTERED.len()];
        let mut other_required = Vec::new();
        for (i, name) in required.iter().enumerate() {
            match REGISTERED.iter().position(|r| **r == **name) {
                Some(slot) => registered_bits[slot] |= bit(i),
                None => other_required.push((name.clone(), bit(i))),
            }
        }
        Self {
            issuers,
            audiences,
            leeway,
            iat,
            required,
            registered_bits,
            other_required: other_required.into_boxed_slice(),
        }
    }
}

/// Checks the decoded claims JSON against `rules` at `now` (Unix seconds).
pub(super) fn check(bytes: &[u8], rules: &ClaimRules, now: u64) -> Result<(), VerifyError> {
    let accepted: &[Box<str>] = match &rules.audiences {
        Audiences::OneOf(list) => list,
        _ => &[],
    };
    let raw = json::parse(bytes, RawSeed { rules, accepted })
        .map_err(|_| VerifyError::Malformed("claims are not a JSON object"))?;
    if raw.duplicate {
        return Err(VerifyError::Malformed("claims repeat a member"));
    }
    let exp = numeric(raw.exp, "exp")?;
    let nbf = numeric(raw.nbf, "nbf")?;
    let iat = numeric(raw.iat, "iat")?;
    let iss = string(raw.iss, "iss")?;
    string(raw.sub, "sub")?;
    if raw.aud == Some(StringsSeen::WrongType) {
        return Err(VerifyError::BadClaimType("aud"));
    }
    if let Some(i) = (0..rules.required.len()).find(|i| raw.present & (1u64 << i) == 0) {
        return Err(VerifyError::MissingClaim(rules.required[i].clone()));
    }
    if let Some(exp) = exp {
        if now >= exp.floor.saturating_add(rules.leeway) {
            return Err(VerifyError::Expired);
        }
    }
    if let Some(nbf) = nbf {
        if now.saturating_add(rules.leeway) < nbf.ceil {
            return Err(VerifyError::NotYetValid);
        }
    }
    if let Some(iat) = iat {
        if rules.iat.reject_future && now.saturating_add(rules.leeway) < iat.ceil {
            return Err(VerifyError::IssuedInFuture);
        }
        if let Some(max_age) = rules.iat.max_age {
            let limit = iat
                .floor
                .saturating_add(max_age)
                .saturating_add(rules.leeway);
            if now >= limit {
                return Err(VerifyError::TooOld);
            }
        }
    }
    if !rules.issuers.is_empty() {
        match iss {
            Some(iss) if rules.issuers.iter().any(|a| **a == *iss) => {}
            _ => return Err(VerifyError::WrongIssuer),
        }
    }
    let named = matches!(raw.aud, Some(StringsSeen::Strings { any: true, .. }));
    let matched = matches!(raw.aud, Some(StringsSeen::Strings { matched: true, .. }));
    match &rules.audiences {
        Audiences::Any => {}
        Audiences::Unset if !named => {}
        Audiences::OneOf(_) if matched => {}
        _ => return Err(VerifyError::WrongAudience),
    }
    Ok(())
}

/// A NumericDate in whole seconds, rounded both ways: each rule takes the
/// rounding that rejects sooner (`exp` and the age limit round down, `nbf`
/// and the future-`iat` rule round up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Date {
    floor: u64,
    ceil: u64,
}

/// The largest NumericDate accepted: `i64::MAX` seconds. Past it a date is
/// a wrong type, not "never expires".
const MAX_DATE: u64 = i64::MAX as u64;

fn numeric(value: Option<Value<'_>>, name: &'static str) -> Result<Option<Date>, VerifyError> {
    match value {
        None => Ok(None),
        Some(Value::Uint(v)) if v <= MAX_DATE => Ok(Some(Date { floor: v, ceil: v })),
        // 2^63 as f64 is exactly representable; anything below it converts
        // without saturating. NaN and infinities cannot come from JSON, and
        // fail `f >= 0.0` / the bound anyway.
        Some(Value::Float(f)) if (0.0..9_223_372_036_854_775_808.0).contains(&f) => {
            Ok(Some(Date {
                floor: f.floor() as u64,
                ceil: f.ceil() as u64,
            }))
        }
        Some(_) => Err(VerifyError::BadClaimType(name)),
    }
}

fn string<'a>(
    value: Option<Value<'a>>,
    name: &'static str,
) -> Result<Option<Cow<'a, str>>, VerifyError> {
    match value {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::BadClaimType(name)),
    }
}

/// The registered members as found, plus the required-claim tick marks.
#[derive(Default)]
struct RawClaims<'de> {
    exp: Option<Value<'de>>,
    nbf: Option<Value<'de>>,
    iat: Option<Value<'de>>,
    iss: Option<Value<'de>>,
    sub: Option<Value<'de>>,
    aud: Option<StringsSeen>,
    /// Bit `i`: `rules.required[i]` is present and not `null`.
    present: u64,
    duplicate: bool,
}

struct RawSeed<'r> {
    rules: &'r ClaimRules,
    accepted: &'r [Box<str>],
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = RawClaims<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = RawClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawClaims::default();
        let mut names = Names::default();
        let rules = self.rules;
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            raw.duplicate |= !names.insert(name.clone());
            let (slot, bits) = match &*name {
                "exp" => (&mut raw.exp, rules.registered_bits[0]),
                "nbf" => (&mut raw.nbf, rules.registered_bits[1]),
                "iat" => (&mut raw.iat, rules.registered_bits[2]),
                "iss" => (&mut raw.iss, rules.registered_bits[3]),
                "sub" => (&mut raw.sub, rules.registered_bits[4]),
                "aud" => {
                    let seen = map.next_value_seed(StringsSeed {
                        accepted: self.accepted,
                        single: true,
                    })?;
                    // `null` is a wrong type for aud, reported as such.
                    raw.present |= rules.registered_bits[5];
                    raw.aud = Some(seen);
                    continue;
                }
                other => {
                    let bits = rules
                        .other_required
                        .iter()
                        .filter(|(r, _)| **r == *other)
                        .fold(0, |mask, (_, bit)| mask | bit);
                    if bits == 0 {
                        raw.duplicate |= map.next_value_seed(Skip)?;
                    } else {
                        let value = map.next_value::<Value<'de>>()?;
                        raw.duplicate |= value.repeats();
                        if !matches!(value, Value::Null) {
                            raw.present |= bits;
                        }
                    }
                    continue;
                }
            };
            let value = map.next_value::<Value<'de>>()?;
            // A registered claim that is `null` fails its type check first.
            raw.present |= bits;
            raw.duplicate |= value.repeats();
            *slot = Some(value);
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests;
