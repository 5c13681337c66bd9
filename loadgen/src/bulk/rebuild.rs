//! `ledger bench rebuild`: every read model rebuilt from the events table
//! with the code behind `ledger projections rebuild` (`apply_until`, the
//! passes of `rebuild_and_swap`), into scratch schemas that are dropped at
//! the end, so the live read models are left as they are.

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use projectors::rebuild::{apply_until, create_schema_for};
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
        .max_connections(4)
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
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(&pool)
        .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    println!(
        "rebuilding {} read models from {count} events (positions up to {head})",
        models.len()
    );
    let all = Instant::now();
    let mut total = 0u64;
    for model in &models {
        let schema = format!("bench_rebuild_{}", model.name());
        create_schema_for(&pool, &schema, model.tables())
            .await
            .map_err(|e| BenchError::Unexpected(format!("{schema}: {e}")))?;
        let bar = ProgressBar::new(head.max(0) as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{:<12} {{bar:40}} {{pos}}/{{len}} positions {{per_sec}} eta {{eta}}",
                model.name()
            ))
            .map_err(|e| BenchError::Config(e.to_string()))?,
        );
        let started = Instant::now();
        let one = [model.clone()];
        let applied = apply_until(&pool, &schema, &one, head, |_, position| {
            bar.set_position(position.max(0) as u64)
        })
        .await;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
        let applied =
            applied.map_err(|e| BenchError::Unexpected(format!("{}: {e}", model.name())))?;
        dropped?;
        total += applied;
        println!(
            "{:<12} {applied} events in {seconds:.1} s: {:.0} events/s",
            model.name(),
            applied as f64 / seconds
        );
    }
    let seconds = all.elapsed().as_secs_f64().max(0.001);
    println!(
        "all read models: {total} event applications in {seconds:.1} s: {:.0} events/s ({:.0} log events/s for the whole set, one model after the other)",
        total as f64 / seconds,
        count as f64 / seconds
    );
    Ok(())
}
