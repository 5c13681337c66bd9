//! The relay (DESIGN.md "NATS", "Order is the trap"): the events table
//! reaches JetStream exactly once, in global-position order, never past a
//! position an in-flight transaction still holds, and survives restarts,
//! a second instance and a stream that lost messages.
//!
//! Events are written straight into the events table (as postgres-es
//! does), so that transactions can be held open and rolled back at will.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::message::PublishMessage;
use ledger_nats::envelope::subject;
use ledger_nats::stream::provision;
use ledger_nats::{message_id, RelayConfig, StreamSettings};
use ledger_tests::events::head;
use ledger_tests::pipeline::{
    commit_probes, eventually, insert_probe, relay_position, set_relay_position, RelayTask, PROBE,
};
use ledger_tests::stream::{
    nats_client, stream_count, stream_events, wait_for_stream_count, PublishTap, StreamedEvent,
};
use ledger_tests::{fresh_database, fresh_stream_name};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

/// A committed event, as its writer saw it.
#[derive(Clone, Debug)]
struct Committed {
    position: i64,
    event_id: Uuid,
    aggregate_id: String,
    sequence: i64,
}

/// What one writer did: its committed events and the positions its
/// rolled-back transactions took.
#[derive(Default)]
struct Written {
    committed: Vec<Committed>,
    rolled_back: Vec<i64>,
}

/// Writer `w` owns aggregates `w-0..w-4`; it runs transactions of 1–3
/// events for one of them, holds each open for 0–20 ms and rolls back
/// about one in ten, until `target` events are committed.
async fn writer(pool: PgPool, w: usize, target: usize, seed: u64) -> Written {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next_sequence = [1i64; 5];
    let mut written = Written::default();
    while written.committed.len() < target {
        let k = rng.gen_range(0..5);
        let aggregate_id = format!("{w}-{k}");
        let count = rng.gen_range(1..=3i64);
        let mut tx = pool.begin().await.expect("begin");
        let mut taken = Vec::new();
        for i in 0..count {
            let sequence = next_sequence[k] + i;
            let (position, event_id) = insert_probe(&mut tx, &aggregate_id, sequence)
                .await
                .expect("insert an event");
            taken.push(Committed {
                position,
                event_id,
                aggregate_id: aggregate_id.clone(),
                sequence,
            });
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=20))).await;
        if rng.gen_bool(0.1) {
            tx.rollback().await.expect("rollback");
            written.rolled_back.extend(taken.iter().map(|c| c.position));
        } else {
            tx.commit().await.expect("commit");
            next_sequence[k] += count;
            written.committed.extend(taken);
        }
    }
    written
}

/// Runs `writers` concurrent writers; returns all they committed (sorted
/// by position) and the positions they rolled back.
async fn run_writers(pool: &PgPool, writers: usize, per_writer: usize, seed: u64) -> Written {
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            tokio::spawn(writer(
                pool.clone(),
                w,
                per_writer,
                seed.wrapping_mul(31).wrapping_add(w as u64),
            ))
        })
        .collect();
    let mut all = Written::default();
    for task in tasks {
        let written = task.await.expect("a writer finishes");
        all.committed.extend(written.committed);
        all.rolled_back.extend(written.rolled_back);
    }
    all.committed.sort_by_key(|c| c.position);
    all
}

