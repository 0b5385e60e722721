//! Every knob, validated once in [`Builder::build`] (`builder/validate.rs`).
//! `builder/http.rs` holds the HTTP knobs and turns the source into a
//! fetcher; `builder/observe.rs` the name and metrics knobs;
//! `builder/inspect.rs` is the one-shot fetch for tools
//! ([`Builder::inspect`]).

mod http;
#[cfg(feature = "http")]
mod inspect;
mod observe;
mod validate;

#[cfg(feature = "http")]
pub use inspect::Inspection;

use std::time::Duration;

use crate::cache::JwksCache;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::event::RefreshEvent;
use crate::fetch::{Fetch, HttpOptions};
use crate::keyset::SetLimits;
use crate::policy::{PolicyConfig, RefreshStrategy};
use crate::settings::Settings;

/// Configures and starts a [`JwksCache`].
///
/// Setters take and return `self`; [`build`](Self::build) checks the whole
/// configuration and starts the refresher thread without blocking on the
/// first fetch (see [`JwksCache::wait_ready`]).
///
/// The HTTP setters (from [`connect_timeout`](Self::connect_timeout) on)
/// apply to the HTTPS sources of [`JwksCache::builder`] and
/// [`JwksCache::from_issuer`]; with [`JwksCache::from_fetcher`] they are a
/// configuration error.
///
/// Every `Duration` setting must be at most 100 years; `build` rejects a
/// longer one (and a zero where it makes no sense) with an
/// [`Error::Config`] naming the setting. A default that depends on another
/// setting follows it (`interval(1s)` lowers the default
/// `min_refresh_interval` to 1 s); only settings you made conflict with
/// each other are rejected.
#[must_use = "a Builder does nothing until build() is called"]
pub struct Builder {
    source: Source,
    http: HttpOptions,
    policy: PolicyConfig,
    limits: SetLimits,
    negative_ttl: Duration,
    expired_wait: Duration,
    refresh_timeout: Duration,
    clock: Box<dyn Clock>,
    thread_name: String,
    seed: Option<u64>,
    on_refresh: Option<EventHook>,
    name: Option<String>,
    metrics_interval: Duration,
    fleet: Option<crate::fleet::Fleet>,
    /// The registry whose defaults were applied (`Registry::source`).
    defaults_of: Option<u64>,
    /// Schedule knobs set explicitly; the others are defaults that may follow
    /// the knobs they depend on (see `resolve_defaults`).
    explicit: Vec<&'static str>,
}

pub(crate) use crate::settings::EventHook;

/// Where the documents come from.
pub(crate) enum Source {
    /// `JwksCache::from_fetcher`.
    Custom(Box<dyn Fetch>),
    /// `JwksCache::builder(url)`.
    #[cfg(feature = "http")]
    Url(String),
    /// `JwksCache::from_issuer(issuer)`.
    #[cfg(feature = "http")]
    Issuer(String),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Custom(fetcher) => fetcher.describe(),
            #[cfg(feature = "http")]
            Source::Url(url) => format!("url {url}"),
            #[cfg(feature = "http")]
            Source::Issuer(issuer) => format!("issuer {issuer}"),
        }
    }
}

impl Builder {
    pub(crate) fn new(fetcher: Box<dyn Fetch>) -> Self {
        Self::from_source(Source::Custom(fetcher))
    }

    pub(crate) fn from_source(source: Source) -> Self {
        Self {
            source,
            http: HttpOptions::default(),
            policy: PolicyConfig {
                strategy: RefreshStrategy::Both,
                interval: Duration::from_secs(20 * 60),
                usage_threshold: 1000,
                background: Some(0.8),
                jitter: true,
                min_refresh_interval: Duration::from_secs(30),
                unknown_kid_cooldown: Duration::from_secs(30),
                stale_while_error: Duration::from_secs(24 * 3600),
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(300),
                use_cache_headers: true,
                min_ttl: Duration::from_secs(60),
                max_ttl: Duration::from_secs(24 * 3600),
            },
            limits: SetLimits::DEFAULT,
            negative_ttl: Duration::from_secs(300),
            expired_wait: Duration::from_secs(5),
            refresh_timeout: Duration::from_secs(30),
            clock: Box::new(SystemClock),
            thread_name: "jwks-refresher".to_owned(),
            seed: None,
            on_refresh: None,
            name: None,
            metrics_interval: Duration::from_secs(5),
            fleet: None,
            defaults_of: None,
            explicit: Vec::new(),
        }
    }

