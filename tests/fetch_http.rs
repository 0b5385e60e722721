//! The HTTPS source against a real rustls server on 127.0.0.1 (the test
//! IdP): one test per transport rule, fault and cache-header case. Each
//! checks what a user sees: the error kind, that the old set is still
//! served, and how many requests the server got.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{es, eventually, fetch_error, PATIENCE};
use jwks_sync::testing::{http_date, jwks_json, Fault, MemorySource, TestIdp, TestKey, JWKS_PATH};
use jwks_sync::{Builder, Error, FetchError, FetchErrorKind, JwksCache, RefresherState, Status};

/// An HTTPS builder for `idp` with short, test-sized timeouts, and backoff
/// too long for a retry to sneak into a test (refresh_now ignores backoff).
fn builder_for(idp: &TestIdp) -> Builder {
    JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .jitter(false)
        .backoff_base(Duration::from_secs(60))
        .backoff_max(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(3))
}

struct Loaded {
    idp: TestIdp,
    cache: JwksCache,
}

/// An IdP publishing `k1` and a cache that loaded it with one request.
fn loaded(configure: impl FnOnce(Builder) -> Builder) -> Loaded {
    let idp = TestIdp::start().expect("test IdP starts");
    let k1 = es("k1");
    idp.set_keys(&[&k1]);
    let cache = configure(builder_for(&idp))
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");
    assert_eq!(idp.requests(JWKS_PATH), 1);
    Loaded { idp, cache }
}

/// Refreshes now, expecting failure; returns the fetch error.
fn failed_refresh(cache: &JwksCache) -> FetchError {
    fetch_error(cache.refresh_now().expect_err("the refresh fails"))
}

/// The status once the refresher has finished its bookkeeping: it wakes
/// `refresh_now` callers before it updates what `status()` reports.
fn settled(cache: &JwksCache) -> Status {
    assert!(eventually(PATIENCE, || cache.status().state
        != RefresherState::Fetching));
    cache.status()
}

fn assert_old_set_served(cache: &JwksCache) {
    assert!(cache.get("k1").is_ok(), "the old key is still served");
    assert_eq!(
        cache.snapshot().generation(),
        1,
        "the old set is still in service"
    );
    assert_eq!(settled(cache).consecutive_failures, 1);
}

/// When the schedule will try again, from now.
fn next_attempt_in(cache: &JwksCache) -> Duration {
    let next = settled(cache).next_refresh.expect("a retry is scheduled");
    next.saturating_duration_since(Instant::now())
}

// ---------------------------------------------------------------- statuses

#[test]
fn status_500_is_retried_with_backoff_and_keeps_the_set() {
    let t = loaded(|b| b);
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Status(500));
    assert!(e.is_transient());
    assert_old_set_served(&t.cache);
    assert!(
        next_attempt_in(&t.cache) <= Duration::from_secs(60),
        "backoff_base, not backoff_max"
    );
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn status_503_retry_after_seconds_delays_the_next_attempt() {
    let t = loaded(|b| b);
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 503,
            retry_after: Some("300".to_owned()),
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Status(503));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(300)));
    assert_old_set_served(&t.cache);
    assert!(
        next_attempt_in(&t.cache) > Duration::from_secs(290),
        "Retry-After beats the 60 s backoff"
    );
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn status_429_retry_after_date_delays_the_next_attempt() {
    let t = loaded(|b| b);
    let now = SystemTime::now();
    t.idp.set_header(JWKS_PATH, "Date", &http_date(now));
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 429,
            retry_after: Some(http_date(now + Duration::from_secs(200))),
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Status(429));
    let delay = e.retry_after().expect("Retry-After parsed");
    assert!(
        delay > Duration::from_secs(190) && delay <= Duration::from_secs(200),
        "{delay:?}"
    );
    assert!(next_attempt_in(&t.cache) > Duration::from_secs(180));
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn status_404_is_not_hammered() {
    let t = loaded(|b| b);
    t.idp.remove_route(JWKS_PATH);
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Status(404));
    assert!(!e.is_transient());
    assert_old_set_served(&t.cache);
    assert!(
        next_attempt_in(&t.cache) > Duration::from_secs(590),
        "4xx waits backoff_max"
    );
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