/// Asserts that the stream holds exactly `expected` (positions ascending),
/// each once, in position order, with its headers, subject and per-aggregate
/// order right.
#[track_caller]
fn assert_exactly_once_in_order(stream: &str, on_stream: &[StreamedEvent], expected: &[Committed]) {
    let mut ids: HashMap<Uuid, usize> = HashMap::new();
    for m in on_stream {
        *ids.entry(m.event.event_id).or_default() += 1;
    }
    let duplicated: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "events on the stream more than once: {duplicated:?}"
    );
    let missing: Vec<i64> = expected
        .iter()
        .filter(|c| !ids.contains_key(&c.event_id))
        .map(|c| c.position)
        .collect();
    assert!(
        missing.is_empty(),
        "committed events missing from the stream at positions {missing:?}"
    );
    let expected_ids: HashSet<Uuid> = expected.iter().map(|c| c.event_id).collect();
    let extra: Vec<i64> = on_stream
        .iter()
        .filter(|m| !expected_ids.contains(&m.event.event_id))
        .map(|m| m.event.position)
        .collect();
    assert!(
        extra.is_empty(),
        "events on the stream that were never committed: {extra:?}"
    );
    assert_eq!(on_stream.len(), expected.len());

    for pair in on_stream.windows(2) {
        assert!(
            pair[0].event.position < pair[1].event.position,
            "stream sequence {} carries position {} after position {}",
            pair[1].stream_sequence,
            pair[1].event.position,
            pair[0].event.position
        );
    }
    let positions: Vec<i64> = on_stream.iter().map(|m| m.event.position).collect();
    let committed: Vec<i64> = expected.iter().map(|c| c.position).collect();
    assert_eq!(
        positions, committed,
        "the stream is the committed log, in position order"
    );
    for (m, c) in on_stream.iter().zip(expected) {
        assert_eq!(
            (
                m.event.aggregate_id.as_str(),
                m.event.sequence,
                m.event.event_id
            ),
            (c.aggregate_id.as_str(), c.sequence, c.event_id),
            "the event at position {}",
            c.position
        );
    }

    let mut last_sequence: HashMap<&str, i64> = HashMap::new();
    for m in on_stream {
        let e = &m.event;
        assert_eq!(
            m.position_header,
            Some(e.position),
            "position header of {e:?}"
        );
        assert_eq!(
            m.msg_id.as_deref(),
            Some(message_id(&e.aggregate_type, &e.aggregate_id, e.sequence).as_str()),
            "Nats-Msg-Id of {e:?}"
        );
        assert_eq!(
            m.subject,
            subject(stream, &e.aggregate_type, &e.aggregate_id)
        );
        let last = last_sequence.entry(e.aggregate_id.as_str()).or_insert(0);
        assert_eq!(
            e.sequence,
            *last + 1,
            "aggregate {} out of order on the stream",
            e.aggregate_id
        );
        *last = e.sequence;
    }
}

/// Waits until the relay has stored `position`; panics with what it has.
async fn wait_for_relay_position(pool: &PgPool, stream: &str, position: i64) {
    let reached = eventually(Duration::from_secs(15), || async {
        relay_position(pool, stream).await == Some(position)
    })
    .await;
    assert!(
        reached,
        "relay_positions is {:?}, expected {position}",
        relay_position(pool, stream).await
    );
}

