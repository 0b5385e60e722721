//! Smoke test.
mod common;
use common::*;
use std::time::Duration;
use jwks_sync::testing::jwks_json;

#[test]
fn smoke() {
    let k1 = es("k1");
    let k2 = es("k2");
    let (source, builder) = source_and_builder(&[&k1]);
    let cache = ready(builder.unknown_kid_cooldown(Duration::from_millis(0)));
    assert!(cache.get("k1").is_ok());
    source.set_document(jwks_json(&[&k1, &k2]));
    let got = cache.get_or_wait("k2", PATIENCE);
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(source.fetches(), 2);
    println!("{:#?}", cache.status());
}
