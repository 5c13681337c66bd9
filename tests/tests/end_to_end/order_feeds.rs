//! `GET /v1/orders/stream` (issue 17 item 3): order events live, scoped to
//! who asks (a customer its orders, a vendor its parts, an admin all),
//! resumable with `Last-Event-ID`, and shared by many feeds through one
//! watcher per process (200 feeds cost the database no more than one).

use std::collections::BTreeSet;
use std::time::Duration;

use ledger_tests::events::head;
use ledger_tests::pipeline::{eventually, relay_position};
use ledger_tests::scenario::{rental_days, sale_item};
use ledger_tests::sse::{take_block, SseBlock};
use ledger_tests::tokens::{token_with, unix_now};
use ledger_tests::{Marketplace, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

/// One order event as a feed delivered it.
#[derive(Clone, Debug)]
struct Message {
    /// Absent on `token-expired` only.
    id: Option<i64>,
    event: String,
    data: Value,
}

/// `/v1/orders/stream` read message by message.
struct OrderFeed {
    response: reqwest::Response,
    buffer: String,
}

impl OrderFeed {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<i64>) -> OrderFeed {
        let mut request = app
            .client
            .get(format!("{}/v1/orders/stream?after=0", app.base_url))
            .bearer_auth(token);
        if let Some(last) = last_event_id {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = request.send().await.expect("the ledger answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")));
        OrderFeed {
            response,
            buffer: String::new(),
        }
    }

    /// The next message, or `None` when nothing came within `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(SseBlock { id, event, data }) = take_block(&mut self.buffer) {
                if let Some(event) = event {
                    return Some(Message {
                        id,
                        event,
                        data: serde_json::from_str(&data).expect("JSON data"),
                    });
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Every message until the feed has been silent for a while.
    async fn drain(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Some(m) = self.next(Duration::from_secs(2)).await {
            messages.push(m);
        }
        messages
    }

    /// Messages until one at or past `position` (the feed must get there).
    async fn until(&mut self, position: i64) -> Vec<Message> {
        let mut messages: Vec<Message> = Vec::new();
        while messages
            .last()
            .is_none_or(|m| m.id.is_none_or(|id| id < position))
        {
            match self.next(Duration::from_secs(15)).await {
                Some(m) => messages.push(m),
                None => panic!("no event up to {position}; got {messages:?}"),
            }
        }
        messages
    }
}

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

/// The positions of every order event in the log (of `order_id` if given).
async fn order_positions(pool: &PgPool, order_id: Option<uuid::Uuid>) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT global_position FROM events WHERE aggregate_type = 'Order'
           AND ($1::text IS NULL OR aggregate_id = $1) ORDER BY global_position",
    )
    .bind(order_id.map(|id| id.to_string()))
    .fetch_all(pool)
    .await
    .expect("read the order events")
}

fn ids(messages: &[Message]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m.id.expect("an order event has an id"))
        .collect()
}

fn orders_of(messages: &[Message]) -> BTreeSet<String> {
    messages
        .iter()
        .map(|m| m.data["order_id"].as_str().expect("order_id").to_owned())
        .collect()
}

