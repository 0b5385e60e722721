//! A loopback identity provider for tests: a real HTTPS server on
//! `127.0.0.1`, a routing table the test controls, and fault injection.
//!
//! - **Server**: `std::net::TcpListener` plus rustls, one thread per
//!   connection (at most [`MAX_CONNECTIONS`] at once; more are closed),
//!   one request per connection (`Connection: close`). Dropping the
//!   [`TestIdp`] shuts every connection down and joins every thread.
//! - **Trust**: a fresh CA per server; the server certificate names
//!   `localhost`, `127.0.0.1` and `::1`, so `localhost` and `127.0.0.1` are
//!   two hosts of one server (handy for redirect and origin tests). Give
//!   [`TestIdp::ca_pem`] to `Builder::add_root_certificate_pem`, or pin
//!   [`TestIdp::spki_sha256`].
//! - **Routes**: [`JWKS_PATH`] serves the key set, [`DISCOVERY_PATH`] an
//!   OpenID configuration naming [`TestIdp::issuer`] and the JWKS URL; any
//!   path can get a document, headers and a [`Fault`]. Unknown paths are 404.
//! - **HTTP caching**: a route with an `ETag` header answers a matching
//!   `If-None-Match` with `304`; one with `Last-Modified` answers an
//!   `If-Modified-Since` at or after it with `304` (when no `If-None-Match`
//!   came). A `Date` header is added unless the route sets one.
//! - **Signing keys** (`idp/signing.rs`): the IdP holds its keys, mints
//!   tokens with the current one ([`TestIdp::mint`]) and rotates them the
//!   three ways real providers do: pre-publish, overlap, replace.
//! - **Recording**: requests per path, the last [`LOG_CAPACITY`] requests
//!   with their headers, connections accepted, body bytes sent per path.
//!
//! Client misbehaviour never panics the server: request heads are capped at
//! [`MAX_HEAD_BYTES`], reads and writes time out after [`IO_TIMEOUT`], and
//! failures just close the connection.
//!
//! Files: this one is the handle; `idp/routes.rs` decides answers and keeps
//! the records, `idp/server.rs` is the wire (accept loop, connections),
//! `idp/tls.rs` makes the certificates, `idp/signing.rs` holds the keys.
//!
//! ```
//! use jwks_sync::testing::{Fault, KeyAlg, TestIdp, TestKey, JWKS_PATH};
//! use jwks_sync::JwksCache;
//! use std::time::Duration;
//!
//! let idp = TestIdp::start().unwrap();
//! let key = TestKey::generate(KeyAlg::Es256, "k1").unwrap();
//! idp.set_keys(&[&key]);
//! let cache = JwksCache::builder(idp.jwks_url())
//!     .add_root_certificate_pem(idp.ca_pem())
//!     .build()?;
//! cache.wait_ready(Duration::from_secs(10))?;
//! assert!(cache.get("k1").is_ok());
//!
//! idp.set_fault(JWKS_PATH, Fault::Status { code: 500, retry_after: None });
//! assert!(cache.refresh_now().is_err());
//! assert!(cache.get("k1").is_ok(), "the old set is still served");
//! assert_eq!(idp.requests(JWKS_PATH), 2);
//! # Ok::<(), jwks_sync::Error>(())
//! ```
//!
//! Rotating keys and minting tokens:
//!
//! ```
//! use jwks_sync::testing::{KeyAlg, TestIdp, TestKey};
//! use jwks_sync::JwksCache;
//! use std::time::Duration;
//!
//! let idp = TestIdp::start()?;
//! idp.add_signing_key(TestKey::generate(KeyAlg::Es256, "2026-01")?);
//! let cache = JwksCache::builder(idp.jwks_url())
//!     .add_root_certificate_pem(idp.ca_pem())
//!     // The default (30 s) would refuse a fetch so soon after the first one.
//!     .unknown_kid_cooldown(Duration::ZERO)
//!     .build()
//!     .map_err(|e| e.to_string())?;
//! let verifier = cache.verifier().issuer(idp.issuer()).audience("api").build()
//!     .map_err(|e| e.to_string())?;
//! let token = idp.mint(&idp.claims("alice", "api", 600))?;
//! assert!(verifier.verify_or_wait::<serde_json::Value>(&token, Duration::from_secs(10)).is_ok());
//!
//! // Replace: the set now holds only the new key, which signs at once; the
//! // cache learns it from the first token carrying its kid.
//! idp.rotate_replace(TestKey::generate(KeyAlg::Es256, "2026-02")?);
//! let token = idp.mint(&idp.claims("alice", "api", 600))?;
//! let verified = verifier
//!     .verify_or_wait::<serde_json::Value>(&token, Duration::from_secs(10))
//!     .map_err(|e| e.to_string())?;
//! assert_eq!(verified.header.kid(), Some("2026-02"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod routes;
mod server;
mod signing;
mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use routes::{Route, Shared, State};