/// Every committed probe event, from the table (positions ascending).
async fn committed_in_table(pool: &PgPool) -> Vec<Committed> {
    sqlx::query_as::<_, (i64, Uuid, String, i64)>(
        "SELECT global_position, event_id, aggregate_id, sequence FROM events
          WHERE aggregate_type = $1 ORDER BY global_position",
    )
    .bind(PROBE)
    .fetch_all(pool)
    .await
    .expect("read events")
    .into_iter()
    .map(|(position, event_id, aggregate_id, sequence)| Committed {
        position,
        event_id,
        aggregate_id,
        sequence,
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_with_slow_transactions_reach_the_stream_exactly_once_in_order() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = RelayTask::start(&pool, &client, &stream);

    let written = run_writers(&pool, 8, 250, 0x5eed_0001).await;
    let committed = written.committed;
    assert!(committed.len() >= 2_000, "{} committed", committed.len());
    assert!(
        !written.rolled_back.is_empty(),
        "the run must leave rolled-back gaps to skip"
    );
    // The writers' own account agrees with the table.
    let in_table = committed_in_table(&pool).await;
    assert_eq!(
        in_table.iter().map(|c| c.event_id).collect::<Vec<_>>(),
        committed.iter().map(|c| c.event_id).collect::<Vec<_>>()
    );

    let count = wait_for_stream_count(
        &client,
        &stream,
        committed.len() as u64,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        count,
        committed.len() as u64,
        "messages on the stream after 30 s (relay at {:?}, head {})",
        relay_position(&pool, &stream).await,
        head(&pool).await
    );
    let max_committed = committed.last().map(|c| c.position).unwrap_or(0);
    wait_for_relay_position(&pool, &stream, max_committed).await;
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let on_stream = stream_events(&client, &stream).await;
    assert_exactly_once_in_order(&stream, &on_stream, &committed);
    let rolled_back: HashSet<i64> = written.rolled_back.into_iter().collect();
    assert!(on_stream
        .iter()
        .all(|m| !rolled_back.contains(&m.event.position)));
    assert_eq!(relay_position(&pool, &stream).await, Some(max_committed));
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_restarted_after_a_crash_before_storing_its_position_resumes_from_the_stream_without_copies(
) {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let tap = PublishTap::start(&client, &stream).await;
    let relay = RelayTask::start(&pool, &client, &stream);

    let first = commit_probes(&pool, "restart-a", 1, 150).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 150, Duration::from_secs(15)).await,
        150
    );
    wait_for_relay_position(&pool, &stream, first[149]).await;
    // A crash after the acks but before the position was stored: the next
    // relay finds an older position, but the stream says where it really is.
    relay.kill().await;
    set_relay_position(&pool, &stream, first[89]).await;

    // Writes go on while no relay runs, and while the new one catches up.
    let second = commit_probes(&pool, "restart-a", 151, 50).await;
    let relay = RelayTask::start(&pool, &client, &stream);
    let third = commit_probes(&pool, "restart-a", 201, 50).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 250, Duration::from_secs(15)).await,
        250
    );
    wait_for_relay_position(&pool, &stream, third[49]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let expected = committed_in_table(&pool).await;
    assert_eq!(expected.len(), 250);
    assert_eq!(
        expected.iter().map(|c| c.position).collect::<Vec<_>>(),
        [first, second, third].concat()
    );
    assert_exactly_once_in_order(&stream, &stream_events(&client, &stream).await, &expected);

    // The new relay resumed from the stream's last message, not from its
    // stale stored position: no event was published twice.
    let published = tap.seen();
    assert_eq!(
        published.len(),
        250,
        "each event published once, the 60 already on the stream not again"
    );
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for id in &published {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    assert!(per_id.values().all(|n| *n == 1), "no message id twice");
    relay.stop().await;
}

/// A pool whose sessions carry `application_name`, to tell relays apart in
/// `pg_stat_activity`.
async fn named_pool(like: &PgPool, name: &str) -> PgPool {
    let options: PgConnectOptions = (*like.connect_options()).clone().application_name(name);
    PgPoolOptions::new()
        .max_connections(6)
        .connect_with(options)
        .await
        .expect("a named pool")
}

/// `application_name`s of the sessions holding an advisory lock.
async fn advisory_lock_holders(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.database =
                (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(pool)
    .await
    .expect("read pg_locks")
}

/// Last statements of the sessions of `application_name`.
async fn statements_of(pool: &PgPool, application_name: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(application_name)
    .fetch_all(pool)
    .await
    .expect("read pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_relays_on_one_stream_only_one_publishes_and_the_other_takes_over_when_it_stops() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let tap = PublishTap::start(&client, &stream).await;
    let pool_a = named_pool(&pool, "relay-a").await;
    let pool_b = named_pool(&pool, "relay-b").await;

    let relay_a = RelayTask::start(&pool_a, &client, &stream);
    assert!(
        eventually(Duration::from_secs(10), || async {
            advisory_lock_holders(&pool).await == ["relay-a"]
        })
        .await,
        "relay A never became active: {:?}",
        advisory_lock_holders(&pool).await
    );
    let relay_b = RelayTask::start(&pool_b, &client, &stream);

    let mut expected_positions = Vec::new();
    for round in 0..10 {
        expected_positions.extend(commit_probes(&pool, "two", round * 20 + 1, 20).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // B stands by: it holds no lock and only ever asks for it.
        assert_eq!(advisory_lock_holders(&pool).await, ["relay-a"]);
        for statement in statements_of(&pool, "relay-b").await {
            assert!(
                statement.contains("pg_try_advisory_lock"),
                "the standby relay ran `{statement}`"
            );
        }
    }
    assert_eq!(
        wait_for_stream_count(&client, &stream, 200, Duration::from_secs(15)).await,
        200
    );
    wait_for_relay_position(&pool, &stream, expected_positions[199]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        tap.seen().len(),
        200,
        "200 events were published {} times in all: more than one relay published",
        tap.seen().len()
    );

    relay_a.stop().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            advisory_lock_holders(&pool).await == ["relay-b"]
        })
        .await,
        "relay B never took over: {:?}",
        advisory_lock_holders(&pool).await
    );
    assert!(!relay_b.is_finished());
    expected_positions.extend(commit_probes(&pool, "two", 201, 100).await);
    assert_eq!(
        wait_for_stream_count(&client, &stream, 300, Duration::from_secs(15)).await,
        300
    );
    wait_for_relay_position(&pool, &stream, expected_positions[299]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let expected = committed_in_table(&pool).await;
    assert_eq!(
        expected.iter().map(|c| c.position).collect::<Vec<_>>(),
        expected_positions
    );
    assert_exactly_once_in_order(&stream, &stream_events(&client, &stream).await, &expected);
    relay_b.stop().await;
}

/// Starts a relay and waits until it has published a first event, so that
/// it is active and listening.
async fn active_relay(pool: &PgPool, client: &async_nats::Client, stream: &str) -> RelayTask {
    let relay = RelayTask::start(pool, client, stream);
    let positions = commit_probes(pool, "warm-up", 1, 1).await;
    assert_eq!(
        wait_for_stream_count(client, stream, 1, Duration::from_secs(10)).await,
        1
    );
    wait_for_relay_position(pool, stream, positions[0]).await;
    relay
}

fn positions_on(on_stream: &[StreamedEvent]) -> Vec<i64> {
    on_stream.iter().map(|m| m.event.position).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_position_held_by_a_long_open_transaction_blocks_later_positions_until_it_commits() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = active_relay(&pool, &client, &stream).await;
    let warm_up = head(&pool).await;

    let mut slow = pool.begin().await.expect("begin");
    let (n, _) = insert_probe(&mut slow, "slow", 1).await.expect("insert N");
    let later = commit_probes(&pool, "fast", 1, 1).await;
    let n1 = later[0];
    assert_eq!(n1, n + 1);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let on_stream = positions_on(&stream_events(&client, &stream).await);
    assert_eq!(
        on_stream,
        [warm_up],
        "position {n1} went out while position {n} was still in flight"
    );
    let stored = relay_position(&pool, &stream).await;
    assert_eq!(
        stored,
        Some(warm_up),
        "the relay stored a position past the gap"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stream_count(&client, &stream).await, 1);
    slow.commit().await.expect("commit N");
    assert_eq!(
        wait_for_stream_count(&client, &stream, 3, Duration::from_secs(10)).await,
        3
    );
    wait_for_relay_position(&pool, &stream, n1).await;
    let on_stream = stream_events(&client, &stream).await;
    assert_eq!(positions_on(&on_stream), [warm_up, n, n1]);
    assert_exactly_once_in_order(&stream, &on_stream, &committed_in_table(&pool).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_position_whose_transaction_rolls_back_is_skipped_not_waited_on() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = active_relay(&pool, &client, &stream).await;
    let warm_up = head(&pool).await;

    let mut doomed = pool.begin().await.expect("begin");
    let (n, _) = insert_probe(&mut doomed, "doomed", 1)
        .await
        .expect("insert N");
    let n1 = commit_probes(&pool, "fast", 1, 1).await[0];
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        positions_on(&stream_events(&client, &stream).await),
        [warm_up]
    );
    doomed.rollback().await.expect("rollback N");

    assert_eq!(
        wait_for_stream_count(&client, &stream, 2, Duration::from_secs(5)).await,
        2,
        "the relay waits for ever on rolled-back position {n}"
    );
    wait_for_relay_position(&pool, &stream, n1).await;
    assert_eq!(
        positions_on(&stream_events(&client, &stream).await),
        [warm_up, n1]
    );
    relay.stop().await;
}

/// Two positions missing at once: the first one's transaction rolls back,
/// the second one's commits. The rolled-back one is skipped; the committed
/// one must still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committed_position_inside_a_gap_whose_first_position_rolled_back_is_published() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let relay = active_relay(&pool, &client, &stream).await;
    let warm_up = head(&pool).await;

    let mut doomed = pool.begin().await.expect("begin");
    let (n, _) = insert_probe(&mut doomed, "doomed", 1)
        .await
        .expect("insert N");
    let mut slow = pool.begin().await.expect("begin");
    let (n1, _) = insert_probe(&mut slow, "slow", 1)
        .await
        .expect("insert N+1");
    let n2 = commit_probes(&pool, "fast", 1, 1).await[0];
    assert_eq!((n1, n2), (n + 1, n + 2));
    // The relay sees N and N+1 missing behind N+2.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        positions_on(&stream_events(&client, &stream).await),
        [warm_up]
    );

    slow.commit().await.expect("commit N+1");
    tokio::time::sleep(Duration::from_millis(50)).await;
    doomed.rollback().await.expect("rollback N");

    assert_eq!(
        wait_for_stream_count(&client, &stream, 3, Duration::from_secs(5)).await,
        3,
        "stream holds {:?}; expected {:?}",
        positions_on(&stream_events(&client, &stream).await),
        [warm_up, n1, n2]
    );
    wait_for_relay_position(&pool, &stream, n2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let on_stream = stream_events(&client, &stream).await;
    assert_eq!(positions_on(&on_stream), [warm_up, n1, n2]);
    assert_exactly_once_in_order(&stream, &on_stream, &committed_in_table(&pool).await);
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_deleted_and_recreated_empty_gets_every_event_again_once() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let js = jetstream::new(client.clone());
    let relay = RelayTask::start(&pool, &client, &stream);
    let positions = commit_probes(&pool, "lost", 1, 80).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 80, Duration::from_secs(10)).await,
        80
    );
    wait_for_relay_position(&pool, &stream, positions[79]).await;
    relay.stop().await;

    // JetStream lost everything (its storage was wiped) after the acks.
    js.delete_stream(&stream).await.expect("delete the stream");
    provision(&js, &StreamSettings::new(stream.clone()))
        .await
        .expect("recreate the stream");
    assert_eq!(stream_count(&client, &stream).await, 0);

    let relay = RelayTask::start(&pool, &client, &stream);
    assert_eq!(
        wait_for_stream_count(&client, &stream, 80, Duration::from_secs(10)).await,
        80,
        "the relay did not republish what the stream lost"
    );
    let more = commit_probes(&pool, "lost", 81, 20).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 100, Duration::from_secs(10)).await,
        100
    );
    wait_for_relay_position(&pool, &stream, more[19]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_exactly_once_in_order(
        &stream,
        &stream_events(&client, &stream).await,
        &committed_in_table(&pool).await,
    );
    relay.stop().await;
}

