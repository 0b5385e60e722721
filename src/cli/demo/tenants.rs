//! `jwks demo --tenants N`: many issuers on one refresher, on 127.0.0.1.
//!
//! One loopback test IdP serves a key set per tenant (`/tenants/{i}/jwks`,
//! each with `Cache-Control: max-age`), all registered in one [`Registry`]:
//! one scheduling thread and a small pool of fetch threads, whatever the
//! number of tenants. Verifier threads pick a tenant at random for every
//! token and verify it through that tenant's issuer-bound verifier.
//!
//! | at | step |
//! |---|---|
//! | 0 % | every tenant's first key signs |
//! | 40 % | every tenth tenant replaces its set with a new key, which signs (unknown-kid path) |
//! | 50 % | tenant 1's key set answers 503 (`Retry-After: 1`): its stale set keeps working |
//! | 80 % | tenant 1 recovers |
//!
//! The summary counts the library's threads, every tenant's fetches against
//! bounds computed from the settings, and the IdP's requests per tenant.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwks_sync::testing::{jwks_json, Fault, KeyAlg, TestIdp, TestKey};
use jwks_sync::{IssuerVerifier, JwksCache, RefreshStrategy, Registry};
use serde::de::IgnoredAny;
use serde_json::{json, Value};

use super::super::exit::{Failure, Outcome};
use super::histogram::Histogram;
use verdict::{failures, text};

mod verdict;

/// The audience of every demo token.
const AUDIENCE: &str = "tenant-api";
/// Fetch threads in the registry's pool.
const FETCH_THREADS: usize = 4;
/// Tokens pre-minted per key.
const POOL: usize = 16;
/// Every `ROTATE_EVERY`-th tenant rotates.
const ROTATE_EVERY: usize = 10;
/// The tenant whose IdP fails for a while.
const OUTAGE_TENANT: usize = 1;
/// "Not yet" for nanosecond stamps.
const NEVER: u64 = u64::MAX;

/// The multi-tenant demo's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) duration: Duration,
    pub(crate) threads: usize,
    pub(crate) tenants: usize,
    pub(crate) json: bool,
    /// `Cache-Control: max-age` served for every tenant.
    pub(crate) max_age: Duration,
    pub(crate) background_threshold: f64,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) retry_after: Duration,
    /// `verify_or_wait` bound.
    pub(crate) wait: Duration,
}

impl Settings {
    /// The settings for a run of `secs` seconds, `threads` verifier threads
    /// and `tenants` tenants.
    pub(crate) fn new(secs: u64, threads: u64, tenants: u64, json: bool) -> Self {
        Self {
            duration: Duration::from_secs(secs),
            threads: usize::try_from(threads).unwrap_or(4),
            tenants: usize::try_from(tenants).unwrap_or(200),
            json,
            // Several scheduled refreshes per tenant, and shorter than the
            // outage (30 % of the run) so that stale serving shows.
            max_age: Duration::from_secs((secs / 10).clamp(1, 5)),
            background_threshold: 0.8,
            unknown_kid_cooldown: Duration::from_millis(250),
            retry_after: Duration::from_secs(1),
            wait: Duration::from_secs(2),
        }
    }

    fn at(&self, fraction: f64) -> Duration {
        self.duration.mul_f64(fraction)
    }

    /// Whether tenant `i` rotates its key at 40 %.
    fn rotates(&self, i: usize) -> bool {
        i.is_multiple_of(ROTATE_EVERY)
    }

    /// Whether tenant `i` has the outage.
    fn has_outage(&self, i: usize) -> bool {
        self.tenants > 1 && i == OUTAGE_TENANT
    }

    /// Fewest fetches a tenant may make: its background refreshes come at
    /// most 0.9 of a lifetime apart (θ plus at most half the rest as
    /// jitter), plus the fetch itself; one is allowed to be cut by the end.
    fn fetches_low(&self) -> u64 {
        let gap = self.max_age.as_secs_f64() * 0.9 + 0.25;
        ((self.duration.as_secs_f64() / gap).floor() as u64).max(1)
    }

