//! End-to-end token verification through the cache, against bare
//! `jsonwebtoken::decode` with a pre-built key and against the raw aws-lc
//! signature check with a key parsed once, for RS256, ES256 and EdDSA.
//!
//! `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`
//!
//! Instruction counts, where wall time is noisy: with `VERIFY_COST=<iters>`
//! the binary runs `<iters>` raw aws-lc checks (`cost_raw`) and `<iters>`
//! verifier calls (`cost_verifier`; `cost_verifier_no_heap` with claims
//! that own no heap data) for the algorithm named by
//! `VERIFY_ALG` (`RS256`, `ES256` or `EdDSA`), after a warm-up, and exits. Under
//! `valgrind --tool=callgrind --toggle-collect='*cost_raw*' --toggle-collect='*cost_verifier*'`
//! and `callgrind_annotate --inclusive=yes`, each function's inclusive
//! count divided by `<iters>` is the cost of one call (key generation
//! and setup are not collected).

#[path = "../tests/verify_support/mod.rs"]
mod verify_support;

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, Criterion};
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

/// Claims that own no heap data: a verify allocates nothing
/// (tests/verify_alloc.rs).
#[derive(Debug, Deserialize)]
struct Times {
    exp: u64,
    iat: u64,
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
        group.bench_function("verifier_no_heap_claims", |b| {
            b.iter(|| {
                verifier
                    .verify::<Times>(black_box(&token))
                    .map(|v| v.claims.exp.max(v.claims.iat))
            })
        });
        group.finish();
    }
}

#[inline(never)]
fn cost_raw(parsed: &ParsedPublicKey, input: &[u8], signature: &[u8], iters: usize) -> usize {
    (0..iters)
        .filter(|_| {
            black_box(parsed)
                .verify_sig(black_box(input), black_box(signature))
                .is_ok()
        })
        .count()
}

#[inline(never)]
fn cost_verifier(verifier: &jwks_sync::Verifier, token: &str, iters: usize) -> usize {
    (0..iters)
        .filter(|_| verifier.verify::<Claims>(black_box(token)).is_ok())
        .count()
}

#[inline(never)]
fn cost_verifier_no_heap(verifier: &jwks_sync::Verifier, token: &str, iters: usize) -> usize {
    (0..iters)
        .filter(|_| verifier.verify::<Times>(black_box(token)).is_ok())
        .count()
}

/// The `VERIFY_COST` mode (see the module docs).
fn instruction_count_run(iters: usize) {
    let k = keys();
    let (_source, cache) = cache_over(&[&k.rs256, &k.es256, &k.eddsa]);
    let verifier = verifier(&cache);
    let only = std::env::var("VERIFY_ALG").unwrap_or_default();
    for key in [&k.rs256, &k.es256, &k.eddsa] {
        if format!("{:?}", key.alg().algorithm()) != only {
            continue;
        }
        let token = token(key, &good_claims());
        let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let (parsed, _) = prebuilt(key);
        // Warm both paths outside the collected functions.
        assert!(parsed
            .verify_sig(signing_input.as_bytes(), &signature)
            .is_ok());
        assert!(verifier.verify::<Claims>(&token).is_ok());
        assert_eq!(
            cost_raw(&parsed, signing_input.as_bytes(), &signature, iters),
            iters
        );
        assert_eq!(cost_verifier(&verifier, &token, iters), iters);
        assert_eq!(cost_verifier_no_heap(&verifier, &token, iters), iters);
    }
}

criterion_group!(benches, verify);

fn main() {
    if let Some(iters) = std::env::var("VERIFY_COST")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return instruction_count_run(iters);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
