//! The IdP's signing keys: which keys are published at [`JWKS_PATH`], which
//! one signs, and the three rotations identity providers do in practice.
//!
//! | call | published set | signs with |
//! |---|---|---|
//! | [`TestIdp::pre_publish`] | adds the key | unchanged |
//! | [`TestIdp::rotate_overlap`] | adds the key (if absent), keeps the others | the new key |
//! | [`TestIdp::rotate_replace`] | the new key only | the new key |
//! | [`TestIdp::retire`] | removes the key | unchanged (or none, if it was the signer) |
//!
//! Every change re-serves the JWKS document at once; a key published with
//! [`TestIdp::set_jwks`] or [`TestIdp::set_keys`] is not part of the ring
//! and is overwritten by the next ring change.

use std::sync::Arc;

use serde::Serialize;

use super::{TestIdp, JWKS_PATH};
use crate::testing::keys::{jwks_json, TestKey};
use crate::testing::{TestError, TestErrorKind};

/// Published keys, oldest first, and the index of the signing one.
#[derive(Default)]
pub(super) struct KeyRing {
    published: Vec<Arc<TestKey>>,
    signing: Option<Arc<TestKey>>,
}

impl KeyRing {
    fn document(&self) -> String {
        let keys: Vec<&TestKey> = self.published.iter().map(|k| &**k).collect();
        jwks_json(&keys)
    }

    fn publish(&mut self, key: &Arc<TestKey>) {
        self.published.retain(|k| k.kid() != key.kid());
        self.published.push(Arc::clone(key));
    }
}

impl TestIdp {
    fn change_ring<R>(&self, f: impl FnOnce(&mut KeyRing) -> R) -> R {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut ring);
        // Under the ring lock, so concurrent changes are served in order.
        self.set_document(JWKS_PATH, ring.document());
        out
    }

    /// Publishes `key` and signs with it from now on: the first key of a
    /// fresh IdP, or a rotation where the set changes together with the
    /// signer (see [`rotate_replace`](Self::rotate_replace) and
    /// [`rotate_overlap`](Self::rotate_overlap) for the two shapes).
    /// Same as `rotate_overlap`. Returns the key.
    pub fn add_signing_key(&self, key: TestKey) -> Arc<TestKey> {
        self.rotate_overlap(key)
    }

    /// Publishes `key` without signing with it: the first half of a
    /// rotation done right, giving caches a refresh to learn the key before
    /// any token carries its kid. A key already published under the same
    /// kid is replaced. Returns the key.
    pub fn pre_publish(&self, key: TestKey) -> Arc<TestKey> {
        let key = Arc::new(key);
        self.change_ring(|ring| ring.publish(&key));
        key
    }

    /// Rotation with overlap: `key` is published next to the current keys
    /// (or stays published, after [`pre_publish`](Self::pre_publish)) and
    /// signs from now on; tokens signed with the previous key keep
    /// verifying until it is [`retire`](Self::retire)d. Returns the key.
    pub fn rotate_overlap(&self, key: TestKey) -> Arc<TestKey> {
        let key = Arc::new(key);
        self.change_ring(|ring| {
            ring.publish(&key);
            ring.signing = Some(Arc::clone(&key));
        });
        key
    }

    /// Switches signing to the published key `kid` (after
    /// [`pre_publish`](Self::pre_publish)). Returns `false`, changing
    /// nothing, if no published key has that kid.
    pub fn sign_with(&self, kid: &str) -> bool {
        self.change_ring(
            |ring| match ring.published.iter().find(|k| k.kid() == kid) {
                Some(key) => {
                    ring.signing = Some(Arc::clone(key));
                    true
                }
                None => false,
            },
        )
    }

    /// Rotation by replacement: the set becomes `key` alone and `key` signs
    /// from now on. A cache learns the new kid only from the first token
    /// carrying it (its unknown-kid path), and tokens signed with the old
    /// keys stop verifying at its next refresh. Returns the key.
    pub fn rotate_replace(&self, key: TestKey) -> Arc<TestKey> {
        let key = Arc::new(key);
        self.change_ring(|ring| {
            ring.published = vec![Arc::clone(&key)];
            ring.signing = Some(Arc::clone(&key));
        });
        key
    }

    /// Unpublishes the key `kid`; if it was the signing key, nothing signs
    /// until the next rotation ([`mint`](Self::mint) fails). Returns
    /// whether a key was removed.
    pub fn retire(&self, kid: &str) -> bool {
        self.change_ring(|ring| {
            let before = ring.published.len();
            ring.published.retain(|k| k.kid() != kid);
            if ring.signing.as_ref().is_some_and(|k| k.kid() == kid) {
                ring.signing = None;
            }
            ring.published.len() != before
        })
    }

    /// The key that signs now, if any: hold on to it to sign many tokens
    /// without going through the IdP's lock.
    pub fn signing_key(&self) -> Option<Arc<TestKey>> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .signing
            .clone()
    }

    /// The kids in the published set, oldest first.
    pub fn published_kids(&self) -> Vec<String> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .published
            .iter()
            .map(|k| k.kid().to_owned())
            .collect()
    }

    /// Signs `claims` with the current signing key (header: its `alg` and
    /// `kid`). `Err` when no key signs (see
    /// [`add_signing_key`](Self::add_signing_key)).
    pub fn mint(&self, claims: &impl Serialize) -> Result<String, TestError> {
        let key = self.signing_key().ok_or_else(|| {
            TestError::new(TestErrorKind::Signing, "the test IdP has no signing key")
        })?;
        key.sign(claims)
    }

    /// Claims this IdP would issue: `iss` = [`issuer`](Self::issuer), `sub`,
    /// `aud`, `iat` = now and `exp` = now + `ttl_secs`. Pass them to
    /// [`mint`](Self::mint), adding or changing members as needed.
    pub fn claims(&self, sub: &str, aud: &str, ttl_secs: u64) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        serde_json::json!({
            "iss": self.issuer(),
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + ttl_secs,
        })
    }
}
