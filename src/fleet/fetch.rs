//! The fleet protocol, as a [`Fetch`] wrapped around the source's fetcher.
//! See `fleet.rs` for the three steps.
//!
//! The refresher thread is the only caller, so the wrapper keeps plain
//! state: the snapshot behind the set in service (`held`) and whether the
//! store is failing (`alone`, to log once per streak).

use std::time::{Duration, Instant};

use super::{now_ms, Counters};
use crate::error::FetchError;
use crate::fetch::{Fetch, FetchRequest, FetchResponse};
use crate::keyset::{KeySet, SetLimits};
use crate::policy::{PolicyConfig, RefreshCause};
use crate::store::snapshot::{MacKey, RejectReason, Snapshot};
use crate::store::{random_u64, Lock, Store, StoreError};
use crate::sync::{Arc, Ordering};

/// How often a waiter looks for the holder's snapshot or a free lock.
const POLL: Duration = Duration::from_millis(50);

/// The document in service, as far as the fleet knows.
struct Held {
    fetched_at_ms: u64,
    body: Vec<u8>,
}

pub(crate) struct FleetFetch {
    pub(crate) inner: Box<dyn Fetch>,
    pub(crate) store: Box<dyn Store>,
    pub(crate) key: Arc<MacKey>,
    pub(crate) source: String,
    pub(crate) lock_ttl: Duration,
    pub(crate) guard: Duration,
    pub(crate) policy: PolicyConfig,
    pub(crate) limits: SetLimits,
    pub(crate) counters: Arc<Counters>,
    held: Option<Held>,
    /// A snapshot checked at build, served by the first fetch.
    preloaded: Option<Snapshot>,
    alone: bool,
}

impl FleetFetch {
    pub(crate) fn new(
        fleet: &super::Fleet,
        inner: Box<dyn Fetch>,
        store: Box<dyn Store>,
        source: String,
        policy: PolicyConfig,
        limits: SetLimits,
    ) -> Self {
        Self {
            inner,
            store,
            key: fleet.mac_key(),
            source,
            lock_ttl: fleet.lock_ttl,
            guard: fleet.guard.unwrap_or(policy.unknown_kid_cooldown),
            policy,
            limits,
            counters: Arc::clone(&fleet.counters),
            held: None,
            preloaded: None,
            alone: false,
        }
    }

    /// Reads and checks the stored snapshot now, so that the first fetch
    /// serves it without waiting: a warm start. Returns whether one is
    /// ready.
    pub(crate) fn preload(&mut self) -> bool {
        self.preloaded = self.read(now_ms());
        self.preloaded.is_some()
    }

    /// The stored snapshot if it passes every check; a rejection is
    /// counted and logged, a store error too.
    fn read(&mut self, now: u64) -> Option<Snapshot> {
        let bytes = match self.store.load(&self.source, self.max_stored_bytes()) {
            Ok(Some(bytes)) => {
                self.store_ok();
                bytes
            }
            Ok(None) => {
                self.store_ok();
                return None;
            }
            Err(e) => {
                self.store_failed(&e);
                return None;
            }
        };
        let checked = Snapshot::decode(&bytes, &self.key, &self.source, now).and_then(|s| {
            self.check_locally(&s, now)?;
            Ok(s)
        });
        match checked {
            Ok(s) => Some(s),
            Err(reason) => {
                self.counters.reject(reason);
                log::warn!(
                    "jwks-sync: stored snapshot for {} rejected ({reason:?}) in {}",
                    self.source,
                    self.store.describe()
                );
                None
            }
        }
    }

    /// The bounds this instance would apply alone: its own lifetime and
    /// stale-while-error from the original fetch, its own byte and key
    /// limits, and a date this process's monotonic clock can express.
    fn check_locally(&self, s: &Snapshot, now: u64) -> Result<(), RejectReason> {
        let lifetime = self
            .policy
            .lifetime_for(s.max_age_ms.map(Duration::from_millis));
        let age = s.age(now);
        if age >= lifetime.saturating_add(self.policy.stale_while_error)
            || Instant::now().checked_sub(age).is_none()
        {
            return Err(RejectReason::Expired);
        }
        if s.body.len() > self.limits.max_bytes || KeySet::parse(&s.body, 1, self.limits).is_err() {
            return Err(RejectReason::Unusable);
        }
        Ok(())
    }

    /// The document cap plus room for the header and tag.
    fn max_stored_bytes(&self) -> usize {
        self.limits.max_bytes.saturating_add(16 * 1024)
    }

    fn newer_than_held(&self, s: &Snapshot) -> bool {
        self.held
            .as_ref()
            .is_none_or(|h| s.fetched_at_ms > h.fetched_at_ms)
    }

    /// Whether `s` may stand in for a fetch for `cause`.
    fn acceptable(&self, s: &Snapshot, cause: RefreshCause, now: u64) -> bool {
        if self.held.is_none() {
            return true;
        }
        if !self.newer_than_held(s) {
            return false;
        }
        match cause {
            RefreshCause::UnknownKid | RefreshCause::Manual => s.age(now) <= self.guard,
            // Scheduled, usage, due, retry: any snapshot this instance would
            // not refresh yet itself (before its background point, or before
            // it is due when background refresh is off).
            _ => {
                let lifetime = self
                    .policy
                    .lifetime_for(s.max_age_ms.map(Duration::from_millis));
                s.age(now) < lifetime.mul_f64(self.policy.background.unwrap_or(1.0))
            }
        }
    }

