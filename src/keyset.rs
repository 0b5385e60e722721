//! An immutable key-set snapshot: kid → key, built once per fetch.
//!
//! Pure parsing, no concurrency except the one freshness byte the refresher
//! flips in place (fresh → due → stale → expired) so that readers learn it
//! from the cache line they already loaded.

use std::collections::HashMap;
use std::fmt;

use crate::error::KeySetError;
use crate::json;
use crate::jwk::{build_key, Key, KeyLimits, Scratch, SkipReason};
use crate::sync::{Arc, AtomicU64, AtomicU8, Ordering};

mod kids;
use kids::KidIndex;

/// Limits on a whole document; set through the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SetLimits {
    pub(crate) max_bytes: usize,
    pub(crate) max_keys: usize,
    pub(crate) key: KeyLimits,
}

impl SetLimits {
    /// The builder's defaults.
    pub(crate) const DEFAULT: SetLimits = SetLimits {
        max_bytes: 256 * 1024,
        max_keys: 100,
        key: KeyLimits { max_kid_len: 256 },
    };
}

/// One entry of a document that was not used, and why.
///
/// `Display` gives one line for humans, the kid escaped with
/// [`printable`](crate::printable): `entry 3 (kid "k\u{202e}1"): ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the document's `keys` array.
    pub index: usize,
    /// The entry's `kid` if it had a string one (at most 64 characters
    /// kept, exactly as published: control and bidi characters included).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}", self.index)?;
        if let Some(kid) = &self.kid {
            write!(f, " (kid \"{}\")", crate::printable(kid))?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// How far past its lifetime the published set is. Stored in the set itself
/// so the reader learns it from memory it already touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Freshness {
    /// Within its lifetime.
    Fresh = 0,
    /// Past its lifetime; a refresh failed or is scheduled: serve as is.
    Stale = 1,
    /// Past its lifetime with background refresh off: the next lookup asks
    /// for a refresh and waits (bounded) for it.
    Due = 2,
    /// Past lifetime + stale-while-error: lookups fail closed.
    Expired = 3,
}

impl Freshness {
    /// Served by the fast path without asking the refresher.
    #[inline]
    pub(crate) fn servable(self) -> bool {
        matches!(self, Freshness::Fresh | Freshness::Stale)
    }

    fn from_u8(v: u8) -> Self {
        match v & FRESHNESS_BITS {
            0 => Freshness::Fresh,
            1 => Freshness::Stale,
            2 => Freshness::Due,
            _ => Freshness::Expired,
        }
    }
}

/// Freshness-byte flag: no refresher is parked watching this set's
/// deadline (it is busy, in a user's hook, or gone), so readers compare the
/// deadline with the clock themselves. The fast path serves only bytes
/// without flags.
pub(crate) const UNWATCHED: u8 = 0x80;
/// Freshness-byte flag: the injected clock moved since the refresher last
/// planned; the refresher must not park on a stale plan.
pub(crate) const CLOCK_MOVED: u8 = 0x40;
const FRESHNESS_BITS: u8 = 0x3f;
/// `KeySet::deadline` when the set has no hard-expiry deadline (yet).
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

/// FxHash (rustc-hash): kids are short and chosen by the identity
/// provider, and the map is never grown from request data, so a fast
/// non-keyed hash is safe here.
type KidHasher = rustc_hash::FxBuildHasher;

type KidMap = HashMap<Box<str>, Arc<Key>, KidHasher>;

/// A parsed, immutable key set as published by the refresher.
pub struct KeySet {
    generation: u64,
    /// Kids stored compactly, apart from the key material (`kids.rs`).
    by_kid: KidIndex,
    keys: Vec<Arc<Key>>,
    skipped: Vec<SkippedKey>,
    freshness: AtomicU8,
    /// The hard-expiry deadline, in nanoseconds of the cache's clock since
    /// its epoch (`NO_DEADLINE`: none); fixed by the refresher when it
    /// publishes or renews the set, enforced by readers.
    deadline: AtomicU64,
}

impl KeySet {
    /// The placeholder published before the first fetch: no keys.
    pub(crate) fn empty() -> Self {
        Self {
            generation: 0,
            by_kid: KidIndex::default(),
            keys: Vec::new(),
            skipped: Vec::new(),
            freshness: AtomicU8::new(Freshness::Fresh as u8),
            deadline: AtomicU64::new(NO_DEADLINE),
        }
    }

