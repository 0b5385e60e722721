//! One JSON Web Key (RFC 7517 §4) turned into a verification key, or the
//! reason it was skipped. Pure: no I/O, no concurrency.

use std::fmt;

use crate::algorithm::Algorithm;
use crate::json::{Entry, KeyOps, Member};
use crate::printable;
use crate::sync::Arc;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Limits applied to each entry; set through the builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyLimits {
    pub(crate) max_kid_len: usize,
}

/// The public-key family and size of a [`Key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus length in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// EdDSA on Ed25519.
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa { bits } => write!(f, "RSA-{bits}"),
            KeyType::EcP256 => f.write_str("EC P-256"),
            KeyType::EcP384 => f.write_str("EC P-384"),
            KeyType::Ed25519 => f.write_str("OKP Ed25519"),
        }
    }
}

/// A small set of [`Algorithm`]s, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AlgorithmSet(u16);

const ALL_ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn bit(alg: Algorithm) -> u16 {
    // HMAC maps to no bit: a remote key set never vouches for it.
    match alg {
        Algorithm::RS256 => 1 << 0,
        Algorithm::RS384 => 1 << 1,
        Algorithm::RS512 => 1 << 2,
        Algorithm::PS256 => 1 << 3,
        Algorithm::PS384 => 1 << 4,
        Algorithm::PS512 => 1 << 5,
        Algorithm::ES256 => 1 << 6,
        Algorithm::ES384 => 1 << 7,
        Algorithm::EdDSA => 1 << 8,
        _ => 0,
    }
}

impl AlgorithmSet {
    /// The empty set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every asymmetric algorithm this crate verifies (no HMAC, no `none`).
    pub fn asymmetric() -> Self {
        ALL_ASYMMETRIC.into_iter().collect()
    }

    /// Adds `alg` (HMAC algorithms are never added).
    pub fn insert(&mut self, alg: Algorithm) {
        self.0 |= bit(alg);
    }

    /// Whether `alg` is in the set.
    #[inline]
    pub fn contains(self, alg: Algorithm) -> bool {
        let b = bit(alg);
        b != 0 && self.0 & b != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        ALL_ASYMMETRIC
            .into_iter()
            .filter(move |a| self.contains(*a))
    }

