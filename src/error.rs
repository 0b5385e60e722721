//! Errors: one `Clone` enum the caller matches on, with structured sub-kinds.
//!
//! Messages say what happened and what to change; they never carry key
//! material or whole tokens.

use std::fmt;
use std::time::Duration;

/// Everything that can go wrong when looking up a key or running the cache.
///
/// `Clone`, because one failed refresh is reported to every waiter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No key with this `kid` is in the current set (after any refresh the
    /// call was allowed to wait for). Unknown kids trigger at most one refresh
    /// per `Builder::unknown_kid_cooldown`.
    UnknownKid,
    /// No key set has been loaded yet; `last_error` is why the latest attempt
    /// failed, if one has. Use `JwksCache::wait_ready` at start-up.
    NotReady {
        /// The error of the latest failed attempt, if any.
        last_error: Option<Box<Error>>,
    },
    /// The key set is past its lifetime plus `Builder::stale_while_error` and
    /// every refresh since has failed: lookups fail closed until one succeeds.
    Expired {
        /// How long ago the set reached its hard-expiry deadline.
        since: Duration,
        /// The error of the latest failed refresh.
        last_error: Option<Box<Error>>,
    },
    /// Fetching the key set failed (transport, status, size, timeout, ...).
    Fetch(FetchError),
    /// The fetched document was rejected as a whole; the previous set stays.
    KeySet(KeySetError),
    /// A bounded wait ran out before the refresher answered.
    Timeout,
    /// The refresher thread is gone (the cache is shutting down, or the
    /// thread stopped after an internal error).
    Stopped,
    /// The builder's settings are inconsistent; the message names the knob.
    Config(String),
    /// [`JwksCache::refresh_now`](crate::JwksCache::refresh_now) was called
    /// on the refresher thread (from an `on_refresh` hook), where waiting
    /// would stall the refresher: the fetch is scheduled to start right
    /// after the hook returns, not awaited; the hook sees its outcome next.
    OnRefresherThread,
}

impl fmt::Display for Error {
    /// This layer only: the cause, where there is one, is returned by
    /// [`source`](std::error::Error::source), never repeated here, so that
    /// reporters walking the chain (anyhow, `jwks`) print each text once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownKid => f.write_str("no key with this kid in the key set"),
            Error::NotReady { .. } => f.write_str("no key set loaded yet"),
            Error::Expired { since, .. } => write!(
                f,
                "key set expired {}s ago and could not be refreshed",
                since.as_secs()
            ),
            Error::Fetch(_) => f.write_str("fetching the key set failed"),
            Error::KeySet(_) => f.write_str("key set rejected"),
            Error::Timeout => f.write_str("timed out waiting for the key set refresher"),
            Error::Stopped => f.write_str("the key set refresher has stopped"),
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::OnRefresherThread => f.write_str(
                "refresh_now was called on the refresher thread (an on_refresh hook): \
                 the fetch is scheduled, not awaited",
            ),
        }
    }
}

impl std::error::Error for Error {
    /// The cause: the fetch or document error, or for [`Error::NotReady`]
    /// and [`Error::Expired`] the latest failed attempt.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Fetch(e) => Some(e),
            Error::KeySet(e) => Some(e),
            Error::NotReady { last_error } | Error::Expired { last_error, .. } => {
                last_error.as_deref().map(|e| e as _)
            }
            _ => None,
        }
    }
}

/// Formats `error` and its whole `source()` chain as `a: b: c`, each
/// layer's text once: the one-line form for logs and the CLI.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    use std::fmt::Write as _;
    let mut out = error.to_string();
    let mut next = error.source();
    // Bounded: a cyclic or absurdly deep chain stops after 16 layers.
    for _ in 0..16 {
        let Some(e) = next else { break };
        let _ = write!(out, ": {e}");
        next = e.source();
    }
    out
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        Error::Fetch(e)
    }
}

impl From<KeySetError> for Error {
    fn from(e: KeySetError) -> Self {
        Error::KeySet(e)
    }
}

/// What kind of failure a [`FetchError`] is; decides how the refresher retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchErrorKind {
    /// Could not connect or the connection broke (retried with backoff).
    Connect,
    /// A connect, header or total timeout ran out (retried with backoff).
    Timeout,
    /// TLS failed: unknown issuer, bad certificate, pin mismatch (retried
    /// with the longest backoff).
    Tls,
    /// The server answered with this HTTP status (5xx and 429 retried with
    /// backoff honouring `Retry-After`; other codes with the longest backoff).
    Status(u16),
    /// The body was larger than the byte cap.
    TooLarge,
    /// The response's `Content-Type` is not JSON.
    ContentType,
    /// A redirect was refused (too many, to plain http, or to a host that is
    /// not allowed).
    Redirect,
    /// The URL is not allowed (not https without the explicit opt-in).
    Url,
    /// OpenID Connect discovery failed or returned an unacceptable document.
    Discovery,
    /// Reading the source failed (I/O).
    Io,
    /// The fetcher panicked; the refresher caught it and carries on.
    Panicked,
    /// Anything else a custom fetcher reports.
    Other,
}

