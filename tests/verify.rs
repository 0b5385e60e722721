//! Token verification: the happy paths, one test per claim and key rule,
//! the no-kid policy, unknown-kid refreshes and key-set failures.

mod verify_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwks_sync::testing::jwks_json;
use jwks_sync::{
    bearer_token, Algorithm, AlgorithmRejection, AlgorithmSet, Clock, Error, KeyType, ManualClock,
    NoKidPolicy, VerifyError,
};
use serde::Deserialize;
use serde_json::{json, Value};
use verify_support::*;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    scope: String,
}

#[test]
fn every_supported_algorithm_verifies_with_its_own_key() {
    let (_, _, verifier) = fixture();
    for key in keys().published() {
        let token = token(key, &good_claims());
        let verified = verifier
            .verify::<Claims>(&token)
            .unwrap_or_else(|e| panic!("{:?}: {e}", key.alg()));
        assert_eq!(verified.claims.sub, "alice");
        assert_eq!(verified.claims.scope, "orders:read");
        assert_eq!(verified.header.alg(), key.alg().algorithm());
        assert_eq!(verified.header.kid(), Some(key.kid()));
        assert_eq!(verified.header.typ(), Some("JWT"));
    }
}

#[test]
fn verification_is_one_lookup_through_the_cache() {
    let (source, cache, verifier) = fixture();
    let token = token(&keys().es256, &good_claims());
    let before = cache.status();
    for _ in 0..10 {
        verifier.verify::<Value>(&token).expect("valid token");
    }
    let after = cache.status();
    assert_eq!(after.hits - before.hits, 10);
    assert_eq!(after.misses, before.misses);
    assert_eq!(source.fetches(), 1);
}

#[test]
fn a_signature_by_another_key_under_a_published_kid_is_rejected() {
    let (_, _, verifier) = fixture();
    let k = keys();
    for rogue in [&k.rogue_rs256, &k.rogue_es256] {
        // Same kid, same alg, different key.
        let token = token(rogue, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::BadSignature
        );
    }
}

#[test]
fn a_tampered_payload_is_rejected() {
    let (_, _, verifier) = fixture();
    for key in keys().published() {
        let token = token(key, &good_claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = b64(claims_with(json!({"sub": "mallory"}))
            .to_string()
            .as_bytes());
        let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
        assert_eq!(
            verifier.verify::<Value>(&tampered).unwrap_err(),
            VerifyError::BadSignature,
            "{:?}",
            key.alg()
        );
    }
}

#[test]
fn expired_tokens_are_rejected_after_the_leeway() {
    let (_, cache, verifier) = fixture();
    let key = &keys().es256;
    let long_gone = token(key, &claims_with(json!({"exp": now() - 3600})));
    assert_eq!(
        verifier.verify::<Value>(&long_gone).unwrap_err(),
        VerifyError::Expired
    );
    // Ten seconds past exp: inside the default 60 s leeway, outside a zero one.
    let just_gone = token(key, &claims_with(json!({"exp": now() - 10})));
    assert!(verifier.verify::<Value>(&just_gone).is_ok());
    let strict = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(
        strict.verify::<Value>(&just_gone).unwrap_err(),
        VerifyError::Expired
    );
}

#[test]
fn tokens_before_nbf_are_rejected() {
    let (_, _, verifier) = fixture();
    let key = &keys().eddsa;
    let early = token(key, &claims_with(json!({"nbf": now() + 3600})));
    assert_eq!(
        verifier.verify::<Value>(&early).unwrap_err(),
        VerifyError::NotYetValid
    );
    let skewed = token(key, &claims_with(json!({"nbf": now() + 10})));
    assert!(verifier.verify::<Value>(&skewed).is_ok());
}

#[test]
fn a_foreign_issuer_is_rejected_and_iss_is_required_once_configured() {
    let (_, _, verifier) = fixture();
    let key = &keys().rs256;
    let foreign = token(key, &claims_with(json!({"iss": "https://evil.example"})));
    assert_eq!(
        verifier.verify::<Value>(&foreign).unwrap_err(),
        VerifyError::WrongIssuer
    );
    let missing = token(key, &claims_with(json!({"iss": null})));
    assert_eq!(
        verifier.verify::<Value>(&missing).unwrap_err(),
        VerifyError::MissingClaim("iss".into())
    );
}

#[test]
fn several_issuers_may_be_accepted() {
    let (_, cache) = cache_over(&[&keys().es256]);
    let verifier = cache
        .verifier()
        .issuer(ISS)
        .issuer("https://other.example")
        .audience(AUD)
        .build()
        .unwrap();
    let other = token(
        &keys().es256,
        &claims_with(json!({"iss": "https://other.example"})),
    );
    assert!(verifier.verify::<Value>(&other).is_ok());
}

#[test]
fn audience_rules() {
    let (_, cache, verifier) = fixture();
    let key = &keys().es384;
    let other = token(key, &claims_with(json!({"aud": "billing-api"})));
    assert_eq!(
        verifier.verify::<Value>(&other).unwrap_err(),
        VerifyError::WrongAudience
    );
    let several = token(key, &claims_with(json!({"aud": ["billing-api", AUD]})));
    assert!(verifier.verify::<Value>(&several).is_ok());
    let missing = token(key, &claims_with(json!({"aud": null})));
    assert_eq!(
        verifier.verify::<Value>(&missing).unwrap_err(),
        VerifyError::MissingClaim("aud".into())
    );

    // No audience configured: a token addressed to someone is not for us.
    let unconfigured = cache.verifier().build().unwrap();
    assert_eq!(
        unconfigured.verify::<Value>(&other).unwrap_err(),
        VerifyError::WrongAudience
    );
    let anyone = cache
        .verifier()
        .danger_accept_any_audience()
        .build()
        .unwrap();
    assert!(anyone.verify::<Value>(&other).is_ok());
}

#[test]
fn exp_is_required_by_default_and_required_claims_are_configurable() {
    let (_, cache, verifier) = fixture();
    let key = &keys().ps256;
    let no_exp = token(key, &claims_with(json!({"exp": null})));
    assert_eq!(
        verifier.verify::<Value>(&no_exp).unwrap_err(),
        VerifyError::MissingClaim("exp".into())
    );
    let needs_tenant = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .required_claims(["exp", "tenant"])
        .build()
        .unwrap();
    let token_without = token(key, &good_claims());
    assert_eq!(
        needs_tenant.verify::<Value>(&token_without).unwrap_err(),
        VerifyError::MissingClaim("tenant".into())
    );
    let token_with = token(key, &claims_with(json!({"tenant": "acme"})));
    assert!(needs_tenant.verify::<Value>(&token_with).is_ok());
}

#[test]
fn type_confused_claims_are_rejected() {
    let (_, _, verifier) = fixture();
    let key = &keys().es256;
    let in_an_hour = (now() + 3600).to_string();
    for (changes, claim) in [
        (json!({"exp": in_an_hour}), "exp"),
        (json!({"exp": [now() + 3600]}), "exp"),
        (json!({"nbf": "0"}), "nbf"),
        (json!({"iat": true}), "iat"),
        (json!({"iss": [ISS]}), "iss"),
        (json!({"sub": 42}), "sub"),
        (json!({"aud": {"aud": AUD}}), "aud"),
        (json!({"aud": [AUD, 1]}), "aud"),
    ] {
        let token = token(key, &claims_with(changes.clone()));
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::BadClaimType(claim),
            "{changes}"
        );
    }
}