    /// Shares fetches with the other instances of a fleet through a
    /// snapshot store (README, "Fleets"): a warm start from the stored
    /// snapshot, and (Redis) one fetch from the origin per refresh for the
    /// whole fleet. Every snapshot is checked before use.
    ///
    /// Defaults to none: every instance fetches for itself.
    pub fn fleet(mut self, fleet: crate::fleet::Fleet) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Records that the schedule knob `name` was set by the caller.
    fn touch(&mut self, name: &'static str) -> &mut Self {
        if !self.explicit.contains(&name) {
            self.explicit.push(name);
        }
        self
    }

    /// What makes a set due: its lifetime, a number of lookups, or both.
    ///
    /// Defaults to [`RefreshStrategy::Both`].
    pub fn strategy(mut self, strategy: RefreshStrategy) -> Self {
        self.policy.strategy = strategy;
        self
    }

    /// The lifetime of a set when the source gives none (or
    /// [`use_cache_headers`](Self::use_cache_headers) is off).
    ///
    /// Defaults to 20 minutes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.touch("interval").policy.interval = interval;
        self
    }

    /// Successful lookups after which a set is due (usage strategy).
    /// Counted per thread and summed in batches, so the trigger may fire up
    /// to 64 lookups per active thread late.
    ///
    /// Defaults to 1000.
    pub fn usage_threshold(mut self, lookups: u64) -> Self {
        self.policy.usage_threshold = lookups;
        self
    }

    /// Refresh in the background before the set is due, at
    /// [`background_threshold`](Self::background_threshold) of its lifetime
    /// or usage; readers never wait. When off, the first lookup that finds
    /// the set due asks for the refresh and waits for it (up to
    /// [`expired_wait`](Self::expired_wait)); one fetch serves every waiter.
    ///
    /// Defaults to on.
    pub fn background_refresh(mut self, on: bool) -> Self {
        self.policy.background = on.then_some(self.policy.background.unwrap_or(0.8));
        self
    }

    /// The share θ of the lifetime (and of the usage threshold) at which the
    /// background refresh fires, in `(0, 1)`; turns background refresh on.
    /// A random delay of up to `(1 - θ) / 2` of the lifetime is added so a
    /// fleet does not refresh in step (see [`jitter`](Self::jitter)).
    ///
    /// Defaults to 0.8.
    pub fn background_threshold(mut self, theta: f64) -> Self {
        self.policy.background = Some(theta);
        self
    }

    /// Randomise background refresh times and backoff delays (full jitter).
    /// Turn off only for deterministic tests.
    ///
    /// Defaults to on.
    pub fn jitter(mut self, on: bool) -> Self {
        self.policy.jitter = on;
        self
    }

    /// The least time between two fetches triggered by usage (or, with
    /// background refresh off, by lookups finding the set due): a flood of
    /// lookups cannot turn into a flood of fetches. Must not exceed
    /// [`interval`](Self::interval).
    ///
    /// Defaults to 30 seconds, or the interval if that is shorter.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.touch("min_refresh_interval")
            .policy
            .min_refresh_interval = interval;
        self
    }

    /// The re-fetch guard: an unknown kid triggers a refresh only if no
    /// fetch started within this window. Misses cost the identity provider
    /// at most one fetch per window, whatever the traffic.
    ///
    /// Defaults to 30 seconds.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.policy.unknown_kid_cooldown = cooldown;
        self
    }

    /// How long a kid that a refresh did not bring stays in the negative
    /// cache (64 kids at most, oldest evicted first); kids there never
    /// trigger a refresh.
    ///
    /// Defaults to 5 minutes.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How long past its lifetime a set is still served while refreshes
    /// fail; after that lookups fail closed with [`Error::Expired`].
    ///
    /// Defaults to 24 hours.
    pub fn stale_while_error(mut self, grace: Duration) -> Self {
        self.policy.stale_while_error = grace;
        self
    }

    /// The first retry delay ceiling after a failure; it doubles with each
    /// consecutive failure up to [`backoff_max`](Self::backoff_max), and the
    /// actual delay is uniform below it (full jitter). Must be positive and
    /// at most [`backoff_max`](Self::backoff_max).
    ///
    /// Defaults to 1 second, or `backoff_max` if that is shorter.
    pub fn backoff_base(mut self, base: Duration) -> Self {
        self.touch("backoff_base").policy.backoff_base = base;
        self
    }

    /// The longest retry delay; also the delay after non-transient failures
    /// (4xx, TLS, malformed documents) and the cap on `Retry-After`.
    ///
    /// Defaults to 5 minutes, or `backoff_base` if that is longer.
    pub fn backoff_max(mut self, max: Duration) -> Self {
        self.touch("backoff_max").policy.backoff_max = max;
        self
    }

    /// Background refresh off: how long a lookup that finds the set due
    /// waits for the refresh before it is served the current set anyway.
    ///
    /// Defaults to 5 seconds.
    pub fn expired_wait(mut self, wait: Duration) -> Self {
        self.expired_wait = wait;
        self
    }

    /// How long [`JwksCache::refresh_now`] waits for its fetch. Must be
    /// positive.
    ///
    /// Defaults to 30 seconds.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout;
        self
    }

    /// Take the lifetime from the source's cache headers (clamped to
    /// [`min_ttl`](Self::min_ttl)..[`max_ttl`](Self::max_ttl)) instead of
    /// [`interval`](Self::interval) when they give one.
    ///
    /// Defaults to on.
    pub fn use_cache_headers(mut self, on: bool) -> Self {
        self.policy.use_cache_headers = on;
        self
    }

    /// The shortest lifetime cache headers may grant (`no-cache` and
    /// `max-age=0` land here). Must be positive and at most
    /// [`max_ttl`](Self::max_ttl).
    ///
    /// Defaults to 1 minute, or `max_ttl` if that is shorter.
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.touch("min_ttl").policy.min_ttl = ttl;
        self
    }

    /// The longest lifetime cache headers may grant.
    ///
    /// Defaults to 24 hours, or `min_ttl` if that is longer.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.touch("max_ttl").policy.max_ttl = ttl;
        self
    }

    /// The byte cap on a document; a longer one fails the refresh.
    ///
    /// Defaults to 256 KiB.
    pub fn max_document_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_bytes = bytes;
        self
    }

    /// The most entries a document may have: a longer one is rejected whole
    /// ([`KeySetError::TooManyKeys`](crate::KeySetError::TooManyKeys)), the
    /// refresh fails and the current set stays in service.
    ///
    /// Defaults to 100.
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.limits.max_keys = keys;
        self
    }

    /// Entries with a longer `kid` are skipped, and a lookup of a longer
    /// `kid` (every entry point: `with_key`, `get`, `*_or_wait`, verify) is
    /// an immediate miss, before hashing: it never asks for a fetch and never
    /// enters the negative cache.
    ///
    /// Defaults to 256 bytes.
    pub fn max_kid_len(mut self, bytes: usize) -> Self {
        self.limits.key.max_kid_len = bytes;
        self
    }

    /// The clock the schedule and the deadlines read. With a clock that
    /// moves by jumps (an `Arc<ManualClock>`, see [`Clock::on_advance`]) the
    /// refresher wakes on every jump and never sleeps on a real-time timer,
    /// so tests drive the schedule without sleeping; with any other clock it
    /// sleeps in real time until its next deadline.
    ///
    /// Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.touch("clock").clock = Box::new(clock);
        self
    }

    /// The refresher thread's name.
    ///
    /// Defaults to `"jwks-refresher"`.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Runs `hook` on the refresher thread after every fetch, with what came
    /// of it (kids added and removed, 304, failure and next retry). Keep it
    /// quick: the refresher waits for it. A panic in it is caught and logged.
    /// While it runs, lookups check the set's hard-expiry deadline
    /// themselves, so a hook that hangs cannot keep a set alive past it.
    /// [`JwksCache::refresh_now`] called from it does not wait: it schedules
    /// a fetch to start right after the hook returns and returns
    /// [`Error::OnRefresherThread`]; other waiting calls made from it
    /// (`wait_ready`, `*_or_wait`) do not wait either.
    ///
    /// Defaults to none.
    pub fn on_refresh(mut self, hook: impl Fn(&RefreshEvent) + Send + 'static) -> Self {
        self.on_refresh = Some(Box::new(hook));
        self
    }

    /// Seeds the jitter's random numbers (for reproducible tests).
    ///
    /// Defaults to a per-process random seed.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings and starts the refresher thread, which fetches
    /// the first set at once. Does not wait for it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for inconsistent settings (the message names the
    /// knob): among them, for HTTP sources, a URL that is not https (see
    /// [`danger_accept_plain_http`](Self::danger_accept_plain_http)), bad
    /// PEM or pins, and an HTTP knob used with a custom fetcher.
    /// [`Error::Fetch`] with kind `Io` if the thread cannot start.
    pub fn build(self) -> Result<JwksCache, Error> {
        crate::registry::solo(self.settle()?)
    }

    /// Checks the settings and builds the fetcher (a fleet's warm-start
    /// read included): what a source needs to be scheduled.
    pub(crate) fn settle(mut self) -> Result<Settings, Error> {
        self.resolve_defaults();
        self.validate()?;
        let name = self.source_name()?;
        let source_id = self.source.describe();
        let fetcher = Self::fetcher(self.source, &self.http)?;
        let (fetcher, warm) = match &self.fleet {
            Some(fleet) => {
                let store = fleet.open()?;
                let id = fleet.source_id_or(source_id);
                let mut wrapped = crate::fleet::FleetFetch::new(
                    fleet,
                    fetcher,
                    store,
                    id,
                    self.policy.clone(),
                    self.limits,
                );
                let warm = wrapped.preload();
                (Box::new(wrapped) as Box<dyn Fetch>, warm)
            }
            None => (fetcher, false),
        };
        Ok(Settings {
            name,
            fetcher,
            warm,
            policy: self.policy,
            seed: self.seed.unwrap_or_else(random_seed),
            limits: self.limits,
            negative_ttl: self.negative_ttl,
            expired_wait: self.expired_wait,
            refresh_timeout: self.refresh_timeout,
            clock: self.clock,
            thread_name: self.thread_name,
            on_refresh: self.on_refresh,
            metrics_interval: self.metrics_interval,
        })
    }

    /// The URL (or issuer) an HTTP source starts from; `None` for a custom
    /// fetcher.
    pub(crate) fn origin_url(&self) -> Option<&str> {
        match &self.source {
            Source::Custom(_) => None,
            #[cfg(feature = "http")]
            Source::Url(url) | Source::Issuer(url) => Some(url),
        }
    }

    /// Whether [`danger_accept_plain_http`](Self::danger_accept_plain_http) is on.
    pub(crate) fn plain_http(&self) -> bool {
        self.http.plain_http
    }

    /// Whether [`clock`](Self::clock) was called.
    pub(crate) fn has_clock(&self) -> bool {
        self.explicit.contains(&"clock")
    }

    /// Uses `clock` unless [`clock`](Self::clock) was called.
    pub(crate) fn default_clock(mut self, clock: Box<dyn Clock>) -> Self {
        if !self.has_clock() {
            self.clock = clock;
        }
        self
    }

    /// Marks the builder as carrying registry `id`'s defaults.
    pub(crate) fn with_defaults_of(mut self, id: u64) -> Self {
        self.defaults_of = Some(id);
        self
    }

    /// The registry whose defaults it carries.
    pub(crate) fn defaults_of(&self) -> Option<u64> {
        self.defaults_of
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6a77_6b73);
    h.finish()
}

