//! `jwks inspect <url|file>`: every entry of a key set with its verdict,
//! and for URLs the caching headers and the lifetime the cache would use.
//!
//! The verdicts come from the library ([`KeySet::audit`]); kty, alg, use
//! and size are read from the raw JSON, so skipped entries show them too.
//!
//! Exits 2 when no entry is usable (after printing them all), as `verify`
//! rejects such a set. `--json` carries every value whole (scripts match
//! kids); only the table clips long values and masks control characters.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwks_sync::{Error, KeySet, KeySetError};
use serde_json::{json, Value};

use super::args::{HttpArgs, RefreshArgs};
use super::exit::{Failure, Outcome};
use super::source::Source;
use super::text::{chain, human_duration, table};

/// One entry of the document, values as written (not clipped).
struct Row {
    index: usize,
    kid: String,
    kty: String,
    alg: String,
    usage: String,
    size: String,
    /// `None`: usable.
    skipped: Option<String>,
}

/// What the HTTP response said about caching (URLs only).
struct Caching {
    url: String,
    headers: Vec<(&'static str, String)>,
    header_lifetime: Option<Duration>,
    lifetime: Duration,
}

/// Runs the command.
pub(crate) fn run(
    parsed: &Source<'_>,
    json_out: bool,
    http: &HttpArgs,
    refresh: &RefreshArgs,
) -> Outcome {
    let source = &parsed.describe();
    let builder = parsed.builder(http, refresh)?;
    let (body, caching) = match parsed {
        Source::Url(_) | Source::Issuer(_) => {
            let seen = builder.inspect().map_err(|e| match e {
                Error::Config(msg) => Failure::usage(msg),
                other => Failure::no_keys(format!("could not fetch {source}: {}", chain(&other))),
            })?;
            let caching = Caching {
                url: seen.url,
                headers: seen.cache_headers,
                header_lifetime: seen.header_lifetime,
                lifetime: seen.lifetime,
            };
            (seen.body, Some(caching))
        }
        Source::File(path) => {
            let body = std::fs::read(path)
                .map_err(|e| Failure::no_keys(format!("could not read {}: {e}", path.display())))?;
            (body, None)
        }
    };
    let set = KeySet::audit(&body)
        .map_err(|e: KeySetError| Failure::no_keys(format!("{source}: {e}")))?;
    let rows = rows(&body, &set);
    if json_out {
        print_json(source, &rows, caching.as_ref());
    } else {
        print_table(source, &rows, caching.as_ref());
    }
    if rows.iter().all(|r| r.skipped.is_some()) {
        return Err(Failure::no_keys(format!(
            "{source}: {}",
            KeySetError::NoUsableKeys {
                skipped: rows.len()
            }
        )));
    }
    Ok(())
}

fn rows(body: &[u8], set: &KeySet) -> Vec<Row> {
    // `audit` succeeded, so the document is an object with a `keys` array.
    let doc: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let text = |name: &str| match entry.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => "-".to_owned(),
                Some(other) => other.to_string(),
            };
            let skipped = set
                .skipped()
                .iter()
                .find(|s| s.index == index)
                .map(|s| s.reason.to_string());
            Row {
                index,
                kid: text("kid"),
                kty: text("kty"),
                alg: text("alg"),
                usage: text("use"),
                size: size(entry),
                skipped,
            }
        })
        .collect()
}

/// Attacker-chosen text made safe for the terminal: control, bidi and
/// invisible characters escaped, long text cut (the library's one helper).
fn clip(text: &str) -> String {
    jwks_sync::printable(text).to_string()
}

/// The key size from the raw JWK: RSA modulus bits, the curve, or the
/// length of a symmetric key.
fn size(entry: &Value) -> String {
    let member = |name: &str| entry.get(name).and_then(Value::as_str);
    let bits = |name: &str| {
        member(name)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|bytes| {
                let bytes = bytes.strip_prefix(&[0][..]).unwrap_or(&bytes).to_vec();
                let lead = bytes.first().map_or(0, |b| b.leading_zeros() as usize);
                (bytes.len() * 8).saturating_sub(lead)
            })
    };
    match member("kty") {
        Some("RSA") => bits("n").map_or("-".to_owned(), |b| format!("{b} bits")),
        Some("EC") | Some("OKP") => member("crv").map_or("-".to_owned(), str::to_owned),
        Some("oct") => bits("k").map_or("-".to_owned(), |b| format!("{b} bits")),
        _ => "-".to_owned(),
    }
}

fn print_table(source: &str, rows: &[Row], caching: Option<&Caching>) {
    println!("source:   {}", caching.map_or(source, |c| c.url.as_str()));
    if let Some(c) = caching {
        if c.headers.is_empty() {
            println!("headers:  (no caching headers)");
        }
        for (i, (name, value)) in c.headers.iter().enumerate() {
            let label = if i == 0 { "headers:" } else { "" };
            println!("{label:<9} {name}: {}", clip_long(value));
        }
        let granted = c
            .header_lifetime
            .map_or("none, so --interval".to_owned(), human_duration);
        println!(
            "lifetime: {} (headers grant {granted}; clamped to --min-ttl/--max-ttl)",
            human_duration(c.lifetime)
        );
    }
    let usable = rows.iter().filter(|r| r.skipped.is_none()).count();
    println!("keys:     {usable} usable, {} skipped", rows.len() - usable);
    println!();
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.index.to_string(),
                clip(&r.kid),
                clip(&r.kty),
                clip(&r.alg),
                clip(&r.usage),
                clip(&r.size),
                r.skipped
                    .as_ref()
                    .map_or("usable".to_owned(), |why| format!("skipped: {why}")),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["#", "kid", "kty", "alg", "use", "size", "verdict"], &body)
    );
}

fn clip_long(value: &str) -> String {
    value
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn print_json(source: &str, rows: &[Row], caching: Option<&Caching>) {
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "index": r.index,
                "kid": r.kid,
                "kty": r.kty,
                "alg": r.alg,
                "use": r.usage,
                "size": r.size,
                "usable": r.skipped.is_none(),
                "skip_reason": r.skipped,
            })
        })
        .collect();
    let mut out = json!({ "source": source, "keys": keys });
    if let Some(c) = caching {
        out["url"] = json!(c.url);
        out["cache_headers"] = c
            .headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), json!(v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        out["header_lifetime_secs"] = json!(c.header_lifetime.map(|d| d.as_secs_f64()));
        out["lifetime_secs"] = json!(c.lifetime.as_secs_f64());
    }
    println!("{out:#}");
}
