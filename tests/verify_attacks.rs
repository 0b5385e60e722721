//! The attacks from a decade of JWT advisories, each against the verifier:
//! `alg: none`, RS/HS key confusion, algorithm substitution, key-reference
//! and embedded-key headers, `crit`, oversized tokens, hostile kids, and
//! unknown kids used to make the cache hammer the identity provider.

mod verify_support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jwks_sync::{Algorithm, AlgorithmRejection, KeyType, VerifyError};
use serde_json::{json, Value};
use verify_support::*;

/// Asserts that `token` is rejected with `expected` without any key lookup
/// (the cache's hit and miss counters do not move) and without a fetch.
fn rejected_before_lookup(token: &str, expected: &VerifyError) {
    let (source, cache, verifier) = fixture();
    let before = cache.status();
    assert_eq!(&verifier.verify::<Value>(token).unwrap_err(), expected);
    assert_eq!(
        &verifier
            .verify_or_wait::<Value>(token, PATIENCE)
            .unwrap_err(),
        expected
    );
    let after = cache.status();
    assert_eq!(
        after.lookups, before.lookups,
        "no key lookup for {expected:?}"
    );
    assert_eq!(source.fetches(), 1);
}

#[test]
fn alg_none_is_rejected_in_every_casing() {
    let k = keys();
    let signed = token(&k.es256, &good_claims());
    let real_signature = signed.rsplit('.').next().unwrap_or_default();
    for alg in ["none", "None", "NONE", "nOnE", "NoNe", "nonE"] {
        let header = json!({"alg": alg, "kid": "es256", "typ": "JWT"});
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        let expected = VerifyError::DisallowedAlgorithm(AlgorithmRejection::None);
        rejected_before_lookup(&unsigned, &expected);
        // With a real signature glued on, and without a kid.
        rejected_before_lookup(&format!("{unsigned}{real_signature}"), &expected);
        let no_kid = format!(
            "{}.{}.",
            b64(json!({"alg": alg}).to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        rejected_before_lookup(&no_kid, &expected);
    }
}

/// The RSA public key in every form a confused verifier might use as an
/// HMAC secret.
fn rsa_public_key_forms() -> Vec<(&'static str, Vec<u8>)> {
    let key = &keys().rs256;
    let der = key.public_key_bytes().to_vec();
    let n = key.jwk()["n"].as_str().unwrap_or_default();
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n)
        .expect("modulus is base64url");
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    );
    vec![
        ("raw modulus", modulus),
        ("SPKI DER", der),
        ("PEM", pem.clone().into_bytes()),
        (
            "PEM without final newline",
            pem.trim_end().as_bytes().to_vec(),
        ),
        ("JWK JSON", key.jwk().to_string().into_bytes()),
        ("JWK n member", n.as_bytes().to_vec()),
    ]
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected_before_lookup() {
    for (form, secret) in rsa_public_key_forms() {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = json!({"alg": alg, "kid": "rs256", "typ": "JWT"});
            let forged = hmac_token(alg, &secret, &header, &good_claims());
            let expected_alg = match alg {
                "HS256" => Algorithm::HS256,
                "HS384" => Algorithm::HS384,
                _ => Algorithm::HS512,
            };
            let expected = VerifyError::DisallowedAlgorithm(AlgorithmRejection::Hmac(expected_alg));
            let (_, _, verifier) = fixture();
            assert_eq!(
                verifier.verify::<Value>(&forged).unwrap_err(),
                expected,
                "{form} {alg}"
            );
            rejected_before_lookup(&forged, &expected);
        }
    }
}

#[test]
fn hmac_and_unknown_names_in_other_casings_are_unknown_algorithms() {
    let secret = keys().rs256.public_key_bytes();
    for alg in ["hs256", "Hs256", "RS1", "ES256K", "", "RSA-OAEP"] {
        let header = json!({"alg": alg, "kid": "rs256"});
        let forged = hmac_token("HS256", secret, &header, &good_claims());
        rejected_before_lookup(
            &forged,
            &VerifyError::DisallowedAlgorithm(AlgorithmRejection::Unknown),
        );
    }
}

