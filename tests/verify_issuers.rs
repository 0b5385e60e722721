//! Issuer-bound verification: tokens routed by `iss` to their issuer's key
//! source and rules, `{tenantid}` templates matched against `tid`, and the
//! key-issuer binding of Entra-style keys. Real keys, real loopback HTTPS
//! identity providers; every rejection checks that no key set was read and
//! no request reached an identity provider.

mod common;

use std::time::Duration;

use common::{es, PATIENCE};
use jwks_sync::testing::{TestIdp, TestKey, JWKS_PATH};
use jwks_sync::{Error, IssuerVerifier, JwksCache, VerifyError};
use serde_json::{json, Value};

const ISS_A: &str = "https://a.example";
const ISS_B: &str = "https://b.example";
const ENTRA: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const TENANT_X: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const TENANT_Y: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

fn entra_iss(tenant: &str) -> String {
    ENTRA.replace("{tenantid}", tenant)
}

fn exp() -> u64 {
    jsonwebtoken::get_current_timestamp() + 600
}

fn idp(keys: &[&TestKey]) -> TestIdp {
    let idp = TestIdp::start().expect("test IdP starts");
    idp.set_keys(keys);
    idp
}

/// A cache over `idp`, loaded. An unknown kid may ask for a fetch at once
/// (no re-fetch guard), so that a lookup reaching this cache would show in
/// the IdP's request count.
fn cache(idp: &TestIdp) -> JwksCache {
    let cache = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .jitter(false)
        .unknown_kid_cooldown(Duration::ZERO)
        .negative_cache_ttl(Duration::ZERO)
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch");
    cache
}

/// Two plain issuers on two identity providers, and an Entra-style
/// multi-tenant one on a third.
struct World {
    idp_a: TestIdp,
    idp_b: TestIdp,
    idp_entra: TestIdp,
    a: JwksCache,
    b: JwksCache,
    entra: JwksCache,
    key_a: TestKey,
    key_b: TestKey,
    /// Published by Entra for every tenant: `issuer` is the template.
    entra_common: TestKey,
    /// Published by Entra for tenant X only.
    entra_x: TestKey,
    verifier: IssuerVerifier,
}

fn world() -> World {
    // The same kid at A and B: a collision an attacker would try to use.
    let key_a = es("shared");
    let key_b = es("shared");
    let entra_common = es("common").with_issuer(ENTRA);
    let entra_x = es("tenant-x").with_issuer(&entra_iss(TENANT_X));
    let idp_a = idp(&[&key_a]);
    let idp_b = idp(&[&key_b]);
    let idp_entra = idp(&[&entra_common, &entra_x]);
    let (a, b, entra) = (cache(&idp_a), cache(&idp_b), cache(&idp_entra));
    let verifier = IssuerVerifier::builder()
        .issuer(ISS_A, &a, |v| v.audience("api-a"))
        .issuer(ISS_B, &b, |v| v.audience("api-b"))
        .issuer_template(ENTRA, &entra, |v| v.audience("api-entra"))
        .build()
        .expect("valid settings");
    World {
        idp_a,
        idp_b,
        idp_entra,
        a,
        b,
        entra,
        key_a,
        key_b,
        entra_common,
        entra_x,
        verifier,
    }
}

impl World {
    fn requests(&self) -> [u64; 3] {
        [
            self.idp_a.requests(JWKS_PATH),
            self.idp_b.requests(JWKS_PATH),
            self.idp_entra.requests(JWKS_PATH),
        ]
    }

    fn lookups(&self) -> [u64; 3] {
        [
            self.a.status().lookups,
            self.b.status().lookups,
            self.entra.status().lookups,
        ]
    }

    /// `token` is rejected with `expected` by both calls, without a key
    /// lookup in any cache and without a request to any identity provider.
    fn rejected_before_lookup(&self, token: &str, expected: &VerifyError) {
        let (requests, lookups) = (self.requests(), self.lookups());
        assert_eq!(&self.verifier.verify::<Value>(token).unwrap_err(), expected);
        assert_eq!(
            &self
                .verifier
                .verify_or_wait::<Value>(token, PATIENCE)
                .unwrap_err(),
            expected
        );
        assert_eq!(self.lookups(), lookups, "no key lookup for {expected:?}");
        assert_eq!(self.requests(), requests, "no fetch for {expected:?}");
    }

    /// `token` is rejected with `expected`, and no identity provider was
    /// asked for anything.
    fn rejected_without_fetch(&self, token: &str, expected: &VerifyError) {
        let requests = self.requests();
        assert_eq!(&self.verifier.verify::<Value>(token).unwrap_err(), expected);
        assert_eq!(self.requests(), requests, "no fetch for {expected:?}");
    }
}

