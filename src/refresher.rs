//! The refresher thread: the only code that fetches and publishes.
//!
//! ## States
//!
//! | state | what it does | leaves when |
//! |---|---|---|
//! | idle | sleeps on the doorbell until the plan's next deadline | rung, or deadline |
//! | fetching | calls the fetcher (blocking, caught if it panics) | fetch returns |
//! | backing off | idle, with the next deadline a retry | retry deadline, or manual |
//! | stopped | exits; waiters are told `Error::Stopped` | — |
//!
//! Each wake-up is one *round*: take the demands, ask the policy, apply its
//! plan (freshness, unknown-kid gate, usage arm), fetch if told to, publish,
//! and finish the round so waiters wake (see `shared.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::builder::EventHook;
use crate::error::{Error, FetchError, FetchErrorKind};
use crate::event::{RefreshEvent, RefreshOutcome};
use crate::fetch::{Fetch, FetchRequest, Validators};
use crate::keyset::{KeySet, SetLimits};
use crate::policy::{Demands, Outcome, Plan, Policy, RefreshCause};
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
}

/// Marks the refresher stopped however the thread exits, so no waiter hangs.
struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        self.0.board.lock().state = RefresherState::Stopped;
        let mut rounds = self.0.rounds.lock();
        rounds.stopped = true;
        rounds.fetching = false;
        self.0.round_done.notify_all();
    }
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
    pub(crate) fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let _stop = StopOnExit(&shared);
        let mut validators = Validators::default();
        let mut negative = Negative { kids: Vec::new() };
        let mut triggers = Triggers::default();
        let mut wake_at: Option<Instant> = None;
        let mut wait = false;
        loop {
            if wait {
                // The plan's instants are on the injected clock; sleep for the
                // distance to them in real time.
                let now = shared.clock.now();
                let real = wake_at.map(|w| Instant::now() + w.saturating_duration_since(now));
                self.bell.wait(self.observer.wake_cap(real));
            }
            wait = true;
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
                self.update_board(RefresherState::Idle);
                rounds.done += 1;
                shared.round_done.notify_all();
                drop(rounds);
                self.observer.after_round(&shared);
                wake_at = earliest(plan.wake_at, negative.next_expiry());
                continue;
            };
            // Start the fetch; close the unknown-kid gate before waiters can
            // look at it again (they take the rounds lock to close it too).
            rounds.fetching = true;
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
                    negative.add(kid, done_at + self.negative_ttl);
                    negative.publish(&shared);
                }
            }
            let plan = self.policy.poll(done_at);
            self.apply(&plan, &mut triggers);
            // The board first, so a woken waiter reads the new status.
            self.update_board(if self.policy.failures() > 0 {
                RefresherState::BackingOff
            } else {
                RefresherState::Idle
            });
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
            // Demands that arrived during the fetch are served by it. AcqRel
            // on the clear: nothing rides on it; STOP is kept.
            shared.pending.fetch_and(STOP, Ordering::AcqRel);
            shared.missed_kid.lock().take();
            rounds.fetching = false;
            rounds.done += 1;
            rounds.last = Some(result.map(|_| ()));
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

    /// Publishes what the plan says about the current set and the triggers.
    fn apply(&self, plan: &Plan, triggers: &mut Triggers) {
        let shared = &self.shared;
        if let Some(f) = plan.freshness {
            let current = shared.current.load();
            if current.freshness() != f {
                current.set_freshness(f);
            }
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
                let kids = |set: &KeySet| -> Vec<String> {
                    set.keys()
                        .iter()
                        .filter_map(|k| k.kid())
                        .map(str::to_owned)
                        .collect()
                };
                let (old, new) = (kids(previous), kids(&current));
                RefreshOutcome::Updated {
                    generation: current.generation(),
                    added: new.iter().filter(|k| !old.contains(k)).cloned().collect(),
                    removed: old.iter().filter(|k| !new.contains(k)).cloned().collect(),
                    skipped: current.skipped().len(),
                    lifetime: self.policy.lifetime(),
                }
            }
        }
    }

    fn update_board(&self, state: RefresherState) {
        let mut board = self.shared.board.lock();
        board.state = state;
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
