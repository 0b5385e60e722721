//! Fail closed on every path: no setting can panic or kill the refresher,
//! deadlines hold whatever happens to the refresher thread, an oversized
//! document is rejected whole. Time is a shared `ManualClock`: advancing it
//! wakes the refresher, so nothing here sleeps on a timer.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use jwks_sync::testing::{jwks_json, MemorySource, TestIdp};
use jwks_sync::{
    AdvanceHook, Builder, Clock, Error, JwksCache, KeySetError, ManualClock, RefresherState,
};

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
/// The documented ceiling of every `Duration` setting.
const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

type Knob = fn(Builder, Duration) -> Builder;

/// Every `Duration` setting of the builder that applies to a custom source.
const SCHEDULE_KNOBS: [(&str, Knob); 11] = [
    ("interval", |b, d| b.interval(d)),
    ("min_refresh_interval", |b, d| b.min_refresh_interval(d)),
    ("unknown_kid_cooldown", |b, d| b.unknown_kid_cooldown(d)),
    ("negative_cache_ttl", |b, d| b.negative_cache_ttl(d)),
    ("stale_while_error", |b, d| b.stale_while_error(d)),
    ("backoff_base", |b, d| b.backoff_base(d)),
    ("backoff_max", |b, d| b.backoff_max(d)),
    ("expired_wait", |b, d| b.expired_wait(d)),
    ("refresh_timeout", |b, d| b.refresh_timeout(d)),
    ("min_ttl", |b, d| b.min_ttl(d)),
    ("max_ttl", |b, d| b.max_ttl(d)),
];

/// The HTTP source's `Duration` settings.
const HTTP_KNOBS: [(&str, Knob); 3] = [
    ("connect_timeout", |b, d| b.connect_timeout(d)),
    ("response_timeout", |b, d| b.response_timeout(d)),
    ("timeout", |b, d| b.timeout(d)),
];

fn config_error(builder: Builder) -> Option<String> {
    match builder.build() {
        Err(Error::Config(msg)) => Some(msg),
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => None,
    }
}

/// A cache over a memory source on a shared manual clock.
fn on_clock(
    builder: impl FnOnce(Builder) -> Builder,
) -> (MemorySource, Arc<ManualClock>, JwksCache) {
    let clock = Arc::new(ManualClock::new());
    let (source, b) = source_and_builder(&[&es("k")]);
    let cache = ready(builder(b.clock(Arc::clone(&clock))));
    (source, clock, cache)
}

#[test]
fn every_duration_setting_past_the_ceiling_is_rejected_by_name() {
    for (name, knob) in SCHEDULE_KNOBS {
        for value in [Duration::MAX, CENTURY + SECOND] {
            let (_, builder) = source_and_builder(&[&es("k")]);
            let msg = config_error(knob(builder, value))
                .unwrap_or_else(|| panic!("{name}({value:?}) was accepted"));
            assert!(msg.contains(name), "{name}: {msg}");
        }
    }
    for (name, knob) in HTTP_KNOBS {
        let builder = JwksCache::builder("https://127.0.0.1:9/jwks.json");
        let msg = config_error(knob(builder, Duration::MAX))
            .unwrap_or_else(|| panic!("{name}(MAX) was accepted"));
        assert!(msg.contains(name), "{name}: {msg}");
    }
}

#[test]
fn zero_is_rejected_where_it_makes_no_sense_and_works_elsewhere() {
    for (name, knob) in SCHEDULE_KNOBS {
        let (source, builder) = source_and_builder(&[&es("k")]);
        let must_be_positive = matches!(
            name,
            "interval" | "backoff_base" | "backoff_max" | "refresh_timeout" | "min_ttl" | "max_ttl"
        );
        match knob(builder, Duration::ZERO).build() {
            Err(Error::Config(msg)) => {
                assert!(must_be_positive, "{name}(0) rejected: {msg}");
                assert!(msg.contains(name), "{name}: {msg}");
            }
            Err(other) => panic!("{name}(0): {other:?}"),
            Ok(cache) => {
                assert!(!must_be_positive, "{name}(0) accepted");
                cache.wait_ready(PATIENCE).expect("ready");
                assert!(cache.get("k").is_ok(), "{name}(0)");
                assert_eq!(cache.refresh_now(), Ok(()), "{name}(0)");
                assert!(source.fetches() >= 2);
            }
        }
    }
    for (name, knob) in HTTP_KNOBS {
        let builder = JwksCache::builder("https://127.0.0.1:9/jwks.json");
        let msg = config_error(knob(builder, Duration::ZERO))
            .unwrap_or_else(|| panic!("{name}(0) was accepted"));
        assert!(msg.contains(name), "{name}: {msg}");
    }
}

