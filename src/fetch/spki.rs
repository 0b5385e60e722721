//! SPKI pins: the SHA-256 of a certificate's SubjectPublicKeyInfo, the
//! format of HPKP's `pin-sha256` and of `openssl … | openssl dgst -sha256
//! -binary | base64`.
//!
//! The TLS verifier in `http.rs` calls [`leaf_spki_sha256`] on the server's
//! end-entity certificate after the usual chain and name checks pass. The
//! certificate is DER from the handshake, so it is walked with bounds checks
//! and no panics: anything unexpected is "no match".

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

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
/// or `None` if it cannot be located.
pub(crate) fn leaf_spki_sha256(cert_der: &[u8]) -> Option<Pin> {
    let spki = spki_of(cert_der)?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    Pin::try_from(digest.as_ref()).ok()
}

/// The SubjectPublicKeyInfo element (tag and length included) of a
/// certificate:
///
/// ```text
/// Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, ... }
/// TBSCertificate ::= SEQUENCE {
///     version [0] EXPLICIT Version DEFAULT v1, serialNumber, signature,
///     issuer, validity, subject, subjectPublicKeyInfo, ... }
/// ```
fn spki_of(cert_der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let (tag, cert, _) = element(cert_der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = element(content(cert)?)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = content(tbs)?;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = element(rest)?.2;
    }
    let (tag, spki, _) = element(rest)?;
    (tag == SEQUENCE).then_some(spki)
}

/// Splits the first DER element off `input`: its tag, the whole element
/// (header and content), and what follows. Single-byte tags only (all that
/// X.509 uses up to the SPKI), definite lengths of up to four bytes.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((tag, whole, input.get(end..)?))
}

/// The content of a whole element (its header removed).
fn content(whole: &[u8]) -> Option<&[u8]> {
    let first = *whole.get(1)?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    whole.get(header..)
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
        // Every truncation of a minimal certificate-shaped value.
        let tbs = [
            0xa0, 0x03, 0x02, 0x01, 0x02, // version
            0x02, 0x01, 0x01, // serial
            0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, // alg, issuer, validity, subject
            0x30, 0x02, 0x05, 0x00, // "spki"
        ];
        let mut cert = vec![0x30, tbs.len() as u8 + 2, 0x30, tbs.len() as u8];
        cert.extend_from_slice(&tbs);
        assert_eq!(spki_of(&cert), Some(&[0x30, 0x02, 0x05, 0x00][..]));
        for cut in 0..cert.len() {
            assert_eq!(spki_of(&cert[..cut]), None, "cut at {cut}");
        }
    }
}
