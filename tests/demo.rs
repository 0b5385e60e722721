//! `jwks demo --json`, run as CI runs it, and its promises checked.
//!
//! A binary of its own: the demo keeps both cores busy for its whole run, and
//! cargo runs test binaries one after another, so it never shares the machine
//! with the timing-sensitive CLI tests (`watch`).

use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

/// One demo at a time: each keeps the cores busy, and the JSON test's
/// timing bounds assume it runs alone.
static ONE_DEMO: Mutex<()> = Mutex::new(());

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_json_summary_holds_its_promises() {
    let _alone = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let secs = 10.0;
    let out = Command::new(env!("CARGO_BIN_EXE_jwks"))
        .args(["demo", "--duration", "10", "--threads", "3", "--json"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sum: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    let n = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));

    let verifications = &sum["verifications"];
    assert!(n(&verifications["total"]) > 1000.0, "{verifications}");
    assert_eq!(n(&verifications["valid_rejected"]), 0.0, "{verifications}");
    assert!(sum["hard_failure_window"].is_null());

    for rotation in sum["rotations"].as_array().expect("rotations") {
        let after = n(&rotation["picked_up_after_ms"]);
        // The new kid verifies within one unknown-kid fetch or one lifetime.
        assert!(after < 2000.0, "{rotation}");
    }

    // Fetch bounds, recomputed here from the reported settings.
    let s = &sum["settings"];
    let fetches = &sum["fetches"];
    let lifetime = n(&s["max_age_secs"]).max(n(&s["min_ttl_secs"]));
    let outage = n(&sum["outage"]["end_secs"]) - n(&sum["outage"]["start_secs"]);
    let bounds = [
        ("initial", 1.0),
        (
            "scheduled",
            (secs / (lifetime * n(&s["background_threshold"]))).floor() + 1.0,
        ),
        (
            "usage",
            (secs / n(&s["min_refresh_interval_secs"])).floor() + 1.0,
        ),
        (
            "unknown_kid",
            (secs / n(&s["unknown_kid_cooldown_secs"])).floor() + 1.0,
        ),
        (
            "retry",
            (outage / n(&s["outage_retry_after_secs"])).floor() + 2.0,
        ),
        ("manual", 0.0),
        ("due", 0.0),
    ];
    for (cause, bound) in bounds {
        let count = n(&fetches["by_cause"][cause]);
        assert!(count <= bound, "{cause}: {count} > {bound} in {fetches}");
    }
    assert!(n(&fetches["by_cause"]["scheduled"]) >= 3.0, "{fetches}");
    assert!(
        n(&fetches["by_cause"]["retry"]) >= 1.0,
        "the outage was noticed: {fetches}"
    );
    assert_eq!(
        n(&fetches["total"]),
        n(&fetches["idp_requests"]),
        "{fetches}"
    );

    assert!(
        n(&sum["outage"]["served_stale"]) > 0.0,
        "stale serving: {}",
        sum["outage"]
    );
    assert!(n(&sum["lookups"]["hit_rate"]) > 0.99, "{}", sum["lookups"]);
    assert_eq!(
        sum["verdict"]["pass"],
        Value::Bool(true),
        "{}",
        sum["verdict"]
    );
}

#[test]
fn demo_text_shows_progress_off_a_terminal_and_ends_with_a_verdict() {
    let _alone = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    // stderr is a pipe here, as in CI logs: plain progress lines, not silence
    // and not a line redrawn with carriage returns.
    let out = Command::new(env!("CARGO_BIN_EXE_jwks"))
        .args(["demo", "--duration", "6", "--threads", "1"])
        .output()
        .expect("the binary runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert!(progress.len() >= 2, "periodic lines: {stderr:?}");
    assert!(!stderr.contains(['\r', '\u{1b}']), "{stderr:?}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("verdict         PASS"), "{stdout}");
}

#[test]
fn multi_tenant_demo_runs_every_tenant_on_one_scheduler_within_bounds() {
    let _alone = ONE_DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_jwks"))
        .args([
            "demo",
            "--tenants",
            "100",
            "--duration",
            "10",
            "--threads",
            "2",
            "--json",
        ])
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let sum: Value = serde_json::from_slice(&out.stdout).expect("json summary");
    let n = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!(sum["tenants"], 100);

    // One scheduler and the fetch pool, whatever the number of tenants.
    let threads = &sum["threads"];
    let pool = n(&sum["settings"]["fetch_threads"]);
    assert!(n(&threads["library"]) >= 1.0, "{threads}");
    assert!(n(&threads["library"]) <= pool + 1.0, "{threads}");

    let v = &sum["verifications"];
    assert!(n(&v["ok"]) > 1000.0, "{v}");
    assert_eq!(n(&v["valid_rejected"]), 0.0, "{v}");

    // Fetch bounds per tenant, recomputed from the reported settings: a
    // background refresh comes between 0.8 and 0.9 of a lifetime after the
    // last fetch; one rotation fetch and the outage's retries on top.
    let s = &sum["settings"];
    let (lifetime, theta) = (n(&s["max_age_s"]), n(&s["background_threshold"]));
    let (secs, span) = (n(&sum["duration_s"]), n(&sum["registered_for_s"]));
    let f = &sum["fetches"];
    let per = &f["per_source"];
    let low = (secs / (0.9 * lifetime + 0.25)).floor().max(1.0) - 1.0;
    assert!(n(&per["min"]) >= low, "min {} < {low}: {f}", per["min"]);
    let high = 2.0 + (span / (theta * lifetime)).ceil() + 1.0;
    let outage = &sum["outage"];
    let retries = 1.0 + (0.3 * secs / n(&s["retry_after_s"])).ceil();
    assert!(
        n(&per["max"]) <= high + retries,
        "max {} > {high} + {retries}: {f}",
        per["max"]
    );
    assert!(n(&outage["fetches"]) <= high + retries, "{outage}");
    assert_eq!(f["out_of_bounds"], Value::Array(Vec::new()), "{f}");
    assert_eq!(n(&f["total"]), n(&f["idp_requests"]), "{f}");
    assert_eq!(n(&f["sources_where_cache_and_idp_disagree"]), 0.0, "{f}");

    // Rotations picked up; the failing tenant served from its stale set
    // while the others kept refreshing.
    let r = &sum["rotations"];
    assert_eq!(r["picked_up"], r["tenants"], "{r}");
    assert!(n(&r["tenants"]) >= 10.0, "{r}");
    assert!(n(&outage["failed_fetches"]) >= 1.0, "{outage}");
    assert!(n(&outage["verified_during_outage"]) > 0.0, "{outage}");
    assert_eq!(sum["verdict"], "PASS", "{}", sum["failures"]);
}