#[test]
fn a_century_in_any_setting_works_and_time_running_past_it_kills_nothing() {
    for (name, knob) in SCHEDULE_KNOBS {
        if name == "min_refresh_interval" {
            // Past the (default) interval: rejected by name, the only other
            // acceptable answer.
            let (_, builder) = source_and_builder(&[&es("k")]);
            let msg = config_error(knob(builder, CENTURY)).expect("rejected");
            assert!(msg.contains(name), "{msg}");
            continue;
        }
        let (_, clock, cache) = on_clock(|b| knob(b, CENTURY));
        assert!(cache.get("k").is_ok(), "{name}");
        for _ in 0..3 {
            // Past every deadline the setting can make, twice over.
            clock.advance(CENTURY * 2);
            let _ = cache.get("k");
            let _ = cache.get_or_wait("other", 10 * MS_);
        }
        assert_eq!(cache.refresh_now(), Ok(()), "{name}: the refresher lives");
        let status = cache.status();
        assert_eq!(status.stop_reason, None, "{name}");
        assert_ne!(status.state, RefresherState::Stopped, "{name}");
        assert!(
            cache.get("k").is_ok(),
            "{name}: a fresh set after the refresh"
        );
    }
    // The HTTP client takes a century too, and fetches over real TLS.
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(&[&es("k")]);
    let mut builder = JwksCache::builder(idp.jwks_url()).add_root_certificate_pem(idp.ca_pem());
    for (_, knob) in HTTP_KNOBS {
        builder = knob(builder, CENTURY);
    }
    let cache = ready(builder);
    assert!(cache.get("k").is_ok());
    assert_eq!(cache.refresh_now(), Ok(()));
}

const MS_: Duration = Duration::from_millis(1);

#[test]
fn defaults_derived_from_another_setting_follow_it() {
    let k = es("k");
    let builds = |f: fn(Builder) -> Builder| {
        let (_, builder) = source_and_builder(&[&k]);
        f(builder).build().map(drop)
    };
    // A setting the caller never touched must not fail the build.
    assert_eq!(builds(|b| b.interval(SECOND).min_ttl(SECOND)), Ok(()));
    assert_eq!(builds(|b| b.interval(10 * MS_)), Ok(()));
    assert_eq!(builds(|b| b.max_ttl(10 * SECOND)), Ok(()));
    assert_eq!(builds(|b| b.min_ttl(48 * HOUR)), Ok(()));
    assert_eq!(builds(|b| b.backoff_max(100 * MS_)), Ok(()));
    assert_eq!(builds(|b| b.backoff_base(HOUR)), Ok(()));
    // Two settings the caller made that contradict each other are rejected.
    let conflict = builds(|b| b.interval(SECOND).min_refresh_interval(2 * SECOND));
    assert!(
        matches!(&conflict, Err(Error::Config(m)) if m.contains("min_refresh_interval")),
        "{conflict:?}"
    );
}

#[test]
fn advancing_a_manual_clock_wakes_the_refresher() {
    let (source, clock, cache) = on_clock(|b| b.interval(100 * SECOND).background_threshold(0.5));
    assert_eq!(source.fetches(), 1);
    // The background refresh is due at 50 s of clock time, which a real-time
    // timer would reach only in 50 real seconds.
    clock.advance(51 * SECOND);
    assert!(eventually(PATIENCE, || cache.status().generation == 2));
    assert_eq!(cache.status().refreshes.scheduled, 1);
}

/// A manual clock that panics when the refresher thread reads it, once armed.
struct ExplodingClock {
    inner: Arc<ManualClock>,
    armed: AtomicBool,
    thread: &'static str,
}

impl Clock for ExplodingClock {
    fn now(&self) -> Instant {
        if self.armed.load(Ordering::SeqCst) && std::thread::current().name() == Some(self.thread) {
            panic!("clock exploded");
        }
        self.inner.now()
    }
    fn on_advance(&self, wake: AdvanceHook) -> bool {
        self.inner.on_advance(wake)
    }
}

