//! A progress bar on stderr for work that turns out to take longer than a second.
//!
//! The bar stays hidden for the first second (short jobs print nothing) and is never drawn when
//! stderr is not a terminal (pipes, files, tests), so it cannot mix into captured output.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    /// Whether the bar may ever be drawn (stderr is a terminal).
    enabled: bool,
    shown: bool,
}

impl Progress {
    /// A bar over `total` units of `unit` (e.g. "samples"), titled `what`.
    pub fn new(total: u64, what: &str, unit: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let template = format!(
            "{what} {{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{elapsed}}, eta {{eta}})"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress {
            bar,
            start: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Records `delta` more units done.
    pub fn inc(&mut self, delta: u64) {
        self.bar.inc(delta);
        if self.enabled && !self.shown && self.start.elapsed() >= SHOW_AFTER {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Runs `f` (e.g. printing a line) with the bar hidden, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar (if drawn) so that what follows starts on a clean line.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
