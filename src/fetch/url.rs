//! A key set at an HTTPS URL: conditional requests and the caching
//! contract on top of the transport.
//!
//! - validators of the set in service go out as `If-None-Match` /
//!   `If-Modified-Since`; a `304` keeps the set and renews its lifetime;
//! - the lifetime hint is the one the headers grant (`freshness.rs`), taken
//!   from the `200` and freshened by each `304`; the policy clamps it.

use std::time::SystemTime;

use super::freshness::CacheHeaders;
use super::http::{Get, HttpClient, Reply, Target};
use super::options::HttpOptions;
use super::target::Origin;
use super::{Fetch, FetchRequest, FetchResponse, Validators};
use crate::error::{FetchError, FetchErrorKind};

/// The state of one JWKS URL between fetches.
#[derive(Debug)]
pub(crate) struct UrlSource {
    target: Target,
    allowed: Vec<Origin>,
    /// Cache headers of the last `200`, freshened by later `304`s.
    stored: CacheHeaders,
}

impl UrlSource {
    /// A source for `target`; redirects may reach the `allowed` origins.
    pub(crate) fn new(target: Target, allowed: Vec<Origin>) -> Self {
        Self {
            target,
            allowed,
            stored: CacheHeaders::default(),
        }
    }

    /// The URL.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// One conditional GET, turned into the refresher's terms.
    pub(crate) fn fetch(
        &mut self,
        client: &HttpClient,
        request: &FetchRequest,
    ) -> Result<FetchResponse, FetchError> {
        let get = Get {
            validators: &request.validators,
            max_bytes: request.max_bytes,
            allowed: &self.allowed,
        };
        let (response, cache) = match client.get(&self.target, &get)? {
            Reply::Document {
                body,
                cache,
                validators,
            } => (
                FetchResponse::document(body).with_validators(validators),
                cache,
            ),
            Reply::NotModified { cache, validators } => (
                FetchResponse::not_modified().with_validators(validators),
                self.stored.freshened(&cache),
            ),
        };
        let lifetime = cache.lifetime(SystemTime::now());
        self.stored = cache;
        Ok(match lifetime {
            Some(max_age) => response.with_max_age(max_age),
            None => response,
        })
    }
}

/// The origins redirects may reach: `start`'s and the configured extras
/// (`Builder::allow_redirect_host`); `Err` is a configuration message.
pub(crate) fn allowed_origins(start: &Target, opts: &HttpOptions) -> Result<Vec<Origin>, String> {
    let mut origins = vec![start.origin().clone()];
    for entry in &opts.redirect_hosts {
        origins.push(Origin::parse_allowed(entry)?);
    }
    Ok(origins)
}

/// The source behind `JwksCache::builder(url)`.
#[derive(Debug)]
pub(crate) struct HttpFetcher {
    client: HttpClient,
    source: UrlSource,
}

impl HttpFetcher {
    /// Checks `url` and the options; `Err` is a configuration message.
    pub(crate) fn new(url: &str, opts: &HttpOptions) -> Result<Self, String> {
        let client = HttpClient::new(opts)?;
        let target = client.check_url(url)?;
        let allowed = allowed_origins(&target, opts)?;
        Ok(Self {
            client,
            source: UrlSource::new(target, allowed),
        })
    }
}

impl HttpFetcher {
    /// One unconditional GET, for inspection: the body and the caching
    /// headers as received (`Cache-Control`, `Expires`, `Age`, `Date`,
    /// `ETag`, `Last-Modified`), with the lifetime those grant.
    pub(crate) fn fetch_raw(&self, max_bytes: usize) -> Result<RawDocument, FetchError> {
        let none = Validators::default();
        let get = Get {
            validators: &none,
            max_bytes,
            allowed: &self.source.allowed,
        };
        let (body, cache, validators) = match self.client.get(self.source.target(), &get)? {
            Reply::Document {
                body,
                cache,
                validators,
            } => (body, cache, validators),
            // No validators were sent, so a 304 is the server's mistake.
            Reply::NotModified { .. } => {
                return Err(FetchError::new(
                    FetchErrorKind::Status(304),
                    format!(
                        "{}: 304 Not Modified to an unconditional request",
                        self.source.target()
                    ),
                ))
            }
        };
        let header_lifetime = cache.lifetime(SystemTime::now());
        let headers = [
            ("cache-control", cache.cache_control),
            ("expires", cache.expires),
            ("age", cache.age),
            ("date", cache.date),
            ("etag", validators.etag),
            ("last-modified", validators.last_modified),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
        Ok(RawDocument {
            url: self.source.target().to_string(),
            body,
            headers,
            header_lifetime,
        })
    }
}

/// What [`HttpFetcher::fetch_raw`] read.
pub(crate) struct RawDocument {
    pub(crate) url: String,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) header_lifetime: Option<std::time::Duration>,
}

impl Fetch for HttpFetcher {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        self.source.fetch(&self.client, request)
    }

    fn describe(&self) -> String {
        self.source.target().to_string()
    }
}
