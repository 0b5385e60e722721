//! The one place that names `std::sync`, `std::thread`, `arc_swap`,
//! `crossbeam_channel` or `loom`.
//!
//! Everything concurrent in the crate goes through these names, so the loom
//! models in `loom-tests/` check the very same protocol code: compiled with
//! `--cfg jwks_sync_loom`, the [`Swap`] becomes a loom-visible `RwLock<Arc<T>>`,
//! the mailbox a loom `Mutex` + `Condvar` queue, and locks and atomics loom's own.
//! Loom cannot model time, so under loom every deadline wait blocks as if the
//! deadline were never reached: models are driven by demands, never by timers.

pub(crate) use imp::*;

#[cfg(not(jwks_sync_loom))]
mod imp {
    use std::cell::Cell;
    use std::time::Instant;

    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread::JoinHandle;

    /// Starts a named OS thread.
    pub(crate) fn spawn<F>(name: String, f: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        std::thread::Builder::new().name(name).spawn(f)
    }

    /// Whether `handle` is the calling thread (joining it would deadlock).
    pub(crate) fn is_current(handle: &JoinHandle<()>) -> bool {
        handle.thread().id() == std::thread::current().id()
    }

    /// A mutex that does not poison: every critical section in this crate
    /// leaves its data consistent before it can panic.
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(parking_lot::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable paired with [`Mutex`].
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(parking_lot::Condvar::new())
        }
        /// Waits for a notification or `deadline`; returns the guard and
        /// whether the deadline passed.
        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = self.0.wait_until(&mut guard, deadline).timed_out();
            (guard, timed_out)
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// An atomically swappable `Arc<T>`: readers load without locking.
    ///
    /// Besides the value it carries what a per-thread cached copy needs
    /// (see `local.rs`): an identity unique in the process and a publish
    /// sequence, bumped after every store.
    pub(crate) struct Swap<T> {
        value: arc_swap::ArcSwap<T>,
        seq: PublishSeq,
    }
    /// What [`Swap::load`] hands out: in the common case no reference count
    /// is touched (arc-swap's debt slots).
    pub(crate) type Guard<T> = arc_swap::Guard<Arc<T>>;

