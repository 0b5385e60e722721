//! The command line, declared once: clap derives the parser, the `--help`
//! texts and the argument errors from these types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, as `--help` shows them (kept in step with `exit.rs`).
const EXIT_CODES: &str = "\
Exit codes:
  0   success (verify: the token is valid)
  1   verify: the token was rejected (one line on stderr says which rule);
      demo: the verdict was FAIL
  2   the key set could not be loaded (network, TLS, HTTP status, file, document)
  64  usage: bad arguments or settings (unreadable --ca-file, bad duration, ...)
  70  internal failure (the demo could not start its IdP or threads)";

/// Inspect, verify against and watch JSON Web Key Sets; run the demo.
#[derive(Debug, Parser)]
#[command(name = "jwks", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Fetch a key set once and print its keys (kid, kty, alg, use, size,
    /// usable or why skipped), the response's cache headers and the lifetime
    /// the cache would use.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// An https:// URL or a file path (or --issuer instead).
        #[arg(required_unless_present = "issuer", conflicts_with = "issuer")]
        source: Option<String>,
        /// Find the key set by OpenID Connect discovery from this issuer
        /// (`<ISSUER>/.well-known/openid-configuration`, its `jwks_uri`).
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Transport settings.
        #[command(flatten)]
        http: HttpArgs,
        /// Refresh settings (they decide the lifetime shown).
        #[command(flatten)]
        refresh: RefreshArgs,
    },
    /// Verify a token against a key set; print its header and claims as JSON.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// The key set: an https:// URL or a file path (or --issuer instead).
        #[arg(
            long,
            value_name = "URL|FILE",
            required_unless_present = "issuer",
            conflicts_with = "issuer"
        )]
        jwks: Option<String>,
        /// Find the key set by OpenID Connect discovery from this issuer; its
        /// tokens must then name it in `iss` (unless --iss says otherwise).
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Accept tokens from this issuer (`iss`); repeat for several. Without
        /// it, `iss` is not checked.
        #[arg(long = "iss", value_name = "ISSUER")]
        issuers: Vec<String>,
        /// Accept tokens for this audience (`aud`); repeat for several.
        /// Without it, a token carrying `aud` is rejected (see --any-aud).
        #[arg(long = "aud", value_name = "AUDIENCE")]
        audiences: Vec<String>,
        /// Do not check `aud` at all (tokens for any audience pass).
        #[arg(long, conflicts_with = "audiences")]
        any_aud: bool,
        /// Clock skew allowed on `exp` and `nbf`.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
        leeway: Duration,
        /// How long to wait for the key set, retrying failed fetches within
        /// it (honouring `Retry-After`).
        #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = duration)]
        wait: Duration,
        /// The compact JWS, `Bearer <token>`, or `-` to read it from stdin.
        token: String,
        /// Transport settings.
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Run the cache against a key set and print each refresh as it happens
    /// (new set with kids added/removed, 304, failure and next retry) until
    /// interrupted.
    #[command(after_help = EXIT_CODES)]
    Watch {
        /// An https:// URL (or a file path, re-read on each refresh; or
        /// --issuer instead).
        #[arg(required_unless_present = "issuer", conflicts_with = "issuer")]
        source: Option<String>,
        /// Find the key set by OpenID Connect discovery from this issuer.
        #[arg(long, value_name = "URL")]
        issuer: Option<String>,
        /// Print one JSON object per event instead of a line of text.
        #[arg(long)]
        json: bool,
        /// Transport settings.
        #[command(flatten)]
        http: HttpArgs,
        /// Refresh settings.
        #[command(flatten)]
        refresh: RefreshArgs,
    },
    /// Self-contained demo on 127.0.0.1: a test IdP, verifier threads, key
    /// rotations (overlap, then replace), an IdP outage served from the
    /// stale set, recovery; then a summary.
    #[command(after_help = EXIT_CODES)]
    Demo {
        /// How long the demo runs; the timeline scales with it.
        #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(4..=3600))]
        duration: u64,
        /// Verifier threads.
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
        threads: u64,
        /// Print the summary as JSON on stdout (no progress line).
        #[arg(long)]
        json: bool,
        /// Multi-tenant mode: this many tenants (issuers) on one loopback
        /// IdP, all served by one registry (one scheduler thread, a small
        /// fetch pool); some rotate, one has an outage.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
        tenants: Option<u64>,
    },
}

