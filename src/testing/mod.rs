//! Test helpers for code that uses jwks-sync: real signing keys, their JWKs,
//! tokens signed with them, an in-memory source, and a loopback HTTPS
//! identity provider ([`TestIdp`]). Enabled by the `testing` feature.
//!
//! ```
//! use jwks_sync::testing::{TestKey, KeyAlg};
//!
//! let key = TestKey::generate(KeyAlg::Es256, "k1").unwrap();
//! let jwks = jwks_sync::testing::jwks_json(&[&key]);
//! assert!(jwks.contains("\"kid\":\"k1\""));
//! let token = key.sign(&serde_json::json!({"sub": "alice", "exp": 4102444800u64})).unwrap();
//! assert_eq!(token.split('.').count(), 3);
//! ```

mod error;
#[cfg(all(feature = "testing", feature = "http"))]
mod idp;
mod keys;
mod memory;

pub use error::{TestError, TestErrorKind};
#[cfg(all(feature = "testing", feature = "http"))]
pub use idp::{
    Fault, RecordedRequest, TestIdp, DISCOVERY_PATH, IO_TIMEOUT, JWKS_PATH, LOG_CAPACITY,
    MAX_CONNECTIONS, MAX_HEAD_BYTES,
};
pub use keys::{jsonwebtoken_algorithm, jwks_json, KeyAlg, TestKey};
#[doc(hidden)]
pub use memory::doc_cache;
pub use memory::MemorySource;

/// Parses a JWKS document as a cache built with `Builder::max_keys(max_keys)`
/// and no byte cap would (the kid length limit at its default):
/// [`KeySet::from_slice`] for large sets, in benches and tests.
///
/// [`KeySet::from_slice`]: crate::KeySet::from_slice
pub fn parse_key_set(
    document: &[u8],
    max_keys: usize,
) -> Result<crate::KeySet, crate::KeySetError> {
    let limits = crate::keyset::SetLimits {
        max_keys,
        max_bytes: usize::MAX,
        ..crate::keyset::SetLimits::DEFAULT
    };
    crate::KeySet::parse(document, 1, limits)
}

/// Formats `t` as an HTTP date (IMF-fixdate), for `Date`, `Expires` and
/// `Last-Modified` headers in tests.
#[cfg(all(feature = "testing", feature = "http"))]
pub fn http_date(t: std::time::SystemTime) -> String {
    crate::fetch::format_http_date(t)
}

#[cfg(all(feature = "testing", feature = "http"))]
fn parse_http_date(s: &str) -> Option<std::time::SystemTime> {
    crate::fetch::parse_http_date(s)
}
