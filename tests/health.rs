//! `Status::health` through a real cache: one signal for `/healthz`, and
//! the wall-clock timestamps (and JSON, with feature `serde`) of `Status`.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use jwks_sync::testing::{jwks_json, MemorySource};
use jwks_sync::{DegradedReason, Error, FailingReason, Health, JwksCache, ManualClock};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn health_follows_an_outage_on_the_manual_clock() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let clock = Arc::new(ManualClock::new());
    let cache = ready(
        builder
            .clock(Arc::clone(&clock))
            .interval(10 * MINUTE)
            .stale_while_error(30 * MINUTE),
    );
    let status = cache.status();
    assert_eq!(status.health(), Health::Healthy);
    assert_eq!(status.health().http_status(), 200);
    assert_eq!(status.health().to_string(), "healthy");

    // A failed refresh within the lifetime: degraded, retrying, since then.
    source.fail();
    clock.advance(MINUTE);
    let before = SystemTime::now();
    assert!(cache.refresh_now().is_err());
    let status = cache.status();
    let Health::Degraded { reason, since } = status.health() else {
        panic!("{:?}", status.health());
    };
    assert_eq!(reason, DegradedReason::Retrying);
    assert_eq!(Some(since), status.failing_since_wall);
    let slack = Duration::from_secs(5);
    assert!(since + slack >= before && since <= SystemTime::now() + slack);
    assert_eq!(status.health().http_status(), 200, "degraded still serves");

    // Past the lifetime, still failing: serving stale since the due time.
    clock.advance(10 * MINUTE);
    let status = cache.status();
    assert_eq!(
        status.health(),
        Health::Degraded {
            reason: DegradedReason::ServingStale,
            since: status.stale_at_wall.expect("a due time"),
        }
    );
    let stale_at = status.stale_at_wall.unwrap();
    let fetched_at = status.fetched_at_wall.unwrap();
    let gap = stale_at.duration_since(fetched_at).unwrap();
    assert!(
        gap.abs_diff(10 * MINUTE) < Duration::from_secs(1),
        "{gap:?}"
    );
    assert!(status
        .health()
        .to_string()
        .starts_with("degraded: serving_stale since 20"));

    // Past lifetime + stale_while_error: failing, 503.
    clock.advance(31 * MINUTE);
    let status = cache.status();
    assert_eq!(
        status.health(),
        Health::Failing {
            reason: FailingReason::Expired
        }
    );
    assert_eq!(status.health().http_status(), 503);
    assert!(status.expires_at_wall.unwrap() <= status.taken_at_wall);

    // Recovery.
    source.heal();
    cache.refresh_now().unwrap();
    assert_eq!(cache.status().health(), Health::Healthy);
    assert_eq!(cache.status().failing_since_wall, None);
}

#[test]
fn a_cache_that_never_loaded_is_failing_not_ready() {
    let source = MemorySource::new(jwks_json(&[]));
    source.fail();
    let cache = JwksCache::from_fetcher(source)
        .backoff_base(Duration::from_secs(60))
        .backoff_max(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(matches!(
        cache.wait_ready(PATIENCE),
        Err(Error::NotReady { .. })
    ));
    let health = cache.status().health();
    assert_eq!(
        health,
        Health::Failing {
            reason: FailingReason::NotReady
        }
    );
    assert_eq!(health.to_string(), "failing: not_ready");
    assert_eq!(health.http_status(), 503);
}

#[cfg(feature = "serde")]
#[test]
fn status_serializes_to_json_with_wall_clock_times_and_health() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder.name("json-status"));
    cache.with_key("k", |_| ()).unwrap();
    source.fail();
    assert!(cache.refresh_now().is_err());
    let json = serde_json::to_value(cache.status()).unwrap();
    assert_eq!(json["name"], "json-status");
    assert_eq!(json["health"]["status"], "degraded");
    assert_eq!(json["health"]["reason"], "retrying");
    assert_eq!(json["generation"], 1);
    assert_eq!(json["hits"], 1);
    assert_eq!(json["consecutive_failures"], 1);
    assert_eq!(json["state"], "backing_off");
    assert_eq!(json["refreshes"]["manual"], 1);
    assert!(json["last_error"]
        .as_str()
        .unwrap()
        .contains("memory source is down"));
    for field in [
        "taken_at",
        "fetched_at",
        "stale_at",
        "expires_at",
        "failing_since",
    ] {
        let t = json[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {json}"));
        // RFC 3339, UTC, milliseconds: 2026-01-02T03:04:05.678Z
        assert_eq!(t.len(), 24, "{field}: {t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
    assert!(json["age_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(json["lifetime_seconds"].as_f64(), Some(1200.0));
    let healthy = serde_json::to_value(Health::Healthy).unwrap();
    assert_eq!(healthy, serde_json::json!({"status": "healthy"}));
}