// ------------------------------------------------------- transport faults

#[test]
fn a_hanging_server_is_cut_off_by_the_response_timeout() {
    let t = loaded(|b| b.response_timeout(Duration::from_millis(300)));
    t.idp
        .set_fault(JWKS_PATH, Fault::Hang(Duration::from_secs(20)));
    let started = Instant::now();
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Timeout, "{e}");
    assert!(e.message().contains("response_timeout"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(e.is_transient());
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn a_dripping_server_is_cut_off_by_the_total_timeout() {
    let t = loaded(|b| b.timeout(Duration::from_millis(600)));
    t.idp
        .set_fault(JWKS_PATH, Fault::Drip(Duration::from_millis(40)));
    let started = Instant::now();
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn a_truncated_body_fails_and_is_retried() {
    let t = loaded(|b| b);
    t.idp.set_fault(JWKS_PATH, Fault::TruncatedBody);
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Connect, "{e}");
    assert!(e.is_transient());
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn an_oversize_body_fails_without_being_read_whole() {
    const HUGE: usize = 32 << 20;
    let t = loaded(|b| b.max_document_bytes(64 * 1024));
    let before = t.idp.body_bytes_sent(JWKS_PATH);
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Oversize {
            bytes: HUGE,
            declared: false,
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::TooLarge, "{e}");
    assert!(e.message().contains("max_document_bytes"), "{e}");
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
    // The client hung up: the server could not push more than what the
    // socket buffers hold, nowhere near the whole body.
    std::thread::sleep(Duration::from_millis(100));
    let sent = t.idp.body_bytes_sent(JWKS_PATH) - before;
    assert!(sent < (HUGE / 2) as u64, "{sent} bytes sent");
}

#[test]
fn an_oversize_content_length_fails_before_the_body() {
    let t = loaded(|b| b);
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Oversize {
            bytes: 300 * 1024,
            declared: true,
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::TooLarge);
    assert!(e.message().contains("declares 307200 bytes"), "{e}");
    assert!(!e.is_transient());
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn a_wrong_content_type_is_refused() {
    let t = loaded(|b| b);
    t.idp.set_fault(
        JWKS_PATH,
        Fault::ContentType("text/html; charset=utf-8".to_owned()),
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::ContentType);
    assert!(e.message().contains("text/html"), "{e}");
    assert!(!e.is_transient());
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn json_content_types_with_parameters_are_accepted() {
    let t = loaded(|b| b);
    for ct in [
        "application/jwk-set+json; charset=utf-8",
        "application/JSON;charset=UTF-8",
    ] {
        t.idp
            .set_fault(JWKS_PATH, Fault::ContentType(ct.to_owned()));
        t.cache.refresh_now().expect(ct);
    }
    assert_eq!(t.cache.snapshot().generation(), 3);
    assert_eq!(t.idp.requests(JWKS_PATH), 3);
}

#[test]
fn a_connection_reset_fails_and_is_retried() {
    let t = loaded(|b| b);
    t.idp.set_fault(JWKS_PATH, Fault::Reset);
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Connect, "{e}");
    assert!(e.is_transient());
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

// ---------------------------------------------------------------- redirects

#[test]
fn a_redirect_to_plain_http_is_refused() {
    let t = loaded(|b| b);
    let plain = TestIdp::start_plain_http().expect("plain server starts");
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Redirect {
            status: 302,
            location: plain.jwks_url(),
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    assert!(e.message().contains("non-https"), "{e}");
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
    assert_eq!(plain.connections(), 0, "the http target is never contacted");
}

#[test]
fn a_redirect_to_another_host_is_refused() {
    let t = loaded(|b| b);
    t.idp.set_document("/moved", jwks_json(&[&es("k2")]));
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Redirect {
            status: 301,
            location: t.idp.url_with_host("localhost", "/moved"),
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    assert!(e.message().contains("allow_redirect_host"), "{e}");
    assert_old_set_served(&t.cache);
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
    assert_eq!(t.idp.requests("/moved"), 0);
}

#[test]
fn a_redirect_to_an_allowed_host_is_followed() {
    // The allow-list holds origins: the other name with the IdP's port.
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k1")]);
    let cache = builder_for(&idp)
        .allow_redirect_host(format!("LOCALHOST:{}", idp.port()))
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");
    idp.set_document("/moved", jwks_json(&[&es("k2")]));
    idp.set_fault(
        JWKS_PATH,
        Fault::Redirect {
            status: 307,
            location: idp.url_with_host("localhost", "/moved"),
        },
    );
    cache.refresh_now().expect("the redirect is followed");
    assert!(cache.get("k2").is_ok());
    assert_eq!(cache.snapshot().generation(), 2);
    assert_eq!(idp.requests(JWKS_PATH), 2);
    assert_eq!(idp.requests("/moved"), 1);
}

#[test]
fn a_redirect_loop_stops_at_max_redirects() {
    let t = loaded(|b| b.max_redirects(2));
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Redirect {
            status: 302,
            location: JWKS_PATH.to_owned(),
        },
    );
    let e = failed_refresh(&t.cache);
    assert_eq!(e.kind(), FetchErrorKind::Redirect);
    assert!(e.message().contains("max_redirects"), "{e}");
    assert_old_set_served(&t.cache);
    // The first load, then the request and two followed redirects.
    assert_eq!(t.idp.requests(JWKS_PATH), 1 + 3);
}

// ------------------------------------------------------------ cache headers

/// A cache over an IdP that sends `headers` with the key set.
fn loaded_with_headers(
    headers: &[(&str, &str)],
    configure: impl FnOnce(Builder) -> Builder,
) -> Loaded {
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k1")]);
    for (name, value) in headers {
        idp.set_header(JWKS_PATH, name, value);
    }
    let cache = configure(builder_for(&idp))
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");
    Loaded { idp, cache }
}

fn lifetime(cache: &JwksCache) -> Duration {
    settled(cache).lifetime.expect("a lifetime after a success")
}

#[test]
fn max_age_sets_the_lifetime() {
    let t = loaded_with_headers(&[("Cache-Control", "public, max-age=600")], |b| b);
    assert_eq!(lifetime(&t.cache), Duration::from_secs(600));
}

#[test]
fn age_is_subtracted_from_max_age() {
    let t = loaded_with_headers(&[("Cache-Control", "max-age=600"), ("Age", "100")], |b| b);
    assert_eq!(lifetime(&t.cache), Duration::from_secs(500));
}

#[test]
fn expires_counts_against_the_server_date() {
    // A server clock far from ours: only Expires - Date matters.
    let date = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let t = loaded_with_headers(
        &[
            ("Date", &http_date(date)),
            ("Expires", &http_date(date + Duration::from_secs(900))),
        ],
        |b| b,
    );
    assert_eq!(lifetime(&t.cache), Duration::from_secs(900));
}

#[test]
fn no_store_and_no_cache_fall_to_the_floor() {
    let t = loaded_with_headers(&[("Cache-Control", "no-store")], |b| {
        b.min_ttl(Duration::from_secs(90))
    });
    assert_eq!(lifetime(&t.cache), Duration::from_secs(90));
    t.idp
        .set_header(JWKS_PATH, "Cache-Control", "no-cache, max-age=600");
    t.cache.refresh_now().expect("refresh succeeds");
    assert_eq!(lifetime(&t.cache), Duration::from_secs(90));
}

#[test]
fn header_lifetimes_are_clamped_to_min_and_max_ttl() {
    let t = loaded_with_headers(&[("Cache-Control", "max-age=5")], |b| {
        b.min_ttl(Duration::from_secs(60))
            .max_ttl(Duration::from_secs(3600))
    });
    assert_eq!(lifetime(&t.cache), Duration::from_secs(60));
    t.idp
        .set_header(JWKS_PATH, "Cache-Control", "max-age=31536000");
    t.cache.refresh_now().expect("refresh succeeds");
    assert_eq!(lifetime(&t.cache), Duration::from_secs(3600));
}

#[test]
fn without_cache_headers_the_interval_counts() {
    let t = loaded_with_headers(&[], |b| b.interval(Duration::from_secs(420)));
    assert_eq!(lifetime(&t.cache), Duration::from_secs(420));
}

#[test]
fn header_use_can_be_turned_off() {
    let t = loaded_with_headers(&[("Cache-Control", "max-age=600")], |b| {
        b.use_cache_headers(false)
            .interval(Duration::from_secs(420))
    });
    assert_eq!(lifetime(&t.cache), Duration::from_secs(420));
}

#[test]
fn etag_revalidation_keeps_the_same_set_and_renews_the_lifetime() {
    let t = loaded_with_headers(
        &[("ETag", "\"v1\""), ("Cache-Control", "max-age=600")],
        |b| b,
    );
    let before = t.cache.snapshot();
    let fetched_before = settled(&t.cache).fetched_at;
    // A failure first: the 304 afterwards must count as a success.
    t.idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    failed_refresh(&t.cache);
    t.idp.clear_fault(JWKS_PATH);
    // The 304 repeats no Cache-Control: the stored max-age still applies.
    t.idp.remove_header(JWKS_PATH, "Cache-Control");
    t.cache.refresh_now().expect("a 304 is a success");

    let request = t.idp.last_request(JWKS_PATH).expect("a request");
    assert_eq!(request.header("if-none-match"), Some("\"v1\""));
    let status = settled(&t.cache);
    assert_eq!(status.not_modified, 1);
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.last_error.is_none());
    assert!(status.fetched_at > fetched_before, "the lifetime restarts");
    assert_eq!(status.lifetime, Some(Duration::from_secs(600)));
    assert!(
        std::sync::Arc::ptr_eq(&before, &t.cache.snapshot()),
        "same published set"
    );
    assert_eq!(t.cache.snapshot().generation(), 1);
    assert_eq!(t.idp.requests(JWKS_PATH), 3);

    // A new document under a new tag replaces the set.
    t.idp.set_keys(&[&es("k2")]);
    t.idp.set_header(JWKS_PATH, "ETag", "\"v2\"");
    t.cache.refresh_now().expect("refresh succeeds");
    assert_eq!(t.cache.snapshot().generation(), 2);
    assert!(t.cache.get("k2").is_ok());
    assert_eq!(settled(&t.cache).not_modified, 1);
}

#[test]
fn last_modified_revalidation_keeps_the_same_set() {
    let stamp = http_date(SystemTime::now() - Duration::from_secs(3600));
    let t = loaded_with_headers(&[("Last-Modified", &stamp)], |b| b);
    let before = t.cache.snapshot();
    t.cache.refresh_now().expect("a 304 is a success");
    let request = t.idp.last_request(JWKS_PATH).expect("a request");
    assert_eq!(request.header("if-modified-since"), Some(stamp.as_str()));
    assert_eq!(request.header("if-none-match"), None);
    assert_eq!(settled(&t.cache).not_modified, 1);
    assert!(std::sync::Arc::ptr_eq(&before, &t.cache.snapshot()));
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

// -------------------------------------------------------------------- trust

#[test]
fn the_test_ca_alone_is_enough_trust() {
    let t = loaded(|b| b.use_built_in_roots(false));
    assert!(t.cache.get("k1").is_ok());
}

#[test]
fn an_unknown_ca_is_rejected_during_the_handshake() {
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k1")]);
    let other = TestIdp::start().expect("another IdP starts");
    // Built-in roots only, and another test CA.
    for builder in [
        JwksCache::builder(idp.jwks_url()),
        JwksCache::builder(idp.jwks_url()).add_root_certificate_pem(other.ca_pem()),
    ] {
        let cache = builder.build().expect("valid settings");
        let e = fetch_error(cache.wait_ready(PATIENCE).expect_err("untrusted"));
        assert_eq!(e.kind(), FetchErrorKind::Tls, "{e}");
        assert!(e.message().contains("UnknownIssuer"), "{e}");
        assert!(e.message().contains("add_root_certificate_pem"), "{e}");
        assert!(cache.get("k1").is_err());
    }
    assert_eq!(
        idp.total_requests(),
        0,
        "no request over an untrusted connection"
    );
    assert_eq!(idp.connections(), 2);
}

#[test]
fn an_spki_pin_match_is_accepted() {
    let t = loaded(|b| b);
    let pinned = builder_for(&t.idp)
        .pin_spki_sha256("sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .pin_spki_sha256(t.idp.spki_sha256())
        .build()
        .expect("valid settings");
    pinned
        .wait_ready(PATIENCE)
        .expect("a backup pin may not match");
    assert!(pinned.get("k1").is_ok());
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
}

#[test]
fn an_spki_pin_mismatch_fails_the_handshake() {
    let t = loaded(|b| b);
    let other = TestIdp::start().expect("another IdP starts");
    t.idp.set_keys(&[&es("k1"), &es("k2")]);
    // A pinned cache over the same server with the wrong pin...
    let pinned = builder_for(&t.idp)
        .pin_spki_sha256(other.spki_sha256())
        .build()
        .expect("valid settings");
    let e = fetch_error(pinned.wait_ready(PATIENCE).expect_err("pin mismatch"));
    assert_eq!(e.kind(), FetchErrorKind::Tls, "{e}");
    assert!(e.message().contains("pin_spki_sha256"), "{e}");
    assert!(pinned.get("k2").is_err());
    // ...never sent a request: only the unpinned cache's first load did.
    assert_eq!(t.idp.requests(JWKS_PATH), 1);
}

#[test]
fn bad_trust_settings_fail_the_build() {
    let idp = TestIdp::start().expect("test IdP starts");
    let config_error = |b: Builder| match b.build() {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    };
    let msg = config_error(JwksCache::builder(idp.jwks_url()).use_built_in_roots(false));
    assert!(msg.contains("no trust anchors"), "{msg}");
    let msg = config_error(JwksCache::builder(idp.jwks_url()).add_root_certificate_pem("not pem"));
    assert!(msg.contains("add_root_certificate_pem"), "{msg}");
    let msg = config_error(JwksCache::builder(idp.jwks_url()).pin_spki_sha256("c2hvcnQ="));
    assert!(msg.contains("pin_spki_sha256"), "{msg}");
    assert_eq!(idp.connections(), 0);
}

// ---------------------------------------------------------------- URL rules

#[test]
fn plain_http_needs_the_dangerous_opt_in_and_loopback() {
    let plain = TestIdp::start_plain_http().expect("plain server starts");
    plain.set_keys(&[&es("k1")]);
    match JwksCache::builder(plain.jwks_url()).build() {
        Err(Error::Config(msg)) => assert!(msg.contains("danger_accept_plain_http"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    match JwksCache::builder("http://idp.example/jwks")
        .danger_accept_plain_http(true)
        .build()
    {
        Err(Error::Config(msg)) => assert!(msg.contains("loopback"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert_eq!(plain.connections(), 0);
    let cache = JwksCache::builder(plain.jwks_url())
        .danger_accept_plain_http(true)
        .build()
        .expect("allowed on loopback");
    cache.wait_ready(PATIENCE).expect("loads over http");
    assert!(cache.get("k1").is_ok());
    assert_eq!(plain.requests(JWKS_PATH), 1);
}

#[test]
fn bad_urls_and_misplaced_knobs_fail_the_build() {
    for url in [
        "not a url",
        "ftp://h/jwks",
        "https://user:pw@h/jwks",
        "/jwks",
    ] {
        assert!(
            matches!(JwksCache::builder(url).build(), Err(Error::Config(_))),
            "{url}"
        );
    }
    let custom = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&es("k1")])))
        .connect_timeout(Duration::from_secs(1))
        .build();
    match custom {
        Err(Error::Config(msg)) => assert!(msg.contains("connect_timeout"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    let cross = JwksCache::builder("https://127.0.0.1:1/jwks")
        .allow_cross_origin_jwks_uri(true)
        .build();
    assert!(matches!(cross, Err(Error::Config(msg)) if msg.contains("from_issuer")));
    let zero = JwksCache::builder("https://127.0.0.1:1/jwks")
        .timeout(Duration::ZERO)
        .build();
    assert!(matches!(zero, Err(Error::Config(msg)) if msg.contains("timeout")));
}

// ---------------------------------------------------------- request hygiene

#[test]
fn requests_name_the_crate_and_carry_no_token_data() {
    let t = loaded(|b| b.unknown_kid_cooldown(Duration::ZERO));
    // A lookup of an unknown kid triggers a refresh of the same URL.
    let secret_kid = "kid-from-an-attackers-token";
    assert!(matches!(
        t.cache.get_or_wait(secret_kid, PATIENCE),
        Err(Error::UnknownKid)
    ));
    assert_eq!(t.idp.requests(JWKS_PATH), 2);
    for request in t.idp.request_log() {
        assert_eq!(request.target, JWKS_PATH, "no query string");
        assert_eq!(
            request.header("user-agent"),
            Some(concat!("jwks-sync/", env!("CARGO_PKG_VERSION")))
        );
        assert!(request.header("authorization").is_none());
        assert!(request.header("cookie").is_none());
        for (name, value) in &request.headers {
            assert!(!value.contains(secret_kid) && !name.contains(secret_kid));
        }
    }
}

#[test]
fn a_tokens_jku_and_x5u_never_cause_a_request() {
    let idp = TestIdp::start().expect("test IdP starts");
    let k1 = es("k1");
    idp.set_keys(&[&k1]);
    let attacker: TestKey = es("k9");
    idp.set_document("/jku", jwks_json(&[&attacker]));
    idp.set_document("/x5u", "-----BEGIN CERTIFICATE-----");
    let cache = builder_for(&idp)
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");

    let claims = serde_json::json!({"sub": "alice", "exp": 4_102_444_800u64});
    for (signer, kid) in [(&k1, "k1"), (&attacker, "k9")] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        header.jku = Some(idp.url("/jku"));
        header.x5u = Some(idp.url("/x5u"));
        let token = signer.sign_with_header(&header, &claims).expect("signs");
        let parsed = jsonwebtoken::decode_header(&token).expect("header parses");
        assert_eq!(parsed.jku.as_deref(), Some(idp.url("/jku").as_str()));
        let lookup = cache.get_or_wait(parsed.kid.as_deref().unwrap_or(""), PATIENCE);
        match kid {
            "k1" => {
                lookup.expect("known kid");
                let verifier = cache.verifier().build().expect("valid settings");
                verifier
                    .verify::<serde_json::Value>(&token)
                    .expect("verifies with the cached key");
            }
            _ => assert!(matches!(lookup, Err(Error::UnknownKid))),
        }
    }
    assert_eq!(idp.requests("/jku"), 0);
    assert_eq!(idp.requests("/x5u"), 0);
    // The unknown kid refreshed the configured URL, nothing else.
    assert_eq!(idp.requests(JWKS_PATH), 2);
    assert_eq!(idp.total_requests(), 2);
}

#[test]
fn dropping_the_idp_unblocks_a_hanging_fetch() {
    let t = loaded(|b| {
        b.response_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(30))
    });
    t.idp
        .set_fault(JWKS_PATH, Fault::Hang(Duration::from_secs(60)));
    let cache = t.cache.clone();
    let started = Instant::now();
    let refresh = std::thread::spawn(move || cache.refresh_now());
    assert!(eventually(PATIENCE, || t.idp.requests(JWKS_PATH) == 2));
    drop(t.idp);
    let e = fetch_error(
        refresh
            .join()
            .expect("no panic")
            .expect_err("connection closed"),
    );
    assert!(e.is_transient(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(t.cache.get("k1").is_ok());
}
