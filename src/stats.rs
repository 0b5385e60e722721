//! Counters and the `Status` snapshot.
//!
//! Lookup counters are striped: each thread bumps its own cache line, so two
//! readers never contend on one counter. Usage for the usage strategy is
//! moved to one shared total in batches, so the hot path touches shared
//! memory only once per batch.

use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::keyset::{Freshness, SkippedKey};
use crate::observe::labels::RULES;
use crate::policy::RefreshCause;
use crate::sync::{stripe_index, AtomicU64, Ordering};

/// Stripes owned by one thread each; one more, after them, is shared by
/// every thread beyond these (and never owned, so its updates are all
/// `fetch_add` and none is lost).
#[cfg(not(jwks_sync_loom))]
const STRIPES: usize = 64;
#[cfg(jwks_sync_loom)]
const STRIPES: usize = 1;

/// One thread's counters, alone on its cache lines (128 bytes: adjacent-line
/// prefetchers pull pairs).
#[repr(align(128))]
#[derive(Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
    suppressed: AtomicU64,
    /// Misses that asked the refresher for a fetch.
    asked: AtomicU64,
    /// Lookups refused because the set expired.
    expired: AtomicU64,
    /// Tokens that passed every rule.
    verified: AtomicU64,
}

/// Rejected tokens by rule: rarer than verified ones, so one relaxed
/// counter per rule, alone on its cache lines.
#[repr(align(128))]
struct Rejections([AtomicU64; RULES.len()]);

/// Lookup counters shared by readers.
pub(crate) struct LookupCounters {
    /// Inline (no pointer to chase on the hot path) and fixed-size (no
    /// bounds check): 8 KiB inside the cache's shared state.
    stripes: [Stripe; STRIPES + 1],
    /// `batch - 1`, batch a power of two.
    batch_mask: u64,
    /// Written once per batch by any reader: kept off the cache line of the
    /// fields every lookup reads.
    usage: UsageLine,
    rejections: Rejections,
}

/// Sums of the striped counters, for `status()` and the metrics export.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) suppressed: u64,
    pub(crate) asked: u64,
    pub(crate) expired: u64,
    pub(crate) verified: u64,
    pub(crate) rejected: [u64; RULES.len()],
}

/// The shared usage total and its trigger, alone on their cache lines.
#[repr(align(128))]
struct UsageLine {
    /// Hits moved here in batches; the usage strategy reads this.
    total: AtomicU64,
    /// `total` value at which a reader rings the refresher; `u64::MAX` when
    /// unarmed.
    arm: AtomicU64,
}