    impl<T> Swap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self {
                value: arc_swap::ArcSwap::new(value),
                seq: PublishSeq::new(),
            }
        }
        /// Lock-free; wait-free unless this thread already holds several guards.
        #[inline]
        pub(crate) fn load(&self) -> Guard<T> {
            self.value.load()
        }
        pub(crate) fn load_full(&self) -> Arc<T> {
            self.value.load_full()
        }
        /// Publishes `value`; readers see either the old or the new value
        /// whole. The sequence is bumped after the store, so a reader that
        /// sees the new sequence and then loads sees this value or a newer one.
        pub(crate) fn store(&self, value: Arc<T>) {
            self.value.store(value);
            self.seq.bump();
        }
        /// The publish sequence and identity.
        #[inline]
        pub(crate) fn seq(&self) -> &PublishSeq {
            &self.seq
        }
    }

    /// Source of `PublishSeq` identities: never reused, never 0.
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// A [`Swap`]'s identity and publish sequence, alone on a cache line
    /// (readers load it on every lookup; it changes once per publish).
    #[repr(align(128))]
    pub(crate) struct PublishSeq {
        id: u64,
        seq: AtomicU64,
    }

    impl PublishSeq {
        fn new() -> Self {
            // Relaxed: only uniqueness matters, which the read-modify-write
            // gives whatever the ordering.
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            Self {
                id,
                seq: AtomicU64::new(0),
            }
        }
        /// Unique among every `Swap` this process ever created.
        #[inline]
        pub(crate) fn id(&self) -> u64 {
            self.id
        }
        /// The sequence now: one plain load (no locked instruction).
        #[inline]
        pub(crate) fn get(&self) -> u64 {
            // Acquire: pairs with the Release in `bump`, so the store of the
            // value that preceded the bump is visible to a later load.
            self.seq.load(Ordering::Acquire)
        }
        fn bump(&self) {
            // Release: pairs with the Acquire in `get`. One writer (the
            // refresher) at a time, but a read-modify-write keeps it exact
            // if that ever changes.
            self.seq.fetch_add(1, Ordering::Release);
        }
    }

    /// Per-thread storage (const-initialised where the type allows).
    pub(crate) use std::thread_local;

    /// The sending half of a mailbox: an unbounded, FIFO channel that never
    /// blocks the sender (the scheduler's inbox, the fetch pool's job queue).
    pub(crate) struct Post<T>(crossbeam_channel::Sender<T>);
    /// The receiving half of a mailbox.
    pub(crate) struct Inbox<T>(crossbeam_channel::Receiver<T>);

    impl<T> Clone for Post<T> {
        fn clone(&self) -> Self {
            Self(self.0.clone())
        }
    }

    impl<T> Clone for Inbox<T> {
        /// Another receiver on the same queue: each message goes to one of them.
        fn clone(&self) -> Self {
            Self(self.0.clone())
        }
    }

    /// A new mailbox.
    pub(crate) fn mailbox<T>() -> (Post<T>, Inbox<T>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        (Post(tx), Inbox(rx))
    }

    impl<T> Post<T> {
        /// Never blocks; `false` when the receiver is gone.
        pub(crate) fn send(&self, value: T) -> bool {
            self.0.send(value).is_ok()
        }
    }

    /// Why [`Inbox::recv`] returned nothing.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Empty {
        /// The deadline passed.
        Timeout,
        /// Every sender is gone.
        Closed,
    }

    impl<T> Inbox<T> {
        /// Blocks until a message comes or until `deadline` (forever when `None`).
        pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, Empty> {
            match deadline {
                Some(d) => self.0.recv_deadline(d).map_err(|e| match e {
                    crossbeam_channel::RecvTimeoutError::Timeout => Empty::Timeout,
                    crossbeam_channel::RecvTimeoutError::Disconnected => Empty::Closed,
                }),
                None => self.0.recv().map_err(|_| Empty::Closed),
            }
        }
    }

    /// The threads of one scheduler and its fetch pool, to tell whether the
    /// caller is one of them (waiting for the scheduler there would stall it).
    #[derive(Debug, Default)]
    pub(crate) struct ThreadSet(Vec<std::thread::ThreadId>);

    impl ThreadSet {
        pub(crate) fn of(handles: &[&JoinHandle<()>]) -> Self {
            Self(handles.iter().map(|h| h.thread().id()).collect())
        }
        /// Whether the calling thread is one of them.
        pub(crate) fn has_current(&self) -> bool {
            let me = std::thread::current().id();
            self.0.contains(&me)
        }
    }

    /// A number no other call in this process returns.
    pub(crate) fn unique_id() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        // Relaxed: only hands out distinct numbers; nothing is published with it.
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// Stripe numbers of threads that have exited, for reuse: so a process
    /// that starts and ends threads all day keeps its numbers small.
    static FREE_STRIPES: parking_lot::Mutex<Vec<usize>> = parking_lot::Mutex::new(Vec::new());

    /// A thread's stripe number, handed back when the thread exits.
    struct StripeSlot(usize);

    impl StripeSlot {
        fn acquire() -> Self {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let reused = FREE_STRIPES.lock().pop();
            // Relaxed: only hands out distinct numbers; nothing is published with it.
            Self(reused.unwrap_or_else(|| NEXT.fetch_add(1, Ordering::Relaxed)))
        }
    }

    impl Drop for StripeSlot {
        fn drop(&mut self) {
            // From here on this thread counts on a shared stripe: its number
            // may go to another thread. (`INDEX` has no destructor, so it is
            // still there during teardown.)
            INDEX.set(SHARED);
            // The mutex orders the exiting thread's last counter store before
            // the next owner's first load of the same stripe.
            FREE_STRIPES.lock().push(self.0);
        }
    }

    /// `INDEX` before the thread first asks.
    const UNSET: usize = usize::MAX - 1;
    /// Any number past the owned stripes: share one (`fetch_add`).
    const SHARED: usize = usize::MAX;

    thread_local! {
        /// The hot copy of the number: const-initialised and without a
        /// destructor, so reading it is one thread-local load, no lazy-init
        /// or liveness check (measured: about 1 ns of a 17 ns lookup).
        static INDEX: Cell<usize> = const { Cell::new(UNSET) };
        /// The number's owner, which hands it back when the thread exits.
        static SLOT: StripeSlot = StripeSlot::acquire();
    }

    /// A number distinct among live threads (a recycled one if a thread has
    /// exited, else the next), used to give threads their own counter
    /// stripes.
    #[inline]
    pub(crate) fn stripe_index() -> usize {
        match INDEX.get() {
            UNSET => first_stripe_index(),
            index => index,
        }
    }

    #[cold]
    #[inline(never)]
    fn first_stripe_index() -> usize {
        // During thread teardown the slot may be gone: share a stripe then.
        let index = SLOT.try_with(|s| s.0).unwrap_or(SHARED);
        INDEX.set(index);
        index
    }
}

#[cfg(jwks_sync_loom)]
mod imp {
    use std::time::Instant;

    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread::JoinHandle;

    pub(crate) fn spawn<F>(_name: String, f: F) -> std::io::Result<JoinHandle<()>>
    where
        F: FnOnce() + Send + 'static,
    {
        Ok(loom::thread::spawn(f))
    }

