//! OpenID Connect discovery: the key set's URL from the issuer's
//! `/.well-known/openid-configuration`.
//!
//! - the document's `issuer` must equal the configured issuer exactly
//!   (OpenID Connect Discovery 1.0 §4.3);
//! - `jwks_uri` must pass the scheme rule and sit on the issuer's origin
//!   (scheme, host, port) unless `allow_cross_origin_jwks_uri` is on;
//! - discovery runs before the first key set fetch, and again when the key
//!   set URL answers `404` or `410`: if it moved, the fetch is retried once
//!   at the new URL, all within the same refresh.

use super::http::{Get, HttpClient, Reply, Target};
use super::options::HttpOptions;
use super::target::Origin;
use super::url::{allowed_origins, UrlSource};
use super::{Fetch, FetchRequest, FetchResponse, Validators};
use crate::error::{FetchError, FetchErrorKind};

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The source behind `JwksCache::from_issuer(issuer)`.
#[derive(Debug)]
pub(crate) struct IssuerFetcher {
    client: HttpClient,
    issuer: String,
    issuer_target: Target,
    discovery: Target,
    /// Origins redirects may reach (the issuer's and the configured ones).
    redirect_origins: Vec<Origin>,
    cross_origin: bool,
    /// The key set URL from the last discovery.
    jwks: Option<UrlSource>,
}

impl IssuerFetcher {
    /// Checks `issuer` and the options; `Err` is a configuration message.
    pub(crate) fn new(issuer: &str, opts: &HttpOptions) -> Result<Self, String> {
        let client = HttpClient::new(opts)?;
        let issuer_target = client.check_url(issuer)?;
        if issuer.contains('?') {
            return Err(format!(
                "issuer {issuer:?} has a query; an OpenID issuer has none"
            ));
        }
        let discovery =
            client.check_url(&format!("{}{WELL_KNOWN}", issuer.trim_end_matches('/')))?;
        Ok(Self {
            client,
            issuer: issuer.to_owned(),
            redirect_origins: allowed_origins(&issuer_target, opts)?,
            issuer_target,
            discovery,
            cross_origin: opts.cross_origin_jwks_uri,
            jwks: None,
        })
    }

    /// Fetches the discovery document and checks it.
    fn discover(&self, max_bytes: usize) -> Result<UrlSource, FetchError> {
        let get = Get {
            validators: &Validators::default(),
            max_bytes,
            allowed: &self.redirect_origins,
        };
        let reply = self.client.get(&self.discovery, &get).map_err(|e| {
            let wrapped = FetchError::new(e.kind(), format!("openid discovery: {}", e.message()));
            match e.retry_after() {
                Some(delay) => wrapped.with_retry_after(delay),
                None => wrapped,
            }
        })?;
        let fail = |msg: String| {
            FetchError::new(
                FetchErrorKind::Discovery,
                format!("{}: {msg}", self.discovery),
            )
        };
        let Reply::Document { body, .. } = reply else {
            return Err(fail("answered 304 to an unconditional request".to_owned()));
        };
        let target = check_document(
            &body,
            &self.issuer,
            &self.issuer_target,
            self.cross_origin,
            |url| self.client.check_url(url),
        )
        .map_err(fail)?;
        let mut origins = self.redirect_origins.clone();
        if !target.same_origin(&self.issuer_target) {
            origins.push(target.origin().clone());
        }
        log::debug!(
            "jwks-sync: discovery of {} gave jwks_uri {target}",
            self.issuer
        );
        Ok(UrlSource::new(target, origins))
    }
}

impl IssuerFetcher {
    /// The key set URL discovery gives now (for `Builder::inspect`).
    pub(crate) fn discover_url(&self, max_bytes: usize) -> Result<String, FetchError> {
        self.discover(max_bytes)
            .map(|jwks| jwks.target().to_string())
    }
}

/// Checks a discovery document and returns its key set URL: no repeated
/// member, `issuer` equal to the configured one, `jwks_uri` accepted by
/// `check_url` (the scheme rule) and on the issuer's origin unless
/// `cross_origin`. Pure, so the fuzzer reaches it without a network.
pub(crate) fn check_document(
    body: &[u8],
    configured_issuer: &str,
    issuer_target: &Target,
    cross_origin: bool,
    check_url: impl Fn(&str) -> Result<Target, String>,
) -> Result<Target, String> {
    let checked =
        crate::json::from_slice(body).map_err(|e| format!("not a JSON document ({e})"))?;
    if let Some(name) = checked.repeated {
        // Which issuer or jwks_uri counts would depend on the parser.
        return Err(format!(
            "the document repeats the member \"{}\"",
            crate::printable(&name)
        ));
    }
    let doc = checked.value;
    let issuer = doc
        .get("issuer")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "no \"issuer\" string".to_owned())?;
    if issuer != configured_issuer {
        return Err(format!(
            "the document names issuer {:?}, but the configured issuer is {:?} (they must match exactly)",
            truncate(issuer, 200),
            configured_issuer
        ));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| "no \"jwks_uri\" string".to_owned())?;
    let target = check_url(jwks_uri).map_err(|e| format!("unacceptable jwks_uri: {e}"))?;
    if !cross_origin && !target.same_origin(issuer_target) {
        return Err(format!(
            "jwks_uri {target} is not on the issuer's origin (allow it with allow_cross_origin_jwks_uri)"
        ));
    }
    Ok(target)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Fetch for IssuerFetcher {
    fn fetch(&mut self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let mut jwks = match self.jwks.take() {
            Some(jwks) => jwks,
            None => self.discover(request.max_bytes)?,
        };
        let result = jwks.fetch(&self.client, request);
        let gone =
            matches!(&result, Err(e) if matches!(e.kind(), FetchErrorKind::Status(404 | 410)));
        if !gone {
            self.jwks = Some(jwks);
            return result;
        }
        // The key set URL is gone: ask the issuer where it went.
        let moved = self.discover(request.max_bytes);
        match moved {
            Ok(mut fresh) if fresh.target() != jwks.target() => {
                log::info!(
                    "jwks-sync: {} moved its key set from {} to {}",
                    self.issuer,
                    jwks.target(),
                    fresh.target()
                );
                // Validators belong to the old URL.
                let fresh_request = FetchRequest {
                    validators: Validators::default(),
                    ..request.clone()
                };
                let result = fresh.fetch(&self.client, &fresh_request);
                self.jwks = Some(fresh);
                result
            }
            Ok(_) => {
                self.jwks = Some(jwks);
                result
            }
            // Discovery failed too: forget the URL, so the next fetch starts
            // with discovery again.
            Err(e) => Err(e),
        }
    }

    fn describe(&self) -> String {
        match &self.jwks {
            Some(jwks) => format!("{} (issuer {})", jwks.target(), self.issuer),
            None => format!("issuer {}", self.issuer),
        }
    }
}
