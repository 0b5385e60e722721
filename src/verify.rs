//! Token verification on top of the cache: one call from a compact JWS to
//! typed claims, with the algorithm rules the JWT advisories taught.
//!
//! ## The order of the rules
//!
//! Cheapest first; the first rule a token breaks is the error returned.
//!
//! 1. **Size**: over `max_token_bytes` is rejected before any decoding.
//! 2. **Shape**: three base64url parts (unpadded, canonical), two dots.
//! 3. **Header** ([`header`]): `alg` must be an allowed asymmetric
//!    algorithm (`none` in any casing and HMAC are always refused), `crit`
//!    rejects, `jku` / `x5u` / `jwk` / `x5c` are never read.
//! 4. **Claims** ([`claims`]): types, required claims, `exp`, `nbf`, `iss`,
//!    `aud`. Checked before the key lookup because they are cheap and need
//!    no key, so that a token which could never pass (expired, foreign
//!    issuer, ...) cannot make an unknown kid ask the refresher for a fetch.
//! 5. **Key**: by `kid` inside [`JwksCache::with_key`] (lock-free, no
//!    reference count touched); without a `kid`, the one usable key bound to
//!    the `alg`, per [`NoKidPolicy`]. The key must be bound to the header's
//!    `alg`. When the set publishes several keys under the kid (up to
//!    [`KeySet::MAX_KEYS_PER_KID`](crate::KeySet::MAX_KEYS_PER_KID)), the
//!    ones bound to the `alg` are the candidates, tried in document order:
//!    none is [`VerifyError::KeyAlgorithmMismatch`], none verifying is
//!    [`VerifyError::BadSignature`]. No key is trusted for being first.
//! 6. **Signature**: checked with the aws-lc key parsed when the key set
//!    was fetched (no key parsing per token).
//! 7. **Typed claims**: deserialized into the caller's type.

mod bearer;
mod builder;
mod claims;
mod error;
mod fit;
mod header;
mod http;
mod issuers;
mod json;

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::algorithm::Algorithm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use crate::cache::JwksCache;
use crate::jwk::{AlgorithmSet, Key};
use crate::sync::Arc;

pub use bearer::bearer_token;
pub use builder::VerifierBuilder;
use claims::ClaimRules;
pub use error::{AlgorithmRejection, VerifyError};
pub use header::TokenHeader;
pub use http::BearerChallenge;
pub use issuers::{IssuerVerifier, IssuerVerifierBuilder};

/// What to do with a token whose header has no `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoKidPolicy {
    /// Accept it if exactly one usable key in the set is bound to its `alg`
    /// (a single-key identity provider); otherwise reject with
    /// [`VerifyError::NoKid`]. Never triggers a refresh.
    #[default]
    SingleKey,
    /// Always reject with [`VerifyError::NoKid`].
    Reject,
}

/// A token that passed every rule: its claims, typed, and its header.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified<C> {
    /// The claims, deserialized into the caller's type.
    pub claims: C,
    /// The header.
    pub header: TokenHeader,
}

impl<C> Verified<C> {
    /// The claims, dropping the header.
    pub fn into_claims(self) -> C {
        self.claims
    }
}

#[derive(Debug)]
struct Config {
    rules: ClaimRules,
    algorithms: AlgorithmSet,
    no_kid: NoKidPolicy,
    max_token_bytes: usize,
    max_kid_len: usize,
}

/// Verifies compact JWS tokens against a [`JwksCache`]; from
/// [`JwksCache::verifier`].
///
/// Cheap to clone and shared by every request thread. See the
/// module-level rules in [`verify`](Self::verify).
#[derive(Clone)]
pub struct Verifier {
    cache: JwksCache,
    config: Arc<Config>,
}

/// A rule about the key whose signature checked out.
type KeyCheck<'a> = dyn Fn(&Key) -> Result<(), VerifyError> + 'a;

/// Decoding buffers, on the stack unless a part is unusually large.
const HEADER_STACK: usize = 512;
const CLAIMS_STACK: usize = 1024;
/// RSA-4096 signatures (512 bytes) stay on the stack; larger go to the heap.
const SIGNATURE_STACK: usize = 512;
/// No supported key makes a longer signature (RSA-8192: 1024 bytes).
const MAX_SIGNATURE: usize = 1024;

