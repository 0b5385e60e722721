//! State shared by the handles and the refresher thread, and the demand /
//! wake-up protocol between them.
//!
//! ## Demands
//!
//! A demand is a bit in `pending` plus a ring of the source's doorbell (a
//! flag and at most one message to the scheduler, see `source.rs`). The
//! scheduler takes all bits at once (`swap(0)`) at the start of the
//! source's round, so any number of demands before it wakes collapse into
//! one round.
//!
//! ## Rounds: how waiters wake
//!
//! | field | meaning | written by |
//! |---|---|---|
//! | `done` | rounds finished (a fetch, or a decision not to fetch) | refresher |
//! | `fetching` | a fetch is in flight | refresher |
//! | `started`, `finished` | fetches started / finished so far | refresher |
//! | `last` | outcome of the latest fetch | refresher |
//! | `miss_fetch_at` | when an unknown kid's demand would next start a fetch | refresher |
//! | `stopped` | the refresher has exited; nothing will change | refresher |
//!
//! A caller that needs "a fetch that started after now" (`refresh_now`, a
//! miss that asked) records `target = started + 1` under the lock, rings,
//! and waits until `finished >= target`; one joining the fetch in flight
//! waits for `finished >= started`. `MANUAL` demands arriving during a fetch
//! are kept for the next round, so `refresh_now` never returns the outcome
//! of a fetch that was already running when it was called.
//!
//! ## Deadlines: who enforces them
//!
//! The hard-expiry deadline of a set is stored in the set when it is
//! published or renewed. While the refresher is parked (sleeping until a
//! wake-up no later than that deadline) the fast path trusts the freshness
//! byte alone; whenever it is awake (deciding, fetching, in the user's
//! hook) or gone, the byte carries `UNWATCHED` and readers compare the
//! deadline with the clock themselves. A clock advance (manual clock) sets
//! `UNWATCHED | CLOCK_MOVED` at once, so an expiry caused by it is seen by
//! the very next lookup.
//!
//! Invariant: a waiter sets its demand bit *while holding the rounds lock*,
//! and the refresher takes the bits and either starts a fetch (`fetching`)
//! or finishes the round (`done += 1`) under that same lock. So a waiter that
//! records `target = done + 1` is woken by the round that serves its demand,
//! or by the in-flight fetch it joins; demands arriving during a fetch are
//! coalesced into it (their bits are cleared when it finishes, under the
//! lock). No wake-up is lost: every `done` change and `stopped` notifies all.

use std::time::{Duration, Instant};

use crate::clock::{AdvanceHook, Clock};
use crate::error::Error;
use crate::keyset::{KeySet, CLOCK_MOVED, NO_DEADLINE, UNWATCHED};
use crate::source::Doorbell;
use crate::stats::{Board, LookupCounters, RefresherState};
use crate::sync::{Arc, AtomicBool, AtomicU8, Condvar, Mutex, MutexGuard, Ordering, Swap};

/// `refresh_now`.
pub(crate) const MANUAL: u8 = 1;
/// An unknown kid passed the guard.
pub(crate) const MISS: u8 = 1 << 1;
/// The usage arm was crossed.
pub(crate) const USAGE: u8 = 1 << 2;
/// A lookup found the set due (background refresh off).
pub(crate) const DUE: u8 = 1 << 3;
/// The last handle was dropped.
pub(crate) const STOP: u8 = 1 << 4;

/// Unknown kids recently confirmed absent, capped at this many.
pub(crate) const NEGATIVE_CAPACITY: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Rounds {
    pub(crate) done: u64,
    pub(crate) fetching: bool,
    pub(crate) started: u64,
    pub(crate) finished: u64,
    pub(crate) last: Option<Result<(), Error>>,
    pub(crate) miss_fetch_at: Option<Instant>,
    pub(crate) stopped: bool,
}

pub(crate) struct Shared {
    /// The published set. Readers load it; only the refresher stores.
    pub(crate) current: Swap<KeySet>,
    pub(crate) counters: LookupCounters,
    /// Open: the next unknown kid may ask for a refresh. Readers close it
    /// (swap to false, under the rounds lock); the refresher reopens it when
    /// the cooldown has passed.
    pub(crate) miss_gate: AtomicBool,
    /// Kids recently confirmed absent; they never open a refresh.
    pub(crate) negative: Swap<Vec<Box<str>>>,
    /// The kid that closed the gate, for the negative cache.
    pub(crate) missed_kid: Mutex<Option<Box<str>>>,
    pub(crate) pending: AtomicU8,
    pub(crate) rounds: Mutex<Rounds>,
    pub(crate) round_done: Condvar,
    pub(crate) board: Mutex<Board>,
    /// Wakes the scheduler for this source.
    pub(crate) bell: Doorbell,
    pub(crate) clock: Box<dyn Clock>,
    /// Background off: how long a lookup on a due set waits for the refresh.
    pub(crate) expired_wait: Duration,
    /// How long `refresh_now` waits.
    pub(crate) refresh_timeout: Duration,
    /// Lookups of longer kids miss at once.
    pub(crate) max_kid_len: usize,
    /// Deadlines in sets are nanoseconds of `clock` since this instant.
    pub(crate) epoch: Instant,
}

