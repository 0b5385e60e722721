//! Entry points for the fuzzer (`fuzz/`, built with `--cfg fuzzing`) and
//! for the corpus replay in the unit tests: one function per door through
//! which bytes from outside reach the crate, each running the real parser
//! and then an **oracle** that panics when the result is wrong, not only
//! when the parser crashes.
//!
//! | entry | door | oracle |
//! |---|---|---|
//! | [`jwks_document`] | a JWKS body → `KeySet` | every entry is a key or a skip; each key re-encodes to its JWK members |
//! | [`jwk_entry`] | one `keys` entry → `Key` | same, plus jsonwebtoken's `DecodingKey::from_jwk` agrees |
//! | [`verify_token`] | a token through `Verifier::verify` | an accepted token passes `jsonwebtoken::decode` with the same key and rules |
//! | [`cache_headers`] | `Cache-Control`/`Age`/`Expires`/`Date` → lifetime | the RFC 9111 invariants of the table in `fetch/freshness.rs` |
//! | [`http_date`] | an HTTP date → time, `Retry-After` | what parses formats back to itself |
//! | [`redirect`] | `Location` against a base URL | RFC 3986 resolution invariants, origin rules |
//! | [`discovery`] | an OpenID discovery document | an accepted one names the issuer and a same-origin https `jwks_uri`, as plain serde_json reads it |
//!
//! Not part of the API: compiled only for tests and under `cfg(fuzzing)`.

#[path = "fuzz_api/http.rs"]
mod http;
#[path = "fuzz_api/keys.rs"]
mod keys;
#[path = "fuzz_api/token.rs"]
mod token;

pub use http::{cache_headers, discovery, http_date, redirect};
pub use keys::{jwk_entry, jwks_document};
pub use token::verify_token;

/// An entry point: bytes in, a panic if the oracle fails.
pub type Entry = fn(&[u8]);

/// Every entry point by the name of its fuzz target (and of its corpus
/// folder, `fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("jwks_document", jwks_document),
    ("jwk_entry", jwk_entry),
    ("verify_token", verify_token),
    ("cache_headers", cache_headers),
    ("http_date", http_date),
    ("redirect", redirect),
    ("discovery", discovery),
];

#[cfg(test)]
#[path = "fuzz_api/seeds.rs"]
mod seeds;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Replays every committed corpus file (and every regression input)
    /// through its entry point and oracle: the fuzzer's findings stay fixed
    /// on stable, in seconds.
    #[test]
    fn committed_fuzz_corpora_replay_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut replayed = 0usize;
        for (name, entry) in TARGETS {
            let mut per_target = 0usize;
            for dir in ["corpus", "regressions"] {
                let Ok(files) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for file in files.flatten() {
                    let bytes = match std::fs::read(file.path()) {
                        Ok(bytes) => bytes,
                        // A fuzzer running in this checkout reduces its
                        // corpus while we read it: a vanished file is no
                        // finding.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => panic!("{}: {e}", file.path().display()),
                    };
                    let outcome = std::panic::catch_unwind(|| entry(&bytes));
                    assert!(
                        outcome.is_ok(),
                        "{name}: {} fails its oracle",
                        file.path().display()
                    );
                    per_target += 1;
                }
            }
            assert!(per_target > 0, "no corpus committed for {name}");
            replayed += per_target;
        }
        assert!(replayed >= TARGETS.len());
    }

    /// The token oracle is reached: a well-formed signed input is accepted
    /// (and so re-checked by jsonwebtoken); the same claims expired are not.
    #[test]
    fn signed_inputs_reach_the_token_oracle() {
        let input = |claims: serde_json::Value| {
            let mut data = br#"{"alg":"EdDSA","kid":"ed"}"#.to_vec();
            data.insert(0, 2);
            data.push(0xFF);
            data.extend_from_slice(claims.to_string().as_bytes());
            data
        };
        let claims = |exp: u64| serde_json::json!({"iss": super::token::ISSUER, "aud": super::token::AUDIENCE, "exp": exp});
        assert!(super::token::verify_and_check(&input(claims(
            4_102_444_800
        ))));
        assert!(!super::token::verify_and_check(&input(claims(1_000))));
    }

    /// The fuzzer's first finding (fuzz/regressions/redirect/): a
    /// `Location` with the base's scheme and no `//` is relative to the
    /// base (RFC 3986 §5.2.2, non-strict; the URL standard), so it cannot
    /// leave the base's origin; the oracle had assumed it was absolute.
    #[test]
    fn a_same_scheme_location_without_slashes_stays_on_the_origin() {
        use crate::fetch::Target;
        let base = Target::parse("http://127.0.0.1:8080/keys").expect("base");
        let to = base.join("http:h//idp.es").expect("resolves");
        assert_eq!(to.as_str(), "http://127.0.0.1:8080/h//idp.es");
        let base = Target::parse("https://idp.example/a/b").expect("base");
        let to = base.join("https:/evil.example/k").expect("resolves");
        assert!(to.same_origin(&base), "{}", to.as_str());
        super::redirect(b"\x02http:h//idp.es");
    }

    /// The key oracle fails a key that its entry does not determine.
    #[test]
    fn the_key_oracle_catches_a_key_unlike_its_entry() {
        use crate::testing::{KeyAlg, TestKey};
        let a = TestKey::generate(KeyAlg::Es256, "k").expect("keygen");
        let b = TestKey::generate(KeyAlg::Es256, "k").expect("keygen");
        let limits = crate::jwk::KeyLimits { max_kid_len: 256 };
        let key = crate::jwk::parse_entry(a.jwk(), limits).expect("usable");
        super::keys::check_key(a.jwk(), &key);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::keys::check_key(b.jwk(), &key);
        }));
        assert!(caught.is_err(), "another key's entry passed the oracle");
    }
}
