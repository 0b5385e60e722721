//! The kid index of a key set: kid → first key, kept compact.
//!
//! A hash map of `Box<str>` keys puts every kid in its own allocation,
//! among the key material (about a kilobyte per key), so at thousands of
//! keys a lookup costs a cache miss on the kid's string alone. Here the
//! kids are stored back to back in one arena, and the table holds, per
//! kid, its hash tag, its place in the arena and the key: a lookup touches
//! one table entry (24 bytes) and one arena line.
//!
//! Open addressing with linear probing; the table is a power of two at
//! most two-thirds full, so every probe sequence reaches an empty entry.

use std::hash::BuildHasher;

use crate::jwk::Key;
use crate::sync::Arc;

/// FxHash, as before: kids are chosen by the identity provider, and the
/// table is never grown from request data.
const HASHER: rustc_hash::FxBuildHasher = rustc_hash::FxBuildHasher;

/// One table entry; `key: None` is an empty entry.
struct Entry {
    key: Option<Arc<Key>>,
    /// Where the kid starts in the arena.
    start: usize,
    len: u32,
    /// The hash's high half (the low bits chose the entry).
    tag: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        key: None,
        start: 0,
        len: 0,
        tag: 0,
    };
}

/// Kid → the first usable key published under it.
pub(crate) struct KidIndex {
    table: Box<[Entry]>,
    /// Every indexed kid, back to back.
    arena: Box<[u8]>,
    /// `table.len() - 1`.
    mask: usize,
}

impl Default for KidIndex {
    fn default() -> Self {
        Self::build(Vec::new())
    }
}

impl KidIndex {
    /// Indexes `pairs` (kids distinct; a repeated kid keeps its first key).
    /// A kid of 4 GiB or more is not indexed (no document that large is
    /// ever accepted).
    pub(crate) fn build(pairs: Vec<(&str, Arc<Key>)>) -> Self {
        let n = pairs.len();
        let len = (n + n / 2 + 1).next_power_of_two();
        let mut table: Box<[Entry]> = (0..len).map(|_| Entry::EMPTY).collect();
        let mut arena = Vec::with_capacity(pairs.iter().map(|(kid, _)| kid.len()).sum());
        let mask = len - 1;
        'pairs: for (kid, key) in pairs {
            let Ok(kid_len) = u32::try_from(kid.len()) else {
                continue;
            };
            let (mut i, tag) = place(kid, mask);
            while table[i].key.is_some() {
                let e = &table[i];
                if e.tag == tag
                    && arena.get(e.start..e.start + kid.len()) == Some(kid.as_bytes())
                    && e.len == kid_len
                {
                    continue 'pairs;
                }
                i = (i + 1) & mask;
            }
            table[i] = Entry {
                key: Some(key),
                start: arena.len(),
                len: kid_len,
                tag,
            };
            arena.extend_from_slice(kid.as_bytes());
        }
        Self {
            table,
            arena: arena.into_boxed_slice(),
            mask,
        }
    }

    /// The first key under `kid`. Always inlined: a call's register
    /// saves cost as much as the probe.
    #[inline(always)]
    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<Key>> {
        let (mut i, tag) = place(kid, self.mask);
        loop {
            let e = self.table.get(i)?;
            let key = e.key.as_ref()?;
            if e.tag == tag
                && e.len as usize == kid.len()
                && self
                    .arena
                    .get(e.start..e.start + kid.len())
                    .is_some_and(|stored| same(stored, kid.as_bytes()))
            {
                return Some(key);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// `a == b` for slices of equal length, without a `memcmp` call for kids
/// of 8 to 64 bytes (most published kids: thumbprints, UUIDs, hex ids):
/// word by word, the last word overlapping.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if !(8..=64).contains(&n) {
        return a == b;
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

/// The 8 bytes of `s` at `at` (`None` past the end).
#[inline]
fn word(s: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = s.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_ne_bytes(bytes))
}

/// The entry where `kid`'s probe starts, and its tag.
#[inline]
fn place(kid: &str, mask: usize) -> (usize, u32) {
    let hash = HASHER.hash_one(kid);
    // Low bits pick the entry, high bits are the tag: independent halves.
    (hash as usize & mask, (hash >> 32) as u32)
}

#[cfg(test)]
mod tests {
    use super::super::{KeySet, SetLimits};
    use crate::testing::{jwks_json, KeyAlg, TestKey};

    #[test]
    fn every_kid_finds_its_own_key_and_near_misses_find_nothing() {
        let mut kids: Vec<String> = (0..700).map(|i| format!("key-{i:04}")).collect();
        kids.extend(["", "a", "ab", "K", "ключ-1", "x".repeat(200).as_str()].map(String::from));
        let keys: Vec<TestKey> = kids
            .iter()
            .map(|kid| TestKey::generate(KeyAlg::Es256, kid).expect("keygen"))
            .collect();
        let refs: Vec<&TestKey> = keys.iter().collect();
        let limits = SetLimits {
            max_bytes: 1 << 20,
            max_keys: kids.len(),
            ..SetLimits::DEFAULT
        };
        let set = KeySet::parse(jwks_json(&refs).as_bytes(), 1, limits).expect("valid");
        assert_eq!(set.keys().len(), kids.len());
        for kid in &kids {
            let found = set.get(kid).and_then(|k| k.kid());
            assert_eq!(found, Some(kid.as_str()), "kid {kid:?}");
            for near in [
                format!("{kid}\0"),
                format!("{kid}-"),
                kid.to_uppercase(),
                kid.chars().skip(1).collect(),
            ] {
                if !kids.contains(&near) {
                    assert!(set.get(&near).is_none(), "{near:?} found via {kid:?}");
                }
            }
        }
        assert!(KeySet::empty().get("").is_none());
        // Every length around the word boundaries, one byte changed anywhere.
        for n in 0..80 {
            let a: Vec<u8> = (0..n).map(|i| i as u8).collect();
            assert!(super::same(&a, &a), "{n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x20;
                assert!(!super::same(&a, &b), "{n} {i}");
            }
            assert!(!super::same(&a, &[a.as_slice(), b"x"].concat()));
        }
        assert!(KeySet::empty().get("key-0001").is_none());
    }
}