    /// Most fetches a tenant may make in `span` (from the first
    /// registration to the end): the first, one per θ·lifetime, one spare,
    /// and one unknown-kid fetch for a rotation; the outage tenant also
    /// retries at most once per `Retry-After` during its outage.
    fn fetches_high(&self, i: usize, span: Duration) -> u64 {
        let scheduled =
            span.as_secs_f64() / (self.max_age.as_secs_f64() * self.background_threshold);
        let mut high = 2 + scheduled.ceil() as u64;
        if self.rotates(i) {
            high += 1;
        }
        if self.has_outage(i) {
            let outage = self.at(0.8) - self.at(0.5);
            high += 1 + (outage.as_secs_f64() / self.retry_after.as_secs_f64()).ceil() as u64;
        }
        high
    }
}

/// One tenant: its path, issuer, keys and pre-minted tokens.
struct Tenant {
    path: String,
    /// `[first key, replacement]` (the replacement only for rotating tenants).
    keys: Vec<TestKey>,
    /// Tokens per key, same indexes as `keys`.
    tokens: Vec<Vec<String>>,
}

/// What the driver and the workers share; stamps are nanoseconds since
/// `start`.
struct Board {
    start: Instant,
    stop: AtomicBool,
    /// Per tenant: index of the key that signs now.
    signing: Vec<AtomicUsize>,
    /// Per tenant: when the replacement key started signing.
    switched_at: Vec<AtomicU64>,
    /// Per tenant: first successful verification with the replacement.
    first_new_ok: Vec<AtomicU64>,
    /// The outage window.
    outage: (AtomicU64, AtomicU64),
}

impl Board {
    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(NEVER - 1)
    }
}

/// One worker's counts.
#[derive(Default)]
struct Tally {
    ok: u64,
    /// Valid tokens rejected: must stay zero.
    valid_rejected: u64,
    /// Tokens of a key retired by its tenant's replace, rejected after it:
    /// expected, reported apart.
    retired: u64,
    /// Tokens of the outage tenant verified during its outage (stale set).
    outage_ok: u64,
    first_error: Option<String>,
    latency: Option<Histogram>,
}

