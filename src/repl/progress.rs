//! The progress bar long commands share (`onedb run --progress`): a count,
//! its rate and the elapsed time on stderr, drawn only when stderr is a
//! terminal, so logs and pipes never see it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit` (e.g. `statements`) with no known total.
pub fn counter(unit: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {human_pos} {msg} · {per_sec} · {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(unit);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A spinner with the elapsed time, for work that cannot count itself
/// (the search indexes' rebuild); its line goes away when it is dropped.
pub fn spinner(what: &'static str) -> Spinner {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    Spinner(bar)
}

/// See `spinner`.
pub struct Spinner(ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