/// JetStream acknowledged 100 events, then lost the last 30 (a crash before
/// its fsync): rebuilt here as a fresh stream holding only the first 70
/// messages, exactly as they were. The relay's stored position (100) is
/// ahead of the stream's last message (70): it rewinds and publishes the
/// lost tail again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_that_lost_its_tail_gets_the_tail_again_after_a_restart() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let js = jetstream::new(client.clone());
    let relay = RelayTask::start(&pool, &client, &stream);
    let positions = commit_probes(&pool, "tail", 1, 100).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 100, Duration::from_secs(10)).await,
        100
    );
    wait_for_relay_position(&pool, &stream, positions[99]).await;
    relay.stop().await;

    let before = stream_events(&client, &stream).await;
    let raw = js.get_stream(&stream).await.expect("the stream");
    let mut kept = Vec::new();
    for m in before.iter().take(70) {
        kept.push(
            raw.get_raw_message(m.stream_sequence)
                .await
                .expect("a message"),
        );
    }
    js.delete_stream(&stream).await.expect("delete the stream");
    provision(&js, &StreamSettings::new(stream.clone()))
        .await
        .expect("recreate the stream");
    for message in kept {
        js.send_publish(
            message.subject.clone(),
            PublishMessage::build()
                .payload(message.payload.clone())
                .headers(message.headers.clone()),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    }
    assert_eq!(stream_count(&client, &stream).await, 70);
    assert_eq!(relay_position(&pool, &stream).await, Some(positions[99]));

    let relay = RelayTask::start(&pool, &client, &stream);
    let count = wait_for_stream_count(&client, &stream, 100, Duration::from_secs(10)).await;
    assert_eq!(
        count, 100,
        "the relay did not republish the 30 events the stream lost"
    );
    let more = commit_probes(&pool, "tail", 101, 10).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 110, Duration::from_secs(10)).await,
        110
    );
    wait_for_relay_position(&pool, &stream, more[9]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_exactly_once_in_order(
        &stream,
        &stream_events(&client, &stream).await,
        &committed_in_table(&pool).await,
    );
    relay.stop().await;
}