fn sign(key: &TestKey, claims: &Value) -> String {
    key.sign(claims).expect("signs")
}

#[test]
fn plain_issuers_each_verify_with_their_own_keys_and_rules() {
    let w = world();
    let before = w.requests();
    let token_a = sign(
        &w.key_a,
        &json!({"iss": ISS_A, "aud": "api-a", "sub": "alice", "exp": exp()}),
    );
    let verified = w.verifier.verify::<Value>(&token_a).expect("A's token");
    assert_eq!(verified.claims["sub"], "alice");
    let token_b = sign(
        &w.key_b,
        &json!({"iss": ISS_B, "aud": "api-b", "sub": "bob", "exp": exp()}),
    );
    let verified = w
        .verifier
        .verify_or_wait::<Value>(&token_b, PATIENCE)
        .expect("B's token");
    assert_eq!(verified.claims["sub"], "bob");
    // Each lookup went to its own issuer's cache, and counted there.
    assert_eq!(w.a.status().hits, 1);
    assert_eq!(w.b.status().hits, 1);
    assert_eq!(w.a.status().tokens_verified, 1);
    assert_eq!(w.b.status().tokens_verified, 1);
    assert_eq!(w.entra.status().lookups, 0);
    // Per-issuer rules: A's audience is not B's.
    let wrong_aud = sign(
        &w.key_b,
        &json!({"iss": ISS_B, "aud": "api-a", "exp": exp()}),
    );
    assert_eq!(
        w.verifier.verify::<Value>(&wrong_aud).unwrap_err(),
        VerifyError::WrongAudience
    );
    assert_eq!(w.requests(), before);
    assert!(std::ptr::eq(
        w.verifier.cache_for(ISS_A, None).expect("routed"),
        w.verifier
            .cache_for(ISS_A, Some("ignored"))
            .expect("routed")
    ));
    assert!(w.verifier.cache_for("https://c.example", None).is_none());
}

#[test]
fn a_key_of_issuer_a_never_verifies_a_token_claiming_issuer_b() {
    let w = world();
    // Signed by A's key under the kid B also publishes, claiming B.
    let forged = sign(
        &w.key_a,
        &json!({"iss": ISS_B, "aud": "api-b", "exp": exp()}),
    );
    let (a_lookups, requests) = (w.a.status().lookups, w.requests());
    assert_eq!(
        w.verifier.verify::<Value>(&forged).unwrap_err(),
        VerifyError::BadSignature
    );
    assert_eq!(w.a.status().lookups, a_lookups, "A's keys are never tried");
    assert_eq!(w.b.status().hits, 1, "B's key under the kid was tried");
    // A bad signature under a known kid may ask B for one refresh (the
    // same-kid re-key rule): B's set, never A's, and the token still fails.
    let after = w.requests();
    assert_eq!(after[0], requests[0]);
    assert_eq!(after[2], requests[2]);
    assert!(after[1] <= requests[1] + 1, "{after:?} {requests:?}");
    assert_eq!(
        w.verifier
            .verify_or_wait::<Value>(&forged, Duration::from_secs(1))
            .unwrap_err(),
        VerifyError::BadSignature
    );
    assert_eq!(w.a.status().lookups, a_lookups);
    // The same key claiming A verifies: the key is fine, the claim is not.
    let honest = sign(
        &w.key_a,
        &json!({"iss": ISS_A, "aud": "api-a", "exp": exp()}),
    );
    assert!(w.verifier.verify::<Value>(&honest).is_ok());
}

#[test]
fn an_unknown_or_missing_issuer_is_rejected_without_any_lookup() {
    let w = world();
    let unknown = sign(
        &w.key_a,
        &json!({"iss": "https://evil.example", "aud": "api-a", "exp": exp()}),
    );
    w.rejected_before_lookup(&unknown, &VerifyError::UnknownIssuer);
    // Near misses of a configured issuer are different issuers.
    for iss in [
        "https://a.example/",
        "https://A.example",
        "https://a.example ",
        "",
    ] {
        let t = sign(&w.key_a, &json!({"iss": iss, "aud": "api-a", "exp": exp()}));
        w.rejected_before_lookup(&t, &VerifyError::UnknownIssuer);
    }
    // Not even a template's literal text is an issuer.
    let literal = sign(
        &w.entra_common,
        &json!({"iss": ENTRA, "tid": "{tenantid}", "exp": exp()}),
    );
    w.rejected_before_lookup(&literal, &VerifyError::TenantMismatch);
    let missing = sign(&w.key_a, &json!({"aud": "api-a", "exp": exp()}));
    w.rejected_before_lookup(&missing, &VerifyError::MissingClaim("iss".into()));
    let typed = sign(
        &w.key_a,
        &json!({"iss": [ISS_A], "aud": "api-a", "exp": exp()}),
    );
    w.rejected_before_lookup(&typed, &VerifyError::BadClaimType("iss"));
    let err = w.verifier.verify::<Value>(&unknown).unwrap_err();
    assert_eq!(err.code(), "ERR_JWT_ISSUER_UNKNOWN");
    assert_eq!(err.http_status(), 401);
    assert_eq!(
        err.challenge().and_then(|c| c.error()),
        Some("invalid_token")
    );
}

