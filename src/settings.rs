//! A source's validated settings: what [`Builder`](crate::Builder) turns
//! into when it is checked, before anything runs. No threads, no I/O
//! beyond what building the fetcher needs (a fleet's warm-start read).

use std::time::Duration;

use crate::clock::Clock;
use crate::event::RefreshEvent;
use crate::fetch::Fetch;
use crate::keyset::SetLimits;
use crate::policy::PolicyConfig;

/// A callback run on the scheduler thread after each fetch.
pub(crate) type EventHook = Box<dyn Fn(&RefreshEvent) + Send + 'static>;

/// One source, checked and ready to schedule.
pub(crate) struct Settings {
    /// The name in logs, metrics and `Status`.
    pub(crate) name: String,
    /// Where documents come from (the fleet wrapper included).
    pub(crate) fetcher: Box<dyn Fetch>,
    /// A checked fleet snapshot is waiting: the first round publishes it
    /// without I/O.
    pub(crate) warm: bool,
    pub(crate) policy: PolicyConfig,
    /// The jitter's seed.
    pub(crate) seed: u64,
    pub(crate) limits: SetLimits,
    pub(crate) negative_ttl: Duration,
    pub(crate) expired_wait: Duration,
    pub(crate) refresh_timeout: Duration,
    pub(crate) clock: Box<dyn Clock>,
    /// The scheduler thread's name (a cache of its own only).
    pub(crate) thread_name: String,
    pub(crate) on_refresh: Option<EventHook>,
    pub(crate) metrics_interval: Duration,
}