use super::error::{TestError, TestErrorKind};
use super::keys::{jwks_json, TestKey};

/// Where the key set is served.
pub const JWKS_PATH: &str = "/jwks";
/// Where the OpenID configuration is served.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Connections served at once; further ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 32;
/// The cap on a request's line and headers.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Requests kept by [`TestIdp::request_log`].
pub const LOG_CAPACITY: usize = 256;
/// Socket read and write timeout on the server side.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A way for a route to misbehave. Faults win over documents and `304`s.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer `code` with a short text body, and `Retry-After` if given
    /// (sent verbatim: `"120"` or an HTTP date).
    Status {
        /// The status code.
        code: u16,
        /// The `Retry-After` value.
        retry_after: Option<String>,
    },
    /// Read the request, then send nothing for this long (or until the
    /// server is dropped), then close.
    Hang(Duration),
    /// Send the headers at once, then the document one byte per interval.
    Drip(Duration),
    /// Declare a `Content-Length` 100 bytes longer than the document, send
    /// the document, close.
    TruncatedBody,
    /// Serve a JSON document of `bytes` bytes, with a `Content-Length` when
    /// `declared`, else delimited by closing the connection.
    Oversize {
        /// The body size.
        bytes: usize,
        /// Whether `Content-Length` announces it.
        declared: bool,
    },
    /// Serve the document under this `Content-Type`.
    ContentType(String),
    /// Answer `status` (301, 302, 303, 307, 308) with this `Location`.
    Redirect {
        /// The status code.
        status: u16,
        /// The `Location` header, verbatim (may be relative).
        location: String,
    },
    /// Read the request, then reset the TCP connection (RST, no response).
    Reset,
}

/// One request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// Header names lowercased, values as sent, in order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The path (the target without its query).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTPS (or plain HTTP) identity provider; see the module docs.
pub struct TestIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    https: bool,
    ca_pem: String,
    spki_sha256: String,
    accept: Option<JoinHandle<()>>,
    registry: Arc<server::Registry>,
    ring: Mutex<signing::KeyRing>,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp")
            .field("base_url", &self.base_url())
            .field("requests", &self.total_requests())
            .finish_non_exhaustive()
    }
}

impl TestIdp {
    /// Starts an HTTPS server on `127.0.0.1` (a free port) with a fresh CA.
    pub fn start() -> Result<Self, TestError> {
        Self::launch(true)
    }

    /// Starts a plain-HTTP server on `127.0.0.1`: for
    /// `Builder::danger_accept_plain_http` tests and as the target of a
    /// "redirect to http" (which a client must refuse without contacting it).
    pub fn start_plain_http() -> Result<Self, TestError> {
        Self::launch(false)
    }

