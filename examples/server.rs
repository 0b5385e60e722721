//! A blocking API server (tiny_http, no async runtime) whose routes are
//! protected by scopes and roles, answering RFC 6750 errors.
//!
//! ```text
//! cargo run --example server --features testing
//!     # self-contained: starts a loopback test IdP and prints curl commands
//! cargo run --example server --features testing -- --issuer https://login.example.com --audience my-api
//!     # a real IdP (OpenID discovery); JWKS_ISSUER / JWKS_AUDIENCE work too
//! ```
//!
//! | route | needs |
//! |---|---|
//! | `GET /health` | nothing |
//! | `GET /me` | a valid token |
//! | `GET /orders` | scope `orders:read` |
//! | `POST /orders` | scope `orders:write` |
//! | `GET /admin` | role `admin` (`roles` claim) |
//!
//! Answers: `200` with JSON; `401` with `WWW-Authenticate: Bearer
//! realm="example"` when there is no Bearer token, or with
//! `error="invalid_token"` when the token is rejected; `400`
//! `invalid_request` for a malformed `Authorization` header; `403`
//! `insufficient_scope` for a missing scope or role; `503` (no challenge,
//! `Retry-After`) when the keys are unavailable, e.g. the IdP is down past
//! the stale bound. Every error body is `{"error": CODE, "message": ...}`
//! with the stable [`VerifyError::code`].
//!
//! `tests/example_server.rs` runs this file's [`serve`] with real requests.

use std::time::Duration;

use jwks_sync::{bearer_token, BearerChallenge, JwksCache, Verifier, VerifyError};
use serde::Deserialize;
use serde_json::json;

/// The realm every challenge names.
pub const REALM: &str = "example";

/// How long a request may wait for a key set refresh (a key rotation's
/// first tokens, or the first set at start-up).
const KEY_WAIT: Duration = Duration::from_secs(2);

/// What a route asks of a token beyond being valid.
#[derive(Debug, Clone, Copy)]
enum Need {
    Nothing,
    Token,
    Scope(&'static str),
    Role(&'static str),
}

/// The routes: method, path, need.
const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/health", Need::Nothing),
    ("GET", "/me", Need::Token),
    ("GET", "/orders", Need::Scope("orders:read")),
    ("POST", "/orders", Need::Scope("orders:write")),
    ("GET", "/admin", Need::Role("admin")),
];

/// The claims this API reads (RFC 9068 style: `scope` is a space-separated
/// string). Anything else in the token is ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// A response, before it is written.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body.
    pub body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    /// An error answer: `code` and `message` in the body, the challenge in
    /// `WWW-Authenticate` when there is one.
    fn error(status: u16, code: &str, message: &str, challenge: Option<String>) -> Self {
        let mut reply = Self::json(status, json!({"error": code, "message": message}));
        if let Some(challenge) = challenge {
            reply.headers.push(("WWW-Authenticate", challenge));
        }
        reply
    }
}