    /// The members both sets have.
    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        let mut set = Self::empty();
        for alg in iter {
            set.insert(alg);
        }
        set
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A usable verification key, built once when the set was fetched.
///
/// Several keys may share a kid (a rotation that kept the kid, or an RSA
/// and an EC key under one name): the first in document order is the one
/// a lookup by kid returns, and it links to the others
/// ([`next_same_kid`](Self::next_same_kid)), at most
/// [`MAX_KEYS_PER_KID`](crate::KeySet::MAX_KEYS_PER_KID) in all.
pub struct Key {
    kid: Option<Box<str>>,
    /// The entry's `issuer` member (Entra publishes one per key).
    issuer: Option<Box<str>>,
    key_type: KeyType,
    algorithms: AlgorithmSet,
    /// One aws-lc key per algorithm in `algorithms`, parsed at refresh time
    /// so that verifying a token never parses key material.
    verifiers: Box<[(Algorithm, ParsedPublicKey)]>,
    /// The next usable key of the document under the same kid.
    next_same_kid: Option<Arc<Key>>,
}

impl Key {
    /// The key's `kid`, if the entry had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The entry's `issuer` member, if it had one: the issuer whose tokens
    /// this key may sign, as Microsoft Entra ID publishes it (for example
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`). An entry whose
    /// `issuer` is not a string is skipped
    /// ([`SkipReason::Malformed`]`("issuer")`).
    /// [`IssuerVerifier`](crate::IssuerVerifier) binds a token's `iss` to it.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Family and size.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The algorithms this key may verify: its `alg` if the entry named one,
    /// otherwise every algorithm of its family (EC: the one of its curve).
    pub fn algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Whether a token signed with `alg` may be verified with this key.
    #[inline]
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(alg)
    }

    /// The next usable key published under the same kid, in document order
    /// (`None` for the last one, and for keys without a kid). The verifier
    /// tries every candidate bound to the token's `alg`; a caller doing its
    /// own verification with [`JwksCache::with_key`](crate::JwksCache::with_key)
    /// should too.
    pub fn next_same_kid(&self) -> Option<&Arc<Key>> {
        self.next_same_kid.as_ref()
    }

    /// This key and the ones after it under the same kid, in document order.
    pub fn same_kid(&self) -> impl Iterator<Item = &Key> {
        std::iter::successors(Some(self), |k| k.next_same_kid.as_deref())
    }

    /// Links `next` as the following key under the same kid.
    /// The bytes each aws-lc key was parsed from, by algorithm: for the
    /// fuzz oracle, which checks them against the entry's members.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn material(&self) -> impl Iterator<Item = (Algorithm, &[u8])> {
        self.verifiers.iter().map(|(alg, key)| (*alg, key.as_ref()))
    }

    pub(crate) fn set_next_same_kid(&mut self, next: Arc<Key>) {
        self.next_same_kid = Some(next);
    }

    /// Whether `signature` is a valid `alg` signature of `message` under
    /// this key, checked with the key parsed at refresh time (no parsing
    /// here). `false` when the key is not bound to `alg`. For a JWS,
    /// `message` is `header.payload` as sent and `signature` the decoded
    /// third part (ECDSA: `r || s`). Most callers want
    /// [`Verifier`](crate::Verifier), which applies every other rule too.
    ///
    /// ```
    /// # let cache = jwks_sync::doc_cache();
    /// let ok = cache.with_key("k1", |key| {
    ///     key.verify_signature(jwks_sync::Algorithm::ES256, b"header.payload", &[0u8; 64])
    /// })?;
    /// assert!(!ok);
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[inline]
    pub fn verify_signature(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.verifiers
            .iter()
            .find(|(bound, _)| *bound == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("key_type", &self.key_type)
            .field("algorithms", &self.algorithms)
            .field("more_under_kid", &(self.same_kid().count() - 1))
            .finish_non_exhaustive()
    }
}

/// Why one entry of a key set was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A member is missing or has the wrong JSON type or encoding.
    Malformed(&'static str),
    /// `kty` is not `RSA`, `EC` or `OKP`.
    UnsupportedKeyType(String),
    /// `crv` is not `P-256`, `P-384` (EC) or `Ed25519` (OKP).
    UnsupportedCurve(String),
    /// `alg` is unknown, symmetric, or does not fit the key type or curve.
    UnsupportedAlgorithm(String),
    /// `use` is present and is not `sig`.
    NotForSignatures,
    /// `key_ops` is present and does not include `verify`.
    NoVerifyOperation,
    /// `kty` is `oct`: a shared secret is never trusted from a remote set.
    Symmetric,
    /// The entry carries private-key members (`d`, `p`, ...).
    PrivateKeyMaterial,
    /// RSA modulus shorter than 2048 bits.
    RsaModulusTooSmall(u32),
    /// RSA modulus longer than 8192 bits.
    RsaModulusTooLarge(u32),
    /// RSA exponent not an odd value between 3 and 2^32 - 1.
    RsaBadExponent,
    /// EC or OKP coordinate of the wrong length for its curve.
    BadCoordinateLength,
    /// The crypto library rejected the key (for example, not a curve point).
    InvalidKey,
    /// `kid` longer than `Builder::max_kid_len`.
    KidTooLong(usize),
    /// Already [`KeySet::MAX_KEYS_PER_KID`](crate::KeySet::MAX_KEYS_PER_KID)
    /// usable entries have this `kid`; the ones beyond are not kept.
    DuplicateKid,
    /// The entry is past `Builder::max_keys`.
    TooManyKeys,
    /// The entry names this member twice (or an object inside it does):
    /// parsers disagree on which one counts, so the entry is not used. At
    /// most 64 characters of the name are kept.
    RepeatedMember(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Malformed(member) => write!(f, "malformed member {member}"),
            SkipReason::UnsupportedKeyType(kty) => {
                write!(f, "unsupported kty \"{}\"", printable(kty))
            }
            SkipReason::UnsupportedCurve(crv) => {
                write!(f, "unsupported crv \"{}\"", printable(crv))
            }
            SkipReason::UnsupportedAlgorithm(alg) => {
                write!(f, "unsupported alg \"{}\"", printable(alg))
            }
            SkipReason::NotForSignatures => f.write_str("use is not \"sig\""),
            SkipReason::NoVerifyOperation => f.write_str("key_ops lacks \"verify\""),
            SkipReason::Symmetric => f.write_str("symmetric (oct) key"),
            SkipReason::PrivateKeyMaterial => f.write_str("contains private key members"),
            SkipReason::RsaModulusTooSmall(bits) => write!(f, "rsa modulus {bits} bits < 2048"),
            SkipReason::RsaModulusTooLarge(bits) => write!(f, "rsa modulus {bits} bits > 8192"),
            SkipReason::RsaBadExponent => f.write_str("rsa exponent not a small odd value"),
            SkipReason::BadCoordinateLength => f.write_str("coordinate length wrong for curve"),
            SkipReason::InvalidKey => f.write_str("rejected by the crypto library"),
            SkipReason::KidTooLong(len) => write!(f, "kid of {len} bytes over the limit"),
            SkipReason::DuplicateKid => f.write_str("more than 4 keys under this kid"),
            SkipReason::TooManyKeys => f.write_str("over the key-count limit"),
            SkipReason::RepeatedMember(name) => {
                write!(f, "repeats the member \"{}\"", crate::printable(name))
            }
        }
    }
}

/// Reusable decoding buffers for the key material of one document's
/// entries: after the first entries, building a key allocates only what
/// the key keeps.
#[derive(Default)]
pub(crate) struct Scratch {
    first: Vec<u8>,
    second: Vec<u8>,
}

/// Parses one `keys` entry, given as a `Value` (the unit tests and the fuzz
/// oracle): written out and read back through the document reader's own
/// entry reader, then [`build_key`].
#[cfg(any(test, fuzzing))]
pub(crate) fn parse_entry(entry: &serde_json::Value, limits: KeyLimits) -> Result<Key, SkipReason> {
    let bytes = serde_json::to_vec(entry).map_err(|_| SkipReason::Malformed("entry"))?;
    let entry =
        crate::json::entry_from_slice(&bytes).map_err(|_| SkipReason::Malformed("entry"))?;
    build_key(&entry, limits, &mut Scratch::default())
}

/// Builds the key of one `keys` entry, or says why it is skipped. The
/// rules run in a fixed order; the first one broken is the reason.
pub(crate) fn build_key(
    entry: &Entry<'_>,
    limits: KeyLimits,
    scratch: &mut Scratch,
) -> Result<Key, SkipReason> {
    if !entry.object {
        return Err(SkipReason::Malformed("entry is not an object"));
    }
    let kty = str_member(&entry.kty, "kty")?.ok_or(SkipReason::Malformed("kty"))?;
    let kid = str_member(&entry.kid, "kid")?;
    let issuer = str_member(&entry.issuer, "issuer")?;
    if let Some(kid) = kid {
        if kid.len() > limits.max_kid_len {
            return Err(SkipReason::KidTooLong(kid.len()));
        }
    }
    if let Some(usage) = str_member(&entry.usage, "use")? {
        if usage != "sig" {
            return Err(SkipReason::NotForSignatures);
        }
    }
    match entry.key_ops {
        None | Some(KeyOps::Array { verify: true }) => {}
        Some(KeyOps::Array { verify: false }) => return Err(SkipReason::NoVerifyOperation),
        Some(KeyOps::Other) => return Err(SkipReason::Malformed("key_ops")),
    }
    let alg = match str_member(&entry.alg, "alg")? {
        None => None,
        Some(name) => Some(parse_alg(name)?),
    };
    if kty == "oct" {
        return Err(SkipReason::Symmetric);
    }
    if entry.private {
        return Err(SkipReason::PrivateKeyMaterial);
    }
    let (key_type, family, material) = match kty {
        "RSA" => rsa(entry, scratch)?,
        "EC" => ec(entry, scratch)?,
        "OKP" => okp(entry, scratch)?,
        other => return Err(SkipReason::UnsupportedKeyType(truncate(other))),
    };
    let algorithms = match alg {
        Some(alg) if family.contains(alg) => std::iter::once(alg).collect(),
        Some(alg) => return Err(SkipReason::UnsupportedAlgorithm(format!("{alg:?}"))),
        None => family,
    };
    let verifiers = algorithms
        .iter()
        .map(|alg| Ok((alg, material.parse(alg)?)))
        .collect::<Result<_, SkipReason>>()?;
    Ok(Key {
        kid: kid.map(Box::from),
        issuer: issuer.map(Box::from),
        key_type,
        algorithms,
        verifiers,
        next_same_kid: None,
    })
}

/// The public key material of an entry, decoded into the [`Scratch`]
/// buffers, ready to be parsed by aws-lc for each algorithm the key is
/// bound to.
enum Material<'s> {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: &'s [u8], e: &'s [u8] },
    /// The uncompressed point (`04 || x || y`).
    Ec(&'s [u8]),
    /// The 32-byte Ed25519 public key.
    Ed25519(&'s [u8]),
}

impl Material<'_> {
    /// The aws-lc key that verifies `alg` signatures (JWS ECDSA signatures
    /// are `r || s`, hence the `*_FIXED` algorithms).
    fn parse(&self, alg: Algorithm) -> Result<ParsedPublicKey, SkipReason> {
        let parsed = match (self, alg) {
            (Material::Rsa { n, e }, alg) => {
                let params: &'static sig::RsaParameters = match alg {
                    Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                    Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                    Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                    Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                    Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                    _ => return Err(SkipReason::UnsupportedAlgorithm(format!("{alg:?}"))),
                };
                RsaPublicKeyComponents { n: *n, e: *e }.to_parsed_public_key(params)
            }
            (Material::Ec(point), Algorithm::ES256) => {
                ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
            }
            (Material::Ec(point), Algorithm::ES384) => {
                ParsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point)
            }
            (Material::Ed25519(x), Algorithm::EdDSA) => ParsedPublicKey::new(&sig::ED25519, x),
            (_, alg) => return Err(SkipReason::UnsupportedAlgorithm(format!("{alg:?}"))),
        };
        // Rejects points that are not on the curve and RSA values aws-lc
        // refuses now, at refresh time, not at first use.
        parsed.map_err(|_| SkipReason::InvalidKey)
    }
}

