//! [`VerifierBuilder`]: every verification knob, each with its default,
//! checked once in [`VerifierBuilder::build`].

use std::fmt;
use std::time::Duration;

use super::claims::{Audiences, ClaimRules, IatRules, MAX_REQUIRED};
use super::{Config, NoKidPolicy, Verifier};
use crate::cache::JwksCache;
use crate::error::Error;
use crate::jwk::AlgorithmSet;
use crate::sync::Arc;

/// Configures a [`Verifier`]; from [`JwksCache::verifier`].
///
/// Setters take and return `self`; [`build`](Self::build) checks the
/// settings.
#[must_use = "a VerifierBuilder does nothing until build() is called"]
pub struct VerifierBuilder {
    cache: JwksCache,
    issuers: Vec<Box<str>>,
    audiences: Audiences,
    leeway: Duration,
    max_token_age: Option<Duration>,
    reject_future_iat: bool,
    required: Vec<Box<str>>,
    algorithms: AlgorithmSet,
    no_kid: NoKidPolicy,
    max_token_bytes: usize,
    max_kid_len: usize,
}

impl JwksCache {
    /// Starts configuring a [`Verifier`] that checks tokens against this
    /// cache's keys.
    ///
    /// ```
    /// # use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
    /// # use jwks_sync::JwksCache;
    /// # use std::time::Duration;
    /// # let key = TestKey::generate(KeyAlg::Es256, "k1").unwrap();
    /// # let cache = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&key]))).build()?;
    /// # cache.wait_ready(Duration::from_secs(10))?;
    /// # let exp = jsonwebtoken::get_current_timestamp() + 600;
    /// # let token = key.sign(&serde_json::json!({
    /// #     "iss": "https://idp.example", "aud": "orders", "sub": "alice", "exp": exp,
    /// # })).unwrap();
    /// #[derive(serde::Deserialize)]
    /// struct Claims {
    ///     sub: String,
    /// }
    ///
    /// let verifier = cache
    ///     .verifier()
    ///     .issuer("https://idp.example")
    ///     .audience("orders")
    ///     .build()?;
    /// let verified = verifier.verify::<Claims>(&token)?;
    /// assert_eq!(verified.claims.sub, "alice");
    /// assert_eq!(verified.header.kid(), Some("k1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verifier(&self) -> VerifierBuilder {
        VerifierBuilder {
            cache: self.clone(),
            issuers: Vec::new(),
            audiences: Audiences::Unset,
            leeway: Duration::from_secs(60),
            max_token_age: None,
            reject_future_iat: false,
            required: vec!["exp".into()],
            algorithms: AlgorithmSet::asymmetric(),
            no_kid: NoKidPolicy::SingleKey,
            max_token_bytes: 16 * 1024,
            max_kid_len: 256,
        }
    }
}

