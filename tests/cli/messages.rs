//! Issue 12: the CLI speaks its own flags, and each message is checked
//! here as a user reads it (exact flag names, exit codes).

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jwks_sync::testing::{Fault, TestIdp, JWKS_PATH};
use serde_json::{json, Value};

use super::{common, idp_with_key, jwks, run, temp_dir, text, write};

/// stderr of a failed run, asserting its exit code and that it does not
/// name a library setting.
fn failure(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    for setting in [
        "danger_accept_plain_http",
        "add_root_certificate_pem",
        "pin_spki_sha256",
        "connect_timeout",
        "response_timeout",
        "min_refresh_interval",
        "use_built_in_roots",
    ] {
        assert!(
            !stderr.contains(setting),
            "{args:?} names {setting}: {stderr}"
        );
    }
    stderr
}

#[test]
fn messages_name_flags_not_library_settings() {
    let (idp, ca) = idp_with_key("flags");
    let url = idp.jwks_url();

    let plain = "http://127.0.0.1:9/jwks";
    let stderr = failure(&["inspect", plain], 64);
    assert!(stderr.contains("--insecure-plain-http"), "{stderr}");

    // Not trusted: the hint is the flag that adds a CA.
    let stderr = failure(&["inspect", &url], 2);
    assert!(stderr.contains("--ca-file"), "{stderr}");

    let stderr = failure(&["inspect", &url, "--pin", "not-base64!"], 64);
    assert!(stderr.contains("--pin"), "{stderr}");

    let stderr = failure(&["inspect", &url, "--connect-timeout", "0s"], 64);
    assert!(
        stderr.contains("--connect-timeout must be positive"),
        "{stderr}"
    );

    // A server that never answers: the hint names the timeout flag.
    idp.set_fault(JWKS_PATH, Fault::Hang(Duration::from_secs(10)));
    let stderr = failure(
        &[
            "inspect",
            &url,
            "--ca-file",
            &ca,
            "--response-timeout",
            "300ms",
        ],
        2,
    );
    assert!(stderr.contains("see --response-timeout"), "{stderr}");
    idp.clear_fault(JWKS_PATH);

    let stderr = failure(
        &[
            "inspect",
            &url,
            "--interval",
            "1m",
            "--min-refresh-interval",
            "10m",
        ],
        64,
    );
    assert!(
        stderr.contains("--min-refresh-interval") && stderr.contains("--interval"),
        "{stderr}"
    );
}

#[test]
fn a_missing_argument_is_named() {
    let stderr = failure(&["inspect"], 64);
    assert!(stderr.contains("required arguments"), "{stderr}");
    assert!(stderr.contains("<SOURCE>"), "{stderr}");
}

