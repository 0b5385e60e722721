//! Taking the token out of an `Authorization: Bearer …` header value.

use super::error::VerifyError;

/// The token in an `Authorization` header value of the form
/// `Bearer <token>` (RFC 6750 §2.1).
///
/// - The scheme is matched case-insensitively (`bearer`, `BEARER`).
/// - Exactly one space separates scheme and token; nothing may follow it.
/// - The token must be a `b64token`: letters, digits, `-._~+/`, then
///   optional trailing `=`. A compact JWS always is.
///
/// Anything else is [`VerifyError::NotBearer`]: another scheme, a missing or
/// empty token, extra spaces, tabs, commas or a second token.
///
/// ```
/// use jwks_sync::{bearer_token, VerifyError};
///
/// assert_eq!(bearer_token("Bearer eyJhbGciOi.eyJzdWIiOi.c2ln")?, "eyJhbGciOi.eyJzdWIiOi.c2ln");
/// assert_eq!(bearer_token("bearer abc")?, "abc");
/// assert_eq!(bearer_token("Basic YWxhZGRpbjpvcGVuc2VzYW1l"), Err(VerifyError::NotBearer));
/// assert_eq!(bearer_token("Bearer a b"), Err(VerifyError::NotBearer));
/// # Ok::<(), VerifyError>(())
/// ```
pub fn bearer_token(header_value: &str) -> Result<&str, VerifyError> {
    let (scheme, token) = header_value.split_once(' ').ok_or(VerifyError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !is_b64token(token) {
        return Err(VerifyError::NotBearer);
    }
    Ok(token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}
