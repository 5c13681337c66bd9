//! The checks every fault test ends with: the read models equal a rebuild
//! from the log, the stream holds the log exactly once, and the waits for
//! the load and the relay on the way.

use super::*;

/// Every read model equals a fresh rebuild from the events table, and
/// nothing was lost or applied twice.
pub(super) async fn assert_read_models_match_the_log(pipeline: &Pipeline, label: &str) {
    let pool = &pipeline.app.pool;
    let stream = &pipeline.app.stream;
    let started = Instant::now();
    eprintln!(
        "[{label}] load stopped at position {}: relay at {}, checkpoints {:?}",
        head(pool).await,
        published(pool, stream).await,
        checkpoints(pool).await
    );
    let head = wait_converged(pool, stream, Duration::from_secs(90)).await;
    let events = scalar(pool, "SELECT count(*) FROM events").await;
    eprintln!(
        "[{label}] converged at position {head} ({events} events) in {:?}",
        started.elapsed()
    );

    let schema = format!("rebuild_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let rebuilt = rebuild_into(pool, stream, &schema, &projectors::read_models())
        .await
        .expect("rebuild the read models");
    assert!(rebuilt > 0, "the rebuild applied events");
    for table in READ_MODEL_TABLES {
        let diff = differences(pool, &schema, table)
            .await
            .expect("compare with the rebuild");
        assert_eq!(
            diff, 0,
            "[{label}] {table} differs from a fresh rebuild in {diff} rows"
        );
    }

    // Independently of the projectors' code: counts the log implies.
    let orders = scalar(pool, "SELECT count(*) FROM rm_orders").await;
    let placed = scalar(
        pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND event_type = 'OrderPlaced'",
    )
    .await;
    assert_eq!(
        orders, placed,
        "[{label}] one rm_orders row per OrderPlaced"
    );

    let allocations = scalar(pool, "SELECT count(*) FROM rm_allocations").await;
    let expected_allocations = scalar(
        pool,
        "SELECT count(*) FILTER (WHERE event_type IN ('HoldPlaced', 'BlackoutAdded'))
              - count(*) FILTER (WHERE event_type = 'BlackoutRemoved')
           FROM events WHERE aggregate_type = 'Inventory'",
    )
    .await;
    assert_eq!(
        allocations, expected_allocations,
        "[{label}] rm_allocations rows = holds + blackouts added - removed"
    );

    // Each order's document was last written by its last event, and holds
    // each payment event once.
    let stale = scalar(
        pool,
        "SELECT count(*) FROM rm_orders o
           JOIN (SELECT aggregate_id, max(global_position) AS last FROM events
                  WHERE aggregate_type = 'Order' GROUP BY aggregate_id) e
             ON e.aggregate_id = o.order_id::text
          WHERE (o.document->>'position')::bigint <> e.last",
    )
    .await;
    assert_eq!(stale, 0, "[{label}] orders not at their last event");
    let payments = scalar(
        pool,
        "SELECT coalesce(sum(jsonb_array_length(document->'payments')), 0)::bigint FROM rm_orders",
    )
    .await;
    let payment_events = scalar(
        pool,
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order'
            AND event_type IN ('PaymentCaptured', 'PaymentFailed', 'PaymentAmountMismatch',
                               'PaymentUnapplied')",
    )
    .await;
    assert_eq!(
        payments, payment_events,
        "[{label}] each payment event recorded once"
    );

    // Sale stock held = the quantities of live sale holds and bookings.
    let wrong_stock = scalar(
        pool,
        "SELECT count(*) FROM rm_listings l
          WHERE l.kind = 'sale' AND l.stock_held <> coalesce(
                (SELECT sum(a.quantity) FROM rm_allocations a
                  WHERE a.listing_id = l.listing_id AND a.start_at IS NULL
                    AND a.kind IN ('hold', 'booking')), 0)",
    )
    .await;
    assert_eq!(
        wrong_stock, 0,
        "[{label}] sale listings with a wrong stock_held"
    );
    let held_units = scalar(
        pool,
        "SELECT coalesce(sum(stock_held), 0)::bigint FROM rm_listings",
    )
    .await;
    let expected_held = scalar(
        pool,
        "WITH placed AS (
             SELECT payload::jsonb->'HoldPlaced'->>'hold_id' AS hold,
                    (payload::jsonb->'HoldPlaced'->'request'->>'quantity')::bigint AS quantity
               FROM events
              WHERE event_type = 'HoldPlaced'
                AND coalesce(jsonb_typeof(payload::jsonb->'HoldPlaced'->'request'->'period'),
                             'null') = 'null'),
         last AS (
             SELECT DISTINCT ON (hold) hold, event_type FROM (
                 SELECT e.payload::jsonb->e.event_type->>'hold_id' AS hold, e.event_type,
                        e.global_position
                   FROM events e
                  WHERE e.aggregate_type = 'Inventory'
                    AND (e.payload::jsonb->e.event_type) ? 'hold_id') x
             ORDER BY hold, global_position DESC)
         SELECT coalesce(sum(p.quantity), 0)::bigint FROM placed p JOIN last l USING (hold)
          WHERE l.event_type NOT IN ('HoldReleased', 'HoldExpired')",
    )
    .await;
    assert_eq!(
        held_units, expected_held,
        "[{label}] stock held = quantities of live sale holds in the log"
    );

    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(pool)
        .await;
}

