//! Fixed label values: every one is a `&'static str` chosen here, never text
//! from a document, a token or a URL, so a series count is bounded by these
//! tables times the number of caches.

use crate::error::{Error, FetchErrorKind};
use crate::event::RefreshOutcome;
use crate::jwk::SkipReason;
use crate::policy::RefreshCause;
use crate::verify::VerifyError;

/// `cause` of `jwks_fetches_total`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn cause(cause: RefreshCause) -> &'static str {
    match cause {
        RefreshCause::Initial => "initial",
        RefreshCause::Scheduled => "scheduled",
        RefreshCause::Usage => "usage",
        RefreshCause::UnknownKid => "unknown_kid",
        RefreshCause::Manual => "manual",
        RefreshCause::Due => "due",
        RefreshCause::Retry => "retry",
    }
}

/// `outcome` of `jwks_fetches_total`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn outcome(outcome: &RefreshOutcome) -> &'static str {
    match outcome {
        RefreshOutcome::Updated { .. } => "ok",
        RefreshOutcome::NotModified { .. } => "not_modified",
        RefreshOutcome::Failed { error, .. } => failure(error),
    }
}

/// The class of a failed fetch, also used in log lines.
pub(crate) fn failure(error: &Error) -> &'static str {
    match error {
        Error::Fetch(f) => match f.kind() {
            FetchErrorKind::Connect | FetchErrorKind::Timeout | FetchErrorKind::Io => {
                "transport_error"
            }
            FetchErrorKind::Tls => "tls",
            FetchErrorKind::Status(400..=499) => "http_4xx",
            FetchErrorKind::Status(500..=599) => "http_5xx",
            FetchErrorKind::Status(_) => "http_other",
            FetchErrorKind::TooLarge | FetchErrorKind::ContentType => "invalid_document",
            FetchErrorKind::Discovery => "discovery",
            FetchErrorKind::Redirect
            | FetchErrorKind::Url
            | FetchErrorKind::Panicked
            | FetchErrorKind::Other => "other",
        },
        Error::KeySet(_) => "invalid_document",
        _ => "other",
    }
}

/// `reason` of `jwks_keys_skipped_total`.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn skip(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Malformed(_) => "malformed",
        SkipReason::UnsupportedKeyType(_) => "unsupported_key_type",
        SkipReason::UnsupportedCurve(_) => "unsupported_curve",
        SkipReason::UnsupportedAlgorithm(_) => "unsupported_algorithm",
        SkipReason::NotForSignatures => "not_for_signatures",
        SkipReason::NoVerifyOperation => "no_verify_operation",
        SkipReason::Symmetric => "symmetric",
        SkipReason::PrivateKeyMaterial => "private_key_material",
        SkipReason::RsaModulusTooSmall(_) => "rsa_modulus_too_small",
        SkipReason::RsaModulusTooLarge(_) => "rsa_modulus_too_large",
        SkipReason::RsaBadExponent => "rsa_bad_exponent",
        SkipReason::BadCoordinateLength => "bad_coordinate_length",
        SkipReason::InvalidKey => "invalid_key",
        SkipReason::KidTooLong(_) => "kid_too_long",
        SkipReason::DuplicateKid => "duplicate_kid",
        SkipReason::TooManyKeys => "too_many_keys",
        SkipReason::RepeatedMember(_) => "repeated_member",
    }
}

/// `rule` of `jwks_tokens_rejected_total`, indexed by [`rule`].
pub(crate) const RULES: [&str; 22] = [
    "not_bearer",
    "too_large",
    "malformed",
    "disallowed_algorithm",
    "unsupported_critical",
    "unknown_key",
    "no_kid",
    "key_algorithm_mismatch",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "missing_claim",
    "bad_claim_type",
    "claims_type",
    "key_set",
    "issued_in_future",
    "too_old",
    "unknown_issuer",
    "tenant_mismatch",
    "key_issuer_mismatch",
];

/// The index in [`RULES`] of the rule `error` reports.
pub(crate) fn rule(error: &VerifyError) -> usize {
    match error {
        VerifyError::NotBearer => 0,
        VerifyError::TooLarge { .. } => 1,
        VerifyError::Malformed(_) => 2,
        VerifyError::DisallowedAlgorithm(_) => 3,
        VerifyError::UnsupportedCritical => 4,
        VerifyError::UnknownKey => 5,
        VerifyError::NoKid { .. } => 6,
        VerifyError::KeyAlgorithmMismatch { .. } => 7,
        VerifyError::BadSignature => 8,
        VerifyError::Expired => 9,
        VerifyError::NotYetValid => 10,
        VerifyError::WrongIssuer => 11,
        VerifyError::WrongAudience => 12,
        VerifyError::MissingClaim(_) => 13,
        VerifyError::BadClaimType(_) => 14,
        VerifyError::ClaimsType { .. } => 15,
        VerifyError::KeySet(_) => 16,
        VerifyError::IssuedInFuture => 17,
        VerifyError::TooOld => 18,
        VerifyError::UnknownIssuer => 19,
        VerifyError::TenantMismatch => 20,
        VerifyError::KeyIssuerMismatch => 21,
    }
}
