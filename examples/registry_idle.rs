//! Memory per idle source and the scheduler's CPU while idle, for a
//! registry of many sources (Linux: reads `/proc/self`).
//!
//! `cargo run --release --example registry_idle --features testing -- [sources] [seconds]`
//! (defaults: 10000 sources, 60 seconds).

use std::time::Duration;

use jwks_sync::testing::{KeyAlg, MemorySource, TestKey};
use jwks_sync::Registry;

/// Resident set size, bytes (`VmRSS` of `/proc/self/status`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// utime + stime, in clock ticks, of this process's thread named `name`.
fn cpu_ticks(name: &str) -> Option<u64> {
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // Fields after the `(comm)`: state is field 3; utime, stime are 14, 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        return Some(utime + stime);
    }
    None
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let sources: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(60), |a| a.parse())?;
    let key = TestKey::generate(KeyAlg::Es256, "k1")?;
    let doc = serde_json::json!({ "keys": [key.jwk()] }).to_string();
    let registry = Registry::builder().thread_name("jwks-idle").build()?;
    // Warm up the allocator and the code paths with one source.
    let warm = registry.register(
        "warm-up",
        registry.source_from_fetcher(MemorySource::new(doc.clone())),
    )?;
    warm.wait_ready(Duration::from_secs(10))?;
    let before = rss();
    let mut handles = Vec::with_capacity(sources);
    for i in 0..sources {
        let source = MemorySource::new(doc.clone());
        handles
            .push(registry.register(format!("tenant-{i}"), registry.source_from_fetcher(source))?);
    }
    for cache in &handles {
        cache.wait_ready(Duration::from_secs(60))?;
    }
    let after = rss();
    println!(
        "sources: {sources}; RSS growth {} bytes: {} bytes per idle source \
         (set with one ES256 key, its document in the memory source, handle, scheduler slot)",
        after.saturating_sub(before),
        after.saturating_sub(before) / sources as u64
    );
    let start = cpu_ticks("jwks-idle").ok_or("scheduler thread not found")?;
    std::thread::sleep(Duration::from_secs(seconds));
    let end = cpu_ticks("jwks-idle").ok_or("scheduler thread not found")?;
    println!(
        "scheduler CPU over {seconds} s idle: {} clock ticks (utime+stime; 1 tick = 10 ms at USER_HZ 100)",
        end - start
    );
    drop(handles);
    drop(registry);
    Ok(())
}
