//! The `JwksCache` handle: the reader fast path, demands, bounded waits.

use std::fmt;
use std::time::{Duration, Instant};

use crate::builder::Builder;
use crate::error::Error;
use crate::fetch::Fetch;
use crate::jwk::Key;
use crate::keyset::{Freshness, KeySet};
use crate::shared::{Shared, DUE, MANUAL, MISS, STOP, USAGE};
use crate::stats::{snapshot, Status};
use crate::sync::{Arc, JoinHandle, Mutex, Ordering};

/// A cached JSON Web Key Set, refreshed by one background thread.
///
/// Cloning is cheap and every clone shares the same keys and thread; when the
/// last clone is dropped the refresher is stopped and joined.
///
/// - **Reads** ([`with_key`](Self::with_key), [`get`](Self::get)) are
///   lock-free and, in practice, wait-free: an atomic load of the published
///   set, a hash lookup and a per-thread counter. They never touch the network.
/// - **What may block**, and for how long: [`wait_ready`](Self::wait_ready)
///   and [`get_or_wait`](Self::get_or_wait) up to the timeout you pass;
///   [`refresh_now`](Self::refresh_now) up to `Builder::refresh_timeout`;
///   with background refresh off, a lookup that finds the set due waits up to
///   `Builder::expired_wait` for the refresh; dropping the last handle waits
///   for an in-flight fetch to end (bounded by the fetcher's own timeouts).
#[derive(Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

/// Stops and joins the refresher when the last handle goes.
pub(crate) struct Owner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.shared.ring(STOP);
        if let Some(handle) = self.thread.lock().take() {
            // A handle dropped by the fetcher itself, on the refresher
            // thread, must not join itself: the thread exits on its own.
            if !crate::sync::is_current(&handle) {
                let _ = handle.join();
            }
        }
    }
}

impl JwksCache {
    /// Starts configuring a cache over a custom source.
    ///
    /// ```
    /// # use jwks_sync::{JwksCache, FileFetcher};
    /// # use std::time::Duration;
    /// # let dir = std::env::temp_dir().join(format!("jwks-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("jwks.json");
    /// # let key = jwks_sync::testing::TestKey::generate(jwks_sync::testing::KeyAlg::Es256, "k1").unwrap();
    /// # std::fs::write(&path, jwks_sync::testing::jwks_json(&[&key])).unwrap();
    /// let cache = JwksCache::from_fetcher(FileFetcher::new(&path)).build()?;
    /// cache.wait_ready(Duration::from_secs(5))?;
    /// assert!(cache.get("k1").is_ok());
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    pub fn from_fetcher(fetcher: impl Fetch) -> Builder {
        Builder::new(Box::new(fetcher))
    }

