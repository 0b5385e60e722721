//! The multi-tenant demo's verdict and its text, read back from the JSON
//! summary alone (so the two can never disagree with `--json`).

use serde_json::Value;

use super::super::report::thousands;

/// The broken promises; empty on a PASS.
pub(super) fn failures(summary: &Value) -> Vec<String> {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let mut out = Vec::new();
    let v = &summary["verifications"];
    if n(&v["valid_rejected"]) > 0 {
        out.push(format!(
            "{} valid tokens rejected (first: {})",
            n(&v["valid_rejected"]),
            v["first_error"]
        ));
    }
    if n(&v["ok"]) == 0 {
        out.push("no token verified".to_owned());
    }
    let t = &summary["threads"];
    if n(&t["library"]) > n(&t["limit"]) {
        out.push(format!(
            "{} library threads for {} tenants (limit {})",
            n(&t["library"]),
            summary["tenants"],
            n(&t["limit"])
        ));
    }
    let f = &summary["fetches"];
    if let Some(bad) = f["out_of_bounds"].as_array().filter(|b| !b.is_empty()) {
        out.push(format!(
            "{} tenants fetched outside their bounds: {}",
            bad.len(),
            bad[0]
        ));
    }
    if n(&f["sources_where_cache_and_idp_disagree"]) > 0 {
        out.push("the cache's fetch counts and the IdP's request counts disagree".to_owned());
    }
    let r = &summary["rotations"];
    if n(&r["picked_up"]) < n(&r["tenants"]) {
        out.push(format!(
            "{} of {} rotations picked up",
            n(&r["picked_up"]),
            n(&r["tenants"])
        ));
    }
    if let Some(o) = summary["outage"].as_object() {
        if o.get("verified_during_outage").map_or(0, n) == 0 {
            out.push("no token of the failing tenant verified during its outage".to_owned());
        }
    }
    out
}

/// The summary for a terminal.
pub(super) fn text(summary: &Value) -> String {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let v = &summary["verifications"];
    let f = &summary["fetches"];
    let p = &f["per_source"];
    let t = &summary["threads"];
    let r = &summary["rotations"];
    let mut out = format!(
        "\njwks demo --tenants {}: {} s\n\
         threads: {} in the library (1 scheduler + {} fetch pool) for {} tenants; {} in the process\n\
         verified: {} tokens ({}/s; p50 {:.0} us, p99 {:.0} us), {} valid rejected, {} of retired keys in flight\n\
         fetches: {} (= {} IdP requests); per tenant min {} / median {} / max {}, bounds {}..={} (+1 rotating, + retries for the outage)\n\
         rotations: {} of {} picked up (median {:.1} ms, max {:.1} ms after the switch)\n",
        summary["tenants"],
        summary["duration_s"].as_f64().map_or(0.0, |d| d.round()),
        n(&t["library"]),
        n(&summary["settings"]["fetch_threads"]),
        summary["tenants"],
        n(&t["process"]),
        thousands(n(&v["total"])),
        thousands(v["per_second"].as_f64().unwrap_or(0.0) as u64),
        v["p50_us"].as_f64().unwrap_or(0.0),
        v["p99_us"].as_f64().unwrap_or(0.0),
        n(&v["valid_rejected"]),
        n(&v["retired_key_in_flight"]),
        n(&f["total"]),
        n(&f["idp_requests"]),
        n(&p["min"]),
        n(&p["median"]),
        n(&p["max"]),
        n(&p["bound_low"]),
        n(&p["bound_high"]),
        n(&r["picked_up"]),
        n(&r["tenants"]),
        r["picked_up_after_ms"]["median"].as_f64().unwrap_or(f64::NAN),
        r["picked_up_after_ms"]["max"].as_f64().unwrap_or(f64::NAN),
    );
    if let Some(o) = summary["outage"].as_object() {
        let get = |k: &str| o.get(k).map_or(0, n);
        out += &format!(
            "outage: tenant {} failed {} fetches, made {} (bound {}), and served {} verifications from its stale set\n",
            get("tenant"),
            get("failed_fetches"),
            get("fetches"),
            get("bound_high"),
            thousands(get("verified_during_outage")),
        );
    }
    out += &format!("verdict: {}", summary["verdict"].as_str().unwrap_or("?"));
    if let Some(list) = summary["failures"].as_array().filter(|l| !l.is_empty()) {
        out += &format!(
            " ({})",
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    out.push('\n');
    out
}
