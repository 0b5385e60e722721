//! The HTTP knobs, as plain data: the builder fills them, `build()` hands
//! them to the transport (`http.rs`), which checks and applies them.

use std::time::Duration;

/// Settings of the HTTPS source. Defaults are the ones documented on the
/// builder setters (and in the README section "HTTP").
#[derive(Debug, Clone)]
pub(crate) struct HttpOptions {
    /// Connecting, TLS handshake included.
    pub(crate) connect_timeout: Duration,
    /// From the request sent to the response headers received.
    pub(crate) response_timeout: Duration,
    /// The whole request, redirects and body included.
    pub(crate) timeout: Duration,
    /// Redirects followed per request.
    pub(crate) max_redirects: u32,
    /// Hosts a redirect may lead to, besides the configured URL's host.
    pub(crate) redirect_hosts: Vec<String>,
    /// Extra trust anchors, PEM text as given.
    pub(crate) root_pems: Vec<Vec<u8>>,
    /// Trust the compiled-in Mozilla roots (webpki-roots).
    pub(crate) built_in_roots: bool,
    /// SPKI pins, base64 as given; parsed at build time.
    pub(crate) spki_pins: Vec<String>,
    /// Allow `http://` to loopback hosts (tests only).
    pub(crate) plain_http: bool,
    /// Honour `HTTPS_PROXY` / `ALL_PROXY` / `HTTP_PROXY` and `NO_PROXY`.
    pub(crate) env_proxy: bool,
    /// Discovery: accept a `jwks_uri` on another origin than the issuer.
    pub(crate) cross_origin_jwks_uri: bool,
    /// The first HTTP-only knob that was set, for the error when the
    /// source is a custom fetcher.
    pub(crate) touched: Option<&'static str>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(4),
            timeout: Duration::from_secs(5),
            max_redirects: 3,
            redirect_hosts: Vec::new(),
            root_pems: Vec::new(),
            built_in_roots: true,
            spki_pins: Vec::new(),
            plain_http: false,
            env_proxy: true,
            cross_origin_jwks_uri: false,
            touched: None,
        }
    }
}

impl HttpOptions {
    /// Records that the knob `name` was set (the first one is reported).
    pub(crate) fn touch(&mut self, name: &'static str) -> &mut Self {
        self.touched.get_or_insert(name);
        self
    }
}
