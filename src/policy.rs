//! The refresh schedule as a pure state machine.
//!
//! It takes `now` and what happened (demands, fetch outcomes) and answers
//! what to do: fetch or not and why, how fresh the published set is, whether
//! an unknown kid may ask for a refresh, when usage should ring, and when to
//! wake up next. It never reads a clock, sleeps, or touches shared memory;
//! `source.rs` applies its answers. The rules are the ones in DESIGN.md:
//!
//! | rule | where |
//! |---|---|
//! | time: due at `t0 + L`; usage: due after `U` hits | [`Policy::poll`] |
//! | background at `t0 + θL` (+ jitter) or `θU` hits, re-armed every refresh | [`Policy::on_fetch_done`] |
//! | background off: a lookup on a due set asks and waits | [`Freshness::Due`] |
//! | usage (and due) triggers wait for `min_refresh_interval` | `allowed` in [`Policy::poll`] |
//! | unknown kid: one fetch per `unknown_kid_cooldown` | [`Plan::miss_gate_open`] |
//! | stale-while-error, then fail closed | [`Freshness::Expired`] |
//! | exponential backoff with full jitter, reset on success | [`Policy::on_fetch_done`] |

use std::time::{Duration, Instant};

use crate::keyset::Freshness;

/// Which signals make a key set due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RefreshStrategy {
    /// Due after the lifetime (interval or HTTP cache headers) has passed.
    Time,
    /// Due after a number of successful lookups.
    Usage,
    /// Due at whichever of the two comes first.
    #[default]
    Both,
}

impl RefreshStrategy {
    fn by_time(self) -> bool {
        matches!(self, RefreshStrategy::Time | RefreshStrategy::Both)
    }
    fn by_usage(self) -> bool {
        matches!(self, RefreshStrategy::Usage | RefreshStrategy::Both)
    }
}

/// Why a fetch was started; counted per cause in `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefreshCause {
    /// The first fetch after start.
    Initial,
    /// The lifetime (or its background threshold) was reached.
    Scheduled,
    /// The usage threshold (or its background share) was reached.
    Usage,
    /// A lookup missed an unknown kid.
    UnknownKid,
    /// `JwksCache::refresh_now`.
    Manual,
    /// Background refresh off: a lookup found the set due.
    Due,
    /// A retry after a failed fetch.
    Retry,
}

/// The schedule's settings, validated by the builder.
#[derive(Debug, Clone)]
pub(crate) struct PolicyConfig {
    pub(crate) strategy: RefreshStrategy,
    pub(crate) interval: Duration,
    pub(crate) usage_threshold: u64,
    /// θ in (0, 1); `None` turns background refresh off.
    pub(crate) background: Option<f64>,
    pub(crate) jitter: bool,
    pub(crate) min_refresh_interval: Duration,
    pub(crate) unknown_kid_cooldown: Duration,
    pub(crate) stale_while_error: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) use_cache_headers: bool,
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
}

impl PolicyConfig {
    /// The lifetime a success grants: the response's `max_age` clamped to
    /// `[min_ttl, max_ttl]` when header use is on, else the interval.
    pub(crate) fn lifetime_for(&self, max_age: Option<Duration>) -> Duration {
        match max_age {
            Some(age) if self.use_cache_headers => age.clamp(self.min_ttl, self.max_ttl),
            _ => self.interval,
        }
    }
}

/// Demands gathered since the last decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Demands {
    pub(crate) manual: bool,
    pub(crate) unknown_kid: bool,
    pub(crate) usage: bool,
    pub(crate) due: bool,
}

/// How a fetch ended, as far as scheduling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new set, or `304 Not Modified`; `max_age` from the response headers.
    Success { max_age: Option<Duration> },
    /// The fetch or the document failed.
    Failure {
        transient: bool,
        retry_after: Option<Duration>,
    },
}

/// What the refresher should do now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Start a fetch for this reason.
    pub(crate) fetch: Option<RefreshCause>,
    /// The freshness to publish in the current set (`None`: no set yet).
    pub(crate) freshness: Option<Freshness>,
    /// Whether an unknown kid may ask for a refresh now.
    pub(crate) miss_gate_open: bool,
    /// Hits since the last success at which readers should ring.
    pub(crate) usage_arm: Option<u64>,
    /// When to decide again if nothing rings first.
    pub(crate) wake_at: Option<Instant>,
    /// The earliest moment an unknown kid's demand would start a fetch: the
    /// end of the cooldown, or the next retry while failing (`None`: no set
    /// yet; at or before `now`: at once).
    pub(crate) miss_fetch_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UsageStage {
    /// Armed at θ·U (background refresh on).
    Early,
    /// Armed at U: reaching it makes the set due.
    Due,
    /// Not armed.
    Off,
}

