//! Waiting where waiting helps, and only there: `wait_ready` over transient
//! failures, `*_or_wait` inside the cooldown, a kid published a moment late,
//! same-kid re-keys, `refresh_now` from callers and from the hook, and kids
//! too long to ever match.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use jwks_sync::testing::{jwks_json, MemorySource, TestKey};
use jwks_sync::{
    Error, Fetch, FetchError, FetchErrorKind, FetchRequest, FetchResponse, JwksCache, ManualClock,
    Verifier, VerifyError,
};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

/// A source that answers with `script` in turn (the last entry repeats).
struct Scripted {
    document: String,
    script: Vec<Option<FetchError>>,
    calls: Arc<AtomicU64>,
}

impl Fetch for Scripted {
    fn fetch(&mut self, _request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
        match &self.script[n.min(self.script.len() - 1)] {
            Some(e) => Err(e.clone()),
            None => Ok(FetchResponse::document(self.document.clone())),
        }
    }
}

/// A scripted source on a manual clock: retries 50 ms of clock time apart,
/// doubling to 100 ms; nothing retries until the test moves the clock.
fn scripted(
    script: Vec<Option<FetchError>>,
) -> (Arc<AtomicU64>, Arc<ManualClock>, jwks_sync::Builder) {
    let calls = Arc::new(AtomicU64::new(0));
    let source = Scripted {
        document: jwks_json(&[&es("k")]),
        script,
        calls: Arc::clone(&calls),
    };
    let clock = Arc::new(ManualClock::new());
    let builder = JwksCache::from_fetcher(source)
        .clock(Arc::clone(&clock))
        .jitter(false)
        .backoff_base(50 * MS)
        .backoff_max(100 * MS);
    (calls, clock, builder)
}

/// Waits until the source was called `n` times and the refresher is idle.
fn called(calls: &AtomicU64, cache: &JwksCache, n: u64) {
    assert!(eventually(PATIENCE, || calls.load(Ordering::SeqCst) == n));
    settle(cache);
    assert_eq!(calls.load(Ordering::SeqCst), n);
}

fn status(code: u16) -> Option<FetchError> {
    Some(FetchError::new(FetchErrorKind::Status(code), "scripted"))
}

#[test]
fn wait_ready_rides_over_a_transient_failure_at_start_up() {
    let (calls, clock, builder) = scripted(vec![status(503), None]);
    let cache = builder.build().expect("valid");
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || cache.wait_ready(PATIENCE))
    };
    // The first fetch failed; the retry waits for its backoff.
    called(&calls, &cache, 1);
    assert!(!waiter.is_finished(), "still waiting over the failure");
    clock.advance(50 * MS);
    assert_eq!(
        waiter.join().expect("waiter"),
        Ok(()),
        "the retry succeeded"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(cache.get("k").is_ok());

    // Same for a first lookup that waits, over two failures.
    let (calls, clock, builder) = scripted(vec![status(503), status(429), None]);
    let cache = builder.build().expect("valid");
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || cache.get_or_wait("k", PATIENCE).map(|_| ()))
    };
    called(&calls, &cache, 1);
    advance(&clock, &cache, 50 * MS);
    called(&calls, &cache, 2);
    assert!(!waiter.is_finished(), "still waiting over two failures");
    clock.advance(100 * MS);
    assert_eq!(waiter.join().expect("waiter"), Ok(()));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn wait_ready_returns_the_last_error_on_timeout_and_early_on_a_permanent_one() {
    let (calls, clock, builder) = scripted(vec![status(503)]);
    let cache = builder.build().expect("valid");
    called(&calls, &cache, 1);
    advance(&clock, &cache, 50 * MS);
    called(&calls, &cache, 2);
    let result = first_failure(&cache);
    assert_eq!(
        fetch_error(result.expect_err("never ready")).kind(),
        FetchErrorKind::Status(503)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2, "no retry before its time");

    // A 404 will not heal in a backoff step: no point waiting ten seconds.
    let (calls, _clock, builder) = scripted(vec![status(404)]);
    let cache = builder.backoff_max(60 * SECOND).build().expect("valid");
    let start = Instant::now();
    let result = cache.wait_ready(PATIENCE);
    assert!(start.elapsed() < PATIENCE / 2, "{:?}", start.elapsed());
    assert_eq!(
        fetch_error(result.expect_err("not ready")).kind(),
        FetchErrorKind::Status(404)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A cache over a memory source on a manual clock, past its first cooldown.
fn on_clock(keys: &[&TestKey], cooldown: Duration) -> (MemorySource, Arc<ManualClock>, JwksCache) {
    let clock = Arc::new(ManualClock::new());
    let (source, builder) = source_and_builder(keys);
    let cache = ready(
        builder
            .clock(Arc::clone(&clock))
            .unknown_kid_cooldown(cooldown)
            .negative_cache_ttl(Duration::from_secs(3600)),
    );
    (source, clock, cache)
}

#[test]
fn get_or_wait_inside_the_cooldown_waits_for_the_next_permitted_fetch() {
    let old = es("old");
    let new = es("new");
    // The first fetch started the cooldown: it ends 5 s of clock time on,
    // within the caller's timeout.
    let (source, clock, cache) = on_clock(&[&old], 5 * SECOND);
    source.set_document(jwks_json(&[&old, &new]));
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache
                .get_or_wait("new", PATIENCE)
                .map(|k| k.kid().map(str::to_owned))
        })
    };
    // The waiter's miss happened inside the cooldown (the clock has not
    // moved): it waits for the cooldown's end, and nothing is fetched yet.
    assert!(eventually(PATIENCE, || cache.status().misses == 1));
    settle(&cache);
    assert_eq!(source.fetches(), 1, "no fetch inside the cooldown");
    assert!(
        !waiter.is_finished(),
        "waiting for the next permitted fetch"
    );
    clock.advance(5 * SECOND);
    assert_eq!(
        waiter.join().expect("waiter"),
        Ok(Some("new".to_owned())),
        "served by the first fetch the cooldown allowed"
    );
    assert_eq!(source.fetches(), 2);
    assert_eq!(cache.status().refreshes.unknown_kid, 1);
}

