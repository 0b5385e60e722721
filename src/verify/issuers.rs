//! [`IssuerVerifier`]: one verifier for many issuers. A token is routed by
//! its (not yet trusted) `iss` to the key source and the rules of that
//! issuer, then verified there; a key that names its issuer must agree.
//!
//! The rules, in order, are on [`IssuerVerifier`].

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::json::{self, Names, Skip, Str, Value};
use super::{decode, Parts, Verified, Verifier, VerifierBuilder, VerifyError, CLAIMS_STACK};
use crate::cache::JwksCache;
use crate::error::Error;
use crate::jwk::Key;
use crate::sync::Arc;

/// The placeholder an issuer template (and a key's `issuer`) uses for the
/// token's tenant.
const TENANT: &str = "{tenantid}";

/// The longest tenant id accepted: a DNS name's length.
const MAX_TENANT: usize = 253;

/// Verifies tokens from several issuers, each against its own key source
/// and its own rules; from [`IssuerVerifier::builder`].
///
/// Cheap to clone and shared by every request thread. A registry source is
/// a [`JwksCache`] handle, so the same verifier serves single caches and
/// registry sources alike.
///
/// # The order of the rules
///
/// 1. **Size and shape**, as [`Verifier`]: over
///    [`IssuerVerifierBuilder::max_token_bytes`] or not three parts is
///    rejected before anything is decoded.
/// 2. **Routing**, from the claims alone (the header and the signature are
///    not looked at yet; the claims are read with the same strict JSON as
///    the claim rules: a repeated member is malformed). `iss` missing or not
///    a string is [`VerifyError::MissingClaim`] / [`VerifyError::BadClaimType`].
///    An `iss` added with [`issuer`](IssuerVerifierBuilder::issuer) routes to
///    that issuer (exact match). Otherwise the
///    [`issuer_template`](IssuerVerifierBuilder::issuer_template)s are tried
///    in the order they were added: a template routes the token only when
///    `iss` equals it with `{tenantid}` replaced by the token's `tid` claim,
///    a tenant id of 1 to 253 ASCII letters, digits, `-` and `.`. An `iss`
///    that fits no issuer is [`VerifyError::UnknownIssuer`]; one that fits
///    a template's text around `{tenantid}` but not with the token's `tid` is
///    [`VerifyError::TenantMismatch`] ([`VerifyError::MissingClaim`]`("tid")`
///    without `tid`). None of these rejections reads a key set or asks for a
///    fetch.
/// 3. **The issuer's verifier**: every rule of [`Verifier`] with the rules
///    given for that issuer (audience, algorithms, leeway, ...) and keys from
///    that issuer's cache only: a key of another issuer's source is never
///    tried, whatever its `kid`. An exact issuer's verifier also checks
///    `iss` against it ([`VerifierBuilder::issuer`]).
/// 4. **Key-issuer binding**, once a key's signature checks out: when the
///    JWK has an `issuer` member ([`Key::issuer`]), the token's `iss` must
///    equal it with `{tenantid}` replaced by the token's `tid`; otherwise
///    [`VerifyError::KeyIssuerMismatch`]. This is what stops a key that
///    Entra publishes for tenant X from vouching for a token claiming tenant
///    Y, although both come from the same key set.
///
/// Outcomes are counted in the routed issuer's
/// [`Status`](crate::Status) (`tokens_verified`, `rejections`) like its own
/// [`Verifier`]'s; a token rejected before routing involves no source and
/// is counted nowhere.
///
/// # Example
///
/// ```
/// # use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
/// # use jwks_sync::{IssuerVerifier, JwksCache, VerifyError};
/// # use std::time::Duration;
/// # let partner_key = TestKey::generate(KeyAlg::Es256, "p1").unwrap();
/// # let entra_key = TestKey::generate(KeyAlg::Es256, "e1")
/// #     .unwrap()
/// #     .with_issuer("https://login.microsoftonline.com/{tenantid}/v2.0");
/// # let partner = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&partner_key]))).build()?;
/// # let entra = JwksCache::from_fetcher(MemorySource::new(jwks_json(&[&entra_key]))).build()?;
/// # partner.wait_ready(Duration::from_secs(10))?;
/// # entra.wait_ready(Duration::from_secs(10))?;
/// # let exp = jsonwebtoken::get_current_timestamp() + 600;
/// let verifier = IssuerVerifier::builder()
///     .issuer("https://idp.partner.example", &partner, |rules| {
///         rules.audience("orders")
///     })
///     .issuer_template(
///         "https://login.microsoftonline.com/{tenantid}/v2.0",
///         &entra,
///         |rules| rules.audience("api://orders").leeway(Duration::from_secs(30)),
///     )
///     .build()?;
///
/// let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// # let token = entra_key.sign(&serde_json::json!({
/// #     "iss": format!("https://login.microsoftonline.com/{tenant}/v2.0"),
/// #     "tid": tenant, "aud": "api://orders", "sub": "alice", "exp": exp,
/// # })).unwrap();
/// let verified = verifier.verify::<serde_json::Value>(&token)?;
/// assert_eq!(verified.claims["tid"], tenant);
///
/// // A token naming an issuer that was not added: rejected, no fetch.
/// # let stranger = partner_key.sign(&serde_json::json!({
/// #     "iss": "https://evil.example", "aud": "orders", "exp": exp,
/// # })).unwrap();
/// let err = verifier.verify::<serde_json::Value>(&stranger).unwrap_err();
/// assert_eq!(err, VerifyError::UnknownIssuer);
/// assert_eq!(err.code(), "ERR_JWT_ISSUER_UNKNOWN");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct IssuerVerifier {
    routes: Arc<Routes>,
}

