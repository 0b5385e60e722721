//! `examples/server.rs`, run as deployed: its own `serve` loop on a real
//! tiny_http socket, real tokens from the loopback test IdP, and requests
//! over TCP. Every error answer's `WWW-Authenticate` must pass a strict
//! RFC 6750 parser.

mod rfc6750;
#[allow(dead_code)]
#[path = "../examples/server.rs"]
mod server;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use jwks_sync::testing::{KeyAlg, TestIdp, TestKey};
use jwks_sync::{Clock, JwksCache, ManualClock, Verifier};
use serde_json::{json, Value};

const AUD: &str = "my-api";

/// ManualClock is not Clone; share it.
struct SharedClock(Arc<ManualClock>);

impl Clock for SharedClock {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// The example's server on an ephemeral loopback port, over a cache of the
/// IdP's keys whose time the test controls. Unblocked on drop.
struct Running {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<thread::JoinHandle<()>>,
    clock: Arc<ManualClock>,
    cache: JwksCache,
}

impl Running {
    fn start(idp: &TestIdp) -> Self {
        let clock = Arc::new(ManualClock::new());
        let cache = JwksCache::builder(idp.jwks_url())
            .add_root_certificate_pem(idp.ca_pem())
            .clock(SharedClock(Arc::clone(&clock)))
            .interval(Duration::from_secs(60))
            .min_refresh_interval(Duration::from_secs(1))
            .stale_while_error(Duration::from_secs(60))
            .background_refresh(false)
            .build()
            .expect("cache");
        cache.wait_ready(Duration::from_secs(10)).expect("keys");
        let verifier: Verifier = cache
            .verifier()
            .issuer(idp.issuer())
            .audience(AUD)
            .build()
            .expect("verifier");
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("listen"));
        let addr = server.server_addr().to_ip().expect("an IP address");
        let serving = Arc::clone(&server);
        let thread = thread::spawn(move || server::serve(&serving, &verifier));
        Self {
            addr,
            server,
            thread: Some(thread),
            clock,
            cache,
        }
    }

    /// One request over a fresh connection: status, headers, JSON body.
    fn request(&self, method: &str, path: &str, authorization: Option<&str>) -> Answer {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(value) = authorization {
            head.push_str(&format!("Authorization: {value}\r\n"));
        }
        head.push_str("Content-Length: 0\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Answer::parse(&raw)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        }
    }

    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one `WWW-Authenticate` challenge, strictly parsed.
    fn challenge(&self) -> rfc6750::Attributes {
        let values = self.header("www-authenticate");
        assert_eq!(values.len(), 1, "{self:?}");
        rfc6750::parse(values[0]).unwrap_or_else(|e| panic!("invalid challenge: {e}"))
    }

    /// Asserts status, challenge `error` (None: a bare challenge) and the
    /// body's code.
    fn rejected(&self, status: u16, error: Option<&str>, code: &str) -> rfc6750::Attributes {
        assert_eq!(self.status, status, "{self:?}");
        let attrs = self.challenge();
        assert_eq!(attrs.get("realm").map(String::as_str), Some(server::REALM));
        assert_eq!(attrs.get("error").map(String::as_str), error, "{attrs:?}");
        assert_eq!(self.body["error"], json!(code), "{self:?}");
        attrs
    }
}

fn idp() -> TestIdp {
    let idp = TestIdp::start().expect("idp");
    idp.add_signing_key(TestKey::generate(KeyAlg::Es256, "k1").expect("key"));
    idp
}

fn token(idp: &TestIdp, extra: Value, ttl: u64) -> String {
    let mut claims = idp.claims("alice", AUD, ttl);
    for (name, value) in extra.as_object().expect("an object") {
        claims[name] = value.clone();
    }
    idp.mint(&claims).expect("mint")
}

#[test]
fn valid_tokens_pass_and_every_rejection_is_a_valid_rfc6750_answer() {
    let idp = idp();
    let running = Running::start(&idp);
    let reader = token(
        &idp,
        json!({"scope": "orders:read profile", "roles": []}),
        600,
    );
    let bearer = |t: &str| format!("Bearer {t}");

    let ok = running.request("GET", "/orders", Some(&bearer(&reader)));
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.body["sub"], json!("alice"));
    assert!(ok.header("www-authenticate").is_empty());
    assert_eq!(running.request("GET", "/health", None).status, 200);

