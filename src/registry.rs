//! Many sources on one scheduler: the table of named sources, the
//! registry-wide guards and defaults, and the cache of its own (a registry
//! of one).
//!
//! The name table is split into shards, each an atomically swapped map:
//! [`Registry::get`] is lock-free (one atomic load and a hash lookup);
//! `register` and `unregister` copy one shard under a writers' lock.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use crate::builder::Builder;
use crate::cache::JwksCache;
use crate::clock::{AdvanceHook, Clock};
use crate::error::Error;
use crate::fetch::Fetch;
use crate::scheduler::Crew;
use crate::settings::Settings;
use crate::shared::STOP;
use crate::source::{Keep, Msg, Source};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, Post, Swap, ThreadSet};

/// Shards of the name table: a registration copies one of them.
const SHARDS: usize = 64;

/// A cache of its own: one scheduler thread, no pool, one source. The
/// last handle stops and joins the thread.
pub(crate) fn solo(settings: Settings) -> Result<JwksCache, Error> {
    let warm = settings.warm;
    let timeout = settings.refresh_timeout;
    let (crew, post) = Crew::start(&settings.thread_name, 0)?;
    let (source, shared) = Source::new(settings, 0, post.clone());
    let _ = post.send(Msg::Add(source));
    let cache = JwksCache::from_parts(shared, Arc::new(crew) as Arc<dyn Keep>);
    if warm {
        // A checked snapshot is waiting: the first round publishes it
        // without any I/O, so the cache is ready when build returns.
        let _ = cache.wait_ready(timeout);
    }
    Ok(cache)
}

/// Many key sets (tenants, issuers, custom sources) served by **one**
/// scheduling thread and a small bounded pool of fetch threads.
///
/// Each source is registered under a name of your choosing with its own
/// [`Builder`] settings, and keeps every protection a [`JwksCache`] has:
/// single-flight, unknown-kid cooldown, negative cache, stale-while-error
/// then fail closed, backoff. The scheduler sleeps until the earliest
/// deadline of all sources or a demand; a source whose identity provider
/// hangs holds one pool thread until its fetch times out, and delays no
/// other source.
///
/// - [`register`](Self::register) returns the source's [`JwksCache`]
///   handle: keep it and look keys up through it (the hot path of a cache
///   of its own). [`get`](Self::get) finds it by name, lock-free.
/// - [`unregister`](Self::unregister) stops the source's fetching within
///   one round; its handles then fail closed (lookups: [`Error::Expired`],
///   waits: [`Error::Stopped`]) and its set is freed when the last handle
///   is dropped.
/// - Cloning is cheap; when the last clone is dropped the scheduler stops
///   (every source with it, as if unregistered but serving its set until
///   its deadline) and its threads are joined, the pool's after their
///   fetch in flight. Handles do not keep the registry alive.
///
/// ```
/// # use jwks_sync::{JwksCache, Registry};
/// # use jwks_sync::testing::{jwks_json, KeyAlg, MemorySource, TestKey};
/// # use std::time::Duration;
/// # let key = TestKey::generate(KeyAlg::Es256, "k1").unwrap();
/// # let tenant_a = MemorySource::new(jwks_json(&[&key]));
/// let registry = Registry::builder()
///     .fetch_threads(2)
///     .defaults(|source| source.interval(Duration::from_secs(600)))
///     .build()?;
/// let a = registry.register("tenant-a", registry.source_from_fetcher(tenant_a))?;
/// a.wait_ready(Duration::from_secs(5))?;
/// assert!(registry.get("tenant-a").is_some_and(|c| c.get("k1").is_ok()));
/// assert!(registry.unregister("tenant-a"));
/// # Ok::<(), jwks_sync::Error>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    /// Dropped first: stops the scheduler and joins its threads.
    _crew: Crew,
    post: Post<Msg>,
    threads: Arc<ThreadSet>,
    shards: Vec<Swap<HashMap<String, JwksCache>>>,
    /// Serialises register / unregister (readers never take it).
    writers: Mutex<usize>,
    next_id: AtomicU64,
    id: u64,
    guards: Guards,
}

