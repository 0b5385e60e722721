//! Verifying a token allocates nothing once warm, when the claims type owns
//! no heap data: the header is kept inline (`TokenHeader::INLINE`), the
//! parts are decoded on the stack, the claims read with borrowed strings.
//!
//! A counting global allocator (stats_alloc) sees every allocation of the
//! process, so this file holds one test, the cache refreshes on time only
//! (no usage-triggered fetch in the middle), and the count is taken over
//! batches: the refresher thread may still be finishing its first round
//! while the first batch runs. A verify that allocated would show in every
//! batch.

mod verify_support;

use jwks_sync::RefreshStrategy;
use serde::Deserialize;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use verify_support::*;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Claims that own no heap data: strings in the token are skipped.
#[derive(Debug, Deserialize)]
struct Times {
    exp: u64,
    iat: u64,
}

const BATCH: usize = 200;

#[test]
fn a_warm_verify_allocates_nothing() {
    let k = keys();
    let (_source, cache) = cache_with(&[&k.rs256, &k.es256, &k.eddsa], |b| {
        b.strategy(RefreshStrategy::Time)
    });
    let verifier = verifier(&cache);
    for key in [&k.rs256, &k.es256, &k.eddsa] {
        let token = token(key, &good_claims());
        // Warm: the first calls may grow thread-locals and the like.
        for _ in 0..10 {
            let verified = verifier.verify::<Times>(&token).expect("valid token");
            assert_eq!(verified.header.kid(), Some(key.kid()));
        }
        let mut batches = Vec::new();
        for _ in 0..5 {
            let region = Region::new(GLOBAL);
            let mut exp = 0;
            for _ in 0..BATCH {
                let verified = verifier.verify::<Times>(&token).expect("valid token");
                exp += verified.claims.exp;
                assert_eq!(verified.header.typ(), Some("JWT"));
                assert!(verified.claims.iat <= verified.claims.exp);
            }
            assert!(exp > 0);
            let change = region.change();
            batches.push(change.allocations + change.reallocations);
        }
        let alg = key.alg();
        // A verify that allocated would show in every batch, BATCH times.
        assert_eq!(batches.iter().min(), Some(&0), "{alg:?}: {batches:?}");
        assert!(batches.iter().all(|n| *n < BATCH), "{alg:?}: {batches:?}");
        println!("{alg:?}: allocations per batch of {BATCH} verifies: {batches:?}");
    }
}
