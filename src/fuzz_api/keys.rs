//! The key doors: a whole JWKS document, and one entry of it.
//!
//! The oracle: a usable key is exactly what its JWK members say. Its
//! material, re-encoded, gives back the member strings (base64url is
//! canonical, so two strings never make one key), RSA values have no
//! leading zero and the bit size the key type reports, EC points are
//! `04 || x || y` of the curve's length, and the algorithms are the `alg`
//! member or the family of the `kty`/`crv`. jsonwebtoken's own JWK reader,
//! where it accepts the entry, must build the same key.

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, DecodingKeyKind};
use serde_json::Value;

use crate::error::KeySetError;
use crate::json;
use crate::jwk::{parse_entry, AlgorithmSet, Key, KeyLimits, KeyType};
use crate::keyset::KeySet;
use crate::Algorithm;

/// A JWKS document into a key set, with [`KeySet::from_slice`] and
/// [`KeySet::audit`]; panics if they disagree or a key is not what its
/// entry says.
pub fn jwks_document(data: &[u8]) {
    let parsed = KeySet::from_slice(data);
    let audited = KeySet::audit(data);
    let set = match (parsed, audited) {
        (Ok(parsed), Ok(audited)) => {
            assert_eq!(parsed.keys().len(), audited.keys().len());
            assert_eq!(parsed.skipped(), audited.skipped());
            assert!(!parsed.keys().is_empty(), "a published set has keys");
            audited
        }
        (Err(KeySetError::NoUsableKeys { skipped }), Ok(audited)) => {
            assert!(audited.keys().is_empty());
            assert_eq!(skipped, audited.skipped().len());
            audited
        }
        // A cache rejects an oversized document whole; the audit reports
        // every entry, those past the limit as skipped.
        (Err(KeySetError::TooManyKeys { limit, entries }), Ok(audited)) => {
            assert!(entries > limit);
            assert_eq!(audited.keys().len() + audited.skipped().len(), entries);
            assert!(audited.skipped().len() >= entries - limit);
            audited
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "the two readers disagree");
            return;
        }
        (parsed, audited) => panic!(
            "from_slice {:?} but audit {:?}",
            parsed.map(|s| s.keys().len()),
            audited.map(|s| s.keys().len())
        ),
    };
    // The second, tree-building reader: the oracle does not trust the
    // reader under test to say what the entries were.
    let doc = json::jwks_tree_from_slice(data).expect("a parsed set is JSON");
    let entries = doc.keys.expect("a parsed set has a keys array");
    assert!(doc.repeated.is_none(), "a set was built from a repeat");
    assert_eq!(
        set.keys().len() + set.skipped().len(),
        entries.len(),
        "every entry is a key or a skip"
    );
    let mut skipped = set.skipped().iter().map(|s| s.index).peekable();
    let mut keys = set.keys().iter();
    for (index, entry) in entries.iter().enumerate() {
        if skipped.peek() == Some(&index) {
            skipped.next();
            continue;
        }
        let key = keys.next().expect("one key per usable entry");
        assert!(entry.repeated.is_none(), "entry {index} repeats a member");
        check_key(&entry.value, key);
    }
    assert!(skipped.next().is_none(), "skips in document order");
    // A lookup gives the first key of the document under that kid, then
    // the others in order, at most MAX_KEYS_PER_KID.
    for key in set.keys() {
        let Some(kid) = key.kid() else { continue };
        let first = set
            .keys()
            .iter()
            .find(|k| k.kid() == Some(kid))
            .expect("itself");
        let got = set.get(kid).expect("a usable kid is indexed");
        assert!(std::ptr::eq(&**got, &**first), "get({kid:?}) is the first");
        let candidates = set.candidates(kid).count();
        let published = set.keys().iter().filter(|k| k.kid() == Some(kid)).count();
        assert_eq!(candidates, published);
        assert!(candidates <= KeySet::MAX_KEYS_PER_KID);
    }
}

/// One JWK entry into a key, through the same function a document uses;
/// panics if the key is not what the entry says, or if the entry fares
/// differently alone in a document.
pub fn jwk_entry(data: &[u8]) {
    let Ok(checked) = json::from_slice(data) else {
        return;
    };
    if checked.repeated.is_some() {
        return;
    }
    let single = parse_entry(&checked.value, KeyLimits { max_kid_len: 256 });
    let mut document = br#"{"keys":["#.to_vec();
    document.extend_from_slice(data);
    document.extend_from_slice(b"]}");
    let set = match KeySet::audit(&document) {
        Ok(set) => set,
        Err(KeySetError::TooLarge { .. }) => return,
        Err(e) => panic!("one entry alone makes a document, but: {e}"),
    };
    match single {
        Ok(key) => {
            check_key(&checked.value, &key);
            assert_eq!(set.keys().len(), 1, "alone in a document it is usable");
        }
        Err(reason) => {
            assert!(set.keys().is_empty());
            assert_eq!(set.skipped()[0].reason, reason);
        }
    }
}

