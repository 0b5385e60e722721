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
}

impl<'a> Source<'a> {
    /// A URL if `text` has an http(s) scheme, else a file path.
    pub(crate) fn parse(text: &'a str) -> Self {
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            Source::Url(text)
        } else {
            Source::File(Path::new(text))
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
            Source::File(path) => {
                if !http.ca_files.is_empty() || !http.pins.is_empty() {
                    return Err(Failure::usage(
                        "--ca-file and --pin apply to URLs, not to files",
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
    Ok(b)
}

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
