//! A progress bar with an ETA on stderr, for the studies (many runs).
//! Shown only when stderr is a terminal, so pipes and logs stay clean.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar, hidden when stderr is not a terminal.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` steps (hidden when `quiet` or stderr is not a terminal).
    pub(crate) fn new(total: usize, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() || crate::launcher::under_a_launcher() {
            return Progress { bar: ProgressBar::hidden() };
        }
        let bar = ProgressBar::new(total as u64);
        let style = ProgressStyle::with_template(" {spinner} [{pos}/{len}] {wide_bar} ETA {eta_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar }
    }

    /// Marks step `i` as started, named `what`.
    pub(crate) fn step(&self, i: usize, what: &str) {
        self.bar.set_position(i as u64);
        self.bar.set_message(what.to_string());
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
