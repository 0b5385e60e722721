//! The `jwks` binary, run as a user would, against files and the test IdP.

mod common;
#[path = "cli/messages.rs"]
mod messages;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jwks_sync::testing::{KeyAlg, TestIdp, TestKey};
use serde_json::{json, Value};

fn jwks() -> Command {
    Command::new(env!("CARGO_BIN_EXE_jwks"))
}

fn run(args: &[&str]) -> Output {
    jwks().args(args).output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jwks-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write(dir: &std::path::Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.to_string_lossy().into_owned()
}

/// An IdP signing with an ES256 key `k1`, and its CA written to a file.
fn idp_with_key(name: &str) -> (TestIdp, String) {
    let idp = TestIdp::start().expect("idp");
    idp.add_signing_key(common::es("k1"));
    let ca = write(&temp_dir(name), "ca.pem", idp.ca_pem());
    (idp, ca)
}

#[test]
fn inspect_lists_every_key_with_its_verdict() {
    let good_ec = common::es("good-ec");
    let good_ed = common::key(KeyAlg::EdDsa, "good-ed");
    let mut enc = common::es("enc-key").jwk().clone();
    enc["use"] = json!("enc");
    let doc = json!({"keys": [
        good_ec.jwk(),
        good_ed.jwk(),
        {"kty": "RSA", "kid": "small-rsa", "alg": "RS256", "n": "AQAB".repeat(32), "e": "AQAB"},
        {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"},
        enc,
        {"kty": "XYZ", "kid": "odd-kty"},
    ]});
    let dir = temp_dir("inspect");
    let file = write(&dir, "jwks.json", &doc.to_string());
    let out = run(&["inspect", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let row = |kid: &str| {
        stdout
            .lines()
            .find(|l| l.contains(kid))
            .unwrap_or_else(|| panic!("no row for {kid} in\n{stdout}"))
            .to_owned()
    };
    assert!(row("good-ec").contains("usable") && row("good-ec").contains("P-256"));
    assert!(row("good-ed").contains("usable") && row("good-ed").contains("Ed25519"));
    assert!(
        row("small-rsa").contains("skipped: rsa modulus 761 bits < 2048"),
        "{}",
        row("small-rsa")
    );
    assert!(row("small-rsa").contains("761 bits"));
    assert!(row("shared-secret").contains("skipped: symmetric (oct) key"));
    assert!(row("enc-key").contains("skipped: use is not \"sig\""));
    assert!(row("odd-kty").contains("skipped: unsupported kty"));
    assert!(stdout.contains("2 usable, 4 skipped"), "{stdout}");

    // The same through --json, and a set with no usable key still lists reasons.
    let only_bad = write(
        &dir,
        "bad.json",
        &json!({"keys": [doc["keys"][3]]}).to_string(),
    );
    let out = run(&["inspect", "--json", &only_bad]);
    // No usable key: exit 2, as verify would reject the set.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["keys"][0]["usable"], json!(false));
    assert_eq!(
        report["keys"][0]["skip_reason"],
        json!("symmetric (oct) key")
    );
}

#[test]
fn inspect_url_shows_cache_headers_and_lifetime() {
    let (idp, ca) = idp_with_key("inspect-url");
    idp.set_max_age(300);
    idp.set_header(jwks_sync::testing::JWKS_PATH, "ETag", "\"v7\"");
    let out = run(&["inspect", &idp.jwks_url(), "--ca-file", &ca]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("cache-control: max-age=300"), "{stdout}");
    assert!(stdout.contains("etag: \"v7\""), "{stdout}");
    assert!(
        stdout.contains("lifetime: 5m (headers grant 5m"),
        "{stdout}"
    );
    assert!(
        stdout.contains("k1") && stdout.contains("usable"),
        "{stdout}"
    );
    // Without the CA the server is not trusted: keys could not be loaded.
    let out = run(&["inspect", &idp.jwks_url()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn verify_accepts_a_good_token_and_rejects_a_forged_one() {
    let (idp, ca) = idp_with_key("verify");
    let token = idp.mint(&idp.claims("alice", "orders", 600)).expect("mint");
    let iss = idp.issuer();
    let url = idp.jwks_url();
    let base = [
        "verify",
        "--jwks",
        &url,
        "--ca-file",
        &ca,
        "--iss",
        &iss,
        "--aud",
        "orders",
    ];

    let out = run(&[&base[..], &[token.as_str()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(printed["header"]["kid"], json!("k1"));
    assert_eq!(printed["header"]["alg"], json!("ES256"));
    assert_eq!(printed["claims"]["sub"], json!("alice"));

    // Same kid, another key: a forgery.
    let forger = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    let forged = forger
        .sign(&idp.claims("mallory", "orders", 600))
        .expect("sign");
    let out = run(&[&base[..], &[forged.as_str()]].concat());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("token rejected") && stderr.contains("signature"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // Wrong audience, token from stdin as a Bearer header value.
    let mut child = jwks()
        .args([
            "verify",
            "--jwks",
            &url,
            "--ca-file",
            &ca,
            "--aud",
            "billing",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "Bearer {token}").expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("aud"), "{}", text(&out.stderr));
}

#[test]
fn verify_exit_codes_for_missing_keys_and_bad_usage() {
    let (idp, _ca) = idp_with_key("verify-codes");
    let token = idp.mint(&idp.claims("alice", "orders", 600)).expect("mint");
    let out = run(&[
        "verify",
        "--jwks",
        "/nonexistent/jwks.json",
        "--any-aud",
        &token,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("jwks: could not load keys"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = run(&["verify", "--jwks", "x.json", "--leeway", "soon", &token]);
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );

    let out = run(&["verify", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("64  usage"));
}

#[test]
fn watch_prints_a_rotation_within_one_refresh() {
    let (idp, ca) = idp_with_key("watch");
    idp.set_max_age(1);
    let mut child = jwks()
        .args([
            "watch",
            &idp.jwks_url(),
            "--ca-file",
            &ca,
            "--min-ttl",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, limit: Duration| -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };
    let first = wait_for("added k1", Duration::from_secs(10));
    let rotated_at = Instant::now();
    idp.rotate_replace(common::es("k2"));
    // One refresh: the 1 s lifetime, its jitter, and the fetch itself.
    let rotation = wait_for("added k2", Duration::from_secs(3));
    let took = rotated_at.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.is_some(), "the initial fetch was printed");
    let line = rotation.unwrap_or_else(|| panic!("no rotation line within 3 s"));
    assert!(line.contains("removed k1"), "{line}");
    assert!(took <= Duration::from_millis(2500), "{took:?}");
}

#[test]
fn inspect_escapes_hostile_kids_in_its_table() {
    let doc = json!({"keys": [
        common::es("k\u{202e}1\u{1b}[2J").jwk(),
        {"kty": "oct", "kid": "s\u{2066}\n", "k": "c2VjcmV0"},
    ]});
    let dir = temp_dir("inspect-hostile");
    let file = write(&dir, "jwks.json", &doc.to_string());
    let out = run(&["inspect", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(r"k\u{202e}1\u{1b}[2J"), "{stdout}");
    assert!(stdout.contains(r"s\u{2066}\u{a}"), "{stdout}");
    assert!(
        !stdout
            .chars()
            .any(|c| matches!(c, '\u{1b}' | '\u{202e}' | '\u{2066}')),
        "{stdout:?}"
    );
}
