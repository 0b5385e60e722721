//! The `JwksCache` handle: the reader fast path, demands, bounded waits.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::jwk::Key;
use crate::keyset::{Freshness, KeySet};
use crate::shared::{Rounds, Shared, DUE, MANUAL, MISS, USAGE};
use crate::source::Keep;
use crate::stats::{snapshot, Status};
use crate::sync::{Arc, Ordering};

/// A cached JSON Web Key Set, refreshed by one background thread.
///
/// Cloning is cheap and every clone shares the same keys and thread; when the
/// last clone is dropped the refresher is stopped and joined. A cache built
/// on its own ([`Builder::build`](crate::Builder::build)) is a registry of one source: one thread.
/// A handle from a [`Registry`](crate::Registry) shares the registry's
/// scheduler instead: dropping it stops nothing
/// ([`Registry::unregister`](crate::Registry::unregister) does).
///
/// - **Reads** ([`with_key`](Self::with_key), [`get`](Self::get)) are
///   lock-free and, in practice, wait-free: each thread keeps its own
///   snapshot of the published set and checks it with one plain atomic load
///   (no locked instruction, no shared write, no allocation), then a hash
///   lookup and a per-thread counter; only the first lookup after a refresh
///   loads the new set. Unknown kids (a flood of them included) take the
///   same path while no refresh may be asked for. They never touch the network.
/// - **Memory of the snapshots**: a thread keeps at most one set per cache
///   (16 slots per thread, shared by caches when there are more), so a set
///   replaced by a refresh stays alive until every thread that looked it up
///   looks the cache up again or exits; dropping a cache does not free the
///   sets other threads cached until they reuse the slot or exit.
/// - **What may block**, and for how long: [`wait_ready`](Self::wait_ready),
///   [`get_or_wait`](Self::get_or_wait) and
///   [`with_key_or_wait`](Self::with_key_or_wait) up to the timeout you pass
///   (plus, background refresh off, `Builder::expired_wait` for a due set);
///   [`refresh_now`](Self::refresh_now) up to `Builder::refresh_timeout`;
///   with background refresh off, every lookup ([`with_key`](Self::with_key),
///   [`get`](Self::get), and so `Verifier::verify`) that finds the set due
///   waits up to `Builder::expired_wait` for the one shared refresh; dropping
///   the last handle waits for an in-flight fetch to end (bounded by the
///   fetcher's own timeouts). Nothing blocks when called from an
///   `on_refresh` hook (on the refresher thread).
/// - **Deadlines hold without the refresher**: a set's hard-expiry deadline
///   (lifetime + `stale_while_error`) is fixed when it is published, and
///   lookups fail closed after it even if the refresher thread died or is
///   stuck in a hook ([`Status::stop_reason`](crate::Status::stop_reason)
///   says why it stopped).
#[derive(Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
    /// A cache of its own: its scheduler (stopped and joined with the last
    /// handle). A registry's handle: which threads are the registry's.
    _owner: Arc<Box<dyn Keep>>,
}

