//! Test helpers for code that uses jwks-sync: real signing keys, their JWKs,
//! and tokens signed with them. Enabled by the `testing` feature.
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

mod keys;
mod memory;

pub use keys::{jwks_json, KeyAlg, TestKey};
#[doc(hidden)]
pub use memory::doc_cache;
pub use memory::MemorySource;

/// Formats `t` as an HTTP date (IMF-fixdate), for `Date`, `Expires` and
/// `Last-Modified` headers in tests.
#[cfg(feature = "testing")]
pub fn http_date(t: std::time::SystemTime) -> String {
    crate::fetch::format_http_date(t)
}
