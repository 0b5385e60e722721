//! Lookup of (source, kid) in a registry of 1, 100 and 10,000 sources,
//! next to a cache of its own's `with_key` in the same group (the floor).
//!
//! - `single_cache`: `JwksCache::with_key` on a cache of its own;
//! - `kept_handle/{n}`: `with_key` on the handle `register` returned (what
//!   a service that keeps its tenants' handles does per token);
//! - `kept_handles_in_turn/{n}`: the same, the `n` handles taken in turn
//!   (each lookup touches another source's set: the memory cost of many
//!   tenants, whatever the routing);
//! - `get_then_with_key/{n}`: `Registry::get(name)` then `with_key`, the
//!   names taken in turn (what a service routing by name does per token);
//! - `with_source/{n}`: the same through `Registry::with_source`, which
//!   clones no handle.
//!
//! `cargo bench --bench registry`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use jwks_sync::testing::{KeyAlg, MemorySource, TestKey};
use jwks_sync::{JwksCache, Registry};

fn doc(key: &TestKey, kid: &str) -> String {
    let mut jwk = key.jwk().clone();
    jwk["kid"] = kid.into();
    serde_json::json!({ "keys": [jwk] }).to_string()
}

fn registry_of(n: usize, key: &TestKey) -> (Registry, Vec<(String, JwksCache)>) {
    let registry = Registry::builder().build().expect("registry");
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let name = format!("tenant-{i}");
            let source = MemorySource::new(doc(key, "k1"));
            let cache = registry
                .register(&name, registry.source_from_fetcher(source))
                .expect("register");
            (name, cache)
        })
        .collect();
    for (_, cache) in &handles {
        cache.wait_ready(Duration::from_secs(60)).expect("ready");
    }
    (registry, handles)
}

fn lookup(c: &mut Criterion) {
    let key = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    let mut group = c.benchmark_group("registry_lookup");
    let single = JwksCache::from_fetcher(MemorySource::new(doc(&key, "k1")))
        .build()
        .expect("cache");
    single.wait_ready(Duration::from_secs(10)).expect("ready");
    group.bench_function("single_cache", |b| {
        b.iter(|| {
            single.with_key(black_box("k1"), |k| {
                black_box(k);
            })
        })
    });
    for n in [1usize, 100, 10_000] {
        let (registry, handles) = registry_of(n, &key);
        let kept = &handles[n / 2].1;
        group.bench_with_input(BenchmarkId::new("kept_handle", n), &n, |b, _| {
            b.iter(|| {
                kept.with_key(black_box("k1"), |k| {
                    black_box(k);
                })
            })
        });
        let mut turn = 0usize;
        group.bench_with_input(BenchmarkId::new("kept_handles_in_turn", n), &n, |b, _| {
            b.iter(|| {
                turn = (turn + 1) % handles.len();
                handles[turn].1.with_key(black_box("k1"), |k| {
                    black_box(k);
                })
            })
        });
        let names: Vec<&str> = handles.iter().map(|(name, _)| name.as_str()).collect();
        let mut turn = 0usize;
        group.bench_with_input(BenchmarkId::new("get_then_with_key", n), &n, |b, _| {
            b.iter(|| {
                turn = (turn + 1) % names.len();
                registry.get(black_box(names[turn])).map(|cache| {
                    cache.with_key("k1", |k| {
                        black_box(k);
                    })
                })
            })
        });
        let mut turn = 0usize;
        group.bench_with_input(BenchmarkId::new("with_source", n), &n, |b, _| {
            b.iter(|| {
                turn = (turn + 1) % names.len();
                registry.with_source(black_box(names[turn]), |cache| {
                    cache.with_key("k1", |k| {
                        black_box(k);
                    })
                })
            })
        });
        drop(handles);
        drop(registry);
    }
    group.finish();
}

criterion_group!(benches, lookup);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