/// Runs the multi-tenant demo.
pub(crate) fn run(s: &Settings) -> Outcome {
    let internal = |what: &str, e: String| Failure::internal(format!("demo: {what}: {e}"));
    if s.tenants == 0 {
        return Err(Failure::internal("demo: --tenants must be at least 1"));
    }
    let idp = TestIdp::start().map_err(|e| internal("starting the test IdP", e.to_string()))?;
    let exp = jsonwebtoken::get_current_timestamp() + s.duration.as_secs() + 3600;
    let mut tenants = Vec::with_capacity(s.tenants);
    for i in 0..s.tenants {
        let issuer = format!("{}/tenants/{i}", idp.base_url());
        let mut keys = vec![TestKey::generate(KeyAlg::Es256, &format!("t{i}-a"))
            .map_err(|e| internal("key generation", e.to_string()))?];
        if s.rotates(i) {
            keys.push(
                TestKey::generate(KeyAlg::Es256, &format!("t{i}-b"))
                    .map_err(|e| internal("key generation", e.to_string()))?,
            );
        }
        // Signing stays out of the measured path: every token is minted now.
        let mut tokens = Vec::with_capacity(keys.len());
        for key in &keys {
            let mut pool = Vec::with_capacity(POOL);
            for n in 0..POOL {
                let claims = json!({
                    "iss": issuer, "aud": AUDIENCE, "sub": format!("user-{n}"),
                    "exp": exp, "iat": exp - s.duration.as_secs() - 3600,
                });
                pool.push(
                    key.sign(&claims)
                        .map_err(|e| internal("minting", e.to_string()))?,
                );
            }
            tokens.push(pool);
        }
        let path = format!("/tenants/{i}/jwks");
        idp.set_document(&path, jwks_json(&[&keys[0]]));
        idp.set_header(
            &path,
            "Cache-Control",
            &format!("max-age={}", s.max_age.as_secs()),
        );
        tenants.push(Tenant { path, keys, tokens });
    }

    let threads_before = process_threads();
    let ca = idp.ca_pem().to_owned();
    let (cooldown, swe) = (s.unknown_kid_cooldown, s.duration * 2);
    let registry = Registry::builder()
        .fetch_threads(FETCH_THREADS)
        .allow_hosts(["127.0.0.1"])
        .defaults(move |b| {
            b.add_root_certificate_pem(&ca)
                .use_env_proxy(false)
                .strategy(RefreshStrategy::Time)
                .min_ttl(Duration::from_secs(1))
                .unknown_kid_cooldown(cooldown)
                .stale_while_error(swe)
                .backoff_base(Duration::from_millis(250))
                .backoff_max(Duration::from_secs(1))
        })
        .build()
        .map_err(|e| internal("registry settings", e.to_string()))?;
    let registered = Instant::now();
    let mut caches = Vec::with_capacity(s.tenants);
    let mut routes = IssuerVerifier::builder();
    for (i, t) in tenants.iter().enumerate() {
        let source = registry
            .source(idp.url(&t.path))
            .background_threshold(s.background_threshold);
        let cache = registry
            .register(format!("tenant-{i}"), source)
            .map_err(|e| internal("registering a tenant", e.to_string()))?;
        routes = routes.issuer(format!("{}/tenants/{i}", idp.base_url()), &cache, |v| {
            v.audience(AUDIENCE)
        });
        caches.push(cache);
    }
    // One verifier for every tenant: a token goes to its `iss`'s key set.
    let verifier = routes
        .build()
        .map_err(|e| internal("verifier settings", e.to_string()))?;
    for cache in &caches {
        cache
            .wait_ready(Duration::from_secs(30))
            .map_err(|e| internal("first fetch from the test IdP", e.to_string()))?;
    }
    let ready_in = registered.elapsed();
    let threads_library = process_threads().saturating_sub(threads_before);
    say(
        s,
        &format!(
            "{} tenants registered and loaded in {:.2} s on {threads_library} library threads",
            s.tenants,
            ready_in.as_secs_f64()
        ),
    );

    let board = Arc::new(Board {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        signing: (0..s.tenants).map(|_| AtomicUsize::new(0)).collect(),
        switched_at: (0..s.tenants).map(|_| AtomicU64::new(NEVER)).collect(),
        first_new_ok: (0..s.tenants).map(|_| AtomicU64::new(NEVER)).collect(),
        outage: (AtomicU64::new(NEVER), AtomicU64::new(NEVER)),
    });
    let tenants = Arc::new(tenants);
    let verifier = Arc::new(verifier);
    let mut handles = Vec::with_capacity(s.threads);
    for id in 0..s.threads {
        let (board, tenants, verifier) = (
            Arc::clone(&board),
            Arc::clone(&tenants),
            Arc::clone(&verifier),
        );
        let wait = s.wait;
        let handle = std::thread::Builder::new()
            .name(format!("demo-verifier-{id}"))
            .spawn(move || work(id, &board, &tenants, &verifier, wait))
            .map_err(|e| internal("starting a verifier thread", e.to_string()))?;
        handles.push(handle);
    }
    let threads_process = process_threads();

    let steps = [(0.4, "rotate"), (0.5, "outage"), (0.8, "recover")];
    let mut next = 0;
    loop {
        let now = board.start.elapsed();
        while next < steps.len() && now >= s.at(steps[next].0) {
            let at = board.ns(Instant::now());
            match steps[next].1 {
                "rotate" => {
                    let mut rotated = 0;
                    for (i, t) in tenants.iter().enumerate().filter(|(i, _)| s.rotates(*i)) {
                        idp.set_document(&t.path, jwks_json(&[&t.keys[1]]));
                        // Relaxed: stamps for the report; a worker reading
                        // the two a moment apart classifies one token late.
                        board.switched_at[i].store(at, Ordering::Relaxed);
                        board.signing[i].store(1, Ordering::Relaxed);
                        rotated += 1;
                    }
                    say(
                        s,
                        &format!(
                            "{rotated} tenants replace their key set with a new key, which signs"
                        ),
                    );
                }
                "outage" if s.tenants > OUTAGE_TENANT => {
                    idp.set_fault(
                        &tenants[OUTAGE_TENANT].path,
                        Fault::Status {
                            code: 503,
                            retry_after: Some(s.retry_after.as_secs().to_string()),
                        },
                    );
                    board.outage.0.store(at, Ordering::Relaxed);
                    say(
                        s,
                        &format!("tenant {OUTAGE_TENANT}'s IdP fails: 503 with Retry-After"),
                    );
                }
                "recover" if s.tenants > OUTAGE_TENANT => {
                    idp.clear_fault(&tenants[OUTAGE_TENANT].path);
                    board.outage.1.store(at, Ordering::Relaxed);
                    say(s, &format!("tenant {OUTAGE_TENANT}'s IdP recovers"));
                }
                _ => {}
            }
            next += 1;
        }
        if now >= s.duration {
            break;
        }
        std::thread::sleep((s.duration - now).min(Duration::from_millis(20)));
    }
    board.stop.store(true, Ordering::Relaxed);
    let elapsed = board.start.elapsed();
    let mut tally = Tally {
        latency: Some(Histogram::new()),
        ..Tally::default()
    };
    for handle in handles {
        let t = handle
            .join()
            .map_err(|_| Failure::internal("demo: a verifier thread panicked"))?;
        tally.ok += t.ok;
        tally.valid_rejected += t.valid_rejected;
        tally.retired += t.retired;
        tally.outage_ok += t.outage_ok;
        tally.first_error = tally.first_error.take().or(t.first_error);
        if let (Some(all), Some(h)) = (&mut tally.latency, &t.latency) {
            all.merge(h);
        }
    }
    let span = registered.elapsed();
    let summary = summarize(
        s,
        &tally,
        &board,
        &tenants,
        &caches,
        &idp,
        elapsed,
        span,
        threads_library,
        threads_process,
    );
    let failures = failures(&summary);
    let mut summary = summary;
    summary["verdict"] = json!(if failures.is_empty() { "PASS" } else { "FAIL" });
    summary["failures"] = json!(failures);
    if s.json {
        println!("{summary:#}");
    } else {
        print!("{}", text(&summary));
    }
    drop(caches);
    drop(registry);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            super::super::exit::REJECTED,
            format!("demo: verdict FAIL: {}", failures.join("; ")),
        ))
    }
}

