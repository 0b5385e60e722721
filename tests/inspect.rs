//! `Builder::inspect`: one fetch for tools, reporting the caching headers
//! and the lifetime a cache with the same settings would use.

mod common;

use std::time::Duration;

use jwks_sync::testing::{TestIdp, JWKS_PATH};
use jwks_sync::{Error, FileFetcher, JwksCache, KeySet};

#[test]
fn reports_headers_body_and_the_clamped_lifetime() {
    let idp = TestIdp::start().expect("idp");
    let key = common::es("k1");
    idp.set_keys(&[&key]);
    idp.set_max_age(30);
    idp.set_header(JWKS_PATH, "ETag", "\"v1\"");
    let inspect = |min_ttl: u64| {
        JwksCache::builder(idp.jwks_url())
            .add_root_certificate_pem(idp.ca_pem())
            .min_ttl(Duration::from_secs(min_ttl))
            .inspect()
            .expect("fetch succeeds")
    };
    let seen = inspect(60);
    assert_eq!(seen.header_lifetime, Some(Duration::from_secs(30)));
    assert_eq!(seen.lifetime, Duration::from_secs(60), "clamped to min_ttl");
    assert_eq!(inspect(1).lifetime, Duration::from_secs(30));
    let names: Vec<&str> = seen.cache_headers.iter().map(|(n, _)| *n).collect();
    assert!(names.contains(&"cache-control") && names.contains(&"etag"));
    assert!(names.contains(&"date"), "the IdP always sends Date");
    let set = KeySet::from_slice(&seen.body).expect("the body is the key set");
    assert!(set.get("k1").is_some());
    assert_eq!(idp.requests(JWKS_PATH), 2, "one request per inspect");
    let sent = idp.last_request(JWKS_PATH).expect("a request");
    assert_eq!(sent.header("if-none-match"), None, "unconditional");
}

#[test]
fn a_failed_fetch_and_a_file_source_are_errors() {
    let idp = TestIdp::start().expect("idp");
    idp.set_fault(
        JWKS_PATH,
        jwks_sync::testing::Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let err = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .inspect()
        .expect_err("503");
    assert!(matches!(err, Error::Fetch(_)), "{err}");
    let err = JwksCache::from_fetcher(FileFetcher::new("/nonexistent"))
        .inspect()
        .expect_err("not a URL");
    assert!(matches!(err, Error::Config(_)), "{err}");
}
