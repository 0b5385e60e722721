//! Kids are attacker-chosen text: the data keeps them exactly, every
//! human-facing text (Display of skipped entries, refresh outcomes, errors)
//! escapes control and bidi characters and cuts long ones.
mod common;

use std::sync::{Arc, Mutex};

use common::{es, source_and_builder, PATIENCE};
use jwks_sync::{RefreshOutcome, SkipReason};
use serde_json::json;

/// Characters that must never reach a terminal or a log raw.
fn has_raw_hostile(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control()
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    })
}

#[test]
fn kids_keep_their_bytes_in_data_and_are_escaped_in_display() {
    let hostile = "k\u{202e}1\n\u{1b}[2J\u{2066}";
    let good = es(hostile);
    let skipped_kid = "s\u{202d}\r";
    let (source, builder) = source_and_builder(&[&es("plain")]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let cache = builder
        .on_refresh(move |e| seen.lock().expect("lock").push(e.outcome.clone()))
        .build()
        .expect("valid settings");
    cache.wait_ready(PATIENCE).expect("first fetch");
    let doc = json!({"keys": [
        good.jwk(),
        {"kty": "oct", "kid": skipped_kid, "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "x".repeat(200), "crv": "P-256", "x": "AA", "y": "AA"},
    ]});
    source.set_document(doc.to_string());
    cache.refresh_now().expect("refresh");

    // The data is exact.
    let set = cache.snapshot();
    assert!(set.get(hostile).is_some());
    let skipped = set.skipped();
    assert_eq!(skipped[0].kid.as_deref(), Some(skipped_kid));
    assert_eq!(skipped[0].reason, SkipReason::Symmetric);
    let status = cache.status();
    assert!(status
        .skipped
        .iter()
        .any(|s| s.kid.as_deref() == Some(skipped_kid)));

    // The text is escaped and short.
    for s in skipped {
        let line = s.to_string();
        assert!(!has_raw_hostile(&line), "{line:?}");
        assert!(line.chars().count() < 140, "{line}");
    }
    assert_eq!(
        skipped[0].to_string(),
        r#"entry 1 (kid "s\u{202d}\u{d}"): symmetric (oct) key"#
    );
    let events = events.lock().expect("lock");
    let updated = events
        .iter()
        .find(|o| matches!(o, RefreshOutcome::Updated { added, .. } if added.iter().any(|k| k == hostile)))
        .expect("an update adding the hostile kid, exactly");
    let line = updated.to_string();
    assert!(!has_raw_hostile(&line), "{line:?}");
    assert!(line.contains(r"k\u{202e}1\u{a}\u{1b}[2J\u{2066}"), "{line}");
}
