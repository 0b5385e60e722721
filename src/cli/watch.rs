//! `jwks watch <url>`: the cache runs as a service would run it, and every
//! fetch the refresher makes is printed as it finishes, until interrupted.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwks_sync::{RefreshEvent, RefreshOutcome};
use serde_json::json;

use super::args::{HttpArgs, RefreshArgs};
use super::exit::{Failure, Outcome};
use super::source::Source;
use super::text::{chain, human_duration, snake};

/// Runs the command; returns only on a usage error (the watch itself ends
/// with the process, on Ctrl-C or a signal).
pub(crate) fn run(source: &str, json_out: bool, http: &HttpArgs, refresh: &RefreshArgs) -> Outcome {
    let builder = Source::parse(source).builder(http, refresh)?;
    let cache = builder
        .on_refresh(move |event| print_event(event, json_out))
        .build()
        .map_err(Failure::usage)?;
    if !json_out {
        println!("{} watching {source} (Ctrl-C to stop)", clock());
    }
    // The refresher thread does the work; keep the handle alive.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
        let _ = cache.status();
    }
}

fn print_event(event: &RefreshEvent, json_out: bool) {
    let line = if json_out {
        json_line(event)
    } else {
        text_line(event)
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

fn json_line(event: &RefreshEvent) -> String {
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
    out.to_string()
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
