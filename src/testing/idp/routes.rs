//! The test IdP's routing table and what it answers: documents, headers,
//! faults, `304`s, and the request records. Decided under one lock, so the
//! counts a test reads always match what was served.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{Fault, RecordedRequest, LOG_CAPACITY};

/// What a path serves.
#[derive(Debug, Clone)]
pub(super) struct Route {
    pub(super) body: Vec<u8>,
    pub(super) content_type: String,
    /// Extra headers; names compared case-insensitively.
    pub(super) headers: Vec<(String, String)>,
    pub(super) fault: Option<Fault>,
}

impl Route {
    pub(super) fn json(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            content_type: "application/json".to_owned(),
            headers: Vec::new(),
            fault: None,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) routes: HashMap<String, Route>,
    pub(super) requests: HashMap<String, u64>,
    pub(super) total: u64,
    pub(super) log: VecDeque<RecordedRequest>,
    pub(super) body_bytes: HashMap<String, u64>,
}

/// State shared by the handle, the accept thread and the connections.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) stopping: AtomicBool,
    /// Paired with `stop_signal`: hangs and drips sleep on it.
    pub(super) stop_lock: Mutex<()>,
    pub(super) stop_signal: Condvar,
    pub(super) connections: AtomicU64,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        // Relaxed: a hint polled by loops that are also woken by the
        // condvar and by socket shutdown; nothing else rides on it.
        self.stopping.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`; returns early (true) when the server stops.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stop_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (_guard, _) = self
            .stop_signal
            .wait_timeout_while(guard, d, |_| !self.stopping())
            .unwrap_or_else(|e| e.into_inner());
        self.stopping()
    }
}

/// What the server sends for one request, decided under the state lock.
pub(super) enum Plan {
    /// A complete response.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Headers, then the body one byte per interval.
    Drip {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        interval: Duration,
    },
    /// Headers with a longer `Content-Length`, the body, then close.
    Truncated {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `bytes` of padded JSON, streamed.
    Oversize { bytes: usize, declared: bool },
    /// Say nothing for this long.
    Hang(Duration),
    /// TCP reset.
    Reset,
}

impl Shared {
    /// Records `request` and decides the answer.
    pub(super) fn plan(&self, request: RecordedRequest) -> Plan {
        let mut state = self.state();
        let path = request.path().to_owned();
        *state.requests.entry(path.clone()).or_insert(0) += 1;
        state.total += 1;
        if state.log.len() >= LOG_CAPACITY {
            state.log.pop_front();
        }
        state.log.push_back(request.clone());
        let Some(route) = state.routes.get(&path) else {
            return text(404, "not found");
        };
        if request.method != "GET" && request.method != "HEAD" {
            return text(405, "method not allowed");
        }
        let mut headers = vec![("Content-Type".to_owned(), route.content_type.clone())];
        if route.header("date").is_none() {
            headers.push((
                "Date".to_owned(),
                super::super::http_date(SystemTime::now()),
            ));
        }
        headers.extend(route.headers.iter().cloned());
        match route.fault.clone() {
            Some(Fault::Status { code, retry_after }) => {
                let mut plan = text(code, "injected failure");
                if let (Some(ra), Plan::Respond { headers, .. }) = (retry_after, &mut plan) {
                    headers.push(("Retry-After".to_owned(), ra));
                }
                plan
            }
            Some(Fault::Hang(d)) => Plan::Hang(d),
            Some(Fault::Reset) => Plan::Reset,
            Some(Fault::Drip(interval)) => Plan::Drip {
                headers,
                body: route.body.clone(),
                interval,
            },
            Some(Fault::TruncatedBody) => Plan::Truncated {
                headers,
                body: route.body.clone(),
            },
            Some(Fault::Oversize { bytes, declared }) => Plan::Oversize { bytes, declared },
            Some(Fault::ContentType(ct)) => {
                headers[0].1 = ct;
                Plan::Respond {
                    status: 200,
                    headers,
                    body: route.body.clone(),
                }
            }
            Some(Fault::Redirect { status, location }) => Plan::Respond {
                status,
                headers: vec![
                    ("Location".to_owned(), location),
                    ("Content-Type".to_owned(), "text/plain".to_owned()),
                ],
                body: b"moved".to_vec(),
            },
            None if not_modified(route, &request) => {
                headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                Plan::Respond {
                    status: 304,
                    headers,
                    body: Vec::new(),
                }
            }
            None => Plan::Respond {
                status: 200,
                headers,
                body: route.body.clone(),
            },
        }
    }

    pub(super) fn count_body_bytes(&self, target: &str, n: usize) {
        let path = target.split('?').next().unwrap_or("").to_owned();
        let mut state = self.state();
        let total = state.body_bytes.entry(path).or_insert(0);
        *total = total.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }

    pub(super) fn count_connection(&self) {
        // Relaxed: statistics only.
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn is_stopping(&self) -> bool {
        self.stopping()
    }

    pub(super) fn pause(&self, d: Duration) -> bool {
        self.sleep(d)
    }
}

fn text(status: u16, body: &str) -> Plan {
    Plan::Respond {
        status,
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body: body.as_bytes().to_vec(),
    }
}

/// RFC 9110 §13.1.2 and §13.1.3: weak comparison for `If-None-Match`,
/// which, when present, overrides `If-Modified-Since`.
fn not_modified(route: &Route, request: &RecordedRequest) -> bool {
    let weak = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    if let Some(inm) = request.header("if-none-match") {
        let Some(etag) = route.header("etag") else {
            return false;
        };
        return inm
            .split(',')
            .any(|t| t.trim() == "*" || weak(t) == weak(etag));
    }
    match (
        route.header("last-modified"),
        request.header("if-modified-since"),
    ) {
        (Some(lm), Some(ims)) => match (
            super::super::parse_http_date(lm),
            super::super::parse_http_date(ims),
        ) {
            (Some(lm), Some(ims)) => lm <= ims,
            _ => false,
        },
        _ => false,
    }
}
