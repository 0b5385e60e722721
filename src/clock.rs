//! Time, injected: the refresher asks a [`Clock`], never `Instant::now()`.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU64, Mutex, Ordering};

/// What a clock calls when it jumps forward (see [`Clock::on_advance`]).
pub type AdvanceHook = Box<dyn Fn() + Send + Sync + 'static>;

/// A source of monotonic time for the refresher's schedule.
///
/// Production uses [`SystemClock`]. Tests hand the cache a [`ManualClock`]
/// (shared as an `Arc<ManualClock>`): the schedule then runs on its time
/// only, and every [`ManualClock::advance`] wakes the refresher, so a test
/// drives background refreshes, backoff, cooldowns and expiry without
/// sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;

    /// Asks the clock to call `wake` whenever it jumps forward, and says
    /// whether it does. A clock that returns `true` moves only by such
    /// jumps: the refresher then sleeps until woken, never on a real-time
    /// timer. A clock that follows real time returns `false` (the default)
    /// and drops `wake`; the refresher then sleeps in real time until its
    /// next deadline.
    fn on_advance(&self, wake: AdvanceHook) -> bool {
        drop(wake);
        false
    }
}

/// A shared clock: keep one `Arc<ManualClock>` to move time, hand a clone to
/// the builder.
impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
    fn on_advance(&self, wake: AdvanceHook) -> bool {
        (**self).on_advance(wake)
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

/// A clock that moves only when told to; every move wakes the refreshers
/// of the caches it was given to (see [`Clock::on_advance`]).
pub struct ManualClock {
    base: Instant,
    offset_nanos: AtomicU64,
    wakers: Mutex<Vec<AdvanceHook>>,
}

impl ManualClock {
    /// A clock standing at the moment of creation.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset_nanos: AtomicU64::new(0),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Moves the clock forward by `by` (saturating, at about 584 years past
    /// its creation) and wakes every refresher that reads it.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the value is the whole message; no other data rides on
        // it (a woken refresher reads it after the doorbell's own
        // synchronisation).
        let _ = self
            .offset_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(nanos))
            });
        for wake in self.wakers.lock().iter() {
            wake();
        }
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
        let offset = Duration::from_nanos(self.offset_nanos.load(Ordering::Relaxed));
        crate::policy::after(self.base, offset)
    }

    fn on_advance(&self, wake: AdvanceHook) -> bool {
        self.wakers.lock().push(wake);
        true
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &(self.now() - self.base))
            .finish()
    }
}
