//! One source: its refresher state (policy, validators, negative cache,
//! triggers, fetcher) and the steps of a round, which the scheduler
//! (`scheduler.rs`) runs on its thread, one source at a time.
//!
//! ## States
//!
//! | state | what it does | leaves when |
//! |---|---|---|
//! | idle | parked: in the scheduler's deadline heap at the plan's next deadline (never later than the set's hard expiry), or on no timer with a manual clock; the only state in which the set is marked watched | rung (a demand, a manual clock's jump: [`Doorbell`]), or deadline |
//! | scheduled | rung or due: the scheduler runs a round for it at its next turn | the round starts |
//! | fetching | its fetcher is out (on a pool thread, or inline on the scheduler when the pool is empty), caught if it panics; rings are kept for after | the fetch returns ([`Msg::Fetched`]) |
//! | backing off | idle, with the next deadline a retry | retry deadline, or manual |
//! | stopped | dropped from the table (unregistered, the registry gone, or a panic: the message goes to `Status::stop_reason`); waiters are told `Error::Stopped`; readers enforce deadlines | — |
//!
//! Each wake-up is one *round*, in named steps:
//!
//! 1. [`Source::take_demands`]: mark the set unwatched, take the demand
//!    bits, tell the policy;
//! 2. [`Source::plan`]: ask the policy, apply its plan (freshness,
//!    deadline, unknown-kid gate, usage arm);
//! 3. [`Source::start_fetch`] if told to fetch: close the gate, hand out
//!    the fetcher and its request; otherwise finish the round;
//! 4. [`Source::finish_fetch`]: parse, publish, tell the policy, run the
//!    hooks, finish the round so waiters wake (see `shared.rs`);
//! 5. [`Source::park`]: mark the set watched again and give the scheduler
//!    the real-time instant to wake it, unless the clock moved meanwhile
//!    (then round again at once).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::error::{Error, FetchError, FetchErrorKind};
use crate::event::{RefreshEvent, RefreshOutcome};
use crate::fetch::{Fetch, FetchRequest, FetchResponse, Validators};
use crate::keyset::{Freshness, KeySet, SetLimits, CLOCK_MOVED, NO_DEADLINE, UNWATCHED};
use crate::policy::{after, Demands, Outcome, Plan, Policy, RefreshCause};
use crate::settings::{EventHook, Settings};
use crate::shared::{
    advance_hook, Rounds, Shared, DUE, MANUAL, MISS, NEGATIVE_CAPACITY, STOP, USAGE,
};
use crate::stats::{Board, LookupCounters, RefresherState};
use crate::sync::{Arc, AtomicBool, AtomicU8, Condvar, Mutex, MutexGuard, Ordering, Post, Swap};

/// What the scheduler's inbox carries.
pub(crate) enum Msg {
    /// Source `id` was rung (see [`Doorbell`]).
    Demand(u64),
    /// A new source to serve.
    Add(Box<Source>),
    /// Source `id`'s fetcher came back with its response.
    Fetched {
        id: u64,
        fetcher: Box<dyn Fetch>,
        response: Result<FetchResponse, FetchError>,
    },
    /// Stop every source and exit.
    Shutdown,
}

/// How handles wake the scheduler for their source: a flag per source, so
/// a flood of rings before the scheduler looks sends one message.
///
/// The flag is the truth and the message only a wake-up: the scheduler
/// [`take`](Self::take)s the flag before each round, and a message whose
/// flag was already taken (by the round after a fetch) is ignored.
pub(crate) struct Doorbell {
    id: u64,
    queued: AtomicBool,
    post: Post<Msg>,
}

impl Doorbell {
    pub(crate) fn new(id: u64, post: Post<Msg>) -> Self {
        Self {
            id,
            queued: AtomicBool::new(false),
            post,
        }
    }

    /// Never blocks: the first ring since the last `take` sends one message.
    pub(crate) fn ring(&self) {
        // AcqRel: the Release half pairs with `take`'s Acquire, so demand
        // bits set before this ring (`Shared::ring`) are seen by the round
        // that takes it; the Acquire half orders it after that `take`, so a
        // ring after a take always sends.
        if !self.queued.swap(true, Ordering::AcqRel) {
            let _ = self.post.send(Msg::Demand(self.id));
        }
    }

