//! The HTTPS transport: ureq 3 over rustls on aws-lc-rs. The only file of
//! the library that names ureq or rustls types; what leaves it is plain data
//! ([`Target`], [`Reply`]) or a [`FetchError`].
//!
//! Transport rules, per request (see the README section "HTTP"):
//!
//! - `https` only; `http` just to loopback hosts, behind
//!   `Builder::danger_accept_plain_http`;
//! - ureq follows no redirects: [`HttpClient::get`] does, at most
//!   `max_redirects`, resolving `Location` per RFC 3986 (`target.rs`) and
//!   re-checking every hop's scheme and origin (scheme, host, port);
//! - connect, response-header and whole-request timeouts always set (the
//!   whole-request budget spans redirects and the body);
//! - the body is read through `take(max_bytes + 1)`: never more than the
//!   cap plus one byte, whatever `Content-Length` says; error bodies are not
//!   read at all;
//! - `Content-Type` must be JSON (`application/json` or `application/*+json`);
//! - TLS: webpki verification against the built-in and added roots, then,
//!   with pins, the SHA-256 of the leaf's SubjectPublicKeyInfo, during the
//!   handshake ([`PinningVerifier`]);
//! - proxies from the environment (HTTP CONNECT only), never for loopback.

use std::fmt;
use std::io::{Read, Write};
// rustls and ureq take `std::sync::Arc`; nothing here is part of the
// protocol that `sync.rs` abstracts for loom.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};
use ureq::http::Response;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};
use ureq::{Agent, Body, ProxyProtocol};

use super::freshness::{self, CacheHeaders};
use super::options::HttpOptions;
use super::spki::{self, Pin};
use super::target::Origin;
pub(crate) use super::target::Target;
use super::Validators;
use crate::error::{FetchError, FetchErrorKind};

/// Sent with every request.
const USER_AGENT: &str = concat!("jwks-sync/", env!("CARGO_PKG_VERSION"));
/// Validators longer than this are not kept (a sane ETag is tens of bytes).
const MAX_VALIDATOR_LEN: usize = 1024;

/// What one GET asks for.
pub(crate) struct Get<'a> {
    /// Sent as `If-None-Match` / `If-Modified-Since`.
    pub(crate) validators: &'a Validators,
    /// The body cap.
    pub(crate) max_bytes: usize,
    /// Origins a redirect may lead to.
    pub(crate) allowed: &'a [Origin],
}

/// A successful answer.
#[derive(Debug)]
pub(crate) enum Reply {
    /// `200`: a JSON body within the cap.
    Document {
        body: Vec<u8>,
        cache: CacheHeaders,
        validators: Validators,
    },
    /// `304` to a conditional request.
    NotModified {
        cache: CacheHeaders,
        validators: Validators,
    },
}

/// Blocking HTTPS client with the crate's transport rules.
pub(crate) struct HttpClient {
    direct: Agent,
    /// The same settings plus the environment's proxy, if any.
    proxied: Option<Agent>,
    max_redirects: u32,
    timeout: Duration,
    plain_http: bool,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("proxied", &self.proxied.is_some())
            .field("max_redirects", &self.max_redirects)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client; `Err` is a configuration message naming the knob.
    pub(crate) fn new(opts: &HttpOptions) -> Result<Self, String> {
        for (name, d) in [
            ("connect_timeout", opts.connect_timeout),
            ("response_timeout", opts.response_timeout),
            ("timeout", opts.timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be positive"));
            }
        }
        let tls = tls_config(opts)?;
        let agent = |proxy: Option<ureq::Proxy>| {
            let config = Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .save_redirect_history(false)
                .user_agent(USER_AGENT)
                .accept("application/jwk-set+json, application/json;q=0.9")
                .proxy(proxy)
                .timeout_connect(Some(opts.connect_timeout))
                .timeout_recv_response(Some(opts.response_timeout))
                .timeout_global(Some(opts.timeout))
                .build();
            let connector =
                ().chain(ConnectProxyConnector::default())
                    .chain(TcpConnector::default())
                    .chain(TlsConnector {
                        config: Arc::clone(&tls),
                    });
            Agent::with_parts(config, connector, DefaultResolver::default())
        };
        let env_proxy = if opts.env_proxy {
            ureq::Proxy::try_from_env().filter(|p| {
                let connect = matches!(p.protocol(), ProxyProtocol::Http | ProxyProtocol::Https);
                if !connect {
                    log::warn!("jwks-sync: ignoring the SOCKS proxy from the environment (HTTP CONNECT proxies only)");
                }
                connect
            })
        } else {
            None
        };
        Ok(Self {
            direct: agent(None),
            proxied: env_proxy.map(|p| agent(Some(p))),
            max_redirects: opts.max_redirects,
            timeout: opts.timeout,
            plain_http: opts.plain_http,
        })
    }