#[test]
fn a_header_alg_other_than_the_keys_is_rejected() {
    let (_, _, verifier) = fixture();
    let k = keys();
    // The PS256 key's JWK says alg PS256; a valid RS256 signature by the
    // same RSA key under its kid is still refused.
    let cases = [
        (&k.ps256, Algorithm::RS256, KeyType::Rsa { bits: 2048 }),
        (&k.rs256, Algorithm::PS256, KeyType::Rsa { bits: 2048 }),
        (&k.rs384, Algorithm::RS256, KeyType::Rsa { bits: 2048 }),
        (&k.rs256, Algorithm::RS512, KeyType::Rsa { bits: 2048 }),
    ];
    for (key, alg, key_type) in cases {
        let header = json!({"alg": alg_name(alg), "kid": key.kid()});
        let token = sign_as(key, alg, &header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::KeyAlgorithmMismatch { alg, key: key_type },
            "{:?} key, {alg:?} token",
            key.alg()
        );
    }
    // ES384 under the ES256 key's kid (signed by the ES384 key).
    let header = json!({"alg": "ES384", "kid": "es256"});
    let token = sign(&k.es384, &header, &good_claims());
    assert_eq!(
        verifier.verify::<Value>(&token).unwrap_err(),
        VerifyError::KeyAlgorithmMismatch {
            alg: Algorithm::ES384,
            key: KeyType::EcP256
        }
    );
}

#[test]
fn an_rs256_token_under_an_ec_kid_is_rejected() {
    let (_, _, verifier) = fixture();
    let k = keys();
    for (kid, key_type) in [
        ("es256", KeyType::EcP256),
        ("es384", KeyType::EcP384),
        ("eddsa", KeyType::Ed25519),
    ] {
        let header = json!({"alg": "RS256", "kid": kid});
        let token = sign(&k.rs256, &header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::KeyAlgorithmMismatch {
                alg: Algorithm::RS256,
                key: key_type
            },
            "{kid}"
        );
    }
}

/// A loopback HTTP server that only counts the connections it is offered.
struct Trap {
    url: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Trap {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: at most 30 s, and ends as soon as the test is done.
                for _ in 0..30_000 {
                    // Relaxed: a flag and a counter, nothing rides on them.
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            hits.fetch_add(1, Ordering::Relaxed);
                            let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                            let _ = stream.read(&mut [0u8; 512]);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            })
        };
        Self {
            url,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> usize {
        // Relaxed: see `start`.
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        // Relaxed: see `start`.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn jku_and_x5u_are_never_fetched() {
    let trap = Trap::start();
    let k = keys();
    // Unknown kids may make the cache refresh, from its own source only.
    let (source, cache) = cache_with(&k.published(), |b| b.unknown_kid_cooldown(Duration::ZERO));
    let verifier = verifier(&cache);
    for member in ["jku", "x5u"] {
        // The attacker's key, under a published kid and under a new one.
        for (kid, expected) in [
            ("rs256", VerifyError::BadSignature),
            ("attacker", VerifyError::UnknownKey),
        ] {
            let header = json!({"alg": "RS256", "kid": kid, member: trap.url});
            let token = sign(&k.rogue_rs256, &header, &good_claims());
            assert_eq!(verifier.verify::<Value>(&token).unwrap_err(), expected);
            assert_eq!(
                verifier
                    .verify_or_wait::<Value>(&token, Duration::from_secs(2))
                    .unwrap_err(),
                expected
            );
        }
    }
    // The only asynchronous actor is the refresher: let the fetches the
    // unknown kids asked for finish (from the real source), then look.
    assert!(
        eventually(PATIENCE, || source.fetches() >= 2),
        "unknown kids did refresh from the real source"
    );
    assert!(eventually(PATIENCE, || cache.status().state
        != jwks_sync::RefresherState::Fetching));
    assert_eq!(trap.hits(), 0, "the verifier contacted the token's URL");
    // The trap does count: a connection to it is seen.
    let _ = std::net::TcpStream::connect(
        trap.url
            .trim_start_matches("http://")
            .trim_end_matches("/jwks.json"),
    );
    assert!(eventually(PATIENCE, || trap.hits() == 1));
}

#[test]
fn an_embedded_jwk_or_x5c_is_never_trusted() {
    let (_, cache, verifier) = fixture();
    let k = keys();
    let rogue_jwk = k.rogue_es256.jwk().clone();
    let fake_chain = STANDARD.encode(k.rogue_rs256.public_key_bytes());
    let cases = [
        (
            json!({"alg": "ES256", "kid": "es256", "jwk": rogue_jwk}),
            &k.rogue_es256,
            VerifyError::BadSignature,
        ),
        (
            json!({"alg": "ES256", "kid": "attacker", "jwk": rogue_jwk}),
            &k.rogue_es256,
            VerifyError::UnknownKey,
        ),
        (
            json!({"alg": "RS256", "kid": "rs256", "x5c": [fake_chain]}),
            &k.rogue_rs256,
            VerifyError::BadSignature,
        ),
    ];
    for (header, signer, expected) in cases {
        let token = sign(signer, &header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            expected,
            "{header}"
        );
    }
    // No kid, jwk embedded: the only ES256 key in a one-key set is ours, and
    // the attacker's signature does not verify with it.
    let (_, single) = cache_over(&[&k.es256]);
    let single = verify_support::verifier(&single);
    let header = json!({"alg": "ES256", "jwk": rogue_jwk});
    let token = sign(&k.rogue_es256, &header, &good_claims());
    assert_eq!(
        single.verify::<Value>(&token).unwrap_err(),
        VerifyError::BadSignature
    );
    // The same headers on a token our key signed are merely ignored.
    let header =
        json!({"alg": "ES256", "kid": "es256", "jwk": rogue_jwk, "jku": "https://evil.example"});
    assert!(verifier
        .verify::<Value>(&sign(&k.es256, &header, &good_claims()))
        .is_ok());
    drop(cache);
}

#[test]
fn a_crit_header_rejects_the_token() {
    let (_, _, verifier) = fixture();
    let k = keys();
    for header in [
        json!({"alg": "ES256", "kid": "es256", "crit": ["exp-ext"], "exp-ext": 1}),
        json!({"alg": "ES256", "kid": "es256", "crit": ["b64"], "b64": false}),
        json!({"alg": "ES256", "kid": "es256", "crit": ["kid"]}),
    ] {
        let token = sign(&k.es256, &header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::UnsupportedCritical,
            "{header}"
        );
    }
    for header in [
        json!({"alg": "ES256", "kid": "es256", "crit": []}),
        json!({"alg": "ES256", "kid": "es256", "crit": "exp-ext"}),
        json!({"alg": "ES256", "kid": "es256", "crit": [1]}),
    ] {
        let token = sign(&k.es256, &header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::Malformed("header crit is not a non-empty array of strings"),
            "{header}"
        );
    }
}

#[test]
fn a_repeated_header_member_is_malformed() {
    let (_, _, verifier) = fixture();
    let k = keys();
    for header in [
        br#"{"alg":"ES256","kid":"es256","alg":"none"}"#.as_slice(),
        br#"{"alg":"ES256","kid":"es256","kid":"rs256"}"#.as_slice(),
        br#"{"alg":"ES256","kid":"es256","crit":["a"],"crit":["b"]}"#.as_slice(),
    ] {
        let token = sign_raw(&k.es256, Algorithm::ES256, header, &good_claims());
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::Malformed("header repeats a member")
        );
    }
}