/// A failed fetch, as reported by a [`Fetch`](crate::Fetch) implementation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    kind: FetchErrorKind,
    message: String,
    retry_after: Option<Duration>,
}

impl FetchError {
    /// A fetch error of `kind` with a human-readable `message` (no secrets).
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Asks the refresher to wait at least `delay` before the next attempt
    /// (HTTP `Retry-After`), within `Builder::backoff_max`.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> FetchErrorKind {
        self.kind
    }

    /// The human-readable description.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The server's requested delay before the next attempt, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether retrying soon may help: connection problems, timeouts, 5xx,
    /// 429 and I/O errors. Others (4xx, TLS, refused redirects, bad content)
    /// are retried only at the longest backoff.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            FetchErrorKind::Connect
            | FetchErrorKind::Timeout
            | FetchErrorKind::Io
            | FetchErrorKind::Panicked
            | FetchErrorKind::Other => true,
            FetchErrorKind::Status(code) => code == 429 || code == 408 || code >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FetchErrorKind::Status(code) => write!(f, "http status {code}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FetchError {}

/// Why a fetched document was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySetError {
    /// The body is not valid JSON.
    NotJson(String),
    /// The document is not an object with a `keys` array.
    NoKeysArray,
    /// An object outside the `keys` entries names this member twice (the
    /// top level: `{"keys":[],"keys":[...]}`, or any object nested in
    /// another member). Parsers disagree on which one counts, so the
    /// document is refused. At most 64 characters of the name are kept.
    RepeatedMember(String),
    /// The body exceeds the byte cap (`Builder::max_document_bytes`).
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// No entry was usable; `skipped` entries were rejected (see `Status`).
    NoUsableKeys {
        /// How many entries were skipped.
        skipped: usize,
    },
    /// The document has more entries than `Builder::max_keys`; it is
    /// rejected whole (publishing only some entries could drop the very keys
    /// tokens are signed with).
    TooManyKeys {
        /// The cap (`Builder::max_keys`).
        limit: usize,
        /// Entries in the document.
        entries: usize,
    },
}

impl fmt::Display for KeySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySetError::NotJson(e) => write!(f, "not valid json ({e})"),
            KeySetError::NoKeysArray => f.write_str("no \"keys\" array at the top level"),
            KeySetError::RepeatedMember(name) => write!(
                f,
                "the document repeats the member \"{}\"",
                crate::printable(name)
            ),
            KeySetError::TooLarge { limit } => write!(f, "document over the {limit}-byte cap"),
            KeySetError::NoUsableKeys { skipped } => {
                write!(f, "no usable key ({skipped} entries skipped)")
            }
            KeySetError::TooManyKeys { limit, entries } => {
                write!(
                    f,
                    "{entries} keys, more than the limit of {limit} (max_keys)"
                )
            }
        }
    }
}

impl std::error::Error for KeySetError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VerifyError;
    use std::error::Error as _;

    /// Each layer's own text, outermost first.
    fn layers(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut next = e.source();
        while let Some(e) = next {
            out.push(e.to_string());
            next = e.source();
        }
        out
    }

    #[test]
    fn every_layer_says_its_text_once_and_the_cause_is_reachable() {
        let fetch = FetchError::new(FetchErrorKind::Status(503), "service unavailable");
        let cause = Error::Fetch(fetch.clone());
        let cases: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(cause.clone()),
            Box::new(Error::KeySet(KeySetError::NoKeysArray)),
            Box::new(Error::NotReady {
                last_error: Some(Box::new(cause.clone())),
            }),
            Box::new(Error::Expired {
                since: Duration::from_secs(5),
                last_error: Some(Box::new(cause.clone())),
            }),
            Box::new(VerifyError::KeySet(Error::NotReady {
                last_error: Some(Box::new(cause.clone())),
            })),
        ];
        for e in &cases {
            let layers = layers(e.as_ref());
            assert!(layers.len() >= 2, "{layers:?}");
            // No layer repeats the text of the layers below it.
            for (i, outer) in layers.iter().enumerate() {
                for inner in &layers[i + 1..] {
                    assert!(
                        !outer.contains(inner.as_str()),
                        "{outer:?} repeats {inner:?}"
                    );
                }
            }
            // The one-line chain holds each text exactly once.
            let line = chain(e.as_ref());
            for layer in &layers {
                assert_eq!(line.matches(layer.as_str()).count(), 1, "{line}");
            }
        }
        // NotReady and Expired lead to the fetch error itself.
        let not_ready = Error::NotReady {
            last_error: Some(Box::new(cause)),
        };
        let root = not_ready.source().and_then(|e| e.source());
        assert_eq!(root.map(ToString::to_string), Some(fetch.to_string()));
        assert!(Error::NotReady { last_error: None }.source().is_none());
    }
}
