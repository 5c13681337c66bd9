//! Strict input at the edge (issue 20): amounts parsed by one strict parser
//! and bounded so no accepted order can stop a read model; text PostgreSQL
//! cannot store refused before any SQL; periods in the past or outside the
//! allowed range refused; tokens not valid yet refused; the webhook's
//! timestamp compared exactly and events it does not handle acknowledged;
//! bodies not declared JSON refused; negative event cursors refused alike
//! on both routes. Every refusal is a problem and records nothing.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use ledger_tests::tokens::token_with;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, Answer, TestApp, WEBHOOK_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const RANGE_MESSAGE: &str = "must lie between 2000-01-01T00:00:00Z and 2200-01-01T00:00:00Z";

/// The error of `field` in a 422 problem.
#[track_caller]
fn error_of<'a>(answer: &'a Answer, field: &str) -> &'a Value {
    assert_invalid_field(answer, field);
    answer.body["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["field"] == field))
        .expect("the field's error")
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test]
async fn amounts_with_exponents_spaces_signs_or_three_places_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Strict Money").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let before = app.event_count().await;
    let rental = |price: &str| {
        json!({"title": "Kayak", "description": "", "category": "boats", "kind": "rental",
               "pricing_unit": "day", "price_per_unit": price, "deposit": "0.00", "units": 1})
    };
    for bad in [
        "1e1",
        "1e2",
        "1e3",
        " 1.00",
        "1.00 ",
        "+1.00",
        "-1.00",
        "1.005",
        "01.00",
        "1000000000.01",
    ] {
        let created = app
            .create_listing(&app.vendor(vendor_id), rental(bad))
            .await;
        assert_invalid_field(&created, "price_per_unit");
        let priced = app
            .change_price(&app.vendor(vendor_id), paddle, json!({"unit_price": bad}))
            .await;
        assert_invalid_field(&priced, "unit_price");
        let payout = app
            .post(
                &format!("/v1/vendors/{vendor_id}/payouts"),
                &app.admin(),
                json!({"amount": bad}),
            )
            .await;
        assert_invalid_field(&payout, "amount");
        // The body is read before the order is looked up.
        let returned = app
            .post(
                &format!(
                    "/v1/orders/{}/lines/{}/return",
                    Uuid::now_v7(),
                    Uuid::now_v7()
                ),
                &app.admin(),
                json!({"damage_withheld": bad}),
            )
            .await;
        assert_invalid_field(&returned, "damage_withheld");
        app.assert_nothing_recorded(before, bad).await;
    }
    // The strict form is still accepted, with one or two places or none.
    for good in ["1", "1.5", "1000000000.00"] {
        let created = app
            .create_listing(&app.vendor(vendor_id), rental(good))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{good}: {:?}",
            created.body
        );
    }
}