    // Missing, or another scheme: a bare challenge, no error code.
    let attrs = running
        .request("GET", "/orders", None)
        .rejected(401, None, "missing_token");
    assert_eq!(attrs.len(), 1, "only the realm: {attrs:?}");
    running
        .request("GET", "/orders", Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"))
        .rejected(401, None, "missing_token");

    // A malformed header is the request's fault: 400.
    running
        .request("GET", "/orders", Some("Bearer a b"))
        .rejected(400, Some("invalid_request"), "ERR_AUTHORIZATION_NOT_BEARER");
    // A malformed token: 401, and the description (which quotes) stays valid.
    let attrs = running
        .request("GET", "/orders", Some("Bearer not-a-jwt"))
        .rejected(401, Some("invalid_token"), "ERR_JWT_MALFORMED");
    assert!(
        attrs["error_description"].contains("malformed"),
        "{attrs:?}"
    );

    let expired = {
        let mut claims = idp.claims("alice", AUD, 600);
        claims["exp"] = json!(1_000_000_000);
        claims["iat"] = json!(999_999_000);
        claims["scope"] = json!("orders:read");
        idp.mint(&claims).expect("mint")
    };
    let attrs = running
        .request("GET", "/orders", Some(&bearer(&expired)))
        .rejected(401, Some("invalid_token"), "ERR_JWT_EXPIRED");
    assert!(attrs["error_description"].contains("exp"), "{attrs:?}");

    let mut other_aud = idp.claims("alice", "someone-else", 600);
    other_aud["scope"] = json!("orders:read");
    let other_aud = idp.mint(&other_aud).expect("mint");
    running
        .request("GET", "/orders", Some(&bearer(&other_aud)))
        .rejected(401, Some("invalid_token"), "ERR_JWT_AUDIENCE_NOT_ACCEPTED");

    // Valid, but without the scope the route needs: 403 naming it.
    let attrs = running
        .request("POST", "/orders", Some(&bearer(&reader)))
        .rejected(403, Some("insufficient_scope"), "insufficient_scope");
    assert_eq!(attrs["scope"], "orders:write");
    let attrs = running
        .request("GET", "/admin", Some(&bearer(&reader)))
        .rejected(403, Some("insufficient_scope"), "insufficient_scope");
    assert!(
        attrs["error_description"].contains("role admin"),
        "{attrs:?}"
    );
    let admin = token(&idp, json!({"roles": ["admin"]}), 600);
    assert_eq!(
        running
            .request("GET", "/admin", Some(&bearer(&admin)))
            .status,
        200
    );

    // Signed by a key the IdP never published.
    let ghost = TestKey::generate(KeyAlg::Es256, "ghost").expect("key");
    let mut claims = idp.claims("mallory", AUD, 600);
    claims["scope"] = json!("orders:read");
    let unknown = ghost.sign(&claims).expect("sign");
    running
        .request("GET", "/orders", Some(&bearer(&unknown)))
        .rejected(401, Some("invalid_token"), "ERR_JWKS_NO_MATCHING_KEY");

    // A claim the API's type needs, with the wrong type: named, not a position.
    let odd = token(&idp, json!({"scope": ["orders:read"]}), 600);
    let attrs = running
        .request("GET", "/orders", Some(&bearer(&odd)))
        .rejected(401, Some("invalid_token"), "ERR_JWT_CLAIMS_DO_NOT_FIT");
    assert!(attrs["error_description"].contains("'scope'"), "{attrs:?}");
}

#[test]
fn an_idp_down_past_the_stale_bound_is_503_without_a_challenge() {
    let idp = idp();
    let running = Running::start(&idp);
    let good = format!(
        "Bearer {}",
        token(&idp, json!({"scope": "orders:read"}), 7200)
    );
    assert_eq!(running.request("GET", "/orders", Some(&good)).status, 200);

    // The IdP goes away; the set is served stale, then past lifetime plus
    // stale_while_error (120 s) it fails closed.
    drop(idp);
    running.clock.advance(Duration::from_secs(90));
    let _ = running.cache.refresh_now();
    assert_eq!(
        running.request("GET", "/orders", Some(&good)).status,
        200,
        "served stale within the bound"
    );
    running.clock.advance(Duration::from_secs(3600));
    // The refresher learns the time when it wakes; a failed refresh wakes it.
    let _ = running.cache.refresh_now();
    let answer = running.request("GET", "/orders", Some(&good));
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.header("www-authenticate").is_empty(), "{answer:?}");
    assert_eq!(answer.header("retry-after"), ["5"]);
    assert_eq!(
        answer.body["error"],
        json!("ERR_JWKS_EXPIRED"),
        "{answer:?}"
    );
}

#[test]
fn every_challenge_the_library_writes_parses_strictly() {
    use jwks_sync::{AlgorithmRejection, BearerChallenge, VerifyError};
    let errors = [
        VerifyError::NotBearer,
        VerifyError::TooLarge { limit: 8192 },
        VerifyError::Malformed("header is not base64url"),
        VerifyError::DisallowedAlgorithm(AlgorithmRejection::None),
        VerifyError::UnsupportedCritical,
        VerifyError::UnknownKey,
        VerifyError::NoKid { candidates: 2 },
        VerifyError::BadSignature,
        VerifyError::Expired,
        VerifyError::NotYetValid,
        VerifyError::WrongIssuer,
        VerifyError::WrongAudience,
        VerifyError::MissingClaim("we\"ird\\name\u{7f}\u{e9}\r\n".into()),
        VerifyError::BadClaimType("exp"),
    ];
    for realm in ["api", "", "a \"quoted\" \\ realm\t", "caf\u{e9}\r\n"] {
        for err in &errors {
            let value = err.www_authenticate(realm).expect("a challenge");
            let attrs = rfc6750::parse(&value).unwrap_or_else(|e| panic!("{err:?}: {e}"));
            assert!(!attrs["error_description"].is_empty());
            assert!(attrs.contains_key("realm"));
        }
        for scope in ["orders:read", "a b  c", "we\"ird\\", " "] {
            let value = BearerChallenge::insufficient_scope(scope)
                .realm(realm)
                .description("needs \"more\"\u{0}")
                .header_value();
            let attrs = rfc6750::parse(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(attrs["error"], "insufficient_scope");
        }
    }
    assert_eq!(
        rfc6750::parse(r#"Bearer realm="api", error_description="a "quote""#).ok(),
        None,
        "the parser is strict"
    );
}
