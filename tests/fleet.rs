//! Issue 10, "What it must show": eight real processes sharing one fetch
//! through a real redis-server, against one loopback HTTPS IdP.
//!
//! One test, four phases (each figure is printed, and quoted in the README,
//! "Fleets"):
//! 1. ten intervals: the fleet's IdP fetches vs eight processes alone;
//! 2. restart all eight: zero IdP fetches at start-up;
//! 3. an unknown-kid flood on all eight: about one fetch per cooldown;
//! 4. `kill -9` of the lock holder in the middle of a hanging fetch:
//!    another instance fetches once the lock expires.

mod fleet_support;

use std::time::{Duration, Instant};

use fleet_support::node::{node_main, Node};
use fleet_support::redis::RedisServer;
use fleet_support::{eventually, TempDir, PATIENCE};
use jwks_sync::testing::{Fault, KeyAlg, TestIdp, TestKey, JWKS_PATH};

const NODES: usize = 8;
const NODE_TEST: &str = "fleet_node";
/// The lifetime in phase 1.
const INTERVAL: Duration = Duration::from_secs(1);
const COOLDOWN: Duration = Duration::from_secs(1);
const LOCK_TTL: Duration = Duration::from_secs(3);

/// The node side of this binary (returns at once in a normal run).
#[test]
fn fleet_node() {
    node_main();
}

fn idp_with_key(dir: &TempDir, name: &str) -> (TestIdp, Vec<(&'static str, String)>) {
    let idp = TestIdp::start().expect("test IdP");
    let key = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    idp.set_keys(&[&key]);
    let ca = dir.0.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, idp.ca_pem()).expect("write CA");
    let vars = vec![
        ("NODE_URL", idp.jwks_url()),
        ("NODE_CA", ca.display().to_string()),
        ("NODE_COOLDOWN_MS", COOLDOWN.as_millis().to_string()),
        ("NODE_LOCK_TTL_MS", LOCK_TTL.as_millis().to_string()),
    ];
    (idp, vars)
}