    /// Starts configuring a cache over the JWKS document at an HTTPS `url`.
    ///
    /// Every HTTP default (timeouts, redirects, trust, proxies, byte cap,
    /// cache headers) is a setter on the [`Builder`]; the URL is checked in
    /// [`Builder::build`]. Requests carry no token data, and a token's
    /// `jku`/`x5u` header never changes where keys come from.
    ///
    /// ```no_run
    /// # use jwks_sync::JwksCache;
    /// # use std::time::Duration;
    /// let cache = JwksCache::builder("https://login.example.com/.well-known/jwks.json")
    ///     .timeout(Duration::from_secs(5))
    ///     .build()?;
    /// cache.wait_ready(Duration::from_secs(10))?;
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::from_source(crate::builder::Source::Url(url.into()))
    }

    /// Starts configuring a cache whose key set URL comes from OpenID
    /// Connect discovery: `{issuer}/.well-known/openid-configuration` must
    /// name exactly this `issuer`, and its `jwks_uri` must be https on the
    /// issuer's origin (see [`Builder::allow_cross_origin_jwks_uri`]).
    /// Discovery runs again when the key set URL starts answering 404.
    ///
    /// ```no_run
    /// # use jwks_sync::JwksCache;
    /// # use std::time::Duration;
    /// let cache = JwksCache::from_issuer("https://login.example.com").build()?;
    /// cache.wait_ready(Duration::from_secs(10))?;
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn from_issuer(issuer: impl Into<String>) -> Builder {
        Builder::from_source(crate::builder::Source::Issuer(issuer.into()))
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn from_parts(shared: Arc<Shared>, thread: JoinHandle<()>) -> Self {
        Self {
            _owner: Arc::new(Owner {
                shared: Arc::clone(&shared),
                thread: Mutex::new(Some(thread)),
            }),
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
    ///
    /// ```
    /// # let cache = jwks_sync::doc_cache();
    /// let algorithms = cache.with_key("k1", |key| key.algorithms())?;
    /// assert!(algorithms.contains(jwks_sync::Algorithm::ES256));
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[inline]
    pub fn with_key<R>(&self, kid: &str, f: impl FnOnce(&Key) -> R) -> Result<R, Error> {
        match self.hit(kid, move |key: &Arc<Key>| f(key)) {
            Ok(r) => Ok(r),
            Err(f) => Ok(f(&self.resolve(kid, None)?)),
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
        match self.hit(kid, move |key: &Arc<Key>| f(key)) {
            Ok(r) => Ok(r),
            Err(f) => Ok(f(&self.get_or_wait(kid, timeout)?)),
        }
    }

    /// The key for `kid`, as a shared handle. Same rules as
    /// [`with_key`](Self::with_key); costs one reference-count increment.
    pub fn get(&self, kid: &str) -> Result<Arc<Key>, Error> {
        match self.hit(kid, Arc::clone) {
            Ok(key) => Ok(key),
            Err(_) => self.resolve(kid, None),
        }
    }

    /// The fast path shared by every lookup: a servable set that has the
    /// kid runs `f` on the key and counts a hit; anything else hands `f`
    /// back for the slow path.
    #[inline]
    fn hit<R, F: FnOnce(&Arc<Key>) -> R>(&self, kid: &str, f: F) -> Result<R, F> {
        let set = self.shared.current.load();
        match set.get(kid) {
            Some(key) if set.freshness().servable() => {
                if self.shared.counters.hit() {
                    self.shared.ring(USAGE);
                }
                Ok(f(key))
            }
            _ => Err(f),
        }
    }

    /// The key for `kid`; on a miss, asks for a refresh (subject to the
    /// unknown-kid cooldown) and waits up to `timeout` for it, also joining a
    /// refresh already in flight. Before the first set is loaded it waits for
    /// that. Returns [`Error::UnknownKid`] when the refresh did not bring the
    /// kid, or at once when no refresh is allowed or running; the refresh's
    /// own error when it failed; [`Error::Timeout`] when `timeout` ran out.
    pub fn get_or_wait(&self, kid: &str, timeout: Duration) -> Result<Arc<Key>, Error> {
        let deadline = deadline_after(timeout);
        if self.shared.current.load().generation() == 0 {
            self.wait_ready_until(deadline)?;
        }
        self.resolve(kid, Some(deadline))
    }

    /// The slow path: due or expired sets, and misses.
    #[cold]
    #[inline(never)]
    fn resolve(&self, kid: &str, wait: Option<Instant>) -> Result<Arc<Key>, Error> {
        let shared = &*self.shared;
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
        if set.freshness() == Freshness::Expired {
            return Err(self.expired_error());
        }
        if shared.is_negative(kid) {
            shared.counters.suppressed();
            return Err(Error::UnknownKid);
        }
        // Acquire: pairs with the refresher's Release when it reopens the gate.
        let gate_maybe_open = shared.miss_gate.load(Ordering::Acquire);
        if !gate_maybe_open && wait.is_none() {
            shared.counters.suppressed();
            return Err(Error::UnknownKid);
        }
        let rounds = shared.rounds.lock();
        // A refresh may have published the kid since we looked.
        if let Some(found) = self.serve(&shared.current.load_full(), kid) {
            return found;
        }
        // AcqRel: only one caller per cooldown wins the gate; pairs with the
        // refresher's Release store that reopened it.
        let target = if gate_maybe_open && shared.miss_gate.swap(false, Ordering::AcqRel) {
            *shared.missed_kid.lock() = Some(Box::from(kid));
            shared.counters.asked();
            shared.ring(MISS);
            Some(rounds.done + 1)
        } else {
            shared.counters.suppressed();
            // Acquire: pairs with `Shared::ring`; a pending demand means the
            // next round will fetch, so it is worth waiting for.
            let pending = shared.pending.load(Ordering::Acquire) & (MISS | MANUAL | DUE) != 0;
            (rounds.fetching || pending).then_some(rounds.done + 1)
        };
        let (Some(deadline), Some(target)) = (wait, target) else {
            return Err(Error::UnknownKid);
        };
        let outcome = shared.wait_for_round(rounds, target, deadline)?;
        match self.serve(&shared.current.load_full(), kid) {
            Some(found) => found,
            // The refresh we waited for failed: that is the useful answer.
            None => match outcome {
                Some(Err(e)) => Err(e),
                _ => Err(Error::UnknownKid),
            },
        }
    }

    /// The published set; if it is due (background refresh off), first asks
    /// for the one shared refresh and waits up to `expired_wait` for it.
    fn refreshed_if_due(&self) -> Result<Arc<KeySet>, Error> {
        let shared = &*self.shared;
        let set = shared.current.load_full();
        if set.freshness() != Freshness::Due {
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
        if set.freshness() == Freshness::Expired {
            return Err(self.expired_error());
        }
        Ok(set)
    }

    /// The key for `kid` in `set` if it has one: a counted hit, or the
    /// fail-closed error of an expired set.
    fn serve(&self, set: &KeySet, kid: &str) -> Option<Result<Arc<Key>, Error>> {
        let key = set.get(kid)?;
        if set.freshness() == Freshness::Expired {
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

    /// Blocks until the first key set is published (`Ok`), the first fetch
    /// fails (that error, inside [`Error::NotReady`]), or `timeout` passes
    /// ([`Error::Timeout`]). Returns at once once a set is loaded.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_ready_until(deadline_after(timeout))
    }

    fn wait_ready_until(&self, deadline: Instant) -> Result<(), Error> {
        let shared = &*self.shared;
        let mut rounds = shared.rounds.lock();
        loop {
            // Ready once the round that published the first set has finished,
            // so that status and later demands see a settled refresher.
            if rounds.done > 0 && shared.current.load().generation() > 0 {
                return Ok(());
            }
            if let Some(Err(e)) = &rounds.last {
                return Err(Error::NotReady {
                    last_error: Some(Box::new(e.clone())),
                });
            }
            if rounds.stopped {
                return Err(Error::Stopped);
            }
            let (guard, timed_out) = shared.round_done.wait_until(rounds, deadline);
            rounds = guard;
            if timed_out && !(rounds.done > 0 && shared.current.load().generation() > 0) {
                return Err(Error::Timeout);
            }
        }
    }

    /// Fetches now, ignoring schedule, backoff and guards, and waits (up to
    /// `Builder::refresh_timeout`) for the outcome. Coalesced with any fetch
    /// in flight: callers during a fetch share its result.
    pub fn refresh_now(&self) -> Result<(), Error> {
        let deadline = deadline_after(self.shared.refresh_timeout);
        match self.shared.demand_and_wait(MANUAL, deadline)? {
            Some(outcome) => outcome,
            None => Err(Error::Timeout),
        }
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

/// `timeout` from now; a timeout too large to represent waits "forever"
/// (a century) instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
