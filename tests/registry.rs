//! The registry: many sources on one scheduler thread and a bounded fetch
//! pool, on real threads (memory sources and a loopback HTTPS IdP), with
//! time driven by a manual clock.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use common::{es, eventually, settle, PATIENCE};
use jwks_sync::testing::{jwks_json, Fault, MemorySource, TestIdp, JWKS_PATH};
use jwks_sync::{Error, JwksCache, ManualClock, RefresherState, Registry};

/// The thread-counting tests look at the whole process: run this file's
/// tests one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names (`comm`, 15 bytes at most) of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim_end().to_owned())
        .collect()
}

fn threads_named(prefix: &str) -> usize {
    thread_names()
        .iter()
        .filter(|n| n.starts_with(prefix))
        .count()
}

const INTERVAL: Duration = Duration::from_secs(600);

/// A registry on `clock` with `threads` fetch threads, its threads named
/// `name`.
fn registry(clock: &Arc<ManualClock>, threads: usize, name: &str) -> Registry {
    Registry::builder()
        .fetch_threads(threads)
        .clock(Arc::clone(clock))
        .thread_name(name)
        .build()
        .expect("registry starts")
}

/// Registers `n` memory sources named `t{i}`, each publishing one key
/// under kid `k{i}`, refreshing in the background or not; waits for all
/// first fetches.
fn memory_sources(
    registry: &Registry,
    n: usize,
    background: bool,
) -> Vec<(MemorySource, JwksCache)> {
    let key = es("shared");
    let sources: Vec<_> = (0..n)
        .map(|i| {
            let mut jwk = key.jwk().clone();
            jwk["kid"] = format!("k{i}").into();
            let doc = serde_json::json!({ "keys": [jwk] }).to_string();
            let source = MemorySource::new(doc);
            let cache = registry
                .register(
                    format!("t{i}"),
                    registry
                        .source_from_fetcher(source.clone())
                        .interval(INTERVAL)
                        .background_refresh(background)
                        .jitter(false),
                )
                .expect("registers");
            (source, cache)
        })
        .collect();
    for (_, cache) in &sources {
        cache.wait_ready(PATIENCE).expect("first fetch");
    }
    sources
}

#[test]
fn a_thousand_sources_share_one_scheduler_and_the_pool() {
    let _serial = serial();
    let before = thread_names().len();
    let clock = Arc::new(ManualClock::new());
    let registry = registry(&clock, 4, "reg-thousand");
    let sources = memory_sources(&registry, 1000, false);
    assert_eq!(registry.len(), 1000);
    // One scheduler and four fetch threads, whatever the number of sources.
    assert_eq!(threads_named("reg-thousand"), 5, "{:?}", thread_names());
    let during = thread_names().len();
    assert!(
        during <= before + 5 + 8,
        "{before} threads before, {during} with 1000 sources"
    );
    for (i, (source, cache)) in sources.iter().enumerate() {
        assert_eq!(source.fetches(), 1);
        assert!(cache.get(&format!("k{i}")).is_ok());
        // A key of another source is not here.
        assert!(cache
            .with_key(&format!("k{}", (i + 1) % 1000), |_| ())
            .is_err());
    }
    // Past the lifetime, every source refreshes (background refresh is off:
    // the lookup finds the set due and waits for the one refresh).
    clock.advance(INTERVAL + Duration::from_secs(1));
    // Until its round has seen the jump, a source's set still reads fresh:
    // wait for every source's round, then look up.
    for (_, cache) in &sources {
        settle(cache);
    }
    for (i, (source, cache)) in sources.iter().enumerate() {
        assert!(cache.get(&format!("k{i}")).is_ok());
        assert_eq!(source.fetches(), 2, "source {i}");
    }
    drop(sources);
    drop(registry);
    // Linux may list a joined thread in /proc/self/task a moment longer.
    assert!(
        eventually(PATIENCE, || threads_named("reg-thousand") == 0),
        "joined on drop: {:?}",
        thread_names()
    );
}

