//! The refresh rules with real threads and a counting in-memory source.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use jwks_sync::testing::{jwks_json, MemorySource};
use jwks_sync::{
    Error, Fetch, FetchError, FetchErrorKind, FetchRequest, FetchResponse, JwksCache, KeySetError,
    ManualClock, RefreshStrategy,
};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

/// `builder` on a fresh manual clock, built and loaded.
fn on_clock(builder: jwks_sync::Builder) -> (Arc<ManualClock>, JwksCache) {
    let clock = Arc::new(ManualClock::new());
    let cache = ready(builder.clock(Arc::clone(&clock)));
    (clock, cache)
}

/// How far ahead of the clock the schedule's next fetch is.
fn next_fetch_in(cache: &JwksCache) -> Option<Duration> {
    let status = cache.status();
    status.next_refresh.map(|at| at - status.taken_at)
}

#[test]
fn concurrent_misses_on_a_new_kid_cause_exactly_one_fetch() {
    let old = es("old");
    let new = es("new");
    let (source, builder) = source_and_builder(&[&old]);
    let (clock, cache) = on_clock(builder.unknown_kid_cooldown(SECOND));
    // Past the cooldown that the first fetch started; the clock then
    // stands still, so no second fetch is ever permitted.
    advance(&clock, &cache, SECOND);
    source.set_document(jwks_json(&[&old, &new]));
    source.set_delay(50 * MS); // so that the 64 threads likely overlap the fetch
    let kids = together(64, &cache, |cache| {
        cache
            .get_or_wait("new", PATIENCE)
            .map(|k| k.kid().map(str::to_owned))
    });
    for kid in kids {
        assert_eq!(kid, Ok(Some("new".to_owned())));
    }
    assert_eq!(source.fetches(), 2, "initial + one for all 64 misses");
    let status = cache.status();
    assert_eq!(status.refreshes.unknown_kid, 1);
    assert_eq!(status.generation, 2);
}

#[test]
fn random_unknown_kids_cost_at_most_one_fetch_per_guard_window() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cooldown = Duration::from_secs(1);
    let (clock, cache) = on_clock(builder.unknown_kid_cooldown(cooldown));
    // The guard window of the first fetch is over. Three windows follow, the
    // clock moving one window between floods: one fetch per window.
    for window in 1..=3u64 {
        advance(&clock, &cache, cooldown);
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let cache = cache.clone();
                thread::spawn(move || {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t ^ (window << 32);
                    let mut misses = 0;
                    for _ in 0..25_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        if cache.with_key(&format!("{x:x}"), |_| ()) == Err(Error::UnknownKid) {
                            misses += 1;
                        }
                    }
                    misses
                })
            })
            .collect();
        let misses: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
        assert_eq!(misses, 100_000);
        // The fetch the first miss asked for.
        assert!(eventually(PATIENCE, || source.fetches() == 1 + window));
        settle(&cache);
        let status = cache.status();
        assert_eq!(status.refreshes.unknown_kid, window, "one per window");
        assert_eq!(status.misses, 100_000 * window);
        assert_eq!(status.suppressed_refreshes, (100_000 - 1) * window);
    }
    assert_eq!(source.fetches(), 4);
}

#[test]
fn a_rotation_is_served_after_one_fetch() {
    let a = es("a");
    let b = es("b");
    let (source, builder) = source_and_builder(&[&a]);
    let cache = ready(builder.unknown_kid_cooldown(Duration::ZERO));
    source.set_document(jwks_json(&[&b]));
    let key = cache
        .get_or_wait("b", PATIENCE)
        .expect("new kid after one fetch");
    assert_eq!(key.kid(), Some("b"));
    assert_eq!(source.fetches(), 2);
    assert_eq!(
        cache.get("a").err(),
        Some(Error::UnknownKid),
        "old key retired"
    );
    assert_eq!(cache.snapshot().generation(), 2);
}

