//! The verifier threads: each verifies tokens signed with the IdP's current
//! signing key, as fast as it can, through one shared `Verifier`, and keeps
//! its own counts and latency histogram (no shared write on the hot path
//! besides a progress counter every 256 verifications).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwks_sync::{Verifier, VerifyError};
use serde::de::IgnoredAny;

use super::histogram::Histogram;

/// Keys in the demo: the first signer, the overlap one, the replacement.
pub(crate) const KEYS: usize = 3;
/// "Not yet" for the nanosecond stamps below.
pub(crate) const NEVER: u64 = u64::MAX;

/// How long a worker pauses after a new-kid token was rejected.
pub(crate) const PENDING_PAUSE: Duration = Duration::from_millis(1);

/// One counter on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded(pub(crate) AtomicU64);

/// What the driver, the refresh hook and the workers share. Stamps are
/// nanoseconds since the demo started.
pub(crate) struct Board {
    /// The demo's time zero.
    pub(crate) start: Instant,
    /// Workers stop when set.
    pub(crate) stop: AtomicBool,
    /// Index of the key the IdP signs with (the driver mirrors the IdP).
    pub(crate) signing: AtomicUsize,
    /// When each key became the signing key.
    pub(crate) signing_since: [AtomicU64; KEYS],
    /// First successful verification of a token of each key.
    pub(crate) first_ok: [AtomicU64; KEYS],
    /// From when the set in service is past its lifetime while refreshes
    /// fail (set by the refresh hook); `NEVER` while fresh.
    pub(crate) stale_from: AtomicU64,
    /// Verifications so far, per thread (for the progress line).
    pub(crate) progress: Box<[Padded]>,
}

impl Board {
    /// A board for `threads` workers, starting now.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            start: Instant::now(),
            stop: AtomicBool::new(false),
            signing: AtomicUsize::new(0),
            signing_since: [
                AtomicU64::new(0),
                AtomicU64::new(NEVER),
                AtomicU64::new(NEVER),
            ],
            first_ok: std::array::from_fn(|_| AtomicU64::new(NEVER)),
            stale_from: AtomicU64::new(NEVER),
            progress: (0..threads).map(|_| Padded::default()).collect(),
        }
    }

    /// Key `index` signs from `at` (nanoseconds since the start) on.
    pub(crate) fn switch_signing(&self, index: usize, at: u64) {
        // Relaxed: like every board field, a stamp for the report; a worker
        // that reads the two a moment apart classifies one rejection late.
        self.signing_since[index].store(at, Ordering::Relaxed);
        self.signing.store(index, Ordering::Relaxed);
    }

    /// Nanoseconds since the start.
    pub(crate) fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(NEVER - 1)
    }

    /// Verifications so far, all threads.
    pub(crate) fn verified(&self) -> u64 {
        // Relaxed: statistics only.
        self.progress
            .iter()
            .map(|p| p.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// One worker's results.
pub(crate) struct Tally {
    /// Tokens verified.
    pub(crate) verified: u64,
    /// Of those, verified while the set was past its lifetime.
    pub(crate) stale_served: u64,
    /// Latency of every verification, accepted or not.
    pub(crate) latency: Histogram,
    /// Valid tokens rejected for reasons no rotation explains, by reason.
    pub(crate) valid_rejected: BTreeMap<String, u64>,
    /// A token of the new signing key rejected as unknown before any
    /// thread had verified one (the cache had not fetched it yet).
    pub(crate) new_kid_pending: u64,
    /// A token of a key the replace rotation unpublished, still in flight.
    pub(crate) retired_key: u64,
}

/// Runs one worker until `board.stop`. `pools[k]` are tokens signed with
/// key `k`; `wait` bounds `verify_or_wait`; `grace` is how long after a
/// rotation an unknown new kid counts as pending rather than a failure.
pub(crate) fn run(
    id: usize,
    board: &Board,
    verifier: &Verifier,
    pools: &[Arc<Vec<String>>; KEYS],
    wait: Duration,
    grace: Duration,
) -> Tally {
    let mut tally = Tally {
        verified: 0,
        stale_served: 0,
        latency: Histogram::new(),
        valid_rejected: BTreeMap::new(),
        new_kid_pending: 0,
        retired_key: 0,
    };
    let mut seen_ok = [false; KEYS];
    let mut n: usize = id * 7919;
    let mut count: u64 = 0;
    let grace_ns = u64::try_from(grace.as_nanos()).unwrap_or(NEVER);
    // Relaxed on all flags below: each is a value to act on eventually,
    // no other memory depends on it.
    while !board.stop.load(Ordering::Relaxed) {
        let key = board.signing.load(Ordering::Relaxed).min(KEYS - 1);
        let pool = &pools[key];
        n = n.wrapping_add(1);
        let token = &pool[n % pool.len()];
        let t0 = Instant::now();
        let result = verifier.verify_or_wait::<IgnoredAny>(token, wait);
        let t1 = Instant::now();
        tally.latency.record(t1 - t0);
        count += 1;
        if count.is_multiple_of(256) {
            board.progress[id].0.store(count, Ordering::Relaxed);
        }
        match result {
            Ok(_) => {
                tally.verified += 1;
                if !seen_ok[key] {
                    seen_ok[key] = true;
                    board.first_ok[key].fetch_min(board.ns(t1), Ordering::Relaxed);
                }
                if board.ns(t1) >= board.stale_from.load(Ordering::Relaxed) {
                    tally.stale_served += 1;
                }
            }
            Err(e) => {
                let started = board.ns(t0);
                let current = board.signing.load(Ordering::Relaxed);
                let since = board.signing_since[key].load(Ordering::Relaxed);
                let unknown = e == VerifyError::UnknownKey;
                // Only the replace rotation (to the last key) unpublishes keys.
                if unknown && key < current && current == KEYS - 1 {
                    tally.retired_key += 1;
                } else if unknown
                    && started < board.first_ok[key].load(Ordering::Relaxed)
                    && started <= since.saturating_add(grace_ns)
                {
                    tally.new_kid_pending += 1;
                    // A client told 401 retries a little later; without the
                    // pause the count would only measure loop speed.
                    std::thread::sleep(PENDING_PAUSE);
                } else {
                    *tally.valid_rejected.entry(e.to_string()).or_default() += 1;
                }
            }
        }
    }
    board.progress[id].0.store(count, Ordering::Relaxed);
    tally
}
