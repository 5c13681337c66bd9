//! The analysts' and operators' subcommands that run to completion (the
//! long-running parts are in the crate root).

pub mod audit;
pub mod earnings;
pub mod events;
pub mod parquet;
pub mod projections;
pub mod stream;
pub mod webhook;

use std::time::Duration;

use indicatif::{HumanCount, HumanDuration, ProgressBar, ProgressState, ProgressStyle};

/// Stderr when it is a terminal, else nowhere.
pub fn draw_target() -> indicatif::ProgressDrawTarget {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressDrawTarget::stderr()
    } else {
        indicatif::ProgressDrawTarget::hidden()
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal: a bar
/// of fixed width (a `wide_bar` fills the row exactly, the terminal wraps
/// at its last column, and the next frame no longer erases it), counts
/// with thousands separators, a whole number of events per second (not
/// indicatif's `11,992.5861/s`) and the time left in words (`2 minutes`).
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = styled_bar(total, what, draw_target());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// [`progress_bar`] for a `MultiProgress`: added to it before it ticks. A
/// bar that ticked on its own first drew a row the `MultiProgress` does not
/// know of and never erases (a summary line then lands after it).
pub fn progress_bar_in(bars: &indicatif::MultiProgress, total: u64, what: &str) -> ProgressBar {
    let bar = bars.add(styled_bar(
        total,
        what,
        indicatif::ProgressDrawTarget::hidden(),
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn styled_bar(total: u64, what: &str, target: indicatif::ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:<12} [{{elapsed_precise}}] {{bar:30}} {{human_pos}}/{{human_len}} events ({{rate}}, {{left}})"
        ))
        .map(|style| {
            style
                .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}", events_per_second(state.per_sec()));
                })
                .with_key("left", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = if state.pos() == 0 {
                        write!(w, "time left unknown")
                    } else {
                        write!(w, "{} left", HumanDuration(state.eta()))
                    };
                })
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `12,345 events/s`: whole events, thousands separated.
pub fn events_per_second(rate: f64) -> String {
    if !rate.is_finite() || rate < 0.0 {
        return "— events/s".to_owned();
    }
    format!("{} events/s", HumanCount(rate.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::events_per_second;

    #[test]
    fn rates_are_whole_events_with_thousands_separated() {
        assert_eq!(events_per_second(11_992.586_1), "11,993 events/s");
        assert_eq!(events_per_second(0.4), "0 events/s");
        assert_eq!(events_per_second(f64::NAN), "— events/s");
    }
}
