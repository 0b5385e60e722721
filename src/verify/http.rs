//! Errors as HTTP answers: a stable code, a status, and an RFC 6750
//! `WWW-Authenticate` challenge that is always a valid header value.
//!
//! The codes and statuses are tabled in [`VerifyError::code`].
//!
//! ## Challenges
//!
//! [`BearerChallenge`] renders `Bearer realm="…", error="…",
//! error_description="…", scope="…"` following the grammar of RFC 6750 §3
//! and the quoted-string rules of RFC 9110 §5.6.4: `realm` is escaped
//! (quoted-pairs), and `error_description` and `scope` are restricted to the
//! characters RFC 6750 allows in them (printable ASCII without `"` and
//! `\`; other characters are replaced), so a message with quotes or a hostile
//! realm never breaks the header.

use std::fmt;

use super::error::VerifyError;
use crate::error::Error;

/// RFC 6750 caps nothing, but a header should stay small: descriptions are
/// cut to this many characters.
const MAX_DESCRIPTION: usize = 200;

/// An RFC 6750 `WWW-Authenticate: Bearer …` challenge; its [`Display`](fmt::Display)
/// (and [`header_value`](Self::header_value)) is the header value.
///
/// - [`BearerChallenge::new`]: a request without credentials (no
///   `Authorization` header, or another scheme): `401`, no error code
///   (RFC 6750 §3.1).
/// - [`VerifyError::challenge`]: a rejected token (`401`, `invalid_token`) or
///   a malformed header (`400`, `invalid_request`).
/// - [`BearerChallenge::insufficient_scope`]: a valid token without the
///   scope a route needs (`403`).
///
/// ```
/// use jwks_sync::{BearerChallenge, VerifyError};
///
/// let challenge = BearerChallenge::new().realm("api");
/// assert_eq!(challenge.to_string(), r#"Bearer realm="api""#);
///
/// let err = VerifyError::MissingClaim("sub".into());
/// assert_eq!(
///     err.www_authenticate("api").as_deref(),
///     Some(r#"Bearer realm="api", error="invalid_token", error_description="required claim 'sub' is missing""#)
/// );
///
/// let forbidden = BearerChallenge::insufficient_scope("orders:write").realm("api");
/// assert_eq!(
///     forbidden.to_string(),
///     r#"Bearer realm="api", error="insufficient_scope", error_description="the token lacks the scope this resource needs", scope="orders:write""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BearerChallenge {
    realm: Option<String>,
    error: Option<&'static str>,
    description: Option<String>,
    scope: Option<String>,
}

impl BearerChallenge {
    /// A bare challenge, for a request that carried no Bearer credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `403` challenge: the token is valid but lacks `scope` (one or more
    /// space-separated scope tokens; characters RFC 6750 does not allow in a
    /// scope are replaced). An empty `scope` leaves the attribute out (for
    /// a missing role, say; set a [`description`](Self::description)).
    pub fn insufficient_scope(scope: &str) -> Self {
        Self {
            error: Some("insufficient_scope"),
            description: Some("the token lacks the scope this resource needs".to_owned()),
            scope: Some(scope.to_owned()),
            ..Self::default()
        }
    }

