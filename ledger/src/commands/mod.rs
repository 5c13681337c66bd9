//! The analysts' and operators' subcommands that run to completion (the
//! long-running parts are in the crate root).

pub mod audit;
pub mod events;
pub mod parquet;
pub mod projections;
pub mod stream;

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Stderr when it is a terminal, else nowhere.
pub fn draw_target() -> indicatif::ProgressDrawTarget {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), draw_target());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} events ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
