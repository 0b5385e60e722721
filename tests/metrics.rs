//! The `metrics` facade export, read back through a recording recorder:
//! each metric's value after real scenarios, exported by the refresher
//! thread only, with no label value an attacker chose.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::*;
use jwks_sync::testing::{jwks_json, MemorySource};
use jwks_sync::{
    Builder, Error, FetchError, FetchErrorKind, Health, JwksCache, ManualClock, VerifyError,
};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder};
use metrics::{SharedString, Unit};

const SECOND: Duration = Duration::from_secs(1);
/// How often the refresher exports in these tests.
const TICK: Duration = Duration::from_millis(10);

/// Label keys the crate may use; `source` is the only configured value.
const LABEL_KEYS: [&str; 5] = ["source", "cause", "outcome", "reason", "rule"];

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Every series by its rendered key (`name{k="v",...}`, labels sorted),
/// and the threads that registered series of each source.
#[derive(Default)]
struct Recorded {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    labels: Mutex<BTreeSet<(String, String)>>,
    threads: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

struct Rec(&'static Recorded);

fn render(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

impl Rec {
    fn note(&self, key: &Key) -> String {
        let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
        let mut seen = self.0.labels.lock().unwrap();
        let mut source = String::new();
        for (k, v) in &labels {
            seen.insert(((*k).to_owned(), (*v).to_owned()));
            if *k == "source" {
                source = (*v).to_owned();
            }
        }
        let thread = thread::current().name().unwrap_or("unnamed").to_owned();
        self.0
            .threads
            .lock()
            .unwrap()
            .entry(source)
            .or_default()
            .insert(thread);
        render(key.name(), &labels)
    }
}

impl Recorder for Rec {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let k = self.note(key);
        Counter::from_arc(Arc::clone(
            self.0.counters.lock().unwrap().entry(k).or_default(),
        ))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let k = self.note(key);
        Gauge::from_arc(Arc::clone(
            self.0.gauges.lock().unwrap().entry(k).or_default(),
        ))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let k = self.note(key);
        Histogram::from_arc(Arc::clone(
            self.0.histograms.lock().unwrap().entry(k).or_default(),
        ))
    }
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<&'static Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let recorded: &'static Recorded = Box::leak(Box::default());
        metrics::set_global_recorder(Rec(recorded)).expect("first recorder");
        recorded
    })
}

