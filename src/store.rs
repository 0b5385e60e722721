//! Snapshot stores: where a fleet keeps the last document fetched from the
//! origin, and (Redis) the lock that lets one instance fetch for all.
//!
//! | file | role |
//! |---|---|
//! | `store/snapshot.rs` | the format: header, HMAC tag, checks on read |
//! | `store/file.rs` | a directory: atomic write by rename, capped read |
//! | `store/redis.rs` | Redis (feature `redis`; the only file naming the crate) |
//!
//! A store moves bytes; it never decides what they mean. `fleet.rs` checks
//! every snapshot (`Snapshot::decode`) before it uses one.

mod file;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod snapshot;

pub(crate) use file::FileStore;
#[cfg(feature = "redis")]
pub(crate) use redis::RedisStore;

use std::time::Duration;

/// A store failed (I/O, network, timeout, a reply of the wrong shape).
#[derive(Debug, Clone)]
pub(crate) struct StoreError(pub(crate) String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a lock attempt won.
// Only the Redis store takes locks.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// This caller holds the lock until it releases it or `ttl` passes.
    Taken,
    /// Another instance holds it.
    Busy,
    /// This store has no lock (the file store): fetch without one.
    Unsupported,
}

/// The operations a fleet needs; called from the refresher thread only.
pub(crate) trait Store: Send + Sync + 'static {
    /// The stored bytes for `source`, `None` if there are none. Reads at
    /// most `max_bytes + 1` bytes; a longer value comes back that long (and
    /// fails its checks as truncated).
    fn load(&self, source: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces the stored bytes for `source` in one step (readers see the
    /// old value or the new one, never a mix); `ttl` is how long the value
    /// is worth keeping, and bumps the change counter.
    fn save(&self, source: &str, bytes: &[u8], ttl: Duration) -> Result<(), StoreError>;

    /// A counter that changes on every save (`None`: not kept).
    fn version(&self, _source: &str) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Tries to take the fleet lock for `source` with `token`, held for at
    /// most `ttl`.
    fn try_lock(&self, _source: &str, _token: &str, _ttl: Duration) -> Result<Lock, StoreError> {
        Ok(Lock::Unsupported)
    }

    /// Releases the lock if `token` still holds it (compare and delete).
    fn unlock(&self, _source: &str, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// A short description for logs (no credentials).
    fn describe(&self) -> String;
}

/// 64 random bits (SipHash keyed by the OS's randomness): temporary file
/// names and lock tokens, where uniqueness matters, not secrecy.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}
