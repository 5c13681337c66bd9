//! `ledger-bench seed`: a valid history written in bulk.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use event_log::statements::positions;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;

use super::sim::{Commit, EventRow, Sim, SimConfig, SnapshotRow};
use super::store;
use crate::BenchError;

#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// The database to seed (migrated first; its events table must be empty).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Vendors registered.
    #[arg(long, default_value_t = 1_000)]
    pub vendors: u64,
    /// Listings created, published and given an inventory.
    #[arg(long, default_value_t = 100_000)]
    pub listings: u64,
    /// Orders of one rental line each, paid and confirmed.
    #[arg(long, default_value_t = 1_000_000)]
    pub bookings: u64,
    /// Seed of the random generator: the same seed writes the same history.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of listings that sell from stock (never booked here).
    #[arg(long, default_value_t = 0.1)]
    pub sale_share: f64,
    /// Share of rental listings priced by the hour (the rest by the day).
    #[arg(long, default_value_t = 0.2)]
    pub hourly_share: f64,
    /// Distinct customers (default: one per four bookings).
    #[arg(long)]
    pub customers: Option<u64>,
    /// When the history starts (RFC 3339).
    #[arg(long, default_value = "2024-01-01T00:00:00Z")]
    pub start: DateTime<Utc>,
    /// Days over which the orders are placed (after 30 days of onboarding).
    #[arg(long, default_value_t = 730)]
    pub span_days: i64,
    /// Rental periods start up to this many days after their order.
    #[arg(long, default_value_t = 365)]
    pub horizon_days: i64,
    /// Rows per INSERT statement (and transaction).
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
}

struct Generated {
    vendors: usize,
    listings: usize,
    rental_listings: usize,
    bookings: u64,
    refused: u64,
    retries: u64,
    snapshots: Vec<SnapshotRow>,
    busy: StdDuration,
}

pub async fn run(args: SeedArgs) -> Result<(), BenchError> {
    if args.batch == 0 || args.vendors == 0 || args.listings == 0 {
        return Err(BenchError::Config(
            "--batch, --vendors and --listings must be at least 1".into(),
        ));
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&args.database_url)
        .await?;
    migrations::run(&pool)
        .await
        .map_err(|e| BenchError::Config(format!("migrations: {e}")))?;
    let used = positions::any(&pool).await?;
    if used {
        return Err(BenchError::Config(
            "the events table is not empty: seed a fresh database".into(),
        ));
    }

    let expected = args.vendors + 3 * args.listings + 5 * args.bookings;
    let bar = ProgressBar::new(expected);
    bar.set_style(
        ProgressStyle::with_template("seed {bar:40} {pos}/{len} events {per_sec} eta {eta} {msg}")
            .map_err(|e| BenchError::Config(e.to_string()))?,
    );

    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel::<Vec<EventRow>>(4);
    let generator = {
        let args = args.clone();
        tokio::task::spawn_blocking(move || generate(&args, tx))
    };

    let mut conn = pool.acquire().await?;
    let mut written = 0u64;
    let mut insert_time = StdDuration::ZERO;
    while let Some(batch) = rx.recv().await {
        let t = Instant::now();
        store::insert_bulk(&mut conn, &batch).await?;
        insert_time += t.elapsed();
        written += batch.len() as u64;
        bar.set_position(written);
    }
    drop(conn);
    let generated = generator
        .await
        .map_err(|e| BenchError::Unexpected(format!("generator: {e}")))??;
    bar.finish_and_clear();
    let events_elapsed = started.elapsed();

    store::insert_snapshots(&pool, &generated.snapshots).await?;
    // The seeded orders are settled: the policies have nothing left to do
    // with them, as in a system that had run (they would only repeat
    // idempotent commands).
    let head = positions::head(&pool).await?;
    sqlx::query(
        "INSERT INTO consumer_checkpoints (name, position) VALUES ('policies', $1)
         ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
    )
    .bind(head)
    .execute(&pool)
    .await?;
    let t = Instant::now();
    sqlx::query("ANALYZE events").execute(&pool).await?;
    let analyze = t.elapsed();
    let total = started.elapsed();

    let seconds = events_elapsed.as_secs_f64().max(0.001);
    println!(
        "seeded {written} events (head position {head}) in {seconds:.1} s: {:.0} events/s",
        written as f64 / seconds
    );
    println!(
        "  vendors {}, listings {} ({} rental, {} sale), bookings {} (paid and confirmed; {} found no free period, {} periods retried)",
        generated.vendors,
        generated.listings,
        generated.rental_listings,
        generated.listings - generated.rental_listings,
        generated.bookings,
        generated.refused,
        generated.retries
    );
    println!(
        "  generating (domain aggregates, JSON) busy {:.1} s; INSERT statements {:.1} s ({:.0} rows/s while inserting); batches of {} rows",
        generated.busy.as_secs_f64(),
        insert_time.as_secs_f64(),
        written as f64 / insert_time.as_secs_f64().max(0.001),
        args.batch
    );
    println!(
        "  inventory snapshots {}; policies checkpoint set to {head}; ANALYZE {:.1} s; total {:.1} s",
        generated.snapshots.len(),
        analyze.as_secs_f64(),
        total.as_secs_f64()
    );
    Ok(())
}

