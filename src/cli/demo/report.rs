//! The demo's summary: built once from the measurements, rendered as a
//! human table or as JSON (the CI test reads the JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use jwks_sync::Status;
use serde_json::{json, Value};

use super::histogram::Histogram;
use super::workers::{Board, Tally, NEVER};
use super::{Log, Settings};
use crate::cli::text::human_duration;

/// One rotation, as measured.
pub(crate) struct Rotation {
    kind: &'static str,
    kid: &'static str,
    /// When the IdP started signing with the new key.
    signing_at: Option<u64>,
    /// When a fetched set first held the kid, and that fetch's cause.
    learnt: Option<(u64, String)>,
    /// First successful verification of a token of the new key.
    first_verified: Option<u64>,
}

impl Rotation {
    /// Reads rotation `index` (the new key's index) off the board and log.
    pub(crate) fn new(
        kind: &'static str,
        kid: &'static str,
        board: &Board,
        log: &Log,
        index: usize,
    ) -> Self {
        let stamp = |v: u64| (v != NEVER).then_some(v);
        Self {
            kind,
            kid,
            // Relaxed: the workers are joined.
            signing_at: stamp(board.signing_since[index].load(Ordering::Relaxed)),
            learnt: log
                .learnt
                .iter()
                .find(|(k, _, _)| k == kid)
                .map(|(_, at, cause)| (*at, cause.clone())),
            first_verified: stamp(board.first_ok[index].load(Ordering::Relaxed)),
        }
    }

    /// From the signing switch to the first verified token of the new key.
    fn picked_up_after(&self) -> Option<Duration> {
        Some(Duration::from_nanos(
            self.first_verified?.checked_sub(self.signing_at?)?,
        ))
    }
}

/// Upper bounds on fetches by cause, from the settings and the duration.
struct Bounds {
    initial: u64,
    scheduled: u64,
    usage: u64,
    unknown_kid: u64,
    retry: u64,
}

impl Bounds {
    fn new(s: &Settings, outage: Duration) -> Self {
        let per =
            |span: Duration, gap: Duration| (span.as_secs_f64() / gap.as_secs_f64()).floor() as u64;
        let lifetime = s.max_age.max(s.min_ttl);
        Self {
            initial: 1,
            // Background refreshes come at least θ·lifetime after a success.
            scheduled: per(s.duration, lifetime.mul_f64(s.background_threshold)) + 1,
            usage: per(s.duration, s.min_refresh_interval) + 1,
            // At most one per cooldown, whatever the traffic.
            unknown_kid: per(s.duration, s.unknown_kid_cooldown) + 1,
            // The 503s carry Retry-After, which spaces retries at least that far.
            retry: per(outage, s.retry_after) + 2,
        }
    }

    fn total(&self) -> u64 {
        self.initial + self.scheduled + self.usage + self.unknown_kid + self.retry
    }
}

/// Everything the demo reports.
pub(crate) struct Summary {
    settings: Settings,
    url: String,
    elapsed: Duration,
    verified: u64,
    stale_served: u64,
    valid_rejected: BTreeMap<String, u64>,
    new_kid_pending: u64,
    retired_key: u64,
    latency: Histogram,
    status: Status,
    idp_requests: u64,
    rotations: [Rotation; 2],
    outage: (Option<u64>, Option<u64>),
    failed_fetches: u64,
    bounds: Bounds,
    timeline: Vec<(u64, String)>,
}

