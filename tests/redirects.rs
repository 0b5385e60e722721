//! Redirects against the real loopback IdP: `Location` is resolved as RFC
//! 3986 says (through the `url` crate), and the allow-list compares
//! origins (scheme, host, port), not hosts.
mod common;

use std::time::Duration;

use common::{es, fetch_error, PATIENCE};
use jwks_sync::testing::{jwks_json, Fault, TestIdp};
use jwks_sync::{Builder, FetchErrorKind, JwksCache};

fn builder(url: String, idp: &TestIdp) -> Builder {
    JwksCache::builder(url)
        .add_root_certificate_pem(idp.ca_pem())
        .jitter(false)
        .backoff_base(Duration::from_secs(60))
        .backoff_max(Duration::from_secs(600))
        .timeout(Duration::from_secs(3))
}

fn redirect(idp: &TestIdp, path: &str, location: &str) {
    idp.set_fault(
        path,
        Fault::Redirect {
            status: 302,
            location: location.to_owned(),
        },
    );
}

#[test]
fn relative_locations_are_resolved_per_rfc_3986() {
    let idp = TestIdp::start().expect("test IdP starts");
    let doc = jwks_json(&[&es("k1")]);
    idp.set_document("/keys", doc.clone());
    idp.set_document("/a/keys", doc);
    for (location, resolved) in [
        ("../keys", "/keys"),
        ("./keys", "/a/keys"),
        ("keys", "/a/keys"),
    ] {
        let before = idp.requests(resolved);
        redirect(&idp, "/a/old", location);
        let cache = builder(idp.url("/a/old"), &idp)
            .build()
            .expect("valid settings");
        cache
            .wait_ready(PATIENCE)
            .expect("the redirect is followed");
        assert!(cache.get("k1").is_ok());
        assert_eq!(idp.requests(resolved), before + 1, "{location}");
    }
    let targets: Vec<String> = idp.request_log().into_iter().map(|r| r.target).collect();
    assert!(!targets.iter().any(|t| t.contains("./")), "{targets:?}");
}

#[test]
fn a_query_only_location_keeps_the_path() {
    let idp = TestIdp::start().expect("test IdP starts");
    // The fault matches the path whatever the query: the second request
    // is redirected again and the fetch stops at max_redirects.
    redirect(&idp, "/a/old", "?v=2");
    let cache = builder(idp.url("/a/old"), &idp)
        .max_redirects(1)
        .build()
        .expect("valid settings");
    let e = fetch_error(cache.wait_ready(PATIENCE).expect_err("a redirect loop"));
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    let targets: Vec<String> = idp.request_log().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/a/old", "/a/old?v=2"]);
}

#[test]
fn the_same_host_on_another_port_is_another_origin() {
    let idp = TestIdp::start().expect("test IdP starts");
    let other = TestIdp::start().expect("second IdP starts");
    other.set_document("/moved", jwks_json(&[&es("k2")]));
    // Same host (127.0.0.1), another port.
    redirect(&idp, "/keys", &other.url("/moved"));
    let e = fetch_error(
        builder(idp.url("/keys"), &idp)
            .add_root_certificate_pem(other.ca_pem())
            .build()
            .expect("valid settings")
            .wait_ready(PATIENCE)
            .expect_err("refused"),
    );
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    assert!(e.message().contains("allow_redirect_host"), "{e}");
    assert_eq!(other.total_requests(), 0, "the other origin is never asked");

    // A bare host means https on 443: not this port either.
    let bare = builder(idp.url("/keys"), &idp)
        .add_root_certificate_pem(other.ca_pem())
        .allow_redirect_host("127.0.0.1")
        .build()
        .expect("valid settings");
    let e = fetch_error(bare.wait_ready(PATIENCE).expect_err("refused"));
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    assert_eq!(other.total_requests(), 0);

    // host:port, or the origin itself, allows exactly that origin.
    for allowed in [format!("127.0.0.1:{}", other.port()), other.url("")] {
        let before = other.requests("/moved");
        let cache = builder(idp.url("/keys"), &idp)
            .add_root_certificate_pem(other.ca_pem())
            .allow_redirect_host(allowed.clone())
            .build()
            .expect("valid settings");
        cache
            .wait_ready(PATIENCE)
            .expect("the redirect is followed");
        assert!(cache.get("k2").is_ok(), "{allowed}");
        assert_eq!(other.requests("/moved"), before + 1);
    }
}

#[test]
fn a_malformed_allow_list_entry_fails_the_build() {
    let idp = TestIdp::start().expect("test IdP starts");
    for bad in ["https://h/path", "ftp://h", "h:99999"] {
        let e = builder(idp.url("/keys"), &idp)
            .allow_redirect_host(bad)
            .build()
            .expect_err("refused");
        assert!(e.to_string().contains("allow_redirect_host"), "{bad}: {e}");
    }
}
