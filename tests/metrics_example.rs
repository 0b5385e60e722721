//! `examples/metrics.rs`, started for real: a loopback HTTPS identity
//! provider, a cache over it, the example's blocking server; scraped over
//! TCP and the Prometheus exposition parsed.

#[path = "../examples/metrics.rs"]
#[allow(dead_code)]
mod example;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jwks_sync::testing::{Fault, KeyAlg, TestIdp, TestKey, JWKS_PATH};
use jwks_sync::JwksCache;

const PATIENCE: Duration = Duration::from_secs(10);

/// `GET path` over HTTP/1.0; returns (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (code, body.to_owned())
}

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format (0.0.4): `# HELP` / `# TYPE`
/// comments and samples; panics on a line it cannot read.
fn parse(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let labels = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").expect("label pair");
                        (k.to_owned(), v.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name {name:?}"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[test]
fn the_example_serves_metrics_and_healthz() {
    let idp = TestIdp::start().expect("test idp");
    let key = TestKey::generate(KeyAlg::Es256, "k1").expect("key");
    idp.set_keys(&[&key]);
    let prometheus = example::install_recorder().expect("recorder");
    let cache = JwksCache::builder(idp.jwks_url())
        .add_root_certificate_pem(idp.ca_pem())
        .name("example-idp")
        .metrics_interval(Duration::from_millis(10))
        .build()
        .expect("cache");
    cache.wait_ready(PATIENCE).expect("first set");
    for _ in 0..3 {
        cache.with_key("k1", |_| ()).expect("hit");
    }
    let running = example::serve(cache.clone(), prometheus, "127.0.0.1:0").expect("serve");
    let addr = running.addr;

    assert_eq!(get(addr, "/healthz"), (200, "healthy".to_owned()));

    // The refresher exports every 10 ms; scrape until the hits show.
    let deadline = Instant::now() + PATIENCE;
    let (samples, types) = loop {
        let (code, body) = get(addr, "/metrics");
        assert_eq!(code, 200);
        let (samples, types) = parse(&body);
        let hits = value(
            &samples,
            "jwks_lookup_hits_total",
            &[("source", "example-idp")],
        );
        if hits == Some(3.0) || Instant::now() > deadline {
            break (samples, types);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let source = [("source", "example-idp")];
    assert_eq!(
        value(&samples, "jwks_lookup_hits_total", &source),
        Some(3.0)
    );
    assert_eq!(value(&samples, "jwks_lookups_total", &source), Some(3.0));
    assert_eq!(
        value(
            &samples,
            "jwks_fetches_total",
            &[
                ("source", "example-idp"),
                ("cause", "initial"),
                ("outcome", "ok")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(value(&samples, "jwks_keys", &source), Some(1.0));
    assert_eq!(value(&samples, "jwks_health", &source), Some(0.0));
    assert_eq!(
        value(&samples, "jwks_fetch_duration_seconds_count", &source),
        Some(1.0)
    );
    assert_eq!(
        types.get("jwks_lookups_total").map(String::as_str),
        Some("counter")
    );
    assert_eq!(types.get("jwks_keys").map(String::as_str), Some("gauge"));
    assert_eq!(
        types.get("jwks_fetch_duration_seconds").map(String::as_str),
        Some("histogram")
    );
    for sample in &samples {
        assert!(sample.name.starts_with("jwks_"), "{sample:?}");
        assert_eq!(
            sample.labels.get("source").map(String::as_str),
            Some("example-idp")
        );
    }

    // An outage: the failing refresh leaves the set in service, degraded.
    idp.set_fault(
        JWKS_PATH,
        Fault::Status {
            code: 500,
            retry_after: None,
        },
    );
    assert!(cache.refresh_now().is_err());
    let (code, body) = get(addr, "/healthz");
    assert_eq!(code, 200, "degraded still serves");
    assert!(body.starts_with("degraded: retrying since "), "{body}");
    let (code, json) = get(addr, "/status");
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&json).expect("status json");
    assert_eq!(status["name"], "example-idp");
    assert_eq!(status["health"]["status"], "degraded");
    assert_eq!(status["health"]["reason"], "retrying");
    assert_eq!(status["consecutive_failures"], 1);
    assert_eq!(get(addr, "/nope").0, 404);
    running.stop();
}
