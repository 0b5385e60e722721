//! URLs the HTTPS source requests, and the origins redirects may reach.
//!
//! Parsing and `Location` resolution are the `url` crate's (the WHATWG URL
//! standard, which resolves references as RFC 3986 §5.2 does: `?v=2`
//! against `/a/old` is `/a/old?v=2`, `../keys` and `./keys` are merged
//! and their dot segments removed). Nothing here joins strings by hand.

use std::fmt;

use url::{Host, Url};

/// Scheme, host and port: what the redirect allow-list compares
/// (RFC 6454). A redirect to the same host on another port or scheme is
/// another origin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Origin {
    https: bool,
    /// Lowercase; IPv6 without brackets.
    host: String,
    port: u16,
}

impl Origin {
    /// Parses an allow-list entry: `host`, `host:port` (IPv6 as `[::1]` or
    /// `[::1]:8443`) meaning `https` on that port (443 when none is given),
    /// or an origin URL `https://host[:port]` (`http://` too, for loopback
    /// tests behind `danger_accept_plain_http`), with no path.
    pub(crate) fn parse_allowed(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let url_text = if entry.contains("://") {
            entry.to_owned()
        } else if entry.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("https://[{entry}]")
        } else {
            format!("https://{entry}")
        };
        let bad = || {
            format!(
                "allow_redirect_host {entry:?}: expected a host, host:port or https://host[:port] origin"
            )
        };
        let url = Url::parse(&url_text).map_err(|_| bad())?;
        let path_free = matches!(url.path(), "" | "/");
        if !path_free || url.query().is_some() || url.fragment().is_some() {
            return Err(bad());
        }
        let target = Target::from_url(url).map_err(|_| bad())?;
        Ok(target.origin)
    }

    /// `scheme://host:port`.
    fn fmt_parts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_parts(f)
    }
}

/// A parsed, checked URL: what the transport requests and the origin rules
/// compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    url: Url,
    origin: Origin,
}

impl Target {
    /// Parses an absolute `http(s)` URL without credentials or fragment.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let parsed = Url::parse(url.trim()).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
        if parsed.fragment().is_some() {
            return Err(format!("{url:?} has a fragment"));
        }
        Self::from_url(parsed).map_err(|why| format!("{url:?} {why}"))
    }

    fn from_url(url: Url) -> Result<Self, &'static str> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err("is not an http(s) URL"),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("carries credentials; they are not supported");
        }
        let host = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => d.to_ascii_lowercase(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("has no host"),
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        Ok(Self {
            url,
            origin: Origin { https, host, port },
        })
    }

    /// The URL to request (normalised by the URL parser).
    pub(crate) fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Whether the scheme is `https`.
    pub(crate) fn is_https(&self) -> bool {
        self.origin.https
    }

    /// Scheme, host and port.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Same scheme, host and port.
    pub(crate) fn same_origin(&self, other: &Target) -> bool {
        self.origin == other.origin
    }

    /// `localhost`, `127.0.0.0/8` or `::1`.
    pub(crate) fn is_loopback(&self) -> bool {
        self.origin.host == "localhost"
            || self
                .origin
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Resolves a `Location` header against this URL (RFC 3986 §5.2, as
    /// the URL standard implements it). A fragment in the header is
    /// dropped: it is never sent.
    pub(crate) fn join(&self, location: &str) -> Result<Target, String> {
        let mut to = self
            .url
            .join(location.trim())
            .map_err(|e| format!("bad Location header ({e})"))?;
        to.set_fragment(None);
        Self::from_url(to).map_err(|why| format!("bad Location header: the target {why}"))
    }
}

impl fmt::Display for Target {
    /// `scheme://host:port/path`: no query, so nothing secret reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.origin.fmt_parts(f)?;
        f.write_str(self.url.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(base: &str, location: &str) -> String {
        Target::parse(base)
            .expect("valid base")
            .join(location)
            .expect("join")
            .as_str()
            .to_owned()
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        let base = "https://idp.example/a/old";
        for (location, resolved) in [
            ("?v=2", "https://idp.example/a/old?v=2"),
            ("../keys", "https://idp.example/keys"),
            ("./keys", "https://idp.example/a/keys"),
            ("keys", "https://idp.example/a/keys"),
            ("/b/./c/../keys", "https://idp.example/b/keys"),
            ("//other.example/k", "https://other.example/k"),
            (
                "https://x.example:8443/k?q#frag",
                "https://x.example:8443/k?q",
            ),
            ("#frag", "https://idp.example/a/old"),
            ("../../../../keys", "https://idp.example/keys"),
        ] {
            assert_eq!(join(base, location), resolved, "{location}");
        }
        // RFC 3986 §5.4.1 examples against http://a/b/c/d;p?q.
        let base = "http://a/b/c/d;p?q";
        for (location, resolved) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
        ] {
            assert_eq!(join(base, location), resolved, "{location}");
        }
    }

    #[test]
    fn targets_parse_into_origins() {
        let t = Target::parse("https://IdP.example:8443/a/b/jwks?x=1").expect("valid");
        assert_eq!(t.origin().to_string(), "https://idp.example:8443");
        assert_eq!(t.to_string(), "https://idp.example:8443/a/b/jwks");
        assert!(!t.join("HTTP://h/x").expect("join").is_https());
        for bad in [
            "https://user:pw@h/x",
            "https://user@h/x",
            "ftp://h/x",
            "https://h/x#frag",
            "/relative",
            "mailto:a@b",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
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
        assert!(!a.same_origin(&Target::parse("http://h:443/y").expect("valid")));
    }

    #[test]
    fn allow_list_entries_are_origins() {
        let origin = |s: &str| Origin::parse_allowed(s).map(|o| o.to_string());
        assert_eq!(
            origin("Keys.Example").as_deref(),
            Ok("https://keys.example:443")
        );
        assert_eq!(
            origin("keys.example:8443").as_deref(),
            Ok("https://keys.example:8443")
        );
        assert_eq!(
            origin("https://keys.example:8443/").as_deref(),
            Ok("https://keys.example:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        assert_eq!(origin("::1").as_deref(), Ok("https://[::1]:443"));
        assert_eq!(origin("[::1]:9").as_deref(), Ok("https://[::1]:9"));
        for bad in [
            "",
            "https://h/path",
            "ftp://h",
            "h:99999",
            "https://u@h",
            "h?q",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }
}