/// Reads the metrics of one source.
struct Source(&'static str);

impl Source {
    fn counter(&self, name: &str, more: &[(&str, &str)]) -> u64 {
        let mut labels = vec![("source", self.0)];
        labels.extend_from_slice(more);
        recorded()
            .counters
            .lock()
            .unwrap()
            .get(&render(name, &labels))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum over every series of `name` for this source.
    fn sum(&self, name: &str) -> u64 {
        let prefix = format!("{name}{{");
        let source = format!("source={:?}", self.0);
        recorded()
            .counters
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.contains(&source))
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }

    fn gauge(&self, name: &str) -> Option<f64> {
        recorded()
            .gauges
            .lock()
            .unwrap()
            .get(&render(name, &[("source", self.0)]))
            .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
    }

    fn samples(&self, name: &str) -> Vec<f64> {
        recorded()
            .histograms
            .lock()
            .unwrap()
            .get(&render(name, &[("source", self.0)]))
            .map(|h| h.0.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Waits for the next exports to show `want`.
    fn until(&self, what: &str, want: impl Fn(&Self) -> bool) {
        assert!(
            eventually(PATIENCE, || want(self)),
            "{what}: {}",
            self.dump()
        );
    }

    fn dump(&self) -> String {
        let source = format!("source={:?}", self.0);
        let counters = recorded().counters.lock().unwrap();
        let gauges = recorded().gauges.lock().unwrap();
        let c = counters
            .iter()
            .filter(|(k, _)| k.contains(&source))
            .map(|(k, v)| format!("{k} {}", v.load(Ordering::Relaxed)));
        let g = gauges
            .iter()
            .filter(|(k, _)| k.contains(&source))
            .map(|(k, v)| format!("{k} {}", f64::from_bits(v.load(Ordering::Relaxed))));
        c.chain(g).collect::<Vec<_>>().join("\n")
    }

    /// Only the refresher thread (named after the source) talked to the
    /// facade for this source: readers never did.
    fn assert_exported_by_refresher_only(&self) {
        let threads = recorded().threads.lock().unwrap();
        let by = threads.get(self.0).cloned().unwrap_or_default();
        assert_eq!(
            by,
            BTreeSet::from([format!("{}-refresher", self.0)]),
            "threads that recorded metrics of {}",
            self.0
        );
    }
}

/// Label keys are the fixed set, and no value contains `forbidden` text.
fn assert_labels_clean(forbidden: &[&str]) {
    for (key, value) in recorded().labels.lock().unwrap().iter() {
        assert!(LABEL_KEYS.contains(&key.as_str()), "label key {key}");
        assert!(
            value.len() <= 64 && value.chars().all(|c| c.is_ascii_graphic()),
            "label {key}={value:?}"
        );
        for bad in forbidden {
            assert!(!value.contains(bad), "label {key}={value:?} holds {bad:?}");
        }
    }
}

fn named(builder: Builder, name: &'static str) -> (JwksCache, Source) {
    recorded();
    let cache = ready(
        builder
            .name(name)
            .thread_name(format!("{name}-refresher"))
            .metrics_interval(TICK),
    );
    (cache, Source(name))
}

fn oct_entry() -> serde_json::Value {
    serde_json::json!({"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"})
}

fn with_entry(keys: &[&jwks_sync::testing::TestKey], extra: serde_json::Value) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&jwks_json(keys)).unwrap();
    doc["keys"].as_array_mut().unwrap().push(extra);
    doc.to_string()
}

#[test]
fn a_rotation_is_counted_timed_and_gauged() {
    let (old, new) = (es("old"), es("new"));
    let (source, builder) = source_and_builder(&[&old]);
    let (cache, m) = named(builder, "m-rotation");
    m.until("the first fetch", |m| {
        m.counter(
            "jwks_fetches_total",
            &[("cause", "initial"), ("outcome", "ok")],
        ) == 1
    });
    for _ in 0..5 {
        cache.with_key("old", |_| ()).unwrap();
    }
    m.until("five hits", |m| {
        m.counter("jwks_lookup_hits_total", &[]) == 5 && m.counter("jwks_lookups_total", &[]) == 5
    });
    assert_eq!(m.gauge("jwks_keys"), Some(1.0));

    // Rotation: the new key arrives, the old one goes, and a shared secret
    // in the document is skipped and counted.
    source.set_document(with_entry(&[&new], oct_entry()));
    cache.refresh_now().unwrap();
    assert!(cache.get("new").is_ok());
    assert_eq!(cache.get("old").err(), Some(Error::UnknownKid));
    m.until("the manual fetch and the skipped entry", |m| {
        m.counter(
            "jwks_fetches_total",
            &[("cause", "manual"), ("outcome", "ok")],
        ) == 1
            && m.counter("jwks_keys_skipped_total", &[("reason", "symmetric")]) == 1
    });
    m.until("lookups after the rotation", |m| {
        m.counter("jwks_lookups_total", &[]) == 7
            && m.counter("jwks_lookup_hits_total", &[]) == 6
            && m.counter("jwks_lookup_misses_total", &[]) == 1
    });
    assert_eq!(m.sum("jwks_fetches_total"), 2);
    let durations = m.samples("jwks_fetch_duration_seconds");
    assert_eq!(durations.len(), 2, "one sample per fetch");
    assert!(
        durations.iter().all(|d| (0.0..10.0).contains(d)),
        "{durations:?}"
    );
    assert_eq!(m.gauge("jwks_keys"), Some(1.0));
    assert_eq!(m.gauge("jwks_health"), Some(0.0));
    let age = m.gauge("jwks_set_age_seconds").expect("age gauge");
    assert!((0.0..60.0).contains(&age), "{age}");
    let left = m
        .gauge("jwks_set_expires_in_seconds")
        .expect("expiry gauge");
    assert!(
        left > 20.0 * 60.0 && left <= 20.0 * 60.0 + 24.0 * 3600.0,
        "{left}"
    );
    // Status tells the same story.
    let status = cache.status();
    assert_eq!(
        (status.hits, status.misses, status.name.as_str()),
        (6, 1, "m-rotation")
    );
    m.assert_exported_by_refresher_only();
    assert_labels_clean(&["old", "new", "shared-secret", "memory"]);
}

#[test]
fn an_outage_is_served_stale_then_fails_closed_then_recovers() {
    // Schedule time is a manual clock: lifetime 60 s, background refresh at
    // 30 s, stale for 120 s more, retries 10 s doubling to 40 s. Exports
    // still tick in real time (TICK), which `until` polls for.
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let clock = Arc::new(ManualClock::new());
    let (cache, m) = named(
        builder
            .clock(Arc::clone(&clock))
            .interval(60 * SECOND)
            .background_threshold(0.5)
            .min_refresh_interval(Duration::ZERO)
            .stale_while_error(120 * SECOND)
            .backoff_base(10 * SECOND)
            .backoff_max(40 * SECOND),
        "m-outage",
    );
    source.fail_with(FetchError::new(FetchErrorKind::Status(503), "unavailable"));
    // The background refresh fails; the set is still fresh.
    advance(&clock, &cache, 30 * SECOND);
    assert_eq!(source.fetches(), 2);
    assert_eq!(cache.status().fetch_failures, 1);
    m.until("the failed scheduled fetch", |m| {
        m.counter(
            "jwks_fetches_total",
            &[("cause", "scheduled"), ("outcome", "http_5xx")],
        ) == 1
    });
    assert_eq!(m.counter("jwks_sets_served_stale_total", &[]), 0);
    // Past the lifetime (60 s), still failing: served stale, one episode.
    advance(&clock, &cache, 31 * SECOND);
    m.until("a stale episode", |m| {
        m.counter("jwks_sets_served_stale_total", &[]) == 1
    });
    assert!(cache.get("k").is_ok(), "served stale");
    assert!(matches!(
        cache.status().health(),
        Health::Degraded { .. } | Health::Failing { .. }
    ));
    // Past lifetime + stale_while_error (180 s): every lookup fails closed.
    advance(&clock, &cache, 120 * SECOND);
    let mut refused = 0u64;
    for _ in 0..5 {
        assert!(matches!(
            cache.with_key("k", |_| ()),
            Err(Error::Expired { .. })
        ));
        refused += 1;
    }
    assert!(matches!(cache.get("k"), Err(Error::Expired { .. })));
    refused += 1;
    m.until("refused lookups and the failing gauges", |m| {
        m.counter("jwks_lookups_refused_expired_total", &[]) == refused
            && m.gauge("jwks_health") == Some(2.0)
            && m.gauge("jwks_set_expires_in_seconds")
                .is_some_and(|s| s <= 0.0)
    });
    let failed = m.counter(
        "jwks_fetches_total",
        &[("cause", "scheduled"), ("outcome", "http_5xx")],
    ) + m.counter(
        "jwks_fetches_total",
        &[("cause", "retry"), ("outcome", "http_5xx")],
    );
    assert!(failed >= 3, "{}", m.dump());
    assert_eq!(cache.status().fetch_failures, failed);
    assert_eq!(cache.status().lookups_refused_expired, refused);

    // Recovery: the next retry (at most backoff_max away) succeeds; health
    // and lookups come back.
    source.heal();
    advance(&clock, &cache, 40 * SECOND);
    assert!(cache.get("k").is_ok());
    m.until("healthy again", |m| m.gauge("jwks_health") == Some(0.0));
    assert_eq!(
        m.counter("jwks_sets_served_stale_total", &[]),
        1,
        "one episode"
    );
    m.until("the successful retry", |m| {
        m.counter(
            "jwks_fetches_total",
            &[("cause", "retry"), ("outcome", "ok")],
        ) == 1
    });
    m.assert_exported_by_refresher_only();
}

#[test]
fn an_unknown_kid_flood_asks_once_per_window_and_is_counted() {
    let k = es("k");
    let (source, builder) = source_and_builder(&[&k]);
    let cooldown = Duration::from_secs(1);
    let clock = Arc::new(ManualClock::new());
    let (cache, m) = named(
        builder
            .clock(Arc::clone(&clock))
            .unknown_kid_cooldown(cooldown),
        "m-flood",
    );
    // The first fetch's guard window is over; the clock then stands still,
    // so the whole flood falls in one window: exactly one ask.
    advance(&clock, &cache, cooldown);
    let per_thread = 2_000u64;
    let results = together(4, &cache, move |cache| {
        (0..per_thread)
            .filter(|i| {
                let kid = format!("attacker-kid-{i}-\"}}{{evil");
                cache.with_key(&kid, |_| ()) == Err(Error::UnknownKid)
            })
            .count() as u64
    });
    assert_eq!(results.iter().sum::<u64>(), 4 * per_thread);
    m.until("every miss counted", |m| {
        m.counter("jwks_lookup_misses_total", &[]) == 4 * per_thread
    });
    let asked = m.counter("jwks_unknown_kid_refreshes_asked_total", &[]);
    let suppressed = m.counter("jwks_unknown_kid_refreshes_suppressed_total", &[]);
    assert_eq!(asked, 1, "one ask in one window");
    assert_eq!(
        asked + suppressed,
        4 * per_thread,
        "each miss asks or is suppressed"
    );
    m.until("the refresh the flood asked for", |m| {
        m.counter(
            "jwks_fetches_total",
            &[("cause", "unknown_kid"), ("outcome", "ok")],
        ) == 1
    });
    assert_eq!(source.fetches(), 2, "IdP load: the first fetch and one ask");
    assert_eq!(m.counter("jwks_lookup_hits_total", &[]), 0);
    let status = cache.status();
    assert_eq!(status.unknown_kid_refreshes_asked, asked);
    assert_eq!(status.unknown_kid_refreshes_suppressed, suppressed);
    m.assert_exported_by_refresher_only();
    assert_labels_clean(&["attacker", "evil", "\""]);
}

#[test]
fn tokens_are_counted_verified_and_rejected_by_rule() {
    let key = es("signer");
    let (_source, builder) = source_and_builder(&[&key]);
    let (cache, m) = named(builder, "m-tokens");
    let verifier = cache
        .verifier()
        .issuer("https://issuer.example")
        .build()
        .unwrap();
    let far = 4_102_444_800u64;
    let good = key
        .sign(&serde_json::json!({"iss": "https://issuer.example", "exp": far}))
        .unwrap();
    for _ in 0..3 {
        verifier.verify::<serde_json::Value>(&good).unwrap();
    }
    let expired = key
        .sign(&serde_json::json!({"iss": "https://issuer.example", "exp": 1_000_000_000u64}))
        .unwrap();
    let foreign = key
        .sign(&serde_json::json!({"iss": "https://evil.example", "exp": far}))
        .unwrap();
    let mut forged = good.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let unsigned = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","kid":"signer"}"#),
        b64(r#"{"iss":"https://issuer.example","exp":4102444800}"#)
    );
    let attacker_kid = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"ES256","kid":"attacker-controlled-kid"}"#),
        b64(r#"{"iss":"https://issuer.example","exp":4102444800}"#),
        b64("sig")
    );
    let cases: [(&str, &str); 6] = [
        (&expired, "expired"),
        (&foreign, "wrong_issuer"),
        (&forged, "bad_signature"),
        (&unsigned, "disallowed_algorithm"),
        (&attacker_kid, "unknown_key"),
        ("not-a-token", "malformed"),
    ];
    for (token, _) in cases {
        let err = verifier.verify::<serde_json::Value>(token).unwrap_err();
        assert!(!matches!(err, VerifyError::KeySet(_)), "{err:?}");
    }
    m.until("verified and rejected tokens", |m| {
        m.counter("jwks_tokens_verified_total", &[]) == 3
            && cases
                .iter()
                .all(|(_, rule)| m.counter("jwks_tokens_rejected_total", &[("rule", rule)]) == 1)
    });
    assert_eq!(m.sum("jwks_tokens_rejected_total"), cases.len() as u64);
    let status = cache.status();
    assert_eq!((status.tokens_verified, status.tokens_rejected), (3, 6));
    assert!(
        status.rejections.contains(&("bad_signature", 1)),
        "{:?}",
        status.rejections
    );
    m.assert_exported_by_refresher_only();
    assert_labels_clean(&["attacker", "evil.example", "signer", &good[..20]]);
}