impl Verifier {
    /// Verifies `token` (a compact JWS, without `Bearer `) and returns its
    /// claims as `C` with its header. An unknown `kid` that passed every
    /// other check asks the refresher for a refresh (at most one per
    /// `Builder::unknown_kid_cooldown`, whatever the traffic) and fails with
    /// [`VerifyError::UnknownKey`] without waiting; a retry after the
    /// refresh succeeds. A kid asked for before the identity provider
    /// published it is negatively cached, but gets another chance (one fetch)
    /// once the cooldown has passed: it is not locked out for
    /// `Builder::negative_cache_ttl`. A signature that fails with a known
    /// kid's key asks for a refresh under the same guard (the provider may
    /// have replaced the key under the same kid).
    ///
    /// **Blocking**: it does not wait for the network, with one exception:
    /// with `Builder::background_refresh(false)`, the lookup that finds the
    /// key set due waits up to `Builder::expired_wait` (5 s by default) for
    /// the one shared refresh (so does every lookup arriving meanwhile).
    ///
    /// The rules, cheapest first (the first broken one is the error):
    /// size, shape, header (`alg` allowed and asymmetric, no `crit`), claims
    /// (types, required, `exp`, `nbf`, `iss`, `aud`), key (by `kid`, bound to
    /// `alg`), signature, then deserialization into `C`.
    ///
    /// ```
    /// # use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
    /// # use jwks_sync::{JwksCache, VerifyError};
    /// # use std::time::Duration;
    /// # let key = TestKey::generate(KeyAlg::Es256, "k1").unwrap();
    /// # let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&key]))).build()?;
    /// # cache.wait_ready(Duration::from_secs(10))?;
    /// # let verifier = cache.verifier().build()?;
    /// # let token = key.sign(&serde_json::json!({"sub": "alice", "exp": 1_000_000_000})).unwrap();
    /// match verifier.verify::<serde_json::Value>(&token) {
    ///     Ok(verified) => println!("hello {}", verified.claims["sub"]),
    ///     Err(VerifyError::KeySet(e)) => eprintln!("503: {e}"),
    ///     Err(e) => eprintln!("401: {e}"), // "token has expired (exp)"
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Verified<C>, VerifyError> {
        self.cache.counted(self.run(token, None, None))
    }

    /// Like [`verify`](Self::verify), but an unknown `kid` (that passed
    /// every other check) waits up to `timeout` for the refresh it asks for,
    /// or for one already in flight; before the first key set is loaded it
    /// waits for that. Use it where a key rotation must not fail the first
    /// requests signed with the new key.
    ///
    /// Waiting is bounded by `timeout`. Inside the unknown-kid cooldown it
    /// waits for the next fetch the cooldown permits if that comes within
    /// `timeout`, and fails at once otherwise (or for a kid in the negative
    /// cache). A signature failing with a known kid's key asks for a refresh
    /// under the same guard and, if a new set arrives within `timeout`, is
    /// checked once more against it (same-kid re-key). With background
    /// refresh off, a due set is refreshed first (up to
    /// `Builder::expired_wait`).
    pub fn verify_or_wait<C: DeserializeOwned>(
        &self,
        token: &str,
        timeout: Duration,
    ) -> Result<Verified<C>, VerifyError> {
        // A caller passing `Duration::MAX` means "as long as it takes".
        let deadline = crate::cache::deadline_after(timeout);
        self.cache.counted(self.run(token, Some(deadline), None))
    }

    /// The cache this verifier reads keys from.
    pub fn cache(&self) -> &JwksCache {
        &self.cache
    }

    /// `bind`, when given, is asked about the key whose signature checked
    /// out ([`IssuerVerifier`]'s key-issuer binding); its error is the
    /// verdict.
    fn run<C: DeserializeOwned>(
        &self,
        token: &str,
        wait: Option<Instant>,
        bind: Option<&KeyCheck<'_>>,
    ) -> Result<Verified<C>, VerifyError> {
        let cfg = &*self.config;
        if token.len() > cfg.max_token_bytes {
            return Err(VerifyError::TooLarge {
                limit: cfg.max_token_bytes,
            });
        }
        let parts = Parts::split(token)?;

        let (mut stack, mut heap) = ([0u8; HEADER_STACK], Vec::new());
        let header_json = decode(
            parts.header,
            &mut stack,
            &mut heap,
            "header is not base64url",
        )?;
        let header = header::parse(header_json, cfg.algorithms)?;

        let (mut stack, mut heap) = ([0u8; CLAIMS_STACK], Vec::new());
        let claims_json = decode(
            parts.claims,
            &mut stack,
            &mut heap,
            "claims are not base64url",
        )?;
        claims::check(claims_json, &cfg.rules, unix_now())?;

        if parts.signature.len() > base64_len(MAX_SIGNATURE) {
            return Err(VerifyError::BadSignature);
        }
        let (mut stack, mut heap) = ([0u8; SIGNATURE_STACK], Vec::new());
        let signature = decode(
            parts.signature,
            &mut stack,
            &mut heap,
            "signature is not base64url",
        )?;

        let alg = header.alg;
        // Every key under the kid bound to `alg` is tried, in document
        // order (at most `KeySet::MAX_KEYS_PER_KID`); none bound to it is
        // the algorithm-confusion rule.
        let check = |first: &Key| {
            let mut bound = false;
            for key in first.same_kid().filter(|k| k.allows(alg)) {
                bound = true;
                if key.verify_signature(alg, parts.signing_input, signature) {
                    return bind.map_or(Ok(()), |bind| bind(key));
                }
            }
            Err(if bound {
                VerifyError::BadSignature
            } else {
                VerifyError::KeyAlgorithmMismatch {
                    alg,
                    key: first.key_type(),
                }
            })
        };
        match header.kid.as_deref() {
            Some(kid) => self.by_kid(kid, wait, &check)?,
            None => self.without_kid(alg, wait, &check)?,
        }

        let claims = serde_json::from_slice::<C>(claims_json)
            .map_err(|e| fit::claims_type_error(claims_json, &e))?;
        Ok(Verified {
            claims,
            header: header.to_owned(),
        })
    }