impl VerifierBuilder {
    /// Accepts tokens whose `iss` is `issuer`; call again to accept several.
    /// Once an issuer is set, `iss` is also required.
    ///
    /// Defaults to accepting any issuer, or none.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into().into_boxed_str());
        self
    }

    /// Accepts tokens whose `aud` (a string, or an array of strings) names
    /// `audience`; call again to accept several. Once an audience is set,
    /// `aud` is also required.
    ///
    /// Defaults to none: a token that names any audience is rejected
    /// (RFC 7519 §4.1.3), one without `aud` passes.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        let audience = audience.into().into_boxed_str();
        self.audiences = match self.audiences {
            Audiences::OneOf(list) => {
                let mut list = list.into_vec();
                list.push(audience);
                Audiences::OneOf(list.into_boxed_slice())
            }
            _ => Audiences::OneOf(Box::new([audience])),
        };
        self
    }

    /// Skips the audience check: any `aud`, or none, passes. Only for a
    /// service that is the sole consumer of its identity provider's tokens;
    /// otherwise a token minted for another service is accepted here.
    /// Overrides [`audience`](Self::audience), and is overridden by it.
    ///
    /// Defaults to off.
    pub fn danger_accept_any_audience(mut self) -> Self {
        self.audiences = Audiences::Any;
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (and on `iat` when an `iat`
    /// rule is on), in whole seconds.
    ///
    /// Defaults to 60 seconds.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Rejects tokens issued more than `age` ago: `iat` becomes required,
    /// and a token fails with [`VerifyError::TooOld`](crate::VerifyError::TooOld)
    /// once `now >= iat + age + leeway` (a fractional `iat` rounds down).
    /// Whole seconds; must be at least one second. Useful where tokens
    /// carry a long `exp` but the service wants fresh logins.
    ///
    /// Defaults to no limit (`iat` is only type-checked).
    pub fn max_token_age(mut self, age: Duration) -> Self {
        self.max_token_age = Some(age);
        self
    }

    /// Whether a token whose `iat` lies in the future beyond the
    /// [`leeway`](Self::leeway) (`now + leeway < iat`, a fractional `iat`
    /// rounding up) is rejected with
    /// [`VerifyError::IssuedInFuture`](crate::VerifyError::IssuedInFuture).
    /// A token without `iat` is not affected.
    ///
    /// Defaults to `false`: RFC 7519 gives `iat` no validation rule.
    pub fn reject_future_iat(mut self, reject: bool) -> Self {
        self.reject_future_iat = reject;
        self
    }

    /// The claims that must be present and not `null` (replacing the
    /// defaults; at most 64). `iss` and `aud` are added when an
    /// [`issuer`](Self::issuer) or [`audience`](Self::audience) is set.
    /// `exp`, `nbf`, `iat`, `iss`, `sub` and `aud` are type-checked whenever
    /// present, required or not; `exp` and `nbf` are always enforced.
    ///
    /// Defaults to `["exp"]`.
    pub fn required_claims<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required = names
            .into_iter()
            .map(|n| n.into().into_boxed_str())
            .collect();
        self
    }

    /// The algorithms a token may use. HMAC and `none` are never accepted
    /// whatever the set; each key further limits the algorithms it verifies.
    ///
    /// Defaults to [`AlgorithmSet::asymmetric`]: RS256/384/512,
    /// PS256/384/512, ES256/384 and EdDSA.
    pub fn algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// What to do with tokens that carry no `kid`.
    ///
    /// Defaults to [`NoKidPolicy::SingleKey`].
    pub fn no_kid(mut self, policy: NoKidPolicy) -> Self {
        self.no_kid = policy;
        self
    }

    /// Tokens longer than this are rejected before any decoding.
    ///
    /// Defaults to 16 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// A `kid` longer than this is an unknown key at once: it is not looked
    /// up and never asks for a refresh. Keep it at the cache's
    /// `Builder::max_kid_len`, which skips such keys anyway.
    ///
    /// Defaults to 256 bytes.
    pub fn max_kid_len(mut self, bytes: usize) -> Self {
        self.max_kid_len = bytes;
        self
    }

    /// Checks the settings and returns the verifier.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the knob: an empty algorithm set, more than
    /// 64 required claims, a zero `max_token_bytes`, or a `max_token_age`
    /// under one second.
    pub fn build(self) -> Result<Verifier, Error> {
        let fail = |msg: &str| Err(Error::Config(msg.to_owned()));
        if self.algorithms.is_empty() {
            return fail("verifier algorithms must include at least one asymmetric algorithm");
        }
        if self.max_token_bytes == 0 {
            return fail("verifier max_token_bytes must be positive");
        }
        let max_age = match self.max_token_age {
            Some(age) if age.as_secs() == 0 => {
                return fail("verifier max_token_age must be at least one second")
            }
            Some(age) => Some(age.as_secs()),
            None => None,
        };
        let mut required = self.required;
        if max_age.is_some() {
            required.push("iat".into());
        }
        if !self.issuers.is_empty() {
            required.push("iss".into());
        }
        if matches!(self.audiences, Audiences::OneOf(_)) {
            required.push("aud".into());
        }
        let mut unique: Vec<Box<str>> = Vec::with_capacity(required.len());
        for name in required {
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        if unique.len() > MAX_REQUIRED {
            return fail("verifier required_claims holds more than 64 names");
        }
        Ok(Verifier {
            cache: self.cache,
            config: Arc::new(Config {
                rules: ClaimRules::new(
                    self.issuers.into_boxed_slice(),
                    self.audiences,
                    self.leeway.as_secs(),
                    IatRules {
                        max_age,
                        reject_future: self.reject_future_iat,
                    },
                    unique.into_boxed_slice(),
                ),
                algorithms: self.algorithms,
                no_kid: self.no_kid,
                max_token_bytes: self.max_token_bytes,
                max_kid_len: self.max_kid_len,
            }),
        })
    }
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("max_token_age", &self.max_token_age)
            .field("reject_future_iat", &self.reject_future_iat)
            .field("required", &self.required)
            .field("algorithms", &self.algorithms)
            .field("no_kid", &self.no_kid)
            .finish_non_exhaustive()
    }
}