    /// Parses `url` and applies the scheme rule; `Err` is a message.
    pub(crate) fn check_url(&self, url: &str) -> Result<Target, String> {
        let target = Target::parse(url)?;
        if self.scheme_allowed(&target) {
            Ok(target)
        } else if self.plain_http {
            Err(format!(
                "{target}: plain http is allowed only to loopback hosts, even with danger_accept_plain_http"
            ))
        } else {
            Err(format!("{target}: https only (plain http needs danger_accept_plain_http, for loopback tests)"))
        }
    }

    fn scheme_allowed(&self, target: &Target) -> bool {
        target.is_https() || (self.plain_http && target.is_loopback())
    }

    /// GETs `start`, following allowed redirects, within the total timeout.
    pub(crate) fn get(&self, start: &Target, get: &Get<'_>) -> Result<Reply, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let mut target = start.clone();
        let mut hops = 0u32;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(FetchError::new(
                    FetchErrorKind::Timeout,
                    format!(
                        "{target}: the request timed out after {:?} (timeout)",
                        self.timeout
                    ),
                ));
            }
            let agent = match &self.proxied {
                Some(proxied) if !target.is_loopback() => proxied,
                _ => &self.direct,
            };
            let mut request = agent.get(target.as_str());
            if let Some(etag) = &get.validators.etag {
                request = request.header("If-None-Match", etag);
            }
            if let Some(date) = &get.validators.last_modified {
                request = request.header("If-Modified-Since", date);
            }
            let response = request
                .config()
                .timeout_global(Some(remaining))
                .build()
                .call()
                .map_err(|e| transport_error(e, &target))?;
            match response.status().as_u16() {
                200 | 203 => return read_document(response, &target, get.max_bytes),
                304 if *get.validators == Validators::default() => {
                    return Err(FetchError::new(
                        FetchErrorKind::Status(304),
                        format!("{target} answered 304 Not Modified to an unconditional request"),
                    ));
                }
                304 => {
                    return Ok(Reply::NotModified {
                        cache: cache_headers(&response),
                        validators: validators(&response),
                    })
                }
                301 | 302 | 303 | 307 | 308 => {
                    target = self.redirect(&target, &response, hops, get.allowed)?;
                    hops += 1;
                }
                code => return Err(status_error(code, &response, &target)),
            }
        }
    }

    /// Checks a redirect and returns where it leads.
    fn redirect(
        &self,
        from: &Target,
        response: &Response<Body>,
        hops: u32,
        allowed: &[Origin],
    ) -> Result<Target, FetchError> {
        let refuse = |msg: String| FetchError::new(FetchErrorKind::Redirect, msg);
        if hops >= self.max_redirects {
            return Err(refuse(format!(
                "{from}: more than {} redirects (max_redirects)",
                self.max_redirects
            )));
        }
        let location = header(response, "location")
            .ok_or_else(|| refuse(format!("{from}: redirect without a Location header")))?;
        let to = from
            .join(&location)
            .map_err(|e| refuse(format!("{from}: {e}")))?;
        if !self.scheme_allowed(&to) {
            return Err(refuse(format!(
                "{from}: redirect to non-https {to} refused"
            )));
        }
        if !allowed.contains(to.origin()) {
            return Err(refuse(format!(
                "{from}: redirect to origin {} refused (allow it with allow_redirect_host)",
                to.origin()
            )));
        }
        log::debug!("jwks-sync: following a redirect from {from} to {to}");
        Ok(to)
    }
}