    /// Sets the `realm` (quoted and escaped when rendered).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = Some(realm.to_owned());
        self
    }

    /// Replaces the `error_description` (sanitised when rendered).
    pub fn description(mut self, description: &str) -> Self {
        self.description = Some(description.to_owned());
        self
    }

    /// The RFC 6750 `error` attribute, if any: `invalid_request`,
    /// `invalid_token` or `insufficient_scope`.
    pub fn error(&self) -> Option<&'static str> {
        self.error
    }

    /// The header value, as [`Display`](fmt::Display) writes it.
    pub fn header_value(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for BearerChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer")?;
        let mut sep = " ";
        if let Some(realm) = &self.realm {
            write!(f, "{sep}realm=\"")?;
            for c in realm.chars() {
                match c {
                    '"' | '\\' => write!(f, "\\{c}")?,
                    // qdtext and quoted-pair allow HTAB, SP, VCHAR and
                    // obs-text; only ASCII is written, other text is replaced.
                    ' ' | '\t' | '!'..='~' => write!(f, "{c}")?,
                    _ => f.write_str("?")?,
                }
            }
            f.write_str("\"")?;
            sep = ", ";
        }
        if let Some(error) = self.error {
            write!(f, "{sep}error=\"{error}\"")?;
            sep = ", ";
        }
        if let Some(description) = &self.description {
            write!(f, "{sep}error_description=\"")?;
            // RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E.
            for c in description.chars().take(MAX_DESCRIPTION) {
                let c = match c {
                    '"' => '\'',
                    '\\' => '/',
                    ' '..='~' => c,
                    _ => '?',
                };
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
            sep = ", ";
        }
        let scope = self
            .scope
            .as_deref()
            .filter(|s| !s.trim_matches(' ').is_empty());
        if let Some(scope) = scope {
            write!(f, "{sep}scope=\"")?;
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by SP.
            let mut first = true;
            for token in scope.split(' ').filter(|t| !t.is_empty()) {
                if !first {
                    f.write_str(" ")?;
                }
                first = false;
                for c in token.chars() {
                    let c = match c {
                        '!' | '#'..='[' | ']'..='~' => c,
                        _ => '_',
                    };
                    write!(f, "{c}")?;
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

impl VerifyError {
    /// A stable, machine-readable name for this error, such as
    /// `ERR_JWT_EXPIRED`. For [`VerifyError::KeySet`] it is the inner
    /// [`Error::code`]. The whole table, with [`http_status`](Self::http_status)
    /// and the RFC 6750 `error` of [`challenge`](Self::challenge):
    ///
    /// [`VerifyError::code`] and [`Error::code`] are stable, machine-readable
    /// names (in the style of jose's `ERR_JWT_EXPIRED`); log and match on them
    /// rather than on the messages, which may be reworded.
    ///
    /// | error | `code()` | `http_status()` | RFC 6750 `error` |
    /// |---|---|---|---|
    /// | [`VerifyError::NotBearer`] | `ERR_AUTHORIZATION_NOT_BEARER` | 400 | `invalid_request` |
    /// | [`VerifyError::TooLarge`] | `ERR_JWT_TOO_LARGE` | 401 | `invalid_token` |
    /// | [`VerifyError::Malformed`] | `ERR_JWT_MALFORMED` | 401 | `invalid_token` |
    /// | [`VerifyError::DisallowedAlgorithm`] | `ERR_JOSE_ALG_NOT_ALLOWED` | 401 | `invalid_token` |
    /// | [`VerifyError::UnsupportedCritical`] | `ERR_JOSE_CRIT_UNSUPPORTED` | 401 | `invalid_token` |
    /// | [`VerifyError::UnknownKey`] | `ERR_JWKS_NO_MATCHING_KEY` | 401 | `invalid_token` |
    /// | [`VerifyError::NoKid`] | `ERR_JWKS_NO_KID_MATCH` | 401 | `invalid_token` |
    /// | [`VerifyError::KeyAlgorithmMismatch`] | `ERR_JWK_ALG_MISMATCH` | 401 | `invalid_token` |
    /// | [`VerifyError::BadSignature`] | `ERR_JWS_SIGNATURE_VERIFICATION_FAILED` | 401 | `invalid_token` |
    /// | [`VerifyError::Expired`] | `ERR_JWT_EXPIRED` | 401 | `invalid_token` |
    /// | [`VerifyError::NotYetValid`] | `ERR_JWT_NOT_YET_VALID` | 401 | `invalid_token` |
    /// | [`VerifyError::IssuedInFuture`] | `ERR_JWT_ISSUED_IN_FUTURE` | 401 | `invalid_token` |
    /// | [`VerifyError::TooOld`] | `ERR_JWT_TOO_OLD` | 401 | `invalid_token` |
    /// | [`VerifyError::WrongIssuer`] | `ERR_JWT_ISSUER_NOT_ACCEPTED` | 401 | `invalid_token` |
    /// | [`VerifyError::WrongAudience`] | `ERR_JWT_AUDIENCE_NOT_ACCEPTED` | 401 | `invalid_token` |
    /// | [`VerifyError::UnknownIssuer`] | `ERR_JWT_ISSUER_UNKNOWN` | 401 | `invalid_token` |
    /// | [`VerifyError::TenantMismatch`] | `ERR_JWT_TENANT_MISMATCH` | 401 | `invalid_token` |
    /// | [`VerifyError::KeyIssuerMismatch`] | `ERR_JWK_ISSUER_MISMATCH` | 401 | `invalid_token` |
    /// | [`VerifyError::MissingClaim`] | `ERR_JWT_CLAIM_MISSING` | 401 | `invalid_token` |
    /// | [`VerifyError::BadClaimType`] | `ERR_JWT_CLAIM_TYPE` | 401 | `invalid_token` |
    /// | [`VerifyError::ClaimsType`] | `ERR_JWT_CLAIMS_DO_NOT_FIT` | 401 | `invalid_token` |
    /// | [`VerifyError::KeySet`]`(e)` | `e.code()`, below | `e.http_status()` | none (no challenge) |
    /// | [`Error::UnknownKid`] | `ERR_JWKS_NO_MATCHING_KEY` | 401 | `invalid_token` |
    /// | [`Error::NotReady`] | `ERR_JWKS_NOT_READY` | 503 | — |
    /// | [`Error::Expired`] | `ERR_JWKS_EXPIRED` | 503 | — |
    /// | [`Error::Fetch`] | `ERR_JWKS_FETCH_FAILED` | 503 | — |
    /// | [`Error::KeySet`] | `ERR_JWKS_INVALID` | 503 | — |
    /// | [`Error::Timeout`] | `ERR_JWKS_TIMEOUT` | 503 | — |
    /// | [`Error::Stopped`] | `ERR_JWKS_REFRESHER_STOPPED` | 503 | — |
    /// | [`Error::Config`] | `ERR_CONFIG` | 500 | — |
    /// | [`Error::OnRefresherThread`] | `ERR_JWKS_ON_REFRESHER_THREAD` | 500 | — |
    ///
    /// A `503` is the server's own trouble (its keys are unavailable), not the
    /// client's: no challenge is sent, and the client may retry.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::NotBearer => "ERR_AUTHORIZATION_NOT_BEARER",
            VerifyError::TooLarge { .. } => "ERR_JWT_TOO_LARGE",
            VerifyError::Malformed(_) => "ERR_JWT_MALFORMED",
            VerifyError::DisallowedAlgorithm(_) => "ERR_JOSE_ALG_NOT_ALLOWED",
            VerifyError::UnsupportedCritical => "ERR_JOSE_CRIT_UNSUPPORTED",
            VerifyError::UnknownKey => "ERR_JWKS_NO_MATCHING_KEY",
            VerifyError::NoKid { .. } => "ERR_JWKS_NO_KID_MATCH",
            VerifyError::KeyAlgorithmMismatch { .. } => "ERR_JWK_ALG_MISMATCH",
            VerifyError::BadSignature => "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
            VerifyError::Expired => "ERR_JWT_EXPIRED",
            VerifyError::NotYetValid => "ERR_JWT_NOT_YET_VALID",
            VerifyError::IssuedInFuture => "ERR_JWT_ISSUED_IN_FUTURE",
            VerifyError::TooOld => "ERR_JWT_TOO_OLD",
            VerifyError::WrongIssuer => "ERR_JWT_ISSUER_NOT_ACCEPTED",
            VerifyError::WrongAudience => "ERR_JWT_AUDIENCE_NOT_ACCEPTED",
            VerifyError::UnknownIssuer => "ERR_JWT_ISSUER_UNKNOWN",
            VerifyError::TenantMismatch => "ERR_JWT_TENANT_MISMATCH",
            VerifyError::KeyIssuerMismatch => "ERR_JWK_ISSUER_MISMATCH",
            VerifyError::MissingClaim(_) => "ERR_JWT_CLAIM_MISSING",
            VerifyError::BadClaimType(_) => "ERR_JWT_CLAIM_TYPE",
            VerifyError::ClaimsType { .. } => "ERR_JWT_CLAIMS_DO_NOT_FIT",
            VerifyError::KeySet(e) => e.code(),
        }
    }

    /// The HTTP status to answer with: `400` for a malformed
    /// `Authorization` header ([`VerifyError::NotBearer`], RFC 6750 §3.1
    /// `invalid_request`), `401` for every problem with the token itself,
    /// and for [`VerifyError::KeySet`] the inner [`Error::http_status`]
    /// (`503` when the keys are unavailable).
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::NotBearer => 400,
            VerifyError::KeySet(e) => e.http_status(),
            _ => 401,
        }
    }

    /// The RFC 6750 challenge for this error, without a realm: `error` is
    /// `invalid_request` (400) or `invalid_token` (401) and
    /// `error_description` is this error's message, sanitised. `None` for
    /// the server's own trouble (`503`/`500`), where no challenge belongs.
    pub fn challenge(&self) -> Option<BearerChallenge> {
        let error = match self.http_status() {
            400 => "invalid_request",
            401 => "invalid_token",
            _ => return None,
        };
        Some(BearerChallenge {
            realm: None,
            error: Some(error),
            description: Some(self.to_string()),
            scope: None,
        })
    }

    /// The `WWW-Authenticate` header value for this error with `realm`
    /// (see [`challenge`](Self::challenge)); `None` where no challenge
    /// belongs (`503`/`500`).
    pub fn www_authenticate(&self, realm: &str) -> Option<String> {
        self.challenge().map(|c| c.realm(realm).header_value())
    }
}

impl Error {
    /// A stable, machine-readable name for this error, such as
    /// `ERR_JWKS_NOT_READY`; the table is in [`VerifyError::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownKid => "ERR_JWKS_NO_MATCHING_KEY",
            Error::NotReady { .. } => "ERR_JWKS_NOT_READY",
            Error::Expired { .. } => "ERR_JWKS_EXPIRED",
            Error::Fetch(_) => "ERR_JWKS_FETCH_FAILED",
            Error::KeySet(_) => "ERR_JWKS_INVALID",
            Error::Timeout => "ERR_JWKS_TIMEOUT",
            Error::Stopped => "ERR_JWKS_REFRESHER_STOPPED",
            Error::Config(_) => "ERR_CONFIG",
            Error::OnRefresherThread => "ERR_JWKS_ON_REFRESHER_THREAD",
        }
    }

    /// The HTTP status a server answers with when a lookup fails this way:
    /// `401` for an unknown kid (the token's problem), `500` for a
    /// configuration error or a wait asked for from an `on_refresh` hook,
    /// and `503` whenever the keys are unavailable
    /// (not loaded yet, expired past the stale bound, refresher stopped,
    /// fetch failure, timed-out wait).
    pub fn http_status(&self) -> u16 {
        match self {
            Error::UnknownKid => 401,
            Error::Config(_) | Error::OnRefresherThread => 500,
            _ => 503,
        }
    }
}

#[cfg(test)]
mod tests;