fn parse_alg(name: &str) -> Result<Algorithm, SkipReason> {
    // RFC 9864 names the fully specified Ed25519 algorithm "Ed25519".
    let alg = if name == "Ed25519" {
        Algorithm::EdDSA
    } else {
        name.parse::<Algorithm>()
            .map_err(|_| SkipReason::UnsupportedAlgorithm(truncate(name)))?
    };
    if bit(alg) == 0 {
        return Err(SkipReason::UnsupportedAlgorithm(truncate(name)));
    }
    Ok(alg)
}

type Built<'s> = (KeyType, AlgorithmSet, Material<'s>);

fn rsa<'s>(entry: &Entry<'_>, scratch: &'s mut Scratch) -> Result<Built<'s>, SkipReason> {
    b64_member(&entry.n, "n", &mut scratch.first)?;
    b64_member(&entry.e, "e", &mut scratch.second)?;
    let n = strip_leading_zeros(&scratch.first);
    let e = strip_leading_zeros(&scratch.second);
    let bits = bit_length(n);
    if bits < 2048 {
        return Err(SkipReason::RsaModulusTooSmall(bits));
    }
    if bits > 8192 {
        return Err(SkipReason::RsaModulusTooLarge(bits));
    }
    if e.is_empty() || e.len() > 4 {
        return Err(SkipReason::RsaBadExponent);
    }
    let exp = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if exp < 3 || exp % 2 == 0 {
        return Err(SkipReason::RsaBadExponent);
    }
    // The RSA family: the first six of `ALL_ASYMMETRIC`.
    let family = ALL_ASYMMETRIC[..6].iter().copied().collect();
    Ok((KeyType::Rsa { bits }, family, Material::Rsa { n, e }))
}

