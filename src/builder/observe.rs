//! The observability knobs: the source name and the metrics export period.

#[cfg(feature = "metrics")]
use std::time::Duration;

use super::{Builder, Source};
use crate::error::Error;

/// Longest source name, in characters.
const MAX_NAME: usize = 64;

impl Builder {
    /// The source's name: the `source` label of every metric, the
    /// `source=` field of every log line, and [`Status::name`](crate::Status::name).
    /// 1 to 64 characters among `A-Z a-z 0-9 . _ : -`, so a label never
    /// carries a URL path, a query or free text; [`build`](Self::build)
    /// rejects anything else. Give each cache of a process its own name.
    ///
    /// Defaults to the host of the URL (or of the issuer) without port, or
    /// `"default"` for [`JwksCache::from_fetcher`](crate::JwksCache::from_fetcher).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Feature `metrics`: the longest time between two exports of the
    /// lookup and verification counters and the gauges to the `metrics`
    /// facade. The refresher exports at the end of every round and wakes up
    /// this often for it; readers never call the facade.
    ///
    /// Defaults to 5 seconds.
    #[cfg(feature = "metrics")]
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }

    /// The validated name, or the default for the source.
    pub(super) fn source_name(&self) -> Result<String, Error> {
        #[cfg(feature = "metrics")]
        if self.metrics_interval < Duration::from_millis(1) {
            return Err(Error::Config(
                "metrics_interval must be at least 1 millisecond".to_owned(),
            ));
        }
        match &self.name {
            Some(name) if valid(name) => Ok(name.clone()),
            Some(_) => Err(Error::Config(format!(
                "name must be 1 to {MAX_NAME} characters among A-Z a-z 0-9 . _ : -"
            ))),
            None => Ok(default_name(&self.source)),
        }
    }
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

fn valid(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= MAX_NAME && name.chars().all(allowed)
}

fn default_name(source: &Source) -> String {
    match source {
        #[cfg(feature = "http")]
        Source::Url(url) | Source::Issuer(url) => host(url)
            .filter(|name| valid(name))
            .unwrap_or_else(|| "default".to_owned()),
        Source::Custom(_) => "default".to_owned(),
    }
}

#[cfg(feature = "http")]
/// The lowercase host of `url` without user info, port or brackets.
fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    Some(host.to_ascii_lowercase())
}

#[cfg(all(test, feature = "http"))]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_is_the_host_alone() {
        let name = |url: &str| default_name(&Source::Url(url.to_owned()));
        assert_eq!(
            name("https://Login.Example.com/tenant/keys?x=1"),
            "login.example.com"
        );
        assert_eq!(name("https://user:pw@idp.example:8443/jwks"), "idp.example");
        assert_eq!(name("https://[::1]:9000/jwks"), "::1");
        assert_eq!(name("not a url"), "default");
        assert_eq!(name("https://bad host/"), "default");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid("auth0-prod_eu.1:a"));
        assert!(!valid(""));
        assert!(!valid("a/b"));
        assert!(!valid("a b"));
        assert!(!valid(&"x".repeat(65)));
    }
}
