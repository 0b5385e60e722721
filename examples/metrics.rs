//! `/metrics` (Prometheus text) and `/healthz` for a JWKS cache, from a
//! blocking HTTP server: no async runtime anywhere.
//!
//! ```text
//! cargo run --example metrics --features metrics,serde -- \
//!     https://login.example.com/.well-known/jwks.json 127.0.0.1:9184
//! curl -s 127.0.0.1:9184/metrics   # jwks_lookups_total{source="login.example.com"} ...
//! curl -s 127.0.0.1:9184/healthz   # healthy | degraded: ... | failing: ... (503)
//! curl -s 127.0.0.1:9184/status    # Status as JSON
//! ```
//!
//! The Prometheus recorder comes from `metrics-exporter-prometheus` built
//! without default features, so without its tokio/hyper listener: this
//! program renders the text itself on each scrape. The cache's refresher
//! exports its counters to the recorder every `Builder::metrics_interval`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use jwks_sync::JwksCache;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tiny_http::{Header, Request, Response, Server};

/// Buckets for `jwks_fetch_duration_seconds`, so it renders as a
/// Prometheus histogram rather than a summary.
const FETCH_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide Prometheus recorder; call once, before or
/// after building caches.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("jwks_fetch_duration_seconds".to_owned()),
            FETCH_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))
}

/// The HTTP server, answering on its own thread until [`Running::stop`].
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting requests and joins the server thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `/metrics`, `/healthz` and `/status` for `cache` on `addr`
/// (port 0 picks a free one).
pub fn serve(cache: JwksCache, prometheus: PrometheusHandle, addr: &str) -> io::Result<Running> {
    let server = Arc::new(Server::http(addr).map_err(io::Error::other)?);
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| io::Error::other("not an IP listener"))?;
    let thread = {
        let server = Arc::clone(&server);
        std::thread::Builder::new()
            .name("metrics-http".to_owned())
            .spawn(move || {
                for request in server.incoming_requests() {
                    respond(&cache, &prometheus, request);
                }
            })?
    };
    Ok(Running {
        addr,
        server,
        thread: Some(thread),
    })
}

fn respond(cache: &JwksCache, prometheus: &PrometheusHandle, request: Request) {
    let path = request.url().split('?').next().unwrap_or("");
    let response = match path {
        "/metrics" => {
            // Without the exporter's listener, upkeep (draining histogram
            // samples) is ours to run: once per scrape is plenty.
            prometheus.run_upkeep();
            text(200, prometheus.render(), "text/plain; version=0.0.4")
        }
        "/healthz" => {
            let health = cache.status().health();
            text(health.http_status(), health.to_string(), "text/plain")
        }
        "/status" => match serde_json::to_string(&cache.status()) {
            Ok(json) => text(200, json, "application/json"),
            Err(e) => text(500, e.to_string(), "text/plain"),
        },
        _ => text(404, "not found".to_owned(), "text/plain"),
    };
    // The client may have gone away; nothing to do about it.
    let _ = request.respond(response);
}

fn text(code: u16, body: String, content_type: &str) -> Response<io::Cursor<Vec<u8>>> {
    let response = Response::from_string(body).with_status_code(code);
    match Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        Ok(header) => response.with_header(header),
        Err(()) => response,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        return Err("usage: metrics <jwks-url> [listen address, default 127.0.0.1:9184]".into());
    };
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9184".to_owned());
    let prometheus = install_recorder()?;
    let cache = JwksCache::builder(url).build()?;
    if let Err(e) = cache.wait_ready(Duration::from_secs(10)) {
        // Keep serving: /healthz says "failing: not_ready" until it loads.
        eprintln!("key set not loaded yet: {e}");
    }
    let running = serve(cache, prometheus, &listen)?;
    eprintln!(
        "serving http://{}/metrics and /healthz; Ctrl-C to stop",
        running.addr
    );
    if let Some(thread) = running.thread {
        let _ = thread.join();
    }
    Ok(())
}
