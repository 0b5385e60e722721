//! [`VerifyError`]: which rule rejected a token.

use std::fmt;

use crate::algorithm::Algorithm;

use crate::error::Error;
use crate::jwk::KeyType;

/// Why a token was rejected: the first rule it broke, checked cheapest first.
///
/// `Clone`, small, and safe to log: messages name the rule and the header or claim involved, never
/// key material, claim values, the kid or the token itself (all attacker-chosen text).
///
/// For an HTTP answer use [`code`](Self::code) (a stable name), [`http_status`](Self::http_status)
/// (`401` for the token's problems, `400` for a malformed `Authorization` header, `503` for
/// [`VerifyError::KeySet`], the server's own trouble) and
/// [`www_authenticate`](Self::www_authenticate) (a valid RFC 6750 challenge); a request with no
/// Bearer token at all gets [`BearerChallenge::new`](crate::BearerChallenge::new).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The `Authorization` header value is not `Bearer <token>`
    /// ([`bearer_token`](crate::bearer_token)).
    NotBearer,
    /// The token is longer than
    /// [`VerifierBuilder::max_token_bytes`](crate::VerifierBuilder::max_token_bytes); nothing of it
    /// was decoded.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not a well-formed compact JWS; the text says which part is wrong.
    Malformed(&'static str),
    /// The header `alg` is refused before any key is looked up.
    DisallowedAlgorithm(AlgorithmRejection),
    /// The header has `crit`: it names extensions this verifier does not implement, so the token
    /// must be rejected (RFC 7515 §4.1.11).
    UnsupportedCritical,
    /// No key with the token's `kid` is in the key set (after the refresh that
    /// [`Verifier::verify_or_wait`](crate::Verifier::verify_or_wait) may wait for). The kid is not
    /// repeated here: it is attacker-chosen text.
    UnknownKey,
    /// The token has no `kid` and no key could be chosen: `candidates` keys allow its `alg` and
    /// exactly one is needed, or [`VerifierBuilder::no_kid`](crate::VerifierBuilder::no_kid) is
    /// [`NoKidPolicy::Reject`](crate::NoKidPolicy::Reject) (`candidates` is then 0).
    NoKid {
        /// Usable keys bound to the token's `alg`.
        candidates: usize,
    },
    /// The key selected by `kid` is not bound to the header's `alg` (its JWK `alg`, or its family
    /// and curve): the algorithm-confusion rule.
    KeyAlgorithmMismatch {
        /// The header's algorithm.
        alg: Algorithm,
        /// The selected key's type.
        key: KeyType,
    },
    /// The signature does not verify with the selected key.
    BadSignature,
    /// `exp` plus the leeway is past ([`VerifierBuilder::leeway`](crate::VerifierBuilder::leeway)).
    Expired,
    /// `nbf` minus the leeway is still ahead
    /// ([`VerifierBuilder::leeway`](crate::VerifierBuilder::leeway)).
    NotYetValid,
    /// `iat` lies in the future beyond the leeway; only with
    /// [`VerifierBuilder::reject_future_iat`](crate::VerifierBuilder::reject_future_iat).
    IssuedInFuture,
    /// `iat` is older than
    /// [`VerifierBuilder::max_token_age`](crate::VerifierBuilder::max_token_age) plus the leeway.
    TooOld,
    /// `iss` is not one of [`VerifierBuilder::issuer`](crate::VerifierBuilder::issuer).
    WrongIssuer,
    /// `iss` names no issuer of the [`IssuerVerifier`](crate::IssuerVerifier): neither one added
    /// with [`IssuerVerifierBuilder::issuer`](crate::IssuerVerifierBuilder::issuer) nor one that
    /// fits an [`issuer_template`](crate::IssuerVerifierBuilder::issuer_template). Rejected before
    /// any key lookup: no key set is read and no fetch is asked for.
    UnknownIssuer,
    /// `iss` fits an [`issuer_template`](crate::IssuerVerifierBuilder::issuer_template) only with
    /// a tenant other than the token's `tid` claim, or `tid` is not a tenant id (1 to 253 ASCII
    /// letters, digits, `-` and `.`: a GUID or a domain name). Rejected before any key lookup.
    TenantMismatch,
    /// The key that verified the signature carries an `issuer` member ([`Key::issuer`](crate::Key::issuer),
    /// as Entra publishes) and the token's `iss` is not that issuer with `{tenantid}` replaced by
    /// the token's `tid`: the key may not sign for the issuer the token claims
    /// ([`IssuerVerifier`](crate::IssuerVerifier)'s key-issuer binding).
    KeyIssuerMismatch,
    /// `aud` names none of [`VerifierBuilder::audience`](crate::VerifierBuilder::audience) (or the
    /// token has an `aud` and no audience is configured).
    WrongAudience,
    /// A claim listed in
    /// [`VerifierBuilder::required_claims`](crate::VerifierBuilder::required_claims) (or implied by
    /// `issuer` / `audience`) is absent or `null`.
    MissingClaim(Box<str>),
    /// A registered claim has the wrong JSON type: `exp`, `nbf`, `iat` must be NumericDates
    /// (non-negative numbers below 2^63 seconds: a larger date is refused, never read as "never
    /// expires"); `iss`, `sub` strings; `aud` a string or an array of strings.
    BadClaimType(&'static str),
    /// The claims passed every rule but do not deserialize into the caller's type. `claim` names
    /// the top-level claim that does not fit, when it can be told (the message then names it
    /// instead of a position); the position is in the decoded claims JSON.
    ClaimsType {
        /// The claim absent from the token (`missing`) or whose value has the wrong type or value
        /// (for a nested value, its top-level claim); cut to 64 characters, control characters
        /// replaced. `None` when no single claim is at fault (the claims are not an object).
        claim: Option<Box<str>>,
        /// Whether `claim` is absent rather than of the wrong type.
        missing: bool,
        /// 1-based line of the decoded claims where deserialization stopped.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The key set could not serve the lookup: not loaded yet, expired past
    /// [`Builder::stale_while_error`](crate::Builder::stale_while_error), the refresher stopped, or
    /// the wait timed out.
    KeySet(Error),
}

/// Why the header `alg` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlgorithmRejection {
    /// `none`, in any casing: unsigned tokens are never accepted.
    None,
    /// An HMAC algorithm: a remote key set never supplies a trusted shared secret, so HS* tokens
    /// are refused (the RS/HS confusion attack).
    Hmac(Algorithm),
    /// Not an algorithm this crate knows (names are case-sensitive).
    Unknown,
    /// Known, but not in [`VerifierBuilder::algorithms`](crate::VerifierBuilder::algorithms).
    NotAllowed(Algorithm),
}

impl fmt::Display for AlgorithmRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlgorithmRejection::None => f.write_str("alg \"none\" is never accepted"),
            AlgorithmRejection::Hmac(alg) => write!(
                f,
                "hmac alg {alg:?} is never accepted (a key set holds no shared secrets)"
            ),
            AlgorithmRejection::Unknown => f.write_str("alg is not a known algorithm name"),
            AlgorithmRejection::NotAllowed(alg) => {
                write!(f, "alg {alg:?} is not among the allowed algorithms")
            }
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::NotBearer => {
                f.write_str("authorization header is not \"Bearer\" and one token")
            }
            VerifyError::TooLarge { limit } => write!(f, "token is over the {limit}-byte limit"),
            VerifyError::Malformed(what) => write!(f, "malformed token: {what}"),
            VerifyError::DisallowedAlgorithm(why) => write!(f, "disallowed algorithm: {why}"),
            VerifyError::UnsupportedCritical => {
                f.write_str("token header marks extensions critical (crit) that are not supported")
            }
            VerifyError::UnknownKey => f.write_str("no key with the token's kid in the key set"),
            VerifyError::NoKid { candidates } => write!(
                f,
                "token has no kid and {candidates} keys allow its alg (exactly one is needed)"
            ),
            VerifyError::KeyAlgorithmMismatch { alg, key } => {
                write!(
                    f,
                    "the {key} key selected by kid is not bound to alg {alg:?}"
                )
            }
            VerifyError::BadSignature => f.write_str("signature does not verify"),
            VerifyError::Expired => f.write_str("token has expired (exp)"),
            VerifyError::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            VerifyError::IssuedInFuture => {
                f.write_str("token is issued in the future (iat) beyond the leeway")
            }
            VerifyError::TooOld => f.write_str("token is older than the maximum token age (iat)"),
            VerifyError::WrongIssuer => f.write_str("issuer (iss) is not accepted"),
            VerifyError::WrongAudience => f.write_str("audience (aud) is not accepted"),
            VerifyError::UnknownIssuer => f.write_str("issuer (iss) is not a configured issuer"),
            VerifyError::TenantMismatch => {
                f.write_str("issuer (iss) does not fit its issuer template with the token's tid")
            }
            VerifyError::KeyIssuerMismatch => {
                f.write_str("the key that verified the token is bound to another issuer (iss)")
            }
            VerifyError::MissingClaim(name) => write!(f, "required claim {name:?} is missing"),
            VerifyError::BadClaimType(name) => write!(f, "claim {name:?} has the wrong type"),
            VerifyError::ClaimsType {
                claim: Some(name),
                missing: true,
                ..
            } => write!(
                f,
                "claims do not fit the requested type: claim {name:?} is missing"
            ),
            VerifyError::ClaimsType {
                claim: Some(name),
                missing: false,
                ..
            } => write!(
                f,
                "claims do not fit the requested type: claim {name:?} has the wrong type or value"
            ),
            VerifyError::ClaimsType {
                claim: None,
                line,
                column,
                ..
            } => write!(
                f,
                "claims do not fit the requested type (line {line}, column {column})"
            ),
            // The cause is `source()`, not repeated here.
            VerifyError::KeySet(_) => f.write_str("key set unavailable"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::KeySet(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for VerifyError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownKid => VerifyError::UnknownKey,
            other => VerifyError::KeySet(other),
        }
    }
}
