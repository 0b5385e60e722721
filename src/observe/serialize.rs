//! `serde::Serialize` for [`Status`] and [`Health`] (feature `serde`), for a
//! JSON `/healthz` or status page.
//!
//! Instants mean nothing outside the process, so times are written as
//! RFC 3339 UTC strings (the `*_wall` fields, without the suffix), durations
//! as seconds (float, with a `_seconds` suffix), errors and skip reasons as
//! their messages, and the health as `{"status", "reason", "since"}`.

use std::time::{Duration, SystemTime};

use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::Serialize;

use super::events::escape_kid;
use crate::health::{rfc3339, Health};
use crate::keyset::SkippedKey;
use crate::stats::{RefreshCounts, RefresherState, Status};

struct Time(Option<SystemTime>);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(t) => s.serialize_str(&rfc3339(t)),
            None => s.serialize_none(),
        }
    }
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

struct Skipped<'a>(&'a [SkippedKey]);

impl Serialize for Skipped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Entry))
    }
}

/// `{"index", "kid" (escaped), "reason" (its message)}`.
struct Entry<'a>(&'a SkippedKey);

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("SkippedKey", 3)?;
        st.serialize_field("index", &self.0.index)?;
        st.serialize_field("kid", &self.0.kid.as_deref().map(escape_kid))?;
        st.serialize_field("reason", &self.0.reason.to_string())?;
        st.end()
    }
}

struct Counts<'a>(&'a RefreshCounts);

impl Serialize for Counts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut st = s.serialize_struct("RefreshCounts", 7)?;
        st.serialize_field("initial", &c.initial)?;
        st.serialize_field("scheduled", &c.scheduled)?;
        st.serialize_field("usage", &c.usage)?;
        st.serialize_field("unknown_kid", &c.unknown_kid)?;
        st.serialize_field("manual", &c.manual)?;
        st.serialize_field("due", &c.due)?;
        st.serialize_field("retry", &c.retry)?;
        st.end()
    }
}

struct Rejections<'a>(&'a [(&'static str, u64)]);

impl Serialize for Rejections<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (rule, n) in self.0 {
            map.serialize_entry(rule, n)?;
        }
        map.end()
    }
}

fn state(state: RefresherState) -> &'static str {
    match state {
        RefresherState::Idle => "idle",
        RefresherState::Fetching => "fetching",
        RefresherState::BackingOff => "backing_off",
        RefresherState::Stopped => "stopped",
    }
}

/// `{"status": "degraded", "reason": "serving_stale", "since": "2026-…Z"}`;
/// `reason` and `since` only where they apply.
impl Serialize for Health {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Health", 3)?;
        st.serialize_field("status", self.as_str())?;
        match self {
            Health::Healthy => {
                st.skip_field("reason")?;
                st.skip_field("since")?;
            }
            Health::Degraded { reason, since } => {
                st.serialize_field("reason", reason.as_str())?;
                st.serialize_field("since", &Time(Some(*since)))?;
            }
            Health::Failing { reason } => {
                st.serialize_field("reason", reason.as_str())?;
                st.skip_field("since")?;
            }
        }
        st.end()
    }
}

/// Every public field, with [`Status::health`] as `health`.
impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Status", 30)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("health", &self.health())?;
        st.serialize_field("taken_at", &Time(Some(self.taken_at_wall)))?;
        st.serialize_field("generation", &self.generation)?;
        st.serialize_field("key_count", &self.key_count)?;
        st.serialize_field("skipped", &Skipped(&self.skipped))?;
        st.serialize_field("state", state(self.state))?;
        st.serialize_field("fetched_at", &Time(self.fetched_at_wall))?;
        st.serialize_field("age_seconds", &secs(self.age))?;
        st.serialize_field("lifetime_seconds", &secs(self.lifetime))?;
        st.serialize_field("next_refresh", &Time(self.next_refresh_wall))?;
        st.serialize_field("stale_at", &Time(self.stale_at_wall))?;
        st.serialize_field("expires_at", &Time(self.expires_at_wall))?;
        st.serialize_field("failing_since", &Time(self.failing_since_wall))?;
        st.serialize_field("consecutive_failures", &self.consecutive_failures)?;
        st.serialize_field(
            "last_error",
            &self.last_error.as_ref().map(|e| crate::error::chain(e)),
        )?;
        st.serialize_field("lookups", &self.lookups)?;
        st.serialize_field("hits", &self.hits)?;
        st.serialize_field("misses", &self.misses)?;
        st.serialize_field("refreshes", &Counts(&self.refreshes))?;
        st.serialize_field("not_modified", &self.not_modified)?;
        st.serialize_field("suppressed_refreshes", &self.suppressed_refreshes)?;
        st.serialize_field(
            "unknown_kid_refreshes_asked",
            &self.unknown_kid_refreshes_asked,
        )?;
        st.serialize_field(
            "unknown_kid_refreshes_suppressed",
            &self.unknown_kid_refreshes_suppressed,
        )?;
        st.serialize_field("fetch_failures", &self.fetch_failures)?;
        st.serialize_field("lookups_refused_expired", &self.lookups_refused_expired)?;
        st.serialize_field("sets_served_stale", &self.sets_served_stale)?;
        st.serialize_field("tokens_verified", &self.tokens_verified)?;
        st.serialize_field("tokens_rejected", &self.tokens_rejected)?;
        st.serialize_field("rejections", &Rejections(&self.rejections))?;
        st.end()
    }
}
