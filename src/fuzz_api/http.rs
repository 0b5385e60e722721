//! The HTTP doors: cache headers, dates, `Location`, discovery documents.
//!
//! Each oracle states a rule of the RFCs (or of the crate's docs) that
//! must hold whatever the bytes are, rather than a second implementation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::fetch::{
    check_document, format_http_date, parse_http_date, retry_after, CacheHeaders, Target,
};

/// Two clocks, 400 days apart: what `Date` fixes must not depend on them.
const NOW: u64 = 1_700_000_000;
const LATER: u64 = NOW + 400 * 86_400;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Whether `s` is delta-seconds (RFC 9111 §1.2.2) as the parser reads it.
fn delta_seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse::<u64>().unwrap_or(u64::from(u32::MAX)))
}

/// Up to four lines: `Cache-Control`, `Age`, `Expires`, `Date` (a missing
/// line is an absent header). Panics if the lifetime breaks RFC 9111.
pub fn cache_headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n').map(str::to_owned);
    let h = CacheHeaders {
        cache_control: lines.next(),
        age: lines.next(),
        expires: lines.next(),
        date: lines.next(),
    };
    let now = h.lifetime(at(NOW));
    let later = h.lifetime(at(LATER));
    if !h.grants_lifetime() {
        assert_eq!(now, None, "no lifetime header, no lifetime");
    }
    let directives: Vec<(String, Option<&str>)> = h
        .cache_control
        .as_deref()
        .map(|cc| {
            cc.split(',')
                .map(|d| match d.split_once('=') {
                    Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim())),
                    None => (d.trim().to_ascii_lowercase(), None),
                })
                .collect()
        })
        .unwrap_or_default();
    if directives
        .iter()
        .any(|(n, _)| n == "no-store" || n == "no-cache")
    {
        assert_eq!(
            now,
            Some(Duration::ZERO),
            "no-store/no-cache grants nothing"
        );
        return;
    }
    let max_age = directives
        .iter()
        .find(|(n, _)| n == "max-age")
        .map(|(_, v)| v.and_then(|v| delta_seconds(v.trim_matches('"'))));
    match max_age {
        Some(max_age) => {
            let max_age = Duration::from_secs(max_age.unwrap_or(0));
            assert!(
                now.is_some_and(|l| l <= max_age),
                "max-age bounds the lifetime"
            );
            assert_eq!(now, later, "max-age does not depend on the clock");
        }
        None if h.date.as_deref().and_then(parse_http_date).is_some() => {
            assert_eq!(
                now, later,
                "with a Date, Expires does not depend on the clock"
            );
        }
        None => {}
    }
    if h.expires.is_some() && max_age.is_none() {
        assert!(now.is_some(), "an Expires always gives a lifetime");
    }
    // An older response is never fresher.
    let older = CacheHeaders {
        age: Some(
            h.age
                .as_deref()
                .and_then(delta_seconds)
                .map_or(1000, |a| a.saturating_add(1000))
                .to_string(),
        ),
        ..h.clone()
    };
    assert!(
        older.lifetime(at(NOW)) <= now,
        "a larger Age lengthened the lifetime"
    );
    // A 304 that repeats the headers changes nothing; one with none keeps
    // the stored directives.
    assert_eq!(h.freshened(&h), h);
    let bare = h.freshened(&CacheHeaders::default());
    assert_eq!(
        (bare.cache_control, bare.expires),
        (h.cache_control.clone(), h.expires.clone())
    );
    for value in [&h.cache_control, &h.age, &h.expires, &h.date]
        .into_iter()
        .flatten()
    {
        let delay = retry_after(value, h.date.as_deref(), at(NOW));
        if let Some(secs) = delta_seconds(value) {
            assert_eq!(
                delay,
                Some(Duration::from_secs(secs)),
                "Retry-After seconds"
            );
        }
    }
}

