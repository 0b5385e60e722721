//! Time, injected: the refresher asks a [`Clock`], never `Instant::now()`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU64, Ordering};

/// A source of monotonic time for the refresher's schedule.
///
/// Production uses [`SystemClock`]. Tests hand the cache a [`ManualClock`] to
/// look at what the schedule would do at a given moment; note that the
/// refresher still *sleeps* in real time between deadlines, so a manual clock
/// changes what the refresher decides when it wakes, not when it wakes.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// A shared clock: keep one `Arc<ManualClock>` to move time, hand a clone to
/// the builder.
impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// The operating system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock {
    base: Instant,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A clock standing at the moment of creation.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset_nanos: AtomicU64::new(0),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the value is the whole message; no other data rides on it.
        self.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        // Relaxed: see `advance`.
        self.base + Duration::from_nanos(self.offset_nanos.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &(self.now() - self.base))
            .finish()
    }
}
