//! SPKI pins: the SHA-256 of a certificate's SubjectPublicKeyInfo, the
//! format of HPKP's `pin-sha256` and of `openssl … | openssl dgst -sha256
//! -binary | base64`.
//!
//! The TLS verifier in `http.rs` calls [`leaf_spki_sha256`] on the server's
//! end-entity certificate after the usual chain and name checks pass. The
//! certificate is parsed by rustls-webpki; one it cannot parse is "no
//! match".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::CertificateDer;

/// A parsed pin.
pub(crate) type Pin = [u8; 32];

/// Parses a pin: standard base64 of 32 bytes, optionally prefixed with
/// `sha256/` (the form OkHttp and HPKP tooling print).
pub(crate) fn parse_pin(pin: &str) -> Result<Pin, String> {
    let b64 = pin.trim();
    let b64 = b64.strip_prefix("sha256/").unwrap_or(b64);
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| format!("pin_spki_sha256: {pin:?} is not base64 ({e})"))?;
    Pin::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "pin_spki_sha256: {pin:?} decodes to {} bytes, a SHA-256 pin has 32",
            bytes.len()
        )
    })
}

/// SHA-256 of the SubjectPublicKeyInfo of the X.509 certificate `cert_der`,
/// or `None` if it does not parse. webpki (the parser rustls verified the
/// chain with) extracts the SPKI; nothing here walks DER by hand.
pub(crate) fn leaf_spki_sha256(cert_der: &[u8]) -> Option<Pin> {
    let der = CertificateDer::from(cert_der);
    let cert = webpki::EndEntityCert::try_from(&der).ok()?;
    let spki = cert.subject_public_key_info();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki.as_ref());
    Pin::try_from(digest.as_ref()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_with_or_without_prefix() {
        let pin = STANDARD.encode([7u8; 32]);
        assert_eq!(parse_pin(&pin), Ok([7u8; 32]));
        assert_eq!(parse_pin(&format!("sha256/{pin}")), Ok([7u8; 32]));
        assert!(parse_pin("not base64!").is_err());
        assert!(parse_pin(&STANDARD.encode([7u8; 20])).is_err());
    }

    #[test]
    fn garbage_is_no_match_not_a_panic() {
        for der in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x1f, 0, 0],
        ] {
            assert_eq!(leaf_spki_sha256(der), None);
        }
    }
}
