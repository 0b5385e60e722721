//! The snapshot format: what one instance saves after a fetch from the
//! origin, and what the others check before they use it.
//!
//! ## Layout (version 1)
//!
//! Text up to the body, so `redis-cli --raw GET` and `head -c 600` show it:
//!
//! ```text
//! jwks-sync-snapshot 1\n                      magic and format version
//! {"source":…,"fetched_at_ms":…,…}\n          header: one line of JSON
//! hmac-sha256=<64 lowercase hex digits>\n     the tag
//! <the JWKS document, byte for byte>          body: header.body_len bytes
//! ```
//!
//! The header's members: `source` (the source id the snapshot is bound to),
//! `fetched_at_ms` (wall clock, Unix milliseconds, when the document left the
//! origin), `lifetime_ms`, `stale_at_ms` (= fetched_at + lifetime),
//! `expires_at_ms` (= stale_at + stale-while-error: the hard expiry),
//! `max_age_ms` (the origin's lifetime hint, or null), `etag` and
//! `last_modified` (validators, or null), `body_len`.
//!
//! The tag is HMAC-SHA256, under the fleet key, of the first line, a
//! newline, the header line, a newline, and the body: every byte but the tag
//! line itself. It is checked in constant time before any header member is
//! trusted.

use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::{json, Value};

use crate::fetch::Validators;

/// The first line of every snapshot, up to the version number.
const MAGIC: &str = "jwks-sync-snapshot ";
/// The format version this crate writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
const TAG_PREFIX: &str = "hmac-sha256=";
/// A snapshot dated this far in the future of the local wall clock is
/// still accepted (as dated now); further, it is rejected.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Header lines longer than this are malformed.
const MAX_HEADER: usize = 8 * 1024;

/// Why a stored snapshot was not used. Counted in
/// [`FleetStats::rejected`](crate::FleetStats::rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Not the layout above (no magic line, no header, bad JSON).
    Malformed,
    /// Shorter or longer than its header says.
    Truncated,
    /// Written in a format version this crate does not know.
    Version,
    /// The HMAC tag does not match: tampered, or written under another key.
    BadMac,
    /// Authentic, but bound to another source.
    OtherSource,
    /// Dated in the future beyond a few seconds of clock skew.
    FromTheFuture,
    /// Past its hard expiry (its own or the one this instance would apply).
    Expired,
    /// The document does not parse as a usable key set under this
    /// instance's limits, or is larger than them.
    Unusable,
}

impl RejectReason {
    /// Every reason, in the order of [`FleetStats::rejected`](crate::FleetStats::rejected).
    pub const ALL: [RejectReason; 8] = [
        RejectReason::Malformed,
        RejectReason::Truncated,
        RejectReason::Version,
        RejectReason::BadMac,
        RejectReason::OtherSource,
        RejectReason::FromTheFuture,
        RejectReason::Expired,
        RejectReason::Unusable,
    ];

    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// One fetch from the origin, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) source: String,
    pub(crate) fetched_at_ms: u64,
    pub(crate) lifetime_ms: u64,
    pub(crate) stale_at_ms: u64,
    pub(crate) expires_at_ms: u64,
    pub(crate) max_age_ms: Option<u64>,
    pub(crate) validators: Validators,
    pub(crate) body: Vec<u8>,
}

/// The fleet key; an empty key still detects corruption, not tampering.
pub(crate) struct MacKey(hmac::Key);

impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Snapshot {
    /// A snapshot of a document that left the origin at `fetched_at_ms`,
    /// with deadlines from that moment.
    pub(crate) fn new(
        source: &str,
        fetched_at_ms: u64,
        lifetime: Duration,
        stale_while_error: Duration,
        max_age: Option<Duration>,
        validators: Validators,
        body: Vec<u8>,
    ) -> Self {
        let stale_at_ms = fetched_at_ms.saturating_add(ms(lifetime));
        Self {
            source: source.to_owned(),
            fetched_at_ms,
            lifetime_ms: ms(lifetime),
            stale_at_ms,
            expires_at_ms: stale_at_ms.saturating_add(ms(stale_while_error)),
            max_age_ms: max_age.map(ms),
            validators,
            body,
        }
    }

    /// The bytes to store, tag included.
    pub(crate) fn encode(&self, key: &MacKey) -> Vec<u8> {
        let header = json!({
            "source": self.source,
            "fetched_at_ms": self.fetched_at_ms,
            "lifetime_ms": self.lifetime_ms,
            "stale_at_ms": self.stale_at_ms,
            "expires_at_ms": self.expires_at_ms,
            "max_age_ms": self.max_age_ms,
            "etag": self.validators.etag,
            "last_modified": self.validators.last_modified,
            "body_len": self.body.len(),
        })
        .to_string();
        let first = format!("{MAGIC}{FORMAT_VERSION}");
        let tag = hmac::sign(&key.0, &signed_bytes(&first, &header, &self.body));
        let mut out = Vec::with_capacity(first.len() + header.len() + self.body.len() + 90);
        out.extend_from_slice(first.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(TAG_PREFIX.as_bytes());
        out.extend_from_slice(hex(tag.as_ref()).as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    /// Checks `bytes` (layout, version, tag, source, dates) against this
    /// instance's key, source and wall clock (`now_ms`).
    pub(crate) fn decode(
        bytes: &[u8],
        key: &MacKey,
        source: &str,
        now_ms: u64,
    ) -> Result<Self, RejectReason> {
        let (first, rest) = split_line(bytes).ok_or(RejectReason::Malformed)?;
        let version = first
            .strip_prefix(MAGIC)
            .ok_or(RejectReason::Malformed)?
            .parse::<u32>()
            .map_err(|_| RejectReason::Malformed)?;
        if version != FORMAT_VERSION {
            return Err(RejectReason::Version);
        }
        let (header, rest) = split_line(rest).ok_or(RejectReason::Truncated)?;
        let (tag_line, body) = split_line(rest).ok_or(RejectReason::Truncated)?;
        let fields: Value = serde_json::from_str(header).map_err(|_| RejectReason::Malformed)?;
        let body_len = fields
            .get("body_len")
            .and_then(Value::as_u64)
            .ok_or(RejectReason::Malformed)?;
        if u64::try_from(body.len()).ok() != Some(body_len) {
            return Err(RejectReason::Truncated);
        }
        let tag = tag_line
            .strip_prefix(TAG_PREFIX)
            .and_then(unhex)
            .ok_or(RejectReason::Malformed)?;
        // Constant-time comparison inside aws-lc-rs.
        hmac::verify(&key.0, &signed_bytes(first, header, body), &tag)
            .map_err(|_| RejectReason::BadMac)?;
        let num = |name: &str| fields.get(name).and_then(Value::as_u64);
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        let snapshot = Snapshot {
            source: text("source").ok_or(RejectReason::Malformed)?,
            fetched_at_ms: num("fetched_at_ms").ok_or(RejectReason::Malformed)?,
            lifetime_ms: num("lifetime_ms").ok_or(RejectReason::Malformed)?,
            stale_at_ms: num("stale_at_ms").ok_or(RejectReason::Malformed)?,
            expires_at_ms: num("expires_at_ms").ok_or(RejectReason::Malformed)?,
            max_age_ms: num("max_age_ms"),
            validators: Validators {
                etag: text("etag"),
                last_modified: text("last_modified"),
            },
            body: body.to_vec(),
        };
        if snapshot.source != source {
            return Err(RejectReason::OtherSource);
        }
        if snapshot.fetched_at_ms > now_ms.saturating_add(ms(CLOCK_SKEW)) {
            return Err(RejectReason::FromTheFuture);
        }
        // Deadlines must follow from the fetch date: a writer holding the
        // key still cannot date a snapshot old and its expiry late.
        if snapshot.stale_at_ms != snapshot.fetched_at_ms.saturating_add(snapshot.lifetime_ms)
            || snapshot.expires_at_ms < snapshot.stale_at_ms
        {
            return Err(RejectReason::Malformed);
        }
        if now_ms >= snapshot.expires_at_ms {
            return Err(RejectReason::Expired);
        }
        Ok(snapshot)
    }

    /// How long ago the document left the origin (zero if dated slightly
    /// ahead of this clock).
    pub(crate) fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.fetched_at_ms))
    }
}

fn signed_bytes(first: &str, header: &str, body: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(first.len() + header.len() + body.len() + 2);
    data.extend_from_slice(first.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(header.as_bytes());
    data.push(b'\n');
    data.extend_from_slice(body);
    data
}

/// The text before the first newline (bounded), and the bytes after it.
fn split_line(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = bytes.iter().take(MAX_HEADER).position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    Some((line, &bytes[end + 1..]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
