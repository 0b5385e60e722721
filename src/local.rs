//! Per-thread cached snapshots of published key sets: the read path below
//! an `ArcSwap::load`.
//!
//! An `ArcSwap::load` takes and pays back a debt slot: two locked
//! instructions per lookup. Here each thread keeps, per cache, the
//! `Arc<KeySet>` it last loaded and the publish sequence it loaded it at
//! (the model is `arc_swap::cache::Cache`). A lookup loads the published
//! sequence (one plain atomic load) and, while it is unchanged, uses the
//! thread's own `Arc` without touching any shared reference count. Only
//! after a publish does the thread take the slow path once: load the new
//! set (`load_full`) and keep it.
//!
//! | step | publisher (`Swap::store`) | reader |
//! |---|---|---|
//! | 1 | stores the new `Arc` | loads the sequence `s` (Acquire) |
//! | 2 | bumps the sequence (Release) | `s` = its slot's: uses its `Arc`; else loads the value and keeps (`s`, value) |
//!
//! A reader that sees the bumped sequence loads the new set or a newer one
//! (Release/Acquire on the sequence orders the store before it); a reader
//! that still sees the old sequence serves the old set, as an `ArcSwap`
//! load just before the store would. A renewed set (a `304`) is the same
//! `Arc`, and its freshness byte and deadline live in the set, so a cached
//! copy sees renewals and expiry exactly as a fresh load does.
//!
//! ## Per-thread storage
//!
//! Every thread has [`SLOTS`] slots; a cache (a `Swap`, identified by a
//! process-unique id) uses slot `id % SLOTS`, and the id stored in the slot
//! tells whether the slot is this cache's. So any number of caches work in
//! one process (two caches sharing a slot take turns, each turn a slow
//! path), and threads may come and go (a slot's set is released when its
//! thread exits).
//!
//! ## Memory
//!
//! A thread holds at most one set per slot: [`SLOTS`] `Arc<KeySet>`s
//! (16 × 24 bytes of slots per thread). A set replaced by a refresh stays
//! alive until every thread that cached it looks that cache up again (or
//! another cache takes the slot, or the thread exits): a thread that last
//! used a cache before a refresh keeps one old set of that cache alive.
//! Dropping every handle of a cache does not reach into other threads: each
//! thread that looked it up keeps its last set until the slot is reused or
//! the thread exits.
//!
//! A lookup made from inside another lookup's closure (a verifier checking
//! a second cache, say) finds the slots borrowed and takes the uncached
//! path: correct, just not faster than `load_full`.

use std::cell::RefCell;

use crate::keyset::KeySet;
use crate::sync::{thread_local, Arc, Swap};

/// Slots per thread.
pub(crate) const SLOTS: usize = 16;

/// One cache's copy in one thread.
struct Slot {
    /// The `Swap`'s id (0: empty; ids start at 1).
    id: u64,
    /// The publish sequence `set` was loaded at (or after).
    seq: u64,
    set: Option<Arc<KeySet>>,
}

impl Slot {
    const EMPTY: Slot = Slot {
        id: 0,
        seq: 0,
        set: None,
    };
}

type Slots = RefCell<[Slot; SLOTS]>;

#[cfg(not(jwks_sync_loom))]
thread_local! {
    static CACHED: Slots = const { RefCell::new([Slot::EMPTY; SLOTS]) };
}

#[cfg(jwks_sync_loom)]
thread_local! {
    static CACHED: Slots = RefCell::new([Slot::EMPTY; SLOTS]);
}

#[inline]
fn slot_of(id: u64) -> usize {
    // SLOTS is a power of two: the low bits of the id.
    (id % SLOTS as u64) as usize
}

/// Runs `f` on the set published in `swap`, from this thread's cached copy
/// when no publish happened since it was taken: one plain atomic load, no
/// shared write, no allocation. Never blocks.
#[inline]
pub(crate) fn with_published<R>(swap: &Swap<KeySet>, f: impl FnOnce(&KeySet) -> R) -> R {
    let seq = swap.seq();
    let id = seq.id();
    let now = seq.get();
    let mut f = Some(f);
    let fast = CACHED.try_with(|cell| {
        let slots = cell.try_borrow().ok()?;
        let slot = &slots[slot_of(id)];
        if slot.id != id || slot.seq != now {
            return None;
        }
        let set = slot.set.as_ref()?;
        // `f` runs with the slots borrowed (shared): a lookup nested in it
        // may read them, but not replace the set `f` is looking at.
        f.take().map(|f| f(set))
    });
    if let Ok(Some(r)) = fast {
        return r;
    }
    match f.take() {
        Some(f) => refill(swap, f),
        // The fast path returns `Some` whenever it took `f`.
        None => unreachable!("the cached path consumed the closure without a result"),
    }
}

/// The slow path: a publish happened since this thread's copy (or it has
/// none, or its slot is another cache's, or it is borrowed): loads the set
/// in service and keeps it for the next lookups.
#[cold]
#[inline(never)]
fn refill<R>(swap: &Swap<KeySet>, f: impl FnOnce(&KeySet) -> R) -> R {
    let seq = swap.seq();
    // The sequence first, then the value: the value is at least as new as
    // the sequence recorded with it, so a later equal sequence never vouches
    // for a set older than the one it announced.
    let now = seq.get();
    let set = swap.load_full();
    let old = CACHED
        .try_with(|cell| {
            let mut slots = cell.try_borrow_mut().ok()?;
            let slot = &mut slots[slot_of(seq.id())];
            Some(std::mem::replace(
                slot,
                Slot {
                    id: seq.id(),
                    seq: now,
                    set: Some(Arc::clone(&set)),
                },
            ))
        })
        .ok()
        .flatten();
    // The replaced set is freed (if this was its last holder) outside the
    // borrow.
    drop(old);
    f(&set)
}

/// The cached read path alone, for the loom models (`loom-tests`): one
/// published slot, its publisher and its cached readers, without a
/// refresher thread around them (which would multiply the interleavings
/// loom must explore).
#[cfg(jwks_sync_loom)]
pub mod loom_api {
    use super::{with_published, KeySet};
    use crate::error::KeySetError;
    use crate::keyset::SetLimits;
    use crate::sync::{Arc, Swap};

    /// A published key set, as a cache holds it.
    pub struct Published(Swap<KeySet>);

    impl Published {
        /// Publishes `document` as generation 1.
        pub fn new(document: &[u8]) -> Result<Self, KeySetError> {
            let set = KeySet::parse(document, 1, SetLimits::DEFAULT)?;
            Ok(Self(Swap::new(Arc::new(set))))
        }
        /// Publishes `document` as `generation`, as the refresher does
        /// (store, then bump the sequence).
        pub fn publish(&self, document: &[u8], generation: u64) -> Result<(), KeySetError> {
            let set = KeySet::parse(document, generation, SetLimits::DEFAULT)?;
            self.0.store(Arc::new(set));
            Ok(())
        }
        /// Reads through this thread's cached snapshot: the generation of
        /// the set seen and whether it has `kid`.
        pub fn read(&self, kid: &str) -> (u64, bool) {
            with_published(&self.0, |set| (set.generation(), set.get(kid).is_some()))
        }
    }
}