/// The schedule's state; see the module docs.
#[derive(Debug)]
pub(crate) struct Policy {
    cfg: PolicyConfig,
    rng: u64,
    /// Last success (new set or 304).
    t0: Option<Instant>,
    lifetime: Duration,
    /// Background refresh time (time strategy, background on).
    background_at: Option<Instant>,
    usage_stage: UsageStage,
    /// The moment the set became due (by time or usage).
    due_at: Option<Instant>,
    /// A reader found the set due (background off) and asked for a fetch.
    due_demanded: bool,
    usage_pending: bool,
    miss_pending: bool,
    manual_pending: bool,
    failures: u32,
    retry_at: Option<Instant>,
    last_fetch_start: Option<Instant>,
}

impl Policy {
    pub(crate) fn new(cfg: PolicyConfig, seed: u64) -> Self {
        Self {
            lifetime: cfg.interval,
            cfg,
            rng: seed,
            t0: None,
            background_at: None,
            usage_stage: UsageStage::Off,
            due_at: None,
            due_demanded: false,
            usage_pending: false,
            miss_pending: false,
            manual_pending: false,
            failures: 0,
            retry_at: None,
            last_fetch_start: None,
        }
    }

    /// Records demands rung by readers or callers.
    pub(crate) fn on_demands(&mut self, now: Instant, d: Demands) {
        self.manual_pending |= d.manual;
        self.miss_pending |= d.unknown_kid;
        self.due_demanded |= d.due;
        if d.usage {
            match self.usage_stage {
                UsageStage::Early => {
                    self.usage_pending = true;
                    self.usage_stage = UsageStage::Due;
                }
                UsageStage::Due => {
                    self.due_at = Some(self.due_at.map_or(now, |d| d.min(now)));
                    self.usage_stage = UsageStage::Off;
                    // In the background mode the refresher fetches a due set
                    // by itself; without it, readers ask (`Freshness::Due`).
                    if self.cfg.background.is_some() {
                        self.usage_pending = true;
                    }
                }
                UsageStage::Off => {}
            }
        }
    }

    /// Decides what to do at `now`, in five named steps:
    ///
    /// | step | decides | from |
    /// |---|---|---|
    /// | [`mark_due`](Self::mark_due) | whether the set in service is due (time arm); drops a stale "due" ring | `t0`, lifetime, `due_at` |
    /// | [`gates`](Self::gates) | when usage/due triggers, unknown kids and retries may next fetch | last fetch start, `retry_at` |
    /// | [`choose_fetch`](Self::choose_fetch) | fetch now, and why: manual, initial/retry, scheduled, due, usage, unknown kid (in that order) | pending demands, gates |
    /// | [`freshness`](Self::freshness) | what readers may do with the set: fresh, due (ask and wait), stale, expired | `due_at`, failures, the fetch decision |
    /// | [`wake_at`](Self::wake_at) | the earliest instant at which another step would decide differently | every deadline above |
    pub(crate) fn poll(&mut self, now: Instant) -> Plan {
        self.mark_due(now);
        let gates = self.gates(now);
        let fetch = self.choose_fetch(now, &gates);
        let freshness = self.freshness(now, fetch.is_some());
        let has_set = self.t0.is_some();
        let miss_gate_open =
            has_set && self.failures == 0 && !self.miss_pending && gates.miss_passed;
        let miss_fetch_at = match (has_set, self.failures) {
            (false, _) => None,
            (true, 0) => Some(gates.miss_at.map_or(now, |g| g.max(now))),
            (true, _) => Some(self.retry_at.map_or(now, |r| r.max(now))),
        };
        let usage_arm = match (has_set && self.cfg.strategy.by_usage(), self.usage_stage) {
            (true, UsageStage::Early) => Some(self.background_share(self.cfg.usage_threshold)),
            (true, UsageStage::Due) => Some(self.cfg.usage_threshold),
            _ => None,
        };
        let wake_at = match fetch {
            Some(_) => None,
            None => self.wake_at(now, &gates, miss_gate_open, freshness),
        };
        Plan {
            fetch,
            freshness,
            miss_gate_open,
            usage_arm,
            wake_at,
            miss_fetch_at,
        }
    }