#[test]
fn two_caches_with_two_names_keep_their_series_apart() {
    // Two caches, two names: their series never mix.
    let (a, b) = (es("a"), es("b"));
    let (_sa, ba) = source_and_builder(&[&a]);
    let (_sb, bb) = source_and_builder(&[&b]);
    let (ca, ma) = named(ba, "m-two-a");
    let (cb, mb) = named(bb, "m-two-b");
    ca.with_key("a", |_| ()).unwrap();
    for _ in 0..3 {
        cb.with_key("b", |_| ()).unwrap();
    }
    ma.until("a's one hit", |m| {
        m.counter("jwks_lookup_hits_total", &[]) == 1
    });
    mb.until("b's three hits", |m| {
        m.counter("jwks_lookup_hits_total", &[]) == 3
    });
    assert_eq!(ma.counter("jwks_lookup_hits_total", &[]), 1);
}

#[test]
fn bad_names_are_refused_at_build() {
    for name in ["", "tenant/path", "has space", "x\"y", &"n".repeat(65)] {
        let built = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[])))
            .name(name)
            .build();
        assert!(matches!(built, Err(Error::Config(_))), "{name:?}");
    }
    let zero = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[])))
        .metrics_interval(Duration::ZERO)
        .build();
    assert!(matches!(zero, Err(Error::Config(_))));
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