/// Transport flags, shared by inspect, verify and watch.
#[derive(Debug, Args)]
#[command(next_help_heading = "Transport")]
pub(crate) struct HttpArgs {
    /// Trust the CA certificates in this PEM file too; repeat for several.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub(crate) ca_files: Vec<PathBuf>,
    /// Trust only the --ca-file roots, not the built-in Mozilla roots.
    #[arg(long, requires = "ca_files")]
    pub(crate) no_default_roots: bool,
    /// Require the server key's SPKI SHA-256 (base64) to be this pin; repeat
    /// for several accepted pins.
    #[arg(long = "pin", value_name = "BASE64")]
    pub(crate) pins: Vec<String>,
    /// Connect timeout, TLS handshake included [default: 2s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) connect_timeout: Option<Duration>,
    /// Timeout for the response headers once the request is sent
    /// [default: 4s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) response_timeout: Option<Duration>,
    /// Timeout for the whole request, body and redirects included
    /// [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) timeout: Option<Duration>,
    /// Ignore HTTPS_PROXY / HTTP_PROXY / ALL_PROXY from the environment.
    #[arg(long)]
    pub(crate) no_proxy: bool,
    /// DANGER: allow plain http:// URLs, to loopback hosts only (a local
    /// test IdP). Keys fetched over plain http can be forged by anyone on
    /// the path.
    #[arg(long)]
    pub(crate) insecure_plain_http: bool,
}

/// The cache's refresh knobs, shared by inspect and watch (a one-shot
/// `verify` runs with the defaults).
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Refresh")]
pub(crate) struct RefreshArgs {
    /// What makes a set due [default: both].
    #[arg(long, value_enum)]
    pub(crate) strategy: Option<Strategy>,
    /// Lifetime when the response has no cache headers [default: 20m].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) interval: Option<Duration>,
    /// Floor on the lifetime from cache headers [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) min_ttl: Option<Duration>,
    /// Ceiling on the lifetime from cache headers [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) max_ttl: Option<Duration>,
    /// Use --interval, whatever the cache headers say.
    #[arg(long)]
    pub(crate) ignore_cache_headers: bool,
    /// Lookups after which the set is due (usage strategy) [default: 1000].
    #[arg(long, value_name = "N")]
    pub(crate) usage_threshold: Option<u64>,
    /// Least time between usage-triggered fetches [default: 30s, or
    /// --interval if shorter].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) min_refresh_interval: Option<Duration>,
    /// Least time between fetches for unknown kids [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) unknown_kid_cooldown: Option<Duration>,
    /// How long past its lifetime a set is served while refreshes fail
    /// [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) stale_while_error: Option<Duration>,
    /// First retry delay ceiling after a failure [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) backoff_base: Option<Duration>,
    /// Largest retry delay [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub(crate) backoff_max: Option<Duration>,
    /// Refresh only when due, not early in the background.
    #[arg(long)]
    pub(crate) no_background: bool,
}

/// `--strategy` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Strategy {
    /// Due after the lifetime.
    Time,
    /// Due after --usage-threshold lookups.
    Usage,
    /// Whichever comes first.
    Both,
}

/// Parses `250ms`, `30s`, `5m`, `2h`, `1d`, compounds of them largest unit
/// first (`1m30s`, `1h30m`, `2h15m10s500ms`), or a bare number of seconds.
/// Fractions are allowed (`1.5s`).
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("'{text}' is not a duration (e.g. 250ms, 30s, 1m30s, 2h)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' is out of range"));
    }
    // Units from largest to smallest; each may appear once, in this order.
    const UNITS: [(&str, f64); 5] = [
        ("d", 86400.0),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
        ("ms", 0.001),
    ];
    let mut rest = text;
    let mut next_unit = 0;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(split);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        let index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(|| format!("'{text}': unknown unit '{unit}' (ms, s, m, h or d)"))?;
        if index < next_unit {
            return Err(format!(
                "'{text}': units must go from largest to smallest, each once (e.g. 1h30m)"
            ));
        }
        next_unit = index + 1;
        total += value * UNITS[index].1;
        rest = after;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("'{text}' is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert!(duration("5 days").is_err());
        assert!(duration("").is_err());
        assert!(duration("1e400").is_err());
        assert!(duration("ms").is_err());
        assert!(duration("5x").is_err());
    }

    #[test]
    fn compound_durations() {
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1d2h"), Ok(Duration::from_secs(93600)));
        assert_eq!(duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(duration("1m1.5s"), Ok(Duration::from_millis(61500)));
        assert!(duration("30s1m").is_err(), "smallest unit first");
        assert!(duration("1m1m").is_err(), "a unit twice");
        assert!(duration("1m 30s").is_err());
    }

    #[test]
    fn the_declaration_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }
}
