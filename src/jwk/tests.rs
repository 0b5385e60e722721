//! One entry at a time: every skip reason, and the algorithm binding.

use super::*;
use crate::testing::{KeyAlg, TestKey};
use serde_json::{json, Value};

const LIMITS: KeyLimits = KeyLimits { max_kid_len: 16 };

fn jwk(alg: KeyAlg) -> Value {
    TestKey::generate(alg, "k").expect("keygen").jwk().clone()
}

fn with(mut v: Value, member: &str, value: Value) -> Value {
    v.as_object_mut()
        .expect("object")
        .insert(member.into(), value);
    v
}

fn without(mut v: Value, member: &str) -> Value {
    v.as_object_mut().expect("object").remove(member);
    v
}

fn skip(v: &Value) -> SkipReason {
    parse_entry(v, LIMITS).expect_err("entry should be skipped")
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(URL_SAFE_NO_PAD.encode(bytes))
}

#[test]
fn every_supported_key_parses_and_binds_its_alg() {
    for (alg, ty) in [
        (KeyAlg::Rs256, KeyType::Rsa { bits: 2048 }),
        (KeyAlg::Ps256, KeyType::Rsa { bits: 2048 }),
        (KeyAlg::Es256, KeyType::EcP256),
        (KeyAlg::Es384, KeyType::EcP384),
        (KeyAlg::EdDsa, KeyType::Ed25519),
    ] {
        let key = parse_entry(&jwk(alg), LIMITS).expect("usable");
        assert_eq!(key.key_type(), ty);
        assert_eq!(key.kid(), Some("k"));
        assert_eq!(
            key.algorithms().iter().collect::<Vec<_>>(),
            [alg.algorithm()]
        );
    }
}

#[test]
fn without_alg_a_key_gets_its_family() {
    let rsa = parse_entry(&without(jwk(KeyAlg::Rs256), "alg"), LIMITS).expect("usable");
    for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS384] {
        assert!(rsa.allows(alg), "{alg:?}");
    }
    assert!(!rsa.allows(Algorithm::ES256));
    assert!(!rsa.allows(Algorithm::HS256));
    let p384 = parse_entry(&without(jwk(KeyAlg::Es384), "alg"), LIMITS).expect("usable");
    assert_eq!(
        p384.algorithms().iter().collect::<Vec<_>>(),
        [Algorithm::ES384]
    );
    let ed = parse_entry(&without(jwk(KeyAlg::EdDsa), "alg"), LIMITS).expect("usable");
    assert_eq!(
        ed.algorithms().iter().collect::<Vec<_>>(),
        [Algorithm::EdDSA]
    );
}

#[test]
fn rfc9864_ed25519_alg_name_is_accepted() {
    let key =
        parse_entry(&with(jwk(KeyAlg::EdDsa), "alg", json!("Ed25519")), LIMITS).expect("usable");
    assert!(key.allows(Algorithm::EdDSA));
}

#[test]
fn malformed_members_are_skipped_with_the_member_named() {
    assert_eq!(
        skip(&json!("a string")),
        SkipReason::Malformed("entry is not an object")
    );
    assert_eq!(
        skip(&without(jwk(KeyAlg::Es256), "kty")),
        SkipReason::Malformed("kty")
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "kty", json!(7))),
        SkipReason::Malformed("kty")
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "kid", json!(7))),
        SkipReason::Malformed("kid")
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "x", json!("*not base64*"))),
        SkipReason::Malformed("x")
    );
    assert_eq!(
        skip(&without(jwk(KeyAlg::Rs256), "n")),
        SkipReason::Malformed("n")
    );
    assert_eq!(
        skip(&without(jwk(KeyAlg::Es256), "crv")),
        SkipReason::Malformed("crv")
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "key_ops", json!("verify"))),
        SkipReason::Malformed("key_ops")
    );
}

#[test]
fn unknown_types_curves_and_algorithms_are_skipped() {
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "kty", json!("XYZ"))),
        SkipReason::UnsupportedKeyType("XYZ".into())
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "crv", json!("P-521"))),
        SkipReason::UnsupportedCurve("P-521".into())
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::EdDsa), "crv", json!("Ed448"))),
        SkipReason::UnsupportedCurve("Ed448".into())
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Rs256), "alg", json!("RS1024"))),
        SkipReason::UnsupportedAlgorithm("RS1024".into())
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Rs256), "alg", json!("HS256"))),
        SkipReason::UnsupportedAlgorithm("HS256".into()),
        "an RSA key never vouches for an HMAC algorithm"
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Rs256), "alg", json!("none"))),
        SkipReason::UnsupportedAlgorithm("none".into())
    );
    assert!(matches!(
        skip(&with(jwk(KeyAlg::Es256), "alg", json!("ES384"))),
        SkipReason::UnsupportedAlgorithm(_)
    ));
    assert!(matches!(
        skip(&with(jwk(KeyAlg::Es256), "alg", json!("RS256"))),
        SkipReason::UnsupportedAlgorithm(_)
    ));
}