#[test]
fn a_hanging_idp_delays_no_other_source() {
    let _serial = serial();
    let clock = Arc::new(ManualClock::new());
    let registry = Registry::builder()
        .fetch_threads(4)
        .clock(Arc::clone(&clock))
        .thread_name("reg-hang")
        .build()
        .expect("registry starts");
    let idp = TestIdp::start().expect("idp");
    let key = es("hk");
    idp.set_keys(&[&key]);
    let hanging = registry
        .register(
            "hanging",
            registry
                .source(idp.jwks_url())
                .add_root_certificate_pem(idp.ca_pem())
                .timeout(Duration::from_secs(60))
                .response_timeout(Duration::from_secs(60))
                .interval(INTERVAL)
                .jitter(false),
        )
        .expect("registers");
    hanging.wait_ready(PATIENCE).expect("first fetch");
    let others = memory_sources(&registry, 999, true);
    idp.set_fault(JWKS_PATH, Fault::Hang(Duration::from_secs(120)));
    let idp_requests = idp.total_requests();
    // The hanging source's background refresh (θ = 0.8) and every other
    // source's are due at once.
    clock.advance(INTERVAL);
    assert!(
        eventually(PATIENCE, || idp.total_requests() > idp_requests),
        "the hanging source's refresh started"
    );
    // Every other source refreshes on the clock's jump (one scheduling
    // tick), while the hanging fetch holds its pool thread.
    for (i, (source, cache)) in others.iter().enumerate() {
        assert!(
            eventually(PATIENCE, || source.fetches() == 2),
            "source {i} refreshed"
        );
        assert!(cache.get(&format!("k{i}")).is_ok());
    }
    assert_eq!(
        hanging.status().state,
        RefresherState::Fetching,
        "still hanging while the others refreshed"
    );
    assert!(hanging.get("hk").is_ok(), "its current set still serves");
    // Dropping the IdP ends the hang; then the registry joins its threads.
    drop(idp);
    drop(others);
    drop(registry);
    assert!(
        eventually(PATIENCE, || threads_named("reg-hang") == 0),
        "{:?}",
        thread_names()
    );
}

#[test]
fn sixty_four_concurrent_misses_on_one_source_cost_one_fetch() {
    let _serial = serial();
    let clock = Arc::new(ManualClock::new());
    let registry = registry(&clock, 4, "reg-miss");
    let sources = memory_sources(&registry, 10, false);
    let (target, cache) = &sources[3];
    let fresh = es("fresh");
    target.set_document(jwks_json(&[&fresh]));
    // Past the unknown-kid cooldown of the first fetches (30 s), well
    // before any set is due.
    clock.advance(Duration::from_secs(31));
    let barrier = Arc::new(std::sync::Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                cache.get_or_wait("fresh", PATIENCE).map(|_| ())
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("thread"), Ok(()));
    }
    assert_eq!(target.fetches(), 2, "initial fetch + one for all 64 misses");
    for (i, (source, _)) in sources.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_eq!(source.fetches(), 1, "source {i} untouched");
    }
}

