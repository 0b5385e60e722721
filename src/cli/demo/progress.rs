//! The demo's progress while it runs, on stderr.
//!
//! - stderr is a terminal: one line redrawn in place (`\r`, erase to end of
//!   line), cut to the terminal's width less one column so it never wraps
//!   (a wrapped line leaves a trail of lines behind each redraw). The width
//!   comes from `COLUMNS` when the shell exports it, else 80.
//! - stderr is not a terminal (CI logs, `2> file`): a plain line every few
//!   seconds, so a 30 s run is not 30 s of silence.
//! - `--json`: nothing (stdout is the summary).

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// The width assumed when `COLUMNS` says nothing.
const DEFAULT_WIDTH: usize = 80;
/// Redraws of the in-place line.
const REDRAW: Duration = Duration::from_millis(250);
/// Plain lines when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What one progress line says.
pub(crate) struct Snapshot<'a> {
    pub(crate) now: Duration,
    pub(crate) total: Duration,
    pub(crate) phase: &'a str,
    pub(crate) verified: String,
    pub(crate) rate: f64,
    pub(crate) generation: u64,
    pub(crate) fetches: u64,
    pub(crate) serving: &'a str,
}

impl Snapshot<'_> {
    /// The line, unclipped: most important first, so clipping drops the
    /// least useful part.
    fn text(&self) -> String {
        format!(
            "[{:>4.1}s/{}s] {} | {} ok {:.0}/s | {} | gen {} fetches {}",
            self.now.as_secs_f64(),
            self.total.as_secs(),
            self.phase,
            self.verified,
            self.rate,
            self.serving,
            self.generation,
            self.fetches,
        )
    }
}

/// Where progress goes.
pub(crate) enum Progress {
    /// Redrawn in place, at most this many columns.
    Terminal { width: usize, last: Option<Instant> },
    /// A plain line now and then.
    Plain { last: Option<Instant> },
    /// Nothing.
    Off,
}

impl Progress {
    /// Chosen from `--json` and what stderr is.
    pub(crate) fn new(json: bool) -> Self {
        if json {
            Progress::Off
        } else if std::io::stderr().is_terminal() {
            Progress::Terminal {
                width: width(std::env::var("COLUMNS").ok().as_deref()),
                last: None,
            }
        } else {
            Progress::Plain { last: None }
        }
    }

    /// Whether a line is due now; if so the caller builds a [`Snapshot`]
    /// and calls [`show`](Self::show).
    pub(crate) fn due(&mut self) -> bool {
        let (last, every) = match self {
            Progress::Terminal { last, .. } => (last, REDRAW),
            Progress::Plain { last } => (last, PLAIN_EVERY),
            Progress::Off => return false,
        };
        if last.is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Writes the line.
    pub(crate) fn show(&self, snapshot: &Snapshot<'_>) {
        let mut err = std::io::stderr().lock();
        let _ = match self {
            Progress::Terminal { width, .. } => {
                write!(err, "\r{}\x1b[K", fit(&snapshot.text(), *width))
            }
            Progress::Plain { .. } => writeln!(err, "{}", snapshot.text()),
            Progress::Off => Ok(()),
        };
        let _ = err.flush();
    }

    /// Erases the in-place line before the summary.
    pub(crate) fn finish(&self) {
        if let Progress::Terminal { .. } = self {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// The usable width from `COLUMNS`: 20 to 1000 columns, else the default.
fn width(columns: Option<&str>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| (20..=1000).contains(w))
        .unwrap_or(DEFAULT_WIDTH)
}

/// `text` cut to `width - 1` characters (the last column stays free: some
/// terminals wrap when it is written), with `…` where it was cut.
fn fit(text: &str, width: usize) -> String {
    let room = width.saturating_sub(1);
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(room.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Snapshot<'static> {
        Snapshot {
            now: Duration::from_secs_f64(3599.9),
            total: Duration::from_secs(3600),
            phase: "replace: key-3 only",
            verified: "123,456,789,012".to_owned(),
            rate: 99_999_999.0,
            generation: 123_456,
            fetches: 654_321,
            serving: "IdP failing, serving STALE set",
        }
    }

    #[test]
    fn the_line_fits_the_terminal() {
        for w in [20, 40, 80, 120] {
            let line = fit(&busy().text(), w);
            assert!(line.chars().count() < w, "{w}: {line}");
            assert!(!line.contains(['\n', '\r']));
        }
        assert!(fit(&busy().text(), 80).starts_with("[3599.9s/3600s] replace: key-3 only |"));
        let short = "[ 1.0s/30s] steady";
        assert_eq!(fit(short, 80), short);
    }

    #[test]
    fn the_width_comes_from_columns_within_sense() {
        assert_eq!(width(None), 80);
        assert_eq!(width(Some("132")), 132);
        assert_eq!(width(Some(" 100 ")), 100);
        assert_eq!(width(Some("0")), 80);
        assert_eq!(width(Some("wide")), 80);
    }

    #[test]
    fn plain_lines_are_spaced_and_json_is_silent() {
        let mut plain = Progress::Plain { last: None };
        assert!(plain.due());
        assert!(!plain.due(), "not again at once");
        assert!(!Progress::Off.due());
    }
}
