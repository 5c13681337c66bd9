//! `ledger stream reset`: the recovery from a database restored behind its
//! stream (docs/operations.md, "Recovery: a database restored behind its stream").
//!
//! The events table is the truth and the stream is derived from it, so the
//! way back is to derive the stream again. After a restore the relay and
//! the consumers refuse the old stream (`ledger_nats::history`); the reset
//!
//! 1. brings every consumer checkpoint that is ahead of the database's head
//!    back to the head (it counted events this database does not have);
//! 2. sets the relay's position to 0, deletes the stream with its durable
//!    consumers and creates it empty, with the same settings;
//! 3. clears the `stream_mismatch` faults;
//! 4. republishes the events table onto the new stream (a relay of its own,
//!    or the running one, whichever holds the relay's lock);
//! 5. rebuilds every read model from the events table: a read model may
//!    have applied events of the other history (a checkpoint ahead of the
//!    head says so for sure, and a model fed by an earlier version from the
//!    old stream cannot be told apart), and only a rebuild proves it equal
//!    to the log. `--no-rebuild` skips it and prints what to run.
//!
//! The consumers (running or not) then go on from their checkpoints: their
//! durable consumers are created again on the new stream. Running it on a
//! healthy deployment is safe, only slow: everything is published again.

use std::time::Duration;

use async_nats::jetstream::{self, context::GetStreamErrorKind, stream};
use clap::{Args, Subcommand};
use futures::TryStreamExt;
use ledger_nats::faults::{self, relay_component, FaultKind};
use ledger_nats::history::{self, Verdict};
use ledger_nats::{Relay, RelayConfig, StreamSettings};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::settings::DatabaseArgs;
use crate::LedgerError;

#[derive(Subcommand)]
pub enum StreamTask {
    /// Replace the stream with one republished from this database's events
    /// table (after a restore behind the stream), restart the consumers
    /// from their checkpoints and rebuild the read models.
    Reset(ResetArgs),
}

#[derive(Args, Clone, Debug)]
pub struct ResetArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS with JetStream.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// JetStream stream name.
    #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
    pub stream: String,
    /// Replicas of the stream, if it has to be created from nothing.
    #[arg(long, env = "LEDGER_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// Duplicate window of the stream, if it has to be created from nothing.
    #[arg(long, env = "LEDGER_STREAM_DUPLICATE_WINDOW", default_value = "2m", value_parser = humantime::parse_duration)]
    pub stream_duplicate_window: Duration,
    /// Leave the read models as they are; rebuild them later with
    /// `ledger projections rebuild --all`.
    #[arg(long)]
    pub no_rebuild: bool,
}

/// What a reset did.
#[derive(Clone, Debug)]
pub struct ResetReport {
    /// What the old stream was, before the reset.
    pub before: Option<Verdict>,
    /// The database's head: what was republished.
    pub head: i64,
    /// Consumers whose checkpoint was ahead of the head, and where it was.
    pub brought_back: Vec<(String, i64)>,
    /// Messages and durable consumers the old stream had.
    pub deleted_messages: u64,
    pub deleted_consumers: Vec<String>,
    /// Components whose `stream_mismatch` fault was cleared.
    pub cleared: Vec<String>,
    pub rebuilt: bool,
}

/// How long the republish may make no progress before the reset gives up.
const REPUBLISH_STALL: Duration = Duration::from_secs(60);

/// Runs a `ledger stream` subcommand.
pub async fn execute(task: StreamTask) -> Result<(), LedgerError> {
    match task {
        StreamTask::Reset(args) => {
            // Two connections per read model rebuilt at once, and the relay's.
            let pool = crate::connect(&args.database.database_url, 12).await?;
            crate::migrate(&pool).await?;
            // Fails at once if NATS is down, rather than waiting for it.
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .connect(crate::nats_servers(&args.nats_url)?)
                .await
                .map_err(|e| LedgerError::Config(format!("NATS at {}: {e}", args.nats_url)))?;
            let mut settings = StreamSettings::new(args.stream.clone());
            settings.replicas = args.stream_replicas;
            settings.duplicate_window = args.stream_duplicate_window;
            reset(&pool, &client, &settings, !args.no_rebuild).await?;
            Ok(())
        }
    }
}

