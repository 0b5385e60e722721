//! Lookup by kid: jwks-sync's `with_key` next to the obvious baselines,
//! uncontended and under noise, plus 1- vs 2-thread throughput.
//!
//! `cargo bench --bench lookup`; the issue-13 table (group `lookup`, side by
//! side, and the paired scaling) comes from `benches/report.sh`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::JwksCache;

/// The same FxHash the crate uses (rustc-hash), so baselines differ only
/// in how they share the map.
type Map = HashMap<String, Arc<u64>, rustc_hash::FxBuildHasher>;

fn kids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("key-{i:04}")).collect()
}

fn map(n: usize) -> Map {
    kids(n)
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, Arc::new(i as u64)))
        .collect()
}

/// Something that can look a kid up and publish a new set.
trait Subject: Send + Sync + 'static {
    fn lookup(&self, kid: &str) -> bool;
    fn publish(&self);
}

struct Cache(JwksCache);
impl Subject for Cache {
    #[inline]
    fn lookup(&self, kid: &str) -> bool {
        // Like the baselines: hand the found key to black_box, read nothing.
        self.0
            .with_key(kid, |k| {
                black_box(k);
            })
            .is_ok()
    }
    fn publish(&self) {
        let _ = self.0.refresh_now();
    }
}

struct BareArcSwap(ArcSwap<Map>, usize);
impl Subject for BareArcSwap {
    #[inline]
    fn lookup(&self, kid: &str) -> bool {
        self.0.load().get(kid).map(black_box).is_some()
    }
    fn publish(&self) {
        self.0.store(Arc::new(map(self.1)));
    }
}

struct PlRwLock(parking_lot::RwLock<Map>, usize);
impl Subject for PlRwLock {
    #[inline]
    fn lookup(&self, kid: &str) -> bool {
        self.0.read().get(kid).map(black_box).is_some()
    }
    fn publish(&self) {
        let fresh = map(self.1);
        *self.0.write() = fresh;
    }
}

struct StdRwLock(RwLock<Map>, usize);
impl Subject for StdRwLock {
    #[inline]
    fn lookup(&self, kid: &str) -> bool {
        self.0
            .read()
            .map(|m| m.get(kid).map(black_box).is_some())
            .unwrap_or(false)
    }
    fn publish(&self) {
        let fresh = map(self.1);
        if let Ok(mut m) = self.0.write() {
            *m = fresh;
        }
    }
}

struct StdMutex(Mutex<Map>, usize);
impl Subject for StdMutex {
    #[inline]
    fn lookup(&self, kid: &str) -> bool {
        self.0
            .lock()
            .map(|m| m.get(kid).map(black_box).is_some())
            .unwrap_or(false)
    }
    fn publish(&self) {
        let fresh = map(self.1);
        if let Ok(mut m) = self.0.lock() {
            *m = fresh;
        }
    }
}

fn subjects(n: usize) -> Vec<(&'static str, Arc<dyn Subject>)> {
    let keys: Vec<TestKey> = kids(n)
        .iter()
        .map(|k| TestKey::generate(KeyAlg::Es256, k).expect("keygen"))
        .collect();
    let refs: Vec<&TestKey> = keys.iter().collect();
    let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&refs)))
        .max_keys(n)
        .build()
        .expect("valid");
    cache.wait_ready(Duration::from_secs(30)).expect("loads");
    vec![
        (
            "jwks-sync with_key",
            Arc::new(Cache(cache)) as Arc<dyn Subject>,
        ),
        (
            "bare ArcSwap + FxHashMap",
            Arc::new(BareArcSwap(ArcSwap::from_pointee(map(n)), n)),
        ),
        (
            "parking_lot RwLock<HashMap>",
            Arc::new(PlRwLock(parking_lot::RwLock::new(map(n)), n)),
        ),
        (
            "std RwLock<HashMap>",
            Arc::new(StdRwLock(RwLock::new(map(n)), n)),
        ),
        (
            "std Mutex<HashMap>",
            Arc::new(StdMutex(Mutex::new(map(n)), n)),
        ),
    ]
}

#[derive(Clone, Copy)]
enum Noise {
    None,
    Reader,
    Publisher,
}

