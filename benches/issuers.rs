//! Issuer routing: ES256 verification through one issuer's `Verifier`,
//! against the same token through an `IssuerVerifier` routing by `iss` among
//! 1 and 1,000 exact issuers and through an `{tenantid}` template, plus the
//! cost of rejecting an unknown issuer (no key lookup at all).
//!
//! `cargo bench --bench issuers -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::{IssuerVerifier, JwksCache};
use serde_json::{json, Value};

const ENTRA: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

fn issuers(c: &mut Criterion) {
    let key = TestKey::generate(KeyAlg::Es256, "k1")
        .expect("key")
        .with_issuer(ENTRA);
    let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&key])))
        .build()
        .expect("cache");
    cache.wait_ready(Duration::from_secs(10)).expect("ready");
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let iss = ENTRA.replace("{tenantid}", TENANT);
    let token = key
        .sign(&json!({"iss": iss, "tid": TENANT, "aud": "api", "sub": "alice", "exp": exp}))
        .expect("token");
    let stranger = key
        .sign(&json!({"iss": "https://evil.example", "aud": "api", "exp": exp}))
        .expect("token");

    let single = cache
        .verifier()
        .issuer(iss.clone())
        .audience("api")
        .build()
        .expect("verifier");
    let one = IssuerVerifier::builder()
        .issuer(iss.clone(), &cache, |v| v.audience("api"))
        .build()
        .expect("one issuer");
    let mut many = IssuerVerifier::builder();
    for i in 0..999 {
        many = many.issuer(format!("https://tenant-{i}.example"), &cache, |v| {
            v.audience("api")
        });
    }
    let many = many
        .issuer(iss.clone(), &cache, |v| v.audience("api"))
        .build()
        .expect("1000 issuers");
    let template = IssuerVerifier::builder()
        .issuer_template(ENTRA, &cache, |v| v.audience("api"))
        .build()
        .expect("template");

    let mut group = c.benchmark_group("issuers/ES256");
    group.bench_function("verifier_one_issuer", |b| {
        b.iter(|| single.verify::<Value>(black_box(&token)).expect("ok"))
    });
    group.bench_function("issuer_verifier_1_exact", |b| {
        b.iter(|| one.verify::<Value>(black_box(&token)).expect("ok"))
    });
    group.bench_function("issuer_verifier_1000_exact", |b| {
        b.iter(|| many.verify::<Value>(black_box(&token)).expect("ok"))
    });
    group.bench_function("issuer_verifier_template_bound_key", |b| {
        b.iter(|| template.verify::<Value>(black_box(&token)).expect("ok"))
    });
    group.bench_function("unknown_issuer_rejected", |b| {
        b.iter(|| {
            many.verify::<Value>(black_box(&stranger))
                .expect_err("unknown")
        })
    });
    group.finish();
}

criterion_group!(benches, issuers);
criterion_main!(benches);
