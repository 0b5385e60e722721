//! The test IdP's certificates: a throwaway CA and a server certificate for
//! `localhost`, `127.0.0.1` and `::1`, generated with rcgen (ECDSA P-256 on
//! aws-lc-rs), and the rustls server configuration that presents them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

use crate::testing::{TestError, TestErrorKind};

static NEXT_CA: AtomicU64 = AtomicU64::new(0);

/// What a TLS test server needs, and what its clients need to trust it.
pub(super) struct Material {
    pub(super) server_config: Arc<ServerConfig>,
    pub(super) ca_pem: String,
    pub(super) spki_sha256: String,
}

impl Material {
    pub(super) fn generate() -> Result<Self, TestError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            TestError::new(TestErrorKind::Certificate, format!("{what}: {e}"))
        };
        let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA params", &e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own, so a client trusting another test IdP's CA
        // sees an unknown issuer, not a same-name CA with a bad signature.
        let serial = NEXT_CA.fetch_add(1, Ordering::Relaxed); // Relaxed: a unique number, nothing else
        ca_params.distinguished_name.push(
            DnType::CommonName,
            format!("jwks-sync test CA {}-{serial}", std::process::id()),
        );
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| err("CA cert", &e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().map_err(|e| err("server key", &e))?;
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let mut params = CertificateParams::new(names).map_err(|e| err("server params", &e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| err("server cert", &e))?;

        let spki = key.subject_public_key_info();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", &e))?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private)
            .map_err(|e| err("TLS config", &e))?;
        Ok(Self {
            server_config: Arc::new(server_config),
            ca_pem: ca_cert.pem(),
            spki_sha256: STANDARD.encode(digest.as_ref()),
        })
    }
}
