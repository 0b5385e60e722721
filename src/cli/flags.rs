//! Library messages speak of builder settings (`add_root_certificate_pem`,
//! `connect_timeout`, ...); a CLI user knows only flags. Every message the
//! CLI prints goes through [`name_flags`].

/// Library setting → the flag that sets it. Settings without a flag map to
/// a phrase, never to a method name the user cannot type.
const SETTINGS: &[(&str, &str)] = &[
    ("danger_accept_plain_http", "--insecure-plain-http"),
    ("add_root_certificate_pem", "--ca-file"),
    ("use_built_in_roots", "--no-default-roots"),
    ("pin_spki_sha256", "--pin"),
    ("connect_timeout", "--connect-timeout"),
    ("response_timeout", "--response-timeout"),
    ("use_env_proxy", "--no-proxy"),
    ("min_refresh_interval", "--min-refresh-interval"),
    ("unknown_kid_cooldown", "--unknown-kid-cooldown"),
    ("stale_while_error", "--stale-while-error"),
    ("backoff_base", "--backoff-base"),
    ("backoff_max", "--backoff-max"),
    ("usage_threshold", "--usage-threshold"),
    ("use_cache_headers", "--ignore-cache-headers"),
    ("background_refresh", "--no-background"),
    ("min_ttl", "--min-ttl"),
    ("max_ttl", "--max-ttl"),
    ("interval", "--interval"),
    ("timeout", "--timeout"),
    (
        "allow_cross_origin_jwks_uri",
        "a key set on the issuer's origin",
    ),
];

/// `message` with every whole-word setting name (optionally written
/// `Builder::name`) replaced by its flag.
pub(crate) fn name_flags(message: &str) -> String {
    let message = message.replace("Builder::", "");
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while !rest.is_empty() {
        let word_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if word_len == 0 {
            // One non-word character (possibly multi-byte).
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let (word, tail) = rest.split_at(word_len);
        // `--flag-name` already: leave it.
        let flagged = out.ends_with('-');
        match SETTINGS.iter().find(|(name, _)| *name == word) {
            Some((_, flag)) if !flagged => out.push_str(flag),
            _ => out.push_str(word),
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::name_flags;

    #[test]
    fn settings_become_flags() {
        assert_eq!(
            name_flags(
                "https only (plain http needs danger_accept_plain_http, for loopback tests)"
            ),
            "https only (plain http needs --insecure-plain-http, for loopback tests)"
        );
        assert_eq!(
            name_flags("timed out (Connect; see connect_timeout)"),
            "timed out (Connect; see --connect-timeout)"
        );
        assert_eq!(
            name_flags("min_refresh_interval must not exceed interval"),
            "--min-refresh-interval must not exceed --interval"
        );
        assert_eq!(
            name_flags("not issued by a trusted CA; trust it with add_root_certificate_pem"),
            "not issued by a trusted CA; trust it with --ca-file"
        );
        assert_eq!(name_flags("see Builder::pin_spki_sha256"), "see --pin");
        // Words that merely contain a setting name, and flags, are kept.
        assert_eq!(
            name_flags("intervals, timeouts, --timeout, é interval"),
            "intervals, timeouts, --timeout, é --interval"
        );
    }
}
