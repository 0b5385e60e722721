//! [`TestError`]: why a test helper failed.

use std::fmt;

/// What a [`TestError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TestErrorKind {
    /// Generating a signing key failed ([`TestKey::generate`](super::TestKey::generate)).
    KeyGeneration,
    /// Signing a token failed ([`TestKey::sign`](super::TestKey::sign)), or the
    /// test IdP has no signing key (`TestIdp::mint`).
    Signing,
    /// Generating the test IdP's CA, certificate or TLS configuration failed.
    Certificate,
    /// Starting the test IdP failed: binding its socket or its thread.
    Io,
}

/// Why a test helper (key generation, token signing, the test IdP) failed.
///
/// A real [`std::error::Error`], `Send + Sync + 'static`: `?` carries it into
/// `Box<dyn Error>`, `anyhow` and friends.
///
/// ```
/// use jwks_sync::testing::{KeyAlg, TestKey};
///
/// fn token() -> Result<String, Box<dyn std::error::Error>> {
///     let key = TestKey::generate(KeyAlg::Es256, "k1")?;
///     Ok(key.sign(&serde_json::json!({"sub": "alice"}))?)
/// }
/// assert_eq!(token()?.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestError {
    kind: TestErrorKind,
    message: String,
}

impl TestError {
    pub(crate) fn new(kind: TestErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What failed.
    pub fn kind(&self) -> TestErrorKind {
        self.kind
    }

    /// The cause, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TestErrorKind::KeyGeneration => "test key generation failed",
            TestErrorKind::Signing => "test token signing failed",
            TestErrorKind::Certificate => "test IdP certificate generation failed",
            TestErrorKind::Io => "test IdP could not start",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for TestError {}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::TestIdp;

    fn is_std_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}

    #[test]
    fn a_failure_is_a_std_error_saying_what_failed() {
        let idp = TestIdp::start().expect("idp");
        let err = idp.mint(&serde_json::json!({"sub": "a"})).unwrap_err();
        is_std_error(&err);
        assert_eq!(err.kind(), TestErrorKind::Signing);
        assert_eq!(
            err.to_string(),
            "test token signing failed: the test IdP has no signing key"
        );
        let boxed: Box<dyn std::error::Error + Send + Sync> = err.clone().into();
        assert_eq!(boxed.downcast_ref::<TestError>(), Some(&err));
    }
}