/// Default settings for every registration.
type Defaults = Box<dyn Fn(Builder) -> Builder + Send + Sync + 'static>;

struct Guards {
    require_https: bool,
    allow_hosts: Option<Vec<String>>,
    defaults: Option<Defaults>,
    clock: Option<Arc<dyn Clock>>,
}

/// Configures a [`Registry`]. Setters take and return `self`.
#[must_use = "a RegistryBuilder does nothing until build() is called"]
pub struct RegistryBuilder {
    fetch_threads: usize,
    thread_name: String,
    guards: Guards,
}

impl Registry {
    /// Starts configuring a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            fetch_threads: 4,
            thread_name: "jwks-scheduler".to_owned(),
            guards: Guards {
                require_https: true,
                allow_hosts: None,
                defaults: None,
                clock: None,
            },
        }
    }

    /// A source over the JWKS document at an HTTPS `url`, with the
    /// registry's [`defaults`](RegistryBuilder::defaults) applied; set
    /// per-source overrides on it and pass it to [`register`](Self::register).
    #[cfg(feature = "http")]
    pub fn source(&self, url: impl Into<String>) -> Builder {
        self.with_defaults(JwksCache::builder(url))
    }

    /// A source found by OpenID Connect discovery from `issuer` (see
    /// [`JwksCache::from_issuer`]), with the registry's defaults applied.
    #[cfg(feature = "http")]
    pub fn source_from_issuer(&self, issuer: impl Into<String>) -> Builder {
        self.with_defaults(JwksCache::from_issuer(issuer))
    }

    /// A source over a custom fetcher, with the registry's defaults applied.
    pub fn source_from_fetcher(&self, fetcher: impl Fetch) -> Builder {
        self.with_defaults(JwksCache::from_fetcher(fetcher))
    }

    fn with_defaults(&self, builder: Builder) -> Builder {
        let builder = match &self.inner.guards.defaults {
            Some(defaults) => defaults(builder),
            None => builder,
        };
        builder.with_defaults_of(self.inner.id)
    }

    /// Registers `source` under `name` and schedules its first fetch (does
    /// not wait for it: see [`JwksCache::wait_ready`]). Returns its handle.
    ///
    /// `source` is a [`Builder`] as for a cache of its own. When the
    /// registry has [`defaults`](RegistryBuilder::defaults), it must come
    /// from [`source`](Self::source), [`source_from_issuer`](Self::source_from_issuer)
    /// or [`source_from_fetcher`](Self::source_from_fetcher), so the
    /// defaults are under its own settings; its own settings win. Without
    /// its own [`Builder::clock`], it runs on the registry's
    /// [`clock`](RegistryBuilder::clock). `Builder::thread_name` is unused
    /// (the registry names its threads).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `name` is taken, when the source breaks a
    /// registry guard (an `http` URL while https is required, a host
    /// outside [`allow_hosts`](RegistryBuilder::allow_hosts)), when it
    /// lacks the registry's defaults, or for anything
    /// [`Builder::build`] rejects. [`Error::Stopped`] if the scheduler has
    /// stopped.
    pub fn register(&self, name: impl Into<String>, source: Builder) -> Result<JwksCache, Error> {
        let name = name.into();
        let inner = &*self.inner;
        if inner.guards.defaults.is_some() && source.defaults_of() != Some(inner.id) {
            return Err(Error::Config(format!(
                "source {name:?}: this registry has defaults; build the source with \
                 Registry::source, source_from_issuer or source_from_fetcher"
            )));
        }
        inner.guards.check(&name, &source)?;
        let source = match &inner.guards.clock {
            Some(clock) => source.default_clock(Box::new(SharedClock(Arc::clone(clock)))),
            None => source,
        };
        let shard = &inner.shards[shard_of(&name)];
        let mut count = inner.writers.lock();
        if shard.load().contains_key(&name) {
            return Err(Error::Config(format!(
                "source {name:?} is already registered"
            )));
        }
        let settings = source.settle()?;
        let warm = settings.warm;
        let timeout = settings.refresh_timeout;
        // Relaxed: only hands out distinct numbers; the source travels to
        // the scheduler through its inbox.
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (source, shared) = Source::new(settings, id, inner.post.clone());
        let cache = JwksCache::from_parts(shared, Arc::clone(&inner.threads) as Arc<dyn Keep>);
        if !inner.post.send(Msg::Add(source)) {
            return Err(Error::Stopped);
        }
        let mut map = HashMap::clone(&shard.load());
        map.insert(name, cache.clone());
        shard.store(Arc::new(map));
        *count += 1;
        drop(count);
        if warm {
            let _ = cache.wait_ready(timeout);
        }
        Ok(cache)
    }

    /// Removes the source `name`: its fetching stops within one round
    /// (after a fetch in flight), its handles fail closed, and its set is
    /// freed when the last handle is dropped. Returns whether it was there.
    pub fn unregister(&self, name: &str) -> bool {
        let inner = &*self.inner;
        let shard = &inner.shards[shard_of(name)];
        let mut count = inner.writers.lock();
        let mut map = HashMap::clone(&shard.load());
        let Some(cache) = map.remove(name) else {
            return false;
        };
        shard.store(Arc::new(map));
        *count -= 1;
        drop(count);
        cache.shared().ring(STOP);
        true
    }

    /// The handle of source `name`. Lock-free: one atomic load and a hash
    /// lookup (plus two reference counts for the handle).
    pub fn get(&self, name: &str) -> Option<JwksCache> {
        self.inner.shards[shard_of(name)].load().get(name).cloned()
    }

    /// How many sources are registered.
    pub fn len(&self) -> usize {
        *self.inner.writers.lock()
    }

    /// Whether no source is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names of the registered sources, in no particular order.
    pub fn names(&self) -> Vec<String> {
        let _count = self.inner.writers.lock();
        self.inner
            .shards
            .iter()
            .flat_map(|shard| shard.load().keys().cloned().collect::<Vec<_>>())
            .collect()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("sources", &self.len())
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// The number of fetch threads, shared by all sources: a source whose
    /// identity provider hangs holds one of them until its fetch times out.
    /// `0` runs fetches on the scheduler thread (one hanging source then
    /// delays all the others).
    ///
    /// Defaults to 4.
    pub fn fetch_threads(mut self, threads: usize) -> Self {
        self.fetch_threads = threads;
        self
    }

    /// Requires every HTTP source's URL (or issuer) to be `https`. When
    /// off, a plain `http` source still needs its own
    /// [`Builder::danger_accept_plain_http`] (loopback only, for tests).
    ///
    /// Defaults to on.
    pub fn require_https(mut self, on: bool) -> Self {
        self.guards.require_https = on;
        self
    }

    /// Accepts HTTP sources only on these hosts (exact names, compared
    /// without case; `*.example.com` allows any subdomain of
    /// `example.com`). Checked at registration, on the URL or issuer; a
    /// custom fetcher has no host and is not checked. Call again to add
    /// more.
    ///
    /// Defaults to any host.
    pub fn allow_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = self.guards.allow_hosts.get_or_insert_with(Vec::new);
        list.extend(hosts.into_iter().map(|h| h.into().to_ascii_lowercase()));
        self
    }

    /// Settings applied to every source before its own: the builders of
    /// [`Registry::source`], [`Registry::source_from_issuer`] and
    /// [`Registry::source_from_fetcher`] start from `defaults(builder)`,
    /// and [`Registry::register`] accepts no other.
    ///
    /// Defaults to none (each source starts from the [`Builder`] defaults).
    pub fn defaults(
        mut self,
        defaults: impl Fn(Builder) -> Builder + Send + Sync + 'static,
    ) -> Self {
        self.guards.defaults = Some(Box::new(defaults));
        self
    }

    /// The clock of every source that sets none of its own (see
    /// [`Builder::clock`]: a manual clock wakes the scheduler on every jump).
    ///
    /// Defaults to [`SystemClock`](crate::SystemClock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.guards.clock = Some(Arc::new(clock));
        self
    }

    /// The scheduler thread's name; fetch threads are named after it
    /// (`{name}-fetch-{i}`).
    ///
    /// Defaults to `"jwks-scheduler"`.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Starts the scheduler and the fetch threads.
    ///
    /// # Errors
    ///
    /// [`Error::Fetch`] with kind `Io` if a thread cannot start.
    pub fn build(self) -> Result<Registry, Error> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let (crew, post) = Crew::start(&self.thread_name, self.fetch_threads)?;
        let threads = crew.threads();
        Ok(Registry {
            inner: Arc::new(Inner {
                _crew: crew,
                post,
                threads,
                shards: (0..SHARDS)
                    .map(|_| Swap::new(Arc::new(HashMap::new())))
                    .collect(),
                writers: Mutex::new(0),
                next_id: AtomicU64::new(0),
                // Relaxed: only hands out distinct numbers.
                id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                guards: self.guards,
            }),
        })
    }
}

