//! The refresher thread: the only code that fetches and publishes.
//!
//! ## States
//!
//! | state | what it does | leaves when |
//! |---|---|---|
//! | idle | sleeps on the doorbell until the plan's next deadline (never later than the set's hard expiry); the only state in which the set is marked watched | rung (a demand, a manual clock's jump), or deadline |
//! | fetching | calls the fetcher (blocking, caught if it panics) | fetch returns |
//! | backing off | idle, with the next deadline a retry | retry deadline, or manual |
//! | stopped | exits (or panicked: the message goes to `Status::stop_reason`); waiters are told `Error::Stopped`; readers enforce deadlines | — |
//!
//! Each wake-up is one *round*: mark the set unwatched, take the demands,
//! ask the policy, apply its plan (freshness, deadline, unknown-kid gate,
//! usage arm), fetch if told to, publish, and finish the round so waiters
//! wake (see `shared.rs`); then mark the set watched again and park, unless
//! the clock moved meanwhile.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::builder::EventHook;
use crate::error::{Error, FetchError, FetchErrorKind};
use crate::event::{RefreshEvent, RefreshOutcome};
use crate::fetch::{Fetch, FetchRequest, Validators};
use crate::keyset::{KeySet, SetLimits, CLOCK_MOVED, NO_DEADLINE, UNWATCHED};
use crate::policy::{after, Demands, Outcome, Plan, Policy, RefreshCause};
use crate::shared::{Shared, DUE, MANUAL, MISS, NEGATIVE_CAPACITY, STOP, USAGE};
use crate::stats::RefresherState;
use crate::sync::{Arc, BellWait, Ordering};

pub(crate) struct Refresher {
    pub(crate) shared: Arc<Shared>,
    pub(crate) fetcher: Box<dyn Fetch>,
    pub(crate) policy: Policy,
    pub(crate) limits: SetLimits,
    pub(crate) negative_ttl: Duration,
    pub(crate) bell: BellWait,
    pub(crate) on_refresh: Option<EventHook>,
    pub(crate) observer: crate::observe::Observer,
    /// The clock moves only by jumps that ring the bell: park without a
    /// real-time timer.
    pub(crate) manual_time: bool,
}

/// Marks the refresher stopped if the thread unwinds past `run` anyway
/// (`run` catches panics; this covers a panic while reporting one).
struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        if !self.0.rounds.lock().stopped {
            self.0.stop(None);
        }
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
}

struct Negative {
    kids: Vec<(Box<str>, Instant)>,
}

impl Negative {
    fn prune(&mut self, now: Instant) -> bool {
        let before = self.kids.len();
        self.kids.retain(|(_, until)| *until > now);
        before != self.kids.len()
    }
    fn add(&mut self, kid: Box<str>, until: Instant) {
        if self.kids.len() >= NEGATIVE_CAPACITY {
            self.kids.remove(0);
        }
        self.kids.push((kid, until));
    }
    fn next_expiry(&self) -> Option<Instant> {
        self.kids.iter().map(|(_, t)| *t).min()
    }
    fn publish(&self, shared: &Shared) {
        let kids = self.kids.iter().map(|(k, _)| k.clone()).collect();
        shared.negative.store(Arc::new(kids));
    }
}