    /// Whether it was rung since the last `take`.
    pub(crate) fn rung(&self) -> bool {
        // Acquire: pairs with `ring`'s Release.
        self.queued.load(Ordering::Acquire)
    }

    /// Takes the ring (the scheduler, before a round): whether there was one.
    pub(crate) fn take(&self) -> bool {
        // AcqRel: pairs with `ring` (see there).
        self.queued.swap(false, Ordering::AcqRel)
    }
}

/// What a handle keeps alive besides its source's state: the scheduler
/// itself (a cache of its own), or only the knowledge of which threads are
/// the scheduler's (a registry's handle).
pub(crate) trait Keep: Send + Sync {
    /// Whether the caller runs on the scheduler or its pool (an
    /// `on_refresh` hook, a fetcher), where waiting for a round would stall it.
    fn runs_here(&self) -> bool;
}

/// What the scheduler does next with a source.
pub(crate) enum Next {
    /// Park it; wake it at this real-time instant (`None`: only when rung).
    Park(Option<Instant>),
    /// Run the fetcher on `request`, then [`Source::finish_fetch`].
    Fetch(Box<dyn Fetch>, FetchRequest),
    /// Run another round at once (the clock moved, or the plan wants
    /// another fetch now).
    Again,
    /// Unregistered: drop it (see [`Source::retire`]).
    Stop,
}

/// A fetch in flight: what the round that started it knew.
struct Flight {
    started_at: Instant,
    cause: RefreshCause,
    missed: Option<Box<str>>,
    previous: Arc<KeySet>,
}

/// One source's refresher state; owned by the scheduler.
pub(crate) struct Source {
    pub(crate) id: u64,
    shared: Arc<Shared>,
    /// `None` while it is out on a fetch.
    fetcher: Option<Box<dyn Fetch>>,
    policy: Policy,
    limits: SetLimits,
    negative_ttl: Duration,
    on_refresh: Option<EventHook>,
    observer: crate::observe::Observer,
    /// The clock moves only by jumps that ring: park without a timer.
    manual_time: bool,
    validators: Validators,
    negative: Negative,
    triggers: Triggers,
    /// The plan's next wake-up, on the source's clock.
    wake_at: Option<Instant>,
    flight: Option<Flight>,
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
}

