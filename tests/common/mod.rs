//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::{Builder, Error, FetchError, JwksCache, ManualClock, RefresherState};

/// A generous bound for waits that should finish in milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn key(alg: KeyAlg, kid: &str) -> TestKey {
    TestKey::generate(alg, kid).expect("key generation")
}

/// An ES256 key (fast to generate) under `kid`.
pub fn es(kid: &str) -> TestKey {
    key(KeyAlg::Es256, kid)
}

/// A memory source publishing `keys`, and a builder over it with jitter off.
pub fn source_and_builder(keys: &[&TestKey]) -> (MemorySource, Builder) {
    let source = MemorySource::new(jwks_json(keys));
    let builder = JwksCache::from_fetcher(source.clone()).jitter(false);
    (source, builder)
}

pub fn ready(builder: Builder) -> JwksCache {
    let cache = builder.build().expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch succeeds");
    cache
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `f` on `n` threads released at once by a barrier, each with its own
/// clone of `cache`; returns their results in thread order.
pub fn together<R, F>(n: usize, cache: &JwksCache, f: F) -> Vec<R>
where
    R: Send + 'static,
    F: Fn(&JwksCache) -> R + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (cache, barrier, f) = (cache.clone(), Arc::clone(&barrier), Arc::clone(&f));
            std::thread::spawn(move || {
                barrier.wait();
                f(&cache)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("test thread"))
        .collect()
}

/// The fetch error inside `e` (directly, or as the reason the first load
/// failed); panics on anything else.
pub fn fetch_error(e: Error) -> FetchError {
    match e {
        Error::Fetch(f) => f,
        Error::NotReady {
            last_error: Some(inner),
        } => fetch_error(*inner),
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

/// `wait_ready` in short slices until it reports something other than
/// `Timeout` (or `PATIENCE` passes): for sources that never succeed, where
/// `wait_ready` returns the latest failure when its timeout runs out, and
/// the first failure may take a while to happen on a loaded machine.
pub fn first_failure(cache: &JwksCache) -> Result<(), Error> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let result = cache.wait_ready(Duration::from_millis(100));
        if !matches!(result, Err(Error::Timeout)) || Instant::now() >= deadline {
            return result;
        }
    }
}

/// Waits (bounded polling, never a timed sleep of the schedule) until the
/// refresher of `cache`, on a manual clock, has caught up with that clock:
/// its latest round planned with the clock's current time
/// (`Status::planned_at`), no fetch is in flight, and nothing the schedule
/// planned is at or before now. Every `ManualClock::advance` wakes the
/// refresher; after `settle` what that jump made due has been fetched and
/// published (or has failed), and the set's due and stale marks are set.
pub fn settle(cache: &JwksCache) {
    let caught_up = || {
        let s = cache.status();
        s.state == RefresherState::Stopped
            || (s.state != RefresherState::Fetching
                && s.planned_at.is_some_and(|at| at >= s.taken_at)
                && s.next_refresh.is_none_or(|at| at > s.taken_at))
    };
    assert!(
        eventually(PATIENCE, caught_up),
        "the refresher did not catch up with its clock: {:?}",
        cache.status()
    );
}

/// Moves `clock` forward by `by`, then [`settle`]s `cache`.
pub fn advance(clock: &ManualClock, cache: &JwksCache, by: Duration) {
    clock.advance(by);
    settle(cache);
}