    fn launch(https: bool) -> Result<Self, TestError> {
        let io = |what: &str, e: std::io::Error| {
            TestError::new(TestErrorKind::Io, format!("{what}: {e}"))
        };
        let (config, ca_pem, spki_sha256) = if https {
            let m = tls::Material::generate()?;
            (Some(m.server_config), m.ca_pem, m.spki_sha256)
        } else {
            (None, String::new(), String::new())
        };
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| io("bind", e))?;
        let addr = listener.local_addr().map_err(|e| io("local_addr", e))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stopping: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_signal: Condvar::new(),
            connections: AtomicU64::new(0),
        });
        let registry = Arc::new(server::Registry::default());
        let mut idp = Self {
            shared: Arc::clone(&shared),
            addr,
            https,
            ca_pem,
            spki_sha256,
            accept: None,
            registry: Arc::clone(&registry),
            ring: Mutex::new(signing::KeyRing::default()),
        };
        {
            let mut state = shared.state();
            state
                .routes
                .insert(JWKS_PATH.to_owned(), Route::json(r#"{"keys":[]}"#));
            let discovery = serde_json::json!({
                "issuer": idp.issuer(),
                "jwks_uri": idp.jwks_url(),
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            });
            state.routes.insert(
                DISCOVERY_PATH.to_owned(),
                Route::json(discovery.to_string()),
            );
        }
        let handle = std::thread::Builder::new()
            .name(format!("test-idp-{}", addr.port()))
            .spawn(move || server::accept_loop(listener, shared, registry, config))
            .map_err(|e| io("spawn", e))?;
        idp.accept = Some(handle);
        Ok(idp)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://127.0.0.1:PORT` (or `http://` for a plain server).
    pub fn base_url(&self) -> String {
        self.url_with_host("127.0.0.1", "")
    }

    /// The issuer named by the discovery document: [`base_url`](Self::base_url).
    pub fn issuer(&self) -> String {
        self.base_url()
    }

    /// The URL of `path` on `127.0.0.1`.
    pub fn url(&self, path: &str) -> String {
        self.url_with_host("127.0.0.1", path)
    }

    /// The URL of `path` under another name of this server (`localhost`).
    pub fn url_with_host(&self, host: &str, path: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.port())
    }

    /// The key set URL.
    pub fn jwks_url(&self) -> String {
        self.url(JWKS_PATH)
    }

    /// The CA certificate (PEM) that issued the server certificate; empty
    /// for a plain-HTTP server.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The base64 SHA-256 of the server certificate's SubjectPublicKeyInfo,
    /// for `Builder::pin_spki_sha256`; empty for a plain-HTTP server.
    pub fn spki_sha256(&self) -> &str {
        &self.spki_sha256
    }

    fn route<R>(&self, path: &str, f: impl FnOnce(&mut Route) -> R) -> R {
        let mut state = self.shared.state();
        let route = state
            .routes
            .entry(path.to_owned())
            .or_insert_with(|| Route::json(Vec::new()));
        f(route)
    }

    /// Serves a key set publishing `keys` at [`JWKS_PATH`].
    pub fn set_keys(&self, keys: &[&TestKey]) {
        self.set_document(JWKS_PATH, jwks_json(keys));
    }

    /// Serves `body` at [`JWKS_PATH`].
    pub fn set_jwks(&self, body: impl Into<Vec<u8>>) {
        self.set_document(JWKS_PATH, body);
    }

    /// Serves `doc` at [`DISCOVERY_PATH`].
    pub fn set_discovery(&self, doc: &serde_json::Value) {
        self.set_document(DISCOVERY_PATH, doc.to_string());
    }

    /// Serves `body` as `application/json` at `path` (keeping its headers
    /// and fault).
    pub fn set_document(&self, path: &str, body: impl Into<Vec<u8>>) {
        let body = body.into();
        self.route(path, |r| r.body = body);
    }

    /// Sets response header `name` on `path`, replacing an earlier value.
    /// `ETag` and `Last-Modified` also turn on `304` answers.
    pub fn set_header(&self, path: &str, name: &str, value: &str) {
        self.route(path, |r| {
            r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            r.headers.push((name.to_owned(), value.to_owned()));
        });
    }

    /// Serves the key set with `Cache-Control: max-age=SECS`: the lifetime a
    /// cache that honours headers gives it (within its `min_ttl`/`max_ttl`).
    pub fn set_max_age(&self, secs: u64) {
        self.set_header(JWKS_PATH, "Cache-Control", &format!("max-age={secs}"));
    }

    /// Removes response header `name` from `path`.
    pub fn remove_header(&self, path: &str, name: &str) {
        self.route(path, |r| {
            r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name))
        });
    }

    /// Makes `path` misbehave until [`clear_fault`](Self::clear_fault).
    pub fn set_fault(&self, path: &str, fault: Fault) {
        self.route(path, |r| r.fault = Some(fault));
    }

    /// Makes `path` behave again.
    pub fn clear_fault(&self, path: &str) {
        self.route(path, |r| r.fault = None);
    }

    /// Stops serving `path` (it answers 404).
    pub fn remove_route(&self, path: &str) {
        self.shared.state().routes.remove(path);
    }

    /// Requests read for `path` (query ignored), faults and 304s included.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared.state().requests.get(path).copied().unwrap_or(0)
    }

    /// Requests read, all paths.
    pub fn total_requests(&self) -> u64 {
        self.shared.state().total
    }

    /// TCP connections accepted (a failed TLS handshake is a connection
    /// without a request).
    pub fn connections(&self) -> u64 {
        // Relaxed: statistics only.
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Body bytes written for `path` (all responses, partial ones included).
    pub fn body_bytes_sent(&self, path: &str) -> u64 {
        self.shared
            .state()
            .body_bytes
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// The latest request for `path`.
    pub fn last_request(&self, path: &str) -> Option<RecordedRequest> {
        let state = self.shared.state();
        state.log.iter().rev().find(|r| r.path() == path).cloned()
    }

    /// The headers of the latest request, any path (empty before one).
    pub fn last_request_headers(&self) -> Vec<(String, String)> {
        let state = self.shared.state();
        state
            .log
            .back()
            .map(|r| r.headers.clone())
            .unwrap_or_default()
    }

    /// The latest requests, oldest first (at most [`LOG_CAPACITY`]).
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.shared.state().log.iter().cloned().collect()
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // Relaxed is enough: the condvar's mutex and the socket shutdowns
        // below order the wake-ups; the flag is re-read after each.
        self.shared.stopping.store(true, Ordering::Relaxed);
        {
            let _guard = self
                .shared
                .stop_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.shared.stop_signal.notify_all();
        }
        self.registry.shutdown_all();
        // Wake the blocking accept().
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}
