//! The projector runner (DESIGN.md "NATS", "Order is the trap"): a batch
//! and its checkpoint commit together, what is at or below the checkpoint
//! is skipped, nothing is applied past a missing event, and a quiet stream
//! is caught up from the events table. Then invariant 5: the live read
//! models equal a rebuild from the log.
//!
//! A recording consumer writes every event it is given into a table, in
//! the order it was given, so that "once" and "in order" can be counted.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::future::BoxFuture;
use futures::StreamExt;
use ledger_nats::{EventEnvelope, StreamSettings};
use ledger_tests::events::head;
use ledger_tests::pipeline::checkpoint;
use ledger_tests::pipeline::{
    commit_probes, envelopes, eventually, insert_probe, relay_position, set_relay_position,
    RelayTask, PROBE,
};
use ledger_tests::stream::{nats_client, wait_for_stream_count};
use ledger_tests::{at, fresh_database, fresh_stream_name, TestApp};
use projectors::rebuild::{
    apply_until, create_schema, differences, rebuild_into, READ_MODEL_TABLES,
};
use projectors::{Consumer, Runner, RunnerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Records every event it applies into `test_applied`, in order.
struct Recorder;

const RECORDER: &str = "recorder";

impl Consumer for Recorder {
    fn name(&self) -> &'static str {
        RECORDER
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), projectors::Error>> {
        Box::pin(async move {
            for event in events {
                sqlx::query(
                    "INSERT INTO test_applied (position, event_id, aggregate_id, sequence)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(event.position)
                .bind(event.event_id)
                .bind(&event.aggregate_id)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })
    }
}

/// A fresh database with the recorder's table.
async fn recording_database() -> PgPool {
    let (pool, _name) = fresh_database().await.expect("a database");
    sqlx::query(
        "CREATE TABLE test_applied (
             applied      bigserial PRIMARY KEY,
             position     bigint NOT NULL,
             event_id     uuid   NOT NULL,
             aggregate_id text   NOT NULL,
             sequence     bigint NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create test_applied");
    pool
}

/// Positions the recorder applied, in the order it applied them.
async fn applied(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM test_applied ORDER BY applied")
        .fetch_all(pool)
        .await
        .expect("read test_applied")
}

async fn runner(pool: &PgPool, stream: &str) -> Runner {
    runner_with(pool, stream, |_| {}).await
}

async fn runner_with(
    pool: &PgPool,
    stream: &str,
    configure: impl FnOnce(&mut RunnerConfig),
) -> Runner {
    let mut config = RunnerConfig::new(StreamSettings::new(stream));
    config.idle_check = Duration::from_millis(200);
    configure(&mut config);
    Runner::new(
        pool.clone(),
        nats_client().await,
        config,
        Arc::new(Recorder),
    )
}

/// A runner running as a task.
struct RunnerTask {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RunnerTask {
    async fn start(pool: &PgPool, stream: &str) -> RunnerTask {
        Self::start_runner(runner(pool, stream).await)
    }

    fn start_runner(runner: Runner) -> RunnerTask {
        let shutdown = CancellationToken::new();
        let receiver = shutdown.clone();
        let task = tokio::spawn(runner.run(receiver));
        RunnerTask { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the runner stops within 10 s")
            .expect("the runner does not panic");
    }

    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Every committed position, ascending.
async fn positions_in_table(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT global_position FROM events ORDER BY global_position")
        .fetch_all(pool)
        .await
        .expect("read events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_already_applied_in_an_overlapping_batch_are_skipped() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let runner = runner(&pool, &stream).await;
    let positions = commit_probes(&pool, "overlap", 1, 10).await;
    let events = envelopes(&pool, positions[0], positions[9]).await;
    assert_eq!(events.len(), 10);

    let reached = runner
        .apply_batch(events[..6].to_vec())
        .await
        .expect("apply");
    assert_eq!(reached, positions[5]);
    assert_eq!(applied(&pool).await, positions[..6]);

    let reached = runner
        .apply_batch(events[3..].to_vec())
        .await
        .expect("apply");
    assert_eq!(reached, positions[9]);
    assert_eq!(
        applied(&pool).await,
        positions,
        "each position applied once, in order"
    );

    // A whole redelivery changes nothing.
    let reached = runner.apply_batch(events.clone()).await.expect("apply");
    assert_eq!(reached, positions[9]);
    let reached = runner
        .apply_batch(events[2..5].to_vec())
        .await
        .expect("apply");
    assert_eq!(reached, positions[9]);
    assert_eq!(applied(&pool).await, positions);
    assert_eq!(checkpoint(&pool, RECORDER).await, positions[9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_batch_first_fills_the_missing_events_from_the_table_and_the_late_redelivery_is_skipped(
) {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let runner = runner(&pool, &stream).await;
    // A rolled-back position inside the range: a hole that is no event.
    let mut positions = commit_probes(&pool, "late", 1, 4).await;
    let mut doomed = pool.begin().await.expect("begin");
    let (rolled_back, _) = insert_probe(&mut doomed, "doomed", 1)
        .await
        .expect("insert");
    doomed.rollback().await.expect("rollback");
    positions.extend(commit_probes(&pool, "late", 5, 6).await);
    let events = envelopes(&pool, positions[0], positions[9]).await;
    assert_eq!(events.len(), 10);

    // Positions 6..10 arrive first: 1..5 are missing from the batch.
    let reached = runner
        .apply_batch(events[5..].to_vec())
        .await
        .expect("apply");
    assert_eq!(reached, positions[9]);
    assert_eq!(
        applied(&pool).await,
        positions,
        "the runner filled the missing events, in order, before the later ones"
    );
    assert!(!applied(&pool).await.contains(&rolled_back));

    // The late redelivery of 1..5 is skipped.
    let reached = runner
        .apply_batch(events[..5].to_vec())
        .await
        .expect("apply");
    assert_eq!(reached, positions[9]);
    assert_eq!(applied(&pool).await, positions);

    // Holes in the middle of a batch are filled too.
    let more = commit_probes(&pool, "late", 11, 5).await;
    let tail = envelopes(&pool, more[0], more[4]).await;
    let reached = runner
        .apply_batch(vec![tail[4].clone(), tail[1].clone()])
        .await
        .expect("apply");
    assert_eq!(reached, more[4]);
    assert_eq!(applied(&pool).await, [positions, more.clone()].concat());
    assert_eq!(checkpoint(&pool, RECORDER).await, more[4]);
}

/// Writer `w` commits `target` events of its aggregates in transactions of
/// 1–3 events held open 0–10 ms, rolling back about one in ten.
async fn write(pool: PgPool, w: usize, target: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next = [1i64; 3];
    let mut committed = 0;
    while committed < target {
        let k = rng.gen_range(0..3);
        let count = rng.gen_range(1..=3i64);
        let mut tx = pool.begin().await.expect("begin");
        for i in 0..count {
            insert_probe(&mut tx, &format!("{w}-{k}"), next[k] + i)
                .await
                .expect("insert");
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=10))).await;
        if rng.gen_bool(0.1) {
            tx.rollback().await.expect("rollback");
        } else {
            tx.commit().await.expect("commit");
            next[k] += count;
            committed += count as usize;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_a_real_stream_every_event_is_applied_once_in_order_across_a_runner_restart() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let first = RunnerTask::start(&pool, &stream).await;

    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(write(pool.clone(), w, 250, 0xabc0 + w as u64)))
        .collect();
    // Kill the runner once it is part of the way through.
    assert!(
        eventually(Duration::from_secs(20), || async {
            applied(&pool).await.len() >= 100
        })
        .await,
        "the runner applied {} events in 20 s",
        applied(&pool).await.len()
    );
    first.kill().await;
    let second = RunnerTask::start(&pool, &stream).await;
    for writer in writers {
        writer.await.expect("a writer finishes");
    }
    let committed = positions_in_table(&pool).await;
    assert!(committed.len() >= 1_000, "{} committed", committed.len());
    let last = *committed.last().expect("events");
    let reached = eventually(Duration::from_secs(30), || async {
        checkpoint(&pool, RECORDER).await >= last
    })
    .await;
    assert!(
        reached,
        "checkpoint {} (relay at {:?}) never reached {last}",
        checkpoint(&pool, RECORDER).await,
        relay_position(&pool, &stream).await
    );
    // Redeliveries after the restart are still to come: give them time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        applied(&pool).await,
        committed,
        "every committed event applied exactly once, in position order"
    );
    let per_aggregate: Vec<(String, Vec<i64>)> = sqlx::query_as(
        "SELECT aggregate_id, array_agg(sequence ORDER BY applied) FROM test_applied
          GROUP BY aggregate_id",
    )
    .fetch_all(&pool)
    .await
    .expect("read test_applied");
    for (aggregate, sequences) in per_aggregate {
        let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
        assert_eq!(sequences, expected, "aggregate {aggregate}");
    }
    second.stop().await;
    relay.stop().await;
}

/// A runner instance that died after taking messages 1..20 from the durable
/// consumer, unacknowledged: the next instance receives 21.. first. It must
/// not apply them past the missing 1..20 (it reads those from the table),
/// and nothing is applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_receiving_newer_messages_while_older_ones_are_in_flight_elsewhere_applies_them_in_order(
) {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let positions = commit_probes(&pool, "in-flight", 1, 50).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 50, Duration::from_secs(10)).await,
        50
    );
    let js = jetstream::new(client.clone());
    let durable = format!("{stream}_{RECORDER}");
    let consumer = js
        .get_stream(&stream)
        .await
        .expect("the stream")
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("the durable consumer");
    let mut taken = consumer
        .fetch()
        .max_messages(20)
        .messages()
        .await
        .expect("fetch");
    let mut held = Vec::new();
    while let Some(message) = taken.next().await {
        held.push(message.expect("a message"));
    }
    assert_eq!(held.len(), 20);

    let task = RunnerTask::start(&pool, &stream).await;
    let more = commit_probes(&pool, "in-flight", 51, 30).await;
    let last = more[29];
    let reached = eventually(Duration::from_secs(15), || async {
        checkpoint(&pool, RECORDER).await == last
    })
    .await;
    assert!(reached, "checkpoint {}", checkpoint(&pool, RECORDER).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(applied(&pool).await, [positions, more].concat());
    drop(held);
    task.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_of_one_consumer_share_the_stream_and_still_apply_each_event_once_in_order() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let a = RunnerTask::start(&pool, &stream).await;
    let b = RunnerTask::start(&pool, &stream).await;
    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(write(pool.clone(), w, 150, 0xbee0 + w as u64)))
        .collect();
    for writer in writers {
        writer.await.expect("a writer finishes");
    }
    let committed = positions_in_table(&pool).await;
    let last = *committed.last().expect("events");
    let reached = eventually(Duration::from_secs(30), || async {
        checkpoint(&pool, RECORDER).await >= last
    })
    .await;
    assert!(reached, "checkpoint {}", checkpoint(&pool, RECORDER).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(applied(&pool).await, committed);
    a.stop().await;
    b.stop().await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_never_reach_the_stream_are_applied_by_catch_up_up_to_the_published_position() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let runner = runner(&pool, &stream).await;
    // No relay: the events stay in the table, and the relay's position is
    // set by hand, as if it had published them and the stream lost them.
    let mut positions = commit_probes(&pool, "quiet", 1, 20).await;
    let mut doomed = pool.begin().await.expect("begin");
    let (rolled_back, _) = insert_probe(&mut doomed, "doomed", 1)
        .await
        .expect("insert");
    doomed.rollback().await.expect("rollback");
    set_relay_position(&pool, &stream, rolled_back).await;

    runner.catch_up().await.expect("catch up");
    assert_eq!(applied(&pool).await, positions);
    // Only rolled-back positions were left: the checkpoint moves over them.
    assert_eq!(checkpoint(&pool, RECORDER).await, rolled_back);

    // Events beyond the published position are not final yet: not applied.
    let unpublished = commit_probes(&pool, "quiet", 21, 5).await;
    runner.catch_up().await.expect("catch up");
    assert_eq!(applied(&pool).await, positions);
    set_relay_position(&pool, &stream, unpublished[4]).await;
    runner.catch_up().await.expect("catch up");
    positions.extend(&unpublished);
    assert_eq!(applied(&pool).await, positions);
    assert_eq!(checkpoint(&pool, RECORDER).await, unpublished[4]);

    // The running runner does the same on its own while the stream is quiet.
    let task = RunnerTask::start(&pool, &stream).await;
    let later = commit_probes(&pool, "quiet", 26, 30).await;
    set_relay_position(&pool, &stream, later[29]).await;
    let caught_up = eventually(Duration::from_secs(10), || async {
        checkpoint(&pool, RECORDER).await == later[29]
    })
    .await;
    assert!(caught_up, "the idle runner never caught up from the table");
    positions.extend(&later);
    assert_eq!(applied(&pool).await, positions);
    task.stop().await;
}

/// Waits until the relay has published the whole log and both read models
/// have applied it, and it stays so (policies may still be reacting).
async fn wait_for_quiet_pipeline(app: &TestApp) {
    let settled = eventually(Duration::from_secs(30), || async {
        let head = head(&app.pool).await;
        let published = relay_position(&app.pool, &app.stream).await.unwrap_or(0);
        let availability = checkpoint(&app.pool, projectors::availability::NAME).await;
        let orders = checkpoint(&app.pool, projectors::orders::NAME).await;
        if !(published == head && availability == head && orders == head) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        head == ledger_tests::events::head(&app.pool).await
            && checkpoint(&app.pool, projectors::orders::NAME).await == head
            && checkpoint(&app.pool, projectors::availability::NAME).await == head
    })
    .await;
    assert!(
        settled,
        "head {}, relay {:?}, availability {}, orders {}",
        head(&app.pool).await,
        relay_position(&app.pool, &app.stream).await,
        checkpoint(&app.pool, projectors::availability::NAME).await,
        checkpoint(&app.pool, projectors::orders::NAME).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_from_the_log_equals_the_live_read_models_and_the_check_can_fail() {
    let app = TestApp::spawn().await;
    let boats = app.register_vendor("Boats").await;
    let gear = app.register_vendor("Gear").await;
    let kayak = app.rental_listing(boats, "day", "30.00", "20.00", 2).await;
    let canoe = app.rental_listing(boats, "hour", "7.50", "0.00", 1).await;
    let paddle = app.sale_listing(gear, "12.25", 10).await;

    let paid = app
        .place(
            "alice",
            json!([
                {"listing_id": kayak, "quantity": 1, "start": at(1, 0), "end": at(3, 0)},
                {"listing_id": paddle, "quantity": 2}
            ]),
        )
        .await;
    app.pay(&paid).await;
    let cancelled = app
        .place(
            "bob",
            json!([{"listing_id": canoe, "quantity": 1, "start": at(2, 9), "end": at(2, 12)}]),
        )
        .await;
    let cancel = app
        .cancel_order(
            &app.customer("bob"),
            cancelled.uuid("order_id"),
            json!({"reason": "changed plans"}),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    let refunded = app
        .place(
            "carol",
            json!([{"listing_id": kayak, "quantity": 1, "start": at(5, 0), "end": at(6, 0)}]),
        )
        .await;
    app.pay(&refunded).await;
    let cancel = app
        .cancel_order(
            &app.customer("carol"),
            refunded.uuid("order_id"),
            json!({"reason": "weather"}),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    let _unpaid = app
        .place("dave", json!([{"listing_id": paddle, "quantity": 3}]))
        .await;

    wait_for_quiet_pipeline(&app).await;
    for table in ["rm_listings", "rm_allocations", "rm_orders"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .expect("count rows");
        assert!(rows > 0, "{table} is empty: nothing to compare");
    }

    let read_models = projectors::read_models();
    let applied = rebuild_into(&app.pool, &app.stream, "rebuild_t", &read_models)
        .await
        .expect("rebuild");
    assert!(applied > 0);
    for table in READ_MODEL_TABLES {
        let differ = differences(&app.pool, "rebuild_t", table)
            .await
            .expect("compare");
        assert_eq!(
            differ, 0,
            "{table}: live and rebuilt differ in {differ} rows"
        );
    }

    // A rebuild whose models stand at different positions (two went half
    // way first): the shared read of the log skips, per model, what it has
    // applied, and the result is the same.
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("the head");
    create_schema(&app.pool, "rebuild_s").await.expect("schema");
    let half: Vec<_> = read_models
        .iter()
        .filter(|m| ["availability", "ledger"].contains(&m.name()))
        .cloned()
        .collect();
    apply_until(&app.pool, "rebuild_s", &half, head / 2, |_, _| {})
        .await
        .expect("half way");
    let mut slowest = Vec::new();
    apply_until(&app.pool, "rebuild_s", &read_models, head, |_, position| {
        slowest.push(position)
    })
    .await
    .expect("the rest");
    assert_eq!(slowest.last(), Some(&head), "{slowest:?}");
    for table in READ_MODEL_TABLES {
        let differ = differences(&app.pool, "rebuild_s", table)
            .await
            .expect("compare");
        assert_eq!(
            differ, 0,
            "{table}: staggered rebuild differs in {differ} rows"
        );
    }

    // The comparison sees a corrupted live row.
    sqlx::query("UPDATE rm_listings SET title = 'x' WHERE listing_id = $1")
        .bind(kayak)
        .execute(&app.pool)
        .await
        .expect("corrupt a row");
    let differ = differences(&app.pool, "rebuild_t", "rm_listings")
        .await
        .expect("compare");
    assert_eq!(differ, 2, "one row each way");
    app.stop().await;
}

/// A graceful shutdown does not wait for a long catch-up to finish: the
/// runner stops between batches, and the next start goes on from the
/// checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_catching_up_a_large_backlog_stops_between_batches_when_asked() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    write_backlog(&pool, "backlog", 100_000).await;
    let head = head(&pool).await;
    set_relay_position(&pool, &stream, head).await;

    let task = RunnerTask::start(&pool, &stream).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            checkpoint(&pool, RECORDER).await > 0
        })
        .await,
        "the catch-up never started"
    );
    let asked = tokio::time::Instant::now();
    task.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), task.task)
        .await
        .expect("the runner stops within 3 s of being asked, mid catch-up")
        .expect("the runner does not panic");
    let stopped_at = checkpoint(&pool, RECORDER).await;
    assert!(
        stopped_at < head,
        "the backlog was done before the stop ({:?}): nothing was tested",
        asked.elapsed()
    );
    // Everything applied so far is applied once, in order.
    let applied = applied(&pool).await;
    assert_eq!(applied.len() as i64, stopped_at - (head - 100_000));
    assert!(applied.windows(2).all(|w| w[0] < w[1]));
}

/// Writes `count` probe events of one aggregate in one statement.
async fn write_backlog(pool: &PgPool, aggregate: &str, count: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT $1, $2, n, 'Probed', '1.0', json_build_object('Probed', json_build_object('n', n)), '{}'
           FROM generate_series(1, $3) AS n",
    )
    .bind(PROBE)
    .bind(aggregate)
    .bind(count)
    .execute(pool)
    .await
    .expect("write a backlog");
}

/// Waits (up to a minute) for the recorder's checkpoint to reach the head,
/// then checks that it applied every committed event once, in order.
async fn assert_applied_once_in_order_up_to_the_head(pool: &PgPool) {
    let last = head(pool).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            checkpoint(pool, RECORDER).await >= last
        })
        .await,
        "checkpoint {} never reached {last}",
        checkpoint(pool, RECORDER).await
    );
    assert_eq!(
        applied(pool).await,
        positions_in_table(pool).await,
        "every event applied once, in order"
    );
}

