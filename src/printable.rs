//! Attacker-chosen text (kids, member names, `kty` values) made safe for
//! humans: the one helper every `Display` impl, log line and CLI table
//! uses. The data itself (in [`SkippedKey`](crate::SkippedKey),
//! [`RefreshOutcome`](crate::RefreshOutcome), [`Key::kid`](crate::Key::kid))
//! keeps the exact text.

use std::fmt::{self, Write as _};

/// At most this many characters of the original text are shown.
const MAX_CHARS: usize = 64;

/// `text` as it may be shown to a human; see [`printable`].
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(&'a str);

/// Wraps attacker-chosen `text` (a kid, say) for display: control
/// characters, bidirectional overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069, U+200E, U+200F, U+061C), zero-width and other invisible
/// characters, line and paragraph separators are written as `\u{…}`, a
/// backslash as `\\`, and text longer than 64 characters is cut there and
/// ends with `…`. Nothing that prints can reorder, hide or fake
/// surrounding text in a terminal or a log.
///
/// ```
/// let kid = "key\u{202e}1\n";
/// assert_eq!(jwks_sync::printable(kid).to_string(), r"key\u{202e}1\u{a}");
/// assert_eq!(jwks_sync::printable(&"k".repeat(100)).to_string().chars().count(), 65);
/// ```
pub fn printable(text: &str) -> Printable<'_> {
    Printable(text)
}

/// Characters that render as nothing, reorder text or break lines.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_CHARS) {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if hidden(c) {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            } else {
                f.write_char(c)?;
            }
        }
        if chars.next().is_some() {
            f.write_char('…')?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_bidi_and_invisible_characters_are_escaped() {
        for (raw, shown) in [
            ("plain-kid_1", "plain-kid_1"),
            (
                "a\nb\rc\td\u{0}e\u{1b}[31m",
                r"a\u{a}b\u{d}c\u{9}d\u{0}e\u{1b}[31m",
            ),
            (
                "\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}",
                r"\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}",
            ),
            (
                "\u{2066}\u{2067}\u{2068}\u{2069}",
                r"\u{2066}\u{2067}\u{2068}\u{2069}",
            ),
            (
                "\u{200b}\u{200e}\u{200f}\u{061c}\u{feff}\u{2028}",
                r"\u{200b}\u{200e}\u{200f}\u{61c}\u{feff}\u{2028}",
            ),
            ("\u{85}\u{7f}", r"\u{85}\u{7f}"),
            (r"a\u{41}", r"a\\u{41}"),
            ("clé-ключ-鍵", "clé-ключ-鍵"),
        ] {
            assert_eq!(printable(raw).to_string(), shown, "{raw:?}");
        }
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = "k".repeat(1000);
        let shown = printable(&long).to_string();
        assert_eq!(shown, format!("{}…", "k".repeat(64)));
        assert_eq!(printable(&"k".repeat(64)).to_string(), "k".repeat(64));
    }
}
