//! The analysts' event-stream API (API.md "Queries"): `GET /v1/events`
//! paged by position up to the relay's horizon, `GET /v1/events/stream`
//! (server-sent events, live, resumable with `Last-Event-ID`), and one
//! aggregate's events and state at a point in time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_tests::assert_problem;
use ledger_tests::events::head;
use ledger_tests::pipeline::{eventually, relay_position, set_relay_position};
use ledger_tests::sse::{take_block, SseBlock};
use ledger_tests::{at, nats_url, Answer, TestApp};
use ledger_tests::{rental_item, sale_item};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Some traffic: a vendor, two listings, three orders (one cancelled).
/// Returns the vendor, the rental listing and the order ids.
async fn traffic(app: &TestApp) -> (Uuid, Uuid, Vec<Uuid>) {
    let vendor = app.register_vendor("Lake Rentals").await;
    let kayak = app
        .rental_listing(vendor, "day", "40.00", "100.00", 5)
        .await;
    let paddle = app.sale_listing(vendor, "25.00", 10).await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let order = app
            .place(
                &format!("cust-{n}"),
                vec![
                    rental_item(kayak, 1, &at(n * 3, 0), &at(n * 3 + 2, 0)),
                    sale_item(paddle, 1),
                ],
            )
            .await;
        orders.push(order.uuid("order_id"));
    }
    let cancelled = app
        .cancel_order(
            &app.customer("cust-0"),
            orders[0],
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    (vendor, kayak, orders)
}

/// Waits until the relay has published everything in the table.
async fn relay_caught_up(app: &TestApp) -> i64 {
    let head = head(&app.pool).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            relay_position(&app.pool, &app.stream).await.unwrap_or(0) >= head
        })
        .await,
        "the relay did not reach {head}"
    );
    head
}

