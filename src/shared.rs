//! State shared by the handles and the refresher thread, and the demand /
//! wake-up protocol between them.
//!
//! ## Demands
//!
//! A demand is a bit in `pending` plus a ring of the capacity-one doorbell.
//! The refresher takes all bits at once (`swap(0)`) at the start of each
//! round, so any number of demands before it wakes collapse into one round.
//!
//! ## Rounds: how waiters wake
//!
//! | field | meaning | written by |
//! |---|---|---|
//! | `done` | rounds finished (a fetch, or a decision not to fetch) | refresher |
//! | `fetching` | a fetch is in flight | refresher |
//! | `last` | outcome of the latest fetch | refresher |
//! | `stopped` | the refresher has exited; nothing will change | refresher |
//!
//! Invariant: a waiter sets its demand bit *while holding the rounds lock*,
//! and the refresher takes the bits and either starts a fetch (`fetching`)
//! or finishes the round (`done += 1`) under that same lock. So a waiter that
//! records `target = done + 1` is woken by the round that serves its demand,
//! or by the in-flight fetch it joins; demands arriving during a fetch are
//! coalesced into it (their bits are cleared when it finishes, under the
//! lock). No wake-up is lost: every `done` change and `stopped` notifies all.

use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::error::Error;
use crate::keyset::KeySet;
use crate::stats::{Board, LookupCounters};
use crate::sync::{AtomicBool, AtomicU8, Bell, Condvar, Mutex, MutexGuard, Ordering, Swap};

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
    pub(crate) last: Option<Result<(), Error>>,
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
    pub(crate) bell: Bell,
    pub(crate) clock: Box<dyn Clock>,
    /// Background off: how long a lookup on a due set waits for the refresh.
    pub(crate) expired_wait: Duration,
    /// How long `refresh_now` waits.
    pub(crate) refresh_timeout: Duration,
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

    /// The latest fetch error, for error messages.
    pub(crate) fn last_error(&self) -> Option<Box<Error>> {
        self.board.lock().last_error.clone().map(Box::new)
    }

    /// Whether `kid` was recently confirmed absent.
    pub(crate) fn is_negative(&self, kid: &str) -> bool {
        self.negative.load().iter().any(|k| &**k == kid)
    }
}