#[test]
fn a_one_mebibyte_token_is_rejected_before_decoding() {
    let k = keys();
    let padding = "A".repeat(1024 * 1024);
    // Well-formed in every other way: a valid signature over huge claims.
    let huge = token(&k.es256, &claims_with(json!({"padding": padding})));
    assert!(huge.len() > 1024 * 1024);
    rejected_before_lookup(&huge, &VerifyError::TooLarge { limit: 16 * 1024 });
    let junk = "x".repeat(1024 * 1024);
    rejected_before_lookup(&junk, &VerifyError::TooLarge { limit: 16 * 1024 });
    // The limit is configurable, and then the same token verifies.
    let (_, cache) = cache_over(&[&k.es256]);
    let roomy = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .max_token_bytes(2 * 1024 * 1024)
        .build()
        .unwrap();
    assert!(roomy.verify::<Value>(&huge).is_ok());
}

#[test]
fn hostile_kids_are_unknown_keys_and_never_echoed() {
    let k = keys();
    let (source, cache) = cache_over(&k.published());
    let roomy = cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .max_token_bytes(256 * 1024)
        .build()
        .unwrap();
    let strict = verifier(&cache);
    let long = "k".repeat(64 * 1024);
    for kid in [
        "../../../../etc/passwd",
        "/dev/zero",
        "file:///etc/passwd",
        "' OR '1'='1' --",
        "es256'; DROP TABLE keys; --",
        "es256\r\nSet-Cookie: admin=1",
        "es256\n",
        "es256\u{0}",
        " es256",
        "ES256",
        "",
        long.as_str(),
    ] {
        let header = json!({"alg": "ES256", "kid": kid});
        let token = sign(&k.es256, &header, &good_claims());
        let err = roomy.verify::<Value>(&token).unwrap_err();
        assert_eq!(
            err,
            VerifyError::UnknownKey,
            "{:?}",
            &kid[..kid.len().min(40)]
        );
        let shown = format!("{err} {err:?}");
        if kid.len() > 3 {
            assert!(!shown.contains(kid), "{shown}");
        }
        assert!(!shown.contains('\r') && !shown.contains('\n'), "{shown}");
        if kid.len() > 16 * 1024 {
            assert_eq!(
                strict.verify::<Value>(&token).unwrap_err(),
                VerifyError::TooLarge { limit: 16 * 1024 }
            );
        }
    }
    // The 64 KiB kid was not even looked up; within the cooldown none of
    // them reached the identity provider.
    let before = cache.status().lookups;
    let token = sign(
        &k.es256,
        &json!({"alg": "ES256", "kid": long}),
        &good_claims(),
    );
    assert_eq!(
        roomy.verify::<Value>(&token).unwrap_err(),
        VerifyError::UnknownKey
    );
    assert_eq!(cache.status().lookups, before);
    assert_eq!(source.fetches(), 1);
}