#[tokio::test]
async fn each_follower_sees_only_its_orders_and_parts_live_and_on_catch_up() {
    let app = TestApp::spawn().await;
    let market = Marketplace::new(&app);
    let shops = market.with_harbour_and_alpine(5, 10).await;
    let bystander = market.with_vendor("Bystander").await;
    relay_caught_up(&app).await;

    // Open before anything is ordered: what follows comes live.
    let mut live = [
        OrderFeed::open(&app, &app.customer("customer-a"), None).await,
        OrderFeed::open(&app, &app.customer("customer-b"), None).await,
        OrderFeed::open(&app, &app.vendor(shops.harbour), None).await,
        OrderFeed::open(&app, &app.vendor(shops.alpine), None).await,
        OrderFeed::open(&app, &app.vendor(bystander), None).await,
        OrderFeed::open(&app, &app.admin(), None).await,
    ];

    // customer-a: kayaks (Harbour) and boots (Alpine), paid; customer-b:
    // boots only, shipped by Alpine.
    let mixed = market
        .with_paid_order(
            "customer-a",
            vec![rental_days(shops.kayak, 1, 1, 3), sale_item(shops.boots, 1)],
        )
        .await;
    let boots = market
        .with_paid_order("customer-b", vec![sale_item(shops.boots, 2)])
        .await;
    let ship = app
        .post(
            &format!(
                "/v1/orders/{}/vendors/{}/ship",
                boots.order_id, shops.alpine
            ),
            &app.vendor(shops.alpine),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(ship.status, StatusCode::OK, "{:?}", ship.body);
    let end = relay_caught_up(&app).await;

    let all = order_positions(&app.pool, None).await;
    let of_mixed = order_positions(&app.pool, Some(mixed.order_id)).await;
    let of_boots = order_positions(&app.pool, Some(boots.order_id)).await;
    assert!(all.len() >= 5, "{all:?}");

    let [customer_a, customer_b, harbour, alpine, bystanders, admin] = &mut live;
    let admin_got = admin.until(*all.last().expect("order events")).await;
    assert_eq!(ids(&admin_got), all, "the admin sees every order event");

    let a = customer_a.until(*of_mixed.last().expect("events")).await;
    assert_eq!(ids(&a), of_mixed, "customer-a: its own order, whole");
    assert!(a.iter().any(|m| m.event == "PaymentCaptured"));
    let b = customer_b.until(*of_boots.last().expect("events")).await;
    assert_eq!(ids(&b), of_boots, "customer-b: its own order, whole");

    let harbour_got = harbour.drain().await;
    assert_eq!(
        orders_of(&harbour_got),
        BTreeSet::from([mixed.order_id.to_string()]),
        "a vendor never sees an order it is not in: {harbour_got:?}"
    );
    let placed = harbour_got
        .iter()
        .find(|m| m.event == "OrderPlaced")
        .expect("Harbour sees the order placed");
    let fields = &placed.data["payload"]["OrderPlaced"];
    assert!(fields.get("customer_id").is_none(), "{placed:?}");
    let lines = fields["priced"]["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "Harbour's line only: {lines:?}");
    assert_eq!(
        lines[0]["vendor_id"].as_str(),
        Some(shops.harbour.to_string().as_str())
    );
    assert!(
        harbour_got
            .iter()
            .all(|m| !m.event.starts_with("Payment") && m.event != "PartShipped"),
        "no payments, no other vendor's parts: {harbour_got:?}"
    );
    assert!(harbour_got.iter().any(|m| m.event == "OrderConfirmed"));

    let alpine_got = alpine.drain().await;
    assert_eq!(
        orders_of(&alpine_got),
        BTreeSet::from([mixed.order_id.to_string(), boots.order_id.to_string()])
    );
    assert!(alpine_got.iter().any(|m| m.event == "PartShipped"));
    assert!(
        bystanders.drain().await.is_empty(),
        "a vendor in no order sees nothing"
    );

    // Opened now from the start, each feed catches up to the same events.
    for (token, expected) in [
        (app.customer("customer-a"), ids(&a)),
        (app.vendor(shops.harbour), ids(&harbour_got)),
        (app.vendor(shops.alpine), ids(&alpine_got)),
        (app.admin(), all.clone()),
    ] {
        let mut again = OrderFeed::open(&app, &token, None).await;
        assert_eq!(ids(&again.drain().await), expected);
    }
    assert!(end >= *all.last().unwrap_or(&0));
    app.stop().await;
}

#[tokio::test]
async fn a_feed_resumes_after_its_last_event_id_missing_nothing() {
    let app = TestApp::spawn().await;
    let market = Marketplace::new(&app);
    let shops = market.with_harbour_and_alpine(5, 10).await;
    let first = market
        .with_paid_order("customer-a", vec![sale_item(shops.boots, 1)])
        .await;
    relay_caught_up(&app).await;
    let of_first = order_positions(&app.pool, Some(first.order_id)).await;
    assert!(of_first.len() >= 2, "{of_first:?}");

    // Read two events, then the connection drops.
    let mut feed = OrderFeed::open(&app, &app.customer("customer-a"), None).await;
    let head_part = [
        feed.next(Duration::from_secs(10)).await.expect("first"),
        feed.next(Duration::from_secs(10)).await.expect("second"),
    ];
    drop(feed);
    assert_eq!(ids(&head_part), of_first[..2].to_vec());

    // More happens while the client is away.
    let second = market
        .with_paid_order("customer-a", vec![sale_item(shops.boots, 2)])
        .await;
    relay_caught_up(&app).await;
    let last = head_part.last().and_then(|m| m.id);
    let mut resumed = OrderFeed::open(&app, &app.customer("customer-a"), last).await;
    let of_second = order_positions(&app.pool, Some(second.order_id)).await;
    let rest = resumed.until(*of_second.last().expect("events")).await;
    let expected: Vec<i64> = of_first[2..].iter().chain(&of_second).copied().collect();
    assert_eq!(
        ids(&rest),
        expected,
        "resumed after the last id, no gaps, no repeats"
    );

    // A bad Last-Event-ID is a 400, a negative `after` a 422.
    let bad = app
        .client
        .get(format!("{}/v1/orders/stream", app.base_url))
        .bearer_auth(app.customer("customer-a"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let negative = app
        .client
        .get(format!("{}/v1/orders/stream?after=-1", app.base_url))
        .bearer_auth(app.customer("customer-a"))
        .send()
        .await
        .expect("answers");
    assert_eq!(negative.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}

/// Transactions the ledger's database committed so far.
async fn commits(pool: &PgPool) -> i64 {
    // Busy backends flush their statistics about once a second: close
    // enough for telling a watcher from a poll per feed.
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .expect("read the statistics")
}

/// The resident memory of this process (the test and the ledger it runs), in KiB.
fn resident_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .expect("VmRSS in /proc/self/status")
}

#[tokio::test]
async fn two_hundred_feeds_share_one_watcher_with_bounded_memory() {
    const FEEDS: usize = 200;
    let app = TestApp::spawn().await;
    let market = Marketplace::new(&app);
    let shops = market.with_harbour_and_alpine(5, 1_000).await;
    relay_caught_up(&app).await;

    // What the ledger's database does idle with one feed open.
    let mut one = OrderFeed::open(&app, &app.customer("customer-0"), None).await;
    assert!(one.next(Duration::from_secs(1)).await.is_none());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = commits(&app.pool).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_with_one = commits(&app.pool).await - before;
    drop(one);

    let memory_before = resident_kib();
    let mut feeds = Vec::with_capacity(FEEDS);
    for i in 0..FEEDS {
        feeds.push(OrderFeed::open(&app, &app.customer(&format!("customer-{i}")), None).await);
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = commits(&app.pool).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_with_all = commits(&app.pool).await - before;
    println!(
        "idle for 3 s: {idle_with_one} transactions with one feed, {idle_with_all} with {FEEDS}"
    );
    // A poll per feed every 150 ms would be about 4,000 transactions here.
    assert!(
        idle_with_all <= idle_with_one + 150,
        "{FEEDS} idle feeds made {idle_with_all} transactions in 3 s, one feed {idle_with_one}"
    );

    // Orders of a few of the customers: each gets its own, live.
    let chosen = [7usize, 99, 150];
    let mut orders = Vec::new();
    for i in chosen {
        let order = market
            .with_placed_order(&format!("customer-{i}"), vec![sale_item(shops.boots, 1)])
            .await;
        orders.push((i, order.order_id));
    }
    relay_caught_up(&app).await;
    for (i, order_id) in &orders {
        let expected = order_positions(&app.pool, Some(*order_id)).await;
        let got = feeds[*i].until(*expected.last().expect("events")).await;
        assert_eq!(ids(&got), expected, "customer-{i}");
    }
    // Everyone else got nothing (a look at a few).
    for i in [0usize, 1, 100, 199] {
        assert!(feeds[i].next(Duration::from_millis(300)).await.is_none());
    }

    // A burst of orders to other customers: the feeds filter it in memory
    // and hold nothing of it.
    for n in 0..30 {
        market
            .with_placed_order(&format!("shopper-{n}"), vec![sale_item(shops.boots, 1)])
            .await;
    }
    relay_caught_up(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown_mib = (resident_kib() - memory_before) / 1024;
    println!("{FEEDS} feeds and a burst of 30 orders: +{grown_mib} MiB resident");
    assert!(
        grown_mib < 64,
        "{FEEDS} feeds and a burst grew the process by {grown_mib} MiB"
    );
    for feed in feeds.iter_mut().take(5) {
        assert!(feed.next(Duration::from_millis(200)).await.is_none());
    }
    drop(feeds);
    app.stop().await;
}

#[tokio::test]
async fn an_order_feed_ends_at_its_tokens_expiry_and_counts_against_the_caps() {
    let app = TestApp::spawn_server(|config| {
        config.feeds.per_principal = 2;
    })
    .await;
    let market = Marketplace::new(&app);
    let shops = market.with_harbour_and_alpine(5, 10).await;
    relay_caught_up(&app).await;

    let exp = unix_now() + 3;
    let short = token_with(json!({"sub": "customer-a", "role": "customer", "exp": exp}));
    let mut feed = OrderFeed::open(&app, &short, None).await;
    let order = market
        .with_placed_order("customer-a", vec![sale_item(shops.boots, 1)])
        .await;
    relay_caught_up(&app).await;
    let of_order = order_positions(&app.pool, Some(order.order_id)).await;
    // Events before exp arrive; then `token-expired` (no id) ends the feed.
    let mut got = Vec::new();
    while let Some(m) = feed.next(Duration::from_secs(10)).await {
        got.push(m);
    }
    let (events, last): (Vec<_>, Vec<_>) =
        got.into_iter().partition(|m| m.event != "token-expired");
    assert_eq!(ids(&events), of_order, "the order's events before exp");
    assert_eq!(last.len(), 1, "one token-expired message: {last:?}");
    assert_eq!(last[0].id, None);
    assert!(chrono::Utc::now().timestamp() >= exp);

    // The caps of /v1/events/stream apply: a third feed of one principal is 429.
    let token = app.customer("customer-b");
    let _one = OrderFeed::open(&app, &token, None).await;
    let _two = OrderFeed::open(&app, &token, None).await;
    let third = app
        .client
        .get(format!("{}/v1/orders/stream", app.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().get("retry-after").is_some());
    app.stop().await;
}