#[test]
fn a_routed_unknown_kid_does_reach_its_issuer() {
    // The control for the no-lookup assertions: a token that passes routing
    // and names a kid its issuer lacks is looked up there and, with no
    // re-fetch guard, asks that issuer (and only it) for a fetch.
    let w = world();
    let stranger = es("nope");
    let token = sign(
        &stranger,
        &json!({"iss": ISS_A, "aud": "api-a", "exp": exp()}),
    );
    let before = w.requests();
    assert_eq!(
        w.verifier
            .verify_or_wait::<Value>(&token, Duration::from_secs(5))
            .unwrap_err(),
        VerifyError::UnknownKey
    );
    let after = w.requests();
    assert!(after[0] > before[0], "A was asked: {before:?} -> {after:?}");
    assert_eq!((after[1], after[2]), (before[1], before[2]));
    assert!(w.a.status().misses >= 1);
}

fn entra_claims(iss: &str, tid: Option<&str>) -> Value {
    let mut claims = json!({"iss": iss, "aud": "api-entra", "sub": "u", "exp": exp()});
    if let Some(tid) = tid {
        claims["tid"] = json!(tid);
    }
    claims
}

#[test]
fn a_template_issuer_verifies_any_tenant_whose_tid_fits() {
    let w = world();
    let before = w.requests();
    for tenant in [TENANT_X, TENANT_Y, "contoso.onmicrosoft.com"] {
        let token = sign(
            &w.entra_common,
            &entra_claims(&entra_iss(tenant), Some(tenant)),
        );
        let verified = w.verifier.verify::<Value>(&token).expect("tenant token");
        assert_eq!(verified.claims["tid"], tenant);
    }
    // Tenant X's own key verifies tenant X's tokens.
    let token = sign(
        &w.entra_x,
        &entra_claims(&entra_iss(TENANT_X), Some(TENANT_X)),
    );
    assert!(w.verifier.verify::<Value>(&token).is_ok());
    assert_eq!(w.requests(), before);
    assert_eq!(w.a.status().lookups + w.b.status().lookups, 0);
}

#[test]
fn a_template_with_a_wrong_or_missing_tid_is_rejected_without_any_lookup() {
    let w = world();
    let x = entra_iss(TENANT_X);
    let wrong = sign(&w.entra_common, &entra_claims(&x, Some(TENANT_Y)));
    w.rejected_before_lookup(&wrong, &VerifyError::TenantMismatch);
    let missing = sign(&w.entra_common, &entra_claims(&x, None));
    w.rejected_before_lookup(&missing, &VerifyError::MissingClaim("tid".into()));
    let typed = sign(&w.entra_common, &json!({"iss": x, "tid": 7, "exp": exp()}));
    w.rejected_before_lookup(&typed, &VerifyError::BadClaimType("tid"));
    // A tid that would smuggle URL syntax into the issuer never fits, even
    // when iss was built with it.
    for tid in ["a/b", "x?y", "t#f", "u@h", "", "tenant x"] {
        let iss = entra_iss(tid);
        let token = sign(&w.entra_common, &entra_claims(&iss, Some(tid)));
        w.rejected_before_lookup(&token, &VerifyError::TenantMismatch);
    }
    let err = w.verifier.verify::<Value>(&wrong).unwrap_err();
    assert_eq!(err.code(), "ERR_JWT_TENANT_MISMATCH");
    assert_eq!(err.http_status(), 401);
}

