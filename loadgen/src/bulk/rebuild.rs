//! `ledger-bench rebuild`: every read model rebuilt from the events table
//! with the code behind `ledger projections rebuild` (`apply_until`, the
//! passes of `rebuild_and_swap`), into scratch schemas that are dropped at
//! the end, so the live read models are left as they are.

use std::sync::Arc;
use std::time::Instant;

use event_log::statements::positions;
use indicatif::{ProgressBar, ProgressStyle};
use projectors::rebuild::{apply_until, create_schema_for, make_durable};
use projectors::Consumer;
use sqlx::postgres::PgPoolOptions;

use crate::BenchError;

#[derive(clap::Args, Debug, Clone)]
pub struct RebuildArgs {
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Read models to rebuild (default: all).
    pub names: Vec<String>,
}

pub async fn run(args: RebuildArgs) -> Result<(), BenchError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&args.database_url)
        .await?;
    let models: Vec<Arc<dyn Consumer>> = projectors::read_models()
        .into_iter()
        .filter(|m| args.names.is_empty() || args.names.iter().any(|n| n == m.name()))
        .collect();
    if models.is_empty() {
        return Err(BenchError::Config(format!(
            "no such read model among {:?}",
            args.names
        )));
    }
    let head = positions::head(&pool).await?;
    let count = positions::count(&pool).await?;
    println!(
        "rebuilding {} read models from {count} events (positions up to {head})",
        models.len()
    );
    // All of them at once, each on its own connection, as
    // `ledger projections rebuild --all` does.
    let schema = "bench_rebuild";
    let tables: Vec<&str> = models
        .iter()
        .flat_map(|m| m.tables().iter().copied())
        .collect();
    create_schema_for(&pool, schema, &tables)
        .await
        .map_err(|e| BenchError::Unexpected(format!("{schema}: {e}")))?;
    let bar = ProgressBar::new(head.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "rebuild {bar:40} {pos}/{len} positions (slowest model) {per_sec} eta {eta}",
        )
        .map_err(|e| BenchError::Config(e.to_string()))?,
    );
    let started = Instant::now();
    let applied = apply_until(&pool, schema, &models, head, |_, position| {
        bar.set_position(position.max(0) as u64)
    })
    .await;
    bar.finish_and_clear();
    // Counted in: a rebuild is not done until its tables are durable.
    let applied = match applied {
        Ok(applied) => make_durable(&pool, schema, &tables).await.map(|()| applied),
        Err(err) => Err(err),
    };
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await;
    let applied = applied.map_err(|e| BenchError::Unexpected(format!("rebuild: {e}")))?;
    dropped?;
    let names: Vec<&str> = models.iter().map(|m| m.name()).collect();
    println!(
        "{}: {applied} event applications in {seconds:.1} s: {:.0} events/s",
        names.join(", "),
        applied as f64 / seconds
    );
    println!(
        "all read models: {count} log events in {seconds:.1} s ({:.0} log events/s, the models concurrently)",
        count as f64 / seconds
    );
    Ok(())
}
