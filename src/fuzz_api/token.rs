//! The token door: bytes through [`Verifier::verify`] against a fixed key
//! set, and an accepted token checked again by jsonwebtoken.
//!
//! Random bytes almost never carry a valid signature, so the first byte
//! chooses what the rest is:
//!
//! | `data[0] % 4` | the rest |
//! |---|---|
//! | 0 | a compact token, verified as is |
//! | 1, 2, 3 | `header JSON, 0xFF, claims JSON`: encoded and signed with the ES256, EdDSA or RS256 key of the set, whatever the header says, then verified |
//!
//! The oracle: a token the verifier accepts has a signature that
//! jsonwebtoken's `crypto::verify` accepts with the key the header
//! selects (rebuilt from its JWK by jsonwebtoken), and, when jsonwebtoken
//! can read the header, `jsonwebtoken::decode` with the same algorithm,
//! issuer, audience, leeway and `exp`/`nbf` rules accepts it with the same
//! claims.

use std::sync::OnceLock;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use crate::JwksCache;
use crate::{Verified, Verifier};

/// The issuer and audience the fixed verifier accepts.
pub(super) const ISSUER: &str = "https://idp.example";
pub(super) const AUDIENCE: &str = "api";

pub(super) struct Fixture {
    pub(super) keys: Vec<TestKey>,
    verifier: Verifier,
}

/// Three keys (ES256 `es`, EdDSA `ed`, RS256 `rs`), made once per process.
pub(super) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys: Vec<TestKey> = [
            (KeyAlg::Es256, "es"),
            (KeyAlg::EdDsa, "ed"),
            (KeyAlg::Rs256, "rs"),
        ]
        .into_iter()
        .map(|(alg, kid)| TestKey::generate(alg, kid).expect("key generation"))
        .collect();
        let document = jwks_json(&keys.iter().collect::<Vec<_>>());
        let cache = JwksCache::from_fetcher(MemorySource::new(document))
            .build()
            .expect("cache");
        cache
            .wait_ready(Duration::from_secs(30))
            .expect("the in-memory set loads");
        let verifier = cache
            .verifier()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .build()
            .expect("verifier");
        Fixture { keys, verifier }
    })
}

/// Encodes and signs `header` and `claims` with `key`'s algorithm,
/// whatever the header names.
pub(super) fn signed(key: &TestKey, header: &[u8], claims: &[u8]) -> Option<String> {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(
        token.as_bytes(),
        key.encoding_key(),
        crate::testing::jsonwebtoken_algorithm(key.alg().algorithm()),
    )
    .ok()?;
    token.push('.');
    token.push_str(&signature);
    Some(token)
}

/// A token (see the module docs for the layout) through the verifier;
/// panics if an accepted token fails the reference check.
pub fn verify_token(data: &[u8]) {
    verify_and_check(data);
}

/// [`verify_token`], saying whether the token was accepted (and so went
/// through the reference check).
pub(super) fn verify_and_check(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let fixture = fixture();
    let token = match usize::from(mode % 4) {
        0 => match std::str::from_utf8(rest) {
            Ok(token) => token.to_owned(),
            Err(_) => return false,
        },
        which => {
            let Some(split) = rest.iter().position(|b| *b == 0xFF) else {
                return false;
            };
            let key = &fixture.keys[which - 1];
            match signed(key, &rest[..split], &rest[split + 1..]) {
                Some(token) => token,
                None => return false,
            }
        }
    };
    match fixture.verifier.verify::<Value>(&token) {
        Ok(verified) => {
            reference_check(fixture, &token, &verified);
            true
        }
        Err(_) => false,
    }
}

fn reference_check(fixture: &Fixture, token: &str, verified: &Verified<Value>) {
    let alg = verified.header.alg();
    let key = match verified.header.kid() {
        Some(kid) => fixture.keys.iter().find(|k| k.kid() == kid),
        None => {
            let mut bound = fixture.keys.iter().filter(|k| k.alg().algorithm() == alg);
            let first = bound.next();
            assert!(
                bound.next().is_none(),
                "no kid, several keys bound to {alg:?}"
            );
            first
        }
    };
    let key = key.expect("an accepted token names a published key");
    assert_eq!(key.alg().algorithm(), alg, "accepted under another alg");
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(key.jwk().clone()).expect("our JWK reads");
    let decoding = DecodingKey::from_jwk(&jwk).expect("our JWK builds");
    let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
    assert_eq!(
        jsonwebtoken::crypto::verify(
            signature,
            signing_input.as_bytes(),
            &decoding,
            crate::testing::jsonwebtoken_algorithm(alg),
        )
        .ok(),
        Some(true),
        "accepted a signature jsonwebtoken refuses"
    );
    if jsonwebtoken::decode_header(token).is_err() {
        // A header member jsonwebtoken types more strictly than we read
        // it (we skip `jwk`, `x5c`, ... unread): the signature check above
        // is the reference.
        return;
    }
    let mut validation = Validation::new(crate::testing::jsonwebtoken_algorithm(alg));
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_nbf = true;
    validation.leeway = 60;
    match jsonwebtoken::decode::<Value>(token, &decoding, &validation) {
        Ok(reference) => assert_eq!(reference.claims, verified.claims, "other claims"),
        Err(e) => match e.kind() {
            // RFC 7519 NumericDates may have a fraction; jsonwebtoken reads
            // only integers. Check those dates by hand instead.
            ErrorKind::InvalidClaimFormat(claim) if claim == "exp" || claim == "nbf" => {
                fractional_dates(token, &decoding, &mut validation, verified);
            }
            _ => panic!("accepted, but jsonwebtoken refuses it: {e:?}"),
        },
    }
}

/// The reference for a token whose `exp` or `nbf` is not an integer:
/// jsonwebtoken checks everything else, the dates are checked here with
/// the same leeway (`exp` rounded down, `nbf` up, as the verifier's docs
/// promise).
fn fractional_dates(
    token: &str,
    decoding: &DecodingKey,
    validation: &mut Validation,
    verified: &Verified<Value>,
) {
    let now = jsonwebtoken::get_current_timestamp() as f64;
    let date = |name: &str| verified.claims.get(name).and_then(Value::as_f64);
    let exp = date("exp").expect("exp is a number");
    assert!(exp.floor() + 60.0 > now, "expired exp {exp} accepted");
    if let Some(nbf) = date("nbf") {
        assert!(nbf.ceil() <= now + 60.0, "future nbf {nbf} accepted");
    }
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    if let Err(e) = jsonwebtoken::decode::<Value>(token, decoding, validation) {
        panic!("accepted, but jsonwebtoken refuses it: {e:?}");
    }
}
