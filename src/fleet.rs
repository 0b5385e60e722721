//! Fleets: processes that share one fetch through a snapshot store.
//!
//! [`Fleet`] is the configuration handed to [`Builder::fleet`](crate::Builder::fleet)
//! and the handle on its counters ([`Fleet::stats`]). At build the source's
//! fetcher is wrapped in `fleet/fetch.rs`, which runs the protocol on every
//! refresh, whatever its cause:
//!
//! 1. read the store: a valid snapshot newer than the set in service, and
//!    recent enough for the cause, stands in for the fetch;
//! 2. otherwise take the fleet lock (Redis); the holder fetches from the
//!    origin, saves the snapshot, bumps the version, releases the lock;
//! 3. an instance that finds the lock held waits for the new version (at
//!    most twice the lock TTL) and uses it; if the holder died, its lock
//!    expires and a waiter takes it and fetches.
//!
//! Any store error makes the instance fetch alone for that refresh.

mod fetch;

pub(crate) use fetch::FleetFetch;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::store::snapshot::{MacKey, Snapshot};
use crate::store::{FileStore, Store};
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};

pub use crate::store::snapshot::RejectReason;

/// A snapshot store shared by the instances of a fleet, and the rules for
/// using it. See the README, "Fleets", for the format and the guarantees.
///
/// Cloning shares the counters: keep a clone to read [`stats`](Self::stats).
///
/// ```
/// # fn main() -> Result<(), jwks_sync::Error> {
/// use jwks_sync::{Fleet, JwksCache};
/// let dir = std::env::temp_dir().join("jwks-sync-doc-fleet");
/// let fleet = Fleet::directory(&dir).hmac_key(b"a secret shared by the fleet");
/// let builder = JwksCache::builder("https://idp.example/.well-known/jwks.json")
///     .fleet(fleet.clone());
/// # drop(builder);
/// assert_eq!(fleet.stats().origin_fetches, 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Fleet {
    backend: Backend,
    key: Option<Arc<MacKey>>,
    source_id: Option<String>,
    lock_ttl: Duration,
    guard: Option<Duration>,
    counters: Arc<Counters>,
}

#[derive(Clone)]
enum Backend {
    Directory(PathBuf),
    #[cfg(feature = "redis")]
    Redis {
        url: String,
        prefix: String,
        timeout: Duration,
    },
}

impl Fleet {
    /// Snapshots in a directory, one file per source, written atomically
    /// (temporary file, sync, rename). No server, no lock: processes
    /// sharing the directory start warm and use each other's recent
    /// fetches.
    pub fn directory(dir: impl Into<PathBuf>) -> Self {
        Self::with_backend(Backend::Directory(dir.into()))
    }

    /// Snapshots and the fleet lock in Redis at `url` (`redis://host:port/db`;
    /// `rediss://` is not supported), with the keys of the README's
    /// "Fleets" section under the prefix `jwks-sync:`. A Redis fleet needs
    /// an [`hmac_key`](Self::hmac_key): [`Builder::build`](crate::Builder::build)
    /// fails without one.
    #[cfg(feature = "redis")]
    pub fn redis(url: impl Into<String>) -> Self {
        Self::with_backend(Backend::Redis {
            url: url.into(),
            prefix: "jwks-sync:".to_owned(),
            timeout: Duration::from_millis(500),
        })
    }

    fn with_backend(backend: Backend) -> Self {
        Self {
            backend,
            key: None,
            source_id: None,
            lock_ttl: Duration::from_secs(10),
            guard: None,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The secret that authenticates snapshots (HMAC-SHA256). Every
    /// instance of the fleet must use the same one; a snapshot tagged under
    /// another key is rejected. Required for Redis.
    ///
    /// Defaults to none: for a directory, snapshots are then tagged under
    /// an empty key, which detects corruption and truncation, not tampering.
    pub fn hmac_key(mut self, secret: &[u8]) -> Self {
        self.key = (!secret.is_empty()).then(|| Arc::new(MacKey::new(secret)));
        self
    }

    /// The id a snapshot is bound to; instances sharing a store must agree
    /// on it, and different sources must not.
    ///
    /// Defaults to the source's description: `url <jwks url>`,
    /// `issuer <issuer>`, or the custom fetcher's `describe()`.
    pub fn source_id(mut self, id: impl Into<String>) -> Self {
        self.source_id = Some(id.into());
        self
    }

    /// How long the fleet lock lasts if its holder never releases it (a
    /// process killed mid-fetch): after it, another instance fetches.
    /// Keep it above the fetch timeout.
    ///
    /// Defaults to 10 seconds.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// How recent a stored snapshot must be to stand in for an unknown-kid
    /// or manual refresh (scheduled, usage and retry refreshes take any
    /// newer one this instance would not refresh yet: before its
    /// background point, or before it is due). With `N` instances
    /// flooded by unknown kids, the origin sees about one fetch per
    /// window.
    ///
    /// Defaults to the builder's `unknown_kid_cooldown`.
    pub fn guard(mut self, window: Duration) -> Self {
        self.guard = Some(window);
        self
    }

    /// The Redis key prefix.
    ///
    /// Defaults to `jwks-sync:`.
    #[cfg(feature = "redis")]
    pub fn redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        if let Backend::Redis { prefix: p, .. } = &mut self.backend {
            *p = prefix.into();
        }
        self
    }

    /// The connect, read and write timeout of every Redis call.
    ///
    /// Defaults to 500 milliseconds.
    #[cfg(feature = "redis")]
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        if let Backend::Redis { timeout: t, .. } = &mut self.backend {
            *t = timeout;
        }
        self
    }