#[test]
fn register_and_unregister_under_reader_load() {
    let _serial = serial();
    let clock = Arc::new(ManualClock::new());
    let registry = registry(&clock, 2, "reg-churn");
    let key = es("base");
    let doc_for = |name: &str| {
        let mut jwk = key.jwk().clone();
        jwk["kid"] = name.into();
        serde_json::json!({ "keys": [jwk] }).to_string()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let found = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (registry, stop, found) = (registry.clone(), Arc::clone(&stop), Arc::clone(&found));
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) && rounds < 5_000_000 {
                    rounds += 1;
                    let name = format!("n{}", (rounds + r) % 40);
                    if let Some(cache) = registry.get(&name) {
                        // A source only ever serves its own key.
                        match cache.with_key(&name, |k| k.kid().map(str::to_owned)) {
                            Ok(kid) => {
                                assert_eq!(kid.as_deref(), Some(name.as_str()));
                                found.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(Error::Expired { .. } | Error::NotReady { .. }) => {}
                            Err(e) => panic!("{name}: {e:?}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut removed = Vec::new();
    for round in 0..5 {
        let live: Vec<_> = (0..40)
            .map(|i| {
                let name = format!("n{i}");
                let source = MemorySource::new(doc_for(&name));
                let cache = registry
                    .register(&name, registry.source_from_fetcher(source.clone()))
                    .expect("registers");
                cache.wait_ready(PATIENCE).expect("first fetch");
                (name, source, cache)
            })
            .collect();
        assert_eq!(registry.len(), 40, "round {round}");
        for (name, source, cache) in live {
            assert!(registry.unregister(&name));
            assert!(!registry.unregister(&name), "only once");
            removed.push((source, cache));
        }
        assert!(registry.is_empty());
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("reader");
    }
    assert!(
        found.load(Ordering::Relaxed) > 0,
        "readers saw live sources"
    );
    // Unregistered sources fetch no more: not on demand, not on schedule.
    for (source, cache) in &removed {
        assert_eq!(cache.refresh_now(), Err(Error::Stopped));
        assert!(matches!(
            cache.get("n0"),
            Err(Error::Expired { .. } | Error::UnknownKid)
        ));
        assert_eq!(source.fetches(), 1);
    }
    clock.advance(INTERVAL * 10);
    for (source, cache) in &removed {
        assert_eq!(source.fetches(), 1);
        assert_eq!(cache.status().state, RefresherState::Stopped);
    }
    assert!(registry.names().is_empty());
}

#[test]
fn registry_guards() {
    let _serial = serial();
    let registry = Registry::builder()
        .fetch_threads(1)
        .allow_hosts(["127.0.0.1", "*.example.com"])
        .thread_name("reg-guard")
        .build()
        .expect("registry starts");
    let config = |r: Result<JwksCache, Error>| match r {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    };
    // Plain http: rejected, even with the per-source opt-in.
    let msg = config(
        registry.register(
            "plain",
            registry
                .source("http://127.0.0.1:9/jwks.json")
                .danger_accept_plain_http(true),
        ),
    );
    assert!(msg.contains("https"), "{msg}");
    // A host outside the allow-list.
    let msg = config(registry.register("evil", registry.source("https://evil.test/jwks.json")));
    assert!(msg.contains("allow-list"), "{msg}");
    let msg = config(registry.register("bare", registry.source("https://example.com/jwks.json")));
    assert!(msg.contains("allow-list"), "{msg}");
    // An allowed host registers; the name is then taken.
    let idp = TestIdp::start().expect("idp");
    let key = es("g1");
    idp.set_keys(&[&key]);
    let ok = registry
        .register(
            "idp",
            registry
                .source(idp.jwks_url())
                .add_root_certificate_pem(idp.ca_pem()),
        )
        .expect("allowed host");
    ok.wait_ready(PATIENCE).expect("fetches");
    assert!(ok.get("g1").is_ok());
    let msg = config(
        registry.register(
            "idp",
            registry
                .source(idp.jwks_url())
                .add_root_certificate_pem(idp.ca_pem()),
        ),
    );
    assert!(msg.contains("already registered"), "{msg}");
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.names(), vec!["idp".to_owned()]);
    assert_eq!(idp.total_requests(), 1, "rejected sources fetched nothing");

    // require_https(false) still needs the source's own loud opt-in.
    let lax = Registry::builder()
        .fetch_threads(0)
        .require_https(false)
        .build()
        .expect("registry starts");
    let msg = config(lax.register("plain", lax.source("http://127.0.0.1:9/jwks.json")));
    assert!(msg.contains("danger_accept_plain_http"), "{msg}");
    assert!(lax
        .register(
            "plain",
            lax.source("http://127.0.0.1:9/jwks.json")
                .danger_accept_plain_http(true)
        )
        .is_ok());
}

#[test]
fn defaults_apply_under_each_sources_own_settings() {
    let _serial = serial();
    let clock = Arc::new(ManualClock::new());
    let registry = Registry::builder()
        .fetch_threads(1)
        .clock(Arc::clone(&clock))
        .defaults(|b| b.interval(Duration::from_secs(100)).jitter(false))
        .build()
        .expect("registry starts");
    let key = es("d1");
    let doc = jwks_json(&[&key]);
    let (a, b) = (
        MemorySource::new(doc.clone()),
        MemorySource::new(doc.clone()),
    );
    let a_cache = registry
        .register("a", registry.source_from_fetcher(a.clone()))
        .expect("registers");
    let b_cache = registry
        .register(
            "b",
            registry
                .source_from_fetcher(b.clone())
                .interval(Duration::from_secs(1000)),
        )
        .expect("registers");
    a_cache.wait_ready(PATIENCE).expect("ready");
    b_cache.wait_ready(PATIENCE).expect("ready");
    assert_eq!(a_cache.status().lifetime, Some(Duration::from_secs(100)));
    assert_eq!(b_cache.status().lifetime, Some(Duration::from_secs(1000)));
    // A builder that did not get the defaults is refused.
    let err = registry.register("c", JwksCache::from_fetcher(MemorySource::new(doc)));
    assert!(matches!(err, Err(Error::Config(_))), "{err:?}");
    // The registry's clock drives the schedule: a's background refresh
    // comes at 80 s, b's not yet.
    clock.advance(Duration::from_secs(81));
    assert!(eventually(PATIENCE, || a.fetches() == 2));
    assert_eq!(b.fetches(), 1);
}

#[test]
fn a_cache_of_its_own_keeps_exactly_one_thread() {
    let _serial = serial();
    let key = es("s1");
    let source = MemorySource::new(jwks_json(&[&key]));
    let cache = JwksCache::from_fetcher(source.clone())
        .thread_name("solo-cache")
        .build()
        .expect("valid");
    cache.wait_ready(PATIENCE).expect("ready");
    assert_eq!(threads_named("solo-cache"), 1, "{:?}", thread_names());
    drop(cache);
    // Linux may list a joined thread in /proc/self/task a moment longer.
    assert!(
        eventually(PATIENCE, || threads_named("solo-cache") == 0),
        "joined with the last handle: {:?}",
        thread_names()
    );
}

#[test]
fn dropping_the_registry_stops_its_sources() {
    let _serial = serial();
    let clock = Arc::new(ManualClock::new());
    let registry = registry(&clock, 2, "reg-drop");
    let sources = memory_sources(&registry, 3, false);
    drop(registry);
    assert!(
        eventually(PATIENCE, || threads_named("reg-drop") == 0),
        "{:?}",
        thread_names()
    );
    for (i, (source, cache)) in sources.iter().enumerate() {
        assert_eq!(cache.refresh_now(), Err(Error::Stopped));
        // Its set serves until its own deadline, enforced by readers.
        assert!(cache.get(&format!("k{i}")).is_ok());
        assert_eq!(source.fetches(), 1);
    }
}
