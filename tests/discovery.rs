//! OpenID Connect discovery against the loopback IdP: the issuer must match
//! exactly, `jwks_uri` must be https on the issuer's origin unless allowed,
//! and a key set URL that starts answering 404 sends the cache back to
//! discovery.
mod common;

use std::time::Duration;

use common::{es, eventually, fetch_error, PATIENCE};
use jwks_sync::testing::{jwks_json, Fault, TestIdp, DISCOVERY_PATH, JWKS_PATH};
use jwks_sync::{Builder, FetchError, FetchErrorKind, JwksCache, RefresherState};
use serde_json::json;

fn issuer_builder(idp: &TestIdp) -> Builder {
    JwksCache::from_issuer(idp.issuer())
        .add_root_certificate_pem(idp.ca_pem())
        .jitter(false)
        .backoff_base(Duration::from_secs(60))
        .backoff_max(Duration::from_secs(600))
        .timeout(Duration::from_secs(3))
}

fn idp_with_k1() -> TestIdp {
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k1")]);
    idp
}

/// Builds, expects the first load to fail, returns why.
fn first_load_error(builder: Builder) -> FetchError {
    let cache = builder.build().expect("valid settings");
    let e = fetch_error(cache.wait_ready(PATIENCE).expect_err("first load fails"));
    assert!(cache.get("k1").is_err(), "nothing is served");
    e
}

#[test]
fn discovery_finds_the_key_set_once() {
    let idp = idp_with_k1();
    let cache = issuer_builder(&idp).build().expect("valid settings");
    cache.wait_ready(PATIENCE).expect("loads through discovery");
    assert!(cache.get("k1").is_ok());
    cache.refresh_now().expect("refresh succeeds");
    assert_eq!(idp.requests(DISCOVERY_PATH), 1, "discovery is not repeated");
    assert_eq!(idp.requests(JWKS_PATH), 2);
}

#[test]
fn a_wrong_issuer_is_rejected() {
    let idp = idp_with_k1();
    idp.set_discovery(&json!({"issuer": "https://evil.example", "jwks_uri": idp.jwks_url()}));
    let e = first_load_error(issuer_builder(&idp));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(e.message().contains("evil.example"), "{e}");
    assert!(!e.is_transient());
    assert_eq!(idp.requests(DISCOVERY_PATH), 1);
    assert_eq!(idp.requests(JWKS_PATH), 0);
}

#[test]
fn the_issuer_must_match_exactly() {
    let idp = idp_with_k1();
    // Configured with a trailing slash; the document names it without.
    let slash = JwksCache::from_issuer(format!("{}/", idp.issuer()))
        .add_root_certificate_pem(idp.ca_pem())
        .build()
        .expect("valid settings");
    let e = fetch_error(slash.wait_ready(PATIENCE).expect_err("issuer mismatch"));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(e.message().contains("match exactly"), "{e}");
    let last = idp
        .last_request(DISCOVERY_PATH)
        .expect("discovery was asked");
    assert_eq!(last.target, DISCOVERY_PATH, "no doubled slash");
    assert_eq!(idp.requests(JWKS_PATH), 0);
}

#[test]
fn a_cross_origin_jwks_uri_is_rejected() {
    let idp = idp_with_k1();
    let elsewhere = idp.url_with_host("localhost", JWKS_PATH);
    idp.set_discovery(&json!({"issuer": idp.issuer(), "jwks_uri": elsewhere}));
    let e = first_load_error(issuer_builder(&idp));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(e.message().contains("allow_cross_origin_jwks_uri"), "{e}");
    assert_eq!(idp.requests(JWKS_PATH), 0);
}

#[test]
fn a_cross_origin_jwks_uri_can_be_allowed() {
    let idp = idp_with_k1();
    let elsewhere = idp.url_with_host("localhost", JWKS_PATH);
    idp.set_discovery(&json!({"issuer": idp.issuer(), "jwks_uri": elsewhere}));
    let cache = issuer_builder(&idp)
        .allow_cross_origin_jwks_uri(true)
        .build()
        .expect("valid settings");
    cache
        .wait_ready(PATIENCE)
        .expect("loads from the other origin");
    assert!(cache.get("k1").is_ok());
    let request = idp.last_request(JWKS_PATH).expect("fetched");
    assert!(request
        .header("host")
        .is_some_and(|h| h.starts_with("localhost:")));
    assert_eq!(idp.requests(JWKS_PATH), 1);
}

