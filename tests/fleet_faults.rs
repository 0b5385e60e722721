//! Issue 10, faults: Redis killed, restarted, paused, full, answering
//! garbage, and tampered snapshots. A real redis-server, a real HTTPS IdP,
//! a verifier thread that must never fail meanwhile.

mod fleet_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_support::redis::RedisServer;
use fleet_support::PATIENCE;
use jwks_sync::testing::{KeyAlg, TestIdp, TestKey};
use jwks_sync::{Error, Fleet, JwksCache, RejectReason};

const SECRET: &[u8] = b"fleet faults secret";

fn idp_with(kid: &str) -> TestIdp {
    let idp = TestIdp::start().expect("test IdP");
    idp.add_signing_key(TestKey::generate(KeyAlg::Es256, kid).expect("key"));
    idp
}

fn cache(idp: &TestIdp, fleet: &Fleet) -> JwksCache {
    let cache = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .interval(Duration::from_secs(60))
        .unknown_kid_cooldown(Duration::from_millis(100))
        .fleet(fleet.clone())
        .build()
        .expect("settings");
    cache.wait_ready(PATIENCE).expect("ready");
    cache
}

/// Verifies a token every 2 ms until stopped; counts failures.
struct Verifying {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

fn keep_verifying(idp: &TestIdp, cache: &JwksCache) -> Verifying {
    let token = idp.mint(&idp.claims("alice", "api", 600)).expect("token");
    let verifier = cache
        .verifier()
        .issuer(idp.issuer())
        .audience("api")
        .build()
        .expect("verifier");
    let (stop, ok, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
    let thread = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            match verifier.verify::<serde_json::Value>(&token) {
                Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                Err(_) => f.fetch_add(1, Ordering::Relaxed),
            };
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    Verifying {
        stop,
        ok,
        failed,
        thread,
    }
}

impl Verifying {
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("verifier thread");
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn redis_trouble_never_stops_verification() {
    let mut redis = RedisServer::start();
    let idp = idp_with("k1");
    let fleet = Fleet::redis(redis.url())
        .hmac_key(SECRET)
        .source_id("faults")
        .redis_timeout(Duration::from_millis(300));
    let cache = cache(&idp, &fleet);
    let verifying = keep_verifying(&idp, &cache);
    assert!(!redis.get("jwks-sync:faults:snapshot").is_empty());

    // Killed: the refresh goes to the IdP alone.
    redis.kill();
    let fetched = fleet.stats().origin_fetches;
    cache.refresh_now().expect("refresh without Redis");
    let s = fleet.stats();
    assert!(s.alone && s.store_errors >= 1, "{s:?}");
    assert_eq!(s.origin_fetches, fetched + 1);

    // Restarted (empty): the next refresh rejoins and saves again.
    redis.restart();
    cache.refresh_now().expect("refresh after restart");
    let s = fleet.stats();
    assert!(!s.alone, "{s:?}");
    let stored = redis.get("jwks-sync:faults:snapshot");
    let info = fleet
        .check_snapshot(&stored, "faults")
        .expect("a valid snapshot");
    assert!(info.expires_at > info.stale_at);

    // Paused (SIGSTOP): every call times out; the refresh still succeeds,
    // within a few timeouts.
    redis.pause();
    let errors = fleet.stats().store_errors;
    let started = Instant::now();
    cache.refresh_now().expect("refresh with Redis paused");
    let took = started.elapsed();
    let s = fleet.stats();
    assert!(s.alone && s.store_errors > errors, "{s:?}");
    assert!(took < Duration::from_secs(8), "refresh took {took:?}");
    redis.resume();
    cache.refresh_now().expect("refresh after SIGCONT");
    assert!(!fleet.stats().alone);

    // Full: writes fail with OOM; reads still work.
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let errors = fleet.stats().store_errors;
    cache.refresh_now().expect("refresh with Redis full");
    assert!(fleet.stats().store_errors > errors);
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    cache.refresh_now().expect("refresh with room again");
    assert!(!fleet.stats().alone);

    let (ok, failed) = verifying.finish();
    assert!(ok > 0);
    assert_eq!(
        failed, 0,
        "verification failed {failed} times while Redis misbehaved"
    );
}

#[test]
fn garbage_from_redis_means_working_alone() {
    // A "Redis" that answers every connection with an HTTP response.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 256];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n<html>");
        }
    });
    let idp = idp_with("k1");
    let fleet = Fleet::redis(format!("redis://127.0.0.1:{port}/"))
        .hmac_key(SECRET)
        .redis_timeout(Duration::from_millis(300));
    let cache = cache(&idp, &fleet);
    assert!(cache.get("k1").is_ok());
    let s = fleet.stats();
    assert!(s.alone && s.store_errors >= 1, "{s:?}");
    assert_eq!((s.snapshots_used, s.origin_fetches), (0, 1), "{s:?}");
}