impl LookupCounters {
    /// `usage_threshold` sets the batch: small thresholds count precisely,
    /// large ones touch the shared total rarely (at most every 64 hits).
    pub(crate) fn new(usage_threshold: u64) -> Self {
        let target = (usage_threshold / 16).clamp(1, 64);
        let batch = 1u64 << (63 - target.leading_zeros());
        Self {
            stripes: std::array::from_fn(|_| Stripe::default()),
            batch_mask: batch - 1,
            usage: UsageLine {
                total: AtomicU64::new(0),
                arm: AtomicU64::new(u64::MAX),
            },
            rejections: Rejections(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[stripe_index().min(STRIPES)]
    }

    /// Counts a hit; returns `true` when this hit crossed the usage arm
    /// (exactly one caller sees `true` per arming).
    ///
    /// Up to `STRIPES` live threads each own a stripe (numbers of exited
    /// threads are reused), so they count with a plain load and store (no
    /// locked instruction); threads beyond that share the one unowned stripe
    /// with `fetch_add`.
    #[inline]
    pub(crate) fn hit(&self) -> bool {
        let index = stripe_index();
        // Relaxed: statistics only; the usage arm below is its own protocol.
        let n = if index < STRIPES {
            // Only this thread writes this stripe; readers of the sum may see
            // it a moment late, which is fine for a count.
            let hits = &self.stripes[index].hits;
            let n = hits.load(Ordering::Relaxed) + 1;
            hits.store(n, Ordering::Relaxed);
            n
        } else {
            self.stripes[STRIPES].hits.fetch_add(1, Ordering::Relaxed) + 1
        };
        n & self.batch_mask == 0 && self.flush_batch()
    }

    #[cold]
    fn flush_batch(&self) -> bool {
        // Relaxed: the refresher re-arms after reading `total`; a stale arm
        // at worst rings one batch late.
        let arm = self.usage.arm.load(Ordering::Relaxed);
        if arm == u64::MAX {
            // Disarmed (time strategy, or already rung until the next
            // success): nothing to count toward, and not writing keeps the
            // usage line shared in every reader's cache instead of bouncing.
            return false;
        }
        let batch = self.batch_mask + 1;
        // Relaxed: a count; ordering with the arm does not matter, a late
        // ring is as good as an early one.
        let total = self.usage.total.fetch_add(batch, Ordering::Relaxed) + batch;
        total >= arm
            && self
                .usage
                .arm
                .compare_exchange(arm, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Counts a miss: per thread, like a hit (an unknown-kid flood must
    /// scale like hits do).
    #[inline]
    pub(crate) fn miss(&self) {
        self.bump(|s| &s.misses);
    }

    /// Counts a miss that did not ask for a refresh (guard closed).
    #[inline]
    pub(crate) fn suppressed(&self) {
        self.bump(|s| &s.suppressed);
    }

    /// Adds one to a counter of this thread's stripe: a plain load and
    /// store on an owned stripe (one writer), `fetch_add` on the shared one.
    #[inline]
    fn bump(&self, field: impl Fn(&Stripe) -> &AtomicU64) {
        let index = stripe_index();
        // Relaxed: statistics only.
        if index < STRIPES {
            let counter = field(&self.stripes[index]);
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        } else {
            field(&self.stripes[STRIPES]).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a miss that asked for a refresh (won the unknown-kid gate).
    pub(crate) fn asked(&self) {
        // Relaxed: statistics only.
        self.stripe().asked.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a lookup refused because the set expired.
    pub(crate) fn expired(&self) {
        // Relaxed: statistics only.
        self.stripe().expired.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a verified token: per thread, like a hit.
    #[inline]
    pub(crate) fn verified(&self) {
        let index = stripe_index();
        // Relaxed: statistics only. An owned stripe has one writer (plain
        // load and store); the shared one takes `fetch_add`.
        if index < STRIPES {
            let verified = &self.stripes[index].verified;
            verified.store(verified.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        } else {
            self.stripes[STRIPES]
                .verified
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a token rejected by rule `rule` (an index into `RULES`).
    pub(crate) fn rejected(&self, rule: usize) {
        if let Some(counter) = self.rejections.0.get(rule) {
            // Relaxed: statistics only.
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every counter, summed over the stripes.
    pub(crate) fn totals(&self) -> Totals {
        Totals {
            hits: self.sum(|s| &s.hits),
            misses: self.sum(|s| &s.misses),
            suppressed: self.sum(|s| &s.suppressed),
            asked: self.sum(|s| &s.asked),
            expired: self.sum(|s| &s.expired),
            verified: self.sum(|s| &s.verified),
            // Relaxed: statistics only.
            rejected: std::array::from_fn(|i| self.rejections.0[i].load(Ordering::Relaxed)),
        }
    }

    /// Hits counted toward usage so far (flushed batches).
    pub(crate) fn usage_total(&self) -> u64 {
        // Relaxed: see `flush_batch`.
        self.usage.total.load(Ordering::Relaxed)
    }

    /// Arms the usage trigger at an absolute `usage_total` (`None` disarms).
    pub(crate) fn set_usage_arm(&self, at: Option<u64>) {
        // Relaxed: see `flush_batch`.
        self.usage
            .arm
            .store(at.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn sum(&self, f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            // Relaxed: statistics only.
            .map(|s| f(s).load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

/// Refreshes started, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshCounts {
    /// The first fetch (and its retries before any success, see `retry`).
    pub initial: u64,
    /// Lifetime or background threshold reached.
    pub scheduled: u64,
    /// Usage threshold reached.
    pub usage: u64,
    /// Unknown kid.
    pub unknown_kid: u64,
    /// `refresh_now`.
    pub manual: u64,
    /// A lookup found the set due (background refresh off).
    pub due: u64,
    /// Retries after failures.
    pub retry: u64,
}

impl RefreshCounts {
    pub(crate) fn count(&mut self, cause: RefreshCause) {
        let slot = match cause {
            RefreshCause::Initial => &mut self.initial,
            RefreshCause::Scheduled => &mut self.scheduled,
            RefreshCause::Usage => &mut self.usage,
            RefreshCause::UnknownKid => &mut self.unknown_kid,
            RefreshCause::Manual => &mut self.manual,
            RefreshCause::Due => &mut self.due,
            RefreshCause::Retry => &mut self.retry,
        };
        *slot += 1;
    }

    /// All fetches started.
    pub fn total(&self) -> u64 {
        self.initial
            + self.scheduled
            + self.usage
            + self.unknown_kid
            + self.manual
            + self.due
            + self.retry
    }
}

/// What the refresher thread is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RefresherState {
    /// Waiting for its next deadline or a demand.
    #[default]
    Idle,
    /// A fetch is in flight.
    Fetching,
    /// Waiting out a backoff after failures.
    BackingOff,
    /// Shut down.
    Stopped,
}

/// What only the refresher writes; read by `status()`.
#[derive(Debug, Default)]
pub(crate) struct Board {
    pub(crate) state: RefresherState,
    pub(crate) fetched_at: Option<Instant>,
    pub(crate) lifetime: Option<Duration>,
    pub(crate) next_refresh: Option<Instant>,
    /// The clock's time the latest finished round planned with.
    pub(crate) planned_at: Option<Instant>,
    pub(crate) due_at: Option<Instant>,
    pub(crate) expires_at: Option<Instant>,
    pub(crate) failures: u32,
    pub(crate) last_error: Option<Error>,
    pub(crate) refreshes: RefreshCounts,
    pub(crate) not_modified: u64,
    pub(crate) fetch_failures: u64,
    pub(crate) deferred: u64,
    /// The source name (`Builder::name`), for status, logs and metrics.
    pub(crate) name: String,
    /// When the current failure streak began (first failed fetch).
    pub(crate) failing_since: Option<Instant>,
    /// Times the set went past its lifetime and was served stale because
    /// refreshes failed.
    pub(crate) stale_episodes: u64,
    pub(crate) stop_reason: Option<String>,
}

/// A point-in-time view of the cache, from [`JwksCache::status`](crate::JwksCache::status).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Generation of the published set (0: none yet).
    pub generation: u64,
    /// Usable keys in the published set.
    pub key_count: usize,
    /// Entries of the published set that were skipped, with reasons.
    pub skipped: Vec<SkippedKey>,
    /// The refresher's current activity.
    pub state: RefresherState,
    /// Last successful fetch (new set or 304).
    pub fetched_at: Option<Instant>,
    /// Time since `fetched_at`.
    pub age: Option<Duration>,
    /// Lifetime granted by the last success.
    pub lifetime: Option<Duration>,
    /// Next fetch the schedule plans by itself (background or retry).
    pub next_refresh: Option<Instant>,
    /// The clock's time the refresher last planned with: the `now` of its
    /// latest finished round (`None` before the first). With a
    /// [`ManualClock`](crate::ManualClock), once this reaches the clock's
    /// time after an [`advance`](crate::ManualClock::advance) the refresher
    /// has acted on that time: what fell due was fetched (or failed) and the
    /// set's due and stale marks are published. Tests wait for it instead
    /// of sleeping.
    pub planned_at: Option<Instant>,
    /// When the set is (or became) due; stale serving starts if refreshes fail.
    pub stale_at: Option<Instant>,
    /// When lookups start failing closed if no refresh succeeds.
    pub expires_at: Option<Instant>,
    /// Failed fetches since the last success.
    pub consecutive_failures: u32,
    /// The latest failure, kept until the next success.
    pub last_error: Option<Error>,
    /// Lookups by kid (hits + misses).
    pub lookups: u64,
    /// Lookups that found their key.
    pub hits: u64,
    /// Lookups that did not (a lookup that waited for a refresh and then
    /// found its key counts one miss and one hit).
    pub misses: u64,
    /// Fetches started, by cause.
    pub refreshes: RefreshCounts,
    /// Fetches answered `304 Not Modified`.
    pub not_modified: u64,
    /// Refresh requests held back by a guard: misses inside the unknown-kid
    /// cooldown and usage triggers inside `min_refresh_interval`.
    pub suppressed_refreshes: u64,
    /// Fetches that failed.
    pub fetch_failures: u64,
    /// The source name ([`Builder::name`](crate::Builder::name)): the
    /// `source` label of every metric.
    pub name: String,
    /// When this snapshot was taken, on the cache's clock.
    pub taken_at: Instant,
    /// When this snapshot was taken, wall clock. Every `*_wall` field is
    /// its `Instant` counterpart placed relative to this moment.
    pub taken_at_wall: SystemTime,
    /// `fetched_at`, wall clock.
    pub fetched_at_wall: Option<SystemTime>,
    /// `next_refresh`, wall clock.
    pub next_refresh_wall: Option<SystemTime>,
    /// `stale_at`, wall clock.
    pub stale_at_wall: Option<SystemTime>,
    /// `expires_at`, wall clock.
    pub expires_at_wall: Option<SystemTime>,
    /// When the current run of failed fetches began (`None` when the latest
    /// fetch succeeded).
    pub failing_since: Option<Instant>,
    /// `failing_since`, wall clock.
    pub failing_since_wall: Option<SystemTime>,
    /// Misses that asked the refresher for a fetch (at most one per
    /// unknown-kid cooldown).
    pub unknown_kid_refreshes_asked: u64,
    /// Misses that did not ask: inside the cooldown, or a kid in the
    /// negative cache. (`suppressed_refreshes` adds deferred usage triggers.)
    pub unknown_kid_refreshes_suppressed: u64,
    /// Lookups refused because the set expired (fail closed).
    pub lookups_refused_expired: u64,
    /// Times the set went past its lifetime and was served stale because
    /// refreshes failed.
    pub sets_served_stale: u64,
    /// Tokens that passed every rule of a [`Verifier`](crate::Verifier) on
    /// this cache.
    pub tokens_verified: u64,
    /// Tokens rejected, all rules together.
    pub tokens_rejected: u64,
    /// Tokens rejected, by rule (the `rule` label values of the README's
    /// metric table), rules with no rejection left out.
    pub rejections: Vec<(&'static str, u64)>,
    /// How the published set is served, for [`Status::health`].
    pub(crate) freshness: Freshness,
    /// Why the refresher stopped, when it did not stop because the cache
    /// was dropped: the panic message of the thread. With the refresher
    /// gone nothing is fetched again; lookups keep the current set until its
    /// hard-expiry deadline (`expires_at`) and fail closed after it.
    pub stop_reason: Option<String>,
}

pub(crate) fn snapshot(
    counters: &LookupCounters,
    board: &Board,
    set: &crate::keyset::KeySet,
    now: Instant,
) -> Status {
    let totals = counters.totals();
    let (hits, misses) = (totals.hits, totals.misses);
    let taken_at_wall = SystemTime::now();
    let wall = |t: Option<Instant>| t.map(|t| crate::health::wall_clock(t, now, taken_at_wall));
    Status {
        generation: set.generation(),
        key_count: set.keys().len(),
        skipped: set.skipped().to_vec(),
        state: board.state,
        fetched_at: board.fetched_at,
        age: board.fetched_at.map(|t| now.saturating_duration_since(t)),
        lifetime: board.lifetime,
        next_refresh: board.next_refresh,
        planned_at: board.planned_at,
        stale_at: board.due_at,
        expires_at: board.expires_at,
        consecutive_failures: board.failures,
        last_error: board.last_error.clone(),
        lookups: hits.wrapping_add(misses),
        hits,
        misses,
        refreshes: board.refreshes,
        not_modified: board.not_modified,
        suppressed_refreshes: totals.suppressed + board.deferred,
        fetch_failures: board.fetch_failures,
        name: board.name.clone(),
        taken_at: now,
        taken_at_wall,
        fetched_at_wall: wall(board.fetched_at),
        next_refresh_wall: wall(board.next_refresh),
        stale_at_wall: wall(board.due_at),
        expires_at_wall: wall(board.expires_at),
        failing_since: board.failing_since,
        failing_since_wall: wall(board.failing_since),
        unknown_kid_refreshes_asked: totals.asked,
        unknown_kid_refreshes_suppressed: totals.suppressed,
        lookups_refused_expired: totals.expired,
        sets_served_stale: board.stale_episodes,
        tokens_verified: totals.verified,
        tokens_rejected: totals.rejected.iter().fold(0u64, |a, b| a.wrapping_add(*b)),
        rejections: RULES
            .iter()
            .zip(totals.rejected)
            .filter(|(_, n)| *n > 0)
            .map(|(rule, n)| (*rule, n))
            .collect(),
        freshness: set.freshness(),
        stop_reason: board.stop_reason.clone(),
    }
}
