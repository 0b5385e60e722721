//! Unit tests of the transport's pure helpers.

use super::*;

#[test]
fn json_media_types() {
    for ok in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/jwk-set+json",
        "application/vnd.foo+json ; x=y",
    ] {
        assert!(is_json_media_type(ok), "{ok}");
    }
    for bad in [
        "text/html",
        "application/+json",
        "text/json",
        "application/jsonx",
        "",
        "json",
    ] {
        assert!(!is_json_media_type(bad), "{bad}");
    }
}
