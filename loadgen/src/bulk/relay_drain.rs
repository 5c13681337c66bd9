//! `ledger-bench relay-drain`: the relay (the code `ledger relay` runs)
//! publishing a backlog into a fresh stream, then, optionally, the commit →
//! published latency while events are written at a steady rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer};
use chrono::{TimeDelta, Utc};
use event_log::statements::positions;
use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_nats::{CommitNotifier, EventEnvelope, Relay, RelayConfig, StreamSettings};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::sim::{Sim, SimConfig};
use super::store;
use crate::BenchError;

#[derive(clap::Args, Debug, Clone)]
pub struct RelayDrainArgs {
    /// A seeded database whose events were never published to this stream.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Stream to publish into: deleted first if it exists, and at the end.
    #[arg(long)]
    pub stream: String,
    /// Keep the stream (and the relay's position) at the end.
    #[arg(long)]
    pub keep_stream: bool,
    /// After the drain, write this many events per second (bookings through
    /// the domain, one transaction per command) and measure commit →
    /// published latency.
    #[arg(long)]
    pub steady_rate: Option<f64>,
    /// Length of the steady phase.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Concurrent writers in the steady phase (each owns its listings, so
    /// each aggregate's commands stay in order, as the bus's locks keep them).
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Rental listings each writer creates for its bookings.
    #[arg(long, default_value_t = 32)]
    pub listings_per_writer: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

fn nats_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Nats(e.to_string())
}

async fn published(pool: &PgPool, stream: &str) -> Result<i64, BenchError> {
    Ok(projectors::checkpoints::published(pool, stream).await?)
}

async fn head(pool: &PgPool) -> Result<i64, BenchError> {
    Ok(positions::head(pool).await?)
}

