//! What the refresher reports after each fetch, for logs, metrics and
//! `jwks watch`: see [`Builder::on_refresh`](crate::Builder::on_refresh).

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::keyset::KeySet;
use crate::policy::RefreshCause;

/// One finished fetch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshEvent {
    /// Why it was started.
    pub cause: RefreshCause,
    /// How long the fetch and parse took.
    pub elapsed: Duration,
    /// What came of it.
    pub outcome: RefreshOutcome,
}

/// The result of one fetch.
///
/// The kids in [`Updated`](Self::Updated) are exactly as published;
/// `Display` gives one line for humans with each kid escaped by
/// [`printable`](crate::printable) (at most 16 kids listed per side).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// A new set was published.
    Updated {
        /// Its generation.
        generation: u64,
        /// Kids in the new set and not in the previous one, each once, in
        /// document order.
        added: Vec<String>,
        /// Kids in the previous set and not in the new one, each once, in
        /// document order.
        removed: Vec<String>,
        /// Entries skipped in the new document.
        skipped: usize,
        /// The lifetime granted.
        lifetime: Duration,
    },
    /// The source answered "not modified": same set, lifetime renewed.
    NotModified {
        /// The lifetime granted.
        lifetime: Duration,
    },
    /// The fetch failed; the set in service (if any) stays.
    Failed {
        /// Why.
        error: Error,
        /// Failures in a row, this one included.
        consecutive_failures: u32,
        /// When the refresher will try again by itself.
        retry_in: Option<Duration>,
    },
}

impl fmt::Display for RefreshOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn kids(f: &mut fmt::Formatter<'_>, what: &str, kids: &[String]) -> fmt::Result {
            if kids.is_empty() {
                return Ok(());
            }
            write!(f, ", {what}")?;
            for (i, kid) in kids.iter().take(16).enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}\"{}\"", crate::printable(kid))?;
            }
            if kids.len() > 16 {
                write!(f, " and {} more", kids.len() - 16)?;
            }
            Ok(())
        }
        match self {
            RefreshOutcome::Updated {
                generation,
                added,
                removed,
                skipped,
                lifetime,
            } => {
                write!(f, "updated to generation {generation}")?;
                kids(f, "added", added)?;
                kids(f, "removed", removed)?;
                write!(
                    f,
                    ", {skipped} entries skipped, lifetime {}s",
                    lifetime.as_secs()
                )
            }
            RefreshOutcome::NotModified { lifetime } => {
                write!(f, "not modified, lifetime {}s", lifetime.as_secs())
            }
            RefreshOutcome::Failed {
                error,
                consecutive_failures,
                ..
            } => write!(
                f,
                "failed ({consecutive_failures} in a row): {}",
                crate::error::chain(error)
            ),
        }
    }
}

/// The kids `new` has and `old` lacks, and those `old` has and `new` lacks
/// ([`RefreshOutcome::Updated`]'s `added` and `removed`): each once, in
/// document order. Linear: one kid-index lookup per key, so a rotation of a
/// 10,000-key set costs no more than reading it.
pub(crate) fn kid_diff(old: &KeySet, new: &KeySet) -> (Vec<String>, Vec<String>) {
    let only_in = |set: &KeySet, other: &KeySet| -> Vec<String> {
        set.keys()
            .iter()
            .filter_map(|key| {
                let kid = key.kid()?;
                // The first key under its kid stands for the kid.
                let first = set.get(kid).is_some_and(|k| std::ptr::eq(&**k, &**key));
                (first && other.get(kid).is_none()).then(|| kid.to_owned())
            })
            .collect()
    };
    (only_in(new, old), only_in(old, new))
}

#[cfg(test)]
mod tests {
    use super::kid_diff;
    use crate::testing::{jwks_json, KeyAlg, TestKey};
    use crate::KeySet;

    fn set(keys: &[&TestKey]) -> KeySet {
        KeySet::from_slice(jwks_json(keys).as_bytes()).expect("a usable set")
    }

    #[test]
    fn the_diff_lists_each_kid_once_in_document_order() {
        let key = |kid: &str| TestKey::generate(KeyAlg::EdDsa, kid).expect("keygen");
        let (a, b, c, b2, d) = (key("a"), key("b"), key("c"), key("b"), key("d"));
        let old = set(&[&a, &b, &c]);
        let new = set(&[&d, &b, &b2, &a, &key("e"), &key("d")]);
        let (added, removed) = kid_diff(&old, &new);
        assert_eq!(added, ["d", "e"]);
        assert_eq!(removed, ["c"]);
        assert_eq!(kid_diff(&new, &new), (Vec::new(), Vec::new()));
    }
}