/// Runs `noise` against `subject` on a background thread until dropped.
struct NoiseThread {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl NoiseThread {
    fn start(noise: Noise, subject: Arc<dyn Subject>, kid: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = match noise {
            Noise::None => None,
            Noise::Reader => Some(thread::spawn(move || {
                // Relaxed: a stop flag; nothing else is published through it.
                while !flag.load(Ordering::Relaxed) {
                    for _ in 0..1000 {
                        black_box(subject.lookup(&kid));
                    }
                }
            })),
            Noise::Publisher => Some(thread::spawn(move || {
                // Relaxed: a stop flag.
                while !flag.load(Ordering::Relaxed) {
                    subject.publish();
                    thread::sleep(Duration::from_millis(1));
                }
            })),
        };
        Self { stop, handle }
    }
}

impl Drop for NoiseThread {
    fn drop(&mut self) {
        // Relaxed: a stop flag.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// `n` kids (`key-0000` ...) in one contiguous string, so that cycling
/// through them costs the same memory traffic at 4 and at 10,000 keys: the
/// difference measured is the subject's.
struct Kids {
    text: String,
    ends: Vec<usize>,
}

impl Kids {
    fn new(prefix: &str, n: usize) -> Self {
        let mut text = String::new();
        let ends = (0..n)
            .map(|i| {
                text.push_str(&format!("{prefix}-{i:04}"));
                text.len()
            })
            .collect();
        Self { text, ends }
    }
    fn all(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let kid = &self.text[start..end];
                start = end;
                kid
            })
            .collect()
    }
}

/// Looks the kids up in turn, one per iteration.
fn cycle<'a>(kids: &'a [&'a str]) -> impl FnMut() -> &'a str + 'a {
    let mut i = 0;
    move || {
        i += 1;
        if i == kids.len() {
            i = 0;
        }
        kids[i]
    }
}

/// A cache over `n` ES256 keys named as `kids(n)`.
fn cache_of(n: usize) -> JwksCache {
    let keys: Vec<TestKey> = kids(n)
        .iter()
        .map(|k| TestKey::generate(KeyAlg::Es256, k).expect("keygen"))
        .collect();
    let refs: Vec<&TestKey> = keys.iter().collect();
    let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&refs)))
        .max_keys(n)
        .max_document_bytes(64 << 20)
        .build()
        .expect("valid");
    cache.wait_ready(Duration::from_secs(60)).expect("loads");
    cache
}

/// Issue 13, side by side in one group: a hit at 4 / 64 / 1,000 / 10,000
/// keys next to a bare `ArcSwap::load` + the same FxHash map lookup, and a
/// miss (unknown kids, cycled the same way) next to the hits. Every subject
/// cycles through its kids uniformly.
fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [4usize, 64, 1000, 10_000] {
        let cache = Cache(cache_of(n));
        let bare = BareArcSwap(ArcSwap::from_pointee(map(n)), n);
        let known = Kids::new("key", n);
        let unknown = Kids::new("nope", n);
        let (known, unknown) = (known.all(), unknown.all());
        // One miss first: it closes the unknown-kid gate for the cooldown
        // (30 s), as the first kid of a flood would.
        let _ = cache.lookup("nope");
        group.bench_function(BenchmarkId::new("bare ArcSwap + FxHashMap hit", n), |b| {
            let mut next = cycle(&known);
            b.iter(|| bare.lookup(black_box(next())))
        });
        group.bench_function(BenchmarkId::new("jwks-sync hit", n), |b| {
            let mut next = cycle(&known);
            b.iter(|| cache.lookup(black_box(next())))
        });
        group.bench_function(BenchmarkId::new("jwks-sync miss", n), |b| {
            let mut next = cycle(&unknown);
            b.iter(|| cache.lookup(black_box(next())))
        });
    }
    group.finish();
}

fn hit(c: &mut Criterion) {
    for n in [4usize, 64] {
        let subjects = subjects(n);
        let kid = kids(n)[n / 2].clone();
        for (noise, label) in [
            (Noise::None, "uncontended"),
            (Noise::Reader, "with a 2nd reader"),
            (Noise::Publisher, "with a publisher every 1ms"),
        ] {
            let mut group = c.benchmark_group(format!("hit/{n} keys/{label}"));
            for (name, subject) in &subjects {
                let _noise = NoiseThread::start(noise, Arc::clone(subject), kid.clone());
                group.bench_function(*name, |b| b.iter(|| subject.lookup(black_box(&kid))));
            }
            group.finish();
        }
    }
}

