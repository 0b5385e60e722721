use super::*;
use crate::error::{FetchError, FetchErrorKind, KeySetError};
use crate::jwk::KeyType;
use crate::verify::AlgorithmRejection;
use crate::Algorithm;
use std::time::Duration;

fn every_verify_error() -> Vec<VerifyError> {
    vec![
        VerifyError::NotBearer,
        VerifyError::TooLarge { limit: 8192 },
        VerifyError::Malformed("not three base64url parts separated by dots"),
        VerifyError::DisallowedAlgorithm(AlgorithmRejection::None),
        VerifyError::UnsupportedCritical,
        VerifyError::UnknownKey,
        VerifyError::NoKid { candidates: 2 },
        VerifyError::KeyAlgorithmMismatch {
            alg: Algorithm::RS256,
            key: KeyType::EcP256,
        },
        VerifyError::BadSignature,
        VerifyError::Expired,
        VerifyError::NotYetValid,
        VerifyError::WrongIssuer,
        VerifyError::WrongAudience,
        VerifyError::UnknownIssuer,
        VerifyError::TenantMismatch,
        VerifyError::KeyIssuerMismatch,
        VerifyError::MissingClaim("a\"b\\c".into()),
        VerifyError::BadClaimType("exp"),
        VerifyError::ClaimsType {
            claim: Some("scope".into()),
            missing: false,
            line: 1,
            column: 9,
        },
    ]
}

fn every_keyset_error() -> Vec<Error> {
    let fetch = FetchError::new(FetchErrorKind::Status(503), "\"down\"");
    vec![
        Error::NotReady { last_error: None },
        Error::Expired {
            since: Duration::from_secs(5),
            last_error: Some(Box::new(Error::Fetch(fetch.clone()))),
        },
        Error::Fetch(fetch),
        Error::KeySet(KeySetError::NoKeysArray),
        Error::Timeout,
        Error::Stopped,
    ]
}

#[test]
fn token_problems_are_401_invalid_token_and_a_bad_header_is_400() {
    for err in every_verify_error() {
        let challenge = err.challenge().expect("a challenge");
        if err == VerifyError::NotBearer {
            assert_eq!(err.http_status(), 400);
            assert_eq!(challenge.error(), Some("invalid_request"));
        } else {
            assert_eq!(err.http_status(), 401, "{err:?}");
            assert_eq!(challenge.error(), Some("invalid_token"), "{err:?}");
        }
    }
}

#[test]
fn unavailable_keys_are_503_without_a_challenge() {
    for inner in every_keyset_error() {
        assert_eq!(inner.http_status(), 503, "{inner:?}");
        let err = VerifyError::KeySet(inner.clone());
        assert_eq!(err.http_status(), 503, "{err:?}");
        assert_eq!(err.code(), inner.code());
        assert!(err.code().starts_with("ERR_JWKS_"), "{}", err.code());
        assert_eq!(err.www_authenticate("api"), None);
    }
    assert_eq!(Error::UnknownKid.http_status(), 401);
    assert_eq!(
        VerifyError::from(Error::UnknownKid).code(),
        "ERR_JWKS_NO_MATCHING_KEY"
    );
    assert_eq!(Error::Config("x".into()).http_status(), 500);
}

#[test]
fn codes_are_distinct_and_well_formed() {
    let mut codes: Vec<&str> = every_verify_error().iter().map(VerifyError::code).collect();
    codes.extend(every_keyset_error().iter().map(Error::code));
    codes.push(Error::Config(String::new()).code());
    for code in &codes {
        assert!(
            code.starts_with("ERR_") && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{code}"
        );
    }
    let n = codes.len();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), n, "duplicate codes");
    assert_eq!(VerifyError::Expired.code(), "ERR_JWT_EXPIRED");
}

#[test]
fn quotes_backslashes_and_controls_never_reach_the_header() {
    let err = VerifyError::MissingClaim("a\"b\\c\r\nX-Evil: 1".into());
    let header = err
        .www_authenticate("my \"realm\" \\ \u{e9}\n")
        .expect("401");
    assert!(!header.contains(['\r', '\n']), "{header}");
    assert!(header.is_ascii(), "{header}");
    assert!(
        header.starts_with(
            r#"Bearer realm="my \"realm\" \\ ??", error="invalid_token", error_description=""#
        ),
        "{header}"
    );
    let description = header
        .split_once("error_description=\"")
        .map(|(_, d)| d.trim_end_matches('"'))
        .expect("a description");
    assert!(!description.contains(['"', '\\']), "{description}");
    let long = BearerChallenge::new().description(&"x".repeat(1000));
    assert!(long.to_string().len() < MAX_DESCRIPTION + 50);
}

#[test]
fn insufficient_scope_names_the_scope() {
    let c = BearerChallenge::insufficient_scope("orders:read  a\"b");
    assert_eq!(c.error(), Some("insufficient_scope"));
    assert!(c.to_string().ends_with(r#"scope="orders:read a_b""#), "{c}");
    assert_eq!(BearerChallenge::new().to_string(), "Bearer");
    let role = BearerChallenge::insufficient_scope(" ").description("needs role admin");
    assert_eq!(
        role.to_string(),
        r#"Bearer error="insufficient_scope", error_description="needs role admin""#
    );
}
