//! The HTTP knobs of [`Builder`] (plain data, kept in `HttpOptions`), and
//! the step of `build` that turns the source into the refresher's fetcher,
//! checking them. Without the `http` feature the setters remain and are a
//! configuration error on a custom fetcher, the only source there is.

use std::time::Duration;

use super::{Builder, Source};
use crate::error::Error;
use crate::fetch::{Fetch, HttpOptions};
#[cfg(feature = "http")]
use crate::fetch::{HttpFetcher, IssuerFetcher};

impl Builder {
    /// HTTP: the budget for connecting, TLS handshake included (and a
    /// proxy's CONNECT, if any).
    ///
    /// Defaults to 2 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.http.touch("connect_timeout").connect_timeout = timeout;
        self
    }

    /// HTTP: how long to wait for the response headers once the request is
    /// sent (a server that accepts and then hangs is cut off here).
    ///
    /// Defaults to 4 seconds.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.http.touch("response_timeout").response_timeout = timeout;
        self
    }

    /// HTTP: the budget for one whole request — connecting, redirects and
    /// reading the body included — so a server dripping a byte a second is
    /// cut off. Discovery's request has its own budget of the same length.
    ///
    /// Defaults to 5 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http.touch("timeout").timeout = timeout;
        self
    }

    /// HTTP: redirects followed per request (`0`: none). Every hop must be
    /// `https` and go to an allowed origin ([`allow_redirect_host`](Self::allow_redirect_host));
    /// `Location` is resolved against the request URL as RFC 3986 §5.2 says;
    /// one more redirect than this fails the fetch with
    /// [`FetchErrorKind::Redirect`](crate::FetchErrorKind::Redirect).
    ///
    /// Defaults to 3.
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.http.touch("max_redirects").max_redirects = redirects;
        self
    }

    /// HTTP: lets redirects lead to one more **origin** (scheme, host and
    /// port; RFC 6454); call again for more. `origin` is one of:
    ///
    /// - `host` (a name or IP address): `https` on port 443;
    /// - `host:port` (IPv6 as `[::1]:8443`): `https` on that port;
    /// - `https://host[:port]`, the origin itself (`http://` only matters
    ///   for loopback tests behind
    ///   [`danger_accept_plain_http`](Self::danger_accept_plain_http)).
    ///
    /// A redirect to any other origin fails the fetch, including the same
    /// host on another port or scheme. A malformed entry fails
    /// [`build`](Self::build).
    ///
    /// Defaults to only the origin of the configured URL (of the issuer,
    /// with discovery, plus an allowed cross-origin `jwks_uri`'s origin).
    pub fn allow_redirect_host(mut self, host: impl Into<String>) -> Self {
        self.http
            .touch("allow_redirect_host")
            .redirect_hosts
            .push(host.into());
        self
    }

    /// HTTP: trusts the CA certificate(s) in `pem` (one or more
    /// `CERTIFICATE` blocks) besides the built-in roots. Bad PEM fails
    /// [`build`](Self::build).
    ///
    /// Defaults to none: the built-in roots only.
    pub fn add_root_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.http
            .touch("add_root_certificate_pem")
            .root_pems
            .push(pem.as_ref().to_vec());
        self
    }

    /// HTTP: whether to trust the compiled-in Mozilla root store
    /// (webpki-roots). Turn off to trust only
    /// [`add_root_certificate_pem`](Self::add_root_certificate_pem) CAs.
    /// The platform's store is not consulted.
    ///
    /// Defaults to on.
    pub fn use_built_in_roots(mut self, on: bool) -> Self {
        self.http.touch("use_built_in_roots").built_in_roots = on;
        self
    }

    /// HTTP: requires the server's certificate to carry this public key:
    /// `pin` is the base64 SHA-256 of its SubjectPublicKeyInfo (optionally
    /// prefixed `sha256/`), checked during the TLS handshake after the
    /// usual chain checks. Call again to add backup pins; any one matching
    /// is enough. A mismatch fails the fetch with
    /// [`FetchErrorKind::Tls`](crate::FetchErrorKind::Tls).
    ///
    /// Defaults to no pins.
    pub fn pin_spki_sha256(mut self, pin: impl Into<String>) -> Self {
        self.http
            .touch("pin_spki_sha256")
            .spki_pins
            .push(pin.into());
        self
    }

    /// HTTP: **dangerous** — allows plain `http://` URLs and redirects, to
    /// loopback hosts (`localhost`, `127.0.0.0/8`, `::1`) only, for tests.
    /// Key sets fetched over plain HTTP can be forged by anyone on the path.
    ///
    /// Defaults to off: https only.
    pub fn danger_accept_plain_http(mut self, on: bool) -> Self {
        self.http.touch("danger_accept_plain_http").plain_http = on;
        self
    }

    /// HTTP: whether to use an HTTP CONNECT proxy from `ALL_PROXY`,
    /// `HTTPS_PROXY` or `HTTP_PROXY` (and lowercase forms), honouring
    /// `NO_PROXY`; read once, in [`build`](Self::build). Loopback hosts are
    /// never proxied; SOCKS proxies are ignored with a warning. TLS is
    /// end-to-end through the proxy: it sees the host, not the traffic.
    ///
    /// Defaults to on.
    pub fn use_env_proxy(mut self, on: bool) -> Self {
        self.http.touch("use_env_proxy").env_proxy = on;
        self
    }

    /// Discovery ([`JwksCache::from_issuer`](crate::JwksCache::from_issuer)): accepts a `jwks_uri` on
    /// another origin than the issuer (still https, still checked on every
    /// redirect); its host joins the redirect allow-list.
    ///
    /// Defaults to off: the `jwks_uri` must share the issuer's scheme, host
    /// and port, or discovery fails with
    /// [`FetchErrorKind::Discovery`](crate::FetchErrorKind::Discovery).
    pub fn allow_cross_origin_jwks_uri(mut self, on: bool) -> Self {
        self.http
            .touch("allow_cross_origin_jwks_uri")
            .cross_origin_jwks_uri = on;
        self
    }

    /// Turns the source into the refresher's fetcher, checking the HTTP
    /// settings.
    pub(super) fn fetcher(source: Source, http: &HttpOptions) -> Result<Box<dyn Fetch>, Error> {
        let config = |msg: String| Error::Config(msg);
        match source {
            Source::Custom(fetcher) => match http.touched {
                Some(knob) => Err(config(format!(
                    "{knob} applies only to HTTP sources (JwksCache::builder, JwksCache::from_issuer), \
                     not to JwksCache::from_fetcher"
                ))),
                None => Ok(fetcher),
            },
            #[cfg(feature = "http")]
            Source::Url(url) => {
                if http.cross_origin_jwks_uri {
                    return Err(config(
                        "allow_cross_origin_jwks_uri applies only to JwksCache::from_issuer".to_owned(),
                    ));
                }
                Ok(Box::new(HttpFetcher::new(&url, http).map_err(config)?))
            }
            #[cfg(feature = "http")]
            Source::Issuer(issuer) => Ok(Box::new(IssuerFetcher::new(&issuer, http).map_err(config)?)),
        }
    }
}
