//! Strict JWKS documents from the real loopback IdP: a member repeated
//! outside the entries rejects the document (the set in service stays), a
//! member repeated inside an entry skips that entry with its reason.
mod common;

use std::time::Duration;

use common::{es, PATIENCE};
use jwks_sync::testing::{TestIdp, JWKS_PATH};
use jwks_sync::{Error, JwksCache, KeySetError, SkipReason};

fn loaded() -> (TestIdp, JwksCache) {
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k1")]);
    let cache = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .jitter(false)
        .backoff_base(Duration::from_secs(60))
        .backoff_max(Duration::from_secs(600))
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");
    (idp, cache)
}

#[test]
fn a_repeated_top_level_member_rejects_the_document_and_the_set_stays() {
    let (idp, cache) = loaded();
    let k2 = es("k2");
    let good = k2.jwk().to_string();
    for (doc, name) in [
        (format!(r#"{{"keys":[],"keys":[{good}]}}"#), "keys"),
        (format!(r#"{{"keys":[{good}],"keys":[]}}"#), "keys"),
        (format!(r#"{{"keys":[{good}],"x":{{"a":1,"a":2}}}}"#), "a"),
    ] {
        idp.set_jwks(doc.clone());
        let e = cache.refresh_now().expect_err("the document is rejected");
        assert_eq!(
            e,
            Error::KeySet(KeySetError::RepeatedMember(name.into())),
            "{doc}"
        );
        assert!(cache.get("k1").is_ok(), "the old set is still served");
        assert!(cache.get("k2").is_err(), "nothing of the document is used");
        assert_eq!(cache.snapshot().generation(), 1);
    }
    assert_eq!(idp.requests(JWKS_PATH), 4);
}

#[test]
fn a_repeated_member_inside_an_entry_skips_that_entry() {
    let (idp, cache) = loaded();
    let (k2, k3) = (es("k2"), es("k3"));
    let mut k1 = es("k1").jwk().to_string();
    // `x` twice: the first a real coordinate, the second another key's.
    let other_x = k3.jwk()["x"].to_string();
    k1.insert_str(k1.len() - 1, &format!(r#","x":{other_x}"#));
    let mut k3_text = k3.jwk().to_string();
    k3_text.insert_str(k3_text.len() - 1, r#","ext":{"a":1,"a":2}"#);
    idp.set_jwks(format!(r#"{{"keys":[{k1},{},{k3_text}]}}"#, k2.jwk()));
    cache.refresh_now().expect("one usable entry is enough");
    let set = cache.snapshot();
    assert!(set.get("k2").is_some());
    assert!(set.get("k1").is_none());
    assert!(set.get("k3").is_none());
    let reasons: Vec<_> = set
        .skipped()
        .iter()
        .map(|s| (s.index, s.reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (0, SkipReason::RepeatedMember("x".into())),
            (2, SkipReason::RepeatedMember("a".into())),
        ]
    );
    assert_eq!(set.skipped()[0].kid.as_deref(), Some("k1"));
}
