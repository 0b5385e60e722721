//! What the refresher reports after each fetch, for logs, metrics and
//! `jwks watch`: see [`Builder::on_refresh`](crate::Builder::on_refresh).

use std::time::Duration;

use crate::error::Error;
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
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// A new set was published.
    Updated {
        /// Its generation.
        generation: u64,
        /// Kids in the new set and not in the previous one.
        added: Vec<String>,
        /// Kids in the previous set and not in the new one.
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
