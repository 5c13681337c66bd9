//! `ledger projections rebuild NAME|--all` and `ledger projections status`.

use std::sync::Arc;
use std::time::Instant;

use event_log::statements::positions;
use projectors::rebuild::{rebuild_and_swap, Progress};
use projectors::Consumer;
use sqlx::PgPool;

use crate::LedgerError;

/// Rebuilds the named read models (all when `names` is empty) and swaps
/// each in; prints what it did.
pub async fn rebuild(pool: &PgPool, stream: &str, names: &[String]) -> Result<(), LedgerError> {
    let models: Vec<Arc<dyn Consumer>> = projectors::read_models()
        .into_iter()
        .filter(|m| names.is_empty() || names.iter().any(|n| n == m.name()))
        .collect();
    for name in names {
        if !models.iter().any(|m| m.name() == name) {
            let known: Vec<&str> = projectors::read_models().iter().map(|m| m.name()).collect();
            return Err(LedgerError::Config(format!(
                "no read model `{name}` (known: {})",
                known.join(", ")
            )));
        }
    }
    let head = positions::head(pool).await?;
    // The models are independent (their own tables and checkpoints), so
    // they are rebuilt concurrently, each on its own connections.
    let bars = indicatif::MultiProgress::with_draw_target(super::draw_target());
    let bars = &bars;
    let runs = models.into_iter().map(|model| async move {
        let started = Instant::now();
        let bar = super::progress_bar_in(bars, head.max(0) as u64, model.name());
        let mut applied = 0;
        let reached = rebuild_and_swap(pool, stream, &model, |p: Progress| {
            applied = p.applied;
            bar.set_length(p.until.max(0) as u64);
            bar.set_position(p.position.max(0) as u64);
        })
        .await;
        bar.finish_and_clear();
        let reached = reached?;
        let seconds = started.elapsed().as_secs_f64();
        let line = format!(
            "{}: rebuilt {} events up to position {} in {:.1} s ({}), swapped in",
            model.name(),
            indicatif::HumanCount(applied),
            reached,
            seconds,
            super::events_per_second(applied as f64 / seconds.max(0.001))
        );
        // Printed while the other bars still draw: through the bars, which
        // clear themselves, print, and redraw below it (a bare println
        // lands where a bar is drawn and is overwritten by its next
        // frame). On stdout, as before, also when stdout is not a terminal.
        bars.suspend(|| println!("{line}"));
        Ok::<(), LedgerError>(())
    });
    futures::future::try_join_all(runs).await?;
    Ok(())
}

/// Prints each consumer's position and lag behind the log's head.
pub async fn status(pool: &PgPool, stream: &str) -> Result<(), LedgerError> {
    let head = positions::head(pool).await?;
    let published = projectors::checkpoints::published(pool, stream).await?;
    println!("log head {head}, relay published {published} (stream {stream})");
    println!("{:<14} {:>12} {:>12}", "consumer", "position", "lag_events");
    for name in crate::consumer_names() {
        let position = projectors::checkpoints::get(pool, &name).await?;
        let lag = positions::count_after(pool, position).await?;
        println!("{name:<14} {position:>12} {lag:>12}");
    }
    Ok(())
}
