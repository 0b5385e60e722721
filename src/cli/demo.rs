//! `jwks demo`: jwks-sync's main job in one command, on 127.0.0.1 only.
//!
//! A loopback test IdP serves ES256 keys with a short `Cache-Control:
//! max-age`; verifier threads verify tokens of the IdP's current signing key
//! through one shared `Verifier` as fast as they can; the driver (this
//! thread) walks the timeline below, scaled to `--duration`, and draws a
//! progress line; the refresh hook stamps every fetch. All numbers in the
//! summary are measured.
//!
//! | at | step |
//! |---|---|
//! | 0 % | key-1 signs |
//! | 25 % | key-2 pre-published (overlap rotation, first half) |
//! | 35 % | key-2 signs (overlap rotation, second half) |
//! | 45 % | replace: the set is key-3 alone, key-3 signs (unknown-kid path) |
//! | 55 % | the IdP answers 503 (`Retry-After: 1`): stale keys keep working |
//! | 80 % | the IdP recovers |
//!
//! There is no hard-failure window: `stale_while_error` covers the whole
//! run, so no valid token may be rejected at any time, except two
//! classes reported apart: a new kid asked for inside the unknown-kid
//! cooldown before the cache has it, and tokens of an unpublished key
//! still in flight at the replace.

mod histogram;
mod progress;
mod report;
pub(crate) mod tenants;
mod workers;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwks_sync::testing::{Fault, KeyAlg, TestIdp, TestKey, JWKS_PATH};
use jwks_sync::{JwksCache, RefreshEvent, RefreshOutcome};
use serde_json::json;

use super::exit::{Failure, Outcome};
use report::{Rotation, Summary};
use workers::{Board, KEYS, NEVER};

/// The audience of every demo token.
const AUDIENCE: &str = "demo-api";
/// Kids of the three keys.
const KIDS: [&str; KEYS] = ["key-1", "key-2", "key-3"];

/// The demo's settings, derived from the flags; printed in the summary.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) duration: Duration,
    pub(crate) threads: usize,
    pub(crate) json: bool,
    /// `Cache-Control: max-age` served by the IdP.
    pub(crate) max_age: Duration,
    pub(crate) min_ttl: Duration,
    pub(crate) background_threshold: f64,
    pub(crate) usage_threshold: u64,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) stale_while_error: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    /// `Retry-After` on the IdP's 503s.
    pub(crate) retry_after: Duration,
    /// `verify_or_wait` bound.
    pub(crate) wait: Duration,
    /// Tokens pre-minted per key.
    pub(crate) pool: usize,
}

impl Settings {
    /// The settings for a run of `secs` seconds with `threads` workers.
    pub(crate) fn new(secs: u64, threads: u64, json: bool) -> Self {
        let duration = Duration::from_secs(secs);
        Self {
            duration,
            threads: usize::try_from(threads).unwrap_or(4),
            json,
            // Several scheduled refreshes per run, and a lifetime shorter
            // than the outage (20 %+ of the run) so stale serving shows.
            max_age: Duration::from_secs((secs / 15).clamp(1, 5)),
            min_ttl: Duration::from_secs(1),
            background_threshold: 0.8,
            // High enough that time, not traffic, drives refreshes at
            // ~10^5 verifications/s; min_refresh_interval caps it anyway.
            usage_threshold: 1_000_000,
            min_refresh_interval: Duration::from_secs(5),
            // Shorter than the gap between scheduled fetches (θ·max-age):
            // every fetch closes the unknown-kid gate for this long, so a
            // longer cooldown would starve the unknown-kid path.
            unknown_kid_cooldown: Duration::from_millis(250),
            stale_while_error: duration,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
            wait: Duration::from_secs(2),
            pool: 256,
        }
    }

    fn at(&self, fraction: f64) -> Duration {
        self.duration.mul_f64(fraction)
    }
}

/// The timeline's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    PrePublish,
    SignWithOverlapKey,
    Replace,
    OutageStart,
    Recover,
}

const TIMELINE: [(f64, Step); 5] = [
    (0.25, Step::PrePublish),
    (0.35, Step::SignWithOverlapKey),
    (0.45, Step::Replace),
    (0.55, Step::OutageStart),
    (0.80, Step::Recover),
];

/// What the refresh hook and the driver write down, with stamps in
/// nanoseconds since the start.
#[derive(Default)]
pub(crate) struct Log {
    /// `(at, line)` for the timeline.
    pub(crate) events: Vec<(u64, String)>,
    /// When each kid first appeared in a fetched set, and the fetch's cause.
    pub(crate) learnt: Vec<(String, u64, String)>,
    /// Failed fetches.
    pub(crate) failed_fetches: u64,
    last_success: Option<u64>,
    lifetime: Duration,
}