    /// Models never drop the last handle on the refresher thread.
    pub(crate) fn is_current(_handle: &JoinHandle<()>) -> bool {
        false
    }

    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // Poisoning only follows a panic, which already fails the model.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }
        /// Time does not pass in a model: waits for a notification only.
        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            _deadline: Instant,
        ) -> (MutexGuard<'a, T>, bool) {
            let guard = self.0.wait(guard).unwrap_or_else(|e| e.into_inner());
            (guard, false)
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Loom stand-in for `ArcSwap`: a lock loom can see, and the same
    /// publish sequence as the real one (loom checks its orderings).
    pub(crate) struct Swap<T> {
        value: loom::sync::RwLock<Arc<T>>,
        seq: PublishSeq,
    }
    pub(crate) type Guard<T> = Arc<T>;

    impl<T> Swap<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self {
                value: loom::sync::RwLock::new(value),
                seq: PublishSeq::new(),
            }
        }
        pub(crate) fn load(&self) -> Guard<T> {
            self.load_full()
        }
        pub(crate) fn load_full(&self) -> Arc<T> {
            Arc::clone(&self.value.read().unwrap_or_else(|e| e.into_inner()))
        }
        pub(crate) fn store(&self, value: Arc<T>) {
            *self.value.write().unwrap_or_else(|e| e.into_inner()) = value;
            self.seq.bump();
        }
        pub(crate) fn seq(&self) -> &PublishSeq {
            &self.seq
        }
    }

    /// Identities outlive models (and must never repeat): a std atomic,
    /// outside what loom explores.
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

    pub(crate) struct PublishSeq {
        id: u64,
        seq: AtomicU64,
    }

    impl PublishSeq {
        fn new() -> Self {
            // Relaxed: uniqueness only.
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Self {
                id,
                seq: AtomicU64::new(0),
            }
        }
        pub(crate) fn id(&self) -> u64 {
            self.id
        }
        pub(crate) fn get(&self) -> u64 {
            // Acquire: pairs with the Release in `bump`.
            self.seq.load(Ordering::Acquire)
        }
        fn bump(&self) {
            // Release: pairs with the Acquire in `get`.
            self.seq.fetch_add(1, Ordering::Release);
        }
    }

    /// Loom's per-thread storage (no const initialiser).
    pub(crate) use loom::thread_local;

    struct BoxState<T> {
        queue: loom::sync::Mutex<(std::collections::VecDeque<T>, usize)>,
        cond: loom::sync::Condvar,
    }

    /// Loom stand-in for the crossbeam mailbox: a queue under a loom mutex.
    pub(crate) struct Post<T>(Arc<BoxState<T>>);
    pub(crate) struct Inbox<T>(Arc<BoxState<T>>);

    impl<T> Clone for Post<T> {
        fn clone(&self) -> Self {
            self.0.queue.lock().unwrap_or_else(|e| e.into_inner()).1 += 1;
            Self(Arc::clone(&self.0))
        }
    }

    impl<T> Drop for Post<T> {
        fn drop(&mut self) {
            self.0.queue.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
            self.0.cond.notify_all();
        }
    }

    impl<T> Clone for Inbox<T> {
        fn clone(&self) -> Self {
            Self(Arc::clone(&self.0))
        }
    }

    pub(crate) fn mailbox<T>() -> (Post<T>, Inbox<T>) {
        let state = Arc::new(BoxState {
            queue: loom::sync::Mutex::new((std::collections::VecDeque::new(), 1)),
            cond: loom::sync::Condvar::new(),
        });
        (Post(Arc::clone(&state)), Inbox(state))
    }

    impl<T> Post<T> {
        pub(crate) fn send(&self, value: T) -> bool {
            self.0
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .0
                .push_back(value);
            self.0.cond.notify_all();
            true
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Empty {
        Timeout,
        Closed,
    }

    impl<T> Inbox<T> {
        /// Blocks until a message comes; the deadline is ignored (time does
        /// not pass in a model).
        pub(crate) fn recv(&self, _deadline: Option<Instant>) -> Result<T, Empty> {
            let mut queue = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(value) = queue.0.pop_front() {
                    return Ok(value);
                }
                if queue.1 == 0 {
                    return Err(Empty::Closed);
                }
                queue = self.0.cond.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Models never run user code on the scheduler's threads.
    #[derive(Debug, Default)]
    pub(crate) struct ThreadSet;

    impl ThreadSet {
        pub(crate) fn of(_handles: &[&JoinHandle<()>]) -> Self {
            Self
        }
        pub(crate) fn has_current(&self) -> bool {
            false
        }
    }

    /// Models build no registries: any number will do.
    pub(crate) fn unique_id() -> u64 {
        1
    }

    /// In a model every thread uses the shared, unowned stripe: the models
    /// exercise the `fetch_add` path.
    pub(crate) fn stripe_index() -> usize {
        usize::MAX
    }
}

#[cfg(all(test, not(jwks_sync_loom)))]
mod tests {
    use super::stripe_index;
    use std::sync::{Arc, Barrier};

    #[test]
    fn live_threads_hold_distinct_stripe_numbers() {
        let n = 16;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let index = stripe_index();
                    // All alive at once: no number can have been recycled.
                    barrier.wait();
                    assert_eq!(stripe_index(), index, "stable within a thread");
                    index
                })
            })
            .collect();
        let mut seen: Vec<usize> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "{seen:?}");
    }

    #[test]
    fn numbers_of_exited_threads_are_reused() {
        // 500 threads one after another: without reuse the numbers would
        // climb past the 64 owned stripes; with it they stay as small as the
        // number of threads alive at once (this one, the test harness's and
        // those of tests running beside it).
        let max = (0..500)
            .map(|_| std::thread::spawn(stripe_index).join().expect("thread"))
            .max();
        assert!(max.is_some_and(|m| m < 64), "{max:?}");
    }
}