/// The answer to one request: route, then token, then scope or role.
pub fn respond(
    verifier: &Verifier,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Reply {
    let Some(&(_, _, need)) = ROUTES.iter().find(|(m, p, _)| *m == method && *p == path) else {
        return Reply::json(404, json!({"error": "not_found"}));
    };
    if let Need::Nothing = need {
        return Reply::json(200, json!({"status": "ok"}));
    }
    let claims = match authenticate(verifier, authorization) {
        Ok(claims) => claims,
        Err(reply) => return reply,
    };
    let forbidden = |challenge: BearerChallenge, message: &str| {
        let challenge = challenge.realm(REALM).description(message);
        Reply::error(
            403,
            "insufficient_scope",
            message,
            Some(challenge.header_value()),
        )
    };
    match need {
        Need::Scope(scope) if !claims.scope.split(' ').any(|s| s == scope) => forbidden(
            BearerChallenge::insufficient_scope(scope),
            &format!("this resource needs the scope {scope}"),
        ),
        Need::Role(role) if !claims.roles.iter().any(|r| r == role) => forbidden(
            BearerChallenge::insufficient_scope(""),
            &format!("this resource needs the role {role}"),
        ),
        _ => Reply::json(200, json!({"sub": claims.sub, "route": path})),
    }
}

/// The claims of the request's Bearer token, or the error answer.
fn authenticate(verifier: &Verifier, authorization: Option<&str>) -> Result<Claims, Reply> {
    // No credentials, or another scheme: a bare challenge, no error code
    // (RFC 6750 §3.1).
    let no_credentials = || {
        let challenge = BearerChallenge::new().realm(REALM).header_value();
        Reply::error(
            401,
            "missing_token",
            "a Bearer token is required",
            Some(challenge),
        )
    };
    let value = authorization.ok_or_else(no_credentials)?;
    let is_bearer = value
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
        || value.eq_ignore_ascii_case("bearer");
    if !is_bearer {
        return Err(no_credentials());
    }
    let token = bearer_token(value).map_err(|e| error_reply(&e))?;
    verifier
        .verify_or_wait::<Claims>(token, KEY_WAIT)
        .map(|verified| verified.claims)
        .map_err(|e| error_reply(&e))
}

/// A rejected request, as the library maps it: status, stable code and
/// challenge; `503` asks the client to come back later.
fn error_reply(e: &VerifyError) -> Reply {
    let mut reply = Reply::error(
        e.http_status(),
        e.code(),
        &e.to_string(),
        e.www_authenticate(REALM),
    );
    if reply.status == 503 {
        reply.headers.push(("Retry-After", "5".to_owned()));
    }
    reply
}

/// Answers requests on `server` until it is unblocked (or fails).
pub fn serve(server: &tiny_http::Server, verifier: &Verifier) {
    for request in server.incoming_requests() {
        let authorization = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str().to_owned());
        let path = request.url().split('?').next().unwrap_or("").to_owned();
        let reply = respond(
            verifier,
            request.method().as_str(),
            &path,
            authorization.as_deref(),
        );
        let mut response =
            tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
        let json = ("Content-Type", "application/json".to_owned());
        for (name, value) in std::iter::once(&json).chain(&reply.headers) {
            // Names are constants, and values come from BearerChallenge,
            // which writes only printable ASCII: always valid.
            if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        }
        // A client that went away is its own problem.
        let _ = request.respond(response);
    }
}

/// `--name value` from the arguments, else the environment variable.
fn setting(args: &[String], flag: &str, env: &str) -> Option<String> {
    args.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .or_else(|| std::env::var(env).ok())
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let listen = setting(&args, "--listen", "LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
    let issuer = setting(&args, "--issuer", "JWKS_ISSUER");
    let audience = setting(&args, "--audience", "JWKS_AUDIENCE").unwrap_or_else(|| "my-api".into());

    // Without an issuer, a loopback test IdP stands in (kept alive below).
    let (cache, issuer, idp) = match issuer {
        Some(issuer) => (
            JwksCache::from_issuer(issuer.clone()).build()?,
            issuer,
            None,
        ),
        None => {
            let idp = jwks_sync::testing::TestIdp::start()?;
            idp.add_signing_key(jwks_sync::testing::TestKey::generate(
                jwks_sync::testing::KeyAlg::Es256,
                "example-key",
            )?);
            let cache = JwksCache::builder(idp.jwks_url())
                .add_root_certificate_pem(idp.ca_pem())
                .build()?;
            (cache, idp.issuer(), Some(idp))
        }
    };
    cache.wait_ready(Duration::from_secs(10))?;
    let verifier = cache
        .verifier()
        .issuer(issuer)
        .audience(audience.clone())
        .build()?;
    let server = tiny_http::Server::http(&listen)?;
    println!("listening on http://{listen}");
    if let Some(idp) = &idp {
        let mut claims = idp.claims("alice", &audience, 3600);
        claims["scope"] = json!("orders:read");
        claims["roles"] = json!(["admin"]);
        let token = idp.mint(&claims)?;
        println!("try:\n  curl -i http://{listen}/orders -H 'Authorization: Bearer {token}'");
        println!(
            "  curl -i -X POST http://{listen}/orders -H 'Authorization: Bearer {token}'   # 403"
        );
        println!("  curl -i http://{listen}/me   # 401");
    }
    serve(&server, &verifier);
    Ok(())
}
