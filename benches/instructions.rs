//! Instruction counts of one lookup, for `valgrind --tool=callgrind`:
//! repeatable where wall-clock timings on a shared VM are not.
//!
//! `benches/report.sh` runs, for each subject and key count,
//! `valgrind --tool=callgrind --toggle-collect=instructions::timed_lookups <this> <subject> <n>`
//! and divides the instructions counted inside `timed_lookups` by the lookups.
//! Subjects: `bare` (`ArcSwap::load` + FxHashMap), `hit`, `miss` (jwks-sync
//! `with_key`). Without valgrind it just runs the lookups.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::JwksCache;

/// Lookups measured per run.
const LOOKUPS: usize = 100_000;

type Map = HashMap<String, Arc<u64>, rustc_hash::FxBuildHasher>;

/// A named lookup and the kids it cycles through.
type Subject<'a> = (&'a str, &'a dyn Fn(&str) -> bool, &'a [&'a str]);

fn kids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

/// The measured loop: `LOOKUPS` lookups cycling through `kids`.
#[inline(never)]
fn timed_lookups(lookup: &dyn Fn(&str) -> bool, kids: &[&str]) -> usize {
    let mut found = 0;
    let mut i = 0;
    for _ in 0..LOOKUPS {
        i += 1;
        if i == kids.len() {
            i = 0;
        }
        found += usize::from(lookup(black_box(kids[i])));
    }
    found
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`: nothing to do then.
    let (Some(subject), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: instructions bare|hit|miss N");
        return;
    };
    let n: usize = n;
    if subject == "time" {
        time_all(n);
        return;
    }
    let known = kids("key", n);
    let unknown = kids("nope", n);
    let found = match subject.as_str() {
        "bare" => {
            let map: Map = known
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), Arc::new(i as u64)))
                .collect();
            let swap = ArcSwap::from_pointee(map);
            let kids: Vec<&str> = known.iter().map(String::as_str).collect();
            let lookup = |kid: &str| swap.load().get(kid).map(black_box).is_some();
            lookup(kids[0]);
            timed_lookups(&lookup, &kids)
        }
        "hit" | "miss" => {
            let cache = cache_of(&known);
            let lookup = |kid: &str| {
                cache
                    .with_key(kid, |k| {
                        black_box(k);
                    })
                    .is_ok()
            };
            // Warm: the thread's snapshot, and the gate closed by a miss.
            lookup("nope");
            lookup(&known[0]);
            let source = if subject == "hit" { &known } else { &unknown };
            let kids: Vec<&str> = source.iter().map(String::as_str).collect();
            timed_lookups(&lookup, &kids)
        }
        other => {
            eprintln!("unknown subject {other}");
            return;
        }
    };
    println!("{subject} {n}: {found} of {LOOKUPS} found");
}

fn cache_of(known: &[String]) -> JwksCache {
    let keys: Vec<TestKey> = known
        .iter()
        .map(|k| TestKey::generate(KeyAlg::Es256, k).expect("keygen"))
        .collect();
    let refs: Vec<&TestKey> = keys.iter().collect();
    let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&refs)))
        .max_keys(known.len())
        .max_document_bytes(64 << 20)
        .build()
        .expect("valid");
    cache.wait_ready(Duration::from_secs(600)).expect("loads");
    cache
}

/// `time N`: wall-clock nanoseconds per lookup, the best of 15 interleaved
/// rounds per subject (the minimum resists a busy machine's noise), with
/// the floor of any shared design beside them: the same FxHashMap lookup
/// with no sharing at all.
fn time_all(n: usize) {
    let known = kids("key", n);
    let unknown = kids("nope", n);
    let map: Map = known
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), Arc::new(i as u64)))
        .collect();
    let swap = ArcSwap::from_pointee(map);
    let cache = cache_of(&known);
    let plain: Map = known
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), Arc::new(i as u64)))
        .collect();
    // The floor: the same map, not shared at all (no load of any kind).
    let map = |kid: &str| plain.get(kid).map(black_box).is_some();
    let bare = |kid: &str| swap.load().get(kid).map(black_box).is_some();
    let hit = |kid: &str| {
        cache
            .with_key(kid, |k| {
                black_box(k);
            })
            .is_ok()
    };
    hit("nope");
    let k: Vec<&str> = known.iter().map(String::as_str).collect();
    let u: Vec<&str> = unknown.iter().map(String::as_str).collect();
    let subjects: [Subject<'_>; 4] = [
        ("plain &FxHashMap", &map, &k),
        ("bare ArcSwap + FxHashMap", &bare, &k),
        ("jwks-sync hit", &hit, &k),
        ("jwks-sync miss", &hit, &u),
    ];
    let mut best = [f64::MAX; 4];
    for _ in 0..15 {
        for (i, (_, f, kids)) in subjects.iter().enumerate() {
            let start = std::time::Instant::now();
            black_box(timed_lookups(*f, kids));
            let ns = start.elapsed().as_nanos() as f64 / LOOKUPS as f64;
            best[i] = best[i].min(ns);
        }
    }
    for (i, (name, _, _)) in subjects.iter().enumerate() {
        println!("{n} keys {name}: {:.1} ns", best[i]);
    }
    println!(
        "hit / bare {:.2}, plain map / bare {:.2}, miss / hit {:.2}",
        best[2] / best[1],
        best[0] / best[1],
        best[3] / best[2]
    );
}