    /// Serves `s` to the refresher, dated from its original fetch.
    fn serve(&mut self, s: Snapshot, now: u64) -> FetchResponse {
        Counters::bump(&self.counters.snapshots_used);
        if self.held.is_none() {
            Counters::bump(&self.counters.warm_starts);
        }
        let same = self.held.as_ref().is_some_and(|h| h.body == s.body);
        let mut response = if same {
            FetchResponse::not_modified()
        } else {
            FetchResponse::document(s.body.clone())
        };
        response = response
            .with_validators(s.validators.clone())
            .with_age(s.age(now));
        if let Some(ms) = s.max_age_ms {
            response = response.with_max_age(Duration::from_millis(ms));
        }
        log::debug!(
            "jwks-sync: {} refreshed from the fleet's snapshot ({} ms old)",
            self.source,
            s.age(now).as_millis()
        );
        self.held = Some(Held {
            fetched_at_ms: s.fetched_at_ms,
            body: s.body,
        });
        response
    }

    /// Fetches from the origin and saves what it got.
    fn fetch_origin(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        Counters::bump(&self.counters.origin_fetches);
        let response = self.inner.fetch(request)?;
        let fetched_at_ms =
            now_ms().saturating_sub(u64::try_from(response.age().as_millis()).unwrap_or(u64::MAX));
        let body = match (response.body(), &self.held) {
            (Some(body), _) => body.to_vec(),
            // 304: the origin vouches for the document in service again.
            (None, Some(held)) => held.body.clone(),
            (None, None) => return Ok(response),
        };
        // Only a usable document is shared (the refresher would reject it).
        if KeySet::parse(&body, 1, self.limits).is_err() {
            return Ok(response);
        }
        let lifetime = self.policy.lifetime_for(response.max_age());
        let snapshot = Snapshot::new(
            &self.source,
            fetched_at_ms,
            lifetime,
            self.policy.stale_while_error,
            response.max_age(),
            response.validators().clone(),
            body,
        );
        let keep = lifetime.saturating_add(self.policy.stale_while_error);
        match self
            .store
            .save(&self.source, &snapshot.encode(&self.key), keep)
        {
            Ok(()) => {
                self.store_ok();
                Counters::bump(&self.counters.snapshots_saved);
            }
            Err(e) => self.store_failed(&e),
        }
        self.held = Some(Held {
            fetched_at_ms,
            body: snapshot.body,
        });
        Ok(response)
    }

    fn store_ok(&mut self) {
        if self.alone {
            log::info!(
                "jwks-sync: {} reachable again; {} rejoins the fleet",
                self.store.describe(),
                self.source
            );
            self.alone = false;
            // Relaxed: statistics only.
            self.counters.alone.store(false, Ordering::Relaxed);
        }
    }

    fn store_failed(&mut self, e: &StoreError) {
        Counters::bump(&self.counters.store_errors);
        if !self.alone {
            log::warn!(
                "jwks-sync: fleet store {} failed ({e}); {} fetches alone until it is back",
                self.store.describe(),
                self.source
            );
            self.alone = true;
            // Relaxed: statistics only.
            self.counters.alone.store(true, Ordering::Relaxed);
        }
    }

    /// Step 2 and 3: the lock, or waiting for its holder.
    fn single_flight(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let token = format!("{:016x}{:016x}", random_u64(), random_u64());
        let give_up = Instant::now() + self.lock_ttl.saturating_mul(2) + POLL;
        let mut version = match self.store.version(&self.source) {
            Ok(v) => v,
            Err(e) => {
                self.store_failed(&e);
                return self.fetch_origin(request);
            }
        };
        let mut waited = false;
        loop {
            match self.store.try_lock(&self.source, &token, self.lock_ttl) {
                Ok(Lock::Taken) => {
                    Counters::bump(&self.counters.locks_taken);
                    // A holder may have saved between our read and our lock.
                    let now = now_ms();
                    let result = match self.read(now) {
                        Some(s)
                            if (waited && self.newer_than_held(&s))
                                || self.acceptable(&s, request.cause, now) =>
                        {
                            Ok(self.serve(s, now))
                        }
                        _ => self.fetch_origin(request),
                    };
                    if let Err(e) = self.store.unlock(&self.source, &token) {
                        self.store_failed(&e);
                    }
                    return result;
                }
                Ok(Lock::Unsupported) => return self.fetch_origin(request),
                Ok(Lock::Busy) => {
                    if !waited {
                        Counters::bump(&self.counters.lock_waits);
                        waited = true;
                    }
                }
                Err(e) => {
                    self.store_failed(&e);
                    return self.fetch_origin(request);
                }
            }
            if Instant::now() >= give_up {
                Counters::bump(&self.counters.lock_timeouts);
                return self.fetch_origin(request);
            }
            std::thread::sleep(POLL);
            match self.store.version(&self.source) {
                Ok(v) if v != version => {
                    version = v;
                    let now = now_ms();
                    if let Some(s) = self.read(now).filter(|s| self.newer_than_held(s)) {
                        return Ok(self.serve(s, now));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.store_failed(&e);
                    return self.fetch_origin(request);
                }
            }
        }
    }
}

impl Fetch for FleetFetch {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let now = now_ms();
        if let Some(s) = self.preloaded.take() {
            return Ok(self.serve(s, now));
        }
        if let Some(s) = self.read(now) {
            if self.acceptable(&s, request.cause, now) {
                return Ok(self.serve(s, now));
            }
        }
        self.single_flight(request)
    }

    fn describe(&self) -> String {
        format!(
            "{} (fleet: {})",
            self.inner.describe(),
            self.store.describe()
        )
    }
}