    /// Step 1: the time arm marks the set due at `t0 + L`. A "due" ring
    /// from a reader that saw the set before the last refresh replaced it
    /// asks for nothing: the set in service is not due.
    fn mark_due(&mut self, now: Instant) {
        if let (Some(t0), true) = (self.t0, self.cfg.strategy.by_time()) {
            let due = after(t0, self.lifetime);
            if now >= due {
                self.due_at = Some(self.due_at.map_or(due, |d| d.min(due)));
            }
        }
        if self.due_at.is_none() {
            self.due_demanded = false;
        }
    }

    /// Step 2: when each kind of trigger may next start a fetch.
    fn gates(&self, now: Instant) -> Gates {
        let allowed_at = self
            .last_fetch_start
            .map(|s| after(s, self.cfg.min_refresh_interval));
        let miss_at = self
            .last_fetch_start
            .map(|s| after(s, self.cfg.unknown_kid_cooldown));
        Gates {
            allowed_at,
            allowed: allowed_at.is_none_or(|a| now >= a),
            miss_at,
            miss_passed: miss_at.is_none_or(|g| now >= g),
            retry_due: self.retry_at.is_none_or(|r| now >= r),
        }
    }

    /// Step 3: whether to fetch now, and the cause reported for it.
    fn choose_fetch(&self, now: Instant, g: &Gates) -> Option<RefreshCause> {
        if self.manual_pending {
            Some(RefreshCause::Manual)
        } else if self.t0.is_none() || self.failures > 0 {
            match (g.retry_due, self.failures) {
                (true, 0) => Some(RefreshCause::Initial),
                (true, _) => Some(RefreshCause::Retry),
                (false, _) => None,
            }
        } else if self.background_at.is_some_and(|b| now >= b) {
            // Time triggers are bounded by the lifetime itself (>= min_ttl);
            // only usage-driven ones need `min_refresh_interval`.
            Some(RefreshCause::Scheduled)
        } else if self.due_demanded && g.allowed {
            Some(RefreshCause::Due)
        } else if self.usage_pending && g.allowed {
            Some(RefreshCause::Usage)
        } else if self.miss_pending && g.miss_passed {
            Some(RefreshCause::UnknownKid)
        } else {
            None
        }
    }

    /// Step 4: what readers may do with the set in service (`None`: no set).
    fn freshness(&self, now: Instant, fetching: bool) -> Option<Freshness> {
        let lazy = self.cfg.background.is_none() && self.failures == 0;
        self.t0.is_some().then(|| match self.due_at {
            None => Freshness::Fresh,
            // The fetch for a due set starts now: keep readers waiting for it.
            Some(_) if lazy && fetching => Freshness::Due,
            Some(_) if lazy && !self.due_demanded => Freshness::Due,
            Some(d) if now >= after(d, self.cfg.stale_while_error) => Freshness::Expired,
            Some(_) => Freshness::Stale,
        })
    }

    /// Step 5 (no fetch now): the earliest instant at which a step above
    /// would decide differently, so the refresher sleeps until then.
    fn wake_at(
        &self,
        now: Instant,
        g: &Gates,
        miss_gate_open: bool,
        freshness: Option<Freshness>,
    ) -> Option<Instant> {
        let has_set = self.t0.is_some();
        let mut wake = WakeAt {
            now,
            earliest: None,
        };
        if !has_set || self.failures > 0 {
            wake.at(self.retry_at);
        } else {
            wake.at(self.background_at);
            if self.due_demanded || self.usage_pending {
                wake.at(g.allowed_at);
            }
            if self.miss_pending {
                wake.at(g.miss_at);
            }
        }
        if has_set && !miss_gate_open && self.failures == 0 {
            wake.at(g.miss_at);
        }
        match (self.t0, self.due_at) {
            (Some(t0), None) if self.cfg.strategy.by_time() => {
                wake.at(Some(after(t0, self.lifetime)))
            }
            (_, Some(d)) if freshness != Some(Freshness::Expired) => {
                wake.at(Some(after(d, self.cfg.stale_while_error)))
            }
            _ => {}
        }
        wake.earliest
    }

    /// A fetch starts: every pending demand is served by it.
    pub(crate) fn on_fetch_start(&mut self, now: Instant) {
        self.last_fetch_start = Some(now);
        self.manual_pending = false;
        self.miss_pending = false;
        self.usage_pending = false;
        self.due_demanded = false;
        self.background_at = None;
    }