#[test]
fn claims_that_do_not_fit_the_callers_type_are_reported_without_their_values() {
    let (_, _, verifier) = fixture();
    let token = token(
        &keys().es256,
        &claims_with(json!({"scope": ["secret-scope-value"]})),
    );
    let err = verifier.verify::<Claims>(&token).unwrap_err();
    assert!(
        matches!(err, VerifyError::ClaimsType { line: 1, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("secret-scope-value"), "{err}");
}

#[test]
fn the_algorithm_set_limits_what_is_accepted() {
    let (_, cache) = cache_over(&keys().published());
    let ec_only = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .algorithms([Algorithm::ES256, Algorithm::ES384].into_iter().collect())
        .build()
        .unwrap();
    assert!(ec_only
        .verify::<Value>(&token(&keys().es256, &good_claims()))
        .is_ok());
    assert_eq!(
        ec_only
            .verify::<Value>(&token(&keys().rs256, &good_claims()))
            .unwrap_err(),
        VerifyError::DisallowedAlgorithm(AlgorithmRejection::NotAllowed(Algorithm::RS256))
    );
    let err = cache
        .verifier()
        .algorithms(AlgorithmSet::empty())
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn a_token_without_kid_uses_the_only_key_bound_to_its_alg() {
    let k = keys();
    // One ES256 key among keys of other types.
    let (_, cache) = cache_over(&[&k.es256, &k.rs256, &k.eddsa]);
    let verifier = verifier(&cache);
    let no_kid = sign(&k.es256, &json!({"alg": "ES256"}), &good_claims());
    let verified = verifier.verify::<Value>(&no_kid).expect("single ES256 key");
    assert_eq!(verified.header.kid(), None);
    // A no-kid token signed by someone else still has to verify.
    let rogue = sign(&k.rogue_es256, &json!({"alg": "ES256"}), &good_claims());
    assert_eq!(
        verifier.verify::<Value>(&rogue).unwrap_err(),
        VerifyError::BadSignature
    );

    let strict = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .no_kid(NoKidPolicy::Reject)
        .build()
        .unwrap();
    assert_eq!(
        strict.verify::<Value>(&no_kid).unwrap_err(),
        VerifyError::NoKid { candidates: 0 }
    );
}

#[test]
fn a_token_without_kid_is_rejected_when_several_keys_could_verify_it() {
    let k = keys();
    let (_, cache) = cache_over(&[&k.es256, &k.es256_b]);
    let verifier = verifier(&cache);
    let no_kid = sign(&k.es256, &json!({"alg": "ES256"}), &good_claims());
    assert_eq!(
        verifier.verify::<Value>(&no_kid).unwrap_err(),
        VerifyError::NoKid { candidates: 2 }
    );
    let no_match = sign(&k.es384, &json!({"alg": "ES384"}), &good_claims());
    assert_eq!(
        verifier.verify::<Value>(&no_match).unwrap_err(),
        VerifyError::NoKid { candidates: 0 }
    );
}

#[test]
fn an_unknown_kid_that_passes_the_cheap_checks_asks_for_one_refresh() {
    let k = keys();
    let (source, cache) = cache_with(&[&k.es256], |b| b.unknown_kid_cooldown(Duration::ZERO));
    let verifier = verifier(&cache);

    // The identity provider rotates; a caller that does not wait fails once
    // and the refresh it asked for serves its retry.
    source.set_document(jwks_json(&[&k.es256, &k.es256_b]));
    let rotated = token(&k.es256_b, &good_claims());
    assert_eq!(
        verifier.verify::<Value>(&rotated).unwrap_err(),
        VerifyError::UnknownKey
    );
    assert!(eventually(PATIENCE, || verifier
        .verify::<Value>(&rotated)
        .is_ok()));
    assert_eq!(cache.status().refreshes.unknown_kid, 1);

    // A caller that waits gets the next key on its first try.
    source.set_document(jwks_json(&[&k.es256, &k.es256_b, &k.es384]));
    let next = token(&k.es384, &good_claims());
    let verified = verifier
        .verify_or_wait::<Value>(&next, PATIENCE)
        .expect("refresh brings the new key");
    assert_eq!(verified.header.kid(), Some("es384"));
    assert_eq!(cache.status().refreshes.unknown_kid, 2);
    assert_eq!(source.fetches(), 3);
}

#[test]
fn within_the_cooldown_an_unknown_kid_fails_fast_without_a_fetch() {
    let k = keys();
    // Default cooldown (30 s): the first fetch just happened.
    let (source, cache) = cache_over(&[&k.es256]);
    let verifier = verifier(&cache);
    let rotated = token(&k.es256_b, &good_claims());
    let started = std::time::Instant::now();
    assert_eq!(
        verifier
            .verify_or_wait::<Value>(&rotated, Duration::from_secs(5))
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(source.fetches(), 1);
}

#[test]
fn a_key_set_that_never_loaded_is_reported_as_unavailable() {
    let k = keys();
    let source = jwks_sync::testing::MemorySource::new(jwks_json(&[&k.es256]));
    source.fail();
    let cache = jwks_sync::JwksCache::from_fetcher(source.clone())
        .jitter(false)
        .build()
        .unwrap();
    let verifier = verifier(&cache);
    let good = token(&k.es256, &good_claims());
    assert!(eventually(PATIENCE, || source.fetches() >= 1));
    let err = verifier
        .verify_or_wait::<Value>(&good, Duration::from_millis(200))
        .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::KeySet(Error::NotReady { .. } | Error::Timeout)
        ),
        "{err:?}"
    );
    let err = verifier.verify::<Value>(&good).unwrap_err();
    assert!(
        matches!(err, VerifyError::KeySet(Error::NotReady { .. })),
        "{err:?}"
    );
    let no_kid = sign(&k.es256, &json!({"alg": "ES256"}), &good_claims());
    let err = verifier.verify::<Value>(&no_kid).unwrap_err();
    assert!(
        matches!(err, VerifyError::KeySet(Error::NotReady { .. })),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("key set unavailable"), "{err}");
}

#[test]
fn an_expired_key_set_fails_closed() {
    let k = keys();
    // ManualClock is not Clone; share it through a small Clock of our own.
    struct Shared(Arc<ManualClock>);
    impl Clock for Shared {
        fn now(&self) -> Instant {
            self.0.now()
        }
    }
    let clock = Arc::new(ManualClock::new());
    let (source, cache) = cache_with(&[&k.es256], |b| {
        b.clock(Shared(Arc::clone(&clock)))
            .interval(Duration::from_secs(60))
            .min_refresh_interval(Duration::from_secs(1))
            .stale_while_error(Duration::from_secs(60))
            .background_refresh(false)
    });
    let verifier = verifier(&cache);
    let good = token(&k.es256, &good_claims());
    assert!(verifier.verify::<Value>(&good).is_ok());
    source.fail();
    clock.advance(Duration::from_secs(3600));
    // The refresher learns the time when it wakes; a failed manual refresh wakes it.
    let _ = cache.refresh_now();
    let err = verifier.verify::<Value>(&good).unwrap_err();
    assert!(
        matches!(err, VerifyError::KeySet(Error::Expired { .. })),
        "{err:?}"
    );
    let no_kid = sign(&k.es256, &json!({"alg": "ES256"}), &good_claims());
    let err = verifier.verify::<Value>(&no_kid).unwrap_err();
    assert!(
        matches!(err, VerifyError::KeySet(Error::Expired { .. })),
        "{err:?}"
    );
}

#[test]
fn malformed_tokens_name_the_broken_part() {
    let (_, _, verifier) = fixture();
    let key = &keys().es256;
    let good = token(key, &good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let (h, c, s) = (parts[0], parts[1], parts[2]);
    for (bad, what) in [
        (String::new(), "not three base64url parts separated by dots"),
        (
            format!("{h}.{c}"),
            "not three base64url parts separated by dots",
        ),
        (
            format!("{h}.{c}.{s}.{s}"),
            "not three base64url parts separated by dots",
        ),
        (format!("{h}=.{c}.{s}"), "header is not base64url"),
        (format!("{h}.{c}.{s}="), "signature is not base64url"),
        (format!("{h}.{c}+.{s}"), "claims are not base64url"),
        (
            format!("{}.{c}.{s}", b64(b"[1,2]")),
            "header is not a JSON object",
        ),
        (
            format!("{h}.{}.{s}", b64(b"{\"exp\":")),
            "claims are not a JSON object",
        ),
        (
            format!("{}.{c}.{s}", b64(br#"{"kid":"es256"}"#)),
            "header has no alg",
        ),
        (
            format!("{}.{c}.{s}", b64(br#"{"alg":["ES256"]}"#)),
            "header alg is not a string",
        ),
        (
            format!("{}.{c}.{s}", b64(br#"{"alg":"ES256","kid":7}"#)),
            "header kid is not a string",
        ),
    ] {
        assert_eq!(
            verifier.verify::<Value>(&bad).unwrap_err(),
            VerifyError::Malformed(what),
            "{bad}"
        );
    }
}

#[test]
fn an_unbounded_wait_is_accepted() {
    let (_, _, verifier) = fixture();
    let good = token(&keys().es256, &good_claims());
    assert!(verifier
        .verify_or_wait::<Value>(&good, Duration::MAX)
        .is_ok());
}

#[test]
fn a_verifier_is_shared_across_threads() {
    let (_, _, verifier) = fixture();
    let tokens: Vec<String> = keys()
        .published()
        .iter()
        .map(|k| token(k, &good_claims()))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for token in &tokens {
                    verifier.verify::<Value>(token).expect("valid");
                }
            });
        }
    });
}

#[test]
fn bearer_header_values() {
    let good = token(&keys().es256, &good_claims());
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(bearer_token(&format!("{scheme} {good}")), Ok(good.as_str()));
    }
    assert_eq!(bearer_token("Bearer abc+/~_-.=="), Ok("abc+/~_-.=="));
    for bad in [
        "",
        "Bearer",
        "Bearer ",
        "Bearer  abc",
        "Bearer abc ",
        " Bearer abc",
        "Bearer\tabc",
        "Bearer abc def",
        "Bearer abc,def",
        "Bearer ===",
        "Bearer a=b",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearerabc",
        "Token abc",
        "Bearer abc\r\nX: y",
    ] {
        assert_eq!(bearer_token(bad), Err(VerifyError::NotBearer), "{bad:?}");
    }
}

#[test]
fn error_messages_are_lowercase_and_carry_no_token_or_kid() {
    let (_, _, verifier) = fixture();
    let k = keys();
    let kid = "kid-that-must-not-be-echoed";
    let unknown = sign(
        &k.es256,
        &json!({"alg": "ES256", "kid": kid}),
        &good_claims(),
    );
    let cases = [
        unknown.clone(),
        token(&k.rogue_es256, &good_claims()),
        token(&k.es256, &claims_with(json!({"exp": now() - 3600}))),
        token(
            &k.es256,
            &claims_with(json!({"iss": "https://evil.example"})),
        ),
        "x".repeat(20_000),
        format!("{unknown}.x"),
    ];
    for token in &cases {
        let err = verifier.verify::<Value>(token).unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains(kid), "{msg}");
        assert!(!msg.contains(&token[..20.min(token.len())]), "{msg}");
        assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
    }
    let mismatch = VerifyError::KeyAlgorithmMismatch {
        alg: Algorithm::RS256,
        key: KeyType::EcP256,
    };
    assert_eq!(
        mismatch.to_string(),
        "the EC P-256 key selected by kid is not bound to alg RS256"
    );
}
