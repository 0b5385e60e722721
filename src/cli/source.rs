//! From `<url|file>` and the common flags to a [`Builder`]: the one place
//! the CLI turns arguments into cache settings.

use std::path::Path;
use std::time::Duration;

use jwks_sync::{Builder, FileFetcher, JwksCache, RefreshStrategy};

use super::args::{HttpArgs, RefreshArgs, Strategy};
use super::exit::Failure;

/// Where a key set comes from.
pub(crate) enum Source<'a> {
    /// An `http(s)://` URL.
    Url(&'a str),
    /// A local file.
    File(&'a Path),
    /// OpenID Connect discovery from this issuer (`--issuer`).
    Issuer(&'a str),
}

impl<'a> Source<'a> {
    /// The source named by the positional `<url|file>` or by `--issuer`
    /// (clap makes sure exactly one is given).
    pub(crate) fn from_args(
        source: Option<&'a str>,
        issuer: Option<&'a str>,
    ) -> Result<Self, Failure> {
        match (source, issuer) {
            (_, Some(issuer)) => Ok(Source::Issuer(issuer)),
            (Some(text), None) => Self::parse(text),
            (None, None) => Err(Failure::usage("give a key set URL or file, or --issuer")),
        }
    }

    /// A URL if `text` has an http(s) scheme, else a file path. Any other
    /// scheme (`ftp://`, `file://`, ...) is a usage error, not a file name.
    pub(crate) fn parse(text: &'a str) -> Result<Self, Failure> {
        if let Some((scheme, _)) = text.split_once("://") {
            let is_scheme = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if is_scheme {
                return if scheme.eq_ignore_ascii_case("https")
                    || scheme.eq_ignore_ascii_case("http")
                {
                    Ok(Source::Url(text))
                } else {
                    Err(Failure::usage(format!(
                        "unsupported URL scheme '{scheme}://': give an https:// URL or a file path"
                    )))
                };
            }
        }
        Ok(Source::File(Path::new(text)))
    }

    /// What to call the source in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Url(url) => (*url).to_owned(),
            Source::File(path) => path.display().to_string(),
            Source::Issuer(issuer) => format!("issuer {issuer}"),
        }
    }

    /// A builder for this source with the flags applied. Transport flags
    /// given for a file are a usage error.
    pub(crate) fn builder(
        &self,
        http: &HttpArgs,
        refresh: &RefreshArgs,
    ) -> Result<Builder, Failure> {
        let builder = match self {
            Source::Url(url) => apply_http(JwksCache::builder(*url), http)?,
            Source::Issuer(issuer) => apply_http(JwksCache::from_issuer(*issuer), http)?,
            Source::File(path) => {
                if !http.ca_files.is_empty()
                    || !http.pins.is_empty()
                    || http.no_default_roots
                    || http.insecure_plain_http
                {
                    return Err(Failure::usage(
                        "--ca-file, --pin, --no-default-roots and --insecure-plain-http apply to URLs, not to files",
                    ));
                }
                JwksCache::from_fetcher(FileFetcher::new(*path))
            }
        };
        Ok(apply_refresh(builder, refresh))
    }
}

fn apply_http(mut b: Builder, http: &HttpArgs) -> Result<Builder, Failure> {
    for path in &http.ca_files {
        let pem = std::fs::read(path)
            .map_err(|e| Failure::usage(format!("--ca-file {}: {e}", path.display())))?;
        b = b.add_root_certificate_pem(pem);
    }
    if http.no_default_roots {
        b = b.use_built_in_roots(false);
    }
    for pin in &http.pins {
        b = b.pin_spki_sha256(pin.clone());
    }
    if let Some(t) = http.connect_timeout {
        b = b.connect_timeout(t);
    }
    if let Some(t) = http.response_timeout {
        b = b.response_timeout(t);
    }
    if let Some(t) = http.timeout {
        b = b.timeout(t);
    }
    if http.no_proxy {
        b = b.use_env_proxy(false);
    }
    if http.insecure_plain_http {
        b = b.danger_accept_plain_http(true);
    }
    Ok(b)
}

/// Only the flags the user gave are passed on: settings the library derives
/// from others (e.g. from `interval`) must keep following them.
fn apply_refresh(mut b: Builder, r: &RefreshArgs) -> Builder {
    if let Some(s) = r.strategy {
        b = b.strategy(match s {
            Strategy::Time => RefreshStrategy::Time,
            Strategy::Usage => RefreshStrategy::Usage,
            Strategy::Both => RefreshStrategy::Both,
        });
    }
    type Setter = fn(Builder, Duration) -> Builder;
    let knobs: [(Option<Duration>, Setter); 8] = [
        (r.interval, Builder::interval),
        (r.min_ttl, Builder::min_ttl),
        (r.max_ttl, Builder::max_ttl),
        (r.min_refresh_interval, Builder::min_refresh_interval),
        (r.unknown_kid_cooldown, Builder::unknown_kid_cooldown),
        (r.stale_while_error, Builder::stale_while_error),
        (r.backoff_base, Builder::backoff_base),
        (r.backoff_max, Builder::backoff_max),
    ];
    for (value, set) in knobs {
        if let Some(v) = value {
            b = set(b, v);
        }
    }
    if r.ignore_cache_headers {
        b = b.use_cache_headers(false);
    }
    if let Some(n) = r.usage_threshold {
        b = b.usage_threshold(n);
    }
    if r.no_background {
        b = b.background_refresh(false);
    }
    b
}
