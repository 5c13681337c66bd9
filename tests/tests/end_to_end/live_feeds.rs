//! Live feeds last only as long as their token (API.md "Conventions",
//! issue 23 item 2): at the token's `exp` the server sends
//! `event: token-expired` and closes, no event reaches the connection after
//! `exp`, and a fresh token with `Last-Event-ID` resumes where it ended.
//! Open feeds are capped per principal and overall (429 with
//! `Retry-After` beyond a cap).

use std::time::Duration;

use ledger_tests::events::head;
use ledger_tests::pipeline::{eventually, relay_position};
use ledger_tests::sse::{take_block, SseBlock};
use ledger_tests::tokens::{token_with, unix_now};
use ledger_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A server-sent message: `id` is absent on `token-expired`.
#[derive(Debug)]
struct Message {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// What reading a feed gave.
#[derive(Debug)]
enum Read {
    Message(Message),
    /// The server ended the response.
    Ended,
    /// Nothing came in time.
    Silent,
}

/// `/v1/events/stream` read message by message, with the token given.
struct Feed {
    response: reqwest::Response,
    buffer: String,
}

impl Feed {
    async fn open(app: &TestApp, token: &str, last_event_id: i64) -> Feed {
        let response = app
            .client
            .get(format!("{}/v1/events/stream", app.base_url))
            .bearer_auth(token)
            .header("Last-Event-ID", last_event_id.to_string())
            .send()
            .await
            .expect("the ledger answers");
        assert_eq!(response.status(), StatusCode::OK);
        Feed {
            response,
            buffer: String::new(),
        }
    }

    async fn next(&mut self, timeout: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(SseBlock { id, event, data }) = take_block(&mut self.buffer) {
                // Comment lines (keep-alives) carry no event.
                if let Some(event) = event {
                    return Read::Message(Message {
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
                Ok(Ok(None)) | Ok(Err(_)) => return Read::Ended,
                Err(_) => return Read::Silent,
            }
        }
    }
}

/// An analyst's token that expires at `exp` (seconds since the epoch).
fn analyst_until(exp: i64) -> String {
    token_with(json!({"sub": "analyst-1", "role": "analyst", "exp": exp}))
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

#[tokio::test]
async fn a_feed_ends_at_its_tokens_expiry_and_resumes_with_a_fresh_token() {
    let app = TestApp::spawn().await;
    app.register_vendor("Before Anything").await;
    let start = relay_caught_up(&app).await;

    let exp = unix_now() + 4;
    let mut feed = Feed::open(&app, &analyst_until(exp), start).await;

    // Before `exp`: an event written is delivered.
    app.register_vendor("Before Expiry").await;
    let before = relay_caught_up(&app).await;
    let mut delivered = Vec::new();
    let expired = loop {
        match feed.next(Duration::from_secs(10)).await {
            Read::Message(m) if m.event == "token-expired" => break m,
            Read::Message(m) => delivered.push(m),
            other => panic!("the feed ended without token-expired: {other:?}"),
        }
    };
    let ended_at = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        delivered.iter().map(|m| m.id).collect::<Vec<_>>(),
        (start + 1..=before).map(Some).collect::<Vec<_>>(),
        "the event written before exp was delivered"
    );
    assert!(
        delivered.iter().all(|m| m.event == "VendorRegistered"),
        "{delivered:?}"
    );
    // At `exp`, not before; the last message carries no id.
    assert!(ended_at >= exp * 1000 - 50, "ended {ended_at} before {exp}");
    assert_eq!(expired.id, None);
    assert_eq!(
        expired.data["expired_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp()),
        Some(exp),
        "{expired:?}"
    );

    // After `exp`: the feed is over, and an event written now is not
    // delivered on it.
    app.register_vendor("After Expiry").await;
    let after = relay_caught_up(&app).await;
    assert!(after > before);
    match feed.next(Duration::from_secs(3)).await {
        Read::Ended => {}
        other => panic!("the expired feed went on: {other:?}"),
    }

    // A fresh token and Last-Event-ID: the feed goes on from the next
    // position, missing nothing.
    let last = delivered.last().and_then(|m| m.id).unwrap_or(start);
    let mut resumed = Feed::open(&app, &app.analyst(), last).await;
    let mut again = Vec::new();
    while again.last().is_none_or(|id| *id < after) {
        match resumed.next(Duration::from_secs(10)).await {
            Read::Message(m) => again.push(m.id.expect("an event has an id")),
            other => panic!("no event up to {after}: {other:?} after {again:?}"),
        }
    }
    assert_eq!(again, (last + 1..=after).collect::<Vec<_>>());

    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("the server stops with a live feed open");
}

/// Opens a feed with `token`: the answer's status and `Retry-After`, and
/// the response (kept open while held).
async fn try_open(app: &TestApp, token: &str) -> (StatusCode, Option<String>, reqwest::Response) {
    let response = app
        .client
        .get(format!("{}/v1/events/stream", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the ledger answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status(), retry_after, response)
}

#[tokio::test]
async fn open_feeds_are_capped_per_principal_and_overall() {
    let app = TestApp::spawn_server(|config| {
        config.feeds.per_principal = 2;
        config.feeds.overall = 3;
    })
    .await;
    let (analyst, auditor, admin) = (app.analyst(), app.auditor(), app.admin());

    let (status, _, first) = try_open(&app, &analyst).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _second) = try_open(&app, &analyst).await;
    assert_eq!(status, StatusCode::OK);
    // A third feed of the same principal: 429, come back later.
    let (status, retry_after, refused) = try_open(&app, &analyst).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)));
    let problem: Value = refused.json().await.expect("a problem");
    assert_eq!(problem["status"], 429);

