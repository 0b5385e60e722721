//! `build()`'s checks: defaults that follow the knobs they depend on, the
//! ceiling on every `Duration`, and the settings that contradict each other.

use std::time::Duration;

use super::Builder;
use crate::error::Error;

/// The longest any `Duration` setting may be; longer ones are rejected by
/// `build()` (so no deadline arithmetic can overflow, here or in the HTTP
/// client).
const MAX_SETTING: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Builder {
    /// Defaults that depend on another knob follow it when that knob was
    /// set and they were not: `interval(1s)` alone must not fail on
    /// `min_refresh_interval`, a setting the caller never touched.
    pub(super) fn resolve_defaults(&mut self) {
        let p = &mut self.policy;
        let explicit = |name: &str| self.explicit.contains(&name);
        if !explicit("min_refresh_interval") {
            p.min_refresh_interval = p.min_refresh_interval.min(p.interval);
        }
        if !explicit("backoff_base") {
            p.backoff_base = p.backoff_base.min(p.backoff_max);
        } else if !explicit("backoff_max") {
            p.backoff_max = p.backoff_max.max(p.backoff_base);
        }
        if !explicit("min_ttl") {
            p.min_ttl = p.min_ttl.min(p.max_ttl);
        } else if !explicit("max_ttl") {
            p.max_ttl = p.max_ttl.max(p.min_ttl);
        }
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        let p = &self.policy;
        let fail = |msg: &str| Err(Error::Config(msg.to_owned()));
        for (name, value) in [
            ("interval", p.interval),
            ("min_refresh_interval", p.min_refresh_interval),
            ("unknown_kid_cooldown", p.unknown_kid_cooldown),
            ("negative_cache_ttl", self.negative_ttl),
            ("stale_while_error", p.stale_while_error),
            ("backoff_base", p.backoff_base),
            ("backoff_max", p.backoff_max),
            ("expired_wait", self.expired_wait),
            ("refresh_timeout", self.refresh_timeout),
            ("min_ttl", p.min_ttl),
            ("max_ttl", p.max_ttl),
            ("connect_timeout", self.http.connect_timeout),
            ("response_timeout", self.http.response_timeout),
            ("timeout", self.http.timeout),
        ] {
            if value > MAX_SETTING {
                return Err(Error::Config(format!(
                    "{name} must be at most 100 years (got {value:?})"
                )));
            }
        }
        if p.interval.is_zero() {
            return fail("interval must be positive");
        }
        if self.refresh_timeout.is_zero() {
            return fail("refresh_timeout must be positive");
        }
        if p.usage_threshold == 0 {
            return fail("usage_threshold must be at least 1");
        }
        if let Some(theta) = p.background {
            if !(theta > 0.0 && theta < 1.0) {
                return fail("background_threshold must be between 0 and 1 (exclusive)");
            }
        }
        if p.min_refresh_interval > p.interval {
            return fail("min_refresh_interval must not exceed interval");
        }
        if p.backoff_max.is_zero() {
            return fail("backoff_max must be positive");
        }
        if p.backoff_base.is_zero() {
            return fail("backoff_base must be positive");
        }
        if p.backoff_base > p.backoff_max {
            return fail("backoff_base must be at most backoff_max");
        }
        if p.max_ttl.is_zero() {
            return fail("max_ttl must be positive");
        }
        if p.min_ttl.is_zero() {
            return fail("min_ttl must be positive");
        }
        if p.min_ttl > p.max_ttl {
            return fail("min_ttl must be at most max_ttl");
        }
        if self.limits.max_keys == 0
            || self.limits.max_bytes < 2
            || self.limits.key.max_kid_len == 0
        {
            return fail("max_keys, max_document_bytes and max_kid_len must be positive");
        }
        Ok(())
    }
}
