//! Where key sets come from: the [`Fetch`] trait, the file source, and the
//! HTTPS sources behind `JwksCache::builder` and `JwksCache::from_issuer`.
//!
//! The refresher thread is the only caller of a fetcher, one call at a time,
//! so an implementation may block (that is the point) and keep state.
//!
//! | file | role |
//! |---|---|
//! | `fetch/options.rs` | the HTTP knobs as plain data |
//! | `fetch/http.rs` | the transport: ureq + rustls (the only file naming them) |
//! | `fetch/freshness.rs` | HTTP's caching contract: lifetimes, `Retry-After`, dates |
//! | `fetch/spki.rs` | SPKI pins: parsing, and the leaf's SubjectPublicKeyInfo hash |
//! | `fetch/url.rs` | a key set at a URL: conditional requests, lifetimes |
//! | `fetch/discovery.rs` | OpenID Connect discovery of the key set URL |

#[cfg(feature = "http")]
mod discovery;
#[cfg(feature = "http")]
mod freshness;
#[cfg(feature = "http")]
mod http;
mod options;
#[cfg(feature = "http")]
mod spki;
#[cfg(feature = "http")]
mod target;
#[cfg(feature = "http")]
mod url;

#[cfg(feature = "http")]
pub(crate) use discovery::IssuerFetcher;
#[cfg(all(feature = "http", any(test, feature = "testing")))]
pub(crate) use freshness::{format_http_date, parse_http_date};
pub(crate) use options::HttpOptions;
#[cfg(feature = "http")]
pub(crate) use url::HttpFetcher;
// The pure parsers behind the network, for the fuzz entry points.
#[cfg(all(feature = "http", any(test, all(fuzzing, feature = "testing"))))]
pub(crate) use {
    discovery::check_document,
    freshness::{retry_after, CacheHeaders},
    target::Target,
};

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{FetchError, FetchErrorKind};
use crate::policy::RefreshCause;

/// HTTP validators from the last successful response, sent back so the
/// server can answer `304 Not Modified`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` header, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// What the refresher asks a fetcher for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchRequest {
    /// Validators of the set now in service (empty before the first success).
    pub validators: Validators,
    /// The byte cap: a longer body must fail with [`FetchErrorKind::TooLarge`]
    /// without being read whole.
    pub max_bytes: usize,
    /// Why the refresher fetches (a fleet uses it to decide how recent a
    /// shared snapshot must be to stand in for a fetch).
    pub cause: RefreshCause,
}

/// A fetcher's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    body: Option<Vec<u8>>,
    max_age: Option<Duration>,
    age: Duration,
    validators: Validators,
}

impl FetchResponse {
    /// A fresh JWKS document.
    pub fn document(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: Some(body.into()),
            max_age: None,
            age: Duration::ZERO,
            validators: Validators::default(),
        }
    }

    /// The set in service is still current (HTTP `304 Not Modified`).
    pub fn not_modified() -> Self {
        Self {
            body: None,
            max_age: None,
            age: Duration::ZERO,
            validators: Validators::default(),
        }
    }

    /// The lifetime the source grants (HTTP `max-age` minus `Age`, or
    /// `Expires` minus `Date`); the cache clamps it to
    /// `[Builder::min_ttl, Builder::max_ttl]` and may ignore it
    /// (`Builder::use_cache_headers`).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// How long ago this document left its origin (like HTTP `Age`): the
    /// cache dates the fetch `age` before now, so the set is due, stale and
    /// expired at the same absolute times as for the instance that fetched
    /// it. A shared snapshot uses this; a lifetime from
    /// [`with_max_age`](Self::with_max_age) is then counted from that
    /// original moment too.
    pub fn with_age(mut self, age: Duration) -> Self {
        self.age = age;
        self
    }

    /// Validators to send back on the next fetch. On a `304` response, empty
    /// validators keep the previous ones.
    pub fn with_validators(mut self, validators: Validators) -> Self {
        self.validators = validators;
        self
    }

    /// The document, or `None` for "not modified".
    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The lifetime hint, if any.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// How long ago the document left its origin (zero unless set with
    /// [`with_age`](Self::with_age)).
    pub fn age(&self) -> Duration {
        self.age
    }

    /// The validators.
    pub fn validators(&self) -> &Validators {
        &self.validators
    }

    pub(crate) fn into_parts(self) -> (Option<Vec<u8>>, Option<Duration>, Validators) {
        (self.body, self.max_age, self.validators)
    }
}

/// A source of JWKS documents, called only from the refresher thread.
///
/// Implementations should bound their own blocking (timeouts) and honour
/// [`FetchRequest::max_bytes`]. A panic is caught and reported to waiters as
/// [`FetchErrorKind::Panicked`]; the refresher carries on with backoff.
pub trait Fetch: Send + 'static {
    /// Fetches the current document.
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError>;

    /// A short description for logs (no credentials).
    fn describe(&self) -> String {
        "custom fetcher".to_owned()
    }
}

/// Reads the key set from a local file on every refresh.
///
/// - the file is read at most `max_bytes + 1` bytes deep;
/// - no validators: every refresh parses the file again.
#[derive(Debug, Clone)]
pub struct FileFetcher {
    path: PathBuf,
}

impl FileFetcher {
    /// A fetcher for the JWKS document at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl Fetch for FileFetcher {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        use std::io::Read;
        let io_err = |e: std::io::Error| {
            FetchError::new(FetchErrorKind::Io, format!("{}: {e}", self.path.display()))
        };
        let file = std::fs::File::open(&self.path).map_err(io_err)?;
        let mut body = Vec::new();
        let cap = u64::try_from(request.max_bytes).unwrap_or(u64::MAX);
        file.take(cap.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(io_err)?;
        if body.len() > request.max_bytes {
            return Err(FetchError::new(
                FetchErrorKind::TooLarge,
                format!(
                    "{} is over {} bytes",
                    self.path.display(),
                    request.max_bytes
                ),
            ));
        }
        Ok(FetchResponse::document(body))
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}