fn ec<'s>(entry: &Entry<'_>, scratch: &'s mut Scratch) -> Result<Built<'s>, SkipReason> {
    let crv = str_member(&entry.crv, "crv")?.ok_or(SkipReason::Malformed("crv"))?;
    let (key_type, alg, len) = match crv {
        "P-256" => (KeyType::EcP256, Algorithm::ES256, 32),
        "P-384" => (KeyType::EcP384, Algorithm::ES384, 48),
        other => return Err(SkipReason::UnsupportedCurve(truncate(other))),
    };
    // `04 || x || y`, decoded in place.
    let point = &mut scratch.first;
    point.clear();
    point.push(0x04);
    let x = b64_append(&entry.x, "x", point)?;
    let y = b64_append(&entry.y, "y", point)?;
    if x != len || y != len {
        return Err(SkipReason::BadCoordinateLength);
    }
    Ok((
        key_type,
        std::iter::once(alg).collect(),
        Material::Ec(point),
    ))
}

fn okp<'s>(entry: &Entry<'_>, scratch: &'s mut Scratch) -> Result<Built<'s>, SkipReason> {
    let crv = str_member(&entry.crv, "crv")?.ok_or(SkipReason::Malformed("crv"))?;
    if crv != "Ed25519" {
        return Err(SkipReason::UnsupportedCurve(truncate(crv)));
    }
    b64_member(&entry.x, "x", &mut scratch.first)?;
    if scratch.first.len() != 32 {
        return Err(SkipReason::BadCoordinateLength);
    }
    Ok((
        KeyType::Ed25519,
        std::iter::once(Algorithm::EdDSA).collect(),
        Material::Ed25519(&scratch.first),
    ))
}

