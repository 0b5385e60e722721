//! # jwks-sync
//!
//! A JSON Web Key Set cache and JWT key source for **synchronous** Rust:
//! blocking servers, CLIs and programs without an async runtime.
//!
//! - Lookups ([`JwksCache::with_key`]) are lock-free, in practice
//!   wait-free: one atomic load of the published [`KeySet`], one hash
//!   lookup, one per-thread counter. They never touch the network.
//! - One OS thread, the *scheduler*, runs the refreshes of a cache (or of
//!   every source of a [`Registry`], with a small pool of fetch threads)
//!   and is the only code that talks to identity providers. It refreshes by
//!   time, by usage, both, early in the background, and on demand for an
//!   unknown kid behind a re-fetch guard; see [`Builder`] for every rule.
//! - Keys are parsed and validated once per fetch (RFC 7517: unusable
//!   entries are skipped and reported in [`Status::skipped`]), each bound to
//!   the algorithms it may verify.
//!
//! ## Map
//!
//! | item | role |
//! |---|---|
//! | [`JwksCache`] | the handle: lookups, waits, `refresh_now`, `status` |
//! | [`Builder`] | every knob, each with its default |
//! | [`Registry`], [`RegistryBuilder`] | many sources by name on one scheduler thread and a small fetch pool |
//! | [`Builder::inspect`], [`Inspection`] | one fetch for tools: document, cache headers, lifetime |
//! | [`JwksCache::builder`], [`JwksCache::from_issuer`] | the HTTPS source and OpenID discovery |
//! | [`Fetch`], [`FileFetcher`] | where documents come from |
//! | [`Key`], [`KeySet`], [`SkipReason`] | what a fetch produced (several keys may share a kid: [`Key::same_kid`]) |
//! | [`Algorithm`], [`AlgorithmSet`] | JWS algorithm names, the crate's own |
//! | [`Status`], [`RefreshEvent`] | counters and schedule; a hook per fetch |
//! | [`Health`] | one signal for `/healthz`: [`Status::health`] |
//! | [`Verifier`], [`VerifierBuilder`], [`Verified`], [`bearer_token`] | token verification on top of the cache |
//! | [`IssuerVerifier`], [`IssuerVerifierBuilder`] | many issuers: route by `iss` (and `{tenantid}` templates) to each issuer's cache and rules; key-issuer binding |
//! | [`VerifyError`], [`AlgorithmRejection`] | which rule rejected a token |
//! | [`VerifyError::code`], [`VerifyError::http_status`], [`BearerChallenge`] | errors as HTTP answers (RFC 6750) |
//! | [`Error`], [`FetchError`], [`KeySetError`] | what went wrong (`Display` one layer, `source()` the cause) |
//! | [`printable`] | attacker-chosen text (kids) made safe to show |
//! | [`Fleet`], [`FleetStats`] | instances sharing fetches: snapshot store (file, Redis), warm start, fleet lock |
//! | [`Clock`] | injected time for the schedule |
//! | `testing` (feature) | keys, tokens, an in-memory source and a loopback HTTPS IdP for tests |
#![doc = include_str!("../README.md")]
#![doc(test(attr(deny(warnings))))]

mod algorithm;
mod builder;
mod cache;
mod clock;
mod error;
mod event;
mod fetch;
mod fleet;
mod health;
mod json;
mod jwk;
mod keyset;
mod local;
mod observe;
mod policy;
mod printable;
mod registry;
mod scheduler;
mod settings;
mod shared;
mod source;
mod stats;
mod store;
mod sync;
mod verify;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

// Entry points for `fuzz/` (cargo-fuzz sets `--cfg fuzzing`) and for the
// corpus replay in the unit tests; not part of the API of normal builds.
#[cfg(all(feature = "http", any(test, all(fuzzing, feature = "testing"))))]
#[doc(hidden)]
#[path = "fuzz_api.rs"]
pub mod __fuzz;

// The cached read path alone, for the loom models.
#[cfg(jwks_sync_loom)]
#[doc(hidden)]
pub use local::loom_api as __loom;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use builder::Builder;
#[cfg(feature = "http")]
pub use builder::Inspection;
pub use cache::JwksCache;
pub use clock::{AdvanceHook, Clock, ManualClock, SystemClock};
pub use error::{Error, FetchError, FetchErrorKind, KeySetError};
pub use event::{RefreshEvent, RefreshOutcome};
pub use fetch::{Fetch, FetchRequest, FetchResponse, FileFetcher, Validators};
pub use fleet::{Fleet, FleetStats, RejectReason, SnapshotInfo};
pub use health::{DegradedReason, FailingReason, Health};
pub use jwk::{AlgorithmSet, Key, KeyType, SkipReason};
pub use keyset::{KeySet, SkippedKey};
pub use policy::{RefreshCause, RefreshStrategy};
pub use printable::{printable, Printable};
pub use registry::{Registry, RegistryBuilder};
pub use stats::{RefreshCounts, RefresherState, Status};
pub use verify::{
    bearer_token, AlgorithmRejection, BearerChallenge, IssuerVerifier, IssuerVerifierBuilder,
    NoKidPolicy, TokenHeader, Verified, Verifier, VerifierBuilder, VerifyError,
};

#[cfg(feature = "testing")]
#[doc(hidden)]
pub use testing::doc_cache;
