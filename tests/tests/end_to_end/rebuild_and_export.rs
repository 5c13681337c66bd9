//! `ledger projections rebuild` swaps rebuilt read models in while commands
//! and queries go on; `ledger events export` writes exactly the selected
//! events, in position order, as NDJSON or CSV.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger::commands::events::{export, ExportArgs, Format};
use ledger_tests::pipeline::{caught_up, eventually};
use ledger_tests::{at, TestApp};
use projectors::rebuild::{differences, rebuild_and_swap, rebuild_into, READ_MODEL_TABLES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Waits until the relay has published the whole log and every read model
/// has applied it.
async fn settle(app: &TestApp) {
    let read_models: Vec<&str> = projectors::read_models().iter().map(|m| m.name()).collect();
    let settled = eventually(Duration::from_secs(20), || {
        caught_up(&app.pool, &app.stream, &read_models)
    })
    .await;
    assert!(settled, "the read models did not catch up");
}

/// Some orders, payments and cancellations.
async fn traffic(app: &TestApp, listings: &[uuid::Uuid], customer: &str, rounds: usize) -> usize {
    let mut placed = 0;
    for round in 0..rounds {
        let listing = listings[round % listings.len()];
        let day = (round % 300) as i64;
        let item = if round % 2 == 0 {
            json!({"listing_id": listing, "quantity": 1, "start": at(day, 0), "end": at(day, 5)})
        } else {
            json!({"listing_id": listing, "quantity": 1})
        };
        let order = app.place_order(customer, json!([item])).await;
        if order.status != StatusCode::CREATED {
            continue;
        }
        placed += 1;
        match round % 3 {
            0 => {
                app.pay(&order).await;
            }
            1 => {
                let id = order.uuid("order_id");
                app.cancel_order(&app.customer(customer), id, json!({}))
                    .await;
            }
            _ => {}
        }
    }
    placed
}

async fn marketplace(app: &TestApp) -> Vec<uuid::Uuid> {
    let vendor = app.register_vendor("Harbour").await;
    let mut listings = Vec::new();
    for i in 0..3 {
        listings.push(
            app.rental_listing(vendor, "hour", "12.50", "20.00", 2 + i)
                .await,
        );
        listings.push(app.sale_listing(vendor, "3.99", 10_000).await);
    }
    listings
}

#[tokio::test]
async fn rebuilding_every_read_model_while_orders_and_queries_run_swaps_in_an_equal_model() {
    let app = Arc::new(TestApp::spawn().await);
    let listings = Arc::new(marketplace(&app).await);
    let stop = Arc::new(AtomicBool::new(false));

    // Writers keep the log growing during the rebuilds.
    let mut writers = Vec::new();
    for w in 0..3 {
        let (app, listings, stop) = (app.clone(), listings.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut placed = 0;
            while !stop.load(Ordering::Relaxed) {
                placed += traffic(&app, &listings, &format!("writer-{w}"), 6).await;
            }
            placed
        }));
    }
    // Readers keep asking the read models: no answer may be a server error.
    let answered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for path in [
        "/v1/listings?limit=20",
        "/v1/orders?limit=20",
        "/v1/ledger/trial-balance",
    ] {
        let (app, stop, answered) = (app.clone(), stop.clone(), answered.clone());
        readers.push(tokio::spawn(async move {
            let token = app.admin();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = app.send(Method::GET, path, Some(&token), None, &[]).await;
                if answer.status != StatusCode::OK {
                    failures.push((path, answer.status, answer.body));
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    for model in projectors::read_models() {
        let before = answered.load(Ordering::Relaxed);
        let reached = rebuild_and_swap(&app.pool, &app.stream, &model, |_| {})
            .await
            .expect("the rebuild swaps in");
        assert!(reached > 0, "{} rebuilt up to {reached}", model.name());
        assert!(
            answered.load(Ordering::Relaxed) >= before,
            "queries kept answering"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut placed = 0;
    for writer in writers {
        placed += writer.await.expect("a writer");
    }
    for reader in readers {
        let failures = reader.await.expect("a reader");
        assert!(
            failures.is_empty(),
            "queries failed during the swap: {failures:?}"
        );
    }
    assert!(
        placed > 10,
        "the log grew during the rebuilds ({placed} orders)"
    );
    assert!(answered.load(Ordering::Relaxed) > 10);

    // The swapped-in models, kept up by the live runners since, equal a
    // fresh rebuild of the whole log.
    settle(&app).await;
    rebuild_into(
        &app.pool,
        &app.stream,
        "verify_swap",
        &projectors::read_models(),
    )
    .await
    .expect("a fresh rebuild");
    for table in READ_MODEL_TABLES {
        let differing = differences(&app.pool, "verify_swap", table)
            .await
            .expect("compare");
        assert_eq!(differing, 0, "{table} differs from a fresh rebuild");
    }
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%' OR nspname LIKE 'retired\\_%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("schemas");
    assert_eq!(leftovers, 0, "the rebuild cleans up its schemas");
    // Rebuilt UNLOGGED for speed, swapped in logged: a crash keeps them.
    let unlogged: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class
          WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1)
            AND relpersistence <> 'p'",
    )
    .bind(
        READ_MODEL_TABLES
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&app.pool)
    .await
    .expect("pg_class");
    assert!(unlogged.is_empty(), "swapped in unlogged: {unlogged:?}");
    // The search index keeps its entries out of a pending list (migration
    // 0008), in the rebuilt copy too: a full pending list made every
    // search scan 4 MB.
    let search_indexes: Vec<Option<Vec<String>>> = sqlx::query_scalar(
        "SELECT i.reloptions FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_am a ON a.oid = i.relam
          WHERE x.indrelid = 'public.rm_listings'::regclass AND a.amname = 'gin'",
    )
    .fetch_all(&app.pool)
    .await
    .expect("pg_index");
    assert_eq!(search_indexes.len(), 1, "one text index on rm_listings");
    assert_eq!(
        search_indexes[0],
        Some(vec!["fastupdate=off".to_owned()]),
        "the swapped-in text index writes through"
    );
}

fn export_args(format: Format, path: &std::path::Path) -> ExportArgs {
    ExportArgs {
        format,
        output: Some(path.to_path_buf()),
        after: None,
        until_position: None,
        since: None,
        until: None,
        aggregate_type: None,
        event_type: None,
        tenant: None,
        columns: Vec::new(),
        personal_data_kek: None,
    }
}

async fn positions(app: &TestApp, filter: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "SELECT global_position FROM events WHERE {filter} ORDER BY global_position"
    ))
    .fetch_all(&app.pool)
    .await
    .expect("positions")
}

#[tokio::test]
async fn export_writes_exactly_the_selected_events_in_position_order_as_ndjson_and_csv() {
    let app = TestApp::spawn().await;
    let listings = marketplace(&app).await;
    traffic(&app, &listings, "exporter", 12).await;
    let dir = tempfile::tempdir().expect("a temp dir");

    // Everything, as NDJSON.
    let path = dir.path().join("all.ndjson");
    let written = export(&app.pool, &export_args(Format::Ndjson, &path))
        .await
        .expect("export");
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .expect("the file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let all = positions(&app, "TRUE").await;
    assert_eq!(written as usize, all.len());
    let exported: Vec<i64> = lines
        .iter()
        .map(|l| l["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(exported, all, "every event once, in position order");
    let first = &lines[0];
    for field in [
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "event_type",
        "event_version",
        "event_id",
        "recorded_at",
        "payload",
        "metadata",
    ] {
        assert!(!first[field].is_null(), "{field} is exported");
    }

    // Filters: event type, aggregate type, a position range.
    let mut args = export_args(Format::Ndjson, &dir.path().join("placed.ndjson"));
    args.event_type = Some("OrderPlaced".into());
    let written = export(&app.pool, &args).await.expect("export");
    assert_eq!(
        written as usize,
        positions(&app, "event_type = 'OrderPlaced'").await.len()
    );

    let mut args = export_args(Format::Ndjson, &dir.path().join("inventory.ndjson"));
    args.aggregate_type = Some("Inventory".into());
    let written = export(&app.pool, &args).await.expect("export");
    assert_eq!(
        written as usize,
        positions(&app, "aggregate_type = 'Inventory'").await.len()
    );

    let (from, to) = (all[3], all[all.len() / 2]);
    let path = dir.path().join("range.csv");
    let mut args = export_args(Format::Csv, &path);
    args.after = Some(from);
    args.until_position = Some(to);
    let written = export(&app.pool, &args).await.expect("export");
    let mut reader = csv::Reader::from_path(&path).expect("a CSV file");
    let headers = reader.headers().expect("a header row").clone();
    assert_eq!(&headers[0], "position");
    assert_eq!(&headers[8], "payload");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a record")).collect();
    let expected = positions(
        &app,
        &format!("global_position > {from} AND global_position <= {to}"),
    )
    .await;
    assert_eq!(written as usize, expected.len());
    let exported: Vec<i64> = rows
        .iter()
        .map(|r| r[0].parse().expect("a position"))
        .collect();
    assert_eq!(exported, expected);
    for row in &rows {
        // Externally tagged: an object, or a bare string for unit variants.
        let payload: Value = serde_json::from_str(&row[8]).expect("payload is JSON");
        assert!(payload.is_object() || payload.is_string(), "{payload}");
    }

    // A window in time that holds nothing exports nothing.
    let mut args = export_args(Format::Ndjson, &dir.path().join("none.ndjson"));
    args.since = Some(chrono::Utc::now() + chrono::Duration::days(1));
    assert_eq!(export(&app.pool, &args).await.expect("export"), 0);
}
