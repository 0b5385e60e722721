//! Loom models of jwks-sync live in `tests/`; this crate has no code.
//!
//! Run: `RUSTFLAGS="--cfg jwks_sync_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`
