//! A database restored behind its stream (issue 20, item 10): the relay and
//! every consumer refuse the stream of another history, say so on
//! readiness and in `GET /v1/projections`, publish nothing onto it, and go
//! on once `ledger stream reset` has derived the stream again from the
//! database, with read models equal to a rebuild.
//!
//! Each test runs a ledger on database D and stream S, then puts another
//! D under it under the same name (created again empty, or restored from an
//! earlier `pg_dump`) and starts a ledger again on D and S.

use std::path::Path;
use std::time::Duration;

use ledger::commands::stream::reset;
use ledger_nats::history::Verdict;
use ledger_nats::StreamSettings;
use ledger_tests::database::{connect, database_url, drop_and_create};
use ledger_tests::events::head;
use ledger_tests::pipeline::{caught_up, consumers, envelopes, eventually};
use ledger_tests::stream::{nats_client, stream_count, stream_events, PublishTap, StreamedEvent};
use ledger_tests::{fresh_database, fresh_stream_name, TestApp};
use projectors::rebuild::{differences, rebuild_into, READ_MODEL_TABLES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;

/// A whole ledger on `pool` (database `database`) and stream `stream`.
async fn spawn(pool: PgPool, database: &str, stream: &str) -> TestApp {
    let settings = StreamSettings::new(stream);
    let mut app = TestApp::spawn_on_pool(pool, database, |server| server.stream = settings).await;
    app.stream = stream.to_owned();
    app.wait_until_ready().await;
    app
}

/// Orders (half of them paid) until the log reaches `at_least`.
async fn trade_until(app: &TestApp, at_least: i64) {
    let vendor = app.register_vendor("Restored Goods").await;
    let listing = app.sale_listing(vendor, "4.50", 1_000).await;
    let mut round = 0;
    while head(&app.pool).await < at_least {
        let order = app
            .place(
                "restore-customer",
                json!([{"listing_id": listing, "quantity": 1}]),
            )
            .await;
        if round % 2 == 0 {
            app.pay(&order).await;
        }
        round += 1;
    }
}

/// Waits until the relay has published the whole log and every consumer
/// (policies too, whose reactions grow the log) has applied it.
async fn settle(app: &TestApp) {
    let settled = eventually(Duration::from_secs(60), || async {
        let before = head(&app.pool).await;
        // Nothing the policies did meanwhile is left to apply.
        caught_up(&app.pool, &app.stream, &consumers()).await && head(&app.pool).await == before
    })
    .await;
    assert!(settled, "the pipeline did not catch up");
}

async fn get(app: &TestApp, path: &str) -> Value {
    let answer = app
        .send(Method::GET, path, Some(&app.admin()), None, &[])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    answer.body
}

/// The last message of the old history, before the database was replaced.
async fn last_message(stream: &str) -> (u64, StreamedEvent) {
    let client = nats_client().await;
    let events = stream_events(&client, stream).await;
    let last = events.last().cloned().expect("a message on the stream");
    (stream_count(&client, stream).await, last)
}

/// The relay and every consumer refuse the stream: faults on readiness
/// naming both sides, `stream_mismatch` in the projections, nothing
/// published from this database.
async fn assert_refused(app: &TestApp, tap: &PublishTap, before: &(u64, StreamedEvent)) {
    let (count, tail) = before;
    let relay = format!("relay:{}", app.stream);
    // Every consumer `ledger serve` runs (read models, policies, webhooks).
    let mut expected: Vec<String> = ledger::process::consumer_names()
        .iter()
        .map(|n| format!("consumer:{n}"))
        .chain([relay.clone()])
        .collect();
    expected.sort();
    let degraded = eventually(Duration::from_secs(20), || async {
        let ready = get(app, "/health/ready").await;
        let mut named: Vec<String> = ready["degraded"]
            .as_array()
            .map(|faults| {
                faults
                    .iter()
                    .filter(|f| f["kind"] == "stream_mismatch")
                    .filter_map(|f| f["component"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        named.sort();
        ready["status"] == "degraded" && named == expected
    })
    .await;
    let ready = get(app, "/health/ready").await;
    assert!(
        degraded,
        "readiness does not name the relay and every consumer: {ready}"
    );
    let relay_fault = ready["degraded"]
        .as_array()
        .and_then(|faults| faults.iter().find(|f| f["component"] == relay.as_str()))
        .cloned()
        .expect("the relay's fault");
    let detail = relay_fault["detail"].as_str().unwrap_or_default();
    for side in [
        format!("stream {}", app.stream),
        format!(
            "holds event {} at position {}",
            tail.event.event_id, tail.event.position
        ),
        format!("database {}", app.database),
        "ledger stream reset".to_owned(),
    ] {
        assert!(detail.contains(&side), "`{side}` not in `{detail}`");
    }
    assert_eq!(relay_fault["position"], tail.event.position);

    let projections = get(app, "/v1/projections").await;
    let rows = projections.as_array().expect("a list");
    assert_eq!(
        rows.len(),
        ledger::process::consumer_names().len(),
        "{projections}"
    );
    for row in rows {
        assert_eq!(row["state"], "stream_mismatch", "{row}");
        let error = row["error"].as_str().unwrap_or_default();
        assert!(error.contains(&app.stream), "{row}");
    }

    // Nothing from this database reached the stream: it still ends with
    // the old history's last message, and nobody even tried to publish.
    let client = nats_client().await;
    assert_eq!(stream_count(&client, &app.stream).await, *count);
    let now = stream_events(&client, &app.stream).await;
    assert_eq!(
        now.last().map(|m| m.event.event_id),
        Some(tail.event.event_id)
    );
    assert!(
        tap.seen().is_empty(),
        "published onto a foreign stream: {:?}",
        tap.seen()
    );
}

/// After the reset: the stream holds exactly this database's log, every
/// consumer is live at its head, readiness is ok and every read model
/// equals a rebuild; new events flow again.
async fn assert_caught_up(app: &TestApp) {
    trade_until(app, head(&app.pool).await + 5).await;
    settle(app).await;
    let ok = eventually(Duration::from_secs(20), || async {
        get(app, "/health/ready").await["status"] == "ok"
    })
    .await;
    assert!(ok, "still degraded: {}", get(app, "/health/ready").await);
    let projections = get(app, "/v1/projections").await;
    for row in projections.as_array().expect("a list") {
        assert_eq!(row["state"], "live", "{row}");
    }

    let client = nats_client().await;
    let on_stream: Vec<_> = stream_events(&client, &app.stream)
        .await
        .into_iter()
        .map(|m| (m.event.position, m.event.event_id))
        .collect();
    let in_table: Vec<_> = envelopes(&app.pool, 1, head(&app.pool).await)
        .await
        .into_iter()
        .map(|e| (e.position, e.event_id))
        .collect();
    assert_eq!(on_stream, in_table, "the stream is not this database's log");

    rebuild_into(
        &app.pool,
        &app.stream,
        "verify_history",
        &projectors::read_models(),
    )
    .await
    .expect("a fresh rebuild");
    for table in READ_MODEL_TABLES {
        let differing = differences(&app.pool, "verify_history", table)
            .await
            .expect("compare");
        assert_eq!(differing, 0, "{table} differs from a rebuild");
    }
}

/// `ledger stream reset` on its own pool, as the command would run.
async fn run_reset(app: &TestApp) -> ledger::commands::stream::ResetReport {
    let pool = connect(&app.database, 12).await;
    let report = reset(
        &pool,
        &nats_client().await,
        &StreamSettings::new(app.stream.clone()),
        true,
    )
    .await
    .expect("the reset succeeds");
    assert!(
        matches!(report.before, Some(Verdict::Foreign(_))),
        "{:?}",
        report.before
    );
    assert!(report.rebuilt);
    let mut cleared = report.cleared.clone();
    cleared.sort();
    assert!(
        cleared.contains(&format!("relay:{}", app.stream)),
        "{cleared:?}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_created_again_refuses_its_old_stream_until_the_stream_is_reset() {
    let (pool, database) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let app = spawn(pool.clone(), &database, &stream).await;
    trade_until(&app, 30).await;
    settle(&app).await;
    let before = last_message(&stream).await;
    app.stop().await;
    pool.close().await;

    // Dropped and created again: a new history under the same name.
    drop_and_create(&database).await;
    let pool = connect(&database, 16).await;
    migrations::run(&pool).await.expect("migrate");
    let tap = PublishTap::start(&nats_client().await, &stream).await;
    let app = spawn(pool, &database, &stream).await;
    trade_until(&app, 10).await;
    assert!(head(&app.pool).await < before.1.event.position);
    assert_refused(&app, &tap, &before).await;
    drop(tap);

    let report = run_reset(&app).await;
    assert!(report.brought_back.is_empty(), "{:?}", report.brought_back);
    assert_eq!(report.deleted_messages, before.0);
    assert_caught_up(&app).await;
    app.stop().await;
}

/// Runs `program` with `args`, which must succeed.
async fn run_tool(program: &'static str, args: Vec<String>) {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program).args(&args).output()
    })
    .await
    .expect("the tool's task")
    .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn dump(database: &str, file: &Path) {
    run_tool(
        "pg_dump",
        vec![
            "--format=custom".into(),
            format!("--file={}", file.display()),
            database_url(database),
        ],
    )
    .await;
}

async fn restore(file: &Path, database: &str) {
    run_tool(
        "pg_restore",
        vec![
            "--no-owner".into(),
            "--exit-on-error".into(),
            format!("--dbname={}", database_url(database)),
            file.display().to_string(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_dump_restored_behind_its_stream_is_refused_until_the_stream_is_reset() {
    let (pool, database) = fresh_database().await.expect("a database");
    let stream = fresh_stream_name().await;
    let app = spawn(pool.clone(), &database, &stream).await;
    trade_until(&app, 20).await;
    settle(&app).await;
    let backup = tempfile::tempdir().expect("a directory");
    let file = backup.path().join("ledger.dump");
    dump(&database, &file).await;
    let dumped_head = head(&pool).await;
    // The stream goes on after the backup.
    trade_until(&app, dumped_head + 10).await;
    settle(&app).await;
    let before = last_message(&stream).await;
    let stream_head = before.1.event.position;
    app.stop().await;
    pool.close().await;

    // Restored from the backup: the same history up to the dump, which the
    // stream has gone beyond.
    drop_and_create(&database).await;
    restore(&file, &database).await;
    let pool = connect(&database, 16).await;
    migrations::run(&pool).await.expect("migrate");
    assert_eq!(head(&pool).await, dumped_head);
    // A consumer of an earlier version, fed from the old stream, would
    // have counted events this database does not have.
    sqlx::query("UPDATE consumer_checkpoints SET position = $1 WHERE name = 'analytics'")
        .bind(stream_head)
        .execute(&pool)
        .await
        .expect("a checkpoint ahead");
    let tap = PublishTap::start(&nats_client().await, &stream).await;
    let app = spawn(pool, &database, &stream).await;
    trade_until(&app, dumped_head + 3).await;
    assert_refused(&app, &tap, &before).await;
    drop(tap);

    let report = run_reset(&app).await;
    assert_eq!(
        report.brought_back,
        vec![("analytics".to_owned(), stream_head)]
    );
    assert_eq!(report.deleted_messages, before.0);
    assert_caught_up(&app).await;
    app.stop().await;
}