/// Reads a `200` body under the cap after checking its type.
fn read_document(
    response: Response<Body>,
    target: &Target,
    max_bytes: usize,
) -> Result<Reply, FetchError> {
    let content_type = header(&response, "content-type");
    if !content_type.as_deref().is_some_and(is_json_media_type) {
        return Err(FetchError::new(
            FetchErrorKind::ContentType,
            format!(
                "{target}: Content-Type {} is not JSON (expected application/json, application/jwk-set+json or another +json type)",
                content_type.as_deref().map_or("(none)".to_owned(), |c| format!("{:?}", truncate(c, 64)))
            ),
        ));
    }
    let too_large = |what: String| {
        FetchError::new(
            FetchErrorKind::TooLarge,
            format!("{target}: {what} over the {max_bytes}-byte cap (max_document_bytes)"),
        )
    };
    let declared = header(&response, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let cap = u64::try_from(max_bytes).unwrap_or(u64::MAX);
    if let Some(len) = declared.filter(|len| *len > cap) {
        return Err(too_large(format!("the body declares {len} bytes,")));
    }
    let cache = cache_headers(&response);
    let validators = validators(&response);
    let initial = declared.map_or(8 * 1024, |len| usize::try_from(len).unwrap_or(max_bytes));
    let mut body = Vec::with_capacity(initial.min(max_bytes));
    response
        .into_body()
        .into_reader()
        .take(cap.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| transport_error(ureq::Error::from(e), target))?;
    if body.len() > max_bytes {
        return Err(too_large("the body is".to_owned()));
    }
    Ok(Reply::Document {
        body,
        cache,
        validators,
    })
}

/// `application/json` or `application/<anything>+json`, parameters allowed.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.split_once('/') {
        Some(("application", sub)) => sub == "json" || (sub.len() > 5 && sub.ends_with("+json")),
        _ => false,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn cache_headers(response: &Response<Body>) -> CacheHeaders {
    let cache_control: Vec<&str> = response
        .headers()
        .get_all("cache-control")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    CacheHeaders {
        cache_control: (!cache_control.is_empty()).then(|| cache_control.join(", ")),
        age: header(response, "age"),
        expires: header(response, "expires"),
        date: header(response, "date"),
    }
}

fn validators(response: &Response<Body>) -> Validators {
    let keep = |v: Option<String>| v.filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_LEN);
    Validators {
        etag: keep(header(response, "etag")),
        last_modified: keep(header(response, "last-modified")),
    }
}

/// A non-success status; the body is not read.
fn status_error(code: u16, response: &Response<Body>, target: &Target) -> FetchError {
    let hint = match code {
        300..=399 => " (a redirect this client does not follow)",
        401 | 403 => " (the key set should be public)",
        404 | 410 => " (check the URL)",
        _ => "",
    };
    let error = FetchError::new(FetchErrorKind::Status(code), format!("from {target}{hint}"));
    let retry = header(response, "retry-after").and_then(|v| {
        freshness::retry_after(&v, header(response, "date").as_deref(), SystemTime::now())
    });
    match retry {
        Some(delay) => error.with_retry_after(delay),
        None => error,
    }
}

/// Maps ureq's error to a kind the refresher's retry rules understand.
fn transport_error(error: ureq::Error, target: &Target) -> FetchError {
    use FetchErrorKind as K;
    let (kind, msg) = match error {
        ureq::Error::Timeout(which) => {
            let knob = match which {
                ureq::Timeout::Resolve | ureq::Timeout::Connect => "connect_timeout",
                ureq::Timeout::SendRequest | ureq::Timeout::RecvResponse => "response_timeout",
                _ => "timeout",
            };
            (K::Timeout, format!("timed out ({which:?}; see {knob})"))
        }
        ureq::Error::Io(e) => return io_error(&e, target),
        ureq::Error::Rustls(e) => return tls_error(&e, target),
        ureq::Error::Tls(msg) => (K::Tls, format!("TLS failed: {msg}")),
        ureq::Error::HostNotFound => (K::Connect, "cannot resolve the host".to_owned()),
        ureq::Error::ConnectionFailed => (K::Connect, "cannot connect".to_owned()),
        ureq::Error::ConnectProxyFailed(msg) => {
            (K::Connect, format!("proxy CONNECT failed: {msg}"))
        }
        ureq::Error::Protocol(e) => (K::Connect, format!("malformed HTTP response ({e})")),
        ureq::Error::LargeResponseHeader(..) => {
            (K::TooLarge, "response headers too large".to_owned())
        }
        ureq::Error::BodyExceedsLimit(_) => (K::TooLarge, "body too large".to_owned()),
        ureq::Error::BadUri(e) => (K::Url, format!("bad URL ({e})")),
        ureq::Error::Http(e) => (K::Url, format!("cannot build the request ({e})")),
        other => (K::Other, other.to_string()),
    };
    FetchError::new(kind, format!("{target}: {msg}"))
}

fn io_error(e: &std::io::Error, target: &Target) -> FetchError {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_error(tls, target);
    }
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FetchErrorKind::Timeout,
        _ => FetchErrorKind::Connect,
    };
    FetchError::new(kind, format!("{target}: connection failed ({e})"))
}

fn tls_error(e: &rustls::Error, target: &Target) -> FetchError {
    use rustls::CertificateError as C;
    let msg = match e {
        rustls::Error::InvalidCertificate(C::Other(other))
            if other.0.downcast_ref::<PinMismatch>().is_some() =>
        {
            PinMismatch.to_string()
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!("{e} (not issued by a trusted CA; trust it with add_root_certificate_pem)")
        }
        _ => e.to_string(),
    };
    FetchError::new(FetchErrorKind::Tls, format!("{target}: TLS failed: {msg}"))
}

mod tls;

use tls::{tls_config, PinMismatch, TlsConnector};

#[cfg(test)]
mod tests;
