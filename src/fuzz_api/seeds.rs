//! The seed corpora, written by the project from its own test keys:
//! `cargo test --all-features --lib fuzz_seeds -- --ignored` writes them
//! under `fuzz/seeds/<target>/`; `fuzz/run.sh` fuzzes from them and
//! `fuzz/cmin.sh` merges them into the committed `fuzz/corpus/<target>/`.

use std::path::Path;

use serde_json::{json, Value};

use super::token::{fixture, AUDIENCE, ISSUER};
use crate::testing::{jwks_json, KeyAlg, TestKey};

fn keys() -> Vec<TestKey> {
    [
        (KeyAlg::Rs256, "rs"),
        (KeyAlg::Ps256, "ps"),
        (KeyAlg::Es256, "es"),
        (KeyAlg::Es384, "es384"),
        (KeyAlg::EdDsa, "ed"),
    ]
    .into_iter()
    .map(|(alg, kid)| TestKey::generate(alg, kid).expect("keygen"))
    .collect()
}

/// Entries a key set must skip, one per reason, and some it must keep.
fn odd_entries(keys: &[TestKey]) -> Vec<Value> {
    let with = |i: usize, k: &str, v: Value| {
        let mut jwk = keys[i].jwk().clone();
        jwk[k] = v;
        jwk
    };
    let without = |i: usize, k: &str| {
        let mut jwk = keys[i].jwk().clone();
        jwk.as_object_mut().map(|o| o.remove(k));
        jwk
    };
    vec![
        json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}),
        with(0, "use", json!("enc")),
        with(0, "key_ops", json!(["verify", "sign"])),
        with(0, "key_ops", json!(["encrypt"])),
        with(0, "e", json!("AAEAAQ")),
        with(0, "alg", json!("PS512")),
        with(0, "alg", json!("ES256")),
        with(0, "n", json!("AQAB")),
        with(2, "crv", json!("P-521")),
        with(2, "x", json!("AAAA")),
        with(2, "d", json!("AAAA")),
        with(4, "alg", json!("Ed25519")),
        with(4, "x", json!(1)),
        without(2, "alg"),
        without(0, "kid"),
        without(4, "use"),
        json!({"kty": "RSA"}),
        json!("not an object"),
    ]
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("seed dir");
    std::fs::write(dir.join(name), bytes).expect("seed file");
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the seeds change"]
fn fuzz_seeds() {
    let keys = keys();
    // Key documents and entries.
    let refs: Vec<&TestKey> = keys.iter().collect();
    write("jwks_document", "all", jwks_json(&refs).as_bytes());
    let mut entries: Vec<Value> = keys.iter().map(|k| k.jwk().clone()).collect();
    entries.extend(odd_entries(&keys));
    write(
        "jwks_document",
        "mixed",
        json!({ "keys": entries }).to_string().as_bytes(),
    );
    let same_kid: Vec<Value> = (0..6).map(|_| keys[2].jwk().clone()).collect();
    write(
        "jwks_document",
        "same-kid",
        json!({ "keys": same_kid }).to_string().as_bytes(),
    );
    write("jwks_document", "repeat", br#"{"keys":[],"keys":[]}"#);
    for (i, entry) in entries.iter().enumerate() {
        write(
            "jwk_entry",
            &format!("entry-{i:02}"),
            entry.to_string().as_bytes(),
        );
    }
    write("jwk_entry", "repeat", br#"{"kty":"OKP","kty":"EC"}"#);

    // Tokens: header 0xFF claims, signed at run time by the fixed keys.
    let fixture = fixture();
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice",
        "exp": 4_102_444_800u64, "nbf": 1_000_000_000u64, "iat": 1_700_000_000u64,
    })
    .to_string();
    let headers = [
        (1u8, r#"{"alg":"ES256","kid":"es","typ":"JWT"}"#),
        (2, r#"{"alg":"EdDSA","kid":"ed"}"#),
        (2, r#"{"alg":"EdDSA"}"#),
        (3, r#"{"alg":"RS256","kid":"rs"}"#),
        (3, r#"{"alg":"PS256","kid":"rs"}"#),
        (1, r#"{"alg":"HS256","kid":"es"}"#),
        (1, r#"{"alg":"none"}"#),
        (2, r#"{"alg":"EdDSA","kid":"ed","crit":["b64"]}"#),
        (3, r#"{"alg":"RS256","kid":"rs","jwk":{"kty":"RSA"}}"#),
    ];
    for (i, (mode, header)) in headers.iter().enumerate() {
        let mut seed = vec![*mode];
        seed.extend_from_slice(header.as_bytes());
        seed.push(0xFF);
        seed.extend_from_slice(claims.as_bytes());
        write("verify_token", &format!("signed-{i}"), &seed);
    }
    for (i, claims) in [
        json!({"iss": ISSUER, "aud": [AUDIENCE, "x"], "exp": 4_102_444_800.5}),
        json!({"iss": ISSUER, "aud": "other", "exp": 4_102_444_800u64}),
        json!({"iss": ISSUER, "exp": 1}),
        json!({"iss": ISSUER, "aud": AUDIENCE}),
    ]
    .iter()
    .enumerate()
    {
        let mut seed = b"\x01{\"alg\":\"ES256\",\"kid\":\"es\"}\xFF".to_vec();
        seed.extend_from_slice(claims.to_string().as_bytes());
        write("verify_token", &format!("claims-{i}"), &seed);
    }
    let raw = super::token::signed(
        &fixture.keys[0],
        br#"{"alg":"ES256","kid":"es"}"#,
        claims.as_bytes(),
    )
    .expect("sign");
    write("verify_token", "raw", format!("\x00{raw}").as_bytes());

    // HTTP headers and dates.
    for (i, lines) in [
        "public, max-age=600\n100\n\nSun, 06 Nov 1994 08:49:37 GMT",
        "no-cache",
        "max-age=\"60\", must-revalidate\n\nThu, 01 Jan 2099 00:00:00 GMT",
        "public\n\nWed, 21 Oct 2015 07:28:00 GMT\nWed, 21 Oct 2015 07:00:00 GMT",
        "private\n5\n0",
        "max-age=99999999999999999999\n1",
    ]
    .iter()
    .enumerate()
    {
        write("cache_headers", &format!("seed-{i}"), lines.as_bytes());
    }
    for (i, date) in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Thu, 29 Feb 2024 12:00:00 GMT",
        "120",
    ]
    .iter()
    .enumerate()
    {
        write("http_date", &format!("seed-{i}"), date.as_bytes());
    }
    for (i, location) in [
        "/keys",
        "../keys?v=2",
        "?v=2",
        "//evil.example/keys",
        "/\\evil.example/keys",
        "https://idp.example/keys#frag",
        "http://idp.example/keys",
        "https://user:pw@idp.example/",
        "  https://[::1]:8443/k  ",
        "ftp://idp.example/",
    ]
    .iter()
    .enumerate()
    {
        let mut seed = vec![u8::try_from(i % 4).expect("small")];
        seed.extend_from_slice(location.as_bytes());
        write("redirect", &format!("seed-{i}"), &seed);
    }
    for (i, doc) in [
        json!({"issuer": ISSUER, "jwks_uri": "https://idp.example/keys"}),
        json!({"issuer": ISSUER, "jwks_uri": "https://keys.example/jwks"}),
        json!({"issuer": ISSUER, "jwks_uri": "http://idp.example/keys"}),
        json!({"issuer": "https://idp.example/", "jwks_uri": "https://idp.example/keys"}),
        json!({"issuer": ISSUER}),
    ]
    .iter()
    .enumerate()
    {
        write(
            "discovery",
            &format!("seed-{i}"),
            doc.to_string().as_bytes(),
        );
    }
    write(
        "discovery",
        "repeat",
        br#"{"issuer":"https://idp.example","jwks_uri":"https://idp.example/k","jwks_uri":"https://evil.example/k"}"#,
    );
}