    /// The counters of the caches built with this fleet (or a clone).
    pub fn stats(&self) -> FleetStats {
        self.counters.read()
    }

    /// Checks stored snapshot bytes the way an instance does before using
    /// them (layout, version, tag, `source`, dates), for tools and tests.
    ///
    /// # Errors
    ///
    /// Why the snapshot would be rejected.
    pub fn check_snapshot(&self, bytes: &[u8], source: &str) -> Result<SnapshotInfo, RejectReason> {
        let key = self.mac_key();
        let s = Snapshot::decode(bytes, &key, source, now_ms())?;
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        Ok(SnapshotInfo {
            source: s.source,
            fetched_at: at(s.fetched_at_ms),
            stale_at: at(s.stale_at_ms),
            expires_at: at(s.expires_at_ms),
            document: s.body,
        })
    }

    pub(crate) fn source_id_or(&self, described: String) -> String {
        self.source_id.clone().unwrap_or(described)
    }

    fn mac_key(&self) -> Arc<MacKey> {
        self.key
            .clone()
            .unwrap_or_else(|| Arc::new(MacKey::new(b"")))
    }

    /// Opens the store; checks the settings.
    pub(crate) fn open(&self) -> Result<Box<dyn Store>, Error> {
        let fail = |msg: String| Err(Error::Config(msg));
        if self.lock_ttl.is_zero() {
            return fail("fleet lock_ttl must be positive".to_owned());
        }
        match &self.backend {
            Backend::Directory(dir) => Ok(Box::new(FileStore::new(dir.clone()))),
            #[cfg(feature = "redis")]
            Backend::Redis {
                url,
                prefix,
                timeout,
            } => {
                if self.key.is_none() {
                    return fail("a Redis fleet needs Fleet::hmac_key".to_owned());
                }
                if timeout.is_zero() {
                    return fail("fleet redis_timeout must be positive".to_owned());
                }
                crate::store::RedisStore::open(url, prefix, *timeout)
                    .map(|s| Box::new(s) as Box<dyn Store>)
                    .map_err(|e| Error::Config(format!("fleet: {e}")))
            }
        }
    }
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Directory(dir) => format!("directory {}", dir.display()),
            #[cfg(feature = "redis")]
            Backend::Redis { prefix, .. } => format!("redis (prefix {prefix})"),
        };
        f.debug_struct("Fleet")
            .field("backend", &backend)
            .field("keyed", &self.key.is_some())
            .field("source_id", &self.source_id)
            .field("lock_ttl", &self.lock_ttl)
            .field("guard", &self.guard)
            .finish()
    }
}

/// A stored snapshot that passed every check ([`Fleet::check_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// The source id it is bound to.
    pub source: String,
    /// When the document left the origin.
    pub fetched_at: SystemTime,
    /// When it is due (fetched_at + lifetime).
    pub stale_at: SystemTime,
    /// Its hard expiry: no instance serves it after this.
    pub expires_at: SystemTime,
    /// The JWKS document.
    pub document: Vec<u8>,
}

/// What a fleet did, summed over the caches built with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStats {
    /// Fetches from the origin (the identity provider) by these caches.
    pub origin_fetches: u64,
    /// Refreshes served by a stored snapshot instead of a fetch.
    pub snapshots_used: u64,
    /// Of those, the first set of a cache (a warm start).
    pub warm_starts: u64,
    /// Snapshots saved after a fetch from the origin.
    pub snapshots_saved: u64,
    /// Fleet locks taken.
    pub locks_taken: u64,
    /// Refreshes that found the lock held and waited for its holder.
    pub lock_waits: u64,
    /// Waits that ended with no new snapshot and a fetch of its own.
    pub lock_timeouts: u64,
    /// Store calls that failed (I/O, Redis down, slow or answering garbage).
    pub store_errors: u64,
    /// Whether the last store call failed: the cache is working alone.
    pub alone: bool,
    rejected: [u64; RejectReason::ALL.len()],
}

impl FleetStats {
    /// Stored snapshots rejected for `reason` (and never published).
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()]
    }

    /// Stored snapshots rejected, all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

/// The live counters. Relaxed everywhere: statistics only.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) origin_fetches: AtomicU64,
    pub(crate) snapshots_used: AtomicU64,
    pub(crate) warm_starts: AtomicU64,
    pub(crate) snapshots_saved: AtomicU64,
    pub(crate) locks_taken: AtomicU64,
    pub(crate) lock_waits: AtomicU64,
    pub(crate) lock_timeouts: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) alone: AtomicBool,
    rejected: [AtomicU64; RejectReason::ALL.len()],
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        // Relaxed: statistics only.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: RejectReason) {
        Self::bump(&self.rejected[reason.index()]);
    }

    fn read(&self) -> FleetStats {
        // Relaxed: statistics only.
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FleetStats {
            origin_fetches: get(&self.origin_fetches),
            snapshots_used: get(&self.snapshots_used),
            warm_starts: get(&self.warm_starts),
            snapshots_saved: get(&self.snapshots_saved),
            locks_taken: get(&self.locks_taken),
            lock_waits: get(&self.lock_waits),
            lock_timeouts: get(&self.lock_timeouts),
            store_errors: get(&self.store_errors),
            // Relaxed: statistics only.
            alone: self.alone.load(Ordering::Relaxed),
            rejected: std::array::from_fn(|i| get(&self.rejected[i])),
        }
    }
}

/// The wall clock in Unix milliseconds (0 before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