/// A timeline line (text mode only).
fn say(s: &Settings, line: &str) {
    if !s.json {
        println!("  {line}");
    }
}

/// The process's threads, from `/proc/self/task` (0 where there is none).
fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// A worker: verifies tokens of random tenants' current keys until told to
/// stop.
fn work(
    id: usize,
    board: &Board,
    tenants: &[Tenant],
    verifier: &IssuerVerifier,
    wait: Duration,
) -> Tally {
    let mut tally = Tally {
        latency: Some(Histogram::new()),
        ..Tally::default()
    };
    // xorshift64: the tenant and token choice, not security.
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (id as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Relaxed: the stop flag carries no data.
    while !board.stop.load(Ordering::Relaxed) {
        let r = next();
        let i = (r % tenants.len() as u64) as usize;
        // Relaxed: see `Board`.
        let k = board.signing[i].load(Ordering::Relaxed);
        let token = &tenants[i].tokens[k][(r >> 32) as usize % POOL];
        let started = Instant::now();
        let result = verifier.verify_or_wait::<IgnoredAny>(token, wait);
        let done = Instant::now();
        if let Some(h) = &mut tally.latency {
            h.record(done - started);
        }
        let at = board.ns(done);
        match result {
            Ok(_) => {
                tally.ok += 1;
                if k == 1 && board.first_new_ok[i].load(Ordering::Relaxed) == NEVER {
                    board.first_new_ok[i].fetch_min(at, Ordering::Relaxed);
                }
                let (from, to) = (
                    board.outage.0.load(Ordering::Relaxed),
                    board.outage.1.load(Ordering::Relaxed),
                );
                if i == OUTAGE_TENANT && at >= from && at < to {
                    tally.outage_ok += 1;
                }
            }
            Err(_) if k == 0 && board.switched_at[i].load(Ordering::Relaxed) != NEVER => {
                tally.retired += 1;
            }
            Err(e) => {
                tally.valid_rejected += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("tenant {i}: {e}"));
            }
        }
    }
    tally
}