/// The tail of the stream deleted message by message (`nats stream rmm`),
/// with a duplicate window short enough to have passed: the stream's last
/// sequence is now a deleted message, and the last message it still holds
/// is behind the relay's stored position. The relay must rewind to that
/// message and publish the deleted tail again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_whose_tail_messages_were_deleted_gets_them_again_after_a_restart() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let js = jetstream::new(client.clone());
    let mut settings = StreamSettings::new(stream.clone());
    settings.duplicate_window = Duration::from_secs(1);
    let relay = RelayTask::start_with(&pool, &client, RelayConfig::new(settings.clone()));
    let positions = commit_probes(&pool, "deleted", 1, 40).await;
    assert_eq!(
        wait_for_stream_count(&client, &stream, 40, Duration::from_secs(10)).await,
        40
    );
    wait_for_relay_position(&pool, &stream, positions[39]).await;
    relay.stop().await;

    let before = stream_events(&client, &stream).await;
    let raw = js.get_stream(&stream).await.expect("the stream");
    for m in before.iter().skip(30) {
        assert!(raw.delete_message(m.stream_sequence).await.expect("delete"));
    }
    assert_eq!(stream_count(&client, &stream).await, 30);
    // Past the duplicate window, a republished copy is accepted again.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    let tap = PublishTap::start(&client, &stream).await;
    let relay = RelayTask::start_with(&pool, &client, RelayConfig::new(settings));
    let count = wait_for_stream_count(&client, &stream, 40, Duration::from_secs(10)).await;
    assert_eq!(
        count,
        40,
        "the relay did not republish the 10 deleted tail messages (it published {} messages)",
        tap.seen().len()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let on_stream = stream_events(&client, &stream).await;
    let mut by_position: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &on_stream {
        *by_position.entry(m.event.position).or_default() += 1;
    }
    assert_eq!(by_position.keys().copied().collect::<Vec<_>>(), positions);
    assert!(by_position.values().all(|n| *n == 1));
    relay.stop().await;
}