/// An HTTP date; panics unless what parses formats back to the same time
/// (and, when it was written as an IMF-fixdate, to the same text).
pub fn http_date(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_http_date(text);
    assert_eq!(parse_http_date(&format!(" {text}\t")), parsed, "whitespace");
    let retry = retry_after(text, None, at(NOW));
    let Some(t) = parsed else {
        if delta_seconds(text).is_none() {
            assert_eq!(retry, None, "Retry-After took what is neither form");
        }
        return;
    };
    let formatted = format_http_date(t);
    assert_eq!(parse_http_date(&formatted), Some(t), "round trip");
    let trimmed = text.trim();
    if trimmed.len() == 29 && trimmed.ends_with(" GMT") && trimmed.as_bytes()[3] == b',' {
        assert_eq!(formatted, trimmed, "an IMF-fixdate is its own format");
    }
    if delta_seconds(text).is_none() {
        let expected = t.duration_since(at(NOW)).unwrap_or(Duration::ZERO);
        assert_eq!(retry, Some(expected), "Retry-After date");
    }
}

/// The bases a `Location` is resolved against (`data[0]` picks one).
const BASES: [&str; 4] = [
    "https://idp.example/a/b/jwks.json?v=1",
    "https://idp.example:8443/",
    "http://127.0.0.1:8080/keys",
    "https://[::1]/p/q",
];

/// A `Location` header (`data[1..]`) against one of four bases; panics if
/// the target breaks the rules a redirect's target must keep.
pub fn redirect(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(location) = std::str::from_utf8(rest) else {
        return;
    };
    let base = Target::parse(BASES[usize::from(pick) % BASES.len()]).expect("base");
    let Ok(to) = base.join(location) else {
        return;
    };
    // A target is a stable, absolute http(s) URL without fragment or
    // credentials: parsing what it prints gives it back.
    assert_eq!(
        Target::parse(to.as_str()).as_ref(),
        Ok(&to),
        "unstable target"
    );
    let shown = to.to_string();
    assert!(!shown.contains('?'), "a query reached the display form");
    assert!(shown.starts_with(&to.origin().to_string()));
    // A path-absolute reference stays on the base's origin (the URL
    // standard drops tabs and newlines, and reads `\` as `/`).
    let cleaned: String = location
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c <= ' ');
    let mut chars = cleaned.chars();
    if chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\')) {
        assert!(
            to.same_origin(&base),
            "a path-absolute Location left the origin"
        );
    }
    // An absolute URL is taken as it is, minus its fragment; except that
    // one with the base's scheme and no `//` (`http:h//x`) is relative to
    // the base, as RFC 3986 §5.2.2 allows and the URL standard requires:
    // then it stays on the base's origin.
    if let Ok(mut absolute) = url::Url::parse(location.trim()) {
        absolute.set_fragment(None);
        let base_scheme = if base.is_https() { "https" } else { "http" };
        let same_scheme = absolute.scheme() == base_scheme;
        assert!(
            to.as_str() == absolute.as_str() || (same_scheme && to.same_origin(&base)),
            "absolute Location {absolute} rewritten to {}",
            to.as_str()
        );
    }
}

/// A discovery document, checked for the issuer `https://idp.example`;
/// panics if an accepted document does not name it and a same-origin
/// https `jwks_uri`, as plain serde_json reads it too.
pub fn discovery(data: &[u8]) {
    const ISSUER: &str = "https://idp.example";
    let issuer = Target::parse(ISSUER).expect("issuer");
    let https_only = |url: &str| {
        let target = Target::parse(url)?;
        if target.is_https() {
            Ok(target)
        } else {
            Err("https only".to_owned())
        }
    };
    let strict = check_document(data, ISSUER, &issuer, false, https_only);
    let cross = check_document(data, ISSUER, &issuer, true, https_only);
    if let Ok(target) = &strict {
        assert_eq!(cross.as_ref(), Ok(target), "cross-origin allowed less");
        assert!(
            target.same_origin(&issuer),
            "jwks_uri off the issuer's origin"
        );
    }
    let Ok(target) = cross else {
        return;
    };
    assert!(target.is_https());
    // Another JSON reader (serde_json keeps the last of repeated members)
    // sees the same issuer and jwks_uri: no parser differential.
    let plain: Value = serde_json::from_slice(data).expect("accepted JSON is JSON");
    assert_eq!(plain["issuer"].as_str(), Some(ISSUER));
    let uri = plain["jwks_uri"].as_str().expect("jwks_uri");
    assert_eq!(Target::parse(uri).as_ref(), Ok(&target));
}
