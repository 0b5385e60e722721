//! Issue 10, the file store: a warm start from disk with no network, a
//! corrupt file ignored, two processes writing one file never tearing it.

mod fleet_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_support::node::{node_main, Node};
use fleet_support::{TempDir, PATIENCE};
use jwks_sync::testing::{jwks_json, KeyAlg, TestIdp, TestKey, JWKS_PATH};
use jwks_sync::{Fleet, JwksCache, ManualClock, RejectReason};

/// The node side of this binary (returns at once in a normal run).
#[test]
fn store_node() {
    node_main();
}

fn idp() -> TestIdp {
    let idp = TestIdp::start().expect("test IdP");
    idp.set_keys(&[&TestKey::generate(KeyAlg::Es256, "k1").expect("key")]);
    idp
}

fn builder(url: &str, ca: &str, fleet: &Fleet) -> jwks_sync::Builder {
    JwksCache::builder(url)
        .add_root_certificate_pem(ca)
        .interval(Duration::from_secs(60))
        .fleet(fleet.clone())
}

#[test]
fn warm_start_from_disk_with_no_network() {
    let dir = TempDir::new("warm");
    let idp = idp();
    let (url, ca) = (idp.jwks_url(), idp.ca_pem().to_owned());
    let first = Fleet::directory(&dir.0).source_id("disk");
    let cache = builder(&url, &ca, &first).build().expect("settings");
    cache.wait_ready(PATIENCE).expect("first fetch");
    drop(cache);
    assert_eq!(first.stats().snapshots_saved, 1);
    drop(idp); // the source is gone: nothing listens at `url` any more
    std::thread::sleep(Duration::from_millis(300));

    let fleet = Fleet::directory(&dir.0).source_id("disk");
    let cache = builder(&url, &ca, &fleet).build().expect("settings");
    // Published during build: no wait, no fetch.
    assert!(cache.get("k1").is_ok());
    let s = fleet.stats();
    assert_eq!((s.warm_starts, s.origin_fetches), (1, 0), "{s:?}");
    // Scheduled from the snapshot's age, not from this start.
    let status = cache.status();
    let age = status.age.expect("a set is loaded");
    assert!(age >= Duration::from_millis(300), "age {age:?}");
    let due_in = status
        .stale_at
        .expect("due time")
        .saturating_duration_since(Instant::now());
    assert!(due_in <= Duration::from_millis(59_700), "due in {due_in:?}");
}

#[test]
fn a_corrupt_or_truncated_file_is_ignored() {
    let dir = TempDir::new("corrupt");
    let idp = idp();
    let fleet = Fleet::directory(&dir.0).hmac_key(b"k");
    let cache = builder(&idp.jwks_url(), idp.ca_pem(), &fleet)
        .build()
        .expect("settings");
    cache.wait_ready(PATIENCE).expect("ready");
    drop(cache);
    let path = dir.snapshot_file().expect("a snapshot file");
    let good = std::fs::read(&path).expect("read");

    let cases = [
        (b"\0\xffnot a snapshot".to_vec(), RejectReason::Malformed),
        (good[..good.len() / 2].to_vec(), RejectReason::Truncated),
    ];
    for (bytes, reason) in cases {
        std::fs::write(&path, &bytes).expect("corrupt the file");
        let before = fleet.stats();
        let cache = builder(&idp.jwks_url(), idp.ca_pem(), &fleet)
            .build()
            .expect("settings");
        cache.wait_ready(PATIENCE).expect("ready from the IdP");
        let after = fleet.stats();
        assert_eq!(
            after.rejected(reason),
            before.rejected(reason) + 2,
            "{reason:?}"
        );
        assert_eq!(after.warm_starts, before.warm_starts);
        assert_eq!(after.origin_fetches, before.origin_fetches + 1);
        assert!(cache.get("k1").is_ok());
        // The file is whole again.
        let source = format!("url {}", idp.jwks_url());
        fleet
            .check_snapshot(&std::fs::read(&path).expect("read"), &source)
            .expect("rewritten");
    }
}