/// Runs the demo.
pub(crate) fn run(settings: &Settings) -> Outcome {
    let s = settings;
    let internal = |what: &str, e: String| Failure::internal(format!("demo: {what}: {e}"));
    let idp = TestIdp::start().map_err(|e| internal("starting the test IdP", e.to_string()))?;
    let mut keys = Vec::with_capacity(KEYS);
    for kid in KIDS {
        keys.push(
            TestKey::generate(KeyAlg::Es256, kid)
                .map_err(|e| internal("key generation", e.to_string()))?,
        );
    }
    // Signing stays out of the measured path: every token is minted now.
    let exp_secs = s.duration.as_secs() + 3600;
    let mut pools = Vec::with_capacity(KEYS);
    for key in &keys {
        let mut pool = Vec::with_capacity(s.pool);
        for i in 0..s.pool {
            let mut claims = idp.claims(&format!("user-{i}"), AUDIENCE, exp_secs);
            claims["jti"] = json!(format!("{}-{i}", key.kid()));
            pool.push(
                key.sign(&claims)
                    .map_err(|e| internal("minting", e.to_string()))?,
            );
        }
        pools.push(Arc::new(pool));
    }
    let pools: [Arc<Vec<String>>; KEYS] = [
        Arc::clone(&pools[0]),
        Arc::clone(&pools[1]),
        Arc::clone(&pools[2]),
    ];
    let mut keys = keys.into_iter();
    let (Some(key1), Some(key2), Some(key3)) = (keys.next(), keys.next(), keys.next()) else {
        return Err(Failure::internal("demo: key generation"));
    };
    idp.add_signing_key(key1);
    idp.set_max_age(s.max_age.as_secs());

    let board = Arc::new(Board::new(s.threads));
    let log = Arc::new(Mutex::new(Log::default()));
    let cache = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .use_env_proxy(false)
        .min_ttl(s.min_ttl)
        .background_threshold(s.background_threshold)
        .usage_threshold(s.usage_threshold)
        .min_refresh_interval(s.min_refresh_interval)
        .unknown_kid_cooldown(s.unknown_kid_cooldown)
        .stale_while_error(s.stale_while_error)
        .backoff_base(s.backoff_base)
        .backoff_max(s.backoff_max)
        .on_refresh({
            let board = Arc::clone(&board);
            let log = Arc::clone(&log);
            move |event| on_refresh(&board, &log, event)
        })
        .build()
        .map_err(|e| internal("cache settings", e.to_string()))?;
    cache
        .wait_ready(Duration::from_secs(10))
        .map_err(|e| internal("first fetch from the test IdP", e.to_string()))?;
    let verifier = cache
        .verifier()
        .issuer(idp.issuer())
        .audience(AUDIENCE)
        .build()
        .map_err(|e| internal("verifier settings", e.to_string()))?;
    note(
        &board,
        &log,
        "key-1 signs; verifier threads start".to_owned(),
    );

    let grace = s.unknown_kid_cooldown + s.wait;
    let mut handles = Vec::with_capacity(s.threads);
    for id in 0..s.threads {
        let (board, verifier, pools) = (Arc::clone(&board), verifier.clone(), pools.clone());
        let wait = s.wait;
        let handle = std::thread::Builder::new()
            .name(format!("demo-verifier-{id}"))
            .spawn(move || workers::run(id, &board, &verifier, &pools, wait, grace))
            .map_err(|e| internal("starting a verifier thread", e.to_string()))?;
        handles.push(handle);
    }

    let mut progress = progress::Progress::new(s.json);
    let mut pending = (Some(key2), Some(key3));
    let mut outage = (NEVER, NEVER);
    let mut next = 0;
    let mut phase = "steady: key-1 signs";
    loop {
        let now = board.start.elapsed();
        while next < TIMELINE.len() && now >= s.at(TIMELINE[next].0) {
            let t = board.ns(Instant::now());
            let (line, step_phase) = match TIMELINE[next].1 {
                Step::PrePublish => {
                    if let Some(k) = pending.0.take() {
                        idp.pre_publish(k);
                    }
                    (
                        "IdP pre-publishes key-2 (key-1 still signs)",
                        "overlap: key-2 published",
                    )
                }
                Step::SignWithOverlapKey => {
                    idp.sign_with(KIDS[1]);
                    board.switch_signing(1, t);
                    (
                        "IdP signs with key-2 (key-1 still published)",
                        "overlap: key-2 signs",
                    )
                }
                Step::Replace => {
                    if let Some(k) = pending.1.take() {
                        idp.rotate_replace(k);
                    }
                    board.switch_signing(2, t);
                    (
                        "IdP replaces its set with key-3 alone, key-3 signs",
                        "replace: key-3 only",
                    )
                }
                Step::OutageStart => {
                    idp.set_fault(
                        JWKS_PATH,
                        Fault::Status {
                            code: 503,
                            retry_after: Some(s.retry_after.as_secs().to_string()),
                        },
                    );
                    outage.0 = t;
                    ("IdP fails: 503 with Retry-After", "IdP outage (503)")
                }
                Step::Recover => {
                    idp.clear_fault(JWKS_PATH);
                    outage.1 = t;
                    ("IdP recovers", "recovered")
                }
            };
            note(&board, &log, line.to_owned());
            phase = step_phase;
            next += 1;
        }
        if now >= s.duration {
            break;
        }
        if progress.due() {
            draw_progress(&progress, s, &board, &cache, phase, now);
        }
        std::thread::sleep((s.duration - now).min(Duration::from_millis(20)));
    }
    board.stop.store(true, Ordering::Relaxed);
    let end = board.ns(Instant::now());
    let mut tallies = Vec::with_capacity(handles.len());
    for handle in handles {
        tallies.push(
            handle
                .join()
                .map_err(|_| Failure::internal("demo: a verifier thread panicked"))?,
        );
    }
    progress.finish();
    let (status, idp_requests) = settled(&cache, &idp);
    let log = log
        .lock()
        .map_err(|_| Failure::internal("demo: event log poisoned"))?;
    let rotations = [
        Rotation::new("overlap", KIDS[1], &board, &log, 1),
        Rotation::new("replace", KIDS[2], &board, &log, 2),
    ];
    let summary = Summary::build(
        s,
        &tallies,
        &status,
        idp_requests,
        end,
        rotations,
        outage,
        &log,
        &idp.jwks_url(),
    );
    if s.json {
        println!("{:#}", summary.to_json());
    } else {
        print!("{}", summary.to_text());
    }
    let failures = summary.failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(
            super::exit::REJECTED,
            format!("demo: verdict FAIL: {}", failures.join("; ")),
        ))
    }
}

