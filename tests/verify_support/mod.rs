//! Token minting for the verification tests: real keys, hand-built headers,
//! and the attack tokens jsonwebtoken refuses to make.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwks_sync::testing::{jsonwebtoken_algorithm, jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::{Algorithm, JwksCache, Verifier};
use serde_json::{json, Value};

pub const ISS: &str = "https://idp.example";
pub const AUD: &str = "orders-api";
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One key per algorithm, generated once per test binary (RSA generation
/// is slow in debug builds), plus spares for "another key" cases.
pub struct Keys {
    pub rs256: TestKey,
    pub rs384: TestKey,
    pub ps256: TestKey,
    pub es256: TestKey,
    pub es384: TestKey,
    pub eddsa: TestKey,
    /// Not published: an attacker's key.
    pub rogue_rs256: TestKey,
    pub rogue_es256: TestKey,
    /// A second ES256 key under another kid, published only where a test says.
    pub es256_b: TestKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let k = |alg, kid| TestKey::generate(alg, kid).expect("key generation");
        Keys {
            rs256: k(KeyAlg::Rs256, "rs256"),
            rs384: k(KeyAlg::Rs384, "rs384"),
            ps256: k(KeyAlg::Ps256, "ps256"),
            es256: k(KeyAlg::Es256, "es256"),
            es384: k(KeyAlg::Es384, "es384"),
            eddsa: k(KeyAlg::EdDsa, "eddsa"),
            rogue_rs256: k(KeyAlg::Rs256, "rs256"),
            rogue_es256: k(KeyAlg::Es256, "es256"),
            es256_b: k(KeyAlg::Es256, "es256-b"),
        }
    })
}

impl Keys {
    /// The six published keys.
    pub fn published(&self) -> [&TestKey; 6] {
        [
            &self.rs256,
            &self.rs384,
            &self.ps256,
            &self.es256,
            &self.es384,
            &self.eddsa,
        ]
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims that pass the default test verifier: valid for ten minutes.
pub fn good_claims() -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "iat": now(),
        "exp": now() + 600,
        "scope": "orders:read",
    })
}

/// `good_claims` with `changes` merged in (a `null` removes the member).
pub fn claims_with(changes: Value) -> Value {
    let mut claims = good_claims();
    if let (Some(obj), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The standard header for `key`: its alg and kid.
pub fn header_for(key: &TestKey) -> Value {
    json!({"typ": "JWT", "alg": alg_name(key.alg().algorithm()), "kid": key.kid()})
}

pub fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// `header.claims.signature` with `header` taken verbatim (any members,
/// any alg name) and signed by `key` with `signing_alg`.
pub fn sign_as(key: &TestKey, signing_alg: Algorithm, header: &Value, claims: &Value) -> String {
    sign_raw(key, signing_alg, header.to_string().as_bytes(), claims)
}

/// Like [`sign_as`] with the header JSON given as bytes (for duplicate
/// members and other things `serde_json::Value` cannot hold).
pub fn sign_raw(key: &TestKey, signing_alg: Algorithm, header: &[u8], claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims.to_string().as_bytes()));
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        key.encoding_key(),
        jsonwebtoken_algorithm(signing_alg),
    )
    .expect("signing");
    format!("{input}.{signature}")
}

/// `header.claims.signature` from the exact header and claims bytes (for
/// duplicate members and numbers `serde_json::Value` cannot hold), signed
/// by `key` with its own algorithm.
pub fn sign_bytes(key: &TestKey, header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        key.encoding_key(),
        jsonwebtoken_algorithm(key.alg().algorithm()),
    )
    .expect("signing");
    format!("{input}.{signature}")
}

/// Signed by `key` with its own algorithm, under `header`.
pub fn sign(key: &TestKey, header: &Value, claims: &Value) -> String {
    sign_as(key, key.alg().algorithm(), header, claims)
}

/// A well-formed token from `key` with `claims`.
pub fn token(key: &TestKey, claims: &Value) -> String {
    sign(key, &header_for(key), claims)
}

/// An HMAC-signed token, the way an attacker makes one (jsonwebtoken will
/// not sign HS256 with arbitrary bytes as the "secret" for us).
pub fn hmac_token(alg: &str, secret: &[u8], header: &Value, claims: &Value) -> String {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// A cache over `keys` (jitter off, default guards) and its source.
pub fn cache_over(keys: &[&TestKey]) -> (MemorySource, JwksCache) {
    cache_with(keys, |b| b)
}

/// Like [`cache_over`], with builder changes.
pub fn cache_with(
    keys: &[&TestKey],
    configure: impl FnOnce(jwks_sync::Builder) -> jwks_sync::Builder,
) -> (MemorySource, JwksCache) {
    let source = MemorySource::new(jwks_json(keys));
    let cache = configure(JwksCache::from_fetcher(source.clone()).jitter(false))
        .build()
        .expect("valid cache settings");
    cache.wait_ready(PATIENCE).expect("first fetch");
    (source, cache)
}

/// The verifier most tests use: issuer and audience configured.
pub fn verifier(cache: &JwksCache) -> Verifier {
    cache
        .verifier()
        .issuer(ISS)
        .audience(AUD)
        .build()
        .expect("valid verifier settings")
}

/// Everything published by [`keys`], and the default verifier over it.
pub fn fixture() -> (MemorySource, JwksCache, Verifier) {
    let (source, cache) = cache_over(&keys().published());
    let verifier = verifier(&cache);
    (source, cache, verifier)
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