    /// The hot path: the check runs inside `with_key`, on the published set.
    fn by_kid(
        &self,
        kid: &str,
        wait: Option<Instant>,
        check: &dyn Fn(&Key) -> Result<(), VerifyError>,
    ) -> Result<(), VerifyError> {
        if kid.len() > self.config.max_kid_len {
            // Could never be in the set: no lookup, no refresh.
            return Err(VerifyError::UnknownKey);
        }
        let look_up = || match wait {
            None => self.cache.with_key(kid, check),
            Some(deadline) => {
                let timeout = deadline.saturating_duration_since(Instant::now());
                self.cache.with_key_or_wait(kid, timeout, check)
            }
        };
        let generation = self.cache.generation();
        match look_up()? {
            // Same-kid re-key: the provider may have replaced the key under
            // this kid. Ask for a refresh under the unknown-kid guard; retry
            // once if a newer set is in service.
            Err(VerifyError::BadSignature)
                if self.cache.refresh_for_bad_signature(kid, generation, wait) =>
            {
                look_up()?
            }
            verdict => verdict,
        }
    }

    /// No `kid`: the one usable key bound to `alg`, if there is exactly one.
    #[cold]
    fn without_kid(
        &self,
        alg: Algorithm,
        wait: Option<Instant>,
        check: &dyn Fn(&Key) -> Result<(), VerifyError>,
    ) -> Result<(), VerifyError> {
        if self.config.no_kid == NoKidPolicy::Reject {
            return Err(VerifyError::NoKid { candidates: 0 });
        }
        let set = self.cache.serving_set(wait)?;
        let mut candidates = set.keys().iter().filter(|key| key.allows(alg));
        match (candidates.next(), candidates.count()) {
            (Some(key), 0) => check(key),
            (first, more) => Err(VerifyError::NoKid {
                candidates: usize::from(first.is_some()) + more,
            }),
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("cache", &self.cache)
            .field("config", &self.config)
            .finish()
    }
}

/// The three parts of a compact JWS, still encoded.
struct Parts<'t> {
    header: &'t [u8],
    claims: &'t [u8],
    signature: &'t [u8],
    /// `header.claims`, what the signature covers.
    signing_input: &'t [u8],
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Self, VerifyError> {
        const SHAPE: VerifyError =
            VerifyError::Malformed("not three base64url parts separated by dots");
        // `str::find` with a char pattern searches with memchr.
        let first = token.find('.').ok_or(SHAPE)?;
        let second = first + 1 + token[first + 1..].find('.').ok_or(SHAPE)?;
        let token = token.as_bytes();
        let signature = &token[second + 1..];
        if signature.contains(&b'.') {
            return Err(SHAPE);
        }
        Ok(Parts {
            header: &token[..first],
            claims: &token[first + 1..second],
            signature,
            signing_input: &token[..second],
        })
    }
}

/// Decodes unpadded, canonical base64url into `stack` if it fits, else
/// into `heap`.
fn decode<'b>(
    part: &[u8],
    stack: &'b mut [u8],
    heap: &'b mut Vec<u8>,
    what: &'static str,
) -> Result<&'b [u8], VerifyError> {
    let need = base64::decoded_len_estimate(part.len());
    let out: &'b mut [u8] = if need <= stack.len() {
        stack
    } else {
        heap.resize(need, 0);
        heap
    };
    let len = URL_SAFE_NO_PAD
        .decode_slice(part, out)
        .map_err(|_| VerifyError::Malformed(what))?;
    Ok(&out[..len])
}

/// The unpadded base64 length of `bytes` bytes.
const fn base64_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