/// Every page of `/v1/events?{query}` from `after` on, by `limit`.
async fn all_pages(app: &TestApp, query: &str, limit: i64) -> (Vec<Value>, usize) {
    let token = app.analyst();
    let mut after = 0;
    let mut events = Vec::new();
    let mut pages = 0;
    loop {
        let answer = app
            .get(
                &format!("/v1/events?after={after}&limit={limit}&{query}"),
                &token,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let page = answer.body["events"].as_array().expect("events").clone();
        let next_after = answer.body["next_after"].as_i64().expect("next_after");
        pages += 1;
        assert!(page.len() as i64 <= limit);
        if page.is_empty() {
            assert_eq!(next_after, after, "an empty page keeps next_after");
            return (events, pages);
        }
        assert_eq!(
            next_after,
            page.last().unwrap()["position"].as_i64().unwrap()
        );
        after = next_after;
        events.extend(page);
    }
}

/// `(position, aggregate_type, aggregate_id, sequence, event_type)` of the
/// events table rows matching `condition`, by position.
async fn table(app: &TestApp, condition: &str) -> Vec<(i64, String, String, i64, String)> {
    sqlx::query_as(&format!(
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type
           FROM events WHERE {condition} ORDER BY global_position"
    ))
    .fetch_all(&app.pool)
    .await
    .expect("read the events table")
}

fn keys(events: &[Value]) -> Vec<(i64, String, String, i64, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["position"].as_i64().unwrap(),
                e["aggregate_type"].as_str().unwrap().to_owned(),
                e["aggregate_id"].as_str().unwrap().to_owned(),
                e["sequence"].as_i64().unwrap(),
                e["event_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A server-sent event.
#[derive(Debug)]
struct Message {
    id: i64,
    event: String,
    data: Value,
}

/// Reads `/v1/events/stream` message by message.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = app
            .client
            .get(format!("{}/v1/events/stream?{query}", app.base_url))
            .bearer_auth(app.analyst());
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the ledger answers");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next message (comments skipped); None when none came in time.
    async fn next(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(SseBlock { id, event, data }) = take_block(&mut self.buffer) {
                if let Some(id) = id {
                    return Some(Message {
                        id,
                        event: event.expect("an event name"),
                        data: serde_json::from_str(&data).expect("JSON data"),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                Ok(Ok(None)) => panic!("the stream ended"),
                Ok(Err(e)) => panic!("the stream failed: {e}"),
                Err(_) => return None,
            }
        }
    }

    /// Messages until one with position `upto` (inclusive).
    async fn until(&mut self, upto: i64) -> Vec<Message> {
        let mut messages = Vec::new();
        while messages.last().is_none_or(|m: &Message| m.id < upto) {
            let message = self
                .next(Duration::from_secs(15))
                .await
                .unwrap_or_else(|| panic!("no message up to {upto}: got {messages:?}"));
            messages.push(message);
        }
        messages
    }
}

// ---------------------------------------------------------------------------
// GET /v1/events
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_log_pages_by_position_without_gaps_or_duplicates() {
    let app = TestApp::spawn().await;
    traffic(&app).await;
    let head = relay_caught_up(&app).await;

    let (events, pages) = all_pages(&app, "", 7).await;
    assert!(pages > 3, "several pages: {pages}");
    assert_eq!(keys(&events), table(&app, "TRUE").await);
    assert_eq!(events.last().unwrap()["position"].as_i64(), Some(head));

    // Every event carries the whole row, its payload as stored (all are at
    // their current schema here) and its chain hash.
    let stored: Vec<(i64, String, Value, Value, DateTime<Utc>, Uuid)> = sqlx::query_as(
        "SELECT global_position, event_version, payload::jsonb, metadata::jsonb, recorded_at,
                event_id FROM events ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    for (event, (position, version, mut payload, mut metadata, recorded_at, event_id)) in
        events.iter().zip(stored)
    {
        // Personal fields are stored sealed and served opened (the
        // `canonical` text below is the stored one).
        ledger_tests::events::opened(&app.pool, vec![&mut payload, &mut metadata]).await;
        assert_eq!(event["position"], json!(position));
        assert_eq!(event["event_version"], json!(version));
        assert_eq!(event["payload"], payload);
        assert_eq!(event["metadata"], metadata);
        assert_eq!(event["event_id"], json!(event_id));
        let shown: DateTime<Utc> = event["recorded_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(shown, recorded_at);
        assert!(event.get("stored_version").is_none());
        let hash = event["hash"].as_str().expect("a hash");
        assert_eq!(hash.len(), 64, "{hash}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }
    let cancellation = events
        .iter()
        .find(|e| e["event_type"] == "OrderCancelled")
        .expect("a cancellation");
    assert_eq!(cancellation["event_version"], "2.0");
    assert_eq!(
        cancellation["payload"]["OrderCancelled"]["cause"],
        "customer"
    );

    // The default page is 50, the largest 500; the answer says its horizon.
    let answer = app.get("/v1/events", &app.analyst()).await;
    assert_eq!(
        answer.body["events"].as_array().unwrap().len() as i64,
        head.min(50)
    );
    assert_eq!(
        answer.header("ledger-position"),
        Some(head.to_string().as_str())
    );
    let answer = app.get("/v1/events?limit=500", &app.analyst()).await;
    assert_eq!(answer.body["events"].as_array().unwrap().len() as i64, head);
    assert_eq!(answer.body["next_after"], json!(head));
    // Past the end: nothing, and next_after stays where it was.
    let answer = app
        .get(&format!("/v1/events?after={}", head + 10), &app.auditor())
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["events"], json!([]));
    assert_eq!(answer.body["next_after"], json!(head + 10));
}

#[tokio::test]
async fn filters_select_by_aggregate_and_event_type() {
    let app = TestApp::spawn().await;
    let (vendor, kayak, orders) = traffic(&app).await;
    relay_caught_up(&app).await;

    let (by_type, _) = all_pages(&app, "aggregate_type=Order", 4).await;
    assert_eq!(
        keys(&by_type),
        table(&app, "aggregate_type = 'Order'").await
    );
    assert!(by_type.len() >= 4);

    let (by_id, _) = all_pages(&app, &format!("aggregate_id={}", orders[0]), 2).await;
    assert_eq!(
        keys(&by_id),
        table(&app, &format!("aggregate_id = '{}'", orders[0])).await
    );
    assert_eq!(
        by_id
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["OrderPlaced", "OrderCancelled"]
    );

    let (placed, _) = all_pages(&app, "event_type=OrderPlaced", 2).await;
    assert_eq!(placed.len(), 3);
    assert_eq!(
        keys(&placed),
        table(&app, "event_type = 'OrderPlaced'").await
    );

    let (inventory, _) = all_pages(
        &app,
        &format!("aggregate_type=Inventory&aggregate_id={kayak}&event_type=HoldPlaced"),
        50,
    )
    .await;
    assert_eq!(inventory.len(), 3);
    assert!(inventory.iter().all(|e| e["aggregate_id"] == json!(kayak)));

    let (vendor_events, _) = all_pages(
        &app,
        &format!("aggregate_type=Vendor&aggregate_id={vendor}"),
        50,
    )
    .await;
    assert_eq!(vendor_events[0]["event_type"], "VendorRegistered");

    let (none, _) = all_pages(&app, "event_type=NoSuchEvent", 50).await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn parameters_are_validated() {
    let app = TestApp::spawn().await;
    let token = app.analyst();
    for query in ["limit=0", "limit=501", "limit=-3", "after=-1"] {
        let answer = app.get(&format!("/v1/events?{query}"), &token).await;
        assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    }
    for query in ["after=abc", "limit=ten", "colour=blue"] {
        let answer = app.get(&format!("/v1/events?{query}"), &token).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    let answer = app.get("/v1/events?limit=500", &token).await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = app
        .send(
            Method::GET,
            "/v1/events/stream",
            Some(&token),
            None,
            &[("Last-Event-ID", "yesterday")],
        )
        .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test]
async fn only_analysts_auditors_and_admins_read_the_log() {
    let app = TestApp::spawn().await;
    let (vendor, _, orders) = traffic(&app).await;
    let order = orders[1];
    let paths = [
        "/v1/events".to_owned(),
        "/v1/events/stream".to_owned(),
        format!("/v1/aggregates/Order/{order}/events"),
        format!("/v1/aggregates/Order/{order}/state"),
    ];
    for path in &paths {
        for token in [app.customer("cust-1"), app.vendor(vendor)] {
            let answer = app.get(path, &token).await;
            assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
        }
        let answer = app.send(Method::GET, path, None, None, &[]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in &paths[2..] {
        for token in [app.analyst(), app.auditor(), app.admin()] {
            let answer = app.get(path, &token).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
        }
    }
}

// ---------------------------------------------------------------------------
// The horizon
// ---------------------------------------------------------------------------

/// A ledger without relay: the horizon moves only when the test moves it.
async fn spawn_without_relay() -> TestApp {
    TestApp::spawn_parts(
        &nats_url(),
        ledger::Parts {
            command_api: true,
            read_api: true,
            ..ledger::Parts::NONE
        },
    )
    .await
}

#[tokio::test]
async fn nothing_above_the_relays_published_position_is_shown() {
    let app = spawn_without_relay().await;
    traffic(&app).await;
    let head = head(&app.pool).await;
    assert!(head > 10);
    let token = app.analyst();

    // Nothing published yet: nothing shown, and clients keep their place.
    let answer = app.get("/v1/events?after=0", &token).await;
    assert_eq!(answer.body["events"], json!([]), "{:?}", answer.body);
    assert_eq!(answer.body["next_after"], json!(0));

    // Published up to the middle: exactly the events up to there.
    let middle = head / 2;
    set_relay_position(&app.pool, &app.stream, middle).await;
    let answer = app.get("/v1/events?limit=500", &token).await;
    let shown = answer.body["events"].as_array().unwrap();
    assert_eq!(
        keys(shown),
        table(&app, &format!("global_position <= {middle}")).await
    );
    assert_eq!(answer.body["next_after"], json!(middle));
    assert_eq!(
        answer.header("ledger-position"),
        Some(middle.to_string().as_str())
    );
    let answer = app.get(&format!("/v1/events?after={middle}"), &token).await;
    assert_eq!(answer.body["events"], json!([]));

    // A live stream stops at the horizon too, and goes on when it moves.
    let mut stream = SseReader::open(&app, "after=0", None).await;
    let first = stream.until(middle).await;
    assert_eq!(first.len() as i64, middle);
    assert!(stream.next(Duration::from_millis(600)).await.is_none());
    set_relay_position(&app.pool, &app.stream, head).await;
    let rest = stream.until(head).await;
    assert_eq!(
        rest.iter().map(|m| m.id).collect::<Vec<_>>(),
        (middle + 1..=head).collect::<Vec<_>>()
    );
    let answer = app
        .get(&format!("/v1/events?after={middle}&limit=500"), &token)
        .await;
    assert_eq!(
        keys(answer.body["events"].as_array().unwrap()),
        table(&app, &format!("global_position > {middle}")).await
    );
}

// ---------------------------------------------------------------------------
// GET /v1/events/stream
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_stream_replays_then_tails_and_resumes_from_the_last_event_id() {
    let app = TestApp::spawn().await;
    traffic(&app).await;
    let head = relay_caught_up(&app).await;

    let mut stream = SseReader::open(&app, "after=0", None).await;
    let replayed = stream.until(head).await;
    assert_eq!(
        replayed.iter().map(|m| m.id).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );
    // The same objects as the paged API, named by type.
    let page = app.get("/v1/events?limit=500", &app.analyst()).await;
    let paged = page.body["events"].as_array().unwrap();
    for (message, event) in replayed.iter().zip(paged) {
        assert_eq!(&message.data, event);
        assert_eq!(message.event, event["event_type"].as_str().unwrap());
        assert_eq!(message.id, event["position"].as_i64().unwrap());
    }

    // Something happens after connecting: it arrives.
    let vendor = app.register_vendor("Late Vendor").await;
    let new_head = relay_caught_up(&app).await;
    let live = stream.until(new_head).await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].event, "VendorRegistered");
    assert_eq!(live[0].data["aggregate_id"], json!(vendor));
    drop(stream);

    // Resuming: Last-Event-ID wins over `after`, only later events come.
    let resume_at = head - 3;
    let mut resumed = SseReader::open(&app, "after=0", Some(&resume_at.to_string())).await;
    let again = resumed.until(new_head).await;
    assert_eq!(
        again.iter().map(|m| m.id).collect::<Vec<_>>(),
        (resume_at + 1..=new_head).collect::<Vec<_>>()
    );
    // `after` alone works the same way.
    let mut from_after = SseReader::open(&app, &format!("after={head}"), None).await;
    let first = from_after
        .next(Duration::from_secs(10))
        .await
        .expect("a message");
    assert_eq!(first.id, new_head);

    // A filtered stream.
    let mut orders = SseReader::open(&app, "after=0&event_type=OrderPlaced", None).await;
    let placed = table(&app, "event_type = 'OrderPlaced'").await;
    let last = placed.last().unwrap().0;
    let messages = orders.until(last).await;
    assert_eq!(
        messages.iter().map(|m| m.id).collect::<Vec<_>>(),
        placed.iter().map(|p| p.0).collect::<Vec<_>>()
    );

    // The server shuts down cleanly with streams open.
    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("the server stops with live streams open");
}

// ---------------------------------------------------------------------------
// /v1/aggregates/{type}/{id}/…
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_aggregates_events_and_its_state_at_a_point() {
    let app = TestApp::spawn().await;
    let (_, kayak, orders) = traffic(&app).await;
    let token = app.analyst();
    let order = orders[1];
    let placed_order = Answer {
        status: StatusCode::CREATED,
        headers: Default::default(),
        body: json!({"order_id": order, "total": order_total(&app, order).await}),
    };
    app.pay(&placed_order).await;
    let cancelled = app
        .cancel_order(&app.admin(), order, json!({"reason": "out of season"}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);

    let answer = app
        .get(&format!("/v1/aggregates/Order/{order}/events"), &token)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["aggregate_type"], "Order");
    assert_eq!(answer.body["aggregate_id"], json!(order));
    let events = answer.body["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentCaptured",
            "OrderConfirmed",
            "OrderCancelled",
            "RefundIssued"
        ]
    );
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    assert_eq!(
        keys(events),
        table(
            &app,
            &format!("aggregate_type = 'Order' AND aggregate_id = '{order}'")
        )
        .await
    );

    let state = |query: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.get(
                &format!("/v1/aggregates/Order/{order}/state{query}"),
                &token,
            )
            .await
        }
    };
    // Now: refunded.
    let now = state(String::new()).await;
    assert_eq!(now.status, StatusCode::OK, "{:?}", now.body);
    assert_eq!(now.body["sequence"], 5);
    assert_eq!(now.body["state"]["status"], "refunded");
    assert_eq!(now.body["state"]["cancel_reason"], "out of season");
    assert!(now.body.get("as_of").is_none());
    // After the first event: placed; after the third: confirmed and paid.
    let placed = state("?as_of_sequence=1".into()).await;
    assert_eq!(placed.body["sequence"], 1);
    assert_eq!(placed.body["state"]["status"], "placed");
    assert_eq!(placed.body["state"]["captured"], "0");
    let confirmed = state("?as_of_sequence=3".into()).await;
    assert_eq!(confirmed.body["state"]["status"], "confirmed");
    assert_eq!(confirmed.body["position"], events[2]["position"]);
    // Beyond the last sequence: the current state.
    let beyond = state("?as_of_sequence=99".into()).await;
    assert_eq!(beyond.body["sequence"], 5);

    // By time: as recorded at the confirmation.
    let confirmed_at = events[2]["recorded_at"].as_str().unwrap().to_owned();
    let by_time = state(format!("?as_of={}", urlencode(&confirmed_at))).await;
    assert_eq!(by_time.status, StatusCode::OK, "{:?}", by_time.body);
    assert_eq!(by_time.body["sequence"], 3);
    assert_eq!(by_time.body["state"]["status"], "confirmed");
    let as_of: DateTime<Utc> = by_time.body["as_of"].as_str().unwrap().parse().unwrap();
    assert_eq!(as_of, confirmed_at.parse::<DateTime<Utc>>().unwrap());
    // Before the order existed: 404.
    let before = state(format!("?as_of={}", urlencode("2001-01-01T00:00:00Z"))).await;
    assert_problem(&before, StatusCode::NOT_FOUND, "not-found");
    let zero = state("?as_of_sequence=0".into()).await;
    assert_problem(&zero, StatusCode::NOT_FOUND, "not-found");
    // Both at once: 422; a bad one: 400.
    let both = state(format!(
        "?as_of_sequence=2&as_of={}",
        urlencode(&confirmed_at)
    ))
    .await;
    assert_problem(&both, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let bad = state("?as_of=yesterday".into()).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST, "bad-request");

    // Other aggregate types rebuild their own domain state.
    let inventory = app
        .get(&format!("/v1/aggregates/Inventory/{kayak}/state"), &token)
        .await;
    assert_eq!(inventory.status, StatusCode::OK, "{:?}", inventory.body);
    assert_eq!(inventory.body["aggregate_type"], "Inventory");
    assert!(inventory.body["state"].is_object());
    let listing = app
        .get(
            &format!("/v1/aggregates/Listing/{kayak}/state?as_of_sequence=1"),
            &token,
        )
        .await;
    assert_eq!(listing.status, StatusCode::OK, "{:?}", listing.body);
    assert_eq!(listing.body["sequence"], 1);

    // Unknown type, unknown id: 404.
    for path in [
        format!("/v1/aggregates/Spaceship/{order}/events"),
        format!("/v1/aggregates/Spaceship/{order}/state"),
        format!("/v1/aggregates/Order/{}/events", Uuid::now_v7()),
        format!("/v1/aggregates/Order/{}/state", Uuid::now_v7()),
        "/v1/aggregates/Order/not-an-order/events".to_owned(),
    ] {
        let answer = app.get(&path, &token).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
}

async fn order_total(app: &TestApp, order: Uuid) -> String {
    let order = app
        .command_app()
        .orders
        .load(&order.to_string(), &command_api::Principal::system("test"))
        .await
        .expect("load the order");
    command_api::routes::money(order.total())
}

fn urlencode(value: &str) -> String {
    value.replace('+', "%2B").replace(':', "%3A")
}
