//! Issue 10, "deadlines are absolute from the original fetch": a document
//! served with an age (`FetchResponse::with_age`, what a fleet snapshot
//! carries) is due, stale and expired at the instants its original fetch
//! set, and the min_ttl clamp applies to the original lifetime, never to
//! what is left of it.

use std::time::{Duration, Instant};

use jwks_sync::testing::{jwks_json, KeyAlg, TestKey};
use jwks_sync::{Fetch, FetchError, FetchRequest, FetchResponse, JwksCache};

/// Serves one document that left its origin `age` ago.
struct Aged {
    body: String,
    age: Duration,
    max_age: Option<Duration>,
}

impl Fetch for Aged {
    fn fetch(&mut self, _request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let mut response = FetchResponse::document(self.body.clone()).with_age(self.age);
        if let Some(max_age) = self.max_age {
            response = response.with_max_age(max_age);
        }
        Ok(response)
    }
}

fn key_set() -> String {
    jwks_json(&[&TestKey::generate(KeyAlg::Es256, "k1").expect("key")])
}

#[test]
fn an_aged_document_keeps_the_deadlines_of_its_original_fetch() {
    let cache = JwksCache::from_fetcher(Aged {
        body: key_set(),
        age: Duration::from_secs(50),
        max_age: None,
    })
    .interval(Duration::from_secs(60))
    .stale_while_error(Duration::from_secs(100))
    .jitter(false)
    .build()
    .expect("settings");
    cache.wait_ready(Duration::from_secs(10)).expect("ready");
    let status = cache.status();
    let now = Instant::now();
    let age = status.age.expect("loaded");
    assert!(age >= Duration::from_secs(50), "age {age:?}");
    let stale_in = status
        .stale_at
        .expect("stale_at")
        .saturating_duration_since(now);
    let expires_in = status
        .expires_at
        .expect("expires_at")
        .saturating_duration_since(now);
    // 60 s lifetime and 100 s of stale-while-error, from 50 s ago.
    assert!(stale_in <= Duration::from_secs(10), "stale in {stale_in:?}");
    assert!(
        expires_in <= Duration::from_secs(110),
        "expires in {expires_in:?}"
    );
    assert!(
        expires_in >= Duration::from_secs(100),
        "expires in {expires_in:?}"
    );
    assert!(cache.get("k1").is_ok());
}

#[test]
fn the_min_ttl_clamp_never_extends_an_aged_document() {
    // The origin granted 30 s; min_ttl raises that to 60 s, counted from
    // the original fetch 50 s ago: due in 10 s, not in 60 s.
    let cache = JwksCache::from_fetcher(Aged {
        body: key_set(),
        age: Duration::from_secs(50),
        max_age: Some(Duration::from_secs(30)),
    })
    .use_cache_headers(true)
    .min_ttl(Duration::from_secs(60))
    .jitter(false)
    .build()
    .expect("settings");
    cache.wait_ready(Duration::from_secs(10)).expect("ready");
    let status = cache.status();
    assert_eq!(status.lifetime, Some(Duration::from_secs(60)));
    let stale_in = status
        .stale_at
        .expect("stale_at")
        .saturating_duration_since(Instant::now());
    assert!(stale_in <= Duration::from_secs(10), "stale in {stale_in:?}");
}