#[test]
fn a_plain_http_jwks_uri_is_rejected() {
    let idp = idp_with_k1();
    let plain = TestIdp::start_plain_http().expect("plain server starts");
    plain.set_keys(&[&es("k1")]);
    idp.set_discovery(&json!({"issuer": idp.issuer(), "jwks_uri": plain.jwks_url()}));
    let e = first_load_error(issuer_builder(&idp).allow_cross_origin_jwks_uri(true));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(e.message().contains("https only"), "{e}");
    assert_eq!(plain.connections(), 0);
}

#[test]
fn an_incomplete_discovery_document_is_rejected() {
    let idp = idp_with_k1();
    idp.set_discovery(&json!({"issuer": idp.issuer()}));
    let e = first_load_error(issuer_builder(&idp));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(e.message().contains("jwks_uri"), "{e}");
    idp.set_document(DISCOVERY_PATH, "<html>");
    let e = first_load_error(issuer_builder(&idp));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert_eq!(idp.requests(JWKS_PATH), 0);
}

#[test]
fn a_discovery_document_repeating_a_member_is_rejected() {
    let idp = idp_with_k1();
    // Which jwks_uri counts would depend on the parser: neither is used.
    let doc = format!(
        r#"{{"issuer":"{}","jwks_uri":"{}","jwks_uri":"https://evil.example/keys"}}"#,
        idp.issuer(),
        idp.jwks_url()
    );
    idp.set_document(DISCOVERY_PATH, doc);
    let e = first_load_error(issuer_builder(&idp));
    assert_eq!(e.kind(), FetchErrorKind::Discovery);
    assert!(
        e.message().contains("repeats the member \"jwks_uri\""),
        "{e}"
    );
    assert_eq!(idp.requests(JWKS_PATH), 0);
}

#[test]
fn a_failing_discovery_endpoint_keeps_its_status_and_is_retried_later() {
    let idp = idp_with_k1();
    idp.set_fault(
        DISCOVERY_PATH,
        Fault::Status {
            code: 503,
            retry_after: Some("120".to_owned()),
        },
    );
    let cache = issuer_builder(&idp).build().expect("valid settings");
    let e = fetch_error(cache.wait_ready(PATIENCE).expect_err("discovery fails"));
    assert_eq!(e.kind(), FetchErrorKind::Status(503));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert!(e.message().contains("openid discovery"), "{e}");
    assert_eq!(idp.requests(JWKS_PATH), 0);
    // Once the endpoint recovers, the next refresh discovers and loads.
    idp.clear_fault(DISCOVERY_PATH);
    cache.refresh_now().expect("discovery and load succeed");
    assert!(cache.get("k1").is_ok());
    assert_eq!(idp.requests(DISCOVERY_PATH), 2);
    assert_eq!(idp.requests(JWKS_PATH), 1);
}

#[test]
fn discovery_runs_again_when_the_key_set_moves() {
    let idp = idp_with_k1();
    let cache = issuer_builder(&idp).build().expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first load");
    // The IdP moves its keys and rotates: the old URL is gone.
    idp.set_document("/keys-v2", jwks_json(&[&es("k2")]));
    idp.set_discovery(&json!({"issuer": idp.issuer(), "jwks_uri": idp.url("/keys-v2")}));
    idp.remove_route(JWKS_PATH);
    cache
        .refresh_now()
        .expect("found at the new URL within the same refresh");
    assert!(cache.get("k2").is_ok());
    assert_eq!(cache.snapshot().generation(), 2);
    assert_eq!(idp.requests(DISCOVERY_PATH), 2);
    assert_eq!(idp.requests(JWKS_PATH), 2);
    assert_eq!(idp.requests("/keys-v2"), 1);
    // From then on the new URL is used directly.
    cache.refresh_now().expect("refresh succeeds");
    assert_eq!(idp.requests(DISCOVERY_PATH), 2);
    assert_eq!(idp.requests("/keys-v2"), 2);
}

#[test]
fn a_404_that_discovery_does_not_explain_fails_once() {
    let idp = idp_with_k1();
    let cache = issuer_builder(&idp).build().expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first load");
    idp.remove_route(JWKS_PATH);
    let e = fetch_error(cache.refresh_now().expect_err("still 404"));
    assert_eq!(e.kind(), FetchErrorKind::Status(404));
    assert!(cache.get("k1").is_ok(), "the old set is still served");
    assert_eq!(cache.snapshot().generation(), 1);
    assert!(eventually(PATIENCE, || cache.status().state
        == RefresherState::BackingOff));
    // One re-discovery, no retry loop.
    assert_eq!(idp.requests(DISCOVERY_PATH), 2);
    assert_eq!(idp.requests(JWKS_PATH), 2);
}