/// An optional string member; present with another JSON type is malformed.
fn str_member<'a>(
    member: &'a Option<Member<'_>>,
    name: &'static str,
) -> Result<Option<&'a str>, SkipReason> {
    match member {
        None => Ok(None),
        Some(Member::Str(s)) => Ok(Some(s)),
        Some(Member::Other) => Err(SkipReason::Malformed(name)),
    }
}

/// A required base64url (unpadded, RFC 7518 §6) member, decoded into `out`
/// (cleared first).
fn b64_member(
    member: &Option<Member<'_>>,
    name: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), SkipReason> {
    out.clear();
    b64_append(member, name, out).map(drop)
}

/// Like [`b64_member`], appending to `out`; the decoded length.
fn b64_append(
    member: &Option<Member<'_>>,
    name: &'static str,
    out: &mut Vec<u8>,
) -> Result<usize, SkipReason> {
    let s = str_member(member, name)?.ok_or(SkipReason::Malformed(name))?;
    let before = out.len();
    URL_SAFE_NO_PAD
        .decode_vec(s.trim_end_matches('='), out)
        .map_err(|_| SkipReason::Malformed(name))?;
    Ok(out.len() - before)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(be: &[u8]) -> u32 {
    match be.first() {
        None => 0,
        Some(top) => {
            let len = u32::try_from(be.len()).unwrap_or(u32::MAX / 8);
            (len - 1) * 8 + (8 - top.leading_zeros())
        }
    }
}

/// Keeps reasons short: a hostile document cannot make them large.
fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}

#[cfg(test)]
mod tests;