struct Routes {
    /// Exact issuers: `iss` → its verifier. SipHash: `iss` is the
    /// attacker's text.
    exact: HashMap<Box<str>, Verifier>,
    /// Templates, in the order they were added.
    templates: Box<[Template]>,
    max_token_bytes: usize,
}

/// `prefix{tenantid}suffix`, split once at build time.
struct Template {
    text: Box<str>,
    prefix: Box<str>,
    suffix: Box<str>,
    verifier: Verifier,
}

impl IssuerVerifier {
    /// Starts configuring a verifier with no issuers.
    pub fn builder() -> IssuerVerifierBuilder {
        IssuerVerifierBuilder {
            exact: Vec::new(),
            templates: Vec::new(),
            max_token_bytes: 16 * 1024,
        }
    }

    /// Verifies `token` (a compact JWS, without `Bearer `): routes it by
    /// `iss` to its issuer, then applies that issuer's [`Verifier::verify`]
    /// with the key-issuer binding (see [the order of the rules](Self)). An unknown
    /// issuer, a template whose tenant is not the token's `tid`, or a
    /// missing `tid` is rejected before any key lookup and never asks for a
    /// fetch.
    ///
    /// **Blocking**: as [`Verifier::verify`].
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Verified<C>, VerifyError> {
        self.run(token, None)
    }

    /// Like [`verify`](Self::verify), but an unknown `kid` at the routed
    /// issuer waits up to `timeout` for the refresh it asks for, as
    /// [`Verifier::verify_or_wait`]. Routing rejections never wait.
    pub fn verify_or_wait<C: DeserializeOwned>(
        &self,
        token: &str,
        timeout: Duration,
    ) -> Result<Verified<C>, VerifyError> {
        self.run(token, Some(crate::cache::deadline_after(timeout)))
    }

    /// The cache that tokens claiming `iss` (with `tid`, for a template) are
    /// verified against, if any: the routing step alone, for diagnostics.
    pub fn cache_for(&self, iss: &str, tid: Option<&str>) -> Option<&JwksCache> {
        self.routes.route(iss, tid).ok().map(Verifier::cache)
    }

    fn run<C: DeserializeOwned>(
        &self,
        token: &str,
        wait: Option<Instant>,
    ) -> Result<Verified<C>, VerifyError> {
        let routes = &*self.routes;
        if token.len() > routes.max_token_bytes {
            return Err(VerifyError::TooLarge {
                limit: routes.max_token_bytes,
            });
        }
        let parts = Parts::split(token)?;
        let (mut stack, mut heap) = ([0u8; CLAIMS_STACK], Vec::new());
        let claims = decode(
            parts.claims,
            &mut stack,
            &mut heap,
            "claims are not base64url",
        )?;
        let claimed = Claimed::read(claims)?;
        let iss = claimed
            .iss
            .as_deref()
            .ok_or(VerifyError::MissingClaim("iss".into()))?;
        let tid = claimed.tid.as_deref();
        let verifier = routes.route(iss, tid)?;
        let bind = |key: &Key| match key.issuer() {
            Some(bound) if !substituted_eq(bound, tid, iss) => Err(VerifyError::KeyIssuerMismatch),
            _ => Ok(()),
        };
        verifier
            .cache
            .counted(verifier.run(token, wait, Some(&bind)))
    }
}

