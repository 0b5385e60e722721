//! Observability: what the refresher tells operators.
//!
//! - **Logs** ([`events`]): one line per thing that changed, on the targets
//!   and at the levels tabled in the README ("Metrics, health and logs").
//! - **Metrics** (`export.rs`, feature `metrics`): the refresher publishes
//!   fetch counts and durations as they happen, and the striped lookup and
//!   verification counters as deltas once per round and at least every
//!   `Builder::metrics_interval` (it wakes up for that), so readers never
//!   call into the `metrics` facade.
//! - **Health** (`health.rs`): computed from a [`Status`](crate::Status).
//!
//! Only the refresher thread owns an [`Observer`]; readers count into the
//! striped counters of `stats.rs` and never log.

mod events;
#[cfg(feature = "metrics")]
mod export;
pub(crate) mod labels;
#[cfg(feature = "serde")]
mod serialize;

use std::time::{Duration, Instant};

use crate::cache::JwksCache;
use crate::event::RefreshEvent;
use crate::keyset::KeySet;
use crate::shared::Shared;
use crate::verify::VerifyError;

/// Log target of fetch events: first set, rotation, failures, recovery.
pub(crate) const REFRESH: &str = "jwks_sync::refresh";
/// Log target of serving events: stale, refusing lookups, fresh again.
pub(crate) const HEALTH: &str = "jwks_sync::health";

/// The refresher's observability state: log streaks and metric deltas.
pub(crate) struct Observer {
    name: String,
    log: events::LogState,
    #[cfg(feature = "metrics")]
    export: export::Exporter,
}

impl Observer {
    /// `metrics_interval`: the longest time between two metric exports
    /// (unused without the `metrics` feature).
    pub(crate) fn new(name: String, metrics_interval: Duration) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = metrics_interval;
        Self {
            #[cfg(feature = "metrics")]
            export: export::Exporter::new(&name, metrics_interval),
            name,
            log: events::LogState::default(),
        }
    }

    /// The source name, for log lines.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The refresher's next wake-up given the schedule's `wake` (real
    /// time): no later than the next metrics export.
    pub(crate) fn wake_cap(&self, wake: Option<Instant>) -> Option<Instant> {
        #[cfg(feature = "metrics")]
        {
            let tick = self.export.next_at();
            Some(wake.map_or(tick, |w| w.min(tick)))
        }
        #[cfg(not(feature = "metrics"))]
        wake
    }

    /// After a fetch (board already updated): logs, fetch metrics, then
    /// what every round does.
    pub(crate) fn after_fetch(
        &mut self,
        shared: &Shared,
        event: &RefreshEvent,
        previous: &KeySet,
        at: Instant,
    ) {
        let current = shared.current.load_full();
        let since = self.log.on_fetch(&self.name, event, previous, &current, at);
        shared.board.lock().failing_since = since;
        #[cfg(feature = "metrics")]
        self.export.on_fetch(event, &current);
        self.after_round(shared);
    }

    /// At the end of every round: serving transitions (logged once each)
    /// and the metrics export.
    pub(crate) fn after_round(&mut self, shared: &Shared) {
        let freshness = shared.current.load().freshness();
        let now = shared.clock.now();
        {
            let mut board = shared.board.lock();
            self.log.on_round(&self.name, freshness, &mut board, now);
        }
        #[cfg(feature = "metrics")]
        self.export.export(shared);
    }
}

impl JwksCache {
    /// Counts a verification outcome (striped for successes, one relaxed
    /// counter per rule for rejections) and hands it back.
    pub(crate) fn counted<T>(&self, result: Result<T, VerifyError>) -> Result<T, VerifyError> {
        let counters = &self.shared().counters;
        match &result {
            Ok(_) => counters.verified(),
            Err(e) => counters.rejected(labels::rule(e)),
        }
        result
    }
}
