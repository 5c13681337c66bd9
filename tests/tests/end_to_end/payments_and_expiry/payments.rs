//! The payment webhook: a payment of the total confirms the order and every
//! hold, once however often or concurrently it is delivered; failures,
//! mismatches and second payments confirm nothing more; bad signatures,
//! malformed events and unknown types are refused or ignored.

use super::*;

#[tokio::test]
async fn a_payment_of_the_total_confirms_the_order_and_every_hold() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Lake Outfitters").await;
    let kayak = app.rental_listing(vendor, "day", "25.00", "50.00", 2).await;
    let paddle = app.sale_listing(vendor, "12.50", 10).await;
    let order = app
        .place(
            "payer",
            vec![
                rental_item(kayak, 1, &at(1, 0), &at(3, 0)),
                json!({"listing_id": paddle, "quantity": 2}),
            ],
        )
        .await;
    let order_id = order.uuid("order_id");
    assert_eq!(order.body["total"], "125.00", "50 rent + 50 deposit + 25");

    let answer = app
        .payment_webhook("evt_paid_1", SUCCEEDED, order_id, 12_500, None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);

    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "PaymentCaptured", "OrderConfirmed"]);
    assert_eq!(decimal(&events[1].1["amount"]), Decimal::new(12_500, 2));
    assert_eq!(app.order_status(order_id).await, "confirmed");
    for listing in [kayak, paddle] {
        let hold = app.hold_of(listing, order_id).await;
        assert_eq!(
            app.hold_history(listing, hold.hold_id).await,
            ["HoldPlaced", "HoldConfirmed"],
            "the hold on {listing} is confirmed"
        );
    }
}

#[tokio::test]
async fn a_redelivered_payment_event_records_nothing_new() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "redelivered",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let first = app
        .payment_webhook("evt_once", SUCCEEDED, order_id, minor, None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    // What the payment sets off (the holds confirmed, the invoice issued by
    // the policies) is recorded first: only the duplicates must add nothing.
    ledger_tests::pipeline::settle(&app, Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let recorded = app.event_count().await;
    assert_eq!(
        count(&app.event_types("Order", order_id).await, "PaymentCaptured"),
        1
    );

    for _ in 0..2 {
        let again = app
            .payment_webhook("evt_once", SUCCEEDED, order_id, minor, None)
            .await;
        assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
        assert_eq!(
            app.event_count().await,
            recorded,
            "a duplicate records nothing"
        );
    }
    assert_eq!(app.order_status(order_id).await, "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_payment_event_capture_it_once() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place("storm", vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))])
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let deliveries =
        (0..8).map(|_| app.payment_webhook("evt_storm", SUCCEEDED, order_id, minor, None));
    let answers = futures::future::join_all(deliveries).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let types = app.event_types("Order", order_id).await;
    assert_eq!(count(&types, "PaymentCaptured"), 1, "{types:?}");
    assert_eq!(count(&types, "OrderConfirmed"), 1, "{types:?}");
    assert_eq!(count(&types, "RefundIssued"), 0, "{types:?}");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}

#[tokio::test]
async fn a_failed_payment_is_recorded_and_leaves_the_order_placed() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "declined",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let failed = app
        .payment_webhook(
            "evt_declined",
            FAILED,
            order_id,
            minor,
            Some("Your card was declined."),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{:?}", failed.body);
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "PaymentFailed"]);
    assert_eq!(events[1].1["reason"], "Your card was declined.");
    assert_eq!(app.order_status(order_id).await, "placed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        hold.last, "HoldPlaced",
        "the hold stays active, unconfirmed"
    );
    // The units stay held for the order meanwhile.
    assert_unavailable(
        &app.place_order("other", vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))])
            .await,
    );

    // The customer retries with another card.
    let paid = app
        .payment_webhook("evt_retry", SUCCEEDED, order_id, minor, None)
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    let types = app.event_types("Order", order_id).await;
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentFailed",
            "PaymentCaptured",
            "OrderConfirmed"
        ]
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}

