//! An in-memory, scriptable, counting [`Fetch`] source.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{FetchError, FetchErrorKind};
use crate::fetch::{Fetch, FetchRequest, FetchResponse};

#[derive(Default)]
struct State {
    document: String,
    fail: Option<FetchError>,
    panic: bool,
    delay: Duration,
    max_age: Option<Duration>,
    fetches: u64,
    fetch_times: Vec<Instant>,
}

/// A key-set source held in memory: swap the document, make it fail, slow
/// or panic, and count how many fetches it served. Clones share state, so
/// keep one and hand another to [`JwksCache::from_fetcher`](crate::JwksCache::from_fetcher).
#[derive(Clone, Default)]
pub struct MemorySource {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySource")
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl MemorySource {
    /// A source serving `document`.
    pub fn new(document: impl Into<String>) -> Self {
        let source = Self::default();
        source.set_document(document);
        source
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves `document` from the next fetch on.
    pub fn set_document(&self, document: impl Into<String>) {
        self.lock().document = document.into();
    }

    /// Fails every fetch with `error` until [`heal`](Self::heal).
    pub fn fail_with(&self, error: FetchError) {
        self.lock().fail = Some(error);
    }

    /// Fails every fetch with a transient connection error.
    pub fn fail(&self) {
        self.fail_with(FetchError::new(
            FetchErrorKind::Connect,
            "memory source is down",
        ));
    }

    /// Stops failing and panicking.
    pub fn heal(&self) {
        let mut s = self.lock();
        s.fail = None;
        s.panic = false;
    }

    /// Panics inside every fetch until [`heal`](Self::heal).
    pub fn panic_on_fetch(&self) {
        self.lock().panic = true;
    }

    /// Sleeps this long inside every fetch (a slow identity provider).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Reports this lifetime hint with each document.
    pub fn set_max_age(&self, max_age: Option<Duration>) {
        self.lock().max_age = max_age;
    }

    /// Fetches served so far (failed and panicked ones included).
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }

    /// When each fetch started (the first 10 000).
    pub fn fetch_times(&self) -> Vec<Instant> {
        self.lock().fetch_times.clone()
    }
}

impl Fetch for MemorySource {
    fn fetch(&mut self, _request: &FetchRequest) -> Result<FetchResponse, FetchError> {
        let (delay, panic) = {
            let mut s = self.lock();
            s.fetches += 1;
            if s.fetch_times.len() < 10_000 {
                s.fetch_times.push(Instant::now());
            }
            (s.delay, s.panic)
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if panic {
            panic!("memory source told to panic");
        }
        let s = self.lock();
        if let Some(e) = &s.fail {
            return Err(e.clone());
        }
        let response = FetchResponse::document(s.document.clone().into_bytes());
        Ok(match s.max_age {
            Some(age) => response.with_max_age(age),
            None => response,
        })
    }

    fn describe(&self) -> String {
        "memory source".to_owned()
    }
}

/// A ready cache over one ES256 key published as `k1`, for examples.
#[doc(hidden)]
pub fn doc_cache() -> crate::JwksCache {
    let key = super::TestKey::generate(super::KeyAlg::Es256, "k1").expect("key generation");
    let cache = crate::JwksCache::from_fetcher(MemorySource::new(super::jwks_json(&[&key])))
        .build()
        .expect("valid builder");
    cache
        .wait_ready(Duration::from_secs(10))
        .expect("memory source loads");
    cache
}
