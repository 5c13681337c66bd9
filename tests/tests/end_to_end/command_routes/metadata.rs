//! The request metadata every recorded event carries (request id,
//! idempotency key, correlation and causation, principal), and positions
//! that grow across a whole lifecycle.

use ledger_tests::answer::position;
use ledger_tests::{at, rental_item, sale_item, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

#[tokio::test]
async fn events_of_a_request_without_an_idempotency_key_carry_no_key_and_a_generated_correlation_id(
) {
    let app = TestApp::spawn().await;
    let answer = app
        .post("/v1/vendors", &app.admin(), json!({"name": "No Key Ltd"}))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let events = app.events_of("Vendor", answer.uuid("vendor_id")).await;
    let metadata = &events[0].1;
    assert!(metadata.get("idempotency_key").is_none(), "{metadata}");
    let correlation = metadata["correlation_id"].as_str().unwrap_or("");
    assert!(!correlation.is_empty(), "{metadata}");
    assert_eq!(answer.header("x-request-id"), Some(correlation));
}

/// Sends a command with a request id and an idempotency key, and checks
/// that every event it recorded carries them, the principal and a causation.
async fn traced(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    principal: (&str, &str),
) -> Answer {
    // Follow-ups of earlier requests (confirmations, invoices) first, so
    // that every event after `before` is this request's.
    ledger_tests::pipeline::settle(app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let before = app.head().await;
    let request_id = format!("trace-{}", Uuid::new_v4().simple());
    let key = format!("key-{request_id}");
    let answer = app
        .send(
            method,
            path,
            Some(token),
            body.as_ref(),
            &[("x-request-id", &request_id), ("Idempotency-Key", &key)],
        )
        .await;
    assert!(answer.status.is_success(), "{path}: {:?}", answer.body);
    let events = app.events_after(before).await;
    assert!(!events.is_empty(), "{path} recorded no event");
    for (aggregate_type, _, event_type, metadata) in &events {
        let what = format!("{path}: {aggregate_type}/{event_type} {metadata}");
        // A follow-up command (confirm, release, credit) is recorded by the
        // request or by the stream-fed policies, whichever gets there first;
        // either way it carries the request's correlation id.
        if metadata["principal"] == "system:policies" {
            assert_eq!(metadata["principal_role"], "admin", "{what}");
        } else {
            assert_eq!(metadata["principal"], principal.0, "{what}");
            assert_eq!(metadata["principal_role"], principal.1, "{what}");
        }
        assert_eq!(metadata["correlation_id"], request_id.as_str(), "{what}");
        assert!(
            metadata["causation_id"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{what}"
        );
        if metadata["principal"] != "system:policies" {
            assert_eq!(metadata["idempotency_key"], key.as_str(), "{what}");
        }
    }
    answer
}

#[tokio::test]
async fn positions_grow_across_a_whole_lifecycle_and_every_event_carries_its_request_metadata() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let as_admin = ("admin-1", "admin");
    let mut positions = Vec::new();

    let vendor = traced(
        &app,
        Method::POST,
        "/v1/vendors",
        &admin,
        Some(json!({"name": "Alpine"})),
        as_admin,
    )
    .await;
    positions.push(position(&vendor));
    let vendor_id = vendor.uuid("vendor_id");
    let vendor_token = app.vendor(vendor_id);
    let vendor_subject = format!("vendor-user-{vendor_id}");
    let as_vendor = (vendor_subject.as_str(), "vendor");
    let listing = traced(
        &app,
        Method::POST,
        "/v1/listings",
        &vendor_token,
        Some(
            json!({"title": "Kayak", "category": "boats", "kind": "rental",
                    "pricing_unit": "hour", "price_per_unit": "7.50", "deposit": "20.00",
                    "units": 2}),
        ),
        as_vendor,
    )
    .await;
    positions.push(position(&listing));
    let listing_id = listing.uuid("listing_id");
    let base = format!("/v1/listings/{listing_id}");
    let steps = [
        (format!("{base}/publish"), json!({})),
        (format!("{base}/price"), json!({"price_per_unit": "8.00"})),
        (format!("{base}/stock"), json!({"units": 3})),
        (
            format!("{base}/blackouts"),
            json!({"start": at(9, 0), "end": at(10, 0), "reason": "x"}),
        ),
    ];
    let mut blackout = None;
    for (path, body) in steps {
        let answer = traced(
            &app,
            Method::POST,
            &path,
            &vendor_token,
            Some(body),
            as_vendor,
        )
        .await;
        if answer.body.get("blackout_id").is_some() {
            blackout = Some(answer.uuid("blackout_id"));
        }
        positions.push(position(&answer));
    }
    let removed = traced(
        &app,
        Method::DELETE,
        &format!("{base}/blackouts/{}", blackout.expect("a blackout")),
        &vendor_token,
        None,
        as_vendor,
    )
    .await;
    positions.push(position(&removed));
    let order = traced(
        &app,
        Method::POST,
        "/v1/orders",
        &app.customer("c1"),
        Some(json!({"items": [rental_item(listing_id, 1, &at(1, 0), &at(1, 3))]})),
        ("c1", "customer"),
    )
    .await;
    assert_created_order(&order);
    positions.push(position(&order));
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let line_id = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    for step in ["pickup", "return"] {
        let answer = traced(
            &app,
            Method::POST,
            &format!("/v1/orders/{order_id}/lines/{line_id}/{step}"),
            &vendor_token,
            Some(json!({})),
            as_vendor,
        )
        .await;
        positions.push(position(&answer));
    }
    // 3 hours × 8.00 = 24.00; fee 2.40; net 21.60 available.
    let payout = traced(
        &app,
        Method::POST,
        &format!("/v1/vendors/{vendor_id}/payouts"),
        &admin,
        Some(json!({"amount": "21.60"})),
        as_admin,
    )
    .await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);
    positions.push(position(&payout));

    // A second order, cancelled by its customer.
    let second = app
        .place_order("c2", vec![rental_item(listing_id, 1, &at(2, 0), &at(2, 1))])
        .await;
    assert_created_order(&second);
    positions.push(position(&second));
    let cancelled = traced(
        &app,
        Method::POST,
        &format!("/v1/orders/{}/cancel", second.uuid("order_id")),
        &app.customer("c2"),
        Some(json!({})),
        ("c2", "customer"),
    )
    .await;
    positions.push(position(&cancelled));
    let archived = traced(
        &app,
        Method::POST,
        &format!("{base}/archive"),
        &admin,
        Some(json!({})),
        as_admin,
    )
    .await;
    positions.push(position(&archived));

    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions must increase: {positions:?}"
    );
    assert_eq!(positions.last().copied(), Some(app.head().await));
}