#[test]
fn a_dead_refresher_does_not_make_a_set_immortal() {
    let manual = Arc::new(ManualClock::new());
    let clock = Arc::new(ExplodingClock {
        inner: Arc::clone(&manual),
        armed: AtomicBool::new(false),
        thread: "jwks-dies",
    });
    let (_source, builder) = source_and_builder(&[&es("k")]);
    let cache = ready(
        builder
            .clock(Arc::clone(&clock))
            .thread_name("jwks-dies")
            .interval(60 * SECOND)
            .stale_while_error(60 * SECOND),
    );
    clock.armed.store(true, Ordering::SeqCst);
    manual.advance(SECOND); // wakes the refresher, which reads the clock and dies
    assert!(eventually(PATIENCE, || cache.status().state == RefresherState::Stopped));
    let reason = cache.status().stop_reason.expect("a reason");
    assert!(reason.contains("clock exploded"), "{reason}");
    // Before the deadline the set is still served...
    assert!(cache.get("k").is_ok());
    assert!(cache.with_key("k", |_| ()).is_ok());
    // ...after it (lifetime 60 s + stale 60 s) lookups fail closed at once.
    manual.advance(120 * SECOND);
    assert!(matches!(cache.get("k"), Err(Error::Expired { .. })));
    assert!(matches!(
        cache.with_key("k", |_| ()),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        cache.get_or_wait("k", 10 * MS_),
        Err(Error::Expired { .. })
    ));
    assert_eq!(cache.refresh_now(), Err(Error::Stopped));
}

#[test]
fn a_refresher_stuck_in_its_hook_does_not_make_a_set_immortal() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let hook_state = Mutex::new((Some(entered_tx), release_rx));
    let armed = Arc::new(AtomicBool::new(false));
    let arm = Arc::clone(&armed);
    let (source, clock, cache) = on_clock(move |b| {
        b.interval(60 * SECOND)
            .background_threshold(0.5)
            .stale_while_error(60 * SECOND)
            .on_refresh(move |_| {
                if arm.swap(false, Ordering::SeqCst) {
                    let state = hook_state.lock().expect("hook state");
                    if let Some(tx) = &state.0 {
                        let _ = tx.send(());
                    }
                    let _ = state.1.recv_timeout(PATIENCE * 3);
                }
            })
    });
    armed.store(true, Ordering::SeqCst);
    // The background refresh at 30 s enters the hook and stays there.
    clock.advance(31 * SECOND);
    entered.recv_timeout(PATIENCE).expect("the hook ran");
    assert_eq!(source.fetches(), 2);
    assert!(cache.get("k").is_ok(), "within the lifetime");
    // The second set was fetched at 31 s: its deadline is 31 + 60 + 60 s.
    clock.advance(150 * SECOND);
    assert!(matches!(cache.get("k"), Err(Error::Expired { .. })));
    assert!(matches!(
        cache.with_key("k", |_| ()),
        Err(Error::Expired { .. })
    ));
    release.send(()).expect("hook waiting");
    // Once the hook returns the refresher carries on and recovers.
    assert!(eventually(PATIENCE, || cache.get("k").is_ok()));
}

#[test]
fn a_document_with_more_keys_than_max_keys_is_rejected_whole() {
    let old = es("old");
    let (source, builder) = source_and_builder(&[&old]);
    let cache = ready(builder.max_keys(3));
    let before = cache.snapshot();
    // Like a real IdP with hundreds of keys, its signing keys last.
    let keys: Vec<_> = (0..5).map(|i| es(&format!("k{i}"))).collect();
    source.set_document(jwks_json(&keys.iter().collect::<Vec<_>>()));
    assert_eq!(
        cache.refresh_now(),
        Err(Error::KeySet(KeySetError::TooManyKeys {
            limit: 3,
            entries: 5
        }))
    );
    assert!(Arc::ptr_eq(&before, &cache.snapshot()), "current set stays");
    assert!(cache.get("old").is_ok());
    assert_eq!(cache.get("k0").err(), Some(Error::UnknownKid));
    assert_eq!(cache.status().consecutive_failures, 1);
}
