//! Model checks of the real refresher protocol (compiled with
//! `--cfg jwks_sync_loom`): publish order, demand coalescing, waiter
//! wake-ups, failure reporting and shutdown. Loom cannot model time, so
//! every wait here blocks until notified: a lost wake-up is a deadlock loom
//! reports.
#![cfg(jwks_sync_loom)]

use std::sync::OnceLock;
use std::time::Duration;

use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::{Error, JwksCache};
use loom::thread;

const LONG: Duration = Duration::from_secs(3600);

struct Docs {
    one: String,
    two: String,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let k1 = TestKey::generate(KeyAlg::Es256, "k1").expect("keygen");
        let k2 = TestKey::generate(KeyAlg::Es256, "k2").expect("keygen");
        Docs {
            one: jwks_json(&[&k1]),
            two: jwks_json(&[&k1, &k2]),
        }
    })
}

fn cache(source: &MemorySource) -> JwksCache {
    let cache = JwksCache::from_fetcher(source.clone())
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .expect("valid");
    cache.wait_ready(LONG).expect("first fetch");
    cache
}

#[test]
fn publish_vs_read() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        source.set_document(docs().two.clone());
        let reader = {
            let cache = cache.clone();
            thread::spawn(move || {
                // Either set serves k1, whole: never a torn or empty view.
                let generation = cache.snapshot().generation();
                assert!(generation == 1 || generation == 2);
                cache.with_key("k1", |k| k.kid().map(str::to_owned))
            })
        };
        assert_eq!(cache.refresh_now(), Ok(()));
        assert_eq!(reader.join().expect("reader"), Ok(Some("k1".to_owned())));
        assert!(
            cache.get("k2").is_ok(),
            "published before refresh_now returned"
        );
    });
}

#[test]
fn concurrent_misses_coalesce_into_one_fetch() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        source.set_document(docs().two.clone());
        let other = {
            let cache = cache.clone();
            thread::spawn(move || cache.get_or_wait("k2", LONG).map(|_| ()))
        };
        let mine = cache.get_or_wait("k2", LONG).map(|_| ());
        let theirs = other.join().expect("thread");
        assert_eq!(mine, Ok(()));
        assert_eq!(theirs, Ok(()));
        assert_eq!(source.fetches(), 2, "initial + one for both misses");
    });
}

#[test]
fn waiter_racing_a_publish_is_not_lost() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        source.set_document(docs().two.clone());
        let waiter = {
            let cache = cache.clone();
            thread::spawn(move || cache.get_or_wait("k2", LONG).map(|_| ()))
        };
        assert_eq!(cache.refresh_now(), Ok(()));
        // Whichever fetch it joined or caused, it saw k2: no lost wake-up
        // (that would hang: loom reports the deadlock).
        assert_eq!(waiter.join().expect("waiter"), Ok(()));
        assert!(source.fetches() <= 3);
    });
}

#[test]
fn failure_wakes_every_waiter() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        source.fail();
        let other = {
            let cache = cache.clone();
            thread::spawn(move || cache.refresh_now())
        };
        let mine = cache.refresh_now();
        assert!(matches!(mine, Err(Error::Fetch(_))), "{mine:?}");
        let theirs = other.join().expect("thread");
        assert!(matches!(theirs, Err(Error::Fetch(_))), "{theirs:?}");
        assert!(cache.get("k1").is_ok(), "the good set stays");
    });
}

#[test]
fn drop_during_a_fetch_stops_and_joins() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        let other = {
            let cache = cache.clone();
            thread::spawn(move || {
                let result = cache.refresh_now();
                drop(cache);
                result
            })
        };
        drop(cache);
        // Either handle may be the last; whichever it is joins the refresher.
        assert_eq!(other.join().expect("thread"), Ok(()));
    });
}

#[test]
fn refresh_now_waits_for_a_fetch_started_after_it() {
    loom::model(|| {
        let source = MemorySource::new(docs().one.clone());
        let cache = cache(&source);
        let other = {
            let cache = cache.clone();
            thread::spawn(move || cache.refresh_now())
        };
        let mine = cache.refresh_now();
        assert_eq!(mine, Ok(()));
        assert_eq!(other.join().expect("thread"), Ok(()));
        // Each call was served by a fetch that started after it: one they
        // shared, or one each (a MANUAL demand kept across a fetch in
        // flight is not lost: that would hang, and loom reports it).
        let fetches = source.fetches();
        assert!(fetches == 2 || fetches == 3, "{fetches}");
    });
}

#[test]
fn cached_reader_never_goes_back_to_an_older_set() {
    // The per-thread snapshot protocol alone (local.rs): a publisher thread
    // stores set 2 and bumps the sequence while this thread, whose snapshot
    // holds set 1, reads twice; once the publish is known to have happened
    // (join), the next read must not serve the cached set 1.
    loom::model(|| {
        let published = loom::sync::Arc::new(
            jwks_sync::__loom::Published::new(docs().one.as_bytes()).expect("valid"),
        );
        assert_eq!(published.read("k2"), (1, false), "snapshot of set 1");
        let publisher = {
            let published = loom::sync::Arc::clone(&published);
            thread::spawn(move || published.publish(docs().two.as_bytes(), 2))
        };
        let first = published.read("k2");
        let second = published.read("k2");
        // Each read sees one whole set (its generation and keys agree) ...
        for (generation, has_k2) in [first, second] {
            assert_eq!(has_k2, generation == 2, "{first:?} {second:?}");
        }
        // ... and never an older one after a newer.
        assert!(second.0 >= first.0, "{first:?} then {second:?}");
        publisher.join().expect("publisher").expect("valid");
        assert_eq!(published.read("k2"), (2, true), "stale snapshot served");
    });
}