/// Runs the simulation and hands batches of rows to the writer.
fn generate(args: &SeedArgs, tx: mpsc::Sender<Vec<EventRow>>) -> Result<Generated, BenchError> {
    let busy_from = Instant::now();
    let mut waiting = StdDuration::ZERO;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let config = SimConfig {
        sale_share: args.sale_share,
        hourly_share: args.hourly_share,
        horizon_days: args.horizon_days,
        customers: args.customers.unwrap_or((args.bookings / 4).max(1)),
        rates: domain::Rates::default(),
        currency: "USD".to_owned(),
    };
    let sim_rng = StdRng::seed_from_u64(rng.gen());
    let mut sim = Sim::new(sim_rng, config);
    let mut batch: Vec<EventRow> = Vec::with_capacity(args.batch + 8);
    let mut send = |batch: &mut Vec<EventRow>, force: bool| -> Result<(), BenchError> {
        if batch.len() >= args.batch || (force && !batch.is_empty()) {
            let full = std::mem::replace(batch, Vec::with_capacity(args.batch + 8));
            let t = Instant::now();
            tx.blocking_send(full)
                .map_err(|_| BenchError::Unexpected("the writer stopped".into()))?;
            waiting += t.elapsed();
        }
        Ok(())
    };
    let push = |batch: &mut Vec<EventRow>, commit: Commit| batch.extend(commit);

    // Day 0: vendors; days 1-29: listings; then the orders.
    let start = args.start;
    let vendor_gap = TimeDelta::milliseconds((86_400_000 / args.vendors as i64).max(1));
    for i in 0..args.vendors {
        let at = start + vendor_gap * (i as i32);
        push(&mut batch, sim.register_vendor(at)?);
        send(&mut batch, false)?;
    }
    let listings_from = start + TimeDelta::days(1);
    let listing_gap_ms = (29 * 86_400_000 / args.listings as i64).max(1);
    for i in 0..args.listings {
        let at = listings_from + TimeDelta::milliseconds(listing_gap_ms * i as i64);
        let published_at = at + TimeDelta::milliseconds((listing_gap_ms / 2).min(30_000));
        let vendor = rng.gen_range(0..sim.vendors.len());
        for commit in sim.create_listing(vendor, at, published_at)? {
            push(&mut batch, commit);
        }
        send(&mut batch, false)?;
    }
    let orders_from = start + TimeDelta::days(30);
    let order_gap_ms = (args.span_days.max(1) * 86_400_000 / args.bookings.max(1) as i64).max(2);
    let mut bookings = 0u64;
    for i in 0..args.bookings {
        let placed_at = orders_from + TimeDelta::milliseconds(order_gap_ms * i as i64);
        // Paid within the hold's 15 minutes, before the next order.
        let pay_window = (order_gap_ms * 8 / 10).clamp(1, 600_000);
        let paid_at =
            placed_at + TimeDelta::milliseconds(rng.gen_range(pay_window / 10..=pay_window).max(1));
        if let Some(commits) = sim.book(placed_at, paid_at)? {
            bookings += 1;
            for commit in commits {
                push(&mut batch, commit);
            }
        }
        send(&mut batch, false)?;
    }
    send(&mut batch, true)?;
    Ok(Generated {
        vendors: sim.vendors.len(),
        listings: sim.listings.len(),
        rental_listings: sim.rentals.len(),
        bookings,
        refused: sim.refused,
        retries: sim.retries,
        snapshots: sim.snapshots(),
        busy: busy_from.elapsed().saturating_sub(waiting),
    })
}