/// How many messages the recorder's durable consumer has delivered since
/// it was created.
async fn delivered_by_durable(client: &async_nats::Client, stream: &str) -> u64 {
    let js = jetstream::new(client.clone());
    let stream_handle = js.get_stream(stream).await.expect("the stream");
    stream_handle
        .consumer_info(format!("{stream}_{RECORDER}"))
        .await
        .expect("the durable consumer")
        .delivered
        .consumer_sequence
}

/// A new consumer (or one whose checkpoint a rebuild moved far ahead) on a
/// stream that already holds a large backlog reads the backlog from the
/// table and starts its durable consumer at the tail, instead of receiving
/// and skipping every message the stream holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_starting_far_behind_the_stream_takes_the_backlog_from_the_table() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    write_backlog(&pool, "backlog", 30_000).await;
    let relay = RelayTask::start(&pool, &client, &stream);
    assert_eq!(
        wait_for_stream_count(&client, &stream, 30_000, Duration::from_secs(60)).await,
        30_000,
        "the relay published the backlog"
    );

    let task = RunnerTask::start(&pool, &stream).await;
    write_backlog(&pool, "after", 1).await;
    assert_applied_once_in_order_up_to_the_head(&pool).await;
    let delivered = delivered_by_durable(&client, &stream).await;
    assert!(
        delivered < 1_000,
        "the durable consumer delivered {delivered} messages: it started at the stream's head, not at its tail"
    );
    task.stop().await;
    relay.stop().await;
}

/// A running consumer that finds itself far behind the stream (the relay
/// publishing a backlog faster than it takes it) catches up from the table
/// and restarts its durable consumer at the tail; still each event once, in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_consumer_far_behind_the_stream_catches_up_from_the_table() {
    let pool = recording_database().await;
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let task = RunnerTask::start_runner(
        runner_with(&pool, &stream, |config| config.reposition_pending = 1_000).await,
    );
    write_backlog(&pool, "first", 1).await;
    let first = head(&pool).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            checkpoint(&pool, RECORDER).await >= first
        })
        .await,
        "the first event was never applied"
    );

    write_backlog(&pool, "flood", 20_000).await;
    assert_applied_once_in_order_up_to_the_head(&pool).await;
    let delivered = delivered_by_durable(&client, &stream).await;
    assert!(
        delivered < 20_000,
        "the durable consumer delivered {delivered} messages: it took the whole flood through NATS"
    );
    task.stop().await;
    relay.stop().await;
}
