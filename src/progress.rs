//! Progress of long transfers: a live line on a terminal, a heartbeat line in CI logs.
//!
//! On a terminal the line redraws at most ten times a second and disappears when done.
//! Elsewhere (CI logs, pipes) nothing is printed for short transfers, and a long one prints
//! one line every 15 seconds, so a log stays readable but shows the job is alive.
//! `--quiet` turns both off. Everything goes to stderr; stdout is for results.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);
const MODE_UNSET: u8 = 0;
const MODE_TTY: u8 = 1;
const MODE_LOG: u8 = 2;
const MODE_QUIET: u8 = 3;

const TTY_EVERY: Duration = Duration::from_millis(100);
const LOG_EVERY: Duration = Duration::from_secs(15);

/// Chooses how progress shows, once, at start-up.
pub fn init(quiet: bool) {
    let mode = if quiet {
        MODE_QUIET
    } else if std::io::stderr().is_terminal() {
        MODE_TTY
    } else {
        MODE_LOG
    };
    MODE.store(mode, Ordering::Relaxed);
}

fn mode() -> u8 {
    match MODE.load(Ordering::Relaxed) {
        MODE_UNSET => MODE_QUIET,
        m => m,
    }
}

/// A handle on one transfer; clones share it.
#[derive(Clone)]
pub(crate) struct Progress {
    inner: Option<Arc<Mutex<State>>>,
}

struct State {
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_shown: Instant,
    drawn: bool,
}

impl Progress {
    pub(crate) fn new(label: impl Into<String>, total: u64) -> Self {
        if mode() == MODE_QUIET {
            return Self::hidden();
        }
        let now = Instant::now();
        Progress {
            inner: Some(Arc::new(Mutex::new(State {
                label: label.into(),
                total,
                done: 0,
                started: now,
                last_shown: now,
                drawn: false,
            }))),
        }
    }

    /// A progress that shows nothing.
    pub(crate) fn hidden() -> Self {
        Progress { inner: None }
    }

    pub(crate) fn advance(&self, n: u64) {
        let Some(inner) = &self.inner else { return };
        let mut s = inner.lock().unwrap_or_else(|p| p.into_inner());
        s.done += n;
        let now = Instant::now();
        let every = if mode() == MODE_TTY {
            TTY_EVERY
        } else {
            LOG_EVERY
        };
        if now.duration_since(s.last_shown) < every {
            return;
        }
        s.last_shown = now;
        let line = format!(
            "{}: {}{} of {}",
            s.label,
            percent(s.done, s.total),
            human(s.done),
            human(s.total)
        );
        let mut err = std::io::stderr().lock();
        if mode() == MODE_TTY {
            let _ = write!(err, "\r\x1b[K{line}");
            s.drawn = true;
        } else {
            let secs = now.duration_since(s.started).as_secs();
            let _ = writeln!(err, "{line} ({secs}s)");
        }
    }

    /// Clears the live line, if one was drawn.
    pub(crate) fn finish(&self) {
        let Some(inner) = &self.inner else { return };
        let s = inner.lock().unwrap_or_else(|p| p.into_inner());
        if s.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

fn percent(done: u64, total: u64) -> String {
    (done.min(total) * 100)
        .checked_div(total)
        .map(|p| format!("{p}% "))
        .unwrap_or_default()
}

/// Bytes in binary units, one decimal: `1.5 GiB`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(512), "512 B");
        assert_eq!(super::human(1536), "1.5 KiB");
        assert_eq!(super::human(1 << 30), "1.0 GiB");
    }
}