/// Waits until the relay's stored position reaches `target`, showing
/// progress from `from`; fails when it stops moving for a minute.
async fn wait_for(
    pool: &PgPool,
    stream: &str,
    target: i64,
    bar: Option<&ProgressBar>,
) -> Result<(), BenchError> {
    let mut last = -1;
    let mut moved = Instant::now();
    loop {
        let position = published(pool, stream).await?;
        if let Some(bar) = bar {
            bar.set_position(position.max(0) as u64);
        }
        if position >= target {
            return Ok(());
        }
        if position != last {
            last = position;
            moved = Instant::now();
        } else if moved.elapsed() > Duration::from_secs(60) {
            return Err(BenchError::Unexpected(format!(
                "the relay stopped at position {position} (target {target}) for a minute"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(args: RelayDrainArgs) -> Result<(), BenchError> {
    let pool = PgPoolOptions::new()
        .max_connections((args.writers as u32).max(1) + 8)
        .connect(&args.database_url)
        .await?;
    let client = async_nats::connect(&args.nats_url)
        .await
        .map_err(nats_error)?;
    let js = jetstream::new(client.clone());
    forget_stream(&js, &pool, &args.stream).await?;

    let target = head(&pool).await?;
    let backlog = positions::count(&pool).await?;

    let stop_tx = CancellationToken::new();
    let stop_rx = stop_tx.clone();
    let settings = StreamSettings::new(args.stream.clone());
    let relay = Relay::new(pool.clone(), client.clone(), RelayConfig::new(settings));
    let started = Instant::now();
    let relay_task = tokio::spawn(relay.run(stop_rx));

    let bar = ProgressBar::new(target.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template("relay {bar:40} {pos}/{len} positions {per_sec} eta {eta}")
            .map_err(|e| BenchError::Config(e.to_string()))?,
    );
    let drained = wait_for(&pool, &args.stream, target, Some(&bar)).await;
    bar.finish_and_clear();
    let outcome = match drained {
        Ok(()) => {
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            let mut stream = js.get_stream(&args.stream).await.map_err(nats_error)?;
            let info = stream.info().await.map_err(nats_error)?;
            println!(
                "relay drain: {backlog} events (positions 1..={target}) published in {seconds:.1} s: {:.0} events/s; stream {} holds {} messages, {:.1} MB",
                backlog as f64 / seconds,
                args.stream,
                info.state.messages,
                info.state.bytes as f64 / 1e6
            );
            match args.steady_rate {
                Some(rate) => steady(&args, &pool, &js, rate).await,
                None => Ok(()),
            }
        }
        Err(err) => Err(err),
    };

    stop_tx.cancel();
    let _ = relay_task.await;
    if !args.keep_stream {
        forget_stream(&js, &pool, &args.stream).await?;
    }
    outcome
}

/// Deletes the stream, if it exists, and the relay's position for it, so
/// that the next relay starts from the first event.
async fn forget_stream(
    js: &jetstream::Context,
    pool: &PgPool,
    stream: &str,
) -> Result<(), BenchError> {
    if js.get_stream(stream).await.is_ok() {
        js.delete_stream(stream).await.map_err(nats_error)?;
    }
    sqlx::query("DELETE FROM relay_positions WHERE stream = $1")
        .bind(stream)
        .execute(pool)
        .await?;
    Ok(())
}

/// What the subscriber saw of one message.
struct Seen {
    msg_id: String,
    received: SystemTime,
    stored: Option<SystemTime>,
    recorded_at: Option<SystemTime>,
}

fn system_time_from_nanos(nanos: i128) -> Option<SystemTime> {
    let nanos = u64::try_from(nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_nanos(nanos))
}

async fn steady(
    args: &RelayDrainArgs,
    pool: &PgPool,
    js: &jetstream::Context,
    rate: f64,
) -> Result<(), BenchError> {
    if rate <= 0.0 || args.writers == 0 || args.listings_per_writer == 0 {
        return Err(BenchError::Config(
            "--steady-rate, --writers and --listings-per-writer must be positive".into(),
        ));
    }
    // Writers wake the relay as the command API's do: through a notifier
    // whose task turns bursts of commits into notifications.
    let notifier = CommitNotifier::new();
    let notifier_stop = CancellationToken::new();
    let notifier_stopped = notifier_stop.clone();
    let notifier_task = tokio::spawn(notifier.clone().run(pool.clone(), notifier_stopped));
    // Set-up, not measured: each writer's vendor and listings.
    let mut sims = Vec::with_capacity(args.writers);
    for w in 0..args.writers {
        let config = SimConfig {
            sale_share: 0.0,
            hourly_share: 0.2,
            horizon_days: 365,
            customers: 10_000,
            rates: domain::Rates::default(),
            currency: "USD".to_owned(),
        };
        let mut sim = Sim::new(
            StdRng::seed_from_u64(args.seed.wrapping_add(1_000 + w as u64)),
            config,
        );
        let now = Utc::now();
        store::commit_live(pool, &notifier, &sim.register_vendor(now)?).await?;
        for _ in 0..args.listings_per_writer {
            let now = Utc::now();
            for commit in sim.create_listing(0, now, now + TimeDelta::milliseconds(3))? {
                store::commit_live(pool, &notifier, &commit).await?;
            }
        }
        sims.push(sim);
    }
    let setup_head = head(pool).await?;
    wait_for(pool, &args.stream, setup_head, None).await?;

    // The subscriber: an ordered consumer of what is stored from now on.
    let stream = js.get_stream(&args.stream).await.map_err(nats_error)?;
    let ordered = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(nats_error)?;
    let mut messages = ordered.messages().await.map_err(nats_error)?;
    let sub_stop_tx = CancellationToken::new();
    let sub_stop_rx = sub_stop_tx.clone();
    let received_count = Arc::new(AtomicU64::new(0));
    let counter = received_count.clone();
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = sub_stop_rx.cancelled() => break,
            };
            let Some(Ok(message)) = next else { break };
            let received = SystemTime::now();
            let msg_id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            let stored = message
                .info()
                .ok()
                .and_then(|i| system_time_from_nanos(i.published.unix_timestamp_nanos()));
            let recorded_at = EventEnvelope::decode(&message.payload)
                .ok()
                .and_then(|e| e.recorded_at.timestamp_nanos_opt())
                .and_then(|n| system_time_from_nanos(i128::from(n)));
            counter.fetch_add(1, Ordering::Relaxed);
            seen.push(Seen {
                msg_id,
                received,
                stored,
                recorded_at,
            });
        }
        seen
    });

    // The writers: bookings of five events in four transactions each.
    let bookings_per_second = rate / 5.0 / args.writers as f64;
    let interval = Duration::from_secs_f64(1.0 / bookings_per_second);
    let duration = Duration::from_secs(args.seconds);
    let commits: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut sim in sims {
        let pool = pool.clone();
        let commits = commits.clone();
        let notifier = notifier.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut written = 0u64;
            let mut k = 0u32;
            loop {
                let due = started + interval * k;
                // Stops at the end of the phase even when behind schedule:
                // the rate reported is the one achieved.
                if due.duration_since(started) >= duration || started.elapsed() >= duration {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                k += 1;
                let now = Utc::now();
                let Some(booking) = sim.book(now, now + TimeDelta::milliseconds(1))? else {
                    continue;
                };
                for commit in booking {
                    store::commit_live(&pool, &notifier, &commit).await?;
                    let at = SystemTime::now();
                    for row in &commit {
                        mine.push((
                            ledger_nats::message_id(
                                row.aggregate_type,
                                &row.aggregate_id,
                                row.sequence,
                            ),
                            at,
                        ));
                    }
                    written += commit.len() as u64;
                }
            }
            commits.lock().await.extend(mine);
            Ok::<u64, BenchError>(written)
        }));
    }
    let mut written = 0u64;
    for task in tasks {
        written += task
            .await
            .map_err(|e| BenchError::Unexpected(format!("writer: {e}")))??;
    }
    let wrote_for = started.elapsed();
    let final_head = head(pool).await?;
    wait_for(pool, &args.stream, final_head, None).await?;
    notifier_stop.cancel();
    let _ = notifier_task.await;
    // Let the subscriber take the last messages.
    let deadline = Instant::now() + Duration::from_secs(10);
    while received_count.load(Ordering::Relaxed) < written && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sub_stop_tx.cancel();
    let commits = commits.lock().await;
    let seen = subscriber
        .await
        .map_err(|e| BenchError::Unexpected(format!("subscriber: {e}")))?;

    let mut to_received = histogram()?;
    let mut to_stored = histogram()?;
    let mut recorded_to_received = histogram()?;
    let mut matched = 0u64;
    let mut early = 0u64;
    for s in &seen {
        let Some(committed) = commits.get(&s.msg_id) else {
            continue;
        };
        matched += 1;
        record(&mut to_received, *committed, s.received, &mut early);
        if let Some(stored) = s.stored {
            record(&mut to_stored, *committed, stored, &mut early);
        }
        if let Some(recorded) = s.recorded_at {
            let mut ignore = 0;
            record(&mut recorded_to_received, recorded, s.received, &mut ignore);
        }
    }
    let seconds = wrote_for.as_secs_f64().max(0.001);
    println!(
        "steady phase: {written} events in {seconds:.1} s ({:.0} events/s, asked {rate:.0}) by {} writers, one transaction per command; {matched} of them received by the subscriber",
        written as f64 / seconds,
        args.writers
    );
    print_latency(
        "  commit returned -> subscriber received (ordered JetStream consumer)",
        &to_received,
    );
    print_latency(
        "  commit returned -> stored by JetStream (message timestamp)",
        &to_stored,
    );
    print_latency(
        "  recorded_at (insert time in PostgreSQL) -> subscriber received",
        &recorded_to_received,
    );
    if early > 0 {
        println!(
            "  ({early} samples arrived before the writer saw its commit return; counted as 0)"
        );
    }
    if matched < written {
        return Err(BenchError::Check(format!(
            "the subscriber received {matched} of the {written} events written"
        )));
    }
    Ok(())
}

fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| BenchError::Config(e.to_string()))
}

fn record(h: &mut Histogram<u64>, from: SystemTime, to: SystemTime, early: &mut u64) {
    let micros = match to.duration_since(from) {
        Ok(d) => d.as_micros() as u64,
        Err(_) => {
            *early += 1;
            0
        }
    };
    h.saturating_record(micros.max(1));
}

fn print_latency(label: &str, h: &Histogram<u64>) {
    if h.is_empty() {
        println!("{label}: no samples");
        return;
    }
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "{label}: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    );
}