#[test]
fn outage_serves_stale_then_fails_closed_then_recovers() {
    // Lifetime 60 s, background refresh at 30 s, stale for 90 s more,
    // retries 10 s doubling to 40 s; all on a manual clock.
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let (clock, cache) = on_clock(
        builder
            .interval(60 * SECOND)
            .background_threshold(0.5)
            .min_refresh_interval(Duration::ZERO)
            .stale_while_error(90 * SECOND)
            .backoff_base(10 * SECOND)
            .backoff_max(40 * SECOND),
    );
    let loaded = cache.status().fetched_at.expect("loaded");
    source.fail();
    // The background refresh (30 s) and its first retry (40 s) fail; past
    // the lifetime (60 s) the old set is served.
    advance(&clock, &cache, 30 * SECOND);
    advance(&clock, &cache, 10 * SECOND);
    advance(&clock, &cache, 21 * SECOND);
    assert!(cache.get("k").is_ok(), "stale-while-error");
    let status = cache.status();
    assert_eq!(status.consecutive_failures, 3, "{status:?}");
    assert_eq!(source.fetches(), 4);
    assert!(matches!(status.last_error, Some(Error::Fetch(_))));
    assert_eq!(status.expires_at, Some(loaded + 150 * SECOND));
    // One tick before lifetime + stale_while_error: still served. At it:
    // fail closed, whatever the refresher is doing.
    clock.advance(loaded + 150 * SECOND - cache.status().taken_at - MS);
    assert!(cache.get("k").is_ok(), "not before the bound");
    clock.advance(MS);
    let Err(Error::Expired { last_error, .. }) = cache.with_key("k", |_| ()) else {
        panic!("expected fail-closed");
    };
    assert!(
        matches!(last_error.as_deref(), Some(Error::Fetch(e)) if e.kind() == FetchErrorKind::Connect)
    );
    settle(&cache);
    assert!(matches!(cache.get("k"), Err(Error::Expired { .. })));
    // The first good fetch recovers, with no help: the next retry is at
    // most backoff_max away.
    source.heal();
    advance(&clock, &cache, 40 * SECOND);
    assert!(cache.get("k").is_ok());
    let status = cache.status();
    assert_eq!(status.consecutive_failures, 0);
    assert_eq!(status.last_error, None);
    assert_eq!(status.generation, 2, "{status:?}");
}

#[test]
fn backoff_grows_across_failures_and_resets_on_success() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    source.fail();
    let clock = Arc::new(ManualClock::new());
    let cache = builder
        .clock(Arc::clone(&clock))
        .backoff_base(20 * MS)
        .backoff_max(160 * MS)
        .build()
        .expect("valid");
    // When the wait runs out the latest failure is the answer.
    let first = first_failure(&cache);
    assert!(
        matches!(
            first,
            Err(Error::NotReady {
                last_error: Some(_)
            })
        ),
        "{first:?}"
    );
    settle(&cache);
    assert_eq!(source.fetches(), 1);
    // 20, 40, 80, 160, 160 ms of clock time (jitter off); never sooner.
    for (n, want) in [20u64, 40, 80, 160, 160].into_iter().enumerate() {
        let want = Duration::from_millis(want);
        assert_eq!(next_fetch_in(&cache), Some(want), "retry {n}");
        advance(&clock, &cache, want - MS);
        assert_eq!(source.fetches(), n as u64 + 1, "not before its time");
        advance(&clock, &cache, MS);
        assert_eq!(source.fetches(), n as u64 + 2, "retry {n} at its time");
    }
    source.heal();
    assert_eq!(next_fetch_in(&cache), Some(160 * MS));
    advance(&clock, &cache, 160 * MS);
    assert!(cache.get("k").is_ok(), "recovers by itself");
    assert_eq!(cache.refresh_now(), Ok(()));
    // Fail again: the first retry is back at the base delay.
    let before = source.fetches();
    source.fail();
    assert_eq!(
        cache
            .refresh_now()
            .map_err(|e| matches!(e, Error::Fetch(_))),
        Err(true)
    );
    settle(&cache);
    assert_eq!(next_fetch_in(&cache), Some(20 * MS));
    advance(&clock, &cache, 20 * MS);
    assert_eq!(source.fetches(), before + 2);
}

