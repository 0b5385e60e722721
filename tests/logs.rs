//! Log events through `log`, captured by a test logger: each event once,
//! at its level and target, with kids escaped and no token or key material.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use jwks_sync::testing::{jwks_json, TestKey};
use jwks_sync::{Error, FetchError, FetchErrorKind, ManualClock};
use log::{Level, Log, Metadata, Record};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

struct Line {
    level: Level,
    target: String,
    message: String,
}

struct Capture(Mutex<Vec<Line>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0.lock().unwrap().push(Line {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
        });
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(capture).expect("first logger");
        log::set_max_level(log::LevelFilter::Trace);
        capture
    })
}

/// The lines of source `name` (every line starts `source=<name> `) at
/// `level` or more severe, as (level, target, message).
fn lines(name: &str) -> Vec<(Level, String, String)> {
    let prefix = format!("source={name} ");
    capture()
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.message.starts_with(&prefix))
        .map(|l| (l.level, l.target.clone(), l.message.clone()))
        .collect()
}

/// The lines of `name` above debug that contain `text`.
fn events(name: &str, text: &str) -> Vec<(Level, String, String)> {
    lines(name)
        .into_iter()
        .filter(|(level, _, m)| *level <= Level::Info && m.contains(text))
        .collect()
}

fn one(name: &str, text: &str, level: Level, target: &str) -> String {
    let found = events(name, text);
    assert_eq!(
        found.len(),
        1,
        "exactly one {text:?} line: {:#?}",
        lines(name)
    );
    let (l, t, m) = &found[0];
    assert_eq!((*l, t.as_str()), (level, target), "{m}");
    m.clone()
}

/// No line of any test holds these (tokens, key material, hostile kids
/// unescaped).
fn assert_nowhere(secrets: &[&str]) {
    for line in capture().0.lock().unwrap().iter() {
        for secret in secrets {
            assert!(
                !line.message.contains(secret),
                "{secret:?} logged: {}",
                line.message
            );
        }
        assert!(
            !line.message.chars().any(|c| c.is_control()),
            "control character logged: {:?}",
            line.message
        );
    }
}

fn public_x(key: &TestKey) -> String {
    key.jwk()["x"].as_str().expect("EC key").to_owned()
}

#[test]
fn first_set_rotation_and_a_failure_run_are_logged_once_each() {
    capture();
    let hostile = "rot\"\n\u{1b}[31m-".to_owned() + &"x".repeat(100);
    let (k1, k2) = (es("k1"), es(&hostile));
    let (source, builder) = source_and_builder(&[&k1]);
    let cache = ready(builder.name("logs-rotation"));
    let first = one(
        "logs-rotation",
        "first key set published",
        Level::Info,
        "jwks_sync::refresh",
    );
    assert!(
        first.contains("generation 1") && first.contains("\"k1\""),
        "{first}"
    );

    // Rotation: k2 (with a hostile kid) added, then k1 removed.
    source.set_document(jwks_json(&[&k1, &k2]));
    cache.refresh_now().unwrap();
    source.set_document(jwks_json(&[&k2]));
    cache.refresh_now().unwrap();
    let rotations = events("logs-rotation", "key rotation");
    assert_eq!(rotations.len(), 2, "{rotations:#?}");
    for (level, target, _) in &rotations {
        assert_eq!(
            (*level, target.as_str()),
            (Level::Info, "jwks_sync::refresh")
        );
    }
    let added = &rotations[0].2;
    assert!(
        added.contains("added [\"rot\\\"\\u{a}\\u{1b}[31m-xxx"),
        "{added}"
    );
    assert!(added.contains("…\"]"), "a long kid is truncated: {added}");
    assert!(!added.contains(&"x".repeat(70)), "{added}");
    assert!(
        rotations[1].2.contains("removed [\"k1\"]"),
        "{}",
        rotations[1].2
    );

    // A run of three failures: one warning; its summary on recovery.
    source.fail_with(FetchError::new(FetchErrorKind::Status(502), "bad gateway"));
    for _ in 0..3 {
        assert!(cache.refresh_now().is_err());
    }
    let failed = one(
        "logs-rotation",
        "fetch failed",
        Level::Warn,
        "jwks_sync::refresh",
    );
    assert!(
        failed.contains("http_5xx") && failed.contains("generation 3"),
        "{failed}"
    );
    source.heal();
    cache.refresh_now().unwrap();
    let recovered = one(
        "logs-rotation",
        "fetch recovered",
        Level::Info,
        "jwks_sync::refresh",
    );
    assert!(recovered.contains("failed attempts over"), "{recovered}");
    // A second run is a new streak: warned again, once.
    source.fail();
    assert!(cache.refresh_now().is_err());
    assert!(cache.refresh_now().is_err());
    assert_eq!(events("logs-rotation", "fetch failed").len(), 2);
    assert_nowhere(&[&public_x(&k1), &public_x(&k2), &hostile]);
}

