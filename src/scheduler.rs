//! The one scheduling thread: a table of sources, a deadline heap over
//! them, and a bounded pool of fetch threads.
//!
//! The thread sleeps on its inbox until the earliest deadline in the heap
//! or a message: a source rung ([`Msg::Demand`]), a source added, a fetch
//! come back, shutdown. For each source it runs the steps of `source.rs`
//! and follows what they say:
//!
//! | step says | the scheduler |
//! |---|---|
//! | `Park(at)` | pushes `(at, id, epoch)` on the heap (nothing with no `at`: a manual clock rings) |
//! | `Fetch` | hands the fetcher and its request to the pool and goes on; with no pool, runs it inline |
//! | `Again` | runs another round for it at once |
//! | `Stop` | drops it from the table; its set fails closed |
//!
//! The heap uses lazy deletion: rescheduling bumps the source's epoch and
//! pushes a new entry (O(log n)); an entry whose epoch is not the source's
//! current one is discarded when it reaches the top. A source whose
//! fetcher hangs (until its own timeout) holds one pool thread, never the
//! scheduler: the others keep their schedule.
//!
//! A panic in one source's step stops that source alone
//! (`Status::stop_reason` says why); fetcher panics are failed fetches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::error::{Error, FetchError, FetchErrorKind};
use crate::fetch::{Fetch, FetchRequest};
use crate::source::{panic_message, run_fetch, Keep, Msg, Next, Source};
use crate::sync::{mailbox, spawn, Arc, Empty, Inbox, JoinHandle, Post, ThreadSet};

/// A fetch handed to the pool: the fetcher travels with it and comes back
/// with the response.
struct Job {
    id: u64,
    fetcher: Box<dyn Fetch>,
    request: FetchRequest,
}

struct Slot {
    source: Box<Source>,
    /// Bumped on every reschedule: heap entries with another epoch are stale.
    epoch: u64,
    /// The real-time wake-up last pushed for it.
    wake: Option<Instant>,
}

/// The scheduler's threads: dropping it stops the scheduler (every source
/// stops; waiters are told `Error::Stopped`) and joins the threads, the
/// pool's after their fetch in flight.
pub(crate) struct Crew {
    post: Post<Msg>,
    scheduler: Option<JoinHandle<()>>,
    pool: Vec<JoinHandle<()>>,
    threads: Arc<ThreadSet>,
}

impl Crew {
    /// Starts the scheduler thread, named `name`, and `pool` fetch threads
    /// (none: fetches run on the scheduler thread). Returns the crew and
    /// the scheduler's inbox address.
    pub(crate) fn start(name: &str, pool: usize) -> Result<(Self, Post<Msg>), Error> {
        let (post, inbox) = mailbox();
        let cannot_start = |e: std::io::Error| {
            Error::Fetch(FetchError::new(
                FetchErrorKind::Io,
                format!("cannot start the refresher thread: {e}"),
            ))
        };
        let mut workers = Vec::with_capacity(pool);
        let jobs = if pool > 0 {
            let (jobs, queue) = mailbox::<Job>();
            for i in 0..pool {
                let queue = queue.clone();
                let post = post.clone();
                match spawn(format!("{name}-fetch-{i}"), move || {
                    fetch_worker(&queue, &post)
                }) {
                    Ok(handle) => workers.push(handle),
                    Err(e) => {
                        drop(jobs);
                        for handle in workers {
                            let _ = handle.join();
                        }
                        return Err(cannot_start(e));
                    }
                }
            }
            Some(jobs)
        } else {
            None
        };
        let scheduler = Scheduler {
            inbox,
            post: post.clone(),
            jobs,
            slots: HashMap::new(),
            heap: BinaryHeap::new(),
        };
        let handle = match spawn(name.to_owned(), move || scheduler.run()) {
            Ok(handle) => handle,
            Err(e) => {
                // The scheduler (and the job queue with it) is gone: the
                // workers exit.
                for handle in workers {
                    let _ = handle.join();
                }
                return Err(cannot_start(e));
            }
        };
        let mut all: Vec<&JoinHandle<()>> = workers.iter().collect();
        all.push(&handle);
        let threads = Arc::new(ThreadSet::of(&all));
        Ok((
            Self {
                post: post.clone(),
                scheduler: Some(handle),
                pool: workers,
                threads,
            },
            post,
        ))
    }

    /// Which threads are this crew's (for handles that do not own it).
    pub(crate) fn threads(&self) -> Arc<ThreadSet> {
        Arc::clone(&self.threads)
    }
}

impl Keep for Crew {
    fn runs_here(&self) -> bool {
        self.threads.has_current()
    }
}

impl Keep for ThreadSet {
    fn runs_here(&self) -> bool {
        self.has_current()
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        let _ = self.post.send(Msg::Shutdown);
        // A handle dropped on one of our own threads (by a fetcher or a
        // hook) must not join itself: that thread exits on its own.
        if let Some(handle) = self.scheduler.take() {
            if !crate::sync::is_current(&handle) {
                let _ = handle.join();
            }
        }
        for handle in self.pool.drain(..) {
            if !crate::sync::is_current(&handle) {
                let _ = handle.join();
            }
        }
    }
}