    // Another principal still gets one, up to the overall cap.
    let (status, _, _third) = try_open(&app, &auditor).await;
    assert_eq!(status, StatusCode::OK);
    let (status, retry_after, _) = try_open(&app, &admin).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());

    // A feed that ends gives its place back.
    drop(first);
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (status, _, _) = try_open(&app, &admin).await;
            status == StatusCode::OK
        })
        .await,
        "no place came free after a feed ended"
    );
}

/// Every position in `(from, upto]` that `GET /v1/events` shows, in order.
async fn logged_positions(app: &TestApp, from: i64, upto: i64) -> Vec<i64> {
    let mut positions = Vec::new();
    let mut after = from;
    while after < upto {
        let page: Value = app
            .client
            .get(format!(
                "{}/v1/events?after={after}&limit=500",
                app.base_url
            ))
            .bearer_auth(app.analyst())
            .send()
            .await
            .expect("the ledger answers")
            .json()
            .await
            .expect("a page of events");
        let events = page["events"].as_array().expect("events");
        if events.is_empty() {
            break;
        }
        for event in events {
            let position = event["position"].as_i64().expect("a position");
            if position <= upto {
                positions.push(position);
            }
        }
        after = page["next_after"].as_i64().expect("next_after");
    }
    positions
}

/// Reads a feed until it has delivered `upto`; the ids delivered.
async fn ids_through(feed: &mut Feed, upto: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    while ids.last().is_none_or(|id| *id < upto) {
        match feed.next(Duration::from_secs(20)).await {
            Read::Message(m) => ids.push(m.id.expect("an event has an id")),
            other => panic!("no event up to {upto}: {other:?} after {ids:?}"),
        }
    }
    ids
}

/// The feeds of a process share one reader of the log's head (the window
/// of `read_api::live`): feeds opened at the head, feeds resuming from
/// before the window (read from the database, then joining it) and feeds
/// opened while events are being written all deliver exactly the log, in
/// order, without a gap or a repeat.
#[tokio::test]
async fn many_feeds_share_one_reader_and_each_delivers_the_whole_log_in_order() {
    let app = TestApp::spawn_server(|config| {
        config.feeds.per_principal = 100;
        config.feeds.overall = 200;
    })
    .await;
    for i in 0..5 {
        app.register_vendor(&format!("Early {i}")).await;
    }
    let early = relay_caught_up(&app).await;
    let token = app.analyst();

    // The first feed starts the shared reader at the horizon; one from 0
    // reads what is below it from the database.
    let mut at_head: Vec<Feed> = Vec::new();
    for _ in 0..40 {
        at_head.push(Feed::open(&app, &token, early).await);
    }
    let mut from_start = vec![Feed::open(&app, &token, 0).await];

    // Opened while the log grows, from before everything.
    for i in 0..10 {
        app.register_vendor(&format!("During {i}")).await;
        app.register_vendor(&format!("During {i} again")).await;
        from_start.push(Feed::open(&app, &token, 0).await);
    }
    let last = relay_caught_up(&app).await;

    let whole = logged_positions(&app, 0, last).await;
    assert!(whole.len() >= 25, "the log: {whole:?}");
    let tail: Vec<i64> = whole.iter().copied().filter(|p| *p > early).collect();
    for feed in &mut at_head {
        assert_eq!(ids_through(feed, last).await, tail);
    }
    for feed in &mut from_start {
        assert_eq!(ids_through(feed, last).await, whole);
    }
}
