//! Per-thread cached snapshots on the read path: many caches in one
//! process, threads that come and go, lookups nested in lookups, and a
//! publish seen by the very next lookup of every thread.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use jwks_sync::testing::jwks_json;
use jwks_sync::{Error, JwksCache};

/// More caches than a thread has snapshot slots (16), so some share a slot.
const CACHES: usize = 40;

fn caches() -> Vec<(jwks_sync::testing::MemorySource, JwksCache)> {
    (0..CACHES)
        .map(|i| {
            let (source, builder) = source_and_builder(&[&es(&format!("c{i}-old"))]);
            (source, ready(builder))
        })
        .collect()
}

#[test]
fn many_caches_in_one_thread_each_serve_their_own_set_and_see_every_publish() {
    let caches = caches();
    // Interleaved lookups: caches sharing a slot take turns in it.
    for round in 0..3 {
        for (i, (_, cache)) in caches.iter().enumerate() {
            let kid = format!("c{i}-old");
            assert_eq!(
                cache.with_key(&kid, |k| k.kid().map(str::to_owned)),
                Ok(Some(kid.clone())),
                "round {round}"
            );
            // Another cache's kid is never found through this one.
            let other = format!("c{}-old", (i + 1) % CACHES);
            assert_eq!(cache.get(&other).err(), Some(Error::UnknownKid));
        }
    }
    // Rotate every cache; the very next lookup on this thread sees the new
    // set (its cached snapshot is stale after the publish).
    for (i, (source, cache)) in caches.iter().enumerate() {
        source.set_document(jwks_json(&[&es(&format!("c{i}-new"))]));
        assert_eq!(cache.refresh_now(), Ok(()));
    }
    for (i, (_, cache)) in caches.iter().enumerate() {
        assert!(cache.get(&format!("c{i}-new")).is_ok(), "cache {i}");
        assert_eq!(
            cache.get(&format!("c{i}-old")).err(),
            Some(Error::UnknownKid),
            "cache {i} still served its replaced set"
        );
    }
}

#[test]
fn a_publish_is_seen_by_the_next_lookup_of_every_thread() {
    let old = es("old");
    let new = es("new");
    let (source, builder) = source_and_builder(&[&old]);
    let cache = ready(builder);
    let threads = 8;
    // Two rendezvous: after every thread has cached the old set, and after
    // the publish.
    let cached = Arc::new(Barrier::new(threads + 1));
    let published = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cache, cached, published) =
                (cache.clone(), Arc::clone(&cached), Arc::clone(&published));
            thread::spawn(move || {
                let before = cache.get("old").is_ok() && cache.get("new").is_err();
                cached.wait();
                published.wait();
                let after = cache.get("new").is_ok() && cache.get("old").is_err();
                (before, after)
            })
        })
        .collect();
    cached.wait();
    source.set_document(jwks_json(&[&new]));
    assert_eq!(cache.refresh_now(), Ok(()));
    published.wait();
    for h in handles {
        assert_eq!(h.join().expect("reader"), (true, true));
    }
}

#[test]
fn threads_that_come_and_go_count_every_lookup() {
    let k = es("k");
    let (_source, builder) = source_and_builder(&[&k]);
    let cache = ready(builder);
    let before = cache.status();
    let (threads, lookups) = (200u64, 50u64);
    for _ in 0..threads {
        let cache = cache.clone();
        thread::spawn(move || {
            for _ in 0..lookups {
                assert!(cache.with_key("k", |_| ()).is_ok());
                assert_eq!(cache.with_key("nope", |_| ()), Err(Error::UnknownKid));
            }
        })
        .join()
        .expect("reader");
    }
    let after = cache.status();
    assert_eq!(after.hits - before.hits, threads * lookups);
    assert_eq!(after.misses - before.misses, threads * lookups);
}

#[test]
fn a_lookup_nested_in_a_lookup_sees_a_set_published_meanwhile() {
    let old = es("old");
    let new = es("new");
    let (source, builder) = source_and_builder(&[&old]);
    let cache = ready(builder);
    let (other_source, other_builder) = source_and_builder(&[&es("other")]);
    let other = ready(other_builder);
    let seen = cache.with_key("old", |outer| {
        // The outer lookup holds this thread's snapshot slots while its
        // closure runs: the nested ones take the uncached path.
        source.set_document(jwks_json(&[&new]));
        other_source.set_document(jwks_json(&[&es("other-2")]));
        assert_eq!(cache.refresh_now(), Ok(()));
        assert_eq!(other.refresh_now(), Ok(()));
        let nested = (
            cache.get("new").is_ok(),
            cache.get("old").is_err(),
            other.with_key("other-2", |_| ()).is_ok(),
        );
        (outer.kid().map(str::to_owned), nested)
    });
    assert_eq!(seen, Ok((Some("old".to_owned()), (true, true, true))));
    // And afterwards the cached path serves the new sets.
    assert!(cache.get("new").is_ok());
    assert!(other.get("other-2").is_ok());
}