#[test]
fn a_redis_fleet_needs_a_key() {
    let idp = idp_with("k1");
    let result = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .fleet(Fleet::redis("redis://127.0.0.1:1/"))
        .build();
    assert!(matches!(result, Err(Error::Config(msg)) if msg.contains("hmac_key")));
}

#[test]
fn tampered_snapshots_are_rejected_and_never_published() {
    let redis = RedisServer::start();
    let honest = idp_with("k1");
    let evil = idp_with("evil");
    let key = "jwks-sync:honest:snapshot";
    let fleet = Fleet::redis(redis.url())
        .hmac_key(SECRET)
        .source_id("honest");
    let cache = cache(&honest, &fleet);
    let verifying = keep_verifying(&honest, &cache);
    let good = redis.get(key);
    fleet.check_snapshot(&good, "honest").expect("valid");
    let text = String::from_utf8(good.clone()).expect("text up to the body");

    // Authentic snapshots of the evil set, for another source id, and for
    // this one under the wrong key.
    let other = Fleet::redis(redis.url())
        .hmac_key(SECRET)
        .source_id("other");
    drop(self::cache(&evil, &other));
    let other_source = redis.get("jwks-sync:other:snapshot");
    let scratch = RedisServer::start();
    let wrong = Fleet::redis(scratch.url())
        .hmac_key(b"not the fleet's key")
        .source_id("honest");
    drop(self::cache(&evil, &wrong));
    let wrong_key = scratch.get(key);

    let expires = text
        .split("\"expires_at_ms\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .expect("expires_at_ms in the header")
        .to_owned();
    let extended_ms: u64 = expires.parse::<u64>().expect("number") + 86_400_000;
    let cases: Vec<(&str, Vec<u8>, RejectReason)> = vec![
        (
            "extended deadline",
            text.replacen(&expires, &extended_ms.to_string(), 1)
                .into_bytes(),
            RejectReason::BadMac,
        ),
        ("wrong key", wrong_key, RejectReason::BadMac),
        ("other source", other_source, RejectReason::OtherSource),
        (
            "truncated",
            good[..good.len() - 20].to_vec(),
            RejectReason::Truncated,
        ),
        (
            "future version",
            text.replacen("jwks-sync-snapshot 1", "jwks-sync-snapshot 9", 1)
                .into_bytes(),
            RejectReason::Version,
        ),
        (
            "garbage",
            b"{\"keys\":[]}".to_vec(),
            RejectReason::Malformed,
        ),
    ];
    for (name, bytes, reason) in cases {
        let before = fleet.stats();
        redis.set(key, &bytes);
        cache.refresh_now().expect(name);
        let after = fleet.stats();
        assert!(
            after.rejected(reason) > before.rejected(reason),
            "{name}: not counted as {reason:?}: {after:?}"
        );
        assert_eq!(
            after.snapshots_used, before.snapshots_used,
            "{name} was used"
        );
        assert!(
            cache.get("evil").is_err(),
            "{name}: the evil key was published"
        );
        assert!(cache.get("k1").is_ok(), "{name}");
        // The refresh fetched from the IdP and put a good snapshot back.
        fleet
            .check_snapshot(&redis.get(key), "honest")
            .unwrap_or_else(|r| panic!("{name}: stored snapshot left bad ({r:?})"));
    }
    let (ok, failed) = verifying.finish();
    assert!(ok > 0);
    assert_eq!(failed, 0);
}
