//! `jwks watch <url>`: the cache runs as a service would run it, and every
//! fetch the refresher makes is printed as it finishes, until interrupted.
//! A new set's skipped entries are listed with their reasons (kids escaped).

use std::io::Write as _;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwks_sync::{RefreshEvent, RefreshOutcome, SkippedKey};
use serde_json::json;

use super::args::{HttpArgs, RefreshArgs};
use super::exit::{Failure, Outcome};
use super::flags::name_flags;
use super::source::Source;
use super::text::{chain, human_duration, snake};

/// Runs the command; returns only on a usage error (the watch itself ends
/// with the process, on Ctrl-C or a signal).
pub(crate) fn run(
    source: &Source<'_>,
    json_out: bool,
    http: &HttpArgs,
    refresh: &RefreshArgs,
) -> Outcome {
    let builder = source.builder(http, refresh)?;
    // The hook runs on the refresher thread, after the set is published;
    // this thread prints, reading the published set's skipped entries.
    let (events, received) = mpsc::channel::<RefreshEvent>();
    let cache = builder
        .on_refresh(move |event| {
            let _ = events.send(event.clone());
        })
        .build()
        .map_err(Failure::usage)?;
    if !json_out {
        println!(
            "{} watching {} (Ctrl-C to stop)",
            clock(),
            source.describe()
        );
    }
    // Ends only if the refresher drops its hook (it never does while the
    // cache lives).
    for event in received {
        let skipped = match &event.outcome {
            RefreshOutcome::Updated { generation, .. } => {
                let set = cache.snapshot();
                // A later refresh may have published since: then its own
                // event lists its entries.
                if set.generation() == *generation {
                    set.skipped().to_vec()
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        print_event(&event, &skipped, json_out);
    }
    Ok(())
}

fn print_event(event: &RefreshEvent, skipped: &[SkippedKey], json_out: bool) {
    let line = if json_out {
        let mut out = json_line(event, skipped);
        // Library setting names in the error become the flags that set them.
        if let Some(serde_json::Value::String(error)) = out.get_mut("error") {
            *error = name_flags(error);
        }
        out.to_string()
    } else if matches!(event.outcome, RefreshOutcome::Failed { .. }) {
        // A failure line carries no kids: safe to rewrite setting names.
        name_flags(&text_line(event))
    } else {
        let mut text = text_line(event);
        for entry in skipped {
            text.push_str(&format!(
                "\n  skipped #{} kid {}: {}",
                entry.index,
                entry
                    .kid
                    .as_deref()
                    .map_or("-".to_owned(), |kid| format!("{kid:?}")),
                entry.reason
            ));
        }
        text
    };
    let mut out = std::io::stdout().lock();
    // A closed stdout (`jwks watch | head`) ends nothing here; the next
    // signal does.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Kids for the terminal, escaped by the library's one helper.
fn shown(kids: &[String]) -> String {
    let shown: Vec<String> = kids
        .iter()
        .map(|k| jwks_sync::printable(k).to_string())
        .collect();
    shown.join(", ")
}

fn text_line(event: &RefreshEvent) -> String {
    let took = human_duration(event.elapsed);
    let what = match &event.outcome {
        RefreshOutcome::Updated {
            generation,
            added,
            removed,
            skipped,
            lifetime,
        } => {
            let mut changes = Vec::new();
            if !added.is_empty() {
                changes.push(format!("added {}", shown(added)));
            }
            if !removed.is_empty() {
                changes.push(format!("removed {}", shown(removed)));
            }
            if changes.is_empty() {
                changes.push("kids unchanged".to_owned());
            }
            format!(
                "updated: generation {generation}, {}, {skipped} skipped, lifetime {}",
                changes.join(", "),
                human_duration(*lifetime)
            )
        }
        RefreshOutcome::NotModified { lifetime } => {
            format!(
                "not modified (304): lifetime renewed, {}",
                human_duration(*lifetime)
            )
        }
        RefreshOutcome::Failed {
            error,
            consecutive_failures,
            retry_in,
        } => format!(
            "failed ({consecutive_failures} in a row): {}; next retry {}",
            chain(error),
            retry_in.map_or("when asked".to_owned(), |d| format!(
                "in {}",
                human_duration(d)
            ))
        ),
        _ => "finished".to_owned(),
    };
    let cause = snake(&format!("{:?}", event.cause));
    format!("{} refresh ({cause}, {took}): {what}", clock())
}

fn json_line(event: &RefreshEvent, skipped_entries: &[SkippedKey]) -> serde_json::Value {
    let cause = snake(&format!("{:?}", event.cause));
    let mut out = json!({
        "time": clock(),
        "cause": cause,
        "elapsed_ms": event.elapsed.as_secs_f64() * 1000.0,
    });
    match &event.outcome {
        RefreshOutcome::Updated {
            generation,
            added,
            removed,
            skipped,
            lifetime,
        } => {
            out["outcome"] = json!("updated");
            out["generation"] = json!(generation);
            out["added"] = json!(added);
            out["removed"] = json!(removed);
            out["skipped"] = json!(skipped);
            out["skipped_entries"] = skipped_entries
                .iter()
                .map(|e| json!({"index": e.index, "kid": e.kid, "reason": e.reason.to_string()}))
                .collect::<Vec<_>>()
                .into();
            out["lifetime_secs"] = json!(lifetime.as_secs_f64());
        }
        RefreshOutcome::NotModified { lifetime } => {
            out["outcome"] = json!("not_modified");
            out["lifetime_secs"] = json!(lifetime.as_secs_f64());
        }
        RefreshOutcome::Failed {
            error,
            consecutive_failures,
            retry_in,
        } => {
            out["outcome"] = json!("failed");
            out["error"] = json!(chain(error));
            out["consecutive_failures"] = json!(consecutive_failures);
            out["retry_in_secs"] = json!(retry_in.map(|d| d.as_secs_f64()));
        }
        _ => out["outcome"] = json!("other"),
    }
    out
}

/// The wall-clock time of day, UTC, `HH:MM:SS.mmm`.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = now.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        now.subsec_millis()
    )
}