/// API.md "Money": a payment of another amount than due is unapplied
/// cash (posted, listed on the order), never a confirmation.
#[tokio::test]
async fn a_payment_of_another_amount_is_unapplied_cash_and_confirms_nothing() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "short-payer",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    for (n, amount) in [minor - 1, minor + 100].into_iter().enumerate() {
        let answer = app
            .payment_webhook(&format!("evt_wrong_{n}"), SUCCEEDED, order_id, amount, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        ["OrderPlaced", "PaymentUnapplied", "PaymentUnapplied"]
    );
    let cents = |value: &serde_json::Value| {
        ledger_tests::webhooks::minor_units(ledger_tests::answer::decimal(value))
    };
    assert_eq!(cents(&events[1].1["amount"]), minor - 1);
    assert_eq!(cents(&events[2].1["amount"]), minor + 100);
    assert_eq!(app.order_status(order_id).await, "placed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced"],
        "no hold is confirmed by a payment of another amount"
    );
}

#[tokio::test]
async fn webhooks_with_a_bad_signature_a_stale_timestamp_or_no_signature_are_refused() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "forged",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let body = payment_event("evt_forged", SUCCEEDED, order_id, minor, None);
    let now = Utc::now().timestamp();
    let recorded = app.event_count().await;

    let (raw, _) = signed(&body, WEBHOOK_SECRET, now);
    let (_, wrong_secret) = signed(&body, "whsec_attacker", now);
    let (_, stale) = signed(&body, WEBHOOK_SECRET, now - 400);
    let (_, future) = signed(&body, WEBHOOK_SECRET, now + 400);
    let (_, for_another_body) = signed(
        &payment_event("evt_forged", SUCCEEDED, order_id, 1, None),
        WEBHOOK_SECRET,
        now,
    );
    for (case, signature) in [
        ("another secret", wrong_secret),
        ("stale timestamp", stale),
        ("future timestamp", future),
        ("signature of another body", for_another_body),
        ("garbage", "t=abc,v1=zz".to_owned()),
        ("no v1", format!("t={now}")),
    ] {
        let answer = app.send_raw_webhook(raw.clone(), &signature).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {:?}",
            answer.body
        );
        assert_eq!(
            app.event_count().await,
            recorded,
            "{case}: nothing recorded"
        );
    }

    let unsigned = app
        .client
        .post(format!("{}/v1/webhooks/payments", app.base_url))
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(
        unsigned.status(),
        StatusCode::BAD_REQUEST,
        "no signature header"
    );
    assert_eq!(app.event_count().await, recorded, "nothing recorded");
    assert_eq!(app.order_status(order_id).await, "placed");

    // The same body, properly signed within the tolerance, is accepted.
    let (_, good) = signed(&body, WEBHOOK_SECRET, now - 200);
    let accepted = app.send_raw_webhook(raw, &good).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(app.order_status(order_id).await, "confirmed");
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "ignored",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let recorded = app.event_count().await;

    for (n, kind) in [
        "payment_intent.created",
        "charge.refunded",
        "customer.created",
    ]
    .into_iter()
    .enumerate()
    {
        let answer = app
            .payment_webhook(&format!("evt_other_{n}"), kind, order_id, minor, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{kind}: {:?}", answer.body);
    }
    assert_eq!(app.event_count().await, recorded, "nothing recorded");
    assert_eq!(app.order_status(order_id).await, "placed");
}

/// A payment intent with no or no valid `metadata.order_id` is acknowledged
/// and ignored (200): strict_input::signed_events_the_ledger_does_not_handle_are_200_and_ignored.
#[tokio::test]
async fn a_signed_webhook_that_is_malformed_or_names_no_order_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "garbled",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let recorded = app.event_count().await;
    let now = Utc::now().timestamp();

    let unknown_order = payment_event("evt_unknown", SUCCEEDED, Uuid::now_v7(), minor, None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", b"{\"id\": \"evt_x\", \"type\":".to_vec()),
        (
            "order never placed",
            serde_json::to_vec(&unknown_order).expect("json"),
        ),
    ];
    for (case, raw) in cases {
        let signature = command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, now);
        let answer = app.send_raw_webhook(raw, &signature).await;
        assert!(
            answer.status.is_client_error(),
            "{case}: {} {:?}",
            answer.status,
            answer.body
        );
        assert_eq!(
            app.event_count().await,
            recorded,
            "{case}: nothing recorded"
        );
    }
    assert_eq!(app.order_status(order_id).await, "placed");
}

#[tokio::test]
async fn a_second_payment_for_a_paid_order_is_refunded() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place(
            "pays-twice",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    let order_id = order.uuid("order_id");
    app.pay(&order).await;
    app.pay(&order).await;

    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentCaptured",
            "OrderConfirmed",
            "PaymentCaptured",
            "RefundIssued"
        ]
    );
    assert_eq!(
        decimal(&events[4].1["amount"]),
        decimal(&order.body["total"])
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}