    /// A fetch ended.
    pub(crate) fn on_fetch_done(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Success { max_age } => {
                self.lifetime = self.lifetime_for(max_age);
                self.t0 = Some(now);
                self.failures = 0;
                self.retry_at = None;
                self.due_at = None;
                self.background_at = match (self.cfg.background, self.cfg.strategy.by_time()) {
                    (Some(theta), true) => {
                        let early = self.lifetime.mul_f64(theta);
                        let spread = if self.cfg.jitter {
                            self.random_up_to(self.lifetime.mul_f64((1.0 - theta) / 2.0))
                        } else {
                            Duration::ZERO
                        };
                        Some(after(after(now, early), spread))
                    }
                    _ => None,
                };
                self.usage_stage = match (self.cfg.strategy.by_usage(), self.cfg.background) {
                    (false, _) => UsageStage::Off,
                    (true, Some(_)) => UsageStage::Early,
                    (true, None) => UsageStage::Due,
                };
            }
            Outcome::Failure {
                transient,
                retry_after,
            } => {
                self.failures = self.failures.saturating_add(1);
                let mut delay = if transient {
                    let cap = self.backoff_cap(self.failures);
                    if self.cfg.jitter {
                        self.random_up_to(cap)
                    } else {
                        cap
                    }
                } else {
                    // 4xx, TLS, malformed: do not hammer; try again rarely.
                    self.cfg.backoff_max
                };
                if let Some(ra) = retry_after {
                    delay = delay.max(ra.min(self.cfg.backoff_max));
                }
                self.retry_at = Some(after(now, delay));
            }
        }
    }

    /// The lifetime a success grants: the response's `max_age` clamped to
    /// `[min_ttl, max_ttl]` when header use is on, else the interval.
    pub(crate) fn lifetime_for(&self, max_age: Option<Duration>) -> Duration {
        self.cfg.lifetime_for(max_age)
    }

    /// The exponential backoff ceiling after `failures` consecutive failures.
    pub(crate) fn backoff_cap(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(20);
        self.cfg
            .backoff_base
            .saturating_mul(factor)
            .min(self.cfg.backoff_max)
    }

    fn background_share(&self, threshold: u64) -> u64 {
        let theta = self.cfg.background.unwrap_or(1.0);
        // Saturating float-to-int cast; at least one hit.
        ((threshold as f64 * theta) as u64).max(1)
    }

    /// Uniform in `[0, max]` (splitmix64).
    fn random_up_to(&mut self, max: Duration) -> Duration {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        max.mul_f64(unit)
    }

    /// Consecutive failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// The last success.
    pub(crate) fn fetched_at(&self) -> Option<Instant> {
        self.t0
    }

    /// The lifetime granted by the last success.
    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// When the set became (or, by time, becomes) due.
    pub(crate) fn due_at(&self) -> Option<Instant> {
        self.due_at.or_else(|| {
            self.t0
                .filter(|_| self.cfg.strategy.by_time())
                .map(|t0| after(t0, self.lifetime))
        })
    }

    /// When lookups start failing closed if no refresh succeeds.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.due_at().map(|d| after(d, self.cfg.stale_while_error))
    }

    /// The next fetch the schedule plans by itself (retry or background).
    pub(crate) fn next_fetch_at(&self) -> Option<Instant> {
        if self.t0.is_none() || self.failures > 0 {
            self.retry_at
        } else {
            self.background_at
        }
    }
}

/// `t + d`, saturating: a deadline too far to represent is pushed as far
/// as the platform allows (centuries), never overflowing or panicking.
pub(crate) fn after(t: Instant, d: Duration) -> Instant {
    let mut d = d;
    // At most ~94 halvings of a `Duration`; only taken on overflow.
    loop {
        if let Some(later) = t.checked_add(d) {
            return later;
        }
        if d.is_zero() {
            return t;
        }
        d /= 2;
    }
}

/// The earliest of several optional instants still in the future.
/// When each kind of trigger may next start a fetch (step 2 of `poll`).
struct Gates {
    /// Usage and due triggers: `min_refresh_interval` after the last start.
    allowed_at: Option<Instant>,
    allowed: bool,
    /// Unknown kids: `unknown_kid_cooldown` after the last start.
    miss_at: Option<Instant>,
    miss_passed: bool,
    /// The backoff's retry instant has come (or there is none).
    retry_due: bool,
}

struct WakeAt {
    now: Instant,
    earliest: Option<Instant>,
}

impl WakeAt {
    fn at(&mut self, t: Option<Instant>) {
        if let Some(t) = t.filter(|t| *t > self.now) {
            self.earliest = Some(self.earliest.map_or(t, |w| w.min(t)));
        }
    }
}

#[cfg(test)]
mod tests;
