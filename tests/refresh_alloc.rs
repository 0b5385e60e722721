//! What a refresh leaves on the heap per cached key, and what it allocates
//! on the way, counted by a global allocator (stats_alloc) around
//! `KeySet` parsing of documents of 64 and 1,000 keys.
//!
//! Rust's heap only: the key material aws-lc keeps (its `EVP_PKEY`) is
//! allocated by the C library and not counted here.
//!
//! `cargo test --all-features --test refresh_alloc -- --nocapture` prints
//! the numbers.

use jwks_sync::testing::{parse_key_set, KeyAlg, TestKey};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// `n` entries cycling through `keys`, each under its own 13-byte kid.
fn document(keys: &[&TestKey], n: usize) -> String {
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut jwk = keys[i % keys.len()].jwk().clone();
            jwk["kid"] = format!("key-{i:04}-{:03}", i % 1000).into();
            jwk
        })
        .collect();
    serde_json::json!({ "keys": entries }).to_string()
}

/// Bytes kept per key, and allocations made per key while parsing.
fn measure(doc: &str, n: usize) -> (usize, usize) {
    let region = Region::new(GLOBAL);
    let set = parse_key_set(doc.as_bytes(), n).expect("a usable set");
    let change = region.change();
    assert_eq!((set.keys().len(), set.skipped().len()), (n, 0));
    let kept = change.bytes_allocated - change.bytes_deallocated;
    drop(set);
    (kept / n, (change.allocations + change.reallocations) / n)
}

#[test]
fn a_cached_key_costs_under_800_bytes_of_heap() {
    let rsa = TestKey::generate(KeyAlg::Rs256, "rsa").expect("keygen");
    let ec = TestKey::generate(KeyAlg::Es256, "ec").expect("keygen");
    let ed = TestKey::generate(KeyAlg::EdDsa, "ed").expect("keygen");
    for (name, keys) in [
        ("RSA-2048", vec![&rsa]),
        ("P-256", vec![&ec]),
        ("Ed25519", vec![&ed]),
        ("mixed", vec![&rsa, &ec, &ed]),
    ] {
        for n in [64, 1000] {
            let doc = document(&keys, n);
            let (bytes, allocations) = measure(&doc, n);
            println!("{name} x{n}: {bytes} bytes kept per key, {allocations} allocations per key");
            assert!(bytes <= 800, "{name} x{n}: {bytes} bytes per key");
            assert!(
                allocations <= 12,
                "{name} x{n}: {allocations} allocations per key"
            );
        }
    }
}
