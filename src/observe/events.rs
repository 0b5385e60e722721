//! Log events: one line per change an operator cares about, each once.
//!
//! | event | target | level |
//! |---|---|---|
//! | first key set published | `jwks_sync::refresh` | info |
//! | rotation: kids added and removed | `jwks_sync::refresh` | info |
//! | fetch failed (first of a run) | `jwks_sync::refresh` | warn |
//! | fetches recovered: summary of the run | `jwks_sync::refresh` | info |
//! | serving a stale set while refreshes fail | `jwks_sync::health` | warn |
//! | set expired: refusing lookups | `jwks_sync::health` | error |
//! | serving a fresh set again | `jwks_sync::health` | info |
//!
//! Every line starts with `source=<name>`. Kids are escaped and truncated
//! ([`escape_kid`]); no line carries a token or key material.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::{labels, HEALTH, REFRESH};
use crate::event::{RefreshEvent, RefreshOutcome};
use crate::keyset::{Freshness, KeySet};
use crate::stats::Board;

/// Kids listed per log line; the rest are counted.
const KIDS_LISTED: usize = 10;

/// What has been logged, so each event is logged once.
#[derive(Default)]
pub(crate) struct LogState {
    /// The current run of failed fetches.
    streak: Option<Streak>,
    /// The serving trouble last logged, and since when.
    serving: Option<(Serving, Instant)>,
}

struct Streak {
    failures: u32,
    since: Instant,
    last: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    Stale,
    Expired,
}

impl LogState {
    /// Logs what a fetch changed; returns when the current failure run
    /// began (`None` after a success).
    pub(crate) fn on_fetch(
        &mut self,
        name: &str,
        event: &RefreshEvent,
        previous: &KeySet,
        current: &KeySet,
        at: Instant,
    ) -> Option<Instant> {
        match &event.outcome {
            RefreshOutcome::Failed {
                error,
                consecutive_failures,
                retry_in,
            } => {
                let class = labels::failure(error);
                match &mut self.streak {
                    Some(streak) => {
                        streak.failures = streak.failures.saturating_add(1);
                        streak.last = class;
                        log::debug!(target: REFRESH, "source={name} fetch failed again ({class}, {consecutive_failures} in a row): {}", crate::error::chain(error));
                    }
                    None => {
                        self.streak = Some(Streak {
                            failures: 1,
                            since: at,
                            last: class,
                        });
                        let serving = match current.generation() {
                            0 => "no key set loaded yet".to_owned(),
                            g => format!("generation {g} stays in service"),
                        };
                        log::warn!(
                            target: REFRESH,
                            "source={name} fetch failed ({class}): {}; {serving}; next attempt in {}",
                            crate::error::chain(error),
                            seconds(*retry_in)
                        );
                    }
                }
            }
            RefreshOutcome::Updated {
                generation,
                added,
                removed,
                skipped,
                ..
            } => {
                self.recovered(name, at);
                if previous.generation() == 0 {
                    log::info!(
                        target: REFRESH,
                        "source={name} first key set published: generation {generation}, {} keys [{}], {skipped} entries skipped",
                        current.keys().len(),
                        kid_list(current.keys().iter().filter_map(|k| k.kid()))
                    );
                } else if !added.is_empty() || !removed.is_empty() {
                    log::info!(
                        target: REFRESH,
                        "source={name} key rotation: generation {generation}, added [{}], removed [{}], {} keys",
                        kid_list(added.iter().map(String::as_str)),
                        kid_list(removed.iter().map(String::as_str)),
                        current.keys().len()
                    );
                } else {
                    log::debug!(target: REFRESH, "source={name} key set refetched: generation {generation}, same kids");
                }
            }
            RefreshOutcome::NotModified { .. } => {
                self.recovered(name, at);
                log::debug!(target: REFRESH, "source={name} key set not modified");
            }
        }
        self.streak.as_ref().map(|s| s.since)
    }

    fn recovered(&mut self, name: &str, at: Instant) {
        if let Some(streak) = self.streak.take() {
            log::info!(
                target: REFRESH,
                "source={name} fetch recovered after {} failed attempts over {} (last failure: {})",
                streak.failures,
                seconds(Some(at.saturating_duration_since(streak.since))),
                streak.last
            );
        }
    }

    /// Logs serving transitions: stale while failing (warn, once), expired
    /// (error, once), fresh again (info).
    pub(crate) fn on_round(
        &mut self,
        name: &str,
        freshness: Freshness,
        board: &mut Board,
        now: Instant,
    ) {
        let serving = self.serving.map(|(s, _)| s);
        match freshness {
            Freshness::Stale if board.failures > 0 && serving.is_none() => {
                board.stale_episodes += 1;
                self.serving = Some((Serving::Stale, now));
                let left = board.expires_at.map(|t| t.saturating_duration_since(now));
                log::warn!(
                    target: HEALTH,
                    "source={name} serving a stale key set: past its lifetime and {} refreshes failed; lookups will be refused in {} unless one succeeds",
                    board.failures,
                    seconds(left)
                );
            }
            Freshness::Expired if serving != Some(Serving::Expired) => {
                self.serving = Some((Serving::Expired, now));
                log::error!(
                    target: HEALTH,
                    "source={name} key set expired: refusing lookups until a refresh succeeds ({} refreshes failed in a row)",
                    board.failures
                );
            }
            Freshness::Fresh | Freshness::Due => {
                if let Some((_, since)) = self.serving.take() {
                    log::info!(
                        target: HEALTH,
                        "source={name} serving a fresh key set again, after {} stale or expired",
                        seconds(Some(now.saturating_duration_since(since)))
                    );
                }
            }
            _ => {}
        }
    }
}

/// `kid` made safe for a log line: [`printable`](crate::printable) (control,
/// bidi and invisible characters escaped, at most 64 characters kept, then
/// `…`), with quotes escaped too since log lines quote kids.
pub(crate) fn escape_kid(kid: &str) -> String {
    crate::printable(kid).to_string().replace('"', "\\\"")
}

/// `"a", "b", … and 3 more`.
fn kid_list<'a>(kids: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    let mut more = 0usize;
    for (i, kid) in kids.enumerate() {
        if i >= KIDS_LISTED {
            more += 1;
            continue;
        }
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{}\"", escape_kid(kid));
    }
    if more > 0 {
        let _ = write!(out, " and {more} more");
    }
    out
}

fn seconds(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.1}s", d.as_secs_f64()),
        None => "an unknown time".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_are_escaped_and_truncated() {
        assert_eq!(escape_kid("k-1"), "k-1");
        assert_eq!(escape_kid("a\"b\nc\u{1b}"), "a\\\"b\\u{a}c\\u{1b}");
        let long = "x".repeat(100);
        assert_eq!(escape_kid(&long), format!("{}…", "x".repeat(64)));
    }

    #[test]
    fn kid_lists_are_capped() {
        let kids: Vec<String> = (0..13).map(|i| format!("k{i}")).collect();
        let listed = kid_list(kids.iter().map(String::as_str));
        assert!(listed.starts_with("\"k0\", \"k1\""));
        assert!(listed.ends_with("\"k9\" and 3 more"), "{listed}");
    }
}
