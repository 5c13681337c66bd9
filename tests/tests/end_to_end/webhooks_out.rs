//! Outgoing webhooks (issue 17 item 2): endpoints registered by vendors and
//! admins, deliveries fanned out by the durable `webhooks` consumer, signed
//! `Ledger-Signature` with `Ledger-Event-Id`, retried with backoff on an
//! injected clock until 24 h, logged and redelivered by hand; a local
//! receiver that is down, slow, or answers 500 then 200; the ledger killed
//! mid-delivery loses nothing and repeats with the same event id.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use chrono::Utc;
use command_api::outbound::dispatch::Dispatcher;
use command_api::outbound::OutboundConfig;
use ledger_clock::{Clock, ManualClock};
use ledger_tests::pipeline::{checkpoint, eventually};
use ledger_tests::scenario::sale_item;
use ledger_tests::{Marketplace, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    event_id: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
    /// Held back by a `Slow` reply.
    held: bool,
}

/// How the receiver answers the next requests of a path.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Waits this long first, then answers 200.
    Slow(Duration),
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
}

/// A local HTTP receiver of webhooks.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(listener)
    }

    async fn start_at(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the port again");
        Self::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Receiver {
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(ReceiverState::default());
        let router = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { url, state, server }
    }

    fn script(&self, path: &str, replies: &[Reply]) {
        self.state
            .script
            .lock()
            .expect("lock")
            .insert(path.to_owned(), replies.iter().copied().collect());
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let received = self.state.received.lock().expect("lock");
        received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AxumStatus {
    let reply = state
        .script
        .lock()
        .expect("lock")
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(Reply::Status(200));
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let answered = match reply {
        Reply::Status(code) => code,
        Reply::Slow(_) => 200,
    };
    state.received.lock().expect("lock").push(Received {
        path,
        event_id: header("ledger-event-id"),
        signature: header("ledger-signature"),
        body: body.to_vec(),
        answered,
        held: matches!(reply, Reply::Slow(_)),
    });
    if let Reply::Slow(wait) = reply {
        tokio::time::sleep(wait).await;
    }
    AxumStatus::from_u16(answered).unwrap_or(AxumStatus::OK)
}

async fn register(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (Uuid, String) {
    let answer = app
        .post(
            "/v1/webhook-endpoints",
            token,
            json!({"url": url, "event_types": types}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    (
        answer.uuid("endpoint_id"),
        answer.body["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Waits until the `webhooks` consumer has fanned out the whole log.
async fn fanned_out(app: &TestApp) {
    // What the payments set off (the invoices the policies issue) is
    // recorded first: a later event would miss the fan-out it is counted in.
    ledger_tests::pipeline::settle(app, Duration::from_secs(30))
        .await
        .expect("the policies settle");
    assert!(
        eventually(Duration::from_secs(20), || async {
            checkpoint(&app.pool, "webhooks").await >= app.head().await
        })
        .await,
        "the webhooks consumer did not reach the head"
    );
}

async fn statuses(app: &TestApp, endpoint: Uuid) -> Vec<(String, i32, Option<i32>)> {
    sqlx::query_as(
        "SELECT status, attempts, last_status_code FROM webhook_deliveries
          WHERE endpoint_id = $1 ORDER BY position",
    )
    .bind(endpoint)
    .fetch_all(&app.pool)
    .await
    .expect("read deliveries")
}

fn test_outbound() -> OutboundConfig {
    OutboundConfig {
        allow_loopback: true,
        timeout: Duration::from_secs(1),
        ..OutboundConfig::default()
    }
}

/// Runs dispatch rounds until none is due at the clock's time.
async fn dispatch_all(dispatcher: &Dispatcher) {
    for _ in 0..100 {
        if dispatcher.round().await.expect("a round") == 0 {
            return;
        }
    }
    panic!("deliveries kept coming");
}

#[tokio::test]
async fn deliveries_are_signed_scoped_and_retried_after_500s_until_a_200() {
    let app = TestApp::spawn_with(|c| c.outbound.dispatch = false).await;
    let market = Marketplace::new(&app);
    let shops = market.with_harbour_and_alpine(5, 10).await;
    let receiver = Receiver::start().await;

    // Who may register, and which URLs.
    let harbour = app.vendor(shops.harbour);
    for (token, expected) in [
        (app.customer("customer-a"), StatusCode::FORBIDDEN),
        (app.analyst(), StatusCode::FORBIDDEN),
    ] {
        let answer = app
            .post(
                "/v1/webhook-endpoints",
                &token,
                json!({"url": format!("{}/x", receiver.url), "event_types": ["*"]}),
            )
            .await;
        assert_eq!(answer.status, expected);
    }
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/",
        "ftp://example.com/",
    ] {
        let answer = app
            .post(
                "/v1/webhook-endpoints",
                &harbour,
                json!({"url": url, "event_types": ["OrderPlaced"]}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(
            answer.body["errors"][0]["field"], "url",
            "{:?}",
            answer.body
        );
    }
    let (vendor_endpoint, secret) = register(
        &app,
        &harbour,
        &format!("{}/harbour", receiver.url),
        &["OrderPlaced", "OrderConfirmed", "PaymentCaptured"],
    )
    .await;
    let (admin_endpoint, _) = register(
        &app,
        &app.admin(),
        &format!("{}/admin", receiver.url),
        &["*"],
    )
    .await;
    // A retried registration with its Idempotency-Key registers once.
    let body = json!({"url": format!("{}/retried", receiver.url), "event_types": ["Nothing"]});
    let once = app
        .post_with_key(
            "/v1/webhook-endpoints",
            &app.admin(),
            body.clone(),
            "register-1",
        )
        .await;
    let again = app
        .post_with_key("/v1/webhook-endpoints", &app.admin(), body, "register-1")
        .await;
    assert_eq!(once.status, StatusCode::CREATED);
    assert_eq!(once.body["endpoint_id"], again.body["endpoint_id"]);
    let registered_at = app.head().await;

    let mixed = market
        .with_paid_order(
            "customer-a",
            vec![
                ledger_tests::scenario::rental_days(shops.kayak, 1, 1, 2),
                sale_item(shops.boots, 1),
            ],
        )
        .await;
    let alpine_only = market
        .with_paid_order("customer-b", vec![sale_item(shops.boots, 1)])
        .await;
    fanned_out(&app).await;

    // Harbour: its order's placement and confirmation; no payments (not a
    // vendor's), nothing of the order it is not in.
    receiver.script(
        "harbour",
        &[Reply::Status(500), Reply::Status(500), Reply::Status(500)],
    );
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let dispatcher = Dispatcher::new(app.pool.clone(), clock.clone(), test_outbound());
    dispatch_all(&dispatcher).await;
    let first = statuses(&app, vendor_endpoint).await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first
        .iter()
        .all(|(s, a, c)| s == "pending" && *a == 1 && *c == Some(500)));
    // Not due again before the backoff (10 s ± 20 %).
    clock.advance(chrono::Duration::seconds(7));
    dispatch_all(&dispatcher).await;
    assert_eq!(receiver.received("harbour").len(), 2);
    clock.advance(chrono::Duration::seconds(6));
    dispatch_all(&dispatcher).await;
    clock.advance(chrono::Duration::seconds(25));
    dispatch_all(&dispatcher).await;
    let last = statuses(&app, vendor_endpoint).await;
    assert!(
        last.iter()
            .all(|(s, _, c)| s == "delivered" && *c == Some(200)),
        "{last:?}"
    );
    let mut attempts: Vec<i32> = last.iter().map(|(_, a, _)| *a).collect();
    attempts.sort();
    assert_eq!(attempts, vec![2, 3], "500, 500, 500 then 200s");

    let got = receiver.received("harbour");
    assert_eq!(got.len(), 5);
    for r in &got {
        command_api::routes::webhooks::verify_signature(
            &r.signature,
            &r.body,
            &secret,
            clock.now(),
        )
        .expect("signed with the endpoint's secret");
        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(body["event_id"].as_str(), Some(r.event_id.as_str()));
        assert_eq!(body["aggregate_id"], json!(mixed.order_id.to_string()));
        assert_ne!(
            body["aggregate_id"],
            json!(alpine_only.order_id.to_string())
        );
        if body["event_type"] == "OrderPlaced" {
            let placed = &body["payload"]["OrderPlaced"];
            assert!(placed.get("customer_id").is_none(), "{placed}");
            let lines = placed["priced"]["lines"].as_array().expect("lines");
            assert!(lines
                .iter()
                .all(|l| l["vendor_id"] == json!(shops.harbour.to_string())));
        }
    }
    // Retries of one event carry its id: the receiver deduplicates by it.
    let mut by_event: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        *by_event.entry(r.event_id.as_str()).or_default() += 1;
    }
    assert_eq!(by_event.len(), 2);

    // The admin's endpoint got every event since it was registered, once.
    let events_since: Vec<Uuid> = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE global_position > $1 ORDER BY global_position",
    )
    .bind(registered_at)
    .fetch_all(&app.pool)
    .await
    .expect("events");
    let admin_ids: Vec<Uuid> = receiver
        .received("admin")
        .iter()
        .map(|r| r.event_id.parse().expect("uuid"))
        .collect();
    assert_eq!(admin_ids.len(), events_since.len());
    let mut sorted = admin_ids.clone();
    sorted.sort();
    let mut expected = events_since.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert!(statuses(&app, admin_endpoint)
        .await
        .iter()
        .all(|(s, a, _)| s == "delivered" && *a == 1));

    // The delivery log, the owner's and the admin's; not another vendor's.
    let log = app
        .get(
            &format!("/v1/webhook-endpoints/{vendor_endpoint}/deliveries"),
            &harbour,
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
    let items = log.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for item in items {
        for field in [
            "delivery_id",
            "event_id",
            "status",
            "attempts",
            "last_status_code",
            "next_attempt_at",
        ] {
            assert!(item.get(field).is_some(), "{field} in {item}");
        }
    }
    let other = app
        .get(
            &format!("/v1/webhook-endpoints/{vendor_endpoint}/deliveries"),
            &app.vendor(shops.alpine),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let listed = app.get("/v1/webhook-endpoints", &harbour).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert!(listed.body["items"][0].get("secret").is_none());
    let all = app.get("/v1/webhook-endpoints", &app.admin()).await;
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(3));
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_down_then_slow_then_failing_for_24_hours_is_given_up_and_redelivered_by_hand() {
    let app = TestApp::spawn_with(|c| c.outbound.dispatch = false).await;
    // A port nothing listens on (yet).
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let (endpoint, secret) = register(&app, &app.admin(), &url, &["VendorRegistered"]).await;
    app.register_vendor("Late Receiver").await;
    fanned_out(&app).await;
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let dispatcher = Dispatcher::new(app.pool.clone(), clock.clone(), test_outbound());

    // Down: not reached, retried.
    dispatch_all(&dispatcher).await;
    let down: (String, i32, Option<String>) = sqlx::query_as(
        "SELECT status, attempts, last_error FROM webhook_deliveries WHERE endpoint_id = $1",
    )
    .bind(endpoint)
    .fetch_one(&app.pool)
    .await
    .expect("the delivery");
    assert_eq!((down.0.as_str(), down.1), ("pending", 1));
    assert!(down.2.unwrap_or_default().contains("not reached"));

    // Slow: past the attempt's timeout is a failure too.
    let receiver = Receiver::start_at(port).await;
    receiver.script("hook", &[Reply::Slow(Duration::from_secs(3))]);
    clock.advance(chrono::Duration::seconds(13));
    dispatch_all(&dispatcher).await;
    let slow = statuses(&app, endpoint).await;
    assert_eq!(slow, vec![("pending".to_owned(), 2, None)]);

    // 500 for a day: given up after 24 h of backoff.
    receiver.script("hook", &[Reply::Status(500); 200]);
    let mut rounds = 0;
    while statuses(&app, endpoint).await[0].0 == "pending" {
        rounds += 1;
        assert!(rounds < 100, "still retrying after {rounds} hours");
        clock.advance(chrono::Duration::minutes(73));
        dispatch_all(&dispatcher).await;
    }
    let failed = statuses(&app, endpoint).await;
    assert_eq!(failed[0].0, "failed");
    assert_eq!(failed[0].2, Some(500));
    assert!(failed[0].1 > 15, "{failed:?}");
    let attempts_before = failed[0].1;

    // Redelivered by hand, with a rotated secret: delivered, signed anew.
    let rotated = app
        .post(
            &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            &app.admin(),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.body);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    receiver.script("hook", &[]);
    let delivery_id: Uuid =
        sqlx::query_scalar("SELECT delivery_id FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(endpoint)
            .fetch_one(&app.pool)
            .await
            .expect("the delivery");
    let redeliver = app
        .post(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries/{delivery_id}/redeliver"),
            &app.admin(),
            json!({}),
        )
        .await;
    assert_eq!(
        redeliver.status,
        StatusCode::ACCEPTED,
        "{:?}",
        redeliver.body
    );
    dispatch_all(&dispatcher).await;
    let done = statuses(&app, endpoint).await;
    assert_eq!(done[0].0, "delivered");
    assert_eq!(done[0].1, attempts_before + 1);
    let last = receiver.received("hook").pop().expect("the redelivery");
    assert_eq!(last.answered, 200);
    command_api::routes::webhooks::verify_signature(
        &last.signature,
        &last.body,
        &new_secret,
        clock.now(),
    )
    .expect("signed with the rotated secret");
    assert!(command_api::routes::webhooks::verify_signature(
        &last.signature,
        &last.body,
        &secret,
        clock.now()
    )
    .is_err());

    // Deleted: listed no more, and later events are not delivered to it.
    let deleted = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/webhook-endpoints/{endpoint}"),
            Some(&app.admin()),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    app.register_vendor("After Deletion").await;
    fanned_out(&app).await;
    assert_eq!(statuses(&app, endpoint).await.len(), 1);
    let listed = app.get("/v1/webhook-endpoints", &app.admin()).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(0));
    app.stop().await;
}

#[tokio::test]
async fn the_ledger_killed_mid_delivery_loses_nothing_and_repeats_with_the_same_event_id() {
    let mut app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    // The first delivery hangs past the kill.
    receiver.script("hook", &[Reply::Slow(Duration::from_secs(30))]);
    register(
        &app,
        &app.admin(),
        &format!("{}/hook", receiver.url),
        &["VendorRegistered"],
    )
    .await;
    let mut vendors = Vec::new();
    for n in 0..5 {
        vendors.push(app.register_vendor(&format!("Vendor {n}")).await);
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            !receiver.received("hook").is_empty()
        })
        .await,
        "a delivery began"
    );
    app.take_server().abort();

    // A new process on the same database and stream takes over.
    let (_url, replica) = app.spawn_replica().await;
    let expected: Vec<String> = sqlx::query_scalar(
        "SELECT event_id::text FROM events WHERE event_type = 'VendorRegistered' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events");
    assert_eq!(expected.len(), 5);
    let all_delivered = eventually(Duration::from_secs(60), || async {
        let delivered: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap_or(0);
        delivered == 5
    })
    .await;
    assert!(all_delivered, "{:?}", receiver.received("hook"));
    let received = receiver.received("hook");
    for id in &expected {
        assert!(
            received.iter().any(|r| &r.event_id == id),
            "{id} was delivered"
        );
    }
    // The one in flight at the kill came again, under the same event id.
    let held = &received
        .iter()
        .find(|r| r.held)
        .expect("the held delivery")
        .event_id;
    assert!(
        received.iter().filter(|r| &r.event_id == held).count() >= 2,
        "{received:?}"
    );
    replica.stop().await.expect("the replica stops");
}