impl Shared {
    /// Records demand `bits` and wakes the refresher. Never blocks.
    pub(crate) fn ring(&self, bits: u8) {
        // Release: pairs with the refresher's AcqRel `swap` of `pending`, so
        // what the demander wrote before (e.g. `missed_kid`) is visible to it.
        self.pending.fetch_or(bits, Ordering::Release);
        self.bell.ring();
    }

    /// Rings `bits` and waits, until `deadline`, for the round that serves
    /// them (or the in-flight fetch they join). Returns the latest fetch
    /// outcome as seen at wake-up.
    pub(crate) fn demand_and_wait(
        &self,
        bits: u8,
        deadline: Instant,
    ) -> Result<Option<Result<(), Error>>, Error> {
        let rounds = self.rounds.lock();
        if rounds.stopped {
            return Err(Error::Stopped);
        }
        let target = rounds.done + 1;
        self.ring(bits);
        self.wait_for_round(rounds, target, deadline)
    }

    /// Rings `bits` and waits, until `deadline`, for a fetch that starts
    /// after this call; returns its outcome (or a later one's).
    pub(crate) fn demand_fetch_and_wait(
        &self,
        bits: u8,
        deadline: Instant,
    ) -> Result<Result<(), Error>, Error> {
        let rounds = self.rounds.lock();
        if rounds.stopped {
            return Err(Error::Stopped);
        }
        let target = rounds.started + 1;
        self.ring(bits);
        self.wait_for_fetch(rounds, target, deadline)
    }

    /// Waits (holding the lock between checks) until fetch number `target`
    /// has finished; returns the latest outcome.
    pub(crate) fn wait_for_fetch(
        &self,
        mut rounds: MutexGuard<'_, Rounds>,
        target: u64,
        deadline: Instant,
    ) -> Result<Result<(), Error>, Error> {
        loop {
            if rounds.finished >= target {
                if let Some(last) = &rounds.last {
                    return Ok(last.clone());
                }
            }
            if rounds.stopped {
                return Err(Error::Stopped);
            }
            let (guard, timed_out) = self.round_done.wait_until(rounds, deadline);
            rounds = guard;
            if timed_out && rounds.finished < target && !rounds.stopped {
                return Err(Error::Timeout);
            }
        }
    }

    /// Waits (holding the lock between checks) until round `target` is done.
    pub(crate) fn wait_for_round(
        &self,
        mut rounds: MutexGuard<'_, Rounds>,
        target: u64,
        deadline: Instant,
    ) -> Result<Option<Result<(), Error>>, Error> {
        loop {
            if rounds.done >= target {
                return Ok(rounds.last.clone());
            }
            if rounds.stopped {
                return Err(Error::Stopped);
            }
            let (guard, timed_out) = self.round_done.wait_until(rounds, deadline);
            rounds = guard;
            if timed_out && rounds.done < target && !rounds.stopped {
                return Err(Error::Timeout);
            }
        }
    }

    /// `t` as nanoseconds since the epoch, saturating (a deadline past 584
    /// years is no deadline).
    pub(crate) fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(NO_DEADLINE)
    }

    /// Whether `set`'s hard-expiry deadline has passed (reads the clock).
    pub(crate) fn past_deadline(&self, set: &KeySet) -> bool {
        let deadline = set.deadline();
        deadline != NO_DEADLINE && self.nanos(self.clock.now()) >= deadline
    }

    /// The clock jumped: readers check deadlines themselves until the
    /// refresher has planned with the new time (see the module docs).
    pub(crate) fn clock_moved(&self) {
        let _ = self
            .current
            .load()
            .update_state(|v| Some(v | UNWATCHED | CLOCK_MOVED));
        self.bell.ring();
    }

    /// The refresher has exited (`reason`: why, if it panicked): waiters are
    /// released and readers enforce the deadline from now on.
    pub(crate) fn stop(&self, reason: Option<String>) {
        let _ = self.current.load().update_state(|v| Some(v | UNWATCHED));
        {
            let mut board = self.board.lock();
            board.state = RefresherState::Stopped;
            if reason.is_some() {
                board.stop_reason = reason;
            }
        }
        let mut rounds = self.rounds.lock();
        rounds.stopped = true;
        rounds.fetching = false;
        self.round_done.notify_all();
    }

    /// The latest fetch error, for error messages.
    pub(crate) fn last_error(&self) -> Option<Box<Error>> {
        self.board.lock().last_error.clone().map(Box::new)
    }

    /// Whether `kid` was recently confirmed absent.
    pub(crate) fn is_negative(&self, kid: &str) -> bool {
        self.negative.load().iter().any(|k| &**k == kid)
    }
}

/// What a [`Clock`] that moves by jumps calls on each jump: marks the
/// current set unwatched and wakes the refresher. Holds the shared state
/// weakly, so a clock outliving the cache keeps nothing alive.
#[cfg(not(jwks_sync_loom))]
pub(crate) fn advance_hook(shared: &Arc<Shared>) -> AdvanceHook {
    let shared = Arc::downgrade(shared);
    Box::new(move || {
        if let Some(shared) = shared.upgrade() {
            shared.clock_moved();
        }
    })
}

/// Loom has no weak pointers; models never use a manual clock (the system
/// clock drops the hook at once).
#[cfg(jwks_sync_loom)]
pub(crate) fn advance_hook(shared: &Arc<Shared>) -> AdvanceHook {
    let shared = Arc::clone(shared);
    Box::new(move || shared.clock_moved())
}