#[test]
fn usage_threshold_triggers_a_refresh_and_floods_are_rate_limited() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let (clock, cache) = on_clock(
        builder
            .strategy(RefreshStrategy::Usage)
            .usage_threshold(100)
            .min_refresh_interval(Duration::ZERO),
    );
    for _ in 0..60 {
        cache.with_key("k", |_| ()).expect("hit");
    }
    // Below θ·U = 80 no demand is rung: a round after the hits (woken by a
    // clock tick) finds none and fetches nothing.
    advance(&clock, &cache, MS);
    assert_eq!(source.fetches(), 1, "below θ·U = 80");
    assert_eq!(cache.status().suppressed_refreshes, 0);
    for _ in 0..40 {
        cache.with_key("k", |_| ()).expect("hit");
    }
    assert!(eventually(PATIENCE, || cache.status().refreshes.usage == 1));

    // A flood: 200 000 lookups with U = 100 inside one min_refresh_interval
    // (5 s of a manual clock that stands still meanwhile).
    let (source, builder) = source_and_builder(&[&k]);
    let (clock, cache) = on_clock(
        builder
            .strategy(RefreshStrategy::Usage)
            .usage_threshold(100)
            .min_refresh_interval(Duration::from_secs(5)),
    );
    for _ in 0..200_000 {
        cache.with_key("k", |_| ()).expect("hit");
    }
    // The refresher took the usage demand and held it back.
    assert!(eventually(PATIENCE, || cache.status().suppressed_refreshes >= 1));
    settle(&cache);
    assert_eq!(
        source.fetches(),
        1,
        "the usage trigger waits for min_refresh_interval"
    );
    assert_eq!(cache.status().refreshes.usage, 0);
    // Once the interval has passed, the held-back trigger is served: one
    // fetch for the whole flood.
    clock.advance(Duration::from_secs(5));
    assert!(eventually(PATIENCE, || source.fetches() == 2));
    settle(&cache);
    assert_eq!(cache.status().refreshes.usage, 1);
    assert_eq!(source.fetches(), 2);
}

#[test]
fn background_refresh_fires_three_cycles_in_a_row() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let (clock, cache) = on_clock(
        builder
            .interval(60 * SECOND)
            .background_threshold(0.5)
            .min_refresh_interval(Duration::ZERO),
    );
    let mut fetched_at = cache.status().fetched_at.expect("loaded");
    for cycle in 1..=3u64 {
        // Every 0.5 × 60 s, re-armed after each refresh; not a moment sooner.
        assert_eq!(next_fetch_in(&cache), Some(30 * SECOND));
        advance(&clock, &cache, 30 * SECOND - MS);
        assert_eq!(source.fetches(), cycle, "not before 30 s");
        advance(&clock, &cache, MS);
        assert_eq!(source.fetches(), cycle + 1, "cycle {cycle}");
        let status = cache.status();
        assert_eq!(status.refreshes.scheduled, cycle);
        assert_eq!(status.generation, cycle + 1);
        let at = status.fetched_at.expect("fetched");
        assert_eq!(at - fetched_at, 30 * SECOND);
        fetched_at = at;
    }
    assert!(cache.get("k").is_ok());
}

#[test]
fn background_off_one_fetch_for_all_lookups_of_a_due_set_and_none_without_traffic() {
    let old = es("k");
    let (source, builder) = source_and_builder(&[&old]);
    let (clock, cache) = on_clock(
        builder
            .background_refresh(false)
            .strategy(RefreshStrategy::Time)
            .interval(60 * SECOND),
    );
    // min_refresh_interval stays at its default (30 s): a reader that
    // loaded the due set just before the new one was published rings "due"
    // after the fetch started, and with no interval that late demand would
    // start a second fetch of a set that is no longer due.
    // Three lifetimes pass without lookups.
    for _ in 0..3 {
        advance(&clock, &cache, 60 * SECOND);
    }
    assert_eq!(source.fetches(), 1, "lazy: no lookups, no fetch");
    source.set_delay(50 * MS); // so that the 16 lookups likely overlap the fetch
    let generations = together(16, &cache, |cache| {
        cache.get("k").map(|_| cache.snapshot().generation())
    });
    assert_eq!(source.fetches(), 2, "one fetch for every waiter");
    assert!(generations.iter().all(|g| *g == Ok(2)), "{generations:?}");
    assert_eq!(cache.status().refreshes.due, 1);
}