/// A pool thread: runs fetches until the job queue closes.
fn fetch_worker(queue: &Inbox<Job>, post: &Post<Msg>) {
    while let Ok(Job {
        id,
        mut fetcher,
        request,
    }) = queue.recv(None)
    {
        let response = run_fetch(&mut *fetcher, &request);
        if !post.send(Msg::Fetched {
            id,
            fetcher,
            response,
        }) {
            break;
        }
    }
}

struct Scheduler {
    inbox: Inbox<Msg>,
    /// Our own address: a source rung while its fetch was out is put back
    /// in line after it parks.
    post: Post<Msg>,
    /// The pool's job queue; `None`: fetch inline.
    jobs: Option<Post<Job>>,
    slots: HashMap<u64, Slot>,
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
}

impl Scheduler {
    fn run(mut self) {
        loop {
            self.run_due();
            let next = self.next_deadline();
            match self.inbox.recv(next) {
                Ok(Msg::Shutdown) | Err(Empty::Closed) => break,
                Ok(msg) => self.handle(msg),
                Err(Empty::Timeout) => {}
            }
        }
        // `Drop` stops the sources left (also when unwinding).
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Demand(id) => {
                let Some(slot) = self.slots.get(&id) else {
                    return;
                };
                // While the fetch is out the ring stays set; the source
                // looks at it when it parks.
                if slot.source.fetching() || !slot.source.shared().bell.take() {
                    return;
                }
                self.turn(id, Source::round);
            }
            Msg::Add(source) => {
                let id = source.id;
                let _ = source.shared().bell.take();
                self.slots.insert(
                    id,
                    Slot {
                        source,
                        epoch: 0,
                        wake: None,
                    },
                );
                self.turn(id, Source::round);
            }
            Msg::Fetched {
                id,
                fetcher,
                response,
            } => {
                if self.slots.contains_key(&id) {
                    self.turn(id, move |s: &mut Source| s.finish_fetch(fetcher, response));
                }
            }
            Msg::Shutdown => {}
        }
    }

    /// Runs `step` for source `id`, then follows what it says until the
    /// source is parked, out on a fetch, or stopped.
    fn turn(&mut self, id: u64, step: impl FnOnce(&mut Source) -> Next) {
        let mut next = self.guarded(id, step);
        loop {
            match next {
                None => return,
                Some(Next::Again) => next = self.guarded(id, Source::round),
                Some(Next::Park(at)) => {
                    self.schedule(id, at);
                    if let Some(slot) = self.slots.get(&id) {
                        // Rung while its fetch was out (that message was
                        // passed over): get in line again, behind the others.
                        if slot.source.shared().bell.rung() {
                            let _ = self.post.send(Msg::Demand(id));
                        }
                    }
                    return;
                }
                Some(Next::Fetch(mut fetcher, request)) => match &self.jobs {
                    Some(jobs) => {
                        let _ = jobs.send(Job {
                            id,
                            fetcher,
                            request,
                        });
                        return;
                    }
                    None => {
                        let response = run_fetch(&mut *fetcher, &request);
                        next = self.guarded(id, move |s| s.finish_fetch(fetcher, response));
                    }
                },
                Some(Next::Stop) => {
                    if let Some(slot) = self.slots.remove(&id) {
                        slot.source.retire();
                    }
                    return;
                }
            }
        }
    }

    /// Runs `step` on source `id`; a panic stops that source alone.
    fn guarded(&mut self, id: u64, step: impl FnOnce(&mut Source) -> Next) -> Option<Next> {
        let slot = self.slots.get_mut(&id)?;
        match catch_unwind(AssertUnwindSafe(|| step(&mut slot.source))) {
            Ok(next) => Some(next),
            Err(payload) => {
                let message = format!("the refresher panicked: {}", panic_message(&*payload));
                log::error!("jwks-sync: {message}; no more refreshes, lookups fail closed at the set's deadline");
                if let Some(slot) = self.slots.remove(&id) {
                    slot.source.stop(Some(message));
                }
                None
            }
        }
    }

    /// Parks source `id` until `at` (real time; `None`: until rung).
    fn schedule(&mut self, id: u64, at: Option<Instant>) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        slot.epoch += 1;
        slot.wake = at;
        if let Some(at) = at {
            self.heap.push(Reverse((at, id, slot.epoch)));
        }
        // Lazy deletion leaves stale entries; rebuild once they dominate.
        if self.heap.len() > 2 * self.slots.len() + 1024 {
            self.heap = self
                .slots
                .iter()
                .filter_map(|(id, s)| s.wake.map(|at| Reverse((at, *id, s.epoch))))
                .collect();
        }
    }

    /// Whether a heap entry is the source's current wake-up.
    fn live(&self, id: u64, epoch: u64) -> bool {
        self.slots
            .get(&id)
            .is_some_and(|s| s.epoch == epoch && !s.source.fetching())
    }

    /// Runs a round for every source whose wake-up has come.
    fn run_due(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(&Reverse((at, id, epoch))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.live(id, epoch) {
                due.push(id);
            }
        }
        for id in due {
            if let Some(slot) = self.slots.get(&id) {
                // Its ring, if any, is served by this round.
                let _ = slot.source.shared().bell.take();
                self.turn(id, Source::round);
            }
        }
    }

    /// The earliest live wake-up (stale entries on top are dropped).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id, epoch))) = self.heap.peek() {
            if self.live(id, epoch) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for (_, slot) in self.slots.drain() {
            slot.source.stop(None);
        }
    }
}
