use super::*;

const NOW: u64 = 1_800_000_000_000;

fn sample() -> Snapshot {
    Snapshot::new(
        "url https://idp.example/jwks",
        NOW - 1_000,
        Duration::from_secs(300),
        Duration::from_secs(3600),
        Some(Duration::from_secs(300)),
        Validators {
            etag: Some("\"v1\"".to_owned()),
            last_modified: None,
        },
        br#"{"keys":[]}"#.to_vec(),
    )
}

fn key() -> MacKey {
    MacKey::new(b"fleet secret")
}

#[test]
fn round_trip_and_readable_layout() {
    let bytes = sample().encode(&key());
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with("jwks-sync-snapshot 1\n{"), "{text}");
    assert!(text.contains("\nhmac-sha256="), "{text}");
    assert!(text.ends_with(r#"{"keys":[]}"#), "{text}");
    let back = Snapshot::decode(&bytes, &key(), "url https://idp.example/jwks", NOW).unwrap();
    assert_eq!(back, sample());
    assert_eq!(back.expires_at_ms, NOW - 1_000 + 3_900_000);
    assert_eq!(back.age(NOW), Duration::from_secs(1));
}

fn decode(bytes: &[u8]) -> Result<Snapshot, RejectReason> {
    Snapshot::decode(bytes, &key(), "url https://idp.example/jwks", NOW)
}

#[test]
fn tampering_is_rejected_with_its_reason() {
    let good = sample().encode(&key());
    let text = String::from_utf8(good.clone()).unwrap();

    // Extend the hard expiry: the tag no longer matches.
    let later = NOW - 1_000 + 3_900_000;
    let extended = text.replace(&later.to_string(), &(later + 86_400_000).to_string());
    assert_ne!(extended, text);
    assert_eq!(decode(extended.as_bytes()), Err(RejectReason::BadMac));

    // A body byte flipped.
    let mut flipped = good.clone();
    let last = flipped.len() - 2;
    flipped[last] ^= 1;
    assert_eq!(decode(&flipped), Err(RejectReason::BadMac));

    // Another key.
    assert_eq!(
        Snapshot::decode(
            &good,
            &MacKey::new(b"other"),
            "url https://idp.example/jwks",
            NOW
        ),
        Err(RejectReason::BadMac)
    );

    // Truncated anywhere.
    for cut in [0, 5, 25, 60, good.len() - 90, good.len() - 1] {
        let r = decode(&good[..cut]);
        assert!(
            matches!(r, Err(RejectReason::Truncated | RejectReason::Malformed)),
            "cut at {cut}: {r:?}"
        );
    }
    assert_eq!(
        decode(&good[..good.len() - 1]),
        Err(RejectReason::Truncated)
    );

    // A future format version.
    let future = text.replacen("jwks-sync-snapshot 1", "jwks-sync-snapshot 2", 1);
    assert_eq!(decode(future.as_bytes()), Err(RejectReason::Version));

    // Garbage.
    assert_eq!(decode(b"hello"), Err(RejectReason::Malformed));
    assert_eq!(decode(&[0xff; 64]), Err(RejectReason::Malformed));
}

#[test]
fn bound_to_its_source_and_to_time() {
    let good = sample().encode(&key());
    assert_eq!(
        Snapshot::decode(&good, &key(), "url https://other.example/jwks", NOW),
        Err(RejectReason::OtherSource)
    );
    let mut future = sample();
    future.fetched_at_ms = NOW + 60_000;
    future.stale_at_ms = future.fetched_at_ms + future.lifetime_ms;
    future.expires_at_ms = future.stale_at_ms;
    assert_eq!(
        decode(&future.encode(&key())),
        Err(RejectReason::FromTheFuture)
    );
    // A little skew is tolerated, and ages as zero.
    let mut skewed = sample();
    skewed.fetched_at_ms = NOW + 2_000;
    skewed.stale_at_ms = skewed.fetched_at_ms + skewed.lifetime_ms;
    skewed.expires_at_ms = skewed.stale_at_ms;
    assert_eq!(
        decode(&skewed.encode(&key())).unwrap().age(NOW),
        Duration::ZERO
    );
    // Past its hard expiry.
    let old = sample().encode(&key());
    assert_eq!(
        Snapshot::decode(
            &old,
            &key(),
            "url https://idp.example/jwks",
            NOW + 4_000_000
        ),
        Err(RejectReason::Expired)
    );
    // Deadlines that do not follow from the fetch date, even under the key.
    let mut forged = sample();
    forged.stale_at_ms += 1;
    assert_eq!(decode(&forged.encode(&key())), Err(RejectReason::Malformed));
}
