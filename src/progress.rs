//! Progress of transfers, several at once: bars on a terminal, a heartbeat in CI logs.
//!
//! On a terminal (indicatif's multi-progress) each transfer in flight has a bar with its
//! bytes, throughput and time left, under a bar for the total; bars disappear when done.
//! Elsewhere (CI logs, pipes) short runs print nothing and long ones print one summary
//! line every 15 seconds (transfers in flight, bytes of the total, throughput), so a log
//! stays readable but shows the job is alive. [`note`] prints a line (a retry) above the
//! bars. `--quiet` turns all of it off. Everything goes to stderr; stdout is for results.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

const LOG_EVERY: Duration = Duration::from_secs(15);

enum Mode {
    Quiet,
    Tty(Tty),
    Log(Mutex<Totals>),
}

struct Tty {
    multi: MultiProgress,
    total: ProgressBar,
    totals: Mutex<Totals>,
}

/// Bytes of every transfer started so far, and of those done.
#[derive(Default)]
struct Totals {
    in_flight: usize,
    total: u64,
    done: u64,
    started: Option<Instant>,
    last_shown: Option<Instant>,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Chooses how progress shows, once, at start-up.
pub fn init(quiet: bool) {
    let mode = if quiet {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let total = ProgressBar::hidden();
        Mode::Tty(Tty {
            multi,
            total,
            totals: Mutex::default(),
        })
    } else {
        Mode::Log(Mutex::default())
    };
    let _ = MODE.set(mode);
}

fn mode() -> &'static Mode {
    MODE.get().unwrap_or(&Mode::Quiet)
}

/// Prints a line for the user (a retry), above any bars; nothing with `--quiet`.
pub(crate) fn note(line: &str) {
    match mode() {
        Mode::Quiet => {}
        Mode::Tty(t) => {
            let _ = t.multi.println(line);
        }
        Mode::Log(_) => eprintln!("{line}"),
    }
}

fn lock(m: &Mutex<Totals>) -> std::sync::MutexGuard<'_, Totals> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A handle on one transfer; clones share it.
#[derive(Clone)]
pub(crate) struct Progress {
    inner: Option<Arc<Transfer>>,
}

struct Transfer {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(crate) fn new(label: impl Into<String>, total: u64) -> Self {
        let bar = match mode() {
            Mode::Quiet => return Self::hidden(),
            Mode::Tty(t) => {
                let mut totals = lock(&t.totals);
                if totals.in_flight == 0 && t.total.is_hidden() {
                    t.total.set_draw_target(ProgressDrawTarget::hidden());
                    let total = t.multi.add(t.total.clone());
                    total.set_style(style("{prefix:.bold} {msg}"));
                    total.set_prefix("total");
                }
                totals.in_flight += 1;
                totals.total += total;
                t.total.set_length(totals.total);
                let bar = t.multi.insert_before(&t.total, ProgressBar::new(total));
                bar.set_style(style("{prefix}"));
                bar.set_prefix(label.into());
                Some(bar)
            }
            Mode::Log(m) => {
                let mut totals = lock(m);
                totals.in_flight += 1;
                totals.total += total;
                totals.started.get_or_insert_with(Instant::now);
                None
            }
        };
        Progress {
            inner: Some(Arc::new(Transfer { bar })),
        }
    }

    /// A progress that shows nothing.
    pub(crate) fn hidden() -> Self {
        Progress { inner: None }
    }

    pub(crate) fn advance(&self, n: u64) {
        let Some(inner) = &self.inner else { return };
        match mode() {
            Mode::Tty(t) => {
                if let Some(bar) = &inner.bar {
                    bar.inc(n);
                }
                lock(&t.totals).done += n;
                t.total.inc(n);
            }
            Mode::Log(m) => {
                let mut totals = lock(m);
                totals.done += n;
                let now = Instant::now();
                let since = totals.last_shown.or(totals.started).unwrap_or(now);
                if now.duration_since(since) >= LOG_EVERY {
                    totals.last_shown = Some(now);
                    eprintln!("{}", summary(&totals, now));
                }
            }
            Mode::Quiet => {}
        }
    }

    /// Takes the transfer's bar away, if one was drawn.
    pub(crate) fn finish(&self) {
        let Some(inner) = &self.inner else { return };
        match mode() {
            Mode::Tty(t) => {
                if let Some(bar) = &inner.bar {
                    bar.finish_and_clear();
                    t.multi.remove(bar);
                }
                let mut totals = lock(&t.totals);
                totals.in_flight = totals.in_flight.saturating_sub(1);
                if totals.in_flight == 0 {
                    t.total.finish_and_clear();
                }
            }
            Mode::Log(m) => {
                let mut totals = lock(m);
                totals.in_flight = totals.in_flight.saturating_sub(1);
            }
            Mode::Quiet => {}
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    let full = format!(
        "{template:<40} {{bytes:>10}} of {{total_bytes:<10}} {{bytes_per_sec:>12}}  {{eta}} left"
    );
    ProgressStyle::with_template(&full).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The heartbeat line of CI logs.
fn summary(t: &Totals, now: Instant) -> String {
    let secs = t
        .started
        .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
    let rate = if secs > 0.0 {
        (t.done as f64 / secs) as u64
    } else {
        0
    };
    format!(
        "transfers: {} in flight, {}{} of {}, {}/s ({}s)",
        t.in_flight,
        percent(t.done, t.total),
        human(t.done),
        human(t.total),
        human(rate),
        secs as u64
    )
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

    #[test]
    fn the_log_heartbeat_says_what_is_in_flight() {
        let start = std::time::Instant::now();
        let t = super::Totals {
            in_flight: 2,
            total: 4 << 20,
            done: 1 << 20,
            started: Some(start),
            last_shown: None,
        };
        let line = super::summary(&t, start + std::time::Duration::from_secs(2));
        assert_eq!(
            line,
            "transfers: 2 in flight, 25% 1.0 MiB of 4.0 MiB, 512.0 KiB/s (2s)"
        );
    }
}