    /// Parses a JWKS document (RFC 7517 §5). Unusable entries are skipped and
    /// recorded; the document fails only when it is not JSON, has no `keys`
    /// array, repeats a member outside the entries (at any depth), exceeds
    /// the byte cap, or leaves no usable key. An entry that repeats a
    /// member (at any depth) is skipped as [`SkipReason::RepeatedMember`].
    ///
    /// Several usable entries with one kid: all are kept (up to
    /// [`MAX_KEYS_PER_KID`](Self::MAX_KEYS_PER_KID), later ones are skipped
    /// as [`SkipReason::DuplicateKid`]); the first is the one
    /// [`get`](Self::get) returns, linked to the others.
    pub(crate) fn parse(
        body: &[u8],
        generation: u64,
        limits: SetLimits,
    ) -> Result<Self, KeySetError> {
        Self::parse_entries(body, generation, limits, false)
    }

    fn parse_entries(
        body: &[u8],
        generation: u64,
        limits: SetLimits,
        allow_empty: bool,
    ) -> Result<Self, KeySetError> {
        if body.len() > limits.max_bytes {
            return Err(KeySetError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        let doc = json::jwks_from_slice(body).map_err(|e| {
            KeySetError::NotJson(format!("line {} column {}", e.line(), e.column()))
        })?;
        if let Some(name) = doc.repeated {
            return Err(KeySetError::RepeatedMember(name.chars().take(64).collect()));
        }
        let entries = doc.keys.ok_or(KeySetError::NoKeysArray)?;
        if entries.len() > limits.max_keys && !allow_empty {
            // Rejected whole: publishing the first `max_keys` entries could
            // drop exactly the signing keys.
            return Err(KeySetError::TooManyKeys {
                limit: limits.max_keys,
                entries: entries.len(),
            });
        }
        // Usable keys in document order, and for each kid the positions
        // (in `usable`) of its keys, at most MAX_KEYS_PER_KID.
        let mut usable: Vec<Key> = Vec::new();
        let mut per_kid: HashMap<Box<str>, Vec<usize>, KidHasher> = HashMap::default();
        let mut skipped = Vec::new();
        let mut scratch = Scratch::default();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.kid_str();
            let result = if index >= limits.max_keys {
                Err(SkipReason::TooManyKeys)
            } else if let Some(name) = &entry.repeated {
                Err(SkipReason::RepeatedMember(name.chars().take(64).collect()))
            } else {
                build_key(entry, limits.key, &mut scratch)
            };
            let outcome = result.and_then(|key| {
                if let Some(kid) = key.kid() {
                    let positions = per_kid.entry(Box::from(kid)).or_default();
                    if positions.len() >= Self::MAX_KEYS_PER_KID {
                        return Err(SkipReason::DuplicateKid);
                    }
                    positions.push(usable.len());
                }
                usable.push(key);
                Ok(())
            });
            if let Err(reason) = outcome {
                skipped.push(SkippedKey {
                    index,
                    kid: kid.map(|k| k.chars().take(64).collect()),
                    reason,
                });
            }
        }
        let (by_kid, keys) = link(usable, per_kid);
        if keys.is_empty() && !allow_empty {
            return Err(KeySetError::NoUsableKeys {
                skipped: skipped.len(),
            });
        }
        Ok(Self {
            generation,
            by_kid: KidIndex::build(document_order(&keys, &by_kid)),
            keys,
            skipped,
            freshness: AtomicU8::new(Freshness::Fresh as u8),
            deadline: AtomicU64::new(NO_DEADLINE),
        })
    }

    /// Parses a JWKS document with the default limits (256 KiB, 100 keys,
    /// kids up to 256 bytes), outside any cache: for static key sets and
    /// tools. Generation is 1.
    ///
    /// ```
    /// # let key = jwks_sync::testing::TestKey::generate(jwks_sync::testing::KeyAlg::EdDsa, "ed").unwrap();
    /// # let document = jwks_sync::testing::jwks_json(&[&key]);
    /// let set = jwks_sync::KeySet::from_slice(document.as_bytes())?;
    /// assert!(set.get("ed").is_some());
    /// # Ok::<(), jwks_sync::KeySetError>(())
    /// ```
    pub fn from_slice(document: &[u8]) -> Result<Self, KeySetError> {
        Self::parse(document, 1, SetLimits::DEFAULT)
    }

    /// Like [`from_slice`](Self::from_slice), but a document whose entries
    /// are all skipped is returned too (with no keys), so a tool can report
    /// why each entry was rejected. A cache never publishes such a set.
    ///
    /// ```
    /// let set = jwks_sync::KeySet::audit(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)?;
    /// assert!(set.keys().is_empty());
    /// assert_eq!(set.skipped()[0].reason, jwks_sync::SkipReason::Symmetric);
    /// # Ok::<(), jwks_sync::KeySetError>(())
    /// ```
    pub fn audit(document: &[u8]) -> Result<Self, KeySetError> {
        Self::parse_entries(document, 1, SetLimits::DEFAULT, true)
    }

    /// At most this many usable keys are kept under one kid; the verifier
    /// tries each one bound to a token's `alg`, in document order.
    pub const MAX_KEYS_PER_KID: usize = 4;

    /// The first usable key (in document order) with this `kid`. When the
    /// document published several under it, the others follow through
    /// [`Key::next_same_kid`] / [`Key::same_kid`]; see
    /// [`candidates`](Self::candidates).
    #[inline]
    pub fn get(&self, kid: &str) -> Option<&Arc<Key>> {
        self.by_kid.get(kid)
    }

    /// Every usable key with this `kid`, in document order (at most
    /// [`MAX_KEYS_PER_KID`](Self::MAX_KEYS_PER_KID)).
    pub fn candidates(&self, kid: &str) -> impl Iterator<Item = &Key> {
        self.by_kid.get(kid).into_iter().flat_map(|k| k.same_kid())
    }

    /// Every usable key, in document order (including keys without a kid).
    pub fn keys(&self) -> &[Arc<Key>] {
        &self.keys
    }

    /// The entries that were skipped, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// 1 for the first set published, +1 for each new set; 0 for "none yet".
    /// A `304 Not Modified` keeps the generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    #[inline]
    pub(crate) fn freshness(&self) -> Freshness {
        // Acquire: pairs with the writers' AcqRel in `update_state`;
        // nothing else is published through it, the byte is the whole message.
        Freshness::from_u8(self.freshness.load(Ordering::Acquire))
    }

    /// The fast path's test: fresh or stale, no flag (a refresher watches
    /// the deadline).
    #[inline]
    pub(crate) fn fast_servable(&self) -> bool {
        // Acquire: as in `freshness`.
        self.freshness.load(Ordering::Acquire) <= Freshness::Stale as u8
    }

    /// Whether a parked refresher watches the deadline.
    pub(crate) fn watched(&self) -> bool {
        // Acquire: as in `freshness`.
        self.freshness.load(Ordering::Acquire) & UNWATCHED == 0
    }

    /// Updates the freshness byte (value and flags) with `f`; `Err` when `f`
    /// declined. AcqRel: pairs with the Acquire loads above and with the
    /// other writers' updates (refresher, clock advances).
    pub(crate) fn update_state(&self, f: impl FnMut(u8) -> Option<u8>) -> Result<u8, u8> {
        self.freshness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
    }

    /// The hard-expiry deadline (`NO_DEADLINE`: none).
    pub(crate) fn deadline(&self) -> u64 {
        // Acquire: pairs with `set_deadline`; the value is the whole message.
        self.deadline.load(Ordering::Acquire)
    }

    pub(crate) fn set_deadline(&self, nanos: u64) {
        // Release: pairs with `deadline`.
        self.deadline.store(nanos, Ordering::Release);
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("generation", &self.generation)
            .field("keys", &self.keys)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The (kid, first key) pairs of `by_kid` in document order, so that the
/// kid index lays its kids out as the document does (neighbours in the
/// document are neighbours in memory).
fn document_order<'a>(keys: &'a [Arc<Key>], by_kid: &KidMap) -> Vec<(&'a str, Arc<Key>)> {
    keys.iter()
        .filter_map(|key| {
            let kid = key.kid()?;
            let first = by_kid.get(kid)?;
            Arc::ptr_eq(first, key).then(|| (kid, Arc::clone(key)))
        })
        .collect()
}

/// Wraps the usable keys in `Arc`s, each linked to the next key under its
/// kid, and indexes the first key of each kid.
fn link(
    usable: Vec<Key>,
    per_kid: HashMap<Box<str>, Vec<usize>, KidHasher>,
) -> (KidMap, Vec<Arc<Key>>) {
    let mut slots: Vec<Option<Key>> = usable.into_iter().map(Some).collect();
    let mut arcs: Vec<Option<Arc<Key>>> = slots.iter().map(|_| None).collect();
    let mut by_kid = KidMap::default();
    for (kid, positions) in per_kid {
        // Last to first, so each key can point at the one after it.
        let mut next: Option<Arc<Key>> = None;
        for &pos in positions.iter().rev() {
            if let Some(mut key) = slots[pos].take() {
                if let Some(next) = next.take() {
                    key.set_next_same_kid(next);
                }
                let key = Arc::new(key);
                arcs[pos] = Some(Arc::clone(&key));
                next = Some(key);
            }
        }
        if let Some(first) = next {
            by_kid.insert(kid, first);
        }
    }
    // Keys without a kid were not in any group.
    let keys = arcs
        .into_iter()
        .zip(slots)
        .filter_map(|(arc, slot)| arc.or_else(|| slot.map(Arc::new)))
        .collect();
    (by_kid, keys)
}

#[cfg(test)]
mod tests;