#[tokio::test]
async fn shipping_and_delivering_record_events_with_the_request_metadata() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&order);
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let mut last = 0;
    for step in ["ship", "deliver"] {
        let answer = traced(
            &app,
            Method::POST,
            &format!("/v1/orders/{order_id}/vendors/{vendor_id}/{step}"),
            &app.admin(),
            Some(json!({})),
            ("admin-1", "admin"),
        )
        .await;
        assert!(position(&answer) > last);
        last = position(&answer);
    }
}

/// Registers a vendor sending `request_id` as raw header bytes (so that
/// non-ASCII goes on the wire as is); returns the echoed id and the
/// event's correlation and causation ids.
async fn register_with_request_id(app: &TestApp, request_id: &[u8]) -> (String, String, String) {
    let value = reqwest::header::HeaderValue::from_bytes(request_id).expect("a header value");
    let response = app
        .client
        .post(format!("{}/v1/vendors", app.base_url))
        .bearer_auth(app.admin())
        .header("x-request-id", value)
        .json(&json!({"name": "Request Id Ltd"}))
        .send()
        .await
        .expect("the ledger answers");
    let answer = ledger_tests::client::read(response).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let echoed = answer
        .header("x-request-id")
        .expect("a request id is echoed")
        .to_owned();
    let events = app.events_of("Vendor", answer.uuid("vendor_id")).await;
    let metadata = &events[0].1;
    let stored = |field: &str| metadata[field].as_str().unwrap_or("").to_owned();
    (echoed, stored("correlation_id"), stored("causation_id"))
}

#[tokio::test]
async fn a_request_id_outside_the_charset_or_too_long_is_replaced_and_only_the_replacement_is_echoed_and_stored(
) {
    let app = TestApp::spawn().await;
    let long = "a".repeat(129);
    let refused: [(&str, &[u8]); 4] = [
        ("markup", b"<script>alert(1)</script>"),
        ("129 characters", long.as_bytes()),
        ("a space", b"two words"),
        ("non-ASCII", "caf\u{e9}-\u{2603}".as_bytes()),
    ];
    let mut replacements = Vec::new();
    for (what, sent) in refused {
        let (echoed, correlation, causation) = register_with_request_id(&app, sent).await;
        let generated = Uuid::parse_str(&echoed)
            .unwrap_or_else(|_| panic!("{what}: a generated id is echoed, got {echoed:?}"));
        assert_eq!(generated.get_version_num(), 7, "{what}: a UUIDv7");
        assert_eq!(correlation, echoed, "{what}: the replacement is stored");
        assert_eq!(causation, echoed, "{what}: the replacement is the cause");
        replacements.push(echoed);
    }
    replacements.sort();
    replacements.dedup();
    assert_eq!(replacements.len(), 4, "each replacement is fresh");

    for kept in ["Req-1.a_b:c", &"z".repeat(128)] {
        let (echoed, correlation, causation) =
            register_with_request_id(&app, kept.as_bytes()).await;
        assert_eq!(echoed, kept, "a plain id is echoed as sent");
        assert_eq!(correlation, kept);
        assert_eq!(causation, kept);
    }
}