/// DESIGN.md: the relay "wakes on LISTEN/NOTIFY, not on a slow poll". With
/// its safety-net poll set to a minute, a commit still reaches the stream
/// at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_wakes_on_a_commit_notification_not_on_its_poll() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let client = nats_client().await;
    let mut config = RelayConfig::new(StreamSettings::new(stream.clone()));
    config.idle_poll = Duration::from_secs(60);
    let relay = RelayTask::start_with(&pool, &client, config);
    // Active, caught up (on an empty log) and waiting.
    assert!(
        eventually(Duration::from_secs(10), || async {
            relay_position(&pool, &stream).await == Some(0)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 1..=3 {
        let position = commit_probes(&pool, "notified", round, 1).await[0];
        let started = tokio::time::Instant::now();
        assert_eq!(
            wait_for_stream_count(&client, &stream, round as u64, Duration::from_secs(3)).await,
            round as u64,
            "position {position} not on the stream 3 s after its commit"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    relay.stop().await;
}

/// The command API wakes the relay itself after each append (no trigger
/// notifies inside the writing transaction, which would serialise every
/// commit): with the relay's safety-net poll set to a minute, each
/// command's events still reach the stream at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_api_wakes_the_relay_after_it_commits() {
    let app = ledger_tests::TestApp::spawn_server(|server| {
        server.parts = ledger::Parts {
            command_api: true,
            ..ledger::Parts::NONE
        };
    })
    .await;
    let client = nats_client().await;
    let mut config = RelayConfig::new(StreamSettings::new(app.stream.clone()));
    config.idle_poll = Duration::from_secs(60);
    let relay = RelayTask::start_with(&app.pool, &client, config);
    assert!(
        eventually(Duration::from_secs(10), || async {
            relay_position(&app.pool, &app.stream).await == Some(0)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for round in 1..=3u64 {
        app.register_vendor(&format!("Woken {round}")).await;
        let expected = head(&app.pool).await as u64;
        assert_eq!(
            wait_for_stream_count(&client, &app.stream, expected, Duration::from_secs(3)).await,
            expected,
            "round {round}: the command's events are not on the stream 3 s after its commit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    relay.stop().await;
}