impl Summary {
    /// Gathers the measurements.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        settings: &Settings,
        tallies: &[Tally],
        status: &Status,
        idp_requests: u64,
        end_ns: u64,
        rotations: [Rotation; 2],
        outage: (u64, u64),
        log: &Log,
        url: &str,
    ) -> Self {
        let mut latency = Histogram::new();
        let mut valid_rejected = BTreeMap::new();
        for t in tallies {
            latency.merge(&t.latency);
            for (reason, n) in &t.valid_rejected {
                *valid_rejected.entry(reason.clone()).or_default() += n;
            }
        }
        let stamp = |v: u64| (v != NEVER).then_some(v);
        let outage = (stamp(outage.0), stamp(outage.1));
        let outage_span = match outage {
            (Some(a), Some(b)) => Duration::from_nanos(b.saturating_sub(a)),
            (Some(a), None) => Duration::from_nanos(end_ns.saturating_sub(a)),
            _ => Duration::ZERO,
        };
        let mut timeline = log.events.clone();
        timeline.sort_by_key(|(at, _)| *at);
        Self {
            settings: settings.clone(),
            url: url.to_owned(),
            elapsed: Duration::from_nanos(end_ns),
            verified: tallies.iter().map(|t| t.verified).sum(),
            stale_served: tallies.iter().map(|t| t.stale_served).sum(),
            valid_rejected,
            new_kid_pending: tallies.iter().map(|t| t.new_kid_pending).sum(),
            retired_key: tallies.iter().map(|t| t.retired_key).sum(),
            latency,
            status: status.clone(),
            idp_requests,
            rotations,
            outage,
            failed_fetches: log.failed_fetches,
            bounds: Bounds::new(settings, outage_span),
            timeline,
        }
    }

    /// The demo's promises that did not hold; empty: the verdict is PASS.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        let valid: u64 = self.valid_rejected.values().sum();
        if valid > 0 {
            out.push(format!("{valid} valid tokens rejected"));
        }
        for rot in &self.rotations {
            if rot.first_verified.is_none() {
                out.push(format!(
                    "{} rotation: no {} token ever verified",
                    rot.kind, rot.kid
                ));
            }
        }
        let (r, b) = (&self.status.refreshes, &self.bounds);
        for (name, n, bound) in [
            ("initial", r.initial, b.initial),
            ("scheduled", r.scheduled, b.scheduled),
            ("usage", r.usage, b.usage),
            ("unknown kid", r.unknown_kid, b.unknown_kid),
            ("retry", r.retry, b.retry),
            ("manual", r.manual, 0),
            ("due", r.due, 0),
        ] {
            if n > bound {
                out.push(format!("{n} {name} fetches, over the bound of {bound}"));
            }
        }
        if self.outage.0.is_some() && self.stale_served == 0 {
            out.push("nothing was served from the stale set during the outage".to_owned());
        }
        out
    }

    /// The last line of the text summary.
    fn verdict_line(&self) -> String {
        let failures = self.failures();
        if failures.is_empty() {
            "verdict         PASS: no valid token rejected, both rotations picked up, \
             fetches within their bounds, the outage served from the stale set"
                .to_owned()
        } else {
            format!("verdict         FAIL: {}", failures.join("; "))
        }
    }

    fn per_second(&self) -> f64 {
        self.verified as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    fn hit_rate(&self) -> f64 {
        self.status.hits as f64 / (self.status.lookups.max(1)) as f64
    }

    fn fetches_per_million(&self) -> f64 {
        self.status.refreshes.total() as f64 * 1e6 / self.verified.max(1) as f64
    }

    /// The machine-readable summary.
    pub(crate) fn to_json(&self) -> Value {
        let s = &self.settings;
        let secs = |ns: Option<u64>| ns.map(|v| v as f64 / 1e9);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let r = &self.status.refreshes;
        let b = &self.bounds;
        let rotations: Vec<Value> = self
            .rotations
            .iter()
            .map(|rot| {
                json!({
                    "kind": rot.kind,
                    "kid": rot.kid,
                    "signing_at_secs": secs(rot.signing_at),
                    "learnt_at_secs": secs(rot.learnt.as_ref().map(|l| l.0)),
                    "learnt_by": rot.learnt.as_ref().map(|l| l.1.clone()),
                    "first_verified_at_secs": secs(rot.first_verified),
                    "picked_up_after_ms": rot.picked_up_after().map(|d| d.as_secs_f64() * 1e3),
                })
            })
            .collect();
        json!({
            "duration_secs": self.elapsed.as_secs_f64(),
            "threads": s.threads,
            "key_alg": "ES256",
            "idp_jwks_url": self.url,
            "settings": {
                "max_age_secs": s.max_age.as_secs_f64(),
                "min_ttl_secs": s.min_ttl.as_secs_f64(),
                "background_threshold": s.background_threshold,
                "strategy": "both",
                "usage_threshold": s.usage_threshold,
                "min_refresh_interval_secs": s.min_refresh_interval.as_secs_f64(),
                "unknown_kid_cooldown_secs": s.unknown_kid_cooldown.as_secs_f64(),
                "stale_while_error_secs": s.stale_while_error.as_secs_f64(),
                "backoff_base_secs": s.backoff_base.as_secs_f64(),
                "backoff_max_secs": s.backoff_max.as_secs_f64(),
                "outage_retry_after_secs": s.retry_after.as_secs_f64(),
                "verify_or_wait_secs": s.wait.as_secs_f64(),
                "tokens_preminted_per_key": s.pool,
            },
            "verifications": {
                "total": self.verified,
                "per_second": self.per_second(),
                "served_stale": self.stale_served,
                "valid_rejected": self.valid_rejected.values().sum::<u64>(),
                "valid_rejected_reasons": self.valid_rejected,
                "expected_rejections": {
                    "new_kid_before_fetch": self.new_kid_pending,
                    "retired_key_in_flight": self.retired_key,
                },
            },
            "hard_failure_window": Value::Null,
            "lookups": {
                "total": self.status.lookups,
                "hits": self.status.hits,
                "misses": self.status.misses,
                "hit_rate": self.hit_rate(),
                "suppressed_refreshes": self.status.suppressed_refreshes,
            },
            "latency_us": {
                "p50": us(self.latency.quantile(0.5)),
                "p90": us(self.latency.quantile(0.9)),
                "p99": us(self.latency.quantile(0.99)),
                "p999": us(self.latency.quantile(0.999)),
                "max": us(self.latency.max()),
            },
            "fetches": {
                "total": r.total(),
                "idp_requests": self.idp_requests,
                "failed": self.failed_fetches,
                "per_million_verifications": self.fetches_per_million(),
                "by_cause": {
                    "initial": r.initial, "scheduled": r.scheduled, "usage": r.usage,
                    "unknown_kid": r.unknown_kid, "manual": r.manual, "due": r.due, "retry": r.retry,
                },
                "bounds": {
                    "initial": b.initial, "scheduled": b.scheduled, "usage": b.usage,
                    "unknown_kid": b.unknown_kid, "manual": 0, "due": 0, "retry": b.retry,
                    "total": b.total(),
                },
            },
            "rotations": rotations,
            "outage": {
                "start_secs": secs(self.outage.0),
                "end_secs": secs(self.outage.1),
                "served_stale": self.stale_served,
            },
            "verdict": {
                "pass": self.failures().is_empty(),
                "failures": self.failures(),
            },
            "timeline": self.timeline.iter().map(|(at, line)| json!({"at_secs": *at as f64 / 1e9, "event": line})).collect::<Vec<_>>(),
        })
    }

    /// The human summary.
    pub(crate) fn to_text(&self) -> String {
        let s = &self.settings;
        let r = &self.status.refreshes;
        let b = &self.bounds;
        let at =
            |ns: Option<u64>| ns.map_or("-".to_owned(), |v| format!("+{:.2}s", v as f64 / 1e9));
        let mut o = String::new();
        let _ = writeln!(
            o,
            "jwks demo: {:.1}s, {} verifier threads, ES256, test IdP at {}",
            self.elapsed.as_secs_f64(),
            s.threads,
            self.url
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "verified        {} tokens, {}/s",
            thousands(self.verified),
            thousands(self.per_second() as u64)
        );
        let _ = writeln!(
            o,
            "latency         p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            micros(self.latency.quantile(0.5)),
            micros(self.latency.quantile(0.9)),
            micros(self.latency.quantile(0.99)),
            micros(self.latency.quantile(0.999)),
            micros(self.latency.max())
        );
        let _ = writeln!(
            o,
            "key lookups     {} ({:.4} % hits, {} misses)",
            thousands(self.status.lookups),
            self.hit_rate() * 100.0,
            thousands(self.status.misses)
        );
        let _ = writeln!(
            o,
            "IdP fetches     {} for {} verifications ({:.2} per million); {} HTTP requests seen by the IdP",
            r.total(),
            thousands(self.verified),
            self.fetches_per_million(),
            self.idp_requests
        );
        let _ = writeln!(o, "  by cause      count  bound (from the settings)");
        for (name, n, bound) in [
            ("initial", r.initial, b.initial),
            ("scheduled", r.scheduled, b.scheduled),
            ("usage", r.usage, b.usage),
            ("unknown kid", r.unknown_kid, b.unknown_kid),
            ("retry", r.retry, b.retry),
            ("manual", r.manual, 0),
            ("due", r.due, 0),
        ] {
            let _ = writeln!(o, "  {name:<13} {n:>5}  {bound:>5}");
        }
        let _ = writeln!(o, "rotations");
        for rot in &self.rotations {
            let _ = writeln!(
                o,
                "  {:<8} {}  signs {}  fetched {} ({})  first verified {}  → picked up after {}",
                rot.kind,
                rot.kid,
                at(rot.signing_at),
                at(rot.learnt.as_ref().map(|l| l.0)),
                rot.learnt.as_ref().map_or("never", |l| l.1.as_str()),
                at(rot.first_verified),
                rot.picked_up_after().map_or("never".to_owned(), micros)
            );
        }
        let _ = writeln!(
            o,
            "outage          {} .. {}: {} failed fetches; {} verifications served from the stale set",
            at(self.outage.0),
            at(self.outage.1),
            self.failed_fetches,
            thousands(self.stale_served)
        );
        let valid: u64 = self.valid_rejected.values().sum();
        let _ = writeln!(
            o,
            "rejections      valid tokens rejected: {valid}{}; expected: {} new-kid tokens before the fetch, {} retired-key tokens in flight",
            if valid == 0 { String::new() } else { format!(" {:?}", self.valid_rejected) },
            thousands(self.new_kid_pending),
            thousands(self.retired_key)
        );
        let _ = writeln!(
            o,
            "settings        max-age {}, min_ttl {}, background {}, strategy both, usage_threshold {}, min_refresh_interval {},",
            human_duration(s.max_age),
            human_duration(s.min_ttl),
            s.background_threshold,
            thousands(s.usage_threshold),
            human_duration(s.min_refresh_interval)
        );
        let _ = writeln!(
            o,
            "                unknown_kid_cooldown {}, stale_while_error {}, backoff {}..{}, 503 Retry-After {}, verify_or_wait {}",
            human_duration(s.unknown_kid_cooldown),
            human_duration(s.stale_while_error),
            human_duration(s.backoff_base),
            human_duration(s.backoff_max),
            human_duration(s.retry_after),
            human_duration(s.wait)
        );
        let _ = writeln!(o, "timeline (routine scheduled refreshes not listed)");
        for (t, line) in &self.timeline {
            let _ = writeln!(o, "  +{:>6.2}s  {line}", *t as f64 / 1e9);
        }
        let _ = writeln!(o, "{}", self.verdict_line());
        o
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12µs`, `1.25ms`, `2.10s`.
fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}
