//! Whole documents: what fails the document, what only skips an entry.

use super::*;
use crate::testing::{jwks_json, KeyAlg, TestKey};
use serde_json::json;

const LIMITS: SetLimits = SetLimits {
    max_bytes: 64 * 1024,
    max_keys: 4,
    key: KeyLimits { max_kid_len: 64 },
};

fn es(kid: &str) -> TestKey {
    TestKey::generate(KeyAlg::Es256, kid).expect("keygen")
}

fn parse(doc: &str) -> Result<KeySet, KeySetError> {
    KeySet::parse(doc.as_bytes(), 1, LIMITS)
}

#[test]
fn document_level_failures() {
    assert!(matches!(parse("{not json"), Err(KeySetError::NotJson(_))));
    assert_eq!(parse("[]").err(), Some(KeySetError::NoKeysArray));
    assert_eq!(
        parse(r#"{"keys": {}}"#).err(),
        Some(KeySetError::NoKeysArray)
    );
    assert_eq!(
        parse(r#"{"keys": []}"#).err(),
        Some(KeySetError::NoUsableKeys { skipped: 0 })
    );
    assert_eq!(
        parse(r#"{"keys": [{"kty": "oct", "k": "AA"}, 5]}"#).err(),
        Some(KeySetError::NoUsableKeys { skipped: 2 })
    );
    let big = format!(r#"{{"keys": [], "pad": "{}"}}"#, "x".repeat(64 * 1024));
    assert_eq!(
        parse(&big).err(),
        Some(KeySetError::TooLarge { limit: 64 * 1024 })
    );
}

#[test]
fn bad_entries_are_skipped_with_index_kid_and_reason() {
    let good = es("good");
    let doc = json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "secret"},
        good.jwk(),
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
    ]});
    let set = parse(&doc.to_string()).expect("one usable key");
    assert_eq!(set.keys().len(), 1);
    assert!(set.get("good").is_some());
    assert!(set.get("secret").is_none());
    assert_eq!(
        set.skipped(),
        [
            SkippedKey {
                index: 0,
                kid: Some("secret".into()),
                reason: SkipReason::Symmetric
            },
            SkippedKey {
                index: 2,
                kid: Some("p521".into()),
                reason: SkipReason::UnsupportedCurve("P-521".into())
            },
        ]
    );
}

#[test]
fn keys_sharing_a_kid_are_all_kept_in_document_order() {
    let first = es("dup");
    let second = TestKey::generate(KeyAlg::EdDsa, "dup").expect("keygen");
    let third = es("dup");
    let mut broken = first.jwk().clone();
    broken["x"] = json!("AA");
    let doc = json!({"keys": [broken, first.jwk(), es("other").jwk(), second.jwk(), third.jwk()]});
    let set = KeySet::parse(
        doc.to_string().as_bytes(),
        1,
        SetLimits {
            max_keys: 10,
            ..LIMITS
        },
    )
    .expect("usable");
    // `get` is the first usable one; the others follow it.
    let types: Vec<_> = set.candidates("dup").map(|k| k.key_type()).collect();
    assert_eq!(
        types,
        [
            crate::KeyType::EcP256,
            crate::KeyType::Ed25519,
            crate::KeyType::EcP256
        ]
    );
    assert_eq!(set.get("dup").map(|k| k.same_kid().count()), Some(3));
    assert_eq!(set.keys().len(), 4);
    assert_eq!(set.candidates("other").count(), 1);
    assert_eq!(set.candidates("none").count(), 0);
    assert_eq!(set.skipped().len(), 1);
    assert_eq!(set.skipped()[0].reason, SkipReason::BadCoordinateLength);
}

#[test]
fn at_most_four_keys_are_kept_under_one_kid() {
    let keys: Vec<TestKey> = (0..6).map(|_| es("same")).collect();
    let refs: Vec<&TestKey> = keys.iter().collect();
    let set = KeySet::parse(
        jwks_json(&refs).as_bytes(),
        1,
        SetLimits {
            max_keys: 10,
            ..LIMITS
        },
    )
    .expect("usable");
    assert_eq!(set.candidates("same").count(), KeySet::MAX_KEYS_PER_KID);
    assert_eq!(set.keys().len(), 4);
    let reasons: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [(4, SkipReason::DuplicateKid), (5, SkipReason::DuplicateKid)]
    );
}

#[test]
fn a_document_past_max_keys_is_rejected_whole() {
    let keys: Vec<TestKey> = (0..6).map(|i| es(&format!("k{i}"))).collect();
    let refs: Vec<&TestKey> = keys.iter().collect();
    // The signing keys last: publishing the first four would drop them.
    assert_eq!(
        parse(&jwks_json(&refs)).err(),
        Some(KeySetError::TooManyKeys {
            limit: 4,
            entries: 6
        })
    );
    assert!(parse(&jwks_json(&refs[..4])).is_ok(), "at the limit");
}

#[test]
fn keys_without_kid_are_kept_but_not_indexed() {
    let k = es("x");
    let mut anonymous = k.jwk().clone();
    anonymous.as_object_mut().expect("object").remove("kid");
    let set = parse(&json!({"keys": [anonymous]}).to_string()).expect("usable");
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.keys()[0].kid(), None);
    assert!(set.get("x").is_none());
}

#[test]
fn fx_hasher_spreads_similar_kids() {
    use std::hash::BuildHasher;
    let b = KidHasher::default();
    let hashes: std::collections::HashSet<u64> =
        (0..1000).map(|i| b.hash_one(format!("key-{i}"))).collect();
    assert_eq!(hashes.len(), 1000);
}

#[test]
fn repeated_members_skip_the_entry_or_reject_the_document() {
    let good = es("good").jwk().to_string();
    let mut twice = es("twice").jwk().to_string();
    twice.insert_str(twice.len() - 1, r#","kty":"EC""#);
    let set = parse(&format!(r#"{{"keys":[{good},{twice}]}}"#)).expect("usable");
    assert_eq!(set.keys().len(), 1);
    assert_eq!(
        set.skipped()[0].reason,
        SkipReason::RepeatedMember("kty".into())
    );
    assert_eq!(set.skipped()[0].kid.as_deref(), Some("twice"));
    assert_eq!(
        parse(&format!(r#"{{"keys":[],"keys":[{good}]}}"#)).err(),
        Some(KeySetError::RepeatedMember("keys".into()))
    );
    // A hostile name is kept short.
    let long = "n".repeat(1000);
    let doc = format!(r#"{{"keys":[{good}],"{long}":1,"{long}":2}}"#);
    assert_eq!(
        parse(&doc).err(),
        Some(KeySetError::RepeatedMember("n".repeat(64)))
    );
}
