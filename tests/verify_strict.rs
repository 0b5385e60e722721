//! Strict claims and headers: NumericDate bounds, the optional `iat` rules,
//! duplicate members at any depth, and several keys under one kid.

mod verify_support;

use std::time::Duration;

use jwks_sync::testing::{KeyAlg, TestKey};
use jwks_sync::VerifyError;
use serde_json::{json, Value};
use verify_support::*;

#[test]
fn dates_above_i64_max_seconds_are_rejected_not_read_as_never() {
    let (_, _, verifier) = fixture();
    let key = &keys().es256;
    let header = header_for(key).to_string();
    for date in [
        "9223372036854775808",
        "18446744073709551615",
        "1e20",
        "1e300",
        "-1",
    ] {
        for name in ["exp", "nbf", "iat"] {
            let mut claims = good_claims();
            claims.as_object_mut().expect("object").remove(name);
            let base = claims.to_string();
            let text = format!(r#"{},"{name}":{date}}}"#, &base[..base.len() - 1]);
            let token = sign_bytes(key, header.as_bytes(), text.as_bytes());
            assert_eq!(
                verifier.verify::<Value>(&token).unwrap_err(),
                VerifyError::BadClaimType(name),
                "{name}: {date}"
            );
        }
    }
    // i64::MAX itself is a (far-future) date like any other.
    let far = token(key, &claims_with(json!({"exp": i64::MAX})));
    assert!(verifier.verify::<Value>(&far).is_ok());
}

#[test]
fn max_token_age_rejects_old_tokens_and_requires_iat() {
    let (_, cache, _) = fixture();
    let key = &keys().es256;
    let verifier = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .max_token_age(Duration::from_secs(300))
        .build()
        .expect("valid settings");
    let fresh = token(key, &claims_with(json!({"iat": now() - 10})));
    assert!(verifier.verify::<Value>(&fresh).is_ok());
    // 300 s of age and 60 s of leeway.
    let old = token(key, &claims_with(json!({"iat": now() - 3600})));
    assert_eq!(
        verifier.verify::<Value>(&old).unwrap_err(),
        VerifyError::TooOld
    );
    let no_iat = token(key, &claims_with(json!({"iat": null})));
    assert_eq!(
        verifier.verify::<Value>(&no_iat).unwrap_err(),
        VerifyError::MissingClaim("iat".into())
    );
    // Off by default.
    assert!(verify_support::verifier(&cache)
        .verify::<Value>(&old)
        .is_ok());
    // Zero is refused by build().
    let zero = cache.verifier().max_token_age(Duration::ZERO).build();
    assert!(zero.unwrap_err().to_string().contains("max_token_age"));
}

#[test]
fn a_future_iat_is_rejected_beyond_the_leeway_when_asked() {
    let (_, cache, default) = fixture();
    let key = &keys().eddsa;
    let verifier = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .reject_future_iat(true)
        .build()
        .expect("valid settings");
    let ahead = token(key, &claims_with(json!({"iat": now() + 3600})));
    assert_eq!(
        verifier.verify::<Value>(&ahead).unwrap_err(),
        VerifyError::IssuedInFuture
    );
    // Inside the 60 s leeway.
    let skewed = token(key, &claims_with(json!({"iat": now() + 10})));
    assert!(verifier.verify::<Value>(&skewed).is_ok());
    // Off by default.
    assert!(default.verify::<Value>(&ahead).is_ok());
}

#[test]
fn a_repeated_member_anywhere_in_header_or_claims_rejects_the_token() {
    let (_, _, verifier) = fixture();
    let key = &keys().es256;
    let header = header_for(key).to_string();
    let claims = good_claims().to_string();
    let splice = |json: &str, extra: &str| format!("{},{extra}}}", &json[..json.len() - 1]);
    for extra in [
        r#""scope":"admin""#,
        r#""roles":["user"],"roles":["admin"]"#,
        r#""realm_access":{"roles":["user"],"roles":["admin"]}"#,
        r#""s\u0075b":"mallory""#,
    ] {
        let token = sign_bytes(key, header.as_bytes(), splice(&claims, extra).as_bytes());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::Malformed("claims repeat a member"),
            "{extra}"
        );
    }
    for extra in [
        r#""x-tenant":"a","x-tenant":"b""#,
        r#""typ":"at+jwt""#,
        r#""jwk":{"kty":"EC","kty":"RSA"}"#,
    ] {
        let token = sign_bytes(key, splice(&header, extra).as_bytes(), claims.as_bytes());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::Malformed("header repeats a member"),
            "{extra}"
        );
    }
    // The same token without the repeat verifies.
    let clean = sign_bytes(
        key,
        header.as_bytes(),
        splice(&claims, r#""x":{"a":1}"#).as_bytes(),
    );
    assert!(verifier.verify::<Value>(&clean).is_ok());
}

#[test]
fn every_key_under_a_shared_kid_is_a_candidate_for_its_alg() {
    let ec_first = key(KeyAlg::Es256, "shared");
    let rsa = key(KeyAlg::Rs256, "shared");
    let ec_second = key(KeyAlg::Es256, "shared");
    let (_, cache) = cache_over(&[&ec_first, &rsa, &ec_second]);
    let verifier = verify_support::verifier(&cache);
    assert_eq!(cache.snapshot().candidates("shared").count(), 3);
    // Each published key verifies its own tokens, not only the first one.
    for signer in [&ec_first, &rsa, &ec_second] {
        let token = token(signer, &good_claims());
        let verified = verifier
            .verify::<Value>(&token)
            .unwrap_or_else(|e| panic!("{:?}: {e}", signer.alg()));
        assert_eq!(verified.header.kid(), Some("shared"));
    }
    // An unpublished key under the kid: every ES256 candidate was tried.
    let rogue = key(KeyAlg::Es256, "shared");
    assert_eq!(
        verifier
            .verify::<Value>(&token(&rogue, &good_claims()))
            .unwrap_err(),
        VerifyError::BadSignature
    );
    // No candidate bound to the alg: the algorithm-confusion rule.
    let ed = key(KeyAlg::EdDsa, "shared");
    assert!(matches!(
        verifier
            .verify::<Value>(&token(&ed, &good_claims()))
            .unwrap_err(),
        VerifyError::KeyAlgorithmMismatch { .. }
    ));
    // with_key hands out the first; the rest follow it.
    let kinds = cache
        .with_key("shared", |k| {
            k.same_kid().map(|k| k.key_type()).collect::<Vec<_>>()
        })
        .expect("known kid");
    assert_eq!(kinds.len(), 3);
    assert_eq!(kinds[0], jwks_sync::KeyType::EcP256);
}

fn key(alg: KeyAlg, kid: &str) -> TestKey {
    TestKey::generate(alg, kid).expect("key generation")
}
