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
