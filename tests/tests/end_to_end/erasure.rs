//! Erasure without breaking the proof (issue 16 item 6, DESIGN.md
//! invariant 11, docs/PRIVACY.md): personal fields are stored and
//! published sealed under a key of their data subject; `POST
//! /v1/subjects/{subject}/erase` destroys the keys, after which that
//! subject's fields read `"[erased]"` on every surface (queries, the event
//! API, exports, both live feeds, outgoing webhooks, rebuilt read models)
//! while another subject's stay readable, and the log still verifies, in
//! Rust and in the Python verifier.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use audit::Sealer;
use axum::body::Bytes;
use axum::extract::State;
use command_api::outbound::dispatch::Dispatcher;
use command_api::outbound::OutboundConfig;
use ledger::commands::events::{export, ExportArgs, Format};
use ledger_clock::ManualClock;
use ledger_tests::pipeline::{checkpoint, eventually};
use ledger_tests::scenario::{rental_days, sale_item};
use ledger_tests::sse::{take_block, SseBlock};
use ledger_tests::{Marketplace, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::audit::settle;

const ERASED: &str = "[erased]";
/// What Ada (erased) and Bob (kept) wrote or are called.
const ADA_SHOP: &str = "Ada's Kayaks";
const ADA_REASON: &str = "Ada changed her mind";
const ADA_BLACKOUT: &str = "Ada repairs the hull";
/// An admin's reason for refunding part of Ada's order: about Ada.
const ADA_REFUND: &str = "Ada's paddle arrived cracked";
const ADA_CUSTOMER: &str = "cust-ada";
const BOB_SHOP: &str = "Bob's Bikes";
const BOB_REASON: &str = "Bob found a cheaper one";
const BOB_BLACKOUT: &str = "Bob oils the chains";
const BOB_CUSTOMER: &str = "cust-bob";

/// Ada's and Bob's data: a shop each (its name, a blackout reason), an
/// order each cancelled with a reason (Ada's after payment: its refund
/// repeats the reason), every event recorded with their tokens' subjects;
/// and a second paid order of Ada's, refunded in part with a reason.
struct World {
    app: TestApp,
    ada_vendor: Uuid,
    bob_vendor: Uuid,
    ada_order: Uuid,
    bob_order: Uuid,
    ada_refunded_order: Uuid,
    /// A pass each, started with the customer's own token (issue 15).
    ada_subscription: Uuid,
    bob_subscription: Uuid,
}

/// Every text of Ada's that must never show once she is erased.
const ADA_TEXTS: [&str; 4] = [ADA_SHOP, ADA_REASON, ADA_BLACKOUT, ADA_REFUND];
/// Bob's, which must stay readable.
const BOB_TEXTS: [&str; 3] = [BOB_SHOP, BOB_REASON, BOB_BLACKOUT];

async fn world() -> World {
    world_on(TestApp::spawn().await).await
}

async fn world_on(app: TestApp) -> World {
    let market = Marketplace::new(&app);
    let ada_vendor = market.with_vendor(ADA_SHOP).await;
    let bob_vendor = market.with_vendor(BOB_SHOP).await;
    let mut orders = Vec::new();
    let mut ada_refunded_order = None;
    for (vendor, blackout, customer, reason, paid) in [
        (ada_vendor, ADA_BLACKOUT, ADA_CUSTOMER, ADA_REASON, true),
        (bob_vendor, BOB_BLACKOUT, BOB_CUSTOMER, BOB_REASON, false),
    ] {
        let rental = market
            .with_rental_listing(vendor, 2, "30.00", "10.00")
            .await;
        let answer = app
            .add_blackout(
                &app.vendor(vendor),
                rental,
                json!({"start": ledger_tests::at(20, 0), "end": ledger_tests::at(21, 0),
                       "units": 1, "reason": blackout}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let sale = market.with_sale_listing(vendor, 5, "12.00").await;
        let items = json!([sale_item(sale, 1), rental_days(rental, 1, 2, 4)]);
        let order = if paid {
            let refunded = market
                .with_paid_order(customer, json!([sale_item(sale, 2)]))
                .await;
            let answer = app
                .post(
                    &format!("/v1/orders/{}/refunds", refunded.order_id),
                    &app.admin(),
                    json!({"amount": "1.00", "reason": ADA_REFUND}),
                )
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
            ada_refunded_order = Some(refunded.order_id);
            market.with_paid_order(customer, items).await
        } else {
            market.with_placed_order(customer, items).await
        };
        let answer = app
            .cancel_order(
                &app.customer(customer),
                order.order_id,
                json!({ "reason": reason }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        orders.push(order.order_id);
    }
    // A monthly pass each, subscribed with the customer's own token.
    let plan = app
        .post(
            "/v1/plans",
            &app.admin(),
            json!({"name": "Paddler pass", "price": "9.00", "interval": "month"}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{:?}", plan.body);
    let mut subscriptions = Vec::new();
    for customer in [ADA_CUSTOMER, BOB_CUSTOMER] {
        let answer = app
            .post(
                "/v1/subscriptions",
                &app.customer(customer),
                json!({"plan_id": plan.body["plan_id"]}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
        let id = answer.body["subscription_id"].as_str().map(Uuid::parse_str);
        subscriptions.push(id.expect("an id").expect("a uuid"));
    }
    settle(&app).await;
    World {
        app,
        ada_subscription: subscriptions[0],
        bob_subscription: subscriptions[1],
        ada_vendor,
        bob_vendor,
        ada_order: orders[0],
        bob_order: orders[1],
        ada_refunded_order: ada_refunded_order.expect("Ada's refunded order"),
    }
}

impl World {
    /// Erases Ada: as a customer (her token's subject) and as a vendor.
    async fn erase_ada(&self) {
        for subject in [ADA_CUSTOMER.to_owned(), self.ada_vendor.to_string()] {
            let answer = erase(&self.app, &self.app.admin(), &subject).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            assert_eq!(answer.body["subject"], subject.as_str());
            assert_eq!(answer.body["erased"], true);
            assert_eq!(answer.body["keys_destroyed"], 1);
        }
    }
}

async fn erase(app: &TestApp, token: &str, subject: &str) -> ledger_tests::Answer {
    app.send(
        Method::POST,
        &format!("/v1/subjects/{subject}/erase"),
        Some(token),
        None,
        &[],
    )
    .await
}

/// Asserts that `text` shows Bob and `[erased]` but nothing of Ada.
#[track_caller]
fn erased_for_ada_only(surface: &str, text: &str) {
    for ada in ADA_TEXTS {
        assert!(!text.contains(ada), "{surface} shows {ada:?}: {text}");
    }
    for bob in BOB_TEXTS {
        assert!(text.contains(bob), "{surface} lost {bob:?}: {text}");
    }
    assert!(text.contains(ERASED), "{surface} shows no [erased]: {text}");
}

/// Every event of the log through `GET /v1/events`, as one text.
async fn event_api(app: &TestApp, token: &str) -> (String, Vec<Value>) {
    let answer = app.get("/v1/events?after=0&limit=500", token).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let events = answer.body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (answer.body.to_string(), events)
}

/// The events a live feed sends up to `horizon`, as one text.
async fn live_feed(app: &TestApp, path: &str, token: &str, horizon: i64) -> String {
    let mut response = app
        .client
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(response.status(), StatusCode::OK);
    let (mut buffer, mut text, mut last) = (String::new(), String::new(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while last < horizon {
        while let Some(SseBlock { id, data, .. }) = take_block(&mut buffer) {
            if let Some(id) = id {
                last = last.max(id);
                text.push_str(&data);
                text.push('\n');
            }
        }
        if last >= horizon {
            break;
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
            _ => break,
        }
    }
    text
}

#[tokio::test]
async fn an_erased_subject_reads_erased_on_every_surface_and_the_other_stays_readable() {
    // Deliveries are sent by the test, after the erasure.
    let world = world_on(TestApp::spawn_with(|c| c.outbound.dispatch = false).await).await;
    let app = &world.app;
    // Before: everyone's data reads in full.
    let (before, _) = event_api(app, &app.analyst()).await;
    for text in ADA_TEXTS.iter().chain(&BOB_TEXTS) {
        assert!(before.contains(text), "{text} before erasure: {before}");
    }
    // A webhook endpoint of the admin's gets every event: delivered after
    // the erasure, a delivery shows what the log shows then.
    let receiver = Receiver::start().await;
    let answer = app
        .post(
            "/v1/webhook-endpoints",
            &app.admin(),
            json!({"url": format!("{}/all", receiver.url), "event_types": ["*"]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    // Events recorded after the registration: Bob renames nothing, but a
    // second order of each customer is cancelled now.
    let market = Marketplace::new(app);
    for (vendor, customer, reason) in [
        (world.ada_vendor, ADA_CUSTOMER, ADA_REASON),
        (world.bob_vendor, BOB_CUSTOMER, BOB_REASON),
    ] {
        let sale = market.with_sale_listing(vendor, 3, "5.00").await;
        let order = market
            .with_placed_order(customer, json!([sale_item(sale, 1)]))
            .await;
        let answer = app
            .cancel_order(&app.admin(), order.order_id, json!({ "reason": reason }))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    settle(app).await;
    let head = app.head().await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            checkpoint(&app.pool, "webhooks").await >= head
                && checkpoint(&app.pool, "orders").await >= head
        })
        .await,
        "the consumers did not reach the head"
    );

    world.erase_ada().await;

    // The event API, every page and one aggregate's stream and state.
    let (text, events) = event_api(app, &app.auditor()).await;
    erased_for_ada_only("GET /v1/events", &text);
    let principals: Vec<&str> = events
        .iter()
        .filter_map(|e| e["metadata"]["principal"].as_str())
        .collect();
    assert!(!principals.contains(&ADA_CUSTOMER), "{principals:?}");
    assert!(principals.contains(&BOB_CUSTOMER), "{principals:?}");
    assert!(principals.contains(&ERASED), "{principals:?}");
    for (vendor, name) in [(world.ada_vendor, ERASED), (world.bob_vendor, BOB_SHOP)] {
        let answer = app
            .get(
                &format!("/v1/aggregates/Vendor/{vendor}/state"),
                &app.analyst(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["state"]["name"], name, "{:?}", answer.body);
        let answer = app
            .get(
                &format!("/v1/aggregates/Vendor/{vendor}/events"),
                &app.analyst(),
            )
            .await;
        let registered = &answer.body["events"][0]["payload"]["VendorRegistered"];
        assert_eq!(registered["name"], name, "{:?}", answer.body);
    }

    // A subscription's events: who subscribed is sealed like every
    // principal; its `customer` stays the pseudonymous id it is found by
    // (docs/PRIVACY.md: ids are not personal).
    for (subscription, principal) in [
        (world.ada_subscription, ERASED),
        (world.bob_subscription, BOB_CUSTOMER),
    ] {
        let started = events
            .iter()
            .find(|e| {
                e["aggregate_type"] == "Subscription"
                    && e["aggregate_id"] == subscription.to_string()
            })
            .expect("the subscription's first event");
        assert_eq!(started["metadata"]["principal"], principal, "{started}");
        let customer = &started["payload"]["SubscriptionStarted"]["customer"];
        assert!(
            [ADA_CUSTOMER, BOB_CUSTOMER].contains(&customer.as_str().unwrap_or_default()),
            "{started}"
        );
        let answer = app
            .get(&format!("/v1/subscriptions/{subscription}"), &app.admin())
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }

    // The orders read model, through the query API.
    for (order, reason) in [(world.ada_order, ERASED), (world.bob_order, BOB_REASON)] {
        let answer = app.order(&app.admin(), order, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["cancel_reason"], reason, "{:?}", answer.body);
    }
    let answer = app
        .order(&app.customer(ADA_CUSTOMER), world.ada_order, None)
        .await;
    assert_eq!(
        answer.body["refunds"][0]["reason"], ERASED,
        "{:?}",
        answer.body
    );
    // A refund's reason, written by an admin, is about the customer.
    let answer = app
        .order(&app.admin(), world.ada_refunded_order, None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(
        answer.body["refunds"][0]["reason"], ERASED,
        "{:?}",
        answer.body
    );
    let answer = app.get("/v1/orders?limit=500", &app.admin()).await;
    let listed = answer.body.to_string();
    assert!(!listed.contains(ADA_REASON), "{listed}");
    assert!(
        listed.contains(BOB_REASON) && listed.contains(ERASED),
        "{listed}"
    );

    // Both live feeds, from the start.
    let feed = live_feed(
        app,
        "/v1/events/stream?after=0",
        &app.analyst(),
        app.head().await,
    )
    .await;
    erased_for_ada_only("/v1/events/stream", &feed);
    let last_order_event: i64 = sqlx::query_scalar(
        "SELECT max(global_position) FROM events WHERE aggregate_type = 'Order'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the last order event");
    let feed = live_feed(
        app,
        "/v1/orders/stream?after=0",
        &app.admin(),
        last_order_event,
    )
    .await;
    for ada in ADA_TEXTS {
        assert!(!feed.contains(ada), "/v1/orders/stream shows {ada}: {feed}");
    }
    assert!(feed.contains(BOB_REASON) && feed.contains(ERASED), "{feed}");

    // The exports: NDJSON, CSV and Parquet.
    let dir = tempfile::tempdir().expect("a temporary directory");
    for format in [Format::Ndjson, Format::Csv, Format::Parquet] {
        let path = dir.path().join(format!("export-{format:?}"));
        export(&app.pool, &export_args(format, &path))
            .await
            .expect("export");
        let text = match format {
            Format::Parquet => parquet_text(&path),
            _ => std::fs::read_to_string(&path).expect("the export"),
        };
        erased_for_ada_only(&format!("export {format:?}"), &text);
    }

    // Outgoing webhooks, sent after the erasure.
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let dispatcher = Dispatcher::new(app.pool.clone(), clock, outbound());
    for _ in 0..50 {
        if dispatcher.round().await.expect("a dispatch round") == 0 {
            break;
        }
    }
    let bodies = receiver.bodies();
    assert!(!bodies.is_empty(), "no delivery");
    let delivered = bodies.join("\n");
    assert!(!delivered.contains(ADA_REASON), "{delivered}");
    assert!(delivered.contains(BOB_REASON), "{delivered}");
    assert!(delivered.contains(ERASED), "{delivered}");
}

#[tokio::test]
async fn nothing_personal_is_stored_or_published_in_clear() {
    let world = world().await;
    let app = &world.app;
    let clear = |column: &'static str, table: &'static str| async move {
        let mut found = Vec::new();
        for text in ADA_TEXTS.iter().chain(&BOB_TEXTS).chain(&[ADA_CUSTOMER]) {
            let count: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {table} WHERE {column}::text LIKE '%' || $1 || '%'"
            ))
            .bind(text)
            .fetch_one(&app.pool)
            .await
            .expect("search");
            // The customer's id is an id in payloads and read models (orders
            // are found by it); only the metadata's token subject is sealed.
            if count > 0 && (column == "metadata" || *text != ADA_CUSTOMER) {
                found.push(format!("{table}.{column}: {text}"));
            }
        }
        found
    };
    let mut found = Vec::new();
    for (column, table) in [
        ("payload", "events"),
        ("metadata", "events"),
        ("payload", "snapshots"),
        ("document", "rm_orders"),
    ] {
        found.extend(clear(column, table).await);
    }
    assert!(found.is_empty(), "stored in clear: {found:?}");
    // The acting person's token subject is sealed in the metadata.
    let sealed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE metadata->>'principal' LIKE 'pii:v1:%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert!(sealed > 0);

    // JetStream keeps what the log stores: the sealed text.
    let client = ledger_tests::stream::nats_client().await;
    let streamed = ledger_tests::stream::stream_events(&client, &app.stream).await;
    assert!(!streamed.is_empty());
    let text = streamed
        .iter()
        .map(|m| format!("{:?}", m.event))
        .collect::<Vec<_>>()
        .join("\n");
    for personal in ADA_TEXTS.iter().chain(&BOB_TEXTS) {
        assert!(!text.contains(personal), "the stream holds {personal}");
    }
    assert!(text.contains("pii:v1:"));
}

#[tokio::test]
async fn the_log_still_verifies_after_an_erasure_in_rust_and_in_python() {
    let world = world().await;
    let app = &world.app;
    let sealer = Sealer::new(
        app.pool.clone(),
        Arc::new(ledger_clock::SystemClock),
        audit::dev_signing_key(),
        audit::DEV_KEY_ID,
        app.stream.clone(),
    );
    sealer.seal_once().await.expect("seal");
    let hashes_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM events ORDER BY global_position")
            .fetch_all(&app.pool)
            .await
            .expect("hashes");

    world.erase_ada().await;

    let hashes_after: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM events ORDER BY global_position")
            .fetch_all(&app.pool)
            .await
            .expect("hashes");
    assert_eq!(hashes_before, hashes_after, "erasure changed no event");
    let public = audit::dev_signing_key().verifying_key();
    let report = audit::verify(&app.pool, &public, None, None)
        .await
        .expect("verify");
    assert!(report.ok && report.signatures_checked, "{report:?}");
    assert_eq!(report.unsealed, 0, "{report:?}");
    let answer = app.get("/v1/audit/verify", &app.auditor()).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["ok"], true, "{:?}", answer.body);

    // The export the Python verifier reads shows Ada erased and still
    // checks out against the hashes and seals.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let hex = audit::verifying_key_hex(&public);
    let (ok, report) =
        crate::audit_python::python_verify(&app.pool, dir.path(), &["--public-key", &hex]).await;
    assert!(ok, "{report}");
    assert_eq!(report["signatures_checked"], true, "{report}");
    let exported = std::fs::read_to_string(dir.path().join("events.ndjson")).expect("export");
    erased_for_ada_only("the auditor's export", &exported);

    // A served field that is not personal still has to match what was
    // hashed: the verifier is not blinded by the sealed fields.
    assert!(exported.contains("\"cause\":\"customer\""));
    let forged = exported.replacen("\"cause\":\"customer\"", "\"cause\":\"expiry\"", 1);
    std::fs::write(dir.path().join("forged.ndjson"), forged).expect("write");
    let output = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/audit_verify.py"))
        .args(["--events"])
        .arg(dir.path().join("forged.ndjson"))
        .args(["--seals"])
        .arg(dir.path().join("seals.json"))
        .args(["--public-key", &hex])
        .output()
        .expect("run python3");
    assert!(!output.status.success(), "a forged served event passed");
}

#[tokio::test]
async fn a_rebuilt_read_model_still_shows_the_erased_subject_as_erased() {
    let world = world().await;
    let app = &world.app;
    world.erase_ada().await;
    for model in projectors::read_models() {
        projectors::rebuild::rebuild_and_swap(&app.pool, &app.stream, &model, |_| {})
            .await
            .expect("the rebuild swaps in");
    }
    for (order, reason) in [(world.ada_order, ERASED), (world.bob_order, BOB_REASON)] {
        let answer = app.order(&app.admin(), order, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["cancel_reason"], reason, "{:?}", answer.body);
    }
    // What the rebuilt model holds is the sealed text, never the clear.
    let clear: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rm_orders WHERE document::text LIKE '%changed her mind%'
            OR document::text LIKE '%cheaper one%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(clear, 0);
}

#[tokio::test]
async fn only_an_admin_erases_a_repeat_answers_the_same_and_an_unknown_subject_is_404() {
    let world = world().await;
    let app = &world.app;
    let vendor_token = app.vendor(world.ada_vendor);
    for token in [
        app.customer(ADA_CUSTOMER),
        vendor_token,
        app.analyst(),
        app.auditor(),
    ] {
        let answer = erase(app, &token, ADA_CUSTOMER).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    }
    let answer = app
        .send(
            Method::POST,
            &format!("/v1/subjects/{ADA_CUSTOMER}/erase"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Refused requests erased nothing.
    let answer = app.order(&app.admin(), world.ada_order, None).await;
    assert_eq!(
        answer.body["cancel_reason"], ADA_REASON,
        "{:?}",
        answer.body
    );

    let first = erase(app, &app.admin(), ADA_CUSTOMER).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["keys_destroyed"], 1);
    let again = erase(app, &app.admin(), ADA_CUSTOMER).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["keys_destroyed"], 0);
    assert_eq!(again.body["erased_at"], first.body["erased_at"]);
    let answer = app.order(&app.admin(), world.ada_order, None).await;
    assert_eq!(answer.body["cancel_reason"], ERASED, "{:?}", answer.body);

    let unknown = erase(app, &app.admin(), "nobody-ever").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{:?}", unknown.body);

    // A customer erased and back: a new order gets a new key, readable.
    let market = Marketplace::new(app);
    let sale = market.with_sale_listing(world.bob_vendor, 3, "5.00").await;
    let order = market
        .with_placed_order(ADA_CUSTOMER, json!([sale_item(sale, 1)]))
        .await;
    let answer = app
        .cancel_order(
            &app.customer(ADA_CUSTOMER),
            order.order_id,
            json!({"reason": "back again"}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let min = answer.body["position"].as_i64();
    let answer = app.order(&app.admin(), order.order_id, min).await;
    assert_eq!(
        answer.body["cancel_reason"], "back again",
        "{:?}",
        answer.body
    );
}

#[tokio::test]
async fn events_stored_in_clear_before_sealing_still_read_and_verify() {
    let app = TestApp::spawn().await;
    // As a version before sealing wrote it: the name in clear.
    let vendor = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ('Vendor', $1, 1, 'VendorRegistered', '1.0', $2, $3)",
    )
    .bind(vendor.to_string())
    .bind(
        json!({"VendorRegistered": {"vendor_id": vendor, "name": "Old Timer Tools",
                                       "registered_at": "2026-01-01T00:00:00Z"}}),
    )
    .bind(json!({"principal": "admin-1", "principal_role": "admin"}))
    .execute(&app.pool)
    .await
    .expect("an event stored in clear");
    let hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM events WHERE aggregate_id = $1")
        .bind(vendor.to_string())
        .fetch_one(&app.pool)
        .await
        .expect("its hash");
    settle(&app).await;

    let answer = app
        .get(
            &format!("/v1/aggregates/Vendor/{vendor}/state"),
            &app.analyst(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["state"]["name"], "Old Timer Tools");
    let answer = app
        .get(
            &format!("/v1/aggregates/Vendor/{vendor}/events"),
            &app.analyst(),
        )
        .await;
    assert_eq!(
        answer.body["events"][0]["metadata"]["principal"], "admin-1",
        "{:?}",
        answer.body
    );
    // The vendor acts as before (its aggregate loads), and nothing is
    // rewritten: the stored event keeps its hash.
    let payout = app.request_payout(vendor, "1.00").await;
    assert_eq!(payout.status, StatusCode::CONFLICT, "{:?}", payout.body);
    let after: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM events WHERE aggregate_id = $1 AND sequence = 1")
            .bind(vendor.to_string())
            .fetch_one(&app.pool)
            .await
            .expect("its hash");
    assert_eq!(hash, after);
    let report = audit::verify(
        &app.pool,
        &audit::dev_signing_key().verifying_key(),
        None,
        None,
    )
    .await
    .expect("verify");
    assert!(report.ok, "{report:?}");
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

/// The `payload` and `metadata` columns of a Parquet export, as text.
fn parquet_text(path: &std::path::Path) -> String {
    use arrow_array::{Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).expect("the parquet file");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a parquet file")
        .build()
        .expect("a reader");
    let mut text = String::new();
    for batch in reader {
        let batch = batch.expect("a batch");
        for column in ["payload", "metadata"] {
            let values = batch
                .column_by_name(column)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .expect("a text column");
            for i in 0..values.len() {
                text.push_str(values.value(i));
                text.push('\n');
            }
        }
    }
    text
}

fn outbound() -> OutboundConfig {
    OutboundConfig {
        allow_loopback: true,
        timeout: Duration::from_secs(2),
        ..OutboundConfig::default()
    }
}

/// A local receiver of webhooks that keeps every body.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
        let router = axum::Router::new()
            .route("/{path}", axum::routing::post(keep))
            .with_state(bodies.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            url,
            bodies,
            server,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn keep(State(bodies): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> &'static str {
    bodies
        .lock()
        .expect("lock")
        .push(String::from_utf8_lossy(&body).into_owned());
    "ok"
}