/// The ways to start configuring a cache: they live here, beside
/// [`Builder`], so the reader handle (`cache.rs`) never imports settings.
impl JwksCache {
    /// Starts configuring a cache over a custom source.
    ///
    /// ```
    /// # use jwks_sync::{JwksCache, FileFetcher};
    /// # use std::time::Duration;
    /// # let dir = std::env::temp_dir().join(format!("jwks-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("jwks.json");
    /// # let key = jwks_sync::testing::TestKey::generate(jwks_sync::testing::KeyAlg::Es256, "k1").unwrap();
    /// # std::fs::write(&path, jwks_sync::testing::jwks_json(&[&key])).unwrap();
    /// let cache = JwksCache::from_fetcher(FileFetcher::new(&path)).build()?;
    /// cache.wait_ready(Duration::from_secs(5))?;
    /// assert!(cache.get("k1").is_ok());
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    pub fn from_fetcher(fetcher: impl Fetch) -> Builder {
        Builder::new(Box::new(fetcher))
    }

    /// Starts configuring a cache over the JWKS document at an HTTPS `url`.
    ///
    /// Every HTTP default (timeouts, redirects, trust, proxies, byte cap,
    /// cache headers) is a setter on the [`Builder`]; the URL is checked in
    /// [`Builder::build`]. Requests carry no token data, and a token's
    /// `jku`/`x5u` header never changes where keys come from.
    ///
    /// ```no_run
    /// # use jwks_sync::JwksCache;
    /// # use std::time::Duration;
    /// let cache = JwksCache::builder("https://login.example.com/.well-known/jwks.json")
    ///     .timeout(Duration::from_secs(5))
    ///     .build()?;
    /// cache.wait_ready(Duration::from_secs(10))?;
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder::from_source(Source::Url(url.into()))
    }

    /// Starts configuring a cache whose key set URL comes from OpenID
    /// Connect discovery: `{issuer}/.well-known/openid-configuration` must
    /// name exactly this `issuer`, and its `jwks_uri` must be https on the
    /// issuer's origin (see [`Builder::allow_cross_origin_jwks_uri`]).
    /// Discovery runs again when the key set URL starts answering 404.
    ///
    /// ```no_run
    /// # use jwks_sync::JwksCache;
    /// # use std::time::Duration;
    /// let cache = JwksCache::from_issuer("https://login.example.com").build()?;
    /// cache.wait_ready(Duration::from_secs(10))?;
    /// # Ok::<(), jwks_sync::Error>(())
    /// ```
    #[cfg(feature = "http")]
    pub fn from_issuer(issuer: impl Into<String>) -> Builder {
        Builder::from_source(Source::Issuer(issuer.into()))
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("source", &self.source.describe())
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}
