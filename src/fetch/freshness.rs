//! HTTP's caching contract, read from response headers (RFC 9111): how long
//! a response stays fresh, and how long `Retry-After` asks us to wait.
//!
//! Pure functions over header strings; the transport (`http.rs`) collects
//! the headers, the source (`url.rs`) decides what to do with the answer.
//!
//! | headers | lifetime |
//! |---|---|
//! | `Cache-Control: no-store` or `no-cache` | zero (the cache's floor, `min_ttl`) |
//! | `Cache-Control: max-age=N`, `Age: A` | `N - A` |
//! | `Expires: E`, `Date: D`, `Age: A` | `E - D - A` (`D` = our clock if absent) |
//! | an invalid `max-age` or `Expires` | zero (RFC 9111: treat as stale) |
//! | none of these | none (the cache's `interval`) |

use std::time::{Duration, SystemTime};

/// The response headers the caching contract reads, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheHeaders {
    /// `Cache-Control` (several header lines joined with `, `).
    pub(crate) cache_control: Option<String>,
    /// `Age`.
    pub(crate) age: Option<String>,
    /// `Expires`.
    pub(crate) expires: Option<String>,
    /// `Date`.
    pub(crate) date: Option<String>,
}

impl CacheHeaders {
    /// Whether any header that grants a lifetime is present.
    pub(crate) fn grants_lifetime(&self) -> bool {
        self.cache_control.is_some() || self.expires.is_some()
    }

    /// `self` freshened by a `304 Not Modified` carrying `update`: headers
    /// the 304 repeats replace the stored ones (RFC 9111 §4.3.4), the others
    /// stay. A 304 with no lifetime headers keeps the stored directives, so
    /// `max-age=600` on the 200 still grants 600 s after each 304.
    pub(crate) fn freshened(&self, update: &CacheHeaders) -> CacheHeaders {
        let pick = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
        let lifetime_from_update = update.grants_lifetime();
        CacheHeaders {
            cache_control: if lifetime_from_update {
                update.cache_control.clone()
            } else {
                self.cache_control.clone()
            },
            expires: if lifetime_from_update {
                update.expires.clone()
            } else {
                self.expires.clone()
            },
            // The 304's Age and Date describe the response we got now.
            age: update.age.clone(),
            date: pick(&update.date, &self.date),
        }
    }

    /// The remaining freshness lifetime the headers grant, measured at
    /// `now` (used only when `Date` is absent); `None` when they grant none.
    pub(crate) fn lifetime(&self, now: SystemTime) -> Option<Duration> {
        let age = self
            .age
            .as_deref()
            .and_then(parse_delta_seconds)
            .unwrap_or(Duration::ZERO);
        if let Some(cc) = &self.cache_control {
            let mut max_age = None;
            for directive in cc.split(',') {
                let (name, value) = match directive.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                    None => (directive.trim(), None),
                };
                if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                    return Some(Duration::ZERO);
                }
                if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
                    // An unparseable max-age makes the response stale.
                    max_age = Some(
                        value
                            .and_then(parse_delta_seconds)
                            .unwrap_or(Duration::ZERO),
                    );
                }
            }
            if let Some(max_age) = max_age {
                return Some(max_age.saturating_sub(age));
            }
        }
        let expires = self.expires.as_deref()?;
        // An invalid Expires ("0", "-1") means "already expired".
        let Some(expires) = parse_http_date(expires) else {
            return Some(Duration::ZERO);
        };
        let date = self
            .date
            .as_deref()
            .and_then(parse_http_date)
            .unwrap_or(now);
        let lifetime = expires.duration_since(date).unwrap_or(Duration::ZERO);
        Some(lifetime.saturating_sub(age))
    }
}

/// `Retry-After`: delta-seconds, or an HTTP-date measured against the
/// response's `Date` (or `now` without one). `None` if unparseable.
pub(crate) fn retry_after(value: &str, date: Option<&str>, now: SystemTime) -> Option<Duration> {
    if let Some(delay) = parse_delta_seconds(value) {
        return Some(delay);
    }
    let at = parse_http_date(value)?;
    let base = date.and_then(parse_http_date).unwrap_or(now);
    Some(at.duration_since(base).unwrap_or(Duration::ZERO))
}

/// Non-negative decimal seconds; values beyond ~136 years saturate.
fn parse_delta_seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Duration::from_secs(
        s.parse::<u64>().unwrap_or(u64::from(u32::MAX)),
    ))
}

