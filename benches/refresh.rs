//! What a refresh costs once the body is in memory: a JWKS document of
//! 4, 64 or 1,000 keys (RSA-2048, P-256 and Ed25519 in turn) parsed into a
//! `KeySet`, against the floor a refresh cannot go under: serde_json
//! reading the same document into borrowed, typed entries and aws-lc
//! parsing one key per entry.
//!
//! `cargo bench --bench refresh -- --warm-up-time 1 --measurement-time 2`
//!
//! Instruction counts, where wall time is noisy: with `REFRESH_COST=<file>`
//! the binary writes a document of `REFRESH_KEYS` keys (default 64) to
//! `<file>` if it is missing, then
//! parses it `REFRESH_ITERS` times with `REFRESH_MODE` (`baseline` or
//! `key_set`) and exits; run it under
//! `valgrind --tool=callgrind` with 1 and 11 iterations and divide the
//! difference by 10 (the document is read from the file so that both runs
//! do the same setup: no key generation).

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, Criterion};
use jwks_sync::testing::{parse_key_set, KeyAlg, TestKey};
use serde::Deserialize;

/// `n` entries cycling through `keys`, each under its own kid, with the
/// members an identity provider publishes (`kid`, `alg`, `use`).
fn document(keys: &[TestKey], n: usize) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut jwk = keys[i % keys.len()].jwk().clone();
            jwk["kid"] = format!("key-{i:04}-{}", keys[i % keys.len()].kid()).into();
            jwk
        })
        .collect();
    serde_json::json!({ "keys": entries })
        .to_string()
        .into_bytes()
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    keys: Vec<Jwk<'a>>,
}

/// Only what building the aws-lc key needs; everything else is skipped.
#[derive(Deserialize)]
struct Jwk<'a> {
    kty: &'a str,
    n: Option<&'a str>,
    e: Option<&'a str>,
    x: Option<&'a str>,
    y: Option<&'a str>,
}

fn b64(member: Option<&str>) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(member.expect("member present"))
        .expect("base64url")
}

/// The floor: typed parse, then one aws-lc key per entry.
fn baseline(document: &[u8]) -> Vec<ParsedPublicKey> {
    let doc: Doc<'_> = serde_json::from_slice(document).expect("JSON");
    doc.keys
        .iter()
        .map(|jwk| match jwk.kty {
            "RSA" => RsaPublicKeyComponents {
                n: b64(jwk.n),
                e: b64(jwk.e),
            }
            .to_parsed_public_key(&sig::RSA_PKCS1_2048_8192_SHA256)
            .expect("RSA key"),
            "EC" => {
                let point = [vec![4], b64(jwk.x), b64(jwk.y)].concat();
                ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point).expect("EC key")
            }
            _ => ParsedPublicKey::new(&sig::ED25519, b64(jwk.x)).expect("Ed25519 key"),
        })
        .collect()
}

fn refresh(c: &mut Criterion) {
    let keys: Vec<TestKey> = (0..4)
        .flat_map(|i| {
            [KeyAlg::Rs256, KeyAlg::Es256, KeyAlg::EdDsa]
                .map(|alg| TestKey::generate(alg, &format!("{alg:?}-{i}")).expect("keygen"))
        })
        .collect();
    for n in [4usize, 64, 1000] {
        let mut group = c.benchmark_group(format!("refresh/{n}"));
        let doc = document(&keys, n);
        // Same work before timing anything: every entry becomes a key.
        assert_eq!(baseline(&doc).len(), n);
        let set = parse_key_set(&doc, n).expect("a usable set");
        assert_eq!((set.keys().len(), set.skipped().len()), (n, 0));

        group.bench_function("serde_typed_plus_aws_lc", |b| {
            b.iter(|| baseline(black_box(&doc)))
        });
        group.bench_function("key_set_parse", |b| {
            b.iter(|| parse_key_set(black_box(&doc), n).map(|s| s.keys().len()))
        });
        group.finish();
    }
}

/// The `REFRESH_COST` mode (see the module docs).
fn instruction_count_run(path: &str) {
    let n = std::env::var("REFRESH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    if std::fs::metadata(path).is_err() {
        let keys: Vec<TestKey> = [KeyAlg::Rs256, KeyAlg::Es256, KeyAlg::EdDsa]
            .map(|alg| TestKey::generate(alg, &format!("{alg:?}")).expect("keygen"))
            .into();
        std::fs::write(path, document(&keys, n)).expect("document written");
    }
    let doc = std::fs::read(path).expect("document read");
    let iters: usize = std::env::var("REFRESH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mode = std::env::var("REFRESH_MODE").unwrap_or_default();
    for _ in 0..iters {
        let built = match mode.as_str() {
            "baseline" => baseline(black_box(&doc)).len(),
            _ => parse_key_set(black_box(&doc), n).map_or(0, |s| s.keys().len()),
        };
        assert_eq!(built, n);
    }
}

criterion_group!(benches, refresh);

fn main() {
    if let Ok(path) = std::env::var("REFRESH_COST") {
        return instruction_count_run(&path);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
