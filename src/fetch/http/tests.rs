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

#[test]
fn targets_parse_and_join() {
    let t = Target::parse("https://IdP.example:8443/a/b/jwks?x=1").expect("valid");
    assert_eq!(t.host(), "idp.example");
    assert_eq!(t.to_string(), "https://idp.example:8443/a/b/jwks");
    assert_eq!(
        t.join("/c").expect("join").as_str(),
        "https://IdP.example:8443/c"
    );
    assert_eq!(
        t.join("c?y").expect("join").as_str(),
        "https://IdP.example:8443/a/b/c?y"
    );
    assert_eq!(t.join("//other/x").expect("join").host(), "other");
    assert!(!t.join("HTTP://h/x").expect("join").https);
    assert!(Target::parse("https://user:pw@h/x").is_err());
    assert!(Target::parse("ftp://h/x").is_err());
    assert!(Target::parse("https://h/x#frag").is_err());
    assert!(Target::parse("/relative").is_err());
    let v6 = Target::parse("https://[::1]:9/x").expect("valid");
    assert!(v6.is_loopback());
    assert_eq!(v6.to_string(), "https://[::1]:9/x");
    assert!(Target::parse("http://localhost/")
        .expect("valid")
        .is_loopback());
    assert!(!Target::parse("http://localhost.example/")
        .expect("valid")
        .is_loopback());
    let a = Target::parse("https://h/x").expect("valid");
    assert!(a.same_origin(&Target::parse("https://H:443/y").expect("valid")));
    assert!(!a.same_origin(&Target::parse("https://h:444/y").expect("valid")));
}
