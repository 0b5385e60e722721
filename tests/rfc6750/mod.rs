//! A strict parser for RFC 6750 `WWW-Authenticate: Bearer` challenges
//! (RFC 6750 §3, with the challenge and quoted-string grammar of RFC 9110
//! §11.6.1 and §5.6.4): anything it accepts, any conforming client reads.

use std::collections::BTreeMap;

/// The attributes of a Bearer challenge, unescaped, by name.
pub type Attributes = BTreeMap<String, String>;

/// Parses `value` strictly: the `Bearer` scheme, then comma-separated
/// `name="value"` attributes among realm, scope, error, error_description
/// and error_uri, each at most once, values checked against RFC 6750's
/// character sets. Any deviation is an `Err` saying where.
pub fn parse(value: &str) -> Result<Attributes, String> {
    if let Some(bad) = value.chars().find(|c| !matches!(c, ' '..='~' | '\t')) {
        return Err(format!(
            "{bad:?} is not allowed in a header value: {value:?}"
        ));
    }
    let rest = match value.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => &value[6..],
        _ => return Err(format!("not the Bearer scheme: {value:?}")),
    };
    let mut attrs = Attributes::new();
    if rest.is_empty() {
        return Ok(attrs);
    }
    let mut rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space after the scheme: {value:?}"))?
        .trim_start_matches(' ');
    loop {
        let name_len = rest.find(|c: char| !is_tchar(c)).unwrap_or(rest.len());
        if name_len == 0 {
            return Err(format!("expected an attribute name at {rest:?}"));
        }
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("no '=' after {name}"))?
            .trim_start_matches([' ', '\t']);
        let (text, after) = quoted_string(rest)?;
        check_attribute(&name, &text)?;
        if attrs.insert(name.clone(), text).is_some() {
            return Err(format!("{name} given twice"));
        }
        rest = after.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(attrs);
        }
        rest = rest
            .strip_prefix(',')
            .ok_or_else(|| format!("expected ',' at {rest:?}"))?
            .trim_start_matches([' ', '\t']);
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A quoted-string at the start of `text`: its unescaped content and what
/// follows it.
fn quoted_string(text: &str) -> Result<(String, &str), String> {
    let mut chars = text
        .strip_prefix('"')
        .ok_or_else(|| format!("value is not a quoted-string: {text:?}"))?
        .char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &text[i + 2..])),
            '\\' => match chars.next() {
                Some((_, e)) if matches!(e, '\t' | ' '..='~') => out.push(e),
                _ => return Err(format!("bad quoted-pair in {text:?}")),
            },
            '\t' | ' ' | '!' | '#'..='[' | ']'..='~' => out.push(c),
            _ => return Err(format!("{c:?} is not qdtext in {text:?}")),
        }
    }
    Err(format!("unterminated quoted-string: {text:?}"))
}

/// RFC 6750 §3's rules for each attribute's (unescaped) value.
fn check_attribute(name: &str, value: &str) -> Result<(), String> {
    // %x20-21 / %x23-5B / %x5D-7E
    let nqschar = |c: char| matches!(c, ' ' | '!' | '#'..='[' | ']'..='~');
    match name {
        "realm" => Ok(()),
        "error" => match value {
            "invalid_request" | "invalid_token" | "insufficient_scope" => Ok(()),
            _ => Err(format!("unknown error code {value:?}")),
        },
        "error_description" | "error_uri" => match value.chars().find(|c| !nqschar(*c)) {
            None => Ok(()),
            Some(c) => Err(format!("{c:?} not allowed in {name}: {value:?}")),
        },
        "scope" => {
            // scope-token *( SP scope-token ), scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if value.split(' ').all(|t| {
                !t.is_empty() && t.chars().all(|c| matches!(c, '!' | '#'..='[' | ']'..='~'))
            }) {
                Ok(())
            } else {
                Err(format!("bad scope {value:?}"))
            }
        }
        _ => Err(format!("unexpected attribute {name}")),
    }
}
