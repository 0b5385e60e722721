//! Hit lookup by kid: jwks-sync's `with_key` next to the obvious baselines,
//! uncontended and under noise, plus 1- vs 2-thread throughput.
//!
//! `cargo bench --bench lookup`

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
use jwks_sync::JwksCache;

/// The same FxHash the crate uses, so baselines differ only in how they
/// share the map.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<String, Arc<u64>, BuildHasherDefault<Fx>>;

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
        self.0
            .with_key(kid, |k| black_box(k).kid().is_some())
            .unwrap_or(false)
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

criterion_group!(benches, hit, scaling);
criterion_main!(benches);