#[test]
fn use_and_key_ops_must_allow_verification() {
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "use", json!("enc"))),
        SkipReason::NotForSignatures
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "key_ops", json!(["encrypt"]))),
        SkipReason::NoVerifyOperation
    );
    let ok = with(jwk(KeyAlg::Es256), "key_ops", json!(["verify"]));
    assert!(parse_entry(&ok, LIMITS).is_ok());
    let no_use = without(jwk(KeyAlg::Es256), "use");
    assert!(parse_entry(&no_use, LIMITS).is_ok(), "use is optional");
}

#[test]
fn symmetric_and_private_keys_are_never_trusted() {
    assert_eq!(
        skip(&json!({"kty": "oct", "k": "c2VjcmV0", "kid": "s"})),
        SkipReason::Symmetric
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "d", json!("AAAA"))),
        SkipReason::PrivateKeyMaterial
    );
}

#[test]
fn rsa_size_and_exponent_rules() {
    let rsa = jwk(KeyAlg::Rs256);
    let mut small = vec![0xffu8; 128];
    small[0] = 0x80;
    assert_eq!(
        skip(&with(rsa.clone(), "n", b64(&small))),
        SkipReason::RsaModulusTooSmall(1024)
    );
    // Leading zero bytes do not count toward the size.
    let mut padded = vec![0u8; 200];
    padded.extend_from_slice(&small);
    assert_eq!(
        skip(&with(rsa.clone(), "n", b64(&padded))),
        SkipReason::RsaModulusTooSmall(1024)
    );
    let huge = vec![0xffu8; 1025];
    assert_eq!(
        skip(&with(rsa.clone(), "n", b64(&huge))),
        SkipReason::RsaModulusTooLarge(8200)
    );
    for e in [&[1u8][..], &[0x01, 0x00, 0x00], &[0x01, 0, 0, 0, 1], &[]] {
        assert_eq!(
            skip(&with(rsa.clone(), "e", b64(e))),
            SkipReason::RsaBadExponent,
            "{e:?}"
        );
    }
    assert!(
        parse_entry(&with(rsa, "e", b64(&[3])), LIMITS).is_ok(),
        "e = 3 is odd and small"
    );
}

#[test]
fn curve_points_are_checked_when_parsed() {
    let ec = jwk(KeyAlg::Es256);
    assert_eq!(
        skip(&with(ec.clone(), "x", b64(&[1u8; 31]))),
        SkipReason::BadCoordinateLength
    );
    assert_eq!(
        skip(&with(ec.clone(), "y", b64(&[1u8; 48]))),
        SkipReason::BadCoordinateLength
    );
    assert_eq!(
        skip(&with(ec, "y", b64(&[1u8; 32]))),
        SkipReason::InvalidKey,
        "not on the curve"
    );
    assert_eq!(
        skip(&with(jwk(KeyAlg::EdDsa), "x", b64(&[1u8; 31]))),
        SkipReason::BadCoordinateLength
    );
}

#[test]
fn long_kids_are_skipped_and_reasons_stay_short() {
    assert_eq!(
        skip(&with(jwk(KeyAlg::Es256), "kid", json!("k".repeat(17)))),
        SkipReason::KidTooLong(17)
    );
    let SkipReason::UnsupportedKeyType(kty) =
        skip(&with(jwk(KeyAlg::Es256), "kty", json!("x".repeat(10_000))))
    else {
        panic!("expected unsupported kty");
    };
    assert_eq!(kty.len(), 32);
}

#[test]
fn algorithm_set_never_holds_hmac() {
    let mut set = AlgorithmSet::empty();
    set.insert(Algorithm::HS256);
    assert!(set.is_empty());
    assert!(!AlgorithmSet::asymmetric().contains(Algorithm::HS512));
    assert_eq!(AlgorithmSet::asymmetric().iter().count(), 9);
}

#[test]
fn issuer_member_is_kept_and_a_non_string_one_skips_the_entry() {
    let entra = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let key =
        parse_entry(&with(jwk(KeyAlg::Rs256), "issuer", json!(entra)), LIMITS).expect("usable");
    assert_eq!(key.issuer(), Some(entra));
    let plain = parse_entry(&jwk(KeyAlg::Es256), LIMITS).expect("usable");
    assert_eq!(plain.issuer(), None);
    for bad in [json!(7), json!(["https://a.example"]), json!(null)] {
        assert_eq!(
            skip(&with(jwk(KeyAlg::Es256), "issuer", bad)),
            SkipReason::Malformed("issuer")
        );
    }
}