/// The oracle for one usable key against the entry it came from.
pub(super) fn check_key(entry: &Value, key: &Key) {
    let member = |name: &str| entry.get(name).and_then(Value::as_str);
    assert_eq!(key.kid(), member("kid"), "kid is the entry's");
    assert!(matches!(member("use"), None | Some("sig")));
    if let Some(ops) = entry.get("key_ops") {
        let ops = ops.as_array().expect("key_ops is an array");
        assert!(ops.iter().any(|op| op.as_str() == Some("verify")));
    }
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(entry.get(private).is_none(), "private member {private}");
    }
    let kty = member("kty").expect("kty");
    let crv = member("crv");
    // Every aws-lc key of the entry was parsed from the same bytes.
    let mut material = key.material().map(|(_, bytes)| bytes);
    let bytes = material
        .next()
        .expect("a usable key has a verifier")
        .to_vec();
    assert!(material.all(|other| other == &bytes[..]), "one material");
    let family: &[Algorithm] = match key.key_type() {
        KeyType::Rsa { bits } => {
            assert_eq!(kty, "RSA");
            let (n, e) = (canonical(member("n")), canonical(member("e")));
            let (n, e) = (strip(&n), strip(&e));
            assert!(!n.is_empty() && !e.is_empty());
            assert_eq!(bits as usize, n.len() * 8 - n[0].leading_zeros() as usize);
            assert!((2048..=8192).contains(&bits));
            let exp = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            assert!(e.len() <= 4 && exp >= 3 && exp % 2 == 1, "exponent");
            let expected = RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                .expect("the members make an RSA key");
            assert_eq!(expected.as_ref(), &bytes[..], "n and e");
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ]
        }
        KeyType::EcP256 | KeyType::EcP384 => {
            let point = &bytes;
            let (name, len, alg) = if key.key_type() == KeyType::EcP256 {
                ("P-256", 32, Algorithm::ES256)
            } else {
                ("P-384", 48, Algorithm::ES384)
            };
            assert_eq!((kty, crv), ("EC", Some(name)));
            let (x, y) = (canonical(member("x")), canonical(member("y")));
            assert_eq!((x.len(), y.len()), (len, len));
            assert_eq!(point[0], 0x04);
            assert_eq!(&point[1..1 + len], &x[..], "x");
            assert_eq!(&point[1 + len..], &y[..], "y");
            if alg == Algorithm::ES256 {
                &[Algorithm::ES256]
            } else {
                &[Algorithm::ES384]
            }
        }
        KeyType::Ed25519 => {
            assert_eq!((kty, crv), ("OKP", Some("Ed25519")));
            assert_eq!(&canonical(member("x"))[..], &bytes[..], "x");
            assert_eq!(bytes.len(), 32);
            &[Algorithm::EdDSA]
        }
    };
    let family: AlgorithmSet = family.iter().copied().collect();
    let expected = match member("alg") {
        None => family,
        Some(name) => {
            let alg = if name == "Ed25519" {
                Algorithm::EdDSA
            } else {
                name.parse::<Algorithm>().expect("a known alg")
            };
            assert!(family.contains(alg), "{alg:?} outside the key's family");
            std::iter::once(alg).collect()
        }
    };
    assert_eq!(key.algorithms(), expected, "algorithms");
    // jsonwebtoken's own JWK reader, where it takes the entry, agrees.
    let reference = serde_json::from_value::<jsonwebtoken::jwk::Jwk>(entry.clone())
        .ok()
        .and_then(|jwk| DecodingKey::from_jwk(&jwk).ok());
    if let Some(reference) = reference {
        match reference.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                let ours = (canonical(member("n")), canonical(member("e")));
                assert_eq!(strip(n), strip(&ours.0), "jsonwebtoken reads another n");
                assert_eq!(strip(e), strip(&ours.1), "jsonwebtoken reads another e");
            }
            DecodingKeyKind::SecretOrDer(r) => {
                assert_eq!(&r[..], &bytes[..], "jsonwebtoken reads another key");
            }
        }
    }
}

/// Decodes a member as the key parser does (padding tolerated), then
/// checks that re-encoding gives the member back: one key, one spelling.
fn canonical(member: Option<&str>) -> Vec<u8> {
    let text = member.expect("a key member is a string");
    let unpadded = text.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .expect("an accepted member decodes");
    assert_eq!(URL_SAFE_NO_PAD.encode(&bytes), unpadded, "non-canonical");
    bytes
}

fn strip(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}
