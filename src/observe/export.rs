//! The `metrics` facade export (feature `metrics`), run on the refresher.
//!
//! Fetch counters and the duration histogram are recorded as each fetch
//! ends. Lookup and verification counters live in the striped counters of
//! `stats.rs` (readers never call the facade); the refresher adds their
//! growth since the last export to the facade's counters at the end of each
//! round, and wakes up at least every `Builder::metrics_interval` for it.
//! Gauges are set at the same moments.
//!
//! Handles are fetched from the facade at each export, not kept, so a
//! recorder installed after the cache was built still receives everything
//! from then on.

use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics::{Label, Unit};

use super::labels::{self, RULES};
use crate::event::{RefreshEvent, RefreshOutcome};
use crate::keyset::KeySet;
use crate::shared::Shared;
use crate::stats::{snapshot, Status};

/// Counter growth already exported.
#[derive(Default)]
struct Exported {
    lookups: u64,
    hits: u64,
    misses: u64,
    asked: u64,
    suppressed: u64,
    expired: u64,
    stale: u64,
    verified: u64,
    rejected: [u64; RULES.len()],
}

pub(crate) struct Exporter {
    source: Label,
    interval: Duration,
    next_at: Instant,
    done: Exported,
}

impl Exporter {
    pub(crate) fn new(name: &str, interval: Duration) -> Self {
        Self {
            source: Label::new("source", name.to_owned()),
            interval,
            next_at: Instant::now(),
            done: Exported::default(),
        }
    }

    /// When the next export is due (real time).
    pub(crate) fn next_at(&self) -> Instant {
        self.next_at
    }

    fn labels(&self, more: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut labels = vec![self.source.clone()];
        labels.extend(more.iter().map(|(k, v)| Label::new(*k, *v)));
        labels
    }

    /// A fetch ended: count it by cause and outcome, time it, and count the
    /// entries a new document skipped.
    pub(crate) fn on_fetch(&self, event: &RefreshEvent, current: &KeySet) {
        let outcome = labels::outcome(&event.outcome);
        counter!(
            "jwks_fetches_total",
            self.labels(&[("cause", labels::cause(event.cause)), ("outcome", outcome)])
        )
        .increment(1);
        histogram!("jwks_fetch_duration_seconds", self.labels(&[]))
            .record(event.elapsed.as_secs_f64());
        if let RefreshOutcome::Updated { .. } = event.outcome {
            for skipped in current.skipped() {
                counter!(
                    "jwks_keys_skipped_total",
                    self.labels(&[("reason", labels::skip(&skipped.reason))])
                )
                .increment(1);
            }
        }
    }

    /// Publishes counter growth and gauges; schedules the next export.
    pub(crate) fn export(&mut self, shared: &Shared) {
        let status = {
            let set = shared.current.load_full();
            let now = shared.clock.now();
            let board = shared.board.lock();
            snapshot(&shared.counters, &board, &set, now)
        };
        describe();
        self.counters(&status);
        self.gauges(&status);
        self.next_at = Instant::now() + self.interval;
    }

    fn counters(&mut self, s: &Status) {
        let plain = [
            ("jwks_lookups_total", s.lookups, &mut self.done.lookups),
            ("jwks_lookup_hits_total", s.hits, &mut self.done.hits),
            ("jwks_lookup_misses_total", s.misses, &mut self.done.misses),
            (
                "jwks_unknown_kid_refreshes_asked_total",
                s.unknown_kid_refreshes_asked,
                &mut self.done.asked,
            ),
            (
                "jwks_unknown_kid_refreshes_suppressed_total",
                s.unknown_kid_refreshes_suppressed,
                &mut self.done.suppressed,
            ),
            (
                "jwks_lookups_refused_expired_total",
                s.lookups_refused_expired,
                &mut self.done.expired,
            ),
            (
                "jwks_sets_served_stale_total",
                s.sets_served_stale,
                &mut self.done.stale,
            ),
            (
                "jwks_tokens_verified_total",
                s.tokens_verified,
                &mut self.done.verified,
            ),
        ];
        let labels = vec![self.source.clone()];
        for (name, total, done) in plain {
            // Registered even at zero, so dashboards see the series.
            counter!(name, labels.clone()).increment(total.wrapping_sub(*done));
            *done = total;
        }
        for (rule, done) in RULES.iter().zip(self.done.rejected.iter_mut()) {
            let total = s
                .rejections
                .iter()
                .find(|(r, _)| r == rule)
                .map_or(0, |(_, n)| *n);
            if total != *done {
                let labels = vec![self.source.clone(), Label::new("rule", *rule)];
                counter!("jwks_tokens_rejected_total", labels).increment(total.wrapping_sub(*done));
                *done = total;
            }
        }
    }

    fn gauges(&self, s: &Status) {
        let labels = vec![self.source.clone()];
        gauge!("jwks_keys", labels.clone()).set(s.key_count as f64);
        gauge!("jwks_health", labels.clone()).set(f64::from(s.health().level()));
        if let Some(age) = s.age {
            gauge!("jwks_set_age_seconds", labels.clone()).set(age.as_secs_f64());
        }
        if let Some(at) = s.expires_at {
            let left = if at >= s.taken_at {
                (at - s.taken_at).as_secs_f64()
            } else {
                -(s.taken_at - at).as_secs_f64()
            };
            gauge!("jwks_set_expires_in_seconds", labels).set(left);
        }
    }
}

/// Help texts and units, sent to whatever recorder is installed now.
fn describe() {
    let counters: [(&'static str, &'static str); 11] = [
        ("jwks_lookups_total", "Key lookups by kid (hits + misses)."),
        ("jwks_lookup_hits_total", "Lookups that found their key."),
        (
            "jwks_lookup_misses_total",
            "Lookups that did not find their key.",
        ),
        (
            "jwks_unknown_kid_refreshes_asked_total",
            "Unknown kids that asked the refresher for a fetch.",
        ),
        (
            "jwks_unknown_kid_refreshes_suppressed_total",
            "Unknown kids held back by the re-fetch guard or the negative cache.",
        ),
        (
            "jwks_fetches_total",
            "Fetches finished, by cause and outcome.",
        ),
        (
            "jwks_keys_skipped_total",
            "Key set entries skipped, by reason, per document published.",
        ),
        (
            "jwks_sets_served_stale_total",
            "Times the key set went past its lifetime and was served stale while refreshes failed.",
        ),
        (
            "jwks_lookups_refused_expired_total",
            "Lookups refused because the key set expired.",
        ),
        (
            "jwks_tokens_verified_total",
            "Tokens that passed every rule.",
        ),
        (
            "jwks_tokens_rejected_total",
            "Tokens rejected, by the first rule they broke.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_histogram!(
        "jwks_fetch_duration_seconds",
        Unit::Seconds,
        "Time to fetch and parse a key set."
    );
    describe_gauge!(
        "jwks_keys",
        Unit::Count,
        "Usable keys in the published set."
    );
    describe_gauge!(
        "jwks_set_age_seconds",
        Unit::Seconds,
        "Time since the last successful fetch."
    );
    describe_gauge!(
        "jwks_set_expires_in_seconds",
        Unit::Seconds,
        "Time until lookups fail closed if no refresh succeeds (negative once expired)."
    );
    describe_gauge!(
        "jwks_health",
        "0 healthy, 1 degraded, 2 failing (see Status::health)."
    );
}