#[test]
fn issuer_discovery_and_an_explicit_plain_http_flag() {
    // A local IdP over plain http: refused without the loud flag.
    let idp = TestIdp::start_plain_http().expect("idp");
    idp.add_signing_key(common::es("plain-k1"));
    let issuer = idp.issuer();
    let stderr = failure(&["inspect", "--issuer", &issuer], 64);
    assert!(stderr.contains("--insecure-plain-http"), "{stderr}");
    let out = run(&["inspect", "--issuer", &issuer, "--insecure-plain-http"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("plain-k1") && stdout.contains("usable"),
        "{stdout}"
    );
    assert!(idp.requests(jwks_sync::testing::DISCOVERY_PATH) >= 1);

    // verify --issuer: keys by discovery, and `iss` checked against it.
    let token = idp.mint(&idp.claims("alice", "orders", 600)).expect("mint");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--issuer",
            &issuer,
            "--insecure-plain-http",
            "--aud",
            "orders",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let out = verify(&[&token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = verify(&["--iss", "https://someone.else", &token]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // Over https, trusting the IdP's CA.
    let (https_idp, ca) = idp_with_key("issuer-https");
    let out = run(&[
        "inspect",
        "--issuer",
        &https_idp.issuer(),
        "--ca-file",
        &ca,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["url"], json!(https_idp.jwks_url()));
    assert_eq!(report["keys"][0]["kid"], json!("k1"));

    // watch --issuer reaches the key set too.
    let lines = watch_lines(&["watch", "--issuer", &issuer, "--insecure-plain-http"]);
    assert!(
        lines
            .wait_for("added plain-k1", Duration::from_secs(10))
            .is_some(),
        "no update line"
    );
}

#[test]
fn inspect_fails_on_a_set_with_no_usable_key_and_json_kids_are_whole() {
    let dir = temp_dir("no-usable");
    let only_bad = write(
        &dir,
        "bad.json",
        &json!({"keys": [{"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"}]}).to_string(),
    );
    for args in [
        vec!["inspect", &only_bad],
        vec!["inspect", "--json", &only_bad],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("no usable key"), "{stderr}");
        // The entries are still listed, with their reasons.
        assert!(text(&out.stdout).contains("symmetric (oct) key"));
    }

    let long_kid = format!("kid-{}", "x".repeat(120));
    let doc = json!({"keys": [common::es(&long_kid).jwk()]});
    let file = write(&dir, "long.json", &doc.to_string());
    let out = run(&["inspect", "--json", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["keys"][0]["kid"], json!(long_kid));
    // The table may clip for the terminal.
    let out = run(&["inspect", &file]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains(&long_kid));
}

#[test]
fn other_schemes_are_errors_and_durations_compound() {
    let stderr = failure(&["inspect", "ftp://example.com/jwks.json"], 64);
    assert!(
        stderr.contains("unsupported URL scheme 'ftp://'"),
        "{stderr}"
    );
    let stderr = failure(
        &[
            "verify",
            "--jwks",
            "file:///etc/jwks.json",
            "--any-aud",
            "a.b.c",
        ],
        64,
    );
    assert!(stderr.contains("'file://'"), "{stderr}");

    let (idp, ca) = idp_with_key("compound");
    let out = run(&[
        "inspect",
        &idp.jwks_url(),
        "--ca-file",
        &ca,
        "--ignore-cache-headers",
        "--interval",
        "1m30s",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("lifetime: 1m30s"), "{stdout}");
}

#[test]
fn help_shows_defaults_and_verify_hides_refresh_flags() {
    let out = run(&["inspect", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("[default: both]"), "{help}");
    assert!(help.contains("--issuer") && help.contains("--insecure-plain-http"));

    let out = run(&["verify", "--help"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for flag in [
        "--strategy",
        "--interval",
        "--min-ttl",
        "--usage-threshold",
        "--min-refresh-interval",
        "--unknown-kid-cooldown",
        "--stale-while-error",
        "--backoff-base",
        "--no-background",
    ] {
        assert!(!help.contains(flag), "verify --help lists {flag}");
    }
    assert!(help.contains("--wait") && help.contains("--issuer"));
}

#[test]
fn an_audience_rejection_hints_at_the_flags() {
    let (idp, ca) = idp_with_key("aud-hint");
    let token = idp.mint(&idp.claims("alice", "orders", 600)).expect("mint");
    let url = idp.jwks_url();
    let stderr = failure(&["verify", "--jwks", &url, "--ca-file", &ca, &token], 1);
    assert!(
        stderr.contains("--aud") && stderr.contains("--any-aud"),
        "{stderr}"
    );
    let out = run(&[
        "verify",
        "--jwks",
        &url,
        "--ca-file",
        &ca,
        "--any-aud",
        &token,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// Needs the library's `wait_ready` to ride over transient failures (the
/// refresher retries a 503 after its `Retry-After`): branch h1.
#[test]
fn verify_waits_through_a_503_with_retry_after() {
    let (idp, ca) = idp_with_key("wait-503");
    let token = idp.mint(&idp.claims("alice", "orders", 600)).expect("mint");
    idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 503,
            retry_after: Some("1".to_owned()),
        },
    );
    let child = jwks()
        .args([
            "verify",
            "--jwks",
            &idp.jwks_url(),
            "--ca-file",
            &ca,
            "--aud",
            "orders",
            "--wait",
            "8s",
            &token,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        common::eventually(Duration::from_secs(8), || idp.requests(JWKS_PATH) >= 1),
        "the first request came"
    );
    idp.clear_fault(JWKS_PATH);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(idp.requests(JWKS_PATH) >= 2);
}

/// Needs the library's defaults derived from `interval` to follow it:
/// branch h1.
#[test]
fn watch_takes_a_short_interval_and_min_ttl() {
    let (idp, ca) = idp_with_key("short-interval");
    let mut lines = watch_lines(&[
        "watch",
        &idp.jwks_url(),
        "--ca-file",
        &ca,
        "--interval",
        "1s",
        "--min-ttl",
        "1s",
    ]);
    assert!(
        lines
            .wait_for("added k1", Duration::from_secs(10))
            .is_some(),
        "watch did not start: {:?}",
        lines.stderr()
    );
}

#[test]
fn watch_lists_skipped_entries_with_escaped_kids() {
    let (idp, ca) = idp_with_key("watch-skipped");
    let good = common::es("good");
    let doc = json!({"keys": [
        good.jwk(),
        {"kty": "oct", "kid": "evil\u{1b}[2J\"kid", "k": "c2VjcmV0"},
    ]});
    idp.set_jwks(doc.to_string());
    let mut lines = watch_lines(&["watch", &idp.jwks_url(), "--ca-file", &ca]);
    let skipped = lines.wait_for("skipped #1", Duration::from_secs(10));
    let skipped = skipped.unwrap_or_else(|| panic!("no skipped line: {:?}", lines.stderr()));
    assert!(
        skipped.contains(r#"kid "evil\u{1b}[2J\"kid": symmetric (oct) key"#),
        "{skipped}"
    );
    assert!(!skipped.contains('\u{1b}'));

    let lines = watch_lines(&["watch", "--json", &idp.jwks_url(), "--ca-file", &ca]);
    let line = lines
        .wait_for("skipped_entries", Duration::from_secs(10))
        .expect("a json line");
    let event: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(
        event["skipped_entries"],
        json!([{"index": 1, "kid": "evil\u{1b}[2J\"kid", "reason": "symmetric (oct) key"}])
    );
}

/// A running `jwks watch`, its stdout lines on a channel; killed on drop.
struct WatchLines {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

fn watch_lines(args: &[&str]) -> WatchLines {
    let mut child = jwks()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    WatchLines { child, lines }
}

impl WatchLines {
    fn wait_for(&self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// What the process wrote on stderr, if it has exited (for failures).
    fn stderr(&mut self) -> String {
        use std::io::Read as _;
        let mut text = String::new();
        if let (Ok(Some(_)), Some(stderr)) = (self.child.try_wait(), self.child.stderr.as_mut()) {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for WatchLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