impl JwksCache {
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, owner: Arc<Box<dyn Keep>>) -> Self {
        Self {
            _owner: owner,
            shared,
        }
    }

    /// Runs `f` on the key for `kid`: the hot path.
    ///
    /// Lock-free, no reference count touched, no shared counter bumped: the
    /// key stays valid for the duration of `f` even if a refresh publishes a
    /// new set meanwhile. Keep `f` short (it delays freeing a replaced set).
    ///
    /// On a miss, asks for a refresh (at most once per
    /// `Builder::unknown_kid_cooldown`) without waiting, and returns
    /// [`Error::UnknownKid`]; use [`get_or_wait`](Self::get_or_wait) to wait.
    /// A kid longer than `Builder::max_kid_len` misses at once, before
    /// hashing, and asks for nothing. A kid found absent by a refresh is
    /// negatively cached, but asks again once the cooldown has passed.
    ///
    /// ```
    /// # let cache = jwks_sync::doc_cache();
    /// let algorithms = cache.with_key("k1", |key| key.algorithms())?;
    /// assert!(algorithms.contains(jwks_sync::Algorithm::ES256));
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[inline]
    pub fn with_key<R>(&self, kid: &str, f: impl FnOnce(&Key) -> R) -> Result<R, Error> {
        match self.hit(kid, true, move |key: &Arc<Key>| f(key)) {
            Lookup::Hit(r) => Ok(r),
            Lookup::Unknown => Err(Error::UnknownKid),
            Lookup::Slow(f) => Ok(f(&self.resolve(kid, None)?)),
        }
    }

    /// Like [`with_key`](Self::with_key), but on a miss waits up to `timeout`
    /// for the refresh it asks for (or joins), as [`get_or_wait`](Self::get_or_wait)
    /// does. Hits take the same lock-free path.
    #[inline]
    pub fn with_key_or_wait<R>(
        &self,
        kid: &str,
        timeout: Duration,
        f: impl FnOnce(&Key) -> R,
    ) -> Result<R, Error> {
        match self.hit(kid, false, move |key: &Arc<Key>| f(key)) {
            Lookup::Hit(r) => Ok(r),
            Lookup::Unknown => Err(Error::UnknownKid),
            Lookup::Slow(f) => Ok(f(&self.get_or_wait(kid, timeout)?)),
        }
    }

    /// The key for `kid`, as a shared handle. Same rules as
    /// [`with_key`](Self::with_key); costs one reference-count increment.
    pub fn get(&self, kid: &str) -> Result<Arc<Key>, Error> {
        match self.hit(kid, true, Arc::clone) {
            Lookup::Hit(key) => Ok(key),
            Lookup::Unknown => Err(Error::UnknownKid),
            Lookup::Slow(_) => self.resolve(kid, None),
        }
    }

    /// The fast path shared by every lookup, on this thread's cached
    /// snapshot of the published set (`local.rs`: one plain atomic load, no
    /// shared write): a servable set that has the kid runs `f` on the key
    /// and counts a hit. With `fast_miss`, a kid absent from a fresh set
    /// while the unknown-kid gate is closed is counted (miss, suppressed)
    /// and answered `Unknown` here, without a shared write: exactly what
    /// the slow path would do, as the gate closed means no refresh can be
    /// asked for. Anything else hands `f` back for the slow path. An
    /// over-long kid never reaches the hash.
    #[inline]
    fn hit<R, F: FnOnce(&Arc<Key>) -> R>(&self, kid: &str, fast_miss: bool, f: F) -> Lookup<R, F> {
        let shared = &*self.shared;
        if kid.len() > shared.max_kid_len {
            return Lookup::Slow(f);
        }
        crate::local::with_published(&shared.current, |set| match set.get(kid) {
            Some(key) if set.fast_servable() || self.servable_unwatched(set) => {
                if shared.counters.hit() {
                    shared.ring(USAGE);
                }
                Lookup::Hit(f(key))
            }
            // A fast-servable set is watched, fresh or stale: not due, not
            // expired. Generation 0 (nothing loaded) answers `NotReady`.
            None if fast_miss
                && set.fast_servable()
                && set.generation() != 0
                // Acquire: pairs with the refresher's Release when it
                // reopens the gate (as in `ask_refresh`); a plain load.
                && !shared.miss_gate.load(Ordering::Acquire) =>
            {
                shared.counters.miss();
                shared.counters.suppressed();
                Lookup::Unknown
            }
            _ => Lookup::Slow(f),
        })
    }

    /// A set no parked refresher watches (it is busy, in a hook, or gone;
    /// or the clock just jumped) is served only before its deadline: the
    /// reader reads the clock itself.
    #[cold]
    #[inline(never)]
    fn servable_unwatched(&self, set: &KeySet) -> bool {
        !set.watched() && self.live(set).servable()
    }

    /// `set`'s freshness, with the deadline enforced here when no parked
    /// refresher watches it.
    fn live(&self, set: &KeySet) -> Freshness {
        let f = set.freshness();
        if f != Freshness::Expired && !set.watched() && self.shared.past_deadline(set) {
            Freshness::Expired
        } else {
            f
        }
    }

    /// The key for `kid`; on a miss, asks for a refresh (subject to the
    /// unknown-kid cooldown) and waits up to `timeout` for it, also joining a
    /// refresh already in flight. Inside the cooldown it waits for the next
    /// permitted fetch when that falls within `timeout` (not for a kid in
    /// the negative cache). Before the first set is loaded it waits for
    /// that, riding over transient failures like
    /// [`wait_ready`](Self::wait_ready). Returns [`Error::UnknownKid`] when
    /// the refresh did not bring the kid, or at once when no refresh can
    /// come within `timeout`; the refresh's own error when it failed;
    /// [`Error::Timeout`] when `timeout` ran out.
    pub fn get_or_wait(&self, kid: &str, timeout: Duration) -> Result<Arc<Key>, Error> {
        let deadline = deadline_after(timeout);
        if kid.len() > self.shared.max_kid_len {
            // Could never be in a set: no fetch, no wait, no negative entry.
            self.shared.counters.miss();
            return Err(Error::UnknownKid);
        }
        if self.shared.current.load().generation() == 0 {
            self.wait_ready_until(deadline)?;
        }
        self.resolve(kid, Some(deadline))
    }

    /// The slow path: due, expired or unwatched sets, and misses.
    #[cold]
    #[inline(never)]
    fn resolve(&self, kid: &str, wait: Option<Instant>) -> Result<Arc<Key>, Error> {
        let shared = &*self.shared;
        if kid.len() > shared.max_kid_len {
            // Could never be in a set: no fetch, no negative entry.
            shared.counters.miss();
            return Err(Error::UnknownKid);
        }
        let set = self.refreshed_if_due()?;
        if let Some(found) = self.serve(&set, kid) {
            return found;
        }
        shared.counters.miss();
        if set.generation() == 0 {
            return Err(Error::NotReady {
                last_error: shared.last_error(),
            });
        }
        if self.live(&set) == Freshness::Expired {
            return Err(self.expired_error());
        }
        let outcome = self.ask_refresh(kid, Ask::UnknownKid, set.generation(), wait)?;
        match self.serve(&shared.current.load_full(), kid) {
            Some(found) => found,
            // The refresh we waited for failed: that is the useful answer.
            None => match outcome {
                Some(Err(e)) => Err(e),
                _ => Err(Error::UnknownKid),
            },
        }
    }

    /// Asks for a refresh on behalf of `kid` under the unknown-kid guard
    /// (one fetch per cooldown, whatever the traffic) and, with `wait`,
    /// waits for the fetch that serves it: the one it starts, the one in
    /// flight, or (`Ask::UnknownKid` only, and not for a negatively cached
    /// kid) the next one the guard permits if it comes before `wait`.
    /// Either way at most one fetch per cooldown: the policy starts a fetch
    /// for a `MISS` demand only once the guard permits it.
    /// `Ok(None)`: nothing was waited for; `Ok(Some(_))`: the outcome of the
    /// fetch waited for (`Ok(())` too when a set newer than `generation` was
    /// published meanwhile).
    fn ask_refresh(
        &self,
        kid: &str,
        ask: Ask,
        generation: u64,
        wait: Option<Instant>,
    ) -> Result<Option<Result<(), Error>>, Error> {
        let shared = &*self.shared;
        let unknown = ask == Ask::UnknownKid;
        // Every unknown-kid miss that reaches here either asks for a fetch
        // or is counted as suppressed (statistics and metrics rely on it);
        // a re-key ask is neither.
        let suppressed = || {
            if unknown {
                shared.counters.suppressed();
            }
        };
        // Waiting on the refresher thread would stall the refresher.
        let wait = wait.filter(|_| !self.on_refresher_thread());
        // Acquire: pairs with the refresher's Release when it reopens the gate.
        let gate_maybe_open = shared.miss_gate.load(Ordering::Acquire);
        if !gate_maybe_open && wait.is_none() {
            suppressed();
            return Ok(None);
        }
        let rounds = shared.rounds.lock();
        // A refresh may have published a new set since we looked: no fetch
        // is asked for, so the miss counts as suppressed.
        if shared.current.load().generation() != generation {
            suppressed();
            return Ok(Some(Ok(())));
        }
        // AcqRel: only one caller per cooldown wins the gate; pairs with the
        // refresher's Release store that reopened it.
        let target = if gate_maybe_open && shared.miss_gate.swap(false, Ordering::AcqRel) {
            // The refresher reopens the gate after it publishes, without
            // the rounds lock: a set may have come since the check above.
            if shared.current.load().generation() != generation {
                // Release: as the refresher's reopening store, which this
                // undoes our claim of; no fetch is needed.
                shared.miss_gate.store(true, Ordering::Release);
                suppressed();
                return Ok(Some(Ok(())));
            }
            if unknown {
                *shared.missed_kid.lock() = Some(Box::from(kid));
                shared.counters.asked();
            }
            shared.ring(MISS);
            Some(rounds.started + 1)
        } else {
            // Acquire: pairs with `Shared::ring`; a pending manual demand
            // means the next round fetches.
            let manual = shared.pending.load(Ordering::Acquire) & MANUAL != 0;
            if rounds.fetching {
                suppressed();
                Some(rounds.started)
            } else if manual {
                suppressed();
                Some(rounds.started + 1)
            } else if wait.is_some_and(|w| {
                // A patient ask (a kid not yet found absent) waits for the
                // next fetch the guard permits if it comes before the
                // caller's deadline; the others (a negatively cached kid, a
                // re-key) only if the guard permits one now, which the
                // refresher may not have noticed yet.
                let by = if unknown && !shared.is_negative(kid) {
                    w
                } else {
                    Instant::now()
                };
                self.fetch_permitted_by(rounds.miss_fetch_at, by)
            }) {
                // Ask now; the policy holds the demand until the cooldown
                // (or the backoff) ends.
                if unknown {
                    *shared.missed_kid.lock() = Some(Box::from(kid));
                    shared.counters.asked();
                }
                shared.ring(MISS);
                Some(rounds.started + 1)
            } else {
                suppressed();
                None
            }
        };
        let (Some(deadline), Some(target)) = (wait, target) else {
            return Ok(None);
        };
        shared.wait_for_fetch(rounds, target, deadline).map(Some)
    }

    /// Whether the next fetch a miss may cause, at `at` on the cache's
    /// clock, comes before the real-time `deadline`.
    fn fetch_permitted_by(&self, at: Option<Instant>, deadline: Instant) -> bool {
        let Some(at) = at else { return false };
        let until = at.saturating_duration_since(self.shared.clock.now());
        until <= deadline.saturating_duration_since(Instant::now())
    }

    /// A signature failed with the key published under `kid` in set
    /// `generation`: the identity provider may have replaced the key under
    /// the same kid. Asks for a refresh under the unknown-kid guard, and
    /// with `wait` waits for it (only for a fetch it starts or joins, never
    /// for the end of a cooldown: a forged signature must not hold a thread).
    /// Returns whether a newer set is now published (worth one retry).
    pub(crate) fn refresh_for_bad_signature(
        &self,
        kid: &str,
        generation: u64,
        wait: Option<Instant>,
    ) -> bool {
        let _ = self.ask_refresh(kid, Ask::SameKidRekey, generation, wait);
        self.shared.current.load().generation() != generation
    }

    /// The generation of the set in service.
    pub(crate) fn generation(&self) -> u64 {
        self.shared.current.load().generation()
    }

    /// Whether the caller is this cache's refresher thread (an `on_refresh`
    /// hook), where waiting for the refresher would stall it.
    fn on_refresher_thread(&self) -> bool {
        self._owner.runs_here()
    }

    /// The published set; if it is due (background refresh off), first asks
    /// for the one shared refresh and waits up to `expired_wait` for it.
    fn refreshed_if_due(&self) -> Result<Arc<KeySet>, Error> {
        let shared = &*self.shared;
        let set = shared.current.load_full();
        if self.live(&set) != Freshness::Due || self.on_refresher_thread() {
            return Ok(set);
        }
        match shared.demand_and_wait(DUE, deadline_after(shared.expired_wait)) {
            Ok(_) | Err(Error::Timeout) => Ok(shared.current.load_full()),
            Err(e) => Err(e),
        }
    }

    /// The whole set a caller may use now, for lookups that are not by kid
    /// (tokens without one): waits for the first set up to `wait`, refreshes
    /// a due set like a lookup would, and fails closed when it expired.
    pub(crate) fn serving_set(&self, wait: Option<Instant>) -> Result<Arc<KeySet>, Error> {
        if self.shared.current.load().generation() == 0 {
            match wait {
                Some(deadline) => self.wait_ready_until(deadline)?,
                None => {
                    return Err(Error::NotReady {
                        last_error: self.shared.last_error(),
                    })
                }
            }
        }
        let set = self.refreshed_if_due()?;
        if self.live(&set) == Freshness::Expired {
            return Err(self.expired_error());
        }
        Ok(set)
    }

    /// The key for `kid` in `set` if it has one: a counted hit, or the
    /// fail-closed error of an expired set.
    fn serve(&self, set: &KeySet, kid: &str) -> Option<Result<Arc<Key>, Error>> {
        let key = set.get(kid)?;
        if self.live(set) == Freshness::Expired {
            return Some(Err(self.expired_error()));
        }
        if self.shared.counters.hit() {
            self.shared.ring(USAGE);
        }
        Some(Ok(Arc::clone(key)))
    }

    #[cold]
    pub(crate) fn expired_error(&self) -> Error {
        self.shared.counters.expired();
        let now = self.shared.clock.now();
        let board = self.shared.board.lock();
        Error::Expired {
            since: board
                .expires_at
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
            last_error: board.last_error.clone().map(Box::new),
        }
    }

    /// Blocks until the first key set is published (`Ok`), or `timeout`
    /// passes. Transient failures (connection errors, timeouts, 5xx, 429)
    /// are retried by the refresher's backoff within the timeout; when it
    /// runs out the latest failure is returned inside [`Error::NotReady`]
    /// ([`Error::Timeout`] if no fetch has failed). A failure that retrying
    /// soon cannot fix (4xx, TLS, a rejected document) returns at once, in
    /// [`Error::NotReady`]. Returns at once once a set is loaded.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_ready_until(deadline_after(timeout))
    }

    fn wait_ready_until(&self, deadline: Instant) -> Result<(), Error> {
        let shared = &*self.shared;
        // Ready once the round that published the first set has finished,
        // so that status and later demands see a settled refresher.
        let ready = |rounds: &Rounds| rounds.done > 0 && shared.current.load().generation() > 0;
        let not_ready = |e: &Error| Error::NotReady {
            last_error: Some(Box::new(e.clone())),
        };
        let hurry = self.on_refresher_thread();
        let mut rounds = shared.rounds.lock();
        loop {
            if ready(&rounds) {
                return Ok(());
            }
            if let Some(Err(e)) = &rounds.last {
                if !is_transient(e) || rounds.stopped || hurry {
                    return Err(not_ready(e));
                }
            }
            if rounds.stopped {
                return Err(Error::Stopped);
            }
            if hurry {
                return Err(Error::NotReady { last_error: None });
            }
            let (guard, timed_out) = shared.round_done.wait_until(rounds, deadline);
            rounds = guard;
            if timed_out && !ready(&rounds) {
                return Err(match &rounds.last {
                    Some(Err(e)) => not_ready(e),
                    _ => Error::Timeout,
                });
            }
        }
    }

    /// Fetches now, ignoring schedule, backoff and guards, and waits (up to
    /// `Builder::refresh_timeout`) for the outcome of a fetch that started
    /// after this call: never the outcome of one already in flight when it
    /// was called. Callers that arrive together share one fetch.
    ///
    /// Called on the refresher thread (from an `on_refresh` hook) it does not
    /// wait, which would stall the refresher: it schedules the fetch to start
    /// right after the hook returns and returns
    /// [`Error::OnRefresherThread`] at once; the hook sees the outcome.
    pub fn refresh_now(&self) -> Result<(), Error> {
        if self.on_refresher_thread() {
            self.shared.ring(MANUAL);
            return Err(Error::OnRefresherThread);
        }
        let deadline = deadline_after(self.shared.refresh_timeout);
        self.shared.demand_fetch_and_wait(MANUAL, deadline)?
    }

    /// The key set now in service (generation 0 and no keys before the first
    /// fetch succeeds).
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.shared.current.load_full()
    }

    /// Counters, schedule and health, for dashboards and `/healthz`.
    pub fn status(&self) -> Status {
        let set = self.shared.current.load_full();
        let now = self.shared.clock.now();
        let board = self.shared.board.lock();
        snapshot(&self.shared.counters, &board, &set, now)
    }
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.shared.current.load();
        f.debug_struct("JwksCache")
            .field("generation", &set.generation())
            .field("keys", &set.keys().len())
            .finish_non_exhaustive()
    }
}

/// What the fast path found.
enum Lookup<R, F> {
    /// The kid's key, `f` run on it.
    Hit(R),
    /// An unknown kid, counted, with no refresh to ask for.
    Unknown,
    /// Everything else: the slow path runs `f`.
    Slow(F),
}

/// Why a refresh is asked for outside the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// A lookup missed the kid.
    UnknownKid,
    /// A signature failed with the kid's key (same-kid re-key).
    SameKidRekey,
}

/// Whether retrying soon may fix `e` (the refresher retries it with backoff).
fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Fetch(f) if f.is_transient())
}

/// `timeout` from now; a timeout too large to represent waits "forever"
/// (a century) instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