/// The position header of every message on the stream, in stream order.
pub(super) async fn stream_positions(nats_url: &str, stream: &str) -> Vec<i64> {
    use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    use futures::StreamExt;

    let client = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(2_000)
        .messages()
        .await
        .expect("read the stream");
    let mut positions = Vec::with_capacity(total);
    while positions.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the stream delivers its messages")
            .expect("a message")
            .expect("a message");
        let position = message
            .headers
            .as_ref()
            .and_then(|h| h.get(ledger_nats::envelope::POSITION_HEADER))
            .and_then(|v| v.as_str().parse::<i64>().ok())
            .expect("a position header");
        positions.push(position);
    }
    positions
}

/// Runs of consecutive numbers, for messages: `[(first, last)]`.
pub(super) fn ranges(sorted: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &p in sorted {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == p => *last = p,
            _ => out.push((p, p)),
        }
    }
    out
}

/// The stream holds every event of the log exactly once: nothing lost on
/// the way (or republished when JetStream lost it), republished copies
/// dropped as duplicates. Other consumers of the stream than the runner
/// (which fills holes from the table) depend on this.
pub(super) async fn assert_stream_holds_the_log(pipeline: &Pipeline, label: &str) {
    let pool = &pipeline.app.pool;
    wait_converged(pool, &pipeline.app.stream, Duration::from_secs(90)).await;
    let logged: Vec<i64> = sqlx::query_scalar("SELECT global_position FROM events ORDER BY 1")
        .fetch_all(pool)
        .await
        .expect("read the log's positions");
    let mut on_stream = stream_positions(&pipeline.env.nats_url, &pipeline.app.stream).await;
    on_stream.sort_unstable();
    let mut twice: Vec<i64> = on_stream
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    twice.dedup();
    on_stream.dedup();
    let missing: Vec<i64> = logged
        .iter()
        .copied()
        .filter(|p| on_stream.binary_search(p).is_err())
        .collect();
    let missing_ranges = ranges(&missing);
    assert!(
        missing.is_empty() && twice.is_empty(),
        "[{label}] the stream lacks {} of the log's {} events (positions {:?}) and holds {} twice",
        missing.len(),
        logged.len(),
        &missing_ranges[..missing_ranges.len().min(10)],
        twice.len()
    );
}

/// Polls until the log holds at least `count` events.
pub(super) async fn wait_for_events(pool: &PgPool, count: i64, timeout: Duration, stats: &Stats) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = scalar(pool, "SELECT count(*) FROM events").await;
        if now >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {count} events within {timeout:?} ({})",
            stats.summary()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the relay has published past `position`; returns how long
/// that took.
pub(super) async fn wait_relay_past(
    pool: &PgPool,
    stream: &str,
    position: i64,
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let relay = published(pool, stream).await;
        if relay > position {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the relay did not publish past {position} within {timeout:?} (at {relay})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Messages on the stream now, with its first and last sequence.
pub(super) async fn stream_state(nats_url: &str, stream: &str) -> (u64, u64, u64) {
    let client = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let state = stream.info().await.expect("stream info").state.clone();
    (state.messages, state.first_sequence, state.last_sequence)
}

pub(super) async fn event_count(pool: &PgPool) -> i64 {
    scalar(pool, "SELECT count(*) FROM events").await
}

pub(super) fn assert_no_failures(stats: &Stats, label: &str) {
    let failures = stats.failures();
    assert!(
        failures.is_empty(),
        "[{label}] {} commands failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
}