#[test]
fn a_panicking_fetcher_wakes_every_waiter_with_an_error() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    source.set_delay(50 * MS);
    source.panic_on_fetch();
    for result in together(8, &cache, |cache| cache.refresh_now()) {
        assert!(
            matches!(&result, Err(Error::Fetch(e)) if e.kind() == FetchErrorKind::Panicked),
            "{result:?}"
        );
    }
    assert!(cache.get("k").is_ok(), "the good set stays");
    source.heal();
    assert_eq!(cache.refresh_now(), Ok(()), "the refresher survived");
}

#[test]
fn a_panicking_first_fetch_fails_wait_ready() {
    let source = MemorySource::new("{}");
    source.panic_on_fetch();
    let cache = JwksCache::from_fetcher(source).build().expect("valid");
    // A panic counts as transient: retried within the wait, then reported.
    let result = first_failure(&cache);
    assert!(
        matches!(&result, Err(Error::NotReady { last_error: Some(e) }) if matches!(**e, Error::Fetch(ref f) if f.kind() == FetchErrorKind::Panicked)),
        "{result:?}"
    );
    assert!(matches!(cache.get("k"), Err(Error::NotReady { .. })));
}

fn refresher_threads(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Where an [`ExitProbe`] records the thread it was dropped on.
type DroppedOn = Arc<parking_lot::Mutex<Option<String>>>;

/// A source that records, when the refresher drops it on the way out, the
/// name of the thread it was dropped on. Its drop sleeps first, so a handle
/// that returned before the thread finished (detached instead of joined)
/// would find nothing recorded yet.
///
/// `/proc/self/task` cannot prove a join: Linux may still list a thread there
/// for a moment after `pthread_join` has returned.
struct ExitProbe {
    inner: MemorySource,
    dropped_on: DroppedOn,
}

impl ExitProbe {
    /// A loaded cache over a probed memory source, its refresher thread
    /// named `thread_name`; the source, and where the probe records its drop.
    fn cache(thread_name: &str) -> (MemorySource, JwksCache, DroppedOn) {
        let source = MemorySource::new(jwks_json(&[&es("k")]));
        let dropped_on = DroppedOn::default();
        let probe = Self {
            inner: source.clone(),
            dropped_on: Arc::clone(&dropped_on),
        };
        let cache = ready(
            JwksCache::from_fetcher(probe)
                .jitter(false)
                .thread_name(thread_name),
        );
        (source, cache, dropped_on)
    }
}

impl Fetch for ExitProbe {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        self.inner.fetch(request)
    }
}

impl Drop for ExitProbe {
    fn drop(&mut self) {
        thread::sleep(50 * MS);
        *self.dropped_on.lock() = thread::current().name().map(str::to_owned);
    }
}

#[test]
fn dropping_the_last_handle_joins_the_thread_promptly() {
    let (source, cache, dropped_on) = ExitProbe::cache("jwks-drop-t1");
    let clone = cache.clone();
    assert_eq!(refresher_threads("jwks-drop-t1"), 1);
    drop(cache);
    assert_eq!(clone.refresh_now(), Ok(()), "a clone keeps it running");
    assert_eq!(source.fetches(), 2);
    assert_eq!(*dropped_on.lock(), None);
    let start = Instant::now();
    drop(clone);
    // Promptly: woken by the drop, not at the next scheduled refresh (20 min).
    assert!(start.elapsed() < 2 * SECOND, "{:?}", start.elapsed());
    assert_eq!(
        dropped_on.lock().as_deref(),
        Some("jwks-drop-t1"),
        "the drop returned only after the refresher thread had finished"
    );
}

#[test]
fn dropping_during_a_fetch_waits_for_it_and_fetches_no_more() {
    let (source, cache, dropped_on) = ExitProbe::cache("jwks-drop-t2");
    source.set_delay(100 * MS);
    let c2 = cache.clone();
    let refresh = thread::spawn(move || c2.refresh_now());
    assert!(eventually(PATIENCE, || source.fetches() == 2));
    drop(cache);
    assert_eq!(refresh.join().expect("thread"), Ok(()));
    assert_eq!(dropped_on.lock().as_deref(), Some("jwks-drop-t2"));
    assert_eq!(source.fetches(), 2);
}