/// Runs a fetcher, a panic caught and reported as a failed fetch (the
/// source carries on with backoff).
pub(crate) fn run_fetch(
    fetcher: &mut dyn Fetch,
    request: &FetchRequest,
) -> Result<FetchResponse, FetchError> {
    catch_unwind(AssertUnwindSafe(|| fetcher.fetch(request))).unwrap_or_else(|_| {
        Err(FetchError::new(
            FetchErrorKind::Panicked,
            "the fetcher panicked",
        ))
    })
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

impl Source {
    /// A source for `settings`, ringing the scheduler through `post` under
    /// `id`; also returns the state it shares with its handles. Starts no
    /// thread; the first round fetches.
    pub(crate) fn new(settings: Settings, id: u64, post: Post<Msg>) -> (Box<Self>, Arc<Shared>) {
        let epoch = settings.clock.now();
        let shared = Arc::new(Shared {
            current: Swap::new(Arc::new(KeySet::empty())),
            counters: LookupCounters::new(settings.policy.usage_threshold),
            miss_gate: AtomicBool::new(false),
            negative: Swap::new(Arc::new(Vec::new())),
            missed_kid: Mutex::new(None),
            pending: AtomicU8::new(0),
            rounds: Mutex::new(Rounds::default()),
            round_done: Condvar::new(),
            board: Mutex::new(Board {
                name: settings.name.clone(),
                ..Board::default()
            }),
            bell: Doorbell::new(id, post),
            clock: settings.clock,
            expired_wait: settings.expired_wait,
            refresh_timeout: settings.refresh_timeout,
            max_kid_len: settings.limits.key.max_kid_len,
            epoch,
        });
        let manual_time = shared.clock.on_advance(advance_hook(&shared));
        let source = Box::new(Source {
            id,
            shared: Arc::clone(&shared),
            fetcher: Some(settings.fetcher),
            policy: Policy::new(settings.policy, settings.seed),
            limits: settings.limits,
            negative_ttl: settings.negative_ttl,
            on_refresh: settings.on_refresh,
            observer: crate::observe::Observer::new(settings.name, settings.metrics_interval),
            manual_time,
            validators: Validators::default(),
            negative: Negative { kids: Vec::new() },
            triggers: Triggers::default(),
            wake_at: None,
            flight: None,
        });
        (source, shared)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Whether its fetcher is out.
    pub(crate) fn fetching(&self) -> bool {
        self.flight.is_some()
    }

    /// One round: steps 1 to 3 (and 5 when there is nothing to fetch).
    /// The rounds lock is held from taking the demands until the round is
    /// finished or its fetch started (the waiter invariant of `shared.rs`).
    pub(crate) fn round(&mut self) -> Next {
        let shared = Arc::clone(&self.shared);
        // Awake: readers check the deadline themselves until we park
        // again; clearing CLOCK_MOVED before reading the clock means a
        // later jump is seen by `park`.
        let _ = shared
            .current
            .load()
            .update_state(|v| Some((v & !CLOCK_MOVED) | UNWATCHED));
        let now = shared.clock.now();
        let rounds = shared.rounds.lock();
        let Some((bits, missed)) = self.take_demands(now) else {
            return Next::Stop;
        };
        let plan = self.plan(now);
        match plan.fetch {
            Some(cause) => self.start_fetch(rounds, now, cause, missed),
            None => {
                self.finish_round(rounds, &plan, bits);
                self.park()
            }
        }
    }

    /// Step 1 (rounds lock held): take the demand bits and tell the policy.
    /// `None`: told to stop.
    fn take_demands(&mut self, now: Instant) -> Option<(u8, Option<Box<str>>)> {
        let shared = &*self.shared;
        // AcqRel: Acquire pairs with demanders' Release in `Shared::ring`.
        let bits = shared.pending.swap(0, Ordering::AcqRel);
        if bits & STOP != 0 {
            return None;
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
        Some((bits, missed))
    }

    /// Step 2: prune the negative cache, ask the policy, apply its plan.
    fn plan(&mut self, now: Instant) -> Plan {
        if self.negative.prune(now) {
            self.negative.publish(&self.shared);
        }
        let plan = self.policy.poll(now);
        self.apply(&plan);
        plan
    }

    /// Step 3 without a fetch: the round is done; waiters wake.
    fn finish_round(&mut self, mut rounds: MutexGuard<'_, Rounds>, plan: &Plan, bits: u8) {
        let shared = Arc::clone(&self.shared);
        if bits & USAGE != 0 {
            shared.board.lock().deferred += 1;
        }
        self.update_board(RefresherState::Idle);
        rounds.done += 1;
        rounds.miss_fetch_at = plan.miss_fetch_at;
        shared.round_done.notify_all();
        drop(rounds);
        self.observer.after_round(&shared);
        self.wake_at = earliest(plan.wake_at, self.negative.next_expiry());
    }

    /// Step 3: start the fetch; close the unknown-kid gate before waiters
    /// can look at it again (they take the rounds lock to close it too).
    fn start_fetch(
        &mut self,
        mut rounds: MutexGuard<'_, Rounds>,
        now: Instant,
        cause: RefreshCause,
        missed: Option<Box<str>>,
    ) -> Next {
        let shared = Arc::clone(&self.shared);
        rounds.fetching = true;
        rounds.started += 1;
        // Release: pairs with the readers' Acquire load / swap.
        shared.miss_gate.store(false, Ordering::Release);
        self.triggers.gate_open = false;
        drop(rounds);
        self.policy.on_fetch_start(now);
        {
            let mut board = shared.board.lock();
            board.state = RefresherState::Fetching;
            board.refreshes.count(cause);
        }
        let Some(fetcher) = self.fetcher.take() else {
            // The fetcher is out only while a flight is recorded, and the
            // scheduler runs no round then.
            unreachable!("a round ran while the fetcher was out");
        };
        log::debug!(
            target: crate::observe::REFRESH,
            "source={} refreshing ({cause:?}) from {}",
            self.observer.name(),
            fetcher.describe()
        );
        self.flight = Some(Flight {
            started_at: now,
            cause,
            missed,
            previous: shared.current.load_full(),
        });
        let request = FetchRequest {
            validators: self.validators.clone(),
            max_bytes: self.limits.max_bytes,
            cause,
        };
        Next::Fetch(fetcher, request)
    }

    /// Step 4: the fetcher is back with `response`: publish, tell the
    /// policy, run the hooks, finish the round; then park (step 5), or
    /// round again at once if the plan already wants another fetch.
    pub(crate) fn finish_fetch(
        &mut self,
        fetcher: Box<dyn Fetch>,
        response: Result<FetchResponse, FetchError>,
    ) -> Next {
        self.fetcher = Some(fetcher);
        let Some(Flight {
            started_at: now,
            cause,
            missed,
            previous,
        }) = self.flight.take()
        else {
            // A stale result (no flight): nothing to publish.
            return self.park();
        };
        let shared = Arc::clone(&self.shared);
        let result = response.map_err(Error::Fetch).and_then(|r| self.publish(r));
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
            self.triggers.usage_base = shared.counters.usage_total();
            self.triggers.usage_arm = None;
        }
        if let (Ok(_), Some(kid)) = (&result, missed) {
            // Negative only if absent from a set that left the origin
            // after the kid was asked for (an older shared snapshot
            // says nothing about a key published since).
            if success_at >= now && shared.current.load().get(&kid).is_none() {
                self.negative.add(kid, after(done_at, self.negative_ttl));
                self.negative.publish(&shared);
            }
        }
        let plan = self.policy.poll(done_at);
        self.apply(&plan);
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
        self.wake_at = earliest(plan.wake_at, self.negative.next_expiry());
        // Decide again at once if the plan already wants another fetch
        // (say, a zero-delay retry); otherwise sleep until its deadline.
        if plan.fetch.is_some() {
            Next::Again
        } else {
            self.park()
        }
    }

    /// Step 5: marks the current set watched and says when to wake, in
    /// real time; `Again` when the clock moved since the round planned (do
    /// not park on a stale plan).
    fn park(&self) -> Next {
        let parked = self
            .shared
            .current
            .load()
            .update_state(|v| (v & CLOCK_MOVED == 0).then_some(v & !UNWATCHED))
            .is_ok();
        if !parked {
            return Next::Again;
        }
        if self.manual_time {
            // Every clock jump rings: no timer to set.
            return Next::Park(self.observer.wake_cap(None));
        }
        // The plan's instants are on the injected clock; sleep for the
        // distance to them in real time.
        let now = self.shared.clock.now();
        let real = self
            .wake_at
            .map(|w| after(Instant::now(), w.saturating_duration_since(now)));
        Next::Park(self.observer.wake_cap(real))
    }

    /// Stopped by `unregister`: the set fails closed at once (readers see
    /// it expired), and waiters are told `Error::Stopped`.
    pub(crate) fn retire(&self) {
        let current = self.shared.current.load();
        current.set_deadline(0);
        let _ = current.update_state(|_| Some(Freshness::Expired as u8 | UNWATCHED));
        drop(current);
        self.shared.stop(None);
    }

    /// Stopped with the scheduler (the registry is gone) or after a panic
    /// (`reason`): readers enforce the set's deadline from now on.
    pub(crate) fn stop(&self, reason: Option<String>) {
        self.shared.stop(reason);
    }

    /// Parses and publishes what the fetcher brought. `Ok` carries the
    /// lifetime hint and the document's age.
    fn publish(&mut self, response: FetchResponse) -> Result<(Option<Duration>, Duration), Error> {
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
                    self.validators = new_validators;
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
                self.validators = new_validators;
                Ok((max_age, age))
            }
        }
    }

    /// Publishes what the plan says about the current set (freshness and
    /// hard-expiry deadline) and the triggers. The set stays unwatched: the
    /// refresher is awake until it parks.
    fn apply(&mut self, plan: &Plan) {
        let triggers = &mut self.triggers;
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
