//! `jwks verify --jwks <url|file> <token|->`: the header and claims as JSON
//! on success; one line and exit 1 for a rejected token, exit 2 when the
//! keys could not be loaded.

use std::io::Read as _;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwks_sync::{bearer_token, VerifyError};
use serde_json::{json, Value};

use super::args::{HttpArgs, RefreshArgs};
use super::exit::{Failure, Outcome, REJECTED};
use super::source::Source;
use super::text::chain;

/// What the token must satisfy besides its signature.
pub(crate) struct Rules<'a> {
    /// Accepted `iss` values (none: not checked).
    pub(crate) issuers: &'a [String],
    /// Accepted `aud` values.
    pub(crate) audiences: &'a [String],
    /// Skip the `aud` check.
    pub(crate) any_aud: bool,
    /// Clock skew allowed.
    pub(crate) leeway: Duration,
}

/// Tokens read from stdin are capped here (the verifier's own cap is
/// smaller; this only bounds the read).
const MAX_STDIN: u64 = 1024 * 1024;

/// Runs the command. The refresh flags do not apply to a one-shot check:
/// the cache runs with the library's defaults.
pub(crate) fn run(
    source: &Source<'_>,
    token: &str,
    rules: &Rules<'_>,
    wait: Duration,
    http: &HttpArgs,
) -> Outcome {
    let deadline = Instant::now().checked_add(wait);
    let left = || {
        deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    };
    let token = read_token(token)?;
    let jwks = source.describe();
    let cache = source
        .builder(http, &RefreshArgs::default())?
        .build()
        .map_err(Failure::usage)?;
    // The library's wait: the refresher retries failed fetches (backing off,
    // honouring Retry-After) while this waits, up to --wait.
    cache
        .wait_ready(wait)
        .map_err(|e| Failure::no_keys(format!("could not load keys from {jwks}: {}", chain(&e))))?;
    let mut verifier = cache.verifier().leeway(rules.leeway);
    for iss in rules.issuers {
        verifier = verifier.issuer(iss.clone());
    }
    for aud in rules.audiences {
        verifier = verifier.audience(aud.clone());
    }
    if rules.any_aud {
        verifier = verifier.danger_accept_any_audience();
    }
    let verifier = verifier.build().map_err(Failure::usage)?;
    match verifier.verify_or_wait::<Value>(&token, left()) {
        Ok(verified) => {
            let out = json!({ "header": raw_header(&token), "claims": verified.claims });
            println!("{out:#}");
            Ok(())
        }
        Err(VerifyError::KeySet(e)) => Err(Failure::no_keys(format!(
            "could not use the keys from {jwks}: {}",
            chain(&e)
        ))),
        Err(e @ VerifyError::WrongAudience) if rules.audiences.is_empty() && !rules.any_aud => {
            Err(Failure::new(
                REJECTED,
                format!(
                    "token rejected: {e}: the token names an audience; pass --aud <AUDIENCE> \
                     with the audience this check is for, or --any-aud to skip the check"
                ),
            ))
        }
        Err(e @ VerifyError::WrongIssuer) => Err(Failure::new(
            REJECTED,
            format!(
                "token rejected: {e} (accepted with --iss: {})",
                rules.issuers.join(", ")
            ),
        )),
        Err(e) => Err(Failure::new(REJECTED, format!("token rejected: {e}"))),
    }
}

/// The token argument, or stdin for `-`; `Bearer ` is accepted and removed.
fn read_token(arg: &str) -> Result<String, Failure> {
    let text = if arg == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .take(MAX_STDIN)
            .read_to_string(&mut buf)
            .map_err(|e| Failure::usage(format!("could not read the token from stdin: {e}")))?;
        buf
    } else {
        arg.to_owned()
    };
    let text = text.trim();
    let token = bearer_token(text).unwrap_or(text);
    if token.is_empty() {
        return Err(Failure::usage("no token given"));
    }
    Ok(token.to_owned())
}

/// The verified token's header as the issuer wrote it (all members, not
/// only those the verifier reads).
fn raw_header(token: &str) -> Value {
    token
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}