#[tokio::test]
async fn an_order_beyond_the_total_bound_is_422_and_the_largest_accepted_one_keeps_every_read_model_going(
) {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Big Ticket").await;
    let pricey = app
        .sale_listing(vendor_id, "1000000000.00", 10_000_000)
        .await;
    let before = app.event_count().await;
    let order = |quantity: u64| json!({"items": [{"listing_id": pricey, "quantity": quantity}]});

    // A million units at the largest price: the line that overflowed the
    // analytics projector (fee × subtotal > 7.9 × 10^28) is now refused.
    let too_large = app
        .post("/v1/orders", &app.customer("whale"), order(1_000_000))
        .await;
    let error = error_of(&too_large, "items");
    assert_eq!(error["code"], "too_large", "{:?}", too_large.body);
    let beyond_stock = app
        .post("/v1/orders", &app.customer("whale"), order(10_000_001))
        .await;
    assert_invalid_field(&beyond_stock, "items[0].quantity");
    app.assert_nothing_recorded(before, "an order over the bounds")
        .await;

    // The largest order accepted: 1000 × 1e9 = 1e12, paid; every consumer,
    // the analytics among them, goes on to the head.
    let largest = app
        .post("/v1/orders", &app.customer("whale"), order(1_000))
        .await;
    assert_eq!(largest.status, StatusCode::CREATED, "{:?}", largest.body);
    assert_eq!(largest.body["total"], "1000000000000.00");
    let paid = app.pay(&largest).await;
    let head = paid.body["position"].as_i64().expect("a position");
    let caught_up = ledger_tests::pipeline::eventually(Duration::from_secs(20), || async {
        let projections = app.get("/v1/projections", &app.admin()).await;
        projections.body.as_array().is_some_and(|all| {
            !all.is_empty()
                && all
                    .iter()
                    .all(|p| p["position"].as_i64().is_some_and(|at| at >= head))
        })
    })
    .await;
    assert!(
        caught_up,
        "every read model reaches the order: {:?}",
        app.get("/v1/projections", &app.admin()).await.body
    );
    let summary = app
        .send(
            Method::GET,
            "/v1/analytics/summary",
            Some(&app.admin()),
            None,
            &[("Ledger-Min-Position", &head.to_string())],
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    assert_eq!(
        summary.body["gmv"], "1000000000000.00",
        "{:?}",
        summary.body
    );
}

#[tokio::test]
async fn text_with_nul_is_422_in_bodies_and_400_in_queries_before_any_sql() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Nul Goods").await;
    let before = app.event_count().await;
    let listing = |title: &str, description: &str, category: &str| {
        json!({"title": title, "description": description, "category": category,
               "kind": "sale", "unit_price": "1.00", "stock": 1})
    };
    for (body, field) in [
        (listing("Kayak\u{0}", "", "boats"), "title"),
        (listing("Kayak", "two\u{0}seats", "boats"), "description"),
        (listing("Kayak", "", "\u{0}"), "category"),
    ] {
        let answer = app.create_listing(&app.vendor(vendor_id), body).await;
        assert_invalid_field(&answer, field);
    }
    let vendor = app
        .post("/v1/vendors", &app.admin(), json!({"name": "Acme\u{0}"}))
        .await;
    assert_invalid_field(&vendor, "name");
    let cancel = app
        .cancel_order(
            &app.admin(),
            Uuid::now_v7(),
            json!({"reason": "changed\u{0}mind"}),
        )
        .await;
    assert_invalid_field(&cancel, "reason");
    let nested = app
        .place_order(
            "c1",
            json!([{"listing_id": Uuid::now_v7(), "quantity": 1, "note\u{0}": 1}]),
        )
        .await;
    assert_invalid_field(&nested, "items[0]");
    // A lone surrogate never reaches a string: malformed JSON.
    let surrogate = app
        .send_bytes(
            Method::POST,
            "/v1/vendors",
            Some(&app.admin()),
            Some("application/json"),
            br#"{"name": "\ud800"}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(&surrogate, StatusCode::BAD_REQUEST, "bad-request");
    app.assert_nothing_recorded(before, "text with NUL").await;

    for path in [
        "/v1/listings?q=%00",
        "/v1/listings?category=boats%00",
        "/v1/events?event_type=%00",
        "/v1/orders?status=%00",
    ] {
        let answer = app.get(path, &app.admin()).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    let aggregate = app
        .get("/v1/aggregates/Order/a%00b/events", &app.admin())
        .await;
    assert_problem(&aggregate, StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn periods_in_the_past_or_outside_the_allowed_range_are_422() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Time Boats").await;
    let kayak = app
        .rental_listing(vendor_id, "hour", "10.00", "0.00", 2)
        .await;
    let before = app.event_count().await;

    // A listing without a schedule: the past is refused all the same.
    let yesterday = Utc::now() - chrono::Duration::days(1);
    let past = app
        .place_order(
            "c1",
            json!([{"listing_id": kayak, "quantity": 1,
                              "start": rfc3339(yesterday),
                              "end": rfc3339(yesterday + chrono::Duration::hours(2))}]),
        )
        .await;
    let error = error_of(&past, "items[0].start");
    assert_eq!(error["code"], "in_past", "{:?}", past.body);

    let far = app
        .place_order(
            "c1",
            json!([{"listing_id": kayak, "quantity": 1,
                              "start": "9999-01-01T00:00:00Z", "end": "9999-01-02T00:00:00Z"}]),
        )
        .await;
    assert_eq!(error_of(&far, "items[0].start")["message"], RANGE_MESSAGE);

    let blackout = app
        .add_blackout(
            &app.vendor(vendor_id),
            kayak,
            json!({"start": "9999-12-01T00:00:00Z", "end": "9999-12-31T00:00:00Z", "reason": "x"}),
        )
        .await;
    let error = error_of(&blackout, "end");
    assert_eq!(error["message"], RANGE_MESSAGE);
    assert_eq!(error["code"], "out_of_range");
    app.assert_nothing_recorded(before, "periods out of range")
        .await;

    // Queries over periods say which range they take.
    let availability = app
        .get(
            &format!(
            "/v1/listings/{kayak}/availability?from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z"
        ),
            &app.admin(),
        )
        .await;
    assert_eq!(error_of(&availability, "from")["message"], RANGE_MESSAGE);
    assert_eq!(error_of(&availability, "to")["message"], RANGE_MESSAGE);
    let search = app
        .get(
            "/v1/listings?available_from=0001-01-01T00:00:00Z&available_to=0001-01-02T00:00:00Z",
            &app.admin(),
        )
        .await;
    assert_eq!(
        error_of(&search, "available_from")["message"],
        RANGE_MESSAGE
    );
    let analytics = app
        .get(
            "/v1/analytics/summary?from=-5000-01-01T00:00:00Z",
            &app.admin(),
        )
        .await;
    assert_eq!(error_of(&analytics, "from")["message"], RANGE_MESSAGE);
    let state = app
        .get(
            &format!("/v1/aggregates/Listing/{kayak}/state?as_of=9999-01-01T00:00:00Z"),
            &app.admin(),
        )
        .await;
    assert_invalid_field(&state, "as_of");

    // Inside the range and ahead of now, all is as before.
    app.place(
        "c1",
        json!([{"listing_id": kayak, "quantity": 1,
                              "start": at(1, 0), "end": at(1, 2)}]),
    )
    .await;
}

#[tokio::test]
async fn a_token_whose_nbf_is_ahead_is_401() {
    let app = TestApp::spawn().await;
    let now = Utc::now().timestamp();
    let early =
        token_with(json!({"sub": "c1", "role": "customer", "exp": now + 3600, "nbf": now + 60}));
    let answer = app.get("/v1/listings", &early).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    let created = app.post("/v1/orders", &early, json!({"items": []})).await;
    assert_problem(&created, StatusCode::UNAUTHORIZED, "unauthorized");
    let ready =
        token_with(json!({"sub": "c1", "role": "customer", "exp": now + 3600, "nbf": now - 60}));
    assert_eq!(app.get("/v1/listings", &ready).await.status, StatusCode::OK);
}

fn payment_event(id: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "type": kind, "data": {"object": object}}))
        .expect("serialise")
}