#[test]
fn refresh_now_calls_coalesce_into_one_fetch() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    source.set_delay(50 * MS);
    for result in together(8, &cache, |cache| cache.refresh_now()) {
        assert_eq!(result, Ok(()));
    }
    // Each caller gets a fetch that started after its call: the callers
    // that rang before the first fetch started share it, the rest share
    // the next one.
    let manual = cache.status().refreshes.manual;
    assert!((1..=2).contains(&manual), "{manual}");
    assert_eq!(source.fetches(), 1 + manual);
}

#[test]
fn a_bad_or_empty_document_never_replaces_a_good_set() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    let before = cache.snapshot();
    for (doc, want) in [
        (r#"{"keys": []}"#, KeySetError::NoUsableKeys { skipped: 0 }),
        (
            r#"{"keys": [{"kty": "oct", "k": "AAAA"}]}"#,
            KeySetError::NoUsableKeys { skipped: 1 },
        ),
        ("<html>", KeySetError::NotJson("line 1 column 1".into())),
        (r#"{"no": "keys"}"#, KeySetError::NoKeysArray),
    ] {
        source.set_document(doc);
        assert_eq!(cache.refresh_now(), Err(Error::KeySet(want)));
        assert!(cache.get("k").is_ok());
        assert!(
            Arc::ptr_eq(&before, &cache.snapshot()),
            "same set in service"
        );
    }
    assert_eq!(cache.status().consecutive_failures, 4);
}

/// A source answering "not modified" after its first document.
struct RevalidatingSource {
    document: String,
    calls: u32,
}

impl Fetch for RevalidatingSource {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        self.calls += 1;
        if self.calls == 1 {
            assert_eq!(request.validators.etag, None);
            let validators = jwks_sync::Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            };
            return Ok(FetchResponse::document(self.document.clone()).with_validators(validators));
        }
        if request.validators.etag.as_deref() != Some("\"v1\"") {
            return Err(FetchError::new(
                FetchErrorKind::Other,
                "validator not sent back",
            ));
        }
        Ok(FetchResponse::not_modified().with_max_age(Duration::from_secs(600)))
    }
}

#[test]
fn not_modified_keeps_the_same_set_and_renews_its_lifetime() {
    let k = es("k");
    let source = RevalidatingSource {
        document: jwks_json(&[&k]),
        calls: 0,
    };
    let cache = ready(JwksCache::from_fetcher(source).min_ttl(Duration::from_secs(1)));
    let before = cache.snapshot();
    let fetched = cache.status().fetched_at;
    assert_eq!(cache.refresh_now(), Ok(()));
    assert_eq!(cache.refresh_now(), Ok(()), "validators kept across 304s");
    assert!(Arc::ptr_eq(&before, &cache.snapshot()));
    let status = cache.status();
    assert_eq!(status.not_modified, 2);
    assert_eq!(status.generation, 1);
    assert_eq!(status.lifetime, Some(Duration::from_secs(600)));
    assert!(status.fetched_at > fetched, "lifetime renewed");
}