#[test]
fn stale_expired_and_fresh_again_are_logged_once_each() {
    capture();
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    // Schedule time is a manual clock: lifetime 60 s, background refresh
    // at 30 s, stale for 120 s more, retries 10 s doubling to 40 s.
    let clock = Arc::new(ManualClock::new());
    let cache = ready(
        builder
            .name("logs-outage")
            .clock(Arc::clone(&clock))
            .interval(60 * SECOND)
            .background_threshold(0.5)
            .min_refresh_interval(Duration::ZERO)
            .stale_while_error(120 * SECOND)
            .backoff_base(10 * SECOND)
            .backoff_max(40 * SECOND),
    );
    let token = k
        .sign(&serde_json::json!({"sub": "alice", "exp": 4_102_444_800u64}))
        .unwrap();
    let verifier = cache.verifier().build().unwrap();
    verifier.verify::<serde_json::Value>(&token).unwrap();
    source.fail();
    // The background refresh fails; nothing about staleness yet.
    advance(&clock, &cache, 30 * SECOND);
    assert_eq!(cache.status().fetch_failures, 1);
    assert!(events("logs-outage", "serving a stale key set").is_empty());
    // Past the lifetime: stale. Past lifetime + stale_while_error: refused.
    advance(&clock, &cache, 31 * SECOND);
    assert!(cache.get("k").is_ok(), "served stale");
    assert!(eventually(PATIENCE, || events(
        "logs-outage",
        "serving a stale key set"
    )
    .len()
        == 1));
    assert!(events("logs-outage", "refusing lookups").is_empty());
    advance(&clock, &cache, 120 * SECOND);
    assert!(matches!(cache.get("k"), Err(Error::Expired { .. })));
    assert!(verifier.verify::<serde_json::Value>(&token).is_err());
    // Readers see the flip as soon as the refresher publishes it; the log
    // line follows a moment later.
    assert!(eventually(PATIENCE, || events(
        "logs-outage",
        "refusing lookups"
    )
    .len()
        == 1));
    let stale = one(
        "logs-outage",
        "serving a stale key set",
        Level::Warn,
        "jwks_sync::health",
    );
    assert!(stale.contains("lookups will be refused in"), "{stale}");
    one(
        "logs-outage",
        "refusing lookups",
        Level::Error,
        "jwks_sync::health",
    );
    one(
        "logs-outage",
        "fetch failed",
        Level::Warn,
        "jwks_sync::refresh",
    );
    source.heal();
    // The next retry is at most backoff_max away.
    advance(&clock, &cache, 40 * SECOND);
    assert!(cache.get("k").is_ok());
    assert!(eventually(PATIENCE, || events(
        "logs-outage",
        "fresh key set again"
    )
    .len()
        == 1));
    one(
        "logs-outage",
        "fresh key set again",
        Level::Info,
        "jwks_sync::health",
    );
    one(
        "logs-outage",
        "fetch recovered",
        Level::Info,
        "jwks_sync::refresh",
    );
    // Still once each after more background cycles (each a fetch).
    let fetches = source.fetches();
    for _ in 0..4 {
        advance(&clock, &cache, 30 * SECOND);
    }
    assert_eq!(source.fetches(), fetches + 4);
    assert_eq!(events("logs-outage", "fresh key set again").len(), 1);
    assert_eq!(events("logs-outage", "serving a stale key set").len(), 1);
    assert_eq!(events("logs-outage", "refusing lookups").len(), 1);
    let signature = token.rsplit('.').next().unwrap();
    assert_nowhere(&[&token, signature, &public_x(&k)]);
}

#[test]
fn lookups_of_attacker_kids_are_never_logged() {
    capture();
    let k = es("k");
    let (_source, builder) = source_and_builder(&[&k]);
    let cache = ready(
        builder
            .name("logs-lookups")
            .unknown_kid_cooldown(Duration::ZERO),
    );
    for i in 0..50 {
        let _ = cache.get_or_wait(&format!("attacker-{i}"), 100 * MS);
    }
    assert_nowhere(&["attacker-"]);
}