fn start_all(vars: &[(&str, String)]) -> Vec<Node> {
    let handles: Vec<_> = (0..NODES)
        .map(|_| {
            let vars: Vec<(&'static str, String)> =
                vars.iter().map(|(k, v)| (leak(k), v.clone())).collect();
            std::thread::spawn(move || Node::start(NODE_TEST, &vars))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("node start"))
        .collect()
}

/// Waits (up to `PATIENCE`) until `idp` has seen no JWKS request for
/// `window`; returns whether it did.
fn quiet_for(idp: &TestIdp, window: Duration) -> bool {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = idp.requests(JWKS_PATH);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = idp.requests(JWKS_PATH);
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= window {
            return true;
        }
    }
    false
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[test]
fn eight_processes_share_one_fetch() {
    let dir = TempDir::new("fleet");
    let redis = RedisServer::start();
    let (idp, mut vars) = idp_with_key(&dir, "fleet");
    vars.push(("NODE_REDIS", redis.url()));
    let (alone_idp, mut alone_vars) = idp_with_key(&dir, "alone");

    // Phase 1: ten intervals, the fleet and eight lone processes side by side.
    vars.push(("NODE_INTERVAL_MS", INTERVAL.as_millis().to_string()));
    alone_vars.push(("NODE_INTERVAL_MS", INTERVAL.as_millis().to_string()));
    let fleet_start = Instant::now();
    let fleet = start_all(&vars);
    let started_in = fleet_start.elapsed();
    let initial = idp.requests(JWKS_PATH);
    let alone = start_all(&alone_vars);
    let (fleet_before, alone_before) = (idp.requests(JWKS_PATH), alone_idp.requests(JWKS_PATH));
    std::thread::sleep(INTERVAL * 10);
    let fleet_fetches = idp.requests(JWKS_PATH) - fleet_before;
    let alone_fetches = alone_idp.requests(JWKS_PATH) - alone_before;
    println!(
        "phase 1: 8 processes, 10 intervals: {fleet_fetches} IdP fetches with Redis, \
         {alone_fetches} alone; {initial} fetch(es) for 8 cold starts in {started_in:?}"
    );
    drop(alone);
    assert!(initial <= 1, "8 cold starts cost {initial} fetches");
    assert!(
        fleet_fetches <= 12,
        "fleet: {fleet_fetches} fetches in 10 intervals"
    );
    assert!(
        alone_fetches >= 70,
        "8 lone processes fetched only {alone_fetches} times: the comparison is void"
    );
    let mut used = 0;
    for mut node in fleet {
        let s = node.stats();
        used += s.used;
        assert_eq!(s.rejected, 0, "{s:?}");
        assert_eq!(s.errors, 0, "{s:?}");
        node.quit();
    }
    assert!(used >= 60, "snapshots used: {used}");

    // Phase 2: restart all eight, with a long interval: warm from Redis.
    for v in &mut vars {
        if v.0 == "NODE_INTERVAL_MS" {
            v.1 = "30000".to_owned();
        }
    }
    let before = idp.requests(JWKS_PATH);
    let mut fleet = start_all(&vars);
    std::thread::sleep(Duration::from_millis(300));
    let restart_fetches = idp.requests(JWKS_PATH) - before;
    println!("phase 2: restart of 8 processes: {restart_fetches} IdP fetches");
    assert_eq!(restart_fetches, 0);
    for node in &mut fleet {
        let s = node.stats();
        assert_eq!((s.warm, s.origin, s.generation), (1, 0, 1), "{s:?}");
    }

    // Phase 3: every node floods unknown kids for three cooldowns.
    let flood = COOLDOWN * 3;
    let before = idp.requests(JWKS_PATH);
    for node in &mut fleet {
        node.send(&format!("flood {}", flood.as_millis()));
        node.expect("ok");
    }
    std::thread::sleep(flood + Duration::from_millis(200));
    let flood_fetches = idp.requests(JWKS_PATH) - before;
    let windows = flood.as_secs_f64() / COOLDOWN.as_secs_f64();
    println!(
        "phase 3: unknown-kid flood on 8 processes for {windows} cooldowns: \
         {flood_fetches} IdP fetches"
    );
    assert!(
        flood_fetches as f64 <= windows + 1.0,
        "{flood_fetches} fetches in {windows} cooldowns"
    );
    assert!(flood_fetches >= 1, "the flood asked for no fetch at all");

    // Phase 4: the lock holder hangs in its fetch and is killed.
    // A manual refresh may be served by a snapshot younger than the guard
    // (the cooldown): let the flood's last fetch age past it first, so that
    // every survivor has to wait for the takeover's new set.
    assert!(
        quiet_for(&idp, COOLDOWN + Duration::from_millis(250)),
        "the IdP never went quiet after the flood"
    );
    idp.set_fault(JWKS_PATH, Fault::Hang(Duration::from_secs(30)));
    let before = idp.requests(JWKS_PATH);
    let locks_before: Vec<u64> = fleet.iter_mut().map(|n| n.stats().locks).collect();
    let gens_before: Vec<u64> = fleet.iter_mut().map(|n| n.stats().generation).collect();
    for node in &mut fleet {
        node.send("refresh");
        node.expect("ok");
    }
    assert!(
        eventually(PATIENCE, || idp.requests(JWKS_PATH) > before),
        "nobody fetched"
    );
    let holder = (0..NODES)
        .find(|&i| fleet[i].stats().locks > locks_before[i])
        .expect("one node holds the lock");
    assert_eq!(idp.requests(JWKS_PATH), before + 1, "one fetch in flight");
    // The takeover fetch gets a rotated set: survivors show a new generation.
    let k1 = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    let k2 = TestKey::generate(KeyAlg::Es256, "k2").expect("key");
    idp.set_keys(&[&k1, &k2]);
    idp.clear_fault(JWKS_PATH);
    let killed_at = Instant::now();
    fleet[holder].kill();
    assert!(
        eventually(PATIENCE, || idp.requests(JWKS_PATH) > before + 1),
        "no instance took over"
    );
    let takeover = killed_at.elapsed();
    println!("phase 4: holder killed mid-fetch; another instance fetched {takeover:?} later (lock TTL {LOCK_TTL:?})");
    assert!(
        takeover <= LOCK_TTL + Duration::from_secs(2),
        "takeover after {takeover:?}"
    );
    for (i, node) in fleet.iter_mut().enumerate() {
        if i == holder {
            continue;
        }
        let gen_before = gens_before[i];
        let mut last = node.stats();
        let refreshed = eventually(PATIENCE, || {
            last = node.stats();
            last.generation > gen_before
        });
        assert!(refreshed, "node {i} never got the new set: {last:?}");
    }
    let after = idp.requests(JWKS_PATH) - before;
    println!("phase 4: {after} IdP requests in all (the hung one included)");
    assert!(
        after <= 3,
        "{after} requests for one refresh of 7 survivors"
    );
}