#[tokio::test]
async fn the_webhook_timestamp_is_compared_exactly_at_the_tolerance() {
    let app = TestApp::spawn().await;
    let raw = payment_event("evt_other", "customer.created", json!({"id": "cus_1"}));
    let sign = |t: i64| command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, t);
    let now = || Utc::now();

    // 301 s either way is refused; 299 s either way is accepted.
    let ahead = now().timestamp() + 302; // ≥ 301 s ahead, whatever the fraction
    let answer = app.send_raw_webhook(raw.clone(), &sign(ahead)).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let behind = now().timestamp() - 301;
    let answer = app.send_raw_webhook(raw.clone(), &sign(behind)).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let answer = app
        .send_raw_webhook(raw.clone(), &sign(now().timestamp() + 299))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let answer = app
        .send_raw_webhook(raw.clone(), &sign(now().timestamp() - 298))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);

    // Exactly: half a second into a second, a timestamp 300 s before its
    // start is 300.5 s old. Whole seconds would call it 300 and accept it.
    let half_past = loop {
        let t = now();
        let millis = t.timestamp_subsec_millis();
        if (450..650).contains(&millis) {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let answer = app
        .send_raw_webhook(raw.clone(), &sign(half_past.timestamp() - 300))
        .await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test]
async fn signed_events_the_ledger_does_not_handle_are_200_and_ignored() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Hooks").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app
        .place("c1", json!([{"listing_id": paddle, "quantity": 1}]))
        .await;
    let before = app.event_count().await;
    let now = Utc::now().timestamp();
    let intent = |metadata: Value| {
        json!({"id": "pi_1", "amount": 1000, "currency": "usd", "metadata": metadata,
               "last_payment_error": null})
    };
    let ignored = [
        (
            "customer.created",
            payment_event(
                "evt_c",
                "customer.created",
                json!({"id": "cus_1", "email": "a@b"}),
            ),
        ),
        (
            "checkout.session.completed",
            payment_event("evt_s", "checkout.session.completed", json!({"id": "cs_1"})),
        ),
        (
            "no metadata.order_id",
            payment_event("evt_n", "payment_intent.succeeded", intent(json!({}))),
        ),
        (
            "an order id that is no uuid",
            payment_event(
                "evt_u",
                "payment_intent.succeeded",
                intent(json!({"order_id": "ord_42"})),
            ),
        ),
    ];
    for (case, raw) in ignored {
        let signature = command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, now);
        let answer = app.send_raw_webhook(raw, &signature).await;
        assert_eq!(answer.status, StatusCode::OK, "{case}: {:?}", answer.body);
        assert_eq!(answer.body["received"], true, "{case}");
        assert!(
            answer.body["ignored"].is_string(),
            "{case}: {:?}",
            answer.body
        );
        app.assert_nothing_recorded(before, case).await;
    }
    // Not an event at all, or text that cannot be stored: 400, retried.
    for (case, raw) in [
        ("malformed JSON", b"{\"id\": \"evt_x\", \"type\":".to_vec()),
        ("no type", br#"{"id": "evt_x"}"#.to_vec()),
        (
            "a NUL in the failure reason",
            payment_event(
                "evt_f",
                "payment_intent.payment_failed",
                json!({"id": "pi_1", "amount": 1000, "currency": "usd",
                       "metadata": {"order_id": order.uuid("order_id")},
                       "last_payment_error": {"message": "card\u{0}declined"}}),
            ),
        ),
    ] {
        let signature = command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, now);
        let answer = app.send_raw_webhook(raw, &signature).await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
        app.assert_nothing_recorded(before, case).await;
    }
    // A bad signature is still 400; a real payment still confirms.
    let raw = payment_event("evt_c2", "customer.created", json!({"id": "cus_2"}));
    let forged = command_api::routes::webhooks::sign(&raw, "whsec_other", now);
    let answer = app.send_raw_webhook(raw, &forged).await;
    assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    let paid = app.pay(&order).await;
    assert_eq!(paid.body["status"], "confirmed", "{:?}", paid.body);
    assert!(paid.body.get("ignored").is_none(), "{:?}", paid.body);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_415() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let answer = app
        .send_bytes(
            Method::POST,
            "/v1/vendors",
            Some(&app.admin()),
            None,
            br#"{"name": "Untyped"}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    app.assert_nothing_recorded(before, "an untyped body").await;
    // No body needs no type (commands without fields).
    let vendor_id = app.register_vendor("Typed").await;
    let listing = app
        .create_listing(
            &app.vendor(vendor_id),
            json!({"title": "Paddle", "description": "", "category": "gear",
                   "kind": "sale", "unit_price": "1.00", "stock": 1}),
        )
        .await;
    let published = app
        .send_bytes(
            Method::POST,
            &format!("/v1/listings/{}/publish", listing.uuid("listing_id")),
            Some(&app.vendor(vendor_id)),
            None,
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
}

#[tokio::test]
async fn a_request_with_content_length_and_transfer_encoding_gets_a_problem_or_is_read_chunked() {
    let app = TestApp::spawn().await;
    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /v1/vendors HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 17\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.admin()
    );
    let body = br#"{"name": "Both"}"#;
    // Transfer-Encoding wins (RFC 9112 6.3): a chunked body is read as such.
    let mut chunked = head.clone().into_bytes();
    chunked.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    chunked.extend_from_slice(body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, _, answer) = ledger_tests::raw_http::exchange(&app.base_url, &chunked).await;
    assert_eq!(status, 201, "{answer:?}");
    // A body framed by the length instead is no chunked body: a problem.
    let mut framed = head.into_bytes();
    framed.extend_from_slice(body);
    let (status, content_type, answer) =
        ledger_tests::raw_http::exchange(&app.base_url, &framed).await;
    assert!((400..500).contains(&status), "{status} {answer:?}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{status} `{content_type}` {answer:?}"
    );
}

#[tokio::test]
async fn a_negative_event_cursor_is_422_on_both_routes_and_in_the_document() {
    let app = TestApp::spawn().await;
    for path in ["/v1/events?after=-5", "/v1/events/stream?after=-5"] {
        let answer = app.get(path, &app.admin()).await;
        assert_invalid_field(&answer, "after");
    }
    let document = app
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await
        .body;
    for path in ["/v1/events", "/v1/events/stream"] {
        let after = document["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "after"))
            .unwrap_or_else(|| panic!("{path} documents `after`"));
        assert_eq!(after["schema"]["minimum"], 0, "{path}: {after}");
    }
    // Request amounts are documented with the pattern the parser enforces.
    let amount = &document["components"]["schemas"]["RequestPayout"]["properties"]["amount"];
    assert_eq!(
        amount["pattern"],
        command_api::routes::AMOUNT_PATTERN,
        "{amount}"
    );
}