impl Routes {
    /// The verifier for `iss` (with `tid`), or why there is none.
    fn route(&self, iss: &str, tid: Option<&str>) -> Result<&Verifier, VerifyError> {
        if let Some(verifier) = self.exact.get(iss) {
            return Ok(verifier);
        }
        let mut fits = false;
        for template in self.templates.iter() {
            let Some(tenant) = iss
                .strip_prefix(&*template.prefix)
                .and_then(|rest| rest.strip_suffix(&*template.suffix))
            else {
                continue;
            };
            fits = true;
            if tid.is_some_and(|tid| tenant_id(tid) && tid == tenant) {
                return Ok(&template.verifier);
            }
        }
        Err(match (fits, tid) {
            (false, _) => VerifyError::UnknownIssuer,
            (true, None) => VerifyError::MissingClaim("tid".into()),
            (true, Some(_)) => VerifyError::TenantMismatch,
        })
    }
}

/// Whether `tid` may stand for `{tenantid}`: a GUID or a domain-like name,
/// so that it can never carry `/`, `?`, `#`, `:` or `@` into an issuer URL.
fn tenant_id(tid: &str) -> bool {
    (1..=MAX_TENANT).contains(&tid.len())
        && tid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `iss` equals `template` with every `{tenantid}` replaced by
/// `tid` (which must then be a [`tenant_id`]), without building the string.
fn substituted_eq(template: &str, tid: Option<&str>, iss: &str) -> bool {
    let mut pieces = template.split(TENANT);
    let Some(mut rest) = pieces.next().and_then(|first| iss.strip_prefix(first)) else {
        return false;
    };
    for piece in pieces {
        let Some(tid) = tid.filter(|tid| tenant_id(tid)) else {
            return false;
        };
        match rest.strip_prefix(tid).and_then(|r| r.strip_prefix(piece)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

impl fmt::Debug for IssuerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<&str> = self.routes.exact.keys().map(|k| &**k).collect();
        exact.sort_unstable();
        let templates: Vec<&str> = self.routes.templates.iter().map(|t| &*t.text).collect();
        f.debug_struct("IssuerVerifier")
            .field("issuers", &exact)
            .field("templates", &templates)
            .field("max_token_bytes", &self.routes.max_token_bytes)
            .finish_non_exhaustive()
    }
}

/// Configures an [`IssuerVerifier`]; from [`IssuerVerifier::builder`].
///
/// Each issuer gets its own [`VerifierBuilder`], started from its cache's
/// [`JwksCache::verifier`] and passed through the `rules` closure, so every
/// verifier knob (audience, algorithms, leeway, `max_token_age`, ...) is
/// set per issuer. Setters take and return `self`; [`build`](Self::build)
/// checks the settings.
#[must_use = "an IssuerVerifierBuilder does nothing until build() is called"]
pub struct IssuerVerifierBuilder {
    exact: Vec<(Box<str>, VerifierBuilder)>,
    templates: Vec<(Box<str>, VerifierBuilder)>,
    max_token_bytes: usize,
}

impl IssuerVerifierBuilder {
    /// Accepts tokens whose `iss` is exactly `issuer`, verified with keys
    /// from `cache` only (a [`JwksCache`], or a registry source's handle)
    /// under the rules `rules` sets on a fresh
    /// [`cache.verifier()`](JwksCache::verifier). The issuer is added to
    /// those rules ([`VerifierBuilder::issuer`]), so `iss` is also required
    /// and checked there.
    ///
    /// Defaults to no issuers: [`build`](Self::build) wants at least one
    /// issuer or template.
    pub fn issuer(
        mut self,
        issuer: impl Into<String>,
        cache: &JwksCache,
        rules: impl FnOnce(VerifierBuilder) -> VerifierBuilder,
    ) -> Self {
        let issuer = issuer.into();
        let builder = rules(cache.verifier()).issuer(issuer.clone());
        self.exact.push((issuer.into_boxed_str(), builder));
        self
    }

    /// Accepts tokens whose `iss` equals `template` with its one
    /// `{tenantid}` replaced by the token's `tid` claim (which is then
    /// required, and must be 1 to 253 ASCII letters, digits, `-` or `.`),
    /// as multi-tenant providers issue them: Entra's
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`. Verified with
    /// keys from `cache` only, under the rules `rules` sets on a fresh
    /// [`cache.verifier()`](JwksCache::verifier). Which tenants are welcome
    /// is the caller's to check on the verified `tid` (or with
    /// [`VerifierBuilder::audience`]); an exact [`issuer`](Self::issuer) is
    /// tried before any template.
    ///
    /// Defaults to no templates.
    pub fn issuer_template(
        mut self,
        template: impl Into<String>,
        cache: &JwksCache,
        rules: impl FnOnce(VerifierBuilder) -> VerifierBuilder,
    ) -> Self {
        let builder = rules(cache.verifier());
        self.templates
            .push((template.into().into_boxed_str(), builder));
        self
    }

    /// Tokens longer than this are rejected before any decoding or
    /// routing; each issuer's own
    /// [`VerifierBuilder::max_token_bytes`] still applies after routing.
    ///
    /// Defaults to 16 KiB.
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Checks the settings and builds every issuer's verifier.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the problem: no issuer and no template, an
    /// empty issuer, the same issuer or template added twice, a template
    /// without exactly one `{tenantid}`, an issuer containing `{tenantid}`
    /// (use [`issuer_template`](Self::issuer_template)), a zero
    /// `max_token_bytes`, or any error of an issuer's
    /// [`VerifierBuilder::build`].
    pub fn build(self) -> Result<IssuerVerifier, Error> {
        let fail = |msg: String| Err(Error::Config(msg));
        if self.exact.is_empty() && self.templates.is_empty() {
            return fail("issuer verifier needs at least one issuer or issuer_template".into());
        }
        if self.max_token_bytes == 0 {
            return fail("issuer verifier max_token_bytes must be positive".into());
        }
        let mut exact = HashMap::with_capacity(self.exact.len());
        for (issuer, builder) in self.exact {
            if issuer.is_empty() {
                return fail("issuer verifier issuer must not be empty".into());
            }
            if issuer.contains(TENANT) {
                return fail(format!(
                    "issuer {issuer:?} contains {TENANT}: add it with issuer_template"
                ));
            }
            if exact.contains_key(&issuer) {
                return fail(format!("issuer {issuer:?} is added twice"));
            }
            let verifier = builder.build()?;
            exact.insert(issuer, verifier);
        }
        let mut templates: Vec<Template> = Vec::with_capacity(self.templates.len());
        for (text, builder) in self.templates {
            let Some((prefix, suffix)) = text.split_once(TENANT) else {
                return fail(format!("issuer_template {text:?} has no {TENANT}"));
            };
            if suffix.contains(TENANT) {
                return fail(format!(
                    "issuer_template {text:?} has {TENANT} more than once"
                ));
            }
            if templates.iter().any(|t| t.text == text) {
                return fail(format!("issuer_template {text:?} is added twice"));
            }
            templates.push(Template {
                prefix: prefix.into(),
                suffix: suffix.into(),
                verifier: builder.build()?,
                text,
            });
        }
        Ok(IssuerVerifier {
            routes: Arc::new(Routes {
                exact,
                templates: templates.into_boxed_slice(),
                max_token_bytes: self.max_token_bytes,
            }),
        })
    }
}

impl fmt::Debug for IssuerVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exact: Vec<&str> = self.exact.iter().map(|(i, _)| &**i).collect();
        let templates: Vec<&str> = self.templates.iter().map(|(t, _)| &**t).collect();
        f.debug_struct("IssuerVerifierBuilder")
            .field("issuers", &exact)
            .field("templates", &templates)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

/// The two claims routing reads, as the token states them (untrusted).
struct Claimed<'de> {
    iss: Option<std::borrow::Cow<'de, str>>,
    tid: Option<std::borrow::Cow<'de, str>>,
}

impl<'de> Claimed<'de> {
    /// Reads `iss` and `tid` from the decoded claims; every other member is
    /// skipped, and a member repeated anywhere makes the token malformed
    /// (as the claim rules do).
    fn read(bytes: &'de [u8]) -> Result<Self, VerifyError> {
        let raw = json::parse(bytes, RoutingSeed)
            .map_err(|_| VerifyError::Malformed("claims are not a JSON object"))?;
        if raw.duplicate {
            return Err(VerifyError::Malformed("claims repeat a member"));
        }
        let string = |value: Option<Value<'de>>, name: &'static str| match value {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(VerifyError::BadClaimType(name)),
        };
        Ok(Claimed {
            iss: string(raw.iss, "iss")?,
            tid: string(raw.tid, "tid")?,
        })
    }
}

#[derive(Default)]
struct RawRouting<'de> {
    iss: Option<Value<'de>>,
    tid: Option<Value<'de>>,
    duplicate: bool,
}

struct RoutingSeed;

impl<'de> DeserializeSeed<'de> for RoutingSeed {
    type Value = RawRouting<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RoutingSeed {
    type Value = RawRouting<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawRouting::default();
        let mut names = Names::default();
        while let Some(Str(name)) = map.next_key::<Str<'de>>()? {
            raw.duplicate |= !names.insert(name.clone());
            let slot = match &*name {
                "iss" => &mut raw.iss,
                "tid" => &mut raw.tid,
                _ => {
                    raw.duplicate |= map.next_value_seed(Skip)?;
                    continue;
                }
            };
            let value = map.next_value::<Value<'de>>()?;
            raw.duplicate |= value.repeats();
            *slot = Some(value);
        }
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn tenant_ids_are_guids_or_domain_like() {
        for ok in [
            "9188040d-6c67-4c5b-b112-36a304b66dad",
            "contoso.onmicrosoft.com",
            "a",
        ] {
            assert!(tenant_id(ok), "{ok}");
        }
        let long = "a".repeat(MAX_TENANT + 1);
        for bad in [
            "",
            "a/b",
            "a?b",
            "x#y",
            "u@h",
            "h:1",
            "a b",
            "é",
            "{tenantid}",
            &long,
        ] {
            assert!(!tenant_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn substitution_compares_piece_by_piece() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let iss = "https://login.microsoftonline.com/t1/v2.0";
        assert!(substituted_eq(t, Some("t1"), iss));
        assert!(!substituted_eq(t, Some("t2"), iss));
        assert!(!substituted_eq(t, None, iss));
        assert!(!substituted_eq(t, Some("t1/v2.0?"), iss));
        // A concrete issuer needs no tid, and must match exactly.
        assert!(substituted_eq(iss, None, iss));
        assert!(!substituted_eq(
            iss,
            None,
            "https://login.microsoftonline.com/t1/v2.0/"
        ));
        assert!(!substituted_eq(
            iss,
            Some("t1"),
            "https://login.microsoftonline.com/t1"
        ));
        // Every placeholder stands for the same tid.
        assert!(substituted_eq(
            "{tenantid}.x/{tenantid}",
            Some("a"),
            "a.x/a"
        ));
        assert!(!substituted_eq(
            "{tenantid}.x/{tenantid}",
            Some("a"),
            "a.x/b"
        ));
    }

    #[test]
    fn routing_reads_iss_and_tid_strictly() {
        type Pair<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);
        fn read(s: &str) -> Result<Pair<'_>, VerifyError> {
            Claimed::read(s.as_bytes()).map(|c| (c.iss, c.tid))
        }
        let (iss, tid) = read(r#"{"iss":"a","x":{"y":1},"tid":"t"}"#).expect("reads");
        assert_eq!((iss.as_deref(), tid.as_deref()), (Some("a"), Some("t")));
        assert_eq!(
            read(r#"{"iss":"a","iss":"b"}"#).err(),
            Some(VerifyError::Malformed("claims repeat a member"))
        );
        assert_eq!(
            read(r#"{"iss":"a","x":{"k":1,"k":2}}"#).err(),
            Some(VerifyError::Malformed("claims repeat a member"))
        );
        assert_eq!(
            read(r#"{"iss":7}"#).err(),
            Some(VerifyError::BadClaimType("iss"))
        );
        assert_eq!(
            read(r#"{"iss":"a","tid":["t"]}"#).err(),
            Some(VerifyError::BadClaimType("tid"))
        );
        assert!(matches!(read("[1]"), Err(VerifyError::Malformed(_))));
    }
}
