//! Real signing keys for tests, generated with aws-lc-rs.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};

use crate::Algorithm;
use serde_json::{json, Value};

use super::error::{TestError, TestErrorKind};

/// The algorithm (and so the key type) of a [`TestKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlg {
    /// RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSA 2048, RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSA 2048, RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl KeyAlg {
    /// The matching algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyAlg::Rs256 => Algorithm::RS256,
            KeyAlg::Rs384 => Algorithm::RS384,
            KeyAlg::Ps256 => Algorithm::PS256,
            KeyAlg::Es256 => Algorithm::ES256,
            KeyAlg::Es384 => Algorithm::ES384,
            KeyAlg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// A freshly generated key pair with its public JWK.
pub struct TestKey {
    kid: String,
    alg: KeyAlg,
    encoding: EncodingKey,
    jwk: Value,
    public_der: Vec<u8>,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn gen_err(_: aws_lc_rs::error::Unspecified) -> TestError {
    TestError::new(
        TestErrorKind::KeyGeneration,
        "aws-lc could not generate the key",
    )
}

impl TestKey {
    /// Generates a key for `alg`, published under `kid` with `alg` and
    /// `use: "sig"` in its JWK.
    pub fn generate(alg: KeyAlg, kid: &str) -> Result<Self, TestError> {
        use aws_lc_rs::signature as sig;
        let alg_name = format!("{:?}", alg.algorithm());
        let (encoding, jwk, public_der) = match alg {
            KeyAlg::Rs256 | KeyAlg::Rs384 | KeyAlg::Ps256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(gen_err)?;
                let der =
                    AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(gen_err)?;
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                });
                let spki = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(public)
                    .map_err(gen_err)?;
                let pkcs1 = pkcs1_from_pkcs8(der.as_ref()).ok_or_else(|| {
                    TestError::new(TestErrorKind::KeyGeneration, "unexpected PKCS#8 layout")
                })?;
                (
                    EncodingKey::from_rsa_der(pkcs1),
                    jwk,
                    spki.as_ref().to_vec(),
                )
            }
            KeyAlg::Es256 | KeyAlg::Es384 => {
                let (signing, crv, len) = if alg == KeyAlg::Es256 {
                    (&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let pair = sig::EcdsaKeyPair::generate(signing).map_err(gen_err)?;
                let pkcs8 = pair.to_pkcs8v1().map_err(gen_err)?;
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64(&point[1..1 + len]),
                    "y": b64(&point[1 + len..]),
                });
                (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk, point)
            }
            KeyAlg::EdDsa => {
                let pair = sig::Ed25519KeyPair::generate().map_err(gen_err)?;
                let pkcs8 = pair.to_pkcs8().map_err(gen_err)?;
                let x = pair.public_key().as_ref().to_vec();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)});
                (EncodingKey::from_ed_der(pkcs8.as_ref()), jwk, x)
            }
        };
        let mut jwk = jwk;
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), Value::String(kid.to_owned()));
            obj.insert("alg".into(), Value::String(alg_name));
            obj.insert("use".into(), Value::String("sig".into()));
        }
        Ok(Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
            public_der,
        })
    }

    /// Publishes this key with an `issuer` member, as Microsoft Entra ID
    /// does (for example
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`): the issuer
    /// whose tokens the key may sign. Read back by
    /// [`Key::issuer`](crate::Key::issuer).
    #[must_use]
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        if let Some(obj) = self.jwk.as_object_mut() {
            obj.insert("issuer".into(), Value::String(issuer.to_owned()));
        }
        self
    }

    /// The kid the key is published under.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key's algorithm.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// The public JWK, as it appears in a key set.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The public key bytes: SubjectPublicKeyInfo DER for RSA, the
    /// uncompressed point for EC, the raw 32 bytes for Ed25519.
    pub fn public_key_bytes(&self) -> &[u8] {
        &self.public_der
    }

    /// The `jsonwebtoken` signing key.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Signs `claims` with a header carrying this key's `alg` and `kid`.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, TestError> {
        let mut header = Header::new(jsonwebtoken_algorithm(self.alg.algorithm()));
        header.kid = Some(self.kid.clone());
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under a header of the caller's choosing.
    pub fn sign_with_header(
        &self,
        header: &Header,
        claims: &impl serde::Serialize,
    ) -> Result<String, TestError> {
        jsonwebtoken::encode(header, claims, &self.encoding)
            .map_err(|e| TestError::new(TestErrorKind::Signing, e.to_string()))
    }
}

/// The `jsonwebtoken` name of `alg`, for signing test tokens with it
/// (jsonwebtoken is the reference signer; the crate's API does not use it).
pub fn jsonwebtoken_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
        Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::RS384 => jsonwebtoken::Algorithm::RS384,
        Algorithm::RS512 => jsonwebtoken::Algorithm::RS512,
        Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
        Algorithm::PS384 => jsonwebtoken::Algorithm::PS384,
        Algorithm::PS512 => jsonwebtoken::Algorithm::PS512,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::ES384 => jsonwebtoken::Algorithm::ES384,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// One DER element: `(tag, contents, rest)`.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`
/// (SEQUENCE { version, algorithm, privateKey OCTET STRING }): jsonwebtoken's
/// aws-lc RSA signer takes PKCS#1, aws-lc-rs exports PKCS#8.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = der_element(der)? else {
        return None;
    };
    let (0x02, _version, rest) = der_element(info)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = der_element(rest)? else {
        return None;
    };
    let (0x04, private_key, _) = der_element(rest)? else {
        return None;
    };
    Some(private_key)
}

/// A JWKS document (`{"keys": [...]}`) publishing `keys`.
pub fn jwks_json(keys: &[&TestKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_signs_a_token_its_jwk_verifies() {
        for alg in [
            KeyAlg::Rs256,
            KeyAlg::Rs384,
            KeyAlg::Ps256,
            KeyAlg::Es256,
            KeyAlg::Es384,
            KeyAlg::EdDsa,
        ] {
            let key = TestKey::generate(alg, "k").expect("keygen");
            let token = key
                .sign(&json!({"sub": "s", "exp": 4_102_444_800u64}))
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            let set = crate::KeySet::from_slice(jwks_json(&[&key]).as_bytes()).expect("set");
            let (input, signature) = token.rsplit_once('.').expect("three parts");
            let signature = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                signature,
            )
            .expect("base64url");
            let key = set.get("k").expect("key");
            assert!(
                key.verify_signature(alg.algorithm(), input.as_bytes(), &signature),
                "{alg:?}"
            );
        }
    }
}