/// The run in numbers, as JSON.
#[allow(clippy::too_many_arguments)]
fn summarize(
    s: &Settings,
    tally: &Tally,
    board: &Board,
    tenants: &[Tenant],
    caches: &[JwksCache],
    idp: &TestIdp,
    elapsed: Duration,
    span: Duration,
    threads_library: usize,
    threads_process: usize,
) -> Value {
    let per_source: Vec<(u64, u64)> = caches
        .iter()
        .zip(tenants)
        .map(|(cache, t)| settled(cache, idp, &t.path))
        .collect();
    let mut fetches: Vec<u64> = per_source.iter().map(|(f, _)| *f).collect();
    let total_fetches: u64 = fetches.iter().sum();
    let idp_requests: u64 = per_source.iter().map(|(_, r)| *r).sum();
    let out_of_bounds: Vec<Value> = per_source
        .iter()
        .enumerate()
        .filter(|(i, (f, _))| *f < s.fetches_low() || *f > s.fetches_high(*i, span))
        .map(|(i, (f, r))| {
            json!({"tenant": i, "fetches": f, "idp_requests": r,
            "bounds": [s.fetches_low(), s.fetches_high(i, span)]})
        })
        .collect();
    let mismatched = per_source.iter().filter(|(f, r)| f != r).count();
    fetches.sort_unstable();
    let rotating: Vec<usize> = (0..s.tenants).filter(|&i| s.rotates(i)).collect();
    let mut pickup_ms: Vec<f64> = rotating
        .iter()
        .filter_map(|&i| {
            let (from, to) = (
                board.switched_at[i].load(Ordering::Relaxed),
                board.first_new_ok[i].load(Ordering::Relaxed),
            );
            (from != NEVER && to != NEVER).then(|| to.saturating_sub(from) as f64 / 1e6)
        })
        .collect();
    pickup_ms.sort_by(f64::total_cmp);
    let median = |v: &[f64]| v.get(v.len() / 2).copied();
    let verified = tally.ok + tally.valid_rejected + tally.retired;
    let latency = tally.latency.as_ref();
    let outage = s.has_outage(OUTAGE_TENANT).then(|| {
        let status = caches[OUTAGE_TENANT].status();
        json!({
            "tenant": OUTAGE_TENANT,
            "fetches": per_source[OUTAGE_TENANT].0,
            "bound_high": s.fetches_high(OUTAGE_TENANT, span),
            "verified_during_outage": tally.outage_ok,
            "failed_fetches": status.fetch_failures,
        })
    });
    json!({
        "mode": "multi-tenant",
        "tenants": s.tenants,
        "duration_s": elapsed.as_secs_f64(),
        "registered_for_s": span.as_secs_f64(),
        "settings": {
            "max_age_s": s.max_age.as_secs(),
            "background_threshold": s.background_threshold,
            "unknown_kid_cooldown_ms": s.unknown_kid_cooldown.as_millis() as u64,
            "retry_after_s": s.retry_after.as_secs(),
            "fetch_threads": FETCH_THREADS,
        },
        "threads": {
            "library": threads_library,
            "limit": FETCH_THREADS + 1,
            "verifiers": s.threads,
            "process": threads_process,
        },
        "verifications": {
            "total": verified,
            "ok": tally.ok,
            "valid_rejected": tally.valid_rejected,
            "retired_key_in_flight": tally.retired,
            "per_second": verified as f64 / elapsed.as_secs_f64().max(0.001),
            "p50_us": latency.map_or(0.0, |h| h.quantile(0.5).as_secs_f64() * 1e6),
            "p99_us": latency.map_or(0.0, |h| h.quantile(0.99).as_secs_f64() * 1e6),
            "first_error": tally.first_error,
        },
        "fetches": {
            "total": total_fetches,
            "idp_requests": idp_requests,
            "sources_where_cache_and_idp_disagree": mismatched,
            "per_source": {
                "min": fetches.first(),
                "median": fetches.get(fetches.len() / 2),
                "max": fetches.last(),
                "bound_low": s.fetches_low(),
                "bound_high": s.fetches_high(usize::MAX, span),
            },
            "out_of_bounds": out_of_bounds,
        },
        "rotations": {
            "tenants": rotating.len(),
            "picked_up": pickup_ms.len(),
            "picked_up_after_ms": { "median": median(&pickup_ms), "max": pickup_ms.last() },
        },
        "outage": outage,
    })
}

/// A source's fetch count and the IdP's request count for its path, read
/// when they agree (a fetch in flight is counted by the cache when it
/// starts), bounded by one HTTP request's time.
fn settled(cache: &JwksCache, idp: &TestIdp, path: &str) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(7);
    loop {
        let fetches = cache.status().refreshes.total();
        let requests = idp.requests(path);
        if fetches == requests || Instant::now() >= deadline {
            return (fetches, requests);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
