//! End-to-end token verification through the cache, against bare
//! `jsonwebtoken::decode` with a pre-built key and against the raw aws-lc
//! signature check with a key parsed once, for RS256, ES256 and EdDSA.
//!
//! `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/verify_support/mod.rs"]
mod verify_support;

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{DecodingKey, Validation};
use jwks_sync::testing::{jsonwebtoken_algorithm, TestKey};
use serde::Deserialize;
use verify_support::*;

/// A typical access token's claims, as an application would type them.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    scope: String,
    exp: u64,
}

fn member(key: &TestKey, name: &str) -> Vec<u8> {
    let text = key.jwk()[name].as_str().unwrap_or_default();
    URL_SAFE_NO_PAD
        .decode(text)
        .expect("JWK member is base64url")
}

/// The baseline: aws-lc's own key, parsed once, and what `jsonwebtoken`
/// would be handed.
fn prebuilt(key: &TestKey) -> (ParsedPublicKey, DecodingKey) {
    let jwk = key.jwk();
    match jwk["kty"].as_str() {
        Some("RSA") => {
            let (n, e) = (member(key, "n"), member(key, "e"));
            let parsed = RsaPublicKeyComponents { n: &n, e: &e }
                .to_parsed_public_key(&sig::RSA_PKCS1_2048_8192_SHA256)
                .expect("RSA key");
            (parsed, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        Some("EC") => {
            let point = [vec![4], member(key, "x"), member(key, "y")].concat();
            let parsed =
                ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).expect("EC key");
            (parsed, DecodingKey::from_ec_der(&point))
        }
        _ => {
            let x = member(key, "x");
            let parsed = ParsedPublicKey::new(&sig::ED25519, &x).expect("Ed25519 key");
            (parsed, DecodingKey::from_ed_der(&x))
        }
    }
}

fn verify(c: &mut Criterion) {
    let k = keys();
    let (_source, cache) = cache_over(&[&k.rs256, &k.es256, &k.eddsa]);
    let verifier = verifier(&cache);
    for key in [&k.rs256, &k.es256, &k.eddsa] {
        let alg = key.alg().algorithm();
        let token = token(key, &good_claims());
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let (parsed, decoding) = prebuilt(key);
        let mut validation = Validation::new(jsonwebtoken_algorithm(alg));
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);

        // Same answers before timing anything.
        assert!(parsed
            .verify_sig(signing_input.as_bytes(), &signature)
            .is_ok());
        let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation);
        assert_eq!(decoded.expect("jsonwebtoken accepts").claims.sub, "alice");
        let verified = verifier.verify::<Claims>(&token).expect("verifier accepts");
        assert_eq!(verified.claims.scope, "orders:read");
        assert!(verified.claims.exp > 0);

        let mut group = c.benchmark_group(format!("verify/{alg:?}"));
        group.bench_function("aws_lc_raw_preparsed", |b| {
            b.iter(|| {
                black_box(&parsed)
                    .verify_sig(black_box(signing_input.as_bytes()), black_box(&signature))
                    .is_ok()
            })
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Claims>(black_box(&token), &decoding, &validation)
                    .map(|t| t.claims.exp)
            })
        });
        group.bench_function("verifier_through_cache", |b| {
            b.iter(|| {
                verifier
                    .verify::<Claims>(black_box(&token))
                    .map(|v| v.claims.exp)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, verify);
criterion_main!(benches);