#[test]
fn two_processes_writing_one_file_never_tear_it() {
    let dir = TempDir::new("torn");
    let idp = TestIdp::start().expect("test IdP");
    // A document of some size, so a torn write would show.
    let keys: Vec<TestKey> = (0..40)
        .map(|i| TestKey::generate(KeyAlg::Es256, &format!("key-{i:02}")).expect("key"))
        .collect();
    idp.set_jwks(jwks_json(&keys.iter().collect::<Vec<_>>()));
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, idp.ca_pem()).expect("write CA");
    let store = dir.0.join("store");
    let vars = vec![
        ("NODE_URL", idp.jwks_url()),
        ("NODE_CA", ca.display().to_string()),
        ("NODE_DIR", store.display().to_string()),
        ("NODE_GUARD_MS", "0".to_owned()),
    ];
    let mut nodes = [
        Node::start("store_node", &vars),
        Node::start("store_node", &vars),
    ];
    for node in &mut nodes {
        node.send("refresh-loop 60");
        node.expect("ok");
    }
    let fleet = Fleet::directory(&store).hmac_key(fleet_support::node::SECRET);
    let source = format!("url {}", idp.jwks_url());
    let path = store.join(
        std::fs::read_dir(&store)
            .expect("store dir")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().ends_with(".snapshot"))
            .expect("a snapshot after the nodes' first fetch")
            .file_name(),
    );
    let (mut reads, mut torn) = (0u64, Vec::new());
    let deadline = Instant::now() + PATIENCE;
    // Each node answers `looped <failures>` when its loop ends.
    let mut looped = [None, None];
    while looped.iter().any(Option::is_none) && Instant::now() < deadline {
        let bytes = std::fs::read(&path).expect("the file is always there");
        reads += 1;
        if let Err(r) = fleet.check_snapshot(&bytes, &source) {
            torn.push((bytes.len(), r));
        }
        for (node, answer) in nodes.iter().zip(looped.iter_mut()) {
            if answer.is_none() {
                *answer = node.try_expect("looped");
            }
        }
    }
    assert_eq!(
        looped,
        [Some("looped 0".to_owned()), Some("looped 0".to_owned())]
    );
    let saved: u64 = nodes.iter_mut().map(|n| n.stats().saved).sum();
    println!(
        "two writers: {saved} saves, {reads} reads, {} torn",
        torn.len()
    );
    assert!(
        torn.is_empty(),
        "{} torn reads, the first: {:?}",
        torn.len(),
        &torn[..torn.len().min(3)]
    );
    assert!(saved >= 40, "only {saved} saves");
    assert!(reads >= 20, "only {reads} reads");
    assert!(idp.requests(JWKS_PATH) >= saved);
}

#[test]
fn a_kid_missing_from_an_older_shared_snapshot_is_not_locked_out() {
    // B fetched a moment ago; the IdP then adds k2 (a replace rotation) and
    // A, asked for k2, is served B's snapshot (recent, within the guard)
    // instead of fetching. That snapshot predates the question, so it must
    // not put k2 in A's negative cache (5 minutes by default): once A's
    // cooldown has passed, the next miss fetches and finds k2.
    let dir = TempDir::new("negative");
    let idp = idp();
    let fleet = Fleet::directory(&dir.0).guard(Duration::from_secs(30));
    // A's cooldown runs on a manual clock: it passes when the test says.
    let clock = Arc::new(ManualClock::new());
    let a = builder(&idp.jwks_url(), idp.ca_pem(), &fleet)
        .clock(Arc::clone(&clock))
        .unknown_kid_cooldown(Duration::from_secs(30))
        .build()
        .expect("settings");
    a.wait_ready(PATIENCE).expect("ready");
    let b = builder(&idp.jwks_url(), idp.ca_pem(), &fleet)
        .build()
        .expect("settings");
    b.wait_ready(PATIENCE).expect("ready");
    clock.advance(Duration::from_secs(30)); // past A's first cooldown
    b.refresh_now().expect("B fetches");
    let fetches = idp.requests(JWKS_PATH);
    let k1 = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    let k2 = TestKey::generate(KeyAlg::Es256, "k2").expect("key");
    idp.set_keys(&[&k1, &k2]);

    assert!(
        a.get_or_wait("k2", PATIENCE).is_err(),
        "B's snapshot has no k2"
    );
    assert_eq!(idp.requests(JWKS_PATH), fetches, "served from B's snapshot");
    // Inside A's cooldown: no fetch, whatever the negative cache says.
    assert!(a.get("k2").is_err());
    assert_eq!(idp.requests(JWKS_PATH), fetches);
    // Once A's cooldown has passed, the next miss fetches and finds k2: it
    // was not negatively cached by the older snapshot.
    clock.advance(Duration::from_secs(30));
    assert!(
        a.get_or_wait("k2", PATIENCE).is_ok(),
        "k2 locked out of A by an older snapshot"
    );
    assert_eq!(idp.requests(JWKS_PATH), fetches + 1);
}