/// Total throughput of `threads` readers each doing `iters` lookups.
fn parallel(subject: &Arc<dyn Subject>, kid: &str, threads: usize, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let subject = Arc::clone(subject);
            let barrier = Arc::clone(&barrier);
            let kid = kid.to_owned();
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    black_box(subject.lookup(black_box(&kid)));
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    start.elapsed()
}

fn scaling(c: &mut Criterion) {
    let subjects = subjects(4);
    let kid = kids(4)[2].clone();
    let mut group = c.benchmark_group("scaling/4 keys");
    for (name, subject) in &subjects {
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            group.bench_with_input(BenchmarkId::new(*name, threads), &threads, |b, &t| {
                b.iter_custom(|iters| parallel(subject, &kid, t, iters))
            });
        }
    }
    group.finish();
}

/// Lookups per second of `threads` readers over `span`, each cycling
/// through `kids` and stopping at a shared flag (read once per 1024 lookups).
fn rate(subject: &Arc<dyn Subject>, kids: &[String], threads: usize, span: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (subject, stop, barrier) =
                (Arc::clone(subject), Arc::clone(&stop), Arc::clone(&barrier));
            let kids = kids.to_vec();
            thread::spawn(move || {
                let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
                let mut next = cycle(&kids);
                barrier.wait();
                let mut n = 0u64;
                // Relaxed: a stop flag.
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        black_box(subject.lookup(black_box(next())));
                    }
                    n += 1024;
                }
                n
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    thread::sleep(span);
    // Relaxed: a stop flag.
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// Two readers against one, paired, for hits and for misses (unknown kids):
/// 1-thread and 2-thread runs of 100 ms alternate 21 times (or
/// `JWKS_SYNC_PAIRS`) and the median of the ratios is printed. On a
/// shared VM the criterion `scaling` rows are measured minutes apart and
/// drift with the host's load (the bare baseline read 1.4x in one run and
/// 2.5x in the next); pairing cancels that drift.
///
/// Runs after the criterion groups, unless a filter is given that does not
/// name "scaling" or "paired" (and `JWKS_SYNC_PAIRED=1` is not set), or
/// criterion is only listing or testing.
fn paired_scaling() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let with_value = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--noise-threshold",
        "--significance-level",
        "--confidence-level",
        "--nresamples",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--format",
        "--logfile",
    ];
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if with_value.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            filters.push(a.as_str());
        }
    }
    let forced = std::env::var_os("JWKS_SYNC_PAIRED").is_some_and(|v| v == "1");
    if !forced
        && !filters.is_empty()
        && !filters
            .iter()
            .any(|f| f.contains("scaling") || f.contains("paired"))
    {
        return;
    }
    let pairs: usize = std::env::var("JWKS_SYNC_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&p| p > 0)
        .unwrap_or(21);
    let subjects = subjects(4);
    let known = kids(4);
    let unknown: Vec<String> = (0..4).map(|i| format!("nope-{i:04}")).collect();
    println!(
        "scaling/4 keys/paired: 2 threads / 1 thread, median of {pairs} interleaved 100 ms pairs"
    );
    for (name, subject) in &subjects {
        // The first miss closes the unknown-kid gate, as in a flood.
        subject.lookup("nope");
        let ops: &[(&str, &[String])] = if name.starts_with("jwks-sync") {
            &[("hit", &known), ("miss", &unknown)]
        } else {
            &[("hit", &known)]
        };
        for (op, kids) in ops {
            let mut ratios: Vec<f64> = (0..pairs)
                .map(|_| {
                    let one = rate(subject, kids, 1, Duration::from_millis(100));
                    let two = rate(subject, kids, 2, Duration::from_millis(100));
                    two / one
                })
                .collect();
            ratios.sort_by(f64::total_cmp);
            println!(
                "  {op:<4} {name:<30} {:.2}x  (quartiles {:.2}x .. {:.2}x)",
                ratios[pairs / 2],
                ratios[pairs / 4],
                ratios[pairs * 3 / 4]
            );
        }
    }
}

criterion_group!(benches, lookup, hit, scaling);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    paired_scaling();
}