impl Refresher {
    /// The thread's body: rounds until told to stop or until something
    /// panics; either way waiters are released and readers take over the
    /// deadline (`Shared::stop`).
    pub(crate) fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let _stop = StopOnExit(&shared);
        let reason = match catch_unwind(AssertUnwindSafe(|| self.rounds())) {
            Ok(()) => None,
            Err(payload) => {
                let message = format!("the refresher panicked: {}", panic_message(&*payload));
                log::error!("jwks-sync: {message}; no more refreshes, lookups fail closed at the set's deadline");
                Some(message)
            }
        };
        shared.stop(reason);
    }

    fn rounds(&mut self) {
        let shared = Arc::clone(&self.shared);
        let mut validators = Validators::default();
        let mut negative = Negative { kids: Vec::new() };
        let mut triggers = Triggers::default();
        let mut wake_at: Option<Instant> = None;
        let mut wait = false;
        loop {
            if wait && self.park() {
                if self.manual_time {
                    // Every clock jump rings: no timer to set.
                    self.bell.wait(self.observer.wake_cap(None));
                } else {
                    // The plan's instants are on the injected clock; sleep
                    // for the distance to them in real time.
                    let now = shared.clock.now();
                    let real =
                        wake_at.map(|w| after(Instant::now(), w.saturating_duration_since(now)));
                    self.bell.wait(self.observer.wake_cap(real));
                }
            }
            wait = true;
            // Awake: readers check the deadline themselves until we park
            // again; clearing CLOCK_MOVED before reading the clock means a
            // later jump is seen by `park`.
            let _ = shared
                .current
                .load()
                .update_state(|v| Some((v & !CLOCK_MOVED) | UNWATCHED));
            let now = shared.clock.now();
            let mut rounds = shared.rounds.lock();
            // AcqRel: Acquire pairs with demanders' Release in `Shared::ring`.
            let bits = shared.pending.swap(0, Ordering::AcqRel);
            if bits & STOP != 0 {
                break;
            }
            let missed = if bits & MISS != 0 {
                shared.missed_kid.lock().take()
            } else {
                None
            };
            self.policy.on_demands(
                now,
                Demands {
                    manual: bits & MANUAL != 0,
                    unknown_kid: bits & MISS != 0,
                    usage: bits & USAGE != 0,
                    due: bits & DUE != 0,
                },
            );
            if negative.prune(now) {
                negative.publish(&shared);
            }
            let plan = self.policy.poll(now);
            self.apply(&plan, &mut triggers);
            let Some(cause) = plan.fetch else {
                if bits & USAGE != 0 {
                    shared.board.lock().deferred += 1;
                }
                self.update_board(RefresherState::Idle, now);
                rounds.done += 1;
                rounds.miss_fetch_at = plan.miss_fetch_at;
                shared.round_done.notify_all();
                drop(rounds);
                self.observer.after_round(&shared);
                wake_at = earliest(plan.wake_at, negative.next_expiry());
                continue;
            };
            // Start the fetch; close the unknown-kid gate before waiters can
            // look at it again (they take the rounds lock to close it too).
            rounds.fetching = true;
            rounds.started += 1;
            shared.miss_gate.store(false, Ordering::Release);
            triggers.gate_open = false;
            drop(rounds);
            self.policy.on_fetch_start(now);
            {
                let mut board = shared.board.lock();
                board.state = RefresherState::Fetching;
                board.refreshes.count(cause);
            }
            log::debug!(
                target: crate::observe::REFRESH,
                "source={} refreshing ({cause:?}) from {}",
                self.observer.name(),
                self.fetcher.describe()
            );
            let previous = shared.current.load_full();
            let result = self.fetch_and_publish(&mut validators, cause);
            let done_at = shared.clock.now();
            // A shared snapshot left its origin `age` ago: date the success
            // then, so its deadlines stay those of the original fetch (the
            // fleet rejects snapshots older than this clock can express).
            let success_at = match &result {
                Ok((_, age)) => done_at.checked_sub(*age).unwrap_or(done_at),
                Err(_) => done_at,
            };
            let outcome = match &result {
                Ok((max_age, _)) => Outcome::Success { max_age: *max_age },
                Err(e) => Outcome::Failure {
                    transient: match e {
                        Error::Fetch(f) => f.is_transient(),
                        _ => false,
                    },
                    retry_after: match e {
                        Error::Fetch(f) => f.retry_after(),
                        _ => None,
                    },
                },
            };
            self.policy.on_fetch_done(success_at, outcome);
            if result.is_ok() {
                // Usage counts from this success on.
                triggers.usage_base = shared.counters.usage_total();
                triggers.usage_arm = None;
            }
            if let (Ok(_), Some(kid)) = (&result, missed) {
                // Negative only if absent from a set that left the origin
                // after the kid was asked for (an older shared snapshot
                // says nothing about a key published since).
                if success_at >= now && shared.current.load().get(&kid).is_none() {
                    negative.add(kid, after(done_at, self.negative_ttl));
                    negative.publish(&shared);
                }
            }
            let plan = self.policy.poll(done_at);
            self.apply(&plan, &mut triggers);
            // The board first, so a woken waiter reads the new status.
            self.update_board(
                if self.policy.failures() > 0 {
                    RefresherState::BackingOff
                } else {
                    RefresherState::Idle
                },
                done_at,
            );
            {
                let mut board = shared.board.lock();
                match &result {
                    Ok(_) => board.last_error = None,
                    Err(e) => {
                        board.fetch_failures += 1;
                        board.last_error = Some(e.clone());
                    }
                }
            }
            let event = RefreshEvent {
                cause,
                elapsed: done_at.saturating_duration_since(now),
                outcome: self.outcome_of(&result, &previous, done_at),
            };
            self.observer
                .after_fetch(&shared, &event, &previous, done_at);
            if let Some(hook) = &self.on_refresh {
                if catch_unwind(AssertUnwindSafe(|| hook(&event))).is_err() {
                    log::error!(
                        target: crate::observe::REFRESH,
                        "source={} the on_refresh hook panicked",
                        self.observer.name()
                    );
                }
            }
            let mut rounds = shared.rounds.lock();
            // Demands that arrived during the fetch are served by it, except
            // two kept for the next round (with STOP): MANUAL, as
            // `refresh_now` asks for a fetch that starts after the call, and
            // MISS, which can only come from a reader that won the gate
            // `apply` reopened above, after this fetch's set was published
            // (the gate is closed for the rest of a fetch): that reader missed
            // in the new set and waits for a new fetch. AcqRel on the clear:
            // nothing rides on it.
            shared
                .pending
                .fetch_and(STOP | MANUAL | MISS, Ordering::AcqRel);
            rounds.fetching = false;
            rounds.finished += 1;
            rounds.done += 1;
            rounds.last = Some(result.map(|_| ()));
            rounds.miss_fetch_at = plan.miss_fetch_at;
            shared.round_done.notify_all();
            drop(rounds);
            // Decide again at once if the plan already wants another fetch
            // (say, a zero-delay retry); otherwise sleep until its deadline.
            wait = plan.fetch.is_none();
            wake_at = earliest(plan.wake_at, negative.next_expiry());
        }
    }

    /// Fetches, parses and publishes. `Ok` carries the lifetime hint and
    /// the document's age.
    fn fetch_and_publish(
        &mut self,
        validators: &mut Validators,
        cause: RefreshCause,
    ) -> Result<(Option<Duration>, Duration), Error> {
        let request = FetchRequest {
            validators: validators.clone(),
            max_bytes: self.limits.max_bytes,
            cause,
        };
        let fetcher = &mut self.fetcher;
        let response =
            catch_unwind(AssertUnwindSafe(|| fetcher.fetch(&request))).unwrap_or_else(|_| {
                Err(FetchError::new(
                    FetchErrorKind::Panicked,
                    "the fetcher panicked",
                ))
            })?;
        let age = response.age();
        let (body, max_age, new_validators) = response.into_parts();
        let current = self.shared.current.load_full();
        match body {
            None if current.generation() == 0 => Err(Error::Fetch(FetchError::new(
                FetchErrorKind::Other,
                "source answered \"not modified\" but no key set is loaded",
            ))),
            None => {
                self.shared.board.lock().not_modified += 1;
                if new_validators != Validators::default() {
                    *validators = new_validators;
                }
                Ok((max_age, age))
            }
            Some(body) => {
                let set = KeySet::parse(&body, current.generation() + 1, self.limits)?;
                // Published while the refresher is busy: unwatched until it
                // has fixed the deadline and parks.
                let _ = set.update_state(|v| Some(v | UNWATCHED));
                if !set.skipped().is_empty() {
                    log::info!(
                        target: crate::observe::REFRESH,
                        "source={} {} key set entries skipped (see Status::skipped)",
                        self.observer.name(),
                        set.skipped().len()
                    );
                }
                self.shared.current.store(Arc::new(set));
                *validators = new_validators;
                Ok((max_age, age))
            }
        }
    }

    /// Marks the current set watched before parking; `false` when the
    /// clock moved since the round planned (do not park on a stale plan).
    fn park(&self) -> bool {
        self.shared
            .current
            .load()
            .update_state(|v| (v & CLOCK_MOVED == 0).then_some(v & !UNWATCHED))
            .is_ok()
    }

    /// Publishes what the plan says about the current set (freshness and
    /// hard-expiry deadline) and the triggers. The set stays unwatched: the
    /// refresher is awake until it parks.
    fn apply(&self, plan: &Plan, triggers: &mut Triggers) {
        let shared = &self.shared;
        if let Some(f) = plan.freshness {
            let current = shared.current.load();
            let deadline = self
                .policy
                .expires_at()
                .map_or(NO_DEADLINE, |t| shared.nanos(t));
            if current.deadline() != deadline {
                current.set_deadline(deadline);
            }
            let _ = current.update_state(|v| {
                let flags = v & (UNWATCHED | CLOCK_MOVED);
                (v != f as u8 | flags).then_some(f as u8 | flags)
            });
        }
        // Only ever reopen from the refresher's own "closed" view: readers
        // close the gate, and a closed gate must stay closed until the plan
        // says the cooldown is over.
        if plan.miss_gate_open != triggers.gate_open {
            // Release: pairs with the readers' Acquire load / swap.
            shared
                .miss_gate
                .store(plan.miss_gate_open, Ordering::Release);
            triggers.gate_open = plan.miss_gate_open;
        }
        // Likewise the usage arm: a reader disarms it when crossing it, and
        // it is re-armed only when the policy moves to another threshold.
        let arm = plan
            .usage_arm
            .map(|hits| triggers.usage_base.saturating_add(hits));
        if triggers.usage_arm != Some(arm) {
            shared.counters.set_usage_arm(arm);
            triggers.usage_arm = Some(arm);
        }
    }

    fn outcome_of(
        &self,
        result: &Result<(Option<Duration>, Duration), Error>,
        previous: &KeySet,
        now: Instant,
    ) -> RefreshOutcome {
        let current = self.shared.current.load_full();
        match result {
            Err(error) => RefreshOutcome::Failed {
                error: error.clone(),
                consecutive_failures: self.policy.failures(),
                retry_in: self
                    .policy
                    .next_fetch_at()
                    .map(|t| t.saturating_duration_since(now)),
            },
            Ok(_) if current.generation() == previous.generation() => RefreshOutcome::NotModified {
                lifetime: self.policy.lifetime(),
            },
            Ok(_) => {
                let (added, removed) = crate::event::kid_diff(previous, &current);
                RefreshOutcome::Updated {
                    generation: current.generation(),
                    added,
                    removed,
                    skipped: current.skipped().len(),
                    lifetime: self.policy.lifetime(),
                }
            }
        }
    }

    /// The status board after a round that planned with `planned`.
    fn update_board(&self, state: RefresherState, planned: Instant) {
        let mut board = self.shared.board.lock();
        board.state = state;
        board.planned_at = Some(planned);
        board.fetched_at = self.policy.fetched_at();
        board.lifetime = self.policy.fetched_at().map(|_| self.policy.lifetime());
        board.next_refresh = self.policy.next_fetch_at();
        board.due_at = self.policy.due_at();
        board.expires_at = self.policy.expires_at();
        board.failures = self.policy.failures();
    }
}

/// The refresher's own view of the triggers it published.
#[derive(Default)]
struct Triggers {
    gate_open: bool,
    /// `usage_total` at the last success.
    usage_base: u64,
    /// The arm last published (`Some(None)`: disarmed; `None`: unknown).
    usage_arm: Option<Option<u64>>,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