#[test]
fn inconsistent_settings_are_rejected_by_build() {
    let k = es("k");
    for (builder, knob) in [
        (
            source_and_builder(&[&k]).1.background_threshold(1.5),
            "background_threshold",
        ),
        (
            source_and_builder(&[&k]).1.usage_threshold(0),
            "usage_threshold",
        ),
        (
            source_and_builder(&[&k]).1.interval(Duration::ZERO),
            "interval",
        ),
        (
            source_and_builder(&[&k])
                .1
                .interval(MS)
                .min_refresh_interval(Duration::from_secs(1)),
            "min_refresh_interval",
        ),
        (
            source_and_builder(&[&k])
                .1
                .backoff_base(Duration::from_secs(600))
                .backoff_max(Duration::from_secs(60)),
            "backoff_base",
        ),
        (
            source_and_builder(&[&k])
                .1
                .min_ttl(Duration::from_secs(600))
                .max_ttl(Duration::from_secs(60)),
            "min_ttl",
        ),
        (source_and_builder(&[&k]).1.max_keys(0), "max_keys"),
    ] {
        match builder.build() {
            Err(Error::Config(msg)) => assert!(msg.contains(knob), "{msg}"),
            other => panic!("{knob}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn hits_from_more_threads_than_counter_stripes_are_all_counted() {
    // 64 threads own a stripe each; the rest share stripes with `fetch_add`.
    let k = es("k");
    let (_source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    let hits = together(100, &cache, |cache| {
        (0..1000)
            .filter(|_| cache.with_key("k", |_| ()).is_ok())
            .count()
    });
    assert!(hits.iter().all(|&h| h == 1000));
    let s = cache.status();
    assert_eq!((s.lookups, s.hits, s.misses), (100_000, 100_000, 0));
}

#[test]
fn status_counts_lookups() {
    let k = es("k");
    let (_source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    for _ in 0..10 {
        cache.with_key("k", |_| ()).expect("hit");
    }
    for _ in 0..3 {
        let _ = cache.get("nope");
    }
    let s = cache.status();
    assert_eq!((s.lookups, s.hits, s.misses), (13, 10, 3));
    assert_eq!(s.key_count, 1);
    assert_eq!(s.refreshes.initial, 1);
    assert_eq!(
        s.lifetime,
        Some(Duration::from_secs(1200)),
        "the default interval"
    );
    assert!(s.next_refresh.is_some());
}

#[test]
fn on_refresh_reports_rotations_failures_and_not_modified() {
    use jwks_sync::{RefreshCause, RefreshOutcome};
    use std::sync::Mutex;
    let a = es("a");
    let b = es("b");
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let (source, builder) = source_and_builder(&[&a]);
    let cache = ready(builder.on_refresh(move |e| sink.lock().expect("lock").push(e.clone())));
    source.set_document(jwks_json(&[&b]));
    assert_eq!(cache.refresh_now(), Ok(()));
    source.fail();
    assert!(cache.refresh_now().is_err());
    let events = events.lock().expect("lock").clone();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0].cause, RefreshCause::Initial);
    assert!(
        matches!(&events[0].outcome, RefreshOutcome::Updated { generation: 1, added, removed, .. }
        if added == &["a"] && removed.is_empty())
    );
    assert_eq!(events[1].cause, RefreshCause::Manual);
    assert!(
        matches!(&events[1].outcome, RefreshOutcome::Updated { generation: 2, added, removed, .. }
        if added == &["b"] && removed == &["a"])
    );
    let RefreshOutcome::Failed {
        consecutive_failures,
        retry_in,
        error,
    } = &events[2].outcome
    else {
        panic!("expected a failure event: {:?}", events[2]);
    };
    assert_eq!(*consecutive_failures, 1);
    assert!(
        retry_in.is_some_and(|r| r <= Duration::from_secs(1)),
        "{retry_in:?}"
    );
    assert!(matches!(error, Error::Fetch(_)));
}

#[test]
fn a_panicking_hook_does_not_stop_the_refresher() {
    let k = es("k");
    let (_source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder.on_refresh(|_| panic!("hook bug")));
    assert_eq!(cache.refresh_now(), Ok(()));
    assert!(cache.get("k").is_ok());
}

#[test]
fn huge_timeouts_do_not_overflow_and_a_waited_miss_counts_once() {
    let a = es("a");
    let b = es("b");
    let (source, builder) = source_and_builder(&[&a]);
    let cache = builder
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .expect("valid");
    cache.wait_ready(Duration::MAX).expect("ready");
    source.set_document(jwks_json(&[&a, &b]));
    let kid = cache.with_key_or_wait("b", Duration::MAX, |k| k.kid().map(str::to_owned));
    assert_eq!(kid, Ok(Some("b".to_owned())));
    let s = cache.status();
    assert_eq!(
        (s.misses, s.hits),
        (1, 1),
        "one miss, then the hit it waited for"
    );
}
