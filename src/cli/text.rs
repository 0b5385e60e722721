//! Plain-text output helpers: aligned tables and short durations.

use std::fmt::Write as _;
use std::time::Duration;

/// `rows` under `header`, columns padded to their widest cell, two spaces
/// apart; the last column is not padded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `850ms`, `2.5s`, `20m`, `1h30m`, `2d`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        let tenths = (ms % 1000) / 100;
        if tenths == 0 {
            format!("{s}s")
        } else {
            format!("{s}.{tenths}s")
        }
    } else if s < 3600 {
        if s.is_multiple_of(60) {
            format!("{}m", s / 60)
        } else {
            format!("{}m{}s", s / 60, s % 60)
        }
    } else if s <= 86400 || !s.is_multiple_of(86400) {
        if s.is_multiple_of(3600) {
            format!("{}h", s / 3600)
        } else {
            format!("{}h{}m", s / 3600, (s % 3600) / 60)
        }
    } else {
        format!("{}d", s / 86400)
    }
}

/// `error` and its `source()` chain as `a: b: c`, each layer once (the
/// library's `Display` says one layer; `source` returns the cause).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    // Bounded: at most 16 layers.
    for _ in 0..16 {
        let Some(e) = next else { break };
        let _ = write!(out, ": {e}");
        next = e.source();
    }
    out
}

/// `UnknownKid` → `unknown_kid`.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(human_duration(Duration::from_secs(1200)), "20m");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human_duration(Duration::from_secs(86400)), "24h");
    }

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\nxxx  y\n");
    }
}