/// A timeline line from the driver.
fn note(board: &Board, log: &Mutex<Log>, line: String) {
    let at = board.ns(Instant::now());
    if let Ok(mut log) = log.lock() {
        log.events.push((at, line));
    }
}

/// The refresh hook: stamps the fetch, tracks when the set goes stale
/// while fetches fail, and records when each kid was first fetched.
fn on_refresh(board: &Board, log: &Mutex<Log>, event: &RefreshEvent) {
    let at = board.ns(Instant::now());
    let Ok(mut log) = log.lock() else { return };
    let cause = crate::cli::text::snake(&format!("{:?}", event.cause));
    let line = match &event.outcome {
        RefreshOutcome::Updated {
            generation,
            added,
            removed,
            lifetime,
            ..
        } => {
            // Relaxed: a flag read by workers; nothing else hangs on it.
            board.stale_from.store(NEVER, Ordering::Relaxed);
            log.last_success = Some(at);
            log.lifetime = *lifetime;
            for kid in added {
                if !log.learnt.iter().any(|(k, _, _)| k == kid) {
                    log.learnt.push((kid.clone(), at, cause.clone()));
                }
            }
            if added.is_empty()
                && removed.is_empty()
                && event.cause != jwks_sync::RefreshCause::Retry
            {
                return; // a routine refresh: counted, not listed
            }
            let mut line = format!("fetch ({cause}): generation {generation}");
            if !added.is_empty() {
                line += &format!(", added {}", added.join(", "));
            }
            if !removed.is_empty() {
                line += &format!(", removed {}", removed.join(", "));
            }
            line
        }
        RefreshOutcome::NotModified { lifetime } => {
            board.stale_from.store(NEVER, Ordering::Relaxed);
            log.last_success = Some(at);
            log.lifetime = *lifetime;
            return;
        }
        RefreshOutcome::Failed {
            error,
            consecutive_failures,
            retry_in,
        } => {
            log.failed_fetches += 1;
            if let Some(t0) = log.last_success {
                let lifetime = u64::try_from(log.lifetime.as_nanos()).unwrap_or(NEVER);
                board
                    .stale_from
                    .store(t0.saturating_add(lifetime), Ordering::Relaxed);
            }
            format!(
                "fetch ({cause}) failed #{consecutive_failures}: {error}; retry in {}",
                retry_in.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()))
            )
        }
        _ => return,
    };
    log.events.push((at, line));
}

fn draw_progress(
    progress: &progress::Progress,
    s: &Settings,
    board: &Board,
    cache: &JwksCache,
    phase: &str,
    now: Duration,
) {
    let status = cache.status();
    let verified = board.verified();
    let rate = verified as f64 / now.as_secs_f64().max(0.001);
    // Relaxed: a display.
    let stale = board.ns(Instant::now()) >= board.stale_from.load(Ordering::Relaxed);
    let serving = match (status.consecutive_failures, stale) {
        (0, _) => "set fresh",
        (_, false) => "IdP failing, set still fresh",
        (_, true) => "IdP failing, serving STALE set",
    };
    progress.show(&progress::Snapshot {
        now,
        total: s.duration,
        phase,
        verified: report::thousands(verified),
        rate,
        generation: status.generation,
        fetches: status.refreshes.total(),
        serving,
    });
}

/// The cache's status and the IdP's request count, read at a moment they
/// agree. A fetch in flight is counted by the cache when it starts and by the
/// IdP when its request arrives, so a reading taken in between would differ
/// by one; wait (bounded by one whole HTTP request and a margin) for it to
/// land. Past the bound, the last reading is reported as it is.
fn settled(cache: &JwksCache, idp: &TestIdp) -> (jwks_sync::Status, u64) {
    let deadline = Instant::now() + Duration::from_secs(7);
    loop {
        let status = cache.status();
        let requests = idp.requests(JWKS_PATH);
        if status.refreshes.total() == requests || Instant::now() >= deadline {
            return (status, requests);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
