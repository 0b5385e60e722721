//! Which claim made the caller's claims type fail to deserialize.
//!
//! serde_json reports a position ("line 1, column 100"), which a user cannot
//! map back to a claim in a base64url token. Runs only on that error path:
//!
//! - a missing field is named by serde itself (`missing field `scope``,
//!   the name coming from the caller's type);
//! - otherwise the top-level member whose value holds the error position is
//!   named (a wrong type or value, nested or not, is reported as its
//!   top-level claim).
//!
//! Names are cut and stripped of control characters: a member name is
//! attacker-chosen text. Values are never reported.

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserializer as _;
use std::fmt;

use super::error::VerifyError;

/// Claim names in errors are cut to this many characters.
const MAX_NAME: usize = 64;

/// The [`VerifyError::ClaimsType`] for `error`, raised while deserializing
/// `claims` (the decoded claims JSON).
pub(super) fn claims_type_error(claims: &[u8], error: &serde_json::Error) -> VerifyError {
    let (line, column) = (error.line(), error.column());
    let message = error.to_string();
    let (claim, missing) = match missing_field(&message) {
        Some(name) => (Some(name), true),
        None => (member_at(claims, offset(claims, line, column)), false),
    };
    VerifyError::ClaimsType {
        claim: claim.map(|name| clean(&name)),
        missing,
        line,
        column,
    }
}

/// `missing field `name`` (serde's wording for a field absent from a map).
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}

/// The byte offset of a serde_json (1-based line, column) position; the
/// column counts bytes since the last newline.
fn offset(text: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    line_start.saturating_add(column.saturating_sub(1))
}

/// The name of the top-level member of `claims` whose span (from its name to
/// the next member's name) holds `at`.
fn member_at(claims: &[u8], at: usize) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(claims);
    let spans = de.deserialize_map(Spans { text: claims }).ok()?;
    spans
        .iter()
        .rev()
        .find(|(start, _)| *start <= at)
        .map(|(_, name)| name.clone())
}

/// Reads an object's member names with the byte offset where each starts.
struct Spans<'a> {
    text: &'a [u8],
}

impl<'de> Visitor<'de> for Spans<'_> {
    type Value = Vec<(usize, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut spans = Vec::new();
        // The previous member's value ends before the next name; the name's
        // start is found by scanning from there for its opening quote.
        let mut cursor = self.text.iter().position(|b| *b == b'{').unwrap_or(0);
        while let Some(name) = map.next_key::<String>()? {
            let start = self.text[cursor..]
                .iter()
                .position(|b| *b == b'"')
                .map_or(cursor, |i| cursor + i);
            spans.push((start, name));
            map.next_value::<IgnoredAny>()?;
            cursor = self.end_of_value(start);
        }
        Ok(spans)
    }
}

impl Spans<'_> {
    /// From a member name's opening quote, the offset just past its value:
    /// skips the name, then the value, tracking strings and nesting.
    fn end_of_value(&self, name_start: usize) -> usize {
        let text = self.text;
        let mut i = skip_string(text, name_start);
        let mut depth = 0usize;
        while i < text.len() {
            match text[i] {
                b'"' => {
                    i = skip_string(text, i);
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        return i;
                    }
                    depth -= 1;
                }
                b',' if depth == 0 => return i,
                _ => {}
            }
            i += 1;
        }
        i
    }
}

/// From an opening quote at `i`, the offset just past the closing quote.
fn skip_string(text: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    text.len()
}

/// At most [`MAX_NAME`] characters, control characters replaced.
fn clean(name: &str) -> Box<str> {
    name.chars()
        .take(MAX_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Claims {
        sub: String,
        scope: String,
        #[serde(default)]
        roles: Vec<String>,
        #[serde(default)]
        address: Option<Address>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Address {
        zip: String,
    }

    fn fit(json: &str) -> VerifyError {
        let e = serde_json::from_str::<Claims>(json).unwrap_err();
        claims_type_error(json.as_bytes(), &e)
    }

    fn named(err: &VerifyError) -> (Option<&str>, bool) {
        match err {
            VerifyError::ClaimsType { claim, missing, .. } => (claim.as_deref(), *missing),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_claim_is_named() {
        let err = fit(r#"{"sub":"alice","exp":1}"#);
        assert_eq!(named(&err), (Some("scope"), true));
        assert!(err.to_string().contains("\"scope\" is missing"), "{err}");
    }

    #[test]
    fn a_mistyped_claim_is_named_without_its_value() {
        for json in [
            r#"{"sub":"alice","scope":["secret-value"],"roles":[]}"#,
            r#"{"sub":"alice","scope":12345,"roles":[]}"#,
            r#"{"scope":true,"sub":"alice"}"#,
            "{\n  \"sub\": \"alice\",\n  \"scope\": {\"a\": \"secret-value\"}\n}",
        ] {
            let err = fit(json);
            assert_eq!(named(&err), (Some("scope"), false), "{json}");
            let text = err.to_string();
            assert!(text.contains("\"scope\""), "{text}");
            assert!(
                !text.contains("secret-value") && !text.contains("12345"),
                "{text}"
            );
        }
        // Nested: the top-level claim holding the bad value.
        let err = fit(r#"{"sub":"a","scope":"s","address":{"zip":5},"x":"}"}"#);
        assert_eq!(named(&err), (Some("address"), false));
        let err = fit(r#"{"sub":"a","scope":"s","roles":["ok",{"x":"]"}]}"#);
        assert_eq!(named(&err), (Some("roles"), false));
        let err = fit(r#"{"sub":"a\"b,","scope":"s","roles":[1]}"#);
        assert_eq!(named(&err), (Some("roles"), false));
    }

    #[test]
    fn a_hostile_name_is_cut_and_cleaned() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Strict {
            sub: Option<String>,
        }
        // An escape sequence in the member name, written as JSON escapes it.
        let name = format!("evil\\u001b[2J{}", "x".repeat(100));
        let json = format!(r#"{{"{name}":1}}"#);
        let e = serde_json::from_str::<Strict>(&json).unwrap_err();
        let err = claims_type_error(json.as_bytes(), &e);
        let (claim, _) = named(&err);
        let claim = claim.expect("named");
        assert!(claim.starts_with("evil?[2J"), "{claim}");
        assert_eq!(claim.chars().count(), MAX_NAME);
    }

    #[test]
    fn not_an_object_falls_back_to_the_position() {
        let e = serde_json::from_str::<Claims>("[1]").unwrap_err();
        let err = claims_type_error(b"[1]", &e);
        assert_eq!(named(&err), (None, false));
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