#[test]
fn tokens_that_cannot_pass_never_make_an_unknown_kid_fetch() {
    let k = keys();
    // No cooldown: any unknown kid that reaches the lookup would fetch.
    let (source, cache) = cache_with(&k.published(), |b| b.unknown_kid_cooldown(Duration::ZERO));
    let verifier = verifier(&cache);
    let unknown = |claims: &Value| {
        sign(
            &k.rogue_es256,
            &json!({"alg": "ES256", "kid": "unknown-kid"}),
            claims,
        )
    };
    let hopeless = [
        (
            unknown(&claims_with(json!({"exp": now() - 3600}))),
            VerifyError::Expired,
        ),
        (
            unknown(&claims_with(json!({"exp": now() - 86_400 * 365}))),
            VerifyError::Expired,
        ),
        (
            unknown(&claims_with(json!({"nbf": now() + 3600}))),
            VerifyError::NotYetValid,
        ),
        (
            unknown(&claims_with(json!({"iss": "https://evil.example"}))),
            VerifyError::WrongIssuer,
        ),
        (
            unknown(&claims_with(json!({"aud": "other-api"}))),
            VerifyError::WrongAudience,
        ),
        (
            unknown(&claims_with(json!({"exp": "soon"}))),
            VerifyError::BadClaimType("exp"),
        ),
        (
            hmac_token(
                "HS256",
                b"secret",
                &json!({"alg": "HS256", "kid": "unknown-kid"}),
                &good_claims(),
            ),
            VerifyError::DisallowedAlgorithm(AlgorithmRejection::Hmac(Algorithm::HS256)),
        ),
    ];
    for (token, expected) in &hopeless {
        for _ in 0..20 {
            assert_eq!(&verifier.verify::<Value>(token).unwrap_err(), expected);
            assert_eq!(
                &verifier
                    .verify_or_wait::<Value>(token, Duration::from_secs(2))
                    .unwrap_err(),
                expected
            );
        }
    }
    // No lookup at all: a miss is counted by the reader itself before it
    // could ask the refresher for anything, so no wait is needed to know
    // that no fetch was asked for.
    assert_eq!(cache.status().misses, 0);
    assert_eq!(cache.status().unknown_kid_refreshes_asked, 0);
    assert_eq!(cache.status().refreshes.unknown_kid, 0);
    assert_eq!(source.fetches(), 1);

    // Control: the same unknown kid on a token that could pass does fetch.
    let plausible = unknown(&good_claims());
    assert_eq!(
        verifier.verify::<Value>(&plausible).unwrap_err(),
        VerifyError::UnknownKey
    );
    // The cause counter counts a fetch as it starts, a moment before the
    // source sees it: wait for both.
    assert!(eventually(PATIENCE, || source.fetches() == 2));
    assert!(eventually(PATIENCE, || cache
        .status()
        .refreshes
        .unknown_kid
        == 1));
}

#[test]
fn signature_encodings_from_other_formats_are_rejected() {
    let (_, _, verifier) = fixture();
    let k = keys();
    let good = token(&k.es256, &good_claims());
    let (input, signature) = good.rsplit_once('.').unwrap_or_default();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("signature is base64url");
    // A DER-encoded ECDSA signature (what a non-JWS library produces).
    let (r, s) = raw.split_at(32);
    let int = |v: &[u8]| {
        let v = &v[v.iter().position(|b| *b != 0).unwrap_or(v.len())..];
        let mut out = vec![0x02];
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            out.push(v.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(v.len() as u8);
        }
        out.extend_from_slice(v);
        out
    };
    let body = [int(r), int(s)].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    for bad in [
        der,
        raw[..63].to_vec(),
        [raw.clone(), vec![0]].concat(),
        Vec::new(),
        vec![0u8; 2048],
    ] {
        let token = format!("{input}.{}", b64(&bad));
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::BadSignature
        );
    }
    // Standard (not url-safe) alphabet and padding are not base64url.
    let token = format!("{input}.{}", STANDARD.encode(&raw));
    if token.contains(['+', '/', '=']) {
        assert_eq!(
            verifier.verify::<Value>(&token).unwrap_err(),
            VerifyError::Malformed("signature is not base64url")
        );
    }
}