/// Resets the stream of `settings` to this database's events table (see
/// the module's comment); prints what it does as it goes.
pub async fn reset(
    pool: &PgPool,
    client: &async_nats::Client,
    settings: &StreamSettings,
    rebuild: bool,
) -> Result<ResetReport, LedgerError> {
    let name = settings.name.as_str();
    let js = jetstream::new(client.clone());
    let existing = match js.get_stream(name).await {
        Ok(stream) => Some(stream),
        Err(err) => match err.kind() {
            GetStreamErrorKind::JetStream(e)
                if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                None
            }
            _ => return Err(LedgerError::Config(format!("stream {name}: {err}"))),
        },
    };
    let before = match &existing {
        Some(stream) => Some(history::check(pool, stream).await?),
        None => None,
    };
    let head = event_log::statements::positions::head(pool).await?;
    match &before {
        Some(Verdict::Foreign(mismatch)) => println!("{}", mismatch.detail()),
        Some(Verdict::Ours) => {
            println!("stream {name} belongs to this database (head {head}); resetting it anyway")
        }
        Some(Verdict::Unknown(why)) => {
            println!("stream {name}: cannot tell whose it is ({why}); resetting it")
        }
        None => println!("stream {name} does not exist; created it"),
    }

    let brought_back = bring_back_checkpoints(pool, head).await?;
    for (consumer, was) in &brought_back {
        println!(
            "checkpoint of {consumer} brought back from {was} to {head}: it was ahead of the database"
        );
    }
    let relay_was: Option<i64> = sqlx::query_scalar(
        "WITH old AS (SELECT stream, position FROM relay_positions WHERE stream = $1 FOR UPDATE)
         UPDATE relay_positions r SET position = 0, updated_at = now()
           FROM old WHERE r.stream = old.stream
         RETURNING old.position",
    )
    .bind(name)
    .fetch_optional(pool)
    .await?;
    if let Some(was) = relay_was {
        println!("relay position of {name} reset from {was} to 0");
    }

    let existed = existing.is_some();
    let (deleted_messages, deleted_consumers) = recreate(&js, existing, settings).await?;
    if existed {
        println!(
            "stream {name} deleted ({deleted_messages} messages, durable consumers: {}) and created empty",
            if deleted_consumers.is_empty() {
                "none".to_owned()
            } else {
                deleted_consumers.join(", ")
            }
        );
    }

    let mut cleared = Vec::new();
    let relay = relay_component(name);
    let consumer = faults::consumer_component("");
    for fault in faults::list(pool).await? {
        let ours = fault.component == relay || fault.component.starts_with(&consumer);
        if ours && faults::clear(pool, &fault.component, FaultKind::StreamMismatch).await? {
            cleared.push(fault.component);
        }
    }
    if !cleared.is_empty() {
        println!("faults cleared: {}", cleared.join(", "));
    }

    republish(pool, client, settings, head).await?;
    if head > 0 {
        println!("republished positions 1..={head} from the events table onto {name}");
    }

    if rebuild {
        super::projections::rebuild(pool, name, &[]).await?;
    } else {
        let must: Vec<&str> = brought_back.iter().map(|(n, _)| n.as_str()).collect();
        let foreign = matches!(before, Some(Verdict::Foreign(_)));
        if foreign || !must.is_empty() {
            println!(
                "read models NOT rebuilt: they may hold events of the other history{}; \
                 run `ledger projections rebuild --all`",
                if must.is_empty() {
                    String::new()
                } else {
                    format!(" ({} certainly do)", must.join(", "))
                }
            );
        }
    }
    println!("done: the relay and the consumers go on from this database's log");
    Ok(ResetReport {
        before,
        head,
        brought_back,
        deleted_messages,
        deleted_consumers,
        cleared,
        rebuilt: rebuild,
    })
}

/// Brings every checkpoint ahead of `head` back to it; returns which, and
/// from where.
async fn bring_back_checkpoints(
    pool: &PgPool,
    head: i64,
) -> Result<Vec<(String, i64)>, LedgerError> {
    let mut brought_back: Vec<(String, i64)> = sqlx::query_as(
        "WITH ahead AS (SELECT name, position FROM consumer_checkpoints WHERE position > $1 FOR UPDATE)
         UPDATE consumer_checkpoints c SET position = $1, updated_at = now()
           FROM ahead WHERE c.name = ahead.name
         RETURNING c.name, ahead.position",
    )
    .bind(head)
    .fetch_all(pool)
    .await?;
    brought_back.sort();
    Ok(brought_back)
}

/// Deletes the stream (and with it its durable consumers) and creates it
/// again, empty, with its old settings; returns what it held.
async fn recreate(
    js: &jetstream::Context,
    existing: Option<stream::Stream>,
    settings: &StreamSettings,
) -> Result<(u64, Vec<String>), LedgerError> {
    let nats =
        |e: &dyn std::fmt::Display| LedgerError::Config(format!("stream {}: {e}", settings.name));
    let Some(stream) = existing else {
        ledger_nats::stream::provision(js, settings).await?;
        return Ok((0, Vec::new()));
    };
    let info = stream.get_info().await.map_err(|e| nats(&e))?;
    let mut consumers: Vec<String> = stream
        .consumer_names()
        .try_collect()
        .await
        .map_err(|e| nats(&e))?;
    consumers.sort();
    js.delete_stream(&settings.name)
        .await
        .map_err(|e| nats(&e))?;
    let mut config = info.config.clone();
    // What the server filled in is not for the new stream to inherit.
    config.metadata.clear();
    config.first_sequence = None;
    js.get_or_create_stream(config)
        .await
        .map_err(|e| nats(&e))?;
    Ok((info.state.messages, consumers))
}

/// Runs a relay until the stream holds the log up to `head` (a running
/// relay may do the work instead: only one holds the lock).
async fn republish(
    pool: &PgPool,
    client: &async_nats::Client,
    settings: &StreamSettings,
    head: i64,
) -> Result<(), LedgerError> {
    if head == 0 {
        return Ok(());
    }
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let relay = Relay::new(
        pool.clone(),
        client.clone(),
        RelayConfig::new(settings.clone()),
    );
    let task = tokio::spawn(relay.run(stopped));
    let bar = super::progress_bar(head as u64, "republish");
    let mut last = (0, tokio::time::Instant::now());
    let outcome = loop {
        let published = projectors::checkpoints::published(pool, &settings.name).await?;
        bar.set_position(published.max(0) as u64);
        if published >= head {
            break Ok(());
        }
        if published != last.0 {
            last = (published, tokio::time::Instant::now());
        } else if last.1.elapsed() > REPUBLISH_STALL {
            break Err(LedgerError::Config(format!(
                "republishing onto {} made no progress for {} s (at position {published} of {head}); \
                 is NATS reachable? run the reset again",
                settings.name,
                REPUBLISH_STALL.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bar.finish_and_clear();
    stop.cancel();
    if tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .is_err()
    {
        tracing::warn!("the reset's relay did not stop within 10 s");
    }
    outcome
}
