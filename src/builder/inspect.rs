//! A one-shot look at a key set URL, for tools: what the server sent (the
//! document and its caching headers) and the lifetime a cache built from
//! the same [`Builder`] would give it. No cache, no refresher thread.

use std::time::Duration;

use super::{Builder, Source};
use crate::error::Error;
use crate::fetch::{HttpFetcher, IssuerFetcher};

/// What [`Builder::inspect`] read from a key set URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspection {
    /// The URL fetched (scheme, host, port and path; no query).
    pub url: String,
    /// The response body (a `200`, within `max_document_bytes`), not yet
    /// parsed: see [`KeySet::from_slice`](crate::KeySet::from_slice).
    pub body: Vec<u8>,
    /// The caching headers present, lowercase names, values as received:
    /// `cache-control`, `expires`, `age`, `date`, `etag`, `last-modified`.
    pub cache_headers: Vec<(&'static str, String)>,
    /// The freshness lifetime the headers grant (RFC 9111), before the
    /// cache's clamping; `None` when they grant none.
    pub header_lifetime: Option<Duration>,
    /// The lifetime a cache with these settings would give the set: the
    /// header lifetime clamped to `[min_ttl, max_ttl]`, or `interval` when
    /// the headers grant none or `use_cache_headers` is off.
    pub lifetime: Duration,
}

impl Builder {
    /// Fetches the key set once with this builder's HTTP settings (roots,
    /// pins, timeouts, redirects, proxy) and reports the document, its
    /// caching headers and the lifetime the cache would use. Starts no
    /// thread; blocks for at most the `timeout` setting.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for inconsistent settings, or for a source that is
    /// neither a URL ([`JwksCache::builder`](crate::JwksCache::builder)) nor
    /// an issuer ([`JwksCache::from_issuer`](crate::JwksCache::from_issuer),
    /// whose discovery runs first); [`Error::Fetch`] when a request fails.
    pub fn inspect(self) -> Result<Inspection, Error> {
        self.validate()?;
        let url = match &self.source {
            Source::Url(url) => url.clone(),
            // Discovery first, then the key set URL it names.
            Source::Issuer(issuer) => IssuerFetcher::new(issuer, &self.http)
                .map_err(Error::Config)?
                .discover_url(self.limits.max_bytes)
                .map_err(Error::Fetch)?,
            _ => {
                return Err(Error::Config(
                    "inspect needs a key set URL or an issuer (JwksCache::builder, JwksCache::from_issuer)"
                        .to_owned(),
                ))
            }
        };
        let fetcher = HttpFetcher::new(&url, &self.http).map_err(Error::Config)?;
        let raw = fetcher
            .fetch_raw(self.limits.max_bytes)
            .map_err(Error::Fetch)?;
        Ok(Inspection {
            lifetime: self.policy.lifetime_for(raw.header_lifetime),
            url: raw.url,
            body: raw.body,
            cache_headers: raw.headers,
            header_lifetime: raw.header_lifetime,
        })
    }
}
