//! One health signal to page on: [`Status::health`].

use std::fmt;
use std::time::{Instant, SystemTime};

use crate::keyset::Freshness;
use crate::stats::{RefresherState, Status};

/// How well the cache can serve lookups, from [`Status::health`].
///
/// ```
/// # let cache = jwks_sync::doc_cache();
/// let health = cache.status().health();
/// // A `/healthz` handler: 200 unless lookups are refused.
/// let (code, body) = (health.http_status(), health.to_string());
/// assert_eq!((code, body.as_str()), (200, "healthy"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// A key set is served within its lifetime and the latest fetch
    /// succeeded.
    Healthy,
    /// Lookups are served, but refreshes fail: an operator should look
    /// before the set expires.
    Degraded {
        /// What is wrong.
        reason: DegradedReason,
        /// Since when (wall clock).
        since: SystemTime,
    },
    /// Lookups are refused.
    Failing {
        /// Why.
        reason: FailingReason,
    },
}

/// Why the cache is [`Health::Degraded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DegradedReason {
    /// The set is past its lifetime and served anyway while refreshes fail
    /// (until `Builder::stale_while_error` runs out); `since` is when it
    /// went stale.
    ServingStale,
    /// Refreshes fail but the set is still within its lifetime; `since` is
    /// the first failure of the run.
    Retrying,
}

/// Why the cache is [`Health::Failing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailingReason {
    /// No key set has been loaded yet.
    NotReady,
    /// The set expired (lifetime plus `Builder::stale_while_error`) and no
    /// refresh succeeded: lookups fail closed.
    Expired,
    /// The refresher thread is gone: nothing will refresh the set.
    RefresherStopped,
}

impl Health {
    /// `"healthy"`, `"degraded"` or `"failing"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded { .. } => "degraded",
            Health::Failing { .. } => "failing",
        }
    }

    /// Whether lookups are refused.
    pub fn is_failing(&self) -> bool {
        matches!(self, Health::Failing { .. })
    }

    /// The HTTP status a `/healthz` endpoint answers: `503` when failing,
    /// `200` otherwise (a degraded cache still serves).
    pub fn http_status(&self) -> u16 {
        if self.is_failing() {
            503
        } else {
            200
        }
    }

    /// `0` healthy, `1` degraded, `2` failing: the `jwks_health` gauge.
    pub fn level(&self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Degraded { .. } => 1,
            Health::Failing { .. } => 2,
        }
    }
}

impl DegradedReason {
    /// `"serving_stale"` or `"retrying"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DegradedReason::ServingStale => "serving_stale",
            DegradedReason::Retrying => "retrying",
        }
    }
}

impl FailingReason {
    /// `"not_ready"`, `"expired"` or `"refresher_stopped"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FailingReason::NotReady => "not_ready",
            FailingReason::Expired => "expired",
            FailingReason::RefresherStopped => "refresher_stopped",
        }
    }
}

/// One line: `healthy`, `degraded: serving_stale since 2026-01-02T03:04:05Z`,
/// `failing: expired`.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Degraded { reason, since } => {
                write!(f, "degraded: {} since {}", reason.as_str(), rfc3339(*since))
            }
            Health::Failing { reason } => write!(f, "failing: {}", reason.as_str()),
        }
    }
}

impl Status {
    /// The one health signal: failing when lookups are refused (no set
    /// yet, expired, refresher stopped), degraded while refreshes fail
    /// (serving stale, or retrying within the lifetime), healthy otherwise.
    pub fn health(&self) -> Health {
        let stopped = self.state == RefresherState::Stopped;
        let failing = self.consecutive_failures > 0;
        let expired = self.freshness == Freshness::Expired
            || (failing && self.expires_at.is_some_and(|t| t <= self.taken_at));
        let reason = if stopped {
            Some(FailingReason::RefresherStopped)
        } else if self.generation == 0 {
            Some(FailingReason::NotReady)
        } else if expired {
            Some(FailingReason::Expired)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Health::Failing { reason };
        }
        if !failing {
            return Health::Healthy;
        }
        let stale =
            self.freshness == Freshness::Stale || self.stale_at.is_some_and(|t| t <= self.taken_at);
        match (stale, self.stale_at_wall, self.failing_since_wall) {
            (true, Some(since), _) => Health::Degraded {
                reason: DegradedReason::ServingStale,
                since,
            },
            (_, _, since) => Health::Degraded {
                reason: DegradedReason::Retrying,
                since: since.unwrap_or(self.taken_at_wall),
            },
        }
    }
}

/// `t`, an instant on the cache's clock, as wall-clock time, given that the
/// clock read `now` at wall-clock time `wall_now`.
pub(crate) fn wall_clock(t: Instant, now: Instant, wall_now: SystemTime) -> SystemTime {
    if t >= now {
        wall_now.checked_add(t - now).unwrap_or(wall_now)
    } else {
        wall_now.checked_sub(now - t).unwrap_or(wall_now)
    }
}

/// `t` as RFC 3339 UTC with milliseconds: `2026-01-02T03:04:05.678Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(784_111_777_123);
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_stopped_refresher_is_failing_whatever_the_set() {
        use crate::keyset::KeySet;
        use crate::stats::{snapshot, Board, LookupCounters};
        let board = Board {
            state: RefresherState::Stopped,
            ..Board::default()
        };
        let status = snapshot(
            &LookupCounters::new(1000),
            &board,
            &KeySet::empty(),
            Instant::now(),
        );
        let health = status.health();
        assert_eq!(
            health,
            Health::Failing {
                reason: FailingReason::RefresherStopped
            }
        );
        assert_eq!(health.to_string(), "failing: refresher_stopped");
        assert_eq!((health.http_status(), health.level()), (503, 2));
    }

    #[test]
    fn wall_clock_places_instants_around_now() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let later = now + Duration::from_secs(5);
        assert_eq!(wall_clock(later, now, wall), wall + Duration::from_secs(5));
        assert_eq!(wall_clock(now, later, wall), wall - Duration::from_secs(5));
    }
}