/// Parses an HTTP-date in any of the three forms recipients must accept
/// (RFC 9110 §5.6.7): IMF-fixdate, RFC 850, and asctime, with the
/// `httpdate` crate (which also checks the weekday against the date).
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(any(test, feature = "testing"))]
use std::time::UNIX_EPOCH;

#[cfg(any(test, feature = "testing"))]
/// Formats `t` as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"),
/// clamped to the years `httpdate` can write (1970 to 9999).
pub(crate) fn format_http_date(t: SystemTime) -> String {
    // 9999-12-31T23:59:59Z.
    const LAST: u64 = 253_402_300_799;
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(LAST);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(
        cc: Option<&str>,
        age: Option<&str>,
        expires: Option<&str>,
        date: Option<&str>,
    ) -> CacheHeaders {
        CacheHeaders {
            cache_control: cc.map(str::to_owned),
            age: age.map(str::to_owned),
            expires: expires.map(str::to_owned),
            date: date.map(str::to_owned),
        }
    }

    #[test]
    fn the_three_date_forms_agree() {
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(s), Some(at(NOV_6_1994)), "{s}");
        }
        assert_eq!(
            format_http_date(at(NOV_6_1994)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        for bad in [
            "0",
            "-1",
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting_clamps_instead_of_panicking() {
        let before = std::time::UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(format_http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
        let far = at(u64::MAX / 4);
        assert_eq!(format_http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn dates_round_trip_across_leap_years() {
        for secs in [0, 951_782_400, 1_709_164_800, 4_102_444_800, 1_234_567_890] {
            let s = format_http_date(at(secs));
            assert_eq!(parse_http_date(&s), Some(at(secs)), "{s}");
        }
    }

    #[test]
    fn max_age_wins_and_age_is_subtracted() {
        let now = at(NOV_6_1994);
        let h = headers(Some("public, max-age=600"), Some("100"), Some("0"), None);
        assert_eq!(h.lifetime(now), Some(Duration::from_secs(500)));
        let h = headers(Some("max-age=\"60\""), Some("600"), None, None);
        assert_eq!(h.lifetime(now), Some(Duration::ZERO));
        let h = headers(Some("max-age=abc"), None, None, None);
        assert_eq!(h.lifetime(now), Some(Duration::ZERO));
    }

    #[test]
    fn no_store_and_no_cache_grant_nothing() {
        let now = at(NOV_6_1994);
        for cc in [
            "no-store",
            "max-age=600, no-cache",
            "No-Cache=\"set-cookie\"",
        ] {
            assert_eq!(
                headers(Some(cc), None, None, None).lifetime(now),
                Some(Duration::ZERO),
                "{cc}"
            );
        }
    }

    #[test]
    fn expires_is_measured_against_date_then_our_clock() {
        let h = headers(
            Some("public"),
            Some("30"),
            Some("Sun, 06 Nov 1994 09:49:37 GMT"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        // Our clock is far off; Date is what counts.
        assert_eq!(h.lifetime(at(0)), Some(Duration::from_secs(3570)));
        let h = headers(None, None, Some("Sun, 06 Nov 1994 09:49:37 GMT"), None);
        assert_eq!(h.lifetime(at(NOV_6_1994)), Some(Duration::from_secs(3600)));
        let h = headers(None, None, Some("0"), None);
        assert_eq!(h.lifetime(at(NOV_6_1994)), Some(Duration::ZERO));
        assert_eq!(headers(None, Some("5"), None, None).lifetime(at(0)), None);
    }

    #[test]
    fn a_304_freshens_the_stored_directives() {
        let stored = headers(
            Some("max-age=600"),
            Some("50"),
            None,
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let bare = headers(None, None, None, Some("Sun, 06 Nov 1994 09:00:00 GMT"));
        let merged = stored.freshened(&bare);
        assert_eq!(merged.lifetime(at(0)), Some(Duration::from_secs(600)));
        assert_eq!(
            merged.date.as_deref(),
            Some("Sun, 06 Nov 1994 09:00:00 GMT")
        );
        let renewed = stored.freshened(&headers(Some("max-age=60"), None, None, None));
        assert_eq!(renewed.lifetime(at(0)), Some(Duration::from_secs(60)));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = at(NOV_6_1994);
        assert_eq!(
            retry_after("120", None, now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:37 GMT", None, now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            retry_after(
                "Sun, 06 Nov 1994 08:50:37 GMT",
                Some("Sun, 06 Nov 1994 08:50:07 GMT"),
                at(0)
            ),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("soon", None, now), None);
        assert_eq!(retry_after("-5", None, now), None);
    }
}