impl fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("fetch_threads", &self.fetch_threads)
            .field("require_https", &self.guards.require_https)
            .field("allow_hosts", &self.guards.allow_hosts)
            .finish_non_exhaustive()
    }
}

impl Guards {
    /// The registry-wide rules a source must pass.
    fn check(&self, name: &str, source: &Builder) -> Result<(), Error> {
        let Some(url) = source.origin_url() else {
            return Ok(());
        };
        let reject = |why: String| Err(Error::Config(format!("source {name:?}: {why}")));
        let Some((scheme, host)) = scheme_and_host(url) else {
            return reject(format!("{url:?} is not a valid URL"));
        };
        match scheme.as_str() {
            "https" => {}
            "http" if !self.require_https && source.plain_http() => {}
            "http" if self.require_https => {
                return reject(
                    "this registry requires https (RegistryBuilder::require_https)".to_owned(),
                )
            }
            _ => {
                return reject(format!(
                    "{scheme}: URLs need https (plain http needs danger_accept_plain_http)"
                ))
            }
        }
        if let Some(allowed) = &self.allow_hosts {
            if !allowed.iter().any(|entry| host_matches(entry, &host)) {
                return reject(format!(
                    "host {host:?} is not in the registry's allow-list (RegistryBuilder::allow_hosts)"
                ));
            }
        }
        Ok(())
    }
}

/// The lowercase scheme and host of `url`.
#[cfg(feature = "http")]
fn scheme_and_host(url: &str) -> Option<(String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some((parsed.scheme().to_owned(), host))
}

/// Without HTTP there are no URL sources.
#[cfg(not(feature = "http"))]
fn scheme_and_host(_url: &str) -> Option<(String, String)> {
    None
}

/// Whether allow-list `entry` (lowercase; `*.` prefix: any subdomain)
/// admits `host`.
fn host_matches(entry: &str, host: &str) -> bool {
    match entry.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => entry == host,
    }
}

fn shard_of(name: &str) -> usize {
    // A fixed hasher: shard choice only spreads writes; each shard's map
    // has its own random keys.
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    name.hash(&mut h);
    // Truncation intended: only the low bits pick the shard.
    (h.finish() as usize) % SHARDS
}

/// The registry's clock, shared by its sources.
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> std::time::Instant {
        self.0.now()
    }
    fn on_advance(&self, wake: AdvanceHook) -> bool {
        self.0.on_advance(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::host_matches;

    #[test]
    fn allow_list_entries() {
        assert!(host_matches("login.example.com", "login.example.com"));
        assert!(!host_matches("login.example.com", "evil.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.b.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "badexample.com"));
    }
}