#[test]
fn an_entra_key_bound_to_tenant_x_never_verifies_a_tenant_y_token() {
    let w = world();
    // Signed with tenant X's key, claiming tenant Y consistently (iss and
    // tid agree, so routing passes): the key's issuer refuses.
    let forged = sign(
        &w.entra_x,
        &entra_claims(&entra_iss(TENANT_Y), Some(TENANT_Y)),
    );
    w.rejected_without_fetch(&forged, &VerifyError::KeyIssuerMismatch);
    assert_eq!(
        w.verifier
            .verify_or_wait::<Value>(&forged, PATIENCE)
            .unwrap_err(),
        VerifyError::KeyIssuerMismatch
    );
    let hits = w.entra.status().hits;
    assert!(hits >= 2, "the key was found and its signature checked");
    let err = w.verifier.verify::<Value>(&forged).unwrap_err();
    assert_eq!(err.code(), "ERR_JWK_ISSUER_MISMATCH");
    assert_eq!(err.http_status(), 401);
    assert_eq!(w.a.status().lookups + w.b.status().lookups, 0);
    // Counted on the routed issuer's source, by rule.
    let status = w.entra.status();
    assert!(
        status.rejections.contains(&("key_issuer_mismatch", 3)),
        "{:?}",
        status.rejections
    );
    assert_eq!(status.tokens_verified, 0);
}

#[test]
fn a_plain_issuer_over_an_entra_source_still_binds_keys() {
    // One tenant configured by its exact issuer over the Entra key set: the
    // common key (issuer template) verifies it with the token's tid, the
    // key of another tenant does not.
    let entra_y = es("tenant-y").with_issuer(&entra_iss(TENANT_Y));
    let entra_common = es("common").with_issuer(ENTRA);
    let idp_entra = idp(&[&entra_common, &entra_y]);
    let entra = cache(&idp_entra);
    let x = entra_iss(TENANT_X);
    let verifier = IssuerVerifier::builder()
        .issuer(x.clone(), &entra, |v| v.audience("api-entra"))
        .build()
        .expect("valid settings");
    let good = sign(&entra_common, &entra_claims(&x, Some(TENANT_X)));
    assert!(verifier.verify::<Value>(&good).is_ok());
    let before = idp_entra.requests(JWKS_PATH);
    // The template key without a tid cannot be bound to a tenant.
    let no_tid = sign(&entra_common, &entra_claims(&x, None));
    assert_eq!(
        verifier.verify::<Value>(&no_tid).unwrap_err(),
        VerifyError::KeyIssuerMismatch
    );
    let other_tenant_key = sign(&entra_y, &entra_claims(&x, Some(TENANT_X)));
    assert_eq!(
        verifier.verify::<Value>(&other_tenant_key).unwrap_err(),
        VerifyError::KeyIssuerMismatch
    );
    assert_eq!(idp_entra.requests(JWKS_PATH), before);
}

#[test]
fn the_builder_rejects_inconsistent_issuers() {
    let k = es("k");
    let idp = idp(&[&k]);
    let c = cache(&idp);
    let config = |b: jwks_sync::IssuerVerifierBuilder| match b.build() {
        Err(Error::Config(msg)) => msg,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert!(config(IssuerVerifier::builder()).contains("at least one"));
    let msg = config(
        IssuerVerifier::builder()
            .issuer(ISS_A, &c, |v| v)
            .issuer(ISS_A, &c, |v| v),
    );
    assert!(msg.contains("twice"), "{msg}");
    let msg = config(IssuerVerifier::builder().issuer_template("https://t.example/", &c, |v| v));
    assert!(msg.contains("has no {tenantid}"), "{msg}");
    let msg = config(IssuerVerifier::builder().issuer_template(
        "https://{tenantid}.example/{tenantid}",
        &c,
        |v| v,
    ));
    assert!(msg.contains("more than once"), "{msg}");
    let msg = config(IssuerVerifier::builder().issuer(ENTRA, &c, |v| v));
    assert!(msg.contains("issuer_template"), "{msg}");
    let msg = config(IssuerVerifier::builder().issuer("", &c, |v| v));
    assert!(msg.contains("empty"), "{msg}");
    // An issuer's own verifier settings are checked too.
    let msg = config(IssuerVerifier::builder().issuer(ISS_A, &c, |v| v.max_token_bytes(0)));
    assert!(msg.contains("max_token_bytes"), "{msg}");
    let too_big = IssuerVerifier::builder()
        .issuer(ISS_A, &c, |v| v)
        .max_token_bytes(64)
        .build()
        .expect("valid");
    let token = sign(&k, &json!({"iss": ISS_A, "exp": exp()}));
    assert_eq!(
        too_big.verify::<Value>(&token).unwrap_err(),
        VerifyError::TooLarge { limit: 64 }
    );
    assert_eq!(c.status().lookups, 0);
}