#[test]
fn get_or_wait_does_not_wait_for_a_fetch_beyond_its_timeout() {
    let (source, _clock, cache) = on_clock(&[&es("old")], 3600 * SECOND);
    // Not `Timeout`: it did not wait for a fetch that cannot come in time.
    assert_eq!(
        cache.get_or_wait("new", 200 * MS).err(),
        Some(Error::UnknownKid)
    );
    assert_eq!(source.fetches(), 1);
}

#[test]
fn a_kid_seen_before_it_was_published_gets_another_chance_after_the_cooldown() {
    let a = es("a");
    let b = es("b");
    let (source, clock, cache) = on_clock(&[&a], 10 * SECOND);
    clock.advance(10 * SECOND);
    // Asked for a moment before the IdP publishes it: one fetch, absent.
    assert_eq!(
        cache.get_or_wait("b", PATIENCE).err(),
        Some(Error::UnknownKid)
    );
    assert_eq!(source.fetches(), 2);
    source.set_document(jwks_json(&[&a, &b]));
    // Inside the cooldown it fails fast (negative cache), without fetching
    // and without waiting for the cooldown.
    for _ in 0..100 {
        assert_eq!(cache.get("b").err(), Some(Error::UnknownKid));
        assert_eq!(
            cache.get_or_wait("b", PATIENCE).err(),
            Some(Error::UnknownKid)
        );
    }
    assert_eq!(source.fetches(), 2);
    // Once the cooldown has passed (the negative TTL is an hour), it asks
    // again: one fetch, and it is found.
    clock.advance(10 * SECOND);
    assert!(cache.get_or_wait("b", PATIENCE).is_ok());
    assert_eq!(source.fetches(), 3);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn token(key: &TestKey) -> String {
    key.sign(&serde_json::json!({"sub": "alice", "exp": unix_now() + 600}))
        .expect("signs")
}

fn verifier(cache: &JwksCache) -> Verifier {
    cache
        .verifier()
        .danger_accept_any_audience()
        .build()
        .expect("valid verifier")
}

#[test]
fn verify_or_wait_inside_the_cooldown_waits_for_the_next_permitted_fetch() {
    let old = es("old");
    let new = es("new");
    let (source, clock, cache) = on_clock(&[&old], SECOND);
    let verifier = verifier(&cache);
    source.set_document(jwks_json(&[&old, &new]));
    let waiter = {
        let token = token(&new);
        thread::spawn(move || {
            verifier
                .verify_or_wait::<serde_json::Value>(&token, PATIENCE)
                .map(|_| ())
        })
    };
    // The waiter's lookup missed inside the cooldown: it waits.
    assert!(eventually(PATIENCE, || cache.status().misses == 1));
    settle(&cache);
    assert_eq!(source.fetches(), 1, "no fetch inside the cooldown");
    assert!(
        !waiter.is_finished(),
        "waiting for the next permitted fetch"
    );
    clock.advance(SECOND);
    assert_eq!(waiter.join().expect("waiter"), Ok(()));
    assert_eq!(source.fetches(), 2);
}

#[test]
fn a_key_replaced_under_the_same_kid_is_picked_up_by_one_guarded_fetch() {
    let before = es("k");
    let after = es("k"); // new material, same kid
    let (source, clock, cache) = on_clock(&[&before], 10 * SECOND);
    let verifier = verifier(&cache);
    clock.advance(10 * SECOND);
    source.set_document(jwks_json(&[&after]));
    let fresh = token(&after);
    assert!(
        verifier
            .verify_or_wait::<serde_json::Value>(&fresh, PATIENCE)
            .is_ok(),
        "retried once against the refreshed set"
    );
    assert_eq!(source.fetches(), 2);
    assert!(verifier.verify::<serde_json::Value>(&fresh).is_ok());
    // Forged signatures under the same kid: at most one fetch per cooldown,
    // whatever the traffic, and no waiting for the cooldown.
    let forged = token(&es("k"));
    for _ in 0..200 {
        assert_eq!(
            verifier.verify::<serde_json::Value>(&forged).err(),
            Some(VerifyError::BadSignature)
        );
        assert_eq!(
            verifier
                .verify_or_wait::<serde_json::Value>(&forged, PATIENCE)
                .err(),
            Some(VerifyError::BadSignature)
        );
    }
    assert_eq!(source.fetches(), 2, "inside the cooldown");
    clock.advance(10 * SECOND);
    for _ in 0..200 {
        let _ = verifier.verify_or_wait::<serde_json::Value>(&forged, PATIENCE);
    }
    assert_eq!(source.fetches(), 3, "one per cooldown");
}

#[test]
fn plain_verify_asks_for_the_re_key_fetch_without_waiting() {
    let before = es("k");
    let after = es("k");
    let (source, clock, cache) = on_clock(&[&before], 10 * SECOND);
    let verifier = verifier(&cache);
    clock.advance(10 * SECOND);
    source.set_document(jwks_json(&[&after]));
    let fresh = token(&after);
    // The first verify fails but asks; a later one succeeds.
    let _ = verifier.verify::<serde_json::Value>(&fresh);
    assert!(eventually(PATIENCE, || verifier
        .verify::<serde_json::Value>(&fresh)
        .is_ok()));
    assert_eq!(source.fetches(), 2);
}

#[test]
fn an_over_long_kid_is_a_miss_that_asks_for_nothing() {
    let (source, builder) = source_and_builder(&[&es("k")]);
    let cache = ready(builder.unknown_kid_cooldown(Duration::ZERO).max_kid_len(64));
    let long = "x".repeat(1 << 20);
    for _ in 0..10 {
        assert_eq!(cache.with_key(&long, |_| ()).err(), Some(Error::UnknownKid));
        assert_eq!(cache.get(&long).err(), Some(Error::UnknownKid));
        assert_eq!(
            cache.get_or_wait(&long, PATIENCE).err(),
            Some(Error::UnknownKid)
        );
        assert_eq!(
            cache.with_key_or_wait(&long, PATIENCE, |_| ()).err(),
            Some(Error::UnknownKid)
        );
    }
    let verifier = verifier(&cache);
    let key = es(&"y".repeat(65));
    assert_eq!(
        verifier
            .verify_or_wait::<serde_json::Value>(&token(&key), PATIENCE)
            .err(),
        Some(VerifyError::UnknownKey)
    );
    // Nothing fetched; and nothing entered the negative cache or closed the
    // guard: a real unknown kid still asks at once.
    assert_eq!(source.fetches(), 1);
    assert_eq!(cache.status().refreshes.unknown_kid, 0);
    assert_eq!(
        cache.status().misses,
        41,
        "every lookup, the verifier's too"
    );
    assert_eq!(
        cache.get_or_wait("z", PATIENCE).err(),
        Some(Error::UnknownKid)
    );
    assert_eq!(source.fetches(), 2);
}

/// A source whose `block`ed fetch waits for `release`, failing once released.
#[derive(Clone)]
struct Held {
    inner: MemorySource,
    state: Arc<Mutex<(bool, Option<mpsc::Sender<()>>)>>,
    release: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

impl Fetch for Held {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let held = {
            let mut state = self.state.lock().expect("state");
            if state.0 {
                state.0 = false;
                if let Some(tx) = state.1.take() {
                    let _ = tx.send(());
                }
                true
            } else {
                false
            }
        };
        if held {
            if let Some(rx) = self.release.lock().expect("release").take() {
                let _ = rx.recv_timeout(PATIENCE);
            }
            return Err(FetchError::new(
                FetchErrorKind::Connect,
                "the held fetch failed",
            ));
        }
        self.inner.fetch(request)
    }
}

#[test]
fn refresh_now_never_returns_the_outcome_of_a_fetch_already_in_flight() {
    let (entered_tx, entered) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let source = MemorySource::new(jwks_json(&[&es("k")]));
    let held = Held {
        inner: source.clone(),
        state: Arc::new(Mutex::new((false, Some(entered_tx)))),
        release: Arc::new(Mutex::new(Some(release_rx))),
    };
    let cache = ready(JwksCache::from_fetcher(held.clone()).jitter(false));
    held.state.lock().expect("state").0 = true;
    // A fetch is in flight (and will fail)...
    let first = {
        let cache = cache.clone();
        thread::spawn(move || cache.refresh_now())
    };
    entered.recv_timeout(PATIENCE).expect("the fetch started");
    // ...when the IdP heals and another caller asks.
    let second = {
        let cache = cache.clone();
        thread::spawn(move || cache.refresh_now())
    };
    // Give the second call a moment to register during the fetch. Not a
    // timing assumption: registered late, it gets its own later fetch all
    // the same, and every assertion below holds; the pause only makes the
    // overlap this test is about the likely order.
    thread::sleep(50 * MS);
    release_tx.send(()).expect("held fetch waiting");
    assert!(matches!(first.join().expect("first"), Err(Error::Fetch(_))));
    assert_eq!(
        second.join().expect("second"),
        Ok(()),
        "its own, later fetch"
    );
    assert_eq!(
        source.fetches(),
        2,
        "initial + the later fetch (the held one is not counted)"
    );
}

/// What `refresh_now` returned inside the hook, and how long it took.
type HookCall = (Result<(), Error>, Duration);

#[test]
fn refresh_now_from_the_hook_schedules_instead_of_stalling_the_refresher() {
    let (source, builder) = source_and_builder(&[&es("k")]);
    let handle: Arc<Mutex<Option<JwksCache>>> = Arc::default();
    let seen: Arc<Mutex<Vec<HookCall>>> = Arc::default();
    let (hook_handle, hook_seen) = (Arc::clone(&handle), Arc::clone(&seen));
    let cache = ready(
        builder
            .refresh_timeout(Duration::from_secs(20))
            .on_refresh(move |_| {
                // Only once, from the first manual refresh on.
                if let Some(cache) = hook_handle.lock().expect("handle").take() {
                    let start = Instant::now();
                    let result = cache.refresh_now();
                    hook_seen
                        .lock()
                        .expect("seen")
                        .push((result, start.elapsed()));
                }
            }),
    );
    *handle.lock().expect("handle") = Some(cache.clone());
    assert_eq!(cache.refresh_now(), Ok(()));
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, Err(Error::OnRefresherThread));
    assert!(seen[0].1 < Duration::from_secs(5), "{:?}", seen[0].1);
    // The fetch it scheduled runs right after the hook.
    assert!(eventually(PATIENCE, || source.fetches() == 3));
    assert!(eventually(PATIENCE, || cache.status().refreshes.manual == 2));
}
